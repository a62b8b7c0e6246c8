#!/bin/bash
# The API simulator's behaviour over HTTPS with curl: authentication, Status errors, a strictly
# increasing resourceVersion, paginated lists on one snapshot, watches (replay, bookmarks, the
# in-stream 410 after compaction and its HTTP form), server-side apply (conflicts, force, shared
# ownership, removal), dry runs that persist nothing, injected faults, deletion through
# finalizers, and the KubeVirt subresources, migrations and the Snapshot gate.
. "$top_srcdir/tests/helpers/lib.sh"
. "$top_srcdir/tests/helpers/kubesim.sh"

start_kubesim --tick-ms 20 --feature-gates Snapshot || exit 1
VMS=/apis/kubevirt.io/v1/namespaces/t1/virtualmachines
SUB=/apis/subresources.kubevirt.io/v1/namespaces/t1
JSON=(-H 'Content-Type: application/json')
vm_body() { # NAME RUNSTRATEGY
	printf '{"apiVersion":"kubevirt.io/v1","kind":"VirtualMachine","metadata":{"name":"%s"},' "$1"
	printf '"spec":{"runStrategy":"%s","template":{"spec":{"domain":{"memory":{"guest":"1Gi"}}}}}}' "$2"
}
# kube_wait PATH JQ-EXPR WANT: poll (30 s) until the expression over GET PATH prints WANT
kube_wait() {
	local i=0 got=
	while [ $i -lt 600 ]; do
		got=$(kube GET "$1" | jq -r "$2")
		[ "$got" = "$3" ] && break
		sleep 0.05
		i=$((i + 1))
	done
	expect_eq "$3" "$got" "$4"
}

# --- transport, authentication, errors ---
expect_eq 401 "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$KUBESIM_CA" "$KUBESIM_URL/api")" \
	"no token: 401"
expect_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$KUBESIM_CA" "$KUBESIM_URL/readyz")" \
	"/readyz needs no token"
kube POST /api/v1/namespaces "${JSON[@]}" -d '{"metadata":{"name":"t1"}}' >/dev/null
expect_eq 201 "$(kcode)" "namespace created"
body=$(kube POST $VMS "${JSON[@]}" -d '{"metadata":')
expect_eq "400 BadRequest Status" "$(kcode) $(jq -r '"\(.reason) \(.kind)"' <<<"$body")" \
	"malformed JSON: 400 Status"
body=$(kube GET $VMS/nope)
expect_eq '404 virtualmachines.kubevirt.io "nope" not found virtualmachines' \
	"$(kcode) $(jq -r '"\(.message) \(.details.kind)"' <<<"$body")" "missing VM: 404 with the plural"
body=$(kube POST /apis/kubevirt.io/v1/namespaces/absent/virtualmachines "${JSON[@]}" -d "$(vm_body x Halted)")
expect_eq '404 namespaces "absent" not found' "$(kcode) $(jq -r .message <<<"$body")" \
	"create in a missing namespace: 404 namespaces"
head -c 4000000 /dev/zero | tr '\0' a >"$T/big"
kube POST $VMS "${JSON[@]}" --data-binary @"$T/big" >/dev/null
expect_eq 413 "$(kcode)" "a body over the cap is refused"

# --- resourceVersion, create, update ---
rv1=$(kube POST $VMS "${JSON[@]}" -d "$(vm_body a1 Halted)" | jq -r .metadata.resourceVersion)
expect_eq 201 "$(kcode)" "VM created"
rv2=$(kube POST $VMS "${JSON[@]}" -d "$(vm_body a2 Halted)" | jq -r .metadata.resourceVersion)
expect_eq 1 "$([ "$rv2" -gt "$rv1" ] && echo 1)" "resourceVersions increase ($rv1 < $rv2)"
kube POST $VMS "${JSON[@]}" -d "$(vm_body a1 Halted)" | jq -r .reason >"$T/r"
expect_eq "409 AlreadyExists" "$(kcode) $(cat "$T/r")" "duplicate create: 409 AlreadyExists"
cur=$(kube GET $VMS/a1)
jq '.metadata.labels={"x":"1"}' <<<"$cur" >"$T/put.json"
kube PUT $VMS/a1 "${JSON[@]}" -d @"$T/put.json" >/dev/null
expect_eq 200 "$(kcode)" "PUT with the current resourceVersion"
body=$(kube PUT $VMS/a1 "${JSON[@]}" -d @"$T/put.json")
expect_match 'the object has been modified; please apply your changes' "$(jq -r .message <<<"$body")" \
	"PUT with a stale resourceVersion: 409 Conflict ($(kcode))"
