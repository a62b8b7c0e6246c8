#!/bin/bash
# The governance core end to end, with the real CLI and daemon: every VM request type in both
# environments through the default policy matrix, on simulated clusters and on the KubeVirt
# provider against the API simulator, a name free again after its VM is deleted,
# self-approval refused, N-of-M approvals, visibility for test-only and test+prod users, and a
# cross-system request refused again by the worker after the requester lost their membership.
. "$top_srcdir/tests/helpers/lib.sh"
. "$top_srcdir/tests/helpers/kubesim.sh"

start_kubesim
start_daemon_tls
shp cluster add sim-test --simulated --environment test >/dev/null
shp cluster add sim-prod --simulated --environment prod >/dev/null
shp cluster add kv-test --kubeconfig "$T/kubeconfig" --environment test >/dev/null
shp cluster add kv-prod --kubeconfig "$T/kubeconfig" --environment prod >/dev/null
shp namespace create shop-test --environment test >/dev/null
shp namespace create shop-prod --environment prod >/dev/null
shp role bind alice viewer --env test,prod >/dev/null
shp role bind bob approver --env test,prod >/dev/null
shp role bind carol approver --env test,prod >/dev/null
shp role bind tina viewer --env test >/dev/null
shp role bind dave viewer --env test,prod >/dev/null

# record-only requests: done at once
expect_exit 0 "alice creates the system shop" as alice system create shop --json
expect_eq COMPLETED "$(jq -r .status <<<"$OUT")" "a system is record-only: completed at once"
expect_eq null "$(jq -r .ticket_id <<<"$OUT")" "and needs no ticket"
expect_exit 0 "alice adds the service web" as alice service create web --system shop --json
expect_exit 0 "dave creates another system" as dave system create other --json

# wait_request USER ID STATUS: poll the request until its status is STATUS (15 s)
wait_request() {
	local i=0 s=
	while [ $i -lt 150 ]; do
		s=$(as "$1" requests show "$2" --json 2>/dev/null | jq -r .status)
		[ "$s" = "$3" ] && return 0
		case "$s" in COMPLETED | FAILED | REJECTED | CANCELLED | EXPIRED) break ;; esac
		sleep 0.1
		i=$((i + 1))
	done
	echo "# request $2 is $s, not $3"
	return 1
}

# submit USER ARGS...: a request as USER; sets REQ and TICKET
submit() {
	local user=$1
	shift
	as "$user" "$@" --json >"$T/submit.json" 2>"$T/submit.err" || {
		echo "# $user $* failed: $(cat "$T/submit.err")"
		return 1
	}
	REQ=$(jq -r .request_id "$T/submit.json")
	TICKET=$(jq -r .ticket_id "$T/submit.json")
}

# approve USER TICKET [args]: approve and check the answer
approve() {
	local user=$1 ticket=$2
	shift 2
	as "$user" approvals approve "$ticket" "$@" --json >"$T/approve.json" 2>"$T/approve.err"
}

