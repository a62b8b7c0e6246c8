/*
 * The fake KubeVirt controllers, advanced one step per tick under the store mutex: VMIs walk
 * Pending -> Scheduling -> Scheduled -> Running; VMs create, stop and restart their VMI as
 * their run strategy and state change requests say, and derive printableStatus with the
 * controller's precedence; finalizers are released once their work is done; terminating
 * namespaces are emptied and removed. Every transition is its own write with its own RV.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kubesim.h"
#include "util.h"

#define MGR "virt-controller"

/* The keys of a map, copied, so that objects may change while we walk them. */
static json_t *keys_of(const json_t *map)
{
	json_t *keys = json_array();
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)map, k, v)
	{
		json_array_append_new(keys, json_string(k));
	}
	return keys;
}

json_t *kv_status_of(json_t *obj)
{
	json_t *st = json_object_get(obj, "status");

	if (!json_is_object(st)) {
		st = json_object();
		json_object_set_new(obj, "status", st);
	}
	return st;
}

void kv_phase_to(json_t *obj, const char *phase)
{
	json_t *st = kv_status_of(obj), *ts = json_object_get(st, "phaseTransitionTimestamps");
	char now[32];

	ks_now(now, sizeof(now));
	json_object_set_new(st, "phase", json_string(phase));
	if (!json_is_array(ts)) {
		ts = json_array();
		json_object_set_new(st, "phaseTransitionTimestamps", ts);
	}
	json_array_append_new(
		ts, json_pack("{s:s, s:s}", "phase", phase, "phaseTransitionTimestamp", now));
}

/* Set condition type in status, keeping lastTransitionTime when the status is unchanged. */
void kv_condition(json_t *obj, const char *type, bool value, const char *reason,
		  const char *message)
{
	json_t *st = kv_status_of(obj), *conds = json_object_get(st, "conditions"), *c = NULL;
	const char *sv = value ? "True" : "False";
	char now[32];
	size_t i;

	if (!json_is_array(conds)) {
		conds = json_array();
		json_object_set_new(st, "conditions", conds);
	}
	json_array_foreach(conds, i, c)
	{
		if (shp_strcmp0(json_string_value(json_object_get(c, "type")), type) == 0)
			break;
	}
	if (i < json_array_size(conds) && shp_strcmp0(kv_str(c, "status"), sv) == 0 &&
	    shp_strcmp0(kv_str(c, "reason"), reason ? reason : "") == 0)
		return;
	ks_now(now, sizeof(now));
	c = json_pack("{s:s, s:s, s:s, s:s, s:n, s:s}", "type", type, "status", sv, "reason",
		      reason ? reason : "", "message", message ? message : "", "lastProbeTime",
		      "lastTransitionTime", now);
	if (i < json_array_size(conds))
		json_array_set_new(conds, i, c);
	else
		json_array_append_new(conds, c);
}

void kv_condition_del(json_t *obj, const char *type)
{
	json_t *conds = kv_at(obj, "status.conditions"), *c;
	size_t i;

	json_array_foreach(conds, i, c)
	{
		if (shp_strcmp0(kv_str(c, "type"), type) == 0) {
			json_array_remove(conds, i);
			return;
		}
	}
}

bool kv_has_condition(const json_t *obj, const char *type)
{
	json_t *conds = kv_at(obj, "status.conditions"), *c;
	size_t i;

	json_array_foreach(conds, i, c)
	{
		if (shp_strcmp0(kv_str(c, "type"), type) == 0)
			return shp_strcmp0(kv_str(c, "status"), "True") == 0;
	}
	return false;
}

void kv_remove_finalizer(json_t *obj, const char *fin)
{
	json_t *fins = kv_at(obj, "metadata.finalizers"), *f;
	size_t i;

	json_array_foreach(fins, i, f)
	{
		if (shp_strcmp0(json_string_value(f), fin) == 0) {
			json_array_remove(fins, i);
			return;
		}
	}
}

