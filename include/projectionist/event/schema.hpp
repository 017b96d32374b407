#pragma once

#include <string_view>

#include <fmt/format.h>

#include <projectionist/event/codec.hpp>
#include <projectionist/event/event.hpp>

namespace projectionist {

/// The schema version of an event type's payload: `static constexpr unsigned schema_version`,
/// 1 when the type does not say. Stores record it with every event.
template <class T>
inline constexpr unsigned schema_version_of = [] {
    if constexpr (requires { T::schema_version; })
        return static_cast<unsigned>(T::schema_version);
    else
        return 1u;
}();

namespace detail {
template <class T>
concept has_previous_schema = requires(typename T::previous_schema old) {
    { T::upcast(std::move(old)) } -> std::same_as<T>;
};
}  // namespace detail

/// Decodes a stored payload of `stored_version` into `Event`, upcasting older payloads.
///
/// An event whose layout changed keeps its old layout as a plain reflected struct and says how
/// to upgrade it:
///
///     struct ticket_registered_v1 { BOOST_HANA_DEFINE_STRUCT(ticket_registered_v1, (std::string, ticket_id)); };
///     struct ticket_registered {
///         BOOST_HANA_DEFINE_STRUCT(ticket_registered, (std::string, ticket_id), (std::string, type));
///         static constexpr std::string_view event_name = "ticket.registered";
///         static constexpr unsigned schema_version = 2;
///         using previous_schema = ticket_registered_v1;   // schema version 1
///         static ticket_registered upcast(ticket_registered_v1 old) { return {old.ticket_id, "unknown"}; }
///     };
///
/// Chains of any length work: the previous schema may have its own `previous_schema`.
template <class Event, class Codec>
Event decode_event(unsigned stored_version, std::string_view payload) {
    constexpr unsigned current = schema_version_of<Event>;
    if (stored_version == current) return Codec::template decode<Event>(payload);
    if constexpr (detail::has_previous_schema<Event>) {
        if (stored_version < current)
            return Event::upcast(decode_event<typename Event::previous_schema, Codec>(stored_version, payload));
    }
    throw codec_error(fmt::format("unsupported schema version {} (this build reads version {}{})", stored_version,
                                  current,
                                  detail::has_previous_schema<Event> ? " and the versions it upcasts from" : ""));
}

}  // namespace projectionist
