// The event concept: a Hana-reflected struct with a stored name, given either by a member
// `event_name` or by an `event_traits` specialization (for types that cannot be changed).

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include <boost/hana/accessors.hpp>
#include <boost/hana/adapt_struct.hpp>
#include <boost/hana/at.hpp>
#include <boost/hana/define_struct.hpp>
#include <boost/hana/first.hpp>
#include <boost/hana/second.hpp>
#include <boost/hana/size.hpp>
#include <boost/hana/string.hpp>

#include <projectionist/event/event.hpp>

#include <tickets_domain.hpp>

namespace event_test {

namespace pj = projectionist;

// ---- a third-party type: we "cannot change" it, so it is adapted and named from outside ---------
namespace vendor {
struct paid {
    std::string order_id;
    long amount_cents = 0;
};
struct refunded {  // adapted, but nobody gave it a stored name
    std::string order_id;
};
}  // namespace vendor

}  // namespace event_test

BOOST_HANA_ADAPT_STRUCT(event_test::vendor::paid, order_id, amount_cents);
BOOST_HANA_ADAPT_STRUCT(event_test::vendor::refunded, order_id);

template <>
struct projectionist::event_traits<event_test::vendor::paid> {
    static constexpr std::string_view name = "payment.paid";
};

namespace event_test {

namespace {

// ---- types we own --------------------------------------------------------------------------------
struct order_placed {
    BOOST_HANA_DEFINE_STRUCT(order_placed, (std::string, order_id), (int, lines));
    static constexpr std::string_view event_name = "order.placed";
};

/// Has a stored name but no reflection: storage could not see its fields.
struct not_reflected {
    std::string order_id;
    static constexpr std::string_view event_name = "order.not_reflected";
};

/// Reflected, but without a stored name.
struct reflected_without_name {
    BOOST_HANA_DEFINE_STRUCT(reflected_without_name, (std::string, order_id));
};

/// A stored name that is not a string.
struct numeric_name {
    BOOST_HANA_DEFINE_STRUCT(numeric_name, (int, x));
    static constexpr int event_name = 42;
};

/// A C-string stored name converts to std::string_view, so it is accepted.
struct c_string_name {
    BOOST_HANA_DEFINE_STRUCT(c_string_name, (int, x));
    static constexpr const char* event_name = "order.c_string";
};

/// Both spellings: the traits specialization wins (it is how a name is overridden from outside).
struct both_names {
    BOOST_HANA_DEFINE_STRUCT(both_names, (int, x));
    static constexpr std::string_view event_name = "member.name";
};

/// An event without fields is still an event.
struct heartbeat {
    BOOST_HANA_DEFINE_STRUCT(heartbeat);
    static constexpr std::string_view event_name = "system.heartbeat";
};

}  // namespace

}  // namespace event_test

template <>
struct projectionist::event_traits<event_test::both_names> {
    static constexpr std::string_view name = "traits.name";
};

