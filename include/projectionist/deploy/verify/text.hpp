#pragma once

/// Reports as text for a person: aligned tables (by display width), every value made printable,
/// at most 50 rows per check (failing rows first), then `VERDICT: PASS` or `VERDICT: FAIL` with
/// every reason.
///
///     fmt::print("{}", projectionist::verify::to_text(r));

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <projectionist/deploy/verify/report.hpp>
#include <projectionist/deploy/verify/verdict.hpp>
#include <projectionist/detail/text.hpp>

namespace projectionist::detail::verification {

using detail::join;
using detail::printable;
using detail::text_table;

/// A value in a table cell or a row's details: null, "" for the empty string, else printable.
inline std::string value_cell(const std::optional<std::string>& v) {
    if (!v) return "null";
    if (v->empty()) return "\"\"";
    return printable(*v);
}

inline std::string verdict_text(bool pass, const std::vector<std::string>& failures,
                                const std::vector<std::string>& notes, std::string_view indent,
                                std::string_view label = "VERDICT") {
    std::string out;
    for (const auto& n : notes) out += fmt::format("{}note: {}\n", indent, printable(n));
    if (pass) {
        out += fmt::format("{}{}: PASS\n", indent, label);
    } else {
        out +=
            fmt::format("{}{}: FAIL ({} reason{})\n", indent, label, failures.size(), failures.size() == 1 ? "" : "s");
        for (const auto& f : failures) out += fmt::format("{}  - {}\n", indent, printable(f));
    }
    return out;
}

inline std::string stats_cell_sum(const verify::column_stats& s) {
    if (!s.numeric) return "";
    return s.integer_sum ? fmt::format("{}", *s.integer_sum) : fmt::format("{}", s.sum);
}

inline std::string column_result(const verify::column_diff& c) {
    switch (c.presence) {
        case verify::column_presence::only_in_a: return c.ok ? "dropped in B (expected)" : "DROPPED IN B";
        case verify::column_presence::only_in_b: return c.ok ? "new in B" : "NEW IN B (forbidden)";
        case verify::column_presence::both: break;
    }
    if (c.differences.empty()) return c.tolerated.empty() ? "same" : "within tolerance";
    if (c.expected_change) return "changed (expected)";
    return c.type_changed ? "TYPE CHANGED" : "DIFFERS";
}

inline std::string outcome_text(verify::row_outcome o) {
    switch (o) {
        case verify::row_outcome::equal: return "equal";
        case verify::row_outcome::differs: return "differs";
        case verify::row_outcome::missing_in_a: return "missing in A";
        case verify::row_outcome::missing_in_b: return "missing in B";
        case verify::row_outcome::missing_in_both: return "missing in both";
    }
    return "?";
}

inline std::string row_details(const verify::row_comparison& r) {
    std::vector<std::string> parts;
    for (const auto& d : r.differences)
        parts.push_back(fmt::format("{}: {} -> {}{}", printable(d.field), value_cell(d.a), value_cell(d.b),
                                    d.expected ? " (expected)" : ""));
    for (const auto& f : r.only_in_a)
        parts.push_back(fmt::format("only in A: {}={}", printable(f.field), value_cell(f.value)));
    for (const auto& f : r.only_in_b)
        parts.push_back(fmt::format("only in B: {}={}", printable(f.field), value_cell(f.value)));
    return join(parts, "; ");
}

/// Rows listed in text output; failing rows first. The JSON has them all.
inline constexpr std::size_t text_row_cap = 50;

inline std::string rows_text(const std::vector<verify::row_comparison>& rows) {
    text_table t({"key", "outcome", "check", "fields"}, {false, false, false, false});
    std::size_t listed = 0;
    for (const bool failing : {true, false})
        for (const auto& r : rows) {
            if (r.ok == failing || listed == text_row_cap) continue;
            ++listed;
            t.add({value_cell(r.key), outcome_text(r.outcome), r.ok ? "ok" : "FAIL", row_details(r)});
        }
    std::string out = t.render("  ");
    if (rows.size() > listed)
        out += fmt::format("  ... {} more rows (the JSON output lists every row)\n", rows.size() - listed);
    return out;
}

}  // namespace projectionist::detail::verification

