#pragma once

/// The statistics of a structural diff: one accumulator per column, typed by the row's reflected
/// field, summarizing a whole table in one pass (null count, exact distinct count, per-value row
/// counts for low-cardinality columns, min, max and sum for numbers, min and max for time points).
///
///     auto summary = detail::verification::summarize(table, "tickets_v2", 20);
///     summary.stats[2].distinct;   // distinct values of the third column

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/unordered/unordered_flat_map.hpp>

#include <projectionist/deploy/verify/report.hpp>
#include <projectionist/detail/value_text.hpp>
#include <projectionist/meta/reflection.hpp>
#include <projectionist/meta/type_traits.hpp>

namespace projectionist::detail::verification {

using detail::field;
using detail::field_count;
using detail::field_names;
using detail::field_t;
using detail::present_text;
using detail::value_text;

template <class T>
struct is_vector_field : std::false_type {};
template <class T, class A>
struct is_vector_field<std::vector<T, A>> : std::true_type {};

template <class T>
inline constexpr bool is_char_v = std::is_same_v<T, char> || std::is_same_v<T, wchar_t> || std::is_same_v<T, char8_t> ||
                                  std::is_same_v<T, char16_t> || std::is_same_v<T, char32_t>;
/// Numbers that get min, max and sum: not bool, not characters.
template <class T>
inline constexpr bool is_numeric_v = std::is_arithmetic_v<T> && !std::is_same_v<T, bool> && !is_char_v<T>;

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

template <class T>
std::string type_label() {
    if constexpr (is_optional<T>::value) {
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
    } else if constexpr (is_time_point<T>::value) {
        return fmt::format("time_point<{}>", period_label<typename T::period>());
    } else if constexpr (is_vector_field<T>::value) {
        return "vector<" + type_label<typename T::value_type>() + ">";
    } else {
        return std::string(raw_type_name<T>());
    }
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
        if constexpr (is_optional<Field>::value) {
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
        } else if constexpr (is_time_point<value_type>::value) {
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
        (std::get<I>(columns).add(field<I>(row)), ...);
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

}  // namespace projectionist::detail::verification
