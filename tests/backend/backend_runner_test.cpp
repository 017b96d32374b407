// The runner over the backend the executable was built for, each case in both backfill modes
// (bulk and batch; batch only on memory, see backfill_runs) but the cases of runners that always
// emit, which never run in bulk: the tickets read model equals the in-memory reference in both
// partitioning modes, with the log and the read models in one database or two; restarts resume;
// a failing handler, a duplicate key or bad input stops the projection at its last committed
// position naming the event; skip_to_dead_letter parks a per-aggregate aggregate; emitted events
// commit with their batch; two runners of one version never apply an event twice, and a runner
// takes in the init, live flag, reset and delete done by another (in another process too); init,
// reset and remove touch one version only, and a reset that fails changes nothing.

#include <backend_suite.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <boost/hana/define_struct.hpp>

using namespace backend_test;
using Catch::Contains;

namespace {

/// Fails to close the ticket `fail_on`.
struct fragile : pj::projection<"fragile", 1, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    std::string fail_on;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open", 0}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
        if (e.ticket_id == fail_on) throw std::runtime_error("close failed");
    }
};

/// Two tables: the tickets, and a count per ticket type.
struct type_count {
    BOOST_HANA_DEFINE_STRUCT(type_count, (std::string, type), (int, count));
};
using type_count_table = pj::table<type_count, &type_count::type, "by_type">;
struct board : pj::projection<"board", 1, ticket_stream> {
    using tables = pj::tables<pj::table<ticket_row, &ticket_row::ticket_id>, type_count_table>;
    void on(const ticket_registered& e, auto& ctx) {
        ctx.table(pj::rows<ticket_row>).insert({e.ticket_id, e.type, "open", 0});
        auto& counts = ctx.table(pj::rows<type_count>);
        if (!counts.update(e.type, [](type_count& c) { ++c.count; })) counts.insert({e.type, 1});
    }
};

// A later build's ticket stream, with one more event.
struct ticket_archived {
    BOOST_HANA_DEFINE_STRUCT(ticket_archived, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.archived";
};
using newer_ticket_stream = pj::stream<"ticket", ticket_registered, ticket_closed, ticket_reopened, ticket_archived>;

using ticket_table = pj::table<ticket_row, &ticket_row::ticket_id>;

template <class Store>
std::size_t summary_count(Store& store) {
    typename Store::batch batch;
    store.read(0, 100000, batch);
    std::size_t n = 0;
    for (const auto& rec : batch) n += record_of(rec).stream() == "ticket_summary" ? 1 : 0;
    return n;
}

/// Positions: 1 t-1 registered, 2 t-1 closed, 3 t-2 registered, 4 t-3 registered with a
/// 4000-byte type, 5 t-2 archived (an event this build does not know), 6 t-1 reopened.
void bad_history(backend& fx, bool truncate_close) {
    auto store = fx.store();
    append_ticket(store, "t-1", "bug", 0, true);
    append_ticket(store, "t-2", "bug", 0, false);
    append_ticket(store, "t-3", std::string(4000, 'x'), 0, false);
    store.append(newer_ticket_stream{}, "t-2", 1, ticket_archived{"t-2"});
    store.append(ticket_stream{}, "t-1", 2, ticket_reopened{"t-1"});
    if (truncate_close) fx.exec("UPDATE projectionist_events SET payload = substr(payload, 1, 3) WHERE position = 2");
}

}  // namespace

TEMPLATE_TEST_CASE("the tickets read model equals the in-memory reference", "[backend][runner]", pj::global,
                   pj::per_aggregate) {
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    const auto expected = reference_rows<tickets<2>>();
    db models = db::primary;
    SECTION("the log and the read models in one database") {}
    SECTION("in two databases") {
        models = db::secondary;
    }
    auto store = fx.store();
    auto storage = fx.storage(models);
    history(store);
    pj::runner<tickets<2>, backend::storage_type, TestType> r(store, storage, run(pj::runner_options{17}));
    CHECK(r.catch_up() == store.head());
    CHECK(r.position() == store.head());
    CHECK(r.status().position == store.head());
    CHECK(r.status().state == pj::projection_state::caught_up);
    CHECK((r.status().bulk_flushes > 0) == run.bulk());  // the mode asked for is the mode it ran in
    CHECK(rows_of<tickets<2>::table>(storage, "tickets_v2") == expected);
    if constexpr (TestType::partitioned) {
        CHECK(r.aggregate_position(ticket_stream{}, "t-5") == store.version_of(ticket_stream{}, "t-5"));
        CHECK(r.status().aggregates_tracked == 60);
    }
    if (models == db::secondary) CHECK_FALSE(fx.storage(db::primary).has_table("tickets_v2"));
    if (backend::speaks_sql)
        CHECK(fx.scalar("SELECT position FROM projectionist_checkpoints WHERE projection = 'tickets_v2'", models) ==
              static_cast<std::int64_t>(store.head()));
    CHECK(log_consistent(fx));
    CHECK(fx.integrity_ok(db::primary));
    CHECK(fx.integrity_ok(models));
}

TEMPLATE_TEST_CASE("a restart resumes from the committed checkpoint", "[backend][runner]", pj::global,
                   pj::per_aggregate) {
    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>,
                        "a second storage object over one database, as after a restart");
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    {
        auto store = fx.store();
        auto storage = fx.storage();
        append_ticket(store, "t-1", "bug", 1, false);
        pj::runner<tickets<2>, backend::storage_type, TestType> r(store, storage, run());
        CHECK(r.catch_up() == 3);
    }
    auto store = fx.store();
    auto storage = fx.storage();
    append_ticket(store, "t-2", "bug", 0, true);
    pj::runner<tickets<2>, backend::storage_type, TestType> r(store, storage, run());
    CHECK(r.status().state == pj::projection_state::caught_up);
    CHECK(r.position() == 3);
    if constexpr (TestType::partitioned) CHECK(r.aggregate_position(ticket_stream{}, "t-1") == 3);
    CHECK(r.catch_up() == 2);
    if constexpr (TestType::partitioned) {
        CHECK(r.aggregate_position(ticket_stream{}, "t-1") == 3);
        CHECK(r.aggregate_position(ticket_stream{}, "t-2") == 2);
        // One row per aggregate.
        CHECK(fx.scalar("SELECT count(*) FROM " + std::string(backend::aggregate_positions) +
                        " WHERE projection = 'tickets_v2'") == 2);
    }
    const auto rows = rows_of<tickets<2>::table>(storage, "tickets_v2");
    CHECK(rows.at("t-1") == ticket_row{"t-1", "bug", "open", 1});
    CHECK(rows.at("t-2") == ticket_row{"t-2", "bug", "closed", 0});
    CHECK(r.catch_up() == 0);
}

