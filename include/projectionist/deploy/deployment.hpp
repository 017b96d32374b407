#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>

#include <projectionist/error.hpp>
#include <projectionist/projection/projection.hpp>
#include <projectionist/projection/retention.hpp>
#include <projectionist/runner/runner.hpp>
#include <projectionist/storage/catalog.hpp>

namespace projectionist {

namespace detail {

template <class... Runners>
consteval bool same_projection_distinct_versions() {
    constexpr std::array<std::string_view, sizeof...(Runners)> bases{Runners::projection_type::base_name...};
    constexpr std::array<unsigned, sizeof...(Runners)> versions{Runners::projection_type::version...};
    for (std::size_t i = 0; i < bases.size(); ++i) {
        if (bases[i] != bases[0]) return false;
        for (std::size_t j = i + 1; j < versions.size(); ++j)
            if (versions[i] == versions[j]) return false;
    }
    return true;
}

inline bool serves(projection_state s) noexcept {
    return s == projection_state::serving;
}

/// What a version in state `s` must run before it can do `what`: the second half of an error.
inline std::string what_to_run_first(std::string_view name, projection_state s) {
    switch (s) {
        case projection_state::declared:
        case projection_state::deleted: return fmt::format("run init {} first", name);
        case projection_state::initialized: return fmt::format("run backfill {} first", name);
        case projection_state::backfilling:
            return fmt::format("its backfill has not finished: run backfill {} to completion first", name);
        default: return "switch traffic to another version first";
    }
}

/// Whether retaining a version until `date` ("" for no date) moves its retention date `current`
/// earlier: a delete could then drop it sooner than was promised.
inline bool shortens_retention(std::string_view current, std::string_view date) noexcept {
    return !current.empty() && (date.empty() || date < current);
}

/// Throws `e` again with the text `what`: a storage_error stays one, with its code and whether
/// the connection was lost (alerting reads those); any other error becomes an `error`.
[[noreturn]] inline void rethrow_as(const error& e, const std::string& what) {
    if (const auto* storage = dynamic_cast<const storage_error*>(&e))
        throw storage_error(what, storage->code(), storage->connection_lost());
    throw error(what);
}

/// Thrown by a runner's batch hook to end a deployment's stoppable catch-up or backfill between
/// two batches; caught by deployment::catch_up(name, should_stop) and deployment::backfill(name,
/// options, should_stop), never seen outside them.
struct catch_up_interrupted {};

/// The stop condition of the stoppable catch-up running on this thread, if any.
inline thread_local const std::function<bool()>* catch_up_should_stop = nullptr;

/// The runners' options with a batch hook that ends a stoppable catch-up between two batches
/// once its condition says so; the hook the options had already is called first.
inline runner_options stoppable_between_batches(runner_options options) {
    options.before_batch_begin = [hook = std::move(options.before_batch_begin)] {
        if (hook) hook();
        if (catch_up_should_stop != nullptr && (*catch_up_should_stop)()) throw catch_up_interrupted{};
    };
    return options;
}

}  // namespace detail

/// The versions of one projection, deployed together over the same event store and storage:
/// `tickets<1>` serving while `tickets<2>` is initialized, backfilled, verified, switched to and
/// made live, then `tickets<1>` deleted. Each version keeps its own tables, checkpoint and
/// catalog row; the deployment adds what spans versions: operations by name (for the command
/// line), and the rules of the life cycle
///
///     declared → initialized → backfilling → caught_up → serving → retired → deleted
///
/// with an error that says which state a version is in and what to run first when an operation
/// does not fit (a version cannot serve before it has caught up; a serving version cannot be
/// reset or deleted).
///
///     projectionist::deployment<projectionist::runner<tickets<1>, projectionist::sqlite_storage>,
///                               projectionist::runner<tickets<2>, projectionist::sqlite_storage,
///                                                     projectionist::per_aggregate, projectionist::manual_kickoff>>
///         tickets(store, storage);
///     tickets.init("tickets_v2");
///     tickets.backfill("tickets_v2");
template <class... Runners>
class deployment {
    static_assert(sizeof...(Runners) > 0, "projectionist: deployment<Runners...>: give at least one runner");
    static_assert(detail::same_projection_distinct_versions<Runners...>(),
                  "projectionist: deployment<Runners...>: the runners must run versions of ONE projection (the same "
                  "name), each version once");

public:
    static constexpr std::size_t size = sizeof...(Runners);
    /// The projection's name without a version, e.g. "tickets".
    static constexpr std::string_view base_name =
        boost::mp11::mp_front<boost::mp11::mp_list<typename Runners::projection_type...>>::base_name;
    /// The versioned names, in the order of the runners.
    static constexpr std::array<std::string_view, size> names{name_of<typename Runners::projection_type>...};

