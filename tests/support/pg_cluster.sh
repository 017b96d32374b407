#!/usr/bin/env bash
# A private PostgreSQL server for the tests: started before the first postgres test and stopped
# after the last (CTest fixture `postgres`, see tests/postgres/CMakeLists.txt).
#
# Usage: pg_cluster.sh start|stop|restart <state-dir>
#
# start: installs Debian's postgresql if initdb is missing (cmake/install-debian-deps.sh), runs
#   initdb into a new temporary directory as a non-root user (the `postgres` user when run as
#   root: the server refuses to run as root; the temporary directory, unlike a build tree under
#   a private home, is always reachable for it), starts the server on a free loopback port with
#   pg_ctl -w, and writes its URL (postgresql://<user>@127.0.0.1:<port>/postgres) to
#   <state-dir>/url and the cluster's directory to <state-dir>/cluster.
#   With PROJECTIONIST_PG_URL set, starts nothing: the tests use that server.
# stop: pg_ctl stop -m fast, then removes the cluster's directory and the state files.
# restart: pg_ctl restart -m fast on the same port (a fault test: every connection is lost).
set -euo pipefail
usage="usage: pg_cluster.sh start|stop|restart <state-dir>"
action="${1:?$usage}"
state="${2:?$usage}"
url_file="$state/url"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

say() { echo "pg_cluster: $*"; }

# The newest installed server binaries (Debian keeps them out of PATH).
pg_bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  if command -v initdb >/dev/null; then dirname "$(command -v initdb)"; return; fi
}

# Runs a command as the cluster's owner: ourselves, or `postgres` when we are root.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' \
    2>/dev/null || echo $((20000 + RANDOM % 20000))
}

start() {
  if [ -n "${PROJECTIONIST_PG_URL:-}" ]; then
    say "PROJECTIONIST_PG_URL is set: the tests use that server, none is started"
    rm -f "$url_file"
    return 0
  fi
  local bin
  bin="$(pg_bindir)"
  if [ -z "$bin" ]; then
    "$root/cmake/install-debian-deps.sh" postgresql
    bin="$(pg_bindir)"
  fi
  [ -n "$bin" ] || { say "no initdb after installing postgresql" >&2; exit 1; }
  local user
  if [ "$(id -u)" -eq 0 ]; then
    getent passwd postgres >/dev/null || { say "running as root, but there is no 'postgres' user to run the server" >&2; exit 1; }
    user=postgres
  else
    user="$(id -un)"
  fi

  # A cluster of an interrupted run: stop and remove it first.
  stop
  mkdir -p "$state"
  local dir
  dir="$(mktemp -d "${TMPDIR:-/tmp}/projectionist-pg.XXXXXX")"
  echo "$dir" >"$state/cluster"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  as_owner "$bin/initdb" -D "$dir/data" -U "$user" --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }

  # Tests, not durability: no fsync. Enough connections for the concurrent tests of two builds.
  local tries port
  for tries in 1 2 3 4 5; do
    port="$(free_port)"
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
         -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off -c max_connections=200" \
         start >/dev/null; then
      echo "postgresql://$user@127.0.0.1:$port/postgres" >"$url_file"
      say "started PostgreSQL ($bin) in $dir on 127.0.0.1:$port"
      return 0
    fi
    say "start on port $port failed (attempt $tries):" >&2
    tail -n 5 "$dir/server.log" >&2 || true
  done
  exit 1
}

stop() {
  rm -f "$url_file"
  [ -f "$state/cluster" ] || return 0
  local bin dir
  dir="$(cat "$state/cluster")"
  bin="$(pg_bindir)"
  if [ -n "$bin" ] && [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" stop -m fast -w >/dev/null
    say "stopped the server in $dir"
  fi
  case "$dir" in */projectionist-pg.*) rm -rf "$dir" ;; esac
  rm -f "$state/cluster"
}

restart() {
  [ -f "$state/cluster" ] || { say "no cluster was started in $state" >&2; exit 1; }
  local dir
  dir="$(cat "$state/cluster")"
  as_owner "$(pg_bindir)/pg_ctl" -D "$dir/data" -w -t 60 restart -m fast >/dev/null
  say "restarted the server in $dir"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  restart) restart ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
