#pragma once

#include <poll.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/unordered/unordered_flat_map.hpp>

#include <projectionist/detail/pg_api.hpp>
#include <projectionist/detail/pg_schema.hpp>
#include <projectionist/detail/sql_event_store.hpp>
#include <projectionist/error.hpp>
#include <projectionist/event/codec.hpp>
#include <projectionist/event/envelope.hpp>
#include <projectionist/event/event.hpp>
#include <projectionist/event/json_codec.hpp>
#include <projectionist/event/schema.hpp>
#include <projectionist/event/stream.hpp>
#include <projectionist/store/aggregate_numbers.hpp>
#include <projectionist/store/append_batch.hpp>
#include <projectionist/store/event_type.hpp>
#include <projectionist/store/expected_version.hpp>
#include <projectionist/store/postgres_event_writer.hpp>
#include <projectionist/store/stored_record.hpp>

namespace projectionist {

namespace detail::pg {
/// Big-endian integers of binary-format results (int8, int4).
inline std::int64_t binary_int64(const char* p) noexcept {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return static_cast<std::int64_t>(v);
}
inline std::int32_t binary_int32(const char* p) noexcept {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return static_cast<std::int32_t>(v);
}
}  // namespace detail::pg

/// The event log in a PostgreSQL schema: many writers and readers, across processes and hosts.
///
/// Events are encoded by `Codec` (binary_codec into a bytea column by default; json_codec into a
/// jsonb column, so that `select type, payload_json from events` in psql shows the log), with
/// their schema version. Type names are interned into dense ids and aggregates into numbers, as
/// in the SQLite store (an aggregate number, like a position, is not reused when the append that
/// took it rolls back).
///
///     projectionist::postgres_event_store store("postgresql://app@db/app", {.schema = "orders"});
///     store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
///
/// Concurrent appends, gap-free reading. Appends run in parallel: each reserves its positions
/// for a few microseconds and holds nothing else but its aggregates' rows to its commit, so an
/// append inside a longer transaction (an emission in a runner's batch, an application's own
/// transaction) stops no other appender (store/postgres_event_writer.hpp). Positions increase
/// but commit in any order, so a reader asking for "events after P" is given only positions
/// below the lowest block still reserved by an open transaction (each append holds an advisory
/// lock on its block to its commit), read with a snapshot taken after that horizon. It never
/// moves past a position that can still commit, and never sees an event twice; an append that
/// rolls back leaves a hole in the positions. The price: an append whose transaction stays open
/// holds back the readers of the positions reserved after it, until it ends (nothing else on the
/// server does); README.md (Architecture) has the argument.
/// Each append's commit also sends a NOTIFY, which wakes `wait_for_events` in every process.
///
/// An append inside an open transaction on the same connection runs as a savepoint of it.
template <class Codec = binary_codec>
class basic_postgres_event_store : public detail::sql_event_store<basic_postgres_event_store<Codec>, Codec> {
    using base = detail::sql_event_store<basic_postgres_event_store<Codec>, Codec>;
    friend base;
    using base::mutex_, base::types_;

public:
    using typename base::batch, typename base::record, typename base::type_entry, typename base::append_batch;

    /// Appends events through one connection (its own prepared statements;
    /// store/postgres_event_writer.hpp). The store has one for its own connection; a runner
    /// whose storage is in the same database makes one on its session's connection, so that
    /// emitted events commit in the batch's transaction.
    using writer = detail::pg::event_writer<Codec>;

    /// Connects to `conninfo` (a libpq connection string or URI) and opens (or creates) the log
    /// in `options.schema`. Throws `projectionist::error` for a schema that is not
    /// projectionist's or has a newer version, without modifying it, and for a log written with
    /// the other codec.
    explicit basic_postgres_event_store(std::string conninfo, postgres_options options = {})
        : conninfo_(std::move(conninfo)),
          options_(std::move(options)),
          db_(detail::pg::open_database(conninfo_, options_)),
          sql_(options_.schema, schema_oid(db_, options_.schema)),
          writer_(db_, sql_, conninfo_, options_.max_payload_bytes) {
        check_codec();
        auto id = db_.query(
            "SELECT pg_postmaster_start_time()::text, (SELECT oid FROM pg_catalog.pg_database WHERE datname = "
            "current_database()), current_setting('port')");
        server_identity_ = fmt::format("{}/{}/{}", id.text(0, 0), id.text(0, 1), id.text(0, 2));
        db_.prepare(sql_.prefix + "head", sql_.head);
        db_.prepare(sql_.prefix + "horizon", sql_.horizon);
        db_.prepare(sql_.prefix + "read", sql_.read);
        db_.prepare(sql_.prefix + "read_range", sql_.read_range);
        db_.prepare(sql_.prefix + "read_aggregate", sql_.read_aggregate);
        db_.prepare(sql_.prefix + "load_types", sql_.load_types);
        db_.prepare(sql_.prefix + "aggregates_by_number",
                    fmt::format("SELECT number, stream, aggregate_id FROM {}.projectionist_aggregates WHERE number = "
                                "ANY($1::bigint[])",
                                detail::pg::quote(options_.schema)));
    }

