/*
 * The durable job queue (River's design on PostgreSQL): jobs are rows of the `jobs` table,
 * inserted inside the caller's transaction, claimed in batches with FOR UPDATE SKIP LOCKED under
 * a lease, run by a pool of worker threads and finished in short batched transactions that only
 * the lease holder can win. One elected leader among the daemons rescues expired leases, makes
 * due jobs available, deletes old finished jobs and enqueues periodic jobs.
 *
 * Three groups of functions:
 *  - enqueue and admin (queue-insert.c): plain functions on a caller's PGconn, any thread; they
 *    never open or close a transaction themselves, so enqueue is atomic with the caller's work;
 *  - the runner, struct shd_queue (queue-runner.c and the files of its threads, listed in
 *    queue-internal.h): created and started by one thread (main), which also stops and frees
 *    it; its threads each own one PGconn;
 *  - handler helpers taking a struct shd_job *: called only from the handler's own thread,
 *    during the handler call.
 * See docs/internals/queue.md for the states and the SQL.
 */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <libpq-fe.h>
#include "cleanup.h"

struct shp_error;
struct shd_dbpool_config;
struct shd_queue;

/* Job states, as the job_state enum of the schema. */
enum shd_job_state {
	SHD_JOB_AVAILABLE,
	SHD_JOB_SCHEDULED,
	SHD_JOB_RUNNING,
	SHD_JOB_RETRYABLE,
	SHD_JOB_COMPLETED,
	SHD_JOB_CANCELLED,
	SHD_JOB_DISCARDED,
	_SHD_JOB_STATE_MAX,
};

/* SLA classes: they set the default attempts and the lease renewals allowed. */
enum shd_sla_class { SHD_SLA_FAST, SHD_SLA_MEDIUM, SHD_SLA_LONG, _SHD_SLA_MAX };

const char *shd_job_state_to_string(enum shd_job_state s);
int shd_job_state_from_string(const char *s); /* -1 if unknown */
const char *shd_sla_class_to_string(enum shd_sla_class c);
int shd_sla_class_from_string(const char *s);   /* -1 if unknown */
int shd_sla_max_attempts(enum shd_sla_class c); /* fast 3, medium 5, long 3 */
int shd_sla_max_renewals(enum shd_sla_class c); /* fast 1, medium 3, long 10 */

#define SHD_JOB_PRIORITY_URGENT 0
#define SHD_JOB_PRIORITY_NORMAL 50
#define SHD_JOB_PRIORITY_BULK 100
#define SHD_JOB_NAME_MAX 128          /* kind, queue, unique key, tag: bytes */
#define SHD_JOB_ARGS_MAX (256 * 1024) /* args and metadata JSON text: bytes */
#define SHD_JOB_TAGS_MAX 16
#define SHD_JOB_BATCH_MAX 10000 /* jobs per shd_job_insert_many call */
#define SHD_JOB_LIST_MAX 500    /* rows per shd_job_list page */

/* ---- enqueue (queue-insert.c) ---------------------------------------------------------------- */

/* What to enqueue. Start from SHD_JOB_PARAMS_INIT; every pointer is borrowed for the call. */
struct shd_job_params {
	const char *kind;     /* required: the handler's name */
	const char *queue;    /* NULL = "default" */
	const char *args;     /* JSON object text; NULL = "{}" */
	const char *metadata; /* JSON object text; NULL = "{}" */
	int priority;         /* 0 (urgent) .. 100 (bulk) */
	enum shd_sla_class sla;
	int max_attempts;   /* 0 = the SLA class default */
	uint64_t run_at_us; /* realtime µs; 0 or past = now, future = state scheduled */
	/* NULL = none; else at most one live (not cancelled/discarded) job */
	const char *unique_key;
	const char *const *tags; /* NULL-terminated, at most SHD_JOB_TAGS_MAX; NULL = none */
};
#define SHD_JOB_PARAMS_INIT                                                                        \
	{                                                                                          \
		.priority = SHD_JOB_PRIORITY_NORMAL, .sla = SHD_SLA_MEDIUM                         \
	}

struct shd_job_inserted {
	int64_t id; /* the new job, or the existing one for a duplicate unique key */
	bool duplicate;
};

