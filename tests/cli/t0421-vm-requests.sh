#!/bin/bash
# VM requests over the API: each type in test and prod goes where the default policy matrix
# sends it (a ticket for reviewed ones, a task for START/STOP/RESTART in test, run on a
# simulated cluster), names are checked against active VMs and open creates, the catalogue is
# checked, deletes need the confirmation of their environment, modifications keep name,
# namespace, service and system and escalate with the resources they add, other systems' VMs
# do not exist for a user (RBAC_VIOLATION audited), and bad bodies get clear errors.
. "$top_srcdir/tests/helpers/lib.sh"

start_daemon_tls --execution-dedupe-window 0s
J='Content-Type: application/json'
uid() { sql "SELECT id FROM users WHERE name = '$1'"; }
for u in alice bob carol dave oscar vic; do user_token "$u" >/dev/null; done
sql "INSERT INTO role_bindings (user_id, role, allowed_environments) VALUES
	($(uid carol), 'approver', '{test}'), ($(uid dave), 'approver', '{prod}'),
	($(uid oscar), 'operator', '{test}'), ($(uid alice), 'viewer', '{test,prod}'),
	($(uid bob), 'viewer', '{test,prod}'), ($(uid vic), 'viewer', '{test,prod}')"
shp namespace create team-t --environment test >/dev/null
shp namespace create team-t2 --environment test >/dev/null
shp namespace create team-p --environment prod >/dev/null
shp cluster add sim1 --simulated --environment test >/dev/null
shp cluster add sim2 --simulated --environment prod >/dev/null
api_as alice POST /api/v1/systems -H "$J" -d '{"name": "shop"}' >/dev/null
api_as alice POST /api/v1/services -H "$J" -d '{"name": "web", "system": "shop"}' >/dev/null
api_as bob POST /api/v1/systems -H "$J" -d '{"name": "bank"}' >/dev/null
api_as bob POST /api/v1/services -H "$J" -d '{"name": "ledger", "system": "bank"}' >/dev/null
sql "INSERT INTO tenant_members (tenant_id, user_id, role) VALUES ('shop', $(uid vic), 'viewer')"
expect_eq 202 "$(code)" "systems and services to hold the VMs"

vm() { printf '{"name": "%s", "namespace": "%s", "service": "web", "template": "debian-12", "size": "small"%s}' "$1" "$2" "${3:-}"; }

# ---- CREATE_VM: reviewed in both environments
body=$(api_as alice POST /api/v1/vms -H "$J" -d "$(vm web-1 team-t)")
expect_eq 202 "$(code)" "CREATE_VM in test: 202"
expect_eq "PENDING_APPROVAL 2" "$(jq -r '"\(.status) \(.approval_level)"' <<<"$body")" "waits for a level-2 review"
tid=$(jq -r .ticket_id <<<"$body"); rid=$(jq -r .request_id <<<"$body")
expect_eq "shop 1" "$(sql "SELECT payload->'spec'->>'system' || ' ' || (payload->'spec'->>'template_version') FROM domain_events WHERE id = $rid")" \
	"the payload carries the service's system and the active template version"
expect_eq "PENDING test shop web-1" "$(sql "SELECT e.status || ' ' || t.environment || ' ' || t.system || ' ' || t.target_name FROM approval_tickets t JOIN domain_events e ON e.id = t.event_id WHERE t.id = $tid")" \
	"event PENDING, ticket of environment test"
expect_eq "carol root" "$(sql "SELECT string_agg(u.name, ' ' ORDER BY u.name) FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.ticket_id = $tid AND n.type = 'APPROVAL_PENDING'")" \
	"APPROVAL_PENDING to the test approvers (and the admin), not to prod's"
