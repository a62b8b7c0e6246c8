/*
 * The execution engine's VM actions: the steps that act on a cluster through its provider.
 *   vm.get     read    {cluster, namespace, name}: the VM as the cluster reports it
 *   vm.create  modify  {cluster, namespace, name, cpus, memory | instancetype, image, run}
 *   vm.power   modify  {cluster, namespace, name, op: start|stop|restart|pause|unpause}
 *   vm.delete  deploy  {cluster, namespace, name}
 * Each is idempotent, so a step retried after a crash never duplicates anything: the vms row
 * is an upsert, the VM is created if absent, a power operation already satisfied succeeds and
 * deleting what is gone succeeds. The provider is called outside any transaction.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "db.h"
#include "error.h"
#include "exec-internal.h"
#include "exec-vm-internal.h"
#include "json.h"
#include "log.h"
#include "provider.h"
#include "vm.h"

#define CPUS_MAX 64
#define MEMORY_MAX (1024ll * 1024 * 1024 * 1024) /* 1 TiB */
#define IMAGE_MAX 512
#define DEFAULT_IMAGE "quay.io/containerdisks/fedora:latest"

static int run_get(struct shd_step_ctx *s, struct shp_error *err)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = NULL;
	struct shd_vm_ref v = {0};
	struct shd_vm vm;

	if (shd_vmact_resolve(s, &v, err) < 0 || !(p = shd_vmact_provider(s, &v, err)))
		return -err->code;
	if (p->infra.ops->get_vm(p->infra.impl, v.ns, v.name, &vm, s->deadline_ns, err) < 0)
		return shd_vmact_failed(err, "reading VM", &v);
	s->result = shd_vmact_result(&v, &vm);
	return 0;
}

/* The size: cpus and memory, or an instance type that carries both. */
static int domain_spec(const json_t *params, json_t *domain, json_t *spec, struct shp_error *err)
{
	const char *itype = NULL, *memory = NULL;
	int64_t cpus = 0, bytes = 0;

	if (shp_json_get_string(params, "instancetype", false, 253, &itype, err) < 0 ||
	    shp_json_get_int(params, "cpus", false, 1, CPUS_MAX, &cpus, err) < 0 ||
	    shp_json_get_string(params, "memory", false, 32, &memory, err) < 0)
		return -err->code;
	if (itype) {
		if (cpus || memory)
			return shp_error_set(err, SHP_E_INVAL,
					     "give either 'instancetype' or 'cpus' and 'memory'");
		json_object_set_new(spec, "instancetype",
				    json_pack("{s:s,s:s}", "kind",
					      "VirtualMachineClusterInstancetype", "name", itype));
		return 0;
	}
	if (!memory)
		return shp_error_set(err, SHP_E_INVAL, "'memory' (or 'instancetype') is required");
	if (shd_k8s_quantity_bytes(memory, &bytes, err) < 0)
		return -err->code;
	if (bytes < 64ll * 1024 * 1024 || bytes > MEMORY_MAX)
		return shp_error_set(err, SHP_E_INVAL, "'memory' must be between 64Mi and 1Ti");
	json_object_set_new(domain, "cpu",
			    json_pack("{s:I,s:i,s:i}", "sockets", (json_int_t)(cpus ? cpus : 1),
				      "cores", 1, "threads", 1));
	json_object_set_new(domain, "memory", json_pack("{s:s}", "guest", memory));
	return 0;
}

/* The VirtualMachine shepherd creates: labelled as ours, with its row id. */
static json_t *vm_manifest(const struct shd_vm_ref *v, const char *vm_id, const json_t *params,
			   struct shp_error *err)
{
	const char *image = DEFAULT_IMAGE;
	bool run = true;
	json_auto_t *vm = NULL;
	json_t *domain, *tspec, *spec;

