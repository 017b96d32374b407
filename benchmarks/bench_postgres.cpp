// Comparison 6d, PostgreSQL: backfilling the tickets read model from a PostgreSQL event log.
//
// The history of the other comparisons (the memory_event_store filled by generate_history) is
// written once per process into a postgres_event_store's tables (one transaction, COPY), then:
//
//   runner       runner<pg_tickets, postgres_storage, global>: backfill()
//   libpq_loop   the same work by the same method, hand-written on plain libpq: the log read in
//                batches with the store's statement, the rows of a batch kept in a hash map
//                (read-your-writes, a prepared SELECT per key it does not have), written at the
//                end of the batch with the same multi-row unnest statements, then the checkpoint
//                UPDATE and COMMIT
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
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
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
static_assert(model_table == "bench_tickets_v1");

// ---- plain libpq, for the hand-written side and the set-up ----------------------------------------

std::string quote(std::string_view identifier) {
    std::string out = "\"";
    for (const char c : identifier) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + '"';
}

/// A PGresult, cleared on destruction.
class pq_result {
public:
    explicit pq_result(PGresult* r) noexcept : r_(r) {}
    pq_result(const pq_result&) = delete;
    pq_result& operator=(const pq_result&) = delete;
    pq_result(pq_result&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
    pq_result& operator=(pq_result&&) = delete;
    ~pq_result() { PQclear(r_); }
    [[nodiscard]] PGresult* get() const noexcept { return r_; }
    [[nodiscard]] int rows() const noexcept { return PQntuples(r_); }
    [[nodiscard]] std::string_view text(int row, int col) const noexcept {
        return {PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col))};
    }
    [[nodiscard]] std::int64_t int64(int row, int col) const {
        const std::string_view t = text(row, col);
        std::int64_t v = 0;
        std::from_chars(t.data(), t.data() + t.size(), v);
        return v;
    }

private:
    PGresult* r_;
};

class pq_conn {
public:
    explicit pq_conn(const std::string& url) : c_(PQconnectdb(url.c_str())) {
        if (PQstatus(c_) != CONNECTION_OK) {
            const std::string why = PQerrorMessage(c_);
            PQfinish(c_);
            throw std::runtime_error("libpq: cannot connect: " + why);
        }
        exec("SET client_min_messages = warning");
    }
    pq_conn(const pq_conn&) = delete;
    pq_conn& operator=(const pq_conn&) = delete;
    ~pq_conn() { PQfinish(c_); }

    [[nodiscard]] PGconn* get() const noexcept { return c_; }
    [[nodiscard]] int backend_pid() const noexcept { return PQbackendPID(c_); }

    /// The result of a statement that must end with `want`; throws otherwise.
    pq_result checked(PGresult* r, ExecStatusType want, std::string_view what) const {
        pq_result out(r);
        if (PQresultStatus(r) != want)
            throw std::runtime_error(fmt::format("libpq: {}: {}", what.substr(0, 200),
                                                 r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(c_)));
        return out;
    }
    void exec(const std::string& sql) const { checked(PQexec(c_, sql.c_str()), PGRES_COMMAND_OK, sql); }
    pq_result query(const std::string& sql) const { return checked(PQexec(c_, sql.c_str()), PGRES_TUPLES_OK, sql); }
    void prepare(const char* name, const std::string& sql) const {
        checked(PQprepare(c_, name, sql.c_str(), 0, nullptr), PGRES_COMMAND_OK, sql);
    }

private:
    PGconn* c_;
};

/// Big-endian integers of binary-format results and of COPY's binary format.
inline std::int64_t be64(const char* p) noexcept {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return static_cast<std::int64_t>(v);
}
inline std::int32_t be32(const char* p) noexcept {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return static_cast<std::int32_t>(v);
}
template <class T>
void put_be(std::string& out, T v) {
    using U = std::make_unsigned_t<T>;
    const auto u = static_cast<U>(v);
    for (int shift = static_cast<int>(sizeof(T) * 8) - 8; shift >= 0; shift -= 8)
        out.push_back(static_cast<char>((u >> shift) & 0xFF));
}

