#pragma once

/// The batch transaction: reading the log in batches, applying each in one transaction with its
/// checkpoint and emitted events, and what happens when a batch fails (undo, rebuild, dead letters).

#include <projectionist/runner/prefetch.hpp>
#include <projectionist/runner/runner.hpp>

namespace projectionist {

template <class Projection, class... Policies>
auto runner<Projection, Policies...>::process_until(std::uint64_t target) -> std::uint64_t {
    const auto started = std::chrono::steady_clock::now();
    if constexpr (partitioning::partitioned && has_aggregate_count<event_store_type>) {
        // One allocation of the exact size instead of growing by half: 8 bytes per aggregate.
        auto& versions = checkpoint_->aggregate_versions;
        const auto known = static_cast<std::size_t>(store_->aggregate_count());
        if (known > versions.size()) versions.resize(known, 0);
    }
    std::uint64_t applied = 0;
    if (bulk_eligible()) applied += bulk_until(target);  // stops early at its last flush if it must
    while (checkpoint_->position < target) {
        const std::size_t want =
            static_cast<std::size_t>(std::min<std::uint64_t>(options_.batch_size, target - checkpoint_->position));
        try {
            store_->read(checkpoint_->position, want, batch_);
        } catch (const lease_lost&) {
            count_error(error_kind::fenced);
            publish_progress();
            throw;
        } catch (const error&) {
            // The log cannot be read (the database failed, or holds what no store writes): no
            // event is at fault, and the runner stops with the reason in status().
            const std::exception_ptr cause = std::current_exception();
            fail(nullptr, cause, detail::is_connection_lost(cause) ? error_kind::connection : error_kind::storage);
        }
        if (batch_.empty()) break;
        // New event types are mapped here, before the batch's transaction: asking the store
        // inside it could wait on the store's lock while holding the database's write lock.
        if (store_->type_count() > type_map_.size()) refresh_type_map();
        if (options_.before_batch_begin) [[unlikely]]
            options_.before_batch_begin();
        const auto batch_started = std::chrono::steady_clock::now();
        applied += apply_batch();
        batch_seconds_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - batch_started).count());
        ++batches_committed_;
        last_event_recorded_at_ = detail::deref(batch_[batch_.size() - 1]).envelope_of().recorded_at;
        publish_progress();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    last_rate_ = seconds > 0 ? static_cast<double>(applied) / seconds : 0;
    return applied;
}

