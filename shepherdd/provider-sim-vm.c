/*
 * The simulated cluster's VMs: get, list, create, update, delete, the power operations with
 * the rules and messages of KubeVirt's subresources (section 5 of the API reference), the
 * transitions that follow them, and the watch over the event log.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "labelsel.h"
#include "provider-sim-internal.h"
#include "provider-sim.h"
#include "util.h"

#define RES_VM "virtualmachine.kubevirt.io"
#define RES_VMI "virtualmachineinstance.kubevirt.io"

/* ---- state helpers ------------------------------------------------------------------------ */

/* ready follows the VMI's Ready condition: true while it runs, false when paused. */
void sim_vm_set_status(struct sim_vm *vm, enum shd_vm_status st, const char *printable)
{
	vm->pub.status = st;
	sim_copy(vm->pub.printable_status, sizeof(vm->pub.printable_status), printable);
	vm->pub.ready = st == SHD_VM_RUNNING || st == SHD_VM_MIGRATING;
}

void sim_vm_place(struct sim *s, struct sim_vm *vm)
{
	uint64_t a = sim_next_serial(s);

	if (!vm->pub.node[0])
		(void)snprintf(vm->pub.node, sizeof(vm->pub.node), "node-%u",
			       s->next_node++ % (unsigned)s->nodes + 1);
	/* 10.x.y.z with z in 1..254, never reused within a run */
	(void)snprintf(vm->pub.ip, sizeof(vm->pub.ip), "10.%" PRIu64 ".%" PRIu64 ".%" PRIu64,
		       (a / 254 / 256) % 256, (a / 254) % 256, a % 254 + 1);
}

static void unplace(struct sim_vm *vm)
{
	vm->pub.node[0] = '\0';
	vm->pub.ip[0] = '\0';
}

/* Move vm to status st and schedule step one tick from now; one MODIFIED event. */
static void begin(struct sim *s, struct sim_vm *vm, enum shd_vm_status st, const char *printable,
		  enum sim_vm_step step, uint64_t now)
{
	sim_vm_set_status(vm, st, printable);
	vm->step = step;
	sim_schedule(s, &vm->o, now);
	sim_vm_event(s, vm, SHD_WATCH_MODIFIED, NULL);
}

void sim_vm_step(struct sim *s, struct sim_vm *vm, uint64_t due)
{
	enum sim_vm_step step = vm->step;

	vm->step = SIM_STEP_NONE;
	switch (step) {
	case SIM_STEP_RUN:
		sim_vm_set_status(vm, SHD_VM_RUNNING, "Running");
		sim_vm_place(s, vm);
		break;
	case SIM_STEP_HALT:
		sim_vm_set_status(vm, SHD_VM_STOPPED, "Stopped");
		unplace(vm);
		break;
	case SIM_STEP_RESTART:
		/* a new VMI: scheduled anew, so the node may change */
		sim_vm_set_status(vm, SHD_VM_STARTING, "Starting");
		unplace(vm);
		vm->step = SIM_STEP_RUN;
		sim_schedule(s, &vm->o, due);
		break;
	case SIM_STEP_GONE:
		sim_vm_event(s, vm, SHD_WATCH_DELETED, NULL);
		sim_migrations_drop(s, vm->o.ns, vm->o.name);
		sim_remove(s, &vm->o);
		return;
	case SIM_STEP_NONE: return;
	}
	sim_vm_event(s, vm, SHD_WATCH_MODIFIED, NULL);
}

struct sim_vm *sim_vm_get(struct sim *s, const char *ns, const char *name)
{
	return (struct sim_vm *)sim_find(s, SIM_VM, ns, name);
}

int sim_vm_create_from(struct sim *s, const struct shd_vm *src, const json_t *labels,
		       enum shd_vm_status initial, struct sim_vm **ret, uint64_t now,
		       struct shp_error *err)
{
	struct sim_vm *vm = sim_xcalloc(1, sizeof(*vm));

