/*
 * The cluster health checker: one check asks the provider for health and capabilities and
 * writes the clusters row; the periodic job checks every cluster, and a change of health is
 * logged once (the row keeps the previous value to compare with, so repeats stay quiet).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "health.h"
#include "log.h"
#include "provider.h"
#include "queue.h"
#include "shepherdd.h"
#include "util.h"

struct shd_health {
	struct shd_health_config cfg;
	char spec[32]; /* "@every 30s" */
};

struct shd_health *shd_health_new(const struct shd_health_config *cfg, struct shp_error *err)
{
	struct shd_health *h;

	if (!cfg->provider) {
		shp_error_set(err, SHP_E_INVAL, "a health checker needs a provider function");
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	h->cfg = *cfg;
	if (h->cfg.check_timeout_ms <= 0)
		h->cfg.check_timeout_ms = 10000;
	if (h->cfg.interval_s <= 0)
		h->cfg.interval_s = 30;
	(void)snprintf(h->spec, sizeof(h->spec), "@every %ds", h->cfg.interval_s);
	return h;
}

struct shd_health *shd_health_free(struct shd_health *h)
{
	free(h);
	return NULL;
}

/* What one check found: the report, and the capabilities when they were detected. */
struct finding {
	struct shd_health_report rep;
	json_t *caps; /* owned; NULL = keep the last known */
};

/* Keep a detected list only when it is what the contract promises: strings, bounded. */
static json_t *valid_caps(json_t *caps)
{
	size_t i;
	json_t *v;

	if (!json_is_array(caps) || json_array_size(caps) > SHD_CAPS_MAX)
		goto bad;
	json_array_foreach(caps, i, v)
	{
		if (!json_is_string(v) || json_string_length(v) > 64)
			goto bad;
	}
	return caps;
bad:
	log_warn("a provider reported malformed capabilities, ignoring them");
	json_decref(caps);
	return NULL;
}

static void ask(struct shd_provider *p, uint64_t deadline, struct finding *f)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_t *caps = NULL;

	if (!p->cluster.ops || !p->cluster.ops->health) {
		f->rep.health = SHD_HEALTH_UNKNOWN;
		(void)snprintf(f->rep.message, sizeof(f->rep.message),
			       "the provider does not report health");
		return;
	}
	if (p->cluster.ops->health(p->cluster.impl, &f->rep, deadline, &err) < 0) {
		f->rep.health = SHD_HEALTH_UNKNOWN;
		(void)snprintf(f->rep.message, sizeof(f->rep.message), "health check failed: %s",
			       err.msg);
		return;
	}
	if (f->rep.health == SHD_HEALTH_UNREACHABLE || !p->cluster.ops->capabilities)
		return;
	err = (struct shp_error)SHP_ERROR_INIT;
	if (p->cluster.ops->capabilities(p->cluster.impl, &caps, deadline, &err) < 0) {
		log_debug("capability detection failed, keeping the last known: %s", err.msg);
		return;
	}
	f->caps = valid_caps(caps);
}

static void probe(struct shd_health *h, int64_t id, uint64_t deadline_ns, struct finding *f)
{
	struct shp_error err = SHP_ERROR_INIT;
	uint64_t deadline = shp_now_monotonic_ns() + (uint64_t)h->cfg.check_timeout_ms * 1000000ull;
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = NULL;

	if (deadline_ns && deadline_ns < deadline)
		deadline = deadline_ns;
	memset(f, 0, sizeof(*f));
	p = h->cfg.provider(h->cfg.provider_ud, id, &err);
	if (!p) {
		/* bad credentials, a broken kubeconfig: the cluster cannot be used */
		f->rep.health = SHD_HEALTH_UNHEALTHY;
		(void)snprintf(f->rep.message, sizeof(f->rep.message), "%s", err.msg);
		return;
	}
	ask(p, deadline, f);
}

static const struct shd_col health_cols[] = {
	{"name", COL_TEXT},
	{"health", COL_TEXT},
	{"health_message", COL_TEXT},
	{"health_checked_at", COL_TIME},
	{"kubernetes_version", COL_TEXT},
	{"kubevirt_version", COL_TEXT},
	{"capabilities", COL_JSON},
	{"capabilities_at", COL_TIME},
	{"previous_health", COL_TEXT},
};

