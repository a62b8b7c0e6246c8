/*
 * Unit tests of lib/log.c: the secret-key test, text and JSON masking, both line formats read
 * back by a parser, level filtering, the thread-local context, truncation of long lines and
 * one write per line from several threads.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "buf.h"
#include "error.h"
#include "log.h"
#include "util.h"

#define TRUNC_MARK "\xe2\x80\xa6(truncated)"

/* ---- capture ---- */

static int cap_fd[2] = {-1, -1};

static void capture(enum shp_log_level level, enum shp_log_format format)
{
	cr_assert_eq(pipe(cap_fd), 0);
	shp_log_setup(level, format, cap_fd[1]);
	shp_log_ctx_clear();
}

/* Everything logged since capture(), as one string (the pipe must not have filled up). */
static char *captured(void)
{
	struct shp_buf b = SHP_BUF_INIT(1 << 20);
	char chunk[4096];
	ssize_t n;

	close(cap_fd[1]);
	while ((n = read(cap_fd[0], chunk, sizeof(chunk))) > 0)
		cr_assert_eq(shp_buf_addn(&b, chunk, (size_t)n), 0);
	close(cap_fd[0]);
	return shp_buf_detach(&b, NULL);
}

/* ---- a strict logfmt reader: key=value pairs, values bare or quoted with JSON escapes ---- */

static const char *read_quoted(const char *p, struct shp_buf *v)
{
	for (p++; *p && *p != '"'; p++) {
		char c = *p;

		if ((unsigned char)c < 0x20)
			return NULL;
		if (c == '\\') {
			p++;
			switch (*p) {
			case '"': c = '"'; break;
			case '\\': c = '\\'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'u': {
				int cp = 0;

				for (int i = 1; i <= 4; i++) {
					if (shp_hex_digit(p[i]) < 0)
						return NULL;
					cp = cp * 16 + shp_hex_digit(p[i]);
				}
				p += 4;
				if (cp >= 0x100)
					return NULL;
				if (cp >= 0x80) {
					cr_assert_eq(shp_buf_addch(v, (char)(0xc0 | (cp >> 6))), 0);
					c = (char)(0x80 | (cp & 0x3f));
				} else {
					c = (char)cp;
				}
				break;
			}
			default: return NULL;
			}
		}
		cr_assert_eq(shp_buf_addch(v, c), 0);
	}
	return *p == '"' ? p + 1 : NULL;
}

/* The pairs of one logfmt line (without its newline), or NULL when it is not well-formed. */
static json_t *parse_logfmt(const char *line)
{
	json_auto_t *o = json_object();
	const char *p = line;

	while (*p) {
		struct shp_buf k = SHP_BUF_INIT(256), v = SHP_BUF_INIT(1 << 16);
		int r;

		while (*p && *p != '=' && *p != ' ' && *p != '"')
			cr_assert_eq(shp_buf_addch(&k, *p++), 0);
		if (*p != '=' || k.len == 0) {
			shp_buf_release(&k);
			return NULL;
		}
		p++;
		if (*p == '"') {
			p = read_quoted(p, &v);
		} else {
			while (*p && *p != ' ') {
				if (*p == '"' || *p == '=' || (unsigned char)*p < 0x20)
					p = NULL;
				if (!p)
					break;
				cr_assert_eq(shp_buf_addch(&v, *p++), 0);
			}
		}
		r = p ? json_object_set_new(o, k.buf, json_stringn(v.buf, v.len)) : -1;
		shp_buf_release(&k);
		shp_buf_release(&v);
		if (r < 0 || json_object_size(o) == 0)
			return NULL;
		if (*p == ' ')
			p++;
		else if (*p)
			return NULL;
	}
	return json_incref(o);
}

/* Split captured output into lines; each must end in '\n'. Returns the count. */
static size_t split_lines(char *text, char **lines, size_t max)
{
	size_t n = 0;

	while (*text) {
		char *nl = strchr(text, '\n');

		cr_assert_not_null(nl, "line without newline: %s", text);
		*nl = '\0';
		cr_assert_lt(n, max);
		lines[n++] = text;
		text = nl + 1;
	}
	return n;
}

