/*
 * The simulated cluster's other kinds: snapshots (InProgress -> Succeeded, readyToUse),
 * restores (-> complete, the target VM brought back or created), clones (SnapshotInProgress ->
 * RestoreInProgress -> CreatingTargetVM -> Succeeded, creating the target VM), live migrations
 * (Pending .. Running -> Succeeded with the VM MIGRATING and its node changing; a cancel ends
 * Failed with abort). Instance types, health and capabilities are in provider-sim-cluster.c.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "provider-sim-internal.h"
#include "util.h"

/* Unique within a provider (a serial), yet not sequential-looking, as the API server's are. */
void sim_generate_name(struct sim *s, const char *prefix, char *out, size_t size)
{
	static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789"; /* as generateName uses */
	uint64_t x = sim_next_serial(s) * 2654435761u + s->uid_base;
	char suffix[6];

	for (int i = 0; i < 5; i++, x /= sizeof(alphabet) - 1)
		suffix[i] = alphabet[x % (sizeof(alphabet) - 1)];
	suffix[5] = '\0';
	(void)snprintf(out, size, "%s%s", prefix, suffix);
}

void sim_obj_release(struct sim_obj *o)
{
	if (o->kind == SIM_VM)
		json_decref(((struct sim_vm *)o)->labels);
	else if (o->kind == SIM_SNAPSHOT)
		json_decref(((struct sim_snapshot *)o)->source_labels);
	else if (o->kind == SIM_CLONE)
		json_decref(((struct sim_clone *)o)->source_labels);
}

static void init_obj(struct sim_obj *o, enum sim_kind kind, const char *ns, const char *name)
{
	o->kind = kind;
	sim_copy(o->ns, sizeof(o->ns), ns);
	sim_copy(o->name, sizeof(o->name), name);
}

static int not_found(struct shp_error *err, const char *res, const char *name)
{
	char q[80];

	sim_quote(q, sizeof(q), name);
	return sim_fail(err, 404, "NotFound", "%s \"%s\" not found", res, q);
}

/* Insert o (allocated) or free it; 0 or < 0. */
static int insert_or_free(struct sim *s, struct sim_obj *o, struct shp_error *err)
{
	int r = sim_insert(s, o, err);

	if (r < 0) {
		sim_obj_release(o);
		free(o);
		return r;
	}
	sim_bump(s);
	return 0;
}

/* What the API calls each kind: the plural, and the resource in NotFound messages. */
static const char *const plurals[] = {"virtualmachines", "virtualmachinesnapshots",
				      "virtualmachinerestores", "virtualmachineclones",
				      "virtualmachineinstancemigrations"};
static const char *const resources[] = {
	"virtualmachines.kubevirt.io", "virtualmachinesnapshots.snapshot.kubevirt.io",
	"virtualmachinerestores.snapshot.kubevirt.io", "virtualmachineclones.clone.kubevirt.io",
	"virtualmachineinstancemigrations.kubevirt.io"};
/* Where each kind keeps its public model, and its size. */
static const size_t pub_off[] = {offsetof(struct sim_vm, pub), offsetof(struct sim_snapshot, pub),
				 offsetof(struct sim_restore, pub), offsetof(struct sim_clone, pub),
				 offsetof(struct sim_migration, pub)};
static const size_t pub_size[] = {sizeof(struct shd_vm), sizeof(struct shd_snapshot),
				  sizeof(struct shd_restore), sizeof(struct shd_clone),
				  sizeof(struct shd_migration)};

/* get for every kind but VMs: the public model of ns/name. */
static int get_obj(struct sim *s, enum sim_kind kind, const char *ns, const char *name, void *ret,
		   uint64_t deadline_ns, struct shp_error *err)
{
	int r = shd_provider_check_ns_name(ns, plurals[kind], name, err);

	if (r < 0)
		return r;
	if ((r = sim_enter(s, deadline_ns, err)) == 0) {
		const struct sim_obj *o = sim_find(s, kind, ns, name);
		if (o)
			memcpy(ret, (const char *)o + pub_off[kind], pub_size[kind]);
		else
			r = not_found(err, resources[kind], name);
		sim_leave(s);
	}
	if (r < 0)
		(void)shp_error_prefix(err, "getting %s '%s/%s'", plurals[kind], ns, name);
	return r;
}