namespace {
/// What a runner's batch hook throws to stop a backfill (as a deployment's stoppable one does).
struct stop_requested {};
}  // namespace

TEMPLATE_TEST_CASE("a backfill stopped between two batches keeps what it applied, and a restart goes on from there",
                   "[backend][runner]", pj::global, pj::per_aggregate) {
    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>,
                        "a second storage object over one database, as after a restart");
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    const std::uint64_t stopped_at = 2 * 16;
    {
        auto store = fx.store();
        auto storage = fx.storage();
        history(store);
        REQUIRE(store.head() > stopped_at + 16);
        int batches = 0;
        pj::runner_options options = run({.batch_size = 16});
        options.bulk_read_size = 16;
        options.bulk_memory_budget = pj::runner_options::unbounded;  // in bulk, nothing written before the stop
        // Asked to stop when the third batch (in bulk: the third read) is about to begin.
        options.before_batch_begin = [&] {
            if (++batches == 3) throw stop_requested{};
        };
        pj::runner<tickets<2>, backend::storage_type, TestType, pj::manual_kickoff> r(store, storage, options);
        r.init();
        CHECK_THROWS_AS(r.backfill(), stop_requested);
        CHECK(r.position() == stopped_at);
        CHECK(r.state() == pj::projection_state::backfilling);
        CHECK_FALSE(r.status().error);  // a stop, not a failure
    }
    // A new process finds the two batches committed (in bulk: written), and applies the rest once.
    auto store = fx.store();
    auto storage = fx.storage();
    pj::runner<tickets<2>, backend::storage_type, TestType, pj::manual_kickoff> r(store, storage, run());
    CHECK(r.position() == stopped_at);
    CHECK(storage.find_catalog("tickets_v2")->state == pj::projection_state::backfilling);
    CHECK_FALSE(rows_of<tickets<2>::table>(storage, "tickets_v2").empty());
    CHECK(r.backfill() == store.head() - stopped_at);
    CHECK(r.state() == pj::projection_state::caught_up);
    CHECK(rows_of<tickets<2>::table>(storage, "tickets_v2") == reference_rows<tickets<2>>());
    CHECK(fx.integrity_ok());
}

TEMPLATE_TEST_CASE("a failing handler stops the projection at its last committed position", "[backend][runner]",
                   pj::global, pj::per_aggregate) {
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    auto store = fx.store();
    auto storage = fx.storage();
    for (int i = 1; i <= 4; ++i) append_ticket(store, "a" + std::to_string(i), "bug", 0, false);
    append_ticket(store, "b1", "bug", 0, true);  // 5, 6: the close throws
    fragile p;
    p.fail_on = "b1";
    pj::runner<fragile, backend::storage_type, TestType> r(store, storage, p, run(pj::runner_options{4}));
    try {
        r.catch_up();
        FAIL("the failing handler went through");
    } catch (const pj::projection_error& e) {
        CHECK(e.context().projection == "fragile_v1");
        CHECK(e.context().position == 6u);
        CHECK(e.context().aggregate_id == "b1");
        CHECK(e.context().event_type == "ticket.closed");
        CHECK(e.reason() == "close failed");
        CHECK_THAT(e.what(), Contains("position 6") && Contains("aggregate 'b1'") && Contains("ticket.closed") &&
                                 Contains("close failed"));
    }
    CHECK(r.position() == 4);
    CHECK(r.status().error.has_value());
    CHECK_THROWS_AS(r.catch_up(), pj::state_error);  // stopped until resumed
    auto table = storage.find_table<fragile::table>("fragile_v1");
    REQUIRE(table.has_value());
    CHECK(table->size() == 4);
    CHECK_FALSE(table->contains("b1"));  // batch {5, 6} rolled back
    if (backend::speaks_sql)
        CHECK(fx.scalar("SELECT position FROM projectionist_checkpoints WHERE projection = 'fragile_v1'") == 4);

    // Resumed with the bug fixed, it retries from there; a new runner starts where it ended.
    r.resume();
    r.projection().fail_on.clear();
    CHECK(r.catch_up() == 2);
    CHECK(r.position() == 6);
    CHECK(table->find("b1")->status == "closed");
    pj::runner<fragile, backend::storage_type, TestType> fresh(store, storage, run());
    CHECK(fresh.position() == 6);
    CHECK(fresh.catch_up() == 0);
    CHECK(fx.integrity_ok());
}

TEMPLATE_TEST_CASE("a duplicate key in a handler is blamed on its own event", "[backend][runner]", pj::global,
                   pj::per_aggregate) {
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    auto store = fx.store();
    auto storage = fx.storage();
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});  // 1
    store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"});  // 2
    store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});             // 3
    store.append(ticket_stream{}, "t-1", 2, ticket_registered{"t-1", "dup"});  // 4: inserts t-1 again
    store.append(ticket_stream{}, "t-2", 1, ticket_closed{"t-2"});             // 5
    pj::runner<tickets<1>, backend::storage_type, TestType> r(store, storage, run(pj::runner_options{2}));
    try {
        r.catch_up();
        FAIL("a duplicate key was inserted");
    } catch (const pj::projection_error& e) {
        CHECK(e.context().position == 4u);
        CHECK(e.context().aggregate_id == "t-1");
        CHECK(e.context().event_type == "ticket.registered");
        CHECK_THAT(e.reason(), Contains("'t-1'") && Contains("already exists"));
    }
    CHECK(r.position() == 2);
    const auto rows = rows_of<tickets<1>::table>(storage, "tickets_v1");
    CHECK(rows.size() == 2);
    CHECK(rows.at("t-1").status == "open");  // the close (3) was in the failed batch
    if (backend::speaks_sql)
        CHECK(fx.scalar("SELECT position FROM projectionist_checkpoints WHERE projection = 'tickets_v1'") == 2);
}

