/*
 * KubeVirt VirtualMachine + VirtualMachineInstance -> struct shd_vm. Every field is read
 * through a typed getter that treats absent, null and wrong-typed values alike, and every
 * string is copied bounded. The status comes from printableStatus when KubeVirt set it, else
 * from the VMI's phase; errors come from printableStatus and the Failure/Ready conditions.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "util.h"
#include "vm-map-internal.h"
#include "vm.h"

static const char *const status_names[] = {"RUNNING",   "STOPPED", "STARTING", "STOPPING",
					   "MIGRATING", "PAUSED",  "FAILED",   "UNKNOWN"};

const char *shd_vm_status_to_string(enum shd_vm_status s)
{
	return shp_enum_to_string(status_names, SHP_ARRAY_SIZE(status_names), (int)s);
}

int shd_vm_status_from_string(const char *s)
{
	return shp_enum_from_string(status_names, SHP_ARRAY_SIZE(status_names), s);
}

/* ---- typed reads: NULL/absent/wrong type are all "not there" ----------------------------- */

static int64_t int_at(const json_t *j, const char *const *path, int64_t def)
{
	const json_t *v = obj_at(j, path);

	return json_is_integer(v) ? json_integer_value(v) : def;
}

static void copy(char *dst, size_t size, const char *src)
{
	(void)snprintf(dst, size, "%s", src ? src : "");
}

/* ---- quantities -------------------------------------------------------------------------- */

int shd_k8s_quantity_bytes(const char *q, int64_t *ret, struct shp_error *err)
{
	static const struct {
		const char *suffix;
		double mult;
	} units[] = {
		{"Ki", 1024.0},
		{"Mi", 1048576.0},
		{"Gi", 1073741824.0},
		{"Ti", 1099511627776.0},
		{"Pi", 1125899906842624.0},
		{"k", 1e3},
		{"M", 1e6},
		{"G", 1e9},
		{"T", 1e12},
		{"P", 1e15},
		{"m", 1e-3},
		{"", 1.0},
	};
	char *end;
	double v;

	if (!q || !*q || strlen(q) > 32 || !(q[0] >= '0' && q[0] <= '9') ||
	    strpbrk(q, "xXpP") == q + 1 || strchr(q, 'x') || strchr(q, 'X'))
		goto bad;
	errno = 0;
	v = strtod(q, &end);
	if (errno || end == q || *end == 'e' || *end == 'E')
		goto bad;
	for (size_t i = 0; i < SHP_ARRAY_SIZE(units); i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		v *= units[i].mult;
		if (v >= 9.2e18)
			goto bad;
		*ret = (int64_t)v;
		return 0;
	}
bad:
	return shp_error_set(err, SHP_E_INVAL, "'%.40s' is not a resource quantity", q ? q : "");
}

/* ---- status ------------------------------------------------------------------------------ */

static const struct {
	const char *printable;
	enum shd_vm_status status;
} printable_map[] = {
	{"Running", SHD_VM_RUNNING},
	{"Stopped", SHD_VM_STOPPED},
	{"Starting", SHD_VM_STARTING},
	{"Provisioning", SHD_VM_STARTING},
	{"WaitingForVolumeBinding", SHD_VM_STARTING},
	{"Stopping", SHD_VM_STOPPING},
	{"Terminating", SHD_VM_STOPPING},
	{"Migrating", SHD_VM_MIGRATING},
	{"Paused", SHD_VM_PAUSED},
	{"CrashLoopBackOff", SHD_VM_FAILED},
	{"ErrorUnschedulable", SHD_VM_FAILED},
	{"ErrImagePull", SHD_VM_FAILED},
	{"ImagePullBackOff", SHD_VM_FAILED},
	{"ErrorPvcNotFound", SHD_VM_FAILED},
	{"DataVolumeError", SHD_VM_FAILED},
	{"Unknown", SHD_VM_UNKNOWN},
	{"WaitingForReceiver", SHD_VM_UNKNOWN},
};

/* No printableStatus (an old or a broken controller): the VMI's phase decides. */
static enum shd_vm_status from_phase(const json_t *vmi, const char *strategy)
{
	const char *phase = str_at(vmi, PATH("status", "phase"));

	if (!vmi)
		return strategy && strcmp(strategy, "Halted") == 0 ? SHD_VM_STOPPED
								   : SHD_VM_UNKNOWN;
	if (!phase || !*phase || strcmp(phase, "Pending") == 0 ||
	    strcmp(phase, "Scheduling") == 0 || strcmp(phase, "Scheduled") == 0)
		return SHD_VM_STARTING;
	if (strcmp(phase, "Running") == 0)
		return SHD_VM_RUNNING;
	if (strcmp(phase, "Succeeded") == 0)
		return SHD_VM_STOPPED;
	if (strcmp(phase, "Failed") == 0)
		return SHD_VM_FAILED;
	return SHD_VM_UNKNOWN;
}

