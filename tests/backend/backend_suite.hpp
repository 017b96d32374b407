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

/// What a skipped case reports: the backend, what the case needs, and the ability it lacks (as written).
#define BACKEND_WARN_SKIPPED(ability_text, needs) \
    WARN("skipped on " << backend_test::backend::name << ": needs " << needs << " (" << ability_text << ")")

/// Ends the test case, with a WARN that says why, on a backend without `ability` (a trait of
/// storage/abilities.hpp, or a flag of the fixture such as backend::speaks_sql): a skipped case is
/// reported, never silent. What follows must compile on every backend.
///
///     BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>, "a second storage object over one
///     database");
#define BACKEND_SKIP_UNLESS(ability, needs)        \
    do {                                           \
        if (!(ability)) {                          \
            BACKEND_WARN_SKIPPED(#ability, needs); \
            return;                                \
        }                                          \
    } while (false)

/// A TEST_CASE (TEMPLATE_TEST_CASE) whose body is compiled only for a backend with `ability`: on
/// another it is registered all the same and ends with a WARN that says why (BACKEND_SKIP_UNLESS).
/// The body is a function template of the fixture type, named `backend` in it as everywhere else,
/// so that what the backend lacks (a store's SQL connection, its codec, a fixture member) is never
/// instantiated for it; being a template, it spells `fx.template make<TestType>(...)`.
///
///     BACKEND_TEMPLATE_TEST_CASE_IF(backend::reopens, "a database to reopen", "the log survives ...",
///                                   "[backend][store]", backend::event_store_type, backend::json_event_store_type) {
///         backend fx;   // the fixture, as in any case
#define BACKEND_TEST_CASE_IF(ability, needs, ...) \
    BACKEND_TEST_CASE_IF_(__COUNTER__, ability, #ability, needs, __VA_ARGS__)
#define BACKEND_TEMPLATE_TEST_CASE_IF(ability, needs, name, tags, ...) \
    BACKEND_TEMPLATE_TEST_CASE_IF_(__COUNTER__, ability, #ability, needs, name, tags, __VA_ARGS__)

#define BACKEND_CASE_BODY_(id) BACKEND_CASE_BODY_CAT_(backend_case_body_, id)
#define BACKEND_CASE_BODY_CAT_(a, b) a##b
#define BACKEND_TEST_CASE_IF_(id, ability, ability_text, needs, ...) \
    template <class backend = backend_test::backend>                 \
    static void BACKEND_CASE_BODY_(id)();                            \
    TEST_CASE(__VA_ARGS__) {                                         \
        if constexpr (ability)                                       \
            BACKEND_CASE_BODY_(id)<>();                              \
        else                                                         \
            BACKEND_WARN_SKIPPED(ability_text, needs);               \
    }                                                                \
    template <class backend>                                         \
    static void BACKEND_CASE_BODY_(id)()
#define BACKEND_TEMPLATE_TEST_CASE_IF_(id, ability, ability_text, needs, name, tags, ...) \
    template <class TestType, class backend = backend_test::backend>                      \
    static void BACKEND_CASE_BODY_(id)();                                                 \
    TEMPLATE_TEST_CASE(name, tags, __VA_ARGS__) {                                         \
        if constexpr (ability)                                                            \
            BACKEND_CASE_BODY_(id)<TestType>();                                           \
        else                                                                              \
            BACKEND_WARN_SKIPPED(ability_text, needs);                                    \
    }                                                                                     \
    template <class TestType, class backend>                                              \
    static void BACKEND_CASE_BODY_(id)()

/// Runs the rest of the test case once per backfill mode of the backend (backend_test::backfill_runs),
/// as `run`; a failure names the mode.
///
///     BACKEND_BACKFILL_MODES(run);
///     pj::runner<tickets<2>, backend::storage_type> r(store, storage, run({.batch_size = 17}));
#define BACKEND_BACKFILL_MODES(run)                                                                                    \
    const ::backend_test::backfill_run run = GENERATE(Catch::Generators::from_range(::backend_test::backfill_runs())); \
    INFO("backfill mode: " << run.name)

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

/// How a runner case replays history into a version that serves no queries yet. The runner cases
/// run once per mode, by a Catch GENERATE over `backfill_runs()` (BACKEND_BACKFILL_MODES), so that
/// one instantiation of a case serves both: bulk (the default there) and batch on a database; on
/// memory, whose tables are the in-memory row store a bulk backfill builds, batch only (bulk is not
/// compiled for it).
struct backfill_run {
    std::string_view name;
    pj::backfill_mode mode = pj::backfill_mode::batch;

    [[nodiscard]] bool bulk() const noexcept { return mode == pj::backfill_mode::bulk; }
    /// `options`, the case's own (a batch size, say), in this mode.
    [[nodiscard]] pj::runner_options operator()(pj::runner_options options = {}) const {
        options.backfill = mode;
        return options;
    }
};

inline std::vector<backfill_run> backfill_runs() {
    if constexpr (pj::has_persisted_checkpoint<backend::storage_type>)
        return {{"bulk", pj::backfill_mode::bulk}, {"batch", pj::backfill_mode::batch}};
    else
        return {{"batch", pj::backfill_mode::batch}};
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
