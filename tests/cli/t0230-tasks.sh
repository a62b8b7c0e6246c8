#!/bin/bash
# The execution engine through the real daemon: the immediate and background paths, duplicate
# submissions (and tenant isolation), plan-hash stability, the per-asset mutex (fail fast and
# wait), cancellation mid-run, SLA timeouts, retries into the dead-letter queue, worker-side
# RBAC, approval invalidation, the record-only flag, progress by polling and by SSE, metrics,
# and hostile input.
. "$top_srcdir/tests/helpers/lib.sh"

"$top_srcdir/tests/helpers/make-certs.sh" "$T/pki" >/dev/null
port=$((20000 + RANDOM % 20000))
start_daemon --tls-listen "127.0.0.1:$port" --tls-cert "$T/pki/server.crt" \
	--tls-key "$T/pki/server.key"
URL="https://127.0.0.1:$port"
tls() { # tls TOKEN METHOD PATH [curl args]
	local tok=$1 method=$2 path=$3
	shift 3
	curl -s -o "$T/body" -w '%{http_code}' -X "$method" --cacert "$T/pki/ca.crt" \
		-H "Authorization: Bearer $tok" "$URL$path" "$@" >"$T/code"
	cat "$T/body"
}
submit() { api POST /api/v1/tasks -H 'Content-Type: application/json' -d "$1"; }
wait_status() { # id status [tries of 0.1 s]
	for _ in $(seq 1 "${3:-300}"); do
		[ "$(sql "SELECT status FROM executions WHERE id = $1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# ---- immediate path
body=$(submit '{"tenant":"team-a","plan":{"steps":[{"action":"test.noop","targets":["vm-1"]}]}}')
expect_eq 200 "$(code)" "a short read-only plan runs inline (200)"
expect_eq succeeded "$(jq -r .status <<<"$body")" "and has succeeded when the answer comes"
expect_eq immediate "$(jq -r .mode <<<"$body")" "its mode is recorded as immediate"
expect_match '^read-only, estimated' "$(jq -r .mode_reason <<<"$body")" "with the reason for it"
expect_match '^[0-9a-f]{64}$' "$(jq -r .plan_hash <<<"$body")" "the plan hash is recorded"
expect_eq succeeded "$(jq -r '.steps[0].status' <<<"$body")" "its step succeeded"
expect_eq medium_read "$(jq -r .timeout_policy_id <<<"$body")" "the medium read policy applies by default"
expect_eq 0 "$(sql "SELECT count(*) FROM execution_locks")" "its lock is released"
imm=$(jq .id <<<"$body")

# ---- duplicates: same plan, same tenant and actor -> the same execution; targets reordered too
body=$(submit '{"tenant":"team-a","plan":{"steps":[{"action":"test.noop","targets":["vm-1"]}]}}')
expect_eq "$imm" "$(jq .id <<<"$body")" "a duplicate submission returns the same execution"
expect_eq true "$(jq .duplicate <<<"$body")" "and says it is a duplicate"
two='{"tenant":"team-a","plan":{"steps":[{"action":"test.noop","targets":["b","a"]}]}}'
h1=$(submit "$two" | jq -r .plan_hash)
body=$(submit '{"tenant":"team-a","plan":{"steps":[{"action":"test.noop","targets":["a","b"]}]}}')
expect_eq "$h1" "$(jq -r .plan_hash <<<"$body")" "reordered targets give the same plan hash"
expect_eq true "$(jq .duplicate <<<"$body")" "and the same execution"
body=$(submit '{"tenant":"team-b","plan":{"steps":[{"action":"test.noop","targets":["vm-1"]}]}}')
expect_eq false "$(jq .duplicate <<<"$body")" "the same plan for another tenant is another execution"

# ---- background path with confirmation
body=$(submit '{"tenant":"team-a","plan":{"steps":[{"action":"test.effect","targets":["vm-2"],"params":{"key":"bg-1"}}]}}')
expect_eq 403 "$(code)" "a modifying plan needs confirmation"
expect_eq CONFIRMATION_REQUIRED "$(jq -r .error.code <<<"$body")" "with its own error code"
body=$(submit '{"tenant":"team-a","confirm":true,"plan":{"steps":[{"action":"test.effect","targets":["vm-2"],"params":{"key":"bg-1"}}]}}')
expect_eq 202 "$(code)" "a modifying plan is queued (202)"
bg=$(jq .id <<<"$body")
expect_eq "/api/v1/tasks/$bg" "$(jq -r .status_url <<<"$body")" "with a status URL"
expect_eq background "$(jq -r .mode <<<"$body")" "its mode is background"
expect_eq 1 "$(jq .approval_level <<<"$body")" "at approval level 1"
wait_status "$bg" succeeded && pass "the worker runs it to success" || fail "the worker runs it to success" "$(sql "SELECT status, error FROM executions WHERE id = $bg")"
expect_eq 1 "$(sql "SELECT runs FROM test_effects WHERE key = 'bg-1'")" "its effect happened once"

# ---- progress by polling and by SSE
body=$(api GET "/api/v1/tasks/$bg/events?after=0")
expect_eq 200 "$(code)" "events can be polled"
expect_eq true "$(jq .done <<<"$body")" "a finished task's events are done"
expect_match step_started "$(jq -r '[.items[].type] | join(",")' <<<"$body")" "steps report their start"
last=$(jq .last_event_id <<<"$body")
second=$(jq '.items[1].id' <<<"$body")
curl -s -N --max-time 10 --unix-socket "$SOCK" "http://localhost/api/v1/tasks/$bg/stream" >"$T/sse" || true
expect_match "^id: $last\$" "$(cat "$T/sse")" "the stream carries every event with its id"
expect_match '^event: end$' "$(cat "$T/sse")" "and ends with the end event"
curl -s -N --max-time 10 --unix-socket "$SOCK" -H "Last-Event-ID: $second" "http://localhost/api/v1/tasks/$bg/stream" >"$T/sse2" || true
expect_eq "$(($(grep -c '^id: ' "$T/sse") - 2))" "$(grep -c '^id: ' "$T/sse2")" "Last-Event-ID resumes after the event it names"

# ---- mutex: fail fast, then wait
body=$(submit '{"tenant":"team-a","confirm":true,"plan":{"steps":[{"action":"test.effect","targets":["vm-3"],"params":{"key":"m-1","ms":6000}}]}}')
held=$(jq .id <<<"$body")
# its locks are taken when a worker starts it: the others come once it runs
wait_status "$held" running || fail "the holder starts" "$(sql "SELECT status FROM executions WHERE id = $held")"
body=$(submit '{"tenant":"team-a","confirm":true,"plan":{"steps":[{"action":"test.effect","targets":["vm-3"],"params":{"key":"m-2"}}]}}')
expect_eq 409 "$(code)" "a second execution on a busy target fails fast (409)"
expect_eq RESOURCE_BUSY "$(jq -r .error.code <<<"$body")" "with RESOURCE_BUSY"
expect_match "lock:v1:team-a:vm-3:test.effect" "$(jq -r .error.message <<<"$body")" "naming the lock"
body=$(submit '{"tenant":"team-a","confirm":true,"on_busy":"wait","plan":{"steps":[{"action":"test.effect","targets":["vm-3"],"params":{"key":"m-3"}}]}}')
expect_eq 202 "$(code)" "asked to wait, it is queued"
waiter=$(jq .id <<<"$body")
wait_status "$waiter" succeeded 200 && pass "and runs once the lock is free" || fail "and runs once the lock is free" "$(sql "SELECT status, error FROM executions WHERE id = $waiter")"
expect_eq succeeded "$(sql "SELECT status FROM executions WHERE id = $held")" "after the holder finished"
expect_eq t "$(sql "SELECT (SELECT ended_at FROM executions WHERE id = $held) <= (SELECT started_at FROM executions WHERE id = $waiter)")" "never at the same time"
expect_eq 1 "$(sql "SELECT count(*) FROM execution_events WHERE execution_id = $waiter AND type = 'lock_busy'")" "the wait is recorded once"

# ---- cancellation mid-run
steps=$(for i in 1 2 3 4 5 6; do printf '{"action":"test.effect","targets":["c-%d"],"params":{"key":"c-%d","ms":400}},' "$i" "$i"; done)
body=$(submit "{\"tenant\":\"team-a\",\"confirm\":true,\"plan\":{\"steps\":[${steps%,}]}}")
cx=$(jq .id <<<"$body")
for _ in $(seq 1 300); do
	[ "$(sql "SELECT count(*) FROM execution_steps WHERE execution_id = $cx AND status = 'succeeded'")" -ge 1 ] && break
	sleep 0.1
done
body=$(api POST "/api/v1/tasks/$cx/cancel" -H 'Content-Type: application/json' -d '{"reason":"changed my mind"}')
expect_eq 200 "$(code)" "a running task can be cancelled"
body=$(api POST "/api/v1/tasks/$cx/cancel")
expect_eq 200 "$(code)" "cancelling again is harmless"
wait_status "$cx" cancelled && pass "it stops as cancelled" || fail "it stops as cancelled" "$(sql "SELECT status, error FROM executions WHERE id = $cx")"
expect_eq t "$(sql "SELECT cancelled_by IS NOT NULL AND cancelled_at IS NOT NULL FROM executions WHERE id = $cx")" "cancelled_by and cancelled_at are set together"
expect_match '^[1-9]' "$(sql "SELECT count(*) FROM execution_steps WHERE execution_id = $cx AND status = 'skipped'")" "the remaining steps are skipped"
expect_eq 0 "$(sql "SELECT count(*) FROM execution_steps WHERE execution_id = $cx AND status = 'running'")" "no step is left running"
expect_eq 0 "$(sql "SELECT count(*) FROM execution_locks WHERE owner = 'exec:$cx'")" "its locks are released"
expect_match '^[1-9]' "$(sql "SELECT cancel_checks_performed FROM executions WHERE id = $cx")" "cancel checks are counted"

# ---- timeout (fast read: 5 s per step)
body=$(submit '{"tenant":"team-a","sla_class":"fast","plan":{"steps":[{"action":"test.sleep","targets":["t-1"],"params":{"ms":8000}}]}}')
expect_eq failed "$(jq -r .status <<<"$body")" "a step over its SLA fails"
expect_eq true "$(jq .timed_out <<<"$body")" "timed_out is set"
expect_eq fast_read "$(jq -r .timeout_policy_id <<<"$body")" "with the policy that applied"
expect_eq TIMEOUT "$(jq -r .error_code <<<"$body")" "and the error class"

# ---- retries and the dead-letter queue (long: 3 attempts, and 10 min for the ~6 s of retry
# backoff: under a sanitizer the fast class's 10 s ran out first, a timeout, not a dead letter)
body=$(submit '{"tenant":"team-a","confirm":true,"sla_class":"long","plan":{"steps":[{"action":"test.fail","targets":["d-1"],"params":{"times":100}},{"action":"test.effect","targets":["d-1"],"params":{"key":"d-1"}}]}}')
dl=$(jq .id <<<"$body")
wait_status "$dl" failed 300 && pass "a step that keeps failing fails the execution after its attempts" || fail "a step that keeps failing fails the execution after its attempts" "$(sql "SELECT status, attempts, error FROM executions WHERE id = $dl")"
expect_eq "3 false" "$(sql "SELECT attempts || ' ' || timed_out FROM executions WHERE id = $dl")" \
	"after three attempts (not its timeout)"
# the job is discarded when its worker's outcome is written, just after the execution's end
in_dlq() { [ "$(sql "SELECT count(*) FROM execution_dlq WHERE execution_id = $dl")" = 1 ]; }
wait_for 30 in_dlq && pass "its job is in the dead-letter view" ||
	fail "its job is in the dead-letter view" "$(sql "SELECT id, state FROM jobs WHERE args->>'execution_id' = '$dl'")"
expect_eq 0 "$(sql "SELECT count(*) FROM test_effects WHERE key = 'd-1'")" "later steps never ran"
body=$(submit '{"tenant":"team-a","confirm":true,"plan":{"steps":[{"action":"test.fail","targets":["r-1"],"params":{"times":1}},{"action":"test.effect","targets":["r-1"],"params":{"key":"r-1"}}]}}')
rt=$(jq .id <<<"$body")
wait_status "$rt" succeeded 300 && pass "a transient failure is retried to success" || fail "a transient failure is retried to success"
expect_eq 2 "$(sql "SELECT attempts FROM execution_steps WHERE execution_id = $rt AND step_index = 0")" "the failed step ran twice"
expect_eq 1 "$(sql "SELECT attempts FROM execution_steps WHERE execution_id = $rt AND step_index = 1")" "the next step once"

# ---- worker-side RBAC and tenant isolation at the API
tok=$(api POST /api/v1/tokens -H 'Content-Type: application/json' -d '{"name":"carol","user":"carol"}' | jq -r .token)
body=$(tls "$tok" POST /api/v1/tasks -H 'Content-Type: application/json' -d '{"tenant":"team-a","plan":{"steps":[{"action":"test.noop","targets":[]}]}}')
expect_eq 403 "$(code)" "a non-member cannot run plans for a tenant"
body=$(api PUT /api/v1/tenants/team-a/members/carol -H 'Content-Type: application/json' -d '{"role":"viewer"}')
expect_eq 200 "$(code)" "an admin adds a tenant member"
body=$(tls "$tok" POST /api/v1/tasks -H 'Content-Type: application/json' -d '{"tenant":"team-a","confirm":true,"plan":{"steps":[{"action":"test.effect","targets":["x"],"params":{"key":"v-1"}}]}}')
expect_eq 403 "$(code)" "a viewer cannot run a modifying plan"
body=$(tls "$tok" PUT /api/v1/tenants/team-a/members/carol -H 'Content-Type: application/json' -d '{"role":"owner"}')
expect_eq 403 "$(code)" "a viewer cannot make themselves owner"
body=$(tls "$tok" PUT /api/v1/execution/flags/global -H 'Content-Type: application/json' -d '{"enabled":false}')
expect_eq 403 "$(code)" "a non-admin cannot switch the execution path"
api PUT /api/v1/tenants/team-a/members/carol -H 'Content-Type: application/json' -d '{"role":"member"}' >/dev/null
api POST /api/v1/queues/executions/pause >/dev/null
body=$(tls "$tok" POST /api/v1/tasks -H 'Content-Type: application/json' -d '{"tenant":"team-a","confirm":true,"plan":{"steps":[{"action":"test.effect","targets":["x"],"params":{"key":"rb-1"}}]}}')
expect_eq 202 "$(code)" "a member submits a modifying plan"
rb=$(jq .id <<<"$body")
body=$(tls "$tok" GET "/api/v1/tasks/$bg")
expect_eq 200 "$(code)" "a member sees the tenant's tasks"
body=$(tls "$tok" GET "/api/v1/tasks?tenant=team-b")
expect_eq 0 "$(jq '.items | length' <<<"$body")" "but not another tenant's"
api DELETE /api/v1/tenants/team-a/members/carol >/dev/null
expect_eq 204 "$(code)" "the membership is revoked while the job waits"
api POST /api/v1/queues/executions/resume >/dev/null
wait_status "$rb" rejected && pass "the worker refuses the execution" || fail "the worker refuses the execution" "$(sql "SELECT status, error FROM executions WHERE id = $rb")"
expect_eq RBAC_VIOLATION "$(sql "SELECT error_code FROM executions WHERE id = $rb")" "as an RBAC violation"
expect_eq 1 "$(sql "SELECT count(*) FROM execution_events WHERE execution_id = $rb AND type = 'rbac_violation'")" "an rbac_violation event is written"
expect_eq 0 "$(sql "SELECT count(*) FROM test_effects WHERE key = 'rb-1'")" "nothing ran"

# ---- approval bound to the plan hash
api POST /api/v1/queues/executions/pause >/dev/null
body=$(submit '{"tenant":"team-a","confirm":true,"plan":{"steps":[{"action":"test.effect","targets":["ap"],"params":{"key":"ap-1"}}]}}')
ap=$(jq .id <<<"$body")
sql "UPDATE executions SET plan_snapshot = jsonb_set(plan_snapshot, '{steps,0,params,key}', '\"ap-2\"') WHERE id = $ap" >/dev/null
api POST /api/v1/queues/executions/resume >/dev/null
wait_status "$ap" rejected && pass "a plan changed after approval is refused" || fail "a plan changed after approval is refused"
expect_eq invalidated "$(sql "SELECT approval_state FROM executions WHERE id = $ap")" "its approval is invalidated"
expect_eq 0 "$(sql "SELECT count(*) FROM test_effects WHERE key LIKE 'ap-%'")" "nothing ran"

# ---- record-only mode per tenant
body=$(api PUT /api/v1/execution/flags/tenant:team-r -H 'Content-Type: application/json' -d '{"enabled":false}')
expect_eq 200 "$(code)" "an admin switches a tenant to record-only"
body=$(submit '{"tenant":"team-r","confirm":true,"plan":{"steps":[{"action":"test.effect","targets":["r"],"params":{"key":"ro-1"}}]}}')
ro=$(jq .id <<<"$body")
expect_eq true "$(jq .record_only <<<"$body")" "its executions are record-only"
wait_status "$ro" succeeded && pass "and are recorded to the end" || fail "and are recorded to the end"
expect_eq skipped "$(sql "SELECT status FROM execution_steps WHERE execution_id = $ro")" "with the automation skipped"
expect_eq 0 "$(sql "SELECT count(*) FROM test_effects WHERE key = 'ro-1'")" "so nothing happened"
api DELETE /api/v1/execution/flags/tenant:team-r >/dev/null
expect_eq 204 "$(code)" "the flag can be removed"
body=$(api PUT /api/v1/execution/flags/tenant:Bad_Name -H 'Content-Type: application/json' -d '{"enabled":false}')
expect_eq 400 "$(code)" "a malformed scope is refused"

# ---- hostile input
body=$(submit '{"tenant":"team-a","plan":{"steps":[{"action":"rm -rf","targets":[]}]}}')
expect_eq 400 "$(code)" "an unknown action is refused"
expect_match "step 0: unknown action" "$(jq -r .error.message <<<"$body")" "naming the step"
body=$(submit '{"tenant":"../etc","plan":{"steps":[{"action":"test.noop"}]}}')
expect_eq 400 "$(code)" "a hostile tenant name is refused"
body=$(submit '{"tenant":"team-a","plan":{"steps":[]}}')
expect_eq 400 "$(code)" "an empty plan is refused"
body=$(submit '{"tenant":"team-a","plan":"rm"}')
expect_eq 400 "$(code)" "a plan of the wrong type is refused"
body=$(submit '{"tenant":"team-a","plan":{"steps":[{"action":"test.noop"}]},"sudo":true}')
expect_eq 400 "$(code)" "an unknown field is refused"
body=$(submit '{"tenant":"team-a","sla_class":7,"plan":{"steps":[{"action":"test.noop"}]}}')
expect_eq 400 "$(code)" "a wrongly typed field is refused"
body=$(submit '{"tenant":"team-a","plan":{"steps":[{"action":"test.noop"}')
expect_eq 400 "$(code)" "malformed JSON is refused"
big=$(printf '{"action":"test.noop","targets":["t%d"]},' $(seq 1 1001))
submit "{\"tenant\":\"team-a\",\"plan\":{\"steps\":[${big%,}]}}" >/dev/null
expect_eq 400 "$(code)" "a plan over the step limit is refused"
api GET /api/v1/tasks/99999 >/dev/null
expect_eq 404 "$(code)" "an unknown task is 404"
api GET "/api/v1/tasks/$bg/events?after=x" >/dev/null
expect_eq 400 "$(code)" "a malformed event cursor is refused"

# ---- lists and metrics
body=$(api GET "/api/v1/tasks?status=succeeded&limit=2")
expect_eq 2 "$(jq '.items | length' <<<"$body")" "tasks list with a status filter and a limit"
expect_match . "$(jq -r .next_cursor <<<"$body")" "and a cursor to the next page"
metrics=$(curl -s --unix-socket "$SOCK" http://localhost/metrics)
expect_match 'shepherd_executions_finished_total\{status="succeeded",sla_class="medium"\} [1-9]' "$metrics" "finished executions are counted"
expect_match 'shepherd_execution_duration_seconds_bucket\{action="test.effect",sla_class="medium",le="\+Inf"\}' "$metrics" "durations by action and SLA class"
expect_match 'shepherd_executions_timed_out_total\{sla_class="fast"\} 1' "$metrics" "timeouts are counted"
expect_match 'shepherd_executions_user_cancelled_total\{sla_class="medium"\} 1' "$metrics" "user cancellations apart"
expect_match 'shepherd_rbac_violations_total 1' "$metrics" "rbac violations are counted"
expect_match 'shepherd_jobs\{state="discarded"\} [1-9]' "$metrics" "the dead-letter queue size"
expect_match 'execution_finished.*exec_id' "$(cat "$T/daemon.log")" "every finished execution is logged with its fields"

finish
