/*
 * The notification inbox over HTTP: the caller's own notifications (newest first, keyset pages,
 * unread and type filters), the unread count for a badge, marking one or all read; and the
 * periodic job notify.retention that deletes old notifications in bounded batches.
 * Every query is bound to the caller's user id: another user's notification is 404.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "error.h"
#include "inbox.h"
#include "log.h"
#include "queue.h"
#include "shepherdd.h"
#include "util.h"

static const struct shd_col inbox_cols[] = {
	{"id", COL_INT},          {"type", COL_TEXT},       {"title", COL_TEXT},
	{"body", COL_TEXT},       {"data", COL_JSON},       {"ticket_id", COL_INT},
	{"count", COL_INT},       {"read", COL_BOOL},       {"read_at", COL_TIME},
	{"created_at", COL_TIME}, {"updated_at", COL_TIME},
};

#define INBOX_SELECT                                                                               \
	"SELECT id, type, title, body, data, ticket_id, count, read_at IS NOT NULL, read_at,"      \
	"       created_at, updated_at FROM notifications"

/* $1 user, $2 before id (0 = newest), $3 unread only, $4 type or NULL, $5 limit + 1 */
static const char sql_list[] = INBOX_SELECT
	" WHERE user_id = $1 AND ($2::bigint = 0 OR id < $2)"
	"   AND (NOT $3::boolean OR read_at IS NULL) AND ($4::text IS NULL OR type = $4)"
	" ORDER BY id DESC LIMIT $5";

/* ?name=true|false (absent: false). */
static int query_bool(struct shd_req *req, const char *name, bool *ret, struct shp_error *err)
{
	const char *v = shd_req_query(req, name);

	*ret = false;
	if (!v || strcmp(v, "false") == 0)
		return 0;
	if (strcmp(v, "true") == 0)
		return *ret = true, 0;
	shp_error_set(err, SHP_E_INVAL, "'%s' must be true or false", name);
	shp_error_detail(err, "field", "%s", name);
	return -SHP_E_INVAL;
}

/* ?type=: a notification type (upper case, digits and underscores), or NULL. */
static int query_type(struct shd_req *req, const char **ret, struct shp_error *err)
{
	const char *t = shd_req_query(req, "type");
	size_t n = t ? strlen(t) : 0;
	bool ok = n >= 1 && n <= 64 && t[0] >= 'A' && t[0] <= 'Z';

	for (size_t i = 1; ok && i < n; i++)
		ok = (t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= '0' && t[i] <= '9') || t[i] == '_';
	*ret = t;
	if (!t || ok)
		return 0;
	shp_error_set(err, SHP_E_INVAL,
		      "'type' must be a notification type (APPROVAL_PENDING, ...)");
	shp_error_detail(err, "field", "type");
	return -SHP_E_INVAL;
}

int shd_api_inbox_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shp_buf cur __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(32);
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *cursor = shd_req_query(req, "cursor"), *type;
	long long before = 0;
	char uid[24], lim[16], bef[24];
	bool unread;
	int limit;

	if (shd_req_limit(req, &limit, err) < 0 || query_bool(req, "unread", &unread, err) < 0 ||
	    query_type(req, &type, err) < 0)
		return -err->code;
	if (cursor && (shd_cursor_decode(cursor, &cur, err) < 0 ||
		       shp_parse_int(cur.buf, 1, INT64_MAX, &before, NULL) < 0)) {
		shp_error_set(err, SHP_E_INVAL, "invalid cursor");
		shp_error_detail(err, "field", "cursor");
		return -SHP_E_INVAL;
	}
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	(void)snprintf(bef, sizeof(bef), "%lld", before);
	(void)snprintf(lim, sizeof(lim), "%d", limit + 1);
	res = shd_db_exec(req->db, sql_list, 5,
			  (const char *[]){uid, bef, unread ? "true" : "false", type, lim}, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, inbox_cols, SHP_ARRAY_SIZE(inbox_cols), limit, 0, err);
}

int shd_api_inbox_unread_count(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24];

	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	res = shd_db_exec(
		req->db,
		"SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL", 1,
		(const char *[]){uid}, err);
	if (!res)
		return -err->code;
	return shd_resp_json_take(
		resp, 200,
		json_pack("{sI}", "unread",
			  (json_int_t)strtoll(shd_db_value(res, 0, 0), NULL, 10)));
}

/* PATCH .../{id}/read: idempotent; the notification as it is now. */
int shd_api_inbox_read(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24];
	long long id;

	if (shp_parse_int(req->params[0], 1, INT64_MAX, &id, NULL) < 0)
		goto not_found;
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	res = shd_db_exec(req->db,
			  "WITH u AS (UPDATE notifications SET read_at = coalesce(read_at, now())"
			  "  WHERE id = $1 AND user_id = $2 RETURNING *)"
			  " SELECT id, type, title, body, data, ticket_id, count, true, read_at,"
			  "        created_at, updated_at FROM u",
			  2, (const char *[]){req->params[0], uid}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		goto not_found;
	return shd_resp_row(resp, 200, res, inbox_cols, SHP_ARRAY_SIZE(inbox_cols), err);
not_found:
	shp_error_set(err, SHP_E_NOTFOUND, "notification '%.40s' not found", req->params[0]);
	shp_error_detail(err, "id", "%.40s", req->params[0]);
	return -SHP_E_NOTFOUND;
}