/*
 * Enqueue one job on conn, inside the caller's open transaction if there is one (else it
 * commits on its own). Workers are woken by NOTIFY shepherd_jobs when that transaction commits;
 * nothing happens if it rolls back. SHP_E_INVAL for a bad parameter, SHP_E_DB/UNAVAIL.
 */
int shd_job_insert(PGconn *conn, const struct shd_job_params *p, struct shd_job_inserted *ret,
		   struct shp_error *err) SHP_MUSTCHECK;

/* Enqueue n jobs (1..SHD_JOB_BATCH_MAX) in one statement; ret has n entries, in order. */
int shd_job_insert_many(PGconn *conn, const struct shd_job_params *p, size_t n,
			struct shd_job_inserted *ret, struct shp_error *err) SHP_MUSTCHECK;

/* ---- admin (queue-insert.c); any connection, any thread ------------------------------------- */

/* The job as a JSON object (every column, args included): a new reference. SHP_E_NOTFOUND. */
json_t *shd_job_get(PGconn *conn, int64_t id, struct shp_error *err);

struct shd_job_filter {
	int state;         /* enum shd_job_state, or -1 for any */
	const char *kind;  /* NULL = any */
	const char *queue; /* NULL = any */
	int64_t before_id; /* keyset cursor: only ids below it; 0 = from the newest */
	int limit;         /* 1..SHD_JOB_LIST_MAX */
};
/*
 * Jobs newest first: {"jobs": [...], "next_before_id": N or null}. A new reference, or NULL
 * with SHP_E_INVAL (bad filter) / SHP_E_DB.
 */
json_t *shd_job_list(PGconn *conn, const struct shd_job_filter *f, struct shp_error *err);

/*
 * Put a discarded, cancelled or retryable job back to available now (the attempt count stays;
 * max_attempts grows by one if it was exhausted). SHP_E_NOTFOUND, SHP_E_CONFLICT for another
 * state or when a live job already holds its unique key.
 */
int shd_job_retry(PGconn *conn, int64_t id, struct shp_error *err) SHP_MUSTCHECK;

/* Discard a job that is waiting (available, scheduled, retryable). SHP_E_CONFLICT otherwise. */
int shd_job_discard(PGconn *conn, int64_t id, struct shp_error *err) SHP_MUSTCHECK;

/*
 * Request cancellation (idempotent). A waiting job is cancelled at once; a running one is told
 * (NOTIFY shepherd_job_cancel) and stops at its next shd_job_should_stop(); a finished one is
 * left alone. *ret_state (may be NULL) is the state after the call. SHP_E_NOTFOUND.
 */
int shd_job_cancel(PGconn *conn, int64_t id, enum shd_job_state *ret_state,
		   struct shp_error *err) SHP_MUSTCHECK;

/* Pause or resume a queue by name: a paused queue is not fetched from. Idempotent. */
int shd_queue_pause(PGconn *conn, const char *queue, struct shp_error *err) SHP_MUSTCHECK;
int shd_queue_resume(PGconn *conn, const char *queue, struct shp_error *err) SHP_MUSTCHECK;

/* {"queues": {"<name>": {"paused": bool, "available": N, ...every state...}}}: new reference. */
json_t *shd_queue_stats(PGconn *conn, struct shp_error *err);

/* ---- handlers -------------------------------------------------------------------------------- */

/* What a handler returns. */
enum shd_job_outcome {
	SHD_JOB_DONE,    /* completed */
	SHD_JOB_FAILED,  /* retried with backoff, or discarded after max_attempts */
	SHD_JOB_SNOOZE,  /* run again later; the attempt is not counted (shd_job_snooze) */
	SHD_JOB_CANCEL,  /* cancelled (final) */
	SHD_JOB_DISCARD, /* discarded now (final, no retry) */
};

/*
 * The job a handler runs. Public fields are read-only for the handler and valid during the call;
 * the fields after `priv` belong to the queue.
 */
