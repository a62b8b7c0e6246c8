/*
 * The reconciler and adoption against a real database and the simulated cluster: matching
 * rows and VMs give nothing to report; VMs removed behind shepherd's back are ghosts, reported
 * in dry-run (nothing changed) and marked in mark mode (then unmarked when they are back); a
 * managed VM without a row is an orphan; more than half ghosts halts the run; an unreachable
 * cluster fails it; adoption scans find only labelled VMs, adopt inserts the row and labels
 * the VM, ignore sticks, and a second decision is a conflict.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "provider-sim.h"
#include "provider.h"
#include "reconcile.h"
#include "shepherdd.h"
#include "testdb.h"

static struct shd_provider *sim;
static int64_t cluster_id;
static struct shd_req who;
static struct shd_reconcile_ctx ctx = {.who = &who};

static const char *one(const char *sql)
{
	static char slots[4][1024];
	static int next;
	struct shp_error err = SHP_ERROR_INIT;
	char *out = slots[next++ % 4];
	PGresult *res = shd_db_exec(testdb_conn, sql, 0, NULL, &err);

	cr_assert(res, "%s: %s", sql, err.msg);
	(void)snprintf(out, sizeof(slots[0]), "%s",
		       PQntuples(res) && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return out;
}

static long count(const char *sql)
{
	return atol(one(sql));
}

static void setup(void)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_sim_options opt = {.cluster_name = "sim1", .tick_ms = 10};

	testdb_setup("shp_reconcile");
	cluster_id = atoll(one("INSERT INTO clusters (name, api_url, environment, kind)"
			       " VALUES ('sim1', 'sim://sim1', 'test', 'simulated') RETURNING id"));
	sim = shd_provider_sim_new(&opt, &err);
	cr_assert(sim, "%s", err.msg);
	(void)snprintf(who.ident.name, sizeof(who.ident.name), "tester");
	(void)snprintf(who.request_id, sizeof(who.request_id), "test");
}

static void teardown(void)
{
	sim = shd_provider_unref(sim);
	testdb_teardown();
}

TestSuite(reconcile, .init = setup, .fini = teardown, .timeout = 60);

/* n VMs prefix-1..n in ns, with labels (JSON text or NULL). */
static void seed(const char *ns, const char *prefix, int n, const char *labels)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_t *l = labels ? json_loads(labels, 0, NULL) : NULL;

	cr_assert_eq(shd_provider_sim_seed(sim, ns, prefix, n, true, l, &err), 0, "%s", err.msg);
	json_decref(l);
}

static void seed_managed(const char *ns, const char *prefix, int n)
{
	seed(ns, prefix, n, "{\"app.kubernetes.io/managed-by\": \"shepherd\"}");
}

/* Rows prefix-1..n in ns, an hour old (past the reconciler's grace). */
static void rows(const char *ns, const char *prefix, int n)
{
	char sql[512];

	(void)snprintf(sql, sizeof(sql),
		       "INSERT INTO vms (cluster_id, namespace, name, created_at)"
		       " SELECT %lld, '%s', '%s-' || g, now() - interval '1 hour'"
		       " FROM generate_series(1, %d) g",
		       (long long)cluster_id, ns, prefix, n);
	(void)one(sql);
}

static json_t *reconcile(enum shd_reconcile_mode mode, const struct shd_infra *infra)
{
	struct shp_error err = SHP_ERROR_INIT, perr = SHP_ERROR_INIT;
	json_t *run = NULL;

	if (!infra)
		shp_error_set(&perr, SHP_E_UNAVAIL, "no provider for this test");
	cr_assert_eq(shd_reconcile_cluster(testdb_conn, infra, &perr, cluster_id, mode, &ctx, &run,
					   &err),
		     0, "%s", err.msg);
	cr_assert(run);
	return run;
}

static const char *outcome(const json_t *run)
{
	return json_string_value(json_object_get(run, "outcome"));
}

static long marked(void)
{
	return count("SELECT count(*) FROM vms WHERE reconcile_mark = 'ghost'"
		     " AND marked_at IS NOT NULL");
}

