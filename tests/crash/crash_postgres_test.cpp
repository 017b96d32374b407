// The crash test on PostgreSQL (labels `crash` and `postgres`): a child process backfills a large
// tickets history from a PostgreSQL log into a PostgreSQL read model and is killed with SIGKILL at
// random instants; after each kill it is started again and resumes from what it committed.
// Bulk backfills run with a memory budget of a few hundred rows, so that they flush (by COPY, into
// the table and through its staging table once rows were evicted) many times, and some kills are
// aimed at a flush: the parent watches the server (pg_stat_activity) for the child's write
// transaction and kills the child while it is still open. Batch-mode backfills are killed too.
// Checked, as in crash_test.cpp:
//   - after every kill, once the server has ended the child's sessions, in one snapshot: every
//     row's apply counter equals the number of its aggregate's events up to the committed
//     checkpoint (and, per aggregate, the committed aggregate position);
//   - at the end: the table equals an in-memory reference rebuild row for row, every apply
//     counter equals its aggregate's number of events (nothing applied twice or skipped), the
//     per-aggregate positions equal the aggregates' versions, and every index of the schema is valid.
// Bulk backfills in both partitioning modes, global with the log in a schema of its own (one log
// for every round), per aggregate with the log in the read model's schema (the history written
// into it for each round); a batch-mode backfill per aggregate; a per-aggregate bulk backfill in
// passes by aggregate (log in a schema of its own), whose committed state is checked against the
// aggregates' positions, since its checkpoint waits for the oldest pass still to run. (Batch-mode
// workers killed on PostgreSQL: tests/failover.)
//
// The same program is the child when started as `<program> --crash-child-postgres ...`.
//
// Environment:
//   PROJECTIONIST_CRASH_KILLS  kills that must land mid-backfill, per configuration (default 8)
//   PROJECTIONIST_CRASH_SEED   seed of the kill instants (default: random, printed)
//   PROJECTIONIST_PG_URL       the server (default: the one the ctest fixture `postgres` started)

#include <catch2/catch.hpp>

#include <child_entry.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <crash_support.hpp>
#include <postgres_test_support.hpp>
#include <projectionist/postgres.hpp>

namespace crash_postgres_test {

namespace pj = projectionist;

// This file's part of the crash tests; what they share is ::crash (crash_support.hpp).
namespace crash {
using namespace ::crash;

/// The kills per configuration unless PROJECTIONIST_CRASH_KILLS says otherwise: fewer than on
/// SQLite, whose children start faster.
constexpr std::uint64_t default_kills = 8;

/// A bulk backfill's memory budget: a few hundred rows of the read model's 1500, so that a life
/// flushes (and evicts) every few read batches.
constexpr std::size_t bulk_budget = std::size_t{64} << 10;

// ---- the child -----------------------------------------------------------------------------------

/// How a child backfills: in batches, or in bulk with a small memory budget (so that kills land in
/// the apply phase and in flushes, and every life can make progress).
/// `passes`: per aggregate in passes by aggregate, under the same budget.
pj::runner_options child_options(bool bulk, bool passes = false) {
    if (!bulk) return {.batch_size = batch_size, .backfill = pj::backfill_mode::batch};
    return {.batch_size = batch_size,
            .backfill = pj::backfill_mode::bulk,
            .bulk_memory_budget = bulk_budget,
            .bulk_read_size = batch_size,
            .bulk_passes_by_aggregate = passes};
}

inline pj::postgres_options in_schema(const std::string& schema) {
    pj::postgres_options o;
    o.schema = schema;
    return o;
}

template <class Partitioning>
int child_backfill(const std::string& url, const std::string& log, const std::string& models, int ready_fd, bool bulk,
                   bool passes = false) {
    pj::postgres_event_store store(url, in_schema(log));
    pj::postgres_storage storage(url, in_schema(models));
    pj::runner<counted_tickets, pj::postgres_storage, pj::postgres_event_store, Partitioning> r(
        store, storage, child_options(bulk, passes));
    if (!tell_ready(ready_fd)) return 3;
    return backfill_to_head(r, store, bulk);
}

/// `<program> --crash-child-postgres <global|per_aggregate>[-bulk] <url> <log schema> <models schema> <ready fd>`,
/// or `per_aggregate-passes` for a bulk backfill in passes by aggregate.
int child_main(int argc, char** argv) {
    if (argc != 7) {
        std::fprintf(stderr, "crash_postgres child: expected 5 arguments, got %d\n", argc - 2);
        return 2;
    }
    const std::string mode = argv[2];
    const int ready_fd = std::atoi(argv[6]);
    try {
        if (mode == "per_aggregate-passes")
            return child_backfill<pj::per_aggregate>(argv[3], argv[4], argv[5], ready_fd, true, true);
        const auto [partitioning, bulk] = parse_mode(mode);
        if (partitioning == "global") return child_backfill<pj::global>(argv[3], argv[4], argv[5], ready_fd, bulk);
        if (partitioning == "per_aggregate")
            return child_backfill<pj::per_aggregate>(argv[3], argv[4], argv[5], ready_fd, bulk);
        std::fprintf(stderr, "crash_postgres child: unknown mode '%s'\n", mode.c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "crash_postgres child (%s): %s\n", mode.c_str(), e.what());
    }
    return 2;
}

// ---- the parent's side -----------------------------------------------------------------------------

using pj::detail::pg::quote;

/// Writes the history into the log of `schema`, in batch appends.
inline void write_history(const std::string& schema, const history& h) {
    pj::postgres_event_store store(postgres_test::pg_url(), in_schema(schema));
    append_history_in_batches(store, h, 5000);
}

/// The history, its reference rebuild in memory, a log every two-schema round reads, and a
/// connection for looking at the server.
struct fixture {
    static constexpr std::uint64_t history_seed = 20240611;
    static constexpr std::size_t tickets = 1500;

