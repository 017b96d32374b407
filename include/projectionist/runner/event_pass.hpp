#pragma once

/// One pass over a batch's records: the per-event work (type map, per-aggregate positions, the
/// switch that calls the handler), kept free of what only failures and growth need.

#include <projectionist/runner/runner.hpp>

namespace projectionist {

/// What a pass keeps in registers. The bounds are re-read only when the vectors grow.
template <class Projection, class... Policies>
struct runner<Projection, Policies...>::pass_state {
    const std::uint16_t* map = nullptr;
    std::size_t map_size = 0;
    std::uint64_t* versions = nullptr;
    std::size_t versions_size = 0;
    std::uint64_t tracked = 0;      // aggregates applied for the first time in this pass
    std::uint64_t ignored = 0;      // records with no handler to run (another stream's, or unhandled)
    std::uint32_t slice_count = 1;  // per aggregate: the runner's partition slice (1: every aggregate)
    std::uint32_t slice_index = 0;
    pass_totals totals;
    std::vector<std::uint64_t>* changed = nullptr;  // where the aggregates it moves are listed
    // Instead of `changed` (a bulk pass): one bit per aggregate number, set when it moves, so that
    // an aggregate is listed once per flush however many of its events were applied.
    std::vector<std::uint64_t>* mark_words = nullptr;
    std::uint64_t* marks = nullptr;              // mark_words' data, at least versions_size bits
    std::uint64_t* current_aggregate = nullptr;  // pass_outputs::current_aggregate
};

/// The case of each slot: the handler of an entry, nothing for an unhandled or foreign event
/// (per aggregate its position moved already), an error for an event its stream does not list.
template <class Projection, class... Policies>
template <class Ctx>
struct runner<Projection, Policies...>::slot_visitor {
    runner& self;
    const record_type& rec;
    Ctx& ctx;
    pass_state& st;

