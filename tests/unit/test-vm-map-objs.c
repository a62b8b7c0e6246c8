/*
 * The mappers of snapshots, restores, clones, migrations, instance types and preferences, over
 * object shapes as KubeVirt writes them and over broken ones (absent, null, wrong types, no
 * identity, oversized names).
 */
#include "config.h"

#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "error.h"
#include "vm.h"

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &e);

	cr_assert_not_null(j, "bad fixture: %s: %s", e.text, text);
	return j;
}

#define META "\"metadata\":{\"name\":\"o1\",\"namespace\":\"ns1\",\"uid\":\"u-1\"}"

/* Objects without a usable identity: every mapper refuses them with SHP_E_INVAL. */
static const char *const no_identity[] = {
	"[]",
	"\"snap\"",
	"{}",
	"{\"metadata\":null}",
	"{\"metadata\":{\"name\":5,\"namespace\":\"ns1\"}}",
	"{\"metadata\":{\"name\":\"\",\"namespace\":\"ns1\"}}",
};

Test(vm_map_objs, identity_is_required)
{
	for (size_t i = 0; i < sizeof(no_identity) / sizeof(no_identity[0]); i++) {
		json_auto_t *j = parse(no_identity[i]);
		struct shp_error err = SHP_ERROR_INIT;
		struct shd_snapshot s;
		struct shd_restore r;
		struct shd_clone c;
		struct shd_migration m;
		struct shd_instancetype it;
		struct shd_preference p;

		cr_expect_eq(shd_snapshot_map(j, &s, &err), -SHP_E_INVAL, "%s", no_identity[i]);
		cr_expect_eq(shd_restore_map(j, &r, NULL), -SHP_E_INVAL);
		cr_expect_eq(shd_clone_map(j, &c, NULL), -SHP_E_INVAL);
		cr_expect_eq(shd_migration_map(j, &m, NULL), -SHP_E_INVAL);
		cr_expect_eq(shd_instancetype_map(j, &it, NULL), -SHP_E_INVAL);
		cr_expect_eq(shd_preference_map(j, &p, NULL), -SHP_E_INVAL);
		cr_expect_eq(err.code, SHP_E_INVAL);
	}
}

Test(vm_map_objs, namespaced_kinds_need_a_namespace)
{
	json_auto_t *j = parse("{\"metadata\":{\"name\":\"o1\"}}");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_snapshot s;
	struct shd_instancetype it;

	cr_assert_eq(shd_snapshot_map(j, &s, &err), -SHP_E_INVAL);
	cr_assert(strstr(err.msg, "metadata.namespace"), "%s", err.msg);
	cr_assert_eq(shd_instancetype_map(j, &it, NULL), 0);
	cr_assert(it.cluster_scoped);
}

Test(vm_map_objs, oversized_name_is_refused)
{
	char name[400], text[600];
	json_auto_t *j = NULL;
	struct shd_migration m;

	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	(void)snprintf(text, sizeof(text), "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"n\"}}",
		       name);
	j = parse(text);
	cr_assert_eq(shd_migration_map(j, &m, NULL), -SHP_E_INVAL);
}

struct snap_case {
	const char *text;
	const char *vm, *phase, *content, *error;
	bool ready;
};

