/*
 * KubeVirt's and CDI's longer workflows, one step per tick: live migrations (VMIM phases, the
 * VMI's migrationState and node, aborts by deletion), snapshots (content object, readyToUse),
 * restores (the VM's spec back from the content, complete), clones (phases up to a new VM)
 * and DataVolumes (import phases with progress, created from a VM's dataVolumeTemplates).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "kubesim.h"
#include "util.h"

static const char *const migration_phases[] = {"Pending",         "Scheduling",  "Scheduled",
					       "PreparingTarget", "TargetReady", "Running",
					       "Succeeded"};

static bool phase_final(const json_t *obj)
{
	const char *p = kv_str(obj, "status.phase");

	return p && (strcmp(p, "Succeeded") == 0 || strcmp(p, "Failed") == 0);
}

static json_t *get_key(struct ks *ks, enum ks_res res, const char *key)
{
	return json_object_get(ks->objs[res], key);
}

/* The VMI's migrationState (created when absent), on a working copy of the VMI. */
static json_t *mstate(json_t *vmi)
{
	json_t *st = kv_status_of(vmi), *ms = json_object_get(st, "migrationState");

	if (!json_is_object(ms)) {
		ms = json_object();
		json_object_set_new(st, "migrationState", ms);
	}
	return ms;
}

/* Finish a migration: Succeeded (the VMI moves) or Failed (it stays). */
static void migration_end(struct ks *ks, json_t *m, const json_t *vmi, bool ok, bool aborted)
{
	json_t *nv = vmi ? json_deep_copy(vmi) : NULL, *ms;
	char now[32];

	ks_now(now, sizeof(now));
	kv_phase_to(m, ok ? "Succeeded" : "Failed");
	if (nv && shp_strcmp0(kv_str(nv, "status.migrationState.migrationUid"),
			      kv_str(m, "metadata.uid")) != 0) {
		json_decref(nv); /* it never started on this VMI */
		return;
	}
	if (!nv)
		return;
	ms = mstate(nv);
	json_object_set_new(ms, "endTimestamp", json_string(now));
	json_object_set_new(ms, ok ? "completed" : "failed", json_true());
	if (aborted)
		json_object_set_new(ms, "abortStatus", json_string("Succeeded"));
	if (ok) {
		json_object_set(kv_status_of(nv), "nodeName", json_object_get(ms, "targetNode"));
		json_object_set(kv_at(nv, "metadata.labels"), "kubevirt.io/nodeName",
				json_object_get(ms, "targetNode"));
	}
	json_object_set(kv_status_of(m), "migrationState", ms);
	kv_write(ks, KS_R_VMI, nv, vmi, "virt-handler", true);
}

/* The target node: addedNodeSelector's hostname when it names another node, else any other. */
static void target_node(struct ks *ks, const json_t *m, const char *source, char *out, size_t size)
{
	json_t *sel = kv_at(m, "spec.addedNodeSelector");
	const char *want = json_string_value(json_object_get(sel, "kubernetes.io/hostname"));
	if (want && ks_get(ks, KS_R_NODE, NULL, want) && shp_strcmp0(want, source) != 0)
		(void)snprintf(out, size, "%s", want);
	else
		kv_pick_node(ks, source, out, size);
}

static void migration_begin(struct ks *ks, json_t *m, const json_t *vmi)
{
	json_t *nv = json_deep_copy(vmi), *ms;
	const char *source = kv_str(vmi, "status.nodeName");
	char node[32], now[32];

	target_node(ks, m, source, node, sizeof(node));
	ks_now(now, sizeof(now));
	json_object_set_new(kv_status_of(nv), "migrationState", json_object());
	ms = mstate(nv);
	json_object_set_new(ms, "migrationUid", json_string(kv_str(m, "metadata.uid")));
	json_object_set_new(ms, "sourceNode", json_string(source ? source : ""));
	json_object_set_new(ms, "targetNode", json_string(node));
	json_object_set_new(ms, "startTimestamp", json_string(now));
	json_object_set_new(ms, "mode", json_string("PreCopy"));
	json_object_set(kv_status_of(m), "migrationState", ms);
	kv_write(ks, KS_R_VMI, nv, vmi, "virt-handler", true);
}

