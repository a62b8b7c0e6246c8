#!/bin/bash
# The VNC console through the real daemon, with several users: tokens (single use, bound to
# their user, expired ones refused, altered ones refused, never in a log or an audit row), the
# WebSocket upgrade's refusals before the 101, a stopped VM, the prod grant (refused without
# one, a VNC_ACCESS request approved and shortened by an approver, the grant and the inbox
# notification), the session rows and audit rows with their bytes, and a real RFB handshake
# through the whole chain: viewer (rfb-probe) -> shepherd vnc open -> shepherdd (socket and
# TLS) -> the simulated cluster, and -> the KubeVirt provider -> the API simulator.
. "$top_srcdir/tests/helpers/lib.sh"
. "$top_srcdir/tests/helpers/kubesim.sh"
: "${RFB_PROBE:=$top_builddir/tests/helpers/rfb-probe}"

start_kubesim --tick-ms 20 || exit 1
ln -s "$T/kubesim-certs" "$T/pki" # one throwaway CA for both
start_daemon_tls --execution-dedupe-window 0s
J='Content-Type: application/json'
for u in alice carol dave tess; do user_token "$u" >/dev/null; done
shp role bind alice viewer --env test,prod >/dev/null
shp role bind carol viewer --env test,prod >/dev/null
shp role bind dave viewer --env test,prod >/dev/null
shp role bind tess approver --env prod >/dev/null
expect_exit 0 "a test namespace" shp namespace create team-a --environment test
expect_exit 0 "a prod namespace" shp namespace create pay-prod --environment prod
expect_exit 0 "a simulated test cluster" shp cluster add sim1 --simulated --environment test
expect_exit 0 "a simulated prod cluster" shp cluster add simp --simulated --environment prod
expect_exit 0 "a KubeVirt cluster (the API simulator)" \
	shp cluster add kube1 --kubeconfig "$T/kubeconfig" --environment test
api_as alice POST /api/v1/systems -H "$J" -d '{"name": "shop"}' >/dev/null
expect_eq 202 "$(code)" "alice creates (and owns) system shop"
shp tenant grant shop carol member >/dev/null

# vm CLUSTER NAMESPACE NAME: created on the cluster by a task, then given to system shop
vm() {
	printf 'steps:\n  - {action: vm.create, targets: [%s/%s], params: {cluster: %s, namespace: %s, name: %s, cpus: 1, memory: 1Gi}}\n' \
		"$2" "$3" "$1" "$2" "$3" >"$T/create.yaml"
	shp tasks submit -f "$T/create.yaml" --tenant shop --yes --wait -o json >"$T/task.json" &&
		sql "UPDATE vms SET system = 'shop', service = 'front' WHERE namespace = '$2' AND name = '$3'" >/dev/null
}
expect_exit 0 "VM web-1 on the simulated test cluster" vm sim1 team-a web-1
expect_exit 0 "VM db-1 on the simulated prod cluster" vm simp pay-prod db-1
expect_exit 0 "VM kv-1 in the API simulator" vm kube1 team-a kv-1
running() { # running NAME: wait until the VM row says RUNNING
	for _ in $(seq 1 100); do
		[ "$(sql "SELECT status FROM vms WHERE name = '$1'")" = RUNNING ] && return 0
		sleep 0.1
	done
	return 1
}
for v in web-1 db-1 kv-1; do expect_exit 0 "$v runs" running "$v"; done

# upgrade USER|- PATH TOKEN: the WebSocket upgrade with curl (as USER over TLS, or over the
# socket as the admin); a 101 is held for a second and dropped; the status is then $(code)
upgrade() {
	local who=$1 path=$2 token=$3 auth=() url="http://localhost$2" sock=(--unix-socket "$SOCK")
	if [ "$who" != - ]; then
		auth=(-H "Authorization: Bearer $(user_token "$who")")
		url="https://127.0.0.1:$TLS_PORT$path" sock=(--cacert "$T/pki/ca.crt")
	fi
	curl -s --max-time 1 -o "$T/body" -w '%{http_code}' "${sock[@]}" "${auth[@]}" \
		-H "Connection: Upgrade" -H "Upgrade: websocket" -H "Sec-WebSocket-Version: 13" \
		-H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" \
		-H "Sec-WebSocket-Protocol: vnc.shepherd.io" \
		${token:+-H "X-Shepherd-Console-Token: $token"} "$url" >"$T/code"
	cat "$T/body"
}
errcode() { jq -r .error.code "$T/body" 2>/dev/null; }
WEB=/api/v1/vms/web-1/vnc?namespace=team-a

