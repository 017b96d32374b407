#pragma once

/// What an operator scrapes: the metrics of runners, deployments and routers, read from their
/// status snapshots at scrape time. Nothing runs on the event path: a runner publishes its
/// `status()` once per batch whether or not anyone looks, and the exporter only reads it when
/// `render()` is called (by the HTTP endpoint in observe/http.hpp, or by the application).
///
///     projectionist::metrics_exporter metrics;
///     metrics.add(tickets_deployment);   // every version: projection="tickets", version="tickets_v1", ...
///     metrics.add(tickets_router);       // rollout share, queries in flight, shadow reads
///     std::string page = metrics.render();                  // Prometheus text format 0.0.4
///     auto r = metrics.ready("tickets_v2", 100);            // caught up within 100 events?
///     if (!r) std::puts(r.reason.c_str());
///
/// `add` keeps a reference: a source must outlive the exporter (or the exporter must no longer be
/// rendered). Sources are recognised by what they offer, not by their type, so this header needs
/// no deploy/ include: a runner (`status()` returning `runner_status`, and a `projection_type`),
/// a deployment (`status()` returning one `runner_status` per version, and a `base_name`), a
/// router (`status()`, `shadow_stats()`, `in_flight(name)`), a worker (`status()` returning
/// `worker_status`: the partitions held and lease counters), a rollout (`last_snapshot()`: the plan and the
/// shadow reads as of its last judgment). Any other source of statuses is
/// added with `add_source(projection, fn)`. Add a runner once: through its deployment or alone,
/// not both (the series would be written twice, which a scraper rejects).
///
/// `render()` and `ready()` may be called from any thread, concurrently with `add`.

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <projectionist/deploy/router/shadow_counters.hpp>
#include <projectionist/observe/metrics.hpp>
#include <projectionist/runner/status.hpp>
#include <projectionist/storage/catalog.hpp>
#include <projectionist/workers/worker_status.hpp>

namespace projectionist {

/// A source of runner statuses, as `metrics_exporter::add` finds in a runner.
template <class R>
concept observable_runner = requires(const R& r) {
    typename R::projection_type;
    { R::projection_type::base_name } -> std::convertible_to<std::string_view>;
    { r.status() } -> std::convertible_to<runner_status>;
};

/// Every version of one projection, as `metrics_exporter::add` finds in a deployment.
template <class D>
concept observable_deployment = requires(const D& d) {
    { D::base_name } -> std::convertible_to<std::string_view>;
    { d.status() } -> std::convertible_to<std::vector<runner_status>>;
};

/// A query router, as `metrics_exporter::add` finds it.
template <class R>
concept observable_router = requires(const R& r) {
    r.status().projection;
    r.status().versions;
    r.status().basis_points;
    { r.shadow_stats() } -> std::convertible_to<shadow_counters>;
    { r.in_flight(std::string_view{}) } -> std::convertible_to<std::size_t>;
};

/// A worker (workers/worker.hpp), as `metrics_exporter::add` finds it.
template <class W>
concept observable_worker = requires(const W& w) {
    { W::runner_type::projection_type::versioned_name } -> std::convertible_to<std::string_view>;
    { w.status() } -> std::convertible_to<worker_status>;
};

/// A rollout (deploy/rollout/driver.hpp), as `metrics_exporter::add` finds it: the snapshot of its
/// last judgment, kept in memory (no storage read at scrape time).
template <class R>
concept observable_rollout = requires(const R& r) {
    { r.projection() } -> std::convertible_to<std::string_view>;
    r.last_snapshot().record->plan.candidate;
    r.last_snapshot().record->plan.steps[0].basis_points;
    r.last_snapshot().record->step;
    r.last_snapshot().readings.compared;
    r.last_snapshot().readings.discrepancies;
    r.last_snapshot().observers;
};

/// Whether a version may take traffic: `ready` and, when it is not, why, in words.
struct readiness {
    bool ready = false;
    std::string reason;
    explicit operator bool() const noexcept { return ready; }
};

/// Collects sources and renders their metrics; see the comment at the top of this file.
class metrics_exporter {
public:
    using clock = std::chrono::system_clock;

    /// Statuses of one projection's versions, read at scrape time.
    struct status_source {
        std::string projection;  ///< the base name, for the `projection` label
        std::function<std::vector<runner_status>()> read;
    };