/* Deleting an unfinished migration aborts it: Aborting, then Failed, then it goes. */
static void migration_abort(struct ks *ks, json_t *m, const json_t *vmi)
{
	json_t *ms = kv_at(vmi, "status.migrationState"), *nv;

	if (vmi && ms && !json_is_true(json_object_get(ms, "abortRequested"))) {
		nv = json_deep_copy(vmi);
		json_object_set_new(mstate(nv), "abortRequested", json_true());
		json_object_set_new(mstate(nv), "abortStatus", json_string("Aborting"));
		kv_write(ks, KS_R_VMI, nv, vmi, "virt-handler", true);
		return;
	}
	migration_end(ks, m, vmi, false, true);
}

static void migration_advance(struct ks *ks, json_t *m, const json_t *vmi)
{
	const char *phase = kv_str(m, "status.phase");
	size_t i = 0;

	if (!vmi || shp_strcmp0(kv_str(vmi, "status.phase"), "Running") != 0) {
		migration_end(ks, m, vmi, false, false);
		return;
	}
	while (phase && i < SHP_ARRAY_SIZE(migration_phases) &&
	       strcmp(phase, migration_phases[i]) != 0)
		i++;
	i = phase ? i + 1 : 0;
	if (i >= SHP_ARRAY_SIZE(migration_phases) - 1) {
		migration_end(ks, m, vmi, true, false);
		return;
	}
	if (i == 0)
		migration_begin(ks, m, vmi);
	kv_phase_to(m, migration_phases[i]);
}

void kv_migration_step(struct ks *ks, const char *key)
{
	json_t *cur = get_key(ks, KS_R_VMIM, key), *m;
	const char *ns = kv_str(cur, "metadata.namespace"), *vmi_name = kv_str(cur, "spec.vmiName");
	const json_t *vmi = vmi_name ? ks_get(ks, KS_R_VMI, ns, vmi_name) : NULL;

	if (kv_at(cur, "metadata.deletionTimestamp") && phase_final(cur)) {
		kv_release(ks, KS_R_VMIM, cur);
		return;
	}
	m = json_deep_copy(cur);
	if (kv_at(cur, "metadata.deletionTimestamp")) {
		migration_abort(ks, m, vmi);
	} else if (!phase_final(cur)) {
		if (!json_is_object(kv_at(m, "metadata.labels")))
			json_object_set_new(json_object_get(m, "metadata"), "labels",
					    json_object());
		json_object_set_new(kv_at(m, "metadata.labels"), "kubevirt.io/vmi-name",
				    json_string(vmi_name ? vmi_name : ""));
		kv_add_finalizer(m, ks_resources[KS_R_VMIM].finalizer);
		migration_advance(ks, m, vmi);
	}
	kv_write(ks, KS_R_VMIM, m, cur, "virt-controller", true);
}

/* ---- snapshots ---- */

static void vm_status_field(struct ks *ks, const char *ns, const char *vm_name, const char *key,
			    const char *value)
{
	json_t *vm = ks_get(ks, KS_R_VM, ns, vm_name), *nw;

	if (!vm)
		return;
	nw = json_deep_copy(vm);
	if (value)
		json_object_set_new(kv_status_of(nw), key, json_string(value));
	else
		json_object_del(kv_status_of(nw), key);
	kv_write(ks, KS_R_VM, nw, vm, "virt-controller", true);
}

static void content_name(const json_t *snap, char *out, size_t size)
{
	(void)snprintf(out, size, "vmsnapshot-content-%s", kv_str(snap, "metadata.uid"));
}

