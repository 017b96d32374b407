#pragma once

/// The life of one projection version as the deployment moves it (declared, initialized, ...,
/// deleted), and its text as the catalog stores it.
///
///     static_assert(projectionist::to_string(projectionist::projection_state::serving) == "serving");

#include <cstdint>
#include <optional>
#include <string_view>

#include <projectionist/detail/enum_text.hpp>

namespace projectionist {

/// The life of one projection version, persisted in the catalog so that a command-line process
/// and the application agree on it (see the README's deployment section). Whether a version may
/// emit events downstream is not a state but a flag beside it (`live`, in the catalog and in
/// `runner_status`): a caught-up version and a serving one can each be live or not.
/// `stopped` is the one state the catalog never holds: a runner's status reports it after an
/// error stopped that runner, while the catalog keeps the version's place in the deployment
/// (`runner_status::catalog_state`).
enum class projection_state : std::uint8_t {
    declared,     ///< deployed in code; with manual kick-off, dormant until init
    initialized,  ///< tables created, nothing processed yet (or reset)
    backfilling,  ///< replaying history
    caught_up,    ///< reached the head; follows new events
    serving,      ///< receives queries
    retired,      ///< no longer serves; kept for rollback
    deleted,      ///< tables dropped
    stopped,      ///< status only: this runner stopped after an error (resume, reconnect or reset)
};

template <>
inline constexpr auto detail::enum_names_of<projection_state> = detail::enum_names<projection_state::stopped>{
    {"declared", "initialized", "backfilling", "caught_up", "serving", "retired", "deleted", "stopped"}, "unknown"};

namespace detail {
/// Whether a version in state `s` has caught up with the log, and so may serve queries: caught
/// up, serving, or retired (following the log for a rollback).
[[nodiscard]] constexpr bool caught_up_or_later(projection_state s) noexcept {
    return s == projection_state::caught_up || s == projection_state::serving || s == projection_state::retired;
}
}  // namespace detail

/// The state a catalog stores as `s`. "live", which catalogs written when being live was also a
/// state still hold, reads as `caught_up` (the row's live flag says it emits). Never `stopped`,
/// which no catalog row holds.
[[nodiscard]] constexpr std::optional<projection_state> projection_state_from_string(std::string_view s) noexcept {
    if (s == "live") return projection_state::caught_up;
    const auto state = detail::enum_names_of<projection_state>.parse(s);
    return state == projection_state::stopped ? std::nullopt : state;
}

}  // namespace projectionist
