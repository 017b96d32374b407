#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <projectionist/event/codec.hpp>
#include <projectionist/event/envelope.hpp>
#include <projectionist/event/schema.hpp>

namespace projectionist {

template <class Codec>
class basic_sqlite_event_store;
template <class Codec>
class basic_postgres_event_store;

/// An event type as a SQL store interned it: the id records carry, its stream and stored name.
struct stored_event_type {
    std::uint32_t id = 0;
    std::string stream;
    std::string name;
};

/// One stored event, as read: the payload is still encoded.
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

private:
    template <class>
    friend class basic_sqlite_event_store;
    template <class>
    friend class basic_postgres_event_store;
    std::uint64_t position_ = 0;
    const stored_event_type* type_ = nullptr;
    std::uint64_t aggregate_number_ = 0;
    std::uint64_t version_ = 0;
    unsigned schema_version_ = 1;
    std::int64_t recorded_ns_ = 0;
    std::string aggregate_id_;
    std::string payload_;
};

/// What `read` fills. Records are reused between reads, so their strings keep capacity.
class stored_batch {
public:
    [[nodiscard]] auto begin() const noexcept { return records_.begin(); }
    [[nodiscard]] auto end() const noexcept { return records_.begin() + static_cast<std::ptrdiff_t>(size_); }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] const stored_record& operator[](std::size_t i) const noexcept { return records_[i]; }

private:
    template <class>
    friend class basic_sqlite_event_store;
    template <class>
    friend class basic_postgres_event_store;
    stored_record& next() {
        if (size_ == records_.size()) records_.emplace_back();
        return records_[size_++];
    }
    std::vector<stored_record> records_;
    std::size_t size_ = 0;
};

/// Decodes a stored record into `Event` with `Codec`: checks the size limit, decodes, upcasts
/// older schema versions. Throws codec_error with the reason. The SQL stores' `event_of`.
template <class Event, class Codec>
[[nodiscard]] Event decode_stored(const stored_record& r, std::size_t max_payload_bytes) {
    if (r.payload().size() > max_payload_bytes)
        throw codec_error(
            fmt::format("payload of {} bytes exceeds the limit of {} bytes", r.payload().size(), max_payload_bytes));
    return decode_event<Event, Codec>(r.schema_version(), r.payload());
}

}  // namespace projectionist
