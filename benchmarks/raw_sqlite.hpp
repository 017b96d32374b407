#pragma once
// The raw sqlite3 API as the hand-written baselines use it (groups 6 and 9): a connection, a
// prepared statement, text binding and reading, and removing a database with its side files.

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include <fmt/format.h>

namespace bench {

[[noreturn]] inline void raw_fail(sqlite3* db, int rc, std::string_view doing) {
    throw std::runtime_error(fmt::format("raw sqlite3: {}: {} (code {})", doing,
                                         db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc));
}

struct raw_db {
    sqlite3* db = nullptr;

    explicit raw_db(const std::string& path) {
        const int rc = sqlite3_open_v2(path.c_str(), &db,
                                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
        if (rc != SQLITE_OK) raw_fail(db, rc, fmt::format("opening {}", path));
    }
    raw_db(const raw_db&) = delete;
    raw_db& operator=(const raw_db&) = delete;
    ~raw_db() { sqlite3_close_v2(db); }

    [[nodiscard]] sqlite3* get() const noexcept { return db; }
    void exec(const char* sql) const {
        const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
        if (rc != SQLITE_OK) raw_fail(db, rc, sql);
    }
    void exec(const std::string& sql) const { exec(sql.c_str()); }
    /// The pragmas projectionist's open_database sets on every connection.
    void configure(bool synchronous_full) const {
        sqlite3_busy_timeout(db, 5000);
        exec("PRAGMA journal_mode=WAL");
        exec(synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    }
};

struct raw_stmt {
    sqlite3_stmt* s = nullptr;

    raw_stmt(const raw_db& db, std::string_view sql) {
        const int rc =
            sqlite3_prepare_v3(db.db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &s, nullptr);
        if (rc != SQLITE_OK) raw_fail(db.db, rc, sql);
    }
    raw_stmt(const raw_stmt&) = delete;
    raw_stmt& operator=(const raw_stmt&) = delete;
    ~raw_stmt() { sqlite3_finalize(s); }
    operator sqlite3_stmt*() const noexcept { return s; }  // NOLINT: reads like the C API

    /// Runs a statement that returns no rows, then resets it.
    void done() const {
        const int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) raw_fail(sqlite3_db_handle(s), rc, sqlite3_sql(s));
    }
};

inline void bind_text(sqlite3_stmt* s, int i, std::string_view v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}
inline std::string_view column_text(sqlite3_stmt* s, int c) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, c));
    return p != nullptr ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s, c)))
                        : std::string_view{};
}

/// Removes a database file and its WAL, shared-memory and journal files.
inline void remove_database(const std::string& path) {
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::filesystem::remove(path + suffix, ec);
}

/// The first column of the first row of `sql`, -1 when it returns no row.
inline std::int64_t query_int(const raw_db& db, std::string_view sql) {
    raw_stmt s(db, sql);
    return sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
}

}  // namespace bench
