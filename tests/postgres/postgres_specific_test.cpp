// What is PostgreSQL's own and not the shared contract of tests/backend (which runs on
// PostgreSQL as backend_postgres): how the schema holds the log (jsonb, bytea, what jsonb cannot
// hold), schemas that are not projectionist's, the schema created once by concurrent openers,
// schema names that need quoting, connection options, writers on another connection and
// same_database, LISTEN/NOTIFY for wait_for_events, the column types of postgres_table and its
// per-batch write buffer (postgres_batch_retry), sessions' own connections, and the raw
// connection from a projection's hooks.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>

#include <postgres_test_support.hpp>
#include <projectionist/postgres.hpp>
#include <tickets_domain.hpp>

namespace postgres_specific_test {

namespace pj = projectionist;
using namespace tickets_domain;
using Catch::Contains;
using postgres_test::pg_url;
using postgres_test::scoped_schema;

namespace {

struct comment_added {
    BOOST_HANA_DEFINE_STRUCT(comment_added, (std::string, ticket_id), (std::string, text), (std::int32_t, votes));
    static constexpr std::string_view event_name = "comment.added";
};
using comment_stream = pj::stream<"comment", comment_added>;

/// One integer from SQL on a connection of projectionist's (search_path is its schema).
std::int64_t scalar(const pj::detail::pg::connection& db, const std::string& sql) {
    return postgres_test::scalar(db, sql);
}

std::string text(const pj::postgres_connection& db, const std::string& sql) {
    auto r = db.query(sql);
    REQUIRE(r.rows() == 1);
    return r.is_null(0, 0) ? "NULL" : std::string(r.text(0, 0));
}

/// The message of the projectionist::error that `f` throws ("<no error>" / "<other exception>").
template <class F>
std::string error_of(F&& f) {
    try {
        std::forward<F>(f)();
    } catch (const pj::error& e) {
        return e.what();
    } catch (...) {
        return "<other exception>";
    }
    return "<no error>";
}

/// Every record of the log, as (position, aggregate version) pairs.
template <class Store>
std::vector<std::pair<std::uint64_t, std::uint64_t>> positions_and_versions(Store& store) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
    typename Store::batch batch;
    store.read(0, 1000, batch);
    for (const auto& r : batch) out.emplace_back(r.position(), r.aggregate_version());
    return out;
}

/// Every table, view and sequence of a schema with its row count where it has rows, and the
/// marker's content: a fingerprint that a refused open must leave as it was.
std::string fingerprint(pj::detail::pg::connection& db, const std::string& schema) {
    pj::detail::pg::params p;
    p.add(schema);
    auto r = db.query(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 ORDER BY c.relname",
        p);
    std::string out;
    for (int i = 0; i < r.rows(); ++i) {
        const std::string name(r.text(i, 0));
        out += name + ":" + std::string(r.text(i, 1));
        if (r.text(i, 1) == "r")
            out +=
                "=" + std::to_string(postgres_test::scalar(db, "SELECT count(*) FROM " + pj::detail::pg::quote(schema) +
                                                                   "." + pj::detail::pg::quote(name)));
        out += ";";
    }
    return out;
}

enum class shade : std::int16_t { dark = -3, light = 1, bright = 2 };

/// Every supported column type; the key is not the first column.
struct wide_row {
    BOOST_HANA_DEFINE_STRUCT(wide_row, (std::string, name), (std::int64_t, id), (std::int32_t, small), (bool, flag),
                             (double, ratio), (shade, tone), (std::optional<std::string>, note),
                             (std::optional<int>, count), (std::chrono::system_clock::time_point, at), (float, weight),
                             (std::uint8_t, tiny), (std::uint16_t, medium));
    friend bool operator==(const wide_row&, const wide_row&) = default;
};
using wide_table = pj::table<wide_row, &wide_row::id>;
using ticket_table = pj::table<ticket_row, &ticket_row::ticket_id>;

std::chrono::system_clock::time_point at_ns(std::int64_t ns) {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(ns)));
}

template <class Table>
std::vector<typename Table::key_type> keys_of(pj::postgres_table<Table>& t) {
    std::vector<typename Table::key_type> out;
    t.for_each([&](const typename Table::row_type& r) { out.push_back(Table::key_of(r)); });
    return out;
}

/// A second connection into the schema: sees only what is committed.
struct observer {
    pj::postgres_storage storage;
    explicit observer(const scoped_schema& s) : storage(pg_url(), s.options()) {}
    std::int64_t count(const std::string& table) {
        return scalar(storage.connection(), fmt::format("SELECT count(*) FROM {}", pj::detail::pg::quote(table)));
    }
};

}  // namespace

// ---- The event log in the schema ----

