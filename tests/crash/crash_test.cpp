// The crash test (label `crash`): a child process backfills a large tickets history from a SQLite
// log into a SQLite read model and is killed with SIGKILL at random instants; after each kill it
// is started again and resumes from what it committed. Checked:
//   - after every kill, in the file as the kill left it: every row's apply counter equals the
//     number of its aggregate's events up to the committed checkpoint (and, per aggregate, the
//     committed aggregate position), so rows and checkpoints always commit together;
//   - at the end: the table equals an in-memory reference rebuild row for row, every apply
//     counter equals its aggregate's number of events (nothing applied twice or skipped), the
//     per-aggregate positions equal the aggregates' versions, and PRAGMA integrity_check is ok.
// Both partitioning modes; the log and the read model in one file, and in two files; bulk
// backfills; per aggregate, a bulk backfill in passes by aggregate, whose checkpoint waits for the
// oldest pass still to run: after every kill its rows must agree with the committed aggregate
// positions, and no aggregate may be behind the checkpoint.
//
// The same program is the child when started as `<program> --crash-child-sqlite ...`.
//
// Environment:
//   PROJECTIONIST_CRASH_KILLS  kills that must land mid-backfill, per configuration (default 20)
//   PROJECTIONIST_CRASH_SEED   seed of the kill instants (default: random, printed)

#include <catch2/catch.hpp>

#include <child_entry.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <crash_support.hpp>
#include <projectionist/sqlite.hpp>
#include <sqlite_test_support.hpp>