static const struct snap_case snaps[] = {
	{"{" META ",\"spec\":{\"source\":{\"apiGroup\":\"kubevirt.io\",\"kind\":\"VirtualMachine\","
	 "\"name\":\"vm1\"}},\"status\":{\"phase\":\"Succeeded\",\"readyToUse\":true,"
	 "\"virtualMachineSnapshotContentName\":\"vmsnapshot-content-u-1\","
	 "\"creationTime\":\"2026-11-22T10:00:00Z\",\"conditions\":[{\"type\":\"Ready\","
	 "\"status\":\"True\"}]}}",
	 "vm1", "Succeeded", "vmsnapshot-content-u-1", "", true},
	{"{" META ",\"spec\":{\"source\":{\"name\":\"vm1\"}},\"status\":{\"phase\":\"InProgress\","
	 "\"readyToUse\":false}}",
	 "vm1", "InProgress", "", "", false},
	{"{" META ",\"spec\":{\"source\":{\"name\":\"vm1\"}},\"status\":{\"phase\":\"Failed\","
	 "\"error\":{\"message\":\"volume snapshot failed\"}}}",
	 "vm1", "Failed", "", "volume snapshot failed", false},
	{"{" META ",\"status\":{\"phase\":\"Failed\",\"conditions\":[{\"type\":\"Failure\","
	 "\"status\":\"True\",\"reason\":\"Deadline\"}]}}",
	 "", "Failed", "", "Deadline", false},
	/* broken: wrong types everywhere */
	{"{" META ",\"spec\":{\"source\":[1]},\"status\":{\"phase\":7,\"readyToUse\":\"yes\","
	 "\"virtualMachineSnapshotContentName\":null,\"error\":\"x\",\"conditions\":{}}}",
	 "", "", "", "", false},
	{"{" META ",\"spec\":null,\"status\":null}", "", "", "", "", false},
};

Test(vm_map_objs, snapshots)
{
	for (size_t i = 0; i < sizeof(snaps) / sizeof(snaps[0]); i++) {
		json_auto_t *j = parse(snaps[i].text);
		struct shd_snapshot s;

		cr_assert_eq(shd_snapshot_map(j, &s, NULL), 0, "case %zu", i);
		cr_expect_str_eq(s.name, "o1");
		cr_expect_str_eq(s.namespace_, "ns1");
		cr_expect_str_eq(s.uid, "u-1");
		cr_expect_str_eq(s.vm, snaps[i].vm, "case %zu", i);
		cr_expect_str_eq(s.phase, snaps[i].phase, "case %zu", i);
		cr_expect_str_eq(s.content, snaps[i].content, "case %zu", i);
		cr_expect_str_eq(s.error, snaps[i].error, "case %zu", i);
		cr_expect_eq(s.ready, snaps[i].ready, "case %zu", i);
	}
}

Test(vm_map_objs, restores)
{
	json_auto_t *ok = parse("{" META ",\"spec\":{\"target\":{\"apiGroup\":\"kubevirt.io\","
				"\"kind\":\"VirtualMachine\",\"name\":\"vm1\"},"
				"\"virtualMachineSnapshotName\":\"snap1\"},"
				"\"status\":{\"complete\":true,\"restoreTime\":\"t\"}}");
	json_auto_t *bad = parse("{" META ",\"spec\":{\"target\":\"vm1\","
				 "\"virtualMachineSnapshotName\":5},\"status\":{\"complete\":1,"
				 "\"conditions\":[{\"type\":\"Failure\",\"status\":\"True\","
				 "\"message\":\"target is running\"}]}}");
	struct shd_restore r;

	cr_assert_eq(shd_restore_map(ok, &r, NULL), 0);
	cr_expect_str_eq(r.vm, "vm1");
	cr_expect_str_eq(r.snapshot, "snap1");
	cr_expect(r.complete);
	cr_expect_str_eq(r.error, "");
	cr_assert_eq(shd_restore_map(bad, &r, NULL), 0);
	cr_expect_str_eq(r.vm, "");
	cr_expect_str_eq(r.snapshot, "");
	cr_expect_not(r.complete);
	cr_expect_str_eq(r.error, "target is running");
}

struct clone_case {
	const char *text;
	const char *kind, *source, *target, *phase, *error;
};

