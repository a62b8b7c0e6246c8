#!/bin/bash
# The VM reads through the real daemon and CLI, with several users: VMs
# and revisions seeded as the execution path writes them (deflated YAML with size and hash);
# vm list and show answer only what a user may see (a member sees their system's VMs, a user of
# another system and a test-only approver on a prod VM get 404), a name in two namespaces is
# ambiguous (409 naming them), revisions, the diff of two revisions (the changed CPU line),
# the history, through real requests too (a create, a modify approved while --wait waits); a
# delete asks for the VM's name on a terminal and never prompts off one.
. "$top_srcdir/tests/helpers/lib.sh"

start_daemon_tls
J='Content-Type: application/json'
uid() { sql "SELECT id FROM users WHERE name = '$1'"; }
for u in alice bob tess; do user_token "$u" >/dev/null; done
sql "INSERT INTO role_bindings (user_id, role, allowed_environments) VALUES
	($(uid alice), 'viewer', '{test,prod}'), ($(uid bob), 'viewer', '{test,prod}'),
	($(uid tess), 'approver', '{test}')"
expect_exit 0 "a test namespace" shp namespace create team-a --environment test
expect_exit 0 "a prod namespace" shp namespace create pay-prod --environment prod
expect_exit 0 "a test cluster" shp cluster add sim1 --simulated --environment test
expect_exit 0 "a prod cluster" shp cluster add simp --simulated --environment prod
api_as alice POST /api/v1/systems -H "$J" -d '{"name": "shop"}' >/dev/null
expect_eq 202 "$(code)" "alice creates (and owns) system shop"
api_as bob POST /api/v1/systems -H "$J" -d '{"name": "other"}' >/dev/null
expect_eq 202 "$(code)" "bob creates system other"

# vm NAMESPACE SYSTEM CLUSTER CPUS: a VM row as the execution path leaves it
vm() {
	sql "INSERT INTO vms (cluster_id, namespace, name, system, service, owner_id, template,
		size, spec, cpus, memory_bytes, status)
	     SELECT c.id, '$2', '$1', '$3', 'front', $(uid alice), 'debian-12', 'small',
		'{\"name\": \"$1\", \"namespace\": \"$2\", \"cpus\": $5}', $5, 4294967296, 'RUNNING'
	       FROM clusters c WHERE c.name = '$4' RETURNING id" | head -n 1
}
# revision VM-ID VERSION YAML: the row shd_revision_add writes (zlib, size, SHA-256 of the YAML)
revision() {
	sql "$(python3 - "$@" <<'PY'
import hashlib, sys, zlib
vm, version, text = sys.argv[1], sys.argv[2], sys.argv[3].encode()
print("INSERT INTO vm_revisions (vm_id, version, spec_z, spec_size, spec_sha256, created_by)"
      " VALUES (%s, %s, '\\x%s', %d, '%s', 'alice');"
      " UPDATE vms SET revision = %s WHERE id = %s"
      % (vm, version, zlib.compress(text).hex(), len(text), hashlib.sha256(text).hexdigest(),
         version, vm))
PY
)"
}
web=$(vm web-1 team-a shop sim1 2)
vm web-1 pay-prod shop simp 2 >/dev/null
db=$(vm db-1 pay-prod shop simp 8)
vm db-2 pay-prod shop simp 8 >/dev/null
vm api-1 team-a other sim1 1 >/dev/null
revision "$web" 1 $'name: web-1\nnamespace: team-a\ncpus: 2\nsize: small\n'
revision "$web" 2 $'name: web-1\nnamespace: team-a\ncpus: 4\nsize: small\n'

# ---- visibility
expect_exit 0 "alice lists her VMs" as alice vm list -o json
expect_eq "db-1 db-2 web-1 web-1" "$(jq -r '[.[].name] | sort | join(" ")' <<<"$OUT")" \
	"those of her system in both environments, not bob's"