/* ---- the key test ---- */

Test(log, secret_keys)
{
	static const char *const secret[] = {
		"password",
		"PASSWORD",
		"passwd",
		"token",
		"secret",
		"key",
		"credential",
		"api_key",
		"apikey",
		"ApiKey",
		"private_key",
		"authorization",
		"cookie",
		"db_password",
		"X-Api-Key",
		"client.secret",
		"Authorization",
		"access_token",
		"refresh-token",
		"set-cookie",
		"ssh.private_key",
		"aws_secret_access_key",
		"KEY",
	};
	static const char *const plain[] = {
		"keyboard",        "monkey",      "tokenizer_mode", "name",   "secretary",
		"passwords_count", "keys",        "tokenize",       "",       "user",
		"cookies",         "credentials", "turkey.x",       "hotkey",
	};

	for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
		cr_assert(shp_mask_key_is_secret(secret[i]), "'%s' should be secret", secret[i]);
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		cr_assert_not(shp_mask_key_is_secret(plain[i]), "'%s' should not be", plain[i]);
	cr_assert_not(shp_mask_key_is_secret(NULL));
}

/* ---- text masking ---- */

static void assert_masked(const char *in, const char *want)
{
	struct shp_buf b = SHP_BUF_INIT(4096);

	cr_assert_eq(shp_mask_text(in, &b), 0);
	cr_assert_str_eq(b.buf, want, "masking '%s'", in);
	shp_buf_release(&b);
}

Test(log, mask_text_key_values)
{
	assert_masked("password=hunter2", "password=***");
	assert_masked("login with password=hunter2 failed", "login with password=*** failed");
	assert_masked("token: abc", "token: ***");
	assert_masked("X-Api-Key: abc123", "X-Api-Key: ***");
	assert_masked("db_password = 's3cr3t' next", "db_password = '***' next");
	assert_masked("secret=\"a b \\\" c\" tail", "secret=\"***\" tail");
	assert_masked("GET /x?api_key=abc&limit=5", "GET /x?api_key=***&limit=5");
	assert_masked("host=db password=pw dbname=app", "host=db password=*** dbname=app");
	assert_masked("Authorization: Bearer abc.def", "Authorization: Bearer ***");
	assert_masked("cookie: session=xyz; other=1", "cookie: ***; other=1");
	assert_masked("secret={\"a\": [1, \"}\"]} end", "secret=\"***\" end");
	assert_masked("password=", "password=");
	assert_masked("password = next", "password = ***");
}

Test(log, mask_text_json_inside_text)
{
	assert_masked("body {\"secret\":\"x\",\"name\":\"web\"}",
		      "body {\"secret\":\"***\",\"name\":\"web\"}");
	assert_masked("{\"user\": \"bob\", \"password\" : \"p@ss \\\"w\"}",
		      "{\"user\": \"bob\", \"password\" : \"***\"}");
	assert_masked("{\"password\": 1234, \"n\": 1}", "{\"password\": \"***\", \"n\": 1}");
	assert_masked("{\"token\":null}", "{\"token\":\"***\"}");
	assert_masked("raw \"{\\\"password\\\":\\\"x\\\",\\\"a\\\":1}\"",
		      "raw \"{\\\"password\\\":\\\"***\\\",\\\"a\\\":1}\"");
	assert_masked("{\"db\": {\"private_key\": [\"-----BEGIN\", \"x\"]}}",
		      "{\"db\": {\"private_key\": \"***\"}}");
}

Test(log, mask_text_schemes)
{
	assert_masked("Bearer abc.def", "Bearer ***");
	assert_masked("header Bearer eyJhbGciOi.eyJzdWIi.sig-_x rest", "header Bearer *** rest");
	assert_masked("Basic dXNlcjpw", "Basic ***");
	assert_masked("basic dXNlcjpwYXNz==", "basic ***");
	assert_masked("Bearer", "Bearer");
	assert_masked("xBearer abc", "xBearer abc");
}

