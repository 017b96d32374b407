#pragma once

/// What a rollout plan says (the candidate, its steps, the dwell and the gates) and how far it
/// got (its state, step, the gate that failed and the discrepant keys it recorded).
///
///     projectionist::rollout_plan plan{.candidate = "tickets_v2",
///                                      .steps = projectionist::percent_steps({1, 10, 50, 100}),
///                                      .dwell = std::chrono::minutes(10), .min_shadow_reads = 1000,
///                                      .max_discrepancy = 0.001, .expected_changes = {"status"}};

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <projectionist/deploy/router/bucket.hpp>
#include <projectionist/deploy/router/state.hpp>
#include <projectionist/detail/enum_text.hpp>
#include <projectionist/detail/text.hpp>
#include <projectionist/error.hpp>

namespace projectionist {

/// One step of a rollout: a share of the routing keys, or a named predicate of the router (the
/// candidate at 0% plus every key the predicate accepts: "internal users first").
struct rollout_step {
    unsigned basis_points = 0;  ///< the candidate's share, 1 basis point = 0.01%
    std::string predicate{};    ///< when not empty: this named predicate, at the share above (0)

    friend bool operator==(const rollout_step&, const rollout_step&) = default;

    /// "10%", "0.5%", or "internal (predicate)".
    [[nodiscard]] std::string to_string() const {
        return predicate.empty() ? router_status::format_share(basis_points) : fmt::format("{} (predicate)", predicate);
    }
};

/// A rollout of one candidate version, step by step, each step gated.
struct rollout_plan {
    std::string candidate;                     ///< the versioned name rolled out, "tickets_v2"
    std::vector<rollout_step> steps;           ///< in order; the shares only grow
    std::chrono::milliseconds dwell{600'000};  ///< the least time spent at each step
    std::uint64_t min_shadow_reads = 1000;     ///< the least compared shadow reads at each step
    double max_discrepancy = 0.001;            ///< the largest share of compared reads that may differ (0.001 = 0.1%)
    std::optional<std::uint64_t> max_lag{};    ///< the candidate's largest lag in events, if gated
    std::vector<std::string> expected_changes{};  ///< columns whose differences are not discrepancies
    bool make_live = true;                        ///< after the last step at 100%: switch to it and make it live
    unsigned shadow_sampling = 10000;             ///< the share of shadow_query calls shadowed, in basis points

    friend bool operator==(const rollout_plan&, const rollout_plan&) = default;
};

/// Where a rollout is.
enum class rollout_state {
    pending,      ///< written, not started: the structural diff comes first
    running,      ///< at one of its steps
    completed,    ///< every step passed (and the candidate serves every query, live if the plan says so)
    rolled_back,  ///< a gate failed: the traffic went back to the primary
    aborted,      ///< stopped by hand: the traffic went back to the primary
};

template <>
inline constexpr auto detail::enum_names_of<rollout_state> = detail::enum_names<rollout_state::aborted>{
    {"pending", "running", "completed", "rolled_back", "aborted"}, "unknown"};

/// Whether the rollout still moves (pending or running).
[[nodiscard]] constexpr bool active(rollout_state s) noexcept {
    return s == rollout_state::pending || s == rollout_state::running;
}

/// A key whose answers differed, with both answers in words.
struct rollout_discrepancy {
    std::string key;
    std::string primary_value;
    std::string candidate_value;
    std::string error{};  ///< when the shadow run or the comparison threw

    friend bool operator==(const rollout_discrepancy&, const rollout_discrepancy&) = default;
};

/// A rollout as persisted: the plan and its progress.
struct rollout_record {
    std::string projection;  ///< the base name, "tickets"
    std::string id;          ///< unique per plan: observations of an earlier plan are never counted
    std::string primary;     ///< the version that served every query when the plan started
    rollout_plan plan;
    rollout_state state = rollout_state::pending;
    std::size_t step = 0;                           ///< index into plan.steps (running)
    std::int64_t step_started_ms = 0;               ///< system clock, ms since the epoch, when the step began
    std::int64_t finished_ms = 0;                   ///< when it completed, rolled back or was aborted
    std::string gate{};                             ///< rolled_back: the gate that failed ("discrepancy", "lag", ...)
    std::string reason{};                           ///< rolled_back, aborted: why, in words
    std::vector<rollout_discrepancy> discrepant{};  ///< rolled_back: the first discrepant keys
    std::uint64_t revision = 0;                     ///< bumped by every decision

    /// "step 2 of 4 (10%)".
    [[nodiscard]] std::string step_text() const {
        if (plan.steps.empty()) return "no step";
        const std::size_t i = step < plan.steps.size() ? step : plan.steps.size() - 1;
        return fmt::format("step {} of {} ({})", i + 1, plan.steps.size(), plan.steps[i].to_string());
    }
};

namespace detail::rollout {

/// The clock of a plan's steps: the system clock, shared by the processes, in ms since the epoch.
[[nodiscard]] inline std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace detail::rollout

/// Steps of whole percentages: `percent_steps({1, 10, 50, 100})`.
[[nodiscard]] inline std::vector<rollout_step> percent_steps(std::initializer_list<unsigned> percents) {
    std::vector<rollout_step> out;
    for (unsigned p : percents) out.push_back({p * 100, {}});
    return out;
}

/// Checks a plan against the versions a router knows; throws `projectionist::error` saying what
/// is wrong and how to write it.
inline void check_rollout_plan(const rollout_plan& p, const router_status& routing) {
    auto wrong = [&](const std::string& what) {
        throw error(fmt::format("projectionist: rollout of {} to {}: {}", routing.projection, p.candidate, what));
    };
    bool known = false;
    for (const auto& v : routing.versions) known = known || v == p.candidate;
    if (!known)
        wrong(fmt::format("the router of {} does not know {}; its versions are: {}", routing.projection, p.candidate,
                          detail::join(routing.versions)));
    if (p.candidate == routing.primary) wrong("it is the primary already and serves every query");
    if (p.steps.empty()) wrong("the plan has no step; give steps such as 1,10,50,100");
    unsigned last = 0;
    for (std::size_t i = 0; i < p.steps.size(); ++i) {
        const auto& s = p.steps[i];
        if (!s.predicate.empty() && i != 0)
            wrong(fmt::format("the predicate step '{}' must come first, before the shares", s.predicate));
        if (s.predicate.empty() && s.basis_points == 0) wrong("a step of 0% sends the candidate nothing");
        if (s.predicate.empty() && s.basis_points <= last)
            wrong(fmt::format("the shares must grow: {} comes after {}", router_status::format_share(s.basis_points),
                              router_status::format_share(last)));
        last = s.basis_points;
    }
    if (p.make_live && last != routing_buckets)
        wrong(fmt::format("the last step is {}, so the candidate cannot be made live; end the steps at 100",
                          router_status::format_share(last)));
    if (!(p.max_discrepancy >= 0 && p.max_discrepancy <= 1)) wrong("the discrepancy limit is a share from 0% to 100%");
    if (p.shadow_sampling == 0 || p.shadow_sampling > routing_buckets)
        wrong("the shadow sampling is a share above 0% and at most 100%");
    if (p.dwell.count() < 0) wrong("the dwell time is negative");
}

}  // namespace projectionist
