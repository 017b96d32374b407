#pragma once

/// How a following loop (`runner::run`, a controller's `run`, the command line's `run`) waits for
/// a database whose connection was lost to come back: a bounded exponential backoff, each attempt
/// reported, and a stop with the last cause when the bound is exceeded.
///
///     reconnect_options{}                      // attempts after 0.25, 0.5, 1, 2, 4, 8, 10, 10, 10, 10 s
///     reconnect_options{.attempts = 0}         // no reconnecting: stop at the first loss

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include <fmt/format.h>

#include <projectionist/error.hpp>

namespace projectionist {

/// The bound on reconnecting after a lost connection. With the defaults a follower waits at most
/// 55.75 s in all (ten attempts, the waits doubling from 250 ms up to 10 s) before it stops.
struct reconnect_options {
    unsigned attempts = 10;                       ///< attempts after one loss; 0: stop at once
    std::chrono::milliseconds first_delay{250};   ///< the wait before the first attempt, doubled after each
    std::chrono::milliseconds max_delay{10'000};  ///< the longest wait between two attempts
};

namespace detail {

/// Whether `e` says the connection to the database was lost (see storage_error::connection_lost).
[[nodiscard]] inline bool connection_lost(const error& e) noexcept {
    const auto* s = dynamic_cast<const storage_error*>(&e);
    return s != nullptr && s->connection_lost();
}

/// One announced attempt: the `attempt`-th of `of`, made after `delay`, because of `cause`.
struct reconnect_attempt {
    unsigned attempt;
    unsigned of;
    std::chrono::milliseconds delay;
    const std::string& cause;
};

/// "reconnecting (attempt 2 of 10 in 500 ms): <cause>"
[[nodiscard]] inline std::string describe(const reconnect_attempt& a) {
    return fmt::format("the connection to the database is lost; reconnecting (attempt {} of {} in {} ms): {}",
                       a.attempt, a.of, a.delay.count(), a.cause);
}

/// Reconnects with the backoff of `options`: before each attempt reports it and waits (in
/// slices of at most 50 ms, giving up when `should_stop()` says so), then calls `attempt()`,
/// which returns true once the connection is back, false while it is still lost (`last_cause()`
/// then says why). Returns true when reconnected; false when the attempts ran out or a stop was
/// asked for. Any other error of `attempt()` propagates.
template <class Attempt, class LastCause, class Report, class ShouldStop>
bool reconnect_with_backoff(const reconnect_options& options, std::string cause, Attempt&& attempt,
                            LastCause&& last_cause, Report&& report, ShouldStop&& should_stop) {
    using namespace std::chrono;
    milliseconds delay = std::min(options.first_delay, options.max_delay);
    for (unsigned n = 1; n <= options.attempts; ++n) {
        report(reconnect_attempt{n, options.attempts, delay, cause});
        const auto until = steady_clock::now() + delay;
        while (steady_clock::now() < until) {
            if (should_stop()) return false;
            std::this_thread::sleep_for(
                std::min<steady_clock::duration>(milliseconds(50), until - steady_clock::now()));
        }
        if (should_stop()) return false;
        if (attempt()) return true;
        cause = last_cause();
        delay = std::min(delay * 2, options.max_delay);
    }
    return false;
}

}  // namespace detail
}  // namespace projectionist
