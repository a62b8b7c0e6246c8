/*
 * The KubeVirt provider's snapshots and restores (snapshot.kubevirt.io/v1beta1), clones
 * (clone.kubevirt.io/v1beta1), live migrations (kubevirt.io/v1 VirtualMachineInstanceMigration)
 * and instance types and preferences (instancetype.kubevirt.io/v1beta1). Creates are
 * create-if-absent where the object has a caller-chosen name: the existing object is returned
 * when it is the same request, SHP_E_CONFLICT when the name is taken by a different one.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "error.h"
#include "json.h"
#include "provider-kubevirt-internal.h"
#include "util.h"
#include "vm.h"

typedef int (*map_fn)(const json_t *obj, void *ret, struct shp_error *err);
typedef bool (*keep_fn)(const void *item, const char *vm);

/* Map every item of items into an owned array of `size`-byte models, keeping those keep allows. */
static int map_items(const json_t *items, size_t size, map_fn map, keep_fn keep, const char *vm,
		     void **ret, size_t *ret_n, struct shp_error *err)
{
	size_t n = 0, i;
	const json_t *it;
	_cleanup_free_ char *out = calloc(json_array_size(items) + 1, size);

	if (!out)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	json_array_foreach(items, i, it)
	{
		if (map(it, out + n * size, NULL) < 0)
			continue; /* no identity: nothing a caller could use */
		if (!keep || !vm || keep(out + n * size, vm))
			n++;
	}
	*ret = TAKE_PTR(out);
	*ret_n = n;
	return 0;
}

/* GET collection/name and map it. */
static int get_one(struct kv *kv, const char *api, const char *ns, const char *plural,
		   const char *name, map_fn map, void *ret, uint64_t deadline_ns,
		   struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf p = SHP_BUF_INIT(KV_PATH_MAX);
	json_auto_t *obj = NULL;
	int rc = shd_provider_check_ns_name(ns, plural, name, err);

	if (rc < 0)
		return rc;
	rc = kv_path(&p, api, ns, plural, name, err);
	if (rc == 0)
		rc = kv_get(kv, p.buf, kv_deadline(kv, deadline_ns), &obj, err);
	if (rc == 0)
		rc = map(obj, ret, err);
	if (rc < 0)
		(void)shp_error_prefix(err, "getting %s '%s/%s'", plural, ns, name);
	return rc;
}

static int list_some(struct kv *kv, const char *api, const char *ns, const char *plural,
		     const char *selector, size_t size, map_fn map, keep_fn keep, const char *vm,
		     void **ret, size_t *ret_n, uint64_t deadline_ns, struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf p = SHP_BUF_INIT(KV_PATH_MAX);
	json_auto_t *items = NULL;
	int rc = ns ? shd_provider_check_name("namespace", ns, true, err) : 0;

	if (rc == 0 && vm)
		rc = shd_provider_check_name("VM", vm, false, err);
	if (rc == 0 && ns)
		rc = kv_path(&p, api, ns, plural, NULL, err);
	else if (rc == 0 && (shp_buf_add(&p, api) < 0 || shp_buf_addf(&p, "/%s", plural) < 0))
		rc = shp_error_set(err, SHP_E_LIMIT, "the path is too long");
	if (rc == 0)
		rc = kv_list(kv, p.buf, selector, kv_deadline(kv, deadline_ns), &items, NULL, 0,
			     err);
	if (rc == 0)
		rc = map_items(items, size, map, keep, vm, ret, ret_n, err);
	if (rc < 0)
		(void)shp_error_prefix(err, "listing %s", plural);
	return rc;
}

/*
 * Create obj (named name) in collection ns/plural if absent and map the result; same(model)
 * tells whether an existing object is this request.
 */
