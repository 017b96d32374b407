#pragma once

/// The routing bucket of a key: which share of a rollout it falls in. Stable across processes,
/// runs, builds and platforms (the values are tested), so a user stays on the same version while
/// the share only grows.
///
///     static_assert(projectionist::routing_bucket("user-42") == 1453);

#include <cstdint>
#include <string_view>

#include <projectionist/meta/fnv1a.hpp>

namespace projectionist {

/// The number of routing buckets: a rollout share has a resolution of 1/10000 (a basis point).
inline constexpr unsigned routing_buckets = 10000;

/// The routing bucket of a key, 0 to 9999: `fmix64(fnv1a_64(key)) % 10000`. A key is routed to
/// the candidate when its bucket is below the rollout share in basis points.
///
///     routing_bucket("user-1")   // 5477: routed to a candidate at 54.78% or more
[[nodiscard]] constexpr unsigned routing_bucket(std::string_view key) noexcept {
    std::uint64_t h = detail::fnv1a_64(key);
    // MurmurHash3's finalizer: FNV-1a's low bits depend only on the low bits of the input bytes.
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return static_cast<unsigned>(h % routing_buckets);
}

}  // namespace projectionist
