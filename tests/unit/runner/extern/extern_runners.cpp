// The one translation unit that compiles the runners extern_runners.hpp declares.

#include "extern_runners.hpp"

PROJECTIONIST_INSTANTIATE_RUNNER(tickets_domain::tickets<2>, projectionist::per_aggregate);
PROJECTIONIST_INSTANTIATE_RUNNER(tickets_domain::tickets<1>, projectionist::global, projectionist::manual_kickoff);
