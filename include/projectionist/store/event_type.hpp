#pragma once

#include <cstdint>
#include <string_view>

namespace projectionist {

namespace detail {
/// Marks an event store type, so that a runner can take it as a policy.
struct event_store_category {};

template <class T>
struct type_identity_tag {
    static constexpr char value = 0;
};
/// A per-type address, used to check that a stored name always meant the same C++ type.
template <class T>
constexpr const void* type_identity() noexcept {
    return &type_identity_tag<T>::value;
}
}  // namespace detail

/// One interned (stream, stored event name) pair of an event store. Stores give each pair a
/// dense id; a runner maps ids to its compile-time event list once, then indexes an array per
/// event instead of comparing names.
struct event_type_info {
    std::uint32_t id = 0;
    std::string_view stream;
    std::string_view name;
    /// The C++ type the store holds for this name, or null for stores that keep encoded
    /// payloads (there the codec, not the type, decides).
    const void* cpp_type = nullptr;
};

}  // namespace projectionist
