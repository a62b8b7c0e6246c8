/*
 * The queue runner: a fetcher that claims batches under a lease, worker threads that run the
 * handlers, a completer that records outcomes in batched statements fenced by the claim, one
 * LISTEN thread, and the maintenance thread (leader election, rescuer, scheduler, cleaner,
 * periodic jobs). Every thread opens and closes its own PGconn; none is shared.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "buf.h"
#include "db.h"
#include "error.h"
#include "json.h"
#include "log.h"
#include "queue.h"
#include "util.h"

/* err may be NULL: failures then go to a local error that nobody reads. */
#define ERR_LOCAL(err)                                                                             \
	struct shp_error err##_local_ = SHP_ERROR_INIT;                                            \
	if (!(err))                                                                                \
	(err) = &err##_local_

#define KINDS_MAX 64
#define SAMPLES 64 /* durations kept per kind for its p95 */
#define PERIODIC_MAX 32
#define QUEUES_MAX 64
#define COMPLETE_BATCH 2000
#define MAINT_LIMIT 1000
#define DEFAULT_TIMEOUT_MS 30000
#define OUTCOME_REQUEUE 100 /* internal: back to available, attempt not counted */
#define LEADER_NAME "shepherd"

struct kind_entry {
	struct shd_job_kind k;
	uint32_t samples_ms[SAMPLES];
	int nsamples, next;
};

struct periodic {
	char name[64];
	char spec[64];
	char kind[SHD_JOB_NAME_MAX + 1];
	char *args;
};

struct worker {
	struct shd_queue *q;
	int index;
	pthread_t thread;
	PGconn *conn;               /* owned by this worker's thread only */
	struct shd_job *current;    /* guarded by q->lock */
};

struct shd_queue {
	struct shd_queue_config cfg;
	struct shd_dbpool_config db;
	char *conninfo, *appname;
	char worker_id[128];
	char *queues_literal; /* text[] literal of the served queues, or NULL for all */
	int capacity;         /* workers + 2 × fetch_batch: jobs held in memory at most */

	/* read-only once started, except samples (stats_lock) */
	struct kind_entry kinds[KINDS_MAX];
	int nkinds;
	struct periodic periodic[PERIODIC_MAX];
	int nperiodic;

	/* lock protects the ready list, every worker's current job, held/running, the fetch wake
	 * flag and the stop flags of the fetcher and workers */
	pthread_mutex_t lock;
	pthread_cond_t work_cond;  /* workers: a job is ready, or stop */
	pthread_cond_t fetch_cond; /* fetcher: a NOTIFY, room, or stop */
	pthread_cond_t idle_cond;  /* shutdown: a running job finished */
	struct shd_job *ready_head, *ready_tail;
	/*
	 * Cancel requests for jobs not found in memory: a job claimed in the database but not yet
	 * handed to the ready list when its NOTIFY came. Checked as claimed jobs arrive.
	 */
	int64_t early_cancels[64];
	unsigned next_early_cancel;
	int held;    /* claimed and not yet recorded as finished */
	int running; /* inside a handler */
	bool fetch_wake, stop_fetch, stop_workers;

	/* done_lock protects the list of finished jobs waiting for the completer and its stop flag */
	pthread_mutex_t done_lock;
	pthread_cond_t done_cond;
	struct shd_job *done_head, *done_tail;
	bool stop_completer;

	/* stats_lock protects kinds[].samples_ms, nsamples, next */
	pthread_mutex_t stats_lock;

	/* aux_lock protects stop_aux, for the listener and maintenance threads */
	pthread_mutex_t aux_lock;
	pthread_cond_t aux_cond;
	bool stop_aux;

	atomic_bool leader;
	bool started;
	pthread_t fetcher, completer, listener, maint;
	struct worker *workers;
};


/* A cancel that came before the job reached memory (caller holds q->lock). */
static void apply_early_cancel(struct shd_queue *q, struct shd_job *job)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(q->early_cancels); i++)
		if (q->early_cancels[i] == job->id) {
			atomic_store(&job->cancel, true);
			q->early_cancels[i] = 0;
		}
}

static uint64_t ms_ns(int ms)
{
	return (uint64_t)ms * 1000000ull;
}

static struct timespec deadline_ts(uint64_t ns_from_now)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ns_from_now += (uint64_t)ts.tv_nsec;
	ts.tv_sec += (time_t)(ns_from_now / 1000000000ull);
	ts.tv_nsec = (long)(ns_from_now % 1000000000ull);
	return ts;
}

