// Reading the PostgreSQL log never skips an event that a concurrent writer commits late.
//
// The hazard: appends take positions in one order and commit in another; a reader that saw
// N+1 while N was still open moves past N for ever. The store lets appends run concurrently and
// guards the reader instead (store/postgres_event_writer.hpp: an event is given to a reader only
// once every append that reserved a lower position has ended). These tests show the hazard with
// a plain sequence and with the store's own table read without the guard, then hammer the
// store: 16 concurrent appenders, aborted transactions, one transaction held open for seconds,
// while a runner and a guarded reader follow the log (nothing missed, nothing twice, in order)
// and an unguarded reader follows it too and misses the held transaction's event, which shows
// that the test fails without the guard. An append that fails inside its reservation (by
// lock_timeout or a cancel) leaves no lock held. Last, schemas of versions 3 and 5 are upgraded
// when opened.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>

#include <postgres_test_support.hpp>
#include <projectionist/projectionist.hpp>
#include <projectionist/store/postgres_event_store.hpp>
#include <tickets_domain.hpp>

namespace postgres_gap_test {

namespace pj = projectionist;
using namespace tickets_domain;
using postgres_test::pg_url;
using postgres_test::scoped_schema;
using namespace std::chrono_literals;

namespace {

/// How often the projection applied each position: a global, as the runner owns the projection.
struct application_log {
    std::mutex mutex;
    std::map<std::uint64_t, int> count;
    void applied(std::uint64_t position) {
        std::lock_guard lock(mutex);
        ++count[position];
    }
};
application_log applications;

struct followed_ticket {
    BOOST_HANA_DEFINE_STRUCT(followed_ticket, (std::string, ticket_id), (std::string, type), (std::string, status),
                             (int, reopened), (std::int64_t, version));
    friend bool operator==(const followed_ticket&, const followed_ticket&) = default;
};

/// tickets<2>, plus the last aggregate version applied and a count of applications per event.
struct followed_tickets : pj::projection<"followed_tickets", 1, ticket_stream> {
    using table = pj::table<followed_ticket, &followed_ticket::ticket_id>;

