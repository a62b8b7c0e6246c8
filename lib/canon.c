/*
 * Canonical JSON (sorted keys, no whitespace, minimal escapes, shortest round-trip reals) and
 * SHA-256 through OpenSSL's EVP interface. The plan hash is the SHA-256 of this form, so any
 * change to the output here changes every stored hash.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "buf.h"
#include "canon.h"
#include "error.h"
#include "util.h"

/* jansson's own parser limit; deeper trees can only come from code, never from input. */
#define CANON_DEPTH_MAX 2048
/* Bound of the text shp_canon_sha256_hex hashes. */
#define CANON_HASH_INPUT_MAX (64u * 1024 * 1024)

struct member {
	const char *key;
	size_t key_len;
	json_t *value;
};

static int member_cmp(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = memcmp(x->key, y->key, n);

	if (c != 0)
		return c;
	return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static int add_string(struct shp_buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;
	int r;

	r = shp_buf_addch(out, '"');
	for (size_t i = 0; r == 0 && i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7] = "\\u00";

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		r = shp_buf_addn(out, s + run, i - run);
		run = i + 1;
		if (r < 0)
			break;
		switch (c) {
		case '"': r = shp_buf_add(out, "\\\""); break;
		case '\\': r = shp_buf_add(out, "\\\\"); break;
		case '\b': r = shp_buf_add(out, "\\b"); break;
		case '\f': r = shp_buf_add(out, "\\f"); break;
		case '\n': r = shp_buf_add(out, "\\n"); break;
		case '\r': r = shp_buf_add(out, "\\r"); break;
		case '\t': r = shp_buf_add(out, "\\t"); break;
		default:
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			esc[6] = '\0';
			r = shp_buf_add(out, esc);
			break;
		}
	}
	if (r == 0)
		r = shp_buf_addn(out, s + run, len - run);
	return r < 0 ? r : shp_buf_addch(out, '"');
}

/* The shortest of %.15g..%.17g that reads back to the same double; never looks like an int. */
static int add_real(struct shp_buf *out, double v)
{
	char text[40];

	if (!isfinite(v))
		return -SHP_E_INVAL;
	for (int prec = 15; prec <= 17; prec++) {
		(void)snprintf(text, sizeof(text), "%.*g", prec, v);
		if (strtod(text, NULL) == v)
			break;
	}
	if (strspn(text, "-0123456789") == strlen(text))
		return shp_buf_addf(out, "%s.0", text);
	return shp_buf_add(out, text);
}

static int canon(const json_t *j, struct shp_buf *out, int depth);

static int add_object(const json_t *j, struct shp_buf *out, int depth)
{
	_cleanup_free_ struct member *m = NULL;
	size_t n = json_object_size(j), i = 0;
	const char *key;
	size_t key_len;
	json_t *v;
	int r;

	if (n > 0 && !(m = calloc(n, sizeof(*m))))
		return -SHP_E_NOMEM;
	json_object_keylen_foreach((json_t *)j, key, key_len, v)
	{
		m[i++] = (struct member){.key = key, .key_len = key_len, .value = v};
	}
	if (n > 1)
		qsort(m, n, sizeof(*m), member_cmp);
	r = shp_buf_addch(out, '{');
	for (i = 0; r == 0 && i < n; i++) {
		if (i > 0 && (r = shp_buf_addch(out, ',')) < 0)
			break;
		if ((r = add_string(out, m[i].key, m[i].key_len)) < 0)
			break;
		if ((r = shp_buf_addch(out, ':')) < 0)
			break;
		r = canon(m[i].value, out, depth + 1);
	}
	return r < 0 ? r : shp_buf_addch(out, '}');
}

static int add_array(const json_t *j, struct shp_buf *out, int depth)
{
	size_t i;
	json_t *v;
	int r;

	r = shp_buf_addch(out, '[');
	json_array_foreach(j, i, v)
	{
		if (r == 0 && i > 0)
			r = shp_buf_addch(out, ',');
		if (r == 0)
			r = canon(v, out, depth + 1);
		if (r < 0)
			return r;
	}
	return r < 0 ? r : shp_buf_addch(out, ']');
}

static int canon(const json_t *j, struct shp_buf *out, int depth)
{
	/* A distinct code so that the caller can tell depth from size. */
	if (depth > CANON_DEPTH_MAX)
		return -SHP_E_UNPROCESSABLE;
	switch (json_typeof(j)) {
	case JSON_OBJECT: return add_object(j, out, depth);
	case JSON_ARRAY: return add_array(j, out, depth);
	case JSON_STRING: return add_string(out, json_string_value(j), json_string_length(j));
	case JSON_INTEGER: return shp_buf_addf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
	case JSON_REAL: return add_real(out, json_real_value(j));
	case JSON_TRUE: return shp_buf_add(out, "true");
	case JSON_FALSE: return shp_buf_add(out, "false");
	case JSON_NULL: return shp_buf_add(out, "null");
	}
	return -SHP_E_INVAL;
}

int shp_canon_json(const json_t *j, struct shp_buf *out, struct shp_error *err)
{
	size_t old_len = out->len;
	int r;

	if (!j)
		return shp_error_set(err, SHP_E_INTERNAL, "no JSON value to canonicalise");
	r = canon(j, out, 0);
	if (r == 0)
		return 0;
	shp_buf_truncate(out, old_len);
	if (r == -SHP_E_NOMEM)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory writing canonical JSON");
	if (r == -SHP_E_INVAL)
		return shp_error_set(err, SHP_E_INVAL,
				     "canonical JSON cannot hold a non-finite real");
	if (r == -SHP_E_UNPROCESSABLE)
		return shp_error_set(err, SHP_E_LIMIT, "JSON value nests deeper than %d levels",
				     CANON_DEPTH_MAX);
	return shp_error_set(err, SHP_E_LIMIT, "canonical JSON is longer than %zu bytes", out->max);
}

void shp_sha256(const void *data, size_t len, unsigned char out[SHP_SHA256_LEN])
{
	unsigned int n = 0;

	/*
	 * EVP_Digest fails only when OpenSSL cannot provide SHA-256 at all (out of memory, a broken
	 * provider setup). A made-up hash would silently bind approvals to the wrong plan, so stop.
	 */
	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != SHP_SHA256_LEN)
		abort();
}

void shp_sha256_hex(const void *data, size_t len, char out[SHP_SHA256_HEX_LEN + 1])
{
	unsigned char md[SHP_SHA256_LEN];

	shp_sha256(data, len, md);
	shp_hex_encode(md, sizeof(md), out);
}

int shp_canon_sha256_hex(const json_t *j, char out[SHP_SHA256_HEX_LEN + 1], struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf b = SHP_BUF_INIT(CANON_HASH_INPUT_MAX);
	int r;

	r = shp_canon_json(j, &b, err);
	if (r < 0)
		return r;
	shp_sha256_hex(b.buf, b.len, out);
	return 0;
}
