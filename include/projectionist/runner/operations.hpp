#pragma once

/// The runner's operations: construction, init, backfill, catch-up, run, reset, remove, the live
/// flag, the state marks and the status snapshot.

#include <projectionist/detail/catalog_text.hpp>
#include <projectionist/detail/routing_text.hpp>
#include <projectionist/runner/runner.hpp>

namespace projectionist {

template <class Projection, class... Policies>
runner<Projection, Policies...>::runner(event_store_type& store, storage_type& storage, Projection projection,
                                        runner_options options)
    : store_(&store),
      session_(open_session(storage, options)),
      projection_(std::move(projection)),
      options_(options),
      context_(session_, pending_, counters_) {
    if (options_.batch_size == 0) options_.batch_size = 1;
    journaled_ = detail::journals_rollback(storage);
    context_.set_envelope_source(
        [](const void* rec) noexcept { return static_cast<const record_type*>(rec)->envelope_of(); });
    context_.set_position_source(
        [](const void* rec) noexcept -> std::uint64_t { return static_cast<const record_type*>(rec)->position(); });
    if constexpr (has_emit_writer) {
        if (store.same_database(session_.connection())) emit_writer_.emplace(store.writer_on(session_.connection()));
    }
    checkpoint_ = &session_.load_checkpoint();
    load_parked();
    if (auto entry = session_.find_catalog()) {
        state_ = entry->state;
        live_ = entry->live;
        generation_ = entry->generation;
        retain_until_ = entry->retain_until;
        if (state_ == projection_state::deleted) tombstone_ = entry;
        if (state_ != projection_state::deleted && entry->fingerprint.empty()) {
            // A row written before definitions were recorded: this code's is taken as the version's.
            catalog_entry upgraded = *entry;
            upgraded.fingerprint = fingerprint_text(fingerprint);
            upgraded.definition = definition();
            session_.save_catalog(upgraded);
        } else {
            check_definition(*entry);
        }
        // A version of another definition keeps its tables closed: only reset or remove may touch them.
        if (state_ != projection_state::declared && state_ != projection_state::deleted && !changed_) open_tables();
    }
    load_window();
    publish_status();
}

template <class Projection, class... Policies>
init_result runner<Projection, Policies...>::init() {
    sync_catalog();
    init_result result;
    result.created = !initialized();
    if (state_ == projection_state::deleted && tombstone_) {
        result.recreated = true;
        result.note =
            fmt::format("{} was deleted{}; init re-creates it (empty tables, history replayed from the start)",
                        name_of<Projection>, detail::deleted_when(*tombstone_));
    }
    require_same_definition();
    begin_lifecycle();
    try {
        if (initialized_meanwhile()) {
            // Another process initialized the version since this one looked (two starts at
            // once): init is idempotent, so its work stands and this one does nothing.
            session_.rollback();
            sync_catalog();
            publish_status();
            return {};
        }
    } catch (...) {
        session_.rollback();
        throw;
    }
    const projection_state next = initialized() ? state_ : projection_state::initialized;
    if (!initialized()) {
        ++generation_;
        retain_until_ = std::string(detail::declared_retention<Projection>());  // a re-created version starts afresh
    }
    try {
        if (!initialized()) require_no_foreign_rows();
        create_tables();
        if constexpr (detail::has_init_hook<Projection, context_type>) projection_.init(context_);
        session_.save_catalog(make_catalog_entry(next, live_));  // with the tables, atomically
        session_.commit(*checkpoint_, {});
    } catch (...) {
        session_.rollback();
        throw;
    }
    state_ = next;
    tombstone_.reset();
    publish_status();
    return result;
}

template <class Projection, class... Policies>
bool runner<Projection, Policies...>::initialized_meanwhile() const {
    if (initialized()) return false;
    const auto entry = session_.find_catalog();  // in the lifecycle transaction: what is committed now
    return entry && entry->state != projection_state::deleted && entry->state != projection_state::declared;
}

template <class Projection, class... Policies>
auto runner<Projection, Policies...>::backfill(const backfill_options& options) -> std::uint64_t {
    // This call's settings; the runner's own are back when it returns or throws.
    struct restore {
        runner_options& to;
        std::size_t budget;
        backfill_mode mode;
        ~restore() {
            to.bulk_memory_budget = budget;
            to.backfill = mode;
        }
    } const restored{options_, options_.bulk_memory_budget, options_.backfill};
    if (options.bulk_memory_budget) options_.bulk_memory_budget = *options.bulk_memory_budget;
    if (options.mode) options_.backfill = *options.mode;
    sync_catalog();
    if constexpr (kickoff::manual) {
        if (!initialized())
            throw state_error(
                fmt::format("projectionist: cannot backfill '{}': it is {} (manual kick-off); run "
                            "init first",
                            name_of<Projection>, to_string(state_)));
    } else {
        start_if_needed();
    }
    require_same_definition();
    require_not_failed("backfill");
    const std::uint64_t target = store_->head();
    const projection_state before = state_;
    tables_private_ = before == projection_state::initialized || before == projection_state::backfilling;
    if (before == projection_state::initialized || before == projection_state::caught_up)
        set_state(projection_state::backfilling);
    const std::uint64_t applied = process_until(target);
    if (state_ == projection_state::backfilling) set_state(projection_state::caught_up);
    publish_status();
    return applied;
}

template <class Projection, class... Policies>
auto runner<Projection, Policies...>::catch_up() -> std::uint64_t {
    sync_catalog();
    if (!start_if_needed()) {
        publish_status();
        return 0;
    }
    require_same_definition();
    require_not_failed("catch up");
    tables_private_ = state_ == projection_state::initialized || state_ == projection_state::backfilling;
    const std::uint64_t applied = process_until(std::numeric_limits<std::uint64_t>::max());
    if (state_ == projection_state::initialized || state_ == projection_state::backfilling)
        set_state(projection_state::caught_up);
    publish_status();
    return applied;
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::run(std::stop_token stop) {
    while (!stop.stop_requested()) {
        std::uint64_t applied = 0;
        try {
            applied = catch_up();
        } catch (const error& e) {
            if (!recover(
                    e, [](const detail::reconnect_attempt&) {}, [&] { return stop.stop_requested(); }))
                return;  // stopped: status() holds the reason
            continue;
        }
        if (applied != 0) continue;
        if (!initialized()) {
            sleep_for(options_.poll_interval, stop);
        } else if constexpr (has_event_wait<event_store_type>) {
            try {
                store_->wait_for_events(checkpoint_->position, options_.poll_interval, stop);
            } catch (const error&) {
                // The store cannot wait (its server is gone, say): the next catch-up reports why.
                sleep_for(options_.poll_interval, stop);
            }
        } else {
            sleep_for(options_.poll_interval, stop);
        }
    }
}

template <class Projection, class... Policies>
template <class Report, class ShouldStop>
bool runner<Projection, Policies...>::recover(const error& cause, Report&& report, ShouldStop&& should_stop) {
    if (!detail::connection_lost(cause) && !connection_lost()) return false;
    if (!error_) stop_on_lost_connection(cause);  // lost outside a batch (reading the catalog, say)
    bool back = false;
    try {
        back = detail::reconnect_with_backoff(
            options_.reconnect, cause.what(), [&] { return reconnect(); },
            [&] { return error_ ? std::string(error_->what()) : std::string(); },
            [&](const detail::reconnect_attempt& a) {
                note_reconnect(a);
                report(a);
            },
            should_stop);
    } catch (const error&) {
        return false;  // back, but the version failed otherwise: status() holds the reason
    }
    if (!back) {
        reconnect_note_ = fmt::format(
            "stopped: the database could not be reached in {} attempts to reconnect; resume() once it is back",
            options_.reconnect.attempts);
        publish_status();
    }
    return back;
}

template <class Projection, class... Policies>
bool runner<Projection, Policies...>::reconnect() {
    // A connection that was found lost is opened again by its first statement; one that was not
    // yet found lost fails that statement once first, so each read is tried a second time.
    auto twice = [](auto&& read) {
        try {
            read();
        } catch (const storage_error& e) {
            if (!e.connection_lost()) throw;
            read();
        }
    };
    try {
        twice([&] { sync_catalog(); });
        if (initialized()) {
            twice([&] { checkpoint_ = &session_.reload_checkpoint(); });
            load_parked();
        }
        twice([&] { (void)store_->head(); });
    } catch (const error& e) {
        if (!detail::connection_lost(e)) fail(nullptr, std::current_exception());
        stop_on_lost_connection(e);
        return false;
    }
    error_.reset();
    connection_lost_ = false;
    reconnect_note_.clear();
    publish_status();
    return true;
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::stop_on_lost_connection(const error& cause) {
    error_context where;
    where.projection = std::string(name_of<Projection>);
    if (!connection_lost()) count_error(error_kind::connection);  // once per loss, not per attempt to reconnect
    error_ = projection_error(std::move(where), cause.what());
    connection_lost_ = true;
    publish_status();
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::note_reconnect(const detail::reconnect_attempt& a) {
    reconnect_note_ = detail::describe(a);
    publish_status();
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::reset() {
    if (!initialized())
        throw state_error(fmt::format("projectionist: cannot reset '{}': it is {}; run init first", name_of<Projection>,
                                      to_string(state_)));
    const bool rebuild = changed_.has_value();
    const auto entry = rebuild ? session_.find_catalog() : std::nullopt;
    // A replay emits nothing (the window is forgotten below): what it still owes downstream
    // would be lost.
    load_window();
    require_no_debt("reset");
    begin_lifecycle();
    try {
        if constexpr (detail::has_reset_hook<Projection, context_type>)
            if (!rebuild) projection_.reset(context_);
        if (rebuild) {  // the tables were made by another definition: made again by this one
            bind_tables({});
            if (entry) drop_recorded_tables(*entry);
            create_tables();
        } else {
            clear_tables();
        }
        session_.reset_checkpoint();
        forget_window();  // a replay must not emit history again
        ++generation_;    // runners of this version in other processes reload their checkpoint
        catalog_entry reset_entry = make_catalog_entry(projection_state::initialized, false);
        reset_entry.fingerprint = fingerprint_text(fingerprint);  // this code's definition from now on
        reset_entry.definition = definition();
        session_.save_catalog(reset_entry);
        session_.commit(*checkpoint_, {});
    } catch (...) {
        session_.rollback();
        --generation_;
        checkpoint_ = &session_.load_checkpoint();  // what is committed, not what the reset cleared
        throw;
    }
    changed_.reset();
    recorded_.reset();
    settle_lifecycle(projection_state::initialized);
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::remove(remove_options options) {
    const auto entry = session_.find_catalog();
    if (entry && !options.force && !entry->retain_until.empty() && detail::utc_now_text(false) < entry->retain_until)
        throw state_error(
            fmt::format("projectionist: cannot delete {}: it is retained until {}; delete it on or after "
                        "that day, or force the delete (--force on the command line)",
                        name_of<Projection>, entry->retain_until));
    load_window();
    if (!options.force) require_no_debt("delete");
    begin_lifecycle();
    try {
        if constexpr (requires { session_.save_setting(std::string_view{}, std::string_view{}); }) {
            // The router forgets the version with its tables, or neither happens.
            const std::string key = detail::router_setting_key(Projection::base_name);
            if (auto saved = session_.find_setting(key))
                if (auto forgotten =
                        detail::routing::forget_deleted(*saved, Projection::base_name, name_of<Projection>))
                    session_.save_setting(key, *forgotten);
        }
        if constexpr (detail::has_remove_hook<Projection, context_type>) {
            if (initialized() && !changed_) projection_.remove(context_);
        }
        if (entry) drop_recorded_tables(*entry);
        session_.reset_checkpoint();
        forget_window();
        catalog_entry tombstone = make_catalog_entry(projection_state::deleted, false);
        tombstone.tables.clear();
        tombstone.deleted_at = detail::utc_now_text();
        tombstone.deleted_by = options.by;
        if (entry) {
            tombstone.fingerprint = entry->fingerprint.empty() ? tombstone.fingerprint : entry->fingerprint;
            tombstone.definition = entry->definition.empty() ? tombstone.definition : entry->definition;
            tombstone.retain_until = entry->retain_until;
        }
        session_.save_catalog(tombstone);
        session_.commit(*checkpoint_, {});
        tombstone_ = std::move(tombstone);
    } catch (...) {
        session_.rollback();
        checkpoint_ = &session_.load_checkpoint();
        throw;
    }
    bind_tables({});
    tables_open_ = false;
    changed_.reset();  // a deleted version has no definition or tables to find fault with
    recorded_.reset();
    settle_lifecycle(projection_state::deleted);
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::settle_lifecycle(projection_state state) {
    checkpoint_ = &session_.load_checkpoint();
    parked_.clear();
    error_.reset();
    live_ = false;
    state_ = state;
    publish_status();
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::set_live(bool live) {
    sync_catalog();
    if (!initialized())
        throw state_error(fmt::format("projectionist: cannot make '{}' {}: it is {}; run init and backfill first",
                                      name_of<Projection>, live ? "live" : "not live", to_string(state_)));
    if (live) require_same_definition();
    if constexpr (hands_over_emission) {
        hand_over(live);
    } else {
        live_ = live;
        save_catalog();
    }
    publish_status();
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::retain_until(std::string_view date) {
    if (!date.empty() && !detail::is_day(date))
        throw error(fmt::format("projectionist: the retention date of '{}' must be a day, YYYY-MM-DD; '{}' is not one",
                                name_of<Projection>, date));
    sync_catalog();
    if (!initialized())
        throw state_error(fmt::format("projectionist: cannot retain '{}': it is {}; run init first",
                                      name_of<Projection>, to_string(state_)));
    retain_until_ = std::string(date);
    save_catalog();
    publish_status();
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::refresh() {
    sync_catalog();
    if constexpr (session_reloads_checkpoint) {
        if (initialized()) {
            checkpoint_ = &session_.reload_checkpoint();  // another process may have moved it
            load_parked();
        }
    }
    publish_status();
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::require_markable(projection_state s) {
    sync_catalog();
    if (s != projection_state::serving && s != projection_state::retired && s != projection_state::caught_up)
        throw state_error(
            fmt::format("projectionist: '{}' cannot be marked {}: init, backfill, reset and "
                        "remove move those states",
                        name_of<Projection>, to_string(s)));
    if (!initialized())
        throw state_error(fmt::format("projectionist: cannot mark '{}' {}: it is {}; run init first",
                                      name_of<Projection>, to_string(s), to_string(state_)));
    if (s != projection_state::retired) require_same_definition();
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::mark(projection_state s) {
    require_markable(s);
    set_state(s);
    publish_status();
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::serve_exclusively() {
    static_assert(has_serving_switch<storage_type>,
                  "projectionist: runner::serve_exclusively() needs a storage with has_serving_switch; mark(serving) "
                  "and mark(retired) write one version each");
    require_markable(projection_state::serving);
    if (!session_.switch_serving(Projection::base_name)) {
        sync_catalog();  // another process may have moved the row: say where it is now
        throw state_error(
            fmt::format("projectionist: {} cannot serve queries: the catalog says it is {}, and a version serves "
                        "only once it has caught up; nothing was switched",
                        name_of<Projection>, to_string(state_)));
    }
    state_ = projection_state::serving;
    publish_status();
}

template <class Projection, class... Policies>
auto runner<Projection, Policies...>::status() const -> runner_status {
    runner_status s;
    {
        std::lock_guard lock(status_mutex_);
        s = status_;  // the text: name, fingerprint, error, note
    }
    progress_.load().into(s);  // the numbers of the last batch, without waiting for it
    try {
        s.head = store_->head();
    } catch (const error&) {
        // The log cannot be read (its server is gone, say): the rest of the snapshot still is.
        s.head = s.position;
    }
    s.lag = s.head > s.position ? s.head - s.position : 0;
    if (s.lag != 0 && s.last_event_recorded_at) {
        // behind: when the newest event was recorded, for the lag in seconds (one record read)
        typename event_store_type::batch newest;
        store_->read(s.head - 1, 1, newest);
        if (!newest.empty()) s.head_recorded_at = detail::deref(newest[0]).envelope_of().recorded_at;
    }
    return s;
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::sleep_for(std::chrono::milliseconds duration, std::stop_token stop) {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    cv.wait_for(lock, stop, duration, [] { return false; });
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::publish_progress() noexcept {
    detail::runner_progress p;
    p.state = error_ ? projection_state::stopped : state_;
    p.catalog_state = state_;
    p.live = live_;
    p.dormant = kickoff::manual && !initialized();
    p.mode = mode_;
    p.bulk_flushes = bulk_flushes_;
    p.bulk_rows_flushed = bulk_rows_flushed_;
    p.bulk_rows_read = bulk_rows_read_;
    p.bulk_passes = bulk_passes_;
    p.batches_committed = batches_committed_;
    p.batch_seconds = batch_seconds_;
    p.flush_seconds = flush_seconds_;
    p.last_event_recorded_at = last_event_recorded_at_;
    p.position = checkpoint_->position;
    p.aggregates_tracked = checkpoint_->aggregates_tracked;
    p.events_applied = events_applied_;
    p.events_skipped = events_skipped_;
    p.events_dead_lettered = events_dead_lettered_;
    p.parked_aggregates = parked_.size();
    p.events_per_second = last_rate_;
    p.emitted = emitted_;
    p.dropped = counters_.dropped;
    p.errors = errors_;
    progress_.store(p);
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::publish_status() {
    {
        std::lock_guard lock(status_mutex_);
        status_.name = std::string(name_of<Projection>);
        status_.partitioning = partitioning::name;
        status_.fingerprint = fingerprint_text(fingerprint);
        status_.error = changed_ ? changed_ : error_ ? std::optional<std::string>(error_->what()) : std::nullopt;
        status_.retain_until = retain_until_;
        if (kickoff::manual && !initialized())
            status_.note = "dormant: manual kick-off, waiting for init";
        else if (error_ && !reconnect_note_.empty())
            status_.note = reconnect_note_;
        else if (error_)
            status_.note = "stopped after an error; resume() or reset() to continue";
        else if (state_ == projection_state::deleted)
            status_.note = fmt::format("deleted{}; only an explicit init re-creates it",
                                       tombstone_ ? detail::deleted_when(*tombstone_) : std::string());
        else if (!bulk_note_.empty())
            status_.note = bulk_note_;
        else
            status_.note.clear();
    }
    publish_progress();
}

}  // namespace projectionist
