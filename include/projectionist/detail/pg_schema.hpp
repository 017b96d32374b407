#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include <projectionist/detail/pg_api.hpp>
#include <projectionist/error.hpp>

namespace projectionist {

/// Options of a PostgreSQL database opened by projectionist (event store or read-model storage).
struct postgres_options {
    /// The schema that holds projectionist's tables; created if missing. Any name works (it is
    /// always quoted), "Tenant A" or `o"brien` included. Each connection's search_path is set to
    /// it, so handlers' own SQL finds the read-model tables unqualified.
    std::string schema = "public";
    /// How long a statement waits for a lock (another appender's, a row another transaction
    /// holds) before it fails with a postgres_storage_error whose timed_out() is true. 0 waits forever.
    std::chrono::milliseconds lock_timeout{5000};
    /// A larger stored payload is refused when read (codec_error), like the SQLite store's limit.
    std::size_t max_payload_bytes = 16u << 20;
    /// `synchronous_commit`: on (the default) a commit returns once its WAL is flushed; off lets
    /// a server crash lose the last few commits (never corrupting the database).
    bool synchronous_commit = true;
    /// A read-model storage session sends the statements of a batch's start (BEGIN, the
    /// checkpoint's lock, and the reads of the batch's rows a runner asks for in `begin`)
    /// together, and those of its commit (the tables' buffered writes, the checkpoint, the
    /// aggregates' positions) together, each group in one round trip (libpq's pipeline mode),
    /// then COMMIT on its own once their answers are checked. false sends them one
    /// at a time, a round trip each (the same statements and outcomes). The event store ignores it.
    bool pipeline = true;
};

namespace detail::pg {

/// The application name in the marker table: a schema without it (but with tables) is not ours.
inline constexpr std::string_view application_name = "projectionist";
/// The schema version this build reads and writes. A schema with a newer one is refused; an older
/// one is brought up to date when opened (`open_database`). Version 2 added the workers' tables
/// (projectionist_leases, projectionist_workers), nothing else: its migration is the DDL itself.
/// Version 3 added the catalog's fingerprint, definition, tombstone and retention columns (the
/// ALTER TABLE statements after the catalog's CREATE TABLE). Version 4 lets appends run
/// concurrently: the position and aggregate-number sequences (started after the rows a version 3
/// log already holds) and the functions projectionist_reserve_positions, projectionist_read_horizon
/// and projectionist_head (the statements at the end). Version 5: projectionist_reserve_positions
/// sends no NOTIFY when given no channel (an append outside a caller's transaction notifies after
/// its commit: see store/postgres_event_writer.hpp), and the sequences are only ever moved forward
/// when the DDL runs again (an older process may be appending meanwhile). Version 6 reserves with
/// projectionist_reserve, a LANGUAGE sql function that the server inlines into the appending
/// statement, in place of projectionist_reserve_positions (PL/pgSQL with an exception block, that
/// is a subtransaction, and a per-call search_path): the same locks in the same order, so
/// processes of version 5 keep appending beside it with the function they know, which an
/// upgraded schema keeps (a new one does not have it).
inline constexpr int schema_version = 6;
/// Advisory lock class ids ("PRJS", "PRJA", "PRJT", "PRJV"): the first key of pg_advisory_lock(int,
/// int) or pg_advisory_xact_lock(int, int).
/// `schema_lock_class` serializes schema creation; `append_lock_class` is taken for the few
/// microseconds in which an append reserves its positions (exclusive) or a reader computes its
/// horizon (shared), never to a commit; `type_lock_class` serializes the creation of new event
/// types (rare) to the commit, so that type ids stay dense; `lifecycle_lock_class` serializes the
/// init, reset, delete and hand-overs of emission of one projection's versions. The second key is
/// the schema's oid.
inline constexpr std::int32_t schema_lock_class = 0x50524A53;
inline constexpr std::int32_t append_lock_class = 0x50524A41;
inline constexpr std::int32_t type_lock_class = 0x50524A54;
inline constexpr std::int32_t lifecycle_lock_class = 0x50524A56;

// ---- projectionist's tables ------------------------------------------------------------------
// One string, run with search_path set to the schema, every statement idempotent (IF NOT
// EXISTS). Add new tables at the end and bump schema_version (a schema marked with the current
// version is never given the DDL again); a change to an existing table needs a migration too.
// Tables and columns mirror sqlite_schema.hpp; PostgreSQL types:
//  - positions, versions, aggregate numbers, nanosecond times: bigint; flags (live, parked):
//    boolean; recorded_at: nanoseconds since the Unix epoch, as in SQLite (the events view
//    shows it as timestamptz).
//  - projectionist_events stores the payload in exactly one of two columns: `payload` (bytea)
//    for the binary codec, `payload_json` (jsonb) for the JSON codec, so that a JSON log is
//    queryable with psql (`select payload_json->>'title' from events`) without storing the
//    document twice. jsonb normalizes the text (key order, whitespace, number spelling), which
//    json_codec's decoding does not depend on; it cannot hold "\u0000" or invalid UTF-8, so
//    such strings need the binary codec (an append of one fails and writes nothing).
//  - projectionist_leases (schema version 2): one row per partition of a projection run by
//    workers (include/projectionist/workers/): its holder (NULL: released), a fencing epoch that
//    every claim increments, and an expiry in the server's clock (clock_timestamp()), never a
//    worker's. `partitions` is the projection's partition count, the same in every row.
//    projectionist_workers: the live workers of a projection, each row renewed by its heartbeat.
//  - the event log's concurrency (schema version 4, store/postgres_event_writer.hpp): positions
//    come from projectionist_positions, reserved in blocks by projectionist_reserve (version 6)
//    under the append lock, held for microseconds. Before releasing it, the reservation takes a
//    transaction-level advisory lock keyed by its block (block_lock_class(schema oid), the block's
//    first position modulo 2^32), which the server releases when the appending transaction ends,
//    after its commit is visible. projectionist_read_horizon, under the same lock shared, returns
//    the lowest block still held (its position rebuilt from the sequence's value, which is at
//    most 2^32 above it), or the last reserved position + 1: a reader returns only positions
//    below it, read with a snapshot taken after it (a statement of its own). Aggregate numbers
//    come from projectionist_aggregate_numbers.
inline constexpr std::string_view schema_ddl = R"sql(
CREATE TABLE IF NOT EXISTS projectionist_schema(
    application text NOT NULL,
    version integer NOT NULL);
CREATE TABLE IF NOT EXISTS projectionist_event_types(
    id integer PRIMARY KEY,
    stream text NOT NULL,
    name text NOT NULL,
    UNIQUE(stream, name));
CREATE TABLE IF NOT EXISTS projectionist_aggregates(
    number bigint PRIMARY KEY,
    stream text NOT NULL,
    aggregate_id text NOT NULL,
    version bigint NOT NULL,
    UNIQUE(stream, aggregate_id));
CREATE TABLE IF NOT EXISTS projectionist_events(
    position bigint PRIMARY KEY,
    stream text NOT NULL,
    aggregate_id text NOT NULL,
    aggregate_number bigint NOT NULL,
    aggregate_version bigint NOT NULL,
    type_id integer NOT NULL REFERENCES projectionist_event_types(id),
    schema_version integer NOT NULL,
    payload bytea,
    payload_json jsonb,
    metadata text,
    recorded_at bigint NOT NULL,
    UNIQUE(stream, aggregate_id, aggregate_version),
    CHECK((payload IS NULL) <> (payload_json IS NULL)));
CREATE OR REPLACE VIEW events AS
    SELECT e.position, e.stream, e.aggregate_id, e.aggregate_version, t.name AS type, e.schema_version,
           e.payload, e.payload_json, e.metadata,
           to_timestamp(e.recorded_at / 1e9) AS recorded_at
    FROM projectionist_events e JOIN projectionist_event_types t ON t.id = e.type_id;
CREATE TABLE IF NOT EXISTS projectionist_settings(
    key text PRIMARY KEY,
    value text NOT NULL);
CREATE TABLE IF NOT EXISTS projectionist_catalog(
    name text PRIMARY KEY,
    base_name text NOT NULL,
    version integer NOT NULL,
    state text NOT NULL,
    live boolean NOT NULL,
    partitioning text NOT NULL,
    tables text NOT NULL,
    generation bigint NOT NULL);
ALTER TABLE projectionist_catalog
    ADD COLUMN IF NOT EXISTS fingerprint text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS definition text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS deleted_at text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS deleted_by text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS retain_until text NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS projectionist_checkpoints(
    projection text PRIMARY KEY,
    position bigint NOT NULL);
CREATE TABLE IF NOT EXISTS projectionist_aggregate_checkpoints(
    projection text NOT NULL,
    aggregate_number bigint NOT NULL,
    version bigint NOT NULL,
    PRIMARY KEY(projection, aggregate_number));
CREATE TABLE IF NOT EXISTS projectionist_dead_letters(
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projection text NOT NULL,
    position bigint NOT NULL,
    stream text NOT NULL,
    aggregate_id text NOT NULL,
    aggregate_number bigint NOT NULL,
    event_type text NOT NULL,
    reason text NOT NULL,
    parked boolean NOT NULL,
    recorded_at bigint NOT NULL);
CREATE TABLE IF NOT EXISTS projectionist_leases(
    projection text NOT NULL,
    partition integer NOT NULL,
    partitions integer NOT NULL,
    holder text,
    epoch bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY(projection, partition));
CREATE TABLE IF NOT EXISTS projectionist_workers(
    projection text NOT NULL,
    worker text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY(projection, worker));
CREATE SEQUENCE IF NOT EXISTS projectionist_positions AS bigint MINVALUE 0;
SELECT setval('projectionist_positions', greatest(coalesce((SELECT max(position) FROM projectionist_events), 0),
                                                  (SELECT last_value FROM projectionist_positions)));
CREATE SEQUENCE IF NOT EXISTS projectionist_aggregate_numbers AS bigint MINVALUE -1;
SELECT setval('projectionist_aggregate_numbers', greatest(coalesce((SELECT max(number) FROM projectionist_aggregates),
                                                                   -1),
                                                          (SELECT last_value FROM projectionist_aggregate_numbers)));
-- One expression, so that the server inlines the function into the calling statement (a
-- LANGUAGE sql function of one SELECT without FROM, SET or STRICT): no call, no subtransaction,
-- no per-call setting. CASE runs its conditions in order, each a step that is never true:
-- the append lock; the block (nextval, moved on by setval for more than one position); the
-- block lock, for the transaction's first block in this log (its mark, like the lock, goes with
-- the (sub)transaction that took it); the release of the append lock; the NOTIFY, when given a
-- channel. Names are qualified: an inlined body is parsed with the caller's search_path. A
-- failure between the lock and its release (a cancel, lock_timeout) leaves the append lock held:
-- the caller releases it after rolling back (store/postgres_event_writer.hpp), and a lost
-- connection releases it with the session.
CREATE OR REPLACE FUNCTION projectionist_reserve(
    count bigint, positions regclass, lock_class integer, lock_key integer, block_class integer, channel text)
RETURNS bigint LANGUAGE sql AS $reserve$
SELECT CASE
    WHEN pg_catalog.pg_advisory_lock(lock_class, lock_key) IS NULL THEN NULL
    WHEN CASE WHEN count > 1 THEN pg_catalog.setval(positions, pg_catalog.nextval(positions) + count - 1)
              ELSE pg_catalog.nextval(positions) END IS NULL THEN NULL
    WHEN CASE WHEN pg_catalog.current_setting('projectionist.block_' || block_class, true) = 'held' THEN false
              WHEN pg_catalog.pg_advisory_xact_lock(
                       block_class, (pg_catalog.currval(positions) - count + 1)::bit(32)::integer) IS NULL THEN true
              ELSE pg_catalog.set_config('projectionist.block_' || block_class, 'held', true) IS NULL END THEN NULL
    WHEN NOT pg_catalog.pg_advisory_unlock(lock_class, lock_key) THEN NULL
    WHEN CASE WHEN channel IS NULL THEN false ELSE pg_catalog.pg_notify(channel, '') IS NULL END THEN NULL
    ELSE pg_catalog.currval(positions) - count + 1
END
$reserve$;
CREATE OR REPLACE FUNCTION projectionist_read_horizon(lock_class integer, lock_key integer, block_class integer)
RETURNS bigint LANGUAGE plpgsql SET search_path FROM CURRENT AS $horizon$
DECLARE
    reserved bigint;
    lowest bigint;
BEGIN
    PERFORM pg_advisory_lock_shared(lock_class, lock_key);
    BEGIN
        reserved := coalesce(pg_sequence_last_value('projectionist_positions'), 0);
        SELECT min(reserved - ((reserved - l.objid::bigint) & 4294967295)) INTO lowest
            FROM pg_catalog.pg_locks l
            WHERE l.locktype = 'advisory' AND l.classid = block_class::oid AND l.objsubid = 2
              AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database());
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM pg_advisory_unlock_shared(lock_class, lock_key);
        RAISE;
    END;
    PERFORM pg_advisory_unlock_shared(lock_class, lock_key);
    RETURN coalesce(lowest, reserved + 1);