	vm->o.kind = SIM_VM;
	sim_copy(vm->o.ns, sizeof(vm->o.ns), src->namespace_);
	sim_copy(vm->o.name, sizeof(vm->o.name), src->name);
	vm->pub = *src;
	vm->labels = labels ? json_deep_copy(labels) : json_object();
	int r = sim_insert(s, &vm->o, err);
	if (r < 0) {
		sim_obj_release(&vm->o);
		free(vm);
		return r;
	}
	sim_make_uid(s, vm->pub.uid, sizeof(vm->pub.uid));
	unplace(vm);
	vm->pub.error[0] = '\0';
	if (initial == SHD_VM_STARTING) {
		sim_vm_set_status(vm, SHD_VM_STARTING, "Starting");
		vm->step = SIM_STEP_RUN;
		sim_schedule(s, &vm->o, now);
	} else if (initial == SHD_VM_RUNNING) {
		sim_vm_set_status(vm, SHD_VM_RUNNING, "Running");
		sim_vm_place(s, vm);
	} else {
		sim_vm_set_status(vm, SHD_VM_STOPPED, "Stopped");
	}
	sim_vm_event(s, vm, SHD_WATCH_ADDED, NULL);
	if (ret)
		*ret = vm;
	return 0;
}

static int vm_not_found(struct shp_error *err, const char *res, const char *name)
{
	char q[80];

	sim_quote(q, sizeof(q), name);
	return sim_fail(err, 404, "NotFound", "%s \"%s\" not found", res, q);
}

static int conflict(struct shp_error *err, const char *res, const char *name, const char *why)
{
	char q[80];

	sim_quote(q, sizeof(q), name);
	return sim_fail(err, 409, "Conflict", "Operation cannot be fulfilled on %s \"%s\": %s", res,
			q, why);
}

/* ---- get, list ------------------------------------------------------------------------------ */

static int sim_get_vm(void *impl, const char *ns, const char *name, struct shd_vm *ret,
		      uint64_t deadline_ns, struct shp_error *err)
{
	struct sim *s = impl;
	int r = shd_provider_check_ns_name(ns, "VM", name, err);

	if (r < 0)
		return r; /* not echoed: the names are not valid */
	if ((r = sim_enter(s, deadline_ns, err)) == 0) {
		struct sim_vm *vm = sim_vm_get(s, ns, name);
		if (vm)
			*ret = vm->pub;
		else
			r = vm_not_found(err, "virtualmachines.kubevirt.io", name);
		sim_leave(s);
	}
	if (r < 0)
		(void)shp_error_prefix(err, "getting VM '%s/%s'", ns, name);
	return r;
}

/* Parse a selector into *ret, keeping err's contract (the code comes back even if err is NULL). */
static int parse_selector(const char *selector, struct shd_labelsel **ret, struct shp_error *err)
{
	struct shp_error e = SHP_ERROR_INIT;

	*ret = shd_labelsel_parse(selector, &e);
	if (*ret)
		return 0;
	if (err)
		*err = e;
	return -(int)e.code;
}

static int sim_list_vms(void *impl, const char *ns, const char *selector, struct shd_vm_list *ret,
			uint64_t deadline_ns, struct shp_error *err)
{
	struct sim *s = impl;
	_cleanup_(shd_labelsel_freep) struct shd_labelsel *sel = NULL;
	int r = ns ? shd_provider_check_name("namespace", ns, true, err) : 0;

	if (r == 0)
		r = parse_selector(selector, &sel, err);
	if (r == 0)
		r = sim_enter(s, deadline_ns, err);
	if (r < 0) {
		(void)shp_error_prefix(err, "listing VMs of cluster '%s'", s->cluster);
		return r;
	}
	const struct sim_set *set = &s->sets[SIM_VM];
	struct shd_vm *items = sim_xcalloc(set->n, sizeof(*items));
	size_t n = 0;
	for (size_t i = 0; i < set->n; i++) {
		const struct sim_vm *vm = (const struct sim_vm *)set->items[i];
		if ((!ns || strcmp(vm->o.ns, ns) == 0) && shd_labelsel_match(sel, vm->labels))
			items[n++] = vm->pub;
	}
	ret->items = items;
	ret->n = n;
	(void)snprintf(ret->resource_version, sizeof(ret->resource_version), "%" PRIu64, s->rv);
	sim_leave(s);
	return 0;
}