expect_exit 0 "bob lists his" as bob vm list -o json
expect_eq "api-1" "$(jq -r '[.[].name] | join(" ")' <<<"$OUT")" "only api-1"
expect_exit 0 "tess (approver in test) lists" as tess vm list -o json
expect_eq "api-1 web-1" "$(jq -r '[.[].name] | sort | join(" ")' <<<"$OUT")" \
	"every system's test VMs, no prod one"
expect_exit 4 "tess cannot see the prod VM db-1 (404, exit 4)" as tess vm show db-1
expect_match "not found" "$ERR" "it is just not found"
expect_exit 4 "bob cannot see alice's web-1" as bob vm show web-1
expect_exit 0 "a platform admin sees every VM" shp vm list -o json
expect_eq 5 "$(jq length <<<"$OUT")" "all five"
expect_exit 6 "web-1 is in two of alice's namespaces (409, exit 6)" as alice vm show web-1
expect_match "team-a" "$ERR" "the error names team-a"
expect_match "pay-prod" "$ERR" "and pay-prod"
api_as alice GET /api/v1/vms/web-1 >/dev/null
expect_eq 409 "$(code)" "409 over the API"
expect_eq "pay-prod,team-a" "$(jq -r .error.details.namespaces "$T/body")" "listing the namespaces"
expect_exit 0 "tess sees only one web-1: not ambiguous for her" as tess vm show web-1 -o json
expect_eq team-a "$(jq -r .namespace <<<"$OUT")" "the test one"
expect_exit 0 "alice shows web-1 in team-a" as alice vm show web-1 --namespace team-a -o json
expect_eq "RUNNING sim1 shop front alice debian-12 small 2 4Gi 2 2" \
	"$(jq -r '[.status, .cluster, .system, .service, .owner, .template, .size, .cpus, .memory, .revision, .spec.cpus] | join(" ")' <<<"$OUT")" \
	"status, cluster, system, service, owner, template, size, cpus, memory, revision, spec"
expect_exit 0 "the table view" as alice vm show web-1 --namespace team-a
expect_match "Spec:" "$OUT" "ends with the spec"

# ---- filters and pages
expect_exit 0 "--namespace and --system filter" as alice vm list --namespace team-a --system shop -o json
expect_eq "web-1" "$(jq -r '[.[].name] | join(" ")' <<<"$OUT")" "to one VM"
expect_exit 0 "--status filters" shp vm list --status STOPPED -o json
expect_eq 0 "$(jq length <<<"$OUT")" "none is stopped"
expect_exit 0 "--cluster filters" shp vm list --cluster simp -o json
expect_eq 3 "$(jq length <<<"$OUT")" "three on simp"
page=$(api GET '/api/v1/vms?limit=3')
cursor=$(jq -r .next_cursor <<<"$page")
expect_match '.' "$cursor" "a page of 3 of 5 has a next cursor"
expect_eq 2 "$(api GET "/api/v1/vms?limit=3&cursor=$cursor" | jq '.items | length')" "the next page has the rest"
api GET '/api/v1/vms?cursor=bogus' >/dev/null
expect_eq 400 "$(code)" "a bad cursor is 400"
api GET '/api/v1/vms?namespace=Bad_NS' >/dev/null
expect_eq 400 "$(code)" "a bad namespace filter is 400"
api GET '/api/v1/vms?status=running' >/dev/null
expect_eq 400 "$(code)" "an unknown status is 400"
expect_exit 7 "the CLI knows the statuses too (exit 7)" shp vm list --status sleeping
for q in 'from=x' 'to=0' 'from=-1' 'to=99999999999'; do
	api GET "/api/v1/vms/web-1/diff?namespace=team-a&$q" >/dev/null
	expect_eq 400 "$(code)" "diff ?$q is 400"
