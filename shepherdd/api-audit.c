/*
 * GET /api/v1/audit: the audit trail, newest first (or oldest first after a given id, for
 * following it), filtered by action, actor, resource, ticket, outcome and time, paginated by id.
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

/*
 * Newest first, before the cursor; or, with ?after=ID (what `audit list --follow` polls), the
 * entries after ID oldest first, the cursor then moving forward.
 */
#define AUDIT_SELECT                                                                               \
	"SELECT id, at, actor, action, resource_type, resource_name, outcome, request_id, details" \
	"  FROM audit_log"                                                                         \
	" WHERE ($2::text IS NULL OR action = $2)"                                                 \
	"   AND ($3::text IS NULL OR actor = $3)"                                                  \
	"   AND ($4::text IS NULL OR resource_type = $4)"                                          \
	"   AND ($5::text IS NULL OR resource_name = $5)"                                          \
	"   AND ($6::text IS NULL OR details->>'ticket_id' = $6)"                                  \
	"   AND ($7::text IS NULL OR outcome = $7)"                                                \
	"   AND ($8::timestamptz IS NULL OR at >= $8)"                                             \
	"   AND ($9::timestamptz IS NULL OR at < $9)"

static const char sql_audit_page[] =
	AUDIT_SELECT "   AND id < coalesce($1::bigint, 9223372036854775807)"
		     " ORDER BY id DESC LIMIT $10::int + 1";

static const char sql_audit_after[] = AUDIT_SELECT "   AND id > $1::bigint"
						   " ORDER BY id LIMIT $10::int + 1";

#define AUDIT_TIME_MAX 64

/* An id-valued query parameter (cursor or after) checked into out. */
static int audit_id_arg(const char *field, const char *value, struct shp_error *err)
{
	long long id;

	if (shp_parse_int(value, 0, INT64_MAX, &id, NULL) == 0)
		return 0;
	shp_error_set(err, SHP_E_INVAL, "invalid %s", field);
	shp_error_detail(err, "field", "%s", field);
	return -SHP_E_INVAL;
}

/* The filters ($2..$9): free text, a ticket id, an outcome, RFC 3339 times. */
static int audit_filters(struct shd_req *req, const char **p, struct shp_error *err)
{
	static const char *const keys[] = {"action", "actor",   "resource_type", "resource_name",
					   "ticket", "outcome", "since",         "until"};
	static const char *const outcomes[] = {"success", "denied", "failed"};
	long long id;

	for (int i = 0; i < 8; i++) {
		p[i] = shd_req_query(req, keys[i]);
		if (p[i] &&
		    shd_validate_text(keys[i], p[i], i >= 6 ? AUDIT_TIME_MAX : 256, err) < 0)
			return -err->code;
	}
	if (p[4] && shp_parse_int(p[4], 1, INT64_MAX, &id, NULL) < 0) {
		shp_error_set(err, SHP_E_INVAL, "'ticket' must be a ticket id");
		shp_error_detail(err, "field", "ticket");
		return -SHP_E_INVAL;
	}
	if (p[5] && shp_enum_from_string(outcomes, SHP_ARRAY_SIZE(outcomes), p[5]) < 0) {
		shp_error_set(err, SHP_E_INVAL, "'outcome' must be success, denied or failed");
		shp_error_detail(err, "field", "outcome");
		return -SHP_E_INVAL;
	}
	return 0;
}

int shd_api_audit_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shp_buf cur __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(32);
	const char *cursor = shd_req_query(req, "cursor"), *after = shd_req_query(req, "after");
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *params[10];
	char limit_s[16];
	int limit;

	if (shd_req_limit(req, &limit, err) < 0)
		return -err->code;
	if (cursor &&
	    (shd_cursor_decode(cursor, &cur, err) < 0 || audit_id_arg("cursor", cur.buf, err) < 0))
		return -err->code;
	if (after && audit_id_arg("after", after, err) < 0)
		return -err->code;
	if (audit_filters(req, params + 1, err) < 0)
		return -err->code;
	(void)snprintf(limit_s, sizeof(limit_s), "%d", limit);
	/* going forward, the cursor is the last entry already seen, like after */
	params[0] = cursor ? cur.buf : after;
	params[9] = limit_s;
	res = shd_db_exec(req->db, after ? sql_audit_after : sql_audit_page, 10, params, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, audit_cols, SHP_ARRAY_SIZE(audit_cols), limit, 0, err);
}
