#!/usr/bin/env bash
# The blue-green flow across releases, as a team ships it, through each release's own command line:
#
#   release 1 (v1, automatic kick-off): v1 initializes itself, serves and is made live.
#   release 2 (v1 + v2, v2 with manual kick-off, its notices held back): init v2, backfill it while
#   a writer appends, verify, internal users first, switch 10% then 100%, make v2 live from another
#   process while the application runs with v1 live and a writer appends (each position notified
#   once: by v1 up to the hand-over position, by v2 after it), delete v1.
#   release 3 (v2 only, automatic kick-off) starts cleanly, catches up and serves; then release 2
#   is started again by mistake and must not bring v1 back.
#
# After every step it asserts the versions' states and live flags, the tables that exist, the
# router's answer and the downstream log: every ticket event after v1 went live is notified once,
# by exactly one version, and no position twice.
#
#   release_flow.sh sqlite   <release_1> <release_2> <release_3> <work dir>
#   release_flow.sh postgres <release_1> <release_2> <release_3> <file holding the server's URL>
#                            (PROJECTIONIST_PG_URL, if set, names the server instead)
set -uo pipefail

backend=$1
r1=$2
r2=$3
r3=$4
changed=$6  # release 2 with v2's row type changed and no new version number
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
case $backend in
  sqlite)
    rm -rf "$5" && mkdir -p "$5"
    db="sqlite:$5/app.db"
    ;;
  postgres)
    # The server PROJECTIONIST_PG_URL names, as for every PostgreSQL test; else the test fixture's.
    if [ -n "${PROJECTIONIST_PG_URL:-}" ]; then
      url=$PROJECTIONIST_PG_URL
    else
      url=$(cat "$5") || { echo "FAIL: no PostgreSQL server URL in $5"; exit 1; }
    fi
    db="postgres:releases_$$_$(date +%s)@$url"
    ;;
  *) echo "usage: $0 sqlite|postgres <release_1> <release_2> <release_3> <dir or url file>"; exit 2 ;;
esac

out=""
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
step() { echo; echo "== $*"; }

