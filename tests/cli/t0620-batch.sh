#!/bin/bash
# Batches end to end, with the real CLI and daemon: 200 VM creates in one batch on a simulated
# cluster and a KubeVirt cluster (the API simulator) whose namespace refuses VirtualMachines
# (403), so 20 children fail: PARTIAL_SUCCESS with the counters right; the failed ones retried
# once the cause is gone: COMPLETED. Approve-all under review, cancel, a power batch by
# selector, the compatibility endpoints, hostile input, the per-user limits with the admin's
# overrides and exemption, and the global limits (open batches, the API request rate) with
# the CLI waiting out Retry-After.
. "$top_srcdir/tests/helpers/lib.sh"
. "$top_srcdir/tests/helpers/kubesim.sh"

start_kubesim || exit 1
ln -s "$T/kubesim-certs" "$T/pki" # one throwaway CA for both
start_daemon_tls --ratelimit-user-cooldown 0 --batch-max-items 250 \
	--execution-dedupe-window 0s
J='Content-Type: application/json'
shp cluster add sim1 --simulated --environment test >/dev/null
shp cluster add kube1 --kubeconfig "$T/kubeconfig" --environment test >/dev/null
shp namespace create batch-a --environment test >/dev/null
shp namespace create batch-b --environment test >/dev/null
shp role bind alice viewer --env test >/dev/null
shp role bind bob viewer --env test >/dev/null
shp role bind carol approver --env test >/dev/null
as alice system create shop >/dev/null
as alice service create web --system shop >/dev/null
shp policy set CREATE_VM --environment test --level 0 >/dev/null

# vm NAME NAMESPACE CLUSTER: one item of a batch file (YAML)
vm() {
	printf -- '- name: %s\n  namespace: %s\n  service: web\n  template: debian-12\n' "$1" "$2"
	printf '  size: small\n  cluster: %s\n' "$3"
}
# batch ID: the parent as its owner sees it
batch() { api_as "${2:-alice}" GET "/api/v1/vms/batch/$1?limit=1"; }
counters() { batch "$1" | jq -r '"\(.status) \(.total) \(.success) \(.failed) \(.pending) \(.cancelled)"'; }

# ---- 200 VMs, 20 of them refused by their cluster --------------------------------------------
for i in $(seq 0 199); do
	if [ "$i" -lt 180 ]; then vm "$(printf 'web-%03d' "$i")" batch-a sim1; else
		vm "$(printf 'web-%03d' "$i")" batch-b kube1; fi
done >"$T/vms.yaml"
kubesim_ctl faults '{"status": 403, "count": 100000,
	"path_prefix": "/apis/kubevirt.io/v1/namespaces/batch-b/virtualmachines"}' >/dev/null
expect_exit 1 "200 VMs in one batch, --wait: some fail (exit 1)" \
	as alice batch submit "$T/vms.yaml" --wait
expect_match "batch 1 submitted: 200 CREATE_VM" "$OUT" "the batch is submitted at once"
expect_match "#199 batch-b/web-199: FAILED CLUSTER_FORBIDDEN" "$OUT" "a failing child, one line"
expect_match "batch 1: PARTIAL_SUCCESS \(180 of 200 succeeded, 20 failed, 0 pending" \
	"$(tail -n 1 <<<"$OUT")" "the last line: PARTIAL_SUCCESS with its counters"
expect_eq "PARTIAL_SUCCESS 200 180 20 0 0" "$(counters 1)" "the parent's persisted counters"
expect_eq "200 200 180" "$(sql "SELECT count(*) || ' ' || count(DISTINCT event_id) || ' ' ||
	count(*) FILTER (WHERE status = 'COMPLETED') FROM approval_tickets
	WHERE parent_ticket_id = 1")" "200 children, each with its own request"
expect_eq 180 "$(sql "SELECT count(*) FROM vms WHERE namespace = 'batch-a'
	AND deleted_at IS NULL AND owner_id IS NOT NULL")" "180 VM rows recorded with their owner"

