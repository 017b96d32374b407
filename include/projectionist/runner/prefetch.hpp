#pragma once

/// Reading ahead the rows a batch of events will ask for. Which rows a handler reads is the
/// handler's business; the one guess that costs nothing to make is that a table keyed by text is
/// keyed by the events' aggregate ids (a ticket's row by the ticket's id). The rows of those keys
/// are read in one query per batch (storage/abilities.hpp: has_batch_prefetch in batch mode,
/// has_batched_find in a bulk backfill) before the handlers run; a wrong guess costs that query
/// and nothing else, since every read the guess missed is still answered by the table.

#include <algorithm>
#include <cstdint>
#include <span>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <projectionist/storage/abilities.hpp>

namespace projectionist::detail {

/// The aggregate ids of a batch's records as keys of type `Key`, and pointers to them.
template <class Key>
class aggregate_keys {
public:
    static constexpr bool possible = std::is_constructible_v<Key, std::string_view>;

    template <class It>
    std::span<const Key* const> of(It first, It last) {
        keys_.clear();
        pointers_.clear();
        if constexpr (possible) {
            for (It it = first; it != last; ++it) {
                if constexpr (std::is_pointer_v<std::remove_cvref_t<decltype(*it)>>)
                    keys_.emplace_back((*it)->aggregate_id());
                else
                    keys_.emplace_back(it->aggregate_id());
            }
            for (const Key& k : keys_) pointers_.push_back(&k);
        }
        return pointers_;
    }

private:
    std::vector<Key> keys_;
    std::vector<const Key*> pointers_;
};

/// Batch mode: right after `begin()`, a table handle with has_batch_prefetch and text keys reads
/// the rows of the records' aggregate ids.
template <class Handle, class It>
void prefetch_batch_one(Handle* h, It first, It last) {
    using key_type = typename Handle::key_type;
    if constexpr (has_batch_prefetch<Handle> && aggregate_keys<key_type>::possible) {
        if (h == nullptr) return;
        aggregate_keys<key_type> keys;
        h->prefetch(keys.of(first, last));
    } else {
        (void)h, (void)first, (void)last;
    }
}

/// prefetch_batch_one for every handle of `handles` (a tuple of pointers).
template <class Handles, class It>
void prefetch_batch(Handles& handles, It first, It last) {
    std::apply([&](auto*... handle) { (prefetch_batch_one(handle, first, last), ...); }, handles);
}

/// A bulk backfill: before a batch is applied, a bulk_table that may have to read rows back
/// (`prefetching()`) and has text keys reads those of the records' aggregate ids that are not in
/// memory.
template <class Table, class It>
void prefetch_bulk_one(Table& t, It first, It last) {
    using key_type = typename Table::key_type;
    if constexpr (aggregate_keys<key_type>::possible) {
        if (!t.prefetching()) return;
        aggregate_keys<key_type> keys;
        t.prefetch(keys.of(first, last));
    } else {
        (void)t, (void)first, (void)last;
    }
}

/// prefetch_bulk_one for every table of `tables` (a tuple).
template <class Tables, class It>
void prefetch_bulk(Tables& tables, It first, It last) {
    std::apply([&](auto&... table) { (prefetch_bulk_one(table, first, last), ...); }, tables);
}

/// The distinct aggregates of a batch's records, and one more than the highest aggregate number
/// among them (the store numbers aggregates densely from 0 in order of first appearance).
template <class It>
std::pair<std::uint64_t, std::uint64_t> aggregates_of(It first, It last) {
    std::vector<std::uint64_t> numbers;
    for (It it = first; it != last; ++it) {
        if constexpr (std::is_pointer_v<std::remove_cvref_t<decltype(*it)>>)
            numbers.push_back((*it)->aggregate_number());
        else
            numbers.push_back(it->aggregate_number());
    }
    std::sort(numbers.begin(), numbers.end());
    const auto distinct = static_cast<std::uint64_t>(std::unique(numbers.begin(), numbers.end()) - numbers.begin());
    return {distinct, numbers.empty() ? 0 : numbers[distinct - 1] + 1};
}

}  // namespace projectionist::detail
