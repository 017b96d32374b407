#pragma once
// Workers: one projection spread over several processes (on several hosts) that share a
// PostgreSQL database. Include <projectionist/postgres.hpp> first; link projectionist::postgres.
//
//     projectionist::postgres_event_store store(url);
//     projectionist::postgres_storage storage(url);
//     projectionist::worker<tickets<2>, projectionist::postgres_storage, projectionist::per_aggregate> w(
//         store, storage, {.partitions = 16, .lease_ttl = 10s, .heartbeat = 2s});
//     w.run(stop_token);   // in every process; they share the 16 partitions among themselves
//
// Per aggregate, the aggregates are hashed into `partitions` partitions (partition_of); each
// worker claims a fair share of them (ceil(partitions / live workers)) through leases in
// projectionist_leases, and runs one runner per partition it holds, with
// `runner_options::slice` set to that partition: its own checkpoint, the projection's tables.
// A global projection is one partition: one worker applies it, the others stand by and claim it
// when its lease expires or is released.
//
// Guarantees:
//  - No event is applied twice and none is missed, whichever worker dies, freezes or is cut off
//    and when: a batch's rows and its partition's checkpoint commit in one transaction, the
//    checkpoint is compared-and-set (two runners of one partition cannot both commit a batch),
//    and every commit is fenced: it proves, in its transaction, that its worker still holds the
//    partition's lease with the epoch it claimed (postgres_storage::session::fence), and locks
//    that lease row until it commits, so a claim by another worker either waits for the commit
//    or comes first and makes it fail with lease_lost, writing nothing. Neither rests on clocks:
//    lease expiry is in the server's time, and a late commit is refused by the epoch, not by time.
//  - Liveness: a worker that dies or freezes stops renewing; its leases expire after lease_ttl
//    and the others claim them at their next heartbeat, so a partition is taken over within
//    about lease_ttl + heartbeat. Runner sessions set idle_in_transaction_session_timeout to
//    lease_ttl, so a worker frozen in the middle of a batch does not keep its row locks (and the
//    new holder waiting) longer than that: the server ends its session and rolls the batch back.
//  - Heartbeats run on a thread of their own, so a long batch or a large backfill does not lose
//    the lease. A worker whose runner thread hangs (a handler that never returns) keeps its
//    leases: the liveness of handlers is the application's.
//  - Order: per aggregate, each aggregate's events are applied in order by one runner at a time;
//    globally, in log order by one worker at a time.
//  - A runner without a slice (`runner<...>`, e.g. a command line's catch-up) of a per-aggregate
//    projection that workers run keeps its own checkpoint and would apply their events again, so
//    its batches are refused (an error in status(), nothing written) once a partition checkpoint
//    exists; use it for init, status, reset and remove only. A reset through it forgets every
//    partition's checkpoint, after which the projection can run whole again.
//    The partition count is fixed by the first worker (the lease rows, the checkpoint keys); a
//    worker or runner with another count is refused. A partition whose handler failed stays
//    stopped at its last commit and held (status().error), as a runner stops.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>

#include <projectionist/error.hpp>
#include <projectionist/meta/name.hpp>
#include <projectionist/runner/failure.hpp>
#include <projectionist/runner/runner.hpp>
#include <projectionist/storage/abilities.hpp>
#include <projectionist/storage/postgres_storage.hpp>
#include <projectionist/store/partition.hpp>
#include <projectionist/workers/postgres_leases.hpp>
#include <projectionist/workers/worker_status.hpp>

