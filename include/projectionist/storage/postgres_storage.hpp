#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <libpq-fe.h>

#include <projectionist/detail/pg_api.hpp>
#include <projectionist/detail/pg_schema.hpp>
#include <projectionist/detail/sql_records.hpp>
#include <projectionist/error.hpp>
#include <projectionist/storage/catalog.hpp>
#include <projectionist/storage/postgres_table.hpp>
#include <projectionist/storage/sql_storage_base.hpp>
#include <projectionist/store/partition.hpp>
#include <projectionist/store/postgres_event_store.hpp>

namespace projectionist {

/// What a session's commits must prove: that `holder` still holds the lease of `partition` of
/// `projection` (a row of projectionist_leases) with this `epoch`, unexpired by the server's clock.
struct lease_fence {
    std::string projection;
    std::uint32_t partition = 0;
    std::string holder;
    std::uint64_t epoch = 0;
};

namespace detail::pg {

inline std::optional<catalog_entry> read_catalog(const connection& db, std::string_view name) {
    params p;
    p.add(name);
    const auto r =
        db.query(fmt::format("SELECT {} FROM projectionist_catalog WHERE name = $1", sql::catalog_column_list()), p);
    if (r.rows() == 0) return std::nullopt;
    return sql::catalog_from_row(result_row(r, 0));
}

/// Every catalog row, by name (bytewise, as SQLite orders them).
inline std::vector<catalog_entry> read_catalogs(const connection& db) {
    const auto r = db.query(
        fmt::format("SELECT {} FROM projectionist_catalog ORDER BY name COLLATE \"C\"", sql::catalog_column_list()));
    std::vector<catalog_entry> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(sql::catalog_from_row(result_row(r, i)));
    return out;
}

inline std::optional<std::string> read_setting(const connection& db, std::string_view key) {
    params p;
    p.add(key);
    const auto r = db.query("SELECT value FROM projectionist_settings WHERE key = $1", p);
    if (r.rows() == 0) return std::nullopt;
    return std::string(r.text(0, 0));
}

inline void write_setting(const connection& db, std::string_view key, std::string_view value) {
    params p;
    p.add(key).add(value);
    db.query(
        "INSERT INTO projectionist_settings(key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = "
        "excluded.value",
        p);
}

/// Sets `key` to `value` if its value is `expected` now (nullopt: if it has none), in one
/// statement; returns whether it did.
inline bool write_setting_if(const connection& db, std::string_view key, std::optional<std::string_view> expected,
                             std::string_view value) {
    params p;
    p.add(key).add(value);
    if (!expected)
        return db.query(
                     "INSERT INTO projectionist_settings(key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING "
                     "RETURNING 1",
                     p)
                   .rows() != 0;
    p.add(*expected);
    return db.query("UPDATE projectionist_settings SET value = $2 WHERE key = $1 AND value = $3 RETURNING 1", p)
               .rows() != 0;
}

/// Whether the connection's schema (the first of its search_path) has a table `name`.
inline bool table_exists(const connection& db, std::string_view name) {
    params p;
    p.add(name);
    return db.query(
                 "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                 "WHERE n.nspname = current_schema() AND c.relname = $1 AND c.relkind IN ('r', 'p')",
                 p)
               .rows() != 0;
}

}  // namespace detail::pg

/// Read-model storage in a PostgreSQL schema (what it keeps: detail::sql_storage_base), the event
/// store's own or another one.
///
///     projectionist::postgres_event_store store("postgresql://app@db/app");
///     projectionist::postgres_storage storage("postgresql://app@db/app");
///     projectionist::runner<tickets<2>, projectionist::postgres_storage> v2(store, storage);
///
/// A runner over postgres_storage reads a postgres_event_store unless it names another store.
class postgres_storage
    : public detail::sql_storage_base<postgres_storage, postgres_event_store, postgres_table, detail::pg::connection> {
public:
    class session;

    explicit postgres_storage(std::string conninfo, postgres_options options = {})
        : sql_storage_base(detail::pg::open_database(conninfo, options)),
          conninfo_(std::move(conninfo)),
          options_(std::move(options)) {}

    [[nodiscard]] const std::string& conninfo() const noexcept { return conninfo_; }
    [[nodiscard]] const postgres_options& options() const noexcept { return options_; }

    [[nodiscard]] session open(std::string_view projection);

    /// A session for one partition of a per-aggregate projection: its checkpoint, per-aggregate
    /// positions and dead letters are the partition's own (stored under
    /// `checkpoint_key(projection, slice)`, e.g. "tickets_v2#3/8"), while its tables, catalog row
    /// and settings are the projection's. A whole slice (count 1) is `open(projection)`.
    ///
    /// A partition with no checkpoint yet starts from the projection's unsliced checkpoint, if
    /// there is one (a projection that ran in one process and is now spread over workers goes on
    /// where it was). Throws projectionist::error if the projection has checkpoints for another
    /// partition count: its events would be applied twice.
    [[nodiscard]] session open(std::string_view projection, partition_slice slice);

private:
    std::string conninfo_;
    postgres_options options_;
};

/// One runner's connection to a postgres_storage, for one projection version (or one partition of
/// it: `postgres_storage::open(projection, slice)`).
///
/// A batch is `begin` ... `commit(checkpoint, changed_aggregates)` or `rollback()`. `begin`
/// locks the projection's checkpoint row (SELECT ... FOR UPDATE): a second runner of the same
/// version waits there until the first commits, then finds the checkpoint moved and its batch
/// ends in checkpoint_conflict, writing nothing. The tables' buffered writes, the checkpoint
/// (compared and set), the positions of the changed aggregates (one statement), catalog changes,
/// dead letters and, through `connection()`, emitted events all commit in one transaction.
///
/// Fencing (workers): after `fence(lease_fence{...})`, every commit first checks, in the batch's
/// transaction, that the lease row still has that holder and epoch and has not expired, and locks
/// it FOR SHARE until the commit: a claim by another worker (an UPDATE of that row) waits for this
/// commit or comes before it and fails the check. A commit that fails it throws lease_lost and
/// writes nothing, so a worker that was frozen or cut off past its lease cannot commit late.
class postgres_storage::session : public detail::sql_session_base<detail::pg::connection> {
public:
    session(const postgres_storage& storage, std::string_view projection, partition_slice slice = {})
        : sql_session_base(projection, detail::pg::open_database(storage.conninfo(), storage.options())),
          conninfo_(storage.conninfo()),
          slice_(slice),
          key_(::projectionist::checkpoint_key(projection, slice)),
          pipelined_(storage.options().pipeline),
          buffer_(std::make_unique<detail::pg::write_behind>()) {}

