// SQLite read-model storage: the column mapping of sqlite_table, every table operation, quoted
// identifiers, sessions (batch transactions, checkpoints, catalog, tables), and the raw SQL
// escape hatch from a projection's init hook and handlers.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>

#include <projectionist/sqlite.hpp>
#include <sqlite_test_support.hpp>
#include <tickets_domain.hpp>

namespace pj = projectionist;
using namespace tickets_domain;
using Catch::Contains;
using sqlite_test::temp_dir;

namespace {

/// These tests are not about durability: their files live on tmpfs when there is one
/// (fast_temp_base), and synchronous NORMAL spares an fsync per commit where there is not. The
/// options tests check the FULL default.
const pj::sqlite_options fast{pj::sqlite_synchronous::normal};

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

std::chrono::system_clock::time_point at_ns(std::int64_t ns) {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(ns)));
}

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

}  // namespace

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

TEST_CASE("sqlite_table operations keep the table's contract", "[sqlite][storage][table]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("models.db");
    {
        pj::sqlite_storage storage(file, fast);
        // A name that needs quoting: it is quoted everywhere.
        const std::string name = "odd \"t\" name";
        pj::sqlite_table<ticket_table> table(storage.connection(), name);
        CHECK(table.quoted_name() == "\"odd \"\"t\"\" name\"");
        CHECK_THAT(table.create_sql(), Contains("\"odd \"\"t\"\" name\"") && Contains(R"(PRIMARY KEY("ticket_id"))"));
        storage.connection().exec(table.create_sql());
        CHECK(storage.has_table(name));
        CHECK(table.empty());
        CHECK(table.size() == 0);

        const ticket_row a{"a", "bug", "open", 0};
        table.insert(a);
        try {
            table.insert({"a", "task", "closed", 9});
            FAIL("a duplicate key was inserted");
        } catch (const pj::table_error& e) {
            CHECK_THAT(e.what(), Contains(name) && Contains("'a'") && Contains("already exists"));
        }
        CHECK(table.find("a") == a);  // the stored row is unchanged
        CHECK(table.size() == 1);
        table.insert({"c", "bug", "open", 0});  // the insert statement still works after the error

        // upsert: new, then existing
        table.upsert({"b", "task", "open", 0});
        CHECK(table.size() == 3);
        table.upsert({"b", "task", "closed", 2});
        CHECK(table.size() == 3);
        CHECK(table.find("b") == ticket_row{"b", "task", "closed", 2});

        // update
        bool called = false;
        CHECK_FALSE(table.update("zzz", [&](ticket_row&) { called = true; }));
        CHECK_FALSE(called);
        CHECK(table.update("a", [](ticket_row& r) {
            r.status = "closed";
            ++r.reopened;
        }));
        CHECK(table.find("a") == ticket_row{"a", "bug", "closed", 1});
        try {
            table.update("a", [](ticket_row& r) {
                r.ticket_id = "a2";
                r.status = "changed";
            });
            FAIL("an update changed the key");
        } catch (const pj::table_error& e) {
            CHECK_THAT(e.what(), Contains(name) && Contains("'a'") && Contains("changed the key"));
        }
        CHECK(table.find("a") == ticket_row{"a", "bug", "closed", 1});
        CHECK_FALSE(table.contains("a2"));

        // find / contains
        CHECK_FALSE(table.find("nope").has_value());
        CHECK(table.contains("b"));
        CHECK_FALSE(table.contains("nope"));

        // for_each in key order, whatever the insertion order
        table.insert({"aa", "bug", "open", 0});
        CHECK(keys_of(table) == std::vector<std::string>{"a", "aa", "b", "c"});

        // erase
        CHECK(table.erase("aa"));
        CHECK_FALSE(table.erase("aa"));
        CHECK_FALSE(table.contains("aa"));
        CHECK(table.size() == 3);
        CHECK_FALSE(table.empty());

        // clear
        table.clear();
        CHECK(table.empty());
        CHECK(table.size() == 0);
        CHECK(keys_of(table).empty());
        CHECK(storage.has_table(name));
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEST_CASE("integer keys are ordered numerically", "[sqlite][storage][table]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("models.db");
    {
        pj::sqlite_storage storage(file, fast);
        pj::sqlite_table<wide_table> table(storage.connection(), "wide");
        storage.connection().exec(table.create_sql());
        for (std::int64_t id : {10, -5, 3, 100}) table.insert({"r", id, 0, false, 0.0, shade::light, {}, {}, {}});
        CHECK(keys_of(table) == std::vector<std::int64_t>{-5, 3, 10, 100});
        CHECK_THROWS_WITH(table.insert({"dup", 3, 0, false, 0.0, shade::light, {}, {}, {}}),
                          Contains("'3'") && Contains("'wide'"));
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEST_CASE("identifiers are quoted with embedded quotes doubled", "[sqlite][storage]") {
    CHECK(pj::detail::sqlite::quote("a\"b") == "\"a\"\"b\"");
    CHECK(pj::detail::sqlite::quote("plain") == "\"plain\"");
    CHECK(pj::detail::sqlite::quote("") == "\"\"");
    CHECK(pj::detail::sqlite::quote("\"\"") == "\"\"\"\"\"\"");
    CHECK(pj::detail::sqlite::quote("x\"; DROP TABLE y; --") == "\"x\"\"; DROP TABLE y; --\"");

    // A name built to break out of its quotes creates exactly one table, and nothing else happens.
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("models.db");
    {
        pj::sqlite_storage storage(file, fast);
        auto session = storage.open("x_v1");
        session.begin();
        auto& t = session.create_table<ticket_table>("x\"(a); DROP TABLE projectionist_catalog; --");
        t.insert({"k", "bug", "open", 0});
        session.commit(pj::checkpoint{}, {});
        CHECK(storage.has_table("x\"(a); DROP TABLE projectionist_catalog; --"));
        CHECK(storage.has_table("projectionist_catalog"));
        CHECK(t.find("k").has_value());
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEST_CASE("a session's rollback undoes the batch; commit makes it permanent", "[sqlite][storage][session]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("models.db");
    {
        pj::sqlite_storage storage(file, fast);
        auto s = storage.open("x_v1");
        CHECK(s.projection() == "x_v1");
        CHECK(s.path() == file);
        CHECK(s.open_table<ticket_table>("x_v1") == nullptr);

        s.begin();
        auto& t = s.create_table<ticket_table>("x_v1");
        t.insert({"a", "bug", "open", 0});
        t.insert({"b", "bug", "open", 0});
        s.commit(pj::checkpoint{}, {});
        CHECK(storage.has_table("x_v1"));

        s.begin();
        t.insert({"c", "bug", "open", 0});
        CHECK(t.update("a", [](ticket_row& r) { r.status = "closed"; }));
        CHECK(t.erase("b"));
        CHECK(t.size() == 2);  // the session sees its own writes
        s.rollback();

        auto view = storage.find_table<ticket_table>("x_v1");  // on the storage's own connection
        REQUIRE(view.has_value());
        CHECK(view->size() == 2);
        CHECK(view->find("a") == ticket_row{"a", "bug", "open", 0});
        CHECK(view->contains("b"));
        CHECK_FALSE(view->contains("c"));
        CHECK(t.size() == 2);

        // DDL is transactional too.
        s.begin();
        s.create_table<ticket_table>("x_v1_extra");
        CHECK(pj::detail::sqlite::table_exists(s.connection(), "x_v1_extra"));
        s.rollback();
        CHECK_FALSE(storage.has_table("x_v1_extra"));
        s.rollback();  // no transaction: nothing to do

        // The session's handles keep working after a rollback.
        s.begin();
        t.insert({"c", "task", "open", 0});
        s.commit(pj::checkpoint{}, {});
        CHECK(view->find("c") == ticket_row{"c", "task", "open", 0});

        // A session destroyed in the middle of a batch rolls it back.
        {
            auto other = storage.open("x_v1");
            other.begin();
            auto* h = other.open_table<ticket_table>("x_v1");
            REQUIRE(h != nullptr);
            h->insert({"d", "bug", "open", 0});
            h->clear();
        }
        CHECK(view->size() == 3);
        CHECK_FALSE(view->contains("d"));
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEST_CASE("a committed checkpoint is what a new session loads", "[sqlite][storage][session]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("models.db");
    {
        pj::sqlite_storage storage(file, fast);
        {
            auto s = storage.open("x_v1");
            const pj::checkpoint& fresh = s.load_checkpoint();
            CHECK(fresh.position == 0);
            CHECK(fresh.aggregate_versions.empty());
            CHECK(fresh.aggregates_tracked == 0);

            pj::checkpoint cp;
            cp.position = 7;
            cp.aggregate_versions = {3, 0, 5};
            cp.aggregates_tracked = 2;
            const std::vector<std::uint64_t> changed{0, 2};
            s.begin();
            s.commit(cp, changed);
        }
        {
            auto s = storage.open("x_v1");
            const pj::checkpoint& cp = s.load_checkpoint();
            CHECK(cp.position == 7);
            CHECK(cp.version_of(0) == 3);
            CHECK(cp.version_of(1) == 0);
            CHECK(cp.version_of(2) == 5);
            CHECK(cp.version_of(99) == 0);
            CHECK(cp.aggregates_tracked == 2);
            CHECK(&s.load_checkpoint() == &cp);  // loaded once, then kept

            // Only the aggregates a batch changed are written.
            pj::checkpoint next = cp;
            next.position = 12;
            next.aggregate_versions = {4, 0, 999, 0, 1};
            next.aggregates_tracked = 3;
            const std::vector<std::uint64_t> changed{0, 4};
            s.begin();
            s.commit(next, changed);
        }
        {
            auto s = storage.open("x_v1");
            const pj::checkpoint& cp = s.load_checkpoint();
            CHECK(cp.position == 12);
            CHECK(cp.version_of(0) == 4);
            CHECK(cp.version_of(2) == 5);  // not changed by the batch: not written
            CHECK(cp.version_of(4) == 1);
            CHECK(cp.aggregates_tracked == 3);
        }
        {
            // Checkpoints are per projection.
            auto other = storage.open("y_v1");
            CHECK(other.load_checkpoint().position == 0);
            CHECK(other.load_checkpoint().aggregates_tracked == 0);
        }
        {
            // A rolled-back reset leaves the stored checkpoint alone.
            auto s = storage.open("x_v1");
            s.begin();
            s.reset_checkpoint();
            s.rollback();
            auto t = storage.open("x_v1");
            CHECK(t.load_checkpoint().position == 12);
        }
        {
            auto s = storage.open("x_v1");
            CHECK(s.load_checkpoint().position == 12);
            s.begin();
            s.reset_checkpoint();
            CHECK(s.load_checkpoint().position == 0);
            CHECK(s.load_checkpoint().aggregate_versions.empty());
            s.commit(s.load_checkpoint(), {});
        }
        auto s = storage.open("x_v1");
        CHECK(s.load_checkpoint().position == 0);
        CHECK(s.load_checkpoint().aggregates_tracked == 0);
        CHECK(s.load_checkpoint().aggregate_versions.empty());
        CHECK(scalar(storage.connection(),
                     "SELECT count(*) FROM projectionist_aggregate_positions WHERE projection = 'x_v1'") == 0);
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

TEST_CASE("the catalog round-trips through sessions and the storage", "[sqlite][storage][catalog]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("models.db");
    {
        pj::sqlite_storage storage(file, fast);
        auto x = storage.open("x_v1");
        auto y = storage.open("y_v2");
        CHECK_FALSE(x.find_catalog().has_value());
        CHECK(storage.catalog().empty());

        pj::catalog_entry ex;
        ex.name = "x_v1";
        ex.base_name = "x";
        ex.version = 1;
        ex.state = pj::projection_state::backfilling;
        ex.live = true;
        ex.partitioning = "per_aggregate";
        ex.tables = {"x_v1", "x_v1_extra"};
        x.begin();
        x.save_catalog(ex);
        x.commit(x.load_checkpoint(), {});

        auto found = storage.find_catalog("x_v1");
        REQUIRE(found.has_value());
        CHECK(found->name == "x_v1");
        CHECK(found->base_name == "x");
        CHECK(found->version == 1);
        CHECK(found->state == pj::projection_state::backfilling);
        CHECK(found->live);
        CHECK(found->partitioning == "per_aggregate");
        CHECK(found->tables == std::vector<std::string>{"x_v1", "x_v1_extra"});
        REQUIRE(x.find_catalog().has_value());
        CHECK(x.find_catalog()->tables == ex.tables);

        // Saving again updates the row.
        ex.state = pj::projection_state::serving;
        ex.live = false;
        ex.tables = {"x_v1"};
        x.save_catalog(ex);  // outside a batch: autocommit
        found = storage.find_catalog("x_v1");
        REQUIRE(found.has_value());
        CHECK(found->state == pj::projection_state::serving);
        CHECK_FALSE(found->live);
        CHECK(found->tables == std::vector<std::string>{"x_v1"});

        pj::catalog_entry ey;
        ey.name = "y_v2";
        ey.base_name = "y";
        ey.version = 2;
        ey.state = pj::projection_state::retired;
        ey.partitioning = "global";
        y.save_catalog(ey);  // no tables at all
        const auto all = storage.catalog();
        REQUIRE(all.size() == 2);
        CHECK(all[0].name == "x_v1");
        CHECK(all[1].name == "y_v2");
        CHECK(all[1].version == 2);
        CHECK(all[1].state == pj::projection_state::retired);
        CHECK(all[1].tables.empty());
        CHECK(all[1].partitioning == "global");

        // A rolled-back erase keeps the row; a committed one removes it.
        x.begin();
        x.erase_catalog();
        CHECK_FALSE(x.find_catalog().has_value());
        x.rollback();
        CHECK(storage.find_catalog("x_v1").has_value());
        x.erase_catalog();
        CHECK_FALSE(storage.find_catalog("x_v1").has_value());
        CHECK(storage.catalog().size() == 1);
        CHECK(storage.find_catalog("y_v2").has_value());

        // A row this build cannot read is an error naming what is wrong, not a guess.
        storage.connection().exec("UPDATE projectionist_catalog SET state = 'bogus' WHERE name = 'y_v2'");
        CHECK_THROWS_AS(storage.find_catalog("y_v2"), pj::error);
        CHECK_THROWS_WITH(storage.find_catalog("y_v2"), Contains("y_v2") && Contains("'bogus'"));
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEST_CASE("has_table and drop_table", "[sqlite][storage][session]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("models.db");
    {
        pj::sqlite_storage storage(file, fast);
        auto s = storage.open("x_v1");
        CHECK_FALSE(storage.has_table("x_v1"));
        s.create_table<ticket_table>("x_v1").insert({"a", "bug", "open", 0});
        s.create_table<ticket_table>("x_v1_other");
        CHECK(storage.has_table("x_v1"));
        CHECK(storage.has_table("x_v1_other"));
        CHECK(s.open_table<ticket_table>("x_v1") != nullptr);
        CHECK(s.open_table<ticket_table>("x_v1")->size() == 1);

        s.begin();
        CHECK(s.drop_table("x_v1"));
        s.rollback();
        CHECK(storage.has_table("x_v1"));  // a rolled-back drop keeps the table and its rows
        CHECK(storage.find_table<ticket_table>("x_v1")->size() == 1);

        CHECK(s.drop_table("x_v1"));
        CHECK_FALSE(s.drop_table("x_v1"));
        CHECK_FALSE(storage.has_table("x_v1"));
        CHECK(storage.has_table("x_v1_other"));  // only the named table
        CHECK(s.open_table<ticket_table>("x_v1") == nullptr);
        CHECK_FALSE(s.drop_table("never_was"));
    }
    CHECK(sqlite_test::integrity_ok(file));
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

TEST_CASE("settings persist in the database, shared by every connection", "[sqlite][storage][settings]") {
    sqlite_test::temp_dir dir;
    const auto file = dir.file("app.db");
    {
        projectionist::sqlite_storage storage(file);
        CHECK_FALSE(storage.find_setting("router/tickets").has_value());
        storage.save_setting("router/tickets", "primary=tickets_v1");
        storage.save_setting("router/tickets", "primary=tickets_v2");
    }
    projectionist::sqlite_storage again(file);
    CHECK(again.find_setting("router/tickets") == "primary=tickets_v2");
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
