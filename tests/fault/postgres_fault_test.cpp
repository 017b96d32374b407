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
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <stdlib.h>
#include <unistd.h>

#include <cli_test_support.hpp>
#include <fault_support.hpp>
#include <postgres_test_support.hpp>
#include <projectionist/cli.hpp>
#include <projectionist/deploy.hpp>
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

// ---- Following the log across a lost connection: reconnect with a bounded backoff ----

namespace {

/// The same events appended to a PostgreSQL log and to an in-memory one, whose runner of
/// tickets<2> (the handlers of `faulty`, without the fault) is the reference read model.
struct mirrored_log {
    pj::memory_event_store reference_log;
    pj::memory_storage reference_storage;

    explicit mirrored_log(pj::postgres_event_store& log) {
        append_history(log);
        append_history(reference_log);
    }
    void append_tickets(pj::postgres_event_store& log, int first, int count) {
        for (int i = first; i < first + count; ++i) {
            const std::string id = "t-" + std::to_string(i);
            tickets_domain::append_ticket(log, id, "bug", i % 3, i % 2 == 0);
            tickets_domain::append_ticket(reference_log, id, "bug", i % 3, i % 2 == 0);
        }
    }
    std::vector<ticket_row> reference() {
        pj::runner<tickets<2>, pj::memory_storage> r(reference_log, reference_storage);
        r.catch_up();
        return rows_of(reference_storage, "tickets_v2");
    }
};

/// The committed position of `faulty_v1` in `schema`, over a connection of its own (-1: none yet,
/// or the server cannot be reached).
std::int64_t committed_position(const postgres_test::scoped_schema& schema) {
    try {
        return postgres_test::scalar(
            postgres_test::raw_connection(),
            fmt::format("SELECT coalesce((SELECT position FROM {}.projectionist_checkpoints WHERE projection = "
                        "'faulty_v1'), -1)",
                        schema.quoted()));
    } catch (const pj::error&) {
        return -1;
    }
}

bool restart_allowed() {
    if (const char* env = std::getenv("PROJECTIONIST_PG_URL"); env && *env) {
        WARN("not run: PROJECTIONIST_PG_URL names a server this test may not restart");
        return false;
    }
    return true;
}

void restart_server() {
    const std::string command =
        fmt::format("'{}' restart '{}' >/dev/null", PROJECTIONIST_PG_CLUSTER_SCRIPT, PROJECTIONIST_PG_STATE_DIR);
    REQUIRE(std::system(command.c_str()) == 0);
}

template <class Predicate>
bool within(std::chrono::seconds limit, Predicate p) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!p()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

}  // namespace

TEST_CASE("postgres: the command line's run reconnects after a server restart mid-batch and goes on",
          "[fault][postgres][connection][reconnect]") {
    if (!restart_allowed()) return;
    watchdog bound(std::chrono::seconds(240));
    postgres_test::scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    mirrored_log history(store);
    pj::postgres_storage storage(pg_url(), schema.options());
    pj::runner_options options = one_by_one();
    options.reconnect = {
        .attempts = 40, .first_delay = std::chrono::milliseconds(100), .max_delay = std::chrono::milliseconds(1000)};
    pj::deployment<pj::runner<faulty, pj::postgres_storage>> app(store, storage, options);
    faulty& f = app.get<faulty>().projection();
    f.at = 3;  // the server restarts while the third event's batch is open
    f.hit = [](pj::detail::pg::connection&) { restart_server(); };

    std::stop_source stop;
    pj::command_line_options cli_options = cli_test::test_options();
    cli_options.stop = stop.get_token();
    pj::command_line cli(cli_options);
    cli.add(app);
    cli_test::outcome run;
    std::thread follower([&] { run = cli_test::run(cli, {"run", "--for", "200s"}); });

    // Once the first five are committed, more events arrive over a connection opened after the restart.
    const bool first = within(std::chrono::seconds(120), [&] { return committed_position(schema) == 5; });
    if (first) {
        pj::postgres_event_store writer(pg_url(), schema.options());
        history.append_tickets(writer, 3, 12);
    }
    const auto head = static_cast<std::int64_t>(history.reference_log.head());
    const bool all = within(std::chrono::seconds(60), [&] { return committed_position(schema) == head; });
    stop.request_stop();
    follower.join();
    INFO(run.out << run.err);
    REQUIRE(first);
    REQUIRE(all);
    CHECK(run.status == 0);
    CHECK_THAT(run.err, Contains("faulty_v1: the connection to the database is lost; reconnecting (attempt 1 of 40 "
                                 "in 100 ms)"));
    CHECK_THAT(run.err, Contains("faulty_v1: reconnected; going on from position 2"));
    CHECK_THAT(run.err, !Contains("faulty_v1: stopped:"));
    const pj::runner_status s = app.get<faulty>().status();
    CHECK_FALSE(s.error);
    CHECK(s.state == pj::projection_state::caught_up);
    // Every event applied once: the handlers of the batch rolled back at the restart ran again,
    // and nothing else did.
    CHECK(s.events_applied == static_cast<std::uint64_t>(head));
    CHECK(f.seen == head + 1);
    CHECK(rows_of(storage, "faulty_v1") == history.reference());
}

