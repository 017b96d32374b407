// The PostgreSQL event store says how many aggregate numbers it gave out, so that a bulk backfill
// sizes its row stores from the log (the SQLite case: unit_runner_bulk).

#include <catch2/catch.hpp>

#include <string>

#include <postgres_test_support.hpp>
#include <projectionist/postgres.hpp>
#include <tickets_domain.hpp>

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
