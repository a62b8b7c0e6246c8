#!/bin/bash
# -o json on every command: each verb of the command table that talks to the daemon runs once
# against a daemon in a prepared state (clusters, a system and its service, VMs through their
# approvals, tasks, jobs, batches, adoptions, notifications) with -o json; its standard output
# must be exactly one JSON object or array (JSON lines for audit export), its exit status the
# expected one, and verbs that only report something done (delete, cancel, bind, ...) print an
# object too. A refusal prints the daemon's error object. The list of verbs comes from the CLI
# itself, so a new verb without a case here fails the test.
. "$top_srcdir/tests/helpers/lib.sh"

start_daemon_tls --execution-dedupe-window 0s --watch-scan-interval 1s
J='Content-Type: application/json'
uid() { sql "SELECT id FROM users WHERE name = '$1'"; }
for u in alice carol; do user_token "$u" >/dev/null; done
sql "INSERT INTO role_bindings (user_id, role, allowed_environments) VALUES
	($(uid carol), 'approver', '{test,prod}'), ($(uid alice), 'viewer', '{test}')" >/dev/null

COVERED=";"
# j EXIT VERB CMD...: run CMD (the CLI as someone) with -o json; one JSON object or array on
# stdout and exit status EXIT. VERB ("noun verb") is marked covered. $OUT holds stdout.
j() {
	local want=$1 verb=$2 got
	shift 2
	COVERED="$COVERED$verb;"
	"$@" -o json >"$T/out" 2>"$T/err"
	got=$?
	OUT=$(cat "$T/out")
	if [ "$got" != "$want" ]; then
		fail "$verb -o json: exit $want ($*)" "exit $got
stdout: $(head -c 600 "$T/out")
stderr: $(head -c 600 "$T/err")"
	elif [ "$(jq -s 'length == 1 and (.[0] | type == "object" or type == "array")' "$T/out" 2>/dev/null)" != true ]; then
		fail "$verb -o json prints one JSON object or array ($*)" "stdout: $(head -c 600 "$T/out")
stderr: $(head -c 300 "$T/err")"
	else
		pass "$verb -o json ($*): exit $want, one JSON value"
	fi
}
A() { as alice "$@"; }
C() { as carol "$@"; }
ticket_is() { [ "$(sql "SELECT status FROM approval_tickets WHERE id = $1")" = "$2" ]; }

# ---- the daemon and the caller ---------------------------------------------------------------
j 0 "version" shp version
j 0 "version" shp version --client
j 0 "whoami" shp whoami
j 0 "status" shp status
j 0 "version" "$SHEPHERD" --socket "$T/nobody.sock" version

# ---- registries --------------------------------------------------------------------------------
j 0 "namespace create" shp namespace create team-t --environment test
j 0 "namespace create" shp namespace create team-p --environment prod
j 0 "namespace create" shp namespace create gone --environment test
j 0 "namespace list" shp namespace list
j 0 "namespace show" shp namespace show team-t
j 0 "namespace delete" shp namespace delete gone
j 4 "namespace show" shp namespace show gone
expect_eq NOT_FOUND "$(jq -r .error.code <<<"$OUT")" "a refusal prints the daemon's error object"
j 0 "cluster add" shp cluster add sim1 --simulated --environment test
j 0 "cluster add" shp cluster add sim2 --simulated --environment prod
j 0 "cluster add" shp cluster add sim9 --simulated --environment test
j 0 "cluster list" shp cluster list
j 0 "cluster show" shp cluster show sim1
j 0 "cluster health" shp cluster health sim1
j 0 "cluster capabilities" shp cluster capabilities sim1
j 0 "cluster remove" shp cluster remove sim9
j 0 "instancetypes list" shp instancetypes list --cluster sim1

# ---- the catalogue ------------------------------------------------------------------------------
j 0 "template list" shp template list
j 0 "template show" shp template show debian-12
j 0 "template export" shp template export debian-12
sed 's/^name: .*/name: json-tmpl/' "$top_srcdir/deploy/seed/templates/debian-12.yaml" >"$T/tmpl.yaml"
j 0 "template create" shp template create "$T/tmpl.yaml"
j 0 "template publish" shp template publish json-tmpl --template-version 1
j 0 "template deprecate" shp template deprecate json-tmpl --template-version 1
j 0 "template archive" shp template archive json-tmpl --template-version 1
j 0 "size list" shp size list
j 0 "size show" shp size show small
j 0 "size create" shp size create json-size --cpus 2 --memory 2Gi
j 0 "size set" shp size set json-size --cpus 3
j 0 "size delete" shp size delete json-size
j 0 "policy list" shp policy list
j 0 "policy show" shp policy show CREATE_VM --environment test
j 0 "policy set" shp policy set START_VM --environment test --level 0

