// The PostgreSQL event store says how many aggregate numbers it gave out, so that a bulk backfill
// sizes its row stores from the log (the SQLite case: unit_runner_bulk): a backfill whose first
// read meets only some of the log's aggregates reserves the rows of all of them then, once.

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

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

namespace {

/// A ticket's row per registration; each handler call notes the position it applies and the
/// room its row store has then (`row_capacity`: in a bulk pass only), in the list of its apply
/// thread. The log registers ticket i at position i + 1 as aggregate i, and a pass on several
/// threads gives aggregate i to thread i % threads.
struct capacity_log {
    std::size_t threads = 1;
    std::array<std::vector<std::pair<std::uint64_t, std::size_t>>, 2> seen;  ///< (position, room) per thread
};

struct noted : pj::projection<"noted", 1, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    capacity_log* log = nullptr;

    void on(const ticket_registered& e, auto& ctx) {
        if constexpr (requires { ctx.table().row_capacity(); }) {
            const std::uint64_t position = ctx.envelope().position;
            log->seen[(position - 1) % log->threads].emplace_back(position, ctx.table().row_capacity());
        }
        ctx.table().insert({e.ticket_id, e.type, "open", 0});
    }
};

}  // namespace

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

    capacity_log log;
    if constexpr (std::is_same_v<TestType, pj::per_aggregate>) log.threads = 2;
    noted p;
    p.log = &log;
    pj::runner<noted, TestType, pj::manual_kickoff, pj::postgres_storage, pj::postgres_event_store> r(
        store, storage, p, {.backfill = pj::backfill_mode::bulk, .bulk_read_size = read, .bulk_apply_threads = 2});
    r.init();
    r.backfill();
    const pj::runner_status s = r.status();
    REQUIRE(s.events_applied == tickets);
    CHECK(s.bulk_flushes == 1);
    CHECK(s.note.empty());  // bulk to the end, on every thread

    // Each thread's store held room for its share of the 4000 rows from the second read on, and
    // never grew again; unsized, it would have doubled its way there during the pass.
    const std::size_t share = tickets / log.threads;
    for (std::size_t t = 0; t < log.threads; ++t) {
        INFO("thread " << t);
        const auto& seen = log.seen[t];
        REQUIRE(seen.size() == share);
        std::set<std::size_t> later;
        for (const auto& [position, room] : seen)
            if (position > read) later.insert(room);
        REQUIRE_FALSE(later.empty());
        CHECK(later.size() == 1);
        CHECK(*later.begin() >= share);
        CHECK(seen.front().second < *later.begin());  // the first read started small
    }
}
