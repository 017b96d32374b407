#pragma once

#include <string_view>
#include <type_traits>

#include <boost/hana/concept/struct.hpp>
#include <boost/mp11/list.hpp>

#include <projectionist/meta/fixed_string.hpp>
#include <projectionist/meta/name.hpp>

namespace projectionist {

namespace detail {
template <class T>
struct member_pointer_traits {
    static constexpr bool valid = false;
};
template <class Member, class Class>
struct member_pointer_traits<Member Class::*> {
    static constexpr bool valid = !std::is_function_v<Member>;
    using class_type = Class;
    using member_type = Member;
};
}  // namespace detail

/// Declares one typed table of a projection: rows of `Row` (a Hana-reflected struct) keyed by
/// the data member `Key`. The table is named after the projection's versioned name, plus
/// `_<Suffix>` for a projection's further tables:
///
///     using tables = projectionist::tables<
///         projectionist::table<order_row, &order_row::order_id>,                   // "orders_v2"
///         projectionist::table<transaction_row, &transaction_row::id, "transactions">>;  // "orders_v2_transactions"
///
/// A projection with a single table may write `using table = projectionist::table<...>;`.
template <class Row, auto Key, fixed_string Suffix = "">
struct table {
    static_assert(boost::hana::Struct<Row>::value,
                  "projectionist: table<Row, Key>: Row must be reflected with BOOST_HANA_DEFINE_STRUCT or "
                  "BOOST_HANA_ADAPT_STRUCT so that storage can map its fields to columns");
    static_assert(
        detail::member_pointer_traits<decltype(Key)>::valid,
        "projectionist: table<Row, Key>: Key must be a pointer to a data member, e.g. &ticket_row::ticket_id");
    static_assert(std::is_same_v<typename detail::member_pointer_traits<decltype(Key)>::class_type, Row>,
                  "projectionist: table<Row, Key>: Key must be a data member of Row itself");
    static_assert(Suffix.size() == 0 || detail::is_identifier(Suffix.view()),
                  "projectionist: table<Row, Key, Suffix>: a table suffix must match [a-z][a-z0-9_]*");

    using row_type = Row;
    using key_type = typename detail::member_pointer_traits<decltype(Key)>::member_type;
    static constexpr auto key = Key;
    static constexpr auto suffix = Suffix;

    /// The key of a row.
    [[nodiscard]] static constexpr const key_type& key_of(const Row& row) noexcept { return row.*Key; }
};

/// The list of a projection's tables, see `table`.
template <class... Tables>
struct tables {
    using list = boost::mp11::mp_list<Tables...>;
};

/// Names a table by its row type in `ctx.table(projectionist::rows<transaction_row>)`.
template <class Row>
struct rows_t {};
template <class Row>
inline constexpr rows_t<Row> rows{};

}  // namespace projectionist
