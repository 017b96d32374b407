// Comparisons 8b, 8c, 8d and 8e, PostgreSQL: the bulk backfill against its baselines, under a
// memory budget and at scale, and the live path.
//
// The history of the other comparisons is written once into a PostgreSQL log of this group's
// own (COPY, one transaction), then each side writes into its own schema, dropped and created
// again before every repetition:
//
//   8b (group "bulk"):
//   runner_batch    runner<bulk_tickets, postgres_storage, global>: backfill() (today's path)
//   sequent_loop    the best hand-written method: the log read through one server-side cursor
//                   (FETCH of 50,000 rows, binary results), binary_codec, the rows built in a
//                   boost::unordered_flat_map, then the final rows in key order by one binary
//                   COPY and the checkpoint, in ONE transaction
//   read_only_scan  the loop's read and decode alone
//   insert_only     the loop's COPY (and checkpoint) alone, of the final rows built beforehand
//   per_row_loop    8e's per_key_loop from position 0 (batches of 1000, one SELECT per key a
//                   batch reads): the per-row batch mode that 8b's 30x was set against
//
//   8e (group "pg_live"): the read model at head - 10,000 (copied in, untimed), then the last
//   10,000 events:
//   runner_batch    runner<...>::catch_up(), batches of 1000: the rows a batch reads by one = ANY
//   any_loop        by hand, batches of 1000: one SELECT ... WHERE key = ANY($1) per batch for
//                   every key the batch reads, then the runner's multi-row writes
//   per_key_loop    the same loop with one SELECT ... WHERE key = $1 per key the batch reads: the
//                   per-row path the runner's batch mode had before it read a batch's rows in one
//                   query (8e's target is 10x its events/s)
//   memory_loop     the same loop with every row of the read model held in its memory from the
//                   start: no read of rows at all, only the log's read and the batch's writes
//                   (the floor of a catch-up that writes its rows to this server)
//
//   8d (group "bulk"): a larger history in a log schema of its own; the bulk runner (a process
//   of its own) and the Sequent loop over the 8b log and over the large one, interleaved.
//
// Adding a side (the library's bulk mode) is one more element of a `sides` vector below.

#include <string>

#include <fmt/format.h>

#include "bench_bulk.hpp"

#ifndef PROJECTIONIST_BENCH_POSTGRES

namespace bench {

void bench_bulk_postgres(const pj::memory_event_store&, const history_stats&, const bulk_options&,
                         std::vector<comparison>&, std::vector<extra>& data) {
    fmt::print("  8b/8e. PostgreSQL: not built (libpq was not found when the benchmarks were configured)\n");
    data.push_back({"bulk_postgres", std::string("not built: libpq was not found at configure time")});
}

}  // namespace bench

#else

#include <libpq-fe.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <boost/mp11/algorithm.hpp>

#include <projectionist/postgres.hpp>

#include "pg_client.hpp"

namespace bench {
namespace {

using mem_store = pj::memory_event_store;
using log_store = pj::postgres_event_store;

// ---- the statements of this group (the read model's others: pg_client.hpp) ------------------------

#define BULK_COLUMNS \
    R"("ticket_id", "type", "status", "assignee", "last_tag", "priority", "comments", "reopened", "escalation")"
constexpr const char* copy_sql = R"(COPY "bench_tickets_v1" ()" BULK_COLUMNS R"() FROM STDIN (FORMAT binary))";
#undef BULK_COLUMNS
static_assert(bulk_model_table == pg_model_table);

/// 8e: what a session that has served for a while holds, given to a new one before the timed
/// part: the read model's heap and index pages mapped into its process, and the table's caches.
/// Each side runs it on the connection it then catches up on (a live runner's session is a
/// long-lived one; a new backend pays first-touch page faults on every shared buffer it reads).
void warm_session(PGconn* c, const std::string& schema) {
    const std::string table = quote(schema) + R"(."bench_tickets_v1")";
    for (const std::string& sql :
         {fmt::format("SELECT sum(priority) FROM {}", table),
          fmt::format(R"(SELECT count(*) FROM {} WHERE "ticket_id" >= '' AND "priority" >= 0)", table)}) {
        PGresult* r = PQexec(c, sql.c_str());
        const bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        const std::string message = ok ? std::string() : PQresultErrorMessage(r);
        PQclear(r);
        if (!ok) throw std::runtime_error("8e: warming the session: " + message);
    }
}

/// A new, empty schema with the read model's table and the checkpoint row at `position`.
void create_model(const pq_conn& m, const std::string& schema, std::uint64_t position) {
    m.exec(fmt::format("DROP SCHEMA IF EXISTS {0} CASCADE; CREATE SCHEMA {0}", quote(schema)));
    m.exec(session_settings(schema));
    m.exec(model_ddl);
    m.exec(checkpoint_ddl);
    m.exec(fmt::format("INSERT INTO projectionist_checkpoints(projection, position) VALUES ('{}', {})",
                       bulk_model_table, position));
}

/// The rows, in key order, by one binary COPY into the read model's table (on the search path).
void copy_rows(const pq_conn& m, const std::vector<const ticket_row*>& sorted) {
    copy_in(m, copy_sql, [&](std::string& out, auto&& flush) {
        for (const ticket_row* r : sorted) {
            put_be<std::int16_t>(out, 9);
            field(out, r->ticket_id);
            field(out, r->type);
            field(out, r->status);
            field(out, r->assignee);
            field(out, r->last_tag);
            field32(out, r->priority);
            field32(out, r->comments);
            field32(out, r->reopened);
            field32(out, r->escalation);
            flush();
        }
    });
}

/// The checkpoint, compare and set, in the open transaction.
void move_checkpoint(const pq_conn& m, std::uint64_t from, std::uint64_t to) {
    const checkpoint_move moved(bulk_model_table, from, to);
    const auto params = moved.params();
    const pq_result r = m.checked(PQexecParams(m.get(), checkpoint_sql, 4, nullptr, params.data(), nullptr, nullptr, 0),
                                  PGRES_COMMAND_OK, "checkpoint");
    if (std::strcmp(PQcmdTuples(r.get()), "1") != 0) throw std::runtime_error("bulk loop: the checkpoint moved");
}

/// Type id -> the switch's case label, from the log's event types.
std::vector<std::uint8_t> log_alternatives(const pq_conn& log, const std::string& log_schema) {
    const pq_result types =
        log.query(fmt::format("SELECT id, stream, name FROM {}.projectionist_event_types", quote(log_schema)));
    std::vector<std::uint8_t> out;
    for (int i = 0; i < types.rows(); ++i) {
        const auto id = static_cast<std::size_t>(types.int64(i, 0));
        if (id >= out.size()) out.resize(id + 1, no_alternative);
        out[id] = alternative_of(types.text(i, 1), types.text(i, 2));
    }
    return out;
}

// ---- 8b: the hand-written sides -----------------------------------------------------------------------

/// Sequent's replay by hand on libpq, or one of its halves (see bench_bulk_sqlite.cpp):
///   - `full`: one server-side cursor over the log (FETCH `fetch` rows at a time, binary), decode,
///     apply in the flat map; then one transaction: the rows in key order by binary COPY, and the
///     checkpoint;
///   - `scan`: the cursor and the decoding only;
///   - `insert_only`: the COPY and the checkpoint, of the final rows built beforehand.
class sequent_loop {
public:
    enum class mode : std::uint8_t { full, scan, insert_only };

