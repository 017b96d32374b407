#pragma once

/// The append path of the SQLite event log: `sqlite_event_writer<Codec>` appends through one
/// connection with its own prepared statements (basic_sqlite_event_store::writer).
///
/// What an append costs. Outside a transaction, an append is BEGIN IMMEDIATE … COMMIT. Inside a
/// transaction the caller opened with plain SQL, it is a savepoint of it (SAVEPOINT … RELEASE),
/// so that a failed append leaves the caller's earlier work and writes nothing of its own.
/// Inside a `transaction` of the writer's own (`store.transaction()`), an append takes no
/// savepoint: the transaction itself gives all or nothing, because an append that fails after
/// its first write dooms it (`commit()` then rolls back and throws; a version conflict, which
/// fails before any write, does not).
///
/// Cached lookups. Event type ids and aggregates (number and version) are remembered between
/// appends, so that a steady writer runs one INSERT per event and one UPDATE per aggregate and
/// call. The cache is trusted only inside the writer's own transactions (autocommit appends,
/// `transaction`), each of which first checks that no other connection has committed since the
/// writer last looked (`PRAGMA data_version`, which another connection's commit changes): if
/// one has, the cache is dropped. A rollback drops it too, and so does an append inside a
/// transaction of the caller's (whose fate the writer does not see).

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/unordered/unordered_flat_map.hpp>

#include <projectionist/detail/sqlite_api.hpp>
#include <projectionist/detail/sqlite_schema.hpp>
#include <projectionist/error.hpp>
#include <projectionist/event/codec.hpp>
#include <projectionist/event/event.hpp>
#include <projectionist/event/schema.hpp>
#include <projectionist/event/stream.hpp>
#include <projectionist/store/append_batch.hpp>
#include <projectionist/store/expected_version.hpp>
#include <projectionist/store/stored_record.hpp>

namespace projectionist::detail {

template <class Codec>
class sqlite_event_writer {
public:
    using append_batch = basic_append_batch<encoded_slots<Codec>>;

    /// `max_payload_bytes`: the limit of the store's reads (sqlite_options), refused here
    /// already so that no event is written that no runner could read.
    /// `cache_size_kib`: the connection's page cache is raised to this (never lowered; 0: left
    /// as it is); see sqlite_options::append_cache_size_kib.
    explicit sqlite_event_writer(sqlite::connection& db,
                                 std::size_t max_payload_bytes = sqlite_options{}.max_payload_bytes,
                                 std::size_t cache_size_kib = 0)
        : db_(&db), max_payload_bytes_(max_payload_bytes) {
        if (cache_size_kib != 0) sqlite::raise_cache(db, cache_size_kib);
    }

    sqlite_event_writer(sqlite_event_writer&&) noexcept = default;
    sqlite_event_writer& operator=(sqlite_event_writer&&) noexcept = default;

    /// BEGIN IMMEDIATE on the writer's connection; appends through the writer until `commit()`
    /// take no savepoint each (see the header comment). Rolls back unless committed.
    class transaction {
    public:
        explicit transaction(sqlite_event_writer& w) : w_(&w) { w_->begin_own(); }
        transaction(transaction&& o) noexcept : w_(std::exchange(o.w_, nullptr)) {}
        transaction(const transaction&) = delete;
        transaction& operator=(const transaction&) = delete;
        transaction& operator=(transaction&&) = delete;
        /// Commits; throws (after rolling back) if an append in it failed after writing.
        void commit() {
            if (!w_) return;
            sqlite_event_writer& w = *std::exchange(w_, nullptr);
            if (w.doomed_) {
                w.end_own(false);
                throw error(
                    "projectionist: sqlite_event_store: an append in this transaction failed after it had "
                    "written; the whole transaction was rolled back");
            }
            w.end_own(true);
        }
        ~transaction() {
            if (w_) w_->end_own(false);
        }

