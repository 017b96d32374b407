// What is SQLite's own and not the shared contract of tests/backend (which runs on SQLite as
// backend_sqlite): how the file holds the log (a readable JSON view, a BLOB, strings that are
// not UTF-8), files that are not projectionist's, PRAGMAs and options, the column types of
// sqlite_table, the per-aggregate position log and the upgrade of version 1 files, the raw
// connection from a projection's hooks, and emission through the runner's own transaction
// (seen through sqlite3_commit_hook).

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>

#include <projectionist/sqlite.hpp>
#include <sqlite_test_support.hpp>
#include <tickets_domain.hpp>

namespace sqlite_layout {

/// A table whose user keeps SQLite's rowid layout (large rows: see sqlite_without_rowid), as a
/// user would say it: the specialization at namespace scope, outside any namespace of theirs.
struct document_row {
    BOOST_HANA_DEFINE_STRUCT(document_row, (std::string, path), (std::string, body));
    friend bool operator==(const document_row&, const document_row&) = default;
};
using document_table = projectionist::table<document_row, &document_row::path>;

}  // namespace sqlite_layout

template <>
inline constexpr bool projectionist::sqlite_without_rowid<sqlite_layout::document_table> = false;

namespace sqlite_specific_test {

namespace pj = projectionist;
using namespace tickets_domain;
using Catch::Contains;
using Catch::EndsWith;
using sqlite_test::temp_dir;

namespace {

/// These tests are not about durability: their files live on tmpfs when there is one
/// (fast_temp_base), and synchronous NORMAL spares an fsync per commit where there is not. The
/// options tests check the FULL default.
const pj::sqlite_options fast{pj::sqlite_synchronous::normal};

struct comment_added {
    BOOST_HANA_DEFINE_STRUCT(comment_added, (std::string, ticket_id), (std::string, text), (std::int32_t, votes));
    static constexpr std::string_view event_name = "comment.added";
};
using comment_stream = pj::stream<"comment", comment_added>;

enum class shade : std::int16_t { dark = -3, light = 1, bright = 2 };

/// Every supported column type; the key is not the first column.
struct wide_row {
    BOOST_HANA_DEFINE_STRUCT(wide_row, (std::string, name), (std::int64_t, id), (std::int32_t, small), (bool, flag),
                             (double, ratio), (shade, tone), (std::optional<std::string>, note),
                             (std::optional<int>, count), (std::chrono::system_clock::time_point, at));
    friend bool operator==(const wide_row&, const wide_row&) = default;
};
using wide_table = pj::table<wide_row, &wide_row::id>;
using ticket_table = pj::table<ticket_row, &ticket_row::ticket_id>;
using sqlite_layout::document_table;

std::chrono::system_clock::time_point at_ns(std::int64_t ns) {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(ns)));
}

/// One integer from SQL run on a connection of projectionist's.
std::int64_t scalar(pj::detail::sqlite::connection& db, const std::string& sql) {
    pj::detail::sqlite::statement s(db, sql);
    REQUIRE(s.step());
    return s.int64(0);
}

std::string text(pj::detail::sqlite::connection& db, const std::string& sql) {
    pj::detail::sqlite::statement s(db, sql);
    REQUIRE(s.step());
    return s.is_null(0) ? "NULL" : std::string(s.text(0));
}

template <class Table>
std::vector<typename Table::key_type> keys_of(pj::sqlite_table<Table>& t) {
    std::vector<typename Table::key_type> out;
    t.for_each([&](const typename Table::row_type& r) { out.push_back(Table::key_of(r)); });
    return out;
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

}  // namespace

// ---- The event log in the file ----

TEST_CASE("with the JSON codec the events view is a readable log", "[sqlite][store][json]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("log.db");
    pj::sqlite_json_event_store store(file, fast);
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "incident"});
    store.append(comment_stream{}, "t-1", 0, comment_added{"t-1", "looks \"bad\"", 3});

    // Through a separate sqlite3 handle, as `sqlite3 app.db` would see it.
    sqlite_test::raw_db raw(file, SQLITE_OPEN_READONLY);
    const auto rows = raw.rows(
        "SELECT type, payload, typeof(payload), stream, aggregate_id, aggregate_version, recorded_at "
        "FROM events ORDER BY position");
    REQUIRE(rows.size() == 2);
    CHECK(rows[0][0] == "ticket.registered");
    CHECK(rows[0][1] == R"({"ticket_id":"t-1","type":"incident"})");
    CHECK(rows[0][2] == "text");
    CHECK(rows[0][3] == "ticket");
    CHECK(rows[0][4] == "t-1");
    CHECK(rows[0][5] == "1");
    const std::string recorded = rows[0][6].value_or("");
    CHECK(recorded.size() == 24);  // 2024-01-02T03:04:05.678Z
    CHECK(recorded.find('T') == 10);
    CHECK(recorded.back() == 'Z');
    CHECK(rows[1][0] == "comment.added");
    CHECK_THAT(rows[1][1].value_or(""), Contains(R"("text":"looks \"bad\"")") && Contains(R"("votes":3)"));

    // The store's own connection reads the same.
    pj::detail::sqlite::statement s(store.connection(), "SELECT type, payload FROM events WHERE position = 1");
    REQUIRE(s.step());
    CHECK(s.text(0) == "ticket.registered");
    CHECK_THAT(std::string(s.text(1)), Contains(R"("type":"incident")"));
    CHECK(sqlite_test::integrity_ok(file));
}

