// How a bulk backfill sizes its row stores: plan_rows reserves, after the first batch, room for
// the rows the whole pass will hold (rows per aggregate so far times the aggregates the log
// numbered), bounded by the memory budget; the SQL stores say how many aggregates they numbered.
// A backfill from position 0 whose first read meets only some of the log's aggregates reserves
// the rows of all of them then, once: the stores do not grow afterwards.

#include <catch2/catch.hpp>

#include <limits>
#include <string>
#include <type_traits>

#include <bulk_sizing_support.hpp>
#include <projectionist/sqlite.hpp>
#include <projectionist/storage/bulk_table.hpp>
#include <sqlite_test_support.hpp>
#include <tickets_domain.hpp>

namespace bulk_sizing_test {

namespace pj = projectionist;
using tickets_domain::ticket_row;
using row_table = pj::table<ticket_row, &ticket_row::ticket_id>;
using source_table = pj::memory_table<row_table>;

namespace {

ticket_row sizing_row(int i) {
    return {"t-" + std::to_string(i), "bug", "open", 0};
}

}  // namespace

TEST_CASE("plan_rows reserves the rows of the aggregates the log numbered, once, within the budget", "[bulk]") {
    source_table source{"counted"};
    pj::bulk_table<row_table, source_table> bulk("counted");
    bulk.attach(&source, true);
    for (int i = 0; i < 100; ++i) bulk.insert(sizing_row(i));
    const std::size_t before = bulk.row_capacity();
    REQUIRE(before < 1000);

    SECTION("the first batch met 100 of 10000 aggregates: room for about 10000 rows") {
        bulk.plan_rows(100, 10000, std::numeric_limits<std::size_t>::max());
        CHECK(bulk.row_capacity() >= 10000);
        CHECK(bulk.rows_in_memory() == 100);
        CHECK(bulk.find(std::string("t-42")));  // the rows moved with the rehash
        // Once per pass: a later call changes nothing.
        const std::size_t planned = bulk.row_capacity();
        bulk.plan_rows(100, 1000000, std::numeric_limits<std::size_t>::max());
        CHECK(bulk.row_capacity() == planned);
    }
    SECTION("the budget bounds the reservation") {
        const std::size_t budget = bulk.approximate_bytes() * 20;  // about 2000 rows of this size
        bulk.plan_rows(100, 10000, budget);
        CHECK(bulk.row_capacity() >= 1900);
        CHECK(bulk.row_capacity() < 10000);
    }
    SECTION("every aggregate was met already: nothing to reserve") {
        bulk.plan_rows(100, 100, std::numeric_limits<std::size_t>::max());
        CHECK(bulk.row_capacity() == before);
    }
    SECTION("attach starts a new pass, planned again") {
        bulk.plan_rows(100, 100, std::numeric_limits<std::size_t>::max());
        bulk.attach(&source, true);
        for (int i = 0; i < 100; ++i) bulk.insert(sizing_row(i));
        bulk.plan_rows(100, 5000, std::numeric_limits<std::size_t>::max());
        CHECK(bulk.row_capacity() >= 5000);
    }
}

TEST_CASE("the SQLite event store says how many aggregates it numbered", "[bulk]") {
    static_assert(pj::has_aggregate_count<pj::sqlite_event_store>);
    sqlite_test::temp_dir dir{sqlite_test::fast_temp_base()};
    pj::sqlite_event_store store{dir.file("app.db")};
    CHECK(store.aggregate_count() == 0);
    using namespace tickets_domain;
    for (int i = 0; i < 5; ++i) {
        const std::string id = "t-" + std::to_string(i);
        store.append(ticket_stream{}, id, 0, ticket_registered{id, "bug"});
    }
    store.append(ticket_stream{}, "t-3", 1, ticket_closed{"t-3"});  // an aggregate met again
    CHECK(store.aggregate_count() == 5);
    CHECK(*store.aggregate_number(ticket_stream{}, "t-4") == 4);  // dense from 0
}

TEMPLATE_TEST_CASE("a bulk backfill reserves its row stores for the log's aggregates after the first read, once",
                   "[bulk]", pj::global, pj::per_aggregate) {
    constexpr int tickets = 4000;
    constexpr std::size_t read = 500;  // the first read meets tickets 0-499 of 4000
    sqlite_test::temp_dir dir{sqlite_test::fast_temp_base()};
    pj::sqlite_event_store store{dir.file("app.db")};
    {
        auto batch = store.new_batch();
        for (int i = 0; i < tickets; ++i) {
            const std::string id = "t-" + std::to_string(i);
            batch.add(tickets_domain::ticket_stream{}, id, 0, tickets_domain::ticket_registered{id, "bug"});
        }
        store.append(batch);
    }
    REQUIRE(store.aggregate_count() == tickets);
    pj::sqlite_storage storage{dir.file("app.db")};

    bulk_sizing::capacity_log log;
    if constexpr (std::is_same_v<TestType, pj::per_aggregate>) log.threads = 2;
    bulk_sizing::noted p;
    p.log = &log;
    pj::runner<bulk_sizing::noted, TestType, pj::manual_kickoff, pj::sqlite_storage, pj::sqlite_event_store> r(
        store, storage, p, {.backfill = pj::backfill_mode::bulk, .bulk_read_size = read, .bulk_apply_threads = 2});
    r.init();
    r.backfill();
    const pj::runner_status s = r.status();
    REQUIRE(s.events_applied == tickets);
    CHECK(s.bulk_flushes == 1);
    CHECK(s.note.empty());  // bulk to the end, on every thread

    bulk_sizing::check_reserved_once(log, tickets, read);
}

}  // namespace bulk_sizing_test
