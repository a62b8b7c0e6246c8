/*
 * jansson helpers: bounded parsing (a cheap pre-scan refuses NUL bytes, invalid UTF-8 and deep
 * nesting before jansson sees the text), typed field getters that fill struct shp_error, the
 * unknown-field check and serialisation into a capped buffer.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "error.h"
#include "json.h"
#include "util.h"

/* Keys quoted in messages are cut to this many bytes, on a UTF-8 boundary. */
#define KEY_QUOTE_MAX 64

/* Where a pre-scan stopped: 1-based line, 1-based column (in characters), byte offset. */
struct text_pos {
	int line;
	int column;
	size_t offset;
};

/* Length of the longest prefix of s (at most max bytes) that ends on a character boundary. */
static int utf8_cut(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return (int)n;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return (int)max;
}

/* Length of the UTF-8 sequence announced by lead byte c, 0 if c cannot start one. */
static size_t utf8_seq_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		return 2;
	if ((c & 0xf0) == 0xe0)
		return 3;
	if ((c & 0xf8) == 0xf0)
		return 4;
	return 0;
}

static int malformed_at(struct shp_error *err, const struct text_pos *pos, const char *what)
{
	int r;

	r = shp_error_set(err, SHP_E_MALFORMED, "malformed JSON at line %d, column %d: %s",
			  pos->line, pos->column, what);
	shp_error_detail(err, "line", "%d", pos->line);
	shp_error_detail(err, "column", "%d", pos->column);
	shp_error_detail(err, "position", "%zu", pos->offset);
	return r;
}

/*
 * One pass over the raw text: refuse NUL bytes and invalid UTF-8, and count container nesting
 * outside strings so that jansson (which recurses) never sees more than max_depth levels.
 */
static int prescan(const char *data, size_t len, int max_depth, struct shp_error *err)
{
	struct text_pos pos = {.line = 1, .column = 0, .offset = 0};
	bool in_string = false, escaped = false;
	int depth = 0;
	char what[64];

	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)data[i];
		size_t n = utf8_seq_len(c);

		pos.offset = i;
		pos.column++;
		if (c == '\0')
			return malformed_at(err, &pos, "NUL byte in input");
		if (n == 0 || n > len - i || !shp_utf8_is_valid(data + i, n))
			return malformed_at(err, &pos, "invalid UTF-8");
		i += n;
		if (in_string) {
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
			continue;
		}
		switch (c) {
		case '"': in_string = true; break;
		case '[':
		case '{':
			if (++depth > max_depth) {
				(void)snprintf(what, sizeof(what), "nesting deeper than %d levels",
					       max_depth);
				return malformed_at(err, &pos, what);
			}
			break;
		case ']':
		case '}':
			if (depth > 0)
				depth--;
			break;
		case '\n':
			pos.line++;
			pos.column = 0;
			break;
		default: break;
		}
	}
	return 0;
}

json_t *shp_json_parse(const char *data, size_t len, int max_depth, struct shp_error *err)
{
	json_error_t jerr;
	struct text_pos pos;
	json_t *j;
	size_t tlen;

	if (!data && len > 0)
		return shp_error_set(err, SHP_E_INTERNAL, "no JSON text"), NULL;
	if (max_depth < 0)
		max_depth = 0;
	if (max_depth > JSON_PARSER_MAX_DEPTH)
		max_depth = JSON_PARSER_MAX_DEPTH;
	if (prescan(data ? data : "", len, max_depth, err) < 0)
		return NULL;
	j = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (j)
		return j;
	/* jansson cuts its text at a byte count; never hand on half a character. */
	tlen = strnlen(jerr.text, sizeof(jerr.text));
	while (tlen > 0 && !shp_utf8_is_valid(jerr.text, tlen))
		tlen--;
	jerr.text[tlen] = '\0';
	pos.line = jerr.line > 0 ? jerr.line : 1;
	pos.column = jerr.column > 0 ? jerr.column : 1;
	pos.offset = jerr.position > 0 ? (size_t)jerr.position : 0;
	(void)malformed_at(err, &pos, jerr.text);
	return NULL;
}

json_t *shp_json_parse_object(const char *data, size_t len, int max_depth, struct shp_error *err)
{
	json_auto_t *j = shp_json_parse(data, len, max_depth, err);

	if (!j)
		return NULL;
	if (!json_is_object(j))
		return shp_error_set(err, SHP_E_MALFORMED, "request body must be a JSON object"),
		       NULL;
	return TAKE_PTR(j);
}

static int field_error(struct shp_error *err, const char *key, const char *fmt_tail)
{
	int r;

	r = shp_error_set(err, SHP_E_INVAL, "field '%.*s' %s", utf8_cut(key, KEY_QUOTE_MAX), key,
			  fmt_tail);
	shp_error_detail(err, "field", "%.*s", utf8_cut(key, KEY_QUOTE_MAX), key);
	return r;
}

