// clang-format off
// expect-error: error: static.assert(ion)? failed.*projectionist: projection<Name, Version, \.\.\.>: the projection name may contain only lowercase letters, digits and ._. \(\[a-z\]\[a-z0-9_\]\*\)
// expect-error: /projection_name_invalid_chars\.fail\.cpp:[0-9]+:[0-9]+: +(required from here|note: in instantiation of)
// clang-format on
//
// A projection name with a character outside [a-z0-9_] ("tic-kets"): names become SQL table names.
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

struct tickets : projectionist::projection<"tic-kets", 1, ticket_stream> {
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
