#pragma once

#include <poll.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
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
#include <projectionist/store/append_batch.hpp>
#include <projectionist/store/event_type.hpp>
#include <projectionist/store/expected_version.hpp>
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
/// their schema version. Type names and aggregates are interned into dense ids and numbers, as
/// in the SQLite store.
///
///     projectionist::postgres_event_store store("postgresql://app@db/app", {.schema = "orders"});
///     store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
///
/// Gap-free reading. A reader asks for "events after position P, in order" and moves its
/// checkpoint to the last one it saw, so it must never see position N+1 while N can still
/// commit. With a sequence that is not guaranteed: transactions take positions in one order and
/// commit in another, and a reader that sees 12 before 11 commits skips 11 for ever. (Filtering
/// by `xid < pg_snapshot_xmin` does not fix that on its own: a transaction with a higher xid can
/// take a lower position.) Here appends are serialized instead: every append transaction takes
/// `pg_advisory_xact_lock(append_lock_class, <schema oid>)` before it reads the head, and the
/// lock is released only after its commit (or rollback) is visible to every new snapshot. So
/// positions are taken and committed in the same order; a snapshot that sees N+1 sees N; an
/// aborted append leaves no hole, because the next one takes max(position) + 1 under the lock.
/// The price: appends to one schema's log run one at a time, from the lock to the commit (so
/// the append rate is bounded by one commit round trip at a time), and an append inside a longer
/// transaction (an emission in a runner's batch, an application's own transaction) holds every
/// other appender until that transaction ends; they wait up to `postgres_options::lock_timeout`.
/// Readers never take the lock. Each append also sends a NOTIFY at commit, which wakes
/// `wait_for_events` in every process.
///
/// An append inside an open transaction on the same connection runs as a savepoint of it; that
/// transaction must be READ COMMITTED (PostgreSQL's default), because a REPEATABLE READ snapshot
/// taken before the lock would not see the latest position (the append would then fail on the
/// primary key, writing nothing).
template <class Codec = binary_codec>
class basic_postgres_event_store : public detail::sql_event_store<basic_postgres_event_store<Codec>, Codec> {
    using base = detail::sql_event_store<basic_postgres_event_store<Codec>, Codec>;
    friend base;
    using base::mutex_;
    using base::types_;

public:
    using typename base::batch;
    using typename base::record;
    using typename base::type_entry;

private:
    /// The log's SQL, with the schema quoted into every table name (the statements do not depend
    /// on a connection's search_path), and the names they are prepared under.
    struct statements {
        std::string schema;  // unquoted
        std::int32_t append_lock = 0;
        std::string notify_channel;
        std::string prefix;  // of prepared statement names: one set per schema on a connection

        std::string lock, find_aggregate, find_type, add_type, add_aggregate, insert_event, bump_aggregate, head, read,
            read_aggregate, load_types, find_aggregates, add_aggregates, bump_aggregates, copy_events;