TEST_CASE("the binary codec stores a BLOB", "[sqlite][store]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("log.db");
    pj::sqlite_event_store store(file, fast);
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "incident"});
    std::string encoded;
    pj::binary_codec::encode(ticket_registered{"t-1", "incident"}, encoded);
    sqlite_test::raw_db raw(file, SQLITE_OPEN_READONLY);
    const auto rows = raw.rows("SELECT type, typeof(payload), payload FROM events");
    REQUIRE(rows.size() == 1);
    CHECK(rows[0][0] == "ticket.registered");
    CHECK(rows[0][1] == "blob");
    CHECK(rows[0][2] == encoded);
    CHECK(sqlite_test::integrity_ok(file));
}

TEMPLATE_TEST_CASE("every string an append accepts reads back byte for byte, UTF-8 or not", "[sqlite][store][codec]",
                   pj::sqlite_event_store, pj::sqlite_json_event_store) {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("log.db");
    // Latin-1, a stray continuation byte, a truncated sequence, an embedded NUL, control bytes.
    const std::vector<std::string> texts{"caf\xe9",
                                         "\x80",
                                         "euro \xe2\x82",
                                         std::string("a\0b", 3),
                                         "\x01\x1f\x7f",
                                         "\xff\xfe\xfd",
                                         "\xc3\xa9t\xc3\xa9 \xf0\x9f\x8e\x9f"};
    {
        TestType store(file, fast);
        for (std::size_t i = 0; i < texts.size(); ++i) {
            const std::string id = "t-" + std::to_string(i);
            store.append(ticket_stream{}, id, 0, ticket_registered{id, texts[i]});
        }
    }
    {
        TestType store(file, fast);
        typename TestType::batch batch;
        store.read(0, 100, batch);
        REQUIRE(batch.size() == texts.size());
        for (std::size_t i = 0; i < texts.size(); ++i) {
            INFO("text " << i);
            std::string type;
            CHECK_NOTHROW(type = store.template event_of<ticket_registered>(batch[i]).type);
            CHECK(type == texts[i]);
        }
    }
    CHECK(sqlite_test::integrity_ok(file));
}

namespace {

/// Every way to open a file with projectionist: both stores and the storage.
const std::vector<std::pair<std::string, std::function<void(const std::string&)>>>& openers() {
    static const std::vector<std::pair<std::string, std::function<void(const std::string&)>>> all{
        {"sqlite_event_store", [](const std::string& f) { pj::sqlite_event_store s(f); }},
        {"sqlite_json_event_store", [](const std::string& f) { pj::sqlite_json_event_store s(f); }},
        {"sqlite_storage", [](const std::string& f) { pj::sqlite_storage s(f); }},
    };
    return all;
}

bool exists(const std::string& file) {
    return std::filesystem::exists(file);
}

/// Opens `file` every way and checks each refusal says `why` and leaves the file as it was.
void check_refused(const std::string& file, const std::string& why, bool no_side_files) {
    const std::string before = sqlite_test::file_bytes(file);
    REQUIRE_FALSE(before.empty());
    for (const auto& opener : openers()) {
        INFO("opened as " << opener.first);
        const auto& open = opener.second;  // not a structured binding: clang 14 cannot capture those
        CHECK_THAT(error_of([&] { open(file); }), Contains(why) && Contains("nothing was changed"));
        CHECK(sqlite_test::file_bytes(file) == before);
        if (no_side_files) {
            CHECK_FALSE(exists(file + "-wal"));
            CHECK_FALSE(exists(file + "-shm"));
            CHECK_FALSE(exists(file + "-journal"));
        }
    }
}

}  // namespace

TEST_CASE("a file projectionist did not create is refused and left untouched", "[sqlite][store][refusal]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    SECTION("a SQLite database of someone else") {
        const std::string file = dir.file("foreign.db");
        {
            sqlite_test::raw_db raw(file);
            raw.exec("CREATE TABLE foo(x INTEGER); INSERT INTO foo VALUES (42);");
        }
        check_refused(file, "projectionist did not create", true);
        sqlite_test::raw_db raw(file, SQLITE_OPEN_READONLY);
        CHECK(raw.int64("SELECT x FROM foo") == 42);
        CHECK(raw.int64("SELECT count(*) FROM sqlite_schema") == 1);
        CHECK(raw.int64("PRAGMA application_id") == 0);
        CHECK(sqlite_test::integrity_ok(file));
    }
    SECTION("a projectionist file of a newer schema version") {
        const std::string file = dir.file("newer.db");
        {
            pj::sqlite_event_store store(file, fast);
            store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        }
        {
            sqlite_test::raw_db raw(file);
            raw.exec("PRAGMA user_version = 99");
        }
        check_refused(file, "schema version 99", false);
        sqlite_test::raw_db raw(file, SQLITE_OPEN_READONLY);
        CHECK(raw.int64("PRAGMA user_version") == 99);
        CHECK(sqlite_test::integrity_ok(file));
    }
    SECTION("a file that is not SQLite at all") {
        const std::string file = dir.file("notes.txt");
        {
            std::ofstream out(file, std::ios::binary);
            for (int i = 0; i < 40; ++i) out << "line " << i << ": this is a text file, not a database\n";
        }
        check_refused(file, "not a SQLite database", true);
    }
    SECTION("a SQLite database of another application") {
        const std::string file = dir.file("other.db");
        {
            sqlite_test::raw_db raw(file);
            raw.exec("PRAGMA application_id = 305419896");  // 0x12345678, and no tables
        }
        check_refused(file, "belongs to another application", true);
        CHECK_THAT(error_of([&] { pj::sqlite_storage s(file); }), Contains("0x12345678"));
        sqlite_test::raw_db raw(file, SQLITE_OPEN_READONLY);
        CHECK(raw.int64("SELECT count(*) FROM sqlite_schema") == 0);
        CHECK(sqlite_test::integrity_ok(file));
    }
}

