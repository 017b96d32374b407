#pragma once
// Release 2: v1 as in release 1, and v2 beside it with manual kick-off; v2's notices are held back
// until it is made live (the default emission, emit_when_live).
#include "release_app.hpp"

namespace release::release_2 {

template <class Storage>
using deployment = projectionist::deployment<
    projectionist::runner<notified<1>, Storage>,
    projectionist::runner<notified<2>, Storage, projectionist::manual_kickoff, projectionist::emit_when_live>>;
using router = projectionist::router<notified<1>, notified<2>>;

}  // namespace release::release_2