        statements(std::string schema_name, std::uint32_t schema_oid)
            : schema(std::move(schema_name)),
              append_lock(static_cast<std::int32_t>(schema_oid)),
              notify_channel(fmt::format("projectionist_events_{}", schema_oid)),
              prefix(fmt::format("projectionist_{}_{}_", schema_oid, Codec::name)) {
            const std::string s = detail::pg::quote(schema);
            const std::string payload_column = Codec::text ? "payload_json" : "payload";
            lock = fmt::format("SELECT pg_advisory_xact_lock({}, {})", detail::pg::append_lock_class, append_lock);
            // The head comes with the aggregate: one round trip, after the lock.
            find_aggregate = fmt::format(
                "SELECT (SELECT coalesce(max(position), 0) FROM {0}.projectionist_events), a.number, a.version "
                "FROM (SELECT 1) AS one LEFT JOIN {0}.projectionist_aggregates a ON a.stream = $1 AND "
                "a.aggregate_id = $2",
                s);
            find_type = fmt::format("SELECT id FROM {}.projectionist_event_types WHERE stream = $1 AND name = $2", s);
            add_type = fmt::format(
                "INSERT INTO {0}.projectionist_event_types(id, stream, name) VALUES ((SELECT coalesce(max(id), 0) + 1 "
                "FROM {0}.projectionist_event_types), $1, $2) RETURNING id",
                s);
            add_aggregate = fmt::format(
                "INSERT INTO {0}.projectionist_aggregates(number, stream, aggregate_id, version) VALUES ((SELECT "
                "coalesce(max(number) + 1, 0) FROM {0}.projectionist_aggregates), $1, $2, 0) RETURNING number",
                s);
            insert_event = fmt::format(
                "INSERT INTO {}.projectionist_events(position, stream, aggregate_id, aggregate_number, "
                "aggregate_version, type_id, schema_version, {}, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, "
                "$8, $9)",
                s, payload_column);
            bump_aggregate = fmt::format("UPDATE {}.projectionist_aggregates SET version = $1 WHERE number = $2", s);
            head = fmt::format("SELECT coalesce(max(position), 0) FROM {}.projectionist_events", s);
            const std::string columns = fmt::format(
                "position, type_id, aggregate_number, aggregate_version, schema_version, recorded_at, aggregate_id, "
                "{}",
                payload_column);
            read = fmt::format("SELECT {} FROM {}.projectionist_events WHERE position > $1 ORDER BY position LIMIT $2",
                               columns, s);
            read_aggregate = fmt::format(
                "SELECT {} FROM {}.projectionist_events WHERE stream = $1 AND aggregate_id = $2 ORDER BY "
                "aggregate_version",
                columns, s);
            load_types =
                fmt::format("SELECT id, stream, name FROM {}.projectionist_event_types WHERE id > $1 ORDER BY id", s);
            // A batch's aggregates, by their (1-based) index in the two arrays.
            find_aggregates = fmt::format(
                "SELECT k.ord, a.number, a.version FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(stream, "
                "aggregate_id, ord) JOIN {}.projectionist_aggregates a ON a.stream = k.stream AND a.aggregate_id = "
                "k.aggregate_id",
                s);
            // Numbered from the next free number, in array order: the smallest returned is the first's.
            add_aggregates = fmt::format(
                "INSERT INTO {0}.projectionist_aggregates(number, stream, aggregate_id, version) SELECT b.next + "
                "k.ord - 1, k.stream, k.aggregate_id, 0 FROM (SELECT coalesce(max(number) + 1, 0) AS next FROM "
                "{0}.projectionist_aggregates) AS b, unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(stream, "
                "aggregate_id, ord) RETURNING number",
                s);
            bump_aggregates = fmt::format(
                "UPDATE {}.projectionist_aggregates a SET version = v.version FROM unnest($1::bigint[], "
                "$2::bigint[]) AS v(number, version) WHERE a.number = v.number",
                s);
            copy_events = fmt::format(
                "COPY {}.projectionist_events(position, stream, aggregate_id, aggregate_number, aggregate_version, "
                "type_id, schema_version, {}, recorded_at) FROM STDIN (FORMAT binary)",
                s, payload_column);
        }
    };

    /// BEGIN … COMMIT, or a savepoint inside a transaction already open on the connection.
    /// Rolls back unless committed.
    class write_scope {
    public:
        explicit write_scope(const detail::pg::connection& db) : db_(&db), nested_(db.in_transaction()) {
            db_->exec(nested_ ? "SAVEPOINT projectionist_append" : "BEGIN");
        }
        write_scope(const write_scope&) = delete;
        write_scope& operator=(const write_scope&) = delete;
        void commit() {
            if (nested_) {
                db_->exec("RELEASE SAVEPOINT projectionist_append");
            } else {
                done_ = true;  // a failed COMMIT ends the transaction too
                db_->exec("COMMIT");
            }
            done_ = true;
        }
        ~write_scope() {
            if (done_) return;
            try {
                db_->exec(nested_ ? "ROLLBACK TO SAVEPOINT projectionist_append; RELEASE SAVEPOINT "
                                    "projectionist_append"
                                  : "ROLLBACK");
            } catch (...) {
                // The connection is unusable if even rollback fails; the next call will say so.
            }
        }

