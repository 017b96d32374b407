#pragma once

/// `rollout<Router>`: one projection's rollout plan, followed by every process that serves its
/// queries. See <projectionist/deploy/rollout/rollout.hpp> for the rules.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <projectionist/deploy/controller/any_controller.hpp>
#include <projectionist/deploy/rollout/any_rollout.hpp>
#include <projectionist/deploy/rollout/compare.hpp>
#include <projectionist/deploy/rollout/epochs.hpp>
#include <projectionist/deploy/rollout/gates.hpp>
#include <projectionist/deploy/rollout/plan.hpp>
#include <projectionist/deploy/rollout/record.hpp>
#include <projectionist/deploy/router.hpp>
#include <projectionist/deploy/verify/verdict.hpp>
#include <projectionist/detail/text.hpp>
#include <projectionist/error.hpp>

namespace projectionist {

/// Tuning of a rollout object.
struct rollout_options {
    /// `run`: how often the plan is judged (and the log followed). A step lasts at least its
    /// dwell time, and a failing gate is acted on within one interval.
    std::chrono::milliseconds interval{1000};
    /// `run`: how often, between judgments, the router's state is read again, so that a roll-back
    /// decided by another process reaches this process's queries within this time (at most
    /// `interval`). A shadow read that differs here brings this process's next judgment forward
    /// to within this time too.
    std::chrono::milliseconds watch{100};
    /// How many discrepant keys (with both answers) a process reports per step, and a roll-back records.
    std::size_t sample_size = 10;
};

/// Returns why the candidate is not good enough, or nothing when it is; called at every judgment
/// of a running step. An exception counts as a failure, with its message.
using rollout_check = std::function<std::optional<std::string>(const rollout_record&)>;

namespace detail::rollout {

[[nodiscard]] inline std::string random_id() {
    std::random_device device;
    std::mt19937_64 bits((static_cast<std::uint64_t>(device()) << 32) ^ device() ^
                         static_cast<std::uint64_t>(now_ms()));
    return fmt::format("{:016x}", bits());
}

}  // namespace detail::rollout

/// The rollout of one projection, over its blue-green controller, its query router and the
/// storage that keeps the router's state (where the plan is kept too). Every process that serves
/// the projection's queries has one, and calls `run` on the thread that follows the log (or
/// `tick` from its own loop, on that thread), and sends its queries through `shadow_query`.
template <class Router>
class rollout final : public any_rollout {
public:
    /// Held by reference: the controller (of the same projection), the router and the settings
    /// store, which must outlive the rollout.
    template <class Settings>
    rollout(any_controller& control, Router& router, Settings& settings, rollout_options options = {})
        : control_(control),
          router_(router),
          settings_(settings),
          options_(options),
          observer_(detail::rollout::random_id()) {
        if (control.base_name() != Router::projection_name)
            throw error(
                fmt::format("projectionist: rollout(controller, router, settings): the controller is {}'s "
                            "and the router {}'s; give both of one projection",
                            control.base_name(), Router::projection_name));
        // The reads this process serves before its first judgment are compared as the plan says.
        if (auto r = load()) set_expected_changes(r->plan.expected_changes);
    }

    [[nodiscard]] std::string_view projection() const noexcept override { return Router::projection_name; }
    [[nodiscard]] router_status routing() const override { return router_.status(); }
    [[nodiscard]] std::vector<std::string> predicates() const override {
        std::lock_guard lock(mutex_);
        std::vector<std::string> out;
        for (const auto& entry : predicates_) out.push_back(entry.first);
        return out;
    }
    /// This process's name among the observers of a plan.
    [[nodiscard]] const std::string& observer() const noexcept { return observer_; }

    /// Registers the router predicate a plan's first step may name ("internal,1,10,50,100"). In
    /// every process that serves queries: predicates are code.
    template <class Predicate>
    void add_predicate(std::string name, Predicate predicate) {
        static_assert(std::is_invocable_r_v<bool, Predicate&, std::string_view>,
                      "projectionist: rollout::add_predicate: the predicate must be callable as "
                      "bool(std::string_view routing_key)");
        std::lock_guard lock(mutex_);
        predicates_[std::move(name)] = std::function<bool(std::string_view)>(std::move(predicate));
    }

    /// A check of the user's own, judged with the other gates at every step.
    void set_check(rollout_check check) {
        std::lock_guard lock(mutex_);
        check_ = std::move(check);
    }

    // ---- queries ---------------------------------------------------------------------------------