/* The message of the first condition of type `type` that is in state `state`, or NULL. */
static const char *condition_message(const json_t *obj, const char *type, const char *state)
{
	const json_t *conds = obj_at(obj, PATH("status", "conditions"));
	const json_t *c;
	size_t i;

	if (!json_is_array(conds))
		return NULL;
	json_array_foreach(conds, i, c)
	{
		const char *t = str_at(c, PATH("type")), *s = str_at(c, PATH("status"));
		const char *msg = str_at(c, PATH("message")), *reason = str_at(c, PATH("reason"));
		if (t && s && strcmp(t, type) == 0 && strcmp(s, state) == 0)
			return msg && *msg ? msg : reason;
	}
	return NULL;
}

static void map_status(const json_t *vm, const json_t *vmi, struct shd_vm *r)
{
	const json_t *ps = obj_at(vm, PATH("status", "printableStatus"));
	const json_t *ready;
	const char *why;

	r->status = SHD_VM_UNKNOWN;
	if (json_is_string(ps)) {
		bool known = false;
		copy(r->printable_status, sizeof(r->printable_status), json_string_value(ps));
		for (size_t i = 0; i < SHP_ARRAY_SIZE(printable_map); i++)
			if (strcmp(printable_map[i].printable, r->printable_status) == 0) {
				r->status = printable_map[i].status;
				known = true;
			}
		if (!known)
			(void)snprintf(r->error, sizeof(r->error),
				       "unrecognised printableStatus '%.40s'", r->printable_status);
	} else if (ps && !json_is_null(ps)) {
		copy(r->error, sizeof(r->error), "status.printableStatus is not a string");
	} else {
		r->status = from_phase(vmi, r->run_strategy[0] ? r->run_strategy : NULL);
	}
	ready = obj_at(vm, PATH("status", "ready"));
	r->ready = ready != NULL && json_typeof(ready) == JSON_TRUE;
	if (r->status != SHD_VM_FAILED && r->status != SHD_VM_UNKNOWN)
		return;
	why = condition_message(vm, "Failure", "True");
	if (!why)
		why = condition_message(vm, "Ready", "False");
	if (!why && vmi)
		why = condition_message(vmi, "Ready", "False");
	if (why && *why)
		(void)snprintf(r->error, sizeof(r->error), "%s%s%.480s",
			       r->printable_status[0] ? r->printable_status : "",
			       r->printable_status[0] ? ": " : "", why);
	else if (!r->error[0] && r->printable_status[0])
		copy(r->error, sizeof(r->error), r->printable_status);
}

/* ---- spec and VMI details ---------------------------------------------------------------- */

static void map_spec(const json_t *vm, struct shd_vm *r)
{
	const json_t *dom = obj_at(vm, PATH("spec", "template", "spec", "domain"));
	const char *mem = str_at(dom, PATH("memory", "guest"));
	int64_t sockets = int_at(dom, PATH("cpu", "sockets"), 1),
		cores = int_at(dom, PATH("cpu", "cores"), 1),
		threads = int_at(dom, PATH("cpu", "threads"), 1);
	const char *strategy = str_at(vm, PATH("spec", "runStrategy"));
	const json_t *running = obj_at(vm, PATH("spec", "running"));

	if (strategy)
		copy(r->run_strategy, sizeof(r->run_strategy), strategy);
	else if (json_is_boolean(running))
		copy(r->run_strategy, sizeof(r->run_strategy),
		     json_is_true(running) ? "Always" : "Halted");
	else
		copy(r->run_strategy, sizeof(r->run_strategy), "Halted"); /* KubeVirt's default */
	if (obj_at(dom, PATH("cpu")) && sockets > 0 && cores > 0 && threads > 0 &&
	    sockets * cores * threads <= 4096)
		r->cpus = (int)(sockets * cores * threads);
	if (!mem)
		mem = str_at(dom, PATH("resources", "requests", "memory"));
	if (mem && shd_k8s_quantity_bytes(mem, &r->memory_bytes, NULL) < 0)
		r->memory_bytes = 0;
	copy(r->instancetype, sizeof(r->instancetype),
	     str_at(vm, PATH("spec", "instancetype", "name")));
}

