#pragma once

/// A router's routing state and how it is persisted: which version is the primary, which is the
/// candidate and for what share of keys, and which primary `rollback()` puts back; saved as one
/// line of `key=value` pairs under "projectionist.router.<base_name>" in any settings store.
///
///     format=1 primary=tickets_v2 candidate=tickets_v3 basis_points=1000 previous=tickets_v1
///
/// `format` comes first; `candidate` (with `basis_points`) and `previous` are optional. Anything
/// else (an unknown key, a name the router does not know, a share above 10000, a newer format) is
/// an error that quotes the key and the value and says how to repair it; it is never ignored.

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <projectionist/deploy/router/bucket.hpp>
#include <projectionist/detail/routing_text.hpp>
#include <projectionist/detail/text.hpp>
#include <projectionist/error.hpp>
#include <projectionist/storage/records.hpp>

namespace projectionist {

/// Where a router persists its state: anything with string settings, such as `memory_storage`
/// and `sqlite_storage`.
template <class S>
concept settings_store = requires(S& s, const S& cs, std::string_view key, std::string_view value) {
    { cs.find_setting(key) } -> std::convertible_to<std::optional<std::string>>;
    s.save_setting(key, value);
};

/// A router's state, for a status display (the command line).
struct router_status {
    std::string projection;                     ///< the base name, "tickets"
    std::string setting_key;                    ///< where the state is persisted
    std::vector<std::string> versions;          ///< every version the router knows, in declaration order
    std::string primary;                        ///< serves every key not routed to the candidate
    std::optional<std::string> candidate;       ///< the version being rolled out, if any
    unsigned basis_points = 0;                  ///< the candidate's share of keys, in 1/100 of a percent
    std::optional<std::string> previous;        ///< what `rollback()` puts back when there is no candidate
    bool predicate = false;                     ///< this router object routes with a predicate
    std::optional<std::string> predicate_name;  ///< the named predicate switched on (persisted), if any
    std::vector<std::string> predicates;        ///< the names registered in this process

    /// A share in basis points as a percentage: 1000 -> "10%", 1250 -> "12.5%", 1 -> "0.01%".
    [[nodiscard]] static std::string format_share(unsigned basis_points) {
        if (basis_points % 100 == 0) return fmt::format("{}%", basis_points / 100);
        if (basis_points % 10 == 0) return fmt::format("{}.{}%", basis_points / 100, basis_points % 100 / 10);
        return fmt::format("{}.{:02}%", basis_points / 100, basis_points % 100);
    }

    /// The candidate's share in percent (basis_points / 100).
    [[nodiscard]] double percent() const noexcept { return basis_points / 100.0; }

    /// One line, e.g. "tickets: primary tickets_v1, candidate tickets_v2 at 12.5% (+ predicate);
    /// rollback cancels the candidate", or "tickets: primary tickets_v2; rollback to tickets_v1".
    [[nodiscard]] std::string to_string() const {
        std::string out = fmt::format("{}: primary {}", projection, primary);
        if (candidate) {
            out += fmt::format(", candidate {} at {}", *candidate, format_share(basis_points));
            if (predicate) out += predicate_name ? fmt::format(" (+ predicate {})", *predicate_name) : " (+ predicate)";
        } else if (predicate) {
            out += predicate_name ? fmt::format(", predicate {} on (no candidate)", *predicate_name)
                                  : std::string(", predicate set (no candidate)");
        }
        if (predicate_name && !predicate)
            out += fmt::format(", predicate {} on but not registered in this process", *predicate_name);
        if (candidate)
            out += "; rollback cancels the candidate";
        else if (previous)
            out += fmt::format("; rollback to {}", *previous);
        else
            out += "; nothing to roll back";
        return out;
    }
};

}  // namespace projectionist

