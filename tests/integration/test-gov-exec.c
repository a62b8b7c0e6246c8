/*
 * The execution side of governance requests against a real database and a simulated cluster:
 * a submission bound to an approved plan hash (a match runs without the level checks, a
 * mismatch is APPROVAL_INVALIDATED, the tenant check still applies), the hooks running inside
 * the transactions that start and end the execution, a failing hook that still lets the
 * execution end and the repair by gov.sync, vm.provision run twice making one row and one VM,
 * a manifest the cluster's webhook refuses leaving nothing behind, a plan changed after its
 * approval refused by the worker, and gov.expire.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "exec.h"
#include "gov-finish.h"
#include "plan.h"
#include "provider-sim.h"
#include "provider.h"
#include "testdb.h"
#include "util.h"

static struct shd_exec_engine *engine;
static struct shd_dbpool *pool;
static struct shd_providers *providers;
static char key_file[128];
static long long cluster_id;

static void sql(const char *q)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_db_command(testdb_conn, q, 0, NULL, &err), 0, "%s: %s", q, err.msg);
}

/* The first cell of q as a string ("" for NULL or no row); static storage. */
static const char *one(const char *q)
{
	static char out[4096];
	struct shp_error err = SHP_ERROR_INIT;
	PGresult *res = shd_db_exec(testdb_conn, q, 0, NULL, &err);

	cr_assert_not_null(res, "%s: %s", q, err.msg);
	(void)snprintf(out, sizeof(out), "%s",
		       PQntuples(res) && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return out;
}

static long long num(const char *q)
{
	return atoll(one(q));
}

static void setup(void)
{
	struct shd_exec_config cfg = {.default_enabled = true, .dedupe_window_s = 60};
	struct shp_error err = SHP_ERROR_INIT;

	testdb_setup("shp_govexec");
	sql("INSERT INTO users (id, name, is_admin) VALUES (1, 'alice', true), (2, 'bob', false),"
	    " (3, 'carol', false)");
	sql("INSERT INTO tenant_members (tenant_id, user_id, role) VALUES ('shop', 2, 'member')");
	sql("INSERT INTO namespaces (name, environment) VALUES ('team-a', 'test')");
	cluster_id = num("INSERT INTO clusters (name, api_url, environment, kind)"
			 " VALUES ('sim1', 'sim://sim1', 'test', 'simulated') RETURNING id");
	pool = shd_dbpool_new(&testdb_config, &err);
	cr_assert_not_null(pool, "%s", err.msg);
	(void)snprintf(key_file, sizeof(key_file), "/tmp/shp-govexec-%ld.key", (long)getpid());
	providers = shd_providers_new(pool, key_file, 4, &err);
	cr_assert_not_null(providers, "%s", err.msg);
	engine = shd_exec_engine_new(&cfg, &err);
	cr_assert_not_null(engine, "%s", err.msg);
	shd_exec_set_providers(engine, providers);
	shd_gov_set_hooks(engine);
}

static void teardown(void)
{
	engine = shd_exec_engine_free(engine);
	providers = shd_providers_free(providers);
	pool = shd_dbpool_free(pool);
	(void)unlink(key_file);
	testdb_teardown();
}

TestSuite(gov_exec, .init = setup, .fini = teardown, .timeout = 60);

/* A request of bob's: its event (PROCESSING) and, unless status is NULL, its ticket. */
static long long request(const char *type, const char *payload, const char *ticket_status)
{
	char q[2048];
	long long ev;

	(void)snprintf(q, sizeof(q),
		       "INSERT INTO domain_events (type, payload, actor_id, actor, tenant, status)"
		       " VALUES ('%s', '%s', 2, 'bob', 'shop', '%s') RETURNING id",
		       type, payload,
		       ticket_status && strcmp(ticket_status, "PENDING_APPROVAL") == 0
			       ? "PENDING"
			       : "PROCESSING");
	ev = num(q);
	if (!ticket_status)
		return ev;
	(void)snprintf(q, sizeof(q),
		       "INSERT INTO approval_tickets (event_id, request_type, status, requester_id,"
		       " requester, system, service, namespace, environment, target_name,"
		       " approval_level, runbook_url, expires_at)"
		       " VALUES (%lld, '%s', '%s', 2, 'bob', 'shop', 'front', 'team-a', 'test',"
		       " 'web-1', 2, 'https://runbook.invalid', now() + interval '7 days')",
		       ev, type, ticket_status);
	sql(q);
	return ev;
}

static json_t *manifest(const char *name, const char *memory)
{
	json_t *m = json_pack("{s:s,s:s,s:{s:s,s:s,s:{s:s}},s:{s:s,s:{s:{s:{s:{s:i},s:{}}}}}}",
			      "apiVersion", "kubevirt.io/v1", "kind", "VirtualMachine", "metadata",
			      "name", name, "namespace", "team-a", "labels",
			      "app.kubernetes.io/managed-by", "shepherd", "spec", "runStrategy",
			      "Always", "template", "spec", "domain", "cpu", "cores", 1, "devices");

	if (memory)
		json_object_set_new(
			json_object_get(json_object_get(json_object_get(json_object_get(m, "spec"),
									"template"),
							"spec"),
					"domain"),
			"memory", json_pack("{s:s}", "guest", memory));
	return m;
}

static json_t *provision_plan(const char *name, const char *memory)
{
	char target[80];

	(void)snprintf(target, sizeof(target), "team-a/%s", name);
	return json_pack("{s:[{s:s,s:[s],s:{s:s,s:s,s:s,s:o}}]}", "steps", "action", "vm.provision",
			 "targets", target, "params", "cluster", "sim1", "namespace", "team-a",
			 "name", name, "manifest", manifest(name, memory));
}

static json_t *update_plan(const char *name, const char *memory, const char *strategy);

static json_t *simple_plan(const char *action, const char *key)
{
	return json_pack("{s:[{s:s,s:[s],s:{s:s}}]}", "steps", "action", action, "targets",
			 "team-a/web-1", "params", "key", key);
}

/* Submit plan for event ev as bob with the plan's own hash (or hash) as the approval. */
static int submit(const json_t *plan, long long ev, int64_t actor, const char *hash,
		  struct shd_exec_submitted *out, struct shp_error *err)
{
	char own[SHP_SHA256_HEX_LEN + 1];
	struct shd_exec_submit s = {.tenant = "shop",
				    .plan = plan,
				    .sla = SHD_SLA_MEDIUM,
				    .priority = 50,
				    .actor_id = actor,
				    .actor = actor == 2 ? "bob" : "carol",
				    .event_id = ev,
				    .approved_plan_hash = hash};

	if (!hash) {
		cr_assert_eq(shd_plan_hash(plan, own, NULL), 0);
		s.approved_plan_hash = own;
	}
	return shd_exec_submit(engine, testdb_conn, &s, out, err);
}

static long long run_new(const json_t *plan, long long ev)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_exec_submitted out = {0};

	cr_assert_eq(submit(plan, ev, 2, NULL, &out, &err), 0, "%s", err.msg);
	(void)shd_exec_run(engine, testdb_conn, out.id, NULL, "test");
	return (long long)out.id;
}

