/*
 * Console grants: what an approved VNC_ACCESS request leaves behind. A grant is written in the
 * transaction that approves the ticket (or records a request its policy lets through), with
 * the requester's notification, so the access and the news of it commit together.
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