# the cause removed, the failed ones again: new children of the same parent
kubesim_ctl faults '{}' >/dev/null
expect_exit 0 "retry lists the failed children" as alice batch retry 1
expect_eq 20 "$(grep -c '^  #.* submitted again$' <<<"$OUT")" "20 children submitted again"
expect_match "#180 batch-b/web-180" "$OUT" "named by index and VM"
expect_exit 0 "status follows the batch to COMPLETED (exit 0)" as alice batch status 1
expect_match "batch 1: COMPLETED \(200 of 200" "$(tail -n 1 <<<"$OUT")" "one line per change"
expect_eq "COMPLETED 200 200 0 0 0" "$(counters 1)" "counters after the retry"
expect_eq 20 "$(batch 1 | jq .retried)" "20 children retried"
page=$(api_as alice GET '/api/v1/vms/batch/1?limit=150')
cur=$(jq -r .children.next_cursor <<<"$page")
expect_eq "150 70 null" "$(jq '.children.items | length' <<<"$page") $(api_as alice GET \
	"/api/v1/vms/batch/1?limit=150&cursor=$cur" | jq -r '"\(.children.items | length) \(.children.next_cursor)"')" \
	"the children in pages"
expect_eq 20 "$(api_as alice GET '/api/v1/vms/batch/1?status=FAILED' | jq '.children.items | length')" \
	"the retried failures, by status"
expect_eq 20 "$(sql "SELECT count(*) FROM executions WHERE request_id = (SELECT request_id
	FROM batch_approval_tickets WHERE id = 1) AND status = 'failed'")" \
	"the executions carry the submission's request id"
expect_exit 0 "nothing left to retry" as alice batch retry 1
expect_match "0 child\(ren\) submitted again" "$OUT" "an empty retry says so"
expect_exit 0 "status --once: the parent row and the child table" as alice batch status 1 --once
expect_match "COMPLETED +200 +200" "$OUT" "the parent row"
expect_eq 224 "$(wc -l <<<"$OUT")" "header, row, blank, header and 220 children (20 retried)"
# on a terminal (script(1) gives it one) the view is drawn whole, the screen cleared first
if command -v script >/dev/null; then
	SHEPHERD_TOKEN=$(user_token alice) pty_run "'$SHEPHERD' --server \
		https://127.0.0.1:$TLS_PORT --cacert '$T/pki/ca.crt' batch status 1" >"$T/tty.out" 2>&1
	expect_eq 1 "$(grep -c $'\e\\[2J' "$T/tty.out")" "on a terminal: the view redrawn"
	expect_match "web-199" "$(cat "$T/tty.out")" "with the child table"
fi
expect_exit 0 "batch list" as alice batch list
expect_match "^ *1 +CREATE_VM +COMPLETED" "$(sed -n 2p <<<"$OUT")" "the batch in the list"

# ---- review: approve-all, cancel ------------------------------------------------------------
shp policy set CREATE_VM --environment test --level 2 --runbook https://runbooks.example/vm \
	>/dev/null
{ vm rev-1 batch-a sim1; vm rev-2 batch-a sim1; vm rev-3 batch-a sim1; } >"$T/rev.yaml"
expect_exit 0 "a batch under review" as alice batch submit "$T/rev.yaml" --json
B2=$(jq -r .batch_id <<<"$OUT")
expect_eq "PENDING_APPROVAL 3" "$(jq -r '"\(.status) \(.awaiting_approval)"' <<<"$OUT")" \
	"three children wait for review"
expect_eq "/api/v1/vms/batch/$B2" "$(jq -r .status_url <<<"$OUT")" "its status_url"
expect_eq 200 "$(api_as carol GET "/api/v1/vms/batch/$B2" >/dev/null; code)" \
	"an approver of the environment sees the batch"
expect_exit 1 "alice cannot approve her own children" as alice batch approve "$B2"
expect_match "3 refused" "$(tail -n 1 <<<"$OUT")" "every child refused"
expect_exit 0 "carol approves all at once" as carol batch approve "$B2" --cluster sim1 \
	--reason "capacity planned"
expect_eq 3 "$(grep -c 'APPROVED (plan' <<<"$OUT")" "one decision per child"
expect_eq "3 3" "$(sql "SELECT count(*) || ' ' || count(DISTINCT d.plan_hash)
	FROM approval_decisions d
	JOIN approval_tickets t ON t.id = d.ticket_id WHERE t.parent_ticket_id = $B2
	AND d.approver = 'carol' AND d.plan_hash = t.approved_plan_hash")" \
	"each decision carries its child's own plan hash"
