#pragma once

/// The command line of blue-green deployments, embedded in the application's own executable:
/// the seed's `bin/console ecotone:projection:init tickets_v2`, as `./app init tickets_v2`.
///
///     int main(int argc, char** argv) {
///         projectionist::sqlite_event_store store("app.db");
///         projectionist::sqlite_storage storage("app.db");
///         tickets_deployment versions(store, storage);           // projectionist::deployment<...>
///         projectionist::router<tickets<1>, tickets<2>> router(storage);
///         projectionist::command_line cli;
///         cli.add(versions, router, {.options = {.expected_changes = {"status", "reopened"}}});
///         return cli.main(argc, argv);                           // or cli.run(args, out, err)
///     }
///
///     $ ./app status
///     $ ./app init tickets_v2
///     $ ./app backfill tickets_v2                 # a progress bar on a terminal, plain lines otherwise
///     $ ./app verify tickets_v1 tickets_v2 --expect-change status [--json]
///     $ ./app switch tickets --to tickets_v2 --percent 10
///     $ ./app switch tickets --to tickets_v2      # every query
///     $ ./app live tickets_v2
///     $ ./app delete tickets_v1
///
/// **API.** `command_line(command_line_options)`; `add(deployment, router, verify_settings)` or
/// `add(deployment, projectionist::no_router, verify_settings)` per projection (held by
/// reference; a router over the deployment's versions or a subset, checked at compile time);
/// `main(argc, argv)` (std::cout, std::cerr, isatty, the program name from argv[0]) or
/// `run(args, out, err)` (any streams: tests capture the output) returning the exit status;
/// `general_usage()` and `command_usage(name)` give the help texts. The options inject the
/// terminal decision, the stop token of `run`, signal handling and the progress cadence.
///
/// **Commands** (`<command> --help` for each; `help` for all):
///   - `init <version>`, `backfill <version>`, `catch-up [<version>|<projection>]`, `live <version>`,
///     `reset <version>`, `delete <version>`: the deployment's life-cycle steps by name.
///   - `status [<projection>|<version>]`: per version its state, live flag, position, head, lag,
///     partitioning, the traffic the router sends it, and its error or note; then the router's line.
///   - `verify <A> <B> [--expect-change COLUMN]... [--key KEY]... [--json]`: a structural diff of
///     the two versions' main tables (their first table declaration), plus a spot check of the
///     given keys, as text or JSON; the exit status is `verify::exit_status` (0 pass, 1 fail).
///     Expected changes are those registered with `add` (for every pair, or for one pair) plus the
///     `--expect-change` columns, which must be columns of A or B.
///   - `switch <projection> --to <version> [--percent N]`: with a share below 100, the version
///     becomes the router's candidate (`rollout_basis_points`; N may have two decimals); without
///     one, or with 100, `deployment.serve(version)` then `router.switch_to(version)`. Either way
///     the version must have caught up first.
///   - `rollback <projection>`: cancels the candidate, or puts the previous primary back (marking
///     it serving again); refused when the previous primary has been deleted since.
///   - `run [--for DURATION]`: follows the log with every version until SIGINT or SIGTERM, the
///     options' stop token, or the duration; then returns 0, or 1 if a version stopped on an error.
///
/// **Exit status**: 0 success (and a passing verify); 1 an operation the life cycle refused
/// (`state_error`), any other `projectionist::error`, or a failing verify; 2 a usage error: an
/// unknown command, option, projection or version (the message lists the valid ones), a missing
/// or extra argument (the command's usage follows).
///
/// **Names** typed by a user are only ever compared with the registered deployments' names,
/// which are compile-time constants; nothing typed is ever put into SQL. (Verify keys are bound
/// as parameters by the storage, like any key.)
///
/// **Safety of traffic.** `reset` and `delete` are refused for a version the router still sends
/// queries to (primary or candidate), besides the deployment's own refusal for a serving
/// version; then they wait, up to `drain_timeout`, for the queries in flight on that version
/// (`router.wait_for_drain`: meaningful when the command line runs inside the process that
/// serves queries; another process's queries are not visible here). Versions that are deleted
/// are skipped by `catch-up` and `run`: catching up would re-create an auto-kick-off version.
///
/// **Progress of a backfill**: the backfill runs on the calling thread; a watcher thread polls
/// the runner's `status()` every `progress_interval` (a snapshot under a mutex and one head
/// query: the backfill is not slowed down). On a terminal (`terminal`, by default: the output
/// is std::cout and isatty(1)) one line is redrawn with a bar, events/s and the ETA; otherwise a
/// plain line is printed at every `progress_step_percent` step, at most one per
/// `progress_min_line_interval`, plus a start and a final line.
///
/// **Threads**: one command at a time per command_line object. The deployments and routers are
/// held by reference and must outlive the command line; while a command runs, nothing else may
/// drive the same deployment's runners. `run` installs SIGINT and SIGTERM handlers for its
/// duration only (and restores the previous ones) unless `handle_signals` is false; two `run`s
/// at once in one process would share the flag they set.

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <boost/hana/accessors.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/pair.hpp>
#include <boost/hana/string.hpp>
#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>
#include <boost/mp11/utility.hpp>

#include <projectionist/deploy/deployment.hpp>
#include <projectionist/deploy/router.hpp>
#include <projectionist/deploy/verify.hpp>
#include <projectionist/error.hpp>
#include <projectionist/projection/projection.hpp>
#include <projectionist/runner/status.hpp>
#include <projectionist/storage/catalog.hpp>

