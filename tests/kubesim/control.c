/*
 * The control API under /_sim/ (same listener, same authentication): compaction, injected
 * faults, dropped watch streams, a spell of unreachability, bulk seeding, removal behind
 * everybody's back, feature gates, node labels, reset and request statistics.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "json.h"
#include "kubesim.h"
#include "labelsel.h"
#include "util.h"

#define SEED_MAX 100000

static int ok(struct ks_resp *resp)
{
	return ks_reply(resp, 200, json_object());
}

static int bad(struct ks_resp *resp, const char *msg)
{
	return ks_error(resp, 400, "BadRequest", msg, NULL);
}

static int faults(struct ks *ks, struct ks_resp *resp, const json_t *b)
{
	static const char *const allowed[] = {
		"status",         "count",       "retry_after",       "path_prefix", "latency_ms",
		"watch_410_http", "legacy_gone", "watch_chunk_bytes", NULL};
	struct ks_faults f = {0};
	struct shp_error err = SHP_ERROR_INIT;
	const char *prefix = shp_json_str(b, "path_prefix");
	int64_t status = 0, count = 1, retry = 0, latency = 0, chunk = 0;
	bool w410 = false, gone = false;

	if (shp_json_check_fields(b, allowed, &err) < 0 ||
	    shp_json_get_int(b, "status", false, 400, 599, &status, &err) < 0 ||
	    shp_json_get_int(b, "count", false, 0, 1000000, &count, &err) < 0 ||
	    shp_json_get_int(b, "retry_after", false, 0, 3600, &retry, &err) < 0 ||
	    shp_json_get_int(b, "latency_ms", false, 0, 60000, &latency, &err) < 0 ||
	    shp_json_get_bool(b, "watch_410_http", false, &w410, &err) < 0 ||
	    shp_json_get_bool(b, "legacy_gone", false, &gone, &err) < 0 ||
	    shp_json_get_int(b, "watch_chunk_bytes", false, 0, 1 << 20, &chunk, &err) < 0)
		return bad(resp, err.msg);
	if (prefix && strlen(prefix) >= sizeof(f.path_prefix))
		return bad(resp, "path_prefix is too long");
	f.status = (int)status;
	f.count = status ? (int)count : 0;
	f.retry_after = (int)retry;
	f.latency_ms = (int)latency;
	f.watch_410_http = w410;
	f.legacy_gone = gone;
	f.watch_chunk_bytes = (int)chunk;
	(void)snprintf(f.path_prefix, sizeof(f.path_prefix), "%s", prefix ? prefix : "");
	pthread_mutex_lock(&ks->mu);
	ks->faults = f;
	pthread_mutex_unlock(&ks->mu);
	return ok(resp);
}

/* A seeded VM's VMI, already Running with an address on a node. */
static void seed_vmi(struct ks *ks, const json_t *vm)
{
	const char *ns = kv_str(vm, "metadata.namespace"), *name = kv_str(vm, "metadata.name");
	char ip[32], node[32];
	uint64_t c = ++ks->ip_counter;
	json_t *vmi;

	(void)snprintf(ip, sizeof(ip), "10.244.%u.%u", (unsigned)(c / 250 % 250),
		       (unsigned)(c % 250 + 2));
	(void)snprintf(node, sizeof(node), "node-%d",
		       (int)(ks->node_rr++ % (uint64_t)(ks->cfg.nodes > 0 ? ks->cfg.nodes : 1)) +
			       1);
	vmi = json_pack("{s:{s:s, s:s, s:O, s:[{s:s, s:s, s:s, s:s, s:b, s:b}], s:[s]}, s:O, "
			"s:{s:s, s:s, s:s, s:[{s:s, s:s, s:[s]}]}}",
			"metadata", "name", name, "namespace", ns, "labels",
			kv_at(vm, "spec.template.metadata.labels"), "ownerReferences", "apiVersion",
			"kubevirt.io/v1", "kind", "VirtualMachine", "name", name, "uid",
			kv_str(vm, "metadata.uid"), "controller", true, "blockOwnerDeletion", true,
			"finalizers", "kubevirt.io/foregroundDeleteVirtualMachine", "spec",
			kv_at(vm, "spec.template.spec"), "status", "phase", "Running", "nodeName",
			node, "qosClass", "Burstable", "interfaces", "name", "default", "ipAddress",
			ip, "ipAddresses", ip);
	json_object_set_new(
		json_object_get(vmi, "metadata"), "labels",
		json_pack("{s:s, s:s}", "kubevirt.io/domain", name, "kubevirt.io/nodeName", node));
	kv_condition(vmi, "Ready", true, NULL, NULL);
	kv_condition(vmi, "LiveMigratable", true, NULL, NULL);
	kv_create(ks, KS_R_VMI, vmi, "virt-controller");
}

