#pragma once

/// The query router: the seed's "query dispatcher behind a feature toggle", for the versions of
/// one projection.
///
///     pj::router<tickets<1>, tickets<2>> router(storage);          // any storage with settings
///     router.rollout<tickets<2>>(10);                              // 10% of users see v2
///     router.prefer_candidate_when([](std::string_view user) { return user.starts_with("internal-"); });
///     auto row = router.query(user_id, [&]<class P>(std::type_identity<P>) {
///         return find_ticket<P>(storage, ticket_id);               // reads table "tickets_v<N>"
///     });
///     router.switch_to<tickets<2>>();                              // everyone; persisted at once
///     router.rollback();                                           // everyone back on v1
///
/// **Queries.** v1 and v2 may have different row types, so a query is a generic callable that is
/// invoked once with `std::type_identity<P>` of the version chosen for its routing key. It must
/// be callable for every version and return the same type for each (both are static_asserts).
/// `route(key)` tells which versioned name a key is routed to.
///
/// **Routing state.** A primary version serves every key by default. An optional candidate gets
/// (a) every key whose bucket is below the rollout share, and (b) every key the predicate
/// registered with `prefer_candidate_when` accepts, whatever the share (internal users first;
/// a rollout of 0% plus a predicate is the "internal users only" stage). Without a candidate the
/// predicate does nothing.
///
/// **Stable buckets.** A key's bucket is `fmix64(fnv1a_64(key)) % 10000`, so the share has a
/// resolution of one basis point (0.01%): the same key lands in the same bucket in every process,
/// run and platform (the values are tested). Raising the share only adds keys: a user who saw
/// the candidate at 10% still sees it at 30%. The bucket depends on the key only, not on the
/// projection: at equal shares the same users see the new versions of all projections together,
/// which keeps related read models consistent for a user (use different keys to decorrelate).
/// The FNV-1a low bits depend only on the low bits of the input bytes, hence the fmix64 step.
///
/// **Operations** (each persisted before it takes effect; each starts from the persisted state,
/// so a router whose snapshot is stale does not undo what another process changed):
///   - `switch_to<P>()` / `switch_to(name)`: all traffic to P. P becomes primary (the old primary
///     is remembered as the version to roll back to), the candidate is cleared. Switching to the
///     current primary only clears the candidate.
///   - `rollout<P>(percent)` / `rollout(name, percent)` (0 to 100), or `rollout_basis_points`
///     (0 to 10000): P becomes the candidate with that share. P must not be the primary.
///   - `rollback()`: undoes the most recent kind of change: cancels the candidate if there is
///     one, otherwise puts the previous primary back (and forgets it, so a second rollback does
///     not flip forward again: it throws `state_error`, as does a rollback with nothing to undo).
///   - `refresh()`: re-reads the persisted state (the command line, or another router object,
///     may have changed it). Call it periodically in long-running processes.
/// Names typed by a user are looked up among this router's versions; an unknown name throws
/// `projectionist::error` listing the valid ones.
///
/// **Persisted format.** `save_setting("projectionist.router.<base_name>", value)` with one line
/// of space-separated `key=value` pairs, readable in `sqlite3 app.db "select * from
/// projectionist_settings"`:
///
///     format=1 primary=tickets_v2 candidate=tickets_v3 basis_points=1000 previous=tickets_v1
///
/// `format` comes first; `candidate` (with `basis_points`) and `previous` are optional. Anything
/// else (an unknown key, a name this router does not know, a share above 10000, a newer format)
/// is an error that quotes the key and the value and says how to repair it; it is never ignored.
/// No saved value means the first version is primary. The predicate is code: not persisted.
///
/// **Threads and in-flight queries.** The routing state is an immutable snapshot: a
/// `std::shared_ptr<const state>` copied under a mutex held only for the copy (not
/// `std::atomic<std::shared_ptr>`, see `current_state`). A query takes one snapshot, decides, and
/// runs to the end on that version: a flip during a query never moves it, and flips never wait
/// for queries. Each version counts the queries running on it (`in_flight`), and
/// `wait_for_drain(name, timeout)` waits until a version that no longer receives traffic has
/// finished its last query: call it after `switch_to` and before removing the old version's
/// tables. (A query increments the counter, then checks that no flip was published meanwhile,
/// and re-decides if one was; so once a flip is published and the counter reads zero, no query
/// can still start on the old version.) State changes are serialized by a mutex; the settings
/// object is used only in the constructor and in state changes, under that mutex. The router
/// holds a reference to the settings object, which must outlive it.
///
/// **Shadow reads.** `shadow_query(key, fn, compare)` runs fn on the version that serves the key
/// and, when there is a candidate, also on the other one, with the same snapshot; it returns the
/// serving version's answer. With the usual shadowing setup (a candidate at 0%), that is the
/// primary's answer; keys already rolled out keep getting the candidate's answer, as with
/// `query`, so turning shadow reads on never changes what a user sees. When `compare(primary
/// answer, candidate answer)` is false, or when the shadow run (or the comparison) throws, a
/// `discrepancy` is recorded (key, both names, both answers formatted, the error) in a list that
/// keeps the last `router_options::max_discrepancies`, and counted in `shadow_stats()`. An
/// exception in the shadow run never reaches the caller; one in the serving run does, as with
/// `query`. Answers are formatted with fmt when it can; otherwise optionals, Hana-reflected
/// structs (`{ticket_id: "t-1", status: "open"}`), pairs and ranges are spelled out, and
/// anything else is "(unformattable)".

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/hana/accessors.hpp>
#include <boost/hana/concept/struct.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/pair.hpp>
#include <boost/hana/string.hpp>
#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>