expect_match '^.{60,}$' "$(sql "SELECT expires_at - created_at FROM approval_tickets WHERE id = $tid")$(printf '%60s')" "the ticket expires"
expect_eq "7 days" "$(sql "SELECT expires_at - created_at FROM approval_tickets WHERE id = $tid")" "after approvals.ttl (7 days)"
api_as alice POST /api/v1/vms -H "$J" -d "$(vm web-1 team-t)" >/dev/null
expect_eq "409 NAME_TAKEN" "$(code) $(jq -r .error.code "$T/body")" "the same name again while it is requested: 409 NAME_TAKEN"
body=$(api_as alice POST /api/v1/vms -H "$J" -d "$(vm web-1 team-p)")
expect_eq "202 PENDING_APPROVAL" "$(code) $(jq -r .status <<<"$body")" "CREATE_VM in prod: reviewed too"
expect_eq dave "$(sql "SELECT string_agg(u.name, ' ') FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.ticket_id = $(jq -r .ticket_id <<<"$body") AND u.name <> 'root'")" \
	"told to the prod approver"

# ---- the catalogue and the caller are checked
api_as alice POST /api/v1/vms -H "$J" -d '{"name": "x1", "namespace": "team-t", "service": "web", "template": "nothing", "size": "small"}' >/dev/null
expect_eq "409 TEMPLATE_NOT_ACTIVE" "$(code) $(jq -r .error.code "$T/body")" "a template without an active version: TEMPLATE_NOT_ACTIVE"
api_as alice POST /api/v1/vms -H "$J" -d '{"name": "x1", "namespace": "team-t", "service": "web", "template": "debian-12", "size": "huge"}' >/dev/null
expect_eq "400 size" "$(code) $(jq -r .error.details.field "$T/body")" "an unknown size: 400 naming 'size'"
api_as alice POST /api/v1/vms -H "$J" -d '{"name": "x1", "namespace": "nowhere", "service": "web", "template": "debian-12", "size": "small"}' >/dev/null
expect_eq 404 "$(code)" "an unregistered namespace: 404"
api_as alice POST /api/v1/vms -H "$J" -d '{"name": "x1", "namespace": "team-t", "service": "ledger", "template": "debian-12", "size": "small"}' >/dev/null
expect_eq 404 "$(code)" "a service of another system: 404"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'RBAC_VIOLATION' AND actor = 'alice' AND resource_name = 'ledger'")" \
	"audited as RBAC_VIOLATION"
api_as vic POST /api/v1/vms -H "$J" -d "$(vm x1 team-t)" >/dev/null
expect_eq 403 "$(code)" "a viewer of the system may not ask for VMs (403)"
api_as alice POST /api/v1/vms -H "$J" -d '{"name": "x1", "namespace": "team-t", "service": "web", "template": "debian-12", "size": "small", "colour": "red"}' >/dev/null
expect_match "400 .*colour" "$(code) $(jq -r .error.message "$T/body")" "an unknown field is refused, named"
api_as alice POST /api/v1/vms -H "$J" -d '{"name": "x1", "namespace": "team-t", "service": "web", "template": "debian-12", "size": "small", "cpus": "two"}' >/dev/null
expect_eq "400 cpus" "$(code) $(jq -r .error.details.field "$T/body")" "a wrong type is refused, naming the field"
api_as alice POST /api/v1/vms -H "$J" -d '{"name": "x1", "namespace": ' >/dev/null
expect_eq "400 MALFORMED_REQUEST" "$(code) $(jq -r .error.code "$T/body")" "malformed JSON: 400 MALFORMED_REQUEST"
api_as alice POST /api/v1/vms -H "$J" -d '{"name": "../../etc/passwd", "namespace": "team-t", "service": "web", "template": "debian-12", "size": "small"}' >/dev/null
expect_eq "400 name" "$(code) $(jq -r .error.details.field "$T/body")" "a hostile name is refused"
api_as alice PATCH '/api/v1/vms/%2e%2e%2fetc' -H "$J" -d '{"description": "x"}' >/dev/null
expect_eq 404 "$(code)" "a hostile VM name in the path: 404"
head -c 2000000 /dev/zero | tr '\0' 'a' | sed 's/^/{"description": "/; s/$/"}/' >"$T/big.json"
api_as alice POST /api/v1/vms -H "$J" --data-binary @"$T/big.json" >/dev/null
expect_eq 413 "$(code)" "an oversized body: 413"

