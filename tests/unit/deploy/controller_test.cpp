// The blue-green controller called directly, as an application does, on memory storage: each
// rule the command line keeps holds without it (traffic only to a caught-up version, rollback,
// no reset or delete of a version the router sends queries to, drain before delete, deleted
// versions skipped), with the messages the command line prints.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <projectionist/deploy.hpp>
#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

namespace controller_test {

namespace pj = projectionist;
using namespace tickets_domain;
using namespace std::chrono_literals;
using Catch::Contains;

namespace {

using memory_tickets =
    pj::deployment<pj::runner<tickets<1>, pj::memory_storage>,
                   pj::runner<tickets<2>, pj::memory_storage, pj::per_aggregate, pj::manual_kickoff>>;
using tickets_router = pj::router<tickets<1>, tickets<2>>;

static_assert(pj::detail::router_fits<memory_tickets>(std::type_identity<tickets_router>{}));
static_assert(pj::detail::router_fits<memory_tickets>(std::type_identity<pj::router<tickets<2>>>{}));  // a subset
static_assert(!pj::detail::router_fits<memory_tickets>(std::type_identity<pj::router<tickets<1>, tickets<3>>>{}));
static_assert(std::is_same_v<decltype(pj::controller(std::declval<memory_tickets&>(), std::declval<tickets_router&>())),
                             pj::controller<memory_tickets, tickets_router>>);
static_assert(std::is_same_v<decltype(pj::controller(std::declval<memory_tickets&>())),
                             pj::controller<memory_tickets, pj::no_router_t>>);

/// v1 serves every query (in the catalog and the router); v2 is declared, dormant.
struct fixture {
    fixture() {
        for (int i = 0; i < 30; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", i % 3, i % 2 == 0);
        control.catch_up();
        control.switch_to("tickets_v1");
    }
    pj::memory_event_store store;
    pj::memory_storage storage;
    memory_tickets deployment{store, storage};
    tickets_router router{storage};
    pj::controller<memory_tickets, tickets_router> control{deployment, router, {}, {.drain_timeout = 50ms}};
};

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const pj::state_error& e) {
        return std::string("state_error: ") + e.what();
    } catch (const pj::error& e) {
        return std::string("error: ") + e.what();
    }
    return "no error";
}

}  // namespace

TEST_CASE("controller: no traffic to a version that has not caught up", "[deploy][controller]") {
    fixture f;
    CHECK(error_of([&] { f.control.switch_to("tickets_v2"); }) ==
          "state_error: projectionist: tickets_v2 cannot serve queries: it is declared; run init tickets_v2 first");
    CHECK(f.control.init("tickets_v2"));
    CHECK_FALSE(f.control.init("tickets_v2"));  // initialized already
    CHECK(error_of([&] { f.control.rollout("tickets_v2", 10); }) ==
          "state_error: projectionist: cannot roll out tickets_v2: it is initialized; run backfill tickets_v2 first");
    CHECK(error_of([&] { f.control.rollout_basis_points("tickets_v2", 10000); }) ==
          "state_error: projectionist: tickets_v2 cannot serve queries: it is initialized; run backfill tickets_v2 "
          "first");
    CHECK(error_of([&] { f.control.make_live("tickets_v2"); }) ==
          "state_error: projectionist: cannot make tickets_v2 live: it is initialized; run backfill tickets_v2 first");
    // nothing moved: the router and the catalog are as they were
    CHECK(f.router.status().primary == "tickets_v1");
    CHECK_FALSE(f.router.status().candidate);
    CHECK(f.deployment.get<tickets<1>>().state() == pj::projection_state::serving);

    CHECK(f.control.backfill("tickets_v2") == f.store.head());
    f.control.rollout("tickets_v2", 10);
    CHECK(f.router.status().candidate == "tickets_v2");
    CHECK(f.router.status().basis_points == 1000);
    CHECK(error_of([&] { f.control.rollout("tickets_v2", 101); }) ==
          "error: projectionist: cannot roll out tickets_v2: a share is 0 to 100 percent, not 101");
    CHECK(error_of([&] { f.control.switch_to("tickets_v3"); }) ==
          "error: projectionist: 'tickets_v3' is not a version of tickets; the versions are: tickets_v1, tickets_v2");
}

