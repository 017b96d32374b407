// The runner on SQLite: the tickets scenario gives the same read model as in memory, in both
// partitioning modes, with the log and the read models in one file or in two; a failing batch
// leaves nothing behind; a restart resumes from the committed checkpoint.

#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>

#include <projectionist/sqlite.hpp>
#include <sqlite_test_support.hpp>
#include <tickets_domain.hpp>

namespace pj = projectionist;
using namespace tickets_domain;
using sqlite_test::temp_dir;

namespace {

template <class Table>
std::map<std::string, ticket_row> sqlite_rows(pj::sqlite_storage& storage, std::string_view name) {
    std::map<std::string, ticket_row> out;
    auto table = storage.find_table<Table>(name);
    REQUIRE(table.has_value());
    table->for_each([&](const ticket_row& r) { out.emplace(r.ticket_id, r); });
    return out;
}

template <class Table>
std::map<std::string, ticket_row> memory_rows(pj::memory_storage& storage, std::string_view name) {
    std::map<std::string, ticket_row> out;
    storage.find_table<Table>(name)->for_each([&](const ticket_row& r) { out.emplace(r.ticket_id, r); });
    return out;
}

/// The same history in a SQLite log and an in-memory log.
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

}  // namespace

TEMPLATE_TEST_CASE("on SQLite the tickets read model equals the in-memory reference", "[sqlite][runner]", pj::global,
                   pj::per_aggregate) {
    temp_dir dir;
    pj::memory_event_store memory_store;
    pj::memory_storage memory_storage;
    history(memory_store);
    pj::runner<tickets<2>> reference(memory_store, memory_storage);
    reference.catch_up();
    const auto expected = memory_rows<tickets<2>::table>(memory_storage, "tickets_v2");

    SECTION("one file") {
        pj::sqlite_event_store store(dir.file("app.db"));
        pj::sqlite_storage storage(dir.file("app.db"));
        history(store);
        pj::runner<tickets<2>, pj::sqlite_storage, TestType> r(store, storage, pj::runner_options{17});
        CHECK(r.catch_up() == memory_store.head());
        CHECK(sqlite_rows<tickets<2>::table>(storage, "tickets_v2") == expected);
        CHECK(sqlite_test::integrity_ok(dir.file("app.db")));
    }
    SECTION("two files") {
        pj::sqlite_event_store store(dir.file("log.db"));
        pj::sqlite_storage storage(dir.file("models.db"));
        history(store);
        pj::runner<tickets<2>, pj::sqlite_storage, TestType> r(store, storage, pj::runner_options{17});
        CHECK(r.catch_up() == memory_store.head());
        CHECK(sqlite_rows<tickets<2>::table>(storage, "tickets_v2") == expected);
        CHECK_FALSE(pj::sqlite_storage(dir.file("log.db")).has_table("tickets_v2"));
        CHECK(sqlite_test::integrity_ok(dir.file("log.db")));
        CHECK(sqlite_test::integrity_ok(dir.file("models.db")));
    }
}

TEMPLATE_TEST_CASE("a restart on SQLite resumes from the committed checkpoint", "[sqlite][runner]", pj::global,
                   pj::per_aggregate) {
    temp_dir dir;
    {
        pj::sqlite_event_store store(dir.file("app.db"));
        pj::sqlite_storage storage(dir.file("app.db"));
        append_ticket(store, "t-1", "bug", 1, false);
        pj::runner<tickets<2>, pj::sqlite_storage, TestType> r(store, storage);
        CHECK(r.catch_up() == 3);
    }
    pj::sqlite_event_store store(dir.file("app.db"));
    pj::sqlite_storage storage(dir.file("app.db"));
    append_ticket(store, "t-2", "bug", 0, true);
    pj::runner<tickets<2>, pj::sqlite_storage, TestType> r(store, storage);
    CHECK(r.status().state == pj::projection_state::caught_up);
    CHECK(r.position() == 3);
    CHECK(r.catch_up() == 2);
    if constexpr (TestType::partitioned) {
        CHECK(r.aggregate_position(ticket_stream{}, "t-1") == 3);
        CHECK(r.aggregate_position(ticket_stream{}, "t-2") == 2);
    }
    const auto rows = sqlite_rows<tickets<2>::table>(storage, "tickets_v2");
    CHECK(rows.at("t-1") == ticket_row{"t-1", "bug", "open", 1});
    CHECK(rows.at("t-2") == ticket_row{"t-2", "bug", "closed", 0});
}

