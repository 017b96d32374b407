// The runner on PostgreSQL: the tickets scenario gives the same read model as in memory, in both
// partitioning modes, with the log and the read models in one schema or in two; a failing batch
// leaves nothing behind (rows, checkpoint, emitted events); a restart resumes from the committed
// checkpoint; a duplicate key found when a batch's buffered writes are sent is blamed on its own
// event; bad input stops the projection or goes to the dead letters; two runners of one version
// never apply anything twice.

#include <catch2/catch.hpp>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <postgres_test_support.hpp>
#include <projectionist/postgres.hpp>
#include <tickets_domain.hpp>

namespace pj = projectionist;
using namespace tickets_domain;
using Catch::Contains;
using postgres_test::pg_url;
using postgres_test::scalar;
using postgres_test::scoped_schema;

namespace {

template <class Table, class Storage>
std::map<std::string, ticket_row> rows_of(Storage& storage, std::string_view name) {
    std::map<std::string, ticket_row> out;
    auto table = storage.template find_table<Table>(name);
    REQUIRE(static_cast<bool>(table));
    table->for_each([&](const ticket_row& r) { out.emplace(r.ticket_id, r); });
    return out;
}

template <class Store>
void history(Store& store) {
    for (int i = 0; i < 60; ++i)
        append_ticket(store, "t-" + std::to_string(i), i % 3 ? "bug" : "task", i % 4, i % 2 == 0);
}

struct fragile : pj::projection<"fragile", 1, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    std::string fail_on;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open", 0}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
        if (e.ticket_id == fail_on) throw std::runtime_error("close failed");
    }
};

/// Inserts on every registration: a second registration of a ticket is a duplicate key.
struct strict : pj::projection<"strict", 1, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open", 0}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
    }
};

}  // namespace

TEMPLATE_TEST_CASE("on PostgreSQL the tickets read model equals the in-memory reference", "[postgres][runner]",
                   pj::global, pj::per_aggregate) {
    pj::memory_event_store memory_store;
    pj::memory_storage memory_storage;
    history(memory_store);
    pj::runner<tickets<2>> reference(memory_store, memory_storage);
    reference.catch_up();
    const auto expected = rows_of<tickets<2>::table>(memory_storage, "tickets_v2");

    scoped_schema log_schema("pj_log");
    SECTION("one schema") {
        pj::postgres_event_store store(pg_url(), log_schema.options());
        pj::postgres_storage storage(pg_url(), log_schema.options());
        history(store);
        pj::runner<tickets<2>, pj::postgres_storage, TestType> r(store, storage, pj::runner_options{17});
        CHECK(r.catch_up() == memory_store.head());
        CHECK(rows_of<tickets<2>::table>(storage, "tickets_v2") == expected);
        CHECK(r.status().position == store.head());
    }
    SECTION("two schemas") {
        scoped_schema model_schema("pj_models");
        pj::postgres_event_store store(pg_url(), log_schema.options());
        pj::postgres_storage storage(pg_url(), model_schema.options());
        history(store);
        pj::runner<tickets<2>, pj::postgres_storage, TestType> r(store, storage, pj::runner_options{17});
        CHECK(r.catch_up() == memory_store.head());
        CHECK(rows_of<tickets<2>::table>(storage, "tickets_v2") == expected);
        CHECK_FALSE(pj::postgres_storage(pg_url(), log_schema.options()).has_table("tickets_v2"));
    }
}

