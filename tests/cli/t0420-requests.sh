#!/bin/bash
# Governance requests over the API: systems and services are record-only (created and deleted
# at once, the creator owns the system), a policy that asks for a review turns a request into a
# ticket with APPROVAL_PENDING notifications for the environment's approvers, the requester
# sees and cancels their requests, other users get 404 (audited as RBAC_VIOLATION), deletes
# need their confirmation, and bad bodies get clear errors.
. "$top_srcdir/tests/helpers/lib.sh"

start_daemon_tls
J='Content-Type: application/json'
uid() { sql "SELECT id FROM users WHERE name = '$1'"; }
for u in alice bob carol dave; do user_token "$u" >/dev/null; done
sql "INSERT INTO role_bindings (user_id, role, allowed_environments) VALUES
	($(uid carol), 'approver', '{test}'), ($(uid dave), 'approver', '{prod}'),
	($(uid alice), 'viewer', '{test,prod}'), ($(uid bob), 'viewer', '{test,prod}')"

# ---- systems: record-only, the creator becomes the owner
body=$(api_as alice POST /api/v1/systems -H "$J" -d '{"name": "shop", "description": "the shop"}')
expect_eq 202 "$(code)" "a system is requested (202)"
expect_eq COMPLETED "$(jq -r .status <<<"$body")" "and done at once (record-only, level 0)"
expect_eq CREATE_SYSTEM "$(jq -r .type <<<"$body")" "as a CREATE_SYSTEM request"
expect_eq null "$(jq -r .ticket_id <<<"$body")" "without a ticket"
rid=$(jq -r .request_id <<<"$body")
expect_eq "/api/v1/requests/$rid" "$(jq -r .status_url <<<"$body")" "with its status URL"
expect_eq owner "$(sql "SELECT role FROM tenant_members WHERE tenant_id = 'shop' AND user_id = $(uid alice)")" \
	"alice owns the system"
expect_eq COMPLETED "$(sql "SELECT status FROM domain_events WHERE id = $rid")" "the event is COMPLETED"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'REQUEST_SUBMITTED' AND details->>'request_id' = '$rid'")" \
	"REQUEST_SUBMITTED is audited with the request id"
api_as bob POST /api/v1/systems -H "$J" -d '{"name": "shop"}' >/dev/null
expect_eq 409 "$(code)" "a second system 'shop' is refused (409)"
expect_eq NAME_TAKEN "$(jq -r .error.code "$T/body")" "NAME_TAKEN"
api_as alice GET /api/v1/systems/shop >/dev/null
expect_eq 200 "$(code)" "the owner sees the system"
expect_eq owner "$(jq -r .role "$T/body")" "with their role"
api_as bob GET /api/v1/systems/shop >/dev/null
expect_eq 404 "$(code)" "a stranger does not (404)"
expect_eq 0 "$(api_as bob GET /api/v1/systems | jq '.items | length')" "nor in the list"
expect_eq shop "$(api GET /api/v1/systems | jq -r '.items[0].name')" "a platform admin lists it"

# ---- services: members create them in their system; strangers are refused and audited
body=$(api_as alice POST /api/v1/services -H "$J" -d '{"name": "web", "system": "shop"}')
expect_eq 202 "$(code)" "a service is requested (202)"
expect_eq COMPLETED "$(jq -r .status <<<"$body")" "and recorded at once"
expect_eq shop "$(sql "SELECT s.name FROM services v JOIN systems s ON s.id = v.system_id WHERE v.name = 'web'")" \
	"in its system"
api_as bob POST /api/v1/services -H "$J" -d '{"name": "evil", "system": "shop"}' >/dev/null
expect_eq 404 "$(code)" "a stranger's service in someone else's system: 404"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'RBAC_VIOLATION' AND actor = 'bob' AND outcome = 'denied'")" \
	"audited as RBAC_VIOLATION"
expect_eq 0 "$(sql "SELECT count(*) FROM services WHERE name = 'evil'")" "and nothing recorded"
api_as bob DELETE /api/v1/services/web?confirm=true >/dev/null
expect_eq 404 "$(code)" "a stranger cannot delete the service (404)"
expect_eq web "$(api_as alice GET '/api/v1/services?system=shop' | jq -r '.items[0].name')" "the member lists the services"