Test(log, mask_text_url_userinfo)
{
	assert_masked("postgres://user:pw@host/db", "postgres://user:***@host/db");
	assert_masked("dsn=postgresql://app:s3cr%40t@db.local:5432/x?sslmode=require",
		      "dsn=postgresql://app:***@db.local:5432/x?sslmode=require");
	assert_masked("https://u:p@ss@h/", "https://u:***@h/");
	assert_masked("https://user@host/path", "https://user@host/path");
	assert_masked("https://host:8443/path", "https://host:8443/path");
	assert_masked("see https://h/x?token=abc&y=1", "see https://h/x?token=***&y=1");
}

Test(log, mask_text_shepherd_tokens)
{
	assert_masked("using shp_AbCdEfGhIjKlMnOpQrStUvWx for auth", "using *** for auth");
	assert_masked("t=shp_01234567890123456789-_", "t=***");
	assert_masked("(shp_aaaaaaaaaaaaaaaaaaaa)", "(***)");
	assert_masked("my_shp_aaaaaaaaaaaaaaaaaaaaaaaa.x", "my_***.x");
	assert_masked("shp_short is fine", "shp_short is fine");
	assert_masked("shp_aaaaaaaaaaaaaaaaaaa", "shp_aaaaaaaaaaaaaaaaaaa");
}

Test(log, mask_text_leaves_the_rest_alone)
{
	static const char *const same[] = {
		"monkey=banana keyboard: qwerty tokenizer_mode=fast user=bob",
		"the token expired, please log in again",
		"password reset requested for 'alice'",
		"keys=3 secretary=jo caf\xc3\xa9=ok",
		"ratio 3:2 at 12:30, a=b",
		"",
		"unicode \xe4\xb8\xad\xe6\x96\x87 stays",
	};

	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		assert_masked(same[i], same[i]);
}

Test(log, mask_text_respects_the_cap)
{
	struct shp_buf b = SHP_BUF_INIT(10);

	cr_assert_eq(shp_buf_add(&b, "ab"), 0);
	cr_assert_eq(shp_mask_text("password=x and more text", &b), -SHP_E_LIMIT);
	cr_assert_str_eq(b.buf, "ab");
	shp_buf_release(&b);
}

/* ---- JSON masking ---- */

Test(log, mask_json_nested)
{
	json_auto_t *in = json_loads(
		"{\"a\": {\"b\": {\"c\": {\"password\": \"x\", \"ok\": \"y\", "
		"\"d\": {\"e\": [{\"token\": \"t\"}]}}}},"
		" \"list\": [{\"api_key\": 1}, \"password=zz\", [[{\"Client.Secret\": [1, 2]}]]],"
		" \"X-Api-Key\": {\"nested\": \"obj\"}, \"n\": 3, \"f\": 1.5, \"b\": true,"
		" \"z\": null, \"note\": \"Bearer abc\"}",
		0, NULL);
	json_auto_t *want = json_loads(
		"{\"a\": {\"b\": {\"c\": {\"password\": \"***\", \"ok\": \"y\", "
		"\"d\": {\"e\": [{\"token\": \"***\"}]}}}},"
		" \"list\": [{\"api_key\": \"***\"}, \"password=***\", [[{\"Client.Secret\": "
		"\"***\"}]]], \"X-Api-Key\": \"***\", \"n\": 3, \"f\": 1.5, \"b\": true,"
		" \"z\": null, \"note\": \"Bearer ***\"}",
		0, NULL);
	json_auto_t *out = NULL;

	cr_assert_not_null(in);
	out = shp_mask_json(in);
	cr_assert_not_null(out);
	cr_assert(json_equal(out, want));
	cr_assert_str_eq(
		json_string_value(json_object_get(
			json_object_get(json_object_get(json_object_get(in, "a"), "b"), "c"),
			"password")),
		"x", "the input is not modified");
	cr_assert_neq(out, in);
	cr_assert_null(shp_mask_json(NULL));
}

