#!/bin/bash
# The approvers' side, with several users over TLS: the workbench (only the caller's
# environments, oldest first, days pending and priority tier, keyset pages), a ticket's view,
# self-approval refused, N-of-M with one vote per approver, environment and capability checks,
# modification (immutable fields, removed required fields, the five-field warning, the preview
# diff), approvals voided by a modification, an approved ticket sent back before its task
# starts, rejection with the requester's notification, bad input, and the terminal: tiers in
# colour (never with NO_COLOR or --no-color), a coloured preview diff, the readline question.
. "$top_srcdir/tests/helpers/lib.sh"

start_daemon_tls
J='Content-Type: application/json'
for u in alice bob carol dave erin; do user_token "$u" >/dev/null; done
uid() { sql "SELECT id FROM users WHERE name = '$1'"; }
ALICE=$(uid alice)
bind() { api PUT "/api/v1/rolebindings/$1/approver" -H "$J" -d "{\"allowed_environments\": $2}" >/dev/null; code; }
expect_eq "200 200 200 200 200" "$(bind alice '["test"]') $(bind bob '["test","prod"]') $(bind carol '["test"]') $(bind dave '["prod"]') $(bind erin '["test","prod"]')" \
	"approvers: alice and carol in test, dave in prod, bob and erin in both"
api PUT /api/v1/rolebindings/alice/viewer -H "$J" -d '{"allowed_environments": ["test", "prod"]}' >/dev/null
expect_eq 200 "$(code)" "alice sees both environments"

expect_exit 0 "a test namespace" shp namespace create team-t --environment test
expect_exit 0 "a prod namespace" shp namespace create team-p --environment prod
expect_exit 0 "a test cluster" shp cluster add sim-t --simulated --environment test
expect_exit 0 "a prod cluster" shp cluster add sim-p --simulated --environment prod
api_as alice POST /api/v1/systems -H "$J" -d '{"name": "sys-a"}' >/dev/null
api_as alice POST /api/v1/services -H "$J" -d '{"name": "web", "system": "sys-a"}' >/dev/null
expect_eq 202 "$(code)" "alice's system and service"
# CREATE_VM in prod needs two approvers (level 3)
api PUT /api/v1/policies/CREATE_VM/prod -H "$J" \
	-d '{"level": 3, "approvers_required": 2, "runbook_url": "https://runbooks.invalid/vm-create"}' >/dev/null
expect_eq 200 "$(code)" "CREATE_VM in prod: level 3, two approvers"

# request NAME NAMESPACE [SIZE]: alice asks for a VM; prints the ticket id
request() {
	local spec body
	spec=$(jq -nc --arg ns "$2" --arg n "$1" --arg size "${3:-small}" \
		'{name: $n, namespace: $ns, service: "web", template: "debian-12", size: $size,
		  cpus: 2, memory: "2Gi", storage_class: "standard", description: "a test VM", run: true}')
	body=$(api_as alice POST /api/v1/vms -H "$J" -d "$spec")
	[ "$(code)" = 202 ] || { echo "request $1 failed: $(code) $body" >&2; return 1; }
	jq -r .ticket_id <<<"$body"
}
T_OLD=$(request vm-old team-t)
T_MID=$(request vm-mid team-t)
T_NEW=$(request vm-new team-t)
T_PROD=$(request vm-prod team-p)
T_GPU=$(request vm-gpu team-t gpu-small)
expect_match '^[0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+$' "$T_OLD $T_MID $T_NEW $T_PROD $T_GPU" "five requests wait as tickets"
expect_eq "3 2" "$(sql "SELECT approval_level || ' ' || approvals_required FROM approval_tickets WHERE id = $T_PROD")" \
	"the prod one at level 3 with two approvers"
sql "UPDATE approval_tickets SET created_at = now() - interval '10 days 1 hour' WHERE id = $T_OLD;
     UPDATE approval_tickets SET created_at = now() - interval '5 days' WHERE id = $T_MID;
     UPDATE approval_tickets SET created_at = now() - interval '9 days' WHERE id = $T_PROD"