# ---- delete confirmations
api_as alice DELETE /api/v1/services/web >/dev/null
expect_eq 400 "$(code)" "deleting a service without confirm=true: 400"
expect_eq CONFIRMATION_REQUIRED "$(jq -r .error.code "$T/body")" "CONFIRMATION_REQUIRED"
expect_eq confirm "$(jq -r .error.details.parameter "$T/body")" "naming the parameter 'confirm'"
api_as alice DELETE /api/v1/systems/shop?confirm_name=shop >/dev/null
expect_eq 409 "$(code)" "a system with an active service is not deleted (409)"
api_as alice DELETE /api/v1/services/web?confirm=true >/dev/null
expect_eq 202 "$(code)" "with confirm=true the service is deleted"
expect_match '^.+$' "$(sql "SELECT deleted_at FROM services WHERE name = 'web'")" "softly (deleted_at set)"
api_as alice DELETE /api/v1/systems/shop >/dev/null
expect_eq 400 "$(code)" "deleting a system without its typed name: 400"
expect_eq confirm_name "$(jq -r .error.details.parameter "$T/body")" "naming 'confirm_name'"
api_as alice DELETE /api/v1/systems/shop -H "$J" -d '{"confirm_name": "shoq"}' >/dev/null
expect_eq 400 "$(code)" "a wrong name does not confirm"
sql "INSERT INTO tenant_members (tenant_id, user_id, role) VALUES ('shop', $(uid bob), 'member')"
api_as bob DELETE /api/v1/systems/shop?confirm_name=shop >/dev/null
expect_eq 403 "$(code)" "a member (not an owner) may not delete the system (403)"
api_as alice DELETE /api/v1/systems/shop -H "$J" -d '{"confirm_name": "shop"}' >/dev/null
expect_eq 202 "$(code)" "the owner deletes it with the typed name in the body"
expect_eq 0 "$(sql "SELECT count(*) FROM tenant_members WHERE tenant_id = 'shop'")" "and its members go with it"
api_as alice POST /api/v1/systems -H "$J" -d '{"name": "shop"}' >/dev/null
expect_eq 202 "$(code)" "the name is free again"

# ---- a policy asking for a review: ticket, notifications, my requests, cancel
expect_exit 0 "policy set CREATE_SERVICE any level 2" shp policy set CREATE_SERVICE --environment any \
	--level 2 --runbook https://runbooks.example/services
body=$(api_as alice POST /api/v1/services -H "$J" -d '{"name": "api", "system": "shop"}')
expect_eq 202 "$(code)" "a reviewed service request: 202"
expect_eq PENDING_APPROVAL "$(jq -r .status <<<"$body")" "waits for approval"
expect_eq 2 "$(jq -r .approval_level <<<"$body")" "at level 2"
tid=$(jq -r .ticket_id <<<"$body")
rid=$(jq -r .request_id <<<"$body")
expect_match '^[0-9]+$' "$tid" "with a ticket"
expect_eq 0 "$(sql "SELECT count(*) FROM services WHERE name = 'api'")" "nothing recorded yet"
expect_eq "https://runbooks.example/services|PENDING_APPROVAL" \
	"$(sql "SELECT runbook_url || '|' || status FROM approval_tickets WHERE id = $tid")" "the ticket carries the runbook"
expect_eq "carol dave" "$(sql "SELECT string_agg(u.name, ' ' ORDER BY u.name) FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.ticket_id = $tid AND n.type = 'APPROVAL_PENDING' AND u.name IN ('alice', 'bob', 'carol', 'dave')")" \
	"APPROVAL_PENDING went to the approvers, not to the others"
list=$(api_as alice GET /api/v1/requests)
expect_eq 200 "$(code)" "my requests"
expect_eq "$rid PENDING_APPROVAL $tid" "$(jq -r '.items[0] | "\(.id) \(.status) \(.ticket_id)"' <<<"$list")" \
	"newest first, with the ticket"
expect_eq 1 "$(api_as alice GET '/api/v1/requests?status=PENDING_APPROVAL' | jq '.items | length')" "filtered by status"
api_as alice GET '/api/v1/requests?status=BOGUS' >/dev/null
expect_eq 400 "$(code)" "an unknown status is refused"
expect_eq 0 "$(api_as bob GET /api/v1/requests | jq '[.items[] | select(.id == '"$rid"')] | length')" \
	"not among someone else's requests"