/* list for every kind but VMs: those of ns that keep() accepts (vm NULL: all), owned. */
static int list_objs(struct sim *s, enum sim_kind kind, const char *what, const char *ns,
		     const char *vm, bool (*keep)(const struct sim_obj *, const char *), void **ret,
		     size_t *ret_n, uint64_t deadline_ns, struct shp_error *err)
{
	int r;

	if (!ns)
		return shp_error_set(err, SHP_E_INVAL, "listing %s needs a namespace", what);
	if ((r = shd_provider_check_name("namespace", ns, true, err)) < 0 ||
	    (vm && (r = shd_provider_check_name("VM", vm, false, err)) < 0))
		return r;
	if ((r = sim_enter(s, deadline_ns, err)) < 0) {
		(void)shp_error_prefix(err, "listing %s", plurals[kind]);
		return r;
	}
	const struct sim_set *set = &s->sets[kind];
	char *out = sim_xcalloc(set->n, pub_size[kind]);
	size_t n = 0;
	for (size_t i = 0; i < set->n; i++) {
		const struct sim_obj *o = set->items[i];
		if (strcmp(o->ns, ns) != 0 || (keep && !keep(o, vm)))
			continue;
		memcpy(out + n++ * pub_size[kind], (const char *)o + pub_off[kind], pub_size[kind]);
	}
	sim_leave(s);
	*ret = out;
	*ret_n = n;
	return 0;
}

/* A create found an object of that name made by a different request. */
static int taken(enum sim_kind kind, const char *name, struct shp_error *err)
{
	return shp_error_set(err, SHP_E_CONFLICT, "a different %s named '%s' exists already",
			     plurals[kind], name);
}

/* ---- snapshots and restores ------------------------------------------------------------ */

/*
 * The snapshot captures the VM as it is now (spec and labels): that is what a restore or a
 * clone brings back later, even if the VM changed or went away meanwhile.
 */
static int snap_create_locked(struct sim *s, const char *ns, const char *vm_name, const char *name,
			      struct shd_snapshot *ret, struct shp_error *err)
{
	struct sim_snapshot *sn = (struct sim_snapshot *)sim_find(s, SIM_SNAPSHOT, ns, name);
	struct sim_vm *vm;
	int r;

	if (sn && strcmp(sn->pub.vm, vm_name) == 0) {
		*ret = sn->pub;
		return 0;
	}
	if (sn)
		return taken(SIM_SNAPSHOT, name, err);
	if ((r = sim_need_namespace(s, ns, err)) < 0)
		return r;
	if (!(vm = sim_vm_get(s, ns, vm_name)))
		return not_found(err, "virtualmachine.kubevirt.io", vm_name);
	sn = sim_xcalloc(1, sizeof(*sn));
	init_obj(&sn->o, SIM_SNAPSHOT, ns, name);
	sim_copy(sn->pub.name, sizeof(sn->pub.name), name);
	sim_copy(sn->pub.namespace_, sizeof(sn->pub.namespace_), ns);
	sim_copy(sn->pub.vm, sizeof(sn->pub.vm), vm_name);
	sim_copy(sn->pub.phase, sizeof(sn->pub.phase), "InProgress");
	sim_make_uid(s, sn->pub.uid, sizeof(sn->pub.uid));
	sn->source = vm->pub;
	sn->source_labels = json_deep_copy(vm->labels);
	if ((r = insert_or_free(s, &sn->o, err)) < 0)
		return r;
	sim_schedule(s, &sn->o, shp_now_monotonic_ns());
	*ret = sn->pub;
	return 0;
}

static int snap_create(void *impl, const char *ns, const char *vm, const char *name,
		       struct shd_snapshot *ret, uint64_t deadline_ns, struct shp_error *err)
{
	struct sim *s = impl;
	int r = shd_provider_check_ns_name(ns, "snapshot", name, err);

	if (r < 0 || (r = shd_provider_check_name("VM", vm, false, err)) < 0)
		return r;
	if ((r = sim_enter(s, deadline_ns, err)) == 0) {
		r = snap_create_locked(s, ns, vm, name, ret, err);
		sim_leave(s);
	}
	if (r < 0)
		(void)shp_error_prefix(err, "creating virtualmachinesnapshots '%s/%s'", ns, name);
	return r;
}