    ~session() {
        // Tables go first: they unregister from buffer_.
        owned_.clear();
    }

    /// The partition this session's checkpoint belongs to (count 1: the whole projection).
    [[nodiscard]] const partition_slice& slice() const noexcept { return slice_; }
    /// The key of its rows in the checkpoint, per-aggregate position and dead-letter tables.
    [[nodiscard]] const std::string& checkpoint_key() const noexcept { return key_; }

    /// From now on every commit proves that `f.holder` still holds the lease with `f.epoch`;
    /// otherwise it throws lease_lost and writes nothing. See the class comment.
    void fence(lease_fence f) {
        fence_ = std::move(f);
        fenced_out_ = false;
    }
    /// Commits stop checking a lease.
    void unfence() noexcept { fence_.reset(); }
    [[nodiscard]] const std::optional<lease_fence>& current_fence() const noexcept { return fence_; }
    /// Whether a commit failed because the lease was lost (since the last `fence`).
    [[nodiscard]] bool fenced_out() const noexcept { return fenced_out_; }
    [[nodiscard]] const std::string& conninfo() const noexcept { return conninfo_; }

    /// The raw connection, for handlers that write their own SQL inside the batch's transaction
    /// (and for a store in the same database, which appends emitted events through it). Sends the
    /// tables' buffered writes first, so that the SQL sees them: call it after those writes.
    [[nodiscard]] detail::pg::connection& connection() {
        buffer_->flush_all();
        buffer_->forget_all();
        return db_;
    }
    [[nodiscard]] PGconn* raw() const noexcept { return db_.get(); }
    /// Round trips to the server on this session's connection so far (connection::round_trips):
    /// what tests and benchmarks count a batch's cost in.
    [[nodiscard]] std::uint64_t round_trips() const noexcept { return db_.round_trips(); }
    /// Whether batches send their statements in pipelines (postgres_options::pipeline).
    [[nodiscard]] bool pipelined() const noexcept { return pipelined_; }

