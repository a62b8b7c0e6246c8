#!/bin/bash
# The main job, from a built tree: start shepherdd with its embedded PostgreSQL (initdb on the
# first run) and show the shepherd CLI working against it. The daemon keeps running in the
# foreground afterwards when stdin is a terminal (Ctrl-C stops it and its PostgreSQL);
# otherwise the demo stops it at the end. State lives in $SHEPHERD_DEMO_DIR
# (default /tmp/shepherd-demo): delete that directory to start afresh.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${SHEPHERD_BUILD_DIR:-$top}
dir=${SHEPHERD_DEMO_DIR:-/tmp/shepherd-demo}
shepherdd="$build/shepherdd/shepherdd"
shepherd="$build/cli/shepherd"
sock="$dir/shepherdd.sock"

[ -x "$shepherdd" ] && [ -x "$shepherd" ] || { echo "build first: ./autogen.sh && ./configure && make" >&2; exit 1; }
mkdir -p "$dir"
chmod 755 "$dir"

# a TLS listener too, for the approver of the governance part (a second user, with a token)
port=${SHEPHERD_DEMO_TLS_PORT:-18443}
[ -f "$dir/tls/server.crt" ] || sh "$top/tests/helpers/make-certs.sh" "$dir/tls"
"$shepherdd" --state-dir "$dir" --socket "$sock" --tls-listen "127.0.0.1:$port" \
	--tls-cert "$dir/tls/server.crt" --tls-key "$dir/tls/server.key" >>"$dir/shepherdd.log" 2>&1 &
pid=$!
stop() { kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; }
trap stop EXIT
printf 'starting shepherdd (pid %s, state in %s, log %s/shepherdd.log)\n' "$pid" "$dir" "$dir"
for _ in $(seq 1 600); do
	curl -sf --unix-socket "$sock" http://localhost/health/ready >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { echo "shepherdd exited:" >&2; tail -n 20 "$dir/shepherdd.log" >&2; exit 1; }
	sleep 0.1
done

run() {
	printf '\n$ shepherd'
	printf ' %q' "$@"
	printf '\n'
	"$shepherd" --socket "$sock" "$@"
}
run version
run status
run whoami
"$shepherd" --socket "$sock" namespace show team-a >/dev/null 2>&1 ||
	run namespace create team-a --environment test --description "Team A's test VMs"
"$shepherd" --socket "$sock" namespace show payments-prod >/dev/null 2>&1 ||
	run namespace create payments-prod --environment prod
"$shepherd" --socket "$sock" cluster show lab-sim >/dev/null 2>&1 ||
	run cluster add lab-sim --simulated --environment test
run namespace list
run namespace list -o json
run cluster list -o wide
run instancetypes list --cluster lab-sim
# governance: a team asks for a VM, an approver reviews it, the engine carries it out
"$shepherd" --socket "$sock" system show shop >/dev/null 2>&1 ||
	run system create shop --description "the web shop"
"$shepherd" --socket "$sock" service show web >/dev/null 2>&1 ||
	run service create web --system shop
run template list
run size list
run policy list
"$shepherd" --socket "$sock" role bind ops-anna approver --env test,prod >/dev/null
[ -s "$dir/anna.token" ] || (umask 077 && "$shepherd" --socket "$sock" token create demo-approver \
	--user ops-anna --expires 30d >"$dir/anna.token" 2>/dev/null)
anna() {
	printf '\n$ shepherd'
	printf ' %q' "$@"
	printf '    # as ops-anna, an approver, over TLS\n'
	SHEPHERD_TOKEN=$(cat "$dir/anna.token") "$shepherd" --server "https://127.0.0.1:$port" \
		--cacert "$dir/tls/ca.crt" "$@"
}
vm=web-$(date +%H%M%S)
run vm create "$vm" --namespace team-a --service web --template debian-12 --size small \
	--cluster lab-sim
answer=$("$shepherd" --socket "$sock" requests list --json | jq -c '.[0]')
ticket=$(jq -r .ticket_id <<<"$answer")
request=$(jq -r .id <<<"$answer")
anna approvals list --sort days_pending
anna approvals show "$ticket"
anna approvals approve "$ticket" --cluster lab-sim --reason "fits the test quota"
for _ in $(seq 1 100); do
	status=$("$shepherd" --socket "$sock" requests show "$request" --json | jq -r .status)
	case "$status" in COMPLETED | FAILED) break ;; esac
	sleep 0.2
done
run requests show "$request"
run vm show "$vm"
run vm history "$vm"
run cluster vms lab-sim
run cluster health lab-sim
run cluster capabilities lab-sim
# a plan flowing through the execution engine: queued, run by a worker, followed to its end
plan="$dir/demo-plan.yaml"
cat >"$plan" <<YAML
steps:
  - {action: test.effect, targets: [demo-vm], params: {key: "demo-$$-1", ms: 300}}
  - {action: test.effect, targets: [demo-vm], params: {key: "demo-$$-2", ms: 300}}
YAML
run tasks submit -f "$plan" --tenant team-a --yes --wait
run tasks list --limit 5
run audit list --limit 5
run queue stats

printf '\nshepherdd is serving on %s; try:\n  %s --socket %s namespace list\n' "$sock" "$shepherd" "$sock"
if [ -t 0 ]; then
	printf 'Ctrl-C stops shepherdd and its PostgreSQL.\n'
	wait "$pid"
fi