    basic_postgres_event_store(const basic_postgres_event_store&) = delete;
    basic_postgres_event_store& operator=(const basic_postgres_event_store&) = delete;

    [[nodiscard]] const std::string& conninfo() const noexcept { return conninfo_; }
    [[nodiscard]] const postgres_options& options() const noexcept { return options_; }
    [[nodiscard]] const std::string& schema() const noexcept { return options_.schema; }
    /// The store's connection. Not thread-safe on its own: hold `mutex()` while using it.
    [[nodiscard]] detail::pg::connection& connection() noexcept { return db_; }

    using base::append;  // one aggregate's events, or a batch of many: see detail/sql_event_store.hpp

    /// A writer that appends to this log through `db`, a connection to the same database
    /// (inside `db`'s open transaction, if any). The writer uses the store's statements: it must
    /// not outlive the store.
    [[nodiscard]] writer writer_on(detail::pg::connection& db) const {
        return writer(db, sql_, conninfo_, options_.max_payload_bytes);
    }

    /// Whether `db` is connected to this log's server and database, so that a writer on it
    /// commits events into this log in `db`'s own transaction. (The schema need not be `db`'s:
    /// the writer names this log's schema in every statement.)
    [[nodiscard]] bool same_database(const detail::pg::connection& db) const {
        auto id = db.query(
            "SELECT pg_postmaster_start_time()::text, (SELECT oid FROM pg_catalog.pg_database WHERE datname = "
            "current_database()), current_setting('port')");
        return fmt::format("{}/{}/{}", id.text(0, 0), id.text(0, 1), id.text(0, 2)) == server_identity_;
    }

    /// Position of the last event a reader can be given now (every lower position settled: see
    /// the class comment), 0 when there is none.
    [[nodiscard]] std::uint64_t head() const {
        std::lock_guard lock(mutex_);
        check_isolation();
        return static_cast<std::uint64_t>(db_.execute(sql_.prefix + "head").int64(0, 0));
    }

    /// How many aggregate numbers the log gave out: the highest plus one (one look-up at the end of
    /// the table's key; numbers come from a sequence from 0, so an append rolled back leaves a
    /// gap). A bulk backfill sizes its row stores from it, and a per-aggregate runner its positions.
    [[nodiscard]] std::uint64_t aggregate_count() const {
        std::lock_guard lock(mutex_);
        auto r = db_.query(fmt::format("SELECT coalesce(max(number) + 1, 0) FROM {}.projectionist_aggregates",
                                       detail::pg::quote(options_.schema)));
        const std::int64_t n = r.int64(0, 0);
        return n > 0 ? static_cast<std::uint64_t>(n) : 0;
    }

    /// Reads may run beside the use of earlier reads' records and of storage sessions on another
    /// thread (has_concurrent_read): the store reads on a connection of its own, under its lock,
    /// into the batch it is given.
    static constexpr bool reads_concurrently = true;

    /// Fills `out` with up to `max` records after position `after`, in global order: only events
    /// whose every lower position is settled (see the class comment), so a reader that moves on
    /// to the last position it saw never skips an event committed late.
    void read(std::uint64_t after, std::size_t max, batch& out) const {
        std::lock_guard lock(mutex_);
        out.clear();
        const std::optional<std::int64_t> horizon = horizon_past(after);
        if (!horizon) return;
        detail::pg::params p;
        p.add(detail::sql_int64(after)).add(detail::sql_int64(max)).add(*horizon);
        fill_all(db_.execute(sql_.prefix + "read", p, true), out);
    }

