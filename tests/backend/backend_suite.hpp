#pragma once
// What the shared backend suite's files have in common: the fixture of the backend under test,
// the tickets domain, and helpers that read a backend through its public API or portable SQL.

#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <backend_fixture.hpp>
#include <tickets_domain.hpp>

namespace backend_test {

namespace pj = projectionist;
using namespace tickets_domain;

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

/// The log's invariants, in SQL both dialects speak: positions 1..head without a hole, and
/// every aggregate's versions 1..version without a hole.
inline bool log_consistent(backend& fx, db which = db::primary) {
    const auto events = fx.scalar("SELECT count(*) FROM projectionist_events", which);
    const auto head = fx.scalar("SELECT coalesce(max(position), 0) FROM projectionist_events", which);
    const auto holes = fx.scalar(
        "SELECT count(*) FROM projectionist_aggregates a WHERE a.version <> (SELECT count(*) FROM "
        "projectionist_events e WHERE e.stream = a.stream AND e.aggregate_id = a.aggregate_id) OR a.version <> "
        "(SELECT coalesce(max(e.aggregate_version), 0) FROM projectionist_events e WHERE e.stream = a.stream AND "
        "e.aggregate_id = a.aggregate_id)",
        which);
    return events == head && holes == 0;
}

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
