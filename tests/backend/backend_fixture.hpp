#pragma once
// The backend under test for the shared backend suite (tests/backend/*_test.cpp): one fixture per
// SQL backend, picked by a compile definition, so that every test states the contract once and
// each executable instantiates one backend only:
//
//   PROJECTIONIST_TEST_BACKEND_SQLITE    -> backend = sqlite_backend    (executable backend_sqlite)
//   PROJECTIONIST_TEST_BACKEND_POSTGRES  -> backend = postgres_backend  (executable backend_postgres)
//   PROJECTIONIST_TEST_BACKEND_MEMORY    -> backend = memory_backend    (executable backend_memory)
//
// memory has no SQL and no second view of one database: `backend::speaks_sql` is false there (its
// exec, scalar and text throw), and so are `reopens`, `shared_across_processes` and
// `encodes_payloads`. The cases that need what memory lacks are skipped with a WARN naming the
// ability trait or flag (backend_suite.hpp: BACKEND_SKIP_UNLESS, or BACKEND_TEST_CASE_IF and
// BACKEND_TEMPLATE_TEST_CASE_IF for a case that would not even compile there).
//
// A fixture object is one test's fresh, isolated environment with two databases: `db::primary`,
// which holds the log and the read models unless a test says otherwise, and `db::secondary`,
// "another database" (SQLite: another file in the test's temporary directory; PostgreSQL:
// another schema of the test's own). Both are removed when the fixture goes.
//
// What a fixture gives:
//  - the backend's types: `event_store_type`, `json_event_store_type`, `storage_type`;
//  - what it can do, as constants the cases test: `speaks_sql`, `scans_in_key_order`,
//    `concurrent_appends`, `reopens`, `shared_across_processes`, `encodes_payloads`, and
//    `abilities` (the traits of storage/abilities.hpp it should have);
//  - `at(db)`: a `place` (what the backend's constructors take: a path or a URL, and options,
//    which a test may change, e.g. `max_payload_bytes`), and `make<T>(place)`; shorthands
//    `store(db)`, `json_store(db)`, `storage(db)`;
//  - raw SQL for assertions, on a connection of its own: `exec`, `scalar` (an integer; booleans
//    read as 0 and 1 on both backends), `text` (nullopt for NULL);
//  - what differs between the dialects and is not the contract: the payload column of a codec,
//    how to plant someone else's database or a newer projectionist schema, how to fingerprint a
//    database to prove a refused open changed nothing, how refusals name the database, and
//    `integrity_ok` (SQLite: PRAGMA integrity_check; PostgreSQL: every index of the schema valid
//    and every table of it readable);
//  - `aggregate_positions`: the relation with a row per (projection, aggregate_number) and its
//    version; `in_transaction(c)` and `sees_table(c, name)` on a store's or session's own
//    connection; `refuse(...)` / `allow(...)`: a trigger that makes a statement fail part-way.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#if (defined(PROJECTIONIST_TEST_BACKEND_SQLITE) + defined(PROJECTIONIST_TEST_BACKEND_POSTGRES) + \
     defined(PROJECTIONIST_TEST_BACKEND_MEMORY)) != 1
#error "tests/backend: define exactly one of PROJECTIONIST_TEST_BACKEND_SQLITE, _POSTGRES and _MEMORY"
#endif

#ifdef PROJECTIONIST_TEST_BACKEND_SQLITE
#include <projectionist/sqlite.hpp>
#include <sqlite_test_support.hpp>
#endif
#ifdef PROJECTIONIST_TEST_BACKEND_POSTGRES
#include <postgres_test_support.hpp>
#include <projectionist/postgres.hpp>
#endif
#ifdef PROJECTIONIST_TEST_BACKEND_MEMORY
#include <projectionist/projectionist.hpp>
#endif

