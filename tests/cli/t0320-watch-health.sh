#!/bin/bash
# Cluster health and the VM watcher, end to end: a simulated cluster becomes HEALTHY with its
# capabilities by the periodic job; `shepherd cluster health` checks at once (exit 0 when
# HEALTHY, 1 otherwise, 4 for an unknown cluster, -o json); with the Kubernetes simulator, a
# kubeconfig cluster reports its versions and capabilities, a feature-gate change shows after a
# re-check, the watcher keeps the vms rows current and re-lists after a compaction (visible in
# /metrics), GET .../vms serves its cache, and a cluster that does not answer, or accepts no new
# connection, is UNREACHABLE.
. "$top_srcdir/tests/helpers/lib.sh"

start_daemon --health-interval 2s --watch-scan-interval 1s --provider-timeout 3s

health_is() { [ "$(sql "SELECT health FROM clusters WHERE name = '$1'")" = "$2" ]; }

# ---- a simulated cluster ------------------------------------------------------------------
expect_exit 0 "add a simulated cluster" shp cluster add sim1 --simulated --environment test
if wait_for 15 health_is sim1 HEALTHY; then
	pass "the periodic check makes the simulated cluster HEALTHY"
else
	fail "the periodic check makes the simulated cluster HEALTHY" \
		"$(sql "SELECT health, health_message FROM clusters")"
fi
expect_eq "t t" "$(sql "SELECT capabilities ? 'kubevirt', capabilities_at IS NOT NULL
	FROM clusters WHERE name = 'sim1'" | tr '|' ' ')" "its capabilities were detected"
checked=$(sql "SELECT count(*) FROM jobs WHERE kind = 'cluster.health' AND state = 'completed'")
expect_match '^[1-9]' "$checked" "the check runs as the cluster.health job"

expect_exit 0 "cluster health NAME: exit 0 when HEALTHY" shp cluster health sim1
expect_match 'HEALTHY' "$OUT" "it prints the status"
expect_exit 0 "cluster health -o json" shp cluster health sim1 -o json
expect_eq "sim1 HEALTHY HEALTHY array" \
	"$(jq -r '"\(.name) \(.health) \(.previous_health) \(.capabilities | type)"' <<<"$OUT")" \
	"the JSON answer has the state, the one before and the capabilities"
expect_match '^v' "$(jq -r .kubevirt_version <<<"$OUT")" "and the KubeVirt version"
expect_exit 4 "cluster health of an unknown cluster" shp cluster health nope
expect_exit 2 "cluster health without a name" shp cluster health
expect_eq 2 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'CLUSTER_HEALTH_CHECK'
	AND resource_name = 'sim1' AND outcome = 'success'")" "each on-demand check is audited"

# a cluster whose credentials cannot be opened (tampered with in the database) is UNHEALTHY
sql "INSERT INTO clusters (name, api_url, environment, kind, credentials, credentials_key_id)
	VALUES ('broken', 'https://127.0.0.1:9', 'test', 'kubevirt', '\\x0102030405', 'deadbeef')" >/dev/null
expect_exit 1 "cluster health: exit 1 when not HEALTHY" shp cluster health broken -o json
expect_eq UNHEALTHY "$(jq -r .health <<<"$OUT")" "a cluster whose provider cannot be built is UNHEALTHY"
expect_match '.' "$(jq -r .health_message <<<"$OUT")" "with the reason"
expect_match "cluster 'broken' is UNHEALTHY" "$ERR" "the CLI says so on stderr"
if wait_for 10 grep -q "cluster 'broken' is UNHEALTHY (was UNKNOWN)" "$T/daemon.log"; then
	pass "the change of health is logged"
else
	fail "the change of health is logged" "$(grep broken "$T/daemon.log")"
fi
sleep 2.5
expect_eq 1 "$(grep -c "cluster 'broken' is UNHEALTHY" "$T/daemon.log")" \
	"a steady state is logged once, not at every check"
sql "DELETE FROM clusters WHERE name = 'broken'" >/dev/null

# the simulated cluster has no VMs: its watch lists nothing, and says so
if wait_for 10 sh -c "curl -s --unix-socket '$SOCK' http://localhost/api/v1/clusters/sim1/vms \
	| jq -e '.stale == false and (.items | length) == 0'"; then
	pass "GET .../vms serves the watcher's (empty) list"
else
	fail "GET .../vms serves the watcher's (empty) list" "$(api GET /api/v1/clusters/sim1/vms)"
