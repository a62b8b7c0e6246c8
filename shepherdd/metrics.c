/*
 * Prometheus metrics: requests by route, method and status, a latency histogram per route,
 * database pool gauges and build info. Counters are atomics indexed by route and status
 * class, so recording a request takes no lock.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "buf.h"
#include "db.h"
#include "error.h"
#include "shepherdd.h"
#include "util.h"

/* The statuses the daemon answers with; anything else is counted as "other". */
static const int statuses[] = {200, 201, 202, 204, 400, 401, 403, 404, 405,
			       409, 413, 415, 422, 429, 500, 502, 503, 504};
#define NSTATUS (SHP_ARRAY_SIZE(statuses) + 1)

/* Histogram bucket upper bounds in microseconds. */
static const uint64_t buckets_us[] = {250,    500,     1000,    2500,    5000,
				      10000,  25000,   50000,   100000,  250000,
				      500000, 1000000, 2500000, 5000000, 10000000};
#define NBUCKETS (SHP_ARRAY_SIZE(buckets_us) + 1)

struct route_stats {
	atomic_uint_fast64_t by_status[NSTATUS];
	atomic_uint_fast64_t bucket[NBUCKETS];
	atomic_uint_fast64_t sum_us;
	atomic_uint_fast64_t count;
};

struct shd_metrics {
	size_t nroutes;
	struct route_stats *routes; /* nroutes + 1: the last is "unmatched" */
};

struct shd_metrics *shd_metrics_new(size_t nroutes)
{
	struct shd_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->nroutes = nroutes;
	m->routes = calloc(nroutes + 1, sizeof(*m->routes));
	if (!m->routes) {
		free(m);
		return NULL;
	}
	return m;
}

struct shd_metrics *shd_metrics_free(struct shd_metrics *m)
{
	if (m) {
		free(m->routes);
		free(m);
	}
	return NULL;
}

static size_t status_index(int status)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(statuses); i++)
		if (statuses[i] == status)
			return i;
	return NSTATUS - 1;
}

void shd_metrics_observe(struct shd_metrics *m, int route, int status, uint64_t duration_ns)
{
	struct route_stats *rs;
	uint64_t us = duration_ns / 1000;
	size_t b = 0;

	if (!m)
		return;
	rs = &m->routes[route < 0 || (size_t)route >= m->nroutes ? m->nroutes : (size_t)route];
	atomic_fetch_add_explicit(&rs->by_status[status_index(status)], 1, memory_order_relaxed);
	while (b < SHP_ARRAY_SIZE(buckets_us) && us > buckets_us[b])
		b++;
	atomic_fetch_add_explicit(&rs->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&rs->sum_us, us, memory_order_relaxed);
	atomic_fetch_add_explicit(&rs->count, 1, memory_order_relaxed);
}

static const char *route_label(struct shd_metrics *m, size_t i)
{
	return i < m->nroutes ? shd_routes[i].metric_name : "unmatched";
}

static const char *route_method(struct shd_metrics *m, size_t i)
{
	return i < m->nroutes ? shd_routes[i].method : "";
}

static int render_requests(struct shd_metrics *m, struct shp_buf *b)
{
	int r = shp_buf_add(b, "# HELP shepherd_http_requests_total HTTP requests answered.\n"
			       "# TYPE shepherd_http_requests_total counter\n");

	for (size_t i = 0; r == 0 && i <= m->nroutes; i++) {
		for (size_t s = 0; r == 0 && s < NSTATUS; s++) {
			uint64_t v = atomic_load_explicit(&m->routes[i].by_status[s],
							  memory_order_relaxed);
			char code[8];
			if (!v)
				continue;
			if (s < SHP_ARRAY_SIZE(statuses))
				(void)snprintf(code, sizeof(code), "%d", statuses[s]);
			else
				(void)snprintf(code, sizeof(code), "other");
			r = shp_buf_addf(b,
					 "shepherd_http_requests_total{route=\"%s\",method=\"%s\","
					 "status=\"%s\"} %llu\n",
					 route_label(m, i), route_method(m, i), code,
					 (unsigned long long)v);
		}
	}
	return r;
}