static int snap_get(void *impl, const char *ns, const char *name, struct shd_snapshot *ret,
		    uint64_t deadline_ns, struct shp_error *err)
{
	return get_obj(impl, SIM_SNAPSHOT, ns, name, ret, deadline_ns, err);
}

static bool snap_of_vm(const struct sim_obj *o, const char *vm)
{
	return !vm || strcmp(((const struct sim_snapshot *)o)->pub.vm, vm) == 0;
}

static int snap_list(void *impl, const char *ns, const char *vm, struct shd_snapshot **ret,
		     size_t *ret_n, uint64_t deadline_ns, struct shp_error *err)
{
	return list_objs(impl, SIM_SNAPSHOT, "snapshots", ns, vm, snap_of_vm, (void **)ret, ret_n,
			 deadline_ns, err);
}

static int snap_remove(void *impl, const char *ns, const char *name, uint64_t deadline_ns,
		       struct shp_error *err)
{
	struct sim *s = impl;
	int r = shd_provider_check_ns_name(ns, "virtualmachinesnapshots", name, err);

	if (r < 0)
		return r;
	if ((r = sim_enter(s, deadline_ns, err)) < 0) {
		(void)shp_error_prefix(err, "deleting virtualmachinesnapshots '%s/%s'", ns, name);
		return r;
	}
	struct sim_obj *o = sim_find(s, SIM_SNAPSHOT, ns, name);
	if (o) {
		sim_remove(s, o);
		sim_bump(s);
	}
	sim_leave(s);
	return 0;
}

/*
 * KubeVirt's default targetReadinessPolicy waits for a running target and then fails; the
 * simulation refuses at once instead, with a conflict, which is what a caller must handle
 * either way: stop the VM first.
 */
static int restore_check(struct sim *s, const char *ns, const char *vm, const char *snapshot,
			 struct sim_snapshot **ret_sn, struct shp_error *err)
{
	struct sim_snapshot *sn = (struct sim_snapshot *)sim_find(s, SIM_SNAPSHOT, ns, snapshot);
	struct sim_vm *target = sim_vm_get(s, ns, vm);
	char q[80];

	if (!sn)
		return not_found(err, "virtualmachinesnapshots.snapshot.kubevirt.io", snapshot);
	if (!sn->pub.ready) {
		sim_quote(q, sizeof(q), snapshot);
		return sim_fail(
			err, 422, "Invalid",
			"admission webhook \"virtualmachinerestore-validator.snapshot."
			"kubevirt.io\" denied the request: VirtualMachineSnapshot \"%s\" is "
			"not ready to use",
			q);
	}
	if (target && target->pub.status != SHD_VM_STOPPED) {
		sim_quote(q, sizeof(q), vm);
		return sim_fail(
			err, 409, "Conflict",
			"Operation cannot be fulfilled on virtualmachine.kubevirt.io \"%s\": "
			"the VM must be stopped to be restored",
			q);
	}
	*ret_sn = sn;
	return 0;
}

static int restore_locked(struct sim *s, const char *ns, const char *vm, const char *snapshot,
			  const char *name, struct shd_restore *ret, struct shp_error *err)
{
	struct sim_restore *rs = (struct sim_restore *)sim_find(s, SIM_RESTORE, ns, name);
	struct sim_snapshot *sn = NULL;
	int r;

	if (rs && strcmp(rs->pub.vm, vm) == 0 && strcmp(rs->pub.snapshot, snapshot) == 0) {
		*ret = rs->pub;
		return 0;
	}
	if (rs)
		return taken(SIM_RESTORE, name, err);
	if ((r = sim_need_namespace(s, ns, err)) < 0 ||
	    (r = restore_check(s, ns, vm, snapshot, &sn, err)) < 0)
		return r;
	rs = sim_xcalloc(1, sizeof(*rs));
	init_obj(&rs->o, SIM_RESTORE, ns, name);
	sim_copy(rs->pub.name, sizeof(rs->pub.name), name);
	sim_copy(rs->pub.namespace_, sizeof(rs->pub.namespace_), ns);
	sim_copy(rs->pub.vm, sizeof(rs->pub.vm), vm);
	sim_copy(rs->pub.snapshot, sizeof(rs->pub.snapshot), snapshot);
	if ((r = insert_or_free(s, &rs->o, err)) < 0)
		return r;
	sim_schedule(s, &rs->o, shp_now_monotonic_ns());
	*ret = rs->pub;
	return 0;
}

