/*
 * The parent's counters and aggregate status against a real PostgreSQL (the triggers of
 * schema/0010_batch.up.sql): every move of a child between buckets, the aggregate in each
 * case (IN_PROGRESS, PENDING_APPROVAL, COMPLETED, PARTIAL_SUCCESS, FAILED, CANCELLED), a retry
 * taking the failed child out of the counters, and two children ending at the same moment on
 * two connections both counted.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "testdb.h"

/* One text value of sql (no parameters), copied into a rotating buffer. */
static const char *one(const char *sql)
{
	static char slots[4][512];
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

static void exec_ok(const char *fmt, ...) SHP_PRINTF(1, 2);
static void exec_ok(const char *fmt, ...)
{
	char sql[1024];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	(void)one(sql);
}

static void setup(void)
{
	testdb_setup("shp_batch");
}

TestSuite(batch, .init = setup, .fini = testdb_teardown, .timeout = 60);

static long parent(void)
{
	return atol(one("INSERT INTO batch_approval_tickets (kind, requester)"
			" VALUES ('CREATE_VM', 'alice') RETURNING id"));
}

/* A child of p in status st (its own event); its ticket id. */
static long child(long p, const char *st)
{
	char sql[1024];
	long ev = atol(one("INSERT INTO domain_events (type, payload, actor, status)"
			   " VALUES ('CREATE_VM', '{}', 'alice', 'PENDING') RETURNING id"));

	(void)snprintf(sql, sizeof(sql),
		       "INSERT INTO approval_tickets (event_id, request_type, requester,"
		       " namespace, target_name, approval_level, expires_at, parent_ticket_id,"
		       " batch_index, status) VALUES (%ld, 'CREATE_VM', 'alice', 'team-a',"
		       " 'vm-%ld', 0, now() + interval '1 day', %ld, 0, '%s') RETURNING id",
		       ev, ev, p, st);
	return atol(one(sql));
}

static void move(long t, const char *st)
{
	exec_ok("UPDATE approval_tickets SET status = '%s' WHERE id = %ld", st, t);
}

/* "STATUS total success failed pending awaiting cancelled retried finished" */
static const char *state(long p)
{
	char sql[512];

	(void)snprintf(sql, sizeof(sql),
		       "SELECT status || ' ' || total || ' ' || success || ' ' || failed || ' ' ||"
		       " pending || ' ' || awaiting || ' ' || cancelled || ' ' || retried || ' ' ||"
		       " (finished_at IS NOT NULL) FROM batch_approval_tickets WHERE id = %ld",
		       p);
	return one(sql);
}

Test(batch, counters_follow_every_move)
{
	long p = parent();
	long a = child(p, "APPROVED"), b = child(p, "APPROVED");
	long c = child(p, "PENDING_APPROVAL"), d = child(p, "PENDING_APPROVAL");

	cr_expect_str_eq(state(p), "IN_PROGRESS 4 0 0 2 2 0 0 false");
	move(a, "EXECUTING"); /* same bucket: nothing moves */
	cr_expect_str_eq(state(p), "IN_PROGRESS 4 0 0 2 2 0 0 false");
	move(a, "COMPLETED");
	move(b, "FAILED");
	cr_expect_str_eq(state(p), "PENDING_APPROVAL 4 1 1 0 2 0 0 false");
	move(c, "APPROVED");
	cr_expect_str_eq(state(p), "IN_PROGRESS 4 1 1 1 1 0 0 false");
	move(c, "COMPLETED");
	move(d, "REJECTED");
	cr_expect_str_eq(state(p), "PARTIAL_SUCCESS 4 2 2 0 0 0 0 true");
}

Test(batch, a_retry_replaces_the_failed_child)
{
	long p = parent();
	long a = child(p, "COMPLETED"), b = child(p, "FAILED"), n;

	cr_expect_str_eq(state(p), "PARTIAL_SUCCESS 2 1 1 0 0 0 0 true");
	n = child(p, "APPROVED");
	exec_ok("UPDATE approval_tickets SET retried_by = %ld WHERE id = %ld", n, b);
	cr_expect_str_eq(state(p), "IN_PROGRESS 2 1 0 1 0 0 1 false");
	move(b, "CANCELLED"); /* a retried child no longer counts, whatever happens to it */
	move(n, "COMPLETED");
	cr_expect_str_eq(state(p), "COMPLETED 2 2 0 0 0 0 1 true");
	(void)a;
}

Test(batch, aggregates)
{
	long p1 = parent(), p2 = parent(), p3 = parent();

	move(child(p1, "APPROVED"), "CANCELLED");
	move(child(p1, "PENDING_APPROVAL"), "CANCELLED");
	cr_expect_str_eq(state(p1), "CANCELLED 2 0 0 0 0 2 0 true");
	move(child(p2, "APPROVED"), "FAILED");
	move(child(p2, "PENDING_APPROVAL"), "EXPIRED");
	cr_expect_str_eq(state(p2), "FAILED 2 0 2 0 0 0 0 true");
	move(child(p3, "APPROVED"), "FAILED");
	move(child(p3, "APPROVED"), "CANCELLED");
	cr_expect_str_eq(state(p3), "FAILED 2 0 1 0 0 1 0 true");
	move(child(p3, "APPROVED"), "COMPLETED");
	cr_expect_str_eq(state(p3), "PARTIAL_SUCCESS 3 1 1 0 0 1 0 true");
}

struct ender {
	long ticket;
	pthread_barrier_t *gate;
	bool ok;
};

/* End one child in a transaction of its own, on a connection of its own, at the gate. */
static void *end_child(void *arg)
{
	struct ender *x = arg;
	struct shp_error err = SHP_ERROR_INIT;
	PGconn *conn = shd_db_connect(&testdb_config, &err);
	char id[24];

	(void)snprintf(id, sizeof(id), "%ld", x->ticket);
	if (!conn)
		return NULL;
	(void)pthread_barrier_wait(x->gate);
	x->ok = shd_db_begin(conn, &err) == 0 &&
		shd_db_command(conn,
			       "UPDATE approval_tickets SET status = 'COMPLETED' WHERE id = $1", 1,
			       (const char *[]){id}, &err) == 0 &&
		usleep(100000) == 0 && shd_db_commit(conn, &err) == 0;
	PQfinish(conn);
	return NULL;
}

Test(batch, two_children_ending_at_once_both_count)
{
	long p = parent();
	pthread_barrier_t gate;
	struct ender x[2] = {{child(p, "EXECUTING"), &gate, false},
			     {child(p, "EXECUTING"), &gate, false}};
	pthread_t t[2];

	cr_assert_eq(pthread_barrier_init(&gate, NULL, 2), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, end_child, &x[i]), 0);
	for (int i = 0; i < 2; i++)
		(void)pthread_join(t[i], NULL);
	(void)pthread_barrier_destroy(&gate);
	cr_expect(x[0].ok && x[1].ok);
	cr_expect_str_eq(state(p), "COMPLETED 2 2 0 0 0 0 0 true");
}
