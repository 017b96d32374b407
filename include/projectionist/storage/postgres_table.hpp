#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/container_hash/hash.hpp>
#include <boost/hana/accessors.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/length.hpp>
#include <boost/hana/pair.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include <projectionist/detail/pg_api.hpp>
#include <projectionist/error.hpp>
#include <projectionist/meta/fnv1a.hpp>

namespace projectionist {

/// Thrown by a PostgreSQL storage session when a table write of the open batch was refused as
/// the batch's buffered writes were sent (a duplicate key, a constraint of the handlers' own).
/// Buffered writes reach the server after the event that made them, so the error cannot name
/// that event: the session rolls back, switches to sending each write at once for the next
/// batch, and the runner (which treats this as a checkpoint conflict: nothing was committed)
/// replays the batch, where the failing write throws from its own handler, with its position.
class postgres_batch_retry : public checkpoint_conflict {
public:
    using checkpoint_conflict::checkpoint_conflict;
};

namespace detail::pg {

// ---- columns: C++ field types as PostgreSQL types, text in and out -------------------------------

inline void append_integer(std::string& out, std::int64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

inline std::int64_t parse_integer(std::string_view text) {
    std::int64_t v = 0;
    const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (r.ec != std::errc{} || r.ptr != text.data() + text.size())
        throw error(fmt::format("projectionist: postgres: '{}' is not an integer", text));
    return v;
}

template <class T>
constexpr std::string_view integer_sql_type() {
    if constexpr (sizeof(T) == 1 || (std::is_signed_v<T> && sizeof(T) == 2))
        return "smallint";
    else if constexpr (sizeof(T) == 2 || (std::is_signed_v<T> && sizeof(T) == 4))
        return "integer";
    else
        return "bigint";  // 64-bit unsigned values are stored as their int64 bit pattern, as in SQLite
}

/// How one field type maps to a column: its SQL type, whether it is written quoted in an array
/// literal (text), and its text form in both directions.
template <class T>
struct column_traits {
    static constexpr bool supported = false;
};
template <class T>
requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) struct column_traits<T> {
    static constexpr bool supported = true;
    static constexpr bool nullable = false;
    static constexpr bool quoted = false;
    static constexpr std::string_view sql_type = integer_sql_type<T>();
    static void write(std::string& out, const T& v) { append_integer(out, static_cast<std::int64_t>(v)); }
    static void read(std::string_view text, T& out) { out = static_cast<T>(parse_integer(text)); }
};
template <>
struct column_traits<bool> {
    static constexpr bool supported = true;
    static constexpr bool nullable = false;
    static constexpr bool quoted = false;
    static constexpr std::string_view sql_type = "boolean";
    static void write(std::string& out, bool v) { out += v ? 't' : 'f'; }
    static void read(std::string_view text, bool& out) { out = text == "t"; }
};
template <class T>
requires std::is_enum_v<T>
struct column_traits<T> {
    using underlying = column_traits<std::underlying_type_t<T>>;
    static constexpr bool supported = true;
    static constexpr bool nullable = false;
    static constexpr bool quoted = false;
    static constexpr std::string_view sql_type = underlying::sql_type;
    static void write(std::string& out, const T& v) {
        underlying::write(out, static_cast<std::underlying_type_t<T>>(v));
    }
    static void read(std::string_view text, T& out) {
        std::underlying_type_t<T> v{};
        underlying::read(text, v);
        out = static_cast<T>(v);
    }
};
template <class T>
requires std::is_floating_point_v<T>
struct column_traits<T> {
    static constexpr bool supported = true;
    static constexpr bool nullable = false;
    static constexpr bool quoted = false;
    static constexpr std::string_view sql_type = sizeof(T) == sizeof(float) ? "real" : "double precision";
    static void write(std::string& out, const T& v) {
        if (std::isnan(v))
            out += "NaN";
        else if (std::isinf(v))
            out += v > 0 ? "Infinity" : "-Infinity";
        else
            fmt::format_to(std::back_inserter(out), "{}", v);  // shortest text that reads back exactly
    }
    static void read(std::string_view text, T& out) {
        if (text == "NaN") {
            out = std::numeric_limits<T>::quiet_NaN();
        } else if (text == "Infinity" || text == "-Infinity") {
            out = text[0] == '-' ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
        } else {
            const auto r = std::from_chars(text.data(), text.data() + text.size(), out);
            if (r.ec != std::errc{} || r.ptr != text.data() + text.size())
                throw error(fmt::format("projectionist: postgres: '{}' is not a floating-point number", text));
        }
    }
};
template <>
struct column_traits<std::string> {
    static constexpr bool supported = true;
    static constexpr bool nullable = false;
    static constexpr bool quoted = true;
    // Byte order, as SQLite's BINARY collation: the same key order on both backends, and
    // comparisons without the locale's cost.
    static constexpr std::string_view sql_type = "text COLLATE \"C\"";
    static constexpr std::string_view cast_type = "text";
    static void write(std::string& out, const std::string& v) { out += v; }
    static void read(std::string_view text, std::string& out) { out.assign(text); }
};
template <class Clock, class Duration>
struct column_traits<std::chrono::time_point<Clock, Duration>> {
    using T = std::chrono::time_point<Clock, Duration>;
    static constexpr bool supported = true;
    static constexpr bool nullable = false;
    static constexpr bool quoted = false;
    static constexpr std::string_view sql_type = "bigint";  // ticks of Duration since the epoch, as in SQLite
    static void write(std::string& out, const T& v) {
        append_integer(out, static_cast<std::int64_t>(v.time_since_epoch().count()));
    }
    static void read(std::string_view text, T& out) {
        out = T(Duration(static_cast<typename Duration::rep>(parse_integer(text))));
    }
};
template <class T>
struct column_traits<std::optional<T>> {
    using inner = column_traits<T>;
    static constexpr bool supported = inner::supported && !inner::nullable;
    static constexpr bool nullable = true;
    static constexpr bool quoted = inner::quoted;
    static constexpr std::string_view sql_type = inner::sql_type;
};

/// The type a parameter array is cast to: the column's type without its collation.
template <class T>
constexpr std::string_view cast_type_of() {
    if constexpr (requires { column_traits<T>::cast_type; })
        return column_traits<T>::cast_type;
    else if constexpr (requires { typename column_traits<T>::inner; })
        return cast_type_of<typename T::value_type>();
    else
        return column_traits<T>::sql_type;
}

/// Appends `v` to an array literal being built (`{...}`): NULL, a bare number, or a quoted string
/// with `"` and `\` escaped.
template <class T>
void append_element(std::string& array, const T& v) {
    if constexpr (requires { typename column_traits<T>::inner; }) {
        if (!v)
            array += "NULL";
        else
            append_element(array, *v);
    } else if constexpr (column_traits<T>::quoted) {
        std::string text;
        column_traits<T>::write(text, v);
        array += '"';
        for (char c : text) {
            if (c == '"' || c == '\\') array += '\\';
            array += c;
        }
        array += '"';
    } else {
        column_traits<T>::write(array, v);
    }
}

/// The text of one parameter value (not NULL).
template <class T>
std::string parameter_text(const T& v) {
    std::string out;
    column_traits<T>::write(out, v);
    return out;
}

/// Reads a text-format column into a field.
template <class T>
void read_field(const result& r, int row, int col, T& out) {
    if constexpr (requires { typename column_traits<T>::inner; }) {
        if (r.is_null(row, col)) {
            out.reset();
        } else {
            typename T::value_type v{};
            column_traits<typename T::value_type>::read(r.text(row, col), v);
            out = std::move(v);
        }
    } else {
        if (r.is_null(row, col))
            throw error(
                fmt::format("projectionist: postgres: column {} of a read-model row is NULL, but its field "
                            "is not a std::optional",
                            col));
        column_traits<T>::read(r.text(row, col), out);
    }
}

template <class Row>
consteval bool all_columns_supported() {
    bool ok = true;
    boost::hana::for_each(boost::hana::accessors<Row>(), [&](auto member) {
        using field = std::remove_cvref_t<decltype(boost::hana::second(member)(std::declval<Row&>()))>;
        ok = ok && column_traits<field>::supported;
    });
    return ok;
}

template <class Row>
inline constexpr std::size_t column_count = decltype(boost::hana::length(boost::hana::accessors<Row>()))::value;

template <class Row>
Row read_row(const result& r, int row) {
    Row out{};
    int c = 0;
    boost::hana::for_each(boost::hana::accessors<Row>(),
                          [&](auto member) { read_field(r, row, c++, boost::hana::second(member)(out)); });
    return out;
}

/// Statement names on a connection are derived from their text: handles of one table share
/// them, and a handle opened per query does not prepare anything twice.
inline std::string statement_name(std::string_view sql) {
    return fmt::format("pj_{:016x}_{}", fnv1a_64(sql), sql.size());
}

/// The part of a table handle its session sees: the name, and how to send or drop its buffer.
/// Plain function pointers rather than virtual functions: called at batch boundaries only.
class buffered_table {
public:
    buffered_table(const buffered_table&) = delete;
    buffered_table& operator=(const buffered_table&) = delete;
    [[nodiscard]] std::string_view table_name() const noexcept { return name_; }
    /// Sends the buffered writes; the rows read stay cached until the batch ends.
    void flush_buffer() { flush_(this); }
    /// Drops the buffered writes and cached rows.
    void forget_buffer() noexcept { forget_(this); }

protected:
    buffered_table(std::string name, void (*flush)(buffered_table*), void (*forget)(buffered_table*) noexcept)
        : name_(std::move(name)), flush_(flush), forget_(forget) {}
    ~buffered_table() = default;
    buffered_table(buffered_table&&) = default;
    buffered_table& operator=(buffered_table&&) = default;

