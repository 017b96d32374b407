#pragma once
// The counters of a router's shadow reads (deploy/router/shadow.hpp). A header of its own, with no
// other dependency, so that the metrics exporter (observe/exporter.hpp) keeps them as they are
// without including the router.

#include <cstdint>

namespace projectionist {

/// Counters of shadow reads since the router was created (or `clear_discrepancies`).
struct shadow_counters {
    std::uint64_t queries = 0;        ///< shadow_query calls
    std::uint64_t compared = 0;       ///< of those, run on both versions (there was a candidate, and it was sampled)
    std::uint64_t discrepancies = 0;  ///< of those compared, different answers or an exception
    std::uint64_t errors = 0;         ///< of the discrepancies, those where the shadow run or comparison threw
    std::uint64_t settled = 0;        ///< of those compared, different at first and the same on a re-read
};

}  // namespace projectionist