namespace projectionist {

/// How a command line behaves; the defaults suit a program's main().
struct command_line_options {
    /// The name in usage lines; empty: the file name of argv[0] in `main`, else "projectionist".
    std::string program_name{};
    /// Whether the output is a terminal (a redrawn progress bar) or not (plain progress lines).
    /// Empty: true when the output stream is std::cout and isatty(1).
    std::optional<bool> terminal{};
    /// `run` stops on SIGINT and SIGTERM (handlers installed only while it runs, then restored).
    bool handle_signals = true;
    /// `run` also stops when this is requested (tests, or an application that owns the signals).
    std::stop_token stop{};
    /// How often a backfill's progress is looked at (and the bar redrawn).
    std::chrono::milliseconds progress_interval{100};
    /// Plain progress: a line each time the backfill passes another step of this many percent...
    unsigned progress_step_percent = 10;
    /// ... but not more often than this.
    std::chrono::milliseconds progress_min_line_interval{1000};
    /// `run`: how long to wait before looking at the log again when nothing new came.
    std::chrono::milliseconds run_poll{100};
    /// `run`: a line per version that applied events, at most this often.
    std::chrono::milliseconds run_report_interval{10000};
    /// `reset` and `delete`: how long to wait for queries in flight on the version.
    std::chrono::milliseconds drain_timeout{30000};
};

/// What `verify` may find different between two versions of one projection.
struct verify_settings {
    /// For one ordered or reversed pair of versions: replaces `options` for that pair.
    struct pair_options {
        std::string a, b;
        verify::diff_options options{};
    };
    /// For every pair of versions (unless `pairs` has the pair).
    verify::diff_options options{};
    std::vector<pair_options> pairs{};
};

/// `command_line::add(deployment, projectionist::no_router)`: a projection without a query router.
struct no_router_t {
    explicit constexpr no_router_t() = default;
};
inline constexpr no_router_t no_router{};

namespace detail::cli {

// ---- errors of the command line itself -----------------------------------------------------------

/// Wrong or missing arguments: the message, then the command's usage; exit status 2.
class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// An unknown projection, version or column: the message lists the valid names; exit status 2.
class name_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// ---- text helpers --------------------------------------------------------------------------------

template <class Range>
std::string join(const Range& items, std::string_view separator = ", ") {
    std::string out;
    bool first = true;
    for (const auto& item : items) {
        if (!first) out += separator;
        first = false;
        out += std::string_view(item);
    }
    return out;
}

/// Text typed by a user, safe to echo to a terminal: control characters, backslashes and bytes
/// that are not ASCII are shown as \xNN; cut after 200 characters.
inline std::string shown(std::string_view text) {
    std::string out;
    for (char c : text.substr(0, 200)) {
        const auto b = static_cast<unsigned char>(c);
        if (b < 0x20 || b >= 0x7f || c == '\\')
            out += fmt::format("\\x{:02x}", b);
        else
            out += c;
    }
    if (text.size() > 200) out += "...";
    return out;
}

/// 1234567 -> "1,234,567".
inline std::string group_digits(std::uint64_t n) {
    const std::string digits = fmt::format("{}", n);
    std::string out;
    out.reserve(digits.size() + digits.size() / 3);
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

/// A duration as a clock: "0:04", "12:34", "1:02:03".
inline std::string clock_text(double seconds) {
    if (!(seconds >= 0)) seconds = 0;
    if (seconds > 359999) seconds = 359999;  // 99:59:59
    const auto total = static_cast<std::uint64_t>(seconds + 0.5);
    const std::uint64_t h = total / 3600, m = total / 60 % 60, s = total % 60;
    if (h != 0) return fmt::format("{}:{:02}:{:02}", h, m, s);
    return fmt::format("{}:{:02}", m, s);
}

/// An elapsed time: "0.042 s", "3.2 s", "2:05".
inline std::string elapsed_text(double seconds) {
    if (seconds < 1) return fmt::format("{:.3f} s", seconds < 0 ? 0.0 : seconds);
    if (seconds < 60) return fmt::format("{:.1f} s", seconds);
    return clock_text(seconds);
}

/// A duration as typed: "500ms", "2s", "1m", "1h", or a number of seconds. Empty if malformed.
inline std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    std::uint64_t n = 0;
    const char* begin = text.data();
    const char* end = begin + text.size();
    auto [ptr, ec] = std::from_chars(begin, end, n);
    if (ec != std::errc{} || ptr == begin) return std::nullopt;
    const std::string_view unit(ptr, static_cast<std::size_t>(end - ptr));
    std::uint64_t factor = 0;
    if (unit == "ms")
        factor = 1;
    else if (unit.empty() || unit == "s")
        factor = 1000;
    else if (unit == "m" || unit == "min")
        factor = 60'000;
    else if (unit == "h")
        factor = 3'600'000;
    else
        return std::nullopt;
    if (n > 100'000'000'000ULL / factor) return std::nullopt;
    return std::chrono::milliseconds(static_cast<std::int64_t>(n * factor));
}

/// A share as typed: "10", "10%", "12.5", "0.01" -> basis points (0 to 10000). Empty if malformed.
inline std::optional<unsigned> parse_percent(std::string_view text) {
    if (!text.empty() && text.back() == '%') text.remove_suffix(1);
    const std::size_t dot = text.find('.');
    const std::string_view whole = text.substr(0, dot);
    const std::string_view fraction = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
    if (whole.empty() || whole.size() > 3 || fraction.size() > 2) return std::nullopt;
    if (dot != std::string_view::npos && fraction.empty()) return std::nullopt;
    unsigned value = 0;
    for (char c : whole) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    unsigned hundredths = 0;
    for (std::size_t i = 0; i < 2; ++i) {
        const char c = i < fraction.size() ? fraction[i] : '0';
        if (c < '0' || c > '9') return std::nullopt;
        hundredths = hundredths * 10 + static_cast<unsigned>(c - '0');
    }
    const unsigned bp = value * 100 + hundredths;
    if (bp > routing_buckets) return std::nullopt;
    return bp;
}

/// Aligned columns; numbers right-aligned. Trailing blanks are trimmed.
class text_table {
public:
    text_table(std::vector<std::string> header, std::vector<bool> right)
        : right_(std::move(right)), widths_(header.size(), 0) {
        add(std::move(header));
    }
    void add(std::vector<std::string> row) {
        row.resize(widths_.size());
        for (std::size_t i = 0; i < row.size(); ++i) widths_[i] = std::max(widths_[i], row[i].size());
        rows_.push_back(std::move(row));
    }
    [[nodiscard]] std::string render(std::string_view indent) const {
        std::string out;
        for (const auto& row : rows_) {
            std::string line(indent);
            for (std::size_t i = 0; i < row.size(); ++i) {
                if (i != 0) line += "  ";
                const std::size_t pad = widths_[i] - row[i].size();
                if (i < right_.size() && right_[i]) line.append(pad, ' ');
                line += row[i];
                if (i >= right_.size() || !right_[i]) line.append(pad, ' ');
            }
            while (!line.empty() && line.back() == ' ') line.pop_back();
            out += line;
            out += '\n';
        }
        return out;
    }

private:
    std::vector<bool> right_;
    std::vector<std::size_t> widths_;
    std::vector<std::vector<std::string>> rows_;
};

// ---- progress of a backfill ----------------------------------------------------------------------

/// "tickets_v2 [############------------------]  40%  480/1,200 events  9,600 events/s  ETA 0:01"
inline std::string progress_bar_line(std::string_view name, std::uint64_t done, std::uint64_t total, double rate,
                                     std::optional<double> eta, std::size_t width = 30) {
    const std::uint64_t shown = std::min(done, total);
    const std::size_t filled = total == 0 ? width : static_cast<std::size_t>(shown * width / total);
    const std::uint64_t percent = total == 0 ? 100 : shown * 100 / total;
    std::string bar(filled, '#');
    bar.append(width - filled, '-');
    return fmt::format("{} [{}] {:3}%  {}/{} events  {} events/s  ETA {}", name, bar, percent, group_digits(shown),
                       group_digits(total), group_digits(static_cast<std::uint64_t>(rate)),
                       eta ? clock_text(*eta) : std::string("?"));
}

/// "backfill tickets_v2: 40% (480/1,200 events), 9,600 events/s, ETA 0:01"
inline std::string progress_plain_line(std::string_view name, std::uint64_t done, std::uint64_t total, double rate,
                                       std::optional<double> eta) {
    const std::uint64_t shown = std::min(done, total);
    const std::uint64_t percent = total == 0 ? 100 : shown * 100 / total;
    return fmt::format("backfill {}: {}% ({}/{} events), {} events/s, ETA {}", name, percent, group_digits(shown),
                       group_digits(total), group_digits(static_cast<std::uint64_t>(rate)),
                       eta ? clock_text(*eta) : std::string("?"));
}

/// Shows a backfill's progress while it runs on another thread: `position()` is polled from a
/// watcher thread, which alone writes to `out` until `finish`.
class backfill_progress {
public:
    using clock = std::chrono::steady_clock;

    backfill_progress(std::ostream& out, bool terminal, const command_line_options& options, std::string name,
                      std::uint64_t from, std::uint64_t to, std::function<std::uint64_t()> position)
        : out_(out),
          terminal_(terminal),
          interval_(std::max(options.progress_interval, std::chrono::milliseconds(1))),
          step_(std::max(1U, options.progress_step_percent)),
          min_line_interval_(options.progress_min_line_interval),
          name_(std::move(name)),
          from_(from),
          to_(std::max(from, to)),
          position_(std::move(position)),
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
                const std::uint64_t position = position_();
                if (terminal_)
                    draw(position);
                else
                    line(position);
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

    void draw(std::uint64_t position) {
        const auto [rate, eta] = rate_and_eta(position);
        std::string text = progress_bar_line(name_, position > from_ ? position - from_ : 0, to_ - from_, rate, eta);
        const std::size_t length = text.size();
        if (length < drawn_) text.append(drawn_ - length, ' ');
        drawn_ = length;
        out_ << '\r' << text << std::flush;
    }

    void line(std::uint64_t position) {
        const std::uint64_t done = std::min(position > from_ ? position - from_ : 0, to_ - from_);
        const std::uint64_t step = done * 100 / (to_ - from_) / step_;
        const auto now = clock::now();
        if (step <= last_step_ || done == to_ - from_ || now - last_line_ < min_line_interval_) return;
        last_step_ = step;
        last_line_ = now;
        const auto [rate, eta] = rate_and_eta(position);
        out_ << progress_plain_line(name_, done, to_ - from_, rate, eta) << '\n' << std::flush;
    }

    std::ostream& out_;
    bool terminal_;
    std::chrono::milliseconds interval_;
    unsigned step_;
    std::chrono::milliseconds min_line_interval_;
    std::string name_;
    std::uint64_t from_, to_;
    std::function<std::uint64_t()> position_;
    clock::time_point started_;
    clock::time_point last_line_;
    std::uint64_t last_step_ = 0;
    std::size_t drawn_ = 0;
    std::jthread watcher_;  // last: stopped before the members it reads are destroyed
};

// ---- signals ---------------------------------------------------------------------------------------

static_assert(std::atomic<int>::is_always_lock_free, "projectionist: the signal flag must be lock-free");
/// The signal that asked `run` to stop, 0 if none. Set by the handler only.
inline std::atomic<int> signal_received{0};

extern "C" inline void projectionist_cli_on_stop_signal(int signal) {
    signal_received.store(signal);
}

/// SIGINT and SIGTERM set `signal_received` while this object lives; the previous handlers are
/// put back afterwards.
class signal_scope {
public:
    explicit signal_scope(bool install) : installed_(install) {
        signal_received.store(0);
        if (!installed_) return;
        struct sigaction action {};
        action.sa_handler = &projectionist_cli_on_stop_signal;
        sigemptyset(&action.sa_mask);
        action.sa_flags = 0;
        ::sigaction(SIGINT, &action, &old_int_);
        ::sigaction(SIGTERM, &action, &old_term_);
    }
    signal_scope(const signal_scope&) = delete;
    signal_scope& operator=(const signal_scope&) = delete;
    ~signal_scope() {
        if (!installed_) return;
        ::sigaction(SIGINT, &old_int_, nullptr);
        ::sigaction(SIGTERM, &old_term_, nullptr);
    }
    [[nodiscard]] int received() const noexcept { return signal_received.load(); }

private:
    bool installed_;
    struct sigaction old_int_ {};
    struct sigaction old_term_ {};
};

inline std::string_view signal_name(int signal) {
    switch (signal) {
        case SIGINT: return "SIGINT";
        case SIGTERM: return "SIGTERM";
        default: return "a signal";
    }
}

// ---- one registered projection, type-erased --------------------------------------------------------

/// What `verify` was asked beyond the registered settings.
struct verify_request {
    std::vector<std::string> expected_changes;
    std::vector<std::string> keys;
};

/// The command line's view of one deployment and its router. Virtual: commands are not the event
/// path, and one command line holds projections of different types.
class projection_entry {
public:
    virtual ~projection_entry() = default;

    [[nodiscard]] virtual std::string_view base_name() const noexcept = 0;
    [[nodiscard]] virtual const std::vector<std::string_view>& versions() const noexcept = 0;
    [[nodiscard]] virtual bool has_router() const noexcept = 0;
    /// Whether the router knows the version (false without a router).
    [[nodiscard]] virtual bool routes(std::string_view version) const noexcept = 0;

    /// Takes in what other processes changed: every version's catalog row, and the router.
    virtual void refresh() = 0;
    /// One version's catalog row and, with `checkpoint`, its committed checkpoint (which another
    /// process may have moved: the status then shows the true position); returns its state.
    virtual projection_state refresh(std::string_view version, bool checkpoint = true) = 0;
    /// The runner's status snapshot; may be called from another thread while a command runs.
    [[nodiscard]] virtual runner_status status_of(std::string_view version) = 0;
    [[nodiscard]] virtual std::optional<router_status> routing() const = 0;
    /// The version's table names, from its declarations.
    [[nodiscard]] virtual std::vector<std::string> tables_of(std::string_view version) = 0;
    /// Whether the version has manual kick-off (else the first catch-up initializes it).
    [[nodiscard]] virtual bool manual_kickoff(std::string_view version) = 0;

    virtual void init(std::string_view version) = 0;
    virtual std::uint64_t backfill(std::string_view version) = 0;
    virtual std::uint64_t catch_up(std::string_view version) = 0;
    virtual void make_live(std::string_view version) = 0;
    virtual void serve(std::string_view version) = 0;
    virtual void reset(std::string_view version) = 0;
    virtual void remove(std::string_view version) = 0;

    virtual void switch_to(std::string_view version) = 0;
    virtual void rollout(std::string_view version, unsigned basis_points) = 0;
    virtual void rollback() = 0;
    virtual bool wait_for_drain(std::string_view version, std::chrono::milliseconds timeout) = 0;

    /// Checks a verify request's columns and keys against the two versions' main tables: throws
    /// `name_error` or `usage_error`. Touches no storage.
    virtual void validate(std::string_view a, std::string_view b, const verify_request& request) = 0;
    [[nodiscard]] virtual verify::report verify(std::string_view a, std::string_view b,
                                                const verify_request& request) = 0;
};

template <class Row>
std::vector<std::string> column_names() {
    std::vector<std::string> out;
    boost::hana::for_each(boost::hana::accessors<Row>(), [&](auto member) {
        out.emplace_back(boost::hana::to<const char*>(boost::hana::first(member)));
    });
    return out;
}

/// A key typed on the command line, as a value of the table's key type.
template <class Key>
Key parse_key(std::string_view text, std::string_view version) {
    if constexpr (std::is_constructible_v<Key, std::string>) {
        return Key(std::string(text));
    } else if constexpr (std::is_integral_v<Key> && !std::is_same_v<Key, bool>) {
        Key value{};
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc{} || ptr != text.data() + text.size() || text.empty())
            throw usage_error(fmt::format("--key '{}': the keys of {} are integers", shown(text), version));
        return value;
    } else {
        throw usage_error(
            fmt::format("--key: the keys of {} are neither text nor integers, so they cannot be typed", version));
    }
}

template <class Deployment, class... Versions>
consteval bool router_fits(std::type_identity<router<Versions...>>) {
    return router<Versions...>::projection_name == Deployment::base_name &&
           (Deployment::contains(Versions::versioned_name) && ...);
}

template <class Deployment, class Router>
class entry final : public projection_entry {
    static constexpr bool routed = !std::is_same_v<Router, no_router_t>;

public:
    entry(Deployment& deployment, Router* router, verify_settings settings)
        : deployment_(deployment),
          router_(router),
          settings_(std::move(settings)),
          versions_(Deployment::names.begin(), Deployment::names.end()) {}

