#pragma once

/// The bulk backfill: history replayed into a version that serves no queries yet at the speed of
/// memory. The handlers write to in-memory row stores (`bulk_table`) instead of the tables; at
/// each flush (the memory budget reached, or the end of the history) the changed rows are written
/// and the checkpoint moved in one transaction, so a crash resumes from the last flush with
/// nothing lost and nothing applied twice. Emission stays suppressed (bulk runs only when nothing
/// could be emitted). A handler that fails, or that needs what memory cannot serve (the raw
/// connection, a whole-table scan), makes the runner drop what it applied since the last flush
/// and go on in batch mode from there, where the failure policy sees the failing event as usual.
///
/// With a store that has_concurrent_read (storage/abilities.hpp), the log's next events are read
/// on a second thread while the last read's are applied, so that a pass costs about the larger of
/// reading and applying rather than their sum; a failure is reported in log order all the same
/// (the apply's first, then the read's, as if it had been the next read).
///
/// Per aggregate, the events of a read may be applied on several threads
/// (runner_options::bulk_apply_threads): each aggregate's events go to one of them, by the
/// aggregate's number, in log order, and each thread writes to row stores of its own. Reading and
/// flushing stay on the runner's thread, so a flush is still one transaction; it reads the log's
/// next events while the threads apply the current ones. Handlers may touch
/// any row, so at each flush (and when a handler failed) the runner looks for a key that the
/// stores of two threads touched; if there is one, what was applied since the last flush is
/// dropped and the pass goes on from there on one thread (bulk_until). That is enough:
///   - a thread sees another thread's write to a row only through the real table, that is only
///     once it was flushed; a store reads a row it does not hold from the real table, except on
///     a table that was empty at the start, where it takes a key it never flushed itself for
///     absent; so a thread's view of a row is wrong only if another thread wrote the row since
///     it last held it, or flushed it while this store takes it for absent;
///   - a store remembers every key it touched until it is evicted, rows found absent included,
///     and, on such an empty-at-start table, the keys it flushed after that;
///   - so two threads' views of a row may differ only if that row's key is then held by both
///     stores, or held by one and remembered as flushed by the other: the check sees it before
///     anything applied since the last flush is written. A flush that passed the check wrote
///     what one thread, applying the events in log order, would have written: no row was seen
///     by two threads, and each aggregate's events were applied in order by one.
///
/// Per aggregate, with runner_options::bulk_passes_by_aggregate and a bounded budget, a pass that
/// reaches the budget flushes, goes on with the lower three quarters of the aggregate numbers it
/// met (a range of numbers, read through the store's read_aggregates) and leaves the others to a
/// later pass from the current position (the bookkeeping: runner/bulk_passes.hpp). The row stores remember which
/// aggregate touched each row last, so that the split's flush writes (and evicts) only the rows of the aggregates left,
/// with their positions: the pass's own changed rows stay in memory. A row that two aggregates
/// touched would carry changes of aggregates whose positions the flush does not commit, so then
/// the flush writes every changed row. A flush commits the position up to which everything is
/// committed: where the pass's own aggregates are committed up to, or where the oldest pass still
/// to run starts, if earlier. A crash resumes there; the aggregates' positions pass over what was
/// applied.

#include <algorithm>
#include <array>
#include <bit>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <projectionist/runner/bulk_passes.hpp>
#include <projectionist/runner/prefetch.hpp>
#include <projectionist/runner/runner.hpp>