/* Versions stay as last known while a cluster cannot tell them (unreachable). */
static const char sql_write[] =
	"WITH old AS (SELECT id, health FROM clusters WHERE id = $1 FOR UPDATE)"
	" UPDATE clusters c SET health = $2::cluster_health, health_message = $3,"
	"   health_checked_at = now(),"
	"   kubernetes_version = COALESCE(NULLIF($4, ''), c.kubernetes_version),"
	"   kubevirt_version = COALESCE(NULLIF($5, ''), c.kubevirt_version),"
	"   capabilities = COALESCE($6::jsonb, c.capabilities),"
	"   capabilities_at = CASE WHEN $6 IS NULL THEN c.capabilities_at ELSE now() END"
	" FROM old WHERE c.id = old.id"
	" RETURNING c.name, c.health::text, c.health_message, c.health_checked_at,"
	"   c.kubernetes_version, c.kubevirt_version, c.capabilities, c.capabilities_at,"
	"   old.health::text";

static void log_change(const PGresult *res)
{
	const char *name = shd_db_value(res, 0, 0), *now = shd_db_value(res, 0, 1);
	const char *before = shd_db_value(res, 0, 8), *msg = shd_db_value(res, 0, 2);

	if (strcmp(now, before) == 0)
		return;
	if (strcmp(now, "HEALTHY") == 0)
		log_info("cluster '%s' is HEALTHY (was %s)", name, before);
	else
		log_warn("cluster '%s' is %s (was %s): %s", name, now, before, msg);
}

static int write_finding(PGconn *conn, int64_t id, const struct finding *f, json_t **ret,
			 struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	_cleanup_free_ char *caps = NULL;
	char ids[24];

	(void)snprintf(ids, sizeof(ids), "%lld", (long long)id);
	if (f->caps) {
		caps = json_dumps(f->caps, JSON_COMPACT);
		if (!caps)
			return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	res = shd_db_exec(conn, sql_write, 6,
			  (const char *[]){ids, shd_cluster_health_to_string(f->rep.health),
					   f->rep.message, f->rep.kubernetes_version,
					   f->rep.kubevirt_version, caps},
			  err);
	if (!res)
		return shp_error_prefix(err, "recording the health of cluster %s", ids);
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "cluster %s not found", ids);
	log_change(res);
	if (ret) {
		*ret = shd_row_to_json(res, 0, health_cols, (int)SHP_ARRAY_SIZE(health_cols));
		if (!*ret)
			return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	return 0;
}

int shd_health_check_cluster(struct shd_health *h, PGconn *conn, int64_t cluster_id,
			     uint64_t deadline_ns, json_t **ret, struct shp_error *err)
{
	struct finding f;
	PGconn *own = NULL;
	int r;

	probe(h, cluster_id, deadline_ns, &f);
	if (!conn) {
		if (!h->cfg.pool) {
			json_decref(f.caps);
			return shp_error_set(err, SHP_E_INTERNAL,
					     "no database to record health in");
		}
		own = conn = shd_dbpool_get(h->cfg.pool, err);
	}
	r = conn ? write_finding(conn, cluster_id, &f, ret, err) : -(int)err->code;
	if (own)
		shd_dbpool_put(h->cfg.pool, own);
	json_decref(f.caps);
	return r;
}

int shd_health_check_all(struct shd_health *h, PGconn *conn, int *ret_checked,
			 struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	int n = 0, failed = 0, code = 0;

	res = shd_db_exec(conn, "SELECT id FROM clusters ORDER BY id", 0, NULL, err);
	if (!res)
		return -err->code;
	for (int i = 0; i < PQntuples(res); i++) {
		struct shp_error cerr = SHP_ERROR_INIT;
		int64_t id = strtoll(shd_db_value(res, i, 0), NULL, 10);

		if (shd_health_check_cluster(h, conn, id, 0, NULL, &cerr) < 0) {
			/* a cluster deleted meanwhile is no failure */
			if (cerr.code == SHP_E_NOTFOUND)
				continue;
			if (failed++ == 0) {
				code = cerr.code;
				if (err)
					*err = cerr;
			}
			continue;
		}
		n++;
	}
	if (ret_checked)
		*ret_checked = n;
	return failed ? -code : 0;
}

static enum shd_job_outcome health_job(struct shd_job *job, void *ctx)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGconn *conn = shd_job_conn(job, &err);
	int n = 0;

	if (!conn || shd_health_check_all(ctx, conn, &n, &err) < 0)
		return shd_job_fail(job, "%s", err.msg);
	log_debug("checked the health of %d cluster(s)", n);
	return SHD_JOB_DONE;
}

int shd_health_register(struct shd_health *h, struct shd_queue *q, struct shp_error *err)
{
	const struct shd_job_kind kind = {
		.name = SHD_HEALTH_JOB_KIND,
		.run = health_job,
		.ctx = h,
		/* clusters are checked in turn, each within its own deadline */
		.timeout_ms = 300000,
	};

	if (shd_queue_register(q, &kind, err) < 0)
		return -err->code;
	return shd_queue_add_periodic(q, SHD_HEALTH_JOB_KIND, h->spec, SHD_HEALTH_JOB_KIND, "{}",
				      err);
}
