// Comparisons 8a, 8c and 8d, SQLite: the bulk backfill against its baselines, under a memory
// budget, and at scale.
//
// The history of the other comparisons is written once into a SQLite log of this group's own,
// then, each side into its own read-model file (deleted and created again before every
// repetition):
//
//   runner_batch    runner<bulk_tickets, sqlite_storage, global>: backfill() (today's path:
//                   a transaction per batch of 1000, an update per event)
//   sequent_loop    the best hand-written method: one pass over the log (raw sqlite3, large
//                   pages), binary_codec, the rows built in a boost::unordered_flat_map, then
//                   the final rows in key order by multi-row INSERTs and the checkpoint, in ONE
//                   transaction
//   read_only_scan  the loop's read and decode alone (a physical limit)
//   insert_only     the loop's write alone, of the final rows built beforehand (the other one)
//
// Adding a side (the library's bulk mode) is one more element of the vector `sides` in
// bench_bulk_sqlite(); the table, the extras and the checks of its file follow from it.

#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/mp11/algorithm.hpp>

#include <projectionist/sqlite.hpp>

#include "bench_bulk.hpp"
#include "raw_sqlite.hpp"

namespace bench {
namespace {

namespace fs = std::filesystem;
using mem_store = pj::memory_event_store;
using log_store = pj::sqlite_event_store;

// ---- the sqlite3 C API: raw_sqlite.hpp ------------------------------------------------------------

using database = raw_db;
using statement = raw_stmt;

std::int64_t query_int(const database& db, const std::string& sql) {
    const statement s(db, sql);
    return sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
}

// ---- the statements ------------------------------------------------------------------------------

/// The read model's table as sqlite_storage creates it (checked against the runner's file).
constexpr const char* model_ddl =
    R"(CREATE TABLE IF NOT EXISTS "bench_tickets_v1" ("ticket_id" TEXT NOT NULL, "type" TEXT NOT NULL, )"
    R"("status" TEXT NOT NULL, "assignee" TEXT NOT NULL, "last_tag" TEXT NOT NULL, "priority" INTEGER NOT NULL, )"
    R"("comments" INTEGER NOT NULL, "reopened" INTEGER NOT NULL, "escalation" INTEGER NOT NULL, )"
    R"(PRIMARY KEY("ticket_id")) WITHOUT ROWID)";
constexpr const char* checkpoint_ddl =
    "CREATE TABLE IF NOT EXISTS projectionist_checkpoints(projection TEXT PRIMARY KEY, position INTEGER NOT NULL)";
constexpr const char* columns =
    R"("ticket_id", "type", "status", "assignee", "last_tag", "priority", "comments", "reopened", "escalation")";
/// One page of the log, in position order: only the columns a backfill of one stream needs.
constexpr const char* page_sql =
    "SELECT position, type_id, payload FROM projectionist_events WHERE position > ? ORDER BY position LIMIT ?";
constexpr const char* checkpoint_sql =
    "UPDATE projectionist_checkpoints SET position = ? WHERE projection = ? AND position = ?";

std::string multi_insert_sql(std::size_t rows) {
    std::string sql = fmt::format(R"(INSERT INTO "bench_tickets_v1" ({}) VALUES )", columns);
    for (std::size_t i = 0; i < rows; ++i) sql += i == 0 ? "(?,?,?,?,?,?,?,?,?)" : ",(?,?,?,?,?,?,?,?,?)";
    return sql;
}

// ---- the hand-written sides ------------------------------------------------------------------------

struct loop_config {
    bool synchronous_full = true;
    std::size_t page = 100'000;         ///< events per page of the log's SELECT
    std::size_t rows_per_insert = 250;  ///< rows per multi-row INSERT (9 parameters each)
    int model_cache_kib = 64 * 1024;    ///< PRAGMA cache_size=-N on the read-model connection
    std::int64_t log_mmap_bytes = 0;    ///< PRAGMA mmap_size on the log connection (0: off, SQLite's default)
};

/// Sequent's replay by hand on the sqlite3 API, or one of its two halves:
///   - `full`: read the log page by page, decode, apply in the flat map; then, in one
///     transaction, the rows in key order by multi-row INSERT, and the checkpoint;
///   - `scan`: read and decode only (the decoded events are summed up, then dropped);
///   - `insert_only`: the write half, of the final rows built beforehand.
class sequent_loop {
public:
    enum class mode : std::uint8_t { full, scan, insert_only };