// On PostgreSQL a batch's writes are buffered: in batch {4, 5} below "a" is not known, so its
// insert is refused only when the batch is sent, after its event's handler returned. Wherever
// the duplicate is found, it is blamed on the event that made the write.
TEMPLATE_TEST_CASE("a duplicate key of a row an earlier batch committed is blamed on its own event",
                   "[backend][runner]", pj::global, pj::per_aggregate) {
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    auto store = fx.store();
    auto storage = fx.storage();
    append_ticket(store, "a", "bug", 0, true);                              // 1, 2
    append_ticket(store, "b", "bug", 0, false);                             // 3
    store.append(ticket_stream{}, "c", 0, ticket_registered{"a", "task"});  // 4: inserts "a" again
    append_ticket(store, "d", "bug", 0, false);                             // 5
    // Batches of 3: {1, 2, 3} commits "a"; {4, 5} fails on 4.

    SECTION("stop_on_error stops at the event that made the write") {
        pj::runner<tickets<1>, backend::storage_type, TestType> r(store, storage, run(pj::runner_options{3}));
        try {
            r.catch_up();
            FAIL("the duplicate was applied");
        } catch (const pj::projection_error& e) {
            CHECK(e.context().position == 4);
            CHECK(e.context().aggregate_id == "c");
            CHECK_THAT(e.reason(), Contains("'a'") && Contains("already exists"));
        }
        CHECK(r.position() == 3);
        auto table = storage.find_table<tickets<1>::table>("tickets_v1");
        CHECK(table->size() == 2);  // d was in the failed batch: not committed
        CHECK(*table->find("a") == ticket_row{"a", "bug", "closed", 0});
    }
    SECTION("skip_to_dead_letter records that event and applies the rest of the batch") {
        pj::runner<tickets<1>, backend::storage_type, TestType, pj::skip_to_dead_letter> r(store, storage,
                                                                                           run(pj::runner_options{3}));
        CHECK(r.catch_up() == 4);
        CHECK(r.position() == 5);
        const auto letters = r.dead_letters();
        REQUIRE(letters.size() == 1);
        CHECK(letters[0].position == 4);
        CHECK(letters[0].aggregate_id == "c");
        CHECK_THAT(letters[0].reason, Contains("'a'") && Contains("already exists"));
        auto table = storage.find_table<tickets<1>::table>("tickets_v1");
        CHECK(table->size() == 3);
        CHECK(*table->find("a") == ticket_row{"a", "bug", "closed", 0});
    }
    CHECK(fx.integrity_ok());
}

TEST_CASE("bad input stops a stop_on_error projection at its last committed position, naming the event",
          "[backend][runner][bad_input]") {
    BACKEND_SKIP_UNLESS(backend::speaks_sql, "encoded payloads and SQL to corrupt them");
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    std::uint64_t position = 0;
    std::string aggregate, type, reason;
    auto place = fx.at();
    SECTION("a truncated payload") {
        bad_history(fx, true);
        position = 2, aggregate = "t-1", type = "ticket.closed", reason = "truncated payload";
    }
    SECTION("a payload over the size limit") {
        bad_history(fx, false);
        place.options.max_payload_bytes = 1024;
        position = 4, aggregate = "t-3", type = "ticket.registered", reason = "exceeds the limit of 1024 bytes";
    }
    SECTION("an event type this build does not know") {
        bad_history(fx, false);
        position = 5, aggregate = "t-2", type = "ticket.archived", reason = "unknown event type";
    }
    auto store = fx.make<backend::event_store_type>(place);
    auto storage = fx.storage();
    pj::runner<tickets<2>, backend::storage_type> r(store, storage, run(pj::runner_options{1}));
    try {
        r.catch_up();
        FAIL("bad input was applied");
    } catch (const pj::projection_error& e) {
        CHECK(e.context().position == position);
        CHECK(e.context().aggregate_id == aggregate);
        CHECK(e.context().event_type == type);
        CHECK(e.context().stream == "ticket");
        CHECK_THAT(e.reason(), Contains(reason));
        CHECK_THAT(e.what(), Contains("tickets_v2") && Contains("position " + std::to_string(position)) &&
                                 Contains("aggregate '" + aggregate + "'") && Contains(type) && Contains(reason));
    }
    CHECK(r.position() == position - 1);  // batches of one: everything before it is committed
    // t-1 (registered at 1, closed at 2) is closed only if its close was not the bad event.
    CHECK(rows_of<tickets<2>::table>(storage, "tickets_v2").at("t-1").status == (position == 2 ? "open" : "closed"));
    // A restart does not skip it.
    pj::runner<tickets<2>, backend::storage_type> again(store, storage, run(pj::runner_options{100}));
    CHECK(again.position() == position - 1);
    CHECK_THROWS_WITH(again.catch_up(), Contains("position " + std::to_string(position)) && Contains(reason));
    CHECK(again.position() == position - 1);
    CHECK(fx.integrity_ok());
}

