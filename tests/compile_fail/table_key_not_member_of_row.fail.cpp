// clang-format off
// expect-error: error: static.assert(ion)? failed.*projectionist: table<Row, Key>: Key must be a data member of Row itself
// expect-error: /table_key_not_member_of_row\.fail\.cpp:[0-9]+:[0-9]+: +(required from here|note: in instantiation of)
// clang-format on
//
// table<ticket_row, &archived_ticket_row::ticket_id>: the key is a member of another row type.
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

struct archived_ticket_row {
    BOOST_HANA_DEFINE_STRUCT(archived_ticket_row, (std::string, ticket_id), (std::string, closed_by));
};

struct tickets : projectionist::projection<"tickets", 1, ticket_stream> {
    using table = projectionist::table<ticket_row, &archived_ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, "open"}); }
    void on(const ticket_closed& e, auto& ctx) { ctx.table().erase(e.ticket_id); }
};

}  // namespace app

void run(projectionist::memory_event_store& store, projectionist::memory_storage& storage) {
    projectionist::runner<app::tickets> runner(store, storage);
    runner.catch_up();
}