namespace projectionist::detail::routing {

// ---- settings, type-erased: used only when the routing state changes ---------------------------

class settings_ref {
public:
    template <class S>
    explicit settings_ref(S& s) noexcept : object_(const_cast<void*>(static_cast<const void*>(std::addressof(s)))) {
        static_assert(settings_store<S>,
                      "projectionist: router(settings): the settings object must be a non-const object with "
                      "find_setting(key) -> std::optional<std::string> and save_setting(key, value), such as "
                      "memory_storage or sqlite_storage");
        if constexpr (settings_store<S>) {
            find_ = [](void* o, std::string_view key) -> std::optional<std::string> {
                return std::as_const(*static_cast<S*>(o)).find_setting(key);
            };
            save_ = [](void* o, std::string_view key, std::string_view value) {
                static_cast<S*>(o)->save_setting(key, value);
            };
        }
        if constexpr (requires(S & ms, std::string_view key, std::optional<std::string_view> expected) {
                          { ms.replace_setting(key, expected, key) } -> std::convertible_to<bool>;
                      }) {
            replace_ = [](void* o, std::string_view key, std::optional<std::string_view> expected,
                          std::string_view value) -> bool {
                return static_cast<S*>(o)->replace_setting(key, expected, value);
            };
        }
        if constexpr (requires(const S& cs, std::string_view name) {
                          { cs.find_catalog(name) } -> std::convertible_to<std::optional<catalog_entry>>;
                      }) {
            catalog_ = [](void* o, std::string_view name) -> std::optional<catalog_entry> {
                return std::as_const(*static_cast<S*>(o)).find_catalog(name);
            };
        }
    }

    /// Whether the settings object is also a storage with a catalog (find_catalog(name)).
    [[nodiscard]] bool has_catalog() const noexcept { return catalog_ != nullptr; }
    /// A version's catalog row; nullopt without a catalog or a row.
    [[nodiscard]] std::optional<catalog_entry> catalog(std::string_view name) const {
        return catalog_ ? catalog_(object_, name) : std::nullopt;
    }

    [[nodiscard]] std::optional<std::string> find(std::string_view key) const { return find_(object_, key); }
    void save(std::string_view key, std::string_view value) const { save_(object_, key, value); }
    /// Sets `key` to `value` if its value is `expected` (nullopt: if it has none) and returns
    /// whether it did: atomically when the object has `replace_setting(key, expected, value)`
    /// (the storages of this library), else as a read then a write, which only this process's
    /// callers serialize.
    bool replace(std::string_view key, std::optional<std::string_view> expected, std::string_view value) const {
        if (replace_) return replace_(object_, key, expected, value);
        const auto now = find(key);
        if (now.has_value() != expected.has_value() || (now && *now != *expected)) return false;
        save(key, value);
        return true;
    }

private:
    void* object_;
    std::optional<std::string> (*find_)(void*, std::string_view) = nullptr;
    void (*save_)(void*, std::string_view, std::string_view) = nullptr;
    bool (*replace_)(void*, std::string_view, std::optional<std::string_view>, std::string_view) = nullptr;
    std::optional<catalog_entry> (*catalog_)(void*, std::string_view) = nullptr;
};

/// The persisted part of the routing: indices into the router's version names.
struct routing_state {
    std::size_t primary = 0;
    std::optional<std::size_t> candidate{};
    unsigned basis_points = 0;
    std::optional<std::size_t> previous{};

