#pragma once

/// The names of an enumeration whose enumerators count from 0, in one table declared beside the
/// enum: `to_string` and parsing read that one table, so that the text one writes is the text
/// the other reads, and an enum gains its text with one declaration and no switch.
///
///     enum class colour { red, green };
///     template <>
///     inline constexpr auto detail::enum_names_of<colour> = detail::enum_names<colour::green>{{"red", "green"}, "?"};
///
///     to_string(colour::green)                       // "green"
///     detail::enum_names_of<colour>.parse("red")     // colour::red
///
/// The table is sized by the enum's last enumerator, and a list of another length does not
/// compile: an enumerator added after the last must move the table's bound, and then its name.

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>
#include <type_traits>

namespace projectionist {

namespace detail {

/// The names of the enumerators of `decltype(Last)`, from 0 to `Last`, and the text of a value
/// outside them (a number cast to the enum).
template <auto Last>
struct enum_names {
    using enum_type = decltype(Last);
    static_assert(std::is_enum_v<enum_type>, "projectionist: enum_names takes the last enumerator of an enum");
    static constexpr std::size_t count = static_cast<std::size_t>(Last) + 1;

    std::array<std::string_view, count> names;
    std::string_view unknown;

    template <std::size_t N>
    requires(N == count) consteval enum_names(const std::string_view (&list)[N], std::string_view unknown_text)
        : names{}, unknown(unknown_text) {
        for (std::size_t i = 0; i < N; ++i) names[i] = list[i];
    }

    [[nodiscard]] constexpr std::string_view text(enum_type e) const noexcept {
        const auto i = static_cast<std::size_t>(e);
        return i < count ? names[i] : unknown;
    }

    /// The enumerator named `name`, or nullopt.
    [[nodiscard]] constexpr std::optional<enum_type> parse(std::string_view name) const noexcept {
        for (std::size_t i = 0; i < count; ++i)
            if (names[i] == name) return static_cast<enum_type>(i);
        return std::nullopt;
    }
};

/// The names of `Enum`: specialized beside each enum that has them.
template <class Enum>
inline constexpr auto enum_names_of = nullptr;

template <class Enum>
concept named_enum = std::is_enum_v<Enum> && !std::is_null_pointer_v<std::remove_cv_t<decltype(enum_names_of<Enum>)>>;

}  // namespace detail

/// The name of an enumerator of an enum with a names table (`detail::enum_names_of`).
template <detail::named_enum Enum>
[[nodiscard]] constexpr std::string_view to_string(Enum e) noexcept {
    return detail::enum_names_of<Enum>.text(e);
}

}  // namespace projectionist
