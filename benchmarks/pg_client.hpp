#pragma once
// Plain libpq as the hand-written PostgreSQL sides and the set-up use it (groups 6d, 8 and 9): a
// connection and its results, quoted identifiers, the server's description, the big-endian
// integers of binary results and of binary COPY, COPY ... FROM STDIN, and the array literals of
// multi-row statements. Then what 6d and 8 share about the tickets read model on PostgreSQL: its
// statements (the text postgres_event_store, postgres_table and postgres_storage prepare), the
// writes at the end of a hand-written batch, the history written into a log, and a schema's rows,
// checkpoint and table read back.
//
// Included only where libpq was found (PROJECTIONIST_BENCH_POSTGRES).

#include <libpq-fe.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <exception>
#include <fstream>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/mp11/algorithm.hpp>

#include <projectionist/store/postgres_event_store.hpp>

#include "bench_domain.hpp"
#include "harness.hpp"

namespace bench {

// ---- the connection and its results -------------------------------------------------------------

/// `identifier` as a quoted SQL identifier (`"` doubled).
inline std::string quote(std::string_view identifier) {
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

/// The messages of the server a new connection is sent (client_min_messages).
enum class pq_messages : std::uint8_t {
    warnings,        ///< warnings and errors: `SET client_min_messages = warning` on connecting
    server_default,  ///< the server's setting: no statement on connecting
};

/// A connection, closed on destruction. Every statement's result is checked: a status other than
/// the one the statement must end with throws.
class pq_conn {
public:
    explicit pq_conn(const std::string& url, pq_messages messages = pq_messages::warnings)
        : c_(PQconnectdb(url.c_str())) {
        if (PQstatus(c_) != CONNECTION_OK) {
            const std::string why = PQerrorMessage(c_);
            PQfinish(c_);
            throw std::runtime_error("libpq: cannot connect: " + why);
        }
        if (messages == pq_messages::warnings) exec("SET client_min_messages = warning");
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
    /// A statement that returns no rows.
    void exec(const std::string& sql) const { checked(PQexec(c_, sql.c_str()), PGRES_COMMAND_OK, sql); }
    /// A statement that returns rows (text).
    pq_result query(const std::string& sql) const { return checked(PQexec(c_, sql.c_str()), PGRES_TUPLES_OK, sql); }
    void prepare(const char* name, const std::string& sql) const {
        checked(PQprepare(c_, name, sql.c_str(), 0, nullptr), PGRES_COMMAND_OK, sql);
    }
    /// The prepared statement `name` with `n` parameters (text, unless `formats` says otherwise),
    /// its rows in text (`result_format` 0) or binary (1); it must end with `want`.
    pq_result run(const char* name, ExecStatusType want, int n, const char* const* values, int result_format = 0,
                  const int* lengths = nullptr, const int* formats = nullptr) const {
        return checked(PQexecPrepared(c_, name, n, values, lengths, formats, result_format), want, name);
    }

private:
    PGconn* c_;
};

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

/// Whether the server's processes are this machine's (a loopback or Unix-socket connection and a
/// `postgres` process under the backend's pid): then their CPU time can be read.
inline bool server_is_local(const pq_conn& db) {
    const pq_result r = db.query("SELECT inet_server_addr()::text");
    const std::string_view addr = PQgetisnull(r.get(), 0, 0) ? std::string_view() : r.text(0, 0);
    if (!addr.empty() && !addr.starts_with("127.") && !addr.starts_with("::1")) return false;
    std::ifstream comm(fmt::format("/proc/{}/comm", db.backend_pid()));
    std::string name;
    return std::getline(comm, name) && name == "postgres" && process_cpu_seconds(db.backend_pid()) >= 0;
}

/// The server, as the PostgreSQL comparisons report it.
struct pg_server {
    std::string version;          ///< version()
    std::string settings;         ///< fsync, synchronous_commit, full_page_writes, shared_buffers, max_wal_size
    bool local = false;           ///< server_is_local: its processes' CPU time can be read
    bool can_checkpoint = false;  ///< CHECKPOINT is allowed (superuser or pg_checkpoint)
};

/// Reads the server's version and settings, whether it is local, and whether CHECKPOINT is allowed
/// (by running one).
inline pg_server probe_server(const pq_conn& admin) {
    const pq_result r = admin.query(
        "SELECT version(), current_setting('fsync'), current_setting('synchronous_commit'), "
        "current_setting('full_page_writes'), current_setting('shared_buffers'), current_setting('max_wal_size')");
    pg_server s;
    s.version = std::string(r.text(0, 0));
    s.settings = fmt::format("fsync={}, synchronous_commit={}, full_page_writes={}, shared_buffers={}, max_wal_size={}",
                             r.text(0, 1), r.text(0, 2), r.text(0, 3), r.text(0, 4), r.text(0, 5));
    s.local = server_is_local(admin);
    s.can_checkpoint = true;
    try {
        admin.exec("CHECKPOINT");
    } catch (const std::exception&) {
        s.can_checkpoint = false;
    }
    return s;
}

// ---- binary results and binary COPY -------------------------------------------------------------

/// Big-endian integers of binary-format results: the store's own readers (int8, int4).
using pj::detail::pg::binary_int32;
using pj::detail::pg::binary_int64;
template <class T>
void put_be(std::string& out, T v) {
    using U = std::make_unsigned_t<T>;
    const auto u = static_cast<U>(v);
    for (int shift = static_cast<int>(sizeof(T) * 8) - 8; shift >= 0; shift -= 8)
        out.push_back(static_cast<char>((u >> shift) & 0xFF));
}

/// The fields of a binary COPY tuple (after its field count, `put_be<std::int16_t>`): the length,
/// then the bytes.
inline void field(std::string& out, std::string_view bytes) {
    put_be<std::int32_t>(out, static_cast<std::int32_t>(bytes.size()));
    out.append(bytes);
}
inline void field64(std::string& out, std::int64_t v) {
    put_be<std::int32_t>(out, 8);
    put_be<std::int64_t>(out, v);
}
inline void field32(std::string& out, std::int32_t v) {
    put_be<std::int32_t>(out, 4);
    put_be<std::int32_t>(out, v);
}

/// The header of COPY's binary format: the signature, no flags, no header extension.
inline constexpr std::string_view copy_header("PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19);

/// COPY ... FROM STDIN (FORMAT binary): the header, then `rows(out, flush)` appends tuples to
/// `out` and calls `flush()` after each (which sends `out` once it holds 1 MB), then the trailer.
template <class Rows>
void copy_in(const pq_conn& db, const std::string& sql, Rows&& rows) {
    db.checked(PQexec(db.get(), sql.c_str()), PGRES_COPY_IN, sql);
    std::string buf(copy_header);
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

// ---- text parameters and results ------------------------------------------------------------------

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

// ---- the tickets read model on PostgreSQL (6d and 8) ----------------------------------------------

/// The read model's table: the projection's name and version (each side checks its own).
inline constexpr std::string_view pg_model_table = "bench_tickets_v1";

#define PG_CLIENT_COLUMNS \
    R"("ticket_id", "type", "status", "assignee", "last_tag", "priority", "comments", "reopened", "escalation")"
#define PG_CLIENT_UNNEST                                                                                \
    "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::integer[], $7::integer[], " \
    "$8::integer[], $9::integer[])"
/// The read model's table as postgres_storage creates it (checked against the runner's schema).
inline constexpr const char* model_ddl =
    R"(CREATE TABLE IF NOT EXISTS "bench_tickets_v1" ("ticket_id" text COLLATE "C" NOT NULL, )"
    R"("type" text COLLATE "C" NOT NULL, "status" text COLLATE "C" NOT NULL, "assignee" text COLLATE "C" NOT NULL, )"
    R"("last_tag" text COLLATE "C" NOT NULL, "priority" integer NOT NULL, "comments" integer NOT NULL, )"
    R"("reopened" integer NOT NULL, "escalation" integer NOT NULL, PRIMARY KEY ("ticket_id")))";
inline constexpr const char* checkpoint_ddl =
    "CREATE TABLE IF NOT EXISTS projectionist_checkpoints(projection text PRIMARY KEY, position bigint NOT NULL)";
/// postgres_table's find: one key per statement.
inline constexpr const char* find_sql =
    "SELECT " PG_CLIENT_COLUMNS R"( FROM "bench_tickets_v1" WHERE "ticket_id" = $1)";
/// postgres_table's read of many keys: a batch's rows, read ahead in one statement.
inline constexpr const char* find_many_sql =
    "SELECT " PG_CLIENT_COLUMNS R"( FROM "bench_tickets_v1" WHERE "ticket_id" = ANY($1::text[]))";
/// postgres_table's multi-row writes (the runner's statements at the end of a batch).
inline constexpr const char* insert_sql =
    R"(INSERT INTO "bench_tickets_v1" ()" PG_CLIENT_COLUMNS ") SELECT * FROM " PG_CLIENT_UNNEST
    R"( ON CONFLICT ("ticket_id") DO NOTHING RETURNING "ticket_id")";
inline constexpr const char* upsert_sql =
    R"(INSERT INTO "bench_tickets_v1" ()" PG_CLIENT_COLUMNS ") SELECT * FROM " PG_CLIENT_UNNEST
    R"( ON CONFLICT ("ticket_id") DO UPDATE SET "type" = excluded."type", "status" = excluded."status", )"
    R"("assignee" = excluded."assignee", "last_tag" = excluded."last_tag", "priority" = excluded."priority", )"
    R"("comments" = excluded."comments", "reopened" = excluded."reopened", "escalation" = excluded."escalation")";
/// Every row of a schema's table (the schema and table follow).
inline constexpr const char* select_rows_sql = "SELECT " PG_CLIENT_COLUMNS " FROM ";
#undef PG_CLIENT_UNNEST
#undef PG_CLIENT_COLUMNS
/// postgres_storage's checkpoint of a session without a slice: compare and set, and no partition
/// checkpoint of the projection.
inline constexpr const char* checkpoint_sql =
    "UPDATE projectionist_checkpoints SET position = $1 WHERE projection = $2 AND position = $3 AND NOT EXISTS "
    "(SELECT 1 FROM projectionist_checkpoints WHERE starts_with(projection, $4))";
/// The parameters of checkpoint_sql, as text: the projection's checkpoint moved from `from` to `to`.
struct checkpoint_move {
    checkpoint_move(std::string_view projection, std::uint64_t from, std::uint64_t to)
        : to_(std::to_string(to)),
          projection_(projection),
          from_(std::to_string(from)),
          partitions_(std::string(projection) + "#") {}
    /// Pointers into this object: not on a temporary, which would leave them dangling.
    [[nodiscard]] std::array<const char*, 4> params() const& {
        return {to_.c_str(), projection_.c_str(), from_.c_str(), partitions_.c_str()};
    }
    std::array<const char*, 4> params() const&& = delete;

private:
    std::string to_, projection_, from_, partitions_;
};
/// postgres_event_store's read of a batch of the log: after $1, below the horizon $3, at most $2.
inline std::string read_sql(const std::string& log_schema) {
    return fmt::format(
        "SELECT position, type_id, aggregate_number, aggregate_version, schema_version, recorded_at, aggregate_id, "
        "payload FROM {}.projectionist_events WHERE position > $1 AND position < $3 ORDER BY position LIMIT $2",
        quote(log_schema));
}

/// The statements prepared on a connection (pg_prepared_statements), by text.
inline std::set<std::string> prepared_on(PGconn* c) {
    pq_result r(PQexec(c, "SELECT statement FROM pg_prepared_statements"));
    std::set<std::string> out;
    for (int i = 0; i < r.rows(); ++i) out.emplace(r.text(i, 0));
    return out;
}

/// The log's reads as postgres_event_store makes them: its guard first (the horizon: the lowest
/// position an open append may still commit, a statement of its own), then the read below it,
/// both with the store's own statements. The horizon's text names the log's lock keys, so it is
/// taken from the store's connection (`store`, where the store prepared it), not written again.
class log_reader {
public:
    log_reader(const pq_conn& log, PGconn* store, const std::string& log_schema, std::string name)
        : log_(&log), horizon_name_(name + "_horizon"), read_name_(name + "_read") {
        std::string horizon;
        for (const std::string& sql : prepared_on(store))
            if (sql.find("projectionist_read_horizon(") != std::string::npos) horizon = sql;
        if (horizon.empty()) mismatch("the event store's connection has no prepared horizon statement");
        log.prepare(horizon_name_.c_str(), horizon);
        log.prepare(read_name_.c_str(), read_sql(log_schema));
    }

    /// At most `limit` events after `after` (binary results: read_sql's columns); nothing, as the
    /// store reads nothing, when the horizon is not past `after`.
    [[nodiscard]] std::optional<pq_result> read(std::uint64_t after, std::size_t limit) const {
        const pq_result h =
            log_->checked(PQexecPrepared(log_->get(), horizon_name_.c_str(), 0, nullptr, nullptr, nullptr, 0),
                          PGRES_TUPLES_OK, "horizon");
        const std::string horizon(h.text(0, 0));
        std::int64_t below = 0;
        std::from_chars(horizon.data(), horizon.data() + horizon.size(), below);
        if (below <= static_cast<std::int64_t>(after) + 1) return std::nullopt;
        const std::string after_text = std::to_string(after);
        const std::string limit_text = std::to_string(limit);
        const char* params[3] = {after_text.c_str(), limit_text.c_str(), horizon.c_str()};
        return log_->checked(PQexecPrepared(log_->get(), read_name_.c_str(), 3, params, nullptr, nullptr, 1),
                             PGRES_TUPLES_OK, "read");
    }

private:
    const pq_conn* log_;
    std::string horizon_name_;
    std::string read_name_;
};

/// The session settings projectionist's open_database gives every connection.
inline std::string session_settings(const std::string& schema) {
    return fmt::format("SET search_path TO {}; SET lock_timeout = 5000; SET synchronous_commit = on", quote(schema));
}

/// Row `i` of a text result whose columns are the read model's, in order.
inline ticket_row row_from_text(const pq_result& r, int i) {
    return ticket_row{std::string(r.text(i, 0)), std::string(r.text(i, 1)), std::string(r.text(i, 2)),
                      std::string(r.text(i, 3)), std::string(r.text(i, 4)), parse_int(r.text(i, 5)),
                      parse_int(r.text(i, 6)),   parse_int(r.text(i, 7)),   parse_int(r.text(i, 8))};
}

/// What a hand-written batch holds for a key: its row as read (`clean`), no row (`absent`), or a
/// row to write at the end of the batch (`upsert`, `insert`).
enum class row_state : std::uint8_t { clean, absent, upsert, insert };
struct row_entry {
    row_state kind;
    ticket_row row;
};

/// The rows of `found` (text results of the read model's columns) into `rows`, which holds an
/// entry for each of their keys (the keys asked for): each row as read (`clean`).
template <class Map>
void keep_found_rows(const pq_result& found, Map& rows) {
    for (int i = 0; i < found.rows(); ++i)
        rows.find(std::string(found.text(i, 0)))->second = row_entry{row_state::clean, row_from_text(found, i)};
}

/// The writes at the end of a hand-written batch, as the runner's: the rows to insert in one
/// multi-row insert, then the rows to upsert in one multi-row upsert, each row a tenth element of
/// nine column arrays (`{...}` literals, unnest). The strings keep their capacity from batch to
/// batch.
class batch_writes {
public:
    /// Writes the `insert` and `upsert` entries of `rows` (key -> row_entry) by the statements
    /// prepared as `insert_name` (insert_sql) and `upsert_name` (upsert_sql), each only when it
    /// has rows. Throws when an inserted key already existed (`side` names the writer).
    template <class Map>
    void write(const Map& rows, const pq_conn& db, const char* insert_name, const char* upsert_name,
               std::string_view side) {
        inserts_.clear();
        upserts_.clear();
        for (const auto& [key, x] : rows) {
            if (x.kind == row_state::insert)
                inserts_.add(x.row);
            else if (x.kind == row_state::upsert)
                upserts_.add(x.row);
        }
        if (inserts_.rows != 0) {
            const pq_result r = inserts_.send(db, insert_name, PGRES_TUPLES_OK);
            if (static_cast<std::size_t>(r.rows()) != inserts_.rows)
                throw std::runtime_error(fmt::format("{}: an inserted key already existed", side));
        }
        if (upserts_.rows != 0) upserts_.send(db, upsert_name, PGRES_COMMAND_OK);
    }

private:
    struct column_arrays {
        std::array<std::string, 9> arrays;
        std::size_t rows = 0;

        void clear() {
            for (std::string& a : arrays) a.assign(1, '{');
            rows = 0;
        }
        void add(const ticket_row& r) {
            if (rows++ != 0)
                for (std::string& a : arrays) a += ',';
            append_quoted(arrays[0], r.ticket_id);
            append_quoted(arrays[1], r.type);
            append_quoted(arrays[2], r.status);
            append_quoted(arrays[3], r.assignee);
            append_quoted(arrays[4], r.last_tag);
            append_int(arrays[5], r.priority);
            append_int(arrays[6], r.comments);
            append_int(arrays[7], r.reopened);
            append_int(arrays[8], r.escalation);
        }
        /// Closes the arrays and runs the prepared statement `name` with them as its parameters.
        pq_result send(const pq_conn& db, const char* name, ExecStatusType want) {
            const char* params[9];
            for (std::size_t i = 0; i < arrays.size(); ++i) {
                arrays[i] += '}';
                params[i] = arrays[i].c_str();
            }
            return db.checked(PQexecPrepared(db.get(), name, 9, params, nullptr, nullptr, 0), want, name);
        }
    };
    column_arrays inserts_;
    column_arrays upserts_;
};

/// The digest of a schema's read-model rows.
inline std::uint64_t schema_digest(const pq_conn& db, const std::string& schema) {
    const pq_result r = db.query(std::string(select_rows_sql) + quote(schema) + R"(."bench_tickets_v1")");
    std::uint64_t d = static_cast<std::uint64_t>(r.rows());
    for (int i = 0; i < r.rows(); ++i) d += digest(row_from_text(r, i));
    return d;
}

/// The read model's checkpoint in a schema, -1 without one.
inline std::int64_t schema_checkpoint(const pq_conn& db, const std::string& schema) {
    const pq_result r = db.query(fmt::format(
        "SELECT position FROM {}.projectionist_checkpoints WHERE projection = '{}'", quote(schema), pg_model_table));
    return r.rows() == 1 ? r.int64(0, 0) : -1;
}

/// The read model's table as the server describes it: columns, types, collations, nullability
/// and the primary key.
inline std::string table_shape(const pq_conn& db, const std::string& schema) {
    const pq_result r = db.query(fmt::format(
        "SELECT string_agg(column_name || ' ' || data_type || ' ' || coalesce(collation_name, '-') || ' ' || "
        "is_nullable, ', ' ORDER BY ordinal_position) || ' | ' || (SELECT pg_get_constraintdef(c.oid) FROM "
        "pg_catalog.pg_constraint c JOIN pg_catalog.pg_class t ON t.oid = c.conrelid JOIN pg_catalog.pg_namespace n "
        "ON n.oid = t.relnamespace WHERE n.nspname = '{0}' AND t.relname = '{1}' AND c.contype = 'p') FROM "
        "information_schema.columns WHERE table_schema = '{0}' AND table_name = '{1}'",
        schema, pg_model_table));
    return std::string(r.text(0, 0));
}

// ---- the history in a PostgreSQL log (6d and 8) -----------------------------------------------------

/// Replaces `out` with the record's payload as the store encodes it (binary_codec); returns the
/// event's schema version. `alt`: the record's alternative (alternatives_of(history)).
inline unsigned encode_payload(const pj::memory_event_store::record& rec, std::uint8_t alt, std::string& out) {
    unsigned version = 1;
    out.clear();
    boost::mp11::mp_with_index<event_type_count>(alt, [&](auto I) {
        using E = boost::mp11::mp_at_c<ticket_events, decltype(I)::value>;
        pj::binary_codec::encode(pj::memory_event_store::event_of<E>(rec), out);
        version = pj::schema_version_of<E>;
    });
    return version;
}

struct log_timing {
    double copy_s = 0;    ///< types, aggregates and events, one transaction
    double vacuum_s = 0;  ///< VACUUM (ANALYZE) of the log's tables
    [[nodiscard]] double total_s() const noexcept { return copy_s + vacuum_s; }
};

/// Writes the history into the store's (empty) tables in `schema` in one transaction: the event
/// types and aggregates numbered in order of first appearance (what append assigns: ids from 1,
/// aggregate numbers from 0), each aggregate at its last version, then every event by COPY
/// (binary), at its position; the store's sequences moved past them. Then VACUUM (ANALYZE), so
/// that no side's first read pays for hint bits or runs without statistics. `group` names the
/// comparison in a mismatch.
inline log_timing write_log(const pj::memory_event_store& history, const std::string& url, const std::string& schema,
                            std::string_view group) {
    log_timing t;
    auto started = std::chrono::steady_clock::now();
    const pq_conn db(url);
    const std::string s = quote(schema);
    pj::memory_event_store::batch all;
    history.read(0, history.head(), all);
    const std::vector<std::uint8_t> alternatives = alternatives_of(history);

    db.exec("BEGIN");
    // Types: ids from 1 in order of first appearance.
    std::vector<std::int32_t> type_ids(history.type_count(), 0);
    std::int32_t next_type = 0;
    std::vector<std::uint64_t> final_version;
    for (const pj::memory_event_store::record* rec : all) {
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
            [&](std::string& out, auto&& flush) {
                std::uint64_t next = 0;
                for (const pj::memory_event_store::record* rec : all) {
                    if (rec->aggregate_version() != 1) continue;
                    if (rec->aggregate_number() != next++)
                        mismatch(fmt::format("{}: aggregate numbers are not in first-appearance order", group));
                    put_be<std::int16_t>(out, 4);
                    field64(out, static_cast<std::int64_t>(rec->aggregate_number()));
                    field(out, rec->stream());
                    field(out, rec->aggregate_id());
                    field64(out, static_cast<std::int64_t>(final_version[rec->aggregate_number()]));
                    flush();
                }
            });
    copy_in(db,
            fmt::format("COPY {}.projectionist_events(position, stream, aggregate_id, aggregate_number, "
                        "aggregate_version, type_id, schema_version, payload, recorded_at) FROM STDIN (FORMAT binary)",
                        s),
            [&](std::string& out, auto&& flush) {
                std::string payload;
                for (const pj::memory_event_store::record* rec : all) {
                    const unsigned version = encode_payload(*rec, alternatives.at(rec->type_id()), payload);
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
                    flush();
                }
            });
    // The store's next append and aggregate go on after the rows written here (a SELECT: query).
    (void)db.query(
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

/// Whether the log in `schema` holds `aggregates` aggregates whose versions add up to `events`.
inline bool log_aggregates_are(const pq_conn& db, const std::string& schema, std::uint64_t aggregates,
                               std::uint64_t events) {
    const pq_result a =
        db.query(fmt::format("SELECT count(*), sum(version) FROM {}.projectionist_aggregates", quote(schema)));
    return a.int64(0, 0) == static_cast<std::int64_t>(aggregates) && a.int64(0, 1) == static_cast<std::int64_t>(events);
}

}  // namespace bench
