/*
 * Resource adoption: VMs a cluster offers with the label shepherd.io/adopt=true (and nothing
 * else: discovery is label-based only) become pending adoptions; an admin adopts one (a vms
 * row, then the managed labels on the VM) or ignores it. Every decision is audited.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "error.h"
#include "json.h"
#include "log.h"
#include "provider.h"
#include "reconcile.h"
#include "shepherdd.h"
#include "util.h"

const struct shd_col shd_adoption_cols[] = {
	{"id", COL_INT},
	{"cluster_id", COL_INT},
	{"cluster", COL_TEXT},
	{"namespace", COL_TEXT},
	{"name", COL_TEXT},
	{"uid", COL_TEXT},
	{"labels", COL_JSON},
	{"summary", COL_JSON},
	{"state", COL_TEXT},
	{"discovered_at", COL_TIME},
	{"last_seen_at", COL_TIME},
	{"decided_by", COL_TEXT},
	{"decided_at", COL_TIME},
	{"vm_id", COL_INT},
};

const int shd_adoption_ncols = 14;
#define ADOPTION_SELECT SHD_ADOPTION_SELECT

/* ---- discovery ------------------------------------------------------------------------------ */

static json_t *vm_summary(const struct shd_vm *vm)
{
	return json_pack("{s:s,s:i,s:I,s:s}", "status", shd_vm_status_to_string(vm->status), "cpus",
			 vm->cpus, "memory_bytes", (json_int_t)vm->memory_bytes, "node", vm->node);
}

/* The listed VMs as [{namespace, name, uid, summary}], for jsonb_to_recordset. */
static char *candidates_json(const struct shd_vm_list *l)
{
	json_auto_t *arr = json_array();

	for (size_t i = 0; arr && i < l->n; i++) {
		const struct shd_vm *vm = &l->items[i];
		json_t *o = json_pack("{s:s,s:s,s:s,s:o}", "namespace", vm->namespace_, "name",
				      vm->name, "uid", vm->uid, "summary", vm_summary(vm));
		if (!o || json_array_append_new(arr, o) < 0)
			return NULL;
	}
	return arr ? json_dumps(arr, JSON_COMPACT) : NULL;
}

/*
 * Upsert: new candidates are inserted; a known one gets last_seen_at (and, while pending, its
 * uid and summary) refreshed; a decided row keeps its decision. VMs with a vms row are skipped.
 */
static int upsert_candidates(PGconn *conn, int64_t cluster_id, const char *json, int *ret_new,
			     struct shp_error *err)
{
	char id[24];
	_cleanup_(PQclearp) PGresult *res = NULL;
	int created = 0;

	(void)snprintf(id, sizeof(id), "%lld", (long long)cluster_id);
	res = shd_db_exec(
		conn,
		"INSERT INTO pending_adoptions AS p (cluster_id, namespace, name, uid, labels, "
		"summary)"
		" SELECT DISTINCT ON (x.namespace, x.name) $1::bigint, x.namespace, x.name, x.uid,"
		" '{\"shepherd.io/adopt\": \"true\"}'::jsonb, x.summary"
		" FROM jsonb_to_recordset($2::jsonb) AS x(namespace text, name text, uid text,"
		" summary jsonb)"
		" WHERE NOT EXISTS (SELECT 1 FROM vms v WHERE v.cluster_id = $1::bigint"
		" AND v.namespace = x.namespace AND v.name = x.name AND v.deleted_at IS NULL)"
		" ORDER BY x.namespace, x.name"
		" ON CONFLICT (cluster_id, namespace, name) DO UPDATE SET last_seen_at = now(),"
		" uid = CASE WHEN p.state = 'pending' THEN EXCLUDED.uid ELSE p.uid END,"
		" summary = CASE WHEN p.state = 'pending' THEN EXCLUDED.summary ELSE p.summary END"
		" RETURNING (xmax = 0)",
		2, (const char *[]){id, json}, err);
	if (!res)
		return shp_error_prefix(err, "recording adoption candidates");
	for (int i = 0; i < PQntuples(res); i++)
		created += strcmp(PQgetvalue(res, i, 0), "t") == 0;
	if (ret_new)
		*ret_new = created;
	return 0;
}

