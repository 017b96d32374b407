#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <projectionist/detail/sql_event_store.hpp>
#include <projectionist/detail/sqlite_api.hpp>
#include <projectionist/detail/sqlite_schema.hpp>
#include <projectionist/error.hpp>
#include <projectionist/event/codec.hpp>
#include <projectionist/event/envelope.hpp>
#include <projectionist/event/event.hpp>
#include <projectionist/event/schema.hpp>
#include <projectionist/event/stream.hpp>
#include <projectionist/store/aggregate_numbers.hpp>
#include <projectionist/store/append_batch.hpp>
#include <projectionist/store/event_type.hpp>
#include <projectionist/store/expected_version.hpp>
#include <projectionist/store/sqlite_event_writer.hpp>
#include <projectionist/store/stored_record.hpp>

namespace projectionist {

/// The event log in a SQLite file (WAL mode): one writer and many readers, across processes.
///
/// Events are encoded by `Codec` (binary_codec by default, json_codec for a readable log), with
/// their schema version. Type names and aggregates are interned: a record carries a dense type
/// id and aggregate number, which the runner maps once to its compile-time tables.
///
///     projectionist::sqlite_event_store store("app.db");
///     store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
///
/// `sqlite3 app.db "select type, payload from events"` shows the log (readable with json_codec).
template <class Codec = binary_codec>
class basic_sqlite_event_store : public detail::sql_event_store<basic_sqlite_event_store<Codec>, Codec> {
    using base = detail::sql_event_store<basic_sqlite_event_store<Codec>, Codec>;
    friend base;
    using base::mutex_, base::types_;

public:
    using typename base::batch, typename base::record, typename base::type_entry;

    /// Opens (or creates) the log in `path`. Throws `projectionist::error` for a file that is
    /// not projectionist's or has a newer schema, without modifying it.
    explicit basic_sqlite_event_store(std::string path, sqlite_options options = {})
        : path_(std::move(path)), options_(options), db_(detail::sqlite::open_database(path_, options_)) {
        check_codec();
    }

    basic_sqlite_event_store(const basic_sqlite_event_store&) = delete;
    basic_sqlite_event_store& operator=(const basic_sqlite_event_store&) = delete;

    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    [[nodiscard]] const sqlite_options& options() const noexcept { return options_; }
    /// The store's connection (the storage may share it, so that emitted events commit with the
    /// batch). Not thread-safe on its own: use it only from the thread that drives the runner.
    [[nodiscard]] detail::sqlite::connection& connection() noexcept { return db_; }

    using typename base::append_batch;

    /// Appends events through one connection, with its own prepared statements and cached
    /// lookups (store/sqlite_event_writer.hpp). The store has one for its own connection; a
    /// runner whose storage shares the log's file makes one on its session's connection, so that
    /// emitted events commit in the batch's transaction.
    using writer = detail::sqlite_event_writer<Codec>;

    /// A write transaction on the store's connection (BEGIN IMMEDIATE) in which appends take no
    /// savepoint each: the fast way to append many events one call at a time. An append that
    /// fails after writing dooms it (`commit()` rolls back and throws). Rolls back unless
    /// committed. Hold no other transaction of the connection meanwhile.
    ///
    ///     auto tx = store.transaction();
    ///     for (const auto& e : incoming) store.append(ticket_stream{}, e.id, e.version, e.event);
    ///     tx.commit();
    [[nodiscard]] typename writer::transaction transaction() {
        std::lock_guard lock(mutex_);
        return typename writer::transaction(this->appending());
    }

    using base::append;  // one aggregate's events, or a batch of many: see detail/sql_event_store.hpp

    /// A writer on another connection to this log's file (see `writer`).
    [[nodiscard]] writer writer_on(detail::sqlite::connection& db) const {
        return writer(db, options_.max_payload_bytes);
    }

    /// Whether `db` is a connection to this log's database file.
    [[nodiscard]] bool same_database(const detail::sqlite::connection& db) const {
        const char* a = sqlite3_db_filename(db_.get(), "main");
        const char* b = sqlite3_db_filename(db.get(), "main");
        return a && b && *a && std::string_view(a) == std::string_view(b);
    }