    sequent_loop(std::string url, const std::string& log_schema, std::string schema, mode m, std::size_t fetch,
                 const bulk_row_map* final_rows, std::uint64_t head)
        : url_(std::move(url)),
          schema_(std::move(schema)),
          mode_(m),
          fetch_(fetch),
          final_rows_(final_rows),
          head_(head),
          log_(url_),
          alternatives_(log_alternatives(log_, log_schema)),
          declare_(fmt::format("DECLARE bulk_log NO SCROLL CURSOR FOR SELECT position, type_id, payload FROM "
                               "{}.projectionist_events ORDER BY position",
                               quote(log_schema))),
          fetch_sql_(fmt::format("FETCH {} FROM bulk_log", fetch)) {}

    void prepare() {
        model_.reset();
        rows_ = bulk_row_map{};
        checksum_ = 0;
        model_ = std::make_unique<pq_conn>(url_);
        if (mode_ != mode::scan) create_model(*model_, schema_, 0);
    }

    std::uint64_t run() {
        if (mode_ == mode::insert_only) {
            write(*final_rows_, head_);
            return head_;
        }
        const auto started = std::chrono::steady_clock::now();
        log_.exec("BEGIN READ ONLY");
        log_.exec(declare_);
        std::uint64_t read = 0;
        std::uint64_t last = 0;
        for (;;) {
            const pq_result page =
                log_.checked(PQexecParams(log_.get(), fetch_sql_.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 1),
                             PGRES_TUPLES_OK, "FETCH");
            PGresult* r = page.get();
            const int n = page.rows();
            for (int i = 0; i < n; ++i) {
                const auto type = static_cast<std::size_t>(binary_int32(PQgetvalue(r, i, 1)));
                const std::string_view payload(PQgetvalue(r, i, 2), static_cast<std::size_t>(PQgetlength(r, i, 2)));
                const std::uint8_t alt = type < alternatives_.size() ? alternatives_[type] : no_alternative;
                if (mode_ == mode::scan)
                    decode_event(alt, payload, [&](auto&& e) { checksum_ += e.ticket_no + e.ticket_id.size(); });
                else
                    decode_event(alt, payload, [&](auto&& e) { apply_to(rows_, std::move(e)); });
            }
            if (n > 0) last = static_cast<std::uint64_t>(binary_int64(PQgetvalue(r, n - 1, 0)));
            read += static_cast<std::uint64_t>(n);
            if (static_cast<std::size_t>(n) < fetch_) break;
        }
        log_.exec("COMMIT");
        const auto built = std::chrono::steady_clock::now();
        build_s_.push_back(std::chrono::duration<double>(built - started).count());
        if (mode_ == mode::full) {
            write(rows_, last);
            write_s_.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - built).count());
        }
        return read;
    }

    [[nodiscard]] const std::string& schema() const noexcept { return schema_; }
    [[nodiscard]] std::vector<int> backends() const { return {log_.backend_pid(), model_->backend_pid()}; }
    [[nodiscard]] std::uint64_t checksum() const noexcept { return checksum_; }
    [[nodiscard]] const std::vector<double>& build_seconds() const noexcept { return build_s_; }
    [[nodiscard]] const std::vector<double>& write_seconds() const noexcept { return write_s_; }

private:
    void write(const bulk_row_map& rows, std::uint64_t position) {
        const pq_conn& m = *model_;
        const std::vector<const ticket_row*> sorted = sorted_rows(rows);
        m.exec("BEGIN");
        copy_rows(m, sorted);
        move_checkpoint(m, 0, position);
        m.exec("COMMIT");
    }

    std::string url_;
    std::string schema_;
    mode mode_;
    std::size_t fetch_;
    const bulk_row_map* final_rows_;
    std::uint64_t head_;
    pq_conn log_;
    std::vector<std::uint8_t> alternatives_;
    std::string declare_;
    std::string fetch_sql_;
    std::unique_ptr<pq_conn> model_;
    bulk_row_map rows_;
    std::uint64_t checksum_ = 0;
    std::vector<double> build_s_;
    std::vector<double> write_s_;
};

// ---- 8e: the live path by hand ------------------------------------------------------------------------

/// How a live loop reads the rows a batch needs.
enum class live_fetch : std::uint8_t {
    any,      ///< one `SELECT ... WHERE "ticket_id" = ANY($1)` for all of them
    per_key,  ///< one `SELECT ... WHERE "ticket_id" = $1` each (the per-row path)
    memory,   ///< none: every row is held in memory from the start (the floor of a catch-up)
};

/// Catches up from `start` in batches of `batch_size`, each in one transaction: the log read with
/// the store's guard and statement (log_reader, binary), the batch's events decoded once; the keys the batch reads
/// before writing them fetched by ONE `SELECT ... WHERE "ticket_id" = ANY($1)` (or, per_key, one
/// SELECT per key, in the order the batch first reads them; memory: none, the loop holds every
/// row the table holds); the events applied to the rows in a
/// hash map; then postgres_table's multi-row insert and upsert (unnest), the checkpoint (compare
/// and set) and COMMIT.
class batch_loop {
public:
    batch_loop(std::string url, log_store& store, const std::string& log_schema, std::string schema,
               std::size_t batch_size, std::uint64_t start, const std::vector<const ticket_row*>* start_rows,
               live_fetch fetch = live_fetch::any)
        : fetch_mode_(fetch),
          url_(std::move(url)),
          schema_(std::move(schema)),
          batch_size_(batch_size),
          start_(start),
          start_rows_(start_rows),
          log_(url_),
          reader_(log_, store.connection().get(), log_schema, "bulk_live"),
          alternatives_(log_alternatives(log_, log_schema)) {}

