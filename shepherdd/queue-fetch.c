/*
 * The fetcher thread: claims batches of available jobs in one statement that takes them with
 * FOR UPDATE SKIP LOCKED and sets the lease, and hands them to the workers' ready list while
 * memory holds at most the runner's capacity.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "buf.h"
#include "db.h"
#include "error.h"
#include "log.h"
#include "queue-internal.h"
#include "queue.h"
#include "util.h"

const char shd_queue_claim_sql[] =
	"WITH c AS (SELECT id FROM jobs"
	"  WHERE state = 'available' AND scheduled_at <= now()"
	"  AND ($3::text[] IS NULL OR queue = ANY($3::text[]))"
	"  AND queue <> ALL (ARRAY(SELECT name FROM queues WHERE paused_at IS NOT NULL))"
	"  ORDER BY priority, scheduled_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)"
	" UPDATE jobs j SET state = 'running', attempt = j.attempt + 1, attempted_at = now(),"
	"  attempted_by = (array_append(j.attempted_by, $2::text))[greatest(1,"
	"   cardinality(j.attempted_by) - 18):],"
	"  lease_renewals = 0,"
	"  lease_expires_at = now() + coalesce((SELECT l.ms FROM unnest($4::text[], $5::int[])"
	"   AS l(kind, ms) WHERE l.kind = j.kind LIMIT 1), $6::int) * interval '1 millisecond'"
	" FROM c WHERE j.id = c.id"
	" RETURNING j.id, j.kind, j.queue, j.args, j.priority, j.attempt, j.max_attempts,"
	"  j.sla_class, j.attempted_at, j.cancel_requested_at IS NOT NULL,"
	"  (extract(epoch FROM j.lease_expires_at - now()) * 1000)::int";

static struct shd_job *job_from_row(struct shd_queue *q, const PGresult *res, int i, uint64_t t0)
{
	struct shd_job *job = calloc(1, sizeof(*job));

	if (!job)
		return NULL;
	job->priv = q;
	job->worker = -1;
	job->id = strtoll(shd_db_value(res, i, 0), NULL, 10);
	job->kind = strdup(shd_db_value(res, i, 1));
	job->queue = strdup(shd_db_value(res, i, 2));
	job->args = json_loads(shd_db_value(res, i, 3), 0, NULL);
	job->priority = (int)strtol(shd_db_value(res, i, 4), NULL, 10);
	job->attempt = (int)strtol(shd_db_value(res, i, 5), NULL, 10);
	job->max_attempts = (int)strtol(shd_db_value(res, i, 6), NULL, 10);
	job->sla = (enum shd_sla_class)shd_sla_class_from_string(shd_db_value(res, i, 7));
	(void)snprintf(job->fence, sizeof(job->fence), "%s", shd_db_value(res, i, 8));
	atomic_init(&job->cancel, shd_db_value(res, i, 9)[0] == 't');
	atomic_init(&job->abandoned, false);
	job->lease_ms = (int)strtol(shd_db_value(res, i, 10), NULL, 10);
	job->lease_deadline_ns = t0 + ms_ns(job->lease_ms);
	if (!job->args) {
		/* rows written by hand may hold args jansson refuses (e.g. nested too deep) */
		job->args = json_object();
		(void)snprintf(job->error, sizeof(job->error), "the job's args cannot be parsed");
	}
	if (!job->kind || !job->queue || !job->args || (int)job->sla < 0)
		return shd_queue_job_free(job);
	return job;
}

/* The lease of every registered kind, as two array literals. */
static int lease_arrays(struct shd_queue *q, struct shp_buf *kinds, struct shp_buf *ms)
{
	int r = shp_buf_addch(kinds, '{') ?: shp_buf_addch(ms, '{');

	for (int i = 0; i < q->nkinds && r == 0; i++) {
		/* kind names are checked at registration: no quotes, commas or braces */
		r = shp_buf_addf(kinds, "%s\"%s\"", i ? "," : "", q->kinds[i].k.name)
			    ?: shp_buf_addf(ms, "%s%d", i ? "," : "",
					    shd_queue_kind_lease_ms(q, &q->kinds[i]));
	}
	return r ?: shp_buf_addch(kinds, '}') ?: shp_buf_addch(ms, '}');
}

/* Claim up to limit jobs onto *list; the count, or -code. */
static int claim(struct shd_queue *q, PGconn *conn, int limit, struct shd_job **list,
		 struct shp_error *err)
{
	struct shp_buf kinds = SHP_BUF_INIT(KINDS_MAX * 160), ms = SHP_BUF_INIT(KINDS_MAX * 16);
	_cleanup_(PQclearp) PGresult *res = NULL;
	char lim[16], def[16];
	uint64_t t0 = shp_now_monotonic_ns();
	int n;

