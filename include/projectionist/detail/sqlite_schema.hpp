#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <fmt/format.h>

#include <projectionist/detail/sqlite_api.hpp>

namespace projectionist {

/// How durable a SQLite commit is. `full` (the default) survives power loss; `normal` in WAL
/// mode survives a crash of the process but may lose the last commits on power loss.
enum class sqlite_synchronous { full, normal };

/// Options of a SQLite database opened by projectionist.
struct sqlite_options {
    sqlite_synchronous synchronous = sqlite_synchronous::full;
    std::chrono::milliseconds busy_timeout{5000};  ///< how long a writer waits for another process's lock
    std::size_t max_payload_bytes = 16u << 20;     ///< a larger stored payload is refused when read
    /// Page cache per connection in KiB; 0 keeps SQLite's default (2 MiB). A backfill whose read
    /// model outgrows the cache reads pages back from the OS: 64 MiB cut one by a fifth.
    std::size_t cache_size_kib = 0;
    /// Page cache in KiB of the connection that appends (the store's), if larger than
    /// `cache_size_kib`; 0 leaves it at that. Every appended event inserts into the log's index
    /// by aggregate at a random place: once the index outgrows the cache, each insert reads its
    /// page back from the OS (the index takes about 35 MB per million events). SQLite allocates
    /// the cache as it fills, so a small log pays nothing.
    std::size_t append_cache_size_kib = 64u << 10;
    /// Page cache in KiB of each storage session's connection (a runner's), if larger than the
    /// connection's own (`cache_size_kib`, or SQLite's 2 MiB); 0 leaves it at that. A batch
    /// reads and rewrites rows at random places of its read model: once the tables outgrow the
    /// cache, every batch reads their pages back from the OS (6x4 in benchmarks/README.md: a
    /// batch-mode backfill of the tickets read model took 0.68 of the time with 64 MiB). SQLite
    /// allocates the cache as it fills, so a small read model pays nothing.
    std::size_t session_cache_size_kib = 64u << 10;
    /// Per-aggregate positions are written as one row per batch (the batch's changed positions);
    /// once the rows hold this many positions, or twice as many as there are tracked aggregates,
    /// whichever is more, a batch writes one row with every position and the older rows go.
    std::size_t aggregate_position_log_limit = 65536;
};

namespace detail::sqlite {

/// "PRJT": marks a file as projectionist's, so that a foreign database is never modified.
inline constexpr std::int32_t application_id = 0x50524A54;
/// The schema this build reads and writes. A file with a newer one is refused; an older one is
/// brought up to date when it is opened (version 2 added the per-batch aggregate positions,
/// version 3 the catalog's fingerprints, tombstones and retention: `catalog_columns_v3`, version 4
/// made event type ids AUTOINCREMENT: `never_reuse_type_ids`).
inline constexpr std::int32_t schema_version = 4;

/// The catalog's columns added by schema version 3 (each TEXT NOT NULL DEFAULT ''), added to an
/// older file's catalog when it is opened.
inline constexpr std::array<const char*, 5> catalog_columns_v3{"fingerprint", "definition", "deleted_at", "deleted_by",
                                                               "retain_until"};

inline std::int64_t pragma_int(const connection& db, const char* pragma) {
    statement s(db, fmt::format("PRAGMA {}", pragma));
    return s.step() ? s.int64(0) : 0;
}

/// Raises the connection's page cache to `kib` KiB if it is smaller; never lowers it
/// (sqlite_options::append_cache_size_kib, session_cache_size_kib, a bulk flush). Returns the
/// `PRAGMA cache_size` value it replaced, to restore later, or nothing if it left it.
inline std::optional<std::int64_t> raise_cache(connection& db, std::size_t kib) {
    const std::int64_t now = pragma_int(db, "cache_size");  // negative: KiB; positive: pages
    const std::int64_t now_kib = now < 0 ? -now : now * pragma_int(db, "page_size") / 1024;
    if (static_cast<std::int64_t>(kib) <= now_kib) return std::nullopt;
    db.exec(fmt::format("PRAGMA cache_size=-{}", kib));
    return now;
}

/// Schema version 4: an event type id is never given again. With a plain INTEGER PRIMARY KEY,
/// SQLite gives a new row the highest id plus one, so after the highest type row was deleted the
/// next new type took its id, and the events of the deleted type were read as the new one. The
/// table of an older file is rebuilt with AUTOINCREMENT, its sequence set past every id a type
/// row or an event names. In the opening transaction.
inline void never_reuse_type_ids(const connection& db) {
    statement sql(db, "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'projectionist_event_types'");
    if (!sql.step() || std::string_view(sql.text(0)).find("AUTOINCREMENT") != std::string_view::npos) return;
    sql.reset();
    db.exec(R"sql(
DROP VIEW IF EXISTS events;
CREATE TABLE projectionist_event_types_v4(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE(stream, name));
INSERT INTO projectionist_event_types_v4(id, stream, name) SELECT id, stream, name FROM projectionist_event_types;
DROP TABLE projectionist_event_types;
ALTER TABLE projectionist_event_types_v4 RENAME TO projectionist_event_types;
DELETE FROM sqlite_sequence WHERE name = 'projectionist_event_types';
INSERT INTO sqlite_sequence(name, seq) SELECT 'projectionist_event_types', max(
    coalesce((SELECT max(id) FROM projectionist_event_types), 0),
    coalesce((SELECT max(type_id) FROM projectionist_events), 0));
)sql");
}

/// Opens (creating if needed) a projectionist database: checks that the file is ours and not
/// newer than this build before anything is written, then sets WAL mode, the synchronous level
/// and the busy timeout, and creates the schema (event log, catalog, checkpoints, dead letters).
/// The same schema serves a file that holds the log, the read models, or both.
inline connection open_database(const std::string& path, const sqlite_options& options) {
    connection db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    db.busy_timeout(options.busy_timeout);
    std::int64_t app = 0;
    std::int64_t tables = 0;
    try {
        app = pragma_int(db, "application_id");
        statement count(db, "SELECT count(*) FROM sqlite_schema");
        tables = count.step() ? count.int64(0) : 0;
    } catch (const coded_error& e) {  // sqlite_error, or storage_error
        const int rc = e.code() & 0xFF;
        if (rc == SQLITE_NOTADB)
            throw error(
                fmt::format("projectionist: '{}' is not a SQLite database ({}); nothing was changed", path, e.what()));
        // A reader of a database in WAL mode needs its -wal and -shm files: when they do not exist
        // it must create them beside the database, which a read-only directory refuses.
        const std::filesystem::path directory = std::filesystem::path(path).parent_path();
        throw error(fmt::format("projectionist: '{}' cannot be read ({}){}; nothing was changed", path, e.what(),
                                rc == SQLITE_CANTOPEN || rc == SQLITE_READONLY
                                    ? fmt::format("; a database in WAL mode needs its -wal and -shm files beside "
                                                  "it: check that the directory '{}' may be written",
                                                  directory.empty() ? "." : directory.c_str())
                                    : std::string()));
    }
    if (app != 0 && app != application_id)
        throw error(
            fmt::format("projectionist: '{}' belongs to another application (application_id {:#x}); "
                        "nothing was changed",
                        path, app));
    if (app == 0 && tables != 0)
        throw error(
            fmt::format("projectionist: '{}' is a SQLite database that projectionist did not create ({} "
                        "schema objects, no projectionist application_id); nothing was changed",
                        path, tables));
    const std::int64_t version = pragma_int(db, "user_version");
    if (app == application_id && version > schema_version)
        throw error(
            fmt::format("projectionist: '{}' has schema version {}, newer than this build's {}; upgrade "
                        "projectionist to open it; nothing was changed",
                        path, version, schema_version));

    db.exec("PRAGMA journal_mode=WAL");
    db.exec(options.synchronous == sqlite_synchronous::full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    if (options.cache_size_kib != 0) db.exec(fmt::format("PRAGMA cache_size=-{}", options.cache_size_kib));
    // An initialized file of this version needs no write: opening it then takes no write lock
    // and costs no fsync (a reader never waits behind a long writer transaction).
    if (app == application_id && version == schema_version) return db;
    db.exec("BEGIN IMMEDIATE");
    try {
        db.exec(fmt::format("PRAGMA application_id={}", application_id));
        db.exec(fmt::format("PRAGMA user_version={}", schema_version));
        never_reuse_type_ids(db);  // a file of schema version 3 or older
        db.exec(R"sql(
CREATE TABLE IF NOT EXISTS projectionist_event_types(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE(stream, name));
CREATE TABLE IF NOT EXISTS projectionist_aggregates(
    number INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    UNIQUE(stream, aggregate_id));
CREATE TABLE IF NOT EXISTS projectionist_events(
    position INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    aggregate_number INTEGER NOT NULL,
    aggregate_version INTEGER NOT NULL,
    type_id INTEGER NOT NULL REFERENCES projectionist_event_types(id),
    schema_version INTEGER NOT NULL,
    payload BLOB NOT NULL,
    metadata TEXT,
    recorded_at INTEGER NOT NULL,
    UNIQUE(stream, aggregate_id, aggregate_version));
CREATE VIEW IF NOT EXISTS events AS
    SELECT e.position, e.stream, e.aggregate_id, e.aggregate_version, t.name AS type, e.schema_version,
           e.payload, e.metadata, strftime('%Y-%m-%dT%H:%M:%fZ', e.recorded_at / 1e9, 'unixepoch') AS recorded_at
    FROM projectionist_events e JOIN projectionist_event_types t ON t.id = e.type_id;
CREATE TABLE IF NOT EXISTS projectionist_settings(
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS projectionist_catalog(
    name TEXT PRIMARY KEY,
    base_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    live INTEGER NOT NULL,
    partitioning TEXT NOT NULL,
    tables TEXT NOT NULL,
    generation INTEGER NOT NULL,
    fingerprint TEXT NOT NULL DEFAULT '',
    definition TEXT NOT NULL DEFAULT '',
    deleted_at TEXT NOT NULL DEFAULT '',
    deleted_by TEXT NOT NULL DEFAULT '',
    retain_until TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS projectionist_checkpoints(
    projection TEXT PRIMARY KEY,
    position INTEGER NOT NULL);
-- Per-aggregate positions as rows: schema version 1 wrote them; now only read, and cleared by the
-- projection's first snapshot in the position log.
CREATE TABLE IF NOT EXISTS projectionist_aggregate_checkpoints(
    projection TEXT NOT NULL,
    aggregate_number INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY(projection, aggregate_number)) WITHOUT ROWID;
-- Per-aggregate positions: one row per batch, `versions` a JSON object {"aggregate number": version},
-- or a snapshot of every position that replaces the older rows. Query the view below.
CREATE TABLE IF NOT EXISTS projectionist_aggregate_position_log(
    id INTEGER PRIMARY KEY,
    projection TEXT NOT NULL,
    position INTEGER NOT NULL,
    entries INTEGER NOT NULL,
    versions TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS projectionist_aggregate_position_log_by_projection
    ON projectionist_aggregate_position_log(projection, id);
CREATE VIEW IF NOT EXISTS projectionist_aggregate_positions AS
    SELECT projection, aggregate_number, max(version) AS version FROM (
        SELECT projection, aggregate_number, version FROM projectionist_aggregate_checkpoints
        UNION ALL
        SELECT l.projection, CAST(j.key AS INTEGER), j.value
        FROM projectionist_aggregate_position_log l, json_each(l.versions) j)
    GROUP BY projection, aggregate_number;
CREATE TABLE IF NOT EXISTS projectionist_dead_letters(
    id INTEGER PRIMARY KEY,
    projection TEXT NOT NULL,
    position INTEGER NOT NULL,
    stream TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    aggregate_number INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    reason TEXT NOT NULL,
    parked INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL);
)sql");
        for (const char* column : catalog_columns_v3) {  // a catalog of schema version 2 or older
            statement has(db, "SELECT 1 FROM pragma_table_info('projectionist_catalog') WHERE name = ?");
            has.bind(1, std::string_view(column));
            if (!has.step())
                db.exec(
                    fmt::format("ALTER TABLE projectionist_catalog ADD COLUMN {} TEXT NOT NULL DEFAULT ''", column));
        }
        db.exec("COMMIT");
    } catch (...) {
        db.exec("ROLLBACK");
        throw;
    }
    return db;
}

}  // namespace detail::sqlite
}  // namespace projectionist
