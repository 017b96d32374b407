// One projection version driven from two places at once, as when the command line backfills or
// resets tickets_v2 while the application's own runner for it is running: separate storage
// objects and connections on one SQLite file. Nothing may be applied twice, and each runner
// takes in what the other changed in the catalog (init, live flag, reset, delete).

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>
#include <string>

#include <projectionist/sqlite.hpp>
#include <sqlite_test_support.hpp>
#include <tickets_domain.hpp>

namespace pj = projectionist;
using namespace tickets_domain;
using sqlite_test::temp_dir;

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

using app_runner = pj::runner<counting, pj::sqlite_storage, pj::manual_kickoff, pj::emit_when_live>;

/// The same file, opened as a second process would: its own store and storage objects.
struct process_view {
    pj::sqlite_event_store store;
    pj::sqlite_storage storage;
    app_runner runner;
    explicit process_view(const std::string& file, std::size_t batch = 7)
        : store(file), storage(file), runner(store, storage, pj::runner_options{batch}) {}
};

int total_applied(pj::sqlite_storage& storage) {
    int n = 0;
    storage.find_table<counting::table>("counting_v1")->for_each([&](const applied_row& r) { n += r.applied; });
    return n;
}

}  // namespace

TEST_CASE("two runners of one version take turns without applying anything twice", "[sqlite][shared]") {
    temp_dir dir;
    const auto file = dir.file("app.db");
    process_view app(file), cli(file);
    for (int i = 0; i < 30; ++i) append_ticket(app.store, "t-" + std::to_string(i), "bug", i % 2, true);
    const auto head = app.store.head();

    cli.runner.init();                  // the command line inits and backfills part of it ...
    CHECK(app.runner.catch_up() > 0);   // ... the app's dormant runner notices init and catches up
    CHECK(cli.runner.backfill() == 0);  // the CLI's runner finds nothing left: it reloads, no reapply
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
    CHECK(sqlite_test::integrity_ok(file));
}

TEST_CASE("a runner takes in the live flag, reset and delete done elsewhere", "[sqlite][shared]") {
    temp_dir dir;
    const auto file = dir.file("app.db");
    process_view app(file), cli(file);
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
    CHECK(sqlite_test::integrity_ok(file));
}

TEST_CASE("a second process backfills while the first keeps appending and following", "[sqlite][shared]") {
    temp_dir dir;
    const auto file = dir.file("app.db");
    {
        pj::sqlite_event_store store(file);
        for (int i = 0; i < 200; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", i % 3, true);
    }
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // The "command line": init and backfill the version, in its own process.
        int code = 0;
        try {
            process_view cli(file, 16);
            cli.runner.init();
            for (int i = 0; i < 5; ++i) cli.runner.backfill();
        } catch (...) {
            code = 3;
        }
        _exit(code);
    }
    {
        // The "application": keeps appending and following with its own runner meanwhile.
        process_view app(file, 16);
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
    CHECK(sqlite_test::integrity_ok(file));
}