#include <projectionist/error.hpp>
#include <projectionist/meta/type_list.hpp>
#include <projectionist/projection/projection.hpp>

namespace projectionist {

// ---- stable hashing of routing keys ------------------------------------------------------------

/// FNV-1a, 64 bits, over the bytes of `s`: the same value on every platform and in every run.
[[nodiscard]] constexpr std::uint64_t fnv1a_64(std::string_view s) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (char c : s) {
        h ^= static_cast<std::uint64_t>(static_cast<unsigned char>(c));
        h *= 0x100000001b3ULL;
    }
    return h;
}

/// The number of routing buckets: a rollout share has a resolution of 1/10000 (a basis point).
inline constexpr unsigned routing_buckets = 10000;

/// The routing bucket of a key, 0 to 9999: `fmix64(fnv1a_64(key)) % 10000`. A key is routed to
/// the candidate when its bucket is below the rollout share in basis points.
[[nodiscard]] constexpr unsigned routing_bucket(std::string_view key) noexcept {
    std::uint64_t h = fnv1a_64(key);
    // MurmurHash3's finalizer: FNV-1a's low bits depend only on the low bits of the input bytes.
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return static_cast<unsigned>(h % routing_buckets);
}

// ---- settings --------------------------------------------------------------------------------

/// Where a router persists its state: anything with string settings, such as `memory_storage`
/// and `sqlite_storage`.
template <class S>
concept settings_store = requires(S& s, const S& cs, std::string_view key, std::string_view value) {
    { cs.find_setting(key) } -> std::convertible_to<std::optional<std::string>>;
    s.save_setting(key, value);
};

// ---- what a router reports -------------------------------------------------------------------

/// A router's state, for a status display (the command line).
struct router_status {
    std::string projection;                ///< the base name, "tickets"
    std::string setting_key;               ///< where the state is persisted
    std::vector<std::string> versions;     ///< every version the router knows, in declaration order
    std::string primary;                   ///< serves every key not routed to the candidate
    std::optional<std::string> candidate;  ///< the version being rolled out, if any
    unsigned basis_points = 0;             ///< the candidate's share of keys, in 1/100 of a percent
    std::optional<std::string> previous;   ///< what `rollback()` puts back when there is no candidate
    bool predicate = false;                ///< this router object has a `prefer_candidate_when` predicate

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
            if (predicate) out += " (+ predicate)";
        } else if (predicate) {
            out += ", predicate set (no candidate)";
        }
        if (candidate)
            out += "; rollback cancels the candidate";
        else if (previous)
            out += fmt::format("; rollback to {}", *previous);
        else
            out += "; nothing to roll back";
        return out;
    }
};

/// Tuning of a router.
struct router_options {
    /// How many discrepancies of shadow reads are kept (the most recent ones).
    std::size_t max_discrepancies = 1000;
};

/// One difference found by a shadow read.
struct discrepancy {
    std::string routing_key;
    std::string primary;          ///< versioned name of the primary
    std::string candidate;        ///< versioned name of the candidate
    std::string primary_value;    ///< the primary's answer, formatted (empty when it threw)
    std::string candidate_value;  ///< the candidate's answer, formatted (empty when it threw)
    std::string error;            ///< when the shadow run or the comparison threw: what, and its message
};

/// Counters of shadow reads since the router was created (or `clear_discrepancies`).
struct shadow_counters {
    std::uint64_t queries = 0;        ///< shadow_query calls
    std::uint64_t compared = 0;       ///< of those, run on both versions (there was a candidate)
    std::uint64_t discrepancies = 0;  ///< of those compared, different answers or an exception
    std::uint64_t errors = 0;         ///< of the discrepancies, those where the shadow run or comparison threw
};