namespace projectionist::verify {

/// A structural diff as aligned tables: rows, then per column one line per version, the
/// differences, notes, and the verdict with every reason.
///
///     structural diff: A = tickets_v1, B = tickets_v2
///       rows: A 42, B 42 (same)
///       column     side  type    nulls  distinct  min  max  sum  result
///       ...
///       VERDICT: PASS
[[nodiscard]] inline std::string to_text(const structural_report& r) {
    namespace v = detail::verification;
    std::string out = fmt::format("structural diff: A = {}, B = {}\n", v::printable(r.a_name), v::printable(r.b_name));
    out += fmt::format("  rows: A {}, B {} ({})\n\n", r.a_rows, r.b_rows,
                       r.a_rows == r.b_rows ? "same"
                       : r.rows_ok          ? "within tolerance"
                                            : "DIFFERENT");
    v::text_table t({"column", "side", "type", "nulls", "distinct", "min", "max", "sum", "result"},
                    {false, false, false, true, true, true, true, true, false});
    for (const auto& c : r.columns) {
        for (const bool side_a : {true, false}) {
            const auto& s = side_a ? c.a : c.b;
            std::vector<std::string> cells{side_a ? v::printable(c.name) : "", side_a ? "A" : "B"};
            if (!s) {
                cells.insert(cells.end(), {"(absent)", "", "", "", "", ""});
            } else {
                cells.insert(cells.end(),
                             {v::printable(s->type), fmt::format("{}", s->nulls), fmt::format("{}", s->distinct),
                              s->min_text ? v::printable(*s->min_text) : "",
                              s->max_text ? v::printable(*s->max_text) : "", v::stats_cell_sum(*s)});
            }
            cells.push_back(side_a ? v::column_result(c) : "");
            t.add(std::move(cells));
        }
    }
    out += t.render("  ");
    bool header = false;
    for (const auto& c : r.columns) {
        if (c.differences.empty() && c.tolerated.empty()) continue;
        if (!header) out += "\n  differences:\n";
        header = true;
        if (!c.differences.empty())
            out += fmt::format("    {}{}: {}\n", v::printable(c.name), c.expected_change ? " (expected)" : "",
                               v::printable(v::join(c.differences, "; ")));
        if (!c.tolerated.empty())
            out += fmt::format("    {} (within tolerance): {}\n", v::printable(c.name),
                               v::printable(v::join(c.tolerated, "; ")));
    }
    out += '\n';
    out += v::verdict_text(r.pass, r.failures, r.notes, "  ");
    return out;
}

/// A spot check: one line per key with its outcome and the differing fields, then the verdict.
[[nodiscard]] inline std::string to_text(const spot_report& r) {
    namespace v = detail::verification;
    std::string out = fmt::format("spot check: A = {}, B = {}\n", v::printable(r.a_name), v::printable(r.b_name));
    out += fmt::format("  keys {}: equal {}, differs {}, missing in A {}, missing in B {}, missing in both {}\n\n",
                       r.rows.size(), r.equal, r.differs, r.missing_in_a, r.missing_in_b, r.missing_in_both);
    out += v::rows_text(r.rows);
    out += '\n';
    out += v::verdict_text(r.pass, r.failures, r.notes, "  ");
    return out;
}

/// A sample: counts, the fields that differ and how often, the compared rows, the verdict.
[[nodiscard]] inline std::string to_text(const sample_report& r) {
    namespace v = detail::verification;
    std::string out = fmt::format(
        "sample '{}': rows of B = {} matching the predicate, compared with A = {}; "
        "expected: {}\n",
        v::printable(r.name), v::printable(r.b_name), v::printable(r.a_name),
        r.expect == sample_expectation::differ  ? "they differ from A"
        : r.expect == sample_expectation::equal ? "they equal A"
                                                : "nothing (report only)");
    out += fmt::format("  matched {}, compared {} (limit {}): differ {}, equal {}, missing in A {}\n", r.matched,
                       r.compared, r.limit, r.differs, r.equal, r.missing_in_a);
    if (!r.differing_fields.empty()) {
        std::vector<std::string> parts;
        for (const auto& f : r.differing_fields)
            parts.push_back(fmt::format("{} in {} row{}", v::printable(f.field), f.rows, f.rows == 1 ? "" : "s"));
        out += fmt::format("  fields that differ: {}\n", v::join(parts, ", "));
    }
    out += '\n';
    if (!r.rows.empty()) out += v::rows_text(r.rows) + '\n';
    out += v::verdict_text(r.pass, r.failures, r.notes, "  ");
    return out;
}

/// Every part of a report, then the overall verdict with every reason.
[[nodiscard]] inline std::string to_text(const report& r) {
    std::string out;
    if (r.structure) out += to_text(*r.structure) + '\n';
    for (const auto& s : r.spot_checks) out += to_text(s) + '\n';
    for (const auto& s : r.samples) out += to_text(s) + '\n';
    const bool pass = passed(r);
    out += detail::verification::verdict_text(pass, failures(r), {}, "", "OVERALL VERDICT");
    return out;
}

}  // namespace projectionist::verify
