#pragma once

/// What the SQL event stores (SQLite, PostgreSQL) share: the interned event types, the aggregate
/// lookups, the appends through the store's own writer and `event_of`. Each store keeps its SQL
/// and supplies, privately:
///
///     writer_;  // its writer: append(stream, id, expected, events...) and append(append_batch&)
///     void load_types() const;  // types_ from the store's type table, past types_.size(), under mutex_
///     std::optional<std::pair<std::uint64_t, std::uint64_t>>  // (aggregate number, version)
///         find_aggregate(std::string_view stream, std::string_view id) const;
///     const Options& options() const;  // with max_payload_bytes
///
/// and names this class a friend.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/container_hash/hash.hpp>

#include <projectionist/event/stream.hpp>
#include <projectionist/store/append_batch.hpp>
#include <projectionist/store/event_type.hpp>
#include <projectionist/store/expected_version.hpp>
#include <projectionist/store/stored_record.hpp>

namespace projectionist::detail {

template <class Derived, class Codec>
class sql_event_store {
public:
    using event_store_category = detail::event_store_category;
    using codec = Codec;
    using type_entry = stored_event_type;
    using record = stored_record;
    using batch = stored_batch;

    /// The store's lock: hold it while using its connection.
    [[nodiscard]] std::mutex& mutex() const noexcept { return mutex_; }

    /// Events of many aggregates for one `append(append_batch&)` (store/append_batch.hpp), each
    /// encoded when added.
    using append_batch = detail::basic_append_batch<detail::encoded_slots<Codec>>;
    [[nodiscard]] append_batch new_batch() const { return {}; }

    /// Appends `events` to one aggregate of `Stream` in one transaction, if the aggregate is at
    /// `expected`; otherwise throws `version_conflict` and writes nothing.
    template <stream_type Stream, class... Events>
    append_result append(Stream stream, std::string_view aggregate_id, expected_version expected, Events&&... events) {
        std::lock_guard lock(mutex_);
        return appending().append(stream, aggregate_id, expected, std::forward<Events>(events)...);
    }

    /// Appends every part of `batch` in one transaction: each part's aggregate must be at the
    /// part's expected version (after the batch's earlier parts), or `version_conflict` names the
    /// first that is not and nothing is written. Returns one result per part, in order, and
    /// empties the batch for reuse.
    std::vector<append_result> append(append_batch& batch) {
        std::lock_guard lock(mutex_);
        return appending().append(batch);
    }

    /// The aggregate's current version, 0 when it has no events.
    template <stream_type Stream>
    [[nodiscard]] std::uint64_t version_of(Stream, std::string_view aggregate_id) const {
        auto a = self().find_aggregate(Stream::name, aggregate_id);
        return a ? a->second : 0;
    }

    /// The dense number the store gave an aggregate, or nullopt if it has no events.
    template <stream_type Stream>
    [[nodiscard]] std::optional<std::uint64_t> aggregate_number(Stream, std::string_view aggregate_id) const {
        auto a = self().find_aggregate(Stream::name, aggregate_id);
        if (!a) return std::nullopt;
        return a->first;
    }

    /// Interned event types (this or another process's); ids are dense, from 0: an id with no
    /// row in the type table (a gap) is an unknown type, with no stream and no name.
    [[nodiscard]] std::uint32_t type_count() const {
        std::lock_guard lock(mutex_);
        self().load_types();
        return static_cast<std::uint32_t>(types_.size());
    }
    [[nodiscard]] event_type_info type_info(std::uint32_t id) const {
        std::lock_guard lock(mutex_);
        self().load_types();
        const type_entry& t = types_.at(id);
        return {t.id, t.stream, t.name, nullptr};
    }

    /// Decodes a record into `Event`: checks the size limit, decodes with the codec, upcasts
    /// older schema versions. Throws codec_error with the reason.
    template <class Event>
    [[nodiscard]] Event event_of(const record& r) const {
        return decode_stored<Event, Codec>(r, self().options().max_payload_bytes);
    }

protected:
    sql_event_store() = default;

    /// Adds a type read from the store's type table, whose ids start at 1, in id order. Ids are
    /// mapped by their value, never by rank: a gap in the ids is kept as an unknown type.
    void intern_loaded(std::int64_t stored_id, std::string_view stream, std::string_view name) const {
        if (stored_id < 1 || stored_id > max_type_id) return;  // no record can name it as a valid type
        while (static_cast<std::int64_t>(types_.size()) < stored_id - 1) {
            type_entry& gap = types_.emplace_back();
            gap.id = static_cast<std::uint32_t>(types_.size() - 1);
            gap.known = false;
        }
        type_entry& t = types_.emplace_back();
        t.id = static_cast<std::uint32_t>(stored_id - 1);
        t.stream = std::string(stream);
        t.name = std::string(name);
        t.stream_hash = boost::hash_value(stream);
    }

    /// The type whose stored id is `stored_id` (under mutex_), loading new types if needed. An id
    /// with no type row gives `unknown_type_` (`known` false, an id no type map holds): mark the
    /// record with `unknown_type_defect`, which names the position and the id.
    [[nodiscard]] const type_entry& type_of(std::int64_t stored_id) const {
        if (stored_id < 1 || stored_id > max_type_id) return unknown_type_;
        const auto index = static_cast<std::size_t>(stored_id - 1);
        if (index >= types_.size()) self().load_types();
        return index < types_.size() && types_[index].known ? types_[index] : unknown_type_;
    }
    [[nodiscard]] static std::string unknown_type_defect(std::uint64_t position, std::int64_t stored_id) {
        return fmt::format("the event at position {} has type id {}, which is not in projectionist_event_types",
                           position, stored_id);
    }

