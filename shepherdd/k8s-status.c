/*
 * Kubernetes Status objects -> shepherd errors. The cluster's message is kept (bounded, control
 * characters dropped) because it is what an operator needs to act on; the reason becomes the
 * API code so clients can tell AlreadyExists from a stale-resourceVersion Conflict.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "k8s-status.h"
#include "util.h"

static const struct {
	long status;
	enum shp_errc code;
	const char *api;
} by_status[] = {
	{400, SHP_E_INVAL, "CLUSTER_BAD_REQUEST"},   {401, SHP_E_PERM, "CLUSTER_UNAUTHORIZED"},
	{403, SHP_E_PERM, "CLUSTER_FORBIDDEN"},      {404, SHP_E_NOTFOUND, "NOT_FOUND"},
	{409, SHP_E_CONFLICT, "CONFLICT"},           {410, SHP_E_K8S, "RESOURCE_EXPIRED"},
	{422, SHP_E_INVAL, "CLUSTER_INVALID"},       {429, SHP_E_RATE, "CLUSTER_THROTTLED"},
	{503, SHP_E_UNAVAIL, "CLUSTER_UNAVAILABLE"}, {504, SHP_E_TIMEOUT, "CLUSTER_TIMEOUT"},
};

/* Copy s into out, dropping control characters (a cluster's text goes into logs and answers). */
static void clean_copy(char *out, size_t size, const char *s)
{
	size_t n = 0;

	for (; s && *s && n + 1 < size; s++)
		if ((unsigned char)*s >= 0x20 && *s != 0x7f)
			out[n++] = *s;
	out[n] = '\0';
}

static int retry_after_s(const char *header, const json_t *st)
{
	const json_t *v = json_object_get(json_object_get(st, "details"), "retryAfterSeconds");
	long long n = 1;

	if (header && shp_parse_int(header, 0, 86400, &n, NULL) < 0)
		n = 1; /* an HTTP date or garbage: retry soon, the backoff does the rest */
	else if (!header && json_is_integer(v))
		n = json_integer_value(v);
	return n < 1 ? 1 : n > 60 ? 60 : (int)n;
}

/* The causes of a 422 as details ("field" -> message) and a "; "-joined summary. */
static void add_causes(const json_t *st, char *summary, size_t size, struct shp_error *err)
{
	const json_t *causes = json_object_get(json_object_get(st, "details"), "causes"), *c;
	size_t i, used = 0;

	json_array_foreach(causes, i, c)
	{
		char field[32], msg[160];
		clean_copy(field, sizeof(field), json_string_value(json_object_get(c, "field")));
		clean_copy(msg, sizeof(msg), json_string_value(json_object_get(c, "message")));
		if (!msg[0])
			continue;
		if (field[0])
			shp_error_detail(err, field, "%s", msg);
		if (used + 2 < size)
			used += (size_t)snprintf(summary + used, size - used, "%s%s",
						 used ? "; " : "", msg);
		if (used >= size)
			used = size - 1;
	}
}

int shd_k8s_error(long http_status, const char *body, size_t len, const char *retry_after,
		  struct shd_k8s_failure *ret, struct shp_error *err)
{
	struct shd_k8s_failure f = {.http_status = http_status, .retry_after_s = 1};
	json_auto_t *st = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	enum shp_errc code = SHP_E_K8S;
	const char *api = "CLUSTER_ERROR";
	char msg[384] = "", causes[384] = "";

	if (!json_is_object(st) || !json_is_string(json_object_get(st, "message")))
		(void)snprintf(msg, sizeof(msg), "HTTP %ld", http_status);
	else
		clean_copy(msg, sizeof(msg), json_string_value(json_object_get(st, "message")));
	clean_copy(f.reason, sizeof(f.reason), json_string_value(json_object_get(st, "reason")));
	for (size_t i = 0; i < SHP_ARRAY_SIZE(by_status); i++)
		if (by_status[i].status == http_status) {
			code = by_status[i].code;
			api = by_status[i].api;
		}
	if (http_status == 409 && strcmp(f.reason, "AlreadyExists") == 0)
		api = "ALREADY_EXISTS";
	f.retryable = http_status == 429 || (http_status >= 500 && http_status <= 599);
	f.expired = http_status == 410;
	if (f.retryable)
		f.retry_after_s = retry_after_s(retry_after, st);
	shp_error_set(err, code, "cluster: %s", msg);
	if (err) {
		shp_error_api_code(err, api);
		err->http_status = 0; /* our status follows from the code, not the cluster's */
		if (f.reason[0])
			shp_error_detail(err, "cluster_reason", "%s", f.reason);
		add_causes(st, causes, sizeof(causes), err);
		if (causes[0] && !strstr(msg, causes))
			(void)snprintf(err->msg, sizeof(err->msg), "cluster: %s (%s)", msg, causes);
	}
	if (ret)
		*ret = f;
	return -(int)code;
}