namespace projectionist {

/// Tuning of a worker.
struct worker_options {
    /// Per aggregate: how many partitions the aggregates are hashed into; the same in every
    /// worker of a projection, and fixed for its life (see postgres_lease_table). More
    /// partitions than workers lets work move in small steps. A global projection has one.
    std::uint32_t partitions = 16;
    /// How long a lease lasts without renewal: a dead or frozen worker's partitions are taken
    /// over after about this long.
    std::chrono::milliseconds lease_ttl{10'000};
    /// How often leases are renewed and the partitions rebalanced; well below lease_ttl (a third
    /// or less), so that a late heartbeat does not lose them.
    std::chrono::milliseconds heartbeat{2'000};
    /// How long an idle worker waits for new events before it looks again.
    std::chrono::milliseconds poll_interval{100};
    /// The worker's name in the lease tables, unique among the projection's workers; empty:
    /// "<host>:<pid>:<random>".
    std::string id;
    /// The runners' options (batch size, ...); the worker sets each one's slice.
    runner_options runner{};
    /// After this many rounds in a row in which its runners only failed, and not in a handler
    /// (the database or the event store unreachable, a connection lost for good), `run` gives
    /// its leases back and throws the last error: a worker that cannot work must not keep
    /// partitions from the others. Restart the process (or call `run` again) to rejoin.
    std::uint32_t max_failed_rounds = 10;
};

namespace detail {

inline std::string default_worker_id() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    std::random_device rd;
    return fmt::format("{}:{}:{:08x}", host, ::getpid(), rd());
}

}  // namespace detail

/// Runs a projection's share of partitions in this process, as one of several workers. See the
/// header comment for the protocol and its guarantees. `Policies` are the runner's; the storage
/// must be postgres_storage. One thread calls `run`; `status()` may be called from any thread.
template <class Projection, class... Policies>
class worker {
public:
    using runner_type = runner<Projection, Policies...>;
    using event_store_type = typename runner_type::event_store_type;
    using storage_type = typename runner_type::storage_type;
    static constexpr bool partitioned = runner_type::partitioning::partitioned;

    static_assert(std::is_same_v<storage_type, postgres_storage>,
                  "projectionist: worker<Projection, Policies...>: workers share a projection through PostgreSQL; "
                  "add projectionist::postgres_storage to the policies");

    /// Joins the projection's workers (creating its lease rows if it is the first). Throws
    /// projectionist::error if options.partitions differs from the count the lease rows have, or
    /// if the database cannot be reached.
    worker(event_store_type& store, postgres_storage& storage, worker_options options = {})
        : store_(&store), storage_(&storage), options_(std::move(options)) {
        if (!partitioned) options_.partitions = 1;  // a global projection is never split
        if (options_.id.empty()) options_.id = detail::default_worker_id();
        if (options_.heartbeat >= options_.lease_ttl)
            throw error(
                fmt::format("projectionist: worker of '{}': the heartbeat ({} ms) must be shorter than the "
                            "lease time ({} ms), a third of it or less",
                            name_of<Projection>, options_.heartbeat.count(), options_.lease_ttl.count()));
        leases_ = open_leases();
        status_.id = options_.id;
    }

    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    [[nodiscard]] const std::string& id() const noexcept { return options_.id; }
    [[nodiscard]] const worker_options& options() const noexcept { return options_; }

    [[nodiscard]] worker_status status() const {
        std::lock_guard lock(mutex_);
        worker_status s = status_;
        s.held.clear();
        for (const auto& [p, h] : held_) s.held.push_back({p, h.epoch});
        return s;
    }

    /// Works until `stop` is requested (or `max_failed_rounds` rounds failed: then it throws the
    /// last error, its leases given back): heartbeats and rebalancing on a thread of its own, the
    /// partitions' runners on this one. When stop is requested its leases are released and its
    /// registration removed, so that the others take its partitions over at once; a batch under
    /// way is then refused by the fence and rolled back, so that a long catch-up does not delay
    /// the stop (nothing is lost: the next holder applies it). `store` and `storage` are used
    /// by this thread only; the heartbeat has a connection of its own.
    void run(std::stop_token stop) {
        {
            std::jthread beat([this](std::stop_token st) { heartbeat_loop(st); });
            std::stop_callback wake(stop, [&beat] { beat.request_stop(); });
            try {
                work_loop(stop);
            } catch (...) {
                runners_.clear();
                throw;  // the heartbeat thread leaves (gives the leases back) as it ends
            }
            beat.request_stop();
        }  // the heartbeat thread has left (released the leases) and ended
        runners_.clear();
    }

private:
    using clock = std::chrono::steady_clock;

    struct held_lease {
        std::uint64_t epoch = 0;
        clock::time_point valid_until;  ///< by this process's clock, from before the renewal was sent
    };

