/*
 * The fetcher thread: claims batches of available jobs in one statement that takes them with
 * FOR UPDATE SKIP LOCKED and sets the lease, and hands them to the workers' ready list, a batch
 * ahead of them (see room()).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/*
 * The claim. One statement: the inner SELECT walks jobs_fetch_idx in order and locks up to $1
 * available jobs with SKIP LOCKED; the UPDATE takes exactly the locked row versions by ctid (a
 * TID scan: no index to descend and no join to misplan; a row that a concurrent update moved
 * after our snapshot is left for the next claim). It runs as a generic plan, planned once per
 * session: every filter is written so that the estimate cannot fall to a row or two, which
 * would make sorting the backlog look cheaper than walking the index (a paused queue is a
 * hashed subplan, estimated at half the rows, where `queue <> ALL (...)` would be estimated at
 * none when there is one queue). Each kind's lease comes in two arrays ($3 names, $4 ms; $5 for
 * other kinds). The served queues, if configured, are $6 of the second text.
 */
#define CLAIM_HEAD                                                                                 \
	"UPDATE jobs j SET state = 'running', attempt = j.attempt + 1, attempted_at = now(),"      \
	" attempted_by = (array_append(j.attempted_by, $2::text))[greatest(1,"                     \
	"  cardinality(j.attempted_by) - 18):],"                                                   \
	" lease_renewals = 0,"                                                                     \
	" lease_expires_at = now() + coalesce(($4::int[])[array_position($3::text[], j.kind)],"    \
	"  $5::int) * interval '1 millisecond'"                                                    \
	" WHERE j.ctid = ANY (ARRAY (SELECT ctid FROM jobs WHERE state = 'available'"              \
	"  AND scheduled_at <= now()"                                                              \
	"  AND NOT (queue = ANY (SELECT name FROM queues WHERE paused_at IS NOT NULL))"
#define CLAIM_TAIL                                                                                 \
	"  ORDER BY priority, scheduled_at, id LIMIT $1 FOR UPDATE SKIP LOCKED))"                  \
	" RETURNING j.id, j.kind, j.queue, j.args, j.priority, j.attempt, j.max_attempts,"         \
	"  j.sla_class, j.attempted_at, j.cancel_requested_at IS NOT NULL"

const char shd_queue_claim_sql[] = CLAIM_HEAD CLAIM_TAIL;
const char shd_queue_claim_queues_sql[] = CLAIM_HEAD "  AND queue = ANY ($6::text[])" CLAIM_TAIL;

/* One allocation per job: the struct, then its kind, queue and args text. */
static struct shd_job *job_from_row(struct shd_queue *q, const PGresult *res, int i, uint64_t t0,
				    const int *lease_ms)
{
	const char *kind = PQgetvalue(res, i, 1), *queue = PQgetvalue(res, i, 2);
	const char *args = PQgetvalue(res, i, 3);
	size_t nkind = strlen(kind) + 1, nqueue = strlen(queue) + 1, nargs = strlen(args) + 1;
	struct shd_job *job = calloc(1, sizeof(*job) + nkind + nqueue + nargs);
	struct kind_entry *e;
	char *p;

	if (!job)
		return NULL;
	p = (char *)(job + 1);
	job->kind = memcpy(p, kind, nkind);
	job->queue = memcpy(p + nkind, queue, nqueue);
	job->args_text = memcpy(p + nkind + nqueue, args, nargs);
	job->priv = q;
	job->worker = -1;
	job->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	job->priority = (int)strtol(PQgetvalue(res, i, 4), NULL, 10);
	job->attempt = (int)strtol(PQgetvalue(res, i, 5), NULL, 10);
	job->max_attempts = (int)strtol(PQgetvalue(res, i, 6), NULL, 10);
	job->sla = (enum shd_sla_class)shd_sla_class_from_string(PQgetvalue(res, i, 7));
	(void)snprintf(job->fence, sizeof(job->fence), "%s", PQgetvalue(res, i, 8));
	atomic_init(&job->cancel, PQgetvalue(res, i, 9)[0] == 't');
	atomic_init(&job->abandoned, false);
	e = shd_queue_find_kind(q, job->kind);
	job->lease_ms = e ? lease_ms[e - q->kinds] : DEFAULT_TIMEOUT_MS + q->cfg.lease_buffer_ms;
	job->lease_deadline_ns = t0 + ms_ns(job->lease_ms);
	if ((int)job->sla < 0)
		return shd_queue_job_free(job);
	return job;
}

