#!/usr/bin/env bash
# Builds projectionist's benchmarks in Release (-O2) and runs them: dispatch, in-memory rebuild,
# partitioning, scan ceiling, SQLite and PostgreSQL backfill, the bulk backfill baselines
# (projectionist_bench; 8c and 8d run each bulk backfill as a process of its own,
# projectionist_bench_bulk_child, built with it) and compile time
# (compile_time.sh). Prints the table of comparisons and writes benchmarks/results.json.
# For the PostgreSQL comparison it starts a private server (tests/support/pg_cluster.sh, stopped
# on exit) unless PROJECTIONIST_PG_URL names one.
# Installs what it needs on Debian 12 (root or sudo). Never fails on a missed target: the table
# says met or not.
#
# Environment (defaults are the full run; use small numbers while developing):
#   PROJECTIONIST_BENCH_EVENTS         events in the history (1000000)
#   PROJECTIONIST_BENCH_AGGREGATES     aggregates (events / 8)
#   PROJECTIONIST_BENCH_REPS           timed repetitions per side (7)
#   PROJECTIONIST_BENCH_WARMUP         untimed warm-up runs per side (1)
#   PROJECTIONIST_BENCH_SQLITE_REPS    timed repetitions per SQLite side (5); each backfills the whole history
#   PROJECTIONIST_BENCH_SQLITE_WARMUP  untimed warm-up runs per SQLite side (0)
#   PROJECTIONIST_BENCH_SQLITE_DIR     where the SQLite files go (/dev/shm if writable, else the build directory)
#   PROJECTIONIST_BENCH_SQLITE_SYNC    PRAGMA synchronous on every SQLite side: full (default) or normal
#   PROJECTIONIST_BENCH_PG_REPS        timed repetitions per PostgreSQL side (5); each backfills the whole history
#   PROJECTIONIST_BENCH_PG_WARMUP      untimed warm-up runs per PostgreSQL side (0)
#   PROJECTIONIST_PG_URL               a PostgreSQL server to use instead of starting one (postgresql://user@host:port/db)
#   PROJECTIONIST_BENCH_BULK_REPS      timed repetitions per side of 8a-8d, the bulk backfill baselines (3)
#   PROJECTIONIST_BENCH_BULK_PG_RUNNER_REPS  repetitions of 8b's runner_batch side (1: about a minute each at 1M events)
#   PROJECTIONIST_BENCH_BULK_BUDGET_REPS     repetitions per side of 8c, the memory budget (3; 0 skips 8c)
#   PROJECTIONIST_BENCH_BULK_SCALE_EVENTS    events of 8d, the bulk backfill at scale, SQLite and PostgreSQL
#                                            (10000000; 0 skips it; each log takes a few minutes to write)
#   PROJECTIONIST_BENCH_BULK_SCALE_AGGREGATES  aggregates of 8d (events / 10)
#   PROJECTIONIST_BENCH_BULK_SCALE_REPS      rounds of 8d's four sides (1)
#   PROJECTIONIST_BENCH_PG_LIVE_REPS   timed repetitions per side of 8e, the live catch-up (5)
#   PROJECTIONIST_BENCH_PG_LIVE_EVENTS new events of 8e (10000)
#   PROJECTIONIST_BENCH_PG_PIPELINE_REPS  timed repetitions per side of 8g, pipelines on and off (3)
#   PROJECTIONIST_BENCH_PG_PIPELINE_DELAY_US  8g's proxy delay, each way (1000)
#   PROJECTIONIST_BENCH_PG_APPEND_*    9c-9f, PostgreSQL appends: see README.md (env table)
#   PROJECTIONIST_BENCH_ONLY           groups to run (all): dispatch,rebuild,partitioning,scan,sqlite,postgres,bulk,
#                                      pg_live,pg_pipeline,shadow,compile (+ sqlite_attribution: the 6x sides, not run by default;
#                                      bulk_sqlite, bulk_postgres: one half of bulk)
#   PROJECTIONIST_BENCH_COMPILE_RUNS   timed compiles per unit (5); 0 skips the compile-time part, as does a
#                                      PROJECTIONIST_BENCH_ONLY that does not name compile
#   PROJECTIONIST_BENCH_JSON           where to write the results (benchmarks/results.json)
#   PROJECTIONIST_BENCH_BUILD          the build directory (build/bench)
#   PROJECTIONIST_JOBS                 build parallelism (2)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${PROJECTIONIST_BENCH_BUILD:-$root/build/bench}"
jobs="${PROJECTIONIST_JOBS:-2}"
compile_runs="${PROJECTIONIST_BENCH_COMPILE_RUNS:-5}"
only="${PROJECTIONIST_BENCH_ONLY:-}"
if [ -n "$only" ] && [[ ",$only," != *",compile,"* ]]; then
  compile_runs=0  # the compile-time part (about 4 minutes) is the group compile
fi
json="${PROJECTIONIST_BENCH_JSON:-$root/benchmarks/results.json}"
started=$SECONDS

"$root/cmake/install-debian-deps.sh" g++ cmake ninja-build libboost1.81-dev libboost-json1.81-dev libfmt-dev \
  libsqlite3-dev libpq-dev libbenchmark-dev time

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

