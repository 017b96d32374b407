#pragma once
// A range of aggregate numbers: which aggregates' events a store's `read_aggregates` returns
// (has_aggregate_range_read in storage/abilities.hpp). A store numbers aggregates densely from 0,
// in the order their first events were appended.

#include <cstdint>
#include <limits>

namespace projectionist {

namespace detail {
/// `value` as a signed 64-bit SQL parameter: values past the largest one become the largest.
[[nodiscard]] constexpr std::int64_t sql_int64(std::uint64_t value) noexcept {
    constexpr auto largest = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(value > largest ? largest : value);
}
}  // namespace detail

/// The aggregate numbers `first` (included) to `last` (excluded); the default is every number.
struct aggregate_numbers {
    std::uint64_t first = 0;
    std::uint64_t last = std::numeric_limits<std::uint64_t>::max();

    [[nodiscard]] constexpr bool whole() const noexcept {
        return first == 0 && last == std::numeric_limits<std::uint64_t>::max();
    }
    [[nodiscard]] constexpr bool contains(std::uint64_t number) const noexcept {
        return number >= first && number < last;
    }
    friend constexpr bool operator==(const aggregate_numbers&, const aggregate_numbers&) = default;
};

}  // namespace projectionist
