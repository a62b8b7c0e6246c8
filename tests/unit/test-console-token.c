/*
 * Console tokens: seal and open, a previous key still opening its tokens after a rotation,
 * and everything refused: altered, truncated, another key, foreign text, claims out of bounds,
 * another user, expired, issued in the future. No message ever quotes the token.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "console.h"
#include "error.h"
#include "secretbox.h"

static struct shd_secretbox *box_of(unsigned char fill)
{
	unsigned char key[SHD_SECRETBOX_KEY_LEN];

	memset(key, fill, sizeof(key));
	return shd_secretbox_new(key);
}

/* Keys whose current key is filled with cur, then the previous ones (0 ends the list). */
static struct shd_console_keys *keys_of(unsigned char cur, unsigned char prev)
{
	struct shd_secretbox *boxes[2] = {box_of(cur), prev ? box_of(prev) : NULL};
	struct shd_console_keys *k = shd_console_keys_new(boxes, prev ? 2 : 1);

	cr_assert_not_null(k);
	return k;
}

static struct shd_console_claims claims(void)
{
	struct shd_console_claims c = {
		.jti = "0123456789abcdef0123456789abcdef",
		.sub = 42,
		.vm_id = 7,
		.ns = "team-a",
		.name = "web-1",
		.iat = 1700000000,
		.exp = 1700000300,
	};
	return c;
}

static char *seal(const struct shd_console_keys *k, const struct shd_console_claims *c)
{
	struct shp_error err = SHP_ERROR_INIT;
	char *t = NULL;

	cr_assert_eq(shd_console_token_seal(k, c, &t, &err), 0, "%s", err.msg);
	return t;
}

static void expect_invalid(const struct shd_console_keys *k, const char *token, const char *what)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_console_claims c;

	cr_assert_eq(shd_console_token_open(k, token, &c, &err), -SHP_E_INVAL, "%s", what);
	cr_assert_str_eq(shp_error_api_code_of(&err), "TOKEN_INVALID", "%s", what);
	if (strlen(token) > 20)
		cr_assert_null(strstr(err.msg, token + strlen(token) - 16), "no token in '%s'",
			       err.msg);
}

Test(console_token, round_trip)
{
	_cleanup_(shd_console_keys_freep) struct shd_console_keys *k = keys_of(1, 0);
	struct shd_console_claims in = claims(), out;
	struct shp_error err = SHP_ERROR_INIT;
	_cleanup_free_ char *t = seal(k, &in);

	cr_assert(strncmp(t, SHD_CONSOLE_TOKEN_PREFIX, strlen(SHD_CONSOLE_TOKEN_PREFIX)) == 0);
	cr_assert_null(strstr(t, "web-1"), "the claims are not readable in the token");
	cr_assert_eq(shd_console_token_open(k, t, &out, &err), 0, "%s", err.msg);
	cr_assert_str_eq(out.jti, in.jti);
	cr_assert_eq(out.sub, 42);
	cr_assert_eq(out.vm_id, 7);
	cr_assert_str_eq(out.ns, "team-a");
	cr_assert_str_eq(out.name, "web-1");
	cr_assert_eq(out.iat, in.iat);
	cr_assert_eq(out.exp, in.exp);
	cr_assert_str_eq(out.key_id, shd_console_keys_current_id(k));
}

Test(console_token, two_seals_differ)
{
	_cleanup_(shd_console_keys_freep) struct shd_console_keys *k = keys_of(1, 0);
	struct shd_console_claims c = claims();
	_cleanup_free_ char *a = seal(k, &c);
	_cleanup_free_ char *b = seal(k, &c);

	cr_assert_str_neq(a, b, "a fresh nonce per seal");
}

Test(console_token, previous_key_opens_after_rotation)
{
	_cleanup_(shd_console_keys_freep) struct shd_console_keys *old = keys_of(1, 0);
	_cleanup_(shd_console_keys_freep) struct shd_console_keys *rotated = keys_of(2, 1);
	_cleanup_(shd_console_keys_freep) struct shd_console_keys *forgot = keys_of(2, 0);
	struct shd_console_claims c = claims(), out;
	struct shp_error err = SHP_ERROR_INIT;
	_cleanup_free_ char *t = seal(old, &c);
	_cleanup_free_ char *fresh = seal(rotated, &c);

	cr_assert_eq(shd_console_token_open(rotated, t, &out, &err), 0, "%s", err.msg);
	cr_assert_str_eq(out.key_id, shd_console_keys_current_id(old));
	cr_assert_eq(shd_console_token_open(rotated, fresh, &out, &err), 0, "%s", err.msg);
	cr_assert_str_eq(out.key_id, shd_console_keys_current_id(rotated));
	expect_invalid(forgot, t, "a key no longer held");
	expect_invalid(old, fresh, "a key not yet held");
}

