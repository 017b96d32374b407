// The tickets projection, deployed blue-green in memory.
//
// v1 serves queries. v2 fixes a bug (a reopened ticket stayed "closed" in v1) and adds a column
// (how many times a ticket was reopened). v2 is deployed beside v1 with manual kick-off, stays
// dormant while events keep arriving, is initialized and backfilled by hand, compared with v1,
// made live, and then v1 is removed. Every step prints what happened; the program checks the
// outcome and exits with status 1 if it is not what the story says.

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>

#include <projectionist/projectionist.hpp>

#include "../common/tickets_events.hpp"

namespace pj = projectionist;

// ---- the read model: one row per ticket; v2 adds a column -------------------------------------
struct ticket_row_v1 {
    BOOST_HANA_DEFINE_STRUCT(ticket_row_v1, (std::string, ticket_id), (std::string, type), (std::string, status));
};
struct ticket_row_v2 {
    BOOST_HANA_DEFINE_STRUCT(ticket_row_v2, (std::string, ticket_id), (std::string, type), (std::string, status),
                             (int, reopened));
};

// ---- the projection: one template, two versions ---------------------------------------------
template <unsigned V>
struct tickets;

template <>
struct tickets<1> : pj::projection<"tickets", 1, ticket_stream> {
    using table = pj::table<ticket_row_v1, &ticket_row_v1::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open"}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row_v1& r) { r.status = "closed"; });
    }
    // v1 has no handler for ticket_reopened: that is the bug.
};

// v2 is exhaustive: forgetting a handler for any ticket event would not compile.
template <>
struct tickets<2> : pj::projection<"tickets", 2, ticket_stream, pj::exhaustive> {
    using table = pj::table<ticket_row_v2, &ticket_row_v2::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open", 0}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row_v2& r) { r.status = "closed"; });
    }
    void on(const ticket_reopened& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row_v2& r) {
            r.status = "open";
            ++r.reopened;
        });
    }
};

static_assert(pj::name_of<tickets<1>> == "tickets_v1");
static_assert(pj::name_of<tickets<2>> == "tickets_v2");
static_assert(pj::handler_table<tickets<2>>::size == 3);

namespace {

int failures = 0;

void check(bool ok, std::string_view what) {
    fmt::print("  [{}] {}\n", ok ? "ok" : "FAILED", what);
    if (!ok) ++failures;
}

void step(std::string_view title) {
    fmt::print("\n== {}\n", title);
}

void print_status(const pj::runner_status& s) {
    fmt::print("  {:<11} state={:<12} live={:<5} position={:<4} head={:<4} lag={:<4} applied={}{}\n", s.name,
               pj::to_string(s.state), s.live, s.position, s.head, s.lag, s.events_applied,
               s.note.empty() ? "" : "  (" + s.note + ")");
}

/// Appends one ticket's life; `reopen` closes and reopens it once more than it is closed.
void ticket_life(pj::memory_event_store& store, const std::string& id, const std::string& type, int closes,
                 bool reopen_last) {
    std::uint64_t v = store.append(ticket_stream{}, id, 0, ticket_registered{id, type}).version;
    for (int i = 0; i < closes; ++i) {
        v = store.append(ticket_stream{}, id, v, ticket_closed{id}).version;
        if (i + 1 < closes || reopen_last) v = store.append(ticket_stream{}, id, v, ticket_reopened{id}).version;
    }
}

}  // namespace

int main() {
    pj::memory_event_store store;
    pj::memory_storage storage;

    step("v1 is in production and serves queries");
    pj::runner<tickets<1>> v1(store, storage);
    for (int i = 0; i < 40; ++i)
        ticket_life(store, fmt::format("t-{:03}", i), i % 4 == 0 ? "incident" : "bug", i % 3, i % 5 == 0);
    v1.catch_up();
    v1.make_live();
    print_status(v1.status());

    step("deploy v2 beside v1: manual kick-off, so it stays dormant");
    pj::runner<tickets<2>, pj::manual_kickoff> v2(store, storage);
    ticket_life(store, "t-new-1", "bug", 1, true);  // traffic keeps flowing
    v1.catch_up();
    v2.catch_up();
    print_status(v2.status());
    check(v2.status().dormant && !storage.has_table("tickets_v2"), "v2 created nothing and processed nothing");

    step("init tickets_v2, then backfill it while v1 keeps serving");
    v2.init();
    ticket_life(store, "t-new-2", "incident", 2, false);
    v1.catch_up();  // v1 serves on, untouched
    v2.backfill();
    print_status(v1.status());
    print_status(v2.status());
    check(v2.status().lag == 0, "v2 caught up to the head");

    step("verify v2 against v1");
    auto t1 = storage.find_table<tickets<1>::table>("tickets_v1");
    auto t2 = storage.find_table<tickets<2>::table>("tickets_v2");
    int same = 0, fixed = 0, other = 0;
    t1->for_each([&](const ticket_row_v1& r1) {
        const std::optional<ticket_row_v2> r2 = t2->find(r1.ticket_id);
        if (!r2) {
            ++other;
        } else if (r1.status == r2->status && r1.type == r2->type) {
            ++same;
        } else if (r1.status == "closed" && r2->status == "open" && r2->reopened > 0) {
            ++fixed;  // exactly the bug v2 fixes
        } else {
            ++other;
        }
    });
    fmt::print("  rows: v1={} v2={}; identical={}, reopened-ticket fixes={}, unexpected={}\n", t1->size(), t2->size(),
               same, fixed, other);
    check(t1->size() == t2->size(), "same number of rows");
    check(fixed > 0 && other == 0, "the only differences are reopened tickets that v1 left closed");

    step("switch queries to v2 and make it live");
    v2.make_live();
    print_status(v2.status());
    check(v2.status().live && storage.find_catalog("tickets_v2")->live, "the live flag is set and persisted");

    step("delete v1");
    v1.remove();
    check(!storage.has_table("tickets_v1") && storage.has_table("tickets_v2"), "v1's table is gone, v2's is not");
    ticket_life(store, "t-after", "bug", 1, true);
    v2.catch_up();
    check(t2->find("t-after").has_value() && t2->find("t-after")->reopened == 1, "v2 follows new events");
    print_status(v2.status());

    fmt::print("\n{}\n", failures == 0 ? "blue-green deployment of tickets: done" : "blue-green deployment FAILED");
    return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