static void snapshot_fail(json_t *s, const char *msg)
{
	char now[32];

	ks_now(now, sizeof(now));
	kv_phase_to(s, "Failed");
	json_object_set_new(kv_status_of(s), "readyToUse", json_false());
	json_object_set_new(kv_status_of(s), "error",
			    json_pack("{s:s, s:s}", "time", now, "message", msg));
	kv_condition(s, "Progressing", false, "Failed", msg);
	kv_condition(s, "Failure", true, "Failed", msg);
}

static void make_content(struct ks *ks, const json_t *s, const json_t *vm)
{
	const char *ns = kv_str(s, "metadata.namespace");
	char name[80];

	content_name(s, name, sizeof(name));
	if (ks_get(ks, KS_R_SNAPCONTENT, ns, name))
		return;
	kv_create(ks, KS_R_SNAPCONTENT,
		  json_pack("{s:{s:s, s:s, s:[s]}, s:{s:s, s:{s:{s:{s:s, s:s, s:O?}, s:O}}, s:[]},"
			    " s:{s:b}}",
			    "metadata", "name", name, "namespace", ns, "finalizers",
			    ks_resources[KS_R_SNAPCONTENT].finalizer, "spec",
			    "virtualMachineSnapshotName", kv_str(s, "metadata.name"), "source",
			    "virtualMachine", "metadata", "name", kv_str(vm, "metadata.name"),
			    "namespace", ns, "labels", kv_at(vm, "metadata.labels"), "spec",
			    kv_at(vm, "spec"), "volumeBackups", "status", "readyToUse", false),
		  "virt-controller");
}

/* InProgress (VM marked) -> content created -> content ready -> Succeeded, readyToUse. */
static void snapshot_advance(struct ks *ks, json_t *s)
{
	const char *ns = kv_str(s, "metadata.namespace"), *vm_name = kv_str(s, "spec.source.name");
	const json_t *vm = vm_name ? ks_get(ks, KS_R_VM, ns, vm_name) : NULL;
	json_t *content, *nc;
	char cname[80], now[32];

	content_name(s, cname, sizeof(cname));
	content = ks_get(ks, KS_R_SNAPCONTENT, ns, cname);
	ks_now(now, sizeof(now));
	if (!kv_str(s, "status.phase")) {
		if (!vm) {
			snapshot_fail(s, "source VirtualMachine does not exist");
			return;
		}
		kv_phase_to(s, "InProgress");
		json_object_set_new(kv_status_of(s), "readyToUse", json_false());
		json_object_set(kv_status_of(s), "sourceUID", kv_at(vm, "metadata.uid"));
		kv_condition(s, "Progressing", true, "InProgress",
			     "Source locked and operation in progress");
		kv_condition(s, "Ready", false, "NotReady", "Not ready");
		vm_status_field(ks, ns, vm_name, "snapshotInProgress", kv_str(s, "metadata.name"));
	} else if (!content && vm) {
		make_content(ks, s, vm);
	} else if (content && !json_is_true(kv_at(content, "status.readyToUse"))) {
		nc = json_deep_copy(content);
		json_object_set_new(kv_status_of(nc), "readyToUse", json_true());
		json_object_set_new(kv_status_of(nc), "creationTime", json_string(now));
		kv_write(ks, KS_R_SNAPCONTENT, nc, content, "virt-controller", true);
	} else if (content) {
		bool online = vm && ks_get(ks, KS_R_VMI, ns, vm_name);
		kv_phase_to(s, "Succeeded");
		json_object_set_new(kv_status_of(s), "readyToUse", json_true());
		json_object_set_new(kv_status_of(s), "creationTime", json_string(now));
		json_object_set_new(kv_status_of(s), "virtualMachineSnapshotContentName",
				    json_string(cname));
		json_object_set_new(kv_status_of(s), "indications",
				    online ? json_pack("[s, s]", "Online", "GuestAgent")
					   : json_array());
		kv_condition(s, "Progressing", false, "Operation complete", "Operation complete");
		kv_condition(s, "Ready", true, "Operation complete", "Operation complete");
		vm_status_field(ks, ns, vm_name, "snapshotInProgress", NULL);
	} else {
		snapshot_fail(s, "source VirtualMachine does not exist");
		vm_status_field(ks, ns, vm_name, "snapshotInProgress", NULL);
	}
}

