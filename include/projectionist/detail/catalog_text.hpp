#pragma once

/// Text the runner writes into the catalog and its messages: timestamps of tombstones, how a
/// tombstone reads in a message, and the key of a projection's router setting.

#include <chrono>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include <projectionist/storage/records.hpp>

namespace projectionist {

namespace detail {

/// Now in UTC, "2026-12-04T16:20:05Z" (`with_time`) or "2026-12-04".
inline std::string utc_now_text(bool with_time = true) {
    const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    const auto days = std::chrono::floor<std::chrono::days>(now);
    const std::chrono::year_month_day ymd{days};
    const std::chrono::hh_mm_ss<std::chrono::seconds> hms{now - days};
    std::string out = fmt::format("{:04}-{:02}-{:02}", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                                  static_cast<unsigned>(ymd.day()));
    if (with_time)
        out += fmt::format("T{:02}:{:02}:{:02}Z", hms.hours().count(), hms.minutes().count(), hms.seconds().count());
    return out;
}

/// " at <when> by <command>" of a tombstone, for messages.
inline std::string deleted_when(const catalog_entry& tombstone) {
    std::string out;
    if (!tombstone.deleted_at.empty()) out += fmt::format(" at {}", tombstone.deleted_at);
    if (!tombstone.deleted_by.empty()) out += fmt::format(" by {}", tombstone.deleted_by);
    return out;
}

/// The key of the router setting of a projection (deploy/router/routing.hpp).
inline std::string router_setting_key(std::string_view base_name) {
    return fmt::format("projectionist.router.{}", base_name);
}

}  // namespace detail

}  // namespace projectionist
