#pragma once

#include <array>
#include <cstddef>
#include <string_view>

#include <projectionist/meta/fixed_string.hpp>

namespace projectionist {

/// The longest name a table, and so a versioned projection name, may have: PostgreSQL
/// silently truncates identifiers past 63 bytes, which would make two versions collide.
inline constexpr std::size_t max_identifier_length = 63;

namespace detail {

constexpr bool is_lower(char c) noexcept {
    return c >= 'a' && c <= 'z';
}
constexpr bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

/// `[a-z][a-z0-9_]*`: the rule for projection names, table suffixes and stream names. Such a
/// name never needs escaping inside a quoted SQL identifier, so it cannot carry an injection.
constexpr bool starts_with_lowercase_letter(std::string_view s) noexcept {
    return !s.empty() && is_lower(s.front());
}
constexpr bool has_only_identifier_chars(std::string_view s) noexcept {
    for (char c : s)
        if (!is_lower(c) && !is_digit(c) && c != '_') return false;
    return true;
}
constexpr bool is_identifier(std::string_view s) noexcept {
    return starts_with_lowercase_letter(s) && has_only_identifier_chars(s);
}

/// Stored event names are a little wider than identifiers, `[a-z][a-z0-9_.-]*`, so that the
/// usual dotted spelling ("ticket.registered") works; they are stored as data, never as SQL.
constexpr bool has_only_event_name_chars(std::string_view s) noexcept {
    for (char c : s)
        if (!is_lower(c) && !is_digit(c) && c != '_' && c != '.' && c != '-') return false;
    return true;
}
constexpr bool is_event_name(std::string_view s) noexcept {
    return starts_with_lowercase_letter(s) && has_only_event_name_chars(s) && s.size() <= 128;
}

constexpr std::size_t decimal_digits(unsigned v) noexcept {
    std::size_t n = 1;
    while (v >= 10) {
        v /= 10;
        ++n;
    }
    return n;
}

/// Storage for a name computed at compile time; `view` points into a static constexpr array,
/// so the result is usable in constant expressions (`static_assert(name_of<t<2>> == "t_v2")`).
template <std::size_t N>
struct static_name {
    std::array<char, N + 1> chars{};
    [[nodiscard]] constexpr std::string_view view() const noexcept { return {chars.data(), N}; }
};

/// "<base>_v<version>", or "<base>_v<version>_<suffix>" for a projection's extra tables.
template <fixed_string Base, unsigned Version, fixed_string Suffix = "">
struct versioned_name {
    static constexpr std::size_t size =
        Base.size() + 2 + decimal_digits(Version) + (Suffix.size() == 0 ? 0 : Suffix.size() + 1);
    static constexpr static_name<size> storage = [] {
        static_name<size> out;
        std::size_t i = 0;
        for (char c : Base.view()) out.chars[i++] = c;
        out.chars[i++] = '_';
        out.chars[i++] = 'v';
        unsigned v = Version;
        const std::size_t digits = decimal_digits(Version);
        for (std::size_t d = digits; d > 0; --d) {
            out.chars[i + d - 1] = static_cast<char>('0' + v % 10);
            v /= 10;
        }
        i += digits;
        if (Suffix.size() != 0) {
            out.chars[i++] = '_';
            for (char c : Suffix.view()) out.chars[i++] = c;
        }
        return out;
    }();
    static constexpr std::string_view value = storage.view();
};

}  // namespace detail
}  // namespace projectionist
