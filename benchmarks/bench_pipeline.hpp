#pragma once

// 8g (group "pg_pipeline", bench_pipeline_postgres.cpp): 8e's live catch-up with the storage
// session's pipelines on and off, over loopback and through a proxy that delays each direction.

#include <chrono>
#include <cstddef>
#include <vector>

#include "bench_domain.hpp"
#include "harness.hpp"

namespace bench {

struct pipeline_options {
    unsigned repetitions = 3;               ///< per side (PROJECTIONIST_BENCH_PG_PIPELINE_REPS)
    std::size_t live_events = 10'000;       ///< the new events (PROJECTIONIST_BENCH_PG_LIVE_EVENTS)
    std::chrono::microseconds delay{1000};  ///< each way, through the proxy (..._PG_PIPELINE_DELAY_US)
};

/// Writes the history into a PostgreSQL log of its own (on the server named by
/// PROJECTIONIST_BENCH_PG_URL), then measures. Without a server, or without libpq, says so.
void bench_pipeline_postgres(const pj::memory_event_store& history, const history_stats& stats,
                             const pipeline_options& options, std::vector<comparison>& out, std::vector<extra>& data);

}  // namespace bench
