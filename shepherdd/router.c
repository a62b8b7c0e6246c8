/*
 * The route table and the one place where errors become HTTP statuses and JSON error bodies.
 * Dispatch: match the path (404) and method (405), identify the caller (401), check admin
 * routes (403), check the body's media type (415), borrow a database connection (503 when the
 * database is down), run the handler, and audit refused mutations.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>
#include <openssl/evp.h>

#include "api.h"
#include "batch.h"
#include "db.h"
#include "error.h"
#include "json.h"
#include "log.h"
#include "shepherdd.h"
#include "upgrade.h"
#include "util.h"

#define NS "/api/v1/namespaces"
#define CL "/api/v1/clusters"
#define RC "/api/v1/reconcile"
#define AD "/api/v1/adoptions"

const struct shd_route shd_routes[] = {
	{"GET", SHP_ROUTE_HEALTH_LIVE, shd_api_health_live, ROUTE_PUBLIC, NULL, NULL,
	 "health_live"},
	{"GET", SHP_ROUTE_HEALTH_READY, shd_api_health_ready, ROUTE_PUBLIC, NULL, NULL,
	 "health_ready"},
	{"GET", SHP_ROUTE_METRICS, shd_api_metrics, ROUTE_PUBLIC, NULL, NULL, "metrics"},
	{"GET", SHP_ROUTE_VERSION, shd_api_version, ROUTE_PUBLIC, NULL, NULL, "version"},
	{"GET", SHP_ROUTE_STATUS, shd_api_status, ROUTE_DB, NULL, NULL, "status"},
	{"GET", SHP_ROUTE_WHOAMI, shd_api_whoami, ROUTE_DB, NULL, NULL, "whoami"},
	{"POST", SHP_ROUTE_TOKENS, shd_api_tokens_create, ROUTE_DB | ROUTE_BODY, "TOKEN_CREATE",
	 "token", "tokens_create"},
	{"GET", SHP_ROUTE_TOKENS, shd_api_tokens_list, ROUTE_DB, NULL, NULL, "tokens_list"},
	{"DELETE", SHP_ROUTE_TOKENS "/{id}", shd_api_tokens_revoke, ROUTE_DB, "TOKEN_REVOKE",
	 "token", "tokens_revoke"},
	{"POST", NS, shd_api_namespaces_create, ROUTE_DB | ROUTE_ADMIN | ROUTE_BODY,
	 "NAMESPACE_CREATE", "namespace", "namespaces_create"},
	{"GET", NS, shd_api_namespaces_list, ROUTE_DB, NULL, NULL, "namespaces_list"},
	{"GET", NS "/{name}", shd_api_namespaces_get, ROUTE_DB, NULL, NULL, "namespaces_get"},
	{"DELETE", NS "/{name}", shd_api_namespaces_delete, ROUTE_DB | ROUTE_ADMIN,
	 "NAMESPACE_DELETE", "namespace", "namespaces_delete"},
	{"POST", CL, shd_api_clusters_create, ROUTE_DB | ROUTE_ADMIN | ROUTE_BODY, "CLUSTER_CREATE",
	 "cluster", "clusters_create"},
	{"GET", CL, shd_api_clusters_list, ROUTE_DB | ROUTE_ADMIN, NULL, NULL, "clusters_list"},
	{"GET", CL "/{name}", shd_api_clusters_get, ROUTE_DB | ROUTE_ADMIN, NULL, NULL,
	 "clusters_get"},
	{"DELETE", CL "/{name}", shd_api_clusters_delete, ROUTE_DB | ROUTE_ADMIN, "CLUSTER_DELETE",
	 "cluster", "clusters_delete"},
	{"GET", CL "/{name}/instancetypes", shd_api_clusters_instancetypes, ROUTE_DB | ROUTE_ADMIN,
	 NULL, NULL, "clusters_instancetypes"},
	{"GET", CL "/{name}/preferences", shd_api_clusters_preferences, ROUTE_DB | ROUTE_ADMIN,
	 NULL, NULL, "clusters_preferences"},
	{"POST", CL "/{name}/health", shd_api_clusters_health, ROUTE_DB | ROUTE_ADMIN,
	 "CLUSTER_HEALTH_CHECK", "cluster", "clusters_health"},
	{"GET", CL "/{name}/vms", shd_api_clusters_vms, ROUTE_DB | ROUTE_ADMIN, NULL, NULL,
	 "clusters_vms"},
	{"GET", SHP_ROUTE_AUDIT, shd_api_audit_list, ROUTE_DB | ROUTE_ADMIN, NULL, NULL,
	 "audit_list"},
	{"GET", SHP_ROUTE_JOBS, shd_api_jobs_list, ROUTE_DB | ROUTE_ADMIN, NULL, NULL, "jobs_list"},
	{"GET", SHP_ROUTE_JOBS "/{id}", shd_api_jobs_get, ROUTE_DB | ROUTE_ADMIN, NULL, NULL,
	 "jobs_get"},
	{"POST", SHP_ROUTE_JOBS "/{id}/retry", shd_api_jobs_retry, ROUTE_DB | ROUTE_ADMIN,
	 "JOB_RETRY", "job", "jobs_retry"},
	{"POST", SHP_ROUTE_JOBS "/{id}/discard", shd_api_jobs_discard, ROUTE_DB | ROUTE_ADMIN,
	 "JOB_DISCARD", "job", "jobs_discard"},
	{"POST", SHP_ROUTE_JOBS "/{id}/cancel", shd_api_jobs_cancel, ROUTE_DB | ROUTE_ADMIN,
	 "JOB_CANCEL", "job", "jobs_cancel"},
	{"GET", SHP_ROUTE_QUEUES, shd_api_queues_stats, ROUTE_DB | ROUTE_ADMIN, NULL, NULL,
	 "queues_stats"},
	{"POST", SHP_ROUTE_QUEUES "/{name}/pause", shd_api_queues_pause, ROUTE_DB | ROUTE_ADMIN,
	 "QUEUE_PAUSE", "queue", "queues_pause"},
	{"POST", SHP_ROUTE_QUEUES "/{name}/resume", shd_api_queues_resume, ROUTE_DB | ROUTE_ADMIN,
	 "QUEUE_RESUME", "queue", "queues_resume"},
	{"POST", SHP_ROUTE_TASKS, shd_api_tasks_submit, ROUTE_DB | ROUTE_BODY, "TASK_SUBMIT",
	 "task", "tasks_submit"},
	{"GET", SHP_ROUTE_TASKS, shd_api_tasks_list, ROUTE_DB, NULL, NULL, "tasks_list"},
	{"GET", SHP_ROUTE_TASKS "/{id}", shd_api_tasks_get, ROUTE_DB, NULL, NULL, "tasks_get"},
	{"GET", SHP_ROUTE_TASKS "/{id}/events", shd_api_tasks_events, ROUTE_DB, NULL, NULL,
	 "tasks_events"},
	{"GET", SHP_ROUTE_TASKS "/{id}/stream", shd_api_tasks_stream, ROUTE_DB, NULL, NULL,
	 "tasks_stream"},
	{"POST", SHP_ROUTE_TASKS "/{id}/cancel", shd_api_tasks_cancel, ROUTE_DB, "TASK_CANCEL",
	 "task", "tasks_cancel"},
	{"GET", SHP_ROUTE_TENANTS "/{tenant}/members", shd_api_tenant_members_list, ROUTE_DB, NULL,
	 NULL, "tenant_members_list"},
	{"PUT", SHP_ROUTE_TENANTS "/{tenant}/members/{user}", shd_api_tenant_members_put,
	 ROUTE_DB | ROUTE_BODY, "TENANT_MEMBER_SET", "tenant", "tenant_members_put"},
	{"DELETE", SHP_ROUTE_TENANTS "/{tenant}/members/{user}", shd_api_tenant_members_delete,
	 ROUTE_DB, "TENANT_MEMBER_REMOVE", "tenant", "tenant_members_delete"},
	{"GET", SHP_ROUTE_EXEC_FLAGS, shd_api_exec_flags_list, ROUTE_DB, NULL, NULL,
	 "exec_flags_list"},
	{"PUT", SHP_ROUTE_EXEC_FLAGS "/{scope}", shd_api_exec_flags_put,
	 ROUTE_DB | ROUTE_ADMIN | ROUTE_BODY, "EXEC_FLAG_SET", "execution_flag", "exec_flags_put"},
	{"DELETE", SHP_ROUTE_EXEC_FLAGS "/{scope}", shd_api_exec_flags_delete,
	 ROUTE_DB | ROUTE_ADMIN, "EXEC_FLAG_UNSET", "execution_flag", "exec_flags_delete"},
	{"POST", RC, shd_api_reconcile_run, ROUTE_DB | ROUTE_ADMIN, "RECONCILE_RUN", "cluster",
	 "reconcile_run"},
	{"GET", RC "/runs", shd_api_reconcile_runs, ROUTE_DB | ROUTE_ADMIN, NULL, NULL,
	 "reconcile_runs"},
	{"GET", AD, shd_api_adoptions_list, ROUTE_DB | ROUTE_ADMIN, NULL, NULL, "adoptions_list"},
	{"POST", AD "/scan", shd_api_adoptions_scan, ROUTE_DB | ROUTE_ADMIN, "ADOPTION_SCAN",
	 "cluster", "adoptions_scan"},
	{"POST", AD "/{id}/adopt", shd_api_adoptions_adopt, ROUTE_DB | ROUTE_ADMIN,
	 "ADOPTION_ADOPTED", "adoption", "adoptions_adopt"},
	{"POST", AD "/{id}/ignore", shd_api_adoptions_ignore, ROUTE_DB | ROUTE_ADMIN,
	 "ADOPTION_IGNORED", "adoption", "adoptions_ignore"},
	{"GET", SHP_ROUTE_TEMPLATES, shd_api_templates_list, ROUTE_DB, NULL, NULL,
	 "templates_list"},
	{"POST", SHP_ROUTE_TEMPLATES, shd_api_templates_create, ROUTE_DB | ROUTE_ADMIN | ROUTE_BODY,
	 "TEMPLATE_CREATE", "template", "templates_create"},
	{"GET", SHP_ROUTE_TEMPLATES "/{name}", shd_api_templates_get, ROUTE_DB, NULL, NULL,
	 "templates_get"},
	{"GET", SHP_ROUTE_TEMPLATES "/{name}/export", shd_api_templates_export, ROUTE_DB, NULL,
	 NULL, "templates_export"},
	{"POST", SHP_ROUTE_TEMPLATES "/{name}/publish", shd_api_templates_publish,
	 ROUTE_DB | ROUTE_ADMIN | ROUTE_BODY, "TEMPLATE_PUBLISH", "template", "templates_publish"},
	{"POST", SHP_ROUTE_TEMPLATES "/{name}/deprecate", shd_api_templates_deprecate,
	 ROUTE_DB | ROUTE_ADMIN | ROUTE_BODY, "TEMPLATE_DEPRECATE", "template",
	 "templates_deprecate"},
	{"POST", SHP_ROUTE_TEMPLATES "/{name}/archive", shd_api_templates_archive,
	 ROUTE_DB | ROUTE_ADMIN | ROUTE_BODY, "TEMPLATE_ARCHIVE", "template", "templates_archive"},
	{"GET", SHP_ROUTE_SIZES, shd_api_sizes_list, ROUTE_DB, NULL, NULL, "sizes_list"},
	{"POST", SHP_ROUTE_SIZES, shd_api_sizes_create, ROUTE_DB | ROUTE_ADMIN | ROUTE_BODY,
	 "SIZE_CREATE", "instance_size", "sizes_create"},
	{"GET", SHP_ROUTE_SIZES "/{name}", shd_api_sizes_get, ROUTE_DB, NULL, NULL, "sizes_get"},
	{"PUT", SHP_ROUTE_SIZES "/{name}", shd_api_sizes_update,
	 ROUTE_DB | ROUTE_ADMIN | ROUTE_BODY, "SIZE_UPDATE", "instance_size", "sizes_update"},
	{"DELETE", SHP_ROUTE_SIZES "/{name}", shd_api_sizes_delete, ROUTE_DB | ROUTE_ADMIN,
	 "SIZE_DISABLE", "instance_size", "sizes_delete"},
	/* batches: before /vms/{name}, which would take "batch" for a VM's name */
	{"GET", SHP_ROUTE_VMS "/batch", shd_api_batch_list, ROUTE_DB, NULL, NULL, "batch_list"},
	{"POST", SHP_ROUTE_VMS "/batch", shd_api_batch_create, ROUTE_DB | ROUTE_BODY,
	 "REQUEST_SUBMITTED", "batch", "batch_create"},
	{"POST", SHP_ROUTE_VMS "/batch/power", shd_api_batch_power, ROUTE_DB | ROUTE_BODY,
	 "REQUEST_SUBMITTED", "batch", "batch_power"},
	{"GET", SHP_ROUTE_VMS "/batch/{id}", shd_api_batch_get, ROUTE_DB, NULL, NULL, "batch_get"},
	{"POST", SHP_ROUTE_VMS "/batch/{id}/retry", shd_api_batch_retry, ROUTE_DB,
	 "REQUEST_SUBMITTED", "batch", "batch_retry"},
	{"POST", SHP_ROUTE_VMS "/batch/{id}/cancel", shd_api_batch_cancel, ROUTE_DB,
	 "REQUEST_CANCELLED", "batch", "batch_cancel"},
	{"POST", SHP_ROUTE_VMS "/batch/{id}/approve", shd_api_batch_approve, ROUTE_DB,
	 "APPROVAL_APPROVED", "batch", "batch_approve"},
	{"POST", SHP_ROUTE_APPROVALS "/batch", shd_api_batch_create_compat, ROUTE_DB | ROUTE_BODY,
	 "REQUEST_SUBMITTED", "batch", "approvals_batch"},
	{"GET", SHP_API_PREFIX "/admin/rate-limits", shd_api_rate_limits_list,
	 ROUTE_DB | ROUTE_ADMIN, NULL, NULL, "rate_limits_list"},
	{"GET", SHP_API_PREFIX "/admin/rate-limits/{user}", shd_api_rate_limits_get,
	 ROUTE_DB | ROUTE_ADMIN, NULL, NULL, "rate_limits_get"},
	{"PUT", SHP_API_PREFIX "/admin/rate-limits/{user}", shd_api_rate_limits_put,
	 ROUTE_DB | ROUTE_ADMIN | ROUTE_BODY, "RATE_LIMIT_SET", "user", "rate_limits_put"},
	{"DELETE", SHP_API_PREFIX "/admin/rate-limits/{user}", shd_api_rate_limits_delete,
	 ROUTE_DB | ROUTE_ADMIN, "RATE_LIMIT_RESET", "user", "rate_limits_delete"},
	{"GET", SHP_ROUTE_VMS, shd_api_vms_list, ROUTE_DB, NULL, NULL, "vms_list"},
	{"GET", SHP_ROUTE_VMS "/{name}", shd_api_vms_get, ROUTE_DB, NULL, NULL, "vms_get"},
	{"GET", SHP_ROUTE_VMS "/{name}/revisions", shd_api_vms_revisions, ROUTE_DB, NULL, NULL,
	 "vms_revisions"},
	{"GET", SHP_ROUTE_VMS "/{name}/diff", shd_api_vms_diff, ROUTE_DB, NULL, NULL, "vms_diff"},
	{"GET", SHP_ROUTE_VMS "/{name}/history", shd_api_vms_history, ROUTE_DB, NULL, NULL,
	 "vms_history"},
	{"POST", SHP_ROUTE_VMS "/{name}/console/token", shd_api_console_token, ROUTE_DB,
	 "VNC_TOKEN_ISSUED", "vm", "console_token"},
	{"POST", SHP_ROUTE_VMS "/{name}/console/requests", shd_api_console_request,
	 ROUTE_DB | ROUTE_BODY, "REQUEST_SUBMITTED", "request", "console_request"},
	{"GET", SHP_ROUTE_VMS "/{name}/vnc", shd_api_console_vnc, ROUTE_DB, NULL, NULL,
	 "console_vnc"},
	{"GET", SHP_ROUTE_ROLEBINDINGS, shd_api_rolebindings_list, ROUTE_DB | ROUTE_ADMIN, NULL,
	 NULL, "rolebindings_list"},
	{"PUT", SHP_ROUTE_ROLEBINDINGS "/{user}/{role}", shd_api_rolebindings_put,
	 ROUTE_DB | ROUTE_ADMIN | ROUTE_BODY, "ROLE_BINDING_SET", "role_binding",
	 "rolebindings_put"},
	{"DELETE", SHP_ROUTE_ROLEBINDINGS "/{user}/{role}", shd_api_rolebindings_delete,
	 ROUTE_DB | ROUTE_ADMIN, "ROLE_BINDING_DELETE", "role_binding", "rolebindings_delete"},
	{"GET", SHP_ROUTE_RBAC_MAPPINGS, shd_api_rbac_mappings_list, ROUTE_DB | ROUTE_ADMIN, NULL,
	 NULL, "rbac_mappings_list"},
	{"POST", SHP_ROUTE_RBAC_MAPPINGS, shd_api_rbac_mappings_create,
	 ROUTE_DB | ROUTE_ADMIN | ROUTE_BODY, "RBAC_MAPPING_CREATE", "rbac_mapping",
	 "rbac_mappings_create"},
	{"GET", SHP_ROUTE_RBAC_MAPPINGS "/{id}", shd_api_rbac_mappings_get, ROUTE_DB | ROUTE_ADMIN,
	 NULL, NULL, "rbac_mappings_get"},
	{"PUT", SHP_ROUTE_RBAC_MAPPINGS "/{id}", shd_api_rbac_mappings_put,
	 ROUTE_DB | ROUTE_ADMIN | ROUTE_BODY, "RBAC_MAPPING_UPDATE", "rbac_mapping",
	 "rbac_mappings_put"},
	{"DELETE", SHP_ROUTE_RBAC_MAPPINGS "/{id}", shd_api_rbac_mappings_delete,
	 ROUTE_DB | ROUTE_ADMIN, "RBAC_MAPPING_DELETE", "rbac_mapping", "rbac_mappings_delete"},
	{"GET", SHP_ROUTE_POLICIES, shd_api_policies_list, ROUTE_DB, NULL, NULL, "policies_list"},
	{"GET", SHP_ROUTE_POLICIES "/{type}", shd_api_policies_get, ROUTE_DB, NULL, NULL,
	 "policies_get"},
	{"PUT", SHP_ROUTE_POLICIES "/{type}/{environment}", shd_api_policies_put,
	 ROUTE_DB | ROUTE_ADMIN | ROUTE_BODY, "POLICY_SET", "policy", "policies_put"},
	{"POST", SHP_ROUTE_SYSTEMS, shd_api_systems_create, ROUTE_DB | ROUTE_BODY,
	 "REQUEST_SUBMITTED", "request", "systems_create"},
	{"GET", SHP_ROUTE_SYSTEMS, shd_api_systems_list, ROUTE_DB, NULL, NULL, "systems_list"},
	{"GET", SHP_ROUTE_SYSTEMS "/{name}", shd_api_systems_get, ROUTE_DB, NULL, NULL,
	 "systems_get"},
	{"DELETE", SHP_ROUTE_SYSTEMS "/{name}", shd_api_systems_delete, ROUTE_DB,
	 "REQUEST_SUBMITTED", "request", "systems_delete"},
	{"POST", SHP_ROUTE_SERVICES, shd_api_services_create, ROUTE_DB | ROUTE_BODY,
	 "REQUEST_SUBMITTED", "request", "services_create"},
	{"GET", SHP_ROUTE_SERVICES, shd_api_services_list, ROUTE_DB, NULL, NULL, "services_list"},
	{"GET", SHP_ROUTE_SERVICES "/{name}", shd_api_services_get, ROUTE_DB, NULL, NULL,
	 "services_get"},
	{"DELETE", SHP_ROUTE_SERVICES "/{name}", shd_api_services_delete, ROUTE_DB,
	 "REQUEST_SUBMITTED", "request", "services_delete"},
	{"GET", SHP_ROUTE_REQUESTS, shd_api_requests_list, ROUTE_DB, NULL, NULL, "requests_list"},
	{"GET", SHP_ROUTE_REQUESTS "/{id}", shd_api_requests_get, ROUTE_DB, NULL, NULL,
	 "requests_get"},
	{"POST", SHP_ROUTE_APPROVALS_BASE "/{id}/cancel", shd_api_requests_cancel, ROUTE_DB,
	 "REQUEST_CANCELLED", "request", "requests_cancel"},
	{"POST", SHP_ROUTE_VMS, shd_api_vms_create, ROUTE_DB | ROUTE_BODY, "REQUEST_SUBMITTED",
	 "request", "vms_create"},
	{"PATCH", SHP_ROUTE_VMS "/{name}", shd_api_vms_modify, ROUTE_DB | ROUTE_BODY,
	 "REQUEST_SUBMITTED", "request", "vms_modify"},
	{"DELETE", SHP_ROUTE_VMS "/{name}", shd_api_vms_delete, ROUTE_DB, "REQUEST_SUBMITTED",
	 "request", "vms_delete"},
	{"POST", SHP_ROUTE_VMS "/{name}/start", shd_api_vms_start, ROUTE_DB, "REQUEST_SUBMITTED",
	 "request", "vms_start"},
	{"POST", SHP_ROUTE_VMS "/{name}/stop", shd_api_vms_stop, ROUTE_DB, "REQUEST_SUBMITTED",
	 "request", "vms_stop"},
	{"POST", SHP_ROUTE_VMS "/{name}/restart", shd_api_vms_restart, ROUTE_DB,
	 "REQUEST_SUBMITTED", "request", "vms_restart"},
	{"GET", SHP_ROUTE_APPROVALS, shd_api_approvals_list, ROUTE_DB, NULL, NULL,
	 "approvals_list"},
	{"GET", SHP_ROUTE_APPROVALS "/{id}", shd_api_approvals_get, ROUTE_DB, NULL, NULL,
	 "approvals_get"},
	{"POST", SHP_ROUTE_APPROVALS "/{id}/approve", shd_api_approvals_approve, ROUTE_DB,
	 "APPROVAL_APPROVED", "approval", "approvals_approve"},
	{"POST", SHP_ROUTE_APPROVALS "/{id}/reject", shd_api_approvals_reject,
	 ROUTE_DB | ROUTE_BODY, "APPROVAL_REJECTED", "approval", "approvals_reject"},
	{"POST", SHP_ROUTE_ADMIN_APPROVALS "/{id}/preview", shd_api_approvals_preview,
	 ROUTE_DB | ROUTE_BODY, NULL, NULL, "approvals_preview"},
	{"PUT", SHP_ROUTE_ADMIN_APPROVALS "/{id}/spec", shd_api_approvals_modify,
	 ROUTE_DB | ROUTE_BODY, "APPROVAL_MODIFIED", "approval", "approvals_modify"},
	{"GET", SHP_ROUTE_NOTIFICATIONS, shd_api_inbox_list, ROUTE_DB, NULL, NULL,
	 "notifications_list"},
	{"GET", SHP_ROUTE_NOTIFICATIONS "/unread-count", shd_api_inbox_unread_count, ROUTE_DB, NULL,
	 NULL, "notifications_unread_count"},
	{"PATCH", SHP_ROUTE_NOTIFICATIONS "/{id}/read", shd_api_inbox_read, ROUTE_DB, NULL, NULL,
	 "notifications_read"},
	{"POST", SHP_ROUTE_NOTIFICATIONS "/mark-all-read", shd_api_inbox_read_all, ROUTE_DB, NULL,
	 NULL, "notifications_read_all"},
};

