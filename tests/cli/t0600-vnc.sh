#!/bin/bash
# The VNC console through the real daemon, with several users: tokens (single use, bound to
# their user, expired ones refused, altered ones refused, never in a log, an audit row or the
# idempotency store), the WebSocket upgrade's refusals before the 101 (each audited), hostile
# requests, a stopped VM, the prod grant (refused without one, a VNC_ACCESS request approved
# and shortened by an approver, the grant and the inbox notification, vnc request --wait), a
# key rotation, the session rows and audit rows with their bytes, and a real RFB handshake
# through the whole chain: viewer (rfb-probe) -> shepherd vnc open -> shepherdd (socket and
# TLS) -> the simulated cluster, and -> the KubeVirt provider -> the API simulator.
. "$top_srcdir/tests/helpers/lib.sh"
. "$top_srcdir/tests/helpers/kubesim.sh"
: "${RFB_PROBE:=$top_builddir/tests/helpers/rfb-probe}"
WS="python3 $top_srcdir/tests/helpers/ws-client.py"

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
	for _ in $(seq 1 300); do
		[ "$(sql "SELECT status FROM vms WHERE name = '$1'")" = RUNNING ] && return 0
		sleep 0.1
	done
	return 1
}
for v in web-1 db-1 kv-1; do expect_exit 0 "$v runs" running "$v"; done

