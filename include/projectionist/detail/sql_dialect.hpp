#pragma once

/// What the SQL table handles (sqlite_table, postgres_table) share, walking a row's fields through
/// meta/reflection.hpp: the quoted columns, the key's index, the check that every field has a
/// column type, the CREATE TABLE text and the upsert's conflict action. A dialect differs only in
/// its `column_traits<Field>` (`supported`, `sql_type`, `nullable`) and its spelling of the key:
///
///     struct sqlite_dialect {
///         template <class Field> using traits = detail::sqlite::column_traits<Field>;
///         static constexpr std::string_view primary_key = "PRIMARY KEY(";
///     };
///     detail::sql::create_table<Row, sqlite_dialect>("\"tickets_v2\"", columns, key);
///     // CREATE TABLE IF NOT EXISTS "tickets_v2" ("ticket_id" TEXT NOT NULL, ..., PRIMARY KEY("ticket_id"))

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <projectionist/detail/sql_text.hpp>
#include <projectionist/meta/reflection.hpp>

namespace projectionist::detail::sql {

/// Whether every field of `Row` has a column type in `Dialect`.
template <class Row, class Dialect>
consteval bool all_columns_supported() {
    bool ok = true;
    for_each_field_type<Row>([&]<class Field>(std::string_view, std::type_identity<Field>) {
        ok = ok && Dialect::template traits<Field>::supported;
    });
    return ok;
}

/// Refuses, at compile time, a row type with a field that has no column type in `Dialect`.
template <class Row, class Dialect>
consteval bool require_columns() {
    static_assert(all_columns_supported<Row, Dialect>(),
                  "projectionist: a field of this row type has no SQL column type; supported are integers, enums, "
                  "bool, floating point, std::string, std::chrono::time_point and std::optional of these");
    return true;
}

/// The field names of `Row`, quoted as SQL identifiers, in declaration order.
template <class Row>
[[nodiscard]] std::vector<std::string> quoted_columns() {
    std::vector<std::string> out;
    out.reserve(field_count<Row>);
    for_each_field_type<Row>([&](std::string_view name, auto) { out.push_back(quote(name)); });
    return out;
}

/// The index of `Table::key` among the fields of its row.
template <class Table>
[[nodiscard]] std::size_t key_index() {
    using Row = typename Table::row_type;
    Row probe{};
    std::size_t i = 0, key = 0;
    for_each_field(probe, [&](std::string_view, const auto& field) {
        if (static_cast<const void*>(&field) == static_cast<const void*>(&(probe.*Table::key))) key = i;
        ++i;
    });
    return key;
}

/// CREATE TABLE IF NOT EXISTS `quoted_table`: a column per field (`NOT NULL` unless the field is
/// nullable), and the primary key.
template <class Row, class Dialect>
[[nodiscard]] std::string create_table(std::string_view quoted_table, const std::vector<std::string>& columns,
                                       std::size_t key) {
    std::string sql = fmt::format("CREATE TABLE IF NOT EXISTS {} (", quoted_table);
    std::size_t i = 0;
    for_each_field_type<Row>([&]<class Field>(std::string_view, std::type_identity<Field>) {
        using traits = typename Dialect::template traits<Field>;
        sql += fmt::format("{}{} {}{}", i == 0 ? "" : ", ", columns[i], traits::sql_type,
                           traits::nullable ? "" : " NOT NULL");
        ++i;
    });
    sql += fmt::format(", {}{}))", Dialect::primary_key, columns[key]);
    return sql;
}

/// What an upsert does on a key that exists: `UPDATE SET c = excluded.c, ...` for every column
/// but the key, or `NOTHING` when the key is the only column.
[[nodiscard]] inline std::string upsert_action(const std::vector<std::string>& columns, std::size_t key) {
    std::string sets;
    for (std::size_t i = 0; i < columns.size(); ++i)
        if (i != key) sets += fmt::format("{}{} = excluded.{}", sets.empty() ? "" : ", ", columns[i], columns[i]);
    return sets.empty() ? "NOTHING" : "UPDATE SET " + sets;
}

}  // namespace projectionist::detail::sql
