// Verification of a new projection version against the old one: structural diff, spot checks,
// sampling, and their text, JSON and exit status. The tickets story is built by real runners from
// one shared history, in memory and on SQLite, to show that verification does not depend on the
// storage.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/hana/define_struct.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <catch2/catch.hpp>

#include <projectionist/deploy/verify.hpp>
#include <projectionist/sqlite.hpp>

#include "sqlite_test_support.hpp"
#include "tickets_domain.hpp"

namespace verify_test {

namespace pj = projectionist;
namespace verify = projectionist::verify;
using namespace tickets_domain;

namespace {

// ---- the history both versions are built from ------------------------------------------------------
//
//   ticket  type      reopenings  closed at end   v1 status  v2 status  v2 reopened
//   t-01    bug       0           no              open       open       0
//   t-02    bug       0           yes             closed     closed     0
//   t-03    incident  1           no              closed     open       1
//   t-04    bug       2           yes             closed     closed     2
//   t-05    incident  1           no              closed     open       1
//   t-06    bug       0           yes             closed     closed     0
template <class Store>
void append_history(Store& store) {
    append_ticket(store, "t-01", "bug", 0, false);
    append_ticket(store, "t-02", "bug", 0, true);
    append_ticket(store, "t-03", "incident", 1, false);
    append_ticket(store, "t-04", "bug", 2, true);
    append_ticket(store, "t-05", "incident", 1, false);
    append_ticket(store, "t-06", "bug", 0, true);
}

// ---- a v2 that adds a column, as in examples/tickets_memory ------------------------------------------
struct narrow_row {
    BOOST_HANA_DEFINE_STRUCT(narrow_row, (std::string, ticket_id), (std::string, type), (std::string, status));
};
struct wide_row {
    BOOST_HANA_DEFINE_STRUCT(wide_row, (std::string, ticket_id), (std::string, type), (std::string, status),
                             (int, reopened));
};

template <unsigned V>
struct desk;

template <>
struct desk<1> : pj::projection<"desk", 1, ticket_stream> {
    using table = pj::table<narrow_row, &narrow_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open"}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](narrow_row& r) { r.status = "closed"; });
    }
};

template <>
struct desk<2> : pj::projection<"desk", 2, ticket_stream, pj::exhaustive> {
    using table = pj::table<wide_row, &wide_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open", 0}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](wide_row& r) { r.status = "closed"; });
    }
    void on(const ticket_reopened& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](wide_row& r) {
            r.status = "open";
            ++r.reopened;
        });
    }
};

// ---- hand-made tables -------------------------------------------------------------------------------
enum class colour : std::uint8_t { red = 1, green = 2 };
using millis = std::chrono::sys_time<std::chrono::milliseconds>;

struct measure_row {
    BOOST_HANA_DEFINE_STRUCT(measure_row, (std::string, id), (std::optional<int>, score), (double, weight),
                             (bool, flag), (colour, shade), (millis, at), (std::uint64_t, big));
};
using measure_table = pj::table<measure_row, &measure_row::id>;

struct count_row {
    BOOST_HANA_DEFINE_STRUCT(count_row, (std::string, id), (int, n));
};
struct count_row_wide {
    BOOST_HANA_DEFINE_STRUCT(count_row_wide, (std::string, id), (std::int64_t, n));
};
struct text_row {
    BOOST_HANA_DEFINE_STRUCT(text_row, (std::string, id), (std::optional<std::string>, note));
};

const verify::column_diff& column(const verify::structural_report& r, std::string_view name) {
    for (const auto& c : r.columns)
        if (c.name == name) return c;
    FAIL("no column " << name);
    throw;
}

bool mentions(const std::vector<std::string>& lines, std::string_view text) {
    return std::any_of(lines.begin(), lines.end(), [&](const auto& l) { return l.find(text) != std::string::npos; });
}

std::size_t rows_of(const verify::column_stats& s, std::string_view value) {
    REQUIRE(s.frequencies);
    for (const auto& f : *s.frequencies)
        if (f.value == value) return f.rows;
    return 0;
}

const boost::json::object& json_column(const boost::json::value& v, std::string_view name) {
    for (const auto& c : v.as_object().at("columns").as_array())
        if (c.as_object().at("name").as_string() == name) return c.as_object();
    FAIL("no column " << name << " in the JSON");
    throw;
}

