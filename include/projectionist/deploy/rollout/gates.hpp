#pragma once

/// The gates of a running step and the decision they lead to: roll back as soon as one fails,
/// move on once the step has lasted its dwell time with enough shadow reads, else wait. A pure
/// function of what the processes observed, so it is tested without a clock or a database.
///
///     auto d = projectionist::decide_rollout(record, readings);
///     if (d.what == projectionist::rollout_decision::roll_back) ... d.gate, d.reason

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <projectionist/deploy/rollout/plan.hpp>
#include <projectionist/deploy/rollout/record.hpp>

namespace projectionist {

/// The gates, as the status names the one that failed.
namespace rollout_gates {
inline constexpr std::string_view structural_diff = "structural diff";
inline constexpr std::string_view discrepancy = "shadow-read discrepancy";
inline constexpr std::string_view lag = "candidate lag";
inline constexpr std::string_view check = "check";
inline constexpr std::string_view step = "step";  ///< the step itself could not be applied
}  // namespace rollout_gates

/// What every process observed at the current step, plus this process's lag and check.
struct rollout_readings {
    std::uint64_t compared = 0;                  ///< shadow reads compared, summed over the processes
    std::uint64_t discrepancies = 0;             ///< of those, the ones that differed
    std::vector<rollout_discrepancy> sample{};   ///< the first discrepant keys
    std::optional<std::uint64_t> lag{};          ///< the candidate's lag in events, when known
    std::optional<std::string> check_failure{};  ///< what the user's check said, when it failed
    std::int64_t now_ms = 0;                     ///< system clock, ms since the epoch
};

struct rollout_decision {
    enum kind { wait, advance, roll_back } what = wait;
    std::string gate{};    ///< roll_back: which gate failed
    std::string reason{};  ///< roll_back: why; wait: what it waits for
};

/// The share `max` of `reads` as a count: the discrepancies allowed among `reads` compared reads.
[[nodiscard]] inline double allowed_discrepancies(double max, std::uint64_t reads) noexcept {
    return max * static_cast<double>(reads);
}

/// The decision at a running step. The discrepancy gate fails as soon as the discrepancies seen
/// exceed the limit of the step's minimum reads (or of the reads compared, when more): no number
/// of further agreeing reads could bring the rate under the limit by the end of the step.
[[nodiscard]] inline rollout_decision decide_rollout(const rollout_record& r, const rollout_readings& in) {
    const rollout_plan& p = r.plan;
    const std::uint64_t basis = std::max(in.compared, p.min_shadow_reads);
    if (in.discrepancies > 0 &&
        static_cast<double>(in.discrepancies) > allowed_discrepancies(p.max_discrepancy, basis)) {
        const double rate =
            in.compared == 0 ? 1.0 : static_cast<double>(in.discrepancies) / static_cast<double>(in.compared);
        return {rollout_decision::roll_back, std::string(rollout_gates::discrepancy),
                fmt::format("{} of {} compared shadow reads differed ({:.3g}%) at {}; the limit is {:.3g}% of at "
                            "least {} reads",
                            in.discrepancies, in.compared, rate * 100, r.step_text(), p.max_discrepancy * 100,
                            p.min_shadow_reads)};
    }
    if (p.max_lag && in.lag && *in.lag > *p.max_lag)
        return {rollout_decision::roll_back, std::string(rollout_gates::lag),
                fmt::format("{} is {} events behind the log at {}; the limit is {}", p.candidate, *in.lag,
                            r.step_text(), *p.max_lag)};
    if (in.check_failure)
        return {rollout_decision::roll_back, std::string(rollout_gates::check),
                fmt::format("the check failed at {}: {}", r.step_text(), *in.check_failure)};
    const std::int64_t elapsed = in.now_ms - r.step_started_ms;
    if (elapsed < p.dwell.count())
        return {
            rollout_decision::wait,
            {},
            fmt::format("{} ms of {} ms at {}", std::max<std::int64_t>(elapsed, 0), p.dwell.count(), r.step_text())};
    if (in.compared < p.min_shadow_reads)
        return {rollout_decision::wait,
                {},
                fmt::format("{} of {} shadow reads at {}", in.compared, p.min_shadow_reads, r.step_text())};
    return {rollout_decision::advance, {}, {}};
}

/// The current step's readings summed over the processes' observations (those of this plan and
/// step only), with the first `sample_size` discrepant keys.
[[nodiscard]] inline rollout_readings sum_observations(const rollout_record& r,
                                                       const std::vector<rollout_observation>& observations,
                                                       std::size_t sample_size = 10) {
    rollout_readings out;
    for (const auto& o : observations) {
        if (o.plan_id != r.id || o.step != r.step) continue;
        out.compared += o.compared;
        out.discrepancies += o.discrepancies;
        for (const auto& d : o.sample)
            if (out.sample.size() < sample_size) out.sample.push_back(d);
    }
    return out;
}

}  // namespace projectionist