    /// A new schema holding the read model at `start` (untimed), analyzed; then a new connection
    /// for the timed part, warmed and with the statements prepared, as the runner's side has: a
    /// new runner opens a session of its own after the rows were copied in, and `warm_session`
    /// runs on both. (When the loop caught up on the connection that had copied the rows and
    /// vacuumed the table, it had the table's pages mapped and its caches filled, and the
    /// runner's new session did not: that alone made the server's CPU per event 30-40 % lower
    /// on the loop's side.)
    void prepare() {
        model_.reset();
        {
            const pq_conn setup(url_);
            create_model(setup, schema_, start_);
            copy_rows(setup, *start_rows_);
            setup.exec(R"(VACUUM (ANALYZE) "bench_tickets_v1")");
        }
        model_ = std::make_unique<pq_conn>(url_);
        const pq_conn& m = *model_;
        m.exec(session_settings(schema_));
        warm_session(m.get(), schema_);
        m.prepare("bulk_fetch_any", find_many_sql);
        m.prepare("bulk_fetch_one", find_sql);
        m.prepare("bulk_insert", insert_sql);
        m.prepare("bulk_upsert", upsert_sql);
        m.prepare("bulk_checkpoint", checkpoint_sql);
        rows_.clear();
        held_.clear();
        if (fetch_mode_ == live_fetch::memory)
            for (const ticket_row* row : *start_rows_) held_.emplace(row->ticket_id, *row);
    }

    std::uint64_t run() {
        const pq_conn& m = *model_;
        std::uint64_t after = start_;
        std::uint64_t applied = 0;
        const std::string projection(bulk_model_table);
        for (;;) {
            const std::optional<pq_result> read = reader_.read(after, batch_size_);
            if (!read || read->rows() == 0) return applied;
            const pq_result& batch = *read;
            const int n = batch.rows();
            m.exec("BEGIN");
            // The batch's events, decoded once; registrations become inserts, and every other key
            // not seen yet in the batch is one to fetch.
            events_.clear();
            keys_.assign(1, '{');
            one_keys_.clear();
            std::size_t fetch = 0;
            PGresult* r = batch.get();
            for (int i = 0; i < n; ++i) {
                const auto type = static_cast<std::size_t>(binary_int32(PQgetvalue(r, i, 1)));
                const std::string_view payload(PQgetvalue(r, i, 7), static_cast<std::size_t>(PQgetlength(r, i, 7)));
                decode_event(type < alternatives_.size() ? alternatives_[type] : no_alternative, payload,
                             [&](auto&& e) {
                                 using E = std::remove_cvref_t<decltype(e)>;
                                 if constexpr (std::is_same_v<E, ticket_registered>) {
                                     rows_.insert_or_assign(e.ticket_id, entry{state::insert, make_row(e)});
                                 } else if (rows_.try_emplace(e.ticket_id, entry{state::absent, {}}).second) {
                                     if (fetch_mode_ == live_fetch::memory) {
                                         keep_held_row(e.ticket_id);
                                     } else if (fetch_mode_ == live_fetch::per_key) {
                                         one_keys_.push_back(e.ticket_id);
                                     } else {
                                         if (fetch != 0) keys_ += ',';
                                         append_quoted(keys_, e.ticket_id);
                                     }
                                     ++fetch;
                                 }
                                 events_.emplace_back(std::move(e));
                             });
            }
            if (fetch != 0 && fetch_mode_ == live_fetch::any) {
                keys_ += '}';
                const char* params[1] = {keys_.c_str()};
                keep_found_rows(m.checked(PQexecPrepared(m.get(), "bulk_fetch_any", 1, params, nullptr, nullptr, 0),
                                          PGRES_TUPLES_OK, "fetch"),
                                rows_);
                fetches_ += 1;
                keys_fetched_ += fetch;
            }
            for (const std::string& key : one_keys_) {
                const char* params[1] = {key.c_str()};
                keep_found_rows(m.checked(PQexecPrepared(m.get(), "bulk_fetch_one", 1, params, nullptr, nullptr, 0),
                                          PGRES_TUPLES_OK, "fetch one"),
                                rows_);
                fetches_ += 1;
                keys_fetched_ += 1;
            }
            for (const event& ev : events_)
                std::visit(
                    [&](const auto& e) {
                        using E = std::remove_cvref_t<decltype(e)>;
                        if constexpr (!std::is_same_v<E, ticket_registered>) {
                            entry& x = rows_.find(e.ticket_id)->second;
                            if (x.kind == state::absent) return;
                            apply(e, x.row);
                            if (x.kind == state::clean) x.kind = state::upsert;
                        }
                    },
                    ev);
            const auto last = static_cast<std::uint64_t>(binary_int64(PQgetvalue(r, n - 1, 0)));
            flush();
            if (fetch_mode_ == live_fetch::memory)
                for (const auto& [key, x] : rows_)
                    if (x.kind == state::insert || x.kind == state::upsert) held_.insert_or_assign(key, x.row);
            const checkpoint_move moved(projection, after, last);
            const auto cp_params = moved.params();
            const pq_result cp =
                m.checked(PQexecPrepared(m.get(), "bulk_checkpoint", 4, cp_params.data(), nullptr, nullptr, 0),
                          PGRES_COMMAND_OK, "checkpoint");
            if (std::strcmp(PQcmdTuples(cp.get()), "1") != 0)
                throw std::runtime_error("batch loop: the checkpoint moved");
            m.exec("COMMIT");
            rows_.clear();
            after = last;
            applied += static_cast<std::uint64_t>(n);
        }
    }