void kv_add_finalizer(json_t *obj, const char *fin)
{
	json_t *md = json_object_get(obj, "metadata"), *fins = json_object_get(md, "finalizers"),
	       *f;
	size_t i;

	if (!json_is_array(fins)) {
		fins = json_array();
		json_object_set_new(md, "finalizers", fins);
	}
	json_array_foreach(fins, i, f)
	{
		if (shp_strcmp0(json_string_value(f), fin) == 0)
			return;
	}
	json_array_append_new(fins, json_string(fin));
}

/* Remove obj once its finalizers are gone, else store it with ours released. */
void kv_release(struct ks *ks, enum ks_res res, const json_t *cur)
{
	json_t *nw = json_deep_copy(cur);

	kv_remove_finalizer(nw, ks_resources[res].finalizer);
	if (json_array_size(kv_at(nw, "metadata.finalizers")) == 0) {
		json_decref(nw);
		ks_remove(ks, res, kv_str(cur, "metadata.namespace"), kv_str(cur, "metadata.name"));
		return;
	}
	kv_write(ks, res, nw, cur, MGR, false);
}

void kv_mark_deleted(struct ks *ks, enum ks_res res, const json_t *cur)
{
	json_t *nw;
	char now[32];

	if (kv_at(cur, "metadata.deletionTimestamp"))
		return;
	if (json_array_size(kv_at(cur, "metadata.finalizers")) == 0) {
		ks_remove(ks, res, kv_str(cur, "metadata.namespace"), kv_str(cur, "metadata.name"));
		return;
	}
	nw = json_deep_copy(cur);
	ks_now(now, sizeof(now));
	json_object_set_new(json_object_get(nw, "metadata"), "deletionTimestamp", json_string(now));
	json_object_set_new(json_object_get(nw, "metadata"), "deletionGracePeriodSeconds",
			    json_integer(0));
	kv_write(ks, res, nw, cur, MGR, false);
}

/* ---- VMIs ---- */

void kv_pick_node(struct ks *ks, const char * not, char *out, size_t size)
{
	int n = ks->cfg.nodes > 0 ? ks->cfg.nodes : 1;

	for (int i = 0; i < n; i++) {
		(void)snprintf(out, size, "node-%d", (int)(ks->node_rr++ % (uint64_t)n) + 1);
		if (!not || strcmp(out, not ) != 0)
			return;
	}
}

static void vmi_running(struct ks *ks, json_t *vmi)
{
	json_t *st = kv_status_of(vmi), *ifs = json_array(), *nets;
	char ip[32], mac[32];
	size_t i;
	json_t *n;
	uint64_t c = ++ks->ip_counter;

	(void)snprintf(ip, sizeof(ip), "10.244.%u.%u", (unsigned)(c / 250 % 250),
		       (unsigned)(c % 250 + 2));
	(void)snprintf(mac, sizeof(mac), "02:00:00:%02x:%02x:%02x", (unsigned)(c >> 16 & 0xff),
		       (unsigned)(c >> 8 & 0xff), (unsigned)(c & 0xff));
	nets = kv_at(vmi, "spec.networks");
	json_array_foreach(nets, i, n)
	{
		json_array_append_new(ifs, json_pack("{s:s, s:s, s:[s], s:s, s:s, s:s}", "name",
						     kv_str(n, "name"), "ipAddress", ip,
						     "ipAddresses", ip, "mac", mac, "interfaceName",
						     "eth0", "infoSource", "domain, guest-agent"));
		break; /* one pod network gets the address */
	}
	if (json_array_size(ifs) == 0)
		json_array_append_new(ifs, json_pack("{s:s, s:s, s:[s], s:s, s:s}", "name",
						     "default", "ipAddress", ip, "ipAddresses", ip,
						     "mac", mac, "infoSource", "domain"));
	json_object_set_new(st, "interfaces", ifs);
	json_object_set_new(st, "migrationMethod", json_string("LiveMigration"));
	json_object_set_new(st, "guestOSInfo",
			    json_pack("{s:s, s:s, s:s}", "name", "Fedora Linux", "id", "fedora",
				      "version", "40"));
	kv_condition(vmi, "Ready", true, NULL, NULL);
	kv_condition(vmi, "LiveMigratable", true, NULL, NULL);
	kv_condition(vmi, "AgentConnected", true, NULL, NULL);
	kv_phase_to(vmi, "Running");
}