/* ---- create, update ------------------------------------------------------------------------ */

/* The VM a manifest describes (spec fields as the KubeVirt mapper reads them). */
static void vm_from_manifest(const struct sim_manifest *m, struct shd_vm *v)
{
	memset(v, 0, sizeof(*v));
	sim_copy(v->name, sizeof(v->name), m->name);
	sim_copy(v->namespace_, sizeof(v->namespace_), m->ns);
	sim_copy(v->run_strategy, sizeof(v->run_strategy),
		 m->run_strategy ? m->run_strategy : "Halted");
	v->cpus = m->has_cpu ? m->cpus : 0;
	v->memory_bytes = m->memory_bytes;
	sim_copy(v->instancetype, sizeof(v->instancetype), m->instancetype);
	v->status = SHD_VM_STOPPED;
	sim_copy(v->printable_status, sizeof(v->printable_status), "Stopped");
}

/*
 * An existing VM wins over the manifest, even a different one, because the KubeVirt provider
 * answers an AlreadyExists with the VM it then reads. The namespace is checked after that: an
 * existing VM implies it.
 */
static int create_locked(struct sim *s, const struct sim_manifest *m, bool dry_run,
			 struct shd_vm *ret, struct shp_error *err)
{
	struct shd_vm v;
	struct sim_vm *vm = sim_vm_get(s, m->ns, m->name);
	bool runs = sim_strategy_runs(m->run_strategy);
	int r;

	if (vm) { /* create-if-absent: the VM that is there */
		if (ret)
			*ret = vm->pub;
		return 0;
	}
	if ((r = sim_need_namespace(s, m->ns, err)) < 0)
		return r;
	vm_from_manifest(m, &v);
	if (dry_run) {
		if (runs) {
			v.status = SHD_VM_STARTING;
			sim_copy(v.printable_status, sizeof(v.printable_status), "Starting");
		}
		if (ret)
			*ret = v;
		return 0;
	}
	r = sim_vm_create_from(s, &v, m->labels, runs ? SHD_VM_STARTING : SHD_VM_STOPPED, &vm,
			       shp_now_monotonic_ns(), err);
	if (r == 0 && ret)
		*ret = vm->pub;
	return r;
}

static int sim_create_vm(void *impl, const json_t *manifest, bool dry_run, struct shd_vm *ret,
			 uint64_t deadline_ns, struct shp_error *err)
{
	struct sim *s = impl;
	struct sim_manifest m;
	const char *ns, *name;
	int r = sim_manifest_id(manifest, &ns, &name, err);

	if (r < 0)
		return r;
	if ((r = sim_manifest_parse(manifest, true, &m, err)) == 0 &&
	    (r = sim_enter(s, deadline_ns, err)) == 0) {
		r = create_locked(s, &m, dry_run, ret, err);
		sim_leave(s);
	}
	if (r < 0)
		(void)shp_error_prefix(err, "creating VM '%s/%s'", ns, name);
	return r;
}

/* labels merged into a copy of base: a JSON null removes the key (as merge patches do). */
static json_t *merge_labels(const json_t *base, const json_t *labels)
{
	json_t *out = json_deep_copy(base);
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)labels, k, v)
	{
		if (json_is_null(v))
			json_object_del(out, k);
		else
			json_object_set(out, k, v);
	}
	return out;
}