    [[nodiscard]] const std::string& schema() const noexcept { return schema_; }
    [[nodiscard]] std::vector<int> backends() const { return {log_.backend_pid(), model_->backend_pid()}; }
    [[nodiscard]] std::uint64_t fetches() const noexcept { return fetches_; }
    [[nodiscard]] std::uint64_t keys_fetched() const noexcept { return keys_fetched_; }

private:
    using state = row_state;
    using entry = row_entry;
    using event = boost::mp11::mp_rename<ticket_events, std::variant>;

    /// The batch's inserts, then its upserts, each as one statement of column arrays.
    void flush() { writes_.write(rows_, *model_, "bulk_insert", "bulk_upsert", "batch loop"); }

    /// memory: the row of `key` as the table holds it, from `held_` instead of a query.
    void keep_held_row(const std::string& key) {
        const auto found = held_.find(key);
        if (found != held_.end()) rows_.find(key)->second = entry{state::clean, found->second};
    }

    live_fetch fetch_mode_;
    std::string url_;
    std::string schema_;
    std::size_t batch_size_;
    std::uint64_t start_;
    const std::vector<const ticket_row*>* start_rows_;
    pq_conn log_;
    log_reader reader_;
    std::vector<std::uint8_t> alternatives_;
    std::unique_ptr<pq_conn> model_;
    boost::unordered_flat_map<std::string, entry> rows_;
    std::vector<event> events_;
    std::string keys_;
    std::vector<std::string> one_keys_;                        ///< per_key: the keys to fetch, in the order first read
    boost::unordered_flat_map<std::string, ticket_row> held_;  ///< memory: every row the table holds
    batch_writes writes_;
    std::uint64_t fetches_ = 0;
    std::uint64_t keys_fetched_ = 0;
};

// ---- the runner's sides -----------------------------------------------------------------------------

/// Today's runner into a new schema per repetition. With `start_rows`, the read model is first
/// brought to `start` (untimed): after init(), the rows are copied into the runner's table, the
/// checkpoint is set to `start`, and a new runner is made and initialized on the storage; the
/// timed part is then catch_up() (8e). Without, it is backfill() from 0 (8b).
class runner_side {
public:
    using runner_type = pj::runner<bulk_tickets, pj::postgres_storage, pj::global>;

    runner_side(log_store& log, std::string url, std::string schema, std::uint64_t start = 0,
                const std::vector<const ticket_row*>* start_rows = nullptr,
                pj::runner_options runner_options = batch_runner_options())
        : log_(&log),
          url_(std::move(url)),
          schema_(std::move(schema)),
          start_(start),
          start_rows_(start_rows),
          runner_options_(runner_options) {}

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
        runner_ = std::make_unique<runner_type>(*log_, *storage_, runner_options_);
        runner_->init();
        if (start_rows_ != nullptr) {
            runner_.reset();
            {
                const pq_conn admin(url_);
                admin.exec(session_settings(schema_));
                admin.exec("BEGIN");
                copy_rows(admin, *start_rows_);
                admin.exec(fmt::format("UPDATE projectionist_checkpoints SET position = {} WHERE projection = '{}'",
                                       start_, bulk_model_table));
                admin.exec("COMMIT");
                admin.exec(R"(VACUUM (ANALYZE) "bench_tickets_v1")");
            }
            runner_ = std::make_unique<runner_type>(*log_, *storage_, runner_options_);
            runner_->init();
            if (runner_->position() != start_)
                mismatch("8e. PostgreSQL live: the runner did not start at the checkpoint");
            warm_session(runner_->session().raw(), schema_);
        }
    }
    std::uint64_t run() { return start_rows_ != nullptr ? runner_->catch_up() : runner_->backfill(); }

    [[nodiscard]] const std::string& schema() const noexcept { return schema_; }
    [[nodiscard]] std::vector<int> backends() const {
        return {log_->connection().backend_pid(), PQbackendPID(runner_->session().raw()),
                storage_->connection().backend_pid()};
    }

private:
    log_store* log_;
    std::string url_;
    std::string schema_;
    std::uint64_t start_;
    const std::vector<const ticket_row*>* start_rows_;
    pj::runner_options runner_options_;
    std::unique_ptr<pj::postgres_storage> storage_;
    std::unique_ptr<runner_type> runner_;
};

}  // namespace