fi
api GET '/api/v1/clusters/sim1/vms?namespace=Bad_NS' >/dev/null
expect_eq 400 "$(code)" "a malformed namespace filter is refused"
api GET /api/v1/clusters/nope/vms >/dev/null
expect_eq 404 "$(code)" "an unknown cluster is not found"
expect_match 'shepherd_watch_active 1' "$(api GET /metrics)" "this daemon watches (it leads)"

# a second daemon on the same database does not lead the queue: it does not watch
SOCK2="$T/second.sock"
"$SHEPHERDD" --database-url "$SHP_TEST_PGURL" --state-dir "$T/s2" --socket "$SOCK2" \
	--watch-scan-interval 1s >>"$T/daemon2.log" 2>&1 &
second=$!
first=$DAEMON_PID
DAEMON_PID=$second
if wait_ready "$SOCK2"; then
	expect_match 'shepherd_watch_active 0' "$(curl -s --unix-socket "$SOCK2" http://localhost/metrics)" \
		"the second daemon does not watch"
	status=$(curl -s -o "$T/body2" -w '%{http_code}' --unix-socket "$SOCK2" \
		http://localhost/api/v1/clusters/sim1/vms)
	expect_eq "503 UNAVAILABLE" "$status $(jq -r .error.code "$T/body2")" \
		"it answers GET .../vms with 503: another daemon leads"
else
	fail "a second daemon starts" "$(tail -n 20 "$T/daemon2.log")"
fi
kill -TERM "$second" 2>/dev/null
wait "$second" 2>/dev/null
DAEMON_PID=$first
expect_match 'shepherd_watch_active 1' "$(api GET /metrics)" "the first daemon still watches"

# ---- the Kubernetes simulator ---------------------------------------------------------------
if [ ! -x "${KUBESIM:-$top_builddir/tests/kubesim/kubesim}" ] ||
	[ ! -f "$top_srcdir/tests/helpers/kubesim.sh" ]; then
	note "the Kubernetes simulator is not built: its part is skipped"
	finish
fi
KUBESIM=${KUBESIM:-$top_builddir/tests/kubesim/kubesim}
. "$top_srcdir/tests/helpers/kubesim.sh"
start_kubesim --tick-ms 100 --feature-gates Snapshot

expect_exit 0 "add a cluster from a kubeconfig pointing at the simulator" \
	shp cluster add lab --kubeconfig "$T/kubeconfig" --environment test
expect_exit 0 "cluster health of the simulated API server" shp cluster health lab -o json
expect_eq "HEALTHY" "$(jq -r .health <<<"$OUT")" "it is HEALTHY"
expect_match '^v1\.' "$(jq -r .kubernetes_version <<<"$OUT")" "with its Kubernetes version"
expect_match '^v1\.' "$(jq -r .kubevirt_version <<<"$OUT")" "and its KubeVirt version"
expect_eq true "$(jq '.capabilities | index("snapshot") != null' <<<"$OUT")" \
	"the Snapshot gate shows as the snapshot capability"

kubesim_ctl /_sim/feature-gates '{"featureGates":[]}' >/dev/null
expect_exit 0 "check again after the gates changed" shp cluster health lab -o json
expect_eq false "$(jq '.capabilities | index("snapshot") != null' <<<"$OUT")" \
	"without the gate, the capability is gone after the re-check"

# the watcher: rows shepherd knows follow the cluster
lab=$(sql "SELECT id FROM clusters WHERE name = 'lab'")
sql "INSERT INTO vms (cluster_id, namespace, name) VALUES ($lab, 'team-a', 'web-1'),
	($lab, 'team-a', 'web-2'), ($lab, 'team-a', 'web-3')" >/dev/null
kubesim_ctl /_sim/seed '{"namespace":"team-a","vms":3,"prefix":"web-","running":true,
	"labels":{"app.kubernetes.io/managed-by":"shepherd"}}' >/dev/null
kubesim_ctl /_sim/seed '{"namespace":"team-a","vms":2,"prefix":"other-","running":true}' >/dev/null
running() { [ "$(sql "SELECT count(*) FROM vms WHERE cluster_id = $lab AND status = 'RUNNING'")" = "$1" ]; }
if wait_for 20 running 3; then
	pass "the watcher writes the rows of the cluster's VMs"
else
	fail "the watcher writes the rows of the cluster's VMs" \
		"$(sql "SELECT name, status, error, observed_at FROM vms")
$(api GET /api/v1/clusters/lab/vms)"
fi
expect_eq 3 "$(sql "SELECT count(*) FROM vms WHERE cluster_id = $lab")" \
	"VMs without a row (not shepherd's) get none"
