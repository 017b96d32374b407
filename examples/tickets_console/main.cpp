// The command line embedded in an application: the tickets projection's blue-green deployment
// driven command by command, as an operator types them.
//
//     tickets_console DATABASE <command> [arguments]   one command on a SQLite file, e.g.
//                                                      tickets_console app.db status
//     tickets_console DATABASE record <count>          creates the file if need be: a demo history
//     tickets_console                                  the whole walk on a fresh file, checked:
//                                                      status, init, backfill, verify, switch by
//                                                      share then fully, rollback, live, delete
//
// The application registers its deployment and router once; the commands keep the rules of the
// deployment (the blue-green controller's): a switch to a version still replaying is refused, so
// is deleting a version that still gets queries. Exit status: 0 success, 1 refused or failed (a
// verify that fails), 2 a usage error.

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>

#include <projectionist/cli.hpp>
#include <projectionist/deploy.hpp>
#include <projectionist/sqlite.hpp>

#include "../common/tickets_events.hpp"

namespace pj = projectionist;

// ---- the projection's two versions (v2 fixes reopened tickets, adds a column) ------------------

struct ticket_v1 {
    BOOST_HANA_DEFINE_STRUCT(ticket_v1, (std::string, ticket_id), (std::string, type), (std::string, status));
};
struct ticket_v2 {
    BOOST_HANA_DEFINE_STRUCT(ticket_v2, (std::string, ticket_id), (std::string, type), (std::string, status),
                             (int, reopened));
};

template <unsigned V>
struct tickets;

template <>
struct tickets<1> : pj::projection<"tickets", 1, ticket_stream> {
    using table = pj::table<ticket_v1, &ticket_v1::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open"}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_v1& t) { t.status = "closed"; });
    }
};

template <>
struct tickets<2> : pj::projection<"tickets", 2, ticket_stream, pj::exhaustive> {
    using table = pj::table<ticket_v2, &ticket_v2::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open", 0}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_v2& t) { t.status = "closed"; });
    }
    void on(const ticket_reopened& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_v2& t) {
            t.status = "open";
            ++t.reopened;
        });
    }
};

using tickets_deployment = pj::deployment<pj::runner<tickets<1>, pj::sqlite_storage>,
                                          pj::runner<tickets<2>, pj::sqlite_storage, pj::manual_kickoff>>;
using tickets_router = pj::router<tickets<1>, tickets<2>>;

/// What the application holds: the store, the storage, the deployment, the router and the
/// command line over them, all on one SQLite file.
struct application {
    application(const std::string& path, pj::command_line_options options)
        : store(path), storage(path), deployment(store, storage), router(storage), cli(std::move(options)) {
        cli.add(deployment, router, {.options = {.expected_changes = {"reopened"}}});  // v2's new column
        cli.add_command({.name = "record",
                         .synopsis = "<count>",
                         .min_args = 1,
                         .max_args = 1,
                         .summary = "append the lives of <count> more tickets to the log (a demo history)",
                         .run = [this](pj::command_call& call) { return record(call); }});
    }
    int record(pj::command_call& call);
    pj::sqlite_event_store store;
    pj::sqlite_storage storage;
    tickets_deployment deployment;
    tickets_router router;
    pj::command_line cli;
};

namespace {

int failures = 0;

/// Runs one command as if typed, prints what it printed, and checks its exit status.
void type(application& app, std::vector<std::string> args, int expected) {
    fmt::print("\n$ tickets_console {}\n", fmt::join(args, " "));
    std::fflush(stdout);
    const int status = app.cli.run(args, std::cout, std::cout);
    std::cout << std::flush;
    const bool ok = status == expected;
    fmt::print("  [{}] exit status {}{}\n", ok ? "ok" : "FAILED", status,
               ok ? std::string() : fmt::format(", expected {}", expected));
    if (!ok) ++failures;
}

/// One ticket's life: registered, closed; every fifth is reopened afterwards (v1's bug).
void ticket_life(pj::sqlite_event_store& store, std::uint64_t i) {
    const std::string id = fmt::format("T-{:04}", i);
    auto v = store.append(ticket_stream{}, id, 0, ticket_registered{id, i % 3 ? "bug" : "question"}).version;
    if (i % 4 != 0) v = store.append(ticket_stream{}, id, v, ticket_closed{id}).version;
    if (i % 5 == 1 && i % 4 != 0) store.append(ticket_stream{}, id, v, ticket_reopened{id});
}

}  // namespace

/// `record <count>`: the next <count> tickets' lives, numbered after those in the log.
int application::record(pj::command_call& call) {
    constexpr std::uint64_t most = 1'000'000;
    const std::string& text = call.args()[0];
    std::uint64_t count = 0;
    const auto [end, failed] = std::from_chars(text.data(), text.data() + text.size(), count);
    if (failed != std::errc() || end != text.data() + text.size() || count == 0 || count > most)
        call.usage_error(fmt::format("'{}' is not a count from 1 to {}", text, most));
    const std::uint64_t first = store.head();  // a ticket has at least one event: new numbers
    for (std::uint64_t i = first; i < first + count; ++i) ticket_life(store, i);
    call.out() << fmt::format("recorded {} tickets; the log's head is {}\n", count, store.head());
    return 0;
}

