#pragma once

/// The append path of the PostgreSQL event log: `detail::pg::event_writer<Codec>` appends through
/// one connection with its own prepared statements (basic_postgres_event_store::writer), and
/// `detail::pg::log_statements<Codec>` is the log's SQL.
///
/// Appends run concurrently; nothing is held from one append to another's commit but the rows
/// an append writes (its aggregates' rows: two appends to one aggregate take turns, which is its
/// optimistic concurrency). An append:
///  1. moves its aggregate on (UPDATE … WHERE version = expected), or creates it, or fails with
///     `version_conflict` before writing anything;
///  2. looks up (or creates) its event types;
///  3. reserves a block of positions with projectionist_reserve (pg_schema.hpp), inlined into
///     the statement that inserts its first event (or, for a batch, a statement of its own):
///     under a session-level advisory lock held only for the reservation (the append lock), the
///     block, and, for the transaction's first block in this log, a transaction-level advisory
///     lock keyed by the block, which marks it (and so every later block of the transaction) in
///     flight until the transaction ends; the function also queues the NOTIFY that wakes readers
///     at commit when the append runs inside a caller's transaction. If that statement fails (a
///     cancel, a lock_timeout), the writer rolls back and releases the append lock if the
///     failure left it held (`reserving`); a lost connection releases it with the session;
///  4. inserts its events (one binary COPY for a batch) and commits; an append that commits by
///     itself then sends the NOTIFY in a transaction of its own, with synchronous_commit off, in
///     the same round trip as its COMMIT.
///     PostgreSQL serializes the commits of all notifying transactions, WAL flush included (a
///     lock from the NOTIFY's queueing to the end of the commit): sent inside the append, it
///     made concurrent appends commit one fsync at a time. A NOTIFY lost to a crash between the
///     two only delays a waiting reader to its next look.
/// A reader first asks projectionist_read_horizon for the lowest block still in flight (or the
/// last reserved position + 1), then, in a statement of its own (a later snapshot), returns only
/// positions below it: every append that reserved a lower position has then ended, committed
/// (and visible to the reader) or rolled back. So a reader never moves past a position that can
/// still commit, and waits only for appends that reserved below what it wants; the README
/// (Architecture, "Concurrent appends on PostgreSQL") gives the whole argument and its costs.
/// A position reserved by an append that rolls back stays unused: positions increase, with
/// holes where appends failed after reserving.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/unordered/unordered_flat_map.hpp>

#include <projectionist/detail/pg_api.hpp>
#include <projectionist/detail/pg_schema.hpp>
#include <projectionist/error.hpp>
#include <projectionist/event/codec.hpp>
#include <projectionist/event/event.hpp>
#include <projectionist/event/schema.hpp>
#include <projectionist/event/stream.hpp>
#include <projectionist/store/append_batch.hpp>
#include <projectionist/store/expected_version.hpp>
#include <projectionist/store/stored_record.hpp>

namespace projectionist::detail::pg {

/// The log's SQL, with the schema quoted into every name (the statements do not depend on a
/// connection's search_path), and the names they are prepared under.
template <class Codec>
struct log_statements {
    std::string schema;  // unquoted
    std::int32_t lock_key = 0;
    std::int32_t block_class = 0;
    std::string notify_channel;
    std::string prefix;  // of prepared statement names: one set per schema on a connection

    std::string move_aggregate, add_aggregate, aggregate_version, find_type, lock_types, add_type, reserve,
        reserve_notifying, insert_first, insert_first_notifying, release_append_lock, commit_notify, insert_event,
        horizon, head, read, read_range, read_aggregate, load_types, lock_aggregates, add_aggregates, bump_aggregates,
        copy_events;