namespace projectionist {

namespace detail {

/// Starts a thread that calls `entry(argument)`. Not a template, so that std::thread's state for
/// it is instantiated once, here: clang 14 left the run function of that state undefined (a link
/// error) when the thread was started with a callable that depends on a runner's parameters.
inline void start_thread(std::vector<std::jthread>& threads, void (*entry)(void*) noexcept, void* argument) {
    threads.emplace_back(entry, argument);
}

}  // namespace detail

template <class Projection, class... Policies>
auto runner<Projection, Policies...>::bulk_eligible() const -> bool {
    if constexpr (!bulk_capable) {
        return false;
    } else {
        if (options_.backfill == backfill_mode::batch) return false;
        // Only while the tables are private to the version (it was initialized or backfilling when
        // this backfill or catch-up started): nobody reads them mid-backfill, not even shadow reads.
        if (!tables_private_) return false;
        if (emission::pass(live_)) return false;  // emitted events commit with their batch
        if (!options_.slice.whole()) return false;
        if constexpr (failure::skips) {
            if (!parked_.empty()) return false;
        }
        return true;
    }
}

namespace detail {

/// The stores of several bulk apply threads: a key of a table that one of them holds and another
/// one touched (holds, or flushed while the table was known empty), described for the status;
/// nullopt if there is none.
template <class Lanes>
std::optional<std::string> key_touched_twice(const Lanes& lanes) {
    std::optional<std::string> found;
    const auto check_table = [&]<std::size_t J>(std::integral_constant<std::size_t, J>) {
        for (std::size_t a = 0; a < lanes.size() && !found; ++a) {
            const auto& mine = std::get<J>(lanes[a]->tables);
            mine.for_each_key([&](const auto& key) {
                if (found) return;
                for (std::size_t b = 0; b < lanes.size(); ++b)
                    if (b != a && std::get<J>(lanes[b]->tables).touched(key)) {
                        found = fmt::format("table '{}', key {}", mine.name(), describe_key(key));
                        return;
                    }
            });
        }
    };
    using tables = std::remove_cvref_t<decltype(lanes.front()->tables)>;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (check_table(std::integral_constant<std::size_t, I>{}), ...);
    }
    (std::make_index_sequence<std::tuple_size_v<tables>>{});
    return found;
}

/// Thrown inside a bulk pass when the check above found a key: the pass goes back to its last flush.
struct bulk_lanes_diverged {
    std::string where;
};

}  // namespace detail

template <class Projection, class... Policies>
struct runner<Projection, Policies...>::bulk_lane {
    // With one lane, the runner's own emission counters and queue; with more, the lane's (each
    // thread counts its own, merged after each read).
    detail::emission_counters own_counters;
    std::vector<pending_event> own_pending;
    bulk_tables tables;
    bulk_context_type ctx;
    std::vector<const record_type*> records;  ///< the current read's records of this lane's aggregates
    std::vector<std::uint64_t> changed;       ///< the aggregates it moved (a storage that persists them)
    std::vector<std::uint64_t> marks;         ///< ... as a bit per aggregate number, since the last flush
    const record_type* failed = nullptr;
    std::uint64_t tracked = 0;
    std::uint64_t current_aggregate = 0;  ///< passes by aggregate: the aggregate being applied
    bool owners = false;                  ///< ... and its tables remember which one touched a row
    pass_totals totals;
    std::exception_ptr error;

    bulk_lane(runner& r, bool alone)
        : tables(std::apply([](auto*... handle) { return bulk_tables{std::string(handle->name())...}; }, r.handles_)),
          ctx(r.session_, alone ? r.pending_ : own_pending, alone ? r.counters_ : own_counters) {
        ctx.bind_tables(
            std::apply([](auto&... table) { return typename bulk_context_type::handle_tuple{&table...}; }, tables));
        ctx.set_envelope_source(
            [](const void* rec) noexcept { return static_cast<const record_type*>(rec)->envelope_of(); });
        ctx.set_live(r.live_);
        ctx.block_storage(true);
    }
};

template <class Projection, class... Policies>
auto runner<Projection, Policies...>::bulk_until(std::uint64_t target) -> std::uint64_t {
    if constexpr (!bulk_capable) {
        (void)target;
        return 0;
    } else {
        std::size_t lanes = 1;
        if constexpr (partitioning::partitioned) lanes = std::max<std::size_t>(options_.bulk_apply_threads, 1);
        bulk_note_.clear();
        bool diverged = false;
        std::uint64_t flushed = bulk_pass(target, lanes, diverged);
        if (diverged) {
            // Handlers of aggregates on different threads met on a row: the rest on one thread.
            std::string why = std::move(bulk_note_);
            bulk_note_.clear();
            flushed += bulk_pass(target, 1, diverged);
            bulk_note_ = bulk_note_.empty() ? std::move(why) : fmt::format("{}; {}", why, bulk_note_);
            publish_status();
        }
        return flushed;
    }
}