Test(console_token, tampered_and_malformed)
{
	_cleanup_(shd_console_keys_freep) struct shd_console_keys *k = keys_of(1, 0);
	struct shd_console_claims c = claims();
	_cleanup_free_ char *t = seal(k, &c);
	_cleanup_free_ char *bad = strdup(t);
	size_t n = strlen(t);

	bad[n - 5] = bad[n - 5] == '0' ? '1' : '0';
	expect_invalid(k, bad, "one hex digit changed");
	memcpy(bad, t, n + 1);
	bad[n - 2] = '\0';
	expect_invalid(k, bad, "truncated");
	memcpy(bad, t, n + 1);
	bad[strlen(SHD_CONSOLE_TOKEN_PREFIX) + 2] ^= 1;
	expect_invalid(k, bad, "another key id");
	memcpy(bad, t, n + 1);
	bad[n - 1] = 'x';
	expect_invalid(k, bad, "not hex");
	expect_invalid(k, "", "empty");
	expect_invalid(k, "Bearer abc", "foreign");
	expect_invalid(k, "shvnc1.", "prefix only");
	expect_invalid(k, "shvnc1.0123abcd.", "no blob");
}

Test(console_token, seal_refuses_claims_out_of_bounds)
{
	_cleanup_(shd_console_keys_freep) struct shd_console_keys *k = keys_of(1, 0);
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_console_claims c = claims();
	char *t = NULL;

	c.exp = c.iat + SHD_CONSOLE_TTL_MAX_S + 1;
	cr_assert_eq(shd_console_token_seal(k, &c, &t, &err), -SHP_E_INVAL, "over 2 hours");
	c = claims();
	c.exp = c.iat;
	cr_assert_eq(shd_console_token_seal(k, &c, &t, &err), -SHP_E_INVAL, "no lifetime");
	c = claims();
	c.sub = 0;
	cr_assert_eq(shd_console_token_seal(k, &c, &t, &err), -SHP_E_INVAL, "no subject");
	c = claims();
	strcpy(c.jti, "XYZ");
	cr_assert_eq(shd_console_token_seal(k, &c, &t, &err), -SHP_E_INVAL, "a bad jti");
	cr_assert_null(t);
}

Test(console_token, claims_checks)
{
	struct shd_console_claims c = claims();
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_console_claims_check(&c, 42, c.iat + 10, &err), 0, "%s", err.msg);
	cr_assert_eq(shd_console_claims_check(&c, 43, c.iat + 10, &err), -SHP_E_PERM);
	cr_assert_str_eq(shp_error_api_code_of(&err), "TOKEN_NOT_YOURS");
	shp_error_clear(&err);
	cr_assert_eq(shd_console_claims_check(&c, 42, c.exp, &err), -SHP_E_PERM);
	cr_assert_str_eq(shp_error_api_code_of(&err), "TOKEN_EXPIRED");
	shp_error_clear(&err);
	cr_assert_eq(shd_console_claims_check(&c, 42, c.exp + 3600, &err), -SHP_E_PERM);
	cr_assert_str_eq(shp_error_api_code_of(&err), "TOKEN_EXPIRED");
	shp_error_clear(&err);
	cr_assert_eq(shd_console_claims_check(&c, 42, c.iat - 600, &err), -SHP_E_INVAL,
		     "issued in the future");
	shp_error_clear(&err);
	cr_assert_eq(shd_console_claims_check(&c, 42, c.iat - 30, &err), 0, "clock skew allowed");
}

Test(console_token, keys_load_from_files)
{
	char dir[] = "/tmp/shp-console-keys.XXXXXX";
	char cur[64], prev[64], list[160];
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_console_keys *k;

	cr_assert_not_null(mkdtemp(dir));
	(void)snprintf(cur, sizeof(cur), "%s/cur.key", dir);
	(void)snprintf(prev, sizeof(prev), "%s/prev.key", dir);
	k = shd_console_keys_load(prev, NULL, &err); /* creates prev.key */
	cr_assert_not_null(k, "%s", err.msg);
	shd_console_keys_free(k);
	(void)snprintf(list, sizeof(list), "%s,%s/absent.key", prev, dir);
	cr_assert_null(shd_console_keys_load(cur, list, &err), "a listed file must exist");
	cr_assert(strstr(err.msg, "absent.key"), "%s", err.msg);
	shp_error_clear(&err);
	k = shd_console_keys_load(cur, prev, &err);
	cr_assert_not_null(k, "%s", err.msg);
	shd_console_keys_free(k);
	(void)unlink(cur);
	(void)unlink(prev);
	(void)rmdir(dir);
}
