/*
 * The queue over HTTP, for platform admins: list and show jobs, retry, discard and cancel
 * them, and queue statistics, pause and resume. Every change is audited.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "error.h"
#include "queue.h"
#include "shepherdd.h"
#include "util.h"

static int job_id_param(struct shd_req *req, int64_t *ret, struct shp_error *err)
{
	long long v;

	if (shp_parse_int(req->params[0], 1, INT64_MAX, &v, NULL) < 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "job '%.40s' not found", req->params[0]);
	*ret = v;
	return 0;
}

int shd_api_jobs_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shp_buf cur __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(32);
	struct shd_job_filter f = {.state = -1};
	const char *cursor = shd_req_query(req, "cursor");
	const char *state = shd_req_query(req, "state");
	json_auto_t *page = NULL;
	json_t *next;
	long long before;

	if (shd_req_limit(req, &f.limit, err) < 0)
		return -err->code;
	if (state && (f.state = shd_job_state_from_string(state)) < 0) {
		shp_error_set(err, SHP_E_INVAL, "unknown job state '%.40s'", state);
		shp_error_detail(err, "field", "state");
		return -SHP_E_INVAL;
	}
	f.kind = shd_req_query(req, "kind");
	f.queue = shd_req_query(req, "queue");
	if (cursor) {
		if (shd_cursor_decode(cursor, &cur, err) < 0 ||
		    shp_parse_int(cur.buf, 1, INT64_MAX, &before, NULL) < 0)
			return shp_error_set(err, SHP_E_INVAL, "invalid cursor");
		f.before_id = before;
	}
	page = shd_job_list(req->db, &f, err);
	if (!page)
		return -err->code;
	next = json_object_get(page, "next_before_id");
	if (json_is_integer(next)) {
		char key[24];
		struct shp_buf enc = SHP_BUF_INIT(64);
		(void)snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(next));
		if (shd_cursor_encode(key, &enc) < 0)
			return shp_error_set(err, SHP_E_NOMEM, "out of memory");
		next = json_stringn(enc.buf, enc.len);
		shp_buf_release(&enc);
	} else {
		next = json_null();
	}
	return shd_resp_json_take(resp, 200,
				  json_pack("{s:O,s:o}", SHP_API_FIELD_ITEMS,
					    json_object_get(page, "jobs"),
					    SHP_API_FIELD_NEXT_CURSOR, next));
}

int shd_api_jobs_get(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	json_t *job;
	int64_t id = 0;

	if (job_id_param(req, &id, err) < 0)
		return -err->code;
	job = shd_job_get(req->db, id, err);
	if (!job)
		return -err->code;
	return shd_resp_json_take(resp, 200, job);
}

/* A change to one job: run it, audit it, answer with the job as it is now. */
static int job_change(struct shd_req *req, struct shd_resp *resp, const char *action,
		      int (*fn)(PGconn *, int64_t, struct shp_error *), struct shp_error *err)
{
	json_auto_t *details = NULL;
	json_t *job;
	int64_t id = 0;

	if (job_id_param(req, &id, err) < 0)
		return -err->code;
	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%lld", (long long)id);
	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	if (fn(req->db, id, err) < 0)
		goto fail;
	job = shd_job_get(req->db, id, err);
	if (!job)
		goto fail;
	details = json_pack("{s:O,s:O,s:O}", "kind", json_object_get(job, "kind"), "queue",
			    json_object_get(job, "queue"), "state", json_object_get(job, "state"));
	if (shd_audit_write(req->db, req, action, "job", req->audit_name, "success", details, err) <
		    0 ||
	    shd_db_commit(req->db, err) < 0) {
		json_decref(job);
		goto fail;
	}
	return shd_resp_json_take(resp, 200, job);
fail:
	shd_db_rollback(req->db);
	return -err->code;
}

static int cancel_job(PGconn *conn, int64_t id, struct shp_error *err)
{
	return shd_job_cancel(conn, id, NULL, err);
}

int shd_api_jobs_retry(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	return job_change(req, resp, "JOB_RETRY", shd_job_retry, err);
}

int shd_api_jobs_discard(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	return job_change(req, resp, "JOB_DISCARD", shd_job_discard, err);
}

int shd_api_jobs_cancel(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	return job_change(req, resp, "JOB_CANCEL", cancel_job, err);
}

int shd_api_queues_stats(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	json_t *st = shd_queue_stats(req->db, err);

	if (!st)
		return -(int)err->code;
	return shd_resp_json_take(resp, 200, st);
}

static int queue_change(struct shd_req *req, struct shd_resp *resp, bool pause,
			struct shp_error *err)
{
	const char *name = req->params[0];

	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%.64s", name);
	if (strlen(name) > (size_t)SHD_JOB_NAME_MAX ||
	    shd_validate_text("queue", name, 128, err) < 0)
		return shp_error_set(err, SHP_E_INVAL, "invalid queue name");
	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	if ((pause ? shd_queue_pause(req->db, name, err) : shd_queue_resume(req->db, name, err)) <
		    0 ||
	    shd_audit_write(req->db, req, pause ? "QUEUE_PAUSE" : "QUEUE_RESUME", "queue", name,
			    "success", NULL, err) < 0 ||
	    shd_db_commit(req->db, err) < 0) {
		shd_db_rollback(req->db);
		return -err->code;
	}
	return shd_resp_json_take(resp, 200, json_pack("{s:s,s:b}", "name", name, "paused", pause));
}

int shd_api_queues_pause(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	return queue_change(req, resp, true, err);
}

int shd_api_queues_resume(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	return queue_change(req, resp, false, err);
}