template <class Projection, class... Policies>
auto runner<Projection, Policies...>::bulk_pass(std::uint64_t target, std::size_t lane_count, bool& diverged)
    -> std::uint64_t {
    if constexpr (!bulk_capable) {
        (void)target, (void)lane_count, (void)diverged;
        return 0;
    } else {
        diverged = false;
        std::vector<std::unique_ptr<bulk_lane>> lanes;
        lanes.reserve(lane_count);
        for (std::size_t i = 0; i < lane_count; ++i)
            lanes.push_back(std::make_unique<bulk_lane>(*this, lane_count == 1));
        // One source, read from every apply thread on a miss: one read at a time.
        std::mutex source_lock;
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            const std::array<bool, sizeof...(I)> empty{(std::get<I>(handles_)->size() == 0)...};
            for (auto& lane : lanes) {
                (std::get<I>(lane->tables).attach(std::get<I>(handles_), empty[I]), ...);
                if (lane_count > 1) (std::get<I>(lane->tables).share_source(&source_lock), ...);
            }
        }
        (std::make_index_sequence<std::tuple_size_v<bulk_tables>>{});
        // However the pass ends, the tables' sources let go of what they hold for it.
        struct detach_at_end {
            std::vector<std::unique_ptr<bulk_lane>>& lanes;
            ~detach_at_end() {
                for (auto& lane : lanes) std::apply([](auto&... t) { (t.detach(), ...); }, lane->tables);
            }
        } detached{lanes};

        // What to go back to when a pass fails: the last flush. A database session reads its
        // committed checkpoint back; memory keeps a copy.
        checkpoint committed;
        if constexpr (!session_reloads_checkpoint) committed = *checkpoint_;
        mode_ = "bulk";
        publish_status();
        // What the status (and the command line's progress) shows the pass doing now.
        const auto phase = [this](std::string_view now) {
            std::lock_guard lock(status_mutex_);
            status_.phase = now;
        };

        std::uint64_t flushed = 0;    // applied and committed
        std::uint64_t unflushed = 0;  // applied since the last flush
        std::uint64_t skipped = 0;
        const auto memory = [&] {
            std::size_t bytes = 0;
            for (const auto& lane : lanes)
                bytes += std::apply([](const auto&... t) { return (std::size_t{0} + ... + t.approximate_bytes()); },
                                    lane->tables);
            return bytes;
        };
        // Passes by aggregate (runner_options::bulk_passes_by_aggregate).
        bool split = false;
        if constexpr (partitioning::partitioned && has_aggregate_range_read<event_store_type>)
            split = options_.bulk_passes_by_aggregate && options_.bulk_memory_budget != runner_options::unbounded;
        // A pass of some aggregates that reads nothing more has reached the target: it needs a
        // position, not "the end of the log" (a catch-up's target). The head as of now; batch
        // mode then applies what comes after it.
        if (split) target = std::min(target, store_->head());
        bulk_plan_ = detail::aggregate_passes(checkpoint_->position);
        if (split)
            for (auto& lane : lanes) {
                lane->owners = true;
                std::apply([&](auto&... t) { (t.track_owners(&lane->current_aggregate), ...); }, lane->tables);
            }
        std::uint64_t flushed_position = checkpoint_->position;  // the committed checkpoint's
        std::uint64_t flush_cursor = checkpoint_->position;      // where the reads were at the last flush
        bool planned = false;                                    // the row stores were sized after the first batch
        // A flush; `from` > 0: only the rows and positions of the aggregates numbered `from` or
        // higher (a split's), whose part of this pass ends here.
        const auto flush = [&](std::uint64_t from = 0) {
            const std::uint64_t cursor = checkpoint_->position;
            const std::uint64_t at = bulk_plan_.commit_position(cursor, from == 0);
            if (cursor == flush_cursor && at == flushed_position) return;  // nothing read since the last one
            if (lane_count > 1)
                if (std::optional<std::string> where = detail::key_touched_twice(lanes))
                    throw detail::bulk_lanes_diverged{std::move(*where)};
            phase("flushing");
            checkpoint_->position = at;
            try {
                bulk_flush(lanes, from);
            } catch (...) {
                checkpoint_->position = cursor;
                throw;
            }
            if constexpr (!session_reloads_checkpoint) committed = *checkpoint_;
            checkpoint_->position = cursor;
            flushed_position = at;
            flush_cursor = cursor;
            bulk_plan_.flushed(cursor, from == 0);
            if (from == 0) {  // everything applied is committed
                flushed += unflushed;
                events_applied_ += unflushed;
                events_skipped_ += skipped;
                unflushed = skipped = 0;
            }
        };
        const auto evict = [&] {
            for (auto& lane : lanes) std::apply([](auto&... t) { (t.evict(), ...); }, lane->tables);
        };
        bulk_read_ahead ahead;  // the next read, made while the last was applied
        // The pass reached the target: its rows are flushed, and the oldest pass still to run
        // starts. False when there is none.
        const auto next_pass = [&] {
            flush();
            const std::optional<std::uint64_t> from = bulk_plan_.next();
            if (!from) return false;
            evict();
            checkpoint_->position = flush_cursor = *from;
            ahead.forget();
            ++bulk_passes_;
            return true;
        };
        // Back to the last flush: nothing since reached the tables.
        const auto forget_unflushed = [&] {
            if constexpr (session_reloads_checkpoint)
                checkpoint_ = &session_.reload_checkpoint();
            else
                *checkpoint_ = committed;
            changed_aggregates_.clear();
            for (auto& lane : lanes) std::fill(lane->marks.begin(), lane->marks.end(), 0);
            mode_ = "batch";
            phase({});
        };
        // The batch hook (runner_options::before_batch_begin) is asked before each read, as batch
        // mode asks it before each batch: if it throws (a stop request), what was applied is
        // flushed first, and the pass ends with its exception.
        std::exception_ptr stopped;
        try {
            while (checkpoint_->position < target) {
                if (options_.before_batch_begin) [[unlikely]] {
                    try {
                        options_.before_batch_begin();
                    } catch (...) {
                        stopped = std::current_exception();
                        break;
                    }
                }
                if (ahead.ready) {
                    ahead.ready = false;
                    // It failed: as the read in its turn would have, now.
                    if (ahead.error) std::rethrow_exception(std::exchange(ahead.error, nullptr));
                    std::swap(batch_, bulk_next_);
                } else {
                    phase("reading");
                    bulk_read(checkpoint_->position, target, batch_);
                }
                if (batch_.empty()) {
                    // A pass of some aggregates: none of theirs up to the target is left.
                    if (!bulk_plan_.range().whole()) checkpoint_->position = target;
                    if (checkpoint_->position >= target && next_pass()) continue;
                    break;
                }
                if (split) {
                    for (const auto& r : batch_) bulk_plan_.saw(detail::deref(r).aggregate_number());
                }
                if (store_->type_count() > type_map_.size()) refresh_type_map();
                failed_ = nullptr;
                phase("applying");
                pass_totals totals;
                if (lane_count == 1) {
                    totals = bulk_apply_alone(*lanes.front(), target, ahead);
                } else {
                    totals = bulk_apply_lanes(lanes, target, ahead);
                }
                checkpoint_->position = detail::deref(batch_[batch_.size() - 1]).position();
                last_event_recorded_at_ = detail::deref(batch_[batch_.size() - 1]).envelope_of().recorded_at;
                unflushed += totals.applied;
                skipped += totals.skipped;
                if (!planned) {
                    planned = true;
                    // The aggregates the stores will have met at the end: those the log numbered
                    // (the first batch names only the first ones, when the pass starts at 0).
                    std::uint64_t in_log = 0;
                    if constexpr (has_aggregate_count<event_store_type>) in_log = store_->aggregate_count();
                    if (lane_count == 1) {
                        // A pair, not structured bindings: clang 14 cannot capture those in a lambda.
                        const std::pair<std::uint64_t, std::uint64_t> seen =
                            detail::aggregates_of(batch_.begin(), batch_.end());
                        const std::uint64_t numbered = std::max(seen.second, in_log);
                        std::apply(
                            [&](auto&... t) { (t.plan_rows(seen.first, numbered, options_.bulk_memory_budget), ...); },
                            lanes.front()->tables);
                    } else {
                        // Each lane holds its share of the aggregates, and of the budget.
                        const std::uint64_t numbered =
                            std::max(detail::aggregates_of(batch_.begin(), batch_.end()).second, in_log);
                        for (auto& lane : lanes) {
                            const std::pair<std::uint64_t, std::uint64_t> seen =
                                detail::aggregates_of(lane->records.begin(), lane->records.end());
                            std::apply(
                                [&](auto&... t) {
                                    (t.plan_rows(seen.first, (numbered + lane_count - 1) / lane_count,
                                                 options_.bulk_memory_budget / lane_count),
                                     ...);
                                },
                                lane->tables);
                        }
                    }
                }
                if (checkpoint_->position - flush_cursor >= options_.bulk_flush_every) {
                    flush();
                } else if (memory() > options_.bulk_memory_budget) {
                    const std::uint64_t left = split ? bulk_plan_.split(checkpoint_->position) : 0;
                    if (left != 0) ahead.forget();  // it read the events of the aggregates left too
                    if (left == 0) {
                        flush();
                        evict();
                    } else {
                        // Only the rows and positions of the aggregates left are written, unless a
                        // row held was touched by two aggregates (then all: a row with changes of
                        // aggregates not committed must not be written); the rows of those the
                        // pass goes on with stay in memory, changed or not. (Should they still
                        // exceed the budget, the next read splits again.)
                        bool shared = false;
                        for (const auto& lane : lanes)
                            std::apply([&](const auto&... t) { shared = (shared || ... || t.holds_shared_rows()); },
                                       lane->tables);
                        flush(session_reloads_checkpoint && !shared ? left : 0);
                        for (auto& lane : lanes)
                            std::apply([&](auto&... t) { (t.evict_owned_from(left), ...); }, lane->tables);
                    }
                }
                publish_progress();
                if (checkpoint_->position >= target && !next_pass()) break;
            }
            flush();
        } catch (const detail::bulk_lanes_diverged& clash) {
            forget_unflushed();
            diverged = true;
            bulk_note_ = fmt::format(
                "the bulk backfill applied events on one thread from position {}: handlers of aggregates applied on "
                "different threads touched the same row ({})",
                checkpoint_->position, clash.where);
            publish_status();
            return flushed;
        } catch (...) {
            const std::exception_ptr cause = std::current_exception();
            forget_unflushed();
            if (detail::is_lease_lost(cause)) {
                count_error(error_kind::fenced);  // as in batch mode: not this projection's failure
                publish_progress();
                std::rethrow_exception(cause);
            }
            // Another runner of this version committed first: its rows are in the tables; go on
            // from its checkpoint in batch mode, as after a batch's checkpoint conflict.
            const bool moved = checkpoint_->position != flushed_position || detail::is_checkpoint_conflict(cause);
            // A flush refused because another runner moved the checkpoint (an event's failure, even
            // one that says conflict, is counted by batch mode when it meets the event again).
            if (moved && failed_ == nullptr) count_error(error_kind::conflict);  // published below
            if (failed_ == nullptr && !moved && !detail::holds<bulk_fallback>(cause)) {
                // Not an event's failure: the flush itself (the database refused the writes).
                fail(nullptr, cause);
            }
            bulk_note_ = fmt::format("the bulk backfill went on in batch mode from position {}: {}",
                                     checkpoint_->position, detail::reason_of(cause));
            publish_status();
            return flushed;
        }
        mode_ = "batch";
        phase({});
        publish_status();
        if (stopped) std::rethrow_exception(stopped);
        return flushed;
    }
}