# ---- the workbench ----------------------------------------------------------------------------
body=$(api_as bob GET '/api/v1/approvals')
expect_eq 200 "$(code)" "bob's workbench answers"
expect_eq "$T_OLD $T_PROD $T_MID $T_NEW $T_GPU" "$(jq -r '[.items[].id] | join(" ")' <<<"$body")" \
	"oldest first across bob's environments"
expect_eq "10 urgent" "$(jq -r ".items[] | select(.id == $T_OLD) | \"\(.days_pending) \(.priority_tier)\"" <<<"$body")" \
	"10 days pending is urgent"
expect_eq "5 warning" "$(jq -r ".items[] | select(.id == $T_MID) | \"\(.days_pending) \(.priority_tier)\"" <<<"$body")" \
	"5 days pending is a warning"
expect_eq "0 normal 0/1" "$(jq -r ".items[] | select(.id == $T_NEW) | \"\(.days_pending) \(.priority_tier) \(.approvals)/\(.approvals_required)\"" <<<"$body")" \
	"a new ticket is normal, with approvals so far over required"
body=$(api_as carol GET '/api/v1/approvals')
expect_eq "$T_OLD $T_MID $T_NEW $T_GPU" "$(jq -r '[.items[].id] | join(" ")' <<<"$body")" \
	"carol (approver in test only) sees no prod ticket"
body=$(api_as bob GET '/api/v1/approvals?environment=prod')
expect_eq "$T_PROD" "$(jq -r '[.items[].id] | join(" ")' <<<"$body")" "filter by environment"
body=$(api_as bob GET "/api/v1/approvals?requester=alice&type=CREATE_VM&namespace=team-t")
expect_eq 4 "$(jq '.items | length' <<<"$body")" "filter by requester, type and namespace"
api_as bob GET '/api/v1/approvals?type=NOPE' >/dev/null
expect_eq 400 "$(code)" "an unknown type is a 400"
api_as bob GET '/api/v1/approvals?sort=name' >/dev/null
expect_eq 400 "$(code)" "an unknown order is a 400"
api_as bob GET '/api/v1/approvals?cursor=!!!' >/dev/null
expect_eq 400 "$(code)" "a malformed cursor is a 400"
api_as alice GET '/api/v1/approvals' >"$T/alice.json"
expect_eq 200 "$(code)" "an approver in test only lists too"

# keyset pages of one: the same order, each ticket once
ids="" cursor=""
for _ in 1 2 3 4 5 6; do
	page=$(api_as bob GET "/api/v1/approvals?limit=2${cursor:+&cursor=$cursor}")
	ids="$ids $(jq -r '[.items[].id] | join(" ")' <<<"$page")"
	cursor=$(jq -r '.next_cursor // empty' <<<"$page")
	[ -n "$cursor" ] || break
done
expect_eq "$T_OLD $T_PROD $T_MID $T_NEW $T_GPU" "$(echo $ids)" "pages of two walk the same order"

expect_exit 0 "the CLI workbench" as bob approvals list
expect_match 'DAYS +TIER' "$OUT" "the table has DAYS and TIER"
expect_match "urgent" "$OUT" "and the tiers"
if printf '%s' "$OUT" | grep -q $'\033'; then fail "no colour off a terminal"; else pass "no colour off a terminal"; fi
expect_exit 0 "the CLI workbench as JSON" as bob approvals list --type CREATE_VM --environment prod --json
expect_eq "$T_PROD" "$(jq -r '.[].id' <<<"$OUT")" "--json gives the API's items"

# ---- visibility ------------------------------------------------------------------------------
api_as carol GET "/api/v1/approvals/$T_PROD" >/dev/null
expect_eq 404 "$(code)" "a prod ticket does not exist for an approver in test only"
api_as carol POST "/api/v1/approvals/$T_PROD/approve" -H 'Content-Type: application/json' \
	-d '{"cluster": "sim-p"}' >/dev/null
expect_eq 404 "$(code)" "nor can it be approved by them"
body=$(api_as alice GET "/api/v1/approvals/$T_PROD")
expect_eq 200 "$(code)" "the requester sees her ticket"
expect_eq "vm-prod 2" "$(jq -r '"\(.effective_spec.name) \(.approvals_required)"' <<<"$body")" \
	"with the effective spec and the quorum"
