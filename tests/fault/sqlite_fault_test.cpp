// What the SQLite backend does with a log edited by hand (a type row deleted, positions and
// aggregate numbers that no store writes) and with a database that fails (read-only, full):
// the error's kind and words, that nothing is applied as what it is not, and that the read
// model equals the one the events before the stop give.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <fault_support.hpp>
#include <projectionist/sqlite.hpp>
#include <sqlite_test_support.hpp>
#include <tickets_domain.hpp>

namespace sqlite_fault_test {

namespace pj = projectionist;
using namespace tickets_domain;
using namespace fault_test;
using Catch::Contains;
using sqlite_test::temp_dir;

namespace {

const pj::sqlite_options fast{pj::sqlite_synchronous::normal};

/// A log of append_history in a file of its own, damaged by `damage` (SQL run on the file
/// behind the store's back), then opened again by a store and a storage.
struct damaged_log {
    temp_dir dir{sqlite_test::fast_temp_base()};
    std::string file = dir.file("app.db");
    std::optional<pj::sqlite_event_store> store;
    std::optional<pj::sqlite_storage> storage;

    explicit damaged_log(const std::string& damage) {
        {
            pj::sqlite_event_store writer(file, fast);
            append_history(writer);
        }
        sqlite_test::raw_db(file).exec(damage);
        store.emplace(file, fast);
        storage.emplace(file, fast);
    }

