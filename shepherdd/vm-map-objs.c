/*
 * KubeVirt snapshots, restores, clones, migrations, instance types and preferences -> the domain
 * models of vm.h. As in vm-map.c, every field goes through a typed getter for which absent, null
 * and wrong-typed are the same "not there", and every string is copied bounded, so a malformed
 * object from a cluster gives empty fields, never a crash.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#include "util.h"
#include "vm-map-internal.h"
#include "vm.h"

static bool true_at(const json_t *j, const char *const *path)
{
	return json_is_true(obj_at(j, path));
}

static void copy(char *dst, size_t size, const char *src)
{
	(void)snprintf(dst, size, "%s", src ? src : "");
}

#define COPY(dst, src) copy((dst), sizeof(dst), (src))

/* The message (or reason) of the first condition `type` in state `state`, or NULL. */
static const char *condition(const json_t *obj, const char *type, const char *state)
{
	const json_t *conds = obj_at(obj, PATH("status", "conditions")), *c;
	size_t i;

	json_array_foreach(conds, i, c)
	{
		const char *msg = str_at(c, PATH("message"));
		if (shp_streq(str_at(c, PATH("type")), type) &&
		    shp_streq(str_at(c, PATH("status")), state))
			return msg && *msg ? msg : str_at(c, PATH("reason"));
	}
	return NULL;
}

/* name (and namespace when namespaced) must be there; what = the kind, for the message. */
static int identity(const json_t *obj, const char *what, bool namespaced, char *name,
		    size_t name_size, char *ns, size_t ns_size, struct shp_error *err)
{
	const char *n = str_at(obj, PATH("metadata", "name"));
	const char *s = str_at(obj, PATH("metadata", "namespace"));

	if (!json_is_object(obj))
		return shp_error_set(err, SHP_E_INVAL, "the %s is not an object", what);
	if (!n || !*n || strlen(n) >= name_size)
		return shp_error_set(err, SHP_E_INVAL, "the %s has no usable metadata.name", what);
	if (s && strlen(s) >= ns_size)
		s = NULL;
	if (namespaced && (!s || !*s))
		return shp_error_set(err, SHP_E_INVAL,
				     "the %s '%.60s' has no usable "
				     "metadata.namespace",
				     what, n);
	copy(name, name_size, n);
	copy(ns, ns_size, s);
	return 0;
}

int shd_snapshot_map(const json_t *obj, struct shd_snapshot *ret, struct shp_error *err)
{
	struct shd_snapshot r = {0};
	const char *why = str_at(obj, PATH("status", "error", "message"));
	int rc = identity(obj, "VirtualMachineSnapshot", true, r.name, sizeof(r.name), r.namespace_,
			  sizeof(r.namespace_), err);

	if (rc < 0)
		return rc;
	COPY(r.uid, str_at(obj, PATH("metadata", "uid")));
	COPY(r.vm, str_at(obj, PATH("spec", "source", "name")));
	COPY(r.phase, str_at(obj, PATH("status", "phase")));
	r.ready = true_at(obj, PATH("status", "readyToUse"));
	COPY(r.content, str_at(obj, PATH("status", "virtualMachineSnapshotContentName")));
	COPY(r.created_at, str_at(obj, PATH("status", "creationTime")));
	if (!why || !*why)
		why = condition(obj, "Failure", "True");
	COPY(r.error, why);
	*ret = r;
	return 0;
}

int shd_restore_map(const json_t *obj, struct shd_restore *ret, struct shp_error *err)
{
	struct shd_restore r = {0};
	int rc = identity(obj, "VirtualMachineRestore", true, r.name, sizeof(r.name), r.namespace_,
			  sizeof(r.namespace_), err);

	if (rc < 0)
		return rc;
	COPY(r.vm, str_at(obj, PATH("spec", "target", "name")));
	COPY(r.snapshot, str_at(obj, PATH("spec", "virtualMachineSnapshotName")));
	r.complete = true_at(obj, PATH("status", "complete"));
	COPY(r.error, condition(obj, "Failure", "True"));
	*ret = r;
	return 0;
}