done
api GET '/api/v1/vms/web-1/revisions?namespace=team-a&limit=0' >/dev/null
expect_eq 400 "$(code)" "a limit of 0 is 400"
api GET '/api/v1/vms/web_1%20x' >/dev/null
expect_eq 400 "$(code)" "a hostile VM name is 400"

# ---- revisions and the diff
expect_exit 0 "revisions of web-1" as alice vm revisions web-1 --namespace team-a -o json
expect_eq "1 2" "$(jq -r '[.[].version] | join(" ")' <<<"$OUT")" "versions 1 and 2"
expect_exit 0 "vm diff --from 1 --to 2" as alice vm diff web-1 --namespace team-a --from 1 --to 2
expect_match '^-cpus: 2$' "$(grep -- '^-cpus' <<<"$OUT")" "removes the old CPU line"
expect_match '^\+cpus: 4$' "$(grep -- '^+cpus' <<<"$OUT")" "adds the new one"
expect_match '^@@ -1,4 \+1,4 @@' "$(grep '^@@' <<<"$OUT")" "in one hunk"
expect_exit 0 "vm diff without revisions: the latest against the one before" as alice vm diff web-1 --namespace team-a --json
expect_eq "1 2" "$(jq -r '"\(.from) \(.to)"' <<<"$OUT")" "1 against 2"
expect_match '\+cpus: 4' "$(jq -r .diff <<<"$OUT")" "the same change"
expect_exit 0 "a revision against itself" as alice vm diff web-1 --namespace team-a --from 2 --to 2
expect_eq "" "$OUT" "has no diff"
expect_exit 7 "a revision that does not exist (exit 7)" as alice vm diff web-1 --namespace team-a --to 3
expect_exit 4 "db-1 has no revision yet" as alice vm diff db-1
expect_exit 4 "bob cannot diff alice's VM" as bob vm diff web-1 --namespace team-a
sql "UPDATE vm_revisions SET spec_z = '\\x0102' WHERE vm_id = $web AND version = 1"
api_as alice GET "/api/v1/vms/web-1/diff?namespace=team-a&from=1&to=2" >/dev/null
expect_eq 500 "$(code)" "a damaged revision is a server error"
expect_match "corrupt" "$(grep -h 'corrupt' "$T"/*.log)" "logged as corrupt"
sql "DELETE FROM vm_revisions WHERE vm_id = $web AND version = 1"
revision "$web" 1 $'name: web-1\nnamespace: team-a\ncpus: 2\nsize: small\n'
sql "UPDATE vms SET revision = 2 WHERE id = $web"

# ---- history: the request with its ticket and decision, the revisions, a status change
ev=$(sql "INSERT INTO domain_events (type, payload, actor, tenant, status, created_at, finalized_at)
	VALUES ('CREATE_VM', '{\"spec\": {\"name\": \"web-1\", \"namespace\": \"team-a\"}}', 'alice',
		'shop', 'COMPLETED', now() - interval '1 hour', now()) RETURNING id" | head -n 1)
hash=$(printf '%064d' 7)
ticket=$(sql "INSERT INTO approval_tickets (event_id, request_type, status, requester, system,
		namespace, environment, target_name, vm_id, approval_level, plan_hash, expires_at,
		created_at)
	VALUES ($ev, 'CREATE_VM', 'COMPLETED', 'alice', 'shop', 'team-a', 'test', 'web-1', $web, 2,
		'$hash', now() + interval '1 day', now() - interval '1 hour') RETURNING id" | head -n 1)
sql "INSERT INTO approval_decisions (ticket_id, approver, decision, plan_hash, auth_method,
	principal, created_at) VALUES ($ticket, 'tess', 'approve', '$hash', 'token', 'token:3',
	now() - interval '50 minutes')"
sql "INSERT INTO domain_events (type, payload, actor, status, finalized_at)
	VALUES ('VM_STATUS_CHANGE', '{\"vm_id\": $web, \"from\": \"STOPPED\", \"to\": \"RUNNING\"}',
		'shepherdd', 'COMPLETED', now())"
