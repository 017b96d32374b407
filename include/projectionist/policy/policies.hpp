#pragma once

#include <type_traits>

#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>

#include <projectionist/meta/type_list.hpp>
#include <projectionist/storage/memory_storage.hpp>
#include <projectionist/store/memory_event_store.hpp>

namespace projectionist {

namespace detail {
struct partitioning_category {};
struct emission_category {};
struct kickoff_category {};
struct failure_category {};

/// What a policy of one kind derives from: its category, which the runner sorts policies by.
template <class Category>
struct policy {
    using policy_category = Category;
};
}  // namespace detail

// ---- partitioning --------------------------------------------------------------------------

/// One position for the whole log; events applied in strict global order. The default.
struct global : detail::policy<detail::partitioning_category> {
    static constexpr bool partitioned = false;
    static constexpr std::string_view name = "global";
};

/// A position per aggregate (its last applied aggregate version). Aggregates are independent:
/// an event already applied is skipped, a version gap is an error.
struct per_aggregate : detail::policy<detail::partitioning_category> {
    static constexpr bool partitioned = true;
    static constexpr std::string_view name = "per_aggregate";
};

// ---- emission ------------------------------------------------------------------------------

/// `ctx.emit` is not available: calling it is a compile error.
struct no_emission : detail::policy<detail::emission_category> {
    static constexpr bool allowed = false;
    static constexpr bool pass(bool /*live*/) noexcept { return false; }
};

/// Emitted events are dropped (and counted) until the projection is made live, then appended.
/// The default: a backfill never re-sends history to downstream consumers.
struct emit_when_live : detail::policy<detail::emission_category> {
    static constexpr bool allowed = true;
    static constexpr bool pass(bool live) noexcept { return live; }
};

/// Emitted events are always appended, live or not.
struct emit_always : detail::policy<detail::emission_category> {
    static constexpr bool allowed = true;
    static constexpr bool pass(bool /*live*/) noexcept { return true; }
};

// ---- kick-off ------------------------------------------------------------------------------

/// The projection initializes itself on first use. The default.
struct auto_kickoff : detail::policy<detail::kickoff_category> {
    static constexpr bool manual = false;
};

/// The projection stays dormant (creates nothing, processes nothing) until `init` is called.
struct manual_kickoff : detail::policy<detail::kickoff_category> {
    static constexpr bool manual = true;
};

// ---- failure -------------------------------------------------------------------------------

/// An event that cannot be applied stops the projection at its last committed position. The
/// default.
struct stop_on_error : detail::policy<detail::failure_category> {
    static constexpr bool skips = false;
};

/// An event that cannot be applied (its handler throws, its payload cannot be decoded, its type
/// is unknown) is recorded as a dead letter, with position, aggregate, type and reason, and
/// skipped; the projection goes on. Per aggregate, only the failing aggregate stops: its later
/// events are parked (recorded as dead letters too) while every other aggregate goes on.
struct skip_to_dead_letter : detail::policy<detail::failure_category> {
    static constexpr bool skips = true;
};

namespace detail {

/// The event store a storage pairs with unless the runner names one: the storage's own member
/// alias `default_event_store` (declared in the storage's header, so the choice never depends on
/// which headers a translation unit includes, or in which order), else memory_event_store.
///
///     static_assert(std::is_same_v<projectionist::detail::default_event_store<projectionist::sqlite_storage>::type,
///                                  projectionist::sqlite_event_store>);
template <class Storage>
struct default_event_store {
    using type = memory_event_store;
};
template <class Storage>
requires requires {
    typename Storage::default_event_store;
}
struct default_event_store<Storage> {
    using type = typename Storage::default_event_store;
};

/// The category a runner sorts a policy by: its `policy_category`, or the storage or event store
/// category it declares; void for a type that is no policy.
template <class T>
consteval auto category_probe() {
    if constexpr (requires { typename T::policy_category; })
        return std::type_identity<typename T::policy_category>{};
    else if constexpr (requires { typename T::storage_category; })
        return std::type_identity<storage_category>{};
    else if constexpr (requires { typename T::event_store_category; })
        return std::type_identity<event_store_category>{};
    else
        return std::type_identity<void>{};
}
template <class T>
struct category_of {
    using type = typename decltype(category_probe<T>())::type;
};

template <class T>
concept runner_policy = !std::is_void_v<typename category_of<T>::type>;

template <class T>
consteval bool require_policy() {
    static_assert(
        runner_policy<T>,
        "projectionist: runner<Projection, Policies...>: this type is not a runner policy; expected a storage "
        "(memory_storage, sqlite_storage, postgres_storage, or a type that models the storage concept), an event "
        "store (memory_event_store, sqlite_event_store, postgres_event_store, or a type that models the "
        "event_store concept), a "
        "partitioning (global, per_aggregate), an emission (no_emission, emit_when_live, emit_always), a "
        "kick-off (auto_kickoff, manual_kickoff) or a failure policy (stop_on_error, skip_to_dead_letter)");
    return true;
}

template <class Category>
struct in_category {
    template <class T>
    using fn = std::is_same<typename category_of<T>::type, Category>;
};

template <class... Policies>
consteval bool require_one_of_each() {
    constexpr auto count = [](auto category) {
        return boost::mp11::mp_count_if_q<boost::mp11::mp_list<Policies...>, in_category<decltype(category)>>::value;
    };
    static_assert(count(storage_category{}) <= 1 && count(event_store_category{}) <= 1 &&
                      count(partitioning_category{}) <= 1 && count(emission_category{}) <= 1 &&
                      count(kickoff_category{}) <= 1 && count(failure_category{}) <= 1,
                  "projectionist: runner<Projection, Policies...>: two policies of the same kind (e.g. both global "
                  "and per_aggregate); give at most one of each kind");
    return true;
}

/// The policy of `Category` in `Policies`, or `Default`. Two of one category is an error.
template <class Category, class Default, class... Policies>
struct select_policy {
    using matches = boost::mp11::mp_copy_if_q<boost::mp11::mp_list<Policies...>, in_category<Category>>;
    using type =
        boost::mp11::mp_eval_if_c<boost::mp11::mp_empty<matches>::value, Default, boost::mp11::mp_front, matches>;
};

/// The runner's policies, each picked from the pack or defaulted; order in the pack is free.
template <class... Policies>
struct runner_config {
    static constexpr bool valid = (require_policy<Policies>() && ...) && require_one_of_each<Policies...>();
    using storage = typename select_policy<storage_category, memory_storage, Policies...>::type;
    using event_store =
        typename select_policy<event_store_category, typename default_event_store<storage>::type, Policies...>::type;
    using partitioning = typename select_policy<partitioning_category, global, Policies...>::type;
    using emission = typename select_policy<emission_category, emit_when_live, Policies...>::type;
    using kickoff = typename select_policy<kickoff_category, auto_kickoff, Policies...>::type;
    using failure = typename select_policy<failure_category, stop_on_error, Policies...>::type;
};

}  // namespace detail
}  // namespace projectionist