static int apply_labels(const struct shd_infra *infra, const char *ns, const char *name,
			int64_t vm_id, uint64_t deadline_ns, struct shp_error *err)
{
	json_auto_t *manifest = shd_adoption_label_manifest(ns, name, vm_id);

	if (!manifest)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return infra->ops->update_vm(infra->impl, manifest, false, NULL, deadline_ns, err);
}

/* Adopted VMs still offered without the managed label: label them again (best effort). */
static void relabel_adopted(PGconn *conn, const struct shd_infra *infra, int64_t cluster_id,
			    uint64_t deadline_ns)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm_list l = {0};
	_cleanup_free_ char *json = NULL;
	_cleanup_(PQclearp) PGresult *res = NULL;
	char id[24];

	if (infra->ops->list_vms(infra->impl, NULL, SHD_ADOPT_SELECTOR ",!" SHD_LABEL_MANAGED_BY,
				 &l, deadline_ns, &err) < 0) {
		log_warn("listing unlabelled adopted VMs failed, ignoring: %s", err.msg);
		return;
	}
	json = candidates_json(&l);
	shd_vm_list_release(&l);
	(void)snprintf(id, sizeof(id), "%lld", (long long)cluster_id);
	if (json)
		res = shd_db_exec(conn,
				  "SELECT a.namespace, a.name, a.vm_id FROM pending_adoptions a"
				  " JOIN jsonb_to_recordset($2::jsonb) AS x(namespace text, name "
				  "text) ON x.namespace = a.namespace AND x.name = a.name"
				  " WHERE a.cluster_id = $1 AND a.state = 'adopted'"
				  " AND a.vm_id IS NOT NULL",
				  2, (const char *[]){id, json}, &err);
	for (int i = 0; res && i < PQntuples(res); i++) {
		const char *ns = PQgetvalue(res, i, 0), *name = PQgetvalue(res, i, 1);
		if (apply_labels(infra, ns, name, strtoll(PQgetvalue(res, i, 2), NULL, 10),
				 deadline_ns, &err) < 0)
			log_warn("labelling adopted VM '%s/%s' failed, ignoring: %s", ns, name,
				 err.msg);
		else
			log_info("labelled adopted VM '%s/%s' as managed", ns, name);
	}
}

int shd_adoption_scan_cluster(PGconn *conn, const struct shd_infra *infra, int64_t cluster_id,
			      uint64_t deadline_ns, int *ret_seen, int *ret_new,
			      struct shp_error *err)
{
	struct shd_vm_list l = {0};
	_cleanup_free_ char *json = NULL;
	int seen;

	if (infra->ops->list_vms(infra->impl, NULL, SHD_ADOPT_SELECTOR, &l, deadline_ns, err) < 0)
		return shp_error_prefix(err, "listing VMs offered for adoption");
	seen = (int)l.n;
	json = candidates_json(&l);
	shd_vm_list_release(&l);
	if (!json)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (upsert_candidates(conn, cluster_id, json, ret_new, err) < 0)
		return -err->code;
	if (ret_seen)
		*ret_seen = seen;
	relabel_adopted(conn, infra, cluster_id, deadline_ns);
	return 0;
}

/* ---- decisions --------------------------------------------------------------------------- */

static json_t *adoption_query(PGconn *conn, const char *sql, int64_t id, struct shp_error *err)
{
	char ids[24];
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_t *j;

	(void)snprintf(ids, sizeof(ids), "%lld", (long long)id);
	res = shd_db_exec(conn, sql, 1, (const char *[]){ids}, err);
	if (!res)
		return NULL;
	if (PQntuples(res) == 0) {
		shp_error_set(err, SHP_E_NOTFOUND, "adoption %lld not found", (long long)id);
		return NULL;
	}
	j = shd_row_to_json(res, 0, shd_adoption_cols, shd_adoption_ncols);
	if (!j)
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return j;
}

json_t *shd_adoption_get(PGconn *conn, int64_t id, struct shp_error *err)
{
	return adoption_query(conn, ADOPTION_SELECT " WHERE a.id = $1", id, err);
}