// ---- Options and PRAGMAs ----

TEMPLATE_TEST_CASE("options: WAL always, synchronous FULL by default and NORMAL on request", "[sqlite][store]",
                   pj::sqlite_event_store, pj::sqlite_json_event_store) {
    temp_dir dir(sqlite_test::fast_temp_base());
    {
        TestType store(dir.file("full.db"));
        pj::detail::sqlite::statement mode(store.connection(), "PRAGMA journal_mode");
        REQUIRE(mode.step());
        CHECK(mode.text(0) == "wal");
        CHECK(pj::detail::sqlite::pragma_int(store.connection(), "synchronous") == 2);
        CHECK(pj::detail::sqlite::pragma_int(store.connection(), "busy_timeout") == 5000);
        CHECK(store.options().synchronous == pj::sqlite_synchronous::full);
    }
    {
        pj::sqlite_options options{pj::sqlite_synchronous::normal, std::chrono::milliseconds(250)};
        TestType store(dir.file("normal.db"), options);
        {
            pj::detail::sqlite::statement mode(store.connection(), "PRAGMA journal_mode");
            REQUIRE(mode.step());
            CHECK(mode.text(0) == "wal");
        }
        CHECK(pj::detail::sqlite::pragma_int(store.connection(), "synchronous") == 1);
        CHECK(pj::detail::sqlite::pragma_int(store.connection(), "busy_timeout") == 250);
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    }
    // The file is projectionist's: application id and schema version are set.
    sqlite_test::raw_db raw(dir.file("normal.db"), SQLITE_OPEN_READONLY);
    CHECK(raw.int64("PRAGMA application_id") == pj::detail::sqlite::application_id);
    CHECK(raw.int64("PRAGMA user_version") == pj::detail::sqlite::schema_version);
    CHECK(raw.text("PRAGMA journal_mode") == "wal");
    CHECK(sqlite_test::integrity_ok(dir.file("full.db")));
    CHECK(sqlite_test::integrity_ok(dir.file("normal.db")));
}