static const struct clone_case clones[] = {
	{"{" META ",\"spec\":{\"source\":{\"apiGroup\":\"kubevirt.io\",\"kind\":\"VirtualMachine\","
	 "\"name\":\"vm1\"},\"target\":{\"kind\":\"VirtualMachine\",\"name\":\"vm1-copy\"}},"
	 "\"status\":{\"phase\":\"Succeeded\",\"targetName\":\"vm1-copy\"}}",
	 "VirtualMachine", "vm1", "vm1-copy", "Succeeded", ""},
	{"{" META ",\"spec\":{\"source\":{\"apiGroup\":\"snapshot.kubevirt.io\","
	 "\"kind\":\"VirtualMachineSnapshot\",\"name\":\"snap1\"}},"
	 "\"status\":{\"phase\":\"RestoreInProgress\",\"targetName\":\"clone-abc\"}}",
	 "VirtualMachineSnapshot", "snap1", "clone-abc", "RestoreInProgress", ""},
	{"{" META ",\"spec\":{\"source\":{\"kind\":\"VirtualMachine\",\"name\":\"vm1\"}},"
	 "\"status\":{\"phase\":\"Failed\",\"conditions\":[{\"type\":\"Ready\","
	 "\"status\":\"False\",\"message\":\"source VM not found\"}]}}",
	 "VirtualMachine", "vm1", "", "Failed", "source VM not found"},
	{"{" META ",\"spec\":{\"source\":{}},\"status\":{\"phase\":\"Failed\"}}", "", "", "",
	 "Failed", "the clone failed"},
	{"{" META ",\"spec\":{\"source\":5,\"target\":{\"name\":[]}},\"status\":{\"phase\":{}}}",
	 "", "", "", "", ""},
};

Test(vm_map_objs, clones)
{
	for (size_t i = 0; i < sizeof(clones) / sizeof(clones[0]); i++) {
		json_auto_t *j = parse(clones[i].text);
		struct shd_clone c;

		cr_assert_eq(shd_clone_map(j, &c, NULL), 0, "case %zu", i);
		cr_expect_str_eq(c.source_kind, clones[i].kind, "case %zu", i);
		cr_expect_str_eq(c.source, clones[i].source, "case %zu", i);
		cr_expect_str_eq(c.target, clones[i].target, "case %zu", i);
		cr_expect_str_eq(c.phase, clones[i].phase, "case %zu", i);
		cr_expect_str_eq(c.error, clones[i].error, "case %zu", i);
	}
}

struct mig_case {
	const char *text;
	const char *vm, *phase, *src, *dst, *error;
	bool completed, failed, aborting;
};

static const struct mig_case migs[] = {
	{"{" META ",\"spec\":{\"vmiName\":\"vm1\"},\"status\":{\"phase\":\"Succeeded\","
	 "\"migrationState\":{\"sourceNode\":\"node-1\",\"targetNode\":\"node-2\","
	 "\"completed\":true,\"failed\":false}}}",
	 "vm1", "Succeeded", "node-1", "node-2", "", true, false, false},
	{"{" META ",\"spec\":{\"vmiName\":\"vm1\"},\"status\":{\"phase\":\"Running\","
	 "\"migrationState\":{\"sourceNode\":\"node-1\",\"abortRequested\":true}}}",
	 "vm1", "Running", "node-1", "", "", false, false, true},
	{"{" META ",\"spec\":{\"vmiName\":\"vm1\"},\"status\":{\"phase\":\"Failed\","
	 "\"migrationState\":{\"failed\":true,\"failureReason\":\"target pod crashed\"}}}",
	 "vm1", "Failed", "", "", "target pod crashed", false, true, false},
	{"{" META ",\"spec\":{\"vmiName\":\"vm1\"},\"status\":{\"phase\":\"Failed\"}}", "vm1",
	 "Failed", "", "", "the migration failed", false, true, false},
	{"{" META ",\"spec\":{\"vmiName\":\"vm1\"}}", "vm1", "", "", "", "", false, false, false},
	{"{" META ",\"spec\":[],\"status\":{\"phase\":1,\"migrationState\":\"x\"}}", "", "", "", "",
	 "", false, false, false},
};