    private:
        sqlite_event_writer* w_;
    };

    /// Appends `events` to one aggregate of `Stream`, if the aggregate is at `expected`;
    /// otherwise throws `version_conflict` and writes nothing.
    template <stream_type Stream, class... Events>
    append_result append(Stream, std::string_view aggregate_id, expected_version expected, Events&&... events) {
        static_assert(detail::check_append<Stream, Events...>());
        constexpr std::array<std::string_view, sizeof...(Events)> names{event_name_of<std::remove_cvref_t<Events>>...};
        constexpr std::array<unsigned, sizeof...(Events)> versions{schema_version_of<std::remove_cvref_t<Events>>...};
        std::array<std::string_view, sizeof...(Events)> payloads;
        scratch_.clear();
        {
            std::array<std::size_t, sizeof...(Events) + 1> ends{};
            std::size_t i = 0;
            ((Codec::encode(events, scratch_), ends[++i] = scratch_.size()), ...);
            for (std::size_t k = 0; k < payloads.size(); ++k) {
                payloads[k] = std::string_view(scratch_).substr(ends[k], ends[k + 1] - ends[k]);
                check_size(names[k], payloads[k].size());
            }
        }
        scope s(*this);
        const append_result r =
            append_part(Stream::name, aggregate_id, expected, payloads.size(), now_ns(), [&](std::size_t i) {
                return event_row{names[i], versions[i], payloads[i]};
            });
        flush_versions();
        s.commit();
        return r;
    }

    /// Appends every part of `batch` in one transaction (see `append_batch`); empties it.
    std::vector<append_result> append(append_batch& batch) {
        for (const auto& e : batch.events()) check_size(e.name, e.size);
        std::vector<append_result> results;
        results.reserve(batch.parts().size());
        const std::int64_t now = now_ns();
        scope s(*this);
        for (const auto& part : batch.parts())
            results.push_back(
                append_part(part.stream, part.aggregate_id, part.expected, part.count, now, [&](std::size_t i) {
                    const auto& e = batch.events()[part.first + i];
                    return event_row{e.name, e.schema_version, batch.slots().payload(e)};
                }));
        flush_versions();
        s.commit();
        batch.clear();
        return results;
    }

private:
    struct event_row {
        std::string_view name;
        unsigned schema_version;
        std::string_view payload;
    };
    struct aggregate_state {
        std::int64_t number = -1;  ///< -1: no row yet
        std::uint64_t version = 0;
        std::uint64_t written = 0;  ///< the version in the row (flush_versions writes `version`)
    };
    using pair_key = std::pair<std::string, std::string>;
    template <class V>
    using pair_map = boost::unordered_flat_map<pair_key, V, string_pair_hash, string_pair_equal>;

    /// One call's write scope: the writer's own transaction (autocommit), a savepoint of the
    /// caller's, or nothing inside a `transaction` of the writer's.
    class scope {
    public:
        explicit scope(sqlite_event_writer& w) : w_(&w) {
            w.trim_cache();
            if (w.own_ && w.doomed_)
                throw error(
                    "projectionist: sqlite_event_store: an earlier append in this transaction failed after it "
                    "had written; roll the transaction back");
            if (w.own_) {
                kind_ = inside_own;
                w.wrote_ = false;
            } else if (sqlite3_get_autocommit(w.db_->get()) != 0) {
                kind_ = own;
                w.begin_own();
            } else {
                kind_ = savepoint;
                w.clear_cache();  // the caller's transaction may yet roll back what is written here
                w.run(w.savepoint_, "SAVEPOINT projectionist_append");
            }
        }
        scope(const scope&) = delete;
        scope& operator=(const scope&) = delete;
        void commit() {
            if (kind_ == own) w_->end_own(true);
            if (kind_ == savepoint) {
                w_->clear_cache();
                w_->run(w_->release_, "RELEASE projectionist_append");
            }
            done_ = true;
        }
        ~scope() {
            if (done_) return;
            try {
                if (kind_ == own) w_->end_own(false);
                if (kind_ == savepoint) {
                    w_->run(w_->rollback_to_, "ROLLBACK TO projectionist_append");
                    w_->run(w_->release_, "RELEASE projectionist_append");
                    w_->clear_cache();
                }
                if (kind_ == inside_own && w_->wrote_) w_->doomed_ = true;
            } catch (...) {
                // The connection is unusable if even rollback fails; the next call will say so.
            }
        }

