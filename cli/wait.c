/*
 * --wait for the commands whose answer is an accepted request (a governed system, service or VM
 * operation, an approval): the request's status is asked for until it is final, and its task,
 * once it has one, is followed live (cli_follow_task: WebSocket, Server-Sent Events, polling).
 * The exit status is the request's outcome, as for a task (shepherd(1), EXIT STATUS).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "api.h"
#include "cli.h"
#include "error.h"
#include "i18n.h"
#include "json.h"
#include "output.h"
#include "util.h"

#define REQUEST_POLL_MS 1000

static bool is_final(const char *status)
{
	static const char *const finals[] = {"COMPLETED", "FAILED", "REJECTED", "CANCELLED",
					     "EXPIRED"};

	for (size_t i = 0; status && i < SHP_ARRAY_SIZE(finals); i++)
		if (strcmp(status, finals[i]) == 0)
			return true;
	return false;
}

int cli_wait_outcome(struct cli_ctx *ctx, const char *noun, const json_t *r)
{
	const char *status = shp_json_str(r, "status"), *error = shp_json_str(r, "error");
	_cleanup_free_ char *why = cli_text_sanitize(error ? error : "");
	enum shp_errc code = SHP_E_INTERNAL;

	if (strcmp(status, "COMPLETED") == 0)
		return 0;
	if (strcmp(status, "REJECTED") == 0)
		ctx->exit_status = SHP_EXIT_PERM, code = SHP_E_PERM;
	else if (strcmp(status, "CANCELLED") == 0)
		ctx->exit_status = SHP_EXIT_CONFLICT, code = SHP_E_CONFLICT;
	else if (strcmp(status, "EXPIRED") == 0)
		ctx->exit_status = SHP_EXIT_RETRY, code = SHP_E_TIMEOUT;
	else
		ctx->exit_status = SHP_EXIT_FAILURE;
	/* TRANSLATORS: "request 12 ended FAILED: ...", "ticket 7 ended REJECTED" */
	return shp_error_set(&ctx->err, code, _("%s %" PRId64 " ended %s%s%s"), noun,
			     shp_json_int(r, "id", 0), status, why[0] ? ": " : "", why);
}

/*
 * Its task, followed live once (the request goes on being asked for afterwards). A task the
 * caller may not see (an approver outside its tenant) is not followed: the status is enough.
 */
static int follow(struct cli_ctx *ctx, const json_t *task)
{
	_cleanup_(json_decrefp) json_t *done = NULL;
	char tid[24];
	int r;

	(void)snprintf(tid, sizeof(tid), "%" JSON_INTEGER_FORMAT, json_integer_value(task));
	r = cli_follow_task(ctx, tid, &done);
	if (r < 0 && (ctx->err.code == SHP_E_NOTFOUND || ctx->err.code == SHP_E_PERM)) {
		shp_error_clear(&ctx->err);
		json_decref(ctx->error_body);
		ctx->error_body = NULL;
		cli_note(ctx, _("task %s is not yours to follow: waiting for the outcome\n"), tid);
		return 0;
	}
	return r;
}

int cli_wait_final(struct cli_ctx *ctx, const char *noun, const char *route, const char *ids,
		   json_t **ret)
{
	_cleanup_free_ char *path = cli_path(route, ids);
	char last[32] = "";
	bool followed = false;

	for (;;) {
		_cleanup_(json_decrefp) json_t *r = NULL;
		const char *status;
		int rc = cli_call(ctx, "GET", path, NULL, &r);

		if (rc < 0)
			return rc;
		status = shp_json_str(r, "status");
		if (!status)
			return shp_error_set(&ctx->err, SHP_E_PROTO,
					     _("unexpected answer from shepherdd: no status"));
		if (is_final(status)) {
			*ret = TAKE_PTR(r);
			return 0;
		}
		if (strcmp(last, status) != 0)
			cli_note(ctx, _("%s %s is %s\n"), noun, ids, status);
		(void)snprintf(last, sizeof(last), "%s", status);
		if (json_is_integer(json_object_get(r, "task_id")) && !followed) {
			followed = true;
			rc = follow(ctx, json_object_get(r, "task_id"));
			if (rc < 0)
				return rc;
			continue;
		}
		if (!cli_nap_ms(REQUEST_POLL_MS))
			return cli_interrupt_error(ctx);
	}
}

/* Follow noun ids to its end, show it (a line, or the object), and return its outcome. */
static int wait_final(struct cli_ctx *ctx, const char *noun, const char *route, const char *ids)
{
	_cleanup_(json_decrefp) json_t *final = NULL;
	int r = cli_wait_final(ctx, noun, route, ids, &final);

	if (r < 0)
		return r;
	if (ctx->format == CLI_FORMAT_TABLE || ctx->format == CLI_FORMAT_WIDE)
		cli_note(ctx, _("%s %s is %s\n"), noun, ids, shp_json_str(final, "status"));
	else if ((r = cli_show_raw(ctx, final)) < 0)
		return r;
	return cli_wait_outcome(ctx, noun, final);
}

int cli_request_wait(struct cli_ctx *ctx, int64_t id)
{
	char ids[24];

	if (id <= 0)
		return shp_error_set(&ctx->err, SHP_E_PROTO,
				     _("unexpected answer from shepherdd: no request id"));
	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	return wait_final(ctx, _("request"), SHP_ROUTE_REQUESTS, ids);
}

int cli_ticket_wait(struct cli_ctx *ctx, const char *ticket)
{
	return wait_final(ctx, _("ticket"), SHP_ROUTE_APPROVALS, ticket);
}

int cli_request_done(struct cli_ctx *ctx, const struct cli_kind *kind, const json_t *answer,
		     bool wait)
{
	bool table = ctx->format == CLI_FORMAT_TABLE || ctx->format == CLI_FORMAT_WIDE;
	int r;

	if (!wait || table) {
		r = cli_show_object(ctx, kind, answer);
		if (r < 0 || !wait)
			return r;
	}
	return cli_request_wait(ctx, shp_json_int(answer, "request_id", 0));
}
