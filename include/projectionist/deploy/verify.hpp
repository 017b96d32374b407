#pragma once

/// Verification of a new projection version against the one it replaces: step 4 of a blue-green
/// deployment ("verify v2"), done before the new version serves a single query.
///
/// Three checks, each returning a plain report:
///
/// - `structural_diff(a, b, options)`: row counts, and per column (matched by reflected field
///   NAME, so the two versions may have different row types) the C++ type, null count, exact
///   distinct count, per-value row counts for low-cardinality columns, and min, max and sum for
///   numeric columns (min and max for time points). Columns present in one version only are
///   shown as such. A verdict with tolerances.
/// - `spot_check(a, b, keys, options)`: the rows of the given keys compared field by field.
/// - `sample(a, b, predicate, limit, options, sample_options)`: the rows of B (the new version)
///   that match a predicate ("where the new logic should differ") compared with A's row of the
///   same key, expecting them to differ (the default), to be equal, or only reporting.
///
/// `to_text` renders any report (or a whole `report` of several checks) as aligned tables with a
/// `VERDICT: PASS` / `VERDICT: FAIL` line and every reason; `to_json` renders it as JSON for a
/// script; `exit_status` gives the process exit status a deploy script gates on: 0 when the
/// report passes, 1 when it fails (the command line returns it; it uses 2 for its own usage
/// errors).
///
///     namespace verify = projectionist::verify;
///     auto* v1 = storage.find_table<tickets<1>::table>("tickets_v1");   // or sqlite_storage's
///     auto* v2 = storage.find_table<tickets<2>::table>("tickets_v2");   // std::optional handles
///     const verify::diff_options options{.expected_changes = {"status", "reopened"}};
///     verify::report r;
///     r.structure = verify::structural_diff(v1, v2, options);
///     r.spot_checks.push_back(verify::spot_check(v1, v2, {"t-001", "t-017"}, options));
///     r.samples.push_back(verify::sample(v1, v2, [](const ticket_row& t) { return t.reopened > 0; }, 100,
///                                        options, {.name = "reopened tickets"}));
///     fmt::print("{}", verify::to_text(r));
///     return verify::exit_status(r);   // 0: PASS, 1: FAIL
///
/// Rules, and why:
///
/// - **Table handles.** Anything with `for_each(fn(const Row&))` and `find(key)` returning a
///   pointer or an optional: `memory_table`, `sqlite_table`, and a pointer, `std::optional` or
///   smart pointer to one (what `find_table` returns; an empty one throws `projectionist::error`
///   naming the side). `sample` also needs the key of a row of B, taken from the handle's table
///   declaration (`Handle<Table>` with `Table::key_of`, or a `table_type` member). Reading a
///   memory table while its runner writes needs `storage.lock_shared(name)`, as for any reader.
/// - **Values are compared by canonical text** (`value_text`): fmt's shortest round-trip form
///   for numbers, `true`/`false`, enums as their underlying integer, time points as ISO-8601
///   UTC (`2024-05-01T12:00:00.250Z`, as many fraction digits as the duration has), an empty
///   optional as null (kept apart from the string "null"), vectors and nested reflected structs
///   spelled out. So `int 3` in v1 equals `std::int64_t 3` in v2, a NaN equals a NaN, and a
///   value compares the same in memory and in SQLite. A field type with no text form does not
///   compile (make it formattable with fmt).
/// - **Column types** are compared by a label (`int32`, `optional<string>`, `time_point<ns>`,
///   `enum kind : uint8`). A changed type fails unless the column is an expected change: readers
///   of the table see it even when the values print the same.
/// - **Statistics.** Nulls are empty optionals (no other type is ever null). `distinct` counts
///   distinct non-null values exactly, as SQL's COUNT(DISTINCT) does. Columns with at most
///   `histogram_limit` distinct values also keep each value's row count: a changed handler
///   usually moves rows between a few values ("closed" to "open") without changing how many
///   distinct values there are, and only these counts show it. Numeric columns (arithmetic,
///   not bool, not characters) have min, max and sum as doubles, skipping NaN, the exact text of
///   min and max, and for integers the exact sum (`integer_sum`, empty if it overflows int64).
/// - **Tolerances are relative and symmetric**: `|a - b| <= tolerance * max(|a|, |b|)`, so 0 (the
///   default) means equal. `row_count_tolerance` applies to row counts, `stat_tolerance` to every
///   count and numeric statistic. Floating-point sums are compared with at least 1e-12: their
///   rounding depends on summation order, which differs between storages (Neumaier summation
///   keeps it that small). Integer sums are compared exactly, through `integer_sum`.
/// - **Verdict.** A difference in a column listed in `expected_changes` never fails. Otherwise a
///   structural diff fails when the row counts are out of tolerance, a common column's type or
///   statistics differ beyond tolerance, or a column of A is missing from B (dropped). A column
///   only in B (new) is reported and fails only with `forbid_new_columns`. A spot check fails
///   for a key missing on either side or a row with an unexpected difference. A sample expecting
///   `differ` fails for a row that is equal to A (v2 did not apply its new logic), missing in A,
///   or different in an unexpected field, and when no row matches at all; expecting `equal`, for
///   any difference or missing row. A `report` fails when any part fails, and when it is empty:
///   a deploy gate must not pass because nothing was checked. Every failure is recorded as a
///   sentence naming the column, key or field; observations that do not fail are `notes`.
/// - **Fields present in one version only** do not make a row differ in spot checks and samples
///   (every row of a version that adds a column would differ otherwise); they are listed with
///   their values.
/// - **Cost.** A structural diff reads each table once and holds each column's distinct values
///   while it does (the key column: one per row); 500,000 rows of four columns take about 0.2 s
///   per table at -O2. A spot check or sample finds A's row by key, one look-up per compared row.
///   Reasons are capped at 10 per check ("... and 15 more failing keys") and the text lists at
///   most 50 rows per check, failing rows first; the JSON has every compared row.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/hana/accessors.hpp>
#include <boost/hana/at.hpp>
#include <boost/hana/concept/struct.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/length.hpp>
#include <boost/hana/pair.hpp>
#include <boost/hana/string.hpp>
#include <boost/hana/tuple.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include <projectionist/detail/text.hpp>
#include <projectionist/error.hpp>

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

