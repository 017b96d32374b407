// The batch append (store/append_batch.hpp), on the backend the executable was built for, memory
// included: many aggregates in one call, one result per part, the parts of one aggregate checked
// in order, all or nothing (a version conflict names the aggregate; a database failure part-way
// writes nothing), a savepoint inside the caller's transaction, and a batch large enough to span
// many statements' worth of rows.

#include <backend_suite.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <projectionist/store/concepts.hpp>

using namespace backend_test;
using Catch::Contains;

namespace {

static_assert(pj::has_batch_append<backend::event_store_type>);
static_assert(pj::has_batch_append<backend::json_event_store_type>);
static_assert(pj::batch_appends_stream<backend::event_store_type, ticket_stream>);
static_assert(!pj::has_batch_append<int>);

/// Every record of the log as (position, aggregate id, aggregate version, stored name).
template <class Store>
std::vector<std::tuple<std::uint64_t, std::string, std::uint64_t, std::string>> log_of(const Store& store) {
    std::vector<std::tuple<std::uint64_t, std::string, std::uint64_t, std::string>> out;
    typename Store::batch batch;
    store.read(0, 1u << 20, batch);
    for (const auto& element : batch) {
        const auto& r = record_of(element);
        out.emplace_back(r.position(), std::string(r.aggregate_id()), r.aggregate_version(),
                         std::string(r.type_name()));
    }
    return out;
}

/// Whether the store's connection is inside a transaction (false for memory, which has none).
template <class Store, class B = backend>
bool in_transaction_of(Store& store) {
    if constexpr (B::speaks_sql)
        return B::in_transaction(store.connection());
    else
        return false;
}

/// Runs `sql` on the store's own connection (a SQL backend's).
template <class Store>
void exec_on(Store& store, const std::string& sql) {
    if constexpr (requires { store.connection(); })
        store.connection().exec(sql);
    else
        throw std::logic_error("backend_test: memory speaks no SQL: " + sql);
}

}  // namespace

TEMPLATE_TEST_CASE("a batch appends many aggregates in one call, one result per part, in order",
                   "[backend][store][batch]", backend::event_store_type, backend::json_event_store_type) {
    backend fx;
    auto store = fx.make<TestType>(fx.at());
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});

    auto batch = store.new_batch();
    CHECK(batch.empty());
    batch.add(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"})
        .add(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "task"}, ticket_closed{"t-2"})
        .add(ticket_stream{}, "t-1", 2, ticket_reopened{"t-1"})  // checked after the first part
        .add(ticket_stream{}, "t-3", pj::expected_version::any(), ticket_registered{"t-3", "x"});
    CHECK(batch.size() == 5);
    CHECK(batch.parts().size() == 4);
    const std::vector<pj::append_result> results = store.append(batch);
    REQUIRE(results.size() == 4);
    CHECK(results[0].first_position == 2);
    CHECK(results[0].last_position == 2);
    CHECK(results[0].version == 2);
    CHECK(results[1].first_position == 3);
    CHECK(results[1].last_position == 4);
    CHECK(results[1].version == 2);
    CHECK(results[2].first_position == 5);
    CHECK(results[2].version == 3);
    CHECK(results[3].first_position == 6);
    CHECK(results[3].version == 1);
    CHECK(batch.empty());  // emptied for reuse
    CHECK(batch.parts().empty());

    using row = std::tuple<std::uint64_t, std::string, std::uint64_t, std::string>;
    CHECK(log_of(store) == std::vector<row>{{1, "t-1", 1, "ticket.registered"},
                                            {2, "t-1", 2, "ticket.closed"},
                                            {3, "t-2", 1, "ticket.registered"},
                                            {4, "t-2", 2, "ticket.closed"},
                                            {5, "t-1", 3, "ticket.reopened"},
                                            {6, "t-3", 1, "ticket.registered"}});
    CHECK(store.head() == 6);
    CHECK(store.version_of(ticket_stream{}, "t-1") == 3);
    CHECK(store.version_of(ticket_stream{}, "t-2") == 2);
    CHECK(store.aggregate_number(ticket_stream{}, "t-2") == std::optional<std::uint64_t>(1));
    CHECK(store.aggregate_number(ticket_stream{}, "t-3") == std::optional<std::uint64_t>(2));
    CHECK(store.type_count() == 3);

    // The events decode as they were added.
    typename TestType::batch read;
    store.read(2, 1, read);
    REQUIRE(read.size() == 1);
    const auto& registered = record_of(read[0]);
    REQUIRE(registered.type_name() == "ticket.registered");
    const ticket_registered e = store.template event_of<ticket_registered>(registered);
    CHECK(e.ticket_id == "t-2");
    CHECK(e.type == "task");

    // The emptied batch is reused; an empty batch writes nothing.
    CHECK(store.append(batch).empty());
    batch.add(ticket_stream{}, "t-2", 2, ticket_reopened{"t-2"});
    CHECK(store.append(batch).at(0).first_position == 7);
    CHECK(store.head() == 7);
    CHECK(log_consistent(fx));
    if constexpr (backend::speaks_sql) {
        CHECK_FALSE(in_transaction_of(store));
        CHECK(fx.integrity_ok());
    }
}