static int snap_restore(void *impl, const char *ns, const char *vm, const char *snapshot,
			const char *name, struct shd_restore *ret, uint64_t deadline_ns,
			struct shp_error *err)
{
	struct sim *s = impl;
	int r = shd_provider_check_ns_name(ns, "restore", name, err);

	if (r < 0 || (r = shd_provider_check_name("VM", vm, false, err)) < 0 ||
	    (r = shd_provider_check_name("snapshot", snapshot, false, err)) < 0)
		return r;
	if ((r = sim_enter(s, deadline_ns, err)) == 0) {
		r = restore_locked(s, ns, vm, snapshot, name, ret, err);
		sim_leave(s);
	}
	if (r < 0)
		(void)shp_error_prefix(err, "creating virtualmachinerestores '%s/%s'", ns, name);
	return r;
}

static int snap_get_restore(void *impl, const char *ns, const char *name, struct shd_restore *ret,
			    uint64_t deadline_ns, struct shp_error *err)
{
	return get_obj(impl, SIM_RESTORE, ns, name, ret, deadline_ns, err);
}

const struct shd_snapshot_ops sim_snapshot_ops = {
	.create = snap_create,
	.get = snap_get,
	.list = snap_list,
	.remove = snap_remove,
	.restore = snap_restore,
	.get_restore = snap_get_restore,
};

/* Create VM `name` in ns from a captured VM (a restore to a new VM, or a clone's target). */
static int create_copy(struct sim *s, const struct shd_vm *source, const json_t *labels,
		       const char *ns, const char *name, uint64_t now, struct shp_error *err)
{
	struct shd_vm v = *source;

	sim_copy(v.name, sizeof(v.name), name);
	sim_copy(v.namespace_, sizeof(v.namespace_), ns);
	return sim_vm_create_from(
		s, &v, labels, sim_strategy_runs(v.run_strategy) ? SHD_VM_STARTING : SHD_VM_STOPPED,
		NULL, now, err);
}

static void step_snapshot(struct sim *s, struct sim_snapshot *sn)
{
	sim_copy(sn->pub.phase, sizeof(sn->pub.phase), "Succeeded");
	sn->pub.ready = true;
	(void)snprintf(sn->pub.content, sizeof(sn->pub.content), "vmsnapshot-content-%s",
		       sn->pub.uid);
	shp_format_rfc3339(shp_now_realtime_us(), sn->pub.created_at, sizeof(sn->pub.created_at));
	sim_bump(s);
}

/* The restore completes: the target gets the snapshot's spec and labels, or is created. */
static void step_restore(struct sim *s, struct sim_restore *rs, uint64_t now)
{
	struct sim_snapshot *sn =
		(struct sim_snapshot *)sim_find(s, SIM_SNAPSHOT, rs->o.ns, rs->pub.snapshot);
	struct sim_vm *vm = sim_vm_get(s, rs->o.ns, rs->pub.vm);
	struct shp_error e = SHP_ERROR_INIT;

	sim_bump(s);
	if (!sn) {
		sim_copy(rs->pub.error, sizeof(rs->pub.error), "the snapshot no longer exists");
		return;
	}
	if (!vm) {
		if (create_copy(s, &sn->source, sn->source_labels, rs->o.ns, rs->pub.vm, now, &e) <
		    0)
			sim_copy(rs->pub.error, sizeof(rs->pub.error), e.msg);
		else
			rs->pub.complete = true;
		return;
	}
	json_t *prev = vm->labels;
	vm->labels = json_deep_copy(sn->source_labels);
	vm->pub.cpus = sn->source.cpus;
	vm->pub.memory_bytes = sn->source.memory_bytes;
	sim_copy(vm->pub.instancetype, sizeof(vm->pub.instancetype), sn->source.instancetype);
	sim_vm_event(s, vm, SHD_WATCH_MODIFIED, prev);
	json_decref(prev);
	rs->pub.complete = true;
}