/// The checks of the tickets story, the same whatever storage holds the tables.
template <class V1, class V2>
void check_tickets_structure(V1&& v1, V2&& v2) {
    // Nothing expected to change: status and reopened both fail, each named.
    const auto strict = verify::structural_diff(v1, v2);
    CHECK_FALSE(strict.pass);
    CHECK(strict.a_rows == 6);
    CHECK(strict.b_rows == 6);
    CHECK(strict.rows_ok);
    CHECK(mentions(strict.failures, "column 'status' differs"));
    CHECK(mentions(strict.failures, "column 'reopened' differs"));
    CHECK(strict.failures.size() == 2);

    const auto& status = column(strict, "status");
    CHECK(status.presence == verify::column_presence::both);
    CHECK(status.a->distinct == 2);
    CHECK(status.b->distinct == 2);
    CHECK(rows_of(*status.a, "open") == 1);
    CHECK(rows_of(*status.a, "closed") == 5);
    CHECK(rows_of(*status.b, "open") == 3);
    CHECK(rows_of(*status.b, "closed") == 3);
    CHECK(std::find(status.differences.begin(), status.differences.end(), "value 'open' rows 1 -> 3") !=
          status.differences.end());
    CHECK_FALSE(status.ok);

    const auto& type = column(strict, "type");
    CHECK(type.ok);
    CHECK(type.differences.empty());
    CHECK(rows_of(*type.b, "incident") == 2);

    const auto& reopened = column(strict, "reopened");
    CHECK(reopened.a->numeric);
    CHECK(reopened.a->integer_sum == 0);
    CHECK(reopened.b->integer_sum == 4);
    CHECK(reopened.b->max == 2.0);
    CHECK(reopened.b->distinct == 3);

    // Only status expected: reopened (same row type, always 0 in v1) still fails.
    const auto status_only = verify::structural_diff(v1, v2, {.expected_changes = {"status"}});
    CHECK_FALSE(status_only.pass);
    CHECK(status_only.failures.size() == 1);
    CHECK(mentions(status_only.failures, "'reopened'"));
    CHECK(column(status_only, "status").ok);

    const auto both = verify::structural_diff(v1, v2, {.expected_changes = {"status", "reopened"}});
    CHECK(both.pass);
    CHECK(both.failures.empty());
    CHECK(verify::exit_status(both) == 0);
}

template <class V1, class V2>
void check_tickets_spot_and_sample(V1&& v1, V2&& v2) {
    const verify::diff_options expected{.expected_changes = {"status", "reopened"}};

    const auto spot = verify::spot_check(v1, v2, {"t-01", "t-03", "t-99"}, expected);
    REQUIRE(spot.rows.size() == 3);
    CHECK(spot.rows[0].outcome == verify::row_outcome::equal);
    CHECK(spot.rows[1].outcome == verify::row_outcome::differs);
    CHECK(spot.rows[1].ok);
    REQUIRE(spot.rows[1].differences.size() == 2);
    CHECK(spot.rows[1].differences[0].field == "status");
    CHECK(spot.rows[1].differences[0].a == "closed");
    CHECK(spot.rows[1].differences[0].b == "open");
    CHECK(spot.rows[1].differences[1].field == "reopened");
    CHECK(spot.rows[1].differences[1].b == "1");
    CHECK(spot.rows[2].outcome == verify::row_outcome::missing_in_both);
    CHECK_FALSE(spot.pass);
    CHECK(spot.failures == std::vector<std::string>{"key 't-99': missing in both versions"});

    const auto known = verify::spot_check(v1, v2, std::vector<std::string>{"t-01", "t-02", "t-03"}, expected);
    CHECK(known.pass);
    CHECK(known.equal == 2);
    CHECK(known.differs == 1);

    const auto unexpected = verify::spot_check(v1, v2, {"t-03"}, {.expected_changes = {"reopened"}});
    CHECK_FALSE(unexpected.pass);
    CHECK(mentions(unexpected.failures, "key 't-03': field status differs"));

    // Sampling: the rows where the new logic should differ.
    const auto reopened = [](const ticket_row& t) { return t.reopened > 0; };
    const auto s = verify::sample(v1, v2, reopened, 100, expected, {.name = "reopened tickets"});
    CHECK(s.pass);
    CHECK(s.matched == 3);
    CHECK(s.compared == 3);
    CHECK(s.differs == 3);
    CHECK(s.equal == 0);
    CHECK(s.missing_in_a == 0);
    REQUIRE(s.differing_fields.size() == 2);
    for (const auto& f : s.differing_fields) CHECK(f.rows == (f.field == "status" ? 2u : 3u));

    const auto limited = verify::sample(v1, v2, reopened, 2, expected);
    CHECK(limited.matched == 3);
    CHECK(limited.compared == 2);
    CHECK(limited.rows.size() == 2);
    CHECK(mentions(limited.notes, "3 rows match; the first 2 were compared"));

    const auto status_unexpected = verify::sample(v1, v2, reopened, 100, {.expected_changes = {"reopened"}});
    CHECK_FALSE(status_unexpected.pass);
    CHECK(status_unexpected.failures.size() == 2);  // t-03 and t-05 changed status
    CHECK(mentions(status_unexpected.failures, "field status differs, which is not in expected_changes"));

    const auto never = verify::sample(v1, v2, [](const ticket_row& t) { return t.reopened == 0; }, 100, {},
                                      {.expect = verify::sample_expectation::equal});
    CHECK(never.pass);
    CHECK(never.equal == 3);
}

}  // namespace

TEST_CASE("verify: canonical text of values", "[verify]") {
    using namespace std::chrono_literals;
    CHECK(verify::value_text(std::optional<int>{}) == std::nullopt);
    CHECK(verify::value_text(std::optional<int>{7}) == "7");
    CHECK(verify::value_text(2.5) == "2.5");
    CHECK(verify::value_text(0.1f) == "0.1");
    CHECK(verify::value_text(true) == "true");
    CHECK(verify::value_text(colour::green) == "2");
    CHECK(verify::value_text(std::string("x y")) == "x y");
    CHECK(verify::value_text(std::chrono::sys_seconds{86400s}) == "1970-01-02T00:00:00Z");
    CHECK(verify::value_text(millis{1'700'000'000'250ms}) == "2023-11-14T22:13:20.250Z");
    CHECK(verify::value_text(std::chrono::sys_time<std::chrono::nanoseconds>{-1ns}) ==
          "1969-12-31T23:59:59.999999999Z");
    CHECK(verify::value_text(std::vector<std::optional<int>>{1, std::nullopt}) == "[1, null]");
    CHECK(verify::value_text(count_row{"k", 3}) == "{id=k, n=3}");
    // int32 3 and int64 3 are the same value to verification.
    CHECK(verify::value_text(3) == verify::value_text(std::int64_t{3}));
}