template <class Projection, class... Policies>
auto runner<Projection, Policies...>::apply_batch() -> std::uint64_t {
    batch_failures_.clear();
    // A record the store read but could not make sense of (a type id with no type, a field out
    // of range) is that event's failure, before any handler sees it.
    for (const auto& item : batch_) {
        const record_type& rec = detail::deref(item);
        std::string defect = detail::record_defect(rec);
        if (defect.empty()) [[likely]]
            continue;
        if constexpr (failure::skips) {
            mark_failed(rec, std::move(defect));
        } else {
            fail(&rec, std::make_exception_ptr(error(std::move(defect))));
        }
    }
    for (;;) {
        const std::uint64_t position_before = checkpoint_->position;
        const std::uint64_t tracked_before = checkpoint_->aggregates_tracked;
        const std::uint64_t dropped_before = counters_.dropped;
        const std::uint64_t emitted_before = emitted_;
        aggregate_undo_.clear();
        pending_.clear();
        changed_aggregates_.clear();
        pass_totals totals;
        failed_ = nullptr;
        try {
            if constexpr (has_prefetching_begin<storage_type>)
                session_.begin([this] { detail::prefetch_batch(handles_, batch_.begin(), batch_.end()); });
            else
                session_.begin();
        } catch (...) {
            // Nothing was written. Like a failed commit, this stops the runner with the reason
            // in status() (e.g. an unsliced runner of a projection that workers partition).
            const std::exception_ptr cause = std::current_exception();
            if (detail::is_lease_lost(cause)) {
                count_error(error_kind::fenced);
                publish_progress();
                std::rethrow_exception(cause);
            }
            fail(nullptr, cause);
        }
        try {
            if constexpr (!has_prefetching_begin<storage_type>)
                detail::prefetch_batch(handles_, batch_.begin(), batch_.end());
            // The hand-over of emission as it is inside this transaction: none can commit before
            // this batch does (it would lock this version's checkpoint), so it holds for the batch.
            load_window();
            context_.set_live(may_emit());
            totals = apply_records(batch_.begin(), batch_.end());
            checkpoint_->position = detail::deref(batch_[batch_.size() - 1]).position();
            filter_emissions();
            if constexpr (has_emit_writer) {
                if (emit_writer_) append_emitted(*emit_writer_);  // commits with the batch
            }
            session_.commit(*checkpoint_, changed_aggregates_);
        } catch (...) {
            // Undo everything the batch did: table writes, checkpoint, emitted events.
            const std::exception_ptr cause = std::current_exception();
            const record_type* current = failed_;  // null: the failure is not one event's
            bool tables_restored = false;
            try {
                tables_restored = session_.rollback();
            } catch (...) {
                // The cause is the error to report, not the rollback's (after SQLITE_FULL the
                // transaction is gone already): the tables are rebuilt or read back below.
            }
            counters_.dropped = dropped_before;
            emitted_ = emitted_before;  // appended in the transaction: rolled back with it
            pending_.clear();
            bool moved = false;
            const bool storage_failed = detail::is_storage_failure(cause);
            if constexpr (session_reloads_checkpoint) {
                try {
                    checkpoint_ = &session_.reload_checkpoint();  // the committed one, as it is in the database
                } catch (...) {
                    if (!storage_failed) throw;  // the database that failed may fail this read too
                }
                // Another runner of this version moved it: the batch failed because it was
                // stale (a row that runner wrote, say), not because of its events.
                moved = checkpoint_->position != position_before;
            } else if (tables_restored) {
                for (auto it = aggregate_undo_.rbegin(); it != aggregate_undo_.rend(); ++it)
                    checkpoint_->aggregate_versions[it->first] = it->second;
                checkpoint_->position = position_before;
                checkpoint_->aggregates_tracked = tracked_before;
            } else {
                rebuild_to(position_before, current, cause);  // recomputes the checkpoint too
            }
            if (detail::is_lease_lost(cause)) {
                // The worker's claim on this partition is gone: nothing was written, and the
                // new holder goes on from the checkpoint. Not this projection's failure.
                count_error(error_kind::fenced);
                publish_progress();
                std::rethrow_exception(cause);
            }
            if (storage_failed) {
                // The database failed, not an event: skipping events cannot help, and writing
                // dead letters would fail too (or record every later event as one).
                fail(nullptr, cause);
            }
            // Another process deleted the version under this runner (its tables are gone, so
            // a write failed, or its checkpoint, so the commit found it moved): stop, writing
            // nothing, rather than dead-lettering events or starting the version again.
            if (auto deleted = deleted_elsewhere())
                fail(nullptr, std::make_exception_ptr(state_error(*deleted)), error_kind::deleted);
            if (moved || detail::is_checkpoint_conflict(cause)) {
                // Another runner of this version got there first: go on from where it is
                // (a session that persists its checkpoint was read back above already).
                if constexpr (!session_reloads_checkpoint) checkpoint_ = &session_.reload_checkpoint();
                load_parked();
                count_error(error_kind::conflict);  // published with the next batch's progress
                return 0;
            }
            if constexpr (failure::skips) {
                if (current != nullptr) {
                    mark_failed(*current, detail::reason_of(cause));
                    continue;  // replay the batch without it
                }
            }
            fail(current, cause);
        }
        append_emitted(*store_);  // a store in another database: right after the commit
        events_applied_ += totals.applied;
        events_skipped_ += totals.skipped;
        events_dead_lettered_ += totals.dead;
        return totals.applied;
    }
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::rebuild_to(std::uint64_t position, const record_type* failed,
                                                 std::exception_ptr cause) {
    std::vector<std::uint64_t> dead;
    for (const dead_letter& d : session_.dead_letters()) dead.push_back(d.position);
    std::sort(dead.begin(), dead.end());
    clear_tables();
    std::fill(checkpoint_->aggregate_versions.begin(), checkpoint_->aggregate_versions.end(), 0);
    checkpoint_->aggregates_tracked = 0;
    context_.set_replaying(true);
    session_.begin();
    try {
        // Its own buffer: the failed batch (and `failed`) must stay intact for the retry.
        typename event_store_type::batch history;
        std::uint64_t at = 0;
        while (at < position) {
            store_->read(at, static_cast<std::size_t>(std::min<std::uint64_t>(options_.batch_size, position - at)),
                         history);
            if (history.empty()) break;
            replay_records(history.begin(), history.end(), dead);
            at = detail::deref(history[history.size() - 1]).position();
        }
        session_.commit(*checkpoint_, {});
    } catch (...) {
        try {
            session_.rollback();
        } catch (...) {
            // The two errors below are the ones to report, not the rollback's.
        }
        context_.set_replaying(false);
        fail(failed, std::make_exception_ptr(std::runtime_error(fmt::format(
                         "{}; then rebuilding the tables up to position {} failed ({}): are the "
                         "handlers deterministic?",
                         detail::reason_of(cause), position, detail::reason_of(std::current_exception())))));
    }
    context_.set_replaying(false);
    checkpoint_->position = position;
    aggregate_undo_.clear();
    changed_aggregates_.clear();
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::mark_failed(const record_type& rec, std::string reason) {
    if constexpr (partitioning::partitioned) parked_.emplace(rec.aggregate_number(), rec.position());
    batch_failures_.push_back({rec.position(), std::move(reason)});
    count_error(error_kind::handler);  // once per failed event: the replay records it as a dead letter
}

template <class Projection, class... Policies>
auto runner<Projection, Policies...>::dead_letter_if_marked(const record_type& rec) -> bool {
    for (const auto& f : batch_failures_) {
        if (f.position == rec.position()) {
            session_.record_dead_letter(make_dead_letter(rec, f.reason, false));
            return true;
        }
    }
    if constexpr (partitioning::partitioned) {
        if (parked_.empty()) return false;
        const auto it = parked_.find(rec.aggregate_number());
        if (it == parked_.end() || rec.position() <= it->second || !reads_type(rec)) return false;
        session_.record_dead_letter(make_dead_letter(
            rec, fmt::format("parked: an earlier event of this aggregate failed at position {}", it->second), true));
        return true;
    }
    return false;
}

template <class Projection, class... Policies>
auto runner<Projection, Policies...>::reads_type(const record_type& rec) -> bool {
    if (rec.type_id() >= type_map_.size()) refresh_type_map();
    return rec.type_id() < type_map_.size() && type_map_[rec.type_id()] != not_subscribed;
}

template <class Projection, class... Policies>
auto runner<Projection, Policies...>::make_dead_letter(const record_type& rec, std::string reason, bool parked) const
    -> dead_letter {
    return {rec.position(),
            std::string(rec.stream()),
            std::string(rec.aggregate_id()),
            rec.aggregate_number(),
            std::string(rec.type_name()),
            std::move(reason),
            parked};
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::fail(const record_type* rec, std::exception_ptr cause,
                                           std::optional<error_kind> kind) {
    count_error(kind ? *kind : detail::kind_of(cause, rec != nullptr));
    error_context where;
    where.projection = std::string(name_of<Projection>);
    if (rec) {
        where.position = rec->position();
        where.stream = std::string(rec->stream());
        where.aggregate_id = std::string(rec->aggregate_id());
        where.event_type = std::string(rec->type_name());
    }
    projection_error err(std::move(where), detail::reason_of(cause));
    error_ = err;
    connection_lost_ = detail::is_connection_lost(cause);
    publish_status();
    throw err;
}

template <class Projection, class... Policies>
template <class Target>
void runner<Projection, Policies...>::append_emitted(Target& target) {
    if (pending_.empty()) return;
    using S = typename Projection::emission_stream;
    if constexpr (!std::is_void_v<S>) {
        for (auto& p : pending_) {
            std::visit([&](auto& e) { target.append(S{}, p.aggregate_id, expected_version::any(), std::move(e)); },
                       p.event);
            ++emitted_;
        }
    }
    pending_.clear();
}

}  // namespace projectionist
