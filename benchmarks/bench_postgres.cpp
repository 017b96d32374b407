// Comparison 6d, PostgreSQL: backfilling the tickets read model from a PostgreSQL event log.
//
// The history of the other comparisons (the memory_event_store filled by generate_history) is
// written once per process into a postgres_event_store's tables (one transaction, COPY), then:
//
//   runner       runner<pg_tickets, postgres_storage, global>: backfill()
//   libpq_loop   the same work by the same method, hand-written on plain libpq: the log read in
//                batches with the store's guard and statement, the rows of a batch's aggregate
//                ids read ahead by one = ANY SELECT and kept in a hash map (read-your-writes),
//                written at the end of the batch with the same multi-row unnest statements, then
//                the checkpoint UPDATE and COMMIT
//
// Each side writes into its own schema, dropped and created again before each repetition, so
// that every repetition starts from an empty read model. README.md ("6d. PostgreSQL backfill")
// says exactly which statements each side runs.

#include "bench_postgres.hpp"

#include <string>

#include <fmt/format.h>

#ifndef PROJECTIONIST_BENCH_POSTGRES

namespace bench {

void bench_postgres(const pj::memory_event_store&, const history_stats&, std::vector<comparison>&,
                    std::vector<extra>& data) {
    fmt::print("  6d. PostgreSQL: not built (libpq was not found when the benchmarks were configured)\n");
    data.push_back({"postgres", std::string("not built: libpq was not found at configure time")});
}

}  // namespace bench

#else

#include <libpq-fe.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include <boost/container_hash/hash.hpp>
#include <boost/mp11/algorithm.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include <projectionist/postgres.hpp>

#include "pg_client.hpp"

namespace bench {
namespace {

using mem_store = pj::memory_event_store;
using log_store = pj::postgres_event_store;

// ---- the projection -----------------------------------------------------------------------------

/// The tickets read model, exactly 6a's `sqlite_tickets` (its handlers are storage-generic): a
/// registration inserts the row; every other event reads the row with `find`, changes it with
/// the shared `apply` and writes it back with `upsert`.
struct pg_tickets : pj::projection<"bench_tickets", 1, ticket_stream, pj::exhaustive> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;

    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert(make_row(e)); }
    void on(const ticket_assigned& e, auto& ctx) { change(e, ctx); }
    void on(const ticket_prioritized& e, auto& ctx) { change(e, ctx); }
    void on(const ticket_commented& e, auto& ctx) { change(e, ctx); }
    void on(const ticket_closed& e, auto& ctx) { change(e, ctx); }
    void on(const ticket_reopened& e, auto& ctx) { change(e, ctx); }
    void on(const ticket_escalated& e, auto& ctx) { change(e, ctx); }
    void on(const ticket_tagged& e, auto& ctx) { change(e, ctx); }

    template <class E>
    static void change(const E& e, auto& ctx) {
        auto& table = ctx.table();
        if (std::optional<ticket_row> row = table.find(e.ticket_id)) {
            apply(e, *row);
            table.upsert(*row);
        }
    }
};
constexpr std::string_view model_table = pj::name_of<pg_tickets>;
static_assert(model_table == pg_model_table);

// ---- the hand-written side ------------------------------------------------------------------------

/// The hand-written backfill on plain libpq. One connection reads the log (the store's guard and
/// SELECT, prepared, binary results: log_reader), another writes the read model in its own
/// schema. Per batch: BEGIN; the rows of the batch's aggregate ids (each once) by ONE prepared
/// `SELECT ... WHERE "ticket_id" = ANY($1::text[])` (text results), kept in the batch's hash map
/// with the absence of the others, as the runner's table handle reads ahead; then for each event a
/// `switch` on its type and binary_codec::decode straight from the result: a registration puts
/// its row into the map as an insert; any other event applies to the row in the map and marks it
/// to upsert. At the end of the batch: the inserts in one `INSERT ... SELECT * FROM unnest(...) ON
/// CONFLICT DO NOTHING RETURNING key` (a missing key is a duplicate), the upserts in one `... ON
/// CONFLICT DO UPDATE`, the checkpoint UPDATE (compare and set), COMMIT; the map is cleared.
class libpq_backfill {
public:
    libpq_backfill(std::string url, log_store& store, const std::string& log_schema, std::string schema,
                   std::size_t batch_size)
        : url_(std::move(url)),
          schema_(std::move(schema)),
          batch_size_(batch_size),
          log_(url_),
          reader_(log_, store.connection().get(), log_schema, "bench") {
        // Type id -> the switch's case label, by stream and stored name, built once.
        const pq_result types =
            log_.query(fmt::format("SELECT id, stream, name FROM {}.projectionist_event_types", quote(log_schema)));
        for (int i = 0; i < types.rows(); ++i) {
            const auto id = static_cast<std::size_t>(types.int64(i, 0));
            if (id >= alternatives_.size()) alternatives_.resize(id + 1, no_alternative);
            boost::mp11::mp_for_each<ticket_events>([&](auto e) {
                using E = decltype(e);
                if (types.text(i, 1) == ticket_stream::name && types.text(i, 2) == pj::event_name_of<E>)
                    alternatives_[id] = alternative<E>;
            });
        }
    }