namespace detail::routing {

// ---- compile-time checks ---------------------------------------------------------------------

template <class... Vs>
consteval bool router_same_base() {
    constexpr std::array<std::string_view, sizeof...(Vs)> names{Vs::base_name...};
    for (auto n : names)
        if (n != names[0]) return false;
    return true;
}

template <class... Vs>
consteval bool router_distinct_versions() {
    constexpr std::array<unsigned, sizeof...(Vs)> versions{Vs::version...};
    for (std::size_t i = 0; i < versions.size(); ++i)
        for (std::size_t j = i + 1; j < versions.size(); ++j)
            if (versions[i] == versions[j]) return false;
    return true;
}

template <class... Vs>
consteval bool check_router_versions() {
    static_assert(sizeof...(Vs) > 0,
                  "projectionist: router<Versions...>: name at least one version of the projection, e.g. "
                  "router<tickets<1>, tickets<2>>");
    static_assert((projection_type<Vs> && ...),
                  "projectionist: router<Versions...>: every version must be a projection type (derived from "
                  "projectionist::projection<\"name\", version, ...>)");
    if constexpr (sizeof...(Vs) > 0 && (projection_type<Vs> && ...)) {
        static_assert(router_same_base<Vs...>(),
                      "projectionist: router<Versions...>: the versions must be versions of ONE projection (the same "
                      "base name); use one router per projection");
        static_assert(router_distinct_versions<Vs...>(),
                      "projectionist: router<Versions...>: two versions have the same version number; list each "
                      "version of the projection once");
    }
    return true;
}

template <class... Vs>
struct router_base_name {
    static constexpr std::string_view value{};
};
template <class V, class... Vs>
requires projection_type<V>
struct router_base_name<V, Vs...> {
    static constexpr std::string_view value = V::base_name;
};

template <class F, class... Vs>
consteval bool check_query() {
    static_assert((std::is_invocable_v<F&, std::type_identity<Vs>> && ...),
                  "projectionist: router::query: the query must be callable with std::type_identity<P> for every "
                  "version P of the router, e.g. [&]<class P>(std::type_identity<P>) { ... }");
    if constexpr ((std::is_invocable_v<F&, std::type_identity<Vs>> && ...)) {
        using first = std::invoke_result_t<F&, std::type_identity<boost::mp11::mp_first<boost::mp11::mp_list<Vs...>>>>;
        static_assert((std::is_same_v<first, std::invoke_result_t<F&, std::type_identity<Vs>>> && ...),
                      "projectionist: router::query: the query must return the same type for every version; convert "
                      "each version's answer to one type inside the query");
    }
    return true;
}

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
    }

    [[nodiscard]] std::optional<std::string> find(std::string_view key) const { return find_(object_, key); }
    void save(std::string_view key, std::string_view value) const { save_(object_, key, value); }

private:
    void* object_;
    std::optional<std::string> (*find_)(void*, std::string_view) = nullptr;
    void (*save_)(void*, std::string_view, std::string_view) = nullptr;
};

// ---- describing answers of shadow reads ------------------------------------------------------

template <class T>
struct is_pair : std::false_type {};
template <class A, class B>
struct is_pair<std::pair<A, B>> : std::true_type {};

/// A range whose elements are not the range itself (std::filesystem::path is one of those).
template <class T>
concept describable_range = std::ranges::input_range<const T> &&
    !std::is_same_v<std::remove_cvref_t<std::ranges::range_reference_t<const T>>, T>;

inline constexpr std::size_t max_described_elements = 16;
inline constexpr std::size_t max_described_length = 4096;

template <class T>
void describe_value_to(std::string& out, const T& value) {
    if constexpr (std::is_convertible_v<const T&, std::string_view>) {
        out += '"';
        out += std::string_view(value);
        out += '"';
    } else if constexpr (std::is_enum_v<T>) {
        out += fmt::format("{}", static_cast<std::underlying_type_t<T>>(value));
    } else if constexpr (is_std_optional<T>::value) {
        if (value)
            describe_value_to(out, *value);
        else
            out += "(none)";
    } else if constexpr (is_pair<T>::value) {
        out += '(';
        describe_value_to(out, value.first);
        out += ", ";
        describe_value_to(out, value.second);
        out += ')';
    } else if constexpr (describable_range<T>) {
        out += '[';
        std::size_t n = 0;
        for (const auto& element : value) {
            if (n == max_described_elements) {
                out += ", ...";
                break;
            }
            if (n++ != 0) out += ", ";
            describe_value_to(out, element);
        }
        out += ']';
        if constexpr (std::ranges::sized_range<const T>)
            if (n == max_described_elements && std::ranges::size(value) > n)
                out += fmt::format(" ({} elements)", std::ranges::size(value));
    } else if constexpr (fmt::is_formattable<T>::value) {  // after the structural cases: the result must not depend on
                                                           // whether <fmt/ranges.h> was included
        out += fmt::format("{}", value);
    } else if constexpr (boost::hana::Struct<T>::value) {
        out += '{';
        bool first = true;
        boost::hana::for_each(boost::hana::accessors<T>(), [&](auto member) {
            if (!first) out += ", ";
            first = false;
            out += boost::hana::to<const char*>(boost::hana::first(member));
            out += ": ";
            describe_value_to(out, boost::hana::second(member)(value));
        });
        out += '}';
    } else {
        out += "(unformattable)";
    }
}