void kv_snapshot_step(struct ks *ks, const char *key)
{
	json_t *cur = get_key(ks, KS_R_SNAPSHOT, key), *s;
	const char *ns = kv_str(cur, "metadata.namespace");
	char cname[80];

	content_name(cur, cname, sizeof(cname));
	if (kv_at(cur, "metadata.deletionTimestamp")) {
		json_t *content = ks_get(ks, KS_R_SNAPCONTENT, ns, cname);
		if (content && shp_strcmp0(kv_str(cur, "spec.deletionPolicy"), "Retain") != 0)
			kv_mark_deleted(ks, KS_R_SNAPCONTENT, content);
		if (!phase_final(cur))
			vm_status_field(ks, ns, kv_str(cur, "spec.source.name"),
					"snapshotInProgress", NULL);
		kv_release(ks, KS_R_SNAPSHOT, cur);
		return;
	}
	if (phase_final(cur))
		return;
	s = json_deep_copy(cur);
	kv_add_finalizer(s, ks_resources[KS_R_SNAPSHOT].finalizer);
	snapshot_advance(ks, s);
	kv_write(ks, KS_R_SNAPSHOT, s, cur, "virt-controller", true);
}

/* Contents go once their snapshot is gone (or when deleted themselves). */
static void content_step(struct ks *ks, const char *key)
{
	json_t *c = get_key(ks, KS_R_SNAPCONTENT, key);

	if (kv_at(c, "metadata.deletionTimestamp"))
		kv_release(ks, KS_R_SNAPCONTENT, c);
}

void kv_content_step(struct ks *ks, const char *key)
{
	content_step(ks, key);
}

/* ---- restores ---- */

static const char *cond_reason(const json_t *obj, const char *type)
{
	json_t *conds = kv_at(obj, "status.conditions"), *c;
	size_t i;

	json_array_foreach(conds, i, c)
	{
		if (shp_strcmp0(kv_str(c, "type"), type) == 0)
			return kv_str(c, "reason");
	}
	return NULL;
}

/* The VM's spec back from the snapshot content (the VM is created when absent). */
static void restore_vm(struct ks *ks, const char *ns, const char *name, const json_t *content)
{
	json_t *spec = kv_at(content, "spec.source.virtualMachine.spec");
	json_t *vm = ks_get(ks, KS_R_VM, ns, name), *nw;

	if (!vm) {
		kv_create(ks, KS_R_VM,
			  json_pack("{s:{s:s, s:s}, s:O}", "metadata", "name", name, "namespace",
				    ns, "spec", spec),
			  "virt-controller");
		return;
	}
	nw = json_deep_copy(vm);
	json_object_set(nw, "spec", spec);
	if (!json_equal(spec, kv_at(vm, "spec")))
		json_object_set_new(
			json_object_get(nw, "metadata"), "generation",
			json_integer(json_integer_value(kv_at(vm, "metadata.generation")) + 1));
	kv_write(ks, KS_R_VM, nw, vm, "virt-controller", false);
}

