#!/bin/bash
# Executions survive the daemon: killed with SIGKILL in the middle of 40 queued executions, a
# restarted daemon rescues the expired leases and every execution ends succeeded with its
# effect exactly once and its locks released; stopped gracefully in the middle of a plan, the
# execution resumes after the restart at the step that did not finish.
. "$top_srcdir/tests/helpers/lib.sh"

wait_sql() { # SQL WANT SECONDS
	local i=0
	while [ $i -lt $(($3 * 10)) ]; do
		[ "$(sql "$1")" = "$2" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
submit() { api POST /api/v1/tasks -H 'Content-Type: application/json' -d "$1"; }

start_daemon --queue-workers 4
for i in $(seq 1 40); do
	submit "{\"tenant\":\"team-a\",\"confirm\":true,\"sla_class\":\"long\",\"plan\":{\"steps\":[{\"action\":\"test.effect\",\"targets\":[\"vm-$i\"],\"params\":{\"key\":\"k-$i\",\"ms\":300}}]}}" >/dev/null
	[ "$(code)" = 202 ] || fail "submission $i is queued" "$(code) $(cat "$T/body")"
done
wait_sql "SELECT count(*) >= 4 FROM executions WHERE status = 'succeeded'" t 30
running=$(sql "SELECT count(*) FROM executions WHERE status = 'running'")
kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
done_before=$(sql "SELECT count(*) FROM executions WHERE status = 'succeeded'")
note "killed the daemon with $done_before execution(s) succeeded and $running running"
[ "$done_before" -lt 40 ] && pass "the daemon was killed in the middle of the work" ||
	fail "the daemon was killed in the middle of the work" "succeeded $done_before"

rm -f "$SOCK"
start_daemon --queue-workers 4 --queue-shutdown-grace 0s
# the leases of the killed daemon's jobs expire first (long: 60 s + 5 s; a shorter class's
# lease outlasts its own execution timeout, so its executions would rightly time out)
if wait_sql "SELECT count(*) FROM executions WHERE status = 'succeeded'" 40 120; then
	pass "after the restart every execution succeeded"
else
	fail "after the restart every execution succeeded" "$(sql "SELECT status, count(*) FROM executions GROUP BY 1")"
fi
expect_eq 40 "$(sql "SELECT count(*) FROM test_effects WHERE key LIKE 'k-%'")" "every effect happened"
expect_eq 0 "$(sql "SELECT count(*) FROM test_effects WHERE key LIKE 'k-%' AND overlapped > 0")" "no two runners ever held one execution at once"
expect_eq 0 "$(sql "SELECT count(*) FROM execution_locks")" "every lock was released"
expect_eq 0 "$(sql "SELECT count(*) FROM executions WHERE status <> 'succeeded'")" "none was lost or failed"

# graceful stop (no grace) in the middle of a plan: the running step is given up and redone;
# the steps that finished are not
submit '{"tenant":"team-a","confirm":true,"plan":{"steps":[{"action":"test.effect","targets":["g"],"params":{"key":"g-1","ms":100}},{"action":"test.effect","targets":["g"],"params":{"key":"g-2","ms":4000}},{"action":"test.effect","targets":["g"],"params":{"key":"g-3"}}]}}' >/dev/null
g=$(jq .id "$T/body")
wait_sql "SELECT status FROM execution_steps WHERE execution_id = $g AND step_index = 1" running 30
stop_daemon
expect_eq running "$(sql "SELECT status FROM executions WHERE id = $g")" "a stopped daemon leaves the execution running"
expect_eq available "$(sql "SELECT state FROM jobs WHERE id = (SELECT job_id FROM executions WHERE id = $g)")" "and its job requeued"
rm -f "$SOCK"
start_daemon --queue-workers 4
if wait_sql "SELECT status FROM executions WHERE id = $g" succeeded 60; then
	pass "after the restart the execution finishes"
else
	fail "after the restart the execution finishes" "$(sql "SELECT status, error FROM executions WHERE id = $g")"
fi
expect_eq "1 2 1" "$(sql "SELECT string_agg(attempts::text, ' ' ORDER BY step_index) FROM execution_steps WHERE execution_id = $g")" "only the interrupted step ran again"
expect_eq 1 "$(sql "SELECT runs FROM test_effects WHERE key = 'g-1'")" "the finished step's effect is not repeated"
finish
