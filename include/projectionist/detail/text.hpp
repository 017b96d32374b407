#pragma once

/// Text for people: the one place the library joins lists, makes a value safe for a terminal,
/// measures display width and lays out aligned tables. Verification reports and the command line
/// both print through these, so a table or an escaped value looks the same everywhere.
///
///     projectionist::detail::join(std::vector<std::string>{"a", "b"})   // "a, b"
///     projectionist::detail::printable("a\tb")                          // "a\\tb"
///     projectionist::detail::group_digits(1234567)                      // "1,234,567"
///     projectionist::detail::text_table t({"name", "rows"}, {false, true});
///     t.add({"tickets_v2", "42"});
///     t.render("  ");   // "  name        rows\n  ----------  ----\n  tickets_v2    42\n"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace projectionist::detail {

/// The items of a range (anything convertible to std::string_view), with `separator` between.
///
///     join(std::vector<std::string>{"v1", "v2"}, " | ")   // "v1 | v2"
template <class Range>
[[nodiscard]] std::string join(const Range& items, std::string_view separator = ", ") {
    std::string out;
    bool first = true;
    for (const auto& item : items) {
        if (!first) out += separator;
        first = false;
        out += std::string_view(item);
    }
    return out;
}

/// The length of the valid UTF-8 sequence at s[i], or 0 if the bytes there are not one (overlong
/// forms, surrogates and code points beyond U+10FFFF are not).
[[nodiscard]] inline std::size_t utf8_length(std::string_view s, std::size_t i) noexcept {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) return 1;
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;  // overlong
        if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;  // overlong
        if (c == 0xF4) hi = 0x8F;  // beyond U+10FFFF
    } else {
        return 0;
    }
    if (s.size() - i < n) return 0;
    const auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) return 0;
    for (std::size_t k = 2; k < n; ++k) {
        const auto ck = static_cast<unsigned char>(s[i + k]);
        if (ck < 0x80 || ck > 0xBF) return 0;
    }
    return n;
}

/// `s` copied character by character, UTF-8 aware: `replace(first_byte, valid, out)` may write
/// something else for a character to `out` and return true (then one byte is consumed), or return
/// false to copy the character as it is. `valid` is false for a byte that starts no valid UTF-8
/// character.
template <class Replace>
[[nodiscard]] std::string copy_utf8(std::string_view s, Replace&& replace) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = utf8_length(s, i);
        if (replace(static_cast<unsigned char>(s[i]), n != 0, out)) {
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
    return out;
}

/// `s` as valid UTF-8: each byte that does not start a valid sequence becomes U+FFFD, so a
/// JSON document (which must be UTF-8) holds whatever a row held, visibly.
///
///     valid_utf8("a\xff")   // "a\xef\xbf\xbd" (U+FFFD)
[[nodiscard]] inline std::string valid_utf8(std::string_view s) {
    return copy_utf8(s, [](unsigned char, bool valid, std::string& out) {
        if (valid) return false;
        out += "\xef\xbf\xbd";
        return true;
    });
}

/// Stored text made safe for a terminal, keeping valid UTF-8: newline, tab and carriage return as
/// \n, \t, \r, other control characters and invalid bytes as \xNN.
///
///     printable("caf\xc3\xa9\n")   // "café\\n"
[[nodiscard]] inline std::string printable(std::string_view s) {
    return copy_utf8(s, [](unsigned char c, bool valid, std::string& out) {
        if (valid && c >= 0x20 && c != 0x7F) return false;
        if (c == '\n')
            out += "\\n";
        else if (c == '\t')
            out += "\\t";
        else if (c == '\r')
            out += "\\r";
        else
            out += fmt::format("\\x{:02x}", c);
        return true;
    });
}

/// Text typed by a user, safe to echo in an error message: control characters, backslashes and
/// bytes that are not ASCII as \xNN; cut after 200 characters ("...").
///
///     shown("v\n2")   // "v\\x0a2"
[[nodiscard]] inline std::string shown(std::string_view text) {
    std::string out;
    for (char c : text.substr(0, 200)) {
        const auto b = static_cast<unsigned char>(c);
        if (b < 0x20 || b >= 0x7f || c == '\\')
            out += fmt::format("\\x{:02x}", b);
        else
            out += c;
    }
    if (text.size() > 200) out += "...";
    return out;
}

/// Display width of printable UTF-8 text: its code points.
///
///     display_width("caf\xc3\xa9")   // 4
[[nodiscard]] inline std::size_t display_width(std::string_view s) noexcept {
    std::size_t w = 0;
    for (const char ch : s)
        if ((static_cast<unsigned char>(ch) & 0xC0) != 0x80) ++w;
    return w;
}

