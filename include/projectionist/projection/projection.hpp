#pragma once

#include <cstddef>
#include <string_view>
#include <type_traits>

#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>

#include <projectionist/event/stream.hpp>
#include <projectionist/meta/fixed_string.hpp>
#include <projectionist/meta/name.hpp>
#include <projectionist/projection/table.hpp>

namespace projectionist {

/// Projection option: every event of the projection's streams must have a handler, or the
/// program does not compile. Catches "v2 forgot an event type" before deploy.
struct exhaustive {};

/// Projection option: the stream that `ctx.emit(event)` appends to.
template <stream_type Stream>
struct emits_to {
    using stream = Stream;
};

namespace detail {

struct projection_tag {};

template <class T>
struct is_emits_to : std::false_type {};
template <class S>
struct is_emits_to<emits_to<S>> : std::true_type {};

template <class T>
using is_stream_t = std::bool_constant<stream_type<T>>;

template <class T>
consteval bool require_stream_or_option() {
    static_assert(
        stream_type<T> || std::is_same_v<T, exhaustive> || is_emits_to<T>::value,
        "projectionist: projection<Name, Version, Streams...>: every argument after the version must be a "
        "projectionist::stream<...> or an option (projectionist::exhaustive, projectionist::emits_to<Stream>)");
    return true;
}

template <class List>
struct emission_target {
    using type = void;
};
template <class S, class... Rest>
struct emission_target<boost::mp11::mp_list<emits_to<S>, Rest...>> {
    using type = S;
};

}  // namespace detail

/// The base of every projection: its name, version and the streams it reads.
///
///     template <unsigned V>
///     struct tickets : projectionist::projection<"tickets", V, ticket_stream> {
///         using table = projectionist::table<ticket_row, &ticket_row::ticket_id>;
///         void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.id, e.type, "open"}); }
///     };
///     static_assert(projectionist::name_of<tickets<2>> == "tickets_v2");
///
/// The name must match `[a-z][a-z0-9_]*` and "<name>_v<version>" must fit in 63 bytes, so that
/// table names are valid, unquoted-safe SQL identifiers on every backend.
template <fixed_string Name, unsigned Version, class... StreamsAndOptions>
struct projection {
    static_assert(Name.size() > 0, "projectionist: projection<Name, Version, ...>: the projection name is empty");
    static_assert(detail::starts_with_lowercase_letter(Name.view()),
                  "projectionist: projection<Name, Version, ...>: the projection name must start with a lowercase "
                  "letter [a-z]");
    static_assert(detail::has_only_identifier_chars(Name.view()),
                  "projectionist: projection<Name, Version, ...>: the projection name may contain only lowercase "
                  "letters, digits and '_' ([a-z][a-z0-9_]*)");
    static_assert(Version >= 1, "projectionist: projection<Name, Version, ...>: versions start at 1");
    static_assert(detail::versioned_name<Name, Version>::size <= max_identifier_length,
                  "projectionist: projection<Name, Version, ...>: the versioned name \"<name>_v<version>\" is longer "
                  "than 63 bytes (PostgreSQL's identifier limit); choose a shorter name");
    static_assert((detail::require_stream_or_option<StreamsAndOptions>() && ...));

    using projection_category = detail::projection_tag;
    using arguments = boost::mp11::mp_list<StreamsAndOptions...>;
    /// The streams this projection reads, in declaration order.
    using streams = boost::mp11::mp_copy_if<arguments, detail::is_stream_t>;
    static_assert(boost::mp11::mp_size<streams>::value > 0,
                  "projectionist: projection<Name, Version, Streams...>: a projection reads at least one stream");
    static_assert(boost::mp11::mp_count_if<arguments, detail::is_emits_to>::value <= 1,
                  "projectionist: projection<...>: at most one emits_to<Stream> option");
    /// The stream `ctx.emit` appends to, or void.
    using emission_stream =
        typename detail::emission_target<boost::mp11::mp_copy_if<arguments, detail::is_emits_to>>::type;

    static constexpr auto base_name_string = Name;
    static constexpr std::string_view base_name = Name.view();
    static constexpr unsigned version = Version;
    static constexpr std::string_view versioned_name = detail::versioned_name<Name, Version>::value;
    static constexpr bool is_exhaustive = boost::mp11::mp_contains<arguments, exhaustive>::value;
};

/// A type derived from `projectionist::projection<...>`.
template <class T>
concept projection_type = std::is_class_v<T> && requires {
    typename T::projection_category;
    requires std::is_same_v<typename T::projection_category, detail::projection_tag>;
};

/// The versioned name of a projection: `name_of<tickets<2>> == "tickets_v2"`. A constant
/// expression, so it can be checked with static_assert.
template <projection_type Projection>
inline constexpr std::string_view name_of = Projection::versioned_name;

namespace detail {

template <class P>
concept has_tables_list = requires {
    typename P::tables::list;
};
template <class P>
concept has_single_table = requires {
    typename P::table;
};

template <class P>
struct tables_of_impl {
    using type = boost::mp11::mp_list<>;
};
template <has_tables_list P>
struct tables_of_impl<P> {
    using type = typename P::tables::list;
};
template <class P>
requires(has_single_table<P> && !has_tables_list<P>) struct tables_of_impl<P> {
    using type = boost::mp11::mp_list<typename P::table>;
};

/// The projection's table declarations, as an mp_list.
template <class P>
using tables_of = typename tables_of_impl<P>::type;

/// The name of one of P's tables: "<name>_v<version>[_<suffix>]".
template <class P, class Table>
inline constexpr std::string_view table_name_v = versioned_name<P::base_name_string, P::version, Table::suffix>::value;

template <class P, class Table>
consteval bool require_table_name_fits() {
    static_assert(versioned_name<P::base_name_string, P::version, Table::suffix>::size <= max_identifier_length,
                  "projectionist: a table name \"<name>_v<version>_<suffix>\" is longer than 63 bytes "
                  "(PostgreSQL's identifier limit); shorten the projection name or the table suffix");
    return true;
}

template <class Stream>
using events_of_stream = typename Stream::events;

/// Every event type of every stream the projection reads, without repeats.
template <class P>
using subscribed_events = boost::mp11::mp_unique<
    boost::mp11::mp_apply<boost::mp11::mp_append, boost::mp11::mp_transform<events_of_stream, typename P::streams>>>;

/// One (stream, event) pair a projection reads; the unit of dispatch.
template <class Stream, class Event>
struct subscription {
    using stream = Stream;
    using event = Event;
};

template <class Stream>
using subscriptions_of_stream =
    boost::mp11::mp_product<subscription, boost::mp11::mp_list<Stream>, typename Stream::events>;

/// Every (stream, event) pair of the projection, streams in declaration order.
template <class P>
using subscriptions_of = boost::mp11::mp_apply<boost::mp11::mp_append,
                                               boost::mp11::mp_transform<subscriptions_of_stream, typename P::streams>>;

}  // namespace detail

/// The name of one of a projection's tables: `table_name_of<orders<2>, orders<2>::transactions>`
/// is "customer_orders_v2_transactions" (the main table's name is `name_of<P>`).
template <projection_type Projection, class Table>
inline constexpr std::string_view table_name_of = detail::table_name_v<Projection, Table>;

}  // namespace projectionist
