#pragma once

/// How a rollout compares the two answers of a shadow read: equal, except in the columns the
/// plan lists as expected changes. A Hana-reflected row is compared field by field by name, an
/// optional by presence then value, a range element by element; anything else with ==.
///
///     projectionist::ignoring_columns same{{"status"}};
///     same(ticket_row{"t-1", "bug", "open", 0}, ticket_row{"t-1", "bug", "closed", 0})   // true

#include <algorithm>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <projectionist/detail/value_text.hpp>
#include <projectionist/meta/reflection.hpp>
#include <projectionist/meta/type_traits.hpp>

namespace projectionist {

namespace detail::rollout {

template <class T>
bool equal_ignoring(const T& a, const T& b, const std::vector<std::string>& ignored);

template <class T>
bool equal_fields(const T& a, const T& b, const std::vector<std::string>& ignored) {
    bool same = true;
    boost::hana::for_each(boost::hana::accessors<T>(), [&](auto member) {
        if (!same) return;
        const std::string_view name(boost::hana::to<const char*>(boost::hana::first(member)));
        if (std::find(ignored.begin(), ignored.end(), name) != ignored.end()) return;
        same = equal_ignoring(boost::hana::second(member)(a), boost::hana::second(member)(b), ignored);
    });
    return same;
}

template <class T>
bool equal_ignoring(const T& a, const T& b, const std::vector<std::string>& ignored) {
    if constexpr (is_reflected<T>) {
        return equal_fields(a, b, ignored);
    } else if constexpr (is_optional<T>::value) {
        if (a.has_value() != b.has_value()) return false;
        return !a.has_value() || equal_ignoring(*a, *b, ignored);
    } else if constexpr (std::ranges::input_range<T> && !std::is_convertible_v<const T&, std::string_view>) {
        auto ia = std::ranges::begin(a);
        auto ib = std::ranges::begin(b);
        for (; ia != std::ranges::end(a) && ib != std::ranges::end(b); ++ia, ++ib)
            if (!equal_ignoring(*ia, *ib, ignored)) return false;
        return ia == std::ranges::end(a) && ib == std::ranges::end(b);
    } else {
        static_assert(std::equality_comparable<T>,
                      "projectionist: rollout shadow reads: the answer type has no operator== and is not a "
                      "Hana-reflected struct, an optional or a range; give it an operator==");
        return static_cast<bool>(a == b);
    }
}

}  // namespace detail::rollout

/// Equal answers but for the named columns (fields of reflected rows, at any depth).
struct ignoring_columns {
    std::shared_ptr<const std::vector<std::string>> columns = std::make_shared<const std::vector<std::string>>();

    ignoring_columns() = default;
    explicit ignoring_columns(std::vector<std::string> names)
        : columns(std::make_shared<const std::vector<std::string>>(std::move(names))) {}

    template <class T>
    bool operator()(const T& primary, const T& candidate) const {
        return detail::rollout::equal_ignoring(primary, candidate, *columns);
    }
};

}  // namespace projectionist
