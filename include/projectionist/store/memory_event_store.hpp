#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/unordered/unordered_flat_map.hpp>

#include <projectionist/error.hpp>
#include <projectionist/event/envelope.hpp>
#include <projectionist/event/event.hpp>
#include <projectionist/event/stream.hpp>
#include <projectionist/store/aggregate_numbers.hpp>
#include <projectionist/store/append_batch.hpp>
#include <projectionist/store/event_type.hpp>
#include <projectionist/store/expected_version.hpp>

namespace projectionist {

/// An event store in memory: the default for tests, examples and in-process read models.
///
/// Events stay typed (each record owns the event object; nothing is serialized). Appends are
/// atomic per call and checked against the expected aggregate version. Readers and one writer
/// may run on different threads: records never move once appended, so a batch read hands out
/// pointers that stay valid for the store's lifetime.
///
///     projectionist::memory_event_store store;
///     store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
class memory_event_store {
public:
    struct type_entry {
        event_type_info info;
        std::string stream;
        std::string name;
    };
    struct aggregate_entry {
        std::uint64_t number = 0;
        const std::string* stream = nullptr;
        std::string id;
        std::vector<std::uint64_t> positions;  ///< positions[v - 1] holds version v
    };

    /// One stored event. Owned by the store; never moved or changed once appended.
    class record {
    public:
        [[nodiscard]] std::uint64_t position() const noexcept { return position_; }
        [[nodiscard]] std::uint32_t type_id() const noexcept { return type_->info.id; }
        [[nodiscard]] std::string_view type_name() const noexcept { return type_->name; }
        [[nodiscard]] std::string_view stream() const noexcept { return type_->stream; }
        [[nodiscard]] std::uint64_t aggregate_number() const noexcept { return aggregate_number_; }
        [[nodiscard]] std::string_view aggregate_id() const noexcept { return aggregate_->id; }
        [[nodiscard]] std::uint64_t aggregate_version() const noexcept { return version_; }
        [[nodiscard]] std::chrono::system_clock::time_point recorded_at() const noexcept { return recorded_at_; }
        [[nodiscard]] envelope envelope_of() const noexcept {
            return {position_, type_->stream, aggregate_->id, version_, recorded_at_, type_->name};
        }
        /// The event, if this record holds an `Event` (checked by type identity).
        template <class Event>
        [[nodiscard]] const Event* get_if() const noexcept {
            return type_->info.cpp_type == detail::type_identity<Event>() ? static_cast<const Event*>(payload_.get())
                                                                          : nullptr;
        }

    private:
        friend class memory_event_store;
        using payload_ptr = std::unique_ptr<void, void (*)(void*) noexcept>;

        record(std::uint64_t position, const type_entry* type, const aggregate_entry* aggregate, std::uint64_t version,
               std::chrono::system_clock::time_point at, payload_ptr payload) noexcept
            : position_(position),
              type_(type),
              aggregate_(aggregate),
              aggregate_number_(aggregate->number),
              version_(version),
              recorded_at_(at),
              payload_(std::move(payload)) {}

        std::uint64_t position_;
        const type_entry* type_;
        const aggregate_entry* aggregate_;
        std::uint64_t aggregate_number_;  // inline: per-aggregate runners read it for every event
        std::uint64_t version_;
        std::chrono::system_clock::time_point recorded_at_;
        payload_ptr payload_;
    };

    /// What `read` fills: pointers to records, in global order.
    using batch = std::vector<const record*>;
    using event_store_category = detail::event_store_category;

    memory_event_store() = default;
    memory_event_store(const memory_event_store&) = delete;
    memory_event_store& operator=(const memory_event_store&) = delete;

