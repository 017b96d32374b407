// Runners declared with PROJECTIONIST_EXTERN_RUNNER work as usual; their code comes from
// extern_runners.cpp (the check_extern test reads this file's object to prove it).

#include <catch2/catch.hpp>

#include "extern_runners.hpp"

namespace pj = projectionist;
using namespace tickets_domain;

TEST_CASE("an extern runner runs the projection compiled in another translation unit") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}, ticket_reopened{"t-1"});

    pj::runner<tickets<2>, pj::per_aggregate> v2(store, storage);
    CHECK(v2.catch_up() == 3);
    CHECK(v2.status().state == pj::projection_state::caught_up);

    pj::runner<tickets<1>, pj::global, pj::manual_kickoff> v1(store, storage);
    CHECK(v1.catch_up() == 0);  // dormant until init
    v1.init();
    CHECK(v1.backfill() == 2);  // v1 has no handler for reopened

    auto rows = storage.find_table<tickets<2>::table>("tickets_v2");
    REQUIRE(rows.has_value());
    const auto row = rows->find(std::string("t-1"));
    REQUIRE(row.has_value());
    CHECK(row->reopened == 1);
}