gen=$(kube GET $VMS/a1 | jq .metadata.generation)
expect_eq 1 "$gen" "a label change leaves generation alone"

# --- pagination on one snapshot ---
kubesim_ctl seed '{"namespace":"t1","vms":7,"prefix":"p-"}' >/dev/null
page1=$(kube GET "$VMS?limit=4")
tok=$(jq -r .metadata.continue <<<"$page1")
lrv=$(jq -r .metadata.resourceVersion <<<"$page1")
expect_eq "4 5" "$(jq -r '"\(.items | length) \(.metadata.remainingItemCount)"' <<<"$page1")" \
	"first page: 4 items, 5 remaining"
kube DELETE $VMS/p-7 >/dev/null
kube POST $VMS "${JSON[@]}" -d "$(vm_body zz-new Halted)" >/dev/null
page2=$(kube GET "$VMS?limit=4&continue=$tok")
page3=$(kube GET "$VMS?limit=4&continue=$(jq -r .metadata.continue <<<"$page2")")
expect_eq "$lrv $lrv" "$(jq -r .metadata.resourceVersion <<<"$page2") $(jq -r .metadata.resourceVersion <<<"$page3")" \
	"every page reports the first page's RV"
names=$(jq -r '.items[].metadata.name' <<<"$page1$page2$page3" | tr '\n' ' ')
expect_eq "a1 a2 p-1 p-2 p-3 p-4 p-5 p-6 p-7 " "$names" \
	"pages read the snapshot: p-7 still there, zz-new not yet"
expect_eq "" "$(jq -r '.metadata.continue // empty' <<<"$page3")" "the last page has no continue"

# --- watch: replay, bookmarks, timeout ---
rv=$(kube GET $VMS | jq -r .metadata.resourceVersion)
kube PUT $SUB/virtualmachines/a2/start >/dev/null
expect_eq 202 "$(kcode)" "start: 202"
kube_wait $VMS/a2 .status.printableStatus Running "a Halted VM starts and runs"
kube GET "$VMS?watch=1&resourceVersion=$rv&fieldSelector=metadata.name%3Da2&timeoutSeconds=1&allowWatchBookmarks=true" >"$T/w"
expect_eq 200 "$(kcode)" "watch: 200"
expect_match '"MODIFIED".*"Starting"' "$(cat "$T/w")" "the replay holds Starting"
expect_match '"MODIFIED".*"Running"' "$(cat "$T/w")" "  and Running"
expect_eq BOOKMARK "$(tail -n 1 "$T/w" | jq -r .type)" "a bookmark ends a timed-out watch"
kube GET "$VMS?watch=1&timeoutSeconds=1&labelSelector=x%3D1" >"$T/w"
expect_eq "ADDED a1" "$(jq -r '"\(.type) \(.object.metadata.name)"' "$T/w" | tr '\n' ' ' | sed 's/ $//')" \
	"watch without RV: synthetic ADDED for the selected objects"

# --- compaction: 410 in the stream, over HTTP, for continue tokens ---
kubesim_ctl compact >/dev/null
kube GET "$VMS?watch=1&resourceVersion=$rv" >"$T/w"
expect_eq "ERROR 410 Expired" "$(jq -r '"\(.type) \(.object.code) \(.object.reason)"' "$T/w")" \
	"a watch from a compacted RV: one ERROR 410 Expired event"
expect_match '^too old resource version' "$(jq -r .object.message "$T/w")" "  with the watch cache's message"
kubesim_ctl faults '{"watch_410_http":true,"legacy_gone":true}' >/dev/null
body=$(kube GET "$VMS?watch=1&resourceVersion=$rv")
expect_eq "410 Gone" "$(kcode) $(jq -r .reason <<<"$body")" "the switches: plain HTTP 410, reason Gone"
kubesim_ctl faults '{}' >/dev/null
kube GET "$VMS?limit=4&continue=$tok" | jq -r .reason >"$T/r"
expect_eq "410 Expired" "$(kcode) $(cat "$T/r")" "an expired continue token: HTTP 410"

