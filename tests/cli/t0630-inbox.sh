#!/bin/bash
# The notification inbox end to end, with several users over TLS: a VM request reaches the
# approvers of its environment (test or prod, and nobody else), an approval and a rejection
# reach the requester, an approval about to expire warns the requester once, a VM that changes
# status in a cluster (the Kubernetes simulator) tells its owner once per window; the API and
# `shepherd inbox` page, filter, count and mark read, another user's notification is 404,
# hostile input is refused; the notify.retention job deletes old rows in batches.
. "$top_srcdir/tests/helpers/lib.sh"
. "$top_srcdir/tests/helpers/kubesim.sh"

start_kubesim --tick-ms 100 || exit 1
ln -s "$T/kubesim-certs" "$T/pki"
start_daemon_tls --watch-scan-interval 1s --notifications-status-window 1h
J='Content-Type: application/json'
uid() { sql "SELECT id FROM users WHERE name = '$1'"; }
for u in alice carol dave erin; do user_token "$u" >/dev/null; done
ALICE=$(uid alice) CAROL=$(uid carol) DAVE=$(uid dave) ERIN=$(uid erin)
sql "INSERT INTO role_bindings (user_id, role, allowed_environments) VALUES
	($CAROL, 'approver', '{test}'), ($DAVE, 'approver', '{prod}'), ($ALICE, 'viewer', '{test,prod}'),
	($ERIN, 'operator', '{test}')" >/dev/null
shp namespace create team-t --environment test >/dev/null
shp namespace create team-p --environment prod >/dev/null
expect_exit 0 "a simulated test cluster" shp cluster add sim1 --simulated --environment test
api_as alice POST /api/v1/systems -H "$J" -d '{"name": "shop"}' >/dev/null
api_as alice POST /api/v1/services -H "$J" -d '{"name": "web", "system": "shop"}' >/dev/null

# n_of USER TYPE [TICKET]: how many notifications of TYPE USER has (of that ticket)
n_of() {
	sql "SELECT count(*) FROM notifications WHERE user_id = $(uid "$1") AND type = '$2'
		${3:+AND ticket_id = $3}"
}
# request NAME [NAMESPACE]: alice asks for a VM (in team-t); sets TID
request() {
	local body
	body=$(api_as alice POST /api/v1/vms -H "$J" -d "{\"name\": \"$1\", \"namespace\": \"${2:-team-t}\",
		\"service\": \"web\", \"template\": \"debian-12\", \"size\": \"small\"}")
	expect_eq "202 PENDING_APPROVAL" "$(code) $(jq -r '.status // .error.message' <<<"$body")" \
		"CREATE_VM $1 waits for review"
	TID=$(jq -r .ticket_id <<<"$body")
}
ticket_is() { [ "$(sql "SELECT status FROM approval_tickets WHERE id = $1")" = "$2" ]; }
# run_job KIND ARGS: queue one job of KIND and wait (through the jobs CLI) until it completed

# ---- APPROVAL_PENDING: every approver of the environment, nobody else -----------------------
request web-1
T1=$TID
expect_eq "1 0 0 0" "$(n_of carol APPROVAL_PENDING "$T1") $(n_of dave APPROVAL_PENDING "$T1") $(n_of alice APPROVAL_PENDING "$T1") $(n_of erin APPROVAL_PENDING "$T1")" \
	"the test approver is told; the prod approver, the requester and an operator are not"
request db-1 team-p
TP=$TID
expect_eq "0 1" "$(n_of carol APPROVAL_PENDING "$TP") $(n_of dave APPROVAL_PENDING "$TP")" \
	"a prod request reaches the prod approver, not the test one"
expect_exit 0 "carol's inbox" as carol inbox -o json
expect_eq "APPROVAL_PENDING $T1 false" "$(jq -r '.[0] | "\(.type) \(.ticket_id) \(.read)"' <<<"$OUT")" \
	"shepherd inbox shows it to carol, unread"
expect_match "waits for approval" "$(jq -r '.[0].title' <<<"$OUT")" "with a title saying what waits"
expect_exit 0 "the platform admin's inbox" shp inbox --type APPROVAL_PENDING -o json
expect_eq "$T1 $TP" "$(jq -r '[.[].ticket_id] | sort | map(tostring) | join(" ")' <<<"$OUT")" \
	"the platform admin is an approver everywhere"