Test(gov_exec, a_request_without_a_ticket_completes_with_its_execution)
{
	json_auto_t *plan = simple_plan("test.effect", "j");
	long long ev = request("STOP_VM", "{}", NULL);

	(void)run_new(plan, ev);
	cr_assert_str_eq(one("SELECT status FROM domain_events"), "COMPLETED");
	cr_assert_str_eq(one("SELECT string_agg(action, ',' ORDER BY id) FROM audit_log"),
			 "EXECUTION_STARTED,EXECUTION_COMPLETED");
	cr_assert_str_eq(one("SELECT details->>'ticket_id' FROM audit_log LIMIT 1"), "");
	cr_assert_str_eq(one("SELECT type || ' ' || coalesce(ticket_id, 0) FROM notifications"),
			 "REQUEST_COMPLETED 0");
}

Test(gov_exec, approved_hash_stands_in_for_the_level_checks)
{
	json_auto_t *plan = simple_plan("test.deploy", "a");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_exec_submitted out = {0};
	long long ev = request("START_VM", "{}", "APPROVED");
	char q[256], hash[SHP_SHA256_HEX_LEN + 1];

	/* bob is no admin and did not confirm: a deploy plan would need both */
	cr_assert_eq(submit(plan, ev, 2, NULL, &out, &err), 0, "%s", err.msg);
	cr_assert_eq(shd_plan_hash(plan, hash, NULL), 0);
	(void)snprintf(q, sizeof(q),
		       "SELECT approval_state || ' ' || approved_plan_hash || ' ' || event_id"
		       " FROM executions WHERE id = %lld",
		       (long long)out.id);
	cr_assert(strstr(one(q), "approved ") == one(q), "%s", one(q));
	cr_assert(strstr(one(q), hash), "the approved hash is recorded: %s", one(q));
}