    std::string name_;

private:
    void (*flush_)(buffered_table*);
    void (*forget_)(buffered_table*) noexcept;
};

/// A storage session's tables, as seen at batch boundaries: while a batch is open (`active`),
/// table writes are buffered and sent as multi-row statements; `flush_all` sends them,
/// `forget_all` drops them (and the rows read meanwhile).
struct write_behind {
    std::vector<buffered_table*> tables;
    bool active = false;     ///< a batch is open: buffer writes
    bool eager = false;      ///< send every write at once (the replay after a refused flush)
    bool immediate = false;  ///< this transaction sends every write at once (init, reset, remove)
    /// The batch's checkpoint was moved by another runner (seen at begin): its commit will
    /// throw checkpoint_conflict before it sends anything.
    std::optional<std::string> conflict;

    [[nodiscard]] bool buffering() const noexcept { return active && !eager && !immediate; }
    void flush_all() {
        for (auto* t : tables) t->flush_buffer();
    }
    void forget_all() noexcept {
        for (auto* t : tables) t->forget_buffer();
    }
    void remove(const buffered_table* t) noexcept { std::erase(tables, t); }
};

/// Is this a refusal by a constraint (SQLSTATE class 23), rather than a lost connection or a
/// bad statement?
inline bool constraint_refusal(const postgres_error& e) noexcept {
    return e.sqlstate().starts_with("23");
}

}  // namespace detail::pg

/// One typed table in a PostgreSQL schema: a column per reflected field of `Table::row_type`
/// (integers as smallint, integer or bigint by size, enums as their underlying integer, bool as
/// boolean, float as real, double as double precision, std::string as text in byte order
/// (COLLATE "C", like SQLite's), std::optional<T> as a nullable column, time points as bigint
/// ticks since the epoch, as in SQLite), primary key from the declared key; every identifier
/// quoted.
///
/// The operations and errors are sqlite_table's: `insert` (table_error on a duplicate key),
/// `upsert`, `update(key, fn)` (false when missing; changing the key throws), `erase`, `find`
/// (`std::optional<Row>`), `contains`, `size`, `empty`, `for_each` (key order), `clear`.
///
/// **Inside a storage session's batch** writes are buffered in the handle (key -> row or
/// deletion) and sent when the batch commits, as at most one multi-row statement per kind
/// (`INSERT ... SELECT * FROM unnest($1::text[], ...)`, `... ON CONFLICT DO UPDATE`, `DELETE
/// ... WHERE key = ANY($1)`): round trips, not rows, are what a PostgreSQL backfill pays for.
/// `find` reads the buffer first (a handler sees its own writes), then the server through a
/// prepared statement, and keeps what it read until the batch ends. `size`, `for_each`,
/// `clear` and `connection()` send the buffer first, so the server has every write before it
/// answers. A rolled-back batch drops its buffer. Outside a batch every write is sent at once.
///
///     if (auto row = table.find(key)) ...   // reads the same as memory and SQLite storage
template <class Table>
class postgres_table final : public detail::pg::buffered_table {
public:
    using table_type = Table;
    using row_type = typename Table::row_type;
    using key_type = typename Table::key_type;
    static_assert(detail::pg::all_columns_supported<row_type>(),
                  "projectionist: postgres_storage: a field of this row type has no SQL column type; supported "
                  "are integers, enums, bool, floating point, std::string, std::chrono::time_point and "
                  "std::optional of these");

