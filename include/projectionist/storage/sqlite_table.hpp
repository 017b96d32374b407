#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <projectionist/detail/sql_dialect.hpp>
#include <projectionist/detail/sqlite_api.hpp>
#include <projectionist/detail/sqlite_schema.hpp>
#include <projectionist/error.hpp>
#include <projectionist/event/codec.hpp>
#include <projectionist/meta/type_list.hpp>
#include <projectionist/storage/key_arguments.hpp>

namespace projectionist {

namespace detail::sqlite {

template <class T>
struct column_traits {
    static constexpr bool supported = false;
};
template <class T>
requires(std::is_integral_v<T> || std::is_enum_v<T>) struct column_traits<T> {
    static constexpr bool supported = true;
    static constexpr bool nullable = false;
    static constexpr std::string_view sql_type = "INTEGER";
    static void bind(statement& s, int i, const T& v) {
        if constexpr (std::is_enum_v<T>)
            s.bind(i, static_cast<std::int64_t>(static_cast<std::underlying_type_t<T>>(v)));
        else
            s.bind(i, static_cast<std::int64_t>(v));
    }
    static void read(const statement& s, int c, T& out) {
        if constexpr (std::is_same_v<T, bool>)
            out = s.int64(c) != 0;
        else if constexpr (std::is_enum_v<T>)
            out = static_cast<T>(static_cast<std::underlying_type_t<T>>(s.int64(c)));
        else
            out = static_cast<T>(s.int64(c));
    }
};
template <class T>
requires std::is_floating_point_v<T>
struct column_traits<T> {
    static constexpr bool supported = true;
    static constexpr bool nullable = false;
    static constexpr std::string_view sql_type = "REAL";
    // SQLite stores a NaN bound as REAL as NULL: it is written as the text 'NaN' instead (a REAL
    // column keeps text that is not a number as text) and read back as a quiet NaN.
    static void bind(statement& s, int i, const T& v) {
        if (std::isnan(v))
            s.bind(i, std::string_view("NaN"));
        else
            s.bind(i, static_cast<double>(v));
    }
    static void read(const statement& s, int c, T& out) {
        if (s.is_text(c) && s.text(c) == "NaN")
            out = std::numeric_limits<T>::quiet_NaN();
        else
            out = static_cast<T>(s.real(c));
    }
};
template <>
struct column_traits<std::string> {
    static constexpr bool supported = true;
    static constexpr bool nullable = false;
    static constexpr std::string_view sql_type = "TEXT";
    static void bind(statement& s, int i, const std::string& v) { s.bind(i, std::string_view(v)); }
    static void read(const statement& s, int c, std::string& out) { out.assign(s.text(c)); }
};
template <class Clock, class Duration>
struct column_traits<std::chrono::time_point<Clock, Duration>> {
    using T = std::chrono::time_point<Clock, Duration>;
    static constexpr bool supported = true;
    static constexpr bool nullable = false;
    static constexpr std::string_view sql_type = "INTEGER";
    static void bind(statement& s, int i, const T& v) {
        s.bind(i, static_cast<std::int64_t>(v.time_since_epoch().count()));
    }
    static void read(const statement& s, int c, T& out) { out = T(Duration(s.int64(c))); }
};
template <class T>
struct column_traits<std::optional<T>> {
    static constexpr bool supported = column_traits<T>::supported && !column_traits<T>::nullable;
    static constexpr bool nullable = true;
    static constexpr std::string_view sql_type = column_traits<T>::sql_type;
    static void bind(statement& s, int i, const std::optional<T>& v) {
        if (v)
            column_traits<T>::bind(s, i, *v);
        else
            s.bind_null(i);
    }
    static void read(const statement& s, int c, std::optional<T>& out) {
        if (s.is_null(c)) {
            out.reset();
        } else {
            T v{};
            column_traits<T>::read(s, c, v);
            out = std::move(v);
        }
    }
};

/// SQLite's column types and key spelling for detail/sql_dialect.hpp.
struct dialect {
    template <class Field>
    using traits = column_traits<Field>;
    static constexpr std::string_view primary_key = "PRIMARY KEY(";
};

/// Binds every field of `row` but the one at `skip` (none by default) to parameters first,
/// first+1, ...; returns the next parameter index.
template <class Row>
int bind_row(statement& s, int first, const Row& row, std::size_t skip = static_cast<std::size_t>(-1)) {
    int i = first;
    std::size_t field = 0;
    for_each_field(row, [&](std::string_view, const auto& v) {
        if (field++ != skip) column_traits<std::remove_cvref_t<decltype(v)>>::bind(s, i++, v);
    });
    return i;
}

/// Reads columns 0.. of the current result row into a Row.
template <class Row>
Row read_row(const statement& s) {
    Row row{};
    int c = 0;
    for_each_field(
        row, [&](std::string_view, auto& v) { column_traits<std::remove_cvref_t<decltype(v)>>::read(s, c++, v); });
    return row;
}

}  // namespace detail::sqlite

/// Whether SQLite stores `Table` as one B-tree ordered by its key (`CREATE TABLE ... WITHOUT
/// ROWID`), rather than as a rowid table with a separate index on the key.
///
/// By default: yes, unless the key is an integer. An integer key is the rowid itself (`INTEGER`
/// primary key), so its table is one B-tree already. Any other key (text, real) makes a rowid
/// table two B-trees: a `find` searches the key's index and then the table, and every write
/// changes both. Without a rowid, a `find` is one search and a write changes one tree: the
/// runner's batch mode backfilled a text-keyed read model 1.27 times as fast, and the file was
/// about 30 % smaller (benchmarks/README.md, *Tables without a rowid*).
///
/// SQLite keeps a row of more than about a quarter of a page (1 KB in a 4 KiB page) partly in
/// overflow pages in that layout, against nearly a whole page in a rowid table. For a table whose
/// rows are mostly that large, specialize this to false, at namespace scope:
///
///     template <>
///     inline constexpr bool projectionist::sqlite_without_rowid<app::documents_table> = false;
///
/// Only `CREATE TABLE` reads it: a table that exists keeps the layout it was created with, and
/// every operation works on both. It is not part of a version's fingerprint.
template <class Table>
inline constexpr bool sqlite_without_rowid = detail::sqlite::column_traits<typename Table::key_type>::sql_type !=
                                             std::string_view("INTEGER");

/// One typed table in a SQLite database: a column per reflected field of `Table::row_type`
/// (integers, enums and bool as INTEGER, floating point as REAL, std::string as TEXT,
/// std::optional<T> as a nullable column, time points as INTEGER nanoseconds), primary key from
/// the declared key. Every operation runs a prepared statement cached in the handle.
///
/// `find` returns `std::optional<Row>`, as on every backend: `if (auto row = table.find(key))`.
template <class Table>
class sqlite_table
    : public detail::key_argument_overloads<sqlite_table<Table>, typename Table::key_type, typename Table::row_type> {
    using key_arguments =
        detail::key_argument_overloads<sqlite_table<Table>, typename Table::key_type, typename Table::row_type>;

public:
    using key_arguments::contains;  // with a key of another type (key_arguments.hpp)
    using key_arguments::erase;
    using key_arguments::find;
    using key_arguments::update;
    using row_type = typename Table::row_type;
    using key_type = typename Table::key_type;
    static_assert(detail::sql::require_columns<row_type, detail::sqlite::dialect>());

    sqlite_table(detail::sqlite::connection& db, std::string name) : db_(&db), name_(std::move(name)) {
        quoted_ = detail::sqlite::quote(name_);
        columns_ = detail::sql::quoted_columns<row_type>();
        key_index_ = detail::sql::key_index<Table>();
    }

    [[nodiscard]] std::string_view name() const noexcept { return name_; }
    /// The table name, quoted for SQL: `"tickets_v2"`.
    [[nodiscard]] const std::string& quoted_name() const noexcept { return quoted_; }

    /// CREATE TABLE IF NOT EXISTS, from the row's reflection.
    [[nodiscard]] std::string create_sql() const {
        std::string sql = detail::sql::create_table<row_type, detail::sqlite::dialect>(quoted_, columns_, key_index_);
        if constexpr (sqlite_without_rowid<Table>) sql += " WITHOUT ROWID";
        return sql;
    }

    void insert(const row_type& row) {
        auto& s = prepared(insert_, [&] {
            return fmt::format("INSERT INTO {} ({}) VALUES ({})", quoted_, column_list(), placeholders());
        });
        detail::sqlite::bind_row(s, 1, row);
        try {
            s.run();
        } catch (const sqlite_error& e) {
            s.reset();
            if (e.code() == SQLITE_CONSTRAINT_PRIMARYKEY || e.code() == SQLITE_CONSTRAINT_UNIQUE)
                throw table_error(
                    fmt::format("projectionist: insert into table '{}': a row with key {} already "
                                "exists; use upsert to replace it",
                                name_, detail::describe_key(Table::key_of(row))));
            if ((e.code() & 0xFF) == SQLITE_CONSTRAINT)
                throw table_error(fmt::format("projectionist: insert into table '{}' of the row with key {}: {}", name_,
                                              detail::describe_key(Table::key_of(row)), e.what()));
            throw;
        }
    }

    void upsert(const row_type& row) {
        auto& s = prepared(upsert_, [&] {
            return fmt::format("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT({}) DO {}", quoted_, column_list(),
                               placeholders(), quoted_key(), detail::sql::upsert_action(columns_, key_index_));
        });
        detail::sqlite::bind_row(s, 1, row);
        s.run();
    }

    /// Reads the row with `key`, calls `fn(row&)`, writes it back; false if there is none.
    template <class F>
    bool update(const key_type& key, F&& fn) {
        std::optional<row_type> row = find(key);
        if (!row) return false;
        std::forward<F>(fn)(*row);
        if (!(Table::key_of(*row) == key))
            throw table_error(
                fmt::format("projectionist: update of table '{}' changed the key of row {}; erase and "
                            "insert instead",
                            name_, detail::describe_key(key)));
        // Every column but the key: rewriting the key's index entry cost +40-50% in the SQLite
        // backfill benchmark, for a value that cannot change here.
        auto& s = prepared(update_, [&] {
            std::string sets;
            for (std::size_t i = 0; i < columns_.size(); ++i)
                if (i != key_index_) sets += fmt::format("{}{} = ?", sets.empty() ? "" : ", ", columns_[i]);
            if (sets.empty()) sets = fmt::format("{0} = {0}", quoted_key());  // a key-only row
            return fmt::format("UPDATE {} SET {} WHERE {} = ?", quoted_, sets, quoted_key());
        });
        const int next = detail::sqlite::bind_row(s, 1, *row, key_index_);
        detail::sqlite::column_traits<key_type>::bind(s, next, key);
        s.run();
        return true;
    }

    bool erase(const key_type& key) {
        auto& s = prepared(erase_, [&] { return fmt::format("DELETE FROM {} WHERE {} = ?", quoted_, quoted_key()); });
        detail::sqlite::column_traits<key_type>::bind(s, 1, key);
        s.run();
        return sqlite3_changes(db_->get()) > 0;
    }

    [[nodiscard]] std::optional<row_type> find(const key_type& key) {
        auto& s = prepared(
            find_, [&] { return fmt::format("SELECT {} FROM {} WHERE {} = ?", column_list(), quoted_, quoted_key()); });
        detail::sqlite::column_traits<key_type>::bind(s, 1, key);
        std::optional<row_type> out;
        if (s.step()) out = detail::sqlite::read_row<row_type>(s);
        s.reset();
        return out;
    }
    [[nodiscard]] bool contains(const key_type& key) { return find(key).has_value(); }

    [[nodiscard]] std::size_t size() {
        auto& s = prepared(count_, [&] { return fmt::format("SELECT count(*) FROM {}", quoted_); });
        const auto n = s.step() ? static_cast<std::size_t>(s.int64(0)) : 0;
        s.reset();
        return n;
    }
    [[nodiscard]] bool empty() { return size() == 0; }

    /// Calls `fn(const row_type&)` for every row, in key order.
    template <class F>
    void for_each(F&& fn) {
        detail::sqlite::statement s(*db_,
                                    fmt::format("SELECT {} FROM {} ORDER BY {}", column_list(), quoted_, quoted_key()));
        while (s.step()) fn(detail::sqlite::read_row<row_type>(s));
    }

    void clear() { db_->exec(fmt::format("DELETE FROM {}", quoted_)); }

    // ---- many rows at once (storage/abilities.hpp: has_bulk_write, has_batched_find) ----------

    /// Writes `added` (keys the table does not hold) by multi-row INSERTs, `changed` by multi-row
    /// upserts and deletes `erased`, inside the caller's transaction, with a larger page cache
    /// for the duration (see bulk_cache_kib).
    void write_bulk(std::span<const row_type* const> added, std::span<const row_type* const> changed,
                    std::span<const key_type* const> erased) {
        const cache_scope cache(*db_, bulk_cache_kib);
        write_rows(added, insert_many_, "");
        write_rows(
            changed, upsert_many_,
            fmt::format(" ON CONFLICT({}) DO {}", quoted_key(), detail::sql::upsert_action(columns_, key_index_)));
        for_each_chunk(
            erased, 1, erase_many_,
            [&](std::size_t n) {
                return fmt::format("DELETE FROM {} WHERE {} IN ({})", quoted_, quoted_key(), placeholder_list(n));
            },
            [](detail::sqlite::statement& s, std::span<const key_type* const> keys) {
                int i = 1;
                for (const key_type* k : keys) detail::sqlite::column_traits<key_type>::bind(s, i++, *k);
                s.run();
            });
    }

    /// Calls `fn(row_type&&)` for every key of `keys` that has a row, one SELECT per chunk of keys.
    template <class F>
    void find_each(std::span<const key_type* const> keys, F&& fn) {
        for_each_chunk(
            keys, 1, find_many_,
            [&](std::size_t n) {
                return fmt::format("SELECT {} FROM {} WHERE {} IN ({})", column_list(), quoted_, quoted_key(),
                                   placeholder_list(n));
            },
            [&](detail::sqlite::statement& s, std::span<const key_type* const> chunk) {
                int i = 1;
                for (const key_type* k : chunk) detail::sqlite::column_traits<key_type>::bind(s, i++, *k);
                while (s.step()) fn(detail::sqlite::read_row<row_type>(s));
                s.reset();
            });
    }

    /// The page cache of a bulk write, in KiB (64 MiB). A bulk write changes many pages in one
    /// transaction; SQLite keeps changed pages in the cache until the commit and, once they
    /// outgrow it (2 MiB by default), spills them to the log mid-transaction and reads them back
    /// for the next rows of the same page. The connection's own setting comes back afterwards.
    static constexpr std::size_t bulk_cache_kib = 64 * 1024;

    /// A bulk backfill over this table begins (bulk_table::attach) or ends (bulk_table::detach).
    /// In between, the connection keeps the bulk write's page cache: once a memory budget evicts
    /// rows, they are read back (find_each) and written again by the next flush, and with the
    /// default 2 MiB cache, dropped after every flush, nearly every one of those reads missed
    /// the cache and went to the file. The cache is no larger than during a flush.
    void begin_bulk() {
        if (!bulk_cache_) bulk_cache_ = std::make_unique<cache_scope>(*db_, bulk_cache_kib);
    }
    void end_bulk() noexcept { bulk_cache_.reset(); }

private:
    /// Raises the connection's page cache to at least `kib` KiB until destroyed.
    class cache_scope {
    public:
        cache_scope(detail::sqlite::connection& db, std::size_t kib)
            : db_(db), before_(detail::sqlite::raise_cache(db, kib)) {}
        cache_scope(const cache_scope&) = delete;
        cache_scope& operator=(const cache_scope&) = delete;
        ~cache_scope() {
            if (!before_) return;
            try {
                db_.exec(fmt::format("PRAGMA cache_size={}", *before_));
            } catch (...) {
                // The cache stays larger; nothing else depends on it.
            }
        }

    private:
        detail::sqlite::connection& db_;
        std::optional<std::int64_t> before_;  // the setting raise_cache replaced
    };

    /// Multi-row `INSERT ... VALUES (...), (...) <tail>` of `rows`, in chunks.
    void write_rows(std::span<const row_type* const> rows, detail::sqlite::statement& full, const std::string& tail) {
        for_each_chunk(
            rows, columns_.size(), full,
            [&](std::size_t n) {
                std::string values;
                values.reserve(n * (columns_.size() * 3 + 3));
                for (std::size_t r = 0; r < n; ++r) values += fmt::format("{}({})", r ? "," : "", placeholders());
                return fmt::format("INSERT INTO {} ({}) VALUES {}{}", quoted_, column_list(), values, tail);
            },
            [](detail::sqlite::statement& s, std::span<const row_type* const> chunk) {
                int i = 1;
                for (const row_type* row : chunk) i = detail::sqlite::bind_row(s, i, *row);
                s.run();
            });
    }

    /// Calls `run(statement, chunk)` for `items` in chunks of as many items of `per_item`
    /// parameters as one statement takes (at most 256): the full chunks through `full`, prepared
    /// once per handle, the last, shorter one through a statement of its own.
    template <class Item, class MakeSql, class Run>
    void for_each_chunk(std::span<Item> items, std::size_t per_item, detail::sqlite::statement& full,
                        MakeSql&& make_sql, Run&& run) {
        const auto limit = static_cast<std::size_t>(sqlite3_limit(db_->get(), SQLITE_LIMIT_VARIABLE_NUMBER, -1));
        const std::size_t chunk = std::clamp<std::size_t>(limit / per_item, 1, 256);
        std::size_t at = 0;
        for (; items.size() - at >= chunk; at += chunk)
            run(prepared(full, [&] { return make_sql(chunk); }), items.subspan(at, chunk));
        if (at < items.size()) {
            detail::sqlite::statement rest(*db_, make_sql(items.size() - at));
            run(rest, items.subspan(at));
        }
    }
    [[nodiscard]] static std::string placeholder_list(std::size_t n) {
        std::string out;
        out.reserve(n * 2);
        for (std::size_t i = 0; i < n; ++i) out += i ? ",?" : "?";
        return out;
    }

    template <class MakeSql>
    detail::sqlite::statement& prepared(detail::sqlite::statement& slot, MakeSql&& make) {
        if (!slot.get()) slot = detail::sqlite::statement(*db_, make());
        return slot;
    }
    [[nodiscard]] const std::string& quoted_key() const noexcept { return columns_[key_index_]; }
    [[nodiscard]] std::string column_list() const {
        std::string out;
        for (const auto& c : columns_) out += (out.empty() ? "" : ", ") + c;
        return out;
    }
    [[nodiscard]] std::string placeholders() const {
        std::string out;
        for (std::size_t i = 0; i < columns_.size(); ++i) out += i ? ", ?" : "?";
        return out;
    }

    detail::sqlite::connection* db_;
    std::string name_;
    std::string quoted_;
    std::unique_ptr<cache_scope> bulk_cache_;  ///< held from begin_bulk to end_bulk
    std::vector<std::string> columns_;         // quoted
    std::size_t key_index_ = 0;
    detail::sqlite::statement insert_, upsert_, update_, erase_, find_, count_;
    detail::sqlite::statement insert_many_, upsert_many_, erase_many_, find_many_;  // full chunks
};

}  // namespace projectionist