TEST_CASE("verify: exact statistics of a hand-made table", "[verify]") {
    using namespace std::chrono_literals;
    constexpr auto top = std::numeric_limits<std::uint64_t>::max();
    pj::memory_table<measure_table> a("measures_a");
    a.insert({"a", 5, 1.5, true, colour::red, millis{1000ms}, 1});
    a.insert({"b", std::nullopt, -2.25, false, colour::red, millis{3000ms}, top});
    a.insert({"c", -3, 1.5, true, colour::green, millis{2000ms}, 2});
    a.insert({"d", 5, 0.25, true, colour::red, millis{1500ms}, 3});
    a.insert({"e", std::nullopt, 4.0, false, colour::green, millis{2500ms}, 4});

    const auto r = verify::structural_diff(a, a);
    CHECK(r.pass);
    CHECK(r.a_name == "measures_a");
    CHECK(r.a_rows == 5);

    const auto& score = *column(r, "score").a;
    CHECK(score.type == "optional<int32>");
    CHECK(score.values == 3);
    CHECK(score.nulls == 2);
    CHECK(score.distinct == 2);
    CHECK(score.numeric);
    CHECK(score.min == -3.0);
    CHECK(score.max == 5.0);
    CHECK(score.sum == 7.0);
    CHECK(score.integer_sum == 7);
    CHECK(score.min_text == "-3");
    REQUIRE(score.frequencies);
    REQUIRE(score.frequencies->size() == 2);
    CHECK(score.frequencies->at(0).value == "5");  // most frequent first
    CHECK(score.frequencies->at(0).rows == 2);

    const auto& weight = *column(r, "weight").a;
    CHECK(weight.type == "float64");
    CHECK(weight.nulls == 0);
    CHECK(weight.distinct == 4);
    CHECK(weight.min == -2.25);
    CHECK(weight.max == 4.0);
    CHECK(weight.sum == 5.0);
    CHECK_FALSE(weight.integer_sum);

    const auto& flag = *column(r, "flag").a;
    CHECK(flag.type == "bool");
    CHECK_FALSE(flag.numeric);
    CHECK(flag.distinct == 2);
    CHECK(rows_of(flag, "true") == 3);

    const auto& shade = *column(r, "shade").a;
    CHECK(shade.type.starts_with("enum "));
    CHECK(shade.type.ends_with(": uint8"));
    CHECK_FALSE(shade.numeric);
    CHECK(rows_of(shade, "1") == 3);

    const auto& at = *column(r, "at").a;
    CHECK(at.type == "time_point<ms>");
    CHECK(at.min_text == "1970-01-01T00:00:01.000Z");
    CHECK(at.max_text == "1970-01-01T00:00:03.000Z");

    const auto& big = *column(r, "big").a;
    CHECK(big.type == "uint64");
    CHECK(big.numeric);
    CHECK_FALSE(big.integer_sum);  // UINT64_MAX does not fit: no exact sum, only the double
    CHECK(big.max_text == std::to_string(top));

    SECTION("a histogram only below the limit") {
        const auto few = verify::structural_diff(a, a, {.histogram_limit = 3});
        CHECK_FALSE(column(few, "weight").a->frequencies);
        CHECK(column(few, "score").a->frequencies);
    }
}