/// Appends `v` to an array literal (`{...}`): a string quoted, `"` and `\` escaped.
inline void append_quoted(std::string& array, std::string_view v) {
    array += '"';
    for (const char c : v) {
        if (c == '"' || c == '\\') array += '\\';
        array += c;
    }
    array += '"';
}
inline void append_int(std::string& array, std::int64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    array.append(buf, static_cast<std::size_t>(r.ptr - buf));
}
inline int parse_int(std::string_view t) {
    int v = 0;
    std::from_chars(t.data(), t.data() + t.size(), v);
    return v;
}

// ---- the statements, written out: the same text postgres_event_store, postgres_table and
// postgres_storage::session prepare (checked after measuring, in pg_prepared_statements) ----------

#define BENCH_COLUMNS \
    R"("ticket_id", "type", "status", "assignee", "last_tag", "priority", "comments", "reopened", "escalation")"
#define BENCH_UNNEST                                                                                    \
    "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::integer[], $7::integer[], " \
    "$8::integer[], $9::integer[])"
constexpr const char* model_ddl =
    R"(CREATE TABLE IF NOT EXISTS "bench_tickets_v1" ("ticket_id" text COLLATE "C" NOT NULL, )"
    R"("type" text COLLATE "C" NOT NULL, "status" text COLLATE "C" NOT NULL, "assignee" text COLLATE "C" NOT NULL, )"
    R"("last_tag" text COLLATE "C" NOT NULL, "priority" integer NOT NULL, "comments" integer NOT NULL, )"
    R"("reopened" integer NOT NULL, "escalation" integer NOT NULL, PRIMARY KEY ("ticket_id")))";
constexpr const char* checkpoint_ddl =
    "CREATE TABLE IF NOT EXISTS projectionist_checkpoints(projection text PRIMARY KEY, position bigint NOT NULL)";
constexpr const char* find_sql = "SELECT " BENCH_COLUMNS R"( FROM "bench_tickets_v1" WHERE "ticket_id" = $1)";
constexpr const char* insert_sql = R"(INSERT INTO "bench_tickets_v1" ()" BENCH_COLUMNS ") SELECT * FROM " BENCH_UNNEST
                                   R"( ON CONFLICT ("ticket_id") DO NOTHING RETURNING "ticket_id")";
constexpr const char* upsert_sql =
    R"(INSERT INTO "bench_tickets_v1" ()" BENCH_COLUMNS ") SELECT * FROM " BENCH_UNNEST
    R"( ON CONFLICT ("ticket_id") DO UPDATE SET "type" = excluded."type", "status" = excluded."status", )"
    R"("assignee" = excluded."assignee", "last_tag" = excluded."last_tag", "priority" = excluded."priority", )"
    R"("comments" = excluded."comments", "reopened" = excluded."reopened", "escalation" = excluded."escalation")";
constexpr const char* select_rows_sql = "SELECT " BENCH_COLUMNS " FROM ";
#undef BENCH_UNNEST
#undef BENCH_COLUMNS
constexpr const char* checkpoint_sql =
    "UPDATE projectionist_checkpoints SET position = $1 WHERE projection = $2 AND position = $3";
std::string read_sql(const std::string& log_schema) {
    return fmt::format(
        "SELECT position, type_id, aggregate_number, aggregate_version, schema_version, recorded_at, aggregate_id, "
        "payload FROM {}.projectionist_events WHERE position > $1 ORDER BY position LIMIT $2",
        quote(log_schema));
}

/// The session settings projectionist's open_database gives every connection.
std::string session_settings(const std::string& schema) {
    return fmt::format("SET search_path TO {}; SET lock_timeout = 5000; SET synchronous_commit = on", quote(schema));
}

// ---- the hand-written side ------------------------------------------------------------------------

