// The projection base: names, versions, streams, options and table declarations, checked at
// compile time where they are compile-time facts.

#include <catch2/catch.hpp>

#include <string>
#include <type_traits>

#include <boost/hana/define_struct.hpp>
#include <boost/mp11/list.hpp>

#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

namespace projection_test {

namespace pj = projectionist;
using namespace tickets_domain;
using boost::mp11::mp_list;

// ---- versioned names ----------------------------------------------------------------------
static_assert(pj::name_of<tickets<1>> == "tickets_v1");
static_assert(pj::name_of<tickets<2>> == "tickets_v2");
static_assert(pj::name_of<tickets<10>> == "tickets_v10");
static_assert(pj::name_of<tickets<123>> == "tickets_v123");
static_assert(tickets<2>::base_name == "tickets");
static_assert(tickets<2>::version == 2);
static_assert(std::is_same_v<decltype(pj::name_of<tickets<2>>), const std::string_view>);

// The longest name that fits: 60 letters + "_v" + 1 digit = 63 bytes.
struct longest : pj::projection<"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij", 9, ticket_stream> {};
static_assert(pj::name_of<longest>.size() == 63);

// ---- projection_type ------------------------------------------------------------------------
static_assert(pj::projection_type<tickets<1>>);
static_assert(!pj::projection_type<ticket_row>);
static_assert(!pj::projection_type<int>);

// ---- streams and options --------------------------------------------------------------------
struct comment_added {
    BOOST_HANA_DEFINE_STRUCT(comment_added, (std::string, ticket_id), (std::string, text));
    static constexpr std::string_view event_name = "comment.added";
};
using comment_stream = pj::stream<"comment", comment_added>;

struct activity : pj::projection<"activity", 1, ticket_stream, comment_stream, pj::exhaustive,
                                 pj::emits_to<ticket_summary_stream>> {};
static_assert(std::is_same_v<activity::streams, mp_list<ticket_stream, comment_stream>>);
static_assert(activity::is_exhaustive);
static_assert(!tickets<1>::is_exhaustive);
static_assert(std::is_same_v<activity::emission_stream, ticket_summary_stream>);
static_assert(std::is_void_v<tickets<1>::emission_stream>);
static_assert(std::is_same_v<pj::detail::subscribed_events<activity>,
                             mp_list<ticket_registered, ticket_closed, ticket_reopened, comment_added>>);
static_assert(boost::mp11::mp_size<pj::detail::subscriptions_of<activity>>::value == 4);

// ---- tables ---------------------------------------------------------------------------------
struct order_row {
    BOOST_HANA_DEFINE_STRUCT(order_row, (std::string, order_id), (std::string, transaction_id));
};
struct transaction_row {
    BOOST_HANA_DEFINE_STRUCT(transaction_row, (std::string, transaction_id), (long, total_cents));
};
struct orders : pj::projection<"customer_orders", 2, ticket_stream> {
    using tables = pj::tables<pj::table<order_row, &order_row::order_id>,
                              pj::table<transaction_row, &transaction_row::transaction_id, "transactions">>;
};
using order_tables = pj::detail::tables_of<orders>;
static_assert(boost::mp11::mp_size<order_tables>::value == 2);
static_assert(pj::detail::table_name_v<orders, boost::mp11::mp_at_c<order_tables, 0>> == "customer_orders_v2");
static_assert(pj::detail::table_name_v<orders, boost::mp11::mp_at_c<order_tables, 1>> ==
              "customer_orders_v2_transactions");
static_assert(std::is_same_v<pj::detail::tables_of<tickets<1>>, mp_list<tickets<1>::table>>);
static_assert(std::is_same_v<pj::detail::tables_of<activity>, mp_list<>>);
static_assert(std::is_same_v<tickets<1>::table::key_type, std::string>);

TEST_CASE("a table declaration extracts a row's key", "[projection]") {
    const ticket_row row{"t-7", "bug", "open", 0};
    CHECK(tickets<1>::table::key_of(row) == "t-7");
    const transaction_row tx{"tx-1", 1250};
    CHECK(boost::mp11::mp_at_c<order_tables, 1>::key_of(tx) == "tx-1");
}

TEST_CASE("versioned names are usable at run time as the same string", "[projection]") {
    const std::string name(pj::name_of<tickets<123>>);
    CHECK(name == "tickets_v123");
    CHECK(std::string(pj::name_of<longest>).size() == pj::max_identifier_length);
}

static_assert(pj::table_name_of<orders, boost::mp11::mp_at_c<order_tables, 1>> == "customer_orders_v2_transactions");

}  // namespace projection_test
