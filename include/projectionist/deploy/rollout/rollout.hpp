#pragma once

/// Rollouts that promote or roll back by themselves: a plan moves a candidate version through
/// steps of traffic, each gated by shadow reads, the candidate's lag and a check of the user's,
/// after a structural diff; it makes the candidate live at the end, or sends every query back to
/// the primary as soon as a gate fails. (Link projectionist::tools: the plan is kept as JSON.)
///
///     pj::controller control(deployment, router);
///     pj::rollout tickets_rollout(control, router, storage);
///     tickets_rollout.add_predicate("internal", [](std::string_view user) { return user.starts_with("staff-"); });
///     tickets_rollout.start({.candidate = "tickets_v2", .steps = pj::percent_steps({1, 10, 50, 100}),
///                            .dwell = std::chrono::minutes(10), .min_shadow_reads = 1000, .max_discrepancy = 0.001,
///                            .expected_changes = {"status"}});
///     std::jthread follower([&](std::stop_token stop) { tickets_rollout.run(stop); });  // every process
///     auto row = tickets_rollout.shadow_query(user, find_ticket);                        // every query
///
/// **The plan** (`rollout_plan`, deploy/rollout/plan.hpp): the candidate; steps of traffic share
/// that only grow (1, 10, 50, 100 %), optionally preceded by a named router predicate (the
/// candidate at 0% plus every key the predicate accepts, kept through the later steps); the least
/// time (`dwell`) and the least compared shadow reads (`min_shadow_reads`) per step; the gates;
/// whether to make the candidate live after 100%; the share of queries shadowed.
///
/// **The gates.** Before the first step: the structural diff of the candidate's main table
/// against the primary's, with the plan's expected changes (the controller's `verify`). At every
/// step: the share of compared shadow reads whose answers differ, counting only columns that are
/// not expected changes (`ignoring_columns`), at most `max_discrepancy`; the candidate's lag at
/// most `max_lag` events, if set; the user's `rollout_check`, if set. The discrepancy gate fails
/// as soon as the differing reads exceed the limit of the step's minimum reads: with 0.1% of at
/// least 1000 reads, the second discrepancy rolls back at once.
///
/// **The outcome.** When every gate holds, the dwell has passed and the step has its reads, the
/// plan moves to the next step. After the last one at 100%, the candidate serves every query
/// (`switch_to`: the old primary is retired, following the log, `rollback` puts it back) and, if
/// the plan says so, is made live. When a gate fails, the router's candidate is cancelled at
/// once, then the plan records the gate, the reason and the first discrepant keys with both
/// answers, and stops `rolled_back`. `abort` does the same by hand (`aborted`).
///
/// **Shared by processes.** The plan and its progress are one setting of the storage, beside the
/// router's state (deploy/rollout/record.hpp), so every process with a rollout object over the
/// same storage follows it: each `tick` re-reads the router and the plan, applies the plan's
/// sampling and predicate, reports this process's shadow reads at the current step under its
/// own setting, sums every process's reports, and judges. Any process may take a decision; a
/// decision is saved as a compare-and-set of the setting against the plan as read (the storage's
/// `replace_setting`), so of two processes deciding at once one moves the plan and the other
/// follows it; a roll-back holds over a plan that moved meanwhile, and a stopped plan is never
/// restarted by a process that had not seen it stop. A restarted process resumes
/// the plan at its step. The process that decides a roll-back sends its queries back at once;
/// the others' queries follow within `rollout_options::watch` (100 ms by default: between
/// judgments, `run` re-reads the router's state that often), plus the rest of a judgment that
/// is under way. A shadow read that differs brings
/// the next judgment of its process forward to within `watch` as well.
///
/// **Threads.** `tick` and `run` drive the controller's runners (the structural diff, catching
/// up, switching, making live): call them on the thread that drives those runners, as `run` does
/// by following the log itself. `shadow_query` and `query` may be called from any thread.
///
/// The parts, one job each: plan.hpp (the plan, its state, what a user types), record.hpp (the
/// persisted JSON), compare.hpp (answers equal but for expected changes), gates.hpp (the
/// decision at a step), any_rollout.hpp (the interface the command line holds), driver.hpp
/// (`rollout<Router>`).

#include <projectionist/deploy/rollout/any_rollout.hpp>
#include <projectionist/deploy/rollout/compare.hpp>
#include <projectionist/deploy/rollout/driver.hpp>
#include <projectionist/deploy/rollout/gates.hpp>
#include <projectionist/deploy/rollout/plan.hpp>
#include <projectionist/deploy/rollout/record.hpp>