namespace {

int walk() {
    const std::string path =
        (std::filesystem::temp_directory_path() / fmt::format("projectionist-console-{}.db", ::getpid())).string();
    pj::command_line_options options;
    options.program_name = "tickets_console";
    options.terminal = false;  // plain progress lines: the output is a log
    {
        application app(path, options);
        for (std::uint64_t i = 0; i < 400; ++i) ticket_life(app.store, i);
        app.deployment.catch_up();  // v1 is in production...
        app.deployment.serve("tickets_v1");

        type(app, {"status"}, 0);
        type(app, {"switch", "tickets", "--to", "tickets_v2"}, 1);  // refused: v2 is not even initialized
        type(app, {"init", "tickets_v2"}, 0);
        type(app, {"backfill", "tickets_v2", "--progress", "none", "--memory-budget", "64MiB"}, 0);
        type(app, {"verify", "tickets_v1", "tickets_v2"}, 1);  // FAIL: the status column changed
        type(app, {"verify", "tickets_v1", "tickets_v2", "--expect-change", "status", "--key", "T-0001"}, 0);
        type(app, {"switch", "tickets", "--to", "tickets_v2", "--percent", "10"}, 0);
        type(app, {"delete", "tickets_v2"}, 1);  // refused: it gets 10% of the queries
        type(app, {"switch", "tickets", "--to", "tickets_v2"}, 0);
        type(app, {"rollback", "tickets"}, 0);  // v1 serves again: it kept following the log
        type(app, {"switch", "tickets", "--to", "tickets_v2"}, 0);
        type(app, {"live", "tickets_v2"}, 0);
        type(app, {"delete", "tickets_v1"}, 0);
        type(app, {"switch", "tickets", "--percent", "10"}, 2);  // a usage error: --to is missing
        type(app, {"status"}, 0);
        if (app.storage.has_table("tickets_v1") || !app.storage.has_table("tickets_v2")) {
            fmt::print("FAILED: only tickets_v2's table should be left\n");
            ++failures;
        }
    }
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
    fmt::print("\n{}\n", failures == 0 ? "tickets_console: the walk is done" : "tickets_console: FAILED");
    return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

constexpr std::string_view usage_text =
    "usage: tickets_console DATABASE <command> [arguments]   one command on a SQLite file\n"
    "       tickets_console DATABASE record <count>          creates the file if need be: a demo history\n"
    "       tickets_console DATABASE help                    the commands\n"
    "       tickets_console                                  the whole walk on a fresh file, checked\n";

int usage(std::string_view problem) {
    fmt::print(stderr, "tickets_console: {}\n{}", problem, usage_text);
    return 2;
}

/// Whether `word` is one of the command line's commands (a command line with nothing registered
/// knows the built-in ones).
bool is_command(std::string_view word) {
    return word == "record" || !pj::command_line().command_usage(word).empty();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 1) return walk();
    const std::string path = argv[1];
    if (path == "help" || path == "--help" || path == "-h") return fmt::print("{}", usage_text), 0;
    if (path.empty()) return usage("the database path is empty");
    if (path.starts_with("-")) return usage(fmt::format("unknown option '{}'", path));
    if (is_command(path))
        return usage(fmt::format("'{}' is a command: the database path comes first, as in tickets_console app.db {}",
                                 path, fmt::join(argv + 1, argv + argc, " ")));
    if (argc == 2) return usage(fmt::format("a command comes after the database '{}'", path));
    const std::vector<std::string> args(argv + 2, argv + argc);
    std::string database = path;
    try {
        const bool existed = std::filesystem::exists(path);
        if (!existed && args[0] != "record") {
            // Only `record` creates the file. Help and a mistyped command need no data: an
            // in-memory database answers them; every other command needs the file.
            const bool help = args[0] == "help" || std::ranges::find(args, "--help") != args.end() ||
                              std::ranges::find(args, "-h") != args.end();
            if (is_command(args[0]) && !help)
                return usage(fmt::format("there is no database '{}'; create one with: tickets_console {} record 400",
                                         path, path));
            database = ":memory:";
        }
        pj::command_line_options options;
        options.program_name = fmt::format("tickets_console {}", path);  // hints to copy and paste
        int status = 0;
        {
            application app(database, options);
            status = app.cli.run(args, std::cout, std::cerr);
        }
        if (!existed && status != 0)  // `record` refused: no empty file left behind
            for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
        return status;
    } catch (const pj::error& e) {  // a file that is not a SQLite database, say
        fmt::print(stderr, "tickets_console: {}\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        fmt::print(stderr, "tickets_console: {}\n", e.what());
        return 1;
    }
}