/// The hand-written backfill on plain libpq. One connection reads the log (the store's SELECT,
/// prepared, binary results), another writes the read model in its own schema. Per batch: BEGIN,
/// then for each event a `switch` on its type and binary_codec::decode straight from the result;
/// a registration puts its row into the batch's hash map as an insert; any other event looks its
/// key up in the map, else runs the prepared SELECT of that key (text results) and keeps the row
/// (or its absence), applies the event to the row in the map and marks it to upsert. At the end
/// of the batch: the inserts in one `INSERT ... SELECT * FROM unnest(...) ON CONFLICT DO NOTHING
/// RETURNING key` (a missing key is a duplicate), the upserts in one `... ON CONFLICT DO UPDATE`,
/// the checkpoint UPDATE (compare and set), COMMIT; the map is cleared.
class libpq_backfill {
public:
    libpq_backfill(std::string url, const std::string& log_schema, std::string schema, std::size_t batch_size)
        : url_(std::move(url)), schema_(std::move(schema)), batch_size_(batch_size), log_(url_) {
        log_.prepare("bench_read", read_sql(log_schema));
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
        m.prepare("bench_find", find_sql);
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
        char after_text[24];
        char limit_text[24];
        *std::to_chars(limit_text, limit_text + sizeof limit_text - 1, batch_size_).ptr = '\0';
        for (;;) {
            *std::to_chars(after_text, after_text + sizeof after_text - 1, after).ptr = '\0';
            const char* read_params[2] = {after_text, limit_text};
            const pq_result batch = log_.checked(
                PQexecPrepared(log_.get(), "bench_read", 2, read_params, nullptr, nullptr, 1), PGRES_TUPLES_OK, "read");
            const int n = batch.rows();
            if (n == 0) return applied;
            m.exec("BEGIN");
            PGresult* r = batch.get();
            for (int i = 0; i < n; ++i) {
                const auto type = static_cast<std::size_t>(be32(PQgetvalue(r, i, 1)));
                const std::string_view payload(PQgetvalue(r, i, 7), static_cast<std::size_t>(PQgetlength(r, i, 7)));
                apply_event(type < alternatives_.size() ? alternatives_[type] : no_alternative, payload);
            }
            const auto last = static_cast<std::uint64_t>(be64(PQgetvalue(r, n - 1, 0)));
            flush();
            char last_text[24];
            *std::to_chars(last_text, last_text + sizeof last_text - 1, last).ptr = '\0';
            const std::string projection(model_table);
            const char* cp_params[3] = {last_text, projection.c_str(), after_text};
            const pq_result cp =
                m.checked(PQexecPrepared(m.get(), "bench_checkpoint", 3, cp_params, nullptr, nullptr, 0),
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
    /// The prepared SELECTs of one key run so far (every run, timed or not).
    [[nodiscard]] std::uint64_t fetches() const noexcept { return fetches_; }
    [[nodiscard]] std::uint64_t runs() const noexcept { return runs_; }

private:
    enum class state : std::uint8_t { clean, absent, upsert, insert };
    struct entry {
        state kind;
        ticket_row row;
    };
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
        auto it = rows_.find(e.ticket_id);
        if (it == rows_.end()) it = fetch(e.ticket_id);
        entry& x = it->second;
        if (x.kind == state::absent) return;
        apply(e, x.row);
        if (x.kind == state::clean) x.kind = state::upsert;
    }

    /// The server's row for `key` (or its absence), kept for the rest of the batch.
    row_map::iterator fetch(const std::string& key) {
        ++fetches_;
        const char* params[1] = {key.c_str()};
        const pq_result r = model_->checked(PQexecPrepared(model_->get(), "bench_find", 1, params, nullptr, nullptr, 0),
                                            PGRES_TUPLES_OK, "find");
        if (r.rows() == 0) return rows_.emplace(key, entry{state::absent, ticket_row{}}).first;
        entry x{state::clean,
                ticket_row{std::string(r.text(0, 0)), std::string(r.text(0, 1)), std::string(r.text(0, 2)),
                           std::string(r.text(0, 3)), std::string(r.text(0, 4)), parse_int(r.text(0, 5)),
                           parse_int(r.text(0, 6)), parse_int(r.text(0, 7)), parse_int(r.text(0, 8))}};
        return rows_.emplace(key, std::move(x)).first;
    }

    /// The batch's inserts, then its upserts, each as one statement of column arrays.
    void flush() {
        for (auto& a : inserts_) a.assign(1, '{');
        for (auto& a : upserts_) a.assign(1, '{');
        std::size_t inserts = 0;
        std::size_t upserts = 0;
        for (const auto& [key, x] : rows_) {
            std::array<std::string, 9>* arrays = nullptr;
            if (x.kind == state::insert) {
                arrays = &inserts_;
                ++inserts;
            } else if (x.kind == state::upsert) {
                arrays = &upserts_;
                ++upserts;
            } else {
                continue;
            }
            auto& a = *arrays;
            if (a[0].size() > 1)
                for (auto& s : a) s += ',';
            append_quoted(a[0], x.row.ticket_id);
            append_quoted(a[1], x.row.type);
            append_quoted(a[2], x.row.status);
            append_quoted(a[3], x.row.assignee);
            append_quoted(a[4], x.row.last_tag);
            append_int(a[5], x.row.priority);
            append_int(a[6], x.row.comments);
            append_int(a[7], x.row.reopened);
            append_int(a[8], x.row.escalation);
        }
        const auto send = [&](const char* name, std::array<std::string, 9>& a, ExecStatusType want) {
            const char* params[9];
            for (std::size_t i = 0; i < a.size(); ++i) {
                a[i] += '}';
                params[i] = a[i].c_str();
            }
            return model_->checked(PQexecPrepared(model_->get(), name, 9, params, nullptr, nullptr, 0), want, name);
        };
        if (inserts != 0) {
            const pq_result r = send("bench_insert", inserts_, PGRES_TUPLES_OK);
            if (static_cast<std::size_t>(r.rows()) != inserts)
                throw std::runtime_error("libpq loop: an inserted key already existed");
        }
        if (upserts != 0) send("bench_upsert", upserts_, PGRES_COMMAND_OK);
    }

    std::string url_;
    std::string schema_;
    std::size_t batch_size_;
    pq_conn log_;
    std::unique_ptr<pq_conn> model_;
    std::vector<std::uint8_t> alternatives_;
    row_map rows_;
    std::array<std::string, 9> inserts_;  // reused: the strings keep their capacity
    std::array<std::string, 9> upserts_;
    std::uint64_t fetches_ = 0;
    std::uint64_t runs_ = 0;
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

struct log_timing {
    double copy_s = 0;    ///< types, aggregates and events, one transaction
    double vacuum_s = 0;  ///< VACUUM (ANALYZE) of the log's tables
};

/// Streams a COPY ... FROM STDIN (FORMAT binary): the header, then `rows(out)` appends tuples
/// to `out`, which is sent whenever it passes 1 MB.
template <class Rows>
void copy_in(const pq_conn& db, const std::string& sql, Rows&& rows) {
    db.checked(PQexec(db.get(), sql.c_str()), PGRES_COPY_IN, sql);
    std::string buf("PGCOPY\n\377\r\n\0", 11);
    put_be<std::int32_t>(buf, 0);  // flags
    put_be<std::int32_t>(buf, 0);  // header extension
    const auto send = [&] {
        if (PQputCopyData(db.get(), buf.data(), static_cast<int>(buf.size())) != 1)
            throw std::runtime_error(std::string("libpq: COPY: ") + PQerrorMessage(db.get()));
        buf.clear();
    };
    rows(buf, [&] {
        if (buf.size() >= (1u << 20)) send();
    });
    put_be<std::int16_t>(buf, -1);  // trailer
    send();
    if (PQputCopyEnd(db.get(), nullptr) != 1)
        throw std::runtime_error(std::string("libpq: COPY end: ") + PQerrorMessage(db.get()));
    while (PGresult* r = PQgetResult(db.get())) db.checked(r, PGRES_COMMAND_OK, sql);
}

void field(std::string& out, std::string_view bytes) {
    put_be<std::int32_t>(out, static_cast<std::int32_t>(bytes.size()));
    out.append(bytes);
}
void field64(std::string& out, std::int64_t v) {
    put_be<std::int32_t>(out, 8);
    put_be<std::int64_t>(out, v);
}
void field32(std::string& out, std::int32_t v) {
    put_be<std::int32_t>(out, 4);
    put_be<std::int32_t>(out, v);
}

std::string encode(const mem_store::record& rec, std::uint8_t alt, unsigned& schema_version) {
    std::string payload;
    boost::mp11::mp_with_index<event_type_count>(alt, [&](auto I) {
        using E = boost::mp11::mp_at_c<ticket_events, decltype(I)::value>;
        pj::binary_codec::encode(mem_store::event_of<E>(rec), payload);
        schema_version = pj::schema_version_of<E>;
    });
    return payload;
}

/// Writes the history into the store's (empty) tables in one transaction, holding the append
/// lock the store's own appends take: the event types and aggregates numbered in order of first
/// appearance (what append assigns: ids from 1, aggregate numbers from 0), each aggregate at its
/// last version, then every event by COPY (binary), at its position. Then VACUUM (ANALYZE), so
/// that no side's first read pays for hint bits or runs without statistics.
log_timing write_log(const mem_store& history, const std::string& url, const std::string& schema) {
    log_timing t;
    auto started = std::chrono::steady_clock::now();
    const pq_conn db(url);
    const std::string s = quote(schema);
    mem_store::batch all;
    history.read(0, history.head(), all);
    const std::vector<std::uint8_t> alternatives = alternatives_of(history);

    db.exec("BEGIN");
    // Types: ids from 1 in order of first appearance.
    std::vector<std::int32_t> type_ids(history.type_count(), 0);
    std::int32_t next_type = 0;
    std::vector<std::uint64_t> final_version;
    for (const mem_store::record* rec : all) {
        std::int32_t& id = type_ids.at(rec->type_id());
        if (id == 0) {
            id = ++next_type;
            db.exec(fmt::format("INSERT INTO {}.projectionist_event_types(id, stream, name) VALUES ({}, '{}', '{}')", s,
                                id, rec->stream(), rec->type_name()));
        }
        const std::uint64_t number = rec->aggregate_number();
        if (number >= final_version.size()) final_version.resize(number + 1, 0);
        final_version[number] = rec->aggregate_version();
    }
    // Aggregates: numbers from 0 in order of first appearance, at their last version.
    copy_in(db,
            fmt::format("COPY {}.projectionist_aggregates(number, stream, aggregate_id, version) FROM STDIN (FORMAT "
                        "binary)",
                        s),
            [&](std::string& out, auto&& maybe_send) {
                std::uint64_t next = 0;
                for (const mem_store::record* rec : all) {
                    if (rec->aggregate_version() != 1) continue;
                    if (rec->aggregate_number() != next++)
                        mismatch("6d. PostgreSQL: aggregate numbers are not in first-appearance order");
                    put_be<std::int16_t>(out, 4);
                    field64(out, static_cast<std::int64_t>(rec->aggregate_number()));
                    field(out, rec->stream());
                    field(out, rec->aggregate_id());
                    field64(out, static_cast<std::int64_t>(final_version[rec->aggregate_number()]));
                    maybe_send();
                }
            });
    copy_in(db,
            fmt::format("COPY {}.projectionist_events(position, stream, aggregate_id, aggregate_number, "
                        "aggregate_version, type_id, schema_version, payload, recorded_at) FROM STDIN (FORMAT binary)",
                        s),
            [&](std::string& out, auto&& maybe_send) {
                for (const mem_store::record* rec : all) {
                    unsigned version = 1;
                    const std::string payload = encode(*rec, alternatives.at(rec->type_id()), version);
                    put_be<std::int16_t>(out, 9);
                    field64(out, static_cast<std::int64_t>(rec->position()));
                    field(out, rec->stream());
                    field(out, rec->aggregate_id());
                    field64(out, static_cast<std::int64_t>(rec->aggregate_number()));
                    field64(out, static_cast<std::int64_t>(rec->aggregate_version()));
                    field32(out, type_ids.at(rec->type_id()));
                    field32(out, static_cast<std::int32_t>(version));
                    field(out, payload);
                    field64(out,
                            std::chrono::duration_cast<std::chrono::nanoseconds>(rec->recorded_at().time_since_epoch())
                                .count());
                    maybe_send();
                }
            });
    // The store's next append and aggregate go on after the rows written here.
    db.exec(
        fmt::format("SELECT setval('{0}.projectionist_positions', (SELECT max(position) FROM "
                    "{0}.projectionist_events)), setval('{0}.projectionist_aggregate_numbers', (SELECT max(number) "
                    "FROM {0}.projectionist_aggregates))",
                    s));
    db.exec("COMMIT");
    t.copy_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    started = std::chrono::steady_clock::now();
    db.exec(fmt::format(
        "VACUUM (ANALYZE) {0}.projectionist_events, {0}.projectionist_aggregates, {0}.projectionist_event_types", s));
    t.vacuum_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return t;
}

/// Reads the whole log back through the store and compares every record with the history:
/// position, aggregate, version, type, schema version, payload bytes.
void check_log(const mem_store& history, log_store& log) {
    const std::vector<std::uint8_t> alternatives = alternatives_of(history);
    mem_store::batch mem;
    log_store::batch pg;
    std::uint64_t after = 0;
    for (;;) {
        history.read(after, 20'000, mem);
        log.read(after, 20'000, pg);
        if (mem.size() != pg.size()) mismatch("6d. PostgreSQL: the log's length");
        if (mem.empty()) return;
        for (std::size_t i = 0; i < mem.size(); ++i) {
            const mem_store::record& m = *mem[i];
            const log_store::record& p = pg[i];
            unsigned version = 1;
            if (p.position() != m.position() || p.aggregate_id() != m.aggregate_id() ||
                p.aggregate_number() != m.aggregate_number() || p.aggregate_version() != m.aggregate_version() ||
                p.type_name() != m.type_name() || p.stream() != m.stream() ||
                p.payload() != encode(m, alternatives.at(m.type_id()), version) || p.schema_version() != version)
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

/// The digest of a schema's read-model rows, read with a separate connection.
std::uint64_t schema_digest(const pq_conn& db, const std::string& schema) {
    const pq_result r = db.query(std::string(select_rows_sql) + quote(schema) + ".\"bench_tickets_v1\"");
    std::uint64_t d = static_cast<std::uint64_t>(r.rows());
    for (int i = 0; i < r.rows(); ++i)
        d += digest(ticket_row{std::string(r.text(i, 0)), std::string(r.text(i, 1)), std::string(r.text(i, 2)),
                               std::string(r.text(i, 3)), std::string(r.text(i, 4)), parse_int(r.text(i, 5)),
                               parse_int(r.text(i, 6)), parse_int(r.text(i, 7)), parse_int(r.text(i, 8))});
    return d;
}

std::int64_t schema_checkpoint(const pq_conn& db, const std::string& schema) {
    const pq_result r = db.query(fmt::format(
        "SELECT position FROM {}.projectionist_checkpoints WHERE projection = '{}'", quote(schema), model_table));
    return r.rows() == 1 ? r.int64(0, 0) : -1;
}

/// The read model's table as the server describes it: columns, types, collations, nullability
/// and the primary key.
std::string table_shape(const pq_conn& db, const std::string& schema) {
    const pq_result r = db.query(fmt::format(
        "SELECT string_agg(column_name || ' ' || data_type || ' ' || coalesce(collation_name, '-') || ' ' || "
        "is_nullable, ', ' ORDER BY ordinal_position) || ' | ' || (SELECT pg_get_constraintdef(c.oid) FROM "
        "pg_catalog.pg_constraint c JOIN pg_catalog.pg_class t ON t.oid = c.conrelid JOIN pg_catalog.pg_namespace n "
        "ON n.oid = t.relnamespace WHERE n.nspname = '{0}' AND t.relname = '{1}' AND c.contype = 'p') FROM "
        "information_schema.columns WHERE table_schema = '{0}' AND table_name = '{1}'",
        schema, model_table));
    return std::string(r.text(0, 0));
}

/// The statements prepared on a connection (pg_prepared_statements), by text.
std::set<std::string> prepared_on(PGconn* c) {
    pq_result r(PQexec(c, "SELECT statement FROM pg_prepared_statements"));
    std::set<std::string> out;
    for (int i = 0; i < r.rows(); ++i) out.emplace(r.text(i, 0));
    return out;
}

// ---- measuring: the thread's CPU time, the server processes' CPU time, wall time ----------------------

/// CPU seconds of a process on this machine (a server backend), or a negative number.
double process_cpu_seconds(int pid) {
    clockid_t clock{};
    timespec ts{};
    if (clock_getcpuclockid(pid, &clock) != 0 || clock_gettime(clock, &ts) != 0) return -1;
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
double backends_cpu_seconds(const std::vector<int>& pids) {
    double sum = 0;
    for (const int pid : pids) {
        const double s = process_cpu_seconds(pid);
        if (s < 0) return -1;
        sum += s;
    }
    return sum;
}

/// Whether the server's processes are this machine's (a loopback or Unix-socket connection and a
/// `postgres` process under the backend's pid): then their CPU time can be read.
bool server_is_local(const pq_conn& db) {
    const pq_result r = db.query("SELECT inet_server_addr()::text");
    const std::string_view addr = PQgetisnull(r.get(), 0, 0) ? std::string_view() : r.text(0, 0);
    if (!addr.empty() && !addr.starts_with("127.") && !addr.starts_with("::1")) return false;
    std::ifstream comm(fmt::format("/proc/{}/comm", db.backend_pid()));
    std::string name;
    return std::getline(comm, name) && name == "postgres" && process_cpu_seconds(db.backend_pid()) >= 0;
}

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
            const double server_start = local ? backends_cpu_seconds(pids) : 0;
            rusage usage_start{};
            getrusage(RUSAGE_THREAD, &usage_start);
            const cpu_times cpu_start = thread_cpu_seconds();
            const auto start = clock::now();
            const std::uint64_t applied = sides[i].run();
            const auto stop = clock::now();
            const cpu_times cpu_stop = thread_cpu_seconds();
            rusage usage_stop{};
            getrusage(RUSAGE_THREAD, &usage_stop);
            const double server_stop = local ? backends_cpu_seconds(pids) : 0;
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

/// Drops the benchmark's schemas at the end (and on the way out of an exception).
struct drop_schemas {
    std::string url;
    std::vector<std::string> schemas;
    ~drop_schemas() {
        try {
            const pq_conn db(url);
            for (const std::string& s : schemas) db.exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", quote(s)));
        } catch (...) {
            // The server is gone: nothing to clean up on it.
        }
    }
};

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
    const pq_result server = admin.query(
        "SELECT version(), current_setting('fsync'), current_setting('synchronous_commit'), "
        "current_setting('full_page_writes'), current_setting('shared_buffers'), current_setting('max_wal_size')");
    const std::string server_version(server.text(0, 0));
    const std::string settings = fmt::format(
        "fsync={}, synchronous_commit={}, full_page_writes={}, shared_buffers={}, "
        "max_wal_size={}",
        server.text(0, 1), server.text(0, 2), server.text(0, 3), server.text(0, 4), server.text(0, 5));
    const bool local = server_is_local(admin);
    // CHECKPOINT before every repetition, so that no side pays for the previous one's dirty pages
    // (needs superuser or pg_checkpoint; without it the repetitions run without).
    bool can_checkpoint = true;
    try {
        admin.exec("CHECKPOINT");
    } catch (const std::exception&) {
        can_checkpoint = false;
    }

    // The log: written once, then only read.
    admin.exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", quote(log_schema)));
    pj::postgres_options log_options;
    log_options.schema = log_schema;
    log_store log(url, log_options);
    fmt::print("  6d. PostgreSQL ({}; {}): writing the history into schema {} ...\n",
               server_version.substr(0, server_version.find(" on ")), settings, log_schema);
    std::fflush(stdout);
    const log_timing written = write_log(history, url, log_schema);
    if (log.head() != n) mismatch("6d. PostgreSQL: the log's head");
    {
        const pq_result a = admin.query(
            fmt::format("SELECT count(*), sum(version) FROM {}.projectionist_aggregates", quote(log_schema)));
        if (a.int64(0, 0) != static_cast<std::int64_t>(stats.aggregates) ||
            a.int64(0, 1) != static_cast<std::int64_t>(n))
            mismatch("6d. PostgreSQL: the log's aggregates");
    }
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
        opt.repetitions, local ? "measured (local server)" : "not measured (not a local server)");
    std::fflush(stdout);

    runner_side runner(log, url, runner_schema);
    libpq_backfill loop(url, log_schema, libpq_schema, batch_size);
    const auto checkpoint = [&] {
        if (can_checkpoint) admin.exec("CHECKPOINT");
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
    const std::vector<pg_samples> s = measure(sides, opt, local, n);

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
        for (const char* sql : {find_sql, insert_sql, upsert_sql, checkpoint_sql})
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
        {"server", server_version},
        {"server_settings", settings},
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
        // Round trips of one backfill: a SELECT per key a batch reads before writing it (the same on
        // both sides), plus a handful per batch.
        {"key_selects_per_backfill", static_cast<double>(loop.fetches()) / static_cast<double>(loop.runs())},
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
    data.push_back({"postgres_server", server_version});
    data.push_back({"postgres_settings", settings});
    data.push_back({"postgres_runs", static_cast<double>(opt.repetitions)});
    data.push_back({"postgres_warmup_runs", static_cast<double>(opt.warmup)});
}

}  // namespace bench

#endif  // PROJECTIONIST_BENCH_POSTGRES