    log_statements(std::string schema_name, std::uint32_t schema_oid)
        : schema(std::move(schema_name)),
          lock_key(static_cast<std::int32_t>(schema_oid)),
          block_class(block_lock_class(schema_oid)),
          notify_channel(fmt::format("projectionist_events_{}", schema_oid)),
          prefix(fmt::format("projectionist_{}_{}_", schema_oid, Codec::name)) {
        const std::string s = quote(schema);
        const std::string payload_column = Codec::text ? "payload_json" : "payload";
        // $3 events; $4 the expected version, -1 for any. Locks the row: a concurrent append to
        // the aggregate waits for this one's transaction, then sees its version.
        move_aggregate = fmt::format(
            "UPDATE {}.projectionist_aggregates SET version = version + $3 WHERE stream = $1 AND aggregate_id = $2 "
            "AND ($4 < 0 OR version = $4) RETURNING number, version",
            s);
        add_aggregate = fmt::format(
            "INSERT INTO {0}.projectionist_aggregates(number, stream, aggregate_id, version) VALUES "
            "(nextval('{0}.projectionist_aggregate_numbers'), $1, $2, $3) ON CONFLICT (stream, aggregate_id) DO "
            "NOTHING RETURNING number",
            s);
        aggregate_version = fmt::format(
            "SELECT coalesce((SELECT version FROM {}.projectionist_aggregates WHERE stream = $1 AND aggregate_id = "
            "$2), 0)",
            s);
        find_type = fmt::format("SELECT id FROM {}.projectionist_event_types WHERE stream = $1 AND name = $2", s);
        lock_types = fmt::format("SELECT pg_advisory_xact_lock({}, {})", type_lock_class, lock_key);
        add_type = fmt::format(
            "INSERT INTO {0}.projectionist_event_types(id, stream, name) VALUES ((SELECT coalesce(max(id), 0) + 1 "
            "FROM {0}.projectionist_event_types), $1, $2) RETURNING id",
            s);
        // The lock classes and key every append and every reader's guard name (see above).
        const std::string lock_args = fmt::format("{}, {}, {}", append_lock_class, lock_key, block_class);
        // An append that commits by itself reserves without a NOTIFY and sends it after its commit
        // (`notify`, see above); one inside a caller's transaction notifies at that commit.
        const std::string positions = literal(s + ".projectionist_positions");
        const auto reserve_call = [&](std::string_view channel) {
            return fmt::format("{}.projectionist_reserve($1, {}::regclass, {}, {})", s, positions, lock_args, channel);
        };
        // After a reserving statement failed and its transaction (or savepoint) was rolled back:
        // the append lock, if the failure came while the reservation held it (a cancel, a
        // lock_timeout). Only if held, so that nothing warns.
        release_append_lock = fmt::format(
            "SELECT pg_catalog.pg_advisory_unlock({0}, {1}) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND "
            "pid = pg_catalog.pg_backend_pid() AND classid = {2}::oid AND objid = {3}::oid AND objsubid = 2 AND "
            "mode = 'ExclusiveLock' AND granted",
            append_lock_class, lock_key, static_cast<std::uint32_t>(append_lock_class),
            static_cast<std::uint32_t>(lock_key));
        reserve = fmt::format("SELECT {}", reserve_call("NULL"));
        reserve_notifying = fmt::format("SELECT {}", reserve_call(literal(notify_channel)));
        commit_notify = fmt::format("COMMIT; SELECT set_config('synchronous_commit', 'off', true), pg_notify({}, '')",
                                    literal(notify_channel));
        const std::string columns = fmt::format(
            "position, stream, aggregate_id, aggregate_number, aggregate_version, type_id, schema_version, {}, "
            "recorded_at",
            payload_column);
        // An append's first event takes the reservation with it: one round trip for both.
        const auto insert_first_with = [&](std::string_view channel) {
            return fmt::format(
                "INSERT INTO {}.projectionist_events({}) SELECT r.first_position, $2::text, $3::text, $4::bigint, "
                "$5::bigint, $6::integer, $7::integer, $8::{}, $9::bigint FROM {} AS r(first_position) RETURNING "
                "position",
                s, columns, Codec::text ? "jsonb" : "bytea", reserve_call(channel));
        };
        insert_first = insert_first_with("NULL");
        insert_first_notifying = insert_first_with(literal(notify_channel));
        insert_event = fmt::format(
            "INSERT INTO {}.projectionist_events({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", s, columns);
        // The reader's guard (see above): the horizon first, then the read below it, each a
        // statement with a snapshot of its own; head() runs both in one function.
        horizon = fmt::format("SELECT {}.projectionist_read_horizon({})", s, lock_args);
        head = fmt::format("SELECT {}.projectionist_head({})", s, lock_args);
        const std::string read_columns = fmt::format(
            "position, type_id, aggregate_number, aggregate_version, schema_version, recorded_at, aggregate_id, "
            "{}",
            payload_column);
        read = fmt::format(
            "SELECT {} FROM {}.projectionist_events WHERE position > $1 AND position < $3 ORDER BY "
            "position LIMIT $2",
            read_columns, s);
        // The same, of a range of aggregate numbers ($5 to $6, excluded) up to position $4.
        read_range = fmt::format(
            "SELECT {} FROM {}.projectionist_events WHERE position > $1 AND position < $3 AND position <= $4 AND "
            "aggregate_number >= $5 AND aggregate_number < $6 ORDER BY position LIMIT $2",
            read_columns, s);
        read_aggregate = fmt::format(
            "SELECT {} FROM {}.projectionist_events WHERE stream = $1 AND aggregate_id = $2 ORDER BY "
            "aggregate_version",
            read_columns, s);
        load_types =
            fmt::format("SELECT id, stream, name FROM {}.projectionist_event_types WHERE id > $1 ORDER BY id", s);
        // A batch's existing aggregates, by their (1-based) index in the two arrays, locked in
        // number order (two batches lock their common aggregates in the same order).
        lock_aggregates = fmt::format(
            "SELECT k.ord, a.number, a.version FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(stream, "
            "aggregate_id, ord) JOIN {}.projectionist_aggregates a ON a.stream = k.stream AND a.aggregate_id = "
            "k.aggregate_id ORDER BY a.number FOR UPDATE OF a",
            s);
        // A batch's new aggregates, at the version the batch leaves them at (no UPDATE after).
        add_aggregates = fmt::format(
            "INSERT INTO {0}.projectionist_aggregates(number, stream, aggregate_id, version) SELECT "
            "nextval('{0}.projectionist_aggregate_numbers'), k.stream, k.aggregate_id, k.version FROM "
            "unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS k(stream, aggregate_id, version, ord) "
            "ORDER BY k.ord ON CONFLICT (stream, aggregate_id) DO NOTHING RETURNING stream, aggregate_id, number",
            s);
        // Its existing aggregates, moved on.
        bump_aggregates = fmt::format(
            "UPDATE {}.projectionist_aggregates a SET version = v.version FROM unnest($1::bigint[], "
            "$2::bigint[]) AS v(number, version) WHERE a.number = v.number",
            s);
        copy_events = fmt::format("COPY {}.projectionist_events({}) FROM STDIN (FORMAT binary)", s, columns);
    }
};

/// BEGIN … COMMIT, or a savepoint inside a transaction already open on the connection.
/// Rolls back unless committed.
class write_scope {
public:
    explicit write_scope(const connection& db) : db_(&db), nested_(db.in_transaction()) {
        db_->exec(nested_ ? "SAVEPOINT projectionist_append" : "BEGIN");
    }
    write_scope(const write_scope&) = delete;
    write_scope& operator=(const write_scope&) = delete;
    [[nodiscard]] bool nested() const noexcept { return nested_; }
    /// Releases the savepoint, or commits: by `commit_sql` when given (COMMIT and statements after
    /// it, whose failure is not reported: see connection::exec_first).
    void commit(const std::string* commit_sql = nullptr) {
        if (nested_) {
            db_->exec("RELEASE SAVEPOINT projectionist_append");
        } else {
            done_ = true;  // a failed COMMIT ends the transaction too
            if (commit_sql)
                db_->exec_first(*commit_sql);
            else
                db_->exec("COMMIT");
        }
        done_ = true;
    }
    /// Rolls back now, then runs `after` on the connection unless it was lost meanwhile (then
    /// the server ended the session): in the caller's transaction when nested, else by itself.
    /// A failure of either is not reported (the statement that failed before is).
    void roll_back_then(const std::string& after) noexcept {
        roll_back();
        try {
            if (PQstatus(db_->get()) == CONNECTION_OK) db_->exec(after);
        } catch (...) {
            // Lost meanwhile, or failing for the same reason as the statement before.
        }
    }
    ~write_scope() { roll_back(); }

private:
    void roll_back() noexcept {
        if (done_) return;
        done_ = true;
        try {
            db_->exec(nested_ ? "ROLLBACK TO SAVEPOINT projectionist_append; RELEASE SAVEPOINT "
                                "projectionist_append"
                              : "ROLLBACK");
        } catch (...) {
            // The connection is unusable if even rollback fails; the next call will say so.
        }
    }