    /// The checkpoint as last committed, loaded on first use and kept up to date by the runner.
    [[nodiscard]] checkpoint& load_checkpoint() {
        if (!loaded_) {
            try {
                point_ = read_checkpoint();
            } catch (...) {
                // The server is gone, say: the checkpoint is the last one committed, not what a
                // failed batch had moved it to.
                point_.position = committed_position_;
                throw;
            }
            committed_position_ = point_.position;
            loaded_ = true;
        }
        return point_;
    }

    /// Forgets the cached checkpoint and reads it again (another process may have moved it).
    checkpoint& reload_checkpoint() {
        loaded_ = false;
        return load_checkpoint();
    }

    template <class Table>
    postgres_table<Table>& create_table(std::string_view name) {
        auto& t = own(std::make_unique<postgres_table<Table>>(db_, std::string(name), buffer_.get()));
        db_.exec(t.create_sql());
        return t;
    }

    template <class Table>
    postgres_table<Table>* open_table(std::string_view name) {
        if (!detail::pg::table_exists(db_, name)) return nullptr;
        return &own(std::make_unique<postgres_table<Table>>(db_, std::string(name), buffer_.get()));
    }

    bool drop_table(std::string_view name) {
        // What the batch wrote to it is moot, and must not be sent to a table that is gone.
        for (auto* t : buffer_->tables)
            if (t->table_name() == name) t->forget_buffer();
        return drop_if_exists(name);
    }

    void save_catalog(const catalog_entry& e) {
        static const std::string sql = detail::sql::catalog_upsert(detail::sql::placeholders::numbered);
        detail::pg::params p;
        const std::string tables = detail::join_lines(e.tables);
        detail::sql::bind_catalog(e, tables, [&](const auto& v) { p.add(v); });
        run("pj_save_catalog", sql.c_str(), p);
    }

    // ---- the hand-over of emission (storage/emission_window.hpp), inside the open transaction

    /// The other versions of `base_name` whose catalog rows are live.
    [[nodiscard]] std::vector<std::string> live_versions(std::string_view base_name) const {
        detail::pg::params p;
        p.add(base_name).add(projection_);
        const auto r = db_.query(
            "SELECT name FROM projectionist_catalog WHERE base_name = $1 AND name <> $2 AND live ORDER BY name", p);
        std::vector<std::string> out;
        for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.text(i, 0));
        return out;
    }
    /// A version's committed position: the highest of its checkpoints (one per partition when
    /// workers run it), 0 without one. The rows stay locked until this transaction ends, so a
    /// batch of that version (which locks its row at begin) commits before or begins after.
    [[nodiscard]] std::uint64_t lock_position(std::string_view version) {
        const auto r = checkpoint_rows(version, " FOR UPDATE");
        std::uint64_t highest = 0;
        for (int i = 0; i < r.rows(); ++i) highest = std::max(highest, static_cast<std::uint64_t>(r.int64(i, 1)));
        return highest;
    }
    /// How far every part of a version has applied the log: the lowest of its partitions'
    /// checkpoints when workers run it (a partition without one yet counts from the unsliced
    /// checkpoint it would start from), else its own checkpoint; 0 without one. A version is made
    /// live again only once this reaches its earlier hand-over: a partition behind it still owes
    /// downstream those positions (nor deleted or reset before). In a hand-over, read after
    /// `lock_position(version)`, whose locks it relies on.
    [[nodiscard]] std::uint64_t lowest_position(std::string_view version) const {
        const auto r = checkpoint_rows(version, "");
        std::optional<std::uint64_t> whole, lowest;
        std::uint64_t parts = 0, count = 0;
        for (int i = 0; i < r.rows(); ++i) {
            const std::string_view key = r.text(i, 0);
            const auto position = static_cast<std::uint64_t>(r.int64(i, 1));
            if (key == version) {
                whole = position;
                continue;
            }
            ++parts;
            const auto slash = key.rfind('/');
            if (slash != std::string_view::npos) count = std::stoull(std::string(key.substr(slash + 1)));
            lowest = std::min(lowest.value_or(position), position);
        }
        if (!lowest) return whole.value_or(0);
        if (parts < count) lowest = std::min(*lowest, whole.value_or(0));
        return *lowest;
    }
    /// Clears another version's live flag; a `live` state becomes `caught_up`.
    void clear_live(std::string_view version) {
        detail::pg::params p;
        p.add(version);
        db_.query(
            "UPDATE projectionist_catalog SET live = false, state = CASE state WHEN 'live' THEN 'caught_up' ELSE "
            "state END WHERE name = $1",
            p);
    }