    /// A handle on table `name` over `db`. Tables of a storage session pass the session's
    /// `write_behind`, which turns buffering on for its batches; without one, every write is
    /// sent at once.
    postgres_table(detail::pg::connection& db, std::string name, detail::pg::write_behind* session = nullptr)
        : buffered_table(
              std::move(name), [](buffered_table* t) { static_cast<postgres_table*>(t)->flush(); },
              [](buffered_table* t) noexcept { static_cast<postgres_table*>(t)->forget(); }),
          db_(&db),
          session_(session),
          quoted_(detail::pg::quote(name_)) {
        std::size_t i = 0;
        boost::hana::for_each(boost::hana::accessors<row_type>(), [&](auto member) {
            std::string column = boost::hana::to<const char*>(boost::hana::first(member));
            row_type probe{};
            if (static_cast<const void*>(&boost::hana::second(member)(probe)) ==
                static_cast<const void*>(&(probe.*Table::key)))
                key_index_ = i;
            columns_.push_back(detail::pg::quote(column));
            ++i;
        });
        build_statements();
        if (session_) session_->tables.push_back(this);
    }
    postgres_table(const postgres_table&) = delete;
    postgres_table& operator=(const postgres_table&) = delete;
    postgres_table(postgres_table&& o) noexcept
        : buffered_table(std::move(o)),
          db_(o.db_),
          session_(std::exchange(o.session_, nullptr)),
          quoted_(std::move(o.quoted_)),
          columns_(std::move(o.columns_)),
          key_index_(o.key_index_),
          statements_(std::move(o.statements_)),
          entries_(std::move(o.entries_)),
          dirty_(o.dirty_) {
        if (session_)
            std::replace(session_->tables.begin(), session_->tables.end(), static_cast<buffered_table*>(&o),
                         static_cast<buffered_table*>(this));
    }
    postgres_table& operator=(postgres_table&&) = delete;
    ~postgres_table() {
        if (session_) session_->remove(this);
    }

