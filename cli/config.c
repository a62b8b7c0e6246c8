/*
 * Where the CLI's settings come from, strongest first: the command line (set by main), the
 * SHEPHERD_* environment, the config file (~/.config/shepherd/config.yaml); then the choice
 * between socket and server, and the default socket.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "error.h"
#include "i18n.h"
#include "util.h"
#include "yaml.h"

#define CONFIG_FILE_MAX (64 * 1024)
#define CONFIG_DEPTH_MAX 4
#define SYSTEM_SOCKET "/var/lib/shepherd/shepherdd.sock"

struct setting_desc {
	const char *key;
	const char *env;
	size_t offset;
	bool path; /* "~/" is expanded in the config file */
};

static const struct setting_desc settings[] = {
	{"socket", "SHEPHERD_SOCKET", offsetof(struct cli_config, socket), true},
	{"server", "SHEPHERD_SERVER", offsetof(struct cli_config, server), false},
	{"token", "SHEPHERD_TOKEN", offsetof(struct cli_config, token), false},
	{"cacert", "SHEPHERD_CACERT", offsetof(struct cli_config, cacert), true},
	{"cert", "SHEPHERD_CERT", offsetof(struct cli_config, cert), true},
	{"key", "SHEPHERD_KEY", offsetof(struct cli_config, key), true},
	{"output", "SHEPHERD_OUTPUT", offsetof(struct cli_config, output), false},
};

static struct cli_setting *setting_of(struct cli_config *cfg, const struct setting_desc *d)
{
	return (struct cli_setting *)((char *)cfg + d->offset);
}

static void setting_clear(struct cli_setting *s)
{
	if (s->value) {
		explicit_bzero(s->value, strlen(s->value));
		free(s->value);
	}
	*s = (struct cli_setting){.source = CLI_SRC_NONE};
}

void cli_config_init(struct cli_config *cfg)
{
	*cfg = (struct cli_config){.color = -1};
}

void cli_config_release(struct cli_config *cfg)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(settings); i++)
		setting_clear(setting_of(cfg, &settings[i]));
	free(cfg->path);
	cli_config_init(cfg);
}

void cli_config_set(struct cli_setting *s, const char *value, enum cli_source src,
		    const char *origin)
{
	if (s->source > src)
		return;
	setting_clear(s);
	s->value = xstrdup(value);
	s->source = src;
	s->origin = origin;
}

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && v[0] ? v : NULL;
}

char *cli_xdg_path(const char *var, const char *fallback, const char *suffix)
{
	const char *base = env_nonempty(var);
	const char *home;

	if (base && base[0] == '/')
		return xasprintf("%s/%s", base, suffix);
	home = env_nonempty("HOME");
	if (!home)
		return NULL;
	return xasprintf("%s/%s/%s", home, fallback, suffix);
}

char *cli_config_file_path(void)
{
	const char *explicit = env_nonempty("SHEPHERD_CONFIG");

	if (explicit)
		return xstrdup(explicit);
	return cli_xdg_path("XDG_CONFIG_HOME", ".config", "shepherd/config.yaml");
}

char *cli_config_default_socket(void)
{
	_cleanup_free_ char *user =
		cli_xdg_path("XDG_STATE_HOME", ".local/state", "shepherd/shepherdd.sock");

	if (user && access(user, F_OK) == 0)
		return TAKE_PTR(user);
	return xstrdup(SYSTEM_SOCKET);
}