    private:
        const detail::pg::connection* db_;
        bool nested_;
        bool done_ = false;
    };

public:
    /// Events of many aggregates for one `append(append_batch&)` (store/append_batch.hpp), each
    /// encoded when added.
    using append_batch = detail::basic_append_batch<detail::encoded_slots<Codec>>;
    [[nodiscard]] append_batch new_batch() const { return {}; }

    /// Appends events through one connection (its own prepared statements). The store has one
    /// for its own connection; a runner whose storage is in the same database makes one on its
    /// session's connection, so that emitted events commit in the batch's transaction.
    class writer {
    public:
        /// Appends `events` to one aggregate of `Stream` in one transaction (a savepoint inside a
        /// transaction already open on the connection), if the aggregate is at `expected`;
        /// otherwise throws `version_conflict` and writes nothing.
        template <stream_type Stream, class... Events>
        append_result append(Stream, std::string_view aggregate_id, expected_version expected, Events&&... events) {
            static_assert(sizeof...(Events) > 0,
                          "projectionist: postgres_event_store::append needs at least one event");
            static_assert((stream_has_event<Stream, std::remove_cvref_t<Events>> && ...),
                          "projectionist: postgres_event_store::append(Stream, ...): every event must belong to "
                          "Stream's event list; append it to its own stream instead");
            const auto payloads = detail::encode_each<Codec>(events...);
            constexpr std::array<std::string_view, sizeof...(Events)> names{
                event_name_of<std::remove_cvref_t<Events>>...};
            for (std::size_t i = 0; i < payloads.size(); ++i) check_size(names[i], payloads[i].size());
            constexpr std::array<unsigned, sizeof...(Events)> versions{
                schema_version_of<std::remove_cvref_t<Events>>...};
            prepare_all();

            write_scope scope(*db_);
            // Serializes appends to this log until the transaction ends: see the class comment.
            db_->execute(name("lock"));
            detail::pg::params p;
            p.add(Stream::name).add(aggregate_id);
            auto found = db_->execute(name("find_aggregate"), p);
            const auto head = static_cast<std::uint64_t>(found.int64(0, 0));
            std::int64_t number = -1;
            std::uint64_t current = 0;
            if (!found.is_null(0, 1)) {
                number = found.int64(0, 1);
                current = static_cast<std::uint64_t>(found.int64(0, 2));
            }
            // The version check comes first: a refused append leaves no trace, not even a type.
            if (!expected.accepts(current))
                throw version_conflict(Stream::name, aggregate_id, expected.value(), current);
            std::array<std::int64_t, sizeof...(Events)> type_rows{};
            for (std::size_t i = 0; i < names.size(); ++i) type_rows[i] = intern_type(Stream::name, names[i]);
            if (number < 0) number = db_->execute(name("add_aggregate"), p).int64(0, 0);

            const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
            append_result result;
            std::uint64_t version = current;
            for (std::size_t i = 0; i < payloads.size(); ++i) {
                ++version;
                const std::uint64_t position = head + 1 + i;
                p.clear();
                p.add(position).add(Stream::name).add(aggregate_id).add(number).add(version).add(type_rows[i]);
                p.add(versions[i]);
                if constexpr (Codec::text)
                    p.add(std::string_view(payloads[i]));
                else
                    p.add_binary(payloads[i]);
                p.add(static_cast<std::int64_t>(now));
                try {
                    db_->execute(name("insert_event"), p);
                } catch (const postgres_error& e) {
                    // Class 22 (data exception): jsonb refused the document ("\u0000" or bytes
                    // that are not UTF-8 in a string). Nothing is written: the scope rolls back.
                    if (!e.sqlstate().starts_with("22")) throw;
                    throw error(fmt::format(
                        "projectionist: postgres: event '{}' (version {}) of aggregate '{}' of stream '{}' cannot be "
                        "stored by the {} codec: {}; nothing was appended (the binary codec stores any bytes)",
                        names[i], version, aggregate_id, Stream::name, Codec::name, e.what()));
                }
                if (i == 0) result.first_position = position;
                result.last_position = position;
            }
            p.clear();
            p.add(version).add(number);
            db_->execute(name("bump_aggregate"), p);
            db_->exec(notify_);
            scope.commit();
            result.version = version;
            return result;
        }