template <class Projection, class... Policies>
auto runner<Projection, Policies...>::bulk_apply_alone(bulk_lane& lane, std::uint64_t target, bulk_read_ahead& ahead)
    -> pass_totals {
    if constexpr (!bulk_capable) {
        (void)lane, (void)target, (void)ahead;
        return {};
    } else {
        // The rows of the read's aggregates, before the handlers ask for them one by one.
        detail::prefetch_bulk(lane.tables, batch_.begin(), batch_.end());
        const auto apply = [&] {
            return apply_records_into<false, false>(batch_.begin(), batch_.end(), lane.ctx,
                                                    {&changed_aggregates_, &failed_, &checkpoint_->aggregates_tracked,
                                                     &lane.marks, lane.owners ? &lane.current_aggregate : nullptr});
        };
        if constexpr (!has_concurrent_read<event_store_type>) {
            (void)target, (void)ahead;
            return apply();
        } else {
            const std::uint64_t after = detail::deref(batch_[batch_.size() - 1]).position();
            if (after >= target) return apply();
            // The next read on another thread (the store's connection) while this one applies
            // (the storage's): reading, which is most of a bulk pass's work on a database, then
            // overlaps applying. A failure of the apply is met first, as in log order; the read's
            // is thrown when the pass gets to that read.
            bulk_read_call call{this, after, target, nullptr};
            pass_totals totals;
            {
                std::vector<std::jthread> reader;
                reader.reserve(1);
                detail::start_thread(reader, &runner::bulk_read_entry, &call);
                totals = apply();
            }  // joined, even when the apply threw
            ahead.ready = true;
            ahead.error = call.error;
            return totals;
        }
    }
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::bulk_read_entry(void* call) noexcept {
    auto* c = static_cast<bulk_read_call*>(call);
    try {
        c->self->bulk_read(c->after, c->target, c->self->bulk_next_);
    } catch (...) {
        c->error = std::current_exception();
    }
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::bulk_apply_lane(bulk_lane& lane) noexcept {
    if constexpr (bulk_capable) {
        lane.failed = nullptr;
        lane.error = nullptr;
        try {
            lane.totals = apply_records_into<false, false>(lane.records.begin(), lane.records.end(), lane.ctx,
                                                           {&lane.changed, &lane.failed, &lane.tracked, &lane.marks,
                                                            lane.owners ? &lane.current_aggregate : nullptr});
        } catch (...) {
            lane.error = std::current_exception();
        }
    } else {
        (void)lane;
    }
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::bulk_lane_entry(void* call) noexcept {
    const auto* c = static_cast<const std::pair<runner*, bulk_lane*>*>(call);
    c->first->bulk_apply_lane(*c->second);
}

template <class Projection, class... Policies>
auto runner<Projection, Policies...>::bulk_apply_lanes(std::vector<std::unique_ptr<bulk_lane>>& lanes,
                                                       std::uint64_t target, bulk_read_ahead& ahead) -> pass_totals {
    if constexpr (!bulk_capable) {
        (void)lanes, (void)target, (void)ahead;
        return {};
    } else {
        const std::size_t count = lanes.size();
        for (auto& lane : lanes) lane->records.clear();
        // Routed by aggregate number, so that each aggregate's events are applied in log order by
        // one lane. What the pass would grow on the way (the type map, the aggregates' positions) is
        // grown here first: the lanes share it and only read it, or write their own aggregates'.
        pass_state bounds;
        for (auto it = batch_.begin(); it != batch_.end(); ++it) {
            const record_type& rec = detail::deref(*it);
            try {
                make_room(rec, bounds);
            } catch (...) {
                failed_ = &rec;
                throw;
            }
            lanes[rec.aggregate_number() % count]->records.push_back(&rec);
        }
        // The rows of the read's aggregates, before the lanes ask for them one by one: on this
        // thread, which owns the connection.
        for (auto& lane : lanes) detail::prefetch_bulk(lane->tables, lane->records.begin(), lane->records.end());

        // Every lane on a thread of its own while this one reads the log's next events, when the
        // store allows it (from the store's connection: the lanes read rows only through the
        // session's), so that reading, which stays serial, overlaps the apply phase instead of
        // adding to it.
        bool read = false;
        std::exception_ptr read_error;
        {
            std::vector<std::pair<runner*, bulk_lane*>> calls;
            calls.reserve(count);
            for (auto& lane : lanes) calls.emplace_back(this, lane.get());
            std::vector<std::jthread> threads;
            threads.reserve(count);
            for (auto& call : calls) detail::start_thread(threads, &runner::bulk_lane_entry, &call);
            const std::uint64_t after = detail::deref(batch_[batch_.size() - 1]).position();
            if (has_concurrent_read<event_store_type> && after < target) {
                read = true;
                try {
                    bulk_read(after, target, bulk_next_);
                } catch (...) {
                    read_error = std::current_exception();
                }
            }
        }  // joined

        pass_totals totals;
        const bulk_lane* first_failure = nullptr;
        for (auto& lane : lanes) {
            if (lane->error) {
                // The failure one thread applying the log in order would have met first.
                if (first_failure == nullptr || first_failure->failed == nullptr ||
                    (lane->failed != nullptr && lane->failed->position() < first_failure->failed->position()))
                    first_failure = lane.get();
            } else {
                totals.applied += lane->totals.applied;
                totals.skipped += lane->totals.skipped;
                totals.dead += lane->totals.dead;
            }
            changed_aggregates_.insert(changed_aggregates_.end(), lane->changed.begin(), lane->changed.end());
            lane->changed.clear();
            checkpoint_->aggregates_tracked += lane->tracked;
            lane->tracked = 0;
            counters_.dropped += lane->own_counters.dropped;
            lane->own_counters.dropped = 0;
            for (pending_event& e : lane->own_pending) pending_.push_back(std::move(e));
            lane->own_pending.clear();
        }
        if (first_failure != nullptr) {
            // A failure may come of a row two lanes saw differently: then it is no failure of the log's.
            if (std::optional<std::string> where = detail::key_touched_twice(lanes))
                throw detail::bulk_lanes_diverged{std::move(*where)};
            failed_ = first_failure->failed;
            std::rethrow_exception(first_failure->error);
        }
        // A failed read ahead is thrown when the pass gets to that read, as if it failed then.
        ahead.ready = read;
        ahead.error = read_error;
        return totals;
    }
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::bulk_read(std::uint64_t after, std::uint64_t target,
                                                typename event_store_type::batch& out) {
    const std::size_t size = std::max<std::size_t>(options_.bulk_read_size, 1);
    if constexpr (has_aggregate_range_read<event_store_type>) {
        if (!bulk_plan_.range().whole()) {
            store_->read_aggregates(after, target, bulk_plan_.range(), size, out);
            return;
        }
    }
    store_->read(after, static_cast<std::size_t>(std::min<std::uint64_t>(size, target - after)), out);
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::bulk_flush(std::vector<std::unique_ptr<bulk_lane>>& lanes, std::uint64_t from) {
    if constexpr (!bulk_capable) {
        (void)lanes, (void)from;
    } else {
        const auto dirty = [&] {
            std::size_t n = 0;
            for (const auto& lane : lanes)
                std::apply([&](const auto&... t) { n += (std::size_t{0} + ... + t.dirty_rows()); }, lane->tables);
            return n;
        };
        const std::size_t dirty_before = dirty();
        // The mark bits of aggregates numbered `from` or higher (all of them when `from` is 0).
        const auto mask_of = [from](std::size_t word) -> std::uint64_t {
            const std::uint64_t first = word * 64;
            if (from <= first) return ~std::uint64_t{0};
            if (from >= first + 64) return 0;
            return ~std::uint64_t{0} << (from - first);
        };
        const auto started = std::chrono::steady_clock::now();
        session_.begin();
        try {
            // Each table's rows of every lane in one key order (their keys are disjoint: checked).
            [&]<std::size_t... I>(std::index_sequence<I...>) {
                const auto write = [&]<std::size_t J>(std::integral_constant<std::size_t, J>) {
                    using table_t = std::tuple_element_t<J, bulk_tables>;
                    std::vector<table_t*> stores;
                    stores.reserve(lanes.size());
                    for (auto& lane : lanes) stores.push_back(&std::get<J>(lane->tables));
                    table_t::write_changes_of(std::span<table_t* const>(stores), from);
                };
                (write(std::integral_constant<std::size_t, I>{}), ...);
            }
            (std::make_index_sequence<std::tuple_size_v<bulk_tables>>{});
            if constexpr (session_reloads_checkpoint) {
                // The aggregates the lanes marked, each once and in number order, from their bits
                // (a lane's are disjoint from another's): no sort of one entry per applied event.
                std::size_t words = 0;
                for (const auto& lane : lanes) words = std::max(words, lane->marks.size());
                for (std::size_t w = 0; w < words; ++w) {
                    std::uint64_t bits = 0;
                    for (const auto& lane : lanes)
                        if (w < lane->marks.size()) bits |= lane->marks[w];
                    bits &= mask_of(w);
                    for (; bits != 0; bits &= bits - 1)
                        changed_aggregates_.push_back(w * 64 + static_cast<std::uint64_t>(std::countr_zero(bits)));
                }
            }
            session_.commit(*checkpoint_, changed_aggregates_);
        } catch (...) {
            session_.rollback();
            failed_ = nullptr;
            throw;
        }
        for (auto& lane : lanes) {
            std::apply([&](auto&... t) { ((t.flushed(from), bulk_rows_read_ += t.take_rows_read()), ...); },
                       lane->tables);
            for (std::size_t w = 0; w < lane->marks.size(); ++w) lane->marks[w] &= ~mask_of(w);
        }
        changed_aggregates_.clear();
        ++bulk_flushes_;
        ++batches_committed_;
        bulk_rows_flushed_ += dirty_before - dirty();
        flush_seconds_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    }
}

}  // namespace projectionist