TEMPLATE_TEST_CASE("a failing handler on SQLite rolls back the batch's rows and checkpoint", "[sqlite][runner]",
                   pj::global, pj::per_aggregate) {
    temp_dir dir;
    pj::sqlite_event_store store(dir.file("app.db"));
    pj::sqlite_storage storage(dir.file("app.db"));
    for (int i = 1; i <= 4; ++i) append_ticket(store, "a" + std::to_string(i), "bug", 0, false);
    append_ticket(store, "b1", "bug", 0, true);  // 5, 6: the close throws
    fragile p;
    p.fail_on = "b1";
    pj::runner<fragile, pj::sqlite_storage, TestType> r(store, storage, p, pj::runner_options{4});
    CHECK_THROWS_WITH(r.catch_up(), Catch::Contains("position 6") && Catch::Contains("aggregate 'b1'") &&
                                        Catch::Contains("ticket.closed") && Catch::Contains("close failed"));
    CHECK(r.position() == 4);
    auto table = storage.find_table<fragile::table>("fragile_v1");
    CHECK(table->size() == 4);
    CHECK_FALSE(table->contains("b1"));
    // The committed checkpoint in the file agrees: a new runner starts at 4.
    pj::runner<fragile, pj::sqlite_storage, TestType> fresh(store, storage);
    CHECK(fresh.position() == 4);
    CHECK(fresh.catch_up() == 2);
    CHECK(table->find("b1")->status == "closed");
    CHECK(sqlite_test::integrity_ok(dir.file("app.db")));
}

