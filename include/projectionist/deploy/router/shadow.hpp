#pragma once

/// Shadow reads: which queries are shadowed (a sampled share of them), and what a router records
/// when the candidate's answer differs from the primary's (or the shadow run throws). The
/// counters count every shadow read; the list keeps the most recent
/// discrepancies with both answers in words (detail/value_text.hpp's answer spelling: strings
/// quoted, `{ticket_id: "t-1", status: "open"}` for a reflected struct, "(none)" for an empty
/// optional, at most 16 elements of a range, "(unformattable)" for a type with no text form).
///
///     router.shadow_query(user, query);
///     for (const auto& d : router.discrepancies()) log(d.routing_key, d.primary_value, d.candidate_value);
///
/// **Sampling.** `router_options::shadow_sampling` (or `router.set_shadow_sampling`) is the share
/// of `shadow_query` calls, in basis points (10000 = every one, 100 = 1%), that also run on the
/// other version; the others cost what `query` costs. The choice is a per-thread xorshift draw,
/// not a shared counter, so sampled queries on many threads do not contend; it does not depend
/// on the key, so every key can be sampled.
///
/// **Re-reads.** Two versions fed by one log apply a new event at different moments (each in its
/// own transaction, often in other processes), so a key changed a moment ago can read differently
/// on them although neither is wrong. A shadow read whose answers differ is therefore read again
/// on both versions, up to `router_options::shadow_rereads` times, `shadow_reread_delay` apart,
/// and is a discrepancy only if every re-read differs too (the last one is recorded); one that
/// agrees on a re-read is counted as `settled`. Set the delay to at least the time between the
/// versions' catch-ups (a worker's poll interval). Re-reads run on the caller's thread, so a
/// query whose versions really differ waits up to `shadow_rereads * shadow_reread_delay` more;
/// 0 re-reads counts every first difference, and waits never.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <projectionist/deploy/router/shadow_counters.hpp>
#include <projectionist/detail/value_text.hpp>

namespace projectionist {

/// Tuning of a router.
struct router_options {
    /// How many discrepancies of shadow reads are kept (the most recent ones).
    std::size_t max_discrepancies = 1000;
    /// The share of `shadow_query` calls that are shadowed, in basis points: 10000 every one,
    /// 100 one in a hundred (chosen at random per call), 0 none.
    unsigned shadow_sampling = 10000;
    /// How many times a shadow read whose answers differ is read again on both versions before it
    /// counts as a discrepancy (0: never; see "Re-reads" above).
    unsigned shadow_rereads = 2;
    /// The wait before each re-read.
    std::chrono::milliseconds shadow_reread_delay{10};
};

/// One difference found by a shadow read.
struct discrepancy {
    std::string routing_key;
    std::string primary;          ///< versioned name of the primary
    std::string candidate;        ///< versioned name of the candidate
    std::string primary_value;    ///< the primary's answer, formatted (empty when it threw)
    std::string candidate_value;  ///< the candidate's answer, formatted (empty when it threw)
    std::string error;            ///< when the shadow run or the comparison threw: what, and its message
    std::uint64_t sequence = 0;   ///< its number among the router's discrepancies, from 1 (see shadow_totals)
};

}  // namespace projectionist

namespace projectionist::detail::routing {

/// "<who> threw: <message>", for the exception being handled. Never throws: a shadow read must
/// not turn into an error of the caller's query.
inline std::string current_exception_text(std::string_view who) noexcept {
    try {
        try {
            throw;
        } catch (const std::exception& e) {
            return fmt::format("{} threw: {}", who, e.what());
        } catch (...) {
            return fmt::format("{} threw: an exception that is not a std::exception", who);
        }
    } catch (...) {
        return "threw";  // short enough not to allocate
    }
}

/// The queries of one version: entered and left, both only growing. In flight is their
/// difference (`left` read first, so never below the truth: a drain never ends early), and the
/// total is `entered`, which per-version query counts read for free.
class query_counts {
public:
    void enter() noexcept { entered_.fetch_add(1); }
    void leave() noexcept { left_.fetch_add(1); }
    /// An entry taken back before the query started (the routing moved meanwhile).
    void undo() noexcept { entered_.fetch_sub(1); }
    [[nodiscard]] std::size_t in_flight() const noexcept {
        const std::uint64_t left = left_.load();
        return static_cast<std::size_t>(entered_.load() - left);
    }
    [[nodiscard]] std::uint64_t total() const noexcept { return entered_.load(); }

private:
    std::atomic<std::uint64_t> entered_{0};
    std::atomic<std::uint64_t> left_{0};
};

/// Which shadow_query calls are shadowed: a share in basis points, drawn per call from a
/// per-thread xorshift64* generator (no shared state on the query path but the share itself).
class shadow_sampler {
public:
    explicit shadow_sampler(unsigned basis_points) noexcept : basis_points_(clamp(basis_points)) {}