static void cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

/* Wait on the aux condvar for ms; true when asked to stop. */
static bool aux_sleep(struct shd_queue *q, int ms)
{
	struct timespec ts = deadline_ts(ms_ns(ms));
	bool stop;

	pthread_mutex_lock(&q->aux_lock);
	while (!q->stop_aux && pthread_cond_timedwait(&q->aux_cond, &q->aux_lock, &ts) == 0)
		;
	stop = q->stop_aux;
	pthread_mutex_unlock(&q->aux_lock);
	return stop;
}

static bool aux_stopping(struct shd_queue *q)
{
	bool stop;

	pthread_mutex_lock(&q->aux_lock);
	stop = q->stop_aux;
	pthread_mutex_unlock(&q->aux_lock);
	return stop;
}

/* Open *conn if it is missing or broken; false (logged once per outage) when that fails. */
static bool ensure_conn(struct shd_queue *q, PGconn **conn, const char *who, bool *warned)
{
	struct shp_error err = SHP_ERROR_INIT;

	if (*conn && PQstatus(*conn) == CONNECTION_OK)
		return true;
	if (*conn)
		PQfinish(*conn);
	*conn = NULL;
	*conn = shd_db_connect(&q->db, &err);
	if (!*conn && !*warned) {
		log_warn("queue %s: cannot reach the database, retrying: %s", who, err.msg);
		*warned = true;
	}
	if (*conn && *warned) {
		log_info("queue %s: connected to the database again", who);
		*warned = false;
	}
	return *conn != NULL;
}

static struct kind_entry *find_kind(struct shd_queue *q, const char *name)
{
	for (int i = 0; i < q->nkinds; i++)
		if (strcmp(q->kinds[i].k.name, name) == 0)
			return &q->kinds[i];
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* lease = max(timeout + buffer, 2 × p95 of recent runs); p95 starts at the timeout. */
static int kind_lease_ms(struct shd_queue *q, struct kind_entry *e)
{
	int timeout = e->k.timeout_ms > 0 ? e->k.timeout_ms : DEFAULT_TIMEOUT_MS;
	uint32_t s[SAMPLES], p95 = (uint32_t)timeout;
	int n;
	int64_t lease;

	pthread_mutex_lock(&q->stats_lock);
	n = e->nsamples;
	memcpy(s, e->samples_ms, sizeof(s));
	pthread_mutex_unlock(&q->stats_lock);
	if (n > 0) {
		qsort(s, (size_t)n, sizeof(s[0]), cmp_u32);
		p95 = s[(n * 95 + 99) / 100 - 1];
	}
	lease = (int64_t)timeout + q->cfg.lease_buffer_ms;
	if (2 * (int64_t)p95 > lease)
		lease = 2 * (int64_t)p95;
	return lease > 86400000 ? 86400000 : (int)lease;
}

static void kind_record(struct shd_queue *q, struct kind_entry *e, uint64_t ns)
{
	uint64_t ms = ns / 1000000ull;

	pthread_mutex_lock(&q->stats_lock);
	e->samples_ms[e->next] = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
	e->next = (e->next + 1) % SAMPLES;
	if (e->nsamples < SAMPLES)
		e->nsamples++;
	pthread_mutex_unlock(&q->stats_lock);
}

static struct shd_job *job_free(struct shd_job *job)
{
	if (!job)
		return NULL;
	free((char *)job->kind);
	free((char *)job->queue);
	json_decref(job->args);
	free(job);
	return NULL;
}

/* ---- handler helpers ---------------------------------------------------------------------- */

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
	res = shd_db_exec(conn, sql, 4, (const char *[]){ id, job->fence, lease, max }, err);
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
	res = shd_db_exec(conn, held_sql, 2, (const char *[]){ id, job->fence }, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_CONFLICT, "job %" PRId64 " lost its lease", job->id);
	return shp_error_set(err, SHP_E_LIMIT, "job %" PRId64 " used its %d lease renewals",
			     job->id, shd_sla_max_renewals(job->sla));
}

/* ---- fetcher ------------------------------------------------------------------------------ */

static const char claim_sql[] =
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

static struct shd_job *job_from_row(struct shd_queue *q, const PGresult *res, int i,
				    uint64_t t0)
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
		return job_free(job);
	return job;
}