namespace backend_test {

/// One of a test's two databases.
enum class db { primary, secondary };

/// An integer from the text of a SQL value: booleans ("t"/"f" in PostgreSQL) as 1 and 0.
inline std::int64_t integer_of(const std::string& text, const std::string& sql) {
    if (text == "t") return 1;
    if (text == "f") return 0;
    std::size_t used = 0;
    const std::int64_t v = std::stoll(text, &used);
    if (used != text.size()) throw std::runtime_error("backend_test::scalar: not an integer: '" + text + "': " + sql);
    return v;
}

#ifdef PROJECTIONIST_TEST_BACKEND_SQLITE

/// SQLite: the two databases are two files in a temporary directory of the test's own.
class sqlite_backend {
public:
    static constexpr std::string_view name = "sqlite";
    static constexpr bool speaks_sql = true;
    static constexpr bool scans_in_key_order = true;  ///< for_each visits rows in key order
    /// Appends run concurrently: a position (or aggregate number) taken by an append that rolls
    /// back is not reused, and a reader is not given events of a transaction still open, its own
    /// included.
    static constexpr bool concurrent_appends = false;
    /// A store or storage made again at a place, while another is open there or after it was
    /// closed, sees what was written there (a database to reopen, and several objects over it).
    static constexpr bool reopens = true;
    /// Another process can open the place and append to the same log.
    static constexpr bool shared_across_processes = true;
    /// Records hold payloads a codec encoded (`payload()`, `schema_version()`), so schema versions,
    /// payload limits and both codecs apply; the store names its `codec`.
    static constexpr bool encodes_payloads = true;
    using event_store_type = projectionist::sqlite_event_store;
    using json_event_store_type = projectionist::sqlite_json_event_store;
    using storage_type = projectionist::sqlite_storage;
    using options_type = projectionist::sqlite_options;

    /// What the backend can do (backend_contract_test checks the traits against this).
    struct abilities {
        static constexpr bool journal_rollback = false;
        static constexpr bool lifecycle_transactions = false;
        static constexpr bool slices = false;
        static constexpr bool persisted_checkpoint = true;
        static constexpr bool event_wait = false;
        static constexpr bool aggregate_count = true;
        static constexpr bool transactional_emission = true;
        static constexpr bool concurrent_read = true;
        static constexpr bool prefetching_begin = false;
        static constexpr bool serving_switch = true;
    };

    /// What the backend's constructors take.
    struct place {
        std::string target;  ///< the file
        options_type options;
    };

    /// A refused open of someone else's database says this.
    static constexpr std::string_view foreign_phrase = "that projectionist did not create";

    sqlite_backend() : dir_(sqlite_test::fast_temp_base()) {}

    [[nodiscard]] place at(db which = db::primary) { return {file(which), options_type{}}; }

    template <class T>
    [[nodiscard]] T make(const place& p) {
        return T(p.target, p.options);
    }
    [[nodiscard]] event_store_type store(db which = db::primary) { return make<event_store_type>(at(which)); }
    [[nodiscard]] json_event_store_type json_store(db which = db::primary) {
        return make<json_event_store_type>(at(which));
    }
    [[nodiscard]] storage_type storage(db which = db::primary) { return make<storage_type>(at(which)); }

    void exec(const std::string& sql, db which = db::primary) { sqlite_test::raw_db(file(which)).exec(sql); }

    /// The first column of the first row; nullopt for NULL. Throws when there is no row.
    [[nodiscard]] std::optional<std::string> text(const std::string& sql, db which = db::primary) {
        const auto rows = sqlite_test::raw_db(file(which)).rows(sql);
        if (rows.empty() || rows.front().empty()) throw std::runtime_error("backend_test::text: no row: " + sql);
        return rows.front().front();
    }

    [[nodiscard]] std::int64_t scalar(const std::string& sql, db which = db::primary) {
        const auto t = text(sql, which);
        if (!t) throw std::runtime_error("backend_test::scalar: NULL: " + sql);
        return integer_of(*t, sql);
    }

    /// The column that holds the payloads of `Store`'s codec.
    template <class Store>
    [[nodiscard]] static std::string payload_column() {
        return "payload";
    }

    [[nodiscard]] bool integrity_ok(db which = db::primary) { return sqlite_test::integrity_ok(file(which)); }

    /// Someone else's database where projectionist would go: a file with a table of its own.
    void make_foreign(db which) {
        exec("CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers VALUES (1, 'Ada')",
             which);
    }
    /// A projectionist database (opened once before) of a schema newer than this build's.
    void make_newer(db which) { exec("PRAGMA user_version = 99", which); }
    /// The file's bytes: a refused open must leave them as they were.
    [[nodiscard]] std::string fingerprint(db which) { return sqlite_test::file_bytes(file(which)); }
    /// How refusals name the database.
    [[nodiscard]] std::string describe(db which) { return "'" + file(which) + "'"; }

    /// The per-aggregate positions, one row per (projection, aggregate_number): a view over the
    /// position log and the rows of older files.
    static constexpr std::string_view aggregate_positions = "projectionist_aggregate_positions";