TEMPLATE_TEST_CASE("a payload the runner cannot decode rolls back its batch, with either codec",
                   "[backend][runner][bad_input]", backend::event_store_type, backend::json_event_store_type) {
    BACKEND_SKIP_UNLESS(backend::speaks_sql, "encoded payloads and SQL to corrupt them");
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    {
        auto writer = fx.make<TestType>(fx.at());
        for (int i = 1; i <= 3; ++i) {
            const std::string id = "t-" + std::to_string(i);
            writer.append(ticket_stream{}, id, 0, ticket_registered{id, "bug"});
        }
        writer.append(ticket_stream{}, "t-4", 0, ticket_registered{"t-4", std::string(300, 'y')});  // 4
        writer.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});                             // 5
    }
    std::string reason_part;
    auto place = fx.at();
    SECTION("a payload over the size limit") {
        place.options.max_payload_bytes = 100;
        reason_part = "exceeds the limit of 100 bytes";
    }
    SECTION("a corrupt payload") {
        fx.exec(std::string("UPDATE projectionist_events SET ") +
                (text_codec<TestType>() ? backend::payload_column<TestType>() + " = '[1, 2]'"
                                        : std::string("payload = substr(payload, 1, 5)")) +
                " WHERE position = 4");
        reason_part = "payload";
    }
    auto store = fx.make<TestType>(place);
    auto storage = fx.storage();
    // Batches of 2: {1, 2} commits; {3, 4} inserts t-3, then fails on 4 and is rolled back.
    pj::runner<tickets<2>, backend::storage_type, TestType> r(store, storage, run(pj::runner_options{2}));
    try {
        r.catch_up();
        FAIL("the undecodable payload was applied");
    } catch (const pj::projection_error& e) {
        CHECK_THAT(e.what(), Contains("tickets_v2") && Contains("position 4") && Contains("aggregate 't-4'") &&
                                 Contains("ticket.registered") && Contains(reason_part));
        CHECK(e.context().position == 4u);
        CHECK(e.context().aggregate_id == "t-4");
        CHECK(e.context().event_type == "ticket.registered");
        CHECK_THAT(e.reason(), Contains(reason_part));
    }
    CHECK(r.position() == 2);
    CHECK(r.status().error.has_value());
    auto table = storage.find_table<tickets<2>::table>("tickets_v2");
    REQUIRE(table.has_value());
    CHECK(table->size() == 2);
    CHECK(table->contains("t-1"));
    CHECK(table->contains("t-2"));
    CHECK_FALSE(table->contains("t-3"));
    CHECK_FALSE(table->contains("t-4"));
    if (backend::speaks_sql)
        CHECK(fx.scalar("SELECT position FROM projectionist_checkpoints WHERE projection = 'tickets_v2'") == 2);
    CHECK(fx.integrity_ok());
}

TEMPLATE_TEST_CASE("skip_to_dead_letter records bad input and goes on; per aggregate it parks the aggregate",
                   "[backend][runner][dead_letter]", pj::global, pj::per_aggregate) {
    BACKEND_SKIP_UNLESS(backend::speaks_sql, "encoded payloads and SQL to corrupt them");
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    bad_history(fx, true);
    auto place = fx.at();
    place.options.max_payload_bytes = 1024;
    auto store = fx.make<backend::event_store_type>(place);
    auto storage = fx.storage();
    {
        pj::runner<tickets<2>, backend::storage_type, pj::skip_to_dead_letter, TestType> r(
            store, storage, run(pj::runner_options{100}));
        r.catch_up();
        CHECK(r.position() == 6);
        const auto letters = r.dead_letters();
        REQUIRE(letters.size() == (TestType::partitioned ? 4u : 3u));
        CHECK(letters[0].position == 2);
        CHECK(letters[0].aggregate_id == "t-1");
        CHECK(letters[0].event_type == "ticket.closed");
        CHECK_THAT(letters[0].reason, Contains("truncated payload"));
        CHECK_FALSE(letters[0].parked);
        CHECK(letters[1].position == 4);
        CHECK(letters[1].aggregate_id == "t-3");
        CHECK_THAT(letters[1].reason, Contains("exceeds the limit of 1024 bytes"));
        CHECK(letters[2].position == 5);
        CHECK(letters[2].event_type == "ticket.archived");
        CHECK_THAT(letters[2].reason, Contains("unknown event type"));
        const auto t1 = rows_of<tickets<2>::table>(storage, "tickets_v2").at("t-1");
        if constexpr (TestType::partitioned) {
            // t-1 is parked after its bad close, so its reopen (6) is parked too.
            CHECK(letters[3].position == 6);
            CHECK(letters[3].aggregate_id == "t-1");
            CHECK(letters[3].parked);
            CHECK(r.status().parked_aggregates == 3);
            CHECK(t1.reopened == 0);
        } else {
            CHECK(t1.reopened == 1);  // only the bad event itself is skipped
        }
        CHECK(t1.status == "open");
        const auto rows = rows_of<tickets<2>::table>(storage, "tickets_v2");
        CHECK(rows.at("t-2").status == "open");
        CHECK_FALSE(rows.contains("t-3"));
    }
    // The dead letters are in the database; a restart keeps them and applies nothing again.
    CHECK(fx.scalar("SELECT count(*) FROM projectionist_dead_letters WHERE projection = 'tickets_v2'") ==
          (TestType::partitioned ? 4 : 3));
    pj::runner<tickets<2>, backend::storage_type, pj::skip_to_dead_letter, TestType> again(store, storage, run());
    CHECK(again.position() == 6);
    CHECK(again.status().parked_aggregates == (TestType::partitioned ? 3u : 0u));  // loaded from the database
    CHECK(again.dead_letters().size() == (TestType::partitioned ? 4u : 3u));
    store.append(ticket_stream{}, "t-1", 3, ticket_closed{"t-1"});             // 7
    store.append(ticket_stream{}, "t-4", 0, ticket_registered{"t-4", "bug"});  // 8
    CHECK(again.catch_up() == (TestType::partitioned ? 1 : 2));                // per aggregate, t-1's close is parked
    const auto rows = rows_of<tickets<2>::table>(storage, "tickets_v2");
    CHECK(rows.at("t-4").status == "open");
    if constexpr (TestType::partitioned) {
        CHECK(rows.at("t-1").status == "open");  // still parked
        CHECK(again.dead_letters().size() == 5u);
    } else {
        CHECK(rows.at("t-1").status == "closed");
    }
    CHECK(fx.integrity_ok());
}

