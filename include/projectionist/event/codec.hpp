#pragma once

#include <array>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include <projectionist/error.hpp>
#include <projectionist/meta/reflection.hpp>
#include <projectionist/meta/type_list.hpp>
#include <projectionist/meta/type_traits.hpp>

namespace projectionist {

/// A payload that cannot be decoded (truncated, corrupt, of an unsupported schema version) or
/// a value that cannot be encoded. The message says what was expected and where.
class codec_error : public error {
public:
    using error::error;
};

namespace detail {

template <class T>
concept reflected_struct = std::is_class_v<T> && is_reflected<T>;

/// Appends fixed-width little-endian integers and raw bytes to a string.
class byte_writer {
public:
    explicit byte_writer(std::string& out) noexcept : out_(&out) {}

    template <class Int>
    void integer(Int v) {
        using U = std::make_unsigned_t<Int>;
        auto u = static_cast<U>(v);
        char bytes[sizeof(U)];
        for (std::size_t i = 0; i < sizeof(U); ++i) {
            bytes[i] = static_cast<char>(u & 0xFFu);
            if constexpr (sizeof(U) > 1) u = static_cast<U>(u >> 8);
        }
        out_->append(bytes, sizeof(U));
    }
    void raw(const char* data, std::size_t size) { out_->append(data, size); }

private:
    std::string* out_;
};

/// Reads what byte_writer wrote; every read is bounds-checked.
class byte_reader {
public:
    explicit byte_reader(std::string_view in) noexcept : in_(in) {}

    template <class Int>
    Int integer(std::string_view field) {
        using U = std::make_unsigned_t<Int>;
        need(sizeof(U), field);
        U u = 0;
        for (std::size_t i = sizeof(U); i > 0; --i) {
            if constexpr (sizeof(U) > 1) u = static_cast<U>(u << 8);
            u = static_cast<U>(u | static_cast<unsigned char>(in_[pos_ + i - 1]));
        }
        pos_ += sizeof(U);
        return static_cast<Int>(u);
    }
    std::string_view raw(std::size_t size, std::string_view field) {
        need(size, field);
        std::string_view out = in_.substr(pos_, size);
        pos_ += size;
        return out;
    }
    [[nodiscard]] std::size_t remaining() const noexcept { return in_.size() - pos_; }
    [[nodiscard]] std::size_t offset() const noexcept { return pos_; }

private:
    void need(std::size_t n, std::string_view field) const {
        if (in_.size() - pos_ < n)
            throw codec_error(
                fmt::format("truncated payload: field '{}' needs {} bytes at offset {}, but only {} "
                            "remain of {}",
                            field, n, pos_, in_.size() - pos_, in_.size()));
    }

