#pragma once

#include <cstdint>
#include <limits>

namespace projectionist {

/// The version a writer expects an aggregate to be at before its append (optimistic
/// concurrency). A plain number converts: `0` means "the aggregate has no events yet".
///
///     store.append(ticket_stream{}, "t-1", 0, ticket_registered{...});      // create
///     store.append(ticket_stream{}, "t-1", 1, ticket_closed{...});          // then update
///     store.append(ticket_stream{}, "t-1", expected_version::any(), ...);  // no check
class expected_version {
public:
    constexpr expected_version(std::uint64_t version) noexcept : value_(version) {}

    [[nodiscard]] static constexpr expected_version any() noexcept {
        return expected_version(std::numeric_limits<std::uint64_t>::max());
    }
    [[nodiscard]] static constexpr expected_version no_events() noexcept { return expected_version(0); }

    [[nodiscard]] constexpr bool is_any() const noexcept { return value_ == std::numeric_limits<std::uint64_t>::max(); }
    [[nodiscard]] constexpr std::uint64_t value() const noexcept { return value_; }
    [[nodiscard]] constexpr bool accepts(std::uint64_t actual) const noexcept { return is_any() || value_ == actual; }

private:
    std::uint64_t value_;
};

/// What an append wrote: the global positions of its first and last event and the aggregate's
/// version after it.
struct append_result {
    std::uint64_t first_position = 0;
    std::uint64_t last_position = 0;
    std::uint64_t version = 0;
};

}  // namespace projectionist