    /// Fills `out` with up to `max` records of the aggregates in `range`, with `after < position
    /// <= through`, in global order, below the same horizon as `read`. One scan of the positions'
    /// range: the other aggregates' events are passed over by the server, without being sent.
    void read_aggregates(std::uint64_t after, std::uint64_t through, aggregate_numbers range, std::size_t max,
                         batch& out) const {
        std::lock_guard lock(mutex_);
        out.clear();
        if (through <= after) return;
        const std::optional<std::int64_t> horizon = horizon_past(after);
        if (!horizon) return;
        detail::pg::params p;
        p.add(detail::sql_int64(after))
            .add(detail::sql_int64(max))
            .add(*horizon)
            .add(detail::sql_int64(through))
            .add(detail::sql_int64(range.first))
            .add(detail::sql_int64(range.last));  // the open end: the largest number
        fill_all(db_.execute(sql_.prefix + "read_range", p, true), out);
    }

    /// Every event of one aggregate, in version order.
    template <stream_type Stream>
    [[nodiscard]] batch read_aggregate(Stream, std::string_view aggregate_id) const {
        std::lock_guard lock(mutex_);
        batch out;
        detail::pg::params p;
        p.add(Stream::name).add(aggregate_id);
        fill_all(db_.execute(sql_.prefix + "read_aggregate", p, true), out);
        return out;
    }

    /// Blocks until the head passes `after`, `timeout` elapses or `stop` is requested; woken by
    /// the NOTIFY each append sends at commit (LISTEN on a connection of its own, opened on the
    /// first wait), so a follower reacts within milliseconds without polling the table.
    bool wait_for_events(std::uint64_t after, std::chrono::milliseconds timeout, std::stop_token stop) const {
        std::lock_guard wait_lock(listen_mutex_);
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        if (!listener_) {
            listener_ = detail::pg::connection(conninfo_);
            listener_.exec(fmt::format("LISTEN {}", detail::pg::quote(sql_.notify_channel)));
        }
        for (;;) {
            // Drained before the head is read: a commit after that read still wakes the poll.
            if (!drain_notifications()) {
                listener_ = detail::pg::connection();  // lost: reconnect on the next wait
                return head() > after;
            }
            if (head() > after) return true;
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0 || stop.stop_requested()) return false;
            // Short slices, so that a stop request is seen soon.
            pollfd fd{PQsocket(listener_.get()), POLLIN, 0};
            ::poll(&fd, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 50)));
        }
    }

