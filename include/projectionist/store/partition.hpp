#pragma once
// Partitions of a per-aggregate projection: which aggregates a worker's runner applies.
//
// An aggregate belongs to exactly one of `count` partitions, computed from its stream name and
// id alone, so every process, on every build and platform, puts it in the same partition:
//
//     projectionist::partition_of("ticket", "t-17", 8);                 // a value in [0, 8), the same everywhere
//     projectionist::partition_slice slice{.count = 8, .index = 3};
//     projectionist::contains(slice, "ticket", "t-17");                // partition_of(...) == 3
//
// Below the runner and the storages, which both use it; no libpq here.

#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include <projectionist/error.hpp>
#include <projectionist/meta/fnv1a.hpp>

namespace projectionist {

/// The part of a per-aggregate projection's aggregates that one runner applies: those whose
/// `partition_of(stream, aggregate_id, count)` is `index`. `count` 1 (the default) is all of
/// them: an unsliced runner.
struct partition_slice {
    std::uint32_t count = 1;
    std::uint32_t index = 0;

    /// Every aggregate: no partitioning at all.
    [[nodiscard]] constexpr bool whole() const noexcept { return count <= 1; }
    friend constexpr bool operator==(const partition_slice&, const partition_slice&) = default;
};

/// The stable 64-bit hash of an aggregate: FNV-1a (offset basis 14695981039346656037, prime
/// 1099511628211) over the stream name's bytes, one 0 byte, and the aggregate id's bytes. The 0
/// byte keeps ("ab", "c") and ("a", "bc") apart (stream names never contain one). Never
/// std::hash, whose values may change between builds and differ between processes' libraries.
[[nodiscard]] constexpr std::uint64_t aggregate_hash(std::string_view stream, std::string_view aggregate_id) noexcept {
    return detail::fnv1a_64(aggregate_id, detail::fnv1a_byte(0, detail::fnv1a_64(stream)));
}

/// The partition of an aggregate among `count` (0 and 1 both mean one partition, numbered 0).
///
/// The low bits of an FNV-1a product depend only on the low bits of the input bytes, so "t-1"
/// and "t-9" (0x31, 0x39) would share every power-of-two partition; folding the high half in
/// first makes every input bit count before the modulo.
///
///     static_assert(projectionist::partition_of("ticket", "t-1", 1) == 0);
[[nodiscard]] constexpr std::uint32_t partition_of(std::string_view stream, std::string_view aggregate_id,
                                                   std::uint32_t count) noexcept {
    if (count <= 1) return 0;
    const std::uint64_t h = aggregate_hash(stream, aggregate_id);
    return static_cast<std::uint32_t>((h ^ (h >> 32)) % count);
}

/// Whether `slice` holds the aggregate (always, for a whole slice).
[[nodiscard]] constexpr bool contains(const partition_slice& slice, std::string_view stream,
                                      std::string_view aggregate_id) noexcept {
    return slice.whole() || partition_of(stream, aggregate_id, slice.count) == slice.index;
}

namespace detail {

/// Throws projectionist::error unless `slice` is usable: count at least 1, index below count.
inline void check_slice(const partition_slice& slice, std::string_view projection) {
    if (slice.count == 0 || slice.index >= slice.count)
        throw error(
            fmt::format("projectionist: '{}': partition slice {}/{} is invalid; the index must be below the "
                        "count (count 1 means every aggregate)",
                        projection, slice.index, slice.count));
}

}  // namespace detail

/// The key under which a slice's checkpoint, per-aggregate positions and dead letters are stored:
/// the projection's name for a whole slice, else `"<name>#<index>/<count>"` (`"tickets_v2#3/8"`).
/// '#' never occurs in a projection name, so no key is another projection's, and the count in the
/// key keeps checkpoints of two partition counts apart.
[[nodiscard]] inline std::string checkpoint_key(std::string_view projection, const partition_slice& slice) {
    if (slice.whole()) return std::string(projection);
    return fmt::format("{}#{}/{}", projection, slice.index, slice.count);
}

}  // namespace projectionist
