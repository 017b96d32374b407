#pragma once

/// The rules of a blue-green deployment, once, over any deployment and router: the interface
/// `any_controller` that the command line holds (one per projection, of different types) and
/// that `controller<Deployment, Router>` implements. The guarded operations are written here,
/// not per type: they are not on the event path, and one copy serves every projection.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <projectionist/deploy/deployment.hpp>
#include <projectionist/deploy/router.hpp>
#include <projectionist/deploy/verify.hpp>
#include <projectionist/detail/interface.hpp>
#include <projectionist/detail/text.hpp>
#include <projectionist/error.hpp>
#include <projectionist/runner/options.hpp>
#include <projectionist/runner/reconnect.hpp>
#include <projectionist/runner/status.hpp>
#include <projectionist/storage/catalog.hpp>
#include <projectionist/storage/records.hpp>

namespace projectionist {

/// `controller(deployment, projectionist::no_router)`: a projection without a query router.
struct no_router_t {
    explicit constexpr no_router_t() = default;
};
inline constexpr no_router_t no_router{};

/// How a controller waits and words its refusals.
struct controller_options {
    /// `reset` and `remove`: how long to wait for queries in flight on the version.
    std::chrono::milliseconds drain_timeout{30000};
    /// The program that runs the steps, for the hints in refusals: "app" gives "(app switch
    /// tickets --to <version>, or app rollback tickets)"; empty names the controller's operations.
    std::string program{};
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

/// What one `verify` asks beyond the registered settings: columns allowed to differ, and keys
/// whose rows are compared field by field (as text, parsed as the table's key type).
struct verify_request {
    std::vector<std::string> expected_changes{};
    std::vector<std::string> keys{};
    /// The table to compare, by its name in B or its suffix ("customer_orders_v2_transactions",
    /// "transactions"), with A's table of the same suffix; empty: the main tables.
    std::string table{};
};

/// One version as `any_controller::status()` shows it.
struct version_status {
    std::string_view name;
    runner_status status;
    /// With manual kick-off the version waits for init; otherwise the first catch-up creates it.
    bool manual_kickoff = false;
    /// The queries the router sends it: "primary", "primary 90%", "candidate 10%", "serving"
    /// (no router, the catalog says it serves), or empty.
    std::string traffic;
};

/// What `rollback()` did.
struct rollback_result {
    /// true: the candidate's rollout was cancelled; false: the previous primary was put back.
    bool cancelled_candidate = false;
    /// The cancelled candidate, or the version put back.
    std::string version;
    /// The primary before the rollback.
    std::string primary;
};

namespace detail {

/// A request that cannot be made as given (a malformed key, unrelated key types): the command
/// line adds the command's usage; exit status 2.
class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A name that is none of the known ones (projection, version, column): the message lists the
/// valid ones; exit status 2 on the command line.
class name_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// The share of queries the router sends `v`, as a status column: "primary", "primary 90%",
/// "candidate 10%" (+ " (+ predicate)" with `predicate_note`), or empty.
inline std::string traffic_of(const router_status& routing, std::string_view v, bool predicate_note) {
    if (routing.primary == v)
        return routing.candidate
                   ? fmt::format("primary {}", router_status::format_share(routing_buckets - routing.basis_points))
                   : std::string("primary");
    if (routing.candidate == v)
        return fmt::format("candidate {}{}", router_status::format_share(routing.basis_points),
                           predicate_note && routing.predicate ? " (+ predicate)" : "");
    return {};
}

}  // namespace detail

/// A blue-green controller seen through an interface: what the command line holds per
/// projection, and what an application passes around when it drives several projections of
/// different types. Build one with `controller<Deployment, Router>`; see deploy/controller.hpp.
///
/// The guarded operations (non-virtual) keep the rules of the deployment whoever calls them:
/// traffic moves only to a version that has caught up; a version the router still sends queries
/// to is never reset or deleted, and queries in flight on it are waited for first; deleted
/// versions are skipped when catching up (catching up would re-create one with automatic
/// kick-off). The virtual members underneath reach the deployment and the router unguarded.
class any_controller : public detail::interface {
public:
    // ---- what it controls ----------------------------------------------------------------------