/* ---- clones ------------------------------------------------------------------------------- */

static const char *const clone_phases[] = {"SnapshotInProgress", "RestoreInProgress",
					   "CreatingTargetVM", "Succeeded"};

static int clone_locked(struct sim *s, const char *ns, const char *kind, const char *source,
			const char *target, const char *name, struct shd_clone *ret,
			struct shp_error *err)
{
	struct sim_clone *c = (struct sim_clone *)sim_find(s, SIM_CLONE, ns, name);
	bool from_vm = strcmp(kind, "VirtualMachine") == 0;
	int r;

	if (c && strcmp(c->pub.source, source) == 0 && strcmp(c->pub.source_kind, kind) == 0) {
		*ret = c->pub;
		return 0;
	}
	if (c)
		return taken(SIM_CLONE, name, err);
	if ((r = sim_need_namespace(s, ns, err)) < 0)
		return r;
	struct sim_vm *vm = from_vm ? sim_vm_get(s, ns, source) : NULL;
	struct sim_snapshot *sn =
		from_vm ? NULL : (struct sim_snapshot *)sim_find(s, SIM_SNAPSHOT, ns, source);
	if (!vm && !sn)
		return not_found(err,
				 from_vm ? "virtualmachine.kubevirt.io"
					 : "virtualmachinesnapshots.snapshot.kubevirt.io",
				 source);
	c = sim_xcalloc(1, sizeof(*c));
	init_obj(&c->o, SIM_CLONE, ns, name);
	sim_copy(c->pub.name, sizeof(c->pub.name), name);
	sim_copy(c->pub.namespace_, sizeof(c->pub.namespace_), ns);
	sim_copy(c->pub.source_kind, sizeof(c->pub.source_kind), kind);
	sim_copy(c->pub.source, sizeof(c->pub.source), source);
	if (target && *target)
		sim_copy(c->pub.target, sizeof(c->pub.target), target);
	else
		sim_generate_name(s, "clone-", c->pub.target, sizeof(c->pub.target));
	c->step = from_vm ? SIM_CLONE_SNAPSHOT : SIM_CLONE_RESTORE;
	sim_copy(c->pub.phase, sizeof(c->pub.phase), clone_phases[c->step]);
	c->source = from_vm ? vm->pub : sn->source;
	c->source_labels = json_deep_copy(from_vm ? vm->labels : sn->source_labels);
	if ((r = insert_or_free(s, &c->o, err)) < 0)
		return r;
	sim_schedule(s, &c->o, shp_now_monotonic_ns());
	*ret = c->pub;
	return 0;
}

static int clone_start(struct sim *s, const char *ns, const char *kind, const char *source,
		       const char *target, const char *name, struct shd_clone *ret,
		       uint64_t deadline_ns, struct shp_error *err)
{
	int r = shd_provider_check_ns_name(ns, "clone", name, err);

	if (r < 0 || (r = shd_provider_check_name(kind, source, false, err)) < 0 ||
	    (target && (r = shd_provider_check_name("target VM", target, false, err)) < 0))
		return r;
	if ((r = sim_enter(s, deadline_ns, err)) == 0) {
		r = clone_locked(s, ns, kind, source, target, name, ret, err);
		sim_leave(s);
	}
	if (r < 0)
		(void)shp_error_prefix(err, "creating virtualmachineclones '%s/%s'", ns, name);
	return r;
}

static int clone_from_vm(void *impl, const char *ns, const char *vm, const char *target,
			 const char *name, struct shd_clone *ret, uint64_t deadline_ns,
			 struct shp_error *err)
{
	return clone_start(impl, ns, "VirtualMachine", vm, target, name, ret, deadline_ns, err);
}

static int clone_from_snapshot(void *impl, const char *ns, const char *snapshot, const char *target,
			       const char *name, struct shd_clone *ret, uint64_t deadline_ns,
			       struct shp_error *err)
{
	return clone_start(impl, ns, "VirtualMachineSnapshot", snapshot, target, name, ret,
			   deadline_ns, err);
}

