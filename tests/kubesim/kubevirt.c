/*
 * KubeVirt's side, part one: the objects a cluster starts with (namespaces, nodes, the KubeVirt
 * CR, the common u1.* cluster instance types and a few preferences) and the validating
 * webhooks (VM shape, memory, instance type conflicts, running vs runStrategy, the Snapshot
 * feature gate, migration preconditions), which answer 422 with causes or a plain 400.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kubesim.h"
#include "util.h"

json_t *kv_at(const json_t *o, const char *path)
{
	json_t *v = (json_t *)o;

	/* walked in place: the controllers call this for every object on every tick */
	while (v && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		v = json_object_getn(v, path, n);
		path += dot ? n + 1 : n;
	}
	return v;
}

const char *kv_str(const json_t *o, const char *path)
{
	return json_string_value(kv_at(o, path));
}

/* Create an object on the server's own behalf (controllers, seeds): identity, an Update entry
 * for manager, the store. obj is stolen; returns it (borrowed, as stored). */
json_t *kv_create(struct ks *ks, enum ks_res res, json_t *obj, const char *manager)
{
	const struct ks_resource *r = &ks_resources[res];
	json_t *md = json_object_get(obj, "metadata");
	char av[128], uid[40], now[32];

	ks_api_version(r, av, sizeof(av));
	ks_new_uid(uid, sizeof(uid));
	ks_now(now, sizeof(now));
	json_object_set_new(obj, "apiVersion", json_string(av));
	json_object_set_new(obj, "kind", json_string(r->kind));
	json_object_set_new(md, "uid", json_string(uid));
	json_object_set_new(md, "creationTimestamp", json_string(now));
	json_object_set_new(md, "generation", json_integer(1));
	ks_managed_update(obj, NULL, manager, av, NULL);
	ks_put(ks, res, obj);
	return obj;
}

/* Store a controller's change of cur (nw stolen) unless nothing changed. */
void kv_write(struct ks *ks, enum ks_res res, json_t *nw, const json_t *cur, const char *manager,
	      bool status)
{
	const struct ks_resource *r = &ks_resources[res];
	char av[128];

	if (json_equal(nw, cur)) {
		json_decref(nw);
		return;
	}
	ks_api_version(r, av, sizeof(av));
	ks_managed_update(nw, cur, manager, av, status && r->status_sub ? "status" : NULL);
	ks_put(ks, res, nw);
}

static void seed_namespace(struct ks *ks, const char *name)
{
	if (ks_get(ks, KS_R_NAMESPACE, NULL, name))
		return;
	kv_create(ks, KS_R_NAMESPACE,
		  json_pack("{s:{s:s, s:{s:s}}, s:{s:[s]}, s:{s:s}}", "metadata", "name", name,
			    "labels", "kubernetes.io/metadata.name", name, "spec", "finalizers",
			    "kubernetes", "status", "phase", "Active"),
		  "kube-apiserver");
}

void ks_ensure_namespace(struct ks *ks, const char *name)
{
	seed_namespace(ks, name);
}

static json_t *gates_array(const char *csv)
{
	json_t *a = json_array();
	char buf[1024], *save = NULL;

	(void)snprintf(buf, sizeof(buf), "%s", csv ? csv : "");
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		json_array_append_new(a, json_string(t));
	return a;
}

static void seed_kubevirt(struct ks *ks)
{
	const char *v = ks->cfg.kubevirt_version;

	kv_create(ks, KS_R_KUBEVIRT,
		  json_pack("{s:{s:s, s:s}, s:{s:{s:{s:o, s:[]}}}, s:{s:s, s:s, s:s, s:s, "
			    "s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]}}",
			    "metadata", "name", "kubevirt", "namespace", "kubevirt", "spec",
			    "configuration", "developerConfiguration", "featureGates",
			    gates_array(ks->cfg.feature_gates), "disabledFeatureGates", "status",
			    "phase", "Deployed", "observedKubeVirtVersion", v,
			    "targetKubeVirtVersion", v, "defaultArchitecture", "amd64",
			    "conditions", "type", "Available", "status", "True", "type",
			    "Progressing", "status", "False", "type", "Degraded", "status",
			    "False"),
		  "virt-operator");
}

