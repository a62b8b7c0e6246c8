/*
 * Resource names for completion: asked of the daemon with a short timeout (silent on any
 * failure) and cached per kind and target in $XDG_CACHE_HOME/shepherd/ for a few seconds, so
 * that a TAB costs a file read. The hidden `shepherd __complete KIND [PREFIX]` prints them for
 * the generated bash, zsh and fish scripts; the shell asks cli_names_get directly.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "api.h"
#include "canon.h"
#include "cli.h"
#include "httpc.h"
#include "i18n.h"
#include "json.h"
#include "shell.h"
#include "util.h"

#define CACHE_MAGIC "shepherd-names 1\n"
#define CACHE_KEEP_S (24 * 3600) /* lists of other targets and tokens kept this long */
#define CACHE_SWEEP_MAX 1000     /* directory entries looked at per sweep */
#define CACHE_FILE_MAX (CLI_NAMES_MAX * (CLI_NAME_LEN_MAX + 1) + sizeof(CACHE_MAGIC))

/* Where each kind is listed, and the member of an item that names it. */
static const struct {
	const char *name;
	const char *route;
	const char *field;
} kinds[_CLI_NAMES_MAX] = {
	[CLI_NAMES_VM] = {"vm", SHP_ROUTE_VMS, "name"},
	[CLI_NAMES_NAMESPACE] = {"namespace", SHP_ROUTE_NAMESPACES, "name"},
	[CLI_NAMES_CLUSTER] = {"cluster", SHP_ROUTE_CLUSTERS, "name"},
	[CLI_NAMES_TEMPLATE] = {"template", SHP_ROUTE_TEMPLATES, "name"},
	[CLI_NAMES_SIZE] = {"size", SHP_ROUTE_SIZES, "name"},
	[CLI_NAMES_SYSTEM] = {"system", SHP_ROUTE_SYSTEMS, "name"},
	[CLI_NAMES_SERVICE] = {"service", SHP_ROUTE_SERVICES, "name"},
	[CLI_NAMES_APPROVAL] = {"approval", SHP_ROUTE_APPROVALS, "id"},
	[CLI_NAMES_REQUEST] = {"request", SHP_ROUTE_REQUESTS, "id"},
	[CLI_NAMES_TASK] = {"task", SHP_ROUTE_TASKS, "id"},
	[CLI_NAMES_BATCH] = {"batch", SHP_ROUTE_VMS "/batch", "id"},
	[CLI_NAMES_NOTIFICATION] = {"notification", SHP_ROUTE_NOTIFICATIONS, "id"},
};

const char *cli_names_kind_name(enum cli_names kind)
{
	return kind > CLI_NAMES_NONE && kind < _CLI_NAMES_MAX ? kinds[kind].name : NULL;
}

int cli_names_kind_from_string(const char *s)
{
	for (int k = CLI_NAMES_NONE + 1; k < _CLI_NAMES_MAX; k++)
		if (strcmp(kinds[k].name, s) == 0)
			return k;
	return -1;
}

struct cli_namelist *cli_namelist_free(struct cli_namelist *n)
{
	if (!n)
		return NULL;
	for (size_t i = 0; i < n->n; i++)
		free(n->v[i]);
	free(n->v);
	free(n);
	return NULL;
}

/* A name fit for a completion list: printable, no blanks, bounded; duplicates dropped. */
static void names_add(struct cli_namelist *n, const char *s, size_t len)
{
	if (len == 0 || len > CLI_NAME_LEN_MAX || n->n >= CLI_NAMES_MAX)
		return;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return;
	for (size_t i = 0; i < n->n; i++)
		if (strlen(n->v[i]) == len && memcmp(n->v[i], s, len) == 0)
			return;
	n->v = xreallocarray(n->v, n->n + 2, sizeof(*n->v));
	n->v[n->n] = xasprintf("%.*s", (int)len, s);
	n->v[++n->n] = NULL;
}

static struct cli_namelist *names_new(void)
{
	struct cli_namelist *n = xcalloc(1, sizeof(*n));

	n->v = xcalloc(1, sizeof(*n->v));
	return n;
}