/* A change of run strategy moves the VM as KubeVirt's controller would. */
static void follow_strategy(struct sim *s, struct sim_vm *vm, uint64_t now)
{
	bool runs = sim_strategy_runs(vm->pub.run_strategy);
	enum shd_vm_status st = vm->pub.status;

	if (vm->terminating)
		return;
	if (runs && st == SHD_VM_STOPPED) {
		sim_vm_set_status(vm, SHD_VM_STARTING, "Starting");
		vm->step = SIM_STEP_RUN;
		sim_schedule(s, &vm->o, now);
	} else if (runs && st == SHD_VM_STOPPING && vm->step == SIM_STEP_HALT) {
		vm->step = SIM_STEP_RESTART;
	} else if (strcmp(vm->pub.run_strategy, "Halted") == 0 && st != SHD_VM_STOPPED &&
		   st != SHD_VM_STOPPING) {
		sim_migration_interrupt(s, vm, "VMI shut down during migration");
		sim_vm_set_status(vm, SHD_VM_STOPPING, "Stopping");
		vm->step = SIM_STEP_HALT;
		sim_schedule(s, &vm->o, now);
	} else if (strcmp(vm->pub.run_strategy, "Halted") == 0 && vm->step == SIM_STEP_RESTART) {
		vm->step = SIM_STEP_HALT;
	}
}

/* The VM vm would be after applying m; SHP_E_INVAL when an instancetype meets explicit sizes. */
static int merged(const struct sim_vm *vm, const struct sim_manifest *m, struct shd_vm *ret,
		  struct shp_error *err)
{
	struct shd_vm v = vm->pub;

	if (m->run_strategy)
		sim_copy(v.run_strategy, sizeof(v.run_strategy), m->run_strategy);
	if (m->instancetype)
		sim_copy(v.instancetype, sizeof(v.instancetype), m->instancetype);
	if (m->has_cpu)
		v.cpus = m->cpus;
	if (m->has_memory)
		v.memory_bytes = m->memory_bytes;
	if (v.instancetype[0] && (v.cpus || v.memory_bytes))
		return sim_fail(err, 422, "Invalid",
				"admission webhook \"virtualmachine-validator.kubevirt.io\" denied "
				"the request: VM field(s) %s conflicts with selected instance type",
				v.cpus ? "spec.template.spec.domain.cpu"
				       : "spec.template.spec.domain.memory.guest");
	*ret = v;
	return 0;
}

/*
 * Server-side apply with force: the fields given win. Fields not given are kept (there is no
 * field ownership here, so nothing is removed by leaving it out), except labels set to null.
 */
static int update_locked(struct sim *s, const struct sim_manifest *m, const json_t *manifest,
			 bool dry_run, struct shd_vm *ret, struct shp_error *err)
{
	struct sim_vm *vm = sim_vm_get(s, m->ns, m->name);
	struct shd_vm v;
	int r;

	if (!vm && m->has_spec) { /* an apply of a whole VM creates it */
		struct sim_manifest full;
		if ((r = sim_manifest_parse(manifest, true, &full, err)) < 0)
			return r;
		return create_locked(s, &full, dry_run, ret, err);
	}
	if (!vm)
		return vm_not_found(err, "virtualmachines.kubevirt.io", m->name);
	if ((r = merged(vm, m, &v, err)) < 0)
		return r;
	json_t *labels = m->labels ? merge_labels(vm->labels, m->labels) : json_incref(vm->labels);
	if (json_object_size(labels) > SIM_MAX_LABELS) {
		json_decref(labels);
		return sim_fail(
			err, 422, "Invalid",
			"VirtualMachine.kubevirt.io \"%s\" is invalid: metadata.labels: Too "
			"many: must have at most %d items",
			m->name, SIM_MAX_LABELS);
	}
	bool same = json_equal(labels, vm->labels) &&
		    strcmp(v.run_strategy, vm->pub.run_strategy) == 0 &&
		    strcmp(v.instancetype, vm->pub.instancetype) == 0 && v.cpus == vm->pub.cpus &&
		    v.memory_bytes == vm->pub.memory_bytes;
	if (dry_run || same) { /* a no-op apply changes nothing, not even the RV */
		json_decref(labels);
		if (ret)
			*ret = v;
		return 0;
	}
	json_t *prev = vm->labels;
	vm->labels = labels;
	vm->pub = v;
	follow_strategy(s, vm, shp_now_monotonic_ns());
	sim_vm_event(s, vm, SHD_WATCH_MODIFIED, json_equal(prev, labels) ? NULL : prev);
	json_decref(prev);
	if (ret)
		*ret = vm->pub;
	return 0;
}