    /// Marks this version serving and every other serving version of `base_name` retired, in one
    /// statement (has_serving_switch); false, with nothing changed, if this version's row is not
    /// caught up, serving or retired.
    [[nodiscard]] bool switch_serving(std::string_view base_name) {
        static const std::string sql = detail::sql::serving_switch(detail::sql::placeholders::numbered);
        detail::pg::params p;
        p.add(projection_).add(base_name).add(projection_).add(projection_);
        return db_.query(sql, p).affected() > 0;
    }

    void erase_catalog() {
        detail::pg::params p;
        p.add(projection_);
        db_.query("DELETE FROM projectionist_catalog WHERE name = $1", p);
    }

    /// Records a dead letter (inside the open transaction, if any).
    void record_dead_letter(const dead_letter& letter) {
        static const std::string sql = detail::sql::dead_letter_insert(detail::sql::placeholders::numbered);
        detail::pg::params p;
        detail::sql::bind_dead_letter(key_, letter, [&](const auto& v) { p.add(v); });
        run("pj_save_dead_letter", sql.c_str(), p);
    }

    /// The projection's dead letters (a partition's session: the partition's), oldest first.
    [[nodiscard]] std::vector<dead_letter> dead_letters() const {
        detail::pg::params p;
        p.add(key_);
        const auto r =
            db_.query(fmt::format("SELECT {} FROM projectionist_dead_letters WHERE projection = $1 ORDER BY id",
                                  detail::sql::dead_letter_columns),
                      p);
        std::vector<dead_letter> out;
        for (int i = 0; i < r.rows(); ++i)
            out.push_back(detail::sql::dead_letter_from_row(detail::pg::result_row(r, i)));
        return out;
    }

    /// Forgets the checkpoint and dead letters (inside the open transaction, if any): those of the
    /// projection and of all its partitions, whichever slice this session has, since they all
    /// describe the same tables, which a reset empties and a remove drops.
    void reset_checkpoint() {
        detail::pg::params p;
        p.add(projection_).add(projection_ + "#");
        for (const char* sql :
             {"DELETE FROM projectionist_checkpoints WHERE projection = $1 OR starts_with(projection, $2)",
              "DELETE FROM projectionist_aggregate_checkpoints WHERE projection = $1 OR starts_with(projection, $2)",
              "DELETE FROM projectionist_dead_letters WHERE projection = $1 OR starts_with(projection, $2)"})
            db_.query(sql, p);
        point_ = checkpoint{};
        loaded_ = true;
        has_position_row_ = false;
        committed_position_ = 0;
        reset_in_transaction_ = in_transaction_;
        buffer_->conflict.reset();  // a reset starts over whatever another runner committed
    }

    /// Opens a batch: a transaction, with the projection's checkpoint row locked until it ends.
    /// A session without a slice refuses to, writing nothing, when workers run the projection in
    /// partitions (a checkpoint `projection#k/n` exists): it would apply their events again from
    /// its own checkpoint.
    void begin() {
        open_transaction(false, [] {});
    }

    /// `begin()`, calling `opening()` once the batch is open: the tables' `prefetch` calls it
    /// makes go with BEGIN and the checkpoint's lock, in their round trip (pipelined; not
    /// pipelined, they run after them, each a round trip), and the rows they read are kept for
    /// the batch. A failure of theirs fails `begin`, with the transaction rolled back.
    template <class Opening>
    void begin(Opening&& opening) {
        open_transaction(false, opening);
    }

    /// Opens the transaction of a lifecycle operation (init, reset, remove). Its table writes are
    /// sent at once instead of buffered: hooks write few rows, and a refused write then fails in
    /// the hook that made it, as a table_error, rather than at commit. Allowed without a slice on
    /// a partitioned projection: a reset or remove covers every partition.
    void begin_lifecycle() {
        open_transaction(true, [] {});
    }