TEMPLATE_TEST_CASE("a batch with one stale part writes nothing and names that aggregate", "[backend][store][batch]",
                   backend::event_store_type, backend::json_event_store_type) {
    backend fx;
    auto store = fx.make<TestType>(fx.at());
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"}, ticket_closed{"t-2"});

    auto batch = store.new_batch();
    batch.add(ticket_stream{}, "t-new", 0, ticket_registered{"t-new", "task"})
        .add(ticket_stream{}, "t-1", 1, ticket_reopened{"t-1"})   // a type the log has not seen
        .add(ticket_stream{}, "t-2", 1, ticket_reopened{"t-2"});  // t-2 is at version 2
    try {
        store.append(batch);
        FAIL("a batch with a stale part went through");
    } catch (const pj::version_conflict& e) {
        CHECK(e.context().aggregate_id == "t-2");
        CHECK(e.context().stream == "ticket");
        CHECK(e.expected() == 1);
        CHECK(e.actual() == 2);
        CHECK_THAT(e.what(), Contains("aggregate 't-2'") && Contains("nothing was appended"));
    }
    // Nothing of it: no event, no new aggregate, no version moved, not even the new type.
    CHECK(store.head() == 3);
    CHECK(store.version_of(ticket_stream{}, "t-1") == 1);
    CHECK_FALSE(store.aggregate_number(ticket_stream{}, "t-new").has_value());
    CHECK(store.type_count() == 2);
    CHECK(batch.size() == 3);  // kept, so that it can be looked at or sent again

    // A second part of one aggregate is checked against the version the first leaves it at.
    auto twice = store.new_batch();
    twice.add(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}).add(ticket_stream{}, "t-1", 1, ticket_reopened{"t-1"});
    try {
        store.append(twice);
        FAIL("the second part of one aggregate was checked against the version before the batch");
    } catch (const pj::version_conflict& e) {
        CHECK(e.context().aggregate_id == "t-1");
        CHECK(e.expected() == 1);
        CHECK(e.actual() == 2);
    }
    CHECK(store.head() == 3);

    if constexpr (backend::speaks_sql) {
        CHECK_FALSE(in_transaction_of(store));
        CHECK(fx.scalar("SELECT count(*) FROM projectionist_aggregates") == 2);
        CHECK(fx.scalar("SELECT count(*) FROM projectionist_event_types") == 2);
    }
    // The store goes on, with positions that have no hole.
    auto fixed = store.new_batch();
    fixed.add(ticket_stream{}, "t-new", 0, ticket_registered{"t-new", "task"})
        .add(ticket_stream{}, "t-2", 2, ticket_reopened{"t-2"});
    const auto results = store.append(fixed);
    CHECK(results.at(0).first_position == 4);
    CHECK(results.at(1).first_position == 5);
    CHECK(results.at(1).version == 3);
    CHECK(store.aggregate_number(ticket_stream{}, "t-new") == std::optional<std::uint64_t>(2));
    CHECK(log_consistent(fx));
}

TEST_CASE("a batch the database refuses part-way writes none of it", "[backend][store][batch]") {
    BACKEND_SKIP_UNLESS(backend::speaks_sql, "a database that refuses a row part-way");
    backend fx;
    auto store = fx.store();
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    fx.refuse("refuse_t9", "INSERT", "projectionist_events", "NEW.aggregate_id = 't-9'", "refused by the test");
    auto batch = store.new_batch();
    for (int i = 2; i < 12; ++i) {
        const std::string id = "t-" + std::to_string(i);
        batch.add(ticket_stream{}, id, 0, ticket_registered{id, "bug"}, ticket_closed{id});
    }
    batch.add(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});
    CHECK_THROWS_WITH(store.append(batch), Contains("refused by the test"));
    CHECK_FALSE(in_transaction_of(store));
    CHECK(store.head() == 1);
    CHECK(store.version_of(ticket_stream{}, "t-1") == 1);
    CHECK_FALSE(store.aggregate_number(ticket_stream{}, "t-2").has_value());
    CHECK(fx.scalar("SELECT count(*) FROM projectionist_events") == 1);
    CHECK(fx.scalar("SELECT count(*) FROM projectionist_aggregates") == 1);
    CHECK(fx.scalar("SELECT count(*) FROM projectionist_event_types") == 1);

    fx.allow("refuse_t9", "projectionist_events");
    const auto results = store.append(batch);
    CHECK(results.size() == 11);
    const std::uint64_t last = backend::concurrent_appends ? 43 : 22;  // 21 positions rolled back
    CHECK(results.back().first_position == last);
    CHECK(results.back().version == 2);
    CHECK(store.head() == last);
    CHECK(log_consistent(fx));
    CHECK(fx.integrity_ok());
}

