#pragma once

/// What the SQL storages (sqlite_storage, postgres_storage) share, apart from their SQL: the
/// storage object's look-ups on its own connection, and the state and life of a session.
///
/// The look-ups are answered by the backend's detail namespace, found by argument-dependent
/// lookup on its connection type: `read_catalog(db, name)`, `read_catalogs(db)`,
/// `table_exists(db, name)`, `read_setting(db, key)`, `write_setting(db, key, value)` and
/// `write_setting_if(db, key, expected, value)`.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <projectionist/detail/sql_text.hpp>
#include <projectionist/storage/records.hpp>
#include <projectionist/storage/storage_base.hpp>

namespace projectionist::detail {

/// A SQL storage object over one database: a table per projection version (named by its
/// versioned name), checkpoints, per-aggregate positions, the projection catalog, dead letters
/// and settings, so that a batch's rows, its checkpoint and its catalog changes commit in one
/// transaction, and emitted events too when the event store is in the same database. Each
/// runner's session opens its own connection; this object's own connection serves the catalog,
/// settings and table look-ups of queries, from one thread at a time.
template <class Storage, class EventStore, template <class> class Handle, class Connection>
class sql_storage_base : public storage_base<Storage, EventStore, Handle> {
public:
    [[nodiscard]] Connection& connection() noexcept { return db_; }

    [[nodiscard]] std::optional<catalog_entry> find_catalog(std::string_view name) const {
        return read_catalog(db_, name);
    }
    /// Every catalog row, by name.
    [[nodiscard]] std::vector<catalog_entry> catalog() const { return read_catalogs(db_); }

    [[nodiscard]] bool has_table(std::string_view name) const { return table_exists(db_, name); }

    /// A persisted setting (e.g. a router's toggles), or nullopt. Settings live in the database,
    /// so a command-line process and the application see the same ones.
    [[nodiscard]] std::optional<std::string> find_setting(std::string_view key) const { return read_setting(db_, key); }
    void save_setting(std::string_view key, std::string_view value) { write_setting(db_, key, value); }
    /// Sets `key` to `value` only if its value is `expected` (nullopt: if it has none), atomically
    /// across processes; returns whether it did.
    bool replace_setting(std::string_view key, std::optional<std::string_view> expected, std::string_view value) {
        return write_setting_if(db_, key, expected, value);
    }

    /// A typed handle on an existing table, on this object's connection (for queries and tests);
    /// nullopt if there is no such table. Its writes are sent at once.
    template <class Table>
    [[nodiscard]] std::optional<Handle<Table>> find_table(std::string_view name) {
        if (!has_table(name)) return std::nullopt;
        return std::optional<Handle<Table>>(std::in_place, db_, std::string(name));
    }

protected:
    explicit sql_storage_base(Connection db) : db_(std::move(db)) {}

private:
    Connection db_;
};

/// A SQL storage session: one runner's connection, for one projection version, that never moves
/// (table handles point at it); the checkpoint as last loaded and the state of the open batch.
/// Its destructor rolls back a transaction left open.
template <class Connection>
class sql_session_base {
public:
    /// The checkpoint lives in the database: after a rollback the runner reads it back.
    static constexpr bool persists_checkpoint = true;

    sql_session_base(const sql_session_base&) = delete;
    sql_session_base& operator=(const sql_session_base&) = delete;
    sql_session_base(sql_session_base&&) = delete;
    sql_session_base& operator=(sql_session_base&&) = delete;

    [[nodiscard]] std::string_view projection() const noexcept { return projection_; }

    [[nodiscard]] std::optional<catalog_entry> find_catalog() const { return read_catalog(db_, projection_); }

    /// A setting read and written on this session's connection: inside its open transaction, so
    /// that a delete forgets the version in the router's setting atomically with its tables.
    [[nodiscard]] std::optional<std::string> find_setting(std::string_view key) const { return read_setting(db_, key); }
    void save_setting(std::string_view key, std::string_view value) { write_setting(db_, key, value); }

protected:
    sql_session_base(std::string_view projection, Connection connection)
        : projection_(projection), conn_(std::make_unique<Connection>(std::move(connection))), db_(*conn_) {}

    ~sql_session_base() {
        if (in_transaction_) {
            try {
                db_.exec("ROLLBACK");
            } catch (...) {
                // The connection is lost: the server rolls the transaction back itself.
            }
        }
    }

    /// Keeps a table handle for as long as the session lives.
    template <class T>
    T& own(std::unique_ptr<T> table) {
        T& ref = *table;
        owned_.push_back(std::shared_ptr<void>(std::move(table)));
        return ref;
    }

    /// Drops the table `name`; returns whether it existed.
    bool drop_if_exists(std::string_view name) {
        const bool existed = table_exists(db_, name);
        db_.exec(fmt::format("DROP TABLE IF EXISTS {}", quote(name)));
        return existed;
    }

    std::string projection_;
    std::unique_ptr<Connection> conn_;  // boxed: table handles point at it
    Connection& db_;
    checkpoint point_;
    bool loaded_ = false;
    bool in_transaction_ = false;
    bool reset_in_transaction_ = false;  // a reset (reset, delete) inside the open transaction
    bool has_position_row_ = false;
    std::uint64_t committed_position_ = 0;
    std::vector<std::shared_ptr<void>> owned_;
};

}  // namespace projectionist::detail
