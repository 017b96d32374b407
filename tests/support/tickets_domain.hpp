#pragma once
// The running example, shared by the tests: tickets are registered, closed and reopened.
// v1 tracks status only and ignores reopening; v2 also counts reopenings (the blue-green change).

#include <stdexcept>
#include <string>
#include <string_view>

#include <boost/hana/define_struct.hpp>

#include <projectionist/projectionist.hpp>

namespace tickets_domain {

struct ticket_registered {
    BOOST_HANA_DEFINE_STRUCT(ticket_registered, (std::string, ticket_id), (std::string, type));
    static constexpr std::string_view event_name = "ticket.registered";
};
struct ticket_closed {
    BOOST_HANA_DEFINE_STRUCT(ticket_closed, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.closed";
};
struct ticket_reopened {
    BOOST_HANA_DEFINE_STRUCT(ticket_reopened, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.reopened";
};
using ticket_stream = projectionist::stream<"ticket", ticket_registered, ticket_closed, ticket_reopened>;

/// Emitted by projections that notify downstream consumers.
struct ticket_status_changed {
    BOOST_HANA_DEFINE_STRUCT(ticket_status_changed, (std::string, ticket_id), (std::string, status));
    static constexpr std::string_view event_name = "ticket_summary.status_changed";
};
using ticket_summary_stream = projectionist::stream<"ticket_summary", ticket_status_changed>;

struct ticket_row {
    BOOST_HANA_DEFINE_STRUCT(ticket_row, (std::string, ticket_id), (std::string, type), (std::string, status),
                             (int, reopened));
    friend bool operator==(const ticket_row&, const ticket_row&) = default;
};

/// A tickets table that also emits a status change for every registration and close; a close
/// throws when `fail_on_close` is set (after emitting).
struct status_notifier
    : projectionist::projection<"notifier", 1, ticket_stream, projectionist::emits_to<ticket_summary_stream>> {
    using table = projectionist::table<ticket_row, &ticket_row::ticket_id>;
    bool fail_on_close = false;
    void on(const ticket_registered& e, auto& ctx) {
        ctx.table().insert({e.ticket_id, e.type, "open", 0});
        ctx.emit(ticket_status_changed{e.ticket_id, "open"});
    }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.emit(ticket_status_changed{e.ticket_id, "closed"});
        if (fail_on_close) throw std::runtime_error("close failed");
    }
};

/// For the tests of the hand-over of emission between versions: every ticket event emits a status
/// change whose ticket_id is the emitting version's name and whose status is the event's source
/// position, so that downstream can be checked position by position.
template <unsigned V>
struct position_announcer
    : projectionist::projection<"announced", V, ticket_stream, projectionist::emits_to<ticket_summary_stream>> {
    using table = projectionist::table<ticket_row, &ticket_row::ticket_id>;
    template <class E>
    void on(const E& e, auto& ctx) {
        ctx.table().upsert({e.ticket_id, "", std::string(E::event_name), 0});
        ctx.emit(ticket_status_changed{std::string(projectionist::name_of<position_announcer>),
                                       std::to_string(ctx.envelope().position)});
    }
};

template <unsigned V>
struct tickets : projectionist::projection<"tickets", V, ticket_stream> {
    using table = projectionist::table<ticket_row, &ticket_row::ticket_id>;

    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open", 0}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
    }
    void on(const ticket_reopened& e, auto& ctx) requires(V >= 2) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) {
            r.status = "open";
            ++r.reopened;
        });
    }
};

/// Appends a ticket's life: registered, then `closes` close/reopen pairs, then optionally a
/// final close. Returns the aggregate's version afterwards.
template <class Store>
std::uint64_t append_ticket(Store& store, const std::string& id, const std::string& type, int reopenings,
                            bool closed_at_end) {
    std::uint64_t v = store.append(ticket_stream{}, id, 0, ticket_registered{id, type}).version;
    for (int i = 0; i < reopenings; ++i) {
        v = store.append(ticket_stream{}, id, v, ticket_closed{id}).version;
        v = store.append(ticket_stream{}, id, v, ticket_reopened{id}).version;
    }
    if (closed_at_end) v = store.append(ticket_stream{}, id, v, ticket_closed{id}).version;
    return v;
}

}  // namespace tickets_domain