    const connection* db_;
    bool nested_;
    bool done_ = false;
};

/// Appends to one log through one connection (see the header comment).
template <class Codec>
class event_writer {
public:
    using append_batch = basic_append_batch<encoded_slots<Codec>>;

    /// `sql` and `conninfo` (of the log's database, for new event types: see intern_type) must
    /// outlive the writer.
    event_writer(connection& db, const log_statements<Codec>& sql, const std::string& conninfo,
                 std::size_t max_payload_bytes)
        : db_(&db), sql_(&sql), conninfo_(&conninfo), max_payload_bytes_(max_payload_bytes) {}

    /// Appends `events` to one aggregate of `Stream` in one transaction (a savepoint inside a
    /// transaction already open on the connection), if the aggregate is at `expected`;
    /// otherwise throws `version_conflict` and writes nothing.
    template <stream_type Stream, class... Events>
    append_result append(Stream, std::string_view aggregate_id, expected_version expected, Events&&... events) {
        static_assert(sizeof...(Events) > 0, "projectionist: postgres_event_store::append needs at least one event");
        static_assert((stream_has_event<Stream, std::remove_cvref_t<Events>> && ...),
                      "projectionist: postgres_event_store::append(Stream, ...): every event must belong to "
                      "Stream's event list; append it to its own stream instead");
        const auto payloads = encode_each<Codec>(events...);
        constexpr std::array<std::string_view, sizeof...(Events)> names{event_name_of<std::remove_cvref_t<Events>>...};
        constexpr std::array<unsigned, sizeof...(Events)> versions{schema_version_of<std::remove_cvref_t<Events>>...};
        for (std::size_t i = 0; i < payloads.size(); ++i) check_size(names[i], payloads[i].size());
        constexpr auto count = static_cast<std::int64_t>(sizeof...(Events));
        prepare_all();
        created_types_.clear();

        write_scope scope(*db_);
        // The version check comes first: a refused append leaves no trace, not even a type.
        const auto [number, current] = move_aggregate(Stream::name, aggregate_id, expected, count);
        std::array<std::int64_t, sizeof...(Events)> type_rows{};
        for (std::size_t i = 0; i < names.size(); ++i) type_rows[i] = intern_type(scope, Stream::name, names[i]);

        const auto now =
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        params p;
        std::uint64_t first = 0;
        for (std::size_t i = 0; i < payloads.size(); ++i) {
            p.clear();
            if (i == 0)
                p.add(count);
            else
                p.add(first + i);
            p.add(Stream::name).add(aggregate_id).add(number).add(current + 1 + i).add(type_rows[i]).add(versions[i]);
            if constexpr (Codec::text)
                p.add(std::string_view(payloads[i]));
            else
                p.add_binary(payloads[i]);
            p.add(static_cast<std::int64_t>(now));
            try {
                if (i == 0) {
                    first = static_cast<std::uint64_t>(
                        reserving(scope, name(scope.nested() ? "insert_first_notifying" : "insert_first"), p)
                            .int64(0, 0));
                } else {
                    db_->execute(name("insert_event"), p);
                }
            } catch (const postgres_error& e) {
                // Class 22 (data exception): jsonb refused the document ("\u0000" or bytes
                // that are not UTF-8 in a string). Nothing is written: the scope rolls back.
                if (!e.sqlstate().starts_with("22")) throw;
                throw error(fmt::format(
                    "projectionist: postgres: event '{}' (version {}) of aggregate '{}' of stream '{}' cannot be "
                    "stored by the {} codec: {}; nothing was appended (the binary codec stores any bytes)",
                    names[i], current + 1 + i, aggregate_id, Stream::name, Codec::name, e.what()));
            }
        }
        commit(scope);
        return {first, first + payloads.size() - 1, current + payloads.size()};
    }