expect_exit 0 "table output" as carol inbox
expect_match 'APPROVAL_PENDING' "$OUT" "the table lists the type"
expect_match '\*' "$OUT" "and marks the unread one"

# ---- APPROVAL_COMPLETED / APPROVAL_REJECTED: the requester ---------------------------------
body=$(api_as carol POST "/api/v1/approvals/$T1/approve" -H "$J" -d '{"cluster": "sim1", "reason": "fine"}')
expect_eq 202 "$(code)" "carol approves web-1"
if wait_for 30 ticket_is "$T1" COMPLETED; then pass "web-1 is created"; else fail "web-1 is created" "$(sql "SELECT status FROM approval_tickets WHERE id = $T1")"; fi
expect_eq "1 0" "$(n_of alice APPROVAL_COMPLETED "$T1") $(n_of carol APPROVAL_COMPLETED "$T1")" \
	"alice (and only alice) is told her request completed"
request web-2
T2=$TID
api_as carol POST "/api/v1/approvals/$T2/reject" -H "$J" -d '{"reason": "too big for now"}' >/dev/null
expect_eq 200 "$(code)" "carol rejects web-2"
expect_exit 0 "alice's rejections" as alice inbox --type APPROVAL_REJECTED -o json
expect_eq "1 too big for now" "$(jq -r 'length as $n | .[0] | "\($n) \(.body)"' <<<"$OUT")" \
	"alice is told, with the reason"

# ---- APPROVAL_EXPIRING: once, a day before ------------------------------------------------
request web-3
T3=$TID
sql "UPDATE approval_tickets SET expires_at = now() + interval '2 hours' WHERE id = $T3" >/dev/null
run_job gov.expire '{}' && pass "gov.expire runs" || fail "gov.expire runs"
run_job gov.expire '{}' && pass "gov.expire runs again" || fail "gov.expire runs again"
expect_eq 1 "$(n_of alice APPROVAL_EXPIRING "$T3")" "alice is warned once that web-3's approval expires"

# ---- VM_STATUS_CHANGE: the owner, settled statuses only, coalesced per VM ----------------
expect_exit 0 "a cluster on the Kubernetes simulator" \
	shp cluster add lab --kubeconfig "$T/kubeconfig" --environment test
LAB=$(sql "SELECT id FROM clusters WHERE name = 'lab'")
sql "INSERT INTO vms (cluster_id, namespace, name, owner_id) VALUES ($LAB, 'team-a', 'box-1', $ALICE),
	($LAB, 'team-a', 'box-2', NULL)" >/dev/null
kubesim_ctl /_sim/seed '{"namespace":"team-a","vms":2,"prefix":"box-","running":true,
	"labels":{"app.kubernetes.io/managed-by":"shepherd"}}' >/dev/null
status_is() { [ "$(sql "SELECT status FROM vms WHERE cluster_id = $LAB AND name = '$1'")" = "$2" ]; }
if wait_for 20 status_is box-1 RUNNING && wait_for 5 status_is box-2 RUNNING; then
	pass "the watcher sees the VMs running"
else
	fail "the watcher sees the VMs running" "$(sql "SELECT name, status FROM vms")"
fi
expect_eq 0 "$(n_of alice VM_STATUS_CHANGE)" "the first observation of a VM is no news"
power() { kube PUT "/apis/subresources.kubevirt.io/v1/namespaces/team-a/virtualmachines/$1/$2" \
	-H "$J" -d '{}' >/dev/null; }
