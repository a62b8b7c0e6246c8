/*
 * The per-asset mutex of the execution engine (see locks.h): one row per held lock, taken with
 * an upsert that only succeeds when the row is free, expired, or already the caller's.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "error.h"
#include "locks.h"
#include "log.h"
#include "queue.h"

static bool part_ok(const char *s, bool colon_allowed)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || (*s == ':' && !colon_allowed))
			return false;
	return true;
}

int shd_lock_key(const char *tenant, const char *target, const char *action, char *out, size_t size,
		 struct shp_error *err)
{
	int n;

	if (!part_ok(tenant, false) || !part_ok(target, true) || !part_ok(action, false))
		return shp_error_set(
			err, SHP_E_INVAL,
			"a lock needs a tenant and an action without ':' and a target");
	n = snprintf(out, size, "lock:v1:%s:%s:%s", tenant, target, action);
	if (n < 0 || (size_t)n >= size || (size_t)n >= SHD_LOCK_KEY_MAX)
		return shp_error_set(err, SHP_E_INVAL, "lock key is longer than %d bytes",
				     SHD_LOCK_KEY_MAX - 1);
	return 0;
}

static int busy(PGconn *conn, const char *key, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res =
		shd_db_exec(conn, "SELECT owner FROM execution_locks WHERE lock_key = $1", 1,
			    (const char *[]){key}, NULL);
	const char *owner = res && PQntuples(res) == 1 ? shd_db_value(res, 0, 0) : "?";

	shp_error_set(err, SHP_E_CONFLICT, "'%s' is busy: another operation holds it", key);
	shp_error_api_code(err, "RESOURCE_BUSY");
	shp_error_detail(err, "lock", "%s", key);
	shp_error_detail(err, "owner", "%s", owner);
	return -SHP_E_CONFLICT;
}

int shd_lock_acquire(PGconn *conn, const char *key, const char *owner, int ttl_ms,
		     int64_t execution_id, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char ttl[16], exec[24];

	if (ttl_ms <= 0)
		return shp_error_set(err, SHP_E_INVAL, "a lock needs a positive lifetime");
	(void)snprintf(ttl, sizeof(ttl), "%d", ttl_ms);
	(void)snprintf(exec, sizeof(exec), "%lld", (long long)execution_id);
	res = shd_db_exec(conn,
			  "INSERT INTO execution_locks (lock_key, owner, execution_id, expires_at)"
			  " VALUES ($1, $2, $4, now() + make_interval(secs => $3::int / 1000.0))"
			  " ON CONFLICT (lock_key) DO UPDATE SET owner = EXCLUDED.owner,"
			  "   execution_id = EXCLUDED.execution_id, acquired_at = now(),"
			  "   expires_at = EXCLUDED.expires_at"
			  " WHERE execution_locks.expires_at <= now()"
			  "    OR execution_locks.owner = EXCLUDED.owner"
			  " RETURNING lock_key",
			  4, (const char *[]){key, owner, ttl, execution_id > 0 ? exec : NULL},
			  err);
	if (!res)
		return -err->code;
	return PQntuples(res) == 1 ? 0 : busy(conn, key, err);
}

int shd_lock_renew(PGconn *conn, const char *key, const char *owner, int ttl_ms,
		   struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char ttl[16];

	(void)snprintf(ttl, sizeof(ttl), "%d", ttl_ms);
	res = shd_db_exec(
		conn,
		"UPDATE execution_locks SET expires_at = now() + make_interval(secs =>"
		" $3::int / 1000.0) WHERE lock_key = $1 AND owner = $2 AND expires_at > now()"
		" RETURNING lock_key",
		3, (const char *[]){key, owner, ttl}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_CONFLICT, "lock '%s' is no longer held by '%s'",
				     key, owner);
	return 0;
}

int shd_lock_release(PGconn *conn, const char *key, const char *owner, bool *ret_released,
		     struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res =
		shd_db_exec(conn, "DELETE FROM execution_locks WHERE lock_key = $1 AND owner = $2",
			    2, (const char *[]){key, owner}, err);

	if (!res)
		return -err->code;
	if (ret_released)
		*ret_released = strcmp(PQcmdTuples(res), "1") == 0;
	return 0;
}

int shd_lock_reap(PGconn *conn, int *ret_count, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(
		conn, "DELETE FROM execution_locks WHERE expires_at <= now()", 0, NULL, err);

	if (!res)
		return -err->code;
	if (ret_count)
		*ret_count = (int)strtol(PQcmdTuples(res), NULL, 10);
	return 0;
}

static enum shd_job_outcome reap_job(struct shd_job *job, void *ctx)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGconn *conn = shd_job_conn(job, &err);
	int n = 0;

	if (!conn || shd_lock_reap(conn, &n, &err) < 0)
		return shd_job_fail(job, "%s", err.msg);
	if (n > 0) {
		log_info("lock reaper: removed %d expired lock(s)", n);
		if (ctx)
			atomic_fetch_add_explicit((atomic_uint_fast64_t *)ctx, (uint64_t)n,
						  memory_order_relaxed);
	}
	return SHD_JOB_DONE;
}

int shd_locks_register(struct shd_queue *q, atomic_uint_fast64_t *reaped, struct shp_error *err)
{
	const struct shd_job_kind kind = {
		.name = "locks.reap", .run = reap_job, .ctx = reaped, .timeout_ms = 30000};

	if (shd_queue_register(q, &kind, err) < 0)
		return -err->code;
	return shd_queue_add_periodic(q, "locks.reap", "@every 60s", "locks.reap", "{}", err);
}