    private:
        enum kinds { own, savepoint, inside_own };
        sqlite_event_writer* w_;
        kinds kind_ = own;
        bool done_ = false;
    };

    void begin_own() {
        run(begin_, "BEGIN IMMEDIATE");
        own_ = true;
        doomed_ = false;
        try {
            auto& v = prepared(data_version_, "PRAGMA data_version");
            const std::int64_t now = v.step() ? v.int64(0) : -1;
            v.reset();
            if (now != seen_version_) clear_cache();  // another connection committed since
            seen_version_ = now;
        } catch (...) {
            end_own(false);
            throw;
        }
    }

    void end_own(bool commit) {
        own_ = false;
        if (commit) {
            try {
                run(commit_, "COMMIT");
                return;
            } catch (...) {
                clear_cache();
                if (sqlite3_get_autocommit(db_->get()) == 0) run(rollback_, "ROLLBACK");
                throw;
            }
        }
        clear_cache();
        if (sqlite3_get_autocommit(db_->get()) == 0) run(rollback_, "ROLLBACK");
    }

    void clear_cache() noexcept {
        aggregate_index_.clear();
        states_.clear();
        types_.clear();
        dirty_.clear();
    }

    /// Bounds the cache: past `max_cached` aggregates it starts again (between calls only).
    void trim_cache() noexcept {
        if (states_.size() > max_cached) clear_cache();
    }
    static constexpr std::size_t max_cached = 1u << 20;

    static std::int64_t now_ns() {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    }

    void check_size(std::string_view name, std::size_t size) const {
        detail::check_payload_size("sqlite_event_store", name, size, max_payload_bytes_);
    }

    /// The aggregate's state: from the cache, or read (and remembered).
    aggregate_state& aggregate(std::string_view stream, std::string_view id) {
        const std::pair<std::string_view, std::string_view> key(stream, id);
        if (auto it = aggregate_index_.find(key); it != aggregate_index_.end()) return states_[it->second];
        aggregate_state found;
        auto& find = prepared(find_aggregate_,
                              "SELECT number, version FROM projectionist_aggregates WHERE stream = ? AND "
                              "aggregate_id = ?");
        find.bind(1, stream);
        find.bind(2, id);
        if (find.step()) {
            found.number = find.int64(0);
            found.version = found.written = static_cast<std::uint64_t>(find.int64(1));
        }
        find.reset();
        aggregate_index_.try_emplace(pair_key(stream, id), states_.size());
        return states_.emplace_back(found);
    }

