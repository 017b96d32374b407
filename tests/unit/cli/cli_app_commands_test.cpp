// The command line beyond the life cycle: verify over every table of two versions (or the one
// --table names), the router's named predicate switched on, off and shown, and an application's
// own commands beside the built-in ones.

#include <catch2/catch.hpp>

#include <chrono>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/hana/define_struct.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <projectionist/cli.hpp>
#include <projectionist/deploy.hpp>
#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

#include <cli_test_support.hpp>

namespace cli_app_commands_test {

namespace pj = projectionist;
using namespace tickets_domain;
using namespace std::chrono_literals;
using Catch::Contains;
using Catch::StartsWith;
using cli_test::run;
using cli_test::test_options;

namespace {

struct type_row {
    BOOST_HANA_DEFINE_STRUCT(type_row, (std::string, type), (int, tickets));
};
struct reopen_row {
    BOOST_HANA_DEFINE_STRUCT(reopen_row, (std::string, ticket_id), (int, times));
};

/// A help desk with a table per ticket and a table per type; v2 adds a table of reopenings and
/// counts reopenings in the tickets table.
template <unsigned V>
struct desk : pj::projection<"desk", V, ticket_stream> {
    using ticket_table = pj::table<ticket_row, &ticket_row::ticket_id>;
    using type_table = pj::table<type_row, &type_row::type, "types">;
    using reopen_table = pj::table<reopen_row, &reopen_row::ticket_id, "reopenings">;
    using tables = std::conditional_t<V == 1, pj::tables<ticket_table, type_table>,
                                      pj::tables<ticket_table, type_table, reopen_table>>;

    void on(const ticket_registered& e, auto& ctx) {
        ctx.table().insert({e.ticket_id, e.type, "open", 0});
        auto& types = ctx.table(pj::rows<type_row>);
        if (!types.update(e.type, [](type_row& r) { ++r.tickets; })) types.insert({e.type, 1});
    }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
    }
    void on(const ticket_reopened& e, auto& ctx) requires(V >= 2) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { ++r.reopened; });
        auto& reopenings = ctx.table(pj::rows<reopen_row>);
        if (!reopenings.update(e.ticket_id, [](reopen_row& r) { ++r.times; })) reopenings.insert({e.ticket_id, 1});
    }
};

using desk_deployment = pj::deployment<pj::runner<desk<1>, pj::memory_storage>,
                                       pj::runner<desk<2>, pj::memory_storage, pj::manual_kickoff>>;
using desk_router = pj::router<desk<1>, desk<2>>;

struct desk_app {
    desk_app() : deployment(store, storage), router(storage), cli(test_options()) {
        cli.add(deployment, router);
        for (int i = 0; i < 12; ++i)
            append_ticket(store, "t-" + std::to_string(i), i % 3 == 0 ? "bug" : "question", i % 4, i % 2 == 0);
        deployment.catch_up();
        deployment.serve("desk_v1");
        deployment.init("desk_v2");
        deployment.backfill("desk_v2");
    }
    pj::memory_event_store store;
    pj::memory_storage storage;
    desk_deployment deployment;
    desk_router router;
    pj::command_line cli;
};

}  // namespace

