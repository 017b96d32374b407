#pragma once

/// The router itself: which version serves a key (`route`, `query`), shadow reads on both versions
/// (`shadow_query`), the toggles that change the routing (each persisted first), and the count of
/// queries in flight per version (`in_flight`, `wait_for_drain`). Include
/// <projectionist/deploy/router.hpp>, whose comment gives the rules.
///
///     projectionist::router<tickets<1>, tickets<2>> router(storage);
///     router.rollout<tickets<2>>(10);

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>

#include <projectionist/deploy/router/bucket.hpp>
#include <projectionist/deploy/router/definitions.hpp>
#include <projectionist/deploy/router/predicates.hpp>
#include <projectionist/deploy/router/shadow.hpp>
#include <projectionist/deploy/router/state.hpp>
#include <projectionist/detail/text.hpp>
#include <projectionist/error.hpp>
#include <projectionist/projection/projection.hpp>

namespace projectionist {

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
        : settings_(settings),
          state_(std::make_shared<const state>(load())),
          shadow_(options.max_discrepancies),
          sampler_(options.shadow_sampling),
          rereads_(options.shadow_rereads),
          reread_delay_(options.shadow_reread_delay) {
        named_.set_enabled(load_enabled_predicate());
    }

    router(const router&) = delete;
    router& operator=(const router&) = delete;

    // ---- queries ---------------------------------------------------------------------------------