    /// What a router reports, read at scrape time.
    struct router_snapshot {
        std::string projection;
        std::string primary;
        std::optional<std::string> candidate;
        unsigned basis_points = 0;
        std::vector<std::pair<std::string, std::size_t>> in_flight;  ///< per version
        std::vector<std::uint64_t> queries;                          ///< per version, as in_flight
        shadow_counters shadow;
    };

    /// What a rollout reports, read at scrape time.
    struct plan_snapshot {
        std::string projection;
        std::string candidate;
        std::string state;     ///< "pending", "running", "completed", "rolled_back" or "aborted"
        std::size_t step = 0;  ///< from 1; 0 while pending
        std::size_t steps = 0;
        unsigned basis_points = 0;  ///< the current step's share of the keys
        std::uint64_t compared = 0;
        std::uint64_t discrepancies = 0;
        std::size_t observers = 0;
    };

    /// What a worker reports, read at scrape time.
    struct worker_snapshot {
        std::string projection;
        std::string version;
        worker_status status;  ///< its id is the `worker` label
    };

    metrics_exporter() = default;
    /// A fixed clock for tests: the lag in seconds is measured against it.
    explicit metrics_exporter(std::function<clock::time_point()> now) : now_(std::move(now)) {}

    template <observable_runner R>
    void add(R& runner) {
        add_source(std::string(R::projection_type::base_name),
                   [&runner] { return std::vector<runner_status>{runner.status()}; });
    }

    template <observable_deployment D>
    requires(!observable_runner<D>) void add(D& deployment) {
        add_source(std::string(D::base_name), [&deployment] { return deployment.status(); });
    }

    template <observable_router R>
    void add(R& router) {
        std::lock_guard lock(mutex_);
        routers_.push_back([&router] {
            const auto d = router.status();
            const shadow_counters s = router.shadow_stats();
            router_snapshot out;
            out.projection = std::string(d.projection);
            out.primary = std::string(d.primary);
            if (d.candidate) out.candidate = std::string(*d.candidate);
            out.basis_points = d.basis_points;
            for (const auto& v : d.versions) {
                out.in_flight.emplace_back(std::string(v), router.in_flight(v));
                if constexpr (requires { router.queries(v); }) out.queries.push_back(router.queries(v));
            }
            out.shadow = s;
            return out;
        });
    }

    /// A rollout: its state, step and the current step's shadow reads, as of its last judgment
    /// (label `candidate`). Nothing is written before a plan was seen.
    template <observable_rollout R>
    void add(R& rollout) {
        std::lock_guard lock(mutex_);
        rollouts_.push_back([&rollout]() -> std::optional<plan_snapshot> {
            const auto s = rollout.last_snapshot();
            if (!s.record) return std::nullopt;
            const auto& r = *s.record;
            plan_snapshot out;
            out.projection = std::string(rollout.projection());
            out.candidate = r.plan.candidate;
            out.state = std::string(to_string(r.state));
            out.steps = r.plan.steps.size();
            out.step = out.state == "pending" ? 0 : r.step + 1;
            if (r.step < r.plan.steps.size()) out.basis_points = r.plan.steps[r.step].basis_points;
            out.compared = s.readings.compared;
            out.discrepancies = s.readings.discrepancies;
            out.observers = s.observers;
            return out;
        });
    }

    /// A worker: the partitions it holds and what happened to its leases (label `worker`: its id).
    template <observable_worker W>
    void add(W& worker) {
        using projection = typename W::runner_type::projection_type;
        std::lock_guard lock(mutex_);
        workers_.push_back([&worker] {
            return worker_snapshot{std::string(projection::base_name), std::string(projection::versioned_name),
                                   worker.status()};
        });
    }

    /// Any other source: `read` returns the statuses of versions of `projection`.
    void add_source(std::string projection, std::function<std::vector<runner_status>()> read) {
        std::lock_guard lock(mutex_);
        sources_.push_back({std::move(projection), std::move(read)});
    }

    /// The metrics of every source, in the Prometheus text format 0.0.4.
    [[nodiscard]] std::string render() const {
        auto [sources, routers] = copy_sources();
        std::vector<std::function<worker_snapshot()>> workers;
        std::vector<std::function<std::optional<plan_snapshot>()>> rollouts;
        {
            std::lock_guard lock(mutex_);
            workers = workers_;
            rollouts = rollouts_;
        }
        metrics_text m;
        const auto now = now_ ? now_() : clock::now();
        for (const auto& src : sources)
            for (const auto& s : src.read()) write_runner(m, src.projection, s, now);
        for (const auto& r : routers) write_router(m, r());
        for (const auto& w : workers) write_worker(m, w(), now);
        for (const auto& r : rollouts)
            if (auto s = r()) write_rollout(m, *s);
        return m.str();
    }

