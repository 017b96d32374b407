// The crash test (label `crash`): a child process backfills a large tickets history from a SQLite
// log into a SQLite read model and is killed with SIGKILL at random instants; after each kill it
// is started again and resumes from what it committed. Checked:
//   - after every kill, in the file as the kill left it: every row's apply counter equals the
//     number of its aggregate's events up to the committed checkpoint (and, per aggregate, the
//     committed aggregate position), so rows and checkpoints always commit together;
//   - at the end: the table equals an in-memory reference rebuild row for row, every apply
//     counter equals its aggregate's number of events (nothing applied twice or skipped), the
//     per-aggregate positions equal the aggregates' versions, and PRAGMA integrity_check is ok.
// Both partitioning modes; the log and the read model in one file, and in two files.
//
// The same executable is the child when started as `crash_test --crash-child ...`.
//
// Environment:
//   PROJECTIONIST_CRASH_KILLS  kills that must land mid-backfill, per configuration (default 20)
//   PROJECTIONIST_CRASH_SEED   seed of the kill instants (default: random, printed)

#define CATCH_CONFIG_RUNNER
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
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>

#include <projectionist/sqlite.hpp>
#include <sqlite_test_support.hpp>
#include <tickets_domain.hpp>

namespace pj = projectionist;
using namespace tickets_domain;

