// clang-format off
// expect-error: error: static.assert(ion)? failed.*projectionist: stream<Name, Events\.\.\.>: two events of one stream have the same stored name
// expect-error: /stream_duplicate_event_names\.fail\.cpp:[0-9]+:[0-9]+: +(required from here|note: in instantiation of)
// clang-format on
//
// ticket_closed_v2 copied from ticket_closed, stored name and all: two events of the "ticket"
// stream are both stored as "ticket.closed".
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

struct ticket_closed_v2 {
    BOOST_HANA_DEFINE_STRUCT(ticket_closed_v2, (std::string, ticket_id), (std::string, reason));
    static constexpr std::string_view event_name = "ticket.closed";
};
using ticket_stream_v2 = projectionist::stream<"ticket", ticket_registered, ticket_closed, ticket_closed_v2>;

struct tickets : projectionist::projection<"tickets", 2, ticket_stream_v2> {
    using table = projectionist::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, "open"}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
    }
    void on(const ticket_closed_v2& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [&](ticket_row& r) { r.status = "closed: " + e.reason; });
    }
};

}  // namespace app

void run(projectionist::memory_event_store& store, projectionist::memory_storage& storage) {
    projectionist::runner<app::tickets> runner(store, storage);
    runner.catch_up();
}