/* Before anything: the snapshot must be ready and the target VM stopped (per policy). */
static bool restore_can_begin(struct ks *ks, json_t *r, const char *ns, const char *target)
{
	const json_t *snap =
		ks_get(ks, KS_R_SNAPSHOT, ns, kv_str(r, "spec.virtualMachineSnapshotName"));
	const json_t *vmi = ks_get(ks, KS_R_VMI, ns, target), *vm = ks_get(ks, KS_R_VM, ns, target);
	const char *policy = kv_str(r, "spec.targetReadinessPolicy");

	json_object_set_new(kv_status_of(r), "complete", json_false());
	if (!json_is_true(kv_at(snap, "status.readyToUse"))) {
		kv_condition(r, "Ready", false, "SnapshotNotReady", "snapshot is not ready");
		return false;
	}
	if (!vmi)
		return true;
	if (shp_strcmp0(policy, "FailImmediate") == 0) {
		kv_condition(r, "Ready", false, "Failed", "VirtualMachine is running");
		kv_condition(r, "Failure", true, "Failed", "VirtualMachine is running");
		return false;
	}
	if (shp_strcmp0(policy, "StopTarget") == 0 && vm &&
	    strcmp(kv_run_strategy(vm), "Halted") != 0) {
		json_t *nw = json_deep_copy(vm);
		json_object_set_new(json_object_get(nw, "spec"), "runStrategy",
				    json_string("Halted"));
		json_object_del(json_object_get(nw, "spec"), "running");
		kv_write(ks, KS_R_VM, nw, vm, "virt-controller", false);
	}
	kv_condition(r, "Progressing", true, "Waiting", "Waiting for target to be ready");
	return false;
}

void kv_restore_step(struct ks *ks, const char *key)
{
	json_t *cur = get_key(ks, KS_R_RESTORE, key), *r;
	const char *ns = kv_str(cur, "metadata.namespace"),
		   *target = kv_str(cur, "spec.target.name");
	const json_t *snap, *content;
	const char *stage;
	char now[32];

	if (json_is_true(kv_at(cur, "status.complete")) || kv_has_condition(cur, "Failure") ||
	    !target)
		return;
	r = json_deep_copy(cur);
	snap = ks_get(ks, KS_R_SNAPSHOT, ns, kv_str(cur, "spec.virtualMachineSnapshotName"));
	content = ks_get(ks, KS_R_SNAPCONTENT, ns,
			 kv_str(snap, "status.virtualMachineSnapshotContentName"));
	ks_now(now, sizeof(now));
	stage = cond_reason(cur, "Progressing");
	if (!stage || strcmp(stage, "Waiting") == 0) {
		if (restore_can_begin(ks, r, ns, target)) {
			kv_condition(r, "Progressing", true, "InProgress", "Restoring");
			kv_condition(r, "Ready", false, "InProgress", "Restoring");
			vm_status_field(ks, ns, target, "restoreInProgress",
					kv_str(cur, "metadata.name"));
		}
	} else if (strcmp(stage, "InProgress") == 0 && !kv_at(cur, "status.restores")) {
		if (content)
			restore_vm(ks, ns, target, content);
		json_object_set_new(kv_status_of(r), "restores", json_array());
	} else {
		json_object_set_new(kv_status_of(r), "complete", json_true());
		json_object_set_new(kv_status_of(r), "restoreTime", json_string(now));
		kv_condition(r, "Progressing", false, "Operation complete", "Operation complete");
		kv_condition(r, "Ready", true, "Operation complete", "Operation complete");
		vm_status_field(ks, ns, target, "restoreInProgress", NULL);
	}
	kv_write(ks, KS_R_RESTORE, r, cur, "virt-controller", true);
}

/* ---- clones ---- */

/* The spec to copy: the source VM's, or the one kept in the source snapshot's content. */
static const json_t *clone_source(struct ks *ks, const json_t *c, const json_t **ret_labels)
{
	const char *ns = kv_str(c, "metadata.namespace"), *name = kv_str(c, "spec.source.name");
	const json_t *vm, *snap, *content;

	if (shp_strcmp0(kv_str(c, "spec.source.kind"), "VirtualMachineSnapshot") != 0) {
		vm = name ? ks_get(ks, KS_R_VM, ns, name) : NULL;
		*ret_labels = kv_at(vm, "metadata.labels");
		return kv_at(vm, "spec");
	}
	snap = name ? ks_get(ks, KS_R_SNAPSHOT, ns, name) : NULL;
	content = ks_get(ks, KS_R_SNAPCONTENT, ns,
			 kv_str(snap, "status.virtualMachineSnapshotContentName"));
	*ret_labels = kv_at(content, "spec.source.virtualMachine.metadata.labels");
	return kv_at(content, "spec.source.virtualMachine.spec");
}