TEMPLATE_TEST_CASE("a restart on PostgreSQL resumes from the committed checkpoint", "[postgres][runner]", pj::global,
                   pj::per_aggregate) {
    scoped_schema schema;
    {
        pj::postgres_event_store store(pg_url(), schema.options());
        pj::postgres_storage storage(pg_url(), schema.options());
        append_ticket(store, "t-1", "bug", 1, false);
        pj::runner<tickets<2>, pj::postgres_storage, TestType> r(store, storage);
        CHECK(r.catch_up() == 3);
    }
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_storage storage(pg_url(), schema.options());
    append_ticket(store, "t-2", "bug", 0, true);
    pj::runner<tickets<2>, pj::postgres_storage, TestType> r(store, storage);
    CHECK(r.status().state == pj::projection_state::caught_up);
    CHECK(r.position() == 3);
    CHECK(r.catch_up() == 2);
    if constexpr (TestType::partitioned) {
        CHECK(r.aggregate_position(ticket_stream{}, "t-1") == 3);
        CHECK(r.aggregate_position(ticket_stream{}, "t-2") == 2);
        // One row per aggregate, written by one statement per batch.
        CHECK(scalar(storage.connection(),
                     "SELECT count(*) FROM projectionist_aggregate_checkpoints WHERE projection = 'tickets_v2'") == 2);
    }
    const auto rows = rows_of<tickets<2>::table>(storage, "tickets_v2");
    CHECK(rows.at("t-1") == ticket_row{"t-1", "bug", "open", 1});
    CHECK(rows.at("t-2") == ticket_row{"t-2", "bug", "closed", 0});
}

TEMPLATE_TEST_CASE("a failing handler on PostgreSQL rolls back the batch's rows and checkpoint", "[postgres][runner]",
                   pj::global, pj::per_aggregate) {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_storage storage(pg_url(), schema.options());
    for (int i = 1; i <= 4; ++i) append_ticket(store, "a" + std::to_string(i), "bug", 0, false);
    append_ticket(store, "b1", "bug", 0, true);  // 5, 6: the close throws
    fragile p;
    p.fail_on = "b1";
    pj::runner<fragile, pj::postgres_storage, TestType> r(store, storage, p, pj::runner_options{4});
    CHECK_THROWS_WITH(r.catch_up(), Contains("position 6") && Contains("aggregate 'b1'") && Contains("ticket.closed") &&
                                        Contains("close failed"));
    CHECK(r.position() == 4);
    auto table = storage.find_table<fragile::table>("fragile_v1");
    CHECK(table->size() == 4);
    CHECK_FALSE(table->contains("b1"));
    pj::runner<fragile, pj::postgres_storage, TestType> fresh(store, storage);
    CHECK(fresh.position() == 4);
    CHECK(fresh.catch_up() == 2);
    CHECK(table->find("b1")->status == "closed");
}

TEMPLATE_TEST_CASE("a duplicate key found when a batch is sent is blamed on its own event", "[postgres][runner]",
                   pj::global, pj::per_aggregate) {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_storage storage(pg_url(), schema.options());
    append_ticket(store, "a", "bug", 0, true);                              // 1, 2
    append_ticket(store, "b", "bug", 0, false);                             // 3
    store.append(ticket_stream{}, "c", 0, ticket_registered{"a", "task"});  // 4: inserts "a" again
    append_ticket(store, "d", "bug", 0, false);                             // 5
    // Batches of 3: {1, 2, 3} commits "a"; in {4, 5} "a" is not known, so its insert is
    // buffered and refused only when the batch is sent, after its event's handler returned.

    SECTION("stop_on_error stops at the event that made the write") {
        pj::runner<strict, pj::postgres_storage, TestType> r(store, storage, pj::runner_options{3});
        try {
            r.catch_up();
            FAIL("the duplicate was applied");
        } catch (const pj::projection_error& e) {
            CHECK(e.context().position == 4);
            CHECK(e.context().aggregate_id == "c");
            CHECK_THAT(e.reason(), Contains("'a'") && Contains("already exists"));
        }
        CHECK(r.position() == 3);
        auto table = storage.find_table<strict::table>("strict_v1");
        CHECK(table->size() == 2);  // d was in the failed batch: not committed
        CHECK(table->find("a") == ticket_row{"a", "bug", "closed", 0});
    }
    SECTION("skip_to_dead_letter records that event and applies the rest of the batch") {
        pj::runner<strict, pj::postgres_storage, TestType, pj::skip_to_dead_letter> r(store, storage,
                                                                                      pj::runner_options{3});
        CHECK(r.catch_up() == 4);
        CHECK(r.position() == 5);
        const auto letters = r.dead_letters();
        REQUIRE(letters.size() == 1);
        CHECK(letters[0].position == 4);
        CHECK(letters[0].aggregate_id == "c");
        CHECK_THAT(letters[0].reason, Contains("'a'") && Contains("already exists"));
        auto table = storage.find_table<strict::table>("strict_v1");
        CHECK(table->size() == 3);
        CHECK(table->find("a") == ticket_row{"a", "bug", "closed", 0});
    }
}

