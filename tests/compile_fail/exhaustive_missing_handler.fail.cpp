// clang-format off
// expect-error: error: static.assert(ion)? failed.*projectionist: this projection is declared exhaustive but has no handler for some events of its streams
// expect-error(GNU): In instantiation of .struct projectionist::detail::exhaustive_check<app::open_tickets, projectionist::detail::missing_handler<app::ticket_closed, projectionist::fixed_string<13>."ticket\.closed".> >
// expect-error(Clang): note: in instantiation of template class .projectionist::detail::exhaustive_check<app::open_tickets, projectionist::detail::missing_handler<app::ticket_closed, 
// expect-error: /exhaustive_missing_handler\.fail\.cpp:[0-9]+:[0-9]+: +(required from here|note: in instantiation of)
// clang-format on
//
// An exhaustive projection with no handler for ticket_closed ("ticket.closed"), instantiated
// through a runner.
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

struct open_tickets : projectionist::projection<"open_tickets", 1, ticket_stream, projectionist::exhaustive> {
    using table = projectionist::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, "open"}); }
};

}  // namespace app

void run(projectionist::memory_event_store& store, projectionist::memory_storage& storage) {
    projectionist::runner<app::open_tickets> runner(store, storage);
    runner.catch_up();
}