Test(reconcile, everything_matches)
{
	json_t *run;

	seed_managed("team-a", "web", 5);
	seed("team-a", "other", 2, NULL);
	rows("team-a", "web", 5);
	run = reconcile(SHD_RECONCILE_DRY_RUN, &sim->infra);
	cr_expect_str_eq(outcome(run), "ok");
	cr_expect_eq(json_integer_value(json_object_get(run, "ghost_count")), 0);
	cr_expect_eq(json_integer_value(json_object_get(run, "orphan_count")), 0);
	cr_expect_eq(json_integer_value(json_object_get(run, "db_count")), 5);
	cr_expect_eq(json_integer_value(json_object_get(run, "cluster_count")), 5,
		     "only the managed VMs are listed");
	cr_expect_str_eq(json_string_value(json_object_get(run, "cluster")), "sim1");
	cr_expect_str_eq(json_string_value(json_object_get(run, "actor")), "tester");
	cr_expect_eq(count("SELECT count(*) FROM reconcile_runs WHERE outcome = 'ok'"), 1);
	cr_expect_eq(count("SELECT count(*) FROM audit_log WHERE action = 'RECONCILE_RUN'"
			   " AND actor = 'tester' AND resource_name = 'sim1'"),
		     1);
	json_decref(run);
}

Test(reconcile, ghosts_reported_then_marked_then_unmarked)
{
	json_t *run, *g;

	seed_managed("team-a", "web", 6);
	rows("team-a", "web", 6);
	cr_assert_eq(shd_provider_sim_remove_raw(sim, "team-a", "web-2"), 0);
	cr_assert_eq(shd_provider_sim_remove_raw(sim, "team-a", "web-5"), 0);

	run = reconcile(SHD_RECONCILE_DRY_RUN, &sim->infra);
	cr_expect_str_eq(outcome(run), "ok");
	g = json_object_get(run, "ghosts");
	cr_assert_eq(json_array_size(g), 2);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(g, 0), "name")), "web-2");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(g, 1), "name")), "web-5");
	cr_expect_gt(json_integer_value(json_object_get(json_array_get(g, 0), "id")), 0);
	cr_expect_eq(marked(), 0, "dry-run changes nothing");
	json_decref(run);

	run = reconcile(SHD_RECONCILE_MARK, &sim->infra);
	cr_expect_str_eq(outcome(run), "ok");
	cr_expect_eq(marked(), 2, "mark mode marks the ghosts");
	cr_expect_eq(count("SELECT count(*) FROM vms WHERE reconcile_mark = 'ghost'"
			   " AND name IN ('web-2', 'web-5')"),
		     2);
	cr_expect_eq(count("SELECT count(*) FROM vms"), 6, "nothing is deleted");
	json_decref(run);

	seed_managed("team-a", "web", 6); /* web-2 and web-5 are back */
	run = reconcile(SHD_RECONCILE_MARK, &sim->infra);
	cr_expect_eq(json_integer_value(json_object_get(run, "ghost_count")), 0);
	cr_expect_eq(marked(), 0, "rows present again are unmarked");
	cr_expect_eq(count("SELECT count(*) FROM vms WHERE marked_at IS NOT NULL"), 0);
	cr_expect(strstr(json_string_value(json_object_get(run, "message")), "2 unmarked"));
	cr_expect_eq(count("SELECT count(*) FROM reconcile_runs"), 3);
	json_decref(run);
}

Test(reconcile, orphans_and_young_rows)
{
	json_t *run, *o;

	seed_managed("team-a", "web", 3);
	seed_managed("team-b", "web", 1);
	rows("team-a", "web", 2);
	/* a row just created whose VM is not there yet: no ghost */
	(void)one("INSERT INTO vms (cluster_id, namespace, name)"
		  " SELECT id, 'team-a', 'fresh' FROM clusters");
	run = reconcile(SHD_RECONCILE_MARK, &sim->infra);
	cr_expect_str_eq(outcome(run), "ok");
	o = json_object_get(run, "orphans");
	cr_assert_eq(json_array_size(o), 2, "%s", json_dumps(run, 0));
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(o, 0), "namespace")),
			 "team-a");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(o, 0), "name")), "web-3");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(o, 1), "namespace")),
			 "team-b");
	cr_expect_eq(json_integer_value(json_object_get(run, "ghost_count")), 0);
	cr_expect_eq(marked(), 0);
	json_decref(run);
}

