#pragma once

/// The `rollout` command: start a rollout plan, show it, abort it. Over the rollouts the
/// application registered (`command_line::add(any_rollout&)`), whose rules are the plan's
/// (deploy/rollout/rollout.hpp).
///
///     $ ./app rollout tickets --to tickets_v2 --steps 1,10,50,100 --every 10m --max-discrepancy 0.1% --min-shadow 1000
///     $ ./app rollout status [tickets]
///     $ ./app rollout abort tickets

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include <projectionist/cli/commands.hpp>
#include <projectionist/cli/parser.hpp>
#include <projectionist/deploy/controller/any_controller.hpp>
#include <projectionist/deploy/rollout/any_rollout.hpp>
#include <projectionist/deploy/rollout/plan.hpp>
#include <projectionist/detail/text.hpp>
#include <projectionist/error.hpp>

namespace projectionist::detail::cli {

// ---- what a user types -------------------------------------------------------------------------------

/// "1,10,50,100" or "internal,1,10,50,100": shares (as `switch --percent` reads them) or, first,
/// the name of a predicate the application registered.
inline std::vector<rollout_step> parse_steps(std::string_view text) {
    std::vector<rollout_step> out;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        const std::size_t end = std::min(text.find(',', pos), text.size());
        const std::string_view part = text.substr(pos, end - pos);
        if (auto bp = parse_percent(part))
            out.push_back({*bp, {}});
        else if (!part.empty() && part[0] >= 'a' && part[0] <= 'z' && std::all_of(part.begin(), part.end(), [](char c) {
                     return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
                 }))
            out.push_back({0, std::string(part)});
        else
            throw usage_error(
                fmt::format("--steps '{}': '{}' is neither a share from 0 to 100 (e.g. 1, 12.5, 100) "
                            "nor the name of a predicate (e.g. internal)",
                            shown(text), shown(part)));
        pos = end + 1;
    }
    return out;
}

/// The plan a `rollout <projection> --to ...` command describes.
inline rollout_plan plan_from(const parsed_command& p) {
    rollout_plan plan;
    const auto to = p.value("to");
    if (!to) throw usage_error("missing option --to <version>");
    plan.candidate = *to;
    plan.steps = parse_steps(p.value("steps").value_or("1,10,50,100"));
    if (auto every = p.value("every")) {
        auto d = parse_duration(*every);
        if (!d) throw usage_error(fmt::format("--every '{}': a duration such as 500ms, 30s, 10m or 1h", shown(*every)));
        plan.dwell = *d;
    }
    if (auto rate = p.value("max-discrepancy")) {
        auto bp = parse_percent(*rate);
        if (!bp)
            throw usage_error(
                fmt::format("--max-discrepancy '{}': a share from 0% to 100% with at most two "
                            "decimals, e.g. 0.1%",
                            shown(*rate)));
        plan.max_discrepancy = static_cast<double>(*bp) / routing_buckets;
    }
    if (auto n = p.value("min-shadow")) plan.min_shadow_reads = parse_count("min-shadow", *n);
    if (auto n = p.value("max-lag")) plan.max_lag = parse_count("max-lag", *n);
    if (auto share = p.value("sample")) {
        auto bp = parse_percent(*share);
        if (!bp || *bp == 0)
            throw usage_error(fmt::format("--sample '{}': a share above 0% and at most 100%, e.g. 1%", shown(*share)));
        plan.shadow_sampling = *bp;
    }
    for (const std::string& v : p.values("expect-change"))  // repeated, or separated by commas
        for (std::string_view rest = v; !rest.empty();) {
            const std::size_t cut = std::min(rest.find(','), rest.size());
            if (cut > 0) plan.expected_changes.emplace_back(rest.substr(0, cut));
            rest.remove_prefix(std::min(cut + 1, rest.size()));
        }
    plan.make_live = !p.has("no-live");
    return plan;
}

// ---- what the command shows --------------------------------------------------------------------------

inline std::string share_text(double rate) {
    return fmt::format("{:.3g}%", rate * 100);
}