    /// Appends every part of `batch` in one transaction (a savepoint inside a transaction
    /// already open on the connection), in a fixed number of round trips whatever its size:
    /// the aggregates are locked, created and moved on by one statement each, the positions are
    /// reserved by one call, and the events are sent by one binary COPY. See `append_batch`.
    std::vector<append_result> append(append_batch& batch) {
        const auto& parts = batch.parts();
        const auto& events = batch.events();
        std::vector<append_result> results;
        if (parts.empty()) return results;
        for (const auto& e : events) check_size(e.name, e.size);
        prepare_all();
        created_types_.clear();
        // The batch's distinct aggregates, and each part's index among them.
        pair_map<std::size_t> index;
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
        std::vector<std::uint64_t> added_events(streams.size(), 0);  // by the batch, per aggregate
        for (std::size_t p = 0; p < parts.size(); ++p) added_events[key_of[p]] += parts[p].count;
        std::vector<bool> created(streams.size(), false);  // by this batch

        write_scope scope(*db_);
        lock_aggregates(streams, ids, created, numbers, versions);
        check_parts(parts, key_of, versions);
        if (!add_new_aggregates(streams, ids, added_events, numbers, created)) {
            // Another append created some of them meanwhile (and committed: the insert waited
            // for it). Lock them as existing aggregates and check the parts again: a part that
            // expected any version goes on, one that expected a new aggregate is a conflict.
            lock_aggregates(streams, ids, created, numbers, versions);
            check_parts(parts, key_of, versions);
            if (!add_new_aggregates(streams, ids, added_events, numbers, created)) {
                const auto k =
                    static_cast<std::size_t>(std::find(numbers.begin(), numbers.end(), -1) - numbers.begin());
                params v;
                v.add(streams[k]).add(ids[k]);
                const auto current = static_cast<std::uint64_t>(db_->execute(name("aggregate_version"), v).int64(0, 0));
                const auto i = static_cast<std::size_t>(std::find(key_of.begin(), key_of.end(), k) - key_of.begin());
                throw version_conflict(parts[i].stream, parts[i].aggregate_id, parts[i].expected.value(), current);
            }
        }
        std::vector<std::int32_t> type_ids(events.size());
        {
            pair_map<std::int32_t> types;
            for (const auto& part : parts)
                for (std::size_t i = part.first; i < part.first + part.count; ++i) {
                    auto [it, added] = types.try_emplace({part.stream, events[i].name}, 0);
                    if (added) it->second = static_cast<std::int32_t>(intern_type(scope, part.stream, events[i].name));
                    type_ids[i] = it->second;
                }
        }
        params p;
        p.add(static_cast<std::int64_t>(events.size()));
        auto reserved = reserving(scope, name(scope.nested() ? "reserve_notifying" : "reserve"), p);
        const auto first = static_cast<std::uint64_t>(reserved.int64(0, 0));
        const auto now =
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        results.reserve(parts.size());
        try {
            // Sent in pieces as they are made: the server stores the first rows meanwhile.
            db_->copy_in_pieces(sql_->copy_events, [&](const auto& send) {
                copy_rows rows;
                std::uint64_t position = first - 1;
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
                    if (rows.size() >= copy_piece_bytes) {
                        send(rows.piece());
                        rows.next_piece();
                    }
                }
                send(rows.finish());
            });
        } catch (const postgres_error& e) {
            if (!e.sqlstate().starts_with("22")) throw;  // see the single append
            throw error(
                fmt::format("projectionist: postgres: an event of the batch cannot be stored by the {} codec: "
                            "{}; nothing of the batch was appended (the binary codec stores any bytes)",
                            Codec::name, e.what()));
        }
        std::vector<std::string> bumped_numbers, bumped_versions;
        for (std::size_t k = 0; k < numbers.size(); ++k)
            if (!created[k]) {
                bumped_numbers.push_back(std::to_string(numbers[k]));
                bumped_versions.push_back(std::to_string(versions[k]));
            }
        if (!bumped_numbers.empty()) {
            p.clear();
            p.add(text_array(bumped_numbers)).add(text_array(bumped_versions));
            db_->execute(name("bump_aggregates"), p);
        }
        commit(scope);
        batch.clear();
        return results;
    }

private:
    static constexpr std::size_t copy_piece_bytes = std::size_t{1} << 20;
    using pair_key = std::pair<std::string_view, std::string_view>;
    template <class V>
    using pair_map = boost::unordered_flat_map<pair_key, V, string_pair_hash, string_pair_equal>;