END
$horizon$;
CREATE OR REPLACE FUNCTION projectionist_head(lock_class integer, lock_key integer, block_class integer)
RETURNS bigint LANGUAGE plpgsql SET search_path FROM CURRENT AS $head$
DECLARE
    horizon bigint := projectionist_read_horizon(lock_class, lock_key, block_class);
BEGIN
    RETURN coalesce((SELECT position FROM projectionist_events WHERE position < horizon
                     ORDER BY position DESC LIMIT 1), 0);
END
$head$;
)sql";
// ---- end of projectionist's tables -----------------------------------------------------------

/// The first key of the advisory lock an append holds on its block of positions to its commit
/// (projectionist_reserve): one per schema, 0x40000000-0x4FFFFFFF (projectionist's other
/// lock classes are 0x5052xxxx), so positive and distinct from them.
constexpr std::int32_t block_lock_class(std::uint32_t schema_oid) noexcept {
    std::uint32_t h = 2166136261u;
    for (int shift = 0; shift < 32; shift += 8) {
        h ^= (schema_oid >> shift) & 0xFFu;
        h *= 16777619u;
    }
    return static_cast<std::int32_t>(0x40000000u | (h & 0x0FFFFFFFu));
}

/// A 32-bit FNV-1a hash of a schema name: the second key of the schema-creation lock (the
/// schema has no oid before it exists). Collisions only make two schemas' creation wait for
/// each other.
constexpr std::int32_t schema_name_key(std::string_view schema) noexcept {
    std::uint32_t h = 2166136261u;
    for (char c : schema) {
        h ^= static_cast<unsigned char>(c);
        h *= 16777619u;
    }
    return static_cast<std::int32_t>(h);
}

