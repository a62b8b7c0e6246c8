/*
 * The helpers the VM actions share (exec-vm-internal.h): resolving the VM a step names, its
 * cluster's provider, provider failures as retryable errors, and the vms row.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "db.h"
#include "error.h"
#include "exec-vm-internal.h"
#include "json.h"
#include "provider.h"
#include "vm.h"

/* Provider failures a retry may cure become SHP_E_UNAVAIL, which the runner retries. */
int shd_vmact_failed(struct shp_error *err, const char *what, const struct shd_vm_ref *v)
{
	if (err->code == SHP_E_RATE || err->code == SHP_E_K8S)
		err->code = SHP_E_UNAVAIL;
	return shp_error_prefix(err, "%s '%s/%s' on cluster '%s'", what, v->ns, v->name,
				v->cluster);
}

int shd_vmact_resolve(struct shd_step_ctx *s, struct shd_vm_ref *v, struct shp_error *err)
{
	static const char sql[] =
		"SELECT c.id, c.environment::text, n.environment::text"
		"  FROM clusters c LEFT JOIN namespaces n ON n.name = $2 WHERE c.name = $1";
	_cleanup_(PQclearp) PGresult *res = NULL;

	if (shp_json_get_string(s->params, "cluster", true, 63, &v->cluster, err) < 0 ||
	    shp_json_get_string(s->params, "namespace", true, 63, &v->ns, err) < 0 ||
	    shp_json_get_string(s->params, "name", true, 63, &v->name, err) < 0)
		return -err->code;
	res = shd_db_exec(s->conn, sql, 2, (const char *[]){v->cluster, v->ns}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "cluster '%s' not found", v->cluster);
	if (PQgetisnull(res, 0, 2))
		return shp_error_set(err, SHP_E_NOTFOUND, "namespace '%s' is not registered",
				     v->ns);
	if (strcmp(shd_db_value(res, 0, 1), shd_db_value(res, 0, 2)) != 0)
		return shp_error_set(err, SHP_E_INVAL,
				     "namespace '%s' is %s but cluster '%s' is %s", v->ns,
				     shd_db_value(res, 0, 2), v->cluster, shd_db_value(res, 0, 1));
	v->cluster_id = strtoll(shd_db_value(res, 0, 0), NULL, 10);
	(void)snprintf(v->cluster_ids, sizeof(v->cluster_ids), "%" PRId64, v->cluster_id);
	return 0;
}

struct shd_provider *shd_vmact_provider(struct shd_step_ctx *s, const struct shd_vm_ref *v,
					struct shp_error *err)
{
	if (!s->providers) {
		shp_error_set(err, SHP_E_UNAVAIL, "no cluster providers in this daemon");
		return NULL;
	}
	return shd_providers_get(s->providers, v->cluster_id, err);
}

/* Matched by cluster, namespace and name among the active rows. */
int shd_vmact_store_observed(PGconn *conn, const struct shd_vm_ref *v, const struct shd_vm *vm,
			     struct shp_error *err)
{
	static const char sql[] =
		"UPDATE vms SET uid = $4, status = $5::vm_status, printable_status = $6,"
		" resource_version = $7, node = $8, ip = $9, error = $10, observed_at = now(),"
		" updated_at = now()"
		" WHERE cluster_id = $1 AND namespace = $2 AND name = $3 AND deleted_at IS NULL";
	const char *status = shd_vm_status_to_string(vm->status);

	return shd_db_command(conn, sql, 10,
			      (const char *[]){v->cluster_ids, v->ns, v->name, vm->uid, status,
					       vm->printable_status, vm->resource_version, vm->node,
					       vm->ip, vm->error},
			      err);
}

json_t *shd_vmact_result(const struct shd_vm_ref *v, const struct shd_vm *vm)
{
	json_t *o = json_object();

	json_object_set_new(o, "cluster", json_string(v->cluster));
	json_object_set_new(o, "namespace", json_string(vm->namespace_));
	json_object_set_new(o, "name", json_string(vm->name));
	json_object_set_new(o, "status", json_string(shd_vm_status_to_string(vm->status)));
	if (vm->node[0])
		json_object_set_new(o, "node", json_string(vm->node));
	if (vm->ip[0])
		json_object_set_new(o, "ip", json_string(vm->ip));
	return o;
}

/* The row first (its id labels the VM), so a crash after the cluster call leaves nothing
 * untracked. */
int shd_vmact_upsert_row(PGconn *conn, const struct shd_vm_ref *v, char vm_id[24],
			 struct shp_error *err)
{
	static const char sql[] =
		"INSERT INTO vms (cluster_id, namespace, name) VALUES ($1, $2, $3)"
		" ON CONFLICT (cluster_id, namespace, name) WHERE deleted_at IS NULL"
		" DO UPDATE SET updated_at = now()"
		" RETURNING id";
	_cleanup_(PQclearp) PGresult *res =
		shd_db_exec(conn, sql, 3, (const char *[]){v->cluster_ids, v->ns, v->name}, err);

	if (!res)
		return -err->code;
	(void)snprintf(vm_id, 24, "%s", shd_db_value(res, 0, 0));
	return 0;
}

int shd_vmact_wait(struct shd_step_ctx *s, struct shd_provider *p, const struct shd_vm_ref *v,
		   struct shd_vm *vm, enum shd_vm_status want, struct shp_error *err)
{
	struct shd_vm now;

	while (vm->status != want) {
		if (vm->status == SHD_VM_FAILED) {
			shp_error_set(err, SHP_E_CONFLICT, "VM '%s/%s' on cluster '%s' failed: %s",
				      v->ns, v->name, v->cluster,
				      vm->error[0] ? vm->error : vm->printable_status);
			shp_error_api_code(err, "VM_FAILED");
			shp_error_detail(err, "namespace", "%s", v->ns);
			shp_error_detail(err, "name", "%s", v->name);
			shp_error_detail(err, "cluster", "%s", v->cluster);
			shp_error_detail(err, "reason", "%s",
					 vm->error[0] ? vm->error : vm->printable_status);
			return -SHP_E_CONFLICT;
		}
		if (shd_step_sleep(s, SHD_VMACT_POLL_MS, err) < 0)
			return shp_error_prefix(err, "waiting for VM '%s/%s' to be %s (it is %s)",
						v->ns, v->name, shd_vm_status_to_string(want),
						shd_vm_status_to_string(vm->status));
		/* into a copy: a failed read leaves the last good answer in vm */
		if (p->infra.ops->get_vm(p->infra.impl, v->ns, v->name, &now, s->deadline_ns, err) <
		    0)
			return shd_vmact_failed(err, "reading VM", v);
		*vm = now;
	}
	return 0;
}
