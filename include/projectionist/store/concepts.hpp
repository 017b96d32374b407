#pragma once

/// What an event store must provide, stated once: the concept `event_store<S>` (what a runner reads
/// through), `event_store_for<S, Stream>` (what it does with one stream's events) and
/// `detail::require_event_store<S, Streams...>()`, which a runner calls where it takes a store and
/// which fails with one message per missing member. See docs/backends.md.
///
///     static_assert(projectionist::event_store<projectionist::memory_event_store>);
///     static_assert(projectionist::event_store_for<projectionist::memory_event_store, ticket_stream>);

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/mp11/list.hpp>

#include <projectionist/event/envelope.hpp>
#include <projectionist/event/stream.hpp>
#include <projectionist/store/event_type.hpp>
#include <projectionist/store/expected_version.hpp>

namespace projectionist {

namespace detail {

/// A batch's element is the record itself (stored_batch) or a pointer to it (memory_event_store).
template <class T>
struct record_of_element {
    using type = std::remove_cvref_t<T>;
};
template <class T>
struct record_of_element<T*> {
    using type = std::remove_cv_t<T>;
};
template <class T>
struct record_of_element<T* const> {
    using type = std::remove_cv_t<T>;
};

/// The record type of a store's batch: what `*batch.begin()` is, or points to.
template <class Store>
using batch_record_t = typename record_of_element<
    std::remove_cvref_t<decltype(*std::declval<const typename Store::batch&>().begin())>>::type;

namespace store_contract {

template <class S>
concept has_category = std::same_as<typename S::event_store_category, event_store_category>;
template <class S>
concept has_batch = requires(typename S::batch& b, const typename S::batch& cb) {
    cb.begin();
    cb.end();
    { cb.empty() } -> std::convertible_to<bool>;
    { cb.size() } -> std::convertible_to<std::size_t>;
    cb[std::size_t{0}];
};
template <class S>
concept has_head = requires(const S& s) {
    { s.head() } -> std::convertible_to<std::uint64_t>;
};
template <class S>
concept has_read = has_batch<S> && requires(const S& s, typename S::batch& b, std::uint64_t after, std::size_t max) {
    s.read(after, max, b);
};
template <class S>
concept has_type_count = requires(const S& s) {
    { s.type_count() } -> std::convertible_to<std::uint32_t>;
};
template <class S>
concept has_type_info = requires(const S& s, std::uint32_t id) {
    { s.type_info(id) } -> std::convertible_to<event_type_info>;
};

// What a runner asks of each record of a batch.
template <class R>
concept record_position = requires(const R& r) {
    { r.position() } -> std::convertible_to<std::uint64_t>;
};
template <class R>
concept record_type_id = requires(const R& r) {
    { r.type_id() } -> std::convertible_to<std::uint32_t>;
};
template <class R>
concept record_names = requires(const R& r) {
    { r.stream() } -> std::convertible_to<std::string_view>;
    { r.type_name() } -> std::convertible_to<std::string_view>;
};
template <class R>
concept record_aggregate = requires(const R& r) {
    { r.aggregate_id() } -> std::convertible_to<std::string_view>;
    { r.aggregate_number() } -> std::convertible_to<std::uint64_t>;
    { r.aggregate_version() } -> std::convertible_to<std::uint64_t>;
};
template <class R>
concept record_envelope = requires(const R& r) {
    { r.envelope_of() } -> std::convertible_to<envelope>;
};
template <class R>
concept stored_event_record =
    record_position<R> && record_type_id<R> && record_names<R> && record_aggregate<R> && record_envelope<R>;

template <class S>
concept has_records = has_batch<S> && stored_event_record<batch_record_t<S>>;

template <class S, class Stream, class Event>
concept appends = requires(S& s, std::string_view id, Event e) {
    s.append(Stream{}, id, expected_version::any(), std::move(e));
};
template <class S, class Stream>
concept numbers_aggregates = requires(const S& s, std::string_view id) {
    { s.aggregate_number(Stream{}, id) } -> std::convertible_to<std::optional<std::uint64_t>>;
};
template <class S, class Event>
concept decodes = has_batch<S> && requires(const S& s, const batch_record_t<S>& r) {
    { s.template event_of<Event>(r) } -> std::convertible_to<const Event&>;
};

template <class S, class Stream, class Events>
struct for_stream_events;
template <class S, class Stream, class... Events>
struct for_stream_events<S, Stream, boost::mp11::mp_list<Events...>> {
    static constexpr bool append = (appends<S, Stream, Events> && ...);
    static constexpr bool decode = (decodes<S, Events> && ...);
};

}  // namespace store_contract
}  // namespace detail

/// A log of events a runner reads: a category tag, a batch type, `head`, `read`, and interned
/// event types. Each member is described in docs/backends.md.
///
///     struct my_store {
///         using event_store_category = projectionist::detail::event_store_category;
///         using batch = std::vector<const my_record*>;
///         std::uint64_t head() const;
///         void read(std::uint64_t after, std::size_t max, batch& out) const;
///         std::uint32_t type_count() const;
///         projectionist::event_type_info type_info(std::uint32_t id) const;
///         // + append, aggregate_number and event_of<Event> per stream: event_store_for
///     };
template <class S>
concept event_store = detail::store_contract::has_category<S> && detail::store_contract::has_read<S> &&
    detail::store_contract::has_records<S> && detail::store_contract::has_head<S> &&
    detail::store_contract::has_type_count<S> && detail::store_contract::has_type_info<S>;

/// An event store that holds the events of `Stream`: it appends them (emission), numbers the
/// stream's aggregates (per-aggregate positions) and hands a record's event to a handler.
template <class S, class Stream>
concept event_store_for = event_store<S> && detail::store_contract::numbers_aggregates<S, Stream> &&
    detail::store_contract::for_stream_events<S, Stream, typename Stream::events>::append &&
    detail::store_contract::for_stream_events<S, Stream, typename Stream::events>::decode;

namespace detail::store_contract {
template <class S>
concept batch_append_members = requires(S& s, typename S::append_batch& b) {
    { s.new_batch() } -> std::same_as<typename S::append_batch>;
    b.size();
    b.clear();
    { s.append(b) } -> std::convertible_to<std::vector<append_result>>;
};
template <class S, class Stream, class Event>
concept batch_adds = requires(typename S::append_batch& b, std::string_view id, Event e) {
    b.add(Stream{}, id, expected_version::any(), std::move(e));
};
template <class S, class Stream, class Events>
inline constexpr bool batch_adds_all = false;
template <class S, class Stream, class... Events>
inline constexpr bool batch_adds_all<S, Stream, boost::mp11::mp_list<Events...>> = (batch_adds<S, Stream, Events> &&
                                                                                    ...);
}  // namespace detail::store_contract

/// Optional ability: appends many events of many aggregates in one call and one transaction
/// (store/append_batch.hpp): `S::append_batch`, `new_batch()`, `append(append_batch&) ->
/// std::vector<append_result>`, all or nothing, each part checked against its expected version.
/// Every store of this library has it; an importer or an application that writes several
/// aggregates per command uses it. Declared like the abilities of storage/abilities.hpp: by the
/// members, or by specializing the trait.
///
///     static_assert(projectionist::has_batch_append<projectionist::sqlite_event_store>);
template <class S>
inline constexpr bool has_batch_append = detail::store_contract::batch_append_members<S>;

/// `has_batch_append<S>` for the events of `Stream`: a batch of S takes them.
template <class S, class Stream>
concept batch_appends_stream =
    has_batch_append<S> && detail::store_contract::batch_adds_all<S, Stream, typename Stream::events>;

namespace detail {

/// Checks `event_store_for<S, Streams>...` with one message per missing member, named by the
/// concept and the member; the type is the one this function is instantiated with (the
/// compiler prints it in the instantiation context). Returns true, so that a caller can write
/// `static_assert(require_event_store<S, Streams...>())` and see only the messages above.
///
///     static_assert(projectionist::detail::require_event_store<my_store, ticket_stream>());
template <class S, class... Streams>
consteval bool require_event_store() {
    using namespace store_contract;
    static_assert(has_category<S>,
                  "projectionist: this type is not an event_store: it has no member type event_store_category = "
                  "projectionist::detail::event_store_category; see docs/backends.md");
    static_assert(has_batch<S>,
                  "projectionist: this type is not an event_store: it has no member type batch with begin(), end(), "
                  "empty(), size() and operator[]; see docs/backends.md");
    static_assert(has_head<S>,
                  "projectionist: this type is not an event_store: it has no head() const -> std::uint64_t; see "
                  "docs/backends.md");
    static_assert(!has_batch<S> || has_read<S>,
                  "projectionist: this type is not an event_store: it has no read(std::uint64_t after, std::size_t "
                  "max, batch& out) const; see docs/backends.md");
    static_assert(has_type_count<S>,
                  "projectionist: this type is not an event_store: it has no type_count() const -> std::uint32_t; "
                  "see docs/backends.md");
    static_assert(has_type_info<S>,
                  "projectionist: this type is not an event_store: it has no type_info(std::uint32_t id) const -> "
                  "projectionist::event_type_info; see docs/backends.md");
    if constexpr (has_batch<S>) {
        using R = batch_record_t<S>;
        static_assert(record_position<R>,
                      "projectionist: this type is not an event_store: its batch's record has no position() const "
                      "-> std::uint64_t; see docs/backends.md");
        static_assert(record_type_id<R>,
                      "projectionist: this type is not an event_store: its batch's record has no type_id() const "
                      "-> std::uint32_t; see docs/backends.md");
        static_assert(record_names<R>,
                      "projectionist: this type is not an event_store: its batch's record has no stream() and "
                      "type_name() const -> std::string_view; see docs/backends.md");
        static_assert(record_aggregate<R>,
                      "projectionist: this type is not an event_store: its batch's record has no aggregate_id(), "
                      "aggregate_number() and aggregate_version() const; see docs/backends.md");
        static_assert(record_envelope<R>,
                      "projectionist: this type is not an event_store: its batch's record has no envelope_of() "
                      "const -> projectionist::envelope; see docs/backends.md");
    }
    static_assert((numbers_aggregates<S, Streams> && ...),
                  "projectionist: this type is not an event_store_for the projection's streams: it has no "
                  "aggregate_number(Stream, std::string_view id) const -> std::optional<std::uint64_t>; see "
                  "docs/backends.md");
    static_assert((for_stream_events<S, Streams, typename Streams::events>::append && ...),
                  "projectionist: this type is not an event_store_for the projection's streams: it has no "
                  "append(Stream, std::string_view id, expected_version, Event) for one of their events; see "
                  "docs/backends.md");
    if constexpr (has_batch<S>)
        static_assert((for_stream_events<S, Streams, typename Streams::events>::decode && ...),
                      "projectionist: this type is not an event_store_for the projection's streams: it has no "
                      "event_of<Event>(const record&) const -> const Event& for one of their events; see "
                      "docs/backends.md");
    return true;
}

}  // namespace detail
}  // namespace projectionist