/* An injected failure: the annotation below on the VM, copied to its VMIs. */
#define FAULT_ANNOTATION "kubesim.shepherd.dev/fault"

static const char *fault_of(const json_t *obj)
{
	return json_string_value(
		json_object_get(kv_at(obj, "metadata.annotations"), FAULT_ANNOTATION));
}

static bool has_fault(const json_t *obj, const char *fault)
{
	return shp_strcmp0(fault_of(obj), fault) == 0;
}

/* A VMI held by an injected failure stays in its phase with the condition that says why. */
static bool vmi_held(struct ks *ks, json_t *nw, const char *phase)
{
	char msg[96];

	if (strcmp(phase, "Pending") == 0 && has_fault(nw, "PvcNotFound")) {
		kv_condition(nw, "Synchronized", false, "FailedPvcNotFound",
			     "PVC referenced by the VM does not exist");
		return true;
	}
	if (strcmp(phase, "Scheduling") == 0 && has_fault(nw, "Unschedulable")) {
		(void)snprintf(msg, sizeof(msg),
			       "0/%d nodes are available: %d Insufficient memory.", ks->cfg.nodes,
			       ks->cfg.nodes);
		kv_condition(nw, "PodScheduled", false, "Unschedulable", msg);
		return true;
	}
	if (strcmp(phase, "Scheduled") == 0 &&
	    (has_fault(nw, "ErrImagePull") || has_fault(nw, "ImagePullBackOff"))) {
		kv_condition(nw, "Synchronized", false, fault_of(nw), "failed to pull image");
		return true;
	}
	if (strcmp(phase, "Scheduled") == 0 && has_fault(nw, "CrashLoopBackOff")) {
		kv_condition(nw, "Ready", false, "PodFailed", "virt-launcher crashed");
		kv_phase_to(nw, "Failed");
		return true;
	}
	return false;
}

static void vmi_advance(struct ks *ks, json_t *nw)
{
	const char *phase = kv_str(nw, "status.phase");

	if (!phase || !*phase) {
		kv_phase_to(nw, "Pending");
	} else if (vmi_held(ks, nw, phase)) {
		return;
	} else if (strcmp(phase, "Pending") == 0) {
		kv_phase_to(nw, "Scheduling");
		kv_condition(nw, "Ready", false, "PodNotReady", NULL);
	} else if (strcmp(phase, "Scheduling") == 0) {
		char node[32];
		kv_pick_node(ks, NULL, node, sizeof(node));
		json_object_set_new(kv_status_of(nw), "nodeName", json_string(node));
		json_object_set_new(json_object_get(json_object_get(nw, "metadata"), "labels"),
				    "kubevirt.io/nodeName", json_string(node));
		kv_condition(nw, "PodScheduled", true, NULL, NULL);
		kv_phase_to(nw, "Scheduled");
	} else if (strcmp(phase, "Scheduled") == 0) {
		vmi_running(ks, nw);
	}
}

static void vmi_step(struct ks *ks, const json_t *vmi)
{
	json_t *nw;

	if (kv_at(vmi, "metadata.deletionTimestamp")) {
		if (kv_vmi_is_final(vmi) || !kv_str(vmi, "status.phase") ||
		    strcmp(kv_str(vmi, "status.phase"), "Pending") == 0) {
			kv_release(ks, KS_R_VMI, vmi);
			return;
		}
		nw = json_deep_copy(vmi);
		kv_condition(nw, "Ready", false, "PodTerminating", NULL);
		kv_phase_to(nw, "Succeeded");
		kv_write(ks, KS_R_VMI, nw, vmi, MGR, true);
		return;
	}
	if (kv_vmi_is_final(vmi) || shp_strcmp0(kv_str(vmi, "status.phase"), "Running") == 0)
		return; /* nothing moves a running VMI but migrations and pauses */
	nw = json_deep_copy(vmi);
	if (!json_is_object(kv_at(nw, "metadata.labels")))
		json_object_set_new(json_object_get(nw, "metadata"), "labels", json_object());
	vmi_advance(ks, nw);
	kv_write(ks, KS_R_VMI, nw, vmi, MGR, true);
}

/* ---- VMs ---- */

