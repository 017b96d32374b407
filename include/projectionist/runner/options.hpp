#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include <projectionist/detail/enum_text.hpp>
#include <projectionist/runner/reconnect.hpp>
#include <projectionist/store/partition.hpp>

namespace projectionist {

/// How a runner replays history into a version that serves no queries yet (declared,
/// initialized or backfilling: its tables are private to it).
enum class backfill_mode : std::uint8_t {
    /// Bulk on a database storage (has_persisted_checkpoint), batch on memory, where the tables
    /// already are an in-memory row store. The default.
    automatic,
    /// The same today: bulk wherever the storage allows it.
    bulk,
    /// Always batch: one transaction per batch, as for a live version.
    batch,
};

/// The modes as the command line's `backfill --mode` spells them.
template <>
inline constexpr auto detail::enum_names_of<backfill_mode> =
    detail::enum_names<backfill_mode::batch>{{"auto", "bulk", "batch"}, "?"};

/// Tuning of a runner; the defaults suit most projections.
///
///     projectionist::runner<tickets<2>> v2(store, storage, {.batch_size = 5000});
struct runner_options {
    std::size_t batch_size = 1000;                 ///< events per transaction; the checkpoint moves once per batch
    std::chrono::milliseconds poll_interval{100};  ///< how long `run` waits for new events before looking again
    /// Per aggregate only: apply just the aggregates of this partition (workers run one runner
    /// per partition they hold). The runner's checkpoint is then the partition's own, while its
    /// tables, catalog entry and settings stay the projection's; the storage must keep
    /// checkpoints per partition (`storage.open(name, slice)`, e.g. postgres_storage). The
    /// default, one partition, is every aggregate.
    partition_slice slice{};
    /// How history is replayed into a version that serves no queries yet; see backfill_mode.
    /// Once caught up (or serving, or live) a version always runs in batch mode.
    backfill_mode backfill = backfill_mode::automatic;
    /// Bulk mode: the rows held in memory before they are flushed and evicted, roughly (the rows'
    /// objects and the heap blocks of their text and vector fields). `unbounded` flushes only at
    /// the end of the history.
    std::size_t bulk_memory_budget = std::size_t{256} << 20;
    /// Bulk mode: events read from the store at a time.
    std::size_t bulk_read_size = 10000;
    /// Bulk mode: a flush at least every this many positions, so that a crash or a kill loses at
    /// most this much work however small the read model is.
    std::uint64_t bulk_flush_every = 10'000'000;
    /// Bulk mode, per aggregate only: the threads that apply each read's events, every aggregate's
    /// events on one of them (by its number), in log order, into row stores of that thread's own;
    /// reading (the next events, while they apply) and the flush (one transaction) stay on the
    /// runner's thread. Handlers of different
    /// aggregates that touch the same row key are found out at the next flush: what was applied
    /// since the last one is dropped and the backfill goes on with one thread (status().note
    /// says so). 1, the default, applies on the runner's thread as before. Opt in: the handlers
    /// of one projection object are then called from several threads at once, so they must not
    /// change the projection's own members or anything else they share; that is the projection's
    /// business, which the runner cannot check. The event store is read while the threads read
    /// rows from the storage: the two must not share one connection (the library's backends
    /// never do: each store and each storage opens its own).
    std::size_t bulk_apply_threads = 1;
    /// Bulk mode, per aggregate only, with a bounded bulk_memory_budget: when the rows held reach
    /// the budget, the pass goes on with the lower three quarters of the aggregate numbers it met,
    /// whose rows stay in memory, and a later pass over the rest of the log applies the others
    /// (split again if they too outgrow the budget); the rows of the aggregates left are flushed
    /// and evicted (with every other changed row, if a row was touched by two aggregates). Without
    /// it, every row is flushed and evicted at the budget, and when the aggregates' events are
    /// interleaved most rows are read back and written again at every flush. Each pass reads
    /// only its aggregates' events, selected by the store (has_aggregate_range_read; ignored on a
    /// store without it). Until the last pass ends, the checkpoint stays where the oldest pass still
    /// to run starts: a crash resumes from there, and the per-aggregate positions pass over what
    /// was applied. Opt in, for two reasons the runner cannot check: events of different
    /// aggregates are applied out of log order, so the handlers' result must not depend on that
    /// order (it does not when each row is written by the events of one aggregate, as with rows
    /// keyed by the aggregate); and only one runner may backfill the version at a time, since the
    /// checkpoint's compare-and-set cannot tell two runners' flushes apart while its position
    /// waits. status().bulk_passes counts the later passes; status().position is where the
    /// current pass reads, and goes back when a later pass starts.
    bool bulk_passes_by_aggregate = false;
    /// `run` after the database's connection was lost (its server restarted, say): how often and
    /// how long it tries to reconnect before it stops with the cause (runner/reconnect.hpp).
    reconnect_options reconnect{};
    /// Called once per batch in batch mode, after its events were read and before its transaction
    /// begins, and in a bulk backfill before each read. An exception it throws ends the
    /// operation between two batches (a bulk backfill first flushes what it applied): what a
    /// deployment's stoppable catch-up uses, and tests of what another process may do in the
    /// middle of a batch. Empty (the default): nothing is called.
    std::function<void()> before_batch_begin{};

    static constexpr std::size_t unbounded = std::numeric_limits<std::size_t>::max();
};

/// One backfill's own settings (runner::backfill, deployment::backfill, the command line's
/// `backfill --memory-budget ... --mode ...`), for the operator who starts it: how much memory
/// this rebuild may hold and whether it runs in bulk. An unset field keeps the runner's option;
/// the runner's options are as before once the call returns. What the handlers' code must allow
/// (bulk_apply_threads, bulk_passes_by_aggregate) stays the runner's.
struct backfill_options {
    /// runner_options::bulk_memory_budget for this backfill (runner_options::unbounded: flush only
    /// at the end of the history).
    std::optional<std::size_t> bulk_memory_budget{};
    /// runner_options::backfill for this backfill.
    std::optional<backfill_mode> mode{};
};

/// How a version is deleted (`runner::remove`, `deployment::remove`, the command line's delete).
struct remove_options {
    /// Deletes even before the version's retention date (`retain_until`), which is refused otherwise.
    bool force = false;
    /// The command recorded in the version's tombstone ("delete" on the command line).
    std::string by = "remove";
};

/// What `init` did. Converts to true when it created the version's tables (it was declared or
/// deleted), false when the version was initialized already.
struct init_result {
    bool created = false;
    /// The version had been deleted: init re-creates it, from an empty table.
    bool recreated = false;
    /// In words, e.g. "tickets_v1 was deleted at 2026-12-04T10:00:00Z by delete; init re-creates it
    /// (empty tables, replaying history from the start)"; empty unless recreated.
    std::string note;

    explicit operator bool() const noexcept { return created; }
};

}  // namespace projectionist
