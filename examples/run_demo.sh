#!/usr/bin/env bash
# The main job: builds and runs the blue-green demo of the tickets projection.
# Installs what it needs on Debian 12 (root or sudo), builds in Release, runs the demo.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

"$root/cmake/install-debian-deps.sh" g++ cmake ninja-build libboost1.81-dev libboost-json1.81-dev libfmt-dev catch2 \
  libsqlite3-dev

build="$root/build/demo"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPROJECTIONIST_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target tickets_memory -j"$(nproc)"
exec "$build/examples/tickets_memory"