TEST_CASE("with the JSON codec the log is jsonb, queryable through the events view", "[postgres][store][json]") {
    scoped_schema schema;
    pj::postgres_json_event_store store(pg_url(), schema.options());
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "incident"});
    store.append(comment_stream{}, "t-1", 0, comment_added{"t-1", "looks \"bad\"", 3});

    // Through a separate connection, as psql would see it.
    auto& raw = schema.connection();
    auto rows = raw.query(
        "SELECT type, payload_json->>'type', pg_typeof(payload_json)::text, payload IS NULL, stream, "
        "aggregate_id, aggregate_version, to_char(recorded_at, 'YYYY') FROM " +
        schema.quoted() + ".events ORDER BY position");
    REQUIRE(rows.rows() == 2);
    CHECK(rows.text(0, 0) == "ticket.registered");
    CHECK(rows.text(0, 1) == "incident");
    CHECK(rows.text(0, 2) == "jsonb");
    CHECK(rows.text(0, 3) == "t");  // stored once: not also as bytea
    CHECK(rows.text(0, 4) == "ticket");
    CHECK(rows.text(0, 5) == "t-1");
    CHECK(rows.text(0, 6) == "1");
    CHECK(rows.int64(0, 7) >= 2024);
    CHECK(rows.text(1, 0) == "comment.added");
    CHECK(postgres_test::scalar(raw, "SELECT (payload_json->>'votes')::int FROM " + schema.quoted() +
                                         ".events WHERE type = 'comment.added'") == 3);
    CHECK(postgres_test::scalar(raw, "SELECT count(*) FROM " + schema.quoted() +
                                         ".events WHERE payload_json @> '{\"text\": \"looks \\\"bad\\\"\"}'") == 1);
}

TEST_CASE("the binary codec stores bytea, byte for byte", "[postgres][store]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "incident"});
    std::string encoded;
    pj::binary_codec::encode(ticket_registered{"t-1", "incident"}, encoded);
    auto rows = schema.connection().query("SELECT type, pg_typeof(payload)::text, payload, payload_json IS NULL FROM " +
                                          schema.quoted() + ".events");
    REQUIRE(rows.rows() == 1);
    CHECK(rows.text(0, 0) == "ticket.registered");
    CHECK(rows.text(0, 1) == "bytea");
    CHECK(rows.bytea(0, 2) == encoded);
    CHECK(rows.text(0, 3) == "t");
}

TEST_CASE("every string reads back byte for byte with the binary codec; jsonb refuses what it cannot hold",
          "[postgres][store][codec]") {
    scoped_schema schema;
    // Latin-1, a stray continuation byte, a truncated sequence, an embedded NUL, control bytes.
    const std::vector<std::string> texts{"caf\xe9",
                                         "\x80",
                                         "euro \xe2\x82",
                                         std::string("a\0b", 3),
                                         "\x01\x1f\x7f",
                                         "\xff\xfe\xfd",
                                         "\xc3\xa9t\xc3\xa9 \xf0\x9f\x8e\x9f"};
    {
        pj::postgres_event_store store(pg_url(), schema.options());
        for (std::size_t i = 0; i < texts.size(); ++i) {
            const std::string id = "t-" + std::to_string(i);
            store.append(ticket_stream{}, id, 0, ticket_registered{id, texts[i]});
        }
        pj::postgres_event_store::batch batch;
        store.read(0, 100, batch);
        REQUIRE(batch.size() == texts.size());
        for (std::size_t i = 0; i < texts.size(); ++i) {
            INFO("text " << i);
            CHECK(store.event_of<ticket_registered>(batch[i]).type == texts[i]);
        }
    }
    scoped_schema json_schema;
    pj::postgres_json_event_store json(pg_url(), json_schema.options());
    // Valid UTF-8 and control characters round-trip through jsonb.
    json.append(ticket_stream{}, "ok-1", 0, ticket_registered{"ok-1", texts[6]});
    json.append(ticket_stream{}, "ok-2", 0, ticket_registered{"ok-2", texts[4]});
    // Invalid UTF-8 and NUL cannot be jsonb: the append fails, naming the event, and writes nothing.
    for (const std::size_t i : {std::size_t{0}, std::size_t{3}, std::size_t{5}}) {
        INFO("text " << i);
        CHECK_THAT(error_of([&] {
                       json.append(ticket_stream{}, "bad", 0, ticket_registered{"bad", texts[i]});
                   }),
                   Contains("event 'ticket.registered'") && Contains("aggregate 'bad'") && Contains("json codec") &&
                       Contains("nothing was appended"));
        CHECK_FALSE(json.connection().in_transaction());
    }
    CHECK(json.head() == 2);
    CHECK(json.version_of(ticket_stream{}, "bad") == 0);
    pj::postgres_json_event_store::batch batch;
    json.read(0, 10, batch);
    REQUIRE(batch.size() == 2);
    CHECK(json.event_of<ticket_registered>(batch[0]).type == texts[6]);
    CHECK(json.event_of<ticket_registered>(batch[1]).type == texts[4]);
}