    /// Appends `events` to one aggregate of `Stream`, atomically, if the aggregate is at
    /// `expected`; otherwise throws `version_conflict` and appends nothing.
    template <stream_type Stream, class... Events>
    append_result append(Stream, std::string_view aggregate_id, expected_version expected, Events&&... events) {
        static_assert(detail::check_append<Stream, Events...>());
        // Everything that can throw before the first record is in place happens here.
        event_slots maker;
        std::array<event_slots::slot, sizeof...(Events)> slots{maker.make(std::forward<Events>(events))...};
        const auto now = std::chrono::system_clock::now();
        append_result result;
        {
            std::unique_lock lock(mutex_);
            // The version check comes first: a refused append leaves no trace, not even a type.
            aggregate_entry* aggregate = find_aggregate(Stream::name, aggregate_id);
            const std::uint64_t current = aggregate ? aggregate->positions.size() : 0;
            if (!expected.accepts(current))
                throw version_conflict(Stream::name, aggregate_id, expected.value(), current);
            const std::string& stream_name = intern_stream(Stream::name);
            std::array<const type_entry*, sizeof...(Events)> types{};
            for (std::size_t i = 0; i < sizeof...(Events); ++i)
                types[i] = &intern_type(stream_name, slots[i].name, slots[i].identity);
            if (!aggregate) aggregate = &add_aggregate(stream_name, aggregate_id);
            const std::size_t records_before = records_.size();
            const std::size_t positions_before = aggregate->positions.size();
            try {
                for (std::size_t i = 0; i < sizeof...(Events); ++i)
                    push_record(*aggregate, types[i], now, std::move(slots[i].payload));
            } catch (...) {
                while (records_.size() > records_before) records_.pop_back();
                aggregate->positions.resize(positions_before);
                throw;
            }
            result = {records_before + 1, records_.size(), aggregate->positions.size()};
            head_.store(records_.size(), std::memory_order_release);
        }
        notify_appended();
        return result;
    }

private:
    /// What a batch keeps of an event until the append: the typed event, boxed.
    struct event_slots {
        struct slot {
            record::payload_ptr payload{nullptr, [](void*) noexcept {}};
            const void* identity = nullptr;
            std::string_view name;
        };
        template <class Event>
        slot make(Event&& e) {
            using E = std::remove_cvref_t<Event>;
            return {make_payload(std::forward<Event>(e)), detail::type_identity<E>(), event_name_of<E>};
        }
        void clear() noexcept {}
    };

public:
    /// Events of many aggregates for one `append(append_batch&)` (store/append_batch.hpp).
    using append_batch = detail::basic_append_batch<event_slots>;
    [[nodiscard]] append_batch new_batch() const { return {}; }

    /// Appends every part of `batch`, atomically: each part's aggregate must be at the part's
    /// expected version (after the batch's earlier parts), or `version_conflict` names the first
    /// that is not and nothing is appended. Returns one result per part, in order; on success the
    /// events are moved into the log and the batch is emptied for reuse.
    std::vector<append_result> append(append_batch& batch) {
        const auto& parts = batch.parts();
        auto& slots = batch.events();
        std::vector<append_result> results;
        results.reserve(parts.size());
        const auto now = std::chrono::system_clock::now();
        {
            std::unique_lock lock(mutex_);
            // Every check first, against the versions the earlier parts leave: a refused batch
            // leaves no trace, not even a type.
            std::vector<aggregate_entry*> aggregates(parts.size(), nullptr);
            boost::unordered_flat_map<std::pair<std::string_view, std::string_view>, std::uint64_t,
                                      detail::string_pair_hash, detail::string_pair_equal>
                versions;
            for (std::size_t p = 0; p < parts.size(); ++p) {
                const batch_part& part = parts[p];
                const std::pair<std::string_view, std::string_view> key(part.stream, part.aggregate_id);
                auto seen = versions.find(key);
                aggregates[p] = find_aggregate(part.stream, part.aggregate_id);
                const std::uint64_t current = seen != versions.end() ? seen->second
                                              : aggregates[p]        ? aggregates[p]->positions.size()
                                                                     : 0;
                if (!part.expected.accepts(current))
                    throw version_conflict(part.stream, part.aggregate_id, part.expected.value(), current);
                versions.insert_or_assign(key, current + part.count);
            }
            std::vector<const type_entry*> types(slots.size(), nullptr);
            for (const batch_part& part : parts) {
                const std::string& stream_name = intern_stream(part.stream);
                for (std::size_t i = part.first; i < part.first + part.count; ++i)
                    types[i] = &intern_type(stream_name, slots[i].name, slots[i].identity);
            }
            const std::size_t records_before = records_.size();
            std::vector<std::pair<aggregate_entry*, std::size_t>> touched;
            try {
                for (std::size_t p = 0; p < parts.size(); ++p) {
                    const batch_part& part = parts[p];
                    aggregate_entry* aggregate = find_aggregate(part.stream, part.aggregate_id);
                    if (!aggregate) aggregate = &add_aggregate(intern_stream(part.stream), part.aggregate_id);
                    touched.emplace_back(aggregate, aggregate->positions.size());
                    const std::uint64_t first = records_.size() + 1;
                    for (std::size_t i = part.first; i < part.first + part.count; ++i)
                        push_record(*aggregate, types[i], now, std::move(slots[i].payload));
                    results.push_back({first, records_.size(), aggregate->positions.size()});
                }
            } catch (...) {
                while (records_.size() > records_before) records_.pop_back();
                for (auto it = touched.rbegin(); it != touched.rend(); ++it) it->first->positions.resize(it->second);
                throw;
            }
            head_.store(records_.size(), std::memory_order_release);
        }
        batch.clear();
        notify_appended();
        return results;
    }

