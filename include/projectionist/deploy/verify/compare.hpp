#pragma once

/// The judging half of verification, on values already turned into text and statistics: it
/// compares two table summaries column by column, two rows field by field, and writes every
/// failing reason as a sentence. Not templates: compiled once, whatever the row types.
///
///     auto r = detail::verification::compare_structure(summary_a, summary_b, options);

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <projectionist/deploy/verify/report.hpp>
#include <projectionist/deploy/verify/statistics.hpp>
#include <projectionist/detail/text.hpp>
#include <projectionist/detail/value_text.hpp>
#include <projectionist/meta/reflection.hpp>

namespace projectionist::detail::verification {

using detail::join;

/// Every field of a row as canonical text, in declaration order.
template <class Row>
std::vector<std::optional<std::string>> row_values(const Row& row) {
    std::vector<std::optional<std::string>> out;
    out.reserve(field_count<Row>);
    for_each_field(row, [&](std::string_view, const auto& value) { out.push_back(detail::value_text(value)); });
    return out;
}

inline bool is_expected(const verify::diff_options& options, std::string_view column) {
    return std::find(options.expected_changes.begin(), options.expected_changes.end(), column) !=
           options.expected_changes.end();
}

/// Relative, symmetric tolerance.
inline bool within(double a, double b, double tolerance) {
    if (a == b) return true;
    if (!std::isfinite(a) || !std::isfinite(b)) return false;
    return std::fabs(a - b) <= tolerance * std::max(std::fabs(a), std::fabs(b));
}

inline std::string number_text(double v) {
    return fmt::format("{}", v);
}

inline std::string text_or_null(const std::optional<std::string>& v) {
    return v ? "'" + *v + "'" : "null";
}

/// Adds `message` to `failures`, keeping at most `cap` of a kind and then one summary line.
inline void add_capped(std::vector<std::string>& failures, std::size_t& count, std::size_t cap, std::string message) {
    ++count;
    if (count <= cap) failures.push_back(std::move(message));
}
inline void close_capped(std::vector<std::string>& failures, std::size_t count, std::size_t cap,
                         std::string_view what) {
    if (count > cap) failures.push_back(fmt::format("... and {} more {}", count - cap, what));
}

inline constexpr std::size_t failure_cap = 10;

/// Compares the statistics of a column both versions have; fills differences and tolerated.
inline void compare_column(verify::column_diff& c, const verify::diff_options& o) {
    const auto& a = *c.a;
    const auto& b = *c.b;
    auto count = [&](std::string_view what, std::size_t x, std::size_t y) {
        if (x == y) return;
        auto text = fmt::format("{} {} -> {}", what, x, y);
        (within(static_cast<double>(x), static_cast<double>(y), o.stat_tolerance) ? c.tolerated : c.differences)
            .push_back(std::move(text));
    };
    if (a.type != b.type) {
        c.type_changed = true;
        c.differences.push_back(fmt::format("type {} -> {}", a.type, b.type));
    }
    count("nulls", a.nulls, b.nulls);
    count("distinct", a.distinct, b.distinct);
    if (a.numeric && b.numeric) {
        auto stat = [&](std::string_view what, const std::optional<double>& x, const std::optional<std::string>& xt,
                        const std::optional<double>& y, const std::optional<std::string>& yt) {
            if (xt == yt) return;
            auto text = fmt::format("{} {} -> {}", what, xt.value_or("none"), yt.value_or("none"));
            (x && y && within(*x, *y, o.stat_tolerance) ? c.tolerated : c.differences).push_back(std::move(text));
        };
        stat("min", a.min, a.min_text, b.min, b.min_text);
        stat("max", a.max, a.max_text, b.max, b.max_text);
        if (a.integer_sum && b.integer_sum) {
            if (*a.integer_sum != *b.integer_sum) {
                auto text = fmt::format("sum {} -> {}", *a.integer_sum, *b.integer_sum);
                (within(static_cast<double>(*a.integer_sum), static_cast<double>(*b.integer_sum), o.stat_tolerance)
                     ? c.tolerated
                     : c.differences)
                    .push_back(std::move(text));
            }
        } else if (a.sum != b.sum) {
            // Floating-point rounding depends on the order rows come in, which storages do not share.
            auto text = fmt::format("sum {} -> {}", number_text(a.sum), number_text(b.sum));
            (within(a.sum, b.sum, std::max(o.stat_tolerance, 1e-12)) ? c.tolerated : c.differences)
                .push_back(std::move(text));
        }
    } else if (!c.type_changed) {
        // Time points: the earliest and latest, exactly.
        if (a.min_text != b.min_text)
            c.differences.push_back(
                fmt::format("min {} -> {}", a.min_text.value_or("none"), b.min_text.value_or("none")));
        if (a.max_text != b.max_text)
            c.differences.push_back(
                fmt::format("max {} -> {}", a.max_text.value_or("none"), b.max_text.value_or("none")));
    }
    if (a.frequencies && b.frequencies) {
        auto rows_of = [](const std::vector<verify::value_count>& f, const std::string& v) -> std::size_t {
            for (const auto& e : f)
                if (e.value == v) return e.rows;
            return 0;
        };
        std::vector<std::string> values;
        for (const auto& e : *a.frequencies) values.push_back(e.value);
        for (const auto& e : *b.frequencies)
            if (std::find(values.begin(), values.end(), e.value) == values.end()) values.push_back(e.value);
        for (const auto& v : values)
            count(fmt::format("value '{}' rows", v), rows_of(*a.frequencies, v), rows_of(*b.frequencies, v));
    }
}

/// Adds column `c` to the report with its verdict: `failure` among the failures if it failed,
/// else `note` (if any) among the notes.
inline void add_column(verify::structural_report& r, verify::column_diff&& c, std::string failure,
                       std::string note = {}) {
    if (!c.ok)
        r.failures.push_back(std::move(failure));
    else if (!note.empty())
        r.notes.push_back(std::move(note));
    r.columns.push_back(std::move(c));
}

inline verify::structural_report compare_structure(const table_summary& a, const table_summary& b,
                                                   const verify::diff_options& o) {
    verify::structural_report r;
    r.a_name = a.name;
    r.b_name = b.name;
    r.a_rows = a.rows;
    r.b_rows = b.rows;
    r.rows_ok = within(static_cast<double>(a.rows), static_cast<double>(b.rows), o.row_count_tolerance);
    if (!r.rows_ok)
        r.failures.push_back(fmt::format("row count: A has {} rows, B has {} (tolerance {}%)", a.rows, b.rows,
                                         o.row_count_tolerance * 100));
    else if (a.rows != b.rows)
        r.notes.push_back(fmt::format("row count: A has {} rows, B has {}, within the tolerance of {}%", a.rows, b.rows,
                                      o.row_count_tolerance * 100));

    auto index_in = [](const std::vector<std::string>& names, const std::string& name) -> std::optional<std::size_t> {
        for (std::size_t i = 0; i < names.size(); ++i)
            if (names[i] == name) return i;
        return std::nullopt;
    };
    for (std::size_t i = 0; i < a.columns.size(); ++i) {
        verify::column_diff c;
        c.name = a.columns[i];
        c.expected_change = is_expected(o, c.name);
        c.a = a.stats[i];
        if (auto j = index_in(b.columns, c.name)) {
            c.b = b.stats[*j];
            compare_column(c, o);
            c.ok = c.differences.empty() || c.expected_change;
            add_column(r, std::move(c),
                       fmt::format("column '{}' differs: {} (list it in expected_changes if the new "
                                   "version changes it on purpose)",
                                   c.name, join(c.differences, "; ")));
        } else {
            c.presence = verify::column_presence::only_in_a;
            c.ok = c.expected_change;
            add_column(r, std::move(c),
                       fmt::format("column '{}' exists only in A: B dropped it (list it in "
                                   "expected_changes if that is intended)",
                                   c.name),
                       fmt::format("column '{}' was dropped in B, as expected", c.name));
        }
    }
    for (std::size_t j = 0; j < b.columns.size(); ++j) {
        if (index_in(a.columns, b.columns[j])) continue;
        verify::column_diff c;
        c.name = b.columns[j];
        c.presence = verify::column_presence::only_in_b;
        c.expected_change = is_expected(o, c.name);
        c.b = b.stats[j];
        c.ok = !o.forbid_new_columns || c.expected_change;
        add_column(r, std::move(c),
                   fmt::format("column '{}' exists only in B, and new columns are forbidden unless "
                               "listed in expected_changes",
                               c.name),
                   fmt::format("column '{}' is new in B", c.name));
    }
    for (const auto& e : o.expected_changes)
        if (!index_in(a.columns, e) && !index_in(b.columns, e))
            r.notes.push_back(fmt::format("expected change '{}' names no column of A or B", e));
    r.pass = r.failures.empty();
    return r;
}

/// Compares two rows given as texts; a null pointer is a missing row.
inline verify::row_comparison compare_rows(std::string key, const std::vector<std::string>& a_names,
                                           const std::vector<std::optional<std::string>>* a,
                                           const std::vector<std::string>& b_names,
                                           const std::vector<std::optional<std::string>>* b,
                                           const verify::diff_options& o) {
    verify::row_comparison r;
    r.key = std::move(key);
    if (!a || !b) {
        r.outcome = !a && !b ? verify::row_outcome::missing_in_both
                    : !a     ? verify::row_outcome::missing_in_a
                             : verify::row_outcome::missing_in_b;
        return r;
    }
    std::vector<bool> b_matched(b_names.size(), false);
    for (std::size_t i = 0; i < a_names.size(); ++i) {
        const auto j =
            static_cast<std::size_t>(std::find(b_names.begin(), b_names.end(), a_names[i]) - b_names.begin());
        if (j == b_names.size()) {
            r.only_in_a.push_back({a_names[i], (*a)[i]});
            continue;
        }
        b_matched[j] = true;
        if ((*a)[i] != (*b)[j]) r.differences.push_back({a_names[i], (*a)[i], (*b)[j], is_expected(o, a_names[i])});
    }
    for (std::size_t j = 0; j < b_names.size(); ++j)
        if (!b_matched[j]) r.only_in_b.push_back({b_names[j], (*b)[j]});
    r.outcome = r.differences.empty() ? verify::row_outcome::equal : verify::row_outcome::differs;
    return r;
}

inline std::vector<std::string> unexpected_fields(const verify::row_comparison& r) {
    std::vector<std::string> out;
    for (const auto& d : r.differences)
        if (!d.expected) out.push_back(d.field);
    return out;
}

inline std::string describe_differences(const verify::row_comparison& r) {
    std::vector<std::string> parts;
    for (const auto& d : r.differences)
        parts.push_back(fmt::format("{}: {} -> {}", d.field, text_or_null(d.a), text_or_null(d.b)));
    return join(parts, "; ");
}

/// Judges one spot-checked row and records why it fails.
inline void judge_spot_row(verify::spot_report& s, verify::row_comparison& r, std::size_t& failing) {
    switch (r.outcome) {
        case verify::row_outcome::equal: ++s.equal; break;
        case verify::row_outcome::differs: ++s.differs; break;
        case verify::row_outcome::missing_in_a: ++s.missing_in_a; break;
        case verify::row_outcome::missing_in_b: ++s.missing_in_b; break;
        case verify::row_outcome::missing_in_both: ++s.missing_in_both; break;
    }
    std::string why;
    if (r.outcome == verify::row_outcome::missing_in_a)
        why = "missing in A";
    else if (r.outcome == verify::row_outcome::missing_in_b)
        why = "missing in B";
    else if (r.outcome == verify::row_outcome::missing_in_both)
        why = "missing in both versions";
    else if (auto fields = unexpected_fields(r); !fields.empty())
        why = fmt::format("field{} {} differ{} ({})", fields.size() > 1 ? "s" : "", join(fields, ", "),
                          fields.size() > 1 ? "" : "s", describe_differences(r));
    r.ok = why.empty();
    if (!r.ok) add_capped(s.failures, failing, failure_cap, fmt::format("key '{}': {}", r.key, why));
}

/// Judges one sampled row against the sample's expectation and records why it fails.
inline void judge_sample_row(verify::sample_report& s, verify::row_comparison& r, std::size_t& failing) {
    switch (r.outcome) {
        case verify::row_outcome::equal: ++s.equal; break;
        case verify::row_outcome::differs: ++s.differs; break;
        default: ++s.missing_in_a; break;
    }
    std::string why;
    if (s.expect == verify::sample_expectation::report_only) {
        why.clear();  // counted and shown only
    } else if (r.outcome != verify::row_outcome::equal && r.outcome != verify::row_outcome::differs) {
        why = "missing in A";
    } else if (s.expect == verify::sample_expectation::equal) {
        if (r.outcome == verify::row_outcome::differs) why = fmt::format("differs: {}", describe_differences(r));
    } else if (r.outcome == verify::row_outcome::equal) {
        why = "equal to A, but the new version should have changed it";
    } else if (auto fields = unexpected_fields(r); !fields.empty()) {
        why = fmt::format("field{} {} differ{}, which {} not in expected_changes ({})", fields.size() > 1 ? "s" : "",
                          join(fields, ", "), fields.size() > 1 ? "" : "s", fields.size() > 1 ? "are" : "is",
                          describe_differences(r));
    }
    r.ok = why.empty();
    if (!r.ok) add_capped(s.failures, failing, failure_cap, fmt::format("key '{}': {}", r.key, why));
}

inline void finish_sample(verify::sample_report& s, std::size_t failing) {
    close_capped(s.failures, failing, failure_cap, "failing rows");
    std::vector<verify::field_count> counts;
    for (const auto& r : s.rows)
        for (const auto& d : r.differences) {
            auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.field == d.field; });
            if (it == counts.end())
                counts.push_back({d.field, 1});
            else
                ++it->rows;
        }
    s.differing_fields = std::move(counts);
    if (s.matched == 0) {
        if (s.expect == verify::sample_expectation::differ)
            s.failures.push_back("no row of B matches the predicate, so nothing shows that the new logic took effect");
        else
            s.notes.push_back("no row of B matches the predicate");
    }
    if (s.matched > s.compared)
        s.notes.push_back(
            fmt::format("{} rows match; the first {} were compared (limit {})", s.matched, s.compared, s.limit));
    s.pass = s.failures.empty();
}

}  // namespace projectionist::detail::verification
