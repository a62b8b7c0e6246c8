/*
 * Console grants: what an approved VNC_ACCESS request leaves behind. A grant is written in the
 * transaction that approves the ticket (or records a request its policy lets through), with
 * the requester's notification, so the access and the news of it commit together. The
 * console.cleanup job that removes spent token markers is here too.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "console.h"
#include "db.h"
#include "error.h"
#include "gov.h"
#include "json.h"
#include "log.h"
#include "queue.h"

static int notify_granted(PGconn *conn, int64_t requester_id, int64_t ticket_id, const json_t *vm,
			  int64_t grant_id, const char *expires, struct shp_error *err)
{
	char title[256], body[256];
	json_auto_t *data = json_pack("{s:I,s:s,s:s,s:s}", "grant_id", (json_int_t)grant_id,
				      "namespace", shp_json_str(vm, "namespace"), "vm",
				      shp_json_str(vm, "name"), "expires_at", expires);
	struct shd_notification n = {.type = "VNC_ACCESS_GRANTED",
				     .title = title,
				     .body = body,
				     .data = data,
				     .ticket_id = ticket_id};

	(void)snprintf(title, sizeof(title), "Console access to VM '%s/%s' granted",
		       shp_json_str(vm, "namespace"), shp_json_str(vm, "name"));
	(void)snprintf(body, sizeof(body),
		       "until %s: run 'shepherd vnc open %s --namespace %s' within that time",
		       expires, shp_json_str(vm, "name"), shp_json_str(vm, "namespace"));
	return shd_notify_sender()->to_user(conn, requester_id, &n, err);
}

int shd_console_grant_create(PGconn *conn, int64_t ticket_id, const json_t *payload,
			     int max_duration_s, int64_t requester_id, const char *granted_by,
			     struct shp_error *err)
{
	const json_t *vm = json_object_get(payload, "vm"), *spec = json_object_get(payload, "spec");
	int64_t duration = shp_json_int(spec, "duration_s", 0), vm_id = shp_json_int(vm, "id", 0);
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24], vid[24], tid[24], dur[24];

	if (duration <= 0 || duration > SHD_CONSOLE_TTL_MAX_S || vm_id <= 0 || requester_id <= 0 ||
	    !shp_json_str(vm, "namespace") || !shp_json_str(vm, "name"))
		return shp_error_set(err, SHP_E_INVAL, "the VNC_ACCESS request is malformed");
	if (max_duration_s > 0 && max_duration_s < duration)
		duration = max_duration_s;
	(void)snprintf(uid, sizeof(uid), "%" PRId64, requester_id);
	(void)snprintf(vid, sizeof(vid), "%" PRId64, vm_id);
	(void)snprintf(tid, sizeof(tid), "%" PRId64, ticket_id);
	(void)snprintf(dur, sizeof(dur), "%" PRId64, duration);
	res = shd_db_exec(
		conn,
		"INSERT INTO console_grants (user_id, vm_id, ticket_id, granted_by, reason,"
		"   expires_at)"
		" VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6::bigint))"
		" RETURNING id, to_char(expires_at AT TIME ZONE 'UTC',"
		"   'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
		6,
		(const char *[]){uid, vid, ticket_id > 0 ? tid : NULL, granted_by ? granted_by : "",
				 shp_json_str(spec, "reason") ? shp_json_str(spec, "reason") : "",
				 dur},
		err);
	if (!res)
		return -err->code;
	return notify_granted(conn, requester_id, ticket_id, vm,
			      strtoll(shd_db_value(res, 0, 0), NULL, 10), shd_db_value(res, 0, 1),
			      err);
}

/* ---- console.cleanup --------------------------------------------------------------------- */

static enum shd_job_outcome cleanup_job(struct shd_job *job, void *ctx)
{
	static const char sql[] =
		"DELETE FROM console_tokens WHERE jti IN (SELECT jti FROM console_tokens"
		" WHERE expires_at < now() - interval '1 day' LIMIT $1)";
	struct shp_error err = SHP_ERROR_INIT;
	char limit[16];
	int64_t deleted = 0;
	PGconn *conn;

	(void)ctx;
	(void)snprintf(limit, sizeof(limit), "%d", SHD_CONSOLE_CLEANUP_BATCH);
	conn = shd_job_conn(job, &err);
	if (!conn)
		return shd_job_fail(job, "%s", err.msg);
	/* one short statement a batch (autocommit), so the token checks wait little */
	for (int i = 0; !shd_job_should_stop(job); i++) {
		_cleanup_(PQclearp) PGresult *res =
			shd_db_exec(conn, sql, 1, (const char *[]){limit}, &err);
		int64_t n;

		if (!res || (i % 16 == 15 && shd_job_heartbeat(job, &err) < 0))
			return shd_job_fail(job, "after %" PRId64 " deleted: %s", deleted, err.msg);
		n = strtoll(PQcmdTuples(res), NULL, 10);
		deleted += n;
		if (n < SHD_CONSOLE_CLEANUP_BATCH)
			break;
	}
	if (deleted > 0)
		log_info("console.cleanup: deleted %" PRId64 " spent console token marker(s)",
			 deleted);
	return SHD_JOB_DONE;
}

int shd_console_register(struct shd_queue *q, struct shp_error *err)
{
	const struct shd_job_kind kind = {
		.name = SHD_CONSOLE_CLEANUP_KIND,
		.run = cleanup_job,
		.timeout_ms = 60000,
	};

	if (shd_queue_register(q, &kind, err) < 0 ||
	    shd_queue_add_periodic(q, SHD_CONSOLE_CLEANUP_KIND, "@every 1h",
				   SHD_CONSOLE_CLEANUP_KIND, "{}", err) < 0)
		return -err->code;
	return 0;
}