expect_eq "https://runbooks.invalid/vm-create" "$(jq -r .runbook_url <<<"$body")" "and the runbook of its policy"
api_as alice POST "/api/v1/approvals/$T_PROD/approve" -H 'Content-Type: application/json' \
	-d '{"cluster": "sim-p"}' >/dev/null
expect_eq 403 "$(code)" "a requester who is not an approver there may not approve"

# ---- self-approval ----------------------------------------------------------------------------
body=$(api_as alice POST "/api/v1/approvals/$T_NEW/approve" -H 'Content-Type: application/json' -d '{"cluster": "sim-t"}')
expect_eq "403 SELF_APPROVAL" "$(code) $(jq -r .error.code <<<"$body")" "an approver may not approve her own request"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'APPROVAL_APPROVED' AND outcome = 'denied' AND actor = 'alice' AND resource_name = '$T_NEW'")" \
	"the refusal is audited as denied"
expect_exit 0 "show the ticket" as alice approvals show "$T_NEW"

# ---- cluster checks ---------------------------------------------------------------------------
body=$(api_as bob POST "/api/v1/approvals/$T_NEW/approve" -H 'Content-Type: application/json' -d '{}')
expect_eq "400 cluster" "$(code) $(jq -r .error.details.field <<<"$body")" "no cluster at all is a 400 naming it"
expect_exit 2 "the CLI names --cluster" as bob approvals approve "$T_NEW"
expect_match '--cluster' "$ERR" "the CLI says to pass --cluster"
body=$(api_as bob POST "/api/v1/approvals/$T_NEW/approve" -H 'Content-Type: application/json' -d '{"cluster": "sim-p"}')
expect_eq "409 ENVIRONMENT_MISMATCH" "$(code) $(jq -r .error.code <<<"$body")" "a prod cluster for a test namespace"
expect_eq "prod test" "$(jq -r '"\(.error.details.cluster_environment) \(.error.details.namespace_environment)"' <<<"$body")" \
	"naming both environments"
body=$(api_as bob POST "/api/v1/approvals/$T_GPU/approve" -H 'Content-Type: application/json' -d '{"cluster": "sim-t"}')
expect_eq "409 CAPABILITY_MISSING" "$(code) $(jq -r .error.code <<<"$body")" "a GPU size on a cluster without GPUs"
expect_match 'gpu' "$(jq -r .error.details.missing <<<"$body")" "listing what is missing"
body=$(api_as bob POST "/api/v1/approvals/$T_NEW/approve" -H 'Content-Type: application/json' \
	-d "{\"cluster\": \"sim-t\", \"plan_hash\": \"$(printf '%064d' 0)\"}")
expect_eq "409 APPROVAL_INVALIDATED" "$(code) $(jq -r .error.code <<<"$body")" "a plan hash that is not the plan's"

# ---- N of M -----------------------------------------------------------------------------------
expect_exit 0 "bob approves the prod ticket" as bob approvals approve "$T_PROD" --cluster sim-p --reason "looks fine"
expect_match '1 of 2' "$OUT" "one of two approvals"
expect_exit 0 "bob approves it again" as bob approvals approve "$T_PROD" --cluster sim-p
expect_match 'already' "$OUT" "the same approver counts once"
expect_eq "1 PENDING_APPROVAL" "$(sql "SELECT count(*) FILTER (WHERE decision = 'approve') || ' ' || min(t.status::text) FROM approval_decisions d JOIN approval_tickets t ON t.id = d.ticket_id WHERE t.id = $T_PROD")" \
	"one decision, the ticket still pending"
expect_eq "token token:" "$(sql "SELECT auth_method || ' ' || left(principal, 6) FROM approval_decisions WHERE ticket_id = $T_PROD")" \
	"the decision records the auth method and principal"
expect_exit 0 "dave completes the quorum" as dave approvals approve "$T_PROD" --cluster sim-p -o json
task=$(jq -r .task_id <<<"$OUT")
expect_match '^[0-9]+$' "$task" "the last approval submits a task"
expect_match "^(APPROVED|EXECUTING) PROCESSING $task\$" "$(sql "SELECT t.status || ' ' || e.status || ' ' || t.execution_id FROM approval_tickets t JOIN domain_events e ON e.id = t.event_id WHERE t.id = $T_PROD")" \
	"ticket APPROVED, event PROCESSING, the task recorded"