    std::string_view in_;
    std::size_t pos_ = 0;
};

template <class T>
void encode_binary(const T& value, byte_writer& w);
template <class T>
void decode_binary(T& value, byte_reader& r, std::string_view field);

template <class T>
consteval bool binary_supported() {
    return std::is_arithmetic_v<T> || std::is_enum_v<T> || std::is_same_v<T, std::string> || is_optional<T>::value ||
           is_vector<T>::value || is_time_point<T>::value || reflected_struct<T>;
}

template <class T>
void encode_binary(const T& value, byte_writer& w) {
    static_assert(binary_supported<T>(),
                  "projectionist: binary_codec: unsupported field type; supported are integers, floating point, "
                  "bool, enums, std::string, std::optional<T>, std::vector<T>, std::chrono::time_point and nested "
                  "Hana-reflected structs");
    if constexpr (std::is_same_v<T, bool>) {
        w.integer<std::uint8_t>(value ? 1 : 0);
    } else if constexpr (std::is_enum_v<T>) {
        w.integer(static_cast<std::underlying_type_t<T>>(value));
    } else if constexpr (std::is_integral_v<T>) {
        w.integer(value);
    } else if constexpr (std::is_floating_point_v<T>) {
        static_assert(sizeof(T) == 4 || sizeof(T) == 8, "projectionist: binary_codec: long double is not supported");
        using bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
        w.integer(std::bit_cast<bits>(value));
    } else if constexpr (std::is_same_v<T, std::string>) {
        if (value.size() > UINT32_MAX) throw codec_error("projectionist: binary_codec: a string is longer than 4 GiB");
        w.integer(static_cast<std::uint32_t>(value.size()));
        w.raw(value.data(), value.size());
    } else if constexpr (is_optional<T>::value) {
        w.integer<std::uint8_t>(value.has_value() ? 1 : 0);
        if (value) encode_binary(*value, w);
    } else if constexpr (is_vector<T>::value) {
        if (value.size() > UINT32_MAX) throw codec_error("projectionist: binary_codec: a vector is too long");
        w.integer(static_cast<std::uint32_t>(value.size()));
        for (const auto& e : value) encode_binary(e, w);
    } else if constexpr (is_time_point<T>::value) {
        w.integer(static_cast<std::int64_t>(value.time_since_epoch().count()));
    } else {
        for_each_field(value, [&](std::string_view, const auto& field) { encode_binary(field, w); });
    }
}

template <class T>
void decode_binary(T& value, byte_reader& r, std::string_view field) {
    if constexpr (std::is_same_v<T, bool>) {
        const auto b = r.integer<std::uint8_t>(field);
        if (b > 1) throw codec_error(fmt::format("corrupt payload: field '{}' is a bool stored as {}", field, b));
        value = b == 1;
    } else if constexpr (std::is_enum_v<T>) {
        value = static_cast<T>(r.integer<std::underlying_type_t<T>>(field));
    } else if constexpr (std::is_integral_v<T>) {
        value = r.integer<T>(field);
    } else if constexpr (std::is_floating_point_v<T>) {
        using bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
        value = std::bit_cast<T>(r.integer<bits>(field));
    } else if constexpr (std::is_same_v<T, std::string>) {
        const auto n = r.integer<std::uint32_t>(field);
        value.assign(r.raw(n, field));
    } else if constexpr (is_optional<T>::value) {
        const auto present = r.integer<std::uint8_t>(field);
        if (present > 1)
            throw codec_error(fmt::format("corrupt payload: field '{}' has optional flag {}", field, present));
        if (present == 0) {
            value.reset();
        } else {
            typename T::value_type inner{};
            decode_binary(inner, r, field);
            value = std::move(inner);
        }
    } else if constexpr (is_vector<T>::value) {
        const auto n = r.integer<std::uint32_t>(field);
        // Every element takes at least one byte: a count beyond the rest is corruption, and
        // checking it first keeps a corrupt count from reserving gigabytes.
        if (n > r.remaining())
            throw codec_error(fmt::format("corrupt payload: field '{}' claims {} elements but only {} bytes remain",
                                          field, n, r.remaining()));
        value.clear();
        value.reserve(n);
        for (std::uint32_t i = 0; i < n; ++i) {
            typename T::value_type e{};
            decode_binary(e, r, field);
            value.push_back(std::move(e));
        }
    } else if constexpr (is_time_point<T>::value) {
        value = T(typename T::duration(r.integer<std::int64_t>(field)));
    } else {
        for_each_field(value, [&](std::string_view name, auto& member) { decode_binary(member, r, name); });
    }
}

/// `Codec::encode` of each event, in order: the payloads of one append.
///
///     auto payloads = detail::encode_each<binary_codec>(opened{"t-1"}, closed{"t-1"});   // two strings
template <class Codec, class... Events>
[[nodiscard]] std::array<std::string, sizeof...(Events)> encode_each(const Events&... events) {
    std::array<std::string, sizeof...(Events)> payloads;
    std::size_t i = 0;
    ((Codec::encode(events, payloads[i++])), ...);
    return payloads;
}

}  // namespace detail

/// The default codec: a compact binary layout generated from the struct's Hana reflection,
/// fields in declaration order, fixed-width little-endian numbers, length-prefixed strings.
/// Decoding is bounds-checked: a truncated or corrupt payload is a codec_error, never a crash.
struct binary_codec {
    static constexpr std::string_view name = "binary";
    static constexpr bool text = false;

    template <class T>
    static void encode(const T& value, std::string& out) {
        detail::byte_writer w(out);
        detail::encode_binary(value, w);
    }

    template <class T>
    static T decode(std::string_view payload) {
        T value{};
        detail::byte_reader r(payload);
        detail::decode_binary(value, r, "(payload)");
        if (r.remaining() != 0)
            throw codec_error(
                fmt::format("corrupt payload: {} unexpected bytes after the last field (payload of {} "
                            "bytes)",
                            r.remaining(), payload.size()));
        return value;
    }
};

}  // namespace projectionist
