/*
 * The KubeVirt provider's view of the cluster itself: health (/version, /readyz, KubeVirt's
 * version and install CR) and capabilities (API discovery, the Snapshot feature gate from the
 * KubeVirt CR or a dry-run probe, GPUs and hugepages from the nodes). A sick or silent cluster is
 * a report, not an error.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "json.h"
#include "log.h"
#include "provider-kubevirt-internal.h"
#include "util.h"
#include "vm.h"

#define HEALTH_STEP_MS 5000 /* each probe of health(), within the caller's deadline */

/* ---- health -----------------------------------------------------------------------------------
 */

static uint64_t step_deadline(uint64_t dl)
{
	uint64_t step = shp_now_monotonic_ns() + (uint64_t)HEALTH_STEP_MS * 1000000u;

	return step < dl ? step : dl;
}

/* GET path; the outcome as a report when the cluster did not answer or refused. */
static int probe(struct kv *kv, const char *path, bool text, uint64_t dl, struct shd_k8s_resp *r,
		 struct shd_health_report *rep, const char *what)
{
	/* a fresh connection: a kept-alive one would hide a cluster that accepts no new ones */
	struct shd_k8s_req req = {.method = "GET",
				  .path = path,
				  .deadline_ns = step_deadline(dl),
				  .text = text,
				  .fresh = true};
	struct shp_error e = SHP_ERROR_INIT;
	int rc = shd_k8s_call(kv->k8s, &req, r, &e);

	if (rc == 0)
		return 0;
	if (rc == -SHP_E_NOMEM)
		return rc;
	if (!what)
		return 1;
	if (r->status == 0) {
		rep->health = SHD_HEALTH_UNREACHABLE;
		(void)snprintf(rep->message, sizeof(rep->message), "%s", e.msg);
	} else {
		rep->health = SHD_HEALTH_UNHEALTHY;
		(void)snprintf(rep->message, sizeof(rep->message), "%s: %s", what, e.msg);
	}
	return 1;
}

/* KubeVirt's install CR: not Deployed is unhealthy; unreadable (RBAC) is left to the version. */
static void check_install(struct kv *kv, uint64_t dl, struct shd_health_report *rep)
{
	json_auto_t *items = NULL;
	const json_t *st;
	const char *phase, *ver;

	if (kv_list(kv, KV_VM_API "/kubevirts", NULL, step_deadline(dl), &items, NULL, 0, NULL) <
	    0) {
		if (!rep->kubevirt_version[0]) {
			rep->health = SHD_HEALTH_UNHEALTHY;
			(void)snprintf(rep->message, sizeof(rep->message),
				       "KubeVirt does not answer: no version from "
				       "subresources.kubevirt.io");
		}
		return;
	}
	if (json_array_size(items) == 0) {
		rep->health = SHD_HEALTH_UNHEALTHY;
		(void)snprintf(rep->message, sizeof(rep->message), "KubeVirt is not installed");
		return;
	}
	st = json_object_get(json_array_get(items, 0), "status");
	phase = shp_json_str(st, "phase");
	ver = shp_json_str(st, "observedKubeVirtVersion");
	if (!rep->kubevirt_version[0] && ver)
		(void)snprintf(rep->kubevirt_version, sizeof(rep->kubevirt_version), "%s", ver);
	if (!shp_streq(phase, "Deployed")) {
		rep->health = SHD_HEALTH_UNHEALTHY;
		(void)snprintf(rep->message, sizeof(rep->message),
			       "KubeVirt is '%.40s', not Deployed", phase ? phase : "unknown");
	}
}

static int kv_health(void *impl, struct shd_health_report *ret, uint64_t deadline_ns,
		     struct shp_error *err)
{
	struct kv *kv = impl;
	struct shd_health_report rep = {.health = SHD_HEALTH_HEALTHY};
	struct shd_k8s_resp r = {0};
	uint64_t dl = kv_deadline(kv, deadline_ns);
	int rc = probe(kv, "/version", false, dl, &r, &rep, "version");