namespace crash {

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
/// that only what the files hold, checked by the parent, can tell a double or lost apply.
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

constexpr std::string_view table_name = pj::name_of<counted_tickets>;  // "crash_tickets_v1"
constexpr std::size_t batch_size = 100;

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

template <class Store>
void append_history(Store& store, const history& h) {
    std::vector<std::uint64_t> version(h.ids.size(), 0);
    for (const std::uint32_t t : h.order) {
        const std::string& id = h.ids[t];
        const std::uint64_t v = version[t];
        if (v == 0)
            store.append(ticket_stream{}, id, v, ticket_registered{id, h.types[t]});
        else if (v % 2 == 1)
            store.append(ticket_stream{}, id, v, ticket_closed{id});
        else
            store.append(ticket_stream{}, id, v, ticket_reopened{id});
        version[t] = v + 1;
    }
}

/// Writes the history into a new SQLite log, in one transaction, and leaves a file without WAL.
inline void write_history(const std::string& path, const history& h) {
    pj::sqlite_options fast;
    fast.synchronous = pj::sqlite_synchronous::normal;
    pj::sqlite_event_store store(path, fast);
    store.connection().exec("BEGIN IMMEDIATE");
    append_history(store, h);  // each append is a savepoint in this transaction
    store.connection().exec("COMMIT");
    store.connection().exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

using row_map = std::map<std::string, counted_row>;

// ---- the child -----------------------------------------------------------------------------------

/// How a child backfills: in batches, or in bulk with a flush every few hundred events (so that
/// kills land in the apply phase and in flushes, and every life can make progress).
pj::runner_options child_options(bool bulk) {
    if (!bulk) return {.batch_size = batch_size, .backfill = pj::backfill_mode::batch};
    return {.batch_size = batch_size,
            .backfill = pj::backfill_mode::bulk,
            .bulk_read_size = batch_size,
            .bulk_flush_every = 4 * batch_size};
}

template <class Partitioning>
int child_backfill(const std::string& log, const std::string& models, int ready_fd, bool bulk) {
    pj::sqlite_event_store store(log);
    // A small log limit folds the per-aggregate position log often, so that kills land in folds.
    pj::sqlite_options options;
    options.aggregate_position_log_limit = 256;
    pj::sqlite_storage storage(models, options);
    pj::runner<counted_tickets, pj::sqlite_storage, Partitioning> r(store, storage, child_options(bulk));
    // Tells the parent that start-up is over and the backfill begins now.
    const char ready = 'R';
    if (::write(ready_fd, &ready, 1) != 1) return 3;
    ::close(ready_fd);
    const std::uint64_t start = r.position();  // the last life may have been killed after its final commit
    r.backfill();
    if (bulk && r.status().bulk_flushes == 0 && r.position() != start) return 5;  // it did not run in bulk
    return r.position() == store.head() ? 0 : 4;
}

/// `crash_test --crash-child <global|per_aggregate>[-bulk] <log db> <models db> <ready fd>`
int child_main(int argc, char** argv) {
    if (argc != 6) {
        std::fprintf(stderr, "crash_test child: expected 4 arguments, got %d\n", argc - 2);
        return 2;
    }
    const std::string mode = argv[2];
    const int ready_fd = std::atoi(argv[5]);
    try {
        const bool bulk = mode.ends_with("-bulk");
        const std::string partitioning = bulk ? mode.substr(0, mode.size() - 5) : mode;
        if (partitioning == "global") return child_backfill<pj::global>(argv[3], argv[4], ready_fd, bulk);
        if (partitioning == "per_aggregate") return child_backfill<pj::per_aggregate>(argv[3], argv[4], ready_fd, bulk);
        std::fprintf(stderr, "crash_test child: unknown mode '%s'\n", mode.c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "crash_test child (%s): %s\n", mode.c_str(), e.what());
    }
    return 2;
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

    /// Reaps the child; returns its wait status.
    int wait() {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0) {
            if (errno != EINTR) throw std::runtime_error(fmt::format("waitpid: {}", std::strerror(errno)));
        }
        reaped_ = true;
        return status;
    }

    [[nodiscard]] std::chrono::steady_clock::time_point started() const noexcept { return started_; }

private:
    pid_t pid_ = -1;
    int read_fd_ = -1;
    bool reaped_ = false;
    std::chrono::steady_clock::time_point started_;
};

inline std::string describe(int status) {
    if (WIFEXITED(status)) return fmt::format("exited with code {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
    return fmt::format("ended with wait status {}", status);
}

// ---- the parent's side: what the files hold -------------------------------------------------------

using pj::detail::sqlite::connection;
using pj::detail::sqlite::statement;

/// A connection to the read-model file, with the log's file attached as `log` when it is
/// another one; `events` is the schema prefix of the log's tables.
struct inspector {
    connection db;
    std::string events;

    inspector(const std::string& log, const std::string& models)
        : db(models, SQLITE_OPEN_READWRITE), events(log == models ? "main." : "log.") {
        if (log != models) {
            statement attach(db, "ATTACH DATABASE ? AS log");
            attach.bind(1, std::string_view(log));
            attach.run();
        }
    }

    bool has_table(std::string_view name) {
        statement s(db, "SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND name = ?");
        s.bind(1, name);
        return s.step();
    }

    std::int64_t scalar(const std::string& sql, std::optional<std::int64_t> arg = std::nullopt) {
        statement s(db, sql);
        if (arg) s.bind(1, *arg);
        if (!s.step()) throw std::runtime_error("no row: " + sql);
        return s.int64(0);
    }

    std::uint64_t checkpoint() {
        if (!has_table("projectionist_checkpoints")) return 0;
        statement s(db, "SELECT position FROM main.projectionist_checkpoints WHERE projection = ?");
        s.bind(1, table_name);
        return s.step() ? static_cast<std::uint64_t>(s.int64(0)) : 0;
    }
};

/// What a kill left behind, read back from the files.
struct committed_state {
    std::uint64_t position = 0;
    std::string problem;  ///< empty when rows and checkpoints agree
};

/// Reads the committed checkpoint and checks that the committed rows agree with it: every row's
/// apply counter equals its aggregate's number of events at or before the checkpoint (and, per
/// aggregate, the committed aggregate position), and exactly the aggregates seen have a row.
inline committed_state inspect(const std::string& log, const std::string& models, bool partitioned) {
    committed_state out;
    if (!std::filesystem::exists(models)) return out;  // killed before the file was created
    inspector in(log, models);
    out.position = in.checkpoint();
    const auto cp = static_cast<std::int64_t>(out.position);
    if (!in.has_table(std::string(table_name))) {
        if (cp != 0) out.problem = fmt::format("checkpoint {} but no table {}", cp, table_name);
        return out;
    }
    const std::string t = fmt::format("main.{}", table_name);
    const std::string& ev = in.events;
    const auto rows = in.scalar(fmt::format("SELECT count(*) FROM {}", t));
    const auto applied = in.scalar(fmt::format("SELECT coalesce(sum(applied), 0) FROM {}", t));
    const auto seen = in.scalar(
        fmt::format("SELECT count(DISTINCT aggregate_id) FROM {}projectionist_events WHERE position <= ?", ev), cp);
    const auto wrong = in.scalar(fmt::format("SELECT count(*) FROM {} t WHERE t.applied != (SELECT count(*) FROM "
                                             "{}projectionist_events e WHERE e.stream = 'ticket' AND e.aggregate_id "
                                             "= t.ticket_id AND e.position <= ?)",
                                             t, ev),
                                 cp);
    if (applied != cp || rows != seen || wrong != 0)
        out.problem = fmt::format(
            "checkpoint {}: the rows' apply counters sum to {} (want {}), {} rows for {} aggregates seen, {} rows "
            "whose counter differs from their aggregate's events up to the checkpoint",
            cp, applied, cp, rows, seen, wrong);
    if (partitioned && out.problem.empty()) {
        const std::string q = pj::detail::sqlite::quote(table_name);
        const auto tracked = in.scalar(fmt::format(
            "SELECT count(*) FROM main.projectionist_aggregate_positions WHERE projection = '{}' AND version > 0",
            table_name));
        const auto mismatched = in.scalar(fmt::format(
            "SELECT count(*) FROM main.projectionist_aggregate_positions c JOIN {}projectionist_aggregates a ON "
            "a.number = c.aggregate_number LEFT JOIN {} t ON t.ticket_id = a.aggregate_id WHERE c.projection = '{}' "
            "AND c.version > 0 AND (t.applied IS NULL OR t.applied != c.version)",
            ev, t, table_name));
        if (tracked != rows || mismatched != 0)
            out.problem = fmt::format(
                "checkpoint {}: {} aggregate positions for {} rows, {} aggregate positions differ from the row's "
                "apply counter",
                cp, tracked, rows, mismatched);
    }
    return out;
}

inline row_map sqlite_rows(const std::string& models) {
    pj::sqlite_storage storage(models);
    row_map out;
    auto table = storage.find_table<counted_tickets::table>(table_name);
    if (!table) return out;
    table->for_each([&](const counted_row& r) { out.emplace(r.ticket_id, r); });
    return out;
}

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

// ---- the parent's side: the run ---------------------------------------------------------------------

inline std::uint64_t env_number(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    return std::strtoull(v, nullptr, 10);
}

inline std::uint64_t required_kills() {
    return std::max<std::uint64_t>(1, env_number("PROJECTIONIST_CRASH_KILLS", 20));
}

inline std::uint64_t kill_seed() {
    static const std::uint64_t seed = [] {
        const std::uint64_t s = env_number("PROJECTIONIST_CRASH_SEED", 0);
        return s != 0 ? s : (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
    }();
    return seed;
}

/// The history, its reference rebuild in memory, and the log written once into a file that
/// every configuration copies.
struct fixture {
    static constexpr std::uint64_t history_seed = 20240611;
    static constexpr std::size_t tickets = 3000;

    sqlite_test::temp_dir dir;
    history h = make_history(tickets, history_seed);
    std::string pristine = dir.file("history.db");
    row_map reference;
    std::uint64_t head = 0;

    fixture() {
        const auto began = std::chrono::steady_clock::now();
        write_history(pristine, h);
        pj::memory_event_store store;
        pj::memory_storage storage;
        append_history(store, h);
        pj::runner<counted_tickets> rebuild(store, storage);
        rebuild.catch_up();
        head = store.head();
        storage.find_table<counted_tickets::table>(table_name)->for_each([&](const counted_row& r) {
            reference.emplace(r.ticket_id, r);
        });
        fmt::print(
            "crash: history of {} events over {} tickets (seed {}) written to SQLite and rebuilt in memory in "
            "{:.1f} s; kills must land mid-backfill {} times per configuration (PROJECTIONIST_CRASH_KILLS)\n",
            head, h.ids.size(), history_seed,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count(), required_kills());
        std::fflush(stdout);
    }

    static fixture& get() {
        static fixture f;
        return f;
    }
};

struct run_stats {
    std::uint64_t lives = 0;
    std::uint64_t kills = 0;
    std::uint64_t mid_backfill = 0;    ///< 0 < checkpoint < head after the kill, and it moved in that life
    std::uint64_t between = 0;         ///< 0 < checkpoint < head after the kill (moved or not)
    std::uint64_t during_startup = 0;  ///< kills aimed before the child said it was ready
    std::uint64_t rounds = 0;
    double min_delay_ms = 1e9, max_delay_ms = 0;
};

/// Final checks of a completed backfill.
template <class Partitioning>
void check_final(const fixture& f, const std::string& log, const std::string& models) {
    INFO("log " << log << ", read model " << models);
    CHECK(sqlite_test::integrity_ok(log));
    if (models != log) CHECK(sqlite_test::integrity_ok(models));

    const committed_state state = inspect(log, models, Partitioning::partitioned);
    {
        INFO(state.problem);
        CHECK(state.problem.empty());
    }
    CHECK(state.position == f.head);

    // Row for row, the in-memory reference rebuild.
    const row_map rows = sqlite_rows(models);
    {
        const std::string difference = compare_rows(rows, f.reference);
        INFO(difference);
        CHECK(difference.empty());
    }

    // The apply counter: every aggregate's events applied exactly once.
    std::size_t wrong_counters = 0;
    std::string first_wrong;
    for (std::size_t i = 0; i < f.h.ids.size(); ++i) {
        auto it = rows.find(f.h.ids[i]);
        const std::int64_t applied = it == rows.end() ? 0 : it->second.applied;
        if (applied != static_cast<std::int64_t>(f.h.events_of[i]) && wrong_counters++ == 0)
            first_wrong = fmt::format("{}: applied {}, events {}", f.h.ids[i], applied, f.h.events_of[i]);
    }
    {
        INFO(first_wrong);
        CHECK(wrong_counters == 0);
    }

    // What a runner opening the files sees: done, and per aggregate every version applied.
    pj::sqlite_event_store store(log);
    pj::sqlite_storage storage(models);
    pj::runner<counted_tickets, pj::sqlite_storage, Partitioning> r(store, storage);
    CHECK(r.position() == f.head);
    CHECK(r.status().state == pj::projection_state::caught_up);
    if constexpr (Partitioning::partitioned) {
        std::size_t wrong_positions = 0;
        std::string first;
        for (std::size_t i = 0; i < f.h.ids.size(); ++i) {
            const std::uint64_t at = r.aggregate_position(ticket_stream{}, f.h.ids[i]);
            if (at != f.h.events_of[i] && wrong_positions++ == 0)
                first = fmt::format("{}: position {}, version {}", f.h.ids[i], at, f.h.events_of[i]);
        }
        INFO(first);
        CHECK(wrong_positions == 0);
        CHECK(r.status().aggregates_tracked == f.h.ids.size());
        // The children replaced the position log by snapshots along the way: a batch's row holds
        // at most batch_size positions, a snapshot every tracked aggregate's.
        pj::detail::sqlite::statement widest(storage.connection(),
                                             "SELECT max(entries) FROM projectionist_aggregate_position_log");
        REQUIRE(widest.step());
        CHECK(widest.int64(0) > static_cast<std::int64_t>(batch_size));
    }
}

/// Backfills in child processes killed at random instants until `required` kills landed
/// mid-backfill; each round starts from a fresh copy of the history and ends with a complete
/// backfill (a child that exits 0 by itself) and the final checks.
template <class Partitioning>
void crash_and_resume(bool two_files, std::uint64_t config, bool bulk = false) {
    using clock = std::chrono::steady_clock;
    fixture& f = fixture::get();
    const std::uint64_t required = required_kills();
    const std::string mode = std::string(Partitioning::name) + (bulk ? "-bulk" : "");
    const std::string label = fmt::format("{}, {}", mode, two_files ? "two files" : "one file");
    const std::string exe = self_exe();
    std::mt19937_64 rng(kill_seed() + config);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    run_stats stats;
    const auto began = clock::now();

    double startup_ms = 20;  // time from spawn to ready, a running average
    double rate_events = 0;  // events committed after ready, over the kills ...
    double rate_ms = 0;      // ... and the time they had
    const std::uint64_t max_lives = 30 * required + 300;

    while (stats.mid_backfill < required || stats.rounds == 0) {
        ++stats.rounds;
        sqlite_test::temp_dir round_dir;
        const std::string log = round_dir.file("log.db");
        const std::string models = two_files ? round_dir.file("models.db") : log;
        std::filesystem::copy_file(f.pristine, log);
        std::uint64_t before = 0;
        for (;;) {
            REQUIRE(stats.lives < max_lives);
            ++stats.lives;
            const std::uint64_t kills_left = stats.mid_backfill < required ? required - stats.mid_backfill + 2 : 0;
            child_process child(exe, {"--crash-child", mode, log, models});
            bool aimed = false;
            bool after_ready = false;
            double delay_ms = 0;
            if (kills_left > 0 && unit(rng) < 0.15) {
                // Now and then a kill during start-up: opening the files, creating the table.
                delay_ms = unit(rng) * startup_ms * 1.2;
                std::this_thread::sleep_until(child.started() + std::chrono::duration<double, std::milli>(delay_ms));
                child.kill();
                aimed = true;
                ++stats.during_startup;
            } else if (child.wait_ready(std::chrono::minutes(2))) {
                const auto ready = clock::now();
                startup_ms =
                    0.8 * startup_ms + 0.2 * std::chrono::duration<double, std::milli>(ready - child.started()).count();
                if (kills_left > 0) {
                    // A uniform instant in [0, window]; the window spreads the kills left over the
                    // history left, at the rate seen so far.
                    const double remaining = static_cast<double>(f.head - before);
                    double window = 10 * static_cast<double>(1 + stats.kills);  // until a kill shows progress
                    if (rate_events > 0)
                        window = 2 * remaining * rate_ms / (rate_events * static_cast<double>(kills_left));
                    window = std::clamp(window, 0.5, 2000.0);
                    delay_ms = unit(rng) * window;
                    std::this_thread::sleep_until(ready + std::chrono::duration<double, std::milli>(delay_ms));
                    child.kill();
                    aimed = true;
                    after_ready = true;
                    rate_ms += delay_ms;
                    stats.min_delay_ms = std::min(stats.min_delay_ms, delay_ms);
                    stats.max_delay_ms = std::max(stats.max_delay_ms, delay_ms);
                }
            }
            const int status = child.wait();
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0) break;  // the backfill completed
            INFO(label << ": life " << stats.lives << ": the child " << describe(status));
            const bool killed_by_us = aimed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
            REQUIRE(killed_by_us);
            ++stats.kills;

            const committed_state state = inspect(log, models, Partitioning::partitioned);
            INFO(label << ": after kill " << stats.kills << " (" << delay_ms << " ms): " << state.problem);
            REQUIRE(state.problem.empty());
            REQUIRE(state.position >= before);  // a commit is never lost
            if (state.position > 0 && state.position < f.head) {
                ++stats.between;
                if (state.position > before) ++stats.mid_backfill;
            }
            if (after_ready) rate_events += static_cast<double>(state.position - before);
            before = state.position;
        }
        check_final<Partitioning>(f, log, models);
    }

    const double seconds = std::chrono::duration<double>(clock::now() - began).count();
    fmt::print(
        "crash [{}]: {} events over {} tickets, batch {}, kill seed {}: {} kills ({} mid-backfill with progress in "
        "the killed life, {} with 0 < checkpoint < head, {} aimed at start-up), {} child runs, {} round(s), delays "
        "after ready {:.2f}-{:.2f} ms, start-up ~{:.1f} ms, {:.1f} s\n",
        label, f.head, f.h.ids.size(), batch_size, kill_seed(), stats.kills, stats.mid_backfill, stats.between,
        stats.during_startup, stats.lives, stats.rounds, stats.min_delay_ms, stats.max_delay_ms, startup_ms, seconds);
    std::fflush(stdout);
    CHECK(stats.kills >= required);
    CHECK(stats.mid_backfill >= required);
}

}  // namespace crash

TEMPLATE_TEST_CASE("a backfill killed at random instants resumes to the reference read model, no event applied twice",
                   "[crash]", pj::global, pj::per_aggregate) {
    const std::uint64_t config = TestType::partitioned ? 2 : 0;
    SECTION("log and read model in one file") {
        crash::crash_and_resume<TestType>(false, config);
    }
    SECTION("log and read model in two files") {
        crash::crash_and_resume<TestType>(true, config + 1);
    }
    SECTION("a bulk backfill, killed while it applies and while it flushes") {
        crash::crash_and_resume<TestType>(true, config + 4, true);
    }
}

int main(int argc, char* argv[]) {
    if (argc >= 2 && std::string_view(argv[1]) == "--crash-child") return crash::child_main(argc, argv);
    return Catch::Session().run(argc, argv);
}
