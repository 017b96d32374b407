#pragma once

#include <cstddef>
#include <string_view>
#include <type_traits>

#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>

#include <projectionist/event/envelope.hpp>
#include <projectionist/event/event.hpp>
#include <projectionist/meta/fixed_string.hpp>
#include <projectionist/meta/type_list.hpp>
#include <projectionist/projection/projection.hpp>

namespace projectionist {

namespace detail {

template <class P, class E, class Ctx>
concept handler_with_context = requires(P& p, const E& e, Ctx& ctx) {
    p.on(e, ctx);
};

template <class P, class E, class Ctx>
concept handler_with_envelope = requires(P& p, const E& e, const envelope& env, Ctx& ctx) {
    p.on(e, env, ctx);
};

/// Calls the projection's handler for `E`, in whichever of the two accepted forms it has. The
/// envelope comes from the context, which builds it only when asked: the two-argument form never
/// pays for it.
template <class P, class E, class Ctx>
inline void invoke_handler(P& p, const E& e, Ctx& ctx) {
    if constexpr (handler_with_envelope<P, E, Ctx>)
        p.on(e, ctx.envelope(), ctx);
    else
        p.on(e, ctx);
}

// ---- detecting a handler for an event outside the projection's streams ---------------------
//
// Overload sets cannot be listed, so the check asks a question instead: with a probe argument
// that converts to any event *except* the projection's own, is some `on` overload viable? A
// fallback `on(const probe&, ...)` is added in a derived class: it matches the probe exactly but
// the rest only through an ellipsis, so it wins alone when no foreign handler exists and is
// ambiguous with any foreign handler (each one is better on a different argument).

struct no_foreign_handler {};

template <class Known>
struct foreign_event_probe {
    template <class T>
    requires(event<T> && !list_contains<Known, T>) operator const T&() const;
};

template <class P>
struct fallback_on_base {
    void on();
};
template <class P>
struct has_any_on_helper : P, fallback_on_base<P> {};
/// Whether P declares any member named `on` (taking its address is ambiguous if so).
template <class P>
concept has_on_member = !requires {
    &has_any_on_helper<P>::on;
};

template <class P, class Known>
struct foreign_probe_host : P {
    using P::on;
    no_foreign_handler on(const foreign_event_probe<Known>&, ...);
};

/// Converts to nothing: only an unconstrained `template <class E> on(const E&, ...)` accepts it.
struct opaque_probe {};

/// Whether P has a catch-all handler. Such a handler takes every event on purpose, so there is
/// no specific foreign overload to find (and the probe below would bind to the catch-all).
template <class P, class Ctx>
concept has_catch_all_handler = requires(P& p, const opaque_probe& x, Ctx& ctx) {
    p.on(x, ctx);
}
|| requires(P& p, const opaque_probe& x, const envelope& env, Ctx& ctx) {
    p.on(x, env, ctx);
};

template <class P, class Ctx>
constexpr bool has_foreign_handler() {
    if constexpr (!has_on_member<P> || std::is_final_v<P> || has_catch_all_handler<P, Ctx>) {
        return false;
    } else {
        using host = foreign_probe_host<P, subscribed_events<P>>;
        using probe = foreign_event_probe<subscribed_events<P>>;
        constexpr bool two_args_clean = requires(host & h, const probe& pr, Ctx& ctx) {
            { h.on(pr, ctx) } -> std::same_as<no_foreign_handler>;
        };
        constexpr bool three_args_clean = requires(host & h, const probe& pr, const envelope& env, Ctx& ctx) {
            { h.on(pr, env, ctx) } -> std::same_as<no_foreign_handler>;
        };
        return !(two_args_clean && three_args_clean);
    }
}

/// Names the foreign event at the point of the check, for every compiler: the conversion's default
/// template argument instantiates foreign_handler_error<P, T> only for a foreign event T, a hard
/// error whose instantiation context spells out both P and T.
template <class P, class Event>
struct foreign_handler_error {
    static_assert(always_false<P, Event>,
                  "projectionist: projection P has a handler for the event type Event, which belongs to none of P's "
                  "streams; add Event's stream to projection<Name, Version, Streams...> or remove the handler");
    using type = void;
};
template <class P, class Known>
struct reporting_probe {
    template <class T, class = typename std::conditional_t<event<T> && !list_contains<Known, T>,
                                                           foreign_handler_error<P, T>, std::type_identity<void>>::type>
    requires(event<T> && !list_contains<Known, T>) operator const T&() const;
};
template <class P, class Ctx>
consteval bool report_foreign_handler() {
    using probe = reporting_probe<P, subscribed_events<P>>;
    constexpr bool two = requires(P & p, const probe& pr, Ctx& ctx) {
        p.on(pr, ctx);
    };
    constexpr bool three = requires(P & p, const probe& pr, const envelope& env, Ctx& ctx) {
        p.on(pr, env, ctx);
    };
    return two || three;
}

// ---- exhaustive projections ------------------------------------------------------------------

template <class Event>
struct stored_name_of {
    static constexpr fixed_string<event_name_of<Event>.size()> value{event_name_of<Event>};
};

/// Shows one missing handler in a diagnostic: the event type and its stored name.
template <class Event, fixed_string StoredName>
struct missing_handler {};

template <class Sub>
using missing_handler_for = missing_handler<typename Sub::event, stored_name_of<typename Sub::event>::value>;

template <class Projection, class... Missing>
struct exhaustive_check {
    static_assert(sizeof...(Missing) == 0,
                  "projectionist: this projection is declared exhaustive but has no handler for some events of its "
                  "streams; they are listed as missing_handler<Event, \"stored.name\"> in exhaustive_check<...>; add "
                  "an on(const Event&, auto& ctx) overload for each");
    static constexpr bool value = true;
};

}  // namespace detail

/// Whether projection `P` has a handler for event `E` that accepts context `Ctx`.
template <class P, class E, class Ctx>
inline constexpr bool handles_event_with =
    detail::handler_with_context<P, E, Ctx> || detail::handler_with_envelope<P, E, Ctx>;

/// The compile-time handler table of projection `P` for handler context `Ctx`.
///
/// `entries` lists the (stream, event) pairs that have a handler, in stream order: the runner
/// dispatches on an index into this list. `missing` lists the pairs without one.
template <projection_type P, class Ctx>
struct basic_handler_table {
    template <class Sub>
    using is_handled = std::bool_constant<handles_event_with<P, typename Sub::event, Ctx>>;
    template <class Sub>
    using event_of = typename Sub::event;

