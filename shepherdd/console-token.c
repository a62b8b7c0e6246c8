/*
 * Console tokens: the claims as compact JSON sealed with AES-256-GCM (secretbox) under the
 * cluster-credential key, written "shvnc1.KEYID.HEX". The key id picks the key that opens it,
 * so tokens sealed before a key rotation still open while the old key is listed as a previous
 * one. Nothing here touches the database: single use is the caller's (console_tokens).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "console.h"
#include "error.h"
#include "json.h"
#include "secretbox.h"
#include "util.h"

#define TOKEN_AAD "shepherd console token v1"
#define CLOCK_SKEW_S 60

struct shd_console_keys {
	struct shd_secretbox *boxes[SHD_CONSOLE_KEYS_MAX]; /* [0] seals */
	size_t n;
};

struct shd_console_keys *shd_console_keys_new(struct shd_secretbox **boxes, size_t n)
{
	struct shd_console_keys *k =
		n >= 1 && n <= SHD_CONSOLE_KEYS_MAX ? calloc(1, sizeof(*k)) : NULL;

	if (!k) {
		for (size_t i = 0; i < n; i++)
			shd_secretbox_free(boxes[i]);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		k->boxes[i] = boxes[i];
	k->n = n;
	return k;
}

struct shd_console_keys *shd_console_keys_free(struct shd_console_keys *k)
{
	if (!k)
		return NULL;
	for (size_t i = 0; i < k->n; i++)
		shd_secretbox_free(k->boxes[i]);
	free(k);
	return NULL;
}

const char *shd_console_keys_current_id(const struct shd_console_keys *k)
{
	return shd_secretbox_key_id(k->boxes[0]);
}

/* One previous key file (the list's item from..to); it must exist already. */
static struct shd_secretbox *load_previous(const char *from, size_t len, struct shp_error *err)
{
	char path[4096];

	if (len == 0 || len >= sizeof(path)) {
		shp_error_set(err, SHP_E_INVAL,
			      "console.previous_key_files: an empty or too long "
			      "file name");
		return NULL;
	}
	memcpy(path, from, len);
	path[len] = '\0';
	if (access(path, F_OK) != 0) {
		shp_error_errno(err, errno, "previous console key file '%s'", path);
		return NULL;
	}
	return shd_secretbox_load(path, err);
}

struct shd_console_keys *shd_console_keys_load(const char *current_path, const char *previous,
					       struct shp_error *err)
{
	struct shd_secretbox *boxes[SHD_CONSOLE_KEYS_MAX] = {0};
	struct shd_console_keys *k;
	size_t n = 0;
	bool ok;