	if (shp_json_get_string(params, "image", false, IMAGE_MAX, &image, err) < 0 ||
	    shp_json_get_bool(params, "run", false, &run, err) < 0)
		return NULL;
	if (!image)
		image = DEFAULT_IMAGE;
	domain = json_pack("{s:{s:[{s:s,s:{s:s}}],s:[{s:s,s:{}}]}}", "devices", "disks", "name",
			   "rootdisk", "disk", "bus", "virtio", "interfaces", "name", "default",
			   "masquerade");
	tspec = json_pack("{s:o,s:[{s:s,s:{}}],s:[{s:s,s:{s:s}}]}", "domain", domain, "networks",
			  "name", "default", "pod", "volumes", "name", "rootdisk", "containerDisk",
			  "image", image);
	spec = json_pack("{s:s,s:{s:{s:{s:s}},s:o}}", "runStrategy", run ? "Always" : "Halted",
			 "template", "metadata", "labels", "kubevirt.io/domain", v->name, "spec",
			 tspec);
	vm = json_pack("{s:s,s:s,s:{s:s,s:s,s:{s:s,s:s}},s:o}", "apiVersion", "kubevirt.io/v1",
		       "kind", "VirtualMachine", "metadata", "name", v->name, "namespace", v->ns,
		       "labels", SHD_LABEL_MANAGED_BY, "shepherd", SHD_LABEL_VM_ID, vm_id, "spec",
		       spec);
	if (!vm) {
		shp_error_set(err, SHP_E_NOMEM, "building the VirtualMachine");
		return NULL;
	}
	if (domain_spec(params, domain, spec, err) < 0)
		return NULL;
	return TAKE_PTR(vm);
}

static int run_create(struct shd_step_ctx *s, struct shp_error *err)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = NULL;
	json_auto_t *manifest = NULL;
	struct shd_vm_ref v = {0};
	char vm_id[24];
	struct shd_vm vm;

	if (shd_vmact_resolve(s, &v, err) < 0 ||
	    shd_vmact_upsert_row(s->conn, &v, vm_id, err) < 0 ||
	    !(manifest = vm_manifest(&v, vm_id, s->params, err)) ||
	    !(p = shd_vmact_provider(s, &v, err)))
		return -err->code;
	if (p->infra.ops->ensure_namespace(p->infra.impl, v.ns, s->deadline_ns, err) < 0)
		return shd_vmact_failed(err, "preparing the namespace for VM", &v);
	if (p->infra.ops->create_vm(p->infra.impl, manifest, false, &vm, s->deadline_ns, err) < 0)
		return shd_vmact_failed(err, "creating VM", &v);
	if (shd_vmact_store_observed(s->conn, &v, &vm, err) < 0)
		return -err->code;
	s->result = shd_vmact_result(&v, &vm);
	json_object_set_new(s->result, "vm_id", json_integer(strtoll(vm_id, NULL, 10)));
	return 0;
}

static int power_op(const json_t *params, enum shd_power_op *ret, struct shp_error *err)
{
	static const enum shd_power_op ops[] = {SHD_POWER_START, SHD_POWER_STOP, SHD_POWER_RESTART,
						SHD_POWER_PAUSE, SHD_POWER_UNPAUSE};
	const char *op = NULL;

	if (shp_json_get_string(params, "op", true, 16, &op, err) < 0)
		return -err->code;
	for (size_t i = 0; i < SHP_ARRAY_SIZE(ops); i++)
		if (strcmp(op, shd_power_op_to_string(ops[i])) == 0) {
			*ret = ops[i];
			return 0;
		}
	return shp_error_set(err, SHP_E_INVAL,
			     "'op' must be start, stop, restart, pause or unpause, not '%s'", op);
}

/* The status a power operation leaves the VM in. */
static enum shd_vm_status power_target(enum shd_power_op op)
{
	switch (op) {
	case SHD_POWER_STOP: return SHD_VM_STOPPED;
	case SHD_POWER_PAUSE: return SHD_VM_PAUSED;
	default: return SHD_VM_RUNNING;
	}
}

