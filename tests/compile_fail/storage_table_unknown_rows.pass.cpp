// clang-format off
// clang-format on
//
// The twin of storage_table_unknown_rows.fail.cpp, with the mistake corrected.
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <boost/hana/define_struct.hpp>

#include <projectionist/deploy/deployment.hpp>
#include <projectionist/deploy/router.hpp>
#include <projectionist/projectionist.hpp>

namespace app {

struct ticket_registered {
    BOOST_HANA_DEFINE_STRUCT(ticket_registered, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.registered";
};
using ticket_stream = projectionist::stream<"ticket", ticket_registered>;

struct ticket_row {
    BOOST_HANA_DEFINE_STRUCT(ticket_row, (std::string, ticket_id), (std::string, status));
};

template <unsigned Version>
struct tickets : projectionist::projection<"tickets", Version, ticket_stream> {
    using table = projectionist::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().upsert({e.ticket_id, "open"}); }
};

struct orders : projectionist::projection<"orders", 1, ticket_stream> {
    using table = projectionist::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().upsert({e.ticket_id, "open"}); }
};

}  // namespace app

struct order_row {
    BOOST_HANA_DEFINE_STRUCT(order_row, (std::string, order_id));
};

void use(projectionist::memory_storage& storage) {
    (void)storage.table<app::tickets<2>>(projectionist::rows<app::ticket_row>).size();
}
