#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <projectionist/storage/catalog.hpp>

namespace projectionist {

/// A snapshot of one runner, safe to take from any thread.
struct runner_status {
    std::string name;  ///< versioned name
    projection_state state = projection_state::declared;
    bool live = false;
    bool dormant = false;  ///< manual kick-off and not initialized: nothing is processed
    std::string_view partitioning;
    std::string_view mode = "batch";         ///< "bulk" while a bulk backfill applies or flushes, else "batch"
    std::uint64_t bulk_flushes = 0;          ///< bulk mode: flushes committed by this runner
    std::uint64_t bulk_rows_flushed = 0;     ///< bulk mode: rows written by those flushes
    std::uint64_t position = 0;              ///< global: last applied position; per-aggregate: scan position
    std::uint64_t head = 0;                  ///< the store's head when the snapshot was taken
    std::uint64_t lag = 0;                   ///< head - position
    std::uint64_t aggregates_tracked = 0;    ///< per-aggregate: aggregates with a position
    std::uint64_t events_applied = 0;        ///< handlers run by this runner
    std::uint64_t events_skipped = 0;        ///< per-aggregate: events already applied, not applied again
    std::uint64_t events_dead_lettered = 0;  ///< skip_to_dead_letter: events recorded as dead letters
    std::uint64_t parked_aggregates = 0;     ///< per-aggregate with skip_to_dead_letter: aggregates stopped
    double events_per_second = 0;            ///< applied per second over the last catch-up or backfill
    std::uint64_t emitted = 0;               ///< emitted events appended to the store
    std::uint64_t dropped = 0;               ///< emitted events dropped by the emission policy
    std::optional<std::string> error;        ///< why the projection stopped, if it did
    std::string note;                        ///< what the runner is waiting for, in words
};

}  // namespace projectionist
