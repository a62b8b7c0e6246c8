#!/bin/bash
# The governance flow end to end, with several users over TLS: a CREATE_VM request is approved
# and runs to a RUNNING VM, on a simulated cluster and on a KubeVirt cluster (the API
# simulator), leaving the VM row with its owner, system, service, spec and revision 1, the
# ticket and the request COMPLETED, the audit trail in order and the requester told; an
# approved delete soft-deletes the row; a plan changed under an approved ticket while the
# queue is paused is refused by the worker.
. "$top_srcdir/tests/helpers/lib.sh"
. "$top_srcdir/tests/helpers/kubesim.sh"

start_kubesim || exit 1
ln -s "$T/kubesim-certs" "$T/pki" # one throwaway CA for both: the certificates take seconds
start_daemon_tls --execution-dedupe-window 0s
J='Content-Type: application/json'
uid() { sql "SELECT id FROM users WHERE name = '$1'"; }
for u in alice carol; do user_token "$u" >/dev/null; done
ALICE=$(uid alice) CAROL=$(uid carol)
sql "INSERT INTO role_bindings (user_id, role, allowed_environments) VALUES
	($CAROL, 'approver', '{test}'), ($ALICE, 'viewer', '{test}')"
shp namespace create team-t --environment test >/dev/null
shp namespace create team-k --environment test >/dev/null
expect_exit 0 "a simulated test cluster" shp cluster add sim1 --simulated --environment test
expect_exit 0 "a KubeVirt test cluster (the API simulator)" \
	shp cluster add kube1 --kubeconfig "$T/kubeconfig" --environment test
api_as alice POST /api/v1/systems -H "$J" -d '{"name": "shop"}' >/dev/null
api_as alice POST /api/v1/services -H "$J" -d '{"name": "web", "system": "shop"}' >/dev/null
expect_eq 202 "$(code)" "alice's system and service"

vm() { printf '{"name": "%s", "namespace": "%s", "service": "web", "template": "debian-12", "size": "small"}' "$1" "$2"; }

# request NAME NAMESPACE: alice asks for a VM; sets TID and RID
request() {
	local body
	body=$(api_as alice POST /api/v1/vms -H "$J" -d "$(vm "$1" "$2")")
	expect_eq "202 PENDING_APPROVAL" "$(code) $(jq -r '.status // .error.message' <<<"$body")" \
		"CREATE_VM $1 waits for review"
	TID=$(jq -r .ticket_id <<<"$body")
	RID=$(jq -r .request_id <<<"$body")
}

# approve CLUSTER: carol approves ticket $TID on CLUSTER; sets TASK and HASH
approve() {
	local body
	body=$(api_as carol POST "/api/v1/approvals/$TID/approve" -H "$J" \
		-d "{\"cluster\": \"$1\", \"reason\": \"fine\"}")
	expect_eq "202 APPROVED" "$(code) $(jq -r '.status // .error.message' <<<"$body")" \
		"carol approves it on $1"
	TASK=$(jq -r .task_id <<<"$body")
	HASH=$(jq -r .plan_hash <<<"$body")
}

# wait_ticket: until the ticket is final (30 s)
wait_ticket() {
	local st
	for _ in $(seq 1 150); do
		st=$(sql "SELECT status FROM approval_tickets WHERE id = $TID")
		case "$st" in COMPLETED | FAILED | CANCELLED) break ;; esac
		sleep 0.2
	done
	echo "$st"
}

# flow NAME NAMESPACE CLUSTER: request, approve, run to RUNNING; check what it leaves
flow() {
	request "$1" "$2"
	approve "$3"
	expect_eq COMPLETED "$(wait_ticket)" "the ticket of $1 is COMPLETED"
	expect_eq "COMPLETED" "$(sql "SELECT status FROM domain_events WHERE id = $RID")" "its request is COMPLETED"
	expect_eq "succeeded approved $RID" \
		"$(sql "SELECT x.status || ' ' || x.approval_state || ' ' || x.event_id FROM executions x WHERE x.id = $TASK")" \
		"its task succeeded, bound to the approval and the request"
	expect_eq "$HASH" "$(sql "SELECT approved_plan_hash FROM executions WHERE id = $TASK")" \
		"with the plan hash the approver approved"
	expect_eq "RUNNING alice shop web debian-12 small 1 $1" \
		"$(sql "SELECT v.status || ' ' || u.name || ' ' || v.system || ' ' || v.service || ' ' || v.template || ' ' || v.size || ' ' || v.revision || ' ' || (v.spec->>'name') FROM vms v JOIN users u ON u.id = v.owner_id JOIN clusters c ON c.id = v.cluster_id WHERE v.name = '$1' AND c.name = '$3' AND v.deleted_at IS NULL")" \
		"the VM runs on $3, owned by alice, with system, service, template, size, spec and revision 1"
	expect_eq "1 $TID $TASK" "$(sql "SELECT r.version || ' ' || r.ticket_id || ' ' || r.execution_id FROM vm_revisions r JOIN vms v ON v.id = r.vm_id WHERE v.name = '$1' AND v.deleted_at IS NULL")" \
		"revision 1 names the ticket and the task"
	expect_eq "REQUEST_SUBMITTED APPROVAL_APPROVED EXECUTION_STARTED EXECUTION_COMPLETED" \
		"$(sql "SELECT string_agg(action, ' ' ORDER BY id) FROM audit_log WHERE details->>'request_id' = '$RID' OR details->>'ticket_id' = '$TID'")" \
		"the audit trail in order"
	expect_eq "shepherdd $TASK" "$(sql "SELECT actor || ' ' || (details->>'execution_id') FROM audit_log WHERE action = 'EXECUTION_COMPLETED' AND details->>'ticket_id' = '$TID'")" \
		"the execution's rows are the daemon's, naming the task"
	expect_match 'APPROVAL_COMPLETED' "$(sql "SELECT string_agg(type, ' ' ORDER BY id) FROM notifications WHERE user_id = $ALICE AND ticket_id = $TID")" \
		"alice is told it is done"
}

