// Comparison 6, SQLite: backfilling the tickets read model from a SQLite event log.
//
// The history of the other comparisons (the memory_event_store filled by generate_history) is
// copied once, event by event, into a SQLite log through sqlite_event_store::append. Then:
//
//   runner                  runner<sqlite_tickets, sqlite_storage, global>: backfill()
//   raw_loop                the same work, hand-written on the raw sqlite3 API
//   raw_loop_no_checkpoint  raw_loop without the checkpoint UPDATE (still a transaction per batch)
//   runner_per_aggregate    runner<sqlite_tickets, sqlite_storage, per_aggregate>: backfill()
//
// Every side writes into its own read-model file ("two files" mode: the log is another file),
// deleted and created again before each repetition, so that every repetition starts from an
// empty read model. README.md ("6. SQLite backfill") says exactly which statements each side runs.

#include "bench_sqlite.hpp"
#include "raw_sqlite.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/mp11/algorithm.hpp>

#include <projectionist/sqlite.hpp>

namespace bench {
namespace {

namespace fs = std::filesystem;
using mem_store = pj::memory_event_store;
using log_store = pj::sqlite_event_store;

// ---- the projection -----------------------------------------------------------------------------

/// How a handler writes a changed row back.
enum class row_write : std::uint8_t {
    upsert,      ///< find, apply, upsert (INSERT ... ON CONFLICT DO UPDATE of the non-key columns)
    update_all,  ///< sqlite_table::update: find, apply, UPDATE of every column (the key too)
};

/// The tickets read model on SQLite. A registration inserts the row; every other event reads the
/// row with `find`, changes it with the shared `apply` and writes it back (`Write`).
template <row_write Write>
struct sqlite_tickets_t : pj::projection<"bench_tickets", 1, ticket_stream, pj::exhaustive> {
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
        if constexpr (Write == row_write::upsert) {
            if (std::optional<ticket_row> row = table.find(e.ticket_id)) {
                apply(e, *row);
                table.upsert(*row);
            }
        } else {
            table.update(e.ticket_id, [&](ticket_row& r) { apply(e, r); });
        }
    }
};
using sqlite_tickets = sqlite_tickets_t<row_write::upsert>;
constexpr std::string_view model_table = pj::name_of<sqlite_tickets>;
static_assert(model_table == "bench_tickets_v1");

/// The statements, written out; the same text projectionist's sqlite_event_store, sqlite_table
/// and sqlite_storage::session generate (README.md lists them).
constexpr const char* model_ddl =
    R"(CREATE TABLE IF NOT EXISTS "bench_tickets_v1" ("ticket_id" TEXT NOT NULL, "type" TEXT NOT NULL, )"
    R"("status" TEXT NOT NULL, "assignee" TEXT NOT NULL, "last_tag" TEXT NOT NULL, "priority" INTEGER NOT NULL, )"
    R"("comments" INTEGER NOT NULL, "reopened" INTEGER NOT NULL, "escalation" INTEGER NOT NULL, )"
    R"(PRIMARY KEY("ticket_id")) WITHOUT ROWID)";
constexpr const char* checkpoint_ddl =
    "CREATE TABLE IF NOT EXISTS projectionist_checkpoints(\n    projection TEXT PRIMARY KEY,\n    position "
    "INTEGER NOT NULL)";
constexpr const char* read_sql =
    "SELECT position, type_id, aggregate_number, aggregate_version, schema_version, recorded_at, aggregate_id, "
    "payload FROM projectionist_events WHERE position > ? ORDER BY position LIMIT ?";
#define BENCH_COLUMNS \
    R"("ticket_id", "type", "status", "assignee", "last_tag", "priority", "comments", "reopened", "escalation")"
constexpr const char* insert_sql =
    R"(INSERT INTO "bench_tickets_v1" ()" BENCH_COLUMNS R"() VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?))";
constexpr const char* find_sql = R"(SELECT )" BENCH_COLUMNS R"( FROM "bench_tickets_v1" WHERE "ticket_id" = ?)";
constexpr const char* upsert_sql =
    R"(INSERT INTO "bench_tickets_v1" ()" BENCH_COLUMNS R"() VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) )"
    R"(ON CONFLICT("ticket_id") DO UPDATE SET "type" = excluded."type", "status" = excluded."status", )"
    R"("assignee" = excluded."assignee", "last_tag" = excluded."last_tag", "priority" = excluded."priority", )"
    R"("comments" = excluded."comments", "reopened" = excluded."reopened", "escalation" = excluded."escalation")";
constexpr const char* update_all_sql =
    R"(UPDATE "bench_tickets_v1" SET "ticket_id" = ?, "type" = ?, "status" = ?, "assignee" = ?, "last_tag" = ?, )"
    R"("priority" = ?, "comments" = ?, "reopened" = ?, "escalation" = ? WHERE "ticket_id" = ?)";
constexpr const char* update_non_key_sql =
    R"(UPDATE "bench_tickets_v1" SET "type" = ?, "status" = ?, "assignee" = ?, "last_tag" = ?, )"
    R"("priority" = ?, "comments" = ?, "reopened" = ?, "escalation" = ? WHERE "ticket_id" = ?)";
#undef BENCH_COLUMNS
constexpr const char* checkpoint_sql =
    "UPDATE projectionist_checkpoints SET position = ? WHERE projection = ? AND position = ?";
constexpr const char* aggregate_checkpoint_ddl =
    "CREATE TABLE IF NOT EXISTS projectionist_aggregate_checkpoints(\n    projection TEXT NOT NULL,\n    "
    "aggregate_number INTEGER NOT NULL,\n    version INTEGER NOT NULL,\n    PRIMARY KEY(projection, "
    "aggregate_number)) WITHOUT ROWID";
constexpr const char* aggregate_row_sql =
    "INSERT INTO projectionist_aggregate_checkpoints(projection, aggregate_number, version) VALUES (?, ?, ?) ON "
    "CONFLICT(projection, aggregate_number) DO UPDATE SET version = excluded.version";
/// The proposed layout (not projectionist's): a batch's changed positions in one appended row.
constexpr const char* aggregate_delta_ddl =
    "CREATE TABLE IF NOT EXISTS bench_aggregate_deltas(id INTEGER PRIMARY KEY, projection TEXT NOT NULL, "
    "position INTEGER NOT NULL, changes BLOB NOT NULL)";
constexpr const char* aggregate_delta_sql =
    "INSERT INTO bench_aggregate_deltas(projection, position, changes) VALUES (?, ?, ?)";

/// Binds the row's fields to parameters first, first+1, ... (the key too unless `skip_key`).
inline void bind_row(sqlite3_stmt* s, int first, const ticket_row& r, bool skip_key = false) {
    int i = first;
    if (!skip_key) bind_text(s, i++, r.ticket_id);
    bind_text(s, i++, r.type);
    bind_text(s, i++, r.status);
    bind_text(s, i++, r.assignee);
    bind_text(s, i++, r.last_tag);
    sqlite3_bind_int64(s, i++, r.priority);
    sqlite3_bind_int64(s, i++, r.comments);
    sqlite3_bind_int64(s, i++, r.reopened);
    sqlite3_bind_int64(s, i, r.escalation);
}
inline void read_row(sqlite3_stmt* s, ticket_row& r) {
    r.ticket_id.assign(column_text(s, 0));
    r.type.assign(column_text(s, 1));
    r.status.assign(column_text(s, 2));
    r.assignee.assign(column_text(s, 3));
    r.last_tag.assign(column_text(s, 4));
    r.priority = static_cast<int>(sqlite3_column_int64(s, 5));
    r.comments = static_cast<int>(sqlite3_column_int64(s, 6));
    r.reopened = static_cast<int>(sqlite3_column_int64(s, 7));
    r.escalation = static_cast<int>(sqlite3_column_int64(s, 8));
}

/// The hand-written backfill: reads the log in batches with the store's SELECT, decodes each
/// payload with binary_codec, and writes the rows with the statements sqlite_table runs, one
/// transaction per batch, with (optionally) the checkpoint UPDATE in it.
class raw_backfill {
public:
    struct config {
        bool checkpoint = true;  ///< the checkpoint UPDATE per batch
        /// How a changed row is written back after find + apply.
        enum class write : std::uint8_t {
            upsert,         ///< sqlite_table::upsert's INSERT ... ON CONFLICT DO UPDATE (the non-key columns)
            update_all,     ///< sqlite_table::update's UPDATE of every column, the key too
            update_non_key  ///< UPDATE of the non-key columns (proposed for sqlite_table::update)
        } rows = write::upsert;
        /// Per-aggregate positions, written at the end of each batch.
        enum class positions : std::uint8_t {
            none,  ///< global: only the checkpoint
            rows,  ///< sqlite_storage's statement: one upsert per changed aggregate into
                   ///< projectionist_aggregate_checkpoints
            delta  ///< proposed: one row per batch holding the batch's (aggregate, version) pairs as a blob
        } aggregates = positions::none;
        int cache_kib = 0;  ///< 0: SQLite's default page cache; else PRAGMA cache_size=-N
    };

