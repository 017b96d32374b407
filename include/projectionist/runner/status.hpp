#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <projectionist/detail/enum_text.hpp>
#include <projectionist/storage/catalog.hpp>

namespace projectionist {

/// What went wrong, as the runner tells failures apart: the `kind` label of
/// `projectionist_errors_total`.
enum class error_kind : std::uint8_t {
    handler,     ///< an event failed (its handler threw, or it could not be read): dead-lettered, or the runner stopped
    storage,     ///< the database refused or failed a read, write or commit (read-only, full, I/O, locked)
    connection,  ///< the connection to the database was lost: the runner stopped, a reconnect may cure it
    conflict,    ///< another runner of the version moved the checkpoint first: the batch was read again from there
    definition,  ///< the catalog records another definition (fingerprint) of the version: this code is refused
    deleted,     ///< another process deleted the version under the runner: it stopped, writing nothing
    fenced,      ///< a worker's lease on the partition was lost: the batch was refused by the fence
    other,       ///< anything else that stopped the runner
};

template <>
inline constexpr auto detail::enum_names_of<error_kind> = detail::enum_names<error_kind::other>{
    {"handler", "storage", "connection", "conflict", "definition", "deleted", "fenced", "other"}, "unknown"};

/// Errors counted by kind, where each happened (never per event: only failures count).
struct error_counts {
    static constexpr std::size_t kinds = detail::enum_names_of<error_kind>.count;
    std::array<std::uint64_t, kinds> counts{};

    void add(error_kind k, std::uint64_t n = 1) noexcept { counts[static_cast<std::size_t>(k)] += n; }
    [[nodiscard]] std::uint64_t operator[](error_kind k) const noexcept { return counts[static_cast<std::size_t>(k)]; }
    [[nodiscard]] std::uint64_t total() const noexcept {
        std::uint64_t n = 0;
        for (auto c : counts) n += c;
        return n;
    }
    friend bool operator==(const error_counts&, const error_counts&) = default;
};

/// Durations in fixed buckets (seconds), for histograms an operator scrapes: `counts[i]` holds
/// the observations in (bounds[i-1], bounds[i]], the last one those above every bound.
struct duration_histogram {
    static constexpr std::array<double, 11> bounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30};
    std::array<std::uint64_t, bounds.size() + 1> counts{};
    double sum = 0;           ///< seconds, over every observation
    std::uint64_t count = 0;  ///< observations

    void observe(double seconds) noexcept {
        std::size_t i = 0;
        while (i < bounds.size() && seconds > bounds[i]) ++i;
        ++counts[i];
        sum += seconds;
        ++count;
    }
};

/// A snapshot of one runner, safe to take from any thread.
struct runner_status {
    std::string name;  ///< versioned name
    /// `stopped` after an error stopped this runner (`error` says why), else `catalog_state`.
    projection_state state = projection_state::declared;
    /// The version's state in the catalog as this runner last saw it: its place in the deployment,
    /// which a stop does not change (another process may run the version meanwhile).
    projection_state catalog_state = projection_state::declared;
    bool live = false;
    bool dormant = false;  ///< manual kick-off and not initialized: nothing is processed
    std::string_view partitioning;
    std::string_view mode = "batch";         ///< "bulk" while a bulk backfill applies or flushes, else "batch"
    std::string_view phase;                  ///< bulk mode: "reading", "applying" or "flushing"; else empty
    std::uint64_t bulk_flushes = 0;          ///< bulk mode: flushes committed by this runner
    std::uint64_t bulk_rows_flushed = 0;     ///< bulk mode: rows written by those flushes
    std::uint64_t bulk_rows_read = 0;        ///< bulk mode: rows read back from the table (evicted, or there before)
    std::uint64_t bulk_passes = 0;           ///< bulk mode: later passes over the log (bulk_passes_by_aggregate)
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
    std::uint64_t batches_committed = 0;     ///< batch transactions (and bulk flushes) committed by this runner
    duration_histogram batch_seconds;        ///< batch mode: each committed batch, from read to commit
    duration_histogram flush_seconds;        ///< bulk mode: each flush's transaction
    error_counts errors;                     ///< the errors this runner met, by kind
    /// When the last applied event was recorded in the log (its envelope's recorded_at): with the
    /// clock, the lag in seconds.
    std::optional<std::chrono::system_clock::time_point> last_event_recorded_at;
    /// Behind the head (and something applied): when the head's event was recorded. The lag in
    /// seconds is the time between the two: how much later in the log the newest event is than the
    /// state this version shows.
    std::optional<std::chrono::system_clock::time_point> head_recorded_at;
    std::optional<std::string> error;  ///< why the projection stopped, or why this code may not run it
    std::string fingerprint;           ///< this code's definition of the version (projection/fingerprint.hpp)
    std::string retain_until;          ///< "YYYY-MM-DD": deleting it earlier needs force; empty: none
    std::string note;                  ///< what the runner is waiting for, in words
};

namespace detail {

/// What a runner publishes after every batch, without a lock (detail/seqlock.hpp): the numbers of
/// its runner_status and its state. The text (name, fingerprint, error, note) changes only with
/// the life cycle and an error, and is published under the status mutex then.
struct runner_progress {
    projection_state state = projection_state::declared;
    projection_state catalog_state = projection_state::declared;
    bool live = false;
    bool dormant = false;
    std::string_view mode = "batch";
    std::uint64_t bulk_flushes = 0;
    std::uint64_t bulk_rows_flushed = 0;
    std::uint64_t bulk_rows_read = 0;
    std::uint64_t bulk_passes = 0;
    std::uint64_t position = 0;
    std::uint64_t aggregates_tracked = 0;
    std::uint64_t events_applied = 0;
    std::uint64_t events_skipped = 0;
    std::uint64_t events_dead_lettered = 0;
    std::uint64_t parked_aggregates = 0;
    double events_per_second = 0;
    std::uint64_t emitted = 0;
    std::uint64_t dropped = 0;
    std::uint64_t batches_committed = 0;
    duration_histogram batch_seconds;
    duration_histogram flush_seconds;
    error_counts errors;
    std::optional<std::chrono::system_clock::time_point> last_event_recorded_at;

    /// Copies these numbers into `s`.
    void into(runner_status& s) const noexcept {
        s.state = state;
        s.catalog_state = catalog_state;
        s.live = live;
        s.dormant = dormant;
        s.mode = mode;
        s.bulk_flushes = bulk_flushes;
        s.bulk_rows_flushed = bulk_rows_flushed;
        s.bulk_rows_read = bulk_rows_read;
        s.bulk_passes = bulk_passes;
        s.position = position;
        s.aggregates_tracked = aggregates_tracked;
        s.events_applied = events_applied;
        s.events_skipped = events_skipped;
        s.events_dead_lettered = events_dead_lettered;
        s.parked_aggregates = parked_aggregates;
        s.events_per_second = events_per_second;
        s.emitted = emitted;
        s.dropped = dropped;
        s.batches_committed = batches_committed;
        s.batch_seconds = batch_seconds;
        s.flush_seconds = flush_seconds;
        s.errors = errors;
        s.last_event_recorded_at = last_event_recorded_at;
    }
};

}  // namespace detail

}  // namespace projectionist