TEST_CASE("emitted events commit with their batch", "[backend][runner][emission]") {
    backend fx;
    db log = db::primary;
    SECTION("the log in the read models' database") {}
    SECTION("the log in another database") {
        log = db::secondary;
    }
    auto store = fx.store(log);
    auto storage = fx.storage();
    append_ticket(store, "t-1", "bug", 0, true);
    {
        status_notifier failing;
        failing.fail_on_close = true;
        pj::runner<status_notifier, backend::storage_type, pj::emit_always> r(store, storage, failing);
        CHECK_THROWS_AS(r.catch_up(), pj::projection_error);
        CHECK(summary_count(store) == 0);  // the registration's event went with its batch
        CHECK(store.head() == 2);
        CHECK(r.status().emitted == 0);
        CHECK_FALSE(storage.find_table<ticket_table>("notifier_v1")->contains("t-1"));
    }
    pj::runner<status_notifier, backend::storage_type, pj::emit_always> r(store, storage);
    CHECK(r.catch_up() == 2);
    CHECK(summary_count(store) == 2);
    CHECK(r.status().emitted == 2);
    CHECK(storage.find_table<ticket_table>("notifier_v1")->contains("t-1"));
    CHECK(store.version_of(ticket_summary_stream{}, "t-1") == 2);
    backend::event_store_type::batch batch;
    store.read(2, 10, batch);
    REQUIRE(batch.size() == 2);
    CHECK(store.event_of<ticket_status_changed>(record_of(batch[0])).status == "open");
    CHECK(store.event_of<ticket_status_changed>(record_of(batch[1])).status == "closed");
    CHECK(record_of(batch[1]).aggregate_id() == "t-1");
    // The runner reads its own emitted events as foreign ones and goes on.
    CHECK(r.catch_up() == 0);
    CHECK(r.position() == 4);
    CHECK(log_consistent(fx, log));
}

namespace {
/// Emits for every registration and close; its rows are written with upsert, so that two runners
/// racing on one version get as far as the checkpoint's compare-and-set.
struct announcer : pj::projection<"announcer", 1, ticket_stream, pj::emits_to<ticket_summary_stream>> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) {
        ctx.table().upsert({e.ticket_id, e.type, "open", 0});
        ctx.emit(ticket_status_changed{e.ticket_id, "open"});
    }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().upsert({e.ticket_id, "?", "closed", 0});
        ctx.emit(ticket_status_changed{e.ticket_id, "closed"});
    }
};
}  // namespace

namespace {
/// Two runners of `announcer`: a emits for 8 events; b, stale, catches up after it. Returns b's
/// status.
pj::runner_status race_to_emit(backend& fx, db log) {
    auto store = fx.store(log);
    auto storage_a = fx.storage();
    auto storage_b = fx.storage();
    pj::runner<announcer, backend::storage_type, pj::emit_always> a(store, storage_a, pj::runner_options{2});
    pj::runner<announcer, backend::storage_type, pj::emit_always> b(store, storage_b, pj::runner_options{2});
    a.catch_up();
    b.catch_up();  // both initialized, at position 0
    for (int i = 0; i < 4; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", 0, true);
    a.catch_up();  // applies and emits all 8
    CHECK(summary_count(store) == 8);
    b.catch_up();  // stale: its first batch is refused at commit, with the events it emitted
    CHECK(summary_count(store) == 8);
    CHECK(b.position() == store.head());
    CHECK(a.status().emitted == 8);
    CHECK(log_consistent(fx, log));
    return b.status();
}
}  // namespace

TEST_CASE("a batch refused by the checkpoint's compare-and-set emits nothing", "[backend][runner][emission]") {
    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>, "two storage objects over one database");
    backend fx;
    SECTION("the log in the read models' database") {
        race_to_emit(fx, db::primary);
    }
    SECTION("the log in another database") {
        race_to_emit(fx, db::secondary);
    }
}

// Emitted events appended inside the batch's transaction (the log in the read models' database;
// on PostgreSQL also another schema of the same database) are counted only if the batch commits.
TEST_CASE("the emitted count leaves out events whose batch was refused", "[backend][runner][emission]") {
    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>, "two storage objects over one database");
    backend fx;
    SECTION("the log in the read models' database") {
        CHECK(race_to_emit(fx, db::primary).emitted == 0);
    }
    SECTION("the log in another database") {
        CHECK(race_to_emit(fx, db::secondary).emitted == 0);
    }
}

TEST_CASE("a runner reads a JSON log as it reads a binary one", "[backend][runner][codec]") {
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    auto store = fx.json_store(db::secondary);
    auto storage = fx.storage();
    history(store);
    pj::runner<tickets<2>, backend::storage_type, backend::json_event_store_type, pj::per_aggregate> r(
        store, storage, run(pj::runner_options{13}));
    CHECK(r.catch_up() > 0);
    CHECK(r.position() == store.head());
    CHECK((r.status().bulk_flushes > 0) == run.bulk());
    CHECK(rows_of<tickets<2>::table>(storage, "tickets_v2") == reference_rows<tickets<2>>());
}

TEST_CASE("with emit_when_live, events pass only once the version is live", "[backend][runner][emission]") {
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    auto store = fx.store();
    auto storage = fx.storage();
    append_ticket(store, "t-1", "bug", 0, true);
    pj::runner<status_notifier, backend::storage_type, pj::emit_when_live> r(store, storage, run());
    r.catch_up();
    CHECK(summary_count(store) == 0);
    CHECK(r.status().dropped == 2);
    r.make_live();
    CHECK(storage.find_catalog("notifier_v1")->live);
    if (backend::speaks_sql)
        CHECK(fx.scalar("SELECT count(*) FROM projectionist_catalog WHERE name = 'notifier_v1' AND live") == 1);
    store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"});
    r.catch_up();
    CHECK(summary_count(store) == 1);
    CHECK(r.status().emitted == 1);
    // Another runner object of the version reads the live flag from the catalog.
    pj::runner<status_notifier, backend::storage_type, pj::emit_when_live> other(store, storage, run());
    CHECK(other.status().live);
}

