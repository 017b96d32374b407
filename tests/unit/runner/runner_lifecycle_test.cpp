// Kick-off, init, backfill, reset, remove and restart: what a runner does to its tables,
// checkpoint and catalog row, and what it leaves alone.

#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <string>
#include <thread>

#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

namespace runner_lifecycle_test {

namespace pj = projectionist;
using namespace tickets_domain;
using namespace std::chrono_literals;

namespace {

/// Counts handler calls and lifecycle hook calls across runner instances.
struct counters {
    int registered = 0;
    int init = 0;
    int reset = 0;
    int remove = 0;
};

struct counted : pj::projection<"counted", 1, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    counters* seen = nullptr;

    void on(const ticket_registered& e, auto& ctx) {
        ++seen->registered;
        ctx.table().insert({e.ticket_id, e.type, "open", 0});
    }
    void init(auto& ctx) {
        ++seen->init;
        // Hooks run after the declared tables exist, inside the same transaction.
        ctx.table().upsert({"seed", "hook", "open", 0});
    }
    void reset(auto&) { ++seen->reset; }
    void remove(auto&) { ++seen->remove; }
};

counted counted_with(counters& c) {
    counted p;
    p.seen = &c;
    return p;
}

}  // namespace

TEST_CASE("manual kick-off: dormant until init, whatever events arrive", "[runner][kickoff]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 0, true);
    pj::runner<tickets<2>, pj::manual_kickoff> v2(store, storage);

    CHECK(v2.catch_up() == 0);
    append_ticket(store, "t-2", "bug", 0, false);
    CHECK(v2.catch_up() == 0);
    auto s = v2.status();
    CHECK(s.dormant);
    CHECK(s.state == pj::projection_state::declared);
    CHECK(s.note.find("waiting for init") != std::string::npos);
    CHECK(s.position == 0);
    CHECK(s.lag == 3);
    CHECK_FALSE(storage.has_table("tickets_v2"));  // dormant creates nothing
    CHECK_FALSE(storage.find_catalog("tickets_v2").has_value());
    CHECK_THROWS_WITH(v2.backfill(), Catch::Contains("run init first") && Catch::Contains("tickets_v2"));

    v2.init();
    CHECK(storage.has_table("tickets_v2"));
    CHECK(v2.status().state == pj::projection_state::initialized);
    CHECK_FALSE(v2.status().dormant);
    CHECK(v2.backfill() == 3);
    s = v2.status();
    CHECK(s.state == pj::projection_state::caught_up);
    CHECK(s.position == 3);
    CHECK(s.lag == 0);
    CHECK(s.events_per_second > 0);
}

TEST_CASE("manual kick-off: run() stays dormant until init, without spinning", "[runner][kickoff]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 0, false);
    pj::runner<tickets<2>, pj::manual_kickoff> v2(store, storage, pj::runner_options{100, 20ms});
    std::stop_source stop;
    const auto cpu_before = std::clock();
    std::thread worker([&] { v2.run(stop.get_token()); });
    std::this_thread::sleep_for(200ms);
    stop.request_stop();
    worker.join();
    const double cpu_seconds = static_cast<double>(std::clock() - cpu_before) / CLOCKS_PER_SEC;
    CHECK(v2.status().dormant);
    CHECK(v2.position() == 0);
    CHECK_FALSE(storage.has_table("tickets_v2"));
    // A dormant runner looks again every poll interval; it must not busy-wait for 200 ms.
    CHECK(cpu_seconds < 0.1);
}

TEST_CASE("run() returns at once on a projection that already stopped after an error", "[runner]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    store.append(ticket_stream{}, "t-1", pj::expected_version::any(), ticket_registered{"t-1", "bug"});
    store.append(ticket_stream{}, "t-1", pj::expected_version::any(), ticket_registered{"t-1", "bug"});
    pj::runner<tickets<2>> r(store, storage);
    CHECK_THROWS_AS(r.catch_up(), pj::projection_error);
    std::stop_source stop;
    r.run(stop.get_token());  // must not throw state_error out of a worker thread
    CHECK(r.status().error.has_value());
}

