#!/bin/bash
# The execution engine's VM actions against a simulated cluster, through the real daemon and
# CLI: a VM is created (its row first, labelled with the row id), started, stopped and deleted;
# repeating a create never duplicates; a namespace of another environment, an unknown cluster
# and a bad size fail with clear errors; a delete needs a platform admin's plan level.
. "$top_srcdir/tests/helpers/lib.sh"

# no dedupe window: the same plan submitted again runs again
start_daemon --execution-dedupe-window 0s
expect_exit 0 "a test namespace" shp namespace create team-a --environment test
expect_exit 0 "a prod namespace" shp namespace create pay-prod --environment prod
expect_exit 0 "a simulated cluster" shp cluster add sim1 --simulated --environment test

plan() { # plan FILE ACTION PARAMS-JSON
	printf 'steps:\n  - {action: %s, targets: [team-a/web-1], params: %s}\n' "$2" "$3" >"$T/$1"
}

plan create.yaml vm.create '{cluster: sim1, namespace: team-a, name: web-1, cpus: 2, memory: 2Gi}'
expect_exit 0 "vm.create runs to success" shp tasks submit -f "$T/create.yaml" --tenant team-a --yes --wait -o json
expect_eq succeeded "$(jq -r .status <<<"$OUT")" "the task succeeded"
vm_id=$(sql "SELECT id FROM vms WHERE name = 'web-1'")
expect_match '^[0-9]+$' "$vm_id" "the vms row exists"
expect_match 'STARTING|RUNNING' "$(sql "SELECT status FROM vms WHERE id = $vm_id")" "the VM is starting or running"
expect_match '.+' "$(sql "SELECT uid FROM vms WHERE id = $vm_id")" "with the cluster's uid"

plan get.yaml vm.get '{cluster: sim1, namespace: team-a, name: web-1}'
running=no
for _ in $(seq 1 150); do
	"$SHEPHERD" --socket "$SOCK" tasks submit -f "$T/get.yaml" --tenant team-a -o json >"$T/get.json" 2>/dev/null || true
	if [ "$(jq -r '.steps[0].result.status // empty' "$T/get.json")" = RUNNING ]; then running=yes; break; fi
	sleep 0.2
done
expect_eq yes "$running" "vm.get reports the VM RUNNING once the cluster has started it"
# a watch event carries no VMI fields: the watcher reads the node of a VM that has come to run
seen=no
for _ in $(seq 1 150); do
	"$SHEPHERD" --socket "$SOCK" cluster vms sim1 -o json >"$T/vms.json" 2>/dev/null || true
	if [ "$(jq -r '.items[] | select(.name == "web-1") | "\(.status) \(.node != "")"' "$T/vms.json" 2>/dev/null)" = "RUNNING true" ]; then seen=yes; break; fi
	sleep 0.2
done
expect_eq yes "$seen" "the watcher sees it RUNNING, with its node (cluster vms -o json)"
expect_eq false "$(jq .stale "$T/vms.json")" "from a current list"
expect_exit 0 "cluster vms as a table" shp cluster vms sim1 --namespace team-a
expect_match 'web-1 +RUNNING +2 +2Gi +node-' "$OUT" "with its status, size and node"
expect_match '^node-[0-9]+ 10\.' "$(sql "SELECT node || ' ' || ip FROM vms WHERE id = $vm_id")" \
	"the row has the node and address too"
expect_exit 0 "cluster vms of another namespace" shp cluster vms sim1 --namespace nothing-here -o json
expect_eq 0 "$(jq '.items | length' <<<"$OUT")" "is empty"
expect_match 'RUNNING|STARTING' "$(sql "SELECT status FROM vms WHERE id = $vm_id")" "the row follows the cluster"