struct shd_job {
	int64_t id;
	const char *kind;
	const char *queue;
	json_t *args; /* the args object (borrowed; do not modify) */
	int attempt;  /* 1 on the first run */
	int max_attempts;
	int priority;
	enum shd_sla_class sla;
	/* private */
	struct shd_queue *priv;
	const char *args_text;      /* args as claimed; parsed into args before the handler runs */
	int worker;                 /* index of the running worker, -1 while queued */
	char fence[40];             /* attempted_at of this claim: proves the lease */
	uint64_t lease_deadline_ns; /* monotonic: the lease ends here unless renewed */
	int lease_ms;
	int renewals;
	atomic_bool cancel;    /* set by the listener (NOTIFY) or a heartbeat */
	atomic_bool abandoned; /* shutdown gave up on it: it was requeued */
	enum shd_job_outcome outcome;
	int snooze_ms;
	char error[512];
	struct shd_job *next; /* queue-internal lists */
};

typedef enum shd_job_outcome (*shd_job_fn)(struct shd_job *job, void *ctx);

struct shd_job_kind {
	const char *name; /* static string */
	shd_job_fn run;
	void *ctx;      /* passed to run; must be safe to use from any worker thread */
	int timeout_ms; /* expected longest step; the lease starts from it */
};

/* True once the job should stop at the next safe point: cancelled, or given up at shutdown. */
bool shd_job_should_stop(struct shd_job *job);
/* Record why the job failed and return SHD_JOB_FAILED (for `return shd_job_fail(...)`). */
enum shd_job_outcome shd_job_fail(struct shd_job *job, const char *fmt, ...) SHP_PRINTF(2, 3);
/* Ask to run again in delay_ms (0..24 h) without counting the attempt; returns SHD_JOB_SNOOZE. */
enum shd_job_outcome shd_job_snooze(struct shd_job *job, int delay_ms);
/*
 * Extend the lease (heartbeat) by the kind's lease length. SHP_E_LIMIT once the SLA class's
 * renewals are used up, SHP_E_CONFLICT if the lease was lost (the job was rescued or requeued:
 * stop at once). Also notices a cancel request.
 */
int shd_job_heartbeat(struct shd_job *job, struct shp_error *err) SHP_MUSTCHECK;
/*
 * The worker thread's own connection (opened on first use, autocommit, no transaction open),
 * for the handler's own statements. Borrowed: valid during the call. NULL with err if the
 * database cannot be reached.
 */
PGconn *shd_job_conn(struct shd_job *job, struct shp_error *err);

/* ---- the runner (queue-runner.c) ------------------------------------------------------------ */

struct shd_queue_config {
	const struct shd_dbpool_config *db; /* session settings for the queue's own connections */
	const char *worker_id;              /* NULL: "<host>/<pid>/<random>" */
	const char *const *queues;          /* NULL-terminated names served; NULL = every queue */
	int workers;                        /* handler threads, 1..256 */
	int fetch_batch;                    /* jobs claimed per fetch, 1..1000 */
	int poll_interval_ms;               /* fetch this often even without a NOTIFY */
	int shutdown_grace_ms;              /* running jobs get this long at shutdown */
	int lease_buffer_ms;                /* added to a kind's timeout for its lease (0 = 5 s) */
	int retry_base_ms;                  /* backoff = base * 2^attempt ± 10 % (0 = 1 s) */
	int retry_max_ms;                   /* backoff cap (0 = 1 h) */
	bool maintenance;                   /* take part in leader election and maintenance */
	int leader_ttl_ms;         /* leadership lasts this long unless renewed (0 = 5 s) */
	int maint_interval_ms;     /* scheduler and leadership period (0 = 1 s) */
	int rescue_interval_ms;    /* rescuer period (0 = 2 s) */
	int clean_interval_ms;     /* cleaner period (0 = 60 s) */
	int completed_retention_s; /* completed jobs are deleted after this (0 = 24 h) */
	int final_retention_s;     /* cancelled and discarded ones after this (0 = 7 d) */
};

/*
 * Create a runner (nothing starts yet). Copies cfg. Kinds and periodic jobs are added before
 * shd_queue_start; both tables are read-only afterwards.
 */
struct shd_queue *shd_queue_new(const struct shd_queue_config *cfg, struct shp_error *err);
/* Add a handler kind (copied); SHP_E_CONFLICT if the name is taken, SHP_E_LIMIT past 64. */
int shd_queue_register(struct shd_queue *q, const struct shd_job_kind *kind,
		       struct shp_error *err) SHP_MUSTCHECK;