    /// Position of the last committed event, 0 when the log is empty.
    [[nodiscard]] std::uint64_t head() const {
        std::lock_guard lock(mutex_);
        auto& s = prepared(head_, "SELECT coalesce(max(position), 0) FROM projectionist_events");
        const auto h = s.step() ? static_cast<std::uint64_t>(s.int64(0)) : 0;
        s.reset();
        return h;
    }

    /// How many aggregates the log numbered (numbers are dense from 0: the highest plus one, one
    /// look-up at the end of the table's key). A bulk backfill sizes its row stores from it, and a
    /// per-aggregate runner its positions.
    [[nodiscard]] std::uint64_t aggregate_count() const {
        std::lock_guard lock(mutex_);
        auto& s = prepared(aggregate_count_, "SELECT coalesce(max(number) + 1, 0) FROM projectionist_aggregates");
        const std::int64_t n = s.step() ? s.int64(0) : 0;
        s.reset();
        return n > 0 ? static_cast<std::uint64_t>(n) : 0;
    }

    /// Reads may run beside the use of earlier reads' records and of storage sessions on another
    /// thread (has_concurrent_read): the store reads on a connection of its own, under its lock,
    /// into the batch it is given.
    static constexpr bool reads_concurrently = true;

    /// Fills `out` with up to `max` records after position `after`, in global order.
    void read(std::uint64_t after, std::size_t max, batch& out) const {
        std::lock_guard lock(mutex_);
        out.clear();
        if (after == 0) check_positions();
        if (!read_.get())  // the SQL is put together once, not per read
            read_ = detail::sqlite::statement(
                db_, fmt::format("{}WHERE e.position > ? ORDER BY e.position LIMIT ?", read_columns));
        auto& s = read_;
        s.bind(1, static_cast<std::int64_t>(after));
        s.bind(2, static_cast<std::int64_t>(max));
        read_rows(s, out);
    }

    /// Fills `out` with up to `max` records of the aggregates in `range`, with `after < position
    /// <= through`, in global order. One scan of the positions' range: the other aggregates'
    /// events are passed over inside SQLite, without being returned.
    void read_aggregates(std::uint64_t after, std::uint64_t through, aggregate_numbers range, std::size_t max,
                         batch& out) const {
        std::lock_guard lock(mutex_);
        out.clear();
        if (after == 0) check_positions();
        if (!read_range_.get())
            read_range_ = detail::sqlite::statement(
                db_, fmt::format("{}WHERE e.position > ? AND e.position <= ? AND e.aggregate_number >= ? AND "
                                 "e.aggregate_number < ? ORDER BY e.position LIMIT ?",
                                 read_columns));
        auto& s = read_range_;
        s.bind(1, detail::sql_int64(after));
        s.bind(2, detail::sql_int64(through));
        s.bind(3, detail::sql_int64(range.first));
        s.bind(4, detail::sql_int64(range.last));  // the open end: the largest number
        s.bind(5, detail::sql_int64(max));
        read_rows(s, out);
    }

    /// Every event of one aggregate, in version order.
    template <stream_type Stream>
    [[nodiscard]] batch read_aggregate(Stream, std::string_view aggregate_id) const {
        std::lock_guard lock(mutex_);
        batch out;
        if (!read_aggregate_.get())
            read_aggregate_ = detail::sqlite::statement(
                db_,
                fmt::format("{}WHERE e.stream = ? AND e.aggregate_id = ? ORDER BY e.aggregate_version", read_columns));
        auto& s = read_aggregate_;
        s.bind(1, Stream::name);
        s.bind(2, aggregate_id);
        read_rows(s, out);
        return out;
    }

private:
    detail::sqlite::statement& prepared(detail::sqlite::statement& slot, std::string_view sql) const {
        if (!slot.get()) slot = detail::sqlite::statement(db_, sql);
        return slot;
    }

    void check_codec() {
        detail::sqlite::statement get(db_, "SELECT value FROM projectionist_settings WHERE key = 'codec'");
        if (get.step()) {
            if (get.text(0) != Codec::name)
                throw error(
                    fmt::format("projectionist: the event log in '{}' is encoded with the {} codec, but this "
                                "store uses the {} codec",
                                path_, get.text(0), Codec::name));
            return;
        }
        detail::sqlite::statement set(db_,
                                      "INSERT OR IGNORE INTO projectionist_settings(key, value) VALUES ('codec', ?)");
        set.bind(1, Codec::name);
        set.run();
    }