	(void)snprintf(lim, sizeof(lim), "%d", limit);
	(void)snprintf(def, sizeof(def), "%d", DEFAULT_TIMEOUT_MS + q->cfg.lease_buffer_ms);
	if (lease_arrays(q, &kinds, &ms) == 0)
		res = shd_db_exec(conn, shd_queue_claim_sql, 6,
				  (const char *[]){lim, q->worker_id, q->queues_literal, kinds.buf,
						   ms.buf, def},
				  err);
	else
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
	shp_buf_release(&kinds);
	shp_buf_release(&ms);
	if (!res)
		return -err->code;
	n = PQntuples(res);
	for (int i = n - 1; i >= 0; i--) {
		struct shd_job *job = job_from_row(q, res, i, t0);

		if (!job)
			abort(); /* out of memory with claimed jobs: the leases would recover them
				  */
		job->next = *list;
		*list = job;
	}
	return n;
}

/*
 * The claim is planned for each run: a generic plan cannot see the LIMIT and assumes a tenth
 * of the backlog, which makes sorting the whole backlog look cheaper than walking
 * jobs_fetch_idx. Set once per session.
 */
static bool custom_plans(PGconn *conn, struct shp_error *err)
{
	static const char sql[] = "SELECT set_config('plan_cache_mode', $1, false)";
	_cleanup_(PQclearp) PGresult *res = NULL;

	res = shd_db_exec(conn, sql, 1, (const char *[]){"force_custom_plan"}, err);
	return res != NULL;
}

void *shd_queue_fetcher_main(void *arg)
{
	struct shd_queue *q = arg;
	PGconn *conn = NULL, *tuned_conn = NULL;
	bool warned = false, more = true;
	int backoff_ms = 100;

	shp_log_ctx_set("thread", "queue-fetcher");
	for (;;) {
		struct shd_job *list = NULL, *last;
		struct shp_error err = SHP_ERROR_INIT;
		struct timespec ts = deadline_ts(ms_ns(q->cfg.poll_interval_ms));
		int limit = 0, n;

		pthread_mutex_lock(&q->lock);
		for (;;) {
			limit = q->capacity - q->held;
			limit = limit > q->cfg.fetch_batch ? q->cfg.fetch_batch : limit;
			if (q->stop_fetch || (limit > 0 && (q->fetch_wake || more)))
				break;
			if (pthread_cond_timedwait(&q->fetch_cond, &q->lock, &ts) == ETIMEDOUT &&
			    limit > 0)
				break;
		}
		q->fetch_wake = false;
		if (q->stop_fetch) {
			pthread_mutex_unlock(&q->lock);
			break;
		}
		pthread_mutex_unlock(&q->lock);

		if (!shd_queue_ensure_conn(q, &conn, "fetcher", &warned)) {
			n = -SHP_E_UNAVAIL;
		} else if (conn != tuned_conn && !custom_plans(conn, &err)) {
			n = -err.code;
		} else {
			tuned_conn = conn;
			n = claim(q, conn, limit, &list, &err);
			if (n < 0 && !warned)
				log_warn("queue fetcher: claiming jobs failed: %s", err.msg);
		}
		if (n < 0) {
			more = true;
			tuned_conn = NULL; /* a new connection may reuse the old one's address */
			pthread_mutex_lock(&q->lock);
			ts = deadline_ts(ms_ns(backoff_ms));
			while (!q->stop_fetch &&
			       pthread_cond_timedwait(&q->fetch_cond, &q->lock, &ts) == 0)
				;
			pthread_mutex_unlock(&q->lock);
			backoff_ms = backoff_ms >= 5000 ? 5000 : backoff_ms * 2;
			continue;
		}
		backoff_ms = 100;
		more = n == limit;
		if (n == 0)
			continue;
		pthread_mutex_lock(&q->lock);
		for (last = list;; last = last->next) {
			shd_queue_apply_early_cancel(q, last);
			if (!last->next)
				break;
		}
		if (q->ready_tail)
			q->ready_tail->next = list;
		else
			q->ready_head = list;
		q->ready_tail = last;
		q->held += n;
		if (n == 1)
			pthread_cond_signal(&q->work_cond);
		else
			pthread_cond_broadcast(&q->work_cond);
		pthread_mutex_unlock(&q->lock);
	}
	if (conn)
		PQfinish(conn);
	return NULL;
}
