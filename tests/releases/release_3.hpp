#pragma once
// Release 3: v1's code is gone; v2 only, with automatic kick-off.
#include "release_app.hpp"

namespace release::release_3 {

template <class Storage>
using deployment = projectionist::deployment<projectionist::runner<notified<2>, Storage>>;
using router = projectionist::router<notified<2>>;

}  // namespace release::release_3
