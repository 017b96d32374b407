#pragma once

/// PostgreSQL's columns: how each C++ field type is stored (its SQL type, cast and text form),
/// read back, and written into the array literals of multi-row statements. Used by
/// postgres_table through detail/sql_dialect.hpp's `dialect`.

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include <projectionist/detail/pg_api.hpp>
#include <projectionist/detail/sql_dialect.hpp>
#include <projectionist/error.hpp>
#include <projectionist/meta/reflection.hpp>

namespace projectionist::detail::pg {

// ---- columns: C++ field types as PostgreSQL types, text in and out -------------------------------

inline void append_integer(std::string& out, std::int64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

inline std::int64_t parse_integer(std::string_view text) {
    std::int64_t v = 0;
    const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (r.ec != std::errc{} || r.ptr != text.data() + text.size())
        throw error(fmt::format("projectionist: postgres: '{}' is not an integer", text));
    return v;
}

template <class T>
constexpr std::string_view integer_sql_type() {
    if constexpr (sizeof(T) == 1 || (std::is_signed_v<T> && sizeof(T) == 2))
        return "smallint";
    else if constexpr (sizeof(T) == 2 || (std::is_signed_v<T> && sizeof(T) == 4))
        return "integer";
    else
        return "bigint";  // 64-bit unsigned values are stored as their int64 bit pattern, as in SQLite
}

/// How one field type maps to a column: its SQL type, whether it is written quoted in an array
/// literal (text), and its text form in both directions.
template <class T>
struct column_traits {
    static constexpr bool supported = false;
};
template <class T>
requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) struct column_traits<T> {
    static constexpr bool supported = true;
    static constexpr bool nullable = false;
    static constexpr bool quoted = false;
    static constexpr std::string_view sql_type = integer_sql_type<T>();
    static void write(std::string& out, const T& v) { append_integer(out, static_cast<std::int64_t>(v)); }
    static void read(std::string_view text, T& out) { out = static_cast<T>(parse_integer(text)); }
};
template <>
struct column_traits<bool> {
    static constexpr bool supported = true;
    static constexpr bool nullable = false;
    static constexpr bool quoted = false;
    static constexpr std::string_view sql_type = "boolean";
    static void write(std::string& out, bool v) { out += v ? 't' : 'f'; }
    static void read(std::string_view text, bool& out) { out = text == "t"; }
};
template <class T>
requires std::is_enum_v<T>
struct column_traits<T> {
    using underlying = column_traits<std::underlying_type_t<T>>;
    static constexpr bool supported = true;
    static constexpr bool nullable = false;
    static constexpr bool quoted = false;
    static constexpr std::string_view sql_type = underlying::sql_type;
    static void write(std::string& out, const T& v) {
        underlying::write(out, static_cast<std::underlying_type_t<T>>(v));
    }
    static void read(std::string_view text, T& out) {
        std::underlying_type_t<T> v{};
        underlying::read(text, v);
        out = static_cast<T>(v);
    }
};
template <class T>
requires std::is_floating_point_v<T>
struct column_traits<T> {
    static constexpr bool supported = true;
    static constexpr bool nullable = false;
    static constexpr bool quoted = false;
    static constexpr std::string_view sql_type = sizeof(T) == sizeof(float) ? "real" : "double precision";
    static void write(std::string& out, const T& v) {
        if (std::isnan(v))
            out += "NaN";
        else if (std::isinf(v))
            out += v > 0 ? "Infinity" : "-Infinity";
        else
            fmt::format_to(std::back_inserter(out), "{}", v);  // shortest text that reads back exactly
    }
    static void read(std::string_view text, T& out) {
        if (text == "NaN") {
            out = std::numeric_limits<T>::quiet_NaN();
        } else if (text == "Infinity" || text == "-Infinity") {
            out = text[0] == '-' ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
        } else {
            const auto r = std::from_chars(text.data(), text.data() + text.size(), out);
            if (r.ec != std::errc{} || r.ptr != text.data() + text.size())
                throw error(fmt::format("projectionist: postgres: '{}' is not a floating-point number", text));
        }
    }
};
template <>
struct column_traits<std::string> {
    static constexpr bool supported = true;
    static constexpr bool nullable = false;
    static constexpr bool quoted = true;
    // Byte order, as SQLite's BINARY collation: the same key order on both backends, and
    // comparisons without the locale's cost.
    static constexpr std::string_view sql_type = "text COLLATE \"C\"";
    static constexpr std::string_view cast_type = "text";
    static void write(std::string& out, const std::string& v) { out += v; }
    static void read(std::string_view text, std::string& out) { out.assign(text); }
};
template <class Clock, class Duration>
struct column_traits<std::chrono::time_point<Clock, Duration>> {
    using T = std::chrono::time_point<Clock, Duration>;
    static constexpr bool supported = true;
    static constexpr bool nullable = false;
    static constexpr bool quoted = false;
    static constexpr std::string_view sql_type = "bigint";  // ticks of Duration since the epoch, as in SQLite
    static void write(std::string& out, const T& v) {
        append_integer(out, static_cast<std::int64_t>(v.time_since_epoch().count()));
    }
    static void read(std::string_view text, T& out) {
        out = T(Duration(static_cast<typename Duration::rep>(parse_integer(text))));
    }
};
template <class T>
struct column_traits<std::optional<T>> {
    using inner = column_traits<T>;
    static constexpr bool supported = inner::supported && !inner::nullable;
    static constexpr bool nullable = true;
    static constexpr bool quoted = inner::quoted;
    static constexpr std::string_view sql_type = inner::sql_type;
};

/// The type a parameter array is cast to: the column's type without its collation.
template <class T>
constexpr std::string_view cast_type_of() {
    if constexpr (requires { column_traits<T>::cast_type; })
        return column_traits<T>::cast_type;
    else if constexpr (requires { typename column_traits<T>::inner; })
        return cast_type_of<typename T::value_type>();
    else
        return column_traits<T>::sql_type;
}

/// Appends `v` to an array literal being built (`{...}`): NULL, a bare number, or a quoted string
/// with `"` and `\` escaped.
template <class T>
void append_element(std::string& array, const T& v) {
    if constexpr (requires { typename column_traits<T>::inner; }) {
        if (!v)
            array += "NULL";
        else
            append_element(array, *v);
    } else if constexpr (column_traits<T>::quoted) {
        std::string text;
        column_traits<T>::write(text, v);
        array += '"';
        for (char c : text) {
            if (c == '"' || c == '\\') array += '\\';
            array += c;
        }
        array += '"';
    } else {
        column_traits<T>::write(array, v);
    }
}

/// The text of one parameter value (not NULL).
template <class T>
std::string parameter_text(const T& v) {
    std::string out;
    column_traits<T>::write(out, v);
    return out;
}

/// Reads a text-format column into a field.
template <class T>
void read_field(const result& r, int row, int col, T& out) {
    if constexpr (requires { typename column_traits<T>::inner; }) {
        if (r.is_null(row, col)) {
            out.reset();
        } else {
            typename T::value_type v{};
            column_traits<typename T::value_type>::read(r.text(row, col), v);
            out = std::move(v);
        }
    } else {
        if (r.is_null(row, col))
            throw error(
                fmt::format("projectionist: postgres: column {} of a read-model row is NULL, but its field "
                            "is not a std::optional",
                            col));
        column_traits<T>::read(r.text(row, col), out);
    }
}

/// Appends `v` to a binary COPY row in its column's binary form (see integer_sql_type: an
/// integer is sent at its column's width).
template <class T>
void copy_field(copy_rows& out, const T& v) {
    if constexpr (requires { typename column_traits<T>::inner; }) {
        if (!v)
            out.null();
        else
            copy_field(out, *v);
    } else if constexpr (std::is_same_v<T, bool>) {
        out.boolean(v);
    } else if constexpr (std::is_enum_v<T>) {
        copy_field(out, static_cast<std::underlying_type_t<T>>(v));
    } else if constexpr (std::is_integral_v<T>) {
        if constexpr (integer_sql_type<T>() == "smallint")
            out.int2(static_cast<std::int16_t>(v));
        else if constexpr (integer_sql_type<T>() == "integer")
            out.int4(static_cast<std::int32_t>(v));
        else
            out.int8(static_cast<std::int64_t>(v));
    } else if constexpr (std::is_floating_point_v<T>) {
        if constexpr (sizeof(T) == sizeof(float))
            out.float4(static_cast<float>(v));
        else
            out.float8(static_cast<double>(v));
    } else if constexpr (std::is_same_v<T, std::string>) {
        out.bytes(v);
    } else {
        out.int8(static_cast<std::int64_t>(v.time_since_epoch().count()));  // a time point
    }
}

/// Appends a row to a binary COPY: every field, in declaration order.
template <class Row>
void copy_row(copy_rows& out, const Row& row) {
    out.row(static_cast<std::int16_t>(field_count<Row>));
    for_each_field(row, [&](std::string_view, const auto& field) { copy_field(out, field); });
}

/// PostgreSQL's column types and key spelling for detail/sql_dialect.hpp.
struct dialect {
    template <class Field>
    using traits = column_traits<Field>;
    static constexpr std::string_view primary_key = "PRIMARY KEY (";
};

/// Reads a text-format result row into a Row.
template <class Row>
Row read_row(const result& r, int row) {
    Row out{};
    int c = 0;
    for_each_field(out, [&](std::string_view, auto& field) { read_field(r, row, c++, field); });
    return out;
}

}  // namespace projectionist::detail::pg
