#pragma once

/// What a storage keeps for each projection version: its checkpoint, its dead letters and its
/// catalog row. The states a catalog row records are the deployment's (projection_state.hpp).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <projectionist/storage/projection_state.hpp>

namespace projectionist {

namespace detail {
/// Marks a storage type, so that a runner can take it as a policy.
struct storage_category {};

/// A catalog entry's tables as SQL storages keep them: one name per line.
inline std::string join_lines(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& s : items) out += (out.empty() ? "" : "\n") + s;
    return out;
}
inline std::vector<std::string> split_lines(std::string_view text) {
    std::vector<std::string> out;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        out.emplace_back(text.substr(0, nl));
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return out;
}
}  // namespace detail

/// One row of the projection catalog: what a storage knows about a projection version.
struct catalog_entry {
    std::string name;       ///< versioned name, "tickets_v2"
    std::string base_name;  ///< "tickets"
    unsigned version = 0;
    projection_state state = projection_state::declared;
    bool live = false;                ///< emitted events pass (with emit_when_live)
    std::string partitioning;         ///< "global" or "per_aggregate"
    std::vector<std::string> tables;  ///< the tables this version owns; remove drops exactly these
    std::uint64_t generation = 0;     ///< bumped by reset: other processes' runners reload then
    /// The version's definition as `init` (or `reset`) recorded it (projection/fingerprint.hpp):
    /// 16 hex digits, and the canonical text they hash, which names what changed on a mismatch.
    /// Empty in a row written before fingerprints were kept: the next process records its own.
    std::string fingerprint;
    std::string definition;
    /// A deleted version's row stays as a tombstone (state `deleted`, no tables): when it was
    /// deleted (ISO-8601 UTC) and by which command, so that every process sees it deleted.
    std::string deleted_at;
    std::string deleted_by;
    /// "YYYY-MM-DD": a delete before this day is refused unless forced. Empty: none.
    std::string retain_until;
};

/// An event a projection could not apply and skipped (failure policy skip_to_dead_letter), or,
/// for per-aggregate projections, a later event of an aggregate parked by such a failure.
struct dead_letter {
    std::uint64_t position = 0;
    std::string stream;
    std::string aggregate_id;
    std::uint64_t aggregate_number = 0;
    std::string event_type;
    std::string reason;
    bool parked = false;  ///< skipped because an earlier event of its aggregate failed

    friend bool operator==(const dead_letter&, const dead_letter&) = default;
};

/// Where a projection is in the log. Global projections use `position` alone; per-aggregate
/// ones also keep, for every aggregate, the last applied aggregate version (indexed by the
/// store's dense aggregate number, 0 meaning none), and use `position` as the point the next
/// scan of the log starts from.
struct checkpoint {
    std::uint64_t position = 0;
    std::vector<std::uint64_t> aggregate_versions;
    std::uint64_t aggregates_tracked = 0;  ///< entries of aggregate_versions that are not 0

    [[nodiscard]] std::uint64_t version_of(std::uint64_t aggregate_number) const noexcept {
        return aggregate_number < aggregate_versions.size() ? aggregate_versions[aggregate_number] : 0;
    }
};

}  // namespace projectionist