/*
 * POST .../mark-all-read[?type=T][&up_to=ID]: every unread notification of the caller (of that
 * type; up to that id, so a client marks only what it showed). {"marked": N}.
 */
int shd_api_inbox_read_all(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *up_to = shd_req_query(req, "up_to"), *type;
	char uid[24];
	long long v;

	if (query_type(req, &type, err) < 0)
		return -err->code;
	if (up_to && shp_parse_int(up_to, 1, INT64_MAX, &v, NULL) < 0) {
		shp_error_set(err, SHP_E_INVAL, "'up_to' must be a notification id");
		shp_error_detail(err, "field", "up_to");
		return -SHP_E_INVAL;
	}
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	res = shd_db_exec(
		req->db,
		"WITH u AS (UPDATE notifications SET read_at = now()"
		"  WHERE user_id = $1 AND read_at IS NULL AND ($2::text IS NULL OR type = $2)"
		"    AND ($3::bigint IS NULL OR id <= $3) RETURNING 1)"
		" SELECT count(*) FROM u",
		3, (const char *[]){uid, type, up_to}, err);
	if (!res)
		return -err->code;
	return shd_resp_json_take(
		resp, 200,
		json_pack("{sI}", "marked",
			  (json_int_t)strtoll(shd_db_value(res, 0, 0), NULL, 10)));
}

/* ---- retention ------------------------------------------------------------------------------ */

int shd_inbox_retention(PGconn *conn, int days, int batch, int64_t *ret_deleted,
			struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char d[16], b[16];

	if (days < 1 || batch < 1 || batch > SHD_INBOX_BATCH_MAX)
		return shp_error_set(err, SHP_E_INVAL, "invalid retention (days %d, batch %d)",
				     days, batch);
	(void)snprintf(d, sizeof(d), "%d", days);
	(void)snprintf(b, sizeof(b), "%d", batch);
	res = shd_db_exec(conn,
			  "WITH gone AS (DELETE FROM notifications WHERE id IN ("
			  "   SELECT id FROM notifications"
			  "    WHERE created_at < now() - make_interval(days => $1::int)"
			  "    ORDER BY created_at, id LIMIT $2::int) RETURNING 1)"
			  " SELECT count(*) FROM gone",
			  2, (const char *[]){d, b}, err);
	if (!res)
		return shp_error_prefix(err, "deleting old notifications");
	*ret_deleted = strtoll(shd_db_value(res, 0, 0), NULL, 10);
	return 0;
}

/* args {"retention_days": N, "batch": N, "max_batches": N}; each defaults when absent. */
static int job_int(const json_t *args, const char *key, int def, int min, int max, int *ret)
{
	const json_t *v = json_object_get(args, key);

	if (!v) {
		*ret = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return -1;
	*ret = (int)json_integer_value(v);
	return 0;
}

static enum shd_job_outcome retention_job(struct shd_job *job, void *ctx)
{
	const int *default_days = ctx;
	struct shp_error err = SHP_ERROR_INIT;
	int days, batch, max_batches;
	int64_t deleted = 0;
	PGconn *conn;

	if (job_int(job->args, "retention_days", *default_days, 1, 3650, &days) < 0 ||
	    job_int(job->args, "batch", SHD_INBOX_BATCH_DEFAULT, 1, SHD_INBOX_BATCH_MAX, &batch) <
		    0 ||
	    job_int(job->args, "max_batches", 1000, 1, 100000, &max_batches) < 0) {
		(void)shd_job_fail(job, "invalid arguments");
		return SHD_JOB_DISCARD;
	}
	conn = shd_job_conn(job, &err);
	if (!conn)
		return shd_job_fail(job, "%s", err.msg);
	/* each batch its own short statement (autocommit), so locks are held briefly */
	for (int i = 0; i < max_batches && !shd_job_should_stop(job); i++) {
		int64_t n = 0;

		if (shd_inbox_retention(conn, days, batch, &n, &err) < 0 ||
		    (i % 16 == 15 && shd_job_heartbeat(job, &err) < 0))
			return shd_job_fail(job, "after %" PRId64 " deleted: %s", deleted, err.msg);
		deleted += n;
		if (n < batch)
			break;
	}
	if (deleted > 0)
		log_info("notify.retention: deleted %" PRId64 " notification(s) older than %d days",
			 deleted, days);
	return SHD_JOB_DONE;
}

int shd_inbox_register(struct shd_queue *q, const int *retention_days, struct shp_error *err)
{
	const struct shd_job_kind kind = {
		.name = SHD_INBOX_RETENTION_KIND,
		.run = retention_job,
		.ctx = (void *)retention_days,
		.timeout_ms = 60000,
	};

	if (shd_queue_register(q, &kind, err) < 0 ||
	    shd_queue_add_periodic(q, SHD_INBOX_RETENTION_KIND, "@every 24h",
				   SHD_INBOX_RETENTION_KIND, "{}", err) < 0)
		return -err->code;
	return 0;
}