# ---- tokens in test: no approval
expect_exit 0 "alice gets a token for web-1 (test: no approval)" as alice vnc token web-1 --json
tok=$(jq -r .token <<<"$OUT")
expect_match '^shvnc1\.[0-9a-f]{8}\.[0-9a-f]+$' "$tok" "a sealed token with its key id"
expect_eq "vnc.shepherd.io X-Shepherd-Console-Token $WEB" \
	"$(jq -r '[.protocol, .header, .path] | join(" ")' <<<"$OUT")" "with where and how to use it"
expect_match '^(29[0-9]|300)$' "$(jq -r .expires_in_s <<<"$OUT")" "valid for console.token_ttl (5m)"
expect_exit 0 "the token alone, for scripts" as alice vnc token web-1
expect_match '^shvnc1\.' "$OUT" "one line"
api_as dave POST /api/v1/vms/web-1/console/token >/dev/null
expect_eq 404 "$(code)" "dave, outside system shop, does not see web-1 (404)"

upgrade carol "$WEB" "$tok" >/dev/null
expect_eq "403 TOKEN_NOT_YOURS" "$(code) $(errcode)" "carol cannot use alice's token"
upgrade alice "$WEB" "" >/dev/null
expect_eq "401 TOKEN_REQUIRED" "$(code) $(errcode)" "no token: 401"
upgrade alice "$WEB" "${tok%?}0" >/dev/null
[ "${tok: -1}" = 0 ] && upgrade alice "$WEB" "${tok%?}1" >/dev/null
expect_eq "400 TOKEN_INVALID" "$(code) $(errcode)" "an altered token: 400"
upgrade alice /api/v1/vms/kv-1/vnc "$tok" >/dev/null
expect_eq "400 TOKEN_INVALID" "$(code) $(errcode)" "a token for another VM: 400"
api_as alice GET "$WEB" -H "X-Shepherd-Console-Token: $tok" >/dev/null
expect_eq "400 UPGRADE_REQUIRED" "$(code) $(errcode)" "a plain GET is not an upgrade"
upgrade alice "$WEB" "$tok" >/dev/null
expect_eq 101 "$(code)" "alice opens web-1's console with her token (101)"
expect_match 'RFB 003\.008' "$(tr -cd '[:print:]' <"$T/body")" \
	"and the VM's RFB greeting comes through"
upgrade alice "$WEB" "$tok" >/dev/null
expect_eq "409 TOKEN_REPLAYED" "$(code) $(errcode)" "the same token again: replay refused"
expect_eq 1 "$(sql "SELECT count(*) FROM console_tokens WHERE used_at IS NOT NULL")" \
	"one marker set"

# an expired token: the marker row says so whatever the claims (another replica's clock)
expect_exit 0 "another token" as alice vnc token web-1 --json
tok2=$(jq -r .token <<<"$OUT")
sql "UPDATE console_tokens SET issued_at = now() - interval '1 hour', expires_at = now() - interval '1 second' WHERE jti = '$(jq -r .jti <<<"$OUT")'" >/dev/null
upgrade alice "$WEB" "$tok2" >/dev/null
expect_eq "403 TOKEN_EXPIRED" "$(code) $(errcode)" "an expired token is refused"
expect_exit 1 "the table refuses a lifetime over 2 hours" \
	sql "UPDATE console_tokens SET expires_at = issued_at + interval '3 hours'"

expect_eq 0 "$(grep -c -F -e "$tok" -e "$tok2" "$T/daemon.log")" "no token in the daemon's log"
expect_eq 0 "$(sql "SELECT count(*) FROM audit_log WHERE details::text LIKE '%shvnc1%'")" \
	"nor in the audit log"
expect_eq 0 "$(sql "SELECT count(*) FROM idempotency_keys WHERE response_body LIKE '%shvnc1%'")" \
	"nor in the idempotency store"

# ---- a stopped VM
printf 'steps:\n  - {action: vm.power, targets: [team-a/web-1], params: {cluster: sim1, namespace: team-a, name: web-1, op: stop}}\n' >"$T/stop.yaml"
expect_exit 0 "web-1 is stopped" shp tasks submit -f "$T/stop.yaml" --tenant shop --yes --wait
expect_exit 0 "a token for the stopped VM" as alice vnc token web-1
upgrade alice "$WEB" "$OUT" >/dev/null
expect_eq 409 "$(code)" "its console is refused: the VM is not running (409)"
expect_match 'not running' "$(jq -r .error.message "$T/body")" "saying so"

# ---- prod: a grant is needed
api_as alice POST "/api/v1/vms/db-1/console/token" >/dev/null
expect_eq "403 VNC_GRANT_REQUIRED" "$(code) $(errcode)" "no prod token without a grant"
expect_exit 5 "the CLI says so (exit 5)" as alice vnc token db-1
expect_match 'vnc request' "$ERR" "and how to ask"
expect_exit 2 "a request longer than 2h is refused" \
	as alice vnc request db-1 --duration 3h --reason "debugging the boot"
