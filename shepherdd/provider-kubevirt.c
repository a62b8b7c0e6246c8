/*
 * The KubeVirt provider: its constructor, the request helpers every capability uses (deadline,
 * name checks, get, paginated list, create-if-absent, delete-if-present) and the infrastructure
 * capability (VMs, their power, namespaces, the VM watch). Snapshots, clones, migrations and
 * instance types are in provider-kubevirt-objs.c; health and capabilities in
 * provider-kubevirt-cluster.c.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "error.h"
#include "json.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "log.h"
#include "provider-kubevirt-internal.h"
#include "provider-kubevirt.h"
#include "util.h"
#include "vm.h"

#define DEFAULT_TIMEOUT_MS 30000

/* ---- shared helpers ---------------------------------------------------------------------------
 */

uint64_t kv_deadline(const struct kv *kv, uint64_t deadline_ns)
{
	return deadline_ns ? deadline_ns
			   : shp_now_monotonic_ns() + (uint64_t)kv->timeout_ms * 1000000u;
}

int kv_send(struct kv *kv, const char *method, const char *path, const json_t *body,
	    const char *content_type, uint64_t deadline_ns, struct shd_k8s_resp *ret,
	    struct shp_error *err)
{
	struct shd_k8s_req req = {.method = method,
				  .path = path,
				  .body = body,
				  .content_type = content_type,
				  .deadline_ns = deadline_ns};

	return shd_k8s_call(kv->k8s, &req, ret, err);
}

int kv_get(struct kv *kv, const char *path, uint64_t deadline_ns, json_t **ret,
	   struct shp_error *err)
{
	struct shd_k8s_resp r;
	int rc = kv_send(kv, "GET", path, NULL, NULL, deadline_ns, &r, err);

	if (rc == 0 && !json_is_object(r.json))
		rc = shp_error_set(err, SHP_E_PROTO,
				   "cluster '%s' answered GET %.200s without an "
				   "object",
				   kv->name, path);
	if (rc == 0)
		*ret = TAKE_PTR(r.json);
	shd_k8s_resp_release(&r);
	return rc;
}

static int list_page(struct kv *kv, const char *path, const char *selector, const char *cont,
		     uint64_t deadline_ns, struct shd_k8s_resp *r, struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf p = SHP_BUF_INIT(KV_PATH_MAX);

	if (shp_buf_add(&p, path) < 0 || shd_k8s_query(&p, "labelSelector", selector) < 0 ||
	    shd_k8s_query(&p, "limit", KV_LIST_PAGE) < 0 ||
	    shd_k8s_query(&p, "continue", cont && *cont ? cont : NULL) < 0)
		return shp_error_set(err, SHP_E_LIMIT, "the list path is too long");
	return kv_send(kv, "GET", p.buf, NULL, NULL, deadline_ns, r, err);
}

/* One pass over the pages; -SHP_E_K8S with *expired when a continue token was too old. */
static int list_pass(struct kv *kv, const char *path, const char *selector, uint64_t deadline_ns,
		     json_t *all, char *rv, size_t rv_size, bool *expired, struct shp_error *err)
{
	_cleanup_free_ char *cont = NULL;

	for (int page = 0;; page++) {
		struct shd_k8s_resp r;
		const json_t *items, *meta;
		const char *next;
		int rc = list_page(kv, path, selector, cont, deadline_ns, &r, err);

		*expired = rc < 0 && page > 0 && r.failure.expired;
		items = json_object_get(r.json, "items");
		meta = json_object_get(r.json, "metadata");
		if (rc == 0 && !json_is_array(items) && !json_is_null(items) && items)
			rc = shp_error_set(err, SHP_E_PROTO, "the list %.200s has no items array",
					   path);
		if (rc == 0 && json_array_size(all) + json_array_size(items) > KV_LIST_MAX)
			rc = shp_error_set(err, SHP_E_LIMIT,
					   "the list %.200s has more than %d items", path,
					   KV_LIST_MAX);
		if (rc == 0 && json_is_array(items) && json_array_extend(all, (json_t *)items) < 0)
			rc = shp_error_set(err, SHP_E_NOMEM, "out of memory");
		if (rc == 0 && page == 0 && rv)
			(void)snprintf(rv, rv_size, "%s",
				       shp_json_str(meta, "resourceVersion")
					       ? shp_json_str(meta, "resourceVersion")
					       : "");
		next = shp_json_str(meta, "continue");
		free(cont);
		cont = rc == 0 && next && *next ? strdup(next) : NULL;
		shd_k8s_resp_release(&r);
		if (rc < 0 || !cont)
			return rc;
	}
}