    template <class Store, class Storage>
    deployment(Store& store, Storage& storage, runner_options options = {})
        : runners_(std::make_unique<Runners>(store, storage, detail::stoppable_between_batches(options))...) {}

    /// The runner of version `Projection`.
    template <class Projection>
    [[nodiscard]] auto& get() noexcept {
        constexpr std::size_t i =
            boost::mp11::mp_find<boost::mp11::mp_list<typename Runners::projection_type...>, Projection>::value;
        static_assert(i < size, "projectionist: deployment::get<P>(): P is not one of the deployed versions");
        return *std::get<i>(runners_);
    }

    /// Whether `name` is one of the deployed versions.
    [[nodiscard]] static constexpr bool contains(std::string_view name) noexcept {
        for (auto n : names)
            if (n == name) return true;
        return false;
    }

    /// Creates a version's tables and catalog row (ends a manual version's dormancy). A deleted
    /// version is re-created only this way; the result says so (`init_result::recreated`).
    init_result init(std::string_view name) {
        return visit(name, [](auto& r) { return r.init(); });
    }

    /// Replays a version's history up to the head as of the call; `options` overrides the
    /// runners' memory budget and backfill mode for this call only.
    std::uint64_t backfill(std::string_view name, const backfill_options& options = {}) {
        return backfill(name, options, {});
    }

    /// The same, ending between two batches once `should_stop()` says so, like the stoppable
    /// catch-up below (a bulk backfill first writes what it applied): the version stays
    /// backfilling, and the next backfill goes on from there. Returns the events applied.
    std::uint64_t backfill(std::string_view name, const backfill_options& options,
                           const std::function<bool()>& should_stop) {
        return visit(name, [&](auto& r) -> std::uint64_t {
            require_initialized(r, "backfill");
            return until_stopped(r, should_stop, [&] { return r.backfill(options); });
        });
    }

    /// Catches every initialized version up to the head; dormant versions stay dormant.
    std::uint64_t catch_up() {
        std::uint64_t applied = 0;
        for_each([&](auto& r) { applied += r.catch_up(); });
        return applied;
    }

    /// Catches version `name` up to the head like `catch_up()`, but ends between two batches once
    /// `should_stop()` says so (asked on this thread before each batch, through the runners'
    /// runner_options::before_batch_begin; a catch-up in bulk mode first flushes what it
    /// applied): what was applied is committed, and the next catch-up goes on from there.
    /// Returns the events applied.
    std::uint64_t catch_up(std::string_view name, const std::function<bool()>& should_stop) {
        return visit(name, [&](auto& r) { return catch_up_until_stopped(r, should_stop); });
    }

    /// Lets a version's emitted events through, and stops every other version's: downstream
    /// consumers hear from one version of a projection at a time. It must have caught up: a
    /// version still replaying history would emit it again. With a storage that hands emission
    /// over (runner::hands_over_emission), one transaction records the hand-over position and
    /// clears the other versions' live flags, and each source position is emitted once whichever
    /// version lags (runner::make_live); the other versions here then read their new state.
    void make_live(std::string_view name) {
        const std::size_t target = require_caught_up(name, fmt::format("cannot make {} live", name));
        const bool handed_over = visit(name, []<class R>(R& r) {
            if constexpr (R::hands_over_emission) r.make_live();
            return R::hands_over_emission;
        });
        for_each_indexed([&](std::size_t i, auto& r) {
            if (i == target || !r.status().live) return;
            if (handed_over)
                r.refresh();
            else
                r.set_live(false);
        });
        if (!handed_over) visit(name, [](auto& r) { r.make_live(); });
    }