int shd_clone_map(const json_t *obj, struct shd_clone *ret, struct shp_error *err)
{
	struct shd_clone r = {0};
	const char *target = str_at(obj, PATH("spec", "target", "name"));
	int rc = identity(obj, "VirtualMachineClone", true, r.name, sizeof(r.name), r.namespace_,
			  sizeof(r.namespace_), err);

	if (rc < 0)
		return rc;
	COPY(r.source_kind, str_at(obj, PATH("spec", "source", "kind")));
	COPY(r.source, str_at(obj, PATH("spec", "source", "name")));
	COPY(r.target, target && *target ? target : str_at(obj, PATH("status", "targetName")));
	COPY(r.phase, str_at(obj, PATH("status", "phase")));
	if (shp_streq(r.phase, "Failed")) {
		const char *why = condition(obj, "Failure", "True");
		if (!why)
			why = condition(obj, "Ready", "False");
		COPY(r.error, why ? why : "the clone failed");
	}
	*ret = r;
	return 0;
}

int shd_migration_map(const json_t *obj, struct shd_migration *ret, struct shp_error *err)
{
	struct shd_migration r = {0};
	const json_t *ms = obj_at(obj, PATH("status", "migrationState"));
	const char *why = str_at(ms, PATH("failureReason"));
	int rc = identity(obj, "VirtualMachineInstanceMigration", true, r.name, sizeof(r.name),
			  r.namespace_, sizeof(r.namespace_), err);

	if (rc < 0)
		return rc;
	COPY(r.uid, str_at(obj, PATH("metadata", "uid")));
	COPY(r.vm, str_at(obj, PATH("spec", "vmiName")));
	COPY(r.phase, str_at(obj, PATH("status", "phase")));
	COPY(r.source_node, str_at(ms, PATH("sourceNode")));
	COPY(r.target_node, str_at(ms, PATH("targetNode")));
	r.completed = true_at(ms, PATH("completed"));
	r.failed = true_at(ms, PATH("failed")) || shp_streq(r.phase, "Failed");
	r.abort_requested = true_at(ms, PATH("abortRequested"));
	if ((!why || !*why) && r.failed)
		why = condition(obj, "Failure", "True");
	if ((!why || !*why) && r.failed)
		why = "the migration failed";
	COPY(r.error, why);
	*ret = r;
	return 0;
}

/* spec.memory.guest (a quantity) and spec.cpu.guest (a positive integer), 0 when unusable. */
static void size_of(const json_t *obj, int *cpus, int64_t *mem)
{
	const json_t *g = obj_at(obj, PATH("spec", "cpu", "guest"));
	const char *m = str_at(obj, PATH("spec", "memory", "guest"));

	*cpus = json_is_integer(g) && json_integer_value(g) > 0 && json_integer_value(g) <= 4096
			? (int)json_integer_value(g)
			: 0;
	if (!m || shd_k8s_quantity_bytes(m, mem, NULL) < 0)
		*mem = 0;
}

int shd_instancetype_map(const json_t *obj, struct shd_instancetype *ret, struct shp_error *err)
{
	struct shd_instancetype r = {0};
	int rc = identity(obj, "instance type", false, r.name, sizeof(r.name), r.namespace_,
			  sizeof(r.namespace_), err);

	if (rc < 0)
		return rc;
	r.cluster_scoped = r.namespace_[0] == '\0';
	size_of(obj, &r.cpus, &r.memory_bytes);
	*ret = r;
	return 0;
}

int shd_preference_map(const json_t *obj, struct shd_preference *ret, struct shp_error *err)
{
	struct shd_preference r = {0};
	int rc = identity(obj, "preference", false, r.name, sizeof(r.name), r.namespace_,
			  sizeof(r.namespace_), err);

	if (rc < 0)
		return rc;
	r.cluster_scoped = r.namespace_[0] == '\0';
	COPY(r.cpu_topology, str_at(obj, PATH("spec", "cpu", "preferredCPUTopology")));
	COPY(r.disk_bus, str_at(obj, PATH("spec", "devices", "preferredDiskBus")));
	*ret = r;
	return 0;
}
