#pragma once

/// Named predicates of a router: code registered under a name in every process
/// (`register_predicate("internal-users", fn)`), switched on and off by name from any process
/// (`enable_predicate`, `disable_predicate`, or the command line's `predicate` command). Which one
/// is on is persisted beside the routing state, under "projectionist.router.<base_name>.predicate"
/// (empty or absent: none), so the application serving queries and the command line agree.

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <projectionist/detail/text.hpp>
#include <projectionist/error.hpp>

namespace projectionist::detail::routing {

/// A predicate on routing keys, shared by the snapshots that use it.
using key_predicate = std::shared_ptr<const std::function<bool(std::string_view)>>;

/// The registered predicates and the name of the one switched on; safe to use from any thread.
class named_predicates {
public:
    /// The setting that holds the name switched on.
    [[nodiscard]] static std::string setting_key(std::string_view projection) {
        return fmt::format("projectionist.router.{}.predicate", projection);
    }

    /// Registers `fn` as `name`; throws `error` for an empty, malformed or repeated name.
    void add(std::string_view projection, std::string name, key_predicate fn) {
        const bool well_formed = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        });
        if (!well_formed)
            throw error(
                fmt::format("projectionist: router '{}': register_predicate('{}'): a predicate's name is "
                            "made of a-z, 0-9, '-' and '_'",
                            projection, shown(name)));
        std::lock_guard lock(mutex_);
        if (all_.find(name) != all_.end())
            throw error(fmt::format("projectionist: router '{}': a predicate named '{}' is registered already",
                                    projection, name));
        all_.emplace(std::move(name), std::move(fn));
    }

    /// The predicate registered as `name`, or null.
    [[nodiscard]] key_predicate find(std::string_view name) const {
        std::lock_guard lock(mutex_);
        const auto it = all_.find(name);
        return it == all_.end() ? nullptr : it->second;
    }

    /// The predicate registered as `name`; throws `error` listing the registered names otherwise.
    [[nodiscard]] key_predicate require(std::string_view projection, std::string_view name) const {
        if (auto fn = find(name)) return fn;
        const auto known = names();
        throw error(fmt::format(
            "projectionist: router '{}': no predicate named '{}' is registered; {}", projection, shown(name),
            known.empty() ? std::string("none is (register one in code with router.register_predicate(name, fn))")
                          : fmt::format("the registered ones are: {}", join(known))));
    }

    /// The registered names, sorted.
    [[nodiscard]] std::vector<std::string> names() const {
        std::lock_guard lock(mutex_);
        std::vector<std::string> out;
        for (const auto& [name, fn] : all_) out.push_back(name);
        return out;
    }

    /// The name switched on, as last read or written.
    [[nodiscard]] std::optional<std::string> enabled() const {
        std::lock_guard lock(mutex_);
        return enabled_;
    }

    /// Records the name switched on (empty text: none); returns whether it changed.
    bool set_enabled(std::optional<std::string> name) {
        if (name && name->empty()) name.reset();
        std::lock_guard lock(mutex_);
        if (name == enabled_) return false;
        enabled_ = std::move(name);
        return true;
    }

    /// The predicate to route with: the one switched on, if it is registered here.
    [[nodiscard]] key_predicate active() const {
        std::lock_guard lock(mutex_);
        if (!enabled_) return nullptr;
        const auto it = all_.find(*enabled_);
        return it == all_.end() ? nullptr : it->second;
    }

private:
    mutable std::mutex mutex_;
    std::map<std::string, key_predicate, std::less<>> all_;
    std::optional<std::string> enabled_;
};

}  // namespace projectionist::detail::routing