    /// The projection's name without a version, e.g. "tickets".
    [[nodiscard]] virtual std::string_view base_name() const noexcept = 0;
    /// The versioned names, in the deployment's order.
    [[nodiscard]] virtual const std::vector<std::string_view>& versions() const noexcept = 0;
    [[nodiscard]] virtual bool has_router() const noexcept = 0;
    /// Whether the router knows the version (false without a router).
    [[nodiscard]] virtual bool routes(std::string_view version) const noexcept = 0;
    /// Whether `name` is one of the versions.
    [[nodiscard]] bool contains(std::string_view name) const noexcept {
        for (auto v : versions())
            if (v == name) return true;
        return false;
    }

    [[nodiscard]] const controller_options& options() const noexcept { return options_; }
    void set_options(controller_options options) { options_ = std::move(options); }

    // ---- reading -------------------------------------------------------------------------------

    /// Takes in what other processes changed: every version's catalog row, and the router.
    virtual void refresh() = 0;
    /// One version's catalog row and, with `checkpoint`, its committed checkpoint (which another
    /// process may have moved: the status then shows the true position); returns its state.
    virtual projection_state refresh(std::string_view version, bool checkpoint = true) = 0;
    /// The runner's status snapshot; may be called from another thread while an operation runs.
    [[nodiscard]] virtual runner_status status_of(std::string_view version) = 0;
    [[nodiscard]] virtual std::optional<router_status> routing() const = 0;
    /// The version's table names, from its declarations.
    [[nodiscard]] virtual std::vector<std::string> tables_of(std::string_view version) = 0;
    /// The events the version skipped under skip_to_dead_letter, oldest first, with their reasons
    /// (none for a version that stops on an error).
    [[nodiscard]] virtual std::vector<dead_letter> dead_letters_of(std::string_view version) = 0;
    /// Whether the version has manual kick-off (else the first catch-up initializes it).
    [[nodiscard]] virtual bool manual_kickoff(std::string_view version) = 0;
    /// After `cause` (thrown by a catch-up of `version`): if the connection to the database was
    /// lost, reconnects the version's runner with its bounded backoff (runner::recover), calling
    /// `report` before each attempt and giving up when `should_stop()` says so. Returns whether
    /// the version goes on; if not, its status holds why it stopped.
    virtual bool recover(std::string_view version, const error& cause,
                         const std::function<void(const detail::reconnect_attempt&)>& report,
                         const std::function<bool()>& should_stop) = 0;

    /// Every version's state, position, lag, and the traffic the router sends it; refreshed first.
    [[nodiscard]] std::vector<version_status> status() {
        refresh();
        const auto r = routing();
        std::vector<version_status> out;
        for (auto v : versions()) {
            version_status s{v, status_of(v), manual_kickoff(v), {}};
            if (r)
                s.traffic = detail::traffic_of(*r, v, true);
            else if (s.status.catalog_state == projection_state::serving)
                s.traffic = "serving";
            out.push_back(std::move(s));
        }
        return out;
    }

    // ---- the life cycle, guarded ---------------------------------------------------------------

    /// Creates the version's tables and catalog row. The result converts to false if it was
    /// initialized already (init then only creates a table a newer build declares, if any), and
    /// says when it re-created a deleted version.
    init_result init(std::string_view version) {
        refresh(version);
        return init_version(version);
    }

    /// Replays the version's history up to the head as of the call; it must be initialized.
    /// `options` overrides the memory budget and backfill mode for this call only.
    std::uint64_t backfill(std::string_view version, const backfill_options& options = {}) {
        return backfill_version(version, options, {});
    }