/* A fresh VM from the source spec: new MACs and SMBIOS serial (they are dropped). */
static void clone_create_vm(struct ks *ks, const char *ns, const char *name, const json_t *spec,
			    const json_t *labels)
{
	json_t *nspec = json_deep_copy(spec);
	json_t *ifs = kv_at(nspec, "template.spec.domain.devices.interfaces"), *i;
	size_t k;

	json_array_foreach(ifs, k, i)
	{
		json_object_del(i, "macAddress");
	}
	json_object_del(kv_at(nspec, "template.spec.domain.firmware"), "serial");
	json_object_del(kv_at(nspec, "template.spec.domain.firmware"), "uuid");
	json_object_del(nspec, "dataVolumeTemplates");
	kv_create(ks, KS_R_VM,
		  json_pack("{s:{s:s, s:s, s:O?}, s:o}", "metadata", "name", name, "namespace", ns,
			    "labels", labels, "spec", nspec),
		  "virt-controller");
}

static void clone_fail(json_t *c, const char *msg)
{
	kv_phase_to(c, "Failed");
	kv_condition(c, "Progressing", false, "Failed", msg);
	kv_condition(c, "Ready", false, "Failed", msg);
}

static void clone_advance(struct ks *ks, json_t *c, const char *phase)
{
	const char *ns = kv_str(c, "metadata.namespace"), *uid = kv_str(c, "metadata.uid");
	const char *target = kv_str(c, "status.targetName");
	const json_t *labels = NULL, *spec = clone_source(ks, c, &labels);
	char buf[128];

	if (!spec) {
		clone_fail(c, "source does not exist or is not ready");
	} else if (!phase) {
		bool from_vm =
			shp_strcmp0(kv_str(c, "spec.source.kind"), "VirtualMachineSnapshot") != 0;
		(void)snprintf(buf, sizeof(buf), "tmp-snapshot-%s", uid);
		if (from_vm)
			json_object_set_new(kv_status_of(c), "snapshotName", json_string(buf));
		kv_phase_to(c, from_vm ? "SnapshotInProgress" : "RestoreInProgress");
		kv_condition(c, "Progressing", true, "InProgress", "Still processing");
		kv_condition(c, "Ready", false, "InProgress", "Still processing");
	} else if (strcmp(phase, "SnapshotInProgress") == 0) {
		(void)snprintf(buf, sizeof(buf), "tmp-restore-%s", uid);
		json_object_set_new(kv_status_of(c), "restoreName", json_string(buf));
		kv_phase_to(c, "RestoreInProgress");
	} else if (strcmp(phase, "RestoreInProgress") == 0) {
		if (ks_get(ks, KS_R_VM, ns, target)) {
			clone_fail(c, "target VM already exists");
			return;
		}
		clone_create_vm(ks, ns, target, spec, labels);
		kv_phase_to(c, "CreatingTargetVM");
	} else {
		json_object_del(kv_status_of(c), "snapshotName");
		json_object_del(kv_status_of(c), "restoreName");
		kv_phase_to(c, "Succeeded");
		kv_condition(c, "Progressing", false, "Succeeded", "Clone succeeded");
		kv_condition(c, "Ready", true, "Succeeded", "Clone succeeded");
	}
}

void kv_clone_step(struct ks *ks, const char *key)
{
	json_t *cur = get_key(ks, KS_R_CLONE, key), *c;
	char name[80];

	if (phase_final(cur) || kv_at(cur, "metadata.deletionTimestamp"))
		return;
	c = json_deep_copy(cur);
	if (!kv_str(c, "status.targetName")) {
		const char *t = kv_str(c, "spec.target.name");
		if (!t) {
			ks_generate_name("clone-", name, sizeof(name));
			t = name;
		}
		json_object_set_new(kv_status_of(c), "targetName", json_string(t));
	}
	clone_advance(ks, c, kv_str(cur, "status.phase"));
	kv_write(ks, KS_R_CLONE, c, cur, "virt-controller", true);
}