TEST_CASE("a schema projectionist did not create, or of a newer version, is refused and left untouched",
          "[postgres][store][refusal]") {
    scoped_schema schema;
    auto& raw = schema.connection();
    const std::vector<std::pair<std::string, std::function<void()>>> openers{
        {"postgres_event_store", [&] { pj::postgres_event_store s(pg_url(), schema.options()); }},
        {"postgres_json_event_store", [&] { pj::postgres_json_event_store s(pg_url(), schema.options()); }},
        {"open_database", [&] { pj::detail::pg::open_database(pg_url(), schema.options()); }},
    };
    auto check_refused = [&](const std::string& why) {
        const std::string before = fingerprint(raw, schema.name());
        REQUIRE_FALSE(before.empty());
        for (const auto& opener : openers) {
            INFO("opened as " << opener.first);
            CHECK_THAT(error_of(opener.second),
                       Contains(why) && Contains(schema.quoted()) && Contains("nothing was changed"));
            CHECK(fingerprint(raw, schema.name()) == before);
        }
    };
    SECTION("a schema of someone else's tables") {
        raw.exec("CREATE TABLE " + schema.quoted() + ".foo(x integer); INSERT INTO " + schema.quoted() +
                 ".foo VALUES (42)");
        check_refused("not created by projectionist");
        CHECK(postgres_test::scalar(raw, "SELECT x FROM " + schema.quoted() + ".foo") == 42);
    }
    SECTION("a schema of someone else's view or sequence") {
        raw.exec("CREATE SEQUENCE " + schema.quoted() + ".ids");
        check_refused("not created by projectionist");
    }
    SECTION("a projectionist schema of a newer version") {
        {
            pj::postgres_event_store store(pg_url(), schema.options());
            store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        }
        raw.exec("UPDATE " + schema.quoted() + ".projectionist_schema SET version = 99");
        check_refused("projectionist schema version 99");
        CHECK(postgres_test::scalar(raw, "SELECT version FROM " + schema.quoted() + ".projectionist_schema") == 99);
        CHECK(postgres_test::scalar(raw, "SELECT count(*) FROM " + schema.quoted() + ".projectionist_events") == 1);
    }
    SECTION("a marker of another application") {
        raw.exec("CREATE TABLE " + schema.quoted() +
                 ".projectionist_schema(application text, version int); INSERT "
                 "INTO " +
                 schema.quoted() + ".projectionist_schema VALUES ('someone-else', 1)");
        check_refused("belongs to another application");
    }
}

TEST_CASE("an empty schema is created on first use, once, even by processes that start together", "[postgres][store]") {
    scoped_schema schema;  // created by the test support, empty
    schema.connection().exec("DROP SCHEMA " + schema.quoted());
    constexpr int openers = 6;
    std::vector<std::jthread> threads;
    std::mutex failures_mutex;
    std::vector<std::string> failures;  // Catch's macros are not for other threads: collected here
    for (int i = 0; i < openers; ++i)
        threads.emplace_back([&] {
            try {
                pj::postgres_event_store store(pg_url(), schema.options());
            } catch (const std::exception& e) {
                std::lock_guard lock(failures_mutex);
                failures.emplace_back(e.what());
            }
        });
    threads.clear();
    for (const auto& f : failures) UNSCOPED_INFO(f);
    CHECK(failures.empty());
    auto& raw = schema.connection();
    CHECK(postgres_test::scalar(raw, "SELECT count(*) FROM " + schema.quoted() + ".projectionist_schema") == 1);
    CHECK(postgres_test::scalar(raw, "SELECT version FROM " + schema.quoted() + ".projectionist_schema") ==
          pj::detail::pg::schema_version);
    CHECK(postgres_test::scalar(raw, "SELECT count(*) FROM " + schema.quoted() + ".projectionist_settings") == 1);
}

