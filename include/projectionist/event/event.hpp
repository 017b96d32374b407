#pragma once

#include <concepts>
#include <string_view>
#include <type_traits>

#include <boost/hana/concept/struct.hpp>

#include <projectionist/meta/name.hpp>
#include <projectionist/meta/type_list.hpp>

namespace projectionist {

/// Gives an event type its stored name when the type cannot be changed (a third-party struct):
///
///     template <> struct projectionist::event_traits<vendor::paid> {
///         static constexpr std::string_view name = "payment.paid";
///     };
///
/// Types you own say it themselves: `static constexpr std::string_view event_name = "...";`.
template <class Event>
struct event_traits {};

namespace detail {
// A *static* member: an ordinary data member that happens to be called event_name is a field.
template <class T>
concept has_member_event_name = requires {
    { T::event_name } -> std::convertible_to<std::string_view>;
}
&&!std::is_member_object_pointer_v<decltype(&T::event_name)>;
template <class T>
concept has_traits_event_name = requires {
    { event_traits<T>::name } -> std::convertible_to<std::string_view>;
};
}  // namespace detail

/// An event: a Hana-reflected struct with a stable stored name. The stored name, not the C++
/// type name, is what the log records, so renaming the struct never breaks a replay.
template <class T>
concept event = std::is_class_v<T> && boost::hana::Struct<T>::value &&
    (detail::has_member_event_name<T> || detail::has_traits_event_name<T>);

namespace detail {
template <class T>
consteval std::string_view stored_event_name() {
    if constexpr (has_traits_event_name<T>)
        return std::string_view(event_traits<T>::name);
    else if constexpr (has_member_event_name<T>)
        return std::string_view(T::event_name);
    else
        static_assert(always_false_type<T>::value,
                      "projectionist: this type is not an event; give it a stored name with "
                      "'static constexpr std::string_view event_name = \"...\";' or specialize "
                      "projectionist::event_traits<T>, and reflect it with BOOST_HANA_DEFINE_STRUCT "
                      "or BOOST_HANA_ADAPT_STRUCT");
}
}  // namespace detail

/// The stored name of an event type: `event_name_of<ticket_registered> == "ticket.registered"`.
template <class Event>
inline constexpr std::string_view event_name_of = detail::stored_event_name<Event>();

}  // namespace projectionist