# ok <release> <args...>: runs a command that must succeed; its output is in $out.
ok() {
  local release=$1
  shift
  out=$("$release" "$db" "$@" 2>&1)
  local code=$?
  echo "\$ $(basename "$release") $*"
  echo "$out" | sed 's/^/    /'
  [ $code -eq 0 ] || fail "$(basename "$release") $* exited with $code"
}
# has <text>: the last output contains the text.
has() { grep -qF -- "$1" <<<"$out" || fail "expected '$1' in the output above"; }
# state_is <release> <version> <state> <live>: the status table's row of the version.
state_is() {
  ok "$1" status
  local row
  row=$(awk -v v="$2" '$1 == v { print $2, $3 }' <<<"$out")
  [ "$row" = "$3 $4" ] || fail "$2: expected '$3 $4' (state, live), the status says '$row'"
}
# tables_are <release> <tables...>: the versions' tables that exist.
tables_are() {
  local release=$1
  shift
  ok "$release" tables
  [ "$(echo $out)" = "$*" ] || fail "expected the tables '$*', found '$(echo $out)'"
}
# routes <release> <user> <version>
routes() {
  ok "$1" route "$2"
  [ "$(awk '{ print $1 }' <<<"$out")" = "$3" ] || fail "$2 should be routed to $3"
}
# downstream_exact <release> <after> [<version> <notices>]...: nothing after <after> unnotified,
# no position notified twice (by one version or two), and each version's count of notices.
downstream_exact() {
  local release=$1 after=$2
  shift 2
  ok "$release" downstream --after "$after"
  has "by-two-versions 0 missing 0"
  grep -q "repeated [1-9]" <<<"$out" && fail "a version notified a position twice"
  while [ $# -gt 0 ]; do
    local n
    n=$(awk -v v="$1" '$1 == v { print $3 }' <<<"$out")
    [ "${n:-0}" = "$2" ] || fail "$1: expected $2 notices, found ${n:-0}"
    shift 2
  done
}
# downstream_counts <release> <after>: as downstream_exact, and sets $c1 and $c2 to the notices of
# v1 and v2.
downstream_counts() {
  downstream_exact "$1" "$2"
  c1=$(awk '$1 == "notified_v1" { print $3 }' <<<"$out")
  c2=$(awk '$1 == "notified_v2" { print $3 }' <<<"$out")
  c1=${c1:-0}
  c2=${c2:-0}
}
# head_of <release>: sets $head to the log's head.
head_of() {
  ok "$1" append 0
  head=$(awk '{ print $2 }' <<<"$out")
}

# ---- release 1 -----------------------------------------------------------------------------------
step "release 1: v1 initializes itself on its first catch-up, serves and is made live"
ok "$r1" append 40
ok "$r1" catch-up
state_is "$r1" notified_v1 caught_up no
tables_are "$r1" notified_v1
ok "$r1" switch notified --to notified_v1
state_is "$r1" notified_v1 serving no
ok "$r1" live notified_v1
state_is "$r1" notified_v1 serving yes
routes "$r1" user-1 notified_v1
head_of "$r1"
live_from=$head

step "release 1: new events are applied and notified once each"
ok "$r1" append 30
ok "$r1" catch-up
downstream_exact "$r1" "$live_from" notified_v1 30 notified_v2 0

# ---- release 2 -----------------------------------------------------------------------------------
step "release 2: v2 is declared and stays dormant (manual kick-off)"
state_is "$r2" notified_v2 declared no
ok "$r2" catch-up
state_is "$r2" notified_v2 declared no
state_is "$r2" notified_v1 serving yes
tables_are "$r2" notified_v1

step "release 2: init v2, then backfill it while a writer appends"
ok "$r2" init notified_v2
state_is "$r2" notified_v2 initialized no
tables_are "$r2" notified_v1 notified_v2
(for _ in 1 2 3 4 5 6 7 8; do "$r2" "$db" append 5 >/dev/null || exit 1; sleep 0.05; done) &
writer=$!
ok "$r2" backfill notified_v2 --progress none
wait $writer || fail "the writer failed"
ok "$r2" catch-up
state_is "$r2" notified_v2 caught_up no
state_is "$r2" notified_v1 serving yes
routes "$r2" user-1 notified_v1
# v2 replayed everything without notifying: its notices are held back until it is live
downstream_exact "$r2" "$live_from" notified_v1 70 notified_v2 0

step "release 2: verify v2 against v1 (the intended changes are registered in code)"
ok "$r2" verify notified_v1 notified_v2
has "OVERALL VERDICT: PASS"

step "release 2: internal users first, then 10%, then everyone"
ok "$r2" switch notified --to notified_v2 --percent 0
ok "$r2" predicate notified --on internal-users
has "on: internal-users"
routes "$r2" staff-1 notified_v2
routes "$r2" user-1 notified_v1
ok "$r2" switch notified --to notified_v2 --percent 10
# The 100 users in one process (a process per user would spend the test's time starting up).
ok "$r2" route $(printf 'user-%d ' $(seq 1 100)) >/dev/null
[ "$(wc -l <<<"$out")" -eq 100 ] || fail "route of 100 users answered $(wc -l <<<"$out") lines"
on_v2=$(awk '$1 == "notified_v2"' <<<"$out" | wc -l)
echo "users on notified_v2 at 10%: $on_v2 of 100"
{ [ $on_v2 -ge 2 ] && [ $on_v2 -le 25 ]; } || fail "at 10%, $on_v2 of 100 users are on notified_v2"
ok "$r2" switch notified --to notified_v2
ok "$r2" predicate notified --off
routes "$r2" user-1 notified_v2
state_is "$r2" notified_v2 serving no
state_is "$r2" notified_v1 retired yes
downstream_exact "$r2" "$live_from" notified_v1 70 notified_v2 0

step "release 2: v2 is made live from another process while v1 is live in a running one and a writer appends"
ok "$r2" append 20
# The application: both versions following the log, v1 live (its notices pass), v2 not yet.
"$r2" "$db" run --for 5s >"$logs/run.out" 2>&1 &
running=$!
(for _ in $(seq 1 20); do "$r2" "$db" append 5 >/dev/null || exit 1; sleep 0.1; done) &
writer=$!
sleep 1
ok "$r2" live notified_v2
wait $writer || fail "the writer failed"
wait $running || fail "the running release 2 failed: $(cat "$logs/run.out")"
ok "$r2" catch-up
state_is "$r2" notified_v2 serving yes
state_is "$r2" notified_v1 retired no
# Each position notified once: by v1 up to the hand-over position, by v2 after it.
downstream_counts "$r2" "$live_from"
n1=$c1
n2=$c2
echo "notices by notified_v1: $n1, by notified_v2: $n2"
[ "$n1" -ge 70 ] || fail "notified_v1 lost notices before the hand-over: $n1"
[ "$n2" -ge 1 ] || fail "notified_v2 notified nothing after the hand-over"
[ "$((n1 + n2))" = 190 ] || fail "expected 190 notices after v1 went live, found $((n1 + n2))"
ok "$r2" append 25
ok "$r2" catch-up
downstream_exact "$r2" "$live_from" notified_v1 "$n1" notified_v2 "$((n2 + 25))"

step "release 2: v1 is deleted; the router forgets it"
ok "$r2" delete notified_v1
state_is "$r2" notified_v1 deleted no
tables_are "$r2" notified_v2
routes "$r2" user-1 notified_v2

# ---- release 3 -----------------------------------------------------------------------------------
step "release 3 (v2 only) starts cleanly, catches up and serves"
state_is "$r3" notified_v2 serving yes
ok "$r3" append 15
ok "$r3" catch-up
routes "$r3" user-1 notified_v2
tables_are "$r3" notified_v2
downstream_exact "$r3" "$live_from" notified_v1 "$n1" notified_v2 "$((n2 + 40))"

# ---- release 2 again, by mistake --------------------------------------------------------------------
step "release 2 is started again by mistake: v1 stays deleted"
state_is "$r2" notified_v1 deleted no
ok "$r2" catch-up
ok "$r2" run --for 300ms
state_is "$r2" notified_v1 deleted no
tables_are "$r2" notified_v2
ok "$r3" append 5
ok "$r2" catch-up
downstream_exact "$r2" "$live_from" notified_v1 "$n1" notified_v2 "$((n2 + 45))"

step "v2's row type changed without a new version number: refused, saying what changed"
out=$("$changed" "$db" catch-up 2>&1)
code=$?
echo "$out" | sed 's/^/    /'
[ $code -ne 0 ] || fail "a changed notified_v2 was run"
has "notified_v2 changed since it was initialized"
has "assignee"
has "deploy it as notified_v3, or reset notified_v2 to rebuild it"
tables_are "$r3" notified_v2
downstream_exact "$r3" "$live_from" notified_v1 "$n1" notified_v2 "$((n2 + 45))"

echo
if [ $failures -ne 0 ]; then
  echo "release flow on $backend: $failures failed checks"
  exit 1
fi
echo "release flow on $backend: every check passed"
