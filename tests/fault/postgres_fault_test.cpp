// What the PostgreSQL backend does with a log edited by hand (a type row deleted, a type id,
// aggregate number, position or payload that no store writes) and with a server that goes away
// under a runner (its backend terminated, the server restarted): the error's kind and words,
// that nothing is applied as what it is not, and that a runner started afterwards resumes from
// the last committed position, applying every event once.
//
// The server is the suite's own (fixture postgres_fault), since one case restarts it.

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <fault_support.hpp>
#include <postgres_test_support.hpp>
#include <projectionist/postgres.hpp>
#include <projectionist/sqlite.hpp>
#include <tickets_domain.hpp>

namespace pj = projectionist;
using namespace tickets_domain;
using namespace fault_test;
using Catch::Contains;
using postgres_test::pg_url;

namespace {

/// A log of append_history, damaged by `damage` (SQL run in the log's schema with the foreign
/// keys off, as someone editing it by hand could), then opened again by a store and a storage.
struct damaged_log {
    postgres_test::scoped_schema schema;
    std::optional<pj::postgres_event_store> store;
    std::optional<pj::postgres_storage> storage;

    explicit damaged_log(const std::string& damage) {
        {
            pj::postgres_event_store writer(pg_url(), schema.options());
            append_history(writer);
        }
        schema.connection().exec(
            fmt::format("SET search_path = {}; SET session_replication_role = replica; {}; RESET "
                        "session_replication_role; RESET search_path",
                        schema.quoted(), damage));
        store.emplace(pg_url(), schema.options());
        storage.emplace(pg_url(), schema.options());
    }

    /// The error a runner of `Projection` with `Policies` stops with, after checking that it
    /// committed exactly the events before position `stopped_after`.
    template <class Projection, class... Policies>
    std::string stop_of(std::uint64_t stopped_after) {
        pj::runner<Projection, pj::postgres_storage, Policies...> r(*store, *storage, one_by_one());
        const std::string what = projection_error_of([&] { r.catch_up(); });
        REQUIRE(r.status().error);
        CHECK(r.position() == stopped_after);
        return what;
    }
};

}  // namespace

// ---- Damaged rows: named with their position and cause, never applied as something else ----

TEST_CASE("postgres: an event whose type row was deleted stops the runner, naming position and type id",
          "[fault][postgres][types]") {
    damaged_log log("DELETE FROM projectionist_event_types WHERE name = 'ticket.closed'");  // id 2 of 1..3
    CHECK_THAT(log.stop_of<tickets<2>>(2),
               Contains("position 3") && Contains("type id 2") && Contains("projectionist_event_types"));
    CHECK(rows_of(*log.storage, "tickets_v2") == first_two);
}

TEST_CASE("postgres: with skip_to_dead_letter a type id with no type row is a dead letter",
          "[fault][postgres][types]") {
    damaged_log log("UPDATE projectionist_events SET type_id = 77 WHERE position = 4");
    pj::runner<tickets<2>, pj::postgres_storage, pj::skip_to_dead_letter> r(*log.store, *log.storage, one_by_one());
    r.catch_up();
    CHECK_FALSE(r.status().error);
    CHECK(r.position() == 5);
    const auto dead = r.dead_letters();
    REQUIRE(dead.size() == 1);
    CHECK(dead[0].position == 4);
    CHECK_THAT(dead[0].reason, Contains("type id 77"));
    // The reopening at 4 was not applied as anything; the close at 5 is still a close.
    CHECK(rows_of(*log.storage, "tickets_v2") ==
          std::vector<ticket_row>{{"t-1", "bug", "closed", 0}, {"t-2", "task", "closed", 0}});
}