static int create_one(struct kv *kv, const char *api, const char *ns, const char *plural,
		      const char *name, json_t *obj, map_fn map, void *ret,
		      bool (*same)(const void *model, const json_t *obj), uint64_t deadline_ns,
		      struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf p = SHP_BUF_INIT(KV_PATH_MAX);
	json_auto_t *got = NULL;
	bool existed = false;
	int rc = kv_path(&p, api, ns, plural, NULL, err);

	if (rc == 0)
		rc = kv_create(kv, p.buf, name, obj, false, kv_deadline(kv, deadline_ns), &got,
			       &existed, err);
	if (rc == 0)
		rc = map(got, ret, err);
	if (rc == 0 && existed && !same(ret, obj))
		rc = shp_error_set(err, SHP_E_CONFLICT, "a different %s named '%s' exists already",
				   plural, name);
	if (rc < 0)
		(void)shp_error_prefix(err, "creating %s '%s/%s'", plural, ns, name);
	return rc;
}

static json_t *new_object(const char *api_version, const char *kind, const char *ns,
			  const char *name, json_t *spec)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:o}", "apiVersion", api_version,
			 "kind", kind, "metadata", "name", name, "namespace", ns, "labels",
			 SHD_LABEL_MANAGED_BY, "shepherd", "spec", spec);
}

static const char *spec_str(const json_t *obj, const char *a, const char *b)
{
	const json_t *s = json_object_get(json_object_get(obj, "spec"), a);

	return b ? shp_json_str(s, b) : json_string_value(s);
}

/* ---- snapshots and restores -------------------------------------------------------------------
 */

static int map_snapshot(const json_t *o, void *r, struct shp_error *e)
{
	return shd_snapshot_map(o, r, e);
}

static int map_restore(const json_t *o, void *r, struct shp_error *e)
{
	return shd_restore_map(o, r, e);
}

static bool snapshot_of(const void *item, const char *vm)
{
	return shp_streq(((const struct shd_snapshot *)item)->vm, vm);
}

static bool same_snapshot(const void *model, const json_t *obj)
{
	return shp_streq(((const struct shd_snapshot *)model)->vm, spec_str(obj, "source", "name"));
}

static bool same_restore(const void *model, const json_t *obj)
{
	const struct shd_restore *r = model;

	return shp_streq(r->vm, spec_str(obj, "target", "name")) &&
	       shp_streq(r->snapshot, spec_str(obj, "virtualMachineSnapshotName", NULL));
}

static int snap_create(void *impl, const char *ns, const char *vm, const char *name,
		       struct shd_snapshot *ret, uint64_t deadline_ns, struct shp_error *err)
{
	json_auto_t *obj = NULL;
	int rc = shd_provider_check_ns_name(ns, "snapshot", name, err);

	if (rc == 0)
		rc = shd_provider_check_name("VM", vm, false, err);
	if (rc < 0)
		return rc;
	obj = new_object("snapshot.kubevirt.io/v1beta1", "VirtualMachineSnapshot", ns, name,
			 json_pack("{s:{s:s, s:s, s:s}}", "source", "apiGroup", "kubevirt.io",
				   "kind", "VirtualMachine", "name", vm));
	if (!obj)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return create_one(impl, KV_SNAP_API, ns, "virtualmachinesnapshots", name, obj, map_snapshot,
			  ret, same_snapshot, deadline_ns, err);
}

static int snap_get(void *impl, const char *ns, const char *name, struct shd_snapshot *ret,
		    uint64_t deadline_ns, struct shp_error *err)
{
	return get_one(impl, KV_SNAP_API, ns, "virtualmachinesnapshots", name, map_snapshot, ret,
		       deadline_ns, err);
}

static int snap_list(void *impl, const char *ns, const char *vm, struct shd_snapshot **ret,
		     size_t *ret_n, uint64_t deadline_ns, struct shp_error *err)
{
	if (!ns)
		return shp_error_set(err, SHP_E_INVAL, "listing snapshots needs a namespace");
	return list_some(impl, KV_SNAP_API, ns, "virtualmachinesnapshots", NULL, sizeof(**ret),
			 map_snapshot, snapshot_of, vm, (void **)ret, ret_n, deadline_ns, err);
}