TEST_CASE("controller: no reset or delete of a version the router sends queries to", "[deploy][controller]") {
    fixture f;
    f.control.init("tickets_v2");
    f.control.backfill("tickets_v2");
    CHECK(error_of([&] { f.control.remove("tickets_v1"); }) ==
          "state_error: projectionist: cannot delete tickets_v1: the router sends it queries (the primary); move them "
          "to another version first (switch_to another version, or rollback)");
    f.control.rollout_basis_points("tickets_v2", 1250);
    CHECK(error_of([&] { f.control.reset("tickets_v2"); }) ==
          "state_error: projectionist: cannot reset tickets_v2: the router sends it queries (the candidate, for 12.5% "
          "of them); move them to another version first (switch_to another version, or rollback)");
    CHECK_THAT(error_of([&] { f.control.reset("tickets_v1"); }),
               Contains("cannot reset tickets_v1: the router sends it queries (the primary, for 87.5% of them)"));
    // a program named in the options is named in the hint, as the command line does
    f.control.set_options({.drain_timeout = 50ms, .program = "app"});
    CHECK_THAT(error_of([&] { f.control.remove("tickets_v2"); }),
               Contains("(app switch tickets --to <version>, or app rollback tickets)"));
    CHECK(f.storage.has_table("tickets_v1"));
    CHECK(f.storage.has_table("tickets_v2"));
}

TEST_CASE("controller: rollback cancels a rollout, then puts the previous primary back", "[deploy][controller]") {
    fixture f;
    CHECK_THAT(error_of([&] { f.control.rollback(); }), Contains("state_error: projectionist: router 'tickets': "
                                                                 "nothing to roll back"));
    f.control.init("tickets_v2");
    f.control.backfill("tickets_v2");
    f.control.rollout("tickets_v2", 10);
    auto r = f.control.rollback();
    CHECK(r.cancelled_candidate);
    CHECK(r.version == "tickets_v2");
    CHECK(r.primary == "tickets_v1");
    CHECK_FALSE(f.router.status().candidate);

    f.control.switch_to("tickets_v2");
    CHECK(f.deployment.get<tickets<1>>().state() == pj::projection_state::retired);
    CHECK(f.deployment.get<tickets<2>>().state() == pj::projection_state::serving);
    r = f.control.rollback();
    CHECK_FALSE(r.cancelled_candidate);
    CHECK(r.version == "tickets_v1");
    CHECK(r.primary == "tickets_v2");
    CHECK(f.router.status().primary == "tickets_v1");
    CHECK(f.deployment.get<tickets<1>>().state() == pj::projection_state::serving);  // recorded, not only routed
    CHECK(f.deployment.get<tickets<2>>().state() == pj::projection_state::retired);

    // a previous primary that was deleted since is forgotten by the router: nothing to roll back
    f.control.switch_to("tickets_v2");
    f.control.remove("tickets_v1");
    CHECK_FALSE(f.router.status().previous.has_value());
    CHECK(error_of([&] { f.control.rollback(); }) ==
          "state_error: projectionist: router 'tickets': nothing to roll back: tickets_v2 serves every query, no "
          "version is being rolled out and no earlier primary is recorded");
    CHECK(f.router.status().primary == "tickets_v2");
}

