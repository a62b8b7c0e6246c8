/*
 * The VM watcher and the health checker against the simulated cluster and a real database:
 * the first list updates the rows shepherd knows (and inserts none), power changes move a row
 * STARTING -> RUNNING with VM_STATUS_CHANGE events, a 410 re-lists without touching the
 * breaker while readers get the last good list marked stale, an unreachable cluster backs off
 * and opens the breaker then recovers, VMs that vanish are marked UNKNOWN, removed clusters
 * stop being watched, rows catch up after the database failed, and starting and stopping is
 * clean. The health checker records health, versions and capabilities, keeps the last known
 * ones when the cluster cannot tell, and marks a cluster whose provider cannot be built
 * UNHEALTHY.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "health.h"
#include "provider-sim.h"
#include "provider.h"
#include "testdb.h"
#include "util.h"
#include "watcher.h"

static struct shd_dbpool *pool;
static struct shd_provider *sim;
static atomic_bool provider_broken; /* the provider function fails, as with bad credentials */
static int64_t cluster;

static struct shd_provider *get_provider(void *ud, int64_t id, struct shp_error *err)
{
	if (atomic_load(&provider_broken)) {
		shp_error_set(err, SHP_E_PERM, "cluster 'sim1': credentials cannot be opened");
		return NULL;
	}
	return shd_provider_ref(sim);
}

static void sql(const char *q)
{
	PGresult *res = PQexec(testdb_conn, q);

	cr_assert(PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK,
		  "%s: %s", q, PQerrorMessage(testdb_conn));
	PQclear(res);
}