static int delete_one(struct kv *kv, const char *api, const char *ns, const char *plural,
		      const char *name, uint64_t deadline_ns, struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf p = SHP_BUF_INIT(KV_PATH_MAX);
	int rc = shd_provider_check_ns_name(ns, plural, name, err);

	if (rc < 0)
		return rc;
	rc = kv_path(&p, api, ns, plural, name, err);
	if (rc == 0)
		rc = kv_delete(kv, p.buf, kv_deadline(kv, deadline_ns), err);
	if (rc < 0)
		(void)shp_error_prefix(err, "deleting %s '%s/%s'", plural, ns, name);
	return rc;
}

static int snap_remove(void *impl, const char *ns, const char *name, uint64_t deadline_ns,
		       struct shp_error *err)
{
	return delete_one(impl, KV_SNAP_API, ns, "virtualmachinesnapshots", name, deadline_ns, err);
}

static int snap_restore(void *impl, const char *ns, const char *vm, const char *snapshot,
			const char *name, struct shd_restore *ret, uint64_t deadline_ns,
			struct shp_error *err)
{
	json_auto_t *obj = NULL;
	int rc = shd_provider_check_ns_name(ns, "restore", name, err);

	if (rc == 0)
		rc = shd_provider_check_name("VM", vm, false, err);
	if (rc == 0)
		rc = shd_provider_check_name("snapshot", snapshot, false, err);
	if (rc < 0)
		return rc;
	obj = new_object("snapshot.kubevirt.io/v1beta1", "VirtualMachineRestore", ns, name,
			 json_pack("{s:{s:s, s:s, s:s}, s:s}", "target", "apiGroup", "kubevirt.io",
				   "kind", "VirtualMachine", "name", vm,
				   "virtualMachineSnapshotName", snapshot));
	if (!obj)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return create_one(impl, KV_SNAP_API, ns, "virtualmachinerestores", name, obj, map_restore,
			  ret, same_restore, deadline_ns, err);
}

static int snap_get_restore(void *impl, const char *ns, const char *name, struct shd_restore *ret,
			    uint64_t deadline_ns, struct shp_error *err)
{
	return get_one(impl, KV_SNAP_API, ns, "virtualmachinerestores", name, map_restore, ret,
		       deadline_ns, err);
}

const struct shd_snapshot_ops kv_snapshot_ops = {
	.create = snap_create,
	.get = snap_get,
	.list = snap_list,
	.remove = snap_remove,
	.restore = snap_restore,
	.get_restore = snap_get_restore,
};

/* ---- clones -----------------------------------------------------------------------------------
 */

static int map_clone(const json_t *o, void *r, struct shp_error *e)
{
	return shd_clone_map(o, r, e);
}

static bool same_clone(const void *model, const json_t *obj)
{
	const struct shd_clone *c = model;
	const char *target = spec_str(obj, "target", "name");

	return shp_streq(c->source_kind, spec_str(obj, "source", "kind")) &&
	       shp_streq(c->source, spec_str(obj, "source", "name")) &&
	       (!target || shp_streq(c->target, target));
}

static int clone_create(struct kv *kv, const char *ns, const char *group, const char *kind,
			const char *source, const char *target, const char *name,
			struct shd_clone *ret, uint64_t deadline_ns, struct shp_error *err)
{
	json_auto_t *obj = NULL;
	json_t *spec;
	int rc = shd_provider_check_ns_name(ns, "clone", name, err);

