#pragma once
// Helpers for the SQLite tests: a private temporary directory, an integrity check, the bytes of a
// file, and a plain sqlite3 handle for looking behind projectionist's back.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <sqlite3.h>
#include <unistd.h>

namespace sqlite_test {

/// A fresh directory under the system temp dir (or under `base`), removed with everything in it
/// at scope exit.
class temp_dir {
public:
    temp_dir() : temp_dir(std::filesystem::temp_directory_path()) {}
    explicit temp_dir(const std::filesystem::path& base) {
        std::random_device rd;
        path_ = base / ("projectionist-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
        std::filesystem::create_directories(path_);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }
    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

private:
    std::filesystem::path path_;
};

/// A base for temp_dir where fsync costs nothing: /dev/shm (tmpfs) when it is a writable
/// directory, else the system temp dir. For tests that commit often and are not about
/// durability; the crash tests must not use it.
inline std::filesystem::path fast_temp_base() {
    std::error_code ec;
    if (std::filesystem::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK | X_OK) == 0) return "/dev/shm";
    return std::filesystem::temp_directory_path();
}

/// PRAGMA integrity_check on a separate connection: true when SQLite answers "ok".
inline bool integrity_ok(const std::string& file) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        sqlite3_close(db);
        return false;
    }
    sqlite3_stmt* s = nullptr;
    bool ok = false;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        ok = std::string(reinterpret_cast<const char*>(sqlite3_column_text(s, 0))) == "ok";
    sqlite3_finalize(s);
    sqlite3_close(db);
    return ok;
}

/// The bytes of a file, to check that a refused open left it untouched.
inline std::string file_bytes(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// A plain sqlite3 handle, independent of projectionist: for creating files projectionist did
/// not create, looking at what it wrote, and corrupting it on purpose. Throws
/// std::runtime_error on any SQLite error.
class raw_db {
public:
    explicit raw_db(const std::string& file, int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) {
        if (sqlite3_open_v2(file.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
            const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
            sqlite3_close(db_);
            throw std::runtime_error("raw_db: cannot open " + file + ": " + why);
        }
        sqlite3_busy_timeout(db_, 5000);
    }
    raw_db(const raw_db&) = delete;
    raw_db& operator=(const raw_db&) = delete;
    ~raw_db() { sqlite3_close(db_); }

    [[nodiscard]] sqlite3* get() const noexcept { return db_; }

    void exec(const std::string& sql) const {
        char* message = nullptr;
        if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
            const std::string why = message ? message : sqlite3_errmsg(db_);
            sqlite3_free(message);
            throw std::runtime_error("raw_db: " + sql + ": " + why);
        }
    }

    /// Every row of a query; a NULL column is nullopt, anything else its bytes (text or blob).
    [[nodiscard]] std::vector<std::vector<std::optional<std::string>>> rows(const std::string& sql) const {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK)
            throw std::runtime_error("raw_db: " + sql + ": " + sqlite3_errmsg(db_));
        std::vector<std::vector<std::optional<std::string>>> out;
        int rc = SQLITE_OK;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            auto& row = out.emplace_back();
            for (int c = 0; c < sqlite3_column_count(s); ++c) {
                if (sqlite3_column_type(s, c) == SQLITE_NULL) {
                    row.emplace_back(std::nullopt);
                } else {
                    const auto* p = static_cast<const char*>(sqlite3_column_blob(s, c));
                    const auto n = static_cast<std::size_t>(sqlite3_column_bytes(s, c));
                    row.emplace_back(p ? std::string(p, n) : std::string());
                }
            }
        }
        const std::string why = sqlite3_errmsg(db_);
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE) throw std::runtime_error("raw_db: " + sql + ": " + why);
        return out;
    }

    /// The first column of the first row as text ("NULL" for NULL, "" when there is no row).
    [[nodiscard]] std::string text(const std::string& sql) const {
        const auto r = rows(sql);
        if (r.empty() || r.front().empty()) return "";
        return r.front().front().value_or("NULL");
    }

    /// The first column of the first row as an integer (0 when there is no row).
    [[nodiscard]] std::int64_t int64(const std::string& sql) const {
        const std::string t = text(sql);
        return t.empty() || t == "NULL" ? 0 : std::stoll(t);
    }

private:
    sqlite3* db_ = nullptr;
};

}  // namespace sqlite_test