Test(reconcile, breaker_halts_without_marking)
{
	json_t *run;

	seed_managed("team-a", "web", 4);
	rows("team-a", "web", 4);
	for (int i = 1; i <= 3; i++) {
		char name[16];
		(void)snprintf(name, sizeof(name), "web-%d", i);
		cr_assert_eq(shd_provider_sim_remove_raw(sim, "team-a", name), 0);
	}
	run = reconcile(SHD_RECONCILE_MARK, &sim->infra);
	cr_expect_str_eq(outcome(run), "halted");
	cr_expect(strstr(json_string_value(json_object_get(run, "message")), "circuit breaker"));
	cr_expect_eq(json_integer_value(json_object_get(run, "ghost_count")), 3,
		     "the report still lists them");
	cr_expect_eq(marked(), 0, "nothing marked");
	cr_expect_eq(count("SELECT count(*) FROM audit_log WHERE action = 'RECONCILE_HALTED'"
			   " AND outcome = 'failed'"),
		     1);
	json_decref(run);

	/* exactly half is no reason to halt */
	seed_managed("team-a", "web", 1);
	run = reconcile(SHD_RECONCILE_MARK, &sim->infra);
	cr_expect_str_eq(outcome(run), "ok");
	cr_expect_eq(marked(), 2);
	json_decref(run);
}

Test(reconcile, unreachable_fails_without_marking)
{
	json_t *run;

	seed_managed("team-a", "web", 2);
	rows("team-a", "web", 3);
	shd_provider_sim_set_unreachable(sim, true);
	run = reconcile(SHD_RECONCILE_MARK, &sim->infra);
	cr_expect_str_eq(outcome(run), "failed");
	cr_expect(strstr(json_string_value(json_object_get(run, "message")), "listing"));
	cr_expect_eq(marked(), 0);
	json_decref(run);
	run = reconcile(SHD_RECONCILE_MARK, NULL);
	cr_expect_str_eq(outcome(run), "failed");
	cr_expect(strstr(json_string_value(json_object_get(run, "message")), "no provider"));
	json_decref(run);
	cr_expect_eq(count("SELECT count(*) FROM reconcile_runs WHERE outcome = 'failed'"), 2);
	cr_expect_eq(count("SELECT count(*) FROM audit_log WHERE action = 'RECONCILE_RUN'"
			   " AND outcome = 'failed'"),
		     2);
}

/* ---- adoption ------------------------------------------------------------------------------ */

static void scan(int want_seen, int want_new)
{
	struct shp_error err = SHP_ERROR_INIT;
	int seen = -1, created = -1;

	cr_assert_eq(shd_adoption_scan_cluster(testdb_conn, &sim->infra, cluster_id, 0, &seen,
					       &created, &err),
		     0, "%s", err.msg);
	cr_expect_eq(seen, want_seen);
	cr_expect_eq(created, want_new);
}

static int64_t adoption_of(const char *name)
{
	char sql[256];

	(void)snprintf(sql, sizeof(sql), "SELECT id FROM pending_adoptions WHERE name = '%s'",
		       name);
	return atoll(one(sql));
}

static size_t listed(const char *selector)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm_list l = {0};
	size_t n;

	cr_assert_eq(sim->infra.ops->list_vms(sim->infra.impl, NULL, selector, &l, 0, &err), 0,
		     "%s", err.msg);
	n = l.n;
	shd_vm_list_release(&l);
	return n;
}