    /// Loads interned types written since the last look (by this or another process).
    void load_types() const {
        auto& s =
            prepared(load_types_, "SELECT id, stream, name FROM projectionist_event_types WHERE id > ? ORDER BY id");
        s.bind(1, static_cast<std::int64_t>(types_.size()));
        while (s.step()) this->intern_loaded(s.int64(0), s.text(1), s.text(2));
        s.reset();
    }

    /// The columns `fill` reads, in order.
    static constexpr std::string_view read_columns =
        "SELECT e.position, e.type_id, e.aggregate_number, e.aggregate_version, e.schema_version, e.recorded_at, "
        "e.aggregate_id, e.payload FROM projectionist_events e ";

    /// Whether `number` is the number projectionist_aggregates gave the aggregate (`type`'s
    /// stream, id). A number not looked up yet reads the rows of its whole block of
    /// `aggregate_block` numbers in one range query (see `aggregate_known`): a backfill over 125k
    /// aggregates, whose events come in random order, runs about 125 queries instead of 125k.
    bool aggregate_matches(std::int64_t number, const type_entry& type, std::string_view id) const {
        if (auto known = this->aggregate_known(number, type, id)) return *known;
        auto& s = prepared(aggregate_of_,
                           "SELECT number, stream, aggregate_id FROM projectionist_aggregates WHERE number >= ? AND "
                           "number < ?");
        const std::int64_t first = number - number % aggregate_block;
        s.bind(1, first);
        s.bind(2, first + aggregate_block);
        while (s.step()) this->remember_aggregate(s.int64(0), s.text(1), s.text(2));
        s.reset();
        return this->aggregate_known(number, type, id).value_or(false);
    }
    static constexpr std::int64_t aggregate_block = 1024;

    /// The rows of `s` (a statement of `read_columns`) into `out`, in two passes: each row into a
    /// record (`fill`), then, with the statement done, each record's aggregate number against its
    /// aggregate (`check_aggregates`). A read that throws leaves `out` empty and the statement
    /// reset (no read transaction left open).
    void read_rows(detail::sqlite::statement& s, batch& out) const {
        recheck_.clear();
        try {
            while (s.step()) fill(out, s);
            s.reset();
            check_aggregates(out);
        } catch (...) {
            s.reset();
            out.clear();
            throw;
        }
    }

    /// One row of `read_columns` into the batch's next record, each column read once. What a
    /// store never writes (a type id with no type, a field out of range) marks the record instead
    /// of being used: no event is applied as another type, and no stored number sizes an
    /// allocation. The aggregate number is checked by `check_aggregates`.
    void fill(batch& out, const detail::sqlite::statement& s) const {
        record& r = out.next();
        const std::int64_t position = s.int64(0);
        const std::int64_t type_id = s.int64(1);
        const type_entry& type = this->type_of(type_id);
        const std::int64_t number = s.int64(2);
        const std::int64_t version = s.int64(3);
        const std::int64_t schema = s.int64(4);
        const std::int64_t recorded_ns = s.int64(5);
        const std::string_view id = s.text(6);
        std::string defect = this->record_defect(position, type_id, type, number, true, id, version, schema);
        // A record marked for its version or schema version is marked for its aggregate instead
        // if that is wrong too, as one check per record in this order would.
        if (!defect.empty() && type.known && position >= 1) [[unlikely]]
            recheck_.emplace_back(out.size() - 1, &type);
        this->set_record(r, position, type, number, version, schema, recorded_ns, std::move(defect));
        // clear() + append(): the buffers keep their capacity, and the copy takes the short path
        // (assign() goes through the general replace, which checks for overlap: 4.5 % of a bulk
        // backfill's instructions).
        std::string& id_buffer = r.aggregate_id_buffer();
        id_buffer.clear();
        id_buffer.append(id);
        std::string& payload_buffer = r.payload_buffer();
        payload_buffer.clear();
        payload_buffer.append(s.blob(7));
    }

