/*
 * The leader's maintenance steps, each one short statement on the leader's connection:
 * election, the rescuer (expired leases), the scheduler (due jobs become available), the
 * cleaner (old finished jobs) and periodic jobs (one unique job per period); and the runner's
 * maintenance thread that takes part in the election and runs them while it leads.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "log.h"
#include "queue-internal.h"
#include "queue.h"
#include "util.h"

int shd_queue_elect(PGconn *conn, const char *name, const char *leader_id, int ttl_ms,
		    bool *ret_leader, struct shp_error *err)
{
	ERR_LOCAL(err);
	static const char sql[] =
		"INSERT INTO leader AS l (name, leader_id, elected_at, expires_at)"
		" VALUES ($1, $2, now(), now() + $3::int * interval '1 millisecond')"
		" ON CONFLICT (name) DO UPDATE SET leader_id = excluded.leader_id,"
		"  elected_at = CASE WHEN l.leader_id = excluded.leader_id THEN l.elected_at"
		"   ELSE now() END, expires_at = excluded.expires_at"
		" WHERE l.leader_id = excluded.leader_id OR l.expires_at < now()"
		" RETURNING leader_id";
	_cleanup_(PQclearp) PGresult *res = NULL;
	char ttl[16];

	(void)snprintf(ttl, sizeof(ttl), "%d", ttl_ms);
	res = shd_db_exec(conn, sql, 3, (const char *[]){name, leader_id, ttl}, err);
	if (!res)
		return -err->code;
	*ret_leader = PQntuples(res) == 1;
	return 0;
}

int shd_queue_resign(PGconn *conn, const char *name, const char *leader_id, struct shp_error *err)
{
	ERR_LOCAL(err);
	static const char sql[] = "DELETE FROM leader WHERE name = $1 AND leader_id = $2";

	return shd_db_command(conn, sql, 2, (const char *[]){name, leader_id}, err);
}

static int run_counted(PGconn *conn, const char *sql, int nparams, const char *const *params,
		       PGresult **ret_res, struct shp_error *err)
{
	PGresult *res = shd_db_exec(conn, sql, nparams, params, err);

	if (!res)
		return -err->code;
	*ret_res = res;
	return 0;
}

static const char rescue_sql[] =
	"WITH r AS (SELECT id FROM jobs WHERE state = 'running' AND lease_expires_at < now()"
	"  ORDER BY lease_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
	" UPDATE jobs j SET"
	"  state = CASE WHEN j.attempt >= j.max_attempts THEN 'discarded'::job_state"
	"   ELSE 'retryable'::job_state END,"
	"  finalized_at = CASE WHEN j.attempt >= j.max_attempts THEN now() END,"
	"  scheduled_at = now(), rescues = j.rescues + 1, lease_expires_at = NULL,"
	"  errors = array_append(coalesce(j.errors, '{}'), jsonb_build_object("
	"   'attempt', j.attempt, 'at', now(), 'worker', "
	"j.attempted_by[cardinality(j.attempted_by)],"
	"   'error', 'lease expired: the worker stopped without finishing the job'))"
	" FROM r WHERE j.id = r.id RETURNING j.id, j.kind, j.attempt, j.state";

int shd_queue_rescue(PGconn *conn, int limit, int *ret_count, struct shp_error *err)
{
	ERR_LOCAL(err);
	_cleanup_(PQclearp) PGresult *res = NULL;
	char lim[16];

	(void)snprintf(lim, sizeof(lim), "%d", limit);
	if (run_counted(conn, rescue_sql, 1, (const char *[]){lim}, &res, err) < 0)
		return -err->code;
	for (int i = 0; i < PQntuples(res); i++) {
		bool discarded = shp_streq(shd_db_value(res, i, 3), "discarded");

		log_info("rescued job %s (kind %s, attempt %s) after its lease expired%s",
			 shd_db_value(res, i, 0), shd_db_value(res, i, 1), shd_db_value(res, i, 2),
			 discarded ? "; discarded: no attempts left" : "");
	}
	*ret_count = PQntuples(res);
	return 0;
}

static const char schedule_sql[] =
	"WITH due AS (SELECT id FROM jobs WHERE state IN ('scheduled', 'retryable')"
	"  AND scheduled_at <= now() ORDER BY scheduled_at LIMIT $1 FOR UPDATE SKIP LOCKED),"
	" upd AS (UPDATE jobs j SET state = 'available' FROM due WHERE j.id = due.id"
	"  RETURNING j.queue)"
	" SELECT (SELECT count(*) FROM upd),"
	"  (SELECT count(pg_notify('shepherd_jobs', q)) FROM (SELECT DISTINCT queue AS q"
	"   FROM upd) s)";

int shd_queue_schedule(PGconn *conn, int limit, int *ret_count, struct shp_error *err)
{
	ERR_LOCAL(err);
	_cleanup_(PQclearp) PGresult *res = NULL;
	char lim[16];

	(void)snprintf(lim, sizeof(lim), "%d", limit);
	if (run_counted(conn, schedule_sql, 1, (const char *[]){lim}, &res, err) < 0)
		return -err->code;
	*ret_count = (int)strtol(shd_db_value(res, 0, 0) ?: "0", NULL, 10);
	return 0;
}

static const char clean_sql[] =
	"WITH old AS ("
	" (SELECT id FROM jobs WHERE state = 'completed'"
	"  AND finalized_at < now() - $1::int * interval '1 second' LIMIT $3)"
	" UNION ALL"
	" (SELECT id FROM jobs WHERE state IN ('cancelled', 'discarded')"
	"  AND finalized_at < now() - $2::int * interval '1 second' LIMIT $3))"
	" DELETE FROM jobs WHERE id IN (SELECT id FROM old)";

int shd_queue_clean(PGconn *conn, int completed_s, int final_s, int limit, int *ret_count,
		    struct shp_error *err)
{
	ERR_LOCAL(err);
	_cleanup_(PQclearp) PGresult *res = NULL;
	char c[16], f[16], lim[16];

	(void)snprintf(c, sizeof(c), "%d", completed_s);
	(void)snprintf(f, sizeof(f), "%d", final_s);
	(void)snprintf(lim, sizeof(lim), "%d", limit);
	if (run_counted(conn, clean_sql, 3, (const char *[]){c, f, lim}, &res, err) < 0)
		return -err->code;
	*ret_count = (int)strtol(PQcmdTuples(res), NULL, 10);
	return 0;
}

/* Parse "HH:MM" into seconds after midnight. */
static int parse_hhmm(const char *s, int64_t *ret)
{
	unsigned h, m;
	char tail;

	if (sscanf(s, "%2u:%2u%c", &h, &m, &tail) != 2 || h > 23 || m > 59 || strlen(s) != 5)
		return -1;
	*ret = (int64_t)h * 3600 + m * 60;
	return 0;
}