    std::string name(std::string_view what) const { return sql_->prefix + std::string(what); }

    void prepare_all() {
        if (prepared_) return;
        for (const auto& [what, sql] : std::initializer_list<std::pair<std::string_view, const std::string*>>{
                 {"move_aggregate", &sql_->move_aggregate},
                 {"add_aggregate", &sql_->add_aggregate},
                 {"aggregate_version", &sql_->aggregate_version},
                 {"reserve", &sql_->reserve},
                 {"reserve_notifying", &sql_->reserve_notifying},
                 {"insert_first", &sql_->insert_first},
                 {"insert_first_notifying", &sql_->insert_first_notifying},
                 {"insert_event", &sql_->insert_event},
                 {"lock_aggregates", &sql_->lock_aggregates},
                 {"add_aggregates", &sql_->add_aggregates},
                 {"bump_aggregates", &sql_->bump_aggregates}})
            db_->prepare(name(what), *sql);
        prepared_ = true;
    }

    /// Runs a statement that reserves positions (projectionist_reserve). If it fails, the failure
    /// may have come while the reservation held the append lock, which no rollback releases (a
    /// session lock): the scope is rolled back and the lock released before the failure is
    /// rethrown, so that no other appender or reader waits for it.
    result reserving(write_scope& scope, const std::string& statement, const params& p) {
        try {
            return db_->execute(statement, p);
        } catch (...) {
            scope.roll_back_then(sql_->release_append_lock);
            throw;
        }
    }

