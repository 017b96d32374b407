#pragma once

#include <algorithm>
#include <cstddef>
#include <string_view>

namespace projectionist {

/// A string usable as a template argument: `projection<"tickets", 2, ...>`.
///
/// Structural (all members public) so that it can be a non-type template parameter; the
/// deduction guide drops the terminating null, so `fixed_string{"abc"}.size() == 3`.
///
///     static_assert(fixed_string{"tickets"}.view() == "tickets");
template <std::size_t N>
struct fixed_string {
    char data[N + 1]{};

    constexpr fixed_string(const char (&text)[N + 1]) noexcept { std::copy_n(text, N + 1, data); }
    /// From a view of exactly N characters (for names computed at compile time).
    constexpr explicit fixed_string(std::string_view text) noexcept { std::copy_n(text.data(), N, data); }

    [[nodiscard]] static constexpr std::size_t size() noexcept { return N; }
    [[nodiscard]] constexpr std::string_view view() const noexcept { return {data, N}; }
    constexpr operator std::string_view() const noexcept { return view(); }
};

template <std::size_t N>
fixed_string(const char (&)[N]) -> fixed_string<N - 1>;

}  // namespace projectionist