    [[nodiscard]] std::string_view name() const noexcept { return name_; }
    /// The table name, quoted for SQL: `"tickets_v2"`.
    [[nodiscard]] const std::string& quoted_name() const noexcept { return quoted_; }
    /// The quoted key column: `"ticket_id"`.
    [[nodiscard]] const std::string& quoted_key() const noexcept { return columns_[key_index_]; }

    /// The connection, for a handler's own SQL inside the batch's transaction. Sends the buffered
    /// writes of every table of the session first and forgets the rows read, since the SQL may
    /// read or change them: call it after the table writes the SQL must see.
    [[nodiscard]] detail::pg::connection& connection() {
        if (session_) {
            session_->flush_all();
            session_->forget_all();
        } else {
            flush();
        }
        return *db_;
    }

    /// CREATE TABLE IF NOT EXISTS, from the row's reflection.
    [[nodiscard]] std::string create_sql() const {
        std::string sql = fmt::format("CREATE TABLE IF NOT EXISTS {} (", quoted_);
        std::size_t i = 0;
        boost::hana::for_each(boost::hana::accessors<row_type>(), [&](auto member) {
            using field = std::remove_cvref_t<decltype(boost::hana::second(member)(std::declval<row_type&>()))>;
            using traits = detail::pg::column_traits<field>;
            sql += fmt::format("{}{} {}{}", i == 0 ? "" : ", ", columns_[i], traits::sql_type,
                               traits::nullable ? "" : " NOT NULL");
            ++i;
        });
        sql += fmt::format(", PRIMARY KEY ({}))", quoted_key());
        return sql;
    }