expect_exit 0 "creating the same VM again succeeds" shp tasks submit -f "$T/create.yaml" --tenant team-a --yes --wait -o json
expect_eq succeeded "$(jq -r .status <<<"$OUT")" "as a new task"
expect_eq 1 "$(sql "SELECT count(*) FROM vms WHERE name = 'web-1'")" "and leaves one row"
expect_eq "$vm_id" "$(sql "SELECT id FROM vms WHERE name = 'web-1'")" "the same row"

plan stop.yaml vm.power '{cluster: sim1, namespace: team-a, name: web-1, op: stop}'
expect_exit 0 "vm.power stop" shp tasks submit -f "$T/stop.yaml" --tenant team-a --yes --wait -o json
expect_match 'STOPPING|STOPPED' "$(sql "SELECT status FROM vms WHERE id = $vm_id")" "the VM is stopping"
plan typo.yaml vm.power '{cluster: sim1, namespace: team-a, name: web-1, op: stop, force: true}'
expect_exit 7 "an unknown parameter is refused at submission (exit 7)" shp tasks submit -f "$T/typo.yaml" --tenant team-a --yes --wait
expect_match "unknown parameter 'force'" "$OUT$ERR" "naming it"
plan bad-op.yaml vm.power '{cluster: sim1, namespace: team-a, name: web-1, op: explode}'
expect_exit 1 "an unknown power operation fails" shp tasks submit -f "$T/bad-op.yaml" --tenant team-a --yes --wait
expect_match "start, stop, restart" "$OUT$ERR" "naming the valid ones"

plan prod.yaml vm.create '{cluster: sim1, namespace: pay-prod, name: api-1, cpus: 1, memory: 1Gi}'
expect_exit 1 "a prod namespace on a test cluster fails" shp tasks submit -f "$T/prod.yaml" --tenant team-a --yes --wait
expect_match "pay-prod' is prod but cluster 'sim1' is test" "$OUT$ERR" "saying why"
plan nocluster.yaml vm.create '{cluster: nowhere, namespace: team-a, name: api-1, cpus: 1, memory: 1Gi}'
expect_exit 1 "an unknown cluster fails" shp tasks submit -f "$T/nocluster.yaml" --tenant team-a --yes --wait
expect_match "cluster 'nowhere' not found" "$OUT$ERR" "naming it"
plan nomem.yaml vm.create '{cluster: sim1, namespace: team-a, name: api-2, cpus: 1}'
expect_exit 1 "a VM without memory fails" shp tasks submit -f "$T/nomem.yaml" --tenant team-a --yes --wait
expect_match "'memory' \\(or 'instancetype'\\) is required" "$OUT$ERR" "saying what is missing"
plan hugemem.yaml vm.create '{cluster: sim1, namespace: team-a, name: api-3, cpus: 1, memory: 9Ti}'
expect_exit 1 "an absurd size fails" shp tasks submit -f "$T/hugemem.yaml" --tenant team-a --yes --wait
expect_match "between 64Mi and 1Ti" "$OUT$ERR" "with the bounds"
plan itype.yaml vm.create '{cluster: sim1, namespace: team-a, name: small-1, instancetype: u1.small, run: false}'
expect_exit 0 "a VM sized by an instance type" shp tasks submit -f "$T/itype.yaml" --tenant team-a --yes --wait -o json
expect_eq STOPPED "$(sql "SELECT status FROM vms WHERE name = 'small-1'")" "created halted"

plan delete.yaml vm.delete '{cluster: sim1, namespace: team-a, name: web-1}'
expect_exit 0 "vm.delete as the platform admin" shp tasks submit -f "$T/delete.yaml" --tenant team-a --yes --wait -o json
expect_eq 0 "$(sql "SELECT count(*) FROM vms WHERE name = 'web-1' AND deleted_at IS NULL")" "the row is gone"
expect_eq 1 "$(sql "SELECT count(*) FROM vms WHERE name = 'web-1' AND deleted_at IS NOT NULL")" "kept, soft-deleted"
expect_exit 0 "deleting it again succeeds" shp tasks submit -f "$T/delete.yaml" --tenant team-a --yes --wait -o json
finish
