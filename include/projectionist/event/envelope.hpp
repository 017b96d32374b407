#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

namespace projectionist {

/// What the log knows about one stored event besides its payload. The views point into the
/// store's record and are valid while the handler runs; copy what must outlive it.
struct envelope {
    std::uint64_t position = 0;           ///< global position in the log, from 1
    std::string_view stream;              ///< stream name, e.g. "ticket"
    std::string_view aggregate_id;        ///< the aggregate within the stream
    std::uint64_t aggregate_version = 0;  ///< 1 for an aggregate's first event
    std::chrono::system_clock::time_point recorded_at{};
    std::string_view event_type;  ///< the stored event name
};

}  // namespace projectionist
