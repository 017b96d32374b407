#pragma once

/// How a command line behaves: the terminal decision, signals, the progress cadence, polling.

#include <chrono>
#include <optional>
#include <stop_token>
#include <string>

namespace projectionist {

/// How a command line behaves; the defaults suit a program's main().
struct command_line_options {
    /// The name in usage lines; empty: the file name of argv[0] in `main`, else "projectionist".
    std::string program_name{};
    /// Whether the output is a terminal (a redrawn progress bar) or not (plain progress lines).
    /// Empty: true when the output stream is std::cout and isatty(1).
    std::optional<bool> terminal{};
    /// `run`, `backfill` and `catch-up` stop on SIGINT and SIGTERM, between two batches (handlers
    /// installed only while they run, then restored).
    bool handle_signals = true;
    /// `run`, `backfill` and `catch-up` also stop when this is requested (tests, or an application
    /// that owns the signals).
    std::stop_token stop{};
    /// How often a backfill's progress is looked at (and the bar redrawn).
    std::chrono::milliseconds progress_interval{100};
    /// Plain progress (not a terminal: CI, systemd, container logs): a line this often, with the
    /// share done, events/s and the ETA.
    std::chrono::milliseconds progress_line_interval{10000};
    /// `run`: how long to wait before looking at the log again when nothing new came.
    std::chrono::milliseconds poll_interval{100};
    /// `run`: this often, a line per version that applied events or is behind (events/s, lag, ETA).
    std::chrono::milliseconds run_report_interval{10000};
    /// `reset` and `delete`: how long to wait for queries in flight on the version.
    std::chrono::milliseconds drain_timeout{30000};
};

}  // namespace projectionist
