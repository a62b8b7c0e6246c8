#!/bin/bash
# The rendered VirtualMachine of every image source (container disk, data volume from a URL and
# from a registry, an existing claim; extra disks and cloud-init) is what KubeVirt takes: the
# template's dry run asks the API simulator (kubesim), which admits VMs as the API server and
# KubeVirt's webhook do; a cluster that fails while asked does not block the draft.
. "$top_srcdir/tests/helpers/lib.sh"
. "$top_srcdir/tests/helpers/kubesim.sh"

json() { api "$@" -H 'Content-Type: application/json'; }

start_daemon --provider-timeout 2s
start_kubesim || exit 1
expect_exit 0 "a kubeconfig cluster on kubesim" shp cluster add kube1 --kubeconfig "$T/kubeconfig" \
	--environment test
expect_exit 0 "it is HEALTHY" shp cluster health kube1

# create TEMPLATE-JSON DESC: a new draft whose dry run ran on kube1 and was accepted
accepted() {
	local body
	body=$(json POST /api/v1/templates -d "$1")
	expect_eq "201 true kube1 true" \
		"$(code) $(jq -r '.validation | "\(.dry_run.ran) \(.dry_run.cluster) \(.dry_run.accepted)"' <<<"$body")" \
		"$2" || true
	[ "$(code)" = 201 ] || note "$body"
}
CI='"cloud_init":"#cloud-config\npackages: [nginx]\n"'
accepted "{\"name\":\"cd\",\"image_source\":{\"type\":\"containerDisk\",\"image\":\"quay.io/containerdisks/fedora:41\"},$CI}" \
	"a container disk template is admitted by kubesim"
accepted '{"name":"dv-url","image_source":{"type":"dataVolume","url":"https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-generic-amd64.qcow2","size":"20Gi"}}' \
	"a data volume imported from a URL is admitted"
accepted "{\"name\":\"dv-reg\",\"image_source\":{\"type\":\"dataVolume\",\"registry\":\"quay.io/containerdisks/centos-stream:9\",\"size\":\"30Gi\"},$CI}" \
	"a data volume imported from a registry is admitted"
accepted '{"name":"claim","image_source":{"type":"pvc","name":"golden-disk"}}' \
	"an existing claim as root disk is admitted"
for f in "$top_srcdir"/deploy/seed/templates/*.yaml; do
	expect_exit 0 "seed template $(basename "$f") again, dry-run on kubesim" shp template create "$f"
	expect_match "Dry run on cluster 'kube1': accepted" "$ERR" "kubesim admits $(basename "$f" .yaml)"
done
expect_eq 0 "$(kube GET /apis/kubevirt.io/v1/namespaces/default/virtualmachines | jq '.items | length')" \
	"a dry run leaves nothing behind"

# the cluster fails while asked: the draft is stored, the answer says why there was no dry run
kubesim_ctl /_sim/faults '{"status":500,"count":50,"path_prefix":"/apis/kubevirt.io"}' >/dev/null
body=$(json POST /api/v1/templates -d '{"name":"cd","image_source":{"type":"containerDisk","image":"quay.io/containerdisks/fedora:41"}}')
expect_eq "201 false kube1" "$(code) $(jq -r '.validation.dry_run | "\(.ran) \(.cluster)"' <<<"$body")" \
	"a cluster that cannot answer does not block the draft"
kubesim_ctl /_sim/faults '{}' >/dev/null

finish
