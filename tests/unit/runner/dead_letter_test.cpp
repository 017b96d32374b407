// Failure policy skip_to_dead_letter: a failing event is recorded with position, aggregate,
// type and reason and skipped; per aggregate, only the failing aggregate stops and its later
// events are parked, while every other aggregate goes on.

#include <catch2/catch.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>

#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

namespace dead_letter_test {

namespace pj = projectionist;
using namespace tickets_domain;

namespace {

/// Counts every applied event per ticket; closing `fail_on` throws.
struct picky : pj::projection<"picky", 1, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    std::string fail_on;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open", 0}); }
    void on(const ticket_closed& e, auto& ctx) {
        if (e.ticket_id == fail_on) throw std::runtime_error("cannot close " + e.ticket_id);
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
    }
    void on(const ticket_reopened& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) {
            r.status = "open";
            ++r.reopened;
        });
    }
};

picky picky_failing_on(std::string id) {
    picky p;
    p.fail_on = std::move(id);
    return p;
}

/// a1..a3 registered (1-3), b1 registered (4), b1 closed (5: fails), a1 closed (6),
/// b1 reopened (7), b2 registered (8), b1 closed (9: fails again when global).
void history(pj::memory_event_store& store) {
    for (int i = 1; i <= 3; ++i) append_ticket(store, "a" + std::to_string(i), "bug", 0, false);
    append_ticket(store, "b1", "bug", 0, true);
    store.append(ticket_stream{}, "a1", 1, ticket_closed{"a1"});
    store.append(ticket_stream{}, "b1", 2, ticket_reopened{"b1"});
    append_ticket(store, "b2", "bug", 0, false);
    store.append(ticket_stream{}, "b1", 3, ticket_closed{"b1"});
}

}  // namespace

TEST_CASE("global: a failing event becomes a dead letter and the projection goes on", "[runner][dead_letter]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    history(store);
    pj::runner<picky, pj::skip_to_dead_letter> r(store, storage, picky_failing_on("b1"), pj::runner_options{4});
    CHECK(r.catch_up() == 7);  // 9 events, the two closes of b1 skipped
    CHECK(r.position() == 9);
    CHECK_FALSE(r.status().error.has_value());
    CHECK(r.status().events_dead_lettered == 2);

    const auto letters = r.dead_letters();
    REQUIRE(letters.size() == 2);
    CHECK(letters[0].position == 5);
    CHECK(letters[0].aggregate_id == "b1");
    CHECK(letters[0].stream == "ticket");
    CHECK(letters[0].event_type == "ticket.closed");
    CHECK(letters[0].reason == "cannot close b1");
    CHECK_FALSE(letters[0].parked);
    CHECK(letters[1].position == 9);

    auto table = storage.find_table<picky::table>("picky_v1");
    CHECK(table->size() == 5);
    CHECK(table->find("a1")->status == "closed");  // in the same batch as the failure: applied
    CHECK(table->find("b1")->status == "open");    // its closes were skipped, its reopen applied
    CHECK(table->find("b1")->reopened == 1);
}

TEST_CASE("per aggregate: only the failing aggregate stops; its later events are parked", "[runner][dead_letter]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    history(store);
    {
        pj::runner<picky, pj::per_aggregate, pj::skip_to_dead_letter> r(store, storage, picky_failing_on("b1"),
                                                                        pj::runner_options{4});
        CHECK(r.catch_up() == 6);  // everything but b1's events from position 5 on
        CHECK(r.position() == 9);
        const auto s = r.status();
        CHECK(s.parked_aggregates == 1);
        CHECK(s.events_dead_lettered == 3);
        CHECK(r.aggregate_position(ticket_stream{}, "b1") == 1);  // stays at its last good version
        CHECK(r.aggregate_position(ticket_stream{}, "a1") == 2);

        const auto letters = r.dead_letters();
        REQUIRE(letters.size() == 3);
        CHECK(letters[0].position == 5);
        CHECK_FALSE(letters[0].parked);
        CHECK(letters[0].reason == "cannot close b1");
        CHECK(letters[1].position == 7);
        CHECK(letters[1].parked);
        CHECK(letters[1].event_type == "ticket.reopened");
        CHECK_THAT(letters[1].reason, Catch::Contains("position 5"));
        CHECK(letters[2].position == 9);
        CHECK(letters[2].parked);

        auto table = storage.find_table<picky::table>("picky_v1");
        CHECK(table->find("b1")->status == "open");
        CHECK(table->find("b1")->reopened == 0);  // the reopen was parked, not applied
        CHECK(table->find("a1")->status == "closed");
        CHECK(table->find("b2").has_value());
    }
    // Parking survives a restart; other aggregates keep going.
    store.append(ticket_stream{}, "b1", 4, ticket_reopened{"b1"});
    store.append(ticket_stream{}, "a2", 1, ticket_closed{"a2"});
    pj::runner<picky, pj::per_aggregate, pj::skip_to_dead_letter> again(store, storage, picky_failing_on("nobody"));
    CHECK(again.status().parked_aggregates == 1);
    CHECK(again.catch_up() == 1);
    CHECK(again.dead_letters().size() == 4);
    CHECK(storage.find_table<picky::table>("picky_v1")->find("a2")->status == "closed");
    // reset forgets dead letters and parking: the rebuild applies everything (the cause is gone).
    again.reset();
    CHECK(again.catch_up() == 11);
    CHECK(again.dead_letters().empty());
    CHECK(again.status().parked_aggregates == 0);
}