# ---- idempotent replay
b1=$(api_as alice POST /api/v1/vms -H "$J" -H 'Idempotency-Key: create-web-3' -d "$(vm web-3 team-t)")
b2=$(api_as alice POST /api/v1/vms -H "$J" -H 'Idempotency-Key: create-web-3' -d "$(vm web-3 team-t)")
expect_eq "202 $(jq -r .request_id <<<"$b1")" "$(code) $(jq -r .request_id <<<"$b2")" "a replay answers the same request"
expect_eq 1 "$(sql "SELECT count(*) FROM approval_tickets WHERE target_name = 'web-3'")" "and records it once"

# ---- a VM on the simulated cluster (as t0340 makes one), owned by system shop
printf 'steps:\n  - {action: vm.create, targets: [team-t/web-2], params: {cluster: sim1, namespace: team-t, name: web-2, cpus: 1, memory: 2Gi}}\n' >"$T/create.yaml"
expect_exit 0 "a VM is created on sim1" shp tasks submit -f "$T/create.yaml" --tenant shop --yes --wait
sql "UPDATE vms SET system = 'shop', service = 'web', template = 'debian-12', size = 'small',
	spec = '{\"name\": \"web-2\", \"namespace\": \"team-t\", \"service\": \"web\", \"system\": \"shop\", \"template\": \"debian-12\", \"template_version\": 1, \"size\": \"small\"}'
	WHERE name = 'web-2'"

# ---- power operations: automatic in test, reviewed in prod
body=$(api_as alice POST /api/v1/vms/web-2/stop)
expect_eq "202 PROCESSING" "$(code) $(jq -r .status <<<"$body")" "STOP_VM in test runs at once (202 PROCESSING)"
task=$(jq -r .task_id <<<"$body"); rid=$(jq -r .request_id <<<"$body")
expect_match '^[0-9]+$' "$task" "with a task"
expect_eq "$rid" "$(sql "SELECT event_id FROM executions WHERE id = $task")" "the task carries the request"
expect_eq "null PROCESSING" "$(jq -r '"\(.ticket_id) \(.status)"' <<<"$body")" "no ticket, event PROCESSING"
st=; for _ in $(seq 1 300); do st=$(sql "SELECT status FROM executions WHERE id = $task"); case $st in succeeded|failed|cancelled|rejected) break ;; esac; sleep 0.1; done
expect_eq succeeded "$st" "the stop task ran on the simulated cluster"
ev=; for _ in $(seq 1 300); do ev=$(sql "SELECT status FROM domain_events WHERE id = $rid"); [ "$ev" = PROCESSING ] || break; sleep 0.1; done
expect_eq COMPLETED "$ev" "and the request is COMPLETED with it"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'REQUEST_SUBMITTED' AND details->>'request_id' = '$rid' AND details->>'task_id' = '$task'")" \
	"REQUEST_SUBMITTED names request and task"
for op in start restart; do
	body=$(api_as alice POST "/api/v1/vms/web-2/$op")
	expect_eq "202 PROCESSING" "$(code) $(jq -r .status <<<"$body")" "${op^^}_VM in test runs at once too"
done
api_as carol POST /api/v1/vms/web-2/restart >/dev/null
expect_eq 403 "$(code)" "an approver (not operator, not member) may not (403)"
api_as bob POST /api/v1/vms/web-2/restart >/dev/null
expect_eq 404 "$(code)" "for a stranger the VM does not exist (404)"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'RBAC_VIOLATION' AND actor = 'bob' AND resource_name = 'web-2'")" \
	"audited as RBAC_VIOLATION"