[[nodiscard]] constexpr std::string_view to_string(column_presence p) noexcept {
    switch (p) {
        case column_presence::both: return "both";
        case column_presence::only_in_a: return "only_in_a";
        case column_presence::only_in_b: return "only_in_b";
    }
    return "?";
}
[[nodiscard]] constexpr std::string_view to_string(row_outcome o) noexcept {
    switch (o) {
        case row_outcome::equal: return "equal";
        case row_outcome::differs: return "differs";
        case row_outcome::missing_in_a: return "missing_in_a";
        case row_outcome::missing_in_b: return "missing_in_b";
        case row_outcome::missing_in_both: return "missing_in_both";
    }
    return "?";
}
[[nodiscard]] constexpr std::string_view to_string(sample_expectation e) noexcept {
    switch (e) {
        case sample_expectation::differ: return "differ";
        case sample_expectation::equal: return "equal";
        case sample_expectation::report_only: return "report_only";
    }
    return "?";
}

/// A JSON string literal (with its quotes) for `text`: `"` and `\` escaped, control characters
/// as \uXXXX, bytes that are not valid UTF-8 replaced by \ufffd, so the result is always valid
/// JSON whatever a row holds.
///
///     json_string("a\"b\n")   // "\"a\\\"b\\u000a\""
[[nodiscard]] inline std::string json_string(std::string_view text);

}  // namespace projectionist::verify

// ---- internals ------------------------------------------------------------------------------------

namespace projectionist::detail::verification {

using detail::join;
using detail::printable;
using detail::text_table;
using detail::utf8_length;

// Own traits, named apart from other layers' detail traits, which may change without notice.
template <class T>
struct is_optional_field : std::false_type {};
template <class T>
struct is_optional_field<std::optional<T>> : std::true_type {};
template <class T>
struct is_vector_field : std::false_type {};
template <class T, class A>
struct is_vector_field<std::vector<T, A>> : std::true_type {};
template <class T>
struct is_time_point_field : std::false_type {};
template <class C, class D>
struct is_time_point_field<std::chrono::time_point<C, D>> : std::true_type {};
template <class T>
concept reflected_field = std::is_class_v<T> && boost::hana::Struct<T>::value;

template <class T>
inline constexpr bool is_char_v = std::is_same_v<T, char> || std::is_same_v<T, wchar_t> || std::is_same_v<T, char8_t> ||
                                  std::is_same_v<T, char16_t> || std::is_same_v<T, char32_t>;
/// Numbers that get min, max and sum: not bool, not characters.
template <class T>
inline constexpr bool is_numeric_v = std::is_arithmetic_v<T> && !std::is_same_v<T, bool> && !is_char_v<T>;

template <class>
inline constexpr bool always_false = false;

// -- reflection: field I of Row, by index, so that a tuple of typed accumulators can follow it ---

template <class Row>
inline constexpr std::size_t field_count = decltype(boost::hana::length(boost::hana::accessors<Row>()))::value;

template <class Row, std::size_t I>
using field_t = std::remove_cvref_t<decltype(boost::hana::second(boost::hana::at_c<I>(boost::hana::accessors<Row>()))(
    std::declval<const Row&>()))>;

template <class Row, std::size_t I>
const field_t<Row, I>& field(const Row& row) {
    return boost::hana::second(boost::hana::at_c<I>(boost::hana::accessors<Row>()))(row);
}

template <class Row, std::size_t... I>
std::vector<std::string> field_names_impl(std::index_sequence<I...>) {
    std::vector<std::string> out;
    out.reserve(sizeof...(I));
    (out.emplace_back(
         boost::hana::to<const char*>(boost::hana::first(boost::hana::at_c<I>(boost::hana::accessors<Row>())))),
     ...);
    return out;
}

/// The reflected field names of Row, in declaration order.
template <class Row>
const std::vector<std::string>& field_names() {
    static const std::vector<std::string> names = field_names_impl<Row>(std::make_index_sequence<field_count<Row>>{});
    return names;
}

// -- type labels ------------------------------------------------------------------------------------

/// The compiler's spelling of T (gcc and clang), for types without a short label.
template <class T>
std::string_view raw_type_name() {
#if defined(__GNUC__) || defined(__clang__)
    const std::string_view p = __PRETTY_FUNCTION__;
    auto begin = p.find("T = ");
    if (begin == std::string_view::npos) return "unknown";
    begin += 4;
    const auto end = p.find_first_of(";]", begin);
    return p.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin);
#else
    return "unknown";
#endif
}

