// The blue-green workflow on the backend the executable was built for, through the library's
// public API: v1 serves; v2 (manual kick-off, per aggregate) is initialized and backfilled while
// events keep coming, verified against v1, rolled out to a share of the keys (a toggle that a
// second "process" on the same database sees), switched to, made live, rolled back to v1 and
// forward again, and v1 deleted.

#include <backend_suite.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <projectionist/cli/cli.hpp>
#include <projectionist/deploy/deployment.hpp>
#include <projectionist/deploy/router.hpp>
#include <projectionist/deploy/verify.hpp>

#include <cli_test_support.hpp>

using namespace backend_test;
using Catch::Contains;
using Catch::StartsWith;
using namespace std::chrono_literals;

namespace {

namespace verify = pj::verify;

using tickets_deployment =
    pj::deployment<pj::runner<tickets<1>, backend::storage_type>,
                   pj::runner<tickets<2>, backend::storage_type, pj::per_aggregate, pj::manual_kickoff>>;
using tickets_router = pj::router<tickets<1>, tickets<2>>;

/// One "process" on the test's database: its own store, storage, deployment and router.
struct app {
    explicit app(backend& fx)
        : store(fx.store()), storage(fx.storage()), deployment(store, storage, {.batch_size = 16}), router(storage) {}
    backend::event_store_type store;
    backend::storage_type storage;
    tickets_deployment deployment;
    tickets_router router;
};

/// v1 serving and v2 caught up beside it, over the history of 10 tickets.
void v1_serves_v2_caught_up(app& a) {
    history(a.store, 10);
    a.deployment.catch_up();
    a.deployment.serve("tickets_v1");
    a.deployment.init("tickets_v2");
    a.deployment.backfill("tickets_v2");
}

/// A query as an application writes it: the routed version's row for a ticket.
std::optional<ticket_row> find_ticket(app& a, const std::string& user, const std::string& ticket) {
    return a.router.query(user, [&]<class P>(std::type_identity<P>) -> std::optional<ticket_row> {
        auto table = a.storage.template find_table<typename P::table>(pj::name_of<P>);
        if (!table) return std::nullopt;
        return table->find(ticket);
    });
}

std::string user_routed_to(const tickets_router& router, std::string_view version) {
    for (int u = 0;; ++u)
        if (router.route("user-" + std::to_string(u)) == version) return "user-" + std::to_string(u);
}

/// The embedded command line over one "process": what an operator types, and what it prints.
struct cli_app : app {
    explicit cli_app(backend& fx) : app(fx), cli(cli_test::test_options()) { cli.add(deployment, router, {}); }

    cli_test::outcome run(std::vector<std::string> args) { return cli_test::run(cli, std::move(args)); }

    pj::command_line cli;
};

}  // namespace

