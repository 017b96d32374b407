// The `rollout` command of the embedded command line, in a process of its own beside the
// application's: it starts a plan, the application follows it, and `rollout status` shows the
// outcome with the gate and the discrepant keys; `rollout abort` stops one by hand.

#include <catch2/catch.hpp>

#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <projectionist/cli.hpp>

#include "rollout_fixture.hpp"

namespace rollout_cli_test {

using namespace rollout_test;

namespace {

struct outcome {
    int code;
    std::string out;
    std::string err;
};

/// The command line a deploy script runs: the application's registrations over connections of its own.
template <class V2>
struct console {
    app<V2> process;
    pj::command_line cli{pj::command_line_options{.program_name = "app"}};
    explicit console(const place& where) : process(where) {
        cli.add(process.control);
        cli.add(process.rollout);
    }
    outcome run(std::vector<std::string> args) {
        std::ostringstream out, err;
        const int code = cli.run(args, out, err);
        return {code, out.str(), err.str()};
    }
};

/// A database with history, the application with v2 deployed beside v1, and a command line.
template <class V2>
struct scene {
    place where;
    app<V2> application;
    console<V2> admin;
    scene() : where(), application((seed(where), where)), admin(where) { application.deploy_v2(); }
};

const std::vector<std::string> start_args{
    "rollout", "tickets",      "--to", "tickets_v2",      "--steps", "1,10,50,100",       "--every",
    "20ms",    "--min-shadow", "400",  "--expect-change", "closes",  "--max-discrepancy", "0.1%"};

}  // namespace

TEST_CASE("rollout from the command line: a bad v2 is rolled back and the status shows why", "[rollout][cli]") {
    scene<buggy_v2> sc;
    auto& application = sc.application;
    auto& admin = sc.admin;
    watcher w(sc.where);

    auto r = admin.run(start_args);
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("tickets: rollout of tickets_v2 from tickets_v1: running, step 1 of 4 (1%)"));
    CHECK_THAT(r.out, Catch::Contains("steps: [1%] -> 10% -> 50% -> 100%, then serve every query and make it live"));
    CHECK_THAT(r.out, Catch::Contains("at most 0.1% of at least 400 shadow reads differ per step"));
    CHECK_THAT(r.out, Catch::Contains("expected changes: closes"));
    CHECK(admin.run(start_args).code == 1);  // one plan at a time

    application.start_following();
    const auto rec = ask_until_done(application, w, [](const pj::rollout_record&) {});
    application.stop();
    REQUIRE(rec.state == pj::rollout_state::rolled_back);

    r = admin.run({"rollout", "status"});
    INFO(r.out);
    CHECK(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("rolled_back at step 1 of 4 (1%)"));
    CHECK_THAT(r.out, Catch::Contains("failed gate: shadow-read discrepancy"));
    CHECK_THAT(r.out, Catch::Contains("discrepant keys"));
    CHECK_THAT(r.out, Catch::Contains("tickets_v2: {ticket_id: \"T-"));
    CHECK_THAT(r.out, Catch::Contains("!\""));  // the spoiled title, beside the right one
    CHECK(admin.run({"rollout", "status", "tickets"}).out == r.out);

    r = admin.run({"rollout", "abort"});
    CHECK(r.code == 1);
    CHECK_THAT(r.err,
               Catch::Contains("no rollout of tickets is pending or running") && Catch::Contains("is rolled_back"));
}

TEST_CASE("rollout from the command line: status while running, and an abort", "[rollout][cli]") {
    scene<good_v2> sc;
    auto& application = sc.application;
    auto& admin = sc.admin;

    auto args = start_args;
    args[7] = "10m";  // a long first step
    REQUIRE(admin.run(args).code == 0);
    application.rollout.tick();  // the application sees the plan: its reads count from here
    for (long i = 0; i < 50; ++i) (void)application.ask(i);
    application.rollout.tick();  // and reports them
    auto r = admin.run({"rollout", "status"});
    INFO(r.out);
    CHECK_THAT(r.out, Catch::Contains("running, step 1 of 4 (1%) for"));
    CHECK_THAT(r.out, Catch::Contains("shadow reads at this step: 50 compared, 0 differ (0%), from 1 process"));

    r = admin.run({"rollout", "abort", "tickets"});
    CHECK(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("aborted the rollout of tickets_v2 at step 1 of 4 (1%): tickets_v1 serves every "
                                      "query again"));
    application.rollout.tick();
    CHECK_FALSE(application.router.status().candidate);
    CHECK_THAT(admin.run({"rollout", "status"}).out,
               Catch::Contains("aborted") && Catch::Contains("reason: aborted from the command line"));
}

