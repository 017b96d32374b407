#pragma once

/// The runner's part of the catalog: taking in what other processes changed, the version's tables,
/// the catalog row it writes, and the transaction of init, reset and remove.

#include <projectionist/detail/catalog_text.hpp>
#include <projectionist/detail/text.hpp>
#include <projectionist/runner/runner.hpp>

namespace projectionist {

template <class Projection, class... Policies>
void runner<Projection, Policies...>::sync_catalog() {
    const auto entry = session_.find_catalog();
    if (!entry || entry->state == projection_state::deleted) {
        if (initialized()) {  // removed elsewhere: its tables are gone
            bind_tables({});
            tables_open_ = false;
            state_ = projection_state::deleted;
            checkpoint_ = &session_.reload_checkpoint();
        }
        if (entry) {  // a tombstone: deleted, whatever this process saw before
            state_ = projection_state::deleted;
            live_ = false;
            window_.reset();
            generation_ = entry->generation;
            tombstone_ = entry;
        }
        return;
    }
    tombstone_.reset();
    check_definition(*entry);
    retain_until_ = entry->retain_until;
    live_ = entry->live;
    load_window();
    const bool was_initialized = initialized();
    state_ = entry->state;
    if (entry->generation != generation_ || (!was_initialized && initialized())) {
        generation_ = entry->generation;
        checkpoint_ = &session_.reload_checkpoint();
        load_parked();
        error_.reset();
        if (initialized() && !changed_) open_tables();
    }
    // Tables found missing stay closed, and are looked for again: another process may have reset
    // the version since.
    if (initialized() && !changed_ && !tables_open_) open_tables();
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::load_parked() {
    parked_.clear();
    if constexpr (failure::skips && partitioning::partitioned) {
        for (const dead_letter& d : session_.dead_letters())
            if (!d.parked) parked_.emplace(d.aggregate_number, d.position);
    }
}

template <class Projection, class... Policies>
auto runner<Projection, Policies...>::start_if_needed() -> bool {
    if (initialized()) return true;
    if constexpr (kickoff::manual) {
        return false;
    } else {
        // Only a version never initialized starts itself: a deleted one stays deleted until
        // init is run again (the next catch-up must not bring back what was just dropped).
        if (state_ == projection_state::deleted) return false;
        init();
        return true;
    }
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::require_not_failed(std::string_view what) const {
    if (error_)
        throw state_error(fmt::format("projectionist: cannot {} '{}': it stopped after an error ({}); fix the "
                                      "cause and call resume(), or reset()",
                                      what, name_of<Projection>, error_->what()),
                          error_->context());
}

template <class Projection, class... Policies>
template <std::size_t... I>
void runner<Projection, Policies...>::create_tables_impl(std::index_sequence<I...>) {
    using list = detail::tables_of<Projection>;
    typename context_type::handle_tuple handles{&session_.template create_table<boost::mp11::mp_at_c<list, I>>(
        detail::table_name_v<Projection, boost::mp11::mp_at_c<list, I>>)...};
    bind_tables(handles);
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::create_tables() {
    create_tables_impl(std::make_index_sequence<boost::mp11::mp_size<detail::tables_of<Projection>>::value>{});
}

template <class Projection, class... Policies>
template <std::size_t... I>
void runner<Projection, Policies...>::require_no_foreign_rows_impl(std::index_sequence<I...>) {
    using list = detail::tables_of<Projection>;
    std::vector<std::string> found;
    [[maybe_unused]] const auto note_rows = [&](auto* handle, std::string_view name) {
        if (handle == nullptr) return;
        if (const std::size_t rows = handle->size(); rows != 0)
            found.push_back(fmt::format("{} ({} row{})", name, rows, rows == 1 ? "" : "s"));
    };
    (note_rows(session_.template open_table<boost::mp11::mp_at_c<list, I>>(
                   detail::table_name_v<Projection, boost::mp11::mp_at_c<list, I>>),
               detail::table_name_v<Projection, boost::mp11::mp_at_c<list, I>>),
     ...);
    if (found.empty()) return;
    // The version has no tables of its own (it is declared, or deleted, which dropped them): these
    // were made by something else. Adopting them would mix rows the log did not produce into the
    // read model, and a later delete would drop them.
    const bool one = found.size() == 1;
    throw state_error(
        fmt::format("projectionist: cannot init {0}: it is {1} in the catalog and has no tables yet, but {2} with its "
                    "table names already hold{3} rows: {4}. Made by something else, they would mix into the read model "
                    "that the log builds, and a delete of {0} would drop them; rename or drop {5} first",
                    name_of<Projection>, to_string(state_), one ? "a table" : "tables", one ? "s" : "",
                    detail::join(found), one ? "that table" : "those tables"));
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::require_no_foreign_rows() {
    require_no_foreign_rows_impl(
        std::make_index_sequence<boost::mp11::mp_size<detail::tables_of<Projection>>::value>{});
}

template <class Projection, class... Policies>
template <std::size_t... I>
void runner<Projection, Policies...>::open_tables_impl(std::index_sequence<I...>) {
    using list = detail::tables_of<Projection>;
    typename context_type::handle_tuple handles{session_.template open_table<boost::mp11::mp_at_c<list, I>>(
        detail::table_name_v<Projection, boost::mp11::mp_at_c<list, I>>)...};
    std::vector<std::string_view> missing;
    [[maybe_unused]] const auto note_missing = [&](const auto* handle, std::string_view name) {
        if (handle == nullptr) missing.push_back(name);
    };
    (note_missing(std::get<I>(handles), detail::table_name_v<Projection, boost::mp11::mp_at_c<list, I>>), ...);
    if (!missing.empty()) {
        // Dropped behind the catalog's back. As with a changed definition, the version refuses
        // everything but reset (which makes its tables again) and remove, and says so in its
        // status: the process starts, and the other versions are not held up.
        changed_ = fmt::format(
            "projectionist: {} is {} in the catalog, but its table{} {} {} missing; reset {} to make its "
            "tables again and replay the log, or delete it",
            name_of<Projection>, to_string(state_), missing.size() == 1 ? "" : "s", detail::join(missing),
            missing.size() == 1 ? "is" : "are", name_of<Projection>);
        return;
    }
    bind_tables(handles);
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::open_tables() {
    open_tables_impl(std::make_index_sequence<boost::mp11::mp_size<detail::tables_of<Projection>>::value>{});
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::bind_tables(const typename context_type::handle_tuple& handles) {
    handles_ = handles;
    context_.bind_tables(handles);
    tables_open_ = true;
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::clear_tables() {
    if (!tables_open_) open_tables();
    if (!tables_open_) throw state_error(*changed_);  // some are missing: changed_ says which
    std::apply([](auto*... table) { (table->clear(), ...); }, handles_);
}

template <class Projection, class... Policies>
auto runner<Projection, Policies...>::make_catalog_entry(projection_state state, bool live) const -> catalog_entry {
    catalog_entry e;
    e.name = std::string(name_of<Projection>);
    e.base_name = std::string(Projection::base_name);
    e.version = Projection::version;
    e.state = state;
    e.live = live;
    e.partitioning = std::string(partitioning::name);
    e.generation = generation_;
    // A version of another definition keeps the recorded one: only reset replaces it.
    e.fingerprint = recorded_ ? recorded_->first : fingerprint_text(fingerprint);
    e.definition = recorded_ ? recorded_->second : definition();
    e.retain_until = retain_until_;
    boost::mp11::mp_for_each<detail::tables_of<Projection>>(
        [&](auto t) { e.tables.emplace_back(detail::table_name_v<Projection, decltype(t)>); });
    return e;
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::check_definition(const catalog_entry& entry) {
    if (entry.state == projection_state::deleted || entry.fingerprint.empty() ||
        entry.fingerprint == fingerprint_text(fingerprint)) {
        changed_.reset();
        recorded_.reset();
        return;
    }
    recorded_.emplace(entry.fingerprint, entry.definition);
    if (!changed_) count_error(error_kind::definition);  // once per refused definition, not per refusal
    changed_ = fmt::format(
        "projectionist: {} changed since it was initialized: {}; deploy it as {}_v{}, or reset {} to rebuild it",
        name_of<Projection>, definition_changes(entry.definition, definition()), Projection::base_name,
        Projection::version + 1, name_of<Projection>);
}

template <class Projection, class... Policies>
auto runner<Projection, Policies...>::deleted_elsewhere() const -> std::optional<std::string> {
    if (!initialized()) return std::nullopt;
    const auto entry = session_.find_catalog();
    if (entry && entry->state != projection_state::deleted) return std::nullopt;
    return fmt::format(
        "projectionist: {} was deleted by another process{} while this runner ran it; nothing of "
        "the batch was written, and nothing more is applied (init re-creates the version)",
        name_of<Projection>, entry ? detail::deleted_when(*entry) : std::string());
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::drop_recorded_tables(const catalog_entry& entry) {
    // Only the version's own tables: its name, or its name and a table suffix (an earlier
    // definition of the version may have had other suffixes). A catalog row edited to list any
    // other table (the event log, another version's) is refused before anything is dropped.
    const std::string_view own = name_of<Projection>;
    for (const std::string& t : entry.tables) {
        const bool owned = t == own || (t.size() > own.size() + 1 && t.starts_with(own) && t[own.size()] == '_');
        if (!owned)
            throw error(
                fmt::format("projectionist: the catalog row of {} lists the table '{}', which is not one of "
                            "its tables (they are named {} or {}_<suffix>); nothing was dropped. Correct the "
                            "row's tables in projectionist_catalog",
                            own, t, own, own));
    }
    for (const std::string& t : entry.tables) session_.drop_table(t);
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::set_state(projection_state s) {
    session_.save_catalog(make_catalog_entry(s, live_));  // a failed write changes nothing here either
    state_ = s;
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::begin_lifecycle() {
    if constexpr (has_lifecycle_transactions<storage_type>)
        session_.begin_lifecycle();
    else
        session_.begin();
}

template <class Projection, class... Policies>
auto runner<Projection, Policies...>::open_session(storage_type& storage, const runner_options& options) ->
    typename storage_type::session {
    if (options.slice.whole()) return storage.open(name_of<Projection>);
    detail::check_slice(options.slice, name_of<Projection>);
    if constexpr (!partitioning::partitioned) {
        throw error(
            fmt::format("projectionist: '{}': runner_options::slice {}/{} on a global projection; only a "
                        "per_aggregate projection is split into partitions (a global one runs whole, "
                        "in one worker at a time)",
                        name_of<Projection>, options.slice.index, options.slice.count));
    } else if constexpr (has_slices<storage_type>) {
        return storage.open(name_of<Projection>, options.slice);
    } else {
        throw error(
            fmt::format("projectionist: '{}': runner_options::slice needs a storage that keeps a "
                        "checkpoint per partition (storage.open(name, slice), e.g. postgres_storage)",
                        name_of<Projection>));
    }
}

}  // namespace projectionist
