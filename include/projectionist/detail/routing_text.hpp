#pragma once

/// The text of a router's saved setting, read token by token: what a delete needs to forget a
/// version in it. The runner's `remove()` uses it (the router forgets a version with its tables, in
/// one transaction), so it lives below the runner; the router's full parse is in
/// deploy/router/state.hpp.

#include <algorithm>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <projectionist/error.hpp>

namespace projectionist::detail::routing {

/// A saved routing state's `key=value` tokens, in order, unchecked.
struct routing_token {
    std::string_view key;
    std::string_view value;
    std::string_view text;
    bool pair = true;  ///< false: the token has no '='
};
[[nodiscard]] inline std::vector<routing_token> routing_tokens(std::string_view value) {
    std::vector<routing_token> out;
    std::size_t pos = 0;
    while (pos < value.size()) {
        if (value[pos] == ' ') {
            ++pos;
            continue;
        }
        const std::size_t end = std::min(value.find(' ', pos), value.size());
        const std::string_view token = value.substr(pos, end - pos);
        pos = end;
        const std::size_t eq = token.find('=');
        if (eq == std::string_view::npos)
            out.push_back({{}, {}, token, false});
        else
            out.push_back({token.substr(0, eq), token.substr(eq + 1), token, true});
    }
    return out;
}

/// The roles a saved routing state gives a version: "primary", "candidate", "previous".
[[nodiscard]] inline std::optional<std::string_view> role_of(std::span<const routing_token> tokens,
                                                             std::string_view name) {
    for (const auto& t : tokens)
        if ((t.key == "primary" || t.key == "candidate") && t.value == name) return t.key;
    for (const auto& t : tokens)
        if (t.key == "previous" && t.value == name) return t.key;
    return std::nullopt;
}

/// A saved routing state without the versions `gone(name)` says are deleted: a deleted previous
/// primary is forgotten, a deleted candidate is cancelled (with its share), a deleted primary is
/// replaced by `fallback` (the router's first version; a candidate or previous primary equal to
/// it is dropped).
/// Returns the value unchanged when it names no deleted version.
template <class Gone>
[[nodiscard]] std::string without_deleted(std::string_view value, Gone&& gone, std::string_view fallback) {
    const auto tokens = routing_tokens(value);
    bool primary_gone = false, candidate_gone = false;
    std::string_view candidate;
    for (const auto& t : tokens) {
        if (t.key == "primary" && gone(t.value)) primary_gone = true;
        if (t.key == "candidate") {
            candidate = t.value;
            candidate_gone = gone(t.value);
        }
    }
    if (primary_gone && candidate == fallback) candidate_gone = true;
    std::string out;
    bool changed = false;
    for (const auto& t : tokens) {
        std::string_view text = t.text;
        std::string replaced;
        if ((t.key == "previous" && (gone(t.value) || (primary_gone && t.value == fallback))) ||
            (candidate_gone && (t.key == "candidate" || t.key == "basis_points"))) {
            changed = true;
            continue;
        }
        if (t.key == "primary" && primary_gone) {
            replaced = fmt::format("primary={}", fallback);
            text = replaced;
            changed = true;
        }
        if (!out.empty()) out += ' ';
        out += text;
    }
    return changed ? out : std::string(value);
}

/// The saved routing state of `projection` with the deleted version `name` forgotten as the
/// previous primary, or nullopt when it does not name it. Throws `state_error` if the router
/// still sends `name` queries (as its primary or candidate): the delete is refused.
[[nodiscard]] inline std::optional<std::string> forget_deleted(std::string_view value, std::string_view projection,
                                                               std::string_view name) {
    const auto tokens = routing_tokens(value);
    const auto role = role_of(tokens, name);
    if (!role) return std::nullopt;
    if (*role != "previous")
        throw state_error(
            fmt::format("projectionist: cannot delete {}: the router of {} sends it queries (it is the {} in the "
                        "saved setting 'projectionist.router.{}': '{}'); switch the router to another version first",
                        name, projection, *role, projection, value),
            error_context{std::string(projection), {}, {}, {}, {}});
    return without_deleted(value, [&](std::string_view v) { return v == name; }, {});
}

}  // namespace projectionist::detail::routing
