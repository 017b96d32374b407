#pragma once
// What the crash tests (crash_test.cpp on SQLite, crash_postgres_test.cpp on PostgreSQL) share:
// the projection with an apply counter, the history and its in-memory reference rebuild, the
// child processes, the comparison of rows, and the loop that kills backfills at random instants
// and resumes them.
//
// A test supplies, per configuration, the rounds of that loop: each round is a fresh read model
// (and log, if the test wants one per round), an object with
//     std::vector<std::string> child_args(std::uint64_t life)  the child's command line after the
//                                                              executable (the ready fd is appended)
//     committed_state inspect()                                what a kill left, read back
//     void check_final()                                       the checks of a completed backfill
// and, optionally,
//     bool flushing()                                          whether the current life is inside
//                                                              a bulk flush's transaction now
// which lets the loop aim some kills at flushes (crash_plan::aim_at_flushes).
//
// A test that includes this names its child's entry point (support/child_entry.hpp); its program's
// main (tests/child_main.cpp) starts the child or the Catch session.

#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>

#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

namespace crash {

namespace pj = projectionist;
using namespace tickets_domain;

// ---- the projection: a ticket row with an apply counter -----------------------------------------

struct counted_row {
    BOOST_HANA_DEFINE_STRUCT(counted_row, (std::string, ticket_id), (std::string, type), (std::string, status),
                             (int, reopened), (std::int64_t, applied), (std::int64_t, last_version),
                             (std::int64_t, last_position));
    friend bool operator==(const counted_row&, const counted_row&) = default;
};

/// Every handler increments `applied`, in the batch's transaction like every other write: a
/// replayed event shows as a counter above the aggregate's event count, a lost one below it. The
/// handlers never throw (a replayed registration counts, an event for a missing row makes one), so
/// that only what the database holds, checked by the parent, can tell a double or lost apply.
struct counted_tickets : pj::projection<"crash_tickets", 1, ticket_stream, pj::exhaustive> {
    using table = pj::table<counted_row, &counted_row::ticket_id>;

