#pragma once

/// The three checks of verification, each reading two versions' tables and returning a plain
/// report: `structural_diff` (row counts and per-column statistics), `spot_check` (given keys,
/// field by field) and `sample` (the rows a predicate selects, expected to differ or to equal).
/// See <projectionist/deploy/verify.hpp> for the rules.
///
///     auto r = projectionist::verify::structural_diff(v1_table, v2_table, {.expected_changes = {"status"}});

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <projectionist/deploy/verify/compare.hpp>
#include <projectionist/deploy/verify/handles.hpp>
#include <projectionist/deploy/verify/report.hpp>
#include <projectionist/deploy/verify/statistics.hpp>
#include <projectionist/detail/value_text.hpp>

namespace projectionist::detail::verification {

/// The two tables a row check compares, A (the serving version) and B (the new one), found
/// behind their handle arguments, with what `spot_check` and `sample` both need of them.
template <class A, class B>
struct table_pair {
    using table_a = std::remove_reference_t<decltype(table_ref(std::declval<A&>(), ""))>;
    using table_b = std::remove_reference_t<decltype(table_ref(std::declval<B&>(), ""))>;

    table_pair(A& handle_a, B& handle_b) : a(table_ref(handle_a, "A")), b(table_ref(handle_b, "B")) {}

    /// Names the two tables in `report` (a spot_report or sample_report).
    template <class Report>
    void name(Report& report) const {
        report.a_name = table_name(a, "A");
        report.b_name = table_name(b, "B");
    }

    /// The field names of a row of A, and of B, as compare_rows takes them.
    static std::vector<std::string> a_names() { return field_names<typename table_a::row_type>(); }
    static std::vector<std::string> b_names() { return field_names<typename table_b::row_type>(); }

    table_a& a;
    table_b& b;
};

}  // namespace projectionist::detail::verification