    /// Sends the tables' buffered writes, writes the checkpoint (and the positions of the
    /// aggregates the batch changed, in one statement) and commits them all together.
    /// Throws checkpoint_conflict, writing nothing, if another runner moved the checkpoint since
    /// this session loaded or committed it, and lease_lost, writing nothing, if the session is
    /// fenced and its worker no longer holds the lease (checked first).
    ///
    /// Pipelined (postgres_options::pipeline), the lease check, the writes, the checkpoint and the
    /// aggregates' positions go in one round trip and their answers are checked in that order,
    /// with the errors a statement-by-statement commit reports; COMMIT follows only once the
    /// checkpoint's compare-and-set is seen to have moved it.
    void commit(const checkpoint& cp, std::span<const std::uint64_t> changed_aggregates) {
        // A checkpoint reset in this transaction (reset, delete) and not moved has no row: a
        // deleted version leaves none behind.
        const bool no_row =
            !has_position_row_ && reset_in_transaction_ && cp.position == 0 && changed_aggregates.empty();
        if (pipelined_ && !buffer_->conflict) {
            detail::pg::connection::pipeline pl(db_);
            if (fence_) check_fence(&pl);
            buffer_->queue_all(pl);
            write_checkpoint(cp, changed_aggregates, no_row, &pl);
            pl.run();
        } else {
            if (fence_) check_fence(nullptr);
            if (buffer_->conflict) throw checkpoint_conflict(*buffer_->conflict);
            buffer_->flush_all();
            write_checkpoint(cp, changed_aggregates, no_row, nullptr);
        }
        db_.exec("COMMIT");
        end_transaction();
        buffer_->eager = false;  // this batch went through: buffer again
        has_position_row_ = !no_row;
        committed_position_ = cp.position;
    }

    /// Rolls the batch back, buffered writes included; the tables are as they were at `begin`
    /// (returns true).
    bool rollback() {
        buffer_->forget_all();
        if (!in_transaction_) return true;
        // A reset inside the rolled-back transaction cleared the cached checkpoint: read it again.
        if (reset_in_transaction_) loaded_ = false;
        end_transaction();
        db_.exec("ROLLBACK");
        return true;
    }

private:
    /// The checkpoint rows of `version` (projection, position): its own and its partitions'
    /// ("<version>#<slice>"), `suffix` appended to the query (" FOR UPDATE" locks them).
    [[nodiscard]] detail::pg::result checkpoint_rows(std::string_view version, std::string_view suffix) const {
        detail::pg::params p;
        p.add(version).add(std::string(version) + "#");
        return db_.query(fmt::format("SELECT projection, position FROM projectionist_checkpoints WHERE projection = $1 "
                                     "OR starts_with(projection, $2){}",
                                     suffix),
                         p);
    }

    /// The committed checkpoint, as the database holds it.
    checkpoint read_checkpoint() {
        checkpoint out;
        detail::pg::params p;
        p.add(key_);
        auto pos = db_.query("SELECT position FROM projectionist_checkpoints WHERE projection = $1", p);
        if (pos.rows() == 0 && !slice_.whole() && seed_partition())
            pos = db_.query("SELECT position FROM projectionist_checkpoints WHERE projection = $1", p);
        has_position_row_ = pos.rows() != 0;
        if (has_position_row_) out.position = static_cast<std::uint64_t>(pos.int64(0, 0));
        const auto aggs = db_.query(
            "SELECT aggregate_number, version FROM projectionist_aggregate_checkpoints WHERE projection = $1", p);
        std::uint64_t highest = 0;
        for (int i = 0; i < aggs.rows(); ++i) highest = std::max(highest, static_cast<std::uint64_t>(aggs.int64(i, 0)));
        if (aggs.rows() != 0) out.aggregate_versions.assign(highest + 1, 0);
        for (int i = 0; i < aggs.rows(); ++i) {
            const auto number = static_cast<std::uint64_t>(aggs.int64(i, 0));
            const auto version = static_cast<std::uint64_t>(aggs.int64(i, 1));
            if (out.aggregate_versions[number] == 0 && version != 0) ++out.aggregates_tracked;
            out.aggregate_versions[number] = version;
        }
        return out;
    }