TEST_CASE("identifiers are quoted: schema names with quotes, capitals, spaces and dots work",
          "[postgres][store][quoting]") {
    for (const std::string stem : {"Tickets", "o\"brien", "a b.c", "select"}) {
        INFO("schema stem " << stem);
        scoped_schema schema(stem);
        REQUIRE(schema.name().starts_with(stem));
        {
            pj::postgres_event_store store(pg_url(), schema.options());
            store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
            store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});
            CHECK(store.head() == 2);
            CHECK(store.version_of(ticket_stream{}, "t-1") == 2);
            pj::postgres_event_store::batch batch;
            store.read(0, 10, batch);
            REQUIRE(batch.size() == 2);
            CHECK(store.event_of<ticket_registered>(batch[0]).type == "bug");
            // The schema's search_path is set too: handlers' own SQL finds the tables unqualified.
            CHECK(scalar(store.connection(), "SELECT count(*) FROM projectionist_events") == 2);
            CHECK(store.same_database(schema.connection()));
        }
        CHECK(postgres_test::scalar(schema.connection(),
                                    "SELECT count(*) FROM " + schema.quoted() + ".projectionist_events") == 2);
        pj::postgres_event_store reopened(pg_url(), schema.options());
        CHECK(reopened.head() == 2);
    }
}