    /// Adds a row; throws table_error if a row with its key exists (in a batch: if the batch
    /// wrote one, at once; if the server has one, when the batch's writes are sent, see
    /// postgres_batch_retry).
    void insert(const row_type& row) {
        const key_type& key = Table::key_of(row);
        if (auto* e = entries_.find_entry(key)) {
            switch (e->kind) {
                case state::clean:
                case state::upsert:
                case state::insert: throw duplicate(key);
                case state::absent:
                case state::erase_claimed: set(*e, state::insert, row); break;
                case state::erase: set(*e, state::upsert, row); break;
            }
        } else {
            entries_.emplace(key, entry{state::insert, row});
            ++dirty_;
        }
        write_through();
    }

    /// Adds the row, or replaces the row with its key.
    void upsert(const row_type& row) {
        const key_type& key = Table::key_of(row);
        if (auto* e = entries_.find_entry(key)) {
            // A pending insert keeps its claim that the key was new: it is still checked.
            set(*e, e->kind == state::insert || e->kind == state::erase_claimed ? state::insert : state::upsert, row);
        } else {
            entries_.emplace(key, entry{state::upsert, row});
            ++dirty_;
        }
        write_through();
    }

    /// Reads the row with `key`, calls `fn(row&)`, writes it back; false if there is none.
    /// Changing the key throws table_error and writes nothing.
    template <class F>
    bool update(const key_type& key, F&& fn) {
        entry* e = lookup(key);
        if (e == nullptr || !has_row(e->kind)) return false;
        row_type changed = e->row;
        std::forward<F>(fn)(changed);
        if (!(Table::key_of(changed) == key))
            throw table_error(
                fmt::format("projectionist: update of table '{}' changed the key of row {}; erase and "
                            "insert instead",
                            name_, detail::describe_key(key)));
        if (e == &scratch_) {  // outside a batch nothing is cached: write the row now
            entries_.emplace(key, entry{state::upsert, std::move(changed)});
            ++dirty_;
        } else {
            set(*e, e->kind == state::insert ? state::insert : state::upsert, std::move(changed));
        }
        write_through();
        return true;
    }

    /// Removes the row with `key`; false if there was none.
    bool erase(const key_type& key) {
        if (auto* e = entries_.find_entry(key)) {
            switch (e->kind) {
                case state::clean:
                case state::upsert: set_state(*e, state::erase); return true;
                case state::insert: set_state(*e, state::erase_claimed); return true;
                case state::absent:
                case state::erase:
                case state::erase_claimed: return false;
            }
        }
        // Not known in this batch: the answer is the server's, so the DELETE goes now.
        detail::pg::params p;
        p.add(detail::pg::parameter_text(key));
        const bool existed = run(statement::erase_one, p).affected() > 0;
        if (caching()) entries_.emplace(key, entry{state::absent, row_type{}});
        return existed;
    }