    void on(const ticket_registered& e, const pj::envelope& env, auto& ctx) {
        apply(e.ticket_id, env, ctx, [&](counted_row& r) { r.type = e.type; });
    }
    void on(const ticket_closed& e, const pj::envelope& env, auto& ctx) {
        apply(e.ticket_id, env, ctx, [](counted_row& r) { r.status = "closed"; });
    }
    void on(const ticket_reopened& e, const pj::envelope& env, auto& ctx) {
        apply(e.ticket_id, env, ctx, [](counted_row& r) {
            r.status = "open";
            ++r.reopened;
        });
    }

private:
    template <class F>
    static void apply(const std::string& id, const pj::envelope& env, auto& ctx, F change) {
        auto stamp = [&](counted_row& r) {
            change(r);
            ++r.applied;
            r.last_version = static_cast<std::int64_t>(env.aggregate_version);
            r.last_position = static_cast<std::int64_t>(env.position);
        };
        if (ctx.table().update(id, stamp)) return;
        counted_row row{id, "", "open", 0, 0, 0, 0};
        stamp(row);
        ctx.table().insert(row);
    }
};

inline constexpr std::string_view table_name = pj::name_of<counted_tickets>;  // "crash_tickets_v1"
inline constexpr std::size_t batch_size = 100;

using row_map = std::map<std::string, counted_row>;

// ---- the history ---------------------------------------------------------------------------------

/// A mixed history: each ticket is registered, then closed and reopened in turn; the tickets'
/// events are interleaved in a random (fixed-seed) order.
struct history {
    std::vector<std::string> ids;
    std::vector<std::string> types;
    std::vector<std::uint64_t> events_of;  ///< per ticket: its number of events (its final version)
    std::vector<std::uint32_t> order;      ///< per global position - 1: the ticket
};

inline history make_history(std::size_t tickets, std::uint64_t seed) {
    static constexpr const char* kinds[] = {"bug", "task", "incident", "question"};
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> length(1, 15);
    history h;
    for (std::size_t i = 0; i < tickets; ++i) {
        h.ids.push_back(fmt::format("t-{:05}", i));
        h.types.emplace_back(kinds[rng() % 4]);
        h.events_of.push_back(static_cast<std::uint64_t>(length(rng)));
        h.order.insert(h.order.end(), h.events_of.back(), static_cast<std::uint32_t>(i));
    }
    std::shuffle(h.order.begin(), h.order.end(), rng);
    return h;
}

/// Calls `event(ticket, version)` for every event of the history in log order; `version` is the
/// ticket's version before the event (0: its registration).
template <class F>
void for_each_event(const history& h, F&& event) {
    std::vector<std::uint64_t> version(h.ids.size(), 0);
    for (const std::uint32_t t : h.order) event(t, version[t]++);
}

/// Appends the history one event at a time.
template <class Store>
void append_history(Store& store, const history& h) {
    for_each_event(h, [&](std::uint32_t t, std::uint64_t v) {
        const std::string& id = h.ids[t];
        if (v == 0)
            store.append(ticket_stream{}, id, v, ticket_registered{id, h.types[t]});
        else if (v % 2 == 1)
            store.append(ticket_stream{}, id, v, ticket_closed{id});
        else
            store.append(ticket_stream{}, id, v, ticket_reopened{id});
    });
}

/// Appends the history in batch appends of `per_batch` events (store/append_batch.hpp), in log order.
template <class Store>
void append_history_in_batches(Store& store, const history& h, std::size_t per_batch) {
    auto batch = store.new_batch();
    for_each_event(h, [&](std::uint32_t t, std::uint64_t v) {
        const std::string& id = h.ids[t];
        if (v == 0)
            batch.add(ticket_stream{}, id, v, ticket_registered{id, h.types[t]});
        else if (v % 2 == 1)
            batch.add(ticket_stream{}, id, v, ticket_closed{id});
        else
            batch.add(ticket_stream{}, id, v, ticket_reopened{id});
        if (batch.size() >= per_batch) {
            store.append(batch);
            batch.clear();
        }
    });
    if (!batch.empty()) store.append(batch);
}

/// The history rebuilt in memory: the reference read model, and the head.
struct reference {
    row_map rows;
    std::uint64_t head = 0;
};

inline reference rebuild_in_memory(const history& h) {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_history(store, h);
    pj::runner<counted_tickets> rebuild(store, storage);
    rebuild.catch_up();
    reference out;
    out.head = store.head();
    storage.find_table<counted_tickets::table>(table_name)->for_each([&](const counted_row& r) {
        out.rows.emplace(r.ticket_id, r);
    });
    return out;
}

// ---- comparing rows ----------------------------------------------------------------------------

inline std::string show(const counted_row& r) {
    return fmt::format("{{{}, {}, {}, reopened {}, applied {}, last version {}, last position {}}}", r.ticket_id,
                       r.type, r.status, r.reopened, r.applied, r.last_version, r.last_position);
}

/// Row-for-row comparison; describes the first differences.
inline std::string compare_rows(const row_map& got, const row_map& want) {
    std::string out;
    std::size_t differences = 0;
    auto note = [&](const std::string& what) {
        if (++differences <= 5) out += "\n  " + what;
    };
    for (const auto& [id, row] : want) {
        auto it = got.find(id);
        if (it == got.end())
            note(fmt::format("missing {}", show(row)));
        else if (!(it->second == row))
            note(fmt::format("{} differs: got {}, want {}", id, show(it->second), show(row)));
    }
    for (const auto& [id, row] : got)
        if (!want.contains(id)) note(fmt::format("unexpected {}", show(row)));
    if (differences == 0) return {};
    return fmt::format("{} of {} rows differ (got {} rows):{}", differences, want.size(), got.size(), out);
}

/// The apply counters of a completed backfill: every aggregate's events applied exactly once.
/// Empty when they are; else the number of wrong counters and the first.
inline std::string wrong_counters(const row_map& rows, const history& h) {
    std::size_t wrong = 0;
    std::string first;
    for (std::size_t i = 0; i < h.ids.size(); ++i) {
        auto it = rows.find(h.ids[i]);
        const std::int64_t applied = it == rows.end() ? 0 : it->second.applied;
        if (applied != static_cast<std::int64_t>(h.events_of[i]) && wrong++ == 0)
            first = fmt::format("{}: applied {}, events {}", h.ids[i], applied, h.events_of[i]);
    }
    if (wrong == 0) return {};
    return fmt::format("{} aggregates with an apply counter other than their number of events, first {}", wrong, first);
}

// ---- what the database holds ---------------------------------------------------------------------

/// The rows of the read model, by key, through a storage of the backend.
template <class Storage>
row_map rows_of(Storage& storage) {
    row_map out;
    auto table = storage.template find_table<counted_tickets::table>(table_name);
    if (!table) return out;
    table->for_each([&](const counted_row& r) { out.emplace(r.ticket_id, r); });
    return out;
}

/// The relations `committed_problem` reads, named as the dialect and the database layout need.
struct relations {
    std::string table;                ///< the read model's table
    std::string events;               ///< the log's projectionist_events
    std::string aggregates;           ///< the log's projectionist_aggregates
    std::string aggregate_positions;  ///< per aggregate: (projection, aggregate_number, version)
};

/// The committed per-aggregate positions against the rows: how many aggregates have one, and how
/// many of those differ from their row's apply counter (or have no row).
struct position_counts {
    std::int64_t tracked = 0;
    std::int64_t mismatched = 0;
};
template <class Scalar>
position_counts committed_positions(Scalar&& scalar, const relations& in) {
    return {scalar(fmt::format("SELECT count(*) FROM {} WHERE projection = '{}' AND version > 0",
                               in.aggregate_positions, table_name)),
            scalar(fmt::format("SELECT count(*) FROM {} c JOIN {} a ON a.number = c.aggregate_number LEFT JOIN {} t "
                               "ON t.ticket_id = a.aggregate_id WHERE c.projection = '{}' AND c.version > 0 AND "
                               "(t.applied IS NULL OR t.applied != c.version)",
                               in.aggregate_positions, in.aggregates, in.table, table_name))};
}

/// Checks, in SQL both dialects speak, that the committed rows agree with the committed
/// checkpoint `cp`: every row's apply counter equals its aggregate's number of events at or
/// before the checkpoint (and, per aggregate, the committed aggregate position), and exactly the
/// aggregates seen have a row. `scalar(sql)` returns the integer of a query's one row; it must
/// read one snapshot of the database for every call. Empty when they agree, else what differs.
template <class Scalar>
std::string committed_problem(Scalar&& scalar, const relations& in, std::int64_t cp, bool partitioned) {
    const auto rows = scalar(fmt::format("SELECT count(*) FROM {}", in.table));
    const auto applied = scalar(fmt::format("SELECT coalesce(sum(applied), 0) FROM {}", in.table));
    const auto seen =
        scalar(fmt::format("SELECT count(DISTINCT aggregate_id) FROM {} WHERE position <= {}", in.events, cp));
    // A join with the counts per aggregate, not a subquery per row: a planner without statistics
    // of a log just written would scan the log once per row.
    const auto wrong = scalar(fmt::format(
        "SELECT count(*) FROM {} t LEFT JOIN (SELECT aggregate_id, count(*) AS n FROM {} WHERE stream = 'ticket' AND "
        "position <= {} GROUP BY aggregate_id) e ON e.aggregate_id = t.ticket_id WHERE t.applied != coalesce(e.n, 0)",
        in.table, in.events, cp));
    if (applied != cp || rows != seen || wrong != 0)
        return fmt::format(
            "checkpoint {}: the rows' apply counters sum to {} (want {}), {} rows for {} aggregates seen, {} rows "
            "whose counter differs from their aggregate's events up to the checkpoint",
            cp, applied, cp, rows, seen, wrong);
    if (!partitioned) return {};
    const auto [tracked, mismatched] = committed_positions(scalar, in);
    if (tracked != rows || mismatched != 0)
        return fmt::format(
            "checkpoint {}: {} aggregate positions for {} rows, {} aggregate positions differ from the row's apply "
            "counter",
            cp, tracked, rows, mismatched);
    return {};
}

/// In passes by aggregate the checkpoint's position waits for the oldest pass still to run, while
/// the finished passes' aggregates are ahead of it. The committed rows must agree with the
/// committed aggregate positions (every row's apply counter is its aggregate's position, and every
/// tracked aggregate has a row), and no aggregate may be behind the checkpoint. Returns the events
/// applied and committed (the sum of the counters), which grows with every flush, or the problem.
template <class Scalar>
std::pair<std::int64_t, std::string> passes_problem(Scalar&& scalar, const relations& r, std::int64_t cp) {
    const auto rows = scalar(fmt::format("SELECT count(*) FROM {}", r.table));
    const auto applied = scalar(fmt::format("SELECT coalesce(sum(applied), 0) FROM {}", r.table));
    const auto [tracked, mismatched] = committed_positions(scalar, r);
    const auto behind = scalar(fmt::format(
        "SELECT count(*) FROM (SELECT aggregate_id, count(*) AS n FROM {} WHERE stream = 'ticket' AND position <= {} "
        "GROUP BY aggregate_id) e LEFT JOIN {} t ON t.ticket_id = e.aggregate_id WHERE coalesce(t.applied, 0) < e.n",
        r.events, cp, r.table));
    if (tracked != rows || mismatched != 0 || behind != 0)
        return {applied, fmt::format("checkpoint {}: {} aggregate positions for {} rows, {} differ from the row's "
                                     "apply counter, {} aggregates behind the checkpoint",
                                     cp, tracked, rows, mismatched, behind)};
    return {applied, {}};
}

/// The checks of a completed backfill every backend shares: `rows` (read back) equal the
/// reference row for row, every aggregate's events were applied exactly once, and a runner `r`
/// opening the database finds the version caught up at the head, per aggregate with every
/// aggregate at its version.
template <class Partitioning, class Runner>
void check_completed(const row_map& rows, Runner& r, const history& h, const reference& ref) {
    {
        const std::string difference = compare_rows(rows, ref.rows);
        INFO(difference);
        CHECK(difference.empty());
    }
    {
        const std::string counters = wrong_counters(rows, h);
        INFO(counters);
        CHECK(counters.empty());
    }
    CHECK(r.position() == ref.head);
    CHECK(r.status().state == pj::projection_state::caught_up);
    if constexpr (Partitioning::partitioned) {
        std::size_t wrong_positions = 0;
        std::string first;
        for (std::size_t i = 0; i < h.ids.size(); ++i) {
            const std::uint64_t at = r.aggregate_position(ticket_stream{}, h.ids[i]);
            if (at != h.events_of[i] && wrong_positions++ == 0)
                first = fmt::format("{}: position {}, version {}", h.ids[i], at, h.events_of[i]);
        }
        INFO(first);
        CHECK(wrong_positions == 0);
        CHECK(r.status().aggregates_tracked == h.ids.size());
    }
}

// ---- the child -----------------------------------------------------------------------------------

/// Tells the parent (through the pipe of `fd`) that start-up is over and the backfill begins now.
inline bool tell_ready(int fd) {
    const char ready = 'R';
    const bool ok = ::write(fd, &ready, 1) == 1;
    ::close(fd);
    return ok;
}

/// Splits a child's mode, `<global|per_aggregate>[-bulk]`: the partitioning, and whether bulk.
inline std::pair<std::string, bool> parse_mode(const std::string& mode) {
    const bool bulk = mode.ends_with("-bulk");
    return {bulk ? mode.substr(0, mode.size() - 5) : mode, bulk};
}

/// Backfills with `r` from where the last life left; the child's exit code: 0 when it reached the
/// head, 5 when it was meant to run in bulk and made progress without a flush.
template <class Runner, class Store>
int backfill_to_head(Runner& r, Store& store, bool bulk) {
    const std::uint64_t start = r.position();  // the last life may have been killed after its final commit
    r.backfill();
    if (bulk && r.status().bulk_flushes == 0 && r.position() != start) return 5;  // it did not run in bulk
    return r.position() == store.head() ? 0 : 4;
}

// ---- the parent's side: processes ----------------------------------------------------------------

inline std::string self_exe() {
    std::error_code ec;
    auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) throw std::runtime_error("cannot read /proc/self/exe: " + ec.message());
    return p.string();
}

