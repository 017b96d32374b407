// One projection version driven from two places at once, as when the command line backfills or
// resets tickets_v2 while the application's own runner for it is running: separate store and
// storage objects (and connections) on one schema. The checkpoint's compare-and-set makes the
// second runner's batch fail with checkpoint_conflict and write nothing: nothing is applied twice,
// and each runner takes in what the other changed in the catalog (init, live flag, reset, delete).

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>
#include <string>
#include <type_traits>

#include <postgres_test_support.hpp>
#include <projectionist/postgres.hpp>
#include <tickets_domain.hpp>

namespace pj = projectionist;
using namespace tickets_domain;
using postgres_test::pg_url;
using postgres_test::scoped_schema;

namespace {

struct applied_row {
    BOOST_HANA_DEFINE_STRUCT(applied_row, (std::string, ticket_id), (int, applied));
};

/// Counts every application per ticket: a double application shows as a count above the
/// ticket's number of events.
struct counting : pj::projection<"counting", 1, ticket_stream, pj::emits_to<ticket_summary_stream>> {
    using table = pj::table<applied_row, &applied_row::ticket_id>;
    template <class E>
    void on(const E& e, auto& ctx) {
        if (!ctx.table().update(e.ticket_id, [](applied_row& r) { ++r.applied; })) ctx.table().insert({e.ticket_id, 1});
        if constexpr (std::is_same_v<E, ticket_registered>) ctx.emit(ticket_status_changed{e.ticket_id, "open"});
    }
};

using app_runner = pj::runner<counting, pj::postgres_storage, pj::manual_kickoff, pj::emit_when_live>;

/// The same schema, opened as a second process would: its own store and storage objects.
struct process_view {
    pj::postgres_event_store store;
    pj::postgres_storage storage;
    app_runner runner;
    explicit process_view(const scoped_schema& schema, std::size_t batch = 7)
        : store(pg_url(), schema.options()),
          storage(pg_url(), schema.options()),
          runner(store, storage, pj::runner_options{batch}) {}
};

int total_applied(pj::postgres_storage& storage) {
    int n = 0;
    storage.find_table<counting::table>("counting_v1")->for_each([&](const applied_row& r) { n += r.applied; });
    return n;
}

}  // namespace

TEST_CASE("two runners of one version on PostgreSQL take turns without applying anything twice", "[postgres][shared]") {
    scoped_schema schema;
    process_view app(schema), cli(schema);
    for (int i = 0; i < 30; ++i) append_ticket(app.store, "t-" + std::to_string(i), "bug", i % 2, true);
    const auto head = app.store.head();

    cli.runner.init();
    CHECK(app.runner.catch_up() > 0);   // the app's dormant runner notices init and catches up
    CHECK(cli.runner.backfill() == 0);  // the CLI's stale runner: its batch conflicts, it reloads, no reapply
    CHECK(app.runner.position() == head);
    CHECK(cli.runner.position() == head);
    CHECK(total_applied(app.storage) == static_cast<int>(head));

    for (int round = 0; round < 10; ++round) {
        append_ticket(app.store, "r-" + std::to_string(round), "bug", 1, true);
        (round % 2 ? app : cli).runner.catch_up();
        (round % 2 ? cli : app).runner.catch_up();
    }
    CHECK(total_applied(app.storage) == static_cast<int>(app.store.head()));
}

TEST_CASE("a stale runner's batch fails with checkpoint_conflict and writes nothing", "[postgres][shared]") {
    scoped_schema schema;
    process_view app(schema), cli(schema);
    append_ticket(app.store, "t-1", "bug", 0, true);
    cli.runner.init();
    app.runner.refresh();
    CHECK(cli.runner.catch_up() == 2);
    // The app's session still holds position 0: its commit is refused by the compare-and-set.
    auto& session = app.runner.session();
    CHECK(session.load_checkpoint().position == 0);
    session.begin();
    auto* table = session.open_table<counting::table>("counting_v1");
    REQUIRE(table != nullptr);
    table->upsert({"t-1", 100});
    table->insert({"t-9", 1});
    pj::checkpoint moved;
    moved.position = 2;
    CHECK_THROWS_AS(session.commit(moved, {}), pj::checkpoint_conflict);
    session.rollback();
    CHECK(total_applied(app.storage) == 2);
    CHECK_FALSE(app.storage.find_table<counting::table>("counting_v1")->contains("t-9"));
    CHECK(session.reload_checkpoint().position == 2);
}

TEST_CASE("a runner on PostgreSQL takes in the live flag, reset and delete done elsewhere", "[postgres][shared]") {
    scoped_schema schema;
    process_view app(schema), cli(schema);
    append_ticket(app.store, "t-1", "bug", 0, true);
    cli.runner.init();
    cli.runner.backfill();
    CHECK(app.runner.catch_up() == 0);
    CHECK(app.runner.status().state == pj::projection_state::caught_up);

    cli.runner.make_live();
    append_ticket(app.store, "t-2", "bug", 0, false);
    CHECK(app.runner.catch_up() == 1);
    CHECK(app.runner.status().live);
    CHECK(app.runner.status().emitted == 1);

    cli.runner.reset();
    CHECK(app.runner.catch_up() == 3);
    CHECK(total_applied(app.storage) == 3);
    CHECK_FALSE(app.runner.status().live);

    cli.runner.remove();
    CHECK(app.runner.catch_up() == 0);
    CHECK(app.runner.status().state == pj::projection_state::deleted);
    CHECK_FALSE(app.storage.has_table("counting_v1"));
}

TEST_CASE("a second process on PostgreSQL backfills while the first keeps appending and following",
          "[postgres][shared]") {
    scoped_schema schema;
    {
        pj::postgres_event_store store(pg_url(), schema.options());
        for (int i = 0; i < 200; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", i % 3, true);
    }
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        int code = 0;
        try {
            process_view cli(schema, 16);
            cli.runner.init();
            for (int i = 0; i < 5; ++i) cli.runner.backfill();
        } catch (...) {
            code = 3;
        }
        _exit(code);
    }
    {
        process_view app(schema, 16);
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
}