    /// A new connection and an empty schema with the runner's table and checkpoint row.
    void prepare() {
        model_.reset();
        model_ = std::make_unique<pq_conn>(url_);
        const pq_conn& m = *model_;
        m.exec(fmt::format("DROP SCHEMA IF EXISTS {0} CASCADE; CREATE SCHEMA {0}", quote(schema_)));
        m.exec(session_settings(schema_));
        m.exec(model_ddl);
        m.exec(checkpoint_ddl);
        m.exec(
            fmt::format("INSERT INTO projectionist_checkpoints(projection, position) VALUES ('{}', 0)", model_table));
        m.prepare("bench_find_many", find_many_sql);
        m.prepare("bench_insert", insert_sql);
        m.prepare("bench_upsert", upsert_sql);
        m.prepare("bench_checkpoint", checkpoint_sql);
        rows_.clear();
    }

    /// Backfills from position 0 to the end of the log; returns the number of events applied.
    std::uint64_t run() {
        const pq_conn& m = *model_;
        ++runs_;
        std::uint64_t after = 0;
        std::uint64_t applied = 0;
        for (;;) {
            const std::optional<pq_result> read = reader_.read(after, batch_size_);
            if (!read || read->rows() == 0) return applied;
            const pq_result& batch = *read;
            const int n = batch.rows();
            m.exec("BEGIN");
            read_ahead(batch);
            PGresult* r = batch.get();
            for (int i = 0; i < n; ++i) {
                const auto type = static_cast<std::size_t>(binary_int32(PQgetvalue(r, i, 1)));
                const std::string_view payload(PQgetvalue(r, i, 7), static_cast<std::size_t>(PQgetlength(r, i, 7)));
                apply_event(type < alternatives_.size() ? alternatives_[type] : no_alternative, payload);
            }
            const auto last = static_cast<std::uint64_t>(binary_int64(PQgetvalue(r, n - 1, 0)));
            flush();
            const checkpoint_move moved(model_table, after, last);
            const auto cp_params = moved.params();
            const pq_result cp =
                m.checked(PQexecPrepared(m.get(), "bench_checkpoint", 4, cp_params.data(), nullptr, nullptr, 0),
                          PGRES_COMMAND_OK, "checkpoint");
            if (std::strcmp(PQcmdTuples(cp.get()), "1") != 0)
                throw std::runtime_error("libpq loop: the checkpoint moved");
            m.exec("COMMIT");
            rows_.clear();
            after = last;
            applied += static_cast<std::uint64_t>(n);
        }
    }

    [[nodiscard]] const std::string& schema() const noexcept { return schema_; }
    [[nodiscard]] std::vector<int> backends() const { return {log_.backend_pid(), model_->backend_pid()}; }
    [[nodiscard]] const pq_conn& log_connection() const noexcept { return log_; }
    /// The SELECTs of a batch's rows run so far, and the keys they asked for (every run, timed or not).
    [[nodiscard]] std::uint64_t fetches() const noexcept { return fetches_; }
    [[nodiscard]] std::uint64_t keys_read() const noexcept { return keys_read_; }
    [[nodiscard]] std::uint64_t runs() const noexcept { return runs_; }

private:
    using state = row_state;
    using entry = row_entry;
    using key_hash = boost::hash<std::string>;
    using row_map = boost::unordered_flat_map<std::string, entry, key_hash>;