    /// The same, ending between two batches once `should_stop()` says so (asked before each
    /// batch, on this thread): what was applied is committed (in bulk mode, written first), the
    /// version stays backfilling, and the next backfill goes on from there. See
    /// deployment::backfill(name, options, should_stop).
    std::uint64_t backfill(std::string_view version, const backfill_options& options,
                           const std::function<bool()>& should_stop) {
        return backfill_version(version, options, should_stop);
    }

    /// Applies the events up to the head to one version; `std::nullopt` (and nothing done) for a
    /// deleted version. A dormant version (manual kick-off) stays dormant. With `checkpoint`, the
    /// committed checkpoint is re-read first (another process may have moved it).
    std::optional<std::uint64_t> catch_up(std::string_view version, bool checkpoint = true) {
        return catch_up(version, checkpoint, {});
    }

    /// The same, ending between two batches once `should_stop()` says so (asked before each
    /// batch, on this thread; an empty function never stops): what was applied is committed, and
    /// the next catch-up goes on from there. See deployment::catch_up(name, should_stop).
    std::optional<std::uint64_t> catch_up(std::string_view version, bool checkpoint,
                                          const std::function<bool()>& should_stop) {
        if (refresh(version, checkpoint) == projection_state::deleted) return std::nullopt;
        return catch_up_version(version, should_stop);
    }

    /// Catches up every version but the deleted ones; returns the events applied.
    std::uint64_t catch_up() {
        std::uint64_t applied = 0;
        for (auto v : versions()) applied += catch_up(v).value_or(0);
        return applied;
    }

    /// Follows the log with every version but the deleted ones until `stop` is requested, which
    /// ends a catch-up between two batches; a version that fails stops alone (its status holds
    /// the error).
    void run(std::stop_token stop, std::chrono::milliseconds poll_interval = std::chrono::milliseconds(100)) {
        std::mutex m;
        std::condition_variable_any cv;
        const std::function<bool()> stopping = [&stop] { return stop.stop_requested(); };
        while (!stop.stop_requested()) {
            std::uint64_t applied = 0;
            for (auto v : versions()) {
                if (stop.stop_requested()) break;
                try {
                    applied += catch_up(v, false, stopping).value_or(0);
                } catch (const error& e) {
                    // A lost connection is reconnected with a bounded backoff; otherwise stopped:
                    // status_of(v) holds the reason, and the other versions go on.
                    recover(
                        v, e, [](const detail::reconnect_attempt&) {}, [&] { return stop.stop_requested(); });
                }
            }
            if (applied == 0) {
                std::unique_lock lock(m);
                cv.wait_for(lock, stop, poll_interval, [] { return false; });
            }
        }
    }

    /// Sends every query to `version`: the deployment records it serving (the others that served
    /// retire, following the log for a rollback), then the router switches. Refused, before any
    /// traffic moves, for a version that has not caught up or that the router does not route to.
    void switch_to(std::string_view version) {
        require_routed(version);
        refresh();
        serve_version(version);
        if (has_router()) router_switch_to(version);
    }

    /// Sends `percent` (0 to 100) of the routing keys to `version`, the router's candidate; the
    /// primary keeps the rest. The version must have caught up; a router is needed.
    void rollout(std::string_view version, unsigned percent) {
        if (percent > 100)
            throw error(fmt::format("projectionist: cannot roll out {}: a share is 0 to 100 percent, not {}", version,
                                    percent));
        rollout_basis_points(version, percent * 100);
    }

    /// `rollout` in basis points (0 to 10000; 1 basis point = 0.01%). 10000 is `switch_to`.
    void rollout_basis_points(std::string_view version, unsigned basis_points) {
        if (basis_points >= routing_buckets) return switch_to(version);
        if (!has_router())
            throw error(
                fmt::format("projectionist: cannot send a share of {}'s queries to {}: no query router is "
                            "registered for {} (give the controller a router: command_line::add(deployment, "
                            "router))",
                            base_name(), version, base_name()));
        require_routed(version);
        refresh();
        const projection_state s = refresh(version);
        if (!detail::caught_up_or_later(s))
            throw state_error(fmt::format("projectionist: cannot roll out {}: it is {}; {}", version, to_string(s),
                                          detail::what_to_run_first(version, s)));
        router_rollout(version, basis_points);
    }