/* The lease of every registered kind, as two array literals. */
static int lease_arrays(struct shd_queue *q, struct shp_buf *kinds, struct shp_buf *ms)
{
	int r = shp_buf_addch(kinds, '{') ?: shp_buf_addch(ms, '{');

	for (int i = 0; i < q->nkinds && r == 0; i++) {
		/* kind names are checked at registration: no quotes, commas or braces */
		r = shp_buf_addf(kinds, "%s\"%s\"", i ? "," : "", q->kinds[i].k.name) ?:
			    shp_buf_addf(ms, "%s%d", i ? "," : "", kind_lease_ms(q, &q->kinds[i]));
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
		res = shd_db_exec(conn, claim_sql, 6,
				  (const char *[]){ lim, q->worker_id, q->queues_literal, kinds.buf,
						    ms.buf, def },
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
			abort(); /* out of memory with claimed jobs: the leases would recover them */
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

	res = shd_db_exec(conn, sql, 1, (const char *[]){ "force_custom_plan" }, err);
	return res != NULL;
}

static void *fetcher_main(void *arg)
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

		if (!ensure_conn(q, &conn, "fetcher", &warned)) {
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
			apply_early_cancel(q, last);
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

/* ---- workers ------------------------------------------------------------------------------ */

/* Hand a finished job to the completer. Caller holds q->lock (lock order: lock, done_lock). */
static void push_done(struct shd_queue *q, struct shd_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&q->done_lock);
	if (q->done_tail)
		q->done_tail->next = job;
	else
		q->done_head = job;
	q->done_tail = job;
	pthread_cond_signal(&q->done_cond);
	pthread_mutex_unlock(&q->done_lock);
}

static void run_job(struct shd_queue *q, struct shd_job *job)
{
	struct kind_entry *e = find_kind(q, job->kind);
	uint64_t t0 = shp_now_monotonic_ns();

	if (t0 + ms_ns(100) >= job->lease_deadline_ns) {
		/* waited in memory until its lease ran out: never run it twice, give it back */
		job->outcome = OUTCOME_REQUEUE;
		return;
	}
	if (job->error[0]) {
		job->outcome = SHD_JOB_DISCARD; /* unusable args: retrying cannot help */
		return;
	}
	if (!e) {
		job->outcome = shd_job_fail(job, "no handler for job kind '%s'", job->kind);
		return;
	}
	job->outcome = e->k.run(job, e->k.ctx);
	kind_record(q, e, shp_now_monotonic_ns() - t0);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct shd_queue *q = w->q;
	char name[32];

	(void)snprintf(name, sizeof(name), "%d", w->index);
	shp_log_ctx_set("worker", name);
	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct shd_job *job;
		char id[24];

		while (!q->ready_head && !q->stop_workers)
			pthread_cond_wait(&q->work_cond, &q->lock);
		if (!q->ready_head)
			break;
		job = q->ready_head;
		q->ready_head = job->next;
		if (!q->ready_head)
			q->ready_tail = NULL;
		job->worker = w->index;
		w->current = job;
		q->running++;
		pthread_mutex_unlock(&q->lock);

		(void)snprintf(id, sizeof(id), "%" PRId64, job->id);
		shp_log_ctx_set("job", id);
		run_job(q, job);
		shp_log_ctx_unset("job");

		pthread_mutex_lock(&q->lock);
		w->current = NULL;
		q->running--;
		if (atomic_load(&job->abandoned))
			job_free(job); /* shutdown requeued it already; its result does not count */
		else
			push_done(q, job);
		pthread_cond_broadcast(&q->idle_cond);
	}
	pthread_mutex_unlock(&q->lock);
	if (w->conn)
		PQfinish(w->conn);
	w->conn = NULL;
	return NULL;
}

/* ---- completer ---------------------------------------------------------------------------- */

/*
 * One statement records a batch of outcomes. Each job's outcome travels in one jsonb object
 * keyed by job id (s: state, f: fence, d: delay ms, u: 1 if the attempt is not counted, e:
 * error), looked up per row: no join, so no plan can go quadratic however stale the statistics.
 * Only the holder of the claim (state running, attempted_at = fence) can finish a job.
 */
static const char complete_sql[] =
	"WITH upd AS (UPDATE jobs j SET"
	"  state = ($2::jsonb -> j.id::text ->> 's')::job_state,"
	"  finalized_at = CASE WHEN $2::jsonb -> j.id::text ->> 's'"
	"   IN ('completed', 'cancelled', 'discarded') THEN now() END,"
	"  scheduled_at = coalesce(now() + ($2::jsonb -> j.id::text ->> 'd')::int"
	"   * interval '1 millisecond', j.scheduled_at),"
	"  attempt = j.attempt - coalesce(($2::jsonb -> j.id::text ->> 'u')::int, 0),"
	"  lease_expires_at = NULL,"
	"  errors = CASE WHEN $2::jsonb -> j.id::text ? 'e'"
	"   THEN array_append(coalesce(j.errors, '{}'), jsonb_build_object('attempt', j.attempt,"
	"    'at', now(), 'error', $2::jsonb -> j.id::text ->> 'e', 'worker', $3::text))"
	"   ELSE j.errors END"
	" WHERE j.id = ANY($1::bigint[]) AND j.state = 'running'"
	"  AND j.attempted_at = ($2::jsonb -> j.id::text ->> 'f')::timestamptz"
	" RETURNING j.id, j.kind, j.attempt, j.state, j.queue)"
	" SELECT id, kind, attempt, state,"
	"  (SELECT count(pg_notify('shepherd_jobs', q)) FROM (SELECT DISTINCT queue AS q FROM upd"
	"   WHERE state = 'available') s) FROM upd";

/* xorshift64*: jitter only, so a per-thread state seeded once is enough. */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static int backoff_ms(struct shd_queue *q, int attempt, uint64_t *rnd)
{
	double ms = (double)q->cfg.retry_base_ms;

	for (int i = 0; i < attempt && ms < q->cfg.retry_max_ms; i++)
		ms *= 2;
	if (ms > q->cfg.retry_max_ms)
		ms = q->cfg.retry_max_ms;
	ms *= 0.9 + 0.2 * (double)(next_rand(rnd) >> 11) / 9007199254740992.0;
	return (int)ms;
}

/* The outcome of one job as {"s": state, "f": fence, "d": delay, "u": 1, "e": error}. */
static json_t *outcome_json(struct shd_queue *q, const struct shd_job *job, uint64_t *rnd)
{
	const char *state, *err = NULL;
	int delay = -1, uncount = 0;
	json_t *o;

	switch ((int)job->outcome) {
	case SHD_JOB_DONE:
		state = "completed";
		break;
	case SHD_JOB_SNOOZE:
		state = job->snooze_ms > 0 ? "scheduled" : "available";
		delay = job->snooze_ms;
		uncount = 1;
		break;
	case SHD_JOB_CANCEL:
		state = "cancelled";
		err = job->error[0] ? job->error : "cancelled";
		break;
	case SHD_JOB_DISCARD:
		state = "discarded";
		err = job->error[0] ? job->error : "discarded by its handler";
		break;
	case OUTCOME_REQUEUE:
		state = "available";
		delay = 0;
		uncount = 1;
		break;
	default:
		state = job->attempt >= job->max_attempts ? "discarded" : "retryable";
		delay = backoff_ms(q, job->attempt, rnd);
		err = job->error[0] ? job->error : "failed";
		break;
	}
	o = json_pack("{s:s, s:s}", "s", state, "f", job->fence);
	if (o && delay >= 0)
		json_object_set_new(o, "d", json_integer(delay));
	if (o && uncount)
		json_object_set_new(o, "u", json_integer(1));
	if (o && err) {
		/* handler messages are not trusted to be UTF-8 */
		json_t *e = json_stringn(err, strlen(err));

		json_object_set_new(o, "e", e ? e : json_string("(error text is not UTF-8)"));
	}
	return o;
}

/* Record a list of finished jobs in one statement. */
static int write_results(struct shd_queue *q, PGconn *conn, struct shd_job *list, uint64_t *rnd,
			 struct shp_error *err)
{
	struct shp_buf ids = SHP_BUF_INIT((size_t)COMPLETE_BATCH * 24 + 16);
	struct shp_buf data = SHP_BUF_INIT((size_t)COMPLETE_BATCH * 2048 + 16);
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *all = json_object();
	int r = all ? shp_buf_addch(&ids, '{') : -SHP_E_NOMEM;

	for (struct shd_job *j = list; j && r == 0; j = j->next) {
		char key[24];

		(void)snprintf(key, sizeof(key), "%" PRId64, j->id);
		r = json_object_set_new(all, key, outcome_json(q, j, rnd)) < 0 ? -SHP_E_NOMEM : 0;
		r = r ?: shp_buf_addf(&ids, "%s%s", j == list ? "" : ",", key);
	}
	r = r ?: shp_buf_addch(&ids, '}');
	r = r ?: shp_json_dump_buf(all, &data, false);
	if (r == 0)
		res = shd_db_exec(conn, complete_sql, 3,
				  (const char *[]){ ids.buf, data.buf, q->worker_id }, err);
	else
		shp_error_set(err, SHP_E_NOMEM, "building the completion batch");
	shp_buf_release(&ids);
	shp_buf_release(&data);
	if (!res)
		return -err->code;
	for (int i = 0; i < PQntuples(res); i++)
		if (shp_streq(shd_db_value(res, i, 3), "discarded"))
			log_info("discarded job %s (kind %s) after attempt %s",
				 shd_db_value(res, i, 0), shd_db_value(res, i, 1),
				 shd_db_value(res, i, 2));
	return 0;
}

/* Take up to COMPLETE_BATCH finished jobs; NULL when stopping with nothing left. */
static struct shd_job *take_done(struct shd_queue *q, int *ret_n)
{
	struct shd_job *list, *last;
	int n = 1;

	pthread_mutex_lock(&q->done_lock);
	while (!q->done_head && !q->stop_completer)
		pthread_cond_wait(&q->done_cond, &q->done_lock);
	list = last = q->done_head;
	if (list) {
		for (; last->next && n < COMPLETE_BATCH; n++)
			last = last->next;
		q->done_head = last->next;
		if (!q->done_head)
			q->done_tail = NULL;
		last->next = NULL;
	}
	pthread_mutex_unlock(&q->done_lock);
	*ret_n = list ? n : 0;
	return list;
}

static void *completer_main(void *arg)
{
	struct shd_queue *q = arg;
	PGconn *conn = NULL;
	bool warned = false;
	uint64_t rnd = (uint64_t)shp_now_realtime_us() | 1;
	struct shd_job *list;
	int n;

	shp_log_ctx_set("thread", "queue-completer");
	if (shp_random_bytes(&rnd, sizeof(rnd), NULL) < 0)
		rnd = shp_now_monotonic_ns();
	rnd |= 1;
	while ((list = take_done(q, &n))) {
		uint64_t giveup = 0;
		int backoff = 100;

		for (;;) {
			struct shp_error err = SHP_ERROR_INIT;

			if (ensure_conn(q, &conn, "completer", &warned) &&
			    write_results(q, conn, list, &rnd, &err) == 0)
				break;
			if (err.code && !warned)
				log_warn("queue completer: recording %d job(s) failed: %s", n, err.msg);
			pthread_mutex_lock(&q->done_lock);
			if (q->stop_completer && !giveup)
				giveup = shp_now_monotonic_ns() + ms_ns(q->cfg.shutdown_grace_ms);
			pthread_mutex_unlock(&q->done_lock);
			if (giveup && shp_now_monotonic_ns() > giveup) {
				log_warn("queue completer: giving up on %d result(s); their leases "
					 "will expire and the jobs will run again", n);
				break;
			}
			usleep((useconds_t)backoff * 1000);
			backoff = backoff >= 2000 ? 2000 : backoff * 2;
		}
		while (list) {
			struct shd_job *next = list->next;
			job_free(list);
			list = next;
		}
		pthread_mutex_lock(&q->lock);
		q->held -= n;
		pthread_cond_signal(&q->fetch_cond);
		pthread_mutex_unlock(&q->lock);
	}
	if (conn)
		PQfinish(conn);
	return NULL;
}

/* ---- listener ----------------------------------------------------------------------------- */

static void wake_fetcher(struct shd_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->fetch_wake = true;
	pthread_cond_signal(&q->fetch_cond);
	pthread_mutex_unlock(&q->lock);
}

static void mark_cancel(struct shd_queue *q, int64_t id)
{
	bool found = false;

	pthread_mutex_lock(&q->lock);
	for (struct shd_job *j = q->ready_head; j; j = j->next)
		if (j->id == id) {
			atomic_store(&j->cancel, true);
			found = true;
		}
	for (int i = 0; i < q->cfg.workers; i++)
		if (q->workers[i].current && q->workers[i].current->id == id) {
			atomic_store(&q->workers[i].current->cancel, true);
			found = true;
		}
	if (!found)
		q->early_cancels[q->next_early_cancel++ % SHP_ARRAY_SIZE(q->early_cancels)] = id;
	pthread_mutex_unlock(&q->lock);
}

static bool listen_on(PGconn *conn)
{
	/* LISTEN is a utility statement: it cannot be prepared and takes no parameters */
	PGresult *res = PQexec(conn, "LISTEN shepherd_jobs; LISTEN shepherd_job_cancel");
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	PQclear(res);
	return ok;
}

static void *listener_main(void *arg)
{
	struct shd_queue *q = arg;
	PGconn *conn = NULL;
	bool warned = false;

	shp_log_ctx_set("thread", "queue-listener");
	while (!aux_stopping(q)) {
		struct pollfd pfd;
		PGnotify *nt;

		if (!conn || PQstatus(conn) != CONNECTION_OK) {
			if (!ensure_conn(q, &conn, "listener", &warned) || !listen_on(conn)) {
				if (aux_sleep(q, 500))
					break;
				continue;
			}
			wake_fetcher(q); /* NOTIFYs sent while we were away are lost */
		}
		pfd = (struct pollfd){ .fd = PQsocket(conn), .events = POLLIN };
		if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
			continue;
		if (!PQconsumeInput(conn)) {
			PQfinish(conn);
			conn = NULL;
			continue;
		}
		while ((nt = PQnotifies(conn))) {
			if (strcmp(nt->relname, "shepherd_job_cancel") == 0)
				mark_cancel(q, strtoll(nt->extra, NULL, 10));
			else
				wake_fetcher(q);
			PQfreemem(nt);
		}
	}
	if (conn)
		PQfinish(conn);
	return NULL;
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
		log_info("queue maintenance: %s", leader ? "this daemon is the leader"
							 : "leadership lost");
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

static void *maint_main(void *arg)
{
	struct shd_queue *q = arg;
	PGconn *conn = NULL;
	bool warned = false;
	uint64_t next_rescue = 0, next_clean = 0;
	struct shp_error err = SHP_ERROR_INIT;

	shp_log_ctx_set("thread", "queue-maintenance");
	do {
		if (ensure_conn(q, &conn, "maintenance", &warned))
			maint_round(q, conn, shp_now_monotonic_ns(), &next_rescue, &next_clean);
		else
			atomic_store(&q->leader, false);
	} while (!aux_sleep(q, q->cfg.maint_interval_ms));
	if (conn && atomic_load(&q->leader) &&
	    shd_queue_resign(conn, LEADER_NAME, q->worker_id, &err) < 0)
		log_warn("resigning the queue leadership failed, ignoring: %s", err.msg);
	atomic_store(&q->leader, false);
	if (conn)
		PQfinish(conn);
	return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static int def(int v, int d)
{
	return v > 0 ? v : d;
}

/* Names that go into array literals unquoted-safe: printable, no quotes, commas or braces. */
static bool is_plain_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SHD_JOB_NAME_MAX)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || strchr("\"\\,{}", *s))
			return false;
	return true;
}

