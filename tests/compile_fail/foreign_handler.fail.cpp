// clang-format off
// expect-error: static.assert(ion)? failed.*projectionist: projection P has a handler for the event type Event, which belongs to none of P.s streams
// expect-error: foreign_handler_error<app::open_tickets, app::invoice_paid>
// expect-error: /foreign_handler\.fail\.cpp:[0-9]+:[0-9]+: +(required from here|note: in instantiation of)
// clang-format on
//
// A handler for invoice_paid, an event of the invoice stream, in a projection that reads only the
// ticket stream: the handler would never run. Both compilers must name the projection and the
// foreign event (as the template arguments of foreign_handler_error).
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

struct invoice_paid {
    BOOST_HANA_DEFINE_STRUCT(invoice_paid, (std::string, invoice_id));
    static constexpr std::string_view event_name = "invoice.paid";
};
using invoice_stream = projectionist::stream<"invoice", invoice_paid>;

struct open_tickets : projectionist::projection<"open_tickets", 1, ticket_stream> {
    using table = projectionist::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, "open"}); }
    void on(const ticket_closed& e, auto& ctx) { ctx.table().erase(e.ticket_id); }
    void on(const invoice_paid& e, auto& ctx) {
        ctx.table().update(e.invoice_id, [](ticket_row& r) { r.status = "paid"; });
    }
};

}  // namespace app

void run(projectionist::memory_event_store& store, projectionist::memory_storage& storage) {
    projectionist::runner<app::open_tickets> runner(store, storage);
    runner.catch_up();
}
