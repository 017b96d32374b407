#!/usr/bin/env bash
# Builds and runs every test. Installs what it needs on Debian 12 (PostgreSQL and Prometheus included:
# the tests start their own servers).
#
#   1. formatting: clang-format-14 --dry-run --Werror on every source.
#   2. clang-asan-ubsan: clang 14, -Werror, AddressSanitizer + UndefinedBehaviorSanitizer (every check
#      but `alignment` and `null`: CMakeLists.txt, PROJECTIONIST_UBSAN_EXCLUDE, says why). Builds the
#      library's tests and runs every test but the examples: the tests that execute library code
#      (unit, sqlite, postgres, backend, fault, crash, failover, releases, rollout, metrics), the
#      compile-fail tests (-fsyntax-only: their expectations hold for gcc and clang alike) and the
#      package tests (install, consumers, each header on its own). No debug information:
#      the sanitizers' reports name each frame's function (llvm-symbolizer reads the symbol
#      table); even line tables (-gline-tables-only) cost a fifth of this build's compile time
#      (on the backend suite's translation unit, 93 against 70 CPU-s). A report's file and line
#      come from running the test again in a build with -g.
#      clang, not gcc, carries the sanitizers because it compiles this code about twice as fast
#      with them: the backend suite's SQLite translation unit takes 167 s of CPU with gcc 12 and
#      its precompiled header, 83 s with clang 14 without one.
#   3. gcc: gcc 12, -Werror. Compiles every target. The tests' sources are compiled with
#      -fsyntax-only (PROJECTIONIST_TESTS_COMPILE_ONLY, tests/CMakeLists.txt): every warning of gcc's
#      front end, as errors, in a fifth of the CPU of a sanitized compile (34 s for the same
#      translation unit); they run in 2. It links and runs the examples (the one configuration
#      that runs them, label example: the README's demo is built with the default compiler).
#      Built without debug information: nothing is debugged here.
# Every target is thus compiled by both compilers with every warning as an error; the tests' code
# is generated, linked and run by clang under the sanitizers, the examples' by gcc.
#
# Time (the whole run must fit a 2-core CI machine without ccache in 25 minutes):
# - the gcc build starts first, in the background, one compile at a time and at the lowest CPU
#   priority (nice 19): it takes only the CPU that 2 leaves idle (the last long compiles of its
#   build; its tests waiting on PostgreSQL, Prometheus and child processes); when 2 ends, it goes
#   on with every core.
# - the test executables share a precompiled header (tests/CMakeLists.txt, projectionist_test_pch):
#   about 40% of clang's time on a small test file. It is on unless a compiler launcher (ccache)
#   is set.
# - ninja starts the longest compiles first (the order of tests/CMakeLists.txt's subdirectories), so
#   that no core is left idle beside one long compile at the end of the sanitized build.
# - ctest starts the longest tests first (their COST property, tests/CMakeLists.txt), so that no
#   core is left idle beside one long test at the end of a configuration's tests.
#
# Environment: PROJECTIONIST_JOBS (default: nproc), PROJECTIONIST_BUILD_ROOT (default: build/).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="${PROJECTIONIST_JOBS:-$(nproc)}"
builds="${PROJECTIONIST_BUILD_ROOT:-$root/build}"

"$root/cmake/install-debian-deps.sh" g++ cmake ninja-build libboost1.81-dev libboost-json1.81-dev libfmt-dev catch2 libsqlite3-dev \
  postgresql libpq-dev clang-14 llvm-14 clang-format-14 prometheus

started=$SECONDS
section() { printf '\n=== %s (%ds)\n' "$1" $((SECONDS - started)); }

section "formatting (clang-format-14 --dry-run --Werror)"
mapfile -t sources < <(cd "$root" && git ls-files '*.hpp' '*.cpp' 2>/dev/null || find include tests examples benchmarks -name '*.[ch]pp')
(cd "$root" && clang-format-14 --dry-run --Werror "${sources[@]}")

asan="$builds/clang-asan-ubsan"
gcc="$builds/gcc"

section "gcc: configure; build in the background, at the lowest priority"
cmake -S "$root" -B "$gcc" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0 -DCMAKE_CXX_COMPILER=g++ \
  -DPROJECTIONIST_COMPILE_FAIL_TESTS=OFF -DPROJECTIONIST_PACKAGE_TESTS=OFF "-DPROJECTIONIST_TESTS_COMPILE_ONLY=.*" >/dev/null
gcc_log="$gcc/background-build.log"
nice -n 19 ninja -C "$gcc" -j1 >"$gcc_log" 2>&1 &
gcc_build=$!
# stop_gcc_build: ends the background build if it still runs (on SIGTERM ninja stops its compiles).
stop_gcc_build() {
  if kill -0 "$gcc_build" 2>/dev/null; then
    kill -TERM "$gcc_build" 2>/dev/null || true
  fi
  wait "$gcc_build" 2>/dev/null || true
}
trap stop_gcc_build EXIT

section "clang-asan-ubsan: configure and build"
cmake -S "$root" -B "$asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0 \
  -DCMAKE_CXX_COMPILER=clang++-14 -DPROJECTIONIST_SANITIZE=ON -DPROJECTIONIST_BUILD_EXAMPLES=OFF \
  -DPROJECTIONIST_COMPILE_FAIL_TESTS=ON -DPROJECTIONIST_PACKAGE_TESTS=ON >/dev/null
cmake --build "$asan" -j"$jobs" --target all projectionist_header_check  # the header check is a package test; built here, its test finds it built

section "clang-asan-ubsan: test (all labels registered: all but example)"
# llvm-14's symbolizer names the function, file and line of each frame of a sanitizer's report.
if command -v llvm-symbolizer-14 >/dev/null; then export ASAN_SYMBOLIZER_PATH="$(command -v llvm-symbolizer-14)"; fi
ctest --test-dir "$asan" --output-on-failure -j"$jobs" --timeout 600

section "gcc: build (the rest, every core)"
stop_gcc_build
tail -n 3 "$gcc_log"
cmake --build "$gcc" -j"$jobs"  # a compile error of the background build shows again here

section "gcc: test (label example: the tests' programs were only compiled)"
ctest --test-dir "$gcc" --output-on-failure -j"$jobs" --timeout 600 -L example

section "all suites passed"
