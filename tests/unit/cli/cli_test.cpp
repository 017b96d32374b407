// The command line, driven in-process: the blue-green flow (status, init, backfill,
// verify, switch by share then fully, live, rollback, delete) on SQLite and in memory, every
// error path with its exit status and message, the progress of a backfill, `run` stopped by a
// duration, a stop token and SIGINT, and a second "process" that sees what the command line did.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <stop_token>
#include <streambuf>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <projectionist/cli.hpp>
#include <projectionist/deploy.hpp>
#include <projectionist/sqlite.hpp>
#include <sqlite_test_support.hpp>
#include <tickets_domain.hpp>

#include <cli_test_support.hpp>

namespace cli_test {

namespace pj = projectionist;
namespace cli = projectionist::detail::cli;
namespace text = projectionist::detail;
using namespace tickets_domain;
using namespace std::chrono_literals;
using cli_test::outcome;
using cli_test::run;
using cli_test::test_options;

namespace {

template <class Storage>
using tickets_deployment = pj::deployment<pj::runner<tickets<1>, Storage>,
                                          pj::runner<tickets<2>, Storage, pj::per_aggregate, pj::manual_kickoff>>;
using sqlite_tickets = tickets_deployment<pj::sqlite_storage>;
using memory_tickets = tickets_deployment<pj::memory_storage>;
using tickets_router = pj::router<tickets<1>, tickets<2>>;

static_assert(pj::detail::router_fits<sqlite_tickets>(std::type_identity<tickets_router>{}));
static_assert(pj::detail::router_fits<sqlite_tickets>(std::type_identity<pj::router<tickets<2>>>{}));  // a subset
static_assert(!pj::detail::router_fits<sqlite_tickets>(std::type_identity<pj::router<tickets<1>, tickets<3>>>{}));

/// One "process": its own store, storage, deployment, router and command line over one file.
struct sqlite_app {
    explicit sqlite_app(const std::string& file, pj::command_line_options options = test_options(),
                        pj::verify_settings settings = {})
        : store(file), storage(file), deployment(store, storage, {.batch_size = 64}), router(storage), cli(options) {
        cli.add(deployment, router, std::move(settings));
    }
    pj::sqlite_event_store store;
    pj::sqlite_storage storage;
    sqlite_tickets deployment;
    tickets_router router;
    pj::command_line cli;
};

/// 60 tickets: every third reopened once or twice; half closed at the end. v1 ignores reopenings.
template <class Store>
void append_tickets(Store& store, int count = 60, int first = 0) {
    for (int i = first; i < first + count; ++i)
        append_ticket(store, "t-" + std::to_string(i), i % 2 == 0 ? "bug" : "question", i % 3, i % 2 == 0);
}

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
    return n;
}

template <class Predicate>
bool eventually(Predicate p, std::chrono::milliseconds timeout = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!p()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

/// Asks a command to stop when the third batch of its runner (in bulk: the third read) is about
/// to begin, once armed: by SIGINT, or by `source` (the command line's stop token).
struct stop_at_third_batch {
    std::stop_source source;
    bool armed = false;
    bool by_signal = false;
    int batches = 0;

    /// The command line's options for a stop by SIGINT (`signal`: its handlers installed) or by
    /// the stop token.
    pj::command_line_options options(bool signal) {
        by_signal = signal;
        auto o = test_options();
        o.handle_signals = signal;
        if (!signal) o.stop = source.get_token();
        return o;
    }

    /// For runner_options::before_batch_begin; `this` must outlive the runners.
    std::function<void()> hook() {
        return [this] {
            if (!armed || ++batches != 3) return;
            if (by_signal)
                std::raise(SIGINT);
            else
                source.request_stop();
        };
    }
};

}  // namespace

TEST_CASE("cli: the blue-green flow on SQLite, command by command", "[cli][sqlite]") {
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    sqlite_app app(dir.file("app.db"));
    append_tickets(app.store);
    app.deployment.catch_up();
    app.deployment.serve("tickets_v1");
    const std::string head = std::to_string(app.store.head());

    // status: a row per version and the router's line
    auto r = run(app.cli, {"status"});
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    CHECK_THAT(r.out, Catch::StartsWith("tickets\n"));
    CHECK_THAT(r.out, Catch::Contains("version     state     live  position  head  lag  partitioning   traffic"));
    CHECK_THAT(r.out, Catch::Contains("tickets_v1  serving   no         " + head + "   " + head +
                                      "    0  global         primary"));
    CHECK_THAT(r.out, Catch::Contains("tickets_v2  declared  no"));
    CHECK_THAT(r.out, Catch::Contains("dormant: manual kick-off, waiting for init"));
    CHECK_THAT(r.out, Catch::Contains("router tickets: primary tickets_v1; nothing to roll back"));

    // each version's fingerprint (8 of its 16 hex digits) and retention date
    const std::string v1_print = pj::fingerprint_text(pj::runner<tickets<1>, pj::sqlite_storage>::fingerprint);
    const std::string v2_print =
        pj::fingerprint_text(pj::runner<tickets<2>, pj::sqlite_storage, pj::per_aggregate>::fingerprint);
    REQUIRE(v1_print.size() == 16);
    REQUIRE(v1_print.substr(0, 8) != v2_print.substr(0, 8));
    CHECK_THAT(r.out, Catch::Contains("traffic  fingerprint  retained until  error / note"));
    CHECK_THAT(r.out, Catch::Contains("primary  " + v1_print.substr(0, 8) + "     -"));
    CHECK_THAT(r.out, Catch::Contains(v2_print.substr(0, 8) + "     -"));
    CHECK_THAT(r.out, !Catch::Contains(v1_print.substr(8)));
    app.deployment.retain_until("tickets_v1", "2099-12-31");
    CHECK_THAT(run(app.cli, {"status", "tickets_v1"}).out, Catch::Contains(v1_print.substr(0, 8) + "     2099-12-31"));
    app.deployment.retain_until("tickets_v1", "", true);

    // out of order: backfill before init
    r = run(app.cli, {"backfill", "tickets_v2"});
    CHECK(r.status == 1);
    CHECK(r.out.empty());  // no progress for a refused backfill
    CHECK_THAT(r.err, Catch::Contains("cannot backfill tickets_v2: it is declared") &&
                          Catch::Contains("run init tickets_v2 first"));

    r = run(app.cli, {"init", "tickets_v2"});
    CHECK(r.status == 0);
    CHECK(r.out == "initialized tickets_v2 (tables: tickets_v2); it is initialized\nnext: app backfill tickets_v2\n");
    r = run(app.cli, {"init", "tickets_v2"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("tickets_v2 is initialized already (it is initialized); nothing to do"));

    // v1 serves: it cannot be deleted or reset
    r = run(app.cli, {"delete", "tickets_v1"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("cannot delete tickets_v1: the router sends it queries (the primary); move them "
                                      "to another version first (app switch tickets --to <version>, or app rollback "
                                      "tickets)"));
    r = run(app.cli, {"reset", "tickets_v1"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("cannot reset tickets_v1"));
    CHECK(app.storage.has_table("tickets_v1"));

    // backfill: plain progress lines (the output is not a terminal)
    r = run(app.cli, {"backfill", "tickets_v2"});
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    CHECK_THAT(r.out, Catch::StartsWith("backfill tickets_v2: from position 0 to the head at " + head + " (" + head +
                                        " events to go)\n"));
    CHECK_THAT(r.out, Catch::Contains("backfilled tickets_v2: " + head + " events applied, now at position " + head +
                                      " (head " + head + ")"));
    CHECK_THAT(r.out, Catch::Contains("it is caught_up\nnext: app verify tickets_v1 tickets_v2\n"));
    CHECK(r.out.find('\r') == std::string::npos);
    CHECK(app.deployment.get<tickets<2>>().state() == pj::projection_state::caught_up);

    // verify: v2 changes status and reopened on purpose; without saying so it fails
    r = run(app.cli, {"verify", "tickets_v1", "tickets_v2"});
    CHECK(r.status == 1);
    CHECK_THAT(r.out, Catch::Contains("structural diff: A = tickets_v1, B = tickets_v2") &&
                          Catch::Contains("OVERALL VERDICT: FAIL") && Catch::Contains("'status'") &&
                          Catch::Contains("'reopened'"));
    r = run(app.cli, {"verify", "tickets_v1", "tickets_v2", "--expect-change", "status"});
    CHECK(r.status == 1);  // reopened still differs
    r = run(app.cli, {"verify", "tickets_v1", "tickets_v2", "--expect-change", "status", "--expect-change=reopened"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("OVERALL VERDICT: PASS"));
    r = run(app.cli, {"verify", "tickets_v1", "tickets_v2", "--expect-change", "status,reopened", "--key", "t-1",
                      "--key", "t-2"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("spot check: A = tickets_v1, B = tickets_v2"));
    r = run(app.cli, {"verify", "tickets_v1", "tickets_v2", "--expect-change", "status,reopened", "--key", "t-404"});
    CHECK(r.status == 1);  // a key missing on both sides fails the spot check
    CHECK_THAT(r.out, Catch::Contains("t-404"));

    // --json: one JSON document on stdout, the exit status as in text
    r = run(app.cli, {"verify", "tickets_v1", "tickets_v2", "--json"});
    CHECK(r.status == 1);
    {
        const auto json = boost::json::parse(r.out);
        CHECK_FALSE(json.at("pass").as_bool());
        CHECK(json.at("verdict").as_string() == "fail");
        CHECK(json.at("structure").at("a").as_string() == "tickets_v1");
        CHECK(json.at("structure").at("b").as_string() == "tickets_v2");
        CHECK(json.at("structure").at("rows").at("a").to_number<std::int64_t>() == 60);
    }
    r = run(app.cli, {"verify", "tickets_v1", "tickets_v2", "--json", "--expect-change", "status,reopened"});
    CHECK(r.status == 0);
    CHECK(boost::json::parse(r.out).at("pass").as_bool());

    // reset: v2 replays from the start; until then it cannot go live or get traffic
    r = run(app.cli, {"reset", "tickets_v2"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("reset tickets_v2: its tables and checkpoint are empty") &&
                          Catch::Contains("it is initialized\nnext: app backfill tickets_v2"));
    CHECK(app.deployment.get<tickets<2>>().position() == 0);
    CHECK(app.storage.find_table<tickets<2>::table>("tickets_v2")->size() == 0);
    r = run(app.cli, {"live", "tickets_v2"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("cannot make tickets_v2 live: it is initialized") &&
                          Catch::Contains("run backfill tickets_v2 first"));
    r = run(app.cli, {"switch", "tickets", "--to", "tickets_v2", "--percent", "10"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("cannot roll out tickets_v2: it is initialized; run backfill tickets_v2 first"));
    r = run(app.cli, {"switch", "tickets", "--to", "tickets_v2"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("tickets_v2 cannot serve queries: it is initialized"));
    CHECK(app.router.status().primary == "tickets_v1");  // a refused switch moved nothing
    r = run(app.cli, {"verify", "tickets_v1", "tickets_v2"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("note: tickets_v2 is initialized (position 0 of " + head +
                                      "): the comparison is with a partial table"));
    r = run(app.cli, {"backfill", "tickets_v2", "--progress", "none"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::StartsWith("backfilled tickets_v2: " + head + " events applied"));

    // traffic goes on while v2 is verified and rolled out
    append_tickets(app.store, 5, 100);
    r = run(app.cli, {"catch-up"});
    CHECK(r.status == 0);
    const std::string now = std::to_string(app.store.head());
    CHECK(r.out == "tickets_v1: 14 events applied; position " + now + ", head " + now +  // v1 passes reopenings over
                       ", lag 0\ntickets_v2: 20 events applied; position " + now + ", head " + now + ", lag 0\n");

    // 10% of the routing keys
    r = run(app.cli, {"switch", "tickets", "--to", "tickets_v2", "--percent", "10"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::StartsWith("tickets: tickets_v2 now gets 10% of the queries (candidate); tickets_v1 "
                                        "serves the rest\n"));
    CHECK_THAT(r.out, Catch::Contains("router tickets: primary tickets_v1, candidate tickets_v2 at 10%"));
    CHECK(app.router.status().candidate == "tickets_v2");
    CHECK(app.router.status().basis_points == 1000);
    r = run(app.cli, {"status", "tickets"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("primary 90%") && Catch::Contains("candidate 10%"));
    r = run(app.cli, {"status", "tickets_v2"});  // one version's row
    CHECK(r.status == 0);
    CHECK(count_of(r.out, "tickets_v1  ") == 0);
    CHECK(count_of(r.out, "tickets_v2  ") == 1);

    // the candidate gets queries: it cannot be reset or deleted
    r = run(app.cli, {"delete", "tickets_v2"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("cannot delete tickets_v2: the router sends it queries (the candidate, for 10% "
                                      "of them)"));
    r = run(app.cli, {"reset", "tickets_v2"});
    CHECK(r.status == 1);
    CHECK(app.storage.has_table("tickets_v2"));

    // a share with decimals, then back, then all of it
    r = run(app.cli, {"switch", "tickets", "--to", "tickets_v2", "--percent", "12.5"});
    CHECK(r.status == 0);
    CHECK(app.router.status().basis_points == 1250);
    r = run(app.cli, {"rollback", "tickets"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::StartsWith("tickets: cancelled the rollout of tickets_v2; tickets_v1 serves every query"));
    CHECK_FALSE(app.router.status().candidate);

    r = run(app.cli, {"switch", "tickets", "--to", "tickets_v2"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::StartsWith("tickets: tickets_v2 now serves every query; tickets_v1 retired (still "
                                        "following, for a rollback)\n"));
    CHECK_THAT(r.out, Catch::Contains("router tickets: primary tickets_v2; rollback to tickets_v1"));
    CHECK(app.deployment.get<tickets<2>>().state() == pj::projection_state::serving);
    CHECK(app.deployment.get<tickets<1>>().state() == pj::projection_state::retired);
    CHECK(app.router.route("any-user") == "tickets_v2");

    r = run(app.cli, {"live", "tickets_v2"});
    CHECK(r.status == 0);
    CHECK(r.out == "tickets_v2 is live: the events it emits are appended from now on (it is serving)\n");
    CHECK(app.deployment.get<tickets<2>>().status().live);

    // rollback: v1 serves again (it kept following); a second rollback has nothing to undo
    r = run(app.cli, {"rollback", "tickets"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::StartsWith("tickets: rolled back to tickets_v1, which serves every query again; "
                                        "tickets_v2 is retired\n"));
    CHECK(app.deployment.get<tickets<1>>().state() == pj::projection_state::serving);
    CHECK(app.deployment.get<tickets<2>>().state() == pj::projection_state::retired);
    CHECK(app.router.route("any-user") == "tickets_v1");
    r = run(app.cli, {"rollback", "tickets"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("nothing to roll back"));

    // switch again; now v1 can go
    r = run(app.cli, {"switch", "tickets", "--to", "tickets_v2"});
    CHECK(r.status == 0);
    r = run(app.cli, {"reset", "tickets_v2"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("cannot reset tickets_v2: the router sends it queries (the primary)"));
    r = run(app.cli, {"delete", "tickets_v1"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::StartsWith("deleted tickets_v1: dropped its tables (tickets_v1) and checkpoint; the "
                                        "catalog keeps it as deleted"));
    CHECK(app.storage.find_catalog("tickets_v1")->deleted_by == "delete");
    CHECK_FALSE(app.storage.has_table("tickets_v1"));
    CHECK(app.storage.has_table("tickets_v2"));
    r = run(app.cli, {"delete", "tickets_v1"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("cannot delete tickets_v1: it is deleted already; there is nothing to delete"));

    // the router forgot the deleted version: nothing to roll back; catching up does not bring it back
    r = run(app.cli, {"rollback", "tickets"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("nothing to roll back"));
    CHECK(app.router.route("any-user") == "tickets_v2");
    append_tickets(app.store, 2, 200);
    r = run(app.cli, {"catch-up", "tickets"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out,
               Catch::Contains("tickets_v1: deleted; skipped") && Catch::Contains("tickets_v2: 7 events applied"));
    CHECK_FALSE(app.storage.has_table("tickets_v1"));
    r = run(app.cli, {"verify", "tickets_v1", "tickets_v2"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("cannot verify tickets_v1: it is deleted; run init tickets_v1 first"));

    r = run(app.cli, {"status"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("tickets_v1  deleted") && Catch::Contains("tickets_v2  serving  yes") &&
                          Catch::Contains("by delete; only an explicit init re-creates it"));
    CHECK(sqlite_test::integrity_ok(dir.file("app.db")));
}

TEST_CASE("cli: usage errors exit with 2 and say what is valid", "[cli]") {
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    sqlite_app app(dir.file("app.db"));
    append_tickets(app.store, 6);
    app.deployment.catch_up();

    auto r = run(app.cli, {});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::StartsWith("usage: app <command> [arguments] [--help]"));

    r = run(app.cli, {"frobnicate", "tickets_v2"});
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    CHECK_THAT(r.err,
               Catch::StartsWith(
                   "app: unknown command 'frobnicate'; the commands are: init, backfill, catch-up, status, "
                   "dead-letters, verify, switch, live, rollback, reset, delete, run, rollout, predicate, help\n"));

    r = run(app.cli, {"init", "tickets_v9"});
    CHECK(r.status == 2);
    CHECK(r.err == "app init: unknown version 'tickets_v9'; the versions are: tickets_v1, tickets_v2\n");
    r = run(app.cli, {"init", "tickets"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("'tickets' is a projection, not a version; its versions are: tickets_v1, "
                                      "tickets_v2"));
    r = run(app.cli, {"delete", "tickets_v1; DROP TABLE projectionist_catalog"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("unknown version 'tickets_v1; DROP TABLE projectionist_catalog'"));
    CHECK(app.storage.has_table("tickets_v1"));
    r = run(app.cli, {"init", "\x1b[2J\\x"});  // typed names are echoed without control characters
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::StartsWith("app init: unknown version '\\x1b[2J\\x5cx'"));

    r = run(app.cli, {"switch", "orders", "--to", "orders_v2"});
    CHECK(r.status == 2);
    CHECK(r.err == "app switch: unknown projection 'orders'; the projections are: tickets\n");
    r = run(app.cli, {"switch", "tickets_v2", "--to", "tickets_v2"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("unknown projection 'tickets_v2' ('tickets_v2' is a version of tickets)"));
    r = run(app.cli, {"switch", "tickets", "--to", "tickets_v7"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("unknown version 'tickets_v7' of tickets; its versions are: tickets_v1, "
                                      "tickets_v2"));
    r = run(app.cli, {"rollback", "nope"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("unknown projection 'nope'; the projections are: tickets"));
    r = run(app.cli, {"status", "nope"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("unknown projection or version 'nope'"));
    r = run(app.cli, {"catch-up", "nope"});
    CHECK(r.status == 2);

    // missing and extra arguments: the message, then the command's usage
    r = run(app.cli, {"switch", "tickets"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::StartsWith("app switch: missing option --to <version>\n\nusage: app switch <projection> "
                                        "--to <version> [--percent N]\n"));
    r = run(app.cli, {"switch"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::StartsWith("app switch: missing argument <projection>\n"));
    r = run(app.cli, {"init"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err,
               Catch::StartsWith(
                   "app init: missing argument <version>\n\nusage: app init <version> [--retain-until YYYY-MM-DD "
                   "[--force]]\n"));
    r = run(app.cli, {"init", "tickets_v2", "tickets_v1"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::StartsWith("app init: unexpected argument 'tickets_v1'\n"));
    r = run(app.cli, {"verify", "tickets_v1"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::StartsWith("app verify: missing argument <version B>\n"));
    r = run(app.cli, {"verify", "tickets_v1", "tickets_v1"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("give two different versions, not tickets_v1 twice"));
    r = run(app.cli, {"verify", "tickets_v1", "tickets_v2", "--expect-change", "colour"});
    CHECK(r.status == 2);  // before any state check: v2 is not even initialized
    CHECK_THAT(r.err, Catch::Contains("unknown column 'colour' in --expect-change; the columns of tickets_v1 and "
                                      "tickets_v2 are: ticket_id, type, status, reopened"));
    r = run(app.cli, {"verify", "tickets_v1", "tickets_v2"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("cannot verify tickets_v2: it is declared; run init tickets_v2 first"));

    // options
    r = run(app.cli, {"init", "--percent", "tickets_v2"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::StartsWith(
                          "app init: unknown option '--percent'; the options are: --retain-until, --force, --help\n"));
    r = run(app.cli, {"init", "-f", "tickets_v2"});
    CHECK(r.status == 2);
    r = run(app.cli, {"switch", "tickets", "--to"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("option --to needs a value (VERSION)"));
    r = run(app.cli, {"switch", "tickets", "--to", "--percent", "10"});  // the next option is not its value
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::StartsWith("app switch: option --to needs a value (VERSION)\n"));
    r = run(app.cli, {"switch", "tickets", "--to", "tickets_v2", "--to", "tickets_v1"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("option --to is given twice"));
    for (const char* bad : {"150", "-5", "ten", "10.123", "10.", ".5", ""}) {
        r = run(app.cli, {"switch", "tickets", "--to", "tickets_v2", "--percent", bad});
        CHECK(r.status == 2);
    }
    r = run(app.cli, {"switch", "tickets", "--to", "tickets_v2", "--percent", "150"});
    CHECK_THAT(r.err, Catch::Contains("--percent '150': give a share from 0 to 100"));
    r = run(app.cli, {"verify", "tickets_v1", "tickets_v2", "--json=yes"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("option --json takes no value"));
    r = run(app.cli, {"backfill", "tickets_v2", "--progress", "fancy"});
    CHECK(r.status == 2);
    r = run(app.cli, {"run", "--for", "soon"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("--for 'soon': give a duration such as 500ms"));
    r = run(app.cli, {"run", "extra"});
    CHECK(r.status == 2);

    // help
    r = run(app.cli, {"--help"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::StartsWith("usage: app <command> [arguments] [--help]\n"));
    CHECK_THAT(r.out, Catch::Contains("  switch <projection> --to <version>") &&
                          Catch::Contains("projections:\n  tickets: tickets_v1, tickets_v2\n") &&
                          Catch::Contains("exit status: 0 success"));
    CHECK(run(app.cli, {"help"}).out == r.out);
    r = run(app.cli, {"help", "verify"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::StartsWith("usage: app verify <version A> <version B> [--table TABLE] [--expect-change "
                                        "COLUMN]... [--key KEY]... [--json]\n"));
    r = run(app.cli, {"help", "nope"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("unknown command 'nope'"));
    for (const auto& c : cli::commands()) {
        INFO(c.name);
        for (const char* flag : {"--help", "-h"}) {
            // --help wins over anything else on the line, even missing or unknown arguments
            r = run(app.cli, {std::string(c.name), "tickets_v9", flag, "--bogus"});
            CHECK(r.status == 0);
            CHECK(r.err.empty());
            CHECK_THAT(r.out, Catch::StartsWith(fmt::format("usage: app {} {}\n", c.name, c.synopsis)));
            CHECK_THAT(r.out, Catch::Contains("\n  --help ") && Catch::Contains(" show this text\n"));
            CHECK(r.out == app.cli.command_usage(c.name));
        }
    }
    CHECK_THAT(app.cli.command_usage("switch"), Catch::Contains("--percent N   the share of queries") &&
                                                    Catch::Contains("projections: tickets\n") &&
                                                    Catch::Contains("versions: tickets_v1, tickets_v2\n"));
    // nothing above changed anything
    CHECK(app.deployment.get<tickets<2>>().state() == pj::projection_state::declared);
    CHECK(app.router.status().primary == "tickets_v1");
}

TEST_CASE("cli: other errors exit with 1 and print the library's message", "[cli]") {
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    const auto file = dir.file("app.db");
    sqlite_app app(file);
    append_tickets(app.store, 6);
    app.deployment.catch_up();

    // a corrupt routing setting: refused with the router's explanation, nothing else happens
    app.storage.save_setting(tickets_router::setting_key(), "format=9 primary=tickets_v1");
    auto r = run(app.cli, {"status"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("the saved setting 'projectionist.router.tickets' is invalid"));
    r = run(app.cli, {"switch", "tickets", "--to", "tickets_v1"});
    CHECK(r.status == 1);
    app.storage.save_setting(tickets_router::setting_key(), "format=1 primary=tickets_v1");
    CHECK(run(app.cli, {"status"}).status == 0);

    // a rollout to the primary itself
    app.deployment.serve("tickets_v1");
    r = run(app.cli, {"switch", "tickets", "--to", "tickets_v1", "--percent", "5"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("tickets_v1 is the primary already"));

    // registration mistakes are programming errors, thrown by add()
    pj::command_line other(test_options());
    other.add(app.deployment, app.router);
    CHECK_THROWS_WITH(other.add(app.deployment), Catch::Contains("projection 'tickets' is registered already"));
    pj::command_line third(test_options());
    CHECK_THROWS_WITH(third.add(app.deployment, app.router, {.pairs = {{"tickets_v1", "tickets_v9", {}}}}),
                      Catch::Contains("verify settings name 'tickets_v9', which is not a version of tickets; the "
                                      "versions are: tickets_v1, tickets_v2"));
}

TEST_CASE("cli: verify settings registered with the projection", "[cli]") {
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    const auto file = dir.file("app.db");
    SECTION("for every pair") {
        sqlite_app app(file, test_options(), {.options = {.expected_changes = {"status", "reopened"}}});
        append_tickets(app.store);
        app.deployment.catch_up();
        REQUIRE(run(app.cli, {"init", "tickets_v2"}).status == 0);
        REQUIRE(run(app.cli, {"backfill", "tickets_v2"}).status == 0);
        CHECK(run(app.cli, {"verify", "tickets_v1", "tickets_v2"}).status == 0);
        CHECK(run(app.cli, {"verify", "tickets_v2", "tickets_v1"}).status == 0);
    }
    SECTION("for one pair, in either order; --expect-change adds to them") {
        sqlite_app app(file, test_options(),
                       {.options = {.row_count_tolerance = 0},
                        .pairs = {{"tickets_v1", "tickets_v2", {.expected_changes = {"status"}}}}});
        append_tickets(app.store);
        app.deployment.catch_up();
        REQUIRE(run(app.cli, {"init", "tickets_v2"}).status == 0);
        REQUIRE(run(app.cli, {"backfill", "tickets_v2"}).status == 0);
        auto r = run(app.cli, {"verify", "tickets_v2", "tickets_v1"});
        CHECK(r.status == 1);
        CHECK_THAT(r.out, Catch::Contains("'reopened'"));
        CHECK(run(app.cli, {"verify", "tickets_v2", "tickets_v1", "--expect-change", "reopened"}).status == 0);
    }
}

TEST_CASE("cli: a second process sees the command line's switch", "[cli][sqlite]") {
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    const auto file = dir.file("app.db");
    sqlite_app ops(file);  // the operator's command line
    append_tickets(ops.store);
    auto r = run(ops.cli, {"status"});  // a fresh file: nothing has run yet
    CHECK_THAT(r.out, Catch::Contains("tickets_v1  declared  no           0   210  210  global         primary") &&
                          Catch::Contains("-               not initialized: automatic kick-off, the next catch-up or "
                                          "run initializes it\n"));
    CHECK_THAT(r.out, Catch::Contains("note: WARNING: the router sends queries to tickets_v1, which is declared"));
    r = run(ops.cli, {"catch-up"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("tickets_v1: 150 events applied; position 210, head 210, lag 0; initialized by "
                                      "its automatic kick-off, it is caught_up\n"));
    ops.deployment.serve("tickets_v1");

    sqlite_app service(file);  // the application serving queries, in "another process"
    service.deployment.catch_up();
    CHECK(service.router.route("user-1") == "tickets_v1");

    REQUIRE(run(ops.cli, {"init", "tickets_v2"}).status == 0);
    REQUIRE(run(ops.cli, {"backfill", "tickets_v2"}).status == 0);
    REQUIRE(run(ops.cli, {"switch", "tickets", "--to", "tickets_v2", "--percent", "10"}).status == 0);

    CHECK(service.router.status().candidate == std::nullopt);  // not until it looks again
    CHECK(service.router.refresh());
    CHECK(service.router.status().candidate == "tickets_v2");
    CHECK(service.router.status().basis_points == 1000);
    int on_v2 = 0;
    for (int i = 0; i < 1000; ++i)
        if (service.router.route("user-" + std::to_string(i)) == "tickets_v2") ++on_v2;
    CHECK(on_v2 > 50);
    CHECK(on_v2 < 150);

    REQUIRE(run(ops.cli, {"switch", "tickets", "--to", "tickets_v2"}).status == 0);
    CHECK(service.router.refresh());
    CHECK(service.router.route("user-1") == "tickets_v2");
    CHECK(service.router.status().previous == "tickets_v1");
    service.deployment.get<tickets<1>>().refresh();
    service.deployment.get<tickets<2>>().refresh();
    const auto statuses = service.deployment.status();
    CHECK(statuses[0].state == pj::projection_state::retired);
    CHECK(statuses[1].state == pj::projection_state::serving);

    // the service keeps following; its own command line reports the same state
    append_tickets(service.store, 3, 500);
    service.deployment.catch_up();
    r = run(service.cli, {"status"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("tickets_v2  serving") && Catch::Contains("primary tickets_v2; rollback to "
                                                                                "tickets_v1"));
    // and the operator's process sees the service's progress
    r = run(ops.cli, {"status"});
    CHECK_THAT(r.out, Catch::Contains("tickets_v2  serving  no         " + std::to_string(ops.store.head())));

    REQUIRE(run(ops.cli, {"delete", "tickets_v1"}).status == 0);
    service.deployment.get<tickets<1>>().refresh();
    CHECK(service.deployment.get<tickets<1>>().state() == pj::projection_state::deleted);
    CHECK_FALSE(service.storage.has_table("tickets_v1"));
}

TEST_CASE("cli: the same commands over memory storage", "[cli][memory]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_tickets(store);
    memory_tickets d(store, storage);
    tickets_router router(storage);
    pj::command_line c(test_options());
    c.add(d, router);
    d.catch_up();
    d.serve("tickets_v1");

    CHECK(run(c, {"init", "tickets_v2"}).status == 0);
    CHECK(run(c, {"backfill", "tickets_v2"}).status == 0);
    CHECK(run(c, {"verify", "tickets_v1", "tickets_v2"}).status == 1);
    auto r = run(c, {"verify", "tickets_v1", "tickets_v2", "--expect-change", "status,reopened", "--key", "t-3"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("spot check"));
    CHECK(run(c, {"switch", "tickets", "--to", "tickets_v2"}).status == 0);
    CHECK(run(c, {"live", "tickets_v2"}).status == 0);
    CHECK(run(c, {"delete", "tickets_v1"}).status == 0);
    CHECK_FALSE(storage.has_table("tickets_v1"));
    CHECK(router.route("x") == "tickets_v2");
}

TEST_CASE("cli: an application's own controller, registered by reference", "[cli][controller]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_tickets(store);
    memory_tickets d(store, storage);
    tickets_router router(storage);
    pj::controller control(d, router, {}, {.drain_timeout = 1s});  // the application drives it too
    pj::command_line c(test_options());
    c.add(control);
    CHECK_THROWS_WITH(c.add(d, router), Catch::Contains("projection 'tickets' is registered already"));
    control.catch_up();
    control.switch_to("tickets_v1");

    CHECK(run(c, {"init", "tickets_v2"}).status == 0);
    CHECK(run(c, {"backfill", "tickets_v2"}).status == 0);
    CHECK(run(c, {"switch", "tickets", "--to", "tickets_v2", "--percent", "25"}).status == 0);
    CHECK(control.routing()->candidate == "tickets_v2");  // the same router, the same controller
    // its options are its own: the refusal names the controller's operations, not the program's
    auto r = run(c, {"delete", "tickets_v2"});
    CHECK(r.status == 1);
    CHECK(r.err ==
          "projectionist: cannot delete tickets_v2: the router sends it queries (the candidate, for 25% of them); "
          "move them to another version first (switch_to another version, or rollback)\n");
    control.switch_to("tickets_v2");
    r = run(c, {"status"});
    CHECK_THAT(r.out, Catch::Contains("tickets_v1  retired") && Catch::Contains("tickets_v2  serving"));
    CHECK(run(c, {"rollback", "tickets"}).status == 0);
    CHECK(d.get<tickets<1>>().state() == pj::projection_state::serving);
}

TEST_CASE("cli: a projection without a query router", "[cli]") {
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    const auto file = dir.file("app.db");
    pj::sqlite_event_store store(file);
    pj::sqlite_storage storage(file);
    append_tickets(store);
    sqlite_tickets d(store, storage);
    pj::command_line c(test_options());
    c.add(d);
    d.catch_up();
    d.serve("tickets_v1");

    auto r = run(c, {"status"});
    CHECK_THAT(r.out, Catch::Contains("router: none registered") && Catch::Contains("global         serving"));
    r = run(c, {"delete", "tickets_v1"});  // the deployment's own refusal
    CHECK(r.status == 1);
    CHECK(r.err ==
          "projectionist: cannot delete tickets_v1: it is serving queries; switch traffic to another version first\n");
    CHECK(run(c, {"init", "tickets_v2"}).status == 0);
    CHECK(run(c, {"backfill", "tickets_v2"}).status == 0);
    r = run(c, {"switch", "tickets", "--to", "tickets_v2", "--percent", "10"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("no query router is registered for tickets"));
    r = run(c, {"switch", "tickets", "--to", "tickets_v2", "--percent", "100"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("no query router is registered for tickets: only the catalog records it"));
    CHECK(d.get<tickets<2>>().state() == pj::projection_state::serving);
    r = run(c, {"rollback", "tickets"});
    CHECK(r.status == 1);
    CHECK(r.err ==
          "projectionist: cannot roll back tickets: no query router is registered for it; run 'app switch tickets --to "
          "<version>' instead\n");
    CHECK(run(c, {"delete", "tickets_v1"}).status == 0);
    CHECK_THAT(run(c, {"help"}).out, Catch::Contains("tickets: tickets_v1, tickets_v2 (no query router)"));
}

TEST_CASE("cli: run follows the log until it is stopped", "[cli][run]") {
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    const auto file = dir.file("app.db");

    SECTION("for a duration") {
        auto options = test_options();
        options.run_report_interval = 0ms;
        sqlite_app app(file, options);
        append_tickets(app.store, 10);
        REQUIRE(run(app.cli, {"init", "tickets_v2"}).status == 0);
        const auto started = std::chrono::steady_clock::now();
        auto r = run(app.cli, {"run", "--for", "150ms"});
        CHECK(std::chrono::steady_clock::now() - started >= 150ms);
        CHECK(r.status == 0);
        CHECK(r.err.empty());
        CHECK_THAT(r.out, Catch::StartsWith("run: following the log with tickets_v1, tickets_v2 until stopped, at most "
                                            "0.150 s\n"));
        const std::string head = std::to_string(app.store.head());
        CHECK_THAT(r.out, Catch::Matches("[\\s\\S]*\n  tickets_v1: \\+24 events, [\\d,]+ events/s; position " + head +
                                         ", lag 0, caught up\n[\\s\\S]*"));  // handled
        CHECK_THAT(r.out,
                   Catch::Matches("[\\s\\S]*\n  tickets_v2: \\+" + head + " events, [\\d,]+ events/s; position " +
                                  head + ", lag 0, caught up\n[\\s\\S]*"));
        CHECK_THAT(r.out, Catch::Contains("run: stopped (the --for duration elapsed) after 0.1"));
        CHECK_THAT(r.out, Catch::Contains("  tickets_v1: initialized by its automatic kick-off\n"));
        CHECK_THAT(r.out, Catch::Contains("  tickets_v2: caught_up, position " + head + ", lag 0\n"));
        for (const auto& s : app.deployment.status()) CHECK(s.position == app.store.head());
    }

    SECTION("by a stop token, while events arrive") {
        std::stop_source source;
        auto options = test_options();
        options.stop = source.get_token();
        sqlite_app app(file, options);
        append_tickets(app.store, 5);
        outcome r;
        std::thread t([&] { r = run(app.cli, {"run"}); });
        append_tickets(app.store, 20, 100);
        const auto head = app.store.head();
        CHECK(eventually([&] { return app.deployment.get<tickets<1>>().status().position == head; }));
        source.request_stop();
        t.join();
        CHECK(r.status == 0);
        CHECK_THAT(r.out, Catch::Contains("dormant until init: tickets_v2") &&
                              Catch::Contains("run: stopped (stop requested)") &&
                              Catch::Contains("tickets_v1: caught_up, position " + std::to_string(head) +
                                              ", lag 0\n  tickets_v2: declared, position 0"));
    }

    SECTION("by SIGINT; the previous handler is back afterwards") {
        auto options = test_options();
        options.handle_signals = true;
        sqlite_app app(file, options);
        append_tickets(app.store, 5);
        struct sigaction before {};
        ::sigaction(SIGINT, nullptr, &before);
        outcome r;
        std::thread t([&] { r = run(app.cli, {"run", "--for", "60s"}); });
        const bool installed = eventually([] {
            struct sigaction now {};
            ::sigaction(SIGINT, nullptr, &now);
            return now.sa_handler == &cli::projectionist_cli_on_stop_signal;
        });
        REQUIRE(installed);
        std::raise(SIGINT);
        t.join();
        CHECK(r.status == 0);
        CHECK_THAT(r.out, Catch::Contains("until SIGINT (Ctrl-C) or SIGTERM, at most 1:00") &&
                              Catch::Contains("run: stopped (SIGINT received)"));
        struct sigaction after {};
        ::sigaction(SIGINT, nullptr, &after);
        CHECK(after.sa_handler == before.sa_handler);
    }

    SECTION("a version that stops on an error is reported once, and the exit status is 1") {
        sqlite_app app(file);
        append_tickets(app.store, 5);
        // a duplicate registration breaks v1's insert (the ticket exists already)
        app.store.append(ticket_stream{}, "dup", 0, ticket_registered{"t-1", "bug"});
        auto r = run(app.cli, {"run", "--for", "100ms"});
        CHECK(r.status == 1);
        CHECK(count_of(r.err, "tickets_v1: stopped:") == 1);
        CHECK_THAT(r.out,
                   Catch::Contains("  tickets_v1: stopped (initialized), position 0, lag 17; error: projectionist: "
                                   "projection 'tickets_v1' stopped at position"));
        r = run(app.cli, {"status"});
        CHECK_THAT(r.out, Catch::Contains("error: projectionist: projection 'tickets_v1' stopped at position"));
        // The state column says the runner stopped, and where the version stands in the catalog.
        CHECK_THAT(r.out, Catch::Matches("[\\s\\S]*\\n  tickets_v1 +stopped \\(initialized\\) +no +0 [\\s\\S]*"));
        r = run(app.cli, {"catch-up", "tickets_v1"});
        CHECK(r.status == 1);
        CHECK_THAT(r.err, Catch::Contains("cannot catch up 'tickets_v1': it stopped after an error"));
    }
}

TEST_CASE("cli: run ends a long catch-up between two batches when it is stopped", "[cli][run]") {
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    const auto file = dir.file("app.db");
    stop_at_third_batch stop;
    auto options = test_options();
    options.stop = stop.source.get_token();
    pj::sqlite_event_store store(file);
    pj::sqlite_storage storage(file);
    pj::runner_options runner_options{.batch_size = 16};
    runner_options.before_batch_begin = stop.hook();
    sqlite_tickets deployment(store, storage, runner_options);
    tickets_router router(storage);
    append_tickets(store, 10);
    deployment.catch_up();  // v1 has caught up; v2 is dormant
    append_tickets(store, 60, 100);
    const std::uint64_t from = deployment.get<tickets<1>>().status().position;
    const std::uint64_t head = store.head();
    REQUIRE(head - from > 3 * 16);
    std::string reason;

    SECTION("by a stop token") {
        reason = "stop requested";
    }
    SECTION("by SIGINT") {
        stop.by_signal = true;
        options.handle_signals = true;
        reason = "SIGINT received";
    }
    pj::command_line cli(options);
    cli.add(deployment, router);
    stop.armed = true;
    auto r = run(cli, {"run"});
    stop.armed = false;
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    CHECK(stop.batches == 3);
    // the two batches before the stop are committed; the rest waits for the next catch-up
    const std::uint64_t at = deployment.get<tickets<1>>().status().position;
    CHECK(at == from + 2 * 16);
    CHECK_THAT(r.out, Catch::Contains("run: stopped (" + reason + ")") &&
                          Catch::Contains("  tickets_v1: caught_up, position " + std::to_string(at) + ", lag " +
                                          std::to_string(head - at) + "\n"));
    pj::command_line again(test_options());  // without the stop, which catch-up heeds too
    again.add(deployment, router);
    r = run(again, {"catch-up", "tickets_v1"});
    CHECK(r.status == 0);
    CHECK(deployment.get<tickets<1>>().status().position == head);
}

TEST_CASE("cli: a backfill stopped between two batches keeps what it applied, exits 1, and the next one goes on",
          "[cli][run][sqlite]") {
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    const auto file = dir.file("app.db");
    const std::string mode = GENERATE(as<std::string>{}, "bulk", "batch");
    const bool by_signal = GENERATE(false, true);
    CAPTURE(mode, by_signal);
    stop_at_third_batch stop;
    const auto options = stop.options(by_signal);
    pj::sqlite_event_store store(file);
    pj::sqlite_storage storage(file);
    pj::runner_options runner_options{.batch_size = 16};
    runner_options.bulk_read_size = 16;
    runner_options.before_batch_begin = stop.hook();
    sqlite_tickets deployment(store, storage, runner_options);
    tickets_router router(storage);
    append_tickets(store);
    const std::uint64_t head = store.head();
    REQUIRE(head > 3 * 16);
    pj::command_line cli(options);
    cli.add(deployment, router);
    REQUIRE(run(cli, {"init", "tickets_v2"}).status == 0);

    stop.armed = true;
    auto r = run(cli, {"backfill", "tickets_v2", "--mode", mode, "--memory-budget", "unbounded"});
    stop.armed = false;
    CHECK(r.status == 1);  // not done: a script must not go on to verify or switch
    CHECK(stop.batches == 3);
    auto& v2 = deployment.get<tickets<2>>();
    CHECK(v2.status().position == 2 * 16);  // the two batches before the stop, committed (in bulk: written)
    CHECK(v2.state() == pj::projection_state::backfilling);
    CHECK(storage.find_catalog("tickets_v2")->state == pj::projection_state::backfilling);
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->size() > 0);
    CHECK_THAT(r.out, Catch::Contains(fmt::format("stopped backfill of tickets_v2 ({}): 32 events applied and kept, "
                                                  "now at position 32 of {} in ",
                                                  by_signal ? "SIGINT received" : "stop requested", head)) &&
                          Catch::Contains("; it is backfilling\nnext: app backfill tickets_v2 (goes on from "
                                          "position 32)\n"));
    CHECK_THAT(r.out, !Catch::Contains("backfilled"));
    if (mode == "bulk") CHECK_THAT(r.out, Catch::Contains("in bulk: "));

    // The next backfill goes on from there (a command line without the stop), to the rows of one
    // that was never stopped.
    pj::command_line again(test_options());
    again.add(deployment, router);
    r = run(again, {"backfill", "tickets_v2", "--mode", mode});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains(fmt::format("backfilled tickets_v2: {} events applied, now at position {}",
                                                  head - 32, head)));
    CHECK(v2.state() == pj::projection_state::caught_up);
    const auto rows = [](auto&& table) {
        std::map<std::string, ticket_row> out;
        table.for_each([&](const ticket_row& row) { out.emplace(row.ticket_id, row); });
        return out;
    };
    pj::memory_event_store reference_store;
    pj::memory_storage reference_storage;
    append_tickets(reference_store);
    pj::runner<tickets<2>, pj::memory_storage, pj::per_aggregate> reference(reference_store, reference_storage);
    reference.catch_up();
    const auto expected = rows(*reference_storage.find_table<tickets<2>::table>("tickets_v2"));
    CHECK(expected.size() == 60);
    CHECK(rows(*storage.find_table<tickets<2>::table>("tickets_v2")) == expected);
}

TEST_CASE("cli: a catch-up stopped between two batches keeps what it applied and leaves the versions after it",
          "[cli][run][sqlite]") {
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    const auto file = dir.file("app.db");
    const bool by_signal = GENERATE(false, true);
    CAPTURE(by_signal);
    stop_at_third_batch stop;
    const auto options = stop.options(by_signal);
    pj::sqlite_event_store store(file);
    pj::sqlite_storage storage(file);
    pj::runner_options runner_options{.batch_size = 16};
    runner_options.before_batch_begin = stop.hook();
    sqlite_tickets deployment(store, storage, runner_options);
    tickets_router router(storage);
    append_tickets(store, 10);
    deployment.catch_up();  // v1 follows
    deployment.init("tickets_v2");
    deployment.backfill("tickets_v2");
    const std::uint64_t from = store.head();
    append_tickets(store, 60, 100);
    const std::uint64_t head = store.head();
    pj::command_line cli(options);
    cli.add(deployment, router);

    stop.armed = true;
    auto r = run(cli, {"catch-up"});
    stop.armed = false;
    CHECK(r.status == 1);  // not caught up
    CHECK(stop.batches == 3);
    const std::uint64_t at = from + 2 * 16;
    CHECK(deployment.get<tickets<1>>().status().position == at);
    CHECK(deployment.get<tickets<2>>().status().position == from);  // not reached
    const std::string reason = by_signal ? "SIGINT received" : "stop requested";
    CHECK_THAT(r.out,
               Catch::StartsWith("tickets_v1: stopped (" + reason + ") after ") &&
                   Catch::Contains(fmt::format(" events; position {}, head {}, lag {}\n", at, head, head - at)) &&
                   Catch::EndsWith("stopped (" + reason + ") before tickets_v2\n"));

    // The next catch-up (a command line without the stop) goes on from there, for both.
    pj::command_line again(test_options());
    again.add(deployment, router);
    r = run(again, {"catch-up"});
    CHECK(r.status == 0);
    CHECK(deployment.get<tickets<1>>().status().position == head);
    CHECK(deployment.get<tickets<2>>().status().position == head);
}

TEST_CASE("cli: a second SIGINT while run stops ends the program at once", "[cli][run]") {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::signal(SIGINT, SIG_DFL);  // what the program does without run's handler
        {
            cli::signal_scope scope(true);
            std::raise(SIGINT);  // the first: run stops between two batches
            if (scope.received() != SIGINT) ::_exit(3);
            std::raise(SIGINT);  // the second: the default action, at once
        }
        ::_exit(4);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGINT));
}

TEST_CASE("cli: a retention date moves later, and earlier only with --force", "[cli][sqlite]") {
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    sqlite_app app(dir.file("app.db"));
    append_tickets(app.store, 5);
    auto retained = [&] { return app.storage.find_catalog("tickets_v2")->retain_until; };
    auto r = run(app.cli, {"init", "tickets_v2", "--retain-until", "2099-12-31"});
    REQUIRE(r.status == 0);
    CHECK(run(app.cli, {"delete", "tickets_v2"}).status == 1);

    // an earlier day, or a typo in the year: refused, and nothing changes
    for (const std::string day : {"2000-01-01", "2009-12-31"}) {
        r = run(app.cli, {"init", "tickets_v2", "--retain-until", day});
        CHECK(r.status == 1);
        CHECK(r.out.empty());
        CHECK(r.err == "projectionist: cannot retain tickets_v2 until " + day +
                           ": it is retained until 2099-12-31, a later day; give that day or a later one, or run 'app "
                           "init tickets_v2 --retain-until " +
                           day + " --force' to move it earlier\n");
        CHECK(retained() == "2099-12-31");
    }
    r = run(app.cli, {"delete", "tickets_v2"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("cannot delete tickets_v2: it is retained until 2099-12-31"));

    // the same day, then a later one
    CHECK(run(app.cli, {"init", "tickets_v2", "--retain-until", "2099-12-31"}).status == 0);
    r = run(app.cli, {"init", "tickets_v2", "--retain-until", "2100-06-30"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("tickets_v2 is retained until 2100-06-30"));
    CHECK(retained() == "2100-06-30");

    // --force goes with --retain-until
    r = run(app.cli, {"init", "tickets_v2", "--force"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::StartsWith("app init: --force goes with --retain-until: it moves a retention date "
                                        "earlier\n"));

    // forced: moved earlier, and a delete goes through
    r = run(app.cli, {"init", "tickets_v2", "--retain-until", "2000-01-01", "--force"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("tickets_v2 is retained until 2000-01-01"));
    CHECK(retained() == "2000-01-01");
    CHECK(run(app.cli, {"delete", "tickets_v2"}).status == 0);
}

TEST_CASE("cli: an output that cannot be written fails the command", "[cli][sqlite]") {
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    sqlite_app app(dir.file("app.db"));
    append_tickets(app.store, 5);
    app.deployment.catch_up();
    REQUIRE(run(app.cli, {"init", "tickets_v2"}).status == 0);
    REQUIRE(run(app.cli, {"backfill", "tickets_v2"}).status == 0);
    const std::vector<std::string> verify{"verify", "tickets_v1",      "tickets_v2",
                                          "--json", "--expect-change", "status,reopened"};
    REQUIRE(run(app.cli, verify).status == 0);

    SECTION("a full device") {
        std::ofstream full("/dev/full");
        REQUIRE(full.is_open());
        std::ostringstream err;
        CHECK(app.cli.run({"status"}, full, err) == 1);
        CHECK(err.str() ==
              "app status: cannot write the output: No space left on device; what the command did stands, but its "
              "output is incomplete: check where the output goes\n");
        // a longer output fails while it is written, before the end
        std::ofstream again("/dev/full");
        err.str("");
        CHECK(app.cli.run(verify, again, err) == 1);
        CHECK_THAT(err.str(), Catch::StartsWith("app verify: cannot write the output: "));
    }
    SECTION("a stream that fails; a usage error keeps its status") {
        struct failing : std::streambuf {
            int overflow(int) override { return traits_type::eof(); }
            int sync() override { return -1; }
        } buffer;
        std::ostream out(&buffer);
        std::ostringstream err;
        CHECK(app.cli.run({"help"}, out, err) == 1);
        CHECK_THAT(err.str(), Catch::StartsWith("app help: cannot write the output: "));
        out.clear();
        err.str("");
        CHECK(app.cli.run({"status", "--bogus"}, out, err) == 2);
        CHECK_THAT(err.str(), Catch::Contains("unknown option '--bogus'") &&
                                  Catch::Contains("app status: cannot write the output: "));
    }
}

TEST_CASE(
    "cli: a switch whose catalog write fails names its cause and switches nothing; status flags two serving "
    "versions",
    "[cli][sqlite]") {
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("app.db");
    sqlite_app app(file);
    append_tickets(app.store);
    app.deployment.catch_up();
    app.deployment.serve("tickets_v1");
    REQUIRE(run(app.cli, {"init", "tickets_v2"}).status == 0);
    REQUIRE(run(app.cli, {"backfill", "tickets_v2", "--progress", "none"}).status == 0);

    // The write that retires v1 fails, as on a full disk: v2's row is not written either.
    sqlite_test::raw_db(file).exec(
        "CREATE TRIGGER full_disk BEFORE UPDATE ON projectionist_catalog WHEN NEW.name = 'tickets_v1' AND "
        "NEW.state = 'retired' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END");
    auto r = run(app.cli, {"switch", "tickets", "--to", "tickets_v2"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("database or disk is full"));
    CHECK(app.router.status().primary == "tickets_v1");  // the router moves only once the catalog has
    CHECK(app.deployment.get<tickets<2>>().state() == pj::projection_state::caught_up);
    CHECK_THAT(run(app.cli, {"status"}).out, !Catch::Contains("both serving"));
    sqlite_test::raw_db(file).exec("DROP TRIGGER full_disk");

    // Two serving rows (written by hand here; a storage that switches in two writes can leave
    // them when the second fails): status says so, and a switch retires the other.
    sqlite_test::raw_db(file).exec("UPDATE projectionist_catalog SET state = 'serving' WHERE name = 'tickets_v2'");
    r = run(app.cli, {"status"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("note: tickets_v1 and tickets_v2 are both serving in the catalog: a switch did "
                                      "not finish, or the catalog was edited (the router's primary is tickets_v1); "
                                      "run 'app switch tickets --to <version>' to retire the other\n"));
    r = run(app.cli, {"switch", "tickets", "--to", "tickets_v2"});
    CHECK(r.status == 0);
    CHECK(app.router.status().primary == "tickets_v2");
    CHECK(app.deployment.get<tickets<1>>().state() == pj::projection_state::retired);
    CHECK_THAT(run(app.cli, {"status"}).out, !Catch::Contains("both serving"));
}

TEST_CASE("cli: a backfill's memory budget and mode", "[cli][sqlite]") {
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    sqlite_app app(dir.file("app.db"));
    append_tickets(app.store);
    REQUIRE(run(app.cli, {"init", "tickets_v2"}).status == 0);
    const std::string head = std::to_string(app.store.head());
    auto& v2 = app.deployment.get<tickets<2>>();

    // Wrong values: exit status 2, the option and what it takes, nothing replayed.
    auto r = run(app.cli, {"backfill", "tickets_v2", "--memory-budget", "lots"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("--memory-budget 'lots': give a size such as 512MiB, 4GiB or 1GB (at least 1 "
                                      "byte), or unbounded"));
    CHECK(run(app.cli, {"backfill", "tickets_v2", "--memory-budget", "0"}).status == 2);
    r = run(app.cli, {"backfill", "tickets_v2", "--mode", "fast"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("--mode 'fast': the modes are auto, bulk and batch"));
    CHECK(v2.status().position == 0);
    CHECK(v2.status().events_applied == 0);

    // A budget: the first line says it, the last what the bulk writes did.
    r = run(app.cli, {"backfill", "tickets_v2", "--memory-budget", "64KiB", "--progress", "lines"});
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    CHECK_THAT(r.out, Catch::StartsWith("backfill tickets_v2: from position 0 to the head at " + head + " (" + head +
                                        " events to go); memory budget 64 KiB\n"));
    CHECK_THAT(r.out, Catch::Contains(" events/s), in bulk: 60 rows written by 1 write; it is caught_up\n"));
    CHECK(v2.status().bulk_rows_read == 0);
    CHECK(v2.status().bulk_flushes == 1);

    // Batch mode, after a reset: no bulk writes, one transaction per batch of 64.
    REQUIRE(run(app.cli, {"reset", "tickets_v2"}).status == 0);
    const auto batches = v2.status().batches_committed;
    r = run(app.cli, {"backfill", "tickets_v2", "--mode", "batch", "--memory-budget", "unbounded"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains(" events to go); memory budget unbounded, mode batch\n"));
    CHECK_THAT(r.out, !Catch::Contains("in bulk"));
    CHECK_THAT(r.out, Catch::Contains("now at position " + head + " (head " + head + ")"));
    CHECK(v2.status().bulk_flushes == 1);
    CHECK(v2.status().batches_committed - batches == (app.store.head() + 63) / 64);

    // Without options, the application's settings again: bulk on SQLite.
    REQUIRE(run(app.cli, {"reset", "tickets_v2"}).status == 0);
    r = run(app.cli, {"backfill", "tickets_v2"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains(" events to go)\n"));
    CHECK_THAT(r.out, Catch::Contains("in bulk: 60 rows written by 1 write"));
    CHECK(v2.status().bulk_flushes == 2);

    // Bulk asked for a version whose tables are no longer private: said, not silently batch.
    append_ticket(app.store, "t-late", "bug", 0, false);
    r = run(app.cli, {"backfill", "tickets_v2", "--mode", "bulk"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::StartsWith("note: --mode bulk rebuilds a version that serves no queries yet; tickets_v2 "
                                        "is caught_up, so its tables are not private and its events are applied a "
                                        "batch at a time\n"));
    CHECK_THAT(r.out, !Catch::Contains("in bulk"));
    CHECK(v2.status().bulk_flushes == 2);
    CHECK(v2.status().position == app.store.head());
    r = run(app.cli, {"backfill", "tickets_v2", "--mode", "batch"});
    CHECK_THAT(r.out, !Catch::Contains("note:"));

    r = run(app.cli, {"backfill", "--help"});
    CHECK_THAT(r.out, Catch::Contains("--memory-budget SIZE") && Catch::Contains("--mode MODE"));
}

TEST_CASE("cli: a small memory budget for a backfill in passes by aggregate", "[cli][sqlite]") {
    // An application that allows passes (its handlers write only their aggregate's row); the
    // operator's budget makes the backfill split, and the last line counts the passes.
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("app.db");
    pj::sqlite_event_store store(file);
    pj::sqlite_storage storage(file);
    sqlite_tickets deployment(store, storage, {.bulk_read_size = 16, .bulk_passes_by_aggregate = true});
    pj::command_line cli(test_options());
    cli.add(deployment);
    append_tickets(store, 200);
    REQUIRE(run(cli, {"init", "tickets_v2"}).status == 0);

    auto r = run(cli, {"backfill", "tickets_v2", "--memory-budget", "2KiB"});
    CHECK(r.status == 0);
    const pj::runner_status s = deployment.get<tickets<2>>().status();
    CHECK(s.bulk_passes >= 2);
    CHECK_THAT(r.out, Catch::Contains(fmt::format(
                          ", in bulk: {} rows written by {} writes{} in {} passes over the log; it is caught_up\n",
                          text::group_digits(s.bulk_rows_flushed), s.bulk_flushes,
                          s.bulk_rows_read == 0 ? std::string() : fmt::format(" ({} read back)", s.bulk_rows_read),
                          s.bulk_passes + 1)));
    CHECK(s.position == store.head());

    // The same rows as a backfill in batch mode.
    const auto rows = [&] {
        std::map<std::string, ticket_row> out;
        auto table = storage.find_table<tickets<2>::table>("tickets_v2");
        REQUIRE(table);
        table->for_each([&](const ticket_row& row) { out.emplace(row.ticket_id, row); });
        return out;
    };
    const auto bulk_rows = rows();
    CHECK(bulk_rows.size() == 200);
    REQUIRE(run(cli, {"reset", "tickets_v2"}).status == 0);
    r = run(cli, {"backfill", "tickets_v2", "--mode", "batch"});
    CHECK(r.status == 0);
    CHECK(rows() == bulk_rows);
}

TEST_CASE("cli: backfill progress on a terminal and in a log", "[cli][progress]") {
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    const auto file = dir.file("app.db");
    auto options = test_options();
    options.progress_interval = 1ms;
    options.progress_line_interval = 0ms;

    SECTION("a terminal: one line redrawn, ending with a full bar") {
        options.terminal = true;
        sqlite_app app(file, options);
        append_tickets(app.store, 300);
        REQUIRE(run(app.cli, {"init", "tickets_v2"}).status == 0);
        const std::string head = text::group_digits(app.store.head());
        auto r = run(app.cli, {"backfill", "tickets_v2"});
        CHECK(r.status == 0);
        CHECK_THAT(r.out, Catch::Contains("\rtickets_v2 [##############################] 100%  " + head + "/" + head +
                                          " events  "));
        // The last redraw may pad with spaces where an earlier, longer line stood.
        CHECK_THAT(r.out, Catch::Matches("[\\s\\S]*ETA 0:00 *\nbackfilled tickets_v2: [\\s\\S]*"));
        CHECK(count_of(r.out, "\n") == 4);  // start, the bar's line, the result, next
    }

    SECTION("a log: plain lines, none after the end") {
        sqlite_app app(file, options);
        append_tickets(app.store, 300);
        REQUIRE(run(app.cli, {"init", "tickets_v2"}).status == 0);
        auto r = run(app.cli, {"backfill", "tickets_v2"});
        CHECK(r.status == 0);
        CHECK(r.out.find('\r') == std::string::npos);
        const std::size_t lines = count_of(r.out, "backfill tickets_v2: ");
        CHECK(lines >= 1);  // the start line; progress lines depend on timing
        std::istringstream in(r.out);
        for (std::string line; std::getline(in, line);)
            if (line.find("% (") != std::string::npos)
                CHECK_THAT(
                    line,
                    Catch::Matches(
                        R"(backfill tickets_v2: \d+% \([\d,]+/[\d,]+ events\), [\d,]+ events/s, ETA (\d+:\d\d|\?))"
                        R"(( - bulk: (reading|applying|flushing))?)"));
    }

    SECTION("the lines themselves") {
        CHECK(cli::progress_bar_line("tickets_v2", 480, 1200, 9600.4, 0.075) ==
              "tickets_v2 [############------------------]  40%  480/1,200 events  9,600 events/s  ETA 0:00");
        CHECK(cli::progress_bar_line("v", 5, 10, 0, std::nullopt, 4) ==
              "v [##--]  50%  5/10 events  0 events/s  ETA ?");
        CHECK(cli::progress_bar_line("v", 0, 0, 0, 0.0, 4) == "v [####] 100%  0/0 events  0 events/s  ETA 0:00");
        CHECK(cli::progress_plain_line("tickets_v2", 2'500'000, 10'000'000, 123456.7, 3725.0) ==
              "backfill tickets_v2: 25% (2,500,000/10,000,000 events), 123,456 events/s, ETA 1:02:05");
        CHECK(cli::progress_plain_line("tickets_v2", 2'500'000, 10'000'000, 123456.7, 3725.0, "flushing") ==
              "backfill tickets_v2: 25% (2,500,000/10,000,000 events), 123,456 events/s, ETA 1:02:05 - bulk: flushing");
        CHECK(cli::progress_bar_line("v", 5, 10, 0, std::nullopt, 4, "applying") ==
              "v [##--]  50%  5/10 events  0 events/s  ETA ? - bulk: applying");
        CHECK(cli::bulk_phase_text("applying", 0) == "applying");
        CHECK(cli::bulk_phase_text("applying", 2) == "applying, pass 3");
        CHECK(cli::bulk_phase_text("", 2).empty());  // batch mode: no phase
        CHECK(cli::progress_plain_line("v", 5, 10, 0, std::nullopt, cli::bulk_phase_text("flushing", 1)) ==
              "backfill v: 50% (5/10 events), 0 events/s, ETA ? - bulk: flushing, pass 2");
        CHECK(cli::run_report_line("tickets_v2", 1200, 10, 5000, 600) ==
              "  tickets_v2: +1,200 events, 120 events/s; position 5,000, lag 600, ETA 0:05");
        CHECK(cli::run_report_line("tickets_v1", 0, 10, 5000, 0) ==
              "  tickets_v1: +0 events, 0 events/s; position 5,000, lag 0, caught up");
        CHECK(cli::run_report_line("tickets_v3", 0, 10, 0, 42) ==
              "  tickets_v3: +0 events, 0 events/s; position 0, lag 42, ETA ?");
    }
}

TEST_CASE("cli: a backfill in a log prints a line per interval, with events/s and the ETA", "[cli][progress]") {
    auto options = test_options();
    options.progress_interval = 1ms;
    options.progress_line_interval = 20ms;
    std::ostringstream out;
    std::atomic<std::uint64_t> position{100};
    const auto started = std::chrono::steady_clock::now();
    {
        cli::backfill_progress progress(out, false, options, "tickets_v2", 100, 1100, [&] { return position += 2; });
        std::this_thread::sleep_for(300ms);  // at least 300 / 20 intervals pass, whatever the load
        progress.finish(true, position);
    }
    const double elapsed_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    const std::string log = out.str();
    CHECK(log.find('\r') == std::string::npos);
    std::size_t lines = 0;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line); ++lines)
        CHECK_THAT(
            line,
            Catch::Matches(R"(backfill tickets_v2: \d+% \([\d,]+/1,000 events\), [\d,]+ events/s, ETA (\d+:\d\d|\?))"));
    CHECK(lines >= 2);                      // a line per interval, not per 10%
    CHECK(lines <= elapsed_ms / 20.0 + 1);  // and never more often than the interval
}

TEST_CASE("cli: the progress lines of a bulk backfill name its phase", "[cli][progress]") {
    auto options = test_options();
    options.progress_interval = 1ms;
    options.progress_line_interval = 10ms;
    std::ostringstream out;
    std::atomic<std::uint64_t> position{0};
    std::atomic<int> looks{0};
    {
        // Reading, applying, then flushing with the position standing still, as a bulk pass does.
        cli::backfill_progress progress(out, false, options, "tickets_v2", 0, 1000, [&]() -> cli::progress_sample {
            const int n = looks++;
            if (n % 30 < 10) return {position += 1, "reading"};
            if (n % 30 < 20) return {position += 3, "applying"};
            return {position, "flushing"};
        });
        std::this_thread::sleep_for(300ms);
        progress.finish(true, position);
    }
    const std::string log = out.str();
    std::size_t lines = 0;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line); ++lines)
        CHECK_THAT(line, Catch::Matches(R"(backfill tickets_v2: \d+% \([\d,]+/1,000 events\), [\d,]+ events/s, )"
                                        R"(ETA (\d+:\d\d|\?) - bulk: (reading|applying|flushing))"));
    CHECK(lines >= 2);
}

TEST_CASE("cli: run --metrics: the address and the options that need it", "[cli][run]") {
    CHECK(cli::parse_listen_address("127.0.0.1:9464") == std::pair<std::string, std::uint16_t>{"127.0.0.1", 9464});
    CHECK(cli::parse_listen_address("[::1]:0") == std::pair<std::string, std::uint16_t>{"::1", 0});
    CHECK_THROWS_WITH(cli::parse_listen_address("9464"), Catch::Contains("give ADDRESS:PORT"));
    CHECK_THROWS_WITH(cli::parse_listen_address("localhost:http"), Catch::Contains("--metrics 'localhost:http'"));
    CHECK_THROWS_WITH(cli::parse_listen_address("localhost:70000"), Catch::Contains("give ADDRESS:PORT"));

    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    sqlite_app app(dir.file("app.db"), test_options());
    auto r = run(app.cli, {"run", "--for", "10ms", "--ready", "tickets_v2"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("--ready needs --metrics"));
    r = run(app.cli, {"run", "--for", "10ms", "--metrics", "127.0.0.1:0", "--ready", "tickets_v9"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err,
               Catch::Contains("--ready 'tickets_v9': no such version; the versions are: tickets_v1, tickets_v2"));
    r = run(app.cli, {"run", "--for", "10ms", "--metrics", "127.0.0.1:0"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out,
               Catch::Matches(
                   "[\\s\\S]*\n  metrics: http://127\\.0\\.0\\.1:\\d+/metrics \\(and /healthz, /readyz\\)\n[\\s\\S]*"));
}

TEST_CASE("cli: parsing of shares, durations and numbers", "[cli]") {
    CHECK(cli::parse_percent("10") == 1000U);
    CHECK(cli::parse_percent("10%") == 1000U);
    CHECK(cli::parse_percent("12.5") == 1250U);
    CHECK(cli::parse_percent("0.01") == 1U);
    CHECK(cli::parse_percent("0") == 0U);
    CHECK(cli::parse_percent("100") == 10000U);
    CHECK(cli::parse_percent("100.00") == 10000U);
    for (const char* bad : {"", "%", "100.01", "101", "1000", "-1", "1.234", "1.", ".5", "1e2", "ten", " 5"})
        CHECK_FALSE(cli::parse_percent(bad));

    CHECK(cli::parse_duration("500ms") == 500ms);
    CHECK(cli::parse_duration("30") == 30s);
    CHECK(cli::parse_duration("30s") == 30s);
    CHECK(cli::parse_duration("5m") == 5min);
    CHECK(cli::parse_duration("2h") == 2h);
    for (const char* bad : {"", "s", "5 s", "5x", "-5s", "1.5s", "99999999999999999999"})
        CHECK_FALSE(cli::parse_duration(bad));

    CHECK(cli::parse_size("4096") == 4096U);
    CHECK(cli::parse_size("512B") == 512U);
    CHECK(cli::parse_size("64KiB") == 65536U);
    CHECK(cli::parse_size("256MiB") == std::size_t{256} << 20);
    CHECK(cli::parse_size("2GiB") == std::size_t{2} << 30);
    CHECK(cli::parse_size("1GB") == 1'000'000'000U);
    CHECK(cli::parse_size("3MB") == 3'000'000U);
    CHECK(cli::parse_size("1TiB") == std::size_t{1} << 40);
    for (const char* bad : {"", "0", "0MiB", "MiB", "5 MiB", "5mib", "5M", "-5MiB", "1.5GiB", "20000000TiB",
                            "99999999999999999999", "unbounded"})
        CHECK_FALSE(cli::parse_size(bad));

    CHECK(text::shown("tickets_v2") == "tickets_v2");
    CHECK(text::shown("a\tb\\c\xff") == "a\\x09b\\x5cc\\xff");
    CHECK(text::shown(std::string(300, 'a')) == std::string(200, 'a') + "...");

    CHECK(text::group_digits(0) == "0");
    CHECK(text::group_digits(999) == "999");
    CHECK(text::group_digits(1000) == "1,000");
    CHECK(text::group_digits(1234567) == "1,234,567");
    CHECK(text::clock_text(4.4) == "0:04");
    CHECK(text::clock_text(754) == "12:34");
    CHECK(text::clock_text(3723) == "1:02:03");
    CHECK(text::elapsed_text(0.0421) == "0.042 s");
    CHECK(text::elapsed_text(3.21) == "3.2 s");
    CHECK(text::elapsed_text(125) == "2:05");
}

}  // namespace cli_test