int kv_list(struct kv *kv, const char *path, const char *selector, uint64_t deadline_ns,
	    json_t **ret, char *rv, size_t rv_size, struct shp_error *err)
{
	for (int pass = 0;; pass++) {
		json_auto_t *all = json_array();
		bool expired = false;
		int rc;

		if (!all)
			return shp_error_set(err, SHP_E_NOMEM, "out of memory");
		rc = list_pass(kv, path, selector, deadline_ns, all, rv, rv_size, &expired, err);
		if (rc == 0) {
			*ret = TAKE_PTR(all);
			return 0;
		}
		if (!expired || pass >= 2)
			return rc;
		log_debug("cluster '%s': the continue token of %s expired, listing again", kv->name,
			  path);
	}
}

int kv_delete(struct kv *kv, const char *path, uint64_t deadline_ns, struct shp_error *err)
{
	struct shd_k8s_resp r;
	struct shp_error e = SHP_ERROR_INIT;
	int rc = kv_send(kv, "DELETE", path, NULL, NULL, deadline_ns, &r, &e);

	if (rc == -SHP_E_NOTFOUND && r.status == 404)
		rc = 0; /* absent: what a delete wants */
	else if (rc < 0 && err)
		*err = e;
	shd_k8s_resp_release(&r);
	return rc;
}

int kv_create(struct kv *kv, const char *collection, const char *name, const json_t *obj,
	      bool dry_run, uint64_t deadline_ns, json_t **ret, bool *ret_existed,
	      struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf p = SHP_BUF_INIT(KV_PATH_MAX);
	struct shd_k8s_resp r;
	struct shp_error e = SHP_ERROR_INIT;
	int rc;

	if (shp_buf_add(&p, collection) < 0 ||
	    shd_k8s_query(&p, "fieldManager", SHD_FIELD_MANAGER) < 0 ||
	    shd_k8s_query(&p, "dryRun", dry_run ? "All" : NULL) < 0)
		return shp_error_set(err, SHP_E_LIMIT, "the path is too long");
	rc = kv_send(kv, "POST", p.buf, obj, NULL, deadline_ns, &r, &e);
	if (rc == 0 && !json_is_object(r.json))
		rc = shp_error_set(&e, SHP_E_PROTO,
				   "cluster '%s' answered a create without the "
				   "object",
				   kv->name);
	if (rc == 0) {
		*ret = TAKE_PTR(r.json);
		*ret_existed = false;
	}
	if (rc == -SHP_E_CONFLICT && shp_streq(r.failure.reason, "AlreadyExists")) {
		shp_buf_reset(&p);
		if (shp_buf_add(&p, collection) < 0 || shd_k8s_pathf(&p, "/%s", name) < 0)
			rc = shp_error_set(&e, SHP_E_LIMIT, "the path is too long");
		else
			rc = kv_get(kv, p.buf, deadline_ns, ret, &e);
		if (rc == 0)
			*ret_existed = true;
	}
	shd_k8s_resp_release(&r);
	if (rc < 0 && err)
		*err = e;
	return rc;
}

/* ---- VMs --------------------------------------------------------------------------------------
 */

int kv_path(struct shp_buf *b, const char *api, const char *ns, const char *plural,
	    const char *name, struct shp_error *err)
{
	if (shp_buf_add(b, api) < 0 || shd_k8s_pathf(b, "/namespaces/%s/", ns) < 0 ||
	    shp_buf_add(b, plural) < 0 || (name && shd_k8s_pathf(b, "/%s", name) < 0))
		return shp_error_set(err, SHP_E_LIMIT, "the path is too long");
	return 0;
}

/* The VM's VMI, or NULL in *ret when there is none. */
static int get_vmi(struct kv *kv, const char *ns, const char *name, uint64_t dl, json_t **ret,
		   struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf p = SHP_BUF_INIT(KV_PATH_MAX);
	struct shp_error e = SHP_ERROR_INIT;
	int rc = kv_path(&p, KV_VM_API, ns, "virtualmachineinstances", name, err);

	if (rc < 0)
		return rc;
	rc = kv_get(kv, p.buf, dl, ret, &e);
	if (rc == -SHP_E_NOTFOUND) {
		*ret = NULL;
		return 0;
	}
	if (rc < 0 && err)
		*err = e;
	return rc;
}