static int clone_get(void *impl, const char *ns, const char *name, struct shd_clone *ret,
		     uint64_t deadline_ns, struct shp_error *err)
{
	return get_obj(impl, SIM_CLONE, ns, name, ret, deadline_ns, err);
}

static int clone_list(void *impl, const char *ns, struct shd_clone **ret, size_t *ret_n,
		      uint64_t deadline_ns, struct shp_error *err)
{
	return list_objs(impl, SIM_CLONE, "clones", ns, NULL, NULL, (void **)ret, ret_n,
			 deadline_ns, err);
}

const struct shd_clone_ops sim_clone_ops = {
	.from_vm = clone_from_vm,
	.from_snapshot = clone_from_snapshot,
	.get = clone_get,
	.list = clone_list,
};

/*
 * One phase a tick. The target's existence is checked only when it is created, as the clone
 * controller does: a clone whose target appeared meanwhile ends Failed, not refused up front.
 */
static void step_clone(struct sim *s, struct sim_clone *c, uint64_t due)
{
	struct shp_error e = SHP_ERROR_INIT;
	char q[80];

	sim_bump(s);
	if (c->step < SIM_CLONE_CREATING) {
		c->step++;
		sim_copy(c->pub.phase, sizeof(c->pub.phase), clone_phases[c->step]);
		sim_schedule(s, &c->o, due);
		return;
	}
	if (sim_vm_get(s, c->o.ns, c->pub.target)) {
		sim_quote(q, sizeof(q), c->pub.target);
		sim_copy(c->pub.phase, sizeof(c->pub.phase), "Failed");
		(void)snprintf(c->pub.error, sizeof(c->pub.error),
			       "target VirtualMachine \"%s\" already exists", q);
		return;
	}
	if (create_copy(s, &c->source, c->source_labels, c->o.ns, c->pub.target, due, &e) < 0) {
		sim_copy(c->pub.phase, sizeof(c->pub.phase), "Failed");
		sim_copy(c->pub.error, sizeof(c->pub.error), e.msg);
		return;
	}
	c->step = SIM_CLONE_DONE;
	sim_copy(c->pub.phase, sizeof(c->pub.phase), clone_phases[c->step]);
}

/* ---- migrations ---------------------------------------------------------------------------- */

static const char *const migration_phases[] = {"Pending",         "Scheduling",  "Scheduled",
					       "PreparingTarget", "TargetReady", "Running",
					       "Succeeded"};
#define MIGRATION_RUNNING 5
#define MIGRATION_WEBHOOK                                                                          \
	"admission webhook \"migration-create-validator.kubevirt.io\" denied the request: "

static bool migration_final(const struct sim_migration *m)
{
	return m->pub.completed || m->pub.failed;
}

static bool migration_of_vm(const struct sim_obj *o, const char *vm)
{
	return !vm || strcmp(((const struct sim_migration *)o)->pub.vm, vm) == 0;
}

struct sim_migration *sim_migration_active(struct sim *s, const char *ns, const char *vm)
{
	const struct sim_set *set = &s->sets[SIM_MIGRATION];

	for (size_t i = 0; i < set->n; i++) {
		struct sim_migration *m = (struct sim_migration *)set->items[i];
		if (strcmp(m->o.ns, ns) == 0 && strcmp(m->pub.vm, vm) == 0 && !migration_final(m))
			return m;
	}
	return NULL;
}

void sim_migrations_drop(struct sim *s, const char *ns, const char *vm)
{
	struct sim_set *set = &s->sets[SIM_MIGRATION];

	for (size_t i = set->n; i-- > 0;) {
		struct sim_migration *m = (struct sim_migration *)set->items[i];
		if (strcmp(m->o.ns, ns) == 0 && strcmp(m->pub.vm, vm) == 0)
			sim_remove(s, &m->o);
	}
}

/* End m as Failed; the VM (if still migrating) is back RUNNING on its source node. */
static void migration_fail(struct sim *s, struct sim_migration *m, const char *why, bool vm_back)
{
	struct sim_vm *vm = sim_vm_get(s, m->o.ns, m->pub.vm);

	sim_unschedule(s, &m->o);
	sim_copy(m->pub.phase, sizeof(m->pub.phase), "Failed");
	m->pub.failed = true;
	sim_copy(m->pub.error, sizeof(m->pub.error), why);
	sim_bump(s);
	if (vm_back && vm && vm->pub.status == SHD_VM_MIGRATING) {
		sim_vm_set_status(vm, SHD_VM_RUNNING, "Running");
		sim_vm_event(s, vm, SHD_WATCH_MODIFIED, NULL);
	}
}

