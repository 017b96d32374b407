#pragma once

/// The rows of the tables a SQL storage keeps for itself, `projectionist_catalog` and
/// `projectionist_dead_letters`, spelled once for SQLite and PostgreSQL: their columns in order,
/// the statements that write them (in the dialect's placeholders), the values those statements
/// bind in that order, and the record read back from a result row.
///
/// A result row is anything with `text(i)`, `int64(i)` and `boolean(i)` (column i from 0); a
/// binder is a callable that takes each value in column order, as a std::string_view, a
/// std::int64_t or a bool.
///
///     const std::string tables = detail::join_lines(entry.tables);   // bound: kept alive
///     detail::sql::bind_catalog(entry, tables, [&](const auto& v) { params.add(v); });
///     db.query(detail::sql::catalog_upsert(detail::sql::placeholders::numbered), params);
///     // INSERT INTO projectionist_catalog(name, ...) VALUES ($1, ...) ON CONFLICT (name) DO UPDATE SET ...

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <projectionist/detail/sql_dialect.hpp>
#include <projectionist/detail/text.hpp>
#include <projectionist/error.hpp>
#include <projectionist/storage/records.hpp>

namespace projectionist::detail::sql {

/// How a dialect writes the parameters of a statement: SQLite `?, ?`, PostgreSQL `$1, $2`.
enum class placeholders { positional, numbered };

/// `count` parameters, separated by ", ".
[[nodiscard]] inline std::string parameter_list(placeholders style, std::size_t count) {
    std::string out;
    for (std::size_t i = 0; i < count; ++i) {
        if (i != 0) out += ", ";
        out += style == placeholders::numbered ? fmt::format("${}", i + 1) : std::string("?");
    }
    return out;
}

// ---- the catalog ---------------------------------------------------------------------------------

/// The columns of a catalog row, in the order `bind_catalog` and `catalog_from_row` take them.
inline constexpr std::array<std::string_view, 13> catalog_columns{
    "name",       "base_name",   "version",    "state",      "live",       "partitioning", "tables",
    "generation", "fingerprint", "definition", "deleted_at", "deleted_by", "retain_until"};

/// `name, base_name, ...`: the catalog's columns for a SELECT.
[[nodiscard]] inline std::string catalog_column_list() {
    return join(catalog_columns);
}

/// Writes a catalog row: a new one, or every column of the row of that name.
[[nodiscard]] inline std::string catalog_upsert(placeholders style) {
    const std::vector<std::string> columns(catalog_columns.begin(), catalog_columns.end());
    return fmt::format("INSERT INTO projectionist_catalog({}) VALUES ({}) ON CONFLICT (name) DO {}",
                       catalog_column_list(), parameter_list(style, columns.size()), upsert_action(columns, 0));
}

/// Switches the version that serves queries in one statement: the row named by the 1st, 3rd
/// and 4th parameters (the same name) becomes `serving`, and every other `serving` row of the
/// base name (the 2nd) `retired`; no row changes unless that version is caught up, serving or
/// retired. The subquery reads the rows as they were before the statement, on both dialects.
[[nodiscard]] inline std::string serving_switch(placeholders style) {
    const auto p = [&](int i) { return style == placeholders::numbered ? fmt::format("${}", i) : std::string("?"); };
    return fmt::format(
        "UPDATE projectionist_catalog SET state = CASE WHEN name = {} THEN 'serving' ELSE 'retired' END "
        "WHERE base_name = {} AND (name = {} OR state = 'serving') AND EXISTS (SELECT 1 FROM projectionist_catalog "
        "WHERE name = {} AND state IN ('caught_up', 'serving', 'retired'))",
        p(1), p(2), p(3), p(4));
}

/// Hands `bind` the values of `e` in the order of `catalog_columns`. `tables` is
/// `join_lines(e.tables)`, kept alive by the caller until the statement has run (SQLite binds
/// text without copying it).
template <class Bind>
void bind_catalog(const catalog_entry& e, std::string_view tables, Bind&& bind) {
    bind(std::string_view(e.name));
    bind(std::string_view(e.base_name));
    bind(static_cast<std::int64_t>(e.version));
    bind(to_string(e.state));
    bind(e.live);
    bind(std::string_view(e.partitioning));
    bind(tables);
    bind(static_cast<std::int64_t>(e.generation));
    bind(std::string_view(e.fingerprint));
    bind(std::string_view(e.definition));
    bind(std::string_view(e.deleted_at));
    bind(std::string_view(e.deleted_by));
    bind(std::string_view(e.retain_until));
}

/// The catalog entry in a row of `catalog_columns`. Throws projectionist::error on a state this
/// version does not know.
template <class Row>
[[nodiscard]] catalog_entry catalog_from_row(const Row& row) {
    catalog_entry e;
    e.name = std::string(row.text(0));
    e.base_name = std::string(row.text(1));
    e.version = static_cast<unsigned>(row.int64(2));
    const auto state = projection_state_from_string(row.text(3));
    if (!state)
        throw error(
            fmt::format("projectionist: the catalog row of '{}' has an unknown state '{}'", e.name, row.text(3)));
    e.state = *state;
    e.live = row.boolean(4);
    e.partitioning = std::string(row.text(5));
    e.tables = split_lines(row.text(6));
    e.generation = static_cast<std::uint64_t>(row.int64(7));
    e.fingerprint = std::string(row.text(8));
    e.definition = std::string(row.text(9));
    e.deleted_at = std::string(row.text(10));
    e.deleted_by = std::string(row.text(11));
    e.retain_until = std::string(row.text(12));
    return e;
}

// ---- dead letters --------------------------------------------------------------------------------

/// The columns a dead letter is read back from, in the order `dead_letter_from_row` reads them.
inline constexpr std::string_view dead_letter_columns =
    "position, stream, aggregate_id, aggregate_number, event_type, reason, parked";

/// Records a dead letter: the key of its checkpoint, `dead_letter_columns`, and when.
[[nodiscard]] inline std::string dead_letter_insert(placeholders style) {
    constexpr std::size_t values = 9;  // the key, the seven columns, recorded_at
    return fmt::format("INSERT INTO projectionist_dead_letters(projection, {}, recorded_at) VALUES ({})",
                       dead_letter_columns, parameter_list(style, values));
}

/// Hands `bind` the values `dead_letter_insert` takes: `key`, the letter, and now (nanoseconds
/// since 1970).
template <class Bind>
void bind_dead_letter(std::string_view key, const dead_letter& letter, Bind&& bind) {
    bind(key);
    bind(static_cast<std::int64_t>(letter.position));
    bind(std::string_view(letter.stream));
    bind(std::string_view(letter.aggregate_id));
    bind(static_cast<std::int64_t>(letter.aggregate_number));
    bind(std::string_view(letter.event_type));
    bind(std::string_view(letter.reason));
    bind(letter.parked);
    bind(static_cast<std::int64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count()));
}

/// The dead letter in a row of `dead_letter_columns`.
template <class Row>
[[nodiscard]] dead_letter dead_letter_from_row(const Row& row) {
    return {static_cast<std::uint64_t>(row.int64(0)),
            std::string(row.text(1)),
            std::string(row.text(2)),
            static_cast<std::uint64_t>(row.int64(3)),
            std::string(row.text(4)),
            std::string(row.text(5)),
            row.boolean(6)};
}

}  // namespace projectionist::detail::sql