TEST_CASE("reset and remove on SQLite touch one version only", "[sqlite][runner]") {
    temp_dir dir;
    pj::sqlite_event_store store(dir.file("app.db"));
    pj::sqlite_storage storage(dir.file("app.db"));
    append_ticket(store, "t-1", "bug", 1, true);
    pj::runner<tickets<1>, pj::sqlite_storage> v1(store, storage);
    pj::runner<tickets<2>, pj::sqlite_storage, pj::per_aggregate, pj::manual_kickoff> v2(store, storage);
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
    CHECK(sqlite_test::integrity_ok(dir.file("app.db")));
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

TEST_CASE("in one SQLite file, emitted events commit in the batch's transaction", "[sqlite][runner][emission]") {
    temp_dir dir;
    pj::sqlite_event_store store(dir.file("app.db"));
    pj::sqlite_storage storage(dir.file("app.db"));
    append_ticket(store, "t-1", "bug", 0, true);
    SECTION("a failing batch emits nothing") {
        notifier p;
        p.fail_on_close = true;
        pj::runner<notifier, pj::sqlite_storage, pj::emit_always> r(store, storage, p);
        CHECK_THROWS_AS(r.catch_up(), pj::projection_error);
        CHECK(summary_count(store) == 0);
        CHECK(store.head() == 2);
        CHECK(r.status().emitted == 0);
    }
    SECTION("a committed batch's emitted events are in the log") {
        // Emission must go through the runner's own transaction, never through a separate commit
        // on the store's connection.
        int store_commits = 0;
        sqlite3_commit_hook(
            store.connection().get(), [](void* n) { return ++*static_cast<int*>(n), 0; }, &store_commits);
        pj::runner<notifier, pj::sqlite_storage, pj::emit_always> r(store, storage);
        r.catch_up();
        sqlite3_commit_hook(store.connection().get(), nullptr, nullptr);
        CHECK(store_commits == 0);
        CHECK(summary_count(store) == 2);
        CHECK(r.status().emitted == 2);
        CHECK(store.version_of(ticket_summary_stream{}, "t-1") == 2);
    }
    CHECK(sqlite_test::integrity_ok(dir.file("app.db")));
}

TEST_CASE("with the log in another file, emitted events are appended after the commit", "[sqlite][runner][emission]") {
    temp_dir dir;
    pj::sqlite_event_store store(dir.file("log.db"));
    pj::sqlite_storage storage(dir.file("models.db"));
    append_ticket(store, "t-1", "bug", 0, true);
    pj::runner<notifier, pj::sqlite_storage, pj::emit_when_live> r(store, storage);
    r.catch_up();
    CHECK(summary_count(store) == 0);  // not live: dropped
    CHECK(r.status().dropped == 2);
    r.make_live();
    store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"});
    int store_commits = 0;
    sqlite3_commit_hook(
        store.connection().get(), [](void* n) { return ++*static_cast<int*>(n), 0; }, &store_commits);
    r.catch_up();
    sqlite3_commit_hook(store.connection().get(), nullptr, nullptr);
    CHECK(store_commits == 1);  // the emitted event, through the store, after the batch
    CHECK(summary_count(store) == 1);
}

namespace {
struct ticket_archived {
    BOOST_HANA_DEFINE_STRUCT(ticket_archived, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.archived";
};
using newer_ticket_stream = pj::stream<"ticket", ticket_registered, ticket_closed, ticket_reopened, ticket_archived>;
}  // namespace

TEST_CASE("an unknown event type in a SQLite log stops the projection with its position", "[sqlite][runner]") {
    temp_dir dir;
    {
        // A newer writer logs an event this build's stream declaration does not have.
        pj::sqlite_event_store store(dir.file("app.db"));
        append_ticket(store, "t-1", "bug", 0, false);
        store.append(newer_ticket_stream{}, "t-1", 1, ticket_archived{"t-1"});
    }
    pj::sqlite_event_store store(dir.file("app.db"));
    pj::sqlite_storage storage(dir.file("app.db"));
    pj::runner<tickets<2>, pj::sqlite_storage> r(store, storage);
    CHECK_THROWS_WITH(r.catch_up(), Catch::Contains("unknown event type") && Catch::Contains("ticket.archived") &&
                                        Catch::Contains("position 2"));
    CHECK(r.position() == 0);
}

TEST_CASE("a reset that fails after clearing keeps the committed rows and checkpoint", "[sqlite][runner]") {
    temp_dir dir;
    pj::sqlite_event_store store(dir.file("app.db"));
    pj::sqlite_storage storage(dir.file("app.db"));
    append_ticket(store, "t-1", "bug", 0, false);
    append_ticket(store, "t-2", "bug", 0, false);
    pj::runner<tickets<2>, pj::sqlite_storage> r(store, storage);
    CHECK(r.catch_up() == 2);
    // The last step of reset, the catalog update, fails: after the rows and the checkpoint were
    // cleared inside the transaction.
    storage.connection().exec(
        "CREATE TRIGGER refuse_reset BEFORE UPDATE ON projectionist_catalog WHEN NEW.state = 'initialized' "
        "BEGIN SELECT RAISE(ABORT, 'reset refused'); END");
    CHECK_THROWS_WITH(r.reset(), Catch::Contains("reset refused"));
    CHECK(r.position() == 2);  // not 0: nothing will be applied twice
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->size() == 2);
    append_ticket(store, "t-3", "bug", 0, false);
    CHECK(r.catch_up() == 1);
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->size() == 3);
    CHECK(sqlite_test::integrity_ok(dir.file("app.db")));
}
