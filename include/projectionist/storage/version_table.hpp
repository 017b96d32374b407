#pragma once

/// The query path: a version's tables reached by the projection's type, with no table name typed
/// by hand. Each storage offers it as a member:
///
///     auto orders = storage.table<customer_orders<2>>();                          // the main table
///     auto txs = storage.table<customer_orders<2>>(projectionist::rows<transaction_row>);  // another one
///     auto row = orders.find(order_id);
///
/// The table's name is `table_name_of<P, Table>` ("customer_orders_v2",
/// "customer_orders_v2_transactions"); the handle is the storage's own: a `sqlite_table` or
/// `postgres_table` on the storage object's connection, or a `memory_table_ref`, each by value. A table that
/// does not exist (the version is not initialized yet, or was deleted) is a `state_error` naming
/// the table and the version, never a handle on nothing.

#include <cstddef>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fmt/format.h>
#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>

#include <projectionist/error.hpp>
#include <projectionist/projection/projection.hpp>
#include <projectionist/projection/table.hpp>

namespace projectionist::detail {

template <class Table>
using row_type_of = typename Table::row_type;

/// P's table declaration of rows of type `Row`.
template <class P, class Row>
consteval std::size_t table_index_of_rows() {
    using rows = boost::mp11::mp_transform<row_type_of, tables_of<P>>;
    constexpr std::size_t index = boost::mp11::mp_find<rows, Row>::value;
    static_assert(index < boost::mp11::mp_size<rows>::value,
                  "projectionist: storage.table<P>(rows<Row>): P declares no table of this row type");
    return index;
}
template <class P, class Row>
using table_of_rows = boost::mp11::mp_at_c<tables_of<P>, table_index_of_rows<P, Row>()>;

/// P's first (or only) table declaration.
template <class P>
consteval bool has_tables() {
    static_assert(!boost::mp11::mp_empty<tables_of<P>>::value,
                  "projectionist: storage.table<P>(): P declares no table; add "
                  "'using table = projectionist::table<Row, &Row::key>;' to it");
    return true;
}
template <class P>
requires(has_tables<P>()) using main_table_of = boost::mp11::mp_front<tables_of<P>>;

[[noreturn]] inline void throw_missing_version_table(std::string_view table, std::string_view version) {
    throw state_error(fmt::format(
        "projectionist: table {} does not exist: {} is not initialized, or it was deleted (its status says which)",
        table, version));
}

/// `storage.find_table<Table>(name)` for P's table `Table`, taken out of its optional; throws when
/// it is absent.
template <class P, class Table, class Storage>
auto version_table(Storage& storage) {
    constexpr std::string_view name = table_name_v<P, Table>;
    auto found = storage.template find_table<Table>(name);
    if (!found) throw_missing_version_table(name, name_of<P>);
    return typename decltype(found)::value_type(std::move(*found));
}

/// The members `table<P>()` and `table<P>(rows<Row>)` of a storage with `find_table<Table>(name)`.
template <class Storage>
class version_tables {
public:
    /// Version P's main table (or, with `rows<Row>`, its table of rows of type Row), found by
    /// the projection's type; throws `state_error` if it does not exist.
    template <projection_type P>
    [[nodiscard]] auto table() {
        return version_table<P, main_table_of<P>>(static_cast<Storage&>(*this));
    }
    template <projection_type P, class Row>
    [[nodiscard]] auto table(rows_t<Row>) {
        return version_table<P, table_of_rows<P, Row>>(static_cast<Storage&>(*this));
    }
};

}  // namespace projectionist::detail