/// One child process. The destructor kills (SIGKILL) and reaps it if it is still unreaped, so
/// that a failed check never leaves a process or a zombie behind. Only this pid is ever killed.
class child_process {
public:
    child_process(const std::string& exe, const std::vector<std::string>& args) {
        int fds[2];
        if (::pipe(fds) != 0) throw std::runtime_error(fmt::format("pipe: {}", std::strerror(errno)));
        read_fd_ = fds[0];
        const int write_fd = fds[1];
        std::vector<std::string> all{exe};
        all.insert(all.end(), args.begin(), args.end());
        all.push_back(std::to_string(write_fd));
        std::vector<char*> argv;
        for (auto& a : all) argv.push_back(a.data());
        argv.push_back(nullptr);
        std::fflush(stdout);
        std::fflush(stderr);
        started_ = std::chrono::steady_clock::now();
        pid_ = ::fork();
        if (pid_ == 0) {  // the child: async-signal-safe calls only
            ::close(read_fd_);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(write_fd);
        if (pid_ < 0) {
            ::close(read_fd_);
            throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
        }
    }
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process() {
        if (pid_ > 0 && !reaped_) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
            }
        }
        if (read_fd_ >= 0) ::close(read_fd_);
    }

    /// Waits for the child's ready byte: true when it came, false when the pipe closed first
    /// (the child exited during start-up).
    bool wait_ready(std::chrono::milliseconds timeout) {
        pollfd p{read_fd_, POLLIN, 0};
        int rc = 0;
        while ((rc = ::poll(&p, 1, static_cast<int>(timeout.count()))) < 0 && errno == EINTR) {
        }
        if (rc == 0) throw std::runtime_error("the child did not start within the time limit");
        char c = 0;
        ssize_t n = 0;
        while ((n = ::read(read_fd_, &c, 1)) < 0 && errno == EINTR) {
        }
        return n == 1 && c == 'R';
    }

    void kill() const { ::kill(pid_, SIGKILL); }  // a zombie not yet reaped: harmless

    /// Whether the child has ended (then it is reaped, and `wait` returns its status at once).
    bool ended() {
        if (reaped_) return true;
        int status = 0;
        pid_t rc = 0;
        while ((rc = ::waitpid(pid_, &status, WNOHANG)) < 0 && errno == EINTR) {
        }
        if (rc < 0) throw std::runtime_error(fmt::format("waitpid: {}", std::strerror(errno)));
        if (rc == 0) return false;
        reaped_ = true;
        status_ = status;
        return true;
    }

    /// Reaps the child; returns its wait status.
    int wait() {
        if (reaped_) return status_;
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0) {
            if (errno != EINTR) throw std::runtime_error(fmt::format("waitpid: {}", std::strerror(errno)));
        }
        reaped_ = true;
        status_ = status;
        return status;
    }

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    [[nodiscard]] std::chrono::steady_clock::time_point started() const noexcept { return started_; }