void sim_migration_interrupt(struct sim *s, const struct sim_vm *vm, const char *why)
{
	struct sim_migration *m = sim_migration_active(s, vm->o.ns, vm->o.name);

	if (m)
		migration_fail(s, m, why, false);
}

/*
 * One phase a tick, Pending to Succeeded. An abort is honoured at the next step. With no other
 * node the migration cannot be scheduled and fails once it reaches Scheduling.
 */
static void step_migration(struct sim *s, struct sim_migration *m, uint64_t due)
{
	struct sim_vm *vm = sim_vm_get(s, m->o.ns, m->pub.vm);

	if (m->pub.abort_requested) {
		migration_fail(s, m, "Migration aborted", true);
		return;
	}
	if (m->phase == 1 && !m->pub.target_node[0]) {
		migration_fail(s, m,
			       "0/1 nodes are available: no node other than the source can run the "
			       "VM",
			       true);
		return;
	}
	m->phase++;
	sim_copy(m->pub.phase, sizeof(m->pub.phase), migration_phases[m->phase]);
	sim_bump(s);
	if (m->phase <= MIGRATION_RUNNING) {
		sim_schedule(s, &m->o, due);
		return;
	}
	m->pub.completed = true;
	if (vm) {
		sim_copy(vm->pub.node, sizeof(vm->pub.node), m->pub.target_node);
		sim_vm_set_status(vm, SHD_VM_RUNNING, "Running");
		sim_vm_event(s, vm, SHD_WATCH_MODIFIED, NULL);
	}
}

/* Keep SIM_MIGRATIONS_KEPT finished migrations of a VM, dropping the oldest. */
static void migration_gc(struct sim *s, const char *ns, const char *vm)
{
	for (;;) {
		struct sim_set *set = &s->sets[SIM_MIGRATION];
		struct sim_migration *oldest = NULL;
		size_t n = 0;
		for (size_t i = 0; i < set->n; i++) {
			struct sim_migration *m = (struct sim_migration *)set->items[i];
			if (strcmp(m->o.ns, ns) || strcmp(m->pub.vm, vm) || !migration_final(m))
				continue;
			n++;
			if (!oldest || m->created_seq < oldest->created_seq)
				oldest = m;
		}
		if (n < SIM_MIGRATIONS_KEPT)
			return;
		sim_remove(s, &oldest->o);
	}
}

/* The checks of KubeVirt's migration webhook, in its order: a VMI, none in flight, running. */
static int migrate_locked(struct sim *s, const char *ns, const char *vm_name,
			  struct shd_migration *ret, struct shp_error *err)
{
	struct sim_vm *vm = sim_vm_get(s, ns, vm_name);
	struct sim_migration *m;
	char q[80];
	int r;