TEST_CASE("the storage honours the options on every connection", "[sqlite][storage]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("models.db");
    {
        pj::sqlite_storage storage(file, pj::sqlite_options{pj::sqlite_synchronous::normal});
        CHECK(text(storage.connection(), "PRAGMA journal_mode") == "wal");
        CHECK(scalar(storage.connection(), "PRAGMA synchronous") == 1);
        auto s = storage.open("x_v1");
        CHECK(text(s.connection(), "PRAGMA journal_mode") == "wal");
        CHECK(scalar(s.connection(), "PRAGMA synchronous") == 1);
        CHECK(s.path() == file);
        CHECK(s.raw() == s.connection().get());
        CHECK(s.raw() != storage.connection().get());  // its own connection
    }
    {
        pj::sqlite_storage storage(file);  // the default: FULL
        CHECK(scalar(storage.connection(), "PRAGMA synchronous") == 2);
        auto s = storage.open("x_v1");
        CHECK(scalar(s.connection(), "PRAGMA synchronous") == 2);
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEST_CASE("the page cache size option reaches the connection", "[sqlite][storage][options]") {
    sqlite_test::temp_dir dir;
    projectionist::sqlite_options options;
    options.cache_size_kib = 65536;
    projectionist::sqlite_storage storage(dir.file("app.db"), options);
    projectionist::detail::sqlite::statement s(storage.connection(), "PRAGMA cache_size");
    REQUIRE(s.step());
    CHECK(s.int64(0) == -65536);
}

TEST_CASE("a storage session's connection gets the larger of the two page caches", "[sqlite][storage][options]") {
    sqlite_test::temp_dir dir;
    const auto cache = [](projectionist::detail::sqlite::connection& db) {
        projectionist::detail::sqlite::statement s(db, "PRAGMA cache_size");
        REQUIRE(s.step());
        return s.int64(0);
    };
    projectionist::sqlite_options options;
    {
        projectionist::sqlite_storage storage(dir.file("default.db"), options);
        const std::int64_t sqlite_default = cache(storage.connection());
        REQUIRE(sqlite_default != -65536);
        auto session = storage.open("x_v1");
        CHECK(cache(session.connection()) == -65536);          // session_cache_size_kib's default
        CHECK(cache(storage.connection()) == sqlite_default);  // the storage's own connection keeps it
        options.session_cache_size_kib = 0;
        projectionist::sqlite_storage off(dir.file("default.db"), options);
        auto plain = off.open("x_v1");
        CHECK(cache(plain.connection()) == sqlite_default);
    }
    options.cache_size_kib = 131072;
    options.session_cache_size_kib = 4096;
    {
        projectionist::sqlite_storage storage(dir.file("larger.db"), options);
        auto session = storage.open("x_v1");
        CHECK(cache(session.connection()) == -131072);  // never lowered
    }
    options.cache_size_kib = 1024;
    {
        projectionist::sqlite_storage storage(dir.file("raised.db"), options);
        auto session = storage.open("x_v1");
        CHECK(cache(storage.connection()) == -1024);
        CHECK(cache(session.connection()) == -4096);
    }
}

TEST_CASE("the store's appending connection gets the larger of the two page caches", "[sqlite][store][options]") {
    sqlite_test::temp_dir dir;
    const auto cache = [](projectionist::sqlite_event_store& store) {
        projectionist::detail::sqlite::statement s(store.connection(), "PRAGMA cache_size");
        REQUIRE(s.step());
        return s.int64(0);
    };
    std::int64_t sqlite_default = 0;
    {
        projectionist::sqlite_storage plain(dir.file("plain.db"));  // keeps SQLite's default
        projectionist::detail::sqlite::statement s(plain.connection(), "PRAGMA cache_size");
        REQUIRE(s.step());
        sqlite_default = s.int64(0);
    }
    REQUIRE(sqlite_default != -65536);
    {
        // Raised at the first append, not before: a store that only reads keeps the default.
        projectionist::sqlite_event_store store(dir.file("default.db"));
        CHECK(cache(store) == sqlite_default);
        (void)store.head();
        CHECK(cache(store) == sqlite_default);
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        CHECK(cache(store) == -65536);  // append_cache_size_kib's default
    }
    {
        projectionist::sqlite_event_store store(dir.file("batch.db"));
        auto batch = store.new_batch();
        batch.add(ticket_stream{}, "t-1", projectionist::expected_version(0), ticket_registered{"t-1", "bug"});
        store.append(batch);
        CHECK(cache(store) == -65536);
    }
    {
        projectionist::sqlite_event_store store(dir.file("transaction.db"));
        auto tx = store.transaction();
        CHECK(cache(store) == -65536);
    }
    projectionist::sqlite_options options;
    options.append_cache_size_kib = 0;
    {
        projectionist::sqlite_event_store store(dir.file("off.db"), options);
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        CHECK(cache(store) == sqlite_default);
    }
    options.cache_size_kib = 131072;
    options.append_cache_size_kib = 4096;
    {
        projectionist::sqlite_event_store store(dir.file("larger.db"), options);
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        CHECK(cache(store) == -131072);  // never lowered
    }
    options.cache_size_kib = 1024;
    {
        projectionist::sqlite_event_store store(dir.file("raised.db"), options);
        CHECK(cache(store) == -1024);
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        CHECK(cache(store) == -4096);
    }
}

TEST_CASE("a page cache set in pages is compared at the file's page size", "[sqlite][options]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    pj::detail::sqlite::connection db(dir.file("pages.db"), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    db.exec("PRAGMA page_size=16384");
    db.exec("CREATE TABLE t(x)");  // the file now has its page size
    REQUIRE(scalar(db, "PRAGMA page_size") == 16384);

    db.exec("PRAGMA cache_size=5000");  // 5000 pages of 16 KiB: 80000 KiB
    CHECK_FALSE(pj::detail::sqlite::raise_cache(db, 65536).has_value());
    CHECK(scalar(db, "PRAGMA cache_size") == 5000);  // not lowered to 64 MiB

    db.exec("PRAGMA cache_size=100");  // 1600 KiB
    const std::optional<std::int64_t> replaced = pj::detail::sqlite::raise_cache(db, 65536);
    REQUIRE(replaced.has_value());
    CHECK(*replaced == 100);  // what a caller restores afterwards
    CHECK(scalar(db, "PRAGMA cache_size") == -65536);
}

// ---- Read-model storage in the file ----

TEST_CASE("sqlite_table maps every supported field type to a column and back", "[sqlite][storage][table]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("models.db");
    {
        pj::sqlite_storage storage(file, fast);
        pj::sqlite_table<wide_table> table(storage.connection(), "wide");
        const std::string sql = table.create_sql();
        CHECK_THAT(sql, Contains(R"(CREATE TABLE IF NOT EXISTS "wide" ()"));
        CHECK_THAT(sql, Contains(R"("name" TEXT NOT NULL, )"));
        CHECK_THAT(sql, Contains(R"("id" INTEGER NOT NULL, )"));
        CHECK_THAT(sql, Contains(R"("small" INTEGER NOT NULL, )"));
        CHECK_THAT(sql, Contains(R"("flag" INTEGER NOT NULL, )"));
        CHECK_THAT(sql, Contains(R"("ratio" REAL NOT NULL, )"));
        CHECK_THAT(sql, Contains(R"("tone" INTEGER NOT NULL, )"));
        CHECK_THAT(sql, Contains(R"("note" TEXT, )"));
        CHECK_THAT(sql, Contains(R"("count" INTEGER, )"));
        CHECK_THAT(sql, Contains(R"("at" INTEGER NOT NULL, )"));
        CHECK_THAT(sql, Contains(R"(PRIMARY KEY("id")))"));
        storage.connection().exec(sql);
        storage.connection().exec(sql);  // IF NOT EXISTS: idempotent
        CHECK(storage.has_table("wide"));
        CHECK(table.name() == "wide");
        CHECK(table.quoted_name() == "\"wide\"");

        const wide_row full{"O'Brien \"quoted\" ünïcødé",
                            std::numeric_limits<std::int64_t>::max(),
                            std::numeric_limits<std::int32_t>::min(),
                            true,
                            0.1,
                            shade::dark,
                            "a note",
                            0,
                            at_ns(1'700'000'000'123'456'789)};
        const wide_row sparse{"",
                              std::numeric_limits<std::int64_t>::min(),
                              7,
                              false,
                              -2.5e300,
                              shade::bright,
                              std::nullopt,
                              std::nullopt,
                              at_ns(-1'000)};
        const wide_row empty_note{"plain", 0, 0, false, 0.0, shade::light, std::string(), -4, at_ns(0)};
        table.insert(full);
        table.insert(sparse);
        table.insert(empty_note);

        CHECK(table.find(full.id) == full);
        CHECK(table.find(sparse.id) == sparse);
        CHECK(table.find(empty_note.id) == empty_note);
        CHECK(table.size() == 3);
        std::vector<wide_row> visited;
        table.for_each([&](const wide_row& r) { visited.push_back(r); });
        CHECK(visited == std::vector<wide_row>{sparse, empty_note, full});  // in key order

        // What SQLite holds: NULL for empty optionals, real types otherwise.
        const auto types = [&](std::int64_t id) {
            return text(storage.connection(),
                        fmt::format("SELECT typeof(name) || ',' || typeof(id) || ',' || typeof(small) || ',' || "
                                    "typeof(flag) || ',' || typeof(ratio) || ',' || typeof(tone) || ',' || "
                                    "typeof(note) || ',' || typeof(count) || ',' || typeof(at) FROM \"wide\" "
                                    "WHERE id = {}",
                                    id));
        };
        CHECK(types(full.id) == "text,integer,integer,integer,real,integer,text,integer,integer");
        CHECK(types(sparse.id) == "text,integer,integer,integer,real,integer,null,null,integer");
        CHECK(types(empty_note.id) == "text,integer,integer,integer,real,integer,text,integer,integer");
        CHECK(scalar(storage.connection(), fmt::format("SELECT flag FROM \"wide\" WHERE id = {}", sparse.id)) == 0);
        CHECK(scalar(storage.connection(), fmt::format("SELECT flag FROM \"wide\" WHERE id = {}", full.id)) == 1);
        CHECK(scalar(storage.connection(), fmt::format("SELECT tone FROM \"wide\" WHERE id = {}", full.id)) == -3);
        CHECK(scalar(storage.connection(), fmt::format("SELECT at FROM \"wide\" WHERE id = {}", full.id)) ==
              1'700'000'000'123'456'789);

        // A second handle on the same table (as find_table gives) reads the same rows.
        auto again = storage.find_table<wide_table>("wide");
        REQUIRE(again.has_value());
        CHECK(again->find(full.id) == full);
        CHECK_FALSE(storage.find_table<wide_table>("missing").has_value());
    }
    CHECK(sqlite_test::integrity_ok(file));
}

// The operations themselves are the shared contract (tests/backend: "the table operations keep
// the table's contract"); here, what a handle made on a raw connection writes for a name that
// needs quoting.
TEST_CASE("sqlite_table quotes a name in its DDL and names it in its errors", "[sqlite][storage][table]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("models.db");
    {
        pj::sqlite_storage storage(file, fast);
        const std::string name = "odd \"t\" name";
        pj::sqlite_table<ticket_table> table(storage.connection(), name);
        CHECK(table.quoted_name() == "\"odd \"\"t\"\" name\"");
        CHECK_THAT(table.create_sql(), Contains("\"odd \"\"t\"\" name\"") && Contains(R"(PRIMARY KEY("ticket_id"))"));
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
        try {
            table.update("a", [](ticket_row& r) { r.ticket_id = "a2"; });
            FAIL("an update changed the key");
        } catch (const pj::table_error& e) {
            CHECK_THAT(e.what(), Contains(name) && Contains("'a'") && Contains("changed the key"));
        }
        CHECK(table.find("a") == a);
        CHECK(keys_of(table) == std::vector<std::string>{"a"});
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEST_CASE("sqlite_table takes a key as any type the key is made from", "[sqlite][storage][table]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    pj::sqlite_storage storage(dir.file("models.db"), fast);
    pj::sqlite_table<ticket_table> table(storage.connection(), "t_v1");
    storage.connection().exec(table.create_sql());
    table.insert({"a", "bug", "open", 0});
    table.insert({"b", "bug", "open", 0});

    const std::string text = "a";
    const std::string_view a(text);
    const char* const b = "b";
    CHECK(table.contains(a));
    CHECK(table.find(a) == ticket_row{"a", "bug", "open", 0});
    CHECK(table.update(a, [](ticket_row& r) { r.status = "closed"; }));
    CHECK(table.find(std::string("a"))->status == "closed");
    CHECK_FALSE(table.update(std::string_view("zz"), [](ticket_row&) { FAIL("called for a missing row"); }));
    CHECK(table.erase(b));
    CHECK_FALSE(table.contains(b));
    CHECK_FALSE(table.find(std::string_view("b")));
    CHECK(keys_of(table) == std::vector<std::string>{"a"});
}

TEST_CASE("sqlite_table keeps a table with a non-integer key in one B-tree, and works on tables with a rowid",
          "[sqlite][storage][table]") {
    static_assert(pj::sqlite_without_rowid<ticket_table>);     // text key
    static_assert(!pj::sqlite_without_rowid<wide_table>);      // integer key: the rowid itself
    static_assert(!pj::sqlite_without_rowid<document_table>);  // specialized
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("models.db");
    pj::sqlite_storage storage(file, fast);
    auto& db = storage.connection();
    // What SQLite recorded, and the indexes it made for the table (a rowid table with a text key
    // has one for the key, sqlite_autoindex_<table>_1).
    auto recorded = [&](std::string_view table) {
        return text(db, fmt::format("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = '{}'", table));
    };
    auto indexes = [&](std::string_view table) {
        return scalar(
            db, fmt::format("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = '{}'", table));
    };

    auto session = storage.open("t_v1");
    auto& tickets = session.create_table<ticket_table>("t_v1");
    CHECK_THAT(tickets.create_sql(), EndsWith(R"(PRIMARY KEY("ticket_id")) WITHOUT ROWID)"));
    CHECK_THAT(recorded("t_v1"), EndsWith("WITHOUT ROWID"));
    CHECK(indexes("t_v1") == 0);
    auto& wide = session.create_table<wide_table>("w_v1");
    CHECK_THAT(wide.create_sql(), EndsWith(R"(PRIMARY KEY("id")))"));
    CHECK(indexes("w_v1") == 0);
    auto& documents = session.create_table<document_table>("d_v1");
    CHECK_THAT(documents.create_sql(), EndsWith(R"(PRIMARY KEY("path")))"));
    CHECK(indexes("d_v1") == 1);

    // A table created with a rowid (by an earlier release of this library: the same text without
    // WITHOUT ROWID) keeps its layout when a handle creates it again, and every operation works.
    db.exec(R"(CREATE TABLE "old_v1" ("ticket_id" TEXT NOT NULL, "type" TEXT NOT NULL, "status" TEXT NOT NULL, )"
            R"("reopened" INTEGER NOT NULL, PRIMARY KEY("ticket_id")))");
    db.exec(R"(INSERT INTO "old_v1" VALUES ('b', 'bug', 'open', 1), ('a', 'task', 'open', 0))");
    auto& old = session.create_table<ticket_table>("old_v1");
    CHECK_THAT(recorded("old_v1"), !Contains("WITHOUT ROWID"));
    CHECK(indexes("old_v1") == 1);
    for (pj::sqlite_table<ticket_table>* t : {&tickets, &old}) {
        INFO(t->name());
        if (t == &tickets) {
            t->insert({"b", "bug", "open", 1});
            t->insert({"a", "task", "open", 0});
        }
        t->insert({"c", "bug", "open", 0});
        CHECK_THROWS_AS(t->insert({"c", "task", "open", 0}), pj::table_error);
        CHECK(t->update("a", [](ticket_row& r) { ++r.reopened; }));
        t->upsert({"b", "bug", "closed", 4});
        CHECK(t->erase("c"));
        const ticket_row d{"d", "bug", "open", 0}, a{"a", "task", "open", 1};
        const ticket_row b2{"b", "bug", "closed", 5};
        const std::vector<const ticket_row*> added{&d}, changed{&b2};
        const std::string gone = "zz";
        const std::vector<const std::string*> erased{&gone};
        t->write_bulk(added, changed, erased);
        CHECK(t->find("a") == a);
        CHECK(t->find("b") == b2);
        CHECK_FALSE(t->find("c"));
        CHECK(keys_of(*t) == std::vector<std::string>{"a", "b", "d"});
        const std::string ka = "a", kc = "c", kd = "d";
        const std::vector<const std::string*> wanted{&kd, &kc, &ka};
        std::vector<std::string> found;
        t->find_each(wanted, [&](ticket_row&& r) { found.push_back(r.ticket_id); });
        std::sort(found.begin(), found.end());
        CHECK(found == std::vector<std::string>{"a", "d"});
        CHECK(t->size() == 3);
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEST_CASE("per-aggregate positions are logged per batch and replaced by a snapshot from time to time",
          "[sqlite][storage][session]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("models.db");
    pj::sqlite_options options = fast;
    options.aggregate_position_log_limit = 8;
    pj::sqlite_storage storage(file, options);
    auto& db = storage.connection();
    auto log_rows = [&] {
        return scalar(db, "SELECT count(*) FROM projectionist_aggregate_position_log WHERE projection = 'x_v1'");
    };

    pj::checkpoint expected;
    std::uint64_t position = 0;
    // Each batch changes three aggregates, one of them twice (the runner lists it once per event).
    auto batch = [&](std::initializer_list<std::uint64_t> changed) {
        auto s = storage.open("x_v1");
        pj::checkpoint cp = s.load_checkpoint();
        REQUIRE(cp.position == position);
        REQUIRE(cp.aggregate_versions == expected.aggregate_versions);
        REQUIRE(cp.aggregates_tracked == expected.aggregates_tracked);
        std::vector<std::uint64_t> list;
        for (const auto n : changed) {
            if (n >= cp.aggregate_versions.size()) cp.aggregate_versions.resize(n + 1, 0);
            if (cp.aggregate_versions[n]++ == 0) ++cp.aggregates_tracked;
            list.push_back(n);
        }
        position += changed.size();
        cp.position = position;
        s.begin();
        s.commit(cp, list);
        expected = cp;
    };

    batch({1, 2, 2, 7});
    CHECK(log_rows() == 1);
    // One row holds the batch's positions, each aggregate once, readable with the JSON functions.
    CHECK(text(db, "SELECT versions FROM projectionist_aggregate_position_log") == R"({"1":1,"2":2,"7":1})");
    CHECK(scalar(db, "SELECT entries FROM projectionist_aggregate_position_log") == 3);
    batch({2, 3, 3});
    CHECK(log_rows() == 2);
    // Nine positions for four tracked aggregates, past the limit (8) and twice the tracked: the
    // batch writes a snapshot of every position instead, and the older rows go.
    batch({1, 2, 3, 7});
    CHECK(log_rows() == 1);
    CHECK(text(db, "SELECT versions FROM projectionist_aggregate_position_log") == R"({"1":2,"2":4,"3":3,"7":2})");
    CHECK(scalar(db, "SELECT entries FROM projectionist_aggregate_position_log") == 4);
    batch({2, 4});
    CHECK(log_rows() == 2);

    // The view shows the positions as one table: the newest version per aggregate.
    CHECK(scalar(db, "SELECT count(*) FROM projectionist_aggregate_positions WHERE projection = 'x_v1'") == 5);
    CHECK(scalar(db, "SELECT version FROM projectionist_aggregate_positions WHERE aggregate_number = 2") == 5);
    CHECK(scalar(db, "SELECT sum(version) FROM projectionist_aggregate_positions WHERE projection = 'x_v1'") ==
          2 + 5 + 3 + 1 + 2);

    // A new session (another process, after a crash) loads the snapshot and the rows after it.
    {
        auto s = storage.open("x_v1");
        const pj::checkpoint& cp = s.load_checkpoint();
        CHECK(cp.position == position);
        CHECK(cp.aggregate_versions == expected.aggregate_versions);
        CHECK(cp.aggregates_tracked == 5);
    }
    // A rolled-back batch leaves no log row.
    {
        auto s = storage.open("x_v1");
        s.begin();
        s.rollback();
    }
    CHECK(log_rows() == 2);
    // Reset forgets both.
    {
        auto s = storage.open("x_v1");
        s.begin();
        s.reset_checkpoint();
        s.commit(s.load_checkpoint(), {});
    }
    CHECK(log_rows() == 0);
    CHECK(scalar(db, "SELECT count(*) FROM projectionist_aggregate_positions") == 0);
    CHECK(sqlite_test::integrity_ok(file));
}

TEST_CASE("a version 1 file is upgraded when opened; its per-aggregate rows are kept", "[sqlite][storage]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("models.db");
    {
        pj::sqlite_storage storage(file, fast);
        auto& db = storage.connection();
        // What a version 1 build left behind: no position log, no view, rows per aggregate.
        db.exec("DROP VIEW projectionist_aggregate_positions");
        db.exec("DROP TABLE projectionist_aggregate_position_log");
        db.exec("PRAGMA user_version = 1");
        db.exec("INSERT INTO projectionist_checkpoints(projection, position) VALUES ('x_v1', 40)");
        db.exec(
            "INSERT INTO projectionist_aggregate_checkpoints(projection, aggregate_number, version) VALUES "
            "('x_v1', 0, 3), ('x_v1', 5, 2)");
    }
    pj::sqlite_storage storage(file, fast);
    CHECK(scalar(storage.connection(), "PRAGMA user_version") == pj::detail::sqlite::schema_version);
    CHECK(scalar(storage.connection(), "SELECT count(*) FROM projectionist_aggregate_positions") == 2);
    auto s = storage.open("x_v1");
    pj::checkpoint cp = s.load_checkpoint();
    CHECK(cp.position == 40);
    CHECK(cp.version_of(0) == 3);
    CHECK(cp.version_of(5) == 2);
    CHECK(cp.aggregates_tracked == 2);
    cp.aggregate_versions[5] = 3;
    cp.position = 41;
    const std::vector<std::uint64_t> changed{5};
    s.begin();
    s.commit(cp, changed);
    CHECK(scalar(storage.connection(),
                 "SELECT version FROM projectionist_aggregate_positions WHERE "
                 "aggregate_number = 5") == 3);
    CHECK(scalar(storage.connection(), "SELECT count(*) FROM projectionist_aggregate_checkpoints") == 2);
    // The first snapshot takes the old rows' place.
    {
        pj::sqlite_options tiny = fast;
        tiny.aggregate_position_log_limit = 1;
        pj::sqlite_storage small(file, tiny);
        auto t = small.open("x_v1");
        pj::checkpoint next = t.load_checkpoint();
        next.aggregate_versions[0] = 4;
        next.position = 42;
        const std::vector<std::uint64_t> first{0};
        t.begin();
        t.commit(next, first);
    }
    CHECK(scalar(storage.connection(), "SELECT count(*) FROM projectionist_aggregate_checkpoints") == 0);
    CHECK(text(storage.connection(), "SELECT versions FROM projectionist_aggregate_position_log ORDER BY id DESC") ==
          R"({"0":4,"5":3})");
    CHECK(sqlite_test::integrity_ok(file));
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
                            pj::detail::sqlite::quote(std::string(ctx.name()) + "_by_type"),
                            pj::detail::sqlite::quote(ctx.name())));
        db.exec(fmt::format("CREATE TABLE IF NOT EXISTS {}(position INTEGER PRIMARY KEY, ticket_id TEXT NOT NULL)",
                            pj::detail::sqlite::quote(audit_table(ctx.name()))));
    }

    void audit(auto& ctx, const std::string& ticket_id) {
        pj::detail::sqlite::statement s(ctx.storage().connection(),
                                        fmt::format("INSERT INTO {}(position, ticket_id) VALUES (?, ?)",
                                                    pj::detail::sqlite::quote(audit_table(ctx.name()))));
        s.bind(1, static_cast<std::int64_t>(ctx.envelope().position));
        s.bind(2, std::string_view(ticket_id));
        s.run();
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
          "[sqlite][storage][runner]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("app.db");
    {
        pj::sqlite_event_store store(file, fast);
        pj::sqlite_storage storage(file, fast);
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});   // 1
        store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "task"});  // 2
        store.append(ticket_stream{}, "t-3", 0, ticket_registered{"t-3", "bug"});   // 3
        store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});              // 4: fails
        audited p;
        p.fail_on = "t-1";
        pj::runner<audited, pj::sqlite_storage> r(store, storage, p, pj::runner_options{2});
        CHECK_THROWS_WITH(r.catch_up(), Contains("position 4") && Contains("audit refused the close"));

        // The index the init hook created.
        CHECK(scalar(storage.connection(),
                     "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'audited_v1_by_type' "
                     "AND tbl_name = 'audited_v1'") == 1);
        pj::detail::sqlite::statement plan(storage.connection(),
                                           "EXPLAIN QUERY PLAN SELECT * FROM \"audited_v1\" WHERE type = 'bug'");
        std::string details;
        while (plan.step()) details += std::string(plan.text(3)) + "\n";
        CHECK_THAT(details, Contains("audited_v1_by_type"));

        // The first batch {1, 2} committed its rows and its raw writes; the second {3, 4}
        // inserted t-3, updated t-1 and wrote two raw rows before failing: all of it is gone.
        CHECK(r.position() == 2);
        CHECK(scalar(storage.connection(), "SELECT count(*) FROM \"audited_v1_audit\"") == 2);
        CHECK(scalar(storage.connection(), "SELECT max(position) FROM \"audited_v1_audit\"") == 2);
        auto table = storage.find_table<audited::table>("audited_v1");
        REQUIRE(table.has_value());
        CHECK(table->size() == 2);
        CHECK(table->find("t-1")->status == "open");
        CHECK_FALSE(table->contains("t-3"));
    }
    CHECK(sqlite_test::integrity_ok(file));
}