const size_t shd_routes_count = SHP_ARRAY_SIZE(shd_routes);

#define PARAM_MAX 256

/* Percent-decode one path segment; NULL if malformed, too long, or not valid UTF-8. */
static char *decode_segment(const char *s, size_t n)
{
	char *out;
	size_t o = 0;

	if (n > PARAM_MAX * 3)
		return NULL;
	out = malloc(n + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi, lo;
			if (i + 2 >= n)
				goto bad;
			hi = shp_hex_digit(s[i + 1]);
			lo = shp_hex_digit(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	if (o > PARAM_MAX || !shp_utf8_is_valid(out, o))
		goto bad;
	return out;
bad:
	free(out);
	return NULL;
}

/* Match url against pattern; on success fill req's params. 1 match, 0 no match, -1 bad param. */
static int match(const char *pattern, const char *url, struct shd_req *req)
{
	const char *p = pattern, *u = url;
	char *params[SHD_MAX_PATH_PARAMS];
	int np = 0;

	while (*p && *u) {
		if (*p == '{') {
			const char *pend = strchr(p, '}');
			const char *uend = strchr(u, '/');
			size_t ulen = uend ? (size_t)(uend - u) : strlen(u);
			char *v;

			if (ulen == 0 || np == SHD_MAX_PATH_PARAMS)
				goto nomatch;
			v = decode_segment(u, ulen);
			if (!v) {
				for (int i = 0; i < np; i++)
					free(params[i]);
				return -1;
			}
			params[np++] = v;
			p = pend + 1;
			u += ulen;
			continue;
		}
		if (*p != *u)
			goto nomatch;
		p++;
		u++;
	}
	if (*p || *u)
		goto nomatch;
	for (int i = 0; i < np; i++)
		req->params[i] = params[i];
	req->nparams = np;
	return 1;
nomatch:
	for (int i = 0; i < np; i++)
		free(params[i]);
	return 0;
}

int shd_resp_json_take(struct shd_resp *resp, int status, json_t *j)
{
	json_decref(resp->json);
	resp->json = j;
	resp->status = status;
	return 0;
}

int shd_resp_raw(struct shd_resp *resp, int status, const char *text, size_t len,
		 const char *content_type)
{
	char *copy = malloc(len + 1);

	if (!copy)
		return -SHP_E_NOMEM;
	memcpy(copy, text, len);
	copy[len] = '\0';
	free(resp->raw);
	resp->raw = copy;
	resp->raw_len = len;
	resp->status = status;
	resp->content_type = content_type;
	return 0;
}

void shd_resp_release(struct shd_resp *resp)
{
	if (resp->stream)
		MHD_destroy_response(resp->stream);
	resp->stream = NULL;
	shd_ws_conn_abandon(resp->upgrade);
	resp->upgrade = NULL;
	json_decref(resp->json);
	resp->json = NULL;
	free(resp->raw);
	resp->raw = NULL;
	resp->raw_len = 0;
}

void shd_resp_error(struct shd_req *req, struct shd_resp *resp, const struct shp_error *err)
{
	int status = err->http_status ? (int)err->http_status : shp_errc_http_status(err->code);
	bool internal = status >= 500;
	json_t *details = json_object();
	const char *message = err->msg;

	if (internal) {
		/* the detail stays in the log; the caller gets the request id to quote */
		log_error("request failed: %s (%s)", err->msg, shp_errc_to_string(err->code));
		switch (err->code) {
		case SHP_E_UNAVAIL:
			message = "the service is temporarily unavailable, retry later";
			break;
		case SHP_E_TIMEOUT: message = "the operation timed out"; break;
		default: message = "internal error"; break;
		}
	} else {
		for (int i = 0; i < err->n_details; i++)
			(void)json_object_set_new(details, err->details[i].key,
						  json_string(err->details[i].value));
	}
	(void)shd_resp_json_take(resp, status,
				 json_pack("{s:{s:s,s:s,s:o,s:s}}", SHP_API_FIELD_ERROR,
					   SHP_API_FIELD_CODE, shp_error_api_code_of(err),
					   SHP_API_FIELD_MESSAGE, message, SHP_API_FIELD_DETAILS,
					   details, SHP_API_FIELD_REQUEST_ID, req->request_id));
	resp->content_type = NULL;
	if ((err->code == SHP_E_UNAVAIL || err->code == SHP_E_RATE) && resp->retry_after < 0)
		resp->retry_after = 1;
}

json_t *shd_req_json_object(struct shd_req *req, const char *const *allowed, struct shp_error *err)
{
	json_auto_t *j = NULL;

	if (req->body.len == 0) {
		shp_error_set(err, SHP_E_MALFORMED,
			      "request body is empty (a JSON object is needed)");
		return NULL;
	}
	j = shp_json_parse_object(req->body.buf, req->body.len, SHP_API_JSON_DEPTH_MAX, err);
	if (!j)
		return NULL;
	if (allowed && shp_json_check_fields(j, allowed, err) < 0)
		return NULL;
	return TAKE_PTR(j);
}

const char *shd_req_header(struct shd_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->mhd, MHD_HEADER_KIND, name);
}

const char *shd_req_query(struct shd_req *req, const char *key)
{
	return MHD_lookup_connection_value(req->mhd, MHD_GET_ARGUMENT_KIND, key);
}

int shd_req_limit(struct shd_req *req, int *ret, struct shp_error *err)
{
	const char *s = shd_req_query(req, "limit");
	long long v;

	if (!s) {
		*ret = SHP_API_PAGE_DEFAULT;
		return 0;
	}
	if (shp_parse_int(s, 1, SHP_API_PAGE_MAX, &v, err) < 0) {
		shp_error_prefix(err, "query parameter 'limit'");
		shp_error_detail(err, "field", "limit");
		return -SHP_E_INVAL;
	}
	*ret = (int)v;
	return 0;
}

int shd_req_require_admin(struct shd_req *req, struct shp_error *err)
{
	if (req->authenticated && req->ident.is_admin)
		return 0;
	shp_error_set(err, SHP_E_PERM, "this needs the platform-admin role");
	shp_error_detail(err, "required_role", "platform-admin");
	return -SHP_E_PERM;
}

int shd_cursor_encode(const char *key, struct shp_buf *out)
{
	size_t n = strlen(key);
	size_t cap = 4 * ((n + 2) / 3) + 1;
	_cleanup_free_ unsigned char *b64 = malloc(cap);
	int len;

	if (!b64)
		return -SHP_E_NOMEM;
	len = EVP_EncodeBlock(b64, (const unsigned char *)key, (int)n);
	while (len > 0 && b64[len - 1] == '=')
		len--;
	for (int i = 0; i < len; i++) {
		if (b64[i] == '+')
			b64[i] = '-';
		else if (b64[i] == '/')
			b64[i] = '_';
	}
	return shp_buf_addn(out, b64, (size_t)len);
}

int shd_cursor_decode(const char *cursor, struct shp_buf *out, struct shp_error *err)
{
	size_t n = strlen(cursor);
	char tmp[PARAM_MAX * 2 + 8];
	unsigned char dec[sizeof(tmp)];
	size_t pad;
	int len;

	if (n == 0 || n > PARAM_MAX * 2)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		char c = cursor[i];
		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9')))
			goto bad;
		tmp[i] = c;
	}
	pad = (4 - n % 4) % 4;
	if (pad == 3)
		goto bad;
	memset(tmp + n, '=', pad);
	tmp[n + pad] = '\0';
	len = EVP_DecodeBlock(dec, (const unsigned char *)tmp, (int)(n + pad));
	if (len < 0)
		goto bad;
	len -= (int)pad;
	if (len <= 0 || memchr(dec, '\0', (size_t)len) ||
	    !shp_utf8_is_valid((char *)dec, (size_t)len))
		goto bad;
	if (shp_buf_addn(out, dec, (size_t)len) < 0)
		goto bad;
	return 0;
bad:
	shp_error_set(err, SHP_E_INVAL, "invalid cursor");
	shp_error_detail(err, "field", "cursor");
	return -SHP_E_INVAL;
}