static int sim_update_vm(void *impl, const json_t *manifest, bool dry_run, struct shd_vm *ret,
			 uint64_t deadline_ns, struct shp_error *err)
{
	struct sim *s = impl;
	struct sim_manifest m;
	const char *ns, *name;
	int r = sim_manifest_id(manifest, &ns, &name, err);

	if (r < 0)
		return r;
	if ((r = sim_manifest_parse(manifest, false, &m, err)) == 0 &&
	    (r = sim_enter(s, deadline_ns, err)) == 0) {
		r = update_locked(s, &m, manifest, dry_run, ret, err);
		sim_leave(s);
	}
	if (r < 0)
		(void)shp_error_prefix(err, "applying VM '%s/%s'", ns, name);
	return r;
}

/* ---- delete, namespaces --------------------------------------------------------------------- */

static int sim_delete_vm(void *impl, const char *ns, const char *name, uint64_t deadline_ns,
			 struct shp_error *err)
{
	struct sim *s = impl;
	int r = shd_provider_check_ns_name(ns, "VM", name, err);

	if (r < 0)
		return r;
	if ((r = sim_enter(s, deadline_ns, err)) < 0) {
		(void)shp_error_prefix(err, "deleting VM '%s/%s'", ns, name);
		return r;
	}
	struct sim_vm *vm = sim_vm_get(s, ns, name);
	if (vm && !vm->terminating) {
		/* the finalizer holds it one tick, Terminating, then DELETED */
		sim_migration_interrupt(s, vm, "VMI is being deleted");
		vm->terminating = true;
		begin(s, vm, SHD_VM_STOPPING, "Terminating", SIM_STEP_GONE, shp_now_monotonic_ns());
	}
	sim_leave(s);
	return 0;
}

static int sim_ensure_namespace(void *impl, const char *ns, uint64_t deadline_ns,
				struct shp_error *err)
{
	struct sim *s = impl;
	int r = shd_provider_check_name("namespace", ns, true, err);

	if (r < 0)
		return r;
	if ((r = sim_enter(s, deadline_ns, err)) == 0) {
		r = sim_add_namespace(s, ns, err);
		sim_leave(s);
	}
	if (r < 0)
		(void)shp_error_prefix(err, "ensuring namespace '%s'", ns);
	return r;
}

/* ---- power ---------------------------------------------------------------------------------- */

/*
 * The power rules follow virt-api: start and stop rewrite runStrategy (Halted <-> Always) except
 * for Manual, which takes state change requests instead; a request already satisfied is not
 * an error here because the KubeVirt provider turns that 409 into success.
 */
static int power_start(struct sim *s, struct sim_vm *vm, uint64_t now, struct shp_error *err)
{
	if (vm->terminating)
		return conflict(err, RES_VM, vm->o.name, "VM is being deleted");
	if (vm->pub.status == SHD_VM_STOPPED) {
		if (!sim_strategy_runs(vm->pub.run_strategy) &&
		    strcmp(vm->pub.run_strategy, "Manual") != 0)
			sim_copy(vm->pub.run_strategy, sizeof(vm->pub.run_strategy), "Always");
		begin(s, vm, SHD_VM_STARTING, "Starting", SIM_STEP_RUN, now);
	} else if (vm->pub.status == SHD_VM_STOPPING && vm->step == SIM_STEP_HALT) {
		/* stopping: it starts again once down */
		if (strcmp(vm->pub.run_strategy, "Halted") == 0)
			sim_copy(vm->pub.run_strategy, sizeof(vm->pub.run_strategy), "Always");
		vm->step = SIM_STEP_RESTART;
		sim_vm_event(s, vm, SHD_WATCH_MODIFIED, NULL);
	}
	return 0; /* otherwise already running or starting: satisfied */
}

