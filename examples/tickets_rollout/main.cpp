// Rollouts that promote or roll back by themselves, end to end, on one SQLite file.
//
// v1 of the tickets read model serves. v2 fixes its bug (a reopened ticket stays "closed") and
// counts reopenings; a deploy script starts its rollout with one command, and the application,
// which keeps serving queries and taking new events, promotes it step by step (1, 10, 50, 100%)
// and makes it live, with no further command. Then v3 arrives with a bug in 2% of its keys; its
// rollout is rolled back by itself at the first step, the status names the gate and shows the
// keys with both answers, and v3 gets no query after that.
//
// The application and the command line are two sets of objects over the same file, as two
// processes would be. Every step is printed; the program checks each outcome and exits 1 if one
// is wrong.
//
// Usage: tickets_rollout [--keep] [DATABASE]   (default: a fresh file in the temp directory, removed
// at the end unless --keep; a DATABASE given must not exist yet)

#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>

#include <projectionist/cli.hpp>
#include <projectionist/deploy.hpp>
#include <projectionist/deploy/rollout/rollout.hpp>
#include <projectionist/sqlite.hpp>

#include "../common/tickets_events.hpp"

namespace pj = projectionist;

// ---- read models ---------------------------------------------------------------------------------

struct ticket_v1 {
    BOOST_HANA_DEFINE_STRUCT(ticket_v1, (std::string, ticket_id), (std::string, type), (std::string, status));
};
struct ticket_v2 {
    BOOST_HANA_DEFINE_STRUCT(ticket_v2, (std::string, ticket_id), (std::string, type), (std::string, status),
                             (int, reopened));
};
/// What the dashboard shows, from any version (v1 does not count reopenings: -1).
struct ticket_answer {
    BOOST_HANA_DEFINE_STRUCT(ticket_answer, (std::string, ticket_id), (std::string, type), (std::string, status),
                             (int, reopened));
};

// ---- three versions ------------------------------------------------------------------------------
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

/// v2 fixes reopening; v3 "normalizes" ticket ids and gets 2% of them wrong (a trailing space),
/// which no count of the structural diff can see: only reading the tickets does.
template <unsigned V>
requires(V >= 2) struct tickets<V> : pj::projection<"tickets", V, ticket_stream> {
    using table = pj::table<ticket_v2, &ticket_v2::ticket_id>;
    static std::string key(const std::string& id) { return V == 3 && pj::routing_bucket(id) < 200 ? id + " " : id; }
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({key(e.ticket_id), e.type, "open", 0}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(key(e.ticket_id), [](ticket_v2& t) { t.status = "closed"; });
    }
    void on(const ticket_reopened& e, auto& ctx) {
        ctx.table().update(key(e.ticket_id), [](ticket_v2& t) {
            t.status = "open";
            ++t.reopened;
        });
    }
};

using tickets_deployment = pj::deployment<pj::runner<tickets<1>, pj::sqlite_storage>,
                                          pj::runner<tickets<2>, pj::sqlite_storage, pj::manual_kickoff>,
                                          pj::runner<tickets<3>, pj::sqlite_storage, pj::manual_kickoff>>;
using tickets_router = pj::router<tickets<1>, tickets<2>, tickets<3>>;

namespace {

int failures = 0;
void check(bool ok, std::string_view what) {
    fmt::print("  [{}] {}\n", ok ? "ok" : "FAILED", what);
    if (!ok) ++failures;
}

/// One ticket's life: registered; three in four closed; one in five of those reopened.
void ticket_life(pj::sqlite_event_store& store, int i) {
    const std::string id = fmt::format("T-{:05}", i);
    auto v = store.append(ticket_stream{}, id, 0, ticket_registered{id, i % 3 ? "bug" : "question"}).version;
    if (i % 4 != 0) v = store.append(ticket_stream{}, id, v, ticket_closed{id}).version;
    if (i % 5 == 1 && i % 4 != 0) store.append(ticket_stream{}, id, v, ticket_reopened{id});
}

/// What one process holds: its connections, the deployment, the router, the controller, the rollout.
struct process {
    pj::sqlite_event_store store;
    pj::sqlite_storage storage;
    tickets_deployment deployment{store, storage};
    tickets_router router{storage};
    pj::controller<tickets_deployment, tickets_router> control{deployment, router};
    pj::rollout<tickets_router> rollout;
    explicit process(const std::string& file)
        : store(file), storage(file), rollout(control, router, storage, {.interval = std::chrono::milliseconds(5)}) {}
};

/// The application: serves the dashboard's queries (with shadow reads) on a connection of its
/// own, while a thread follows the log and the rollout plan.
struct application : process {
    pj::sqlite_storage query_storage;
    long served_by[4] = {0, 0, 0, 0};
    std::jthread follower;
    explicit application(const std::string& file) : process(file), query_storage(file) {}