/* The first value of q, "" for no row (rotating buffers). */
static const char *value(const char *q)
{
	static char slots[4][1024];
	static int next;
	char *out = slots[next++ % 4];
	PGresult *res = PQexec(testdb_conn, q);

	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", q,
		     PQerrorMessage(testdb_conn));
	(void)snprintf(out, 1024, "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return out;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Wait up to ms for q's first value to be want. */
static bool wait_value(const char *q, const char *want, int ms)
{
	for (int t = 0; t < ms; t += 20) {
		if (strcmp(value(q), want) == 0)
			return true;
		sleep_ms(20);
	}
	return false;
}

#define ROW(field, name) "SELECT " field " FROM vms WHERE namespace = 'ns1' AND name = '" name "'"

static void setup(void)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_sim_options so = {.cluster_name = "sim1", .tick_ms = 40, .nodes = 2};
	struct shd_dbpool_config pc;
	json_auto_t *labels = json_pack("{ss}", "app.kubernetes.io/managed-by", "shepherd");

	testdb_setup("shp_watcher");
	pc = testdb_config;
	pc.size = 4;
	pc.checkout_timeout_ms = 5000;
	pool = shd_dbpool_new(&pc, &err);
	cr_assert(pool, "%s", err.msg);
	sim = shd_provider_sim_new(&so, &err);
	cr_assert(sim, "%s", err.msg);
	atomic_store(&provider_broken, false);
	sql("INSERT INTO clusters (name, api_url, environment, kind)"
	    " VALUES ('sim1', 'sim://sim1', 'test', 'simulated')");
	cluster = strtoll(value("SELECT id FROM clusters WHERE name = 'sim1'"), NULL, 10);
	cr_assert_eq(shd_provider_sim_seed(sim, "ns1", "vm", 3, true, labels, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(shd_provider_sim_seed(sim, "ns1", "st", 1, false, labels, &err), 0, "%s",
		     err.msg);
	/* not shepherd's: never listed */
	cr_assert_eq(shd_provider_sim_seed(sim, "ns1", "other", 2, true, NULL, &err), 0, "%s",
		     err.msg);
	/* rows for vm-1..3 and st-1; vm-4 (added later) has none */
	sql("INSERT INTO vms (cluster_id, namespace, name) SELECT id, 'ns1', n FROM clusters,"
	    " unnest(ARRAY['vm-1', 'vm-2', 'vm-3', 'st-1']) n");
}

static void teardown(void)
{
	sim = shd_provider_unref(sim);
	pool = shd_dbpool_free(pool);
	testdb_teardown();
}

TestSuite(watcher, .init = setup, .fini = teardown, .timeout = 60);

static struct shd_watcher *start_watcher_on(struct shd_dbpool *on)
{
	struct shd_watcher_config wc = {
		.pool = on,
		.provider = get_provider,
		.scan_interval_ms = 100,
		.backoff_base_ms = 20,
		.backoff_max_ms = 200,
		.breaker_threshold = 3,
		.breaker_open_ms = 300,
		.breaker_max_open_ms = 600,
		.list_timeout_ms = 5000,
		.watch_timeout_ms = 3000,
		.join_timeout_ms = 5000,
	};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_watcher *w = shd_watcher_new(&wc, &err);

	cr_assert(w, "%s", err.msg);
	cr_assert_eq(shd_watcher_start(w, &err), 0, "%s", err.msg);
	return w;
}

static struct shd_watcher *start_watcher(void)
{
	return start_watcher_on(pool);
}

/* An integer member of the watch status (-1 when not watched). */
static long long status_int(struct shd_watcher *w, const char *key)
{
	json_auto_t *st = shd_watcher_status(w, cluster, NULL);

	return st ? (long long)json_integer_value(json_object_get(st, key)) : -1;
}

static bool status_is(struct shd_watcher *w, const char *key, const char *want)
{
	json_auto_t *st = shd_watcher_status(w, cluster, NULL);

	return st && strcmp(json_string_value(json_object_get(st, key)), want) == 0;
}

static bool wait_status(struct shd_watcher *w, const char *key, const char *want, int ms)
{
	for (int t = 0; t < ms; t += 10) {
		if (status_is(w, key, want))
			return true;
		sleep_ms(10);
	}
	return false;
}

static bool wait_count(struct shd_watcher *w, const char *key, long long min, int ms)
{
	for (int t = 0; t < ms; t += 10) {
		if (status_int(w, key) >= min)
			return true;
		sleep_ms(10);
	}
	return false;
}

static void wait_listed(struct shd_watcher *w)
{
	cr_assert(wait_value(ROW("status", "vm-3"), "RUNNING", 20000), "the first list was written");
	cr_assert(wait_status(w, "state", "watching", 20000), "the watch started");
}

Test(watcher, first_list_updates_known_rows_only)
{
	_cleanup_(shd_watcher_freep) struct shd_watcher *w = start_watcher();

	wait_listed(w);
	cr_assert_str_eq(value(ROW("status", "st-1")), "STOPPED");
	cr_assert_neq(value(ROW("node", "vm-1"))[0], '\0', "the node is recorded");
	cr_assert_neq(value(ROW("ip", "vm-1"))[0], '\0', "the IP is recorded");
	cr_assert_str_eq(value(ROW("cpus", "vm-1")), "1");
	cr_assert_str_eq(value(ROW("memory_bytes", "vm-1")), "1073741824");
	cr_assert_neq(value(ROW("resource_version", "vm-1"))[0], '\0');
	cr_assert_str_eq(value(ROW("observed_at IS NOT NULL", "vm-1")), "t");
	cr_assert_str_eq(value("SELECT count(*) FROM vms"), "4", "no row was inserted");
	cr_assert_eq(status_int(w, "relists"), 1);
	cr_assert(shd_watcher_is_active(w));
}

Test(watcher, snapshot_is_the_managed_list)
{
	_cleanup_(shd_watcher_freep) struct shd_watcher *w = start_watcher();
	struct shd_vm_list l = {0};
	struct shp_error err = SHP_ERROR_INIT;
	uint64_t at = 0;
	bool stale = true;

	wait_listed(w);
	cr_assert_eq(shd_watcher_snapshot(w, cluster, &l, &stale, &at, &err), 0, "%s", err.msg);
	cr_assert_eq(l.n, 4, "the unlabelled VMs are not shepherd's");
	cr_assert_str_eq(l.items[0].name, "st-1", "sorted by namespace and name");
	cr_assert_str_eq(l.items[3].name, "vm-3");
	cr_assert_not(stale);
	cr_assert_gt(at, 0);
	cr_assert_neq(l.resource_version[0], '\0');
	shd_vm_list_release(&l);
	cr_assert_eq(shd_watcher_snapshot(w, cluster + 100, &l, &stale, NULL, &err),
		     -SHP_E_NOTFOUND);
}

Test(watcher, power_changes_reach_row_and_events)
{
	_cleanup_(shd_watcher_freep) struct shd_watcher *w = start_watcher();
	struct shp_error err = SHP_ERROR_INIT;

	wait_listed(w);
	cr_assert_eq(
		sim->infra.ops->power(sim->infra.impl, "ns1", "st-1", SHD_POWER_START, 0, &err), 0,
		"%s", err.msg);
	cr_assert(wait_value(ROW("status", "st-1"), "RUNNING", 20000));
	cr_assert(wait_value("SELECT string_agg((payload->>'from') || '>' || (payload->>'to'), ','"
			     " ORDER BY id) FROM domain_events WHERE type = 'VM_STATUS_CHANGE'"
			     " AND payload->>'name' = 'st-1'",
			     "UNKNOWN>STOPPED,STOPPED>STARTING,STARTING>RUNNING", 3000),
		  "one event per status change: %s",
		  value("SELECT string_agg(payload::text, ' ') FROM domain_events"));
	cr_assert_str_eq(value("SELECT DISTINCT status FROM domain_events"
			       " WHERE type = 'VM_STATUS_CHANGE'"),
			 "COMPLETED");
	cr_assert_str_eq(value("SELECT payload->>'cluster' || '/' || (payload->>'namespace') ||"
			       " '/' || (payload->'vm_id' = to_jsonb(v.id))::text"
			       " FROM domain_events e JOIN vms v ON v.name = e.payload->>'name'"
			       " WHERE e.payload->>'name' = 'st-1' LIMIT 1"),
			 "sim1/ns1/true");
	cr_assert_gt(status_int(w, "events"), 0);
}

Test(watcher, expired_relists_without_the_breaker)
{
	_cleanup_(shd_watcher_freep) struct shd_watcher *w = start_watcher();
	struct shp_error err = SHP_ERROR_INIT;

	wait_listed(w);
	for (int i = 1; i <= 5; i++) {
		shd_provider_sim_expire_watches(sim);
		cr_assert(wait_count(w, "relists", 1 + i, 20000), "re-list %d", i);
		cr_assert(wait_status(w, "state", "watching", 20000));
	}
	cr_assert_geq(status_int(w, "expired"), 5);
	cr_assert_eq(status_int(w, "failures"), 0, "a 410 is no failure");
	cr_assert(status_is(w, "breaker", "closed"));
	/* and the watch goes on from the new list */
	cr_assert_eq(sim->infra.ops->power(sim->infra.impl, "ns1", "vm-1", SHD_POWER_STOP, 0, &err),
		     0, "%s", err.msg);
	cr_assert(wait_value(ROW("status", "vm-1"), "STOPPED", 20000));
}

Test(watcher, readers_get_the_stale_list_while_relisting)
{
	_cleanup_(shd_watcher_freep) struct shd_watcher *w = start_watcher();
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm_list l = {0};
	bool stale = false;

	wait_listed(w);
	/* the re-list after the 410 keeps failing until the fault is cleared */
	shd_provider_sim_set_fault(sim, SHP_E_UNAVAIL, 1000);
	shd_provider_sim_expire_watches(sim);
	cr_assert(wait_count(w, "expired", 1, 20000));
	cr_assert(wait_count(w, "failures", 1, 20000));
	cr_assert_eq(shd_watcher_snapshot(w, cluster, &l, &stale, NULL, &err), 0, "%s", err.msg);
	cr_assert(stale, "the cache is stale while the re-list fails");
	cr_assert_eq(l.n, 4, "the last good list is served");
	cr_assert_str_eq(l.items[3].name, "vm-3");
	shd_vm_list_release(&l);
	shd_provider_sim_set_fault(sim, 0, 0);
	cr_assert(wait_status(w, "state", "watching", 20000));
	cr_assert(wait_status(w, "breaker", "closed", 20000));
	cr_assert_eq(shd_watcher_snapshot(w, cluster, &l, &stale, NULL, &err), 0, "%s", err.msg);
	cr_assert_not(stale);
	shd_vm_list_release(&l);
}

Test(watcher, unreachable_backs_off_opens_breaker_and_recovers)
{
	_cleanup_(shd_watcher_freep) struct shd_watcher *w = start_watcher();
	struct shp_error err = SHP_ERROR_INIT;
	long long failures;

	wait_listed(w);
	shd_provider_sim_set_unreachable(sim, true);
	cr_assert(wait_status(w, "breaker", "open", 20000), "the breaker opens");
	failures = status_int(w, "failures");
	cr_assert_geq(failures, 3);
	sleep_ms(200);
	/* while open, nothing goes out: no more failures pile up */
	cr_assert_leq(status_int(w, "failures"), failures + 1);
	shd_provider_sim_set_unreachable(sim, false);
	cr_assert(wait_status(w, "breaker", "closed", 20000), "the probe closes it");
	cr_assert(wait_status(w, "state", "watching", 20000));
	cr_assert_eq(
		sim->infra.ops->power(sim->infra.impl, "ns1", "vm-2", SHD_POWER_PAUSE, 0, &err), 0,
		"%s", err.msg);
	cr_assert(wait_value(ROW("status", "vm-2"), "PAUSED", 20000));
}

Test(watcher, provider_that_cannot_be_built_is_a_failure)
{
	_cleanup_(shd_watcher_freep) struct shd_watcher *w = NULL;
	struct shd_vm_list l = {0};
	struct shp_error err = SHP_ERROR_INIT;
	bool stale;

	atomic_store(&provider_broken, true);
	w = start_watcher();
	cr_assert(wait_count(w, "failures", 1, 20000));
	cr_assert_eq(shd_watcher_snapshot(w, cluster, &l, &stale, NULL, &err), -SHP_E_UNAVAIL);
	cr_assert(strstr(err.msg, "credentials cannot be opened"), "%s", err.msg);
	atomic_store(&provider_broken, false);
	wait_listed(w);
}

Test(watcher, vanished_vms_are_marked_unknown)
{
	_cleanup_(shd_watcher_freep) struct shd_watcher *w = start_watcher();
	struct shp_error err = SHP_ERROR_INIT;

	wait_listed(w);
	/* gone without an event: the re-list notices */
	cr_assert_eq(shd_provider_sim_remove_raw(sim, "ns1", "vm-2"), 0);
	shd_provider_sim_expire_watches(sim);
	cr_assert(wait_value(ROW("status || ':' || error", "vm-2"),
			     "UNKNOWN:deleted in the cluster", 20000));
	/* deleted through the API: the DELETED event */
	cr_assert_eq(sim->infra.ops->delete_vm(sim->infra.impl, "ns1", "vm-3", 0, &err), 0, "%s",
		     err.msg);
	cr_assert(wait_value(ROW("status || ':' || error", "vm-3"),
			     "UNKNOWN:deleted in the cluster", 20000));
	cr_assert_str_eq(value("SELECT count(*) FROM vms"), "4", "rows are never deleted");
	cr_assert_str_eq(value(ROW("status", "vm-1")), "RUNNING");
}

Test(watcher, rows_catch_up_after_database_failures)
{
	struct shd_dbpool_config pc = testdb_config;
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_dbpool *tiny;
	struct shd_watcher *w;
	PGconn *held;

	/* one connection, no waiting: while the test holds it, every write fails */
	pc.size = 1;
	pc.checkout_timeout_ms = 1;
	tiny = shd_dbpool_new(&pc, &err);
	cr_assert(tiny, "%s", err.msg);
	w = start_watcher_on(tiny);
	wait_listed(w);
	held = shd_dbpool_get(tiny, &err);
	cr_assert(held, "%s", err.msg);
	cr_assert_eq(sim->infra.ops->delete_vm(sim->infra.impl, "ns1", "vm-1", 0, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(
		sim->infra.ops->power(sim->infra.impl, "ns1", "st-1", SHD_POWER_START, 0, &err), 0,
		"%s", err.msg);
	cr_assert(wait_count(w, "failures", 1, 20000), "a write failed");
	sleep_ms(300);
	shd_dbpool_put(tiny, held);
	/* the missed events come back through a list: the deleted VM vanished from it */
	cr_assert(wait_value(ROW("status || ':' || error", "vm-1"),
			     "UNKNOWN:deleted in the cluster", 20000));
	cr_assert(wait_value(ROW("status", "st-1"), "RUNNING", 20000));
	cr_assert(wait_status(w, "breaker", "closed", 20000),
		  "database failures are not the cluster's");
	w = shd_watcher_free(w);
	tiny = shd_dbpool_free(tiny);
}

Test(watcher, removed_cluster_is_no_longer_watched)
{
	_cleanup_(shd_watcher_freep) struct shd_watcher *w = start_watcher();
	struct shd_vm_list l = {0};
	bool stale;

	wait_listed(w);
	sql("DELETE FROM vms");
	sql("DELETE FROM clusters");
	for (int t = 0; t < 5000 && status_int(w, "relists") >= 0; t += 20)
		sleep_ms(20);
	cr_assert_eq(shd_watcher_snapshot(w, cluster, &l, &stale, NULL, NULL), -SHP_E_NOTFOUND);
}

Test(watcher, start_stop_is_clean_and_quick)
{
	for (int i = 0; i < 5; i++) {
		struct shd_watcher *w = start_watcher();
		uint64_t t0;

		if (i % 2)
			wait_listed(w);
		t0 = shp_now_monotonic_ns();
		w = shd_watcher_free(w);
		cr_assert_lt(shp_now_monotonic_ns() - t0, 2000000000ull, "stopped within 2 s");
	}
	shd_watcher_free(NULL);
}

/* ---- health ------------------------------------------------------------------------------ */

static struct shd_health *new_health(void)
{
	struct shd_health_config hc = {.pool = pool, .provider = get_provider};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_health *h = shd_health_new(&hc, &err);

	cr_assert(h, "%s", err.msg);
	return h;
}

static const char *member(const json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	return s ? s : "";
}

Test(watcher, health_records_state_versions_and_capabilities)
{
	_cleanup_(shd_health_freep) struct shd_health *h = new_health();
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *st = NULL, *st2 = NULL;

	cr_assert_eq(shd_health_check_cluster(h, NULL, cluster, 0, &st, &err), 0, "%s", err.msg);
	cr_assert_str_eq(member(st, "health"), "HEALTHY");
	cr_assert_str_eq(member(st, "previous_health"), "UNKNOWN");
	cr_assert_neq(member(st, "kubevirt_version")[0], '\0');
	cr_assert(json_array_size(json_object_get(st, "capabilities")) > 0);
	cr_assert_str_eq(value("SELECT capabilities ? 'kubevirt' FROM clusters"), "t");
	cr_assert_str_eq(
		value("SELECT health_checked_at IS NOT NULL AND capabilities_at IS NOT NULL"
		      " FROM clusters"),
		"t");

	/* unreachable: the state changes, the last known versions and capabilities stay */
	shd_provider_sim_set_unreachable(sim, true);
	cr_assert_eq(shd_health_check_cluster(h, testdb_conn, cluster, 0, &st2, &err), 0, "%s",
		     err.msg);
	cr_assert_str_eq(member(st2, "health"), "UNREACHABLE");
	cr_assert_str_eq(member(st2, "previous_health"), "HEALTHY");
	cr_assert_str_eq(member(st2, "kubevirt_version"), member(st, "kubevirt_version"));
	cr_assert(json_equal(json_object_get(st2, "capabilities"),
			     json_object_get(st, "capabilities")));
	cr_assert_str_eq(member(st2, "capabilities_at"), member(st, "capabilities_at"));
	cr_assert_neq(member(st2, "health_message")[0], '\0', "it says why");
}

Test(watcher, health_of_a_provider_that_cannot_be_built)
{
	_cleanup_(shd_health_freep) struct shd_health *h = new_health();
	struct shp_error err = SHP_ERROR_INIT;
	int n = 0;

	atomic_store(&provider_broken, true);
	cr_assert_eq(shd_health_check_all(h, testdb_conn, &n, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(value("SELECT health || ': ' || health_message FROM clusters"),
			 "UNHEALTHY: cluster 'sim1': credentials cannot be opened");
	cr_assert_eq(shd_health_check_cluster(h, testdb_conn, cluster + 100, 0, NULL, &err),
		     -SHP_E_NOTFOUND);
}