relists() {
	api GET /metrics | awk '/^shepherd_watch_relists_total\{cluster="lab"\}/ { print $2 }'
}
before=$(relists)
# the watch reconnects (slowed down) while a VM vanishes and the log is compacted: it resumes
# from a resourceVersion that is gone, gets 410 Expired and lists again
kubesim_ctl /_sim/faults '{"latency_ms":700,"path_prefix":"/apis/kubevirt.io/v1/virtualmachines"}' >/dev/null
kubesim_ctl /_sim/drop-watches >/dev/null
kubesim_ctl /_sim/delete-raw '{"namespace":"team-a","name":"web-2"}' >/dev/null
kubesim_ctl /_sim/seed '{"namespace":"team-b","vms":1,"prefix":"x-","running":false}' >/dev/null
kubesim_ctl /_sim/compact >/dev/null
more_relists() { [ "$(relists)" -gt "$before" ]; }
if wait_for 15 more_relists; then
	pass "a compaction during the watch causes a re-list (in /metrics)"
else
	fail "a compaction during the watch causes a re-list (in /metrics)" "$(api GET /metrics | grep watch)"
fi
kubesim_ctl /_sim/faults '{}' >/dev/null
gone() { [ "$(sql "SELECT status || ':' || error FROM vms WHERE name = 'web-2'")" = "UNKNOWN:deleted in the cluster" ]; }
if wait_for 15 gone; then
	pass "a VM that vanished between lists is marked UNKNOWN, deleted in the cluster"
else
	fail "a VM that vanished between lists is marked UNKNOWN" "$(sql "SELECT name, status, error FROM vms")"
fi
expect_eq "RUNNING RUNNING" "$(sql "SELECT status FROM vms WHERE name IN ('web-1', 'web-3')
	ORDER BY name" | tr '\n' ' ' | sed 's/ $//')" "the other rows stay correct"
expect_match '^[1-9]' "$(api GET /metrics | awk '/^shepherd_watch_expired_total\{cluster="lab"\}/ { print $2 }')" \
	"the 410s are counted"
expect_match 'shepherd_watch_breaker_state\{cluster="lab"\} 0' "$(api GET /metrics)" \
	"and the breaker stays closed"
vms=$(api GET '/api/v1/clusters/lab/vms?namespace=team-a')
expect_eq "200 web-1,web-3" "$(code) $(jq -r '[.items[].name] | join(",")' <<<"$vms")" \
	"GET .../vms lists the managed VMs from the cache"
expect_eq "watching closed false" "$(jq -r '"\(.watch.state) \(.watch.breaker) \(.stale)"' <<<"$vms")" \
	"with the state of the watch"

# a cluster that stops accepting connections is UNREACHABLE, though a kept-alive one still works
kubesim_ctl /_sim/unreachable '{"seconds":3}' >/dev/null
expect_exit 1 "cluster health while the simulator refuses connections" shp cluster health lab -o json
expect_eq UNREACHABLE "$(jq -r .health <<<"$OUT")" "the health check opens a connection of its own"
sleep 3
expect_exit 0 "and once it accepts them again" shp cluster health lab -o json
expect_eq HEALTHY "$(jq -r .health <<<"$OUT")" "it is HEALTHY again"

# a cluster whose API server does not answer (the simulator's credentials, a closed port)
sed 's#server: .*#server: https://127.0.0.1:9#' "$T/kubeconfig" >"$T/dead.kubeconfig"
expect_exit 0 "add a cluster whose API server does not answer" \
	shp cluster add dead --kubeconfig "$T/dead.kubeconfig" --environment test
expect_exit 1 "cluster health: exit 1 when not HEALTHY" shp cluster health dead -o json
expect_eq UNREACHABLE "$(jq -r .health <<<"$OUT")" "a cluster that does not answer is UNREACHABLE"
expect_match "is UNREACHABLE" "$(cat "$T/daemon.log")" "the change of health is logged"
dead_failing() {
	api GET /metrics | grep -Eq '^shepherd_watch_failures_total\{cluster="dead"\} [1-9]'
}
if wait_for 10 dead_failing; then
	pass "its watch fails and backs off"
else
	fail "its watch fails and backs off" "$(api GET /metrics | grep 'cluster="dead"')"
fi
api GET /api/v1/clusters/dead/vms >/dev/null
expect_eq 503 "$(code)" "GET .../vms of a cluster never listed is 503"
expect_exit 0 "the other cluster is unaffected" shp cluster health lab

finish