    /// Whether a store's or a session's own connection has a transaction open.
    [[nodiscard]] static bool in_transaction(const projectionist::detail::sqlite::connection& c) {
        return sqlite3_get_autocommit(c.get()) == 0;
    }
    /// Whether a store's or a session's own connection sees the table (its own transaction's too).
    [[nodiscard]] static bool sees_table(const projectionist::detail::sqlite::connection& c, std::string_view name) {
        return projectionist::detail::sqlite::table_exists(c, name);
    }

    /// A trigger `name`: `operation` ("INSERT", "UPDATE") on `table` fails with `message` for a
    /// row where `condition` (on NEW) holds. `allow` drops it.
    void refuse(const std::string& name, const std::string& operation, const std::string& table,
                const std::string& condition, const std::string& message, db which = db::primary) {
        exec("CREATE TRIGGER " + name + " BEFORE " + operation + " ON " + table + " WHEN " + condition +
                 " BEGIN SELECT RAISE(ABORT, '" + message + "'); END",
             which);
    }
    void allow(const std::string& name, const std::string& /*table*/, db which = db::primary) {
        exec("DROP TRIGGER " + name, which);
    }

private:
    [[nodiscard]] std::string file(db which) const { return dir_.file(which == db::primary ? "app.db" : "other.db"); }

    sqlite_test::temp_dir dir_;
};

using backend = sqlite_backend;

#endif  // PROJECTIONIST_TEST_BACKEND_SQLITE

#ifdef PROJECTIONIST_TEST_BACKEND_POSTGRES

/// PostgreSQL: the two databases are two schemas of the test's own on the test server
/// (postgres_test::scoped_schema), dropped with everything in them at the end.
class postgres_backend {
public:
    static constexpr std::string_view name = "postgres";
    static constexpr bool speaks_sql = true;
    static constexpr bool scans_in_key_order = true;  ///< for_each visits rows in key order
    /// Appends run concurrently: a position (or aggregate number) taken by an append that rolls
    /// back is not reused, and a reader is not given events of a transaction still open, its own
    /// included.
    static constexpr bool concurrent_appends = true;
    /// A store or storage made again at a place, while another is open there or after it was
    /// closed, sees what was written there (a database to reopen, and several objects over it).
    static constexpr bool reopens = true;
    /// Another process can open the place and append to the same log.
    static constexpr bool shared_across_processes = true;
    /// Records hold payloads a codec encoded (`payload()`, `schema_version()`), so schema versions,
    /// payload limits and both codecs apply; the store names its `codec`.
    static constexpr bool encodes_payloads = true;
    using event_store_type = projectionist::postgres_event_store;
    using json_event_store_type = projectionist::postgres_json_event_store;
    using storage_type = projectionist::postgres_storage;
    using options_type = projectionist::postgres_options;

    /// What the backend can do (backend_contract_test checks the traits against this).
    struct abilities {
        static constexpr bool journal_rollback = false;
        static constexpr bool lifecycle_transactions = true;
        static constexpr bool slices = true;
        static constexpr bool persisted_checkpoint = true;
        static constexpr bool event_wait = true;
        static constexpr bool aggregate_count = true;
        static constexpr bool transactional_emission = true;
        static constexpr bool concurrent_read = true;
        static constexpr bool prefetching_begin = true;
        static constexpr bool serving_switch = true;
    };

    struct place {
        std::string target;  ///< the server's URL
        options_type options;
    };

    static constexpr std::string_view foreign_phrase = "was not created by projectionist";

    postgres_backend() : primary_("pj_backend") { search_path(primary_); }

    [[nodiscard]] place at(db which = db::primary) { return {postgres_test::pg_url(), schema(which).options()}; }

    template <class T>
    [[nodiscard]] T make(const place& p) {
        return T(p.target, p.options);
    }
    [[nodiscard]] event_store_type store(db which = db::primary) { return make<event_store_type>(at(which)); }
    [[nodiscard]] json_event_store_type json_store(db which = db::primary) {
        return make<json_event_store_type>(at(which));
    }
    [[nodiscard]] storage_type storage(db which = db::primary) { return make<storage_type>(at(which)); }

    void exec(const std::string& sql, db which = db::primary) { schema(which).connection().exec(sql); }