namespace event_test {

namespace {

// ---- the concept ---------------------------------------------------------------------------------
static_assert(pj::event<order_placed>);
static_assert(pj::event<vendor::paid>);  // adapted + event_traits
static_assert(pj::event<c_string_name>);
static_assert(pj::event<both_names>);
static_assert(pj::event<heartbeat>);
static_assert(pj::event<tickets_domain::ticket_registered>);
static_assert(pj::event<tickets_domain::ticket_closed>);
static_assert(pj::event<tickets_domain::ticket_status_changed>);

static_assert(!pj::event<not_reflected>);
static_assert(!pj::event<reflected_without_name>);
static_assert(!pj::event<vendor::refunded>);  // adapted, no traits
static_assert(!pj::event<numeric_name>);
static_assert(!pj::event<int>);
static_assert(!pj::event<std::string>);
static_assert(!pj::event<tickets_domain::ticket_row>);  // a row type: reflected, never named
static_assert(!pj::event<order_placed*>);
static_assert(!pj::event<order_placed&>);

// The detail concepts tell the two ways apart.
static_assert(pj::detail::has_member_event_name<order_placed>);
static_assert(!pj::detail::has_traits_event_name<order_placed>);
static_assert(pj::detail::has_traits_event_name<vendor::paid>);
static_assert(!pj::detail::has_member_event_name<vendor::paid>);
static_assert(pj::detail::has_member_event_name<not_reflected>);  // named, just not reflected
static_assert(!pj::detail::has_member_event_name<numeric_name>);

// ---- event_name_of ---------------------------------------------------------------------------------
static_assert(pj::event_name_of<order_placed> == "order.placed");
static_assert(pj::event_name_of<vendor::paid> == "payment.paid");
static_assert(pj::event_name_of<c_string_name> == "order.c_string");
static_assert(pj::event_name_of<both_names> == "traits.name");
static_assert(pj::event_name_of<heartbeat> == "system.heartbeat");
static_assert(pj::event_name_of<tickets_domain::ticket_registered> == "ticket.registered");
static_assert(pj::event_name_of<tickets_domain::ticket_reopened> == "ticket.reopened");
static_assert(pj::event_name_of<tickets_domain::ticket_status_changed> == "ticket_summary.status_changed");

// The concept can constrain generic code.
void takes_event(const pj::event auto&);  // only named in unevaluated operands
template <class T>
constexpr bool accepted_by_constrained_template = requires(const T& t) {
    takes_event(t);
};
static_assert(accepted_by_constrained_template<order_placed>);
static_assert(accepted_by_constrained_template<vendor::paid>);
static_assert(!accepted_by_constrained_template<not_reflected>);
static_assert(!accepted_by_constrained_template<reflected_without_name>);

template <pj::event E>
std::string stored_name_of(const E&) {
    return std::string(pj::event_name_of<E>);
}

}  // namespace

TEST_CASE("event_name_of gives the stored name, by member or by traits", "[event]") {
    CHECK(stored_name_of(order_placed{"o-1", 3}) == "order.placed");
    CHECK(stored_name_of(vendor::paid{"o-1", 1299}) == "payment.paid");
    CHECK(stored_name_of(both_names{1}) == "traits.name");
    CHECK(stored_name_of(tickets_domain::ticket_closed{"t-1"}) == "ticket.closed");
    CHECK(pj::event_name_of<c_string_name> == std::string_view("order.c_string"));
}

TEST_CASE("an adapted third-party event is reflected without being changed", "[event]") {
    namespace hana = boost::hana;
    STATIC_REQUIRE(hana::Struct<vendor::paid>::value);
    STATIC_REQUIRE(decltype(hana::size(hana::accessors<vendor::paid>()))::value == 2);

    const vendor::paid p{"o-7", 4200};
    const auto accessors = hana::accessors<vendor::paid>();
    CHECK(hana::to<char const*>(hana::first(hana::at_c<0>(accessors))) == std::string("order_id"));
    CHECK(hana::second(hana::at_c<0>(accessors))(p) == "o-7");
    CHECK(hana::second(hana::at_c<1>(accessors))(p) == 4200);
}

TEST_CASE("stored names of the test domain are valid event names", "[event]") {
    using namespace tickets_domain;
    CHECK(pj::detail::is_event_name(pj::event_name_of<ticket_registered>));
    CHECK(pj::detail::is_event_name(pj::event_name_of<ticket_closed>));
    CHECK(pj::detail::is_event_name(pj::event_name_of<ticket_reopened>));
    CHECK(pj::detail::is_event_name(pj::event_name_of<ticket_status_changed>));
    CHECK(pj::detail::is_event_name(pj::event_name_of<vendor::paid>));
    CHECK(pj::event_name_of<ticket_registered> != pj::event_name_of<ticket_closed>);
}

namespace {
// A field that happens to be called event_name does not make a type an event.
struct has_event_name_field {
    BOOST_HANA_DEFINE_STRUCT(has_event_name_field, (std::string, event_name));
};
}  // namespace
static_assert(!projectionist::event<has_event_name_field>);

}  // namespace event_test