    /// `router.query`: no shadow read.
    template <class F>
    decltype(auto) query(std::string_view key, F&& fn) const {
        return router_.query(key, std::forward<F>(fn));
    }

    /// `router.shadow_query`, comparing the answers but for the plan's expected changes: what the
    /// discrepancy gate counts. Sampled at the plan's share. A read that straddles a change of
    /// step is counted at neither (see deploy/rollout/epochs.hpp).
    template <class F>
    auto shadow_query(std::string_view key, F&& fn) const {
        const auto in = epochs_.enter();
        return router_.shadow_query(key, std::forward<F>(fn), [this](const auto& primary, const auto& candidate) {
            // Read at comparison time, after the router's snapshot: a
            // candidate seen there comes with its plan's columns.
            const auto columns = expected_changes();
            const bool same = detail::rollout::equal_ignoring(primary, candidate, *columns);
            if (!same && !judge_soon_.exchange(true)) wake_.notify_one();
            return same;
        });
    }

    // ---- the plan ----------------------------------------------------------------------------------

    /// Saves a new plan, pending: the next `tick` (here or in any process) checks the structural
    /// diff and applies the first step. Refused (`state_error`) while another plan is pending or
    /// running, and (`error`) for a plan that does not fit the router.
    rollout_record start(rollout_plan plan) override {
        std::lock_guard lock(mutex_);
        router_.refresh();
        const router_status routing = router_.status();
        check_rollout_plan(plan, routing);
        const std::string key = detail::rollout::record_key(projection());
        const auto saved = settings_.find(key);
        if (auto current = saved ? std::optional(detail::rollout::parse_record(*saved, key)) : std::nullopt;
            current && active(current->state))
            throw state_error(fmt::format("projectionist: a rollout of {} to {} is {} ({}); abort it first",
                                          projection(), current->plan.candidate, to_string(current->state),
                                          current->step_text()));
        if (routing.candidate)
            throw state_error(
                fmt::format("projectionist: cannot start a rollout of {}: {} is being rolled out by "
                            "hand already ({}); roll it back first",
                            projection(), *routing.candidate, router_status::format_share(routing.basis_points)));
        const std::string& predicate = plan.steps.front().predicate;
        if (!predicate.empty() && predicates_.find(predicate) == predicates_.end())
            throw error(
                fmt::format("projectionist: rollout of {} to {}: no predicate named '{}' is registered; "
                            "register it with add_predicate(\"{}\", ...) in every process that serves "
                            "queries",
                            projection(), plan.candidate, predicate, predicate));
        const projection_state s = control_.refresh(plan.candidate);
        if (!detail::caught_up_or_later(s))
            throw state_error(fmt::format("projectionist: cannot roll out {}: it is {}; {}", plan.candidate,
                                          to_string(s), detail::what_to_run_first(plan.candidate, s)));
        rollout_record r;
        r.projection = std::string(projection());
        r.id = detail::rollout::random_id();
        r.primary = routing.primary;
        r.plan = std::move(plan);
        r.step_started_ms = detail::rollout::now_ms();
        if (!settings_.replace(key, saved, detail::rollout::format_record(r)))
            throw state_error(
                fmt::format("projectionist: cannot start a rollout of {}: another process changed its plan meanwhile; "
                            "see `rollout status` and try again",
                            projection()));
        publish_snapshot();
        return r;
    }

    /// One judgment: a pending plan checks the structural diff and applies its first step; a
    /// running one reports this process's shadow reads and judges the gates (roll back, next step,
    /// or wait). Call it on the thread that drives the controller's runners (`run` does).
    void tick() override {
        std::lock_guard lock(mutex_);
        judge();
        publish_snapshot();
    }

    /// Follows the log with every version of the controller and judges the plan, every
    /// `rollout_options::interval`, until `stop` is requested. A version that fails stops alone
    /// (its status holds the error); an error of the plan is kept in `last_error()`.
    void run(std::stop_token stop) {
        using clock = std::chrono::steady_clock;
        auto last_judgment = clock::now() - options_.watch;
        auto next_judgment = clock::now();
        while (!stop.stop_requested()) {
            if (judge_soon_.exchange(false)) next_judgment = std::min(next_judgment, last_judgment + options_.watch);
            const auto now = clock::now();
            if (now >= next_judgment) {
                last_judgment = now;
                for (auto v : control_.versions()) {
                    try {
                        (void)control_.catch_up(v, false);
                    } catch (const error&) {
                        // stopped: the controller's status_of(v) holds the reason; the others go on
                    }
                }
                try {
                    tick();
                    set_last_error({});
                } catch (const std::exception& e) {
                    set_last_error(e.what());
                }
                next_judgment = clock::now() + options_.interval;
            } else {
                try {
                    router_.refresh();  // another process's roll-back reaches this process's queries
                } catch (const std::exception& e) {
                    set_last_error(e.what());
                }
            }
            const auto wait = std::min<clock::duration>(options_.watch, next_judgment - clock::now());
            std::unique_lock lock(wake_mutex_);
            wake_.wait_for(lock, stop, std::max<clock::duration>(wait, clock::duration::zero()),
                           [this] { return judge_soon_.load(); });
        }
    }