    raw_backfill(const std::string& log_path, std::string model_path, bool synchronous_full, std::size_t batch_size,
                 config cfg)
        : model_path_(std::move(model_path)),
          synchronous_full_(synchronous_full),
          batch_size_(batch_size),
          cfg_(cfg),
          log_(log_path),
          read_((log_.configure(synchronous_full), log_), read_sql) {
        // Type id -> the switch's case label, by stream and stored name, built once.
        raw_stmt types(log_, "SELECT id, stream, name FROM projectionist_event_types");
        while (sqlite3_step(types) == SQLITE_ROW) {
            const auto id = static_cast<std::size_t>(sqlite3_column_int64(types, 0));
            if (id >= alternatives_.size()) alternatives_.resize(id + 1, no_alternative);
            boost::mp11::mp_for_each<ticket_events>([&](auto e) {
                using E = decltype(e);
                if (column_text(types, 1) == ticket_stream::name && column_text(types, 2) == pj::event_name_of<E>)
                    alternatives_[id] = alternative<E>;
            });
        }
    }

    /// A new, empty read-model file: the same pragmas, table and checkpoint row as the runner's.
    void prepare() {
        model_.reset();
        remove_database(model_path_);
        model_ = std::make_unique<model>(model_path_, synchronous_full_, cfg_.cache_kib);
        versions_.clear();
        changed_.clear();
    }

