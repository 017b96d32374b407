// Release 2: v1 as in release 1, and v2 beside it with manual kick-off; v2's notices are held back
// until it is made live (the default emission, emit_when_live).
#include "release_app.hpp"

template <class Storage>
using release_2_deployment = projectionist::deployment<
    projectionist::runner<release::notified<1>, Storage>,
    projectionist::runner<release::notified<2>, Storage, projectionist::manual_kickoff, projectionist::emit_when_live>>;

int main(int argc, char** argv) {
    return release::main<release_2_deployment, projectionist::router<release::notified<1>, release::notified<2>>>(argc,
                                                                                                                  argv);
}