    /// The versioned name that `key` is routed to now.
    [[nodiscard]] std::string_view route(std::string_view key) const {
        auto snapshot = current_state();
        const std::size_t serving = decide(*snapshot, key);
        require_same_definition(*snapshot, serving);
        return version_names[serving];
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

    /// Runs `fn` on the version `key` is routed to and, when there is a candidate and the call is
    /// sampled (`router_options::shadow_sampling`), on the other version too; returns the serving
    /// version's answer (the primary's unless the key is rolled out). A difference by
    /// `compare(primary answer, candidate answer)` (false: they differ), or an exception of the
    /// shadow run or the comparison, is recorded as a discrepancy; different answers only after
    /// `router_options::shadow_rereads` re-reads of both versions differ too (router/shadow.hpp),
    /// so `fn` may run more than twice.
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
        auto entry = enter(key, sampler_.sample());
        shadow_.count_query();
        result served = invoke_on(entry.serving, fn);
        if (!entry.shadow) return served;
        shadow_.count_compared();
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
        if (!agree) reread(key, primary, candidate, fn, compare, p, c);
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

    /// Sends every key to the primary again if `name` is the candidate, and returns whether it
    /// was; otherwise changes nothing (another process switched to it, cancelled it, or rolls out
    /// another version). Unlike rollback(), never puts an earlier primary back: what a rollout
    /// that stops uses, whatever it saw of the routing last.
    bool cancel_rollout(std::string_view name) {
        const std::size_t index = require_index(name, "cancel the rollout of");
        bool cancelled = false;
        change([&](state& s) {
            cancelled = s.candidate == index;
            if (!cancelled) return;
            s.candidate.reset();
            s.basis_points = 0;
        });
        return cancelled;
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

    /// Removes a version that is being deleted from the routing: it may no longer be a rollback
    /// target. Throws state_error if it still receives traffic (it is the primary or the
    /// candidate). Call it before the version's tables are dropped (the deployment and the
    /// command line do). Deleting a version is `remove` in every C++ type (`delete` is a keyword)
    /// and `delete` on the command line.
    void remove(std::string_view name) {
        const std::size_t i = require_index(name, "remove");
        change([&](state& s) {
            if (s.primary == i || s.candidate == i)
                throw state_error(fmt::format("projectionist: router '{}': {} still receives traffic; switch it to "
                                              "another version first",
                                              projection_name, version_names[i]),
                                  context());
            if (s.previous == i) s.previous.reset();
        });
    }
    [[deprecated(
        "projectionist: router::forget(name) is now router::remove(name), as on a runner and a deployment")]] void
    forget(std::string_view name) {
        remove(name);
    }

    /// Re-reads the persisted state (another process or router object may have changed it).
    /// Returns whether the routing changed. Throws if the saved value is corrupt; the router then
    /// keeps routing as before.
    bool refresh() {
        std::lock_guard lock(write_mutex_);
        auto current = current_state();
        state next = load();
        const bool toggled = named_.set_enabled(load_enabled_predicate());
        if (!toggled && static_cast<const detail::routing::routing_state&>(next) == *current &&
            next.changed == current->changed)
            return false;
        next.predicate = toggled ? named_.active() : current->predicate;
        next.preferred = current->preferred;
        publish(std::move(next));
        return true;
    }

    /// Sends every key the predicate accepts to the candidate, whatever the share (no effect
    /// while there is no candidate). Not persisted: it is code, registered in each process (a
    /// rollout's first step sets it). Independent of the named predicate switched on
    /// (`enable_predicate`): a key that either accepts goes to the candidate.
    template <class Predicate>
    void prefer_candidate_when(Predicate predicate) {
        static_assert(std::is_invocable_r_v<bool, Predicate&, std::string_view>,
                      "projectionist: router::prefer_candidate_when: the predicate must be callable as "
                      "bool(std::string_view routing_key)");
        set_preferred(std::make_shared<const std::function<bool(std::string_view)>>(std::move(predicate)));
    }
    /// Removes the `prefer_candidate_when` predicate (the named one stays as it is).
    void clear_candidate_preference() { set_preferred(nullptr); }

    /// Registers `predicate` under `name` (a-z, 0-9, '-', '_'), e.g. "internal-users": code, so
    /// every process that routes or switches it registers it. It routes only while it is switched
    /// on (`enable_predicate`, or the command line's `predicate` command), for every process.
    template <class Predicate>
    void register_predicate(std::string name, Predicate predicate) {
        static_assert(std::is_invocable_r_v<bool, Predicate&, std::string_view>,
                      "projectionist: router::register_predicate: the predicate must be callable as "
                      "bool(std::string_view routing_key)");
        const std::string registered = name;
        named_.add(projection_name, std::move(name),
                   std::make_shared<const std::function<bool(std::string_view)>>(std::move(predicate)));
        if (named_.enabled() == registered) set_predicate(named_.active());
    }
    /// Switches the predicate registered as `name` on (persisted: every process routes with it,
    /// beside a `prefer_candidate_when` predicate). Throws `error` if no such name is registered.
    void enable_predicate(std::string_view name) {
        auto fn = named_.require(projection_name, name);
        std::lock_guard lock(write_mutex_);
        settings_.save(detail::routing::named_predicates::setting_key(projection_name), name);
        named_.set_enabled(std::string(name));
        publish_predicate(std::move(fn));
    }
    /// Switches the named predicate off (persisted); keys go by the share alone.
    void disable_predicate() {
        std::lock_guard lock(write_mutex_);
        settings_.save(detail::routing::named_predicates::setting_key(projection_name), "");
        named_.set_enabled(std::nullopt);
        publish_predicate(nullptr);
    }
    /// The names registered with `register_predicate`, sorted.
    [[nodiscard]] std::vector<std::string> predicate_names() const { return named_.names(); }
    /// The named predicate switched on, as last read (`refresh`) or written.
    [[nodiscard]] std::optional<std::string> enabled_predicate() const { return named_.enabled(); }

    // ---- status ------------------------------------------------------------------------------------

    /// The routing as this process sees it (a snapshot): primary, candidate and share, previous,
    /// predicates, versions. `status()` is the name of a status snapshot on every type: a runner,
    /// a worker, a controller, a router.
    [[nodiscard]] router_status status() const {
        auto s = current_state();
        router_status out;
        out.projection = std::string(projection_name);
        out.setting_key = setting_key();
        for (auto n : version_names) out.versions.emplace_back(n);
        out.primary = std::string(version_names[s->primary]);
        if (s->candidate) out.candidate = std::string(version_names[*s->candidate]);
        out.basis_points = s->basis_points;
        if (s->previous) out.previous = std::string(version_names[*s->previous]);
        out.predicate = s->predicate != nullptr || s->preferred != nullptr;
        out.predicate_name = named_.enabled();
        out.predicates = named_.names();
        return out;
    }
    [[deprecated(
        "projectionist: router::describe() is now router::status(), the name of every status "
        "snapshot")]] [[nodiscard]] router_status
    describe() const {
        return status();
    }

    /// How many queries are running on a version now (shadow runs included).
    template <class P>
    [[nodiscard]] std::size_t in_flight() const {
        require_version<P>();
        return counts_[index_of_v<P>].in_flight();
    }
    [[nodiscard]] std::size_t in_flight(std::string_view name) const {
        return counts_[require_index(name, "in_flight")].in_flight();
    }

    /// How many queries (shadow runs included) this router has sent to a version since it was
    /// created: the counts the in-flight accounting keeps anyway, so counting costs nothing more.
    template <class P>
    [[nodiscard]] std::uint64_t queries() const {
        require_version<P>();
        return counts_[index_of_v<P>].total();
    }
    [[nodiscard]] std::uint64_t queries(std::string_view name) const {
        return counts_[require_index(name, "queries")].total();
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
        while (counts_[i].in_flight() != 0) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        return true;
    }

    /// Counters of shadow reads, since the router was created or clear_discrepancies().
    [[nodiscard]] shadow_counters shadow_stats() const { return shadow_.counters(); }
    /// Counters of shadow reads since the router was created, whatever clear_discrepancies() did:
    /// what a rollout counts a step's reads from.
    [[nodiscard]] shadow_counters shadow_totals() const { return shadow_.totals(); }
    /// The most recent discrepancies (at most `router_options::max_discrepancies`), oldest first.
    [[nodiscard]] std::vector<discrepancy> discrepancies() const { return shadow_.recent(); }
    /// Forgets the recorded discrepancies and zeroes shadow_stats() (not shadow_totals(), nor the
    /// discrepancies' sequence numbers: a running rollout's counts go on).
    void clear_discrepancies() { shadow_.clear(); }
    /// The share of shadow_query calls that are shadowed, in basis points (10000: all); takes
    /// effect for the next call. Above 10000 counts as 10000.
    void set_shadow_sampling(unsigned basis_points) noexcept { sampler_.set(basis_points); }
    [[nodiscard]] unsigned shadow_sampling() const noexcept { return sampler_.get(); }

private:
    template <class P>
    static constexpr std::size_t index_of_v = boost::mp11::mp_find<versions, P>::value;

    template <class P>
    static constexpr void require_version() {
        static_assert(boost::mp11::mp_contains<versions, P>::value,
                      "projectionist: router<Versions...>: P is not one of the router's versions; list it in "
                      "router<...> to route to it");
    }

    /// A published snapshot: the persisted routing and this process's predicates.
    struct state : detail::routing::routing_state {
        std::shared_ptr<const std::function<bool(std::string_view)>> predicate;  ///< the named one switched on
        std::shared_ptr<const std::function<bool(std::string_view)>> preferred;  ///< prefer_candidate_when's
        /// Per version: why it may not be sent queries (another build's definition), read at load.
        std::array<std::optional<std::string>, sizeof...(Versions)> changed{};
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
            self->counts_[serving].leave();
            if (shadow) self->counts_[*shadow].leave();
        }
    };

    [[nodiscard]] static std::size_t decide(const state& s, std::string_view key) {
        if (!s.candidate) return s.primary;
        if (s.basis_points >= routing_buckets) return *s.candidate;
        if (s.basis_points != 0 && routing_bucket(key) < s.basis_points) return *s.candidate;
        if (s.predicate && (*s.predicate)(key)) return *s.candidate;
        if (s.preferred && (*s.preferred)(key)) return *s.candidate;
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
            require_same_definition(*snapshot, serving);
            if (shadow) require_same_definition(*snapshot, *shadow);
            counts_[serving].enter();
            if (shadow) counts_[*shadow].enter();
            if (generation_.load() == generation) return entry_guard(this, std::move(snapshot), serving, shadow);
            counts_[serving].undo();
            if (shadow) counts_[*shadow].undo();
        }
    }