    /// Position of the last event, 0 when the log is empty.
    [[nodiscard]] std::uint64_t head() const noexcept { return head_.load(std::memory_order_acquire); }

    /// Reads may run beside the use of earlier reads' records on another thread (has_concurrent_read):
    /// they take the log's lock for reading, and appends never move a record.
    static constexpr bool reads_concurrently = true;

    /// Fills `out` with up to `max` records after position `after`, in global order.
    void read(std::uint64_t after, std::size_t max, batch& out) const {
        out.clear();
        std::shared_lock lock(mutex_);
        const std::uint64_t size = records_.size();
        if (after >= size) return;
        // Not `after + max`: that wraps around for a large max ("read everything").
        const std::uint64_t end = after + std::min<std::uint64_t>(size - after, max);
        for (std::uint64_t i = after; i < end; ++i) out.push_back(&records_[i]);
    }

    /// Fills `out` with up to `max` records of the aggregates in `range`, with `after < position
    /// <= through`, in global order.
    void read_aggregates(std::uint64_t after, std::uint64_t through, aggregate_numbers range, std::size_t max,
                         batch& out) const {
        out.clear();
        std::shared_lock lock(mutex_);
        const std::uint64_t end = std::min<std::uint64_t>(records_.size(), through);
        for (std::uint64_t i = after; i < end && out.size() < max; ++i)
            if (range.contains(records_[i].aggregate_number())) out.push_back(&records_[i]);
    }

    /// Every event of one aggregate, in version order.
    template <stream_type Stream>
    [[nodiscard]] batch read_aggregate(Stream, std::string_view aggregate_id) const {
        batch out;
        std::shared_lock lock(mutex_);
        auto it = aggregates_.find(std::pair<std::string_view, std::string_view>(Stream::name, aggregate_id));
        if (it == aggregates_.end()) return out;
        for (std::uint64_t p : aggregate_table_[it->second].positions) out.push_back(&records_[p - 1]);
        return out;
    }

    /// The aggregate's current version, 0 when it has no events.
    template <stream_type Stream>
    [[nodiscard]] std::uint64_t version_of(Stream, std::string_view aggregate_id) const {
        std::shared_lock lock(mutex_);
        auto it = aggregates_.find(std::pair<std::string_view, std::string_view>(Stream::name, aggregate_id));
        return it == aggregates_.end() ? 0 : aggregate_table_[it->second].positions.size();
    }

    /// The dense number the store gave an aggregate (per-aggregate checkpoints are indexed by
    /// it), or nullopt if the aggregate has no events.
    template <stream_type Stream>
    [[nodiscard]] std::optional<std::uint64_t> aggregate_number(Stream, std::string_view aggregate_id) const {
        std::shared_lock lock(mutex_);
        auto it = aggregates_.find(std::pair<std::string_view, std::string_view>(Stream::name, aggregate_id));
        if (it == aggregates_.end()) return std::nullopt;
        return it->second;
    }

    /// Interned event types; ids are dense, from 0.
    [[nodiscard]] std::uint32_t type_count() const {
        std::shared_lock lock(mutex_);
        return static_cast<std::uint32_t>(types_.size());
    }
    [[nodiscard]] event_type_info type_info(std::uint32_t id) const {
        std::shared_lock lock(mutex_);
        return types_.at(id).info;
    }