TEST_CASE("options: lock_timeout and synchronous_commit are set on the connection", "[postgres][store]") {
    scoped_schema schema;
    {
        pj::postgres_event_store store(pg_url(), schema.options());
        CHECK(store.connection().query("SHOW lock_timeout").text(0, 0) == "5s");
        CHECK(store.connection().query("SHOW synchronous_commit").text(0, 0) == "on");
        CHECK(store.connection().query("SELECT current_schema()").text(0, 0) == schema.name());
    }
    pj::postgres_options options = schema.options();
    options.lock_timeout = std::chrono::milliseconds(250);
    options.synchronous_commit = false;
    pj::postgres_event_store store(pg_url(), options);
    CHECK(store.connection().query("SHOW lock_timeout").text(0, 0) == "250ms");
    CHECK(store.connection().query("SHOW synchronous_commit").text(0, 0) == "off");
    CHECK(store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"}).version == 1);
}

TEST_CASE("a writer on another connection appends in that connection's transaction", "[postgres][store]") {
    scoped_schema schema;
    scoped_schema other_schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    // The storage's connection: the same database, another schema, its own transaction.
    auto session = pj::detail::pg::open_database(pg_url(), other_schema.options());
    REQUIRE(store.same_database(session));
    auto writer = store.writer_on(session);
    session.exec("BEGIN");
    CHECK(writer.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"}).first_position == 1);
    CHECK(store.head() == 0);  // not committed yet
    session.exec("ROLLBACK");
    CHECK(store.head() == 0);
    session.exec("BEGIN");  // position 1 stays unused: appends do not wait to reuse a rolled-back one
    CHECK(writer.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"}).first_position == 2);
    session.exec("COMMIT");
    CHECK(store.head() == 2);
    CHECK(store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}).first_position == 3);
    CHECK(writer.append(ticket_stream{}, "t-1", 2, ticket_reopened{"t-1"}).first_position == 4);  // autocommit
    CHECK(positions_and_versions(store) ==
          std::vector<std::pair<std::uint64_t, std::uint64_t>>{{2, 1}, {3, 2}, {4, 3}});
    // Nothing landed in the session's own schema.
    CHECK(scalar(session, "SELECT count(*) FROM projectionist_events") == 0);
}

TEST_CASE("same_database tells another server or database apart", "[postgres][store]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    auto& raw = schema.connection();
    CHECK(store.same_database(raw));
    const std::string db = "pj_other_db_" + std::to_string(::getpid());
    raw.exec("DROP DATABASE IF EXISTS " + pj::detail::pg::quote(db));
    raw.exec("CREATE DATABASE " + pj::detail::pg::quote(db));
    {
        // The URL's database part replaced: postgresql://user@host:port/<db>.
        std::string url = pg_url();
        const auto slash = url.rfind('/');
        REQUIRE(slash != std::string::npos);
        url = url.substr(0, slash + 1) + db;
        pj::detail::pg::connection other(url);
        CHECK_FALSE(store.same_database(other));
    }
    raw.exec("DROP DATABASE " + pj::detail::pg::quote(db));
}

TEST_CASE("wait_for_events wakes on a commit from another connection, and times out without one",
          "[postgres][store][wait]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_event_store other(pg_url(), schema.options());
    std::stop_source stop;
    auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(store.wait_for_events(0, std::chrono::milliseconds(200), stop.get_token()));
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(190));

    std::jthread appender([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        other.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    });
    t0 = std::chrono::steady_clock::now();
    CHECK(store.wait_for_events(0, std::chrono::seconds(10), stop.get_token()));
    const auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(waited >= std::chrono::milliseconds(250));
    CHECK(waited < std::chrono::seconds(5));
    appender.join();
    CHECK(store.wait_for_events(0, std::chrono::seconds(10), stop.get_token()));  // already there: at once

    // A stop request ends the wait early.
    std::jthread stopper([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        stop.request_stop();
    });
    t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(store.wait_for_events(1, std::chrono::seconds(10), stop.get_token()));
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

// ---- Read-model storage in the schema ----

TEST_CASE("postgres_table maps every supported field type to a column and back", "[postgres][storage][table]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
    pj::postgres_table<wide_table> table(storage.connection(), "wide");
    const std::string sql = table.create_sql();
    CHECK_THAT(sql, Contains(R"(CREATE TABLE IF NOT EXISTS "wide" ()"));
    CHECK_THAT(sql, Contains(R"("name" text COLLATE "C" NOT NULL, )"));
    CHECK_THAT(sql, Contains(R"("id" bigint NOT NULL, )"));
    CHECK_THAT(sql, Contains(R"("small" integer NOT NULL, )"));
    CHECK_THAT(sql, Contains(R"("flag" boolean NOT NULL, )"));
    CHECK_THAT(sql, Contains(R"("ratio" double precision NOT NULL, )"));
    CHECK_THAT(sql, Contains(R"("tone" smallint NOT NULL, )"));
    CHECK_THAT(sql, Contains(R"("note" text COLLATE "C", )"));
    CHECK_THAT(sql, Contains(R"("count" integer, )"));
    CHECK_THAT(sql, Contains(R"("at" bigint NOT NULL, )"));
    CHECK_THAT(sql, Contains(R"("weight" real NOT NULL, )"));
    CHECK_THAT(sql, Contains(R"("tiny" smallint NOT NULL, )"));
    CHECK_THAT(sql, Contains(R"("medium" integer NOT NULL, )"));
    CHECK_THAT(sql, Contains(R"(PRIMARY KEY ("id")))"));
    storage.connection().exec(sql);
    storage.connection().exec(sql);  // IF NOT EXISTS: idempotent
    CHECK(storage.has_table("wide"));
    CHECK(table.name() == "wide");
    CHECK(table.quoted_name() == "\"wide\"");
    CHECK(table.quoted_key() == "\"id\"");

    const wide_row full{"O'Brien \"quoted\" back\\slash, {braces} ünïcødé",
                        std::numeric_limits<std::int64_t>::max(),
                        std::numeric_limits<std::int32_t>::min(),
                        true,
                        0.1,
                        shade::dark,
                        "a note, with \"quotes\"",
                        0,
                        at_ns(1'700'000'000'123'456'789),
                        1.5f,
                        255,
                        65535};
    const wide_row sparse{"",
                          std::numeric_limits<std::int64_t>::min(),
                          7,
                          false,
                          -2.5e300,
                          shade::bright,
                          std::nullopt,
                          std::nullopt,
                          at_ns(-1'000),
                          -0.25f,
                          0,
                          0};
    const wide_row empty_note{"NULL", 0, 0, false, 1.0 / 3.0, shade::light, std::string(), -4, at_ns(0), 3e38f, 1, 1};
    wide_row infinite = empty_note;
    infinite.id = 99;
    infinite.ratio = -std::numeric_limits<double>::infinity();
    infinite.note = "NULL";  // the text, not a null
    table.insert(full);
    table.insert(sparse);
    table.insert(empty_note);
    table.insert(infinite);

    CHECK(table.find(full.id) == full);
    CHECK(table.find(sparse.id) == sparse);
    CHECK(table.find(empty_note.id) == empty_note);
    CHECK(table.find(infinite.id) == infinite);
    CHECK(table.size() == 4);
    std::vector<wide_row> visited;
    table.for_each([&](const wide_row& r) { visited.push_back(r); });
    CHECK(visited == std::vector<wide_row>{sparse, empty_note, infinite, full});  // in key order

    // What PostgreSQL holds: NULL for empty optionals, the declared types otherwise.
    auto& db = storage.connection();
    CHECK(text(db, fmt::format("SELECT note IS NULL AND count IS NULL FROM wide WHERE id = {}", sparse.id)) == "t");
    CHECK(text(db, fmt::format("SELECT note FROM wide WHERE id = {}", empty_note.id)).empty());
    CHECK(text(db, "SELECT note FROM wide WHERE id = 99") == "NULL");  // the text "NULL", not a null
    CHECK(text(db, "SELECT note IS NULL FROM wide WHERE id = 99") == "f");
    CHECK(scalar(db, fmt::format("SELECT tone FROM wide WHERE id = {}", full.id)) == -3);
    CHECK(scalar(db, fmt::format("SELECT at FROM wide WHERE id = {}", full.id)) == 1'700'000'000'123'456'789);
    CHECK(text(db, fmt::format("SELECT flag FROM wide WHERE id = {}", full.id)) == "t");
    CHECK(text(db,
               "SELECT pg_typeof(ratio)::text || ',' || pg_typeof(weight)::text || ',' || pg_typeof(tone)::text "
               "FROM wide LIMIT 1") == "double precision,real,smallint");

    // A second handle on the same table (as find_table gives) reads the same rows.
    auto again = storage.find_table<wide_table>("wide");
    REQUIRE(again.has_value());
    CHECK(again->find(full.id) == full);
    CHECK_FALSE(storage.find_table<wide_table>("missing").has_value());
}

// The operations themselves are the shared contract (tests/backend: "the table operations keep
// the table's contract"); here, what a handle made on a raw connection writes for a name that
// needs quoting, and that outside a batch nothing is buffered.
TEST_CASE("postgres_table quotes a name in its DDL and names it in its errors; outside a batch it sends every write",
          "[postgres][storage][table]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
    const std::string name = "odd \"t\" name";
    pj::postgres_table<ticket_table> table(storage.connection(), name);
    CHECK(table.quoted_name() == "\"odd \"\"t\"\" name\"");
    CHECK_THAT(table.create_sql(), Contains("\"odd \"\"t\"\" name\"") && Contains(R"(PRIMARY KEY ("ticket_id"))"));
    storage.connection().exec(table.create_sql());
    CHECK(storage.has_table(name));
    CHECK(table.empty());

    const ticket_row a{"a", "bug", "open", 0};
    table.insert(a);
    try {
        table.insert({"a", "task", "closed", 9});
        FAIL("a duplicate key was inserted");
    } catch (const pj::table_error& e) {
        CHECK_THAT(e.what(), Contains(name) && Contains("'a'") && Contains("already exists"));
    }
    table.insert({"c", "bug", "open", 0});  // the insert statement still works after the error
    CHECK(table.pending_writes() == 0);     // outside a batch every write is sent at once
    table.upsert({"b", "task", "open", 0});
    CHECK(table.update("b", [](ticket_row& r) { r.status = "closed"; }));
    CHECK(table.erase("c"));
    CHECK(table.pending_writes() == 0);
    try {
        table.update("a", [](ticket_row& r) { r.ticket_id = "a2"; });
        FAIL("an update changed the key");
    } catch (const pj::table_error& e) {
        CHECK_THAT(e.what(), Contains(name) && Contains("'a'") && Contains("changed the key"));
    }
    CHECK(keys_of(table) == std::vector<std::string>{"a", "b"});
    CHECK(postgres_test::scalar(storage.connection(), "SELECT count(*) FROM " + table.quoted_name()) == 2);
}

TEST_CASE("postgres_table takes a key as any type the key is made from, in a batch and outside one",
          "[postgres][storage][table]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
    auto s = storage.open("x_v1");
    auto& t = s.create_table<ticket_table>("x_v1");
    t.insert({"a", "bug", "open", 0});
    t.insert({"b", "bug", "open", 0});
    t.insert({"c", "bug", "open", 0});

    const std::string text = "a";
    const std::string_view a(text);
    // Outside a batch: every call goes to the server.
    CHECK(t.contains(a));
    CHECK(t.find(a) == ticket_row{"a", "bug", "open", 0});
    CHECK(t.update(a, [](ticket_row& r) { r.status = "closed"; }));
    CHECK(t.erase(std::string_view("c")));
    // In a batch: the batch's buffer is looked up with the key made from the argument.
    s.begin();
    CHECK(t.update(std::string_view("b"), [](ticket_row& r) { ++r.reopened; }));
    CHECK(t.find(std::string_view("b"))->reopened == 1);
    const char* const gone = "a";
    CHECK(t.erase(gone));
    CHECK_FALSE(t.contains(gone));
    CHECK_FALSE(t.update(std::string_view("zz"), [](ticket_row&) { FAIL("called for a missing row"); }));
    s.commit(pj::checkpoint{}, {});
    CHECK(keys_of(t) == std::vector<std::string>{"b"});
    CHECK(t.find(std::string("b"))->reopened == 1);
}

TEST_CASE("a batch's table writes are buffered and sent at commit", "[postgres][storage][buffer]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
    observer other(schema);
    auto s = storage.open("x_v1");
    auto& t = s.create_table<ticket_table>("x_v1");
    t.insert({"kept", "bug", "open", 0});
    t.insert({"gone", "bug", "open", 0});
    t.insert({"changed", "bug", "open", 0});

    s.begin();
    t.insert({"new", "bug", "open", 0});
    t.upsert({"up", "task", "open", 0});
    CHECK(t.update("changed", [](ticket_row& r) { r.status = "closed"; }));
    CHECK(t.erase("gone"));
    CHECK_FALSE(t.erase("gone"));
    CHECK_FALSE(t.erase("never"));
    t.insert({"brief", "bug", "open", 0});
    CHECK(t.erase("brief"));  // inserted and erased within the batch
    CHECK(t.update("new", [](ticket_row& r) { ++r.reopened; }));
    t.insert({"gone", "task", "reborn", 0});  // erased, then inserted again: allowed
    CHECK(t.pending_writes() >= 5);
    // Read your writes, before anything is sent.
    CHECK(t.find("new") == ticket_row{"new", "bug", "open", 1});
    CHECK(t.find("changed")->status == "closed");
    CHECK(t.find("gone") == ticket_row{"gone", "task", "reborn", 0});
    CHECK_FALSE(t.contains("brief"));
    CHECK(t.contains("up"));
    try {
        t.insert({"new", "x", "x", 0});
        FAIL("a duplicate of a buffered row was inserted");
    } catch (const pj::table_error& e) {
        CHECK_THAT(e.what(), Contains("'new'") && Contains("already exists"));
    }
    CHECK(t.contains("kept"));  // read from the server: known in the batch from now on
    CHECK_THROWS_WITH(t.insert({"kept", "x", "x", 0}), Contains("'kept'") && Contains("already exists"));
    CHECK_THROWS_WITH(t.insert({"changed", "x", "x", 0}), Contains("'changed'") && Contains("already exists"));
    // Nothing has reached the server: another connection sees the committed rows only.
    CHECK(other.count("x_v1") == 3);
    CHECK(text(other.storage.connection(), "SELECT status FROM x_v1 WHERE ticket_id = 'changed'") == "open");
    s.commit(pj::checkpoint{}, {});
    CHECK(t.pending_writes() == 0);

    auto view = other.storage.find_table<ticket_table>("x_v1");
    REQUIRE(view.has_value());
    CHECK(keys_of(*view) == std::vector<std::string>{"changed", "gone", "kept", "new", "up"});
    CHECK(view->find("new") == ticket_row{"new", "bug", "open", 1});
    CHECK(view->find("changed")->status == "closed");
    CHECK(view->find("gone") == ticket_row{"gone", "task", "reborn", 0});
    CHECK(view->find("up") == ticket_row{"up", "task", "open", 0});

    // size, for_each and the raw connection send the buffer first.
    s.begin();
    t.insert({"z1", "bug", "open", 0});
    CHECK(t.size() == 6);
    t.insert({"z2", "bug", "open", 0});
    CHECK(keys_of(t).size() == 7);
    t.insert({"z3", "bug", "open", 0});
    CHECK(scalar(s.connection(), "SELECT count(*) FROM x_v1") == 8);
    t.insert({"z4", "bug", "open", 0});
    CHECK(scalar(t.connection(), "SELECT count(*) FROM x_v1") == 9);
    CHECK(other.count("x_v1") == 5);  // still uncommitted
    // A rolled-back batch drops its buffer: nothing of it reaches a later commit.
    t.insert({"z5", "bug", "open", 0});
    CHECK(t.erase("kept"));
    s.rollback();
    CHECK(t.pending_writes() == 0);
    s.begin();
    t.insert({"after", "bug", "open", 0});
    s.commit(pj::checkpoint{}, {});
    CHECK(keys_of(*view) == std::vector<std::string>{"after", "changed", "gone", "kept", "new", "up"});
}

TEST_CASE("a duplicate key found when the buffer is sent fails the batch and writes nothing",
          "[postgres][storage][buffer]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
    observer other(schema);
    auto s = storage.open("x_v1");
    auto& t = s.create_table<ticket_table>("x_v1");
    t.insert({"a", "bug", "open", 0});

    SECTION("an insert of a row the server has") {
        s.begin();
        t.insert({"b", "bug", "open", 0});
        t.insert({"a", "task", "open", 0});  // not known in the batch: checked when sent
        try {
            s.commit(pj::checkpoint{1, {}, 0}, {});
            FAIL("the commit went through");
        } catch (const pj::postgres_batch_retry& e) {
            CHECK_THAT(e.what(), Contains("'x_v1'") && Contains("'a'") && Contains("already exists") &&
                                     Contains("nothing was committed"));
        }
        s.rollback();
    }
    SECTION("an insert, then an erase, of a row the server has") {
        s.begin();
        t.insert({"b", "bug", "open", 0});
        t.insert({"a", "task", "open", 0});
        CHECK(t.erase("a"));
        CHECK_THROWS_AS(s.commit(pj::checkpoint{1, {}, 0}, {}), pj::postgres_batch_retry);
        s.rollback();
    }
    CHECK(other.count("x_v1") == 1);
    CHECK(s.reload_checkpoint().position == 0);
    // The next batch sends each write at once, so the failing write throws where it is made.
    s.begin();
    t.insert({"b", "bug", "open", 0});
    CHECK(t.pending_writes() == 0);
    CHECK_THROWS_AS(t.insert({"a", "task", "open", 0}), pj::table_error);
    s.rollback();
    s.begin();
    t.insert({"c", "bug", "open", 0});
    s.commit(pj::checkpoint{}, {});  // a batch that commits turns buffering back on
    s.begin();
    t.insert({"d", "bug", "open", 0});
    CHECK(t.pending_writes() == 1);
    s.commit(pj::checkpoint{}, {});
    CHECK(other.count("x_v1") == 3);
}

TEST_CASE("each session has its own connection, in the storage's schema", "[postgres][storage]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
    auto s = storage.open("x_v1");
    CHECK(s.raw() == s.connection().get());
    CHECK(s.connection().backend_pid() != storage.connection().backend_pid());
    CHECK(text(s.connection(), "SELECT current_schema()") == schema.name());
    CHECK(s.conninfo() == pg_url());
}

// ---- The raw connection and the runner's transactions ----

namespace {

/// Uses the raw connection: an index from its init hook, an audit table written by its
/// handlers inside the batch's transaction.
struct audited : pj::projection<"audited", 1, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    std::string fail_on;

    static std::string audit_table(std::string_view name) { return std::string(name) + "_audit"; }

    void init(auto& ctx) {
        auto& db = ctx.storage().connection();
        db.exec(fmt::format("CREATE INDEX IF NOT EXISTS {} ON {}(type)",
                            pj::detail::pg::quote(std::string(ctx.name()) + "_by_type"),
                            pj::detail::pg::quote(ctx.name())));
        db.exec(
            fmt::format("CREATE TABLE IF NOT EXISTS {}(position bigint PRIMARY KEY, ticket_id text NOT NULL, "
                        "status text NOT NULL)",
                        pj::detail::pg::quote(audit_table(ctx.name()))));
    }

    /// Records the ticket's status as the table holds it: the raw SQL sees the handler's writes.
    void audit(auto& ctx, const std::string& ticket_id) {
        pj::postgres_params p;
        p.add(static_cast<std::int64_t>(ctx.envelope().position)).add(ticket_id);
        ctx.storage().connection().query(
            fmt::format("INSERT INTO {}(position, ticket_id, status) SELECT $1, $2, status FROM {} WHERE ticket_id "
                        "= $2",
                        pj::detail::pg::quote(audit_table(ctx.name())), ctx.table().quoted_name()),
            p);
    }

    void on(const ticket_registered& e, auto& ctx) {
        ctx.table().insert({e.ticket_id, e.type, "open", 0});
        audit(ctx, e.ticket_id);
    }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
        audit(ctx, e.ticket_id);
        if (e.ticket_id == fail_on) throw std::runtime_error("audit refused the close");
    }
};

}  // namespace