static int power_stop(struct sim *s, struct sim_vm *vm, uint64_t now)
{
	bool strategy_runs = sim_strategy_runs(vm->pub.run_strategy);

	if (vm->terminating || vm->pub.status == SHD_VM_STOPPED)
		return 0;
	if (strategy_runs)
		sim_copy(vm->pub.run_strategy, sizeof(vm->pub.run_strategy), "Halted");
	if (vm->pub.status == SHD_VM_STOPPING) {
		if (vm->step == SIM_STEP_RESTART) {
			vm->step = SIM_STEP_HALT;
			sim_vm_event(s, vm, SHD_WATCH_MODIFIED, NULL);
		}
		return 0;
	}
	sim_migration_interrupt(s, vm, "VMI shut down during migration");
	begin(s, vm, SHD_VM_STOPPING, "Stopping", SIM_STEP_HALT, now);
	return 0;
}

static int power_restart(struct sim *s, struct sim_vm *vm, uint64_t now, struct shp_error *err)
{
	char why[80];

	if (vm->terminating)
		return conflict(err, RES_VM, vm->o.name, "VM is being deleted");
	if (strcmp(vm->pub.run_strategy, "Halted") == 0 ||
	    strcmp(vm->pub.run_strategy, "Once") == 0) {
		/* sic: the message as virt-api spells it */
		(void)snprintf(why, sizeof(why),
			       "RunStategy %s does not support manual restart requests",
			       vm->pub.run_strategy);
		return conflict(err, RES_VM, vm->o.name, why);
	}
	if (vm->pub.status == SHD_VM_STOPPING && vm->step == SIM_STEP_RESTART)
		return 0;
	if (vm->pub.status == SHD_VM_STOPPED || vm->pub.status == SHD_VM_STOPPING)
		return conflict(err, RES_VM, vm->o.name, "VM is not running");
	sim_migration_interrupt(s, vm, "VMI shut down during migration");
	begin(s, vm, SHD_VM_STOPPING, "Stopping", SIM_STEP_RESTART, now);
	return 0;
}

static int power_pause(struct sim *s, struct sim_vm *vm, bool pause, struct shp_error *err)
{
	enum shd_vm_status st = vm->pub.status;

	if (pause && st == SHD_VM_RUNNING) {
		sim_vm_set_status(vm, SHD_VM_PAUSED, "Paused");
		sim_vm_event(s, vm, SHD_WATCH_MODIFIED, NULL);
	} else if (!pause && st == SHD_VM_PAUSED) {
		sim_vm_set_status(vm, SHD_VM_RUNNING, "Running");
		sim_vm_event(s, vm, SHD_WATCH_MODIFIED, NULL);
	} else if (st == SHD_VM_MIGRATING) {
		return pause ? conflict(err, RES_VMI, vm->o.name, "VMI is migrating") : 0;
	} else if (st != SHD_VM_PAUSED && st != SHD_VM_RUNNING) {
		return conflict(err, RES_VMI, vm->o.name,
				pause ? "VM is not running" : "VMI is not running");
	}
	return 0; /* already paused, or not paused: satisfied */
}

