#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/container_hash/hash.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include <projectionist/detail/pg_api.hpp>
#include <projectionist/detail/pg_columns.hpp>
#include <projectionist/detail/pg_write_behind.hpp>
#include <projectionist/detail/sql_dialect.hpp>
#include <projectionist/error.hpp>
#include <projectionist/meta/fnv1a.hpp>
#include <projectionist/storage/key_arguments.hpp>

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

/// Statement names on a connection are derived from their text: handles of one table share
/// them, and a handle opened per query does not prepare anything twice.
inline std::string statement_name(std::string_view sql) {
    return fmt::format("pj_{:016x}_{}", fnv1a_64(sql), sql.size());
}

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
///     if (auto row = table.find(key)) ...   // std::optional<Row>, as on every backend
template <class Table>
class postgres_table final
    : public detail::pg::buffered_table,
      public detail::key_argument_overloads<postgres_table<Table>, typename Table::key_type, typename Table::row_type> {
    using key_arguments =
        detail::key_argument_overloads<postgres_table<Table>, typename Table::key_type, typename Table::row_type>;

public:
    using key_arguments::contains;  // with a key of another type (key_arguments.hpp)
    using key_arguments::erase;
    using key_arguments::find;
    using key_arguments::update;
    using table_type = Table;
    using row_type = typename Table::row_type;
    using key_type = typename Table::key_type;
    static_assert(detail::sql::require_columns<row_type, detail::pg::dialect>());

    /// A handle on table `name` over `db`. Tables of a storage session pass the session's
    /// `write_behind`, which turns buffering on for its batches; without one, every write is
    /// sent at once.
    postgres_table(detail::pg::connection& db, std::string name, detail::pg::write_behind* session = nullptr)
        : buffered_table(
              std::move(name), [](buffered_table* t) { static_cast<postgres_table*>(t)->flush(); },
              [](buffered_table* t, detail::pg::connection::pipeline& pl) {
                  static_cast<postgres_table*>(t)->queue(pl);
              },
              [](buffered_table* t) noexcept { static_cast<postgres_table*>(t)->forget(); }),
          db_(&db),
          session_(session),
          quoted_(detail::pg::quote(name_)),
          columns_(detail::sql::quoted_columns<row_type>()),
          key_index_(detail::sql::key_index<Table>()) {
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
        return detail::sql::create_table<row_type, detail::pg::dialect>(quoted_, columns_, key_index_);
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
        guarded([&] { send(nullptr); });
        sent();
    }

    /// `flush`, its statements added to `pl` instead of run: `pl.run()` checks their answers and
    /// reports a refused write as `flush` would, or marks the writes sent.
    void queue(detail::pg::connection::pipeline& pl) {
        if (dirty_ == 0) {
            if (!caching()) entries_.clear();
            return;
        }
        guarded([&] { send(&pl); });
    }

    void forget() noexcept {
        entries_.clear();
        dirty_ = 0;
    }

    /// Buffered writes not sent yet (for tests and diagnostics).
    [[nodiscard]] std::size_t pending_writes() const noexcept { return dirty_; }

    // ---- many rows at once (storage/abilities.hpp: has_bulk_write, has_batched_find) ----------

    /// Deletes `erased` (one `= ANY` statement), writes `added` (keys the table does not hold) by
    /// binary COPY into the table and `changed` by binary COPY into a temporary table followed by
    /// one `INSERT ... ON CONFLICT DO UPDATE`, in the caller's transaction (in one of its own
    /// outside one). Sends this handle's buffered writes first and forgets the rows it read.
    void write_bulk(std::span<const row_type* const> added, std::span<const row_type* const> changed,
                    std::span<const key_type* const> erased) {
        flush();
        forget();
        const bool own = PQtransactionStatus(db_->get()) == PQTRANS_IDLE;
        if (own) db_->exec("BEGIN");
        try {
            for (std::size_t at = 0; at < erased.size(); at += keys_per_query) {
                detail::pg::params p;
                p.add(key_list(erased.subspan(at, std::min(keys_per_query, erased.size() - at))));
                run(statement::erase, p);
            }
            copy(added, quoted_);
            if (!changed.empty()) {
                const std::string staging = detail::pg::quote(fmt::format("pj_bulk_{:016x}", detail::fnv1a_64(name_)));
                // Emptied at every commit; created once per connection (IF NOT EXISTS).
                db_->exec(fmt::format("CREATE TEMPORARY TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS",
                                      staging, quoted_));
                copy(changed, staging);
                db_->exec(fmt::format("INSERT INTO {0} ({1}) SELECT {1} FROM {2} ON CONFLICT ({3}) DO {4}", quoted_,
                                      column_list(), staging, quoted_key(),
                                      detail::sql::upsert_action(columns_, key_index_)));
                if (!own) db_->exec(fmt::format("DELETE FROM {}", staging));  // a later bulk write of this batch
            }
            if (own) db_->exec("COMMIT");
        } catch (...) {
            if (own) {
                try {
                    db_->exec("ROLLBACK");
                } catch (...) {
                    // The first error is the one to report.
                }
            }
            throw;
        }
    }

    /// Calls `fn(row_type&&)` for every key of `keys` that has a row: one `= ANY($1)` SELECT per
    /// chunk of keys. Reads the server, not this handle's buffer.
    template <class F>
    void find_each(std::span<const key_type* const> keys, F&& fn) {
        for (std::size_t at = 0; at < keys.size(); at += keys_per_query) {
            detail::pg::params p;
            p.add(key_list(keys.subspan(at, std::min(keys_per_query, keys.size() - at))));
            const auto r = run(statement::find_many, p);
            for (int i = 0; i < r.rows(); ++i) fn(detail::pg::read_row<row_type>(r, i));
        }
    }

    /// Reads the rows of `keys` that this batch has not read or written yet, in one query per
    /// chunk of keys, and keeps them (or that they are absent) for the batch: the reads of the
    /// batch's handlers are then answered without a round trip. A no-op outside a buffered batch.
    /// Called from the opening of a batch (session::begin with an opening), the queries go with
    /// BEGIN and the checkpoint's lock, in their round trip, and the rows are kept when it ends.
    void prefetch(std::span<const key_type* const> keys) {
        if (!caching()) return;
        std::vector<const key_type*> wanted;
        wanted.reserve(keys.size());
        for (const key_type* k : keys)
            if (entries_.find(*k) == entries_.end()) {
                entries_.emplace(*k, entry{state::absent, row_type{}});  // until the server says otherwise
                wanted.push_back(k);
            }
        const auto keep = [this](row_type&& row) {
            entry& e = entries_.find(Table::key_of(row))->second;
            e.kind = state::clean;
            e.row = std::move(row);
        };
        detail::pg::connection::pipeline* opening = session_ != nullptr ? session_->opening : nullptr;
        if (opening == nullptr) {
            find_each(std::span<const key_type* const>(wanted), keep);
            return;
        }
        const auto& st = statements_[static_cast<std::size_t>(statement::find_many)];
        for (std::size_t at = 0; at < wanted.size(); at += keys_per_query) {
            detail::pg::params p;
            p.add(key_list(
                std::span<const key_type* const>(wanted).subspan(at, std::min(keys_per_query, wanted.size() - at))));
            opening->add_prepared(st.name, st.sql, p, [keep](detail::pg::connection::pipeline::answer& a) {
                const auto r = a.take();
                for (int i = 0; i < r.rows(); ++i) keep(detail::pg::read_row<row_type>(r, i));
            });
        }
    }

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
        claimed,
        find_many
    };
    static constexpr std::size_t statement_count = 10;
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

    /// Runs `f`, which sends buffered writes or checks their answers; a failure drops the buffer,
    /// and a refusal by a constraint becomes a table_error, or inside a buffered batch the replay
    /// of postgres_batch_retry.
    template <class F>
    void guarded(F&& f) {
        try {
            std::forward<F>(f)();
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
    }

    /// The buffered writes reached the server: what was written is now what the server holds.
    void sent() {
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

    static constexpr std::size_t keys_per_query = 10000;

    /// `{k1,k2,...}`: an array literal of keys, for `= ANY($1)`.
    static std::string key_list(std::span<const key_type* const> keys) {
        std::string a = "{";
        for (const key_type* k : keys) {
            if (a.size() > 1) a += ',';
            detail::pg::append_element(a, *k);
        }
        a += '}';
        return a;
    }

    [[nodiscard]] std::string column_list() const {
        std::string out;
        for (const auto& c : columns_) out += (out.empty() ? "" : ", ") + c;
        return out;
    }

    /// The rows by binary COPY into `target` (this table or its staging table), in pieces of
    /// about 16 MiB.
    void copy(std::span<const row_type* const> rows, const std::string& target) {
        if (rows.empty()) return;
        const std::string sql = fmt::format("COPY {} ({}) FROM STDIN (FORMAT binary)", target, column_list());
        detail::pg::copy_rows data;
        std::size_t in_piece = 0;
        for (const row_type* row : rows) {
            detail::pg::copy_row(data, *row);
            if (++in_piece % 4096 == 0 && data.size() >= (std::size_t{16} << 20)) {
                db_->copy_in(sql, data.finish());
                data.clear();
                in_piece = 0;
            }
        }
        if (in_piece != 0) db_->copy_in(sql, data.finish());
    }

    detail::pg::result run(statement s, const detail::pg::params& p) {
        auto& st = statements_[static_cast<std::size_t>(s)];
        if (!st.ready) {
            db_->prepare(st.name, st.sql);
            st.ready = true;
        }
        return db_->execute(st.name, p);
    }

    /// One array literal per column (rows whose state is `s`): the parameters of `insert` or
    /// `upsert`.
    void row_arrays(state s, detail::pg::params& p) const {
        std::vector<std::string> arrays(columns_.size(), "{");
        for (const auto& kv : entries_) {
            const entry& e = kv.second;
            if (e.kind != s) continue;
            std::size_t c = 0;
            detail::for_each_field(e.row, [&](std::string_view, const auto& field) {
                std::string& a = arrays[c++];
                if (a.size() > 1) a += ',';
                detail::pg::append_element(a, field);
            });
        }
        for (auto& a : arrays) {
            a += '}';
            p.add(a);
        }
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

    /// The buffered writes' statements, in order, each answer checked: run one by one (`pl`
    /// null) or added to `pl`, whose run checks the answers and marks the writes sent.
    void send(detail::pg::connection::pipeline* pl) {
        std::size_t inserts = 0, upserts = 0;
        for (const auto& kv : entries_) {
            inserts += kv.second.kind == state::insert;
            upserts += kv.second.kind == state::upsert;
        }
        std::size_t claimed = 0, erased = 0;
        const std::string claimed_keys = key_array(state::erase_claimed, claimed);
        const std::string erased_keys = key_array(state::erase, erased);
        const std::size_t statements = (claimed != 0) + (erased != 0) + (inserts != 0) + (upserts != 0);
        std::size_t issued = 0;
        auto issue = [&](statement s, const detail::pg::params& p, auto check) {
            if (pl == nullptr) {
                check(run(s, p));
                return;
            }
            const bool last = ++issued == statements;
            const auto& st = statements_[static_cast<std::size_t>(s)];
            pl->add_prepared(st.name, st.sql, p, [this, check, last](detail::pg::connection::pipeline::answer& a) {
                guarded([&] { check(a.take()); });
                if (last) sent();
            });
        };
        // Keys inserted and erased in this batch: an insert would have failed if the server had one.
        if (claimed != 0) {
            detail::pg::params p;
            p.add(claimed_keys);
            issue(statement::claimed, p, [this](const detail::pg::result& r) {
                if (r.rows() != 0) throw first_conflict(r, state::erase_claimed, true);
            });
        }
        if (erased != 0) {
            detail::pg::params p;
            p.add(erased_keys);
            issue(statement::erase, p, [](const detail::pg::result&) {});
        }
        if (inserts != 0) {
            detail::pg::params p;
            row_arrays(state::insert, p);
            issue(statement::insert, p, [this, inserts](const detail::pg::result& r) {
                if (static_cast<std::size_t>(r.rows()) != inserts) throw first_conflict(r, state::insert, false);
            });
        }
        if (upserts != 0) {
            detail::pg::params p;
            row_arrays(state::upsert, p);
            issue(statement::upsert, p, [](const detail::pg::result&) {});
        }
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
        std::string columns, unnest;
        std::size_t i = 0;
        detail::for_each_field_type<row_type>([&]<class Field>(std::string_view, std::type_identity<Field>) {
            columns += (i ? ", " : "") + columns_[i];
            unnest += fmt::format("{}${}::{}[]", i ? ", " : "", i + 1, detail::pg::cast_type_of<Field>());
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
                         unnest, key, detail::sql::upsert_action(columns_, key_index_)));
        make(statement::erase, fmt::format("DELETE FROM {} WHERE {} = ANY($1::{}[])", quoted_, key, key_cast));
        make(statement::claimed,
             fmt::format("SELECT {} FROM {} WHERE {} = ANY($1::{}[])", key, quoted_, key, key_cast));
        make(statement::find_many,
             fmt::format("SELECT {} FROM {} WHERE {} = ANY($1::{}[])", columns, quoted_, key, key_cast));
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