    /// Whether `version` is caught up within `max_lag` events: found among the sources, not
    /// stopped by an error, not dormant, past its backfill (caught_up, live, serving or retired)
    /// and at most `max_lag` events behind the head. Otherwise `reason` says which.
    [[nodiscard]] readiness ready(std::string_view version, std::uint64_t max_lag) const {
        auto sources = copy_sources().first;
        for (const auto& src : sources)
            for (const auto& s : src.read())
                if (s.name == version) return readiness_of(s, max_lag);
        return {false, fmt::format("{} is not a version this exporter knows", version)};
    }

    /// Whether every version of every source is ready (see the other overload).
    [[nodiscard]] readiness ready(std::uint64_t max_lag) const {
        auto sources = copy_sources().first;
        for (const auto& src : sources)
            for (const auto& s : src.read())
                if (auto r = readiness_of(s, max_lag); !r) return r;
        return {true, "every version is caught up"};
    }

    /// Readiness of one status: see `ready(version, max_lag)`.
    [[nodiscard]] static readiness readiness_of(const runner_status& s, std::uint64_t max_lag) {
        if (s.error) return {false, fmt::format("{} has stopped: {}", s.name, *s.error)};
        if (s.dormant) return {false, fmt::format("{} is dormant: it waits for init", s.name)};
        switch (s.state) {
            case projection_state::caught_up:
            case projection_state::serving:
            case projection_state::retired: break;
            default: return {false, fmt::format("{} is {}, not caught up yet", s.name, to_string(s.state))};
        }
        if (s.lag > max_lag)
            return {false, fmt::format("{} is {} events behind the head (at most {} allowed)", s.name, s.lag, max_lag)};
        return {true, fmt::format("{} is caught up: {} events behind the head", s.name, s.lag)};
    }

private:
    std::pair<std::vector<status_source>, std::vector<std::function<router_snapshot()>>> copy_sources() const {
        std::lock_guard lock(mutex_);
        return {sources_, routers_};
    }

    static void write_runner(metrics_text& m, const std::string& projection, const runner_status& s,
                             clock::time_point now) {
        const metric_labels l{{"projection", projection}, {"version", s.name}};
        auto u = [](std::uint64_t v) { return static_cast<double>(v); };
        m.gauge("projectionist_position", "The last position this version applied (per-aggregate: its scan position).",
                l, u(s.position));
        m.gauge("projectionist_head", "The event store's head when the status was read.", l, u(s.head));
        m.gauge("projectionist_lag_events", "Events between the head and this version's position.", l, u(s.lag));
        // Caught up: no lag. Behind: how much later the head's event was recorded than the last
        // applied one; without the head's time, the age of the last applied event (an upper
        // bound). Behind with nothing applied yet: unknown, so not written.
        constexpr std::string_view lag_help =
            "Seconds between the recorded times of the head's event and of this version's last applied one; 0 when "
            "caught up.";
        if (s.lag == 0) {
            m.gauge("projectionist_lag_seconds", lag_help, l, 0);
        } else if (s.last_event_recorded_at) {
            const auto newest = s.head_recorded_at ? *s.head_recorded_at : now;
            const double behind = std::chrono::duration<double>(newest - *s.last_event_recorded_at).count();
            m.gauge("projectionist_lag_seconds", lag_help, l, std::max(behind, 0.0));
        }
        m.counter("projectionist_events_applied_total", "Handlers run by this version's runner.", l,
                  u(s.events_applied));
        m.counter("projectionist_events_skipped_total", "Per-aggregate: events already applied and not applied again.",
                  l, u(s.events_skipped));
        m.counter("projectionist_dead_letters_total", "Events recorded as dead letters.", l, u(s.events_dead_lettered));
        m.gauge("projectionist_parked_aggregates", "Per-aggregate: aggregates stopped after a dead letter.", l,
                u(s.parked_aggregates));
        m.counter("projectionist_emitted_total", "Emitted events appended to the store.", l, u(s.emitted));
        m.counter("projectionist_dropped_total", "Emitted events dropped by the emission policy.", l, u(s.dropped));
        m.counter("projectionist_batches_total", "Batch transactions and bulk flushes committed.", l,
                  u(s.batches_committed));
        m.counter("projectionist_bulk_rows_flushed_total", "Bulk mode: rows written by flushes.", l,
                  u(s.bulk_rows_flushed));
        m.counter("projectionist_bulk_rows_read_total",
                  "Bulk mode: rows read back from the table (evicted at the memory budget, or held before the "
                  "backfill).",
                  l, u(s.bulk_rows_read));
        m.counter("projectionist_bulk_passes_total",
                  "Bulk mode in passes by aggregate: later passes over the log, each from where the pass it "
                  "continues split.",
                  l, u(s.bulk_passes));
        m.histogram("projectionist_batch_duration_seconds", "Batch mode: each committed batch, from read to commit.", l,
                    duration_histogram::bounds, s.batch_seconds.counts, s.batch_seconds.sum, s.batch_seconds.count);
        m.histogram("projectionist_flush_duration_seconds", "Bulk mode: each flush's transaction.", l,
                    duration_histogram::bounds, s.flush_seconds.counts, s.flush_seconds.sum, s.flush_seconds.count);
        m.gauge("projectionist_stopped", "1 when the version stopped on an error (see its status), else 0.", l,
                s.error ? 1 : 0);
        write_errors(m, "projectionist_errors_total",
                     "Errors this version's runner met, by kind: handler, storage, connection, conflict, definition, "
                     "deleted, fenced, other.",
                     l, s.errors);
        for (auto st : all_states) {
            metric_labels sl = l;
            sl.emplace_back("state", std::string(to_string(st)));
            m.gauge("projectionist_state",
                    "1 for the version's state (stopped after an error, else its deployment state), 0 for the others.",
                    sl, s.state == st ? 1 : 0);
        }
        m.gauge("projectionist_dormant", "1 while a manual-kick-off version waits for init.", l, s.dormant ? 1 : 0);
        m.gauge("projectionist_bulk_mode", "1 while a bulk backfill applies or flushes.", l, s.mode == "bulk" ? 1 : 0);
        m.gauge("projectionist_live", "1 when the version's emitted events go downstream.", l, s.live ? 1 : 0);
    }

