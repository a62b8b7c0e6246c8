/*
 * The two layers of rate limits. Global: a token bucket of mutating API requests in the
 * daemon (ratelimit.api_rate, ratelimit.api_burst) and the number of open batches
 * (ratelimit.global_pending_batches). Per user: open batches, children not yet ended, and the
 * cooldown between two batch submissions, each replaced by the user's row of
 * rate_limit_overrides when it has one. Platform admins and exempt users pass; a refusal is
 * 429 RATE_LIMITED naming the limit, with Retry-After.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "batch.h"
#include "db.h"
#include "error.h"
#include "json.h"
#include "shepherdd.h"
#include "util.h"

#define COUNT_RETRY_S 10 /* what a client waits after a count limit: children take a while */
#define OVERRIDE_MAX 1000

struct shd_ratelimit {
	pthread_mutex_t mu;
	double rate, burst, tokens;
	uint64_t last_ns;
};

/* The monotonic clock in ns: the bucket refills with elapsed time, whatever the wall clock. */
static uint64_t now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct shd_ratelimit *shd_ratelimit_new(double rate, double burst)
{
	struct shd_ratelimit *rl = calloc(1, sizeof(*rl));

	if (!rl)
		return NULL;
	(void)pthread_mutex_init(&rl->mu, NULL);
	rl->rate = rate;
	rl->burst = burst < 1 ? 1 : burst;
	rl->tokens = rl->burst;
	rl->last_ns = now_ns();
	return rl;
}

struct shd_ratelimit *shd_ratelimit_free(struct shd_ratelimit *rl)
{
	if (rl) {
		(void)pthread_mutex_destroy(&rl->mu);
		free(rl);
	}
	return NULL;
}

/* Refill by the time since the last take (capped at burst), then take one if there is one. */
bool shd_ratelimit_take(struct shd_ratelimit *rl, long *ret_retry_after)
{
	bool ok;
	uint64_t t;

	if (!rl || rl->rate <= 0)
		return true;
	pthread_mutex_lock(&rl->mu);
	t = now_ns();
	rl->tokens += (double)(t - rl->last_ns) / 1e9 * rl->rate;
	if (rl->tokens > rl->burst)
		rl->tokens = rl->burst;
	rl->last_ns = t;
	ok = rl->tokens >= 1;
	if (ok)
		rl->tokens -= 1;
	else
		*ret_retry_after = (long)((1 - rl->tokens) / rl->rate) + 1; /* rounded up */
	pthread_mutex_unlock(&rl->mu);
	if (!ok && *ret_retry_after < 1)
		*ret_retry_after = 1;
	return ok;
}

/* 429 RATE_LIMITED naming the limit and its value. */
static int limited(struct shd_resp *resp, struct shp_error *err, const char *limit, long value,
		   long retry_after, const char *what)
{
	shp_error_set(err, SHP_E_RATE, "rate limited: %s (%s %ld); retry in %lds", what, limit,
		      value, retry_after);
	shp_error_detail(err, "limit", "%s", limit);
	shp_error_detail(err, "value", "%ld", value);
	shp_error_detail(err, "retry_after", "%ld", retry_after);
	resp->retry_after = retry_after;
	return -SHP_E_RATE;
}

/* The user's exemption, from their override row (false when the database cannot say). */
static bool exempt(struct shd_req *req)
{
	struct shp_error e = SHP_ERROR_INIT;
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24];

	if (!req->db)
		return false;
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	res = shd_db_exec(req->db, "SELECT exempt FROM rate_limit_overrides WHERE user_id = $1", 1,
			  (const char *[]){uid}, &e);
	return res && PQntuples(res) == 1 && shp_streq(shd_db_value(res, 0, 0), "t");
}

/* The admin is checked first (no lock, no query); the override only when the bucket is empty. */
int shd_ratelimit_request(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	long wait = 1;

	if (req->ident.is_admin || shd_ratelimit_take(req->d->rate, &wait) || exempt(req))
		return 0;
	return limited(resp, err, "api_rate", (long)req->d->cfg->rl_api_rate, wait,
		       "too many changes asked of shepherdd at once");
}

/* ---- the limits of a batch submission ------------------------------------------------------- */

/* What the caller has open, and their limits (override, else configuration). */
struct usage {
	bool exempt;
	long global_open, open, children, cooldown_left;
	long max_open, max_children, cooldown_s;
};