    friend bool operator==(const routing_state&, const routing_state&) = default;
};

/// What a persisted routing state may name, and where it lives (for error messages).
struct routing_names {
    std::string_view projection;                 ///< "tickets"
    std::string_view setting_key;                ///< "projectionist.router.tickets"
    std::span<const std::string_view> versions;  ///< {"tickets_v1", "tickets_v2"}
};

/// The persisted text of a routing state.
///
///     format_routing_state({.primary = 1, .previous = 0}, names)   // "format=1 primary=tickets_v2
///     previous=tickets_v1"
[[nodiscard]] inline std::string format_routing_state(const routing_state& s,
                                                      std::span<const std::string_view> versions) {
    std::string out = fmt::format("format=1 primary={}", versions[s.primary]);
    if (s.candidate) out += fmt::format(" candidate={} basis_points={}", versions[*s.candidate], s.basis_points);
    if (s.previous) out += fmt::format(" previous={}", versions[*s.previous]);
    return out;
}

[[nodiscard]] inline std::optional<std::size_t> find_version(std::span<const std::string_view> versions,
                                                             std::string_view name) noexcept {
    for (std::size_t i = 0; i < versions.size(); ++i)
        if (versions[i] == name) return i;
    return std::nullopt;
}

/// Parses a persisted routing state. Throws `projectionist::error` naming the setting, what is
/// wrong, the value, the known versions and a valid value to save instead.
[[nodiscard]] inline routing_state parse_routing_state(std::string_view value, const routing_names& names) {
    // [[noreturn]] in effect: every call throws.
    auto corrupt = [&](std::string_view what) {
        throw error(
            fmt::format("projectionist: router '{}': the saved setting '{}' is invalid: {}; its value is "
                        "'{}'. The versions this router knows are: {}. Repair it by saving a valid value "
                        "under that key, e.g. 'format=1 primary={}'",
                        names.projection, names.setting_key, what, value, join(names.versions), names.versions[0]),
            error_context{std::string(names.projection), {}, {}, {}, {}});
    };
    routing_state s;
    std::optional<std::string_view> format, primary, candidate, basis_points, previous;
    bool first = true;
    for (const routing_token& token : routing_tokens(value)) {
        if (!token.pair) corrupt(fmt::format("'{}' is not a key=value pair", token.text));
        const std::string_view key = token.key;
        const std::string_view v = token.value;
        std::optional<std::string_view>* slot = key == "format"         ? &format
                                                : key == "primary"      ? &primary
                                                : key == "candidate"    ? &candidate
                                                : key == "basis_points" ? &basis_points
                                                : key == "previous"     ? &previous
                                                                        : nullptr;
        if (slot == nullptr)
            corrupt(fmt::format("unknown key '{}' (known: format, primary, candidate, basis_points, previous)", key));
        if (*slot) corrupt(fmt::format("the key '{}' appears twice", key));
        if (first && key != "format") corrupt("it does not start with format=1");
        first = false;
        *slot = v;
    }
    if (!format) corrupt("it does not start with format=1");
    if (*format != "1")
        corrupt(
            fmt::format("format {} is not known to this version of projectionist (it reads format 1); "
                        "was it written by a newer one?",
                        *format));
    auto version_index = [&](std::string_view key, std::string_view name) -> std::size_t {
        if (auto i = find_version(names.versions, name)) return *i;
        corrupt(fmt::format("{} '{}' is not a version this router knows", key, name));
        return 0;
    };
    if (!primary) corrupt("it names no primary");
    s.primary = version_index("primary", *primary);
    if (candidate) {
        s.candidate = version_index("candidate", *candidate);
        if (*s.candidate == s.primary) corrupt("the candidate is the primary");
        if (!basis_points) corrupt("the candidate has no basis_points");
        unsigned bp = 0;
        const auto* b = basis_points->data();
        const auto* e = b + basis_points->size();
        auto [ptr, ec] = std::from_chars(b, e, bp);
        if (basis_points->empty() || ec != std::errc{} || ptr != e || bp > routing_buckets)
            corrupt(fmt::format("basis_points '{}' is not a number from 0 to {}", *basis_points, routing_buckets));
        s.basis_points = bp;
    } else if (basis_points) {
        corrupt("basis_points without a candidate");
    }
    if (previous) {
        s.previous = version_index("previous", *previous);
        if (*s.previous == s.primary) corrupt("the previous primary is the primary");
    }
    return s;
}

}  // namespace projectionist::detail::routing