/* A daily job is still enqueued this long after its time (e.g. the leader was down at 03:00). */
#define DAILY_WINDOW_S 3600

int shd_periodic_due(const char *spec, int64_t now_s, int64_t *ret_period_start,
		     struct shp_error *err)
{
	ERR_LOCAL(err);
	int64_t v;

	if (strncmp(spec, "@every ", 7) == 0) {
		if (shp_parse_duration(spec + 7, &v, err) < 0 || v < 1 || v > 366 * 86400)
			return shp_error_set(err, SHP_E_INVAL, "invalid periodic spec '%s'", spec);
		*ret_period_start = now_s - now_s % v;
		return 0;
	}
	if (strncmp(spec, "@daily ", 7) == 0) {
		int64_t day = now_s - now_s % 86400, at;

		if (parse_hhmm(spec + 7, &v) < 0)
			return shp_error_set(err, SHP_E_INVAL, "invalid periodic spec '%s'", spec);
		at = day + v <= now_s ? day + v : day + v - 86400;
		if (now_s - at >= DAILY_WINDOW_S)
			return 1;
		*ret_period_start = at;
		return 0;
	}
	return shp_error_set(err, SHP_E_INVAL,
			     "invalid periodic spec '%s': expected '@every DURATION' or "
			     "'@daily HH:MM'",
			     spec);
}

int shd_queue_periodic_enqueue(PGconn *conn, const char *name, const char *spec, const char *kind,
			       const char *args, int64_t now_s, bool *ret_enqueued,
			       struct shp_error *err)
{
	ERR_LOCAL(err);
	struct shd_job_params p = SHD_JOB_PARAMS_INIT;
	struct shd_job_inserted ins;
	char key[SHD_JOB_NAME_MAX + 1];
	int64_t period;
	int r = shd_periodic_due(spec, now_s, &period, err);