/* Everything the checks need in one query. */
static int usage_load(struct shd_req *req, struct usage *u, struct shp_error *err)
{
	const struct shd_config *cfg = req->d->cfg;
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24], po[16], pc[16], cd[16];

	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	(void)snprintf(po, sizeof(po), "%d", cfg->rl_user_pending_batches);
	(void)snprintf(pc, sizeof(pc), "%d", cfg->rl_user_pending_children);
	(void)snprintf(cd, sizeof(cd), "%d", cfg->rl_user_cooldown_s);
	res = shd_db_exec(
		req->db,
		"SELECT coalesce(o.exempt, false),"
		" (SELECT count(*) FROM batch_approval_tickets"
		"   WHERE status IN ('PENDING_APPROVAL', 'IN_PROGRESS')),"
		" (SELECT count(*) FROM batch_approval_tickets WHERE requester_id = $1"
		"   AND status IN ('PENDING_APPROVAL', 'IN_PROGRESS')),"
		" (SELECT coalesce(sum(pending + awaiting), 0) FROM batch_approval_tickets"
		"   WHERE requester_id = $1 AND status IN ('PENDING_APPROVAL', 'IN_PROGRESS')),"
		" coalesce(ceil(extract(epoch FROM (SELECT max(created_at) FROM"
		"   batch_approval_tickets WHERE requester_id = $1)"
		"   + make_interval(secs => coalesce(o.cooldown_s, $4::int)) - now())), 0),"
		" coalesce(o.pending_parents, $2::int), coalesce(o.pending_children, $3::int),"
		" coalesce(o.cooldown_s, $4::int)"
		" FROM (SELECT 1) one LEFT JOIN rate_limit_overrides o ON o.user_id = $1",
		4, (const char *[]){uid, po, pc, cd}, err);
	if (!res)
		return -err->code;
	u->exempt = shp_streq(shd_db_value(res, 0, 0), "t");
	u->global_open = strtol(shd_db_value(res, 0, 1), NULL, 10);
	u->open = strtol(shd_db_value(res, 0, 2), NULL, 10);
	u->children = strtol(shd_db_value(res, 0, 3), NULL, 10);
	u->cooldown_left = strtol(shd_db_value(res, 0, 4), NULL, 10);
	u->max_open = strtol(shd_db_value(res, 0, 5), NULL, 10);
	u->max_children = strtol(shd_db_value(res, 0, 6), NULL, 10);
	u->cooldown_s = strtol(shd_db_value(res, 0, 7), NULL, 10);
	return 0;
}

int shd_batch_limits_check(struct shd_req *req, struct shd_resp *resp, int nchildren,
			   bool new_parent, struct shp_error *err)
{
	const struct shd_config *cfg = req->d->cfg;
	struct usage u = {0};

	if (req->ident.is_admin)
		return 0;
	if (usage_load(req, &u, err) < 0)
		return -err->code;
	if (u.exempt)
		return 0;
	if (new_parent && cfg->rl_global_pending_batches > 0 &&
	    u.global_open >= cfg->rl_global_pending_batches)
		return limited(resp, err, "global_pending_batches", cfg->rl_global_pending_batches,
			       COUNT_RETRY_S, "too many batches are open");
	if (new_parent && u.open >= u.max_open)
		return limited(resp, err, "user_pending_batches", u.max_open, COUNT_RETRY_S,
			       "you have too many open batches");
	if (u.children + nchildren > u.max_children)
		return limited(resp, err, "user_pending_children", u.max_children, COUNT_RETRY_S,
			       "too many of your requests would be pending");
	if (new_parent && u.cooldown_left > 0)
		return limited(resp, err, "user_cooldown", u.cooldown_s, u.cooldown_left,
			       "batches come one at a time");
	return 0;
}

/* ---- the admin's override API -----------------------------------------------------------------
 */

/* The id of the user of the path (404 for an unknown name). */
static int user_id_of(struct shd_req *req, char *out, size_t size, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *name = req->params[0];

	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%.100s", name);
	res = shd_db_exec(req->db, "SELECT id FROM users WHERE name = $1", 1,
			  (const char *[]){name}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "user '%.100s' not found", name);
	(void)snprintf(out, size, "%s", shd_db_value(res, 0, 0));
	return 0;
}

#define LIMITS_SELECT                                                                              \
	"SELECT u.name, coalesce(o.exempt, false), coalesce(o.pending_parents, $2::int),"          \
	" coalesce(o.pending_children, $3::int), coalesce(o.cooldown_s, $4::int),"                 \
	" o.user_id IS NOT NULL, o.reason, o.set_by, o.updated_at"                                 \
	" FROM users u LEFT JOIN rate_limit_overrides o ON o.user_id = u.id"

static const struct shd_col limit_cols[] = {
	{"user", COL_TEXT},           {"exempt", COL_BOOL},
	{"pending_batches", COL_INT}, {"pending_children", COL_INT},
	{"cooldown_s", COL_INT},      {"override", COL_BOOL},
	{"reason", COL_TEXT},         {"set_by", COL_TEXT},
	{"updated_at", COL_TIME},
};

