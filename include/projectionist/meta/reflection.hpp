#pragma once

/// Reflection of Boost.Hana structs (BOOST_HANA_DEFINE_STRUCT / BOOST_HANA_ADAPT_STRUCT), in one
/// place: every backend, codec and verification tool walks fields through these helpers.
///
///     struct row { BOOST_HANA_DEFINE_STRUCT(row, (std::string, id), (int, n)); };
///     static_assert(projectionist::detail::field_count<row> == 2);
///     projectionist::detail::field_name<row, 1>()              // "n"
///     projectionist::detail::for_each_field(r, [](std::string_view name, const auto& value) { ... });

#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/hana/accessors.hpp>
#include <boost/hana/at.hpp>
#include <boost/hana/concept/struct.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/length.hpp>
#include <boost/hana/pair.hpp>
#include <boost/hana/string.hpp>

namespace projectionist::detail {

/// Whether T is a Hana-reflected struct.
template <class T>
inline constexpr bool is_reflected = boost::hana::Struct<T>::value;

/// The number of reflected fields of T.
template <class T>
inline constexpr std::size_t field_count = decltype(boost::hana::length(boost::hana::accessors<T>()))::value;

/// The type of field I of T (cv and references removed).
template <class T, std::size_t I>
using field_t = std::remove_cvref_t<decltype(boost::hana::second(boost::hana::at_c<I>(boost::hana::accessors<T>()))(
    std::declval<const T&>()))>;

/// Field I of `value` (const or not).
template <std::size_t I, class T>
constexpr decltype(auto) field(T&& value) {
    return boost::hana::second(boost::hana::at_c<I>(boost::hana::accessors<std::remove_cvref_t<T>>()))(
        std::forward<T>(value));
}

/// The name of field I of T, as declared.
template <class T, std::size_t I>
[[nodiscard]] constexpr std::string_view field_name() noexcept {
    return boost::hana::to<const char*>(boost::hana::first(boost::hana::at_c<I>(boost::hana::accessors<T>())));
}

/// Calls `f(name, field)` for each field of `value` in declaration order (`field` keeps the
/// constness of `value`).
template <class T, class F>
constexpr void for_each_field(T&& value, F&& f) {
    boost::hana::for_each(boost::hana::accessors<std::remove_cvref_t<T>>(), [&](auto member) {
        f(std::string_view(boost::hana::to<const char*>(boost::hana::first(member))),
          boost::hana::second(member)(value));
    });
}

/// Calls `f(name, std::type_identity<Field>{})` for each field type of T: no object needed.
template <class T, class F>
constexpr void for_each_field_type(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (f(field_name<T, I>(), std::type_identity<field_t<T, I>>{}), ...);
    }
    (std::make_index_sequence<field_count<T>>{});
}

/// The field names of T, in declaration order.
template <class T>
[[nodiscard]] std::vector<std::string> field_names() {
    std::vector<std::string> out;
    out.reserve(field_count<T>);
    for_each_field_type<T>([&](std::string_view name, auto) { out.emplace_back(name); });
    return out;
}

}  // namespace projectionist::detail
