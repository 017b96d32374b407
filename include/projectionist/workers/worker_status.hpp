#pragma once
// What a worker (workers/worker.hpp) reports: its leases and their counters. Needs no PostgreSQL,
// so that the metrics exporter (observe/exporter.hpp) and tests can use it without libpq.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <projectionist/runner/status.hpp>

namespace projectionist {

/// A partition held by a worker, with the epoch its claim gave it.
struct lease {
    std::uint32_t partition = 0;
    std::uint64_t epoch = 0;
    friend bool operator==(const lease&, const lease&) = default;
};

/// What a worker is doing, for monitoring and tests.
struct worker_status {
    std::string id;
    std::vector<lease> held;             ///< the leases it holds, by partition
    std::uint32_t live_workers = 0;      ///< at the last heartbeat
    std::uint64_t claims = 0;            ///< leases claimed
    std::uint64_t takeovers = 0;         ///< of those, leases that had expired in a worker's hands (re-claimed)
    std::uint64_t releases = 0;          ///< leases given back to rebalance (or on leaving)
    std::uint64_t leases_lost = 0;       ///< leases found expired or taken over (renewal or fence)
    std::uint64_t renewals = 0;          ///< heartbeats whose renewal of the leases went through
    std::uint64_t renewal_failures = 0;  ///< heartbeats whose renewal failed (the leases then run out)
    /// When the last renewal went through (this process's clock); none before the first.
    std::optional<std::chrono::system_clock::time_point> last_renewal;
    std::uint64_t fenced_commits = 0;   ///< batches refused by the fence (lease_lost)
    std::uint64_t runner_restarts = 0;  ///< runners dropped after an error that was not a handler's
    std::uint64_t events_applied = 0;   ///< by this worker's runners
    error_counts errors;                ///< what this worker's runners met, by kind (those of dropped runners too)
    std::optional<std::string> error;   ///< the last error a heartbeat or runner met
};

}  // namespace projectionist