sql "INSERT INTO domain_events (type, payload, actor, status, finalized_at)
	VALUES ('VM_STATUS_CHANGE', '{\"vm_id\": $db, \"from\": \"STOPPED\", \"to\": \"RUNNING\"}',
		'shepherdd', 'COMPLETED', now())"
expect_exit 0 "vm history" as alice vm history web-1 --namespace team-a -o json
expect_eq "request decision revision revision status" "$(jq -r '[.[].kind] | join(" ")' <<<"$OUT")" \
	"request, decision, revisions, status change, in time order"
expect_eq "CREATE_VM $ticket" "$(jq -r '.[0] | "\(.what) \(.details.ticket_id)"' <<<"$OUT")" "the request with its ticket"
expect_eq "approve $hash" "$(jq -r '.[1] | "\(.what) \(.details.plan_hash)"' <<<"$OUT")" "the decision with its plan hash"
expect_eq "STOPPED -> RUNNING" "$(jq -r '.[-1].what' <<<"$OUT")" "the watcher's status change, of this VM only"
expect_eq 5 "$(jq length <<<"$OUT")" "five entries"
page=$(api GET "/api/v1/vms/web-1/history?namespace=team-a&limit=2")
cursor=$(jq -r .next_cursor <<<"$page")
expect_eq revision "$(api GET "/api/v1/vms/web-1/history?namespace=team-a&limit=2&cursor=$cursor" | jq -r '.items[0].kind')" \
	"the history pages on"
api GET "/api/v1/vms/web-1/history?namespace=team-a&cursor=$(printf 'x|y|z' | base64)" >/dev/null
expect_eq 400 "$(code)" "a forged history cursor is 400"
expect_exit 0 "the history as a table" as alice vm history web-1 --namespace team-a
expect_match "decision +[0-9]+ +tess +approve" "$OUT" "one line per entry"

# ---- the delete confirmation: never a prompt off a terminal
expect_exit 2 "deleting a test VM off a terminal without --yes (exit 2: no prompt)" \
	as alice vm delete web-1 --namespace team-a </dev/null
expect_match "pass --yes" "$ERR" "names --yes"
expect_exit 2 "deleting a prod VM off a terminal (exit 2: no prompt)" as alice vm delete db-1 </dev/null
expect_match "pass --confirm-name db-1" "$ERR" "names --confirm-name"
expect_exit 7 "--yes is not enough in prod" as alice vm delete db-1 --yes </dev/null
expect_match "confirm-name" "$ERR" "it still needs the name"
expect_eq 0 "$(sql "SELECT count(*) FROM domain_events WHERE type = 'DELETE_VM'")" "nothing was requested"
# on a terminal, vm delete asks for the name (a pseudo-terminal through script(1))
on_tty() { # INPUT CLI-ARGS...: the CLI as alice on a pseudo-terminal, INPUT typed
	local input=$1
	shift
	printf '%s\n' "$input" | SHEPHERD_TOKEN=$(user_token alice) pty_run "'$SHEPHERD' \
		--server 'https://127.0.0.1:$TLS_PORT' --cacert '$T/pki/ca.crt' $*"
}
expect_exit 1 "on a terminal, another name typed deletes nothing (exit 1)" on_tty db-3 vm delete db-2
expect_match "Type its name" "$OUT" "the name was asked for"
expect_match "does not match" "$OUT" "and the answer refused"
expect_eq 0 "$(sql "SELECT count(*) FROM domain_events WHERE type = 'DELETE_VM'")" "still nothing requested"
expect_exit 0 "the name typed requests the delete" on_tty db-2 vm delete db-2
expect_match "DELETE_VM: PENDING_APPROVAL" "$OUT" "which waits for approval"
expect_exit 0 "with --confirm-name the delete is requested" as alice vm delete db-1 --confirm-name db-1 -o json
expect_eq "DELETE_VM PENDING_APPROVAL" "$(jq -r '"\(.type) \(.status)"' <<<"$OUT")" "and waits for approval"
dticket=$(jq -r .ticket_id <<<"$OUT")
expect_exit 1 "vm stop --wait follows the request to its failed end (exit 1)" \
	as alice vm stop web-1 --namespace team-a --wait