static int copy_queues(struct shd_queue *q, const char *const *queues, struct shp_error *err)
{
	struct shp_buf b = SHP_BUF_INIT(QUEUES_MAX * (SHD_JOB_NAME_MAX + 4));
	int r = 0, i;

	if (!queues)
		return 0;
	for (i = 0; queues[i] && r == 0; i++) {
		if (i >= QUEUES_MAX || !is_plain_name(queues[i])) {
			shp_buf_release(&b);
			return shp_error_set(err, SHP_E_INVAL, "invalid or too many queue names");
		}
		r = shp_buf_addf(&b, "%s\"%s\"", i ? "," : "{", queues[i]);
	}
	r = r ?: shp_buf_add(&b, i ? "}" : "{}");
	q->queues_literal = r == 0 ? shp_buf_detach(&b, NULL) : NULL;
	shp_buf_release(&b);
	return q->queues_literal ? 0 : shp_error_set(err, SHP_E_NOMEM, "out of memory");
}

struct shd_queue *shd_queue_new(const struct shd_queue_config *cfg, struct shp_error *err)
{
	ERR_LOCAL(err);
	struct shd_queue *q;
	char host[64] = "localhost", rnd[9] = "0";

	if (!cfg->db || !cfg->db->conninfo || cfg->workers < 1 || cfg->workers > 256 ||
	    cfg->fetch_batch < 1 || cfg->fetch_batch > 1000 || cfg->poll_interval_ms < 1 ||
	    cfg->shutdown_grace_ms < 0) {
		shp_error_set(err, SHP_E_INVAL, "invalid queue configuration");
		return NULL;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	q->cfg = *cfg;
	q->cfg.queues = NULL;
	q->cfg.lease_buffer_ms = def(cfg->lease_buffer_ms, 5000);
	q->cfg.retry_base_ms = def(cfg->retry_base_ms, 1000);
	q->cfg.retry_max_ms = def(cfg->retry_max_ms, 3600000);
	q->cfg.leader_ttl_ms = def(cfg->leader_ttl_ms, 5000);
	q->cfg.maint_interval_ms = def(cfg->maint_interval_ms, 1000);
	q->cfg.rescue_interval_ms = def(cfg->rescue_interval_ms, 2000);
	q->cfg.clean_interval_ms = def(cfg->clean_interval_ms, 60000);
	q->cfg.completed_retention_s = def(cfg->completed_retention_s, 86400);
	q->cfg.final_retention_s = def(cfg->final_retention_s, 7 * 86400);
	/* two batches in memory: the next claim overlaps the completion of the last one */
	q->capacity = cfg->workers + 2 * cfg->fetch_batch;
	q->db = *cfg->db;
	q->conninfo = strdup(cfg->db->conninfo);
	q->appname = strdup(cfg->db->application_name ? cfg->db->application_name : "shepherdd");
	q->db.conninfo = q->conninfo;
	q->db.application_name = q->appname;
	q->workers = calloc((size_t)cfg->workers, sizeof(*q->workers));
	pthread_mutex_init(&q->lock, NULL);
	pthread_mutex_init(&q->done_lock, NULL);
	pthread_mutex_init(&q->stats_lock, NULL);
	pthread_mutex_init(&q->aux_lock, NULL);
	cond_init_mono(&q->work_cond);
	cond_init_mono(&q->fetch_cond);
	cond_init_mono(&q->idle_cond);
	cond_init_mono(&q->done_cond);
	cond_init_mono(&q->aux_cond);
	atomic_init(&q->leader, false);
	if (!q->conninfo || !q->appname || !q->workers) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return shd_queue_free(q);
	}
	if (copy_queues(q, cfg->queues, err) < 0)
		return shd_queue_free(q);
	if (cfg->worker_id) {
		(void)snprintf(q->worker_id, sizeof(q->worker_id), "%s", cfg->worker_id);
	} else {
		(void)gethostname(host, sizeof(host) - 1);
		if (shp_random_hex(4, rnd, NULL) < 0)
			(void)snprintf(rnd, sizeof(rnd), "%x", (unsigned)shp_now_monotonic_ns());
		(void)snprintf(q->worker_id, sizeof(q->worker_id), "%s/%d/%s", host, (int)getpid(),
			       rnd);
	}
	return q;
}