Test(log, mask_json_scalars_are_copies)
{
	json_auto_t *in = json_integer(5);
	json_auto_t *out = shp_mask_json(in);

	cr_assert(json_equal(in, out));
	json_integer_set(out, 6);
	cr_assert_eq(json_integer_value(in), 5);
}

/* ---- levels ---- */

Test(log, level_names)
{
	cr_assert_str_eq(shp_log_level_to_string(SHP_LOG_ERROR), "error");
	cr_assert_str_eq(shp_log_level_to_string(SHP_LOG_WARN), "warn");
	cr_assert_str_eq(shp_log_level_to_string(SHP_LOG_INFO), "info");
	cr_assert_str_eq(shp_log_level_to_string(SHP_LOG_DEBUG), "debug");
	cr_assert_str_eq(shp_log_level_to_string(_SHP_LOG_LEVEL_MAX), "unknown");
	cr_assert_eq(shp_log_level_from_string("debug"), SHP_LOG_DEBUG);
	cr_assert_eq(shp_log_level_from_string("WARN"), SHP_LOG_WARN);
	cr_assert_eq(shp_log_level_from_string("warning"), SHP_LOG_WARN);
	cr_assert_eq(shp_log_level_from_string("error"), SHP_LOG_ERROR);
	cr_assert_eq(shp_log_level_from_string("info"), SHP_LOG_INFO);
	cr_assert_eq(shp_log_level_from_string("verbose"), -1);
	cr_assert_eq(shp_log_level_from_string(""), -1);
	cr_assert_eq(shp_log_level_from_string(NULL), -1);
}

Test(log, level_filter)
{
	char *out, *lines[8];

	capture(SHP_LOG_WARN, SHP_LOG_LOGFMT);
	cr_assert_eq(shp_log_get_level(), SHP_LOG_WARN);
	cr_assert(shp_log_is_enabled(SHP_LOG_ERROR));
	cr_assert(shp_log_is_enabled(SHP_LOG_WARN));
	cr_assert_not(shp_log_is_enabled(SHP_LOG_INFO));
	cr_assert_not(shp_log_is_enabled(SHP_LOG_DEBUG));
	log_debug("d");
	log_info("i");
	shp_log_fields(SHP_LOG_INFO, "i2", NULL);
	log_warn("w");
	log_error("e");
	out = captured();
	cr_assert_eq(split_lines(out, lines, 8), 2, "only warn and error pass");
	cr_assert_not_null(strstr(lines[0], " level=warn msg=w"), "%s", lines[0]);
	cr_assert_not_null(strstr(lines[1], " level=error msg=e"), "%s", lines[1]);
	free(out);

	capture(SHP_LOG_DEBUG, SHP_LOG_LOGFMT);
	log_debug("d");
	out = captured();
	cr_assert_eq(split_lines(out, lines, 8), 1);
	free(out);
}

/* ---- line formats ---- */

Test(log, logfmt_line_reads_back)
{
	json_auto_t *f =
		json_pack("{s:s,s:i,s:b,s:s,s:[i,s],s:n,s:s,s:s}", "vm", "web 1", "n", 3, "ok", 1,
			  "empty", "", "list", 1, "a b", "z", "password", "pw", "eq", "a=b");
	char *out, *lines[4];
	json_auto_t *p = NULL;

	capture(SHP_LOG_INFO, SHP_LOG_LOGFMT);
	shp_log_ctx_set("req", "ab12");
	shp_log_ctx_set("worker", "3");
	shp_log_fields(SHP_LOG_INFO, "vm \"started\"\nsecond line\\", f);
	log_info("plain");
	out = captured();
	cr_assert_eq(split_lines(out, lines, 4), 2);
	cr_assert_eq(strncmp(lines[0], "ts=", 3), 0);
	p = parse_logfmt(lines[0]);
	cr_assert_not_null(p, "not logfmt: %s", lines[0]);
	cr_assert_eq(strlen(json_string_value(json_object_get(p, "ts"))), 27);
	cr_assert_str_eq(json_string_value(json_object_get(p, "level")), "info");
	cr_assert_str_eq(json_string_value(json_object_get(p, "msg")),
			 "vm \"started\"\nsecond line\\");
	cr_assert_str_eq(json_string_value(json_object_get(p, "req")), "ab12");
	cr_assert_str_eq(json_string_value(json_object_get(p, "worker")), "3");
	cr_assert_str_eq(json_string_value(json_object_get(p, "vm")), "web 1");
	cr_assert_str_eq(json_string_value(json_object_get(p, "n")), "3");
	cr_assert_str_eq(json_string_value(json_object_get(p, "ok")), "true");
	cr_assert_str_eq(json_string_value(json_object_get(p, "empty")), "");
	cr_assert_str_eq(json_string_value(json_object_get(p, "list")), "[1,\"a b\"]");
	cr_assert_str_eq(json_string_value(json_object_get(p, "z")), "null");
	cr_assert_str_eq(json_string_value(json_object_get(p, "password")), "***");
	cr_assert_str_eq(json_string_value(json_object_get(p, "eq")), "a=b");
	cr_assert_not_null(strstr(lines[0], " req=ab12 worker=3 vm="), "context before fields");
	cr_assert_not_null(strstr(lines[1], "msg=plain req=ab12 worker=3"), "%s", lines[1]);
	free(out);
}