    /// Whether aggregate `number` is known to belong to (stream, id): true or false once its row
    /// was looked up (`remember_aggregate`), nullopt before. Each number is looked up once and its
    /// aggregate remembered as a 32-bit hash: a backfill of 1M events over 125k aggregates runs
    /// 125k look-ups, not 1M. A number with no row is never remembered, so no stored value sizes
    /// an allocation. Under mutex_.
    [[nodiscard]] std::optional<bool> aggregate_known(std::int64_t number, std::string_view stream,
                                                      std::string_view id) const {
        if (number < 0) return false;
        const auto n = static_cast<std::size_t>(number);
        if (n < verified_.size() && verified_[n] != 0) return verified_[n] == aggregate_hash(stream, id);
        return std::nullopt;
    }
    /// `aggregate_known` for an aggregate of `type`'s stream, with the stream's hash taken once.
    [[nodiscard]] std::optional<bool> aggregate_known(std::int64_t number, const type_entry& type,
                                                      std::string_view id) const {
        if (number < 0) return false;
        const auto n = static_cast<std::size_t>(number);
        if (n < verified_.size() && verified_[n] != 0) return verified_[n] == aggregate_hash(type.stream_hash, id);
        return std::nullopt;
    }
    /// Asks the processor for what `aggregate_known(number, ...)` will read: a pass over a batch
    /// calls it a few records ahead, since a backfill's numbers come in random order and each
    /// look-up would otherwise wait for memory.
    void prefetch_aggregate(std::uint64_t number) const noexcept {
        if (number < verified_.size()) __builtin_prefetch(verified_.data() + number);
    }
    /// Records the row of projectionist_aggregates numbered `number` (read by the store).
    void remember_aggregate(std::int64_t number, std::string_view stream, std::string_view id) const {
        if (number < 0) return;
        const auto n = static_cast<std::size_t>(number);
        if (n >= verified_.size()) verified_.resize(n + 1 + n / 2, 0);
        verified_[n] = aggregate_hash(stream, id);
    }

    /// What is wrong with a record as read, in words naming its position and field; empty when
    /// nothing is. `type` is `type_of(type_id)`; `aggregate_ok` whether its number is its
    /// aggregate's (`aggregate_known`, after a look-up).
    [[nodiscard]] static std::string record_defect(std::int64_t position, std::int64_t type_id, const type_entry& type,
                                                   std::int64_t number, bool aggregate_ok, std::string_view id,
                                                   std::int64_t version, std::int64_t schema) {
        if (position < 1) [[unlikely]]
            return fmt::format("the event at position {} is out of range: positions start at 1", position);
        if (!type.known) [[unlikely]]
            return unknown_type_defect(static_cast<std::uint64_t>(position), type_id);
        if (!aggregate_ok) [[unlikely]]
            return aggregate_defect(position, number, id);
        if (version < 1) [[unlikely]]
            return fmt::format("the event at position {} has aggregate_version {}; versions start at 1", position,
                               version);
        if (schema < 1 || schema > 0xFFFF) [[unlikely]]
            return fmt::format("the event at position {} has schema_version {}, out of range", position, schema);
        return {};
    }

    [[nodiscard]] static std::string aggregate_defect(std::int64_t position, std::int64_t number, std::string_view id) {
        return fmt::format(
            "the event at position {} has aggregate_number {}, which is not the number of its aggregate '{}' in "
            "projectionist_aggregates",
            position, number, id);
    }

    /// Fills `r` with what a store read, or, for a record with a `defect`, marks it: a marked
    /// record has the unknown type, so that a runner that does not look at the mark fails on its
    /// type before it uses any other field.
    void set_record(stored_record& r, std::int64_t position, const type_entry& type, std::int64_t number,
                    std::int64_t version, std::int64_t schema, std::int64_t recorded_ns, std::string defect) const {
        r.set(static_cast<std::uint64_t>(position), defect.empty() ? type : unknown_type_,
              static_cast<std::uint64_t>(number), static_cast<std::uint64_t>(version), static_cast<unsigned>(schema),
              recorded_ns);
        if (!defect.empty()) [[unlikely]]
            r.set_defect(std::move(defect));
    }

    static constexpr std::int64_t max_type_id = 0x7FFFFFFF;

    mutable std::mutex mutex_;
    mutable std::deque<type_entry> types_;  // deque: records point at entries
    const type_entry unknown_type_{0xFFFFFFFFu, {}, {}, false};

    /// The store's writer, under mutex_, after the store's `prepare_append()` if it has one (the
    /// SQLite store raises its page cache at its first append, not before: see there).
    [[nodiscard]] auto& appending() {
        if constexpr (requires(Derived & d) { d.prepare_append(); }) self().prepare_append();
        return self().writer_;
    }

private:
    [[nodiscard]] const Derived& self() const noexcept { return static_cast<const Derived&>(*this); }
    [[nodiscard]] Derived& self() noexcept { return static_cast<Derived&>(*this); }
    [[nodiscard]] static std::uint32_t aggregate_hash(std::string_view stream, std::string_view id) noexcept {
        return aggregate_hash(boost::hash_value(stream), id);
    }
    [[nodiscard]] static std::uint32_t aggregate_hash(std::size_t stream_hash, std::string_view id) noexcept {
        // Read once per record: boost's string hash takes the bytes a word at a time.
        std::size_t h = stream_hash;
        boost::hash_combine(h, id);
        return static_cast<std::uint32_t>(h ^ (h >> 32)) | 1u;  // 0 means "not looked up"
    }

    mutable std::vector<std::uint32_t> verified_;  ///< per aggregate number: its aggregate's hash, once looked up
};

}  // namespace projectionist::detail
