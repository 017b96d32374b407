// Release 1 of the notified-tickets application: v1 only, with automatic kick-off.
#include "release_app.hpp"

template <class Storage>
using release_1_deployment = projectionist::deployment<projectionist::runner<release::notified<1>, Storage>>;

int main(int argc, char** argv) {
    return release::main<release_1_deployment, projectionist::router<release::notified<1>>>(argc, argv);
}