TEST_CASE("stop_on_error is the default failure policy", "[runner][dead_letter]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    history(store);
    pj::runner<picky> r(store, storage, picky_failing_on("b1"));
    CHECK_THROWS_AS(r.catch_up(), pj::projection_error);
    CHECK(r.dead_letters().empty());
}

namespace {
/// Emits on every event, so that a rebuild that re-emitted history would show.
struct noisy_picky : pj::projection<"noisy", 1, ticket_stream, pj::emits_to<ticket_summary_stream>> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    std::string fail_on;
    void on(const ticket_registered& e, auto& ctx) {
        ctx.table().insert({e.ticket_id, e.type, "open", 0});
        ctx.emit(ticket_status_changed{e.ticket_id, "open"});
    }
    void on(const ticket_closed& e, auto& ctx) {
        if (e.ticket_id == fail_on) throw std::runtime_error("cannot close " + e.ticket_id);
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
        ctx.emit(ticket_status_changed{e.ticket_id, "closed"});
    }
};

template <class Partitioning>
struct outcome_of_run {
    std::vector<ticket_row> rows;
    std::vector<pj::dead_letter> letters;
    std::uint64_t position;
    std::uint64_t applied;
    std::uint64_t emitted;
    std::uint64_t summary_events;
};

template <class Partitioning>
outcome_of_run<Partitioning> run_with(pj::memory_rollback mode) {
    pj::memory_event_store store;
    pj::memory_storage storage(mode);
    for (int i = 0; i < 40; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", i % 3, i % 2 == 0);
    noisy_picky p;
    p.fail_on = "t-4";  // closed three times: every one of them fails
    pj::runner<noisy_picky, Partitioning, pj::skip_to_dead_letter, pj::emit_always> r(store, storage, p,
                                                                                      pj::runner_options{16});
    r.catch_up();
    outcome_of_run<Partitioning> out;
    storage.find_table<noisy_picky::table>("noisy_v1")->for_each([&](const ticket_row& row) {
        out.rows.push_back(row);
    });
    std::sort(out.rows.begin(), out.rows.end(), [](auto& a, auto& b) { return a.ticket_id < b.ticket_id; });
    out.letters = r.dead_letters();
    out.position = r.position();
    out.applied = r.status().events_applied;
    out.emitted = r.status().emitted;
    pj::memory_event_store::batch all;
    store.read(0, 1'000'000, all);
    out.summary_events = static_cast<std::uint64_t>(
        std::count_if(all.begin(), all.end(), [](const auto* rec) { return rec->stream() == "ticket_summary"; }));
    return out;
}
}  // namespace

TEMPLATE_TEST_CASE("rebuild and journal rollback give the same outcome, emitting nothing twice",
                   "[runner][dead_letter][rollback]", pj::global, pj::per_aggregate) {
    const auto rebuilt = run_with<TestType>(pj::memory_rollback::rebuild);
    const auto journaled = run_with<TestType>(pj::memory_rollback::journal);
    REQUIRE_FALSE(rebuilt.letters.empty());
    CHECK(rebuilt.rows == journaled.rows);
    CHECK(rebuilt.letters == journaled.letters);
    CHECK(rebuilt.position == journaled.position);
    CHECK(rebuilt.applied == journaled.applied);
    CHECK(rebuilt.emitted == journaled.emitted);
    // Every emitted event reached the log exactly once: a rebuild re-emits nothing.
    CHECK(rebuilt.summary_events == rebuilt.emitted);
    CHECK(journaled.summary_events == journaled.emitted);
    CHECK(rebuilt.emitted == rebuilt.applied);
}

TEST_CASE("stop_on_error in memory: the default rebuild restores the committed tables", "[runner][rollback]") {
    pj::memory_event_store store;
    pj::memory_storage storage;  // memory_rollback::rebuild
    history(store);
    pj::runner<picky, pj::per_aggregate> r(store, storage, picky_failing_on("b1"), pj::runner_options{2});
    CHECK_THROWS_AS(r.catch_up(), pj::projection_error);
    // Batches (1,2) and (3,4) committed; the batch (5,6) failed at 5.
    CHECK(r.position() == 4);
    auto table = storage.find_table<picky::table>("picky_v1");
    CHECK(table->size() == 4);
    CHECK(table->find("b1")->status == "open");
    CHECK(table->find("a1")->status == "open");  // 6 (a1 closed) was in the failed batch
    CHECK(r.aggregate_position(ticket_stream{}, "a1") == 1);
    CHECK(r.status().aggregates_tracked == 4);
    CHECK(r.status().events_applied == 4);  // the rebuild's replay is not counted
}

}  // namespace dead_letter_test