    /// The error of the last judgment in `run`, or empty.
    [[nodiscard]] std::string last_error() const {
        std::lock_guard lock(error_mutex_);
        return last_error_;
    }

    /// Sends every query back to the primary and stops the plan `aborted` with `reason`. Refused
    /// (`state_error`) when no plan is pending or running.
    rollout_record abort(std::string reason = "aborted by hand") override {
        std::lock_guard lock(mutex_);
        router_.refresh();
        auto r = load();
        if (!r || !active(r->state))
            throw state_error(
                fmt::format("projectionist: no rollout of {} is pending or running{}", projection(),
                            r ? fmt::format(" (the last one, of {}, is {})", r->plan.candidate, to_string(r->state))
                              : std::string()));
        roll_back(*r, rollout_state::aborted, {}, std::move(reason), {});
        publish_snapshot();
        return *r;
    }

    /// The persisted plan, read afresh, or nothing.
    [[nodiscard]] std::optional<rollout_record> record() const { return load(); }

    /// The snapshot taken at this process's last judgment (or start, or abort), without reading
    /// the storage: what metrics read at scrape time. Empty before the first one.
    [[nodiscard]] rollout_snapshot last_snapshot() const {
        std::lock_guard lock(snapshot_mutex_);
        return last_snapshot_;
    }

    [[nodiscard]] rollout_snapshot snapshot() const override {
        rollout_snapshot s;
        s.record = load();
        if (s.record) {
            const auto list = observations(*s.record);
            s.readings = sum_observations(*s.record, list, options_.sample_size);
            for (const auto& o : list) s.observers += o.plan_id == s.record->id ? 1 : 0;
        }
        return s;
    }

private:
    void judge() {
        std::lock_guard lock(mutex_);
        // The plan's expected changes first, then the routing: a query that sees the candidate
        // compares with the plan's columns, never with those of before the plan.
        auto r = load();
        const bool new_columns = r && *expected_changes() != r->plan.expected_changes;
        if (r) set_expected_changes(r->plan.expected_changes);
        router_.refresh();
        if (!r) return;
        follow(*r, new_columns);
        if (r->state == rollout_state::pending) return begin(*r);
        if (r->state != rollout_state::running) return;
        if (!follow_share(*r)) return;
        publish_observation(*r);
        rollout_readings in = sum_observations(*r, observations(*r), options_.sample_size);
        if (r->plan.max_lag) {
            control_.refresh(r->plan.candidate);
            in.lag = control_.status_of(r->plan.candidate).lag;
        }
        if (check_) {
            try {
                in.check_failure = check_(*r);
            } catch (const std::exception& e) {
                in.check_failure = fmt::format("it threw: {}", e.what());
            } catch (...) {
                in.check_failure = std::string("it threw an exception that is not a std::exception");
            }
        }
        in.now_ms = detail::rollout::now_ms();
        const rollout_decision d = decide_rollout(*r, in);
        if (d.what == rollout_decision::roll_back)
            roll_back(*r, rollout_state::rolled_back, d.gate, d.reason, std::move(in.sample));
        else if (d.what == rollout_decision::advance)
            advance(*r);
    }

    /// What this process counts at the current step: the router's counters when it began here.
    struct step_baseline {
        std::string plan_id;
        std::size_t step = 0;
        shadow_counters at_start{};
        std::uint64_t last_sequence = 0;  ///< the last discrepancy taken into the sample
        std::vector<rollout_discrepancy> sample;
        std::optional<rollout_observation> published;
    };

    // ---- this process follows the plan -----------------------------------------------------------