/* ---- DataVolumes ---- */

void kv_create_datavolumes(struct ks *ks, const json_t *vm)
{
	const char *ns = kv_str(vm, "metadata.namespace");
	json_t *tpls = kv_at(vm, "spec.dataVolumeTemplates"), *t;
	size_t i;

	json_array_foreach(tpls, i, t)
	{
		const char *name = kv_str(t, "metadata.name");
		if (!name || ks_get(ks, KS_R_DATAVOLUME, ns, name))
			continue;
		kv_create(ks, KS_R_DATAVOLUME,
			  json_pack("{s:{s:s, s:s, s:O?, s:[{s:s, s:s, s:s, s:s, s:b, s:b}]}, s:O}",
				    "metadata", "name", name, "namespace", ns, "labels",
				    kv_at(t, "metadata.labels"), "ownerReferences", "apiVersion",
				    "kubevirt.io/v1", "kind", "VirtualMachine", "name",
				    kv_str(vm, "metadata.name"), "uid", kv_str(vm, "metadata.uid"),
				    "controller", true, "blockOwnerDeletion", true, "spec",
				    kv_at(t, "spec")),
			  "virt-controller");
	}
}

/* Pending -> ImportScheduled -> ImportInProgress (0%, 50%) -> Succeeded. An http source whose
 * URL contains "/fail" ends Failed instead (for DataVolumeError). */
static void dv_advance(json_t *dv, const char *phase, const char *progress)
{
	const char *url = kv_str(dv, "spec.source.http.url");
	json_t *st = kv_status_of(dv);

	json_object_set(st, "claimName", kv_at(dv, "metadata.name"));
	if (!phase) {
		kv_phase_to(dv, "Pending");
		json_object_set_new(st, "progress", json_string("N/A"));
		kv_condition(dv, "Bound", false, "Pending", "PVC Pending");
		kv_condition(dv, "Ready", false, "Pending", NULL);
	} else if (strcmp(phase, "Pending") == 0) {
		kv_phase_to(dv, "ImportScheduled");
		kv_condition(dv, "Bound", true, "Bound", "PVC Bound");
	} else if (strcmp(phase, "ImportScheduled") == 0) {
		kv_phase_to(dv, "ImportInProgress");
		json_object_set_new(st, "progress", json_string("0.00%"));
		kv_condition(dv, "Running", true, "Pod is running", NULL);
	} else if (strcmp(phase, "ImportInProgress") == 0 && shp_strcmp0(progress, "0.00%") == 0) {
		json_object_set_new(st, "progress", json_string("50.00%"));
	} else if (url && strstr(url, "/fail")) {
		kv_phase_to(dv, "Failed");
		json_object_set_new(st, "restartCount", json_integer(1));
		kv_condition(dv, "Running", false, "Error", "Unable to process data");
	} else {
		kv_phase_to(dv, "Succeeded");
		json_object_set_new(st, "progress", json_string("100.0%"));
		kv_condition(dv, "Running", false, "Completed", NULL);
		kv_condition(dv, "Ready", true, NULL, NULL);
	}
}

void kv_datavolume_step(struct ks *ks, const char *key)
{
	json_t *cur = get_key(ks, KS_R_DATAVOLUME, key), *dv;

	if (phase_final(cur) || kv_at(cur, "metadata.deletionTimestamp"))
		return;
	dv = json_deep_copy(cur);
	dv_advance(dv, kv_str(cur, "status.phase"), kv_str(cur, "status.progress"));
	kv_write(ks, KS_R_DATAVOLUME, dv, cur, "cdi-controller", true);
}