    struct partition_runner {
        std::uint64_t epoch = 0;
        std::unique_ptr<runner_type> runner;
        bool failed = false;            ///< a handler failed: the runner stays stopped, holding the partition
        std::uint64_t counted = 0;      ///< its events_applied already added to the worker's
        error_counts errors_counted{};  ///< its errors already added to the worker's
    };

    std::unique_ptr<postgres_lease_table> open_leases() {
        return std::make_unique<postgres_lease_table>(storage_->conninfo(), storage_->options(),
                                                      std::string(name_of<Projection>), options_.partitions,
                                                      options_.id, options_.lease_ttl);
    }

    void note_error(std::string what) {
        std::lock_guard lock(mutex_);
        status_.error = std::move(what);
    }
    /// An error of the runner thread's own, outside any runner's catch-up (a runner that failed to
    /// start, a failed wait for events): noted, and counted with the runners' errors by the same
    /// kinds, so that `projectionist_worker_errors_total` sees a worker that cannot start its
    /// runners.
    void note_own_error(std::string what, const std::exception_ptr& cause) {
        std::lock_guard lock(mutex_);
        status_.error = std::move(what);
        status_.errors.add(detail::kind_of(cause, false));
    }

    static void sleep_for(std::chrono::milliseconds d, std::stop_token stop) {
        std::mutex m;
        std::condition_variable_any cv;
        std::unique_lock lock(m);
        cv.wait_for(lock, stop, d, [] { return false; });
    }

    // ---- the heartbeat thread: the only user of leases_ while run() runs -------------------------

    void heartbeat_loop(std::stop_token stop) {
        while (!stop.stop_requested()) {
            const auto started = clock::now();
            bool renewed = false;
            try {
                if (!leases_) leases_ = open_leases();
                beat_once(started, renewed);
            } catch (const std::exception& e) {
                if (!renewed) {
                    std::lock_guard lock(mutex_);
                    ++status_.renewal_failures;
                }
                note_error(fmt::format("heartbeat: {}", e.what()));
                leases_.reset();  // a new connection next time; held leases run out meanwhile
            }
            const auto next = started + options_.heartbeat;
            if (next > clock::now())
                sleep_for(std::chrono::duration_cast<std::chrono::milliseconds>(next - clock::now()), stop);
        }
        // Stopping: give the leases back now. A catch-up under way on the runner thread then ends
        // at its next commit (refused by the fence, rolled back) instead of running to the head.
        {
            std::lock_guard lock(mutex_);
            held_.clear();
        }
        try {
            if (!leases_) leases_ = open_leases();
            leases_->leave();
        } catch (const std::exception& e) {
            note_error(fmt::format("leaving: {}", e.what()));  // the leases expire by themselves
            leases_.reset();
        }
    }

    /// One heartbeat: register, renew (then `renewal_done` is set), then move towards the fair
    /// share, releasing only partitions the runner thread is not in the middle of.
    void beat_once(clock::time_point started, bool& renewal_done) {
        leases_->heartbeat();
        const std::vector<lease> renewed = leases_->renew();
        renewal_done = true;
        const std::uint32_t live = std::max<std::uint32_t>(1, leases_->live_workers());
        const std::uint32_t share = postgres_lease_table::share_of(options_.partitions, live);
        std::vector<lease> surplus;
        std::size_t held = 0;
        {
            std::lock_guard lock(mutex_);
            ++status_.renewals;
            status_.last_renewal = std::chrono::system_clock::now();
            status_.live_workers = live;
            std::map<std::uint32_t, held_lease> now;
            for (const lease& l : renewed) now[l.partition] = {l.epoch, started + options_.lease_ttl};
            for (const auto& [p, h] : held_) {
                const auto it = now.find(p);
                if (it == now.end() || it->second.epoch != h.epoch) ++status_.leases_lost;
            }
            held_ = std::move(now);
            // Over the share: give back the highest partitions that are not being run right now.
            for (auto it = held_.rbegin(); it != held_.rend() && held_.size() - surplus.size() > share; ++it)
                if (!busy_ || *busy_ != it->first) surplus.push_back({it->first, it->second.epoch});
            for (const lease& l : surplus) held_.erase(l.partition);  // the runner thread no longer starts them
            held = held_.size();
        }
        for (const lease& l : surplus) {
            if (leases_->release(l)) {
                std::lock_guard lock(mutex_);
                ++status_.releases;
            }
        }
        if (held < share) {
            const auto claimed_at = clock::now();
            std::uint32_t taken_over = 0;
            const std::vector<lease> got = leases_->claim(share - static_cast<std::uint32_t>(held), &taken_over);
            std::lock_guard lock(mutex_);
            for (const lease& l : got) held_[l.partition] = {l.epoch, claimed_at + options_.lease_ttl};
            status_.claims += got.size();
            status_.takeovers += taken_over;
        }
    }