TEST_CASE("verify: tolerances, type changes, dropped and new columns", "[verify]") {
    pj::memory_table<pj::table<count_row, &count_row::id>> a("counts_v1");
    pj::memory_table<pj::table<count_row, &count_row::id>> b("counts_v2");
    for (int i = 0; i < 100; ++i) a.insert({std::to_string(i), 1});
    for (int i = 0; i < 99; ++i) b.insert({std::to_string(i), i == 0 ? 2 : 1});

    const auto exact = verify::structural_diff(a, b, {.histogram_limit = 0});
    CHECK_FALSE(exact.pass);
    CHECK_FALSE(exact.rows_ok);
    CHECK(mentions(exact.failures, "row count: A has 100 rows, B has 99"));
    CHECK(mentions(exact.failures, "column 'id' differs: distinct 100 -> 99"));
    CHECK(mentions(exact.failures, "column 'n' differs: distinct 1 -> 2; max 1 -> 2"));

    // 1 row of 100 and a sum of 100 against 100: within 1% and 2%.
    const auto loose =
        verify::structural_diff(a, b, {.row_count_tolerance = 0.01, .stat_tolerance = 0.5, .histogram_limit = 0});
    CHECK(loose.rows_ok);
    CHECK(loose.pass);
    CHECK(mentions(column(loose, "n").tolerated, "max 1 -> 2"));
    CHECK(mentions(loose.notes, "within the tolerance of 1%"));

    const auto tight = verify::structural_diff(a, b, {.row_count_tolerance = 0.009});
    CHECK_FALSE(tight.rows_ok);

    SECTION("a changed column type is reported, and fails unless expected") {
        pj::memory_table<pj::table<count_row_wide, &count_row_wide::id>> w("counts_v3");
        for (int i = 0; i < 100; ++i) w.insert({std::to_string(i), 1});
        const auto changed = verify::structural_diff(a, w);
        CHECK_FALSE(changed.pass);
        CHECK(column(changed, "n").type_changed);
        CHECK(changed.failures ==
              std::vector<std::string>{"column 'n' differs: type int32 -> int64 (list it in expected_changes if "
                                       "the new version changes it on purpose)"});
        CHECK(verify::structural_diff(a, w, {.expected_changes = {"n"}}).pass);
        // The values are still the same, by canonical text.
        CHECK(verify::spot_check(a, w, {"5"}).rows[0].outcome == verify::row_outcome::equal);
    }

    SECTION("dropped and new columns") {
        pj::memory_table<pj::table<text_row, &text_row::id>> t("texts");
        t.insert({"1", std::nullopt});
        pj::memory_table<pj::table<count_row, &count_row::id>> c("counts");
        c.insert({"1", 4});
        const auto dropped = verify::structural_diff(c, t);
        CHECK_FALSE(dropped.pass);
        CHECK(column(dropped, "n").presence == verify::column_presence::only_in_a);
        CHECK(column(dropped, "note").presence == verify::column_presence::only_in_b);
        CHECK(dropped.failures.size() == 1);
        CHECK(mentions(dropped.failures, "column 'n' exists only in A: B dropped it"));
        CHECK(mentions(dropped.notes, "column 'note' is new in B"));
        CHECK(verify::structural_diff(c, t, {.expected_changes = {"n"}}).pass);
        const auto forbidden = verify::structural_diff(c, t, {.expected_changes = {"n"}, .forbid_new_columns = true});
        CHECK_FALSE(forbidden.pass);
        CHECK(mentions(forbidden.failures, "column 'note' exists only in B"));
        CHECK(verify::structural_diff(c, t, {.expected_changes = {"n", "note", "nope"}, .forbid_new_columns = true})
                  .pass);
        CHECK(mentions(verify::structural_diff(c, t, {.expected_changes = {"n", "nope"}}).notes,
                       "expected change 'nope' names no column"));
    }
}

TEST_CASE("verify: spot checks report missing rows on either side", "[verify]") {
    pj::memory_table<pj::table<count_row, &count_row::id>> a("a");
    pj::memory_table<pj::table<count_row, &count_row::id>> b("b");
    a.insert({"x", 1});
    a.insert({"y", 2});
    b.insert({"y", 2});
    b.insert({"z", 3});
    const auto r = verify::spot_check(a, b, {"x", "y", "z", "w"});
    REQUIRE(r.rows.size() == 4);
    CHECK(r.rows[0].outcome == verify::row_outcome::missing_in_b);
    CHECK(r.rows[1].outcome == verify::row_outcome::equal);
    CHECK(r.rows[2].outcome == verify::row_outcome::missing_in_a);
    CHECK(r.rows[3].outcome == verify::row_outcome::missing_in_both);
    CHECK(r.equal == 1);
    CHECK(r.missing_in_a == 1);
    CHECK(r.missing_in_b == 1);
    CHECK(r.missing_in_both == 1);
    CHECK_FALSE(r.pass);
    CHECK(r.failures == std::vector<std::string>{"key 'x': missing in B", "key 'z': missing in A",
                                                 "key 'w': missing in both versions"});
    CHECK(verify::exit_status(r) == 1);

    SECTION("keys from any range: a span, a set, a C array of string literals") {
        const std::vector<std::string> all{"x", "y", "z"};
        CHECK(verify::spot_check(a, b, std::span(all).subspan(1, 1)).pass);
        CHECK(verify::spot_check(a, b, std::set<std::string>{"y"}).rows.size() == 1);
        const char* const literal[] = {"y", "z"};
        CHECK(verify::spot_check(a, b, literal).missing_in_a == 1);
    }
    SECTION("no keys: nothing fails, and the report says so") {
        const auto none = verify::spot_check(a, b, std::vector<std::string>{});
        CHECK(none.pass);
        CHECK(mentions(none.notes, "no keys"));
    }
    SECTION("a long list of failing keys is capped in the reasons") {
        std::vector<std::string> keys;
        for (int i = 0; i < 25; ++i) keys.push_back("missing-" + std::to_string(i));
        const auto many = verify::spot_check(a, b, keys);
        CHECK(many.rows.size() == 25);
        CHECK(many.failures.size() == 11);
        CHECK(many.failures.back() == "... and 15 more failing keys");
    }
}

TEST_CASE("verify: table handles as pointers, optionals and const references", "[verify]") {
    pj::memory_table<pj::table<count_row, &count_row::id>> a("a");
    a.insert({"x", 1});
    const auto& ca = a;
    auto* pa = &a;
    CHECK(verify::structural_diff(ca, pa).pass);
    decltype(pa) none = nullptr;
    CHECK_THROWS_AS(verify::structural_diff(a, none), pj::error);
    CHECK_THROWS_WITH(verify::structural_diff(none, a), Catch::Contains("table A is missing"));
}

