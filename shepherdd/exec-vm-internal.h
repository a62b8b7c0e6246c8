/*
 * What the VM actions share (exec-vm.c, exec-gov.c; implemented in exec-vm-common.c): the VM a
 * step names resolved against the registry, its cluster's provider, the mapping of provider
 * failures to retryable ones, and the vms row (upserted first, then what the cluster said).
 */
#pragma once

#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "exec.h"
#include "vm.h"

struct shp_error;
struct shd_provider;

/* The VM a step names: params cluster, namespace and name (borrowed from the step). */
struct shd_vm_ref {
	const char *cluster, *ns, *name;
	int64_t cluster_id;
	char cluster_ids[24];
};

/*
 * Read cluster, namespace and name from the step's params; the cluster must exist and the
 * namespace be registered in the cluster's environment. SHP_E_NOTFOUND, SHP_E_INVAL.
 */
int shd_vmact_resolve(struct shd_step_ctx *s, struct shd_vm_ref *v,
		      struct shp_error *err) SHP_MUSTCHECK;
/* The provider of v's cluster (a new reference), or NULL with err. */
struct shd_provider *shd_vmact_provider(struct shd_step_ctx *s, const struct shd_vm_ref *v,
					struct shp_error *err);
/*
 * Prefix err with what failed on which VM; failures a retry may cure (SHP_E_RATE, SHP_E_K8S)
 * become SHP_E_UNAVAIL, which the runner retries. Returns -err->code.
 */
int shd_vmact_failed(struct shp_error *err, const char *what, const struct shd_vm_ref *v);
/* Upsert the active vms row of v (its id into vm_id): the row comes before the VM. */
int shd_vmact_upsert_row(PGconn *conn, const struct shd_vm_ref *v, char vm_id[24],
			 struct shp_error *err) SHP_MUSTCHECK;
/* Record what the cluster said about the VM on its active row. */
int shd_vmact_store_observed(PGconn *conn, const struct shd_vm_ref *v, const struct shd_vm *vm,
			     struct shp_error *err) SHP_MUSTCHECK;
/* A step's result object for vm (new reference). */
json_t *shd_vmact_result(const struct shd_vm_ref *v, const struct shd_vm *vm);
/*
 * Poll the VM (vm holds its last answer) until it is in status want, within the step's
 * deadline, keeping the job's lease: FAILED is SHP_E_CONFLICT with code VM_FAILED, the
 * deadline SHP_E_TIMEOUT.
 */
#define SHD_VMACT_POLL_MS 250
int shd_vmact_wait(struct shd_step_ctx *s, struct shd_provider *p, const struct shd_vm_ref *v,
		   struct shd_vm *vm, enum shd_vm_status want, struct shp_error *err) SHP_MUSTCHECK;