    [[nodiscard]] std::optional<row_type> find(const key_type& key) {
        const entry* e = lookup(key);
        if (e == nullptr || !has_row(e->kind)) return std::nullopt;
        return e->row;
    }
    [[nodiscard]] bool contains(const key_type& key) {
        const entry* e = lookup(key);
        return e != nullptr && has_row(e->kind);
    }

    [[nodiscard]] std::size_t size() {
        flush();
        return static_cast<std::size_t>(run(statement::count, {}).int64(0, 0));
    }
    [[nodiscard]] bool empty() { return size() == 0; }

    /// Calls `fn(const row_type&)` for every row, in key order. Reads pages of rows by key, so
    /// `fn` may use the table (or the connection) meanwhile.
    template <class F>
    void for_each(F&& fn) {
        constexpr int page = 5000;
        std::optional<std::string> after;
        for (;;) {
            flush();
            detail::pg::params p;
            if (after) p.add(*after);
            p.add(static_cast<std::int64_t>(page));
            const auto r = run(after ? statement::page_after : statement::page_first, p);
            const int n = r.rows();
            for (int i = 0; i < n; ++i) fn(detail::pg::read_row<row_type>(r, i));
            if (n < page) return;
            after = std::string(r.text(n - 1, static_cast<int>(key_index_)));
        }
    }

    /// Deletes every row.
    void clear() {
        flush();
        entries_.clear();
        db_->exec(fmt::format("DELETE FROM {}", quoted_));
    }

    /// Sends the buffered writes (see the class comment); a no-op when there are none.
    void flush() {
        if (dirty_ == 0) {
            if (!caching()) entries_.clear();
            return;
        }
        try {
            send();
        } catch (const postgres_error& e) {
            forget();
            if (buffered_batch() && detail::pg::constraint_refusal(e)) retry_batch(e.what());
            if (detail::pg::constraint_refusal(e))
                throw table_error(fmt::format("projectionist: a write to table '{}' was refused: {}", name_, e.what()));
            throw;
        } catch (const table_error& e) {
            forget();
            if (buffered_batch()) retry_batch(e.what());
            throw;
        } catch (...) {
            forget();
            throw;
        }
        if (caching()) {
            for (auto& kv : entries_) {
                entry& e = kv.second;
                if (e.kind == state::upsert || e.kind == state::insert) e.kind = state::clean;
                if (e.kind == state::erase || e.kind == state::erase_claimed) e.kind = state::absent;
            }
        } else {
            entries_.clear();
        }
        dirty_ = 0;
    }

    void forget() noexcept {
        entries_.clear();
        dirty_ = 0;
    }

    /// Buffered writes not sent yet (for tests and diagnostics).
    [[nodiscard]] std::size_t pending_writes() const noexcept { return dirty_; }

private:
    enum class state : std::uint8_t {
        clean,          ///< as on the server, read in this batch
        absent,         ///< not on the server, seen in this batch
        upsert,         ///< to write; the server may have the key
        insert,         ///< to write; the server must not have the key (an insert)
        erase,          ///< to delete
        erase_claimed,  ///< inserted and erased in this batch: only check the server had no such key
    };
    static constexpr bool has_row(state s) noexcept {
        return s == state::clean || s == state::upsert || s == state::insert;
    }
    static constexpr bool is_dirty(state s) noexcept { return s != state::clean && s != state::absent; }
    struct entry {
        state kind;
        row_type row;
    };

    /// The flat map plus a find that returns a pointer.
    struct entry_map : boost::unordered_flat_map<key_type, entry, boost::hash<key_type>> {
        entry* find_entry(const key_type& key) {
            auto it = this->find(key);
            return it == this->end() ? nullptr : &it->second;
        }
    };

    enum class statement : std::uint8_t {
        find,
        erase_one,
        count,
        page_first,
        page_after,
        insert,
        upsert,
        erase,
        claimed
    };
    static constexpr std::size_t statement_count = 9;
    struct prepared_statement {
        std::string sql;
        std::string name;
        bool ready = false;
    };