TEST_CASE("postgres: run stops with the cause once its attempts to reconnect are used up",
          "[fault][postgres][connection][reconnect]") {
    watchdog bound(std::chrono::seconds(120));
    postgres_test::scoped_schema schema;
    // A role of the test's own, so that its logins can be refused while the server runs.
    auto admin = postgres_test::raw_connection();
    const std::string url = postgres_test::login_role_url(admin, "pj_fault_login");
    pj::postgres_event_store store(url, schema.options());
    append_history(store);
    pj::postgres_storage storage(url, schema.options());
    pj::runner_options options = one_by_one();
    options.reconnect = {
        .attempts = 3, .first_delay = std::chrono::milliseconds(20), .max_delay = std::chrono::milliseconds(40)};
    faulty f;
    f.at = 3;
    f.hit = [&](pj::detail::pg::connection&) {
        // No login for the role from now on, and every connection it has is ended.
        admin.exec("ALTER ROLE pj_fault_login NOLOGIN");
        admin.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'pj_fault_login'");
    };
    pj::runner<faulty, pj::postgres_storage> r(store, storage, f, options);
    std::stop_source stop;
    r.run(stop.get_token());  // returns: the bound is exceeded
    admin.exec("ALTER ROLE pj_fault_login LOGIN");
    const pj::runner_status s = r.status();
    REQUIRE(s.error);
    CHECK(s.state == pj::projection_state::stopped);
    CHECK_THAT(*s.error, Contains("opening it again failed") && Contains("pj_fault_login"));
    CHECK_THAT(s.note, Contains("could not be reached in 3 attempts"));
    CHECK(r.connection_lost());
    CHECK(r.position() == 2);
    CHECK(s.errors[pj::error_kind::connection] == 1);  // one loss, however many attempts
    CHECK(s.errors.total() == 1);
    // Logins allowed again: one attempt brings it back, and it goes on from its checkpoint.
    CHECK(r.reconnect());
    CHECK_FALSE(r.status().error);
    CHECK(r.status().state == pj::projection_state::initialized);  // its catch-up has not finished
    r.catch_up();
    CHECK(r.position() == 5);
    CHECK(rows_of(storage, "faulty_v1") == whole_history);
}

// ---- The server is busy or full: the database's failure, not the event's ----

TEST_CASE("postgres: a batch that outlasts statement_timeout stops the runner, naming the timeout; nothing is lost",
          "[fault][postgres][timeout]") {
    watchdog bound(std::chrono::seconds(120));
    postgres_test::scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    append_history(store);
    pj::postgres_storage storage(pg_url(), schema.options());
    pj::runner<tickets<2>, pj::postgres_storage, pj::skip_to_dead_letter> r(store, storage, one_by_one());
    r.init();
    r.session().connection().exec("SET statement_timeout = 200");
    // Another connection holds the version's table, so the batch's first statement on it waits.
    auto locker = postgres_test::raw_connection();
    locker.exec(fmt::format("BEGIN; LOCK TABLE {}.tickets_v2 IN ACCESS EXCLUSIVE MODE", schema.quoted()));
    try {
        r.catch_up();
        FAIL("no error");
    } catch (const pj::projection_error& e) {
        CHECK_THAT(e.reason(), Contains("canceling statement due to statement timeout") && Contains("timed out"));
        CHECK_FALSE(e.context().position);  // the database's failure, not the event's
    }
    REQUIRE(r.status().error);
    CHECK(r.status().state == pj::projection_state::stopped);
    CHECK_FALSE(r.connection_lost());
    CHECK(r.status().events_dead_lettered == 0);
    CHECK(r.status().errors[pj::error_kind::storage] == 1);
    CHECK(r.status().errors.total() == 1);
    CHECK(r.position() == 0);
    locker.exec("ROLLBACK");
    CHECK(r.dead_letters().empty());
    r.resume();
    r.catch_up();
    CHECK(r.position() == 5);
    CHECK(rows_of(storage, "tickets_v2") == whole_history);
}