expect_exit 0 "the approved batch completes" as alice batch status "$B2"
expect_eq "COMPLETED 3 3 0 0 0" "$(counters "$B2")" "counters of the approved batch"

{ vm can-1 batch-a sim1; vm can-2 batch-a sim1; } >"$T/can.yaml"
B3=$(as alice batch submit "$T/can.yaml" --json | jq -r .batch_id)
expect_exit 0 "cancel lists the children cancelled" as alice batch cancel "$B3"
expect_eq 2 "$(grep -c ' cancelled$' <<<"$OUT")" "both children"
expect_eq "CANCELLED 2 0 0 0 2" "$(counters "$B3")" "the batch is CANCELLED"
expect_eq "CANCELLED CANCELLED" "$(sql "SELECT string_agg(e.status::text, ' ') FROM
	approval_tickets t JOIN domain_events e ON e.id = t.event_id
	WHERE t.parent_ticket_id = $B3")" "their requests too"

# ---- a power batch by selector ----------------------------------------------------------------
expect_exit 0 "vm stop --selector, --wait" \
	as alice vm stop --selector 'namespace=batch-a,name=web-00?' --wait
expect_match "batch [0-9]+ submitted: 10 STOP_VM" "$OUT" "ten VMs selected"
expect_match "COMPLETED \(10 of 10" "$(tail -n 1 <<<"$OUT")" "all stopped"
expect_exit 7 "an unknown selector key" as alice vm stop --selector 'colour=red'
expect_match "unknown key 'colour'" "$ERR" "names the key"
expect_exit 7 "a selector matching nothing" as alice vm start --selector 'name=nope-*'
expect_exit 2 "a name and a selector" as alice vm start web-000 --selector name=web-000
expect_exit 7 "bob's selector sees none of shop's VMs" as bob vm stop --selector name=web-*
for sel in 'name=a,name=b' 'namespace=' 'name' '=x' ',,' "name=$(printf 'x%.0s' $(seq 1 513))"; do
	api_as alice POST /api/v1/vms/batch/power -H "$J" \
		-d "$(jq -n --arg s "$sel" '{operation: "stop", selector: $s}')" >/dev/null
	expect_eq "400 selector" "$(code) $(jq -r .error.details.field "$T/body")" \
		"a bad selector refused: ${sel:0:20}"
done
out=$(api_as alice POST /api/v1/vms/batch/power -H "$J" \
	-d '{"operation": "stop", "selector": "name=web_00%"}')
expect_eq "400 BATCH_EMPTY" "$(code) $(jq -r .error.code <<<"$out")" "% and _ are no wildcards"
shp policy set START_VM --environment test --level 1 >/dev/null
expect_exit 7 "a level-1 power batch without --yes" as alice vm start --selector name=web-01?
expect_match "CONFIRMATION_REQUIRED|needs confirmation" "$ERR" "names the confirmation"
expect_exit 0 "with --yes" as alice vm start --selector name=web-01? --yes --wait
expect_match "COMPLETED \(10 of 10" "$(tail -n 1 <<<"$OUT")" "ten started"
shp policy set START_VM --environment test --level 0 >/dev/null

# ---- the compatibility endpoints --------------------------------------------------------------
body='{"items": [{"name": "cmp-1", "namespace": "batch-a", "service": "web",
	"template": "debian-12", "size": "small"}]}'
out=$(api_as alice POST /api/v1/approvals/batch -H "$J" -d "$body")
expect_eq "202 approvals CREATE_VM PENDING_APPROVAL" \
	"$(code) $(jq -r '"\(.source) \(.kind) \(.status)"' <<<"$out")" \
	"POST /approvals/batch: the same pipeline"
out=$(api_as alice POST /api/v1/vms/batch/power -H "$J" \
	-d '{"operation": "start", "names": ["batch-a/web-000", "web-001"]}')
expect_eq "202 power START_VM 2" "$(code) $(jq -r '"\(.source) \(.kind) \(.total)"' <<<"$out")" \
	"POST /vms/batch/power with names"
api_as alice POST /api/v1/vms/batch/power -H "$J" -d '{"operation": "halt", "names": ["x"]}' \
	>/dev/null
expect_eq 400 "$(code)" "an unknown operation"