    [[nodiscard]] std::string_view base_name() const noexcept override { return Deployment::base_name; }
    [[nodiscard]] const std::vector<std::string_view>& versions() const noexcept override { return versions_; }
    [[nodiscard]] bool has_router() const noexcept override { return routed; }
    [[nodiscard]] bool routes(std::string_view version) const noexcept override {
        if constexpr (routed) {
            for (auto n : Router::version_names)
                if (n == version) return true;
        } else {
            (void)version;
        }
        return false;
    }

    void refresh() override {
        for (auto v : versions_) refresh(v);
        if constexpr (routed) router_->refresh();
    }
    projection_state refresh(std::string_view version, bool checkpoint = true) override {
        return deployment_.visit(version, [&](auto& r) {
            // runner::refresh() reloads the checkpoint only after a reset; an application that
            // follows the log in another process moves it too. Between batches, re-reading what
            // is committed is what the runner itself does after a checkpoint conflict.
            if constexpr (requires { r.session().reload_checkpoint(); })
                if (checkpoint) r.session().reload_checkpoint();
            r.refresh();
            return r.state();
        });
    }
    [[nodiscard]] runner_status status_of(std::string_view version) override {
        return deployment_.visit(version, [](auto& r) { return r.status(); });
    }
    [[nodiscard]] std::optional<router_status> routing() const override {
        if constexpr (routed)
            return router_->describe();
        else
            return std::nullopt;
    }
    [[nodiscard]] std::vector<std::string> tables_of(std::string_view version) override {
        return deployment_.visit(version, [](auto& r) {
            using P = typename std::remove_reference_t<decltype(r)>::projection_type;
            std::vector<std::string> out;
            boost::mp11::mp_for_each<boost::mp11::mp_transform<boost::mp11::mp_identity, detail::tables_of<P>>>(
                [&](auto t) { out.emplace_back(detail::table_name_v<P, typename decltype(t)::type>); });
            return out;
        });
    }

    [[nodiscard]] bool manual_kickoff(std::string_view version) override {
        return deployment_.visit(version,
                                 [](auto& r) { return std::remove_reference_t<decltype(r)>::kickoff::manual; });
    }

    void init(std::string_view version) override { deployment_.init(version); }
    std::uint64_t backfill(std::string_view version) override { return deployment_.backfill(version); }
    std::uint64_t catch_up(std::string_view version) override {
        return deployment_.visit(version, [](auto& r) { return r.catch_up(); });
    }
    void make_live(std::string_view version) override { deployment_.make_live(version); }
    void serve(std::string_view version) override { deployment_.serve(version); }
    void reset(std::string_view version) override { deployment_.reset(version); }
    void remove(std::string_view version) override { deployment_.remove(version); }

    void switch_to(std::string_view version) override {
        if constexpr (routed)
            router_->switch_to(version);
        else
            (void)version;
    }
    void rollout(std::string_view version, unsigned basis_points) override {
        if constexpr (routed)
            router_->rollout_basis_points(version, basis_points);
        else
            (void)version, (void)basis_points;
    }
    void rollback() override {
        if constexpr (routed) router_->rollback();
    }
    bool wait_for_drain(std::string_view version, std::chrono::milliseconds timeout) override {
        if constexpr (routed) {
            if (routes(version)) return router_->wait_for_drain(version, timeout);
        } else {
            (void)version, (void)timeout;
        }
        return true;
    }

    void validate(std::string_view a, std::string_view b, const verify_request& request) override {
        deployment_.visit(a,
                          [&](auto& ra) { deployment_.visit(b, [&](auto& rb) { check_request(ra, rb, request); }); });
    }

    [[nodiscard]] verify::report verify(std::string_view a, std::string_view b,
                                        const verify_request& request) override {
        verify::diff_options options = options_for(a, b);
        for (const auto& c : request.expected_changes)
            if (std::find(options.expected_changes.begin(), options.expected_changes.end(), c) ==
                options.expected_changes.end())
                options.expected_changes.push_back(c);
        return deployment_.visit(a, [&](auto& ra) {
            return deployment_.visit(b, [&](auto& rb) { return compare(ra, rb, options, request); });
        });
    }

    /// Checks the names of the per-pair settings against the deployment's versions.
    void check_settings() const {
        for (const auto& p : settings_.pairs)
            for (const std::string& n : {p.a, p.b})
                if (!Deployment::contains(n))
                    throw error(
                        fmt::format("projectionist: command_line::add: verify settings name '{}', which is "
                                    "not a version of {}; the versions are: {}",
                                    n, Deployment::base_name, join(Deployment::names)));
    }

private:
    [[nodiscard]] verify::diff_options options_for(std::string_view a, std::string_view b) const {
        for (const auto& p : settings_.pairs)
            if ((p.a == a && p.b == b) || (p.a == b && p.b == a)) return p.options;
        return settings_.options;
    }