/// What a schema holds, as seen by `inspect_schema`.
struct schema_state {
    bool exists = false;         ///< the schema itself
    std::int64_t relations = 0;  ///< tables, views and sequences in it (indexes are not counted)
    bool marked = false;         ///< has the projectionist_schema marker table with a row
    std::string application;     ///< the marker's application
    std::int64_t version = 0;    ///< the marker's version
};

inline schema_state inspect_schema(const connection& db, const std::string& schema) {
    schema_state s;
    params p;
    p.add(schema);
    auto r = db.query(
        "SELECT n.oid IS NOT NULL, (SELECT count(*) FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid AND "
        "c.relkind IN ('r', 'p', "
        "'v', 'm', 'f', 'S')), "
        "EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid AND c.relname = "
        "'projectionist_schema' AND c.relkind IN ('r', 'p')) "
        "FROM (SELECT NULL) AS one LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = $1",
        p);
    s.exists = r.boolean(0, 0);
    s.relations = s.exists ? r.int64(0, 1) : 0;
    if (!s.exists || !r.boolean(0, 2)) return s;
    auto m =
        db.query(fmt::format("SELECT application, version FROM {}.projectionist_schema ORDER BY version DESC "
                             "LIMIT 1",
                             quote(schema)));
    if (m.rows() == 0) return s;
    s.marked = true;
    s.application = std::string(m.text(0, 0));
    s.version = m.int64(0, 1);
    return s;
}

