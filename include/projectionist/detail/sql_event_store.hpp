#pragma once

/// What the SQL event stores (SQLite, PostgreSQL) share: the interned event types, the aggregate
/// lookups and `event_of`. Each store keeps its SQL and supplies, privately:
///
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

#include <projectionist/event/stream.hpp>
#include <projectionist/store/event_type.hpp>
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

    /// Interned event types (this or another process's); ids are dense, from 0.
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

    /// Adds a type read from the store's type table, whose ids start at 1.
    void intern_loaded(std::int64_t stored_id, std::string_view stream, std::string_view name) const {
        type_entry& t = types_.emplace_back();
        t.id = static_cast<std::uint32_t>(stored_id - 1);
        t.stream = std::string(stream);
        t.name = std::string(name);
    }

    mutable std::mutex mutex_;
    mutable std::deque<type_entry> types_;  // deque: records point at entries

private:
    [[nodiscard]] const Derived& self() const noexcept { return static_cast<const Derived&>(*this); }
};

}  // namespace projectionist::detail