	*ret_enqueued = false;
	if (r != 0)
		return r < 0 ? r : 0;
	if (snprintf(key, sizeof(key), "periodic:%s:%" PRId64, name, period) >= (int)sizeof(key))
		return shp_error_set(err, SHP_E_INVAL, "periodic job name '%s' is too long", name);
	p.kind = kind;
	p.args = args;
	p.unique_key = key;
	if (shd_job_insert(conn, &p, &ins, err) < 0)
		return -err->code;
	*ret_enqueued = !ins.duplicate;
	return 0;
}

/* ---- maintenance -------------------------------------------------------------------------- */

static void maint_round(struct shd_queue *q, PGconn *conn, uint64_t now, uint64_t *next_rescue,
			uint64_t *next_clean)
{
	struct shp_error err = SHP_ERROR_INIT;
	bool leader = false, was = atomic_load(&q->leader);
	int n;

	if (shd_queue_elect(conn, LEADER_NAME, q->worker_id, q->cfg.leader_ttl_ms, &leader, &err) <
	    0) {
		log_warn("queue leader election failed: %s", err.msg);
		return;
	}
	atomic_store(&q->leader, leader);
	if (leader != was)
		log_info("queue maintenance: %s",
			 leader ? "this daemon is the leader" : "leadership lost");
	if (!leader)
		return;
	if (now >= *next_rescue) {
		*next_rescue = now + ms_ns(q->cfg.rescue_interval_ms);
		if (shd_queue_rescue(conn, MAINT_LIMIT, &n, &err) < 0)
			log_warn("queue rescuer failed: %s", err.msg);
	}
	if (shd_queue_schedule(conn, MAINT_LIMIT, &n, &err) < 0)
		log_warn("queue scheduler failed: %s", err.msg);
	if (now >= *next_clean) {
		*next_clean = now + ms_ns(q->cfg.clean_interval_ms);
		if (shd_queue_clean(conn, q->cfg.completed_retention_s, q->cfg.final_retention_s,
				    MAINT_LIMIT, &n, &err) < 0)
			log_warn("queue cleaner failed: %s", err.msg);
		else if (n > 0)
			log_debug("queue cleaner deleted %d finished job(s)", n);
	}
	for (int i = 0; i < q->nperiodic; i++) {
		struct periodic *p = &q->periodic[i];
		bool enq;

		if (shd_queue_periodic_enqueue(conn, p->name, p->spec, p->kind, p->args,
					       (int64_t)(shp_now_realtime_us() / 1000000), &enq,
					       &err) < 0)
			log_warn("periodic job '%s' failed to enqueue: %s", p->name, err.msg);
		else if (enq)
			log_debug("periodic job '%s' enqueued", p->name);
	}
}

void *shd_queue_maint_main(void *arg)
{
	struct shd_queue *q = arg;
	PGconn *conn = NULL;
	bool warned = false;
	uint64_t next_rescue = 0, next_clean = 0;
	struct shp_error err = SHP_ERROR_INIT;

	shp_log_ctx_set("thread", "queue-maintenance");
	do {
		if (shd_queue_ensure_conn(q, &conn, "maintenance", &warned))
			maint_round(q, conn, shp_now_monotonic_ns(), &next_rescue, &next_clean);
		else
			atomic_store(&q->leader, false);
	} while (!shd_queue_aux_sleep(q, q->cfg.maint_interval_ms));
	if (conn && atomic_load(&q->leader) &&
	    shd_queue_resign(conn, LEADER_NAME, q->worker_id, &err) < 0)
		log_warn("resigning the queue leadership failed, ignoring: %s", err.msg);
	atomic_store(&q->leader, false);
	if (conn)
		PQfinish(conn);
	return NULL;
}

const char *shd_queue_sql(const char *name)
{
	if (shp_streq(name, "rescue"))
		return rescue_sql;
	if (shp_streq(name, "schedule"))
		return schedule_sql;
	if (shp_streq(name, "clean"))
		return clean_sql;
	return shd_queue_worker_sql(name);
}