    /// One aggregate's events, inside the call's scope: the version check, then the types, the
    /// aggregate row and the events; the new version is written by flush_versions.
    template <class Row>
    append_result append_part(std::string_view stream, std::string_view aggregate_id, expected_version expected,
                              std::size_t count, std::int64_t now, Row&& row) {
        aggregate_state& a = aggregate(stream, aggregate_id);
        // The version check comes first: a refused append leaves no trace, not even a type.
        if (!expected.accepts(a.version)) throw version_conflict(stream, aggregate_id, expected.value(), a.version);
        wrote_ = true;
        if (a.number < 0) {
            auto& add = prepared(add_aggregate_,
                                 "INSERT INTO projectionist_aggregates(number, stream, aggregate_id, version) "
                                 "VALUES ((SELECT coalesce(max(number) + 1, 0) FROM projectionist_aggregates), ?, ?, "
                                 "0)");
            add.bind(1, stream);
            add.bind(2, aggregate_id);
            add.run();
            a.number = static_cast<std::int64_t>(sqlite3_last_insert_rowid(db_->get()));
        }
        auto& insert = prepared(insert_event_,
                                "INSERT INTO projectionist_events(stream, aggregate_id, aggregate_number, "
                                "aggregate_version, type_id, schema_version, payload, recorded_at) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
        append_result result;
        if (a.version == a.written) dirty_.push_back(&a);
        for (std::size_t i = 0; i < count; ++i) {
            const event_row e = row(i);
            insert.bind(1, stream);
            insert.bind(2, aggregate_id);
            insert.bind(3, a.number);
            insert.bind(4, static_cast<std::int64_t>(a.version + 1));
            insert.bind(5, type_id(stream, e.name));
            insert.bind(6, static_cast<std::int64_t>(e.schema_version));
            if constexpr (Codec::text)
                insert.bind(7, e.payload);
            else
                insert.bind_blob(7, e.payload);
            insert.bind(8, now);
            insert.run();
            ++a.version;
            const auto position = static_cast<std::uint64_t>(sqlite3_last_insert_rowid(db_->get()));
            if (i == 0) result.first_position = position;
            result.last_position = position;
        }
        result.version = a.version;
        return result;
    }

    /// Writes the new version of every aggregate the call moved on: one UPDATE per aggregate.
    void flush_versions() {
        auto& bump = prepared(bump_aggregate_, "UPDATE projectionist_aggregates SET version = ? WHERE number = ?");
        for (aggregate_state* a : dirty_) {
            if (a->version == a->written) continue;
            bump.bind(1, static_cast<std::int64_t>(a->version));
            bump.bind(2, a->number);
            bump.run();
            a->written = a->version;
        }
        dirty_.clear();
    }

    std::int64_t type_id(std::string_view stream, std::string_view name) {
        const std::pair<std::string_view, std::string_view> key(stream, name);
        if (auto it = types_.find(key); it != types_.end()) return it->second;
        auto& find = prepared(find_type_, "SELECT id FROM projectionist_event_types WHERE stream = ? AND name = ?");
        find.bind(1, stream);
        find.bind(2, name);
        std::int64_t id = 0;
        if (find.step()) {
            id = find.int64(0);
            find.reset();
        } else {
            find.reset();
            auto& add = prepared(add_type_, "INSERT INTO projectionist_event_types(stream, name) VALUES (?, ?)");
            add.bind(1, stream);
            add.bind(2, name);
            add.run();
            id = sqlite3_last_insert_rowid(db_->get());
        }
        types_.try_emplace(pair_key(stream, name), id);
        return id;
    }

    sqlite::statement& prepared(sqlite::statement& slot, std::string_view sql) {
        if (!slot.get()) slot = sqlite::statement(*db_, sql);
        return slot;
    }
    void run(sqlite::statement& slot, std::string_view sql) { prepared(slot, sql).run(); }

    sqlite::connection* db_;
    std::size_t max_payload_bytes_;
    sqlite::statement find_type_, add_type_, find_aggregate_, add_aggregate_, insert_event_, bump_aggregate_, begin_,
        commit_, rollback_, savepoint_, release_, rollback_to_, data_version_;
    pair_map<std::size_t> aggregate_index_;  // into states_
    std::deque<aggregate_state> states_;     // deque: dirty_ points into it while the map grows
    pair_map<std::int64_t> types_;
    std::vector<aggregate_state*> dirty_;
    std::string scratch_;
    std::int64_t seen_version_ = -1;
    bool own_ = false;     ///< inside a transaction the writer began
    bool wrote_ = false;   ///< the current call wrote something (inside `transaction`)
    bool doomed_ = false;  ///< an append inside `transaction` failed after writing
};

}  // namespace projectionist::detail
