#pragma once
// What the shared backend suite's files have in common: the fixture of the backend under test,
// the tickets domain, and helpers that read a backend through its public API or portable SQL.

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <projectionist/storage/abilities.hpp>

#include <backend_fixture.hpp>
#include <tickets_domain.hpp>

/// Ends the test case, with a WARN that says why, on a backend without `ability` (a trait of
/// storage/abilities.hpp, or backend::speaks_sql): a skipped case is reported, never silent.
///
///     BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>, "a second storage object over one
///     database");
#define BACKEND_SKIP_UNLESS(ability, needs)                                                                 \
    do {                                                                                                    \
        if (!(ability)) {                                                                                   \
            WARN("skipped on " << backend_test::backend::name << ": needs " << needs << " (" #ability ")"); \
            return;                                                                                         \
        }                                                                                                   \
    } while (false)

namespace backend_test {

namespace pj = projectionist;
using namespace tickets_domain;

/// A record of a batch, whether the batch holds records (SQL) or pointers to them (memory).
template <class T>
const auto& record_of(const T& element) {
    if constexpr (std::is_pointer_v<T>)
        return *element;
    else
        return element;
}

/// The rows `handle.for_each` visits: in the order visited on a backend that scans in key order
/// (the suite checks that order there), sorted by key on one that does not (memory).
template <class Table, class Handle>
std::vector<typename Table::row_type> visited_rows(Handle& handle) {
    std::vector<typename Table::row_type> out;
    handle.for_each([&](const typename Table::row_type& r) { out.push_back(r); });
    if constexpr (!backend::scans_in_key_order)
        std::sort(out.begin(), out.end(),
                  [](const auto& a, const auto& b) { return Table::key_of(a) < Table::key_of(b); });
    return out;
}

/// Whether a store's codec writes text (JSON); false for a store without a codec (memory).
template <class Store>
constexpr bool text_codec() {
    if constexpr (requires { Store::codec::text; })
        return Store::codec::text;
    else
        return false;
}

/// The rows of a read-model table, by key, through the storage's own connection.
template <class Table, class Storage>
std::map<typename Table::key_type, typename Table::row_type> rows_of(Storage& storage, std::string_view name) {
    std::map<typename Table::key_type, typename Table::row_type> out;
    auto table = storage.template find_table<Table>(name);
    if (!table) return out;
    table->for_each([&](const typename Table::row_type& r) { out.emplace(Table::key_of(r), r); });
    return out;
}

/// A history of 60 tickets, some closed, some reopened: the same in any store.
template <class Store>
void history(Store& store, int count = 60, int first = 0) {
    for (int i = first; i < first + count; ++i)
        append_ticket(store, "t-" + std::to_string(i), i % 3 ? "bug" : "task", i % 4, i % 2 == 0);
}

/// The log's invariants, in SQL both dialects speak: positions 1..head without a hole (with
/// concurrent appends: no more events than the head, as a rolled-back append leaves a hole),
/// and every aggregate's versions 1..version without a hole.
/// Memory has no SQL to ask: its log is one vector, dense by construction.
inline bool log_consistent(backend& fx, db which = db::primary) {
    if (!backend::speaks_sql) return true;
    const auto events = fx.scalar("SELECT count(*) FROM projectionist_events", which);
    const auto head = fx.scalar("SELECT coalesce(max(position), 0) FROM projectionist_events", which);
    const auto holes = fx.scalar(
        "SELECT count(*) FROM projectionist_aggregates a WHERE a.version <> (SELECT count(*) FROM "
        "projectionist_events e WHERE e.stream = a.stream AND e.aggregate_id = a.aggregate_id) OR a.version <> "
        "(SELECT coalesce(max(e.aggregate_version), 0) FROM projectionist_events e WHERE e.stream = a.stream AND "
        "e.aggregate_id = a.aggregate_id)",
        which);
    return (backend::concurrent_appends ? events <= head : events == head) && holes == 0;
}

/// The time point `ns` nanoseconds from the epoch (negative: before it), at the clock's resolution.
inline std::chrono::system_clock::time_point at_ns(std::int64_t ns) {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(ns)));
}

/// What one process opens on the database: a store and a storage of its own.
struct connections {
    explicit connections(backend& fx) : store(fx.store()), storage(fx.storage()) {}
    backend::event_store_type store;
    backend::storage_type storage;
};

/// The tickets read model of the in-memory reference for `history()`.
template <class Projection, class Partitioning = pj::global>
std::map<std::string, ticket_row> reference_rows(int count = 60) {
    pj::memory_event_store store;
    pj::memory_storage storage;
    history(store, count);
    pj::runner<Projection, pj::memory_storage, Partitioning> r(store, storage);
    r.catch_up();
    std::map<std::string, ticket_row> out;
    storage.find_table<typename Projection::table>(pj::name_of<Projection>)->for_each([&](const ticket_row& row) {
        out.emplace(row.ticket_id, row);
    });
    return out;
}

}  // namespace backend_test
