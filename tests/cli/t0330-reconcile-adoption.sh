#!/bin/bash
# The reconciler and adoption end to end: a cluster served by the Kubernetes API simulator
# (VMs seeded with labels, some removed behind shepherd's back), rows inserted with SQL;
# reconcile in dry-run and mark mode, the circuit breaker, the list of runs, the periodic job;
# adoption scan, list, adopt (the VM gets the managed labels), ignore, double decisions;
# non-admins refused; every decision audited.
. "$top_srcdir/tests/helpers/lib.sh"
. "$top_srcdir/tests/helpers/kubesim.sh"

start_kubesim || { echo "# the Kubernetes API simulator did not start"; exit 1; }
"$top_srcdir/tests/helpers/make-certs.sh" "$T/dpki" >/dev/null
port=$((20000 + RANDOM % 20000))
start_daemon --tls-listen "127.0.0.1:$port" --tls-cert "$T/dpki/server.crt" \
	--tls-key "$T/dpki/server.key" --reconcile-interval 10s --adoption-interval 1h
URL="https://127.0.0.1:$port"
tls() { # tls TOKEN METHOD PATH [curl args]
	local tok=$1 method=$2 path=$3
	shift 3
	curl -s -o "$T/body" -w '%{http_code}' -X "$method" --cacert "$T/dpki/ca.crt" \
		-H "Authorization: Bearer $tok" "$URL$path" "$@" >"$T/code"
	cat "$T/body"
}
kget() { # the simulated cluster's API
	curl -s --cacert "$KUBESIM_CA" -H "Authorization: Bearer $KUBESIM_TOKEN" "$KUBESIM_URL$1"
}
vms_of() { # names of the VMs in namespace $1 matching label selector $2
	kget "/apis/kubevirt.io/v1/namespaces/$1/virtualmachines?labelSelector=$2" |
		jq -r '.items[].metadata.name' | sort
}
MANAGED='app.kubernetes.io%2Fmanaged-by%3Dshepherd'
me=$(shp whoami -o json | jq -r .name)
# The periodic jobs of the first period run at start: let them finish before there is a cluster,
# so the on-demand scan below is the one that finds the candidates.
for _ in $(seq 1 300); do
	[ "$(sql "SELECT count(*) FROM jobs WHERE kind IN ('adoption.scan', 'reconcile.run') AND state = 'completed'")" -ge 2 ] && break
	sleep 0.1
done

expect_exit 0 "a cluster is registered from the simulator's kubeconfig" \
	shp cluster add ks1 --kubeconfig "$T/kubeconfig" --environment test
cid=$(sql "SELECT id FROM clusters WHERE name = 'ks1'")

kubesim_ctl /_sim/seed '{"namespace":"team-a","vms":6,"prefix":"web-","running":true,"labels":{"app.kubernetes.io/managed-by":"shepherd"}}' >/dev/null
kubesim_ctl /_sim/seed '{"namespace":"team-a","vms":2,"prefix":"plain-","running":false}' >/dev/null
kubesim_ctl /_sim/seed '{"namespace":"legacy","vms":2,"prefix":"old-","running":true,"labels":{"shepherd.io/adopt":"true"}}' >/dev/null
web=$(vms_of team-a "$MANAGED")
expect_eq 6 "$(wc -w <<<"$web")" "six managed VMs are seeded"
for n in $web; do
	sql "INSERT INTO vms (cluster_id, namespace, name, created_at) VALUES ($cid, 'team-a', '$n', now() - interval '1 hour')"
done
set -- $web
g1=$1 g2=$2 g3=$3 g4=$4

# ---- reconcile
expect_exit 0 "reconcile with everything in place exits 0" shp reconcile -o json
expect_eq ok "$(jq -r '.items[0].outcome' <<<"$OUT")" "the run is ok"
expect_eq "0 0 6 6" "$(jq -r '.items[0] | "\(.ghost_count) \(.orphan_count) \(.db_count) \(.cluster_count)"' <<<"$OUT")" \
	"no ghosts, no orphans; the unlabelled VMs are not counted"
expect_eq dry-run "$(jq -r '.items[0].mode' <<<"$OUT")" "dry-run is the default"