namespace {
/// A handle of one's own (say, a cache in front of a table): for_each, find, and table_type so
/// that sample knows the key of a row.
struct cached_counts {
    using table_type = pj::table<count_row, &count_row::id>;
    using row_type = count_row;
    using key_type = std::string;
    std::vector<count_row> rows;
    template <class F>
    void for_each(F&& fn) const {
        for (const auto& r : rows) fn(r);
    }
    [[nodiscard]] const count_row* find(const std::string& key) const {
        for (const auto& r : rows)
            if (r.id == key) return &r;
        return nullptr;
    }
};
}  // namespace

TEST_CASE("verify: any handle with for_each, find and a table_type", "[verify]") {
    pj::memory_table<pj::table<count_row, &count_row::id>> a("a");
    a.insert({"x", 1});
    a.insert({"y", 2});
    const cached_counts b{{{"x", 1}, {"y", 3}}};
    const auto r = verify::structural_diff(a, b, {.expected_changes = {"n"}});
    CHECK(r.pass);
    CHECK(r.b_name == "B");  // no name(): the side's letter
    const auto s = verify::sample(a, b, [](const count_row& row) { return row.n > 1; }, 5, {.expected_changes = {"n"}});
    CHECK(s.pass);
    CHECK(s.differs == 1);
    CHECK(s.rows.at(0).key == "y");
}

TEST_CASE("verify: tickets v1 and v2 in memory, same row type", "[verify]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_history(store);
    pj::runner<tickets<1>> v1(store, storage);
    pj::runner<tickets<2>, pj::manual_kickoff> v2(store, storage);
    v1.catch_up();
    v2.init();
    v2.backfill();
    auto t1 = storage.find_table<tickets<1>::table>("tickets_v1");
    auto t2 = storage.find_table<tickets<2>::table>("tickets_v2");
    REQUIRE(t1);
    REQUIRE(t2);

    check_tickets_structure(t1, t2);
    check_tickets_spot_and_sample(t1, t2);

    const auto r = verify::structural_diff(t1, t2);
    CHECK(r.a_name == "tickets_v1");
    CHECK(r.b_name == "tickets_v2");

    SECTION("a sample that matches nothing proves nothing") {
        const auto none = verify::sample(
            t1, t2, [](const ticket_row&) { return false; }, 10);
        CHECK_FALSE(none.pass);
        CHECK(mentions(none.failures, "no row of B matches the predicate"));
        CHECK(verify::sample(t1, t2, [](const ticket_row&) { return false; }, 10, {},
                             {.expect = verify::sample_expectation::equal})
                  .pass);
    }
}

TEST_CASE("verify: tickets v1 and a v2 that adds a column, in memory", "[verify]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_history(store);
    pj::runner<desk<1>> v1(store, storage);
    pj::runner<desk<2>> v2(store, storage);
    v1.catch_up();
    v2.catch_up();
    auto t1 = storage.find_table<desk<1>::table>("desk_v1");
    auto t2 = storage.find_table<desk<2>::table>("desk_v2");

    const auto pass = verify::structural_diff(t1, t2, {.expected_changes = {"status"}});
    CHECK(pass.pass);
    CHECK(column(pass, "reopened").presence == verify::column_presence::only_in_b);
    CHECK_FALSE(column(pass, "reopened").a);
    CHECK(column(pass, "reopened").b->integer_sum == 4);
    CHECK(column(pass, "status").expected_change);
    CHECK(mentions(pass.notes, "column 'reopened' is new in B"));

    const auto fail = verify::structural_diff(t1, t2);
    CHECK_FALSE(fail.pass);
    CHECK(fail.failures == std::vector<std::string>{
                               "column 'status' differs: value 'closed' rows 5 -> 3; value 'open' rows 1 -> 3 (list "
                               "it in expected_changes if the new version changes it on purpose)"});
    CHECK(verify::exit_status(fail) == 1);

    // Going back (A = v2, B = v1) drops the column.
    const auto back = verify::structural_diff(t2, t1, {.expected_changes = {"status"}});
    CHECK_FALSE(back.pass);
    CHECK(mentions(back.failures, "column 'reopened' exists only in A"));

    // A field only one side has never makes a row differ; it is listed with its value.
    const auto spot = verify::spot_check(t1, t2, {"t-03", "t-04"}, {.expected_changes = {"status"}});
    CHECK(spot.pass);
    CHECK(spot.rows[0].outcome == verify::row_outcome::differs);
    REQUIRE(spot.rows[0].only_in_b.size() == 1);
    CHECK(spot.rows[0].only_in_b[0].field == "reopened");
    CHECK(spot.rows[0].only_in_b[0].value == "1");
    CHECK(spot.rows[1].outcome == verify::row_outcome::equal);
    CHECK(spot.rows[1].only_in_b[0].value == "2");

    // t-04 was reopened and closed again: its common fields equal v1's, so a sample of every
    // reopened ticket that expects a difference fails on it, by name.
    const auto reopened = [](const wide_row& t) { return t.reopened > 0; };
    const auto all = verify::sample(t1, t2, reopened, 10, {.expected_changes = {"status"}});
    CHECK_FALSE(all.pass);
    CHECK(all.differs == 2);
    CHECK(all.equal == 1);
    CHECK(all.failures ==
          std::vector<std::string>{"key 't-04': equal to A, but the new version should have changed it"});
    CHECK(verify::sample(t1, t2, reopened, 10, {}, {.expect = verify::sample_expectation::report_only}).pass);
    const auto open_again =
        verify::sample(t1, t2, [](const wide_row& t) { return t.reopened > 0 && t.status == "open"; }, 10,
                       {.expected_changes = {"status"}});
    CHECK(open_again.pass);
    CHECK(open_again.differs == 2);
}

