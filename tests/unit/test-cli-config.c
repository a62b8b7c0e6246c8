/*
 * cli/config.c: the config file, the SHEPHERD_* environment and command line settings, their
 * precedence, the socket-or-server choice, the default socket, and the refusals (unknown keys,
 * a token in a file others can read).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cli.h"

static char home[64];
static char path[128];

static void setup(void)
{
	static const char *const vars[] = {
		"SHEPHERD_SOCKET", "SHEPHERD_SERVER", "SHEPHERD_TOKEN",  "SHEPHERD_CACERT",
		"SHEPHERD_CERT",   "SHEPHERD_KEY",    "SHEPHERD_OUTPUT", "SHEPHERD_CONFIG",
		"XDG_CONFIG_HOME", "XDG_STATE_HOME",
	};

	for (size_t i = 0; i < SHP_ARRAY_SIZE(vars); i++)
		unsetenv(vars[i]);
	(void)snprintf(home, sizeof(home), "/tmp/test-cli-config.XXXXXX");
	cr_assert_not_null(mkdtemp(home));
	setenv("HOME", home, 1);
	(void)snprintf(path, sizeof(path), "%s/.config/shepherd/config.yaml", home);
}

static void teardown(void)
{
	char cmd[128];

	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
	(void)system(cmd);
}

TestSuite(config, .init = setup, .fini = teardown);

static void write_file(const char *p, const char *text, mode_t mode)
{
	char cmd[256];
	FILE *f;

	(void)snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", p);
	cr_assert_eq(system(cmd), 0);
	f = fopen(p, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	cr_assert_eq(chmod(p, mode), 0);
}

static int load(struct cli_config *cfg, struct shp_error *err)
{
	cli_config_init(cfg);
	return cli_config_load(cfg, err);
}

Test(config, defaults_to_the_system_socket)
{
	struct cli_config cfg;
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(load(&cfg, &err), 0, "%s", err.msg);
	cr_assert_str_eq(cfg.socket.value, "/var/lib/shepherd/shepherdd.sock");
	cr_assert_eq(cfg.socket.source, CLI_SRC_DEFAULT);
	cr_assert_null(cfg.server.value);
	cr_assert_null(cfg.path, "no file was read");
	cli_config_release(&cfg);
}

Test(config, prefers_the_users_own_daemon)
{
	struct cli_config cfg;
	struct shp_error err = SHP_ERROR_INIT;
	char sock[160];

	(void)snprintf(sock, sizeof(sock), "%s/.local/state/shepherd/shepherdd.sock", home);
	write_file(sock, "", 0600);
	cr_assert_eq(load(&cfg, &err), 0, "%s", err.msg);
	cr_assert_str_eq(cfg.socket.value, sock);
	cli_config_release(&cfg);

	(void)snprintf(sock, sizeof(sock), "%s/state/shepherd/shepherdd.sock", home);
	write_file(sock, "", 0600);
	(void)snprintf(sock, sizeof(sock), "%s/state", home);
	setenv("XDG_STATE_HOME", sock, 1);
	cr_assert_eq(load(&cfg, &err), 0, "%s", err.msg);
	cr_assert_not_null(strstr(cfg.socket.value, "/state/shepherd/shepherdd.sock"));
	cli_config_release(&cfg);
}

Test(config, file_then_environment_then_flags)
{
	struct cli_config cfg;
	struct shp_error err = SHP_ERROR_INIT;

	write_file(path,
		   "# settings\nsocket: ~/s.sock\noutput: yaml\ncacert: /etc/ca.pem\n"
		   "color: false\n",
		   0644);
	cr_assert_eq(load(&cfg, &err), 0, "%s", err.msg);
	cr_assert_str_eq(cfg.path, path);
	cr_assert_str_eq(cfg.socket.value + strlen(home), "/s.sock", "~/ is expanded");
	cr_assert_str_eq(cfg.output.value, "yaml");
	cr_assert_str_eq(cfg.cacert.value, "/etc/ca.pem");
	cr_assert_eq(cfg.socket.source, CLI_SRC_FILE);
	cr_assert_eq(cfg.color, 0);
	cli_config_release(&cfg);

	setenv("SHEPHERD_OUTPUT", "json", 1);
	setenv("SHEPHERD_SOCKET", "/env.sock", 1);
	cr_assert_eq(load(&cfg, &err), 0, "%s", err.msg);
	cr_assert_str_eq(cfg.output.value, "json");
	cr_assert_str_eq(cfg.socket.value, "/env.sock");
	cr_assert_str_eq(cfg.socket.origin, "SHEPHERD_SOCKET");
	cr_assert_str_eq(cfg.cacert.value, "/etc/ca.pem", "the file still fills the rest");
	cli_config_release(&cfg);

	cli_config_init(&cfg);
	cli_config_set(&cfg.socket, "/flag.sock", CLI_SRC_FLAG, "socket");
	cr_assert_eq(cli_config_load(&cfg, &err), 0, "%s", err.msg);
	cr_assert_str_eq(cfg.socket.value, "/flag.sock");
	cr_assert_str_eq(cfg.output.value, "json");
	cli_config_release(&cfg);
}

Test(config, the_stronger_of_socket_and_server_wins)
{
	struct cli_config cfg;
	struct shp_error err = SHP_ERROR_INIT;

	write_file(path, "socket: /file.sock\n", 0600);
	setenv("SHEPHERD_SERVER", "https://shepherd.example:8443", 1);
	cr_assert_eq(load(&cfg, &err), 0, "%s", err.msg);
	cr_assert_str_eq(cfg.server.value, "https://shepherd.example:8443");
	cr_assert_null(cfg.socket.value);
	cli_config_release(&cfg);

	cli_config_init(&cfg);
	cli_config_set(&cfg.socket, "/flag.sock", CLI_SRC_FLAG, "socket");
	cr_assert_eq(cli_config_load(&cfg, &err), 0, "%s", err.msg);
	cr_assert_str_eq(cfg.socket.value, "/flag.sock");
	cr_assert_null(cfg.server.value);
	cli_config_release(&cfg);

	setenv("SHEPHERD_SOCKET", "/env.sock", 1);
	cr_assert_lt(load(&cfg, &err), 0, "both from the environment");
	cr_assert_eq(err.code, SHP_E_USAGE);
	cr_assert_not_null(strstr(err.msg, "SHEPHERD_SOCKET"), "%s", err.msg);
	cli_config_release(&cfg);
}

Test(config, unknown_keys_are_refused)
{
	struct cli_config cfg;
	struct shp_error err = SHP_ERROR_INIT;

	write_file(path, "socket: /s\nsever: https://x\n", 0600);
	cr_assert_eq(load(&cfg, &err), -SHP_E_USAGE);
	cr_assert_not_null(strstr(err.msg, "'sever'"), "%s", err.msg);
	cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);
	cr_assert_eq(shp_errc_exit_status(err.code), SHP_EXIT_USAGE);
	cli_config_release(&cfg);
}

Test(config, bad_values_are_refused)
{
	static const char *const files[] = {
		"output: fancy\n", "socket: 3\n", "color: maybe\n",
		"- a\n- b\n",      "socket: [\n", "socket: \"\"\n",
	};
	struct cli_config cfg;
	struct shp_error err = SHP_ERROR_INIT;

	for (size_t i = 0; i < SHP_ARRAY_SIZE(files); i++) {
		write_file(path, files[i], 0600);
		cr_assert_eq(load(&cfg, &err), -SHP_E_USAGE, "%s", files[i]);
		cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);
		cli_config_release(&cfg);
	}
	cr_assert_eq(unlink(path), 0);
	setenv("SHEPHERD_OUTPUT", "fancy", 1);
	cr_assert_eq(load(&cfg, &err), -SHP_E_USAGE);
	cr_assert_not_null(strstr(err.msg, "SHEPHERD_OUTPUT"), "%s", err.msg);
	cli_config_release(&cfg);
}

Test(config, a_token_file_must_be_private)
{
	struct cli_config cfg;
	struct shp_error err = SHP_ERROR_INIT;

	write_file(path, "server: https://x.example\ntoken: shp_secret\n", 0644);
	cr_assert_eq(load(&cfg, &err), -SHP_E_USAGE);
	cr_assert_not_null(strstr(err.msg, "chmod 600"), "%s", err.msg);
	cr_assert_null(strstr(err.msg, "shp_secret"), "the token is never shown");
	cli_config_release(&cfg);

	cr_assert_eq(chmod(path, 0640), 0);
	cr_assert_eq(load(&cfg, &err), -SHP_E_USAGE, "group-readable is refused too");
	cli_config_release(&cfg);

	cr_assert_eq(chmod(path, 0600), 0);
	cr_assert_eq(load(&cfg, &err), 0, "%s", err.msg);
	cr_assert_str_eq(cfg.token.value, "shp_secret");
	cli_config_release(&cfg);

	/* Without a token the file may be world-readable. */
	write_file(path, "server: https://x.example\n", 0644);
	cr_assert_eq(load(&cfg, &err), 0, "%s", err.msg);
	cli_config_release(&cfg);
}