/// An answer of a shadow read, in words, for a discrepancy record.
template <class T>
std::string describe_value(const T& value) {
    std::string out;
    describe_value_to(out, value);
    if (out.size() > max_described_length) {
        out.resize(max_described_length);
        out += "...";
    }
    return out;
}

/// "<who> threw: <message>", for the exception being handled. Never throws: a shadow read must
/// not turn into an error of the caller's query.
inline std::string current_exception_text(std::string_view who) noexcept {
    try {
        try {
            throw;
        } catch (const std::exception& e) {
            return fmt::format("{} threw: {}", who, e.what());
        } catch (...) {
            return fmt::format("{} threw: an exception that is not a std::exception", who);
        }
    } catch (...) {
        return "threw";  // short enough not to allocate
    }
}

}  // namespace detail::routing

// ---- the router --------------------------------------------------------------------------------

/// Routes queries over the versions of one projection; see the comment at the top of this file.
/// `Versions` are the projection types, e.g. `router<tickets<1>, tickets<2>>`; the first one is
/// the primary until the persisted state says otherwise.
template <class... Versions>
class router {
    static_assert(detail::routing::check_router_versions<Versions...>());

public:
    /// The projection types, as an mp_list.
    using versions = boost::mp11::mp_list<Versions...>;
    static constexpr std::size_t version_count = sizeof...(Versions);
    /// The projection's base name, "tickets".
    static constexpr std::string_view projection_name = detail::routing::router_base_name<Versions...>::value;
    /// The versioned names, in declaration order.
    static constexpr std::array<std::string_view, sizeof...(Versions)> version_names{Versions::versioned_name...};

    /// The persisted setting's key: "projectionist.router.<base_name>".
    [[nodiscard]] static std::string setting_key() { return fmt::format("projectionist.router.{}", projection_name); }

    /// The result type of a query callable: the same for every version.
    template <class F>
    using query_result = std::invoke_result_t<F&, std::type_identity<boost::mp11::mp_first<versions>>>;

    /// Loads the persisted state from `settings` (which must outlive the router); without one,
    /// the first version is the primary. Throws `projectionist::error` if the saved value is
    /// corrupt or names a version this router does not know.
    template <class Settings>
    requires(!std::is_same_v<std::remove_cv_t<Settings>, router>) explicit router(Settings& settings,
                                                                                  router_options options = {})
        : settings_(settings), options_(options), state_(std::make_shared<const state>(load())) {}

    router(const router&) = delete;
    router& operator=(const router&) = delete;

    // ---- queries ---------------------------------------------------------------------------------

    /// The versioned name that `key` is routed to now.
    [[nodiscard]] std::string_view route(std::string_view key) const {
        auto snapshot = current_state();
        return version_names[decide(*snapshot, key)];
    }

    /// Runs `fn(std::type_identity<P>{})` once, where P is the version `key` is routed to, and
    /// returns its result. The decision is taken on one snapshot of the routing state at the start;
    /// a flip during the query does not move it.
    template <class F>
    decltype(auto) query(std::string_view key, F&& fn) const {
        static_assert(detail::routing::check_query<std::remove_reference_t<F>, Versions...>());
        auto entry = enter(key, false);
        return invoke_on(entry.serving, fn);
    }

    /// Runs `fn` on the version `key` is routed to and, when there is a candidate, on the other
    /// version too; returns the serving version's answer (the primary's unless the key is rolled
    /// out). A difference by `compare(primary answer, candidate answer)` (false: they differ), or
    /// an exception of the shadow run or the comparison, is recorded as a discrepancy.
    template <class F, class Compare = std::equal_to<>>
    auto shadow_query(std::string_view key, F&& fn, Compare compare = {}) const {
        static_assert(detail::routing::check_query<std::remove_reference_t<F>, Versions...>());
        using result = std::remove_cvref_t<query_result<std::remove_reference_t<F>>>;
        static_assert(!std::is_void_v<result>,
                      "projectionist: router::shadow_query: the query returns nothing, so there is nothing to "
                      "compare; use query() or return the answer");
        static_assert(std::is_invocable_r_v<bool, Compare&, const result&, const result&>,
                      "projectionist: router::shadow_query: compare(primary answer, candidate answer) must return "
                      "bool (true when they agree)");
        auto entry = enter(key, true);
        queries_.fetch_add(1, std::memory_order_relaxed);
        result served = invoke_on(entry.serving, fn);
        if (!entry.shadow) return served;
        compared_.fetch_add(1, std::memory_order_relaxed);
        const std::size_t shadow = *entry.shadow;
        const bool serving_is_primary = entry.serving == entry.snapshot->primary;
        const std::size_t primary = entry.snapshot->primary;
        const std::size_t candidate = serving_is_primary ? shadow : entry.serving;
        std::optional<result> other;
        try {
            other.emplace(invoke_on(shadow, fn));
        } catch (...) {
            record(key, primary, candidate, serving_is_primary ? &served : nullptr,
                   serving_is_primary ? nullptr : &served,
                   detail::routing::current_exception_text(version_names[shadow]));
            return served;
        }
        const result& p = serving_is_primary ? served : *other;
        const result& c = serving_is_primary ? *other : served;
        bool agree = false;
        try {
            agree = static_cast<bool>(compare(p, c));
        } catch (...) {
            record(key, primary, candidate, &p, &c, detail::routing::current_exception_text("the comparison"));
            return served;
        }
        if (!agree) record(key, primary, candidate, &p, &c, {});
        return served;
    }

