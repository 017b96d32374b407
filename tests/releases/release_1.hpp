#pragma once
// Release 1 of the notified-tickets application: v1 only, with automatic kick-off.
#include "release_app.hpp"

namespace release::release_1 {

template <class Storage>
using deployment = projectionist::deployment<projectionist::runner<notified<1>, Storage>>;
using router = projectionist::router<notified<1>>;

}  // namespace release::release_1
