/*
 * Domain events: the immutable request behind every operation (type, payload, actor, tenant)
 * and its status (PENDING -> PROCESSING -> COMPLETED | FAILED | CANCELLED, checked by
 * shd_fsm_event). Jobs carry only the event id ({"event_id": N}); the dispatcher maps the
 * event's type to its handler through one table. A job whose event no longer exists is
 * cancelled, not retried; a handler's failure is retried by the queue, and the last failed
 * attempt marks the event FAILED.
 *
 * Functions taking a PGconn run on the caller's connection and transaction, any thread.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "cleanup.h"
#include "queue.h"

struct shp_error;

#define SHD_EVENT_KIND "event.dispatch" /* the job kind that runs events */

struct shd_event_new {
	const char *type;       /* "CREATE_VM": upper-case, <= 64 */
	const json_t *payload;  /* an object, stored as is (borrowed) */
	int64_t actor_id;       /* 0 = none (the daemon itself) */
	const char *actor;      /* the actor's name */
	const char *tenant;     /* the owning system, "" if none */
	bool auto_approved;     /* true: created PROCESSING and queued at once; false: PENDING */
	enum shd_sla_class sla; /* for the job */
	int priority;           /* for the job */
	int64_t id;             /* an id from shd_event_reserve_id, 0 = the next one */
};

/* Reserve the next event id (for an execution recorded before its event, in one transaction). */
int shd_event_reserve_id(PGconn *conn, int64_t *ret_id, struct shp_error *err) SHP_MUSTCHECK;

/*
 * Record the event in the caller's open transaction; when auto_approved, also enqueue its job
 * in that transaction (so request, event and job commit or vanish together).
 * *ret_id is the event id, *ret_job_id the job id or 0.
 */
int shd_event_create(PGconn *conn, const struct shd_event_new *ev, int64_t *ret_id,
		     int64_t *ret_job_id, struct shp_error *err) SHP_MUSTCHECK;
/* Enqueue the job of an approved event (PENDING -> PROCESSING) in the caller's transaction. */
int shd_event_approve(PGconn *conn, int64_t id, enum shd_sla_class sla, int priority,
		      int64_t *ret_job_id, struct shp_error *err) SHP_MUSTCHECK;
/*
 * Move the event to `to` (FSM-checked under a row lock); error (may be NULL) is kept with a
 * failure. SHP_E_NOTFOUND, or SHP_E_CONFLICT/ILLEGAL_TRANSITION.
 */
int shd_event_transition(PGconn *conn, int64_t id, const char *to, const char *error,
			 struct shp_error *err) SHP_MUSTCHECK;
/* The event as JSON (archived ones too): a new reference, or NULL with SHP_E_NOTFOUND. */
json_t *shd_event_get(PGconn *conn, int64_t id, struct shp_error *err);
/* Archive finalized events older than days; *ret_count archived. */
int shd_events_archive(PGconn *conn, int days, int *ret_count, struct shp_error *err) SHP_MUSTCHECK;

/*
 * An event handler: does the work of one event on the worker's connection (no transaction
 * open). 0 on success (the dispatcher then marks the event COMPLETED), <0 with err on failure.
 * It may check shd_job_should_stop(job) between steps and return SHP_E_TIMEOUT/...; a cancel
 * seen by the dispatcher marks the event CANCELLED.
 */
typedef int (*shd_event_handler_fn)(PGconn *conn, int64_t event_id, const json_t *payload,
				    struct shd_job *job, struct shp_error *err);

struct shd_event_route {
	const char *type;
	shd_event_handler_fn handler;
};

/* The dispatcher table (events.c), ended by { NULL, NULL }. */
extern const struct shd_event_route shd_event_routes[];

/* Register the dispatcher's job kind and the daily archiving job on q. */
int shd_events_register(struct shd_queue *q, struct shp_error *err) SHP_MUSTCHECK;