# --- stream faults: tiny chunks, an injected ERROR 500, an abrupt disconnect ---
kubesim_ctl faults '{"watch_chunk_bytes":5}' >/dev/null
curl -s --raw --cacert "$KUBESIM_CA" -H "Authorization: Bearer $KUBESIM_TOKEN" \
	"$KUBESIM_URL/api/v1/namespaces?watch=1&timeoutSeconds=1" >"$T/raw"
expect_eq 5 "$(head -n 1 "$T/raw" | tr -d '\r')" "watch_chunk_bytes: the stream goes out in 5-byte chunks"
kube GET "/api/v1/namespaces?watch=1&timeoutSeconds=1" >"$T/w"
expect_eq 6 "$(jq -r .object.metadata.name "$T/w" | wc -l)" "  and still carries whole events"
kubesim_ctl faults '{}' >/dev/null
# wait_watches N: until the simulator counts N open watches (5 s)
wait_watches() {
	local i=0
	while [ "$(kubesim_ctl stats | jq .watches_open)" != "$1" ] && [ $i -lt 100 ]; do
		sleep 0.05
		i=$((i + 1))
	done
}
kube GET "$VMS?watch=1&timeoutSeconds=20&resourceVersion=$(kube GET $VMS | jq -r .metadata.resourceVersion)" >"$T/w" &
watcher=$!
wait_watches 1
kubesim_ctl drop-watches '{"error":500}' >/dev/null
wait "$watcher"
expect_eq "ERROR 500 InternalError" "$(jq -r '"\(.type) \(.object.code) \(.object.reason)"' "$T/w")" \
	"drop-watches with an error: one ERROR 500 event, then the end"
curl -sN --cacert "$KUBESIM_CA" -H "Authorization: Bearer $KUBESIM_TOKEN" \
	"$KUBESIM_URL$VMS?watch=1&timeoutSeconds=20&resourceVersion=$(kube GET $VMS | jq -r .metadata.resourceVersion)" >/dev/null &
watcher=$!
wait_watches 1
expect_eq 1 "$(kubesim_ctl stats | jq .watches_open)" "stats count the open watch"
kubesim_ctl drop-watches >/dev/null
wait "$watcher"
expect_eq 18 "$?" "drop-watches: the stream breaks off (curl: partial transfer)"
curl -s -m 0.5 --cacert "$KUBESIM_CA" -H "Authorization: Bearer $KUBESIM_TOKEN" \
	"$KUBESIM_URL$VMS?watch=1&resourceVersion=$(kube GET $VMS | jq -r .metadata.resourceVersion)" >/dev/null
wait_watches 0
expect_eq 0 "$(kubesim_ctl stats | jq .watches_open)" "a watch whose client went away is closed"

# --- server-side apply ---
A=(-H 'Content-Type: application/apply-patch+yaml')
cat >"$T/s1.yaml" <<'EOF'
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: s1
  labels: {owner: m1, shared: "yes"}
spec:
  runStrategy: Halted
  template: {spec: {domain: {memory: {guest: 1Gi}}}}
EOF
kube PATCH $VMS/s1 "${A[@]}" --data-binary @"$T/s1.yaml" >/dev/null
expect_eq 422 "$(kcode)" "apply without fieldManager: 422"
kube PATCH "$VMS/s1?fieldManager=m1" "${A[@]}" --data-binary @"$T/s1.yaml" >/dev/null
expect_eq 201 "$(kcode)" "apply of an absent object creates it: 201"
printf '%s\n' 'apiVersion: kubevirt.io/v1' 'kind: VirtualMachine' 'metadata:' '  name: s1' \
	'  labels: {shared: "yes"}' 'spec:' '  runStrategy: Always' >"$T/s2.yaml"
body=$(kube PATCH "$VMS/s1?fieldManager=m2" "${A[@]}" --data-binary @"$T/s2.yaml")
expect_eq '409 Apply failed with 1 conflict: conflict with "m1": .spec.runStrategy' \
	"$(kcode) $(jq -r .message <<<"$body")" "a different value for m1's field: 409 conflict"
expect_eq "FieldManagerConflict .spec.runStrategy" \
	"$(jq -r '.details.causes[] | "\(.reason) \(.field)"' <<<"$body")" "  with its cause"