Test(gov_exec, a_hash_that_does_not_match_is_approval_invalidated)
{
	json_auto_t *plan = simple_plan("test.effect", "b");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_exec_submitted out = {0};
	long long ev = request("START_VM", "{}", "APPROVED");

	cr_assert_eq(submit(plan, ev, 2,
			    "0000000000000000000000000000000000000000000000000000000000000000",
			    &out, &err),
		     -SHP_E_CONFLICT);
	cr_assert_str_eq(err.api_code, "APPROVAL_INVALIDATED");
	cr_assert_eq(num("SELECT count(*) FROM executions"), 0, "nothing is recorded");
}

Test(gov_exec, the_tenant_check_still_applies)
{
	json_auto_t *plan = simple_plan("test.effect", "c");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_exec_submitted out = {0};
	long long ev = request("START_VM", "{}", "APPROVED");

	cr_assert_eq(submit(plan, ev, 3, NULL, &out, &err), -SHP_E_PERM, "carol is no member");
}

/* Hooks that look at the execution from inside the transaction they run in. */
static char seen_start[64], seen_finish[64];

static int probe_start(PGconn *conn, int64_t id, int64_t ev, void *arg, struct shp_error *err)
{
	char ids[24];
	PGresult *res;

	(void)ev;
	(void)arg;
	(void)snprintf(ids, sizeof(ids), "%lld", (long long)id);
	res = shd_db_exec(conn,
			  /* a moment of this transaction is not before its start; one of an
			   * earlier, committed transaction is */
			  "SELECT status || ' ' || (started_at >= now()) FROM executions"
			  " WHERE id = $1",
			  1, (const char *[]){ids}, err);
	if (!res)
		return -err->code;
	(void)snprintf(seen_start, sizeof(seen_start), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

static int probe_finish(PGconn *conn, int64_t id, int64_t ev, const char *status, const char *code,
			const char *error, void *arg, struct shp_error *err)
{
	char ids[24];
	PGresult *res;

	(void)ev;
	(void)code;
	(void)error;
	(void)arg;
	(void)snprintf(ids, sizeof(ids), "%lld", (long long)id);
	res = shd_db_exec(conn,
			  "SELECT status || ' ' || (ended_at >= now()) || ' ' || $2 FROM executions"
			  " WHERE id = $1",
			  2, (const char *[]){ids, status}, err);
	if (!res)
		return -err->code;
	(void)snprintf(seen_finish, sizeof(seen_finish), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	/* a write of the hook's commits with the execution's end */
	return shd_db_command(conn, "INSERT INTO test_effects (key, job_id) VALUES ('hook', $1)", 1,
			      (const char *[]){ids}, err);
}

Test(gov_exec, hooks_run_in_the_transactions_that_start_and_end)
{
	struct shd_exec_hooks h = {.on_start = probe_start, .on_finish = probe_finish};
	json_auto_t *plan = simple_plan("test.effect", "d");
	json_auto_t *plain = simple_plan("test.effect", "e");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_exec_submitted out = {0};
	struct shd_exec_submit s = {.tenant = "shop",
				    .plan = plain,
				    .sla = SHD_SLA_MEDIUM,
				    .confirm = true,
				    .actor_id = 2,
				    .actor = "bob"};

	shd_exec_set_hooks(engine, &h);
	(void)run_new(plan, request("START_VM", "{}", "APPROVED"));
	cr_assert_str_eq(seen_start, "running true", "on_start sees its own start");
	cr_assert_str_eq(seen_finish, "succeeded true succeeded",
			 "on_finish sees the end it commits with");
	cr_assert_eq(num("SELECT count(*) FROM test_effects WHERE key = 'hook'"), 1);
	/* an execution without a request calls no hook */
	seen_start[0] = seen_finish[0] = '\0';
	cr_assert_eq(shd_exec_submit(engine, testdb_conn, &s, &out, &err), 0, "%s", err.msg);
	(void)shd_exec_run(engine, testdb_conn, out.id, NULL, "test");
	cr_assert_str_eq(seen_start, "");
	cr_assert_str_eq(seen_finish, "");
}

static int failing_finish(PGconn *conn, int64_t id, int64_t ev, const char *status,
			  const char *code, const char *error, void *arg, struct shp_error *err)
{
	(void)id;
	(void)ev;
	(void)status;
	(void)code;
	(void)error;
	(void)arg;
	if (shd_db_command(conn, "INSERT INTO test_effects (key, job_id) VALUES ('lost', 1)", 0,
			   NULL, err) < 0)
		return -err->code;
	return shp_error_set(err, SHP_E_UNAVAIL, "the hook failed on purpose");
}

Test(gov_exec, a_failing_hook_still_ends_the_execution_and_gov_sync_repairs_it)
{
	struct shd_exec_hooks h = {.on_start = shd_gov_on_start, .on_finish = failing_finish};
	json_auto_t *plan = simple_plan("test.effect", "f");
	struct shp_error err = SHP_ERROR_INIT;
	long long ev = request("START_VM", "{}", "APPROVED"), id;
	char q[256];
	int n = -1;

	shd_exec_set_hooks(engine, &h);
	id = run_new(plan, ev);
	(void)snprintf(q, sizeof(q), "SELECT status FROM executions WHERE id = %lld", id);
	cr_assert_str_eq(one(q), "succeeded", "the execution ended all the same");
	cr_assert_eq(num("SELECT count(*) FROM test_effects WHERE key = 'lost'"), 0,
		     "the hook's own write was rolled back");
	cr_assert_str_eq(one("SELECT status FROM approval_tickets"), "EXECUTING");
	cr_assert_str_eq(one("SELECT status FROM domain_events"), "PROCESSING");
	cr_assert_eq(shd_gov_sync(testdb_conn, &n, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(one("SELECT status FROM approval_tickets"), "COMPLETED");
	cr_assert_str_eq(one("SELECT status FROM domain_events"), "COMPLETED");
	cr_assert_str_eq(one("SELECT string_agg(action, ',' ORDER BY id) FROM audit_log"),
			 "EXECUTION_STARTED,EXECUTION_COMPLETED");
	cr_assert_str_eq(one("SELECT actor FROM audit_log LIMIT 1"), "shepherdd");
	cr_assert_eq(num("SELECT count(*) FROM notifications WHERE user_id = 2"
			 " AND type = 'APPROVAL_COMPLETED'"),
		     1);
	(void)request("START_VM", "{}", "APPROVED"); /* approved, yet without an execution */
	cr_assert_eq(shd_gov_sync(testdb_conn, &n, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 0, "a second pass has nothing to do (the orphan is only reported)");
	cr_assert_eq(num("SELECT count(*) FROM approval_tickets WHERE status = 'APPROVED'"), 1);
}

static int failing_start(PGconn *conn, int64_t id, int64_t ev, void *arg, struct shp_error *err)
{
	(void)conn;
	(void)id;
	(void)ev;
	(void)arg;
	return shp_error_set(err, SHP_E_UNAVAIL, "the start hook failed on purpose");
}

Test(gov_exec, a_failing_start_hook_still_runs_the_execution)
{
	struct shd_exec_hooks h = {.on_start = failing_start, .on_finish = shd_gov_on_finish};
	json_auto_t *plan = simple_plan("test.effect", "i");
	long long id;
	char q[256];

	shd_exec_set_hooks(engine, &h);
	id = run_new(plan, request("START_VM", "{}", "APPROVED"));
	(void)snprintf(q, sizeof(q), "SELECT status FROM executions WHERE id = %lld", id);
	cr_assert_str_eq(one(q), "succeeded");
	cr_assert_eq(num("SELECT count(*) FROM test_effects WHERE key = 'i'"), 1, "its step ran");
	cr_assert_str_eq(one("SELECT status FROM approval_tickets"), "COMPLETED",
			 "on_finish moved the ticket on from APPROVED all the same");
}

Test(gov_exec, governance_actions_need_an_approval_or_a_platform_admin)
{
	json_auto_t *plan = provision_plan("web-8", "1Gi");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_exec_submitted out = {0};
	struct shd_exec_submit s = {.tenant = "shop",
				    .plan = plan,
				    .sla = SHD_SLA_MEDIUM,
				    .confirm = true,
				    .actor_id = 2,
				    .actor = "bob"};

	cr_assert_eq(shd_exec_submit(engine, testdb_conn, &s, &out, &err), -SHP_E_PERM);
	cr_assert_str_eq(err.api_code, "APPROVAL_REQUIRED");
	json_decref(plan);
	plan = update_plan("web-8", "1Gi", "Always");
	s.plan = plan;
	cr_assert_eq(shd_exec_submit(engine, testdb_conn, &s, &out, &err), -SHP_E_PERM,
		     "a member's own vm.update is no way around review");
	json_object_set_new(
		json_object_get(json_array_get(json_object_get(plan, "steps"), 0), "params"),
		"force", json_true());
	cr_assert_eq(submit(plan, request("MODIFY_VM", "{}", "APPROVED"), 2, NULL, &out, &err),
		     -SHP_E_INVAL, "an unknown parameter is refused at submission");
	cr_assert(strstr(err.msg, "unknown parameter 'force'"), "%s", err.msg);
	cr_assert_eq(num("SELECT count(*) FROM executions"), 0);
}

Test(gov_exec, create_vm_runs_to_running_and_records_the_vm)
{
	json_auto_t *plan = provision_plan("web-1", "1Gi");
	long long ev = request("CREATE_VM",
			       "{\"spec\": {\"name\": \"web-1\", \"namespace\": \"team-a\","
			       " \"service\": \"front\", \"system\": \"shop\", \"template\":"
			       " \"fedora\", \"template_version\": 3, \"size\": \"small\"}}",
			       "APPROVED");
	long long id = run_new(plan, ev);
	char q[256];

	(void)snprintf(q, sizeof(q), "SELECT status FROM executions WHERE id = %lld", id);
	cr_assert_str_eq(one(q), "succeeded", "%s",
			 one("SELECT string_agg(coalesce(error, ''), ';') FROM execution_steps"));
	cr_assert_str_eq(one("SELECT status || ' ' || system || ' ' || service || ' ' || owner_id"
			     " || ' ' || template || ' ' || template_version || ' ' || size"
			     " || ' ' || revision || ' ' || (spec->>'name') FROM vms"),
			 "RUNNING shop front 2 fedora 3 small 1 web-1");
	cr_assert_eq(num("SELECT count(*) FROM vm_revisions WHERE version = 1"), 1);
	cr_assert_str_eq(one("SELECT status FROM approval_tickets"), "COMPLETED");
	cr_assert_str_eq(one("SELECT status FROM domain_events"), "COMPLETED");
	cr_assert_str_eq(one("SELECT string_agg(action || ':' || resource_name, ',' ORDER BY id)"
			     " FROM audit_log"),
			 "EXECUTION_STARTED:team-a/web-1,EXECUTION_COMPLETED:team-a/web-1");
	(void)snprintf(q, sizeof(q),
		       "SELECT count(*) FROM audit_log WHERE (details->>'execution_id')::bigint"
		       " = %lld AND details->>'ticket_id' IS NOT NULL"
		       " AND details->>'plan_hash' IS NOT NULL",
		       id);
	cr_assert_eq(num(q), 2, "audit rows name ticket, execution and plan");
	cr_assert_str_eq(one("SELECT type FROM notifications WHERE user_id = 2"),
			 "APPROVAL_COMPLETED");
}

Test(gov_exec, a_record_only_execution_completes_the_request_without_a_vm)
{
	json_auto_t *plan = provision_plan("web-7", "1Gi");
	long long ev;

	sql("INSERT INTO execution_flags (scope, enabled, updated_by) VALUES ('global', false, "
	    "'t')");
	ev = request("CREATE_VM", "{\"spec\": {\"name\": \"web-7\"}}", "APPROVED");
	(void)run_new(plan, ev);
	cr_assert_str_eq(one("SELECT status || ' ' || record_only FROM executions"),
			 "succeeded true");
	cr_assert_str_eq(one("SELECT status FROM approval_tickets"), "COMPLETED");
	cr_assert_eq(num("SELECT count(*) FROM vms"), 0, "nothing ran, nothing is recorded");
	cr_assert_str_eq(one("SELECT details->>'record_only' FROM audit_log"
			     " WHERE action = 'EXECUTION_COMPLETED'"),
			 "true");
}

static struct shd_provider *sim(void);

static json_t *update_plan(const char *name, const char *memory, const char *strategy)
{
	json_t *plan = provision_plan(name, memory);
	json_t *step = json_array_get(json_object_get(plan, "steps"), 0);
	json_t *m = json_object_get(json_object_get(step, "params"), "manifest");

	json_object_set_new(step, "action", json_string("vm.update"));
	json_object_set_new(json_object_get(m, "spec"), "runStrategy", json_string(strategy));
	return plan;
}

Test(gov_exec, modify_vm_applies_the_manifest_and_adds_a_revision)
{
	json_auto_t *create = provision_plan("web-5", "1Gi");
	json_auto_t *modify = update_plan("web-5", "2Gi", "Halted");
	const char *spec = "{\"spec\": {\"name\": \"web-5\", \"namespace\": \"team-a\","
			   " \"service\": \"front\", \"system\": \"shop\", \"template\":"
			   " \"fedora\", \"template_version\": 3, \"size\": \"small\"}}";
	struct shd_provider *p = sim();
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm_list l = {0};
	long long id;
	char q[256];

	(void)run_new(create, request("CREATE_VM", spec, "APPROVED"));
	sql("UPDATE vms SET owner_id = 1"); /* a modification keeps the owner */
	sql("UPDATE approval_tickets SET target_name = 'web-0'"); /* the open create is done */
	id = run_new(modify, request("MODIFY_VM", spec, "APPROVED"));
	(void)snprintf(q, sizeof(q), "SELECT status FROM executions WHERE id = %lld", id);
	cr_assert_str_eq(one(q), "succeeded", "%s",
			 one("SELECT string_agg(coalesce(error, ''), ';') FROM execution_steps"));
	cr_assert_str_eq(one("SELECT revision || ' ' || owner_id || ' ' || status FROM vms"
			     " WHERE deleted_at IS NULL"),
			 "2 1 STOPPING");
	cr_assert_eq(num("SELECT count(*) FROM vm_revisions"), 2);
	cr_assert_eq(
		p->infra.ops->list_vms(p->infra.impl, "team-a", "shepherd.io/vm-id", &l, 0, &err),
		0, "%s", err.msg);
	cr_assert_eq(l.n, 1, "the apply kept the row's label");
	cr_assert_eq(l.items[0].memory_bytes, 2048ll * 1024 * 1024, "and applied the new size");
	shd_vm_list_release(&l);
	shd_provider_unref(p);
}

Test(gov_exec, an_update_of_a_vm_shepherd_does_not_manage_is_refused)
{
	json_auto_t *plan = update_plan("web-6", "1Gi", "Always");
	const json_t *step = json_array_get(json_object_get(plan, "steps"), 0);
	struct shd_step_ctx s = {.conn = testdb_conn,
				 .tenant = "shop",
				 .params = json_object_get(step, "params"),
				 .deadline_ns = shp_now_monotonic_ns() + 5000000000ull,
				 .providers = providers};
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_action_find("vm.update")->run(&s, &err), -SHP_E_NOTFOUND);
	cr_assert(strstr(err.msg, "not managed by shepherd"), "%s", err.msg);
}

static struct shd_provider *sim(void)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_provider *p = shd_providers_get(providers, cluster_id, &err);

	cr_assert_not_null(p, "%s", err.msg);
	return p;
}

/* Run vm.provision's action directly, as a retried step would. */
static int provision_step(const json_t *plan, struct shp_error *err)
{
	const json_t *step = json_array_get(json_object_get(plan, "steps"), 0);
	struct shd_step_ctx s = {.conn = testdb_conn,
				 .execution_id = 1,
				 .attempt = 1,
				 .tenant = "shop",
				 .targets = json_object_get(step, "targets"),
				 .params = json_object_get(step, "params"),
				 .deadline_ns = shp_now_monotonic_ns() + 20000000000ull,
				 .providers = providers};
	int rc = shd_action_find("vm.provision")->run(&s, err);

	json_decref(s.result);
	return rc;
}

Test(gov_exec, provision_run_twice_makes_one_row_and_one_vm)
{
	json_auto_t *plan = provision_plan("web-2", "1Gi");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_provider *p = sim();
	struct shd_vm_list l = {0};
	long long row;

	cr_assert_eq(provision_step(plan, &err), 0, "%s", err.msg);
	row = num("SELECT id FROM vms WHERE name = 'web-2'");
	cr_assert_eq(provision_step(plan, &err), 0, "the retry succeeds: %s", err.msg);
	cr_assert_eq(num("SELECT count(*) FROM vms WHERE name = 'web-2'"), 1, "one row");
	cr_assert_eq(num("SELECT id FROM vms WHERE name = 'web-2'"), row, "the same row");
	cr_assert_eq(p->infra.ops->list_vms(p->infra.impl, "team-a", NULL, &l, 0, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(l.n, 1, "one VM in the cluster");
	cr_assert_eq(l.items[0].status, SHD_VM_RUNNING);
	shd_vm_list_release(&l);
	cr_assert_eq(
		p->infra.ops->list_vms(p->infra.impl, "team-a", "shepherd.io/vm-id", &l, 0, &err),
		0, "%s", err.msg);
	cr_assert_eq(l.n, 1, "labelled with its row id");
	shd_vm_list_release(&l);
	shd_provider_unref(p);
}

Test(gov_exec, a_vm_of_that_name_made_elsewhere_is_not_taken_over)
{
	json_auto_t *plan = provision_plan("web-1", "1Gi");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_provider *p = sim();

	cr_assert_eq(shd_provider_sim_seed(p, "team-a", "web", 1, true, NULL, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(provision_step(plan, &err), -SHP_E_CONFLICT);
	cr_assert_str_eq(err.api_code, "NAME_TAKEN");
	cr_assert(strstr(err.msg, "not the one this request made"), "%s", err.msg);
	cr_assert_eq(num("SELECT count(*) FROM vms WHERE deleted_at IS NULL"), 0,
		     "no active row for a VM that is not ours");
	shd_provider_unref(p);
}

Test(gov_exec, a_manifest_the_webhook_refuses_fails_without_creating_anything)
{
	json_auto_t *plan = provision_plan("web-3", NULL); /* no memory: the webhook says no */
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_provider *p = sim();
	struct shd_vm vm;
	long long ev = request("CREATE_VM", "{\"spec\": {\"name\": \"web-3\"}}", "APPROVED"), id;
	char q[256];

	cr_assert_eq(provision_step(plan, &err), -SHP_E_INVAL);
	cr_assert(strstr(err.msg, "admission webhook"), "%s", err.msg);
	cr_assert(strstr(err.msg, "dry run"), "%s", err.msg);
	id = run_new(plan, ev);
	(void)snprintf(q, sizeof(q),
		       "SELECT status || ' ' || error_code FROM executions"
		       " WHERE id = %lld",
		       id);
	cr_assert_str_eq(one(q), "failed CLUSTER_INVALID");
	cr_assert_eq(num("SELECT count(*) FROM vms"), 0, "no row");
	cr_assert_eq(p->infra.ops->get_vm(p->infra.impl, "team-a", "web-3", &vm, 0, &err),
		     -SHP_E_NOTFOUND, "no VM");
	cr_assert_str_eq(one("SELECT status || ' ' || error_code FROM approval_tickets"),
			 "FAILED CLUSTER_INVALID");
	cr_assert_str_eq(one("SELECT status FROM domain_events"), "FAILED");
	cr_assert_str_eq(one("SELECT action || ' ' || outcome || ' ' || (details->>'error_code')"
			     " FROM audit_log ORDER BY id DESC LIMIT 1"),
			 "EXECUTION_FAILED failed CLUSTER_INVALID");
	cr_assert_str_eq(one("SELECT type FROM notifications WHERE user_id = 2"), "REQUEST_FAILED");
	shd_provider_unref(p);
}

Test(gov_exec, a_plan_changed_after_its_approval_is_refused_by_the_worker)
{
	json_auto_t *plan = simple_plan("test.effect", "g");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_exec_submitted out = {0};
	long long ev = request("START_VM", "{}", "APPROVED");
	char q[256];

	cr_assert_eq(submit(plan, ev, 2, NULL, &out, &err), 0, "%s", err.msg);
	(void)snprintf(q, sizeof(q),
		       "UPDATE executions SET plan_snapshot = jsonb_set(plan_snapshot,"
		       " '{steps,0,params,key}', '\"other\"') WHERE id = %lld",
		       (long long)out.id);
	sql(q);
	(void)shd_exec_run(engine, testdb_conn, out.id, NULL, "test");
	(void)snprintf(q, sizeof(q),
		       "SELECT status || ' ' || error_code || ' ' || approval_state"
		       " FROM executions WHERE id = %lld",
		       (long long)out.id);
	cr_assert_str_eq(one(q), "rejected APPROVAL_INVALIDATED invalidated");
	cr_assert_eq(num("SELECT count(*) FROM test_effects"), 0, "nothing ran");
	cr_assert_str_eq(one("SELECT status || ' ' || error_code FROM approval_tickets"),
			 "FAILED APPROVAL_INVALIDATED");
	cr_assert_str_eq(one("SELECT status FROM domain_events"), "FAILED");
}

Test(gov_exec, cancelling_a_pending_execution_cancels_its_request)
{
	json_auto_t *plan = simple_plan("test.effect", "h");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_exec_submitted out = {0};
	long long ev = request("START_VM", "{}", "APPROVED");

	cr_assert_eq(submit(plan, ev, 2, NULL, &out, &err), 0, "%s", err.msg);
	cr_assert_eq(shd_exec_cancel(engine, testdb_conn, out.id, "bob", "changed my mind", &err),
		     0, "%s", err.msg);
	cr_assert_str_eq(one("SELECT status FROM approval_tickets"), "CANCELLED");
	cr_assert_str_eq(one("SELECT status FROM domain_events"), "CANCELLED");
	cr_assert_str_eq(one("SELECT type FROM notifications"), "REQUEST_CANCELLED");
}

Test(gov_exec, gov_expire_expires_and_warns_once)
{
	struct shp_error err = SHP_ERROR_INIT;
	int expired = -1, warned = -1;
	long long old = request("CREATE_VM", "{}", "PENDING_APPROVAL");
	long long soon = request("DELETE_VM", "{}", "PENDING_APPROVAL");
	char q[256];

	(void)snprintf(q, sizeof(q),
		       "UPDATE approval_tickets SET expires_at = now() - interval '1 minute'"
		       " WHERE event_id = %lld",
		       old);
	sql(q);
	(void)snprintf(q, sizeof(q),
		       "UPDATE approval_tickets SET expires_at = now() + interval '12 hours'"
		       " WHERE event_id = %lld",
		       soon);
	sql(q);
	cr_assert_eq(shd_gov_expire(testdb_conn, &expired, &warned, &err), 0, "%s", err.msg);
	cr_assert_eq(expired, 1);
	cr_assert_eq(warned, 1);
	(void)snprintf(q, sizeof(q),
		       "SELECT t.status || ' ' || e.status FROM approval_tickets t"
		       " JOIN domain_events e ON e.id = t.event_id WHERE e.id = %lld",
		       old);
	cr_assert_str_eq(one(q), "EXPIRED CANCELLED");
	cr_assert_str_eq(one("SELECT action FROM audit_log"), "REQUEST_EXPIRED");
	cr_assert_str_eq(one("SELECT string_agg(type, ',' ORDER BY id) FROM notifications"),
			 "REQUEST_EXPIRED,APPROVAL_EXPIRING");
	cr_assert_eq(shd_gov_expire(testdb_conn, &expired, &warned, &err), 0, "%s", err.msg);
	cr_assert_eq(expired + warned, 0, "the warning is sent once");
}