    sequent_loop(const std::string& log_path, std::string model_path, mode m, loop_config cfg,
                 const bulk_row_map* final_rows, std::uint64_t head)
        : model_path_(std::move(model_path)),
          mode_(m),
          cfg_(cfg),
          final_rows_(final_rows),
          head_(head),
          log_(log_path),
          page_((configure(log_, cfg.synchronous_full), log_mmap(log_, cfg.log_mmap_bytes), log_), page_sql) {
        const statement types(log_, "SELECT id, stream, name FROM projectionist_event_types");
        while (sqlite3_step(types) == SQLITE_ROW) {
            const auto id = static_cast<std::size_t>(sqlite3_column_int64(types, 0));
            if (id >= alternatives_.size()) alternatives_.resize(id + 1, no_alternative);
            alternatives_[id] = alternative_of(column_text(types, 1), column_text(types, 2));
        }
    }

    /// A new, empty read-model file with the table and the checkpoint row at 0 (not for `scan`).
    void prepare() {
        model_.reset();
        rows_ = bulk_row_map{};
        checksum_ = 0;
        if (mode_ == mode::scan) return;
        remove_database(model_path_);
        model_ = std::make_unique<database>(model_path_);
        configure(*model_, cfg_.synchronous_full);
        model_->exec(fmt::format("PRAGMA cache_size=-{}", cfg_.model_cache_kib));
        model_->exec(model_ddl);
        model_->exec(checkpoint_ddl);
        model_->exec(fmt::format("INSERT INTO projectionist_checkpoints(projection, position) VALUES ('{}', 0)",
                                 bulk_model_table));
    }

    /// Returns the number of events read (for `insert_only`: the events the rows stand for).
    std::uint64_t run() {
        if (mode_ == mode::insert_only) {
            write(*final_rows_, head_);
            return head_;
        }
        const auto started = std::chrono::steady_clock::now();
        std::uint64_t after = 0;
        std::uint64_t read = 0;
        for (;;) {
            sqlite3_bind_int64(page_, 1, static_cast<sqlite3_int64>(after));
            sqlite3_bind_int64(page_, 2, static_cast<sqlite3_int64>(cfg_.page));
            std::uint64_t in_page = 0;
            int rc = 0;
            while ((rc = sqlite3_step(page_)) == SQLITE_ROW) {
                after = static_cast<std::uint64_t>(sqlite3_column_int64(page_, 0));
                const auto type = static_cast<std::size_t>(sqlite3_column_int64(page_, 1));
                const auto* p = static_cast<const char*>(sqlite3_column_blob(page_, 2));
                const std::string_view payload(p, static_cast<std::size_t>(sqlite3_column_bytes(page_, 2)));
                const std::uint8_t alt = type < alternatives_.size() ? alternatives_[type] : no_alternative;
                if (mode_ == mode::scan)
                    decode_event(alt, payload, [&](auto&& e) { checksum_ += e.ticket_no + e.ticket_id.size(); });
                else
                    decode_event(alt, payload, [&](auto&& e) { apply_to(rows_, std::move(e)); });
                ++in_page;
            }
            sqlite3_reset(page_);
            if (rc != SQLITE_DONE) raw_fail(log_.get(), rc, "reading the log");
            read += in_page;
            if (in_page < cfg_.page) break;
        }
        const auto built = std::chrono::steady_clock::now();
        build_s_.push_back(std::chrono::duration<double>(built - started).count());
        if (mode_ == mode::full) {
            write(rows_, after);
            write_s_.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - built).count());
        }
        return read;
    }