kube PATCH "$VMS/s1?fieldManager=m2&force=true" "${A[@]}" --data-binary @"$T/s2.yaml" >"$T/o"
expect_eq "200 Always" "$(kcode) $(jq -r .spec.runStrategy "$T/o")" "force takes the field over"
expect_eq "m1:f:shared m2:f:shared" \
	"$(jq -r '[.metadata.managedFields[] | select(.fieldsV1["f:metadata"]["f:labels"]["f:shared"]) | "\(.manager):f:shared"] | join(" ")' "$T/o")" \
	"an equal value is owned by both managers"
expect_eq "null" "$(jq -c '.metadata.managedFields[] | select(.manager=="m1") | .fieldsV1["f:spec"]["f:runStrategy"]' "$T/o")" \
	"  and m1 lost runStrategy"
printf '%s\n' 'apiVersion: kubevirt.io/v1' 'kind: VirtualMachine' 'metadata:' '  name: s1' \
	'spec:' '  template: {spec: {domain: {memory: {guest: 1Gi}}}}' >"$T/s3.yaml"
kube PATCH "$VMS/s1?fieldManager=m1" "${A[@]}" --data-binary @"$T/s3.yaml" >"$T/o"
expect_eq '{"shared":"yes"}' "$(jq -c .metadata.labels "$T/o")" \
	"labels m1 stopped applying: owner removed, shared kept (m2 still owns it)"
kube PUT $SUB/virtualmachines/a1/start >/dev/null
kube_wait $VMS/a1 .spec.runStrategy Always "start rewrites spec.runStrategy"
printf '%s\n' 'apiVersion: kubevirt.io/v1' 'kind: VirtualMachine' 'metadata:' '  name: a1' \
	'spec:' '  runStrategy: Halted' >"$T/a1.yaml"
body=$(kube PATCH "$VMS/a1?fieldManager=prov" "${A[@]}" --data-binary @"$T/a1.yaml")
expect_match 'conflict with "virt-api" using kubevirt.io/v1: .spec.runStrategy' "$(jq -r .message <<<"$body")" \
	"after start, applying another runStrategy conflicts with virt-api ($(kcode))"

# --- other patches ---
body=$(kube PATCH $VMS/s1 -H 'Content-Type: application/json-patch+json' \
	-d '[{"op":"test","path":"/spec/runStrategy","value":"Manual"}]')
expect_eq "422 Invalid" "$(kcode) $(jq -r .reason <<<"$body")" "json-patch with a failing test: 422"
kube PATCH $VMS/s1 -H 'Content-Type: application/strategic-merge-patch+json' -d '{}' >/dev/null
expect_eq 415 "$(kcode)" "strategic merge patch on a custom resource: 415"
kube PATCH $VMS/s1 -H 'Content-Type: application/merge-patch+json' -d '{"metadata":{"labels":{"m":"p"}}}' |
	jq -r .metadata.labels.m >"$T/r"
expect_eq "200 p" "$(kcode) $(cat "$T/r")" "merge patch"

# --- dry run: nothing persisted, no RV ---
kube_wait $VMS/a1 .status.printableStatus Running "a1 settles (Running) before the RV is compared"
rv_before=$(kubesim_ctl stats | jq .rv)
kube POST "$VMS?dryRun=All" "${JSON[@]}" -d "$(vm_body dry1 Halted)" | jq -r '.metadata.resourceVersion // "none"' >"$T/r"
expect_eq "201 none" "$(kcode) $(cat "$T/r")" "dry-run create answers 201 without an RV"
kube PATCH "$VMS/s1?dryRun=All" -H 'Content-Type: application/merge-patch+json' -d '{"spec":{"runStrategy":"Manual"}}' >/dev/null
kube DELETE "$VMS/s1?dryRun=All" >/dev/null
kube PATCH "$VMS/dry2?fieldManager=m1&dryRun=All" "${A[@]}" \
	--data-binary "$(sed 's/name: s1/name: dry2/' "$T/s1.yaml")" >/dev/null