Test(log, json_line_reads_back)
{
	json_auto_t *f =
		json_pack("{s:s,s:{s:{s:{s:s,s:i}}},s:[{s:s}],s:f}", "vm", "web-1", "a", "b", "c",
			  "token", "t0k", "n", 1, "arr", "secret", "s", "ratio", 0.5);
	char *out, *lines[4];
	json_auto_t *p = NULL;
	json_error_t jerr;
	const char *key;
	json_t *v;
	const char *order[] = {"ts", "level", "msg", "req", "vm", "a", "arr", "ratio"};
	size_t i = 0;

	capture(SHP_LOG_INFO, SHP_LOG_JSON);
	shp_log_ctx_set("req", "ab12");
	shp_log_fields(SHP_LOG_WARN, "tab\there \xe2\x9c\x93 \x01 password=hunter2", f);
	out = captured();
	cr_assert_eq(split_lines(out, lines, 4), 1);
	p = json_loads(lines[0], JSON_REJECT_DUPLICATES, &jerr);
	cr_assert_not_null(p, "%s: %s", jerr.text, lines[0]);
	json_object_foreach(p, key, v)
	{
		cr_assert_lt(i, sizeof(order) / sizeof(order[0]));
		cr_assert_str_eq(key, order[i], "key %zu", i);
		i++;
	}
	cr_assert_eq(i, sizeof(order) / sizeof(order[0]));
	cr_assert_str_eq(json_string_value(json_object_get(p, "level")), "warn");
	cr_assert_str_eq(json_string_value(json_object_get(p, "msg")),
			 "tab\there \xe2\x9c\x93 \x01 password=***");
	cr_assert_str_eq(
		json_string_value(json_object_get(
			json_object_get(json_object_get(json_object_get(p, "a"), "b"), "c"),
			"token")),
		"***");
	cr_assert_eq(
		json_integer_value(json_object_get(
			json_object_get(json_object_get(json_object_get(p, "a"), "b"), "c"), "n")),
		1);
	cr_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(json_object_get(p, "arr"), 0), "secret")),
			 "***");
	cr_assert(json_real_value(json_object_get(p, "ratio")) == 0.5);
	cr_assert_str_eq(json_string_value(json_object_get(p, "req")), "ab12");
	free(out);
}