namespace projectionist::verify {

/// The canonical text a value is compared and shown by; nullopt for an empty optional.
///
///     value_text(std::optional<int>{})   // nullopt
///     value_text(2.5)                    // "2.5"
///     value_text(sys_seconds{86400s})    // "1970-01-02T00:00:00Z"
template <class T>
[[nodiscard]] std::optional<std::string> value_text(const T& value) {
    return detail::value_text(value);
}

// ---- the checks -----------------------------------------------------------------------------------

/// Row counts and per-column statistics of two versions' tables, compared (see the header's
/// comment for the rules). `a` is the serving version, `b` the new one.
///
///     auto r = verify::structural_diff(v1_table, v2_table, {.expected_changes = {"status"}});
///     r.pass;          // false if anything but "status" differs, or a column was dropped
///     r.failures;      // {"column 'type' differs: value 'bug' rows 30 -> 29; ..."}
template <class A, class B>
[[nodiscard]] structural_report structural_diff(A&& a, B&& b, const diff_options& options = {}) {
    namespace v = detail::verification;
    auto& ta = v::table_ref(a, "A");
    auto& tb = v::table_ref(b, "B");
    const auto sa = v::summarize(ta, v::table_name(ta, "A"), options.histogram_limit);
    const auto sb = v::summarize(tb, v::table_name(tb, "B"), options.histogram_limit);
    return v::compare_structure(sa, sb, options);
}

/// The rows of `keys` (B's key type, or convertible to it) in both versions, compared field by
/// field. Fails for a key missing on either side and for a difference in a field that is not in
/// `options.expected_changes`.
///
///     auto r = verify::spot_check(v1_table, v2_table, std::vector<std::string>{"t-001", "t-404"});
///     r.rows[1].outcome;   // row_outcome::missing_in_b
template <class A, class B, std::ranges::input_range Keys>
[[nodiscard]] spot_report spot_check(A&& a, B&& b, Keys&& keys, const diff_options& options = {}) {
    namespace v = detail::verification;
    const v::table_pair<A, B> t(a, b);
    using key_b = typename decltype(t)::table_b::key_type;
    static_assert(std::is_constructible_v<key_b, std::ranges::range_reference_t<Keys>>,
                  "projectionist: verify::spot_check(a, b, keys): the keys must be of table B's key type or "
                  "convertible to it");
    const auto& a_names = t.a_names();
    const auto& b_names = t.b_names();

    spot_report s;
    t.name(s);
    std::size_t failing = 0;
    for (auto&& k : keys) {
        const key_b key(k);
        const auto ra = v::find_row(t.a, key);
        const auto rb = v::find_row(t.b, key);
        std::optional<std::vector<std::optional<std::string>>> va, vb;
        if (ra) va = v::row_values(*ra);
        if (rb) vb = v::row_values(*rb);
        auto row = v::compare_rows(v::value_text(key).value_or("null"), a_names, va ? &*va : nullptr, b_names,
                                   vb ? &*vb : nullptr, options);
        v::judge_spot_row(s, row, failing);
        s.rows.push_back(std::move(row));
    }
    v::close_capped(s.failures, failing, v::failure_cap, "failing keys");
    if (s.rows.empty()) s.notes.push_back("no keys were given");
    s.pass = s.failures.empty();
    return s;
}

/// `spot_check` with a braced list of keys: `spot_check(a, b, {"t-001", "t-002"})`.
template <class A, class B>
[[nodiscard]] spot_report spot_check(
    A&& a, B&& b,
    std::initializer_list<
        typename std::remove_reference_t<decltype(detail::verification::table_ref(std::declval<B&>(), ""))>::key_type>
        keys,
    const diff_options& options = {}) {
    return spot_check(std::forward<A>(a), std::forward<B>(b), std::vector(keys.begin(), keys.end()), options);
}

/// The rows of B (the new version) for which `predicate(row)` is true, at most `limit` of them,
/// each compared field by field with A's row of the same key. By default they are expected to
/// differ from A, only in fields listed in `options.expected_changes`: these are the rows the new
/// logic exists for, and a sample proves it took effect.
///
///     auto r = verify::sample(v1_table, v2_table, [](const ticket_row& t) { return t.reopened > 0; }, 50,
///                             {.expected_changes = {"status", "reopened"}}, {.name = "reopened tickets"});
///     r.matched; r.differs; r.differing_fields;   // {{"status", 12}, {"reopened", 20}}
template <class A, class B, class Predicate>
[[nodiscard]] sample_report sample(A&& a, B&& b, Predicate&& predicate, std::size_t limit,
                                   const diff_options& options = {}, const sample_options& sampling = {}) {
    namespace v = detail::verification;
    const v::table_pair<A, B> t(a, b);
    using table_b = typename decltype(t)::table_b;
    using row_b = typename table_b::row_type;
    static_assert(
        requires { typename v::table_of<std::remove_cv_t<table_b>>::type; },
        "projectionist: verify::sample(a, b, ...): the key of a row of B must be known: B must be a "
        "Handle<Table> of a projectionist::table (memory_table, sqlite_table) or have a table_type member");
    static_assert(std::is_invocable_r_v<bool, Predicate&, const row_b&>,
                  "projectionist: verify::sample(a, b, predicate, limit): predicate must take a row of B (the new "
                  "version) and return bool");
    using table_decl = typename v::table_of<std::remove_cv_t<table_b>>::type;
    const auto& a_names = t.a_names();
    const auto& b_names = t.b_names();

    sample_report s;
    s.name = sampling.name;
    s.expect = sampling.expect;
    s.limit = limit;
    t.name(s);
    std::size_t failing = 0;
    t.b.for_each([&](const row_b& row) {
        if (!predicate(row)) return;
        ++s.matched;
        if (s.compared >= limit) return;
        ++s.compared;
        const auto& key = table_decl::key_of(row);
        const auto ra = v::find_row(t.a, key);
        std::optional<std::vector<std::optional<std::string>>> va;
        if (ra) va = v::row_values(*ra);
        const auto vb = v::row_values(row);
        auto r =
            v::compare_rows(v::value_text(key).value_or("null"), a_names, va ? &*va : nullptr, b_names, &vb, options);
        v::judge_sample_row(s, r, failing);
        s.rows.push_back(std::move(r));
    });
    v::finish_sample(s, failing);
    return s;
}

}  // namespace projectionist::verify