    /// The error a runner of `Projection` with `Policies` stops with, after checking that it
    /// committed exactly the events before position `stopped_after`.
    template <class Projection, class... Policies>
    std::string stop_of(std::uint64_t stopped_after, pj::runner_options options = one_by_one()) {
        pj::runner<Projection, pj::sqlite_storage, Policies...> r(*store, *storage, options);
        const std::string what = projection_error_of([&] { r.catch_up(); });
        REQUIRE(r.status().error);
        CHECK(r.position() == stopped_after);
        return what;
    }
};

}  // namespace

// ---- Type ids are mapped by their value ----

TEST_CASE("an event whose type row was deleted stops the runner, naming its position and type id", "[fault][types]") {
    damaged_log log("DELETE FROM projectionist_event_types WHERE name = 'ticket.closed'");  // id 2 of 1..3
    pj::runner<tickets<2>, pj::sqlite_storage> r(*log.store, *log.storage, one_by_one());
    const std::string what = projection_error_of([&] { r.catch_up(); });
    CHECK_THAT(what, Contains("position 3") && Contains("type id 2") && Contains("projectionist_event_types"));
    REQUIRE(r.status().error);
    CHECK_THAT(*r.status().error, Contains("type id 2"));
    CHECK_THAT(r.status().note, Contains("stopped"));
    CHECK(r.position() == 2);
    // Nothing was applied as another type: the events before the stop, as they are.
    CHECK(rows_of(*log.storage, "tickets_v2") == first_two);
}

TEST_CASE("with skip_to_dead_letter an event of a deleted type is a dead letter and later types keep theirs",
          "[fault][types]") {
    damaged_log log("DELETE FROM projectionist_event_types WHERE name = 'ticket.closed'");
    pj::runner<tickets<2>, pj::sqlite_storage, pj::skip_to_dead_letter> r(*log.store, *log.storage, one_by_one());
    r.catch_up();
    CHECK_FALSE(r.status().error);
    CHECK(r.position() == 5);
    const auto dead = r.dead_letters();
    REQUIRE(dead.size() == 2);
    CHECK(dead[0].position == 3);
    CHECK_THAT(dead[0].reason, Contains("type id 2"));
    CHECK(dead[1].position == 5);
    // Position 4 (type id 3) is still a reopening, not a close.
    CHECK(rows_of(*log.storage, "tickets_v2") ==
          std::vector<ticket_row>{{"t-1", "bug", "open", 1}, {"t-2", "task", "open", 0}});
}

TEST_CASE("a type id with no type row is refused by a bulk backfill too", "[fault][types]") {
    damaged_log log("UPDATE projectionist_events SET type_id = 77 WHERE position = 4");
    pj::runner<tickets<2>, pj::sqlite_storage> r(*log.store, *log.storage);  // automatic: bulk while private
    const std::string what = projection_error_of([&] { r.catch_up(); });
    CHECK_THAT(what, Contains("position 4") && Contains("type id 77"));
    CHECK(r.position() < 4);
}

// ---- A failed rollback does not hide the cause; the database's failures are not the event's ----

namespace {

/// Writes rows of 64 KiB; its init hook caps the session's database at a few more pages, so
/// that the second or third row finds it full.
struct bulky : pj::projection<"bulky", 1, ticket_stream> {
    using table = ticket_table;
    void init(auto& ctx) {
        auto& db = ctx.storage().connection();
        pj::detail::sqlite::statement pages(db, "PRAGMA page_count");
        REQUIRE(pages.step());
        const auto count = pages.int64(0);
        pages.reset();
        db.exec(fmt::format("PRAGMA max_page_count={}", count + 40));
    }
    void on(const ticket_registered& e, auto& ctx) {
        ctx.table().insert({e.ticket_id, std::string(64 * 1024, 'x'), "open", 0});
    }
};

/// Registers tickets t-0 .. t-<count - 1>.
void register_tickets(pj::sqlite_event_store& store, int count) {
    for (int i = 0; i < count; ++i)
        store.append(ticket_stream{}, fmt::format("t-{}", i), 0, ticket_registered{fmt::format("t-{}", i), "bug"});
}

}  // namespace

TEST_CASE("a full database is reported as full, not as the rollback that follows", "[fault][full]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("app.db");
    pj::sqlite_event_store store(file, fast);
    pj::sqlite_storage storage(file, fast);
    register_tickets(store, 20);

    pj::runner<bulky, pj::sqlite_storage> r(store, storage, one_by_one());
    r.init();
    CHECK_THROWS_AS(r.catch_up(), pj::projection_error);
    REQUIRE(r.status().error);
    CHECK_THAT(*r.status().error, Contains("database or disk is full") && Contains("is full"));
    CHECK_THAT(*r.status().error, !Contains("ROLLBACK"));
    CHECK(r.status().events_dead_lettered == 0);
    // The committed batches are there, one row per position.
    CHECK(r.position() > 0);
    CHECK(r.position() < 20);
    CHECK(rows_of(storage, "bulky_v1").size() == r.position());
}

TEST_CASE("skip_to_dead_letter over a full database stops instead of dead-lettering", "[fault][full]") {
    watchdog bound(std::chrono::seconds(60));
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("app.db");
    pj::sqlite_event_store store(file, fast);
    pj::sqlite_storage storage(file, fast);
    register_tickets(store, 20);

    pj::runner<bulky, pj::sqlite_storage, pj::skip_to_dead_letter> r(store, storage, one_by_one());
    r.init();
    try {
        r.catch_up();
        FAIL("no error");
    } catch (const pj::projection_error& e) {
        CHECK_THAT(e.reason(), Contains("database or disk is full"));
        CHECK_FALSE(e.context().position);  // not an event's failure
    }
    REQUIRE(r.status().error);
    CHECK(r.dead_letters().empty());
    CHECK(r.status().events_dead_lettered == 0);
    CHECK(rows_of(storage, "bulky_v1").size() == r.position());
}

TEST_CASE("a read-only database stops a skip_to_dead_letter runner with the database's reason", "[fault][readonly]") {
    watchdog bound(std::chrono::seconds(60));
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("app.db");
    pj::sqlite_event_store store(file, fast);
    pj::sqlite_storage storage(file, fast);
    append_history(store);

    pj::runner<tickets<2>, pj::sqlite_storage, pj::skip_to_dead_letter> r(store, storage, one_by_one());
    r.init();
    r.session().connection().exec("PRAGMA query_only=1");  // as a file the process may not write
    try {
        r.catch_up();
        FAIL("no error");
    } catch (const pj::projection_error& e) {
        CHECK_THAT(e.reason(), Contains("is read-only") && Contains(file));
        CHECK_FALSE(e.context().position);
        CHECK_THAT(std::string(e.what()), !Contains("position"));
    }
    REQUIRE(r.status().error);
    CHECK_THAT(*r.status().error, Contains("read-only") && Contains(file));
    CHECK_THAT(r.status().note, Contains("stopped after an error"));
    CHECK(r.status().events_dead_lettered == 0);
    CHECK(r.position() == 0);
    r.session().connection().exec("PRAGMA query_only=0");
    CHECK(r.dead_letters().empty());

    // Writable again: resume() and the runner goes on with every event.
    r.resume();
    r.catch_up();
    CHECK(r.position() == 5);
    CHECK(rows_of(storage, "tickets_v2") ==
          std::vector<ticket_row>{{"t-1", "bug", "open", 1}, {"t-2", "task", "closed", 0}});
}

namespace {

/// Makes its own connection read-only in the middle of a batch, from its second registration on:
/// the handler's write then fails for a reason that is the database's, not the event's.
struct sealing : pj::projection<"sealing", 1, ticket_stream> {
    using table = ticket_table;
    int registered = 0;
    void on(const ticket_registered& e, auto& ctx) {
        if (++registered == 2) ctx.storage().connection().exec("PRAGMA query_only=1");
        ctx.table().insert({e.ticket_id, e.type, "open", 0});
    }
};

}  // namespace

TEST_CASE("a handler's write to a read-only database is not the event's failure", "[fault][readonly]") {
    watchdog bound(std::chrono::seconds(60));
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("app.db");
    pj::sqlite_event_store store(file, fast);
    pj::sqlite_storage storage(file, fast);
    append_history(store);

    pj::runner<sealing, pj::sqlite_storage, pj::skip_to_dead_letter> r(store, storage, one_by_one());
    try {
        r.catch_up();
        FAIL("no error");
    } catch (const pj::projection_error& e) {
        CHECK_THAT(e.reason(), Contains("is read-only") && Contains(file) && Contains("attempt to write a readonly"));
        CHECK_FALSE(e.context().position);
    }
    REQUIRE(r.status().error);
    CHECK_THAT(*r.status().error, !Contains("stopped at position"));
    CHECK(r.status().events_dead_lettered == 0);
    CHECK(r.position() == 1);
    r.session().connection().exec("PRAGMA query_only=0");
    CHECK(r.dead_letters().empty());
    CHECK(rows_of(storage, "sealing_v1") == std::vector<ticket_row>{{"t-1", "bug", "open", 0}});
}

TEST_CASE("a read-only database is a storage_error from the sqlite layer, naming the file", "[fault][readonly]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("app.db");
    pj::sqlite_event_store store(file, fast);
    store.connection().exec("PRAGMA query_only=1");
    try {
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        FAIL("no error");
    } catch (const pj::storage_error& e) {
        CHECK((e.code() & 0xFF) == SQLITE_READONLY);
        CHECK_THAT(std::string(e.what()), Contains("is read-only") && Contains(file));
    }
    // The event's own failure (a constraint) stays a sqlite_error.
    store.connection().exec("PRAGMA query_only=0");
    CHECK_THROWS_AS(store.connection().exec("INSERT INTO projectionist_settings(key, value) VALUES ('codec', 'x')"),
                    pj::sqlite_error);
}

// ---- What the store reads is validated ----

TEST_CASE("an event at a position below 1 is refused, not passed over", "[fault][validate]") {
    damaged_log log(
        "INSERT INTO projectionist_events(position, stream, aggregate_id, aggregate_number, aggregate_version, "
        "type_id, schema_version, payload, recorded_at) SELECT -4, stream, aggregate_id, aggregate_number, 9, "
        "type_id, schema_version, payload, recorded_at FROM projectionist_events WHERE position = 1");
    CHECK_THAT(log.stop_of<tickets<2>>(0), Contains("position -4") && Contains("positions start at 1"));
}

TEST_CASE("an aggregate number that is not its aggregate's is refused, naming position and field",
          "[fault][validate]") {
    for (const std::int64_t number : {std::int64_t{1}, std::int64_t{100'000'000'000}, std::int64_t{-1}}) {
        DYNAMIC_SECTION("aggregate_number " << number) {
            // Position 3 is t-1's (number 0); 1 is t-2's.
            damaged_log log(
                fmt::format("UPDATE projectionist_events SET aggregate_number = {} WHERE position = 3", number));
            CHECK_THAT((log.stop_of<tickets<2>, pj::per_aggregate>(2)),
                       Contains("position 3") && Contains("aggregate_number") && Contains(std::to_string(number)));
            CHECK(rows_of(*log.storage, "tickets_v2") == first_two);
            // Per aggregate with skip_to_dead_letter: a dead letter; t-1 is parked after it.
            pj::runner<tickets<3>, pj::sqlite_storage, pj::per_aggregate, pj::skip_to_dead_letter> s(*log.store,
                                                                                                     *log.storage);
            s.catch_up();
            CHECK_FALSE(s.status().error);
            const auto dead = s.dead_letters();
            REQUIRE_FALSE(dead.empty());
            CHECK(dead[0].position == 3);
            CHECK_THAT(dead[0].reason, Contains("aggregate_number"));
        }
    }
}

TEST_CASE("the store checks every record's aggregate number, and names it first among the fields",
          "[fault][validate]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("app.db");
    {
        // 40 aggregates, one event each: numbers 0..39 at positions 1..40.
        pj::sqlite_event_store writer(file, fast);
        for (int i = 0; i < 40; ++i) {
            const std::string id = fmt::format("t-{}", i);
            writer.append(ticket_stream{}, id, 0, ticket_registered{id, "bug"});
        }
    }
    // Position 25 takes another aggregate's number; position 30 another's and a version out of
    // range, which is named after the aggregate number (the order the checks read fields in).
    sqlite_test::raw_db(file).exec(
        "UPDATE projectionist_events SET aggregate_number = 3 WHERE position = 25; "
        "UPDATE projectionist_events SET aggregate_number = 4, aggregate_version = 0 WHERE position = 30; "
        "UPDATE projectionist_events SET aggregate_version = 0 WHERE position = 35");
    pj::sqlite_event_store store(file, fast);
    pj::sqlite_event_store::batch batch;
    store.read(0, 100, batch);
    REQUIRE(batch.size() == 40);
    for (const auto& r : batch) {
        INFO("position " << r.position());
        if (r.position() == 25 || r.position() == 30) {
            CHECK_THAT(r.defect(), Contains(fmt::format("position {}", r.position())) && Contains("aggregate_number") &&
                                       Contains(fmt::format("'t-{}'", r.position() - 1)));
            CHECK_FALSE(r.type().known);  // no runner applies it as its type
        } else if (r.position() == 35) {
            CHECK_THAT(r.defect(), Contains("position 35") && Contains("aggregate_version 0"));
        } else {
            CHECK(r.defect().empty());
            CHECK(r.type_name() == "ticket.registered");
        }
    }
    // A read that starts mid-log checks the same.
    store.read(26, 10, batch);
    REQUIRE(batch.size() == 10);
    CHECK_THAT(batch[3].defect(), Contains("position 30") && Contains("aggregate_number"));
}

TEST_CASE("a corrupt or truncated payload stops the runner at its position", "[fault][payload]") {
    for (const char* damage : {"x'01ff'", "substr(payload, 1, 3)"}) {
        DYNAMIC_SECTION("payload = " << damage) {
            damaged_log log(fmt::format("UPDATE projectionist_events SET payload = {} WHERE position = 3", damage));
            CHECK_THAT(log.stop_of<tickets<2>>(2), Contains("position 3") && Contains("ticket.closed"));
            CHECK(rows_of(*log.storage, "tickets_v2") == first_two);
        }
    }
}

// ---- The payload limit holds on both sides ----

TEST_CASE("append refuses a payload over the limit that reads refuse", "[fault][payload]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("app.db");
    pj::sqlite_options small = fast;
    small.max_payload_bytes = 1000;
    pj::sqlite_event_store store(file, small);
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", std::string(900, 'x')});
    try {
        store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", std::string(2000, 'x')});
        FAIL("no error");
    } catch (const pj::codec_error& e) {
        CHECK_THAT(std::string(e.what()), Contains("ticket.registered") && Contains("limit of 1000 bytes") &&
                                              Contains("nothing was appended"));
    }
    CHECK(store.head() == 1);
    CHECK_FALSE(store.aggregate_number(ticket_stream{}, "t-2"));

    // The default limit is the same on both sides: 16 MiB.
    pj::sqlite_event_store defaults(dir.file("big.db"), fast);
    CHECK_THROWS_AS(
        defaults.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", std::string((16u << 20) + 1, 'x')}),
        pj::codec_error);
    CHECK(defaults.head() == 0);
}

// ---- Two processes start one version at once ----

TEST_CASE("two runners initializing and catching up one version at once", "[fault][concurrent]") {
    watchdog bound(std::chrono::seconds(120));
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("app.db");
    two_runners_of_one_version([&] { return std::make_unique<pj::sqlite_event_store>(file, fast); },
                               [&] { return std::make_unique<pj::sqlite_storage>(file, fast); });
}

// ---- A type id is never given twice ----

TEST_CASE("after the highest type row was deleted, a new type gets a new id", "[fault][types]") {
    // Position 4 is the only event of ticket.reopened, type id 3, the highest.
    damaged_log log("DELETE FROM projectionist_event_types WHERE name = 'ticket.reopened'");
    log.store->append(ticket_summary_stream{}, "t-1", 0, ticket_status_changed{"t-1", "open"});
    CHECK(sqlite_test::raw_db(log.file).int64(
              "SELECT id FROM projectionist_event_types WHERE name = 'ticket_summary.status_changed'") == 4);
    // The reopening is not read as a status change (of another stream, that tickets<2> would
    // pass over in silence): its type is unknown.
    CHECK_THAT(log.stop_of<tickets<2>>(3), Contains("position 4") && Contains("type id 3"));
}

TEST_CASE("a file of schema version 3 is migrated so that no type id is given twice", "[fault][types]") {
    // The type table of schema version 3 (no AUTOINCREMENT), and its highest row deleted.
    damaged_log log(R"sql(
DROP VIEW events;
CREATE TABLE old_types(id INTEGER PRIMARY KEY, stream TEXT NOT NULL, name TEXT NOT NULL, UNIQUE(stream, name));
INSERT INTO old_types SELECT id, stream, name FROM projectionist_event_types;
DROP TABLE projectionist_event_types;
ALTER TABLE old_types RENAME TO projectionist_event_types;
DELETE FROM sqlite_sequence;
DELETE FROM projectionist_event_types WHERE name = 'ticket.reopened';
PRAGMA user_version = 3;
)sql");
    log.store.reset();
    log.storage.reset();
    pj::sqlite_event_store store(log.file, fast);  // migrates
    store.append(ticket_summary_stream{}, "t-1", 0, ticket_status_changed{"t-1", "open"});
    sqlite_test::raw_db raw(log.file);
    CHECK(raw.int64("PRAGMA user_version") == pj::detail::sqlite::schema_version);
    CHECK(raw.int64("SELECT id FROM projectionist_event_types WHERE name = 'ticket_summary.status_changed'") == 4);
    CHECK(raw.int64("SELECT count(*) FROM events") == 5);  // the view is back (the reopening has no type row)
    pj::sqlite_storage storage(log.file, fast);
    pj::runner<tickets<2>, pj::sqlite_storage> r(store, storage, one_by_one());
    CHECK_THAT(projection_error_of([&] { r.catch_up(); }), Contains("position 4") && Contains("type id 3"));
}

// ---- The catalog is checked before it is acted on ----

TEST_CASE("a catalog row edited to list a table the version does not own: delete refuses, dropping nothing",
          "[fault][catalog]") {
    damaged_log log("");
    pj::runner<tickets<2>, pj::sqlite_storage> r(*log.store, *log.storage, one_by_one());
    r.catch_up();
    sqlite_test::raw_db(log.file).exec(
        "UPDATE projectionist_catalog SET tables = 'tickets_v2' || char(10) || 'projectionist_events' WHERE name = "
        "'tickets_v2'");
    try {
        r.remove();
        FAIL("no error");
    } catch (const pj::error& e) {
        CHECK_THAT(std::string(e.what()), Contains("'projectionist_events'") && Contains("nothing was dropped"));
    }
    CHECK(log.store->head() == 5);
    CHECK(sqlite_test::raw_db(log.file).int64("SELECT count(*) FROM projectionist_events") == 5);
    CHECK(rows_of(*log.storage, "tickets_v2") == whole_history);
}

TEST_CASE("a version deleted while another process runs it: the runner stops saying so, nothing is left",
          "[fault][catalog]") {
    watchdog bound(std::chrono::seconds(120));
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("app.db");
    delete_under_a_running_runner([&] { return std::make_unique<pj::sqlite_event_store>(file, fast); },
                                  [&] { return std::make_unique<pj::sqlite_storage>(file, fast); },
                                  [&] {
                                      sqlite_test::raw_db raw(file);
                                      return fmt::format(
                                          "{} checkpoints, {} tables, {} dead letters",
                                          raw.int64("SELECT count(*) FROM projectionist_checkpoints"),
                                          raw.int64("SELECT count(*) FROM sqlite_schema WHERE name LIKE 'tickets_v2%'"),
                                          raw.int64("SELECT count(*) FROM projectionist_dead_letters"));
                                  });
}

}  // namespace sqlite_fault_test
