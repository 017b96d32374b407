// Release 3: v1's code is gone; v2 only, with automatic kick-off.
#include "release_app.hpp"

template <class Storage>
using release_3_deployment = projectionist::deployment<projectionist::runner<release::notified<2>, Storage>>;

int main(int argc, char** argv) {
    return release::main<release_3_deployment, projectionist::router<release::notified<2>>>(argc, argv);
}