    /// BEGIN, then the checkpoint row locked until commit (pipelined: both in one round trip, with
    /// the queries `opening` adds). In the same statement, a session without a slice looks for
    /// partition checkpoints (see `begin`).
    template <class Opening>
    void open_transaction(bool lifecycle, Opening&& opening) {
        std::optional<detail::pg::connection::pipeline> pl;
        if (pipelined_) {
            pl.emplace(db_);
            pl->add_query("BEGIN");
        } else {
            db_.exec("BEGIN");
        }
        in_transaction_ = true;
        buffer_->active = true;
        buffer_->immediate = lifecycle;
        buffer_->conflict.reset();
        try {
            detail::pg::params p;
            if (lifecycle) {
                // Two processes that init (reset, delete) the version at once take turns: the
                // second sees what the first committed (the runner's init is then a no-op). One
                // turn for all the projection's versions ("tickets" for "tickets_v2"): two
                // hand-overs of emission between them, each of which locks the checkpoints of the
                // other versions that are live, never hold one each and wait for the other's, and
                // the second reads the windows and live flags as the first left them.
                const std::string_view name = projection_;
                const auto v = name.rfind("_v");
                const bool versioned = v != std::string_view::npos && v + 2 < name.size() &&
                                       name.find_first_not_of("0123456789", v + 2) == std::string_view::npos;
                p.add(static_cast<std::int64_t>(detail::pg::lifecycle_lock_class))
                    .add(versioned ? name.substr(0, v) : name);
                send_checked(pl ? &*pl : nullptr, "pj_lock_lifecycle",
                             "SELECT pg_advisory_xact_lock($1::integer, hashtext(current_schema() || '.' || $2))", p,
                             [](const auto& get) { (void)get(); });
                p.clear();
            }
            p.add(key_).add(projection_ + "#");
            detail::pg::result r;
            send_checked(pl ? &*pl : nullptr, "pj_lock_checkpoint",
                         "SELECT (SELECT position FROM projectionist_checkpoints WHERE projection = $1 FOR "
                         "UPDATE), (SELECT projection FROM projectionist_checkpoints WHERE starts_with(projection, "
                         "$2) LIMIT 1)",
                         p, [&r](const auto& get) { r = get(); });
            if (pl) {
                // What the opening reads joins the round trip.
                struct joined {
                    detail::pg::write_behind& buffer;
                    ~joined() { buffer.opening = nullptr; }
                } until_run{*buffer_};
                buffer_->opening = &*pl;
                opening();
                buffer_->opening = nullptr;
                pl->run();
            }
            const bool has_row = !r.is_null(0, 0);
            // The compare of commit's compare-and-set, made early: the row stays locked, so the
            // answer holds until commit, and a batch that cannot commit sends no table writes.
            const bool moved = has_position_row_
                                   ? !has_row || static_cast<std::uint64_t>(r.int64(0, 0)) != committed_position_
                                   : has_row;
            if (moved) buffer_->conflict = conflict_message();
            if (!lifecycle && slice_.whole() && !r.is_null(0, 1))
                throw error(fmt::format(
                    "projectionist: '{}' is run in partitions by workers (checkpoint '{}'); a runner without a slice "
                    "would apply their events again from its own checkpoint, so it applies nothing. Run it through "
                    "worker<...> or with runner_options::slice; without a slice use it for init, status, reset and "
                    "remove only",
                    projection_, r.text(0, 1)));
            if (!pl) opening();
        } catch (...) {
            pl.reset();  // out of pipeline mode before the ROLLBACK
            rollback();
            throw;
        }
    }

    /// Runs `sql`, prepared under `name`, and passes `check` a function that returns its result
    /// or throws its error: at once, or (`pl` not null) when `pl` runs.
    template <class Check>
    void send_checked(detail::pg::connection::pipeline* pl, const char* name, const char* sql,
                      const detail::pg::params& p, Check check) {
        if (pl == nullptr) {
            check([&] { return run(name, sql, p); });
            return;
        }
        pl->add_prepared(name, sql, p,
                         [check](detail::pg::connection::pipeline::answer& a) { check([&a] { return a.take(); }); });
    }