TEST_CASE("controller: delete waits for the queries in flight on the version", "[deploy][controller]") {
    fixture f;
    f.control.init("tickets_v2");
    f.control.backfill("tickets_v2");
    std::atomic<bool> started{false};
    std::atomic<bool> release{false};
    std::thread query([&] {
        f.router.query("user-1", [&]<class P>(std::type_identity<P>) {
            started = true;
            while (!release) std::this_thread::sleep_for(1ms);
            return 0;
        });
    });
    while (!started) std::this_thread::yield();
    f.control.switch_to("tickets_v2");  // the query keeps running on v1
    CHECK(error_of([&] { f.control.remove("tickets_v1"); }) ==
          "state_error: projectionist: cannot delete tickets_v1: queries were still running on it after 0.050 s; try "
          "again");
    CHECK(f.storage.has_table("tickets_v1"));  // nothing dropped under a running query
    release = true;
    query.join();
    CHECK(f.control.remove("tickets_v1") == std::vector<std::string>{"tickets_v1"});
    CHECK_FALSE(f.storage.has_table("tickets_v1"));
}

TEST_CASE("controller: deleted versions are skipped when catching up and running", "[deploy][controller]") {
    fixture f;
    f.control.init("tickets_v2");
    f.control.backfill("tickets_v2");
    f.control.switch_to("tickets_v2");
    f.control.remove("tickets_v1");
    append_ticket(f.store, "late", "bug", 0, false);
    CHECK_FALSE(f.control.catch_up("tickets_v1"));
    CHECK(f.control.catch_up("tickets_v2") == 1U);
    append_ticket(f.store, "later", "bug", 0, false);
    CHECK(f.control.catch_up() == 1U);
    std::stop_source stop;
    append_ticket(f.store, "latest", "bug", 0, false);
    std::thread runner([&] { f.control.run(stop.get_token(), 1ms); });
    while (f.control.status_of("tickets_v2").lag != 0) std::this_thread::sleep_for(1ms);
    stop.request_stop();
    runner.join();
    CHECK_FALSE(f.storage.has_table("tickets_v1"));
    const auto all = f.control.status();
    REQUIRE(all.size() == 2);
    CHECK(all[0].status.state == pj::projection_state::deleted);
    CHECK(all[1].traffic == "primary");
    CHECK(all[1].status.position == f.store.head());
}

TEST_CASE("controller: a retention date moves earlier, or is cleared, only by force", "[deploy][controller]") {
    fixture f;
    CHECK(f.control.init("tickets_v2"));
    auto retained = [&] { return f.deployment.status("tickets_v2").retain_until; };
    f.control.retain_until("tickets_v2", "2099-12-31");
    CHECK(error_of([&] { f.control.retain_until("tickets_v2", "2000-01-01"); }) ==
          "state_error: projectionist: cannot retain tickets_v2 until 2000-01-01: it is retained until 2099-12-31, a "
          "later day; give that day or a later one, or force it to move it earlier (--force on the command line)");
    CHECK(error_of([&] { f.deployment.retain_until("tickets_v2", ""); }) ==
          "state_error: projectionist: cannot clear the retention date of tickets_v2: it is retained until "
          "2099-12-31; force it to clear it (--force on the command line)");
    CHECK(retained() == "2099-12-31");
    CHECK_THAT(error_of([&] { f.control.remove("tickets_v2"); }), Contains("it is retained until 2099-12-31"));
    CHECK_THAT(error_of([&] { f.control.retain_until("tickets_v2", "2000-1-1"); }),
               Contains("error: projectionist: the retention date of 'tickets_v2' must be a day"));

    f.control.retain_until("tickets_v2", "2099-12-31");  // the same day
    f.deployment.retain_until("tickets_v2", "2100-01-31");
    CHECK(retained() == "2100-01-31");
    f.control.retain_until("tickets_v2", "2000-01-01", true);
    CHECK(retained() == "2000-01-01");
    f.deployment.retain_until("tickets_v2", "2099-12-31");
    f.deployment.retain_until("tickets_v2", "", true);
    CHECK(retained().empty());
    f.control.retain_until("tickets_v2", "2000-01-01");  // a first date: nothing to shorten
    f.control.remove("tickets_v2");
}

