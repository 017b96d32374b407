#pragma once
// Comparison 7, shadow reads: what routing a query, and shadow-reading it on the candidate
// version, add on the primary path. See bench_shadow.cpp and README.md ("7. Shadow reads").

#include <vector>

#include "harness.hpp"

namespace bench {

/// Measures 7a (a routed query against the same lookup without the router) and 7b (a shadow read
/// against a routed query), over in-memory tables of two versions, and appends them to `out`.
void bench_shadow(const measure_options& measure, std::vector<comparison>& out);

}  // namespace bench
