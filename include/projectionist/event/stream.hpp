#pragma once

#include <array>
#include <cstddef>
#include <string_view>
#include <type_traits>

#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>

#include <projectionist/event/event.hpp>
#include <projectionist/meta/fixed_string.hpp>
#include <projectionist/meta/name.hpp>
#include <projectionist/meta/type_list.hpp>

namespace projectionist {

namespace detail {

template <class T>
consteval bool require_event() {
    static_assert(event<T>,
                  "projectionist: stream<Name, Events...>: every element of Events must be an event: a "
                  "Hana-reflected struct (BOOST_HANA_DEFINE_STRUCT or BOOST_HANA_ADAPT_STRUCT) with a stored "
                  "name ('static constexpr std::string_view event_name = \"...\";' or an "
                  "event_traits<T> specialization)");
    return true;
}

template <class T>
consteval bool require_valid_event_name() {
    static_assert(is_event_name(event_name_of<T>),
                  "projectionist: an event's stored name must match [a-z][a-z0-9_.-]* and be at most "
                  "128 bytes, e.g. \"ticket.registered\"");
    return true;
}

template <std::size_t N>
consteval bool all_distinct(const std::array<std::string_view, N>& names) {
    for (std::size_t i = 0; i < N; ++i)
        for (std::size_t j = i + 1; j < N; ++j)
            if (names[i] == names[j]) return false;
    return true;
}

}  // namespace detail

/// The events of one aggregate type, under a stream name:
///
///     using ticket_stream = projectionist::stream<"ticket", ticket_registered, ticket_closed>;
///
/// Checked at compile time: the stream name matches `[a-z][a-z0-9_]*`, every element is an
/// event, stored names are valid and no two events share a stored name.
template <fixed_string Name, class... Events>
struct stream {
    static_assert(detail::is_identifier(Name.view()),
                  "projectionist: stream<Name, ...>: the stream name must match [a-z][a-z0-9_]* (a lowercase "
                  "letter, then lowercase letters, digits or '_')");
    static_assert(sizeof...(Events) > 0, "projectionist: stream<Name, Events...>: a stream needs at least one event");
    static_assert((detail::require_event<Events>() && ...));
    static_assert((detail::require_valid_event_name<Events>() && ...));
    static_assert(detail::all_distinct(std::array<std::string_view, sizeof...(Events)>{event_name_of<Events>...}),
                  "projectionist: stream<Name, Events...>: two events of one stream have the same stored name; "
                  "stored names must be unique within a stream");

    using events = boost::mp11::mp_list<Events...>;
    static constexpr std::string_view name = Name.view();
};

namespace detail {
template <class T>
struct is_stream : std::false_type {};
template <fixed_string Name, class... Events>
struct is_stream<stream<Name, Events...>> : std::true_type {};
}  // namespace detail

/// A `projectionist::stream<...>` type.
template <class T>
concept stream_type = detail::is_stream<T>::value;

/// Whether `Event` is one of `Stream`'s events.
template <class Stream, class Event>
inline constexpr bool stream_has_event = boost::mp11::mp_contains<typename Stream::events, Event>::value;

namespace detail {

/// What every append checks at compile time (the stores' `append`, an append batch's `add`): at
/// least one event, and each of them one of `Stream`'s.
template <class Stream, class... Events>
consteval bool check_append() {
    static_assert(sizeof...(Events) > 0, "projectionist: an append needs at least one event");
    static_assert((stream_has_event<Stream, std::remove_cvref_t<Events>> && ...),
                  "projectionist: append(Stream, ...): every event must belong to Stream's event list; append it "
                  "to its own stream instead");
    return true;
}

}  // namespace detail

}  // namespace projectionist