# ---- roles, mappings, tokens ---------------------------------------------------------------------
j 0 "role bind" shp role bind dave viewer --env test
j 0 "role list" shp role list
j 0 "role unbind" shp role unbind dave viewer
j 0 "rbac map" shp rbac map unix frank --user frank --role viewer --env test
MAP=$(jq -r .id <<<"$OUT")
j 0 "rbac list" shp rbac list
j 0 "rbac disable" shp rbac disable "$MAP"
j 0 "rbac enable" shp rbac enable "$MAP"
j 0 "rbac unmap" shp rbac unmap "$MAP"
j 0 "token create" shp token create json-token --expires 1h
j 0 "token list" shp token list
TOK=$(jq -r '.[] | select(.name == "json-token") | .id' <<<"$OUT")
j 0 "token revoke" shp token revoke "$TOK"

# ---- systems, services, tenants ----------------------------------------------------------------
j 0 "system create" A system create shop
j 0 "system create" A system create temp
j 0 "system list" A system list
j 0 "system show" A system show shop
j 0 "system delete" A system delete temp --confirm-name temp
j 0 "service create" A service create web --system shop
j 0 "service create" A service create tmp --system shop
j 0 "service list" A service list
j 0 "service show" A service show web
j 0 "service delete" A service delete tmp --yes
j 0 "tenant grant" shp tenant grant shop bob member
j 0 "tenant members" shp tenant members shop
j 0 "tenant revoke" shp tenant revoke shop bob

# ---- VMs through their approvals -------------------------------------------------------------
vm_create() { A vm create "$1" --namespace team-t --service web --template debian-12 --size small "${@:2}"; }
j 0 "vm create" vm_create web-1
T1=$(jq -r .ticket_id <<<"$OUT")
j 0 "approvals list" C approvals list
j 0 "approvals show" C approvals show "$T1"
j 0 "approvals preview" C approvals preview "$T1" --set cpus=2 --cluster sim1
j 0 "approvals modify" C approvals modify "$T1" --set cpus=2 --reason "two CPUs" --cluster sim1 --yes
j 0 "approvals approve" C approvals approve "$T1" --cluster sim1 --reason fine
wait_for 30 ticket_is "$T1" COMPLETED || fail "web-1 is created" "$(sql "SELECT status FROM approval_tickets WHERE id = $T1")"
wait_for 15 shp cluster vms sim1 # the watcher's cache (503 until its first list)
j 0 "cluster vms" shp cluster vms sim1
j 0 "vm list" A vm list
j 0 "vm show" A vm show web-1
j 0 "vm revisions" A vm revisions web-1
j 0 "vm history" A vm history web-1
j 0 "vm diff" A vm diff web-1 --from 1 --to 1
j 0 "vm stop" A vm stop web-1 --yes --wait
j 0 "vm start" A vm start web-1 --yes --wait
j 0 "vm restart" A vm restart web-1 --yes
j 0 "vm modify" A vm modify web-1 --cpus 3 --yes
T2=$(jq -r .ticket_id <<<"$OUT")
j 0 "requests list" A requests list
j 0 "requests show" A requests show "$(jq -r '.[0].id' <<<"$OUT")"
j 0 "requests cancel" A requests cancel "$T2"
j 0 "vm delete" A vm delete web-1 --yes
T3=$(jq -r .ticket_id <<<"$OUT")
j 0 "approvals reject" C approvals reject "$T3" --reason "still needed"
j 4 "vm show" A vm show nope

# ---- batches ---------------------------------------------------------------------------------------
printf -- '- {name: b-1, namespace: team-t, service: web, template: debian-12, size: small}\n- {name: b-2, namespace: team-t, service: web, template: debian-12, size: small}\n' >"$T/batch.yaml"
j 0 "batch submit" A batch submit "$T/batch.yaml"
B=$(jq -r '.id // .batch_id' <<<"$OUT")
j 0 "batch list" A batch list
j 0 "batch status" A batch status "$B" --once
j 0 "batch approve" C batch approve "$B" --cluster sim1 --reason ok
sed 's/b-/c-/g' "$T/batch.yaml" >"$T/batch2.yaml"
j 0 "batch submit" A batch submit "$T/batch2.yaml"
B2=$(jq -r '.id // .batch_id' <<<"$OUT")
j 0 "batch cancel" A batch cancel "$B2"
j 0 "batch status" A batch status "$B2"
j 0 "vm stop" A vm stop --selector service=web --yes
j 0 "vm start" A vm start --selector service=web --yes
j 0 "vm restart" A vm restart --selector service=web --yes
j 0 "batch retry" A batch retry "$B"