static int run_power(struct shd_step_ctx *s, struct shp_error *err)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = NULL;
	struct shd_vm_ref v = {0};
	enum shd_power_op op = SHD_POWER_START;
	struct shd_vm vm;

	if (power_op(s->params, &op, err) < 0 || shd_vmact_resolve(s, &v, err) < 0 ||
	    !(p = shd_vmact_provider(s, &v, err)))
		return -err->code;
	if (p->infra.ops->power(p->infra.impl, v.ns, v.name, op, s->deadline_ns, err) < 0)
		return shd_vmact_failed(err, shd_power_op_to_string(op), &v);
	if (p->infra.ops->get_vm(p->infra.impl, v.ns, v.name, &vm, s->deadline_ns, err) < 0)
		return shd_vmact_failed(err, "reading VM", &v);
	/* done when the VM is where the operation takes it (a restart: running again) */
	if (shd_vmact_wait(s, p, &v, &vm, power_target(op), err) < 0) {
		struct shp_error e2 = SHP_ERROR_INIT;

		/* keep the last status seen; the wait's error is the step's */
		if (shd_vmact_store_observed(s->conn, &v, &vm, &e2) < 0)
			log_warn("VM %s/%s: recording its status: %s", v.ns, v.name, e2.msg);
		return -err->code;
	}
	if (shd_vmact_store_observed(s->conn, &v, &vm, err) < 0)
		return -err->code;
	s->result = shd_vmact_result(&v, &vm);
	json_object_set_new(s->result, "op", json_string(shd_power_op_to_string(op)));
	return 0;
}

static int run_delete(struct shd_step_ctx *s, struct shp_error *err)
{
	static const char sql[] =
		"UPDATE vms SET deleted_at = now(), updated_at = now()"
		" WHERE cluster_id = $1 AND namespace = $2 AND name = $3 AND deleted_at IS NULL";
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = NULL;
	struct shd_vm_ref v = {0};

	if (shd_vmact_resolve(s, &v, err) < 0 || !(p = shd_vmact_provider(s, &v, err)))
		return -err->code;
	if (p->infra.ops->delete_vm(p->infra.impl, v.ns, v.name, s->deadline_ns, err) < 0)
		return shd_vmact_failed(err, "deleting VM", &v);
	if (shd_db_command(s->conn, sql, 3, (const char *[]){v.cluster_ids, v.ns, v.name}, err) < 0)
		return -err->code;
	s->result = json_pack("{s:s,s:s,s:s,s:b}", "cluster", v.cluster, "namespace", v.ns, "name",
			      v.name, "deleted", true);
	return 0;
}

/* Cluster calls take seconds, not milliseconds: estimates keep them off the immediate path. */
static int64_t estimate_read(const json_t *params, size_t ntargets)
{
	(void)params;
	return 500 + 100 * (int64_t)ntargets;
}

static int64_t estimate_write(const json_t *params, size_t ntargets)
{
	(void)params;
	return 15000 + 1000 * (int64_t)ntargets;
}

#define VM_PARAMS "cluster", "namespace", "name"
static const char *const get_params[] = {VM_PARAMS, NULL};
static const char *const create_params[] = {VM_PARAMS, "cpus", "memory", "instancetype",
					    "image",   "run",  NULL};
static const char *const power_params[] = {VM_PARAMS, "op", NULL};

const struct shd_action shd_vm_actions[] = {
	{"vm.get", SHD_ACTION_READ, estimate_read, run_get, get_params},
	{"vm.create", SHD_ACTION_MODIFY, estimate_write, run_create, create_params},
	{"vm.power", SHD_ACTION_MODIFY, estimate_write, run_power, power_params},
	{"vm.delete", SHD_ACTION_DEPLOY, estimate_write, run_delete, get_params},
	{NULL},
};