TEST_CASE("rollout from the command line: status while running shows the step's first discrepant keys",
          "[rollout][cli]") {
    scene<buggy_v2> sc;
    auto& application = sc.application;
    auto& admin = sc.admin;

    // A lenient, long first step: the spoiled tickets differ, but the plan keeps running.
    auto args = start_args;
    args[7] = "10m";
    args[9] = "100000";   // --min-shadow
    args.back() = "50%";  // --max-discrepancy
    REQUIRE(admin.run(args).code == 0);
    application.rollout.tick();  // the application sees the plan: its reads count from here
    for (long i = 0; i < ticket_count; ++i) (void)application.ask(i);
    application.rollout.tick();  // and reports them
    const auto r = admin.run({"rollout", "status"});
    INFO(r.out);
    CHECK(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("running, step 1 of 4 (1%) for"));
    CHECK_THAT(r.out, Catch::Contains(fmt::format("shadow reads at this step: {} compared, ", ticket_count)));
    CHECK_THAT(r.out, Catch::Contains("discrepant keys ("));
    CHECK_THAT(r.out, Catch::Contains("tickets_v2: {ticket_id: \"T-"));
    CHECK_THAT(r.out, Catch::Contains("!\""));  // the spoiled title, beside the right one
    CHECK_THAT(r.out, !Catch::Contains("failed gate"));
}

TEST_CASE("rollout from the command line: what a user can get wrong", "[rollout][cli]") {
    scene<good_v2> sc;
    auto& admin = sc.admin;

    auto wrong = [&](std::vector<std::string> args, int code, const std::string& words) {
        const auto r = admin.run(args);
        INFO(r.out << r.err);
        CHECK(r.code == code);
        CHECK_THAT(r.err, Catch::Contains(words));
    };
    wrong({"rollout", "tickets", "--steps", "1,100"}, 2, "missing option --to <version>");
    wrong({"rollout", "tickets", "--to", "tickets_v2", "--steps", "1,1x0"}, 2, "'1x0' is neither a share");
    wrong({"rollout", "tickets", "--to", "tickets_v2", "--every", "soon"}, 2, "--every 'soon'");
    wrong({"rollout", "tickets", "--to", "tickets_v2", "--max-discrepancy", "5 percent"}, 2, "--max-discrepancy");
    wrong({"rollout", "tickets", "--to", "tickets_v2", "--min-shadow", "-3"}, 2, "--min-shadow '-3'");
    wrong({"rollout", "tickets", "--to", "tickets_v9"}, 2, "--to 'tickets_v9': not a version of tickets");
    wrong({"rollout", "tickets", "--to", "tickets_v2", "--expect-change", "colour"}, 2, "unknown column 'colour'");
    wrong({"rollout", "orders", "--to", "orders_v2"}, 2, "unknown projection 'orders'");
    wrong({"rollout", "tickets", "--to", "tickets_v2", "--steps", "50,10,100"}, 1, "the shares must grow");
    wrong({"rollout", "tickets", "--to", "tickets_v2", "--steps", "vip,10,100"}, 2,
          "--steps: no predicate named 'vip' is registered for the rollout of tickets; none is (register one in "
          "code with rollout.add_predicate(name, fn))");
    wrong({"rollout", "status", "--to", "tickets_v2"}, 2, "rollout status takes no option --to");
    CHECK(admin.run({"rollout", "status"}).out == "tickets: no rollout was ever started\n");
    CHECK_THAT(admin.run({"rollout", "--help"}).out, Catch::Contains("usage: app rollout <projection> --to <version>"));
}

}  // namespace rollout_cli_test