namespace {
struct applied_row {
    BOOST_HANA_DEFINE_STRUCT(applied_row, (std::string, ticket_id), (int, applied));
};
/// Counts every application per ticket, inserting or updating: a double application shows as a
/// count above the ticket's number of events. With `emits_to`, it emits for every registration.
template <class... Options>
struct counting_projection : pj::projection<"counting", 1, ticket_stream, Options...> {
    using table = pj::table<applied_row, &applied_row::ticket_id>;
    template <class E>
    void on(const E& e, auto& ctx) {
        if (!ctx.table().update(e.ticket_id, [](applied_row& r) { ++r.applied; })) ctx.table().insert({e.ticket_id, 1});
        if constexpr (sizeof...(Options) > 0 && std::is_same_v<E, ticket_registered>)
            ctx.emit(ticket_status_changed{e.ticket_id, "open"});
    }
};
using counting = counting_projection<>;
}  // namespace

TEST_CASE("a stale runner's batch is refused at commit and nothing is applied twice", "[backend][runner][shared]") {
    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>, "two storage objects over one database");
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    auto store = fx.store();
    auto storage_a = fx.storage();
    auto storage_b = fx.storage();
    pj::runner<counting, backend::storage_type> a(store, storage_a, run(pj::runner_options{4}));
    pj::runner<counting, backend::storage_type> b(store, storage_b, run(pj::runner_options{4}));
    for (int round = 0; round < 6; ++round) {
        history(store, 3, 10 * round);
        (round % 2 ? a : b).catch_up();
        (round % 2 ? b : a).catch_up();
    }
    CHECK(a.position() == store.head());
    CHECK(b.position() == store.head());
    int applied = 0;
    storage_a.find_table<counting::table>("counting_v1")->for_each([&](const applied_row& r) { applied += r.applied; });
    CHECK(applied == static_cast<int>(store.head()));
    CHECK(fx.scalar("SELECT position FROM projectionist_checkpoints WHERE projection = 'counting_v1'") ==
          static_cast<std::int64_t>(store.head()));
}

// On SQLite a stale runner's batch runs its handlers before the compare-and-set at commit, so an
// insert of a row the other runner wrote fails first; the runner sees that the checkpoint moved
// meanwhile and treats the failure as the conflict it is: it reloads and goes on.
TEST_CASE("two runners of one version take turns without applying anything twice", "[backend][runner][shared]") {
    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>, "two storage objects over one database");
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    auto store = fx.store();
    auto storage_a = fx.storage();
    auto storage_b = fx.storage();
    pj::runner<tickets<2>, backend::storage_type> a(store, storage_a, run(pj::runner_options{3}));
    pj::runner<tickets<2>, backend::storage_type> b(store, storage_b, run(pj::runner_options{3}));
    history(store, 10);
    CHECK(a.catch_up() == store.head());
    // b loaded the checkpoint before a moved it: its first batch conflicts, it reloads, and it
    // finds nothing left to do.
    b.catch_up();
    CHECK(b.position() == store.head());
    history(store, 10, 10);
    b.catch_up();
    a.catch_up();
    CHECK(a.position() == store.head());
    CHECK(b.position() == store.head());
    CHECK(rows_of<tickets<2>::table>(storage_a, "tickets_v2") == reference_rows<tickets<2>>(20));
    CHECK(fx.scalar("SELECT position FROM projectionist_checkpoints WHERE projection = 'tickets_v2'") ==
          static_cast<std::int64_t>(store.head()));
}