    /// Cancels the candidate's rollout, or puts the previous primary back (recording it serving
    /// again). Refused without a router, when the previous primary has not caught up (it was
    /// deleted or reset since), and when there is nothing to roll back.
    rollback_result rollback() {
        if (!has_router())
            throw error(fmt::format(
                "projectionist: cannot roll back {}: no query router is registered for it; {}", base_name(),
                options_.program.empty()
                    ? std::string("switch_to another version instead")
                    : fmt::format("run '{} switch {} --to <version>' instead", options_.program, base_name())));
        refresh();
        const router_status before = *routing();
        if (before.candidate) {
            router_rollback();
            return {true, *before.candidate, before.primary};
        }
        if (before.previous) {
            const std::string& back = *before.previous;
            const projection_state s = refresh(back);
            if (!detail::caught_up_or_later(s))
                throw state_error(fmt::format("projectionist: cannot roll {} back to {}: it is {}; {}", base_name(),
                                              back, to_string(s), detail::what_to_run_first(back, s)));
            serve_version(back);
            router_rollback();
            return {false, back, before.primary};
        }
        router_rollback();  // throws state_error: nothing to roll back
        return {};
    }

    /// Lets the version's emitted events through (and stops every other version's); it must have
    /// caught up.
    void make_live(std::string_view version) { make_live_version(version); }

    /// Empties the version's tables and checkpoint so that it replays from the start. Refused
    /// while the router sends it queries or the catalog says it serves; waits for its queries in
    /// flight first.
    void reset(std::string_view version) {
        require_no_traffic(version, "reset");
        drain(version, "reset");
        reset_version(version);
    }

    /// Drops the version's own tables, checkpoint and catalog row, with the same refusals and
    /// wait as `reset`. Returns the names of the tables dropped.
    std::vector<std::string> remove(std::string_view version, remove_options options = {}) {
        require_no_traffic(version, "delete");
        drain(version, "delete");
        auto tables = tables_of(version);
        remove_version(version, options);
        refresh();  // the router takes in its saved setting, which forgot the version
        return tables;
    }

    /// Switches the router's predicate registered as `name` on (persisted, for every process),
    /// or, with `std::nullopt`, off. Refused without a router, and for a name not registered.
    void set_predicate(std::optional<std::string_view> name) {
        if (!has_router())
            throw error(
                fmt::format("projectionist: cannot switch a predicate of {}: no query router is registered "
                            "for it (command_line::add(deployment, router))",
                            base_name()));
        refresh();
        router_set_predicate(name);
    }

    /// Keeps the version until `date` ("YYYY-MM-DD"; "" clears it): delete refuses before that
    /// day unless forced. Moving a recorded date earlier, or clearing it, is refused (state_error,
    /// nothing changed) unless `force`; a later day is always accepted (deployment::retain_until).
    void retain_until(std::string_view version, std::string_view date, bool force = false) {
        require_version(version);
        retain_version(version, date, force);
    }

    // ---- verification --------------------------------------------------------------------------

    /// Checks a request's columns and keys against the two versions' main tables (throws
    /// `detail::name_error` or `detail::usage_error`). Touches no storage.
    virtual void validate(std::string_view a, std::string_view b, const verify_request& request) = 0;

    /// A structural diff of the two versions' main tables (their first table declaration), plus a
    /// spot check of the request's keys. Refused for a version that is not initialized.
    [[nodiscard]] verify::report verify(std::string_view a, std::string_view b, const verify_request& request = {}) {
        validate(a, b, request);
        for (auto v : {a, b}) {
            const projection_state s = refresh(v);
            if (s == projection_state::declared || s == projection_state::deleted)
                throw state_error(fmt::format("projectionist: cannot verify {}: it is {}; {}", v, to_string(s),
                                              detail::what_to_run_first(v, s)));
        }
        return compare(a, b, request);
    }

