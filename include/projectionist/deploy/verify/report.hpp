#pragma once

/// Verification's vocabulary: the options every check takes and the plain reports they return.
/// No logic here, so a program that only reads reports (a dashboard, a test) parses little.
///
///     projectionist::verify::diff_options options{.expected_changes = {"status"}};
///     projectionist::verify::structural_report r = verify::structural_diff(v1, v2, options);

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <projectionist/detail/enum_text.hpp>

namespace projectionist::verify {

// ---- options and reports ------------------------------------------------------------------------

/// What may differ between the two versions, and by how much. Shared by every check.
struct diff_options {
    /// Relative tolerance on row counts: `|a - b| <= t * max(a, b)`. 0: equal counts.
    double row_count_tolerance = 0;
    /// Relative tolerance on every per-column count and numeric statistic. 0: equal.
    double stat_tolerance = 0;
    /// Columns (field names) allowed to differ: a column whose logic changed on purpose, a new or
    /// dropped column. Their differences are reported and never fail.
    std::vector<std::string> expected_changes{};
    /// When true, a column that only B has fails unless it is in `expected_changes`.
    bool forbid_new_columns = false;
    /// Columns with at most this many distinct values keep (and compare) each value's row count.
    std::size_t histogram_limit = 20;
};

/// One value of a low-cardinality column and how many rows hold it.
struct value_count {
    std::string value;
    std::size_t rows = 0;
};

/// The statistics of one column of one version.
struct column_stats {
    std::string type;          ///< the C++ type's label: "int32", "optional<string>", ...
    std::size_t values = 0;    ///< rows with a value (not null)
    std::size_t nulls = 0;     ///< rows whose optional is empty
    std::size_t distinct = 0;  ///< distinct non-null values (by canonical text)
    /// Each value's row count, most frequent first, when `distinct <= histogram_limit`.
    std::optional<std::vector<value_count>> frequencies;
    bool numeric = false;                           ///< min, max and sum below are computed
    std::optional<double> min, max;                 ///< numeric: over non-null, non-NaN values
    double sum = 0;                                 ///< numeric
    std::optional<std::int64_t> integer_sum;        ///< integral: the exact sum, when it fits
    std::optional<std::string> min_text, max_text;  ///< numeric and time points: exact min and max
};

enum class column_presence { both, only_in_a, only_in_b };

/// One column of the structural diff.
struct column_diff {
    std::string name;
    column_presence presence = column_presence::both;
    std::optional<column_stats> a, b;  ///< empty on the side that lacks the column
    bool expected_change = false;      ///< listed in `expected_changes`
    bool type_changed = false;
    bool ok = true;                        ///< does not fail the verdict
    std::vector<std::string> differences;  ///< beyond tolerance: "distinct 2 -> 3"
    std::vector<std::string> tolerated;    ///< different, but within tolerance
};

/// The outcome of `structural_diff`.
struct structural_report {
    std::string a_name, b_name;
    std::size_t a_rows = 0, b_rows = 0;
    bool rows_ok = true;
    /// A's columns in A's order, then the columns only B has, in B's order.
    std::vector<column_diff> columns;
    bool pass = true;
    std::vector<std::string> failures;  ///< one sentence per failing reason
    std::vector<std::string> notes;
};

enum class row_outcome { equal, differs, missing_in_a, missing_in_b, missing_in_both };

/// A field both versions have, whose values differ. Values are canonical texts; empty for null.
struct field_difference {
    std::string field;
    std::optional<std::string> a, b;
    bool expected = false;  ///< the field is in `expected_changes`
};

/// A field that only one version has, with this row's value.
struct field_value {
    std::string field;
    std::optional<std::string> value;
};

/// One key's rows in both versions, compared field by field.
struct row_comparison {
    std::string key;
    row_outcome outcome = row_outcome::equal;
    bool ok = true;  ///< does not fail the check
    std::vector<field_difference> differences;
    std::vector<field_value> only_in_a, only_in_b;
};

/// The outcome of `spot_check`.
struct spot_report {
    std::string a_name, b_name;
    std::vector<row_comparison> rows;  ///< one per key, in the order given
    std::size_t equal = 0, differs = 0, missing_in_a = 0, missing_in_b = 0, missing_in_both = 0;
    bool pass = true;
    std::vector<std::string> failures;
    std::vector<std::string> notes;
};

/// What the rows selected by a sample's predicate should look like next to A.
enum class sample_expectation {
    differ,       ///< each differs from A, only in expected fields (the new logic took effect)
    equal,        ///< each equals A (a subset the new version must not change)
    report_only,  ///< no verdict: only count and show
};

struct sample_options {
    std::string name = "sample";  ///< shown in the outputs: what the predicate selects
    sample_expectation expect = sample_expectation::differ;
};

/// A field and how many compared rows differ in it.
struct field_count {
    std::string field;
    std::size_t rows = 0;
};

/// The outcome of `sample`.
struct sample_report {
    std::string name, a_name, b_name;
    sample_expectation expect = sample_expectation::differ;
    std::size_t limit = 0;
    std::size_t matched = 0;   ///< rows of B that match the predicate
    std::size_t compared = 0;  ///< of those, the first `limit`, compared with A
    std::size_t equal = 0, differs = 0, missing_in_a = 0;
    std::vector<field_count> differing_fields;  ///< per common field, rows that differ in it
    std::vector<row_comparison> rows;           ///< the compared rows
    bool pass = true;
    std::vector<std::string> failures;
    std::vector<std::string> notes;
};

/// Several checks of one deployment, rendered and judged together.
struct report {
    std::optional<structural_report> structure;
    std::vector<spot_report> spot_checks;
    std::vector<sample_report> samples;
};

/// `to_string` of the enums above (their names below).
using projectionist::to_string;

}  // namespace projectionist::verify

namespace projectionist {

template <>
inline constexpr auto detail::enum_names_of<verify::column_presence> =
    detail::enum_names<verify::column_presence::only_in_b>{{"both", "only_in_a", "only_in_b"}, "?"};
template <>
inline constexpr auto detail::enum_names_of<verify::row_outcome> =
    detail::enum_names<verify::row_outcome::missing_in_both>{
        {"equal", "differs", "missing_in_a", "missing_in_b", "missing_in_both"}, "?"};
template <>
inline constexpr auto detail::enum_names_of<verify::sample_expectation> =
    detail::enum_names<verify::sample_expectation::report_only>{{"differ", "equal", "report_only"}, "?"};

}  // namespace projectionist