Test(config, where_the_file_is)
{
	struct cli_config cfg;
	struct shp_error err = SHP_ERROR_INIT;
	char alt[160];

	(void)snprintf(alt, sizeof(alt), "%s/xdg/shepherd/config.yaml", home);
	write_file(alt, "output: name\n", 0600);
	(void)snprintf(alt, sizeof(alt), "%s/xdg", home);
	setenv("XDG_CONFIG_HOME", alt, 1);
	cr_assert_eq(load(&cfg, &err), 0, "%s", err.msg);
	cr_assert_str_eq(cfg.output.value, "name");
	cli_config_release(&cfg);

	setenv("XDG_CONFIG_HOME", "relative/ignored", 1);
	write_file(path, "output: wide\n", 0600);
	cr_assert_eq(load(&cfg, &err), 0, "%s", err.msg);
	cr_assert_str_eq(cfg.output.value, "wide");
	cli_config_release(&cfg);

	(void)snprintf(alt, sizeof(alt), "%s/other.yaml", home);
	write_file(alt, "  # nothing but a comment\n\n", 0600);
	setenv("SHEPHERD_CONFIG", alt, 1);
	cr_assert_eq(load(&cfg, &err), 0, "%s", err.msg);
	cr_assert_null(cfg.output.value, "an empty file sets nothing");
	cli_config_release(&cfg);

	(void)snprintf(alt, sizeof(alt), "%s/missing.yaml", home);
	setenv("SHEPHERD_CONFIG", alt, 1);
	cr_assert_lt(load(&cfg, &err), 0, "a named file must exist");
	cr_assert_not_null(strstr(err.msg, "missing.yaml"), "%s", err.msg);
	cli_config_release(&cfg);
}

Test(config, formats)
{
	cr_assert_eq(cli_format_from_string("table"), CLI_FORMAT_TABLE);
	cr_assert_eq(cli_format_from_string("wide"), CLI_FORMAT_WIDE);
	cr_assert_eq(cli_format_from_string("json"), CLI_FORMAT_JSON);
	cr_assert_eq(cli_format_from_string("yaml"), CLI_FORMAT_YAML);
	cr_assert_eq(cli_format_from_string("name"), CLI_FORMAT_NAME);
	cr_assert_eq(cli_format_from_string("JSON"), -1);
	cr_assert_eq(cli_format_from_string(""), -1);
}