    [[nodiscard]] bool buffered_batch() const noexcept { return session_ && session_->buffering(); }
    /// Rows read are kept only inside a buffered batch: outside one, others may change them.
    [[nodiscard]] bool caching() const noexcept { return buffered_batch(); }

    void set(entry& e, state s, row_type row) {
        if (!is_dirty(e.kind)) ++dirty_;
        e.kind = s;
        e.row = std::move(row);
    }
    void set_state(entry& e, state s) {
        if (!is_dirty(e.kind)) ++dirty_;
        e.kind = s;
    }
    void write_through() {
        if (!buffered_batch()) flush();
    }

    table_error duplicate(const key_type& key) const {
        return table_error(
            fmt::format("projectionist: insert into table '{}': a row with key {} already exists; "
                        "use upsert to replace it",
                        name_, detail::describe_key(key)));
    }

    [[noreturn]] void retry_batch(std::string_view why) {
        session_->eager = true;
        throw postgres_batch_retry(
            fmt::format("projectionist: a buffered write to table '{}' was refused when the batch's writes were sent "
                        "({}); nothing was committed; the batch is replayed sending each write at once, so that the "
                        "write's own event fails",
                        name_, why));
    }

    /// The entry for `key`: the buffer's, else what the server has (cached for the batch).
    entry* lookup(const key_type& key) {
        if (auto* e = entries_.find_entry(key)) return e;
        detail::pg::params p;
        p.add(detail::pg::parameter_text(key));
        const auto r = run(statement::find, p);
        entry fetched{r.rows() == 0 ? state::absent : state::clean,
                      r.rows() == 0 ? row_type{} : detail::pg::read_row<row_type>(r, 0)};
        if (caching()) return &entries_.emplace(key, std::move(fetched)).first->second;
        scratch_ = std::move(fetched);
        return &scratch_;
    }

    detail::pg::result run(statement s, const detail::pg::params& p) {
        auto& st = statements_[static_cast<std::size_t>(s)];
        if (!st.ready) {
            db_->prepare(st.name, st.sql);
            st.ready = true;
        }
        return db_->execute(st.name, p);
    }

    /// One array literal per column (rows whose state is `s`), then the statement.
    detail::pg::result send_rows(statement which, state s) {
        std::vector<std::string> arrays(columns_.size(), "{");
        for (const auto& kv : entries_) {
            const entry& e = kv.second;
            if (e.kind != s) continue;
            std::size_t c = 0;
            boost::hana::for_each(boost::hana::accessors<row_type>(), [&](auto member) {
                std::string& a = arrays[c++];
                if (a.size() > 1) a += ',';
                detail::pg::append_element(a, boost::hana::second(member)(e.row));
            });
        }
        detail::pg::params p;
        for (auto& a : arrays) {
            a += '}';
            p.add(a);
        }
        return run(which, p);
    }

    std::string key_array(state s, std::size_t& count) const {
        std::string a = "{";
        count = 0;
        for (const auto& [key, e] : entries_) {
            if (e.kind != s) continue;
            if (a.size() > 1) a += ',';
            detail::pg::append_element(a, key);
            ++count;
        }
        a += '}';
        return a;
    }

    void send() {
        std::size_t inserts = 0, upserts = 0;
        for (const auto& kv : entries_) {
            inserts += kv.second.kind == state::insert;
            upserts += kv.second.kind == state::upsert;
        }
        // Keys inserted and erased in this batch: an insert would have failed if the server had one.
        std::size_t n = 0;
        std::string keys = key_array(state::erase_claimed, n);
        if (n != 0) {
            detail::pg::params p;
            p.add(keys);
            const auto r = run(statement::claimed, p);
            if (r.rows() != 0) throw first_conflict(r, state::erase_claimed, true);
        }
        keys = key_array(state::erase, n);
        if (n != 0) {
            detail::pg::params p;
            p.add(keys);
            run(statement::erase, p);
        }
        if (inserts != 0) {
            const auto r = send_rows(statement::insert, state::insert);
            if (static_cast<std::size_t>(r.rows()) != inserts) throw first_conflict(r, state::insert, false);
        }
        if (upserts != 0) send_rows(statement::upsert, state::upsert);
    }

