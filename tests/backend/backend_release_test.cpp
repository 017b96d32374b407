// Versions across releases, on the backend the executable was built for: a delete is durable (a
// tombstone every later process sees, that no automatic kick-off undoes and that the router
// forgets in the same transaction), and a release whose code no longer has a deleted version
// starts cleanly. Each "process" opens its own store and storage on the test's database (memory
// has no database to open twice: there the processes share one storage).

#include <backend_suite.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <projectionist/cli/cli.hpp>
#include <projectionist/deploy/controller.hpp>
#include <projectionist/deploy/deployment.hpp>
#include <projectionist/deploy/router.hpp>

#include <cli_test_support.hpp>

using namespace backend_test;
using Catch::Contains;

namespace {

/// Release 2: v1 (automatic kick-off) beside v2 (manual kick-off).
using release2_deployment =
    pj::deployment<pj::runner<tickets<1>, backend::storage_type>,
                   pj::runner<tickets<2>, backend::storage_type, pj::per_aggregate, pj::manual_kickoff>>;
using release2_router = pj::router<tickets<1>, tickets<2>>;
/// Release 3: v2 only, automatic.
using release3_deployment = pj::deployment<pj::runner<tickets<2>, backend::storage_type, pj::per_aggregate>>;
using release3_router = pj::router<tickets<2>>;

const std::string router_key = "projectionist.router.tickets";

/// The test's database and the processes on it.
struct database {
    backend fx;
    std::vector<std::unique_ptr<connections>> opened;

    /// A new process's store and storage (on memory: the first process's, shared).
    connections& process() {
        if (!backend::speaks_sql && !opened.empty()) return *opened.front();
        opened.push_back(std::make_unique<connections>(fx));
        return *opened.back();
    }
};

template <class Deployment, class Router>
struct release {
    explicit release(connections& c) : db(c), deployment(c.store, c.storage, {.batch_size = 16}), router(c.storage) {}
    connections& db;
    Deployment deployment;
    Router router;
};

/// Release 2's flow up to the delete: v1 served, v2 initialized, backfilled, switched to, served;
/// the router's setting then names v1 as the version to roll back to.
void switch_to_v2(release<release2_deployment, release2_router>& r) {
    history(r.db.store, 10);
    r.deployment.catch_up();
    r.deployment.serve("tickets_v1");
    r.deployment.init("tickets_v2");
    r.deployment.backfill("tickets_v2");
    r.router.switch_to<tickets<2>>();
    r.deployment.serve("tickets_v2");
    REQUIRE(r.db.storage.find_setting(router_key) == "format=1 primary=tickets_v2 previous=tickets_v1");
}

}  // namespace

TEST_CASE("a deleted version stays deleted in every process until an explicit init", "[backend][releases]") {
    database db;
    {
        release<release2_deployment, release2_router> r2(db.process());
        switch_to_v2(r2);
        r2.deployment.remove("tickets_v1", {.by = "delete"});
        // The tombstone, and the router's setting without v1, committed together.
        const auto tombstone = r2.db.storage.find_catalog("tickets_v1");
        REQUIRE(tombstone.has_value());
        CHECK(tombstone->state == pj::projection_state::deleted);
        CHECK(tombstone->tables.empty());
        CHECK(tombstone->deleted_by == "delete");
        CHECK(tombstone->deleted_at.size() == 20);
        CHECK(r2.db.storage.find_setting(router_key) == "format=1 primary=tickets_v2");
        CHECK_FALSE(r2.db.storage.has_table("tickets_v1"));
    }

    // Release 2 started again: v1 is deleted in its status, and nothing re-creates it.
    release<release2_deployment, release2_router> again(db.process());
    auto& v1 = again.deployment.get<tickets<1>>();
    CHECK(v1.state() == pj::projection_state::deleted);
    CHECK_THAT(v1.status().note, Contains("deleted at ") && Contains(" by delete") && Contains("explicit init"));
    history(again.db.store, 2, 100);
    CHECK(again.deployment.catch_up() > 0);  // v2 follows
    CHECK(v1.catch_up() == 0);
    CHECK(v1.position() == 0);
    CHECK_FALSE(again.db.storage.has_table("tickets_v1"));
    CHECK(again.db.storage.find_catalog("tickets_v1")->state == pj::projection_state::deleted);

    // The router forgot v1 and refuses to send it queries.
    CHECK_FALSE(again.router.status().previous.has_value());
    CHECK(again.router.route("any-user") == "tickets_v2");
    CHECK_THROWS_AS(again.router.rollback(), pj::state_error);
    CHECK_THROWS_AS(again.router.switch_to<tickets<1>>(), pj::state_error);
    CHECK_THROWS_WITH(again.router.switch_to<tickets<1>>(),
                      Contains("cannot send queries to tickets_v1: it was deleted at ") &&
                          Contains("run init tickets_v1 and backfill it"));
    CHECK_THROWS_WITH(again.router.rollout<tickets<1>>(10), Contains("it was deleted"));
    CHECK(again.router.route("any-user") == "tickets_v2");
    CHECK(again.db.storage.find_setting(router_key) == "format=1 primary=tickets_v2");

    // Only an explicit init brings it back, and says so.
    const pj::init_result result = again.deployment.init("tickets_v1");
    CHECK(result);
    CHECK(result.recreated);
    CHECK_THAT(result.note, Contains("tickets_v1 was deleted at ") && Contains("init re-creates it"));
    CHECK(v1.state() == pj::projection_state::initialized);
    CHECK(again.db.storage.has_table("tickets_v1"));
    CHECK(v1.catch_up() > 0);
    CHECK(v1.position() == again.db.store.head());
    CHECK(rows_of<tickets<1>::table>(again.db.storage, "tickets_v1").size() == 12);
    const pj::init_result twice = again.deployment.init("tickets_v1");
    CHECK_FALSE(twice);
    CHECK_FALSE(twice.recreated);
    // Re-created, it may serve again.
    again.router.switch_to<tickets<1>>();
    CHECK(again.router.route("any-user") == "tickets_v1");
}