/// 1234567 -> "1,234,567".
[[nodiscard]] inline std::string group_digits(std::uint64_t n) {
    const std::string digits = fmt::format("{}", n);
    std::string out;
    out.reserve(digits.size() + digits.size() / 3);
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

/// A duration as a clock: "0:04", "12:34", "1:02:03" (capped at 99:59:59; negative is 0).
[[nodiscard]] inline std::string clock_text(double seconds) {
    if (!(seconds >= 0)) seconds = 0;
    if (seconds > 359999) seconds = 359999;
    const auto total = static_cast<std::uint64_t>(seconds + 0.5);
    const std::uint64_t h = total / 3600, m = total / 60 % 60, s = total % 60;
    if (h != 0) return fmt::format("{}:{:02}:{:02}", h, m, s);
    return fmt::format("{}:{:02}", m, s);
}

/// An elapsed time: "0.042 s", "3.2 s", "2:05".
[[nodiscard]] inline std::string elapsed_text(double seconds) {
    if (seconds < 1) return fmt::format("{:.3f} s", seconds < 0 ? 0.0 : seconds);
    if (seconds < 60) return fmt::format("{:.1f} s", seconds);
    return clock_text(seconds);
}

/// A memory size in binary units: 512 -> "512 B", 65536 -> "64 KiB", 1610612736 -> "1.5 GiB".
[[nodiscard]] inline std::string bytes_text(std::uint64_t bytes) {
    static constexpr std::string_view units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    std::size_t unit = 0;
    while (unit + 1 < std::size(units) && bytes >= (std::uint64_t{1} << (10 * (unit + 1)))) ++unit;
    if (unit == 0) return fmt::format("{} B", bytes);
    const double value = static_cast<double>(bytes) / static_cast<double>(std::uint64_t{1} << (10 * unit));
    const std::string shown = fmt::format("{:.1f}", value);
    const std::string_view trimmed = std::string_view(shown).ends_with(".0")
                                         ? std::string_view(shown).substr(0, shown.size() - 2)
                                         : std::string_view(shown);
    return fmt::format("{} {}", trimmed, units[unit]);
}

/// How a text_table shows its header.
enum class table_header {
    ruled,   ///< the header, then a line of dashes under each column
    plain,   ///< the header as the first line
    hidden,  ///< no header line (the header only gives the column count)
};

/// Columns aligned by display width (so "é" counts one), two spaces apart, some right-aligned
/// (numbers); trailing blanks trimmed. Cells should be printable (see `printable`); a row with
/// fewer cells than the header gets empty ones, extra cells are dropped.
///
///     text_table t({"version", "lag"}, {false, true}, table_header::plain);
///     t.add({"tickets_v2", "12"});
///     t.render("  ")   // "  version     lag\n  tickets_v2   12\n"
class text_table {
public:
    text_table(std::vector<std::string> header, std::vector<bool> right_aligned,
               table_header style = table_header::ruled)
        : header_(std::move(header)), right_(std::move(right_aligned)), style_(style) {}

    void add(std::vector<std::string> cells) {
        cells.resize(header_.size());
        rows_.push_back(std::move(cells));
    }

    [[nodiscard]] std::size_t size() const noexcept { return rows_.size(); }

    [[nodiscard]] std::string render(std::string_view indent) const {
        std::vector<std::size_t> w(header_.size(), 0);
        if (style_ != table_header::hidden)
            for (std::size_t i = 0; i < header_.size(); ++i) w[i] = display_width(header_[i]);
        for (const auto& r : rows_)
            for (std::size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], display_width(r[i]));
        std::string out;
        auto line = [&](const std::vector<std::string>& cells) {
            std::string l(indent);
            for (std::size_t i = 0; i < w.size(); ++i) {
                const std::string& cell = cells[i];
                const std::size_t pad = w[i] - std::min(w[i], display_width(cell));
                if (i != 0) l += "  ";
                const bool right = i < right_.size() && right_[i];
                if (right) l.append(pad, ' ');
                l += cell;
                if (!right) l.append(pad, ' ');
            }
            while (!l.empty() && l.back() == ' ') l.pop_back();
            out += l;
            out += '\n';
        };
        if (style_ != table_header::hidden) line(header_);
        if (style_ == table_header::ruled) {
            std::vector<std::string> rule;
            for (const auto n : w) rule.emplace_back(n, '-');
            line(rule);
        }
        for (const auto& r : rows_) line(r);
        return out;
    }

private:
    std::vector<std::string> header_;
    std::vector<bool> right_;
    table_header style_;
    std::vector<std::vector<std::string>> rows_;
};

}  // namespace projectionist::detail