    // ---- the runner thread ---------------------------------------------------------------------

    /// Forgets lease `l`, lost under a batch, if it is still the one held: the heartbeat may have
    /// claimed the partition again since, with a newer epoch, and counted the loss. The caller
    /// holds `mutex_`.
    bool forget(const lease& l) {
        const auto it = held_.find(l.partition);
        if (it == held_.end() || it->second.epoch != l.epoch) return false;
        held_.erase(it);
        return true;
    }

    void work_loop(std::stop_token stop) {
        while (!stop.stop_requested()) {
            std::vector<lease> mine;
            {
                std::lock_guard lock(mutex_);
                const auto now = clock::now();
                for (const auto& [p, h] : held_)
                    if (h.valid_until > now) mine.push_back({p, h.epoch});
            }
            // Runners of partitions no longer held (or held with another epoch) go first.
            for (auto it = runners_.begin(); it != runners_.end();) {
                const bool keep = std::any_of(mine.begin(), mine.end(), [&](const lease& l) {
                    return l.partition == it->first && l.epoch == it->second.epoch;
                });
                it = keep ? std::next(it) : runners_.erase(it);
            }
            std::uint64_t applied = 0;
            round_ok_ = false;
            round_failed_ = false;
            for (const lease& l : mine) {
                if (stop.stop_requested()) break;
                applied += run_partition(l, stop);
            }
            if (applied == 0) {
                try {
                    wait_for_work(stop);
                } catch (const std::exception& e) {
                    note_own_error(fmt::format("waiting for events: {}", e.what()), std::current_exception());
                    round_failed_ = true;
                    sleep_for(options_.poll_interval, stop);
                }
            }
            if (round_ok_) {
                failed_rounds_ = 0;
            } else if (round_failed_ && ++failed_rounds_ >= options_.max_failed_rounds) {
                std::lock_guard lock(mutex_);
                throw error(
                    fmt::format("projectionist: worker '{}' of '{}' stopped after {} rounds in which its "
                                "runners only failed; the last error: {}",
                                options_.id, name_of<Projection>, failed_rounds_, status_.error.value_or("(none)")));
            }
        }
        runners_.clear();
    }

