#pragma once
// Comparison 6d, PostgreSQL: the runner backfilling the tickets read model from a PostgreSQL
// event log into a PostgreSQL read model, against a hand-written libpq loop doing the same work
// by the same method. See bench_postgres.cpp and README.md ("6d. PostgreSQL backfill").

#include <vector>

#include "bench_domain.hpp"
#include "harness.hpp"

namespace bench {

/// Writes the history held by `history` into a PostgreSQL log (once), then measures comparison
/// 6d and appends it to `out` and what describes the log to `data`. The server is the one named
/// by PROJECTIONIST_BENCH_PG_URL (run.sh starts a private one); repetitions and warm-up runs
/// come from PROJECTIONIST_BENCH_PG_REPS and PROJECTIONIST_BENCH_PG_WARMUP. Without a server, or
/// in a build without libpq, it says so and measures nothing.
void bench_postgres(const pj::memory_event_store& history, const history_stats& stats, std::vector<comparison>& out,
                    std::vector<extra>& data);

}  // namespace bench