/*
 * Add a periodic job: spec is "@every DURATION" (e.g. "@every 60s") or "@daily HH:MM" (UTC).
 * The leader enqueues kind with args once per period, unique by (name, period), so two leaders
 * never enqueue one period twice. SHP_E_INVAL for a bad spec.
 */
int shd_queue_add_periodic(struct shd_queue *q, const char *name, const char *spec,
			   const char *kind, const char *args, struct shp_error *err) SHP_MUSTCHECK;
/* Start the threads. Connection failures are retried by each thread with a backoff. */
int shd_queue_start(struct shd_queue *q, struct shp_error *err) SHP_MUSTCHECK;
/*
 * Graceful stop: stop fetching, requeue claimed jobs not yet started, give running jobs
 * shutdown_grace_ms, then requeue the rest (available, attempt not counted; their handlers see
 * shd_job_should_stop and their results are ignored), flush completions, resign leadership,
 * join every thread. Returns NULL; q may be NULL or never started.
 */
struct shd_queue *shd_queue_free(struct shd_queue *q);
SHP_DEFINE_CLEANUP(struct shd_queue *, shd_queue_free)

/* True while this runner holds the leadership. */
bool shd_queue_is_leader(struct shd_queue *q);
/* This runner's worker id (borrowed, valid for q's life). */
const char *shd_queue_worker_id(const struct shd_queue *q);

/* ---- maintenance steps (queue-maint.c): run by the leader's thread, on any conn ---------- */

/*
 * Take or renew the leadership `name` for leader_id for ttl_ms; *ret_leader says whether
 * leader_id holds it now. Another id takes over only after the row expired.
 */
int shd_queue_elect(PGconn *conn, const char *name, const char *leader_id, int ttl_ms,
		    bool *ret_leader, struct shp_error *err) SHP_MUSTCHECK;
/* Give the leadership up (if held by leader_id) so another daemon takes over at once. */
int shd_queue_resign(PGconn *conn, const char *name, const char *leader_id,
		     struct shp_error *err) SHP_MUSTCHECK;
/*
 * Rescuer: running jobs whose lease expired become retryable now (rescues + 1, the error
 * recorded), or discarded past max_attempts; each is logged at info. At most limit per call.
 */
int shd_queue_rescue(PGconn *conn, int limit, int *ret_count, struct shp_error *err) SHP_MUSTCHECK;
/* Scheduler: due scheduled and retryable jobs become available (then NOTIFY). */
int shd_queue_schedule(PGconn *conn, int limit, int *ret_count,
		       struct shp_error *err) SHP_MUSTCHECK;
/* Cleaner: delete completed jobs older than completed_s and cancelled/discarded past final_s. */
int shd_queue_clean(PGconn *conn, int completed_s, int final_s, int limit, int *ret_count,
		    struct shp_error *err) SHP_MUSTCHECK;
/*
 * Enqueue the periodic job `name` for the period due at now_s, if any (unique key
 * "periodic:<name>:<period start>"): *ret_enqueued is true when a new job was inserted.
 */
int shd_queue_periodic_enqueue(PGconn *conn, const char *name, const char *spec, const char *kind,
			       const char *args, int64_t now_s, bool *ret_enqueued,
			       struct shp_error *err) SHP_MUSTCHECK;

/*
 * The text of an internal statement ("claim", "claim-queues", "done", "complete", "rescue",
 * "schedule", "clean"), so tests can EXPLAIN exactly what runs; NULL if unknown.
 * shd_queue_worker_sql knows the first four.
 */
const char *shd_queue_sql(const char *name);
const char *shd_queue_worker_sql(const char *name);

/*
 * The period a periodic spec is due for at now_s (epoch seconds): 0 and *ret_period_start set
 * when a job for that period should exist, 1 when none is due now. For tests and the leader.
 */
int shd_periodic_due(const char *spec, int64_t now_s, int64_t *ret_period_start,
		     struct shp_error *err);

/* ---- the test action set (jobs-test.c) ------------------------------------------------------ */

/* Register test.noop, test.sleep, test.fail and test.effect on q. */
int shd_jobs_test_register(struct shd_queue *q, struct shp_error *err) SHP_MUSTCHECK;
