#pragma once

/// The bulk backfill: history replayed into a version that serves no queries yet at the speed of
/// memory. The handlers write to in-memory row stores (`bulk_table`) instead of the tables; at
/// each flush (the memory budget reached, or the end of the history) the changed rows are written
/// and the checkpoint moved in one transaction, so a crash resumes from the last flush with
/// nothing lost and nothing applied twice. Emission stays suppressed (bulk runs only when nothing
/// could be emitted). A handler that fails, or that needs what memory cannot serve (the raw
/// connection, a whole-table scan), makes the runner drop what it applied since the last flush
/// and go on in batch mode from there, where the failure policy sees the failing event as usual.

#include <algorithm>
#include <exception>
#include <tuple>
#include <utility>

#include <projectionist/runner/prefetch.hpp>
#include <projectionist/runner/runner.hpp>

namespace projectionist {

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

template <class Projection, class... Policies>
auto runner<Projection, Policies...>::bulk_until(std::uint64_t target) -> std::uint64_t {
    if constexpr (!bulk_capable) {
        (void)target;
        return 0;
    } else {
        bulk_tables tables =
            std::apply([](auto*... handle) { return bulk_tables{std::string(handle->name())...}; }, handles_);
        typename bulk_context_type::handle_tuple pointers =
            std::apply([](auto&... table) { return typename bulk_context_type::handle_tuple{&table...}; }, tables);
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            (std::get<I>(tables).attach(std::get<I>(handles_), std::get<I>(handles_)->size() == 0), ...);
        }
        (std::make_index_sequence<std::tuple_size_v<bulk_tables>>{});
        // However the pass ends, the tables' sources let go of what they hold for it.
        struct detach_at_end {
            bulk_tables& tables;
            ~detach_at_end() {
                std::apply([](auto&... t) { (t.detach(), ...); }, tables);
            }
        } detached{tables};

        bulk_context_type ctx(session_, pending_, counters_);
        ctx.bind_tables(pointers);
        ctx.set_envelope_source(
            [](const void* rec) noexcept { return static_cast<const record_type*>(rec)->envelope_of(); });
        ctx.set_live(live_);
        ctx.block_storage(true);

        // What to go back to when a pass fails: the last flush. A database session reads its
        // committed checkpoint back; memory keeps a copy.
        checkpoint committed;
        if constexpr (!session_reloads_checkpoint) committed = *checkpoint_;
        mode_ = "bulk";
        bulk_note_.clear();
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
            return std::apply([](const auto&... t) { return (std::size_t{0} + ... + t.approximate_bytes()); }, tables);
        };
        std::uint64_t flushed_position = checkpoint_->position;
        bool planned = false;  // the row stores were sized after the first batch
        const auto flush = [&] {
            if (checkpoint_->position == flushed_position) return;  // nothing read since the last one
            phase("flushing");
            bulk_flush(tables);
            flushed_position = checkpoint_->position;
            flushed += unflushed;
            events_applied_ += unflushed;
            events_skipped_ += skipped;
            unflushed = skipped = 0;
            if constexpr (!session_reloads_checkpoint) committed = *checkpoint_;
        };
        try {
            while (checkpoint_->position < target) {
                const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(
                    std::max<std::size_t>(options_.bulk_read_size, 1), target - checkpoint_->position));
                phase("reading");
                store_->read(checkpoint_->position, want, batch_);
                if (batch_.empty()) break;
                if (store_->type_count() > type_map_.size()) refresh_type_map();
                failed_ = nullptr;
                phase("applying");
                detail::prefetch_bulk(tables, batch_.begin(), batch_.end());
                const pass_totals totals = apply_records_as<false, false>(batch_.begin(), batch_.end(), ctx);
                checkpoint_->position = detail::deref(batch_[batch_.size() - 1]).position();
                last_event_recorded_at_ = detail::deref(batch_[batch_.size() - 1]).envelope_of().recorded_at;
                unflushed += totals.applied;
                skipped += totals.skipped;
                if (!planned) {
                    planned = true;
                    // A pair, not structured bindings: clang 14 cannot capture those in a lambda.
                    const std::pair<std::uint64_t, std::uint64_t> seen =
                        detail::aggregates_of(batch_.begin(), batch_.end());
                    std::apply(
                        [&](auto&... t) { (t.plan_rows(seen.first, seen.second, options_.bulk_memory_budget), ...); },
                        tables);
                }
                if (checkpoint_->position - flushed_position >= options_.bulk_flush_every) {
                    flush();
                } else if (memory() > options_.bulk_memory_budget) {
                    flush();
                    std::apply([](auto&... t) { (t.evict(), ...); }, tables);
                }
                publish_progress();
            }
            flush();
        } catch (...) {
            const std::exception_ptr cause = std::current_exception();
            // Nothing since the last flush reached the tables: forget it and go back there.
            if constexpr (session_reloads_checkpoint)
                checkpoint_ = &session_.reload_checkpoint();
            else
                *checkpoint_ = committed;
            changed_aggregates_.clear();
            mode_ = "batch";
            phase({});
            if (detail::is_lease_lost(cause)) std::rethrow_exception(cause);
            // Another runner of this version committed first: its rows are in the tables; go on
            // from its checkpoint in batch mode, as after a batch's checkpoint conflict.
            const bool moved = checkpoint_->position != flushed_position || detail::is_checkpoint_conflict(cause);
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
        return flushed;
    }
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::bulk_flush(bulk_tables& tables) {
    std::size_t rows = 0;
    std::apply([&](const auto&... t) { rows = (std::size_t{0} + ... + t.dirty_rows()); }, tables);
    const auto started = std::chrono::steady_clock::now();
    session_.begin();
    try {
        std::apply([](auto&... t) { (t.write_changes(), ...); }, tables);
        if constexpr (session_reloads_checkpoint) {
            std::sort(changed_aggregates_.begin(), changed_aggregates_.end());
            changed_aggregates_.erase(std::unique(changed_aggregates_.begin(), changed_aggregates_.end()),
                                      changed_aggregates_.end());
        }
        session_.commit(*checkpoint_, changed_aggregates_);
    } catch (...) {
        session_.rollback();
        failed_ = nullptr;
        throw;
    }
    std::apply([](auto&... t) { (t.flushed(), ...); }, tables);
    changed_aggregates_.clear();
    ++bulk_flushes_;
    ++batches_committed_;
    bulk_rows_flushed_ += rows;
    flush_seconds_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

}  // namespace projectionist