    [[nodiscard]] bool sample() const noexcept {
        const unsigned share = basis_points_.load(std::memory_order_relaxed);
        if (share >= 10000) return true;
        if (share == 0) return false;
        return draw() < share;
    }
    void set(unsigned basis_points) noexcept { basis_points_.store(clamp(basis_points), std::memory_order_relaxed); }
    [[nodiscard]] unsigned get() const noexcept { return basis_points_.load(std::memory_order_relaxed); }

private:
    static unsigned clamp(unsigned bp) noexcept { return bp > 10000 ? 10000 : bp; }

    /// A number from 0 to 9999, uniform up to 2^-32.
    static unsigned draw() noexcept {
        thread_local std::uint64_t state = seed();
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        const std::uint64_t r = (state * 0x2545F4914F6CDD1DULL) >> 32;
        return static_cast<unsigned>((r * 10000) >> 32);
    }
    static std::uint64_t seed() noexcept {
        thread_local char here = 0;
        const auto t = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        const std::uint64_t s = (reinterpret_cast<std::uintptr_t>(&here) * 0x9E3779B97F4A7C15ULL) ^ t;
        return s == 0 ? 0x9E3779B97F4A7C15ULL : s;
    }

    std::atomic<unsigned> basis_points_;
};

/// The counters and the most recent discrepancies of one router; safe to use from many threads.
class shadow_log {
public:
    explicit shadow_log(std::size_t max_discrepancies) noexcept : max_(max_discrepancies) {}

    void count_query() noexcept { queries_.fetch_add(1, std::memory_order_relaxed); }
    void count_compared() noexcept { compared_.fetch_add(1, std::memory_order_relaxed); }
    void count_settled() noexcept { settled_.fetch_add(1, std::memory_order_relaxed); }

    /// Keeps a discrepancy (dropping the oldest past the limit), then counts it: a reader that
    /// sees the count (`counters`, then `recent`) finds the discrepancy kept. A null answer is one
    /// that threw. Best effort: if formatting or allocation fails, only the counters change.
    template <class Result>
    void record(std::string_view key, std::string_view primary, std::string_view candidate, const Result* primary_value,
                const Result* candidate_value, std::string error) noexcept {
        const std::uint64_t sequence = sequence_.fetch_add(1, std::memory_order_relaxed) + 1;
        if (!error.empty()) errors_.fetch_add(1, std::memory_order_relaxed);
        keep(sequence, key, primary, candidate, primary_value, candidate_value, std::move(error));
        discrepancies_.fetch_add(1, std::memory_order_release);
    }

    /// Since the log was created or last cleared.
    [[nodiscard]] shadow_counters counters() const {
        std::lock_guard lock(cleared_mutex_);  // the totals read after the clear's, so never below them
        const shadow_counters all = totals();
        return {all.queries - cleared_.queries, all.compared - cleared_.compared,
                all.discrepancies - cleared_.discrepancies, all.errors - cleared_.errors,
                all.settled - cleared_.settled};
    }
    /// Since the log was created, whatever `clear` did: what a rollout counts a step's reads from.
    [[nodiscard]] shadow_counters totals() const noexcept {
        return {queries_.load(), compared_.load(), discrepancies_.load(std::memory_order_acquire), errors_.load(),
                settled_.load()};
    }
    [[nodiscard]] std::vector<discrepancy> recent() const {
        std::lock_guard lock(mutex_);
        return {recent_.begin(), recent_.end()};
    }
    /// Forgets the kept discrepancies and starts `counters` from zero; `totals` and the
    /// discrepancies' sequence numbers go on.
    void clear() {
        std::lock_guard lock(mutex_);
        recent_.clear();
        std::lock_guard cleared(cleared_mutex_);
        cleared_ = totals();
    }

private:
    template <class Result>
    void keep(std::uint64_t sequence, std::string_view key, std::string_view primary, std::string_view candidate,
              const Result* primary_value, const Result* candidate_value, std::string error) noexcept {
        if (max_ == 0) return;
        try {
            discrepancy d{std::string(key),
                          std::string(primary),
                          std::string(candidate),
                          primary_value ? answer_text(*primary_value) : std::string(),
                          candidate_value ? answer_text(*candidate_value) : std::string(),
                          std::move(error),
                          sequence};
            std::lock_guard lock(mutex_);
            if (recent_.size() == max_) recent_.pop_front();
            recent_.push_back(std::move(d));
        } catch (...) {
            // The counters are kept, and the caller still gets the serving version's answer.
        }
    }

    std::size_t max_;
    std::atomic<std::uint64_t> queries_{0};
    std::atomic<std::uint64_t> compared_{0};
    std::atomic<std::uint64_t> discrepancies_{0};
    std::atomic<std::uint64_t> sequence_{0};  ///< numbers the discrepancies as they begin to be kept
    mutable std::mutex cleared_mutex_;
    shadow_counters cleared_{};  ///< the totals at the last clear
    std::atomic<std::uint64_t> errors_{0};
    std::atomic<std::uint64_t> settled_{0};
    mutable std::mutex mutex_;
    std::deque<discrepancy> recent_;
};

}  // namespace projectionist::detail::routing