static int sim_power(void *impl, const char *ns, const char *name, enum shd_power_op op,
		     uint64_t deadline_ns, struct shp_error *err)
{
	struct sim *s = impl;
	uint64_t now = shp_now_monotonic_ns();
	int r = shd_provider_check_ns_name(ns, "VM", name, err);

	if (r < 0)
		return r;
	if ((unsigned)op > SHD_POWER_UNPAUSE)
		return shp_error_set(err, SHP_E_INVAL, "unknown power operation");
	if ((r = sim_enter(s, deadline_ns, err)) < 0) {
		(void)shp_error_prefix(err, "%s of VM '%s/%s'", shd_power_op_to_string(op), ns,
				       name);
		return r;
	}
	struct sim_vm *vm = sim_vm_get(s, ns, name);
	if (!vm)
		r = vm_not_found(
			err, op == SHD_POWER_PAUSE || op == SHD_POWER_UNPAUSE ? RES_VMI : RES_VM,
			name);
	else if (op == SHD_POWER_START)
		r = power_start(s, vm, now, err);
	else if (op == SHD_POWER_STOP)
		r = power_stop(s, vm, now);
	else if (op == SHD_POWER_RESTART)
		r = power_restart(s, vm, now, err);
	else
		r = power_pause(s, vm, op == SHD_POWER_PAUSE, err);
	sim_leave(s);
	if (r < 0)
		(void)shp_error_prefix(err, "%s of VM '%s/%s'", shd_power_op_to_string(op), ns,
				       name);
	return r;
}

/* ---- watch ---------------------------------------------------------------------------------- */

struct watch {
	struct sim *s;
	const struct shd_labelsel *sel;
	uint64_t pos;   /* every event up to this RV has been seen */
	uint64_t epoch; /* the log's epoch when the watch began */
	uint64_t last_sent;
	shd_vm_watch_fn fn;
	void *ud;
};

/* The type under which this watch sees ev (an object entering or leaving the selector is
 * ADDED or DELETED), or -1 when it does not see it at all. */
static int seen_as(const struct watch *w, const struct sim_event *ev)
{
	bool now_in = shd_labelsel_match(w->sel, ev->labels);
	bool was_in = ev->prev_labels ? shd_labelsel_match(w->sel, ev->prev_labels) : now_in;

	if (ev->type != SHD_WATCH_MODIFIED)
		return now_in ? (int)ev->type : -1;
	if (now_in && was_in)
		return SHD_WATCH_MODIFIED;
	if (now_in || was_in)
		return now_in ? SHD_WATCH_ADDED : SHD_WATCH_DELETED;
	return -1;
}

/* Call fn with the lock released; true when the watch should go on. */
static bool deliver(struct watch *w, enum shd_watch_type type, const struct shd_vm *vm, uint64_t rv)
{
	char rvs[32];
	int r;

	(void)snprintf(rvs, sizeof(rvs), "%" PRIu64, rv);
	sim_leave(w->s);
	r = w->fn(w->ud, type, vm, rvs);
	pthread_mutex_lock(&w->s->lock);
	w->last_sent = shp_now_monotonic_ns();
	return r >= 0;
}

/* The next event of the log this watch sees, delivered; 1 delivered, 0 none, -1 stopped. */
static int next_event(struct watch *w)
{
	struct sim *s = w->s;

	for (size_t i = sim_log_first_after(s, w->pos); i < s->log_n; i++) {
		const struct sim_event *ev = sim_log_at(s, i);
		int type = seen_as(w, ev);
		w->pos = ev->rv;
		if (type < 0)
			continue;
		struct shd_vm vm = ev->vm;
		/* as from a real cluster: a VM event carries no VMI fields */
		vm.node[0] = vm.ip[0] = '\0';
		return deliver(w, (enum shd_watch_type)type, &vm, ev->rv) ? 1 : -1;
	}
	return 0;
}

/* From RV "0": every current VM as ADDED first, as the API server does. false if stopped. */
static bool initial_events(struct watch *w)
{
	struct sim *s = w->s;
	const struct sim_set *set = &s->sets[SIM_VM];
	_cleanup_free_ struct shd_vm *vms = sim_xcalloc(set->n, sizeof(*vms));
	size_t n = 0;

	for (size_t i = 0; i < set->n; i++) {
		const struct sim_vm *vm = (const struct sim_vm *)set->items[i];
		if (shd_labelsel_match(w->sel, vm->labels))
			vms[n++] = vm->pub;
	}
	w->pos = s->rv;
	for (size_t i = 0; i < n; i++)
		if (!deliver(w, SHD_WATCH_ADDED, &vms[i], w->pos))
			return false;
	return true;
}

