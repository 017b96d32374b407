#!/usr/bin/env bash
# The main job: builds and runs the tickets blue-green demo on SQLite, the embedded default.
# Installs what it needs on Debian 12 (root or sudo), builds in Release, runs the demo, and
# leaves the database in build/demo/tickets.db for a look with the sqlite3 shell.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

"$root/cmake/install-debian-deps.sh" g++ cmake ninja-build libboost1.81-dev libboost-json1.81-dev libfmt-dev catch2 \
  libsqlite3-dev

build="$root/build/demo"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPROJECTIONIST_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target tickets_blue_green -j"$(nproc)"
db="$build/tickets.db"
rm -f "$db" "$db-wal" "$db-shm"
"$build/examples/tickets_blue_green" --keep "$db"
echo
echo "the database is kept: sqlite3 $db \"select type, payload from events limit 5\""
