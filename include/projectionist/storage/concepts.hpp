#pragma once

/// What a read-model storage must provide, stated once:
///
/// - `storage<S>`: the handle a runner, a deployment and a router are given;
/// - `storage_session<S::session>`: one runner's connection to one projection version
///   (checkpoint, catalog row, dead letters, batch transactions);
/// - `table_handle_of<H, Table>`: a typed table of `Table::row_type` rows keyed by `Table::key`;
/// - `storage_for<S, Table>`: `S` has such a handle for `Table`, created, opened and found by name.
///
/// `detail::require_storage<S, Tables...>()` checks all of them where a runner takes a storage and
/// fails with one message per missing member. See docs/backends.md.
///
///     static_assert(projectionist::storage<projectionist::memory_storage>);
///     static_assert(projectionist::storage_for<projectionist::memory_storage, tickets<2>::table>);

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <projectionist/meta/type_traits.hpp>
#include <projectionist/storage/records.hpp>

namespace projectionist {

namespace detail::storage_contract {

/// The functions a table handle's `update` and `for_each` are given in the checks below.
struct row_updater {
    template <class Row>
    void operator()(Row&) const noexcept {}
};
struct row_visitor {
    template <class Row>
    void operator()(const Row&) const noexcept {}
};

template <class S>
concept has_category = std::same_as<typename S::storage_category, storage_category>;
template <class S>
concept has_session_type = std::is_class_v<typename S::session>;
template <class S>
concept opens_sessions = has_session_type<S> && requires(S& s, std::string_view name) {
    { s.open(name) } -> std::same_as<typename S::session>;
};
template <class S>
concept keeps_settings = requires(S& s, const S& cs, std::string_view key, std::string_view value) {
    { cs.find_setting(key) } -> std::convertible_to<std::optional<std::string>>;
    s.save_setting(key, value);
};

// ---- the session: one concept per member, so that a check names the one that is missing ----------
template <class Session>
concept session_load_checkpoint = requires(Session& s) {
    { s.load_checkpoint() } -> std::same_as<checkpoint&>;
};
template <class Session>
concept session_reload_checkpoint = requires(Session& s) {
    { s.reload_checkpoint() } -> std::same_as<checkpoint&>;
};
template <class Session>
concept session_reset_checkpoint = requires(Session& s) {
    s.reset_checkpoint();
};
template <class Session>
concept session_find_catalog = requires(const Session& s) {
    { s.find_catalog() } -> std::convertible_to<std::optional<catalog_entry>>;
};
template <class Session>
concept session_save_catalog = requires(Session& s, const catalog_entry& e) {
    s.save_catalog(e);
};
template <class Session>
concept session_erase_catalog = requires(Session& s) {
    s.erase_catalog();
};
template <class Session>
concept session_record_dead_letter = requires(Session& s, dead_letter d) {
    s.record_dead_letter(std::move(d));
};
template <class Session>
concept session_dead_letters = requires(const Session& s) {
    { s.dead_letters() } -> std::convertible_to<std::vector<dead_letter>>;
};
template <class Session>
concept session_begin = requires(Session& s) {
    s.begin();
};
template <class Session>
concept session_commit = requires(Session& s, const checkpoint& cp, std::span<const std::uint64_t> changed) {
    s.commit(cp, changed);
};
template <class Session>
concept session_rollback = requires(Session& s) {
    { s.rollback() } -> std::convertible_to<bool>;
};
template <class Session>
concept session_drop_table = requires(Session& s, std::string_view name) {
    { s.drop_table(name) } -> std::convertible_to<bool>;
};

// ---- a table ----------------------------------------------------------------------------------
template <class H>
concept table_named = requires(const H& h) {
    { h.name() } -> std::convertible_to<std::string_view>;
};
template <class H, class Table>
concept table_insert = requires(H& h, const typename Table::row_type& row, const typename Table::key_type& key) {
    h.insert(row);
};
template <class H, class Table>
concept table_upsert = requires(H& h, const typename Table::row_type& row, const typename Table::key_type& key) {
    h.upsert(row);
};
template <class H, class Table>
concept table_update = requires(H& h, const typename Table::row_type& row, const typename Table::key_type& key) {
    { h.update(key, row_updater{}) } -> std::convertible_to<bool>;
};
template <class H, class Table>
concept table_erase = requires(H& h, const typename Table::row_type& row, const typename Table::key_type& key) {
    { h.erase(key) } -> std::convertible_to<bool>;
};
template <class H, class Table>
concept table_clear = requires(H& h, const typename Table::row_type& row, const typename Table::key_type& key) {
    h.clear();
};
template <class H, class Table>
concept table_find = requires(H& h, const typename Table::row_type& row, const typename Table::key_type& key) {
    { h.find(key) } -> std::same_as<std::optional<typename Table::row_type>>;
};
template <class H, class Table>
concept table_contains = requires(H& h, const typename Table::row_type& row, const typename Table::key_type& key) {
    { h.contains(key) } -> std::convertible_to<bool>;
};
template <class H, class Table>
concept table_size = requires(H& h, const typename Table::row_type& row, const typename Table::key_type& key) {
    { h.size() } -> std::convertible_to<std::size_t>;
};
template <class H, class Table>
concept table_for_each = requires(H& h, const typename Table::row_type& row, const typename Table::key_type& key) {
    h.for_each(row_visitor{});
};
template <class S, class Table>
concept has_table_handle = requires {
    typename S::template table_handle<Table>;
};
template <class S, class Table>
concept session_tables = has_table_handle<S, Table> && has_session_type<S> &&
    requires(typename S::session& s, std::string_view name) {
    { s.template create_table<Table>(name) } -> std::same_as<typename S::template table_handle<Table>&>;
    { s.template open_table<Table>(name) } -> std::same_as<typename S::template table_handle<Table>*>;
};
template <class S, class Table>
concept finds_tables = requires(S& s, std::string_view name) {
    s.template find_table<Table>(name);
}
&&is_optional<decltype(std::declval<S&>().template find_table<Table>(std::string_view{}))>::value;

/// The handle `find_table<Table>` holds in its optional.
template <class S, class Table>
using found_table_t = typename decltype(std::declval<S&>().template find_table<Table>(std::string_view{}))::value_type;

}  // namespace detail::storage_contract

/// One runner's session on one projection version of a storage (`S::session`): the checkpoint
/// (handed out by reference: the runner moves it, the session persists it at commit), the
/// catalog row, dead letters, dropping tables, and one transaction per batch.
template <class Session>
concept storage_session = detail::storage_contract::session_load_checkpoint<Session> &&
    detail::storage_contract::session_reload_checkpoint<Session> &&
    detail::storage_contract::session_reset_checkpoint<Session> &&
    detail::storage_contract::session_find_catalog<Session> &&
    detail::storage_contract::session_save_catalog<Session> &&
    detail::storage_contract::session_erase_catalog<Session> &&
    detail::storage_contract::session_record_dead_letter<Session> &&
    detail::storage_contract::session_dead_letters<Session> && detail::storage_contract::session_begin<Session> &&
    detail::storage_contract::session_commit<Session> && detail::storage_contract::session_rollback<Session> &&
    detail::storage_contract::session_drop_table<Session>;

/// A typed table handle for `Table` (`projectionist::table<Row, &Row::key>`): what handlers,
/// the runner (`clear`) and verification (`find`, `for_each`) call. `find` returns a copy of the
/// row in a `std::optional<row_type>` on every backend.
template <class H, class Table>
concept table_handle_of =
    detail::storage_contract::table_named<H> && detail::storage_contract::table_insert<H, Table> &&
    detail::storage_contract::table_upsert<H, Table> && detail::storage_contract::table_update<H, Table> &&
    detail::storage_contract::table_erase<H, Table> && detail::storage_contract::table_clear<H, Table> &&
    detail::storage_contract::table_find<H, Table> && detail::storage_contract::table_contains<H, Table> &&
    detail::storage_contract::table_size<H, Table> && detail::storage_contract::table_for_each<H, Table>;

/// A read-model storage: a category tag, a session per projection version (`open(name)`), and
/// persisted settings (a router's toggles).
///
///     class my_storage {
///     public:
///         using storage_category = projectionist::detail::storage_category;
///         template <class Table> using table_handle = my_table<Table>;
///         class session;  // a projectionist::storage_session
///         session open(std::string_view projection);
///         std::optional<std::string> find_setting(std::string_view key) const;
///         void save_setting(std::string_view key, std::string_view value);
///         template <class Table> std::optional<my_table<Table>> find_table(std::string_view name);
///     };
template <class S>
concept storage = detail::storage_contract::has_category<S> && detail::storage_contract::opens_sessions<S> &&
    storage_session<typename S::session> && detail::storage_contract::keeps_settings<S>;

/// A storage that keeps tables of `Table`: `S::table_handle<Table>` is a table_handle_of
/// `Table`, a session creates and opens it by name, and `find_table<Table>(name)` finds it
/// outside a runner (verification, queries): a `std::optional` of a handle (a table_handle_of
/// `Table`, by value), empty when there is no such table.
template <class S, class Table>
concept storage_for = storage<S> && detail::storage_contract::session_tables<S, Table> &&
    table_handle_of<typename S::template table_handle<Table>, Table> &&
    detail::storage_contract::finds_tables<S, Table> &&
    table_handle_of<detail::storage_contract::found_table_t<S, Table>, Table>;

namespace detail {

/// Checks one table of a storage; see require_storage.
template <class S, class Table>
consteval bool require_storage_table() {
    using namespace storage_contract;
    static_assert(has_table_handle<S, Table>,
                  "projectionist: this type is not a storage_for the projection's tables: it has no member alias "
                  "template table_handle<Table>; see docs/backends.md");
    if constexpr (has_table_handle<S, Table>) {
        using H = typename S::template table_handle<Table>;
        static_assert(!has_session_type<S> || session_tables<S, Table>,
                      "projectionist: this type is not a storage_for the projection's tables: it has no "
                      "session::create_table<Table>(std::string_view) -> table_handle<Table>& and "
                      "session::open_table<Table>(std::string_view) -> table_handle<Table>*; see docs/backends.md");
        static_assert(finds_tables<S, Table>,
                      "projectionist: this type is not a storage_for the projection's tables: it has no "
                      "find_table<Table>(std::string_view) -> std::optional<handle>; see docs/backends.md");
        if constexpr (finds_tables<S, Table>)
            static_assert(table_handle_of<found_table_t<S, Table>, Table>,
                          "projectionist: this type is not a storage_for the projection's tables: the handle its "
                          "find_table<Table> returns is not a table_handle_of the table; see docs/backends.md");
        static_assert(table_named<H>,
                      "projectionist: this table handle is not a table_handle_of its table: it has no name() const "
                      "-> std::string_view; see docs/backends.md");
        static_assert(table_insert<H, Table>,
                      "projectionist: this table handle is not a table_handle_of its table: it has no insert(const "
                      "row_type&); see "
                      "docs/backends.md");
        static_assert(table_upsert<H, Table>,
                      "projectionist: this table handle is not a table_handle_of its table: it has no upsert(const "
                      "row_type&); see "
                      "docs/backends.md");
        static_assert(table_update<H, Table>,
                      "projectionist: this table handle is not a table_handle_of its table: it has no update(key, fn) "
                      "-> bool; see "
                      "docs/backends.md");
        static_assert(
            table_erase<H, Table>,
            "projectionist: this table handle is not a table_handle_of its table: it has no erase(key) -> bool; see "
            "docs/backends.md");
        static_assert(table_clear<H, Table>,
                      "projectionist: this table handle is not a table_handle_of its table: it has no clear(); see "
                      "docs/backends.md");
        static_assert(table_find<H, Table>,
                      "projectionist: this table handle is not a table_handle_of its table: it has no find(key) -> "
                      "std::optional<row_type>; see docs/backends.md");
        static_assert(
            table_contains<H, Table>,
            "projectionist: this table handle is not a table_handle_of its table: it has no contains(key) -> bool; see "
            "docs/backends.md");
        static_assert(
            table_size<H, Table>,
            "projectionist: this table handle is not a table_handle_of its table: it has no size() -> std::size_t; see "
            "docs/backends.md");
        static_assert(
            table_for_each<H, Table>,
            "projectionist: this table handle is not a table_handle_of its table: it has no for_each(fn); see "
            "docs/backends.md");
    }
    return true;
}

/// Checks `storage<S>` and `storage_for<S, Tables>...` with one message per missing member, named
/// by the concept and the member; the type is the one this function is instantiated with (the
/// compiler prints it in the instantiation context). Returns true, so that a caller can write
/// `static_assert(require_storage<S>())` and see only the messages above.
///
///     static_assert(projectionist::detail::require_storage<my_storage, tickets<2>::table>());
template <class S, class... Tables>
consteval bool require_storage() {
    using namespace storage_contract;
    static_assert(has_category<S>,
                  "projectionist: this type is not a storage: it has no member type storage_category = "
                  "projectionist::detail::storage_category; see docs/backends.md");
    static_assert(has_session_type<S>,
                  "projectionist: this type is not a storage: it has no member class session; see docs/backends.md");
    static_assert(!has_session_type<S> || opens_sessions<S>,
                  "projectionist: this type is not a storage: it has no open(std::string_view projection) -> "
                  "session; see docs/backends.md");
    static_assert(keeps_settings<S>,
                  "projectionist: this type is not a storage: it has no find_setting(std::string_view) const -> "
                  "std::optional<std::string> and save_setting(std::string_view, std::string_view); see "
                  "docs/backends.md");
    if constexpr (has_session_type<S>) {
        using Session = typename S::session;
        static_assert(session_load_checkpoint<Session>,
                      "projectionist: this type is not a storage: it has no session::load_checkpoint() -> checkpoint&; "
                      "see docs/backends.md");
        static_assert(session_reload_checkpoint<Session>,
                      "projectionist: this type is not a storage: it has no session::reload_checkpoint() -> "
                      "checkpoint&; see docs/backends.md");
        static_assert(
            session_reset_checkpoint<Session>,
            "projectionist: this type is not a storage: it has no session::reset_checkpoint(); see docs/backends.md");
        static_assert(session_find_catalog<Session>,
                      "projectionist: this type is not a storage: it has no session::find_catalog() const -> "
                      "std::optional<catalog_entry>; see docs/backends.md");
        static_assert(session_save_catalog<Session>,
                      "projectionist: this type is not a storage: it has no session::save_catalog(const "
                      "catalog_entry&); see docs/backends.md");
        static_assert(
            session_erase_catalog<Session>,
            "projectionist: this type is not a storage: it has no session::erase_catalog(); see docs/backends.md");
        static_assert(session_record_dead_letter<Session>,
                      "projectionist: this type is not a storage: it has no session::record_dead_letter(dead_letter); "
                      "see docs/backends.md");
        static_assert(session_dead_letters<Session>,
                      "projectionist: this type is not a storage: it has no session::dead_letters() const -> "
                      "std::vector<dead_letter>; see docs/backends.md");
        static_assert(session_begin<Session>,
                      "projectionist: this type is not a storage: it has no session::begin(); see docs/backends.md");
        static_assert(session_commit<Session>,
                      "projectionist: this type is not a storage: it has no session::commit(const checkpoint&, "
                      "std::span<const std::uint64_t>); see docs/backends.md");
        static_assert(
            session_rollback<Session>,
            "projectionist: this type is not a storage: it has no session::rollback() -> bool; see docs/backends.md");
        static_assert(session_drop_table<Session>,
                      "projectionist: this type is not a storage: it has no session::drop_table(std::string_view) -> "
                      "bool; see docs/backends.md");
    }
    return (require_storage_table<S, Tables>() && ... && true);
}

}  // namespace detail
}  // namespace projectionist