expect_eq "$(sql "SELECT approved_plan_hash FROM approval_tickets WHERE id = $T_PROD")" \
	"$(sql "SELECT approved_plan_hash FROM executions WHERE id = $task")" "the task carries the approved hash"
expect_eq 2 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'APPROVAL_APPROVED' AND outcome = 'success' AND resource_name = '$T_PROD'")" \
	"both approvals are audited"

# two approvers at the same moment: the ticket's lock lets exactly one complete the quorum
T_RACE=$(request vm-race team-p)
racers=""
for u in bob dave; do
	token=$(user_token $u)
	curl -s -o "$T/race-$u.json" -w '%{http_code}' -X POST --cacert "$T/pki/ca.crt" \
		-H "Authorization: Bearer $token" -H "$J" -d '{"cluster": "sim-p"}' \
		"https://127.0.0.1:$TLS_PORT/api/v1/approvals/$T_RACE/approve" >"$T/race-$u.code" &
	racers="$racers $!"
done
wait $racers
expect_eq "200 202" "$(printf '%s\n%s\n' "$(cat "$T/race-bob.code")" "$(cat "$T/race-dave.code")" | sort | paste -sd ' ')" \
	"one approval counts, the other completes the quorum"
expect_eq "2 1" "$(sql "SELECT (SELECT count(*) FROM approval_decisions WHERE ticket_id = $T_RACE) || ' ' || (SELECT count(*) FROM executions x JOIN approval_tickets t ON t.event_id = x.event_id WHERE t.id = $T_RACE)")" \
	"two decisions, one execution"

# ---- modification -----------------------------------------------------------------------------
spec=$(api_as bob GET "/api/v1/approvals/$T_MID" | jq -c .effective_spec)
preview() { api_as bob POST "/api/v1/admin/approvals/$T_MID/preview" -H 'Content-Type: application/json' -d "$1"; }
body=$(preview "{\"spec\": $(jq -c '.namespace = "team-p"' <<<"$spec")}")
expect_eq "400 IMMUTABLE_FIELD" "$(code) $(jq -r .error.code <<<"$body")" "the namespace cannot change"
body=$(preview "{\"spec\": $(jq -c 'del(.template)' <<<"$spec")}")
expect_eq "400 REQUIRED_FIELD_REMOVED" "$(code) $(jq -r .error.code <<<"$body")" "a required field cannot go"
body=$(preview "{\"spec\": $(jq -c 'del(.cpus, .memory, .storage_class, .description, .run)' <<<"$spec")}")
expect_eq "200 5" "$(code) $(jq -r .removed_fields <<<"$body")" "five fields may go"
expect_match 'fields of the request are removed' "$(jq -r '.warnings[0]' <<<"$body")" "with a warning"
expect_exit 0 "the CLI preview" as bob approvals preview "$T_MID" --set cpu=4 --set memory=8Gi --cluster sim-t
expect_match '^-cpus: 2' "$OUT" "the diff removes the old CPUs"
expect_match '^\+cpus: 4' "$OUT" "and adds the new"
expect_match '\+memory: 8Gi' "$OUT" "and the memory"
expect_match '^--- requested' "$OUT" "a unified diff"
expect_match 'plan hash: [0-9a-f]{64}' "$ERR" "the new plan hash"
expect_exit 2 "--set and --file together" as bob approvals preview "$T_MID" --set cpu=4 --file /dev/null
expect_exit 2 "an unknown --set key" as bob approvals preview "$T_MID" --set colour=blue
expect_exit 2 "modify refuses to ask off a terminal" as bob approvals modify "$T_MID" --set cpu=4 --reason bigger </dev/null

