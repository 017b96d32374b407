#!/usr/bin/env bash
# Builds and runs every test: formatting, then the whole suite with gcc, with clang, and with
# gcc under AddressSanitizer + UndefinedBehaviorSanitizer. Installs what it needs on Debian 12.
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

# run_suite <name> <cmake args...>: configure, build everything, run every test.
run_suite() {
  local name="$1"; shift
  section "$name: configure and build"
  cmake -S "$root" -B "$builds/$name" -G Ninja "$@" >/dev/null
  cmake --build "$builds/$name" -j"$jobs"
  section "$name: test"
  ctest --test-dir "$builds/$name" --output-on-failure -j"$jobs" --timeout 600
}

run_suite gcc -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=g++
run_suite clang -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++-14
# Sanitizers: the unit tests and examples; the compile-fail and package tests do not run
# project code, so they are not repeated here.
run_suite gcc-asan-ubsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=g++ -DPROJECTIONIST_SANITIZE=ON \
  -DPROJECTIONIST_COMPILE_FAIL_TESTS=OFF -DPROJECTIONIST_PACKAGE_TESTS=OFF

section "all suites passed"
