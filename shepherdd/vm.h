/*
 * The VM domain model and the mapper from KubeVirt objects to it. The rest of shepherd never
 * sees a VirtualMachine or VirtualMachineInstance: the provider maps them here, checking every
 * field it reads (absent, null, wrong type), so a malformed object from a cluster becomes a
 * clear error or an UNKNOWN status, never a crash or a wrong answer.
 *
 * Pure functions: no I/O, any thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cleanup.h"

struct shp_error;

/* A VM's state as shepherd shows it (no PENDING here: a VM row exists only once approved). */
enum shd_vm_status {
	SHD_VM_RUNNING,
	SHD_VM_STOPPED,
	SHD_VM_STARTING,
	SHD_VM_STOPPING,
	SHD_VM_MIGRATING,
	SHD_VM_PAUSED,
	SHD_VM_FAILED,
	SHD_VM_UNKNOWN,
	_SHD_VM_STATUS_MAX,
};

const char *shd_vm_status_to_string(enum shd_vm_status s); /* "RUNNING" */
int shd_vm_status_from_string(const char *s);              /* -1 if unknown */

#define SHD_VM_NAME_MAX 253 /* a Kubernetes object name */

struct shd_vm {
	char name[SHD_VM_NAME_MAX + 1];
	char namespace_[64];
	char uid[64];
	char resource_version[32];
	enum shd_vm_status status;
	char printable_status[32]; /* KubeVirt's own word, "" if absent */
	char run_strategy[24];     /* Always, Halted, Manual, RerunOnFailure, Once; "" if unknown */
	bool ready;
	int cpus;             /* sockets × cores × threads; 0 if not set (an instancetype) */
	int64_t memory_bytes; /* domain.memory.guest or resources.requests.memory; 0 if unset */
	char instancetype[SHD_VM_NAME_MAX + 1];
	char node[SHD_VM_NAME_MAX + 1]; /* from the VMI */
	char ip[64];                    /* the first interface's address, from the VMI */
	char error[512];                /* why the VM is FAILED or UNKNOWN, "" otherwise */
};

/*
 * Map a VirtualMachine (and its VirtualMachineInstance, or NULL when there is none) into
 * ret. SHP_E_INVAL when the VM has no usable identity (metadata.name, metadata.namespace) or
 * the VMI is not the VM's; everything else that is malformed degrades to UNKNOWN with error.
 */
int shd_vm_map(const json_t *vm, const json_t *vmi, struct shd_vm *ret,
	       struct shp_error *err) SHP_MUSTCHECK;

/*
 * Map a VirtualMachineList and a VirtualMachineInstanceList ({"items": [...]}) with one
 * lookup of the VMIs by namespace and name (sorted once, then binary search), not one scan per
 * VM. *ret (owned, free()) holds *ret_n VMs in the list's order; items that cannot be mapped
 * are skipped and counted in *ret_skipped (may be NULL).
 */
int shd_vm_map_list(const json_t *vms, const json_t *vmis, struct shd_vm **ret, size_t *ret_n,
		    size_t *ret_skipped, struct shp_error *err) SHP_MUSTCHECK;

/*
 * A Kubernetes resource quantity ("2Gi", "512M", "1.5Gi", "1024", "100m") in bytes, rounded
 * down. SHP_E_INVAL for anything else or a value over INT64_MAX.
 */
int shd_k8s_quantity_bytes(const char *q, int64_t *ret, struct shp_error *err) SHP_MUSTCHECK;

/* ---- the other domain models: snapshots, restores, clones, migrations, instance types ---- */

struct shd_snapshot {
	char name[SHD_VM_NAME_MAX + 1];
	char namespace_[64];
	char uid[64];
	char vm[SHD_VM_NAME_MAX + 1]; /* spec.source.name */
	char phase[24];               /* InProgress, Succeeded, Failed, Deleting, Unknown; "" */
	bool ready;                   /* status.readyToUse */
	char content[SHD_VM_NAME_MAX + 1]; /* status.virtualMachineSnapshotContentName */
	char created_at[40];               /* status.creationTime, RFC 3339, "" if not yet */
	char error[512];                   /* status.error.message or a Failure condition */
};

struct shd_restore {
	char name[SHD_VM_NAME_MAX + 1];
	char namespace_[64];
	char vm[SHD_VM_NAME_MAX + 1];       /* spec.target.name */
	char snapshot[SHD_VM_NAME_MAX + 1]; /* spec.virtualMachineSnapshotName */
	bool complete;                      /* status.complete */
	char error[512];
};

struct shd_clone {
	char name[SHD_VM_NAME_MAX + 1];
	char namespace_[64];
	char source_kind[32]; /* VirtualMachine or VirtualMachineSnapshot */
	char source[SHD_VM_NAME_MAX + 1];
	char target[SHD_VM_NAME_MAX + 1]; /* spec.target.name, else status.targetName */
	char phase[32]; /* SnapshotInProgress, RestoreInProgress, CreatingTargetVM, Succeeded, ...
			 */
	char error[512];
};

struct shd_migration {
	char name[SHD_VM_NAME_MAX + 1];
	char namespace_[64];
	char uid[64];
	char vm[SHD_VM_NAME_MAX + 1]; /* spec.vmiName */
	char phase[24];               /* Pending ... Running, Succeeded, Failed; "" */
	char source_node[SHD_VM_NAME_MAX + 1];
	char target_node[SHD_VM_NAME_MAX + 1];
	bool completed, failed, abort_requested;
	char error[512];
};

struct shd_instancetype {
	char name[SHD_VM_NAME_MAX + 1];
	char namespace_[64]; /* "" for a cluster instance type */
	bool cluster_scoped;
	int cpus;             /* spec.cpu.guest */
	int64_t memory_bytes; /* spec.memory.guest */
};

struct shd_preference {
	char name[SHD_VM_NAME_MAX + 1];
	char namespace_[64]; /* "" for a cluster preference */
	bool cluster_scoped;
	char cpu_topology[24]; /* spec.cpu.preferredCPUTopology, "" if unset */
	char disk_bus[16];     /* spec.devices.preferredDiskBus, "" if unset */
};

/*
 * Mappers of the other KubeVirt objects, as defensive as shd_vm_map: SHP_E_INVAL when the
 * object is not an object or has no usable metadata.name (or metadata.namespace, for the
 * namespaced kinds); every other field that is absent, null or of the wrong type is left empty.
 * Pure functions (vm-map-objs.c).
 */
int shd_snapshot_map(const json_t *obj, struct shd_snapshot *ret,
		     struct shp_error *err) SHP_MUSTCHECK;
int shd_restore_map(const json_t *obj, struct shd_restore *ret,
		    struct shp_error *err) SHP_MUSTCHECK;
int shd_clone_map(const json_t *obj, struct shd_clone *ret, struct shp_error *err) SHP_MUSTCHECK;
int shd_migration_map(const json_t *obj, struct shd_migration *ret,
		      struct shp_error *err) SHP_MUSTCHECK;
/* Cluster-scoped when metadata.namespace is absent (VirtualMachineCluster* kinds). */
int shd_instancetype_map(const json_t *obj, struct shd_instancetype *ret,
			 struct shp_error *err) SHP_MUSTCHECK;
int shd_preference_map(const json_t *obj, struct shd_preference *ret,
		       struct shp_error *err) SHP_MUSTCHECK;
