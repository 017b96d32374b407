#pragma once

/// A rollout seen through an interface: what the command line holds per projection (rollouts of
/// different router types), and what `rollout<Router>` implements (deploy/rollout/driver.hpp).

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <projectionist/deploy/rollout/gates.hpp>
#include <projectionist/deploy/rollout/plan.hpp>
#include <projectionist/deploy/router/state.hpp>
#include <projectionist/detail/interface.hpp>

namespace projectionist {

/// A rollout and what its processes observed at the current step.
struct rollout_snapshot {
    std::optional<rollout_record> record;  ///< empty: no rollout was ever started for the projection
    rollout_readings readings;             ///< the current step's shadow reads, summed over the processes
    std::size_t observers = 0;             ///< the processes that reported shadow reads for this plan
};

class any_rollout : public detail::interface {
public:
    /// The projection's base name, "tickets".
    [[nodiscard]] virtual std::string_view projection() const noexcept = 0;
    /// The primary now and the versions the router knows.
    [[nodiscard]] virtual router_status routing() const = 0;
    /// The predicates a plan's first step may name in this process (add_predicate), sorted.
    [[nodiscard]] virtual std::vector<std::string> predicates() const = 0;
    /// Saves a new plan (pending); refused while another one is pending or running.
    virtual rollout_record start(rollout_plan plan) = 0;
    /// One evaluation: starts a pending plan, or judges the gates of the running step.
    virtual void tick() = 0;
    /// Sends the traffic back to the primary and stops the plan `aborted`.
    virtual rollout_record abort(std::string reason) = 0;
    /// The persisted plan and the current step's readings, read afresh.
    [[nodiscard]] virtual rollout_snapshot snapshot() const = 0;
};

}  // namespace projectionist
