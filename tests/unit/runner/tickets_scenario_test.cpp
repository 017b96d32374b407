// The seed's tickets scenario through the runner, under both partitioning policies, plus the
// property the blue-green upgrade relies on: global and per-aggregate give the same read model.

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

namespace tickets_scenario_test {

namespace pj = projectionist;
using namespace tickets_domain;

namespace {

template <class Table>
std::map<std::string, ticket_row> rows_of(pj::memory_storage& storage, std::string_view name) {
    std::map<std::string, ticket_row> out;
    auto table = storage.find_table<Table>(name);
    REQUIRE(table.has_value());
    table->for_each([&](const ticket_row& r) { out.emplace(r.ticket_id, r); });
    return out;
}

/// A random interleaving of many tickets' lives, so that aggregates are mixed in the log.
/// Returns how many tickets were registered.
std::size_t append_random_history(pj::memory_event_store& store, int tickets, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::uint64_t> version(static_cast<std::size_t>(tickets), 0);
    std::vector<int> status(static_cast<std::size_t>(tickets), 0);  // 0 none, 1 open, 2 closed
    for (int step = 0; step < tickets * 6; ++step) {
        const auto i = static_cast<std::size_t>(rng() % static_cast<unsigned>(tickets));
        const std::string id = "t-" + std::to_string(i);
        if (status[i] == 0) {
            version[i] =
                store.append(ticket_stream{}, id, version[i], ticket_registered{id, i % 3 ? "bug" : "task"}).version;
            status[i] = 1;
        } else if (status[i] == 1) {
            version[i] = store.append(ticket_stream{}, id, version[i], ticket_closed{id}).version;
            status[i] = 2;
        } else {
            version[i] = store.append(ticket_stream{}, id, version[i], ticket_reopened{id}).version;
            status[i] = 1;
        }
    }
    return static_cast<std::size_t>(std::count_if(status.begin(), status.end(), [](int st) { return st != 0; }));
}

struct comment_added {
    BOOST_HANA_DEFINE_STRUCT(comment_added, (std::string, ticket_id), (std::string, text));
    static constexpr std::string_view event_name = "comment.added";
};
using comment_stream = pj::stream<"comment", comment_added>;
struct activity_row {
    BOOST_HANA_DEFINE_STRUCT(activity_row, (std::string, ticket_id), (std::string, log));
};
struct activity : pj::projection<"activity", 1, ticket_stream, comment_stream> {
    using table = pj::table<activity_row, &activity_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, "R"}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](activity_row& r) { r.log += "C"; });
    }
    void on(const comment_added& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [&](activity_row& r) { r.log += e.text; });
    }
};
}  // namespace

TEMPLATE_TEST_CASE("the tickets scenario: registered, closed, reopened", "[runner][scenario]", pj::global,
                   pj::per_aggregate) {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 0, true);    // registered, closed
    append_ticket(store, "t-2", "task", 1, false);  // registered, closed, reopened
    append_ticket(store, "t-3", "bug", 2, true);    // registered, (closed, reopened) x2, closed
    append_ticket(store, "t-4", "task", 0, false);  // registered

    pj::runner<tickets<1>, TestType> v1(store, storage);
    pj::runner<tickets<2>, TestType> v2(store, storage);
    CHECK(v1.catch_up() == 9);   // every event but the 3 reopenings, which v1 has no handler for
    CHECK(v2.catch_up() == 12);  // every event

    const auto r1 = rows_of<tickets<1>::table>(storage, "tickets_v1");
    const auto r2 = rows_of<tickets<2>::table>(storage, "tickets_v2");
    REQUIRE(r1.size() == 4);
    REQUIRE(r2.size() == 4);
    // v1: the reopened ticket stays closed (the bug v2 fixes).
    CHECK(r1.at("t-1") == ticket_row{"t-1", "bug", "closed", 0});
    CHECK(r1.at("t-2") == ticket_row{"t-2", "task", "closed", 0});
    CHECK(r1.at("t-4") == ticket_row{"t-4", "task", "open", 0});
    // v2: reopening is handled and counted.
    CHECK(r2.at("t-1") == ticket_row{"t-1", "bug", "closed", 0});
    CHECK(r2.at("t-2") == ticket_row{"t-2", "task", "open", 1});
    CHECK(r2.at("t-3") == ticket_row{"t-3", "bug", "closed", 2});
    CHECK(r2.at("t-4") == ticket_row{"t-4", "task", "open", 0});

    const auto s = v2.status();
    CHECK(s.position == store.head());
    CHECK(s.lag == 0);
    CHECK(s.events_applied == 12);
    CHECK(s.state == pj::projection_state::caught_up);
    CHECK(s.partitioning == TestType::name);
    if constexpr (TestType::partitioned) {
        CHECK(s.aggregates_tracked == 4);
        CHECK(v2.aggregate_position(ticket_stream{}, "t-3") == 6);
        CHECK(v2.aggregate_position(ticket_stream{}, "t-4") == 1);
        CHECK(v2.aggregate_position(ticket_stream{}, "nope") == 0);
    } else {
        CHECK(s.aggregates_tracked == 0);
    }
}