TEST_CASE("a runner stopped by an error reports the state stopped; the catalog keeps the version's state",
          "[runner][failure]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 0, true);
    pj::runner<tickets<2>> r(store, storage);
    r.catch_up();
    CHECK(r.status().state == pj::projection_state::caught_up);
    CHECK(r.status().catalog_state == pj::projection_state::caught_up);
    // a second registration of t-1 breaks the insert
    store.append(ticket_stream{}, "dup", pj::expected_version::any(), ticket_registered{"t-1", "bug"});
    CHECK_THROWS_AS(r.catch_up(), pj::projection_error);
    const pj::runner_status stopped = r.status();
    CHECK(stopped.state == pj::projection_state::stopped);
    CHECK(stopped.catalog_state == pj::projection_state::caught_up);
    REQUIRE(stopped.error);
    CHECK_THAT(*stopped.error, Catch::Contains("stopped at position 3"));
    CHECK(r.state() == pj::projection_state::caught_up);  // the deployment's view is unchanged
    CHECK(storage.find_catalog("tickets_v2")->state == pj::projection_state::caught_up);
    // No catalog row can say stopped: it is this runner's condition, not the version's.
    CHECK_FALSE(pj::projection_state_from_string("stopped"));
    CHECK(pj::to_string(pj::projection_state::stopped) == "stopped");
    r.resume();
    CHECK(r.status().state == pj::projection_state::caught_up);
    CHECK_FALSE(r.status().error);
}

TEST_CASE("auto kick-off initializes on first use", "[runner][kickoff]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 0, true);
    pj::runner<tickets<1>, pj::auto_kickoff> v1(store, storage);
    CHECK(v1.status().state == pj::projection_state::declared);
    CHECK_FALSE(v1.status().dormant);
    CHECK(v1.catch_up() == 2);
    const auto entry = storage.find_catalog("tickets_v1");
    REQUIRE(entry.has_value());
    CHECK(entry->state == pj::projection_state::caught_up);
    CHECK(entry->base_name == "tickets");
    CHECK(entry->version == 1);
    CHECK(entry->partitioning == "global");
    CHECK(entry->tables == std::vector<std::string>{"tickets_v1"});
}

TEST_CASE("backfill replays to the head as of the call, then catch_up follows", "[runner]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    for (int i = 0; i < 25; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", 0, false);
    pj::runner<tickets<2>, pj::manual_kickoff> v2(store, storage, pj::runner_options{4});
    v2.init();
    CHECK(v2.backfill() == 25);
    append_ticket(store, "late", "bug", 0, true);
    CHECK(v2.position() == 25);
    CHECK(v2.catch_up() == 2);
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->size() == 26);
}

