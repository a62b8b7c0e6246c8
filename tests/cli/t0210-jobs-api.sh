#!/bin/bash
# The queue over HTTP for platform admins: the retry backoff (queue.retry_base), list and
# filter jobs, show one, a failing job dead-lettered then retried, cancel, queue stats and
# pause/resume; changes are audited and refused to non-admins.
. "$top_srcdir/tests/helpers/lib.sh"

start_daemon --queue-retry-base 3s
enqueue() { # kind args max_attempts
	sql "WITH ins AS (INSERT INTO jobs (kind, args, max_attempts) VALUES ('$1', '$2'::jsonb, $3)
		RETURNING id, queue) SELECT id FROM ins, LATERAL pg_notify('shepherd_jobs', ins.queue)"
}
wait_job() { # id state
	for _ in $(seq 1 300); do
		[ "$(sql "SELECT state FROM jobs WHERE id = $1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# queue.retry_base: a first failure is retried after about twice the base (6 s +- 10 %)
retried=$(enqueue test.fail '{"times": 100}' 3)
wait_job "$retried" retryable && pass "a failed job with attempts left waits for its retry" ||
	fail "a failed job with attempts left waits for its retry"
expect_eq t "$(sql "SELECT scheduled_at - attempted_at >= interval '5.4 seconds' FROM jobs WHERE id = $retried")" \
	"its retry is after the configured backoff (--queue-retry-base 3s)"
api POST "/api/v1/jobs/$retried/cancel" >/dev/null

ok=$(enqueue test.noop '{}' 3)
wait_job "$ok" completed && pass "a queued job runs to completion" || fail "a queued job runs to completion"
bad=$(enqueue test.fail '{"times": 100}' 1)
wait_job "$bad" discarded && pass "a job that keeps failing is dead-lettered" || fail "a job that keeps failing is dead-lettered"

body=$(api GET "/api/v1/jobs?state=discarded")
expect_eq 200 "$(code)" "admins list jobs"
expect_eq "$bad" "$(jq '.items[0].id' <<<"$body")" "the state filter finds the dead-lettered job"
expect_eq null "$(jq '.next_cursor' <<<"$body")" "a short list has no next page"
body=$(api GET "/api/v1/jobs?kind=test.noop")
expect_eq "$ok" "$(jq '.items[0].id' <<<"$body")" "the kind filter works"
body=$(api GET "/api/v1/jobs?state=exploded")
expect_eq 400 "$(code)" "an unknown state is refused"

body=$(api GET "/api/v1/jobs/$bad")
expect_eq 1 "$(jq '.errors | length' <<<"$body")" "the job keeps its error history"
body=$(api GET "/api/v1/jobs/999999")
expect_eq 404 "$(code)" "a missing job is not found"

body=$(api POST "/api/v1/jobs/$bad/retry")
expect_eq 200 "$(code)" "retry revives a dead-lettered job"
expect_match '^(available|running|retryable|discarded)$' "$(jq -r .state <<<"$body")" "it is queued again"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'JOB_RETRY' AND resource_name = '$bad'")" "the retry is audited"

long=$(enqueue test.sleep '{"ms": 30000}' 1)
wait_job "$long" running && pass "a long job starts" || fail "a long job starts"
body=$(api POST "/api/v1/jobs/$long/cancel")
expect_eq 200 "$(code)" "cancel answers at once"
wait_job "$long" cancelled && pass "the running job stops and is cancelled" || fail "the running job stops and is cancelled"
body=$(api POST "/api/v1/jobs/$long/cancel")
expect_eq 200 "$(code)" "cancelling again is harmless"

body=$(api POST /api/v1/queues/default/pause)
expect_eq true "$(jq .paused <<<"$body")" "a queue can be paused"
held=$(enqueue test.noop '{}' 3)
sleep 1
expect_eq available "$(sql "SELECT state FROM jobs WHERE id = $held")" "a paused queue is not worked"
body=$(api GET /api/v1/queues)
expect_eq true "$(jq '.queues.default.paused' <<<"$body")" "stats show the pause"
api POST /api/v1/queues/default/resume >/dev/null
wait_job "$held" completed && pass "resuming the queue runs what waited" || fail "resuming the queue runs what waited"

# The same through the CLI.
wait_job "$bad" discarded
expect_exit 0 "shepherd jobs list --state discarded" shp jobs list --state discarded -o json
expect_eq "$bad" "$(jq '.[0].id' <<<"$OUT")" "the retried job failed again and is back among the dead letters"
expect_eq 2 "$(sql "SELECT attempt FROM jobs WHERE id = $bad")" "after one more attempt"
expect_exit 0 "shepherd jobs list (table)" shp jobs list --limit 3
expect_match '^ *ID +STATE +KIND' "$OUT" "the jobs table has a header"
expect_exit 0 "shepherd jobs show" shp jobs show "$ok" -o json
expect_eq completed "$(jq -r .state <<<"$OUT")" "show gives the job"
expect_exit 4 "shepherd jobs show of a missing job" shp jobs show 999999
expect_exit 7 "a bad state filter is refused by the CLI" shp jobs list --state exploded
failing=$(enqueue test.fail '{"times": 100}' 1)
wait_job "$failing" discarded
expect_exit 0 "shepherd jobs retry" shp jobs retry "$failing"
expect_match "queued again" "$OUT" "retry says what it did"
expect_exit 0 "shepherd queue pause" shp queue pause bulk
expect_exit 0 "shepherd queue stats" shp queue stats -o json
expect_eq true "$(jq -r '.[] | select(.name == "bulk") | .paused' <<<"$OUT")" "stats list the paused queue"
expect_exit 0 "shepherd queue resume" shp queue resume bulk

"$top_srcdir/tests/helpers/make-certs.sh" "$T/pki"
port=$((20000 + RANDOM % 20000))
stop_daemon
start_daemon --tls-listen "127.0.0.1:$port" --tls-cert "$T/pki/server.crt" --tls-key "$T/pki/server.key"
tok=$(api POST /api/v1/tokens -H 'Content-Type: application/json' -d '{"name":"t","user":"viewer"}' | jq -r .token)
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/pki/ca.crt" -H "Authorization: Bearer $tok" "https://127.0.0.1:$port/api/v1/jobs")
expect_eq 403 "$code" "a non-admin cannot list jobs"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/pki/ca.crt" -X POST -H "Authorization: Bearer $tok" "https://127.0.0.1:$port/api/v1/jobs/$bad/retry")
expect_eq 403 "$code" "nor retry one"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'JOB_RETRY' AND outcome = 'denied'")" "the refusal is audited"
finish