static int kv_get_vm(void *impl, const char *ns, const char *name, struct shd_vm *ret,
		     uint64_t deadline_ns, struct shp_error *err)
{
	struct kv *kv = impl;
	_cleanup_(shp_buf_releasep) struct shp_buf p = SHP_BUF_INIT(KV_PATH_MAX);
	json_auto_t *vm = NULL, *vmi = NULL;
	uint64_t dl = kv_deadline(kv, deadline_ns);
	int rc = shd_provider_check_ns_name(ns, "VM", name, err);

	if (rc < 0)
		return rc; /* not echoed: the names are not valid */
	rc = kv_path(&p, KV_VM_API, ns, "virtualmachines", name, err);
	if (rc == 0)
		rc = kv_get(kv, p.buf, dl, &vm, err);
	if (rc == 0)
		rc = get_vmi(kv, ns, name, dl, &vmi, err);
	if (rc == 0)
		rc = shd_vm_map(vm, vmi, ret, err);
	if (rc < 0)
		(void)shp_error_prefix(err, "getting VM '%s/%s'", ns, name);
	return rc;
}

static int collection(struct shp_buf *b, const char *api, const char *ns, const char *plural,
		      struct shp_error *err)
{
	if (!ns)
		return shp_buf_add(b, api) < 0 || shp_buf_addf(b, "/%s", plural) < 0
			       ? shp_error_set(err, SHP_E_LIMIT, "the path is too long")
			       : 0;
	return kv_path(b, api, ns, plural, NULL, err);
}

