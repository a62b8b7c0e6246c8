/*
 * The execution engine's governance actions: the steps of approved VM requests (the plans of
 * gov-plan.c, gov.h).
 *   vm.provision  deploy  {cluster, namespace, name, manifest}: the vms row, the namespace just
 *                 in time, a server-side dry run, create-if-absent, and for a VM that runs
 *                 (runStrategy Always) a wait until the cluster reports it RUNNING
 *   vm.update     deploy  {cluster, namespace, name, manifest}: a dry run, then a server-side
 *                 apply of the whole manifest
 * Both are of the deploy class: outside an approved request (whose plan hash stands in for the
 * level checks) only a platform admin may run them, so the tasks API is no way around review.
 * The manifest is the rendered VirtualMachine as it was approved. The shepherd.io/vm-id label
 * (the row id) is added here, at run time, so it is not part of the plan or its hash. Both are
 * idempotent: a step retried after a crash finds the row and the VM it made before.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "db.h"
#include "error.h"
#include "exec-internal.h"
#include "exec-vm-internal.h"
#include "provider.h"
#include "util.h"
#include "vm.h"

/* The step's manifest: a kubevirt.io/v1 VirtualMachine naming the step's VM, nothing else. */
static int manifest_of(const struct shd_step_ctx *s, const struct shd_vm_ref *v, const json_t **ret,
		       struct shp_error *err)
{
	const json_t *m = json_object_get(s->params, "manifest");
	const json_t *meta = json_object_get(m, "metadata");
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	const char *name = json_string_value(json_object_get(meta, "name"));

	if (!json_is_object(m) || !json_is_object(meta))
		return shp_error_set(err, SHP_E_INVAL,
				     "'manifest' must be a VirtualMachine object with metadata");
	if (!shp_streq(json_string_value(json_object_get(m, "kind")), "VirtualMachine") ||
	    !shp_streq(json_string_value(json_object_get(m, "apiVersion")), "kubevirt.io/v1"))
		return shp_error_set(err, SHP_E_INVAL,
				     "'manifest' must be a kubevirt.io/v1 VirtualMachine");
	if (!shp_streq(ns, v->ns) || !shp_streq(name, v->name))
		return shp_error_set(err, SHP_E_INVAL,
				     "the manifest must name the step's VM '%s/%s'", v->ns,
				     v->name);
	*ret = m;
	return 0;
}

/* A copy of manifest labelled with the row id (new reference). */
static json_t *with_vm_id(const json_t *manifest, const char *vm_id, struct shp_error *err)
{
	json_auto_t *m = json_deep_copy(manifest);
	json_t *meta = json_object_get(m, "metadata");
	json_t *labels = json_object_get(meta, "labels");

	if (m && !json_is_object(labels)) {
		labels = json_object();
		if (json_object_set_new(meta, "labels", labels) < 0)
			labels = NULL;
	}
	if (!m || !labels || json_object_set_new(labels, SHD_LABEL_VM_ID, json_string(vm_id)) < 0) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	return TAKE_PTR(m);
}

static bool runs_always(const json_t *manifest)
{
	const json_t *spec = json_object_get(manifest, "spec");

	return shp_streq(json_string_value(json_object_get(spec, "runStrategy")), "Always");
}

/* Poll until the VM runs; FAILED fails the step for good, the step's deadline bounds it. */
/*
 * Create-if-absent answers with any VM of that name. Ours carries the row's label (a retry
 * after a crash finds it); another one (made outside shepherd, or a deleted one still
 * terminating) is not this request's VM and must not be recorded as such.
 */
static int check_ours(struct shd_step_ctx *s, struct shd_provider *p, const struct shd_vm_ref *v,
		      const char *vm_id, struct shp_error *err)
{
	struct shd_vm_list l = {0};
	char selector[64];
	bool found = false;

	(void)snprintf(selector, sizeof(selector), "%s=%s", SHD_LABEL_VM_ID, vm_id);
	if (p->infra.ops->list_vms(p->infra.impl, v->ns, selector, &l, s->deadline_ns, err) < 0)
		return shd_vmact_failed(err, "listing VM", v);
	for (size_t i = 0; i < l.n && !found; i++)
		found = strcmp(l.items[i].name, v->name) == 0;
	shd_vm_list_release(&l);
	if (found)
		return 0;
	/* the row made for this request names no VM: it goes */
	if (shd_db_command(s->conn, "UPDATE vms SET deleted_at = now() WHERE id = $1", 1,
			   (const char *[]){vm_id}, err) < 0)
		return -err->code;
	shp_error_set(err, SHP_E_CONFLICT,
		      "VM '%s/%s' exists on cluster '%s' but is not the one this request made "
		      "(it lacks %s=%s)",
		      v->ns, v->name, v->cluster, SHD_LABEL_VM_ID, vm_id);
	shp_error_api_code(err, "NAME_TAKEN");
	shp_error_detail(err, "kind", "vm");
	shp_error_detail(err, "name", "%s", v->name);
	shp_error_detail(err, "namespace", "%s", v->ns);
	shp_error_detail(err, "cluster", "%s", v->cluster);
	return -SHP_E_CONFLICT;
}

