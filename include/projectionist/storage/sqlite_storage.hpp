#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <projectionist/detail/sql_records.hpp>
#include <projectionist/detail/sqlite_api.hpp>
#include <projectionist/detail/sqlite_schema.hpp>
#include <projectionist/error.hpp>
#include <projectionist/storage/catalog.hpp>
#include <projectionist/storage/sql_storage_base.hpp>
#include <projectionist/storage/sqlite_table.hpp>
#include <projectionist/store/sqlite_event_store.hpp>

namespace projectionist {

namespace detail::sqlite {

inline std::optional<catalog_entry> read_catalog(const connection& db, std::string_view name) {
    statement s(db, fmt::format("SELECT {} FROM projectionist_catalog WHERE name = ?", sql::catalog_column_list()));
    s.bind(1, name);
    if (!s.step()) return std::nullopt;
    return sql::catalog_from_row(s);
}

inline std::vector<catalog_entry> read_catalogs(const connection& db) {
    statement s(db, fmt::format("SELECT {} FROM projectionist_catalog ORDER BY name", sql::catalog_column_list()));
    std::vector<catalog_entry> out;
    while (s.step()) out.push_back(sql::catalog_from_row(s));
    return out;
}

inline std::optional<std::string> read_setting(const connection& db, std::string_view key) {
    statement s(db, "SELECT value FROM projectionist_settings WHERE key = ?");
    s.bind(1, key);
    if (!s.step()) return std::nullopt;
    return std::string(s.text(0));
}

inline void write_setting(const connection& db, std::string_view key, std::string_view value) {
    statement s(db,
                "INSERT INTO projectionist_settings(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    s.bind(1, key);
    s.bind(2, value);
    s.run();
}

/// Whether a statement with RETURNING returned a row, stepped to its end (the change commits
/// when the statement is done).
inline bool finish(statement& s) {
    const bool returned = s.step();
    while (returned && s.step()) {
    }
    return returned;
}

/// Sets `key` to `value` if its value is `expected` now (nullopt: if it has none), in one
/// statement; returns whether it did.
inline bool write_setting_if(const connection& db, std::string_view key, std::optional<std::string_view> expected,
                             std::string_view value) {
    if (!expected) {
        statement s(db,
                    "INSERT INTO projectionist_settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING "
                    "RETURNING 1");
        s.bind(1, key);
        s.bind(2, value);
        return finish(s);
    }
    statement s(db, "UPDATE projectionist_settings SET value = ? WHERE key = ? AND value = ? RETURNING 1");
    s.bind(1, value);
    s.bind(2, key);
    s.bind(3, *expected);
    return finish(s);
}

inline bool table_exists(const connection& db, std::string_view name) {
    statement s(db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?");
    s.bind(1, name);
    return s.step();
}

}  // namespace detail::sqlite

/// Read-model storage in a SQLite file (what it keeps: detail::sql_storage_base), the event log's
/// own or another one.
///
///     projectionist::sqlite_event_store store("app.db");
///     projectionist::sqlite_storage storage("app.db");
///     projectionist::runner<tickets<2>, projectionist::sqlite_storage> v2(store, storage);
///
/// A runner over sqlite_storage reads a sqlite_event_store unless it names another store.
class sqlite_storage
    : public detail::sql_storage_base<sqlite_storage, sqlite_event_store, sqlite_table, detail::sqlite::connection> {
public:
    class session;

    explicit sqlite_storage(std::string path, sqlite_options options = {})
        : sql_storage_base(detail::sqlite::open_database(path, options)), path_(std::move(path)), options_(options) {}

    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    [[nodiscard]] const sqlite_options& options() const noexcept { return options_; }

    [[nodiscard]] session open(std::string_view projection);

private:
    std::string path_;
    sqlite_options options_;
};

/// One runner's connection to a sqlite_storage, for one projection version.
class sqlite_storage::session : public detail::sql_session_base<detail::sqlite::connection> {
public:
    session(const sqlite_storage& storage, std::string_view projection)
        : sql_session_base(projection, detail::sqlite::open_database(storage.path(), storage.options())),
          path_(storage.path()),
          log_limit_(storage.options().aggregate_position_log_limit) {
        if (const std::size_t kib = storage.options().session_cache_size_kib; kib != 0)
            detail::sqlite::raise_cache(db_, kib);
    }

    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    /// The raw connection, for handlers that write their own SQL inside the batch's transaction.
    [[nodiscard]] detail::sqlite::connection& connection() noexcept { return db_; }
    [[nodiscard]] sqlite3* raw() const noexcept { return db_.get(); }

    /// The checkpoint as last committed, loaded on first use and kept up to date by the runner.
    [[nodiscard]] checkpoint& load_checkpoint() {
        if (!loaded_) {
            point_ = checkpoint{};
            detail::sqlite::statement pos(db_, "SELECT position FROM projectionist_checkpoints WHERE projection = ?");
            pos.bind(1, projection_);
            has_position_row_ = pos.step();
            if (has_position_row_) point_.position = static_cast<std::uint64_t>(pos.int64(0));
            committed_position_ = point_.position;
            auto apply = [this](std::uint64_t number, std::uint64_t version) {
                if (number >= point_.aggregate_versions.size()) point_.aggregate_versions.resize(number + 1, 0);
                auto& slot = point_.aggregate_versions[number];
                if (slot == 0 && version != 0) ++point_.aggregates_tracked;
                slot = std::max(slot, version);
            };
            detail::sqlite::statement aggs(
                db_, "SELECT aggregate_number, version FROM projectionist_aggregate_checkpoints WHERE projection = ?");
            aggs.bind(1, projection_);
            log_entries_ = 0;  // every position stored, rows and log: what a snapshot replaces
            while (aggs.step()) {
                apply(static_cast<std::uint64_t>(aggs.int64(0)), static_cast<std::uint64_t>(aggs.int64(1)));
                ++log_entries_;
            }
            // Then the batches' positions not yet folded into those rows (versions only grow).
            detail::sqlite::statement log(db_,
                                          "SELECT CAST(j.key AS INTEGER), j.value FROM "
                                          "projectionist_aggregate_position_log l, json_each(l.versions) j "
                                          "WHERE l.projection = ?");
            log.bind(1, projection_);
            while (log.step()) {
                apply(static_cast<std::uint64_t>(log.int64(0)), static_cast<std::uint64_t>(log.int64(1)));
                ++log_entries_;
            }
            committed_versions_ = point_.aggregate_versions;
            loaded_ = true;
        }
        return point_;
    }

    template <class Table>
    sqlite_table<Table>& create_table(std::string_view name) {
        auto& t = own(std::make_unique<sqlite_table<Table>>(db_, std::string(name)));
        db_.exec(t.create_sql());
        return t;
    }

    template <class Table>
    sqlite_table<Table>* open_table(std::string_view name) {
        if (!detail::sqlite::table_exists(db_, name)) return nullptr;
        return &own(std::make_unique<sqlite_table<Table>>(db_, std::string(name)));
    }

    bool drop_table(std::string_view name) { return drop_if_exists(name); }

    void save_catalog(const catalog_entry& e) {
        detail::sqlite::statement s(db_, detail::sql::catalog_upsert(detail::sql::placeholders::positional));
        const std::string tables = detail::join_lines(e.tables);
        detail::sql::bind_catalog(e, tables, detail::sqlite::binder(s));
        s.run();
    }

    // ---- the hand-over of emission (storage/emission_window.hpp), inside the open transaction:
    // BEGIN IMMEDIATE holds the database's write lock, so no batch of another version commits
    // between these reads and the commit.

    /// The other versions of `base_name` whose catalog rows are live.
    [[nodiscard]] std::vector<std::string> live_versions(std::string_view base_name) const {
        detail::sqlite::statement s(
            db_,
            "SELECT name FROM projectionist_catalog WHERE base_name = ? AND name <> ? AND live <> 0 ORDER BY name");
        s.bind(1, base_name);
        s.bind(2, projection_);
        std::vector<std::string> out;
        while (s.step()) out.emplace_back(s.text(0));
        return out;
    }
    /// A version's committed position (0 without a checkpoint).
    [[nodiscard]] std::uint64_t lock_position(std::string_view version) {
        detail::sqlite::statement s(db_, "SELECT position FROM projectionist_checkpoints WHERE projection = ?");
        s.bind(1, version);
        return s.step() ? static_cast<std::uint64_t>(s.int64(0)) : 0;
    }
    /// Clears another version's live flag; a `live` state becomes `caught_up`.
    void clear_live(std::string_view version) {
        detail::sqlite::statement s(db_,
                                    "UPDATE projectionist_catalog SET live = 0, state = CASE state WHEN 'live' THEN "
                                    "'caught_up' ELSE state END WHERE name = ?");
        s.bind(1, version);
        s.run();
    }

    /// Marks this version serving and every other serving version of `base_name` retired, in one
    /// statement (has_serving_switch); false, with nothing changed, if this version's row is not
    /// caught up, serving or retired.
    [[nodiscard]] bool switch_serving(std::string_view base_name) {
        detail::sqlite::statement s(db_, detail::sql::serving_switch(detail::sql::placeholders::positional));
        s.bind(1, projection_);
        s.bind(2, base_name);
        s.bind(3, projection_);
        s.bind(4, projection_);
        s.run();
        return sqlite3_changes(db_.get()) > 0;
    }

    void erase_catalog() {
        detail::sqlite::statement s(db_, "DELETE FROM projectionist_catalog WHERE name = ?");
        s.bind(1, projection_);
        s.run();
    }

    /// Records a dead letter (inside the open transaction, if any).
    void record_dead_letter(const dead_letter& letter) {
        if (!save_dead_letter_.get())
            save_dead_letter_ =
                detail::sqlite::statement(db_, detail::sql::dead_letter_insert(detail::sql::placeholders::positional));
        detail::sql::bind_dead_letter(projection_, letter, detail::sqlite::binder(save_dead_letter_));
        save_dead_letter_.run();
    }

    /// The projection's dead letters, oldest first.
    [[nodiscard]] std::vector<dead_letter> dead_letters() const {
        detail::sqlite::statement s(
            db_, fmt::format("SELECT {} FROM projectionist_dead_letters WHERE projection = ? ORDER BY id",
                             detail::sql::dead_letter_columns));
        s.bind(1, projection_);
        std::vector<dead_letter> out;
        while (s.step()) out.push_back(detail::sql::dead_letter_from_row(s));
        return out;
    }

    /// Forgets the checkpoint and dead letters (inside the open transaction, if any).
    void reset_checkpoint() {
        for (const char* sql : {"DELETE FROM projectionist_checkpoints WHERE projection = ?",
                                "DELETE FROM projectionist_aggregate_checkpoints WHERE projection = ?",
                                "DELETE FROM projectionist_aggregate_position_log WHERE projection = ?",
                                "DELETE FROM projectionist_dead_letters WHERE projection = ?"}) {
            detail::sqlite::statement s(db_, sql);
            s.bind(1, projection_);
            s.run();
        }
        point_ = checkpoint{};
        loaded_ = true;
        has_position_row_ = false;
        committed_position_ = 0;
        log_entries_ = 0;
        reset_in_transaction_ = in_transaction_;
        if (!in_transaction_) committed_versions_.clear();
    }

    void begin() {
        db_.exec("BEGIN IMMEDIATE");
        in_transaction_ = true;
    }

    /// Writes the checkpoint (and the positions of the aggregates the batch changed) and commits
    /// them with the batch's read-model writes.
    /// Throws checkpoint_conflict, writing nothing, if another runner moved the checkpoint since
    /// this session loaded or committed it: the position is compared and set in the transaction.
    void commit(const checkpoint& cp, std::span<const std::uint64_t> changed_aggregates) {
        // A checkpoint reset in this transaction (reset, delete) and not moved has no row: a
        // deleted version leaves none behind.
        const bool no_row =
            !has_position_row_ && reset_in_transaction_ && cp.position == 0 && changed_aggregates.empty();
        if (no_row) {
            // nothing to write
        } else if (has_position_row_) {
            if (!update_position_.get())
                update_position_ = detail::sqlite::statement(
                    db_, "UPDATE projectionist_checkpoints SET position = ? WHERE projection = ? AND position = ?");
            update_position_.bind(1, static_cast<std::int64_t>(cp.position));
            update_position_.bind(2, projection_);
            update_position_.bind(3, static_cast<std::int64_t>(committed_position_));
            update_position_.run();
            if (sqlite3_changes(db_.get()) != 1) throw_conflict();
        } else {
            if (!insert_position_.get())
                insert_position_ = detail::sqlite::statement(
                    db_, "INSERT INTO projectionist_checkpoints(projection, position) VALUES (?, ?)");
            insert_position_.bind(1, projection_);
            insert_position_.bind(2, static_cast<std::int64_t>(cp.position));
            try {
                insert_position_.run();
            } catch (const sqlite_error& e) {
                if ((e.code() & 0xFF) == SQLITE_CONSTRAINT) throw_conflict();
                throw;
            }
        }
        std::size_t log_entries = log_entries_;
        if (!changed_aggregates.empty()) log_entries = log_positions(cp, changed_aggregates);
        db_.exec("COMMIT");
        in_transaction_ = false;
        if (reset_in_transaction_) committed_versions_.clear();
        reset_in_transaction_ = false;
        for (const std::uint64_t number : changed_aggregates) {
            if (number >= committed_versions_.size()) committed_versions_.resize(number + 1, 0);
            committed_versions_[number] = cp.version_of(number);
        }
        has_position_row_ = !no_row;
        committed_position_ = cp.position;
        log_entries_ = log_entries;
    }

    /// Forgets the cached checkpoint and reads it again (another process may have moved it).
    checkpoint& reload_checkpoint() {
        loaded_ = false;
        return load_checkpoint();
    }

    /// Rolls the batch back; the tables are as they were at `begin` (returns true). Never
    /// throws: a rollback follows a failure, whose error is the one to report. SQLite rolls a
    /// transaction back by itself on some errors (SQLITE_FULL, SQLITE_IOERR, ...): then there
    /// is nothing left to roll back.
    bool rollback() noexcept {
        if (!in_transaction_) return true;
        in_transaction_ = false;
        if (sqlite3_get_autocommit(db_.get()) == 0) {
            try {
                db_.exec("ROLLBACK");
            } catch (...) {
                // The connection is unusable if even this fails; its next use says so.
            }
        }
        // A reset inside the rolled-back transaction cleared the cached checkpoint: read it again.
        if (reset_in_transaction_) loaded_ = false;
        reset_in_transaction_ = false;
        return true;
    }

private:
    std::string path_;
    /// Writes the batch's aggregate positions as one row of `projectionist_aggregate_position_log`
    /// (a JSON object, aggregate number -> version) rather than one row per aggregate: a batch
    /// changes aggregates all over the table, and rewriting their rows cost each commit most of
    /// that table's pages (6c in benchmarks/README.md). Once the log holds more positions than
    /// the limit and twice the tracked aggregates, the batch writes instead one row with every
    /// tracked aggregate's position and deletes the older rows, so loading stays proportional to
    /// the aggregates tracked. A snapshot costs about 10 bytes per aggregate and one sequential
    /// write, where folding into rows cost a B-tree update per aggregate (measured: about 1 s per
    /// 1M-event backfill with 125k aggregates). The view
    /// `projectionist_aggregate_positions` shows the positions as a table. Returns the number of
    /// positions the log holds after this commit.
    ///
    /// A snapshot holds what is committed with this commit: `changed` from `cp`, every other
    /// aggregate as last committed (`committed_versions_`), never `cp`'s other entries. A bulk
    /// backfill in passes commits some aggregates while others hold applied but unwritten
    /// positions in `cp`; writing those would lose their events after a reload.
    std::size_t log_positions(const checkpoint& cp, std::span<const std::uint64_t> changed) {
        scratch_.assign(changed.begin(), changed.end());
        std::sort(scratch_.begin(), scratch_.end());
        scratch_.erase(std::unique(scratch_.begin(), scratch_.end()), scratch_.end());
        const bool snapshot =
            log_entries_ + scratch_.size() >= std::max<std::size_t>(log_limit_, 2 * cp.aggregates_tracked);
        json_.clear();
        json_ += '{';
        std::size_t entries = 0;
        if (snapshot) {
            const std::span<const std::uint64_t> base = reset_in_transaction_
                                                            ? std::span<const std::uint64_t>()
                                                            : std::span<const std::uint64_t>(committed_versions_);
            const std::size_t end = std::max<std::size_t>(
                base.size(), scratch_.empty() ? 0 : static_cast<std::size_t>(scratch_.back()) + 1);
            auto next_changed = scratch_.begin();
            for (std::size_t number = 0; number < end; ++number) {
                std::uint64_t v = number < base.size() ? base[number] : 0;
                if (next_changed != scratch_.end() && *next_changed == number) {
                    v = cp.version_of(number);
                    ++next_changed;
                }
                if (v != 0) {
                    fmt::format_to(std::back_inserter(json_), "\"{}\":{},", number, v);
                    ++entries;
                }
            }
            for (const char* sql : {"DELETE FROM projectionist_aggregate_position_log WHERE projection = ?",
                                    "DELETE FROM projectionist_aggregate_checkpoints WHERE projection = ?"}) {
                detail::sqlite::statement clear(db_, sql);
                clear.bind(1, projection_);
                clear.run();
            }
        } else {
            for (const std::uint64_t number : scratch_)
                fmt::format_to(std::back_inserter(json_), "\"{}\":{},", number, cp.version_of(number));
            entries = scratch_.size();
        }
        if (json_.size() == 1)
            json_ += '}';
        else
            json_.back() = '}';
        if (!append_log_.get())
            append_log_ = detail::sqlite::statement(db_,
                                                    "INSERT INTO projectionist_aggregate_position_log(projection, "
                                                    "position, entries, versions) VALUES (?, ?, ?, ?)");
        append_log_.bind(1, projection_);
        append_log_.bind(2, static_cast<std::int64_t>(cp.position));
        append_log_.bind(3, static_cast<std::int64_t>(entries));
        append_log_.bind(4, std::string_view(json_));
        append_log_.run();
        return snapshot ? entries : log_entries_ + entries;
    }

    [[noreturn]] void throw_conflict() const {
        throw checkpoint_conflict(
            fmt::format("projectionist: the checkpoint of '{}' was moved by another runner "
                        "(expected position {}); this batch was not written",
                        projection_, committed_position_));
    }

    std::size_t log_limit_;
    std::size_t log_entries_ = 0;  // positions in this projection's rows of the position log
    std::vector<std::uint64_t> scratch_;
    std::vector<std::uint64_t> committed_versions_;  // the aggregates' positions as committed
    std::string json_;
    detail::sqlite::statement update_position_, insert_position_, save_dead_letter_;
    detail::sqlite::statement append_log_;
};

inline sqlite_storage::session sqlite_storage::open(std::string_view projection) {
    return session(*this, projection);  // guaranteed copy elision: sessions never move
}

}  // namespace projectionist