    /// Marks `name` as the version that serves queries and every other serving version retired
    /// (kept, following the log, ready for a rollback). The query router decides per query;
    /// this records the deployment's state.
    ///
    /// With a storage that switches in one write (has_serving_switch: memory, SQLite,
    /// PostgreSQL), it is all or nothing, and it also retires a version that another process
    /// made serve since this one looked. With another storage each version's catalog row is its
    /// own write, so the target is marked first: a failure between the writes (a full disk, a
    /// lost connection) leaves two versions serving, never none, and the same call again retires
    /// the others. The error then says so after its cause (a storage_error stays one; any other
    /// error of the write is thrown as an `error`).
    void serve(std::string_view name) {
        const std::size_t target = require_caught_up(name, fmt::format("{} cannot serve queries", name));
        const bool switched = visit(name, []<class R>(R& r) {
            if constexpr (has_serving_switch<typename R::storage_type>) {
                r.serve_exclusively();
                return true;
            } else {
                r.mark(projection_state::serving);
                return false;
            }
        });
        // The target serves now: a failure below says so after its cause.
        for_each_indexed([&]<class R>(std::size_t i, R& r) {
            if (i == target || (!switched && !detail::serves(r.state()))) return;
            try {
                if (switched)
                    r.refresh();  // retired by the switch, or untouched
                else
                    r.mark(projection_state::retired);
            } catch (const error& e) {
                const auto other = name_of<typename R::projection_type>;
                detail::rethrow_as(e, switched ? fmt::format("{}; {} serves now and the other versions are retired in "
                                                             "the catalog, but this process could not read {} back",
                                                             e.what(), name, other)
                                               : fmt::format("{}; {} serves now, but {} could not be retired: both "
                                                             "serve in the catalog until this switch is made again",
                                                             e.what(), name, other));
            }
        });
    }

    /// Empties a version's tables and checkpoint so that it replays from the start. A serving
    /// version cannot be reset: its readers would see an empty table.
    void reset(std::string_view name) {
        visit_unserved(name, "reset", [](auto& r) { r.reset(); });
    }

    /// Drops a version's own tables and checkpoint, leaving a tombstone in the catalog and
    /// forgetting it in the router's saved setting (runner::remove). Other versions are untouched.
    /// A serving version cannot be deleted, nor one retained until a later day unless forced.
    void remove(std::string_view name, remove_options options = {}) {
        visit_unserved(name, "delete", [&](auto& r) { r.remove(options); });
    }

    /// Keeps version `name` until `date` ("YYYY-MM-DD"; "" clears it): a delete before that day is
    /// refused unless forced. Persisted in the catalog. A later day than the one recorded (or a
    /// first one) is always accepted; an earlier day, or clearing it, is refused (state_error,
    /// nothing changed) unless `force`: a delete could then drop the version sooner than was
    /// promised.
    void retain_until(std::string_view name, std::string_view date, bool force = false) {
        visit(name, [&](auto& r) {
            if (!force && (date.empty() || detail::is_day(date))) {  // a malformed day: the runner says so
                const auto entry = r.session().find_catalog();
                if (entry && entry->state != projection_state::deleted &&
                    detail::shortens_retention(entry->retain_until, date))
                    throw state_error(
                        date.empty()
                            ? fmt::format("projectionist: cannot clear the retention date of {}: it is retained "
                                          "until {}; force it to clear it (--force on the command line)",
                                          name, entry->retain_until)
                            : fmt::format("projectionist: cannot retain {} until {}: it is retained until {}, a "
                                          "later day; give that day or a later one, or force it to move it earlier "
                                          "(--force on the command line)",
                                          name, date, entry->retain_until));
            }
            r.retain_until(date);
        });
    }

    /// One status per version, in the order of the runners.
    [[nodiscard]] std::vector<runner_status> status() const {
        std::vector<runner_status> out;
        std::apply([&](const auto&... r) { (out.push_back(r->status()), ...); }, runners_);
        return out;
    }

    /// The status of version `name`; throws `error` listing the versions if it is none of them.
    [[nodiscard]] runner_status status(std::string_view name) const {
        return boost::mp11::mp_with_index<size>(index_of(name),
                                                [&](auto I) { return std::get<I>(runners_)->status(); });
    }

    /// Follows the log with every version until `stop` is requested, which ends a catch-up
    /// between two batches; each version's failure stops only that version (see its status), and
    /// a lost connection is reconnected with the runner's bounded backoff (runner::recover).
    void run(std::stop_token stop, std::chrono::milliseconds poll_interval = std::chrono::milliseconds(100)) {
        const std::function<bool()> stopping = [&stop] { return stop.stop_requested(); };
        while (!stop.stop_requested()) {
            std::uint64_t applied = 0;
            for_each([&](auto& r) {
                if (stop.stop_requested()) return;
                try {
                    applied += catch_up_until_stopped(r, stopping);
                } catch (const error& e) {
                    // stopped: status() holds the reason; the other versions go on
                    r.recover(
                        e, [](const detail::reconnect_attempt&) {}, [&] { return stop.stop_requested(); });
                }
            });
            if (applied == 0) {
                std::mutex m;
                std::condition_variable_any cv;
                std::unique_lock lock(m);
                cv.wait_for(lock, stop, poll_interval, [] { return false; });
            }
        }
    }