/*
 * Runs with the lock held and returns with it released. Each pass applies due transitions
 * first, so a watch alone (no other calls) still sees the cluster move; it sleeps at most a
 * tick, or until the next transition is due, whichever is sooner.
 */
static int watch_loop(struct watch *w, const atomic_bool *stop, uint64_t deadline,
		      struct shp_error *err)
{
	struct sim *s = w->s;
	uint64_t bookmark_ns = s->tick_ns * SIM_BOOKMARK_TICKS;

	for (;;) {
		uint64_t now = shp_now_monotonic_ns();
		int r;
		if (stop && atomic_load(stop))
			break;
		if (s->unreachable) {
			sim_leave(s);
			return sim_unreachable_error(s, err);
		}
		if (s->epoch != w->epoch || w->pos < s->floor_rv) {
			sim_leave(s);
			return SHD_WATCH_EXPIRED;
		}
		sim_apply_due(s, now);
		if ((r = next_event(w)) != 0) {
			if (r < 0)
				break;
			continue;
		}
		if (now >= deadline || now - w->last_sent >= bookmark_ns) {
			/* nothing left to send: the current RV is a safe place to resume */
			w->pos = s->rv;
			if (!deliver(w, SHD_WATCH_BOOKMARK, NULL, w->pos) || now >= deadline)
				break;
			continue;
		}
		uint64_t until = now + s->tick_ns;
		if (deadline < until)
			until = deadline;
		if (s->next_due > now && s->next_due < until)
			until = s->next_due;
		sim_wait(s, until);
	}
	sim_leave(s);
	return 0;
}

static int sim_watch_vms(void *impl, const char *selector, const char *from_rv, shd_vm_watch_fn fn,
			 void *ud, const atomic_bool *stop, uint64_t deadline_ns,
			 struct shp_error *err)
{
	struct sim *s = impl;
	_cleanup_(shd_labelsel_freep) struct shd_labelsel *sel = NULL;
	long long from = 0;
	int r = parse_selector(selector, &sel, err);

	if (r < 0)
		return r;
	if (!from_rv || !*from_rv)
		return shp_error_set(err, SHP_E_INVAL, "a watch needs a resourceVersion");
	if (shp_parse_int(from_rv, 0, INT64_MAX, &from, NULL) < 0) {
		char q[40];
		sim_quote(q, sizeof(q), from_rv);
		return sim_fail(err, 400, "BadRequest", "invalid resourceVersion \"%s\"", q);
	}
	if (!deadline_ns)
		deadline_ns = shp_now_monotonic_ns() + SIM_DEFAULT_DEADLINE_NS;
	if ((r = sim_enter(s, deadline_ns, err)) < 0) {
		(void)shp_error_prefix(err, "watching VMs");
		return r;
	}
	struct watch w = {.s = s,
			  .sel = sel,
			  .pos = (uint64_t)from,
			  .epoch = s->epoch,
			  .fn = fn,
			  .ud = ud,
			  .last_sent = shp_now_monotonic_ns()};
	if ((uint64_t)from > s->rv) {
		uint64_t cur = s->rv;
		sim_leave(s);
		return sim_fail(err, 504, "Timeout",
				"Too large resource version: %lld, current: %" PRIu64, from, cur);
	}
	if (from == 0 && !initial_events(&w)) {
		sim_leave(s);
		return 0;
	}
	if (w.pos < s->floor_rv) {
		sim_leave(s);
		return SHD_WATCH_EXPIRED; /* 410: too old resource version */
	}
	r = watch_loop(&w, stop, deadline_ns, err);
	if (r < 0)
		(void)shp_error_prefix(err, "watching VMs");
	return r;
}

const struct shd_infra_ops sim_infra_ops = {
	.get_vm = sim_get_vm,
	.list_vms = sim_list_vms,
	.create_vm = sim_create_vm,
	.update_vm = sim_update_vm,
	.delete_vm = sim_delete_vm,
	.power = sim_power,
	.ensure_namespace = sim_ensure_namespace,
	.watch_vms = sim_watch_vms,
};