api_as vic POST /api/v1/vms/web-2/restart >/dev/null
expect_eq 403 "$(code)" "a viewer of the system may not (403)"
sql "INSERT INTO vms (cluster_id, namespace, name, status, cpus, memory_bytes, system, service, template, size, spec)
	SELECT id, 'team-p', 'db-1', 'RUNNING', 1, 2147483648, 'shop', 'web', 'debian-12', 'small',
	'{\"name\": \"db-1\", \"namespace\": \"team-p\", \"service\": \"web\", \"system\": \"shop\", \"template\": \"debian-12\", \"template_version\": 1, \"size\": \"small\"}'
	FROM clusters WHERE name = 'sim2'"
for op in start stop restart; do
	body=$(api_as alice POST "/api/v1/vms/db-1/$op")
	expect_eq "202 PENDING_APPROVAL 2" "$(code) $(jq -r '"\(.status) \(.approval_level)"' <<<"$body")" "${op^^}_VM in prod is reviewed"
done
expect_eq "db-1 sim2" "$(sql "SELECT t.target_name || ' ' || c.name FROM approval_tickets t JOIN clusters c ON c.id = t.cluster_id WHERE t.request_type = 'RESTART_VM'")" \
	"the ticket names the VM's cluster"

# ---- delete confirmation tiers
api_as alice DELETE /api/v1/vms/web-2 >/dev/null
expect_eq "400 CONFIRMATION_REQUIRED confirm test" "$(code) $(jq -r '"\(.error.code) \(.error.details.parameter) \(.error.details.environment)"' "$T/body")" \
	"deleting a test VM needs confirm=true"
body=$(api_as alice DELETE '/api/v1/vms/web-2?confirm=true')
expect_eq "202 DELETE_VM PENDING_APPROVAL" "$(code) $(jq -r '"\(.type) \(.status)"' <<<"$body")" "with it, DELETE_VM goes to review"
api_as alice DELETE '/api/v1/vms/db-1?confirm=true' >/dev/null
expect_eq "400 confirm_name prod" "$(code) $(jq -r '"\(.error.details.parameter) \(.error.details.environment)"' "$T/body")" \
	"a prod VM needs its name typed (confirm_name)"
api_as alice DELETE /api/v1/vms/db-1 -H "$J" -d '{"confirm_name": "db-2"}' >/dev/null
expect_eq 400 "$(code)" "a wrong name does not confirm"
api_as alice DELETE '/api/v1/vms/db-1?confirm_name=db-1' >/dev/null
expect_eq 202 "$(code)" "the right one does"

# ---- MODIFY_VM: immutable fields, a full new spec, escalation
api_as alice PATCH /api/v1/vms/web-2 -H "$J" -d '{"namespace": "team-t2"}' >/dev/null
expect_eq "400 IMMUTABLE_FIELD namespace" "$(code) $(jq -r '"\(.error.code) \(.error.details.field)"' "$T/body")" "the namespace is immutable"
api_as alice PATCH /api/v1/vms/web-2 -H "$J" -d '{"system": "bank"}' >/dev/null
expect_eq "400 IMMUTABLE_FIELD" "$(code) $(jq -r .error.code "$T/body")" "so is the system"
body=$(api_as alice PATCH /api/v1/vms/web-2 -H "$J" -d '{"description": "the web tier"}')
expect_eq "202 2 f" "$(code) $(jq -r .approval_level <<<"$body") $(sql "SELECT escalated FROM approval_tickets WHERE id = $(jq -r .ticket_id <<<"$body")")" \
	"MODIFY_VM is reviewed at level 2"
expect_eq "web-2 small the web tier" "$(sql "SELECT payload->'spec'->>'name' || ' ' || (payload->'spec'->>'size') || ' ' || (payload->'spec'->>'description') FROM domain_events WHERE id = $(jq -r .request_id <<<"$body")")" \
	"its payload is the full new spec"
expect_exit 0 "MODIFY_VM in test escalates above 2 added CPUs" shp policy set MODIFY_VM --environment test --level 2 \
	--runbook https://runbooks.example/modify --escalate-cpus 2
