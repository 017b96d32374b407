#pragma once

/// Many events of many aggregates, appended by one call in one transaction: what every event
/// store's `append_batch` type is built on. Each `add` is one aggregate's part, with its own
/// expected version; the store's `append(batch)` checks every part and writes all of them, or
/// throws (`version_conflict` naming the first aggregate whose check failed) and writes nothing.
///
///     auto batch = store.new_batch();
///     batch.add(ticket_stream{}, "t-1", 3, ticket_closed{"t-1"})
///          .add(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"}, ticket_closed{"t-2"});
///     std::vector<projectionist::append_result> done = store.append(batch);   // one per add, in order
///
/// An aggregate may appear in several parts: each part's expected version is checked against the
/// version the earlier parts of the batch leave it at.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <projectionist/event/event.hpp>
#include <projectionist/event/schema.hpp>
#include <projectionist/event/stream.hpp>
#include <projectionist/store/expected_version.hpp>

namespace projectionist {

/// One aggregate's part of a batch: its events are `events()[first, first + count)`.
struct batch_part {
    std::string_view stream;  ///< Stream::name: static storage
    std::string aggregate_id;
    expected_version expected = expected_version::any();
    std::size_t first = 0;
    std::size_t count = 0;
};

namespace detail {

/// Hash and equality of (stream, aggregate id) pairs, heterogeneous over string and string_view.
struct string_pair_hash {
    using is_transparent = void;
    std::size_t operator()(const std::pair<std::string_view, std::string_view>& k) const noexcept {
        const std::size_t a = std::hash<std::string_view>{}(k.first);
        const std::size_t b = std::hash<std::string_view>{}(k.second);
        return a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
    }
    std::size_t operator()(const std::pair<std::string, std::string>& k) const noexcept {
        return (*this)(std::pair<std::string_view, std::string_view>(k.first, k.second));
    }
};
struct string_pair_equal {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept {
        return std::string_view(a.first) == std::string_view(b.first) &&
               std::string_view(a.second) == std::string_view(b.second);
    }
};

/// The parts and events of a batch. `Slots` turns each event into what the store keeps of it
/// until the append (the typed event for memory, the encoded payload for SQL stores):
///
///     struct Slots {
///         using slot = ...;
///         template <class Event> slot make(Event&& e);   // may throw: the add is then undone
///         void clear() noexcept;
///     };
template <class Slots>
class basic_append_batch {
public:
    using slot = typename Slots::slot;

    /// Adds one aggregate's events with its expected version (see expected_version). Throws what
    /// the store's encoding throws, and then leaves the batch as it was before the call.
    template <stream_type Stream, class... Events>
    basic_append_batch& add(Stream, std::string_view aggregate_id, expected_version expected, Events&&... events) {
        static_assert(check_append<Stream, Events...>());
        const std::size_t first = events_.size();
        const std::size_t parts_before = parts_.size();
        try {
            parts_.push_back({Stream::name, std::string(aggregate_id), expected, first, sizeof...(Events)});
            (events_.push_back(slots_.make(std::forward<Events>(events))), ...);
        } catch (...) {
            events_.erase(events_.begin() + static_cast<std::ptrdiff_t>(first), events_.end());
            parts_.erase(parts_.begin() + static_cast<std::ptrdiff_t>(parts_before), parts_.end());
            throw;
        }
        return *this;
    }

    [[nodiscard]] const std::vector<batch_part>& parts() const noexcept { return parts_; }
    [[nodiscard]] const std::vector<slot>& events() const noexcept { return events_; }
    [[nodiscard]] std::vector<slot>& events() noexcept { return events_; }
    [[nodiscard]] const Slots& slots() const noexcept { return slots_; }
    /// The number of events (not of parts).
    [[nodiscard]] std::size_t size() const noexcept { return events_.size(); }
    [[nodiscard]] bool empty() const noexcept { return events_.empty(); }
    void reserve(std::size_t parts, std::size_t events) {
        parts_.reserve(parts);
        events_.reserve(events);
    }
    /// Empties the batch, keeping its memory for the next one.
    void clear() noexcept {
        parts_.clear();
        events_.clear();
        slots_.clear();
    }

private:
    std::vector<batch_part> parts_;
    std::vector<slot> events_;
    Slots slots_;
};

/// The slots of the SQL stores: each event encoded by `Codec` into one shared buffer.
template <class Codec>
struct encoded_slots {
    struct slot {
        std::string_view name;  ///< the stored event name: static storage
        unsigned schema_version = 1;
        std::size_t offset = 0;
        std::size_t size = 0;
    };
    template <class Event>
    slot make(const Event& e) {
        using E = std::remove_cvref_t<Event>;
        const std::size_t offset = buffer.size();
        try {
            Codec::encode(e, buffer);
        } catch (...) {
            buffer.resize(offset);
            throw;
        }
        return {event_name_of<E>, schema_version_of<E>, offset, buffer.size() - offset};
    }
    void clear() noexcept { buffer.clear(); }
    [[nodiscard]] std::string_view payload(const slot& s) const noexcept { return {buffer.data() + s.offset, s.size}; }

    std::string buffer;
};

}  // namespace detail
}  // namespace projectionist