    history h = make_history(tickets, history_seed);
    reference ref;
    postgres_test::scoped_schema log{"pj_crash_log"};
    pj::detail::pg::connection db = postgres_test::raw_connection();

    fixture() {
        const auto began = std::chrono::steady_clock::now();
        write_history(log.name(), h);
        ref = rebuild_in_memory(h);
        fmt::print(
            "crash postgres: history of {} events over {} tickets (seed {}) written to PostgreSQL and rebuilt in "
            "memory in {:.1f} s; kills must land mid-backfill {} times per configuration "
            "(PROJECTIONIST_CRASH_KILLS)\n",
            ref.head, h.ids.size(), history_seed,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count(),
            required_kills(default_kills));
        std::fflush(stdout);
    }

    [[nodiscard]] std::int64_t scalar(const std::string& sql) const { return postgres_test::scalar(db, sql); }

    static fixture& get() {
        static fixture f;
        return f;
    }
};

/// One round: a schema of its own for the read model, which holds a copy of the history too in
/// the one-schema layout. Each life of a child has an application name of its own, by which the
/// parent finds its sessions on the server.
template <class Partitioning>
struct pg_round {
    fixture& f;
    std::string mode;
    postgres_test::scoped_schema models{"pj_crash_models"};
    std::string log_schema;
    std::string app;  ///< the application name of the current life's sessions

    pg_round(fixture& fx, std::string child_mode, bool one_schema) : f(fx), mode(std::move(child_mode)) {
        log_schema = one_schema ? models.name() : f.log.name();
        if (one_schema) write_history(log_schema, f.h);
    }

    [[nodiscard]] std::vector<std::string> child_args(std::uint64_t life) {
        app = fmt::format("pj_crash_{}_{}", ::getpid(), life);
        const std::string url = postgres_test::pg_url();
        return {"--crash-child-postgres", mode,
                url + (url.find('?') == std::string::npos ? "?" : "&") + "application_name=" + app, log_schema,
                models.name()};
    }

    /// Whether the current life has a write transaction open other than a catalog change (init,
    /// a state change): in a bulk backfill that resumed from a flush, a flush's transaction.
    [[nodiscard]] bool flushing() const {
        return f.scalar(fmt::format("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE application_name = '{}' "
                                    "AND backend_xid IS NOT NULL AND query NOT LIKE '%projectionist_catalog%'",
                                    app)) > 0;
    }

