// The building blocks of workers, one at a time and in one process: the partition hash, the lease
// protocol (claim, renew, expiry, takeover, release, epochs), fenced commits, and the checkpoints
// of partition sessions.

#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <failover_support.hpp>

namespace failover_leases_test {

namespace pj = projectionist;
using namespace std::chrono_literals;
using failover::counted_row;
using failover::wait_until;
using postgres_test::pg_url;
using postgres_test::scoped_schema;

// ---- partitions ---------------------------------------------------------------------------------

TEST_CASE("partition_of is a fixed function of stream and aggregate id", "[failover][partition]") {
    // Computed at compile time, and pinned: a change here would move aggregates between the
    // partitions of running projections, whose checkpoints would then be wrong.
    static_assert(pj::aggregate_hash("", "") == 0xaf63bd4c8601b7dfull);  // FNV-1a of the single 0 byte
    static_assert(pj::partition_of("ticket", "t-1", 0) == 0 && pj::partition_of("ticket", "t-1", 1) == 0);
    STATIC_REQUIRE(pj::partition_of("ticket", "t-1", 8) == pj::partition_of("ticket", "t-1", 8));
    CHECK(pj::aggregate_hash("ticket", "t-1") == 0x118e5f8613b69f9full);  // also computed in Python
    CHECK(pj::partition_of("ticket", "t-1", 16) == 9);
    CHECK(pj::partition_of("ticket", "t-2", 16) == 4);
    CHECK(pj::partition_of("order", "t-1", 16) == 5);
    // The 0 byte between stream and id keeps these apart.
    CHECK(pj::aggregate_hash("ab", "c") != pj::aggregate_hash("a", "bc"));

    for (const std::uint32_t count : {2u, 3u, 6u, 8u, 16u}) {
        INFO("count " << count);
        std::vector<int> hits(count, 0);
        constexpr int n = 12000;
        for (int i = 0; i < n; ++i) {
            const std::string id = "t-" + std::to_string(i);
            const std::uint32_t p = pj::partition_of("ticket", id, count);
            REQUIRE(p < count);
            ++hits[p];
            for (std::uint32_t k = 0; k < count; ++k)
                REQUIRE(pj::contains(pj::partition_slice{count, k}, "ticket", id) == (k == p));
        }
        // Ids that differ only in a digit's high bits (t-1, t-9) spread out too: within 10% of even.
        const double even = static_cast<double>(n) / count;
        for (std::uint32_t k = 0; k < count; ++k) {
            INFO("partition " << k << ": " << hits[k] << " of " << n);
            CHECK(std::abs(hits[k] - even) < 0.1 * even);
        }
    }
    CHECK(pj::contains(pj::partition_slice{}, "ticket", "anything"));
    CHECK(pj::checkpoint_key("tickets_v2", {}) == "tickets_v2");
    CHECK(pj::checkpoint_key("tickets_v2", {8, 3}) == "tickets_v2#3/8");
    CHECK_THROWS_WITH(pj::detail::check_slice({4, 4}, "tickets_v2"), Catch::Contains("slice 4/4 is invalid"));
    CHECK_THROWS_AS(pj::detail::check_slice({0, 0}, "tickets_v2"), pj::error);
}

// ---- leases ---------------------------------------------------------------------------------------

namespace {

pj::postgres_lease_table lease_table(const scoped_schema& schema, std::string worker, std::uint32_t partitions = 4,
                                     std::chrono::milliseconds ttl = 400ms) {
    return pj::postgres_lease_table(pg_url(), schema.options(), "counted_v1", partitions, std::move(worker), ttl);
}

bool expired(pj::postgres_lease_table& t, std::uint32_t partition) {
    for (const auto& s : t.states())
        if (s.partition == partition) return s.expired;
    return false;
}

std::set<std::uint32_t> partitions_of(const std::vector<pj::lease>& leases) {
    std::set<std::uint32_t> out;
    for (const auto& l : leases) out.insert(l.partition);
    return out;
}

}  // namespace

TEST_CASE("leases: claim, renew, expiry, takeover with a new epoch, release", "[failover][lease]") {
    scoped_schema schema;
    auto a = lease_table(schema, "a");
    auto b = lease_table(schema, "b");
    REQUIRE(a.states().size() == 4);

    std::uint32_t taken_over = 9;
    const auto mine = a.claim(2, &taken_over);
    REQUIRE(mine.size() == 2);
    CHECK(taken_over == 0);  // never held
    for (const auto& l : mine) CHECK(l.epoch == 1);
    const auto theirs = b.claim(4);  // only two are free
    REQUIRE(theirs.size() == 2);
    CHECK(a.claim(1).empty());
    std::set<std::uint32_t> all = partitions_of(mine);
    all.merge(partitions_of(theirs));
    CHECK(all == std::set<std::uint32_t>{0, 1, 2, 3});

    // b stops renewing; a renews until b's leases expire by the server's clock, then takes them.
    CHECK(wait_until(5s, [&] {
        CHECK(a.renew() == mine);
        return expired(a, theirs[0].partition) && expired(a, theirs[1].partition);
    }));
    const auto taken = a.claim(4, &taken_over);
    REQUIRE(taken.size() == 2);
    CHECK(taken_over == 2);  // expired in b's hands: re-claimed
    CHECK(partitions_of(taken) == partitions_of(theirs));
    for (const auto& l : taken) CHECK(l.epoch == 2);  // a claim always moves the epoch

    // b comes back: it has nothing to renew and cannot release what it lost.
    CHECK(b.renew().empty());
    CHECK_FALSE(b.release(theirs[0]));
    for (const auto& s : a.states()) CHECK(s.holder == "a");

    // A release makes the lease claimable at once, with a new epoch.
    REQUIRE(a.release(taken[0]));
    CHECK_FALSE(a.release(taken[0]));  // not twice
    const auto back = b.claim(4, &taken_over);
    REQUIRE(back.size() == 1);
    CHECK(taken_over == 0);  // released, not expired
    CHECK(back[0] == pj::lease{taken[0].partition, 3});

    // leave() gives everything back.
    a.leave();
    CHECK(b.claim(4).size() == 3);
}

TEST_CASE("leases: the fair share follows the live workers", "[failover][lease]") {
    scoped_schema schema;
    auto a = lease_table(schema, "a", 8, 2000ms);
    auto b = lease_table(schema, "b", 8, 2000ms);
    auto c = lease_table(schema, "c", 8, 2000ms);
    CHECK(a.live_workers() == 0);
    a.heartbeat();
    CHECK(a.fair_share() == 8);
    b.heartbeat();
    CHECK(a.fair_share() == 4);
    c.heartbeat();
    CHECK(c.fair_share() == 3);  // ceil(8 / 3): 3 + 3 + 2
    c.leave();
    CHECK(a.fair_share() == 4);
    STATIC_REQUIRE(pj::postgres_lease_table::share_of(6, 4) == 2);
    STATIC_REQUIRE(pj::postgres_lease_table::share_of(1, 3) == 1);  // global: one holder, the others stand by
}

TEST_CASE("leases: every worker of a projection must use the same partition count", "[failover][lease]") {
    scoped_schema schema;
    auto a = lease_table(schema, "a", 4);
    CHECK_THROWS_WITH(lease_table(schema, "b", 8), Catch::Contains("are for 4 partitions, this worker was given 8"));
    CHECK_NOTHROW(lease_table(schema, "b", 4));
    // What the error says to do, with the workers stopped, lets another count start.
    CHECK_THROWS_WITH(lease_table(schema, "b", 8),
                      Catch::Contains("DELETE FROM projectionist_leases WHERE projection = 'counted_v1'"));
    schema.connection().exec("DELETE FROM " + schema.quoted() +
                             ".projectionist_leases WHERE projection = 'counted_v1'");
    CHECK_NOTHROW(lease_table(schema, "b", 8));
}

TEST_CASE("leases: the lease connection keeps its time limits when it is opened again", "[failover][lease]") {
    scoped_schema schema;
    auto a = lease_table(schema, "a", 4, 2000ms);
    const auto limits = [&] {
        return std::pair{std::string(a.connection().query("SHOW lock_timeout").text(0, 0)),
                         std::string(a.connection().query("SHOW idle_in_transaction_session_timeout").text(0, 0))};
    };
    REQUIRE(limits() == std::pair{std::string("500ms"), std::string("2s")});
    // The server ends the connection while it is idle (a restart, say): the next statement opens
    // it again, with the same limits.
    auto admin = postgres_test::raw_connection();
    const std::string pid = std::to_string(a.connection().backend_pid());
    admin.exec("SELECT pg_terminate_backend(" + pid + ")");
    REQUIRE(wait_until(5s, [&] {
        return postgres_test::scalar(admin, "SELECT count(*) FROM pg_stat_activity WHERE pid = " + pid) == 0;
    }));
    try {
        a.heartbeat();
    } catch (const pj::storage_error& e) {
        // The loss was found by the statement itself (the server's goodbye had not arrived yet):
        // the next one opens the connection again, as a worker's next heartbeat does.
        REQUIRE(e.connection_lost());
        a.heartbeat();
    }
    CHECK(std::to_string(a.connection().backend_pid()) != pid);
    CHECK(limits() == std::pair{std::string("500ms"), std::string("2s")});
}

TEST_CASE("leases: a claim passes over a lease whose fenced commit is under way", "[failover][lease][fence]") {
    scoped_schema schema;
    auto a = lease_table(schema, "a", 1, 300ms);
    auto b = lease_table(schema, "b", 1, 300ms);
    REQUIRE(a.claim(1).size() == 1);
    // What a fenced commit does in its transaction: lock the lease row FOR SHARE until it ends.
    auto raw = postgres_test::raw_connection();
    raw.exec("BEGIN");
    raw.exec("SELECT 1 FROM " + schema.quoted() + ".projectionist_leases FOR SHARE");
    CHECK(wait_until(5s, [&] { return expired(b, 0); }));
    CHECK(b.claim(1).empty());  // the commit under way goes first
    raw.exec("COMMIT");
    CHECK(b.claim(1) == std::vector<pj::lease>{{0, 2}});
}

// ---- fenced commits -------------------------------------------------------------------------------

namespace {

using table_handle = pj::postgres_table<failover::counted_table>;

/// One batch through `session`: a row for `id`, the checkpoint moved to `position`.
void write_batch(pj::postgres_storage::session& session, const std::string& id, std::uint64_t position) {
    session.begin();
    try {
        auto* t = session.open_table<failover::counted_table>("counted_v1");
        REQUIRE(t != nullptr);
        t->insert({id, "bug", "open", 0, 1});
        pj::checkpoint cp = session.load_checkpoint();
        cp.position = position;
        session.commit(cp, {});
    } catch (...) {
        session.rollback();
        throw;
    }
    session.reload_checkpoint();
}

std::uint64_t stored_position(scoped_schema& schema, const std::string& key) {
    pj::detail::pg::params p;
    p.add(key);
    const auto r = schema.connection().query(
        "SELECT position FROM " + schema.quoted() + ".projectionist_checkpoints WHERE projection = $1", p);
    return r.rows() == 0 ? 0 : static_cast<std::uint64_t>(r.int64(0, 0));
}

}  // namespace

TEST_CASE("a fenced commit with a lost lease throws lease_lost and writes nothing", "[failover][fence]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
    {
        auto setup = storage.open("counted_v1");
        setup.create_table<failover::counted_table>("counted_v1");
    }
    auto a = lease_table(schema, "a", 2, 400ms);
    auto b = lease_table(schema, "b", 2, 400ms);
    const auto held = a.claim(1);
    REQUIRE(held.size() == 1);
    const pj::partition_slice slice{2, held[0].partition};
    const std::string key = pj::checkpoint_key("counted_v1", slice);

    auto session = storage.open("counted_v1", slice);
    session.fence(a.fence_for(held[0]));
    CHECK(session.current_fence()->epoch == held[0].epoch);
    write_batch(session, "t-1", 5);  // while the lease holds
    CHECK(stored_position(schema, key) == 5);
    CHECK_FALSE(session.fenced_out());

    SECTION("taken over after it expired: the old epoch is refused") {
        CHECK(wait_until(5s, [&] { return expired(b, held[0].partition); }));
        REQUIRE(b.claim(2).size() == 2);
    }
    SECTION("expired, not taken yet: refused too") {
        CHECK(wait_until(5s, [&] { return expired(b, held[0].partition); }));
    }
    SECTION("released by its own worker (rebalancing): refused") {
        REQUIRE(a.release(held[0]));
    }
    CHECK_THROWS_AS(write_batch(session, "t-2", 9), pj::lease_lost);
    CHECK(session.fenced_out());
    CHECK(stored_position(schema, key) == 5);
    auto table = storage.find_table<failover::counted_table>("counted_v1");
    CHECK(table->contains("t-1"));
    CHECK_FALSE(table->contains("t-2"));
    CHECK(session.reload_checkpoint().position == 5);
    // lease_lost is not a checkpoint_conflict: a runner must not reload and retry after it.
    STATIC_REQUIRE_FALSE(std::is_base_of_v<pj::checkpoint_conflict, pj::lease_lost>);
    STATIC_REQUIRE(std::is_base_of_v<pj::error, pj::lease_lost>);

    // Without the fence, the same session commits again (the worker no longer uses it, though).
    session.unfence();
    write_batch(session, "t-3", 9);
    CHECK(stored_position(schema, key) == 9);
}

TEST_CASE("a runner whose lease is lost throws lease_lost and does not stop the projection", "[failover][fence]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_storage storage(pg_url(), schema.options());
    for (int i = 0; i < 6; ++i) {
        const std::string id = "t-" + std::to_string(i);
        store.append(tickets_domain::ticket_stream{}, id, 0, tickets_domain::ticket_registered{id, "bug"});
    }
    auto a = lease_table(schema, "a", 1, 10s);
    const auto held = a.claim(1);
    REQUIRE(held.size() == 1);
    pj::runner_options options;
    options.batch_size = 2;
    options.slice = pj::partition_slice{1, 0};
    pj::runner<failover::counted, pj::postgres_storage, pj::per_aggregate> r(store, storage, options);
    r.init();
    r.session().fence(a.fence_for(held[0]));
    REQUIRE(a.release(held[0]));  // rebalanced away before the first batch
    CHECK_THROWS_AS(r.catch_up(), pj::lease_lost);
    CHECK(r.position() == 0);                                      // nothing committed
    CHECK(r.status().state == pj::projection_state::initialized);  // not stopped by an error
    CHECK_FALSE(r.status().error.has_value());
    CHECK(r.status().errors[pj::error_kind::fenced] == 1);  // projectionist_errors_total{kind="fenced"}
    CHECK(r.status().errors.total() == 1);
    CHECK(storage.find_table<failover::counted_table>("counted_v1")->empty());
}

// ---- partition sessions ---------------------------------------------------------------------------

TEST_CASE("partition sessions have their own checkpoints and share the projection's tables and catalog",
          "[failover][slice]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
    auto whole = storage.open("counted_v1");
    whole.create_table<failover::counted_table>("counted_v1");
    pj::catalog_entry entry;
    entry.name = "counted_v1";
    entry.base_name = "counted";
    entry.version = 1;
    entry.state = pj::projection_state::caught_up;
    entry.partitioning = "per_aggregate";
    entry.tables = {"counted_v1"};
    whole.begin();
    whole.save_catalog(entry);
    whole.commit(pj::checkpoint{7, {0, 3, 0, 2}, 2}, std::vector<std::uint64_t>{1, 3});
    whole.reload_checkpoint();

    auto p0 = storage.open("counted_v1", {3, 0});
    auto p1 = storage.open("counted_v1", {3, 1});
    CHECK(p0.projection() == "counted_v1");
    CHECK(p0.checkpoint_key() == "counted_v1#0/3");
    CHECK(p0.find_catalog()->name == "counted_v1");  // the projection's catalog row
    // A partition without a checkpoint starts where the unsliced projection was.
    CHECK(p0.load_checkpoint().position == 7);
    CHECK(p0.load_checkpoint().version_of(3) == 2);
    CHECK(p1.load_checkpoint().position == 7);

    write_batch(p0, "t-1", 12);
    CHECK(p0.load_checkpoint().position == 12);
    CHECK(p1.reload_checkpoint().position == 7);  // untouched
    CHECK(whole.reload_checkpoint().position == 7);
    CHECK(storage.find_table<failover::counted_table>("counted_v1")->contains("t-1"));  // the shared table

    pj::dead_letter letter{8, "ticket", "t-9", 4, "ticket.closed", "boom", false};
    p1.record_dead_letter(letter);
    CHECK(p1.dead_letters().size() == 1);
    CHECK(p0.dead_letters().empty());
    CHECK(whole.dead_letters().empty());

    // Another partition count would split the aggregates differently: refused.
    CHECK_THROWS_WITH(storage.open("counted_v1", {4, 0}).load_checkpoint(),
                      Catch::Contains("has checkpoints for another partition count"));
    CHECK_THROWS_WITH(storage.open("counted_v1", {3, 3}), Catch::Contains("slice 3/3 is invalid"));

    // A reset through any session forgets every partition's checkpoint and dead letters.
    p1.begin();
    p1.reset_checkpoint();
    p1.commit(pj::checkpoint{}, {});
    // A checkpoint reset and committed at 0 in one transaction is no row at all (a deleted version
    // leaves none behind); the next load reads 0.
    CHECK(postgres_test::scalar(schema.connection(),
                                "SELECT count(*) FROM " + schema.quoted() + ".projectionist_checkpoints") == 0);
    CHECK(postgres_test::scalar(schema.connection(),
                                "SELECT count(*) FROM " + schema.quoted() + ".projectionist_dead_letters") == 0);
    CHECK(p0.reload_checkpoint().position == 0);
    CHECK(p1.reload_checkpoint().position == 0);
    CHECK(whole.reload_checkpoint().position == 0);
}

TEST_CASE("a runner without a slice refuses to apply a projection that workers partition", "[failover][slice]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_storage storage(pg_url(), schema.options());
    for (int i = 0; i < 8; ++i) {
        const std::string id = "t-" + std::to_string(i);
        store.append(tickets_domain::ticket_stream{}, id, 0, tickets_domain::ticket_registered{id, "bug"});
    }
    pj::runner_options sliced;
    sliced.slice = pj::partition_slice{2, 0};
    pj::runner<failover::counted, pj::postgres_storage, pj::per_aggregate> part(store, storage, sliced);
    part.init();
    const auto applied_by_partition = part.catch_up();
    CHECK(applied_by_partition > 0);
    // Exactly the slice's aggregates, each once: the others' events are passed over.
    std::uint64_t in_slice = 0;
    for (int i = 0; i < 8; ++i) in_slice += pj::contains(sliced.slice, "ticket", "t-" + std::to_string(i)) ? 1 : 0;
    CHECK(applied_by_partition == in_slice);
    CHECK(in_slice < 8);

    // A command line's catch-up, say: it would start from the unsliced checkpoint (0) and apply
    // every event the partition applied again.
    pj::runner<failover::counted, pj::postgres_storage, pj::per_aggregate> whole(store, storage);
    CHECK_THROWS_WITH(whole.catch_up(), Catch::Contains("is run in partitions by workers") &&
                                            Catch::Contains("counted_v1#0/2") && Catch::Contains("without a slice"));
    CHECK(whole.position() == 0);
    REQUIRE(whole.status().error.has_value());
    CHECK_THAT(*whole.status().error, Catch::Contains("is run in partitions by workers"));
    CHECK(whole.status().errors[pj::error_kind::other] == 1);  // neither an event's nor the database's failure
    auto table = storage.find_table<failover::counted_table>("counted_v1");
    CHECK(static_cast<std::uint64_t>(table->size()) == applied_by_partition);  // nothing applied twice

    // Lifecycle operations work without a slice: a reset forgets every partition's checkpoint, and
    // the projection can then run whole.
    pj::runner<failover::counted, pj::postgres_storage, pj::per_aggregate> admin(store, storage);
    admin.reset();
    CHECK(admin.catch_up() == 8);
    CHECK(table->size() == 8);
}

TEST_CASE("a move from one runner to workers applies no event twice, whichever begins first", "[failover][slice]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
    auto whole = storage.open("counted_v1");
    whole.begin();
    whole.commit(pj::checkpoint{7, {}, 0}, {});
    (void)whole.reload_checkpoint();

    SECTION("a partition's first checkpoint waits for the batch under way without a slice") {
        whole.begin();  // the batch holds the checkpoint's row
        std::promise<std::uint64_t> seeded;
        std::jthread partition([&] {
            auto p0 = storage.open("counted_v1", {2, 0});
            seeded.set_value(p0.load_checkpoint().position);  // copies the unsliced position
        });
        auto copied = seeded.get_future();
        CHECK(copied.wait_for(300ms) == std::future_status::timeout);  // it waits for the batch
        whole.commit(pj::checkpoint{12, {}, 0}, {});
        REQUIRE(copied.wait_for(10s) == std::future_status::ready);
        CHECK(copied.get() == 12);  // after the batch: none of its events again
    }
    SECTION("a batch without a slice that began while a partition was being seeded commits nothing") {
        // A partition's first load copies the unsliced checkpoint under its lock; held open here.
        auto seeder = postgres_test::raw_connection();
        seeder.exec("BEGIN");
        seeder.exec("SET search_path = " + schema.quoted());
        seeder.exec(
            "INSERT INTO projectionist_checkpoints(projection, position) SELECT 'counted_v1#0/2', position FROM "
            "projectionist_checkpoints WHERE projection = 'counted_v1' FOR SHARE");
        std::promise<void> begun;
        std::jthread batch([&] {
            whole.begin();  // waits for the seeder's lock; its look for partitions is older than the seed
            begun.set_value();
        });
        auto f = begun.get_future();
        CHECK(f.wait_for(300ms) == std::future_status::timeout);
        seeder.exec("COMMIT");
        REQUIRE(f.wait_for(10s) == std::future_status::ready);
        batch.join();
        CHECK_THROWS_AS(whole.commit(pj::checkpoint{12, {}, 0}, {}), pj::checkpoint_conflict);
        whole.rollback();
        CHECK(stored_position(schema, "counted_v1") == 7);
        CHECK_THROWS_WITH(whole.begin(), Catch::Contains("is run in partitions by workers"));
    }
}

// ---- a worker, in this process ----------------------------------------------------------------------

namespace {

/// A store, a storage and a worker of the global projection `led`, on connections of their own.
struct led_worker {
    pj::postgres_event_store store;
    pj::postgres_storage storage;
    pj::worker<failover::led, pj::postgres_storage> worker;
    std::jthread thread;
    led_worker(const scoped_schema& schema, std::string id, std::chrono::milliseconds ttl, std::size_t batch = 1000)
        : store(pg_url(), schema.options()),
          storage(pg_url(), schema.options()),
          worker(store, storage,
                 {.lease_ttl = ttl, .heartbeat = 100ms, .poll_interval = 20ms, .id = std::move(id), .runner = {batch}}),
          thread([this](std::stop_token st) { worker.run(st); }) {}
    [[nodiscard]] bool leads() const { return worker.status().held.size() == 1; }
};

std::uint64_t led_position(scoped_schema& schema) {
    return stored_position(schema, "led_v1");
}

/// Creates led_v1's tables and catalog row before the test's workers start.
void init_led(pj::postgres_event_store& store, pj::postgres_storage& storage) {
    pj::runner<failover::led, pj::postgres_storage>(store, storage).init();
}

}  // namespace

TEST_CASE("workers of a global projection: one applies it, a clean stop hands it over without waiting for the lease",
          "[failover][worker]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_storage storage(pg_url(), schema.options());
    init_led(store, storage);
    for (int i = 0; i < 20; ++i) failover::append_ticket(store, "t-" + std::to_string(i), "bug", i % 3, true);

    // A lease much longer than the test's waits: a hand-over within them is a release, not an expiry.
    constexpr auto ttl = 20s;
    auto a = std::make_unique<led_worker>(schema, "a", ttl);
    auto b = std::make_unique<led_worker>(schema, "b", ttl);
    // (A worker counts a catch-up's events when it returns, a little after its last commit.)
    auto applied = [&](const std::unique_ptr<led_worker>& w) { return w->worker.status().events_applied; };
    REQUIRE(wait_until(10s, [&] { return applied(a) + applied(b) == store.head(); }));
    CHECK(led_position(schema) == store.head());
    REQUIRE(a->leads() != b->leads());  // exactly one
    auto& leader = a->leads() ? a : b;
    auto& standby = a->leads() ? b : a;
    CHECK(standby->worker.status().events_applied == 0);
    CHECK(leader->worker.status().events_applied == store.head());

    const auto t0 = failover::clock::now();
    leader.reset();  // stops its thread: run() releases the lease and unregisters
    REQUIRE(wait_until(10s, [&] { return standby->leads(); }));
    CHECK(failover::clock::now() - t0 < ttl / 2);
    failover::append_ticket(store, "t-late", "task", 1, false);
    REQUIRE(wait_until(10s, [&] { return applied(standby) == 3; }));
    CHECK(led_position(schema) == store.head());
    const auto s = standby->worker.status();
    CHECK(s.events_applied == 3);
    CHECK(s.claims == 1);
    CHECK(s.leases_lost == 0);
    CHECK_FALSE(s.error.has_value());
    standby.reset();

    const auto problems = failover::compare_with_reference(storage, "led_v1", failover::reference(store));
    for (const auto& p : problems) UNSCOPED_INFO(p);
    CHECK(problems.empty());
    CHECK(postgres_test::scalar(schema.connection(),
                                "SELECT count(DISTINCT epoch) FROM " + schema.quoted() + ".led_v1_applies") == 2);
    CHECK(postgres_test::scalar(schema.connection(),
                                "SELECT count(*) FROM " + schema.quoted() + ".projectionist_workers") == 0);
}

TEST_CASE("a worker counts its lease renewals, and the heartbeats whose renewal failed", "[failover][worker]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_storage storage(pg_url(), schema.options());
    init_led(store, storage);
    // Heartbeats every 100 ms; the lease connection waits at most ttl / 4 = 500 ms for a lock.
    auto w = std::make_unique<led_worker>(schema, "a", 2s);
    REQUIRE(wait_until(10s, [&] { return w->worker.status().renewals >= 3; }));
    auto s = w->worker.status();
    CHECK(s.renewal_failures == 0);
    REQUIRE(s.last_renewal.has_value());
    CHECK(std::chrono::system_clock::now() - *s.last_renewal < 2s);

    // The workers' table locked away from the heartbeat for longer than its lock timeout: its
    // registration, and so the renewal, fails, and the next heartbeats renew again once it is free.
    auto blocker = postgres_test::raw_connection();
    blocker.exec("BEGIN; LOCK TABLE " + schema.quoted() + ".projectionist_workers IN ACCESS EXCLUSIVE MODE");
    REQUIRE(wait_until(10s, [&] { return w->worker.status().renewal_failures >= 1; }));
    const auto during = w->worker.status();
    CHECK_THAT(during.error.value_or(""), Catch::Contains("heartbeat"));
    blocker.exec("COMMIT");
    REQUIRE(wait_until(10s, [&] { return w->worker.status().renewals > during.renewals; }));
    s = w->worker.status();
    CHECK(*s.last_renewal > *during.last_renewal);
    CHECK(s.renewal_failures >= 1);
    w.reset();
}

TEST_CASE("worker options are checked", "[failover][worker]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_storage storage(pg_url(), schema.options());
    using led_worker_type = pj::worker<failover::led, pj::postgres_storage>;
    pj::worker_options slow;  // (designated initializers that skip members warn in GCC 12)
    slow.lease_ttl = 1s;
    slow.heartbeat = 1s;
    CHECK_THROWS_WITH(led_worker_type(store, storage, slow),
                      Catch::Contains("the heartbeat (1000 ms) must be shorter than the lease time (1000 ms)"));
    // A global projection is one partition whatever the options say.
    led_worker_type w(store, storage, {.partitions = 8, .id = "x"});
    CHECK(w.options().partitions == 1);
    CHECK(w.id() == "x");
}

TEST_CASE("a schema of version 1 gets the workers' tables when opened", "[failover][schema]") {
    scoped_schema schema;
    { pj::postgres_storage storage(pg_url(), schema.options()); }
    auto& db = schema.connection();
    db.exec("DROP TABLE " + schema.quoted() + ".projectionist_leases, " + schema.quoted() +
            ".projectionist_workers; UPDATE " + schema.quoted() + ".projectionist_schema SET version = 1");
    pj::postgres_storage storage(pg_url(), schema.options());
    CHECK(postgres_test::scalar(db, "SELECT version FROM " + schema.quoted() + ".projectionist_schema") ==
          pj::detail::pg::schema_version);
    CHECK(postgres_test::scalar(db, "SELECT count(*) FROM " + schema.quoted() + ".projectionist_schema") == 1);
    auto leases = lease_table(schema, "a");
    CHECK(leases.claim(4).size() == 4);
}

TEST_CASE("a worker stopped in the middle of a long catch-up stops at once; the next one goes on from its commit",
          "[failover][worker]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_storage storage(pg_url(), schema.options());
    init_led(store, storage);
    for (int i = 0; i < 600; ++i) {
        const std::string id = "t-" + std::to_string(i);
        store.append(tickets_domain::ticket_stream{}, id, 0, tickets_domain::ticket_registered{id, "bug"},
                     tickets_domain::ticket_closed{id}, tickets_domain::ticket_reopened{id},
                     tickets_domain::ticket_closed{id});
    }
    const std::uint64_t head = store.head();  // 2400 events, in batches of 5: minutes of catch-up

    auto a = std::make_unique<led_worker>(schema, "a", 20s, 5);
    REQUIRE(wait_until(20s, [&] { return led_position(schema) > 100; }));
    const auto t0 = failover::clock::now();
    a.reset();  // stop and join
    const auto stopping = failover::clock::now() - t0;
    const std::uint64_t stopped_at = led_position(schema);
    CHECK(stopped_at < head);
    CHECK(stopping < 5s);
    INFO("stopped in " << std::chrono::duration<double>(stopping).count() << " s at position " << stopped_at);
    auto states = failover::lease_states(schema.connection(), schema.name(), "led_v1");
    REQUIRE(states.size() == 1);
    CHECK_FALSE(states[0].holder.has_value());  // given back, not left to expire

    auto b = std::make_unique<led_worker>(schema, "b", 20s);
    REQUIRE(wait_until(60s, [&] { return led_position(schema) == head; }));
    b.reset();
    const auto problems = failover::compare_with_reference(storage, "led_v1", failover::reference(store));
    for (const auto& p : problems) UNSCOPED_INFO(p);
    CHECK(problems.empty());
    std::size_t terms = 0;
    auto& db = schema.connection();
    const auto log_problems = failover::check_applies(failover::applies(db, schema.name(), "led_v1"), head, 1, terms);
    for (const auto& p : log_problems) UNSCOPED_INFO(p);
    CHECK(log_problems.empty());
    CHECK(terms == 2);
}

namespace {

/// Fails on the ticket "boom", as a handler with a bug does.
struct fragile : pj::projection<"fragile", 1, tickets_domain::ticket_stream> {
    using table = failover::counted_table;
    template <class E>
    void on(const E& e, auto& ctx) {
        if (e.ticket_id == "boom") throw std::runtime_error("boom: a bug in the handler");
        failover::apply_ticket(e, ctx.table());
    }
};

/// Sleeps in its handler once, when `stall` is set: a worker frozen mid-batch.
std::atomic<bool> stall{false};
struct stalling : pj::projection<"stalling", 1, tickets_domain::ticket_stream> {
    using table = failover::counted_table;
    template <class E>
    void on(const E& e, auto& ctx) {
        if (stall.exchange(false)) std::this_thread::sleep_for(3s);
        failover::apply_ticket(e, ctx.table());
    }
};

/// A worker "a" that beats every 100 ms and looks for events every 10 ms, with leases of `ttl`.
pj::worker_options quick_worker(std::chrono::milliseconds ttl) {
    pj::worker_options o;
    o.lease_ttl = ttl;
    o.heartbeat = 100ms;
    o.poll_interval = 10ms;
    o.id = "a";
    return o;
}

double cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

TEST_CASE("a handler's failure stops its partition at the last commit; the worker keeps it and idles",
          "[failover][worker]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_storage storage(pg_url(), schema.options());
    failover::append_ticket(store, "t-1", "bug", 0, true);
    failover::append_ticket(store, "boom", "bug", 0, true);
    failover::append_ticket(store, "t-2", "bug", 0, true);

    auto o = quick_worker(2s);
    o.runner.batch_size = 2;
    pj::worker<fragile, pj::postgres_storage> w(store, storage, o);
    std::jthread t([&](std::stop_token st) { w.run(st); });
    REQUIRE(wait_until(10s, [&] { return w.status().error.has_value(); }));
    const double cpu_before = cpu_seconds();
    std::this_thread::sleep_for(1s);  // time passing is what is measured here
    const double cpu = cpu_seconds() - cpu_before;
    const auto s = w.status();
    CHECK_THAT(*s.error, Catch::Contains("boom: a bug in the handler"));
    CHECK(s.held.size() == 1);  // kept: another worker would fail the same way
    CHECK(s.runner_restarts == 0);
    CHECK(s.events_applied == 2);
    CHECK(s.errors[pj::error_kind::handler] == 1);  // projectionist_worker_errors_total{kind="handler"}
    CHECK(s.errors.total() == 1);
    CHECK(stored_position(schema, "fragile_v1") == 2);  // the batch before the failure
    CHECK(cpu < 0.5);                                   // no busy loop on a partition that cannot move
    t = {};
}

TEST_CASE("a worker whose lease is taken under a batch counts the fenced commit, the lost lease and the error",
          "[failover][worker][fence]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_storage storage(pg_url(), schema.options());
    failover::append_ticket(store, "t-1", "bug", 0, true);
    failover::append_ticket(store, "t-2", "bug", 0, true);

    auto thief = postgres_test::raw_connection();
    std::atomic<int> batches{0};
    auto o = quick_worker(2s);
    o.runner.batch_size = 2;
    o.runner.backfill = pj::backfill_mode::batch;  // one transaction per batch, each after the hook
    o.runner.before_batch_begin = [&] {
        if (++batches != 2) return;
        // Another worker holds the lease now, with the next epoch, before the second batch begins.
        thief.exec("UPDATE " + schema.quoted() +
                   ".projectionist_leases SET holder = 'thief', epoch = epoch + 1, expires_at = clock_timestamp() + "
                   "interval '1 hour' WHERE projection = 'fragile_v1'");
    };
    pj::worker<fragile, pj::postgres_storage> w(store, storage, o);
    std::jthread t([&](std::stop_token st) { w.run(st); });
    const bool fenced = wait_until(10s, [&] { return w.status().fenced_commits == 1; });
    const auto s = w.status();
    INFO("batches " << batches.load() << ", error: " << s.error.value_or("(none)") << ", fenced commits "
                    << s.fenced_commits << ", events applied " << s.events_applied);
    REQUIRE(fenced);
    CHECK(s.leases_lost == 1);                     // found by the fence or by the next renewal, counted once
    CHECK(s.errors[pj::error_kind::fenced] == 1);  // projectionist_worker_errors_total{kind="fenced"}
    CHECK(s.errors.total() == 1);
    CHECK(s.events_applied == 2);  // the first batch's
    CHECK(s.held.empty());
    CHECK(stored_position(schema, "fragile_v1") == 2);
    t = {};
}

TEST_CASE("a worker's batch frozen past the lease is ended by the server, also after its connection was opened again",
          "[failover][worker]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    auto admin = postgres_test::raw_connection();
    // The worker's storage connects as a role of the test's own, so that its connections can be
    // ended alone.
    pj::postgres_storage storage(postgres_test::login_role_url(admin, "pj_worker_reopened"), schema.options());
    failover::append_ticket(store, "t-1", "bug", 0, true);
    auto o = quick_worker(1s);
    o.runner.backfill = pj::backfill_mode::batch;
    pj::worker<stalling, pj::postgres_storage> w(store, storage, o);
    std::jthread t([&](std::stop_token st) { w.run(st); });
    REQUIRE(wait_until(10s, [&] { return stored_position(schema, "stalling_v1") == store.head(); }));

    // The server ends the worker's connections while they are idle; the worker opens them again
    // (at once, or after a failed statement) and applies the next event.
    admin.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'pj_worker_reopened'");
    failover::append_ticket(store, "t-2", "bug", 0, true);
    REQUIRE(wait_until(20s, [&] { return stored_position(schema, "stalling_v1") == store.head(); }));
    const std::uint64_t errors_before = w.status().errors.total();
    // Then a batch stalls in its handler, inside its transaction, for three times the lease: the
    // server must end it, as it would have before the connection was opened again.
    stall = true;
    failover::append_ticket(store, "t-3", "bug", 0, true);
    REQUIRE(wait_until(20s, [&] { return stored_position(schema, "stalling_v1") == store.head(); }));
    const auto s = w.status();
    INFO("error: " << s.error.value_or("(none)"));
    CHECK(s.errors.total() > errors_before);  // the stalled batch, rolled back by the server and applied again
    CHECK_FALSE(stall.load());
    t = {};
}

TEST_CASE("a runner that fails to start counts as the worker's error, by its kind", "[failover][worker]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_storage storage(pg_url(), schema.options());
    init_led(store, storage);
    failover::append_ticket(store, "t-1", "bug", 0, true);
    // A catalog row this code cannot read: every runner of the version fails in its constructor,
    // before any catch-up, while the leases are claimed and renewed as usual.
    schema.connection().exec("UPDATE " + schema.quoted() +
                             ".projectionist_catalog SET state = 'unheard-of' WHERE name = 'led_v1'");

    auto o = quick_worker(2s);
    o.max_failed_rounds = 1000;  // keeps trying: what is counted is each failed start
    pj::worker<failover::led, pj::postgres_storage> w(store, storage, o);
    std::jthread t([&](std::stop_token st) { w.run(st); });
    REQUIRE(wait_until(10s, [&] { return w.status().errors.total() >= 2; }));
    const auto s = w.status();
    CHECK_THAT(s.error.value_or(""),
               Catch::Contains("partition 0: starting its runner") && Catch::Contains("unknown state 'unheard-of'"));
    // Neither an event's failure nor the database's: the kind the runner itself would count.
    CHECK(s.errors[pj::error_kind::other] == s.errors.total());
    CHECK(s.events_applied == 0);
    CHECK(led_position(schema) == 0);
    t = {};
}

TEST_CASE("a worker that cannot work any more gives its leases back and throws", "[failover][worker]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_storage storage(pg_url(), schema.options());
    init_led(store, storage);
    failover::append_ticket(store, "t-1", "bug", 0, true);

    // The worker connects as a role of the test's own, so that its connection can be lost for good:
    // a connection lost while idle is opened again, unless logins are refused.
    auto admin = postgres_test::raw_connection();
    pj::postgres_event_store worker_store(postgres_test::login_role_url(admin, "pj_worker_gone"), schema.options());
    auto o = quick_worker(20s);
    o.max_failed_rounds = 3;
    pj::worker<failover::led, pj::postgres_storage> w(worker_store, storage, o);
    std::promise<std::string> ended;
    std::jthread t([&](std::stop_token st) {
        try {
            w.run(st);
            ended.set_value("returned");
        } catch (const std::exception& e) {
            ended.set_value(e.what());
        }
    });
    REQUIRE(wait_until(10s, [&] { return led_position(schema) == store.head(); }));
    // The worker's event store loses its connection for good: its role may no longer log in.
    admin.exec("ALTER ROLE pj_worker_gone NOLOGIN");
    admin.exec("SELECT pg_terminate_backend(" + std::to_string(worker_store.connection().backend_pid()) + ")");
    failover::append_ticket(store, "t-2", "bug", 0, true);
    auto result = ended.get_future();
    REQUIRE(result.wait_for(20s) == std::future_status::ready);
    CHECK_THAT(result.get(), Catch::Contains("stopped after 3 rounds in which its runners only failed"));
    auto states = failover::lease_states(schema.connection(), schema.name(), "led_v1");
    REQUIRE(states.size() == 1);
    CHECK_FALSE(states[0].holder.has_value());  // given back at once, not after 20 s
}

}  // namespace failover_leases_test