    /// The checkpoint's compare-and-set (or its first row), then the positions of the aggregates
    /// the batch changed: at once, or added to `pl`.
    void write_checkpoint(const checkpoint& cp, std::span<const std::uint64_t> changed_aggregates, bool no_row,
                          detail::pg::connection::pipeline* pl) {
        detail::pg::params p;
        if (no_row) {
            // nothing to write
        } else if (has_position_row_ && slice_.whole() && !buffer_->immediate) {
            // A batch without a slice: `begin` found no partition checkpoints, but one seeded
            // while this batch waited for the checkpoint's lock is not in that statement's
            // snapshot. This statement's is newer: such a batch commits nothing (a conflict,
            // and the next `begin` refuses with the reason).
            p.add(static_cast<std::int64_t>(cp.position))
                .add(key_)
                .add(static_cast<std::int64_t>(committed_position_))
                .add(projection_ + "#");
            send_checked(pl, "pj_move_whole_checkpoint",
                         "UPDATE projectionist_checkpoints SET position = $1 WHERE projection = $2 AND position = $3 "
                         "AND NOT EXISTS (SELECT 1 FROM projectionist_checkpoints WHERE starts_with(projection, $4))",
                         p, [this](const auto& get) {
                             if (get().affected() != 1) throw checkpoint_conflict(conflict_message());
                         });
        } else if (has_position_row_) {
            p.add(static_cast<std::int64_t>(cp.position)).add(key_).add(static_cast<std::int64_t>(committed_position_));
            // An UPDATE that matches no row is no error: the COMMIT waits for this answer.
            send_checked(pl, "pj_move_checkpoint",
                         "UPDATE projectionist_checkpoints SET position = $1 WHERE projection = $2 AND position = $3",
                         p, [this](const auto& get) {
                             if (get().affected() != 1) throw checkpoint_conflict(conflict_message());
                         });
        } else {
            p.add(key_).add(static_cast<std::int64_t>(cp.position));
            send_checked(pl, "pj_insert_checkpoint",
                         "INSERT INTO projectionist_checkpoints(projection, position) VALUES ($1, $2)", p,
                         [this](const auto& get) {
                             try {
                                 (void)get();
                             } catch (const postgres_error& e) {
                                 if (e.unique_violation()) throw checkpoint_conflict(conflict_message());
                                 throw;
                             }
                         });
        }
        if (!changed_aggregates.empty()) save_aggregates(cp, changed_aggregates, pl);
    }

    /// Runs `sql`, prepared once on this session's connection under `name`.
    detail::pg::result run(const char* name, const char* sql, const detail::pg::params& p) {
        db_.prepare(name, sql);
        return db_.execute(name, p);
    }

    /// One statement for every aggregate the batch moved: arrays of numbers and versions,
    /// without duplicates (ON CONFLICT may not touch a row twice in one statement).
    void save_aggregates(const checkpoint& cp, std::span<const std::uint64_t> changed,
                         detail::pg::connection::pipeline* pl) {
        numbers_.assign(changed.begin(), changed.end());
        std::sort(numbers_.begin(), numbers_.end());
        numbers_.erase(std::unique(numbers_.begin(), numbers_.end()), numbers_.end());
        std::string numbers = "{", versions = "{";
        for (const std::uint64_t n : numbers_) {
            if (numbers.size() > 1) {
                numbers += ',';
                versions += ',';
            }
            detail::pg::append_integer(numbers, static_cast<std::int64_t>(n));
            detail::pg::append_integer(versions, static_cast<std::int64_t>(cp.version_of(n)));
        }
        numbers += '}';
        versions += '}';
        detail::pg::params p;
        p.add(key_).add(numbers).add(versions);
        send_checked(
            pl, "pj_save_aggregates",
            "INSERT INTO projectionist_aggregate_checkpoints(projection, aggregate_number, version) SELECT $1, "
            "n, v FROM unnest($2::bigint[], $3::bigint[]) AS u(n, v) ON CONFLICT (projection, "
            "aggregate_number) DO UPDATE SET version = excluded.version",
            p, [](const auto& get) { (void)get(); });
    }

    void end_transaction() noexcept {
        in_transaction_ = false;
        reset_in_transaction_ = false;
        buffer_->active = false;
        buffer_->immediate = false;
        buffer_->conflict.reset();
        buffer_->forget_all();
    }