    [[nodiscard]] std::optional<std::string> text(const std::string& sql, db which = db::primary) {
        const auto r = schema(which).connection().query(sql);
        if (r.rows() == 0 || r.columns() == 0) throw std::runtime_error("backend_test::text: no row: " + sql);
        if (r.is_null(0, 0)) return std::nullopt;
        return std::string(r.text(0, 0));
    }

    [[nodiscard]] std::int64_t scalar(const std::string& sql, db which = db::primary) {
        const auto t = text(sql, which);
        if (!t) throw std::runtime_error("backend_test::scalar: NULL: " + sql);
        return integer_of(*t, sql);
    }

    /// The binary codec's payloads are bytea, the JSON codec's jsonb, in a column of its own.
    template <class Store>
    [[nodiscard]] static std::string payload_column() {
        return Store::codec::text ? "payload_json" : "payload";
    }

    /// No amcheck: every index of the schema valid and ready, and every table readable.
    [[nodiscard]] bool integrity_ok(db which = db::primary) {
        auto& s = schema(which);
        projectionist::detail::pg::params p;
        p.add(s.name());
        auto& c = s.connection();
        const auto bad = c.query(
            "SELECT count(*) FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class x ON x.oid = i.indexrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = x.relnamespace WHERE n.nspname = $1 AND NOT (i.indisvalid "
            "AND i.indisready AND i.indislive)",
            p);
        if (bad.int64(0, 0) != 0) return false;
        const auto tables = c.query(
            "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relkind = 'r'",
            p);
        for (int i = 0; i < tables.rows(); ++i)
            c.query("SELECT count(*) FROM " + s.quoted() + "." +
                    projectionist::detail::pg::quote(std::string(tables.text(i, 0))));
        return true;
    }

    /// Someone else's database where projectionist would go: a schema with a table of its own.
    void make_foreign(db which) {
        exec("CREATE TABLE customers(id integer PRIMARY KEY, name text); INSERT INTO customers VALUES (1, 'Ada')",
             which);
    }
    void make_newer(db which) { exec("UPDATE projectionist_schema SET version = 99", which); }

    /// Every relation of the schema with its kind, every table's row count, and the marker's rows.
    [[nodiscard]] std::string fingerprint(db which) {
        auto& s = schema(which);
        projectionist::detail::pg::params p;
        p.add(s.name());
        auto& c = s.connection();
        const auto r = c.query(
            "SELECT c.relname, c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
            "c.relnamespace WHERE n.nspname = $1 ORDER BY c.relname",
            p);
        std::string out;
        for (int i = 0; i < r.rows(); ++i) {
            const std::string relation(r.text(i, 0));
            out += relation + ":" + std::string(r.text(i, 1));
            if (r.text(i, 1) == "r")
                out += "=" + std::to_string(postgres_test::scalar(c, "SELECT count(*) FROM " + s.quoted() + "." +
                                                                         projectionist::detail::pg::quote(relation)));
            out += ";";
        }
        return out;
    }
    [[nodiscard]] std::string describe(db which) { return schema(which).quoted(); }

    /// The per-aggregate positions, one row per (projection, aggregate_number).
    static constexpr std::string_view aggregate_positions = "projectionist_aggregate_checkpoints";

    [[nodiscard]] static bool in_transaction(const projectionist::detail::pg::connection& c) {
        return c.in_transaction();
    }
    [[nodiscard]] static bool sees_table(const projectionist::detail::pg::connection& c, std::string_view name) {
        return projectionist::detail::pg::table_exists(c, name);
    }

    /// A trigger `name` (and its function, in the schema): `operation` on `table` fails with
    /// `message` for a row where `condition` (on NEW) holds. `allow` drops both.
    void refuse(const std::string& name, const std::string& operation, const std::string& table,
                const std::string& condition, const std::string& message, db which = db::primary) {
        exec("CREATE FUNCTION " + name + "() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF " + condition +
                 " THEN RAISE EXCEPTION '" + message + "'; END IF; RETURN NEW; END $$; CREATE TRIGGER " + name +
                 " BEFORE " + operation + " ON " + table + " FOR EACH ROW EXECUTE FUNCTION " + name + "()",
             which);
    }
    void allow(const std::string& name, const std::string& table, db which = db::primary) {
        exec("DROP TRIGGER " + name + " ON " + table + "; DROP FUNCTION " + name + "()", which);
    }

private:
    static void search_path(postgres_test::scoped_schema& s) {
        s.connection().exec("SET search_path TO " + s.quoted());
    }
    postgres_test::scoped_schema& schema(db which) {
        if (which == db::primary) return primary_;
        if (!secondary_) {
            secondary_.emplace("pj_backend_b");
            search_path(*secondary_);
        }
        return *secondary_;
    }