int shd_queue_register(struct shd_queue *q, const struct shd_job_kind *kind,
		       struct shp_error *err)
{
	ERR_LOCAL(err);
	if (q->started || !kind->run || !kind->name || !is_plain_name(kind->name))
		return shp_error_set(err, SHP_E_INVAL, "invalid job kind registration");
	if (find_kind(q, kind->name))
		return shp_error_set(err, SHP_E_CONFLICT, "job kind '%s' is already registered",
				     kind->name);
	if (q->nkinds >= KINDS_MAX)
		return shp_error_set(err, SHP_E_LIMIT, "more than %d job kinds", KINDS_MAX);
	q->kinds[q->nkinds++].k = *kind;
	return 0;
}

int shd_queue_add_periodic(struct shd_queue *q, const char *name, const char *spec,
			   const char *kind, const char *args, struct shp_error *err)
{
	ERR_LOCAL(err);
	struct periodic *p;
	int64_t period;

	if (q->started || q->nperiodic >= PERIODIC_MAX)
		return shp_error_set(err, SHP_E_LIMIT, "cannot add periodic job '%s'", name);
	if (shd_periodic_due(spec, 0, &period, err) < 0)
		return -err->code;
	if (!is_plain_name(name) || strlen(name) >= sizeof(p->name) ||
	    strlen(spec) >= sizeof(p->spec) || !is_plain_name(kind))
		return shp_error_set(err, SHP_E_INVAL, "invalid periodic job '%s'", name);
	p = &q->periodic[q->nperiodic];
	(void)snprintf(p->name, sizeof(p->name), "%s", name);
	(void)snprintf(p->spec, sizeof(p->spec), "%s", spec);
	(void)snprintf(p->kind, sizeof(p->kind), "%s", kind);
	p->args = strdup(args ? args : "{}");
	if (!p->args)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	q->nperiodic++;
	return 0;
}

