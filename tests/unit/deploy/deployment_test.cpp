// The deployment of several versions of one projection: operations by name, the life cycle's
// rules with errors that say what to run first, and the blue-green flow end to end, in memory
// and on SQLite, including a backfill while the serving version keeps following and answering.

#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <string>
#include <thread>

#include <projectionist/deploy/deployment.hpp>
#include <projectionist/sqlite.hpp>
#include <sqlite_test_support.hpp>
#include <tickets_domain.hpp>

namespace deployment_test {

namespace pj = projectionist;
using namespace tickets_domain;
using namespace std::chrono_literals;

namespace {

template <class Storage>
using tickets_deployment = pj::deployment<pj::runner<tickets<1>, Storage>,
                                          pj::runner<tickets<2>, Storage, pj::per_aggregate, pj::manual_kickoff>>;

using memory_tickets = tickets_deployment<pj::memory_storage>;
static_assert(memory_tickets::base_name == "tickets");
static_assert(memory_tickets::names[0] == "tickets_v1" && memory_tickets::names[1] == "tickets_v2");
static_assert(memory_tickets::contains("tickets_v2") && !memory_tickets::contains("tickets_v3"));

template <class Table, class Storage>
std::map<std::string, ticket_row> rows_of(Storage& storage, std::string_view name) {
    std::map<std::string, ticket_row> out;
    auto table = storage.template find_table<Table>(name);
    REQUIRE(table);
    table->for_each([&](const ticket_row& r) { out.emplace(r.ticket_id, r); });
    return out;
}

}  // namespace

TEST_CASE("operations out of order say which state the version is in and what to run first", "[deploy]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 1, true);
    memory_tickets d(store, storage);
    d.catch_up();  // v1 (auto kick-off) follows; v2 (manual) stays dormant

    CHECK_THROWS_WITH(d.backfill("tickets_v2"), Catch::Contains("cannot backfill tickets_v2: it is declared") &&
                                                    Catch::Contains("run init tickets_v2 first"));
    CHECK_THROWS_WITH(d.make_live("tickets_v2"), Catch::Contains("it is declared"));
    CHECK_THROWS_WITH(d.serve("tickets_v2"), Catch::Contains("tickets_v2 cannot serve queries: it is declared"));
    CHECK_THROWS_WITH(d.remove("tickets_v2"),
                      Catch::Contains("cannot delete tickets_v2: it is not initialized; there is nothing to delete"));
    CHECK_THROWS_AS(d.init("tickets_v7"), pj::error);
    CHECK_THROWS_WITH(d.init("tickets_v7"), Catch::Contains("'tickets_v7' is not a version of tickets") &&
                                                Catch::Contains("tickets_v1, tickets_v2"));

    d.serve("tickets_v1");
    CHECK_THROWS_WITH(d.remove("tickets_v1"), Catch::Contains("cannot delete tickets_v1: it is serving queries") &&
                                                  Catch::Contains("switch traffic to another version first"));
    CHECK_THROWS_WITH(d.reset("tickets_v1"), Catch::Contains("cannot reset tickets_v1: it is serving queries"));
    CHECK(storage.has_table("tickets_v1"));  // refused operations changed nothing

    d.init("tickets_v2");
    CHECK_THROWS_WITH(d.make_live("tickets_v2"), Catch::Contains("cannot make tickets_v2 live: it is initialized") &&
                                                     Catch::Contains("run backfill tickets_v2 first"));
}

TEST_CASE("the blue-green flow in memory: v2 replaces v1 without touching it", "[deploy]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    for (int i = 0; i < 50; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", i % 3, i % 2 == 0);
    memory_tickets d(store, storage);
    d.catch_up();
    d.serve("tickets_v1");
    const auto v1_before = rows_of<tickets<1>::table>(storage, "tickets_v1");

    d.init("tickets_v2");
    append_ticket(store, "late", "bug", 1, false);  // traffic goes on
    CHECK(d.backfill("tickets_v2") == store.head());
    d.catch_up();
    const auto statuses = d.status();
    REQUIRE(statuses.size() == 2);
    CHECK(statuses[0].state == pj::projection_state::serving);
    CHECK(statuses[1].state == pj::projection_state::caught_up);
    CHECK(statuses[1].partitioning == "per_aggregate");  // global v1, per-aggregate v2

    d.serve("tickets_v2");
    CHECK(d.get<tickets<1>>().state() == pj::projection_state::retired);
    CHECK(d.get<tickets<2>>().state() == pj::projection_state::serving);
    d.make_live("tickets_v2");
    CHECK(d.get<tickets<2>>().status().live);
    CHECK(d.get<tickets<2>>().state() == pj::projection_state::serving);  // live is a flag; it still serves