TEST_CASE("a new runner over the same storage resumes from the checkpoint", "[runner]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    counters c;
    for (int i = 0; i < 10; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", 0, false);
    {
        pj::runner<counted> first(store, storage, counted_with(c));
        CHECK(first.catch_up() == 10);
    }
    for (int i = 10; i < 15; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", 0, false);
    pj::runner<counted> second(store, storage, counted_with(c));
    CHECK(second.status().state == pj::projection_state::caught_up);
    CHECK(second.catch_up() == 5);
    CHECK(c.registered == 15);  // nothing applied twice
    CHECK(c.init == 1);         // the catalog said it was initialized already
}

TEST_CASE("lifecycle hooks run with the tables in place", "[runner][lifecycle]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    counters c;
    append_ticket(store, "t-1", "bug", 0, false);
    pj::runner<counted> r(store, storage, counted_with(c));
    r.init();
    CHECK(c.init == 1);
    auto table = storage.find_table<counted::table>("counted_v1");
    REQUIRE(table.has_value());
    CHECK(table->contains("seed"));
    r.catch_up();
    CHECK(table->size() == 2);
    r.reset();
    CHECK(c.reset == 1);
    CHECK(table->empty());
    r.remove();
    CHECK(c.remove == 1);
    CHECK_FALSE(storage.has_table("counted_v1"));
}

TEST_CASE("reset empties one version's tables and checkpoint and leaves the other intact", "[runner][lifecycle]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 1, false);
    append_ticket(store, "t-2", "task", 0, true);
    pj::runner<tickets<1>> v1(store, storage);
    pj::runner<tickets<2>> v2(store, storage);
    v1.catch_up();
    v2.catch_up();
    v2.make_live();

    v2.reset();
    auto t1 = storage.find_table<tickets<1>::table>("tickets_v1");
    auto t2 = storage.find_table<tickets<2>::table>("tickets_v2");
    CHECK(t2->empty());
    CHECK(v2.position() == 0);
    CHECK(v2.status().state == pj::projection_state::initialized);
    CHECK_FALSE(v2.status().live);  // a replay must not re-emit history
    CHECK(t1->size() == 2);
    CHECK(v1.position() == store.head());

    CHECK(v2.catch_up() == store.head());
    CHECK(t2->find("t-1")->reopened == 1);
}

TEST_CASE("remove drops only that version's own tables, checkpoint and catalog row", "[runner][lifecycle]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 1, false);
    pj::runner<tickets<1>, pj::per_aggregate> v1(store, storage);
    pj::runner<tickets<2>, pj::per_aggregate> v2(store, storage);
    v1.catch_up();
    v2.catch_up();

    v1.remove();
    CHECK_FALSE(storage.has_table("tickets_v1"));
    CHECK(storage.find_catalog("tickets_v1")->state == pj::projection_state::deleted);  // a tombstone
    CHECK(v1.status().state == pj::projection_state::deleted);
    CHECK(v1.position() == 0);
    CHECK(v1.status().aggregates_tracked == 0);
    // v2 is untouched.
    REQUIRE(storage.has_table("tickets_v2"));
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->find("t-1")->reopened == 1);
    CHECK(storage.find_catalog("tickets_v2").has_value());
    CHECK(v2.catch_up() == 0);
    // A removed version can be brought back by init and rebuilt.
    v1.init();
    CHECK(v1.catch_up() == 2);  // registered + closed; v1 ignores reopened
    CHECK(storage.find_table<tickets<1>::table>("tickets_v1")->find("t-1")->status == "closed");
}

TEST_CASE("a version whose table was dropped behind the catalog says so, and reset or remove repairs it",
          "[runner][lifecycle]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 1, false);
    {
        pj::runner<tickets<1>> v1(store, storage);
        v1.catch_up();
    }
    REQUIRE(storage.open("someone").drop_table("tickets_v1"));

    // A process starts: the runner is made, and its status says what is wrong and what to run.
    pj::runner<tickets<1>> v1(store, storage);
    const std::string why =
        "projectionist: tickets_v1 is caught_up in the catalog, but its table tickets_v1 is missing; reset "
        "tickets_v1 to make its tables again and replay the log, or delete it";
    CHECK(v1.status().error == why);
    CHECK_THROWS_WITH(v1.catch_up(), why);
    CHECK_THROWS_WITH(v1.backfill(), why);
    CHECK_FALSE(storage.has_table("tickets_v1"));  // nothing made it again behind the operator's back

    v1.reset();
    CHECK_FALSE(v1.status().error.has_value());
    CHECK(v1.catch_up() == 2);
    CHECK(storage.find_table<tickets<1>::table>("tickets_v1")->find("t-1")->status == "closed");

    // remove repairs it too
    pj::runner<tickets<2>> v2(store, storage);
    v2.catch_up();
    REQUIRE(storage.open("someone").drop_table("tickets_v2"));
    pj::runner<tickets<2>> again(store, storage);
    CHECK(again.status().error.has_value());
    again.remove();
    CHECK(storage.find_catalog("tickets_v2")->state == pj::projection_state::deleted);
    CHECK_FALSE(again.status().error.has_value());
}

/// No table: it counts in a member, as a projection that only feeds a metric or emits might.
struct tableless : pj::projection<"tableless", 1, ticket_stream> {
    int registered = 0;
    void on(const ticket_registered&, auto&) { ++registered; }
};

TEST_CASE("a projection without tables has a life cycle too", "[runner][lifecycle]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 1, false);
    append_ticket(store, "t-2", "bug", 0, true);
    pj::runner<tableless> r(store, storage);
    CHECK(r.catch_up() == 2);
    CHECK(r.projection().registered == 2);
    CHECK_FALSE(r.status().error.has_value());
    pj::runner<tableless> again(store, storage);  // opens its (no) tables: nothing is missing
    CHECK_FALSE(again.status().error.has_value());
    again.reset();
    CHECK(again.catch_up() == 2);
    again.remove();
    CHECK(storage.find_catalog("tableless_v1")->state == pj::projection_state::deleted);
}

TEST_CASE("remove does not drop a table the catalog does not list as the version's own", "[runner][lifecycle]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    pj::runner<tickets<1>> v1(store, storage);
    v1.init();
    // Someone else's table that happens to share the prefix.
    auto other = storage.open("someone_else");
    other.create_table<tickets<1>::table>("tickets_v1_archive");
    v1.remove();
    CHECK_FALSE(storage.has_table("tickets_v1"));
    CHECK(storage.has_table("tickets_v1_archive"));
}

TEST_CASE("run follows new events until stopped", "[runner]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    pj::runner<tickets<2>> r(store, storage, pj::runner_options{50, 200ms});
    std::stop_source stop;
    std::thread worker([&] { r.run(stop.get_token()); });
    for (int i = 0; i < 200; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", 0, i % 2 == 0);
    // The store wakes the runner on append; wait (bounded) until it has seen everything.
    for (int i = 0; i < 400 && r.status().position < store.head(); ++i) std::this_thread::sleep_for(5ms);
    stop.request_stop();
    worker.join();
    CHECK(r.status().position == store.head());
    CHECK(r.status().events_applied == 300);
    auto lock = storage.lock_shared("tickets_v2");
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->size() == 200);
}

TEST_CASE("make_live is persisted and needs an initialized projection", "[runner][lifecycle]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    {
        pj::runner<tickets<2>, pj::manual_kickoff> v2(store, storage);
        CHECK_THROWS_AS(v2.make_live(), pj::state_error);
        v2.init();
        v2.backfill();
        v2.make_live();
        CHECK(v2.status().live);
        CHECK(v2.status().state == pj::projection_state::caught_up);  // live is a flag, not a state
    }
    pj::runner<tickets<2>, pj::manual_kickoff> again(store, storage);
    CHECK(again.status().live);
    CHECK(again.status().state == pj::projection_state::caught_up);
    CHECK(storage.find_catalog("tickets_v2")->live);
}

TEST_CASE("a partition slice needs a per-aggregate projection and a storage with partition checkpoints",
          "[runner][slice]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    auto sliced = [](std::uint32_t index, std::uint32_t count) {
        pj::runner_options o;
        o.slice = pj::partition_slice{count, index};
        return o;
    };
    // Memory storage keeps one checkpoint per projection: it cannot hold a partition's.
    CHECK_THROWS_WITH((pj::runner<tickets<2>, pj::per_aggregate>(store, storage, sliced(1, 4))),
                      Catch::Contains("'tickets_v2'") && Catch::Contains("checkpoint per partition"));
    // A global projection is never split.
    CHECK_THROWS_WITH((pj::runner<tickets<2>, pj::global>(store, storage, sliced(1, 4))),
                      Catch::Contains("on a global projection"));
    CHECK_THROWS_WITH((pj::runner<tickets<2>, pj::per_aggregate>(store, storage, sliced(4, 4))),
                      Catch::Contains("partition slice 4/4 is invalid"));
    // The whole slice (the default) is every aggregate: any storage.
    pj::runner<tickets<2>, pj::per_aggregate> whole(store, storage, sliced(0, 1));
    CHECK(whole.slice().whole());
}

}  // namespace runner_lifecycle_test
