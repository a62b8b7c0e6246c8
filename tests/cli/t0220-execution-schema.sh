#!/bin/bash
# The execution engine's schema, checked the way the release checklist checks it: the tables,
# enums and timeout policies exist, the tenant-scoped idempotency index is unique, and the
# CHECK constraints refuse what they must (cancellation pairs, result size, timing, timeout).
. "$top_srcdir/tests/helpers/lib.sh"

"$SHEPHERDD" --database-url "$SHP_TEST_PGURL" --state-dir "$T/state" migrate up >/dev/null ||
	{ fail "migrations apply"; finish; }

expect_eq 8 "$(sql "SELECT count(*) FROM information_schema.tables WHERE table_name IN
	('executions', 'execution_steps', 'execution_events', 'execution_locks', 'timeout_policies',
	 'execution_dlq', 'jobs', 'domain_events')")" "the tables and the dead-letter view exist"
expect_eq 4 "$(sql "SELECT count(*) FROM pg_type WHERE typname IN
	('execution_status', 'execution_mode', 'sla_class', 'approval_state')")" "the four enums exist"
expect_eq 9 "$(sql "SELECT count(*) FROM timeout_policies")" "a timeout policy for every SLA class and action class"
expect_eq "10000 5000" "$(sql "SELECT execution_timeout_ms || ' ' || step_timeout_ms FROM timeout_policies WHERE id = 'fast_read'")" "fast reads: 10 s, steps 5 s"
expect_eq 600000 "$(sql "SELECT execution_timeout_ms FROM timeout_policies WHERE id = 'long_deploy'")" "long operations: 10 min"
expect_eq 1 "$(sql "SELECT count(*) FROM pg_indexes WHERE tablename = 'executions' AND indexname = 'ux_exec_tenant_idem' AND indexdef LIKE 'CREATE UNIQUE%'")" "ux_exec_tenant_idem is unique"
expect_eq 4 "$(sql "SELECT count(*) FROM pg_constraint WHERE conrelid = 'executions'::regclass AND conname IN
	('valid_cancellation', 'valid_result_size', 'valid_timing', 'valid_timeout')")" "the four CHECK constraints exist"
expect_eq 7 "$(sql "SELECT count(*) FROM information_schema.columns WHERE table_name = 'executions' AND column_name IN
	('worker_id', 'lease_renewals', 'cancel_checks_performed', 'last_transition_at', 'last_transition_by',
	 'last_transition_from', 'timeout_policy_id')")" "the observability columns exist"
expect_eq 0 "$(sql "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND data_type = 'timestamp without time zone'")" "timestamptz everywhere"

plan='{"steps":[{"action":"test.noop","targets":["a"],"params":{}}]}'
hash=$(printf '%064d' 0 | tr 0 a)
ins() { # tenant key extra-columns extra-values
	psql -X -q -A -t "$SHP_TEST_PGURL" -c "INSERT INTO executions (tenant_id, actor, idempotency_key, plan_snapshot,
		plan_hash, mode, sla_class, timeout_ms${3:-}) VALUES ('$1', 'alice', '$2', '$plan', '$hash', 'background',
		'fast', 10000${4:-})" 2>&1
}
expect_eq "" "$(ins sys-a k1)" "an execution is recorded"
expect_match 'ux_exec_tenant_idem' "$(ins sys-a k1)" "the same key in the same tenant is refused"
expect_eq "" "$(ins sys-b k1)" "the same key in another tenant is a different execution"
expect_match 'valid_cancellation' "$(ins sys-a k2 ', cancelled_by' ", 'bob'")" "cancelled_by without cancelled_at is refused"
expect_eq "" "$(ins sys-a k3 ', cancelled_by, cancelled_at' ", 'bob', now()")" "both together are accepted"
big=$(head -c 11000 /dev/zero | tr '\0' x)
expect_match 'valid_result_size' "$(ins sys-a k4 ', result_summary' ", '{\"s\":\"$big\"}'")" "a result over 10 KB is refused"
expect_match 'valid_timing' "$(ins sys-a k5 ', started_at' ", now() - interval '1 hour'")" "starting before creation is refused"
expect_match 'valid_timing' "$(ins sys-a k6 ', started_at, ended_at' ", now(), now() - interval '1 minute'")" "ending before starting is refused"
expect_match 'valid_timeout' "$(psql -X -q "$SHP_TEST_PGURL" -c "INSERT INTO executions (tenant_id, actor,
	idempotency_key, plan_snapshot, plan_hash, mode, sla_class, timeout_ms) VALUES ('sys-a', 'alice', 'k7',
	'$plan', '$hash', 'immediate', 'fast', 0)" 2>&1)" "a zero timeout is refused"
expect_match 'violates' "$(ins sys-a k8 ', timed_out' ", true")" "timed out without the policy that timed it is refused"

expect_match 'lock_key' "$(sql "INSERT INTO execution_locks (lock_key, owner, expires_at) VALUES ('free-form', 'w1', now() + interval '1 minute')" 2>&1)" "lock keys have the lock:v1 shape"
expect_eq "" "$(sql "INSERT INTO execution_locks (lock_key, owner, expires_at) VALUES ('lock:v1:sys-a:ns/a/vm-1:restart', 'w1', now() + interval '1 minute')" 2>&1)" "a lock is taken"
expect_match 'duplicate key' "$(sql "INSERT INTO execution_locks (lock_key, owner, expires_at) VALUES ('lock:v1:sys-a:ns/a/vm-1:restart', 'w2', now() + interval '1 minute')" 2>&1)" "the same asset cannot be locked twice"

# every migration above 0004 rolls back, the newest first
above=$(($(sql "SELECT max(version) FROM shepherd_schema_migrations") - 4))
"$SHEPHERDD" --database-url "$SHP_TEST_PGURL" --state-dir "$T/state" migrate down "$above" >/dev/null
expect_eq 0 "$(sql "SELECT count(*) FROM information_schema.tables WHERE table_name = 'executions'")" "the migrations roll back down to 0005"
finish