Test(reconcile, scan_finds_only_labelled_vms)
{
	char before[64];

	seed("legacy", "db", 2, "{\"shepherd.io/adopt\": \"true\"}");
	seed("legacy", "plain", 2, NULL);
	seed("legacy", "nope", 1, "{\"shepherd.io/adopt\": \"false\"}");
	seed("legacy", "known", 1, "{\"shepherd.io/adopt\": \"true\"}");
	rows("legacy", "known", 1);
	scan(3, 2);
	cr_expect_eq(count("SELECT count(*) FROM pending_adoptions WHERE state = 'pending'"), 2);
	cr_expect_eq(count("SELECT count(*) FROM pending_adoptions WHERE name LIKE 'plain%'"
			   " OR name LIKE 'nope%' OR name LIKE 'known%'"),
		     0, "nothing without the label, nothing shepherd already has");
	cr_expect_str_eq(
		one("SELECT summary->>'status' FROM pending_adoptions WHERE name = 'db-1'"),
		"RUNNING");
	cr_expect_str_eq(one("SELECT summary->>'cpus' FROM pending_adoptions WHERE name = 'db-1'"),
			 "1");
	cr_expect_neq(strlen(one("SELECT uid FROM pending_adoptions WHERE name = 'db-1'")), 0);
	(void)snprintf(before, sizeof(before), "%s",
		       one("SELECT discovered_at FROM pending_adoptions WHERE name = 'db-1'"));
	(void)one("UPDATE pending_adoptions SET last_seen_at = now() - interval '1 hour'");
	scan(3, 0);
	cr_expect_str_eq(one("SELECT discovered_at FROM pending_adoptions WHERE name = 'db-1'"),
			 before, "discovered_at is kept");
	cr_expect_eq(count("SELECT count(*) FROM pending_adoptions"
			   " WHERE last_seen_at > now() - interval '1 minute'"),
		     2, "last_seen_at is refreshed");
}

Test(reconcile, adopt_inserts_the_row_and_labels_the_vm)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_t *a = NULL, *run;
	int64_t id, vm_id;
	char sel[64];

	seed("legacy", "db", 1, "{\"shepherd.io/adopt\": \"true\"}");
	scan(1, 1);
	id = adoption_of("db-1");
	cr_assert_eq(shd_adoption_adopt(testdb_conn, &sim->infra, id, "other", &ctx, &a, &err),
		     -SHP_E_INVAL, "a namespace other than the VM's is refused");
	err = (struct shp_error)SHP_ERROR_INIT;
	cr_assert_eq(shd_adoption_adopt(testdb_conn, &sim->infra, id, "legacy", &ctx, &a, &err), 0,
		     "%s", err.msg);
	cr_expect_str_eq(json_string_value(json_object_get(a, "state")), "adopted");
	cr_expect_str_eq(json_string_value(json_object_get(a, "label")), "applied");
	cr_expect_str_eq(json_string_value(json_object_get(a, "decided_by")), "tester");
	vm_id = json_integer_value(json_object_get(a, "vm_id"));
	cr_assert_gt(vm_id, 0);
	json_decref(a);
	cr_expect_eq(count("SELECT count(*) FROM vms WHERE namespace = 'legacy' AND name = 'db-1'"
			   " AND status = 'RUNNING' AND uid <> '' AND cpus = 1"),
		     1);
	cr_expect_eq(listed(SHD_MANAGED_SELECTOR), 1, "the VM now carries the managed label");
	(void)snprintf(sel, sizeof(sel), "shepherd.io/vm-id=%lld", (long long)vm_id);
	cr_expect_eq(listed(sel), 1, "and its row id");
	cr_expect_eq(count("SELECT count(*) FROM audit_log WHERE action = 'ADOPTION_ADOPTED'"
			   " AND actor = 'tester'"),
		     1);
	/* the reconciler now sees it as ours */
	run = reconcile(SHD_RECONCILE_DRY_RUN, &sim->infra);
	cr_expect_eq(json_integer_value(json_object_get(run, "orphan_count")), 0);
	cr_expect_eq(json_integer_value(json_object_get(run, "ghost_count")), 0);
	json_decref(run);

	err = (struct shp_error)SHP_ERROR_INIT;
	cr_expect_eq(shd_adoption_adopt(testdb_conn, &sim->infra, id, NULL, &ctx, &a, &err),
		     -SHP_E_CONFLICT, "deciding twice is a conflict");
	cr_expect_str_eq(err.details[0].key, "state");
	cr_expect_str_eq(err.details[0].value, "adopted");
	err = (struct shp_error)SHP_ERROR_INIT;
	cr_expect_eq(shd_adoption_ignore(testdb_conn, id, &ctx, &a, &err), -SHP_E_CONFLICT);
	err = (struct shp_error)SHP_ERROR_INIT;
	cr_expect_eq(shd_adoption_adopt(testdb_conn, &sim->infra, 9999, NULL, &ctx, &a, &err),
		     -SHP_E_NOTFOUND);
	scan(1, 0);
	cr_expect_str_eq(one("SELECT state FROM pending_adoptions WHERE name = 'db-1'"), "adopted");
}

