/*
 * The completer thread: takes finished jobs from the workers and records their outcomes in
 * batched statements, each fenced by the claim so only the lease holder wins; failures get a
 * retry with backoff or become dead letters.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "buf.h"
#include "db.h"
#include "error.h"
#include "json.h"
#include "log.h"
#include "queue-internal.h"
#include "queue.h"
#include "util.h"

/* Hand a finished job to the completer. Caller holds q->lock (lock order: lock, done_lock). */
void shd_queue_push_done(struct shd_queue *q, struct shd_job *job)
{
	job->next = NULL;
	q->unrecorded++;
	pthread_mutex_lock(&q->done_lock);
	if (q->done_tail)
		q->done_tail->next = job;
	else
		q->done_head = job;
	q->done_tail = job;
	pthread_cond_signal(&q->done_cond);
	pthread_mutex_unlock(&q->done_lock);
}

/*
 * One statement records a batch of outcomes. Each job's outcome travels in one jsonb object
 * keyed by job id (s: state, f: fence, d: delay ms, u: 1 if the attempt is not counted, e:
 * error), looked up per row: no join, so no plan can go quadratic however stale the statistics.
 * Only the holder of the claim (state running, attempted_at = fence) can finish a job.
 */
const char shd_queue_complete_sql[] =
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
	" WHERE j.id = ANY($1::bigint[]) AND j.state::text = 'running'"
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
	case SHD_JOB_DONE: state = "completed"; break;
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

/*
 * Jobs that completed, by claim: every job of one claim has the same fence (the claim's
 * transaction time), so one short statement with the ids and the fence finishes the lot, with
 * no per-row lookup. Every other outcome goes through shd_queue_complete_sql.
 *
 * Both compare state as text: `state = 'running'` would match the predicate of
 * jobs_rescuer_idx, and statistics taken while few jobs ran make walking every running job
 * through that index look cheaper than fetching the batch by primary key.
 */
const char shd_queue_done_sql[] =
	"UPDATE jobs SET state = 'completed', finalized_at = now(), lease_expires_at = NULL"
	" WHERE id = ANY ($1::bigint[]) AND state::text = 'running'"
	" AND attempted_at = $2::timestamptz";

#define STMT_DONE "shd_queue_done"
#define STMT_COMPLETE "shd_queue_complete"
#define FENCE_GROUPS 64 /* done statements per batch; the rest take the general statement */

struct fence_group {
	const char *fence;
	struct shp_buf ids;
};

/* The group of a completed job, or NULL when every group is taken by another fence. */
static struct fence_group *group_of(struct fence_group *g, int *ng, const char *fence)
{
	for (int i = 0; i < *ng; i++)
		if (strcmp(g[i].fence, fence) == 0)
			return &g[i];
	if (*ng == FENCE_GROUPS)
		return NULL;
	g[*ng].fence = fence;
	shp_buf_init(&g[*ng].ids, (size_t)COMPLETE_BATCH * 24 + 16);
	return &g[(*ng)++];
}

static int add_id(struct shp_buf *b, int64_t id)
{
	return shp_buf_addf(b, "%c%" PRId64, b->len ? ',' : '{', id);
}

/* Read every result up to the pipeline's sync; the first failure goes to err. */
static int read_results(PGconn *conn, struct shp_error *err)
{
	int r = 0;

	for (;;) {
		PGresult *res = PQgetResult(conn);
		ExecStatusType st;

		if (!res) {
			if (PQstatus(conn) != CONNECTION_OK)
				return r
					       ?: shp_error_set(err, SHP_E_UNAVAIL, "%s",
								PQerrorMessage(conn));
			continue; /* the end of one statement's results */
		}
		st = PQresultStatus(res);
		if (st == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			return r;
		}
		if (st == PGRES_TUPLES_OK) {
			for (int i = 0; i < PQntuples(res); i++)
				if (shp_streq(PQgetvalue(res, i, 3), "discarded"))
					log_info("discarded job %s (kind %s) after attempt %s",
						 PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
						 PQgetvalue(res, i, 2));
		} else if (st != PGRES_COMMAND_OK && r == 0) {
			r = shp_error_set(err, SHP_E_DB, "%s",
					  st == PGRES_PIPELINE_ABORTED ? "pipeline aborted"
								       : PQresultErrorMessage(res));
		}
		PQclear(res);
	}
}

/*
 * Record a list of finished jobs: one statement per claim for the completed ones, one for the
 * rest, sent as one pipeline (one round trip) and applied in one implicit transaction.
 */
static int write_results(struct shd_queue *q, PGconn *conn, struct shd_job *list, uint64_t *rnd,
			 struct shp_error *err)
{
	struct fence_group groups[FENCE_GROUPS];
	struct shp_buf ids = SHP_BUF_INIT((size_t)COMPLETE_BATCH * 24 + 16);
	struct shp_buf data = SHP_BUF_INIT((size_t)COMPLETE_BATCH * 2048 + 16);
	json_auto_t *general = json_object();
	int ng = 0, r = general ? 0 : -SHP_E_NOMEM, sent = 1;