TEST_CASE("verify: the same checks on SQLite tables, and memory against SQLite", "[verify][sqlite]") {
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    const auto file = dir.file("tickets.db");
    pj::sqlite_event_store store(file);
    pj::sqlite_storage storage(file);
    append_history(store);
    pj::runner<tickets<1>, pj::sqlite_storage> v1(store, storage);
    pj::runner<tickets<2>, pj::sqlite_storage, pj::per_aggregate> v2(store, storage);
    v1.catch_up();
    v2.catch_up();
    auto t1 = storage.find_table<tickets<1>::table>("tickets_v1");  // std::optional<sqlite_table>
    auto t2 = storage.find_table<tickets<2>::table>("tickets_v2");
    REQUIRE(t1);
    REQUIRE(t2);

    check_tickets_structure(t1, t2);
    check_tickets_spot_and_sample(t1, t2);
    CHECK_THROWS_WITH(verify::structural_diff(storage.find_table<tickets<1>::table>("tickets_v9"), t2),
                      Catch::Contains("table A is missing"));

    // Built in memory from the same history, the reports are identical, JSON and all.
    pj::memory_event_store mstore;
    pj::memory_storage mstorage;
    append_history(mstore);
    pj::runner<tickets<1>> m1(mstore, mstorage);
    pj::runner<tickets<2>> m2(mstore, mstorage);
    m1.catch_up();
    m2.catch_up();
    auto mt1 = mstorage.find_table<tickets<1>::table>("tickets_v1");
    auto mt2 = mstorage.find_table<tickets<2>::table>("tickets_v2");
    const verify::diff_options expected{.expected_changes = {"status"}};
    CHECK(verify::to_json(verify::structural_diff(mt1, mt2, expected)) ==
          verify::to_json(verify::structural_diff(t1, t2, expected)));
    CHECK(verify::to_text(verify::structural_diff(mt1, mt2, expected)) ==
          verify::to_text(verify::structural_diff(t1, t2, expected)));

    const auto cross = verify::structural_diff(mt2, t2);
    CHECK(cross.pass);
    for (const auto& c : cross.columns) CHECK((c.differences.empty() && c.tolerated.empty()));
    CHECK(verify::spot_check(mt2, t2, {"t-01", "t-03", "t-04"}).equal == 3);
    CHECK(verify::sample(mt2, t2, [](const ticket_row&) { return true; }, 100, {},
                         {.expect = verify::sample_expectation::equal})
              .equal == 6);

    SECTION("a v2 that adds a column, on SQLite") {
        const auto file2 = dir.file("desk.db");
        pj::sqlite_event_store dstore(file2);
        pj::sqlite_storage dstorage(file2);
        append_history(dstore);
        pj::runner<desk<1>, pj::sqlite_storage> d1(dstore, dstorage);
        pj::runner<desk<2>, pj::sqlite_storage> d2(dstore, dstorage);
        d1.catch_up();
        d2.catch_up();
        auto s1 = dstorage.find_table<desk<1>::table>("desk_v1");
        auto s2 = dstorage.find_table<desk<2>::table>("desk_v2");
        const auto r = verify::structural_diff(s1, s2, {.expected_changes = {"status"}});
        CHECK(r.pass);
        CHECK(column(r, "reopened").presence == verify::column_presence::only_in_b);
        CHECK_FALSE(verify::structural_diff(s1, s2).pass);
        const auto s = verify::sample(s1, s2, [](const wide_row& t) { return t.reopened > 0 && t.status == "open"; },
                                      10, {.expected_changes = {"status"}});
        CHECK(s.pass);
        CHECK(s.differs == 2);
    }
}