TEST_CASE("inside an open transaction a batch is a savepoint of it", "[backend][store][batch]") {
    BACKEND_SKIP_UNLESS(backend::speaks_sql, "a transaction of the caller's on the store's connection");
    backend fx;
    auto store = fx.store();
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    exec_on(store, "BEGIN");
    auto batch = store.new_batch();
    batch.add(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"})
        .add(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "x"});
    CHECK(store.append(batch).at(1).first_position == 3);
    batch.add(ticket_stream{}, "t-1", 1, ticket_reopened{"t-1"});  // stale: refused, the transaction goes on
    CHECK_THROWS_AS(store.append(batch), pj::version_conflict);
    CHECK(in_transaction_of(store));
    CHECK(store.head() == (backend::concurrent_appends ? 1 : 3));  // not its own open transaction's
    exec_on(store, "ROLLBACK");
    CHECK(store.head() == 1);
    CHECK_FALSE(store.aggregate_number(ticket_stream{}, "t-2").has_value());
    CHECK(log_consistent(fx));
}

TEMPLATE_TEST_CASE("a batch of thousands of events over hundreds of aggregates, old and new", "[backend][store][batch]",
                   backend::event_store_type, backend::json_event_store_type) {
    backend fx;
    auto store = fx.make<TestType>(fx.at());
    for (int i = 0; i < 100; ++i) {
        const std::string id = "old-" + std::to_string(i);
        store.append(ticket_stream{}, id, 0, ticket_registered{id, "bug"});
    }
    auto batch = store.new_batch();
    for (int round = 0; round < 4; ++round)
        for (int i = 0; i < 500; ++i) {
            const bool old = i < 100;
            const std::string id = (old ? "old-" : "new-") + std::to_string(i);
            const std::uint64_t expected = (old ? 1 : 0) + 3 * static_cast<std::uint64_t>(round);
            if (!old && round == 0)
                batch.add(ticket_stream{}, id, expected, ticket_registered{id, "task"}, ticket_closed{id},
                          ticket_reopened{id});
            else
                batch.add(ticket_stream{}, id, expected, ticket_closed{id}, ticket_reopened{id}, ticket_closed{id});
        }
    const auto results = store.append(batch);
    REQUIRE(results.size() == 2000);
    CHECK(results.front().first_position == 101);
    CHECK(results.back().last_position == 100 + 6000);
    CHECK(store.head() == 6100);
    CHECK(store.version_of(ticket_stream{}, "old-7") == 13);
    CHECK(store.version_of(ticket_stream{}, "new-499") == 12);
    CHECK(store.aggregate_number(ticket_stream{}, "new-100") == std::optional<std::uint64_t>(100));
    CHECK(store.aggregate_number(ticket_stream{}, "new-499") == std::optional<std::uint64_t>(499));
    // Positions are dense and each aggregate's versions run 1, 2, 3, ... in log order.
    std::map<std::string, std::uint64_t> last;
    std::uint64_t expected_position = 0;
    bool dense = true, in_order = true;
    for (const auto& [position, id, version, type] : log_of(store)) {
        dense = dense && position == ++expected_position;
        in_order = in_order && version == ++last[id];
    }
    CHECK(dense);
    CHECK(in_order);
    const auto aggregate = store.read_aggregate(ticket_stream{}, "new-250");
    REQUIRE(aggregate.size() == 12);
    CHECK(record_of(aggregate[0]).type_name() == "ticket.registered");
    CHECK(store.template event_of<ticket_closed>(record_of(aggregate[11])).ticket_id == "new-250");
    CHECK(log_consistent(fx));
}