    [[nodiscard]] const std::string& path() const noexcept { return model_path_; }
    [[nodiscard]] std::uint64_t checksum() const noexcept { return checksum_; }
    /// Per run: the time of reading, decoding and applying; of writing (full mode).
    [[nodiscard]] const std::vector<double>& build_seconds() const noexcept { return build_s_; }
    [[nodiscard]] const std::vector<double>& write_seconds() const noexcept { return write_s_; }

private:
    static void configure(const database& db, bool synchronous_full) {
        sqlite3_busy_timeout(db.get(), 5000);
        db.exec("PRAGMA journal_mode=WAL");
        db.exec(synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    }
    static void log_mmap(const database& db, std::int64_t bytes) {
        if (bytes > 0) db.exec(fmt::format("PRAGMA mmap_size={}", bytes));
    }

    static void bind_row(sqlite3_stmt* s, int first, const ticket_row& r) {
        bind_text(s, first, r.ticket_id);
        bind_text(s, first + 1, r.type);
        bind_text(s, first + 2, r.status);
        bind_text(s, first + 3, r.assignee);
        bind_text(s, first + 4, r.last_tag);
        sqlite3_bind_int(s, first + 5, r.priority);
        sqlite3_bind_int(s, first + 6, r.comments);
        sqlite3_bind_int(s, first + 7, r.reopened);
        sqlite3_bind_int(s, first + 8, r.escalation);
    }

    /// One transaction: the rows in key order, `rows_per_insert` per statement, then the
    /// checkpoint (compare and set from 0).
    void write(const bulk_row_map& rows, std::uint64_t position) {
        const database& m = *model_;
        const std::vector<const ticket_row*> sorted = sorted_rows(rows);
        m.exec("BEGIN IMMEDIATE");
        const std::size_t per = cfg_.rows_per_insert;
        const statement full(m, multi_insert_sql(per));
        std::size_t i = 0;
        for (; i + per <= sorted.size(); i += per) {
            for (std::size_t k = 0; k < per; ++k) bind_row(full, static_cast<int>(k * 9 + 1), *sorted[i + k]);
            full.done();
        }
        if (i < sorted.size()) {
            const statement rest(m, multi_insert_sql(sorted.size() - i));
            for (std::size_t k = 0; i + k < sorted.size(); ++k)
                bind_row(rest, static_cast<int>(k * 9 + 1), *sorted[i + k]);
            rest.done();
        }
        const statement cp(m, checkpoint_sql);
        sqlite3_bind_int64(cp, 1, static_cast<sqlite3_int64>(position));
        bind_text(cp, 2, bulk_model_table);
        sqlite3_bind_int64(cp, 3, 0);
        cp.done();
        if (sqlite3_changes(m.get()) != 1) throw std::runtime_error("sequent loop: the checkpoint moved");
        m.exec("COMMIT");
    }

    std::string model_path_;
    mode mode_;
    loop_config cfg_;
    const bulk_row_map* final_rows_;
    std::uint64_t head_;
    database log_;
    statement page_;
    std::vector<std::uint8_t> alternatives_;
    std::unique_ptr<database> model_;
    bulk_row_map rows_;
    std::uint64_t checksum_ = 0;
    std::vector<double> build_s_;
    std::vector<double> write_s_;
};

// ---- the runner's side ----------------------------------------------------------------------------

/// Today's runner over a new, empty read-model file per repetition (storage and runner made
/// again, and init() run, outside the timed part).
class runner_side {
public:
    using runner_type = pj::runner<bulk_tickets, pj::sqlite_storage, pj::global>;

    runner_side(log_store& log, std::string path, pj::sqlite_options options,
                pj::runner_options runner_options = batch_runner_options())
        : log_(&log), path_(std::move(path)), options_(options), runner_options_(runner_options) {}

