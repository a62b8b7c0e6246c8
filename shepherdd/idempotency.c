/*
 * Idempotency-Key on mutating requests, scoped to the caller. The first request with a key
 * claims it and runs; the response (anything but a 5xx, which may be retried) is stored. A
 * repeat with the same method, path and body gets the stored response again; with a different
 * request it is refused (422); while the first is still running, a repeat is told to retry
 * (409). Only one of concurrent duplicates runs: the claim is one INSERT on a unique key.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "canon.h"
#include "db.h"
#include "error.h"
#include "log.h"
#include "shepherdd.h"

#define KEY_MAX 255
#define KEY_TTL "24 hours"
#define STORED_BODY_MAX (1u << 20)

static bool key_is_valid(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n > KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (k[i] < 0x21 || k[i] > 0x7e)
			return false;
	return true;
}

/* sha256(method NUL path NUL body) in hex */
static void request_hash(const struct shd_req *req, char out[SHP_SHA256_HEX_LEN + 1])
{
	struct shp_buf b = SHP_BUF_INIT(SIZE_MAX / 2);

	if (shp_buf_add(&b, req->method) < 0 || shp_buf_addn(&b, "", 1) < 0 ||
	    shp_buf_add(&b, req->url) < 0 || shp_buf_addn(&b, "", 1) < 0 ||
	    shp_buf_addn(&b, req->body.buf, req->body.len) < 0)
		abort(); /* the body is already capped well below the buffer's limit */
	shp_sha256_hex(b.buf, b.len, out);
	shp_buf_release(&b);
}

/* Someone holds the key: replay, refuse, or ask to retry. */
static int existing_key(struct shd_req *req, struct shd_resp *resp, const char *uid,
			const char *key, const char *hash, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(
		req->db,
		"SELECT request_hash, response_status, response_body FROM idempotency_keys"
		" WHERE user_id = $1 AND key = $2",
		2, (const char *[]){uid, key}, err);
	const char *status, *body;

	if (!res)
		return -err->code;
	if (PQntuples(res) == 0) /* expired and removed between our two statements */
		return shp_error_set(err, SHP_E_UNAVAIL, "idempotency key changed hands, retry");
	if (strcmp(shd_db_value(res, 0, 0), hash) != 0) {
		shp_error_set(err, SHP_E_UNPROCESSABLE,
			      "Idempotency-Key '%.64s' was already used for a different request",
			      key);
		shp_error_api_code(err, "IDEMPOTENCY_KEY_REUSED");
		return -SHP_E_UNPROCESSABLE;
	}
	status = shd_db_value(res, 0, 1);
	body = shd_db_value(res, 0, 2);
	if (!status) {
		shp_error_set(err, SHP_E_CONFLICT,
			      "a request with Idempotency-Key '%.64s' is still being processed",
			      key);
		shp_error_api_code(err, "IDEMPOTENCY_KEY_IN_USE");
		shp_error_detail(err, "retry", "true");
		return -SHP_E_CONFLICT;
	}
	if (shd_resp_raw(resp, (int)strtol(status, NULL, 10), body ? body : "",
			 body ? strlen(body) : 0, NULL) < 0)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	resp->replayed = true;
	return 1;
}

int shd_idempotency_begin(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	const char *key = shd_req_header(req, SHP_HDR_IDEMPOTENCY_KEY);
	char hash[SHP_SHA256_HEX_LEN + 1], uid[24];
	_cleanup_(PQclearp) PGresult *res = NULL;

	if (!key)
		return 0;
	if (!key_is_valid(key)) {
		shp_error_set(err, SHP_E_INVAL,
			      "Idempotency-Key must be 1-255 printable characters without spaces");
		shp_error_detail(err, "field", "Idempotency-Key");
		return -SHP_E_INVAL;
	}
	request_hash(req, hash);
	(void)snprintf(uid, sizeof(uid), "%lld", (long long)req->ident.user_id);
	if (shd_db_command(req->db,
			   "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2"
			   " AND expires_at < now()",
			   2, (const char *[]){uid, key}, err) < 0)
		return -err->code;
	res = shd_db_exec(req->db,
			  "INSERT INTO idempotency_keys (user_id, key, request_hash, method, path,"
			  " expires_at) VALUES ($1, $2, $3, $4, $5, now() + interval '" KEY_TTL "')"
			  " ON CONFLICT (user_id, key) DO NOTHING RETURNING id",
			  5, (const char *[]){uid, key, hash, req->method, req->url}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return existing_key(req, resp, uid, key, hash, err);
	req->idem_id = strtoll(shd_db_value(res, 0, 0), NULL, 10);
	return 0;
}

void shd_idempotency_finish(struct shd_req *req, struct shd_resp *resp)
{
	struct shp_error err = SHP_ERROR_INIT;
	char id[24], status[8];
	_cleanup_free_ char *dumped = NULL;
	const char *body;
	int r;

	if (req->idem_id <= 0 || !req->db)
		return;
	(void)snprintf(id, sizeof(id), "%lld", (long long)req->idem_id);
	shd_db_rollback(req->db);
	if (resp->status >= 500 || resp->status == 429) {
		/* a server-side failure (or "not now") is not an answer: the retry runs again */
		r = shd_db_command(req->db, "DELETE FROM idempotency_keys WHERE id = $1", 1,
				   (const char *[]){id}, &err);
	} else {
		body = resp->raw;
		if (!body && resp->json)
			body = dumped = json_dumps(resp->json, JSON_COMPACT);
		if (body && strlen(body) > STORED_BODY_MAX)
			body = NULL;
		(void)snprintf(status, sizeof(status), "%d", resp->status);
		r = shd_db_command(req->db,
				   "UPDATE idempotency_keys SET response_status = $2,"
				   " response_body = $3, completed_at = now() WHERE id = $1",
				   3, (const char *[]){id, status, body ? body : ""}, &err);
	}
	if (r < 0)
		log_warn("recording the answer to an idempotent request failed, ignoring: %s",
			 err.msg);
}