        /// Appends every part of `batch` in one transaction (a savepoint inside a transaction
        /// already open on the connection), in a fixed number of round trips whatever its size:
        /// the aggregates are looked up, created and moved on by one statement each, and the
        /// events are sent by one binary COPY. See `append_batch`.
        std::vector<append_result> append(append_batch& batch) {
            const auto& parts = batch.parts();
            const auto& events = batch.events();
            std::vector<append_result> results;
            if (parts.empty()) return results;
            for (const auto& e : events) check_size(e.name, e.size);
            prepare_all();
            // The batch's distinct aggregates, and each part's index among them.
            boost::unordered_flat_map<std::pair<std::string_view, std::string_view>, std::size_t,
                                      detail::string_pair_hash, detail::string_pair_equal>
                index;
            std::vector<std::size_t> key_of(parts.size());
            std::vector<std::string_view> streams, ids;
            for (std::size_t p = 0; p < parts.size(); ++p) {
                auto [it, added] = index.try_emplace({parts[p].stream, parts[p].aggregate_id}, streams.size());
                if (added) {
                    streams.push_back(parts[p].stream);
                    ids.push_back(parts[p].aggregate_id);
                }
                key_of[p] = it->second;
            }
            std::vector<std::int64_t> numbers(streams.size(), -1);
            std::vector<std::uint64_t> versions(streams.size(), 0);
            detail::pg::params p;
            p.add(detail::pg::text_array(streams)).add(detail::pg::text_array(ids));

            write_scope scope(*db_);
            db_->execute(name("lock"));  // see the class comment
            const auto head = static_cast<std::uint64_t>(db_->execute(name("head")).int64(0, 0));
            auto found = db_->execute(name("find_aggregates"), p);
            for (int r = 0; r < found.rows(); ++r) {
                const auto k = static_cast<std::size_t>(found.int64(r, 0) - 1);
                numbers[k] = found.int64(r, 1);
                versions[k] = static_cast<std::uint64_t>(found.int64(r, 2));
            }
            // Every check before anything is written, against the versions earlier parts leave.
            {
                std::vector<std::uint64_t> pending = versions;
                for (std::size_t i = 0; i < parts.size(); ++i) {
                    std::uint64_t& current = pending[key_of[i]];
                    if (!parts[i].expected.accepts(current))
                        throw version_conflict(parts[i].stream, parts[i].aggregate_id, parts[i].expected.value(),
                                               current);
                    current += parts[i].count;
                }
            }
            std::vector<std::int32_t> type_ids(events.size());
            {
                boost::unordered_flat_map<std::pair<std::string_view, std::string_view>, std::int32_t,
                                          detail::string_pair_hash, detail::string_pair_equal>
                    types;
                for (const auto& part : parts)
                    for (std::size_t i = part.first; i < part.first + part.count; ++i) {
                        auto [it, added] = types.try_emplace({part.stream, events[i].name}, 0);
                        if (added) it->second = static_cast<std::int32_t>(intern_type(part.stream, events[i].name));
                        type_ids[i] = it->second;
                    }
            }
            add_new_aggregates(streams, ids, numbers);

            const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
            detail::pg::copy_rows rows;
            std::uint64_t position = head;
            results.reserve(parts.size());
            for (std::size_t i = 0; i < parts.size(); ++i) {
                const batch_part& part = parts[i];
                const std::size_t k = key_of[i];
                results.push_back({position + 1, position + part.count, versions[k] + part.count});
                for (std::size_t e = part.first; e < part.first + part.count; ++e) {
                    rows.row(9).int8(static_cast<std::int64_t>(++position)).bytes(part.stream);
                    rows.bytes(part.aggregate_id).int8(numbers[k]).int8(static_cast<std::int64_t>(++versions[k]));
                    rows.int4(type_ids[e]).int4(static_cast<std::int32_t>(events[e].schema_version));
                    if constexpr (Codec::text)
                        rows.jsonb(batch.slots().payload(events[e]));
                    else
                        rows.bytes(batch.slots().payload(events[e]));
                    rows.int8(now);
                }
            }
            try {
                db_->copy_in(sql_->copy_events, rows.finish());
            } catch (const postgres_error& e) {
                if (!e.sqlstate().starts_with("22")) throw;  // see the single append
                throw error(
                    fmt::format("projectionist: postgres: an event of the batch cannot be stored by the {} codec: "
                                "{}; nothing of the batch was appended (the binary codec stores any bytes)",
                                Codec::name, e.what()));
            }
            std::vector<std::string> bumped_numbers, bumped_versions;
            for (std::size_t k = 0; k < numbers.size(); ++k) {
                bumped_numbers.push_back(std::to_string(numbers[k]));
                bumped_versions.push_back(std::to_string(versions[k]));
            }
            p.clear();
            p.add(detail::pg::text_array(bumped_numbers)).add(detail::pg::text_array(bumped_versions));
            db_->execute(name("bump_aggregates"), p);
            db_->exec(notify_);
            scope.commit();
            batch.clear();
            return results;
        }