    /// Calls `fn(runner&)` with the runner of version `name`. Names are only ever looked up among
    /// the deployed versions; an unknown one is an error that lists them.
    template <class F>
    decltype(auto) visit(std::string_view name, F&& fn) {
        return boost::mp11::mp_with_index<size>(index_of(name),
                                                [&](auto I) -> decltype(auto) { return fn(*std::get<I>(runners_)); });
    }

    /// The position of `name` among the versions; throws `error` listing them if unknown.
    [[nodiscard]] static std::size_t index_of(std::string_view name) {
        for (std::size_t i = 0; i < size; ++i)
            if (names[i] == name) return i;
        throw error(fmt::format("projectionist: '{}' is not a version of {}; the versions are: {}", name, base_name,
                                fmt::join(names, ", ")));
    }

private:
    template <class F>
    void for_each(F&& fn) {
        std::apply([&](auto&... r) { (fn(*r), ...); }, runners_);
    }

    /// `fn(i, runner)` for each version, `i` its index in `names`.
    template <class F>
    void for_each_indexed(F&& fn) {
        std::size_t i = 0;
        for_each([&](auto& r) { fn(i++, r); });
    }

    /// Refreshes `name`'s state and returns its index if it has caught up; else refuses with
    /// "projectionist: <refused>: it is <state>; <what to run first>".
    std::size_t require_caught_up(std::string_view name, const std::string& refused) {
        const std::size_t target = index_of(name);
        visit(name, [&](auto& r) {
            r.refresh();
            if (!detail::caught_up_or_later(r.state()))
                throw state_error(fmt::format("projectionist: {}: it is {}; {}", refused, to_string(r.state()),
                                              detail::what_to_run_first(name, r.state())));
        });
        return target;
    }

    /// `fn(runner)` for `name`, refreshed, once it is initialized and not serving queries; else
    /// refuses to `what` it.
    template <class F>
    void visit_unserved(std::string_view name, std::string_view what, F&& fn) {
        visit(name, [&](auto& r) {
            r.refresh();
            require_initialized(r, what);
            require_not_serving(r, name, what);
            fn(r);
        });
    }

    /// catch_up(name, should_stop) for a runner in hand.
    template <class R>
    static std::uint64_t catch_up_until_stopped(R& r, const std::function<bool()>& should_stop) {
        return until_stopped(r, should_stop, [&] { return r.catch_up(); });
    }

    /// Runs `replay` (a catch-up or a backfill of `r`) with `should_stop` asked before each batch;
    /// returns the events applied, up to the stop if one ended it.
    template <class R, class Replay>
    static std::uint64_t until_stopped(R& r, const std::function<bool()>& should_stop, Replay&& replay) {
        if (!should_stop) return replay();
        const std::uint64_t before = r.status().events_applied;
        struct restore {
            const std::function<bool()>* previous;
            ~restore() { detail::catch_up_should_stop = previous; }
        } const restored{detail::catch_up_should_stop};
        detail::catch_up_should_stop = &should_stop;
        try {
            return replay();
        } catch (const detail::catch_up_interrupted&) {
            return r.status().events_applied - before;
        }
    }

    template <class R>
    static void require_initialized(const R& r, std::string_view what) {
        const auto s = r.state();
        if (s != projection_state::declared && s != projection_state::deleted) return;
        constexpr std::string_view name = name_of<typename R::projection_type>;
        if (what == "delete")  // nothing to do: not a step to take first
            throw state_error(fmt::format("projectionist: cannot delete {}: it is {}; there is nothing to delete", name,
                                          s == projection_state::deleted ? "deleted already" : "not initialized"));
        throw state_error(fmt::format("projectionist: cannot {} {}: it is {}; {}", what, name, to_string(s),
                                      detail::what_to_run_first(name, s)));
    }

    template <class R>
    static void require_not_serving(const R& r, std::string_view name, std::string_view what) {
        if (detail::serves(r.state()))
            throw state_error(
                fmt::format("projectionist: cannot {} {}: it is serving queries; switch traffic to "
                            "another version first",
                            what, name));
    }

    std::tuple<std::unique_ptr<Runners>...> runners_;
};

}  // namespace projectionist
