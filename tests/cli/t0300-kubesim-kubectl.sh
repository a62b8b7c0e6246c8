#!/bin/bash
# kubectl against the API simulator, to keep the simulator honest: discovery and lists, one VM as
# JSON, server-side apply with a conflicting second manager (refused, then forced), a watch that
# sees a change, label selectors, server-side dry runs that persist nothing, and deletion.
# Uses $KUBECTL (default: kubectl from PATH); without one the test is skipped, unless
# SHP_REQUIRE_PG is set (CI), where a missing kubectl is a failure.
. "$top_srcdir/tests/helpers/lib.sh"
. "$top_srcdir/tests/helpers/kubesim.sh"

KC=${KUBECTL:-kubectl}
if ! command -v "$KC" >/dev/null 2>&1; then
	if [ -n "${SHP_REQUIRE_PG:-}" ]; then
		fail "kubectl is installed" "no '$KC' in PATH (Debian package kubernetes-client)"
		finish
	fi
	echo "1..0 # SKIP no kubectl"
	exit 77
fi
note "$("$KC" version --client 2>/dev/null | head -n 1)"

start_kubesim --tick-ms 20 || exit 1
export KUBECONFIG="$T/kubeconfig"
kc() { "$KC" --request-timeout=10s "$@"; }

kubesim_ctl seed '{"namespace":"ns1","vms":3,"running":true,"labels":{"app":"a"}}' >/dev/null
kubesim_ctl seed '{"namespace":"ns2","vms":2,"prefix":"other-","labels":{"app":"b"}}' >/dev/null
sleep 0.2

expect_exit 0 "kubectl get vms -A" kc get vms -A
expect_match 'ns1 +vm-3' "$OUT" "the list shows every namespace's VMs"
expect_match 'ns2 +other-2' "$OUT" "  (the second namespace too)"

expect_exit 0 "kubectl get vm -o json" kc get vm vm-1 -n ns1 -o json
expect_eq "VirtualMachine Running" "$(jq -r '"\(.kind) \(.status.printableStatus)"' <<<"$OUT")" \
	"the VM comes back whole, running"

expect_exit 0 "kubectl get ns" kc get ns
expect_match 'ns2' "$OUT" "namespaces include the seeded ones"

expect_exit 0 "kubectl get vms with a label selector" kc get vms -A -l 'app in (b)' -o name
expect_eq "virtualmachine.kubevirt.io/other-1 virtualmachine.kubevirt.io/other-2" \
	"$(echo $OUT)" "the selector picks only the matching VMs"

cat >"$T/vm.yaml" <<'EOF'
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: applied
  namespace: ns1
  labels:
    app: c
spec:
  runStrategy: Halted
  template:
    spec:
      domain:
        memory:
          guest: 1Gi
EOF
expect_exit 0 "kubectl apply --server-side creates" kc apply --server-side -f "$T/vm.yaml"
expect_eq "kubectl Apply" \
	"$(kube GET /apis/kubevirt.io/v1/namespaces/ns1/virtualmachines/applied |
		jq -r '.metadata.managedFields[] | select(.operation == "Apply") | "\(.manager) \(.operation)"')" \
	"the apply is recorded for manager kubectl"

sed 's/runStrategy: Halted/runStrategy: Always/' "$T/vm.yaml" >"$T/vm2.yaml"
expect_exit 1 "a second manager changing an owned field is refused" \
	kc apply --server-side --field-manager other -f "$T/vm2.yaml"
expect_match 'conflict with "kubectl"' "$ERR" "  the error names the owner"
expect_match '\.spec\.runStrategy' "$ERR" "  and the field"
expect_exit 0 "with --force-conflicts it is taken over" \
	kc apply --server-side --field-manager other --force-conflicts -f "$T/vm2.yaml"
expect_eq Always "$(kc get vm applied -n ns1 -o jsonpath='{.spec.runStrategy}')" \
	"the forced value is stored"

# a watch sees the VM change (it starts); the request timeout ends it
(sleep 1; kube PUT /apis/subresources.kubevirt.io/v1/namespaces/ns2/virtualmachines/other-1/start >/dev/null) &
starter=$!
expect_exit 0 "kubectl get vms --watch" timeout 20 "$KC" get vms -n ns2 --watch --request-timeout=4s \
	-o custom-columns=NAME:.metadata.name,RV:.metadata.resourceVersion,STATUS:.status.printableStatus --no-headers
wait "$starter"
expect_match 'other-1 +[0-9]+ +Running' "$OUT" "the watch saw other-1 start running"
expect_match 'other-1 +[0-9]+ +Stopped' "$OUT" "  after seeing it stopped"

# server-side dry runs: the answer looks done, nothing is stored
rv_before=$(kubesim_ctl stats | jq .rv)
sed 's/name: applied/name: dry/' "$T/vm.yaml" >"$T/dry.yaml"
expect_exit 0 "kubectl apply --dry-run=server" kc apply --server-side --dry-run=server -f "$T/dry.yaml"
expect_exit 0 "kubectl delete --dry-run=server" kc delete vm vm-2 -n ns1 --dry-run=server
expect_exit 1 "the dry-run apply created nothing" kc get vm dry -n ns1
expect_exit 0 "the dry-run delete removed nothing" kc get vm vm-2 -n ns1 -o name
expect_eq "$rv_before" "$(kubesim_ctl stats | jq .rv)" "dry runs leave the resourceVersion alone"

expect_exit 0 "kubectl delete vm" kc delete vm applied -n ns1 --wait=true
expect_exit 1 "the deleted VM is gone" kc get vm applied -n ns1
expect_match 'NotFound|not found' "$ERR" "  (NotFound)"

finish