private:
    pid_t pid_ = -1;
    int read_fd_ = -1;
    bool reaped_ = false;
    int status_ = 0;
    std::chrono::steady_clock::time_point started_;
};

inline std::string describe(int status) {
    if (WIFEXITED(status)) return fmt::format("exited with code {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
    return fmt::format("ended with wait status {}", status);
}

// ---- the parent's side: the run ---------------------------------------------------------------------

inline std::uint64_t env_number(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    return std::strtoull(v, nullptr, 10);
}

/// Kills that must land mid-backfill per configuration: PROJECTIONIST_CRASH_KILLS, else `fallback`.
inline std::uint64_t required_kills(std::uint64_t fallback = 20) {
    return std::max<std::uint64_t>(1, env_number("PROJECTIONIST_CRASH_KILLS", fallback));
}

inline std::uint64_t kill_seed() {
    static const std::uint64_t seed = [] {
        const std::uint64_t s = env_number("PROJECTIONIST_CRASH_SEED", 0);
        return s != 0 ? s : (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
    }();
    return seed;
}

/// What a kill left behind, read back from the database.
struct committed_state {
    std::uint64_t position = 0;
    std::string problem;  ///< empty when rows and checkpoints agree
};

/// One configuration of the kill loop.
struct crash_plan {
    std::string label;            ///< printed, and named in failures
    std::uint64_t head = 0;       ///< the history's last position
    std::uint64_t config = 0;     ///< added to the kill seed: each configuration kills at its own instants
    std::uint64_t required = 20;  ///< kills that must land mid-backfill
    /// Aim kills at bulk flushes (the rounds have `flushing()`): every life that may be, until two
    /// kills landed in a flush, then 30% of them. Such a life waits for its first, second or third
    /// flush and is killed while it is still inside it. Only lives that
    /// resume from a flush are aimed so (the first life's start-up writes, init and the state,
    /// are not flushes), and while a quarter of the history is left at least (a life that reaches
    /// the head ends the round).
    bool aim_at_flushes = false;
    /// The window of the random kills until a kill showed the rate of progress, grown by this much
    /// with every kill: a backfill whose first commit comes late (a bulk flush) wants more.
    double initial_window_ms = 10;
};

struct run_stats {
    std::uint64_t lives = 0;
    std::uint64_t kills = 0;
    std::uint64_t mid_backfill = 0;    ///< 0 < checkpoint < head after the kill, and it moved in that life
    std::uint64_t between = 0;         ///< 0 < checkpoint < head after the kill (moved or not)
    std::uint64_t during_startup = 0;  ///< kills aimed before the child said it was ready
    std::uint64_t during_flush = 0;    ///< kills sent while the child was inside a flush's transaction
    std::uint64_t rounds = 0;
    double min_delay_ms = 1e9, max_delay_ms = 0;
};

/// Waits, polling `round.flushing()`, for the child's `nth` flush to begin, then for a random
/// part of `hold_ms`, and kills the child if it is still inside a flush then. A flush that ends
/// first does not count: the next one is waited for. Returns whether it killed the child
/// (false: the child ended by itself, or no flush came within `limit`).
template <class Round, class Rng>
bool kill_in_flush(Round& round, child_process& child, int nth, double& hold_ms, Rng& rng,
                   std::chrono::milliseconds limit) {
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + limit;
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    int seen = 0;
    bool inside = false;
    while (clock::now() < deadline && !child.ended()) {
        const bool now = round.flushing();
        if (now && !inside && ++seen >= nth) {
            std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(unit(rng) * hold_ms));
            if (round.flushing()) {
                child.kill();
                hold_ms = std::min(hold_ms * 1.2, 200.0);
                return true;
            }
            hold_ms = std::max(hold_ms * 0.6, 0.2);  // the flush ended first: shorter holds
            inside = false;
            continue;
        }
        inside = now;
        std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    return false;
}

/// Backfills in child processes killed at random instants until `plan.required` kills landed
/// mid-backfill; each round (`new_round()`: a fresh read model) ends with a complete backfill (a
/// child that exits 0 by itself) and the round's final checks.
template <class NewRound>
run_stats crash_and_resume(const crash_plan& plan, NewRound new_round) {
    using clock = std::chrono::steady_clock;
    const std::string exe = self_exe();
    const std::uint64_t required = plan.required;
    const std::string& label = plan.label;
    std::mt19937_64 rng(kill_seed() + plan.config);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    run_stats stats;
    const auto began = clock::now();

    double startup_ms = 20;  // time from spawn to ready, a running average
    double rate_events = 0;  // events committed after ready, over the kills ...
    double rate_ms = 0;      // ... and the time they had
    double hold_ms = 20;     // how long a kill aimed at a flush waits into it, at most
    double progress_ms = 0;  // the shortest delay after ready of a kill that found progress
    double finish_ms = 0;    // per event left: what the last life that reached the head took after ready
    // The longest delay after ready of a kill that found no progress since the last that did: the
    // next kills come no earlier. The rate above is an average over every kill so far, and when
    // the machine slows down (a first commit that took 5 ms takes 100) it adapts only after
    // hundreds of kills that all land before the first commit; this floor adapts in a few.
    double floor_ms = 0;
    const std::uint64_t max_lives = 30 * required + 300;

    while (stats.mid_backfill < required || stats.rounds == 0) {
        ++stats.rounds;
        auto round = new_round();
        std::uint64_t before = 0;
        for (;;) {
            REQUIRE(stats.lives < max_lives);
            ++stats.lives;
            const std::uint64_t kills_left = stats.mid_backfill < required ? required - stats.mid_backfill + 2 : 0;
            child_process child(exe, round.child_args(stats.lives));
            bool aimed = false;
            bool after_ready = false;
            bool in_flush = false;
            std::optional<clock::time_point> ready_at;
            double delay_ms = 0;
            if (kills_left > 0 && unit(rng) < 0.15) {
                // Now and then a kill during start-up: opening the database, creating the table.
                delay_ms = unit(rng) * startup_ms * 1.2;
                std::this_thread::sleep_until(child.started() + std::chrono::duration<double, std::milli>(delay_ms));
                child.kill();
                aimed = true;
                ++stats.during_startup;
            } else if (child.wait_ready(std::chrono::minutes(2))) {
                const auto ready = clock::now();
                ready_at = ready;
                startup_ms =
                    0.8 * startup_ms + 0.2 * std::chrono::duration<double, std::milli>(ready - child.started()).count();
                bool at_flush = false;
                if constexpr (requires(decltype(round)& r) { r.flushing(); }) {
                    if (plan.aim_at_flushes && before > 0 && plan.head - before > plan.head / 4 && kills_left > 0 &&
                        (stats.during_flush < 2 || unit(rng) < 0.3)) {
                        at_flush = true;
                        const int nth = 1 + static_cast<int>(rng() % 3);
                        if (kill_in_flush(round, child, nth, hold_ms, rng, std::chrono::seconds(20))) {
                            delay_ms = std::chrono::duration<double, std::milli>(clock::now() - ready).count();
                            aimed = in_flush = true;
                            ++stats.during_flush;
                        }
                    }
                }
                // What a life takes to reach the head from here (at the pace of the last life
                // that did), and whether a kill before that can find progress at all: with less
                // history left than a life commits at first, the life is left to finish, and the
                // next round starts the backfill over.
                const double remaining = static_cast<double>(plan.head - before);
                const double finish_estimate = finish_ms > 0 ? remaining * finish_ms : 0;
                // A life that starts at the head has nothing left to commit: killing it (it may
                // still be exiting, which takes long under the sanitizers) would find no progress
                // again and again, so it is left to end the round.
                const bool worth_a_kill =
                    remaining > 0 && (finish_estimate == 0 || finish_estimate >= 1.5 * std::max(progress_ms, floor_ms));
                if (kills_left > 0 && !at_flush && worth_a_kill) {
                    // A uniform instant in [0, window]; the window spreads the kills left over the
                    // history left, at the rate seen so far.
                    double window =
                        plan.initial_window_ms * static_cast<double>(1 + stats.kills);  // until a kill shows progress
                    if (rate_events > 0)
                        window = 2 * remaining * rate_ms / (rate_events * static_cast<double>(kills_left));
                    // A life commits nothing for a while (its first batch, or its first flush): half
                    // the kills at least come later than the earliest that found progress ...
                    window = std::max(window, 2 * progress_ms);
                    // ... but before the life would reach the head.
                    if (finish_estimate > 0) window = std::min(window, 0.8 * finish_estimate);
                    window = std::clamp(window, 0.5, 2000.0);
                    // ... and no earlier than a kill that found nothing committed yet.
                    delay_ms = floor_ms + unit(rng) * std::max(window - floor_ms, floor_ms);
                    std::this_thread::sleep_until(ready + std::chrono::duration<double, std::milli>(delay_ms));
                    child.kill();
                    aimed = true;
                }
                if (aimed) {
                    after_ready = true;
                    rate_ms += delay_ms;
                    stats.min_delay_ms = std::min(stats.min_delay_ms, delay_ms);
                    stats.max_delay_ms = std::max(stats.max_delay_ms, delay_ms);
                }
            }
            const int status = child.wait();
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {  // the backfill completed
                if (ready_at && plan.head > before)
                    finish_ms = std::chrono::duration<double, std::milli>(clock::now() - *ready_at).count() /
                                static_cast<double>(plan.head - before);
                break;
            }
            INFO(label << ": life " << stats.lives << ": the child " << describe(status));
            const bool killed_by_us = aimed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
            REQUIRE(killed_by_us);
            ++stats.kills;

            const committed_state state = round.inspect();
            INFO(label << ": after kill " << stats.kills << " (" << delay_ms << " ms"
                       << (in_flush ? ", in a flush" : "") << "): " << state.problem);
            REQUIRE(state.problem.empty());
            REQUIRE(state.position >= before);  // a commit is never lost
            if (state.position > 0 && state.position < plan.head) {
                ++stats.between;
                if (state.position > before) ++stats.mid_backfill;
            }
            if (after_ready) {
                rate_events += static_cast<double>(state.position - before);
                if (state.position > before && (progress_ms == 0 || delay_ms < progress_ms)) progress_ms = delay_ms;
                if (state.position > before)
                    floor_ms *= 0.5;  // progress: the floor may have overshot, or the machine sped up
                else if (!in_flush)
                    floor_ms = std::max(floor_ms, delay_ms);
            }
            before = state.position;
        }
        round.check_final();
    }

    const double seconds = std::chrono::duration<double>(clock::now() - began).count();
    fmt::print(
        "crash [{}]: {} events, batch {}, kill seed {}: {} kills ({} mid-backfill with progress in the killed life, "
        "{} with 0 < checkpoint < head, {} aimed at start-up{}), {} child runs, {} round(s), delays after ready "
        "{:.2f}-{:.2f} ms, start-up ~{:.1f} ms, {:.1f} s\n",
        label, plan.head, batch_size, kill_seed(), stats.kills, stats.mid_backfill, stats.between, stats.during_startup,
        plan.aim_at_flushes ? fmt::format(", {} inside a flush's transaction", stats.during_flush) : std::string(),
        stats.lives, stats.rounds, stats.min_delay_ms, stats.max_delay_ms, startup_ms, seconds);
    std::fflush(stdout);
    CHECK(stats.kills >= required);
    CHECK(stats.mid_backfill >= required);
    return stats;
}

}  // namespace crash