Test(reconcile, ignore_sticks)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_t *a = NULL;
	int64_t id;

	seed("legacy", "db", 1, "{\"shepherd.io/adopt\": \"true\"}");
	scan(1, 1);
	id = adoption_of("db-1");
	cr_assert_eq(shd_adoption_ignore(testdb_conn, id, &ctx, &a, &err), 0, "%s", err.msg);
	cr_expect_str_eq(json_string_value(json_object_get(a, "state")), "ignored");
	json_decref(a);
	scan(1, 0);
	cr_expect_str_eq(one("SELECT state FROM pending_adoptions WHERE name = 'db-1'"), "ignored",
			 "a scan leaves a decided row decided");
	cr_expect_eq(shd_adoption_adopt(testdb_conn, &sim->infra, id, NULL, &ctx, &a, &err),
		     -SHP_E_CONFLICT);
	cr_expect_eq(count("SELECT count(*) FROM vms"), 0);
	cr_expect_eq(count("SELECT count(*) FROM audit_log WHERE action = 'ADOPTION_IGNORED'"), 1);
}

Test(reconcile, label_failure_leaves_the_adoption_standing)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_t *a = NULL;

	seed("legacy", "db", 1, "{\"shepherd.io/adopt\": \"true\"}");
	scan(1, 1);
	shd_provider_sim_set_unreachable(sim, true);
	cr_assert_eq(shd_adoption_adopt(testdb_conn, &sim->infra, adoption_of("db-1"), NULL, &ctx,
					&a, &err),
		     0, "%s", err.msg);
	cr_expect_str_eq(json_string_value(json_object_get(a, "label")), "pending");
	cr_expect(json_string_length(json_object_get(a, "label_error")) > 0);
	json_decref(a);
	cr_expect_eq(count("SELECT count(*) FROM vms"), 1);
	shd_provider_sim_set_unreachable(sim, false);
	cr_expect_eq(listed(SHD_MANAGED_SELECTOR), 0);
	scan(1, 0); /* the scan labels adopted VMs still without the label */
	cr_expect_eq(listed(SHD_MANAGED_SELECTOR), 1);
}

Test(reconcile, a_name_shepherd_cannot_hold_is_refused_cleanly)
{
	struct shp_error err = SHP_ERROR_INIT;
	char prefix[80];
	json_t *a = NULL;

	/* a valid Kubernetes name, longer than a vms row takes */
	memset(prefix, 'n', 70);
	prefix[70] = '\0';
	seed("legacy", prefix, 1, "{\"shepherd.io/adopt\": \"true\"}");
	scan(1, 1);
	cr_assert_eq(shd_adoption_adopt(testdb_conn, &sim->infra,
					atoll(one("SELECT id FROM pending_adoptions")), NULL, &ctx,
					&a, &err),
		     -SHP_E_INVAL);
	cr_expect(strstr(err.msg, "cannot be adopted"), "%s", err.msg);
	cr_expect_null(strstr(err.msg, "violates"), "the server's text stays out: %s", err.msg);
	cr_expect_eq(err.n_details, 0);
	cr_expect_str_eq(one("SELECT state FROM pending_adoptions"), "pending");
	cr_expect_eq(count("SELECT count(*) FROM vms"), 0);
}
