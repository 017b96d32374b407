#pragma once

/// The text of any value, in one place: verification compares and shows rows by it, and the query
/// router spells the answers of shadow reads with it. Numbers are fmt's shortest round-trip form,
/// bool is true/false, enums their underlying integer, time points ISO-8601 UTC, and optionals,
/// pairs, ranges and Hana-reflected structs are spelled out element by element.
///
/// Two spellings share that walk:
/// - `canonical_spelling` (verification): strings as they are, an empty optional as `null`,
///   struct fields as `name=value`, every element; a type with no text form does not compile.
/// - `answer_spelling` (shadow reads): strings quoted, an empty optional as `(none)`, fields as
///   `name: value`, at most 16 elements of a range, and "(unformattable)" for a type with no
///   text form (a query may return anything).
///
///     projectionist::detail::value_text(std::optional<int>{})                  // nullopt
///     projectionist::detail::value_text(2.5)                                   // "2.5"
///     projectionist::detail::value_text(sys_seconds{86400s})                   // "1970-01-02T00:00:00Z"
///     projectionist::detail::answer_text(std::pair{std::string("x"), 1.5})     // "(\"x\", 1.5)"

#include <chrono>
#include <cstddef>
#include <optional>
#include <ranges>
#include <ratio>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include <projectionist/meta/reflection.hpp>
#include <projectionist/meta/type_traits.hpp>

namespace projectionist::detail {

/// A range spelled element by element: one whose elements are not the range itself
/// (std::filesystem::path is one of those).
template <class T>
concept spelled_range = std::ranges::input_range<const T> &&
    !std::is_same_v<std::remove_cvref_t<std::ranges::range_reference_t<const T>>, T>;

/// "ns", "us", "ms", "s", or "num/den s": the unit of a duration's tick.
template <class Period>
[[nodiscard]] std::string period_label() {
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

/// ISO-8601 UTC, counting the clock's epoch as 1970-01-01 (system_clock's, and how SQLite stores
/// time points), with as many fraction digits as the duration has; a floating-point duration as
/// its count and unit.
///
///     iso_utc(sys_time<milliseconds>{1714564800250ms})   // "2024-05-01T12:00:00.250Z"
template <class Clock, class Duration>
[[nodiscard]] std::string iso_utc(std::chrono::time_point<Clock, Duration> tp) {
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

/// The spelling verification compares and shows values by.
struct canonical_spelling {
    static constexpr bool quote_strings = false;
    static constexpr std::string_view null = "null";
    static constexpr std::string_view field_separator = "=";
    static constexpr std::size_t max_elements = 0;  ///< 0: every element
    static constexpr bool require_text_form = true;
};

/// The spelling of a shadow read's answer in a discrepancy record.
struct answer_spelling {
    static constexpr bool quote_strings = true;
    static constexpr std::string_view null = "(none)";
    static constexpr std::string_view field_separator = ": ";
    static constexpr std::size_t max_elements = 16;
    static constexpr bool require_text_form = false;
};

template <class>
inline constexpr bool no_text_form = false;

/// Appends the text of `value` to `out`, spelled as `Spelling` says.
template <class Spelling, class T>
void append_value_text(std::string& out, const T& value) {
    if constexpr (std::is_convertible_v<const T&, std::string_view>) {
        if constexpr (Spelling::quote_strings) out += '"';
        out += std::string_view(value);
        if constexpr (Spelling::quote_strings) out += '"';
    } else if constexpr (std::is_same_v<T, bool>) {
        out += value ? "true" : "false";
    } else if constexpr (std::is_enum_v<T>) {
        out += fmt::format("{}", static_cast<std::underlying_type_t<T>>(value));
    } else if constexpr (is_optional<T>::value) {
        if (value)
            append_value_text<Spelling>(out, *value);
        else
            out += Spelling::null;
    } else if constexpr (is_time_point<T>::value) {
        out += iso_utc(value);
    } else if constexpr (is_pair<T>::value) {
        out += '(';
        append_value_text<Spelling>(out, value.first);
        out += ", ";
        append_value_text<Spelling>(out, value.second);
        out += ')';
    } else if constexpr (spelled_range<T>) {
        // Before fmt: the text must not depend on whether <fmt/ranges.h> was included.
        out += '[';
        std::size_t n = 0;
        for (const auto& element : value) {
            if (Spelling::max_elements != 0 && n == Spelling::max_elements) {
                out += ", ...";
                break;
            }
            if (n++ != 0) out += ", ";
            append_value_text<Spelling>(out, element);
        }
        out += ']';
        if constexpr (Spelling::max_elements != 0 && std::ranges::sized_range<const T>)
            if (n == Spelling::max_elements && std::ranges::size(value) > n)
                out += fmt::format(" ({} elements)", std::ranges::size(value));
    } else if constexpr (is_reflected<T>) {
        out += '{';
        bool first = true;
        for_each_field(value, [&](std::string_view name, const auto& field) {
            if (!first) out += ", ";
            first = false;
            out += name;
            out += Spelling::field_separator;
            append_value_text<Spelling>(out, field);
        });
        out += '}';
    } else if constexpr (fmt::is_formattable<T>::value) {
        out += fmt::format("{}", value);
    } else if constexpr (Spelling::require_text_form) {
        static_assert(no_text_form<T>,
                      "projectionist: verify: a row field has a type with no text form, so its values cannot be "
                      "compared or shown; supported are arithmetic types, enums, strings, std::optional, "
                      "std::pair, ranges, std::chrono::time_point, Hana-reflected structs, and any type fmt can "
                      "format (specialize fmt::formatter for it)");
    } else {
        out += "(unformattable)";
    }
}

/// The canonical text of a value; nullopt for an empty optional (kept apart from the string
/// "null"). Equal values of different types have the same text: `int 3` and `std::int64_t 3`.
template <class T>
[[nodiscard]] std::optional<std::string> value_text(const T& value) {
    if constexpr (is_optional<T>::value) {
        if (!value) return std::nullopt;
        return value_text(*value);
    } else {
        std::string out;
        append_value_text<canonical_spelling>(out, value);
        return out;
    }
}

/// The canonical text of a value that is not an empty optional.
template <class T>
[[nodiscard]] std::string present_text(const T& value) {
    std::string out;
    append_value_text<canonical_spelling>(out, value);
    return out;
}

/// Longer answers are cut here, with "...".
inline constexpr std::size_t max_answer_length = 4096;

/// A query's answer in words, for a discrepancy record: at most `max_answer_length` bytes.
template <class T>
[[nodiscard]] std::string answer_text(const T& value) {
    std::string out;
    append_value_text<answer_spelling>(out, value);
    if (out.size() > max_answer_length) {
        out.resize(max_answer_length);
        out += "...";
    }
    return out;
}

}  // namespace projectionist::detail