int shd_adoption_cluster(PGconn *conn, int64_t id, int64_t *ret_cluster_id, struct shp_error *err)
{
	json_auto_t *a = shd_adoption_get(conn, id, err);

	if (!a)
		return -err->code;
	*ret_cluster_id = shp_json_int(a, "cluster_id", 0);
	return 0;
}

/* Lock the adoption (in the caller's transaction); SHP_E_CONFLICT unless it is pending. */
static json_t *lock_pending(PGconn *conn, int64_t id, struct shp_error *err)
{
	json_auto_t *a =
		adoption_query(conn, ADOPTION_SELECT " WHERE a.id = $1 FOR UPDATE OF a", id, err);
	const char *state;

	if (!a)
		return NULL;
	state = shp_json_str(a, "state");
	if (strcmp(state, "pending") != 0) {
		shp_error_set(err, SHP_E_CONFLICT, "adoption %lld was already decided: %s",
			      (long long)id, state);
		shp_error_detail(err, "state", "%s", state);
		shp_error_detail(err, "decided_by", "%s", shp_json_str(a, "decided_by"));
		return NULL;
	}
	return TAKE_PTR(a);
}

static int decide(PGconn *conn, int64_t id, const char *state, int64_t vm_id, const char *actor,
		  struct shp_error *err)
{
	char ids[24], vm[24];

	(void)snprintf(ids, sizeof(ids), "%lld", (long long)id);
	(void)snprintf(vm, sizeof(vm), "%lld", (long long)vm_id);
	return shd_db_command(conn,
			      "UPDATE pending_adoptions SET state = $2, vm_id = $3::bigint,"
			      " decided_by = $4, decided_at = now() WHERE id = $1",
			      4, (const char *[]){ids, state, vm_id ? vm : NULL, actor}, err);
}

static const char *actor_of(const struct shd_reconcile_ctx *ctx)
{
	return ctx->who && ctx->who->ident.name[0] ? ctx->who->ident.name : "shepherdd";
}

static int insert_vm(PGconn *conn, const json_t *a, int64_t *ret_id, struct shp_error *err)
{
	const json_t *sum = json_object_get(a, "summary");
	const char *status = shp_json_str(sum, "status");
	char cl[24], cpus[24], mem[24];
	_cleanup_(PQclearp) PGresult *res = NULL;

	if (!status || shd_vm_status_from_string(status) < 0)
		status = "UNKNOWN";
	(void)snprintf(cl, sizeof(cl), "%lld", (long long)shp_json_int(a, "cluster_id", 0));
	(void)snprintf(cpus, sizeof(cpus), "%lld", (long long)shp_json_int(sum, "cpus", 0));
	(void)snprintf(mem, sizeof(mem), "%lld", (long long)shp_json_int(sum, "memory_bytes", 0));
	res = shd_db_exec(
		conn,
		"INSERT INTO vms (cluster_id, namespace, name, uid, status, cpus,"
		" memory_bytes, node, observed_at)"
		" VALUES ($1, $2, $3, $4, $5::vm_status, $6, $7, $8, now()) RETURNING id",
		8,
		(const char *[]){cl, shp_json_str(a, "namespace"), shp_json_str(a, "name"),
				 shp_json_str(a, "uid"), status, cpus, mem,
				 shp_json_str(sum, "node") ? shp_json_str(sum, "node") : ""},
		err);
	if (!res) {
		if (err && err->code == SHP_E_CONFLICT)
			return shp_error_set(err, SHP_E_CONFLICT,
					     "a VM row for '%s/%s' already exists in the cluster",
					     shp_json_str(a, "namespace"), shp_json_str(a, "name"));
		/* the server's text stays out of a 400: say what is wrong in our words */
		if (err && err->code == SHP_E_INVAL)
			return shp_error_set(
				err, SHP_E_INVAL,
				"VM '%s/%s' cannot be adopted: shepherd's VM names are "
				"DNS labels of at most 63 characters",
				shp_json_str(a, "namespace"), shp_json_str(a, "name"));
		return shp_error_prefix(err, "adding the VM row");
	}
	*ret_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	return 0;
}