	boxes[n] = shd_secretbox_load(current_path, err);
	ok = boxes[n++] != NULL;
	for (const char *p = previous; ok && p && *p;) {
		size_t len = strcspn(p, ",");

		if (n == SHD_CONSOLE_KEYS_MAX) {
			shp_error_set(err, SHP_E_LIMIT,
				      "console.previous_key_files: more than %d files",
				      SHD_CONSOLE_KEYS_MAX - 1);
			ok = false;
			break;
		}
		boxes[n] = load_previous(p, len, err);
		ok = boxes[n++] != NULL;
		p += len + (p[len] == ',');
	}
	if (!ok) {
		for (size_t i = 0; i < n; i++)
			shd_secretbox_free(boxes[i]);
		return NULL;
	}
	k = shd_console_keys_new(boxes, n);
	if (!k)
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return k;
}

/* ---- claims as JSON ------------------------------------------------------------------------ */

static bool claims_in_bounds(const struct shd_console_claims *c)
{
	return strlen(c->jti) == 32 && strspn(c->jti, "0123456789abcdef") == 32 && c->sub > 0 &&
	       c->vm_id > 0 && c->ns[0] && c->name[0] && c->iat > 0 && c->exp > c->iat &&
	       c->exp - c->iat <= SHD_CONSOLE_TTL_MAX_S;
}

static json_t *claims_json(const struct shd_console_claims *c)
{
	return json_pack("{s:s,s:I,s:I,s:s,s:s,s:I,s:I}", "jti", c->jti, "sub", (json_int_t)c->sub,
			 "vm", (json_int_t)c->vm_id, "namespace", c->ns, "name", c->name, "iat",
			 (json_int_t)c->iat, "exp", (json_int_t)c->exp);
}

static int invalid(struct shp_error *err, const char *why)
{
	shp_error_set(err, SHP_E_INVAL, "console token is not valid: %s", why);
	shp_error_api_code(err, "TOKEN_INVALID");
	return -SHP_E_INVAL;
}

static int claims_parse(const char *text, struct shd_console_claims *c, struct shp_error *err)
{
	json_auto_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	const char *jti = NULL, *ns = NULL, *name = NULL;
	json_int_t sub = 0, vm = 0, iat = 0, exp = 0;

	if (!j || json_unpack(j, "{s:s,s:I,s:I,s:s,s:s,s:I,s:I !}", "jti", &jti, "sub", &sub, "vm",
			      &vm, "namespace", &ns, "name", &name, "iat", &iat, "exp", &exp) < 0)
		return invalid(err, "its claims are malformed");
	if (strlen(jti) >= sizeof(c->jti) || strlen(ns) >= sizeof(c->ns) ||
	    strlen(name) >= sizeof(c->name))
		return invalid(err, "its claims are malformed");
	(void)snprintf(c->jti, sizeof(c->jti), "%s", jti);
	(void)snprintf(c->ns, sizeof(c->ns), "%s", ns);
	(void)snprintf(c->name, sizeof(c->name), "%s", name);
	c->sub = sub;
	c->vm_id = vm;
	c->iat = iat;
	c->exp = exp;
	return claims_in_bounds(c) ? 0 : invalid(err, "its claims are out of bounds");
}

/* ---- seal and open -------------------------------------------------------------------------- */

int shd_console_token_seal(const struct shd_console_keys *k, const struct shd_console_claims *c,
			   char **ret, struct shp_error *err)
{
	json_auto_t *j = NULL;
	_cleanup_free_ char *text = NULL;
	unsigned char *blob = NULL;
	size_t len = 0, prefix = strlen(SHD_CONSOLE_TOKEN_PREFIX) + SHD_SECRETBOX_KEY_ID_LEN + 1;
	char *out;

	if (!claims_in_bounds(c))
		return shp_error_set(err, SHP_E_INVAL, "console token claims out of bounds");
	j = claims_json(c);
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (!text)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (shd_secretbox_seal(k->boxes[0], text, strlen(text), TOKEN_AAD, &blob, &len, err) < 0)
		return -err->code;
	out = malloc(prefix + 2 * len + 1);
	if (!out) {
		free(blob);
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	(void)snprintf(out, prefix + 1, "%s%s.", SHD_CONSOLE_TOKEN_PREFIX,
		       shd_secretbox_key_id(k->boxes[0]));
	shp_hex_encode(blob, len, out + prefix);
	free(blob);
	*ret = out;
	return 0;
}

static const struct shd_secretbox *key_by_id(const struct shd_console_keys *k, const char *id)
{
	for (size_t i = 0; i < k->n; i++)
		if (strncmp(shd_secretbox_key_id(k->boxes[i]), id, SHD_SECRETBOX_KEY_ID_LEN) == 0)
			return k->boxes[i];
	return NULL;
}

/* The hex after the key id, decoded into *ret (owned) of *ret_len bytes. */
static int hex_blob(const char *hex, unsigned char **ret, size_t *ret_len, struct shp_error *err)
{
	size_t n = strlen(hex);
	unsigned char *b;

	if (n == 0 || n % 2 || n / 2 < SHD_SECRETBOX_OVERHEAD)
		return invalid(err, "it is malformed");
	b = malloc(n / 2);
	if (!b)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	for (size_t i = 0; i < n / 2; i++) {
		int hi = shp_hex_digit(hex[2 * i]), lo = shp_hex_digit(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(b);
			return invalid(err, "it is malformed");
		}
		b[i] = (unsigned char)(hi << 4 | lo);
	}
	*ret = b;
	*ret_len = n / 2;
	return 0;
}

int shd_console_token_open(const struct shd_console_keys *k, const char *token,
			   struct shd_console_claims *ret, struct shp_error *err)
{
	size_t pl = strlen(SHD_CONSOLE_TOKEN_PREFIX);
	const struct shd_secretbox *box;
	_cleanup_free_ unsigned char *blob = NULL;
	char *plain = NULL;
	size_t len = 0, plen = 0;
	struct shd_console_claims c = {0};
	int rc;

	if (!token || strlen(token) > SHD_CONSOLE_TOKEN_MAX ||
	    strncmp(token, SHD_CONSOLE_TOKEN_PREFIX, pl) != 0 ||
	    strlen(token) < pl + SHD_SECRETBOX_KEY_ID_LEN + 1 ||
	    token[pl + SHD_SECRETBOX_KEY_ID_LEN] != '.')
		return invalid(err, "it is malformed");
	box = key_by_id(k, token + pl);
	if (!box)
		return invalid(err, "it was sealed with a key this daemon does not hold");
	if (hex_blob(token + pl + SHD_SECRETBOX_KEY_ID_LEN + 1, &blob, &len, err) < 0)
		return -err->code;
	if (shd_secretbox_open(box, blob, len, TOKEN_AAD, &plain, &plen, NULL) < 0)
		return invalid(err, "it was altered or not issued by shepherd");
	rc = claims_parse(plain, &c, err);
	shd_secretbox_wipe_free(plain, plen + 1);
	if (rc < 0)
		return rc;
	(void)snprintf(c.key_id, sizeof(c.key_id), "%s", shd_secretbox_key_id(box));
	*ret = c;
	return 0;
}

int shd_console_claims_check(const struct shd_console_claims *c, int64_t user_id, int64_t now,
			     struct shp_error *err)
{
	if (c->sub != user_id) {
		shp_error_set(err, SHP_E_PERM, "this console token was issued to another user");
		shp_error_api_code(err, "TOKEN_NOT_YOURS");
		return -SHP_E_PERM;
	}
	if (now >= c->exp) {
		shp_error_set(err, SHP_E_PERM, "this console token expired %" PRId64 " s ago",
			      now - c->exp);
		shp_error_api_code(err, "TOKEN_EXPIRED");
		return -SHP_E_PERM;
	}
	if (now + CLOCK_SKEW_S < c->iat)
		return invalid(err, "it was issued in the future");
	return 0;
}