TEST_CASE("raw SQL from an init hook and from handlers runs in the runner's transactions",
          "[postgres][storage][runner]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_storage storage(pg_url(), schema.options());
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});   // 1
    store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "task"});  // 2
    store.append(ticket_stream{}, "t-2", 1, ticket_closed{"t-2"});              // 3
    store.append(ticket_stream{}, "t-3", 0, ticket_registered{"t-3", "bug"});   // 4
    store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});              // 5: fails
    audited p;
    p.fail_on = "t-1";
    pj::runner<audited, pj::postgres_storage> r(store, storage, p, pj::runner_options{3});
    CHECK_THROWS_WITH(r.catch_up(), Contains("position 5") && Contains("audit refused the close"));

    // The index the init hook created.
    CHECK(scalar(storage.connection(),
                 "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = "
                 "'audited_v1_by_type' AND tablename = 'audited_v1'") == 1);

    // The first batch {1, 2, 3} committed its rows and its raw writes, which saw the rows as the
    // handlers had just written them; the second {4, 5} inserted t-3, updated t-1 and wrote two
    // raw rows before failing: all of it is gone.
    CHECK(r.position() == 3);
    CHECK(scalar(storage.connection(), "SELECT count(*) FROM audited_v1_audit") == 3);
    CHECK(text(storage.connection(), "SELECT status FROM audited_v1_audit WHERE position = 3") == "closed");
    auto table = storage.find_table<audited::table>("audited_v1");
    REQUIRE(table.has_value());
    CHECK(table->size() == 2);
    CHECK(table->find("t-1")->status == "open");
    CHECK(table->find("t-2")->status == "closed");
    CHECK_FALSE(table->contains("t-3"));
}

}  // namespace postgres_specific_test
