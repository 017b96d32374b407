#pragma once

#include <charconv>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fmt/format.h>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include <projectionist/event/codec.hpp>
#include <projectionist/meta/reflection.hpp>
#include <projectionist/meta/type_traits.hpp>

namespace projectionist {

namespace detail {

template <class T>
boost::json::value to_json(const T& value) {
    static_assert(binary_supported<T>(),
                  "projectionist: json_codec: unsupported field type; supported are integers, floating point, bool, "
                  "enums, std::string, std::optional<T>, std::vector<T>, std::chrono::time_point and nested "
                  "Hana-reflected structs");
    if constexpr (std::is_same_v<T, bool>) {
        return boost::json::value(value);
    } else if constexpr (std::is_enum_v<T>) {
        return to_json(static_cast<std::underlying_type_t<T>>(value));
    } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
        return boost::json::value(static_cast<std::int64_t>(value));
    } else if constexpr (std::is_integral_v<T>) {
        return boost::json::value(static_cast<std::uint64_t>(value));
    } else if constexpr (std::is_floating_point_v<T>) {
        return boost::json::value(static_cast<double>(value));
    } else if constexpr (std::is_same_v<T, std::string>) {
        return boost::json::value(boost::json::string_view(value.data(), value.size()));
    } else if constexpr (is_optional<T>::value) {
        return value ? to_json(*value) : boost::json::value(nullptr);
    } else if constexpr (is_vector<T>::value) {
        boost::json::array a;
        a.reserve(value.size());
        for (const auto& e : value) a.push_back(to_json(e));
        return a;
    } else if constexpr (is_time_point<T>::value) {
        return boost::json::value(static_cast<std::int64_t>(value.time_since_epoch().count()));
    } else {
        boost::json::object o;
        for_each_field(value, [&](std::string_view name, const auto& field) { o.emplace(name, to_json(field)); });
        return o;
    }
}

[[noreturn]] inline void json_type_error(std::string_view field, std::string_view expected,
                                         const boost::json::value& v) {
    std::string_view got = v.is_null()     ? "null"
                           : v.is_bool()   ? "a bool"
                           : v.is_number() ? "a number"
                           : v.is_string() ? "a string"
                           : v.is_array()  ? "an array"
                                           : "an object";
    throw codec_error(fmt::format("corrupt payload: field '{}' should be {}, but is {}", field, expected, got));
}

template <class Int>
Int json_integer(const boost::json::value& v, std::string_view field) {
    if (v.is_int64()) {
        const std::int64_t x = v.get_int64();
        if constexpr (std::is_signed_v<Int>) {
            if (x >= std::numeric_limits<Int>::min() && x <= std::numeric_limits<Int>::max())
                return static_cast<Int>(x);
        } else {
            if (x >= 0 && static_cast<std::uint64_t>(x) <= std::numeric_limits<Int>::max()) return static_cast<Int>(x);
        }
    } else if (v.is_uint64()) {
        const std::uint64_t x = v.get_uint64();
        if (x <= static_cast<std::uint64_t>(std::numeric_limits<Int>::max())) return static_cast<Int>(x);
    } else {
        json_type_error(field, "an integer", v);
    }
    throw codec_error(fmt::format("corrupt payload: field '{}' is out of range for its type", field));
}

template <class T>
void from_json(T& out, const boost::json::value& v, std::string_view field) {
    if constexpr (std::is_same_v<T, bool>) {
        if (!v.is_bool()) json_type_error(field, "a bool", v);
        out = v.get_bool();
    } else if constexpr (std::is_enum_v<T>) {
        out = static_cast<T>(json_integer<std::underlying_type_t<T>>(v, field));
    } else if constexpr (std::is_integral_v<T>) {
        out = json_integer<T>(v, field);
    } else if constexpr (std::is_floating_point_v<T>) {
        if (!v.is_number()) json_type_error(field, "a number", v);
        out = static_cast<T>(v.to_number<double>());
    } else if constexpr (std::is_same_v<T, std::string>) {
        if (!v.is_string()) json_type_error(field, "a string", v);
        out.assign(v.get_string().data(), v.get_string().size());
    } else if constexpr (is_optional<T>::value) {
        if (v.is_null()) {
            out.reset();
        } else {
            typename T::value_type inner{};
            from_json(inner, v, field);
            out = std::move(inner);
        }
    } else if constexpr (is_vector<T>::value) {
        if (!v.is_array()) json_type_error(field, "an array", v);
        out.clear();
        for (const auto& e : v.get_array()) {
            typename T::value_type x{};
            from_json(x, e, field);
            out.push_back(std::move(x));
        }
    } else if constexpr (is_time_point<T>::value) {
        out = T(typename T::duration(json_integer<std::int64_t>(v, field)));
    } else {
        if (!v.is_object()) json_type_error(field, "an object", v);
        const auto& o = v.get_object();
        for_each_field(out, [&](std::string_view name, auto& target) {
            if (const auto* found = o.if_contains(name)) {
                from_json(target, *found, name);
            } else if constexpr (!is_optional<std::remove_cvref_t<decltype(target)>>::value) {
                throw codec_error(fmt::format("corrupt payload: field '{}' is missing", name));
            }
        });
    }
}

/// Builds a boost::json::value as Boost.JSON's own parser does, except for floating-point
/// numbers: their text is read with std::from_chars, which rounds correctly. Boost.JSON 1.81's
/// own conversion can be an ulp off (-1.2345678901234567e-300) and turns a long spelling of a
/// large double into infinity: PostgreSQL's jsonb prints 1.7976931348623157e308 as its 309
/// digits. Reading every number exactly keeps a stored double the double that was appended.
class exact_number_handler {
public:
    static constexpr std::size_t max_object_size = boost::json::object::max_size();
    static constexpr std::size_t max_array_size = boost::json::array::max_size();
    static constexpr std::size_t max_key_size = boost::json::string::max_size();
    static constexpr std::size_t max_string_size = boost::json::string::max_size();

