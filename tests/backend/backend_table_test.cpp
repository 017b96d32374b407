// The read-model table's contract, on the backend the executable was built for: every supported
// column type round-trips (empty optionals as NULL), the operations and their errors, key order
// (over a large table too), and identifiers that need quoting. The tables are made by a storage session outside a batch
// (every write goes at once) and read back through the storage's own connection. Memory runs it
// too: it visits rows in no particular order (the order is checked on a backend with
// backend::scans_in_key_order) and has no SQL to inspect.

#include <backend_suite.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>

#include <projectionist/detail/sql_text.hpp>

using namespace backend_test;
using Catch::Contains;

namespace {

enum class shade : std::int16_t { dark = -3, light = 1, bright = 2 };
enum class level : std::uint8_t { low = 0, high = 255 };

/// Every supported column type; the key is not the first column.
struct wide_row {
    BOOST_HANA_DEFINE_STRUCT(wide_row, (std::string, name), (std::int64_t, id), (std::int32_t, small), (bool, flag),
                             (double, ratio), (shade, tone), (std::optional<std::string>, note),
                             (std::optional<int>, count), (std::chrono::system_clock::time_point, at), (float, weight),
                             (std::uint8_t, tiny), (std::uint16_t, medium), (std::uint64_t, huge), (level, grade),
                             (std::optional<double>, maybe_ratio),
                             (std::optional<std::chrono::system_clock::time_point>, maybe_at),
                             (std::chrono::sys_seconds, day), (std::int8_t, signed_tiny));
    friend bool operator==(const wide_row&, const wide_row&) = default;
};
using wide_table = pj::table<wide_row, &wide_row::id>;
using ticket_table = pj::table<ticket_row, &ticket_row::ticket_id>;

wide_row plain(std::int64_t id) {
    wide_row r{};
    r.name = "r";
    r.id = id;
    r.tone = shade::light;
    return r;
}

template <class Handle>
std::vector<std::string> ticket_keys(Handle& table) {
    std::vector<std::string> out;
    for (const ticket_row& r : visited_rows<ticket_table>(table)) out.push_back(r.ticket_id);
    return out;
}

}  // namespace