TEST_CASE("a writer's remembered versions never outlive another connection's commit or a rolled-back transaction",
          "[backend][store][batch]") {
    BACKEND_SKIP_UNLESS(backend::speaks_sql, "two store objects over one database");
    backend fx;
    auto a = fx.store();
    auto b = fx.store();
    a.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    CHECK(a.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}).version == 2);  // a knows t-1 at 2 now
    b.append(ticket_stream{}, "t-1", 2, ticket_reopened{"t-1"});                    // another connection moves it
    CHECK_THROWS_AS(a.append(ticket_stream{}, "t-1", 2, ticket_closed{"t-1"}), pj::version_conflict);
    CHECK(a.append(ticket_stream{}, "t-1", 3, ticket_closed{"t-1"}).first_position == 4);

    // Written inside a transaction of the caller's, then rolled back by the caller.
    exec_on(a, "BEGIN");
    a.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "x"});
    auto batch = a.new_batch();
    batch.add(ticket_stream{}, "t-1", 4, ticket_reopened{"t-1"});
    a.append(batch);
    exec_on(a, "ROLLBACK");
    CHECK_THROWS_AS(a.append(ticket_stream{}, "t-1", 5, ticket_closed{"t-1"}), pj::version_conflict);
    const auto r = a.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "x"});
    // With concurrent appends the rolled-back positions 5 and 6 and aggregate number 1 stay unused.
    CHECK(r.first_position == (backend::concurrent_appends ? 7 : 5));
    CHECK(a.aggregate_number(ticket_stream{}, "t-2") ==
          std::optional<std::uint64_t>(backend::concurrent_appends ? 2 : 1));
    CHECK(b.version_of(ticket_stream{}, "t-1") == 4);
    CHECK(log_consistent(fx));
}

/// A store that opens transactions of its own (SQLite's transaction()); a concept, so that the case
/// below is a template whose body is instantiated only for such a store.
template <class Store>
concept store_with_own_transaction = requires(Store& s) {
    s.transaction();
};

template <class Fixture>
void check_own_transaction_all_or_nothing() {
    if constexpr (store_with_own_transaction<typename Fixture::event_store_type>) {
        Fixture fx;
        auto store = fx.store();
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        {
            auto tx = store.transaction();
            for (int i = 2; i <= 50; ++i) {
                const std::string id = "t-" + std::to_string(i);
                store.append(ticket_stream{}, id, 0, ticket_registered{id, "bug"});
                store.append(ticket_stream{}, id, 1, ticket_closed{id});
            }
            // A version conflict writes nothing, so the transaction goes on.
            CHECK_THROWS_AS(store.append(ticket_stream{}, "t-1", 0, ticket_closed{"t-1"}), pj::version_conflict);
            CHECK(store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}).version == 2);
            CHECK(store.head() == 100);
            tx.commit();
        }
        CHECK(store.head() == 100);
        CHECK(fx.store().version_of(ticket_stream{}, "t-50") == 2);

        {  // not committed: rolled back, and the writer forgets what it wrote
            auto tx = store.transaction();
            store.append(ticket_stream{}, "t-51", 0, ticket_registered{"t-51", "bug"});
            store.append(ticket_stream{}, "t-1", 2, ticket_reopened{"t-1"});
        }
        CHECK(store.head() == 100);
        CHECK(store.append(ticket_stream{}, "t-1", 2, ticket_reopened{"t-1"}).first_position == 101);

        // A failure after the first write dooms the transaction: nothing of it is committed.
        fx.refuse("refuse_t53", "INSERT", "projectionist_events", "NEW.aggregate_id = 't-53'", "refused by the test");
        {
            auto tx = store.transaction();
            store.append(ticket_stream{}, "t-52", 0, ticket_registered{"t-52", "bug"});
            CHECK_THROWS_WITH(store.append(ticket_stream{}, "t-53", 0, ticket_registered{"t-53", "bug"}),
                              Contains("refused by the test"));
            CHECK_THROWS_WITH(store.append(ticket_stream{}, "t-54", 0, ticket_registered{"t-54", "bug"}),
                              Contains("roll the transaction back"));
            CHECK_THROWS_WITH(tx.commit(), Contains("rolled back"));
        }
        CHECK(store.head() == 101);
        CHECK_FALSE(store.aggregate_number(ticket_stream{}, "t-52").has_value());
        CHECK_FALSE(in_transaction_of(store));
        fx.allow("refuse_t53", "projectionist_events");
        CHECK(store.append(ticket_stream{}, "t-52", 0, ticket_registered{"t-52", "bug"}).first_position == 102);
        CHECK(log_consistent(fx));
        CHECK(fx.integrity_ok());
    }
}

TEST_CASE("in the store's own transaction appends are all or nothing together", "[backend][store][batch]") {
    BACKEND_SKIP_UNLESS(store_with_own_transaction<backend::event_store_type>,
                        "a transaction of the store's own (transaction())");
    check_own_transaction_all_or_nothing<backend>();
}