/// A rollout in a few lines: where it is, the gates, the reads of its step, and why it stopped.
inline std::string rollout_text(const rollout_snapshot& s, std::int64_t now_ms) {
    if (!s.record) return "no rollout was ever started\n";
    const rollout_record& r = *s.record;
    const rollout_plan& p = r.plan;
    std::string out =
        fmt::format("{}: rollout of {} from {}: {}", r.projection, p.candidate, r.primary, to_string(r.state));
    if (r.state == rollout_state::running)
        out += fmt::format(
            ", {} for {} (dwell {})", r.step_text(),
            elapsed_text(static_cast<double>(std::max<std::int64_t>(now_ms - r.step_started_ms, 0)) / 1000.0),
            elapsed_text(static_cast<double>(p.dwell.count()) / 1000.0));
    else if (r.state != rollout_state::pending)
        out += fmt::format(" at {}", r.step_text());
    out += "\n";
    std::vector<std::string> steps;
    for (std::size_t i = 0; i < p.steps.size(); ++i) {
        const std::string t = p.steps[i].to_string();
        steps.push_back(i == r.step && r.state == rollout_state::running ? fmt::format("[{}]", t) : t);
    }
    out += fmt::format("  steps: {}{}\n", join(steps, " -> "),
                       p.make_live ? ", then serve every query and make it live" : "");
    out += fmt::format(
        "  gates: structural diff before the first step; at most {} of at least {} shadow reads "
        "differ per step{}{}\n",
        share_text(p.max_discrepancy), group_digits(p.min_shadow_reads),
        p.max_lag ? fmt::format("; lag at most {} events", group_digits(*p.max_lag)) : std::string(),
        p.shadow_sampling < routing_buckets
            ? fmt::format("; {} of queries shadowed", router_status::format_share(p.shadow_sampling))
            : std::string());
    if (!p.expected_changes.empty()) out += fmt::format("  expected changes: {}\n", join(p.expected_changes));
    if (r.state == rollout_state::running) {
        const auto& in = s.readings;
        out += fmt::format("  shadow reads at this step: {} compared, {} differ{}, from {} process{}\n",
                           group_digits(in.compared), group_digits(in.discrepancies),
                           in.compared ? fmt::format(" ({})", share_text(static_cast<double>(in.discrepancies) /
                                                                         static_cast<double>(in.compared)))
                                       : std::string(),
                           s.observers, s.observers == 1 ? "" : "es");
    }
    if (!r.gate.empty()) out += fmt::format("  failed gate: {}\n", r.gate);
    if (!r.reason.empty()) out += fmt::format("  reason: {}\n", shown(r.reason));
    const auto& keys = r.state == rollout_state::running ? s.readings.sample : r.discrepant;
    if (!keys.empty()) {
        out += fmt::format("  discrepant keys ({} first):\n", keys.size());
        for (const auto& d : keys) {
            out += fmt::format("    {}\n      {}: {}\n      {}: {}\n", shown(d.key), r.primary,
                               d.primary_value.empty() ? "(threw)" : shown(d.primary_value), p.candidate,
                               d.candidate_value.empty() ? "(threw)" : shown(d.candidate_value));
            if (!d.error.empty()) out += fmt::format("      error: {}\n", shown(d.error));
        }
    }
    return out;
}

// ---- the command -----------------------------------------------------------------------------------------

inline any_rollout& find_rollout(const std::vector<any_rollout*>& rollouts, const session& s, std::string_view name) {
    (void)find_projection(s, name);  // an unknown projection is a name error listing the known ones
    for (auto* r : rollouts)
        if (r->projection() == name) return *r;
    std::vector<std::string_view> names;
    for (auto* r : rollouts) names.push_back(r->projection());
    throw name_error(
        fmt::format("no rollout is registered for {}; the projections with one are: {} (register one "
                    "with command_line::add(rollout))",
                    name, names.empty() ? std::string("(none)") : join(names)));
}

inline int cmd_rollout(const parsed_command& p, session& s, const std::vector<any_rollout*>& rollouts,
                       std::int64_t now_ms) {
    const std::string& what = p.args[0];
    const bool sub = what == "status" || what == "abort";
    if (sub)
        for (const auto& o : p.options)
            throw usage_error(fmt::format("rollout {} takes no option --{}", what, o.first));
    if (what == "status") {
        if (p.args.size() == 2) {
            s.out << rollout_text(find_rollout(rollouts, s, p.args[1]).snapshot(), now_ms);
            return 0;
        }
        if (rollouts.empty()) s.out << "no rollout is registered\n";
        for (auto* r : rollouts) {
            const auto snap = r->snapshot();
            s.out << (snap.record ? rollout_text(snap, now_ms)
                                  : fmt::format("{}: no rollout was ever started\n", r->projection()));
        }
        return 0;
    }
    if (what == "abort") {
        if (p.args.size() != 2 && rollouts.size() != 1)
            throw usage_error("missing argument <projection>: rollout abort <projection>");
        auto& r = p.args.size() == 2 ? find_rollout(rollouts, s, p.args[1]) : *rollouts.front();
        const auto rec = r.abort("aborted from the command line");
        s.out << fmt::format("aborted the rollout of {} at {}: {} serves every query again\n", rec.plan.candidate,
                             rec.step_text(), r.routing().primary);
        return 0;
    }
    if (p.args.size() != 1) throw usage_error(fmt::format("unexpected argument '{}'", shown(p.args[1])));
    auto& r = find_rollout(rollouts, s, what);
    rollout_plan plan = plan_from(p);
    if (const std::string& named = plan.steps.front().predicate; !named.empty()) {
        // A name typed wrong, like an unknown version: a usage error, listing the valid ones.
        const std::vector<std::string> known = r.predicates();
        if (std::find(known.begin(), known.end(), named) == known.end())
            throw name_error("--steps: " + unknown_predicate(named, known, "rollout.add_predicate(name, fn)",
                                                             fmt::format(" for the rollout of {}", what)));
    }
    auto* control = find_projection(s, what);
    if (!control->contains(plan.candidate))
        throw name_error(fmt::format("--to '{}': not a version of {}; the versions are: {}", shown(plan.candidate),
                                     what, join(control->versions())));
    control->validate(r.routing().primary, plan.candidate, verify_request{plan.expected_changes, {}});
    const rollout_record started = r.start(std::move(plan));
    r.tick();  // the structural diff, then the first step, now: the answer is on this terminal
    const auto snap = r.snapshot();
    s.out << rollout_text(snap, now_ms);
    if (snap.record && snap.record->state == rollout_state::rolled_back) return 1;
    s.out << fmt::format("the processes that serve {} follow it from here; watch it with '{} rollout status {}'\n",
                         what, s.program, what);
    (void)started;
    return 0;
}

}  // namespace projectionist::detail::cli