    /// Checks the --expect-change columns (of A or B) and the --key values (of B's key type).
    template <class RA, class RB>
    static void check_request(RA&, RB&, const verify_request& request) {
        using PA = typename RA::projection_type;
        using PB = typename RB::projection_type;
        using tables_a = detail::tables_of<PA>;
        using tables_b = detail::tables_of<PB>;
        if constexpr (boost::mp11::mp_empty<tables_a>::value || boost::mp11::mp_empty<tables_b>::value) {
            throw error(fmt::format("projectionist: cannot verify {} against {}: {} has no tables to compare",
                                    name_of<PA>, name_of<PB>,
                                    boost::mp11::mp_empty<tables_a>::value ? name_of<PA> : name_of<PB>));
        } else {
            using table_a = boost::mp11::mp_front<tables_a>;
            using table_b = boost::mp11::mp_front<tables_b>;
            const auto columns_a = column_names<typename table_a::row_type>();
            const auto columns_b = column_names<typename table_b::row_type>();
            for (const auto& c : request.expected_changes) {
                const auto known = [&](const std::vector<std::string>& cs) {
                    return std::find(cs.begin(), cs.end(), c) != cs.end();
                };
                if (!known(columns_a) && !known(columns_b)) {
                    std::vector<std::string> all = columns_a;
                    for (const auto& cb : columns_b)
                        if (std::find(all.begin(), all.end(), cb) == all.end()) all.push_back(cb);
                    throw name_error(
                        fmt::format("unknown column '{}' in --expect-change; the columns of {} and {} "
                                    "are: {}",
                                    shown(c), name_of<PA>, name_of<PB>, join(all)));
                }
            }
            using key_b = typename table_b::key_type;
            for (const auto& k : request.keys) (void)parse_key<key_b>(k, name_of<PB>);
            if constexpr (!std::is_constructible_v<typename table_a::key_type, const key_b&>)
                if (!request.keys.empty())
                    throw usage_error(
                        fmt::format("--key: the keys of {} and {} have unrelated types", name_of<PA>, name_of<PB>));
        }
    }

    template <class RA, class RB>
    static verify::report compare(RA& ra, RB& rb, const verify::diff_options& options, const verify_request& request) {
        check_request(ra, rb, request);
        using PA = typename RA::projection_type;
        using PB = typename RB::projection_type;
        using tables_a = detail::tables_of<PA>;
        using tables_b = detail::tables_of<PB>;
        if constexpr (!boost::mp11::mp_empty<tables_a>::value && !boost::mp11::mp_empty<tables_b>::value) {
            using table_a = boost::mp11::mp_front<tables_a>;
            using table_b = boost::mp11::mp_front<tables_b>;
            using key_b = typename table_b::key_type;
            std::vector<key_b> keys;
            for (const auto& k : request.keys) keys.push_back(parse_key<key_b>(k, name_of<PB>));
            auto* ha = ra.session().template open_table<table_a>(detail::table_name_v<PA, table_a>);
            auto* hb = rb.session().template open_table<table_b>(detail::table_name_v<PB, table_b>);
            if (ha == nullptr || hb == nullptr) {
                const std::string_view missing =
                    ha == nullptr ? detail::table_name_v<PA, table_a> : detail::table_name_v<PB, table_b>;
                throw state_error(
                    fmt::format("projectionist: cannot verify: table {} does not exist; run init and "
                                "backfill first",
                                missing));
            }
            verify::report r;
            r.structure = verify::structural_diff(ha, hb, options);
            if constexpr (std::is_constructible_v<typename table_a::key_type, const key_b&>)
                if (!keys.empty()) r.spot_checks.push_back(verify::spot_check(ha, hb, keys, options));
            return r;
        } else {
            return {};  // check_request threw
        }
    }

    Deployment& deployment_;
    Router* router_;
    verify_settings settings_;
    std::vector<std::string_view> versions_;
};

// ---- commands and their arguments ----------------------------------------------------------------

enum class command_id {
    init,
    backfill,
    catch_up,
    status,
    verify,
    switch_traffic,
    live,
    rollback,
    reset,
    remove,
    run,
    help
};

struct option_spec {
    std::string_view name;        ///< without the dashes
    std::string_view value_name;  ///< empty: a flag without a value
    bool repeatable = false;
    std::string_view help;
};

struct command_spec {
    command_id id;
    std::string_view name;
    std::string_view synopsis;  ///< arguments and options, after the name
    std::size_t min_args = 0;
    std::size_t max_args = 0;
    std::string_view summary;
    std::string_view description;
    std::vector<option_spec> options;
};

inline const std::vector<command_spec>& commands() {
    static const std::vector<command_spec> all{
        {command_id::init,
         "init",
         "<version>",
         1,
         1,
         "create a version's tables and catalog row (ends a manual version's dormancy)",
         "Creates the version's tables and its catalog row; a version with manual kick-off starts\n"
         "following the log from then on. Nothing is replayed yet: run backfill next.\n",
         {}},
        {command_id::backfill,
         "backfill",
         "<version> [--progress auto|bar|lines|none]",
         1,
         1,
         "replay history into a version, showing progress",
         "Replays the log into the version, from its checkpoint to the head as of the start.\n"
         "The version must have been initialized. On a terminal one line shows a bar, events/s\n"
         "and the time left; otherwise a plain line is printed every few percent.\n",
         {{"progress", "MODE", false, "auto (the default), bar, lines or none"}}},
        {command_id::catch_up,
         "catch-up",
         "[<version>|<projection>]",
         0,
         1,
         "apply the events since the last run to initialized versions",
         "Applies every event up to the head to the initialized versions (of one projection, or\n"
         "one version). Dormant versions (manual kick-off, not initialized) and deleted ones are\n"
         "left alone.\n",
         {}},
        {command_id::status,
         "status",
         "[<projection>|<version>]",
         0,
         1,
         "a table of every version: state, live, position, head, lag, traffic, error",
         "Shows each version's state, live flag, position, the head of the log, the lag, its\n"
         "partitioning, the share of queries the router sends it, and its error or note; then\n"
         "the router's state.\n",
         {}},
        {command_id::verify,
         "verify",
         "<version A> <version B> [--expect-change COLUMN]... [--key KEY]... [--json]",
         2,
         2,
         "compare two versions' tables (exit status 0: pass, 1: fail)",
         "Compares the main tables of two versions (A: the serving one, B: the new one): row counts,\n"
         "and per column the type, nulls, distinct values, per-value counts and numeric statistics.\n"
         "Columns whose change is intended must be named: with --expect-change, or in the settings\n"
         "the application registered. --key adds a field-by-field comparison of those rows.\n"
         "The exit status is 0 when the verdict is PASS and 1 when it is FAIL.\n",
         {{"expect-change", "COLUMN", true, "a column allowed to differ (repeat, or separate with commas)"},
          {"key", "KEY", true, "also compare the rows of this key field by field (repeat for more)"},
          {"json", "", false, "print the report as JSON instead of text"}}},
        {command_id::switch_traffic,
         "switch",
         "<projection> --to <version> [--percent N]",
         1,
         1,
         "move a projection's queries to a version, all of them or a share",
         "With --percent below 100, the version becomes the router's candidate for that share of\n"
         "the routing keys (e.g. 10, 12.5 or 0.01); the primary keeps the rest. Without --percent\n"
         "(or with 100) the version serves every query and the previous one is retired: it keeps\n"
         "following the log, ready for a rollback. The version must have caught up first.\n",
         {{"to", "VERSION", false, "the version that gets the traffic (required)"},
          {"percent", "N", false, "the share of queries, 0 to 100 (default: 100)"}}},
        {command_id::live,
         "live",
         "<version>",
         1,
         1,
         "let a version's emitted events through",
         "Makes the version live: the events its handlers emit are appended from now on. It must\n"
         "have caught up: a version still replaying history would emit it again.\n",
         {}},
        {command_id::rollback,
         "rollback",
         "<projection>",
         1,
         1,
         "undo the last switch or rollout",
         "Cancels the rollout of a candidate if there is one; otherwise puts the previous primary\n"
         "back, which serves every query again.\n",
         {}},
        {command_id::reset,
         "reset",
         "<version>",
         1,
         1,
         "empty a version so that it replays from the start",
         "Empties the version's tables and checkpoint (and clears its live flag). Refused while\n"
         "the version serves queries or the router sends it a share of them.\n",
         {}},
        {command_id::remove,
         "delete",
         "<version>",
         1,
         1,
         "drop a version's tables, checkpoint and catalog row",
         "Drops the tables the catalog lists as the version's own, its checkpoint and its catalog\n"
         "row; other versions are untouched. Refused while the version serves queries or the router\n"
         "sends it a share of them; waits for queries still running on it first.\n",
         {}},
        {command_id::run,
         "run",
         "[--for DURATION]",
         0,
         0,
         "follow the log with every version until stopped",
         "Applies new events to every initialized version as they arrive, until SIGINT (Ctrl-C) or\n"
         "SIGTERM, then stops cleanly between two batches. Exit status 1 if a version stopped on an\n"
         "error.\n",
         {{"for", "DURATION", false, "stop after this long, e.g. 500ms, 30s, 5m, 1h"}}},
        {command_id::help, "help", "[<command>]", 0, 1, "show this help, or a command's", "", {}},
    };
    return all;
}

inline const command_spec* find_command(std::string_view name) {
    for (const auto& c : commands())
        if (c.name == name) return &c;
    return nullptr;
}

struct parsed_command {
    const command_spec* spec = nullptr;
    std::vector<std::string> args;
    std::vector<std::pair<std::string, std::string>> options;
    bool help = false;