TEST_CASE("verify: JSON strings are escaped and always valid", "[verify][json]") {
    CHECK(verify::json_string("plain") == "\"plain\"");
    CHECK(verify::json_string("a\"b\\c") == "\"a\\\"b\\\\c\"");
    CHECK(verify::json_string("line\nnext\ttab\r") == "\"line\\nnext\\ttab\\r\"");
    CHECK(verify::json_string(std::string_view("\x01\x1f\x7f", 3)) == "\"\\u0001\\u001f\x7f\"");
    CHECK(verify::json_string(std::string_view("nul\0x", 5)) == "\"nul\\u0000x\"");
    CHECK(verify::json_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\x9f") ==
          "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\x9f\"");
    // Not UTF-8: a stray continuation byte, a lone lead byte, an overlong '/', a surrogate. Each
    // byte becomes U+FFFD (written as UTF-8: EF BF BD).
    const std::string fffd = "\xef\xbf\xbd";
    CHECK(verify::json_string("\x80") == "\"" + fffd + "\"");
    CHECK(verify::json_string("a\xff"
                              "b") == "\"a" + fffd + "b\"");
    CHECK(verify::json_string("\xc3") == "\"" + fffd + "\"");
    CHECK(verify::json_string("\xc0\xaf") == "\"" + fffd + fffd + "\"");
    CHECK(verify::json_string("\xed\xa0\x80") == "\"" + fffd + fffd + fffd + "\"");
    for (const std::string_view text : {"\x80", "a\xff", "\xed\xa0\x80", "line\nnext"})
        CHECK(boost::json::parse(verify::json_string(text)).is_string());

    // Whatever a row holds, the JSON parses and gives the text back.
    const std::string nasty = std::string("quote\" back\\ nl\n ctl\x02 ") + "\xc3\xa9" + std::string(1, '\0');
    pj::memory_table<pj::table<text_row, &text_row::id>> a("a");
    pj::memory_table<pj::table<text_row, &text_row::id>> b("b");
    a.insert({"k\"1", nasty});
    b.insert({"k\"1", std::string("null")});
    const auto spot = verify::spot_check(a, b, {"k\"1"});
    const auto parsed = boost::json::parse(verify::to_json(spot));
    const auto& row = parsed.as_object().at("rows").as_array().at(0).as_object();
    CHECK(row.at("key").as_string() == "k\"1");
    const auto& d = row.at("differences").as_array().at(0).as_object();
    CHECK(d.at("field").as_string() == "note");
    CHECK(std::string_view(d.at("a").as_string()) == nasty);
    CHECK(d.at("b").as_string() == "null");  // the string "null", not a null

    b.insert({"k2", std::nullopt});
    a.insert({"k2", std::string("null")});
    const auto nulls = boost::json::parse(verify::to_json(verify::spot_check(a, b, {"k2"})));
    const auto& d2 = nulls.as_object().at("rows").as_array().at(0).as_object().at("differences").as_array().at(0);
    CHECK(d2.as_object().at("b").is_null());

    // The text output escapes control characters too.
    const auto text = verify::to_text(spot);
    CHECK(text.find("nl\\n ctl\\x02") != std::string::npos);
    CHECK(text.find('\x02') == std::string::npos);
}

TEST_CASE("verify: JSON and text outputs of a whole report, and its exit status", "[verify][json]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_history(store);
    pj::runner<tickets<1>> v1(store, storage);
    pj::runner<tickets<2>> v2(store, storage);
    v1.catch_up();
    v2.catch_up();
    auto t1 = storage.find_table<tickets<1>::table>("tickets_v1");
    auto t2 = storage.find_table<tickets<2>::table>("tickets_v2");

    CHECK(verify::exit_status(verify::report{}) == 1);  // nothing verified never passes a gate
    CHECK(mentions(verify::failures(verify::report{}), "nothing was verified"));

    const verify::diff_options expected{.expected_changes = {"status", "reopened"}};
    verify::report r;
    r.structure = verify::structural_diff(t1, t2, expected);
    r.spot_checks.push_back(verify::spot_check(t1, t2, {"t-01", "t-03"}, expected));
    r.samples.push_back(verify::sample(t1, t2, [](const ticket_row& t) { return t.reopened > 0; }, 10, expected,
                                       {.name = "reopened tickets"}));
    CHECK(verify::passed(r));
    CHECK(verify::exit_status(r) == 0);

    const auto json = boost::json::parse(verify::to_json(r));
    const auto& top = json.as_object();
    CHECK(top.at("pass").as_bool());
    CHECK(top.at("verdict").as_string() == "pass");
    CHECK(top.at("failures").as_array().empty());
    const auto& structure = top.at("structure");
    CHECK(structure.as_object().at("check").as_string() == "structural_diff");
    CHECK(structure.as_object().at("rows").as_object().at("a").to_number<int>() == 6);
    CHECK(structure.as_object().at("rows").as_object().at("b").to_number<int>() == 6);
    const auto& status = json_column(structure, "status");
    CHECK(status.at("expected_change").as_bool());
    CHECK(status.at("presence").as_string() == "both");
    CHECK(status.at("b").as_object().at("distinct").to_number<int>() == 2);
    CHECK(status.at("b").as_object().at("numeric").as_bool() == false);
    const auto& freq = status.at("a").as_object().at("frequencies").as_array();
    CHECK(freq.at(0).as_object().at("value").as_string() == "closed");
    CHECK(freq.at(0).as_object().at("rows").to_number<int>() == 5);
    const auto& reopened = json_column(structure, "reopened").at("b").as_object();
    CHECK(reopened.at("sum").to_number<double>() == 4.0);
    CHECK(reopened.at("integer_sum").to_number<int>() == 4);
    CHECK(reopened.at("max").to_number<double>() == 2.0);
    CHECK(reopened.at("min_text").as_string() == "0");
    const auto& spot = top.at("spot_checks").as_array().at(0).as_object();
    CHECK(spot.at("counts").as_object().at("equal").to_number<int>() == 1);
    CHECK(spot.at("rows").as_array().at(1).as_object().at("outcome").as_string() == "differs");
    const auto& sample = top.at("samples").as_array().at(0).as_object();
    CHECK(sample.at("name").as_string() == "reopened tickets");
    CHECK(sample.at("expect").as_string() == "differ");
    CHECK(sample.at("counts").as_object().at("matched").to_number<int>() == 3);

    const auto text = verify::to_text(r);
    CHECK(text.find("structural diff: A = tickets_v1, B = tickets_v2") != std::string::npos);
    CHECK(text.find("status") != std::string::npos);
    CHECK(text.find("reopened") != std::string::npos);
    CHECK(text.find("changed (expected)") != std::string::npos);
    CHECK(text.find("sample 'reopened tickets'") != std::string::npos);
    CHECK(text.find("VERDICT: PASS") != std::string::npos);
    CHECK(text.find("OVERALL VERDICT: PASS") != std::string::npos);
    CHECK(text.find("FAIL") == std::string::npos);

    SECTION("a failing part fails the whole, with its reasons") {
        r.spot_checks.push_back(verify::spot_check(t1, t2, {"t-42"}, expected));
        CHECK_FALSE(verify::passed(r));
        CHECK(verify::exit_status(r) == 1);
        const auto failing = verify::to_text(r);
        CHECK(failing.find("OVERALL VERDICT: FAIL (1 reason)") != std::string::npos);
        CHECK(failing.find("spot check: key 't-42': missing in both versions") != std::string::npos);
        const auto j = boost::json::parse(verify::to_json(r));
        CHECK_FALSE(j.as_object().at("pass").as_bool());
        CHECK(j.as_object().at("verdict").as_string() == "fail");
        CHECK(j.as_object().at("failures").as_array().size() == 1);
    }

    SECTION("the structural table is aligned, one line per version of each column") {
        const auto strict = verify::structural_diff(t1, t2);
        const auto t = verify::to_text(strict);
        CHECK(t.find("VERDICT: FAIL (2 reasons)") != std::string::npos);
        CHECK(t.find("  - column 'status' differs") != std::string::npos);
        std::vector<std::string> lines;
        for (std::size_t at = 0, next; at < t.size(); at = next + 1) {
            next = t.find('\n', at);
            lines.push_back(t.substr(at, next - at));
        }
        const auto header =
            std::find_if(lines.begin(), lines.end(), [](const auto& l) { return l.starts_with("  column"); });
        REQUIRE(header != lines.end());
        const auto side = header->find("side");
        const auto nulls_end = header->find("nulls") + 5;
        for (auto it = header + 2; it != lines.end() && !it->empty(); ++it) {
            CHECK((it->substr(side, 2) == "A " || it->substr(side, 2) == "B "));
            CHECK(it->at(nulls_end - 1) == '0');  // right-aligned counts
        }
        CHECK(verify::to_json(strict).find("\"verdict\":\"fail\"") != std::string::npos);
    }
}