TEST_CASE("reset and remove on PostgreSQL touch one version only", "[postgres][runner]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_storage storage(pg_url(), schema.options());
    append_ticket(store, "t-1", "bug", 1, true);
    pj::runner<tickets<1>, pj::postgres_storage> v1(store, storage);
    pj::runner<tickets<2>, pj::postgres_storage, pj::per_aggregate, pj::manual_kickoff> v2(store, storage);
    v1.catch_up();
    CHECK(v2.catch_up() == 0);
    CHECK_FALSE(storage.has_table("tickets_v2"));  // dormant: nothing created
    v2.init();
    v2.backfill();
    v2.reset();
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->empty());
    CHECK(storage.find_table<tickets<1>::table>("tickets_v1")->size() == 1);
    CHECK(v2.catch_up() == 4);
    v1.remove();
    CHECK_FALSE(storage.has_table("tickets_v1"));
    CHECK_FALSE(storage.find_catalog("tickets_v1").has_value());
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->find("t-1")->reopened == 1);
    const auto entry = storage.find_catalog("tickets_v2");
    REQUIRE(entry.has_value());
    CHECK(entry->partitioning == "per_aggregate");
    CHECK(entry->tables == std::vector<std::string>{"tickets_v2"});
}

namespace {
struct notifier : pj::projection<"notifier", 1, ticket_stream, pj::emits_to<ticket_summary_stream>> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    bool fail_on_close = false;
    void on(const ticket_registered& e, auto& ctx) {
        ctx.table().insert({e.ticket_id, e.type, "open", 0});
        ctx.emit(ticket_status_changed{e.ticket_id, "open"});
    }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.emit(ticket_status_changed{e.ticket_id, "closed"});
        if (fail_on_close) throw std::runtime_error("close failed");
    }
};

template <class Store>
std::size_t summary_count(Store& store) {
    typename Store::batch batch;
    store.read(0, 1000, batch);
    std::size_t n = 0;
    for (const auto& rec : batch) n += rec.stream() == "ticket_summary" ? 1 : 0;
    return n;
}
}  // namespace

TEST_CASE("in one schema, emitted events commit in the batch's transaction", "[postgres][runner][emission]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_storage storage(pg_url(), schema.options());
    append_ticket(store, "t-1", "bug", 0, true);
    SECTION("a failing batch emits nothing") {
        notifier p;
        p.fail_on_close = true;
        pj::runner<notifier, pj::postgres_storage, pj::emit_always> r(store, storage, p);
        CHECK_THROWS_AS(r.catch_up(), pj::projection_error);
        CHECK(summary_count(store) == 0);
        CHECK(store.head() == 2);
        CHECK(r.status().emitted == 0);
        CHECK_FALSE(storage.find_table<notifier::table>("notifier_v1")->contains("t-1"));
    }
    SECTION("a committed batch's emitted events are in the log") {
        pj::runner<notifier, pj::postgres_storage, pj::emit_always> r(store, storage);
        r.catch_up();
        CHECK(summary_count(store) == 2);
        CHECK(r.status().emitted == 2);
        CHECK(store.version_of(ticket_summary_stream{}, "t-1") == 2);
        CHECK(storage.find_table<notifier::table>("notifier_v1")->contains("t-1"));
    }
}