    [[nodiscard]] bool has(std::string_view name) const {
        for (const auto& o : options)
            if (o.first == name) return true;
        return false;
    }
    [[nodiscard]] std::optional<std::string> value(std::string_view name) const {
        for (const auto& o : options)
            if (o.first == name) return o.second;
        return std::nullopt;
    }
    [[nodiscard]] std::vector<std::string> values(std::string_view name) const {
        std::vector<std::string> out;
        for (const auto& o : options)
            if (o.first == name) out.push_back(o.second);
        return out;
    }
};

inline std::string option_list(const command_spec& spec) {
    std::vector<std::string> names;
    for (const auto& o : spec.options) names.push_back(fmt::format("--{}", o.name));
    names.emplace_back("--help");
    return join(names);
}

/// Splits a command's arguments into positional arguments and options, by its spec.
inline parsed_command parse(const command_spec& spec, const std::vector<std::string>& args, std::size_t first) {
    parsed_command p;
    p.spec = &spec;
    for (std::size_t i = first; i < args.size(); ++i) {
        if (args[i] == "--") break;
        if (args[i] == "--help" || args[i] == "-h") {
            p.help = true;
            return p;
        }
    }
    bool only_positional = false;
    for (std::size_t i = first; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (only_positional || a.size() < 2 || a[0] != '-') {
            p.args.push_back(a);
            continue;
        }
        if (a == "--") {
            only_positional = true;
            continue;
        }
        if (a[1] != '-')
            throw usage_error(fmt::format("unknown option '{}'; the options are: {}", shown(a), option_list(spec)));
        const std::size_t eq = a.find('=');
        const std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
        const option_spec* o = nullptr;
        for (const auto& candidate : spec.options)
            if (candidate.name == name) o = &candidate;
        if (o == nullptr)
            throw usage_error(
                fmt::format("unknown option '--{}'; the options are: {}", shown(name), option_list(spec)));
        if (!o->repeatable && p.has(name)) throw usage_error(fmt::format("option --{} is given twice", name));
        if (o->value_name.empty()) {
            if (eq != std::string::npos) throw usage_error(fmt::format("option --{} takes no value", name));
            p.options.emplace_back(name, std::string());
        } else if (eq != std::string::npos) {
            p.options.emplace_back(name, a.substr(eq + 1));
        } else if (i + 1 < args.size()) {
            p.options.emplace_back(name, args[++i]);
        } else {
            throw usage_error(fmt::format("option --{} needs a value ({})", name, o->value_name));
        }
        if (!o->value_name.empty() && p.options.back().second.empty())
            throw usage_error(fmt::format("option --{} needs a value ({})", name, o->value_name));
    }
    if (p.args.size() < spec.min_args) {
        // "<version A> <version B> [...]": name the first missing argument
        std::string_view rest = spec.synopsis;
        std::string missing;
        for (std::size_t n = 0; n <= p.args.size(); ++n) {
            const std::size_t open = rest.find('<');
            const std::size_t close = rest.find('>', open);
            if (open == std::string_view::npos || close == std::string_view::npos) break;
            missing = std::string(rest.substr(open, close - open + 1));
            rest.remove_prefix(close + 1);
        }
        throw usage_error(fmt::format("missing argument {}", missing.empty() ? "" : missing));
    }
    if (p.args.size() > spec.max_args)
        throw usage_error(fmt::format("unexpected argument '{}'", shown(p.args[spec.max_args])));
    return p;
}

}  // namespace detail::cli

/// The command line over the registered deployments; see the top of this file. Use it as
/// `projectionist::command_line`. A template only so that its members are compiled in the
/// translation units that use it: projectionist.hpp includes this header everywhere.
template <class Unused = void>
class basic_command_line {
public:
    explicit basic_command_line(command_line_options options = {}) : options_(std::move(options)) {}
    basic_command_line(const basic_command_line&) = delete;
    basic_command_line& operator=(const basic_command_line&) = delete;

    /// Registers a projection's deployment and its query router (over the same versions, or a
    /// subset of them), and what `verify` may find different between its versions. Both are held
    /// by reference. Throws `projectionist::error` if the projection is registered already or the
    /// verify settings name an unknown version.
    template <class... Runners, class... Versions>
    basic_command_line& add(deployment<Runners...>& d, router<Versions...>& r, verify_settings settings = {}) {
        static_assert(detail::cli::router_fits<deployment<Runners...>>(std::type_identity<router<Versions...>>{}),
                      "projectionist: command_line::add(deployment, router): the router must route versions of the "
                      "deployment's projection, each of them one of the deployment's versions");
        auto e = std::make_unique<detail::cli::entry<deployment<Runners...>, router<Versions...>>>(d, &r,
                                                                                                   std::move(settings));
        e->check_settings();
        return add_entry(std::move(e));
    }

    /// Registers a projection without a query router: `switch` records which version serves in
    /// the catalog only; `--percent` and `rollback` are not available.
    template <class... Runners>
    basic_command_line& add(deployment<Runners...>& d, no_router_t = no_router, verify_settings settings = {}) {
        auto e =
            std::make_unique<detail::cli::entry<deployment<Runners...>, no_router_t>>(d, nullptr, std::move(settings));
        e->check_settings();
        return add_entry(std::move(e));
    }

    /// The registered projections' base names, in registration order.
    [[nodiscard]] std::vector<std::string_view> projections() const {
        std::vector<std::string_view> out;
        for (const auto& e : entries_) out.push_back(e->base_name());
        return out;
    }
    /// Every registered version's name.
    [[nodiscard]] std::vector<std::string_view> versions() const {
        std::vector<std::string_view> out;
        for (const auto& e : entries_) out.insert(out.end(), e->versions().begin(), e->versions().end());
        return out;
    }

    /// The program's main(): `std::cout`, `std::cerr`, the program name from argv[0].
    int main(int argc, const char* const* argv) {
        std::vector<std::string> args;
        for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
        if (argc > 0 && argv[0] != nullptr) {
            const std::string_view path(argv[0]);
            const std::size_t slash = path.rfind('/');
            argv0_ = std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
        }
        return run(args, std::cout, std::cerr);
    }

    /// Runs one command (`args` without the program name) and returns the exit status: 0
    /// success, 1 a refused or failed operation (or a failing verify), 2 a usage error.
    int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
        const bool terminal = options_.terminal.value_or(&out == &std::cout && ::isatty(STDOUT_FILENO) == 1);
        if (args.empty()) {
            err << general_usage();
            return 2;
        }
        if (args[0] == "--help" || args[0] == "-h") {
            out << general_usage();
            return 0;
        }
        const detail::cli::command_spec* spec = detail::cli::find_command(args[0]);
        if (spec == nullptr) {
            std::vector<std::string_view> names;
            for (const auto& c : detail::cli::commands()) names.push_back(c.name);
            err << fmt::format("{}: unknown command '{}'; the commands are: {}\nRun '{} help' for their usage.\n",
                               program(), detail::cli::shown(args[0]), detail::cli::join(names), program());
            return 2;
        }
        try {
            const auto p = detail::cli::parse(*spec, args, 1);
            if (p.help) {
                out << command_usage(*spec);
                return 0;
            }
            context ctx{out, err, terminal};
            return dispatch(p, ctx);
        } catch (const detail::cli::usage_error& e) {
            err << fmt::format("{} {}: {}\n\n", program(), spec->name, e.what()) << command_usage(*spec);
            return 2;
        } catch (const detail::cli::name_error& e) {
            err << fmt::format("{} {}: {}\n", program(), spec->name, e.what());
            return 2;
        } catch (const error& e) {  // state_error and every other projectionist::error
            err << e.what() << '\n';
            return 1;
        } catch (const std::exception& e) {
            err << fmt::format("{} {}: failed: {}\n", program(), spec->name, e.what());
            return 1;
        }
    }

    /// The text of `help`: every command, the registered projections, the exit statuses.
    [[nodiscard]] std::string general_usage() const {
        std::string out = fmt::format("usage: {} <command> [arguments] [--help]\n\n", program());
        out += "Blue-green deployment of this application's projections, version by version.\n\ncommands:\n";
        detail::cli::text_table t({"", ""}, {false, false});
        for (const auto& c : detail::cli::commands()) {
            const std::size_t cut = c.synopsis.find(" [--");
            t.add({fmt::format("{} {}", c.name, c.synopsis.substr(0, cut)), std::string(c.summary)});
        }
        std::string table = t.render("  ");
        table.erase(0, table.find('\n') + 1);  // the empty header line
        out += table;
        out += "\nprojections:\n";
        if (entries_.empty()) out += "  (none registered)\n";
        for (const auto& e : entries_)
            out += fmt::format("  {}: {}{}\n", e->base_name(), detail::cli::join(e->versions()),
                               e->has_router() ? "" : " (no query router)");
        out += fmt::format(
            "\nexit status: 0 success (verify: PASS), 1 a refused or failed operation (verify: FAIL), 2 a usage "
            "error.\nRun '{} <command> --help' for a command's options.\n",
            program());
        return out;
    }