static int kv_list_vms(void *impl, const char *ns, const char *selector, struct shd_vm_list *ret,
		       uint64_t deadline_ns, struct shp_error *err)
{
	struct kv *kv = impl;
	_cleanup_(shp_buf_releasep) struct shp_buf p = SHP_BUF_INIT(KV_PATH_MAX);
	_cleanup_(shp_buf_releasep) struct shp_buf pi = SHP_BUF_INIT(KV_PATH_MAX);
	json_auto_t *vms = NULL, *vmis = NULL, *wv = NULL, *wi = NULL;
	struct shd_vm_list l = {0};
	uint64_t dl = kv_deadline(kv, deadline_ns);
	size_t skipped = 0;
	int rc = ns ? shd_provider_check_name("namespace", ns, true, err) : 0;

	if (rc == 0)
		rc = collection(&p, KV_VM_API, ns, "virtualmachines", err);
	if (rc == 0)
		rc = collection(&pi, KV_VM_API, ns, "virtualmachineinstances", err);
	if (rc == 0)
		rc = kv_list(kv, p.buf, selector, dl, &vms, l.resource_version,
			     sizeof(l.resource_version), err);
	/* every VMI of the scope: their labels come from the template, not from the VM */
	if (rc == 0)
		rc = kv_list(kv, pi.buf, NULL, dl, &vmis, NULL, 0, err);
	if (rc == 0) {
		wv = json_pack("{sO}", "items", vms);
		wi = json_pack("{sO}", "items", vmis);
		rc = wv && wi ? shd_vm_map_list(wv, wi, &l.items, &l.n, &skipped, err)
			      : shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	if (rc < 0) {
		(void)shp_error_prefix(err, "listing VMs of cluster '%s'", kv->name);
		return rc;
	}
	if (skipped)
		log_warn("cluster '%s': %zu VMs could not be mapped, skipped", kv->name, skipped);
	*ret = l;
	return 0;
}

/* The namespace and name of a manifest, checked. */
static int manifest_id(const json_t *m, const char **ret_ns, const char **ret_name,
		       struct shp_error *err)
{
	const json_t *meta = json_object_get(m, "metadata");
	const char *ns = shp_json_str(meta, "namespace"), *name = shp_json_str(meta, "name");
	int rc;

	if (!json_is_object(m) || !json_is_object(meta))
		return shp_error_set(err, SHP_E_INVAL, "the VM manifest has no metadata");
	if (!shp_streq(shp_json_str(m, "kind"), "VirtualMachine") ||
	    !shp_streq(shp_json_str(m, "apiVersion"), "kubevirt.io/v1"))
		return shp_error_set(err, SHP_E_INVAL,
				     "the manifest must be a kubevirt.io/v1 VirtualMachine");
	rc = shd_provider_check_ns_name(ns, "VM", name, err);
	if (rc < 0)
		return rc;
	*ret_ns = ns;
	*ret_name = name;
	return 0;
}

static int kv_create_vm(void *impl, const json_t *manifest, bool dry_run, struct shd_vm *ret,
			uint64_t deadline_ns, struct shp_error *err)
{
	struct kv *kv = impl;
	_cleanup_(shp_buf_releasep) struct shp_buf p = SHP_BUF_INIT(KV_PATH_MAX);
	json_auto_t *vm = NULL, *vmi = NULL;
	const char *ns = NULL, *name = NULL;
	uint64_t dl = kv_deadline(kv, deadline_ns);
	bool existed = false;
	int rc = manifest_id(manifest, &ns, &name, err);

	if (rc < 0)
		return rc;
	rc = kv_path(&p, KV_VM_API, ns, "virtualmachines", NULL, err);
	if (rc == 0)
		rc = kv_create(kv, p.buf, name, manifest, dry_run, dl, &vm, &existed, err);
	if (rc == 0 && existed)
		rc = get_vmi(kv, ns, name, dl, &vmi, err);
	if (rc == 0 && ret)
		rc = shd_vm_map(vm, vmi, ret, err);
	if (rc < 0) {
		(void)shp_error_prefix(err, "creating VM '%s/%s'", ns, name);
		return rc;
	}
	if (existed)
		log_debug("cluster '%s': VM '%s/%s' exists already, kept", kv->name, ns, name);
	return 0;
}

static int kv_update_vm(void *impl, const json_t *manifest, bool dry_run, struct shd_vm *ret,
			uint64_t deadline_ns, struct shp_error *err)
{
	struct kv *kv = impl;
	_cleanup_(shp_buf_releasep) struct shp_buf p = SHP_BUF_INIT(KV_PATH_MAX);
	json_auto_t *body = NULL;
	struct shd_k8s_resp r = {0};
	const char *ns = NULL, *name = NULL;
	int rc = manifest_id(manifest, &ns, &name, err);

	if (rc < 0)
		return rc;
	body = json_deep_copy(manifest);
	if (!body)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	/* an apply must not carry managedFields; status belongs to the controller */
	(void)json_object_del(json_object_get(body, "metadata"), "managedFields");
	(void)json_object_del(body, "status");
	rc = kv_path(&p, KV_VM_API, ns, "virtualmachines", name, err);
	if (rc == 0 && (shd_k8s_query(&p, "fieldManager", SHD_FIELD_MANAGER) < 0 ||
			shd_k8s_query(&p, "force", "true") < 0 ||
			shd_k8s_query(&p, "dryRun", dry_run ? "All" : NULL) < 0))
		rc = shp_error_set(err, SHP_E_LIMIT, "the path is too long");
	if (rc == 0)
		rc = kv_send(kv, "PATCH", p.buf, body, "application/apply-patch+yaml",
			     kv_deadline(kv, deadline_ns), &r, err);
	if (rc == 0 && ret)
		rc = shd_vm_map(r.json, NULL, ret, err);
	shd_k8s_resp_release(&r);
	if (rc < 0)
		(void)shp_error_prefix(err, "applying VM '%s/%s'", ns, name);
	return rc;
}

static int kv_delete_vm(void *impl, const char *ns, const char *name, uint64_t deadline_ns,
			struct shp_error *err)
{
	struct kv *kv = impl;
	_cleanup_(shp_buf_releasep) struct shp_buf p = SHP_BUF_INIT(KV_PATH_MAX);
	int rc = shd_provider_check_ns_name(ns, "VM", name, err);

	if (rc < 0)
		return rc;
	rc = kv_path(&p, KV_VM_API, ns, "virtualmachines", name, err);
	if (rc == 0)
		rc = kv_delete(kv, p.buf, kv_deadline(kv, deadline_ns), err);
	if (rc < 0)
		(void)shp_error_prefix(err, "deleting VM '%s/%s'", ns, name);
	return rc;
}

/* The 409 that says the operation is already satisfied. */
static bool already_done(enum shd_power_op op, const char *message)
{
	static const char *const done[] = {
		[SHD_POWER_START] = "already running",
		[SHD_POWER_STOP] = "not running",
		[SHD_POWER_RESTART] = NULL,
		[SHD_POWER_PAUSE] = "already paused",
		[SHD_POWER_UNPAUSE] = "not paused",
	};

	if ((unsigned)op >= SHP_ARRAY_SIZE(done) || !done[op])
		return false;
	if (op == SHD_POWER_STOP && strstr(message, "VMI is not running"))
		return false;
	return strstr(message, done[op]) != NULL;
}

static int kv_power(void *impl, const char *ns, const char *name, enum shd_power_op op,
		    uint64_t deadline_ns, struct shp_error *err)
{
	struct kv *kv = impl;
	_cleanup_(shp_buf_releasep) struct shp_buf p = SHP_BUF_INIT(KV_PATH_MAX);
	json_auto_t *body = json_object();
	struct shd_k8s_resp r = {0};
	struct shp_error e = SHP_ERROR_INIT;
	bool on_vmi = op == SHD_POWER_PAUSE || op == SHD_POWER_UNPAUSE;
	int rc = shd_provider_check_ns_name(ns, "VM", name, err);

	if (rc < 0)
		return rc;
	if ((unsigned)op > SHD_POWER_UNPAUSE)
		return shp_error_set(err, SHP_E_INVAL, "unknown power operation");
	if (op == SHD_POWER_RESTART &&
	    json_object_set_new(body, "gracePeriodSeconds", json_integer(0)) < 0)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	rc = kv_path(&p, KV_SUB_API, ns, on_vmi ? "virtualmachineinstances" : "virtualmachines",
		     name, err);
	if (rc == 0 && shp_buf_addf(&p, "/%s", shd_power_op_to_string(op)) < 0)
		rc = shp_error_set(err, SHP_E_LIMIT, "the path is too long");
	if (rc < 0)
		return rc;
	rc = kv_send(kv, "PUT", p.buf, body, NULL, kv_deadline(kv, deadline_ns), &r, &e);
	if (rc == -SHP_E_CONFLICT && already_done(op, r.message))
		rc = 0;
	else if (rc < 0 && err)
		*err = e;
	shd_k8s_resp_release(&r);
	if (rc < 0)
		(void)shp_error_prefix(err, "%s of VM '%s/%s'", shd_power_op_to_string(op), ns,
				       name);
	return rc;
}

static int kv_ensure_namespace(void *impl, const char *ns, uint64_t deadline_ns,
			       struct shp_error *err)
{
	struct kv *kv = impl;
	_cleanup_(shp_buf_releasep) struct shp_buf p = SHP_BUF_INIT(KV_PATH_MAX);
	json_auto_t *obj = NULL, *got = NULL;
	uint64_t dl = kv_deadline(kv, deadline_ns);
	bool existed = false;
	int rc = shd_provider_check_name("namespace", ns, true, err);

	if (rc < 0)
		return rc;
	obj = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}}", "apiVersion", "v1", "kind", "Namespace",
			"metadata", "name", ns, "labels", SHD_LABEL_MANAGED_BY, "shepherd");
	if (!obj)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	rc = kv_create(kv, "/api/v1/namespaces", ns, obj, false, dl, &got, &existed, err);
	if (rc == 0 &&
	    shp_streq(shp_json_str(json_object_get(got, "status"), "phase"), "Terminating"))
		rc = shp_error_set(err, SHP_E_CONFLICT, "namespace '%s' is being terminated", ns);
	if (rc < 0)
		(void)shp_error_prefix(err, "ensuring namespace '%s'", ns);
	return rc;
}

