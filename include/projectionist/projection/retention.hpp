#pragma once

/// A version's retention day, before which its delete is refused unless forced: how it is
/// spelled ("YYYY-MM-DD", a day of the calendar) and the one a projection declares.
///
///     struct tickets_v1 : projectionist::projection<"tickets", 1, ticket_stream> {
///         static constexpr std::string_view retain_until = "2027-01-31";
///         ...
///     };
///     static_assert(projectionist::detail::declared_retention<tickets_v1>() == "2027-01-31");
///     static_assert(!projectionist::detail::is_day("31-01-2027"));

#include <chrono>
#include <cstddef>
#include <string_view>

namespace projectionist::detail {

/// Whether `date` is a valid day spelled "YYYY-MM-DD".
constexpr bool is_day(std::string_view date) {
    if (date.size() != 10 || date[4] != '-' || date[7] != '-') return false;
    int parts[3]{};
    std::size_t at = 0;
    for (int i = 0; i < 3; ++i) {
        const std::size_t len = i == 0 ? 4 : 2;
        for (std::size_t k = 0; k < len; ++k) {
            const char c = date[at + k];
            if (c < '0' || c > '9') return false;
            parts[i] = parts[i] * 10 + (c - '0');
        }
        at += len + 1;
    }
    return std::chrono::year_month_day{std::chrono::year{parts[0]}, std::chrono::month{static_cast<unsigned>(parts[1])},
                                       std::chrono::day{static_cast<unsigned>(parts[2])}}
        .ok();
}

/// The retention day a projection declares (`static constexpr std::string_view retain_until`),
/// or empty: none.
template <class P>
constexpr std::string_view declared_retention() noexcept {
    if constexpr (requires { std::string_view(P::retain_until); })
        return std::string_view(P::retain_until);
    else
        return {};
}

}  // namespace projectionist::detail