    // ---- toggles: each is persisted before it takes effect -----------------------------------

    /// All traffic to P: P becomes the primary, the candidate is cleared; the old primary is what
    /// `rollback()` puts back.
    template <class P>
    void switch_to() {
        require_version<P>();
        switch_to_index(index_of_v<P>);
    }
    /// `switch_to` by versioned name ("tickets_v2"), as typed by a user.
    void switch_to(std::string_view name) { switch_to_index(require_index(name, "switch_to")); }

    /// P becomes the candidate, for `percent` (0 to 100) of the routing keys.
    template <class P>
    void rollout(unsigned percent) {
        require_version<P>();
        rollout_index(index_of_v<P>, percent_to_basis_points(index_of_v<P>, percent));
    }
    void rollout(std::string_view name, unsigned percent) {
        const std::size_t i = require_index(name, "rollout");
        rollout_index(i, percent_to_basis_points(i, percent));
    }
    /// P becomes the candidate, for `basis_points` (0 to 10000) of the keys: 1 basis point = 0.01%.
    template <class P>
    void rollout_basis_points(unsigned basis_points) {
        require_version<P>();
        rollout_index(index_of_v<P>, basis_points);
    }
    void rollout_basis_points(std::string_view name, unsigned basis_points) {
        rollout_index(require_index(name, "rollout"), basis_points);
    }

    /// Cancels the candidate if there is one; otherwise puts the previous primary back (and
    /// forgets it). Throws `state_error` when there is nothing to roll back.
    void rollback() {
        change([&](state& s) {
            if (s.candidate) {
                s.candidate.reset();
                s.basis_points = 0;
            } else if (s.previous) {
                s.primary = *s.previous;
                s.previous.reset();
            } else {
                throw state_error(fmt::format("projectionist: router '{}': nothing to roll back: {} serves every "
                                              "query, no version is being rolled out and no earlier primary is "
                                              "recorded",
                                              projection_name, version_names[s.primary]),
                                  context());
            }
        });
    }

    /// Forgets a version that is being deleted: it may no longer be a rollback target. Throws
    /// state_error if it still receives traffic (it is the primary or the candidate). Call it
    /// before the version's tables are dropped (the deployment and the command line do).
    void forget(std::string_view name) {
        const std::size_t i = require_index(name, "forget");
        change([&](state& s) {
            if (s.primary == i || s.candidate == i)
                throw state_error(fmt::format("projectionist: router '{}': {} still receives traffic; switch it to "
                                              "another version first",
                                              projection_name, version_names[i]),
                                  context());
            if (s.previous == i) s.previous.reset();
        });
    }

    /// Re-reads the persisted state (another process or router object may have changed it).
    /// Returns whether the routing changed. Throws if the saved value is corrupt; the router then
    /// keeps routing as before.
    bool refresh() {
        std::lock_guard lock(write_mutex_);
        auto current = current_state();
        state next = load();
        if (next.same_routing(*current)) return false;
        next.predicate = current->predicate;
        publish(std::move(next));
        return true;
    }

    /// Sends every key the predicate accepts to the candidate, whatever the share (no effect
    /// while there is no candidate). Not persisted: it is code, registered in each process.
    template <class Predicate>
    void prefer_candidate_when(Predicate predicate) {
        static_assert(std::is_invocable_r_v<bool, Predicate&, std::string_view>,
                      "projectionist: router::prefer_candidate_when: the predicate must be callable as "
                      "bool(std::string_view routing_key)");
        set_predicate(std::make_shared<const std::function<bool(std::string_view)>>(std::move(predicate)));
    }
    /// Removes the predicate.
    void clear_candidate_preference() { set_predicate(nullptr); }

    // ---- status ------------------------------------------------------------------------------------

    [[nodiscard]] router_status describe() const {
        auto s = current_state();
        router_status out;
        out.projection = std::string(projection_name);
        out.setting_key = setting_key();
        for (auto n : version_names) out.versions.emplace_back(n);
        out.primary = std::string(version_names[s->primary]);
        if (s->candidate) out.candidate = std::string(version_names[*s->candidate]);
        out.basis_points = s->basis_points;
        if (s->previous) out.previous = std::string(version_names[*s->previous]);
        out.predicate = s->predicate != nullptr;
        return out;
    }

