// Twin of projection_name_too_long.fail.cpp, the mistake corrected: must compile.
// "ticket_escalations_by_customer_region_and_business_weekday_x_v1" is exactly 63 bytes: the longest name allowed.
#include <string>
#include <string_view>

#include <boost/hana/define_struct.hpp>

#include <projectionist/projectionist.hpp>

namespace app {

struct ticket_registered {
    BOOST_HANA_DEFINE_STRUCT(ticket_registered, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.registered";
};
struct ticket_closed {
    BOOST_HANA_DEFINE_STRUCT(ticket_closed, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.closed";
};
using ticket_stream = projectionist::stream<"ticket", ticket_registered, ticket_closed>;

struct ticket_row {
    BOOST_HANA_DEFINE_STRUCT(ticket_row, (std::string, ticket_id), (std::string, status));
};

struct tickets
    : projectionist::projection<"ticket_escalations_by_customer_region_and_business_weekday_x", 1, ticket_stream> {
    using table = projectionist::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, "open"}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
    }
};

}  // namespace app

static_assert(projectionist::name_of<app::tickets>.size() == 63);  // the limit, exactly

void run(projectionist::memory_event_store& store, projectionist::memory_storage& storage) {
    projectionist::runner<app::tickets> runner(store, storage);
    runner.catch_up();
}
