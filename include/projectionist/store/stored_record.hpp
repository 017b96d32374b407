#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <projectionist/event/codec.hpp>
#include <projectionist/event/envelope.hpp>
#include <projectionist/event/schema.hpp>

namespace projectionist::detail {

/// An event type as a SQL store interned it: the id records carry, its stream and stored name.
struct stored_event_type {
    std::uint32_t id = 0;
    std::string stream;
    std::string name;
    /// False for an id with no row in the store's type table (a gap, or a row deleted by hand):
    /// a record of that type is refused (see stored_record::defect), never read as another type.
    bool known = true;
    /// `boost::hash_value(stream)`, taken once: a store checks each record's aggregate against
    /// a hash of (stream, aggregate id) without hashing the stream again.
    std::size_t stream_hash = 0;
};

/// One stored event, as read: the payload is still encoded. A store's `read` fills it through
/// `set` and the two buffers, whose capacity a reused record keeps.
class stored_record {
public:
    [[nodiscard]] std::uint64_t position() const noexcept { return position_; }
    [[nodiscard]] std::uint32_t type_id() const noexcept { return type_->id; }
    [[nodiscard]] std::string_view type_name() const noexcept { return type_->name; }
    [[nodiscard]] std::string_view stream() const noexcept { return type_->stream; }
    [[nodiscard]] std::uint64_t aggregate_number() const noexcept { return aggregate_number_; }
    [[nodiscard]] std::string_view aggregate_id() const noexcept { return aggregate_id_; }
    [[nodiscard]] std::uint64_t aggregate_version() const noexcept { return version_; }
    [[nodiscard]] unsigned schema_version() const noexcept { return schema_version_; }
    [[nodiscard]] std::string_view payload() const noexcept { return payload_; }
    [[nodiscard]] std::chrono::system_clock::time_point recorded_at() const noexcept {
        return std::chrono::system_clock::time_point(
            std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(recorded_ns_)));
    }
    [[nodiscard]] envelope envelope_of() const noexcept {
        return {position_, type_->stream, aggregate_id_, version_, recorded_at(), type_->name};
    }

    /// What is wrong with the record as read (a type id with no type, a field out of range),
    /// naming its position and the field; empty when nothing is. The runner fails the event
    /// (or dead-letters it) before any handler sees it.
    [[nodiscard]] std::string defect() const {
        if (!defect_.empty()) [[unlikely]]
            return defect_;
        if (!type_->known) [[unlikely]]
            return fmt::format("the event at position {} has type id {}, which is not in projectionist_event_types",
                               position_, std::uint64_t{type_->id} + 1);
        return {};
    }

    /// Sets what a store read for this record; `type` must outlive the record's use.
    void set(std::uint64_t position, const stored_event_type& type, std::uint64_t aggregate_number,
             std::uint64_t version, unsigned schema_version, std::int64_t recorded_ns) noexcept {
        defect_.clear();
        position_ = position;
        type_ = &type;
        aggregate_number_ = aggregate_number;
        version_ = version;
        schema_version_ = schema_version;
        recorded_ns_ = recorded_ns;
    }
    /// The buffers a store reads the aggregate id and the encoded payload into.
    [[nodiscard]] std::string& aggregate_id_buffer() noexcept { return aggregate_id_; }
    [[nodiscard]] std::string& payload_buffer() noexcept { return payload_; }
    /// Marks the record as unusable, with the reason (after `set`).
    void set_defect(std::string reason) { defect_ = std::move(reason); }
    /// Marks a record found wrong after `set` (its aggregate, checked once the whole batch is
    /// read): it takes `unknown`, a type no type map holds, and the reason.
    void set_defect(const stored_event_type& unknown, std::string reason) {
        type_ = &unknown;
        defect_ = std::move(reason);
    }
    /// The type `set` gave the record (a marked record's is the store's unknown type).
    [[nodiscard]] const stored_event_type& type() const noexcept { return *type_; }

private:
    std::uint64_t position_ = 0;
    const stored_event_type* type_ = nullptr;
    std::uint64_t aggregate_number_ = 0;
    std::uint64_t version_ = 0;
    unsigned schema_version_ = 1;
    std::int64_t recorded_ns_ = 0;
    std::string aggregate_id_;
    std::string payload_;
    std::string defect_;
};

/// What `read` fills. Records are reused between reads, so their strings keep capacity: a store
/// calls `clear()`, then `next()` for each record it reads.
class stored_batch {
public:
    [[nodiscard]] auto begin() const noexcept { return records_.begin(); }
    [[nodiscard]] auto end() const noexcept { return records_.begin() + static_cast<std::ptrdiff_t>(size_); }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] const stored_record& operator[](std::size_t i) const noexcept { return records_[i]; }
    /// A record read into this batch, for the store that reads it (a second pass over the batch).
    [[nodiscard]] stored_record& operator[](std::size_t i) noexcept { return records_[i]; }

    /// Forgets the records (keeping them for reuse).
    void clear() noexcept { size_ = 0; }
    /// The next record to fill: a reused one, or a new one.
    [[nodiscard]] stored_record& next() {
        if (size_ == records_.size()) records_.emplace_back();
        return records_[size_++];
    }

private:
    std::vector<stored_record> records_;
    std::size_t size_ = 0;
};

/// Refuses, at append, an encoded event over `max_payload_bytes`: the limit the store's reads
/// refuse, so that no appended event stops every runner that reads it.
inline void check_payload_size(std::string_view store, std::string_view name, std::size_t size,
                               std::size_t max_payload_bytes) {
    if (size > max_payload_bytes) [[unlikely]]
        throw codec_error(
            fmt::format("projectionist: {}::append: the encoded '{}' event is {} bytes, over the limit of {} bytes "
                        "(max_payload_bytes) that reads refuse; nothing was appended",
                        store, name, size, max_payload_bytes));
}

/// Decodes a stored record into `Event` with `Codec`: checks the size limit, decodes, upcasts
/// older schema versions. Throws codec_error with the reason. The SQL stores' `event_of`.
template <class Event, class Codec>
[[nodiscard]] Event decode_stored(const stored_record& r, std::size_t max_payload_bytes) {
    if (r.payload().size() > max_payload_bytes)
        throw codec_error(
            fmt::format("payload of {} bytes exceeds the limit of {} bytes", r.payload().size(), max_payload_bytes));
    return decode_event<Event, Codec>(r.schema_version(), r.payload());
}

}  // namespace projectionist::detail