# ---- tasks, jobs, queues, flags -------------------------------------------------------------
printf 'steps:\n  - action: test.noop\n    targets: [vm-1]\n' >"$T/noop.yaml"
printf 'steps:\n  - {action: test.effect, targets: [vm-4], params: {key: c, ms: 500}}\n  - {action: test.effect, targets: [vm-4], params: {key: d, ms: 500}}\n  - {action: test.effect, targets: [vm-4], params: {key: e, ms: 500}}\n' >"$T/slow.yaml"
j 0 "tasks submit" shp tasks submit --file "$T/noop.yaml" --tenant shop
TASK=$(jq -r .id <<<"$OUT")
printf 'steps:\n  - {action: test.effect, targets: [vm-3], params: {key: w, ms: 200}}\n' >"$T/effect.yaml"
j 0 "tasks submit" shp tasks submit --file "$T/effect.yaml" --tenant shop --yes --wait
expect_eq succeeded "$(jq -r .status <<<"$OUT")" "--wait -o json prints the finished task alone"
j 0 "tasks list" shp tasks list
j 0 "tasks show" shp tasks show "$TASK"
j 0 "tasks watch" shp tasks watch "$TASK"
j 0 "tasks submit" shp tasks submit --file "$T/slow.yaml" --tenant shop --yes
j 0 "tasks cancel" shp tasks cancel "$(jq -r .id <<<"$OUT")" --reason stop --wait
j 0 "jobs list" shp jobs list --limit 5
JOB=$(sql "WITH ins AS (INSERT INTO jobs (kind, args, max_attempts, state, scheduled_at)
	VALUES ('test.noop', '{}', 1, 'scheduled', now() + interval '1 hour') RETURNING id) SELECT id FROM ins")
j 0 "jobs show" shp jobs show "$JOB"
j 0 "jobs discard" shp jobs discard "$JOB"
j 0 "jobs retry" shp jobs retry "$JOB"
j 0 "jobs cancel" shp jobs cancel "$JOB"
j 0 "queue stats" shp queue stats
j 0 "queue pause" shp queue pause json-q
j 0 "queue resume" shp queue resume json-q
j 0 "flags list" shp flags list
j 0 "flags set" shp flags set tenant:shop off
j 0 "flags unset" shp flags unset tenant:shop

# ---- reconcile, adoption ------------------------------------------------------------------------
j 0 "reconcile" shp reconcile --cluster sim1
j 0 "reconcile" shp reconcile runs
SIM1=$(sql "SELECT id FROM clusters WHERE name = 'sim1'")
ADS=$(sql "INSERT INTO pending_adoptions (cluster_id, namespace, name) VALUES
	($SIM1, 'team-t', 'found-1'), ($SIM1, 'team-t', 'found-2') RETURNING id" | tr '\n' ' ')
read -r AD1 AD2 <<<"$ADS"
j 0 "adoption scan" shp adoption scan
j 0 "adoption list" shp adoption list
j 0 "adoption ignore" shp adoption ignore "$AD1"
j 0 "adoption adopt" shp adoption adopt "$AD2" --namespace team-t

# ---- the audit trail, the inbox, the console ---------------------------------------------------
j 0 "audit list" shp audit list --limit 5
COVERED="${COVERED}audit export;"
shp audit export --since 1h -o json >"$T/audit.jsonl" 2>"$T/err"
expect_eq "0 true" "$? $(jq -s 'length > 5 and all(.[]; type == "object")' "$T/audit.jsonl")" \
	"audit export -o json: one JSON object per line"
j 0 "inbox list" A inbox list
j 0 "inbox count" A inbox count
j 0 "inbox read" A inbox read "$(jq -r '.[0].id' <<<"$(A inbox -o json)")"
j 0 "inbox read" A inbox read --all
j 0 "vnc request" A vnc request web-1 --duration 30m --reason "json check" --namespace team-t
j 0 "vnc token" shp vnc token web-1 --namespace team-t

# ---- every verb of the table has a case -------------------------------------------------------
# Not run here: help, completion and shell print text for people and shells; vnc open proxies a
# viewer's connection.
skip=";help;completion;shell;vnc open;"
missing=
while read -r verb; do
	case "$COVERED$skip" in *";$verb;"*) ;; *) missing="$missing $verb," ;; esac
done < <("$SHEPHERD" __man-commands 2>/dev/null |
	sed -n 's/^\\fBshepherd \([a-z-]*\)\( [a-z-]*\)\{0,1\}\\fR.*/\1\2/p' | sort -u)
expect_eq "" "$missing" "every verb of the command table is run with -o json"
finish