    /// Moves the aggregate on by `count` events if it is at `expected` (creating it if it has
    /// none and `expected` accepts 0); returns its number and its version before the append.
    /// Throws version_conflict otherwise, having written nothing.
    std::pair<std::int64_t, std::uint64_t> move_aggregate(std::string_view stream, std::string_view id,
                                                          expected_version expected, std::int64_t count) {
        params p;
        p.add(stream).add(id);
        for (int attempt = 0;; ++attempt) {
            if (expected.value() != 0) {
                params m;
                m.add(stream).add(id).add(count).add(expected.is_any() ? std::int64_t{-1}
                                                                       : static_cast<std::int64_t>(expected.value()));
                auto moved = db_->execute(name("move_aggregate"), m);
                if (moved.rows() != 0)
                    return {moved.int64(0, 0), static_cast<std::uint64_t>(moved.int64(0, 1) - count)};
            }
            if (expected.accepts(0)) {
                params a;
                a.add(stream).add(id).add(count);
                auto added = db_->execute(name("add_aggregate"), a);
                if (added.rows() != 0) return {added.int64(0, 0), 0};
                // Created meanwhile by another append: with any version, move it on instead.
                if (expected.is_any() && attempt == 0) continue;
            }
            const auto current = static_cast<std::uint64_t>(db_->execute(name("aggregate_version"), p).int64(0, 0));
            throw version_conflict(stream, id, expected.value(), current);
        }
    }