TEST_CASE("init, reset and remove touch one version only", "[backend][runner][lifecycle]") {
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    auto store = fx.store();
    auto storage = fx.storage();
    append_ticket(store, "t-1", "bug", 1, true);
    append_ticket(store, "t-2", "task", 0, false);
    pj::runner<tickets<1>, backend::storage_type> v1(store, storage, run());
    pj::runner<tickets<2>, backend::storage_type, pj::per_aggregate, pj::manual_kickoff> v2(store, storage, run());
    pj::runner<board, backend::storage_type, pj::manual_kickoff> other(store, storage, run());
    CHECK(v1.catch_up() == 4);  // events applied: v1 has no handler for the reopening
    CHECK(v2.catch_up() == 0);  // dormant: nothing created
    CHECK(v2.status().dormant);
    CHECK_FALSE(storage.has_table("tickets_v2"));
    CHECK_FALSE(storage.find_catalog("tickets_v2").has_value());
    CHECK_THROWS_AS(v2.backfill(), pj::state_error);

    v2.init();
    CHECK(storage.has_table("tickets_v2"));
    const auto entry = storage.find_catalog("tickets_v2");
    REQUIRE(entry.has_value());
    CHECK(entry->state == pj::projection_state::initialized);
    CHECK(entry->partitioning == "per_aggregate");
    CHECK(entry->tables == std::vector<std::string>{"tickets_v2"});
    CHECK(v2.backfill() == 5);
    other.init();
    CHECK(other.backfill() == 2);  // registrations only
    CHECK(storage.find_catalog("board_v1")->tables == std::vector<std::string>{"board_v1", "board_v1_by_type"});
    CHECK(rows_of<type_count_table>(storage, "board_v1_by_type").size() == 2);

    // A table that merely looks like v1's, made by someone else: not v1's to drop.
    {
        auto s = storage.open("archive");
        s.create_table<ticket_table>("tickets_v1_archive").insert({"old", "bug", "closed", 0});
    }

    // reset empties v2's tables and checkpoint; v1 is untouched.
    v2.reset();
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->empty());
    CHECK(v2.position() == 0);
    CHECK(storage.find_catalog("tickets_v2")->state == pj::projection_state::initialized);
    CHECK(storage.find_catalog("tickets_v2")->generation > entry->generation);
    CHECK(storage.find_table<tickets<1>::table>("tickets_v1")->size() == 2);
    CHECK(v2.catch_up() == 5);
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->find("t-1")->reopened == 1);

    // remove drops exactly v1's tables and checkpoint; its catalog row stays as a tombstone.
    v1.remove();
    CHECK(v1.state() == pj::projection_state::deleted);
    CHECK_FALSE(storage.has_table("tickets_v1"));
    const auto tombstone = storage.find_catalog("tickets_v1");
    REQUIRE(tombstone.has_value());
    CHECK(tombstone->state == pj::projection_state::deleted);
    CHECK(tombstone->tables.empty());
    CHECK_FALSE(tombstone->live);
    CHECK(tombstone->deleted_by == "remove");
    CHECK(tombstone->deleted_at.size() == 20);  // 2026-12-04T16:20:05Z
    if (backend::speaks_sql)
        CHECK(fx.scalar("SELECT coalesce(max(position), 0) FROM projectionist_checkpoints WHERE projection = "
                        "'tickets_v1'") == 0);
    CHECK(storage.has_table("tickets_v1_archive"));
    CHECK(storage.has_table("tickets_v2"));
    CHECK(storage.find_catalog("tickets_v2").has_value());
    CHECK(v2.position() == 5);
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->size() == 2);

    other.remove();
    CHECK_FALSE(storage.has_table("board_v1"));
    CHECK_FALSE(storage.has_table("board_v1_by_type"));
    CHECK(storage.find_catalog("board_v1")->state == pj::projection_state::deleted);
    CHECK(storage.catalog().size() == 3);  // v2, and the tombstones of v1 and board_v1

    // A removed version does not come back by itself; init starts it over.
    append_ticket(store, "t-3", "bug", 0, false);
    CHECK(v1.catch_up() == 0);
    CHECK_FALSE(storage.has_table("tickets_v1"));
    v1.init();
    CHECK(v1.catch_up() == 5);
    CHECK(storage.find_table<tickets<1>::table>("tickets_v1")->size() == 3);
    CHECK(fx.integrity_ok());
}

TEST_CASE("init refuses a table of the version's name that something else filled, and changes nothing",
          "[backend][runner][lifecycle]") {
    backend fx;
    auto store = fx.store();
    auto storage = fx.storage();
    append_ticket(store, "t-1", "bug", 1, true);
    {
        auto s = storage.open("someone_else");
        s.create_table<ticket_table>("tickets_v2").insert({"old", "bug", "closed", 0});
    }
    pj::runner<tickets<2>, backend::storage_type, pj::per_aggregate, pj::manual_kickoff> v2(store, storage);
    CHECK_THROWS_WITH(v2.init(), Contains("cannot init tickets_v2: it is declared in the catalog and has no tables "
                                          "yet, but a table with its table names already holds rows: tickets_v2 (1 "
                                          "row)") &&
                                     Contains("rename or drop that table first"));
    CHECK(v2.state() == pj::projection_state::declared);
    CHECK_FALSE(storage.find_catalog("tickets_v2").has_value());
    const auto kept = rows_of<ticket_table>(storage, "tickets_v2");
    REQUIRE(kept.size() == 1);
    CHECK(kept.begin()->first == "old");

    // Once that table is out of the way, the read model is the log's alone.
    storage.open("someone_else").drop_table("tickets_v2");
    v2.init();
    v2.backfill();
    const auto rows = rows_of<ticket_table>(storage, "tickets_v2");
    REQUIRE(rows.size() == 1);
    CHECK(rows.begin()->first == "t-1");
    CHECK(fx.integrity_ok());
}

TEST_CASE("a reset that fails after clearing keeps the committed rows and checkpoint", "[backend][runner][lifecycle]") {
    BACKEND_SKIP_UNLESS(backend::speaks_sql, "a SQL trigger that refuses the reset's catalog update");
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    auto store = fx.store();
    auto storage = fx.storage();
    append_ticket(store, "t-1", "bug", 0, false);
    append_ticket(store, "t-2", "bug", 0, false);
    pj::runner<tickets<2>, backend::storage_type> r(store, storage, run());
    CHECK(r.catch_up() == 2);
    // The last step of reset, the catalog update, fails: after the rows and the checkpoint were
    // cleared inside the transaction.
    fx.refuse("refuse_reset", "UPDATE", "projectionist_catalog", "NEW.state = 'initialized'", "reset refused");
    CHECK_THROWS_WITH(r.reset(), Contains("reset refused"));
    CHECK(r.position() == 2);  // not 0: nothing will be applied twice
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->size() == 2);
    CHECK(fx.scalar("SELECT position FROM projectionist_checkpoints WHERE projection = 'tickets_v2'") == 2);
    append_ticket(store, "t-3", "bug", 0, false);
    CHECK(r.catch_up() == 1);
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->size() == 3);
    CHECK(fx.integrity_ok());
}

namespace {
/// tickets_v2 whose init hook seeds a row: init is idempotent, so a second init writes the seed
/// row again and the table refuses it.
struct seeded_tickets : tickets<2> {
    void init(auto& ctx) { ctx.table().insert({"seed", "task", "open", 0}); }
};
}  // namespace

