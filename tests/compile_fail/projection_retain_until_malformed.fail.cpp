// clang-format off
// expect-error: error: static.assert(ion)? failed.*projectionist: a projection's retain_until must be a day written .*YYYY-MM-DD
// expect-error: /projection_retain_until_malformed\.fail\.cpp:[0-9]+:[0-9]+: +(required from here|note: in instantiation of)
// clang-format on
//
// A retention date that is not a day (31 January written day first).
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

struct tickets : projectionist::projection<"tickets", 1, ticket_stream> {
    static constexpr std::string_view retain_until = "31.01.2027";
    using table = projectionist::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, "open"}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
    }
};

}  // namespace app

void run(projectionist::memory_event_store& store, projectionist::memory_storage& storage) {
    projectionist::runner<app::tickets> runner(store, storage);
    runner.catch_up();
}