int shd_queue_start(struct shd_queue *q, struct shp_error *err)
{
	ERR_LOCAL(err);
	int r = 0, i;

	if (q->started)
		return shp_error_set(err, SHP_E_INVAL, "the queue is already started");
	q->started = true;
	r = pthread_create(&q->completer, NULL, completer_main, q);
	r = r ?: pthread_create(&q->fetcher, NULL, fetcher_main, q);
	r = r ?: pthread_create(&q->listener, NULL, listener_main, q);
	if (q->cfg.maintenance)
		r = r ?: pthread_create(&q->maint, NULL, maint_main, q);
	for (i = 0; i < q->cfg.workers && r == 0; i++) {
		q->workers[i] = (struct worker){ .q = q, .index = i };
		r = pthread_create(&q->workers[i].thread, NULL, worker_main, &q->workers[i]);
	}
	if (r != 0)
		abort(); /* threads are created at startup only; failing then is fatal */
	log_info("queue started: %d worker(s), worker id %s", q->cfg.workers, q->worker_id);
	return 0;
}

/* A bare copy of a job for the completer: requeue it. Caller holds q->lock. */
static void requeue_copy(struct shd_queue *q, const struct shd_job *job)
{
	struct shd_job *c = calloc(1, sizeof(*c));

	if (!c)
		abort();
	c->id = job->id;
	memcpy(c->fence, job->fence, sizeof(c->fence));
	c->outcome = OUTCOME_REQUEUE;
	push_done(q, c);
}