    /// How many queries are running on a version now (shadow runs included).
    template <class P>
    [[nodiscard]] std::size_t in_flight() const {
        require_version<P>();
        return in_flight_[index_of_v<P>].load();
    }
    [[nodiscard]] std::size_t in_flight(std::string_view name) const {
        return in_flight_[require_index(name, "in_flight")].load();
    }

    /// Waits until no query runs on version `name`, which must no longer receive traffic (call it
    /// after `switch_to` or `rollback` moved the traffic away, before dropping its tables).
    /// Returns false if queries were still running on it after `timeout`. Throws `state_error`
    /// if the version is still the primary or the candidate.
    bool wait_for_drain(std::string_view name, std::chrono::milliseconds timeout) const {
        const std::size_t i = require_index(name, "wait_for_drain");
        auto s = current_state();
        if (s->primary == i || s->candidate == i)
            throw state_error(fmt::format("projectionist: router '{}': {} still receives queries (it is the {}); "
                                          "move the traffic away (switch_to, rollback) before waiting for it to "
                                          "drain",
                                          projection_name, name, s->primary == i ? "primary" : "candidate"),
                              context());
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (in_flight_[i].load() != 0) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        return true;
    }

    /// Counters of shadow reads.
    [[nodiscard]] shadow_counters shadow_stats() const {
        return {queries_.load(), compared_.load(), discrepancies_.load(), errors_.load()};
    }
    /// The most recent discrepancies (at most `router_options::max_discrepancies`), oldest first.
    [[nodiscard]] std::vector<discrepancy> discrepancies() const {
        std::lock_guard lock(discrepancy_mutex_);
        return {recent_.begin(), recent_.end()};
    }
    /// Forgets the recorded discrepancies and zeroes the counters.
    void clear_discrepancies() {
        std::lock_guard lock(discrepancy_mutex_);
        recent_.clear();
        queries_ = 0;
        compared_ = 0;
        discrepancies_ = 0;
        errors_ = 0;
    }

private:
    template <class P>
    static constexpr std::size_t index_of_v = boost::mp11::mp_find<versions, P>::value;

    template <class P>
    static constexpr void require_version() {
        static_assert(boost::mp11::mp_contains<versions, P>::value,
                      "projectionist: router<Versions...>: P is not one of the router's versions; list it in "
                      "router<...> to route to it");
    }

    struct state {
        std::size_t primary = 0;
        std::optional<std::size_t> candidate;
        unsigned basis_points = 0;
        std::optional<std::size_t> previous;
        std::shared_ptr<const std::function<bool(std::string_view)>> predicate;  // not persisted

        [[nodiscard]] bool same_routing(const state& o) const noexcept {
            return primary == o.primary && candidate == o.candidate && basis_points == o.basis_points &&
                   previous == o.previous;
        }
    };

    /// The in-flight accounting of one query: released when the query ends.
    struct entry_guard {
        const router* self;
        std::shared_ptr<const state> snapshot;
        std::size_t serving;
        std::optional<std::size_t> shadow;

        entry_guard(const router* r, std::shared_ptr<const state> s, std::size_t serving_index,
                    std::optional<std::size_t> shadow_index) noexcept
            : self(r), snapshot(std::move(s)), serving(serving_index), shadow(shadow_index) {}
        entry_guard(const entry_guard&) = delete;
        entry_guard& operator=(const entry_guard&) = delete;
        ~entry_guard() {
            self->in_flight_[serving].fetch_sub(1);
            if (shadow) self->in_flight_[*shadow].fetch_sub(1);
        }
    };

    [[nodiscard]] static std::size_t decide(const state& s, std::string_view key) {
        if (!s.candidate) return s.primary;
        if (s.basis_points >= routing_buckets) return *s.candidate;
        if (s.basis_points != 0 && routing_bucket(key) < s.basis_points) return *s.candidate;
        if (s.predicate && (*s.predicate)(key)) return *s.candidate;
        return s.primary;
    }

    /// Takes a snapshot, decides and counts the query in flight. If a flip was published between
    /// the snapshot and the count, decides again (the query has not started yet), so that a
    /// drained version stays drained.
    [[nodiscard]] entry_guard enter(std::string_view key, bool with_shadow) const {
        for (;;) {
            const std::uint64_t generation = generation_.load();
            auto snapshot = current_state();
            const std::size_t serving = decide(*snapshot, key);
            std::optional<std::size_t> shadow;
            if (with_shadow && snapshot->candidate)
                shadow = serving == snapshot->primary ? *snapshot->candidate : snapshot->primary;
            in_flight_[serving].fetch_add(1);
            if (shadow) in_flight_[*shadow].fetch_add(1);
            if (generation_.load() == generation) return entry_guard(this, std::move(snapshot), serving, shadow);
            in_flight_[serving].fetch_sub(1);
            if (shadow) in_flight_[*shadow].fetch_sub(1);
        }
    }

