// stream<Name, Events...>: the events of one aggregate type under a stream name.

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <boost/hana/adapt_struct.hpp>
#include <boost/hana/define_struct.hpp>
#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>

#include <projectionist/event/stream.hpp>

#include <tickets_domain.hpp>

namespace stream_test {

namespace pj = projectionist;
using boost::mp11::mp_list;
using namespace tickets_domain;

namespace shipping {
struct dispatched {  // a third-party event, named through event_traits
    std::string parcel_id;
};
}  // namespace shipping

}  // namespace stream_test

BOOST_HANA_ADAPT_STRUCT(stream_test::shipping::dispatched, parcel_id);
template <>
struct projectionist::event_traits<stream_test::shipping::dispatched> {
    static constexpr std::string_view name = "parcel.dispatched";
};

namespace stream_test {

namespace {

struct parcel_registered {
    BOOST_HANA_DEFINE_STRUCT(parcel_registered, (std::string, parcel_id));
    static constexpr std::string_view event_name = "parcel.registered";
};

using parcel_stream = pj::stream<"parcel_v2", parcel_registered, shipping::dispatched>;
using single_event_stream = pj::stream<"p", parcel_registered>;
using other_name_stream = pj::stream<"q", parcel_registered>;

// ---- members -------------------------------------------------------------------------------------
static_assert(std::is_same_v<ticket_stream::events, mp_list<ticket_registered, ticket_closed, ticket_reopened>>);
static_assert(std::is_same_v<ticket_summary_stream::events, mp_list<ticket_status_changed>>);
static_assert(std::is_same_v<parcel_stream::events, mp_list<parcel_registered, shipping::dispatched>>);
static_assert(std::is_same_v<single_event_stream::events, mp_list<parcel_registered>>);
static_assert(ticket_stream::name == "ticket");
static_assert(ticket_summary_stream::name == "ticket_summary");
static_assert(parcel_stream::name == "parcel_v2");
static_assert(single_event_stream::name == "p");
static_assert(std::is_same_v<decltype(ticket_stream::name), const std::string_view>);
static_assert(boost::mp11::mp_size<ticket_stream::events>::value == 3);

// The name is part of the type: one event list under two names makes two streams.
static_assert(!std::is_same_v<single_event_stream, other_name_stream>);
static_assert(std::is_same_v<single_event_stream, pj::stream<"p", parcel_registered>>);
// So is the order of the events.
static_assert(!std::is_same_v<parcel_stream, pj::stream<"parcel_v2", shipping::dispatched, parcel_registered>>);

// A stream is an empty tag type, cheap to pass by value.
static_assert(std::is_empty_v<ticket_stream>);
static_assert(std::is_trivially_copyable_v<ticket_stream>);

// ---- stream_type ---------------------------------------------------------------------------------
static_assert(pj::stream_type<ticket_stream>);
static_assert(pj::stream_type<ticket_summary_stream>);
static_assert(pj::stream_type<parcel_stream>);
static_assert(pj::stream_type<single_event_stream>);
static_assert(!pj::stream_type<int>);
static_assert(!pj::stream_type<ticket_registered>);
static_assert(!pj::stream_type<ticket_stream::events>);  // the event list is not a stream
static_assert(!pj::stream_type<mp_list<ticket_registered>>);
static_assert(!pj::stream_type<ticket_stream*>);

struct derived_from_stream : ticket_stream {};
static_assert(!pj::stream_type<derived_from_stream>);  // exactly a stream<...>, not something like one

// ---- stream_has_event ----------------------------------------------------------------------------
static_assert(pj::stream_has_event<ticket_stream, ticket_registered>);
static_assert(pj::stream_has_event<ticket_stream, ticket_closed>);
static_assert(pj::stream_has_event<ticket_stream, ticket_reopened>);
static_assert(!pj::stream_has_event<ticket_stream, ticket_status_changed>);
static_assert(pj::stream_has_event<ticket_summary_stream, ticket_status_changed>);
static_assert(!pj::stream_has_event<ticket_summary_stream, ticket_registered>);
static_assert(pj::stream_has_event<parcel_stream, shipping::dispatched>);
static_assert(pj::stream_has_event<parcel_stream, parcel_registered>);
static_assert(!pj::stream_has_event<parcel_stream, ticket_registered>);
static_assert(!pj::stream_has_event<ticket_stream, int>);
// Exact types: cv-qualified or reference types are not members of the list.
static_assert(!pj::stream_has_event<ticket_stream, const ticket_registered>);
static_assert(!pj::stream_has_event<ticket_stream, ticket_registered&>);

// ---- the compile-time checks' building blocks ---------------------------------------------------
static_assert(pj::detail::all_distinct(std::array<std::string_view, 3>{"a", "b", "c"}));
static_assert(!pj::detail::all_distinct(std::array<std::string_view, 3>{"a", "b", "a"}));
static_assert(!pj::detail::all_distinct(std::array<std::string_view, 2>{"x.y", "x.y"}));
static_assert(pj::detail::all_distinct(std::array<std::string_view, 1>{"a"}));
static_assert(pj::detail::all_distinct(std::array<std::string_view, 0>{}));
static_assert(pj::detail::is_stream<ticket_stream>::value);
static_assert(!pj::detail::is_stream<ticket_registered>::value);

template <class Stream>
std::vector<std::string> stored_names() {
    std::vector<std::string> out;
    boost::mp11::mp_for_each<typename Stream::events>(
        [&](auto e) { out.emplace_back(pj::event_name_of<decltype(e)>); });
    return out;
}

template <pj::stream_type S>
std::string name_of_stream(S) {
    return std::string(S::name);
}

}  // namespace

TEST_CASE("a stream lists its events in declaration order", "[event][stream]") {
    CHECK(stored_names<ticket_stream>() ==
          std::vector<std::string>{"ticket.registered", "ticket.closed", "ticket.reopened"});
    CHECK(stored_names<parcel_stream>() == std::vector<std::string>{"parcel.registered", "parcel.dispatched"});
    CHECK(stored_names<ticket_summary_stream>() == std::vector<std::string>{"ticket_summary.status_changed"});
}

TEST_CASE("a stream value carries its name", "[event][stream]") {
    CHECK(name_of_stream(ticket_stream{}) == "ticket");
    CHECK(name_of_stream(parcel_stream{}) == "parcel_v2");
    CHECK(name_of_stream(single_event_stream{}) != name_of_stream(other_name_stream{}));
    CHECK(pj::detail::is_identifier(ticket_stream::name));
    CHECK(pj::detail::is_identifier(ticket_summary_stream::name));
}

TEST_CASE("stream_has_event answers at run time as at compile time", "[event][stream]") {
    CHECK(pj::stream_has_event<ticket_stream, ticket_closed>);
    CHECK_FALSE(pj::stream_has_event<ticket_stream, ticket_status_changed>);
    CHECK_FALSE(pj::stream_has_event<ticket_summary_stream, ticket_closed>);
    CHECK(pj::stream_has_event<parcel_stream, shipping::dispatched>);
}

}  // namespace stream_test
