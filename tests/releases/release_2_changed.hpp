#pragma once
// Release 2 rebuilt with v2's row type changed (a column added) and no new version number: every
// command that would run v2 must be refused with what changed and what to do.
#include "release_app.hpp"

namespace release::release_2_changed {

struct ticket_row_changed {
    BOOST_HANA_DEFINE_STRUCT(ticket_row_changed, (std::string, ticket_id), (std::string, type), (std::string, status),
                             (int, reopened), (std::string, assignee));
};

/// notified<2> as release 2 shipped it, but for the new column.
struct notified_v2_changed : pj::projection<"notified", 2, ticket_stream, pj::emits_to<notice_stream>> {
    using table = pj::table<ticket_row_changed, &ticket_row_changed::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open", 0, ""}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row_changed& r) { r.status = "closed"; });
    }
    void on(const ticket_reopened& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row_changed& r) { ++r.reopened; });
    }
};

template <class Storage>
using deployment = projectionist::deployment<projectionist::runner<notified_v2_changed, Storage>>;
using router = projectionist::router<notified_v2_changed>;

}  // namespace release::release_2_changed