# upgrade USER|- PATH TOKEN: the WebSocket upgrade (as USER over TLS, or over the socket as the
# admin); the status is then $(code) ("000" without an answer), and $T/body holds the refusal's
# body or, after a 101, the VM's RFB greeting (the viewer closes then)
upgrade() {
	local who=$1 conn=(--unix "$SOCK") out
	if [ "$who" != - ]; then
		conn=(--tls "127.0.0.1:$TLS_PORT" --cacert "$T/pki/ca.crt" --token "$(user_token "$who")")
	fi
	out=$($WS "${conn[@]}" --protocol vnc.shepherd.io \
		${3:+--header "X-Shepherd-Console-Token: $3"} "$2" greeting 2>&1)
	sed -n 's/^status //p' <<<"$out" | grep . >"$T/code" || echo 000 >"$T/code"
	sed -n '/^body /,$p' <<<"$out" | sed '1s/^body //' >"$T/body"
	grep -q '^status ' <<<"$out" || printf '%s\n' "$out" >&2
	cat "$T/body"
}
errcode() { jq -r .error.code "$T/body" 2>/dev/null; }
# tls_cli USER ARGS...: the CLI as USER over TLS, exec'd (so that $! of `tls_cli ... &` is it)
tls_cli() {
	local token
	token=$(user_token "$1") || return 8
	shift
	SHEPHERD_TOKEN=$token exec "$SHEPHERD" --server "https://127.0.0.1:$TLS_PORT" \
		--cacert "$T/pki/ca.crt" "$@"
}
sock_cli() { exec "$SHEPHERD" --socket "$SOCK" "$@"; }
# vnc_open CLI USER|- VM ARGS...: `vnc open VM --print-url` in the background (tls_cli as USER,
# or sock_cli), waiting for its address: $VNC_PORT, $VNC_PID
vnc_open() {
	local how=$1 who=$2
	shift 2
	rm -f "$T/url"
	if [ "$how" = tls ]; then
		tls_cli "$who" vnc open "$@" --print-url >"$T/url" 2>"$T/open.err" &
	else
		sock_cli vnc open "$@" --print-url >"$T/url" 2>"$T/open.err" &
	fi
	VNC_PID=$!
	BG_PIDS="$BG_PIDS $VNC_PID"
	for _ in $(seq 1 300); do
		[ -s "$T/url" ] && break
		kill -0 "$VNC_PID" 2>/dev/null || break
		sleep 0.05
	done
	VNC_PORT=$(sed -n 's|^vnc://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$T/url")
	[ -n "$VNC_PORT" ] && [ "$(wc -l <"$T/url")" = 1 ]
}
# vnc_stop: SIGTERM ends it; its exit status is then $VNC_STATUS
vnc_stop() {
	kill -TERM "$VNC_PID" 2>/dev/null
	wait "$VNC_PID"
	VNC_STATUS=$?
}
probe() { timeout 10 "$RFB_PROBE" "$@"; }
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
alt=0
[ "${tok: -1}" = 0 ] && alt=1 # an altered token, never the token itself
upgrade alice "$WEB" "${tok%?}$alt" >/dev/null
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

upgrade alice "$WEB" "shvnc1.$(head -c 3000 /dev/zero | tr '\0' a)" >/dev/null
expect_eq "400 TOKEN_INVALID" "$(code) $(errcode)" "an oversized token: 400"
expect_eq "TOKEN_EXPIRED TOKEN_INVALID TOKEN_NOT_YOURS TOKEN_REPLAYED TOKEN_REQUIRED" \
	"$(sql "SELECT string_agg(DISTINCT details->>'code', ' ') FROM audit_log WHERE action = 'VNC_SESSION_DENIED' AND outcome = 'denied'")" \
	"each refused connection is audited (VNC_SESSION_DENIED with its code)"
expect_eq "$(sql "SELECT id FROM users WHERE name = 'alice'")" \
	"$(sql "SELECT details->>'issued_to' FROM audit_log WHERE action = 'VNC_SESSION_DENIED' AND actor = 'carol'")" \
	"carol's attempt with alice's token names whose it was"

# ---- hostile requests
api_as alice POST /api/v1/vms/web-1/console/requests -H "$J" -d '{"duration_s": "1h", "reason": "x"}' >/dev/null
expect_eq 400 "$(code)" "a duration that is not a number: 400"
api_as alice POST /api/v1/vms/web-1/console/requests -H "$J" -d '{"duration_s": 600, "reason": "x", "admin": true}' >/dev/null
expect_eq 400 "$(code)" "an unknown field: 400"
api_as alice POST /api/v1/vms/web-1/console/requests -H "$J" -d '{"duration_s": 600, "reason": ""}' >/dev/null
expect_eq 400 "$(code)" "an empty reason: 400"
api_as alice POST /api/v1/vms/web-1/console/requests -H "$J" \
	-d "{\"duration_s\": 600, \"reason\": \"$(head -c 1100 /dev/zero | tr '\0' r)\"}" >/dev/null
expect_eq 400 "$(code)" "a reason over 1024 bytes: 400"
api_as alice POST /api/v1/vms/web-1/console/requests -H "$J" -d '{"duration_s": 30, "reason": "x"}' >/dev/null
expect_eq 400 "$(code)" "less than a minute: 400"
api_as alice POST '/api/v1/vms/Web_1%2F..%0a/console/token' >/dev/null
expect_eq 404 "$(code)" "a hostile VM name is just not found"
api_as alice POST /api/v1/vms/web-1/console/token -H "$J" -d '{"ttl": 99999}' >/dev/null
expect_eq 400 "$(code)" "the token takes no parameters"

expect_eq 0 "$(grep -c -F -e "$tok" -e "$tok2" "$T/daemon.log")" "no token in the daemon's log"
expect_eq 0 "$(sql "SELECT count(*) FROM audit_log WHERE details::text LIKE '%shvnc1%'")" \
	"nor in the audit log"
expect_eq "$(cut -d. -f2 <<<"$tok")" \
	"$(sql "SELECT details->>'sealed_with' FROM audit_log WHERE action = 'VNC_TOKEN_ISSUED' AND details->>'jti' = '$(sql "SELECT jti FROM console_tokens ORDER BY issued_at, jti LIMIT 1")' ")" \
	"VNC_TOKEN_ISSUED names the jti and the key that sealed the token"
expect_eq 0 "$(sql "SELECT count(*) FROM idempotency_keys WHERE response_body LIKE '%shvnc1%'")" \
	"nor in the idempotency store"

# ---- the whole chain: viewer -> shepherd vnc open -> shepherdd -> the simulated cluster
expect_exit 0 "vnc open over the socket prints one vnc:// line" vnc_open sock - web-1 \
	--namespace team-a
expect_exit 0 "a VNC viewer's RFB handshake through it" probe 127.0.0.1 "$VNC_PORT"
expect_eq "desktop: web-1
framebuffer: 64x48" "$OUT" "the VM's desktop, and a whole-screen update"
expect_exit 0 "a second viewer after the first (a fresh token)" probe 127.0.0.1 "$VNC_PORT"
exec 3<>"/dev/tcp/127.0.0.1/$VNC_PORT"
expect_exit 0 "another viewer while one stays connected" probe 127.0.0.1 "$VNC_PORT"
greeting=
read -r -t 5 greeting <&3
expect_eq "RFB 003.008" "$greeting" "the one that stayed has its own session's greeting"
exec 3<&-
vnc_stop
expect_eq 0 "$VNC_STATUS" "SIGTERM ends vnc open, exit 0"
expect_exit 0 "vnc open as alice over TLS" vnc_open tls alice web-1
expect_exit 0 "the viewer's handshake through TLS" probe 127.0.0.1 "$VNC_PORT"
expect_eq "desktop: web-1" "$(head -n 1 <<<"$OUT")" "web-1's desktop"
vnc_stop
expect_eq 2 "$(sql "SELECT count(*) FROM console_sessions s JOIN users u ON u.id = s.user_id WHERE u.name = 'alice' AND s.source LIKE 'tls token:%'")" \
	"alice's sessions over TLS are recorded as hers, with their source"
expect_eq "0/12 24/12351 24/12351 24/12351 viewer_closed" \
	"$(sql "SELECT string_agg(bytes_in || '/' || bytes_out, ' ' ORDER BY bytes_in, id) || ' ' || string_agg(DISTINCT end_reason, ',') FROM console_sessions WHERE vm_name = 'web-1' AND source LIKE 'unix%'")" \
	"the socket viewers' sessions ended with them: the handshake and a screen each, the greeting alone for the one that only listened"

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
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'VNC_TOKEN_ISSUED' AND outcome = 'denied' AND actor = 'alice'")" \
	"the refusal is audited"
expect_exit 5 "the CLI says so (exit 5)" as alice vnc token db-1
expect_match 'vnc request' "$ERR" "and how to ask"
expect_exit 5 "vnc open refuses before listening" as alice vnc open db-1 --print-url
expect_eq "" "$OUT" "and prints no address"
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
atok=$(jq -r .token <<<"$OUT")
api_as carol POST "/api/v1/vms/db-1/console/token" >/dev/null
expect_eq "403 VNC_GRANT_REQUIRED" "$(code) $(errcode)" "the grant is alice's, not carol's"
tls_cli carol vnc request db-1 --duration 10m --reason "a second look" --wait -o json \
	>"$T/wait.json" 2>"$T/wait.err" &
waiter=$!
BG_PIDS="$BG_PIDS $waiter"
for _ in $(seq 1 300); do
	ticket2=$(sql "SELECT id FROM approval_tickets WHERE requester = 'carol' AND request_type = 'VNC_ACCESS'")
	[ -n "$ticket2" ] && break
	sleep 0.1
done
expect_exit 0 "tess approves carol's request while vnc request --wait waits" \
	as tess approvals approve "$ticket2"
wait "$waiter"
expect_eq "0 COMPLETED" "$? $(jq -r .status "$T/wait.json")" "--wait returns once it is decided"
expect_match 'waiting for an approver \(PENDING_APPROVAL\)' "$(cat "$T/wait.err")" \
	"saying what it waits for"
expect_exit 0 "now carol gets a token for db-1 too" as carol vnc token db-1
upgrade alice /api/v1/vms/db-1/vnc "$atok" >/dev/null
expect_eq 101 "$(code)" "alice opens db-1's console"
expect_exit 0 "vnc open db-1 as alice (her grant)" vnc_open tls alice db-1
expect_exit 0 "a viewer's handshake with the prod VM" probe 127.0.0.1 "$VNC_PORT"
expect_eq "desktop: db-1" "$(head -n 1 <<<"$OUT")" "db-1's desktop"
vnc_stop

# ---- the KubeVirt provider's console (the API simulator), over the socket
api POST /api/v1/vms/kv-1/console/token >/dev/null
expect_eq 201 "$(code)" "a token for kv-1 (the platform admin may act on any VM)"
upgrade - /api/v1/vms/kv-1/vnc "$(jq -r .token "$T/body")" >/dev/null
expect_eq 101 "$(code)" "kv-1's console opens through the KubeVirt provider"
expect_match 'RFB 003\.008' "$(tr -cd '[:print:]' <"$T/body")" \
	"with the API simulator's RFB greeting"
ended() { # ended VM: wait until the VM's sessions have ended
	for _ in $(seq 1 300); do
		[ "$(sql "SELECT count(*) FROM console_sessions WHERE vm_name = '$1' AND ended_at IS NULL")" = 0 ] && return 0
		sleep 0.1
	done
	return 1
}
expect_exit 0 "the session ends when its viewer goes" ended kv-1
expect_exit 0 "vnc open kv-1 (the KubeVirt provider)" vnc_open sock - kv-1
expect_exit 0 "the API simulator's greeting through the whole chain, our version echoed" \
	probe --greeting 127.0.0.1 "$VNC_PORT"
expect_eq "greeting: RFB 003.008" "$OUT" "RFB 3.8"
vnc_stop

# ---- a key rotation: the earlier key, listed as previous, still opens its tokens
expect_exit 0 "a token for db-1 under the current key" as alice vnc token db-1 --json
old=$(jq -r .token <<<"$OUT")
stop_daemon
start_daemon_tls --execution-dedupe-window 0s --provider-key-file "$T/new.key" \
	--console-previous-key-files "$T/state/credentials.key" --console-idle-timeout 1s
# the simulated cluster lives in the daemon: db-1 is created there again
expect_exit 0 "db-1 again in the restarted simulated cluster" vm simp pay-prod db-1
expect_exit 0 "db-1 runs" running db-1
upgrade alice /api/v1/vms/db-1/vnc "$old" >/dev/null
expect_eq 101 "$(code)" "after the rotation the token sealed before it opens db-1's console"
expect_exit 0 "a new token" as alice vnc token db-1
expect_eq "$(cut -d. -f2 <<<"$old")" "$(sql "SELECT key_id FROM console_tokens ORDER BY issued_at LIMIT 1")" \
	"the old token named the old key"
expect_match "^shvnc1\.$(sql "SELECT key_id FROM console_tokens WHERE key_id <> '$(cut -d. -f2 <<<"$old")' LIMIT 1")\." \
	"$OUT" "the new one is sealed with the new key"

# ---- console.cleanup: spent token markers go a day after they expire, the rest stay
expect_match '^[1-9]' "$(periodic_jobs console.cleanup)" "console.cleanup is a periodic job of the queue"
markers=$(sql "SELECT count(*) FROM console_tokens")
sql "UPDATE console_tokens SET issued_at = now() - interval '49 hours', expires_at = now() - interval '48 hours'
	WHERE jti = (SELECT jti FROM console_tokens ORDER BY issued_at LIMIT 1)" >/dev/null
sql "UPDATE console_tokens SET issued_at = now() - interval '20 hours', expires_at = now() - interval '19 hours'
	WHERE jti = (SELECT jti FROM console_tokens ORDER BY issued_at DESC LIMIT 1)" >/dev/null
run_job console.cleanup '{}' && pass "console.cleanup runs" || fail "console.cleanup runs"
expect_eq "$((markers - 1)) 0 1" "$(sql "SELECT count(*) || ' ' ||
	count(*) FILTER (WHERE expires_at < now() - interval '1 day') || ' ' ||
	count(*) FILTER (WHERE expires_at < now() - interval '1 hour') FROM console_tokens")" \
	"the marker expired two days ago is deleted, the one of 19 hours ago is kept"
expect_match 'console.cleanup: deleted 1 spent' "$(cat "$T/daemon.log")" "the job logs what it deleted"

# ---- the idle limit (1 s since the restart): a viewer that says nothing is let go
expect_exit 0 "vnc open db-1 as alice again" vnc_open tls alice db-1
exec 3<>"/dev/tcp/127.0.0.1/$VNC_PORT"
greeting=
read -r -t 5 greeting <&3
expect_eq "RFB 003.008" "$greeting" "a viewer gets the greeting, then stays silent"
rest=$(timeout 5 cat <&3; echo "exit $?")
expect_eq "exit 0" "$rest" "after console.idle_timeout the session ends and the viewer is let go"
exec 3<&-
vnc_stop
expect_eq idle_timeout "$(sql "SELECT end_reason FROM console_sessions ORDER BY id DESC LIMIT 1")" \
	"the session ended for idleness"

# ---- the records (the daemon stopped: every session has ended)
stop_daemon
expect_eq "12|12" "$(sql "SELECT count(*), count(ended_at) FROM console_sessions")" \
	"twelve sessions (the refused upgrades opened none), all ended"
expect_eq 0 "$(sql "SELECT count(*) FROM console_sessions WHERE end_reason NOT IN ('viewer_closed', 'console_closed', 'shutdown', 'idle_timeout')")" \
	"each by its viewer, its VM, its idleness or the daemon's stop"
expect_eq "viewer_closed" "$(sql "SELECT DISTINCT end_reason FROM console_sessions WHERE vm_name = 'kv-1'")" \
	"the socket viewer's end is seen at once"
expect_eq 6 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'VNC_SESSION_STARTED' AND actor = 'alice'")" \
	"VNC_SESSION_STARTED for alice's six"
expect_eq 12 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'VNC_SESSION_ENDED'")" \
	"VNC_SESSION_ENDED for each"
expect_eq "web-1|12351|24|viewer_closed" "$(sql "SELECT a.resource_name, a.details->>'bytes_out', a.details->>'bytes_in', a.details->>'end_reason' FROM audit_log a JOIN console_sessions s ON s.id = (a.details->>'session_id')::bigint WHERE a.action = 'VNC_SESSION_ENDED' AND s.vm_name = 'web-1' AND s.source LIKE 'unix%' ORDER BY a.id LIMIT 1")" \
	"with the VM, the bytes each way (the handshake and one screen out) and why it ended"
expect_eq "kv-1|12|root" "$(sql "SELECT vm_name, bytes_out, user_name FROM console_sessions WHERE vm_name = 'kv-1' ORDER BY id LIMIT 1")" \
	"and the session row likewise"

finish