    /// Locks the batch's existing aggregates (in number order) and reads their numbers and
    /// versions, but for those `created` by this batch (at the version it leaves them at).
    void lock_aggregates(const std::vector<std::string_view>& streams, const std::vector<std::string_view>& ids,
                         const std::vector<bool>& created, std::vector<std::int64_t>& numbers,
                         std::vector<std::uint64_t>& versions) {
        params p;
        p.add(text_array(streams)).add(text_array(ids));
        auto found = db_->execute(name("lock_aggregates"), p);
        for (int r = 0; r < found.rows(); ++r) {
            const auto k = static_cast<std::size_t>(found.int64(r, 0) - 1);
            if (created[k]) continue;
            numbers[k] = found.int64(r, 1);
            versions[k] = static_cast<std::uint64_t>(found.int64(r, 2));
        }
    }

    /// Every part's expected version, against the versions the batch's earlier parts leave;
    /// throws `version_conflict` for the first that fails, before anything is written.
    static void check_parts(const std::vector<batch_part>& parts, const std::vector<std::size_t>& key_of,
                            std::vector<std::uint64_t> pending) {
        for (std::size_t i = 0; i < parts.size(); ++i) {
            std::uint64_t& current = pending[key_of[i]];
            if (!parts[i].expected.accepts(current))
                throw version_conflict(parts[i].stream, parts[i].aggregate_id, parts[i].expected.value(), current);
            current += parts[i].count;
        }
    }

    /// Creates the batch's new aggregates (number -1), numbered in order, each at the version the
    /// batch leaves it at (`added_events`), and marks them `created`. Returns false if another
    /// append created one of them meanwhile (its number stays -1).
    bool add_new_aggregates(const std::vector<std::string_view>& streams, const std::vector<std::string_view>& ids,
                            const std::vector<std::uint64_t>& added_events, std::vector<std::int64_t>& numbers,
                            std::vector<bool>& created) {
        std::vector<std::string_view> new_streams, new_ids;
        std::vector<std::string> new_versions;
        for (std::size_t k = 0; k < numbers.size(); ++k)
            if (numbers[k] < 0) {
                new_streams.push_back(streams[k]);
                new_ids.push_back(ids[k]);
                new_versions.push_back(std::to_string(added_events[k]));
            }
        if (new_streams.empty()) return true;
        params p;
        p.add(text_array(new_streams)).add(text_array(new_ids)).add(text_array(new_versions));
        auto added = db_->execute(name("add_aggregates"), p);
        pair_map<std::int64_t> made;
        for (int r = 0; r < added.rows(); ++r)
            made.try_emplace({added.text(r, 0), added.text(r, 1)}, added.int64(r, 2));
        bool all = true;
        for (std::size_t k = 0; k < numbers.size(); ++k) {
            if (numbers[k] >= 0) continue;
            const auto it = made.find(pair_key{streams[k], ids[k]});
            if (it != made.end()) {
                numbers[k] = it->second;
                created[k] = true;
            } else
                all = false;
        }
        return all;
    }

