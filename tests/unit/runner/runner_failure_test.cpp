// A handler that throws: the batch is undone, the projection stops at its last committed
// position with an error naming projection, position, aggregate and event, and nothing is lost.

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

namespace runner_failure_test {

namespace pj = projectionist;
using namespace tickets_domain;

namespace {

struct fragile : pj::projection<"fragile", 1, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    std::string fail_on;  // the handler for this ticket's close throws

    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open", 0}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
        if (e.ticket_id == fail_on) throw std::runtime_error("the close handler broke");
    }
};

fragile failing_on(std::string id) {
    fragile p;
    p.fail_on = std::move(id);
    return p;
}

}  // namespace

TEMPLATE_TEST_CASE("a handler throwing mid-batch undoes the batch and stops the projection", "[runner][failure]",
                   pj::global, pj::per_aggregate) {
    pj::memory_event_store store;
    pj::memory_storage storage;
    // Batch size 4. Batch 1: positions 1-4, batch 2: 5-8 with the failure at 7.
    for (int i = 1; i <= 4; ++i) append_ticket(store, "a" + std::to_string(i), "bug", 0, false);  // 1..4
    append_ticket(store, "b1", "bug", 0, false);                                                  // 5
    store.append(ticket_stream{}, "a1", 1, ticket_closed{"a1"});                                  // 6
    store.append(ticket_stream{}, "b1", 1, ticket_closed{"b1"});                                  // 7: throws
    append_ticket(store, "b2", "bug", 0, false);                                                  // 8

    pj::runner<fragile, TestType> r(store, storage, failing_on("b1"), pj::runner_options{4});
    try {
        r.catch_up();
        FAIL("catch_up should have thrown");
    } catch (const pj::projection_error& e) {
        const std::string what = e.what();
        CHECK_THAT(what, Catch::Contains("fragile_v1") && Catch::Contains("position 7") &&
                             Catch::Contains("aggregate 'b1'") && Catch::Contains("ticket.closed") &&
                             Catch::Contains("the close handler broke"));
        CHECK(e.context().projection == "fragile_v1");
        CHECK(e.context().position == 7);
        CHECK(e.context().aggregate_id == "b1");
        CHECK(e.context().event_type == "ticket.closed");
        CHECK(e.context().stream == "ticket");
        CHECK(e.reason() == "the close handler broke");
    }

    // The first batch stays committed; every write of the second batch (b1 inserted, a1 closed,
    // b1 closed) is undone.
    auto table = storage.find_table<fragile::table>("fragile_v1");
    CHECK(table->size() == 4);
    CHECK_FALSE(table->contains("b1"));
    CHECK(table->find("a1")->status == "open");
    CHECK(r.position() == 4);
    const auto s = r.status();
    REQUIRE(s.error.has_value());
    CHECK_THAT(*s.error, Catch::Contains("position 7"));
    CHECK(s.events_applied == 4);
    if constexpr (TestType::partitioned) {
        CHECK(s.aggregates_tracked == 4);  // b1's version went back to 0 with the batch
        CHECK(r.aggregate_position(ticket_stream{}, "a1") == 1);
        CHECK(r.aggregate_position(ticket_stream{}, "b1") == 0);
    }

    // Stopped: further catch-ups refuse, saying why and what to do.
    CHECK_THROWS_AS(r.catch_up(), pj::state_error);
    CHECK_THROWS_WITH(r.catch_up(), Catch::Contains("resume()"));

    // After the cause is fixed, resume continues from the last committed position.
    r.projection().fail_on.clear();
    r.resume();
    CHECK(r.catch_up() == 4);
    CHECK(table->size() == 6);
    CHECK(table->find("b1")->status == "closed");
    CHECK(table->find("a1")->status == "closed");
    CHECK_FALSE(r.status().error.has_value());
}

TEST_CASE("run() stops on a failing handler and leaves the error in status", "[runner][failure]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "x", "bug", 0, true);
    pj::runner<fragile> r(store, storage, failing_on("x"));
    std::stop_source stop;
    r.run(stop.get_token());  // returns by itself: the projection failed
    CHECK(r.status().error.has_value());
    CHECK(r.position() == 0);
}

TEST_CASE("per-aggregate: a version gap is an error naming the aggregate", "[runner][failure][per_aggregate]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 1, true);  // versions 1..4
    pj::runner<tickets<2>, pj::per_aggregate> r(store, storage);
    // Pretend the projection had applied version 1 only but its scan position was beyond
    // version 2: the next event it sees for t-1 is version 3.
    auto session = storage.open("tickets_v2");
    r.init();
    r.catch_up();
    auto& cp = session.load_checkpoint();
    cp.aggregate_versions[0] = 1;
    cp.position = 2;
    try {
        r.catch_up();
        FAIL("expected a version gap");
    } catch (const pj::projection_error& e) {
        CHECK_THAT(std::string(e.what()), Catch::Contains("version gap") && Catch::Contains("aggregate 't-1'") &&
                                              Catch::Contains("version 3"));
    }
}

TEST_CASE("a table contract violation in a handler stops the projection like any exception", "[runner][failure]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    // Registering the same ticket twice (two aggregates of different streams can't do this, so
    // use any_version appends on one aggregate) makes the insert throw a table_error.
    store.append(ticket_stream{}, "t-1", pj::expected_version::any(), ticket_registered{"t-1", "bug"});
    store.append(ticket_stream{}, "t-1", pj::expected_version::any(), ticket_registered{"t-1", "bug"});
    pj::runner<tickets<2>> r(store, storage);
    CHECK_THROWS_WITH(r.catch_up(), Catch::Contains("already exists") && Catch::Contains("position 2"));
    CHECK(r.position() == 0);  // both events were in one batch: nothing committed
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->empty());
}

namespace {
// A newer build's declaration of the ticket stream, with an event this build does not know.
struct ticket_archived {
    BOOST_HANA_DEFINE_STRUCT(ticket_archived, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.archived";
};
using newer_ticket_stream = pj::stream<"ticket", ticket_registered, ticket_closed, ticket_reopened, ticket_archived>;
}  // namespace

TEMPLATE_TEST_CASE("an unknown event type in a stream the projection reads stops it", "[runner][failure]", pj::global,
                   pj::per_aggregate) {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 0, false);
    store.append(newer_ticket_stream{}, "t-1", 1, ticket_archived{"t-1"});
    append_ticket(store, "t-2", "bug", 0, false);
    pj::runner<tickets<2>, TestType> r(store, storage);
    try {
        r.catch_up();
        FAIL("expected an unknown event type error");
    } catch (const pj::projection_error& e) {
        CHECK_THAT(std::string(e.what()), Catch::Contains("unknown event type") && Catch::Contains("ticket.archived") &&
                                              Catch::Contains("position 2") && Catch::Contains("aggregate 't-1'"));
    }
    CHECK(r.position() == 0);  // one batch: nothing of it committed
}

}  // namespace runner_failure_test