    /// The version that serves `version`'s projection, other than it: what to verify against.
    [[nodiscard]] std::optional<std::string> serving_peer(std::string_view version) {
        if (auto r = routing(); r && r->primary != version) return r->primary;
        for (auto other : versions())
            if (other != version && status_of(other).catalog_state == projection_state::serving)
                return std::string(other);
        return std::nullopt;
    }

protected:
    // ---- the deployment and the router, unguarded ----------------------------------------------
    virtual init_result init_version(std::string_view version) = 0;
    virtual std::uint64_t backfill_version(std::string_view version, const backfill_options& options,
                                           const std::function<bool()>& should_stop) = 0;
    virtual std::uint64_t catch_up_version(std::string_view version, const std::function<bool()>& should_stop) = 0;
    virtual void make_live_version(std::string_view version) = 0;
    virtual void serve_version(std::string_view version) = 0;
    virtual void reset_version(std::string_view version) = 0;
    virtual void remove_version(std::string_view version, const remove_options& options) = 0;
    virtual void retain_version(std::string_view version, std::string_view date, bool force) = 0;
    virtual void router_switch_to(std::string_view version) = 0;
    virtual void router_rollout(std::string_view version, unsigned basis_points) = 0;
    virtual void router_rollback() = 0;
    virtual bool router_wait_for_drain(std::string_view version, std::chrono::milliseconds timeout) = 0;
    virtual void router_set_predicate(std::optional<std::string_view> name) = 0;
    [[nodiscard]] virtual verify::report compare(std::string_view a, std::string_view b,
                                                 const verify_request& request) = 0;

private:
    void require_version(std::string_view version) const {
        if (!contains(version))
            throw error(fmt::format("projectionist: '{}' is not a version of {}; the versions are: {}",
                                    detail::shown(version), base_name(), detail::join(versions())));
    }

    void require_routed(std::string_view version) const {
        require_version(version);
        if (has_router() && !routes(version)) {
            const auto r = routing();
            throw error(
                fmt::format("projectionist: the router of {} does not route to {}; the versions it routes "
                            "to are: {}",
                            base_name(), version, r ? detail::join(r->versions) : std::string()));
        }
    }

    /// Refuses `what` for a version the router still sends queries to.
    void require_no_traffic(std::string_view version, std::string_view what) {
        require_version(version);
        refresh();
        const auto r = routing();
        if (!r) return;
        std::string role;
        if (r->primary == version)
            role = r->candidate ? fmt::format("the primary, for {} of them",
                                              router_status::format_share(routing_buckets - r->basis_points))
                                : "the primary";
        else if (r->candidate == version)
            role = fmt::format("the candidate, for {} of them", router_status::format_share(r->basis_points));
        if (role.empty()) return;
        const std::string how = options_.program.empty()
                                    ? std::string("switch_to another version, or rollback")
                                    : fmt::format("{} switch {} --to <version>, or {} rollback {}", options_.program,
                                                  base_name(), options_.program, base_name());
        throw state_error(
            fmt::format("projectionist: cannot {} {}: the router sends it queries ({}); move them to "
                        "another version first ({})",
                        what, version, role, how));
    }

    /// Waits for the queries in flight on the version (those of this process's router).
    void drain(std::string_view version, std::string_view what) {
        if (!router_wait_for_drain(version, options_.drain_timeout))
            throw state_error(fmt::format(
                "projectionist: cannot {} {}: queries were still running on it after {}; try again", what, version,
                detail::elapsed_text(static_cast<double>(options_.drain_timeout.count()) / 1000.0)));
    }

    controller_options options_{};
};

}  // namespace projectionist