TEMPLATE_TEST_CASE("catch_up is incremental: new events after a catch-up are applied once", "[runner][scenario]",
                   pj::global, pj::per_aggregate) {
    pj::memory_event_store store;
    pj::memory_storage storage;
    pj::runner<tickets<2>, TestType> v2(store, storage);
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    CHECK(v2.catch_up() == 1);
    CHECK(v2.catch_up() == 0);
    store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}, ticket_reopened{"t-1"});
    CHECK(v2.catch_up() == 2);
    const auto rows = rows_of<tickets<2>::table>(storage, "tickets_v2");
    CHECK(rows.at("t-1") == ticket_row{"t-1", "bug", "open", 1});
    CHECK(v2.status().events_applied == 3);
}

TEST_CASE("global and per-aggregate build the same read model from the same history", "[runner][scenario]") {
    for (unsigned seed : {1u, 2u, 3u}) {
        pj::memory_event_store store;
        pj::memory_storage global_storage;
        pj::memory_storage partitioned_storage;
        const std::size_t registered = append_random_history(store, 300, seed);
        // Different batch sizes too: batching must not change the result.
        pj::runner<tickets<2>, pj::global> g(store, global_storage, pj::runner_options{7});
        pj::runner<tickets<2>, pj::per_aggregate> p(store, partitioned_storage, pj::runner_options{1000});
        g.catch_up();
        p.catch_up();
        const auto a = rows_of<tickets<2>::table>(global_storage, "tickets_v2");
        const auto b = rows_of<tickets<2>::table>(partitioned_storage, "tickets_v2");
        REQUIRE(registered > 250);
        REQUIRE(a.size() == registered);
        CHECK(a == b);
        CHECK(g.status().events_applied == store.head());
        CHECK(p.status().events_applied == store.head());
        CHECK(p.status().aggregates_tracked == registered);
    }
}

TEST_CASE("batch size does not change the read model", "[runner][scenario]") {
    pj::memory_event_store store;
    const std::size_t registered = append_random_history(store, 50, 9);
    std::map<std::string, ticket_row> reference;
    for (std::size_t batch : {std::size_t{1}, std::size_t{3}, std::size_t{64}, std::size_t{100000}}) {
        pj::memory_storage storage;
        pj::runner<tickets<2>> r(store, storage, pj::runner_options{batch});
        r.catch_up();
        auto rows = rows_of<tickets<2>::table>(storage, "tickets_v2");
        if (reference.empty())
            reference = rows;
        else
            CHECK(rows == reference);
    }
    CHECK(reference.size() == registered);
}

TEST_CASE("per-aggregate skips events whose aggregate version is already applied", "[runner][per_aggregate]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 1, true);  // versions 1..4
    {
        pj::runner<tickets<2>, pj::per_aggregate> r(store, storage);
        CHECK(r.catch_up() == 4);
    }
    // The scan position is lost (as if a crash lost it), but the aggregate positions are not:
    // rescanning the log applies nothing twice.
    auto session = storage.open("tickets_v2");
    session.load_checkpoint().position = 0;
    pj::runner<tickets<2>, pj::per_aggregate> again(store, storage);
    CHECK(again.catch_up() == 0);
    CHECK(again.status().events_skipped == 4);
    auto table = storage.find_table<tickets<2>::table>("tickets_v2");
    CHECK(table->find("t-1")->reopened == 1);
}

TEST_CASE("a projection reading two streams sees both in global order", "[runner][scenario]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    store.append(comment_stream{}, "c-1", 0, comment_added{"t-1", "x"});
    store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});
    store.append(comment_stream{}, "c-2", 0, comment_added{"t-1", "y"});
    pj::runner<activity, pj::per_aggregate> r(store, storage);
    CHECK(r.catch_up() == 4);
    CHECK(storage.find_table<activity::table>("activity_v1")->find("t-1")->log == "RxCy");
    CHECK(r.status().aggregates_tracked == 3);
}

TEST_CASE("events of streams a projection does not read are passed over", "[runner][scenario]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    store.append(ticket_summary_stream{}, "t-1", 0, ticket_status_changed{"t-1", "open"});
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    pj::runner<tickets<1>, pj::per_aggregate> r(store, storage);
    CHECK(r.catch_up() == 1);
    CHECK(r.position() == 2);
    CHECK(r.status().aggregates_tracked == 1);  // only the ticket stream's aggregate
}

TEST_CASE("a version conflict on append leaves the log and the projection untouched", "[runner][store]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 0, false);
    pj::runner<tickets<2>> r(store, storage);
    r.catch_up();
    CHECK_THROWS_AS(store.append(ticket_stream{}, "t-1", 0, ticket_closed{"t-1"}), pj::version_conflict);
    CHECK(store.head() == 1);
    CHECK(r.catch_up() == 0);
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->find("t-1")->status == "open");
}

}  // namespace tickets_scenario_test