    template <std::size_t I>
    PROJECTIONIST_ALWAYS_INLINE void operator()(std::integral_constant<std::size_t, I>) const {
        if constexpr (I < entry_count) {
            using E = typename boost::mp11::mp_at_c<entries, I>::event;
            ctx.set_record(&rec);  // the envelope is built only if the handler asks
            detail::invoke_handler(self.projection_, self.store_->template event_of<E>(rec), ctx);
        } else if constexpr (I == unknown_in_stream) {
            self.unknown_event(rec);
        } else {
            ++st.ignored;
        }
    }
};

template <class Projection, class... Policies>
void runner<Projection, Policies...>::refresh_type_map() {
    const std::uint32_t count = store_->type_count();
    for (std::uint32_t id = static_cast<std::uint32_t>(type_map_.size()); id < count; ++id) {
        const event_type_info info = store_->type_info(id);
        std::uint16_t slot = not_subscribed;
        // One loop over constant tables, not one unrolled comparison per event type: the
        // benchmark measured the unrolled form at ~0.6 s of compile time for 50 event types.
        for (std::size_t i = 0; i < subscription_keys.size(); ++i) {
            const type_key& key = subscription_keys[i];
            if (info.stream != key.stream || info.name != key.name) continue;
            if (info.cpp_type != nullptr && info.cpp_type != key.identity)
                throw error(
                    fmt::format("projectionist: '{}': the store holds stored event '{}' of stream '{}' as "
                                "another C++ type than the projection's",
                                name_of<Projection>, info.name, info.stream));
            slot = key.entry;
            break;
        }
        if (slot == not_subscribed)
            for (std::string_view stream : stream_names)
                if (info.stream == stream) slot = unknown_in_stream;
        // Globally, an event with no handler is simply passed over; per aggregate it still
        // moves its aggregate's position.
        if (!partitioning::partitioned && slot == subscribed_unhandled) slot = not_subscribed;
        type_map_.push_back(slot);
    }
}

template <class Projection, class... Policies>
template <class It>
auto runner<Projection, Policies...>::apply_records(It first, const It last, bool check_failures) -> pass_totals {
    // Per aggregate in memory journal mode every event also records its aggregate's old
    // position, and with skip_to_dead_letter a retried batch checks every record against the
    // failures: loops of their own, so that the common loop has neither on its path.
    constexpr bool can_journal = partitioning::partitioned && !session_reloads_checkpoint;
    if constexpr (failure::skips) {
        if (check_failures && (!batch_failures_.empty() || !parked_.empty())) {
            if constexpr (can_journal) {
                if (journaled_) return apply_records_as<true, true>(first, last, context_);
            }
            return apply_records_as<false, true>(first, last, context_);
        }
    }
    if constexpr (can_journal) {
        if (journaled_) return apply_records_as<true, false>(first, last, context_);
    }
    return apply_records_as<false, false>(first, last, context_);
}

template <class Projection, class... Policies>
template <class It>
void runner<Projection, Policies...>::replay_records(It first, const It last, const std::vector<std::uint64_t>& dead) {
    if (dead.empty()) {
        apply_records(first, last, false);
        return;
    }
    It from = first;
    auto next_dead = dead.begin();
    for (It it = first; it != last; ++it) {
        const std::uint64_t position = detail::deref(*it).position();
        while (next_dead != dead.end() && *next_dead < position) ++next_dead;
        if (next_dead != dead.end() && *next_dead == position) {
            apply_records(from, it, false);
            from = std::next(it);
        }
    }
    apply_records(from, last, false);
}

template <class Projection, class... Policies>
template <bool Journaled, bool Filtered, class It, class Ctx>
auto runner<Projection, Policies...>::apply_records_as(It first, const It last, const Ctx& context) -> pass_totals {
    return apply_records_into<Journaled, Filtered>(
        first, last, context, {&changed_aggregates_, &failed_, &checkpoint_->aggregates_tracked, nullptr});
}

template <class Projection, class... Policies>
template <bool Journaled, bool Filtered, class It, class Ctx>
auto runner<Projection, Policies...>::apply_records_into(It first, const It last, const Ctx& context, pass_outputs out)
    -> pass_totals {
    // The handlers get a copy of the context on this stack frame: when they are inlined and
    // never ask for the envelope, the compiler drops the per-event record bookkeeping.
    Ctx ctx = context;
    pass_state st;
    st.changed = out.changed;
    st.mark_words = out.marks;
    st.current_aggregate = out.current_aggregate;
    load_bounds(st);
    It it = first;
    // The inner loop, with or without the slice check: an unsliced runner (the common case) has
    // none on its path.
    auto pass = [&]<bool Sliced>(std::bool_constant<Sliced>) {
        for (; it != last; ++it) {
            const record_type& rec = detail::deref(*it);
            if constexpr (partitioning::partitioned && std::random_access_iterator<It>) {
                // The aggregates' positions are read in random order: fetch a few records ahead.
                constexpr std::ptrdiff_t ahead = 16;
                if (last - it > ahead) {
                    const std::uint64_t next = detail::deref(it[ahead]).aggregate_number();
                    if (next < st.versions_size) __builtin_prefetch(st.versions + next, 1);
                }
            }
            if constexpr (Filtered) {
                if (dead_letter_if_marked(rec)) {
                    ++st.totals.dead;
                    continue;
                }
                if (st.map_size != type_map_.size()) load_bounds(st);  // it may have mapped new types
            }
            if (!apply_record<Journaled, Sliced>(rec, ctx, st)) [[unlikely]]
                break;
        }
    };
    try {
        for (;;) {
            if (partitioning::partitioned && st.slice_count > 1)
                pass(std::bool_constant<partitioning::partitioned>{});
            else
                pass(std::false_type{});
            if (it == last) break;
            make_room(detail::deref(*it), st);  // then the inner loop applies it
        }
    } catch (...) {
        *out.failed = &detail::deref(*it);
        throw;
    }
    if constexpr (partitioning::partitioned) *out.tracked += st.tracked;
    st.totals.applied =
        static_cast<std::uint64_t>(std::distance(first, last)) - st.ignored - st.totals.skipped - st.totals.dead;
    return st.totals;
}

template <class Projection, class... Policies>
PROJECTIONIST_ALWAYS_INLINE void runner<Projection, Policies...>::load_bounds(pass_state& st) const {
    st.map = type_map_.data();
    st.map_size = type_map_.size();
    if constexpr (partitioning::partitioned) {
        st.slice_count = options_.slice.count;
        st.slice_index = options_.slice.index;
        st.versions = checkpoint_->aggregate_versions.data();
        st.versions_size = checkpoint_->aggregate_versions.size();
        if constexpr (session_reloads_checkpoint) {
            if (st.mark_words != nullptr) {
                const std::size_t words = (st.versions_size + 63) / 64;
                if (st.mark_words->size() < words) st.mark_words->resize(words, 0);
                st.marks = st.mark_words->data();
            }
        }
    }
}

template <class Projection, class... Policies>
template <bool Journaled, bool Sliced, class Ctx>
PROJECTIONIST_ALWAYS_INLINE auto runner<Projection, Policies...>::apply_record(const record_type& rec, Ctx& ctx,
                                                                               pass_state& st) -> bool {
    const std::uint32_t type = rec.type_id();
    if (type >= st.map_size) [[unlikely]]
        return false;
    const std::uint16_t slot = st.map[type];
    if constexpr (partitioning::partitioned) {
        if constexpr (Sliced) {
            if (partition_of(rec.stream(), rec.aggregate_id(), st.slice_count) != st.slice_index) {
                ++st.ignored;  // another partition's aggregate: its own runner applies it
                return true;
            }
        }
        if (slot <= subscribed_unhandled) {
            const std::uint64_t number = rec.aggregate_number();
            if (number >= st.versions_size) [[unlikely]]
                return false;
            if (!advance_aggregate<Journaled>(rec, number, st)) return true;  // applied before
        }
    }
    slot_visitor<Ctx> visit{*this, rec, ctx, st};
    detail::with_index<slot_count>(slot, visit);
    return true;
}

template <class Projection, class... Policies>
PROJECTIONIST_ALWAYS_INLINE void runner<Projection, Policies...>::make_room(const record_type& rec, pass_state& st) {
    if (rec.type_id() >= type_map_.size()) map_new_type(rec.type_id());
    if constexpr (partitioning::partitioned) {
        if (type_map_[rec.type_id()] <= subscribed_unhandled &&
            rec.aggregate_number() >= checkpoint_->aggregate_versions.size())
            grow_versions(rec.aggregate_number());
    }
    load_bounds(st);
}

template <class Projection, class... Policies>
template <bool Journaled>
PROJECTIONIST_ALWAYS_INLINE auto runner<Projection, Policies...>::advance_aggregate(const record_type& rec,
                                                                                    std::uint64_t number,
                                                                                    pass_state& st) -> bool {
    const std::uint64_t applied_version = st.versions[number];
    const std::uint64_t version = rec.aggregate_version();
    if (version != applied_version + 1) [[unlikely]] {
        if (version <= applied_version) {
            ++st.totals.skipped;
            return false;
        }
        detail::throw_version_gap(applied_version, version);
    }
    if constexpr (session_reloads_checkpoint) {
        // The storage writes their rows at commit.
        if (st.marks != nullptr) {  // a bulk pass
            st.marks[number >> 6] |= std::uint64_t{1} << (number & 63);
            if (st.current_aggregate != nullptr) *st.current_aggregate = number;
        } else {
            st.changed->push_back(number);
        }
    } else if constexpr (Journaled)
        aggregate_undo_.emplace_back(number, applied_version);  // undone with the tables
    // Here version == applied_version + 1, so this is "applied_version == 0", but it does not
    // wait for the (often missing) cache line of the position.
    st.tracked += version == 1 ? 1 : 0;
    st.versions[number] = version;
    return true;
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::map_new_type(std::uint32_t type) {
    refresh_type_map();
    if (type >= type_map_.size())
        throw std::runtime_error(fmt::format("the store returned event type id {}, which it does not list", type));
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::grow_versions(std::uint64_t number) {
    checkpoint_->aggregate_versions.resize(number + 1 + number / 2, 0);
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::unknown_event(const record_type& rec) const {
    throw std::runtime_error(
        fmt::format("unknown event type: stream '{}' has no event '{}' in this build's "
                    "stream<...> declaration (written by a newer application?)",
                    rec.stream(), rec.type_name()));
}

}  // namespace projectionist