/* The cache file of kind for ctx's target and credentials (hashed: no token in a file name). */
static char *cache_path(const struct cli_ctx *ctx, enum cli_names kind)
{
	const struct cli_config *cfg = &ctx->config;
	_cleanup_free_ char *dir = cli_xdg_path("XDG_CACHE_HOME", ".cache", "shepherd");
	_cleanup_free_ char *key = NULL;
	char hex[SHP_SHA256_HEX_LEN + 1];

	if (!dir)
		return NULL;
	key = xasprintf("%s\n%s\n%s\n%s", cfg->server.value ? "server" : "socket",
			cfg->server.value   ? cfg->server.value
			: cfg->socket.value ? cfg->socket.value
					    : "",
			cfg->token.value ? cfg->token.value : "",
			cfg->cert.value ? cfg->cert.value : "");
	shp_sha256_hex(key, strlen(key), hex);
	hex[24] = '\0';
	return xasprintf("%s/names-%s-%s", dir, kinds[kind].name, hex);
}

/* Read a cache file: NULL when absent, broken, not ours or not private; *ret_age its age. */
static struct cli_namelist *cache_read(const char *path, time_t *ret_age)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	_cleanup_free_ char *data = NULL;
	struct cli_namelist *n;
	struct stat st;
	ssize_t len;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) || st.st_size > (off_t)CACHE_FILE_MAX)
		return NULL;
	data = xmalloc((size_t)st.st_size + 1);
	len = read(fd, data, (size_t)st.st_size);
	if (len != st.st_size || strncmp(data, CACHE_MAGIC, strlen(CACHE_MAGIC)) != 0)
		return NULL;
	data[len] = '\0';
	n = names_new();
	for (char *p = data + strlen(CACHE_MAGIC); *p;) {
		size_t l = strcspn(p, "\n");

		names_add(n, p, l);
		p += l + (p[l] == '\n');
	}
	*ret_age = time(NULL) - st.st_mtime;
	return n;
}

void cli_make_dirs(const char *dir)
{
	_cleanup_free_ char *p = xstrdup(dir);

	for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		(void)mkdir(p, 0700);
		*s = '/';
	}
	(void)mkdir(p, 0700);
}

/*
 * Remove the lists nobody asked for in a day (old tokens, daemons gone), so that the directory
 * stays small however many targets and tokens come and go.
 */
static void cache_sweep(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;
	time_t now = time(NULL);

	for (int i = 0; d && i < CACHE_SWEEP_MAX && (e = readdir(d)); i++)
		if (strncmp(e->d_name, "names-", 6) == 0 &&
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    now - st.st_mtime > CACHE_KEEP_S)
			(void)unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		(void)closedir(d);
}

/* Write the cache atomically (a private temporary file renamed); failures are ignored. */
static void cache_write(const char *path, const struct cli_namelist *n)
{
	_cleanup_free_ char *dir = xstrdup(path), *tmp = xasprintf("%s.XXXXXX", path);
	_cleanup_(shp_buf_releasep) struct shp_buf b = SHP_BUF_INIT(CACHE_FILE_MAX);
	int fd;

	*strrchr(dir, '/') = '\0';
	cli_make_dirs(dir);
	xbuf_add(&b, CACHE_MAGIC);
	for (size_t i = 0; i < n->n; i++)
		xbuf_addf(&b, "%s\n", n->v[i]);
	fd = mkstemp(tmp); /* mode 0600 */
	if (fd < 0)
		return;
	if (write(fd, b.buf, b.len) != (ssize_t)b.len || close(fd) < 0 || rename(tmp, path) < 0)
		(void)unlink(tmp);
	cache_sweep(dir);
}

/* How long to wait for the daemon: SHEPHERD_COMPLETE_TIMEOUT (ms) if valid, else the default. */
static int names_timeout_ms(void)
{
	const char *v = getenv("SHEPHERD_COMPLETE_TIMEOUT");
	long long ms;

	if (v && shp_parse_int(v, 1, CLI_NAMES_TIMEOUT_MAX_MS, &ms, NULL) == 0)
		return (int)ms;
	return CLI_NAMES_TIMEOUT_MS;
}