static void stop_threads(struct shd_queue *q)
{
	struct timespec ts = deadline_ts(ms_ns(q->cfg.shutdown_grace_ms));
	int abandoned = 0;

	pthread_mutex_lock(&q->lock);
	q->stop_fetch = true;
	pthread_cond_broadcast(&q->fetch_cond);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->fetcher, NULL);

	pthread_mutex_lock(&q->lock);
	while (q->ready_head) {
		struct shd_job *j = q->ready_head;

		q->ready_head = j->next;
		j->outcome = OUTCOME_REQUEUE;
		push_done(q, j);
	}
	q->ready_tail = NULL;
	while (q->running > 0 && pthread_cond_timedwait(&q->idle_cond, &q->lock, &ts) == 0)
		;
	for (int i = 0; i < q->cfg.workers; i++) {
		struct shd_job *j = q->workers[i].current;

		if (j && !atomic_load(&j->abandoned)) {
			atomic_store(&j->abandoned, true);
			requeue_copy(q, j);
			abandoned++;
		}
	}
	q->stop_workers = true;
	pthread_cond_broadcast(&q->work_cond);
	pthread_mutex_unlock(&q->lock);
	if (abandoned)
		log_warn("queue: %d job(s) still running after the shutdown grace; requeued",
			 abandoned);
	for (int i = 0; i < q->cfg.workers; i++)
		pthread_join(q->workers[i].thread, NULL);

	pthread_mutex_lock(&q->done_lock);
	q->stop_completer = true;
	pthread_cond_broadcast(&q->done_cond);
	pthread_mutex_unlock(&q->done_lock);
	pthread_join(q->completer, NULL);

	pthread_mutex_lock(&q->aux_lock);
	q->stop_aux = true;
	pthread_cond_broadcast(&q->aux_cond);
	pthread_mutex_unlock(&q->aux_lock);
	pthread_join(q->listener, NULL);
	if (q->cfg.maintenance)
		pthread_join(q->maint, NULL);
}

