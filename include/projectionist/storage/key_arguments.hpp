#pragma once

/// Keys given as another type than a table's key: a std::string_view or a C string for a
/// std::string key. The storage contract asks a table only for `key_type`; the memory tables
/// take such keys by heterogeneous look-up, and the SQL tables through `key_argument_overloads`,
/// so that a handler written against one bundled backend compiles against the others.
///
///     template <class Table>
///     class my_table : public detail::key_argument_overloads<my_table<Table>, typename Table::key_type,
///                                                            typename Table::row_type> {
///         using key_arguments = detail::key_argument_overloads<...>;
///     public:
///         using key_arguments::find;   // and update, erase, contains: the table's own would hide them
///         std::optional<row_type> find(const key_type& key);
///         ...

#include <concepts>
#include <optional>
#include <type_traits>
#include <utility>

namespace projectionist::detail {

/// A key given as another type that a table's `Key` is made from.
template <class K, class Key>
concept key_argument_for = !std::same_as<std::remove_cvref_t<K>, Key> && std::constructible_from<Key, const K&>;

/// A base of a table whose find, update, erase and contains take `const Key&`: the four with a
/// key of another type (`key_argument_for`), which make the key once and call the table's own.
template <class Derived, class Key, class Row>
class key_argument_overloads {
public:
    template <key_argument_for<Key> K, class F>
    bool update(const K& key, F&& fn) {
        return self().update(Key(key), std::forward<F>(fn));
    }
    template <key_argument_for<Key> K>
    bool erase(const K& key) {
        return self().erase(Key(key));
    }
    template <key_argument_for<Key> K>
    [[nodiscard]] std::optional<Row> find(const K& key) {
        return self().find(Key(key));
    }
    template <key_argument_for<Key> K>
    [[nodiscard]] bool contains(const K& key) {
        return self().contains(Key(key));
    }

private:
    Derived& self() noexcept { return static_cast<Derived&>(*this); }
};

}  // namespace projectionist::detail