    /// One counter series per error kind, `l` plus the label kind.
    static void write_errors(metrics_text& m, std::string_view name, std::string_view help, const metric_labels& l,
                             const error_counts& errors) {
        for (std::size_t i = 0; i < error_counts::kinds; ++i) {
            metric_labels el = l;
            el.emplace_back("kind", std::string(to_string(static_cast<error_kind>(i))));
            m.counter(name, help, el, static_cast<double>(errors.counts[i]));
        }
    }

    static void write_router(metrics_text& m, const router_snapshot& r) {
        for (std::size_t i = 0; i < r.in_flight.size(); ++i) {
            const auto& [version, n] = r.in_flight[i];
            const metric_labels l{{"projection", r.projection}, {"version", version}};
            double share = 0;
            if (version == r.primary) share = 1.0 - (r.candidate ? r.basis_points / 10000.0 : 0.0);
            if (r.candidate && version == *r.candidate) share = r.basis_points / 10000.0;
            m.gauge("projectionist_rollout_share", "The share of routing keys sent to this version (0 to 1).", l,
                    share);
            m.gauge("projectionist_router_primary", "1 for the router's primary version.", l,
                    version == r.primary ? 1 : 0);
            m.gauge("projectionist_router_in_flight_queries", "Queries running on this version now.", l,
                    static_cast<double>(n));
            if (i < r.queries.size())
                m.counter("projectionist_router_queries_total",
                          "Queries this router sent to this version, shadow runs included.", l,
                          static_cast<double>(r.queries[i]));
        }
        const metric_labels l{{"projection", r.projection}};
        auto u = [](std::uint64_t v) { return static_cast<double>(v); };
        m.counter("projectionist_shadow_queries_total", "shadow_query calls.", l, u(r.shadow.queries));
        m.counter("projectionist_shadow_reads_total", "Shadow queries run on both versions and compared.", l,
                  u(r.shadow.compared));
        m.counter("projectionist_shadow_discrepancies_total",
                  "Compared shadow reads whose answers differed or whose shadow run threw.", l,
                  u(r.shadow.discrepancies));
        m.counter("projectionist_shadow_errors_total", "Discrepancies where the shadow run or comparison threw.", l,
                  u(r.shadow.errors));
    }