static int render_latency(struct shd_metrics *m, struct shp_buf *b)
{
	int r = shp_buf_add(b,
			    "# HELP shepherd_http_request_duration_seconds Time from the request's "
			    "arrival to its response.\n"
			    "# TYPE shepherd_http_request_duration_seconds histogram\n");

	for (size_t i = 0; r == 0 && i <= m->nroutes; i++) {
		struct route_stats *rs = &m->routes[i];
		uint64_t count = atomic_load_explicit(&rs->count, memory_order_relaxed);
		uint64_t cum = 0;

		if (!count)
			continue;
		for (size_t k = 0; r == 0 && k < NBUCKETS; k++) {
			cum += atomic_load_explicit(&rs->bucket[k], memory_order_relaxed);
			if (k < SHP_ARRAY_SIZE(buckets_us))
				r = shp_buf_addf(b,
						 "shepherd_http_request_duration_seconds_bucket{"
						 "route=\"%s\",le=\"%g\"} %llu\n",
						 route_label(m, i), (double)buckets_us[k] / 1e6,
						 (unsigned long long)cum);
			else
				r = shp_buf_addf(b,
						 "shepherd_http_request_duration_seconds_bucket{"
						 "route=\"%s\",le=\"+Inf\"} %llu\n",
						 route_label(m, i), (unsigned long long)cum);
		}
		if (r == 0)
			r = shp_buf_addf(
				b,
				"shepherd_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
				"shepherd_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
				route_label(m, i),
				(double)atomic_load_explicit(&rs->sum_us, memory_order_relaxed) /
					1e6,
				route_label(m, i), (unsigned long long)count);
	}
	return r;
}

static int render_pool(struct shd_daemon *d, struct shp_buf *b)
{
	struct shd_dbpool_stats st;

	shd_dbpool_get_stats(d->pool, &st);
	return shp_buf_addf(
		b,
		"# HELP shepherd_db_pool_size Configured maximum of pooled connections.\n"
		"# TYPE shepherd_db_pool_size gauge\nshepherd_db_pool_size %d\n"
		"# HELP shepherd_db_pool_open Open pooled connections.\n"
		"# TYPE shepherd_db_pool_open gauge\nshepherd_db_pool_open %d\n"
		"# HELP shepherd_db_pool_in_use Connections checked out.\n"
		"# TYPE shepherd_db_pool_in_use gauge\nshepherd_db_pool_in_use %d\n"
		"# HELP shepherd_db_pool_waiting Requests waiting for a connection.\n"
		"# TYPE shepherd_db_pool_waiting gauge\nshepherd_db_pool_waiting %d\n"
		"# HELP shepherd_db_pool_checkouts_total Connections handed out.\n"
		"# TYPE shepherd_db_pool_checkouts_total counter\n"
		"shepherd_db_pool_checkouts_total %llu\n"
		"# HELP shepherd_db_pool_timeouts_total Checkouts that gave up.\n"
		"# TYPE shepherd_db_pool_timeouts_total counter\n"
		"shepherd_db_pool_timeouts_total %llu\n"
		"# HELP shepherd_db_pool_connect_failures_total Failed connection attempts.\n"
		"# TYPE shepherd_db_pool_connect_failures_total counter\n"
		"shepherd_db_pool_connect_failures_total %llu\n"
		"# HELP shepherd_db_pool_resets_total Broken connections discarded.\n"
		"# TYPE shepherd_db_pool_resets_total counter\n"
		"shepherd_db_pool_resets_total %llu\n"
		"# HELP shepherd_db_up Whether the last connection attempt succeeded.\n"
		"# TYPE shepherd_db_up gauge\nshepherd_db_up %d\n",
		st.size, st.open, st.in_use, st.waiting, (unsigned long long)st.checkouts,
		(unsigned long long)st.timeouts, (unsigned long long)st.connect_failures,
		(unsigned long long)st.resets, st.healthy ? 1 : 0);
}

int shd_metrics_render(struct shd_daemon *d, struct shp_buf *out)
{
	int r = shp_buf_addf(
		out,
		"# HELP shepherd_build_info Build information.\n"
		"# TYPE shepherd_build_info gauge\n"
		"shepherd_build_info{version=\"%s\",commit=\"%s\",api_version=\"%d\"} 1\n"
		"# HELP shepherd_start_time_seconds When the daemon started.\n"
		"# TYPE shepherd_start_time_seconds gauge\n"
		"shepherd_start_time_seconds %.3f\n",
		PACKAGE_VERSION, SHP_GIT_COMMIT, SHP_API_VERSION, (double)d->started_at_us / 1e6);

	if (r == 0)
		r = render_requests(d->metrics, out);
	if (r == 0)
		r = render_latency(d->metrics, out);
	if (r == 0)
		r = render_pool(d, out);
	return r;
}