namespace crash_test {

namespace pj = projectionist;

// This file's part of the crash tests; what they share is ::crash (crash_support.hpp).
namespace crash {
using namespace ::crash;

// ---- the history ---------------------------------------------------------------------------------

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

// ---- the child -----------------------------------------------------------------------------------

/// A budget of about a quarter of the read model's rows in the row store: the history's 3000
/// tickets in passes by aggregate.
constexpr std::size_t passes_budget = 120'000;

/// How a child backfills: in batches, or in bulk with a flush every few hundred events (so that
/// kills land in the apply phase and in flushes, and every life can make progress); `passes`:
/// per aggregate in passes by aggregate, under a budget that splits the first pass several times.
pj::runner_options child_options(bool bulk, bool passes) {
    if (!bulk) return {.batch_size = batch_size, .backfill = pj::backfill_mode::batch};
    if (passes)
        return {.batch_size = batch_size,
                .backfill = pj::backfill_mode::bulk,
                .bulk_memory_budget = passes_budget,
                .bulk_read_size = batch_size,
                .bulk_passes_by_aggregate = true};
    return {.batch_size = batch_size,
            .backfill = pj::backfill_mode::bulk,
            .bulk_read_size = batch_size,
            .bulk_flush_every = 4 * batch_size};
}

template <class Partitioning>
int child_backfill(const std::string& log, const std::string& models, int ready_fd, bool bulk, bool passes) {
    pj::sqlite_event_store store(log);
    // A small log limit folds the per-aggregate position log often, so that kills land in folds.
    pj::sqlite_options options;
    options.aggregate_position_log_limit = 256;
    pj::sqlite_storage storage(models, options);
    pj::runner<counted_tickets, pj::sqlite_storage, Partitioning> r(store, storage, child_options(bulk, passes));
    if (!tell_ready(ready_fd)) return 3;
    return backfill_to_head(r, store, bulk);
}

/// `<program> --crash-child-sqlite <global|per_aggregate>[-bulk] <log db> <models db> <ready fd>`,
/// or `per_aggregate-passes` for a bulk backfill in passes by aggregate.
int child_main(int argc, char** argv) {
    if (argc != 6) {
        std::fprintf(stderr, "crash_test child: expected 4 arguments, got %d\n", argc - 2);
        return 2;
    }
    const std::string mode = argv[2];
    const int ready_fd = std::atoi(argv[5]);
    try {
        if (mode == "per_aggregate-passes")
            return child_backfill<pj::per_aggregate>(argv[3], argv[4], ready_fd, true, true);
        const auto [partitioning, bulk] = parse_mode(mode);
        if (partitioning == "global") return child_backfill<pj::global>(argv[3], argv[4], ready_fd, bulk, false);
        if (partitioning == "per_aggregate")
            return child_backfill<pj::per_aggregate>(argv[3], argv[4], ready_fd, bulk, false);
        std::fprintf(stderr, "crash_test child: unknown mode '%s'\n", mode.c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "crash_test child (%s): %s\n", mode.c_str(), e.what());
    }
    return 2;
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

    std::int64_t scalar(const std::string& sql) {
        statement s(db, sql);
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

/// Reads the committed checkpoint and checks that the committed rows agree with it: every row's
/// apply counter equals its aggregate's number of events at or before the checkpoint (and, per
/// aggregate, the committed aggregate position), and exactly the aggregates seen have a row.
/// `passes`: see passes_problem; the state's position is then the events applied and committed.
inline committed_state inspect(const std::string& log, const std::string& models, bool partitioned,
                               bool passes = false) {
    committed_state out;
    if (!std::filesystem::exists(models)) return out;  // killed before the file was created
    inspector in(log, models);
    out.position = in.checkpoint();
    const auto cp = static_cast<std::int64_t>(out.position);
    if (!in.has_table(std::string(table_name))) {
        if (cp != 0) out.problem = fmt::format("checkpoint {} but no table {}", cp, table_name);
        return out;
    }
    relations names;
    names.table = fmt::format("main.{}", table_name);
    names.events = in.events + "projectionist_events";
    names.aggregates = in.events + "projectionist_aggregates";
    names.aggregate_positions = "main.projectionist_aggregate_positions";
    if (passes) {
        auto [applied, problem] = passes_problem([&](const std::string& sql) { return in.scalar(sql); }, names, cp);
        out.position = static_cast<std::uint64_t>(applied);
        out.problem = std::move(problem);
        return out;
    }
    out.problem = committed_problem([&](const std::string& sql) { return in.scalar(sql); }, names, cp, partitioned);
    return out;
}

// ---- the parent's side: the run ---------------------------------------------------------------------

/// The history, its reference rebuild in memory, and the log written once into a file that
/// every configuration copies.
struct fixture {
    static constexpr std::uint64_t history_seed = 20240611;
    static constexpr std::size_t tickets = 3000;

    sqlite_test::temp_dir dir;
    history h = make_history(tickets, history_seed);
    std::string pristine = dir.file("history.db");
    reference ref;

    fixture() {
        const auto began = std::chrono::steady_clock::now();
        write_history(pristine, h);
        ref = rebuild_in_memory(h);
        fmt::print(
            "crash: history of {} events over {} tickets (seed {}) written to SQLite and rebuilt in memory in "
            "{:.1f} s; kills must land mid-backfill {} times per configuration (PROJECTIONIST_CRASH_KILLS)\n",
            ref.head, h.ids.size(), history_seed,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count(), required_kills());
        std::fflush(stdout);
    }

    static fixture& get() {
        static fixture f;
        return f;
    }
};

/// One round: a fresh copy of the history, and the read model in it or in a file of its own.
template <class Partitioning>
struct sqlite_round {
    const fixture& f;
    std::string mode;
    sqlite_test::temp_dir dir;
    std::string log = dir.file("log.db");
    std::string models;

    sqlite_round(const fixture& fx, std::string child_mode, bool two_files)
        : f(fx), mode(std::move(child_mode)), models(two_files ? dir.file("models.db") : log) {
        std::filesystem::copy_file(f.pristine, log);
    }

    [[nodiscard]] std::vector<std::string> child_args(std::uint64_t /*life*/) const {
        return {"--crash-child-sqlite", mode, log, models};
    }

    [[nodiscard]] committed_state inspect() const {
        return crash::inspect(log, models, Partitioning::partitioned, mode.ends_with("-passes"));
    }

    /// Final checks of a completed backfill.
    void check_final() const {
        INFO("log " << log << ", read model " << models);
        CHECK(sqlite_test::integrity_ok(log));
        if (models != log) CHECK(sqlite_test::integrity_ok(models));

        const committed_state state = inspect();
        {
            INFO(state.problem);
            CHECK(state.problem.empty());
        }
        CHECK(state.position == f.ref.head);

        // What a runner opening the files sees: the reference rows, done, and per aggregate every
        // version applied.
        pj::sqlite_event_store store(log);
        pj::sqlite_storage storage(models);
        pj::runner<counted_tickets, pj::sqlite_storage, Partitioning> r(store, storage);
        check_completed<Partitioning>(rows_of(storage), r, f.h, f.ref);
        if constexpr (Partitioning::partitioned) {
            // The children replaced the position log by snapshots along the way: a batch's row holds
            // at most batch_size positions, a snapshot every tracked aggregate's.
            pj::detail::sqlite::statement widest(storage.connection(),
                                                 "SELECT max(entries) FROM projectionist_aggregate_position_log");
            REQUIRE(widest.step());
            CHECK(widest.int64(0) > static_cast<std::int64_t>(batch_size));
        }
        if (mode.ends_with("-passes")) {
            // The children's options split the first pass: a backfill of the whole history with
            // them, in this process, runs later passes and builds the same rows.
            pj::sqlite_storage fresh(dir.file("fresh.db"));
            pj::runner<counted_tickets, pj::sqlite_storage, Partitioning> whole(store, fresh,
                                                                                child_options(true, true));
            whole.backfill();
            CHECK(whole.status().bulk_passes >= 2);
            CHECK(rows_of(fresh) == rows_of(storage));
        }
    }
};

/// Backfills in child processes killed at random instants until the required kills landed
/// mid-backfill; each round starts from a fresh copy of the history and ends with a complete
/// backfill (a child that exits 0 by itself) and the final checks.
template <class Partitioning>
void crash_and_resume(bool two_files, std::uint64_t config, bool bulk = false, bool passes = false) {
    const fixture& f = fixture::get();
    const std::string mode = std::string(Partitioning::name) + (passes ? "-passes" : bulk ? "-bulk" : "");
    crash_plan plan;
    plan.label = fmt::format("{}, {}", mode, two_files ? "two files" : "one file");
    plan.head = f.ref.head;
    plan.config = config;
    plan.required = required_kills();
    ::crash::crash_and_resume(plan, [&] { return sqlite_round<Partitioning>(f, mode, two_files); });
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
    if constexpr (TestType::partitioned) {
        SECTION("a bulk backfill in passes by aggregate, its checkpoint behind the finished passes") {
            crash::crash_and_resume<TestType>(true, config + 6, true, true);
        }
    }
}

const child_entries::entry child{"--crash-child-sqlite", crash::child_main};

}  // namespace crash_test
