#!/bin/bash
# The job queue survives a daemon killed with SIGKILL in the middle of its work and a database
# restart under load: every job ends completed, nothing is lost, and every test.effect key has
# exactly one effect (re-runs after the crash are counted, and never double the effect).
. "$top_srcdir/tests/helpers/lib.sh"

# Jobs are enqueued the way shd_job_insert does it: a row in jobs, then NOTIFY shepherd_jobs
# with the queue's name, which is delivered when the transaction commits.
enqueue_effects() { # PREFIX COUNT HOLD_MS
	sql "WITH ins AS (INSERT INTO jobs (kind, args, max_attempts)
		SELECT 'test.effect', jsonb_build_object('key', '$1' || g, 'hold_ms', $3), 5
		FROM generate_series(1, $2) g RETURNING queue)
		SELECT count(pg_notify('shepherd_jobs', q)) FROM (SELECT DISTINCT queue AS q FROM ins) s" >/dev/null
}

count() { sql "$1"; }

# wait_sql SQL WANT SECONDS: poll until the query answers WANT
wait_sql() {
	local i=0
	while [ $i -lt $(($3 * 10)) ]; do
		[ "$(count "$1")" = "$2" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

start_daemon --queue-workers 4
enqueue_effects crash- 200 40
wait_sql "SELECT count(*) >= 20 FROM jobs WHERE kind = 'test.effect' AND state = 'completed'" t 30
running=$(count "SELECT count(*) FROM jobs WHERE kind = 'test.effect' AND state = 'running'")
done_before=$(count "SELECT count(*) FROM jobs WHERE kind = 'test.effect' AND state = 'completed'")
kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
note "killed the daemon with $done_before job(s) completed and $running running"
[ "$done_before" -lt 200 ] && [ "$running" -gt 0 ] && pass "the daemon was killed in the middle of the work" ||
	fail "the daemon was killed in the middle of the work" "completed $done_before, running $running"

rm -f "$SOCK"
t0=$(date +%s)
start_daemon --queue-workers 4
# the dead daemon's leadership and leases must expire first (about 5 and 7 s)
if wait_sql "SELECT count(*) FROM jobs WHERE kind = 'test.effect' AND state = 'completed'" 200 90; then
	pass "after the restart every job completed ($(($(date +%s) - t0)) s)"
else
	fail "after the restart every job completed" "$(sql "SELECT state, count(*) FROM jobs WHERE kind = 'test.effect' GROUP BY 1")"
fi
expect_eq 200 "$(count "SELECT count(*) FROM jobs WHERE kind = 'test.effect'")" "no job was lost"
expect_eq 200 "$(count "SELECT count(*) FROM test_effects WHERE key LIKE 'crash-%'")" "every key has its effect"
expect_eq 0 "$(count "SELECT count(*) FROM (SELECT key FROM test_effects GROUP BY key HAVING count(*) > 1) d")" \
	"no key has two effects"
rescued=$(count "SELECT count(*) FROM jobs WHERE kind = 'test.effect' AND rescues > 0")
[ "$rescued" -gt 0 ] && pass "the jobs the dead daemon held were rescued ($rescued)" ||
	fail "the jobs the dead daemon held were rescued"
note "re-runs after the crash: $(count "SELECT coalesce(sum(runs - 1), 0) FROM test_effects")"
expect_match 'rescued job [0-9]+' "$(cat "$T/daemon.log")" "each rescue is logged"
expect_eq 0 "$(count "SELECT coalesce(sum(overlapped), 0) FROM test_effects")" \
	"no job was held by two workers at once"

# The database restarts under load; the daemon reconnects by itself.
enqueue_effects restart- 200 20
wait_sql "SELECT count(*) >= 220 FROM jobs WHERE kind = 'test.effect' AND state = 'completed'" t 30
"$top_srcdir/tests/helpers/pg-ctl.sh" restart 1 >/dev/null
t0=$(date +%s)
if wait_sql "SELECT count(*) FROM jobs WHERE kind = 'test.effect' AND state = 'completed'" 400 90; then
	pass "after the database restart every job completed ($(($(date +%s) - t0)) s)"
else
	fail "after the database restart every job completed" "$(sql "SELECT state, count(*) FROM jobs WHERE kind = 'test.effect' GROUP BY 1")"
fi
expect_eq 400 "$(count "SELECT count(*) FROM jobs WHERE kind = 'test.effect'")" "no job was lost in the database restart"
expect_eq 200 "$(count "SELECT count(*) FROM test_effects WHERE key LIKE 'restart-%'")" \
	"every key of the second batch has its effect"
api GET /health/ready >/dev/null
expect_eq 200 "$(code)" "the daemon is ready again"
finish