	if (rc == 0)
		(void)snprintf(rep.kubernetes_version, sizeof(rep.kubernetes_version), "%s",
			       shp_json_str(r.json, "gitVersion")
				       ? shp_json_str(r.json, "gitVersion")
				       : "");
	shd_k8s_resp_release(&r);
	if (rc == 0)
		rc = probe(kv, "/readyz", true, dl, &r, &rep, "the API server is not ready");
	shd_k8s_resp_release(&r);
	if (rc == 0 && probe(kv, KV_SUB_API "/version", false, dl, &r, &rep, NULL) == 0)
		(void)snprintf(rep.kubevirt_version, sizeof(rep.kubevirt_version), "%s",
			       shp_json_str(r.json, "gitVersion")
				       ? shp_json_str(r.json, "gitVersion")
				       : "");
	shd_k8s_resp_release(&r);
	if (rc == -SHP_E_NOMEM)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (rc == 0 && rep.health == SHD_HEALTH_HEALTHY)
		check_install(kv, dl, &rep);
	*ret = rep;
	return 0;
}

/* ---- capabilities -----------------------------------------------------------------------------
 */

static bool has_string(const json_t *arr, const char *s)
{
	const json_t *v;
	size_t i;

	json_array_foreach(arr, i, v)
	{
		if (shp_streq(json_string_value(v), s))
			return true;
	}
	return false;
}

/* "v1.9.0" -> 109 (major * 100 + minor), 0 when unknown. */
static int version_code(const char *v)
{
	unsigned major = 0, minor = 0;

	if (!v || sscanf(v[0] == 'v' ? v + 1 : v, "%u.%u", &major, &minor) != 2)
		return 0;
	return (int)(major * 100 + minor);
}

/* The Snapshot gate from the CR: listed, or Beta-on-by-default from v1.9 unless disabled. */
static bool gate_from_cr(const json_t *cr)
{
	const json_t *dev =
		json_object_get(json_object_get(json_object_get(cr, "spec"), "configuration"),
				"developerConfiguration");
	const char *ver = shp_json_str(json_object_get(cr, "status"), "observedKubeVirtVersion");

	if (has_string(json_object_get(dev, "featureGates"), "Snapshot"))
		return true;
	if (has_string(json_object_get(dev, "disabledFeatureGates"), "Snapshot"))
		return false;
	return version_code(ver) >= 109;
}

/* The CR is unreadable: a dry-run create says whether the webhook refuses for the gate. */
static int gate_probe(struct kv *kv, uint64_t dl, bool *ret, struct shp_error *err)
{
	json_auto_t *obj =
		json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:{s:s, s:s, s:s}}}", "apiVersion",
			  "snapshot.kubevirt.io/v1beta1", "kind", "VirtualMachineSnapshot",
			  "metadata", "name", "shepherd-capability-probe", "namespace", "default",
			  "spec", "source", "apiGroup", "kubevirt.io", "kind", "VirtualMachine",
			  "name", "shepherd-capability-probe");
	struct shd_k8s_resp r = {0};
	struct shp_error e = SHP_ERROR_INIT;
	int rc;

	if (!obj)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	rc = kv_send(kv, "POST",
		     KV_SNAP_API "/namespaces/default/virtualmachinesnapshots?dryRun=All", obj,
		     NULL, dl, &r, &e);
	if (rc < 0 && r.status == 0) {
		shd_k8s_resp_release(&r);
		if (err)
			*err = e;
		return rc;
	}
	*ret = !(r.status == 400 && strstr(r.message, "feature gate"));
	shd_k8s_resp_release(&r);
	return 0;
}

static int snapshot_gate(struct kv *kv, uint64_t dl, bool *ret, struct shp_error *err)
{
	json_auto_t *items = NULL;

	if (kv_list(kv, KV_VM_API "/kubevirts", NULL, dl, &items, NULL, 0, NULL) == 0 &&
	    json_array_size(items) > 0) {
		*ret = gate_from_cr(json_array_get(items, 0));
		return 0;
	}
	return gate_probe(kv, dl, ret, err);
}