template <class Period>
std::string period_label() {
    if constexpr (std::is_same_v<Period, std::nano>)
        return "ns";
    else if constexpr (std::is_same_v<Period, std::micro>)
        return "us";
    else if constexpr (std::is_same_v<Period, std::milli>)
        return "ms";
    else if constexpr (std::is_same_v<Period, std::ratio<1>>)
        return "s";
    else
        return fmt::format("{}/{} s", Period::num, Period::den);
}

template <class T>
std::string type_label() {
    if constexpr (is_optional_field<T>::value) {
        return "optional<" + type_label<typename T::value_type>() + ">";
    } else if constexpr (std::is_same_v<T, bool>) {
        return "bool";
    } else if constexpr (is_char_v<T>) {
        return std::string(raw_type_name<T>());
    } else if constexpr (std::is_integral_v<T>) {
        return fmt::format("{}int{}", std::is_signed_v<T> ? "" : "u",
                           std::numeric_limits<T>::digits + (std::is_signed_v<T> ? 1 : 0));
    } else if constexpr (std::is_same_v<T, float>) {
        return "float32";
    } else if constexpr (std::is_same_v<T, double>) {
        return "float64";
    } else if constexpr (std::is_same_v<T, std::string>) {
        return "string";
    } else if constexpr (std::is_enum_v<T>) {
        return fmt::format("enum {} : {}", raw_type_name<T>(), type_label<std::underlying_type_t<T>>());
    } else if constexpr (is_time_point_field<T>::value) {
        return fmt::format("time_point<{}>", period_label<typename T::period>());
    } else if constexpr (is_vector_field<T>::value) {
        return "vector<" + type_label<typename T::value_type>() + ">";
    } else {
        return std::string(raw_type_name<T>());
    }
}

// -- canonical text of a value --------------------------------------------------------------------

/// ISO-8601 UTC, counting the clock's epoch as 1970-01-01 (system_clock's, and how SQLite stores
/// time points), with as many fraction digits as the duration has.
template <class Clock, class Duration>
std::string iso_utc(std::chrono::time_point<Clock, Duration> tp) {
    using namespace std::chrono;
    const Duration since = tp.time_since_epoch();
    if constexpr (treat_as_floating_point_v<typename Duration::rep>) {
        return fmt::format("{} {}", since.count(), period_label<typename Duration::period>());
    } else {
        const auto day = floor<days>(since);
        const year_month_day ymd{sys_days{day}};
        const hh_mm_ss hms{since - day};
        std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", static_cast<int>(ymd.year()),
                                      static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                                      hms.hours().count(), hms.minutes().count(), hms.seconds().count());
        if constexpr (decltype(hms)::fractional_width > 0)
            out += fmt::format(".{:0{}}", hms.subseconds().count(), decltype(hms)::fractional_width);
        out += 'Z';
        return out;
    }
}

template <class T>
std::optional<std::string> value_text(const T& value);

/// The text of a value that is not null.
template <class T>
std::string present_text(const T& value) {
    if constexpr (std::is_same_v<T, bool>) {
        return value ? "true" : "false";
    } else if constexpr (std::is_enum_v<T>) {
        return fmt::format("{}", static_cast<std::underlying_type_t<T>>(value));
    } else if constexpr (is_time_point_field<T>::value) {
        return iso_utc(value);
    } else if constexpr (std::is_same_v<T, std::string>) {
        return value;
    } else if constexpr (is_vector_field<T>::value) {
        std::string out = "[";
        for (const auto& e : value) {
            if (out.size() > 1) out += ", ";
            out += value_text(e).value_or("null");
        }
        return out + "]";
    } else if constexpr (reflected_field<T>) {
        std::string out = "{";
        boost::hana::for_each(boost::hana::accessors<T>(), [&](auto member) {
            if (out.size() > 1) out += ", ";
            out += boost::hana::to<const char*>(boost::hana::first(member));
            out += '=';
            out += value_text(boost::hana::second(member)(value)).value_or("null");
        });
        return out + "}";
    } else if constexpr (fmt::is_formattable<T>::value) {
        return fmt::format("{}", value);
    } else {
        static_assert(always_false<T>,
                      "projectionist: verify: a row field has a type with no text form, so its values cannot be "
                      "compared or shown; supported are arithmetic types, enums, std::string, std::optional, "
                      "std::vector, std::chrono::time_point, Hana-reflected structs, and any type fmt can format "
                      "(specialize fmt::formatter for it)");
        return {};
    }
}