/* The lease of every registered kind, as two array literals and in lease_ms[]. */
static int lease_arrays(struct shd_queue *q, struct shp_buf *kinds, struct shp_buf *ms,
			int *lease_ms)
{
	int r = shp_buf_addch(kinds, '{') ?: shp_buf_addch(ms, '{');

	for (int i = 0; i < q->nkinds && r == 0; i++) {
		lease_ms[i] = shd_queue_kind_lease_ms(q, &q->kinds[i]);
		/* kind names are checked at registration: no quotes, commas or braces */
		r = shp_buf_addf(kinds, "%s\"%s\"", i ? "," : "", q->kinds[i].k.name)
			    ?: shp_buf_addf(ms, "%s%d", i ? "," : "", lease_ms[i]);
	}
	return r ?: shp_buf_addch(kinds, '}') ?: shp_buf_addch(ms, '}');
}

/* Claim up to limit jobs onto *list; the count, or -code. */
static int claim(struct shd_queue *q, PGconn *conn, int limit, struct shd_job **list,
		 struct shp_error *err)
{
	struct shp_buf kinds = SHP_BUF_INIT(KINDS_MAX * 160), ms = SHP_BUF_INIT(KINDS_MAX * 16);
	_cleanup_(PQclearp) PGresult *res = NULL;
	int lease_ms[KINDS_MAX];
	char lim[16], def[16];
	uint64_t t0 = shp_now_monotonic_ns();
	int n;

	(void)snprintf(lim, sizeof(lim), "%d", limit);
	(void)snprintf(def, sizeof(def), "%d", DEFAULT_TIMEOUT_MS + q->cfg.lease_buffer_ms);
	if (lease_arrays(q, &kinds, &ms, lease_ms) == 0)
		res = shd_db_exec(
			conn, q->queues_literal ? shd_queue_claim_queues_sql : shd_queue_claim_sql,
			q->queues_literal ? 6 : 5,
			(const char *[]){lim, q->worker_id, kinds.buf, ms.buf, def,
					 q->queues_literal},
			err);
	else
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
	shp_buf_release(&kinds);
	shp_buf_release(&ms);
	if (!res)
		return -err->code;
	n = PQntuples(res);
	for (int i = n - 1; i >= 0; i--) {
		struct shd_job *job = job_from_row(q, res, i, t0, lease_ms);

		/* out of memory with claimed jobs: their leases would recover them */
		if (!job)
			abort();
		job->next = *list;
		*list = job;
	}
	return n;
}

/*
 * Set up a new fetcher session: the claim runs as a generic plan (see shd_queue_claim_sql;
 * planning it for every claim would cost about as much as running it), and the session
 * LISTENs to shepherd_jobs itself, so a NOTIFY wakes the thread that claims, with no hop
 * through another thread.
 */
static bool setup_conn(PGconn *conn, struct shp_error *err)
{
	static const char sql[] = "SELECT set_config('plan_cache_mode', $1, false)";
	_cleanup_(PQclearp) PGresult *res = NULL;

	res = shd_db_exec(conn, sql, 1, (const char *[]){"force_generic_plan"}, err);
	if (!res)
		return false;
	PQclear(res);
	/* LISTEN is a utility statement: it cannot be prepared and takes no parameters */
	res = PQexec(conn, "LISTEN shepherd_jobs");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		shp_error_set(err, SHP_E_DB, "LISTEN: %s", PQerrorMessage(conn));
		return false;
	}
	return true;
}