static void seed_nodes(struct ks *ks)
{
	for (int i = 1; i <= ks->cfg.nodes; i++) {
		char name[32], ip[32];
		(void)snprintf(name, sizeof(name), "node-%d", i);
		(void)snprintf(ip, sizeof(ip), "192.168.10.%d", 10 + i);
		kv_create(ks, KS_R_NODE,
			  json_pack("{s:{s:s, s:{s:s, s:s, s:s, s:s}}, s:{}, s:{s:{s:s, s:s, "
				    "s:s}, s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:s}], "
				    "s:[{s:s, s:s}, {s:s, s:s}], s:{s:s, s:s, s:s}}}",
				    "metadata", "name", name, "labels", "kubernetes.io/hostname",
				    name, "kubernetes.io/os", "linux", "kubernetes.io/arch",
				    "amd64", "kubevirt.io/schedulable", "true", "spec", "status",
				    "capacity", "cpu", "16", "memory", "65536Mi", "pods", "110",
				    "allocatable", "cpu", "16", "memory", "64000Mi", "pods", "110",
				    "conditions", "type", "Ready", "status", "True", "reason",
				    "KubeletReady", "addresses", "type", "InternalIP", "address",
				    ip, "type", "Hostname", "address", name, "nodeInfo",
				    "kubeletVersion", "v1.30.2", "architecture", "amd64",
				    "operatingSystem", "linux"),
			  "kubelet");
	}
}

/* The u1 series of common-instancetypes: name, vCPUs, memory. */
static const struct {
	const char *name;
	int cpu;
	const char *mem;
} u1[] = {
	{"u1.nano", 1, "512Mi"},     {"u1.micro", 1, "1Gi"},    {"u1.small", 1, "2Gi"},
	{"u1.medium", 1, "4Gi"},     {"u1.2xmedium", 2, "4Gi"}, {"u1.large", 2, "8Gi"},
	{"u1.xlarge", 4, "16Gi"},    {"u1.2xlarge", 8, "32Gi"}, {"u1.4xlarge", 16, "64Gi"},
	{"u1.8xlarge", 32, "128Gi"},
};

static const char *const preferences[] = {"fedora", "rhel.9", "centos.stream9", "ubuntu",
					  "windows.11"};

static void seed_instancetypes(struct ks *ks)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(u1); i++) {
		char cpu[8];
		(void)snprintf(cpu, sizeof(cpu), "%d", u1[i].cpu);
		kv_create(ks, KS_R_CLUSTER_INSTANCETYPE,
			  json_pack("{s:{s:s, s:{s:s, s:s, s:s, s:s}}, s:{s:{s:i}, s:{s:s}}}",
				    "metadata", "name", u1[i].name, "labels",
				    "instancetype.kubevirt.io/vendor", "kubevirt.io",
				    "instancetype.kubevirt.io/common-instancetypes-version",
				    "v1.2.0", "instancetype.kubevirt.io/cpu", cpu,
				    "instancetype.kubevirt.io/memory", u1[i].mem, "spec", "cpu",
				    "guest", u1[i].cpu, "memory", "guest", u1[i].mem),
			  "virt-operator");
	}
	for (size_t i = 0; i < SHP_ARRAY_SIZE(preferences); i++)
		kv_create(ks, KS_R_CLUSTER_PREFERENCE,
			  json_pack("{s:{s:s, s:{s:s}}, s:{s:{s:s}, s:{s:s}}}", "metadata", "name",
				    preferences[i], "labels", "instancetype.kubevirt.io/vendor",
				    "kubevirt.io", "spec", "devices", "preferredDiskBus", "virtio",
				    "cpu", "preferredCPUTopology", "sockets"),
			  "virt-operator");
}

void ks_seed_cluster(struct ks *ks)
{
	static const char *const nss[] = {"default", "kube-system", "kube-public",
					  "kube-node-lease", "kubevirt"};

	for (size_t i = 0; i < SHP_ARRAY_SIZE(nss); i++)
		seed_namespace(ks, nss[i]);
	seed_nodes(ks);
	seed_kubevirt(ks);
	seed_instancetypes(ks);
}

bool kv_gate_enabled(struct ks *ks, const char *gate)
{
	json_t *kv = ks_get(ks, KS_R_KUBEVIRT, "kubevirt", "kubevirt");
	json_t *gates = kv_at(kv, "spec.configuration.developerConfiguration.featureGates");
	size_t i;
	json_t *g;

	json_array_foreach(gates, i, g)
	{
		if (strcmp(json_string_value(g) ? json_string_value(g) : "", gate) == 0)
			return true;
	}
	return false;
}

const char *kv_run_strategy(const json_t *vm)
{
	const char *rs = kv_str(vm, "spec.runStrategy");
	json_t *running = kv_at(vm, "spec.running");

	if (rs)
		return rs;
	if (json_is_boolean(running))
		return json_is_true(running) ? "Always" : "Halted";
	return "Halted";
}