    using subscriptions = detail::subscriptions_of<P>;
    using entries = boost::mp11::mp_copy_if<subscriptions, is_handled>;
    using missing = boost::mp11::mp_remove_if<subscriptions, is_handled>;
    /// The handled event types, without repeats.
    using events = boost::mp11::mp_unique<boost::mp11::mp_transform<event_of, entries>>;

    static constexpr std::size_t size = boost::mp11::mp_size<entries>::value;
    static constexpr bool has_foreign_handler = detail::has_foreign_handler<P, Ctx>();

    template <class E>
    static constexpr bool handles = boost::mp11::mp_contains<events, E>::value;
};

namespace detail {

/// Every compile-time rule on a projection's handlers, checked where a runner is instantiated.
template <class P, class Ctx>
consteval bool check_handlers() {
    using table = basic_handler_table<P, Ctx>;
    if constexpr (table::has_foreign_handler)
        static_assert(!report_foreign_handler<P, Ctx>(),
                      "projectionist: the projection has a handler for an event that is in none of its streams");
    if constexpr (P::is_exhaustive) {
        static_assert(
            boost::mp11::mp_apply<
                exhaustive_check,
                boost::mp11::mp_push_front<boost::mp11::mp_transform<missing_handler_for, typename table::missing>,
                                           P>>::value);
    }
    return true;
}

}  // namespace detail
}  // namespace projectionist
