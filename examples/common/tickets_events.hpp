#pragma once

/// The ticket events and their stream, shared by the tickets examples: each example declares its
/// own read models and projection versions over them.

#include <string>
#include <string_view>

#include <boost/hana/define_struct.hpp>

#include <projectionist/event/stream.hpp>

struct ticket_registered {
    BOOST_HANA_DEFINE_STRUCT(ticket_registered, (std::string, ticket_id), (std::string, type));
    static constexpr std::string_view event_name = "ticket.registered";
};
struct ticket_closed {
    BOOST_HANA_DEFINE_STRUCT(ticket_closed, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.closed";
};
struct ticket_reopened {
    BOOST_HANA_DEFINE_STRUCT(ticket_reopened, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.reopened";
};
using ticket_stream = projectionist::stream<"ticket", ticket_registered, ticket_closed, ticket_reopened>;
