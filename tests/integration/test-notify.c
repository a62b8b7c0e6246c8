/*
 * The inbox sender against a real database: a notification to one user is one row with its
 * fields; the approvers of an environment are every user holding platform-admin or approver
 * there, through role bindings, principal mappings or users.is_admin, each once, and nobody
 * else (operators, viewers, other environments, disabled users); rows are written in the
 * caller's transaction and vanish with it; an unknown environment is refused; a notification
 * with a coalescing key replaces the user's unread one of that key within its window; the
 * sender is chosen by name. Also
 * shd_policy_load reads the default matrix of the schema.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "gov.h"
#include "testdb.h"

static void setup(void)
{
	testdb_setup("shp_notify");
}

TestSuite(notify, .init = setup, .fini = testdb_teardown, .timeout = 60);

static void exec_ok(const char *sql)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_db_command(testdb_conn, sql, 0, NULL, &err), 0, "%s: %s", sql, err.msg);
}

/* The one text value of sql. */
static char *value_of(const char *sql)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGresult *res = shd_db_exec(testdb_conn, sql, 0, NULL, &err);
	char *v;

	cr_assert(res, "%s: %s", sql, err.msg);
	cr_assert_eq(PQntuples(res), 1, "%s", sql);
	v = strdup(PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
	PQclear(res);
	return v;
}

static int64_t user(const char *name)
{
	char sql[256];
	char *v;
	int64_t id;

	(void)snprintf(sql, sizeof(sql), "INSERT INTO users (name) VALUES ('%s') RETURNING id",
		       name);
	v = value_of(sql);
	id = strtoll(v, NULL, 10);
	free(v);
	return id;
}

static void people(void)
{
	(void)user("ann"); /* approver in test */
	(void)user("ben"); /* approver in prod */
	(void)user("cid"); /* approver in test by binding and by mapping: counted once */
	(void)user("dot"); /* operator in test: not an approver */
	(void)user("eve"); /* approver in test, disabled */
	(void)user("fay"); /* platform-admin in test and prod */
	(void)user("gus"); /* users.is_admin */
	(void)user("hal"); /* a mapping that is disabled */
	exec_ok("UPDATE users SET is_admin = true WHERE name = 'gus'");
	exec_ok("UPDATE users SET disabled_at = now() WHERE name = 'eve'");
	exec_ok("INSERT INTO role_bindings (user_id, role, allowed_environments)"
		" SELECT id, r::platform_role, e::environment[] FROM users"
		" JOIN (VALUES ('ann', 'approver', '{test}'), ('ben', 'approver', '{prod}'),"
		"              ('cid', 'approver', '{test}'), ('dot', 'operator', '{test}'),"
		"              ('eve', 'approver', '{test}'),"
		"              ('fay', 'platform-admin', '{test,prod}')) AS b(n, r, e)"
		"   ON b.n = users.name");
	exec_ok("INSERT INTO rbac_mappings (principal_kind, principal, user_name, role,"
		"   allowed_environments, enabled) VALUES"
		" ('unix', 'cid', 'cid', 'approver', '{test}', true),"
		" ('unix', 'hal', 'hal', 'approver', '{test}', false)");
}

static char *recipients(const char *type)
{
	char sql[512];

	(void)snprintf(sql, sizeof(sql),
		       "SELECT coalesce(string_agg(u.name, ' ' ORDER BY u.name), '')"
		       "  FROM notifications n JOIN users u ON u.id = n.user_id"
		       " WHERE n.type = '%s'",
		       type);
	return value_of(sql);
}

Test(notify, to_approvers_of_an_environment)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_notification n = {.type = "APPROVAL_PENDING", .title = "a VM waits", .body = ""};
	char *who;

	people();
	cr_assert_eq(shd_notify_inbox.to_approvers(testdb_conn, 0, &n, &err), 0, "%s", err.msg);
	who = recipients("APPROVAL_PENDING");
	cr_assert_str_eq(who, "ann cid fay gus");
	free(who);
	n.type = "PROD_PENDING";
	cr_assert_eq(shd_notify_inbox.to_approvers(testdb_conn, 1, &n, &err), 0, "%s", err.msg);
	who = recipients("PROD_PENDING");
	cr_assert_str_eq(who, "ben fay gus");
	free(who);
	n.type = "ANY_PENDING";
	cr_assert_eq(shd_notify_inbox.to_approvers(testdb_conn, -1, &n, &err), 0, "%s", err.msg);
	who = recipients("ANY_PENDING");
	cr_assert_str_eq(who, "ann ben cid fay gus", "each approver of any environment once");
	free(who);
	cr_assert_eq(shd_notify_inbox.to_approvers(testdb_conn, 2, &n, &err), -SHP_E_INVAL);
}