/* Fill the VMI's CPU and memory from the VM's instance type, as virt-controller expands it. */
void kv_expand_instancetype(struct ks *ks, const json_t *vm, json_t *spec)
{
	const char *kind = kv_str(vm, "spec.instancetype.kind");
	const char *name = kv_str(vm, "spec.instancetype.name");
	json_t *it, *dom, *guest;

	if (!name)
		return;
	it = kind && strcmp(kind, "VirtualMachineInstancetype") == 0
		     ? ks_get(ks, KS_R_INSTANCETYPE, kv_str(vm, "metadata.namespace"), name)
		     : ks_get(ks, KS_R_CLUSTER_INSTANCETYPE, NULL, name);
	if (!it)
		return;
	if (!json_is_object(dom = json_object_get(spec, "domain"))) {
		dom = json_object();
		json_object_set_new(spec, "domain", dom);
	}
	guest = kv_at(it, "spec.cpu.guest");
	json_object_set_new(dom, "cpu",
			    json_pack("{s:o, s:i, s:i}", "sockets",
				      guest ? json_incref(guest) : json_integer(1), "cores", 1,
				      "threads", 1));
	json_object_set_new(dom, "memory",
			    json_pack("{s:O?}", "guest", kv_at(it, "spec.memory.guest")));
}

static void create_vmi(struct ks *ks, const json_t *vm)
{
	const char *ns = kv_str(vm, "metadata.namespace"), *name = kv_str(vm, "metadata.name");
	json_t *spec = json_deep_copy(kv_at(vm, "spec.template.spec"));
	json_t *labels = json_deep_copy(kv_at(vm, "spec.template.metadata.labels"));
	json_t *vmi;

	if (!json_is_object(spec)) {
		json_decref(spec);
		spec = json_object();
	}
	if (!json_is_object(labels)) {
		json_decref(labels);
		labels = json_object();
	}
	kv_expand_instancetype(ks, vm, spec);
	vmi = json_pack("{s:{s:s, s:s, s:o, s:{s:s}, s:[{s:s, s:s, s:s, s:s, s:b, s:b}], s:[s]},"
			" s:o, s:{s:s}}",
			"metadata", "name", name, "namespace", ns, "labels", labels, "annotations",
			"kubevirt.io/latest-observed-api-version", "v1", "ownerReferences",
			"apiVersion", "kubevirt.io/v1", "kind", "VirtualMachine", "name", name,
			"uid", kv_str(vm, "metadata.uid"), "controller", true, "blockOwnerDeletion",
			true, "finalizers", "kubevirt.io/foregroundDeleteVirtualMachine", "spec",
			spec, "status", "qosClass", "Burstable");
	if (fault_of(vm))
		json_object_set_new(kv_at(vmi, "metadata.annotations"), FAULT_ANNOTATION,
				    json_string(fault_of(vm)));
	kv_phase_to(vmi, "Pending");
	kv_create(ks, KS_R_VMI, vmi, MGR);
}

/* Work through status.stateChangeRequests (start/stop/restart of Manual VMs, restarts). */
static bool handle_requests(struct ks *ks, json_t *nw, const json_t *vmi)
{
	json_t *reqs = kv_at(nw, "status.stateChangeRequests");
	json_t *first = json_array_get(reqs, 0);
	const char *action = kv_str(first, "action"), *uid = kv_str(first, "uid");

	if (!action)
		return false;
	if (strcmp(action, "Stop") == 0) {
		if (vmi && (!uid || shp_strcmp0(uid, kv_str(vmi, "metadata.uid")) == 0)) {
			kv_mark_deleted(ks, KS_R_VMI, vmi);
			return true;
		}
	} else if (strcmp(action, "Start") == 0) {
		if (vmi && kv_vmi_is_final(vmi)) {
			kv_mark_deleted(ks, KS_R_VMI, vmi);
			return true;
		}
		if (!vmi)
			create_vmi(ks, nw);
	}
	json_array_remove(reqs, 0);
	if (json_array_size(reqs) == 0)
		json_object_del(json_object_get(nw, "status"), "stateChangeRequests");
	return true;
}

