/*
 * GET /api/v1/audit: the audit trail, newest first, filtered by action, actor and resource,
 * paginated by id.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "error.h"
#include "shepherdd.h"
#include "util.h"

static const struct shd_col audit_cols[] = {
	{"id", COL_INT},
	{"at", COL_TIME},
	{"actor", COL_TEXT},
	{"action", COL_TEXT},
	{"resource_type", COL_TEXT},
	{"resource_name", COL_TEXT},
	{"outcome", COL_TEXT},
	{"request_id", COL_TEXT},
	{"details", COL_JSON},
};

static const char sql_audit_page[] =
	"SELECT id, at, actor, action, resource_type, resource_name, outcome, request_id, details"
	"  FROM audit_log"
	" WHERE id < coalesce($1::bigint, 9223372036854775807)"
	"   AND ($2::text IS NULL OR action = $2)"
	"   AND ($3::text IS NULL OR actor = $3)"
	"   AND ($4::text IS NULL OR resource_type = $4)"
	"   AND ($5::text IS NULL OR resource_name = $5)"
	" ORDER BY id DESC LIMIT $6::int + 1";

int shd_api_audit_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shp_buf cur __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(32);
	const char *cursor = shd_req_query(req, "cursor");
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *params[6];
	char limit_s[16];
	int limit;

	if (shd_req_limit(req, &limit, err) < 0)
		return -err->code;
	if (cursor) {
		long long id;
		if (shd_cursor_decode(cursor, &cur, err) < 0)
			return -err->code;
		if (shp_parse_int(cur.buf, 1, INT64_MAX, &id, NULL) < 0) {
			shp_error_set(err, SHP_E_INVAL, "invalid cursor");
			shp_error_detail(err, "field", "cursor");
			return -SHP_E_INVAL;
		}
	}
	(void)snprintf(limit_s, sizeof(limit_s), "%d", limit);
	params[0] = cursor ? cur.buf : NULL;
	params[1] = shd_req_query(req, "action");
	params[2] = shd_req_query(req, "actor");
	params[3] = shd_req_query(req, "resource_type");
	params[4] = shd_req_query(req, "resource_name");
	params[5] = limit_s;
	for (int i = 1; i < 5; i++)
		if (params[i] && shd_validate_text("filter", params[i], 256, err) < 0)
			return -err->code;
	res = shd_db_exec(req->db, sql_audit_page, 6, params, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, audit_cols, SHP_ARRAY_SIZE(audit_cols), limit, 0, err);
}