flow web-1 team-t sim1
flow web-2 team-k kube1
vm_id=$(sql "SELECT id FROM vms WHERE name = 'web-2' AND deleted_at IS NULL")
expect_eq "$vm_id shepherd" \
	"$(kube GET /apis/kubevirt.io/v1/namespaces/team-k/virtualmachines/web-2 | jq -r '"\(.metadata.labels["shepherd.io/vm-id"]) \(.metadata.labels["app.kubernetes.io/managed-by"])"')" \
	"the KubeVirt VM carries its row id and shepherd's label"
expect_eq 200 "$(kube GET /api/v1/namespaces/team-k >/dev/null; kcode)" "its namespace was made just in time"

# ---- DELETE_VM: approved, the VM goes and its row is kept, soft-deleted
body=$(api_as alice DELETE "/api/v1/vms/web-1?confirm=true")
expect_eq "202 PENDING_APPROVAL" "$(code) $(jq -r '.status // .error.message' <<<"$body")" "DELETE_VM web-1 waits for review"
TID=$(jq -r .ticket_id <<<"$body")
RID=$(jq -r .request_id <<<"$body")
approve sim1
expect_eq COMPLETED "$(wait_ticket)" "the delete's ticket is COMPLETED"
expect_eq "COMPLETED 1 0" "$(sql "SELECT (SELECT status FROM domain_events WHERE id = $RID) || ' ' ||
	(SELECT count(*) FROM vms WHERE name = 'web-1' AND deleted_at IS NOT NULL) || ' ' ||
	(SELECT count(*) FROM vms WHERE name = 'web-1' AND deleted_at IS NULL)")" \
	"the request is COMPLETED and the row soft-deleted"

# ---- a plan changed under its approval: the worker refuses it
expect_exit 0 "the executions queue is paused" shp queue pause executions
request web-3 team-t
approve sim1
expect_eq pending "$(sql "SELECT status FROM executions WHERE id = $TASK")" "the task waits in the paused queue"
sql "UPDATE executions SET plan_snapshot = jsonb_set(plan_snapshot,
	'{steps,0,params,manifest,spec,runStrategy}', '\"Halted\"') WHERE id = $TASK" >/dev/null
expect_exit 0 "the queue resumes" shp queue resume executions
expect_eq FAILED "$(wait_ticket)" "the ticket FAILED"
expect_eq "rejected APPROVAL_INVALIDATED invalidated" \
	"$(sql "SELECT status || ' ' || error_code || ' ' || approval_state FROM executions WHERE id = $TASK")" \
	"the worker refused the changed plan"
expect_eq "APPROVAL_INVALIDATED FAILED" \
	"$(sql "SELECT t.error_code || ' ' || e.status FROM approval_tickets t JOIN domain_events e ON e.id = t.event_id WHERE t.id = $TID")" \
	"the ticket says why, the request FAILED"
expect_eq 0 "$(sql "SELECT count(*) FROM vms WHERE name = 'web-3'")" "no VM row"
expect_exit 0 "the cluster's VMs" shp cluster vms sim1 --namespace team-t -o json
expect_eq 0 "$(jq '[.items[] | select(.name == "web-3")] | length' <<<"$OUT")" "and no VM on the cluster"
expect_eq "EXECUTION_FAILED failed APPROVAL_INVALIDATED" \
	"$(sql "SELECT action || ' ' || outcome || ' ' || (details->>'error_code') FROM audit_log WHERE details->>'ticket_id' = '$TID' ORDER BY id DESC LIMIT 1")" \
	"audited with the error code"
expect_match 'REQUEST_FAILED' "$(sql "SELECT string_agg(type, ' ') FROM notifications WHERE user_id = $ALICE AND ticket_id = $TID")" \
	"alice is told"
finish
