#pragma once

/// The life of one projection version as the deployment moves it (declared, initialized, ...,
/// deleted), and its text as the catalog stores it.
///
///     static_assert(projectionist::to_string(projectionist::projection_state::live) == "live");

#include <cstdint>
#include <optional>
#include <string_view>

namespace projectionist {

/// The life of one projection version, persisted in the catalog so that a command-line process
/// and the application agree on it (see the README's deployment section).
enum class projection_state : std::uint8_t {
    declared,     ///< deployed in code; with manual kick-off, dormant until init
    initialized,  ///< tables created, nothing processed yet (or reset)
    backfilling,  ///< replaying history
    caught_up,    ///< reached the head; follows new events
    live,         ///< may emit events downstream
    serving,      ///< receives queries
    retired,      ///< no longer serves; kept for rollback
    deleted,      ///< tables dropped
};

[[nodiscard]] constexpr std::string_view to_string(projection_state s) noexcept {
    switch (s) {
        case projection_state::declared: return "declared";
        case projection_state::initialized: return "initialized";
        case projection_state::backfilling: return "backfilling";
        case projection_state::caught_up: return "caught_up";
        case projection_state::live: return "live";
        case projection_state::serving: return "serving";
        case projection_state::retired: return "retired";
        case projection_state::deleted: return "deleted";
    }
    return "unknown";
}

[[nodiscard]] constexpr std::optional<projection_state> projection_state_from_string(std::string_view s) noexcept {
    for (auto st : {projection_state::declared, projection_state::initialized, projection_state::backfilling,
                    projection_state::caught_up, projection_state::live, projection_state::serving,
                    projection_state::retired, projection_state::deleted})
        if (to_string(st) == s) return st;
    return std::nullopt;
}

}  // namespace projectionist