    void apply_event(std::uint8_t alt, std::string_view payload) {
        switch (alt) {
            case alternative<ticket_registered>: insert(pj::binary_codec::decode<ticket_registered>(payload)); break;
            case alternative<ticket_assigned>: change(pj::binary_codec::decode<ticket_assigned>(payload)); break;
            case alternative<ticket_prioritized>: change(pj::binary_codec::decode<ticket_prioritized>(payload)); break;
            case alternative<ticket_commented>: change(pj::binary_codec::decode<ticket_commented>(payload)); break;
            case alternative<ticket_closed>: change(pj::binary_codec::decode<ticket_closed>(payload)); break;
            case alternative<ticket_reopened>: change(pj::binary_codec::decode<ticket_reopened>(payload)); break;
            case alternative<ticket_escalated>: change(pj::binary_codec::decode<ticket_escalated>(payload)); break;
            case alternative<ticket_tagged>: change(pj::binary_codec::decode<ticket_tagged>(payload)); break;
            default: throw std::runtime_error("libpq loop: an event type that is not in the ticket stream");
        }
    }

    void insert(const ticket_registered& e) {
        auto it = rows_.find(e.ticket_id);
        if (it == rows_.end()) {
            rows_.emplace(e.ticket_id, entry{state::insert, make_row(e)});
        } else {
            if (it->second.kind != state::absent) throw std::runtime_error("libpq loop: duplicate key " + e.ticket_id);
            it->second = entry{state::insert, make_row(e)};
        }
    }

    template <class E>
    void change(const E& e) {
        const auto it = rows_.find(e.ticket_id);
        if (it == rows_.end()) throw std::runtime_error("libpq loop: an event whose key is not its aggregate id");
        entry& x = it->second;
        if (x.kind == state::absent) return;
        apply(e, x.row);
        if (x.kind == state::clean) x.kind = state::upsert;
    }

    /// The rows of the batch's aggregate ids (column 6 of the log's rows), each once, in one
    /// statement; the ids with no row are kept as absent.
    void read_ahead(const pq_result& batch) {
        keys_.assign(1, '{');
        std::size_t wanted = 0;
        for (int i = 0; i < batch.rows(); ++i) {
            const std::string_view id = batch.text(i, 6);
            if (!rows_.try_emplace(std::string(id), entry{state::absent, ticket_row{}}).second) continue;
            if (wanted++ != 0) keys_ += ',';
            append_quoted(keys_, id);
        }
        if (wanted == 0) return;
        keys_ += '}';
        ++fetches_;
        keys_read_ += wanted;
        const char* params[1] = {keys_.c_str()};
        keep_found_rows(
            model_->checked(PQexecPrepared(model_->get(), "bench_find_many", 1, params, nullptr, nullptr, 0),
                            PGRES_TUPLES_OK, "find many"),
            rows_);
    }

    /// The batch's inserts, then its upserts, each as one statement of column arrays.
    void flush() { writes_.write(rows_, *model_, "bench_insert", "bench_upsert", "libpq loop"); }

    std::string url_;
    std::string schema_;
    std::size_t batch_size_;
    pq_conn log_;
    log_reader reader_;
    std::unique_ptr<pq_conn> model_;
    std::vector<std::uint8_t> alternatives_;
    row_map rows_;
    batch_writes writes_;
    std::uint64_t fetches_ = 0;
    std::uint64_t keys_read_ = 0;
    std::uint64_t runs_ = 0;
    std::string keys_;  ///< the read-ahead's text array literal, its capacity kept
};

// ---- the runner's side ----------------------------------------------------------------------------

/// A runner over a new, empty schema per repetition (storage, session and runner are made again,
/// and init() run, outside the timed part).
class runner_side {
public:
    using runner_type = pj::runner<pg_tickets, pj::postgres_storage, pj::global>;

    runner_side(log_store& log, std::string url, std::string schema)
        : log_(&log), url_(std::move(url)), schema_(std::move(schema)) {}

    void prepare() {
        runner_.reset();
        storage_.reset();
        {
            const pq_conn admin(url_);
            admin.exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", quote(schema_)));
        }
        pj::postgres_options options;
        options.schema = schema_;
        storage_ = std::make_unique<pj::postgres_storage>(url_, options);
        // Batch mode: comparison 6 measures the per-batch path against loops that write per batch
        // (a backfill's default on a database is the bulk mode, measured in comparison 8).
        runner_ =
            std::make_unique<runner_type>(*log_, *storage_, pj::runner_options{.backfill = pj::backfill_mode::batch});
        runner_->init();
    }
    std::uint64_t run() { return runner_->backfill(); }

