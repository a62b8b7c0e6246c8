/*
 * shepherd vnc: a VM's VNC console. `open` listens on 127.0.0.1 and carries each VNC viewer's
 * connection through the daemon (a WebSocket on the same socket or TLS connection settings,
 * with a fresh single-use token for each); `request` asks for console access to a prod VM
 * (a VNC_ACCESS request an approver decides); `token` prints one token, for scripts.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "api.h"
#include "buf.h"
#include "cli.h"
#include "httpc.h"
#include "i18n.h"
#include "json.h"
#include "output.h"
#include "util.h"

#define VNC_PROTOCOL "vnc.shepherd.io"
#define VNC_TOKEN_HEADER "X-Shepherd-Console-Token"
#define CHUNK (64 * 1024)
#define TOKEN_MARGIN_S 10 /* a held token this close to its expiry is not used */
#define WAIT_POLL_MS 1000

enum {
	OPT_NAMESPACE = CLI_OPT_LOCAL,
	OPT_PORT,
	OPT_PRINT_URL,
	OPT_DURATION,
	OPT_REASON,
	OPT_WAIT,
	OPT_JSON,
};

/* "/api/v1/vms/NAME/SUFFIX" with ?namespace=NS when given (allocated). */
static char *vm_path(const char *name, const char *ns, const char *suffix)
{
	_cleanup_free_ char *base = cli_path(SHP_ROUTE_VMS, name);
	struct shp_buf q = SHP_BUF_INIT(1024);
	char *p;

	cli_query_add(&q, "namespace", ns);
	p = xasprintf("%s/%s%s%s", base, suffix, q.len ? "?" : "", q.buf);
	shp_buf_release(&q);
	return p;
}

/* A new console token for the VM (the daemon's answer, owned). */
static int get_token(struct cli_ctx *ctx, const char *name, const char *ns, json_t **ret)
{
	_cleanup_free_ char *path = vm_path(name, ns, "console/token");

	return cli_call(ctx, "POST", path, NULL, ret);
}

/* ---- vnc token ------------------------------------------------------------------------- */

static int cmd_vnc_token(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *t = NULL;
	const char *ns = NULL;
	bool json = false;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_NAMESPACE)
			ns = optarg;
		else if (c == OPT_JSON)
			json = true;
	}
	r = get_token(ctx, argv[optind], ns, &t);
	if (r < 0)
		return r;
	if (json || ctx->format == CLI_FORMAT_JSON)
		return cli_show_raw(ctx, t);
	printf("%s\n", shp_json_str(t, "token") ? shp_json_str(t, "token") : "");
	return 0;
}

/* ---- vnc request ------------------------------------------------------------------------ */

static bool request_final(const char *status)
{
	static const char *const done[] = {"COMPLETED", "REJECTED", "CANCELLED",
					   "EXPIRED",   "FAILED",   NULL};

	for (size_t i = 0; status && done[i]; i++)
		if (strcmp(status, done[i]) == 0)
			return true;
	return false;
}

/* Poll the request until it is decided; its last state into *ret. */
static int request_wait(struct cli_ctx *ctx, const json_t *sub, json_t **ret)
{
	const char *url = shp_json_str(sub, "status_url");

	if (!url)
		return shp_error_set(&ctx->err, SHP_E_PROTO, _("the daemon named no status URL"));
	for (;;) {
		json_t *now = NULL;
		const char *st;
		int r = cli_call(ctx, "GET", url, NULL, &now);

		if (r < 0)
			return r;
		st = shp_json_str(now, "ticket_status") ? shp_json_str(now, "ticket_status")
							: shp_json_str(now, "status");
		if (request_final(st)) {
			*ret = now;
			return 0;
		}
		json_decref(now);
		if (!ctx->quiet)
			fprintf(stderr, _("waiting for an approver (%s)...\n"), st ? st : "?");
		(void)nanosleep(&(struct timespec){WAIT_POLL_MS / 1000, 0}, NULL);
	}
}

static int request_report(struct cli_ctx *ctx, const char *name, const json_t *a, bool waited)
{
	const char *st = shp_json_str(a, "ticket_status") ? shp_json_str(a, "ticket_status")
							  : shp_json_str(a, "status");

	if (ctx->format != CLI_FORMAT_TABLE && ctx->format != CLI_FORMAT_WIDE)
		return cli_show_raw(ctx, a);
	if (ctx->quiet)
		return 0;
	if (st && strcmp(st, "COMPLETED") == 0)
		printf(_("console access to VM %s granted: run 'shepherd vnc open %s'\n"), name,
		       name);
	else if (!waited && json_is_integer(json_object_get(a, "ticket_id")))
		printf(_("request %" JSON_INTEGER_FORMAT
			 " waits for an approver (ticket %" JSON_INTEGER_FORMAT ")\n"),
		       json_integer_value(json_object_get(a, "request_id")),
		       json_integer_value(json_object_get(a, "ticket_id")));
	else
		printf(_("request for console access to VM %s: %s\n"), name, st ? st : "?");
	return 0;
}