Test(log, reserved_and_odd_keys)
{
	json_auto_t *f = json_pack("{s:s,s:s,s:s,s:s}", "msg", "m2", "ts", "t2", "a b=c", "v",
				   "req", "field wins");
	char *out, *lines[2];
	json_auto_t *p = NULL;

	capture(SHP_LOG_INFO, SHP_LOG_LOGFMT);
	shp_log_ctx_set("req", "ctx");
	shp_log_fields(SHP_LOG_INFO, "m", f);
	out = captured();
	cr_assert_eq(split_lines(out, lines, 2), 1);
	p = parse_logfmt(lines[0]);
	cr_assert_not_null(p, "%s", lines[0]);
	cr_assert_str_eq(json_string_value(json_object_get(p, "msg")), "m");
	cr_assert_str_eq(json_string_value(json_object_get(p, "_msg")), "m2");
	cr_assert_str_eq(json_string_value(json_object_get(p, "_ts")), "t2");
	cr_assert_str_eq(json_string_value(json_object_get(p, "a_b_c")), "v");
	cr_assert_str_eq(json_string_value(json_object_get(p, "req")), "field wins");
	cr_assert_null(strstr(lines[0], "ctx"));
	free(out);
}

Test(log, secrets_in_messages_and_context_are_masked)
{
	char *out, *lines[4];

	capture(SHP_LOG_INFO, SHP_LOG_LOGFMT);
	shp_log_ctx_set("token", "ctx-secret");
	shp_log_ctx_set("dsn", "postgres://u:ctxpw@h/db");
	log_info("connect postgres://app:dbpw@db/app with password=hunter2 and "
		 "Bearer abc.def and shp_AAAAAAAAAAAAAAAAAAAAAAAA");
	out = captured();
	cr_assert_eq(split_lines(out, lines, 4), 1);
	cr_assert_null(strstr(lines[0], "dbpw"), "%s", lines[0]);
	cr_assert_null(strstr(lines[0], "hunter2"));
	cr_assert_null(strstr(lines[0], "abc.def"));
	cr_assert_null(strstr(lines[0], "AAAAAAAAAAAAAAAAAAAA"));
	cr_assert_null(strstr(lines[0], "ctx-secret"));
	cr_assert_null(strstr(lines[0], "ctxpw"));
	cr_assert_not_null(strstr(lines[0], "token=***"), "%s", lines[0]);
	cr_assert_not_null(strstr(lines[0], "dsn=postgres://u:***@h/db"), "%s", lines[0]);
	free(out);
}

Test(log, context_set_unset_clear_and_bounds)
{
	char *out, *lines[8], big[200];
	json_auto_t *p = NULL;

	capture(SHP_LOG_INFO, SHP_LOG_JSON);
	shp_log_ctx_set("a", "1");
	shp_log_ctx_set("b", "2");
	shp_log_ctx_set("a", "3");
	shp_log_ctx_set("c", NULL);
	log_info("one");
	shp_log_ctx_unset("a");
	shp_log_ctx_unset("nothing");
	log_info("two");
	shp_log_ctx_clear();
	for (int i = 0; i < 10; i++) {
		char k[8];

		(void)snprintf(k, sizeof(k), "k%d", i);
		shp_log_ctx_set(k, "v");
	}
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	shp_log_ctx_set("k0", big);
	log_info("three");
	out = captured();
	cr_assert_eq(split_lines(out, lines, 8), 3);
	cr_assert_not_null(strstr(lines[0], "\"msg\":\"one\",\"a\":\"3\",\"b\":\"2\"}"), "%s",
			   lines[0]);
	cr_assert_not_null(strstr(lines[1], "\"msg\":\"two\",\"b\":\"2\"}"), "%s", lines[1]);
	p = json_loads(lines[2], 0, NULL);
	cr_assert_eq(json_object_size(p), 3 + 8, "at most 8 context entries");
	cr_assert_eq(strlen(json_string_value(json_object_get(p, "k0"))), 64);
	cr_assert_null(json_object_get(p, "k8"));
	free(out);
}

static void *clear_in_thread(void *arg)
{
	shp_log_ctx_set("req", "other");
	shp_log_ctx_clear();
	return arg;
}

