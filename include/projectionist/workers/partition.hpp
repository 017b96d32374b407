#pragma once
// Partitions moved below the runner, to store/partition.hpp; this header keeps old includes working.
#include <projectionist/store/partition.hpp>