    /// Backfills from position 0 to the end of the log; returns the number of events applied.
    std::uint64_t run() {
        model& m = *model_;
        std::uint64_t after = 0;
        std::uint64_t applied = 0;
        for (;;) {
            sqlite3_bind_int64(read_, 1, static_cast<sqlite3_int64>(after));
            sqlite3_bind_int64(read_, 2, static_cast<sqlite3_int64>(batch_size_));
            int rc = sqlite3_step(read_);
            if (rc != SQLITE_ROW) {
                sqlite3_reset(read_);
                if (rc != SQLITE_DONE) raw_fail(log_.db, rc, "reading the log");
                return applied;
            }
            m.db.exec("BEGIN IMMEDIATE");
            std::uint64_t last = after;
            do {
                last = static_cast<std::uint64_t>(sqlite3_column_int64(read_, 0));
                const auto type = static_cast<std::size_t>(sqlite3_column_int64(read_, 1));
                if (cfg_.aggregates != config::positions::none)
                    track(static_cast<std::uint64_t>(sqlite3_column_int64(read_, 2)),
                          static_cast<std::uint64_t>(sqlite3_column_int64(read_, 3)));
                const auto* p = static_cast<const char*>(sqlite3_column_blob(read_, 7));
                const std::string_view payload(p, static_cast<std::size_t>(sqlite3_column_bytes(read_, 7)));
                apply_event(m, type < alternatives_.size() ? alternatives_[type] : no_alternative, payload);
                ++applied;
            } while ((rc = sqlite3_step(read_)) == SQLITE_ROW);
            sqlite3_reset(read_);
            if (rc != SQLITE_DONE) raw_fail(log_.db, rc, "reading the log");
            if (cfg_.checkpoint) {
                const auto started = std::chrono::steady_clock::now();
                sqlite3_bind_int64(m.checkpoint, 1, static_cast<sqlite3_int64>(last));
                bind_text(m.checkpoint, 2, model_table);
                sqlite3_bind_int64(m.checkpoint, 3, static_cast<sqlite3_int64>(after));
                m.checkpoint.done();
                if (sqlite3_changes(m.db.db) != 1) throw std::runtime_error("raw loop: the checkpoint moved");
                checkpoint_seconds_ +=
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
                ++checkpoints_;
            }
            if (cfg_.aggregates != config::positions::none) write_positions(m, last);
            m.db.exec("COMMIT");
            after = last;
        }
    }

    [[nodiscard]] const std::string& path() const noexcept { return model_path_; }
    /// Time spent in the checkpoint statement (bind, step, reset, changes) over every timed and
    /// untimed run so far, and how many times it ran.
    [[nodiscard]] double checkpoint_seconds() const noexcept { return checkpoint_seconds_; }
    [[nodiscard]] std::uint64_t checkpoints() const noexcept { return checkpoints_; }

private:
    struct model {
        raw_db db;
        raw_stmt insert, find, upsert, update_all, update_non_key, checkpoint, aggregate_row, aggregate_delta;

        model(const std::string& path, bool synchronous_full, int cache_kib)
            : db(path),
              insert((db.configure(synchronous_full), create(db, cache_kib), db), insert_sql),
              find(db, find_sql),
              upsert(db, upsert_sql),
              update_all(db, update_all_sql),
              update_non_key(db, update_non_key_sql),
              checkpoint(db, checkpoint_sql),
              aggregate_row(db, aggregate_row_sql),
              aggregate_delta(db, aggregate_delta_sql) {}

        static void create(const raw_db& db, int cache_kib) {
            if (cache_kib > 0) db.exec(fmt::format("PRAGMA cache_size=-{}", cache_kib).c_str());
            db.exec(model_ddl);
            db.exec(checkpoint_ddl);
            db.exec(aggregate_checkpoint_ddl);
            db.exec(aggregate_delta_ddl);
            db.exec("INSERT INTO projectionist_checkpoints(projection, position) VALUES ('bench_tickets_v1', 0)");
        }
    };

    /// Per aggregate: the runner's version check and bookkeeping (a dense vector by aggregate
    /// number, and the numbers the batch changed).
    void track(std::uint64_t number, std::uint64_t version) {
        if (number >= versions_.size()) versions_.resize(number + 1 + number / 2, 0);
        if (version != versions_[number] + 1) throw std::runtime_error("raw loop: aggregate version gap");
        versions_[number] = version;
        changed_.push_back(number);
    }

    void write_positions(model& m, std::uint64_t position) {
        if (cfg_.aggregates == config::positions::rows) {
            for (const std::uint64_t number : changed_) {
                bind_text(m.aggregate_row, 1, model_table);
                sqlite3_bind_int64(m.aggregate_row, 2, static_cast<sqlite3_int64>(number));
                sqlite3_bind_int64(m.aggregate_row, 3, static_cast<sqlite3_int64>(versions_[number]));
                m.aggregate_row.done();
            }
        } else {
            // The batch's (number, version) pairs as LEB128 varints: one row, appended in rowid order.
            blob_.clear();
            const auto varint = [&](std::uint64_t v) {
                while (v >= 0x80) {
                    blob_.push_back(static_cast<char>((v & 0x7F) | 0x80));
                    v >>= 7;
                }
                blob_.push_back(static_cast<char>(v));
            };
            for (const std::uint64_t number : changed_) {
                varint(number);
                varint(versions_[number]);
            }
            bind_text(m.aggregate_delta, 1, model_table);
            sqlite3_bind_int64(m.aggregate_delta, 2, static_cast<sqlite3_int64>(position));
            sqlite3_bind_blob(m.aggregate_delta, 3, blob_.data(), static_cast<int>(blob_.size()), SQLITE_STATIC);
            m.aggregate_delta.done();
        }
        changed_.clear();
    }