    [[nodiscard]] std::string conflict_message() const {
        return fmt::format(
            "projectionist: the checkpoint of '{}' was moved by another runner (expected position {}); "
            "this batch was not written",
            key_, committed_position_);
    }

    /// The fence: the lease row, still ours, locked FOR SHARE until the batch commits or rolls back
    /// (checked at once, or when `pl` runs, before the answers of what follows it).
    void check_fence(detail::pg::connection::pipeline* pl) {
        detail::pg::params p;
        p.add(fence_->projection)
            .add(static_cast<std::int64_t>(fence_->partition))
            .add(fence_->holder)
            .add(static_cast<std::int64_t>(fence_->epoch));
        send_checked(pl, "pj_check_fence",
                     "SELECT 1 FROM projectionist_leases WHERE projection = $1 AND partition = $2 AND holder = "
                     "$3 AND epoch = $4 AND expires_at > clock_timestamp() FOR SHARE",
                     p, [this, f = *fence_](const auto& get) {
                         if (get().rows() == 1) return;
                         fenced_out_ = true;
                         throw lease_lost(fmt::format(
                             "projectionist: '{}': worker '{}' no longer holds the lease of partition {} with epoch "
                             "{} (it expired or another worker claimed it); this batch was not written",
                             key_, f.holder, f.partition, f.epoch));
                     });
    }

    /// A partition without a checkpoint row: refuses if the projection has checkpoints for another
    /// partition count, then copies the projection's unsliced checkpoint (position and aggregate
    /// positions), if any, to the partition's key. Returns whether it copied one.
    bool seed_partition() {
        detail::pg::params p;
        p.add(projection_ + "#");
        const auto keys =
            db_.query("SELECT projection FROM projectionist_checkpoints WHERE starts_with(projection, $1) LIMIT 1", p);
        if (keys.rows() != 0) {
            const std::string_view other = keys.text(0, 0);
            const auto slash = other.rfind('/');
            const std::string_view count = slash == std::string_view::npos ? other : other.substr(slash + 1);
            if (count != std::to_string(slice_.count))
                throw error(fmt::format(
                    "projectionist: '{}' has checkpoints for another partition count ('{}'), not {}: its events "
                    "would be applied twice; run it with the same count, or reset it first",
                    projection_, other, slice_.count));
        }
        const bool outer = !in_transaction_;
        if (outer) db_.exec("BEGIN");
        try {
            detail::pg::params q;
            q.add(projection_).add(key_);
            // FOR SHARE: a batch of a runner without a slice that holds the row (this is a move
            // from one runner to workers) commits first, and its position is the one copied; the
            // aggregates' versions are read after it, in the next statement.
            const auto copied = db_.query(
                "INSERT INTO projectionist_checkpoints(projection, position) SELECT $2, position FROM "
                "projectionist_checkpoints WHERE projection = $1 FOR SHARE ON CONFLICT (projection) DO NOTHING",
                q);
            if (copied.affected() != 0)
                db_.query(
                    "INSERT INTO projectionist_aggregate_checkpoints(projection, aggregate_number, version) SELECT "
                    "$2, aggregate_number, version FROM projectionist_aggregate_checkpoints WHERE projection = $1 "
                    "ON CONFLICT (projection, aggregate_number) DO NOTHING",
                    q);
            if (outer) db_.exec("COMMIT");
            return copied.affected() != 0;
        } catch (...) {
            if (outer) {
                try {
                    db_.exec("ROLLBACK");
                } catch (...) {
                    // The connection is lost: the server rolls the transaction back itself.
                }
            }
            throw;
        }
    }

    std::string conninfo_;
    partition_slice slice_;
    std::string key_;  // the checkpoint's: the projection's name, or its partition's key
    std::optional<lease_fence> fence_;
    bool fenced_out_ = false;
    bool pipelined_ = true;                             // postgres_options::pipeline
    std::unique_ptr<detail::pg::write_behind> buffer_;  // boxed: table handles point at it
    std::vector<std::uint64_t> numbers_;
};

inline postgres_storage::session postgres_storage::open(std::string_view projection) {
    return session(*this, projection);  // guaranteed copy elision: sessions never move
}

inline postgres_storage::session postgres_storage::open(std::string_view projection, partition_slice slice) {
    detail::check_slice(slice, projection);
    return session(*this, projection, slice);
}

}  // namespace projectionist