Test(vm_map_objs, migrations)
{
	for (size_t i = 0; i < sizeof(migs) / sizeof(migs[0]); i++) {
		json_auto_t *j = parse(migs[i].text);
		struct shd_migration m;

		cr_assert_eq(shd_migration_map(j, &m, NULL), 0, "case %zu", i);
		cr_expect_str_eq(m.vm, migs[i].vm, "case %zu", i);
		cr_expect_str_eq(m.phase, migs[i].phase, "case %zu", i);
		cr_expect_str_eq(m.source_node, migs[i].src, "case %zu", i);
		cr_expect_str_eq(m.target_node, migs[i].dst, "case %zu", i);
		cr_expect_str_eq(m.error, migs[i].error, "case %zu", i);
		cr_expect_eq(m.completed, migs[i].completed, "case %zu", i);
		cr_expect_eq(m.failed, migs[i].failed, "case %zu", i);
		cr_expect_eq(m.abort_requested, migs[i].aborting, "case %zu", i);
	}
}

struct it_case {
	const char *text;
	bool cluster;
	int cpus;
	int64_t mem;
};

static const struct it_case its[] = {
	{"{\"apiVersion\":\"instancetype.kubevirt.io/v1beta1\","
	 "\"kind\":\"VirtualMachineClusterInstancetype\",\"metadata\":{\"name\":\"u1.medium\"},"
	 "\"spec\":{\"cpu\":{\"guest\":1},\"memory\":{\"guest\":\"4Gi\"}}}",
	 true, 1, 4294967296LL},
	{"{\"kind\":\"VirtualMachineInstancetype\",\"metadata\":{\"name\":\"big\","
	 "\"namespace\":\"ns1\"},\"spec\":{\"cpu\":{\"guest\":16},\"memory\":{\"guest\":\"64G\"}}}",
	 false, 16, 64000000000LL},
	{"{\"metadata\":{\"name\":\"bad\"},\"spec\":{\"cpu\":{\"guest\":\"2\"},"
	 "\"memory\":{\"guest\":\"lots\"}}}",
	 true, 0, 0},
	{"{\"metadata\":{\"name\":\"neg\"},\"spec\":{\"cpu\":{\"guest\":-1},\"memory\":{}}}", true,
	 0, 0},
	{"{\"metadata\":{\"name\":\"none\"}}", true, 0, 0},
};

Test(vm_map_objs, instancetypes)
{
	for (size_t i = 0; i < sizeof(its) / sizeof(its[0]); i++) {
		json_auto_t *j = parse(its[i].text);
		struct shd_instancetype it;

		cr_assert_eq(shd_instancetype_map(j, &it, NULL), 0, "case %zu", i);
		cr_expect_eq(it.cluster_scoped, its[i].cluster, "case %zu", i);
		cr_expect_eq(it.cpus, its[i].cpus, "case %zu", i);
		cr_expect_eq(it.memory_bytes, its[i].mem, "case %zu", i);
	}
}

Test(vm_map_objs, preferences)
{
	json_auto_t *ok = parse("{\"kind\":\"VirtualMachineClusterPreference\",\"metadata\":{"
				"\"name\":\"fedora\"},\"spec\":{\"cpu\":{\"preferredCPUTopology\":"
				"\"spread\"},\"devices\":{\"preferredDiskBus\":\"virtio\"}}}");
	json_auto_t *ns = parse("{\"metadata\":{\"name\":\"mine\",\"namespace\":\"ns1\"},"
				"\"spec\":{\"cpu\":null,\"devices\":{\"preferredDiskBus\":3}}}");
	struct shd_preference p;

	cr_assert_eq(shd_preference_map(ok, &p, NULL), 0);
	cr_expect_str_eq(p.name, "fedora");
	cr_expect(p.cluster_scoped);
	cr_expect_str_eq(p.cpu_topology, "spread");
	cr_expect_str_eq(p.disk_bus, "virtio");
	cr_assert_eq(shd_preference_map(ns, &p, NULL), 0);
	cr_expect_not(p.cluster_scoped);
	cr_expect_str_eq(p.namespace_, "ns1");
	cr_expect_str_eq(p.cpu_topology, "");
	cr_expect_str_eq(p.disk_bus, "");
}