static void defaults(const struct shd_config *cfg, char po[16], char pc[16], char cd[16])
{
	(void)snprintf(po, 16, "%d", cfg->rl_user_pending_batches);
	(void)snprintf(pc, 16, "%d", cfg->rl_user_pending_children);
	(void)snprintf(cd, 16, "%d", cfg->rl_user_cooldown_s);
}

/* Every override (their number is small: one row per user at most, capped). */
int shd_api_rate_limits_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char po[16], pc[16], cd[16], lim[16];

	defaults(req->d->cfg, po, pc, cd);
	(void)snprintf(lim, sizeof(lim), "%d", OVERRIDE_MAX);
	res = shd_db_exec(req->db,
			  LIMITS_SELECT " WHERE o.user_id IS NOT NULL AND $1::int > 0"
					" ORDER BY u.name LIMIT $5",
			  5, (const char *[]){"1", po, pc, cd, lim}, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, limit_cols, (int)SHP_ARRAY_SIZE(limit_cols),
				  OVERRIDE_MAX, 0, err);
}

/* The user's effective limits, and whether they come from an override. */
int shd_api_rate_limits_get(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24], po[16], pc[16], cd[16];

	if (user_id_of(req, uid, sizeof(uid), err) < 0)
		return -err->code;
	defaults(req->d->cfg, po, pc, cd);
	res = shd_db_exec(req->db, LIMITS_SELECT " WHERE u.id = $1", 4,
			  (const char *[]){uid, po, pc, cd}, err);
	if (!res)
		return -err->code;
	return shd_resp_row(resp, 200, res, limit_cols, (int)SHP_ARRAY_SIZE(limit_cols), err);
}

/* An optional integer field as text (NULL when absent or null). */
static int opt_int(const json_t *body, const char *key, int64_t max, char *out, const char **ret,
		   struct shp_error *err)
{
	int64_t v = 0;

	*ret = NULL;
	if (json_is_null(json_object_get(body, key)) || !json_object_get(body, key))
		return 0;
	if (shp_json_get_int(body, key, false, 0, max, &v, err) < 0)
		return -err->code;
	(void)snprintf(out, 24, "%" PRId64, v);
	*ret = out;
	return 0;
}

/* A full replacement of the override: absent limits fall back on the configuration. */
int shd_api_rate_limits_put(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"exempt",     "pending_batches", "pending_children",
					      "cooldown_s", "reason",          NULL};
	json_auto_t *body = shd_req_json_object(req, allowed, err);
	char uid[24], a[24], b[24], c[24];
	const char *po = NULL, *pc = NULL, *cd = NULL, *reason = NULL;
	bool ex = false;

	if (!body || user_id_of(req, uid, sizeof(uid), err) < 0 ||
	    shp_json_get_bool(body, "exempt", false, &ex, err) < 0 ||
	    opt_int(body, "pending_batches", 100000, a, &po, err) < 0 ||
	    opt_int(body, "pending_children", 10000000, b, &pc, err) < 0 ||
	    opt_int(body, "cooldown_s", 86400, c, &cd, err) < 0 ||
	    shp_json_get_string(body, "reason", false, 1024, &reason, err) < 0)
		return -err->code;
	if (shd_db_command(
		    req->db,
		    "INSERT INTO rate_limit_overrides (user_id, exempt, pending_parents,"
		    " pending_children, cooldown_s, reason, set_by)"
		    " VALUES ($1, $2::boolean, $3, $4, $5, $6, $7) ON CONFLICT (user_id) DO"
		    " UPDATE SET exempt = EXCLUDED.exempt, pending_parents ="
		    " EXCLUDED.pending_parents, pending_children = EXCLUDED.pending_children,"
		    " cooldown_s = EXCLUDED.cooldown_s, reason = EXCLUDED.reason,"
		    " set_by = EXCLUDED.set_by, updated_at = now()",
		    7,
		    (const char *[]){uid, ex ? "true" : "false", po, pc, cd, reason ? reason : "",
				     req->ident.name},
		    err) < 0)
		return -err->code;
	return shd_api_rate_limits_get(req, resp, err);
}

int shd_api_rate_limits_delete(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	char uid[24];

	if (user_id_of(req, uid, sizeof(uid), err) < 0 ||
	    shd_db_command(req->db, "DELETE FROM rate_limit_overrides WHERE user_id = $1", 1,
			   (const char *[]){uid}, err) < 0)
		return -err->code;
	return shd_api_rate_limits_get(req, resp, err);
}