    // Rolling back to v1 is possible while it is retired: it kept following.
    d.serve("tickets_v1");
    CHECK(d.get<tickets<2>>().state() == pj::projection_state::retired);
    const auto v1_now = rows_of<tickets<1>::table>(storage, "tickets_v1");
    CHECK(v1_now.size() == v1_before.size() + 1);
    d.serve("tickets_v2");

    const auto v2_rows = rows_of<tickets<2>::table>(storage, "tickets_v2");
    d.remove("tickets_v1");
    CHECK_FALSE(storage.has_table("tickets_v1"));
    CHECK(rows_of<tickets<2>::table>(storage, "tickets_v2") == v2_rows);  // v2 untouched
    CHECK(d.get<tickets<1>>().state() == pj::projection_state::deleted);
}

TEST_CASE("deployment states persist: another process sees them", "[deploy][sqlite]") {
    sqlite_test::temp_dir dir;
    const auto file = dir.file("app.db");
    {
        pj::sqlite_event_store store(file);
        pj::sqlite_storage storage(file);
        append_ticket(store, "t-1", "bug", 1, true);
        tickets_deployment<pj::sqlite_storage> d(store, storage);
        d.catch_up();
        d.serve("tickets_v1");
        d.init("tickets_v2");
        d.backfill("tickets_v2");
    }
    pj::sqlite_event_store store(file);
    pj::sqlite_storage storage(file);
    tickets_deployment<pj::sqlite_storage> again(store, storage);
    const auto s = again.status();
    CHECK(s[0].state == pj::projection_state::serving);
    CHECK(s[1].state == pj::projection_state::caught_up);
    CHECK_THROWS_WITH(again.remove("tickets_v1"), Catch::Contains("serving"));
    again.serve("tickets_v2");
    again.remove("tickets_v1");
    CHECK_FALSE(storage.has_table("tickets_v1"));
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->find("t-1")->reopened == 1);
    CHECK(sqlite_test::integrity_ok(file));
}

TEMPLATE_TEST_CASE("a backfill runs while the serving version keeps following and answering queries",
                   "[deploy][concurrency]", pj::memory_storage, pj::sqlite_storage) {
    sqlite_test::temp_dir dir;
    const auto file = dir.file("app.db");
    auto make_store = [&] {
        if constexpr (std::is_same_v<TestType, pj::sqlite_storage>)
            return std::make_unique<pj::sqlite_event_store>(file);
        else
            return std::make_unique<pj::memory_event_store>();
    };
    auto make_storage = [&] {
        if constexpr (std::is_same_v<TestType, pj::sqlite_storage>)
            return std::make_unique<pj::sqlite_storage>(file);
        else
            return std::make_unique<pj::memory_storage>();
    };
    auto store = make_store();
    auto storage = make_storage();
    for (int i = 0; i < 300; ++i) append_ticket(*store, "t-" + std::to_string(i), "bug", i % 2, true);

    using runner_v1 = pj::runner<tickets<1>, TestType>;
    using runner_v2 = pj::runner<tickets<2>, TestType, pj::per_aggregate, pj::manual_kickoff>;
    using store_type = typename runner_v1::event_store_type;
    runner_v1 v1(static_cast<store_type&>(*store), *storage, pj::runner_options{50, 5ms});
    runner_v1& v1_ref = v1;
    v1.catch_up();

    std::stop_source stop;
    std::atomic<int> appended{0};
    std::atomic<int> queries{0};
    std::atomic<bool> query_failed{false};
    std::thread follower([&] { v1_ref.run(stop.get_token()); });
    std::thread writer([&] {
        for (int i = 0; i < 100; ++i) {
            append_ticket(*store, "w-" + std::to_string(i), "bug", 0, true);
            appended = i + 1;
        }
    });
    std::thread reader([&] {
        // Queries against the serving version keep working during the backfill.
        auto query_storage = make_storage();
        while (!stop.stop_requested()) {
            try {
                if constexpr (std::is_same_v<TestType, pj::memory_storage>) {
                    auto lock = storage->lock_shared("tickets_v1");
                    if (storage->template find_table<tickets<1>::table>("tickets_v1")->size() < 300)
                        query_failed = true;
                } else {
                    if (query_storage->template find_table<tickets<1>::table>("tickets_v1")->size() < 300)
                        query_failed = true;
                }
                ++queries;
            } catch (...) {
                query_failed = true;
            }
            std::this_thread::sleep_for(1ms);
        }
    });

    // The reader is answering before the backfill starts (bounded wait: no timing assumption).
    for (int i = 0; i < 400 && queries < 3; ++i) std::this_thread::sleep_for(5ms);
    const int queries_before_backfill = queries;
    runner_v2 v2(static_cast<store_type&>(*store), *storage, pj::runner_options{40});
    v2.init();
    const auto backfilled = v2.backfill();
    CHECK(backfilled >= 600);
    writer.join();
    v2.catch_up();
    for (int i = 0; i < 500 && v1_ref.status().position < store->head(); ++i) std::this_thread::sleep_for(5ms);
    // ... and still answering after it (again a bounded wait, not a sleep of a guessed length).
    for (int i = 0; i < 400 && queries < queries_before_backfill + 3; ++i) std::this_thread::sleep_for(5ms);
    stop.request_stop();
    follower.join();
    reader.join();

    CHECK(appended == 100);
    CHECK(queries_before_backfill >= 3);
    CHECK(queries >= queries_before_backfill + 3);
    CHECK_FALSE(query_failed);
    CHECK(v1_ref.position() == store->head());
    CHECK(v2.position() == store->head());
    CHECK(rows_of<tickets<1>::table>(*storage, "tickets_v1").size() == 400);
    CHECK(rows_of<tickets<2>::table>(*storage, "tickets_v2").size() == 400);
}