    template <class F>
    static decltype(auto) invoke_on(std::size_t index, F& fn) {
        return boost::mp11::mp_with_index<sizeof...(Versions)>(index, [&](auto i) -> decltype(auto) {
            return fn(std::type_identity<boost::mp11::mp_at<versions, decltype(i)>>{});
        });
    }

    /// A shadow read whose answers p and c differed: reads both versions again, up to
    /// `shadow_rereads` times, and records a discrepancy (with the last answers) only if none of
    /// the re-reads agrees. An exception of a re-read is recorded as the first one would be.
    template <class F, class Compare, class Result>
    void reread(std::string_view key, std::size_t primary, std::size_t candidate, F& fn, Compare& compare,
                const Result& p, const Result& c) const {
        std::optional<Result> again_p, again_c;
        for (unsigned i = 0; i < rereads_; ++i) {
            std::this_thread::sleep_for(reread_delay_);
            again_p.reset();
            again_c.reset();
            try {
                again_p.emplace(invoke_on(primary, fn));
                again_c.emplace(invoke_on(candidate, fn));
                if (static_cast<bool>(compare(*again_p, *again_c))) {
                    shadow_.count_settled();
                    return;
                }
            } catch (...) {
                const std::string_view who = !again_p   ? version_names[primary]
                                             : !again_c ? version_names[candidate]
                                                        : "the comparison";
                record(key, primary, candidate, again_p ? &*again_p : nullptr, again_c ? &*again_c : nullptr,
                       detail::routing::current_exception_text(who));
                return;
            }
        }
        if (again_p && again_c)
            record(key, primary, candidate, &*again_p, &*again_c, {});
        else
            record(key, primary, candidate, &p, &c, {});
    }

