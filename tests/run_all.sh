#!/usr/bin/env bash
# Builds and runs every test. Installs what it needs on Debian 12 (PostgreSQL and Prometheus included:
# the tests start their own servers).
#
#   1. formatting: clang-format-14 --dry-run --Werror on every source.
#   2. gcc-asan-ubsan: gcc 12, -Werror, AddressSanitizer + UndefinedBehaviorSanitizer. Builds every
#      target and runs every test, all labels: this is the one configuration that runs the
#      compile-fail tests (they check gcc's diagnostics; -fsyntax-only, so the sanitizers change
#      nothing there) and the package tests (install, consumers, each header on its own).
#   3. clang: clang 14, -Werror. Builds every target (the examples and every test executable), then
#      runs the tests that execute project code (all labels but compile_fail and package, which are
#      done in 2 and would only repeat a compiler's front end). Built without debug information:
#      nothing is debugged here, and -g costs a fifth of clang's compile time; warnings do not
#      depend on it.
# The test executables share a precompiled header (tests/CMakeLists.txt, projectionist_test_pch): it
# saves about 40% of clang's time on a small test file, 5% of gcc's under the sanitizers, where code
# generation dominates. It is on unless a compiler launcher (ccache) is set.
# A plain gcc build would add nothing that 2 does not check: the same compiler and warnings, and
# every test it would run runs in 2 under the sanitizers.
#
# Environment: PROJECTIONIST_JOBS (default: nproc), PROJECTIONIST_BUILD_ROOT (default: build/).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="${PROJECTIONIST_JOBS:-$(nproc)}"
builds="${PROJECTIONIST_BUILD_ROOT:-$root/build}"

"$root/cmake/install-debian-deps.sh" g++ cmake ninja-build libboost1.81-dev libboost-json1.81-dev libfmt-dev catch2 libsqlite3-dev \
  postgresql libpq-dev clang-14 clang-format-14 prometheus

started=$SECONDS
section() { printf '\n=== %s (%ds)\n' "$1" $((SECONDS - started)); }

section "formatting (clang-format-14 --dry-run --Werror)"
mapfile -t sources < <(cd "$root" && git ls-files '*.hpp' '*.cpp' 2>/dev/null || find include tests examples benchmarks -name '*.[ch]pp')
(cd "$root" && clang-format-14 --dry-run --Werror "${sources[@]}")

# run_suite <name> <cmake args...>: configure, build everything, run every test registered.
run_suite() {
  local name="$1"; shift
  section "$name: configure and build"
  cmake -S "$root" -B "$builds/$name" -G Ninja "$@" >/dev/null
  cmake --build "$builds/$name" -j"$jobs"
  section "$name: test"
  ctest --test-dir "$builds/$name" --output-on-failure -j"$jobs" --timeout 600
}

run_suite gcc-asan-ubsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=g++ -DPROJECTIONIST_SANITIZE=ON
run_suite clang -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DPROJECTIONIST_COMPILE_FAIL_TESTS=OFF -DPROJECTIONIST_PACKAGE_TESTS=OFF

section "all suites passed"