/* One page of the kind's list from the daemon, within names_timeout_ms(). */
static struct cli_namelist *ask_daemon(const struct cli_ctx *ctx, enum cli_names kind)
{
	const struct cli_config *cfg = &ctx->config;
	struct shp_httpc_config hc = {
		.socket_path = cfg->socket.value,
		.server_url = cfg->server.value,
		.token = cfg->token.value,
		.cacert = cfg->cacert.value,
		.cert = cfg->cert.value,
		.key = cfg->key.value,
		.timeout_ms = names_timeout_ms(),
		.interrupt = cli_interrupt_flag(),
	};
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = NULL;
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	_cleanup_(json_decrefp) json_t *page = NULL;
	_cleanup_free_ char *path = xasprintf("%s?limit=%d", kinds[kind].route, SHP_API_PAGE_MAX);
	struct shp_error err = SHP_ERROR_INIT;
	const json_t *items, *item;
	struct cli_namelist *n;
	size_t i;

	shp_httpc_response_init(&resp);
	c = shp_httpc_new(&hc, &err);
	if (!c || shp_httpc_request(c, "GET", path, NULL, 0, NULL, &resp, &err) < 0 ||
	    resp.status != 200)
		return NULL;
	page = shp_json_parse(resp.body.buf, resp.body.len, SHP_API_JSON_DEPTH_MAX, &err);
	items = json_object_get(page, SHP_API_FIELD_ITEMS);
	if (!json_is_array(items))
		return NULL;
	n = names_new();
	json_array_foreach(items, i, item)
	{
		const json_t *v = json_object_get(item, kinds[kind].field);
		char num[32];

		if (json_is_string(v))
			names_add(n, json_string_value(v), strlen(json_string_value(v)));
		else if (json_is_integer(v))
			names_add(n, num,
				  (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
						   json_integer_value(v)));
	}
	return n;
}

struct cli_namelist *cli_names_get(const struct cli_ctx *ctx, enum cli_names kind)
{
	_cleanup_free_ char *path = NULL;
	struct cli_namelist *cached = NULL, *fresh;
	time_t age = 0;

	if (!cli_names_kind_name(kind))
		return names_new();
	path = cache_path(ctx, kind);
	if (path)
		cached = cache_read(path, &age);
	if (cached && age >= 0 && age < CLI_NAMES_TTL_S)
		return cached;
	fresh = ask_daemon(ctx, kind);
	if (!fresh) /* an old answer beats none while the daemon is away */
		return cached ? cached : names_new();
	cli_namelist_free(cached);
	if (path)
		cache_write(path, fresh);
	return fresh;
}

static int cmd_complete_names_run(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(cli_namelist_freep) struct cli_namelist *n = NULL;
	const char *prefix;
	int kind;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	kind = cli_names_kind_from_string(argv[optind]);
	if (kind < 0)
		return cli_usage_error(ctx, _("unknown kind of name '%s'"), argv[optind]);
	prefix = optind + 1 < argc ? argv[optind + 1] : "";
	n = cli_names_get(ctx, (enum cli_names)kind);
	for (size_t i = 0; i < n->n; i++)
		if (strncmp(n->v[i], prefix, strlen(prefix)) == 0)
			printf("%s\n", n->v[i]);
	return 0;
}

static const struct shp_subcmd complete_names_entry = {
	.fn = cmd_complete_names_run,
	.min_args = 1,
	.max_args = 2,
	.usage = "KIND [PREFIX]",
	.flags = CMD_HIDDEN | CMD_NEEDS_DAEMON | CMD_READONLY,
	.summary = N_("print the resource names of a kind, for completion scripts"),
	.description =
		N_("Print the names of KIND (vm, namespace, cluster, template, size, "
		   "system, service, approval, request, task, batch, notification) starting "
		   "with PREFIX, one a "
		   "line: asked of shepherdd within 300 ms (SHEPHERD_COMPLETE_TIMEOUT) and cached "
		   "for 30 seconds. "
		   "Prints nothing when the daemon does not answer."),
};

const struct shp_cmd cmd_complete_names = {
	.name = "__complete",
	.summary = N_("print resource names for completion"),
	.self = &complete_names_entry,
};
