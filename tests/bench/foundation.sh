#!/bin/bash
# The foundation's figures, printed (never asserted): requests/s for /health/live and for a
# 100-row namespace list over the Unix socket at 50 keep-alive connections, the median wall
# time of `shepherd namespace list -o json`, and the daemon's RSS idle and after the load.
# Runs inside tests/helpers/with-postgres.sh (make bench does that).
set -eu
: "${SHEPHERD:?}" "${SHEPHERDD:?}" "${SHP_TEST_PGURL:?}" "${top_builddir:?}"
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
LOADGEN="$top_builddir/tests/bench/loadgen"

T=$(mktemp -d "${TMPDIR:-/tmp}/shp-bench.XXXXXX")
SOCK="$T/shepherdd.sock"
"$SHEPHERDD" --database-url "$SHP_TEST_PGURL" --state-dir "$T/state" --socket "$SOCK" \
	--log-level warn >"$T/daemon.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$T"' EXIT
for i in $(seq 1 300); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://localhost/health/ready 2>/dev/null)" = 200 ] && break
	sleep 0.1
done

psql -X -q "$SHP_TEST_PGURL" -c "INSERT INTO namespaces (name, environment, description)
	SELECT 'bench-' || lpad(i::text, 3, '0'), CASE WHEN i % 2 = 0 THEN 'test' ELSE 'prod' END::environment,
	       'namespace number ' || i FROM generate_series(1, 100) i"
curl -s --unix-socket "$SOCK" http://localhost/api/v1/whoami >/dev/null
sleep 1
rss() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }
rss_idle=$(rss)

health=$("$LOADGEN" --socket "$SOCK" --path /health/live --connections 50 --threads 1 --seconds "$SECONDS_PER_RUN")
list=$("$LOADGEN" --socket "$SOCK" --path '/api/v1/namespaces?limit=100' --connections 50 --threads 1 --seconds "$SECONDS_PER_RUN")
rss_load=$(rss)

cli=$(python3 - "$SHEPHERD" "$SOCK" <<'PY'
import statistics, subprocess, sys, time
cmd = [sys.argv[1], "--socket", sys.argv[2], "namespace", "list", "-o", "json"]
def timed(argv, n):
    for _ in range(10):
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return times
times = timed(cmd, 200)
floor = statistics.median(timed(["true"], 200))
# the harness's own cost of starting any process, measured the same way, is printed beside it
print(f"{statistics.median(times):.2f} {min(times):.2f} {max(times):.2f} {floor:.2f}")
PY
)
rows=$("$SHEPHERD" --socket "$SOCK" namespace list -o json | jq length)

printf '\nshepherd foundation benchmark (%s cores, %s s per load run)\n' "$(nproc)" "$SECONDS_PER_RUN"
printf '%-46s %12s %10s %10s   %s\n' measure value p50_us p99_us target
printf '%-46s %12s %10s %10s   %s\n' "GET /health/live, 50 conns (req/s)" "$(jq .rps <<<"$health")" \
	"$(jq .p50_us <<<"$health")" "$(jq .p99_us <<<"$health")" ">= 50000"
printf '%-46s %12s %10s %10s   %s\n' "GET /api/v1/namespaces 100 rows, 50 conns (req/s)" "$(jq .rps <<<"$list")" \
	"$(jq .p50_us <<<"$list")" "$(jq .p99_us <<<"$list")" ">= 5000"
read -r cli_med cli_min cli_max cli_floor <<<"$cli"
printf '%-46s %12s %10s %10s   %s\n' "shepherd namespace list -o json (ms, median)" "$cli_med" "" "" \
	"<= 5 ms ($rows rows; min/max $cli_min/$cli_max; starting 'true' the same way: $cli_floor ms)"
printf '%-46s %12s %10s %10s   %s\n' "shepherdd RSS idle (MiB)" "$rss_idle" "" "" "<= 20 MiB"
printf '%-46s %12s %10s %10s   %s\n' "shepherdd RSS after the load (MiB)" "$rss_load" "" "" ""
printf 'errors: health %s, list %s\n' "$(jq .errors <<<"$health")" "$(jq .errors <<<"$list")"
