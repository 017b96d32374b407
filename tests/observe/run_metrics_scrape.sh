#!/bin/sh
# `run --metrics` of the example application, scraped: the command line serves /metrics, /healthz
# and /readyz while it follows the log; events recorded by another process meanwhile reach
# tickets_v2, whose lag on the page falls to 0; the page passes `promtool check metrics`; /readyz
# answers 200 once tickets_v2 is caught up; SIGINT stops it cleanly.
#
#     run_metrics_scrape.sh <tickets_console> <work dir>
set -u
app=$1
dir=$2
fail() { echo "FAILED: $*"; [ -f "$dir/run.out" ] && sed 's/^/  run: /' "$dir/run.out"; exit 1; }
command -v curl >/dev/null || fail "curl is not installed (Debian package curl)"
command -v promtool >/dev/null || fail "promtool is not installed (Debian package prometheus)"
rm -rf "$dir" && mkdir -p "$dir" || fail "cannot make $dir"
db=$dir/app.db

"$app" "$db" record 300 >/dev/null || fail "record 300"
"$app" "$db" init tickets_v2 >/dev/null || fail "init tickets_v2"
"$app" "$db" backfill tickets_v2 --progress none >/dev/null || fail "backfill tickets_v2"

"$app" "$db" run --metrics 127.0.0.1:0 --ready tickets_v2 --for 120s >"$dir/run.out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
url=
for _ in $(seq 100); do
    url=$(sed -n 's|^  metrics: \(http://[^ ]*\)/metrics .*|\1|p' "$dir/run.out")
    [ -n "$url" ] && break
    kill -0 $pid 2>/dev/null || fail "run exited before serving metrics"
    sleep 0.1
done
[ -n "$url" ] || fail "run did not print where it serves metrics"
echo "run serves $url"

[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" = 200 ] || fail "/healthz is not 200"
recorded=$("$app" "$db" record 200) || fail "record 200 while run runs"
head=$(echo "$recorded" | sed -n 's/.*the log.s head is \([0-9]*\)$/\1/p')
[ -n "$head" ] || fail "record did not say where the log's head is: $recorded"

caught_up=
for _ in $(seq 300); do
    curl -s "$url/metrics" >"$dir/page.txt" || fail "GET /metrics"
    if grep -q '^projectionist_lag_events{projection="tickets",version="tickets_v2"} 0$' "$dir/page.txt" &&
       grep -q "^projectionist_position{projection=\"tickets\",version=\"tickets_v2\"} ${head:-x}\$" "$dir/page.txt"; then
        caught_up=yes
        break
    fi
    sleep 0.1
done
[ -n "$caught_up" ] || { cat "$dir/page.txt"; fail "tickets_v2 did not reach position ${head:-?} with lag 0 on the page"; }
grep -q '^projectionist_events_applied_total{projection="tickets",version="tickets_v2"} [1-9]' "$dir/page.txt" ||
    fail "tickets_v2 applied nothing under run"
promtool check metrics <"$dir/page.txt" || fail "promtool check metrics rejects the page"
code=$(curl -s -o "$dir/ready.txt" -w '%{http_code}' "$url/readyz")
[ "$code" = 200 ] || fail "/readyz answered $code: $(cat "$dir/ready.txt")"

kill -INT $pid
wait $pid
status=$?
trap - EXIT
[ $status = 0 ] || fail "run exited with status $status after SIGINT"
grep -q '^run: stopped (SIGINT received)' "$dir/run.out" || fail "run did not report the SIGINT"
curl -s -o /dev/null "$url/metrics" && fail "the endpoint still answers after run stopped"
echo "run --metrics: scraped; tickets_v2 caught up at position $head; promtool accepts the page; stopped cleanly"
