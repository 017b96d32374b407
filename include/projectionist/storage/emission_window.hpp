#pragma once

/// The hand-over of downstream emission between the versions of a projection: which source
/// positions each version emits for, kept in one storage setting per projection so that every
/// process sees it and a batch reads it inside its own transaction.
///
/// Making a version live records a position p in the same transaction: the versions that were
/// live emit for the source positions up to p, the new one only after p. p is the larger of the
/// versions' committed positions, read with their checkpoints locked, so whichever version lags
/// at the switch, each position's events go downstream exactly once, even while the previous
/// version runs in another process that has not yet seen the switch.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include <projectionist/error.hpp>

namespace projectionist {

/// The source positions a version emits downstream for: after `after`, up to `through` (open
/// while it is live).
struct emission_window {
    std::uint64_t after = 0;
    std::optional<std::uint64_t> through;

    [[nodiscard]] bool covers(std::uint64_t position) const noexcept {
        return position > after && (!through || position <= *through);
    }
    /// Whether positions after `position` may still be emitted.
    [[nodiscard]] bool open_after(std::uint64_t position) const noexcept { return !through || *through > position; }

    friend bool operator==(const emission_window&, const emission_window&) = default;
};

/// The windows of a projection's versions, by versioned name.
using emission_windows = std::map<std::string, emission_window, std::less<>>;

namespace detail {

/// The key of a projection's emission setting.
inline std::string emission_setting_key(std::string_view base_name) {
    return fmt::format("projectionist.emission.{}", base_name);
}

/// One line per version: "<name> <after> <through>", `through` being "-" while open.
inline std::string format_windows(const emission_windows& windows) {
    std::string out;
    for (const auto& [name, w] : windows)
        out += fmt::format("{} {} {}\n", name, w.after, w.through ? std::to_string(*w.through) : std::string("-"));
    return out;
}

inline emission_windows parse_windows(std::string_view text, std::string_view key) {
    emission_windows out;
    const auto bad = [&](std::string_view line) {
        return error(
            fmt::format("projectionist: the setting '{}' is invalid: '{}' is not '<version> <after> "
                        "<through or ->'",
                        key, line));
    };
    const auto number = [&](std::string_view digits, std::string_view line) {
        if (digits.empty() || digits.size() > 19 || digits.find_first_not_of("0123456789") != std::string_view::npos)
            throw bad(line);
        return static_cast<std::uint64_t>(std::stoull(std::string(digits)));
    };
    while (!text.empty()) {
        const auto nl = text.find('\n');
        const std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (line.empty()) continue;
        const auto s1 = line.find(' ');
        const auto s2 = s1 == std::string_view::npos ? s1 : line.find(' ', s1 + 1);
        if (s2 == std::string_view::npos || s1 == 0) throw bad(line);
        emission_window w;
        w.after = number(line.substr(s1 + 1, s2 - s1 - 1), line);
        const std::string_view through = line.substr(s2 + 1);
        if (through != "-") w.through = number(through, line);
        out.insert_or_assign(std::string(line.substr(0, s1)), w);
    }
    return out;
}

}  // namespace detail
}  // namespace projectionist