/* Act on the run strategy: start a VMI, restart a finished one, or stop. */
/* A VMI that failed before it ever ran counts as a start failure; restarts back off. */
static void start_failure(json_t *vm, const json_t *vmi)
{
	json_t *st = kv_status_of(vm), *sf = json_object_get(st, "startFailure");
	json_t *ts = kv_at(vmi, "status.phaseTransitionTimestamps"), *t;
	time_t retry = time(NULL) + 1;
	char when[32];
	struct tm tm;
	size_t i;

	json_array_foreach(ts, i, t)
	{
		if (shp_strcmp0(kv_str(t, "phase"), "Running") == 0)
			return;
	}
	if (!json_is_object(sf)) {
		sf = json_object();
		json_object_set_new(st, "startFailure", sf);
	}
	(void)gmtime_r(&retry, &tm);
	(void)strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(
		sf, "consecutiveFailCount",
		json_integer(json_integer_value(json_object_get(sf, "consecutiveFailCount")) + 1));
	json_object_set_new(sf, "retryAfterTimestamp", json_string(when));
	json_object_set(sf, "lastFailedVMIUID", kv_at(vmi, "metadata.uid"));
}

static bool backing_off(const json_t *vm)
{
	const char *retry = kv_str(vm, "status.startFailure.retryAfterTimestamp");
	char now[32];

	ks_now(now, sizeof(now));
	return retry && strcmp(now, retry) < 0;
}

/* Act on the run strategy: start a VMI, restart a finished one, or stop. vm is the working
 * copy (its status may record a start failure). */
static void run_strategy(struct ks *ks, json_t *vm, const json_t *vmi)
{
	const char *rs = kv_run_strategy(vm);
	const char *phase = kv_str(vmi, "status.phase");

	if (strcmp(rs, "Halted") == 0) {
		if (vmi)
			kv_mark_deleted(ks, KS_R_VMI, vmi);
	} else if (strcmp(rs, "Always") == 0 ||
		   (strcmp(rs, "RerunOnFailure") == 0 && shp_strcmp0(phase, "Succeeded"))) {
		if (!vmi && !backing_off(vm)) {
			create_vmi(ks, vm);
		} else if (vmi && kv_vmi_is_final(vmi)) {
			if (shp_strcmp0(phase, "Failed") == 0 &&
			    shp_strcmp0(kv_str(vm, "status.startFailure.lastFailedVMIUID"),
					kv_str(vmi, "metadata.uid")) != 0)
				start_failure(vm, vmi);
			kv_mark_deleted(ks, KS_R_VMI, vmi);
		}
	} else if (strcmp(rs, "Once") == 0 && !vmi && !kv_at(vm, "status.created")) {
		create_vmi(ks, vm);
	}
}

static bool start_expected(const json_t *vm)
{
	const char *rs = kv_run_strategy(vm);
	json_t *reqs = kv_at(vm, "status.stateChangeRequests");

	if (shp_strcmp0(kv_str(json_array_get(reqs, json_array_size(reqs) - 1), "action"),
			"Start") == 0)
		return true;
	return strcmp(rs, "Always") == 0 || strcmp(rs, "RerunOnFailure") == 0 ||
	       (strcmp(rs, "Once") == 0 && !kv_at(vm, "status.created"));
}

static bool stop_expected(const json_t *vm)
{
	json_t *reqs = kv_at(vm, "status.stateChangeRequests");

	return strcmp(kv_run_strategy(vm), "Halted") == 0 ||
	       shp_strcmp0(kv_str(json_array_get(reqs, 0), "action"), "Stop") == 0;
}

static bool vmi_migrating(const json_t *vmi)
{
	const json_t *ms = kv_at(vmi, "status.migrationState");

	return ms && !json_is_true(json_object_get(ms, "completed")) &&
	       !json_is_true(json_object_get(ms, "failed"));
}

/* Whether obj has condition type (status False) with the given reason. */
static bool cond_reason_is(const json_t *obj, const char *type, const char *reason)
{
	json_t *conds = kv_at(obj, "status.conditions"), *c;
	size_t i;

	json_array_foreach(conds, i, c)
	{
		if (shp_strcmp0(kv_str(c, "type"), type) == 0)
			return shp_strcmp0(kv_str(c, "status"), "False") == 0 &&
			       shp_strcmp0(kv_str(c, "reason"), reason) == 0;
	}
	return false;
}

