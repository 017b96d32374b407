#pragma once
// Two runners declared extern: the translation units that include this header compile none of
// their code; extern_runners.cpp instantiates them once.

#include "tickets_domain.hpp"

PROJECTIONIST_EXTERN_RUNNER(tickets_domain::tickets<2>, projectionist::per_aggregate);
PROJECTIONIST_EXTERN_RUNNER(tickets_domain::tickets<1>, projectionist::global, projectionist::manual_kickoff);