namespace {

/// Writes each registration as a row of 64 KiB that does not compress (TOAST would shrink a
/// repeated character to nothing).
struct bulky : pj::projection<"bulky", 1, ticket_stream> {
    using table = ticket_table;
    void on(const ticket_registered& e, auto& ctx) {
        std::string noise(64 * 1024, ' ');
        std::uint64_t x = 0x9E3779B97F4A7C15ull ^ std::hash<std::string>{}(e.ticket_id);
        for (char& c : noise) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c = static_cast<char>('!' + x % 90);
        }
        ctx.table().insert({e.ticket_id, noise, "open", 0});
    }
};

}  // namespace

TEST_CASE("postgres: a full disk under the version's tables stops the runner, naming it; nothing is lost",
          "[fault][postgres][full]") {
    if (const char* env = std::getenv("PROJECTIONIST_PG_URL"); env && *env) {
        WARN("not run: PROJECTIONIST_PG_URL names a server whose disk this test cannot reach");
        return;
    }
    if (::geteuid() != 0) {
        WARN("not run: a full disk needs a small tmpfs for a tablespace, and mounting one needs root");
        return;
    }
    watchdog bound(std::chrono::seconds(120));
    char dir_template[] = "/tmp/projectionist-full-XXXXXX";
    REQUIRE(::mkdtemp(dir_template) != nullptr);
    const std::string dir = dir_template;
    if (std::system(fmt::format("mount -t tmpfs -o size=1m tmpfs '{}'", dir).c_str()) != 0) {
        ::rmdir(dir.c_str());
        WARN("not run: mounting a tmpfs failed (a container without the right to mount?)");
        return;
    }
    REQUIRE(std::system(fmt::format("mkdir '{0}/space' && chown postgres: '{0}/space'", dir).c_str()) == 0);
    auto admin = postgres_test::raw_connection();
    admin.exec("DROP TABLESPACE IF EXISTS pj_fault_full");
    admin.exec(fmt::format("CREATE TABLESPACE pj_fault_full LOCATION '{}/space'", dir));
    {
        postgres_test::scoped_schema schema;
        pj::postgres_event_store store(pg_url(), schema.options());
        for (int i = 0; i < 40; ++i)  // 40 rows of 64 KiB: more than the 1 MiB the tablespace holds
            store.append(ticket_stream{}, fmt::format("t-{}", i), 0, ticket_registered{fmt::format("t-{}", i), "bug"});
        pj::postgres_storage storage(pg_url(), schema.options());
        pj::runner<bulky, pj::postgres_storage, pj::skip_to_dead_letter> r(store, storage, one_by_one());
        r.session().connection().exec("SET default_tablespace = pj_fault_full");
        r.init();
        try {
            r.catch_up();
            FAIL("no error");
        } catch (const pj::projection_error& e) {
            CHECK_THAT(e.reason(), Contains("No space left on device") &&
                                       Contains("a failure of the server, not of the statement"));
            CHECK_FALSE(e.context().position);
        }
        CHECK(r.status().state == pj::projection_state::stopped);
        CHECK(r.status().events_dead_lettered == 0);
        CHECK(r.dead_letters().empty());
        const std::uint64_t stopped_at = r.position();
        CHECK(stopped_at > 0);
        CHECK(stopped_at < 40);
        // What was committed is there, row for row: nothing after the checkpoint, nothing lost before it.
        auto count = postgres_test::scalar(admin, fmt::format("SELECT count(*) FROM {}.bulky_v1", schema.quoted()));
        CHECK(count == static_cast<std::int64_t>(stopped_at));
        r.remove();
    }
    admin.exec("DROP TABLESPACE pj_fault_full");
    CHECK(std::system(fmt::format("umount '{0}' && rmdir '{0}'", dir).c_str()) == 0);
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