TEST_CASE("controller: a catch-up ends between two batches when asked to stop", "[deploy][controller]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    for (int i = 0; i < 30; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", i % 3, i % 2 == 0);
    REQUIRE(store.head() > 20);
    int batches = 0;
    std::stop_source source;
    pj::runner_options options{.batch_size = 4};
    options.before_batch_begin = [&] {  // the application's own hook is still called
        if (++batches == 3) source.request_stop();
    };
    memory_tickets deployment(store, storage, options);
    pj::controller control(deployment);
    auto position = [&] { return deployment.status("tickets_v1").position; };

    SECTION("controller::catch_up with a condition") {
        const std::function<bool()> stop = [&] { return source.stop_requested(); };
        const auto applied = control.catch_up("tickets_v1", true, stop);
        CHECK(batches == 3);
        CHECK(position() == 8);  // two batches committed; the third did not begin
        REQUIRE(applied);
        CHECK(*applied == deployment.status("tickets_v1").events_applied);
        CHECK(control.catch_up("tickets_v1", true, stop) == 0U);  // asked to stop before the next batch
        CHECK(position() == 8);
        CHECK(control.catch_up("tickets_v1", false, {}));  // no condition: to the head
        CHECK(position() == store.head());
    }
    SECTION("deployment::run") {
        deployment.run(source.get_token(), 1ms);
        CHECK(batches == 3);
        CHECK(position() == 8);
    }
    SECTION("any_controller::run") {
        control.run(source.get_token(), 1ms);
        CHECK(batches == 3);
        CHECK(position() == 8);
    }
}

TEST_CASE("controller: without a router, switch records the serving version; shares are refused",
          "[deploy][controller]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 1, true);
    memory_tickets d(store, storage);
    pj::controller control(d);
    std::unique_ptr<pj::any_controller> erased = std::make_unique<pj::controller<memory_tickets>>(d);
    control.catch_up();
    control.switch_to("tickets_v1");
    CHECK(control.status()[0].traffic == "serving");
    CHECK(error_of([&] { erased->rollout("tickets_v1", 10); }) ==
          "error: projectionist: cannot send a share of tickets's queries to tickets_v1: no query router is "
          "registered for tickets (give the controller a router: command_line::add(deployment, router))");
    CHECK(error_of([&] { control.rollback(); }) ==
          "error: projectionist: cannot roll back tickets: no query router is registered for it; switch_to another "
          "version instead");
    CHECK(error_of([&] { control.remove("tickets_v1"); }) ==
          "state_error: projectionist: cannot delete tickets_v1: it is serving queries; switch traffic to another "
          "version first");
}

TEST_CASE("controller: verify compares the main tables, with the request's expected changes", "[deploy][controller]") {
    fixture f;
    CHECK(error_of([&] { (void)f.control.verify("tickets_v1", "tickets_v2"); }) ==
          "state_error: projectionist: cannot verify tickets_v2: it is declared; run init tickets_v2 first");
    f.control.init("tickets_v2");
    f.control.backfill("tickets_v2");
    CHECK_FALSE(pj::verify::passed(f.control.verify("tickets_v1", "tickets_v2")));
    const auto r = f.control.verify("tickets_v1", "tickets_v2",
                                    {.expected_changes = {"status", "reopened"}, .keys = {"t-1", "t-2"}});
    CHECK(pj::verify::passed(r));
    CHECK(r.spot_checks.size() == 1);
    CHECK_THROWS_WITH(f.control.validate("tickets_v1", "tickets_v2", {.expected_changes = {"colour"}}),
                      Contains("unknown column 'colour' in --expect-change"));
    CHECK(f.control.serving_peer("tickets_v2") == "tickets_v1");
    // settings for a pair of versions name deployed versions only
    using controller_type = pj::controller<memory_tickets, tickets_router>;
    CHECK_THROWS_WITH(controller_type(f.deployment, f.router, {.pairs = {{"tickets_v1", "tickets_v9", {}}}}),
                      "projectionist: controller(deployment, router, verify_settings): verify settings name "
                      "'tickets_v9', which is not a version of tickets; the versions are: tickets_v1, tickets_v2");
}

}  // namespace controller_test