bool kv_vmi_is_final(const json_t *vmi)
{
	const char *p = kv_str(vmi, "status.phase");

	return p && (strcmp(p, "Succeeded") == 0 || strcmp(p, "Failed") == 0);
}

/* ---- validating webhooks ---- */

/* 422 from a webhook: causes joined into the message, as the apiserver wraps them. */
static int webhook_invalid(struct ks_resp *resp, const char *webhook, const json_t *obj,
			   json_t *causes)
{
	struct shp_buf msg = SHP_BUF_INIT(8192);
	size_t i;
	json_t *c;
	int r;

	r = shp_buf_addf(&msg, "admission webhook \"%s\" denied the request: ", webhook);
	json_array_foreach(causes, i, c)
	{
		r |= shp_buf_addf(&msg, "%s%s", i ? ", " : "",
				  json_string_value(json_object_get(c, "message")));
	}
	(void)r;
	ks_error(resp, 422, "Invalid", msg.buf,
		 json_pack("{s:s, s:s, s:s, s:o}", "name", kv_str(obj, "metadata.name"), "group",
			   "kubevirt.io", "kind", kv_str(obj, "kind"), "causes", causes));
	shp_buf_release(&msg);
	return -1;
}

static int webhook_denied(struct ks_resp *resp, const char *webhook, const char *msg)
{
	return ks_errorf(resp, 400, "BadRequest", "admission webhook \"%s\" denied the request: %s",
			 webhook, msg);
}

static void cause(json_t *causes, const char *reason, const char *field, const char *fmt, ...)
	SHP_PRINTF(4, 5);

static void cause(json_t *causes, const char *reason, const char *field, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_array_append_new(causes, json_pack("{s:s, s:s, s:s}", "reason", reason, "message", msg,
						"field", field));
}

static const char *const strategies[] = {"Always",         "Halted", "Manual",
					 "RerunOnFailure", "Once",   "WaitAsReceiver"};

static void check_instancetype(struct ks *ks, const json_t *vm, json_t *causes)
{
	const json_t *it = kv_at(vm, "spec.instancetype");
	const char *kind = kv_str(it, "kind"), *name = kv_str(it, "name");
	const json_t *dom = kv_at(vm, "spec.template.spec.domain");
	bool ns_kind = kind && strcmp(kind, "VirtualMachineInstancetype") == 0;
	static const char *const taken[] = {"cpu", "memory", "resources.requests.memory",
					    "resources.requests.cpu"};

	if (!name) {
		cause(causes, "FieldValueRequired", "spec.instancetype.name",
		      "spec.instancetype.name is required");
		return;
	}
	if (!(ns_kind ? ks_get(ks, KS_R_INSTANCETYPE, kv_str(vm, "metadata.namespace"), name)
		      : ks_get(ks, KS_R_CLUSTER_INSTANCETYPE, NULL, name)))
		cause(causes, "FieldValueNotFound", "spec.instancetype.name",
		      "Failure to find instancetype: %s.instancetype.kubevirt.io \"%s\" not found",
		      ns_kind ? "virtualmachineinstancetypes"
			      : "virtualmachineclusterinstancetypes",
		      name);
	for (size_t i = 0; i < SHP_ARRAY_SIZE(taken); i++)
		if (kv_at(dom, taken[i]))
			cause(causes, "FieldValueInvalid", "spec.template.spec.domain",
			      "VM field(s) spec.template.spec.domain.%s conflicts with selected "
			      "instance type",
			      taken[i]);
}

