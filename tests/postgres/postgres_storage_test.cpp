// PostgreSQL read-model storage: the column mapping of postgres_table, every table operation,
// quoted identifiers, the per-batch write buffer (what is sent when, read-your-writes, errors
// found when it is sent, a rolled-back batch dropping it), sessions (batch transactions,
// checkpoints with their compare-and-set, per-aggregate positions, catalog, tables), settings,
// and the raw SQL escape hatch from a projection's init hook and handlers.

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>

#include <postgres_test_support.hpp>
#include <projectionist/postgres.hpp>
#include <tickets_domain.hpp>

namespace pj = projectionist;
using namespace tickets_domain;
using Catch::Contains;
using postgres_test::pg_url;
using postgres_test::scalar;
using postgres_test::scoped_schema;

namespace {

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

std::string text(const pj::postgres_connection& db, const std::string& sql) {
    auto r = db.query(sql);
    REQUIRE(r.rows() == 1);
    return r.is_null(0, 0) ? "NULL" : std::string(r.text(0, 0));
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

TEST_CASE("postgres_table operations keep the table's contract", "[postgres][storage][table]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
    // A name that needs quoting: it is quoted everywhere.
    const std::string name = "odd \"t\" name";
    pj::postgres_table<ticket_table> table(storage.connection(), name);
    CHECK(table.quoted_name() == "\"odd \"\"t\"\" name\"");
    CHECK_THAT(table.create_sql(), Contains("\"odd \"\"t\"\" name\"") && Contains(R"(PRIMARY KEY ("ticket_id"))"));
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
    CHECK(table.pending_writes() == 0);     // outside a batch every write is sent at once

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

    // for_each in byte order (as SQLite's), whatever the insertion order or the server's locale
    table.insert({"aa", "bug", "open", 0});
    table.insert({"B", "bug", "open", 0});
    CHECK(keys_of(table) == std::vector<std::string>{"B", "a", "aa", "b", "c"});
    CHECK(table.erase("B"));

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

TEST_CASE("for_each pages through a large table in key order", "[postgres][storage][table]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
    auto s = storage.open("big_v1");
    s.begin();
    auto& t = s.create_table<wide_table>("big");
    for (std::int64_t id = 12'000; id > 0; --id)
        t.insert({"r", id, 0, false, 0.0, shade::light, {}, {}, {}, 0.f, 0, 0});
    s.commit(pj::checkpoint{}, {});
    std::int64_t expected = 1;
    bool ordered = true;
    t.for_each([&](const wide_row& r) { ordered = ordered && r.id == expected++; });
    CHECK(ordered);
    CHECK(expected == 12'001);
}

TEST_CASE("integer keys are ordered numerically", "[postgres][storage][table]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
    pj::postgres_table<wide_table> table(storage.connection(), "wide");
    storage.connection().exec(table.create_sql());
    for (std::int64_t id : {10, -5, 3, 100})
        table.insert({"r", id, 0, false, 0.0, shade::light, {}, {}, {}, 0.f, 0, 0});
    CHECK(keys_of(table) == std::vector<std::int64_t>{-5, 3, 10, 100});
    CHECK_THROWS_WITH(table.insert({"dup", 3, 0, false, 0.0, shade::light, {}, {}, {}, 0.f, 0, 0}),
                      Contains("'3'") && Contains("'wide'"));
}

TEST_CASE("identifiers are quoted with embedded quotes doubled", "[postgres][storage]") {
    CHECK(pj::detail::pg::quote("a\"b") == "\"a\"\"b\"");
    CHECK(pj::detail::pg::quote("plain") == "\"plain\"");
    CHECK(pj::detail::pg::quote("") == "\"\"");
    CHECK(pj::detail::pg::quote("x\"; DROP TABLE y; --") == "\"x\"\"; DROP TABLE y; --\"");

    // A name built to break out of its quotes creates exactly one table, and nothing else happens.
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
    auto session = storage.open("x_v1");
    session.begin();
    const std::string evil = "x\"(a); DROP TABLE projectionist_catalog; --";
    auto& t = session.create_table<ticket_table>(evil);
    t.insert({"k", "bug", "open", 0});
    session.commit(pj::checkpoint{}, {});
    CHECK(storage.has_table(evil));
    CHECK(storage.has_table("projectionist_catalog"));
    CHECK(t.find("k").has_value());
}

TEST_CASE("a session's rollback undoes the batch; commit makes it permanent", "[postgres][storage][session]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
    auto s = storage.open("x_v1");
    CHECK(s.projection() == "x_v1");
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
    CHECK(pj::detail::pg::table_exists(s.connection(), "x_v1_extra"));
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

TEST_CASE("a committed checkpoint is what a new session loads", "[postgres][storage][session]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
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
        const std::vector<std::uint64_t> changed{0, 2, 0, 2, 2};  // duplicates, as a batch may list them
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
        CHECK(s.load_checkpoint().position == 12);
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
                 "SELECT count(*) FROM projectionist_aggregate_checkpoints WHERE projection = 'x_v1'") == 0);
}

TEST_CASE("the checkpoint's compare-and-set refuses a stale session's batch", "[postgres][storage][session]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
    observer other(schema);
    auto a = storage.open("x_v1");
    auto b = storage.open("x_v1");
    auto& ta = a.create_table<ticket_table>("x_v1");
    auto* tb = b.open_table<ticket_table>("x_v1");
    REQUIRE(tb != nullptr);
    a.begin();
    a.commit(pj::checkpoint{}, {});
    CHECK(b.load_checkpoint().position == 0);

    a.begin();
    ta.insert({"from-a", "bug", "open", 0});
    a.commit(pj::checkpoint{5, {0, 1}, 1}, std::vector<std::uint64_t>{1});

    // b still believes the position is 0: its batch is refused and writes nothing.
    b.begin();
    tb->insert({"from-b", "bug", "open", 0});
    CHECK_THROWS_AS(b.commit(pj::checkpoint{5, {0, 9}, 1}, std::vector<std::uint64_t>{1}), pj::checkpoint_conflict);
    b.rollback();
    CHECK(other.count("x_v1") == 1);
    CHECK(b.reload_checkpoint().position == 5);
    CHECK(b.load_checkpoint().version_of(1) == 1);
    // Reloaded, it takes its turn.
    b.begin();
    tb->insert({"from-b", "bug", "open", 0});
    b.commit(pj::checkpoint{6, {0, 2}, 1}, std::vector<std::uint64_t>{1});
    CHECK(other.count("x_v1") == 2);
    CHECK(storage.open("x_v1").load_checkpoint().position == 6);
}

TEST_CASE("the catalog round-trips through sessions and the storage", "[postgres][storage][catalog]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
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
    ex.generation = 3;
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
    CHECK(found->generation == 3);
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

TEST_CASE("has_table and drop_table", "[postgres][storage][session]") {
    scoped_schema schema;
    scoped_schema elsewhere;
    pj::postgres_storage storage(pg_url(), schema.options());
    pj::postgres_storage neighbour(pg_url(), elsewhere.options());
    auto s = storage.open("x_v1");
    CHECK_FALSE(storage.has_table("x_v1"));
    s.create_table<ticket_table>("x_v1").insert({"a", "bug", "open", 0});
    s.create_table<ticket_table>("x_v1_other");
    CHECK(storage.has_table("x_v1"));
    CHECK(storage.has_table("x_v1_other"));
    CHECK_FALSE(neighbour.has_table("x_v1"));  // tables are per schema
    CHECK(s.open_table<ticket_table>("x_v1") != nullptr);
    CHECK(s.open_table<ticket_table>("x_v1")->size() == 1);

    s.begin();
    CHECK(s.drop_table("x_v1"));
    s.rollback();
    CHECK(storage.has_table("x_v1"));  // a rolled-back drop keeps the table and its rows
    CHECK(storage.find_table<ticket_table>("x_v1")->size() == 1);

    // Buffered writes to a table dropped in the same batch are not sent.
    auto* h = s.open_table<ticket_table>("x_v1");
    s.begin();
    h->insert({"b", "bug", "open", 0});
    CHECK(s.drop_table("x_v1"));
    s.commit(pj::checkpoint{}, {});
    CHECK_FALSE(s.drop_table("x_v1"));
    CHECK_FALSE(storage.has_table("x_v1"));
    CHECK(storage.has_table("x_v1_other"));  // only the named table
    CHECK(s.open_table<ticket_table>("x_v1") == nullptr);
    CHECK_FALSE(s.drop_table("never_was"));
}

TEST_CASE("settings persist in the database, shared by every connection", "[postgres][storage][settings]") {
    scoped_schema schema;
    {
        pj::postgres_storage storage(pg_url(), schema.options());
        CHECK_FALSE(storage.find_setting("router/tickets").has_value());
        storage.save_setting("router/tickets", "primary=tickets_v1");
        storage.save_setting("router/tickets", "primary=tickets_v2");
    }
    pj::postgres_storage again(pg_url(), schema.options());
    CHECK(again.find_setting("router/tickets") == "primary=tickets_v2");
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