# ---- hostile input ---------------------------------------------------------------------------
n0=$(sql "SELECT count(*) FROM batch_approval_tickets")
printf -- '- name: [unclosed\n' >"$T/bad.yaml"
expect_exit 7 "malformed YAML" as alice batch submit "$T/bad.yaml"
expect_match "bad.yaml" "$ERR" "the error names the file"
{ vm ok-1 batch-a sim1; vm ok-2 batch-a sim1 | sed 's/size: small/size: 5/'; } >"$T/types.yaml"
expect_exit 7 "a size that is a number" as alice batch submit "$T/types.yaml"
expect_match "types.yaml:[0-9]+: item 1 \(ok-2\), field 'size'" "$ERR" \
	"file, line, item and field named"
{ vm odd-1 batch-a sim1; printf '  colour: red\n'; } >"$T/unknown.yaml"
expect_exit 7 "an unknown field" as alice batch submit "$T/unknown.yaml"
expect_match "item 0 \(odd-1\).*colour" "$ERR" "the unknown field named"
{ vm dup-1 batch-a sim1; vm dup-1 batch-a sim1; } >"$T/dup.yaml"
expect_exit 7 "a name twice in one batch" as alice batch submit "$T/dup.yaml"
expect_match "item 1 \(dup-1\)" "$ERR" "the second one refused"
printf '{"not": "a list"}\n' >"$T/map.yaml"
expect_exit 7 "a file that is not a list" as alice batch submit "$T/map.yaml"
big=$(jq -n '{items: [range(251) | {name: "big-\(.)", namespace: "batch-a", service: "web",
	template: "debian-12", size: "small"}]}')
out=$(api_as alice POST /api/v1/vms/batch -H "$J" -d "$big")
expect_eq "400 BATCH_TOO_LARGE 250" "$(code) $(jq -r '"\(.error.code) \(.error.details.max)"' \
	<<<"$out")" "more items than batch.max_items"
api_as alice POST /api/v1/vms/batch -H "$J" -d '{"items": [' >/dev/null
expect_eq 400 "$(code)" "malformed JSON"
out=$(api_as alice POST /api/v1/vms/batch -H "$J" -d '{"items": "web-1"}')
expect_eq "400 items" "$(code) $(jq -r .error.details.field <<<"$out")" "items of the wrong type"
out=$(api_as alice POST /api/v1/vms/batch -H "$J" -d '{"items": [{"name": 5}], "x": 1}')
expect_eq 400 "$(code)" "an unknown member of the body"
expect_eq "$n0" "$(sql "SELECT count(*) FROM batch_approval_tickets")" \
	"no refused batch left anything behind"
for p in /api/v1/vms/batch/1 /api/v1/vms/batch/abc; do
	api_as bob GET "$p" >/dev/null
	expect_eq 404 "$(code)" "bob cannot see $p"
done
api_as bob POST /api/v1/vms/batch/1/retry >/dev/null
expect_eq 404 "$(code)" "nor retry alice's batch"
api_as bob POST /api/v1/vms/batch/1/cancel >/dev/null
expect_eq 404 "$(code)" "nor cancel it"
api_as bob POST /api/v1/vms/batch/1/approve >/dev/null
expect_eq 404 "$(code)" "nor approve its children"
expect_eq 0 "$(api_as bob GET /api/v1/vms/batch | jq '.items | length')" "bob lists none"
api_as alice GET '/api/v1/vms/batch?all=true' >/dev/null
expect_eq 403 "$(code)" "only admins list everybody's"

# ---- per-user limits, the admin's overrides ---------------------------------------------------
vm lim-1 batch-a sim1 >"$T/one.yaml"
api_as alice PUT /api/v1/admin/rate-limits/alice -H "$J" -d '{"cooldown_s": 3}' >/dev/null
expect_eq 403 "$(code)" "alice cannot set her own limits"
out=$(api PUT /api/v1/admin/rate-limits/alice -H "$J" -d '{"cooldown_s": 3, "reason": "t"}')
expect_eq "200 3 false" "$(code) $(jq -r '"\(.cooldown_s) \(.exempt)"' <<<"$out")" \
	"the admin sets alice's cooldown"
as alice batch submit "$T/one.yaml" >/dev/null 2>&1
vm lim-2 batch-a sim1 >"$T/two.yaml"
out=$(api_as alice POST /api/v1/vms/batch -H "$J" -D "$T/headers" \
	-d "$(jq -n '{items: [{name: "lim-x", namespace: "batch-a", service: "web",
	template: "debian-12", size: "small"}]}')")
