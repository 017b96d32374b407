#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <sqlite3.h>

#include <projectionist/detail/sql_text.hpp>
#include <projectionist/error.hpp>

namespace projectionist {

/// An error reported by SQLite; `code()` is SQLite's extended result code.
class sqlite_error : public detail::coded_error {
public:
    using coded_error::coded_error;
};

namespace detail::sqlite {

/// Whether `rc` says that the database failed (read-only, full, I/O, corrupt, locked past the
/// busy timeout) rather than the statement: such a failure is no event's, and is thrown as
/// storage_error.
[[nodiscard]] constexpr bool is_storage_failure(int rc) noexcept {
    switch (rc & 0xFF) {
        case SQLITE_READONLY:
        case SQLITE_FULL:
        case SQLITE_IOERR:
        case SQLITE_CANTOPEN:
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
        case SQLITE_BUSY:
        case SQLITE_NOMEM: return true;
        default: return false;
    }
}

/// What a storage failure says of the database, in words.
[[nodiscard]] constexpr std::string_view storage_failure_words(int rc) noexcept {
    switch (rc & 0xFF) {
        case SQLITE_READONLY: return "is read-only";
        case SQLITE_FULL: return "is full (no space left on the disk, or max_page_count reached)";
        case SQLITE_IOERR: return "had an I/O error";
        case SQLITE_CANTOPEN: return "cannot be opened";
        case SQLITE_CORRUPT: return "is corrupt";
        case SQLITE_NOTADB: return "is not a database";
        case SQLITE_BUSY: return "stayed locked by another connection past the busy timeout";
        default: return "is out of memory";
    }
}

/// Throws storage_error for a failure of the database (naming its file), else sqlite_error.
[[noreturn]] inline void throw_error(sqlite3* db, int rc, std::string_view doing, std::string_view why) {
    if (is_storage_failure(rc)) {
        const char* file = db ? sqlite3_db_filename(db, "main") : nullptr;
        throw storage_error(fmt::format("projectionist: sqlite: the database '{}' {}: {}: {} (code {})",
                                        file && *file ? file : ":memory:", storage_failure_words(rc), doing, why, rc),
                            rc);
    }
    throw sqlite_error(fmt::format("projectionist: sqlite: {}: {} (code {})", doing, why, rc), rc);
}

[[noreturn]] inline void fail(sqlite3* db, int rc, std::string_view doing) {
    throw_error(db, rc, doing, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

using detail::quote;

/// One open database handle. Move-only; closes on destruction.
class connection {
public:
    connection() = default;
    connection(const std::string& path, int flags) {
        sqlite3* db = nullptr;
        const int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
        if (rc != SQLITE_OK) {
            std::string why = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
            sqlite3_close_v2(db);
            if (is_storage_failure(rc))
                throw storage_error(fmt::format("projectionist: sqlite: cannot open '{}': {} (code {})", path, why, rc),
                                    rc);
            throw sqlite_error(fmt::format("projectionist: sqlite: cannot open '{}': {} (code {})", path, why, rc), rc);
        }
        db_ = db;
        sqlite3_extended_result_codes(db_, 1);
    }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    connection(connection&& o) noexcept : db_(std::exchange(o.db_, nullptr)) {}
    connection& operator=(connection&& o) noexcept {
        if (this != &o) {
            close();
            db_ = std::exchange(o.db_, nullptr);
        }
        return *this;
    }
    ~connection() { close(); }

    [[nodiscard]] sqlite3* get() const noexcept { return db_; }
    explicit operator bool() const noexcept { return db_ != nullptr; }

    /// Runs one or more statements that return no rows.
    void exec(const std::string& sql) const {
        char* message = nullptr;
        const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
        if (rc != SQLITE_OK) {
            std::string why = message ? message : sqlite3_errstr(rc);
            sqlite3_free(message);
            throw_error(db_, rc, sql, why);
        }
    }

    void busy_timeout(std::chrono::milliseconds t) const { sqlite3_busy_timeout(db_, static_cast<int>(t.count())); }

private:
    void close() noexcept {
        if (db_) sqlite3_close_v2(db_);
        db_ = nullptr;
    }
    sqlite3* db_ = nullptr;
};

/// A prepared statement. Bind indexes start at 1, column indexes at 0 (as in SQLite).
class statement {
public:
    statement() = default;
    statement(const connection& db, std::string_view sql) : db_(db.get()) {
        const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                          &stmt_, nullptr);
        if (rc != SQLITE_OK) fail(db_, rc, fmt::format("preparing '{}'", sql));
    }
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;
    statement(statement&& o) noexcept : db_(o.db_), stmt_(std::exchange(o.stmt_, nullptr)) {}
    statement& operator=(statement&& o) noexcept {
        if (this != &o) {
            sqlite3_finalize(stmt_);
            db_ = o.db_;
            stmt_ = std::exchange(o.stmt_, nullptr);
        }
        return *this;
    }
    ~statement() { sqlite3_finalize(stmt_); }

    [[nodiscard]] sqlite3_stmt* get() const noexcept { return stmt_; }

    void bind(int i, std::int64_t v) { check(sqlite3_bind_int64(stmt_, i, v), "binding an integer"); }
    void bind(int i, double v) { check(sqlite3_bind_double(stmt_, i, v), "binding a real"); }
    void bind(int i, std::string_view text) {
        check(sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_STATIC), "binding text");
    }
    void bind_blob(int i, std::string_view bytes) {
        check(sqlite3_bind_blob(stmt_, i, bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC),
              "binding a blob");
    }
    void bind_null(int i) { check(sqlite3_bind_null(stmt_, i), "binding null"); }

    /// Steps once: true if a row is available, false when done. On an error the statement is
    /// reset before throwing, so that it can be bound and run again.
    bool step() {
        const int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        const std::string doing = fmt::format("running '{}'", sqlite3_sql(stmt_));
        const std::string why = sqlite3_errmsg(db_);
        sqlite3_reset(stmt_);
        throw_error(db_, rc, doing, why);
    }
    /// Steps to completion, for statements that return no rows.
    void run() {
        while (step()) {
        }
        reset();
    }
    void reset() noexcept {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }

    [[nodiscard]] std::int64_t int64(int c) const noexcept { return sqlite3_column_int64(stmt_, c); }
    /// An integer column read as a flag: not 0.
    [[nodiscard]] bool boolean(int c) const noexcept { return int64(c) != 0; }
    [[nodiscard]] double real(int c) const noexcept { return sqlite3_column_double(stmt_, c); }
    [[nodiscard]] bool is_null(int c) const noexcept { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
    [[nodiscard]] bool is_text(int c) const noexcept { return sqlite3_column_type(stmt_, c) == SQLITE_TEXT; }
    [[nodiscard]] std::string_view text(int c) const noexcept {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
        return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c))) : std::string_view{};
    }
    [[nodiscard]] std::string_view blob(int c) const noexcept {
        const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, c));
        return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c))) : std::string_view{};
    }

private:
    void check(int rc, std::string_view doing) const {
        if (rc != SQLITE_OK) fail(db_, rc, doing);
    }
    sqlite3* db_ = nullptr;
    sqlite3_stmt* stmt_ = nullptr;
};

/// Binds the values handed to it to a statement's parameters in turn, from 1, a bool as 0 or 1:
/// how the SQLite storage hands a statement the values of detail/sql_records.hpp.
class binder {
public:
    explicit binder(statement& s) noexcept : s_(&s) {}
    void operator()(std::string_view v) { s_->bind(next_++, v); }
    void operator()(std::int64_t v) { s_->bind(next_++, v); }
    void operator()(bool v) { s_->bind(next_++, std::int64_t{v ? 1 : 0}); }

private:
    statement* s_;
    int next_ = 1;
};

}  // namespace detail::sqlite
}  // namespace projectionist