private:
    /// The reads' guard, with the mutex held: the horizon first (a read's own statement then takes
    /// a later snapshot, in which every append that reserved below the horizon has ended), or
    /// nullopt when nothing after `after` is settled yet.
    std::optional<std::int64_t> horizon_past(std::uint64_t after) const {
        check_isolation();
        if (after == 0) check_positions();
        const std::int64_t horizon = db_.execute(sql_.prefix + "horizon").int64(0, 0);
        if (horizon <= detail::sql_int64(after) + 1) return std::nullopt;
        return horizon;
    }

    static std::uint32_t schema_oid(const detail::pg::connection& db, const std::string& schema) {
        detail::pg::params p;
        p.add(schema);
        auto r = db.query("SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = $1", p);
        if (r.rows() == 0)
            throw error(fmt::format("projectionist: postgres schema {} vanished while opening the event log",
                                    detail::pg::quote(schema)));
        return static_cast<std::uint32_t>(r.int64(0, 0));
    }

    /// The log's codec is recorded on first use; a store of the other codec is refused. An
    /// existing log is only read here.
    void check_codec() {
        const std::string settings = detail::pg::quote(options_.schema) + ".projectionist_settings";
        auto r = db_.query(fmt::format("SELECT value FROM {} WHERE key = 'codec'", settings));
        if (r.rows() == 0) {
            detail::pg::params p;
            p.add(Codec::name);
            db_.query(
                fmt::format("INSERT INTO {}(key, value) VALUES ('codec', $1) ON CONFLICT (key) DO NOTHING", settings),
                p);
            r = db_.query(fmt::format("SELECT value FROM {} WHERE key = 'codec'", settings));
        }
        if (r.text(0, 0) != Codec::name)
            throw error(
                fmt::format("projectionist: the event log in postgres schema {} is encoded with the {} codec, but "
                            "this store uses the {} codec",
                            detail::pg::quote(options_.schema), r.text(0, 0), Codec::name));
    }

    bool drain_notifications() const {
        if (PQconsumeInput(listener_.get()) == 0) return false;
        while (PGnotify* n = PQnotifies(listener_.get())) PQfreemem(n);
        return true;
    }

    /// Loads interned types written since the last look (by this or another process).
    void load_types() const {
        detail::pg::params p;
        p.add(static_cast<std::int64_t>(types_.size()));
        auto r = db_.execute(sql_.prefix + "load_types", p);
        for (int i = 0; i < r.rows(); ++i) this->intern_loaded(r.int64(i, 0), r.text(i, 1), r.text(i, 2));
    }

    /// Binary-format rows of `read`/`read_aggregate` into `out`, in two passes: each row into a
    /// record (`fill`), then each record's aggregate number against its aggregate
    /// (`check_aggregates`). A read that throws leaves `out` empty: no record goes unchecked.
    void fill_all(const detail::pg::result& r, batch& out) const {
        PGresult* res = r.get();
        const int rows = r.rows();
        const std::size_t first = out.size();
        recheck_.clear();
        try {
            for (int i = 0; i < rows; ++i) fill(res, i, out);
            check_aggregates(out, first);
        } catch (...) {
            out.clear();
            throw;
        }
    }

    /// Row `i` into the batch's next record: no text parsing, no hex. What a store never writes
    /// (a type id with no type, a field out of range, a missing payload) marks the record,
    /// naming position and field, instead of being used (see sql_event_store::record_defect).
    /// The aggregate number is checked by `check_aggregates`.
    void fill(PGresult* res, int i, batch& out) const {
        record& rec = out.next();
        const std::int64_t position = detail::pg::binary_int64(PQgetvalue(res, i, 0));
        const std::int64_t type_id = detail::pg::binary_int32(PQgetvalue(res, i, 1));
        const type_entry& type = this->type_of(type_id);
        const std::int64_t number = detail::pg::binary_int64(PQgetvalue(res, i, 2));
        const std::string_view id(PQgetvalue(res, i, 6), static_cast<std::size_t>(PQgetlength(res, i, 6)));
        const std::int64_t version = detail::pg::binary_int64(PQgetvalue(res, i, 3));
        const std::int64_t schema = detail::pg::binary_int32(PQgetvalue(res, i, 4));
        const char* payload = PQgetvalue(res, i, 7);
        auto size = static_cast<std::size_t>(PQgetlength(res, i, 7));
        std::string defect = this->record_defect(position, type_id, type, number, true, id, version, schema);
        if (defect.empty() && PQgetisnull(res, i, 7)) [[unlikely]]
            defect = fmt::format(
                "the event at position {} (aggregate '{}', type '{}') has no {} payload: the "
                "log mixes codecs",
                position, id, type.name, Codec::name);
        if constexpr (Codec::text) {
            // jsonb's binary format: a version byte (1), then the document as text.
            if (size == 0 || payload[0] != 1) {
                if (defect.empty())
                    defect = fmt::format(
                        "the event at position {} has a jsonb payload in an unknown binary format version", position);
            } else {
                ++payload;
                --size;
            }
        }
        // A record marked for a later field is marked for its aggregate instead if that is wrong
        // too, as one check per record in field order would.
        if (!defect.empty() && type.known && position >= 1) [[unlikely]]
            recheck_.emplace_back(out.size() - 1, &type);
        this->set_record(rec, position, type, number, version, schema, detail::pg::binary_int64(PQgetvalue(res, i, 5)),
                         std::move(defect));
        rec.aggregate_id_buffer().assign(id);
        rec.payload_buffer().assign(payload, size);
    }

    /// Marks each record of `out` from `first` on whose aggregate number is not its aggregate's.
    /// The numbers of a backfill come in random order, so the look-up of a record a few ahead is
    /// started before the current one is checked. Numbers not known yet (see
    /// sql_event_store::aggregate_known) are looked up in one round trip, then their records
    /// checked: a backfill looks each number up once.
    void check_aggregates(batch& out, std::size_t first) const {
        constexpr std::size_t ahead = 16;
        const std::size_t n = out.size();
        pending_.clear();
        for (std::size_t i = first; i < n; ++i) {
            if (i + ahead < n) this->prefetch_aggregate(out[i + ahead].aggregate_number());
            const type_entry& type = out[i].type();
            if (!type.known) continue;  // marked by `fill`, or a type with no row
            check_aggregate(out, i, type);
        }
        for (const auto& [index, type] : recheck_) check_aggregate(out, index, *type);
        if (pending_.empty()) return;
        std::vector<std::string> numbers;
        numbers.reserve(pending_.size());
        for (const auto& entry : pending_) numbers.push_back(std::to_string(out[entry.first].aggregate_number()));
        detail::pg::params p;
        p.add(detail::pg::text_array(numbers));
        auto found = db_.execute(sql_.prefix + "aggregates_by_number", p);
        for (int i = 0; i < found.rows(); ++i)
            this->remember_aggregate(found.int64(i, 0), found.text(i, 1), found.text(i, 2));
        for (const auto& [index, type] : pending_) {
            record& r = out[index];
            if (!this->aggregate_known(static_cast<std::int64_t>(r.aggregate_number()), *type, r.aggregate_id())
                     .value_or(false)) [[unlikely]]
                mark_aggregate(r);
        }
    }
    /// Checks record `index` of `out` (of `type`) if its number is known, or keeps it in
    /// `pending_` for the look-up.
    void check_aggregate(batch& out, std::size_t index, const type_entry& type) const {
        record& r = out[index];
        const auto known =
            this->aggregate_known(static_cast<std::int64_t>(r.aggregate_number()), type, r.aggregate_id());
        if (!known)
            pending_.emplace_back(index, &type);
        else if (!*known) [[unlikely]]
            mark_aggregate(r);
    }
    void mark_aggregate(record& r) const {
        r.set_defect(this->unknown_type_,
                     this->aggregate_defect(static_cast<std::int64_t>(r.position()),
                                            static_cast<std::int64_t>(r.aggregate_number()), r.aggregate_id()));
    }

    /// The guard needs a snapshot per statement: inside a transaction on the store's connection,
    /// only READ COMMITTED gives one (a REPEATABLE READ snapshot may predate the horizon).
    void check_isolation() const {
        if (!db_.in_transaction()) return;
        auto r = db_.query("SELECT current_setting('transaction_isolation')");
        if (r.text(0, 0) != "read committed")
            throw error(fmt::format(
                "projectionist: the event log in postgres schema {} is read in a {} transaction on the store's "
                "connection; reads need READ COMMITTED (each statement its own snapshot), or no transaction",
                detail::pg::quote(options_.schema), r.text(0, 0)));
    }

    /// An event at a position below 1 is never read (reads go after a position >= 0): refuse
    /// the log instead of passing over it in silence.
    void check_positions() const {
        auto r = db_.query(
            fmt::format("SELECT min(position) FROM {}.projectionist_events", detail::pg::quote(options_.schema)));
        if (r.rows() != 0 && !r.is_null(0, 0) && r.int64(0, 0) < 1)
            throw error(fmt::format(
                "projectionist: the event log in postgres schema {} holds an event at position {}: positions "
                "start at 1, so it would never be read",
                detail::pg::quote(options_.schema), r.int64(0, 0)));
    }

    std::optional<std::pair<std::uint64_t, std::uint64_t>> find_aggregate(std::string_view stream,
                                                                          std::string_view id) const {
        std::lock_guard lock(mutex_);
        detail::pg::params p;
        p.add(stream).add(id);
        auto r = db_.query(fmt::format("SELECT number, version FROM {}.projectionist_aggregates WHERE stream = $1 "
                                       "AND aggregate_id = $2",
                                       detail::pg::quote(options_.schema)),
                           p);
        std::optional<std::pair<std::uint64_t, std::uint64_t>> out;
        if (r.rows() != 0)
            out.emplace(static_cast<std::uint64_t>(r.int64(0, 0)), static_cast<std::uint64_t>(r.int64(0, 1)));
        return out;
    }

    std::string conninfo_;
    postgres_options options_;
    detail::pg::connection db_;
    detail::pg::log_statements<Codec> sql_;
    std::string server_identity_;
    writer writer_;
    mutable std::mutex listen_mutex_;
    mutable detail::pg::connection listener_;
    /// Records of the batch being read that `fill` marked although their type is known (to check
    /// their aggregate too), and records whose aggregate number is not looked up yet: index and
    /// type, for `check_aggregates`.
    mutable std::vector<std::pair<std::size_t, const type_entry*>> recheck_, pending_;
};

/// The PostgreSQL event log with the default (binary) codec.
using postgres_event_store = basic_postgres_event_store<binary_codec>;
/// The PostgreSQL event log with the JSON codec: payloads in a jsonb column, readable with psql.
using postgres_json_event_store = basic_postgres_event_store<json_codec>;

}  // namespace projectionist
