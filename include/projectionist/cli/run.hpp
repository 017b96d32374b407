#pragma once

/// `run`: follows the log with every version until a signal, the options' stop token or the
/// `--for` duration, which end a catch-up between two batches; deleted versions are skipped (the
/// controller's catch-up does not touch them).
/// Every report interval, a line per version that applied events or is behind, with events/s
/// and the ETA; with `--metrics`, an HTTP endpoint for Prometheus and probes while it runs.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <ostream>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <projectionist/cli/commands.hpp>
#include <projectionist/cli/metrics_server.hpp>
#include <projectionist/cli/parser.hpp>
#include <projectionist/cli/signals.hpp>
#include <projectionist/deploy/controller/any_controller.hpp>
#include <projectionist/detail/text.hpp>
#include <projectionist/error.hpp>
#include <projectionist/runner/status.hpp>

namespace projectionist::detail::cli {

/// "  tickets_v2: +1,200 events, 120 events/s; position 5,000, lag 600, ETA 0:05", ETA "?" with
/// no events applied, and "caught up" at lag 0.
inline std::string run_report_line(std::string_view version, std::uint64_t applied, double seconds,
                                   std::uint64_t position, std::uint64_t lag) {
    const double rate = seconds > 0 ? static_cast<double>(applied) / seconds : 0;
    std::string eta = "caught up";
    if (lag != 0) eta = rate > 0 ? "ETA " + clock_text(static_cast<double>(lag) / rate) : std::string("ETA ?");
    return fmt::format("  {}: +{} events, {} events/s; position {}, lag {}, {}", version, group_digits(applied),
                       group_digits(static_cast<std::uint64_t>(rate)), group_digits(position), group_digits(lag), eta);
}

inline int cmd_run(const parsed_command& p, session& ctx) {
    using clock = std::chrono::steady_clock;
    std::optional<std::chrono::milliseconds> limit;
    if (auto text = p.value("for")) {
        limit = parse_duration(*text);
        if (!limit)
            throw usage_error(fmt::format("--for '{}': give a duration such as 500ms, 30s, 5m or 1h", shown(*text)));
    }
    struct followed {
        entry_ptr e;
        std::string_view v;
        std::uint64_t applied = 0;
        std::uint64_t since_report = 0;
        bool failed = false;
    };
    std::vector<followed> all;
    std::vector<std::string> dormant, deleted;
    for (auto* e : ctx.entries) {
        e->refresh();
        for (auto v : e->versions()) {
            all.push_back({e, v});
            const runner_status s = e->status_of(v);
            if (s.dormant) dormant.emplace_back(v);
            if (s.state == projection_state::deleted) deleted.emplace_back(v);
        }
    }
    signal_scope signals(ctx.options.handle_signals);
    std::stop_source stop;
    std::stop_callback forward(ctx.options.stop, [&stop] { stop.request_stop(); });
    const auto started = clock::now();
    const clock::time_point deadline = limit ? started + *limit : clock::time_point::max();
    std::vector<std::string_view> names;
    for (const auto& f : all) names.push_back(f.v);
    std::string until = ctx.options.handle_signals ? "SIGINT (Ctrl-C) or SIGTERM" : "stopped";
    if (limit) until += fmt::format(", at most {}", elapsed_text(limit->count() / 1000.0));
    const auto metrics = serve_run_metrics(p, ctx.entries);
    ctx.out << fmt::format("run: following the log with {} until {}\n", join(names), until);
    if (metrics)
        ctx.out << fmt::format("  metrics: http://{}:{}/metrics (and /healthz, /readyz)\n",
                               metrics->endpoint->address(), metrics->endpoint->port());
    if (!dormant.empty()) ctx.out << fmt::format("  dormant until init: {}\n", join(dormant));
    if (!deleted.empty()) ctx.out << fmt::format("  deleted, skipped: {}\n", join(deleted));
    ctx.out << std::flush;

    std::string reason;
    const std::function<bool()> stopping = [&] {
        return ctx.options.stop.stop_requested() || stop.stop_requested() || signals.received() != 0 ||
               (limit && clock::now() >= deadline);
    };
    auto last_report = started;
    std::mutex m;
    std::condition_variable_any cv;
    for (;;) {
        if (ctx.options.stop.stop_requested() || stop.stop_requested())
            reason = "stop requested";
        else if (signals.received() != 0)
            reason = fmt::format("{} received", signal_name(signals.received()));
        else if (limit && clock::now() >= deadline)
            reason = "the --for duration elapsed";
        if (!reason.empty()) break;

        std::uint64_t applied = 0;
        for (auto& f : all) {
            if (stopping()) break;
            try {
                // the checkpoint is this runner's own: not re-read; a stop ends it between two batches
                const projection_state was = f.e->refresh(f.v, false);
                const std::optional<std::uint64_t> caught_up = f.e->catch_up(f.v, false, stopping);
                if (!caught_up) continue;  // deleted: catching up would re-create it
                const std::uint64_t n = *caught_up;
                if (was == projection_state::declared && f.e->status_of(f.v).state != projection_state::declared)
                    ctx.out << fmt::format("  {}: initialized by its automatic kick-off\n", f.v) << std::flush;
                f.applied += n;
                f.since_report += n;
                applied += n;
            } catch (const error& x) {
                if (f.failed) continue;
                // A lost connection: reconnect with the version's bounded backoff, saying so.
                const bool back = f.e->recover(
                    f.v, x,
                    [&](const detail::reconnect_attempt& a) {
                        ctx.err << fmt::format("{}: {}\n", f.v, projectionist::detail::describe(a)) << std::flush;
                    },
                    stopping);
                if (back) {
                    ctx.err << fmt::format("{}: reconnected; going on from position {}\n", f.v,
                                           group_digits(f.e->status_of(f.v).position))
                            << std::flush;
                    continue;
                }
                const runner_status s = f.e->status_of(f.v);
                ctx.err << fmt::format("{}: stopped: {}\n", f.v, s.error ? *s.error : std::string(x.what()))
                        << std::flush;
                f.failed = true;
            }
        }
        const auto now = clock::now();
        if (now - last_report >= ctx.options.run_report_interval) {
            const double seconds = std::chrono::duration<double>(now - last_report).count();
            for (auto& f : all) {
                if (f.failed) continue;
                const runner_status s = f.e->status_of(f.v);
                if (f.since_report == 0 && (s.lag == 0 || s.dormant || s.state == projection_state::deleted)) continue;
                ctx.out << run_report_line(f.v, f.since_report, seconds, s.position, s.lag) << '\n';
                f.since_report = 0;
            }
            ctx.out << std::flush;
            last_report = now;
        }
        if (applied == 0 && !stopping()) {
            auto wait = ctx.options.poll_interval;
            if (ctx.options.handle_signals) wait = std::min(wait, std::chrono::milliseconds(100));
            if (limit) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
                wait = std::max(std::chrono::milliseconds(0), std::min(wait, left));
            }
            std::unique_lock lock(m);
            cv.wait_for(lock, stop.get_token(), wait, [] { return false; });
        }
    }
    const double seconds = std::chrono::duration<double>(clock::now() - started).count();
    std::uint64_t total = 0;
    bool failed = false;
    for (const auto& f : all) {
        total += f.applied;
        failed = failed || f.failed;
    }
    ctx.out << fmt::format("run: stopped ({}) after {}; {} events applied\n", reason, elapsed_text(seconds),
                           group_digits(total));
    for (const auto& f : all) {
        const runner_status s = f.e->status_of(f.v);
        ctx.out << fmt::format("  {}: {}, position {}, lag {}{}\n", f.v, state_text(s), group_digits(s.position),
                               group_digits(s.lag), s.error ? fmt::format("; error: {}", *s.error) : std::string());
    }
    return failed ? 1 : 0;
}

}  // namespace projectionist::detail::cli