TEST_CASE("a delete is refused, and nothing dropped, while the router's setting sends the version queries",
          "[backend][releases]") {
    database db;
    release<release2_deployment, release2_router> r(db.process());
    history(r.db.store, 5);
    r.deployment.catch_up();
    r.deployment.init("tickets_v2");
    r.deployment.backfill("tickets_v2");
    // Another process rolled v2 out: this deployment has not seen it, the saved setting has.
    {
        release2_router other(db.process().storage);
        other.rollout<tickets<2>>(10);
    }
    CHECK_THROWS_AS(r.deployment.remove("tickets_v2"), pj::state_error);
    CHECK_THROWS_WITH(
        r.deployment.remove("tickets_v2"),
        Contains("cannot delete tickets_v2: the router of tickets sends it queries (it is the candidate"));
    CHECK(r.db.storage.has_table("tickets_v2"));
    CHECK(r.db.storage.find_catalog("tickets_v2")->state == pj::projection_state::caught_up);
    CHECK(r.deployment.get<tickets<2>>().state() == pj::projection_state::caught_up);
    CHECK(r.db.storage.find_setting(router_key) ==
          "format=1 primary=tickets_v1 candidate=tickets_v2 basis_points=1000");
    CHECK_THROWS_WITH(r.deployment.remove("tickets_v1"), Contains("(it is the primary"));
    CHECK(r.db.storage.has_table("tickets_v1"));
}

TEST_CASE("a release without a deleted version's code starts cleanly", "[backend][releases]") {
    database db;
    {
        release<release2_deployment, release2_router> r2(db.process());
        switch_to_v2(r2);
        r2.deployment.remove("tickets_v1");
        // As a router that saved its state without the delete's transaction would have left it.
        r2.db.storage.save_setting(router_key, "format=1 primary=tickets_v2 previous=tickets_v1");
    }
    release<release3_deployment, release3_router> r3(db.process());
    CHECK(r3.router.route("any-user") == "tickets_v2");
    CHECK_FALSE(r3.router.status().previous.has_value());
    auto& v2 = r3.deployment.get<tickets<2>>();
    CHECK(v2.state() == pj::projection_state::serving);
    history(r3.db.store, 1, 300);
    CHECK(r3.deployment.catch_up() > 0);
    CHECK(v2.position() == r3.db.store.head());
    CHECK_THROWS_AS(r3.router.rollback(), pj::state_error);  // nothing to roll back to
    CHECK_FALSE(r3.db.storage.has_table("tickets_v1"));
}

TEST_CASE("a release without the code of a version that still exists refuses to start, naming the commands",
          "[backend][releases]") {
    database db;
    {
        release<release2_deployment, release2_router> r2(db.process());
        switch_to_v2(r2);  // v1 retired, not deleted
    }
    auto& c = db.process();
    CHECK_THROWS_AS(release3_router(c.storage), pj::error);
    CHECK_THROWS_WITH(release3_router(c.storage),
                      Contains("names previous 'tickets_v1', a version this build does not have, and tickets_v1 is "
                               "not deleted (it is retired)") &&
                          Contains("delete tickets_v1"));
    // v1 still the primary: the command moves its queries first.
    c.storage.save_setting(router_key, "format=1 primary=tickets_v1 candidate=tickets_v2 basis_points=5000");
    CHECK_THROWS_WITH(release3_router(c.storage),
                      Contains("names primary 'tickets_v1'") &&
                          Contains("switch tickets --to <one of: tickets_v2>, then delete tickets_v1"));
    // A candidate that was deleted is cancelled; a deleted primary falls back to the first version.
    {
        release<release2_deployment, release2_router> r2(c);
        c.storage.save_setting(router_key, "format=1 primary=tickets_v2");
        r2.deployment.serve("tickets_v2");
        r2.deployment.remove("tickets_v1");
    }
    c.storage.save_setting(router_key, "format=1 primary=tickets_v2 candidate=tickets_v1 basis_points=5000");
    CHECK(release3_router(c.storage).status().to_string() == "tickets: primary tickets_v2; nothing to roll back");
    c.storage.save_setting(router_key, "format=1 primary=tickets_v1 previous=tickets_v2");
    const auto status = release3_router(c.storage).status();
    CHECK(status.primary == "tickets_v2");
    CHECK_FALSE(status.previous.has_value());
}