    /// The duplicate-key error for the first key of `s` that the result lists (`listed`: the
    /// existing keys) or does not list (the keys inserted).
    table_error first_conflict(const detail::pg::result& r, state s, bool listed) const {
        std::unordered_set<std::string_view> seen;
        for (int i = 0; i < r.rows(); ++i) seen.insert(r.text(i, 0));
        for (const auto& [key, e] : entries_) {
            if (e.kind != s) continue;
            const std::string text = detail::pg::parameter_text(key);
            if (seen.contains(text) == listed) return duplicate(key);
        }
        return table_error(
            fmt::format("projectionist: insert into table '{}': a row with one of the batch's keys "
                        "already exists; use upsert to replace it",
                        name_));
    }

    void build_statements() {
        std::string columns, unnest, sets;
        std::size_t i = 0;
        boost::hana::for_each(boost::hana::accessors<row_type>(), [&](auto member) {
            using field = std::remove_cvref_t<decltype(boost::hana::second(member)(std::declval<row_type&>()))>;
            const std::string& c = columns_[i];
            columns += (i ? ", " : "") + c;
            unnest += fmt::format("{}${}::{}[]", i ? ", " : "", i + 1, detail::pg::cast_type_of<field>());
            if (i != key_index_) sets += fmt::format("{}{} = excluded.{}", sets.empty() ? "" : ", ", c, c);
            ++i;
        });
        using key_traits_type = key_type;
        const std::string key = quoted_key();
        const std::string key_cast = std::string(detail::pg::cast_type_of<key_traits_type>());
        auto make = [&](statement s, std::string sql) {
            auto& st = statements_[static_cast<std::size_t>(s)];
            st.name = detail::pg::statement_name(sql);
            st.sql = std::move(sql);
        };
        make(statement::find, fmt::format("SELECT {} FROM {} WHERE {} = $1", columns, quoted_, key));
        make(statement::erase_one, fmt::format("DELETE FROM {} WHERE {} = $1", quoted_, key));
        make(statement::count, fmt::format("SELECT count(*) FROM {}", quoted_));
        make(statement::page_first, fmt::format("SELECT {} FROM {} ORDER BY {} LIMIT $1", columns, quoted_, key));
        make(statement::page_after,
             fmt::format("SELECT {} FROM {} WHERE {} > $1 ORDER BY {} LIMIT $2", columns, quoted_, key, key));
        make(statement::insert, fmt::format("INSERT INTO {} ({}) SELECT * FROM unnest({}) ON CONFLICT ({}) DO "
                                            "NOTHING RETURNING {}",
                                            quoted_, columns, unnest, key, key));
        make(statement::upsert,
             fmt::format("INSERT INTO {} ({}) SELECT * FROM unnest({}) ON CONFLICT ({}) DO {}", quoted_, columns,
                         unnest, key, sets.empty() ? "NOTHING" : "UPDATE SET " + sets));
        make(statement::erase, fmt::format("DELETE FROM {} WHERE {} = ANY($1::{}[])", quoted_, key, key_cast));
        make(statement::claimed,
             fmt::format("SELECT {} FROM {} WHERE {} = ANY($1::{}[])", key, quoted_, key, key_cast));
    }

    detail::pg::connection* db_;
    detail::pg::write_behind* session_;
    std::string quoted_;
    std::vector<std::string> columns_;  // quoted
    std::size_t key_index_ = 0;
    std::array<prepared_statement, statement_count> statements_{};
    entry_map entries_;
    std::size_t dirty_ = 0;  // entries to send
    entry scratch_{state::absent, row_type{}};
};

}  // namespace projectionist