    /// The id of an event type, created if new. Types this writer saw committed are remembered
    /// (a type row is never deleted). New ones are created one transaction at a time (the type
    /// lock, to the commit), so that ids stay dense: in the append's own transaction when the
    /// append has one (a failed append leaves no type), but in a short transaction of its own
    /// (a second connection) when the append runs inside a caller's transaction, which may stay
    /// open for long: every other appender of a new type would wait for it.
    std::int64_t intern_type(const write_scope& scope, std::string_view stream, std::string_view type) {
        if (const auto it = known_types_.find(pair_key{stream, type}); it != known_types_.end()) return it->second;
        for (const auto& t : created_types_)  // made by this append, not committed yet
            if (t.stream == stream && t.type == type) return t.id;
        params p;
        p.add(stream).add(type);
        if (scope.nested()) {
            if (!types_db_) {
                // The append's connection's lock_timeout: its transaction may hold a row that the
                // holder of the type lock waits for, a wait the server cannot see as a deadlock.
                types_db_.emplace(*conninfo_);
                types_db_->exec(fmt::format("SET lock_timeout = {}",
                                            literal(db_->query("SELECT current_setting('lock_timeout')").text(0, 0))));
            }
            const std::int64_t id = add_type(*types_db_, p, false);
            remember(stream, type, id);
            return id;
        }
        const std::int64_t id = add_type(*db_, p, true);
        if (id > 0) {
            // Outside a caller's transaction a row found is committed: not made by this append
            // (created_types_ above), nor by an earlier one (each committed or rolled back).
            remember(stream, type, id);
            return id;
        }
        created_types_.push_back({std::string(stream), std::string(type), -id});
        return -id;
    }

    /// Finds or creates (stream, type) on `db`: in its open transaction (`in_transaction`, then
    /// a created type's id is returned negated), or in one of its own.
    std::int64_t add_type(const connection& db, const params& p, bool in_transaction) {
        auto found = db.query(sql_->find_type, p);
        if (found.rows() != 0) return found.int64(0, 0);
        std::optional<write_scope> own;
        if (!in_transaction) own.emplace(db);
        db.query(sql_->lock_types);
        found = db.query(sql_->find_type, p);  // another append may have made it meanwhile
        std::int64_t id = 0;
        if (found.rows() != 0) {
            id = found.int64(0, 0);
        } else {
            id = db.query(sql_->add_type, p).int64(0, 0);
            if (in_transaction) id = -id;
        }
        if (own) own->commit();
        return id;
    }

    void remember(std::string_view stream, std::string_view type, std::int64_t id) {
        type_names_.push_back(std::string(stream));
        const std::string_view s = type_names_.back();
        type_names_.push_back(std::string(type));
        known_types_.try_emplace(pair_key{s, type_names_.back()}, id);
    }

    /// Commits the scope; types it created are remembered once committed. A scope that is the
    /// whole transaction wakes the readers right after its COMMIT (see the header comment).
    void commit(write_scope& scope) {
        try {
            scope.commit(&sql_->commit_notify);
        } catch (...) {
            created_types_.clear();
            throw;
        }
        for (const auto& t : created_types_) remember(t.stream, t.type, t.id);
        created_types_.clear();
    }

    struct created_type {
        std::string stream, type;
        std::int64_t id;
    };

    void check_size(std::string_view type, std::size_t size) const {
        projectionist::detail::check_payload_size("postgres_event_store", type, size, max_payload_bytes_);
    }

    connection* db_;
    const log_statements<Codec>* sql_;
    const std::string* conninfo_;
    std::size_t max_payload_bytes_;
    std::optional<connection> types_db_;  // opened for the first new type inside a caller's transaction
    bool prepared_ = false;
    std::deque<std::string> type_names_;  // deque: the map's keys point into it
    pair_map<std::int64_t> known_types_;
    std::vector<created_type> created_types_;
};

}  // namespace projectionist::detail::pg
