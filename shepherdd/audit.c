/*
 * The audit trail: one append-only row per mutation, allowed or refused. The database refuses
 * UPDATE, DELETE and TRUNCATE on audit_log; details are masked before they are stored.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "error.h"
#include "log.h"
#include "shepherdd.h"

int shd_audit_write(PGconn *conn, const struct shd_req *req, const char *action,
		    const char *resource_type, const char *resource_name, const char *outcome,
		    const json_t *details, struct shp_error *err)
{
	json_auto_t *masked = details ? shp_mask_json(details) : json_object();
	_cleanup_free_ char *text = NULL;
	char actor_id[24];
	const char *params[8];

	if (!masked || !(text = json_dumps(masked, JSON_COMPACT | JSON_SORT_KEYS)))
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	/* no request: the daemon acts on its own (a worker, a periodic job) */
	(void)snprintf(actor_id, sizeof(actor_id), "%lld", req ? (long long)req->ident.user_id : 0);
	params[0] = req && req->ident.user_id > 0 ? actor_id : NULL;
	params[1] = !req ? SHD_AUDIT_DAEMON : req->ident.name[0] ? req->ident.name : "anonymous";
	params[2] = action;
	params[3] = resource_type ? resource_type : "";
	params[4] = resource_name ? resource_name : "";
	params[5] = outcome;
	params[6] = req ? req->request_id : "";
	params[7] = text;
	if (shd_db_command(conn,
			   "INSERT INTO audit_log (actor_id, actor, action, resource_type,"
			   " resource_name, outcome, request_id, details)"
			   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
			   8, params, err) < 0)
		return shp_error_prefix(err, "writing the audit row");
	return 0;
}