static int cmd_vnc_request(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *sub = NULL;
	_cleanup_(json_decrefp) json_t *done = NULL;
	_cleanup_free_ char *path = NULL;
	const char *ns = NULL, *duration = NULL, *reason = NULL;
	bool wait = false;
	int64_t seconds = 0;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_NAMESPACE)
			ns = optarg;
		else if (c == OPT_DURATION)
			duration = optarg;
		else if (c == OPT_REASON)
			reason = optarg;
		else if (c == OPT_WAIT)
			wait = true;
	}
	if (shp_parse_duration(duration, &seconds, &ctx->err) < 0 || seconds < 60 || seconds > 7200)
		return cli_usage_error(ctx, _("--duration must be between 1m and 2h"));
	(void)json_object_set_new(body, "duration_s", json_integer(seconds));
	if (cli_body_set(ctx, body, "reason", reason) < 0)
		return -ctx->err.code;
	path = vm_path(argv[optind], ns, "console/requests");
	r = cli_call(ctx, "POST", path, body, &sub);
	if (r < 0)
		return r;
	if (!wait || request_final(shp_json_str(sub, "status")))
		return request_report(ctx, argv[optind], sub, false);
	r = request_wait(ctx, sub, &done);
	return r < 0 ? r : request_report(ctx, argv[optind], done, true);
}

/* ---- the command ---------------------------------------------------------------------------- */

static const struct shp_flag token_flags[] = {
	{"namespace", OPT_NAMESPACE, 'n', NULL, "NS",
	 N_("the VM's namespace (when its name is in several)")},
	{"json", OPT_JSON, 0, NULL, NULL, N_("print the daemon's whole answer as JSON")},
	{NULL},
};

static const struct shp_flag request_flags[] = {
	{"namespace", OPT_NAMESPACE, 'n', NULL, "NS",
	 N_("the VM's namespace (when its name is in several)")},
	{"duration", OPT_DURATION, 0, NULL, "DURATION", N_("how long the access lasts (1m to 2h)"),
	 .required = true},
	{"reason", OPT_REASON, 0, NULL, "TEXT", N_("why (the approver reads it)"),
	 .required = true},
	{"wait", OPT_WAIT, 0, NULL, NULL, N_("wait until the request is decided")},
	{NULL},
};

static const struct shp_subcmd vnc_verbs[] = {
	{
		.name = "request",
		.fn = cmd_vnc_request,
		.min_args = 1,
		.max_args = 1,
		.usage = "VM --duration DURATION --reason TEXT [--namespace NS] [--wait]",
		.flags = CMD_NEEDS_DAEMON,
		.summary = N_("ask for console access to a prod VM"),
		.description =
			N_("Ask for access to VM's console for DURATION (at most 2h) with a "
			   "reason: a VNC_ACCESS request. In prod an approver of the "
			   "environment decides it (and may shorten the duration); once "
			   "approved you hold a grant and 'vnc open' works until it expires. "
			   "In test no approval is needed and no request either. With --wait "
			   "the command returns once the request is decided."),
		.opts = request_flags,
	},
	{
		.name = "token",
		.fn = cmd_vnc_token,
		.min_args = 1,
		.max_args = 1,
		.usage = "VM [--namespace NS] [--json]",
		.flags = CMD_NEEDS_DAEMON,
		.summary = N_("print a single-use console token"),
		.description =
			N_("Print a console token for VM: single use, bound to you, valid "
			   "for console.token_ttl (in prod never past your grant). Send it "
			   "in the X-Shepherd-Console-Token header of a WebSocket upgrade of "
			   "GET /api/v1/vms/VM/vnc with subprotocol vnc.shepherd.io. 'vnc "
			   "open' does all of this for a VNC viewer."),
		.opts = token_flags,
	},
	{NULL},
};

const struct shp_cmd cmd_vnc = {
	.name = "vnc",
	.summary = N_("open a VM's VNC console"),
	.description = N_("A VM's VNC console through shepherdd: in test to anyone who may act on "
			  "the VM, in prod to those holding a grant from an approved console "
			  "access request. Tokens are single use and expire; there is no way to "
			  "revoke one before it expires."),
	.subcmds = vnc_verbs,
};
