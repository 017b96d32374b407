#pragma once
// Comparison 9, appends at database speed: the event stores' append paths against hand-written
// loops that write the same rows. 9a/9b on SQLite (bench_appends_sqlite.cpp). README.md, "9.
// Appends", says what every side does.

#include <string>
#include <vector>

#include "bench_domain.hpp"
#include "harness.hpp"

namespace bench {

struct appends_options {
    std::string directory;          ///< where the SQLite files go (a fresh subdirectory)
    bool synchronous_full = true;   ///< PRAGMA synchronous=FULL (projectionist's default) or NORMAL, every side
    measure_options measure{0, 3};  ///< warm-up runs and repetitions per side (PROJECTIONIST_BENCH_APPEND_REPS)
    std::size_t chunk = 1000;       ///< 9b: events per batch append
};

/// 9a and 9b: appends the history's events, in log order, into a new SQLite log per side and
/// repetition: one `append` per event in one transaction (9a), batch appends of `chunk` events
/// (9b), and the raw loop (the baseline of both).
void bench_appends_sqlite(const pj::memory_event_store& history, const history_stats& stats,
                          const appends_options& options, std::vector<comparison>& out, std::vector<extra>& data);

}  // namespace bench
