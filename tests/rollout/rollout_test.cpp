// Rollouts that promote or roll back by themselves, on a real backend (SQLite or PostgreSQL, by
// compile definition): a good v2 promoted to 100% and made live; a v2 wrong on 2% of its keys
// rolled back at the first step; a restart in the middle; two processes following one plan.
// Time-compressed: steps of milliseconds.

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "rollout_fixture.hpp"

namespace rollout_test {

using namespace rollout_test;

TEST_CASE("a good v2 is promoted step by step to 100% and made live with no command after the start", "[rollout]") {
    place where;
    seed(where);
    watcher w(where);
    app<good_v2> a(where);
    a.deploy_v2();
    a.rollout.start(quick_plan());
    CHECK(w.record().state == pj::rollout_state::pending);
    a.start_following();

    std::set<unsigned> shares;
    std::set<std::size_t> steps;
    const auto r = ask_until_done(a, w, [&](const pj::rollout_record& rec) {
        steps.insert(rec.step);
        if (auto s = a.router.status(); s.candidate) shares.insert(s.basis_points);
    });
    a.stop();
    INFO(r.reason);
    REQUIRE(r.state == pj::rollout_state::completed);
    CHECK(r.step == 3);
    CHECK(r.gate.empty());
    CHECK(r.discrepant.empty());
    CHECK(shares == std::set<unsigned>{100, 1000, 5000, 10000});  // every step, in its turn
    CHECK(steps == std::set<std::size_t>{0, 1, 2, 3});

    // The candidate serves every query and is live; v1 is retired, ready for a rollback.
    const auto routing = a.router.status();
    CHECK(routing.primary == "tickets_v2");
    CHECK_FALSE(routing.candidate);
    CHECK(routing.previous == "tickets_v1");
    a.control.refresh();
    CHECK(a.control.status_of("tickets_v2").live);
    CHECK(a.control.status_of("tickets_v2").state == pj::projection_state::serving);
    CHECK(a.control.status_of("tickets_v1").state == pj::projection_state::retired);
    CHECK_FALSE(a.control.status_of("tickets_v1").live);

    // v2's `closes` differs from v1's on every read, and is an expected change: no discrepancy.
    const auto stats = a.router.shadow_stats();
    CHECK(stats.compared >= 4 * quick_plan().min_shadow_reads);
    CHECK(stats.discrepancies == 0);

    // A finished plan cannot be aborted; a new one can start.
    CHECK_THROWS_AS(a.rollout.abort("late"), pj::state_error);
}

TEST_CASE("a v2 wrong on 2% of its keys is rolled back at the first step, and gets no query after", "[rollout]") {
    place where;
    seed(where);
    watcher w(where);
    app<buggy_v2> a(where);
    a.deploy_v2();
    auto plan = quick_plan();
    plan.min_shadow_reads = ticket_count;  // a step reads every ticket at least once: 8 of them are spoiled
    a.rollout.start(plan);
    a.start_following();

    const auto r = ask_until_done(a, w, [](const pj::rollout_record&) {});
    REQUIRE(r.state == pj::rollout_state::rolled_back);
    CHECK(r.step == 0);  // the first step: 1%
    CHECK(r.gate == "shadow-read discrepancy");
    CHECK_THAT(r.reason, Catch::Contains("compared shadow reads differed") && Catch::Contains("step 1 of 4 (1%)"));
    REQUIRE_FALSE(r.discrepant.empty());
    for (const auto& d : r.discrepant) {
        INFO(d.key << ": " << d.primary_value << " / " << d.candidate_value);
        // Both answers are kept; they differ in the title, and the title is spoiled in v2 only.
        CHECK_THAT(d.primary_value, Catch::Contains("title: \"title "));
        CHECK_THAT(d.candidate_value, Catch::Contains("!\""));
        const int i = std::stoi(d.key.substr(5));
        CHECK(spoiled(ticket(i)));
    }

    // Traffic went back to the primary before the plan was saved: from now on v2 gets nothing,
    // neither queries nor shadow reads.
    CHECK_FALSE(a.router.status().candidate);
    CHECK(a.router.status().primary == "tickets_v1");
    const long v2_before = a.on_v2.load();
    for (long i = 0; i < 400; ++i) CHECK(a.ask(i)->title.back() != '!');
    CHECK(a.on_v2.load() == v2_before);
    a.stop();
    CHECK(w.record().state == pj::rollout_state::rolled_back);  // nobody restarted it
    CHECK_FALSE(a.control.status_of("tickets_v2").live);
}

TEST_CASE("a restarted process resumes the plan at its step", "[rollout]") {
    place where;
    seed(where);
    watcher w(where);
    auto plan = quick_plan();
    plan.min_shadow_reads = 200;
    {
        app<good_v2> first(where);
        first.deploy_v2();
        first.rollout.start(plan);
        first.start_following();
        long i = 0;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (w.record().step < 1 && std::chrono::steady_clock::now() < deadline) (void)first.ask(i++);
        // The process stops here, at the second step, without a word to anyone.
    }
    const auto mid = w.record();
    REQUIRE(mid.state == pj::rollout_state::running);
    REQUIRE(mid.step == 1);

    app<good_v2> second(where);
    CHECK(second.router.status().candidate == "tickets_v2");  // the routing is the plan's, from the storage
    CHECK(second.router.status().basis_points == 1000);
    second.start_following();
    std::size_t lowest = 99;
    const auto r =
        ask_until_done(second, w, [&](const pj::rollout_record& rec) { lowest = std::min(lowest, rec.step); });
    second.stop();
    INFO(r.reason);
    for (const auto& d : r.discrepant)
        UNSCOPED_INFO(d.key << ": " << d.primary_value << " / " << d.candidate_value << " " << d.error);
    CHECK(r.state == pj::rollout_state::completed);
    CHECK(r.id == mid.id);
    CHECK(lowest == 1);  // it went on from the second step, not from the first
    CHECK(second.router.status().primary == "tickets_v2");
}

TEST_CASE("two processes serving queries follow the same plan", "[rollout]") {
    place where;
    seed(where);
    {
        app<good_v2> setup(where);
        setup.deploy_v2();
    }  // no connection is open across fork()
    auto plan = quick_plan();
    plan.dwell = std::chrono::milliseconds(200);
    plan.min_shadow_reads = 100;

    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        int code = 0;
        try {
            watcher w(where);
            app<good_v2> other(where);
            other.start_following();
            // Wait for the plan the parent starts, then serve queries until it is done.
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
            while (!pj::find_rollout(*w.storage, "tickets") && std::chrono::steady_clock::now() < deadline)
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            std::set<unsigned> shares;
            const auto r = ask_until_done(other, w, [&](const pj::rollout_record&) {
                if (auto s = other.router.status(); s.candidate) shares.insert(s.basis_points);
            });
            other.stop();
            if (r.state != pj::rollout_state::completed) code = 1;
            if (shares.size() < 3) code = 2;  // it followed the steps as they came
            if (other.router.status().primary != "tickets_v2") code = 3;
            if (other.on_v2.load() == 0) code = 4;
        } catch (...) {
            code = 5;
        }
        _exit(code);  // no destructors: the parent's schema and files stay
    }
    watcher w(where);
    app<good_v2> mine(where);
    mine.rollout.start(plan);
    mine.start_following();
    std::size_t observers = 0;
    std::set<unsigned> shares;
    const auto r = ask_until_done(mine, w, [&](const pj::rollout_record&) {
        observers = std::max(observers, w.observers());
        if (auto s = mine.router.status(); s.candidate) shares.insert(s.basis_points);
    });
    mine.stop();
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    INFO(r.reason);
    CHECK(r.state == pj::rollout_state::completed);
    CHECK(observers == 2);  // both processes' shadow reads counted
    CHECK(shares.size() >= 3);
}