/* printableStatus, with the VM controller's precedence. */
static const char *printable(struct ks *ks, const json_t *vm, const json_t *vmi)
{
	const char *phase = kv_str(vmi, "status.phase");
	bool final = vmi && kv_vmi_is_final(vmi);

	if (kv_at(vm, "metadata.deletionTimestamp"))
		return "Terminating";
	if (vmi && !final && (kv_at(vmi, "metadata.deletionTimestamp") || stop_expected(vm)))
		return "Stopping";
	if (vmi && vmi_migrating(vmi))
		return "Migrating";
	if (shp_strcmp0(phase, "Running") == 0)
		return kv_has_condition(vmi, "Paused") ? "Paused" : "Running";
	if (vmi && cond_reason_is(vmi, "Synchronized", "FailedPvcNotFound"))
		return "ErrorPvcNotFound";
	if (kv_datavolume_failed(ks, vm))
		return "DataVolumeError";
	if (vmi && cond_reason_is(vmi, "PodScheduled", "Unschedulable"))
		return "ErrorUnschedulable";
	if (kv_provisioning(ks, vm) && start_expected(vm))
		return "Provisioning";
	if (vmi && cond_reason_is(vmi, "Synchronized", "ErrImagePull"))
		return "ErrImagePull";
	if (vmi && cond_reason_is(vmi, "Synchronized", "ImagePullBackOff"))
		return "ImagePullBackOff";
	if ((!vmi || final) && backing_off(vm) && start_expected(vm))
		return "CrashLoopBackOff";
	if ((!vmi && start_expected(vm)) || (vmi && !final))
		return "Starting";
	return "Stopped";
}

/* Whether a DataVolume the VM uses has not finished importing yet. */
bool kv_provisioning(struct ks *ks, const json_t *vm)
{
	json_t *vols = kv_at(vm, "spec.template.spec.volumes"), *v;
	size_t i;

	json_array_foreach(vols, i, v)
	{
		const char *dv = kv_str(v, "dataVolume.name");
		json_t *obj = dv ? ks_get(ks, KS_R_DATAVOLUME, kv_str(vm, "metadata.namespace"), dv)
				 : NULL;
		const char *phase = kv_str(obj, "status.phase");
		if (dv && (!obj || shp_strcmp0(phase, "Succeeded") != 0))
			return true;
	}
	return false;
}

/* Whether a DataVolume the VM uses has failed. */
bool kv_datavolume_failed(struct ks *ks, const json_t *vm)
{
	json_t *vols = kv_at(vm, "spec.template.spec.volumes"), *v;
	size_t i;

	json_array_foreach(vols, i, v)
	{
		const char *dv = kv_str(v, "dataVolume.name");
		json_t *obj = dv ? ks_get(ks, KS_R_DATAVOLUME, kv_str(vm, "metadata.namespace"), dv)
				 : NULL;
		if (shp_strcmp0(kv_str(obj, "status.phase"), "Failed") == 0)
			return true;
	}
	return false;
}

static void vm_status(struct ks *ks, json_t *nw, const json_t *vmi)
{
	json_t *st = kv_status_of(nw);
	json_t *gen = kv_at(nw, "metadata.generation");
	bool ready = vmi && shp_strcmp0(kv_str(vmi, "status.phase"), "Running") == 0 &&
		     kv_has_condition(vmi, "Ready");

	if (ready)
		json_object_del(st, "startFailure");
	json_object_set_new(st, "printableStatus", json_string(printable(ks, nw, vmi)));
	json_object_set_new(st, "created", json_boolean(vmi != NULL));
	json_object_set_new(st, "ready", json_boolean(ready));
	json_object_set_new(st, "runStrategy", json_string(kv_run_strategy(nw)));
	json_object_set(st, "observedGeneration", gen);
	json_object_set(st, "desiredGeneration", gen);
	if (vmi)
		kv_condition(nw, "Ready", ready, NULL, NULL);
	else
		kv_condition(nw, "Ready", false, "VMINotExists", "VMI does not exist");
	if (vmi && kv_has_condition(vmi, "Paused"))
		kv_condition(nw, "Paused", true, "PausedByUser", "VMI was paused by user");
	else
		kv_condition_del(nw, "Paused");
}