static bool seed_names_valid(const char *ns, const char *prefix)
{
	char probe[300];

	(void)snprintf(probe, sizeof(probe), "%s1", prefix);
	return shd_dns_subdomain_is_valid(ns) && !strchr(ns, '.') &&
	       shd_dns_subdomain_is_valid(probe);
}

static int seed(struct ks *ks, struct ks_resp *resp, const json_t *b)
{
	static const char *const allowed[] = {"namespace", "vms",    "prefix",
					      "running",   "labels", NULL};
	struct shp_error err = SHP_ERROR_INIT;
	const char *ns = NULL, *prefix = NULL;
	json_t *labels = json_object_get(b, "labels");
	int64_t n = 0, created = 0;
	bool running = false;

	if (shp_json_check_fields(b, allowed, &err) < 0 ||
	    shp_json_get_string(b, "namespace", true, 63, &ns, &err) < 0 ||
	    shp_json_get_int(b, "vms", false, 0, SEED_MAX, &n, &err) < 0 ||
	    shp_json_get_string(b, "prefix", false, 200, &prefix, &err) < 0 ||
	    shp_json_get_bool(b, "running", false, &running, &err) < 0)
		return bad(resp, err.msg);
	if (labels && !json_is_object(labels))
		return bad(resp, "labels must be an object");
	if (!seed_names_valid(ns, prefix ? prefix : "vm-"))
		return bad(resp, "namespace or prefix would make invalid names");
	pthread_mutex_lock(&ks->mu);
	ks_ensure_namespace(ks, ns);
	for (int64_t i = 1; i <= n; i++) {
		char name[256];
		json_t *vm;
		(void)snprintf(name, sizeof(name), "%s%lld", prefix ? prefix : "vm-", (long long)i);
		if (i % 100 == 0) {
			/* a big seed lets other requests in now and then */
			pthread_mutex_unlock(&ks->mu);
			pthread_mutex_lock(&ks->mu);
		}
		if (ks_get(ks, KS_R_VM, ns, name))
			continue;
		vm = ks_make_vm(ns, name, labels, running);
		json_object_set_new(json_object_get(vm, "metadata"), "finalizers",
				    json_pack("[s]", ks_resources[KS_R_VM].finalizer));
		vm = kv_create(ks, KS_R_VM, vm, "kubesim-seed");
		if (running)
			seed_vmi(ks, vm);
		kv_write(ks, KS_R_VM, kv_vm_with_status(ks, vm, ks_get(ks, KS_R_VMI, ns, name)), vm,
			 "virt-controller", true);
		created++;
	}
	pthread_mutex_unlock(&ks->mu);
	return ks_reply(resp, 200, json_pack("{s:I}", "created", (json_int_t)created));
}

static int delete_raw(struct ks *ks, struct ks_resp *resp, const json_t *b)
{
	const char *ns = shp_json_str(b, "namespace"), *name = shp_json_str(b, "name");
	uint64_t rv;

	if (!ns || !name)
		return bad(resp, "namespace and name are required");
	pthread_mutex_lock(&ks->mu);
	rv = ks_remove(ks, KS_R_VM, ns, name);
	if (rv)
		(void)ks_remove(ks, KS_R_VMI, ns, name);
	pthread_mutex_unlock(&ks->mu);
	if (!rv)
		return ks_not_found(resp, &ks_resources[KS_R_VM], name);
	return ok(resp);
}

static int feature_gates(struct ks *ks, struct ks_resp *resp, const json_t *b)
{
	json_t *gates = json_object_get(b, "featureGates"), *g, *kv, *nw;
	size_t i;

	if (!json_is_array(gates) || json_array_size(gates) > 200)
		return bad(resp, "featureGates must be an array of strings");
	json_array_foreach(gates, i, g)
	{
		if (!json_is_string(g))
			return bad(resp, "featureGates must be an array of strings");
	}
	pthread_mutex_lock(&ks->mu);
	kv = ks_get(ks, KS_R_KUBEVIRT, "kubevirt", "kubevirt");
	if (kv) {
		nw = json_deep_copy(kv);
		json_object_set(kv_at(nw, "spec.configuration.developerConfiguration"),
				"featureGates", gates);
		kv_write(ks, KS_R_KUBEVIRT, nw, kv, "kubesim-control", false);
	}
	pthread_mutex_unlock(&ks->mu);
	return ok(resp);
}