TEST_CASE("one live version at a time: making v2 live stops v1's emission", "[deploy]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 0, true);
    memory_tickets d(store, storage);
    d.catch_up();
    d.get<tickets<1>>().make_live();
    d.init("tickets_v2");
    d.backfill("tickets_v2");
    d.make_live("tickets_v2");
    CHECK_FALSE(d.get<tickets<1>>().status().live);
    CHECK(d.get<tickets<2>>().status().live);
    CHECK_FALSE(storage.find_catalog("tickets_v1")->live);
    d.make_live("tickets_v1");  // and back, for a rollback
    CHECK(d.get<tickets<1>>().status().live);
    CHECK_FALSE(d.get<tickets<2>>().status().live);
}

TEST_CASE("a deleted version with automatic kick-off stays deleted", "[deploy]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 0, true);
    memory_tickets d(store, storage);
    d.catch_up();
    d.init("tickets_v2");
    d.backfill("tickets_v2");
    d.serve("tickets_v2");
    d.remove("tickets_v1");
    append_ticket(store, "t-2", "bug", 0, false);
    d.catch_up();  // v1 has automatic kick-off: it must not come back by itself
    CHECK_FALSE(storage.has_table("tickets_v1"));
    CHECK(d.get<tickets<1>>().state() == pj::projection_state::deleted);
    d.init("tickets_v1");  // only an explicit init brings it back
    CHECK(storage.has_table("tickets_v1"));
}

TEST_CASE("the query path: status by version name, and a version's table by its type", "[deploy][query]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 1, false);
    append_ticket(store, "t-2", "question", 0, true);
    memory_tickets d(store, storage);
    d.catch_up();

    const pj::runner_status v1 = d.status("tickets_v1");
    CHECK(v1.name == "tickets_v1");
    CHECK(v1.position == store.head());
    CHECK(d.status("tickets_v2").state == pj::projection_state::declared);
    CHECK(d.status("tickets_v2").name == d.status()[1].name);
    CHECK_THROWS_WITH(d.status("tickets"), Catch::Contains("'tickets' is not a version of tickets; the versions are: "
                                                           "tickets_v1, tickets_v2"));

    // memory: a handle that shares the live table
    auto t1 = storage.table<tickets<1>>();
    static_assert(std::is_same_v<decltype(storage.table<tickets<1>>()), pj::memory_table_ref<tickets<1>::table>>);
    CHECK(t1.find("t-1")->status == "closed");  // v1 ignores the reopening
    CHECK(storage.table<tickets<1>>(pj::rows<ticket_row>).name() == t1.name());
    CHECK_THROWS_AS(storage.table<tickets<2>>(), pj::state_error);
    d.init("tickets_v2");
    d.backfill("tickets_v2");
    CHECK(storage.table<tickets<2>>().find("t-1")->status == "open");
    CHECK(storage.table<tickets<2>>().find("t-1")->reopened == 1);
    d.remove("tickets_v2");
    CHECK_THROWS_WITH(
        storage.table<tickets<2>>(),
        Catch::Contains("table tickets_v2 does not exist: tickets_v2 is not initialized, or it was deleted"));
}

}  // namespace deployment_test
