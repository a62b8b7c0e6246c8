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
#include "ws.h"
#include "wsc.h"

#define VNC_PROTOCOL "vnc.shepherd.io"
#define VNC_TOKEN_HEADER "X-Shepherd-Console-Token"
#define CHUNK (64 * 1024)
#define TOKEN_MARGIN_S 10 /* a held token this close to its expiry is not used */
#define VIEWERS_MAX 8     /* viewers served at once by one vnc open */
#define WAIT_POLL_MS 1000

enum {
	OPT_NAMESPACE = CLI_OPT_LOCAL,
	OPT_PORT,
	OPT_PRINT_URL,
	OPT_DURATION,
	OPT_REASON,
	OPT_WAIT,
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
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1)
		if (c == OPT_NAMESPACE)
			ns = optarg;
	r = get_token(ctx, argv[optind], ns, &t);
	if (r < 0)
		return r;
	if (ctx->format != CLI_FORMAT_TABLE && ctx->format != CLI_FORMAT_WIDE)
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
	for (char last[64] = "";;) {
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
		if (!ctx->quiet && strcmp(last, st ? st : "?") != 0) /* once per state */
			fprintf(stderr, _("waiting for an approver (%s)...\n"), st ? st : "?");
		(void)snprintf(last, sizeof(last), "%s", st ? st : "?");
		json_decref(now);
		if (!cli_nap_ms(WAIT_POLL_MS))
			return cli_interrupt_error(ctx);
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
		printf(_("request %lld waits for an approver (ticket %lld)\n"),
		       (long long)json_integer_value(json_object_get(a, "request_id")),
		       (long long)json_integer_value(json_object_get(a, "ticket_id")));
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

/* ---- the console WebSocket --------------------------------------------------------------------
 */

/*
 * The console's WebSocket to the daemon: the token goes in its own header of the upgrade (never
 * in the URL). One thread only (the switched TLS connection is one SSL object).
 */
static int vws_open(struct cli_ctx *ctx, const char *path, const char *token, struct shp_wsc **ret)
{
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	_cleanup_free_ char *th = NULL;
	const char *extra[2] = {NULL, NULL};
	int r;

	shp_httpc_response_init(&resp);
	if (!token || strpbrk(token, "\r\n"))
		return shp_error_set(&ctx->err, SHP_E_PROTO, _("the daemon's token is not usable"));
	th = xasprintf("%s: %s", VNC_TOKEN_HEADER, token);
	extra[0] = th;
	r = cli_connect(ctx);
	if (r == 0)
		r = shp_wsc_open_with(ctx->http, path, VNC_PROTOCOL, extra, &resp, ret, &ctx->err);
	explicit_bzero(th, strlen(th));
	return r;
}

/* ---- vnc open ------------------------------------------------------------------------------- */

/* SIGINT and SIGTERM end `vnc open` (poll returns EINTR: no SA_RESTART). */
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* 127.0.0.1:port (0: any free port) listening; the port into *ret_port. */
static int listen_local(struct cli_ctx *ctx, long long port, int *ret_fd, int *ret_port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return shp_error_errno(&ctx->err, errno, _("creating a socket"));
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		int e = errno;
		close(fd);
		return shp_error_errno(&ctx->err, e, _("listening on 127.0.0.1:%lld"), port);
	}
	*ret_fd = fd;
	*ret_port = ntohs(a.sin_port);
	return 0;
}

/* Write all of buf to the viewer; false when it is gone. */
static bool viewer_write(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		buf += w;
		n -= (size_t)w;
	}
	return true;
}

/* The daemon's bytes to the viewer: false when either side has ended. */
static bool pump_down(struct shp_wsc *w, int viewer, char *buf, struct shp_error *err)
{
	unsigned op = 0;
	long n = shp_wsc_read(w, buf, CHUNK, &op, 0, err);

	if (n == -SHP_E_TIMEOUT)
		return true;
	return n > 0 && viewer_write(viewer, buf, (size_t)n);
}

/* The viewer's bytes to the daemon: false when either side has ended. */
static bool pump_up(struct shp_wsc *w, int viewer, char *buf, struct shp_error *err)
{
	ssize_t n = recv(viewer, buf, CHUNK, 0);

	if (n < 0 && errno == EINTR)
		return true;
	return n > 0 && shp_wsc_write(w, SHP_WS_BINARY, buf, (size_t)n, err) == 0;
}

/* One viewer's connection and its WebSocket. */
struct viewer {
	int fd;
	struct shp_wsc *w;
};

/* A token held from the start, used by the first viewer if it has not expired by then. */
struct token_cache {
	json_t *t; /* the daemon's answer, or NULL */
	time_t got;
};