    template <class F>
    static decltype(auto) invoke_on(std::size_t index, F& fn) {
        return boost::mp11::mp_with_index<sizeof...(Versions)>(index, [&](auto i) -> decltype(auto) {
            return fn(std::type_identity<boost::mp11::mp_at<versions, decltype(i)>>{});
        });
    }

    template <class Result>
    void record(std::string_view key, std::size_t primary, std::size_t candidate, const Result* primary_value,
                const Result* candidate_value, std::string error) const {
        discrepancies_.fetch_add(1, std::memory_order_relaxed);
        if (!error.empty()) errors_.fetch_add(1, std::memory_order_relaxed);
        if (options_.max_discrepancies == 0) return;
        try {
            discrepancy d{std::string(key),
                          std::string(version_names[primary]),
                          std::string(version_names[candidate]),
                          primary_value ? detail::routing::describe_value(*primary_value) : std::string(),
                          candidate_value ? detail::routing::describe_value(*candidate_value) : std::string(),
                          std::move(error)};
            std::lock_guard lock(discrepancy_mutex_);
            if (recent_.size() == options_.max_discrepancies) recent_.pop_front();
            recent_.push_back(std::move(d));
        } catch (...) {
            // Recording is best effort (formatting or allocation failed): the counters above are
            // kept, and the caller still gets the serving version's answer.
        }
    }

    [[nodiscard]] error_context context() const { return error_context{std::string(projection_name), {}, {}, {}, {}}; }

    [[nodiscard]] static std::string known_names() {
        std::string out;
        for (auto n : version_names) {
            if (!out.empty()) out += ", ";
            out += n;
        }
        return out;
    }

    [[nodiscard]] static std::optional<std::size_t> find_index(std::string_view name) noexcept {
        for (std::size_t i = 0; i < version_names.size(); ++i)
            if (version_names[i] == name) return i;
        return std::nullopt;
    }

    [[nodiscard]] std::size_t require_index(std::string_view name, std::string_view operation) const {
        if (auto i = find_index(name)) return *i;
        throw error(fmt::format("projectionist: router '{}': {}: unknown version '{}'; the versions this router "
                                "knows are: {}",
                                projection_name, operation, name, known_names()),
                    context());
    }

    [[nodiscard]] unsigned percent_to_basis_points(std::size_t index, unsigned percent) const {
        if (percent > 100)
            throw error(fmt::format("projectionist: router '{}': rollout of {} to {}%: the share is 0 to 100 percent",
                                    projection_name, version_names[index], percent),
                        context());
        return percent * 100;
    }

    void switch_to_index(std::size_t index) {
        change([&](state& s) {
            if (s.primary != index) {
                s.previous = s.primary;
                s.primary = index;
            }
            s.candidate.reset();
            s.basis_points = 0;
        });
    }

    void rollout_index(std::size_t index, unsigned basis_points) {
        if (basis_points > routing_buckets)
            throw error(fmt::format("projectionist: router '{}': rollout of {} to {} basis points: the share is 0 to "
                                    "{} basis points (0 to 100%)",
                                    projection_name, version_names[index], basis_points, routing_buckets),
                        context());
        change([&](state& s) {
            if (s.primary == index)
                throw state_error(fmt::format("projectionist: router '{}': {} is the primary already and serves every "
                                              "key not rolled out; roll out another version, or switch_to one",
                                              projection_name, version_names[index]),
                                  context());
            s.candidate = index;
            s.basis_points = basis_points;
        });
    }

    /// Read-modify-write of the persisted state, then publication. Starts from the persisted
    /// state so that a change made by another process is not undone by a stale snapshot.
    template <class Fn>
    void change(Fn&& fn) {
        std::lock_guard lock(write_mutex_);
        state next = load();
        fn(next);
        settings_.save(setting_key(), encode(next));
        next.predicate = current_state()->predicate;
        publish(std::move(next));
    }

    void set_predicate(std::shared_ptr<const std::function<bool(std::string_view)>> predicate) {
        std::lock_guard lock(write_mutex_);
        state next = *current_state();
        next.predicate = std::move(predicate);
        publish(std::move(next));
    }

    /// The current snapshot. A mutex-guarded copy rather than std::atomic<std::shared_ptr>:
    /// libstdc++ 12's atomic<shared_ptr>::load releases its internal lock with a relaxed store
    /// after reading the pointer, which ThreadSanitizer reports as a race with store()
    /// (google/sanitizers#1558) and which is not ordered on weakly ordered CPUs.
    [[nodiscard]] std::shared_ptr<const state> current_state() const {
        std::lock_guard lock(state_mutex_);
        return state_;
    }

    /// Makes `next` the state new queries see. Queries already routed keep their version.
    void publish(state next) {
        auto fresh = std::make_shared<const state>(std::move(next));
        {
            std::lock_guard lock(state_mutex_);
            state_.swap(fresh);
        }  // the old snapshot is released outside the lock (by its last query, if one still holds it)
        generation_.fetch_add(1);
    }

    // ---- the persisted text --------------------------------------------------------------------