int shp_json_check_fields(const json_t *obj, const char *const *allowed, struct shp_error *err)
{
	const char *key;
	json_t *v;
	int r;

	json_object_foreach((json_t *)obj, key, v)
	{
		bool ok = false;

		for (size_t i = 0; allowed && allowed[i] && !ok; i++)
			ok = strcmp(allowed[i], key) == 0;
		if (ok)
			continue;
		r = shp_error_set(err, SHP_E_INVAL, "unknown field '%.*s'",
				  utf8_cut(key, KEY_QUOTE_MAX), key);
		shp_error_detail(err, "field", "%.*s", utf8_cut(key, KEY_QUOTE_MAX), key);
		return r;
	}
	return 0;
}

/*
 * Common head of the getters: 1 with *ret_v set when the member is present and not null,
 * 0 when absent and optional, -SHP_E_INVAL when absent and required.
 */
static int lookup(const json_t *obj, const char *key, bool required, json_t **ret_v,
		  struct shp_error *err)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	int r;

	if (v && !json_is_null(v)) {
		*ret_v = v;
		return 1;
	}
	if (!required)
		return 0;
	r = shp_error_set(err, SHP_E_INVAL, "missing field '%.*s'", utf8_cut(key, KEY_QUOTE_MAX),
			  key);
	shp_error_detail(err, "field", "%.*s", utf8_cut(key, KEY_QUOTE_MAX), key);
	return r;
}

int shp_json_get_string(const json_t *obj, const char *key, bool required, size_t max_len,
			const char **ret, struct shp_error *err)
{
	json_t *v;
	const char *s;
	size_t len;
	char what[64];
	int r;

	r = lookup(obj, key, required, &v, err);
	if (r <= 0)
		return r;
	if (!json_is_string(v))
		return field_error(err, key, "must be a string");
	s = json_string_value(v);
	len = json_string_length(v);
	if (strlen(s) != len)
		return field_error(err, key, "must not contain NUL bytes");
	if (!shp_utf8_is_valid(s, len))
		return field_error(err, key, "is not valid UTF-8");
	if (max_len > 0 && len > max_len) {
		(void)snprintf(what, sizeof(what), "is longer than %zu bytes", max_len);
		return field_error(err, key, what);
	}
	*ret = s;
	return 0;
}

int shp_json_get_int(const json_t *obj, const char *key, bool required, int64_t min, int64_t max,
		     int64_t *ret, struct shp_error *err)
{
	json_t *v;
	json_int_t n;
	char what[96];
	int r;

	r = lookup(obj, key, required, &v, err);
	if (r <= 0)
		return r;
	if (!json_is_integer(v))
		return field_error(err, key, "must be an integer");
	n = json_integer_value(v);
	if (n < min || n > max) {
		(void)snprintf(what, sizeof(what), "must be between %" PRId64 " and %" PRId64, min,
			       max);
		return field_error(err, key, what);
	}
	*ret = (int64_t)n;
	return 0;
}

int shp_json_get_bool(const json_t *obj, const char *key, bool required, bool *ret,
		      struct shp_error *err)
{
	json_t *v;
	int r;

	r = lookup(obj, key, required, &v, err);
	if (r <= 0)
		return r;
	if (!json_is_boolean(v))
		return field_error(err, key, "must be a boolean");
	*ret = json_is_true(v);
	return 0;
}

int shp_json_get_object(const json_t *obj, const char *key, bool required, json_t **ret,
			struct shp_error *err)
{
	json_t *v;
	int r;

	r = lookup(obj, key, required, &v, err);
	if (r <= 0)
		return r;
	if (!json_is_object(v))
		return field_error(err, key, "must be an object");
	*ret = v;
	return 0;
}

const char *shp_json_str(const json_t *obj, const char *key)
{
	return json_string_value(json_is_object(obj) ? json_object_get(obj, key) : NULL);
}

int64_t shp_json_int(const json_t *obj, const char *key, int64_t def)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

struct dump_ctx {
	struct shp_buf *out;
	int r;
};

static int dump_cb(const char *data, size_t size, void *data_ctx)
{
	struct dump_ctx *ctx = data_ctx;

	ctx->r = shp_buf_addn(ctx->out, data, size);
	return ctx->r < 0 ? -1 : 0;
}

int shp_json_dump_buf(const json_t *j, struct shp_buf *out, bool pretty)
{
	struct dump_ctx ctx = {.out = out, .r = 0};
	size_t flags = JSON_SORT_KEYS | JSON_ENCODE_ANY;
	size_t old_len = out->len;

	flags |= pretty ? JSON_INDENT(2) : JSON_COMPACT;
	if (json_dump_callback(j, dump_cb, &ctx, flags) == 0)
		return 0;
	shp_buf_truncate(out, old_len);
	return ctx.r < 0 ? ctx.r : -SHP_E_NOMEM;
}