expect_eq 201 "$(kcode)" "dry-run apply of an absent object: 201"
kube POST "$VMS?dryRun=Yes" "${JSON[@]}" -d "$(vm_body dry3 Halted)" >/dev/null
expect_eq 422 "$(kcode)" "dryRun other than All: 422"
expect_eq "$rv_before" "$(kubesim_ctl stats | jq .rv)" "dry runs did not bump the RV"
expect_eq "404 404 Always" "$(kube GET $VMS/dry1 >/dev/null; kcode) $(kube GET $VMS/dry2 >/dev/null; kcode) $(kube GET $VMS/s1 | jq -r .spec.runStrategy)" \
	"  and stored nothing"

# --- faults ---
kubesim_ctl faults '{"status":429,"count":2,"retry_after":7,"path_prefix":"/apis/kubevirt.io"}' >/dev/null
curl -s -D "$T/h" -o "$T/b" --cacert "$KUBESIM_CA" -H "Authorization: Bearer $KUBESIM_TOKEN" "$KUBESIM_URL$VMS"
expect_match '^HTTP/[0-9.]+ 429' "$(head -n 1 "$T/h")" "injected 429"
expect_match '^Retry-After: 7' "$(grep -i retry-after "$T/h" | tr -d '\r')" "  with Retry-After"
expect_eq "TooManyRequests 7" "$(jq -r '"\(.reason) \(.details.retryAfterSeconds)"' "$T/b")" "  and a Status"
kube GET /api/v1/namespaces >/dev/null
expect_eq 200 "$(kcode)" "other paths are unaffected"
kube GET $VMS >/dev/null
expect_eq 429 "$(kcode)" "the second matching request fails too"
kube GET $VMS >/dev/null
expect_eq 200 "$(kcode)" "the third succeeds"
kubesim_ctl faults '{"status":500,"count":1}' >/dev/null
kube GET /api/v1/nodes | jq -r .reason >"$T/r"
expect_eq "500 InternalError" "$(kcode) $(cat "$T/r")" "injected 500"
body=$(kubesim_ctl faults '{"status":"x"}')
expect_match "must be" "$body" "a malformed fault is refused"

# --- deletion through finalizers ---
kube_wait $VMS/a2 '.metadata.finalizers[0]' kubevirt.io/virtualMachineControllerFinalize \
	"the controller puts its finalizer on the VM"
rv=$(kube GET $VMS | jq -r .metadata.resourceVersion)
body=$(kube DELETE $VMS/a2)
expect_eq "200 VirtualMachine true" "$(kcode) $(jq -r '"\(.kind) \(.metadata.deletionTimestamp != null)"' <<<"$body")" \
	"DELETE with a finalizer: 200 with the object, deletionTimestamp set"
kube_wait $VMS/a2 .code 404 "the VM goes once its VMI is gone"
kube GET "$VMS?watch=1&resourceVersion=$rv&fieldSelector=metadata.name%3Da2&timeoutSeconds=1" >"$T/w"
expect_match '"Terminating"' "$(cat "$T/w")" "it went through Terminating"
expect_eq DELETED "$(tail -n 1 "$T/w" | jq -r .type)" "  and ended with DELETED"
ITS=/apis/instancetype.kubevirt.io/v1beta1/namespaces/t1/virtualmachineinstancetypes
kube POST $ITS "${JSON[@]}" -d '{"metadata":{"name":"it1"},"spec":{"cpu":{"guest":1},"memory":{"guest":"1Gi"}}}' >/dev/null
body=$(kube DELETE $ITS/it1)
expect_eq "200 Success virtualmachineinstancetypes" "$(kcode) $(jq -r '"\(.status) \(.details.kind)"' <<<"$body")" \
	"an object without finalizers: gone at once, Status Success"

# --- KubeVirt subresources, migration, snapshot gate ---
body=$(kube PUT $SUB/virtualmachines/s1/start)
expect_eq '409 Operation cannot be fulfilled on virtualmachine.kubevirt.io "s1": VM is already running' \
	"$(kcode) $(jq -r .message <<<"$body")" "start on a running VM: 409 with virt-api's message"
