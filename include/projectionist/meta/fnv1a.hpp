#pragma once

/// FNV-1a, 64 bits: the one stable hash of the library (routing buckets, aggregate partitions,
/// statement names, fingerprints). Same value on every platform, build and run; never std::hash.
///
///     static_assert(projectionist::detail::fnv1a_64("") == 0xcbf29ce484222325ULL);

#include <cstdint>
#include <string_view>

namespace projectionist::detail {

inline constexpr std::uint64_t fnv1a_offset_basis = 0xcbf29ce484222325ULL;
inline constexpr std::uint64_t fnv1a_prime = 0x100000001b3ULL;

/// Folds the bytes of `s` into the running hash `h`.
[[nodiscard]] constexpr std::uint64_t fnv1a_64(std::string_view s, std::uint64_t h = fnv1a_offset_basis) noexcept {
    for (char c : s) {
        h ^= static_cast<std::uint64_t>(static_cast<unsigned char>(c));
        h *= fnv1a_prime;
    }
    return h;
}

/// Folds one byte into the running hash `h`.
[[nodiscard]] constexpr std::uint64_t fnv1a_byte(unsigned char byte, std::uint64_t h) noexcept {
    return (h ^ byte) * fnv1a_prime;
}

}  // namespace projectionist::detail