static int admit_vm(struct ks *ks, struct ks_resp *resp, const json_t *vm)
{
	json_auto_t *causes = json_array();
	const json_t *dom = kv_at(vm, "spec.template.spec.domain");
	const char *rs = kv_str(vm, "spec.runStrategy");
	bool known = false;

	if (!json_is_object(kv_at(vm, "spec.template")))
		cause(causes, "FieldValueRequired", "spec.template",
		      "missing virtual machine template.");
	if (rs && kv_at(vm, "spec.running"))
		cause(causes, "FieldValueInvalid", "spec.running",
		      "Running and RunStrategy are mutually exclusive. Note that Running is "
		      "deprecated, please use RunStrategy instead");
	for (size_t i = 0; rs && i < SHP_ARRAY_SIZE(strategies); i++)
		known |= strcmp(rs, strategies[i]) == 0;
	if (rs && !known)
		cause(causes, "FieldValueInvalid", "spec.runStrategy",
		      "Invalid RunStrategy (%.64s)", rs);
	if (kv_at(vm, "spec.instancetype"))
		check_instancetype(ks, vm, causes);
	else if (json_is_object(kv_at(vm, "spec.template")) && !kv_at(dom, "memory.guest") &&
		 !kv_at(dom, "memory.hugepages.pageSize") &&
		 !kv_at(dom, "resources.requests.memory"))
		cause(causes, "FieldValueRequired", "spec.template.spec.domain.memory.guest",
		      "no memory requested, at least one of "
		      "'spec.template.spec.domain.memory.guest', "
		      "'spec.template.spec.domain.memory.hugepages.pageSize' or "
		      "'spec.template.spec.domain.resources.requests.memory' must be set");
	if (json_array_size(causes) == 0)
		return 0;
	return webhook_invalid(resp, "virtualmachine-validator.kubevirt.io", vm,
			       json_incref(causes));
}

static int admit_migration(struct ks *ks, struct ks_resp *resp, const json_t *m)
{
	const char *ns = kv_str(m, "metadata.namespace"), *vmi_name = kv_str(m, "spec.vmiName");
	json_t *vmi = vmi_name ? ks_get(ks, KS_R_VMI, ns, vmi_name) : NULL;
	json_auto_t *causes = json_array();
	const char *k;
	json_t *o;

	if (!vmi_name)
		cause(causes, "FieldValueRequired", "spec.vmiName", "vmiName is missing");
	else if (!vmi)
		cause(causes, "FieldValueInvalid", "spec.vmiName",
		      "the VMI \"%s/%.253s\" does not exist", ns, vmi_name);
	else if (kv_vmi_is_final(vmi))
		cause(causes, "FieldValueInvalid", "spec.vmiName",
		      "Cannot migrate VMI in finalized state.");
	else if (shp_strcmp0(kv_str(vmi, "status.phase"), "Running") != 0)
		cause(causes, "FieldValueInvalid", "spec.vmiName",
		      "Cannot migrate VMI, Reason: NotRunning, Message: the VMI is not running");
	json_object_foreach(ks->objs[KS_R_VMIM], k, o)
	{
		const char *p = kv_str(o, "status.phase");
		if (json_array_size(causes) || shp_strcmp0(kv_str(o, "spec.vmiName"), vmi_name) ||
		    shp_strcmp0(kv_str(o, "metadata.namespace"), ns) ||
		    (p && (!strcmp(p, "Succeeded") || !strcmp(p, "Failed"))))
			continue;
		cause(causes, "FieldValueInvalid", "spec.vmiName",
		      "in-flight migration detected. Active migration job (%s) is currently "
		      "already in progress for VMI %s.",
		      kv_str(o, "metadata.uid"), vmi_name);
	}
	if (json_array_size(causes) == 0)
		return 0;
	return webhook_invalid(resp, "migration-create-validator.kubevirt.io", m,
			       json_incref(causes));
}

int ks_admit(struct ks *ks, struct ks_resp *resp, enum ks_res res, const json_t *obj,
	     const json_t *old)
{
	bool snapshot_gate = kv_gate_enabled(ks, "Snapshot");

	switch (res) {
	case KS_R_VM:
		if (kv_at(obj, "spec.running") && !kv_at(obj, "spec.runStrategy"))
			(void)snprintf(resp->warning, sizeof(resp->warning),
				       "299 - \"spec.running is deprecated, please use "
				       "spec.runStrategy instead.\"");
		return kv_str(obj, "metadata.deletionTimestamp") ? 0 : admit_vm(ks, resp, obj);
	case KS_R_VMIM: return old ? 0 : admit_migration(ks, resp, obj);
	case KS_R_SNAPSHOT:
		if (!old && !snapshot_gate)
			return webhook_denied(
				resp, "virtualmachinesnapshot-validator.snapshot.kubevirt.io",
				"snapshot feature gate not enabled");
		return 0;
	case KS_R_RESTORE:
		if (!old && !snapshot_gate)
			return webhook_denied(
				resp, "virtualmachinerestore-validator.snapshot.kubevirt.io",
				"Snapshot/Restore feature gate not enabled");
		return 0;
	case KS_R_CLONE:
		if (!old && !snapshot_gate)
			return webhook_denied(resp, "virtualmachineclone-validator.kubevirt.io",
					      "snapshot feature gate is not enabled");
		return 0;
	default: return 0;
	}
}
