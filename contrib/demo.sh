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

"$shepherdd" --state-dir "$dir" --socket "$sock" >>"$dir/shepherdd.log" 2>&1 &
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
# a VM created and started on the simulated cluster through the execution engine
cat >"$dir/demo-vm.yaml" <<YAML
steps:
  - action: vm.create
    targets: [team-a/web-1]
    params: {cluster: lab-sim, namespace: team-a, name: web-1, cpus: 2, memory: 2Gi}
YAML
run tasks submit -f "$dir/demo-vm.yaml" --tenant team-a --yes --wait
# the cluster starts it asynchronously; the watcher brings each change into shepherd
for _ in $(seq 1 50); do
	curl -sf --unix-socket "$sock" http://localhost/api/v1/clusters/lab-sim/vms 2>/dev/null |
		grep -q '"RUNNING"' && break
	sleep 0.2
done
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
