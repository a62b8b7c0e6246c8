/*
 * Kubernetes Status objects to shepherd errors: every status of the API reference, the reason
 * as API code, 422 causes as details, retry classification and Retry-After, and answers that
 * are not a Status at all.
 */
#include "config.h"

#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "k8s-status.h"

struct k8s_case {
	long status;
	const char *body;
	const char *retry_after;
	enum shp_errc code;
	const char *api;
	bool retryable;
	int retry_s;
	const char *msg_has;
};

static const struct k8s_case cases[] = {
	{404,
	 "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"virtualmachines.kubevirt.io "
	 "\\\"vm1\\\" not found\",\"reason\":\"NotFound\",\"code\":404}",
	 NULL, SHP_E_NOTFOUND, "NOT_FOUND", false, 1, "\"vm1\" not found"},
	{409, "{\"message\":\"object exists\",\"reason\":\"AlreadyExists\"}", NULL, SHP_E_CONFLICT,
	 "ALREADY_EXISTS", false, 1, "object exists"},
	{409, "{\"message\":\"the object has been modified\",\"reason\":\"Conflict\"}", NULL,
	 SHP_E_CONFLICT, "CONFLICT", false, 1, "modified"},
	{401, "{\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\"}", NULL, SHP_E_PERM,
	 "CLUSTER_UNAUTHORIZED", false, 1, "Unauthorized"},
	{403, "{\"message\":\"virtualmachines.kubevirt.io is forbidden\",\"reason\":\"Forbidden\"}",
	 NULL, SHP_E_PERM, "CLUSTER_FORBIDDEN", false, 1, "forbidden"},
	{400, "{\"message\":\"admission webhook \\\"x\\\" denied the request: no\"}", NULL,
	 SHP_E_INVAL, "CLUSTER_BAD_REQUEST", false, 1, "denied the request"},
	{410, "{\"message\":\"too old resource version\",\"reason\":\"Expired\"}", NULL, SHP_E_K8S,
	 "RESOURCE_EXPIRED", false, 1, "too old"},
	{429, "{\"message\":\"slow down\",\"details\":{\"retryAfterSeconds\":7}}", NULL, SHP_E_RATE,
	 "CLUSTER_THROTTLED", true, 7, "slow down"},
	{429, "{\"message\":\"slow down\",\"details\":{\"retryAfterSeconds\":7}}", "3", SHP_E_RATE,
	 "CLUSTER_THROTTLED", true, 3, "slow down"},
	{429, NULL, "9999", SHP_E_RATE, "CLUSTER_THROTTLED", true, 60, "HTTP 429"},
	{429, NULL, "Wed, 21 Oct 2015 07:28:00 GMT", SHP_E_RATE, "CLUSTER_THROTTLED", true, 1,
	 "HTTP 429"},
	{500, "{\"message\":\"Internal error occurred: webhook failed\"}", NULL, SHP_E_K8S,
	 "CLUSTER_ERROR", true, 1, "webhook failed"},
	{503, "<html>service unavailable</html>", NULL, SHP_E_UNAVAIL, "CLUSTER_UNAVAILABLE", true,
	 1, "HTTP 503"},
	{504, "{\"message\":\"Timeout\",\"reason\":\"Timeout\"}", NULL, SHP_E_TIMEOUT,
	 "CLUSTER_TIMEOUT", true, 1, "Timeout"},
	{415, "{\"message\":\"the body of the request was in an unknown format\"}", NULL, SHP_E_K8S,
	 "CLUSTER_ERROR", false, 1, "unknown format"},
	{418, "[]", NULL, SHP_E_K8S, "CLUSTER_ERROR", false, 1, "HTTP 418"},
	{404, "{\"message\":7}", NULL, SHP_E_NOTFOUND, "NOT_FOUND", false, 1, "HTTP 404"},
	{404, "{\"message\":\"bad\\u0007\\nline\"}", NULL, SHP_E_NOTFOUND, "NOT_FOUND", false, 1,
	 "badline"},
};

Test(k8s_status, every_status)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct k8s_case *c = &cases[i];
		struct shp_error err = SHP_ERROR_INIT;
		struct shd_k8s_failure f;
		int r = shd_k8s_error(c->status, c->body, c->body ? strlen(c->body) : 0,
				      c->retry_after, &f, &err);

		cr_expect_eq(r, -(int)c->code, "case %zu: %d", i, r);
		cr_expect_eq(err.code, c->code, "case %zu", i);
		cr_expect_str_eq(shp_error_api_code_of(&err), c->api, "case %zu", i);
		cr_expect_eq(f.retryable, c->retryable, "case %zu", i);
		cr_expect_eq(f.retry_after_s, c->retry_s, "case %zu: %d", i, f.retry_after_s);
		cr_expect(strstr(err.msg, c->msg_has), "case %zu: '%s' lacks '%s'", i, err.msg,
			  c->msg_has);
		cr_expect_eq(f.expired, c->status == 410, "case %zu", i);
	}
}

Test(k8s_status, invalid_with_causes)
{
	static const char body[] = "{\"kind\":\"Status\",\"message\":\"VirtualMachine.kubevirt.io "
				   "\\\"vm1\\\" is invalid\","
				   "\"reason\":\"Invalid\",\"details\":{\"causes\":[{\"reason\":"
				   "\"FieldValueRequired\","
				   "\"message\":\"no memory "
				   "requested\",\"field\":\"spec.template.spec.domain.memory\"},"
				   "{\"reason\":\"FieldValueInvalid\",\"message\":\"bad "
				   "bus\",\"field\":\"spec.disks\"},"
				   "7,{\"field\":\"x\"}]},\"code\":422}";
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_k8s_failure f;

	cr_assert_eq(shd_k8s_error(422, body, sizeof(body) - 1, NULL, &f, &err), -SHP_E_INVAL);
	cr_expect_str_eq(shp_error_api_code_of(&err), "CLUSTER_INVALID");
	cr_expect_str_eq(f.reason, "Invalid");
	cr_expect(strstr(err.msg, "no memory requested; bad bus"), "%s", err.msg);
	cr_expect_str_eq(err.details[0].key, "cluster_reason");
	cr_expect_str_eq(err.details[2].key, "spec.disks");
	cr_expect_str_eq(err.details[2].value, "bad bus");
	cr_expect_eq(shd_k8s_error(500, NULL, 0, NULL, NULL, NULL), -SHP_E_K8S,
		     "err and ret may "
		     "be NULL");
}