    void on(const ticket_registered& e, auto& ctx) {
        applications.applied(ctx.envelope().position);
        ctx.table().insert({e.ticket_id, e.type, "open", 0, applied_version(ctx)});
    }
    void on(const ticket_closed& e, auto& ctx) {
        applications.applied(ctx.envelope().position);
        const auto v = applied_version(ctx);
        ctx.table().update(e.ticket_id, [&](followed_ticket& r) {
            r.status = "closed";
            r.version = v;
        });
    }
    void on(const ticket_reopened& e, auto& ctx) {
        applications.applied(ctx.envelope().position);
        const auto v = applied_version(ctx);
        ctx.table().update(e.ticket_id, [&](followed_ticket& r) {
            r.status = "open";
            ++r.reopened;
            r.version = v;
        });
    }
    static std::int64_t applied_version(auto& ctx) {
        return static_cast<std::int64_t>(ctx.envelope().aggregate_version);
    }
};

}  // namespace

TEST_CASE("the hazard is real: a plain sequence lets a reader skip an event committed late", "[postgres][gap]") {
    scoped_schema schema;
    const std::string log = schema.quoted() + ".log";
    auto& setup = schema.connection();
    setup.exec("CREATE TABLE " + log + "(position bigserial PRIMARY KEY, what text NOT NULL)");
    pj::detail::pg::connection slow(pg_url()), fast(pg_url()), reader(pg_url());

    slow.exec("BEGIN");
    slow.exec("INSERT INTO " + log + "(what) VALUES ('slow')");  // takes position 1, stays open
    fast.exec("INSERT INTO " + log + "(what) VALUES ('fast')");  // takes 2, commits at once
    // The reader sees 2 and moves its checkpoint there...
    const std::int64_t checkpoint = postgres_test::scalar(reader, "SELECT max(position) FROM " + log);
    CHECK(checkpoint == 2);
    slow.exec("COMMIT");
    // ...so it never reads 1, although 1 is committed now.
    CHECK(postgres_test::scalar(
              reader, "SELECT count(*) FROM " + log + " WHERE position > " + std::to_string(checkpoint)) == 0);
    CHECK(postgres_test::scalar(reader, "SELECT count(*) FROM " + log + " WHERE position = 1") == 1);
}

/// The positions after `after` in the store's table, read WITHOUT the reader's guard: what a
/// reader that trusts positions alone would be given.
std::vector<std::uint64_t> unguarded_positions(const pj::detail::pg::connection& db, const std::string& schema,
                                               std::uint64_t after, int limit) {
    pj::detail::pg::params p;
    p.add(static_cast<std::int64_t>(after)).add(limit);
    auto r = db.query(
        "SELECT position FROM " + schema + ".projectionist_events WHERE position > $1 ORDER BY position LIMIT $2", p);
    std::vector<std::uint64_t> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(static_cast<std::uint64_t>(r.int64(i, 0)));
    return out;
}

TEST_CASE("an append held open stops no other appender, and the guard keeps readers from skipping it",
          "[postgres][gap]") {
    scoped_schema schema;
    pj::postgres_options options = schema.options();
    options.lock_timeout = 1s;  // an appender made to wait for the open transaction would fail
    pj::postgres_event_store reader(pg_url(), options);
    pj::postgres_event_store fast(pg_url(), options);
    auto slow_connection = pj::detail::pg::open_database(pg_url(), options);
    auto slow = reader.writer_on(slow_connection);
    pj::detail::pg::connection raw(pg_url());

    // As a runner's emission does: an append inside a transaction that stays open.
    slow_connection.exec("BEGIN");
    CHECK(slow.append(ticket_stream{}, "slow", 0, ticket_registered{"slow", "bug"}).first_position == 1);
    // Another appender does not wait for it: it commits position 2 at once.
    CHECK(fast.append(ticket_stream{}, "fast", 0, ticket_registered{"fast", "bug"}).first_position == 2);
    CHECK(fast.append(ticket_stream{}, "fast", 1, ticket_closed{"fast"}).first_position == 3);
    CHECK(slow_connection.in_transaction());

    // Without the guard a reader is given 2 and 3 now, moves its checkpoint to 3 and never
    // reads 1: the hazard, in the store's own table.
    const auto unguarded = unguarded_positions(raw, schema.quoted(), 0, 10);
    CHECK(unguarded == std::vector<std::uint64_t>{2, 3});
    // With it, nothing is given while position 1 can still commit.
    CHECK(reader.head() == 0);
    pj::postgres_event_store::batch batch;
    reader.read(0, 10, batch);
    CHECK(batch.empty());

    slow_connection.exec("COMMIT");
    CHECK(unguarded_positions(raw, schema.quoted(), 3, 10).empty());  // the unguarded reader skipped 1
    CHECK(reader.head() == 3);
    reader.read(0, 10, batch);
    REQUIRE(batch.size() == 3);
    CHECK(batch[0].aggregate_id() == "slow");
    CHECK(batch[0].position() == 1);
    CHECK(batch[1].position() == 2);
    CHECK(batch[2].position() == 3);
}

TEST_CASE("an append held open holds back only the readers of positions above its block", "[postgres][gap]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    auto side = pj::detail::pg::open_database(pg_url(), schema.options());
    auto slow = store.writer_on(side);
    CHECK(store.append(ticket_stream{}, "a", 0, ticket_registered{"a", "bug"}).first_position == 1);
    CHECK(store.append(ticket_stream{}, "a", 1, ticket_closed{"a"}).first_position == 2);
    side.exec("BEGIN");
    CHECK(slow.append(ticket_stream{}, "slow", 0, ticket_registered{"slow", "bug"}, ticket_closed{"slow"})
              .first_position == 3);
    CHECK(store.append(ticket_stream{}, "b", 0, ticket_registered{"b", "bug"}).first_position == 5);

    // Everything below the open block is readable; nothing from it on.
    CHECK(store.head() == 2);
    pj::postgres_event_store::batch batch;
    store.read(0, 10, batch);
    REQUIRE(batch.size() == 2);
    CHECK(batch[1].position() == 2);
    store.read(2, 10, batch);
    CHECK(batch.empty());

    side.exec("COMMIT");
    CHECK(store.head() == 5);
    store.read(2, 10, batch);
    REQUIRE(batch.size() == 3);
    CHECK(batch[0].position() == 3);
    CHECK(batch[0].aggregate_id() == "slow");
    CHECK(batch[2].position() == 5);
}

TEST_CASE("transactions open elsewhere on the server hold no reader back: a process reads its own appends at once",
          "[postgres][gap]") {
    scoped_schema schema, other_schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_event_store other_log(pg_url(), other_schema.options());
    // A transaction that has written elsewhere (it holds a transaction id) and stays open...
    pj::detail::pg::connection elsewhere(pg_url());
    elsewhere.exec("BEGIN; CREATE TABLE " + other_schema.quoted() + ".busy(x integer); INSERT INTO " +
                   other_schema.quoted() + ".busy VALUES (1)");
    // ...and an append held open in another event log of the same database.
    auto side = pj::detail::pg::open_database(pg_url(), other_schema.options());
    auto other_writer = other_log.writer_on(side);
    side.exec("BEGIN");
    CHECK(other_writer.append(ticket_stream{}, "held", 0, ticket_registered{"held", "bug"}).first_position == 1);

    // Read after write in one process: each append is readable as soon as it returns.
    for (std::uint64_t i = 1; i <= 5; ++i) {
        const std::string id = "t-" + std::to_string(i);
        const auto r = store.append(ticket_stream{}, id, 0, ticket_registered{id, "bug"});
        CHECK(r.first_position == i);
        CHECK(store.head() == i);
        pj::postgres_event_store::batch batch;
        store.read(i - 1, 10, batch);
        REQUIRE(batch.size() == 1);
        CHECK(batch[0].aggregate_id() == id);
    }
    // The other log's own readers wait for its open append, and only they do.
    CHECK(other_log.head() == 0);
    side.exec("COMMIT");
    CHECK(other_log.head() == 1);
    elsewhere.exec("ROLLBACK");
}

TEST_CASE("an append that rolls back leaves a hole that readers pass without waiting", "[postgres][gap]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    auto side = pj::detail::pg::open_database(pg_url(), schema.options());
    auto writer = store.writer_on(side);
    side.exec("BEGIN");
    CHECK(writer.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"}).first_position == 1);
    CHECK(store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"}).first_position == 2);
    CHECK(store.head() == 0);
    side.exec("ROLLBACK");
    CHECK(store.head() == 2);
    pj::postgres_event_store::batch batch;
    store.read(0, 10, batch);
    REQUIRE(batch.size() == 1);
    CHECK(batch[0].position() == 2);
    CHECK_FALSE(store.aggregate_number(ticket_stream{}, "t-1").has_value());
}

/// The number of append locks (projectionist's session-level reservation lock) held on the log
/// of the schema whose oid is `schema_oid`, by any session.
std::int64_t append_locks_held(const pj::detail::pg::connection& raw, std::uint32_t schema_oid) {
    return postgres_test::scalar(
        raw, fmt::format("SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND classid = {}::oid "
                         "AND objid = {}::oid AND objsubid = 2",
                         static_cast<std::uint32_t>(pj::detail::pg::append_lock_class), schema_oid));
}

TEST_CASE("an append that fails while it reserves, by lock_timeout or a cancel, leaves no lock held",
          "[postgres][gap]") {
    scoped_schema schema;
    pj::postgres_options options = schema.options();
    options.lock_timeout = 500ms;  // an appender made to wait for a lock left held would fail
    pj::postgres_event_store store(pg_url(), options);
    auto& raw = schema.connection();
    const auto schema_oid = static_cast<std::uint32_t>(postgres_test::scalar(
        raw, "SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = " + pj::detail::pg::literal(schema.name())));
    CHECK(store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"}).first_position == 1);

    // Another session holds the block lock of the next position, 2, as an append in flight
    // would: the failing append's reservation takes the append lock and position 2, then waits
    // for that block lock with the append lock held, until it fails.
    pj::detail::pg::connection holder(pg_url());
    holder.exec(
        fmt::format("BEGIN; SELECT pg_advisory_xact_lock({}, 2)", pj::detail::pg::block_lock_class(schema_oid)));
    auto side = pj::detail::pg::open_database(pg_url(), options);
    auto failing = store.writer_on(side);
    bool in_callers_transaction = false;
    std::uint64_t next = 3;  // the first position after the failed reservation's block

    SECTION("lock_timeout, a single append") {
        CHECK_THROWS_AS(failing.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"}),
                        pj::postgres_storage_error);
    }
    SECTION("lock_timeout, a batch") {
        auto batch = store.new_batch();
        batch.add(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"})
            .add(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});
        CHECK_THROWS_AS(failing.append(batch), pj::postgres_storage_error);
        next = 4;
    }
    SECTION("lock_timeout, inside a caller's transaction, which goes on") {
        in_callers_transaction = true;
        side.exec("BEGIN");
        CHECK_THROWS_AS(failing.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"}),
                        pj::postgres_storage_error);
        CHECK(side.in_transaction());
    }
    SECTION("a cancel") {
        side.exec("SET lock_timeout = 0");  // waits until cancelled
        const int pid = side.backend_pid();
        std::atomic<bool> seen_waiting{false};
        std::jthread canceller([&] {
            pj::detail::pg::connection c(pg_url());
            const std::string waiting = fmt::format(
                "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE pid = {} AND wait_event_type = 'Lock' AND "
                "wait_event = 'advisory'",
                pid);
            for (int i = 0; i < 3000 && !seen_waiting; ++i) {
                if (postgres_test::scalar(c, waiting) == 1)
                    seen_waiting = true;
                else
                    std::this_thread::sleep_for(10ms);
            }
            c.exec(fmt::format("SELECT pg_cancel_backend({})", pid));
        });
        CHECK_THROWS_AS(failing.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"}),
                        pj::postgres_storage_error);
        canceller.join();
        CHECK(seen_waiting);
    }

    // The failed reservation left no append lock held: another appender goes on at once (it
    // would fail on lock_timeout otherwise), after the failed reservation's positions.
    CHECK(append_locks_held(raw, schema_oid) == 0);
    CHECK(store.append(ticket_stream{}, "t-3", 0, ticket_registered{"t-3", "bug"}).first_position == next);
    std::uint64_t last = next;
    if (in_callers_transaction) {
        CHECK(failing.append(ticket_stream{}, "t-4", 0, ticket_registered{"t-4", "bug"}).first_position == ++last);
        side.exec("COMMIT");
    }
    // The guard holds: readers stop below the block lock still held on 2, then pass the hole.
    CHECK(store.head() == 1);
    holder.exec("ROLLBACK");
    CHECK(store.head() == last);
    pj::postgres_event_store::batch batch;
    store.read(0, 10, batch);
    REQUIRE(batch.size() == last - next + 2);
    CHECK(batch[0].position() == 1);
    CHECK(batch[1].position() == next);
    CHECK_FALSE(store.aggregate_number(ticket_stream{}, "t-2").has_value());
    CHECK(store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}).first_position == last + 1);
}

TEST_CASE(
    "16 concurrent appenders, aborted and long transactions: followers miss nothing and see nothing twice; "
    "without the guard a follower misses events",
    "[postgres][gap]") {
    scoped_schema schema;
    pj::postgres_options options = schema.options();
    options.lock_timeout = 10s;  // two appends to one aggregate take turns; nothing else waits
    constexpr int appenders = 16;
    constexpr int tickets_per_appender = 8;
    constexpr auto held_for = 2500ms;
    {
        std::lock_guard lock(applications.mutex);
        applications.count.clear();
    }
    { pj::postgres_event_store create(pg_url(), options); }
    // A transaction that has written outside the log stays open the whole time: it holds no
    // reader back (read_while_appending below).
    scoped_schema elsewhere_schema;
    pj::detail::pg::connection elsewhere(pg_url());
    elsewhere.exec("BEGIN; CREATE TABLE " + elsewhere_schema.quoted() + ".busy(x integer); INSERT INTO " +
                   elsewhere_schema.quoted() + ".busy VALUES (1)");

    std::atomic<int> appenders_done{0};
    std::atomic<int> aborted{0};
    std::atomic<int> committed_appends{0};
    std::atomic<bool> held_open{false};
    std::atomic<bool> held_committed{false};
    std::atomic<std::uint64_t> held_position{0};
    std::vector<std::string> failures;
    std::mutex failures_mutex;
    auto fail = [&](const std::string& what) {
        std::lock_guard lock(failures_mutex);
        failures.push_back(what);
    };

    // The follower: a runner over memory storage, following the log with run().
    pj::postgres_event_store follower_store(pg_url(), options);
    pj::memory_storage storage;
    pj::runner<followed_tickets, pj::memory_storage, pj::postgres_event_store> runner(follower_store, storage,
                                                                                      pj::runner_options{7, 20ms});
    std::jthread follower([&](std::stop_token stop) { runner.run(stop); });

    std::atomic<bool> readers_may_stop{false};
    // A guarded reader, batches of 5: every batch continues after the last one, in order.
    std::vector<std::uint64_t> read_positions;
    std::size_t read_while_appending = 0;  // proves the reader ran alongside the appenders
    std::jthread guarded_reader([&](std::stop_token stop) {
        try {
            pj::postgres_event_store store(pg_url(), options);
            pj::postgres_event_store::batch batch;
            std::uint64_t after = 0;
            while (!stop.stop_requested()) {
                store.read(after, 5, batch);
                for (const auto& r : batch) {
                    if (r.position() <= after)
                        fail("the reader saw position " + std::to_string(r.position()) + " after " +
                             std::to_string(after));
                    read_positions.push_back(r.position());
                    if (appenders_done < appenders) ++read_while_appending;
                    if (held_open && !held_committed) {
                        if (r.position() >= held_position)
                            fail("the reader was given position " + std::to_string(r.position()) +
                                 " while the append at " + std::to_string(held_position.load()) + " was open");
                    }
                    after = r.position();
                }
                if (batch.empty()) {
                    if (readers_may_stop && after == store.head()) break;
                    std::this_thread::sleep_for(2ms);
                }
            }
        } catch (const std::exception& e) {
            fail(std::string("guarded reader: ") + e.what());
        }
    });
    // The same reader without the guard (the store's table, read by position alone).
    std::vector<std::uint64_t> unguarded_read;
    std::jthread unguarded_reader([&](std::stop_token stop) {
        try {
            pj::detail::pg::connection db(pg_url());
            std::uint64_t after = 0;
            while (!stop.stop_requested()) {
                const auto got = unguarded_positions(db, schema.quoted(), after, 5);
                for (auto position : got) {
                    unguarded_read.push_back(position);
                    after = position;
                }
                if (got.empty()) {
                    if (readers_may_stop) break;
                    std::this_thread::sleep_for(2ms);
                }
            }
        } catch (const std::exception& e) {
            fail(std::string("unguarded reader: ") + e.what());
        }
    });

    {
        std::vector<std::jthread> writers;
        for (int w = 0; w < appenders; ++w)
            writers.emplace_back([&, w] {
                try {
                    std::mt19937 random(static_cast<unsigned>(w) * 7919u + 17u);
                    pj::postgres_event_store store(pg_url(), options);
                    auto side = pj::detail::pg::open_database(pg_url(), options);
                    auto side_writer = store.writer_on(side);
                    for (int t = 0; t < tickets_per_appender; ++t) {
                        const std::string id = "w" + std::to_string(w) + "-t" + std::to_string(t);
                        std::uint64_t v = store.append(ticket_stream{}, id, 0, ticket_registered{id, "bug"}).version;
                        ++committed_appends;
                        for (int step = 0; step < 4; ++step) {
                            if (w == 0 && t == 1 && step == 1) {
                                // Held open for seconds while the other appenders go on.
                                side.exec("BEGIN");
                                const auto r = side_writer.append(ticket_stream{}, id, v, ticket_closed{id});
                                held_position = r.first_position;
                                held_open = true;
                                std::this_thread::sleep_for(held_for);
                                held_committed = true;  // before the commit: a read after it may see it
                                side.exec("COMMIT");
                                v = r.version;
                                ++committed_appends;
                            } else if (random() % 4 == 0) {
                                // Aborted at random: appended in a transaction that rolls back.
                                side.exec("BEGIN");
                                side_writer.append(ticket_stream{}, id, v, ticket_closed{id}, ticket_reopened{id});
                                if (random() % 2 == 0)
                                    std::this_thread::sleep_for(std::chrono::milliseconds(random() % 20));
                                side.exec("ROLLBACK");
                                ++aborted;
                            } else if (step % 2 == 0) {
                                v = store.append(ticket_stream{}, id, v, ticket_closed{id}).version;
                                ++committed_appends;
                            } else {
                                v = store.append(ticket_stream{}, id, v, ticket_closed{id}, ticket_reopened{id})
                                        .version;
                                ++committed_appends;
                            }
                        }
                    }
                } catch (const std::exception& e) {
                    fail("appender " + std::to_string(w) + ": " + e.what());
                }
                ++appenders_done;
            });
    }  // all appenders joined
    REQUIRE(appenders_done == appenders);
    CHECK(held_open);
    CHECK(aborted > 0);

    pj::postgres_event_store final_log(pg_url(), options);
    const std::uint64_t head = final_log.head();
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (runner.status().position < head && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    readers_may_stop = true;
    elsewhere.exec("ROLLBACK");
    guarded_reader.join();
    unguarded_reader.join();
    follower.request_stop();
    follower.join();
    {
        std::lock_guard lock(failures_mutex);
        for (const auto& f : failures) UNSCOPED_INFO(f);
        CHECK(failures.empty());
    }
    REQUIRE_FALSE(runner.status().error.has_value());
    CHECK(runner.position() == head);

    // The final log: every committed append, none of the aborted ones (which left holes).
    pj::postgres_event_store::batch log;
    final_log.read(0, static_cast<std::size_t>(-1), log);
    REQUIRE(!log.empty());
    CHECK(log[log.size() - 1].position() == head);
    std::vector<std::uint64_t> committed;
    for (const auto& r : log) committed.push_back(r.position());
    CHECK(committed.size() < head);  // the aborted appends' positions stay unused

    // The guarded reader saw every committed position once, in order, and only those.
    CHECK(read_positions == committed);
    CHECK(read_while_appending > 0);

    // The unguarded reader moved past the held transaction's position while it was open.
    const std::set<std::uint64_t> seen_unguarded(unguarded_read.begin(), unguarded_read.end());
    std::size_t missed_unguarded = 0;
    for (auto p : committed)
        if (!seen_unguarded.contains(p)) ++missed_unguarded;
    CHECK(missed_unguarded > 0);
    CHECK_FALSE(seen_unguarded.contains(held_position.load()));

    // The runner applied every event exactly once: zero missed, zero applied twice.
    {
        std::lock_guard lock(applications.mutex);
        std::size_t missed = 0, twice = 0;
        for (auto p : committed) {
            const auto it = applications.count.find(p);
            if (it == applications.count.end())
                ++missed;
            else if (it->second != 1)
                ++twice;
        }
        CHECK(missed == 0);
        CHECK(twice == 0);
        CHECK(applications.count.size() == committed.size());
    }

    // The read model equals the reference built from the final log.
    std::map<std::string, followed_ticket> reference;
    for (const auto& r : log) {
        const std::string id(r.aggregate_id());
        if (r.type_name() == "ticket.registered") {
            reference[id] = {id, final_log.event_of<ticket_registered>(r).type, "open", 0,
                             static_cast<std::int64_t>(r.aggregate_version())};
        } else {
            followed_ticket& row = reference.at(id);
            REQUIRE(static_cast<std::int64_t>(r.aggregate_version()) == row.version + 1);  // order per aggregate
            row.version = static_cast<std::int64_t>(r.aggregate_version());
            if (r.type_name() == "ticket.closed") {
                row.status = "closed";
            } else {
                row.status = "open";
                ++row.reopened;
            }
        }
    }
    CHECK(reference.size() == appenders * tickets_per_appender);
    auto table = storage.find_table<followed_tickets::table>("followed_tickets_v1");
    REQUIRE(table.has_value());
    CHECK(table->size() == reference.size());
    std::size_t equal = 0;
    for (const auto& [id, expected] : reference) {
        const std::optional<followed_ticket> row = table->find(id);
        INFO("ticket " << id);
        REQUIRE(row.has_value());
        CHECK(*row == expected);
        if (*row == expected) ++equal;
    }
    CHECK(equal == reference.size());
    std::uint64_t versions = 0;
    for (const auto& [id, row] : reference) versions += static_cast<std::uint64_t>(row.version);
    CHECK(versions == committed.size());
    CHECK(committed_appends > 0);
}

TEST_CASE("a log of schema version 3 is upgraded when opened: its events stay, appends go on after them",
          "[postgres][gap][schema]") {
    scoped_schema schema;
    auto& raw = schema.connection();
    const std::string s = schema.quoted();
    {
        pj::postgres_event_store store(pg_url(), schema.options());
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"}, ticket_closed{"t-2"});
    }
    // Back to what version 3 created: no sequences, no reservation or horizon functions.
    raw.exec("DROP FUNCTION " + s + ".projectionist_head; DROP FUNCTION " + s +
             ".projectionist_read_horizon; DROP FUNCTION " + s + ".projectionist_reserve; DROP SEQUENCE " + s +
             ".projectionist_positions, " + s + ".projectionist_aggregate_numbers; UPDATE " + s +
             ".projectionist_schema SET version = 3");

    pj::postgres_event_store store(pg_url(), schema.options());
    CHECK(postgres_test::scalar(raw, "SELECT version FROM " + s + ".projectionist_schema") ==
          pj::detail::pg::schema_version);
    CHECK(store.head() == 3);
    pj::postgres_event_store::batch batch;
    store.read(0, 10, batch);
    REQUIRE(batch.size() == 3);
    CHECK(batch[2].aggregate_id() == "t-2");
    CHECK(store.append(ticket_stream{}, "t-3", 0, ticket_registered{"t-3", "bug"}).first_position == 4);
    CHECK(store.aggregate_number(ticket_stream{}, "t-3") == std::optional<std::uint64_t>(2));
    CHECK(store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}).first_position == 5);
    CHECK(store.head() == 5);
}

TEST_CASE("a log of schema version 5 is upgraded when opened: the reservation function is added, appends go on",
          "[postgres][gap][schema]") {
    scoped_schema schema;
    auto& raw = schema.connection();
    const std::string s = schema.quoted();
    {
        pj::postgres_event_store store(pg_url(), schema.options());
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    }
    // What version 5 lacks: projectionist_reserve (it reserved with projectionist_reserve_positions).
    raw.exec("DROP FUNCTION " + s + ".projectionist_reserve; UPDATE " + s + ".projectionist_schema SET version = 5");

    pj::postgres_event_store store(pg_url(), schema.options());
    CHECK(postgres_test::scalar(raw, "SELECT version FROM " + s + ".projectionist_schema") ==
          pj::detail::pg::schema_version);
    CHECK(store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}).first_position == 2);
    auto batch = store.new_batch();
    batch.add(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"});
    CHECK(store.append(batch).front().first_position == 3);
    CHECK(store.head() == 3);
}

}  // namespace postgres_gap_test