TEST_CASE("verify: the JSON keeps its members in order, and a non-finite number is null", "[verify][json]") {
    auto keys = [](const boost::json::object& o) {
        std::vector<std::string> out;
        for (const auto& kv : o) out.emplace_back(kv.key());
        return out;
    };
    pj::memory_table<measure_table> a("a");
    pj::memory_table<measure_table> b("b");
    a.insert({"m1", 1, 0.5, false, colour::red, millis{}, 7});
    b.insert({"m1", 1, std::numeric_limits<double>::infinity(), false, colour::red, millis{}, 7});
    verify::report r;
    r.structure = verify::structural_diff(a, b);
    r.spot_checks.push_back(verify::spot_check(a, b, {"m1"}));
    r.samples.push_back(verify::sample(
        a, b, [](const measure_row&) { return true; }, 5));
    const auto json = boost::json::parse(verify::to_json(r));
    const auto& top = json.as_object();
    CHECK(keys(top) == std::vector<std::string>{"pass", "verdict", "failures", "structure", "spot_checks", "samples"});
    const auto& structure = top.at("structure").as_object();
    CHECK(keys(structure) ==
          std::vector<std::string>{"check", "a", "b", "pass", "verdict", "failures", "notes", "rows", "columns"});
    const auto& weight = json_column(top.at("structure"), "weight");
    CHECK(keys(weight) == std::vector<std::string>{"name", "presence", "expected_change", "type_changed", "ok",
                                                   "differences", "tolerated", "a", "b"});
    CHECK(keys(weight.at("b").as_object()) == std::vector<std::string>{"type", "values", "nulls", "distinct", "numeric",
                                                                       "min", "max", "sum", "integer_sum", "min_text",
                                                                       "max_text", "frequencies"});
    CHECK(weight.at("a").at("sum").to_number<double>() == 0.5);
    CHECK(weight.at("b").at("sum").is_null());  // infinity: not a JSON number
    CHECK(weight.at("b").at("max").is_null());
    CHECK(weight.at("b").at("integer_sum").is_null());
    CHECK(weight.at("b").at("max_text").as_string() == "inf");
    const auto& spot = top.at("spot_checks").as_array().at(0).as_object();
    CHECK(keys(spot) ==
          std::vector<std::string>{"check", "a", "b", "pass", "verdict", "failures", "notes", "counts", "rows"});
    CHECK(keys(spot.at("rows").as_array().at(0).as_object()) ==
          std::vector<std::string>{"key", "outcome", "ok", "differences", "only_in_a", "only_in_b"});
    const auto& sample = top.at("samples").as_array().at(0).as_object();
    CHECK(keys(sample) == std::vector<std::string>{"check", "name", "a", "b", "expect", "pass", "verdict", "failures",
                                                   "notes", "counts", "differing_fields", "rows"});
    CHECK(keys(sample.at("counts").as_object()) ==
          std::vector<std::string>{"limit", "matched", "compared", "equal", "differs", "missing_in_a"});
}

}  // namespace verify_test