static int row_id(PGconn *conn, const struct shd_vm_ref *v, char vm_id[24], struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(
		conn,
		"SELECT id FROM vms WHERE cluster_id = $1 AND namespace = $2 AND name = $3"
		" AND deleted_at IS NULL",
		3, (const char *[]){v->cluster_ids, v->ns, v->name}, err);

	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND,
				     "VM '%s/%s' is not managed by shepherd on cluster '%s'", v->ns,
				     v->name, v->cluster);
	(void)snprintf(vm_id, 24, "%s", shd_db_value(res, 0, 0));
	return 0;
}

static void set_result(struct shd_step_ctx *s, const struct shd_vm_ref *v, const struct shd_vm *vm,
		       const char *vm_id)
{
	s->result = shd_vmact_result(v, vm);
	json_object_set_new(s->result, "vm_id", json_integer(strtoll(vm_id, NULL, 10)));
}

/*
 * The dry run comes before the row: a manifest the cluster refuses (its webhook, say) leaves
 * neither a row nor a VM behind. It is the manifest as approved, without the row's label.
 */
static int run_provision(struct shd_step_ctx *s, struct shp_error *err)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = NULL;
	json_auto_t *labelled = NULL;
	const json_t *manifest = NULL;
	struct shd_vm_ref v = {0};
	struct shd_vm vm;
	char vm_id[24];
	int rc;

	if (shd_vmact_resolve(s, &v, err) < 0 || manifest_of(s, &v, &manifest, err) < 0 ||
	    !(p = shd_vmact_provider(s, &v, err)))
		return -err->code;
	if (p->infra.ops->ensure_namespace(p->infra.impl, v.ns, s->deadline_ns, err) < 0)
		return shd_vmact_failed(err, "preparing the namespace for VM", &v);
	if (p->infra.ops->create_vm(p->infra.impl, manifest, true, NULL, s->deadline_ns, err) < 0)
		return shd_vmact_failed(err, "dry run of VM", &v);
	if (shd_vmact_upsert_row(s->conn, &v, vm_id, err) < 0 ||
	    !(labelled = with_vm_id(manifest, vm_id, err)))
		return -err->code;
	if (p->infra.ops->create_vm(p->infra.impl, labelled, false, &vm, s->deadline_ns, err) < 0)
		return shd_vmact_failed(err, "creating VM", &v);
	if (check_ours(s, p, &v, vm_id, err) < 0)
		return -err->code;
	rc = runs_always(manifest) ? shd_vmact_wait(s, p, &v, &vm, SHD_VM_RUNNING, err) : 0;
	/* what was last seen is kept even when the wait failed */
	if (shd_vmact_store_observed(s->conn, &v, &vm, rc < 0 ? NULL : err) < 0)
		return -err->code;
	if (rc < 0)
		return rc;
	set_result(s, &v, &vm, vm_id);
	return 0;
}

static int run_update(struct shd_step_ctx *s, struct shp_error *err)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = NULL;
	json_auto_t *labelled = NULL;
	const json_t *manifest = NULL;
	struct shd_vm_ref v = {0};
	struct shd_vm vm;
	char vm_id[24];

	if (shd_vmact_resolve(s, &v, err) < 0 || manifest_of(s, &v, &manifest, err) < 0 ||
	    row_id(s->conn, &v, vm_id, err) < 0 || !(labelled = with_vm_id(manifest, vm_id, err)) ||
	    !(p = shd_vmact_provider(s, &v, err)))
		return -err->code;
	/* an apply owns every field it names: the label must be in it, or the apply drops it */
	if (p->infra.ops->update_vm(p->infra.impl, labelled, true, NULL, s->deadline_ns, err) < 0)
		return shd_vmact_failed(err, "dry run of the update of VM", &v);
	if (p->infra.ops->update_vm(p->infra.impl, labelled, false, &vm, s->deadline_ns, err) < 0)
		return shd_vmact_failed(err, "updating VM", &v);
	if (shd_vmact_store_observed(s->conn, &v, &vm, err) < 0)
		return -err->code;
	set_result(s, &v, &vm, vm_id);
	return 0;
}

/* Cluster calls take seconds and a VM takes a while to boot: always the background path. */
static int64_t estimate_provision(const json_t *params, size_t ntargets)
{
	(void)params;
	return 60000 + 1000 * (int64_t)ntargets;
}

static int64_t estimate_update(const json_t *params, size_t ntargets)
{
	(void)params;
	return 15000 + 1000 * (int64_t)ntargets;
}

static const char *const gov_params[] = {"cluster", "namespace", "name", "manifest", NULL};

const struct shd_action shd_gov_actions[] = {
	{"vm.provision", SHD_ACTION_DEPLOY, estimate_provision, run_provision, gov_params},
	{"vm.update", SHD_ACTION_DEPLOY, estimate_update, run_update, gov_params},
	{NULL},
};
