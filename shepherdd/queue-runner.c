/*
 * The queue runner: its lifecycle (new, register, start, graceful stop, free), the worker
 * threads that run the handlers, and what the other threads share (connections, the kind table
 * with its run-time samples). Every thread opens and closes its own PGconn; none is shared.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
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
#include "log.h"
#include "queue-internal.h"
#include "queue.h"
#include "util.h"

static void cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

/* Wait on the aux condvar for ms; true when asked to stop. */
bool shd_queue_aux_sleep(struct shd_queue *q, int ms)
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

bool shd_queue_aux_stopping(struct shd_queue *q)
{
	bool stop;

	pthread_mutex_lock(&q->aux_lock);
	stop = q->stop_aux;
	pthread_mutex_unlock(&q->aux_lock);
	return stop;
}

/* Open *conn if it is missing or broken; false (logged once per outage) when that fails. */
bool shd_queue_ensure_conn(struct shd_queue *q, PGconn **conn, const char *who, bool *warned)
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

struct kind_entry *shd_queue_find_kind(struct shd_queue *q, const char *name)
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
int shd_queue_kind_lease_ms(struct shd_queue *q, struct kind_entry *e)
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

void shd_queue_kind_record(struct shd_queue *q, struct kind_entry *e, uint64_t ns)
{
	uint64_t ms = ns / 1000000ull;

	pthread_mutex_lock(&q->stats_lock);
	e->samples_ms[e->next] = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
	e->next = (e->next + 1) % SAMPLES;
	if (e->nsamples < SAMPLES)
		e->nsamples++;
	pthread_mutex_unlock(&q->stats_lock);
}

void shd_queue_wake_fetcher(struct shd_queue *q)
{
	char c = 1;

	/* a full pipe already holds a wake-up */
	(void)!write(q->wake_fd[1], &c, 1);
}

struct shd_job *shd_queue_job_free(struct shd_job *job)
{
	if (!job)
		return NULL;
	json_decref(job->args); /* kind, queue and args_text live in the job's allocation */
	free(job);
	return NULL;
}

/* ---- workers ------------------------------------------------------------------------------ */

static void run_job(struct shd_queue *q, struct shd_job *job)
{
	struct kind_entry *e = shd_queue_find_kind(q, job->kind);
	uint64_t t0 = shp_now_monotonic_ns();

	if (t0 + ms_ns(100) >= job->lease_deadline_ns) {
		/* waited in memory until its lease ran out: never run it twice, give it back */
		job->outcome = OUTCOME_REQUEUE;
		return;
	}
	/* parsed here rather than by the fetcher: the workers share the work */
	job->args = json_loads(job->args_text, 0, NULL);
	if (!job->args) {
		/* rows written by hand may hold args jansson refuses (e.g. nested too deep) */
		(void)snprintf(job->error, sizeof(job->error), "the job's args cannot be parsed");
		job->outcome = SHD_JOB_DISCARD; /* retrying cannot help */
		return;
	}
	if (!e) {
		job->outcome = shd_job_fail(job, "no handler for job kind '%s'", job->kind);
		return;
	}
	job->outcome = e->k.run(job, e->k.ctx);
	shd_queue_kind_record(q, e, shp_now_monotonic_ns() - t0);
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
		if (!q->ready_head) {
			q->ready_tail = NULL;
			shd_queue_wake_fetcher(q); /* drained: claim whatever fits */
		}
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
		q->held--;
		if (q->capacity - q->held == shd_queue_refill_at(q))
			shd_queue_wake_fetcher(q); /* room for a claim worth its cost */
		/* an abandoned job was requeued at shutdown: its result does not count */
		if (atomic_load(&job->abandoned))
			shd_queue_job_free(job);
		else
			shd_queue_push_done(q, job);
		pthread_cond_broadcast(&q->idle_cond);
	}
	pthread_mutex_unlock(&q->lock);
	if (w->conn)
		PQfinish(w->conn);
	w->conn = NULL;
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
	q->wake_fd[0] = q->wake_fd[1] = -1;
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
	/* up to two batches wait for workers: the next claim overlaps the running of the last */
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
	cond_init_mono(&q->idle_cond);
	cond_init_mono(&q->done_cond);
	cond_init_mono(&q->aux_cond);
	atomic_init(&q->leader, false);
	if (pipe2(q->wake_fd, O_NONBLOCK | O_CLOEXEC) < 0)
		q->wake_fd[0] = q->wake_fd[1] = -1;
	if (!q->conninfo || !q->appname || !q->workers || q->wake_fd[0] < 0) {
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

int shd_queue_register(struct shd_queue *q, const struct shd_job_kind *kind, struct shp_error *err)
{
	ERR_LOCAL(err);
	if (q->started || !kind->run || !kind->name || !is_plain_name(kind->name))
		return shp_error_set(err, SHP_E_INVAL, "invalid job kind registration");
	if (shd_queue_find_kind(q, kind->name))
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
	r = pthread_create(&q->completer, NULL, shd_queue_completer_main, q);
	r = r ?: pthread_create(&q->fetcher, NULL, shd_queue_fetcher_main, q);
	r = r ?: pthread_create(&q->listener, NULL, shd_queue_listener_main, q);
	if (q->cfg.maintenance)
		r = r ?: pthread_create(&q->maint, NULL, shd_queue_maint_main, q);
	for (i = 0; i < q->cfg.workers && r == 0; i++) {
		q->workers[i] = (struct worker){.q = q, .index = i};
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
	shd_queue_push_done(q, c);
}

static void stop_threads(struct shd_queue *q)
{
	struct timespec ts = deadline_ts(ms_ns(q->cfg.shutdown_grace_ms));
	int abandoned = 0;

	pthread_mutex_lock(&q->lock);
	q->stop_fetch = true;
	pthread_mutex_unlock(&q->lock);
	shd_queue_wake_fetcher(q);
	pthread_join(q->fetcher, NULL);

	pthread_mutex_lock(&q->lock);
	while (q->ready_head) {
		struct shd_job *j = q->ready_head;

		q->ready_head = j->next;
		q->held--;
		j->outcome = OUTCOME_REQUEUE;
		shd_queue_push_done(q, j);
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
	for (int i = 0; i < 2; i++)
		if (q->wake_fd[i] >= 0)
			close(q->wake_fd[i]);
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
		return shd_queue_claim_sql;
	if (shp_streq(name, "claim-queues"))
		return shd_queue_claim_queues_sql;
	if (shp_streq(name, "done"))
		return shd_queue_done_sql;
	if (shp_streq(name, "complete"))
		return shd_queue_complete_sql;
	return NULL;
}