# The SQLite files (a 117 MB log and the read models) go to memory when possible. A run that was
# killed leaves its directory behind (projectionist-bench-<pid>): remove those whose process is gone.
if [ -z "${PROJECTIONIST_BENCH_SQLITE_DIR:-}" ]; then
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export PROJECTIONIST_BENCH_SQLITE_DIR=/dev/shm
  else
    export PROJECTIONIST_BENCH_SQLITE_DIR="$build"
  fi
fi
for stale in "$PROJECTIONIST_BENCH_SQLITE_DIR"/projectionist-bench-*; do
  [ -d "$stale" ] && [ ! -e "/proc/${stale##*-}" ] && rm -rf "$stale"
done

# The PostgreSQL comparisons (6d, 8b, 8d, 8e) need a server: PROJECTIONIST_PG_URL, else a private
# cluster started here (the tests' script: initdb into a new directory under /dev/shm when
# writable, a free loopback port, fsync=off; see README.md, 6d) and stopped on exit. Only when one
# of their groups runs and the benchmark was built with libpq.
pg_state="$build/pg-cluster"
stop_pg() { bash "$root/tests/support/pg_cluster.sh" stop "$pg_state" || true; }
pg_groups=",${PROJECTIONIST_BENCH_ONLY:-postgres},"
if [[ "$pg_groups" == *",postgres,"* || "$pg_groups" == *",bulk,"* || "$pg_groups" == *",bulk_postgres,"* ||
  "$pg_groups" == *",pg_live,"* || "$pg_groups" == *",pg_pipeline,"* ]]; then
  # grep reads all of ldd's output (no -q): an early exit would end ldd with SIGPIPE, which fails the
  # pipeline under pipefail and would read as "built without libpq".
  if ! ldd "$build/benchmarks/projectionist_bench" | grep libpq >/dev/null; then
    echo "== PostgreSQL: the benchmark was built without libpq, so 6d, 8b, 8d and 8e are not measured"
  elif [ -n "${PROJECTIONIST_PG_URL:-}" ]; then
    echo "== PostgreSQL: the server at PROJECTIONIST_PG_URL"
    export PROJECTIONIST_BENCH_PG_URL="$PROJECTIONIST_PG_URL"
  else
    echo "== PostgreSQL: starting a private server"
    trap stop_pg EXIT
    trap 'exit 130' INT TERM  # exits through the EXIT trap
    pg_tmp="${TMPDIR:-/tmp}"
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then pg_tmp=/dev/shm; fi
    TMPDIR="$pg_tmp" bash "$root/tests/support/pg_cluster.sh" start "$pg_state"
    PROJECTIONIST_BENCH_PG_URL="$(cat "$pg_state/url")"
    export PROJECTIONIST_BENCH_PG_URL
  fi
fi

# 9c-9f (groups appends, appends_postgres) measure appends on a durable server: a second private
# cluster with its data directory on disk (/var/tmp, not /dev/shm) and PostgreSQL's defaults
# (fsync=on, synchronous_commit=on, full_page_writes=on), stopped on exit. PROJECTIONIST_PG_URL
# replaces it too.
pg_append_state="$build/pg-append-cluster"
stop_pg_append() { bash "$root/tests/support/pg_cluster.sh" stop "$pg_append_state" || true; }
append_groups=",${PROJECTIONIST_BENCH_ONLY:-appends},"
if [[ "$append_groups" == *",appends,"* || "$append_groups" == *",appends_postgres,"* ]] &&
  ldd "$build/benchmarks/projectionist_bench" | grep libpq >/dev/null; then  # not -q: pipefail and SIGPIPE
  if [ -n "${PROJECTIONIST_PG_URL:-}" ]; then
    export PROJECTIONIST_BENCH_PG_APPEND_URL="$PROJECTIONIST_PG_URL"
  else
    echo "== PostgreSQL: starting a private server on disk for 9c-9f"
    trap 'stop_pg; stop_pg_append' EXIT
    trap 'exit 130' INT TERM
    TMPDIR=/var/tmp bash "$root/tests/support/pg_cluster.sh" start "$pg_append_state"
    # pg_cluster.sh starts it with fsync off (tests); restart it with the defaults on the same port.
    pg_append_dir="$(cat "$pg_append_state/cluster")"
    pg_append_port="$(sed 's/.*:\([0-9]*\)\/.*/\1/' "$pg_append_state/url")"
    pg_append_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
    pg_append_as=()
    if [ "$(id -u)" -eq 0 ]; then pg_append_as=(runuser -u postgres --); fi
    "${pg_append_as[@]}" "$pg_append_bin/pg_ctl" -D "$pg_append_dir/data" -w -t 60 restart -m fast \
      -o "-c listen_addresses=127.0.0.1 -p $pg_append_port -k $pg_append_dir -c max_connections=200" >/dev/null
    PROJECTIONIST_BENCH_PG_APPEND_URL="$(cat "$pg_append_state/url")"
    export PROJECTIONIST_BENCH_PG_APPEND_URL
  fi
fi

echo "== runtime comparisons"
"$build/benchmarks/projectionist_bench" --json "$json" --markdown "$build/results.md" "${samples_args[@]}"
echo "total time: $((SECONDS - started)) s"