    void apply_event(model& m, std::uint8_t alt, std::string_view payload) {
        switch (alt) {
            case alternative<ticket_registered>: insert(m, pj::binary_codec::decode<ticket_registered>(payload)); break;
            case alternative<ticket_assigned>: change(m, pj::binary_codec::decode<ticket_assigned>(payload)); break;
            case alternative<ticket_prioritized>:
                change(m, pj::binary_codec::decode<ticket_prioritized>(payload));
                break;
            case alternative<ticket_commented>: change(m, pj::binary_codec::decode<ticket_commented>(payload)); break;
            case alternative<ticket_closed>: change(m, pj::binary_codec::decode<ticket_closed>(payload)); break;
            case alternative<ticket_reopened>: change(m, pj::binary_codec::decode<ticket_reopened>(payload)); break;
            case alternative<ticket_escalated>: change(m, pj::binary_codec::decode<ticket_escalated>(payload)); break;
            case alternative<ticket_tagged>: change(m, pj::binary_codec::decode<ticket_tagged>(payload)); break;
            default: throw std::runtime_error("raw loop: an event type that is not in the ticket stream");
        }
    }

    static void insert(model& m, const ticket_registered& e) {
        bind_row(m.insert, 1, make_row(e));
        m.insert.done();
    }

    template <class E>
    void change(model& m, const E& e) {
        bind_text(m.find, 1, e.ticket_id);
        const bool found = sqlite3_step(m.find) == SQLITE_ROW;
        if (found) read_row(m.find, row_);
        sqlite3_reset(m.find);
        if (!found) return;
        apply(e, row_);
        switch (cfg_.rows) {
            case config::write::upsert:
                bind_row(m.upsert, 1, row_);
                m.upsert.done();
                break;
            case config::write::update_all:
                bind_row(m.update_all, 1, row_);
                bind_text(m.update_all, 10, e.ticket_id);
                m.update_all.done();
                break;
            case config::write::update_non_key:
                bind_row(m.update_non_key, 1, row_, true);
                bind_text(m.update_non_key, 9, e.ticket_id);
                m.update_non_key.done();
                break;
        }
    }

    std::string model_path_;
    bool synchronous_full_;
    std::size_t batch_size_;
    config cfg_;
    raw_db log_;
    raw_stmt read_;
    std::vector<std::uint8_t> alternatives_;
    std::unique_ptr<model> model_;
    ticket_row row_;  // reused: its strings keep their capacity
    std::vector<std::uint64_t> versions_;
    std::vector<std::uint64_t> changed_;
    std::string blob_;
    double checkpoint_seconds_ = 0;
    std::uint64_t checkpoints_ = 0;
};

// ---- the runner's side ----------------------------------------------------------------------------

/// A runner over a new, empty read-model file per repetition (storage, session and runner are
/// made again, and init() run, outside the timed part).
template <class Projection, class Partitioning>
class runner_side {
public:
    using runner_type = pj::runner<Projection, pj::sqlite_storage, Partitioning>;

    /// `cache_kib` > 0 sets PRAGMA cache_size=-cache_kib on the session's connection (an
    /// attribution side; projectionist itself leaves SQLite's default).
    runner_side(log_store& log, std::string path, pj::sqlite_options options, int cache_kib = 0)
        : log_(&log), path_(std::move(path)), options_(options), cache_kib_(cache_kib) {}

    void prepare() {
        runner_.reset();
        storage_.reset();
        remove_database(path_);
        storage_ = std::make_unique<pj::sqlite_storage>(path_, options_);
        // Batch mode: comparison 6 measures the per-batch path against loops that write per batch
        // (a backfill's default on a database is the bulk mode, measured in comparison 8).
        runner_ =
            std::make_unique<runner_type>(*log_, *storage_, pj::runner_options{.backfill = pj::backfill_mode::batch});
        if (cache_kib_ > 0) runner_->session().connection().exec(fmt::format("PRAGMA cache_size=-{}", cache_kib_));
        runner_->init();
    }
    std::uint64_t run() { return runner_->backfill(); }