json_t *kv_vm_with_status(struct ks *ks, const json_t *vm, const json_t *vmi)
{
	json_t *nw = json_deep_copy(vm);

	vm_status(ks, nw, vmi);
	return nw;
}

/* Delete what the VM owns (its DataVolumes) once it is going away. */
static void delete_owned(struct ks *ks, const json_t *vm)
{
	json_auto_t *keys = keys_of(ks->objs[KS_R_DATAVOLUME]);
	const char *uid = kv_str(vm, "metadata.uid");
	size_t i;
	json_t *k;

	json_array_foreach(keys, i, k)
	{
		json_t *dv = json_object_get(ks->objs[KS_R_DATAVOLUME], json_string_value(k));
		json_t *owners = kv_at(dv, "metadata.ownerReferences"), *o;
		size_t j;
		json_array_foreach(owners, j, o)
		{
			if (shp_strcmp0(kv_str(o, "uid"), uid) == 0) {
				kv_mark_deleted(ks, KS_R_DATAVOLUME, dv);
				break;
			}
		}
	}
}

/* The controller's finalizer goes on first, as its own write. */
static bool has_finalizer(const json_t *obj, const char *fin)
{
	json_t *fins = kv_at(obj, "metadata.finalizers"), *f;
	size_t i;

	json_array_foreach(fins, i, f)
	{
		if (shp_strcmp0(json_string_value(f), fin) == 0)
			return true;
	}
	return false;
}

static json_t *ensure_finalizer(struct ks *ks, json_t *vm)
{
	const char *ns = kv_str(vm, "metadata.namespace"), *name = kv_str(vm, "metadata.name");
	json_t *nw;

	if (has_finalizer(vm, ks_resources[KS_R_VM].finalizer))
		return vm;
	nw = json_deep_copy(vm);
	kv_add_finalizer(nw, ks_resources[KS_R_VM].finalizer);
	kv_write(ks, KS_R_VM, nw, vm, MGR, false);
	return ks_get(ks, KS_R_VM, ns, name);
}

/* A working view of vm: its metadata and spec shared (read-only), its status a private copy. */
static json_t *status_view(const json_t *vm)
{
	json_t *view = json_object(), *st = json_object_get(vm, "status");
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)vm, k, v)
	{
		if (strcmp(k, "status") != 0)
			json_object_set(view, k, v);
	}
	json_object_set_new(view, "status", st ? json_deep_copy(st) : json_object());
	return view;
}

static void vm_step_deleted(struct ks *ks, json_t *vm, const json_t *vmi)
{
	const char *ns = kv_str(vm, "metadata.namespace"), *name = kv_str(vm, "metadata.name");
	json_t *nw;

	/* Terminating first, then the VMI goes, then the finalizer */
	if (vmi) {
		kv_mark_deleted(ks, KS_R_VMI, vmi);
	} else if (shp_strcmp0(kv_str(vm, "status.printableStatus"), "Terminating") == 0) {
		delete_owned(ks, vm);
		kv_release(ks, KS_R_VM, vm);
		return;
	}
	nw = json_deep_copy(vm);
	vm_status(ks, nw, ks_get(ks, KS_R_VMI, ns, name));
	kv_write(ks, KS_R_VM, nw, vm, MGR, true);
}

static void vm_step(struct ks *ks, const char *key)
{
	json_t *vm = json_object_get(ks->objs[KS_R_VM], key), *vmi, *view, *nw;
	const char *ns = kv_str(vm, "metadata.namespace"), *name = kv_str(vm, "metadata.name");

	vmi = ks_get(ks, KS_R_VMI, ns, name);
	if (kv_at(vm, "metadata.deletionTimestamp")) {
		vm_step_deleted(ks, vm, vmi);
		return;
	}
	vm = ensure_finalizer(ks, vm);
	/* most VMs are steady: work on a view and copy the VM only when its status changes */
	view = status_view(vm);
	kv_create_datavolumes(ks, view);
	if (!kv_at(view, "status.restoreInProgress") && !handle_requests(ks, view, vmi) &&
	    !kv_provisioning(ks, view))
		run_strategy(ks, view, vmi);
	vm_status(ks, view, ks_get(ks, KS_R_VMI, ns, name));
	if (!json_equal(json_object_get(view, "status"), json_object_get(vm, "status"))) {
		nw = json_deep_copy(vm);
		json_object_set(nw, "status", json_object_get(view, "status"));
		kv_write(ks, KS_R_VM, nw, vm, MGR, true);
	}
	json_decref(view);
}

