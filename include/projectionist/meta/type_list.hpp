#pragma once

#include <cstddef>
#include <optional>
#include <type_traits>

#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>

namespace projectionist::detail {

/// For static_asserts that must only fire when a template is instantiated.
template <class...>
inline constexpr bool always_false = false;
template <class...>
struct always_false_type : std::false_type {};

template <class List, class T>
inline constexpr bool list_contains = boost::mp11::mp_contains<List, T>::value;

}  // namespace projectionist::detail