    [[nodiscard]] runner_type& runner() { return *runner_; }
    [[nodiscard]] const std::string& path() const noexcept { return path_; }

private:
    log_store* log_;
    std::string path_;
    pj::sqlite_options options_;
    int cache_kib_;
    std::unique_ptr<pj::sqlite_storage> storage_;
    std::unique_ptr<runner_type> runner_;
};

// ---- the log, and checking the results ------------------------------------------------------------

/// Copies the history into a SQLite log through sqlite_event_store::append: one append per event
/// with its expected version, in transactions of 50,000 events (append nests a savepoint in an
/// open transaction).
///
/// With `preregister` (the default), the aggregates are inserted first into
/// projectionist_aggregates, numbered in order of first appearance with version 0: exactly the
/// rows append would create, since it numbers a new aggregate `(SELECT count(*) FROM
/// projectionist_aggregates)`. That count reads the whole table for every new aggregate, which
/// took most of the 33-47 s that writing this history through append alone took (README.md,
/// findings); every event is still written by append.
double write_log(const mem_store& history, const std::string& path, const pj::sqlite_options& options,
                 bool preregister) {
    const auto started = std::chrono::steady_clock::now();
    log_store log(path, options);
    const std::vector<std::uint8_t> alternatives = alternatives_of(history);
    mem_store::batch batch;
    if (preregister) {
        pj::detail::sqlite::connection& db = log.connection();
        db.exec("BEGIN IMMEDIATE");
        pj::detail::sqlite::statement add(db,
                                          "INSERT INTO projectionist_aggregates(number, stream, aggregate_id, version) "
                                          "VALUES (?, ?, ?, 0)");
        history.read(0, history.head(), batch);
        std::uint64_t next = 0;
        for (const mem_store::record* rec : batch) {
            if (rec->aggregate_version() != 1) continue;  // first appearance
            if (rec->aggregate_number() != next++)
                mismatch("6. SQLite: aggregate numbers are not in first-appearance order");
            add.bind(1, static_cast<std::int64_t>(rec->aggregate_number()));
            add.bind(2, rec->stream());
            add.bind(3, rec->aggregate_id());
            add.run();
        }
        db.exec("COMMIT");
    }
    std::uint64_t after = 0;
    for (;;) {
        history.read(after, 50'000, batch);
        if (batch.empty()) break;
        log.connection().exec("BEGIN IMMEDIATE");
        for (const mem_store::record* rec : batch) {
            const pj::expected_version expected(rec->aggregate_version() - 1);
            pj::append_result r;
            boost::mp11::mp_with_index<event_type_count>(alternatives.at(rec->type_id()), [&](auto I) {
                using E = boost::mp11::mp_at_c<ticket_events, decltype(I)::value>;
                r = log.append(ticket_stream{}, rec->aggregate_id(), expected, mem_store::event_of<E>(*rec));
            });
            if (r.last_position != rec->position() || r.version != rec->aggregate_version())
                mismatch("6. SQLite: copying the history into the log (positions or versions differ)");
        }
        log.connection().exec("COMMIT");
        after += batch.size();
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

/// What every side must have built: the in-memory rebuild of the same history (a map, the same
/// shared make_row/apply), digested like digest_map in bench_main.cpp.
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

/// The digest of a read-model file's rows, read with a separate connection.
std::uint64_t file_digest(const std::string& path) {
    raw_db db(path);
    raw_stmt s(db, R"(SELECT "ticket_id", "type", "status", "assignee", "last_tag", "priority", "comments", )"
                   R"("reopened", "escalation" FROM "bench_tickets_v1")");
    std::uint64_t d = 0;
    std::uint64_t n = 0;
    ticket_row row;
    while (sqlite3_step(s) == SQLITE_ROW) {
        read_row(s, row);
        d += digest(row);
        ++n;
    }
    return d + n;
}

std::int64_t file_checkpoint(const std::string& path) {
    raw_db db(path);
    return query_int(db, "SELECT position FROM projectionist_checkpoints WHERE projection = 'bench_tickets_v1'");
}

/// Per aggregate: (aggregates with a position, sum of their versions), from the library's rows
/// or by replaying the proposed delta rows.
std::pair<std::int64_t, std::int64_t> file_positions(const std::string& path, bool delta) {
    raw_db db(path);
    if (!delta) {
        // The library's file has the view over its folded rows and its position log.
        const char* table =
            query_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'projectionist_aggregate_positions'") != 0
                ? "projectionist_aggregate_positions"
                : "projectionist_aggregate_checkpoints";
        return {query_int(db, fmt::format("SELECT count(*) FROM {}", table).c_str()),
                query_int(db, fmt::format("SELECT sum(version) FROM {}", table).c_str())};
    }
    std::vector<std::uint64_t> versions;
    raw_stmt s(db, "SELECT changes FROM bench_aggregate_deltas ORDER BY id");
    while (sqlite3_step(s) == SQLITE_ROW) {
        const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(s, 0));
        const auto* end = p + sqlite3_column_bytes(s, 0);
        const auto varint = [&] {
            std::uint64_t v = 0;
            for (unsigned shift = 0; p < end; shift += 7) {
                const unsigned char b = *p++;
                v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
                if ((b & 0x80) == 0) break;
            }
            return v;
        };
        while (p < end) {
            const std::uint64_t number = varint();
            const std::uint64_t version = varint();
            if (number >= versions.size()) versions.resize(number + 1, 0);
            versions[number] = version;
        }
    }
    std::int64_t count = 0;
    std::int64_t sum = 0;
    for (const std::uint64_t v : versions) {
        count += v != 0 ? 1 : 0;
        sum += static_cast<std::int64_t>(v);
    }
    return {count, sum};
}

/// The CREATE TABLE statement SQLite recorded for the read model's table.
std::string table_sql(const std::string& path) {
    raw_db db(path);
    raw_stmt s(db, "SELECT sql FROM sqlite_schema WHERE name = 'bench_tickets_v1'");
    return sqlite3_step(s) == SQLITE_ROW ? std::string(column_text(s, 0)) : std::string();
}

double file_mb(const std::string& path) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    return ec ? 0.0 : static_cast<double>(size) / (1024.0 * 1024.0);
}

void print_cpu_samples(std::string_view group, const std::vector<samples>& s, std::size_t events) {
    fmt::print("  {}\n", group);
    for (const samples& x : s)
        fmt::print(
            "    {:<30} CPU median {:6.0f} ms ({:5.2f} us/event; min {:.0f}, max {:.0f}; system {:.0f}); wall "
            "median {:.0f} ms (min {:.0f}, max {:.0f})\n",
            x.name, x.cpu_median() * 1e3, x.cpu_median() * 1e6 / static_cast<double>(events), x.cpu_min() * 1e3,
            x.cpu_max() * 1e3, median_of(x.sys_seconds) * 1e3, x.median() * 1e3, x.min() * 1e3, x.max() * 1e3);
    if (std::getenv("PROJECTIONIST_BENCH_SQLITE_VERBOSE") != nullptr)
        for (const samples& x : s)
            for (std::size_t i = 0; i < x.seconds.size(); ++i)
                fmt::print("      {:<30} #{} CPU {:.0f} ms (system {:.0f}), wall {:.0f} ms\n", x.name, i,
                           x.cpu_seconds[i] * 1e3, x.sys_seconds[i] * 1e3, x.seconds[i] * 1e3);
    std::fflush(stdout);
}

std::vector<extra> cpu_side_extras(const std::vector<samples>& s, std::size_t events) {
    std::vector<extra> out;
    for (const samples& x : s) {
        out.push_back({x.name + "_cpu_median_ms", x.cpu_median() * 1e3});
        out.push_back({x.name + "_cpu_us_per_event", x.cpu_median() * 1e6 / static_cast<double>(events)});
        out.push_back({x.name + "_cpu_min_ms", x.cpu_min() * 1e3});
        out.push_back({x.name + "_cpu_max_ms", x.cpu_max() * 1e3});
        out.push_back({x.name + "_cpu_system_median_ms", median_of(x.sys_seconds) * 1e3});
        out.push_back({x.name + "_wall_median_ms", x.median() * 1e3});
        out.push_back({x.name + "_wall_min_ms", x.min() * 1e3});
        out.push_back({x.name + "_wall_max_ms", x.max() * 1e3});
    }
    return out;
}

/// A ratio of two sides' CPU-time medians, and the same ratio of their wall-time medians.
struct ratio_pair {
    double cpu;
    double wall;
};
ratio_pair time_ratio(const samples& a, const samples& b) {
    return {a.cpu_median() / b.cpu_median(), a.median() / b.median()};
}

}  // namespace

void bench_sqlite(const mem_store& history, const history_stats& stats, const sqlite_bench_options& o,
                  std::vector<comparison>& out, std::vector<extra>& data) {
    const std::size_t n = stats.events;
    const std::size_t batch_size = pj::runner_options{}.batch_size;
    const std::size_t batches = (n + batch_size - 1) / batch_size;
    const fs::path dir = fs::path(o.directory) / fmt::format("projectionist-bench-{}", ::getpid());
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

    // The log: written once, then only read.
    const std::string log_path = (dir / "log.db").string();
    fmt::print("  6. SQLite: writing the history into {} ({}) ...\n", log_path,
               o.preregister_aggregates ? "aggregates pre-registered, events through append" : "through append only");
    std::fflush(stdout);
    const double write_s = write_log(history, log_path, options, o.preregister_aggregates);
    log_store log(log_path, options);
    if (log.head() != n) mismatch("6. SQLite: the log's head");
    {
        raw_db check(log_path);
        if (query_int(check, "SELECT count(*) FROM projectionist_aggregates") !=
                static_cast<std::int64_t>(stats.aggregates) ||
            query_int(check, "SELECT sum(version) FROM projectionist_aggregates") != static_cast<std::int64_t>(n))
            mismatch("6. SQLite: the log's aggregates");
    }
    const double log_mb = file_mb(log_path);
    fmt::print(
        "     {} events in {:.1f} s ({:.0f} MB). Two files (the log; a new read-model file per side and "
        "repetition) in {}, synchronous={}, {} warm-up + {} repetitions per side\n",
        n, write_s, log_mb, o.directory, synchronous, o.measure.warmup, o.measure.repetitions);
    std::fflush(stdout);

    const std::uint64_t expected = expected_digest(history);
    const auto end = static_cast<std::int64_t>(n);
    const auto check_count = [&](std::uint64_t applied, std::string_view what) {
        if (applied != n) mismatch(fmt::format("6. SQLite: {} applied count", what));
    };
    const auto check_rows = [&](const std::string& path, std::int64_t checkpoint) {
        if (file_digest(path) != expected) mismatch("6. SQLite backfill: the rows in " + path);
        if (file_checkpoint(path) != checkpoint) mismatch("6. SQLite backfill: the checkpoint in " + path);
    };
    const auto check_positions = [&](const std::string& path, bool delta) {
        if (file_positions(path, delta) != std::pair<std::int64_t, std::int64_t>(stats.aggregates, end))
            mismatch("6. SQLite backfill: the per-aggregate positions in " + path);
    };
    const auto path = [&](std::string_view name) { return (dir / fmt::format("{}.db", name)).string(); };
    using raw_config = raw_backfill::config;

    std::vector<extra> common{
        {"batch_size", static_cast<double>(batch_size)},
        {"batches", static_cast<double>(batches)},
        {"synchronous", synchronous},
        {"files", std::string("two files: the log, and a read-model file per side, deleted and created again "
                              "before every repetition")},
        {"directory", o.directory},
        {"warmup_runs", static_cast<double>(o.measure.warmup)},
        {"runs", static_cast<double>(o.measure.repetitions)},
        {"time", std::string("ratios from the medians of the measuring thread's CPU time (user + system); "
                             "wall-time medians and the wall-time ratio are given too")},
    };

    if (o.main) {
        runner_side<sqlite_tickets, pj::global> global(log, path("runner"), options);
        runner_side<sqlite_tickets, pj::per_aggregate> partitioned(log, path("runner_per_aggregate"), options);
        // The raw loops get the page cache a runner's session gets (session_cache_size_kib).
        const int session_cache = static_cast<int>(options.session_cache_size_kib);
        raw_backfill raw(log_path, path("raw_loop"), o.synchronous_full, batch_size, {.cache_kib = session_cache});
        raw_backfill raw_no_cp(log_path, path("raw_loop_no_checkpoint"), o.synchronous_full, batch_size,
                               {.checkpoint = false, .cache_kib = session_cache});
        std::vector<side> sides{
            {"runner", [&] { global.prepare(); }, [&] { check_count(global.run(), "runner"); }},
            {"raw_loop", [&] { raw.prepare(); }, [&] { check_count(raw.run(), "raw loop"); }},
            {"raw_loop_no_checkpoint", [&] { raw_no_cp.prepare(); }, [&] { check_count(raw_no_cp.run(), "raw loop"); }},
            {"runner_per_aggregate", [&] { partitioned.prepare(); },
             [&] { check_count(partitioned.run(), "per-aggregate runner"); }},
        };
        const auto s = measure_interleaved(sides, o.measure);
        print_cpu_samples(fmt::format("6. SQLite backfill (tickets read model, batches of {}, synchronous={})",
                                      batch_size, synchronous),
                          s, n);
        // Every side built the same rows as the in-memory rebuild; checkpoints are at the end.
        check_rows(global.path(), end);
        check_rows(raw.path(), end);
        check_rows(raw_no_cp.path(), 0);
        check_rows(partitioned.path(), end);
        check_positions(partitioned.path(), false);
        if (table_sql(global.path()) != table_sql(raw.path()))
            mismatch("6. SQLite backfill: the raw loop's table is not the one sqlite_storage creates");

        const auto eps = [&](const samples& x) { return events_per_second(x.cpu_median(), n); };
        auto extras = common;
        for (auto& x : cpu_side_extras(s, n)) extras.push_back(std::move(x));
        for (const samples& x : s) extras.push_back({x.name + "_events_per_s", eps(x)});
        extras.push_back(
            {"checkpoint_us_per_batch", (s[1].cpu_median() - s[2].cpu_median()) * 1e6 / static_cast<double>(batches)});
        // The checkpoint statement timed directly inside the raw loop (every run): its own cost,
        // free of run-to-run noise, though not what the extra page costs at COMMIT.
        const double statement_us = raw.checkpoint_seconds() * 1e6 / static_cast<double>(raw.checkpoints());
        extras.push_back({"checkpoint_statement_us_per_batch", statement_us});
        extras.push_back(
            {"checkpoint_statement_share", statement_us * static_cast<double>(batches) * 1e-6 / s[1].cpu_median()});
        extras.push_back({"ratio_of_minimums_6b", s[1].cpu_min() / s[2].cpu_min()});
        extras.push_back(
            {"per_aggregate_us_per_event", (s[3].cpu_median() - s[0].cpu_median()) * 1e6 / static_cast<double>(n)});
        extras.push_back({"read_model_mb", file_mb(global.path())});
        extras.push_back({"read_model_per_aggregate_mb", file_mb(partitioned.path())});
        extras.push_back({"handlers", std::string("ticket.registered: insert; every other type: find, apply, upsert")});

        const ratio_pair a = time_ratio(s[1], s[0]);  // runner events/s / raw events/s = raw time / runner time
        const ratio_pair b = time_ratio(s[1], s[2]);
        const ratio_pair c = time_ratio(s[3], s[0]);
        const paired_ratio pa = paired_ratio_of(s[1].cpu_seconds, s[0].cpu_seconds);
        const paired_ratio pb = paired_ratio_of(s[1].cpu_seconds, s[2].cpu_seconds);
        const paired_ratio pc = paired_ratio_of(s[3].cpu_seconds, s[0].cpu_seconds);
        const auto with_wall = [&](std::vector<extra> x, double wall, const paired_ratio& p) {
            x.push_back({"ratio_wall", wall});
            x.push_back({"paired_ratio_median", p.median});
            x.push_back({"paired_ratio_min", p.min});
            x.push_back({"paired_ratio_max", p.max});
            return x;
        };
        const auto paired_text = [](const paired_ratio& p) {
            return fmt::format("paired {:.3f} ({:.3f}-{:.3f})", p.median, p.min, p.max);
        };
        comparison ca{"6a. SQLite backfill: runner / raw loop (events/s)",
                      a.cpu,
                      ">= 0.8",
                      a.cpu >= 0.8,
                      fmt::format("runner {}ev/s, raw loop {}ev/s (wall ratio {:.3f}; {})", si(eps(s[0])),
                                  si(eps(s[1])), a.wall, paired_text(pa)),
                      with_wall(extras, a.wall, pa)};
        comparison cb{
            "6b. SQLite checkpoint: with / without (raw loop, time)",
            b.cpu,
            "<= 1.05",
            b.cpu <= 1.05,
            fmt::format("with {:.0f} ms, without {:.0f} ms (wall ratio {:.3f}; {}); the UPDATE itself: "
                        "{:.1f} us/batch",
                        s[1].cpu_median() * 1e3, s[2].cpu_median() * 1e3, b.wall, paired_text(pb), statement_us),
            with_wall(extras, b.wall, pb)};
        comparison cc{"6c. SQLite partitioning: per_aggregate / global (time)",
                      c.cpu,
                      "<= 1.10",
                      c.cpu <= 1.10,
                      fmt::format("global {:.0f} ms, per_aggregate {:.0f} ms (wall ratio {:.3f}; {})",
                                  s[0].cpu_median() * 1e3, s[3].cpu_median() * 1e3, c.wall, paired_text(pc)),
                      with_wall(extras, c.wall, pc)};
        out.push_back(std::move(ca));
        out.push_back(std::move(cb));
        out.push_back(std::move(cc));
    }

    if (o.attribution) {
        // What the SQLite time goes to: not targets, and not part of the default run.
        constexpr int big_cache_kib = 64 * 1024;
        // SQLite's default page cache on every side but the 64 MB ones, the runner's sessions too.
        pj::sqlite_options small_cache = options;
        small_cache.session_cache_size_kib = 0;
        raw_backfill raw(log_path, path("x_raw_loop"), o.synchronous_full, batch_size, {});
        runner_side<sqlite_tickets_t<row_write::update_all>, pj::global> runner_update(log, path("x_runner_update"),
                                                                                       small_cache);
        raw_backfill raw_update_all(log_path, path("x_raw_update_all"), o.synchronous_full, batch_size,
                                    {.rows = raw_config::write::update_all});
        raw_backfill raw_update_non_key(log_path, path("x_raw_update_non_key"), o.synchronous_full, batch_size,
                                        {.rows = raw_config::write::update_non_key});
        runner_side<sqlite_tickets, pj::global> runner_cache(log, path("x_runner_cache"), small_cache, big_cache_kib);
        raw_backfill raw_cache(log_path, path("x_raw_cache"), o.synchronous_full, batch_size,
                               {.cache_kib = big_cache_kib});
        raw_backfill raw_rows(log_path, path("x_raw_per_aggregate_rows"), o.synchronous_full, batch_size,
                              {.aggregates = raw_config::positions::rows});
        raw_backfill raw_delta(log_path, path("x_raw_per_aggregate_delta"), o.synchronous_full, batch_size,
                               {.aggregates = raw_config::positions::delta});
        const auto raw_side = [&](std::string name, raw_backfill& r) {
            return side{std::move(name), [&r] { r.prepare(); }, [&r, &check_count] { check_count(r.run(), "raw"); }};
        };
        std::vector<side> sides{
            raw_side("raw_loop", raw),
            {"runner_update", [&] { runner_update.prepare(); }, [&] { check_count(runner_update.run(), "runner"); }},
            raw_side("raw_loop_update_all", raw_update_all),
            raw_side("raw_loop_update_non_key", raw_update_non_key),
            {"runner_cache_64mb", [&] { runner_cache.prepare(); }, [&] { check_count(runner_cache.run(), "runner"); }},
            raw_side("raw_loop_cache_64mb", raw_cache),
            raw_side("raw_loop_per_aggregate_rows", raw_rows),
            raw_side("raw_loop_per_aggregate_delta", raw_delta),
        };
        const auto s = measure_interleaved(sides, o.measure);
        print_cpu_samples("6x. SQLite attribution (same history and batches)", s, n);
        check_rows(raw.path(), end);
        check_rows(runner_update.path(), end);
        check_rows(raw_update_all.path(), end);
        check_rows(raw_update_non_key.path(), end);
        check_rows(runner_cache.path(), end);
        check_rows(raw_cache.path(), end);
        check_rows(raw_rows.path(), end);
        check_rows(raw_delta.path(), end);
        check_positions(raw_rows.path(), false);
        check_positions(raw_delta.path(), true);

        auto extras = common;
        for (auto& x : cpu_side_extras(s, n)) extras.push_back(std::move(x));
        extras.push_back({"cache_kib", static_cast<double>(big_cache_kib)});
        const auto add = [&](std::string name, const samples& a, const samples& b, std::string what) {
            const ratio_pair r = time_ratio(a, b);
            comparison c{std::move(name),
                         r.cpu,
                         "none (attribution)",
                         false,
                         fmt::format("{} {:.0f} ms, {} {:.0f} ms (CPU; wall ratio {:.3f}); {}", a.name,
                                     a.cpu_median() * 1e3, b.name, b.cpu_median() * 1e3, r.wall, what),
                         extras};
            c.extras.push_back({"ratio_wall", r.wall});
            c.informational = true;
            out.push_back(std::move(c));
        };
        add("6x1. SQLite update(): runner / raw loop (time)", s[1], s[2], "both SELECT + UPDATE of every column");
        add("6x2. SQLite UPDATE every column / upsert (raw, time)", s[2], s[0], "what update() costs over upsert");
        add("6x3. SQLite UPDATE non-key / every column (raw, time)", s[3], s[2], "the key column left out");
        add("6x4. SQLite 64 MB page cache / default (raw, time)", s[5], s[0], "PRAGMA cache_size on the read model");
        add("6x5. SQLite 64 MB page cache: runner / raw loop (time)", s[4], s[5], "6a with a large cache");
        add("6x6. SQLite per-aggregate rows / global (raw, time)", s[6], s[0], "sqlite_storage's statement");
        add("6x7. SQLite per-aggregate delta blob / global (raw, time)", s[7], s[0], "one row per batch (proposed)");
    }

    data.push_back({"sqlite_log_write_s", write_s});
    data.push_back({"sqlite_log_mb", log_mb});
    data.push_back(
        {"sqlite_log_written", std::string(o.preregister_aggregates ? "aggregates pre-registered, events through append"
                                                                    : "through sqlite_event_store::append only")});
    data.push_back({"sqlite_synchronous", synchronous});
    data.push_back({"sqlite_runs", static_cast<double>(o.measure.repetitions)});
    data.push_back({"sqlite_warmup_runs", static_cast<double>(o.measure.warmup)});
    data.push_back({"sqlite_directory", o.directory});
}

}  // namespace bench