static bool media_type_is_json(const char *ct)
{
	size_t n = strlen("application/json");

	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	if (strncasecmp(ct, "application/json", n) != 0)
		return false;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

static bool is_mutation(const char *method)
{
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

/* Find the route; sets req->route and params, or the error (404/405/400). */
static int route_request(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	bool path_matched = false;

	for (size_t i = 0; i < shd_routes_count; i++) {
		struct shd_req probe = {0};
		int m = match(shd_routes[i].pattern, req->url, &probe);

		if (m < 0)
			return shp_error_set(err, SHP_E_INVAL,
					     "invalid path parameter (bad escape, too long or "
					     "not UTF-8)");
		if (m == 0)
			continue;
		if (strcmp(shd_routes[i].method, req->method) == 0 ||
		    (strcmp(req->method, "HEAD") == 0 &&
		     strcmp(shd_routes[i].method, "GET") == 0)) {
			for (int k = 0; k < req->nparams; k++)
				free(req->params[k]);
			memcpy(req->params, probe.params, sizeof(probe.params));
			req->nparams = probe.nparams;
			req->route = (int)i;
			return 0;
		}
		for (int k = 0; k < probe.nparams; k++)
			free(probe.params[k]);
		path_matched = true;
	}
	if (path_matched)
		return shp_error_set(err, SHP_E_METHOD, "method %s is not allowed on '%s'",
				     req->method, req->url);
	return shp_error_set(err, SHP_E_NOTFOUND, "no such endpoint '%s'", req->url);
}

/* The Allow header of every set of methods, built once: bit i stands for allow_methods[i]. */
static const char *const allow_methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
#define ALLOW_SETS (1u << SHP_ARRAY_SIZE(allow_methods))
static char allow_text[ALLOW_SETS][40];
static pthread_once_t allow_once = PTHREAD_ONCE_INIT;

static void allow_init(void)
{
	for (unsigned set = 1; set < ALLOW_SETS; set++) {
		size_t n = 0;

		for (size_t i = 0; i < SHP_ARRAY_SIZE(allow_methods); i++)
			if (set & (1u << i))
				n += (size_t)snprintf(allow_text[set] + n,
						      sizeof(allow_text[set]) - n, "%s%s",
						      n ? ", " : "", allow_methods[i]);
	}
}

static const char *allow_header(const char *url)
{
	struct shd_req probe;
	unsigned set = 0;

	for (size_t i = 0; i < shd_routes_count; i++) {
		memset(&probe, 0, sizeof(probe));
		if (match(shd_routes[i].pattern, url, &probe) != 1)
			continue;
		for (int k = 0; k < probe.nparams; k++)
			free(probe.params[k]);
		for (size_t m = 0; m < SHP_ARRAY_SIZE(allow_methods); m++)
			if (strcmp(shd_routes[i].method, allow_methods[m]) == 0)
				set |= 1u << m;
	}
	if (!set)
		return NULL;
	(void)pthread_once(&allow_once, allow_init);
	return allow_text[set];
}

/* Audit a refused mutation (permission) on a connection of its own. */
static void audit_refusal(struct shd_req *req, const struct shd_route *route,
			  const struct shp_error *err)
{
	struct shp_error e2 = SHP_ERROR_INIT;
	PGconn *conn = req->db;
	bool borrowed = false;
	json_auto_t *details = NULL;
	const char *name;

	if (!req->audit_name[0] && req->body.len > 0) {
		/* the refused body's "name", if it has a sane one, says what was attempted */
		json_auto_t *body = shp_json_parse_object(req->body.buf, req->body.len,
							  SHP_API_JSON_DEPTH_MAX, NULL);
		const char *n = shp_json_str(body, "name");
		if (n && strlen(n) < sizeof(req->audit_name) && shp_utf8_is_valid(n, strlen(n)))
			(void)snprintf(req->audit_name, sizeof(req->audit_name), "%s", n);
	}
	name = req->audit_name[0] ? req->audit_name : req->nparams > 0 ? req->params[0] : "";

	if (!conn) {
		conn = shd_dbpool_get(req->d->pool, &e2);
		if (!conn) {
			log_warn("refused %s by '%s' not audited: %s", route->audit_action,
				 req->ident.name, e2.msg);
			return;
		}
		borrowed = true;
	}
	shd_db_rollback(conn);
	details = json_pack("{s:s,s:s}", "code", shp_error_api_code_of(err), "message", err->msg);
	if (shd_audit_write(conn, req, route->audit_action, route->resource_type, name, "denied",
			    details, &e2) < 0)
		log_warn("refused %s by '%s' not audited: %s", route->audit_action, req->ident.name,
			 e2.msg);
	if (borrowed)
		shd_dbpool_put(req->d->pool, conn);
}

void shd_router_dispatch(struct shd_req *req, struct shd_resp *resp)
{
	struct shp_error err = SHP_ERROR_INIT;
	const struct shd_route *route;
	int r;

	resp->retry_after = -1;
	r = route_request(req, resp, &err);
	if (r < 0) {
		shd_resp_error(req, resp, &err);
		if (err.code == SHP_E_METHOD)
			resp->allow = allow_header(req->url);
		return;
	}
	route = &shd_routes[req->route];

	if ((route->flags & ROUTE_BODY) &&
	    !media_type_is_json(MHD_lookup_connection_value(req->mhd, MHD_HEADER_KIND,
							    MHD_HTTP_HEADER_CONTENT_TYPE))) {
		shp_error_set(&err, SHP_E_MEDIA, "request body must be application/json");
		shd_resp_error(req, resp, &err);
		return;
	}

	if (route->flags & ROUTE_DB) {
		req->db = shd_dbpool_get(req->d->pool, &err);
		if (!req->db) {
			shd_resp_error(req, resp, &err);
			return;
		}
	}
	if (!(route->flags & ROUTE_PUBLIC)) {
		r = shd_auth_identify(req, &err);
		if (r == 0 && (route->flags & ROUTE_ADMIN))
			r = shd_req_require_admin(req, &err);
		if (r < 0) {
			if (err.code == SHP_E_PERM && route->audit_action)
				audit_refusal(req, route, &err);
			goto out;
		}
		shp_log_ctx_set("user", req->ident.name);
	}

	if (is_mutation(req->method) && !(route->flags & ROUTE_PUBLIC) &&
	    shd_ratelimit_request(req, resp, &err) < 0) {
		r = -err.code;
		goto out;
	}
	if (is_mutation(req->method) && (route->flags & ROUTE_DB)) {
		r = shd_idempotency_begin(req, resp, &err);
		if (r != 0) {
			r = r > 0 ? 0 : r;
			goto out;
		}
	}
	r = route->handler(req, resp, &err);
	if (r < 0 && err.code == SHP_E_PERM && route->audit_action)
		audit_refusal(req, route, &err);
	if (req->idem_id > 0) {
		if (r < 0)
			shd_resp_error(req, resp, &err);
		shd_idempotency_finish(req, resp);
		r = 0;
	}
out:
	if (req->db) {
		shd_dbpool_put(req->d->pool, req->db);
		req->db = NULL;
	}
	if (r < 0)
		shd_resp_error(req, resp, &err);
}
