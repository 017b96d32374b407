#pragma once

/// The table handles verification reads: `memory_table`, `sqlite_table`, or a pointer, optional
/// or smart pointer to one (what `find_table` returns), and the table declaration behind a
/// handle, which gives the key of a row.
///
///     static_assert(projectionist::verify::table_handle<memory_table<ticket_table>>);

#include <string>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>

#include <projectionist/error.hpp>

namespace projectionist::detail::verification {

template <class>
inline constexpr bool not_a_table = false;

// -- table handles --------------------------------------------------------------------------------

template <class Handle>
concept has_table_type = requires {
    typename Handle::table_type;
};
template <class Table>
concept table_declaration = requires(const typename Table::row_type& row) {
    Table::key_of(row);
};

/// The argument of a `Handle<Table>` template such as memory_table and sqlite_table.
template <class Handle>
struct table_argument {};
template <template <class> class Handle, table_declaration Table>
struct table_argument<Handle<Table>> {
    using type = Table;
};

/// The table declaration (`projectionist::table<...>`) behind a handle: its `table_type`, else
/// the table it is a template of.
template <class Handle>
struct table_of : table_argument<Handle> {};
template <has_table_type Handle>
struct table_of<Handle> {
    using type = typename Handle::table_type;
};

template <class H>
concept table_like = requires(H& h, const typename H::key_type& key) {
    typename H::row_type;
    typename H::key_type;
    h.find(key);
    h.for_each([](const typename H::row_type&) {});
};

/// The table a handle argument refers to: the handle itself, or what a pointer, optional or smart
/// pointer to one holds (which must not be empty).
template <class H>
decltype(auto) table_ref(H& handle, std::string_view side) {
    if constexpr (table_like<H>) {
        return (handle);
    } else if constexpr (requires {
                             static_cast<bool>(handle);
                             *handle;
                         }) {
        static_assert(table_like<std::remove_reference_t<decltype(*handle)>>,
                      "projectionist: verify: a table argument must be a table handle with for_each(fn) and "
                      "find(key) (memory_table, sqlite_table; sqlite_table's are not const, so pass it non-const), "
                      "or a pointer, std::optional or smart pointer to one, as storage.find_table returns");
        if (!static_cast<bool>(handle))
            throw error(
                fmt::format("projectionist: verify: table {} is missing (an empty handle: did find_table "
                            "find no table of that name?)",
                            side));
        return (*handle);
    } else {
        static_assert(not_a_table<H>,
                      "projectionist: verify: a table argument must be a table handle with for_each(fn) and "
                      "find(key) (memory_table, sqlite_table; sqlite_table's are not const, so pass it non-const), "
                      "or a pointer, std::optional or smart pointer to one, as storage.find_table returns");
    }
}

template <class H>
std::string table_name(H& table, std::string_view fallback) {
    if constexpr (requires { table.name(); }) {
        std::string name(table.name());
        return name.empty() ? std::string(fallback) : name;
    } else {
        return std::string(fallback);
    }
}

/// `table.find(key)` with the key converted to the table's own key type.
template <class H, class K>
auto find_row(H& table, const K& key) {
    using table_key = typename H::key_type;
    if constexpr (std::is_same_v<K, table_key>) {
        return table.find(key);
    } else {
        static_assert(std::is_constructible_v<table_key, const K&>,
                      "projectionist: verify: the two versions' key types are not convertible into each other");
        return table.find(table_key(key));
    }
}

}  // namespace projectionist::detail::verification

namespace projectionist::verify {

/// A table handle `verify` reads: `for_each(fn(const Row&))` and `find(key)` returning a pointer
/// or an optional (memory_table, sqlite_table). The checks also accept a pointer, optional or
/// smart pointer to one.
template <class H>
concept table_handle = detail::verification::table_like<H>;

}  // namespace projectionist::verify
