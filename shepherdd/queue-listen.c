/*
 * The listener thread: LISTEN shepherd_job_cancel, and flag the job in memory (or remember the
 * id until the job arrives). The fetcher LISTENs to shepherd_jobs on its own connection.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "queue-internal.h"
#include "queue.h"
#include "util.h"

/* A cancel that came before the job reached memory (caller holds q->lock). */
void shd_queue_apply_early_cancel(struct shd_queue *q, struct shd_job *job)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(q->early_cancels); i++)
		if (q->early_cancels[i] == job->id) {
			atomic_store(&job->cancel, true);
			q->early_cancels[i] = 0;
		}
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
	PGresult *res = PQexec(conn, "LISTEN shepherd_job_cancel");
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	PQclear(res);
	return ok;
}

void *shd_queue_listener_main(void *arg)
{
	struct shd_queue *q = arg;
	PGconn *conn = NULL;
	bool warned = false;

	shp_log_ctx_set("thread", "queue-listener");
	while (!shd_queue_aux_stopping(q)) {
		struct pollfd pfd;
		PGnotify *nt;

		if (!conn || PQstatus(conn) != CONNECTION_OK) {
			if (!shd_queue_ensure_conn(q, &conn, "listener", &warned) ||
			    !listen_on(conn)) {
				if (shd_queue_aux_sleep(q, 500))
					break;
				continue;
			}
		}
		pfd = (struct pollfd){.fd = PQsocket(conn), .events = POLLIN};
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
			PQfreemem(nt);
		}
	}
	if (conn)
		PQfinish(conn);
	return NULL;
}