kubesim_ctl /_sim/delete-raw "{\"namespace\":\"team-a\",\"name\":\"$g1\"}" >/dev/null
kubesim_ctl /_sim/delete-raw "{\"namespace\":\"team-a\",\"name\":\"$g2\"}" >/dev/null
expect_exit 0 "a dry run with ghosts still exits 0" shp reconcile --cluster ks1
expect_match "^cluster ks1 \(dry-run\): ok: 2 ghost" "$OUT" "the table names the outcome"
expect_match "ghost +team-a/$g1 \(row [0-9]+\)" "$OUT" "and each ghost with its row"
expect_eq 0 "$(sql "SELECT count(*) FROM vms WHERE reconcile_mark IS NOT NULL")" "dry-run marks nothing"

expect_exit 0 "reconcile --mode mark" shp reconcile --mode mark -o json
expect_eq "$(printf '%s\n' "$g1" "$g2" | sort | tr '\n' ' ')" \
	"$(sql "SELECT name FROM vms WHERE reconcile_mark = 'ghost' AND marked_at IS NOT NULL ORDER BY name" | tr '\n' ' ')" \
	"mark mode marks exactly the ghosts"
expect_eq 6 "$(sql "SELECT count(*) FROM vms")" "and deletes nothing"

kubesim_ctl /_sim/seed '{"namespace":"team-b","vms":1,"prefix":"stray-","running":true,"labels":{"app.kubernetes.io/managed-by":"shepherd"}}' >/dev/null
expect_exit 0 "reconcile with an orphan" shp reconcile -o json
expect_eq 1 "$(jq '.items[0].orphan_count' <<<"$OUT")" "a managed VM without a row is an orphan"
expect_eq team-b "$(jq -r '.items[0].orphans[0].namespace' <<<"$OUT")" "it is named"

kubesim_ctl /_sim/delete-raw "{\"namespace\":\"team-a\",\"name\":\"$g3\"}" >/dev/null
kubesim_ctl /_sim/delete-raw "{\"namespace\":\"team-a\",\"name\":\"$g4\"}" >/dev/null
expect_exit 1 "more than half ghosts: the run halts and the CLI exits 1" shp reconcile --mode mark -o json
expect_eq halted "$(jq -r '.items[0].outcome' <<<"$OUT")" "the outcome is halted"
expect_match "circuit breaker: 4 of 6" "$(jq -r '.items[0].message' <<<"$OUT")" "the report says why"
expect_match "halted or failed" "$ERR" "and the CLI says so on stderr"
expect_eq 2 "$(sql "SELECT count(*) FROM vms WHERE reconcile_mark = 'ghost'")" "nothing more is marked"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'RECONCILE_HALTED' AND resource_name = 'ks1' AND actor = '$me'")" \
	"the halt is audited as an alert"
expect_match 'level=error.*reconcile of cluster .ks1. halted' "$(cat "$T/daemon.log")" "and logged at error level"

# (the periodic job may have added runs of its own, by the actor shepherdd)
expect_exit 0 "reconcile runs lists the runs" shp reconcile runs --cluster ks1 -o json
mine=$(jq --arg me "$me" '[.[] | select(.actor == $me)]' <<<"$OUT")
expect_eq 5 "$(jq length <<<"$mine")" "one per run"
expect_eq halted "$(jq -r '.[0].outcome' <<<"$mine")" "newest first"
expect_eq "mark dry-run mark dry-run dry-run" "$(jq -r '[.[].mode] | join(" ")' <<<"$mine")" "with their modes"
expect_exit 0 "reconcile runs as a table" shp reconcile runs --limit 2
expect_match 'halted' "$OUT" "shows the outcome"
body=$(api GET "/api/v1/reconcile/runs?limit=2")
expect_eq 2 "$(jq '.items | length' <<<"$body")" "the runs are paginated"
body=$(api GET "/api/v1/reconcile/runs?limit=2&cursor=$(jq -r .next_cursor <<<"$body")")
expect_eq 2 "$(jq '.items | length' <<<"$body")" "the next page follows the cursor"
expect_eq 5 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'RECONCILE_RUN' AND actor = '$me'")" \
	"every run is audited"