template <class T>
std::optional<std::string> value_text(const T& value) {
    if constexpr (is_optional_field<T>::value) {
        if (!value) return std::nullopt;
        return value_text(*value);
    } else {
        return present_text(value);
    }
}

template <class Row, std::size_t... I>
std::vector<std::optional<std::string>> row_values_impl(const Row& row, std::index_sequence<I...>) {
    std::vector<std::optional<std::string>> out;
    out.reserve(sizeof...(I));
    (out.push_back(value_text(field<Row, I>(row))), ...);
    return out;
}

/// Every field of a row as canonical text, in declaration order.
template <class Row>
std::vector<std::optional<std::string>> row_values(const Row& row) {
    return row_values_impl(row, std::make_index_sequence<field_count<Row>>{});
}

// -- one column's statistics ----------------------------------------------------------------------

template <class T>
struct unwrap_optional {
    using type = T;
};
template <class T>
struct unwrap_optional<std::optional<T>> {
    using type = T;
};

template <class Field>
class column_accumulator {
public:
    using value_type = typename unwrap_optional<Field>::type;

    void add(const Field& field) {
        if constexpr (is_optional_field<Field>::value) {
            if (!field) {
                ++nulls_;
                return;
            }
            add_value(*field);
        } else {
            add_value(field);
        }
    }

    [[nodiscard]] verify::column_stats finish(std::size_t histogram_limit) const {
        verify::column_stats s;
        s.type = type_label<Field>();
        s.values = values_;
        s.nulls = nulls_;
        s.distinct = counts_.size();
        if (counts_.size() <= histogram_limit) {
            std::vector<verify::value_count> f;
            f.reserve(counts_.size());
            for (const auto& [value, rows] : counts_) f.push_back({value, rows});
            std::sort(f.begin(), f.end(), [](const auto& x, const auto& y) {
                return x.rows != y.rows ? x.rows > y.rows : x.value < y.value;
            });
            s.frequencies = std::move(f);
        }
        if constexpr (is_numeric_v<value_type>) {
            s.numeric = true;
            s.sum = std::isfinite(sum_) ? sum_ + compensation_ : sum_;
            if constexpr (std::is_integral_v<value_type>)
                if (!overflow_) s.integer_sum = integer_sum_;
        }
        if (min_) {
            s.min_text = present_text(*min_);
            s.max_text = present_text(*max_);
            if constexpr (is_numeric_v<value_type>) {
                s.min = static_cast<double>(*min_);
                s.max = static_cast<double>(*max_);
            }
        }
        return s;
    }

private:
    void add_value(const value_type& v) {
        ++values_;
        ++counts_[present_text(v)];
        if constexpr (is_numeric_v<value_type>) {
            if constexpr (std::is_floating_point_v<value_type>)
                if (std::isnan(v)) return;
            extremes(v);
            // Neumaier's compensated sum: the result hardly depends on the order rows come in.
            const double d = static_cast<double>(v);
            const double t = sum_ + d;
            if (std::isfinite(t)) compensation_ += std::fabs(sum_) >= std::fabs(d) ? (sum_ - t) + d : (d - t) + sum_;
            sum_ = t;
            if constexpr (std::is_integral_v<value_type>) add_integer(v);
        } else if constexpr (is_time_point_field<value_type>::value) {
            extremes(v);
        }
    }

    void extremes(const value_type& v) {
        if (!min_ || v < *min_) min_ = v;
        if (!max_ || *max_ < v) max_ = v;
    }

    void add_integer(value_type v) {
        if (overflow_) return;
        constexpr auto top = std::numeric_limits<std::int64_t>::max();
        if constexpr (std::is_unsigned_v<value_type>) {
            if (static_cast<std::uint64_t>(v) > static_cast<std::uint64_t>(top)) {
                overflow_ = true;
                return;
            }
        }
        const auto x = static_cast<std::int64_t>(v);
        if ((x > 0 && integer_sum_ > top - x) || (x < 0 && integer_sum_ < std::numeric_limits<std::int64_t>::min() - x))
            overflow_ = true;
        else
            integer_sum_ += x;
    }

    std::size_t values_ = 0, nulls_ = 0;
    boost::unordered_flat_map<std::string, std::size_t> counts_;
    std::optional<value_type> min_, max_;
    double sum_ = 0, compensation_ = 0;
    std::int64_t integer_sum_ = 0;
    bool overflow_ = false;
};

/// One version's table, summarized.
struct table_summary {
    std::string name;
    std::size_t rows = 0;
    std::vector<std::string> columns;
    std::vector<verify::column_stats> stats;
};