/// Throws unless `s` is a schema projectionist may use: missing, empty, or marked as ours with
/// a version this build knows. Returns whether it is already complete (nothing to create).
inline bool check_schema(const schema_state& s, const std::string& schema) {
    if (s.marked) {
        if (s.application != application_name)
            throw error(
                fmt::format("projectionist: postgres schema {} belongs to another application ('{}' in "
                            "its projectionist_schema table); nothing was changed",
                            quote(schema), s.application));
        if (s.version > schema_version)
            throw error(
                fmt::format("projectionist: postgres schema {} has projectionist schema version {}, newer "
                            "than this build's {}; upgrade projectionist to open it; nothing was changed",
                            quote(schema), s.version, schema_version));
        return s.version == schema_version;
    }
    if (s.relations != 0)
        throw error(
            fmt::format("projectionist: postgres schema {} holds {} tables, views or sequences but was not "
                        "created by "
                        "projectionist (no projectionist_schema marker); choose another schema in "
                        "postgres_options::schema; nothing was changed",
                        quote(schema), s.relations));
    return false;
}

/// Runs `body` in a transaction that first takes the advisory lock (`lock_class`, `key`), so that
/// processes doing the same set-up at once take turns; commits, or rolls back and rethrows if
/// `body` (or the commit) throws.
///
///     in_locked_transaction(db, schema_lock_class, schema_name_key("orders"), [&] { db.exec(ddl); });
template <class Body>
void in_locked_transaction(const connection& db, std::int32_t lock_class, std::int32_t key, Body&& body) {
    db.exec("BEGIN");
    try {
        params k;
        k.add(static_cast<std::int64_t>(lock_class)).add(static_cast<std::int64_t>(key));
        db.query("SELECT pg_advisory_xact_lock($1::integer, $2::integer)", k);
        body();
        db.exec("COMMIT");
    } catch (...) {
        try {
            db.exec("ROLLBACK");
        } catch (...) {
            // The connection is lost; closing it discards the transaction anyway.
        }
        throw;
    }
}