TEST_CASE("postgres: an aggregate number that is not its aggregate's is refused, naming position and field",
          "[fault][postgres][validate]") {
    for (const std::int64_t number : {std::int64_t{1}, std::int64_t{100'000'000'000}, std::int64_t{-1}}) {
        DYNAMIC_SECTION("aggregate_number " << number) {
            // Position 3 is t-1's (number 0); 1 is t-2's.
            damaged_log log(
                fmt::format("UPDATE projectionist_events SET aggregate_number = {} WHERE position = 3", number));
            CHECK_THAT((log.stop_of<tickets<2>, pj::per_aggregate>(2)),
                       Contains("position 3") && Contains("aggregate_number") && Contains(std::to_string(number)));
            CHECK(rows_of(*log.storage, "tickets_v2") == first_two);
        }
    }
}

TEST_CASE("postgres: an event at a position below 1 is refused, not passed over", "[fault][postgres][validate]") {
    damaged_log log(
        "INSERT INTO projectionist_events(position, stream, aggregate_id, aggregate_number, aggregate_version, "
        "type_id, schema_version, payload, recorded_at) SELECT -4, stream, aggregate_id, aggregate_number, 9, "
        "type_id, schema_version, payload, recorded_at FROM projectionist_events WHERE position = 1");
    CHECK_THAT(log.stop_of<tickets<2>>(0), Contains("position -4") && Contains("positions start at 1"));
}

TEST_CASE("postgres: a corrupt or truncated payload stops the runner at its position", "[fault][postgres][payload]") {
    for (const char* damage : {"'\\x01ff'::bytea", "substr(payload, 1, 3)"}) {
        DYNAMIC_SECTION("payload = " << damage) {
            damaged_log log(fmt::format("UPDATE projectionist_events SET payload = {} WHERE position = 3", damage));
            CHECK_THAT(log.stop_of<tickets<2>>(2), Contains("position 3") && Contains("ticket.closed"));
            CHECK(rows_of(*log.storage, "tickets_v2") == first_two);
        }
    }
}

TEST_CASE("postgres: append refuses a payload over the limit that reads refuse", "[fault][postgres][payload]") {
    postgres_test::scoped_schema schema;
    pj::postgres_options small = schema.options();
    small.max_payload_bytes = 1000;
    pj::postgres_event_store store(pg_url(), small);
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", std::string(900, 'x')});
    try {
        store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", std::string(2000, 'x')});
        FAIL("no error");
    } catch (const pj::codec_error& e) {
        CHECK_THAT(std::string(e.what()), Contains("ticket.registered") && Contains("limit of 1000 bytes") &&
                                              Contains("nothing was appended"));
    }
    auto batch = store.new_batch();
    batch.add(ticket_stream{}, "t-3", 0, ticket_registered{"t-3", "bug"});
    batch.add(ticket_stream{}, "t-4", 0, ticket_registered{"t-4", std::string(2000, 'x')});
    CHECK_THROWS_AS(store.append(batch), pj::codec_error);
    CHECK(store.head() == 1);
    CHECK_FALSE(store.aggregate_number(ticket_stream{}, "t-2"));
    CHECK_FALSE(store.aggregate_number(ticket_stream{}, "t-3"));
    // The default limit is the same on both sides: 16 MiB.
    CHECK(pj::postgres_options{}.max_payload_bytes == pj::sqlite_options{}.max_payload_bytes);
}

// ---- The server goes away under a runner ----

namespace {

/// tickets<2>'s handlers; before the `at`-th event it sees (from 1) it runs `hit` with its
/// session's connection: a fault in the middle of a batch.
struct faulty : pj::projection<"faulty", 1, ticket_stream> {
    using table = ticket_table;
    int at = 0;
    std::function<void(pj::detail::pg::connection&)> hit;
    int seen = 0;

    void before(auto& ctx) {
        if (++seen == at) hit(ctx.storage().connection());
    }
    void on(const ticket_registered& e, auto& ctx) {
        before(ctx);
        ctx.table().insert({e.ticket_id, e.type, "open", 0});
    }
    void on(const ticket_closed& e, auto& ctx) {
        before(ctx);
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
    }
    void on(const ticket_reopened& e, auto& ctx) {
        before(ctx);
        ctx.table().update(e.ticket_id, [](ticket_row& r) {
            r.status = "open";
            ++r.reopened;
        });
    }
};

/// Runs a skip_to_dead_letter runner of `faulty` whose `hit` takes the server away at the third
/// event: it must stop with a storage_error that names the cause (never a dead letter); then a
/// runner on new connections resumes from position 2 and applies every event once.
void survives(const std::function<void(pj::detail::pg::connection&)>& hit, const std::string& cause) {
    watchdog bound(std::chrono::seconds(120));
    postgres_test::scoped_schema schema;
    {
        pj::postgres_event_store store(pg_url(), schema.options());
        append_history(store);
        pj::postgres_storage storage(pg_url(), schema.options());
        faulty f;
        f.at = 3;
        f.hit = hit;
        pj::runner<faulty, pj::postgres_storage, pj::skip_to_dead_letter> r(store, storage, f, one_by_one());
        try {
            r.catch_up();
            FAIL("no error");
        } catch (const pj::projection_error& e) {
            CHECK_THAT(e.reason(), Contains(cause));
            CHECK_FALSE(e.context().position);  // the server's failure, not the event's
        }
        REQUIRE(r.status().error);
        CHECK_THAT(*r.status().error, Contains(cause));
        CHECK(r.status().events_dead_lettered == 0);
        CHECK(r.position() == 2);
    }
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_storage storage(pg_url(), schema.options());
    pj::runner<faulty, pj::postgres_storage, pj::skip_to_dead_letter> r(store, storage, one_by_one());
    CHECK(r.position() == 2);
    CHECK(r.dead_letters().empty());
    r.catch_up();
    CHECK(r.position() == 5);
    CHECK(rows_of(storage, "faulty_v1") == whole_history);
}

}  // namespace

TEST_CASE("postgres: a backend terminated mid-batch stops the runner with the cause; a new runner resumes",
          "[fault][postgres][connection]") {
    survives(
        [](pj::detail::pg::connection& session) {
            postgres_test::raw_connection().exec(fmt::format("SELECT pg_terminate_backend({})", session.backend_pid()));
        },
        "connection");
}

TEST_CASE("postgres: a server restarted mid-backfill stops the runner with the cause; a new runner resumes",
          "[fault][postgres][connection]") {
    if (const char* env = std::getenv("PROJECTIONIST_PG_URL"); env && *env) {
        WARN("not run: PROJECTIONIST_PG_URL names a server this test may not restart");
        return;
    }
    survives(
        [](pj::detail::pg::connection&) {
            const std::string command = fmt::format("'{}' restart '{}' >/dev/null", PROJECTIONIST_PG_CLUSTER_SCRIPT,
                                                    PROJECTIONIST_PG_STATE_DIR);
            REQUIRE(std::system(command.c_str()) == 0);
        },
        "connection");
}

TEST_CASE("postgres: a wrong connection string names the server it could not reach", "[fault][postgres][connection]") {
    try {
        pj::postgres_event_store store("postgresql://nobody@127.0.0.1:1/none");
        FAIL("no error");
    } catch (const pj::postgres_error& e) {
        CHECK_THAT(std::string(e.what()), Contains("cannot connect") && Contains("127.0.0.1"));
    }
}

// ---- Two processes start one version at once ----

TEST_CASE("postgres: two runners initializing and catching up one version at once", "[fault][postgres][concurrent]") {
    watchdog bound(std::chrono::seconds(120));
    postgres_test::scoped_schema schema;
    two_runners_of_one_version([&] { return std::make_unique<pj::postgres_event_store>(pg_url(), schema.options()); },
                               [&] { return std::make_unique<pj::postgres_storage>(pg_url(), schema.options()); });
}

// ---- The catalog is checked before it is acted on ----

TEST_CASE("postgres: a catalog row edited to list a table the version does not own: delete refuses, dropping nothing",
          "[fault][postgres][catalog]") {
    damaged_log log("SELECT 1");
    pj::runner<tickets<2>, pj::postgres_storage> r(*log.store, *log.storage, one_by_one());
    r.catch_up();
    log.schema.connection().exec(
        fmt::format("UPDATE {}.projectionist_catalog SET tables = 'tickets_v2' || chr(10) || "
                    "'projectionist_events' WHERE name = 'tickets_v2'",
                    log.schema.quoted()));
    try {
        r.remove();
        FAIL("no error");
    } catch (const pj::error& e) {
        CHECK_THAT(std::string(e.what()), Contains("'projectionist_events'") && Contains("nothing was dropped"));
    }
    CHECK(log.store->head() == 5);
    CHECK(rows_of(*log.storage, "tickets_v2") == whole_history);
}

TEST_CASE("postgres: a version deleted while another process runs it: the runner stops saying so, nothing is left",
          "[fault][postgres][catalog]") {
    watchdog bound(std::chrono::seconds(120));
    postgres_test::scoped_schema schema;
    delete_under_a_running_runner(
        [&] { return std::make_unique<pj::postgres_event_store>(pg_url(), schema.options()); },
        [&] { return std::make_unique<pj::postgres_storage>(pg_url(), schema.options()); },
        [&] {
            const std::string s = schema.quoted();
            auto count = [&](const std::string& sql) { return postgres_test::scalar(schema.connection(), sql); };
            return fmt::format(
                "{} checkpoints, {} tables, {} dead letters",
                count(fmt::format("SELECT count(*) FROM {}.projectionist_checkpoints", s)),
                count(fmt::format("SELECT count(*) FROM pg_tables WHERE schemaname = '{}' AND tablename LIKE "
                                  "'tickets_v2%'",
                                  schema.name())),
                count(fmt::format("SELECT count(*) FROM {}.projectionist_dead_letters", s)));
        });
}