    exact_number_handler() { stack_.reset(); }

    [[nodiscard]] boost::json::value release() { return stack_.release(); }

    bool on_document_begin(boost::json::error_code&) { return true; }
    bool on_document_end(boost::json::error_code&) { return true; }
    bool on_array_begin(boost::json::error_code&) { return true; }
    bool on_array_end(std::size_t n, boost::json::error_code&) {
        stack_.push_array(n);
        return true;
    }
    bool on_object_begin(boost::json::error_code&) { return true; }
    bool on_object_end(std::size_t n, boost::json::error_code&) {
        stack_.push_object(n);
        return true;
    }
    bool on_string_part(boost::json::string_view s, std::size_t, boost::json::error_code&) {
        stack_.push_chars(s);
        return true;
    }
    bool on_string(boost::json::string_view s, std::size_t, boost::json::error_code&) {
        stack_.push_string(s);
        return true;
    }
    bool on_key_part(boost::json::string_view s, std::size_t, boost::json::error_code&) {
        stack_.push_chars(s);
        return true;
    }
    bool on_key(boost::json::string_view s, std::size_t, boost::json::error_code&) {
        stack_.push_key(s);
        return true;
    }
    bool on_number_part(boost::json::string_view s, boost::json::error_code&) {
        number_.append(s.data(), s.size());
        return true;
    }
    bool on_int64(std::int64_t i, boost::json::string_view, boost::json::error_code&) {
        number_.clear();
        stack_.push_int64(i);
        return true;
    }
    bool on_uint64(std::uint64_t u, boost::json::string_view, boost::json::error_code&) {
        number_.clear();
        stack_.push_uint64(u);
        return true;
    }
    bool on_double(double d, boost::json::string_view s, boost::json::error_code&) {
        number_.append(s.data(), s.size());
        double exact = 0;
        const auto [end, ec] = std::from_chars(number_.data(), number_.data() + number_.size(), exact);
        if (ec == std::errc{} && end == number_.data() + number_.size()) d = exact;
        number_.clear();
        stack_.push_double(d);
        return true;
    }
    bool on_bool(bool b, boost::json::error_code&) {
        stack_.push_bool(b);
        return true;
    }
    bool on_null(boost::json::error_code&) {
        stack_.push_null();
        return true;
    }
    bool on_comment_part(boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_comment(boost::json::string_view, boost::json::error_code&) { return true; }

private:
    boost::json::value_stack stack_;
    std::string number_;
};

/// Parses one JSON document, numbers read exactly (exact_number_handler).
inline boost::json::value parse_exact(std::string_view text, const boost::json::parse_options& options,
                                      boost::json::error_code& ec) {
    boost::json::basic_parser<exact_number_handler> parser(options);
    const std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
    if (ec) return nullptr;
    if (used != text.size()) {
        ec = boost::json::error::extra_data;
        return nullptr;
    }
    return parser.handler().release();
}

}  // namespace detail

/// A readable codec: one JSON object per event, keys from the struct's Hana reflection, so that
/// `sqlite3 app.db "select type, payload from events"` shows the data. Unknown keys are ignored
/// and a missing std::optional field reads as empty, so adding optional fields stays compatible.
/// Needs Boost.JSON's library (`projectionist::sqlite` links it).
struct json_codec {
    static constexpr std::string_view name = "json";
    static constexpr bool text = true;

    template <class T>
    static void encode(const T& value, std::string& out) {
        out += boost::json::serialize(detail::to_json(value));
    }

    template <class T>
    static T decode(std::string_view payload) {
        boost::json::error_code ec;
        // encode writes a std::string's bytes as they are (Boost.JSON does not check UTF-8 when
        // serializing), so decode must accept them too: otherwise an event with non-UTF-8 text
        // could be appended but never read back.
        boost::json::parse_options options;
        options.allow_invalid_utf8 = true;
        boost::json::value v = detail::parse_exact(payload, options, ec);
        if (ec) throw codec_error(fmt::format("corrupt payload: not valid JSON ({})", ec.message()));
        T out{};
        detail::from_json(out, v, "(payload)");
        return out;
    }
};

}  // namespace projectionist
