/*
 * The watcher's and the health checker's API: POST /api/v1/clusters/{name}/health runs a check
 * now and answers the new state; GET /api/v1/clusters/{name}/vms answers the watcher's cached
 * list (stale while a re-list is under way). Also the registry lookup both use.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "db.h"
#include "error.h"
#include "health.h"
#include "provider.h"
#include "shepherdd.h"
#include "util.h"
#include "watcher.h"

#define HEALTH_REQUEST_DEADLINE_MS 15000

struct shd_provider *shd_daemon_provider(void *ud, int64_t cluster_id, struct shp_error *err)
{
	struct shd_daemon *d = ud;

	if (!d->providers) {
		shp_error_set(err, SHP_E_UNAVAIL, "no cluster providers are available");
		return NULL;
	}
	return shd_providers_get(d->providers, cluster_id, err);
}

/* The id of the cluster named in the path (req->db). */
static int cluster_id(struct shd_req *req, int64_t *ret, struct shp_error *err)
{
	const char *name = req->params[0];
	_cleanup_(PQclearp) PGresult *res = NULL;

	if (shp_name_is_valid(name)) {
		res = shd_db_exec(req->db, "SELECT id FROM clusters WHERE name = $1", 1,
				  (const char *[]){name}, err);
		if (!res)
			return -err->code;
	}
	if (!res || PQntuples(res) == 0) {
		shp_error_set(err, SHP_E_NOTFOUND, "cluster '%s' not found", name);
		shp_error_detail(err, "name", "%s", name);
		return -SHP_E_NOTFOUND;
	}
	*ret = strtoll(shd_db_value(res, 0, 0), NULL, 10);
	return 0;
}

int shd_api_clusters_health(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	uint64_t deadline =
		shp_now_monotonic_ns() + (uint64_t)HEALTH_REQUEST_DEADLINE_MS * 1000000ull;
	json_auto_t *state = NULL, *details = NULL;
	PGconn *conn;
	int64_t id;

	if (!req->d->health)
		return shp_error_set(err, SHP_E_UNAVAIL, "the health checker is not running");
	if (cluster_id(req, &id, err) < 0)
		return -err->code;
	/* a cluster may take its time: the connection goes back while it answers */
	shd_dbpool_put(req->d->pool, req->db);
	req->db = NULL;
	if (shd_health_check_cluster(req->d->health, NULL, id, deadline, &state, err) < 0)
		return -err->code;
	details = json_pack("{sO sO}", "health", json_object_get(state, "health"),
			    "previous_health", json_object_get(state, "previous_health"));
	conn = shd_dbpool_get(req->d->pool, err);
	if (conn) {
		struct shp_error aerr = SHP_ERROR_INIT;

		if (shd_audit_write(conn, req, "CLUSTER_HEALTH_CHECK", "cluster", req->params[0],
				    "success", details, &aerr) < 0)
			log_warn("auditing the health check failed, ignoring: %s", aerr.msg);
		shd_dbpool_put(req->d->pool, conn);
	}
	return shd_resp_json_take(resp, 200, TAKE_PTR(state));
}

static json_t *vm_json(const struct shd_vm *vm)
{
	return json_pack("{ss ss ss ss ss ss sb si sI ss ss ss ss ss}", "namespace", vm->namespace_,
			 "name", vm->name, "uid", vm->uid, "status",
			 shd_vm_status_to_string(vm->status), "printable_status",
			 vm->printable_status, "run_strategy", vm->run_strategy, "ready", vm->ready,
			 "cpus", vm->cpus, "memory_bytes", (json_int_t)vm->memory_bytes,
			 "instancetype", vm->instancetype, "node", vm->node, "ip", vm->ip, "error",
			 vm->error, "resource_version", vm->resource_version);
}

/* {"cluster", "stale", "resource_version", "observed_at", "items": [...]}; "watch" is added */
static json_t *vms_json(const char *name, const struct shd_vm_list *l, bool stale,
			uint64_t observed_at_us, const char *ns)
{
	json_auto_t *items = json_array();
	char at[40];

	if (!items)
		return NULL;
	for (size_t i = 0; i < l->n; i++) {
		if (ns && strcmp(l->items[i].namespace_, ns) != 0)
			continue;
		if (json_array_append_new(items, vm_json(&l->items[i])) < 0)
			return NULL;
	}
	shp_format_rfc3339(observed_at_us, at, sizeof(at));
	return json_pack("{ss sb ss ss sO}", "cluster", name, "stale", stale, "resource_version",
			 l->resource_version, "observed_at", at, "items", items);
}

int shd_api_clusters_vms(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	const char *ns = shd_req_query(req, "namespace");
	struct shd_vm_list l = {0};
	uint64_t observed = 0;
	bool stale = false;
	json_t *j;
	int64_t id;

	if (ns && shd_validate_name("namespace", ns, err) < 0)
		return -err->code;
	if (cluster_id(req, &id, err) < 0)
		return -err->code;
	if (!req->d->watcher || !shd_watcher_is_active(req->d->watcher))
		return shp_error_set(err, SHP_E_UNAVAIL,
				     "this daemon does not watch the clusters now (another daemon "
				     "leads); ask again or ask the leader");
	if (shd_watcher_snapshot(req->d->watcher, id, &l, &stale, &observed, err) < 0) {
		if (err->code == SHP_E_NOTFOUND)
			return shp_error_set(err, SHP_E_UNAVAIL,
					     "the watch of cluster '%s' has not started yet",
					     req->params[0]);
		return -err->code;
	}
	j = vms_json(req->params[0], &l, stale, observed, ns);
	shd_vm_list_release(&l);
	if (!j)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	/* how the watch is doing: state, breaker, counters (absent if it stopped meanwhile) */
	(void)json_object_set_new(j, "watch", shd_watcher_status(req->d->watcher, id, NULL));
	return shd_resp_json_take(resp, 200, j);
}