    postgres_test::scoped_schema primary_;
    std::optional<postgres_test::scoped_schema> secondary_;
};

using backend = postgres_backend;

#endif  // PROJECTIONIST_TEST_BACKEND_POSTGRES

#ifdef PROJECTIONIST_TEST_BACKEND_MEMORY

/// Memory: every `store()` and `storage()` is a new, empty one (there is no database to open
/// twice); the SQL helpers throw, so the cases that read SQL check `speaks_sql` first.
class memory_backend {
public:
    static constexpr std::string_view name = "memory";
    static constexpr bool speaks_sql = false;
    static constexpr bool scans_in_key_order = false;  ///< for_each visits rows in no particular order
    /// Appends run concurrently: a position (or aggregate number) taken by an append that rolls
    /// back is not reused, and a reader is not given events of a transaction still open, its own
    /// included.
    static constexpr bool concurrent_appends = false;
    /// Every store and storage is new and empty: nothing to reopen or to share with another process.
    static constexpr bool reopens = false;
    static constexpr bool shared_across_processes = false;
    /// Records hold the typed events: no codec, no payloads, no schema versions.
    static constexpr bool encodes_payloads = false;
    using event_store_type = projectionist::memory_event_store;
    using json_event_store_type = projectionist::memory_event_store;
    using storage_type = projectionist::memory_storage;

    /// What the backend can do (backend_contract_test checks the traits against this).
    struct abilities {
        static constexpr bool journal_rollback = true;
        static constexpr bool lifecycle_transactions = false;
        static constexpr bool slices = false;
        static constexpr bool persisted_checkpoint = false;
        static constexpr bool event_wait = true;
        static constexpr bool aggregate_count = true;
        static constexpr bool transactional_emission = false;
        static constexpr bool concurrent_read = true;
        static constexpr bool prefetching_begin = false;
        static constexpr bool serving_switch = true;
    };

    /// Memory stores hold events, not payloads: the limit is there for the suite to compile.
    struct options_type {
        std::size_t max_payload_bytes = 0;
    };
    struct place {
        std::string target;
        options_type options;
    };

    static constexpr std::string_view foreign_phrase = "";

    [[nodiscard]] place at(db which = db::primary) { return {which == db::primary ? "primary" : "secondary", {}}; }
    template <class T>
    [[nodiscard]] T make(const place&) {
        return T{};
    }
    [[nodiscard]] event_store_type store(db = db::primary) { return event_store_type{}; }
    [[nodiscard]] json_event_store_type json_store(db = db::primary) { return json_event_store_type{}; }
    [[nodiscard]] storage_type storage(db = db::primary) { return storage_type{}; }

    [[noreturn]] void exec(const std::string& sql, db = db::primary) { no_sql(sql); }
    [[noreturn]] std::optional<std::string> text(const std::string& sql, db = db::primary) { no_sql(sql); }
    [[noreturn]] std::int64_t scalar(const std::string& sql, db = db::primary) { no_sql(sql); }
    template <class Store>
    [[nodiscard]] static std::string payload_column() {
        return "payload";
    }
    [[nodiscard]] bool integrity_ok(db = db::primary) { return true; }
    static constexpr std::string_view aggregate_positions = "";
    [[noreturn]] void refuse(const std::string& name, const std::string&, const std::string&, const std::string&,
                             const std::string&, db = db::primary) {
        no_sql(name);
    }
    [[noreturn]] void allow(const std::string& name, const std::string&, db = db::primary) { no_sql(name); }

private:
    [[noreturn]] static void no_sql(const std::string& what) {
        throw std::logic_error("backend_test: memory speaks no SQL; check backend::speaks_sql first: " + what);
    }
};

using backend = memory_backend;

#endif  // PROJECTIONIST_TEST_BACKEND_MEMORY

/// The message of the projectionist::error that `f` throws ("<no error>" / "<other exception: ...>").
template <class F>
std::string error_of(F&& f) {
    try {
        std::forward<F>(f)();
    } catch (const projectionist::error& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("<other exception: ") + e.what() + ">";
    }
    return "<no error>";
}

}  // namespace backend_test