static void map_vmi(const json_t *vmi, struct shd_vm *r)
{
	const json_t *ifs = obj_at(vmi, PATH("status", "interfaces"));
	const json_t *i0 = json_is_array(ifs) ? json_array_get(ifs, 0) : NULL;

	copy(r->node, sizeof(r->node), str_at(vmi, PATH("status", "nodeName")));
	copy(r->ip, sizeof(r->ip), str_at(i0, PATH("ipAddress")));
}

/* ---- entry points ------------------------------------------------------------------------ */

static int identity(const json_t *obj, const char *what, const char **ret_name, const char **ret_ns,
		    struct shp_error *err)
{
	const char *name = str_at(obj, PATH("metadata", "name"));
	const char *ns = str_at(obj, PATH("metadata", "namespace"));

	if (!json_is_object(obj))
		return shp_error_set(err, SHP_E_INVAL, "%s is not an object", what);
	if (!name || !*name || strlen(name) > SHD_VM_NAME_MAX)
		return shp_error_set(err, SHP_E_INVAL, "%s has no usable metadata.name", what);
	if (!ns || !*ns || strlen(ns) > 63)
		return shp_error_set(err, SHP_E_INVAL,
				     "%s '%.60s' has no usable metadata.namespace", what, name);
	*ret_name = name;
	*ret_ns = ns;
	return 0;
}

int shd_vm_map(const json_t *vm, const json_t *vmi, struct shd_vm *ret, struct shp_error *err)
{
	struct shd_vm r = {0};
	const char *name, *ns, *vname, *vns;

	int rc = identity(vm, "the VirtualMachine", &name, &ns, err);

	if (rc < 0)
		return rc;
	if (vmi && (identity(vmi, "the VirtualMachineInstance", &vname, &vns, err) < 0 ||
		    strcmp(vname, name) != 0 || strcmp(vns, ns) != 0))
		return shp_error_set(err, SHP_E_INVAL,
				     "the VirtualMachineInstance does not belong to VM '%s/%s'", ns,
				     name);
	copy(r.name, sizeof(r.name), name);
	copy(r.namespace_, sizeof(r.namespace_), ns);
	copy(r.uid, sizeof(r.uid), str_at(vm, PATH("metadata", "uid")));
	copy(r.resource_version, sizeof(r.resource_version),
	     str_at(vm, PATH("metadata", "resourceVersion")));
	map_spec(vm, &r);
	map_status(vm, vmi, &r);
	if (vmi)
		map_vmi(vmi, &r);
	*ret = r;
	return 0;
}

struct vmi_ref {
	const char *ns, *name;
	const json_t *vmi;
};

static int ref_cmp(const void *a, const void *b)
{
	const struct vmi_ref *x = a, *y = b;
	int c = strcmp(x->ns, y->ns);

	return c ? c : strcmp(x->name, y->name);
}

int shd_vm_map_list(const json_t *vms, const json_t *vmis, struct shd_vm **ret, size_t *ret_n,
		    size_t *ret_skipped, struct shp_error *err)
{
	const json_t *items = obj_at(vms, PATH("items"));
	const json_t *vitems = vmis ? obj_at(vmis, PATH("items")) : NULL;
	size_t nv = json_array_size(vitems), n = 0, skipped = 0, nrefs = 0, i;
	_cleanup_free_ struct vmi_ref *refs = NULL;
	_cleanup_free_ struct shd_vm *out = NULL;
	const json_t *it;

	if (!json_is_array(items))
		return shp_error_set(err, SHP_E_INVAL, "the VM list has no 'items' array");
	refs = calloc(nv ? nv : 1, sizeof(*refs));
	out = calloc(json_array_size(items) ? json_array_size(items) : 1, sizeof(*out));
	if (!refs || !out)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	json_array_foreach(vitems, i, it)
	{
		const char *name, *ns;
		if (identity(it, "a VMI", &name, &ns, NULL) == 0)
			refs[nrefs++] = (struct vmi_ref){ns, name, it};
	}
	qsort(refs, nrefs, sizeof(*refs), ref_cmp);
	json_array_foreach(items, i, it)
	{
		struct vmi_ref key = {0}, *hit = NULL;
		if (identity(it, "a VM", &key.name, &key.ns, NULL) == 0)
			hit = bsearch(&key, refs, nrefs, sizeof(*refs), ref_cmp);
		if (shd_vm_map(it, hit ? hit->vmi : NULL, &out[n], NULL) == 0)
			n++;
		else
			skipped++;
	}
	*ret = TAKE_PTR(out);
	*ret_n = n;
	if (ret_skipped)
		*ret_skipped = skipped;
	return 0;
}