TEST_CASE("cli verify compares every table of two versions, or the one --table names", "[cli][verify]") {
    desk_app app;
    // v2 counts reopenings in the tickets table: without saying so, verify fails on that table
    auto r = run(app.cli, {"verify", "desk_v1", "desk_v2"});
    CHECK(r.status == 1);
    CHECK_THAT(r.out, Contains("== desk_v1 against desk_v2\n") && Contains("== desk_v1_types against desk_v2_types\n"));
    CHECK_THAT(r.err, Contains("note: desk_v2_reopenings has no counterpart in desk_v1: not compared\n"));
    r = run(app.cli, {"verify", "desk_v1", "desk_v2", "--expect-change", "reopened"});
    CHECK(r.status == 0);
    CHECK(r.out.find("OVERALL VERDICT: FAIL") == std::string::npos);
    CHECK_THAT(r.out, Contains("OVERALL VERDICT: PASS"));

    // one table, by its name in either version or by its suffix
    for (const char* table : {"desk_v2_types", "desk_v1_types", "types"}) {
        INFO(table);
        r = run(app.cli, {"verify", "desk_v1", "desk_v2", "--table", table});
        CHECK(r.status == 0);
        CHECK(r.out.find("== ") == std::string::npos);  // one report, as for a single table
        CHECK_THAT(r.out, Contains("desk_v1_types") && Contains("desk_v2_types") && Contains("PASS"));
    }
    r = run(app.cli, {"verify", "desk_v1", "desk_v2", "--table", "desk_v1"});
    CHECK(r.status == 1);  // the main tables: reopened differs
    r = run(app.cli,
            {"verify", "desk_v1", "desk_v2", "--table", "desk_v1", "--key", "t-1", "--expect-change", "reopened"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Contains("spot check"));

    // a table only one version has, and an unknown one: usage errors that name the tables
    r = run(app.cli, {"verify", "desk_v1", "desk_v2", "--table", "reopenings"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("table 'reopenings' is desk_v2's only: desk_v1 has no table with the suffix "
                               "'reopenings' to compare it with"));
    r = run(app.cli, {"verify", "desk_v1", "desk_v2", "--table", "nope"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("unknown table 'nope' of desk_v1 and desk_v2; their tables are: desk_v1, "
                               "desk_v1_types, desk_v2, desk_v2_types, desk_v2_reopenings"));
    // a column of any table may be expected to change; an unknown one is refused
    r = run(app.cli, {"verify", "desk_v1", "desk_v2", "--expect-change", "times,reopened"});
    CHECK(r.status == 0);
    r = run(app.cli, {"verify", "desk_v1", "desk_v2", "--expect-change", "colour"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("unknown column 'colour'"));

    // --json: an array of the reports, one per pair of tables
    r = run(app.cli, {"verify", "desk_v1", "desk_v2", "--json", "--expect-change", "reopened"});
    CHECK(r.status == 0);
    const boost::json::value json = boost::json::parse(r.out);
    REQUIRE(json.is_array());
    CHECK(json.as_array().size() == 2);
    r = run(app.cli, {"verify", "desk_v1", "desk_v2", "--json", "--table", "types"});
    CHECK(boost::json::parse(r.out).is_object());
}

/// Tickets by id. Version 1 cannot close `t-3`: with skip_to_dead_letter, per aggregate, that
/// close becomes a dead letter and t-3's later events are parked. Version 2 has it fixed.
template <unsigned V>
struct fussy : pj::projection<"fussy", V, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open", 0}); }
    void on(const ticket_closed& e, auto& ctx) {
        if (V == 1 && e.ticket_id == "t-3") throw std::runtime_error("cannot close t-3:\nthe ledger is locked");
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
    }
    void on(const ticket_reopened& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { ++r.reopened; });
    }
};

TEST_CASE("cli dead-letters lists the events a version skipped, and says when there are none", "[cli][dead_letter]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    pj::deployment<pj::runner<fussy<1>, pj::memory_storage, pj::per_aggregate, pj::skip_to_dead_letter>,
                   pj::runner<fussy<2>, pj::memory_storage>>
        deployment(store, storage);
    pj::command_line cli(test_options());
    cli.add(deployment);

    auto r = run(cli, {"dead-letters", "fussy_v1"});
    CHECK(r.status == 0);
    CHECK(r.out == "fussy_v1 has no dead letters\n");

    append_ticket(store, "t-1", "bug", 0, true);
    append_ticket(store, "t-3", "bug", 0, true);                      // registered (3), closed (4): fails
    store.append(ticket_stream{}, "t-3", 2, ticket_reopened{"t-3"});  // 5: parked behind it
    append_ticket(store, "t-5", "question", 0, false);
    deployment.catch_up();

    r = run(cli, {"dead-letters", "fussy_v1"});
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    CHECK_THAT(r.out, StartsWith("fussy_v1: 2 dead letters (1 parked behind an earlier failure)\n"));
    CHECK_THAT(r.out, Contains("  position  stream  aggregate  event            parked  reason\n"));
    // the reason is shown on one line, its control characters escaped
    CHECK_THAT(r.out, Contains("         4  ticket  t-3        ticket.closed    no      cannot close t-3:\\x0athe "
                               "ledger is locked\n"));
    CHECK_THAT(r.out, Contains("         5  ticket  t-3        ticket.reopened  yes"));
    CHECK(r.out.find("t-1") == std::string::npos);
    CHECK(r.out.find("t-5") == std::string::npos);
    // the fixed version skipped nothing
    CHECK(run(cli, {"dead-letters", "fussy_v2"}).out == "fussy_v2 has no dead letters\n");

    // an unknown version, no version: usage errors
    r = run(cli, {"dead-letters", "fussy_v3"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("fussy_v3") && Contains("fussy_v1"));
    r = run(cli, {"dead-letters"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err,
               StartsWith("app dead-letters: missing argument <version>\n\nusage: app dead-letters <version>\n"));
    CHECK_THAT(run(cli, {"help"}).out,
               Contains("dead-letters <version>") && Contains("list the events a version skipped"));
}

TEST_CASE("cli predicate switches a named predicate on and off and shows it", "[cli][router]") {
    desk_app app;
    app.router.register_predicate("internal-users", [](std::string_view u) { return u.starts_with("staff-"); });
    app.router.register_predicate("beta", [](std::string_view u) { return u.ends_with("-beta"); });
    CHECK_THROWS_WITH(app.router.register_predicate("beta", [](std::string_view) { return true; }),
                      Contains("a predicate named 'beta' is registered already"));
    CHECK_THROWS_WITH(app.router.register_predicate("Beta Users", [](std::string_view) { return true; }),
                      Contains("a predicate's name is made of a-z, 0-9, '-' and '_'"));

    auto r = run(app.cli, {"predicate", "desk"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, StartsWith("  predicates: beta, internal-users; on: none\n"));
    CHECK(run(app.cli, {"switch", "desk", "--to", "desk_v2", "--percent", "0"}).status == 0);

    r = run(app.cli, {"predicate", "desk", "--on", "internal-users"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, StartsWith("desk: predicate internal-users is on: the keys it accepts go to the candidate\n"));
    CHECK_THAT(r.out,
               Contains("on: internal-users\n") && Contains("candidate desk_v2 at 0% (+ predicate internal-users)"));
    CHECK(app.router.route("staff-7") == "desk_v2");
    CHECK(app.router.route("someone") == "desk_v1");
    CHECK(app.storage.find_setting("projectionist.router.desk.predicate") == "internal-users");
    // the status shows it beside the candidate's share
    CHECK_THAT(run(app.cli, {"status"}).out, Contains("(+ predicate internal-users)"));

    // one predicate at a time: another name replaces it
    CHECK(run(app.cli, {"predicate", "desk", "--on", "beta"}).status == 0);
    CHECK(app.router.route("staff-7") == "desk_v1");
    CHECK(app.router.route("sam-beta") == "desk_v2");

    r = run(app.cli, {"predicate", "desk", "--off"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, StartsWith("desk: the predicate is off: keys go by the share alone\n"));
    CHECK(app.router.route("sam-beta") == "desk_v1");
    CHECK_FALSE(app.router.enabled_predicate().has_value());

    // refusals: an unknown name (listing the registered ones), both options, no projection
    r = run(app.cli, {"predicate", "desk", "--on", "vip"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("no predicate named 'vip' is registered; the registered ones are: beta, "
                               "internal-users"));
    CHECK_FALSE(app.router.enabled_predicate().has_value());
    r = run(app.cli, {"predicate", "desk", "--on", "beta", "--off"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("give --on NAME or --off, not both"));
    r = run(app.cli, {"predicate", "desk_v1"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("unknown projection 'desk_v1' ('desk_v1' is a version of desk)"));

    // a predicate switched on before this process registered it takes effect when it does
    CHECK(run(app.cli, {"predicate", "desk", "--on", "beta"}).status == 0);
    desk_router later(app.storage);
    CHECK(later.enabled_predicate() == "beta");
    CHECK_THAT(later.status().to_string(), Contains("predicate beta on but not registered in this process"));
    CHECK(later.route("sam-beta") == "desk_v1");
    later.register_predicate("beta", [](std::string_view u) { return u.ends_with("-beta"); });
    CHECK(later.route("sam-beta") == "desk_v2");
}

TEST_CASE("cli: an application adds its own commands", "[cli][custom]") {
    desk_app app;
    app.cli.add_command({.name = "tickets-of",
                         .synopsis = "<type> [--open]",
                         .min_args = 1,
                         .max_args = 1,
                         .summary = "list the tickets of a type, from the version that serves",
                         .description = "Reads the serving version's table.\n",
                         .options = {{"open", "", false, "only the open ones"}},
                         .run = [&](pj::command_call& call) {
                             if (call.args()[0].empty()) call.usage_error("give a type");
                             auto& c = call.controller("desk");
                             const auto serving = c.routing()->primary;
                             int n = 0;
                             app.storage.table<desk<1>>().for_each([&](const ticket_row& row) {
                                 if (row.type == call.args()[0] && (!call.has("open") || row.status == "open")) ++n;
                             });
                             call.out() << fmt::format("{}: {} {} tickets\n", serving, n, call.args()[0]);
                             return n > 0 ? 0 : 1;
                         }});
    auto r = run(app.cli, {"tickets-of", "bug"});
    CHECK(r.status == 0);
    CHECK(r.out == "desk_v1: 4 bug tickets\n");
    r = run(app.cli, {"tickets-of", "bug", "--open"});  // v1 ignores reopenings: every bug is closed
    CHECK(r.status == 1);
    CHECK(r.out == "desk_v1: 0 bug tickets\n");
    CHECK(run(app.cli, {"tickets-of", "feature"}).status == 1);

    // parsed like the built-in commands: arguments, options, --help, usage errors
    r = run(app.cli, {"tickets-of"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, StartsWith("app tickets-of: missing argument <type>\n\nusage: app tickets-of <type> [--open]\n"));
    r = run(app.cli, {"tickets-of", "bug", "--closed"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("unknown option '--closed'; the options are: --open, --help"));
    r = run(app.cli, {"tickets-of", ""});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, StartsWith("app tickets-of: give a type\n"));
    r = run(app.cli, {"tickets-of", "--help"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, StartsWith("usage: app tickets-of <type> [--open]\n\nlist the tickets of a type") &&
                          Contains("Reads the serving version's table.") && Contains("--open"));
    CHECK(r.out == app.cli.command_usage("tickets-of"));
    CHECK(run(app.cli, {"help", "tickets-of"}).out == r.out);
    r = run(app.cli, {"help"});
    CHECK_THAT(r.out, Contains("this application's commands:\n  tickets-of <type>") &&
                          Contains("list the tickets of a type, from the version that serves"));
    r = run(app.cli, {"frobnicate"});
    CHECK_THAT(r.err, Contains("predicate, help, tickets-of\n"));

    // an error it throws: exit status 1, the message
    app.cli.add_command({.name = "fail", .summary = "fails", .run = [](pj::command_call& call) -> int {
                             (void)call.controller("desk");
                             throw pj::error("projectionist: it failed");
                         }});
    r = run(app.cli, {"fail"});
    CHECK(r.status == 1);
    CHECK(r.err == "projectionist: it failed\n");

    // refused definitions
    CHECK_THROWS_WITH(app.cli.add_command({.name = "status", .run = [](pj::command_call&) { return 0; }}),
                      Contains("there is a command 'status' already"));
    CHECK_THROWS_WITH(app.cli.add_command({.name = "tickets-of", .run = [](pj::command_call&) { return 0; }}),
                      Contains("there is a command 'tickets-of' already"));
    CHECK_THROWS_WITH(app.cli.add_command({.name = "Show Orders", .run = [](pj::command_call&) { return 0; }}),
                      Contains("a command's name is a-z, then a-z, 0-9 and '-'"));
    CHECK_THROWS_WITH(app.cli.add_command({.name = "nothing"}), Contains("give it a run"));
}

}  // namespace cli_app_commands_test