static int audit_decision(PGconn *conn, const struct shd_reconcile_ctx *ctx, const char *action,
			  const json_t *a, int64_t vm_id, struct shp_error *err)
{
	char name[24];
	json_auto_t *d =
		json_pack("{s:s,s:s,s:s}", "cluster", shp_json_str(a, "cluster"), "namespace",
			  shp_json_str(a, "namespace"), "name", shp_json_str(a, "name"));

	if (!d)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (vm_id)
		(void)json_object_set_new(d, "vm_id", json_integer(vm_id));
	(void)snprintf(name, sizeof(name), "%lld", (long long)shp_json_int(a, "id", 0));
	return shd_audit_write(conn, ctx->who, action, "adoption", name, "success", d, err);
}

/* The database half of adopt: one transaction. */
static int adopt_tx(PGconn *conn, int64_t id, const char *namespace_,
		    const struct shd_reconcile_ctx *ctx, json_t **ret_a, int64_t *ret_vm,
		    struct shp_error *err)
{
	json_auto_t *a = NULL;
	int64_t vm_id = 0;

	if (shd_db_begin(conn, err) < 0)
		return -err->code;
	a = lock_pending(conn, id, err);
	if (!a)
		goto fail;
	if (namespace_ && strcmp(namespace_, shp_json_str(a, "namespace")) != 0) {
		shp_error_set(err, SHP_E_INVAL, "adoption %lld is in namespace '%s', not '%.63s'",
			      (long long)id, shp_json_str(a, "namespace"), namespace_);
		shp_error_detail(err, "field", "namespace");
		goto fail;
	}
	if (insert_vm(conn, a, &vm_id, err) < 0 ||
	    decide(conn, id, "adopted", vm_id, actor_of(ctx), err) < 0 ||
	    audit_decision(conn, ctx, "ADOPTION_ADOPTED", a, vm_id, err) < 0 ||
	    shd_db_commit(conn, err) < 0)
		goto fail;
	*ret_a = TAKE_PTR(a);
	*ret_vm = vm_id;
	return 0;
fail:
	shd_db_rollback(conn);
	return -err->code;
}

int shd_adoption_adopt(PGconn *conn, const struct shd_infra *infra, int64_t id,
		       const char *namespace_, const struct shd_reconcile_ctx *ctx, json_t **ret,
		       struct shp_error *err)
{
	struct shp_error lerr = SHP_ERROR_INIT;
	json_auto_t *a = NULL;
	json_t *out;
	int64_t vm_id = 0;
	int rc = -SHP_E_UNAVAIL;

	if (adopt_tx(conn, id, namespace_, ctx, &a, &vm_id, err) < 0)
		return -err->code;
	if (infra)
		rc = apply_labels(infra, shp_json_str(a, "namespace"), shp_json_str(a, "name"),
				  vm_id, ctx->deadline_ns, &lerr);
	else
		shp_error_set(&lerr, SHP_E_UNAVAIL, "no provider for the cluster");
	if (rc < 0)
		log_warn("adopted VM '%s/%s' is not labelled yet (the next scan retries): %s",
			 shp_json_str(a, "namespace"), shp_json_str(a, "name"), lerr.msg);
	out = shd_adoption_get(conn, id, err);
	if (!out)
		return -err->code;
	(void)json_object_set_new(out, "label", json_string(rc < 0 ? "pending" : "applied"));
	if (rc < 0)
		(void)json_object_set_new(out, "label_error", json_string(lerr.msg));
	*ret = out;
	return 0;
}

int shd_adoption_ignore(PGconn *conn, int64_t id, const struct shd_reconcile_ctx *ctx, json_t **ret,
			struct shp_error *err)
{
	json_auto_t *a = NULL;
	json_t *out;

	if (shd_db_begin(conn, err) < 0)
		return -err->code;
	a = lock_pending(conn, id, err);
	if (!a || decide(conn, id, "ignored", 0, actor_of(ctx), err) < 0 ||
	    audit_decision(conn, ctx, "ADOPTION_IGNORED", a, 0, err) < 0 ||
	    shd_db_commit(conn, err) < 0) {
		shd_db_rollback(conn);
		return -err->code;
	}
	out = shd_adoption_get(conn, id, err);
	if (!out)
		return -err->code;
	*ret = out;
	return 0;
}