template <class Row, class Handle, std::size_t... I>
table_summary summarize_impl(Handle& table, std::string name, std::size_t histogram_limit, std::index_sequence<I...>) {
    [[maybe_unused]] std::tuple<column_accumulator<field_t<Row, I>>...> columns;
    table_summary out;
    out.name = std::move(name);
    table.for_each([&](const Row& row) {
        ++out.rows;
        (std::get<I>(columns).add(field<Row, I>(row)), ...);
    });
    out.columns = field_names<Row>();
    (out.stats.push_back(std::get<I>(columns).finish(histogram_limit)), ...);
    return out;
}

template <class Handle>
table_summary summarize(Handle& table, std::string name, std::size_t histogram_limit) {
    using Row = typename Handle::row_type;
    return summarize_impl<Row>(table, std::move(name), histogram_limit, std::make_index_sequence<field_count<Row>>{});
}

// -- table handles --------------------------------------------------------------------------------

template <class Handle>
concept has_table_type = requires {
    typename Handle::table_type;
};
template <class Table>
concept table_declaration = requires(const typename Table::row_type& row) {
    Table::key_of(row);
};

/// The argument of a `Handle<Table>` template such as memory_table and sqlite_table.
template <class Handle>
struct table_argument {};
template <template <class> class Handle, table_declaration Table>
struct table_argument<Handle<Table>> {
    using type = Table;
};

/// The table declaration (`projectionist::table<...>`) behind a handle: its `table_type`, else
/// the table it is a template of.
template <class Handle>
struct table_of : table_argument<Handle> {};
template <has_table_type Handle>
struct table_of<Handle> {
    using type = typename Handle::table_type;
};

template <class H>
concept table_like = requires(H& h, const typename H::key_type& key) {
    typename H::row_type;
    typename H::key_type;
    h.find(key);
    h.for_each([](const typename H::row_type&) {});
};

/// The table a handle argument refers to: the handle itself, or what a pointer, optional or smart
/// pointer to one holds (which must not be empty).
template <class H>
decltype(auto) table_ref(H& handle, std::string_view side) {
    if constexpr (table_like<H>) {
        return (handle);
    } else if constexpr (requires {
                             static_cast<bool>(handle);
                             *handle;
                         }) {
        static_assert(table_like<std::remove_reference_t<decltype(*handle)>>,
                      "projectionist: verify: a table argument must be a table handle with for_each(fn) and "
                      "find(key) (memory_table, sqlite_table; sqlite_table's are not const, so pass it non-const), "
                      "or a pointer, std::optional or smart pointer to one, as storage.find_table returns");
        if (!static_cast<bool>(handle))
            throw error(
                fmt::format("projectionist: verify: table {} is missing (an empty handle: did find_table "
                            "find no table of that name?)",
                            side));
        return (*handle);
    } else {
        static_assert(always_false<H>,
                      "projectionist: verify: a table argument must be a table handle with for_each(fn) and "
                      "find(key) (memory_table, sqlite_table; sqlite_table's are not const, so pass it non-const), "
                      "or a pointer, std::optional or smart pointer to one, as storage.find_table returns");
    }
}

template <class H>
std::string table_name(H& table, std::string_view fallback) {
    if constexpr (requires { table.name(); }) {
        std::string name(table.name());
        return name.empty() ? std::string(fallback) : name;
    } else {
        return std::string(fallback);
    }
}

/// `table.find(key)` with the key converted to the table's own key type.
template <class H, class K>
auto find_row(H& table, const K& key) {
    using table_key = typename H::key_type;
    if constexpr (std::is_same_v<K, table_key>) {
        return table.find(key);
    } else {
        static_assert(std::is_constructible_v<table_key, const K&>,
                      "projectionist: verify: the two versions' key types are not convertible into each other");
        return table.find(table_key(key));
    }
}