    private:
        friend class basic_postgres_event_store;

        /// Creates the aggregates whose number is -1, numbered in order from the next free number.
        void add_new_aggregates(const std::vector<std::string_view>& streams, const std::vector<std::string_view>& ids,
                                std::vector<std::int64_t>& numbers) {
            std::vector<std::string_view> new_streams, new_ids;
            for (std::size_t k = 0; k < numbers.size(); ++k)
                if (numbers[k] < 0) {
                    new_streams.push_back(streams[k]);
                    new_ids.push_back(ids[k]);
                }
            if (new_streams.empty()) return;
            detail::pg::params p;
            p.add(detail::pg::text_array(new_streams)).add(detail::pg::text_array(new_ids));
            auto added = db_->execute(name("add_aggregates"), p);
            std::int64_t next = std::numeric_limits<std::int64_t>::max();
            for (int r = 0; r < added.rows(); ++r) next = std::min(next, added.int64(r, 0));
            for (auto& number : numbers)
                if (number < 0) number = next++;
        }

        writer(detail::pg::connection& db, const statements& sql, std::size_t max_payload_bytes)
            : db_(&db),
              sql_(&sql),
              notify_(fmt::format("NOTIFY {}", detail::pg::quote(sql.notify_channel))),
              max_payload_bytes_(max_payload_bytes) {}

        void check_size(std::string_view name, std::size_t size) const {
            detail::check_payload_size("postgres_event_store", name, size, max_payload_bytes_);
        }

        std::string name(std::string_view what) const { return sql_->prefix + std::string(what); }