vm_note() { sql "SELECT title || ' ' || count || ' ' || (read_at IS NULL) FROM notifications
	WHERE user_id = $ALICE AND type = 'VM_STATUS_CHANGE' ORDER BY id DESC LIMIT 1"; }
note_is() { [ "$(vm_note)" = "$1" ]; }
power box-1 stop
power box-2 stop
if wait_for 20 note_is "VM team-a/box-1 is STOPPED 1 true"; then
	pass "the owner is told box-1 stopped"
else
	fail "the owner is told box-1 stopped" "$(vm_note)"
fi
wait_for 10 status_is box-2 STOPPED
expect_eq "1 0" "$(n_of alice VM_STATUS_CHANGE) $(sql "SELECT count(*) FROM notifications WHERE type = 'VM_STATUS_CHANGE' AND user_id <> $ALICE")" \
	"one notification, and none for the VM without an owner"
expect_match "^(RUNNING|STOPPING) STOPPED box-1 $LAB$" "$(sql "SELECT (data->>'from') || ' ' || (data->>'to') || ' '
	|| (data->>'name') || ' ' || (SELECT id FROM clusters WHERE name = data->>'cluster')
	FROM notifications WHERE user_id = $ALICE AND type = 'VM_STATUS_CHANGE'")" \
	"its data names the VM, its cluster and both statuses"
power box-1 start
if wait_for 20 note_is "VM team-a/box-1 is RUNNING 2 true"; then
	pass "a change back within the window updates the same notification (count 2)"
else
	fail "a change back within the window updates the same notification (count 2)" "$(vm_note)"
fi
expect_eq 1 "$(n_of alice VM_STATUS_CHANGE)" "a flapping VM does not flood the inbox"
expect_eq 1 "$(sql "SELECT count(*) FROM domain_events WHERE type = 'VM_STATUS_CHANGE'
	AND payload->>'name' = 'box-1' AND payload->>'to' = 'RUNNING' AND payload->>'from' <> 'UNKNOWN'")" \
	"each change is still recorded as an event"
api_as alice POST /api/v1/notifications/mark-all-read?type=VM_STATUS_CHANGE >/dev/null
power box-1 stop
if wait_for 20 note_is "VM team-a/box-1 is STOPPED 1 true"; then
	pass "once read, the next change is a new notification"
else
	fail "once read, the next change is a new notification" "$(vm_note)"
fi

# ---- the API: pages, filters, counts, marking read ----------------------------------------
total=$(sql "SELECT count(*) FROM notifications WHERE user_id = $ALICE")
unread=$(sql "SELECT count(*) FROM notifications WHERE user_id = $ALICE AND read_at IS NULL")
expect_match '^[4-9]$' "$total" "alice has several notifications ($total)"
p1=$(api_as alice GET "/api/v1/notifications?limit=2")
cur=$(jq -r .next_cursor <<<"$p1")
p2=$(api_as alice GET "/api/v1/notifications?limit=2&cursor=$cur")
all=$(api_as alice GET "/api/v1/notifications?limit=500")
expect_eq "$(jq -c '[.items[].id][0:4]' <<<"$all")" "$(jq -c -s '[.[].items[].id]' <<<"$p1$p2")" \
	"two pages of 2 are the first 4 of the whole list"
expect_eq true "$(jq '[.items[].id] | . == (sort | reverse)' <<<"$all")" "newest first"
expect_eq "$total" "$(jq '.items | length' <<<"$all")" "the whole list is alice's notifications"
expect_eq "$unread" "$(api_as alice GET /api/v1/notifications/unread-count | jq .unread)" \
	"the unread count"
expect_exit 0 "shepherd inbox count" as alice inbox count
expect_eq "$unread" "$OUT" "prints the number alone"
expect_exit 0 "shepherd inbox count -o json" as alice inbox count -o json
expect_eq "$unread" "$(jq .unread <<<"$OUT")" "or {\"unread\": N}"
expect_exit 0 "inbox --unread --limit 2" as alice inbox --unread --limit 2 -o json
expect_eq "2 true" "$(jq -r '"\(length) \(all(.[]; .read == false))"' <<<"$OUT")" \
	"--unread --limit 2: two unread ones"
expect_exit 0 "inbox list --type" as alice inbox list --type APPROVAL_COMPLETED -o json
expect_eq "APPROVAL_COMPLETED" "$(jq -r '[.[].type] | unique | join(",")' <<<"$OUT")" "--type filters"
first=$(jq -r '[.items[] | select(.read == false)][0].id' <<<"$all")
expect_exit 0 "inbox read ID" as alice inbox read "$first"
expect_match "notification/$first marked read" "$OUT" "says so"
expect_exit 0 "inbox read ID again" as alice inbox read "$first" -o json
expect_eq "true" "$(jq .read <<<"$OUT")" "marking twice is harmless and answers the notification"
expect_eq $((unread - 1)) "$(as alice inbox count)" "one fewer unread"
CAROL_N=$(sql "SELECT id FROM notifications WHERE user_id = $CAROL LIMIT 1")
api_as alice PATCH "/api/v1/notifications/$CAROL_N/read" >/dev/null
expect_eq "404 NOT_FOUND" "$(code) $(jq -r .error.code "$T/body")" "another user's notification is 404"
expect_exit 4 "shepherd inbox read of carol's notification" as alice inbox read "$CAROL_N"
expect_eq "" "$(sql "SELECT read_at FROM notifications WHERE id = $CAROL_N")" "and stays unread"
expect_exit 0 "inbox read --all" as alice inbox read --all
expect_eq "$((unread - 1)) notifications marked read" "$OUT" "says how many"
expect_eq 0 "$(as alice inbox count)" "nothing unread"
body=$(api_as alice POST /api/v1/notifications/mark-all-read)
expect_eq "200 0" "$(code) $(jq .marked <<<"$body")" "mark-all-read again marks nothing"
expect_exit 0 "inbox --unread when all are read" as alice inbox --unread -o json
expect_eq 0 "$(jq length <<<"$OUT")" "an empty list"
expect_match '^[1-9]' "$(as carol inbox count)" "carol's own notifications are untouched"

# ---- hostile input ---------------------------------------------------------------------------
for q in "limit=0" "limit=501" "limit=99999999999999999999" "limit=-1" "cursor=%%%" \
	"cursor=Zm9v" "unread=maybe" "type=lower" "type=%27%20OR%201%3D1" \
	"type=$(printf 'A%.0s' $(seq 1 70))"; do
	api_as alice GET "/api/v1/notifications?$q" >/dev/null
	expect_eq "400 INVALID_ARGUMENT" "$(code) $(jq -r .error.code "$T/body")" "GET ?$q is refused"
done
for id in abc 0 -1 99999999999999999999 "1%20OR%201=1" 999999; do
	api_as alice PATCH "/api/v1/notifications/$id/read" >/dev/null
	expect_eq 404 "$(code)" "PATCH notification '$id' is 404"
done
api_as alice POST "/api/v1/notifications/mark-all-read?up_to=x" >/dev/null
expect_eq 400 "$(code)" "mark-all-read with a bad up_to is refused"
api_as alice GET /api/v1/notifications/unread-count -X DELETE >/dev/null
expect_eq 405 "$(code)" "a wrong method is 405"
curl -s -o /dev/null -w '%{http_code}' --cacert "$T/pki/ca.crt" \
	"https://127.0.0.1:$TLS_PORT/api/v1/notifications" >"$T/code"
expect_eq 401 "$(code)" "no identity, no inbox"
expect_exit 2 "inbox --limit 0" as alice inbox --limit 0
expect_exit 2 "inbox --limit huge" as alice inbox --limit 99999999999
expect_exit 7 "inbox read abc" as alice inbox read abc
expect_exit 2 "inbox read without ID or --all" as alice inbox read
expect_exit 2 "inbox read ID --all" as alice inbox read 1 --all
expect_exit 2 "inbox read ID --type" as alice inbox read 1 --type X
expect_exit 7 "inbox --type with a bad type" as alice inbox --type "bad type"

# ---- retention: old rows go, through the notify.retention job -----------------------------
expect_match '^[1-9]' "$(periodic_jobs notify.retention)" "notify.retention is a periodic job of the queue"
before=$(sql "SELECT count(*) FROM notifications")
sql "UPDATE notifications SET created_at = now() - interval '100 days'
	WHERE id IN (SELECT id FROM notifications WHERE user_id = $ALICE ORDER BY id LIMIT 5)" >/dev/null
sql "UPDATE notifications SET created_at = now() - interval '89 days'
	WHERE id = (SELECT max(id) FROM notifications WHERE user_id = $ALICE)" >/dev/null
run_job notify.retention '{"batch": 2}' && pass "notify.retention runs (batches of 2)" ||
	fail "notify.retention runs (batches of 2)"
expect_eq "$((before - 5)) 0 1" "$(sql "SELECT count(*) || ' ' ||
	count(*) FILTER (WHERE created_at < now() - interval '90 days') || ' ' ||
	count(*) FILTER (WHERE created_at < now() - interval '80 days') FROM notifications")" \
	"the 5 rows older than 90 days are deleted, the 89-day-old one is kept"
run_job notify.retention '{"retention_days": 30}' && pass "with retention_days 30" ||
	fail "with retention_days 30"
expect_eq 0 "$(sql "SELECT count(*) FROM notifications WHERE created_at < now() - interval '30 days'")" \
	"the 89-day-old one goes too"
expect_match 'notify.retention: deleted 5 notification' "$(cat "$T/daemon.log")" "the job logs what it deleted"
finish