    static void write_rollout(metrics_text& m, const plan_snapshot& r) {
        const metric_labels l{{"projection", r.projection}, {"candidate", r.candidate}};
        auto u = [](std::uint64_t v) { return static_cast<double>(v); };
        for (std::string_view state : {"pending", "running", "completed", "rolled_back", "aborted"}) {
            metric_labels sl = l;
            sl.emplace_back("state", std::string(state));
            m.gauge("projectionist_rollout_state", "1 for the rollout plan's state, 0 for the others.", sl,
                    r.state == state ? 1 : 0);
        }
        m.gauge("projectionist_rollout_step", "The plan's current step, from 1 (0 while pending).", l, u(r.step));
        m.gauge("projectionist_rollout_steps", "The plan's number of steps.", l, u(r.steps));
        m.gauge("projectionist_rollout_step_share", "The current step's share of the routing keys (0 to 1).", l,
                r.basis_points / 10000.0);
        m.gauge("projectionist_rollout_step_shadow_reads",
                "Shadow reads compared at the current step, summed over the processes.", l, u(r.compared));
        m.gauge("projectionist_rollout_step_discrepancies",
                "Of those, the ones whose answers differed (expected changes aside).", l, u(r.discrepancies));
        m.gauge("projectionist_rollout_observers", "Processes that reported shadow reads for this plan.", l,
                u(r.observers));
    }

    static void write_worker(metrics_text& m, const worker_snapshot& snapshot, clock::time_point now) {
        const worker_status& w = snapshot.status;
        const metric_labels l{{"projection", snapshot.projection}, {"version", snapshot.version}, {"worker", w.id}};
        auto u = [](std::uint64_t v) { return static_cast<double>(v); };
        m.gauge("projectionist_worker_partitions_held", "Partitions whose lease this worker holds.", l,
                u(w.held.size()));
        m.gauge("projectionist_worker_live_workers", "Workers alive at this worker's last heartbeat.", l,
                u(w.live_workers));
        m.counter("projectionist_worker_leases_claimed_total", "Leases claimed.", l, u(w.claims));
        m.counter("projectionist_worker_leases_taken_over_total",
                  "Leases claimed after they expired in a worker's hands (it stopped renewing), not released.", l,
                  u(w.takeovers));
        m.counter("projectionist_worker_leases_released_total", "Leases given back to rebalance or on leaving.", l,
                  u(w.releases));
        m.counter("projectionist_worker_leases_lost_total", "Leases found expired or taken over.", l, u(w.leases_lost));
        m.counter("projectionist_worker_lease_renewals_total", "Heartbeats whose renewal of the leases went through.",
                  l, u(w.renewals));
        m.counter("projectionist_worker_lease_renewal_failures_total",
                  "Heartbeats whose renewal failed (the database unreachable): the leases run out meanwhile.", l,
                  u(w.renewal_failures));
        // Before the first renewal there is no time to give: not written.
        if (w.last_renewal) {
            m.gauge("projectionist_worker_lease_renewed_timestamp_seconds",
                    "When the last renewal went through, in seconds since the Unix epoch.", l,
                    std::chrono::duration<double>(w.last_renewal->time_since_epoch()).count());
            m.gauge("projectionist_worker_lease_renewal_age_seconds",
                    "Seconds since the last renewal went through, at the scrape; above the lease time, the leases "
                    "have run out.",
                    l, std::max(std::chrono::duration<double>(now - *w.last_renewal).count(), 0.0));
        }
        m.counter("projectionist_worker_fenced_commits_total", "Batches refused by the fence (lease lost).", l,
                  u(w.fenced_commits));
        m.counter("projectionist_worker_runner_restarts_total",
                  "Runners dropped after an error that was not a handler's.", l, u(w.runner_restarts));
        m.counter("projectionist_worker_events_applied_total", "Handlers run by this worker's runners.", l,
                  u(w.events_applied));
        write_errors(m, "projectionist_worker_errors_total",
                     "Errors this worker's runners met, by kind (as projectionist_errors_total), dropped runners "
                     "included, and the worker's own failures to start a runner or to wait for events.",
                     l, w.errors);
    }

    static constexpr projection_state all_states[] = {projection_state::declared,    projection_state::initialized,
                                                      projection_state::backfilling, projection_state::caught_up,
                                                      projection_state::serving,     projection_state::retired,
                                                      projection_state::deleted,     projection_state::stopped};

    std::function<clock::time_point()> now_;
    mutable std::mutex mutex_;
    std::vector<status_source> sources_;
    std::vector<std::function<router_snapshot()>> routers_;
    std::vector<std::function<worker_snapshot()>> workers_;
    std::vector<std::function<std::optional<plan_snapshot>()>> rollouts_;
};

}  // namespace projectionist
