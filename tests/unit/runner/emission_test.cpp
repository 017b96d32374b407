// Emission policies: emitted events are appended to the projection's emits_to stream when the
// policy lets them through, dropped and counted otherwise, and never outlive a failed batch.

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

namespace emission_test {

namespace pj = projectionist;
using namespace tickets_domain;

namespace {

/// Notifies downstream consumers of every status change.
struct notifier : pj::projection<"notifier", 1, ticket_stream, pj::emits_to<ticket_summary_stream>> {
    bool fail_on_reopen = false;
    void on(const ticket_registered&, auto& ctx) {
        ctx.emit(ticket_status_changed{std::string(ctx.envelope().aggregate_id), "open"});
    }
    void on(const ticket_closed& e, auto& ctx) { ctx.emit(ticket_status_changed{e.ticket_id, "closed"}, "custom-id"); }
    void on(const ticket_reopened& e, auto& ctx) {
        ctx.emit(ticket_status_changed{e.ticket_id, "reopened"});
        if (fail_on_reopen) throw std::runtime_error("boom");
    }
};

std::vector<std::string> summary_events(const pj::memory_event_store& store) {
    std::vector<std::string> out;
    pj::memory_event_store::batch batch;
    store.read(0, 1'000'000, batch);
    for (const auto* rec : batch)
        if (const auto* e = rec->get_if<ticket_status_changed>())
            out.push_back(std::string(rec->aggregate_id()) + ":" + e->status);
    return out;
}

}  // namespace

TEST_CASE("emit_when_live drops and counts until live, then appends", "[runner][emission]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 0, true);
    pj::runner<notifier, pj::emit_when_live, pj::manual_kickoff> r(store, storage);
    r.init();
    r.backfill();
    auto s = r.status();
    CHECK(s.dropped == 2);
    CHECK(s.emitted == 0);
    CHECK(summary_events(store).empty());  // a backfill never re-sends history

    r.make_live();
    store.append(ticket_stream{}, "t-1", 2, ticket_reopened{"t-1"});
    CHECK(r.catch_up() == 1);
    s = r.status();
    CHECK(s.emitted == 1);
    CHECK(s.dropped == 2);
    CHECK(summary_events(store) == std::vector<std::string>{"t-1:reopened"});
}

TEST_CASE("emit_always appends during backfill too; the aggregate id defaults to the source's", "[runner][emission]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 0, true);
    pj::runner<notifier, pj::emit_always> r(store, storage);
    r.catch_up();
    CHECK(r.status().emitted == 2);
    CHECK(r.status().dropped == 0);
    CHECK(summary_events(store) == std::vector<std::string>{"t-1:open", "custom-id:closed"});
    // Emitted events are appended when their batch commits; catch-up runs on to the new head
    // and passes over them (the projection does not read the summary stream).
    CHECK(store.head() == 4);
    CHECK(r.position() == 4);
    CHECK(r.status().events_applied == 2);
    CHECK(r.catch_up() == 0);
}

TEST_CASE("events emitted in a failed batch are discarded", "[runner][emission][failure]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 1, false);  // registered, closed, reopened: one batch
    notifier p;
    p.fail_on_reopen = true;
    pj::runner<notifier, pj::emit_always> r(store, storage, p);
    CHECK_THROWS_AS(r.catch_up(), pj::projection_error);
    CHECK(r.status().emitted == 0);
    CHECK(summary_events(store).empty());
    CHECK(store.head() == 3);
}

TEST_CASE("dropped counts of a failed batch are rolled back with it", "[runner][emission][failure]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 1, false);
    notifier p;
    p.fail_on_reopen = true;
    pj::runner<notifier, pj::emit_when_live> r(store, storage, p, pj::runner_options{2});
    CHECK_THROWS_AS(r.catch_up(), pj::projection_error);
    // First batch (registered, closed) committed with 2 drops; the failed batch's drop is undone.
    CHECK(r.status().dropped == 2);
}

}  // namespace emission_test