    /// Waits until the server has ended the killed life's sessions: a transaction it had open is
    /// then rolled back, or committed if its COMMIT had reached the server.
    void wait_sessions_gone() const {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (f.scalar(fmt::format("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE application_name = '{}'",
                                    app)) > 0) {
            if (std::chrono::steady_clock::now() > deadline)
                throw std::runtime_error("the server did not end the sessions of " + app + " within 60 s");
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    }

    /// Reads the committed checkpoint and checks that the committed rows agree with it, in one
    /// snapshot.
    committed_state read_committed() const {
        committed_state out;
        const std::string m = models.quoted();
        const std::string l = quote(log_schema);
        f.db.exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
        try {
            const auto has = [&](std::string_view table) {
                return f.scalar(fmt::format("SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = '{}' AND "
                                            "tablename = '{}'",
                                            models.name(), table)) > 0;
            };
            if (has("projectionist_checkpoints"))
                out.position = static_cast<std::uint64_t>(
                    f.scalar(fmt::format("SELECT coalesce((SELECT position FROM {}.projectionist_checkpoints WHERE "
                                         "projection = '{}'), 0)",
                                         m, table_name)));
            const auto cp = static_cast<std::int64_t>(out.position);
            if (!has(table_name)) {
                if (cp != 0) out.problem = fmt::format("checkpoint {} but no table {}", cp, table_name);
            } else {
                relations names;
                names.table = m + "." + quote(std::string(table_name));
                names.events = l + ".projectionist_events";
                names.aggregates = l + ".projectionist_aggregates";
                names.aggregate_positions = m + ".projectionist_aggregate_checkpoints";
                const auto scalar = [&](const std::string& sql) { return f.scalar(sql); };
                if (mode.ends_with("-passes")) {
                    // The state's position: the events applied and committed (see passes_problem).
                    auto [applied, problem] = passes_problem(scalar, names, cp);
                    out.position = static_cast<std::uint64_t>(applied);
                    out.problem = std::move(problem);
                } else {
                    out.problem = committed_problem(scalar, names, cp, Partitioning::partitioned);
                }
            }
        } catch (...) {
            f.db.exec("ROLLBACK");
            throw;
        }
        f.db.exec("COMMIT");
        return out;
    }

    [[nodiscard]] committed_state inspect() const {
        wait_sessions_gone();
        return read_committed();
    }

    /// Final checks of a completed backfill.
    void check_final() const {
        INFO("log schema " << log_schema << ", read model schema " << models.name());
        const committed_state state = read_committed();
        {
            INFO(state.problem);
            CHECK(state.problem.empty());
        }
        CHECK(state.position == f.ref.head);
        CHECK(f.scalar(fmt::format(
                  "SELECT count(*) FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class x ON x.oid = i.indexrelid JOIN "
                  "pg_catalog.pg_namespace n ON n.oid = x.relnamespace WHERE n.nspname = '{}' AND NOT (i.indisvalid "
                  "AND i.indisready AND i.indislive)",
                  models.name())) == 0);

        // What a runner opening the schemas sees: the reference rows, done, and per aggregate
        // every version applied.
        pj::postgres_event_store store(postgres_test::pg_url(), in_schema(log_schema));
        pj::postgres_storage storage(postgres_test::pg_url(), models.options());
        pj::runner<counted_tickets, pj::postgres_storage, pj::postgres_event_store, Partitioning> r(store, storage);
        check_completed<Partitioning>(rows_of(storage), r, f.h, f.ref);
    }
};

/// Backfills in child processes killed at random instants until the required kills landed
/// mid-backfill; each round starts from a fresh read model and ends with a complete backfill (a
/// child that exits 0 by itself) and the final checks.
template <class Partitioning>
void crash_and_resume(bool one_schema, bool bulk, std::uint64_t config, bool passes = false) {
    fixture& f = fixture::get();
    const std::string mode = std::string(Partitioning::name) + (passes ? "-passes" : bulk ? "-bulk" : "");
    crash_plan plan;
    plan.label = fmt::format("postgres, {}, {}", mode, one_schema ? "one schema" : "two schemas");
    plan.head = f.ref.head;
    plan.config = config;
    plan.required = required_kills(default_kills);
    plan.aim_at_flushes = bulk;
    plan.initial_window_ms = 100;  // a child's first commit comes a few hundred events in
    const run_stats stats =
        ::crash::crash_and_resume(plan, [&] { return pg_round<Partitioning>(f, mode, one_schema); });
    if (bulk) CHECK(stats.during_flush > 0);
}

}  // namespace crash

TEMPLATE_TEST_CASE(
    "a PostgreSQL bulk backfill killed at random instants, in its flushes too, resumes to the "
    "reference read model, no event applied twice",
    "[crash][postgres][bulk]", pj::global, pj::per_aggregate) {
    // Global with the log in a schema of its own, per aggregate with the log in the read model's.
    crash::crash_and_resume<TestType>(TestType::partitioned, true, TestType::partitioned ? 11 : 10);
}

TEST_CASE(
    "a PostgreSQL backfill in batch mode killed at random instants resumes to the reference read model, no "
    "event applied twice",
    "[crash][postgres][batch]") {
    crash::crash_and_resume<pj::per_aggregate>(false, false, 12);
}

TEST_CASE(
    "a PostgreSQL bulk backfill in passes by aggregate killed at random instants, in its flushes too, resumes to "
    "the reference read model, no event applied twice",
    "[crash][postgres][bulk]") {
    crash::crash_and_resume<pj::per_aggregate>(false, true, 13, true);
}

const child_entries::entry child{"--crash-child-postgres", crash::child_main};

}  // namespace crash_postgres_test