# a stale hash after a modification
old_hash=$(api_as bob GET "/api/v1/approvals/$T_MID?cluster=sim-t" | jq -r .current_plan_hash)
expect_match '^[0-9a-f]{64}$' "$old_hash" "the ticket shows its plan hash for a cluster"
expect_exit 0 "erin modifies the spec" as erin approvals modify "$T_MID" --set cpu=4 --reason "needs more CPU" --yes
expect_eq "4 erin needs more CPU" "$(sql "SELECT (modified_spec->>'cpus') || ' ' || modified_by || ' ' || modification_reason FROM approval_tickets WHERE id = $T_MID")" \
	"modified_spec is stored with who and why"
expect_eq 2 "$(sql "SELECT (payload->'spec'->>'cpus') FROM domain_events e JOIN approval_tickets t ON t.event_id = e.id WHERE t.id = $T_MID")" \
	"the request itself never changes"
body=$(api_as bob POST "/api/v1/approvals/$T_MID/approve" -H 'Content-Type: application/json' \
	-d "{\"cluster\": \"sim-t\", \"plan_hash\": \"$old_hash\"}")
expect_eq "409 APPROVAL_INVALIDATED" "$(code) $(jq -r .error.code <<<"$body")" "the hash seen before the modification is stale"
body=$(api_as bob PUT "/api/v1/admin/approvals/$T_MID/spec" -H 'Content-Type: application/json' -d "{\"spec\": $spec}")
expect_eq 400 "$(code)" "a modification needs a reason"
api_as bob PUT "/api/v1/admin/approvals/$T_MID/spec" -H 'Content-Type: application/json' \
	-d "{\"spec\": $(jq -c '.service = "other"' <<<"$spec"), \"reason\": \"x\"}" >"$T/imm.json"
expect_eq "400 IMMUTABLE_FIELD" "$(code) $(jq -r .error.code "$T/imm.json")" "nor the service"

# approvals voided by a modification (level 3, one of two approvals in)
T_Q=$(request vm-quorum team-p)
expect_exit 0 "bob approves the quorum ticket" as bob approvals approve "$T_Q" --cluster sim-p
expect_exit 0 "erin changes it" as erin approvals modify "$T_Q" --set memory=4Gi --reason "less memory" --yes
expect_match '1 approval' "$OUT" "the CLI reports the voided approval"
expect_eq "0 1" "$(sql "SELECT count(*) FILTER (WHERE invalidated_at IS NULL) || ' ' || count(*) FILTER (WHERE invalidated_at IS NOT NULL) FROM approval_decisions WHERE ticket_id = $T_Q")" \
	"bob's approval is invalidated"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'APPROVAL_INVALIDATED' AND resource_name = '$T_Q'")" \
	"and the invalidation audited"

# another cluster than the ticket had voids the earlier approvals
expect_exit 0 "a second prod cluster" shp cluster add sim-p2 --simulated --environment prod
T_MOVE=$(request vm-move team-p)
expect_exit 0 "bob approves on sim-p" as bob approvals approve "$T_MOVE" --cluster sim-p
expect_exit 0 "dave approves on sim-p2" as dave approvals approve "$T_MOVE" --cluster sim-p2 -o json
expect_eq "PENDING_APPROVAL 1 null" "$(jq -r '"\(.status) \(.approvals) \(.task_id)"' <<<"$OUT")" \
	"bob's approval of the other cluster does not count"
expect_eq "sim-p2 1" "$(sql "SELECT c.name || ' ' || count(*) FILTER (WHERE d.invalidated_at IS NOT NULL) FROM approval_tickets t JOIN clusters c ON c.id = t.cluster_id JOIN approval_decisions d ON d.ticket_id = t.id WHERE t.id = $T_MOVE GROUP BY c.name")" \
	"the ticket moved to sim-p2 and bob's approval is invalidated"

# an approved ticket whose task has not started goes back
expect_exit 0 "hold the executions queue" shp queue pause executions
T_BACK=$(request vm-back team-t)
expect_exit 0 "carol approves" as carol approvals approve "$T_BACK" --cluster sim-t -o json
back_task=$(jq -r .task_id <<<"$OUT")
expect_exit 0 "bob modifies the approved ticket" as bob approvals modify "$T_BACK" --set cpu=3 --reason "three" --yes -o json
expect_eq "PENDING_APPROVAL $back_task" "$(jq -r '"\(.status) \(.cancelled_task_id)"' <<<"$OUT")" \
	"it is pending again and its task is cancelled"
