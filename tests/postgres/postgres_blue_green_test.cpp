// The blue-green workflow on PostgreSQL, end to end, through the same public APIs and the same
// embedded command line as on SQLite: v1 serves, v2 (manual kick-off, per aggregate) is
// initialized and backfilled under traffic, verified against v1, rolled out to a share of the
// keys, rolled back, switched to, made live, and v1 deleted. A second "process" (its own store,
// storage, deployment, router and command line on the same schema) sees every step.

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <postgres_test_support.hpp>
#include <projectionist/cli/cli.hpp>
#include <projectionist/postgres.hpp>
#include <tickets_domain.hpp>

namespace pj = projectionist;
using namespace tickets_domain;
using namespace std::chrono_literals;
using Catch::Contains;
using Catch::StartsWith;
using postgres_test::pg_url;
using postgres_test::scoped_schema;

namespace {

using tickets_deployment =
    pj::deployment<pj::runner<tickets<1>, pj::postgres_storage>,
                   pj::runner<tickets<2>, pj::postgres_storage, pj::per_aggregate, pj::manual_kickoff>>;
using tickets_router = pj::router<tickets<1>, tickets<2>>;

pj::command_line_options test_options() {
    pj::command_line_options o;
    o.program_name = "app";
    o.terminal = false;
    o.handle_signals = false;
    o.run_poll = 5ms;
    o.drain_timeout = 1s;
    return o;
}

/// One "process" on the schema.
struct pg_app {
    explicit pg_app(const scoped_schema& schema)
        : store(pg_url(), schema.options()),
          storage(pg_url(), schema.options()),
          deployment(store, storage, {.batch_size = 16}),
          router(storage),
          cli(test_options()) {
        cli.add(deployment, router, {});
    }
    pj::postgres_event_store store;
    pj::postgres_storage storage;
    tickets_deployment deployment;
    tickets_router router;
    pj::command_line cli;
};

struct outcome {
    int status = -1;
    std::string out, err;
};

outcome run(pj::command_line& c, std::vector<std::string> args) {
    std::ostringstream out, err;
    outcome o;
    o.status = c.run(args, out, err);
    o.out = out.str();
    o.err = err.str();
    return o;
}

template <class Store>
void append_tickets(Store& store, int count = 60, int first = 0) {
    for (int i = first; i < first + count; ++i)
        append_ticket(store, "t-" + std::to_string(i), i % 2 == 0 ? "bug" : "question", i % 3, i % 2 == 0);
}

/// A query as an application writes it: the routed version's row for a ticket.
std::optional<ticket_row> find_ticket(pg_app& app, const std::string& user, const std::string& ticket) {
    return app.router.query(user, [&]<class P>(std::type_identity<P>) -> std::optional<ticket_row> {
        auto table = app.storage.find_table<typename P::table>(pj::name_of<P>);
        if (!table) return std::nullopt;
        return table->find(ticket);
    });
}

}  // namespace

