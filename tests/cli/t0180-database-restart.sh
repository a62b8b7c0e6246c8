#!/bin/bash
# The database goes away under a running daemon: requests that need it get 503 with
# Retry-After (quickly, not after a long hang), liveness stays up, readiness goes down, and
# everything recovers by itself when the database is back.
. "$top_srcdir/tests/helpers/lib.sh"

start_daemon --db-checkout-timeout 2s
api POST /api/v1/namespaces -H 'Content-Type: application/json' -d '{"name":"before","environment":"test"}' >/dev/null
expect_eq 201 "$(code)" "a namespace is created while the database is up"

"$top_srcdir/tests/helpers/pg-ctl.sh" stop >/dev/null
body=$(api GET /api/v1/namespaces)
expect_eq 503 "$(code)" "with the database down, an API call answers 503"
expect_eq UNAVAILABLE "$(jq -r .error.code <<<"$body")" "503 carries the UNAVAILABLE code"
hdrs=$(curl -s -D - -o /dev/null --unix-socket "$SOCK" http://localhost/api/v1/namespaces)
expect_match 'Retry-After: [0-9]+' "$hdrs" "503 carries Retry-After"
start=$(date +%s%N)
api GET /api/v1/namespaces >/dev/null
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$elapsed_ms" -lt 5000 ] && pass "the 503 comes without a long hang (${elapsed_ms} ms)" || fail "the 503 comes without a long hang (${elapsed_ms} ms)"
api GET /health/live >/dev/null
expect_eq 200 "$(code)" "liveness stays up"
api GET /health/ready >/dev/null
expect_eq 503 "$(code)" "readiness goes down"

"$top_srcdir/tests/helpers/pg-ctl.sh" start >/dev/null
ok=0
for i in $(seq 1 300); do
	api GET /api/v1/namespaces/before >/dev/null
	[ "$(code)" = 200 ] && { ok=1; break; }
	sleep 0.1
done
expect_eq 1 "$ok" "the daemon recovers by itself when the database is back"
api GET /health/ready >/dev/null
expect_eq 200 "$(code)" "readiness is back"
api POST /api/v1/namespaces -H 'Content-Type: application/json' -d '{"name":"after","environment":"prod"}' >/dev/null
expect_eq 201 "$(code)" "writes work again"
finish