    template <class Result>
    void record(std::string_view key, std::size_t primary, std::size_t candidate, const Result* primary_value,
                const Result* candidate_value, std::string error) const {
        shadow_.record(key, version_names[primary], version_names[candidate], primary_value, candidate_value,
                       std::move(error));
    }

    [[nodiscard]] error_context context() const { return error_context{std::string(projection_name), {}, {}, {}, {}}; }

    [[nodiscard]] static std::string known_names() { return detail::join(version_names); }

    [[nodiscard]] static std::optional<std::size_t> find_index(std::string_view name) noexcept {
        return detail::routing::find_version(version_names, name);
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
    /// state so that a change made by another process is not undone by a stale snapshot, and
    /// writes it as a compare-and-set (atomically on the storages of this library): when another
    /// process wrote between the read and the write, `fn` runs again on what it wrote.
    template <class Fn>
    void change(Fn&& fn) {
        std::lock_guard lock(write_mutex_);
        const std::string key = setting_key();
        for (;;) {
            const std::optional<std::string> saved = settings_.find(key);
            const state before = load(saved);
            state next = before;
            fn(next);
            if (next.primary != before.primary) {
                require_not_deleted(next.primary);
                require_same_definition(next, next.primary);
            }
            if (next.candidate && next.candidate != before.candidate) {
                require_not_deleted(*next.candidate);
                require_same_definition(next, *next.candidate);
            }
            const std::string text = detail::routing::format_routing_state(next, version_names);
            if (!settings_.replace(key, saved ? std::optional<std::string_view>(*saved) : std::nullopt, text)) continue;
            next.predicate = current_state()->predicate;
            next.preferred = current_state()->preferred;
            publish(std::move(next));
            return;
        }
    }

    void set_preferred(std::shared_ptr<const std::function<bool(std::string_view)>> predicate) {
        std::lock_guard lock(write_mutex_);
        state next = *current_state();
        next.preferred = std::move(predicate);
        publish(std::move(next));
    }

    void set_predicate(std::shared_ptr<const std::function<bool(std::string_view)>> predicate) {
        std::lock_guard lock(write_mutex_);
        publish_predicate(std::move(predicate));
    }

    /// Publishes the current routing with `predicate`; the caller holds `write_mutex_`.
    void publish_predicate(std::shared_ptr<const std::function<bool(std::string_view)>> predicate) {
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

    // ---- the persisted text (router/state.hpp) --------------------------------------------------

    /// The persisted state. With a settings object that is a storage, versions the catalog says
    /// are deleted are left out (a deleted previous primary is forgotten, a deleted candidate
    /// cancelled), and a version this build does not have but that still exists is refused
    /// with the commands that retire it.
    [[nodiscard]] state load() const { return load(settings_.find(setting_key())); }
    /// The state that the setting's text `saved` (nullopt: none saved) holds.
    [[nodiscard]] state load(std::optional<std::string> saved) const {
        state s;
        s.changed = detail::routing::definition_changes_of<Versions...>(settings_);
        const std::string key = setting_key();
        if (!saved) return s;
        if (settings_.has_catalog()) {
            for (const auto& t : detail::routing::routing_tokens(*saved))
                if ((t.key == "primary" || t.key == "candidate" || t.key == "previous") && !find_index(t.value))
                    if (auto entry = settings_.catalog(t.value); entry && entry->state != projection_state::deleted)
                        throw error(
                            fmt::format("projectionist: router '{}': the saved setting '{}' names {} '{}', a version "
                                        "this build does not have, and {} is not deleted (it is {}); with a release "
                                        "that still has its code, {}delete {}",
                                        projection_name, key, t.key, t.value, t.value, to_string(entry->state),
                                        t.key == "previous" ? ""
                                                            : fmt::format("switch {} --to <one of: {}>, then ",
                                                                          projection_name, known_names()),
                                        t.value),
                            context());
            *saved = detail::routing::without_deleted(
                *saved, [&](std::string_view name) { return deleted(name); }, version_names[0]);
        }
        static_cast<detail::routing::routing_state&>(s) =
            detail::routing::parse_routing_state(*saved, {projection_name, key, version_names});
        return s;
    }

    /// Whether the catalog keeps `name` as deleted (a tombstone). A name with no catalog row at all
    /// stays an error when this build does not know it: nothing says it ever existed.
    [[nodiscard]] bool deleted(std::string_view name) const {
        const auto entry = settings_.catalog(name);
        return entry && entry->state == projection_state::deleted;
    }

    /// Refuses to send queries to a version whose tables were dropped.
    void require_not_deleted(std::size_t index) const {
        if (!settings_.has_catalog()) return;
        const auto entry = settings_.catalog(version_names[index]);
        if (!entry || entry->state != projection_state::deleted) return;
        throw state_error(fmt::format("projectionist: router '{}': cannot send queries to {}: it was deleted{}{} and "
                                      "its tables are gone; run init {} and backfill it to bring it back",
                                      projection_name, version_names[index],
                                      entry->deleted_at.empty() ? "" : fmt::format(" at {}", entry->deleted_at),
                                      entry->deleted_by.empty() ? "" : fmt::format(" by {}", entry->deleted_by),
                                      version_names[index]),
                          context());
    }

    /// Refuses to send queries to a version that another build initialized with another
    /// definition (deploy/router/definitions.hpp): its tables are not what this build reads.
    void require_same_definition(const state& s, std::size_t index) const {
        if (s.changed[index])
            throw state_error(fmt::format("projectionist: router '{}': cannot send queries to {}: {}", projection_name,
                                          version_names[index], *s.changed[index]),
                              context());
    }

    /// The named predicate switched on, as persisted (none when the setting is absent or empty).
    [[nodiscard]] std::optional<std::string> load_enabled_predicate() const {
        return settings_.find(detail::routing::named_predicates::setting_key(projection_name));
    }

    detail::routing::settings_ref settings_;
    mutable std::mutex state_mutex_;      // guards the pointer only, for the time of a copy
    std::shared_ptr<const state> state_;  // immutable once published
    std::atomic<std::uint64_t> generation_{0};
    std::mutex write_mutex_;
    mutable std::array<detail::routing::query_counts, sizeof...(Versions)> counts_{};
    mutable detail::routing::shadow_log shadow_;
    detail::routing::shadow_sampler sampler_;
    unsigned rereads_;
    std::chrono::milliseconds reread_delay_;
    detail::routing::named_predicates named_;
};

/// `make_router<tickets<1>, tickets<2>>(storage)`: the same as `router<tickets<1>, tickets<2>>
/// r(storage)`, for `auto`.
template <class... Versions, class Settings>
[[nodiscard]] router<Versions...> make_router(Settings& settings, router_options options = {}) {
    return router<Versions...>(settings, options);
}

}  // namespace projectionist