    void prepare() {
        runner_.reset();
        storage_.reset();
        remove_database(path_);
        storage_ = std::make_unique<pj::sqlite_storage>(path_, options_);
        runner_ = std::make_unique<runner_type>(*log_, *storage_, runner_options_);
        runner_->init();
    }
    std::uint64_t run() { return runner_->backfill(); }
    [[nodiscard]] const std::string& path() const noexcept { return path_; }

private:
    log_store* log_;
    std::string path_;
    pj::sqlite_options options_;
    pj::runner_options runner_options_;
    std::unique_ptr<pj::sqlite_storage> storage_;
    std::unique_ptr<runner_type> runner_;
};

// ---- the log and the checks ---------------------------------------------------------------------

/// Copies the history into a SQLite log: the aggregates first (the rows append would create,
/// numbered in order of first appearance, version 0), then every event through the store's batch
/// append, 10,000 events per batch and transaction (one part per event, with its expected
/// version); each part's position and version are checked against the history.
double write_log(const mem_store& history, const std::string& path, const pj::sqlite_options& options) {
    const auto started = std::chrono::steady_clock::now();
    log_store log(path, options);
    const std::vector<std::uint8_t> alternatives = alternatives_of(history);
    mem_store::batch batch;
    {
        pj::detail::sqlite::connection& db = log.connection();
        db.exec("BEGIN IMMEDIATE");
        pj::detail::sqlite::statement add(
            db, "INSERT INTO projectionist_aggregates(number, stream, aggregate_id, version) VALUES (?, ?, ?, 0)");
        history.read(0, history.head(), batch);
        std::uint64_t next = 0;
        for (const mem_store::record* rec : batch) {
            if (rec->aggregate_version() != 1) continue;
            if (rec->aggregate_number() != next++)
                mismatch("8a. SQLite: aggregate numbers out of first-appearance order");
            add.bind(1, static_cast<std::int64_t>(rec->aggregate_number()));
            add.bind(2, rec->stream());
            add.bind(3, rec->aggregate_id());
            add.run();
        }
        db.exec("COMMIT");
    }
    log_store::append_batch chunk = log.new_batch();
    for (std::uint64_t after = 0;;) {
        history.read(after, 10'000, batch);
        if (batch.empty()) break;
        for (const mem_store::record* rec : batch)
            boost::mp11::mp_with_index<event_type_count>(alternatives.at(rec->type_id()), [&](auto I) {
                using E = boost::mp11::mp_at_c<ticket_events, decltype(I)::value>;
                chunk.add(ticket_stream{}, rec->aggregate_id(), pj::expected_version(rec->aggregate_version() - 1),
                          mem_store::event_of<E>(*rec));
            });
        const std::vector<pj::append_result> done = log.append(chunk);
        if (done.size() != batch.size()) mismatch("8a. SQLite: copying the history into the log");
        for (std::size_t i = 0; i < done.size(); ++i)
            if (done[i].last_position != batch[i]->position() || done[i].version != batch[i]->aggregate_version())
                mismatch("8a. SQLite: copying the history into the log");
        after += batch.size();
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

std::uint64_t file_digest(const std::string& path) {
    const database db(path);
    const statement s(db, fmt::format(R"(SELECT {} FROM "bench_tickets_v1")", columns));
    std::uint64_t d = 0;
    std::uint64_t n = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        d += digest(ticket_row{std::string(column_text(s, 0)), std::string(column_text(s, 1)),
                               std::string(column_text(s, 2)), std::string(column_text(s, 3)),
                               std::string(column_text(s, 4)), sqlite3_column_int(s, 5), sqlite3_column_int(s, 6),
                               sqlite3_column_int(s, 7), sqlite3_column_int(s, 8)});
        ++n;
    }
    return d + n;
}

std::string table_sql(const std::string& path) {
    const database db(path);
    const statement s(db, "SELECT sql FROM sqlite_schema WHERE name = 'bench_tickets_v1'");
    return sqlite3_step(s) == SQLITE_ROW ? std::string(column_text(s, 0)) : std::string();
}

double file_mb(const std::string& path) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    return ec ? 0.0 : static_cast<double>(size) / (1024.0 * 1024.0);
}

}  // namespace

void bench_bulk_sqlite(const mem_store& history, const history_stats& stats, const bulk_options& o,
                       std::vector<comparison>& out, std::vector<extra>& data) {
    const std::size_t n = stats.events;
    const fs::path dir = fs::path(o.directory) / fmt::format("projectionist-bench-bulk-{}", ::getpid());
    fs::remove_all(dir);
    fs::create_directories(dir);
    struct remove_at_exit {
        fs::path dir;
        ~remove_at_exit() {
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    } cleanup{dir};
    const pj::sqlite_options options{.synchronous = o.synchronous_full ? pj::sqlite_synchronous::full
                                                                       : pj::sqlite_synchronous::normal};
    const std::string synchronous = o.synchronous_full ? "FULL" : "NORMAL";
    const auto path = [&](std::string_view name) { return (dir / fmt::format("{}.db", name)).string(); };

    const std::string log_path = path("log");
    fmt::print("  8a. SQLite bulk baselines: writing the history into {} ...\n", log_path);
    std::fflush(stdout);
    const double write_s = write_log(history, log_path, options);
    log_store log(log_path, options);
    if (log.head() != n) mismatch("8a. SQLite: the log's head");

    const bulk_row_map final_rows = rows_at(history);
    const std::uint64_t expected = rows_digest(final_rows);
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

    loop_config cfg;
    cfg.synchronous_full = o.synchronous_full;
    using mode = sequent_loop::mode;
    runner_side runner(log, path("runner_batch"), options);
    runner_side bulk(log, path("runner_bulk"), options, pj::runner_options{.backfill = pj::backfill_mode::bulk});
    sequent_loop loop(log_path, path("sequent_loop"), mode::full, cfg, nullptr, n);
    sequent_loop scan(log_path, path("read_only_scan"), mode::scan, cfg, nullptr, n);
    sequent_loop insert(log_path, path("insert_only"), mode::insert_only, cfg, &final_rows, n);

    // The sides. The library's bulk mode is one more element here, a runner_side with its
    // options (say `runner_side bulk(log, path("runner_bulk"), options, {.backfill = bulk})`),
    // and its read-model file one more entry of `files`, checked like the others.
    std::vector<bulk_side> sides{
        {"runner_bulk",
         [&] { bulk.prepare(); },
         [&] { return bulk.run(); },
         {},
         0,
         "runner<bulk_tickets, sqlite_storage, global>::backfill() in bulk mode (the default): the rows in memory, "
         "one flush at the end"},
        {"runner_batch",
         [&] { runner.prepare(); },
         [&] { return runner.run(); },
         {},
         0,
         "runner<bulk_tickets, sqlite_storage, global>::backfill(), default runner_options in batch mode (batches of "
         "1000)"},
        {"sequent_loop",
         [&] { loop.prepare(); },
         [&] { return loop.run(); },
         {},
         0,
         "raw sqlite3: the log in pages of 100000, binary_codec, a flat map; then one transaction of 250-row "
         "INSERTs in key order and the checkpoint"},
        {"read_only_scan",
         [&] { scan.prepare(); },
         [&] { return scan.run(); },
         {},
         0,
         "the sequent loop's read and decode alone"},
        {"insert_only",
         [&] { insert.prepare(); },
         [&] { return insert.run(); },
         {},
         0,
         "the sequent loop's write alone, of the final rows built beforehand"},
    };
    const std::vector<std::string> files{runner.path(), bulk.path(), loop.path(), insert.path()};

    fmt::print(
        "     {} events in {:.1f} s ({:.0f} MB); a new read-model file per side and repetition in {}; "
        "synchronous={}, journal_mode=WAL; the loops' read-model connection cache_size={} MB; {} repetitions per "
        "side, interleaved; rates from wall time (the bulk runner reads on a second thread while it applies), "
        "CPU-time rates beside them\n",
        n, write_s, file_mb(log_path), o.directory, synchronous, cfg.model_cache_kib / 1024, o.repetitions);
    std::fflush(stdout);
    const std::vector<bulk_samples> s = measure_bulk(sides, o.repetitions, n, "8a. SQLite bulk");
    print_bulk_samples(fmt::format("8a. SQLite bulk backfill baselines ({} events, synchronous={})", n, synchronous), s,
                       n, time_basis::wall);

    for (const std::string& f : files) {
        if (file_digest(f) != expected) mismatch("8a. SQLite bulk: the rows in " + f);
        const database db(f);
        if (query_int(db, fmt::format("SELECT position FROM projectionist_checkpoints WHERE projection = '{}'",
                                      bulk_model_table)) != static_cast<std::int64_t>(n))
            mismatch("8a. SQLite bulk: the checkpoint in " + f);
        if (table_sql(f) != table_sql(runner.path()))
            mismatch("8a. SQLite bulk: the table in " + f + " is not the one sqlite_storage creates");
    }
    if (scan.checksum() != expected_checksum) mismatch("8a. SQLite bulk: the read-only scan's events");

    // 8a's sides: wall time, the time a user waits (the bulk runner works on two threads, the
    // loops on one); their CPU time beside it. The children's (8c, 8d): the process's CPU time.
    const time_basis bw = time_basis::wall;
    const time_basis b = time_basis::cpu;
    std::vector<extra> extras{
        {"events", static_cast<double>(n)},
        {"runner_batch_mode", runner_batch_mode()},
        {"rows", static_cast<double>(final_rows.size())},
        {"runs", static_cast<double>(o.repetitions)},
        {"synchronous", synchronous},
        {"journal_mode", std::string("WAL (every connection)")},
        {"loop_model_cache_size_kib", static_cast<double>(cfg.model_cache_kib)},
        {"loop_log_mmap_size", static_cast<double>(cfg.log_mmap_bytes)},
        {"loop_page_events", static_cast<double>(cfg.page)},
        {"loop_rows_per_insert", static_cast<double>(cfg.rows_per_insert)},
        {"runner_cache", std::string("the session's page cache, sqlite_options::session_cache_size_kib (64 MB)")},
        {"time", std::string("events/s from the median of wall time (the bulk runner reads the log on a second "
                             "thread while it applies; the files are in memory); rates from the process's CPU "
                             "time (every thread's) beside them")},
        {"log_write_s", write_s},
        {"log_mb", file_mb(log_path)},
        {"read_model_mb", file_mb(loop.path())},
        {"sequent_loop_build_median_ms", median_of(loop.build_seconds()) * 1e3},
        {"sequent_loop_write_median_ms", median_of(loop.write_seconds()) * 1e3},
    };
    for (extra& x : bulk_side_extras(s, n, bw)) extras.push_back(std::move(x));

    const double runner_t = basis_median(side_named(s, "runner_batch"), bw);
    const double bulk_t = basis_median(side_named(s, "runner_bulk"), bw);
    const double loop_t = basis_median(side_named(s, "sequent_loop"), bw);
    const double scan_t = basis_median(side_named(s, "read_only_scan"), bw);
    const double insert_t = basis_median(side_named(s, "insert_only"), bw);
    extras.push_back(bulk_over_loop_by_cpu(s, b));
    comparison a{"8a. SQLite bulk backfill: runner bulk / runner batch (events/s)",
                 runner_t / bulk_t,
                 ">= 8",
                 false,
                 rates_line(s, n, bw),
                 extras};
    a.met = a.ratio >= 8;
    comparison a2{"8a'. SQLite bulk backfill: runner bulk / sequent loop (events/s)",
                  loop_t / bulk_t,
                  ">= 0.9",
                  false,
                  rates_line(s, n, bw),
                  extras};
    a2.met = a2.ratio >= 0.9;
    comparison c{"8a''. SQLite bulk: (scan + insert) / sequent loop (time)",
                 (scan_t + insert_t) / loop_t,
                 "none (physical limit)",
                 false,
                 fmt::format("sequent loop {:.0f} ms = read+decode {:.0f} ms + insert {:.0f} ms + the rest {:.0f} ms",
                             loop_t * 1e3, scan_t * 1e3, insert_t * 1e3, (loop_t - scan_t - insert_t) * 1e3),
                 extras};
    c.informational = true;
    out.push_back(std::move(a));
    out.push_back(std::move(a2));
    out.push_back(std::move(c));
    data.push_back({"bulk_sqlite_log_write_s", write_s});

    const bulk_child_options co = bulk_child_options::from_environment();
    const std::string sync_arg = o.synchronous_full ? "full" : "normal";
    // A child side: the bulk runner in a process of its own over `log`, into `model`.
    const auto child = [&](std::string name, const std::string& log_file, const std::string& model, std::size_t budget,
                           std::uint64_t digest, std::uint64_t head, std::string runner = "global") {
        return child_side{std::move(name), [model] { remove_database(model); },
                          std::vector<std::string>{"sqlite", log_file, model,
                                                   budget == pj::runner_options::unbounded ? std::string("unbounded")
                                                                                           : std::to_string(budget),
                                                   sync_arg, runner},
                          [model, digest, head] {
                              if (file_digest(model) != digest) mismatch("8c/8d. SQLite bulk: the rows in " + model);
                              const database db(model);
                              if (query_int(db, fmt::format("SELECT position FROM projectionist_checkpoints WHERE "
                                                            "projection = '{}'",
                                                            bulk_model_table)) != static_cast<std::int64_t>(head))
                                  mismatch("8c/8d. SQLite bulk: the checkpoint in " + model);
                          },
                          child_what("sqlite_storage", budget, runner)};
    };

    // 8c. A memory budget of a quarter of the read model (as the row store counts it).
    if (co.budget_repetitions > 0) {
        const std::size_t model_bytes = row_store_bytes(final_rows);
        const std::size_t budget = model_bytes / co.budget_divisor;
        const std::vector<child_side> sides{
            child("unbounded", log_path, path("child_unbounded"), pj::runner_options::unbounded, expected, n),
            child("budget", log_path, path("child_budget"), budget, expected, n),
            child("pa_unbounded", log_path, path("child_pa_unbounded"), pj::runner_options::unbounded, expected, n,
                  "per_aggregate"),
            child("passes", log_path, path("child_passes"), budget, expected, n, "passes")};
        fmt::print(
            "  8c. SQLite bulk with a memory budget: the read model is {:.1f} MiB in the row store ({} rows); budget "
            "{:.1f} MiB (1/{}); every run a process of its own ({}), {} repetitions per side\n",
            static_cast<double>(model_bytes) / 1048576.0, final_rows.size(), static_cast<double>(budget) / 1048576.0,
            co.budget_divisor, child_program(), co.budget_repetitions);
        const std::vector<child_samples> cs =
            measure_children(sides, co.budget_repetitions, n, false, "8c. SQLite budget");
        print_child_samples(
            fmt::format("8c. SQLite bulk backfill, unbounded / budget of 1/{} ({} events)", co.budget_divisor, n), cs,
            n, b);
        std::vector<extra> ex{{"events", static_cast<double>(n)},
                              {"rows", static_cast<double>(final_rows.size())},
                              {"read_model_row_store_mib", static_cast<double>(model_bytes) / 1048576.0},
                              {"budget_mib", static_cast<double>(budget) / 1048576.0},
                              {"budget_divisor", static_cast<double>(co.budget_divisor)},
                              {"synchronous", synchronous},
                              {"runs", static_cast<double>(co.budget_repetitions)},
                              {"time", std::string("events/s from the median of the child's backfill thread's CPU "
                                                   "time; wall beside it; peak RSS is the child's VmHWM")}};
        for (extra& x : child_extras(cs, n, b)) ex.push_back(std::move(x));
        const double unbounded_t = basis_median(cs[0].times, b);
        const double budget_t = basis_median(cs[1].times, b);
        comparison cc{
            fmt::format("8c. SQLite bulk: budget of 1/{} of the read model / unbounded (events/s)", co.budget_divisor),
            unbounded_t / budget_t,
            ">= 0.5",
            false,
            fmt::format("unbounded {}ev/s, peak RSS {:.0f} MiB; budget {:.1f} MiB: {}ev/s, peak RSS {:.0f} "
                        "MiB, {} flushes",
                        si(events_per_second(unbounded_t, n)), median_of(cs[0].peak_mib),
                        static_cast<double>(budget) / 1048576.0, si(events_per_second(budget_t, n)),
                        median_of(cs[1].peak_mib), cs[1].flushes),
            std::move(ex)};
        cc.met = cc.ratio >= 0.5;
        out.push_back(std::move(cc));
        out.push_back(passes_comparison("SQLite", cs, 2, 3, n, b, budget, co.budget_divisor));
    }

    // 8d. Scale: a larger history over more aggregates in a log of its own; the bulk runner (a
    // process of its own, unbounded) and the Sequent loop over both logs, in interleaved rounds.
    if (co.scale_events > 0) {
        history_spec spec;
        spec.events = co.scale_events;
        spec.aggregates = co.scale_aggregates;
        const std::string big_log = path("scale_log");
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
                "  8d. SQLite bulk at scale: {} events over {} aggregates generated in {:.1f} s, writing the log "
                "...\n",
                bs.events, bs.aggregates, gen_s);
            std::fflush(stdout);
            big_write_s = write_log(big, big_log, options);
            const bulk_row_map rows = rows_at(big);
            big_digest = rows_digest(rows);
            big_rows = rows.size();
            big_bytes = row_store_bytes(rows);
        }
        const std::string big_model = path("scale_model");
        const child_side bulk_reference = child("bulk_reference", log_path, path("scale_reference_model"),
                                                pj::runner_options::unbounded, expected, n);
        const child_side bulk_scale =
            child("bulk_scale", big_log, big_model, pj::runner_options::unbounded, big_digest, big_n);
        sequent_loop big_loop(big_log, path("scale_sequent"), mode::full, cfg, nullptr, big_n);
        const bulk_side loop_reference{"loop_reference",
                                       [&] { prepare_trimmed(loop); },
                                       [&] { return loop.run(); },
                                       {},
                                       0,
                                       "the Sequent loop of 8a over the reference log, in the benchmark's process"};
        const bulk_side loop_scale{"loop_scale",
                                   [&] { prepare_trimmed(big_loop); },
                                   [&] { return big_loop.run(); },
                                   {},
                                   0,
                                   "the Sequent loop of 8a over the large log, in the benchmark's process"};
        fmt::print(
            "     log written in {:.1f} s ({:.0f} MB, batch appends of 10,000 events); read model {:.1f} MiB in the "
            "row store ({} rows); {} rounds of bulk {}, bulk {}, loop {}, loop {} "
            "(PROJECTIONIST_BENCH_BULK_SCALE_REPS)\n",
            big_write_s, file_mb(big_log), static_cast<double>(big_bytes) / 1048576.0, big_rows, co.scale_repetitions,
            n, big_n, n, big_n);
        std::fflush(stdout);
        const scale_samples ss = measure_scale(bulk_reference, bulk_scale, loop_reference, loop_scale,
                                               co.scale_repetitions, n, big_n, false, "8d. SQLite scale");
        print_scale_samples("8d. SQLite at scale", ss, n, big_n, b);
        if (file_digest(loop.path()) != expected) mismatch("8d. SQLite scale: the rows in " + loop.path());
        if (file_digest(big_loop.path()) != big_digest) mismatch("8d. SQLite scale: the rows in " + big_loop.path());
        const double model_mb = file_mb(big_model) + file_mb(big_model + "-wal");
        const double loop_model_mb = file_mb(big_loop.path()) + file_mb(big_loop.path() + "-wal");
        std::vector<extra> ex{{"events", static_cast<double>(big_n)},
                              {"aggregates", static_cast<double>(spec.aggregates)},
                              {"rows", static_cast<double>(big_rows)},
                              {"generation_s", gen_s},
                              {"log_write", std::string("sqlite_event_store batch appends of 10,000 events, each "
                                                        "its own transaction")},
                              {"log_write_s", big_write_s},
                              {"log_mb", file_mb(big_log)},
                              {"read_model_db_mb", model_mb},
                              {"loop_read_model_db_mb", loop_model_mb},
                              {"read_model_row_store_mib", static_cast<double>(big_bytes) / 1048576.0},
                              {"reference_events", static_cast<double>(n)},
                              {"reference_rows", static_cast<double>(final_rows.size())},
                              {"synchronous", synchronous},
                              {"runs", static_cast<double>(co.scale_repetitions)},
                              {"loop_scale_build_median_ms", median_of(big_loop.build_seconds()) * 1e3},
                              {"loop_scale_write_median_ms", median_of(big_loop.write_seconds()) * 1e3},
                              {"time", std::string("events/s from the median of the backfill thread's CPU time (the "
                                                   "bulk runner's in its child process, the loop's in this one)")}};
        for (comparison& c : scale_comparisons(
                 "SQLite", ss, n, big_n, b, std::move(ex),
                 fmt::format("{} rows; bulk peak RSS {:.0f} MiB; read model {:.0f} MB on disk; log {:.0f} MB", big_rows,
                             median_of(ss.bulk_scale.peak_mib), model_mb, file_mb(big_log))))
            out.push_back(std::move(c));
    }
}

}  // namespace bench
