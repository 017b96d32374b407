#pragma once

#include <string>
#include <string_view>

namespace projectionist::detail {

/// `text` between two `mark`s, every `mark` inside doubled: SQL's quoting, for identifiers
/// (`"`, in SQLite and PostgreSQL alike) and string literals (`'`).
inline std::string sql_quoted(std::string_view text, char mark) {
    std::string out;
    out.reserve(text.size() + 2);
    out += mark;
    for (char c : text) {
        if (c == mark) out += mark;
        out += c;
    }
    out += mark;
    return out;
}

/// `"name"` with embedded quotes doubled: every identifier projectionist writes into SQL goes
/// through here, even the compile-time validated ones.
inline std::string quote(std::string_view identifier) {
    return sql_quoted(identifier, '"');
}

}  // namespace projectionist::detail