expect_eq "PENDING_APPROVAL cancelled" "$(sql "SELECT t.status || ' ' || x.status FROM approval_tickets t, executions x WHERE t.id = $T_BACK AND x.id = $back_task")" \
	"in the database too"
expect_exit 0 "it can be approved again" as carol approvals approve "$T_BACK" --cluster sim-t -o json
expect_eq APPROVED "$(sql "SELECT status FROM approval_tickets WHERE id = $T_BACK")" "approved with the new plan"
expect_exit 0 "release the executions queue" shp queue resume executions

# ---- bad input --------------------------------------------------------------------------------
post() { api_as bob POST "$1" -H "$J" -d "$2" >/dev/null; code; }
expect_eq 400 "$(post "/api/v1/approvals/$T_NEW/approve" '{"cluster": ')" "malformed JSON"
expect_eq 400 "$(post "/api/v1/approvals/$T_NEW/approve" '{"clusters": "sim-t"}')" "an unknown field"
expect_eq 400 "$(post "/api/v1/approvals/$T_NEW/approve" '{"cluster": 7}')" "a cluster that is not a string"
expect_eq 400 "$(post "/api/v1/approvals/$T_NEW/approve" '{"cluster": "sim-t", "plan_hash": "ABC"}')" "a plan hash that is not one"
expect_eq 404 "$(post "/api/v1/approvals/$T_NEW/approve" '{"cluster": "nope"}')" "an unknown cluster"
expect_eq 400 "$(post "/api/v1/approvals/$T_NEW/approve" '{"cluster": "Bad Name"}')" "a hostile cluster name"
expect_eq 400 "$(post "/api/v1/approvals/$T_NEW/reject" "{\"reason\": \"$(printf 'x%.0s' {1..1025})\"}")" "a reason over 1024 bytes"
expect_eq 400 "$(post "/api/v1/approvals/$T_NEW/reject" '{"reason": "a\u0001b"}')" "a reason with control characters"
expect_eq 400 "$(post "/api/v1/admin/approvals/$T_NEW/preview" '{"spec": "cpus: 4"}')" "a spec that is not an object"
expect_eq 400 "$(post "/api/v1/admin/approvals/$T_NEW/preview" "{\"spec\": $(jq -c '.gpu = true' <<<"$spec")}")" "a spec with an unknown field"
api_as bob GET /api/v1/approvals/abc >/dev/null
expect_eq 404 "$(code)" "a ticket id that is not a number"
api_as bob GET '/api/v1/approvals?limit=0' >/dev/null
expect_eq 400 "$(code)" "a page size of 0"

# ---- on a terminal ------------------------------------------------------------------------------
# tty CMD...: the CLI as bob with its output on a pseudo-terminal (script), stdin passed through
tty() {
	local cmd="'$SHEPHERD' --server https://127.0.0.1:$TLS_PORT --cacert '$T/pki/ca.crt'"
	for a in "$@"; do cmd="$cmd '$a'"; done
	SHEPHERD_TOKEN=$(user_token bob) TERM=xterm pty_run "$cmd"
}
out=$(unset NO_COLOR; tty approvals list </dev/null)
expect_match $'\033\\[31m.*urgent' "$out" "urgent tickets are red on a terminal"
expect_match $'\033\\[33m.*warning' "$out" "warnings yellow"
out=$(NO_COLOR=1 tty approvals list </dev/null)
if printf '%s' "$out" | grep -q $'\033\\['; then fail "NO_COLOR: no colour"; else pass "NO_COLOR: no colour"; fi
out=$(unset NO_COLOR; tty --no-color approvals list </dev/null)
if printf '%s' "$out" | grep -q $'\033\\['; then fail "--no-color: no colour"; else pass "--no-color: no colour"; fi
out=$(unset NO_COLOR; tty approvals preview "$T_NEW" --set cpu=4 </dev/null)
expect_match $'\033\\[32m\\+cpus: 4' "$out" "the preview's additions are green on a terminal"
out=$(printf 'n\n' | tty approvals modify "$T_NEW" --set cpu=3 --reason "three")
expect_match 'Replace the spec of ticket' "$out" "modify asks on a terminal"
expect_eq "" "$(sql "SELECT modified_spec FROM approval_tickets WHERE id = $T_NEW")" "and 'n' changes nothing"
out=$(printf 'y\n' | tty approvals modify "$T_NEW" --set cpu=3 --reason "three")
expect_eq 3 "$(sql "SELECT modified_spec->>'cpus' FROM approval_tickets WHERE id = $T_NEW")" "'y' modifies"