/// Connects to `conninfo` and prepares `options.schema` for projectionist: checks, before
/// writing anything, that the schema is missing, empty, or projectionist's and not newer than
/// this build; sets search_path, lock_timeout and synchronous_commit on the connection; creates
/// the schema and its tables if missing, under an advisory lock so that processes starting
/// together do not race. A complete schema of this version is only read.
///
///     auto db = detail::pg::open_database("postgresql://app@db/app", {.schema = "orders"});
inline connection open_database(const std::string& conninfo, const postgres_options& options) {
    connection db(conninfo);
    const std::string& schema = options.schema;
    if (schema.empty()) throw error("projectionist: postgres_options::schema is empty; name a schema");
    db.setup(fmt::format("SET search_path TO {}; SET lock_timeout = {}; SET synchronous_commit = {}", quote(schema),
                         options.lock_timeout.count(), options.synchronous_commit ? "on" : "off"));
    if (check_schema(inspect_schema(db, schema), schema)) return db;

    in_locked_transaction(db, schema_lock_class, schema_name_key(schema), [&] {
        // Again under the lock: another process may have created (or claimed) it meanwhile.
        const schema_state s = inspect_schema(db, schema);
        if (!check_schema(s, schema)) {
            if (!s.exists) db.exec(fmt::format("CREATE SCHEMA {}", quote(schema)));
            db.exec(std::string(schema_ddl));
            if (!s.marked)
                db.exec(fmt::format("INSERT INTO projectionist_schema(application, version) VALUES ({}, {})",
                                    literal(application_name), schema_version));
            else  // an older version of ours: the DDL above added what it lacked
                db.exec(fmt::format("UPDATE projectionist_schema SET version = {}", schema_version));
        }
    });
    return db;
}

}  // namespace detail::pg
}  // namespace projectionist