/* ---- namespaces ---- */

static void namespace_step(struct ks *ks, const json_t *nsobj)
{
	const char *ns = kv_str(nsobj, "metadata.name");
	bool empty = true;

	for (int r = 0; r < _KS_R_MAX; r++) {
		json_auto_t *keys = NULL;
		size_t i;
		json_t *k;
		if (!ks_resources[r].namespaced)
			continue;
		keys = keys_of(ks->objs[r]);
		json_array_foreach(keys, i, k)
		{
			json_t *o = json_object_get(ks->objs[r], json_string_value(k));
			if (shp_strcmp0(kv_str(o, "metadata.namespace"), ns) != 0)
				continue;
			empty = false;
			kv_mark_deleted(ks, (enum ks_res)r, o);
		}
	}
	if (empty)
		ks_remove(ks, KS_R_NAMESPACE, NULL, ns);
}

typedef void (*step_fn)(struct ks *ks, const char *key);

static void each(struct ks *ks, enum ks_res res, step_fn fn)
{
	json_auto_t *keys = keys_of(ks->objs[res]);
	size_t i;
	json_t *k;

	json_array_foreach(keys, i, k)
	{
		if (i % 128 == 127) {
			/* a long pass lets waiting requests in; every step re-reads its object */
			pthread_mutex_unlock(&ks->mu);
			pthread_mutex_lock(&ks->mu);
		}
		if (json_object_get(ks->objs[res], json_string_value(k)))
			fn(ks, json_string_value(k));
	}
}

static void vmi_key_step(struct ks *ks, const char *key)
{
	vmi_step(ks, json_object_get(ks->objs[KS_R_VMI], key));
}

static void ns_key_step(struct ks *ks, const char *key)
{
	json_t *ns = json_object_get(ks->objs[KS_R_NAMESPACE], key);

	if (kv_at(ns, "metadata.deletionTimestamp"))
		namespace_step(ks, ns);
}

void ks_controller_tick(struct ks *ks)
{
	pthread_mutex_lock(&ks->mu);
	each(ks, KS_R_VMIM, kv_migration_step);
	each(ks, KS_R_VMI, vmi_key_step);
	each(ks, KS_R_DATAVOLUME, kv_datavolume_step);
	each(ks, KS_R_VM, vm_step);
	each(ks, KS_R_SNAPSHOT, kv_snapshot_step);
	each(ks, KS_R_SNAPCONTENT, kv_content_step);
	each(ks, KS_R_RESTORE, kv_restore_step);
	each(ks, KS_R_CLONE, kv_clone_step);
	each(ks, KS_R_NAMESPACE, ns_key_step);
	pthread_mutex_unlock(&ks->mu);
}

/* A VM as /_sim/seed makes it: a small container-disk VM, running or halted. */
json_t *ks_make_vm(const char *ns, const char *name, const json_t *labels, bool running)
{
	return json_pack(
		"{s:{s:s, s:s, s:O?}, s:{s:s, s:{s:{s:{s:s}}, s:{s:{s:{s:s}, s:{s:[{s:s, s:{s:s}}],"
		" s:[{s:s, s:{}}]}}, s:[{s:s, s:{}}], s:[{s:s, s:{s:s}}]}}}}",
		"metadata", "name", name, "namespace", ns, "labels", labels, "spec", "runStrategy",
		running ? "Always" : "Halted", "template", "metadata", "labels",
		"kubevirt.io/domain", name, "spec", "domain", "memory", "guest", "1Gi", "devices",
		"disks", "name", "rootdisk", "disk", "bus", "virtio", "interfaces", "name",
		"default", "masquerade", "networks", "name", "default", "pod", "volumes", "name",
		"rootdisk", "containerDisk", "image", "quay.io/containerdisks/fedora:latest");
}
