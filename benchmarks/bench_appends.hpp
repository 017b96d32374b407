#pragma once
// Comparison 9, appends at database speed: the event stores' append paths against hand-written
// loops that write the same rows. 9a/9b on SQLite (bench_appends_sqlite.cpp), 9c-9f on
// PostgreSQL (bench_appends_postgres.cpp). README.md, "9. Appends", says what every side does.

#include <cstdint>
#include <string>
#include <vector>

#include <boost/mp11/algorithm.hpp>

#include "bench_domain.hpp"
#include "harness.hpp"

namespace bench {

struct appends_options {
    std::string directory;          ///< where the SQLite files go (a fresh subdirectory)
    bool synchronous_full = true;   ///< PRAGMA synchronous=FULL (projectionist's default) or NORMAL, every side
    measure_options measure{0, 3};  ///< warm-up runs and repetitions per side (PROJECTIONIST_BENCH_APPEND_REPS)
    std::size_t chunk = 1000;       ///< 9b: events per batch append
    /// 9g: the log's size (PROJECTIONIST_BENCH_APPEND_GROWTH_EVENTS; below 2M, 9g is skipped)
    std::size_t growth_events = env_number("PROJECTIONIST_BENCH_APPEND_GROWTH_EVENTS", 3000000);
    std::size_t growth_chunk = 10000;  ///< 9g: events per batch append, each its own transaction
};

/// Calls `f(event)` with the record's typed event (`alternatives`: alternatives_of(history)).
template <class F>
void with_event(const std::vector<std::uint8_t>& alternatives, const pj::memory_event_store::record& rec, F&& f) {
    boost::mp11::mp_with_index<event_type_count>(alternatives[rec.type_id()], [&](auto I) {
        using E = boost::mp11::mp_at_c<ticket_events, decltype(I)::value>;
        f(pj::memory_event_store::event_of<E>(rec));
    });
}

/// 9a and 9b: appends the history's events, in log order, into a new SQLite log per side and
/// repetition: one `append` per event in one transaction (9a), batch appends of `chunk` events
/// (9b), and the raw loop (the baseline of both).
void bench_appends_sqlite(const pj::memory_event_store& history, const history_stats& stats,
                          const appends_options& options, std::vector<comparison>& out, std::vector<extra>& data);

/// 9g: batch appends into one log as it grows to `options.growth_events` events, the last
/// million's rate against the first's, beside the raw loop writing the same rows.
void bench_appends_sqlite_growth(const appends_options& options, std::vector<comparison>& out);

struct pg_appends_options {
    std::string url;                ///< the server (PROJECTIONIST_BENCH_PG_APPEND_URL, else PROJECTIONIST_BENCH_PG_URL)
    measure_options measure{0, 3};  ///< per side of 9c, 9d and 9e (PROJECTIONIST_BENCH_PG_APPEND_REPS)
    std::size_t writers = 16;       ///< 9c: concurrent writers, one connection each
    std::size_t concurrent_events = 20000;  ///< 9c: events appended per side and repetition
    std::size_t batch_events = 0;           ///< 9d: events of the one batch (0: the whole history)
    std::size_t live_events = 50000;        ///< 9e: the log the runner applies, from position 0
    std::size_t live_batch = 10000;         ///< 9e: the runner's batch size
    std::size_t readers = 4;                ///< 9f: concurrent readers
    double read_seconds = 3;                ///< 9f: how long each reader side runs
    std::string parts = "cdef";             ///< which of 9c-9f run (PROJECTIONIST_BENCH_PG_APPEND_PARTS)
};

/// 9c-9f on the PostgreSQL server `options.url`, each side in schemas of its own (dropped at the
/// end): concurrent single appends, one batch append, a writer's latency beside a live runner,
/// and the reader's guard. Without a server, or in a build without libpq, says so.
void bench_appends_postgres(const pj::memory_event_store& history, const history_stats& stats,
                            const pg_appends_options& options, std::vector<comparison>& out, std::vector<extra>& data);

}  // namespace bench