    std::optional<ticket_answer> dashboard(long user, int ticket) {
        const std::string id = fmt::format("T-{:05}", ticket);
        return rollout.shadow_query(fmt::format("user-{}", user),
                                    [&]<class P>(std::type_identity<P>) -> std::optional<ticket_answer> {
                                        ++served_by[P::version];
                                        auto table = query_storage.find_table<typename P::table>(pj::name_of<P>);
                                        auto row = table ? table->find(id) : std::nullopt;
                                        if (!row) return std::nullopt;
                                        if constexpr (P::version == 1)
                                            return ticket_answer{row->ticket_id, row->type, row->status, -1};
                                        else
                                            return ticket_answer{row->ticket_id, row->type, row->status, row->reopened};
                                    });
    }
    void start() {
        follower = std::jthread([this](std::stop_token stop) { rollout.run(stop); });
    }
};

/// The deploy script's command line: `app <args...>`, printed with its output.
int command(pj::command_line& cli, std::vector<std::string> args) {
    std::ostringstream out, err;
    fmt::print("\n  $ app");
    for (const auto& a : args) fmt::print(" {}", a);
    fmt::print("\n");
    const int code = cli.run(args, out, err);
    for (const auto* text : {&out, &err}) {
        std::istringstream lines(text->str());
        for (std::string line; std::getline(lines, line);) fmt::print("    {}\n", line);
    }
    return code;
}

/// Serves the dashboard and takes new tickets until the plan stops moving; prints each step.
pj::rollout_record serve_until_done(application& app, pj::sqlite_event_store& writer, int& next_ticket) {
    std::size_t shown = 99;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    for (long q = 0;; ++q) {
        (void)app.dashboard(q, static_cast<int>(q % next_ticket));
        if (q % 200 == 0) ticket_life(writer, next_ticket++);  // the log keeps growing meanwhile
        if (q % 20 != 0) continue;
        const auto r = pj::find_rollout(app.query_storage, "tickets").value();
        if (r.state == pj::rollout_state::running && r.step != shown) {
            shown = r.step;
            fmt::print("  the application is at {}\n", r.step_text());
        }
        if (!pj::active(r.state) || std::chrono::steady_clock::now() > deadline) return r;
    }
}

int usage(std::string_view problem) {
    fmt::print(stderr, "tickets_rollout: {}\nusage: tickets_rollout [--keep] [DATABASE]\n", problem);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    bool keep = false;
    std::string file;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--keep")
            keep = true;
        else if (arg == "--help" || arg == "-h")
            return fmt::print("usage: tickets_rollout [--keep] [DATABASE]\n"), 0;
        else if (arg.starts_with("-"))
            return usage(fmt::format("unknown option '{}'", arg));
        else if (arg.empty())
            return usage("the database path is empty");
        else if (!file.empty())
            return usage(fmt::format("one database path only (got '{}' and '{}')", file, arg));
        else
            file = std::string(arg);
    }
    const bool own_file = file.empty();
    int next_ticket = 0;
    try {
        if (own_file)  // a fresh file of its own, so that an interrupted earlier run is never in the way
            file = (std::filesystem::temp_directory_path() / fmt::format("tickets-rollout-{}.db", ::getpid())).string();
        if (std::filesystem::exists(file))
            return usage(fmt::format("'{}' exists; the demo starts from an empty database", file));

        fmt::print("1. v1 serves; v2 and v3 are deployed beside it and backfilled\n");
        pj::sqlite_event_store writer(file);
        for (; next_ticket < 2000; ++next_ticket) ticket_life(writer, next_ticket);
        application app(file);
        app.control.catch_up("tickets_v1");
        app.control.switch_to("tickets_v1");
        for (auto v : {"tickets_v2", "tickets_v3"}) {
            app.control.init(v);
            app.control.backfill(v);
        }
        check(app.router.status().primary == "tickets_v1", "tickets_v1 serves every query");

        process console_process(file);  // the deploy script's process
        pj::command_line cli(pj::command_line_options{.program_name = "app"});
        cli.add(console_process.control);
        cli.add(console_process.rollout);

        fmt::print("\n2. one command starts the rollout of v2; the application does the rest\n");
        const int started =
            command(cli, {"rollout", "tickets", "--to", "tickets_v2", "--steps", "1,10,50,100", "--every", "100ms",
                          "--min-shadow", "300", "--max-discrepancy", "0.1%", "--expect-change", "status,reopened"});
        check(started == 0, "the structural diff passed and the first step began");
        app.start();
        auto r = serve_until_done(app, writer, next_ticket);
        check(r.state == pj::rollout_state::completed, "the rollout of tickets_v2 completed by itself");
        app.follower = {};  // stops and joins: the application pauses between two batches
        app.control.refresh();
        check(app.router.status().primary == "tickets_v2", "tickets_v2 serves every query");
        check(app.control.status_of("tickets_v2").live, "tickets_v2 is live");
        check(app.control.status_of("tickets_v1").state == pj::projection_state::retired,
              "tickets_v1 is retired, following the log for a rollback");
        const auto shadow = app.router.shadow_stats();
        check(shadow.discrepancies == 0,
              "v2 differs from v1 only in status and reopened, the expected changes: no discrepancy");
        fmt::print("  ({} shadow reads compared; {} differed only until both versions had applied a new event)\n",
                   shadow.compared, shadow.settled);
        for (const auto& d : app.router.discrepancies())
            fmt::print("  differs for {}: {} says {}, {} says {}{}\n", d.routing_key, d.primary, d.primary_value,
                       d.candidate, d.candidate_value, d.error.empty() ? "" : "; " + d.error);
        command(cli, {"rollout", "status"});

        fmt::print("\n3. v3 has a bug in 2% of its keys: its rollout rolls back by itself\n");
        check(command(cli, {"rollout", "tickets", "--to", "tickets_v3", "--steps", "1,10,50,100", "--every", "100ms",
                            "--min-shadow", "300", "--max-discrepancy", "0.1%"}) == 0,
              "the structural diff cannot see the bug: the first step began");
        app.start();
        r = serve_until_done(app, writer, next_ticket);
        check(r.state == pj::rollout_state::rolled_back && r.step == 0,
              "the rollout of tickets_v3 was rolled back at the first step");
        check(r.gate == "shadow-read discrepancy", "the gate that failed: shadow-read discrepancy");
        check(!r.discrepant.empty() && r.discrepant.front().candidate_value == "(none)",
              "the discrepant keys are recorded with both answers (v3 cannot find them)");
        const long v3_before = app.served_by[3];
        for (long q = 0; q < 1000; ++q) (void)app.dashboard(q, static_cast<int>(q % 2000));
        check(app.served_by[3] == v3_before, "no query reaches tickets_v3 after the roll-back");
        check(app.router.status().primary == "tickets_v2" && !app.router.status().candidate,
              "tickets_v2 still serves every query");
        command(cli, {"rollout", "status"});
    } catch (const pj::error& e) {  // a path SQLite cannot open, say
        fmt::print(stderr, "tickets_rollout: {}\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        fmt::print(stderr, "tickets_rollout: {}\n", e.what());
        return 1;
    }
    if (own_file && !keep)
        for (const auto* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(file + suffix);
    fmt::print("\n{}\n", failures == 0 ? "all steps as expected" : fmt::format("{} checks FAILED", failures));
    return failures == 0 ? 0 : 1;
}