/* ---- the VM watch -----------------------------------------------------------------------------
 */

struct vm_watch {
	struct kv *kv;
	shd_vm_watch_fn fn;
	void *ud;
};

static int on_vm_event(void *ud, const char *type, const json_t *obj)
{
	struct vm_watch *w = ud;
	const char *rv = shp_json_str(json_object_get(obj, "metadata"), "resourceVersion");
	struct shd_vm vm;
	struct shp_error e = SHP_ERROR_INIT;
	enum shd_watch_type t;

	if (strcmp(type, "BOOKMARK") == 0)
		return w->fn(w->ud, SHD_WATCH_BOOKMARK, NULL, rv ? rv : "");
	if (strcmp(type, "ADDED") == 0)
		t = SHD_WATCH_ADDED;
	else if (strcmp(type, "MODIFIED") == 0)
		t = SHD_WATCH_MODIFIED;
	else if (strcmp(type, "DELETED") == 0)
		t = SHD_WATCH_DELETED;
	else
		return 0; /* a type from a newer server: nothing we can use */
	if (shd_vm_map(obj, NULL, &vm, &e) < 0) {
		log_warn("cluster '%s': a watched VM could not be mapped, skipped: %s", w->kv->name,
			 e.msg);
		return 0;
	}
	return w->fn(w->ud, t, &vm, rv ? rv : vm.resource_version);
}