    /// Applies what the plan asks of every process: the sampling share, the expected changes of the
    /// comparison, the predicate of the first step; restarts the counts when the step changed.
    void follow(const rollout_record& r) { follow(r, *expected_changes() != r.plan.expected_changes); }
    void follow(const rollout_record& r, bool new_columns) {
        set_expected_changes(r.plan.expected_changes);
        const bool running = active(r.state);
        if (running) router_.set_shadow_sampling(r.plan.shadow_sampling);
        const rollout_step& first = r.plan.steps.front();
        if (running && !first.predicate.empty()) {
            auto it = predicates_.find(first.predicate);
            if (it == predicates_.end())
                throw error(
                    fmt::format("projectionist: the rollout of {} names the predicate '{}', which this "
                                "process does not have; register it with add_predicate(\"{}\", ...)",
                                projection(), first.predicate, first.predicate));
            if (applied_predicate_ != first.predicate) {
                router_.prefer_candidate_when(it->second);
                applied_predicate_ = first.predicate;
            }
        } else {
            drop_predicate();
        }
        if (new_columns || baseline_.plan_id != r.id || baseline_.step != r.step) {
            epochs_.advance();  // the reads begun under the old step or columns end before the count starts
            const shadow_counters now = router_.shadow_totals();
            baseline_ = step_baseline{r.id, r.step, now, now.discrepancies, {}, {}};
        }
    }

    void publish_observation(const rollout_record& r) {
        const shadow_counters now = router_.shadow_totals();
        if (baseline_.sample.size() < options_.sample_size)
            for (const auto& d : router_.discrepancies()) {
                if (d.sequence <= baseline_.last_sequence) continue;
                baseline_.last_sequence = d.sequence;
                if (baseline_.sample.size() < options_.sample_size)
                    baseline_.sample.push_back({d.routing_key, d.primary_value, d.candidate_value, d.error});
            }
        rollout_observation o{r.id, r.step, now.compared - baseline_.at_start.compared,
                              now.discrepancies - baseline_.at_start.discrepancies, baseline_.sample};
        if (o.compared == 0 && o.discrepancies == 0) return;  // nothing to tell
        if (baseline_.published && baseline_.published->compared == o.compared &&
            baseline_.published->discrepancies == o.discrepancies && baseline_.published->step == o.step &&
            baseline_.published->sample.size() == o.sample.size())
            return;
        register_observer();
        settings_.save(detail::rollout::observer_key(projection(), observer_), detail::rollout::format_observation(o));
        baseline_.published = std::move(o);
    }

    /// Adds this process to the plan's observers, as a compare-and-set: two processes joining at
    /// once are both listed.
    void register_observer() {
        const std::string key = detail::rollout::observers_key(projection());
        for (;;) {
            const auto saved = settings_.find(key);
            auto ids = saved ? detail::rollout::parse_observers(*saved, key) : std::vector<std::string>{};
            if (std::find(ids.begin(), ids.end(), observer_) != ids.end()) return;
            ids.push_back(observer_);
            if (settings_.replace(key, saved, detail::rollout::format_observers(ids))) return;
        }
    }

    [[nodiscard]] std::vector<std::string> observer_ids() const {
        const std::string key = detail::rollout::observers_key(projection());
        if (auto saved = settings_.find(key)) return detail::rollout::parse_observers(*saved, key);
        return {};
    }

    [[nodiscard]] std::vector<rollout_observation> observations(const rollout_record& r) const {
        std::vector<rollout_observation> out;
        for (const auto& id : observer_ids()) {
            const std::string key = detail::rollout::observer_key(projection(), id);
            if (auto saved = settings_.find(key)) {
                auto o = detail::rollout::parse_observation(*saved, key);
                if (o.plan_id == r.id) out.push_back(std::move(o));
            }
        }
        return out;
    }

    // ---- decisions ---------------------------------------------------------------------------------