	if (rc == 0)
		rc = shd_provider_check_name(kind, source, false, err);
	if (rc == 0 && target)
		rc = shd_provider_check_name("target VM", target, false, err);
	if (rc < 0)
		return rc;
	spec = json_pack("{s:{s:s, s:s, s:s}}", "source", "apiGroup", group, "kind", kind, "name",
			 source);
	if (spec && target &&
	    json_object_set_new(spec, "target",
				json_pack("{s:s, s:s, s:s}", "apiGroup", "kubevirt.io", "kind",
					  "VirtualMachine", "name", target)) < 0)
		spec = (json_decref(spec), NULL);
	obj = spec ? new_object("clone.kubevirt.io/v1beta1", "VirtualMachineClone", ns, name, spec)
		   : NULL;
	if (!obj)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return create_one(kv, KV_CLONE_API, ns, "virtualmachineclones", name, obj, map_clone, ret,
			  same_clone, deadline_ns, err);
}

static int clone_from_vm(void *impl, const char *ns, const char *vm, const char *target,
			 const char *name, struct shd_clone *ret, uint64_t deadline_ns,
			 struct shp_error *err)
{
	return clone_create(impl, ns, "kubevirt.io", "VirtualMachine", vm, target, name, ret,
			    deadline_ns, err);
}

static int clone_from_snapshot(void *impl, const char *ns, const char *snapshot, const char *target,
			       const char *name, struct shd_clone *ret, uint64_t deadline_ns,
			       struct shp_error *err)
{
	return clone_create(impl, ns, "snapshot.kubevirt.io", "VirtualMachineSnapshot", snapshot,
			    target, name, ret, deadline_ns, err);
}

static int clone_get(void *impl, const char *ns, const char *name, struct shd_clone *ret,
		     uint64_t deadline_ns, struct shp_error *err)
{
	return get_one(impl, KV_CLONE_API, ns, "virtualmachineclones", name, map_clone, ret,
		       deadline_ns, err);
}

static int clone_list(void *impl, const char *ns, struct shd_clone **ret, size_t *ret_n,
		      uint64_t deadline_ns, struct shp_error *err)
{
	if (!ns)
		return shp_error_set(err, SHP_E_INVAL, "listing clones needs a namespace");
	return list_some(impl, KV_CLONE_API, ns, "virtualmachineclones", NULL, sizeof(**ret),
			 map_clone, NULL, NULL, (void **)ret, ret_n, deadline_ns, err);
}

const struct shd_clone_ops kv_clone_ops = {
	.from_vm = clone_from_vm,
	.from_snapshot = clone_from_snapshot,
	.get = clone_get,
	.list = clone_list,
};

/* ---- migrations -------------------------------------------------------------------------------
 */

static int map_migration(const json_t *o, void *r, struct shp_error *e)
{
	return shd_migration_map(o, r, e);
}

static bool migration_of(const void *item, const char *vm)
{
	return shp_streq(((const struct shd_migration *)item)->vm, vm);
}

static int mig_migrate(void *impl, const char *ns, const char *vm, struct shd_migration *ret,
		       uint64_t deadline_ns, struct shp_error *err)
{
	struct kv *kv = impl;
	_cleanup_(shp_buf_releasep) struct shp_buf p = SHP_BUF_INIT(KV_PATH_MAX);
	json_auto_t *obj = NULL;
	struct shd_k8s_resp r = {0};
	int rc = shd_provider_check_ns_name(ns, "VM", vm, err);

	if (rc < 0)
		return rc;
	/* KubeVirt's webhook sets the vmi-name label too; setting it makes any server list right */
	obj = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}}, s:{s:s}}", "apiVersion",
			"kubevirt.io/v1", "kind", "VirtualMachineInstanceMigration", "metadata",
			"generateName", "shepherd-migrate-", "namespace", ns, "labels",
			SHD_LABEL_MANAGED_BY, "shepherd", "kubevirt.io/vmi-name", vm, "spec",
			"vmiName", vm);
	if (!obj)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	rc = kv_path(&p, KV_VM_API, ns, "virtualmachineinstancemigrations", NULL, err);
	if (rc == 0)
		rc = kv_send(kv, "POST", p.buf, obj, NULL, kv_deadline(kv, deadline_ns), &r, err);
	if (rc == 0)
		rc = shd_migration_map(r.json, ret, err);
	shd_k8s_resp_release(&r);
	if (rc < 0)
		(void)shp_error_prefix(err, "migrating VM '%s/%s'", ns, vm);
	return rc;
}