    /// Marks each record of `out` whose aggregate number is not its aggregate's. The numbers of a
    /// backfill come in random order, so the look-up of a record a few ahead is started before
    /// the current one is checked: one pass that waits for memory once, not once per record.
    void check_aggregates(batch& out) const {
        constexpr std::size_t ahead = 16;
        const std::size_t n = out.size();
        for (std::size_t i = 0; i < n; ++i) {
            if (i + ahead < n) this->prefetch_aggregate(out[i + ahead].aggregate_number());
            record& r = out[i];
            const type_entry& type = r.type();
            if (!type.known) continue;  // marked by `fill`, or a type with no row
            check_aggregate(r, type);
        }
        for (const auto& [index, type] : recheck_) check_aggregate(out[index], *type);
    }
    void check_aggregate(record& r, const type_entry& type) const {
        const auto number = static_cast<std::int64_t>(r.aggregate_number());
        if (!aggregate_matches(number, type, r.aggregate_id())) [[unlikely]]
            r.set_defect(this->unknown_type_,
                         this->aggregate_defect(static_cast<std::int64_t>(r.position()), number, r.aggregate_id()));
    }

    /// An event at a position below 1 is never read (reads go after a position >= 0): refuse
    /// the log instead of passing over it in silence.
    void check_positions() const {
        auto& s = prepared(min_position_, "SELECT min(position) FROM projectionist_events");
        const bool has = s.step() && !s.is_null(0);
        const std::int64_t first = has ? s.int64(0) : 1;
        s.reset();
        if (first < 1)
            throw error(
                fmt::format("projectionist: the event log in '{}' holds an event at position {}: positions "
                            "start at 1, so it would never be read",
                            path_, first));
    }

    /// Before the first append (under mutex_): the connection's page cache is raised to
    /// `append_cache_size_kib` (never lowered), for the random inserts into the log's index. Not
    /// before: a store that only reads would fill that cache with the log's pages, each one a new
    /// allocation, while a read in position order never reads a page twice (a backfill of 1M events
    /// spent a tenth of its time there, and 64 MiB more memory).
    void prepare_append() {
        if (append_cache_raised_) return;
        const std::size_t kib = options_.append_cache_size_kib;
        if (kib != 0) {
            // PRAGMA cache_size is pages when positive, KiB when negative.
            const std::int64_t now = detail::sqlite::pragma_int(db_, "cache_size");
            const std::int64_t now_kib = now < 0 ? -now : now * detail::sqlite::pragma_int(db_, "page_size") / 1024;
            if (static_cast<std::int64_t>(kib) > now_kib) db_.exec(fmt::format("PRAGMA cache_size=-{}", kib));
        }
        append_cache_raised_ = true;
    }

    std::optional<std::pair<std::uint64_t, std::uint64_t>> find_aggregate(std::string_view stream,
                                                                          std::string_view id) const {
        std::lock_guard lock(mutex_);
        auto& find = prepared(find_aggregate_,
                              "SELECT number, version FROM projectionist_aggregates WHERE stream = ? "
                              "AND aggregate_id = ?");
        find.bind(1, stream);
        find.bind(2, id);
        std::optional<std::pair<std::uint64_t, std::uint64_t>> out;
        if (find.step())
            out.emplace(static_cast<std::uint64_t>(find.int64(0)), static_cast<std::uint64_t>(find.int64(1)));
        find.reset();
        return out;
    }

    std::string path_;
    sqlite_options options_;
    detail::sqlite::connection db_;
    mutable detail::sqlite::statement load_types_, find_aggregate_, head_, read_, read_range_, read_aggregate_,
        min_position_, aggregate_of_, aggregate_count_;
    /// Records of the batch being read that `fill` marked although their type is known: their
    /// index and type, for `check_aggregates`.
    mutable std::vector<std::pair<std::size_t, const type_entry*>> recheck_;
    writer writer_{db_, options_.max_payload_bytes};  // its page cache: prepare_append()
    bool append_cache_raised_ = false;
};

/// The SQLite event log with the default (binary) codec.
using sqlite_event_store = basic_sqlite_event_store<binary_codec>;

}  // namespace projectionist