    /// Catches one partition up, if this worker still holds it. Returns the events applied.
    std::uint64_t run_partition(const lease& l, const std::stop_token& stop) {
        {
            std::lock_guard lock(mutex_);
            const auto it = held_.find(l.partition);
            if (it == held_.end() || it->second.epoch != l.epoch || it->second.valid_until <= clock::now()) return 0;
            busy_ = l.partition;  // the heartbeat does not release it before this catch-up ends
        }
        struct not_busy {
            worker& self;
            ~not_busy() {
                std::lock_guard lock(self.mutex_);
                self.busy_.reset();
            }
        } done{*this};

        partition_runner* pr = nullptr;
        try {
            pr = &runner_for(l);
        } catch (const std::exception& e) {
            note_own_error(fmt::format("partition {}: starting its runner: {}", l.partition, e.what()),
                           std::current_exception());
            round_failed_ = true;
            return 0;
        }
        if (pr->failed) return 0;
        // The runner's own counts: a catch-up that fails still committed its earlier batches, and
        // the runner may be dropped after its error.
        auto count_applied = [&]() noexcept {
            try {
                const runner_status s = pr->runner->status();
                std::lock_guard lock(mutex_);
                status_.events_applied += s.events_applied - pr->counted;
                pr->counted = s.events_applied;
                for (std::size_t i = 0; i < error_counts::kinds; ++i)
                    status_.errors.counts[i] += s.errors.counts[i] - pr->errors_counted.counts[i];
                pr->errors_counted = s.errors;
            } catch (...) {
                // status() asks the store for its head: lost with the store's connection
            }
        };
        try {
            const std::uint64_t applied = pr->runner->catch_up();
            count_applied();
            if (pr->runner->session().fenced_out()) {
                // A commit was refused by the fence and the runner took it for a conflict (the
                // new holder had moved the checkpoint): the lease is lost all the same.
                std::lock_guard lock(mutex_);
                ++status_.fenced_commits;
                if (forget(l)) ++status_.leases_lost;
                runners_.erase(l.partition);
                return applied;
            }
            round_ok_ = true;
            return applied;
        } catch (const std::exception& e) {
            count_applied();
            if (stop.stop_requested()) {  // the leases were given back: the fence ended this batch
                runners_.erase(l.partition);
                return 0;
            }
            const bool fenced = pr->runner->session().fenced_out();
            const auto* pe = dynamic_cast<const projection_error*>(&e);
            const bool handler_failed = !fenced && pe != nullptr && pe->context().position.has_value();
            {
                std::lock_guard lock(mutex_);
                status_.error = fmt::format("partition {}: {}", l.partition, e.what());
                if (fenced) {
                    ++status_.fenced_commits;
                    if (forget(l)) ++status_.leases_lost;  // found out before the heartbeat
                } else if (!handler_failed) {
                    ++status_.runner_restarts;
                }
            }
            if (!handler_failed && !fenced) round_failed_ = true;
            if (handler_failed)
                pr->failed = true;  // stopped at its last commit, as a runner is; the partition waits for a fix
            else
                runners_.erase(l.partition);  // a lost lease or connection, a lock timeout: a fresh runner next time
            return 0;
        }
    }

    partition_runner& runner_for(const lease& l) {
        auto it = runners_.find(l.partition);
        if (it != runners_.end()) return it->second;
        runner_options ro = options_.runner;
        if constexpr (partitioned) ro.slice = partition_slice{options_.partitions, l.partition};
        auto r = std::make_unique<runner_type>(*store_, *storage_, ro);
        auto& session = r->session();
        // A batch frozen mid-way must not hold its row locks (the checkpoint's, the lease's) past
        // the lease: the server ends such a session and rolls the batch back. A setup statement, so
        // that a connection opened again after a loss (a server restart) has it too.
        session.connection().setup(
            fmt::format("SET idle_in_transaction_session_timeout = {}", options_.lease_ttl.count()));
        session.fence(lease_fence{std::string(name_of<Projection>), l.partition, options_.id, l.epoch});
        return runners_.emplace(l.partition, partition_runner{l.epoch, std::move(r), false, 0, {}}).first->second;
    }

    /// Waits for an event beyond the runners' positions, or `poll`. Runners that cannot move
    /// (stopped by a handler, dormant until init) do not count: their positions stay behind the
    /// head, and waiting on them would not wait at all.
    void wait_for_work(std::stop_token stop) {
        std::uint64_t after = std::numeric_limits<std::uint64_t>::max();
        for (const auto& [p, pr] : runners_) {
            const projection_state state = pr.runner->state();
            if (!pr.failed && state != projection_state::declared && state != projection_state::deleted)
                after = std::min(after, pr.runner->position());
        }
        if constexpr (has_event_wait<event_store_type>) {
            if (after != std::numeric_limits<std::uint64_t>::max()) {
                store_->wait_for_events(after, options_.poll_interval, stop);
                return;
            }
        }
        sleep_for(options_.poll_interval, stop);
    }

    event_store_type* store_;
    postgres_storage* storage_;
    worker_options options_;
    std::unique_ptr<postgres_lease_table> leases_;
    std::map<std::uint32_t, partition_runner> runners_;  // the runner thread's own
    bool round_ok_ = false;                              // a runner caught up in this round
    bool round_failed_ = false;                          // a runner failed in this round, not in a handler
    std::uint32_t failed_rounds_ = 0;                    // rounds in a row with failures and no success

    mutable std::mutex mutex_;  // guards what follows
    std::map<std::uint32_t, held_lease> held_;
    std::optional<std::uint32_t> busy_;
    worker_status status_;
};

}  // namespace projectionist
