// The PostgreSQL event store says how many aggregate numbers it gave out, so that a bulk backfill
// sizes its row stores from the log (the SQLite case: unit_runner_bulk): a backfill whose first
// read meets only some of the log's aggregates reserves the rows of all of them then, once.

#include <catch2/catch.hpp>

#include <string>
#include <type_traits>

#include <bulk_sizing_support.hpp>
#include <postgres_test_support.hpp>
#include <projectionist/postgres.hpp>
#include <tickets_domain.hpp>

namespace postgres_aggregate_count_test {

namespace pj = projectionist;
using namespace tickets_domain;

TEST_CASE("the PostgreSQL event store says how many aggregates it numbered", "[bulk]") {
    static_assert(pj::has_aggregate_count<pj::postgres_event_store>);
    postgres_test::scoped_schema schema;
    pj::postgres_event_store store{postgres_test::pg_url(), schema.options()};
    CHECK(store.aggregate_count() == 0);
    for (int i = 0; i < 5; ++i) {
        const std::string id = "t-" + std::to_string(i);
        store.append(ticket_stream{}, id, 0, ticket_registered{id, "bug"});
    }
    store.append(ticket_stream{}, "t-3", 1, ticket_closed{"t-3"});  // an aggregate met again
    CHECK(store.aggregate_count() == 5);
    CHECK(*store.aggregate_number(ticket_stream{}, "t-4") == 4);  // from 0
}

namespace {}  // namespace

TEMPLATE_TEST_CASE(
    "a bulk backfill on PostgreSQL reserves its row stores for the log's aggregates after the first "
    "read, once",
    "[bulk]", pj::global, pj::per_aggregate) {
    constexpr int tickets = 4000;
    constexpr std::size_t read = 500;  // the first read meets tickets 0-499 of 4000
    postgres_test::scoped_schema schema;
    pj::postgres_event_store store{postgres_test::pg_url(), schema.options()};
    {
        auto batch = store.new_batch();
        for (int i = 0; i < tickets; ++i) {
            const std::string id = "t-" + std::to_string(i);
            batch.add(ticket_stream{}, id, 0, ticket_registered{id, "bug"});
        }
        store.append(batch);
    }
    REQUIRE(store.aggregate_count() == tickets);
    pj::postgres_storage storage{postgres_test::pg_url(), schema.options()};

    bulk_sizing::capacity_log log;
    if constexpr (std::is_same_v<TestType, pj::per_aggregate>) log.threads = 2;
    bulk_sizing::noted p;
    p.log = &log;
    pj::runner<bulk_sizing::noted, TestType, pj::manual_kickoff, pj::postgres_storage, pj::postgres_event_store> r(
        store, storage, p, {.backfill = pj::backfill_mode::bulk, .bulk_read_size = read, .bulk_apply_threads = 2});
    r.init();
    r.backfill();
    const pj::runner_status s = r.status();
    REQUIRE(s.events_applied == tickets);
    CHECK(s.bulk_flushes == 1);
    CHECK(s.note.empty());  // bulk to the end, on every thread

    bulk_sizing::check_reserved_once(log, tickets, read);
}

}  // namespace postgres_aggregate_count_test