	for (struct shd_job *j = list; j && r == 0; j = j->next) {
		struct fence_group *g =
			j->outcome == SHD_JOB_DONE ? group_of(groups, &ng, j->fence) : NULL;
		char key[24];

		if (g) {
			r = add_id(&g->ids, j->id);
			continue;
		}
		(void)snprintf(key, sizeof(key), "%" PRId64, j->id);
		r = json_object_set_new(general, key, outcome_json(q, j, rnd)) < 0 ? -SHP_E_NOMEM
										   : 0;
		r = r ?: add_id(&ids, j->id);
	}
	r = r ?: ids.len ? shp_json_dump_buf(general, &data, false) : 0;
	for (int i = 0; i < ng && r == 0; i++) {
		r = shp_buf_addch(&groups[i].ids, '}');
		if (r == 0 &&
		    !PQsendQueryPrepared(conn, STMT_DONE, 2,
					 (const char *[]){groups[i].ids.buf, groups[i].fence}, NULL,
					 NULL, 0))
			sent = 0;
	}
	if (r == 0 && ids.len && sent) {
		r = shp_buf_addch(&ids, '}');
		if (r == 0 &&
		    !PQsendQueryPrepared(conn, STMT_COMPLETE, 3,
					 (const char *[]){ids.buf, data.buf, q->worker_id}, NULL,
					 NULL, 0))
			sent = 0;
	}
	for (int i = 0; i < ng; i++)
		shp_buf_release(&groups[i].ids);
	shp_buf_release(&ids);
	shp_buf_release(&data);
	if (r < 0)
		return shp_error_set(err, SHP_E_NOMEM, "building the completion batch");
	if (!sent || !PQpipelineSync(conn))
		return shp_error_set(err, SHP_E_UNAVAIL, "%s", PQerrorMessage(conn));
	return read_results(conn, err);
}

/*
 * Prepare the completer's statements on a new connection and switch it to pipeline mode; it
 * runs nothing else. Generic plans: both statements find their rows by primary key.
 */
static int setup_conn(PGconn *conn, struct shp_error *err)
{
	static const char plans_sql[] = "SELECT set_config('plan_cache_mode', $1, false)";
	_cleanup_(PQclearp) PGresult *res = NULL;
	PGresult *prep;

	res = shd_db_exec(conn, plans_sql, 1, (const char *[]){"force_generic_plan"}, err);
	if (!res)
		return -err->code;
	prep = PQprepare(conn, STMT_DONE, shd_queue_done_sql, 0, NULL);
	if (PQresultStatus(prep) == PGRES_COMMAND_OK) {
		PQclear(prep);
		prep = PQprepare(conn, STMT_COMPLETE, shd_queue_complete_sql, 0, NULL);
	}
	if (PQresultStatus(prep) != PGRES_COMMAND_OK) {
		shp_error_set(err, SHP_E_DB, "preparing the completion statements: %s",
			      PQresultErrorMessage(prep));
		PQclear(prep);
		return -err->code;
	}
	PQclear(prep);
	if (!PQenterPipelineMode(conn))
		return shp_error_set(err, SHP_E_DB, "entering pipeline mode: %s",
				     PQerrorMessage(conn));
	return 0;
}

/* A ready connection in *conn (opened and set up if needed); false if there is none. */
static bool completer_conn(struct shd_queue *q, PGconn **conn, bool *warned, struct shp_error *err)
{
	if (*conn && PQpipelineStatus(*conn) == PQ_PIPELINE_ON && PQstatus(*conn) == CONNECTION_OK)
		return true;
	if (*conn)
		PQfinish(*conn);
	*conn = NULL;
	if (!shd_queue_ensure_conn(q, conn, "completer", warned))
		return false;
	if (setup_conn(*conn, err) == 0)
		return true;
	PQfinish(*conn);
	*conn = NULL;
	return false;
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

void *shd_queue_completer_main(void *arg)
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

			if (completer_conn(q, &conn, &warned, &err) &&
			    write_results(q, conn, list, &rnd, &err) == 0)
				break;
			if (conn) {
				/* start again from a clean connection: the next one is set up anew
				 */
				PQfinish(conn);
				conn = NULL;
			}
			if (err.code && !warned)
				log_warn("queue completer: recording %d job(s) failed: %s", n,
					 err.msg);
			pthread_mutex_lock(&q->done_lock);
			if (q->stop_completer && !giveup)
				giveup = shp_now_monotonic_ns() + ms_ns(q->cfg.shutdown_grace_ms);
			pthread_mutex_unlock(&q->done_lock);
			if (giveup && shp_now_monotonic_ns() > giveup) {
				log_warn("queue completer: giving up on %d result(s); their leases "
					 "will expire and the jobs will run again",
					 n);
				break;
			}
			usleep((useconds_t)backoff * 1000);
			backoff = backoff >= 2000 ? 2000 : backoff * 2;
		}
		while (list) {
			struct shd_job *next = list->next;
			shd_queue_job_free(list);
			list = next;
		}
		pthread_mutex_lock(&q->lock);
		q->unrecorded -= n;
		pthread_mutex_unlock(&q->lock);
		shd_queue_wake_fetcher(q);
	}
	if (conn)
		PQfinish(conn);
	return NULL;
}