namespace {

template <class Store>
std::size_t summary_count(Store& store) {
    typename Store::batch batch;
    store.read(0, 1000, batch);
    std::size_t n = 0;
    for (const auto& rec : batch) n += rec.stream() == "ticket_summary" ? 1 : 0;
    return n;
}
}  // namespace

TEST_CASE("in one SQLite file, emitted events commit in the batch's transaction", "[sqlite][runner][emission]") {
    temp_dir dir;
    pj::sqlite_event_store store(dir.file("app.db"));
    pj::sqlite_storage storage(dir.file("app.db"));
    append_ticket(store, "t-1", "bug", 0, true);
    SECTION("a failing batch emits nothing") {
        status_notifier p;
        p.fail_on_close = true;
        pj::runner<status_notifier, pj::sqlite_storage, pj::emit_always> r(store, storage, p);
        CHECK_THROWS_AS(r.catch_up(), pj::projection_error);
        CHECK(summary_count(store) == 0);
        CHECK(store.head() == 2);
        CHECK(r.status().emitted == 0);
    }
    SECTION("a committed batch's emitted events are in the log") {
        // Emission must go through the runner's own transaction, never through a separate commit
        // on the store's connection.
        int store_commits = 0;
        sqlite3_commit_hook(
            store.connection().get(), [](void* n) { return ++*static_cast<int*>(n), 0; }, &store_commits);
        pj::runner<status_notifier, pj::sqlite_storage, pj::emit_always> r(store, storage);
        r.catch_up();
        sqlite3_commit_hook(store.connection().get(), nullptr, nullptr);
        CHECK(store_commits == 0);
        CHECK(summary_count(store) == 2);
        CHECK(r.status().emitted == 2);
        CHECK(store.version_of(ticket_summary_stream{}, "t-1") == 2);
    }
    CHECK(sqlite_test::integrity_ok(dir.file("app.db")));
}

TEST_CASE("with the log in another file, emitted events are appended after the commit", "[sqlite][runner][emission]") {
    temp_dir dir;
    pj::sqlite_event_store store(dir.file("log.db"));
    pj::sqlite_storage storage(dir.file("models.db"));
    append_ticket(store, "t-1", "bug", 0, true);
    pj::runner<status_notifier, pj::sqlite_storage, pj::emit_when_live> r(store, storage);
    r.catch_up();
    CHECK(summary_count(store) == 0);  // not live: dropped
    CHECK(r.status().dropped == 2);
    r.make_live();
    store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"});
    int store_commits = 0;
    sqlite3_commit_hook(
        store.connection().get(), [](void* n) { return ++*static_cast<int*>(n), 0; }, &store_commits);
    r.catch_up();
    sqlite3_commit_hook(store.connection().get(), nullptr, nullptr);
    CHECK(store_commits == 1);  // the emitted event, through the store, after the batch
    CHECK(summary_count(store) == 1);
}

}  // namespace sqlite_specific_test