TEST_CASE("every supported column type round-trips, empty optionals as NULL", "[backend][table]") {
    backend fx;
    auto storage = fx.storage();
    auto session = storage.open("wide_v1");
    auto& table = session.create_table<wide_table>("wide");

    const wide_row full{"O'Brien \"quoted\" back\\slash, {braces} (parens) ünïcødé 🎫 \t tab",
                        std::numeric_limits<std::int64_t>::max(),
                        std::numeric_limits<std::int32_t>::min(),
                        true,
                        0.1,
                        shade::dark,
                        "a note, with \"quotes\" and 'apostrophes' and \\",
                        0,
                        at_ns(1'700'000'000'123'456'789),
                        1.5f,
                        255,
                        65535,
                        std::numeric_limits<std::uint64_t>::max(),
                        level::high,
                        -0.5,
                        at_ns(42),
                        std::chrono::sys_seconds(std::chrono::seconds(1'700'000'000)),
                        std::numeric_limits<std::int8_t>::min()};
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
                          0,
                          0,
                          level::low,
                          std::nullopt,
                          std::nullopt,
                          std::chrono::sys_seconds(std::chrono::seconds(-86'400)),
                          127};
    wide_row texts = sparse;
    texts.id = 0;
    texts.name = "NULL";  // the text, not a null
    texts.note = "NULL";
    texts.ratio = 1.0 / 3.0;
    texts.weight = 3e38f;
    wide_row empty_note = sparse;
    empty_note.id = 99;
    empty_note.note = std::string();  // an empty string, not a null
    empty_note.ratio = -std::numeric_limits<double>::infinity();
    empty_note.maybe_ratio = std::numeric_limits<double>::infinity();
    empty_note.huge = std::uint64_t{1} << 63;
    table.insert(full);
    table.insert(sparse);
    table.insert(texts);
    table.insert(empty_note);

    CHECK(table.find(full.id) == full);
    CHECK(table.find(sparse.id) == sparse);
    CHECK(table.find(texts.id) == texts);
    CHECK(table.find(empty_note.id) == empty_note);

    // Through another connection, and in key order.
    auto view = storage.find_table<wide_table>("wide");
    REQUIRE(view.has_value());
    CHECK(visited_rows<wide_table>(*view) == std::vector<wide_row>{sparse, texts, empty_note, full});
    CHECK(view->size() == 4);

    // What the database holds: NULL for empty optionals only; enums and times as integers.
    if (!backend::speaks_sql) return;
    CHECK(fx.scalar(fmt::format("SELECT count(*) FROM wide WHERE note IS NULL AND count IS NULL AND maybe_ratio IS "
                                "NULL AND maybe_at IS NULL")) == 1);
    CHECK(fx.text("SELECT note FROM wide WHERE id = 99") == std::string());
    CHECK(fx.text("SELECT note FROM wide WHERE id = 0") == "NULL");
    CHECK(fx.scalar(fmt::format("SELECT tone FROM wide WHERE id = {}", full.id)) == -3);
    CHECK(fx.scalar(fmt::format("SELECT grade FROM wide WHERE id = {}", full.id)) == 255);
    CHECK(fx.scalar(fmt::format("SELECT flag FROM wide WHERE id = {}", full.id)) == 1);
    CHECK(fx.scalar(fmt::format("SELECT at FROM wide WHERE id = {}", full.id)) == full.at.time_since_epoch().count());
    CHECK(fx.scalar(fmt::format("SELECT day FROM wide WHERE id = {}", full.id)) == 1'700'000'000);
    CHECK(fx.integrity_ok());
}

// SQLite would store a NaN bound as REAL as NULL: sqlite_table writes it as the text 'NaN'.
TEST_CASE("a NaN double round-trips as NaN", "[backend][table]") {
    backend fx;
    auto storage = fx.storage();
    auto session = storage.open("wide_v1");
    auto& table = session.create_table<wide_table>("wide");
    SECTION("in an optional column") {
        wide_row row = plain(1);
        row.maybe_ratio = std::numeric_limits<double>::quiet_NaN();
        table.insert(row);
        const auto back = table.find(1);
        REQUIRE(back.has_value());
        REQUIRE(back->maybe_ratio.has_value());
        CHECK(std::isnan(*back->maybe_ratio));
    }
    SECTION("in a plain column") {
        wide_row row = plain(1);
        row.ratio = std::numeric_limits<double>::quiet_NaN();
        CHECK_NOTHROW(table.insert(row));
        const auto back = table.find(1);
        REQUIRE(back.has_value());
        CHECK(std::isnan(back->ratio));
        row.ratio = 1.0;
        row.weight = std::numeric_limits<float>::quiet_NaN();
        CHECK_NOTHROW(table.upsert(row));
        CHECK(std::isnan(table.find(1)->weight));
    }
}

TEST_CASE("the table operations keep the table's contract", "[backend][table]") {
    backend fx;
    auto storage = fx.storage();
    auto session = storage.open("t_v1");
    auto& table = session.create_table<ticket_table>("t_v1");
    CHECK(storage.has_table("t_v1"));
    CHECK(table.empty());
    CHECK(table.size() == 0);

    const ticket_row a{"a", "bug", "open", 0};
    table.insert(a);
    try {
        table.insert({"a", "task", "closed", 9});
        FAIL("a duplicate key was inserted");
    } catch (const pj::table_error& e) {
        CHECK_THAT(e.what(),
                   Contains("'t_v1'") && Contains("'a'") && Contains("already exists") && Contains("use upsert"));
    }
    CHECK(table.find("a") == a);  // the stored row is unchanged
    CHECK(table.size() == 1);
    table.insert({"c", "bug", "open", 0});  // inserting still works after the error

    // upsert: new, then existing
    table.upsert({"b", "task", "open", 0});
    CHECK(table.size() == 3);
    table.upsert({"b", "task", "closed", 2});
    CHECK(table.size() == 3);
    CHECK(table.find("b") == ticket_row{"b", "task", "closed", 2});

    // update: missing, present, and a key change (refused, nothing written)
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
        CHECK_THAT(e.what(), Contains("'t_v1'") && Contains("'a'") && Contains("changed the key"));
    }
    // SQL writes nothing; memory changed the row in place and keeps it under its key (inside a
    // runner's batch, the failed event's batch is rolled back).
    if (backend::speaks_sql)
        CHECK(table.find("a") == ticket_row{"a", "bug", "closed", 1});
    else
        CHECK(table.find("a")->ticket_id == "a");
    CHECK_FALSE(table.contains("a2"));

    // find / contains
    CHECK_FALSE(table.find("nope").has_value());
    CHECK(table.contains("b"));
    CHECK_FALSE(table.contains("nope"));

    // for_each in byte order, whatever the insertion order or the server's locale
    table.insert({"aa", "bug", "open", 0});
    table.insert({"B", "bug", "open", 0});
    table.insert({"é", "bug", "open", 0});
    table.insert({"Z", "bug", "open", 0});
    CHECK(ticket_keys(table) == std::vector<std::string>{"B", "Z", "a", "aa", "b", "c", "é"});
    auto view = storage.find_table<ticket_table>("t_v1");
    REQUIRE(view.has_value());
    CHECK(ticket_keys(*view) == ticket_keys(table));

    // erase
    CHECK(table.erase("aa"));
    CHECK_FALSE(table.erase("aa"));
    CHECK_FALSE(table.contains("aa"));
    CHECK_FALSE(table.erase("never"));
    CHECK(table.size() == 6);
    CHECK_FALSE(view->contains("aa"));

    // clear: the rows go, the table stays
    table.clear();
    CHECK(table.empty());
    CHECK(view->empty());
    CHECK(ticket_keys(table).empty());
    CHECK(storage.has_table("t_v1"));
    table.insert(a);
    CHECK(view->find("a") == a);
}

TEST_CASE("integer keys are ordered numerically and named in errors", "[backend][table]") {
    backend fx;
    auto storage = fx.storage();
    auto session = storage.open("wide_v1");
    auto& table = session.create_table<wide_table>("wide");
    for (std::int64_t id : {std::int64_t{10}, std::int64_t{-5}, std::int64_t{3}, std::int64_t{100}, -100'000'000'000})
        table.insert(plain(id));
    std::vector<std::int64_t> keys;
    for (const wide_row& r : visited_rows<wide_table>(table)) keys.push_back(r.id);
    CHECK(keys == std::vector<std::int64_t>{-100000000000, -5, 3, 10, 100});
    CHECK_THROWS_AS(table.insert(plain(3)), pj::table_error);
    CHECK_THROWS_WITH(table.insert(plain(3)), Contains("'3'") && Contains("'wide'") && Contains("already exists"));
    CHECK(table.erase(-5));
    CHECK_FALSE(table.contains(-5));
    CHECK(table.update(100, [](wide_row& r) { r.note = "hundred"; }));
    CHECK(table.find(100)->note == "hundred");
}

TEST_CASE("for_each pages through a large table in key order", "[backend][table]") {
    BACKEND_SKIP_UNLESS(backend::scans_in_key_order, "for_each in key order");
    backend fx;
    auto storage = fx.storage();
    auto s = storage.open("big_v1");
    s.begin();
    auto& t = s.create_table<wide_table>("big");
    for (std::int64_t id = 12'000; id > 0; --id) t.insert(plain(id));
    s.commit(pj::checkpoint{}, {});
    std::int64_t expected = 1;
    bool ordered = true;
    t.for_each([&](const wide_row& r) { ordered = ordered && r.id == expected++; });
    CHECK(ordered);
    CHECK(expected == 12'001);
}

TEST_CASE("table names that need quoting work, and cannot break out of their quotes", "[backend][table]") {
    // One quoting function for both dialects: double quotes, doubled inside.
    CHECK(pj::detail::quote("a\"b") == "\"a\"\"b\"");
    CHECK(pj::detail::quote("plain") == "\"plain\"");
    CHECK(pj::detail::quote("") == "\"\"");
    CHECK(pj::detail::quote("\"\"") == "\"\"\"\"\"\"");
    CHECK(pj::detail::quote("x\"; DROP TABLE y; --") == "\"x\"\"; DROP TABLE y; --\"");

    backend fx;
    auto storage = fx.storage();
    auto session = storage.open("x_v1");
    const std::vector<std::string> names{"odd \"t\" name", "with space", "Capital",
                                         "semi;colon",     "dot.ted",    "x\"(a); DROP TABLE projectionist_catalog; --",
                                         "ünïcødé"};
    for (const auto& name : names) {
        INFO(name);
        auto& t = session.create_table<ticket_table>(name);
        t.insert({"k", "bug", name, 0});
        CHECK(storage.has_table(name));
        auto view = storage.find_table<ticket_table>(name);
        REQUIRE(view.has_value());
        CHECK(view->find("k")->status == name);
        CHECK_THROWS_WITH(t.insert({"k", "bug", "again", 0}), Contains(name));
    }
    CHECK_FALSE(storage.has_table("capital"));  // names are case-sensitive
    CHECK_FALSE(storage.has_table("x"));
    if (backend::speaks_sql) {
        CHECK(storage.has_table("projectionist_catalog"));
        // Through raw SQL, with the name quoted as the dialects agree: double quotes, doubled inside.
        CHECK(fx.scalar("SELECT count(*) FROM \"odd \"\"t\"\" name\"") == 1);
    }
    // drop_table drops exactly the one it names.
    CHECK(session.drop_table("odd \"t\" name"));
    CHECK_FALSE(session.drop_table("odd \"t\" name"));
    CHECK_FALSE(storage.has_table("odd \"t\" name"));
    CHECK(storage.has_table("with space"));
    CHECK(session.open_table<ticket_table>("odd \"t\" name") == nullptr);
    CHECK(session.open_table<ticket_table>("with space") != nullptr);
    CHECK_FALSE(storage.find_table<ticket_table>("odd \"t\" name").has_value());
}