api_as bob GET "/api/v1/requests/$rid" >/dev/null
expect_eq 404 "$(code)" "someone else's request: 404"
api_as alice GET "/api/v1/requests/$rid" >/dev/null
expect_eq api "$(jq -r .payload.spec.name "$T/body")" "the requester sees the payload"
api_as bob POST "/api/v1/approvals/$tid/cancel" >/dev/null
expect_eq 404 "$(code)" "a stranger cannot cancel it (404)"
api_as carol POST "/api/v1/approvals/$tid/cancel" >/dev/null
expect_eq 403 "$(code)" "an approver who sees it may not cancel it (403)"
api_as alice POST "/api/v1/approvals/$tid/cancel" -H "$J" -d '{"reason": "not needed"}' >/dev/null
expect_eq 200 "$(code)" "the requester cancels"
expect_eq "CANCELLED CANCELLED" "$(sql "SELECT t.status || ' ' || e.status FROM approval_tickets t JOIN domain_events e ON e.id = t.event_id WHERE t.id = $tid")" \
	"ticket and event are CANCELLED"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'REQUEST_CANCELLED' AND details->>'ticket_id' = '$tid'")" \
	"REQUEST_CANCELLED is audited"
api_as alice POST "/api/v1/approvals/$tid/cancel" >/dev/null
expect_eq 409 "$(code)" "cancelling twice: 409"

# ---- policies: everybody reads, platform admins write, the levels' rules hold
expect_eq 18 "$(api_as bob GET /api/v1/policies | jq '.items | length')" "every user reads the policies (18 rows)"
expect_eq 2 "$(api_as bob GET '/api/v1/policies/START_VM?environment=prod' | jq .level)" "START_VM in prod is reviewed"
expect_eq 0 "$(api_as bob GET '/api/v1/policies/CREATE_SYSTEM?environment=prod' | jq .level)" \
	"a type without a row for the environment falls back on the row without one"
api_as bob PUT /api/v1/policies/START_VM/prod -H "$J" -d '{"level": 0}' >/dev/null
expect_eq 403 "$(code)" "a user may not set a policy (403)"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'POLICY_SET' AND actor = 'bob' AND outcome = 'denied'")" \
	"the refusal is audited"
api PUT /api/v1/policies/START_VM/prod -H "$J" -d '{"level": 2}' >/dev/null
expect_eq "400 runbook_url" "$(code) $(jq -r .error.details.field "$T/body")" "level 2 needs a runbook"
api PUT /api/v1/policies/START_VM/prod -H "$J" -d '{"level": 2, "runbook_url": "ftp://x/y"}' >/dev/null
expect_eq "400 runbook_url" "$(code) $(jq -r .error.details.field "$T/body")" "an http(s) one"
api PUT /api/v1/policies/START_VM/prod -H "$J" -d '{"level": 3, "approvers_required": 1}' >/dev/null
expect_eq "400 approvers_required" "$(code) $(jq -r .error.details.field "$T/body")" "level 3 needs two approvers or more"
api PUT /api/v1/policies/START_VM/prod -H "$J" -d '{"level": 1, "approvers_required": 2}' >/dev/null
expect_eq "400 approvers_required" "$(code) $(jq -r .error.details.field "$T/body")" "several approvers need level 3"
api PUT /api/v1/policies/START_VM/prod -H "$J" -d '{"level": "1"}' >/dev/null
expect_eq 400 "$(code)" "a level that is not a number is refused"
api PUT /api/v1/policies/START_VM/prod -H "$J" -d '{"level": 1, "colour": 1}' >/dev/null
expect_eq 400 "$(code)" "an unknown field is refused"
api PUT /api/v1/policies/BOOT_VM/prod -H "$J" -d '{"level": 1}' >/dev/null
expect_eq 404 "$(code)" "an unknown request type: 404"
api PUT /api/v1/policies/START_VM/staging -H "$J" -d '{"level": 1}' >/dev/null
expect_eq 404 "$(code)" "an unknown environment: 404"
expect_exit 0 "policy set with a quorum and escalation" shp policy set start-vm --environment prod --level 3 \
	--approvers 2 --escalate-memory 8Gi -o json
expect_eq "3 2 8192" "$(jq -r '"\(.level) \(.approvers_required) \(.escalate_memory_mib)"' <<<"$OUT")" "is stored"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'POLICY_SET' AND outcome = 'success' AND resource_name = 'START_VM/prod'")" \
	"and audited as POLICY_SET"