TEST_CASE("the controller deletes with a tombstone and re-creates only on init", "[backend][releases]") {
    database db;
    release<release2_deployment, release2_router> r(db.process());
    switch_to_v2(r);
    pj::controller control(r.deployment, r.router);
    control.remove("tickets_v1", {.by = "delete"});
    CHECK(r.db.storage.find_catalog("tickets_v1")->deleted_by == "delete");
    CHECK_FALSE(control.catch_up("tickets_v1").has_value());
    CHECK_FALSE(r.db.storage.has_table("tickets_v1"));
    const auto status = control.status();
    CHECK(status[0].status.state == pj::projection_state::deleted);
    const pj::init_result result = control.init("tickets_v1");
    CHECK(result.recreated);
    CHECK(r.db.storage.has_table("tickets_v1"));
}

TEST_CASE("a version retained until a later day is deleted only by force", "[backend][releases][retention]") {
    database db;
    release<release2_deployment, release2_router> r(db.process());
    switch_to_v2(r);
    CHECK_THROWS_AS(r.deployment.retain_until("tickets_v1", "2027-02-30"), pj::error);
    CHECK_THROWS_WITH(
        r.deployment.retain_until("tickets_v1", "31.01.2027"),
        Contains("the retention date of 'tickets_v1' must be a day, YYYY-MM-DD; '31.01.2027' is not one"));
    r.deployment.retain_until("tickets_v1", "2999-12-31");
    CHECK(r.db.storage.find_catalog("tickets_v1")->retain_until == "2999-12-31");
    CHECK(r.deployment.get<tickets<1>>().status().retain_until == "2999-12-31");
    CHECK_THROWS_AS(r.deployment.remove("tickets_v1"), pj::state_error);
    CHECK_THROWS_WITH(r.deployment.remove("tickets_v1"),
                      Contains("cannot delete tickets_v1: it is retained until 2999-12-31") && Contains("force"));
    CHECK(r.db.storage.has_table("tickets_v1"));
    CHECK(r.db.storage.find_catalog("tickets_v1")->state == pj::projection_state::retired);
    {  // another process sees the date
        release<release2_deployment, release2_router> other(db.process());
        CHECK_THROWS_WITH(other.deployment.remove("tickets_v1"), Contains("retained until 2999-12-31"));
    }
    r.deployment.remove("tickets_v1", {.force = true});
    CHECK_FALSE(r.db.storage.has_table("tickets_v1"));
    CHECK(r.db.storage.find_catalog("tickets_v1")->retain_until == "2999-12-31");  // kept in the tombstone
    // Re-created, it starts without a date; a date already past holds nothing.
    r.deployment.init("tickets_v1");
    CHECK(r.db.storage.find_catalog("tickets_v1")->retain_until.empty());
    r.deployment.retain_until("tickets_v1", "2000-01-01");
    r.deployment.remove("tickets_v1");
    CHECK(r.db.storage.find_catalog("tickets_v1")->state == pj::projection_state::deleted);
    CHECK_THROWS_AS(r.deployment.retain_until("tickets_v1", "2999-12-31"), pj::state_error);  // deleted
}

TEST_CASE("the command line records a retention date, refuses an early delete and forces it",
          "[backend][releases][retention][cli]") {
    database db;
    release<release2_deployment, release2_router> r(db.process());
    switch_to_v2(r);
    pj::command_line cli(cli_test::test_options());
    cli.add(r.deployment, r.router, {});
    std::string out, err;
    auto run = [&](std::vector<std::string> args) {
        const cli_test::outcome o = cli_test::run(cli, std::move(args));
        out = o.out;
        err = o.err;
        return o.status;
    };
    CHECK(run({"init", "tickets_v1", "--retain-until", "tomorrow"}) == 2);
    CHECK_THAT(err, Contains("--retain-until 'tomorrow': a day is written YYYY-MM-DD"));
    CHECK(run({"init", "tickets_v1", "--retain-until", "2999-12-31"}) == 0);
    CHECK_THAT(out, Contains("tickets_v1 is retained until 2999-12-31"));
    CHECK(run({"delete", "tickets_v1"}) == 1);
    CHECK_THAT(err, Contains("cannot delete tickets_v1: it is retained until 2999-12-31"));
    CHECK(r.db.storage.has_table("tickets_v1"));
    CHECK(run({"delete", "tickets_v1", "--force"}) == 0);
    CHECK_THAT(out, Contains("deleted tickets_v1"));
    CHECK(r.db.storage.find_catalog("tickets_v1")->deleted_by == "delete");
    CHECK(run({"init", "tickets_v1"}) == 0);
    CHECK_THAT(out, Contains("note: tickets_v1 was deleted at ") && Contains("init re-creates it"));
}
