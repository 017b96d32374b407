#!/usr/bin/env bash
# Builds projectionist's benchmarks in Release (-O2) and runs them: dispatch, in-memory rebuild,
# partitioning, scan ceiling (projectionist_bench) and compile time (compile_time.sh). Prints
# the table of comparisons and writes benchmarks/results.json. Installs what it needs on
# Debian 12 (root or sudo). Never fails on a missed target: the table says met or not.
#
# Environment (defaults are the full run; use small numbers while developing):
#   PROJECTIONIST_BENCH_EVENTS         events in the history (1000000)
#   PROJECTIONIST_BENCH_AGGREGATES     aggregates (events / 8)
#   PROJECTIONIST_BENCH_REPS           timed repetitions per side (7)
#   PROJECTIONIST_BENCH_WARMUP         untimed warm-up runs per side (1)
#   PROJECTIONIST_BENCH_COMPILE_RUNS   timed compiles per unit (5); 0 skips the compile-time part
#   PROJECTIONIST_BENCH_JSON           where to write the results (benchmarks/results.json)
#   PROJECTIONIST_JOBS                 build parallelism (2)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build/bench"
jobs="${PROJECTIONIST_JOBS:-2}"
compile_runs="${PROJECTIONIST_BENCH_COMPILE_RUNS:-5}"
json="${PROJECTIONIST_BENCH_JSON:-$root/benchmarks/results.json}"
started=$SECONDS

"$root/cmake/install-debian-deps.sh" g++ cmake ninja-build libboost1.81-dev libfmt-dev libbenchmark-dev time

echo "== build (Release, -O2) in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" \
  -DPROJECTIONIST_BUILD_BENCHMARKS=ON -DPROJECTIONIST_BUILD_TESTS=OFF -DPROJECTIONIST_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" --target projectionist_bench -j"$jobs"

samples_args=()
if [ "$compile_runs" -gt 0 ]; then
  echo "== compile time: 50 event types, $compile_runs runs per unit"
  cxx="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")"
  bash "$root/benchmarks/compile_time.sh" "$build/compile_time" "$cxx" "$compile_runs" "$root"
  samples_args=(--compile-samples "$build/compile_time/samples.tsv")
fi

# Which library the numbers are for: the commit, and whether include/ had uncommitted changes.
revision="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$root" status --porcelain -- include 2>/dev/null)" ]; then
  revision="$revision with uncommitted changes in include/"
fi
export PROJECTIONIST_BENCH_REVISION="$revision"

echo "== runtime comparisons"
"$build/benchmarks/projectionist_bench" --json "$json" --markdown "$build/results.md" "${samples_args[@]}"
echo "total time: $((SECONDS - started)) s"