# each request type, in each environment, on each kind of cluster (one API simulator serves
# both KubeVirt clusters: their namespaces differ)
for cluster in sim-test sim-prod kv-test kv-prod; do
	env=${cluster#*-} ns=shop-${cluster#*-} vm=web-$cluster
	note "--- $cluster ($env)"
	expect_exit 0 "$env: CREATE_VM is submitted" submit alice vm create "$vm" --namespace "$ns" \
		--service web --template debian-12 --size small
	expect_eq PENDING_APPROVAL "$(jq -r .status "$T/submit.json")" "$env: CREATE_VM waits for a review"
	expect_eq 2 "$(jq -r .approval_level "$T/submit.json")" "$env: at level 2"
	expect_exit 5 "$env: alice (no approver) cannot approve" approve alice "$TICKET" --cluster "$cluster"
	expect_exit 0 "$env: bob approves it on $cluster" approve bob "$TICKET" --cluster "$cluster" --reason "capacity ok"
	expect_exit 0 "$env: the VM is created" wait_request alice "$REQ" COMPLETED
	expect_exit 0 "$env: alice sees it" as alice vm show "$vm" --json
	expect_eq 1 "$(jq -r .revision <<<"$OUT")" "$env: revision 1"
	expect_eq shop "$(jq -r .system <<<"$OUT")" "$env: owned by the system"

	# power operations: automatic in test, reviewed in prod
	for op in stop start restart; do
		expect_exit 0 "$env: ${op^^}_VM is submitted" submit alice vm "$op" "$vm"
		if [ "$env" = test ]; then
			expect_eq null "$TICKET" "$env: ${op^^}_VM needs no ticket"
		else
			expect_match '^[0-9]+$' "$TICKET" "$env: ${op^^}_VM needs a ticket"
			expect_exit 0 "$env: bob approves ${op^^}_VM" approve bob "$TICKET"
		fi
		expect_exit 0 "$env: ${op^^}_VM completes" wait_request alice "$REQ" COMPLETED
	done

	expect_exit 0 "$env: MODIFY_VM is submitted" submit alice vm modify "$vm" --cpus 2
	expect_match '^[0-9]+$' "$TICKET" "$env: MODIFY_VM needs a ticket"
	expect_exit 0 "$env: bob approves MODIFY_VM" approve bob "$TICKET"
	expect_exit 0 "$env: MODIFY_VM completes" wait_request alice "$REQ" COMPLETED
	expect_eq 2 "$(as alice vm show "$vm" --json | jq -r .revision)" "$env: revision 2"
	expect_match '^\+.*cpus: 2' "$(as alice vm diff "$vm" --from 1 --to 2 --no-color)" "$env: the diff shows the new CPUs"

	if [ "$env" = test ]; then
		expect_exit 2 "$env: DELETE_VM without --yes is refused (no prompt off a terminal)" as alice vm delete "$vm" </dev/null
		expect_exit 0 "$env: DELETE_VM with --yes" submit alice vm delete "$vm" --yes
	else
		expect_exit 7 "$env: DELETE_VM without the typed name is refused" as alice vm delete "$vm" --yes
		expect_exit 0 "$env: DELETE_VM with the name typed" submit alice vm delete "$vm" --confirm-name "$vm"
	fi
	expect_exit 0 "$env: bob approves DELETE_VM" approve bob "$TICKET"
	expect_exit 0 "$env: DELETE_VM completes" wait_request alice "$REQ" COMPLETED
	expect_exit 4 "$env: the VM is gone" as alice vm show "$vm"
done

note "--- the name is free again"
expect_exit 0 "web-sim-test can be asked for again" submit alice vm create web-sim-test \
	--namespace shop-test --service web --template debian-12 --size small
expect_exit 0 "bob approves it, on the KubeVirt cluster this time" approve bob "$TICKET" --cluster kv-test
expect_exit 0 "it is created through the KubeVirt provider" wait_request alice "$REQ" COMPLETED
expect_eq 200 "$(kube GET /apis/kubevirt.io/v1/namespaces/shop-test/virtualmachines/web-sim-test >/dev/null; kcode)" "the simulator has the VirtualMachine"
expect_match shepherd "$(jq -r '.metadata.labels["app.kubernetes.io/managed-by"]' "$T/kbody")" "labelled as shepherd's"

note "--- self-approval"
shp role bind sam approver --env test,prod >/dev/null
shp tenant grant shop sam member >/dev/null
expect_exit 0 "sam, an approver and a member of shop, asks for a VM" submit sam vm create sam-1 \
	--namespace shop-test --service web --template debian-12 --size small
expect_exit 5 "sam cannot approve his own request" approve sam "$TICKET" --cluster sim-test
expect_eq 403 "$(api_as sam POST "/api/v1/approvals/$TICKET/approve" -H 'Content-Type: application/json' -d '{"cluster": "sim-test"}' >/dev/null; code)" "403 over the API"
expect_eq SELF_APPROVAL "$(jq -r .error.code "$T/body")" "with the code SELF_APPROVAL"
expect_eq 2 "$(sql "SELECT count(*) FROM audit_log WHERE actor = 'sam' AND outcome = 'denied'")" "both attempts are audited as denied"

note "--- N-of-M"
expect_exit 0 "CREATE_VM in prod needs two approvers now" \
	shp policy set CREATE_VM --environment prod --level 3 --approvers 2
expect_exit 0 "a prod VM is asked for" submit alice vm create db-prod --namespace shop-prod \
	--service web --template debian-12 --size small
expect_eq 3 "$(jq -r .approval_level "$T/submit.json")" "at level 3"
expect_exit 0 "bob approves once" approve bob "$TICKET" --cluster sim-prod
expect_eq PENDING_APPROVAL "$(as alice requests show "$REQ" --json | jq -r .status)" "one approval is not enough"
approve bob "$TICKET" --cluster sim-prod
expect_eq PENDING_APPROVAL "$(as alice requests show "$REQ" --json | jq -r .status)" "the same approver counts once"
expect_exit 0 "carol approves too" approve carol "$TICKET" --cluster sim-prod
expect_exit 0 "two approvals carry it out" wait_request alice "$REQ" COMPLETED
expect_eq 2 "$(sql "SELECT count(*) FROM approval_decisions WHERE ticket_id = $TICKET AND decision = 'approve' AND invalidated_at IS NULL")" "two distinct approvals recorded"

note "--- visibility"
expect_exit 0 "tina (test only) lists VMs" as tina vm list --json
expect_eq 0 "$(jq '[.[] | select(.namespace == "shop-prod")] | length' <<<"$OUT")" "tina sees no prod VM"
expect_exit 4 "tina gets 404 for the prod VM" as tina vm show db-prod
expect_exit 4 "dave (another system) gets 404 for shop's VM" as dave vm show db-prod
expect_exit 4 "dave cannot stop it either (404, not 403)" as dave vm stop db-prod --yes
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE actor = 'dave' AND action = 'RBAC_VIOLATION'")" "the cross-system attempt is audited"
expect_exit 0 "bob (approver in prod) sees it" as bob vm show db-prod

note "--- operators"
shp role bind oscar operator --env prod >/dev/null
expect_exit 0 "oscar, an operator in prod (no member of shop), asks to restart db-prod" \
	submit oscar vm restart db-prod
expect_exit 0 "bob approves it" approve bob "$TICKET"
expect_exit 0 "the restart is carried out" wait_request oscar "$REQ" COMPLETED
expect_exit 4 "an operator of prod cannot touch shop's test VMs (404)" as oscar vm stop web-sim-test

note "--- the worker checks again"
expect_exit 0 "alice asks to stop db-prod" submit alice vm stop db-prod
expect_exit 0 "the executions queue is paused" shp queue pause executions
expect_exit 0 "bob approves" approve bob "$TICKET"
sql "DELETE FROM tenant_members WHERE tenant_id = 'shop' AND user_id = (SELECT id FROM users WHERE name = 'alice')" >/dev/null
expect_exit 0 "alice leaves the system before the worker runs it" shp queue resume executions
expect_exit 0 "the worker refuses it" wait_request alice "$REQ" FAILED
expect_eq 1 "$(sql "SELECT count(*) FROM execution_events e JOIN executions x ON x.id = e.execution_id WHERE x.event_id = $REQ AND e.type = 'rbac_violation'")" "an rbac_violation event is recorded"
expect_eq RUNNING "$(sql "SELECT status FROM vms WHERE name = 'db-prod' AND deleted_at IS NULL")" "and the VM was not stopped"

finish