TEST_CASE("a write refused in a lifecycle hook fails in the hook, as a table error, and changes nothing",
          "[backend][runner][lifecycle]") {
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    auto store = fx.store();
    auto storage = fx.storage();
    append_ticket(store, "t-1", "bug", 0, false);
    pj::runner<seeded_tickets, backend::storage_type> r(store, storage, run());
    CHECK(r.catch_up() == 1);  // the first init ran the hook
    // On PostgreSQL a batch's writes are buffered until commit; a lifecycle transaction's are not,
    // so the duplicate is the hook's table_error, not a refused flush at commit.
    CHECK_THROWS_AS(r.init(), pj::table_error);
    CHECK_THROWS_WITH(r.init(), Contains("already exists") && Contains("seed"));
    CHECK(r.position() == 1);
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->size() == 2);
    // The next batches buffer (and commit) as before.
    append_ticket(store, "t-2", "bug", 1, true);
    CHECK(r.catch_up() == 4);
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->find("t-2")->reopened == 1);
    CHECK(fx.integrity_ok());
}

// One projection version driven from two places at once, as when the command line backfills or
// resets tickets_v2 while the application's own runner for it is running: separate store and
// storage objects (and connections) on one database. Nothing may be applied twice, and each
// runner takes in what the other changed in the catalog (init, live flag, reset, delete).
namespace {
using emitting_counter = counting_projection<pj::emits_to<ticket_summary_stream>>;

using app_runner = pj::runner<emitting_counter, backend::storage_type, pj::manual_kickoff, pj::emit_when_live>;

/// The database, opened as a second process would: its own store and storage objects.
struct process_view {
    backend::event_store_type store;
    backend::storage_type storage;
    app_runner runner;
    process_view(backend& fx, const backfill_run& run, const backend::place& place, std::size_t batch = 7)
        : store(fx.make<backend::event_store_type>(place)),
          storage(fx.make<backend::storage_type>(place)),
          runner(store, storage, run(pj::runner_options{batch})) {}
    process_view(backend& fx, const backfill_run& run, std::size_t batch = 7) : process_view(fx, run, fx.at(), batch) {}
};

int total_applied(backend::storage_type& storage) {
    int n = 0;
    storage.find_table<emitting_counter::table>("counting_v1")->for_each([&](const applied_row& r) { n += r.applied; });
    return n;
}
}  // namespace

TEST_CASE("a runner takes in an init done elsewhere, and two of one version take turns applying nothing twice",
          "[backend][runner][shared]") {
    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>, "another process over one database");
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    process_view app(fx, run), cli(fx, run);
    for (int i = 0; i < 30; ++i) append_ticket(app.store, "t-" + std::to_string(i), "bug", i % 2, true);
    const auto head = app.store.head();

    cli.runner.init();                  // the command line inits and backfills part of it ...
    CHECK(app.runner.catch_up() > 0);   // ... the app's dormant runner notices init and catches up
    CHECK(cli.runner.backfill() == 0);  // the CLI's stale runner finds nothing left: it reloads, no reapply
    CHECK(app.runner.position() == head);
    CHECK(cli.runner.position() == head);
    CHECK(total_applied(app.storage) == static_cast<int>(head));

    // Interleaved: both catch up alternately while events keep arriving.
    for (int round = 0; round < 10; ++round) {
        append_ticket(app.store, "r-" + std::to_string(round), "bug", 1, true);
        (round % 2 ? app : cli).runner.catch_up();
        (round % 2 ? cli : app).runner.catch_up();
    }
    CHECK(total_applied(app.storage) == static_cast<int>(app.store.head()));
    CHECK(fx.integrity_ok());
}

TEST_CASE("a runner takes in the live flag, reset and delete done elsewhere", "[backend][runner][shared]") {
    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>, "another process over one database");
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    process_view app(fx, run), cli(fx, run);
    append_ticket(app.store, "t-1", "bug", 0, true);
    cli.runner.init();
    cli.runner.backfill();
    CHECK(app.runner.catch_up() == 0);  // nothing left for it
    CHECK(app.runner.status().state == pj::projection_state::caught_up);

    // live, from the command line: the app's runner lets its emitted events through.
    cli.runner.make_live();
    append_ticket(app.store, "t-2", "bug", 0, false);
    CHECK(app.runner.catch_up() == 1);
    CHECK(app.runner.status().live);
    CHECK(app.runner.status().emitted == 1);

    // reset, from the command line: the app's runner rebuilds from the start, nothing doubled.
    cli.runner.reset();
    CHECK(app.runner.catch_up() == 3);       // the log's 4th event is the summary it emitted: another stream
    CHECK(total_applied(app.storage) == 3);  // t-1 registered + closed, t-2 registered
    CHECK_FALSE(app.runner.status().live);   // reset clears the live flag

    // delete, from the command line: the app's runner stops; its tables are gone.
    cli.runner.remove();
    CHECK(app.runner.catch_up() == 0);
    CHECK(app.runner.status().state == pj::projection_state::deleted);
    CHECK_FALSE(app.storage.has_table("counting_v1"));
    CHECK(fx.integrity_ok());
}

TEST_CASE("a second process backfills while the first keeps appending and following", "[backend][runner][shared]") {
    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>, "another process over one database");
    BACKEND_BACKFILL_MODES(run);
    backend fx;
    const auto place = fx.at();
    {
        auto store = fx.store();
        for (int i = 0; i < 200; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", i % 3, true);
    }  // no connection of a store is open across fork()
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // The "command line": init and backfill the version, in its own process.
        int code = 0;
        try {
            process_view cli(fx, run, place, 16);
            cli.runner.init();
            for (int i = 0; i < 5; ++i) cli.runner.backfill();
        } catch (...) {
            code = 3;
        }
        _exit(code);  // no destructors: the parent's connections (inherited) stay untouched
    }
    {
        // The "application": keeps appending and following with its own runner meanwhile.
        process_view app(fx, run, place, 16);
        for (int i = 0; i < 40; ++i) {
            append_ticket(app.store, "late-" + std::to_string(i), "bug", 0, true);
            app.runner.catch_up();
        }
        int status = 0;
        REQUIRE(waitpid(child, &status, 0) == child);
        REQUIRE(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
        app.runner.catch_up();
        CHECK(app.runner.position() == app.store.head());
        CHECK(total_applied(app.storage) == static_cast<int>(app.store.head()));
    }
    CHECK(fx.integrity_ok());
}
