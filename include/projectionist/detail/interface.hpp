#pragma once

/// The base of a type-erased interface that is held by pointer (the controller and rollout
/// interfaces the command line keeps per projection): not copyable, destroyed through the base.

namespace projectionist::detail {

class interface {
public:
    interface() = default;
    interface(const interface&) = delete;
    interface& operator=(const interface&) = delete;
    virtual ~interface() = default;
};

}  // namespace projectionist::detail