// -- comparisons (not templates: compiled once) -----------------------------------------------------

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
            if (!c.ok)
                r.failures.push_back(
                    fmt::format("column '{}' differs: {} (list it in expected_changes if the new "
                                "version changes it on purpose)",
                                c.name, join(c.differences, "; ")));
        } else {
            c.presence = verify::column_presence::only_in_a;
            c.ok = c.expected_change;
            if (!c.ok)
                r.failures.push_back(
                    fmt::format("column '{}' exists only in A: B dropped it (list it in "
                                "expected_changes if that is intended)",
                                c.name));
            else
                r.notes.push_back(fmt::format("column '{}' was dropped in B, as expected", c.name));
        }
        r.columns.push_back(std::move(c));
    }
    for (std::size_t j = 0; j < b.columns.size(); ++j) {
        if (index_in(a.columns, b.columns[j])) continue;
        verify::column_diff c;
        c.name = b.columns[j];
        c.presence = verify::column_presence::only_in_b;
        c.expected_change = is_expected(o, c.name);
        c.b = b.stats[j];
        c.ok = !o.forbid_new_columns || c.expected_change;
        if (!c.ok)
            r.failures.push_back(
                fmt::format("column '{}' exists only in B, and new columns are forbidden unless "
                            "listed in expected_changes",
                            c.name));
        else
            r.notes.push_back(fmt::format("column '{}' is new in B", c.name));
        r.columns.push_back(std::move(c));
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

namespace projectionist::verify {

/// A table handle `verify` reads: `for_each(fn(const Row&))` and `find(key)` returning a pointer
/// or an optional (memory_table, sqlite_table). The functions below also accept a pointer,
/// optional or smart pointer to one.
template <class H>
concept table_handle = detail::verification::table_like<H>;

/// The canonical text a value is compared and shown by; nullopt for an empty optional.
///
///     value_text(std::optional<int>{})   // nullopt
///     value_text(2.5)                    // "2.5"
///     value_text(sys_seconds{86400s})    // "1970-01-02T00:00:00Z"
template <class T>
[[nodiscard]] std::optional<std::string> value_text(const T& value) {
    return detail::verification::value_text(value);
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
    auto& ta = v::table_ref(a, "A");
    auto& tb = v::table_ref(b, "B");
    using table_a = std::remove_reference_t<decltype(ta)>;
    using table_b = std::remove_reference_t<decltype(tb)>;
    using key_b = typename table_b::key_type;
    static_assert(std::is_constructible_v<key_b, std::ranges::range_reference_t<Keys>>,
                  "projectionist: verify::spot_check(a, b, keys): the keys must be of table B's key type or "
                  "convertible to it");
    const auto& a_names = v::field_names<typename table_a::row_type>();
    const auto& b_names = v::field_names<typename table_b::row_type>();

    spot_report s;
    s.a_name = v::table_name(ta, "A");
    s.b_name = v::table_name(tb, "B");
    std::size_t failing = 0;
    for (auto&& k : keys) {
        const key_b key(k);
        const auto ra = v::find_row(ta, key);
        const auto rb = v::find_row(tb, key);
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
    auto& ta = v::table_ref(a, "A");
    auto& tb = v::table_ref(b, "B");
    using table_a = std::remove_reference_t<decltype(ta)>;
    using table_b = std::remove_reference_t<decltype(tb)>;
    using row_b = typename table_b::row_type;
    static_assert(
        requires { typename v::table_of<std::remove_cv_t<table_b>>::type; },
        "projectionist: verify::sample(a, b, ...): the key of a row of B must be known: B must be a "
        "Handle<Table> of a projectionist::table (memory_table, sqlite_table) or have a table_type member");
    static_assert(std::is_invocable_r_v<bool, Predicate&, const row_b&>,
                  "projectionist: verify::sample(a, b, predicate, limit): predicate must take a row of B (the new "
                  "version) and return bool");
    using table_decl = typename v::table_of<std::remove_cv_t<table_b>>::type;
    const auto& a_names = v::field_names<typename table_a::row_type>();
    const auto& b_names = v::field_names<row_b>();

    sample_report s;
    s.name = sampling.name;
    s.expect = sampling.expect;
    s.limit = limit;
    s.a_name = v::table_name(ta, "A");
    s.b_name = v::table_name(tb, "B");
    std::size_t failing = 0;
    tb.for_each([&](const row_b& row) {
        if (!predicate(row)) return;
        ++s.matched;
        if (s.compared >= limit) return;
        ++s.compared;
        const auto& key = table_decl::key_of(row);
        const auto ra = v::find_row(ta, key);
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

// ---- verdicts ---------------------------------------------------------------------------------------

/// Whether a whole report passes: every part passes, and there is at least one part.
[[nodiscard]] inline bool passed(const report& r) {
    if (!r.structure && r.spot_checks.empty() && r.samples.empty()) return false;
    if (r.structure && !r.structure->pass) return false;
    for (const auto& s : r.spot_checks)
        if (!s.pass) return false;
    for (const auto& s : r.samples)
        if (!s.pass) return false;
    return true;
}

/// Every failing reason of a report, each prefixed with the check it comes from.
[[nodiscard]] inline std::vector<std::string> failures(const report& r) {
    std::vector<std::string> out;
    if (!r.structure && r.spot_checks.empty() && r.samples.empty())
        out.emplace_back("nothing was verified: the report has no structural diff, spot check or sample");
    if (r.structure)
        for (const auto& f : r.structure->failures) out.push_back("structural diff: " + f);
    for (const auto& s : r.spot_checks)
        for (const auto& f : s.failures) out.push_back("spot check: " + f);
    for (const auto& s : r.samples)
        for (const auto& f : s.failures) out.push_back(fmt::format("sample '{}': {}", s.name, f));
    return out;
}

/// The exit status a deploy script gates on: 0 when the report passes, 1 when it fails.
[[nodiscard]] inline int exit_status(const structural_report& r) noexcept {
    return r.pass ? 0 : 1;
}
[[nodiscard]] inline int exit_status(const spot_report& r) noexcept {
    return r.pass ? 0 : 1;
}
[[nodiscard]] inline int exit_status(const sample_report& r) noexcept {
    return r.pass ? 0 : 1;
}
[[nodiscard]] inline int exit_status(const report& r) {
    return passed(r) ? 0 : 1;
}

}  // namespace projectionist::verify

// ---- output ---------------------------------------------------------------------------------------------

namespace projectionist::detail::verification {

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
    return s.integer_sum ? fmt::format("{}", *s.integer_sum) : number_text(s.sum);
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

/// A JSON document written in order; commas are placed by the writer.
class json_writer {
public:
    json_writer& begin_object() { return open('{'); }
    json_writer& end_object() { return close('}'); }
    json_writer& begin_array() { return open('['); }
    json_writer& end_array() { return close(']'); }
    json_writer& key(std::string_view k) {
        separate();
        out_ += verify::json_string(k);
        out_ += ':';
        after_key_ = true;
        return *this;
    }
    json_writer& value(std::string_view v) { return raw(verify::json_string(v)); }
    json_writer& value(const char* v) { return value(std::string_view(v)); }
    json_writer& value(const std::string& v) { return value(std::string_view(v)); }
    json_writer& value(const std::optional<std::string>& v) { return v ? value(*v) : raw("null"); }
    json_writer& value(bool v) { return raw(v ? "true" : "false"); }
    json_writer& value(std::size_t v) { return raw(fmt::format("{}", v)); }
    json_writer& value(std::int64_t v) { return raw(fmt::format("{}", v)); }
    json_writer& value(double v) { return raw(std::isfinite(v) ? fmt::format("{}", v) : std::string("null")); }
    json_writer& value(const std::optional<double>& v) { return v ? value(*v) : raw("null"); }
    json_writer& null() { return raw("null"); }
    json_writer& strings(const std::vector<std::string>& vs) {
        begin_array();
        for (const auto& s : vs) value(s);
        return end_array();
    }
    template <class T>
    json_writer& field(std::string_view k, const T& v) {
        key(k);
        return value(v);
    }
    [[nodiscard]] std::string take() { return std::move(out_); }

private:
    void separate() {
        if (after_key_) {
            after_key_ = false;
            return;
        }
        if (!first_.empty()) {
            if (!first_.back()) out_ += ',';
            first_.back() = false;
        }
    }
    json_writer& raw(std::string_view text) {
        separate();
        out_ += text;
        return *this;
    }
    json_writer& open(char c) {
        separate();
        out_ += c;
        first_.push_back(true);
        return *this;
    }
    json_writer& close(char c) {
        out_ += c;
        first_.pop_back();
        return *this;
    }

    std::string out_;
    std::vector<bool> first_;
    bool after_key_ = false;
};

inline void write_stats(json_writer& j, const std::optional<verify::column_stats>& s) {
    if (!s) {
        j.null();
        return;
    }
    j.begin_object()
        .field("type", s->type)
        .field("values", s->values)
        .field("nulls", s->nulls)
        .field("distinct", s->distinct)
        .field("numeric", s->numeric);
    if (s->numeric) {
        j.field("min", s->min).field("max", s->max).field("sum", s->sum).key("integer_sum");
        if (s->integer_sum)
            j.value(*s->integer_sum);
        else
            j.null();
    }
    j.field("min_text", s->min_text).field("max_text", s->max_text).key("frequencies");
    if (s->frequencies) {
        j.begin_array();
        for (const auto& f : *s->frequencies)
            j.begin_object().field("value", f.value).field("rows", f.rows).end_object();
        j.end_array();
    } else {
        j.null();
    }
    j.end_object();
}

inline void write_verdict(json_writer& j, bool pass, const std::vector<std::string>& failures,
                          const std::vector<std::string>& notes) {
    j.field("pass", pass).field("verdict", pass ? "pass" : "fail").key("failures").strings(failures);
    j.key("notes").strings(notes);
}

inline void write(json_writer& j, const verify::structural_report& r) {
    j.begin_object().field("check", "structural_diff").field("a", r.a_name).field("b", r.b_name);
    write_verdict(j, r.pass, r.failures, r.notes);
    j.key("rows").begin_object().field("a", r.a_rows).field("b", r.b_rows).field("ok", r.rows_ok).end_object();
    j.key("columns").begin_array();
    for (const auto& c : r.columns) {
        j.begin_object()
            .field("name", c.name)
            .field("presence", verify::to_string(c.presence))
            .field("expected_change", c.expected_change)
            .field("type_changed", c.type_changed)
            .field("ok", c.ok);
        j.key("differences").strings(c.differences);
        j.key("tolerated").strings(c.tolerated);
        j.key("a");
        write_stats(j, c.a);
        j.key("b");
        write_stats(j, c.b);
        j.end_object();
    }
    j.end_array().end_object();
}

inline void write_rows(json_writer& j, const std::vector<verify::row_comparison>& rows) {
    j.begin_array();
    for (const auto& r : rows) {
        j.begin_object().field("key", r.key).field("outcome", verify::to_string(r.outcome)).field("ok", r.ok);
        j.key("differences").begin_array();
        for (const auto& d : r.differences)
            j.begin_object()
                .field("field", d.field)
                .field("a", d.a)
                .field("b", d.b)
                .field("expected", d.expected)
                .end_object();
        j.end_array();
        for (const auto& [name, list] : {std::pair{"only_in_a", &r.only_in_a}, std::pair{"only_in_b", &r.only_in_b}}) {
            j.key(name).begin_array();
            for (const auto& f : *list) j.begin_object().field("field", f.field).field("value", f.value).end_object();
            j.end_array();
        }
        j.end_object();
    }
    j.end_array();
}

inline void write(json_writer& j, const verify::spot_report& r) {
    j.begin_object().field("check", "spot_check").field("a", r.a_name).field("b", r.b_name);
    write_verdict(j, r.pass, r.failures, r.notes);
    j.key("counts")
        .begin_object()
        .field("keys", r.rows.size())
        .field("equal", r.equal)
        .field("differs", r.differs)
        .field("missing_in_a", r.missing_in_a)
        .field("missing_in_b", r.missing_in_b)
        .field("missing_in_both", r.missing_in_both)
        .end_object();
    j.key("rows");
    write_rows(j, r.rows);
    j.end_object();
}

inline void write(json_writer& j, const verify::sample_report& r) {
    j.begin_object()
        .field("check", "sample")
        .field("name", r.name)
        .field("a", r.a_name)
        .field("b", r.b_name)
        .field("expect", verify::to_string(r.expect));
    write_verdict(j, r.pass, r.failures, r.notes);
    j.key("counts")
        .begin_object()
        .field("limit", r.limit)
        .field("matched", r.matched)
        .field("compared", r.compared)
        .field("equal", r.equal)
        .field("differs", r.differs)
        .field("missing_in_a", r.missing_in_a)
        .end_object();
    j.key("differing_fields").begin_array();
    for (const auto& f : r.differing_fields)
        j.begin_object().field("field", f.field).field("rows", f.rows).end_object();
    j.end_array();
    j.key("rows");
    write_rows(j, r.rows);
    j.end_object();
}

}  // namespace projectionist::detail::verification

namespace projectionist::verify {

inline std::string json_string(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    out += '"';
    for (std::size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '"') {
            out += "\\\"";
        } else if (c == '\\') {
            out += "\\\\";
        } else if (c < 0x20) {
            out += fmt::format("\\u{:04x}", c);
        } else if (c >= 0x80) {
            const std::size_t n = detail::verification::utf8_length(text, i);
            if (n == 0) {
                out += "\\ufffd";
                ++i;
            } else {
                out.append(text.substr(i, n));
                i += n;
            }
            continue;
        } else {
            out += static_cast<char>(c);
        }
        ++i;
    }
    out += '"';
    return out;
}

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

/// JSON for a script: `{"check": "structural_diff", "pass": true, "verdict": "pass",
/// "failures": [...], "notes": [...], "rows": {"a": 42, "b": 42, "ok": true}, "columns": [{"name":
/// "status", "presence": "both", ..., "a": {"type": "string", "nulls": 0, "distinct": 2, ...}}]}`.
/// Values are strings (their canonical text) or null; non-finite numbers are null.
[[nodiscard]] inline std::string to_json(const structural_report& r) {
    detail::verification::json_writer j;
    detail::verification::write(j, r);
    return j.take();
}
/// JSON: `{"check": "spot_check", "pass": ..., "counts": {...}, "rows": [{"key": "t-1", "outcome":
/// "differs", "ok": true, "differences": [{"field": "status", "a": "closed", "b": "open",
/// "expected": true}], "only_in_a": [], "only_in_b": [{"field": "reopened", "value": "1"}]}]}`.
[[nodiscard]] inline std::string to_json(const spot_report& r) {
    detail::verification::json_writer j;
    detail::verification::write(j, r);
    return j.take();
}
/// JSON: `{"check": "sample", "name": ..., "expect": "differ", "pass": ..., "counts": {"matched": ...},
/// "differing_fields": [{"field": "status", "rows": 12}], "rows": [...]}`.
[[nodiscard]] inline std::string to_json(const sample_report& r) {
    detail::verification::json_writer j;
    detail::verification::write(j, r);
    return j.take();
}
/// JSON: `{"pass": ..., "verdict": ..., "failures": [...], "structure": {...} or null,
/// "spot_checks": [...], "samples": [...]}`.
[[nodiscard]] inline std::string to_json(const report& r) {
    namespace v = detail::verification;
    v::json_writer j;
    const bool pass = passed(r);
    j.begin_object().field("pass", pass).field("verdict", pass ? "pass" : "fail").key("failures").strings(failures(r));
    j.key("structure");
    if (r.structure)
        v::write(j, *r.structure);
    else
        j.null();
    j.key("spot_checks").begin_array();
    for (const auto& s : r.spot_checks) v::write(j, s);
    j.end_array().key("samples").begin_array();
    for (const auto& s : r.samples) v::write(j, s);
    j.end_array().end_object();
    return j.take();
}

}  // namespace projectionist::verify