static int kv_watch_vms(void *impl, const char *selector, const char *from_rv, shd_vm_watch_fn fn,
			void *ud, const atomic_bool *stop, uint64_t deadline_ns,
			struct shp_error *err)
{
	struct kv *kv = impl;
	_cleanup_(shp_buf_releasep) struct shp_buf p = SHP_BUF_INIT(KV_PATH_MAX);
	struct vm_watch w = {.kv = kv, .fn = fn, .ud = ud};
	uint64_t dl = kv_deadline(kv, deadline_ns), now = shp_now_monotonic_ns();
	char timeout[24];
	int rc;

	if (!from_rv || !*from_rv)
		return shp_error_set(err, SHP_E_INVAL, "a watch needs a resourceVersion");
	/* the server ends the stream a little before our deadline: a clean end */
	(void)snprintf(
		timeout, sizeof(timeout), "%llu",
		(unsigned long long)(dl > now + 2000000000u ? (dl - now) / 1000000000u - 1 : 1));
	if (shp_buf_add(&p, KV_VM_API "/virtualmachines") < 0 ||
	    shd_k8s_query(&p, "watch", "1") < 0 ||
	    shd_k8s_query(&p, "resourceVersion", from_rv) < 0 ||
	    shd_k8s_query(&p, "allowWatchBookmarks", "true") < 0 ||
	    shd_k8s_query(&p, "labelSelector", selector) < 0 ||
	    shd_k8s_query(&p, "timeoutSeconds", timeout) < 0)
		return shp_error_set(err, SHP_E_LIMIT, "the watch path is too long");
	rc = shd_k8s_watch(kv->k8s, p.buf, on_vm_event, &w, stop, dl, err);
	if (rc == SHD_K8S_EXPIRED)
		return SHD_WATCH_EXPIRED;
	if (rc < 0)
		(void)shp_error_prefix(err, "watching VMs");
	return rc;
}

static const struct shd_infra_ops infra_ops = {
	.get_vm = kv_get_vm,
	.list_vms = kv_list_vms,
	.create_vm = kv_create_vm,
	.update_vm = kv_update_vm,
	.delete_vm = kv_delete_vm,
	.power = kv_power,
	.ensure_namespace = kv_ensure_namespace,
	.watch_vms = kv_watch_vms,
};

/* ---- the provider -----------------------------------------------------------------------------
 */

static void kv_destroy(struct shd_provider *p)
{
	struct kv *kv = (struct kv *)p;

	if (!kv)
		return;
	shd_k8s_free(kv->k8s);
	free(kv->name);
	free(kv);
}

struct shd_provider *shd_provider_kubevirt_new(const struct shd_kubeconfig *kc,
					       const struct shd_kubevirt_options *opt,
					       struct shp_error *err)
{
	struct kv *kv;

	if (!kc || !opt || !opt->cluster_name || !*opt->cluster_name || opt->max_inflight < 0 ||
	    opt->max_inflight > 1024 || opt->default_timeout_ms < 0) {
		(void)shp_error_set(err, SHP_E_INVAL,
				    "KubeVirt provider: a cluster name, 0..1024 requests in flight "
				    "and a timeout >= 0 are required");
		return NULL;
	}
	kv = calloc(1, sizeof(*kv));
	if (!kv || !(kv->name = strdup(opt->cluster_name))) {
		free(kv);
		(void)shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	kv->timeout_ms = opt->default_timeout_ms ? opt->default_timeout_ms : DEFAULT_TIMEOUT_MS;
	kv->k8s = shd_k8s_new(kc, kv->name, opt->max_inflight, err);
	if (!kv->k8s) {
		kv_destroy(&kv->p);
		return NULL;
	}
	kv->p = (struct shd_provider){
		.kind = "kubevirt",
		.infra = {&infra_ops, kv},
		.snapshots = {&kv_snapshot_ops, kv},
		.clones = {&kv_clone_ops, kv},
		.migrations = {&kv_migration_ops, kv},
		.instancetypes = {&kv_instancetype_ops, kv},
		.console = {&kv_console_ops, kv},
		.cluster = {&kv_cluster_ops, kv},
		.destroy = kv_destroy,
	};
	atomic_init(&kv->p.refs, 1);
	return &kv->p;
}