TEST_CASE("the command line drives the blue-green steps on this backend", "[backend][blue_green][cli]") {
    backend fx;
    cli_app a(fx);
    history(a.store);
    a.deployment.catch_up();
    a.deployment.serve("tickets_v1");
    const std::string head = std::to_string(a.store.head());

    auto r = a.run({"status"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Contains("tickets_v1  serving   no         " + head + "   " + head + "    0  global"));
    CHECK_THAT(r.out, Contains("tickets_v2  declared  no"));
    r = a.run({"backfill", "tickets_v2"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Contains("run init tickets_v2 first"));
    r = a.run({"init", "tickets_v2"});
    CHECK(r.status == 0);
    CHECK(a.storage.has_table("tickets_v2"));
    history(a.store, 5, 100);
    r = a.run({"backfill", "tickets_v2"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Contains("it is caught_up"));
    CHECK(a.deployment.get<tickets<2>>().position() == a.store.head());
    CHECK(a.run({"catch-up"}).status == 0);

    // v2 changes status and reopened on purpose.
    r = a.run({"verify", "tickets_v1", "tickets_v2"});
    CHECK(r.status == 1);
    CHECK_THAT(r.out, Contains("OVERALL VERDICT: FAIL") && Contains("'reopened'"));
    r = a.run(
        {"verify", "tickets_v1", "tickets_v2", "--expect-change", "status,reopened", "--key", "t-1", "--key", "t-3"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Contains("OVERALL VERDICT: PASS") && Contains("spot check"));

    // 10%, seen by another process; rolled back; then all traffic, live, and v1 deleted.
    CHECK(a.run({"switch", "tickets", "--to", "tickets_v2", "--percent", "10"}).status == 0);
    const bool shared = pj::has_persisted_checkpoint<backend::storage_type>;
    if (shared) CHECK(app(fx).router.status().basis_points == 1000);
    CHECK(a.run({"rollback", "tickets"}).status == 0);
    if (shared) CHECK_FALSE(app(fx).router.status().candidate);
    if (!shared)
        WARN("not checked on " << backend::name << ": another process sees the switch (has_persisted_checkpoint)");
    CHECK(a.run({"switch", "tickets", "--to", "tickets_v2"}).status == 0);
    CHECK(a.router.route("any-user") == "tickets_v2");
    CHECK(a.run({"live", "tickets_v2"}).status == 0);
    CHECK(a.deployment.get<tickets<2>>().status().live);
    r = a.run({"delete", "tickets_v2"});
    CHECK(r.status == 1);
    CHECK(a.storage.has_table("tickets_v2"));
    r = a.run({"delete", "tickets_v1"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, StartsWith("deleted tickets_v1"));
    CHECK_FALSE(a.storage.has_table("tickets_v1"));
    CHECK(a.storage.find_catalog("tickets_v1")->state == pj::projection_state::deleted);
    CHECK(a.storage.find_catalog("tickets_v1")->deleted_by == "delete");
    r = a.run({"status"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Contains("tickets_v1  deleted") && Contains("tickets_v2  serving  yes"));
}

TEST_CASE("the blue-green workflow: backfill, verify, toggle, live, delete", "[backend][blue_green]") {
    backend fx;
    app a(fx);
    history(a.store);
    a.deployment.catch_up();
    a.deployment.serve("tickets_v1");
    auto& v1 = a.deployment.get<tickets<1>>();
    auto& v2 = a.deployment.get<tickets<2>>();
    CHECK(v1.state() == pj::projection_state::serving);
    CHECK(v2.status().dormant);
    CHECK_FALSE(a.storage.has_table("tickets_v2"));
    CHECK_THAT(error_of([&] { a.deployment.backfill("tickets_v2"); }), Contains("init"));
    CHECK_THAT(error_of([&] { a.deployment.serve("tickets_v2"); }), Contains("tickets_v2"));

    // Init, then backfill while the application keeps appending.
    a.deployment.init("tickets_v2");
    CHECK(a.storage.find_catalog("tickets_v2")->state == pj::projection_state::initialized);
    history(a.store, 5, 100);
    CHECK(a.deployment.backfill("tickets_v2") == a.store.head());
    CHECK(v2.state() == pj::projection_state::caught_up);
    a.deployment.catch_up();
    CHECK(v1.position() == a.store.head());
    CHECK(v2.position() == a.store.head());
    CHECK(rows_of<tickets<2>::table>(a.storage, "tickets_v2").size() == 65);

    // Verification: v2 changes status and reopened on purpose, nothing else.
    {
        auto t1 = a.storage.find_table<tickets<1>::table>("tickets_v1");
        auto t2 = a.storage.find_table<tickets<2>::table>("tickets_v2");
        const auto strict = verify::structural_diff(t1, t2, {});
        CHECK_FALSE(strict.pass);
        verify::diff_options options;
        options.expected_changes = {"status", "reopened"};
        const auto diff = verify::structural_diff(t1, t2, options);
        CHECK(diff.pass);
        CHECK(diff.a_rows == 65);
        CHECK(diff.b_rows == 65);
        const auto spot = verify::spot_check(t1, t2, std::vector<std::string>{"t-1", "t-2", "t-missing"}, options);
        CHECK(spot.missing_in_both == 1);
        CHECK(spot.differs + spot.equal == 2);
        CHECK(t2->find("t-2")->reopened == 2);
        CHECK(t1->find("t-2")->reopened == 0);
    }

    // 10% of the keys to v2: persisted, so another process's router routes the same way.
    a.router.rollout<tickets<2>>(10);
    CHECK(a.storage.find_setting(tickets_router::setting_key()).has_value());
    const bool shared = pj::has_persisted_checkpoint<backend::storage_type>;
    if (!shared)
        WARN("not checked on " << backend::name
                               << ": another process routes the same way (has_persisted_checkpoint is false)");
    if (shared) {
        app other(fx);
        CHECK(other.router.status().candidate == "tickets_v2");
        CHECK(other.router.status().basis_points == 1000);
        int on_v2 = 0, disagreements = 0;
        for (int u = 0; u < 1000; ++u) {
            const std::string user = "user-" + std::to_string(u);
            disagreements += other.router.route(user) != a.router.route(user);
            on_v2 += other.router.route(user) == "tickets_v2";
        }
        CHECK(disagreements == 0);
        CHECK(on_v2 > 50);
        CHECK(on_v2 < 150);
        CHECK(find_ticket(other, user_routed_to(other.router, "tickets_v2"), "t-2")->reopened == 2);
        CHECK(find_ticket(other, user_routed_to(other.router, "tickets_v1"), "t-2")->reopened == 0);
    }
    a.router.rollback();
    CHECK_FALSE(a.router.status().candidate.has_value());

    // All traffic to v2; v2 serves and goes live; v1 is retired and keeps following.
    a.router.switch_to<tickets<2>>();
    a.deployment.serve("tickets_v2");
    a.deployment.make_live("tickets_v2");
    CHECK(v2.state() == pj::projection_state::serving);
    CHECK(v2.status().live);
    CHECK(v1.state() == pj::projection_state::retired);
    CHECK(a.router.route("any-user") == "tickets_v2");
    CHECK(find_ticket(a, "any-user", "t-2")->reopened == 2);
    if (shared) {
        app other(fx);  // sees the catalog and the router's state
        CHECK(other.router.route("any-user") == "tickets_v2");
        CHECK(other.storage.find_catalog("tickets_v2")->live);
        CHECK(other.storage.find_catalog("tickets_v1")->state == pj::projection_state::retired);
    }
    history(a.store, 3, 200);
    a.deployment.catch_up();
    CHECK(a.storage.find_table<tickets<1>::table>("tickets_v1")->contains("t-200"));

    // Rollback (as the command line's `rollback` does it): v1, which kept following, serves
    // again; then forward to v2 again.
    a.deployment.serve("tickets_v1");
    a.router.rollback();
    CHECK(v1.state() == pj::projection_state::serving);
    CHECK(v2.state() == pj::projection_state::retired);
    CHECK(a.router.route("any-user") == "tickets_v1");
    CHECK(find_ticket(a, "any-user", "t-200").has_value());
    CHECK(find_ticket(a, "any-user", "t-2")->reopened == 0);
    if (shared) {
        app other(fx);
        CHECK(other.router.route("any-user") == "tickets_v1");
    }
    a.router.switch_to<tickets<2>>();
    a.deployment.serve("tickets_v2");
    CHECK(v2.state() == pj::projection_state::serving);
    CHECK(a.router.route("any-user") == "tickets_v2");

    // Delete v1: not while it serves; then its tables and checkpoint go, its row a tombstone.
    CHECK_THROWS_AS(a.deployment.remove("tickets_v2"), pj::state_error);
    a.deployment.remove("tickets_v1");
    CHECK(v1.state() == pj::projection_state::deleted);
    CHECK_FALSE(a.storage.has_table("tickets_v1"));
    CHECK(a.storage.find_catalog("tickets_v1")->state == pj::projection_state::deleted);
    CHECK(a.storage.find_table<tickets<2>::table>("tickets_v2")->size() == 68);
    CHECK(a.storage.catalog().size() == 2);

    // A later catch-up does not bring v1 back; v2 follows.
    history(a.store, 1, 300);
    a.deployment.catch_up();
    CHECK_FALSE(a.storage.has_table("tickets_v1"));
    CHECK(a.storage.find_table<tickets<2>::table>("tickets_v2")->contains("t-300"));
    CHECK(log_consistent(fx));
    CHECK(fx.integrity_ok());
}

TEST_CASE("a version's life cycle persists in the catalog, for every process on the database",
          "[backend][blue_green]") {
    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>, "another process over one database");
    backend fx;
    {
        app a(fx);
        v1_serves_v2_caught_up(a);
        a.deployment.make_live("tickets_v1");
    }
    // A new process: the states, positions and live flags are as the first one left them.
    app b(fx);
    auto& v1 = b.deployment.get<tickets<1>>();
    auto& v2 = b.deployment.get<tickets<2>>();
    CHECK(v1.state() == pj::projection_state::serving);
    CHECK(v1.status().live);
    CHECK(v2.state() == pj::projection_state::caught_up);
    CHECK_FALSE(v2.status().live);
    const auto head = b.store.head();
    CHECK(head > 30);
    CHECK(v1.position() == head);
    CHECK(v2.position() == head);
    // make_live moves the flag: one live version at a time.
    b.deployment.make_live("tickets_v2");
    CHECK(b.storage.find_catalog("tickets_v2")->live);
    CHECK_FALSE(b.storage.find_catalog("tickets_v1")->live);
    // reset is refused for the serving version, allowed for the other.
    CHECK_THROWS_AS(b.deployment.reset("tickets_v1"), pj::state_error);
    b.deployment.reset("tickets_v2");
    CHECK(v2.position() == 0);
    CHECK_FALSE(b.storage.find_catalog("tickets_v2")->live);
    CHECK(b.storage.find_table<tickets<2>::table>("tickets_v2")->empty());
    CHECK(b.deployment.catch_up() == head);
    CHECK(rows_of<tickets<2>::table>(b.storage, "tickets_v2") == reference_rows<tickets<2>>(10));
}

TEST_CASE("a switch is one write: a refused catalog write switches nothing", "[backend][blue_green][fault]") {
    BACKEND_SKIP_UNLESS(backend::speaks_sql, "a SQL trigger that refuses one catalog write");
    static_assert(pj::has_serving_switch<backend::storage_type>);
    backend fx;
    app a(fx);
    v1_serves_v2_caught_up(a);
    auto& v1 = a.deployment.get<tickets<1>>();
    auto& v2 = a.deployment.get<tickets<2>>();
    const auto recorded = [&] {  // what another process reads
        app other(fx);
        return std::pair{other.deployment.get<tickets<1>>().state(), other.deployment.get<tickets<2>>().state()};
    };
    using enum pj::projection_state;

    // The new version's row is refused (a full disk, say), then the old one's: each time nothing
    // changed, v1 still serves, and this process agrees with its catalog.
    for (const char* refused :
         {"NEW.name = 'tickets_v2' AND NEW.state = 'serving'", "NEW.name = 'tickets_v1' AND NEW.state = 'retired'"}) {
        INFO(refused);
        fx.refuse("refuse_switch", "UPDATE", "projectionist_catalog", refused, "catalog write refused");
        CHECK_THROWS_WITH(a.deployment.serve("tickets_v2"),
                          Contains("catalog write refused") && !Contains("serves now"));
        CHECK(v1.state() == serving);
        CHECK(v2.state() == caught_up);
        CHECK(recorded() == std::pair{serving, caught_up});
        fx.allow("refuse_switch", "projectionist_catalog");
    }

    a.deployment.serve("tickets_v2");
    CHECK(v1.state() == retired);
    CHECK(v2.state() == serving);
    CHECK(recorded() == std::pair{retired, serving});
}

TEST_CASE("a switch retires the version that serves now, whatever this process saw last", "[backend][blue_green]") {
    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>,
                        "a second storage object over one database");
    backend fx;
    app a(fx);
    v1_serves_v2_caught_up(a);
    using enum pj::projection_state;
    auto& v2 = a.deployment.get<tickets<2>>();
    REQUIRE(v2.state() == caught_up);

    // Another process switches to v2; this one has not looked since, and switches back to v1.
    app(fx).deployment.serve("tickets_v2");
    CHECK(v2.state() == caught_up);  // not refreshed yet
    a.deployment.serve("tickets_v1");
    CHECK(v2.state() == retired);
    app other(fx);
    CHECK(other.deployment.get<tickets<1>>().state() == serving);
    CHECK(other.deployment.get<tickets<2>>().state() == retired);

    // A version that another process reset since cannot serve: nothing is switched.
    other.deployment.reset("tickets_v2");
    CHECK_THROWS_WITH(a.deployment.get<tickets<2>>().serve_exclusively(),
                      Contains("tickets_v2 cannot serve queries: the catalog says it is initialized"));
    CHECK(app(fx).deployment.get<tickets<1>>().state() == serving);
}

TEST_CASE("the query path: a version's tables by type, the deployment's status by name, a named predicate",
          "[backend][blue_green][query]") {
    backend fx;
    cli_app a(fx);
    history(a.store, 10);
    a.deployment.catch_up();
    a.deployment.serve("tickets_v1");

    // storage.table<P>() is the table named name_of<P>, on the storage's own connection.
    auto&& v1 = a.storage.table<tickets<1>>();
    CHECK(v1.find("t-1") == a.storage.find_table<tickets<1>::table>("tickets_v1")->find("t-1"));
    CHECK(v1.find("t-1").has_value());
    CHECK_FALSE(a.storage.table<tickets<1>>(pj::rows<ticket_row>).find("t-404").has_value());
    // a version not initialized has no table: refused, naming the table and the version
    CHECK_THROWS_WITH(a.storage.table<tickets<2>>(),
                      Contains("table tickets_v2 does not exist: tickets_v2 is not initialized, or it was deleted"));
    CHECK_THROWS_AS(a.storage.table<tickets<2>>(), pj::state_error);
    a.deployment.init("tickets_v2");
    a.deployment.backfill("tickets_v2");
    CHECK(a.storage.table<tickets<2>>().find("t-3") == reference_rows<tickets<2>>(10).at("t-3"));

    // deployment.status(name): the same snapshot as the list, by name; an unknown name lists them
    CHECK(a.deployment.status("tickets_v2").name == "tickets_v2");
    CHECK(a.deployment.status("tickets_v2").state == pj::projection_state::caught_up);
    CHECK(a.deployment.status("tickets_v1").state == pj::projection_state::serving);
    CHECK_THROWS_WITH(a.deployment.status("tickets_v7"), Contains("the versions are: tickets_v1, tickets_v2"));

    // "internal users first": a named predicate, registered in code, switched on from the command line
    a.router.register_predicate("internal-users", [](std::string_view user) { return user.starts_with("staff-"); });
    CHECK(a.run({"switch", "tickets", "--to", "tickets_v2", "--percent", "0"}).status == 0);
    CHECK(a.router.route("staff-1") == "tickets_v1");
    auto r = a.run({"predicate", "tickets", "--on", "internal-users"});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Contains("predicate internal-users is on"));
    CHECK(a.router.route("staff-1") == "tickets_v2");
    CHECK(a.router.route("user-1") == "tickets_v1");
    if (pj::has_persisted_checkpoint<backend::storage_type>) {
        app other(fx);  // another process registers the same code and sees the predicate on
        other.router.register_predicate("internal-users",
                                        [](std::string_view user) { return user.starts_with("staff-"); });
        CHECK(other.router.enabled_predicate() == "internal-users");
        CHECK(other.router.route("staff-9") == "tickets_v2");
        other.router.disable_predicate();
        CHECK(other.router.route("staff-9") == "tickets_v1");
        CHECK(a.router.route("staff-1") == "tickets_v2");  // until it refreshes
        CHECK(a.router.refresh());
        CHECK(a.router.route("staff-1") == "tickets_v1");
        CHECK_FALSE(a.router.enabled_predicate().has_value());
    }
}
