#!/bin/bash
# Two daemons started at the same moment on one empty database: the migrations run once under
# the advisory lock, both daemons serve, they share the state, and together they process 5,000
# jobs with none lost, none run twice and none held by both at once.
. "$top_srcdir/tests/helpers/lib.sh"

SOCK2="$T/second.sock"
"$SHEPHERDD" --database-url "$SHP_TEST_PGURL" --state-dir "$T/s1" --socket "$SOCK" >>"$T/daemon.log" 2>&1 &
p1=$!
"$SHEPHERDD" --database-url "$SHP_TEST_PGURL" --state-dir "$T/s2" --socket "$SOCK2" >>"$T/daemon2.log" 2>&1 &
p2=$!
DAEMON_PID=$p1
wait_ready "$SOCK" && pass "the first daemon becomes ready" || fail "the first daemon becomes ready" "$(cat "$T/daemon.log")"
DAEMON_PID=$p2
wait_ready "$SOCK2" && pass "the second daemon becomes ready" || fail "the second daemon becomes ready" "$(cat "$T/daemon2.log")"

expect_eq "$(ls "$top_srcdir"/schema/*.up.sql | wc -l)" "$(sql "SELECT count(*) FROM shepherd_schema_migrations")" \
	"each migration is recorded exactly once"
applied=$(grep -h "applied [0-9]* migration" "$T/daemon.log" "$T/daemon2.log" | wc -l)
expect_eq 1 "$applied" "exactly one daemon applied the migrations"

api POST /api/v1/namespaces -H 'Content-Type: application/json' -d '{"name":"shared","environment":"test"}' >/dev/null
expect_eq 201 "$(code)" "the first daemon creates a namespace"
body=$(curl -s --unix-socket "$SOCK2" http://localhost/api/v1/namespaces/shared)
expect_eq test "$(jq -r .environment <<<"$body")" "the second daemon sees it"

sql "WITH ins AS (INSERT INTO jobs (kind, args, max_attempts)
	SELECT 'test.effect', jsonb_build_object('key', 'two-' || g), 5 FROM generate_series(1, 5000) g
	RETURNING queue) SELECT count(pg_notify('shepherd_jobs', q)) FROM (SELECT DISTINCT queue AS q FROM ins) s" >/dev/null
for _ in $(seq 1 600); do
	[ "$(sql "SELECT count(*) FROM jobs WHERE kind = 'test.effect' AND state = 'completed'")" = 5000 ] && break
	sleep 0.1
done
expect_eq 5000 "$(sql "SELECT count(*) FROM jobs WHERE kind = 'test.effect' AND state = 'completed'")" "the two daemons complete 5,000 jobs"
expect_eq 5000 "$(sql "SELECT count(*) FROM test_effects WHERE key LIKE 'two-%'")" "none is lost"
expect_eq 0 "$(sql "SELECT count(*) FROM test_effects WHERE key LIKE 'two-%' AND runs <> 1")" "none runs twice"
expect_eq 0 "$(sql "SELECT coalesce(sum(overlapped), 0) FROM test_effects WHERE key LIKE 'two-%'")" "none is held by both at once"
expect_eq 2 "$(sql "SELECT count(DISTINCT split_part(attempted_by[1], '/', 2)) FROM jobs WHERE kind = 'test.effect'")" "both daemons took jobs"

kill -TERM "$p2"; wait "$p2"
expect_eq 0 $? "the second daemon stops cleanly"
DAEMON_PID=$p1
finish
