#!/bin/bash
# Two daemons started at the same moment on one empty database: the migrations run once under
# the advisory lock, both daemons serve, and they share the state.
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

kill -TERM "$p2"; wait "$p2"
expect_eq 0 $? "the second daemon stops cleanly"
DAEMON_PID=$p1
finish
