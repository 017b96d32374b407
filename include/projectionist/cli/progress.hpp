#pragma once

/// The progress of a backfill: a redrawn bar on a terminal, a plain line per interval otherwise
/// (CI, systemd, container logs), drawn by a watcher thread that polls the runner's position.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <ostream>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include <projectionist/cli/options.hpp>
#include <projectionist/detail/text.hpp>

namespace projectionist::detail::cli {

/// What the progress of a backfill shows at one look: the position, and the phase of a bulk
/// backfill ("reading", "applying", "flushing"; empty in batch mode).
struct progress_sample {
    progress_sample(std::uint64_t at, std::string_view in = {}) : position(at), phase(in) {}  // NOLINT: implicit
    std::uint64_t position = 0;
    std::string phase;
};

/// A bulk backfill's phase as its progress shows it: "applying", or "applying, pass 3" once
/// `later_passes` later passes over the log started (runner_options::bulk_passes_by_aggregate;
/// each pass reads from where the one it continues split, so the position goes back when it
/// starts); empty in batch mode.
inline std::string bulk_phase_text(std::string_view phase, std::uint64_t later_passes) {
    if (phase.empty() || later_passes == 0) return std::string(phase);
    return fmt::format("{}, pass {}", phase, later_passes + 1);
}

/// " - bulk: applying" after a line, or nothing in batch mode.
inline std::string phase_suffix(std::string_view phase) {
    return phase.empty() ? std::string() : fmt::format(" - bulk: {}", phase);
}

/// "tickets_v2 [############------------------]  40%  480/1,200 events  9,600 events/s  ETA 0:01",
/// followed by " - bulk: flushing" in a bulk backfill's flushing phase
inline std::string progress_bar_line(std::string_view name, std::uint64_t done, std::uint64_t total, double rate,
                                     std::optional<double> eta, std::size_t width = 30, std::string_view phase = {}) {
    const std::uint64_t shown = std::min(done, total);
    const std::size_t filled = total == 0 ? width : static_cast<std::size_t>(shown * width / total);
    const std::uint64_t percent = total == 0 ? 100 : shown * 100 / total;
    std::string bar(filled, '#');
    bar.append(width - filled, '-');
    return fmt::format("{} [{}] {:3}%  {}/{} events  {} events/s  ETA {}{}", name, bar, percent, group_digits(shown),
                       group_digits(total), group_digits(static_cast<std::uint64_t>(rate)),
                       eta ? clock_text(*eta) : std::string("?"), phase_suffix(phase));
}

/// "backfill tickets_v2: 40% (480/1,200 events), 9,600 events/s, ETA 0:01", followed by
/// " - bulk: applying" while a bulk backfill applies events
inline std::string progress_plain_line(std::string_view name, std::uint64_t done, std::uint64_t total, double rate,
                                       std::optional<double> eta, std::string_view phase = {}) {
    const std::uint64_t shown = std::min(done, total);
    const std::uint64_t percent = total == 0 ? 100 : shown * 100 / total;
    return fmt::format("backfill {}: {}% ({}/{} events), {} events/s, ETA {}{}", name, percent, group_digits(shown),
                       group_digits(total), group_digits(static_cast<std::uint64_t>(rate)),
                       eta ? clock_text(*eta) : std::string("?"), phase_suffix(phase));
}

/// Shows a backfill's progress while it runs on another thread: `sample()` (the position, and
/// the phase of a bulk backfill) is polled from a watcher thread, which alone writes to `out`
/// until `finish`.
class backfill_progress {
public:
    using clock = std::chrono::steady_clock;

    backfill_progress(std::ostream& out, bool terminal, const command_line_options& options, std::string name,
                      std::uint64_t from, std::uint64_t to, std::function<progress_sample()> sample)
        : out_(out),
          terminal_(terminal),
          interval_(std::max(options.progress_interval, std::chrono::milliseconds(1))),
          line_interval_(options.progress_line_interval),
          name_(std::move(name)),
          from_(from),
          to_(std::max(from, to)),
          sample_(std::move(sample)),
          started_(clock::now()),
          last_line_(started_) {
        if (to_ > from_) watcher_ = std::jthread([this](std::stop_token stop) { watch(stop); });
    }
    backfill_progress(const backfill_progress&) = delete;
    backfill_progress& operator=(const backfill_progress&) = delete;
    ~backfill_progress() { stop(); }

    /// Stops the watcher; on success shows the final state (a full bar on a terminal), and ends
    /// a terminal's line in any case.
    void finish(bool ok, std::uint64_t position) {
        stop();
        if (terminal_ && (drawn_ != 0 || ok)) {
            if (ok && to_ > from_) draw(position);
            if (drawn_ != 0) out_ << '\n' << std::flush;
            drawn_ = 0;
        }
    }

private:
    void stop() {
        if (watcher_.joinable()) {
            watcher_.request_stop();
            watcher_.join();
        }
    }

    void watch(std::stop_token stop) {
        std::mutex m;
        std::condition_variable_any cv;
        std::unique_lock lock(m);
        while (!cv.wait_for(lock, stop, interval_, [] { return false; }) && !stop.stop_requested()) {
            try {
                const progress_sample now = sample_();
                if (terminal_)
                    draw(now.position, now.phase);
                else
                    line(now.position, now.phase);
            } catch (...) {
                return;  // progress is best effort; the backfill reports its own errors
            }
        }
    }

    [[nodiscard]] std::pair<double, std::optional<double>> rate_and_eta(std::uint64_t position) const {
        const std::uint64_t done = position > from_ ? position - from_ : 0;
        const double seconds = std::chrono::duration<double>(clock::now() - started_).count();
        const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
        std::optional<double> eta;
        if (position >= to_)
            eta = 0;
        else if (rate > 0)
            eta = static_cast<double>(to_ - position) / rate;
        return {rate, eta};
    }

    void draw(std::uint64_t position, std::string_view phase = {}) {
        const auto [rate, eta] = rate_and_eta(position);
        std::string text =
            progress_bar_line(name_, position > from_ ? position - from_ : 0, to_ - from_, rate, eta, 30, phase);
        const std::size_t length = text.size();
        if (length < drawn_) text.append(drawn_ - length, ' ');
        drawn_ = length;
        out_ << '\r' << text << std::flush;
    }

    /// A plain line when the interval has passed since the last one (the final line is the
    /// command's own).
    void line(std::uint64_t position, std::string_view phase) {
        const std::uint64_t done = std::min(position > from_ ? position - from_ : 0, to_ - from_);
        const auto now = clock::now();
        if (done == to_ - from_ || now - last_line_ < line_interval_) return;
        last_line_ = now;
        const auto [rate, eta] = rate_and_eta(position);
        out_ << progress_plain_line(name_, done, to_ - from_, rate, eta, phase) << '\n' << std::flush;
    }

    std::ostream& out_;
    bool terminal_;
    std::chrono::milliseconds interval_;
    std::chrono::milliseconds line_interval_;
    std::string name_;
    std::uint64_t from_, to_;
    std::function<progress_sample()> sample_;
    clock::time_point started_;
    clock::time_point last_line_;
    std::size_t drawn_ = 0;
    std::jthread watcher_;  // last: stopped before the members it reads are destroyed
};

}  // namespace projectionist::detail::cli
