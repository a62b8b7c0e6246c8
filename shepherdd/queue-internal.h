/*
 * The runner's private parts, shared by its files: struct shd_queue and its locks, the kind
 * table, and the entry points of the threads. queue-runner.c owns the lifecycle and the
 * workers, queue-fetch.c the claims, queue-complete.c the completions, queue-listen.c the
 * LISTEN thread, queue-job.c the handler helpers and queue-maint.c the leader's thread.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <libpq-fe.h>

#include "db.h"
#include "queue.h"

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
#define UNRECORDED_MAX (2 * COMPLETE_BATCH) /* the fetcher waits for the completer past it */
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
	PGconn *conn;            /* owned by this worker's thread only */
	struct shd_job *current; /* guarded by q->lock */
};

struct shd_queue {
	struct shd_queue_config cfg;
	struct shd_dbpool_config db;
	char *conninfo, *appname;
	char worker_id[128];
	char *queues_literal; /* text[] literal of the served queues, or NULL for all */
	int capacity;         /* workers + 2 × fetch_batch: claimed jobs not yet run, at most */

	/* read-only once started, except samples (stats_lock) */
	struct kind_entry kinds[KINDS_MAX];
	int nkinds;
	struct periodic periodic[PERIODIC_MAX];
	int nperiodic;

	/* lock protects the ready list, every worker's current job, held/running and the stop
	 * flags of the fetcher and workers */
	pthread_mutex_t lock;
	pthread_cond_t work_cond; /* workers: a job is ready, or stop */
	pthread_cond_t idle_cond; /* shutdown: a running job finished */
	/*
	 * The fetcher sleeps in poll() on its connection (NOTIFY) and on this pipe, which other
	 * threads write a byte to when there is room again or it should stop. Non-blocking.
	 */
	int wake_fd[2];
	struct shd_job *ready_head, *ready_tail;
	/*
	 * Cancel requests for jobs not found in memory: a job claimed in the database but not yet
	 * handed to the ready list when its NOTIFY came. Checked as claimed jobs arrive.
	 */
	int64_t early_cancels[64];
	unsigned next_early_cancel;
	int held;       /* claimed and not yet finished by a worker (ready or running) */
	int running;    /* inside a handler */
	int unrecorded; /* finished, waiting for the completer (at most UNRECORDED_MAX) */
	bool stop_fetch, stop_workers;

	/* done_lock protects the list of finished jobs waiting for the completer and its stop flag
	 */
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

static inline uint64_t ms_ns(int ms)
{
	return (uint64_t)ms * 1000000ull;
}

/* A CLOCK_MONOTONIC deadline for pthread_cond_timedwait (the runner's condvars use that clock). */
static inline struct timespec deadline_ts(uint64_t ns_from_now)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ns_from_now += (uint64_t)ts.tv_nsec;
	ts.tv_sec += (time_t)(ns_from_now / 1000000000ull);
	ts.tv_nsec = (long)(ns_from_now % 1000000000ull);
	return ts;
}

/* ---- queue-runner.c ---------------------------------------------------------------------- */

/* Open *conn if it is missing or broken; false (logged once per outage) when that fails. */
bool shd_queue_ensure_conn(struct shd_queue *q, PGconn **conn, const char *who, bool *warned);
/* Wait on the aux condvar for ms; true when asked to stop. */
bool shd_queue_aux_sleep(struct shd_queue *q, int ms);
bool shd_queue_aux_stopping(struct shd_queue *q);
struct kind_entry *shd_queue_find_kind(struct shd_queue *q, const char *name);
/* lease = max(timeout + buffer, 2 × p95 of recent runs); p95 starts at the timeout. */
int shd_queue_kind_lease_ms(struct shd_queue *q, struct kind_entry *e);
void shd_queue_kind_record(struct shd_queue *q, struct kind_entry *e, uint64_t ns);
/* The room for which the fetcher claims while jobs still wait for workers: half a batch. */
static inline int shd_queue_refill_at(const struct shd_queue *q)
{
	return (q->cfg.fetch_batch + 1) / 2;
}
/* Wake the fetcher (any thread, any lock held). */
void shd_queue_wake_fetcher(struct shd_queue *q);
/* Free a job and its args; NULL-safe, returns NULL. */
struct shd_job *shd_queue_job_free(struct shd_job *job);

/* ---- thread entry points (arg: the struct shd_queue) ------------------------------------- */

void *shd_queue_fetcher_main(void *arg);   /* queue-fetch.c */
void *shd_queue_completer_main(void *arg); /* queue-complete.c */
void *shd_queue_listener_main(void *arg);  /* queue-listen.c */
void *shd_queue_maint_main(void *arg);     /* queue-maint.c */

/* ---- queue-fetch.c, queue-complete.c, queue-listen.c ------------------------------------- */

extern const char shd_queue_claim_sql[];
extern const char shd_queue_claim_queues_sql[];
extern const char shd_queue_done_sql[];
extern const char shd_queue_complete_sql[];
/* Hand a finished job to the completer. Caller holds q->lock (lock order: lock, done_lock). */
void shd_queue_push_done(struct shd_queue *q, struct shd_job *job);
/* A cancel that came before the job reached memory (caller holds q->lock). */
void shd_queue_apply_early_cancel(struct shd_queue *q, struct shd_job *job);