TEST_CASE("the blue-green workflow on PostgreSQL, through the command line", "[postgres][cli][blue_green]") {
    scoped_schema schema;
    pg_app app(schema);
    append_tickets(app.store);
    app.deployment.catch_up();
    app.deployment.serve("tickets_v1");
    const std::string head = std::to_string(app.store.head());

    auto r = run(app.cli, {"status"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Contains("tickets_v1  serving   no         " + head + "   " + head + "    0  global"));
    CHECK_THAT(r.out, Contains("tickets_v2  declared  no"));

    r = run(app.cli, {"backfill", "tickets_v2"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Contains("run init tickets_v2 first"));

    r = run(app.cli, {"init", "tickets_v2"});
    CHECK(r.status == 0);
    CHECK(app.storage.has_table("tickets_v2"));

    // The application keeps appending while v2 backfills.
    append_tickets(app.store, 5, 100);
    r = run(app.cli, {"backfill", "tickets_v2"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Contains("it is caught_up"));
    CHECK(app.deployment.get<tickets<2>>().position() == app.store.head());
    r = run(app.cli, {"catch-up"});
    CHECK(r.status == 0);

    // Verification: v2 changes status and reopened on purpose.
    r = run(app.cli, {"verify", "tickets_v1", "tickets_v2"});
    CHECK(r.status == 1);
    CHECK_THAT(r.out, Contains("OVERALL VERDICT: FAIL") && Contains("'reopened'"));
    r = run(app.cli, {"verify", "tickets_v1", "tickets_v2", "--expect-change", "status,reopened", "--key", "t-1",
                      "--key", "t-3"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Contains("OVERALL VERDICT: PASS") && Contains("spot check"));
    // The same comparison through the library: every row equal but for the expected columns.
    {
        auto v1 = app.storage.find_table<tickets<1>::table>("tickets_v1");
        auto v2 = app.storage.find_table<tickets<2>::table>("tickets_v2");
        pj::verify::diff_options options;
        options.expected_changes = {"status", "reopened"};
        const auto diff = pj::verify::structural_diff(v1, v2, options);
        CHECK(diff.pass);
        CHECK(v1->size() == 65);
        CHECK(v2->size() == 65);
        CHECK(v2->find("t-2")->reopened == 2);
        CHECK(v1->find("t-2")->reopened == 0);
    }

    // 10%, seen by another process's router; then rolled back.
    r = run(app.cli, {"switch", "tickets", "--to", "tickets_v2", "--percent", "10"});
    CHECK(r.status == 0);
    CHECK(app.router.describe().basis_points == 1000);
    {
        pg_app other(schema);
        CHECK(other.router.describe().candidate == "tickets_v2");
        CHECK(other.router.describe().basis_points == 1000);
        int on_v2 = 0;
        for (int u = 0; u < 1000; ++u) on_v2 += other.router.route("user-" + std::to_string(u)) == "tickets_v2";
        CHECK(on_v2 > 50);
        CHECK(on_v2 < 150);
        std::string v2_user;
        for (int u = 0; v2_user.empty(); ++u)
            if (other.router.route("user-" + std::to_string(u)) == "tickets_v2") v2_user = "user-" + std::to_string(u);
        CHECK(find_ticket(other, v2_user, "t-2")->reopened == 2);
        std::string v1_user;
        for (int u = 0; v1_user.empty(); ++u)
            if (other.router.route("user-" + std::to_string(u)) == "tickets_v1") v1_user = "user-" + std::to_string(u);
        CHECK(find_ticket(other, v1_user, "t-2")->reopened == 0);
    }
    r = run(app.cli, {"rollback", "tickets"});
    CHECK(r.status == 0);
    CHECK_FALSE(app.router.describe().candidate);

    // All traffic to v2, then live.
    r = run(app.cli, {"switch", "tickets", "--to", "tickets_v2"});
    CHECK(r.status == 0);
    CHECK(app.deployment.get<tickets<2>>().state() == pj::projection_state::serving);
    CHECK(app.deployment.get<tickets<1>>().state() == pj::projection_state::retired);
    CHECK(app.router.route("any-user") == "tickets_v2");
    CHECK(find_ticket(app, "any-user", "t-2")->reopened == 2);
    r = run(app.cli, {"live", "tickets_v2"});
    CHECK(r.status == 0);
    CHECK(app.deployment.get<tickets<2>>().status().live);

    // Rollback to v1 (it kept following), then forward again.
    append_tickets(app.store, 3, 200);
    r = run(app.cli, {"catch-up"});
    CHECK(r.status == 0);
    r = run(app.cli, {"rollback", "tickets"});
    CHECK(r.status == 0);
    CHECK(app.router.route("any-user") == "tickets_v1");
    CHECK(find_ticket(app, "any-user", "t-200").has_value());
    r = run(app.cli, {"switch", "tickets", "--to", "tickets_v2"});
    CHECK(r.status == 0);

    // Delete v1: its tables, checkpoint and catalog row go; v2 is untouched.
    r = run(app.cli, {"delete", "tickets_v2"});
    CHECK(r.status == 1);
    r = run(app.cli, {"delete", "tickets_v1"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, StartsWith("deleted tickets_v1"));
    CHECK_FALSE(app.storage.has_table("tickets_v1"));
    CHECK_FALSE(app.storage.find_catalog("tickets_v1").has_value());
    CHECK(app.storage.find_table<tickets<2>::table>("tickets_v2")->size() == 68);
    CHECK(app.deployment.get<tickets<1>>().state() == pj::projection_state::deleted);

    // A later catch-up does not bring v1 back; v2 follows new events.
    append_tickets(app.store, 1, 300);
    r = run(app.cli, {"catch-up"});
    CHECK(r.status == 0);
    CHECK_FALSE(app.storage.has_table("tickets_v1"));
    CHECK(app.storage.find_table<tickets<2>::table>("tickets_v2")->contains("t-300"));
    r = run(app.cli, {"status"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Contains("tickets_v1  deleted") && Contains("tickets_v2  serving  yes"));
}