struct shd_queue *shd_queue_free(struct shd_queue *q)
{
	if (!q)
		return NULL;
	if (q->started) {
		stop_threads(q);
		log_info("queue stopped");
	}
	for (int i = 0; i < q->nperiodic; i++)
		free(q->periodic[i].args);
	pthread_mutex_destroy(&q->lock);
	pthread_mutex_destroy(&q->done_lock);
	pthread_mutex_destroy(&q->stats_lock);
	pthread_mutex_destroy(&q->aux_lock);
	pthread_cond_destroy(&q->work_cond);
	pthread_cond_destroy(&q->fetch_cond);
	pthread_cond_destroy(&q->idle_cond);
	pthread_cond_destroy(&q->done_cond);
	pthread_cond_destroy(&q->aux_cond);
	free(q->workers);
	free(q->queues_literal);
	free(q->conninfo);
	free(q->appname);
	free(q);
	return NULL;
}

bool shd_queue_is_leader(struct shd_queue *q)
{
	return atomic_load(&q->leader);
}

const char *shd_queue_worker_id(const struct shd_queue *q)
{
	return q->worker_id;
}

const char *shd_queue_worker_sql(const char *name)
{
	if (shp_streq(name, "claim"))
		return claim_sql;
	if (shp_streq(name, "complete"))
		return complete_sql;
	return NULL;
}
