#pragma once
// Comparison 6, SQLite: the runner backfilling the tickets read model from a SQLite event log
// into a SQLite read model, against a hand-written loop on the raw sqlite3 API doing the same
// statements. See bench_sqlite.cpp and README.md ("6. SQLite backfill").

#include <string>
#include <vector>

#include "bench_domain.hpp"
#include "harness.hpp"

namespace bench {

struct sqlite_bench_options {
    std::string directory;               ///< where the log and the read-model files go (a fresh subdirectory)
    measure_options measure{0, 5};       ///< the group's own warm-up runs and repetitions
    bool synchronous_full = true;        ///< PRAGMA synchronous=FULL (projectionist's default) or NORMAL, on every side
    bool main = true;                    ///< the sides of 6a, 6b and 6c
    bool attribution = false;            ///< the sides that attribute costs (6x; not targets)
    bool preregister_aggregates = true;  ///< see write_log in bench_sqlite.cpp
};

/// Writes the history held by `history` into a SQLite log (once), then measures comparison 6
/// (6a, 6b, 6c; with `attribution`, 6x too) and appends the comparisons to `out` and what
/// describes the log to `data`.
void bench_sqlite(const pj::memory_event_store& history, const history_stats& stats,
                  const sqlite_bench_options& options, std::vector<comparison>& out, std::vector<extra>& data);

}  // namespace bench