body=$(api POST /api/v1/reconcile -H 'Content-Type: application/json' -d '{"mode":"delete"}')
expect_eq 400 "$(code)" "an unknown mode is refused"
body=$(api POST /api/v1/reconcile -H 'Content-Type: application/json' -d '{"cluster":"nope"}')
expect_eq 404 "$(code)" "an unknown cluster is 404"
body=$(api POST /api/v1/reconcile -H 'Content-Type: application/json' -d '{"cluster":"ks1","force":true}')
expect_eq 400 "$(code)" "an unknown field is refused"
body=$(api POST /api/v1/reconcile -H 'Content-Type: application/json' -d '{"mode":5}')
expect_eq 400 "$(code)" "a mode of the wrong type is refused"
body=$(api POST /api/v1/reconcile -H 'Content-Type: application/json' \
	-d "{\"cluster\":\"$(printf 'x%.0s' $(seq 1 300))\"}")
expect_eq 400 "$(code)" "an overlong cluster name is refused"
body=$(api GET "/api/v1/reconcile/runs?cursor=!!!")
expect_eq 400 "$(code)" "a malformed cursor is refused"
body=$(api POST /api/v1/reconcile -H 'Content-Type: application/json' -d '{"mode":')
expect_eq 400 "$(code)" "malformed JSON is refused"
expect_exit 7 "the CLI checks the mode" shp reconcile --mode delete

# ---- adoption
expect_exit 0 "adoption scan" shp adoption scan
expect_match "^cluster ks1: 2 offered, 2 new" "$OUT" "finds the two VMs offered for adoption"
expect_exit 0 "adoption list" shp adoption list --state pending -o json
expect_eq "old-" "$(jq -r '[.[].name[0:4]] | unique | join(",")' <<<"$OUT")" "only the labelled VMs are listed"
expect_eq 2 "$(jq length <<<"$OUT")" "both of them"
a1=$(jq -r '.[0].id' <<<"$OUT")
a2=$(jq -r '.[1].id' <<<"$OUT")
n1=$(jq -r '.[0].name' <<<"$OUT")
expect_eq RUNNING "$(jq -r '.[0].summary.status' <<<"$OUT")" "with a summary of the VM"
expect_exit 0 "adoption list for another cluster" shp adoption list --cluster nope -o json
expect_eq 0 "$(jq length <<<"$OUT")" "is empty"
expect_exit 0 "adoption list as a table" shp adoption list --cluster ks1
expect_match "ks1 +legacy +$n1 +pending +RUNNING" "$OUT" "shows cluster, namespace, name, state and status"

expect_exit 7 "adopting with another namespace than the VM's is refused" \
	shp adoption adopt "$a1" --namespace team-a
expect_eq pending "$(sql "SELECT state FROM pending_adoptions WHERE id = $a1")" "and decides nothing"
body=$(api POST "/api/v1/adoptions/$a1/adopt" -H 'Content-Type: application/json' -d '{"namespace":"../etc"}')
expect_eq 400 "$(code)" "a hostile namespace is refused"
body=$(api POST "/api/v1/adoptions/$a1/adopt" -H 'Content-Type: application/json' -d '{"namespace":7}')
expect_eq 400 "$(code)" "a namespace of the wrong type is refused"
body=$(api POST "/api/v1/adoptions/$a1/adopt" -H 'Content-Type: application/json' -d '{"vm_id":1}')
expect_eq 400 "$(code)" "an unknown field is refused"
body=$(api POST "/api/v1/adoptions/abc/adopt")
expect_eq 404 "$(code)" "a malformed adoption id is not found"
body=$(api POST "/api/v1/adoptions/0/ignore")
expect_eq 404 "$(code)" "adoption 0 is not found"
expect_exit 0 "adoption adopt" shp adoption adopt "$a1" -o json
expect_eq adopted "$(jq -r .state <<<"$OUT")" "the adoption is adopted"
expect_eq applied "$(jq -r .label <<<"$OUT")" "the label was applied"
vm_id=$(jq -r .vm_id <<<"$OUT")
expect_eq "$vm_id" "$(sql "SELECT id FROM vms WHERE namespace = 'legacy' AND name = '$n1'")" "the VM has a row"
vm=$(kget "/apis/kubevirt.io/v1/namespaces/legacy/virtualmachines/$n1")
expect_eq shepherd "$(jq -r '.metadata.labels["app.kubernetes.io/managed-by"]' <<<"$vm")" "the VM is labelled as managed"
expect_eq "$vm_id" "$(jq -r '.metadata.labels["shepherd.io/vm-id"]' <<<"$vm")" "with its row id"
expect_eq true "$(jq -r '.metadata.labels["shepherd.io/adopt"]' <<<"$vm")" "its own labels are kept"
expect_exit 6 "adopting twice is a conflict" shp adoption adopt "$a1" -o json
expect_eq CONFLICT "$(jq -r .error.code <<<"$OUT")" "with the conflict code"
expect_eq adopted "$(jq -r .error.details.state <<<"$OUT")" "and the current state"