static bool quantity_positive(const json_t *alloc, const char *key)
{
	int64_t v = 0;
	const char *q = shp_json_str(alloc, key);

	return q && shd_k8s_quantity_bytes(q, &v, NULL) == 0 && v > 0;
}

/* GPUs and hugepages on any node; nodes we may not list (RBAC) give neither. */
static void node_caps(struct kv *kv, uint64_t dl, bool *gpu, bool *huge)
{
	json_auto_t *nodes = NULL;
	const json_t *n;
	size_t i;

	if (kv_list(kv, "/api/v1/nodes", NULL, dl, &nodes, NULL, 0, NULL) < 0) {
		log_debug("cluster '%s': nodes not readable, no gpu/hugepages detection", kv->name);
		return;
	}
	json_array_foreach(nodes, i, n)
	{
		const json_t *labels = json_object_get(json_object_get(n, "metadata"), "labels");
		const json_t *alloc = json_object_get(json_object_get(n, "status"), "allocatable");
		if (shp_streq(shp_json_str(labels, "nvidia.com/gpu.present"), "true") ||
		    quantity_positive(alloc, "nvidia.com/gpu"))
			*gpu = true;
		if (quantity_positive(alloc, "hugepages-2Mi") ||
		    quantity_positive(alloc, "hugepages-1Gi"))
			*huge = true;
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool has_group(const json_t *apis, const char *group)
{
	const json_t *g;
	size_t i;

	json_array_foreach(json_object_get(apis, "groups"), i, g)
	{
		if (shp_streq(shp_json_str(g, "name"), group))
			return true;
	}
	return false;
}

static int kv_capabilities(void *impl, json_t **ret, uint64_t deadline_ns, struct shp_error *err)
{
	struct kv *kv = impl;
	json_auto_t *apis = NULL, *out = json_array();
	const char *caps[12];
	size_t n = 0;
	uint64_t dl = kv_deadline(kv, deadline_ns);
	bool snap = false, gpu = false, huge = false;
	int rc = kv_get(kv, "/apis", dl, &apis, err);

	if (rc < 0) {
		(void)shp_error_prefix(err, "discovering the APIs of cluster '%s'", kv->name);
		return rc;
	}
	if (has_group(apis, "kubevirt.io")) {
		caps[n++] = "kubevirt";
		caps[n++] = "live-migration"; /* LiveMigration is GA in KubeVirt v1 */
	}
	if (has_group(apis, "cdi.kubevirt.io"))
		caps[n++] = "cdi";
	if (has_group(apis, "instancetype.kubevirt.io"))
		caps[n++] = "instancetypes";
	if (has_group(apis, "subresources.kubevirt.io"))
		caps[n++] = "vnc";
	if (has_group(apis, "snapshot.kubevirt.io") || has_group(apis, "clone.kubevirt.io")) {
		rc = snapshot_gate(kv, dl, &snap, err);
		if (rc < 0) {
			(void)shp_error_prefix(err, "probing the Snapshot feature gate");
			return rc;
		}
	}
	if (snap && has_group(apis, "snapshot.kubevirt.io"))
		caps[n++] = "snapshot";
	if (snap && has_group(apis, "clone.kubevirt.io"))
		caps[n++] = "clone"; /* clones need the Snapshot gate too */
	node_caps(kv, dl, &gpu, &huge);
	if (gpu)
		caps[n++] = "gpu";
	if (huge)
		caps[n++] = "hugepages";
	qsort(caps, n, sizeof(caps[0]), cmp_str);
	for (size_t i = 0; out && i < n; i++)
		if (json_array_append_new(out, json_string(caps[i])) < 0)
			return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (!out)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	*ret = TAKE_PTR(out);
	return 0;
}

const struct shd_cluster_ops kv_cluster_ops = {
	.health = kv_health,
	.capabilities = kv_capabilities,
};