    [[nodiscard]] static std::string encode(const state& s) {
        std::string out = fmt::format("format=1 primary={}", version_names[s.primary]);
        if (s.candidate)
            out += fmt::format(" candidate={} basis_points={}", version_names[*s.candidate], s.basis_points);
        if (s.previous) out += fmt::format(" previous={}", version_names[*s.previous]);
        return out;
    }

    [[noreturn]] void corrupt(std::string_view value, std::string_view what) const {
        throw error(fmt::format("projectionist: router '{}': the saved setting '{}' is invalid: {}; its value is "
                                "'{}'. The versions this router knows are: {}. Repair it by saving a valid value "
                                "under that key, e.g. 'format=1 primary={}'",
                                projection_name, setting_key(), what, value, known_names(), version_names[0]),
                    context());
    }

    [[nodiscard]] state load() const {
        auto saved = settings_.find(setting_key());
        if (!saved) return state{};
        return decode(*saved);
    }

    [[nodiscard]] state decode(std::string_view value) const {
        state s;
        std::optional<std::string_view> format, primary, candidate, basis_points, previous;
        std::size_t pos = 0;
        bool first = true;
        while (pos < value.size()) {
            if (value[pos] == ' ') {
                ++pos;
                continue;
            }
            const std::size_t end = std::min(value.find(' ', pos), value.size());
            const std::string_view token = value.substr(pos, end - pos);
            pos = end;
            const std::size_t eq = token.find('=');
            if (eq == std::string_view::npos) corrupt(value, fmt::format("'{}' is not a key=value pair", token));
            const std::string_view key = token.substr(0, eq);
            const std::string_view v = token.substr(eq + 1);
            std::optional<std::string_view>* slot = key == "format"         ? &format
                                                    : key == "primary"      ? &primary
                                                    : key == "candidate"    ? &candidate
                                                    : key == "basis_points" ? &basis_points
                                                    : key == "previous"     ? &previous
                                                                            : nullptr;
            if (slot == nullptr)
                corrupt(value, fmt::format("unknown key '{}' (known: format, primary, candidate, basis_points, "
                                           "previous)",
                                           key));
            if (*slot) corrupt(value, fmt::format("the key '{}' appears twice", key));
            if (first && key != "format") corrupt(value, "it does not start with format=1");
            first = false;
            *slot = v;
        }
        if (!format) corrupt(value, "it does not start with format=1");
        if (*format != "1")
            corrupt(value, fmt::format("format {} is not known to this version of projectionist (it reads format 1); "
                                       "was it written by a newer one?",
                                       *format));
        auto version_index = [&](std::string_view key, std::string_view name) {
            if (auto i = find_index(name)) return *i;
            corrupt(value, fmt::format("{} '{}' is not a version this router knows", key, name));
        };
        if (!primary) corrupt(value, "it names no primary");
        s.primary = version_index("primary", *primary);
        if (candidate) {
            s.candidate = version_index("candidate", *candidate);
            if (*s.candidate == s.primary) corrupt(value, "the candidate is the primary");
            if (!basis_points) corrupt(value, "the candidate has no basis_points");
            unsigned bp = 0;
            const auto* b = basis_points->data();
            const auto* e = b + basis_points->size();
            auto [ptr, ec] = std::from_chars(b, e, bp);
            if (basis_points->empty() || ec != std::errc{} || ptr != e || bp > routing_buckets)
                corrupt(value,
                        fmt::format("basis_points '{}' is not a number from 0 to {}", *basis_points, routing_buckets));
            s.basis_points = bp;
        } else if (basis_points) {
            corrupt(value, "basis_points without a candidate");
        }
        if (previous) {
            s.previous = version_index("previous", *previous);
            if (*s.previous == s.primary) corrupt(value, "the previous primary is the primary");
        }
        return s;
    }

    detail::routing::settings_ref settings_;
    router_options options_;
    mutable std::mutex state_mutex_;      // guards the pointer only, for the time of a copy
    std::shared_ptr<const state> state_;  // immutable once published
    std::atomic<std::uint64_t> generation_{0};
    std::mutex write_mutex_;
    mutable std::array<std::atomic<std::size_t>, sizeof...(Versions)> in_flight_{};

    mutable std::atomic<std::uint64_t> queries_{0};
    mutable std::atomic<std::uint64_t> compared_{0};
    mutable std::atomic<std::uint64_t> discrepancies_{0};
    mutable std::atomic<std::uint64_t> errors_{0};
    mutable std::mutex discrepancy_mutex_;
    mutable std::deque<discrepancy> recent_;
};

/// `make_router<tickets<1>, tickets<2>>(storage)`: the same as `router<tickets<1>, tickets<2>>
/// r(storage)`, for `auto`.
template <class... Versions, class Settings>
[[nodiscard]] router<Versions...> make_router(Settings& settings, router_options options = {}) {
    return router<Versions...>(settings, options);
}

}  // namespace projectionist
