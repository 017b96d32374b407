#pragma once

/// Which standard template a type is an instance of, for code that walks values by kind (the
/// codecs, value text, fingerprints, verification statistics).
///
///     static_assert(projectionist::detail::is_optional<std::optional<int>>::value);
///     static_assert(!projectionist::detail::is_vector<std::string>::value);

#include <chrono>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace projectionist::detail {

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};

template <class T>
struct is_pair : std::false_type {};
template <class A, class B>
struct is_pair<std::pair<A, B>> : std::true_type {};

template <class T>
struct is_duration : std::false_type {};
template <class R, class P>
struct is_duration<std::chrono::duration<R, P>> : std::true_type {};

template <class T>
struct is_time_point : std::false_type {};
template <class C, class D>
struct is_time_point<std::chrono::time_point<C, D>> : std::true_type {};

}  // namespace projectionist::detail