expect_eq "429 RATE_LIMITED user_cooldown" \
	"$(code) $(jq -r '"\(.error.code) \(.error.details.limit)"' <<<"$out")" \
	"a second batch within the cooldown"
expect_match "^Retry-After: [1-3]" "$(tr -d '\r' <"$T/headers" | grep -i retry-after)" \
	"with Retry-After"
expect_exit 0 "the CLI waits it out and submits" as alice batch submit "$T/two.yaml"
expect_match "retrying in [1-3]s" "$ERR" "a countdown on stderr"
expect_match "batch [0-9]+ submitted" "$OUT" "then the batch"
SHEPHERD_NO_RETRY=1 expect_exit 9 "SHEPHERD_NO_RETRY=1: no waiting (exit 9)" \
	as alice batch submit "$T/one.yaml"
api PUT /api/v1/admin/rate-limits/alice -H "$J" -d '{"pending_batches": 0}' >/dev/null
out=$(api_as alice POST /api/v1/vms/batch/power -H "$J" \
	-d '{"operation": "start", "names": ["web-002"]}')
expect_eq "429 user_pending_batches" "$(code) $(jq -r .error.details.limit <<<"$out")" \
	"no open batch allowed"
api PUT /api/v1/admin/rate-limits/alice -H "$J" -d '{"pending_batches": 0, "exempt": true}' \
	>/dev/null
out=$(api_as alice POST /api/v1/vms/batch/power -H "$J" \
	-d '{"operation": "start", "names": ["web-002"]}')
expect_eq 202 "$(code)" "an exempt user passes"
expect_eq "true $(id -un)" "$(api GET /api/v1/admin/rate-limits/alice |
	jq -r '"\(.exempt) \(.set_by)"')" "who set it is kept"
expect_eq 1 "$(api GET /api/v1/admin/rate-limits | jq '.items | length')" "one override"
expect_eq "false false" "$(api DELETE /api/v1/admin/rate-limits/alice |
	jq -r '"\(.exempt) \(.override)"')" "the override removed"
api PUT /api/v1/admin/rate-limits/alice -H "$J" -d '{"pending_children": 1}' >/dev/null
out=$(api_as alice POST /api/v1/vms/batch -H "$J" -d "$(jq -n '{items: [range(2) |
	{name: "pc-\(.)", namespace: "batch-a", service: "web", template: "debian-12",
	 size: "small"}]}')")
expect_eq "429 user_pending_children" "$(code) $(jq -r .error.details.limit <<<"$out")" \
	"too many pending children"
api DELETE /api/v1/admin/rate-limits/alice >/dev/null

# ---- global limits: open batches, the API request rate ------------------------------------
stop_daemon
start_daemon_tls --ratelimit-user-cooldown 0 --ratelimit-global-pending-batches 1 \
	--ratelimit-api-rate 1 --ratelimit-api-burst 2
out=$(api_as alice POST /api/v1/vms/batch -H "$J" -D "$T/headers" -d "$(jq -n '{items:
	[{name: "g-1", namespace: "batch-a", service: "web", template: "debian-12",
	  size: "small"}]}')")
expect_eq "429 global_pending_batches" "$(code) $(jq -r .error.details.limit <<<"$out")" \
	"too many open batches of everybody"
for i in 1 2 3 4; do api_as alice POST /api/v1/systems -H "$J" -d '{"x": 1}' >/dev/null; done
expect_eq 429 "$(code)" "the API request rate refuses a burst of changes"
expect_eq api_rate "$(jq -r .error.details.limit "$T/body")" "naming the limit"
for i in 1 2 3 4 5; do shp namespace create "adm-$i" --environment test >/dev/null || break; done
expect_eq 5 "$i" "the platform admin is exempt"
# the bucket refills continuously: drain it, then the CLI; a refill can win the race, so try
# again a few times until the CLI had to wait
for i in 1 2 3 4 5; do
	for k in 1 2 3; do api_as alice POST /api/v1/systems -H "$J" -d '{"x": 1}' >/dev/null; done
	expect_exit 0 "the CLI goes on after a refusal ($i)" as alice system create "other-$i"
	grep -q "retrying in" <<<"$ERR" && break
done
expect_match "rate limited.*api_rate.*retrying in 1s" "$ERR" "a countdown, then the change"
finish