expect_match "request [0-9]+ ended FAILED: .*not found" "$ERR" "the error names the request and why"
expect_match "^request [0-9]+ STOP_VM: [A-Z_]+, task [0-9]+" "$OUT" "a line names the request, its status and task"
expect_match "STOP_VM: FAILED" "$OUT" "the final status is shown"
expect_exit 0 "the history has the executions" as alice vm history web-1 --namespace team-a -o json
expect_eq "failed" "$(jq -r '[.[] | select(.kind == "execution")][-1].what' <<<"$OUT")" "the last one failed"
expect_eq "STOP_VM" "$(jq -r '[.[] | select(.kind == "request")][-1].what' <<<"$OUT")" "after the stop request"
expect_exit 0 "the prod VM's history has the request" as alice vm history db-1 -o json
expect_eq "DELETE_VM $dticket" "$(jq -r '[.[] | select(.kind == "request")][0] | "\(.what) \(.details.ticket_id)"' <<<"$OUT")" \
	"with its ticket"

# ---- through real requests: a create without review, a modify approved while --wait waits
api_as alice POST /api/v1/services -H "$J" -d '{"name": "front", "system": "shop"}' >/dev/null
expect_eq 202 "$(code)" "alice's service front"
expect_exit 0 "CREATE_VM in test without review" shp policy set CREATE_VM --environment test --level 0
expect_exit 0 "vm create --wait runs to its end" as alice vm create web-9 --namespace team-a \
	--service front --template debian-12 --size small --cpus 2 --cluster sim1 --wait
expect_match "CREATE_VM: COMPLETED" "$OUT" "the request COMPLETED"
as alice vm modify web-9 --cpus 4 --wait >"$T/modify.out" 2>"$T/modify.err" &
waiter=$!
for _ in $(seq 1 300); do
	mtid=$(sql "SELECT id FROM approval_tickets WHERE request_type = 'MODIFY_VM' AND target_name = 'web-9'")
	[ -n "$mtid" ] && break
	sleep 0.1
done
expect_match '^[0-9]+$' "$mtid" "the modify waits as a ticket"
expect_exit 0 "tess approves it" as tess approvals approve "$mtid" --cluster sim1
wait "$waiter"
expect_eq 0 "$?" "vm modify --wait returns once the approved change is done"
expect_match "MODIFY_VM: COMPLETED" "$(cat "$T/modify.out")" "and says so"
expect_exit 0 "vm diff web-9: revision 1 against 2" as alice vm diff web-9
expect_eq "-cpus: 2 +cpus: 4" "$(grep -E '^[-+]cpus' <<<"$OUT" | tr '\n' ' ' | sed 's/ $//')" \
	"the CPU line changed, and only that"
expect_exit 0 "its history" as alice vm history web-9 -o json
expect_eq "request execution revision request decision execution revision" \
	"$(jq -r '[.[] | select(.kind != "status") | .kind] | join(" ")' <<<"$OUT")" \
	"each request with its decision, task and revision, in order"
expect_eq "$(sql "SELECT approved_plan_hash FROM approval_tickets WHERE id = $mtid")" \
	"$(jq -r '.[] | select(.kind == "decision") | .details.plan_hash' <<<"$OUT")" \
	"the decision carries the approved plan hash"
expect_eq "$(sql "SELECT plan_hash FROM vm_revisions r JOIN vms v ON v.id = r.vm_id WHERE v.name = 'web-9' AND r.version = 2")" \
	"$(jq -r '[.[] | select(.kind == "execution")][-1].details.plan_hash' <<<"$OUT")" \
	"the task ran that plan, and revision 2 records it"

finish