static int mig_get(void *impl, const char *ns, const char *name, struct shd_migration *ret,
		   uint64_t deadline_ns, struct shp_error *err)
{
	return get_one(impl, KV_VM_API, ns, "virtualmachineinstancemigrations", name, map_migration,
		       ret, deadline_ns, err);
}

static int mig_list(void *impl, const char *ns, const char *vm, struct shd_migration **ret,
		    size_t *ret_n, uint64_t deadline_ns, struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf sel = SHP_BUF_INIT(512);

	if (!ns)
		return shp_error_set(err, SHP_E_INVAL, "listing migrations needs a namespace");
	/* KubeVirt labels each migration with its VMI; the spec is checked as well */
	if (vm && shp_buf_addf(&sel, "kubevirt.io/vmi-name=%s", vm) < 0)
		return shp_error_set(err, SHP_E_INVAL, "the VM name is too long");
	return list_some(impl, KV_VM_API, ns, "virtualmachineinstancemigrations",
			 vm ? sel.buf : NULL, sizeof(**ret), map_migration, migration_of, vm,
			 (void **)ret, ret_n, deadline_ns, err);
}

static bool is_final(const struct shd_migration *m)
{
	return shp_streq(m->phase, "Succeeded") || shp_streq(m->phase, "Failed") || m->completed ||
	       m->failed;
}

static int mig_cancel(void *impl, const char *ns, const char *vm, uint64_t deadline_ns,
		      struct shp_error *err)
{
	struct kv *kv = impl;
	_cleanup_free_ struct shd_migration *all = NULL;
	uint64_t dl = kv_deadline(kv, deadline_ns);
	size_t n = 0;
	int rc;

	if (!vm)
		return shp_error_set(err, SHP_E_INVAL, "cancelling a migration needs the VM");
	rc = mig_list(impl, ns, vm, &all, &n, dl, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (!is_final(&all[i]))
			return delete_one(kv, KV_VM_API, ns, "virtualmachineinstancemigrations",
					  all[i].name, dl, err);
	return shp_error_set(err, SHP_E_NOTFOUND, "VM '%s/%s' has no migration in flight", ns, vm);
}

const struct shd_migration_ops kv_migration_ops = {
	.migrate = mig_migrate,
	.get = mig_get,
	.list = mig_list,
	.cancel = mig_cancel,
};

/* ---- instance types and preferences -----------------------------------------------------------
 */

static int map_instancetype(const json_t *o, void *r, struct shp_error *e)
{
	return shd_instancetype_map(o, r, e);
}

static int map_preference(const json_t *o, void *r, struct shp_error *e)
{
	return shd_preference_map(o, r, e);
}

static int it_list(void *impl, const char *ns, struct shd_instancetype **ret, size_t *ret_n,
		   uint64_t deadline_ns, struct shp_error *err)
{
	return list_some(impl, KV_IT_API, ns,
			 ns ? "virtualmachineinstancetypes" : "virtualmachineclusterinstancetypes",
			 NULL, sizeof(**ret), map_instancetype, NULL, NULL, (void **)ret, ret_n,
			 deadline_ns, err);
}

static int pref_list(void *impl, const char *ns, struct shd_preference **ret, size_t *ret_n,
		     uint64_t deadline_ns, struct shp_error *err)
{
	return list_some(impl, KV_IT_API, ns,
			 ns ? "virtualmachinepreferences" : "virtualmachineclusterpreferences",
			 NULL, sizeof(**ret), map_preference, NULL, NULL, (void **)ret, ret_n,
			 deadline_ns, err);
}

const struct shd_instancetype_ops kv_instancetype_ops = {
	.list_instancetypes = it_list,
	.list_preferences = pref_list,
};