expect_exit 0 "adoption ignore" shp adoption ignore "$a2"
expect_match "ignored" "$OUT" "says it is ignored"
expect_exit 6 "ignoring twice is a conflict" shp adoption ignore "$a2"
expect_exit 0 "adoption scan again" shp adoption scan -o json
expect_eq 0 "$(jq '.items[0].new' <<<"$OUT")" "finds nothing new"
expect_eq ignored "$(sql "SELECT state FROM pending_adoptions WHERE id = $a2")" "and leaves the decision alone"
expect_exit 4 "an unknown adoption is not found" shp adoption adopt 99999
body=$(api GET "/api/v1/adoptions?state=bogus")
expect_eq 400 "$(code)" "an unknown state filter is refused"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'ADOPTION_ADOPTED' AND actor = '$me' AND outcome = 'success'")" \
	"the adoption is audited with its actor"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'ADOPTION_IGNORED' AND actor = '$me'")" \
	"so is the ignore"

# ---- the reconciler sees the adopted VM as ours
expect_exit 1 "reconcile after the adoption (still halted by the ghosts)" shp reconcile -o json
expect_eq 1 "$(jq '.items[0].orphan_count' <<<"$OUT")" "the adopted VM is no orphan (only the stray one)"

# ---- non-admins
tok=$(api POST /api/v1/tokens -H 'Content-Type: application/json' -d '{"name":"ci","user":"ci-bot"}' | jq -r .token)
body=$(tls "$tok" POST /api/v1/reconcile -H 'Content-Type: application/json' -d '{}')
expect_eq 403 "$(code)" "a non-admin cannot run the reconciler"
body=$(tls "$tok" GET /api/v1/reconcile/runs)
expect_eq 403 "$(code)" "nor list its runs"
body=$(tls "$tok" GET /api/v1/adoptions)
expect_eq 403 "$(code)" "nor list adoptions"
body=$(tls "$tok" POST "/api/v1/adoptions/$a2/adopt" -H 'Content-Type: application/json' -d '{}')
expect_eq 403 "$(code)" "nor adopt"
expect_eq FORBIDDEN "$(jq -r .error.code <<<"$body")" "with the JSON error body"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'ADOPTION_ADOPTED' AND actor = 'ci-bot' AND outcome = 'denied'")" \
	"the refusal is audited"

# ---- a cluster simulated inside shepherdd
expect_exit 0 "a simulated cluster is registered" shp cluster add sim1 --simulated --environment test
sid=$(sql "SELECT id FROM clusters WHERE name = 'sim1'")
sql "INSERT INTO vms (cluster_id, namespace, name, created_at) VALUES ($sid, 'team-s', 'lost', now() - interval '1 hour')"
expect_exit 0 "reconcile --cluster sim1 --mode mark" shp reconcile --cluster sim1 --mode mark -o json
expect_eq "1 sim1 ok lost" "$(jq -r '"\(.items | length) \(.items[0].cluster) \(.items[0].outcome) \(.items[0].ghosts[0].name)"' <<<"$OUT")" \
	"only that cluster: one row, under the breaker's minimum, is a ghost"
expect_eq ghost "$(sql "SELECT reconcile_mark FROM vms WHERE cluster_id = $sid")" "and is marked"

# ---- the periodic job
for _ in $(seq 1 150); do
	[ "$(sql "SELECT count(*) FROM reconcile_runs WHERE actor = 'shepherdd'")" -gt 0 ] && break
	sleep 0.1
done
expect_eq dry-run "$(sql "SELECT mode FROM reconcile_runs WHERE actor = 'shepherdd' ORDER BY id LIMIT 1")" \
	"the periodic job reconciles in the configured mode"
expect_match '^[1-9]' "$(sql "SELECT count(*) FROM jobs WHERE kind = 'reconcile.run' AND state = 'completed'")" \
	"as a reconcile.run job"
expect_match '^[1-9]' "$(sql "SELECT count(*) FROM jobs WHERE kind = 'adoption.scan' AND state = 'completed'")" \
	"the adoption scan runs as a periodic job too"
finish