        void prepare_all() {
            if (prepared_) return;
            db_->prepare(name("lock"), sql_->lock);
            db_->prepare(name("find_aggregate"), sql_->find_aggregate);
            db_->prepare(name("find_type"), sql_->find_type);
            db_->prepare(name("add_type"), sql_->add_type);
            db_->prepare(name("add_aggregate"), sql_->add_aggregate);
            db_->prepare(name("insert_event"), sql_->insert_event);
            db_->prepare(name("bump_aggregate"), sql_->bump_aggregate);
            db_->prepare(name("head"), sql_->head);
            db_->prepare(name("find_aggregates"), sql_->find_aggregates);
            db_->prepare(name("add_aggregates"), sql_->add_aggregates);
            db_->prepare(name("bump_aggregates"), sql_->bump_aggregates);
            prepared_ = true;
        }

        std::int64_t intern_type(std::string_view stream, std::string_view type) {
            detail::pg::params p;
            p.add(stream).add(type);
            auto found = db_->execute(name("find_type"), p);
            if (found.rows() != 0) return found.int64(0, 0);
            return db_->execute(name("add_type"), p).int64(0, 0);
        }

        detail::pg::connection* db_;
        const statements* sql_;
        std::string notify_;
        std::size_t max_payload_bytes_;
        bool prepared_ = false;
    };

    /// Connects to `conninfo` (a libpq connection string or URI) and opens (or creates) the log
    /// in `options.schema`. Throws `projectionist::error` for a schema that is not
    /// projectionist's or has a newer version, without modifying it, and for a log written with
    /// the other codec.
    explicit basic_postgres_event_store(std::string conninfo, postgres_options options = {})
        : conninfo_(std::move(conninfo)),
          options_(std::move(options)),
          db_(detail::pg::open_database(conninfo_, options_)),
          sql_(options_.schema, schema_oid(db_, options_.schema)),
          writer_(db_, sql_, options_.max_payload_bytes) {
        check_codec();
        auto id = db_.query(
            "SELECT pg_postmaster_start_time()::text, (SELECT oid FROM pg_catalog.pg_database WHERE datname = "
            "current_database()), current_setting('port')");
        server_identity_ = fmt::format("{}/{}/{}", id.text(0, 0), id.text(0, 1), id.text(0, 2));
        db_.prepare(sql_.prefix + "head", sql_.head);
        db_.prepare(sql_.prefix + "read", sql_.read);
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

    /// Appends `events` to one aggregate of `Stream` in one transaction, if the aggregate is at
    /// `expected`; otherwise throws `version_conflict` and writes nothing.
    template <stream_type Stream, class... Events>
    append_result append(Stream stream, std::string_view aggregate_id, expected_version expected, Events&&... events) {
        std::lock_guard lock(mutex_);
        return writer_.append(stream, aggregate_id, expected, std::forward<Events>(events)...);
    }

    /// Appends every part of `batch` in one transaction: each part's aggregate must be at the
    /// part's expected version (after the batch's earlier parts), or `version_conflict` names the
    /// first that is not and nothing is written. Returns one result per part, in order, and
    /// empties the batch for reuse.
    std::vector<append_result> append(append_batch& batch) {
        std::lock_guard lock(mutex_);
        return writer_.append(batch);
    }

    /// A writer that appends to this log through `db`, a connection to the same database
    /// (inside `db`'s open transaction, if any). The writer uses the store's statements: it must
    /// not outlive the store.
    [[nodiscard]] writer writer_on(detail::pg::connection& db) const {
        return writer(db, sql_, options_.max_payload_bytes);
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

    /// Position of the last committed event, 0 when the log is empty.
    [[nodiscard]] std::uint64_t head() const {
        std::lock_guard lock(mutex_);
        return static_cast<std::uint64_t>(db_.execute(sql_.prefix + "head").int64(0, 0));
    }

    /// Fills `out` with up to `max` records after position `after`, in global order. Positions
    /// are dense and commit in order (see the class comment), so a reader that moves on to the
    /// last position it saw never skips an event.
    void read(std::uint64_t after, std::size_t max, batch& out) const {
        std::lock_guard lock(mutex_);
        out.clear();
        detail::pg::params p;
        const std::uint64_t limit = std::min<std::uint64_t>(max, std::numeric_limits<std::int64_t>::max());
        p.add(static_cast<std::int64_t>(after)).add(static_cast<std::int64_t>(limit));
        if (after == 0) check_positions();
        fill_all(db_.execute(sql_.prefix + "read", p, true), out);
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

    /// Binary-format rows of `read`/`read_aggregate` into records: no text parsing, no hex. What
    /// a store never writes (a type id with no type, an aggregate number that is not its
    /// aggregate's, a missing payload) marks the record, naming position and field, instead of
    /// being used (see sql_event_store::record_defect).
    void fill_all(const detail::pg::result& r, batch& out) const {
        PGresult* res = r.get();
        const int rows = r.rows();
        look_up_aggregates(res, rows);
        for (int i = 0; i < rows; ++i) {
            record& rec = out.next();
            const std::int64_t position = detail::pg::binary_int64(PQgetvalue(res, i, 0));
            const std::int64_t type_id = detail::pg::binary_int32(PQgetvalue(res, i, 1));
            const type_entry& type = this->type_of(type_id);
            const std::int64_t number = detail::pg::binary_int64(PQgetvalue(res, i, 2));
            const std::string_view id(PQgetvalue(res, i, 6), static_cast<std::size_t>(PQgetlength(res, i, 6)));
            const bool aggregate_ok = type.known && this->aggregate_known(number, type.stream, id).value_or(false);
            const std::int64_t version = detail::pg::binary_int64(PQgetvalue(res, i, 3));
            const std::int64_t schema = detail::pg::binary_int32(PQgetvalue(res, i, 4));
            const char* payload = PQgetvalue(res, i, 7);
            auto size = static_cast<std::size_t>(PQgetlength(res, i, 7));
            std::string defect =
                this->record_defect(position, type_id, type, number, aggregate_ok, id, version, schema);
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
                            "the event at position {} has a jsonb payload in an unknown binary format version",
                            position);
                } else {
                    ++payload;
                    --size;
                }
            }
            this->set_record(rec, position, type, number, version, schema,
                             detail::pg::binary_int64(PQgetvalue(res, i, 5)), std::move(defect));
            rec.aggregate_id_buffer().assign(id);
            rec.payload_buffer().assign(payload, size);
        }
    }