/* Take the NOTIFYs libpq has read; true if there was one. */
static bool take_notifies(PGconn *conn)
{
	PGnotify *nt;
	bool any = false;

	while (conn && (nt = PQnotifies(conn))) {
		any = true;
		PQfreemem(nt);
	}
	return any;
}

/*
 * Sleep until ms pass, another thread wakes the fetcher (shd_queue_wake_fetcher) or, when conn
 * is given, a NOTIFY arrives on it; true for a NOTIFY. A broken conn is left for the caller.
 */
static bool fetcher_sleep(struct shd_queue *q, PGconn *conn, int ms)
{
	struct pollfd pfd[2] = {{.fd = q->wake_fd[0], .events = POLLIN},
				{.fd = conn ? PQsocket(conn) : -1, .events = POLLIN}};
	char drain[64];

	if (poll(pfd, conn ? 2 : 1, ms < 0 ? 0 : ms) <= 0)
		return false;
	while (read(q->wake_fd[0], drain, sizeof(drain)) > 0)
		;
	if (conn && (pfd[1].revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(conn))
		return true; /* broken: claim now, which finds out and reconnects */
	return take_notifies(conn);
}

/*
 * How many jobs to claim now (at most a batch), or 0 to wait: the claimed jobs not yet run stay
 * within capacity, a claim is at least half a batch while jobs still wait for workers (a claim
 * costs nearly as much for a few jobs as for a batch), and the completer is not too far behind.
 * stop is set when stopping.
 */
static int room(struct shd_queue *q, bool *stop)
{
	int limit;

	pthread_mutex_lock(&q->lock);
	limit = q->capacity - q->held;
	limit = limit > q->cfg.fetch_batch ? q->cfg.fetch_batch : limit;
	if (limit < shd_queue_refill_at(q) && q->held > q->running)
		limit = 0;
	if (q->unrecorded >= UNRECORDED_MAX)
		limit = 0;
	*stop = q->stop_fetch;
	pthread_mutex_unlock(&q->lock);
	return limit;
}

/* Hand claimed jobs to the workers. */
static void push_ready(struct shd_queue *q, struct shd_job *list, int n)
{
	struct shd_job *last;

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

/*
 * Claim while the last claim was full, a NOTIFY came or the poll interval passed, and memory
 * has room; sleep otherwise.
 */
void *shd_queue_fetcher_main(void *arg)
{
	struct shd_queue *q = arg;
	PGconn *conn = NULL, *tuned_conn = NULL;
	bool warned = false, more = true, stop = false;
	int backoff_ms = 100;
	uint64_t next_poll = 0;

	shp_log_ctx_set("thread", "queue-fetcher");
	for (;;) {
		struct shd_job *list = NULL;
		struct shp_error err = SHP_ERROR_INIT;
		uint64_t now = shp_now_monotonic_ns();
		int limit = room(q, &stop), n;

		if (stop)
			break;
		more |= take_notifies(tuned_conn);
		if (limit <= 0 || (!more && now < next_poll)) {
			/* no room: only the completer (or stop) can change that */
			more |= fetcher_sleep(q, limit > 0 ? tuned_conn : NULL,
					      limit > 0 ? (int)((next_poll - now) / 1000000) + 1
							: q->cfg.poll_interval_ms);
			continue;
		}
		next_poll = now + ms_ns(q->cfg.poll_interval_ms);
		if (!shd_queue_ensure_conn(q, &conn, "fetcher", &warned)) {
			n = -SHP_E_UNAVAIL;
		} else if (conn != tuned_conn && !setup_conn(conn, &err)) {
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
			(void)fetcher_sleep(q, NULL, backoff_ms);
			backoff_ms = backoff_ms >= 5000 ? 5000 : backoff_ms * 2;
			continue;
		}
		backoff_ms = 100;
		more = n == limit;
		if (n > 0)
			push_ready(q, list, n);
	}
	if (conn)
		PQfinish(conn);
	return NULL;
}
