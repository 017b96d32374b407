// The parts of a rollout that need no database: the plan's checks, its persisted form, the
// comparison that skips expected changes, and the decision at a step.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/hana/define_struct.hpp>

#include <projectionist/deploy/rollout/rollout.hpp>

namespace plan_test {

namespace pj = projectionist;

namespace {

struct answer_row {
    BOOST_HANA_DEFINE_STRUCT(answer_row, (std::string, id), (std::string, status), (int, closes));
};

pj::router_status routing() {
    pj::router_status s;
    s.projection = "tickets";
    s.versions = {"tickets_v1", "tickets_v2"};
    s.primary = "tickets_v1";
    return s;
}

pj::rollout_record running_at(std::size_t step, std::int64_t started_ms) {
    pj::rollout_record r;
    r.projection = "tickets";
    r.id = "abc";
    r.primary = "tickets_v1";
    r.plan = {.candidate = "tickets_v2",
              .steps = pj::percent_steps({1, 10, 50, 100}),
              .dwell = std::chrono::milliseconds(1000),
              .min_shadow_reads = 1000,
              .max_discrepancy = 0.001};
    r.state = pj::rollout_state::running;
    r.step = step;
    r.step_started_ms = started_ms;
    return r;
}

}  // namespace

TEST_CASE("answers are equal but for the expected changes, at any depth", "[rollout]") {
    const pj::ignoring_columns same({"closes"});
    CHECK(same(answer_row{"t-1", "open", 0}, answer_row{"t-1", "open", 3}));
    CHECK_FALSE(same(answer_row{"t-1", "open", 0}, answer_row{"t-1", "closed", 0}));
    CHECK(same(std::optional<answer_row>{}, std::optional<answer_row>{}));
    CHECK_FALSE(same(std::optional<answer_row>{}, std::optional<answer_row>{answer_row{"t-1", "open", 0}}));
    CHECK(same(std::vector<answer_row>{{"a", "open", 1}}, std::vector<answer_row>{{"a", "open", 2}}));
    CHECK_FALSE(same(std::vector<answer_row>{{"a", "open", 1}}, std::vector<answer_row>{}));
    CHECK(same(std::string("x"), std::string("x")));
    CHECK_FALSE(pj::ignoring_columns{}(answer_row{"t-1", "open", 0}, answer_row{"t-1", "open", 3}));
}

TEST_CASE("a plan is checked against the router before it is saved", "[rollout]") {
    pj::rollout_plan p{.candidate = "tickets_v2", .steps = pj::percent_steps({1, 10, 50, 100})};
    CHECK_NOTHROW(pj::check_rollout_plan(p, routing()));
    p.steps.insert(p.steps.begin(), pj::rollout_step{0, "internal"});
    CHECK_NOTHROW(pj::check_rollout_plan(p, routing()));

    auto refused = [&](pj::rollout_plan q, const std::string& words) {
        CHECK_THROWS_WITH(pj::check_rollout_plan(q, routing()), Catch::Contains(words));
    };
    refused({.candidate = "tickets_v3", .steps = pj::percent_steps({100})}, "does not know tickets_v3");
    refused({.candidate = "tickets_v1", .steps = pj::percent_steps({100})}, "is the primary already");
    refused({.candidate = "tickets_v2", .steps = {}}, "has no step");
    refused({.candidate = "tickets_v2", .steps = pj::percent_steps({10, 5, 100})},
            "the shares must grow: 5% comes after 10%");
    refused({.candidate = "tickets_v2", .steps = pj::percent_steps({10, 50})}, "end the steps at 100");
    refused({.candidate = "tickets_v2", .steps = {{1000, {}}, {0, "internal"}, {10000, {}}}}, "must come first");
    refused({.candidate = "tickets_v2", .steps = pj::percent_steps({100}), .max_discrepancy = 2}, "discrepancy limit");
    p = {.candidate = "tickets_v2", .steps = pj::percent_steps({10, 50}), .make_live = false};
    CHECK_NOTHROW(pj::check_rollout_plan(p, routing()));  // it may stop below 100% when it makes nothing live
}

TEST_CASE("a rollout is saved as JSON and read back; a damaged value is an error naming the key", "[rollout]") {
    auto r = running_at(2, 12345);
    r.plan.steps.insert(r.plan.steps.begin(), pj::rollout_step{0, "internal"});
    r.plan.expected_changes = {"status", "closes"};
    r.plan.max_lag = 100;
    r.discrepant = {{"user-1", "{id: \"t\"}", "{id: \"u\"}", ""}};
    r.gate = "shadow-read discrepancy";
    r.reason = "2 of 3 \"differed\"";
    r.revision = 7;
    const std::string text = pj::detail::rollout::format_record(r);
    const auto back = pj::detail::rollout::parse_record(text, "projectionist.rollout.tickets");
    CHECK(back.plan == r.plan);
    CHECK(back.step == 2);
    CHECK(back.step_started_ms == 12345);
    CHECK(back.discrepant == r.discrepant);
    CHECK(back.reason == r.reason);
    CHECK(back.revision == 7);
    CHECK(back.state == pj::rollout_state::running);

    const std::string key = "projectionist.rollout.tickets";
    CHECK_THROWS_WITH(pj::detail::rollout::parse_record("{not json", key),
                      Catch::Contains("'projectionist.rollout.tickets' is invalid: it is not JSON"));
    std::string wrong_state = text;
    wrong_state.replace(wrong_state.find("\"running\""), 9, "\"sideways\"");
    CHECK_THROWS_WITH(pj::detail::rollout::parse_record(wrong_state, key), Catch::Contains("the state 'sideways'"));
    std::string newer = text;
    newer.replace(newer.find("\"format\":1"), 10, "\"format\":9");
    CHECK_THROWS_WITH(pj::detail::rollout::parse_record(newer, key), Catch::Contains("format 9 is not known"));
    std::string no_step = text;
    no_step.replace(no_step.find("\"step\":2"), 8, "\"step\":9");
    CHECK_THROWS_WITH(pj::detail::rollout::parse_record(no_step, key), Catch::Contains("the step 9 is not one of"));
}

TEST_CASE("the decision at a step: roll back as soon as the limit is certain to be passed, else wait or move on",
          "[rollout]") {
    const auto r = running_at(1, 10'000);
    pj::rollout_readings in;
    in.now_ms = 10'500;
    in.compared = 10;
    CHECK(pj::decide_rollout(r, in).what == pj::rollout_decision::wait);  // the dwell is not over
    in.discrepancies = 1;  // 1 in a step of at least 1000 reads: still within 0.1%
    CHECK(pj::decide_rollout(r, in).what == pj::rollout_decision::wait);
    in.discrepancies = 2;  // 2 can never be within 0.1% of 1000
    const auto d = pj::decide_rollout(r, in);
    CHECK(d.what == pj::rollout_decision::roll_back);
    CHECK(d.gate == "shadow-read discrepancy");
    CHECK_THAT(d.reason,
               Catch::Contains("2 of 10 compared shadow reads differed") && Catch::Contains("step 2 of 4 (10%)"));

    in.discrepancies = 1;
    in.now_ms = 11'000;
    CHECK(pj::decide_rollout(r, in).what == pj::rollout_decision::wait);  // dwell over, 10 of 1000 reads
    in.compared = 1000;
    CHECK(pj::decide_rollout(r, in).what == pj::rollout_decision::advance);
    in.compared = 5000;
    in.discrepancies = 5;  // 0.1% of 5000 exactly
    CHECK(pj::decide_rollout(r, in).what == pj::rollout_decision::advance);
    in.discrepancies = 6;
    CHECK(pj::decide_rollout(r, in).what == pj::rollout_decision::roll_back);

    in.discrepancies = 0;
    auto lagging = r;
    lagging.plan.max_lag = 10;
    in.lag = 11;
    CHECK(pj::decide_rollout(lagging, in).gate == "candidate lag");
    in.lag = 10;
    CHECK(pj::decide_rollout(lagging, in).what == pj::rollout_decision::advance);
    in.check_failure = "too many support tickets";
    CHECK(pj::decide_rollout(lagging, in).gate == "check");
}

TEST_CASE("only the observations of the plan's current step are summed", "[rollout]") {
    const auto r = running_at(1, 0);
    std::vector<pj::rollout_observation> list{
        {"abc", 1, 100, 1, {{"user-1", "a", "b", ""}}},
        {"abc", 1, 50, 0, {}},
        {"abc", 0, 900, 9, {{"user-9", "a", "b", ""}}},  // the step before
        {"old", 1, 900, 9, {}},                          // another plan
    };
    const auto in = pj::sum_observations(r, list);
    CHECK(in.compared == 150);
    CHECK(in.discrepancies == 1);
    REQUIRE(in.sample.size() == 1);
    CHECK(in.sample[0].key == "user-1");
}

TEST_CASE("a new epoch waits for the shadow reads begun in the old one, and not for later ones", "[rollout]") {
    using namespace std::chrono_literals;
    pj::detail::rollout::query_epochs epochs;
    std::atomic<bool> release{false}, advanced{false};
    std::thread old_read([&] {
        const auto in = epochs.enter();
        while (!release) std::this_thread::sleep_for(1ms);
    });
    while (epochs.running() == 0) std::this_thread::sleep_for(1ms);
    std::thread judge([&] {
        epochs.advance();
        advanced = true;
    });
    while (epochs.epoch() == 0) std::this_thread::sleep_for(1ms);
    {
        const auto new_read = epochs.enter();  // begun in the new epoch: not waited for
        std::this_thread::sleep_for(30ms);
        CHECK_FALSE(advanced.load());  // the old read still runs
        release = true;
        old_read.join();
        judge.join();
        CHECK(advanced.load());
        CHECK(epochs.running() == 1);
    }
    CHECK(epochs.running() == 0);
}

}  // namespace plan_test