TEST_CASE("the structural diff is checked before any traffic moves", "[rollout]") {
    place where;
    seed(where);
    watcher w(where);
    app<stuck_v2> a(where);
    a.deploy_v2();
    a.rollout.start(quick_plan());
    a.rollout.tick();
    const auto r = w.record();
    CHECK(r.state == pj::rollout_state::rolled_back);
    CHECK(r.gate == "structural diff");
    CHECK_THAT(r.reason, Catch::Contains("column 'status' differs"));
    CHECK_FALSE(a.router.status().candidate);
    for (long i = 0; i < 50; ++i) (void)a.ask(i);
    CHECK(a.on_v2.load() == 0);
}

TEST_CASE("the user's check and the candidate's lag are gates too", "[rollout]") {
    place where;
    seed(where);
    watcher w(where);
    SECTION("a failing check rolls back with its words") {
        app<good_v2> a(where);
        a.deploy_v2();
        a.rollout.set_check([](const pj::rollout_record& r) -> std::optional<std::string> {
            if (r.step >= 1) return "support tickets doubled";
            return std::nullopt;
        });
        a.rollout.start(quick_plan());
        a.start_following();
        const auto r = ask_until_done(a, w, [](const pj::rollout_record&) {});
        CHECK(r.state == pj::rollout_state::rolled_back);
        CHECK(r.step == 1);
        CHECK(r.gate == "check");
        CHECK_THAT(r.reason, Catch::Contains("support tickets doubled"));
        CHECK_FALSE(a.router.status().candidate);
    }
    SECTION("a candidate that stops falls behind the log and is rolled back") {
        app<fragile_v2> a(where);
        a.deploy_v2();
        auto plan = quick_plan();
        plan.max_lag = 5;
        plan.dwell = std::chrono::milliseconds(60'000);  // it would wait a minute at the first step
        a.rollout.start(plan);
        a.rollout.tick();  // the structural diff passes, and the first step begins
        REQUIRE(w.record().state == pj::rollout_state::running);
        a.start_following();
        {
            auto store = where.store();
            store->append(ticket_stream{}, "P-1", 0, ticket_opened{"P-1", "poison"});  // v2 stops here
            for (int i = 0; i < 20; ++i) {
                const std::string id = fmt::format("N-{}", i);
                store->append(ticket_stream{}, id, 0, ticket_opened{id, "new"});
            }
        }
        const auto r = ask_until_done(a, w, [](const pj::rollout_record&) {});
        CHECK(r.state == pj::rollout_state::rolled_back);
        CHECK(r.gate == "candidate lag");
        CHECK_THAT(r.reason, Catch::Contains("events behind the log") && Catch::Contains("the limit is 5"));
        CHECK_FALSE(a.router.status().candidate);
    }
}

TEST_CASE("an abort sends the traffic back at once and stops the plan", "[rollout]") {
    place where;
    seed(where);
    watcher w(where);
    app<good_v2> a(where);
    a.deploy_v2();
    auto plan = quick_plan();
    plan.dwell = std::chrono::milliseconds(60'000);
    a.rollout.start(plan);
    CHECK_THROWS_AS(a.rollout.start(plan), pj::state_error);  // one plan at a time
    a.rollout.tick();
    CHECK(a.router.status().basis_points == 100);
    const auto r = a.rollout.abort("checking a customer's report");
    CHECK(r.state == pj::rollout_state::aborted);
    CHECK(w.record().reason == "checking a customer's report");
    CHECK_FALSE(a.router.status().candidate);
    a.rollout.tick();  // nothing moves again
    CHECK_FALSE(a.router.status().candidate);
    CHECK_THROWS_AS(a.rollout.abort("twice"), pj::state_error);
}

TEST_CASE("a plan may begin with a named predicate: those keys first, then the shares", "[rollout]") {
    place where;
    seed(where);
    watcher w(where);
    app<good_v2> a(where);
    a.deploy_v2();
    auto plan = quick_plan();
    plan.steps = {{0, "staff"}, {10000, {}}};
    CHECK_THROWS_WITH(a.rollout.start(plan), Catch::Contains("no predicate named 'staff' is registered"));
    a.rollout.add_predicate("staff", [](std::string_view user) { return user.ends_with("7"); });
    a.rollout.start(plan);
    a.rollout.tick();
    REQUIRE(w.record().state == pj::rollout_state::running);
    CHECK(a.router.status().predicate);
    CHECK(a.router.status().basis_points == 0);
    CHECK(a.router.route(user(17)) == "tickets_v2");  // staff first
    CHECK(a.router.route(user(18)) == "tickets_v1");
    a.start_following();
    const auto r = ask_until_done(a, w, [](const pj::rollout_record&) {});
    a.stop();
    CHECK(r.state == pj::rollout_state::completed);
    CHECK_FALSE(a.router.status().predicate);  // cleared once the plan is done
    CHECK(a.router.route(user(18)) == "tickets_v2");
}

TEST_CASE("a process that starts while a plan runs compares its first reads as the plan says", "[rollout]") {
    place where;
    seed(where);
    watcher w(where);
    app<good_v2> a(where);
    a.deploy_v2();
    a.rollout.start(quick_plan());
    a.rollout.tick();  // pending -> the first step
    REQUIRE(w.record().state == pj::rollout_state::running);

    // A process that joins now serves shadow reads before its first judgment: v2's `closes`
    // differs from v1's on every ticket, and the plan lists it as an expected change.
    app<good_v2> late(where);
    for (long i = 0; i < 200; ++i) (void)late.ask(i);
    const auto stats = late.router.shadow_stats();
    CHECK(stats.compared == 200);
    CHECK(stats.discrepancies == 0);
}

namespace {

/// The current step's dwell passes: its start moves a minute and a second into the past, without
/// waiting for it (a wait would make a test depend on how long its reads take on a loaded
/// machine). `by` = 0 restarts the step now instead.
void age_step(const watcher& w, std::int64_t by = 61'000) {
    auto r = w.record();
    r.step_started_ms = by == 0 ? pj::detail::rollout::now_ms() : r.step_started_ms - by;
    w.storage->save_setting(pj::detail::rollout::record_key("tickets"), pj::detail::rollout::format_record(r));
}

/// `a` rolls v2 out to its first step (1%, a minute's dwell, 20 reads needed) and makes 40 reads;
/// then the dwell passes: the next judgment advances.
void at_first_step_ready(app<good_v2>& a, const watcher& w) {
    auto plan = quick_plan();
    plan.dwell = std::chrono::minutes(1);
    plan.min_shadow_reads = 20;
    a.rollout.start(plan);
    a.rollout.tick();  // the first step
    for (long i = 0; i < 40; ++i) (void)a.ask(i);
    a.rollout.tick();  // publishes a's reads; the dwell has not passed
    REQUIRE(w.record().step == 0);
    age_step(w);
}

/// The settings of a second decider: before it writes the plan, the other decider judges and
/// writes first (once), as if both had read the plan at the same moment. A `first` that throws
/// fails that write instead, as a lost connection does.
struct racing_settings {
    storage_type& inner;
    std::function<void()> first;
    int refused = 0;

    [[nodiscard]] std::optional<std::string> find_setting(std::string_view key) const {
        return inner.find_setting(key);
    }
    void save_setting(std::string_view key, std::string_view value) { inner.save_setting(key, value); }
    bool replace_setting(std::string_view key, std::optional<std::string_view> expected, std::string_view value) {
        if (first && key == pj::detail::rollout::record_key("tickets")) std::exchange(first, {})();
        const bool done = inner.replace_setting(key, expected, value);
        refused += done ? 0 : 1;
        return done;
    }
};

/// Two application processes over one database, v1 serving and v2 backfilled; the rollout `b`
/// is the second process's, deciding through `settings`.
struct two_deciders {
    place where;
    bool seeded = (seed(where), true);
    watcher w{where};
    app<good_v2> a{where};
    app<good_v2> b_app{where};
    racing_settings settings{*b_app.storage, {}};
    pj::rollout<app<good_v2>::router_type> b{b_app.control, b_app.router, settings};

    two_deciders() { a.deploy_v2(); }
};

}  // namespace

TEST_CASE_METHOD(two_deciders, "two processes deciding at once move the plan once", "[rollout]") {
    at_first_step_ready(a, w);
    const std::uint64_t revision = w.record().revision;

    SECTION("both would advance: one does") {
        settings.first = [&] { a.rollout.tick(); };  // a advances to the second step first
        b.tick();                                    // b's decision, taken on the same reading, is dropped
        const auto r = w.record();
        CHECK(r.state == pj::rollout_state::running);
        CHECK(r.step == 1);
        CHECK(r.revision == revision + 1);
        CHECK(settings.refused == 1);
        b_app.router.refresh();
        CHECK(b_app.router.status().basis_points == 1000);
    }
    SECTION("one rolls back after the other applied its next step: the roll-back holds, with no traffic left") {
        b.set_check([](const pj::rollout_record&) -> std::optional<std::string> { return "error rate up"; });
        settings.first = [&] { a.rollout.tick(); };  // a advances (10%) after b took the traffic back
        b.tick();                                    // b's roll-back is saved over a's step
        const auto r = w.record();
        CHECK(r.state == pj::rollout_state::rolled_back);
        CHECK_THAT(r.reason, Catch::Contains("error rate up"));
        CHECK(settings.refused == 1);
        a.router.refresh();
        CHECK_FALSE(a.router.status().candidate);  // a's 10% is taken back too
    }
    SECTION("one rolls back while the other advances: the roll-back holds") {
        std::atomic<bool> fail{false};
        a.rollout.set_check([&](const pj::rollout_record&) -> std::optional<std::string> {
            if (fail) return "the support queue is growing";
            return std::nullopt;
        });
        fail = true;
        settings.first = [&] { a.rollout.tick(); };  // a rolls back first
        b.tick();                                    // b would advance: it follows the roll-back instead
        const auto r = w.record();
        CHECK(r.state == pj::rollout_state::rolled_back);
        CHECK_THAT(r.reason, Catch::Contains("the support queue is growing"));
        CHECK(settings.refused == 1);
        CHECK_FALSE(b_app.router.status().candidate);  // b undid its own step
        a.router.refresh();
        CHECK_FALSE(a.router.status().candidate);
    }
}

TEST_CASE("a rollout's state, step and shadow reads are metrics", "[rollout][metrics]") {
    place where;
    seed(where);
    watcher w(where);
    app<buggy_v2> a(where);
    a.deploy_v2();
    pj::metrics_exporter metrics;
    metrics.add(a.rollout);
    CHECK(metrics.render().empty());  // no plan seen yet

    auto plan = quick_plan();
    plan.min_shadow_reads = ticket_count;
    plan.dwell = std::chrono::minutes(1);
    a.rollout.start(plan);
    a.rollout.tick();  // the first step
    const std::string l = R"({projection="tickets",candidate="tickets_v2")";
    std::string page = metrics.render();
    CHECK_THAT(page, Catch::Contains("projectionist_rollout_state" + l + R"(,state="running"} 1)"));
    CHECK_THAT(page, Catch::Contains("projectionist_rollout_state" + l + R"(,state="rolled_back"} 0)"));
    CHECK_THAT(page, Catch::Contains("projectionist_rollout_step" + l + "} 1\n"));
    CHECK_THAT(page, Catch::Contains("projectionist_rollout_steps" + l + "} 4\n"));
    CHECK_THAT(page, Catch::Contains("projectionist_rollout_step_share" + l + "} 0.01\n"));

    for (long i = 0; i < ticket_count; ++i) (void)a.ask(i);
    a.rollout.tick();  // 2% of the tickets are spoiled: rolled back
    REQUIRE(w.record().state == pj::rollout_state::rolled_back);
    page = metrics.render();
    CHECK_THAT(page, Catch::Contains("projectionist_rollout_state" + l + R"(,state="rolled_back"} 1)"));
    CHECK_THAT(page, Catch::Contains("projectionist_rollout_state" + l + R"(,state="running"} 0)"));
    CHECK_THAT(page, Catch::Contains("projectionist_rollout_step_shadow_reads" + l + "} 400\n"));
    const auto differed = a.router.shadow_stats().discrepancies;  // every read was at the first step
    CHECK(differed > 0);
    CHECK_THAT(page, Catch::Contains(fmt::format("projectionist_rollout_step_discrepancies{}}} {}\n", l, differed)));
    CHECK_THAT(page, Catch::Contains("projectionist_rollout_observers" + l + "} 1\n"));
}

TEST_CASE("another process's queries leave the candidate within the watch period of a roll-back", "[rollout]") {
    place where;
    seed(where);
    watcher w(where);
    app<good_v2> a(where);
    a.deploy_v2();
    app<good_v2> b(where, std::chrono::hours(1));  // b judges once an hour: only its watch can see the roll-back
    a.rollout.start(quick_plan());
    a.rollout.tick();
    b.router.refresh();
    REQUIRE(b.router.status().candidate == "tickets_v2");
    b.start_following();  // its first judgment at once, the next in an hour
    const auto until = [](auto done) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (!done() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return done();
    };
    REQUIRE(until([&] { return b.rollout.last_snapshot().record.has_value(); }));

    a.rollout.abort("support requests pour in");
    CHECK(until([&] { return !b.router.status().candidate; }));  // long before b's next judgment
    CHECK(b.router.status().primary == "tickets_v1");
    const long v2_before = b.on_v2.load();
    for (long i = 0; i < 100; ++i) (void)b.ask(i);
    CHECK(b.on_v2.load() == v2_before);
    b.stop();
    CHECK(w.record().state == pj::rollout_state::aborted);
}

namespace {

/// One step at 100%, judged at once: the next judgment completes the plan.
pj::rollout_plan one_step_plan() {
    auto plan = quick_plan();
    plan.steps = pj::percent_steps({100});
    plan.dwell = std::chrono::milliseconds(0);
    plan.min_shadow_reads = 0;
    return plan;
}

}  // namespace

TEST_CASE_METHOD(two_deciders, "a roll-back decided while another process completes the plan leaves the switch alone",
                 "[rollout]") {
    a.rollout.start(one_step_plan());
    a.rollout.tick();  // 100% to the candidate
    REQUIRE(w.record().state == pj::rollout_state::running);
    // b reads the plan and the routing, then its check runs long: a completes meanwhile.
    b.set_check([&](const pj::rollout_record&) -> std::optional<std::string> {
        a.rollout.tick();
        return "the check failed late";
    });
    b.tick();
    CHECK(w.record().state == pj::rollout_state::completed);
    b_app.router.refresh();
    CHECK(b_app.router.status().primary == "tickets_v2");
    CHECK_FALSE(b_app.router.status().candidate);
    b_app.control.refresh();
    CHECK(b_app.control.status_of("tickets_v2").state == pj::projection_state::serving);
}

TEST_CASE_METHOD(two_deciders, "a completion that loses to an abort takes its switch back", "[rollout]") {
    a.control.make_live("tickets_v1");
    a.rollout.start(one_step_plan());
    a.rollout.tick();
    settings.first = [&] { a.rollout.abort("by hand"); };  // saved before b's completion
    b.tick();  // b switched to v2 and made it live, then finds the plan aborted
    CHECK(w.record().state == pj::rollout_state::aborted);
    a.router.refresh();
    CHECK(a.router.status().primary == "tickets_v1");
    CHECK_FALSE(a.router.status().candidate);
    a.control.refresh();
    CHECK(a.control.status_of("tickets_v1").state == pj::projection_state::serving);
    CHECK(a.control.status_of("tickets_v2").state == pj::projection_state::retired);
    CHECK(a.control.status_of("tickets_v1").live);
    CHECK_FALSE(a.control.status_of("tickets_v2").live);
}

TEST_CASE_METHOD(two_deciders, "a step whose record was not written is set back to the recorded step's share",
                 "[rollout]") {
    at_first_step_ready(a, w);
    settings.first = [] { throw pj::storage_error("the connection to the server was lost", 0, true); };
    CHECK_THROWS_WITH(b.tick(), Catch::Contains("connection to the server was lost"));  // 10% applied, not recorded
    a.router.refresh();
    REQUIRE(a.router.status().basis_points == 1000);
    age_step(w, 0);    // the step restarts: the next judgment waits
    a.rollout.tick();  // and sets the share the record says
    CHECK(w.record().step == 0);
    CHECK(a.router.status().basis_points == 100);
}

TEST_CASE("clearing the router's discrepancies does not count reads a step did not make", "[rollout]") {
    place where;
    seed(where);
    watcher w(where);
    app<good_v2> a(where);
    a.deploy_v2();
    at_first_step_ready(a, w);
    a.rollout.tick();  // 40 reads: the second step
    REQUIRE(w.record().step == 1);
    a.router.clear_discrepancies();
    CHECK(a.router.shadow_stats().compared == 0);
    (void)a.ask(1);
    age_step(w);
    a.rollout.tick();  // one read at this step: it waits for more
    CHECK(w.record().step == 1);
    CHECK(a.rollout.snapshot().readings.compared == 1);
}

}  // namespace rollout_test
