#pragma once
// Comparison 8f: the bulk backfill's apply phase on 2 threads against 1 (bench_bulk_parallel.cpp).

#include <string>
#include <vector>

#include <projectionist/store/memory_event_store.hpp>

#include "bench_domain.hpp"
#include "harness.hpp"

namespace bench {

struct bulk_parallel_options {
    std::string directory;          ///< where the SQLite files go (a fresh subdirectory)
    bool synchronous_full = true;   ///< PRAGMA synchronous=FULL (projectionist's default) or NORMAL
    unsigned repetitions = 3;       ///< timed repetitions per side (PROJECTIONIST_BENCH_BULK_PARALLEL_REPS)
    std::size_t read_size = 10000;  ///< both sides' bulk_read_size (PROJECTIONIST_BENCH_BULK_PARALLEL_READ)
};

/// Writes the history into a SQLite log of its own, then backfills it with 1 and 2 apply threads.
void bench_bulk_parallel(const pj::memory_event_store& history, const history_stats& stats,
                         const bulk_parallel_options& options, std::vector<comparison>& out, std::vector<extra>& data);

}  // namespace bench