    /// A pending plan: the structural diff with the expected changes, then the first step.
    void begin(rollout_record& r) {
        std::string failure;
        try {
            // Both versions at the head first: a diff of versions at different positions would
            // count the events between them as differences.
            (void)control_.catch_up(r.primary);
            (void)control_.catch_up(r.plan.candidate);
            const verify::report report =
                control_.verify(r.primary, r.plan.candidate, verify_request{r.plan.expected_changes, {}});
            if (!verify::passed(report)) failure = detail::join(verify::failures(report), "; ");
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (!failure.empty())
            return roll_back(r, rollout_state::rolled_back, std::string(rollout_gates::structural_diff),
                             fmt::format("{} against {}: {}", r.plan.candidate, r.primary, failure), {});
        enter_step(r, 0);
    }

    void advance(rollout_record& r) {
        if (r.step + 1 < r.plan.steps.size()) return enter_step(r, r.step + 1);
        if (!still_current(r)) return;  // another process decided since this one read the plan
        const std::string primary = r.primary;
        bool switched = false;
        bool primary_was_live = false;
        try {
            if (r.plan.steps.back().basis_points >= routing_buckets) {
                (void)control_.refresh(primary);  // another process may have made it live since
                primary_was_live = control_.status_of(primary).live;
                control_.switch_to(r.plan.candidate);
                switched = true;
                if (r.plan.make_live) control_.make_live(r.plan.candidate);
            }
        } catch (const std::exception& e) {
            const std::string reason = fmt::format("completing the rollout failed: {}", e.what());
            if (switched) undo_switch(primary, primary_was_live);
            return roll_back(r, rollout_state::rolled_back, std::string(rollout_gates::step), reason, {});
        }
        r.state = rollout_state::completed;
        r.finished_ms = detail::rollout::now_ms();
        decided(r);
        drop_predicate();
        // Another process stopped the plan (an abort, a failed gate) between this one's last read
        // and its record: the stop holds, so the switch made here is taken back.
        if (switched && r.state != rollout_state::completed) undo_switch(primary, primary_was_live);
    }

    /// Takes back a completion's switch: `primary` serves every query again, and is live again if it
    /// was. When it was not (no version was live), the candidate stays live: the controller has no
    /// way to make a version not live but making another one live.
    void undo_switch(const std::string& primary, bool was_live) {
        control_.switch_to(primary);
        if (was_live && !control_.status_of(primary).live) control_.make_live(primary);
    }

    /// While a step runs, the router sends the step's share to the candidate: it sets the share
    /// again when it differs (a process stopped, or failed, between applying a step's share and
    /// recording the step). Returns false when the share could not be applied: the plan is then
    /// rolled back, as when a step begins.
    bool follow_share(rollout_record& r) {
        const unsigned share = std::min<unsigned>(r.plan.steps[r.step].basis_points, routing_buckets);
        const router_status routing = router_.status();
        if (routing.candidate == r.plan.candidate && routing.basis_points == share) return true;
        try {
            apply_share(r, r.step);
        } catch (const std::exception& e) {
            roll_back(r, rollout_state::rolled_back, std::string(rollout_gates::step),
                      fmt::format("{} could not be applied again: {}", r.step_text(), e.what()), {});
            return false;
        }
        return true;
    }

    void drop_predicate() {
        if (applied_predicate_.empty()) return;
        router_.clear_candidate_preference();
        applied_predicate_.clear();
    }

    /// The router's share for a step of the plan.
    void apply_share(const rollout_record& r, std::size_t step) {
        const unsigned share = r.plan.steps[step].basis_points;
        if (share >= routing_buckets)
            router_.rollout_basis_points(r.plan.candidate, routing_buckets);  // all keys; the primary stays
        else
            control_.rollout_basis_points(r.plan.candidate, share);  // refused unless caught up
    }

    void enter_step(rollout_record& r, std::size_t step) {
        if (!still_current(r)) return;  // another process decided since this one read the plan
        try {
            apply_share(r, step);
        } catch (const std::exception& e) {
            r.step = step;
            return roll_back(r, rollout_state::rolled_back, std::string(rollout_gates::step),
                             fmt::format("{} could not be applied: {}", r.step_text(), e.what()), {});
        }
        r.state = rollout_state::running;
        r.step = step;
        r.step_started_ms = detail::rollout::now_ms();
        decided(r);
        follow(r);
    }

    /// Sends the traffic back to the primary first, then records why. Once the stop is recorded,
    /// the candidate's share is cancelled again: another process may have applied a step between
    /// the first cancel and the record (its step's record then lost to this stop).
    void roll_back(rollout_record& r, rollout_state outcome, std::string gate, std::string reason,
                   std::vector<rollout_discrepancy> keys) {
        router_.cancel_rollout(r.plan.candidate);
        drop_predicate();
        r.state = outcome;
        r.gate = std::move(gate);
        r.reason = std::move(reason);
        r.discrepant = std::move(keys);
        r.finished_ms = detail::rollout::now_ms();
        decided(r);
        if (r.state == rollout_state::rolled_back || r.state == rollout_state::aborted)
            router_.cancel_rollout(r.plan.candidate);
    }

    /// Saves a decision taken on the plan as read (at `r.revision`), as a compare-and-set of the
    /// setting: when another process decided meanwhile, this decision is dropped and this process
    /// follows the saved plan instead (its routing undone or set to the saved step), so two
    /// processes deciding at once never both move the plan. A roll-back or an abort still holds
    /// over a plan that moved meanwhile: it is saved over the newer revision.
    void decided(rollout_record& r) {
        const std::string key = detail::rollout::record_key(projection());
        const bool stopping = r.state == rollout_state::rolled_back || r.state == rollout_state::aborted;
        for (;;) {
            const auto saved = settings_.find(key);
            std::optional<rollout_record> current;
            if (saved) current = detail::rollout::parse_record(*saved, key);
            const bool same_plan = current && current->id == r.id && active(current->state);
            if (same_plan && current->revision != r.revision && stopping) {
                rollout_record outcome = std::move(r);
                r = *current;
                r.state = outcome.state;
                r.gate = std::move(outcome.gate);
                r.reason = std::move(outcome.reason);
                r.discrepant = std::move(outcome.discrepant);
                r.finished_ms = outcome.finished_ms;
            }
            if (!same_plan || current->revision != r.revision) return follow_saved(r, std::move(current));
            rollout_record next = r;
            ++next.revision;
            if (settings_.replace(key, *saved, detail::rollout::format_record(next))) {
                r = std::move(next);
                return;
            }
            // changed between the read and the write: read it again
        }
    }

    /// This process's decision lost to another one: its routing follows the saved plan (the saved
    /// step's share; none for a plan that stopped; a completed plan's switch is left as it is).
    void follow_saved(rollout_record& r, std::optional<rollout_record> current) {
        router_.refresh();  // the deciding process may have changed the routing since this one read it
        if (current && current->state == rollout_state::running)
            apply_share(*current, current->step);
        else if (!current || current->state != rollout_state::completed)
            router_.cancel_rollout(r.plan.candidate);
        if (current) r = std::move(*current);
    }

    /// Whether the saved plan is still the one `r` was read from, at the same revision, and still
    /// moving.
    [[nodiscard]] bool still_current(const rollout_record& r) const {
        const auto current = load();
        return current && current->id == r.id && current->revision == r.revision && active(current->state);
    }

    // ---- persistence -------------------------------------------------------------------------------

    [[nodiscard]] std::optional<rollout_record> load() const {
        const std::string key = detail::rollout::record_key(projection());
        if (auto saved = settings_.find(key)) return detail::rollout::parse_record(*saved, key);
        return std::nullopt;
    }

    [[nodiscard]] std::shared_ptr<const std::vector<std::string>> expected_changes() const {
        std::lock_guard lock(columns_mutex_);
        return expected_changes_;
    }
    void set_expected_changes(const std::vector<std::string>& columns) {
        if (*expected_changes() == columns) return;
        auto fresh = std::make_shared<const std::vector<std::string>>(columns);
        std::lock_guard lock(columns_mutex_);
        expected_changes_.swap(fresh);
    }

    void publish_snapshot() {
        rollout_snapshot s = snapshot();
        std::lock_guard lock(snapshot_mutex_);
        last_snapshot_ = std::move(s);
    }

    void set_last_error(std::string text) {
        std::lock_guard lock(error_mutex_);
        last_error_ = std::move(text);
    }

    any_controller& control_;
    Router& router_;
    detail::routing::settings_ref settings_;
    rollout_options options_;
    std::string observer_;
    mutable std::recursive_mutex mutex_;  // one judgment, start or abort at a time
    std::map<std::string, std::function<bool(std::string_view)>, std::less<>> predicates_;
    std::string applied_predicate_;
    rollout_check check_;
    step_baseline baseline_;
    detail::rollout::query_epochs epochs_;
    mutable std::mutex columns_mutex_;
    std::shared_ptr<const std::vector<std::string>> expected_changes_ =
        std::make_shared<const std::vector<std::string>>();
    mutable std::atomic<bool> judge_soon_{false};  // a shadow read differed: judge without waiting
    mutable std::condition_variable_any wake_;
    std::mutex wake_mutex_;
    mutable std::mutex snapshot_mutex_;
    rollout_snapshot last_snapshot_;
    mutable std::mutex error_mutex_;
    std::string last_error_;
};

template <class Versions, class Settings>
rollout(any_controller&, Versions&, Settings&, rollout_options = {}) -> rollout<Versions>;

}  // namespace projectionist
