#!/usr/bin/env bash
# Builds and runs every test. Installs what it needs on Debian 12 (PostgreSQL and Prometheus included:
# the tests start their own servers).
#
#   1. formatting: clang-format-14 --dry-run --Werror on every source.
#   2. gcc-asan-ubsan: gcc 12, -Werror, AddressSanitizer + UndefinedBehaviorSanitizer (every check
#      but `alignment` and `null`: CMakeLists.txt, PROJECTIONIST_UBSAN_EXCLUDE, says why). Builds the
#      library's tests and runs every test that executes library code (unit, sqlite, postgres,
#      backend, fault, crash, failover, releases, rollout, metrics): all labels but compile_fail
#      and package, which run the compiler (and an install) only and run in 3, and example. Line
#      tables only (-g1): the sanitizers' reports keep their function, file and line, and full
#      debug information costs a tenth of this build's compile time.
#      Not the examples: they are users of the library, whose code they run (runners, backends,
#      command line, rollouts, metrics server) the tests above run here too; what they add is
#      their own outcome, which is checked in 3. Their compiles cost about 350 CPU-s under the
#      sanitizers, an eighth of this build.
#      The benchmarks are compiled here with -fsyntax-only (PROJECTIONIST_BENCHMARKS_COMPILE_ONLY:
#      gcc's warnings, as errors, and no code, about 70 CPU-s), not linked nor run (that is
#      benchmarks/run.sh's work): a change of the library that breaks them fails this command.
#      gcc, because benchmarks/run.sh builds them with the default compiler.
#   3. clang: clang 14, -Werror. Compiles every target. It links and runs the examples (the one
#      configuration that runs them, label example), the compile-fail tests (-fsyntax-only: they
#      need no sanitizer, and their expectations hold for gcc and clang alike) and the package
#      tests (install, consumers, each header on its own: less CPU with clang's front end than with
#      gcc's under the sanitizers, and nothing for a sanitizer to check). The tests' own sources
#      are compiled with -fsyntax-only and neither linked nor run here
#      (PROJECTIONIST_TESTS_COMPILE_ONLY, tests/CMakeLists.txt): every warning of clang's front end,
#      as errors; their code is generated, linked and run in 2, under the sanitizers.
#      Built without debug information: nothing is debugged here, and -g costs a fifth of clang's
#      compile time; warnings do not depend on it.
# A plain gcc build would add little that 2 does not check: the same compiler and warnings, and
# every test it would run runs in 2 under the sanitizers or in 3; only gcc's warnings on the
# examples, which use no part of the library that the tests do not.
#
# Time (the whole run must fit a 2-core CI machine without ccache in 25 minutes):
# - the clang build starts first, in the background, one compile at a time and at the lowest CPU
#   priority (nice 19): it takes only the CPU that 2 leaves idle (the last long compiles of its
#   build; its tests waiting on PostgreSQL, Prometheus and child processes); when 2 ends, it goes
#   on with every core.
# - the tests of one kind share a program, compiled as one translation unit (tests/CMakeLists.txt,
#   projectionist_test_program): the library's code they instantiate is generated once per program,
#   not once per test; that halved the sanitized build's CPU time for those tests.
# - the test executables share a precompiled header (tests/CMakeLists.txt, projectionist_test_pch):
#   about 40% of clang's time on a small test file, 5% of gcc's under the sanitizers, where code
#   generation dominates. It is on unless a compiler launcher (ccache) is set.
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

# Labels clang only compiles: every label of a test program. Each runs in 2 under the sanitizers;
# clang's code for them was a second build of the whole suite and a second run of its fastest
# tests, for what 2 checks already (the compiler's warnings are checked here all the same).
clang_compiles_only=".*"

"$root/cmake/install-debian-deps.sh" g++ cmake ninja-build libboost1.81-dev libboost-json1.81-dev libfmt-dev catch2 libsqlite3-dev \
  postgresql libpq-dev clang-14 clang-format-14 prometheus

started=$SECONDS
section() { printf '\n=== %s (%ds)\n' "$1" $((SECONDS - started)); }

section "formatting (clang-format-14 --dry-run --Werror)"
mapfile -t sources < <(cd "$root" && git ls-files '*.hpp' '*.cpp' 2>/dev/null || find include tests examples benchmarks -name '*.[ch]pp')
(cd "$root" && clang-format-14 --dry-run --Werror "${sources[@]}")

asan="$builds/gcc-asan-ubsan"
clang="$builds/clang"

section "clang: configure; build in the background, at the lowest priority"
cmake -S "$root" -B "$clang" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DPROJECTIONIST_COMPILE_FAIL_TESTS=ON -DPROJECTIONIST_PACKAGE_TESTS=ON \
  "-DPROJECTIONIST_TESTS_COMPILE_ONLY=$clang_compiles_only" >/dev/null
clang_log="$clang/background-build.log"
nice -n 19 ninja -C "$clang" -j1 all projectionist_header_check >"$clang_log" 2>&1 &
clang_build=$!
# stop_clang_build: ends the background build if it still runs (on SIGTERM ninja stops its compiles).
stop_clang_build() {
  if kill -0 "$clang_build" 2>/dev/null; then
    kill -TERM "$clang_build" 2>/dev/null || true
  fi
  wait "$clang_build" 2>/dev/null || true
}
trap stop_clang_build EXIT

section "gcc-asan-ubsan: configure and build"
cmake -S "$root" -B "$asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DCMAKE_CXX_COMPILER=g++ \
  -DPROJECTIONIST_SANITIZE=ON -DPROJECTIONIST_BUILD_EXAMPLES=OFF -DPROJECTIONIST_COMPILE_FAIL_TESTS=OFF \
  -DPROJECTIONIST_PACKAGE_TESTS=OFF -DPROJECTIONIST_BUILD_BENCHMARKS=ON -DPROJECTIONIST_BENCHMARKS_COMPILE_ONLY=ON \
  >/dev/null
cmake --build "$asan" -j"$jobs"

section "gcc-asan-ubsan: test (all labels registered: all but compile_fail, package and example)"
ctest --test-dir "$asan" --output-on-failure -j"$jobs" --timeout 600

section "clang: build (the rest, every core)"
stop_clang_build
tail -n 3 "$clang_log"
# The header check (a package test) is built here; its test then finds it built.
cmake --build "$clang" -j"$jobs" --target all projectionist_header_check  # a compile error of the background build shows again here

section "clang: test (labels example, compile_fail and package: the tests' programs were only compiled)"
ctest --test-dir "$clang" --output-on-failure -j"$jobs" --timeout 600 -L "example|compile_fail|package"

section "all suites passed"