    /// Looks up, in one round trip, the aggregates of the rows' numbers not yet known (see
    /// sql_event_store::aggregate_known): a backfill looks each number up once.
    void look_up_aggregates(PGresult* res, int rows) const {
        std::vector<std::string> numbers;
        for (int i = 0; i < rows; ++i) {
            const type_entry& type = this->type_of(detail::pg::binary_int32(PQgetvalue(res, i, 1)));
            const std::int64_t number = detail::pg::binary_int64(PQgetvalue(res, i, 2));
            const std::string_view id(PQgetvalue(res, i, 6), static_cast<std::size_t>(PQgetlength(res, i, 6)));
            if (type.known && !this->aggregate_known(number, type.stream, id))
                numbers.push_back(std::to_string(number));
        }
        if (numbers.empty()) return;
        detail::pg::params p;
        p.add(detail::pg::text_array(numbers));
        auto found = db_.execute(sql_.prefix + "aggregates_by_number", p);
        for (int i = 0; i < found.rows(); ++i)
            this->remember_aggregate(found.int64(i, 0), found.text(i, 1), found.text(i, 2));
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
    statements sql_;
    std::string server_identity_;
    writer writer_;
    mutable std::mutex listen_mutex_;
    mutable detail::pg::connection listener_;
};

/// The PostgreSQL event log with the default (binary) codec.
using postgres_event_store = basic_postgres_event_store<binary_codec>;
/// The PostgreSQL event log with the JSON codec: payloads in a jsonb column, readable with psql.
using postgres_json_event_store = basic_postgres_event_store<json_codec>;

}  // namespace projectionist