/* Labels and allocatable resources merged into a node (GPUs, hugepages). */
static int node(struct ks *ks, struct ks_resp *resp, const json_t *b)
{
	const char *name = shp_json_str(b, "name");
	json_t *labels = json_object_get(b, "labels"), *alloc = json_object_get(b, "allocatable");
	json_t *cur, *nw;

	if (!name || (labels && !json_is_object(labels)) || (alloc && !json_is_object(alloc)))
		return bad(resp, "name is required; labels and allocatable must be objects");
	pthread_mutex_lock(&ks->mu);
	cur = ks_get(ks, KS_R_NODE, NULL, name);
	if (cur) {
		nw = json_deep_copy(cur);
		if (labels)
			json_object_update(kv_at(nw, "metadata.labels"), labels);
		if (alloc) {
			json_object_update(kv_at(nw, "status.allocatable"), alloc);
			json_object_update(kv_at(nw, "status.capacity"), alloc);
		}
		kv_write(ks, KS_R_NODE, nw, cur, "kubelet", false);
	}
	pthread_mutex_unlock(&ks->mu);
	return cur ? ok(resp) : ks_not_found(resp, &ks_resources[KS_R_NODE], name);
}

static int stats(struct ks *ks, struct ks_resp *resp)
{
	json_t *doc;

	pthread_mutex_lock(&ks->mu);
	doc = json_pack("{s:I, s:O, s:i, s:I}", "requests", (json_int_t)ks->requests, "by_verb",
			ks->stats_by_verb, "watches_open", ks->watches_open, "rv",
			(json_int_t)ks->rv);
	pthread_mutex_unlock(&ks->mu);
	return ks_reply(resp, 200, doc);
}

static int simple(struct ks *ks, struct ks_resp *resp, const char *what, const json_t *b)
{
	pthread_mutex_lock(&ks->mu);
	if (strcmp(what, "compact") == 0) {
		ks_compact(ks);
	} else if (strcmp(what, "drop-watches") == 0) {
		int64_t code = 0;
		struct shp_error err = SHP_ERROR_INIT;
		if (shp_json_get_int(b, "error", false, 400, 599, &code, &err) < 0) {
			pthread_mutex_unlock(&ks->mu);
			return bad(resp, err.msg);
		}
		ks->drop_error = (int)code;
		ks->drop_gen++;
		pthread_cond_broadcast(&ks->cond);
	} else if (strcmp(what, "reset") == 0) {
		memset(&ks->faults, 0, sizeof(ks->faults));
		ks->unreachable_until_ns = 0;
		ks_store_reset(ks);
	} else {
		int64_t s = 0;
		struct shp_error err = SHP_ERROR_INIT;
		if (shp_json_get_int(b, "seconds", true, 0, 3600, &s, &err) < 0) {
			pthread_mutex_unlock(&ks->mu);
			return bad(resp, err.msg);
		}
		ks->unreachable_until_ns = shp_now_monotonic_ns() + (uint64_t)s * 1000000000ull;
	}
	pthread_mutex_unlock(&ks->mu);
	return ok(resp);
}

int ks_control(struct ks_req *req, struct ks_resp *resp)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *b = NULL;
	const char *what = req->nsegs == 2 ? req->segs[1] : "";
	bool post = strcmp(req->method, "POST") == 0;

	if (strcmp(what, "stats") == 0 && strcmp(req->method, "GET") == 0)
		return stats(req->ks, resp);
	if (!post)
		return ks_error(resp, 405, "MethodNotAllowed", "control endpoints take POST", NULL);
	b = req->body_len ? shp_json_parse_object(req->body, req->body_len, 16, &err)
			  : json_object();
	if (!b)
		return bad(resp, err.msg);
	if (strcmp(what, "faults") == 0)
		return faults(req->ks, resp, b);
	if (strcmp(what, "seed") == 0)
		return seed(req->ks, resp, b);
	if (strcmp(what, "delete-raw") == 0)
		return delete_raw(req->ks, resp, b);
	if (strcmp(what, "feature-gates") == 0)
		return feature_gates(req->ks, resp, b);
	if (strcmp(what, "nodes") == 0)
		return node(req->ks, resp, b);
	if (!strcmp(what, "compact") || !strcmp(what, "drop-watches") || !strcmp(what, "reset") ||
	    !strcmp(what, "unreachable"))
		return simple(req->ks, resp, what, b);
	return ks_error(resp, 404, "NotFound", "no such control endpoint", NULL);
}