expect_exit 0 "policy show --environment" shp policy show START_VM --environment prod
expect_match 'Level: +3' "$OUT" "shows the row that decides"
expect_exit 7 "policy set refuses a bad quantity" shp policy set START_VM --environment prod --level 1 --escalate-memory lots
expect_exit 0 "policy list" shp policy list
expect_match 'CREATE_SERVICE +any +2' "$OUT" "lists every row"

# ---- the CLI
expect_exit 0 "system create" as alice system create depot --description "the depot" -o json
expect_eq "CREATE_SYSTEM COMPLETED" "$(jq -r '"\(.type) \(.status)"' <<<"$OUT")" "is done at once"
expect_exit 0 "system list" as alice system list
expect_match 'depot +owner +0 +the depot' "$OUT" "shows the caller's role"
expect_exit 0 "service create (reviewed by the policy set above)" as alice service create stock --system depot -o json
tid=$(jq -r .ticket_id <<<"$OUT")
expect_exit 0 "requests list" as alice requests list --status PENDING_APPROVAL
expect_match "CREATE_SERVICE +stock +PENDING_APPROVAL +$tid" "$OUT" "shows the pending request and its ticket"
rid=$(jq -r .request_id <<<"$(as alice requests list -o json | jq '{request_id: .[0].id}')")
expect_exit 0 "requests show" as alice requests show "$rid" -o json
expect_eq "stock depot" "$(jq -r '"\(.payload.spec.name) \(.payload.spec.system)"' <<<"$OUT")" "shows what was asked"
expect_exit 7 "requests show of a bad id" as alice requests show 12x
expect_exit 0 "requests cancel" as alice requests cancel "$tid"
expect_match "ticket $tid cancelled" "$OUT" "says so"
expect_exit 2 "service delete without --yes" as alice service delete web </dev/null
expect_match -- '--yes' "$ERR" "asks for --yes"
expect_exit 2 "system delete off a terminal without --confirm-name" as alice system delete depot </dev/null
expect_match -- '--confirm-name depot' "$ERR" "names the option"
expect_exit 1 "system delete with a wrong name" as alice system delete depot --confirm-name depox
expect_eq depot "$(sql "SELECT name FROM systems WHERE name = 'depot' AND deleted_at IS NULL")" "deletes nothing"
expect_exit 0 "system delete with the name" as alice system delete depot --confirm-name depot
expect_exit 4 "system show of a deleted system" as alice system show depot

# ---- hostile and malformed input
api_as alice POST /api/v1/systems -H "$J" -d '{"name": "Robert\u0027); DROP TABLE systems;--"}' >/dev/null
expect_eq "400 name" "$(code) $(jq -r .error.details.field "$T/body")" "a hostile system name is refused, naming the field"
api_as alice POST /api/v1/systems -H "$J" -d "{\"name\": \"$(printf 'a%.0s' $(seq 1 64))\"}" >/dev/null
expect_eq 400 "$(code)" "a name of 64 characters is refused"
api_as alice POST /api/v1/systems -H "$J" -d '{"name": 5}' >/dev/null
expect_eq 400 "$(code)" "a name that is not a string is refused"
api_as alice POST /api/v1/systems -H "$J" -d '{"name": "ok-name", "description": "bell\u0007"}' >/dev/null
expect_eq "400 description" "$(code) $(jq -r .error.details.field "$T/body")" "control characters in a description are refused"
api_as alice POST /api/v1/systems -H "$J" -d '{"name": "ok-name", "owner": "bob"}' >/dev/null
expect_eq 400 "$(code)" "an unknown field is refused"
api_as alice POST /api/v1/systems -H "$J" -d '[1, 2]' >/dev/null
expect_eq 400 "$(code)" "a body that is not an object is refused"
api_as alice POST /api/v1/systems -d '{"name": "ok-name"}' >/dev/null
expect_eq 415 "$(code)" "a body that is not JSON by its type: 415"
api_as alice GET '/api/v1/systems?cursor=%%%' >/dev/null
expect_eq 400 "$(code)" "a malformed cursor is refused"
api_as alice GET '/api/v1/requests/1e3' >/dev/null
expect_eq 404 "$(code)" "a request id that is not a number: 404"
api_as alice POST /api/v1/approvals/abc/cancel >/dev/null
expect_eq 404 "$(code)" "so is a ticket id"
expect_eq 0 "$(sql "SELECT count(*) FROM systems WHERE name = 'ok-name'")" "nothing was recorded by any of them"

finish