body=$(api_as alice PATCH /api/v1/vms/web-2 -H "$J" -d '{"size": "xlarge"}')
expect_eq "202 3" "$(code) $(jq -r .approval_level <<<"$body")" "adding 7 CPUs moves the modify up to level 3"
expect_eq "true 2" "$(sql "SELECT escalated || ' ' || approvals_required FROM approval_tickets WHERE id = $(jq -r .ticket_id <<<"$body")")" \
	"escalated, with two approvers"
body=$(api_as alice PATCH /api/v1/vms/db-1 -H "$J" -d '{"size": "medium"}')
expect_eq "202 MODIFY_VM PENDING_APPROVAL 2" "$(code) $(jq -r '"\(.type) \(.status) \(.approval_level)"' <<<"$body")" \
	"MODIFY_VM in prod is reviewed (no escalation there)"
body=$(api_as alice PATCH /api/v1/vms/web-2 -H "$J" -d '{"size": "medium"}')
expect_eq "202 2" "$(code) $(jq -r .approval_level <<<"$body")" "adding one CPU does not"

# ---- auto-executed creates need a cluster
expect_exit 0 "CREATE_VM in test without review" shp policy set CREATE_VM --environment test --level 0
api_as alice POST /api/v1/vms -H "$J" -d "$(vm web-9 team-t)" >/dev/null
expect_eq "400 cluster" "$(code) $(jq -r .error.details.field "$T/body")" "an automatic create without a cluster is refused"
api_as alice POST /api/v1/vms -H "$J" -d "$(vm web-9 team-t ', "cluster": "sim2"')" >/dev/null
expect_eq "409 ENVIRONMENT_MISMATCH" "$(code) $(jq -r .error.code "$T/body")" "a cluster of another environment: ENVIRONMENT_MISMATCH"
body=$(api_as alice POST /api/v1/vms -H "$J" -d "$(vm web-9 team-t ', "cluster": "sim1"')")
expect_eq "202 PROCESSING" "$(code) $(jq -r .status <<<"$body")" "with a cluster it runs at once"
expect_eq vm.provision "$(sql "SELECT plan_snapshot->'steps'->0->>'action' FROM executions WHERE id = $(jq -r .task_id <<<"$body")")" \
	"as a vm.provision plan"
rid=$(jq -r .request_id <<<"$body")
ev=; for _ in $(seq 1 300); do ev=$(sql "SELECT status FROM domain_events WHERE id = $rid"); [ "$ev" = PROCESSING ] || break; sleep 0.1; done
expect_eq COMPLETED "$ev" "the VM is provisioned on sim1 and the request COMPLETED"
expect_eq "shop web alice" "$(sql "SELECT v.system || ' ' || v.service || ' ' || u.name FROM vms v JOIN users u ON u.id = v.owner_id WHERE v.name = 'web-9'")" \
	"the VM belongs to the requester's system, service and the requester"
expect_exit 0 "CREATE_VM in test needs the requester's confirmation" shp policy set CREATE_VM --environment test --level 1
api_as alice POST /api/v1/vms -H "$J" -d "$(vm web-8 team-t ', "cluster": "sim1"')" >/dev/null
expect_eq "400 CONFIRMATION_REQUIRED confirm" "$(code) $(jq -r '"\(.error.code) \(.error.details.parameter)"' "$T/body")" "level 1 without confirm: 400"

# ---- a name in several namespaces
sql "INSERT INTO vms (cluster_id, namespace, name, system, service, spec)
	SELECT id, 'team-t2', 'web-2', 'shop', 'web', '{}' FROM clusters WHERE name = 'sim1'"
api_as alice POST /api/v1/vms/web-2/start >/dev/null
expect_eq "409 team-t,team-t2" "$(code) $(jq -r .error.details.namespaces "$T/body")" "an ambiguous name: 409 listing the namespaces"
api_as alice POST '/api/v1/vms/web-2/start?namespace=team-t' >/dev/null
expect_eq 202 "$(code)" "?namespace= picks one"

finish