    [[nodiscard]] const std::string& schema() const noexcept { return schema_; }
    [[nodiscard]] runner_type& runner() { return *runner_; }
    /// The server processes this side's work runs in: the store's connection (the log), the
    /// runner's session (the batches) and the storage's own connection.
    [[nodiscard]] std::vector<int> backends() const {
        return {log_->connection().backend_pid(), PQbackendPID(runner_->session().raw()),
                storage_->connection().backend_pid()};
    }

private:
    log_store* log_;
    std::string url_;
    std::string schema_;
    std::unique_ptr<pj::postgres_storage> storage_;
    std::unique_ptr<runner_type> runner_;
};

// ---- the log ----------------------------------------------------------------------------------------

/// Reads the whole log back through the store and compares every record with the history:
/// position, aggregate, version, type, schema version, payload bytes.
void check_log(const mem_store& history, log_store& log) {
    const std::vector<std::uint8_t> alternatives = alternatives_of(history);
    mem_store::batch mem;
    log_store::batch pg;
    std::string payload;
    std::uint64_t after = 0;
    for (;;) {
        history.read(after, 20'000, mem);
        log.read(after, 20'000, pg);
        if (mem.size() != pg.size()) mismatch("6d. PostgreSQL: the log's length");
        if (mem.empty()) return;
        for (std::size_t i = 0; i < mem.size(); ++i) {
            const mem_store::record& m = *mem[i];
            const log_store::record& p = pg[i];
            const unsigned version = encode_payload(m, alternatives.at(m.type_id()), payload);
            if (p.position() != m.position() || p.aggregate_id() != m.aggregate_id() ||
                p.aggregate_number() != m.aggregate_number() || p.aggregate_version() != m.aggregate_version() ||
                p.type_name() != m.type_name() || p.stream() != m.stream() || p.payload() != payload ||
                p.schema_version() != version)
                mismatch(fmt::format("6d. PostgreSQL: the log's event at position {}", m.position()));
        }
        after = mem.back()->position();
    }
}

// ---- checking the results -----------------------------------------------------------------------------

/// What every side must have built: the in-memory rebuild of the same history.
std::uint64_t expected_digest(const mem_store& history) {
    const std::vector<std::uint8_t> alternatives = alternatives_of(history);
    std::unordered_map<std::string, ticket_row> rows;
    mem_store::batch batch;
    history.read(0, history.head(), batch);
    for (const mem_store::record* rec : batch)
        boost::mp11::mp_with_index<event_type_count>(alternatives.at(rec->type_id()), [&](auto I) {
            using E = boost::mp11::mp_at_c<ticket_events, decltype(I)::value>;
            const E& e = mem_store::event_of<E>(*rec);
            if constexpr (std::is_same_v<E, ticket_registered>) {
                ticket_row row = make_row(e);
                rows.emplace(row.ticket_id, std::move(row));
            } else {
                if (auto it = rows.find(e.ticket_id); it != rows.end()) apply(e, it->second);
            }
        });
    std::uint64_t d = rows.size();
    for (const auto& [key, row] : rows) d += digest(row);
    return d;
}

// ---- measuring: the thread's CPU time, the server processes' CPU time, wall time ----------------------

struct pg_side {
    std::string name;
    std::function<void()> prepare;
    std::function<std::uint64_t()> run;
    std::function<std::vector<int>()> backends;
};

struct pg_samples {
    samples s;                   ///< wall time and the thread's CPU time
    std::vector<double> server;  ///< CPU time of the side's server processes (empty if not local)
    std::vector<double> total;   ///< thread + server CPU time

    [[nodiscard]] double total_median() const { return median_of(total); }
    [[nodiscard]] double server_median() const { return median_of(server); }
};

/// measure_interleaved, plus the CPU time the side's server processes spent in each run.
std::vector<pg_samples> measure(const std::vector<pg_side>& sides, const measure_options& opt, bool local,
                                std::size_t events) {
    using clock = std::chrono::steady_clock;
    std::vector<pg_samples> out(sides.size());
    for (std::size_t i = 0; i < sides.size(); ++i) out[i].s.name = sides[i].name;
    for (unsigned w = 0; w < opt.warmup; ++w)
        for (const pg_side& side : sides) {
            side.prepare();
            if (side.run() != events) mismatch("6d. PostgreSQL: " + side.name + " applied count");
        }
    for (unsigned r = 0; r < opt.repetitions; ++r)
        for (std::size_t i = 0; i < sides.size(); ++i) {
            sides[i].prepare();
            const std::vector<int> pids = local ? sides[i].backends() : std::vector<int>{};
            const double server_start = local ? processes_cpu_seconds(pids) : 0;
            rusage usage_start{};
            getrusage(RUSAGE_THREAD, &usage_start);
            const cpu_times cpu_start = thread_cpu_seconds();
            const auto start = clock::now();
            const std::uint64_t applied = sides[i].run();
            const auto stop = clock::now();
            const cpu_times cpu_stop = thread_cpu_seconds();
            rusage usage_stop{};
            getrusage(RUSAGE_THREAD, &usage_stop);
            const double server_stop = local ? processes_cpu_seconds(pids) : 0;
            if (applied != events) mismatch("6d. PostgreSQL: " + sides[i].name + " applied count");
            const double thread = cpu_stop.total - cpu_start.total;
            out[i].s.seconds.push_back(std::chrono::duration<double>(stop - start).count());
            out[i].s.cpu_seconds.push_back(thread);
            out[i].s.sys_seconds.push_back(cpu_stop.system - cpu_start.system);
            if (local && server_start >= 0 && server_stop >= 0) {
                out[i].server.push_back(server_stop - server_start);
                out[i].total.push_back(thread + server_stop - server_start);
            }
            if (std::getenv("PROJECTIONIST_BENCH_PG_VERBOSE") != nullptr)
                fmt::print(
                    "      {:<12} #{} wall {:.0f} ms, thread CPU {:.0f} ms (system {:.0f}), server CPU {:.0f} ms; "
                    "thread: {} minor faults, {} voluntary and {} involuntary context switches\n",
                    sides[i].name, r, out[i].s.seconds.back() * 1e3, thread * 1e3, out[i].s.sys_seconds.back() * 1e3,
                    out[i].server.empty() ? -1.0 : out[i].server.back() * 1e3,
                    usage_stop.ru_minflt - usage_start.ru_minflt, usage_stop.ru_nvcsw - usage_start.ru_nvcsw,
                    usage_stop.ru_nivcsw - usage_start.ru_nivcsw);
            std::fflush(stdout);
        }
    return out;
}

}  // namespace

void bench_postgres(const mem_store& history, const history_stats& stats, std::vector<comparison>& out,
                    std::vector<extra>& data) {
    const std::string url = env_text("PROJECTIONIST_BENCH_PG_URL", "");
    if (url.empty()) {
        fmt::print("  6d. PostgreSQL: skipped, PROJECTIONIST_BENCH_PG_URL is not set (run.sh starts a server)\n");
        data.push_back({"postgres", std::string("skipped: no server (PROJECTIONIST_BENCH_PG_URL not set)")});
        return;
    }
    measure_options opt;
    opt.repetitions = static_cast<unsigned>(env_number("PROJECTIONIST_BENCH_PG_REPS", 5));
    opt.warmup = static_cast<unsigned>(env_number("PROJECTIONIST_BENCH_PG_WARMUP", 0));
    const std::size_t n = stats.events;
    const std::size_t batch_size = pj::runner_options{}.batch_size;
    const std::size_t batches = (n + batch_size - 1) / batch_size;

    const std::string stem = fmt::format("projectionist_bench_{}", ::getpid());
    const std::string log_schema = stem + "_log";
    const std::string runner_schema = stem + "_runner";
    const std::string libpq_schema = stem + "_libpq";
    const drop_schemas cleanup{url, {log_schema, runner_schema, libpq_schema}};

    const pq_conn admin(url);
    const pg_server server = probe_server(admin);

    // The log: written once, then only read.
    admin.exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", quote(log_schema)));
    pj::postgres_options log_options;
    log_options.schema = log_schema;
    log_store log(url, log_options);
    fmt::print("  6d. PostgreSQL ({}; {}): writing the history into schema {} ...\n",
               server.version.substr(0, server.version.find(" on ")), server.settings, log_schema);
    std::fflush(stdout);
    const log_timing written = write_log(history, url, log_schema, "6d. PostgreSQL");
    if (log.head() != n) mismatch("6d. PostgreSQL: the log's head");
    if (!log_aggregates_are(admin, log_schema, stats.aggregates, n)) mismatch("6d. PostgreSQL: the log's aggregates");
    const auto check_started = std::chrono::steady_clock::now();
    check_log(history, log);
    const double check_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - check_started).count();
    const pq_result size =
        admin.query(fmt::format("SELECT pg_total_relation_size('{0}.projectionist_events') / 1048576.0, "
                                "pg_total_relation_size('{0}.projectionist_aggregates') / 1048576.0",
                                quote(log_schema)));
    const double log_mb = std::stod(std::string(size.text(0, 0))) + std::stod(std::string(size.text(0, 1)));
    fmt::print(
        "     {} events in {:.1f} s (COPY in one transaction {:.1f} s, VACUUM ANALYZE {:.1f} s; {:.0f} MB), read back "
        "and checked in {:.1f} s. A schema per side, dropped and created again before each repetition; {} warm-up + "
        "{} repetitions per side; server CPU time {}\n",
        n, written.copy_s + written.vacuum_s, written.copy_s, written.vacuum_s, log_mb, check_s, opt.warmup,
        opt.repetitions, server.local ? "measured (local server)" : "not measured (not a local server)");
    std::fflush(stdout);

    runner_side runner(log, url, runner_schema);
    libpq_backfill loop(url, log, log_schema, libpq_schema, batch_size);
    // CHECKPOINT before every repetition, so that no side pays for the previous one's dirty pages
    // (needs superuser or pg_checkpoint; without it the repetitions run without).
    const auto checkpoint = [&] {
        if (server.can_checkpoint) admin.exec("CHECKPOINT");
    };
    const std::vector<pg_side> sides{
        {"runner",
         [&] {
             runner.prepare();
             checkpoint();
         },
         [&] { return runner.run(); }, [&] { return runner.backends(); }},
        {"libpq_loop",
         [&] {
             loop.prepare();
             checkpoint();
         },
         [&] { return loop.run(); }, [&] { return loop.backends(); }},
    };
    const std::vector<pg_samples> s = measure(sides, opt, server.local, n);

    // Both sides built the rows of the in-memory rebuild, and the checkpoint is at the head.
    const std::uint64_t expected = expected_digest(history);
    for (const std::string* schema : {&runner_schema, &libpq_schema}) {
        if (schema_digest(admin, *schema) != expected) mismatch("6d. PostgreSQL backfill: the rows in " + *schema);
        if (schema_checkpoint(admin, *schema) != static_cast<std::int64_t>(n))
            mismatch("6d. PostgreSQL backfill: the checkpoint in " + *schema);
    }
    if (table_shape(admin, runner_schema) != table_shape(admin, libpq_schema))
        mismatch("6d. PostgreSQL backfill: the libpq loop's table is not the one postgres_storage creates");
    // The loop's statements are the library's, character for character.
    {
        const std::set<std::string> session = prepared_on(runner.runner().session().raw());
        const std::set<std::string> reader = prepared_on(log.connection().get());
        for (const char* sql : {find_many_sql, insert_sql, upsert_sql, checkpoint_sql})
            if (!session.contains(sql))
                mismatch(fmt::format("6d. PostgreSQL backfill: the runner's session did not prepare: {}", sql));
        if (!reader.contains(read_sql(log_schema))) mismatch("6d. PostgreSQL backfill: the store's read statement");
    }

    fmt::print("  6d. PostgreSQL backfill (tickets read model, batches of {})\n", batch_size);
    for (const pg_samples& x : s)
        fmt::print(
            "    {:<12} wall median {:6.0f} ms ({:5.2f} us/event; min {:.0f}, max {:.0f}); CPU median: thread {:.0f} "
            "ms (system {:.0f}), server {:.0f} ms, both {:.0f} ms\n",
            x.s.name, x.s.median() * 1e3, x.s.median() * 1e6 / static_cast<double>(n), x.s.min() * 1e3, x.s.max() * 1e3,
            x.s.cpu_median() * 1e3, median_of(x.s.sys_seconds) * 1e3, x.server_median() * 1e3, x.total_median() * 1e3);
    std::fflush(stdout);

    const pg_samples& a = s[0];
    const pg_samples& b = s[1];
    const double ratio_wall = b.s.median() / a.s.median();
    const double ratio_thread = b.s.cpu_median() / a.s.cpu_median();
    const bool have_total = !a.total.empty() && !b.total.empty();
    const double ratio_total = have_total ? b.total_median() / a.total_median() : 0;
    // The ratio: CPU time of the thread and the side's server backends when the server is local
    // (the work, without the time spent waiting for one of the shared CPUs), else wall time.
    const double ratio = have_total ? ratio_total : ratio_wall;
    const auto eps = [&](const pg_samples& x) {
        return events_per_second(have_total ? x.total_median() : x.s.median(), n);
    };

    std::vector<extra> extras{
        {"batch_size", static_cast<double>(batch_size)},
        {"batches", static_cast<double>(batches)},
        {"server", server.version},
        {"server_settings", server.settings},
        {"schemas", std::string("a schema per side, dropped and created again before every repetition; CHECKPOINT "
                                "before every repetition")},
        {"warmup_runs", static_cast<double>(opt.warmup)},
        {"runs", static_cast<double>(opt.repetitions)},
        {"time", std::string(have_total ? "ratio from the medians of CPU time: the measuring thread's plus the side's "
                                          "server backends'; wall-time medians and ratio are given too"
                                        : "ratio from the medians of wall time (the server is not local, so its CPU "
                                          "time is not measured)")},
        {"ratio_wall", ratio_wall},
        {"ratio_wall_of_minimums", b.s.min() / a.s.min()},
        {"ratio_thread_cpu", ratio_thread},
        {"log_write_s", written.copy_s + written.vacuum_s},
        {"log_copy_s", written.copy_s},
        {"log_vacuum_analyze_s", written.vacuum_s},
        {"log_mb", log_mb},
        {"handlers", std::string("ticket.registered: insert; every other type: find, apply, upsert")},
        // Round trips of one backfill: one SELECT of a batch's rows per batch (the same on both
        // sides), plus a handful more per batch.
        {"row_selects_per_backfill", static_cast<double>(loop.fetches()) / static_cast<double>(loop.runs())},
        {"keys_read_per_backfill", static_cast<double>(loop.keys_read()) / static_cast<double>(loop.runs())},
    };
    if (have_total) {
        extras.push_back({"ratio_cpu_thread_plus_server", ratio_total});
        const auto least = [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); };
        extras.push_back({"ratio_cpu_of_minimums", least(b.total) / least(a.total)});
    }
    for (const pg_samples& x : s) {
        extras.push_back({x.s.name + "_events_per_s", eps(x)});
        extras.push_back({x.s.name + "_events_per_s_wall", events_per_second(x.s.median(), n)});
        extras.push_back({x.s.name + "_wall_median_ms", x.s.median() * 1e3});
        extras.push_back({x.s.name + "_wall_min_ms", x.s.min() * 1e3});
        extras.push_back({x.s.name + "_wall_max_ms", x.s.max() * 1e3});
        extras.push_back({x.s.name + "_thread_cpu_median_ms", x.s.cpu_median() * 1e3});
        extras.push_back({x.s.name + "_thread_cpu_system_median_ms", median_of(x.s.sys_seconds) * 1e3});
        if (have_total) {
            extras.push_back({x.s.name + "_server_cpu_median_ms", x.server_median() * 1e3});
            extras.push_back({x.s.name + "_cpu_thread_plus_server_median_ms", x.total_median() * 1e3});
        }
    }
    const std::string summary =
        have_total ? fmt::format(
                         "runner {}ev/s, libpq loop {}ev/s (CPU: thread + server); wall: {:.1f} s vs {:.1f} s "
                         "(ratio {:.3f})",
                         si(eps(a)), si(eps(b)), a.s.median(), b.s.median(), ratio_wall)
                   : fmt::format("runner {}ev/s, libpq loop {}ev/s (wall)", si(eps(a)), si(eps(b)));
    out.push_back(comparison{"6d. PostgreSQL backfill: runner / libpq loop (events/s)", ratio, ">= 0.8", ratio >= 0.8,
                             summary, std::move(extras)});

    data.push_back({"postgres_log_write_s", written.copy_s + written.vacuum_s});
    data.push_back({"postgres_log_mb", log_mb});
    data.push_back({"postgres_log_written", std::string("one transaction: types and aggregates in first-appearance "
                                                        "order, events by COPY (binary); then VACUUM (ANALYZE)")});
    data.push_back({"postgres_server", server.version});
    data.push_back({"postgres_settings", server.settings});
    data.push_back({"postgres_runs", static_cast<double>(opt.repetitions)});
    data.push_back({"postgres_warmup_runs", static_cast<double>(opt.warmup)});
}

}  // namespace bench

#endif  // PROJECTIONIST_BENCH_POSTGRES