    /// The text of `<command> --help`; empty for an unknown command.
    [[nodiscard]] std::string command_usage(std::string_view command) const {
        const auto* spec = detail::cli::find_command(command);
        return spec ? command_usage(*spec) : std::string();
    }

private:
    struct context {
        std::ostream& out;
        std::ostream& err;
        bool terminal;
    };
    using entry_ptr = detail::cli::projection_entry*;

    [[nodiscard]] std::string program() const {
        if (!options_.program_name.empty()) return options_.program_name;
        if (!argv0_.empty()) return argv0_;
        return "projectionist";
    }

    [[nodiscard]] std::string command_usage(const detail::cli::command_spec& spec) const {
        std::string out = fmt::format("usage: {} {} {}\n", program(), spec.name, spec.synopsis);
        out += fmt::format("\n{}.\n", spec.summary);
        if (!spec.description.empty()) out += fmt::format("\n{}", spec.description);
        out += "\noptions:\n";
        detail::cli::text_table t({"", ""}, {false, false});
        for (const auto& o : spec.options)
            t.add({o.value_name.empty() ? fmt::format("--{}", o.name) : fmt::format("--{} {}", o.name, o.value_name),
                   std::string(o.help)});
        t.add({"--help", "show this text"});
        std::string table = t.render("  ");
        table.erase(0, table.find('\n') + 1);
        out += table;
        if (spec.id != detail::cli::command_id::help && spec.id != detail::cli::command_id::run) {
            if (spec.synopsis.find("<projection>") != std::string_view::npos)
                out += fmt::format("\nprojections: {}\n", detail::cli::join(projections()));
            if (spec.synopsis.find("<version") != std::string_view::npos)
                out += fmt::format("\nversions: {}\n", detail::cli::join(versions()));
        }
        return out;
    }

    basic_command_line& add_entry(std::unique_ptr<detail::cli::projection_entry> e) {
        for (const auto& other : entries_)
            if (other->base_name() == e->base_name())
                throw error(fmt::format("projectionist: command_line::add: projection '{}' is registered already",
                                        e->base_name()));
        entries_.push_back(std::move(e));
        return *this;
    }

    // ---- names -------------------------------------------------------------------------------------

    [[nodiscard]] std::pair<entry_ptr, std::string_view> find_version(std::string_view name) const {
        for (const auto& e : entries_)
            for (auto v : e->versions())
                if (v == name) return {e.get(), v};
        for (const auto& e : entries_)
            if (e->base_name() == name)
                throw detail::cli::name_error(fmt::format("'{}' is a projection, not a version; its versions are: {}",
                                                          e->base_name(), detail::cli::join(e->versions())));
        throw detail::cli::name_error(
            fmt::format("unknown version '{}'; the versions are: {}", detail::cli::shown(name),
                        entries_.empty() ? std::string("(none registered)") : detail::cli::join(versions())));
    }

    [[nodiscard]] entry_ptr find_projection(std::string_view name) const {
        for (const auto& e : entries_)
            if (e->base_name() == name) return e.get();
        std::string hint;
        for (const auto& e : entries_)
            for (auto v : e->versions())
                if (v == name) hint = fmt::format(" ('{}' is a version of {})", v, e->base_name());
        throw detail::cli::name_error(
            fmt::format("unknown projection '{}'{}; the projections are: {}", detail::cli::shown(name), hint,
                        entries_.empty() ? std::string("(none registered)") : detail::cli::join(projections())));
    }

    /// A projection, or one of its versions: (entry, version or empty).
    [[nodiscard]] std::pair<entry_ptr, std::string_view> find_projection_or_version(std::string_view name) const {
        for (const auto& e : entries_) {
            if (e->base_name() == name) return {e.get(), {}};
            for (auto v : e->versions())
                if (v == name) return {e.get(), v};
        }
        throw detail::cli::name_error(
            fmt::format("unknown projection or version '{}'; the projections are: {}; the "
                        "versions are: {}",
                        detail::cli::shown(name), detail::cli::join(projections()), detail::cli::join(versions())));
    }

    // ---- commands ----------------------------------------------------------------------------------

    int dispatch(const detail::cli::parsed_command& p, context& ctx) {
        using detail::cli::command_id;
        switch (p.spec->id) {
            case command_id::init: return cmd_init(p, ctx);
            case command_id::backfill: return cmd_backfill(p, ctx);
            case command_id::catch_up: return cmd_catch_up(p, ctx);
            case command_id::status: return cmd_status(p, ctx);
            case command_id::verify: return cmd_verify(p, ctx);
            case command_id::switch_traffic: return cmd_switch(p, ctx);
            case command_id::live: return cmd_live(p, ctx);
            case command_id::rollback: return cmd_rollback(p, ctx);
            case command_id::reset: return cmd_reset(p, ctx);
            case command_id::remove: return cmd_delete(p, ctx);
            case command_id::run: return cmd_run(p, ctx);
            case command_id::help: return cmd_help(p, ctx);
        }
        return 2;
    }

    int cmd_help(const detail::cli::parsed_command& p, context& ctx) {
        if (p.args.empty()) {
            ctx.out << general_usage();
            return 0;
        }
        const auto* spec = detail::cli::find_command(p.args[0]);
        if (spec == nullptr) {
            std::vector<std::string_view> names;
            for (const auto& c : detail::cli::commands()) names.push_back(c.name);
            throw detail::cli::name_error(fmt::format("unknown command '{}'; the commands are: {}",
                                                      detail::cli::shown(p.args[0]), detail::cli::join(names)));
        }
        ctx.out << command_usage(*spec);
        return 0;
    }

    int cmd_init(const detail::cli::parsed_command& p, context& ctx) {
        auto [e, v] = find_version(p.args[0]);
        const projection_state before = e->refresh(v);
        if (before != projection_state::declared && before != projection_state::deleted) {
            e->init(v);  // idempotent: creates a table a newer build declares, if any
            ctx.out << fmt::format("{} is initialized already (it is {}); nothing to do\n", v, to_string(before));
            return 0;
        }
        e->init(v);
        ctx.out << fmt::format("initialized {} (tables: {}); it is {}\nnext: {} backfill {}\n", v,
                               detail::cli::join(e->tables_of(v)), to_string(e->refresh(v)), program(), v);
        return 0;
    }

    int cmd_backfill(const detail::cli::parsed_command& p, context& ctx) {
        const std::string mode = p.value("progress").value_or("auto");
        if (mode != "auto" && mode != "bar" && mode != "lines" && mode != "none")
            throw detail::cli::usage_error(
                fmt::format("--progress '{}': the modes are auto, bar, lines and none", detail::cli::shown(mode)));
        auto [e, v] = find_version(p.args[0]);
        if (const projection_state s = e->refresh(v); s == projection_state::declared || s == projection_state::deleted)
            e->backfill(v);  // the deployment's refusal, before any progress is shown
        const runner_status before = e->status_of(v);
        const bool show = mode != "none";
        const bool bar = mode == "bar" || (mode == "auto" && ctx.terminal);
        if (show) {
            if (before.head > before.position)
                ctx.out << fmt::format("backfill {}: from position {} to the head at {} ({} events to go)\n", v,
                                       detail::cli::group_digits(before.position),
                                       detail::cli::group_digits(before.head),
                                       detail::cli::group_digits(before.head - before.position));
            else
                ctx.out << fmt::format("backfill {}: at the head already (position {})\n", v,
                                       detail::cli::group_digits(before.position));
            ctx.out << std::flush;
        }
        std::optional<detail::cli::backfill_progress> progress;
        if (show)
            progress.emplace(ctx.out, bar, options_, std::string(v), before.position, before.head,
                             [e = e, v = v] { return e->status_of(v).position; });
        const auto started = std::chrono::steady_clock::now();
        std::uint64_t applied = 0;
        try {
            applied = e->backfill(v);
        } catch (...) {
            if (progress) progress->finish(false, 0);
            throw;
        }
        const runner_status after = e->status_of(v);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        if (progress) progress->finish(true, after.position);
        const double scanned =
            static_cast<double>(after.position > before.position ? after.position - before.position : 0);
        ctx.out << fmt::format("backfilled {}: {} events applied, now at position {} (head {}) in {}{}; it is {}\n", v,
                               detail::cli::group_digits(applied), detail::cli::group_digits(after.position),
                               detail::cli::group_digits(after.head), detail::cli::elapsed_text(seconds),
                               seconds > 0 && scanned > 0
                                   ? fmt::format(" ({} events/s)", detail::cli::group_digits(
                                                                       static_cast<std::uint64_t>(scanned / seconds)))
                                   : std::string(),
                               to_string(after.state));
        if (auto other = serving_peer(*e, v)) ctx.out << fmt::format("next: {} verify {} {}\n", program(), *other, v);
        return 0;
    }

