#pragma once

/// What a router checks before it sends queries to a version: that the version's definition, as
/// its `init` recorded it in the catalog, is this build's (projection/fingerprint.hpp). A router
/// used on its own, without a deployment or a controller, refuses a changed version the way a
/// runner does: its tables were made by other code.

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include <projectionist/deploy/router/state.hpp>
#include <projectionist/meta/fnv1a.hpp>
#include <projectionist/meta/name.hpp>
#include <projectionist/policy/policies.hpp>
#include <projectionist/projection/context.hpp>
#include <projectionist/projection/fingerprint.hpp>
#include <projectionist/projection/handler_table.hpp>
#include <projectionist/storage/memory_storage.hpp>
#include <projectionist/storage/records.hpp>

namespace projectionist::detail::routing {

/// This build's definition of version P with the recorded partitioning: a router does not know
/// the runner's partitioning policy (a runner checks that itself). The handled events are those
/// of a handler context over any storage: which overloads exist does not depend on the backend.
template <class P>
[[nodiscard]] std::string definition_for_router(const catalog_entry& recorded) {
    using entries = typename basic_handler_table<P, handler_context<P, memory_storage, emit_always>>::entries;
    if (recorded.partitioning == per_aggregate::name) return definition_of<P, entries, per_aggregate>();
    return definition_of<P, entries, global>();
}

/// Whether `current` differs from `recorded` only by events that `recorded` handles and
/// `current` does not list: what a handler taking a runner's own context type (not `auto&`)
/// looks like from a router, which cannot tell it from a handler removed.
[[nodiscard]] inline bool only_events_unseen(std::string_view recorded, std::string_view current) {
    using projectionist::detail::fingerprint::lines_of;
    for (std::string_view kind : {"projection", "revision", "partitioning", "table", "column"})
        if (lines_of(recorded, kind) != lines_of(current, kind)) return false;
    const auto handled = lines_of(recorded, "event");
    for (auto e : lines_of(current, "event"))
        if (std::find(handled.begin(), handled.end(), e) == handled.end()) return false;
    return true;
}

/// Why version P as this build defines it is not the version `recorded` describes, in the words
/// a runner uses; nothing when they agree, when it is deleted, when the row predates
/// fingerprints, or when the router cannot tell (only_events_unseen: the runner checks those).
template <class P>
[[nodiscard]] std::optional<std::string> definition_change(const catalog_entry& recorded) {
    if (recorded.state == projection_state::deleted || recorded.fingerprint.empty()) return std::nullopt;
    const std::string current = definition_for_router<P>(recorded);
    if (fingerprint_text(fnv1a_64(current)) == recorded.fingerprint) return std::nullopt;
    if (only_events_unseen(recorded.definition, current)) return std::nullopt;
    return fmt::format("{} changed since it was initialized: {}; deploy it as {}_v{}, or reset {} to rebuild it",
                       name_of<P>, definition_changes(recorded.definition, current), P::base_name, P::version + 1,
                       name_of<P>);
}

/// For each of a router's versions, in order, why it may not be sent queries: its catalog row
/// says another build initialized it (definition_change). Nothing without a catalog, or for a
/// version with no row.
template <class... Versions>
[[nodiscard]] std::array<std::optional<std::string>, sizeof...(Versions)> definition_changes_of(
    const settings_ref& settings) {
    std::array<std::optional<std::string>, sizeof...(Versions)> out{};
    if (!settings.has_catalog()) return out;
    std::size_t i = 0;
    ((out[i++] = [&]() -> std::optional<std::string> {
         const auto entry = settings.catalog(name_of<Versions>);
         return entry ? definition_change<Versions>(*entry) : std::nullopt;
     }()),
     ...);
    return out;
}

}  // namespace projectionist::detail::routing