static int token_take(struct cli_ctx *ctx, const char *name, const char *ns, struct token_cache *tc,
		      json_t **ret)
{
	int64_t ttl = tc->t ? shp_json_int(tc->t, "expires_in_s", 0) : 0;

	if (tc->t && time(NULL) - tc->got + TOKEN_MARGIN_S < ttl) {
		*ret = tc->t;
		tc->t = NULL;
		return 0;
	}
	json_decref(tc->t);
	tc->t = NULL;
	return get_token(ctx, name, ns, ret);
}

/* A new viewer: a token used once and its WebSocket; a refusal is told on stderr. */
static bool viewer_start(struct cli_ctx *ctx, struct viewer *v, const char *name, const char *ns,
			 struct token_cache *tc)
{
	_cleanup_(json_decrefp) json_t *t = NULL;
	int r = token_take(ctx, name, ns, tc, &t);

	if (r == 0)
		r = vws_open(ctx, shp_json_str(t, "path"), shp_json_str(t, "token"), &v->w);
	if (r < 0) {
		fprintf(stderr, _("shepherd: error: %s\n"), ctx->err.msg);
		shp_error_clear(&ctx->err);
		json_decref(ctx->error_body);
		ctx->error_body = NULL;
		return false;
	}
	if (!ctx->quiet)
		fprintf(stderr, _("a viewer is connected to the console of %s/%s\n"),
			shp_json_str(t, "namespace"), shp_json_str(t, "vm"));
	return true;
}

static void viewer_end(struct cli_ctx *ctx, struct viewer *v)
{
	v->w = shp_wsc_close(v->w);
	close(v->fd);
	v->fd = -1;
	if (!ctx->quiet)
		fprintf(stderr, _("a viewer is disconnected\n"));
}

/* Accept a viewer into a free slot (the listening socket was readable). */
static void viewer_accept(struct cli_ctx *ctx, int lfd, struct viewer *vs, const char *name,
			  const char *ns, struct token_cache *tc)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	struct viewer *v = NULL;

	if (fd < 0)
		return; /* a viewer gone before accept */
	for (size_t i = 0; i < VIEWERS_MAX && !v; i++)
		if (vs[i].fd < 0)
			v = &vs[i];
	if (!v) { /* not listened for when every slot is taken */
		close(fd);
		return;
	}
	v->fd = fd;
	if (!viewer_start(ctx, v, name, ns, tc)) {
		close(fd);
		v->fd = -1;
	}
}

/*
 * Serve viewers until a signal, in one thread: poll over the listening socket and each
 * viewer's connection and WebSocket, what a WebSocket holds already (TLS may have decrypted it)
 * first. At most VIEWERS_MAX at once; more wait in the listening socket's backlog.
 */
static void serve(struct cli_ctx *ctx, int lfd, const char *name, const char *ns,
		  struct token_cache *tc)
{
	struct viewer vs[VIEWERS_MAX];
	_cleanup_free_ char *buf = xmalloc(CHUNK);
	struct shp_error err = SHP_ERROR_INIT;

	for (size_t i = 0; i < VIEWERS_MAX; i++)
		vs[i] = (struct viewer){.fd = -1};
	while (!stopping) {
		struct pollfd p[1 + 2 * VIEWERS_MAX];
		size_t n = 0;
		int timeout = 1000;

		for (size_t i = 0; i < VIEWERS_MAX; i++) {
			p[1 + 2 * i] = (struct pollfd){.fd = vs[i].fd, .events = POLLIN};
			p[2 + 2 * i] = (struct pollfd){
				.fd = vs[i].fd < 0 ? -1 : shp_wsc_fd(vs[i].w), .events = POLLIN};
			n += vs[i].fd >= 0;
			if (vs[i].fd >= 0 && shp_wsc_has_buffered(vs[i].w))
				timeout = 0;
		}
		p[0] = (struct pollfd){.fd = n < VIEWERS_MAX ? lfd : -1, .events = POLLIN};
		if (poll(p, 1 + 2 * VIEWERS_MAX, timeout) < 0)
			continue; /* EINTR: a signal */
		for (size_t i = 0; i < VIEWERS_MAX; i++) {
			bool on = true;

			if (vs[i].fd < 0)
				continue;
			if (p[2 + 2 * i].revents || shp_wsc_has_buffered(vs[i].w))
				on = pump_down(vs[i].w, vs[i].fd, buf, &err);
			if (on && p[1 + 2 * i].revents)
				on = pump_up(vs[i].w, vs[i].fd, buf, &err);
			if (!on)
				viewer_end(ctx, &vs[i]);
		}
		if (p[0].revents)
			viewer_accept(ctx, lfd, vs, name, ns, tc);
	}
	for (size_t i = 0; i < VIEWERS_MAX; i++)
		if (vs[i].fd >= 0)
			viewer_end(ctx, &vs[i]);
	if (err.code != SHP_OK && ctx->verbose)
		fprintf(stderr, _("shepherd: the last console connection ended: %s\n"), err.msg);
}

