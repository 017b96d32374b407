#pragma once

/// The optional abilities of a backend, each a named trait in this one header, so that a runner
/// asks a trait instead of probing members, and a backend states what it can do in one place.
///
/// A backend declares an ability by having the member the trait names (a boolean member constant
/// is read for its value: a declared `false` is false), or by specializing the trait:
///
///     template <>
///     inline constexpr bool projectionist::has_event_wait<my_store> = false;  // a wait_for_events kept for tests
///
///     static_assert(projectionist::has_slices<projectionist::postgres_storage>);
///     static_assert(!projectionist::has_slices<projectionist::memory_storage>);
///
/// What a runner does with and without each ability is written on each trait, and in
/// docs/backends.md.

#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <projectionist/store/aggregate_numbers.hpp>
#include <projectionist/store/partition.hpp>

namespace projectionist {

/// How a storage undoes the writes of a batch whose handler failed, when it can choose (see
/// `has_journal_rollback`).
enum class memory_rollback {
    /// The runner rebuilds the projection's tables from the log up to its last committed position.
    /// Nothing is paid while batches succeed; a failure costs a replay of the projection's history,
    /// which for an in-memory read model is what every process start costs anyway. The default.
    rebuild,
    /// Every write inside a batch records what it replaced (the old row or the inserted key), and
    /// a failure replays that journal backwards. A failure costs only its batch, but every write
    /// pays for a copy of the old row. For projections that expect many failures (dead letters).
    journal,
};

namespace detail::abilities {
template <class S>
concept rollback_mode_member = requires(const S& s) {
    { s.rollback_mode() } -> std::same_as<memory_rollback>;
};
template <class S>
concept begin_lifecycle_member = requires(typename S::session& s) {
    s.begin_lifecycle();
};
template <class S>
concept sliced_open_member = requires(S& s, std::string_view name, partition_slice slice) {
    { s.open(name, slice) } -> std::same_as<typename S::session>;
};
template <class S>
concept persists_checkpoint_member = requires {
    { S::session::persists_checkpoint } -> std::convertible_to<bool>;
};
template <class S>
constexpr bool persists_checkpoint_value() {
    if constexpr (persists_checkpoint_member<S>)
        return static_cast<bool>(S::session::persists_checkpoint);
    else
        return false;
}
template <class Handle>
concept bulk_write_member = requires(Handle& h, std::span<const typename Handle::row_type* const> rows,
                                     std::span<const typename Handle::key_type* const> keys) {
    h.write_bulk(rows, rows, keys);
};
/// What the check below hands `find_each`: a function taking each row found.
struct row_sink {
    template <class Row>
    void operator()(Row&&) const noexcept {}
};
template <class Handle>
concept batched_find_member = requires(Handle& h, std::span<const typename Handle::key_type* const> keys) {
    h.find_each(keys, row_sink{});
};
template <class Handle>
concept prefetch_member = requires(Handle& h, std::span<const typename Handle::key_type* const> keys) {
    h.prefetch(keys);
};
/// What the check below hands `begin`: the work of a batch's opening.
struct opening_work {
    void operator()() const noexcept {}
};
template <class S>
concept opening_begin_member = requires(typename S::session& s) {
    s.begin(opening_work{});
};
template <class S>
concept handoff_members = requires(typename S::session& s, const typename S::session& cs, std::string_view name) {
    { cs.live_versions(name) } -> std::convertible_to<std::vector<std::string>>;
    { s.lock_position(name) } -> std::convertible_to<std::uint64_t>;
    s.clear_live(name);
    { cs.find_setting(name) } -> std::convertible_to<std::optional<std::string>>;
    s.save_setting(name, name);
};
template <class S>
concept serving_switch_member = requires(typename S::session& s, std::string_view base_name) {
    { s.switch_serving(base_name) } -> std::convertible_to<bool>;
};
template <class Store>
concept wait_member = requires(const Store& s, std::uint64_t after, std::chrono::milliseconds timeout,
                               std::stop_token stop) {
    { s.wait_for_events(after, timeout, stop) } -> std::convertible_to<bool>;
};
template <class Store>
concept aggregate_count_member = requires(const Store& s) {
    { s.aggregate_count() } -> std::convertible_to<std::uint64_t>;
};
template <class Store>
concept aggregate_range_read_member = requires(const Store& s, typename Store::batch& out, std::uint64_t n,
                                               aggregate_numbers range, std::size_t max) {
    s.read_aggregates(n, n, range, max, out);
};
template <class Store>
concept concurrent_read_member = requires {
    { Store::reads_concurrently } -> std::convertible_to<bool>;
};
template <class Store>
constexpr bool reads_concurrently_value() {
    if constexpr (concurrent_read_member<Store>)
        return static_cast<bool>(Store::reads_concurrently);
    else
        return false;
}
template <class Store, class Storage>
concept writer_member = requires(const Store& store, typename Storage::session& session) {
    store.writer_on(session.connection());
    { store.same_database(session.connection()) } -> std::convertible_to<bool>;
};
}  // namespace detail::abilities

// ---- storage abilities ----------------------------------------------------------------------

/// The storage chooses at run time how a failed batch's table writes are undone:
/// `rollback_mode() const -> memory_rollback`.
///
/// With it, a runner asks once (`detail::journals_rollback(storage)`); in journal mode it records
/// the per-aggregate positions a batch moved, and a failed batch costs only itself (the session's
/// `rollback()` restores the tables and returns true). Without it (SQL storages), `rollback()`'s
/// result alone says whether the tables were restored; if not, the runner rebuilds them from the
/// log.
template <class Storage>
inline constexpr bool has_journal_rollback = detail::abilities::rollback_mode_member<Storage>;

/// The session opens the transaction of init, reset and remove with `session::begin_lifecycle()`
/// instead of `begin()`: a storage that buffers a batch's writes until commit sends a
/// lifecycle's writes at once, so that a refused write fails in the user's hook.
///
/// With it, a runner calls `begin_lifecycle()` for init, reset and remove; without it, `begin()`.
template <class Storage>
inline constexpr bool has_lifecycle_transactions = detail::abilities::begin_lifecycle_member<Storage>;

/// The storage keeps a checkpoint per partition: `open(std::string_view projection,
/// partition_slice) -> session`.
///
/// With it, a runner given `runner_options::slice` opens its partition's session; without it, a
/// sliced runner throws projectionist::error at construction (an unsliced one is unaffected).
template <class Storage>
inline constexpr bool has_slices = detail::abilities::sliced_open_member<Storage>;

/// The session's checkpoint lives outside the process (a database), so that reading it back
/// gives the committed one: `session::persists_checkpoint`, a boolean member constant whose value
/// counts (`false` is false).
///
/// With it, a runner reads the checkpoint back (`reload_checkpoint()`) after every rollback and
/// takes a moved one as another runner's progress, and a second storage object, or another
/// process, over the same place sees what was committed. Without it (memory), the session hands
/// out the live object and the runner restores it itself.
template <class Storage>
inline constexpr bool has_persisted_checkpoint = detail::abilities::persists_checkpoint_value<Storage>();

// ---- table handle abilities ---------------------------------------------------------------

/// The table handle writes many rows at once, inside the caller's transaction:
/// `write_bulk(std::span<const row_type* const> added, std::span<const row_type* const> changed,
/// std::span<const key_type* const> erased)`. `added` are rows whose keys the table does not hold
/// (written as plain inserts: a held key is an error), `changed` rows that may replace a held
/// row (upserts), `erased` keys the table holds (deletes).
///
/// With it, a bulk backfill's flush hands each table its changed rows in one call (SQLite:
/// multi-row statements; PostgreSQL: binary COPY); without it, the flush calls the handle's
/// `upsert` and `erase` once per row, which is correct and slower.
template <class Handle>
inline constexpr bool has_bulk_write = detail::abilities::bulk_write_member<Handle>;

/// The table handle reads the rows of many keys in one query: `find_each(std::span<const
/// key_type* const> keys, fn)` calls `fn(row_type&&)` once for every key that has a row, in any
/// order, and not at all for the others.
///
/// With it, a bulk backfill reads the rows a batch of events may need (the keys named like the
/// events' aggregates) that are no longer in memory with one query per batch, and a PostgreSQL
/// batch reads them before its events are applied; without it, each missing row is read by
/// `find` when a handler asks for it.
template <class Handle>
inline constexpr bool has_batched_find = detail::abilities::batched_find_member<Handle>;

/// The table handle keeps, for the open batch, the rows of many keys read in one query:
/// `prefetch(std::span<const key_type* const> keys)`.
///
/// With it, a runner in batch mode hands each table whose keys are text the aggregate ids of the
/// batch's events right after `begin()`, so that the handlers' reads of those rows cost no round
/// trip (PostgreSQL: one `= ANY($1)` query per batch); without it, each read is the handle's own.
template <class Handle>
inline constexpr bool has_batch_prefetch = detail::abilities::prefetch_member<Handle>;

// ---- session abilities ----------------------------------------------------------------------

/// The session opens a batch with work of the caller's inside its opening: `begin(F opening)`
/// calls `opening()` once the batch is open, and the tables' `prefetch` calls made there are sent
/// with the opening's own statements (PostgreSQL: in the round trip of BEGIN and the checkpoint's
/// lock). A failure there fails `begin`, with nothing written.
///
/// With it, a runner in batch mode prefetches a batch's rows (has_batch_prefetch) from inside
/// `begin`, one round trip fewer per batch; without it, right after `begin()`.
template <class Storage>
inline constexpr bool has_prefetching_begin = detail::abilities::opening_begin_member<Storage>;

/// The session can hand emission over from one version to another inside a transaction
/// (storage/emission_window.hpp): `live_versions(base_name) const -> std::vector<std::string>`
/// (the other versions of the projection whose catalog rows are live), `lock_position(version)
/// -> std::uint64_t` (a version's committed position, the highest of its checkpoints, with them
/// locked until the transaction ends, so that a batch of that version commits before or begins
/// after), `clear_live(version)` (another version's live flag cleared, a `live` state back to
/// `caught_up`), and `find_setting` / `save_setting` on the session's transaction.
///
/// With it, making a version live (with emit_when_live) records the hand-over position in the
/// same transaction, and every batch emits only for the source positions of its version's window,
/// read inside the batch's transaction: each position's events go downstream once, whichever
/// version lags and in whichever process it runs. Without it, the live flag alone decides, and a
/// version that has not yet seen a switch made elsewhere may emit what its successor emits too.
template <class Storage>
inline constexpr bool has_emission_handoff = detail::abilities::handoff_members<Storage>;

/// The session switches the version that serves queries in one write, all or nothing:
/// `switch_serving(base_name) -> bool` marks the session's version `serving` in the catalog and
/// every other version of `base_name` that serves there `retired`, provided the version's own row
/// is caught up, serving or retired; otherwise it changes nothing and returns false.
///
/// With it, deployment::serve (the command line's switch) leaves exactly one version serving,
/// whatever fails and whichever versions another process switched since this one looked. Without
/// it, it writes the target's row and then each other serving version's, one write each: a
/// failure between them leaves two versions serving (never none), and the same call again
/// retires the other.
template <class Storage>
inline constexpr bool has_serving_switch = detail::abilities::serving_switch_member<Storage>;

// ---- event store abilities ------------------------------------------------------------------

/// The store can block until an event is appended after a position:
/// `wait_for_events(std::uint64_t after, std::chrono::milliseconds timeout, std::stop_token) const
/// -> bool`.
///
/// With it, an idle `runner::run` waits on the store (woken by the append); without it, it sleeps
/// `poll_interval` between looks.
template <class EventStore>
inline constexpr bool has_event_wait = detail::abilities::wait_member<EventStore>;

/// The store knows how many aggregates it numbered: `aggregate_count() const -> std::uint64_t`.
///
/// With it, a per-aggregate runner sizes its positions once per catch-up; without it, the
/// positions grow as aggregates are met.
template <class EventStore>
inline constexpr bool has_aggregate_count = detail::abilities::aggregate_count_member<EventStore>;

/// The store reads the events of a range of aggregate numbers alone: `read_aggregates(after,
/// through, aggregate_numbers range, max, batch& out) const`, up to `max` records with `after <
/// position <= through` and an aggregate number in `range`, in global order.
///
/// With it, a per-aggregate bulk backfill in passes (runner_options::bulk_passes_by_aggregate)
/// reads each pass's aggregates' events alone; without it, such a backfill flushes and evicts at
/// the budget as every other one does.
template <class EventStore>
inline constexpr bool has_aggregate_range_read = detail::abilities::aggregate_range_read_member<EventStore>;

/// The store's `read` (and `read_aggregates`) may run on one thread while another uses the
/// records of its earlier reads and the storage's sessions: `reads_concurrently`, a boolean member
/// constant whose value counts (`false` is false). A store declares it when its reads share no
/// connection or buffer with a storage session, and leave the records of an earlier read (in
/// another batch object) as they were.
///
/// With it, a bulk backfill reads the log's next events on a second thread while it applies the
/// events it read last (with one apply thread or several), so that reading overlaps applying
/// instead of adding to it; a read that fails there is reported as if it had failed in its turn,
/// after the events before it were applied. Without it, a bulk backfill reads and applies in turn
/// on one thread (its apply threads, with `bulk_apply_threads`, wait for each read).
template <class EventStore>
inline constexpr bool has_concurrent_read = detail::abilities::reads_concurrently_value<EventStore>();

/// The store can append through the storage session's own connection, so that emitted events
/// commit in the batch's transaction: `writer_on(session.connection())` (a writer with the
/// store's `append`) and `same_database(session.connection()) -> bool`.
///
/// With it, when `same_database` is true, a runner appends a batch's emitted events inside the
/// batch's transaction; otherwise (no ability, or another database) right after the commit.
template <class EventStore, class Storage>
inline constexpr bool has_transactional_emission = detail::abilities::writer_member<EventStore, Storage>;

namespace detail {

/// Whether a failed batch of `storage` is undone by its journal (see has_journal_rollback).
template <class Storage>
[[nodiscard]] bool journals_rollback(const Storage& storage) noexcept {
    if constexpr (has_journal_rollback<Storage>)
        return storage.rollback_mode() == memory_rollback::journal;
    else
        return false;
}

}  // namespace detail
}  // namespace projectionist