namespace {
struct ticket_archived {
    BOOST_HANA_DEFINE_STRUCT(ticket_archived, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.archived";
};
using newer_ticket_stream = pj::stream<"ticket", ticket_registered, ticket_closed, ticket_reopened, ticket_archived>;

/// Positions: 1 t-1 registered, 2 t-1 closed (corrupted below), 3 t-2 registered,
/// 4 t-2 archived (unknown to this build), 5 t-3 registered (oversized type), 6 t-1 reopened.
void bad_history(scoped_schema& schema) {
    pj::postgres_event_store store(pg_url(), schema.options());
    append_ticket(store, "t-1", "bug", 0, true);
    append_ticket(store, "t-2", "bug", 0, false);
    store.append(newer_ticket_stream{}, "t-2", 1, ticket_archived{"t-2"});
    append_ticket(store, "t-3", std::string(4000, 'x'), 0, false);
    store.append(ticket_stream{}, "t-1", 2, ticket_reopened{"t-1"});
    // Truncate the payload of position 2 behind the store's back.
    schema.connection().exec("UPDATE " + schema.quoted() +
                             ".projectionist_events SET payload = substring(payload from 1 for 3) WHERE position = 2");
}

pj::postgres_options small_payloads(const scoped_schema& schema) {
    auto o = schema.options();
    o.max_payload_bytes = 1024;
    return o;
}
}  // namespace

TEST_CASE("bad input stops a stop_on_error projection at its last committed position", "[postgres][bad_input]") {
    scoped_schema schema;
    bad_history(schema);
    pj::postgres_event_store store(pg_url(), small_payloads(schema));
    pj::postgres_storage storage(pg_url(), schema.options());
    pj::runner<tickets<2>, pj::postgres_storage> r(store, storage, pj::runner_options{1});
    try {
        r.catch_up();
        FAIL("expected a projection_error");
    } catch (const pj::projection_error& e) {
        CHECK(e.context().position == 2);
        CHECK(e.context().aggregate_id == "t-1");
        CHECK(e.context().event_type == "ticket.closed");
    }
    CHECK(r.position() == 1);
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->find("t-1")->status == "open");
    pj::runner<tickets<2>, pj::postgres_storage> again(store, storage, pj::runner_options{1});
    CHECK(again.position() == 1);
    CHECK_THROWS_WITH(again.catch_up(), Contains("position 2"));
}

TEMPLATE_TEST_CASE("skip_to_dead_letter on PostgreSQL records every kind of bad input and goes on",
                   "[postgres][bad_input][dead_letter]", pj::global, pj::per_aggregate) {
    scoped_schema schema;
    bad_history(schema);
    {
        pj::postgres_event_store store(pg_url(), small_payloads(schema));
        pj::postgres_storage storage(pg_url(), schema.options());
        pj::runner<tickets<2>, pj::postgres_storage, pj::skip_to_dead_letter, TestType> r(store, storage,
                                                                                          pj::runner_options{100});
        r.catch_up();
        CHECK(r.position() == 6);
        const auto letters = r.dead_letters();
        if constexpr (TestType::partitioned) {
            REQUIRE(letters.size() == 4);
            CHECK(letters[3].position == 6);
            CHECK(letters[3].parked);
            CHECK(r.status().parked_aggregates == 3);
        } else {
            REQUIRE(letters.size() == 3);
        }
        CHECK(letters[0].position == 2);
        CHECK(letters[1].position == 4);
        CHECK(letters[1].event_type == "ticket.archived");
        CHECK_THAT(letters[1].reason, Contains("unknown event type"));
        CHECK(letters[2].position == 5);
        CHECK(letters[2].aggregate_id == "t-3");
        CHECK_THAT(letters[2].reason, Contains("1024"));

        auto table = storage.find_table<tickets<2>::table>("tickets_v2");
        CHECK(table->find("t-2")->status == "open");
        CHECK_FALSE(table->contains("t-3"));
        if constexpr (TestType::partitioned)
            CHECK(table->find("t-1")->reopened == 0);  // parked
        else
            CHECK(table->find("t-1")->reopened == 1);
    }
    // The dead letters are in the schema, and a new runner loads the parked aggregates.
    pj::postgres_event_store store(pg_url(), small_payloads(schema));
    pj::postgres_storage storage(pg_url(), schema.options());
    CHECK(scalar(storage.connection(),
                 "SELECT count(*) FROM projectionist_dead_letters WHERE projection = 'tickets_v2'") ==
          (TestType::partitioned ? 4 : 3));
    pj::runner<tickets<2>, pj::postgres_storage, pj::skip_to_dead_letter, TestType> again(store, storage);
    CHECK(again.status().parked_aggregates == (TestType::partitioned ? 3u : 0u));
    CHECK(again.dead_letters().size() == (TestType::partitioned ? 4u : 3u));
}