    int cmd_catch_up(const detail::cli::parsed_command& p, context& ctx) {
        std::vector<std::pair<entry_ptr, std::string_view>> targets;
        if (p.args.empty()) {
            for (const auto& e : entries_)
                for (auto v : e->versions()) targets.emplace_back(e.get(), v);
        } else {
            auto [e, v] = find_projection_or_version(p.args[0]);
            if (v.empty())
                for (auto each : e->versions()) targets.emplace_back(e, each);
            else
                targets.emplace_back(e, v);
        }
        int status = 0;
        for (auto [e, v] : targets) {
            const projection_state s = e->refresh(v);
            const runner_status before = e->status_of(v);
            if (s == projection_state::deleted) {
                ctx.out << fmt::format("{}: deleted; skipped (run init {} to start it again)\n", v, v);
                continue;
            }
            try {
                const std::uint64_t applied = e->catch_up(v);
                const runner_status after = e->status_of(v);
                if (after.dormant)
                    ctx.out << fmt::format("{}: dormant (manual kick-off); run init {} to start it\n", v, v);
                else
                    ctx.out << fmt::format(
                        "{}: {} events applied; position {}, head {}, lag {}{}\n", v,
                        detail::cli::group_digits(applied), detail::cli::group_digits(after.position),
                        detail::cli::group_digits(after.head), detail::cli::group_digits(after.lag),
                        before.state == projection_state::declared && after.state != projection_state::declared
                            ? fmt::format("; initialized by its automatic kick-off, it is {}", to_string(after.state))
                        : before.state != after.state ? fmt::format("; it is {}", to_string(after.state))
                                                      : std::string());
            } catch (const error& x) {
                ctx.err << x.what() << '\n';
                status = 1;
            }
        }
        return status;
    }

    int cmd_status(const detail::cli::parsed_command& p, context& ctx) {
        std::vector<std::pair<entry_ptr, std::string_view>> targets;  // version empty: all of it
        if (p.args.empty()) {
            for (const auto& e : entries_) targets.emplace_back(e.get(), std::string_view{});
        } else {
            targets.push_back(find_projection_or_version(p.args[0]));
        }
        if (targets.empty()) ctx.out << "no projections are registered\n";
        bool first = true;
        for (auto [e, only] : targets) {
            e->refresh();
            const auto routing = e->routing();
            if (!first) ctx.out << '\n';
            first = false;
            ctx.out << e->base_name() << '\n';
            detail::cli::text_table t(
                {"version", "state", "live", "position", "head", "lag", "partitioning", "traffic", "error / note"},
                {false, false, false, true, true, true, false, false, false});
            std::vector<std::string> notes;
            for (auto v : e->versions()) {
                if (!only.empty() && v != only) continue;
                const runner_status s = e->status_of(v);
                std::string traffic;
                if (routing) {
                    if (routing->primary == v)
                        traffic = routing->candidate
                                      ? fmt::format("primary {}", router_status::format_share(routing_buckets -
                                                                                              routing->basis_points))
                                      : "primary";
                    else if (routing->candidate == v)
                        traffic = fmt::format("candidate {}{}", router_status::format_share(routing->basis_points),
                                              routing->predicate ? " (+ predicate)" : "");
                } else if (s.state == projection_state::serving) {
                    traffic = "serving";
                }
                std::string note = s.error ? fmt::format("error: {}", *s.error) : s.note;
                if (note.empty() && s.state == projection_state::declared && !e->manual_kickoff(v))
                    note = "not initialized: automatic kick-off, the next catch-up or run initializes it";
                t.add({std::string(v), std::string(to_string(s.state)), s.live ? "yes" : "no",
                       detail::cli::group_digits(s.position), detail::cli::group_digits(s.head),
                       detail::cli::group_digits(s.lag), std::string(s.partitioning), traffic, note});
                if (routing && routing->primary == v && s.state != projection_state::serving &&
                    detail::caught_up_or_later(s.state))
                    notes.push_back(
                        fmt::format("the router's primary {} is {} in the catalog, not serving; run '{} "
                                    "switch {} --to {}' to record it",
                                    v, to_string(s.state), program(), e->base_name(), v));
                if (routing && (routing->primary == v || routing->candidate == v) &&
                    (s.state == projection_state::deleted || s.state == projection_state::declared))
                    notes.push_back(
                        fmt::format("WARNING: the router sends queries to {}, which is {}", v, to_string(s.state)));
            }
            ctx.out << t.render("  ");
            if (routing)
                ctx.out << "  router " << routing->to_string() << '\n';
            else
                ctx.out << "  router: none registered\n";
            for (const auto& n : notes) ctx.out << "  note: " << n << '\n';
        }
        return 0;
    }

    int cmd_verify(const detail::cli::parsed_command& p, context& ctx) {
        auto [ea, a] = find_version(p.args[0]);
        auto [eb, b] = find_version(p.args[1]);
        if (ea != eb)
            throw detail::cli::usage_error(fmt::format("{} and {} are versions of different projections ({} and {})", a,
                                                       b, ea->base_name(), eb->base_name()));
        if (a == b) throw detail::cli::usage_error(fmt::format("give two different versions, not {} twice", a));
        detail::cli::verify_request request;
        for (const auto& value : p.values("expect-change")) {
            std::size_t pos = 0;
            while (pos <= value.size()) {
                const std::size_t comma = std::min(value.find(',', pos), value.size());
                if (comma > pos) request.expected_changes.push_back(value.substr(pos, comma - pos));
                pos = comma + 1;
            }
        }
        request.keys = p.values("key");
        ea->validate(a, b, request);
        for (auto v : {a, b}) {
            const projection_state s = ea->refresh(v);
            if (s == projection_state::declared || s == projection_state::deleted)
                throw state_error(fmt::format("projectionist: cannot verify {}: it is {}; {}", v, to_string(s),
                                              detail::what_to_run_first(v, s)));
            const runner_status st = ea->status_of(v);
            if (!detail::caught_up_or_later(s))
                ctx.err << fmt::format("note: {} is {} (position {} of {}): the comparison is with a partial table\n",
                                       v, to_string(s), st.position, st.head);
            else if (st.lag != 0)
                ctx.err << fmt::format(
                    "note: {} is {} events behind the head; run '{} catch-up' for an exact "
                    "comparison\n",
                    v, st.lag, program());
        }
        const verify::report r = ea->verify(a, b, request);
        if (p.has("json"))
            ctx.out << verify::to_json(r) << '\n';
        else
            ctx.out << verify::to_text(r);
        return verify::exit_status(r);
    }

    int cmd_switch(const detail::cli::parsed_command& p, context& ctx) {
        const auto to = p.value("to");
        if (!to) throw detail::cli::usage_error("missing option --to <version>");
        std::optional<unsigned> basis_points;
        if (auto percent = p.value("percent")) {
            basis_points = detail::cli::parse_percent(*percent);
            if (!basis_points)
                throw detail::cli::usage_error(
                    fmt::format("--percent '{}': give a share from 0 to 100, with at most two decimals (e.g. 10, 12.5)",
                                detail::cli::shown(*percent)));
        }
        entry_ptr e = find_projection(p.args[0]);
        const auto& vs = e->versions();
        if (std::find(vs.begin(), vs.end(), *to) == vs.end())
            throw detail::cli::name_error(fmt::format("unknown version '{}' of {}; its versions are: {}",
                                                      detail::cli::shown(*to), e->base_name(), detail::cli::join(vs)));
        const std::string_view v = *std::find(vs.begin(), vs.end(), *to);
        if (e->has_router() && !e->routes(v))
            throw detail::cli::name_error(
                fmt::format("the router of {} does not route to {}; the versions it routes "
                            "to are: {}",
                            e->base_name(), v, detail::cli::join(e->routing()->versions)));
        e->refresh();
        const bool partial = basis_points && *basis_points < routing_buckets;
        if (partial) {
            if (!e->has_router())
                throw error(
                    fmt::format("projectionist: cannot send a share of {}'s queries to {}: no query router is "
                                "registered for {} (command_line::add(deployment, router))",
                                e->base_name(), v, e->base_name()));
            const projection_state s = e->refresh(v);
            if (!detail::caught_up_or_later(s))
                throw state_error(fmt::format("projectionist: cannot roll out {}: it is {}; {}", v, to_string(s),
                                              detail::what_to_run_first(v, s)));
            e->rollout(v, *basis_points);
            const auto routing = e->routing();
            ctx.out << fmt::format("{}: {} now gets {} of the queries (candidate); {} serves the rest\n",
                                   e->base_name(), v, router_status::format_share(*basis_points), routing->primary);
            ctx.out << "  router " << routing->to_string() << '\n';
            return 0;
        }
        e->serve(v);  // refuses a version that has not caught up, before any traffic moves
        if (e->has_router()) e->switch_to(v);
        std::vector<std::string> retired;
        for (auto other : vs)
            if (other != v && e->status_of(other).state == projection_state::retired) retired.emplace_back(other);
        ctx.out << fmt::format("{}: {} now serves every query{}\n", e->base_name(), v,
                               retired.empty() ? std::string()
                                               : fmt::format("; {} retired (still following, for a rollback)",
                                                             detail::cli::join(retired)));
        if (auto routing = e->routing())
            ctx.out << "  router " << routing->to_string() << '\n';
        else
            ctx.out << fmt::format("  no query router is registered for {}: only the catalog records it\n",
                                   e->base_name());
        return 0;
    }

    int cmd_live(const detail::cli::parsed_command& p, context& ctx) {
        auto [e, v] = find_version(p.args[0]);
        e->make_live(v);
        ctx.out << fmt::format("{} is live: the events it emits are appended from now on (it is {})\n", v,
                               to_string(e->refresh(v)));
        return 0;
    }