Test(log, context_is_per_thread)
{
	pthread_t t;
	char *out, *lines[4];

	capture(SHP_LOG_INFO, SHP_LOG_LOGFMT);
	shp_log_ctx_set("req", "main");
	cr_assert_eq(pthread_create(&t, NULL, clear_in_thread, NULL), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	log_info("x");
	out = captured();
	cr_assert_eq(split_lines(out, lines, 4), 1);
	cr_assert_not_null(strstr(lines[0], "req=main"), "%s", lines[0]);
	free(out);
}

Test(log, errno_is_preserved_and_percent_m_works)
{
	char *out, *lines[2];

	capture(SHP_LOG_INFO, SHP_LOG_LOGFMT);
	errno = ENOENT;
	log_info("open failed: %m");
	cr_assert_eq(errno, ENOENT);
	out = captured();
	cr_assert_eq(split_lines(out, lines, 2), 1);
	cr_assert_not_null(strstr(lines[0], "No such file or directory"), "%s", lines[0]);
	free(out);
}

/* ---- truncation ---- */

static void check_long_message(enum shp_log_format format)
{
	size_t n = 100 * 1024;
	char *msg = malloc(n + 1), *out, *lines[2];
	json_auto_t *f = json_pack("{s:s}", "after", "kept");

	cr_assert_not_null(msg);
	for (size_t i = 0; i < n; i++)
		msg[i] = "ab \xc3\xa9\""[i % 6];
	msg[n] = '\0';
	capture(SHP_LOG_INFO, format);
	shp_log_ctx_set("req", "r1");
	log_info("%s", msg);
	shp_log_fields(SHP_LOG_INFO, msg, f);
	out = captured();
	cr_assert_eq(split_lines(out, lines, 2), 2);
	for (int k = 0; k < 2; k++) {
		json_auto_t *p = format == SHP_LOG_JSON ? json_loads(lines[k], 0, NULL)
							: parse_logfmt(lines[k]);
		const char *m;

		cr_assert_leq(strlen(lines[k]) + 1, 16 * 1024, "line %d is too long", k);
		cr_assert_gt(strlen(lines[k]), 8 * 1024, "line %d was cut too much", k);
		cr_assert_not_null(p, "line %d does not parse", k);
		m = json_string_value(json_object_get(p, "msg"));
		cr_assert_not_null(m);
		cr_assert_eq(strcmp(m + strlen(m) - strlen(TRUNC_MARK), TRUNC_MARK), 0);
		cr_assert_str_eq(json_string_value(json_object_get(p, "req")), "r1");
		if (k == 1)
			cr_assert_str_eq(json_string_value(json_object_get(p, "after")), "kept");
	}
	free(out);
	free(msg);
}

Test(log, long_messages_are_cut_not_dropped_logfmt)
{
	check_long_message(SHP_LOG_LOGFMT);
}

Test(log, long_messages_are_cut_not_dropped_json)
{
	check_long_message(SHP_LOG_JSON);
}

Test(log, huge_fields_are_bounded)
{
	size_t n = 64 * 1024;
	char *big = malloc(n + 1), *out, *lines[2];
	json_auto_t *f = json_object();
	json_auto_t *p = NULL;
	const char *first;

	cr_assert_not_null(big);
	memset(big, 'v', n);
	big[n] = '\0';
	json_object_set_new(f, "first", json_string(big));
	json_object_set_new(f, "second", json_pack("[s,s,s]", big, big, big));
	for (int i = 0; i < 50; i++) {
		char k[16];

		(void)snprintf(k, sizeof(k), "f%02d", i);
		json_object_set_new(f, k,
				    json_string("0123456789012345678901234567890123456789"
						"0123456789012345678901234567890123456789"
						"0123456789012345678901234567890123456789"));
	}
	capture(SHP_LOG_INFO, SHP_LOG_JSON);
	shp_log_fields(SHP_LOG_INFO, "m", f);
	out = captured();
	cr_assert_eq(split_lines(out, lines, 2), 1);
	cr_assert_leq(strlen(lines[0]) + 1, 16 * 1024);
	p = json_loads(lines[0], 0, NULL);
	cr_assert_not_null(p, "%s", lines[0]);
	cr_assert_str_eq(json_string_value(json_object_get(p, "msg")), "m");
	first = json_string_value(json_object_get(p, "first"));
	cr_assert_gt(strlen(first), 4000);
	cr_assert_leq(strlen(first), 4096);
	cr_assert_eq(strcmp(first + strlen(first) - strlen(TRUNC_MARK) - 3, "vvv" TRUNC_MARK), 0);
	cr_assert_str_eq(json_string_value(json_object_get(p, "second")), TRUNC_MARK);
	cr_assert(json_is_true(json_object_get(p, "_truncated")));
	free(out);
	free(big);
}

/* ---- one write per line, many threads ---- */

#define THREADS 4
#define LINES_PER_THREAD 1000

static void *writer(void *arg)
{
	int id = (int)(intptr_t)arg;
	char w[8];

	(void)snprintf(w, sizeof(w), "%d", id);
	shp_log_ctx_set("worker", w);
	for (int i = 0; i < LINES_PER_THREAD; i++) {
		json_auto_t *f = json_pack("{s:i,s:s}", "seq", i, "pad",
					   "................................................");

		if (i % 2)
			shp_log_fields(SHP_LOG_INFO, "tick \"quoted\" password=x", f);
		else
			log_info("tick %d from worker %d with token=abc", i, id);
	}
	return NULL;
}

struct drain {
	int fd;
	struct shp_buf out;
};

static void *drainer(void *arg)
{
	struct drain *d = arg;
	char chunk[8192];
	ssize_t n;

	while ((n = read(d->fd, chunk, sizeof(chunk))) > 0)
		if (shp_buf_addn(&d->out, chunk, (size_t)n) < 0)
			break;
	return NULL;
}

static void check_threads(enum shp_log_format format)
{
	static char *lines[THREADS * LINES_PER_THREAD + 1];
	pthread_t t[THREADS], rd;
	struct drain d = {.out = SHP_BUF_INIT(64u << 20)};
	int seen[THREADS][LINES_PER_THREAD] = {{0}};
	size_t n;

	cr_assert_eq(pipe(cap_fd), 0);
	d.fd = cap_fd[0];
	shp_log_setup(SHP_LOG_INFO, format, cap_fd[1]);
	cr_assert_eq(pthread_create(&rd, NULL, drainer, &d), 0);
	for (int i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i), 0);
	for (int i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_join(t[i], NULL), 0);
	close(cap_fd[1]);
	cr_assert_eq(pthread_join(rd, NULL), 0);
	close(cap_fd[0]);

	n = split_lines(d.out.buf, lines, SHP_ARRAY_SIZE(lines));
	cr_assert_eq(n, THREADS * LINES_PER_THREAD);
	for (size_t i = 0; i < n; i++) {
		json_auto_t *p = format == SHP_LOG_JSON ? json_loads(lines[i], 0, NULL)
							: parse_logfmt(lines[i]);
		const char *w, *m;
		long seq;

		cr_assert_not_null(p, "line %zu is damaged: %s", i, lines[i]);
		w = json_string_value(json_object_get(p, "worker"));
		m = json_string_value(json_object_get(p, "msg"));
		cr_assert_not_null(w);
		cr_assert_not_null(m);
		cr_assert_not_null(strstr(m, "***"), "%s", m);
		if (json_object_get(p, "seq")) {
			json_t *s = json_object_get(p, "seq");

			seq = json_is_integer(s) ? (long)json_integer_value(s)
						 : strtol(json_string_value(s), NULL, 10);
			cr_assert_not_null(json_object_get(p, "pad"));
		} else {
			cr_assert_eq(sscanf(m, "tick %ld", &seq), 1, "%s", m);
		}
		cr_assert(seq >= 0 && seq < LINES_PER_THREAD);
		seen[atoi(w)][seq]++;
	}
	for (int i = 0; i < THREADS; i++)
		for (int k = 0; k < LINES_PER_THREAD; k++)
			cr_assert_eq(seen[i][k], 1, "worker %d line %d seen %d times", i, k,
				     seen[i][k]);
	shp_buf_release(&d.out);
}

Test(log, one_write_per_line_from_four_threads_json)
{
	check_threads(SHP_LOG_JSON);
}

Test(log, one_write_per_line_from_four_threads_logfmt)
{
	check_threads(SHP_LOG_LOGFMT);
}