static int read_config_file(const char *path, bool must_exist, char **ret_data, size_t *ret_len,
			    struct stat *ret_st, struct shp_error *err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT && !must_exist)
			return 0;
		return shp_error_errno(err, errno, _("cannot open config file '%s'"), path);
	}
	if (fstat(fd, ret_st) < 0)
		return shp_error_errno(err, errno, _("cannot stat config file '%s'"), path);
	if (!S_ISREG(ret_st->st_mode))
		return shp_error_set(err, SHP_E_USAGE, _("config file '%s' is not a regular file"),
				     path);
	data = xmalloc(CONFIG_FILE_MAX + 1);
	while ((n = read(fd, data + len, CONFIG_FILE_MAX + 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return shp_error_errno(err, errno, _("cannot read config file '%s'"), path);
		len += (size_t)n;
		if (len > CONFIG_FILE_MAX)
			return shp_error_set(err, SHP_E_USAGE,
					     _("config file '%s' is larger than %d bytes"), path,
					     CONFIG_FILE_MAX);
	}
	data[len] = '\0';
	*ret_data = TAKE_PTR(data);
	*ret_len = len;
	return 1;
}

/* Blank lines and comments only: an empty configuration, not a YAML error. */
static bool yaml_is_empty(const char *s)
{
	while (*s) {
		s += strspn(s, " \t\r\n");
		if (*s == '#')
			s += strcspn(s, "\n");
		else if (*s)
			return false;
	}
	return true;
}

static char *expand_home(const char *v)
{
	const char *home = env_nonempty("HOME");

	if (home && strncmp(v, "~/", 2) == 0)
		return xasprintf("%s/%s", home, v + 2);
	return xstrdup(v);
}

static int apply_file_value(struct cli_config *cfg, const char *path, const char *key,
			    const json_t *v, struct shp_error *err)
{
	const struct setting_desc *d = NULL;
	_cleanup_free_ char *value = NULL;

	if (strcmp(key, "color") == 0) {
		if (!json_is_boolean(v))
			return shp_error_set(err, SHP_E_USAGE,
					     _("config file '%s': 'color' must be true or false"),
					     path);
		cfg->color = json_is_true(v);
		return 0;
	}
	for (size_t i = 0; i < SHP_ARRAY_SIZE(settings); i++)
		if (strcmp(key, settings[i].key) == 0)
			d = &settings[i];
	if (!d)
		return shp_error_set(err, SHP_E_USAGE, _("config file '%s': unknown key '%s'"),
				     path, key);
	if (!json_is_string(v) || !json_string_value(v)[0])
		return shp_error_set(err, SHP_E_USAGE,
				     _("config file '%s': '%s' must be a non-empty string"), path,
				     key);
	if (strcmp(key, "output") == 0 && cli_format_from_string(json_string_value(v)) < 0)
		return shp_error_set(
			err, SHP_E_USAGE,
			_("config file '%s': 'output' must be table, wide, json, yaml or "
			  "name"),
			path);
	value = d->path ? expand_home(json_string_value(v)) : xstrdup(json_string_value(v));
	cli_config_set(setting_of(cfg, d), value, CLI_SRC_FILE, N_("config file"));
	return 0;
}

static int load_file(struct cli_config *cfg, struct shp_error *err)
{
	_cleanup_free_ char *path = cli_config_file_path();
	_cleanup_free_ char *data = NULL;
	_cleanup_(json_decrefp) json_t *doc = NULL;
	struct shp_error perr = SHP_ERROR_INIT;
	struct stat st;
	size_t len = 0;
	int r;

	if (!path)
		return 0;
	r = read_config_file(path, env_nonempty("SHEPHERD_CONFIG") != NULL, &data, &len, &st, err);
	if (r <= 0)
		return r;
	cfg->path = xstrdup(path);
	if (yaml_is_empty(data))
		return 0;
	doc = shp_yaml_to_json(data, len, CONFIG_DEPTH_MAX, &perr);
	if (!doc)
		return shp_error_set(err, SHP_E_USAGE, _("config file '%s': %s"), path, perr.msg);
	if (!json_is_object(doc))
		return shp_error_set(
			err, SHP_E_USAGE,
			_("config file '%s' must be a mapping of settings (key: value)"), path);
	/* A token is a password: a file holding one is for its owner's eyes only. */
	if (json_object_get(doc, "token") && (st.st_mode & (S_IRWXG | S_IRWXO)))
		return shp_error_set(
			err, SHP_E_USAGE,
			_("config file '%s' holds a token but is accessible by group or "
			  "others (mode %03o); run 'chmod 600 %s'"),
			path, (unsigned)(st.st_mode & 0777), path);
	for (void *it = json_object_iter(doc); it; it = json_object_iter_next(doc, it)) {
		r = apply_file_value(cfg, path, json_object_iter_key(it),
				     json_object_iter_value(it), err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int load_env(struct cli_config *cfg, struct shp_error *err)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(settings); i++) {
		const char *v = env_nonempty(settings[i].env);

		if (!v)
			continue;
		if (strcmp(settings[i].key, "output") == 0 && cli_format_from_string(v) < 0)
			return shp_error_set(
				err, SHP_E_USAGE,
				_("invalid value '%s' for SHEPHERD_OUTPUT (expected table, "
				  "wide, json, yaml or name)"),
				v);
		cli_config_set(setting_of(cfg, &settings[i]), v, CLI_SRC_ENV, settings[i].env);
	}
	return 0;
}

/* The stronger of socket and server wins; both from the same source is a mistake. */
static int choose_transport(struct cli_config *cfg, struct shp_error *err)
{
	_cleanup_free_ char *def = NULL;

	if (cfg->socket.value && cfg->server.value) {
		if (cfg->socket.source == cfg->server.source)
			return shp_error_set(
				err, SHP_E_USAGE,
				_("both a socket (%s) and a server (%s) are set; use one"),
				cli_tr(cfg->socket.origin), cli_tr(cfg->server.origin));
		if (cfg->socket.source > cfg->server.source)
			setting_clear(&cfg->server);
		else
			setting_clear(&cfg->socket);
	}
	if (!cfg->socket.value && !cfg->server.value) {
		def = cli_config_default_socket();
		cli_config_set(&cfg->socket, def, CLI_SRC_DEFAULT, N_("default"));
	}
	return 0;
}

int cli_config_load(struct cli_config *cfg, struct shp_error *err)
{
	int r;

	r = load_file(cfg, err);
	if (r < 0)
		return r;
	r = load_env(cfg, err);
	if (r < 0)
		return r;
	return choose_transport(cfg, err);
}