void bench_bulk_postgres(const mem_store& history, const history_stats& stats, const bulk_options& o,
                         std::vector<comparison>& out, std::vector<extra>& data) {
    const std::string url = env_text("PROJECTIONIST_BENCH_PG_URL", "");
    if (url.empty()) {
        fmt::print("  8b/8e. PostgreSQL: skipped, PROJECTIONIST_BENCH_PG_URL is not set (run.sh starts a server)\n");
        data.push_back({"bulk_postgres", std::string("skipped: no server (PROJECTIONIST_BENCH_PG_URL not set)")});
        return;
    }
    const std::size_t n = stats.events;
    const std::string stem = fmt::format("projectionist_bench_bulk_{}", ::getpid());
    const std::string log_schema = stem + "_log";
    const drop_schemas cleanup{
        url,
        {log_schema, stem + "_runner", stem + "_bulk", stem + "_sequent", stem + "_scan", stem + "_insert",
         stem + "_per_row", stem + "_live_runner", stem + "_live_any", stem + "_live_per_key", stem + "_live_memory",
         stem + "_child_unbounded", stem + "_child_budget", stem + "_scale_log", stem + "_scale_sequent",
         stem + "_child_bulk_reference", stem + "_child_bulk_scale"}};
    const pq_conn admin(url);
    const pg_server server = probe_server(admin);
    const auto checkpoint = [&] {
        if (server.can_checkpoint) admin.exec("CHECKPOINT");
    };
    // 8b's sides: wall time, the time a user waits (the bulk runner reads on a second thread while
    // it applies, the loops work on one); their CPU time beside it. 8c, 8d and 8e: CPU time, the
    // process's (every thread's) plus the side's server backends' where the server is local.
    const time_basis bw = time_basis::wall;
    const time_basis b = server.local ? time_basis::cpu_plus_server : time_basis::cpu;
    const std::string basis = server.local
                                  ? "events/s from the median of CPU time: the process's (every thread's) plus the "
                                    "side's server backends' (as 6d); wall-time rates beside them"
                                  : "events/s from the median of the process's CPU time (the server is not local)";
    const std::string wall_basis =
        "events/s from the median of wall time (the bulk runner reads the log on a second thread while it applies); "
        "rates from CPU time beside them (" +
        basis + ")";

    admin.exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", quote(log_schema)));
    pj::postgres_options log_options;
    log_options.schema = log_schema;
    log_store log(url, log_options);
    fmt::print("  8b. PostgreSQL bulk baselines ({}; {}): writing the history into schema {} ...\n",
               server.version.substr(0, server.version.find(" on ")), server.settings, log_schema);
    std::fflush(stdout);
    const double write_s = write_log(history, url, log_schema, "8b. PostgreSQL").total_s();
    if (log.head() != n) mismatch("8b. PostgreSQL: the log's head");
    if (!log_aggregates_are(admin, log_schema, stats.aggregates, n)) mismatch("8b. PostgreSQL: the log's aggregates");
    fmt::print(
        "     {} events in {:.1f} s (COPY, VACUUM ANALYZE); a new schema per side and repetition, CHECKPOINT "
        "before each\n",
        n, write_s);
    std::fflush(stdout);
    const auto check = [&](const std::string& schema, std::uint64_t digest, std::uint64_t position, const char* what,
                           const std::string& reference) {
        if (schema_digest(admin, schema) != digest) mismatch(fmt::format("{}: the rows in {}", what, schema));
        if (schema_checkpoint(admin, schema) != static_cast<std::int64_t>(position))
            mismatch(fmt::format("{}: the checkpoint in {}", what, schema));
        if (table_shape(admin, schema) != table_shape(admin, reference))
            mismatch(fmt::format("{}: the table in {} is not the one postgres_storage creates", what, schema));
    };

    if (o.postgres) {
        const bulk_row_map final_rows = rows_at(history);
        const std::uint64_t expected = rows_digest(final_rows);
        constexpr std::size_t fetch = 50'000;
        using mode = sequent_loop::mode;
        runner_side runner(log, url, stem + "_runner");
        runner_side bulk(log, url, stem + "_bulk", 0, nullptr, pj::runner_options{.backfill = pj::backfill_mode::bulk});
        sequent_loop loop(url, log_schema, stem + "_sequent", mode::full, fetch, nullptr, n);
        sequent_loop scan(url, log_schema, stem + "_scan", mode::scan, fetch, nullptr, n);
        sequent_loop insert(url, log_schema, stem + "_insert", mode::insert_only, fetch, &final_rows, n);
        const std::vector<const ticket_row*> no_rows;
        batch_loop per_row(url, log, log_schema, stem + "_per_row", pj::runner_options{}.batch_size, 0, &no_rows,
                           live_fetch::per_key);
        const auto with_checkpoint = [&](auto& side) {
            return [&side, &checkpoint] {
                side.prepare();
                checkpoint();
            };
        };
        // The sides. The library's bulk mode is one more element here, a runner_side with its
        // options (say `runner_side bulk(log, url, stem + "_bulk", 0, nullptr, {.backfill = bulk})`),
        // and its schema one more entry of `schemas` (and of `cleanup`), checked like the others.
        std::vector<bulk_side> sides{
            {"runner_bulk", with_checkpoint(bulk), [&] { return bulk.run(); }, [&] { return bulk.backends(); }, 0,
             "runner<bulk_tickets, postgres_storage, global>::backfill() in bulk mode (the default): the rows in "
             "memory, one flush at the end"},
            {"runner_batch", with_checkpoint(runner), [&] { return runner.run(); }, [&] { return runner.backends(); },
             o.pg_runner_repetitions,
             "runner<bulk_tickets, postgres_storage, global>::backfill(), default runner_options in batch mode "
             "(batches of 1000)"},
            {"sequent_loop", with_checkpoint(loop), [&] { return loop.run(); }, [&] { return loop.backends(); }, 0,
             "libpq: one server-side cursor over the log (FETCH 50000, binary), binary_codec, a flat map; then one "
             "transaction: binary COPY of the rows in key order, and the checkpoint"},
            {"read_only_scan", with_checkpoint(scan), [&] { return scan.run(); }, [&] { return scan.backends(); }, 0,
             "the sequent loop's cursor and decoding alone"},
            {"insert_only", with_checkpoint(insert), [&] { return insert.run(); }, [&] { return insert.backends(); }, 0,
             "the sequent loop's COPY and checkpoint alone, of the final rows built beforehand"},
            {"per_row_loop", with_checkpoint(per_row), [&] { return per_row.run(); },
             [&] { return per_row.backends(); }, o.pg_runner_repetitions,
             "8e's per_key_loop from position 0: batches of 1000, one SELECT per key a batch reads, the runner's "
             "multi-row writes (the per-row batch mode 8b's 30x was set against)"},
        };
        const std::vector<std::string> schemas{runner.schema(), bulk.schema(), loop.schema(), insert.schema(),
                                               per_row.schema()};
        fmt::print(
            "     8b: {} repetitions per side, runner_batch {} (PROJECTIONIST_BENCH_BULK_REPS, "
            "PROJECTIONIST_BENCH_BULK_PG_RUNNER_REPS), interleaved\n",
            o.repetitions, o.pg_runner_repetitions);
        std::fflush(stdout);
        const std::vector<bulk_samples> s = measure_bulk(sides, o.repetitions, n, "8b. PostgreSQL bulk");
        print_bulk_samples(fmt::format("8b. PostgreSQL bulk backfill baselines ({} events)", n), s, n, bw);
        for (const std::string& schema : schemas) check(schema, expected, n, "8b. PostgreSQL bulk", runner.schema());
        std::uint64_t expected_checksum = 0;
        {
            const std::vector<std::uint8_t> alternatives = alternatives_of(history);
            mem_store::batch all;
            history.read(0, history.head(), all);
            for (const mem_store::record* rec : all)
                boost::mp11::mp_with_index<event_type_count>(alternatives.at(rec->type_id()), [&](auto I) {
                    using E = boost::mp11::mp_at_c<ticket_events, decltype(I)::value>;
                    const E& e = mem_store::event_of<E>(*rec);
                    expected_checksum += e.ticket_no + e.ticket_id.size();
                });
        }
        if (scan.checksum() != expected_checksum) mismatch("8b. PostgreSQL bulk: the read-only scan's events");

        std::vector<extra> extras{
            {"events", static_cast<double>(n)},
            {"runner_batch_mode", runner_batch_mode()},
            {"rows", static_cast<double>(final_rows.size())},
            {"runs", static_cast<double>(o.repetitions)},
            {"runner_batch_runs_setting", static_cast<double>(o.pg_runner_repetitions)},
            {"server", server.version},
            {"server_settings", server.settings},
            {"loop_fetch_rows", static_cast<double>(fetch)},
            {"time", wall_basis},
            {"log_write_s", write_s},
            {"sequent_loop_build_median_ms", median_of(loop.build_seconds()) * 1e3},
            {"sequent_loop_write_median_ms", median_of(loop.write_seconds()) * 1e3},
        };
        for (extra& x : bulk_side_extras(s, n, bw)) extras.push_back(std::move(x));
        const double runner_t = basis_median(side_named(s, "runner_batch"), bw);
        const double bulk_t = basis_median(side_named(s, "runner_bulk"), bw);
        const double loop_t = basis_median(side_named(s, "sequent_loop"), bw);
        const double scan_t = basis_median(side_named(s, "read_only_scan"), bw);
        const double insert_t = basis_median(side_named(s, "insert_only"), bw);
        const double per_row_t = basis_median(side_named(s, "per_row_loop"), bw);
        extras.push_back(bulk_over_loop_by_cpu(s, b));
        comparison cb{"8b. PostgreSQL bulk backfill: runner bulk / runner batch (events/s)",
                      runner_t / bulk_t,
                      ">= 30",
                      false,
                      rates_line(s, n, bw),
                      extras};
        cb.met = cb.ratio >= 30;
        comparison cb2{"8b'. PostgreSQL bulk backfill: runner bulk / sequent loop (events/s)",
                       loop_t / bulk_t,
                       ">= 0.9",
                       false,
                       rates_line(s, n, bw),
                       extras};
        cb2.met = cb2.ratio >= 0.9;
        comparison cd{
            "8b''. PostgreSQL bulk: (scan + insert) / sequent loop (time)",
            (scan_t + insert_t) / loop_t,
            "none (physical limit)",
            false,
            fmt::format("sequent loop {:.0f} ms = read+decode {:.0f} ms + COPY {:.0f} ms + the rest {:.0f} ms",
                        loop_t * 1e3, scan_t * 1e3, insert_t * 1e3, (loop_t - scan_t - insert_t) * 1e3),
            extras};
        cd.informational = true;
        comparison cp{"8b'''. PostgreSQL bulk backfill: runner bulk / per-row path (events/s)",
                      per_row_t / bulk_t,
                      "none (the per-row batch mode 8b's 30 was set against)",
                      false,
                      rates_line(s, n, bw),
                      extras};
        cp.informational = true;
        comparison cl{"8b (limit). PostgreSQL: read-only scan / runner batch (events/s)",
                      runner_t / scan_t,
                      "none (the most any backfill that reads this log can show against 8b's baseline: 8b's 30 "
                      "needs at least this much)",
                      false,
                      rates_line(s, n, bw),
                      extras};
        cl.informational = true;
        out.push_back(std::move(cb));
        out.push_back(std::move(cb2));
        out.push_back(std::move(cd));
        out.push_back(std::move(cp));
        out.push_back(std::move(cl));

        // 8c. A memory budget of a quarter of the read model, each run a process of its own.
        const bulk_child_options co = bulk_child_options::from_environment();
        if (co.budget_repetitions > 0) {
            const std::size_t model_bytes = row_store_bytes(final_rows);
            const std::size_t budget = model_bytes / co.budget_divisor;
            const std::string reference = runner.schema();
            const auto child = [&](std::string name, std::size_t bytes, std::string runner = "global") {
                const std::string schema = stem + "_child_" + name;
                return child_side{
                    std::move(name),
                    [&admin, schema, &checkpoint] {
                        admin.exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", quote(schema)));
                        checkpoint();
                    },
                    std::vector<std::string>{
                        "postgres", url, log_schema, schema,
                        bytes == pj::runner_options::unbounded ? std::string("unbounded") : std::to_string(bytes),
                        runner},
                    [&check, schema, expected, n, reference] {
                        check(schema, expected, n, "8c. PostgreSQL", reference);
                    },
                    child_what("postgres_storage", bytes, runner)};
            };
            const std::vector<child_side> sides{child("unbounded", pj::runner_options::unbounded),
                                                child("budget", budget),
                                                child("pa_unbounded", pj::runner_options::unbounded, "per_aggregate"),
                                                child("passes", budget, "passes")};
            fmt::print(
                "  8c. PostgreSQL bulk with a memory budget: the read model is {:.1f} MiB in the row store; budget "
                "{:.1f} MiB (1/{}); every run a process of its own, {} repetitions per side\n",
                static_cast<double>(model_bytes) / 1048576.0, static_cast<double>(budget) / 1048576.0,
                co.budget_divisor, co.budget_repetitions);
            const std::vector<child_samples> cs =
                measure_children(sides, co.budget_repetitions, n, server.local, "8c. PostgreSQL budget");
            print_child_samples(fmt::format("8c. PostgreSQL bulk backfill, unbounded / budget of 1/{} ({} events)",
                                            co.budget_divisor, n),
                                cs, n, b);
            std::vector<extra> ex{{"events", static_cast<double>(n)},
                                  {"rows", static_cast<double>(final_rows.size())},
                                  {"read_model_row_store_mib", static_cast<double>(model_bytes) / 1048576.0},
                                  {"budget_mib", static_cast<double>(budget) / 1048576.0},
                                  {"budget_divisor", static_cast<double>(co.budget_divisor)},
                                  {"server", server.version},
                                  {"server_settings", server.settings},
                                  {"runs", static_cast<double>(co.budget_repetitions)},
                                  {"time", basis + "; peak RSS is the child's VmHWM (the client process)"}};
            for (extra& x : child_extras(cs, n, b)) ex.push_back(std::move(x));
            const double unbounded_t = basis_median(cs[0].times, b);
            const double budget_t = basis_median(cs[1].times, b);
            comparison cc{fmt::format("8c. PostgreSQL bulk: budget of 1/{} of the read model / unbounded (events/s)",
                                      co.budget_divisor),
                          unbounded_t / budget_t,
                          ">= 0.5",
                          false,
                          fmt::format("unbounded {}ev/s, peak RSS {:.0f} MiB; budget {:.1f} MiB: {}ev/s, peak RSS "
                                      "{:.0f} MiB, {} flushes",
                                      si(events_per_second(unbounded_t, n)), median_of(cs[0].peak_mib),
                                      static_cast<double>(budget) / 1048576.0, si(events_per_second(budget_t, n)),
                                      median_of(cs[1].peak_mib), cs[1].flushes),
                          std::move(ex)};
            cc.met = cc.ratio >= 0.5;
            out.push_back(std::move(cc));
            out.push_back(passes_comparison("PostgreSQL", cs, 2, 3, n, b, budget, co.budget_divisor));
        }

        // 8d. Scale: a larger history over more aggregates in a log schema of its own (written as
        // 8b's log is); the bulk runner (a process of its own, unbounded) and the Sequent loop over
        // both logs, in interleaved rounds.
        if (co.scale_events > 0) {
            history_spec spec;
            spec.events = co.scale_events;
            spec.aggregates = co.scale_aggregates;
            const std::string big_schema = stem + "_scale_log";
            admin.exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", quote(big_schema)));
            pj::postgres_options big_options;
            big_options.schema = big_schema;
            const log_store big_log(url, big_options);
            std::uint64_t big_n = 0;
            std::uint64_t big_digest = 0;
            std::size_t big_rows = 0;
            std::size_t big_bytes = 0;
            double gen_s = 0;
            double big_write_s = 0;
            {
                mem_store big;
                const auto t0 = std::chrono::steady_clock::now();
                const history_stats bs = generate_history(big, spec);
                gen_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                big_n = bs.events;
                fmt::print(
                    "  8d. PostgreSQL bulk at scale: {} events over {} aggregates generated in {:.1f} s, writing the "
                    "log ...\n",
                    bs.events, bs.aggregates, gen_s);
                std::fflush(stdout);
                big_write_s = write_log(big, url, big_schema, "8d. PostgreSQL").total_s();
                if (!log_aggregates_are(admin, big_schema, bs.aggregates, big_n))
                    mismatch("8d. PostgreSQL: the large log's aggregates");
                const bulk_row_map rows = rows_at(big);
                big_digest = rows_digest(rows);
                big_rows = rows.size();
                big_bytes = row_store_bytes(rows);
            }
            const std::string reference = runner.schema();
            const auto child = [&](std::string name, const std::string& log_schema_of, std::uint64_t digest,
                                   std::uint64_t head) {
                const std::string schema = stem + "_child_" + name;
                return child_side{std::move(name),
                                  [&admin, schema, &checkpoint] {
                                      admin.exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", quote(schema)));
                                      checkpoint();
                                  },
                                  std::vector<std::string>{"postgres", url, log_schema_of, schema, "unbounded"},
                                  [&check, schema, digest, head, reference] {
                                      check(schema, digest, head, "8d. PostgreSQL", reference);
                                  },
                                  "runner bulk mode in a process of its own, bulk_memory_budget unbounded"};
            };
            const child_side bulk_reference = child("bulk_reference", log_schema, expected, n);
            const child_side bulk_scale = child("bulk_scale", big_schema, big_digest, big_n);
            sequent_loop big_loop(url, big_schema, stem + "_scale_sequent", mode::full, fetch, nullptr, big_n);
            const bulk_side loop_reference{"loop_reference",
                                           [&] {
                                               prepare_trimmed(loop);
                                               checkpoint();
                                           },
                                           [&] { return loop.run(); },
                                           [&] { return loop.backends(); },
                                           0,
                                           "the Sequent loop of 8b over the reference log, in the benchmark's process"};
            const bulk_side loop_scale{"loop_scale",
                                       [&] {
                                           prepare_trimmed(big_loop);
                                           checkpoint();
                                       },
                                       [&] { return big_loop.run(); },
                                       [&] { return big_loop.backends(); },
                                       0,
                                       "the Sequent loop of 8b over the large log, in the benchmark's process"};
            const auto relation_mb = [&](const std::string& schema, std::string_view table) {
                const pq_result r =
                    admin.query(fmt::format("SELECT pg_total_relation_size('{}.{}')", quote(schema), quote(table)));
                return static_cast<double>(r.int64(0, 0)) / (1024.0 * 1024.0);
            };
            const double log_mb =
                relation_mb(big_schema, "projectionist_events") + relation_mb(big_schema, "projectionist_aggregates");
            fmt::print(
                "     log written in {:.1f} s ({:.0f} MB with indexes; COPY, VACUUM ANALYZE); read model {:.1f} MiB in "
                "the row store ({} rows); {} rounds of bulk {}, bulk {}, loop {}, loop {} "
                "(PROJECTIONIST_BENCH_BULK_SCALE_REPS)\n",
                big_write_s, log_mb, static_cast<double>(big_bytes) / 1048576.0, big_rows, co.scale_repetitions, n,
                big_n, n, big_n);
            std::fflush(stdout);
            const scale_samples ss =
                measure_scale(bulk_reference, bulk_scale, loop_reference, loop_scale, co.scale_repetitions, n, big_n,
                              server.local, "8d. PostgreSQL scale");
            print_scale_samples("8d. PostgreSQL at scale", ss, n, big_n, b);
            check(loop.schema(), expected, n, "8d. PostgreSQL", reference);
            check(big_loop.schema(), big_digest, big_n, "8d. PostgreSQL", reference);
            const double model_mb = relation_mb(stem + "_child_bulk_scale", bulk_model_table);
            std::vector<extra> ex{{"events", static_cast<double>(big_n)},
                                  {"aggregates", static_cast<double>(spec.aggregates)},
                                  {"rows", static_cast<double>(big_rows)},
                                  {"generation_s", gen_s},
                                  {"log_write", std::string("binary COPY in one transaction, then VACUUM ANALYZE "
                                                            "(as 8b's log)")},
                                  {"log_write_s", big_write_s},
                                  {"log_mb", log_mb},
                                  {"read_model_db_mb", model_mb},
                                  {"read_model_row_store_mib", static_cast<double>(big_bytes) / 1048576.0},
                                  {"reference_events", static_cast<double>(n)},
                                  {"reference_rows", static_cast<double>(final_rows.size())},
                                  {"server", server.version},
                                  {"server_settings", server.settings},
                                  {"runs", static_cast<double>(co.scale_repetitions)},
                                  {"loop_scale_build_median_ms", median_of(big_loop.build_seconds()) * 1e3},
                                  {"loop_scale_write_median_ms", median_of(big_loop.write_seconds()) * 1e3},
                                  {"time", basis + " (the bulk runner in its child process, the loop in this one)"}};
            for (comparison& c : scale_comparisons(
                     "PostgreSQL", ss, n, big_n, b, std::move(ex),
                     fmt::format("{} rows; bulk peak RSS {:.0f} MiB; read model {:.0f} MB on the server; log {:.0f} MB",
                                 big_rows, median_of(ss.bulk_scale.peak_mib), model_mb, log_mb)))
                out.push_back(std::move(c));
        }
    }

    if (o.live) {
        const std::size_t live = o.live_events < n ? o.live_events : n / 10;
        const std::uint64_t start = n - live;
        const bulk_row_map start_map = rows_at(history, start);
        const std::vector<const ticket_row*> start_rows = sorted_rows(start_map);
        const std::uint64_t expected = rows_digest(rows_at(history));
        const std::size_t batch_size = pj::runner_options{}.batch_size;
        runner_side runner(log, url, stem + "_live_runner", start, &start_rows);
        batch_loop loop(url, log, log_schema, stem + "_live_any", batch_size, start, &start_rows);
        batch_loop per_key(url, log, log_schema, stem + "_live_per_key", batch_size, start, &start_rows,
                           live_fetch::per_key);
        batch_loop held(url, log, log_schema, stem + "_live_memory", batch_size, start, &start_rows,
                        live_fetch::memory);
        const std::vector<bulk_side> sides{
            {"runner_batch",
             [&] {
                 runner.prepare();
                 checkpoint();
             },
             [&] { return runner.run(); }, [&] { return runner.backends(); }, 0,
             "runner<bulk_tickets, postgres_storage, global>::catch_up() from the read model at head - live events"},
            {"any_loop",
             [&] {
                 loop.prepare();
                 checkpoint();
             },
             [&] { return loop.run(); }, [&] { return loop.backends(); }, 0,
             "libpq, batches of 1000: one SELECT ... = ANY($1) per batch for the keys it reads, the runner's "
             "multi-row writes, checkpoint, COMMIT"},
            {"per_key_loop",
             [&] {
                 per_key.prepare();
                 checkpoint();
             },
             [&] { return per_key.run(); }, [&] { return per_key.backends(); }, 0,
             "the any_loop with one SELECT ... = $1 per key a batch reads: the per-row path, 8e's baseline"},
            {"memory_loop",
             [&] {
                 held.prepare();
                 checkpoint();
             },
             [&] { return held.run(); }, [&] { return held.backends(); }, 0,
             "the any_loop with every row held in memory from the start: no read of rows, only the log's read "
             "and the writes (the floor of a catch-up that writes its rows to this server)"},
        };
        fmt::print(
            "  8e. PostgreSQL live catch-up: the read model at position {} ({} rows, copied in untimed), then "
            "{} events; {} repetitions per side (PROJECTIONIST_BENCH_PG_LIVE_REPS)\n",
            start, start_rows.size(), live, o.live_repetitions);
        std::fflush(stdout);
        const std::vector<bulk_samples> s = measure_bulk(sides, o.live_repetitions, live, "8e. PostgreSQL live");
        print_bulk_samples(fmt::format("8e. PostgreSQL live catch-up ({} new events, batches of {})", live, batch_size),
                           s, live, b);
        check(runner.schema(), expected, n, "8e. PostgreSQL live", runner.schema());
        check(loop.schema(), expected, n, "8e. PostgreSQL live", runner.schema());
        check(per_key.schema(), expected, n, "8e. PostgreSQL live", runner.schema());
        check(held.schema(), expected, n, "8e. PostgreSQL live", runner.schema());
        std::vector<extra> extras{
            {"events", static_cast<double>(live)},
            {"runner_batch_mode", runner_batch_mode()},
            {"start_position", static_cast<double>(start)},
            {"start_rows", static_cast<double>(start_rows.size())},
            {"batch_size", static_cast<double>(batch_size)},
            {"runs", static_cast<double>(o.live_repetitions)},
            {"server", server.version},
            {"server_settings", server.settings},
            {"time", basis},
            {"any_loop_keys_per_select",
             loop.fetches() == 0 ? 0.0
                                 : static_cast<double>(loop.keys_fetched()) / static_cast<double>(loop.fetches())},
        };
        extras.push_back({"per_key_loop_selects", static_cast<double>(per_key.fetches())});
        for (extra& x : bulk_side_extras(s, live, b)) extras.push_back(std::move(x));
        const double runner_t = basis_median(side_named(s, "runner_batch"), b);
        const double loop_t = basis_median(side_named(s, "any_loop"), b);
        const double per_key_t = basis_median(side_named(s, "per_key_loop"), b);
        const double memory_t = basis_median(side_named(s, "memory_loop"), b);
        const double speedup = per_key_t / runner_t;
        out.push_back(comparison{"8e. PostgreSQL live: runner batch / per-row path (events/s)", speedup, ">= 10",
                                 speedup >= 10.0, rates_line(s, live, b), extras});
        comparison ce{"8e'. PostgreSQL live: = ANY loop / runner batch (events/s)",
                      runner_t / loop_t,
                      "none (headroom)",
                      false,
                      rates_line(s, live, b),
                      extras};
        ce.informational = true;
        comparison cf{"8e (limit). PostgreSQL live: rows held in memory / per-row path (events/s)",
                      per_key_t / memory_t,
                      "none (the most a catch-up that reads the log and writes its rows here can show against 8e's "
                      "baseline: 8e's 10 needs at least this much)",
                      false,
                      rates_line(s, live, b),
                      extras};
        cf.informational = true;
        out.push_back(std::move(ce));
        out.push_back(std::move(cf));
    }
    data.push_back({"bulk_postgres_log_write_s", write_s});
    data.push_back({"bulk_postgres_server", server.version});
    data.push_back({"bulk_postgres_settings", server.settings});
}

}  // namespace bench

#endif  // PROJECTIONIST_BENCH_POSTGRES