static int cmd_vnc_open(int argc, char **argv, struct cli_ctx *ctx)
{
	struct token_cache tc = {0};
	struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
	const char *ns = NULL;
	bool url_only = false;
	char vm_ns[64];
	long long port = 0;
	int c, r, lfd = -1, lport = 0;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_NAMESPACE)
			ns = optarg;
		else if (c == OPT_PRINT_URL)
			url_only = true;
		else if (c == OPT_PORT && shp_parse_int(optarg, 0, 65535, &port, &ctx->err) < 0)
			return cli_usage_error(ctx, _("--port must be 0 to 65535"));
	}
	/* refused here (no access, no grant) before a viewer is told to come */
	r = get_token(ctx, argv[optind], ns, &tc.t);
	if (r < 0 || (r = listen_local(ctx, port, &lfd, &lport)) < 0) {
		json_decref(tc.t);
		return r;
	}
	tc.got = time(NULL);
	/* the shell's own handlers come back after (a second `vnc open` there starts afresh) */
	stopping = 0;
	(void)sigaction(SIGINT, &sa, &old_int);
	(void)sigaction(SIGTERM, &sa, &old_term);
	if (url_only)
		printf("vnc://127.0.0.1:%d\n", lport);
	else
		printf(_("the console of VM %s/%s: vnc://127.0.0.1:%d (Ctrl-C ends)\n"),
		       shp_json_str(tc.t, "namespace"), shp_json_str(tc.t, "vm"), lport);
	(void)fflush(stdout);
	(void)snprintf(vm_ns, sizeof(vm_ns), "%s", shp_json_str(tc.t, "namespace"));
	serve(ctx, lfd, argv[optind], vm_ns, &tc); /* the namespace stays the first token's */
	(void)sigaction(SIGINT, &old_int, NULL);
	(void)sigaction(SIGTERM, &old_term, NULL);
	close(lfd);
	json_decref(tc.t);
	return 0;
}

/* ---- the command ---------------------------------------------------------------------------- */

static const struct shp_flag open_flags[] = {
	{"namespace", OPT_NAMESPACE, 'n', NULL, "NS",
	 N_("the VM's namespace (when its name is in several)"), .names = CLI_NAMES_NAMESPACE},
	{"port", OPT_PORT, 'p', NULL, "N", N_("listen on this local port (default: any free one)")},
	{"print-url", OPT_PRINT_URL, 0, NULL, NULL, N_("print only the vnc:// address line")},
	{NULL},
};

static const struct shp_flag token_flags[] = {
	{"namespace", OPT_NAMESPACE, 'n', NULL, "NS",
	 N_("the VM's namespace (when its name is in several)"), .names = CLI_NAMES_NAMESPACE},
	{NULL},
};

static const struct shp_flag request_flags[] = {
	{"namespace", OPT_NAMESPACE, 'n', NULL, "NS",
	 N_("the VM's namespace (when its name is in several)"), .names = CLI_NAMES_NAMESPACE},
	{"duration", OPT_DURATION, 0, NULL, "DURATION", N_("how long the access lasts (1m to 2h)"),
	 .required = true},
	{"reason", OPT_REASON, 0, NULL, "TEXT", N_("why (the approver reads it)"),
	 .required = true},
	{"wait", OPT_WAIT, 0, NULL, NULL, N_("wait until the request is decided")},
	{NULL},
};

static const struct shp_subcmd vnc_verbs[] = {
	{
		.name = "open",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_VM,
		.fn = cmd_vnc_open,
		.min_args = 1,
		.max_args = 1,
		.usage = "VM [--namespace NS] [--port N] [--print-url]",
		.flags = CMD_NEEDS_DAEMON,
		.summary = N_("let a VNC viewer reach a VM's console"),
		.description = N_("Listen on 127.0.0.1 (--port, or any free port), print the "
				  "vnc:// address for a VNC viewer and carry each of its "
				  "connections through shepherdd to VM's console, each with a "
				  "fresh single-use token. Up to eight viewers are served at once, "
				  "until Ctrl-C or SIGTERM. With --print-url only the address line "
				  "is printed, for scripts. In prod you need a grant first "
				  "('vnc request')."),
		.opts = open_flags,
	},
	{
		.name = "request",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_VM,
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
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_VM,
		.fn = cmd_vnc_token,
		.min_args = 1,
		.max_args = 1,
		.usage = "VM [--namespace NS]",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("print a single-use console token"),
		.description =
			N_("Print a console token for VM: single use, bound to you, valid "
			   "for console.token_ttl (in prod never past your grant). Send it "
			   "in the X-Shepherd-Console-Token header of a WebSocket upgrade of "
			   "GET /api/v1/vms/VM/vnc with subprotocol vnc.shepherd.io. 'vnc "
			   "open' does all of this for a VNC viewer. In table output the token "
			   "alone is printed; --json prints the whole answer (its path, "
			   "header and expiry)."),
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