body=$(kube PUT $SUB/virtualmachines/p-2/stop)
expect_eq '409 VM is not running' "$(kcode) $(jq -r .message <<<"$body" | sed 's/.*: //')" "stop on a stopped VM: 409"
kube PUT $SUB/virtualmachines/missing/start | jq -r .message >"$T/r"
expect_eq '404 virtualmachine.kubevirt.io "missing" not found' "$(kcode) $(cat "$T/r")" "start on a missing VM: 404"
kube_wait /apis/kubevirt.io/v1/namespaces/t1/virtualmachineinstances/a1 .status.phase Running "a1's VMI runs"
node=$(kube GET /apis/kubevirt.io/v1/namespaces/t1/virtualmachineinstances/a1 | jq -r .status.nodeName)
kube PUT $SUB/virtualmachines/a1/migrate >/dev/null
expect_eq 202 "$(kcode)" "migrate: 202"
mig=$(kube GET "/apis/kubevirt.io/v1/namespaces/t1/virtualmachineinstancemigrations?labelSelector=kubevirt.io%2Fvmi-name%3Da1" | jq -r '.items[0].metadata.name')
expect_match '^kubevirt-migrate-vm-' "$mig" "the migration object has the subresource's generateName"
kube_wait /apis/kubevirt.io/v1/namespaces/t1/virtualmachineinstancemigrations/$mig .status.phase Succeeded \
	"the migration succeeds"
expect_eq 1 "$(kube GET /apis/kubevirt.io/v1/namespaces/t1/virtualmachineinstances/a1 | jq -r --arg n "$node" '(.status.nodeName != $n) | if . then 1 else 0 end')" \
	"the VMI moved off $node"
kube PUT /apis/subresources.kubevirt.io/v1/namespaces/t1/virtualmachineinstances/a1/pause >/dev/null
expect_eq 200 "$(kcode)" "pause: 200"
kube_wait $VMS/a1 .status.printableStatus Paused "the VM shows Paused"
SNAPS=/apis/snapshot.kubevirt.io/v1beta1/namespaces/t1/virtualmachinesnapshots
kube POST $SNAPS "${JSON[@]}" -d '{"metadata":{"name":"sn1"},"spec":{"source":{"apiGroup":"kubevirt.io","kind":"VirtualMachine","name":"a1"}}}' >/dev/null
expect_eq 201 "$(kcode)" "snapshot created with the gate on"
kube_wait $SNAPS/sn1 .status.readyToUse true "the snapshot becomes ready to use"
kubesim_ctl feature-gates '{"featureGates":[]}' >/dev/null
body=$(kube POST $SNAPS "${JSON[@]}" -d '{"metadata":{"name":"sn2"},"spec":{"source":{"apiGroup":"kubevirt.io","kind":"VirtualMachine","name":"a1"}}}')
expect_match '^400 .*snapshot feature gate not enabled$' "$(kcode) $(jq -r .message <<<"$body")" \
	"with the gate off: 400 snapshot feature gate not enabled"
body=$(kube POST $VMS "${JSON[@]}" -d '{"metadata":{"name":"nomem"},"spec":{"template":{"spec":{"domain":{}}}}}')
expect_match '^422 .*no memory requested' "$(kcode) $(jq -r .message <<<"$body")" "a VM without memory: 422"

# --- injected VM failures (an annotation on the VM) ---
for f in Unschedulable:ErrorUnschedulable ErrImagePull:ErrImagePull PvcNotFound:ErrorPvcNotFound \
	CrashLoopBackOff:CrashLoopBackOff; do
	name=$(echo "${f%%:*}" | tr 'A-Z' 'a-z')
	kube POST $VMS "${JSON[@]}" -d "{\"metadata\":{\"name\":\"$name\",\"annotations\":{\"kubesim.shepherd.dev/fault\":\"${f%%:*}\"}},\"spec\":{\"runStrategy\":\"Always\",\"template\":{\"spec\":{\"domain\":{\"memory\":{\"guest\":\"1Gi\"}}}}}}" >/dev/null
	kube_wait $VMS/$name .status.printableStatus "${f#*:}" "fault ${f%%:*}: the VM shows ${f#*:}"
done
expect_eq 1 "$(kube GET $VMS/crashloopbackoff | jq '.status.startFailure.consecutiveFailCount >= 1 | if . then 1 else 0 end')" \
	"  with status.startFailure counting"
body=$(kube POST $VMS "${JSON[@]}" -d '{"metadata":{"name":"badlabel","labels":{"a b":"c"}},"spec":{}}')
expect_match '^422 .*metadata.labels: Invalid value' "$(kcode) $(jq -r .message <<<"$body")" "an invalid label: 422"

finish