expect_exit 0 "alice asks for 1h of console access" \
	as alice vnc request db-1 --duration 1h --reason "debugging the boot" -o json
expect_eq "PENDING_APPROVAL VNC_ACCESS" "$(jq -r '[.status, .type] | join(" ")' <<<"$OUT")" \
	"a VNC_ACCESS ticket waits for an approver"
ticket=$(jq -r .ticket_id <<<"$OUT")
api_as tess POST "/api/v1/approvals/$ticket/approve" -H "$J" -d '{"duration_s": 900, "cluster": "simp"}' >/dev/null
expect_eq 400 "$(code)" "an approval naming a cluster is refused (nothing runs on one)"
api_as tess POST "/api/v1/approvals/$ticket/approve" -H "$J" -d '{"duration_s": 9000}' >/dev/null
expect_eq 400 "$(code)" "a duration over 2h is refused"
expect_exit 0 "tess approves it with the usual command, shortened to 15 min" \
	as tess approvals approve "$ticket" --duration 15m --reason "15 minutes are enough" -o json
expect_eq COMPLETED "$(jq -r .status <<<"$OUT")" "the request is carried out at once"
expect_match '^(89[0-9]|900)$' \
	"$(sql "SELECT extract(epoch FROM expires_at - now())::int FROM console_grants g JOIN users u ON u.id = g.user_id WHERE u.name = 'alice' AND g.ticket_id = $ticket AND g.granted_by = 'tess'")" \
	"alice holds a 15-minute grant from that ticket"
expect_eq 1 "$(sql "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id WHERE u.name = 'alice' AND n.type = 'VNC_ACCESS_GRANTED'")" \
	"and an inbox notification saying so"
expect_exit 0 "now alice gets a prod token" as alice vnc token db-1 --json
expect_match '^(29[0-9]|300)$' "$(jq -r .expires_in_s <<<"$OUT")" "within the grant"
api_as carol POST "/api/v1/vms/db-1/console/token" >/dev/null
expect_eq "403 VNC_GRANT_REQUIRED" "$(code) $(errcode)" "the grant is alice's, not carol's"
upgrade alice /api/v1/vms/db-1/vnc "$(jq -r .token <<<"$OUT")" >/dev/null
expect_eq 101 "$(code)" "alice opens db-1's console"

# ---- the KubeVirt provider's console (the API simulator), over the socket
api POST /api/v1/vms/kv-1/console/token >/dev/null
expect_eq 201 "$(code)" "a token for kv-1 (the platform admin may act on any VM)"
upgrade - /api/v1/vms/kv-1/vnc "$(jq -r .token "$T/body")" >/dev/null
expect_eq 101 "$(code)" "kv-1's console opens through the KubeVirt provider"
expect_match 'RFB 003\.008' "$(tr -cd '[:print:]' <"$T/body")" \
	"with the API simulator's RFB greeting"
ended() { # ended VM: wait until the VM's session has ended
	for _ in $(seq 1 50); do
		[ -n "$(sql "SELECT ended_at FROM console_sessions WHERE vm_name = '$1'")" ] && return 0
		sleep 0.1
	done
	return 1
}
expect_exit 0 "the session ends when its viewer goes" ended kv-1

# ---- the records (the daemon stopped: every session has ended)
stop_daemon
expect_eq "3|3" "$(sql "SELECT count(*), count(ended_at) FROM console_sessions")" \
	"three sessions (the refused upgrades opened none), all ended"
expect_eq 0 "$(sql "SELECT count(*) FROM console_sessions WHERE end_reason NOT IN ('viewer_closed', 'console_closed', 'shutdown')")" \
	"each by its viewer, its VM or the daemon's stop"
expect_eq "viewer_closed" "$(sql "SELECT end_reason FROM console_sessions WHERE vm_name = 'kv-1'")" \
	"the socket viewer's end is seen at once"
expect_eq 2 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'VNC_SESSION_STARTED' AND actor = 'alice'")" \
	"VNC_SESSION_STARTED for alice's two"
expect_eq 3 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'VNC_SESSION_ENDED'")" \
	"VNC_SESSION_ENDED for each"
expect_eq "web-1|12|0" "$(sql "SELECT resource_name, details->>'bytes_out', details->>'bytes_in' FROM audit_log WHERE action = 'VNC_SESSION_ENDED' AND details->>'vm' = 'web-1'")" \
	"with the VM and the bytes each way (the 12-byte greeting out)"
expect_eq "kv-1|12|root" "$(sql "SELECT vm_name, bytes_out, user_name FROM console_sessions WHERE vm_name = 'kv-1'")" \
	"and the session row likewise"

finish