	sim_quote(q, sizeof(q), vm_name);
	if (!vm || vm->pub.status == SHD_VM_STOPPED || vm->terminating)
		return sim_fail(err, 422, "Invalid",
				MIGRATION_WEBHOOK "the VMI \"%s/%s\" does not exist", ns, q);
	if ((m = sim_migration_active(s, ns, vm_name)))
		return sim_fail(err, 422, "Invalid",
				MIGRATION_WEBHOOK "in-flight migration detected. Active migration "
						  "job (%s) is currently already in progress for "
						  "VMI %s.",
				m->pub.uid, q);
	if (vm->pub.status != SHD_VM_RUNNING)
		return sim_fail(err, 422, "Invalid",
				MIGRATION_WEBHOOK "Cannot migrate VMI \"%s/%s\", Reason: %s, "
						  "Message: the VMI is not running",
				ns, q, vm->pub.printable_status);
	migration_gc(s, ns, vm_name);
	m = sim_xcalloc(1, sizeof(*m));
	sim_generate_name(s, "shepherd-migrate-", m->pub.name, sizeof(m->pub.name));
	init_obj(&m->o, SIM_MIGRATION, ns, m->pub.name);
	sim_copy(m->pub.namespace_, sizeof(m->pub.namespace_), ns);
	sim_copy(m->pub.vm, sizeof(m->pub.vm), vm_name);
	sim_make_uid(s, m->pub.uid, sizeof(m->pub.uid));
	sim_copy(m->pub.phase, sizeof(m->pub.phase), migration_phases[0]);
	sim_copy(m->pub.source_node, sizeof(m->pub.source_node), vm->pub.node);
	unsigned src = 0;
	if (s->nodes > 1 && sscanf(vm->pub.node, "node-%u", &src) == 1)
		(void)snprintf(m->pub.target_node, sizeof(m->pub.target_node), "node-%u",
			       src % (unsigned)s->nodes + 1);
	m->created_seq = sim_next_serial(s);
	if ((r = insert_or_free(s, &m->o, err)) < 0)
		return r;
	sim_schedule(s, &m->o, shp_now_monotonic_ns());
	sim_vm_set_status(vm, SHD_VM_MIGRATING, "Migrating");
	sim_vm_event(s, vm, SHD_WATCH_MODIFIED, NULL);
	*ret = m->pub;
	return 0;
}

static int mig_migrate(void *impl, const char *ns, const char *vm, struct shd_migration *ret,
		       uint64_t deadline_ns, struct shp_error *err)
{
	struct sim *s = impl;
	int r = shd_provider_check_ns_name(ns, "VM", vm, err);

	if (r < 0)
		return r;
	if ((r = sim_enter(s, deadline_ns, err)) == 0) {
		r = migrate_locked(s, ns, vm, ret, err);
		sim_leave(s);
	}
	if (r < 0)
		(void)shp_error_prefix(err, "migrating VM '%s/%s'", ns, vm);
	return r;
}

static int mig_get(void *impl, const char *ns, const char *name, struct shd_migration *ret,
		   uint64_t deadline_ns, struct shp_error *err)
{
	return get_obj(impl, SIM_MIGRATION, ns, name, ret, deadline_ns, err);
}

static int mig_list(void *impl, const char *ns, const char *vm, struct shd_migration **ret,
		    size_t *ret_n, uint64_t deadline_ns, struct shp_error *err)
{
	return list_objs(impl, SIM_MIGRATION, "migrations", ns, vm, migration_of_vm, (void **)ret,
			 ret_n, deadline_ns, err);
}

static int mig_cancel(void *impl, const char *ns, const char *vm, uint64_t deadline_ns,
		      struct shp_error *err)
{
	struct sim *s = impl;
	int r;

	if (!vm)
		return shp_error_set(err, SHP_E_INVAL, "cancelling a migration needs the VM");
	if ((r = shd_provider_check_ns_name(ns, "VM", vm, err)) < 0)
		return r;
	if ((r = sim_enter(s, deadline_ns, err)) < 0) {
		(void)shp_error_prefix(err, "listing virtualmachineinstancemigrations");
		return r;
	}
	struct sim_migration *m = sim_migration_active(s, ns, vm);
	if (!m) {
		r = shp_error_set(err, SHP_E_NOTFOUND, "VM '%s/%s' has no migration in flight", ns,
				  vm);
	} else if (!m->pub.abort_requested) {
		/* the finalizer holds the object while the abort happens: Failed a tick later */
		m->pub.abort_requested = true;
		sim_schedule(s, &m->o, shp_now_monotonic_ns());
		sim_bump(s);
	}
	sim_leave(s);
	return r;
}

const struct shd_migration_ops sim_migration_ops = {
	.migrate = mig_migrate,
	.get = mig_get,
	.list = mig_list,
	.cancel = mig_cancel,
};

void sim_step_other(struct sim *s, struct sim_obj *o, uint64_t now)
{
	switch (o->kind) {
	case SIM_SNAPSHOT: step_snapshot(s, (struct sim_snapshot *)o); break;
	case SIM_RESTORE: step_restore(s, (struct sim_restore *)o, now); break;
	case SIM_CLONE: step_clone(s, (struct sim_clone *)o, now); break;
	case SIM_MIGRATION: step_migration(s, (struct sim_migration *)o, now); break;
	default: break;
	}
}