# ---- reject -----------------------------------------------------------------------------------
expect_exit 2 "reject needs --reason" as carol approvals reject "$T_OLD" </dev/null
api_as carol POST "/api/v1/approvals/$T_OLD/reject" -H 'Content-Type: application/json' -d '{"reason": ""}' >/dev/null
expect_eq 400 "$(code)" "an empty reason is refused"
expect_exit 0 "carol rejects" as carol approvals reject "$T_OLD" --reason "no budget this quarter"
expect_eq "REJECTED CANCELLED no budget this quarter" "$(sql "SELECT t.status || ' ' || e.status || ' ' || t.reason FROM approval_tickets t JOIN domain_events e ON e.id = t.event_id WHERE t.id = $T_OLD")" \
	"ticket REJECTED with the reason, event CANCELLED"
expect_eq "no budget this quarter" "$(sql "SELECT body FROM notifications WHERE user_id = $ALICE AND ticket_id = $T_OLD AND type = 'APPROVAL_REJECTED'")" \
	"the requester is told, with the reason"
api_as bob POST "/api/v1/approvals/$T_OLD/approve" -H 'Content-Type: application/json' -d '{"cluster": "sim-t"}' >"$T/late.json"
expect_eq "409 ILLEGAL_TRANSITION" "$(code) $(jq -r .error.code "$T/late.json")" "a rejected ticket cannot be approved"
body=$(api_as bob GET "/api/v1/approvals?status=REJECTED")
expect_eq "$T_OLD" "$(jq -r '[.items[].id] | join(" ")' <<<"$body")" "the workbench filters by status"

# ---- a record-only request under review: every approver decides it, approving records it
api PUT /api/v1/policies/CREATE_SERVICE/any -H "$J" -d '{"level": 2, "runbook_url": "https://runbooks.invalid/services"}' >/dev/null
expect_eq 200 "$(code)" "services need a review"
body=$(api_as alice POST /api/v1/services -H "$J" -d '{"name": "api", "system": "sys-a"}')
T_SVC=$(jq -r .ticket_id <<<"$body")
expect_eq "202 PENDING_APPROVAL" "$(code) $(jq -r .status <<<"$body")" "a service request waits as a ticket"
expect_eq "$T_SVC" "$(api_as dave GET '/api/v1/approvals?type=CREATE_SERVICE' | jq -r '[.items[].id] | join(" ")')" \
	"a ticket without an environment is on every approver's workbench"
body=$(api_as alice POST "/api/v1/approvals/$T_SVC/approve" -H "$J" -d '{}')
expect_eq "403 SELF_APPROVAL" "$(code) $(jq -r .error.code <<<"$body")" "still not by its requester"
body=$(api_as dave POST "/api/v1/approvals/$T_SVC/approve" -H "$J" -d '{"cluster": "sim-p"}')
expect_eq "400 cluster" "$(code) $(jq -r .error.details.field <<<"$body")" "it runs on no cluster"
expect_exit 0 "dave approves it" as dave approvals approve "$T_SVC"
expect_match 'recorded' "$OUT" "the CLI says it is recorded"
expect_eq "COMPLETED COMPLETED 1" "$(sql "SELECT t.status || ' ' || e.status || ' ' || (SELECT count(*) FROM services WHERE name = 'api' AND deleted_at IS NULL) FROM approval_tickets t JOIN domain_events e ON e.id = t.event_id WHERE t.id = $T_SVC")" \
	"the service exists, ticket and request COMPLETED"
expect_eq 1 "$(sql "SELECT count(*) FROM notifications WHERE user_id = $ALICE AND ticket_id = $T_SVC AND type = 'APPROVAL_COMPLETED'")" \
	"and the requester is told"

finish