    /// Number of distinct (stream, aggregate id) pairs; aggregate numbers are dense below it.
    [[nodiscard]] std::uint64_t aggregate_count() const {
        std::shared_lock lock(mutex_);
        return aggregate_table_.size();
    }

    /// The event a record holds, without a check: the runner calls this only after mapping the
    /// record's type id to `Event`, which compared names and C++ type identity once.
    template <class Event>
    [[nodiscard]] static const Event& event_of(const record& r) noexcept {
        return *static_cast<const Event*>(r.payload_.get());
    }

    /// Blocks until the head passes `after`, `timeout` elapses or `stop` is requested.
    bool wait_for_events(std::uint64_t after, std::chrono::milliseconds timeout, std::stop_token stop) const {
        std::unique_lock lock(wait_mutex_);
        return appended_.wait_for(lock, stop, timeout, [&] { return head() > after; });
    }

private:
    void push_record(aggregate_entry& aggregate, const type_entry* type, std::chrono::system_clock::time_point at,
                     record::payload_ptr payload) {
        const std::uint64_t position = records_.size() + 1;
        aggregate.positions.push_back(position);
        records_.push_back(record(position, type, &aggregate, aggregate.positions.size(), at, std::move(payload)));
    }

    void notify_appended() {
        {
            // Taking the waiters' mutex orders this notify after any waiter's predicate check.
            std::lock_guard wait_lock(wait_mutex_);
        }
        appended_.notify_all();
    }

    template <class Event>
    static record::payload_ptr make_payload(Event&& e) {
        using E = std::remove_cvref_t<Event>;
        return record::payload_ptr(new E(std::forward<Event>(e)), [](void* p) noexcept { delete static_cast<E*>(p); });
    }

    const std::string& intern_stream(std::string_view name) {
        for (const std::string& s : streams_)
            if (s == name) return s;
        return streams_.emplace_back(name);
    }

    const type_entry& intern_type(const std::string& stream, std::string_view name, const void* identity) {
        auto it = type_index_.find(std::pair<std::string_view, std::string_view>(stream, name));
        if (it != type_index_.end()) {
            const type_entry& t = types_[it->second];
            if (t.info.cpp_type != identity)
                throw error(
                    fmt::format("projectionist: stored event name '{}' of stream '{}' is already used by "
                                "another C++ type; each stored name must map to one event type",
                                name, stream));
            return t;
        }
        const auto id = static_cast<std::uint32_t>(types_.size());
        type_entry& t = types_.emplace_back();
        t.stream = stream;
        t.name = std::string(name);
        t.info = {id, t.stream, t.name, identity};
        type_index_.emplace(std::pair<std::string, std::string>(stream, name), id);
        return t;
    }

    aggregate_entry* find_aggregate(std::string_view stream, std::string_view id) {
        auto it = aggregates_.find(std::pair<std::string_view, std::string_view>(stream, id));
        return it == aggregates_.end() ? nullptr : &aggregate_table_[it->second];
    }

    aggregate_entry& add_aggregate(const std::string& stream, std::string_view id) {
        const std::uint64_t number = aggregate_table_.size();
        aggregate_entry& a = aggregate_table_.emplace_back();
        a.number = number;
        a.stream = &stream;
        a.id = std::string(id);
        aggregates_.emplace(std::pair<std::string, std::string>(stream, id), number);
        return a;
    }

    mutable std::shared_mutex mutex_;
    std::deque<record> records_;  // deque: appends never move existing records
    std::deque<std::string> streams_;
    std::deque<type_entry> types_;
    boost::unordered_flat_map<std::pair<std::string, std::string>, std::uint32_t, detail::string_pair_hash,
                              detail::string_pair_equal>
        type_index_;
    std::deque<aggregate_entry> aggregate_table_;
    boost::unordered_flat_map<std::pair<std::string, std::string>, std::uint64_t, detail::string_pair_hash,
                              detail::string_pair_equal>
        aggregates_;
    std::atomic<std::uint64_t> head_{0};
    mutable std::mutex wait_mutex_;
    mutable std::condition_variable_any appended_;
};

}  // namespace projectionist