    int cmd_rollback(const detail::cli::parsed_command& p, context& ctx) {
        entry_ptr e = find_projection(p.args[0]);
        if (!e->has_router())
            throw error(
                fmt::format("projectionist: cannot roll back {}: no query router is registered for it; run "
                            "'{} switch {} --to <version>' instead",
                            e->base_name(), program(), e->base_name()));
        e->refresh();
        const auto before = *e->routing();
        if (before.candidate) {
            e->rollback();
            ctx.out << fmt::format("{}: cancelled the rollout of {}; {} serves every query\n", e->base_name(),
                                   *before.candidate, before.primary);
        } else if (before.previous) {
            const std::string& back = *before.previous;
            const projection_state s = e->refresh(back);
            if (!detail::caught_up_or_later(s))
                throw state_error(fmt::format("projectionist: cannot roll {} back to {}: it is {}; {}", e->base_name(),
                                              back, to_string(s), detail::what_to_run_first(back, s)));
            e->serve(back);
            e->rollback();
            ctx.out << fmt::format("{}: rolled back to {}, which serves every query again; {} is {}\n", e->base_name(),
                                   back, before.primary, to_string(e->refresh(before.primary)));
        } else {
            e->rollback();  // throws state_error: nothing to roll back
        }
        ctx.out << "  router " << e->routing()->to_string() << '\n';
        return 0;
    }

    /// Refuses `what` for a version the router still sends queries to, then waits for its
    /// queries in flight.
    void require_no_traffic(detail::cli::projection_entry& e, std::string_view v, std::string_view what) const {
        e.refresh();
        if (auto routing = e.routing()) {
            std::string role;
            if (routing->primary == v)
                role = routing->candidate
                           ? fmt::format("the primary, for {} of them",
                                         router_status::format_share(routing_buckets - routing->basis_points))
                           : "the primary";
            else if (routing->candidate == v)
                role = fmt::format("the candidate, for {} of them", router_status::format_share(routing->basis_points));
            if (!role.empty())
                throw state_error(
                    fmt::format("projectionist: cannot {} {}: the router sends it queries ({}); move "
                                "them to another version first ({} switch {} --to <version>, or {} "
                                "rollback {})",
                                what, v, role, program(), e.base_name(), program(), e.base_name()));
        }
    }

    void drain(detail::cli::projection_entry& e, std::string_view v, std::string_view what) const {
        if (!e.wait_for_drain(v, options_.drain_timeout))
            throw state_error(
                fmt::format("projectionist: cannot {} {}: queries were still running on it after {}; "
                            "try again",
                            what, v, detail::cli::elapsed_text(options_.drain_timeout.count() / 1000.0)));
    }

    int cmd_reset(const detail::cli::parsed_command& p, context& ctx) {
        auto [e, v] = find_version(p.args[0]);
        require_no_traffic(*e, v, "reset");
        drain(*e, v, "reset");
        e->reset(v);  // the deployment refuses a serving version, or one that was never initialized
        ctx.out << fmt::format(
            "reset {}: its tables and checkpoint are empty and it is not live; it is {}\nnext: {} "
            "backfill {}\n",
            v, to_string(e->refresh(v)), program(), v);
        return 0;
    }

    int cmd_delete(const detail::cli::parsed_command& p, context& ctx) {
        auto [e, v] = find_version(p.args[0]);
        require_no_traffic(*e, v, "delete");
        drain(*e, v, "delete");
        const auto tables = e->tables_of(v);
        e->remove(v);  // the deployment refuses a serving version, or one that was never initialized
        ctx.out << fmt::format("deleted {}: dropped its tables ({}), checkpoint and catalog row\n", v,
                               detail::cli::join(tables));
        if (!e->manual_kickoff(v))
            ctx.out << fmt::format(
                "note: {} has automatic kick-off: a process that still runs it (the application "
                "following the log, or catch-up and run in another process) initializes it again "
                "and replays history; remove it from the deployment in code\n",
                v);
        if (auto routing = e->routing(); routing && routing->previous == v)
            ctx.out << fmt::format(
                "note: the router of {} still names {} as the version to roll back to; a rollback "
                "is refused until it is initialized and backfilled again\n",
                e->base_name(), v);
        return 0;
    }

    int cmd_run(const detail::cli::parsed_command& p, context& ctx) {
        using clock = std::chrono::steady_clock;
        std::optional<std::chrono::milliseconds> limit;
        if (auto text = p.value("for")) {
            limit = detail::cli::parse_duration(*text);
            if (!limit)
                throw detail::cli::usage_error(
                    fmt::format("--for '{}': give a duration such as 500ms, 30s, 5m or 1h", detail::cli::shown(*text)));
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
        for (const auto& e : entries_) {
            e->refresh();
            for (auto v : e->versions()) {
                all.push_back({e.get(), v});
                const runner_status s = e->status_of(v);
                if (s.dormant) dormant.emplace_back(v);
                if (s.state == projection_state::deleted) deleted.emplace_back(v);
            }
        }
        detail::cli::signal_scope signals(options_.handle_signals);
        std::stop_source stop;
        std::stop_callback forward(options_.stop, [&stop] { stop.request_stop(); });
        const auto started = clock::now();
        const clock::time_point deadline = limit ? started + *limit : clock::time_point::max();
        std::vector<std::string_view> names;
        for (const auto& f : all) names.push_back(f.v);
        std::string until = options_.handle_signals ? "SIGINT (Ctrl-C) or SIGTERM" : "stopped";
        if (limit) until += fmt::format(", at most {}", detail::cli::elapsed_text(limit->count() / 1000.0));
        ctx.out << fmt::format("run: following the log with {} until {}\n", detail::cli::join(names), until);
        if (!dormant.empty()) ctx.out << fmt::format("  dormant until init: {}\n", detail::cli::join(dormant));
        if (!deleted.empty()) ctx.out << fmt::format("  deleted, skipped: {}\n", detail::cli::join(deleted));
        ctx.out << std::flush;

        std::string reason;
        auto last_report = started;
        std::mutex m;
        std::condition_variable_any cv;
        for (;;) {
            if (options_.stop.stop_requested() || stop.stop_requested())
                reason = "stop requested";
            else if (signals.received() != 0)
                reason = fmt::format("{} received", detail::cli::signal_name(signals.received()));
            else if (limit && clock::now() >= deadline)
                reason = "the --for duration elapsed";
            if (!reason.empty()) break;

            std::uint64_t applied = 0;
            for (auto& f : all) {
                try {
                    // deleted: catching up would re-create it; the checkpoint is this runner's own
                    const projection_state was = f.e->refresh(f.v, false);
                    if (was == projection_state::deleted) continue;
                    const std::uint64_t n = f.e->catch_up(f.v);
                    if (was == projection_state::declared && f.e->status_of(f.v).state != projection_state::declared)
                        ctx.out << fmt::format("  {}: initialized by its automatic kick-off\n", f.v) << std::flush;
                    f.applied += n;
                    f.since_report += n;
                    applied += n;
                } catch (const error& x) {
                    if (!f.failed) ctx.err << fmt::format("{}: stopped: {}\n", f.v, x.what()) << std::flush;
                    f.failed = true;
                }
            }
            const auto now = clock::now();
            if (now - last_report >= options_.run_report_interval) {
                for (auto& f : all) {
                    if (f.since_report == 0) continue;
                    const runner_status s = f.e->status_of(f.v);
                    ctx.out << fmt::format("  {}: +{} events; position {}, lag {}\n", f.v,
                                           detail::cli::group_digits(f.since_report),
                                           detail::cli::group_digits(s.position), detail::cli::group_digits(s.lag));
                    f.since_report = 0;
                }
                ctx.out << std::flush;
                last_report = now;
            }
            if (applied == 0) {
                auto wait = options_.run_poll;
                if (options_.handle_signals) wait = std::min(wait, std::chrono::milliseconds(100));
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
        ctx.out << fmt::format("run: stopped ({}) after {}; {} events applied\n", reason,
                               detail::cli::elapsed_text(seconds), detail::cli::group_digits(total));
        for (const auto& f : all) {
            const runner_status s = f.e->status_of(f.v);
            ctx.out << fmt::format("  {}: {}, position {}, lag {}{}\n", f.v, to_string(s.state),
                                   detail::cli::group_digits(s.position), detail::cli::group_digits(s.lag),
                                   f.failed ? " (stopped after an error)" : "");
        }
        return failed ? 1 : 0;
    }

    /// The version that serves `v`'s projection, other than `v`: what to verify against.
    [[nodiscard]] std::optional<std::string> serving_peer(detail::cli::projection_entry& e, std::string_view v) const {
        if (auto routing = e.routing(); routing && routing->primary != v) return routing->primary;
        for (auto other : e.versions())
            if (other != v && e.status_of(other).state == projection_state::serving) return std::string(other);
        return std::nullopt;
    }

    command_line_options options_;
    std::string argv0_;
    std::vector<std::unique_ptr<detail::cli::projection_entry>> entries_;
};

/// The command line: `projectionist::command_line cli; cli.add(deployment, router); return cli.main(argc, argv);`
using command_line = basic_command_line<>;

}  // namespace projectionist
