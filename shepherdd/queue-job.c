/*
 * The helpers a handler calls on its own job, from its worker's thread during the call:
 * should_stop, fail, snooze, the worker's connection, and the heartbeat that renews the lease
 * (fenced by the claim, limited by the SLA class).
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "queue-internal.h"
#include "queue.h"
#include "util.h"

bool shd_job_should_stop(struct shd_job *job)
{
	return atomic_load(&job->cancel) || atomic_load(&job->abandoned);
}

enum shd_job_outcome shd_job_fail(struct shd_job *job, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(job->error, sizeof(job->error), fmt, ap);
	va_end(ap);
	return SHD_JOB_FAILED;
}

enum shd_job_outcome shd_job_snooze(struct shd_job *job, int delay_ms)
{
	job->snooze_ms = delay_ms < 0 ? 0 : delay_ms > 86400000 ? 86400000 : delay_ms;
	return SHD_JOB_SNOOZE;
}

PGconn *shd_job_conn(struct shd_job *job, struct shp_error *err)
{
	struct worker *w = &job->priv->workers[job->worker];

	if (w->conn && PQstatus(w->conn) == CONNECTION_OK)
		return w->conn;
	if (w->conn)
		PQfinish(w->conn);
	w->conn = shd_db_connect(&job->priv->db, err);
	return w->conn;
}

int shd_job_heartbeat(struct shd_job *job, struct shp_error *err)
{
	ERR_LOCAL(err);
	static const char sql[] =
		"UPDATE jobs SET lease_expires_at = now() + $3::int * interval '1 millisecond',"
		" lease_renewals = lease_renewals + 1"
		" WHERE id = $1 AND state = 'running' AND attempted_at = $2::timestamptz"
		" AND lease_renewals < $4 RETURNING cancel_requested_at IS NOT NULL";
	static const char held_sql[] =
		"SELECT 1 FROM jobs WHERE id = $1 AND state = 'running' AND attempted_at = $2";
	_cleanup_(PQclearp) PGresult *res = NULL;
	char id[24], lease[16], max[16];
	PGconn *conn = shd_job_conn(job, err);
	uint64_t t0 = shp_now_monotonic_ns();

	if (!conn)
		return -err->code;
	(void)snprintf(id, sizeof(id), "%" PRId64, job->id);
	(void)snprintf(lease, sizeof(lease), "%d", job->lease_ms);
	(void)snprintf(max, sizeof(max), "%d", shd_sla_max_renewals(job->sla));
	res = shd_db_exec(conn, sql, 4, (const char *[]){id, job->fence, lease, max}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 1) {
		job->renewals++;
		job->lease_deadline_ns = t0 + ms_ns(job->lease_ms);
		if (shd_db_value(res, 0, 0)[0] == 't')
			atomic_store(&job->cancel, true);
		return 0;
	}
	PQclear(res);
	res = shd_db_exec(conn, held_sql, 2, (const char *[]){id, job->fence}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_CONFLICT, "job %" PRId64 " lost its lease",
				     job->id);
	return shp_error_set(err, SHP_E_LIMIT, "job %" PRId64 " used its %d lease renewals",
			     job->id, shd_sla_max_renewals(job->sla));
}