Test(notify, to_user_with_data_and_ticket_in_the_callers_transaction)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_t *data = json_pack("{s:i}", "request_id", 12);
	struct shd_notification n = {
		.type = "APPROVAL_COMPLETED", .title = "done", .body = "it ran", .data = data};
	int64_t ann = user("ann");
	char *v;

	cr_assert_eq(shd_db_begin(testdb_conn, &err), 0);
	cr_assert_eq(shd_notify_inbox.to_user(testdb_conn, ann, &n, &err), 0, "%s", err.msg);
	shd_db_rollback(testdb_conn);
	v = value_of("SELECT count(*) FROM notifications");
	cr_assert_str_eq(v, "0", "rolled back with the caller's transaction");
	free(v);
	cr_assert_eq(shd_notify_inbox.to_user(testdb_conn, ann, &n, &err), 0, "%s", err.msg);
	v = value_of("SELECT type || '|' || title || '|' || body || '|' || (data->>'request_id')"
		     "       || '|' || (ticket_id IS NULL) || '|' || (read_at IS NULL)"
		     "  FROM notifications");
	cr_assert_str_eq(v, "APPROVAL_COMPLETED|done|it ran|12|true|true");
	free(v);
	n.type = "lower case";
	cr_assert_lt(shd_notify_inbox.to_user(testdb_conn, ann, &n, &err), 0,
		     "the schema refuses a malformed type");
	json_decref(data);
}

Test(notify, to_user_coalesces_unread_within_the_window)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_notification n = {.type = "VM_STATUS_CHANGE",
				     .title = "web is STOPPED",
				     .coalesce_key = "vm:1",
				     .coalesce_s = 600};
	int64_t ann = user("ann"), ben = user("ben");
	char *v;

	cr_assert_eq(shd_notify_sender()->to_user(testdb_conn, ann, &n, &err), 0, "%s", err.msg);
	n.title = "web is RUNNING";
	cr_assert_eq(shd_notify_sender()->to_user(testdb_conn, ann, &n, &err), 0, "%s", err.msg);
	cr_assert_eq(shd_notify_sender()->to_user(testdb_conn, ben, &n, &err), 0, "%s", err.msg);
	v = value_of("SELECT string_agg(title || ':' || count || ':' || (updated_at IS NOT NULL),"
		     " ' ' ORDER BY id) FROM notifications");
	cr_assert_str_eq(v, "web is RUNNING:2:true web is RUNNING:1:false",
			 "one row per user and key, counted");
	free(v);
	n.coalesce_key = "vm:2";
	cr_assert_eq(shd_notify_sender()->to_user(testdb_conn, ann, &n, &err), 0, "%s", err.msg);
	exec_ok("UPDATE notifications SET read_at = now() WHERE coalesce_key = 'vm:2'");
	cr_assert_eq(shd_notify_sender()->to_user(testdb_conn, ann, &n, &err), 0, "%s", err.msg);
	exec_ok("UPDATE notifications SET created_at = now() - interval '11 minutes'"
		" WHERE coalesce_key = 'vm:1'");
	n.coalesce_key = "vm:1";
	cr_assert_eq(shd_notify_sender()->to_user(testdb_conn, ann, &n, &err), 0, "%s", err.msg);
	v = value_of("SELECT count(*) FROM notifications");
	cr_assert_str_eq(v, "5", "another key, a read row or an old one is not coalesced into");
	free(v);
	n.coalesce_s = 0;
	cr_assert_eq(shd_notify_sender()->to_user(testdb_conn, ann, &n, &err), -SHP_E_INVAL);
}

Test(notify, the_sender_is_chosen_by_name)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_notify_sender(), &shd_notify_inbox, "the inbox until one is chosen");
	cr_assert_eq(shd_notify_use("inbox", &err), 0, "%s", err.msg);
	cr_assert_eq(shd_notify_sender(), &shd_notify_inbox);
	cr_assert_eq(shd_notify_use("pigeon", &err), -SHP_E_INVAL);
	cr_assert(strstr(err.msg, "unknown notification sender 'pigeon'"), "%s", err.msg);
	cr_assert_eq(shd_notify_sender(), &shd_notify_inbox, "an unknown name changes nothing");
}

Test(notify, policy_load_reads_the_default_matrix)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_policy *rows = NULL;
	struct shd_policy_decision d;
	size_t n = 0;

	cr_assert_eq(shd_policy_load(testdb_conn, &rows, &n, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 18);
	cr_assert_eq(shd_policy_match(rows, n, SHD_REQ_START_VM, 0, 0, 0, &d, &err), 0);
	cr_assert_eq(d.level, 0);
	cr_assert_eq(shd_policy_match(rows, n, SHD_REQ_START_VM, 1, 0, 0, &d, &err), 0);
	cr_assert_eq(d.level, 2);
	cr_assert_str_eq(d.runbook_url, "https://shepherd.invalid/runbooks/vm-power");
	cr_assert_eq(shd_policy_match(rows, n, SHD_REQ_DELETE_SYSTEM, 1, 0, 0, &d, &err), 0);
	cr_assert_eq(d.env, -1);
	free(rows);
}
