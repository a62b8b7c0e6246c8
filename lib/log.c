/*
 * The log sink: the sink configuration, the thread-local context, the masking of secrets (keys,
 * JSON values, free text) and the line writer. A line is built in a 16 KiB capped buffer (a long
 * message is cut and marked, never dropped) and leaves with one write(2).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "error.h"
#include "json.h"
#include "log.h"
#include "util.h"

#define LINE_MAX_BYTES (16 * 1024)
/* Context and fields together; the message gets the rest of the line. */
#define TAIL_MAX (8 * 1024)
/* One string value among the fields. */
#define VALUE_MAX (4 * 1024)
/* A message is formatted up to this length; the line writer cuts it to what fits. */
#define MSG_FORMAT_MAX (LINE_MAX_BYTES + 256)
#define CTX_MAX 8
#define CTX_KEY_MAX 32
#define CTX_VALUE_MAX 64
#define KEY_MAX 64
#define MASK_DEPTH_MAX 128
#define MASK "***"
#define TRUNCATED "\xe2\x80\xa6(truncated)"
/* shepherd tokens: "shp_" and at least this many base64url characters. */
#define TOKEN_TAIL_MIN 20

static atomic_int log_level = SHP_LOG_INFO;
static atomic_int log_format = SHP_LOG_LOGFMT;
static atomic_int log_fd = STDERR_FILENO;
/* Serialises the write(2) calls, so lines longer than PIPE_BUF never interleave. */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

struct log_ctx {
	int n;
	char key[CTX_MAX][CTX_KEY_MAX + 1];
	char value[CTX_MAX][CTX_VALUE_MAX + 1];
};

static _Thread_local struct log_ctx tls_ctx;

static const char *const level_names[_SHP_LOG_LEVEL_MAX] = {
	[SHP_LOG_ERROR] = "error",
	[SHP_LOG_WARN] = "warn",
	[SHP_LOG_INFO] = "info",
	[SHP_LOG_DEBUG] = "debug",
};

void shp_log_setup(enum shp_log_level level, enum shp_log_format format, int fd)
{
	if ((int)level < 0 || level >= _SHP_LOG_LEVEL_MAX)
		level = SHP_LOG_INFO;
	atomic_store(&log_level, (int)level);
	atomic_store(&log_format, format == SHP_LOG_JSON ? SHP_LOG_JSON : SHP_LOG_LOGFMT);
	atomic_store(&log_fd, fd >= 0 ? fd : STDERR_FILENO);
}

enum shp_log_level shp_log_get_level(void)
{
	return (enum shp_log_level)atomic_load(&log_level);
}

bool shp_log_is_enabled(enum shp_log_level level)
{
	return (int)level >= 0 && (int)level <= atomic_load(&log_level);
}

const char *shp_log_level_to_string(enum shp_log_level level)
{
	if ((int)level < 0 || level >= _SHP_LOG_LEVEL_MAX)
		return "unknown";
	return level_names[level];
}

int shp_log_level_from_string(const char *s)
{
	if (!s)
		return -1;
	for (int i = 0; i < _SHP_LOG_LEVEL_MAX; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	if (strcasecmp(s, "warning") == 0)
		return SHP_LOG_WARN;
	return -1;
}

/* ---- thread-local context ---- */

/* Copy at most max bytes of src into dst (max + 1 bytes), cut on a character boundary. */
static void copy_cut(char *dst, const char *src, size_t max)
{
	size_t n = strlen(src);

	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int ctx_find(const char *key)
{
	char k[CTX_KEY_MAX + 1];

	copy_cut(k, key, CTX_KEY_MAX);
	for (int i = 0; i < tls_ctx.n; i++)
		if (strcmp(tls_ctx.key[i], k) == 0)
			return i;
	return -1;
}

void shp_log_ctx_set(const char *key, const char *value)
{
	int i;

	if (!key || !*key)
		return;
	if (!value) {
		shp_log_ctx_unset(key);
		return;
	}
	i = ctx_find(key);
	if (i < 0) {
		if (tls_ctx.n >= CTX_MAX)
			return;
		i = tls_ctx.n++;
		copy_cut(tls_ctx.key[i], key, CTX_KEY_MAX);
	}
	copy_cut(tls_ctx.value[i], value, CTX_VALUE_MAX);
}

void shp_log_ctx_unset(const char *key)
{
	int i = key ? ctx_find(key) : -1;

	if (i < 0)
		return;
	/* Keep insertion order: the context reads the same on every line. */
	for (; i + 1 < tls_ctx.n; i++) {
		memcpy(tls_ctx.key[i], tls_ctx.key[i + 1], sizeof(tls_ctx.key[i]));
		memcpy(tls_ctx.value[i], tls_ctx.value[i + 1], sizeof(tls_ctx.value[i]));
	}
	tls_ctx.n--;
}

void shp_log_ctx_clear(void)
{
	tls_ctx.n = 0;
}

/* ---- masking ---- */

static const char *const secret_words[] = {
	"password", "passwd", "token",       "secret",        "key",    "credential",
	"api_key",  "apikey", "private_key", "authorization", "cookie", NULL,
};

static bool word_is_secret(const char *s, size_t n)
{
	for (size_t i = 0; secret_words[i]; i++)
		if (strlen(secret_words[i]) == n && strncasecmp(s, secret_words[i], n) == 0)
			return true;
	return false;
}

static bool keyn_is_secret(const char *key, size_t len)
{
	size_t start = 0;

	if (word_is_secret(key, len))
		return true;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && !strchr("_-.", key[i]))
			continue;
		if (word_is_secret(key + start, i - start))
			return true;
		start = i + 1;
	}
	return false;
}

bool shp_mask_key_is_secret(const char *key)
{
	return key && keyn_is_secret(key, strlen(key));
}

static bool is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.';
}

static bool is_b64url_char(char c)
{
	return is_key_char(c) && c != '.';
}

static bool is_cred_char(char c)
{
	return is_key_char(c) || (c && strchr("~+/=", c));
}

/* Length of a shepherd token at s (0 if there is none). */
static size_t token_at(const char *s, size_t len)
{
	size_t i = 4;

	if (len < 4 || memcmp(s, "shp_", 4) != 0)
		return 0;
	while (i < len && is_b64url_char(s[i]))
		i++;
	return i - 4 >= TOKEN_TAIL_MIN ? i : 0;
}

/* "Bearer " / "Basic " at s: the length up to the credential, 0 if absent. */
static size_t scheme_at(const char *s, size_t len)
{
	static const char *const schemes[] = {"bearer", "basic"};

	for (size_t k = 0; k < SHP_ARRAY_SIZE(schemes); k++) {
		size_t n = strlen(schemes[k]), i;

		if (len <= n || strncasecmp(s, schemes[k], n) != 0 || (s[n] != ' ' && s[n] != '\t'))
			continue;
		i = n;
		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i < len && is_cred_char(s[i]))
			return i;
	}
	return 0;
}

static size_t cred_len(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && is_cred_char(s[i]))
		i++;
	return i;
}

/* End of a quoted run starting at s[i] (the opening quote); len when unterminated. */
static size_t quoted_end(const char *s, size_t len, size_t i, bool backslash_quote)
{
	char q = s[i];

	if (backslash_quote) {
		const char *p = len > i + 2 ? memmem(s + i + 2, len - i - 2, "\\\"", 2) : NULL;

		return p ? (size_t)(p - s) + 2 : len;
	}
	for (i++; i < len; i++) {
		if (s[i] == '\\' && q == '"')
			i++;
		else if (s[i] == q)
			return i + 1;
	}
	return len;
}

/* End of a JSON-ish {...} or [...] starting at s[i], skipping strings; len when unbalanced. */
static size_t bracket_end(const char *s, size_t len, size_t i)
{
	int depth = 0;

	for (; i < len; i++) {
		if (s[i] == '"') {
			i = quoted_end(s, len, i, false) - 1;
		} else if (s[i] == '{' || s[i] == '[') {
			depth++;
		} else if ((s[i] == '}' || s[i] == ']') && --depth == 0) {
			return i + 1;
		}
	}
	return len;
}

static int add_token_text(struct shp_buf *out, const char *s, size_t len)
{
	size_t run = 0;
	int r = 0;

	for (size_t i = 0; r == 0 && i < len; i++) {
		size_t t = s[i] == 's' ? token_at(s + i, len - i) : 0;

		if (t == 0)
			continue;
		r = shp_buf_addn(out, s + run, i - run);
		if (r == 0)
			r = shp_buf_add(out, MASK);
		i += t - 1;
		run = i + 1;
	}
	return r < 0 ? r : shp_buf_addn(out, s + run, len - run);
}

/*
 * After a secret key at s[i] (just past the key token): the quote that closed the key, blanks,
 * '=' or ':', blanks. Returns the offset of the value, or 0 when this is not a key/value pair.
 */
static size_t value_start(const char *s, size_t len, size_t i, bool *json_key)
{
	*json_key = false;
	if (i + 1 < len && s[i] == '\\' && s[i + 1] == '"')
		i += 2, *json_key = true;
	else if (i < len && (s[i] == '"' || s[i] == '\''))
		*json_key = s[i++] == '"';
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i >= len || (s[i] != '=' && s[i] != ':'))
		return 0;
	if (s[i] == ':' && i + 1 < len && (s[i + 1] == '/' || s[i + 1] == ':'))
		return 0;
	i++;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i < len ? i : 0;
}

/* Mask the value at s[v..): returns the end of what it consumed. */
static size_t mask_value(struct shp_buf *out, const char *s, size_t len, size_t v, bool json_key,
			 int *r)
{
	size_t end, sch;

	if (s[v] == '\\' && v + 1 < len && s[v + 1] == '"') {
		*r = shp_buf_add(out, "\\\"" MASK "\\\"");
		return quoted_end(s, len, v, true);
	}
	if (s[v] == '"' || s[v] == '\'') {
		*r = shp_buf_addf(out, "%c" MASK "%c", s[v], s[v]);
		return quoted_end(s, len, v, false);
	}
	if (s[v] == '{' || s[v] == '[') {
		*r = shp_buf_add(out, "\"" MASK "\"");
		return bracket_end(s, len, v);
	}
	sch = scheme_at(s + v, len - v);
	if (sch > 0) {
		*r = shp_buf_addn(out, s + v, sch);
		if (*r == 0)
			*r = shp_buf_add(out, MASK);
		return v + sch + cred_len(s + v + sch, len - v - sch);
	}
	end = v;
	while (end < len && !strchr(" \t\r\n,;&\"'<>)]}", s[end]))
		end++;
	if (end == v)
		return v;
	*r = shp_buf_add(out, json_key ? "\"" MASK "\"" : MASK);
	return end;
}

/* "://user:password@": mask the password; returns the offset after '@', or 0. */
static size_t mask_userinfo(struct shp_buf *out, const char *s, size_t len, size_t i, int *r)
{
	size_t start = i + 3, end = start, at = 0, colon = 0;

	while (end < len && !strchr("/?# \t\r\n\"'<>", s[end])) {
		if (s[end] == '@')
			at = end;
		end++;
	}
	for (size_t k = start; at && k < at && !colon; k++)
		if (s[k] == ':')
			colon = k;
	if (!at || !colon)
		return 0;
	*r = shp_buf_addn(out, s + i, colon + 1 - i);
	if (*r == 0)
		*r = shp_buf_add(out, MASK "@");
	return at + 1;
}

static int mask_textn(const char *s, size_t len, struct shp_buf *out)
{
	size_t old_len = out->len, run = 0, i = 0;
	int r = 0;

	while (r == 0 && i < len) {
		size_t next = i + 1, j = i, v, sch;
		bool json_key;

		if (s[i] == ':' && i + 2 < len && s[i + 1] == '/' && s[i + 2] == '/') {
			if ((r = shp_buf_addn(out, s + run, i - run)) == 0 &&
			    (next = mask_userinfo(out, s, len, i, &r)) == 0) {
				next = i + 3;
				r = shp_buf_addn(out, s + i, 3);
			}
			i = run = next;
			continue;
		}
		if (!is_key_char(s[i]) || (i > 0 && is_key_char(s[i - 1]))) {
			i++;
			continue;
		}
		while (j < len && is_key_char(s[j]))
			j++;
		/* Here s[i..j) is a whole word: a token, a scheme, a secret key, or plain text. */
		if ((r = shp_buf_addn(out, s + run, i - run)) < 0)
			break;
		sch = scheme_at(s + i, len - i);
		if (sch > 0) {
			r = shp_buf_addn(out, s + i, sch);
			if (r == 0)
				r = shp_buf_add(out, MASK);
			next = i + sch + cred_len(s + i + sch, len - i - sch);
		} else if (keyn_is_secret(s + i, j - i) &&
			   (v = value_start(s, len, j, &json_key)) > 0) {
			r = shp_buf_addn(out, s + i, v - i);
			if (r == 0)
				next = mask_value(out, s, len, v, json_key, &r);
		} else {
			r = add_token_text(out, s + i, j - i);
			next = j;
		}
		i = run = next;
	}
	if (r == 0)
		r = shp_buf_addn(out, s + run, len - run);
	if (r < 0)
		shp_buf_truncate(out, old_len);
	return r;
}

int shp_mask_text(const char *text, struct shp_buf *out)
{
	return mask_textn(text ? text : "", text ? strlen(text) : 0, out);
}

/* Masking never more than doubles a text (the shortest masked pair grows by 4 of 5 bytes). */
static json_t *masked_string(const char *s, size_t len)
{
	_cleanup_(shp_buf_releasep) struct shp_buf b = SHP_BUF_INIT(2 * len + 64);

	if (mask_textn(s, len, &b) < 0)
		return json_string(MASK);
	return json_stringn(b.buf, b.len);
}

static json_t *mask_json(const json_t *j, int depth)
{
	json_t *copy, *v;
	const char *key;
	size_t key_len, i;

	if (depth > MASK_DEPTH_MAX)
		return json_string(MASK);
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		if (!(copy = json_object()))
			return NULL;
		json_object_keylen_foreach((json_t *)j, key, key_len, v)
		{
			json_t *m = keyn_is_secret(key, key_len) ? json_string(MASK)
								 : mask_json(v, depth + 1);

			if (json_object_setn_new(copy, key, key_len, m) < 0)
				return json_decref(copy), NULL;
		}
		return copy;
	case JSON_ARRAY:
		if (!(copy = json_array()))
			return NULL;
		json_array_foreach(j, i, v)
		{
			if (json_array_append_new(copy, mask_json(v, depth + 1)) < 0)
				return json_decref(copy), NULL;
		}
		return copy;
	case JSON_STRING: return masked_string(json_string_value(j), json_string_length(j));
	default: return json_deep_copy(j);
	}
}

json_t *shp_mask_json(const json_t *j)
{
	return j ? mask_json(j, 0) : NULL;
}

/* ---- encoding ---- */

/*
 * The escaped form of the character at s[0..len) into piece; returns the bytes consumed. Both
 * formats share JSON's escapes; invalid UTF-8 becomes U+FFFD so a line is always valid text.
 */
static size_t encode_char(const char *s, size_t len, char piece[8], size_t *piece_len)
{
	unsigned char c = (unsigned char)s[0];
	size_t n = c < 0x80             ? 1
		   : (c & 0xe0) == 0xc0 ? 2
		   : (c & 0xf0) == 0xe0 ? 3
		   : (c & 0xf8) == 0xf0 ? 4
					: 0;
	const char *esc = NULL;

	if (n == 0 || n > len || !shp_utf8_is_valid(s, n)) {
		memcpy(piece, "\xef\xbf\xbd", 3);
		*piece_len = 3;
		return 1;
	}
	switch (c) {
	case '"': esc = "\\\""; break;
	case '\\': esc = "\\\\"; break;
	case '\n': esc = "\\n"; break;
	case '\r': esc = "\\r"; break;
	case '\t': esc = "\\t"; break;
	default: break;
	}
	if (esc) {
		*piece_len = strlen(esc);
		memcpy(piece, esc, *piece_len);
	} else if (c < 0x20 || c == 0x7f || (c == 0xc2 && (unsigned char)s[1] < 0xa0)) {
		unsigned cp = c == 0xc2 ? (unsigned char)s[1] : c;

		*piece_len = (size_t)snprintf(piece, 8, "\\u%04x", cp);
	} else {
		memcpy(piece, s, n);
		*piece_len = n;
	}
	return n;
}

static bool logfmt_needs_quote(const char *s, size_t len)
{
	if (len == 0)
		return true;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
			return true;
		/* C1 controls, U+0080..U+009F, are escaped like C0 ones */
		if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] < 0xa0)
			return true;
	}
	return !shp_utf8_is_valid(s, len);
}

/*
 * Append s as a value: JSON always quoted, logfmt quoted when needed. When the whole would pass
 * limit (an absolute length of out), cut it and add the truncation mark; likewise when the
 * caller already cut s (cut).
 */
static int add_value(struct shp_buf *out, const char *s, size_t len, bool json, size_t limit,
		     bool cut)
{
	bool quote = json || logfmt_needs_quote(s, len) || cut;
	size_t close = quote ? 1 : 0, total = 0, reserve;
	char piece[8];
	size_t plen;
	int r = 0;

	for (size_t i = 0; i < len;) {
		i += encode_char(s + i, len - i, piece, &plen);
		total += plen;
	}
	if (out->len + total + 2 * close > limit)
		cut = true;
	reserve = close + (cut ? strlen(TRUNCATED) : 0);
	if (quote)
		r = shp_buf_addch(out, '"');
	for (size_t i = 0; r == 0 && i < len;) {
		size_t n = encode_char(s + i, len - i, piece, &plen);

		if (out->len + plen + reserve > limit)
			break;
		r = shp_buf_addn(out, piece, plen);
		i += n;
	}
	if (r == 0 && cut)
		r = shp_buf_add(out, TRUNCATED);
	if (r == 0 && quote)
		r = shp_buf_addch(out, '"');
	return r;
}

/* A key as written: logfmt keeps [A-Za-z0-9_.-] only; the line's own keys get a '_' prefix. */
static int add_key(struct shp_buf *out, const char *key, size_t key_len, bool json)
{
	bool reserved = (key_len == 2 && memcmp(key, "ts", 2) == 0) ||
			(key_len == 5 && memcmp(key, "level", 5) == 0) ||
			(key_len == 3 && memcmp(key, "msg", 3) == 0);
	size_t n = key_len > KEY_MAX ? KEY_MAX : key_len;
	char k[KEY_MAX + 2];
	size_t klen = 0;
	int r;

	while (n > 0 && n < key_len && ((unsigned char)key[n] & 0xc0) == 0x80)
		n--;
	if (reserved || n == 0)
		k[klen++] = '_';
	for (size_t i = 0; i < n; i++)
		k[klen++] = json || is_key_char(key[i]) ? key[i] : '_';
	r = shp_buf_addch(out, json ? ',' : ' ');
	if (r == 0 && json)
		r = add_value(out, k, klen, true, SIZE_MAX, false);
	else if (r == 0)
		r = shp_buf_addn(out, k, klen);
	return r < 0 ? r : shp_buf_addch(out, json ? ':' : '=');
}

/* One key/value pair (value already masked) appended to tail, or false when it does not fit. */
static int add_pair(struct shp_buf *tail, const char *key, size_t key_len, const json_t *v,
		    bool json)
{
	_cleanup_(shp_buf_releasep) struct shp_buf pair = SHP_BUF_INIT(TAIL_MAX);
	_cleanup_(shp_buf_releasep) struct shp_buf text = SHP_BUF_INIT(VALUE_MAX);
	int r;

	r = add_key(&pair, key, key_len, json);
	if (r == 0 && json_is_string(v)) {
		r = add_value(&pair, json_string_value(v), json_string_length(v), json,
			      pair.len + VALUE_MAX, false);
	} else if (r == 0) {
		r = shp_json_dump_buf(v, &text, false);
		if (r == -SHP_E_LIMIT)
			r = add_value(&pair, "", 0, true, SIZE_MAX, true);
		else if (r == 0 && json)
			r = shp_buf_addn(&pair, text.buf, text.len);
		else if (r == 0)
			r = add_value(&pair, text.buf, text.len, false, SIZE_MAX, false);
	}
	if (r < 0)
		return r;
	if (tail->len + pair.len > TAIL_MAX)
		return -SHP_E_LIMIT;
	return shp_buf_addn(tail, pair.buf, pair.len);
}

static int add_context(struct shp_buf *tail, const json_t *fields, bool json)
{
	int r = 0;

	for (int i = 0; r == 0 && i < tls_ctx.n; i++) {
		const char *key = tls_ctx.key[i];
		json_auto_t *v = NULL;

		if (json_object_get(fields, key))
			continue; /* the event's own field wins */
		if (shp_mask_key_is_secret(key))
			v = json_string(MASK);
		else
			v = masked_string(tls_ctx.value[i], strlen(tls_ctx.value[i]));
		r = v ? add_pair(tail, key, strlen(key), v, json) : -SHP_E_NOMEM;
	}
	return r;
}

static int add_fields(struct shp_buf *tail, const json_t *fields, bool json)
{
	const char *key;
	size_t key_len;
	json_t *v;
	int r;

	json_object_keylen_foreach((json_t *)fields, key, key_len, v)
	{
		r = add_pair(tail, key, key_len, v, json);
		if (r == -SHP_E_LIMIT)
			return shp_buf_add(tail,
					   json ? ",\"_truncated\":true" : " _truncated=true");
		if (r < 0)
			return r;
	}
	return 0;
}

static void write_all(const char *p, size_t n)
{
	int fd = atomic_load(&log_fd);

	(void)pthread_mutex_lock(&write_lock);
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		p += k;
		n -= (size_t)k;
	}
	(void)pthread_mutex_unlock(&write_lock);
}

static int build_line(struct shp_buf *line, enum shp_log_level level, const char *msg,
		      size_t msg_len, bool msg_cut, const json_t *fields)
{
	_cleanup_(shp_buf_releasep) struct shp_buf masked = SHP_BUF_INIT(2 * MSG_FORMAT_MAX + 64);
	_cleanup_(shp_buf_releasep) struct shp_buf tail = SHP_BUF_INIT(TAIL_MAX + 32);
	json_auto_t *mfields = NULL;
	bool json = atomic_load(&log_format) == SHP_LOG_JSON;
	size_t close = json ? 2 : 1;
	char ts[40];
	int r;

	if (fields && !(mfields = shp_mask_json(fields)))
		return -SHP_E_NOMEM;
	r = mask_textn(msg, msg_len, &masked);
	if (r == 0)
		r = add_context(&tail, mfields, json);
	if (r == 0 && json_is_object(mfields))
		r = add_fields(&tail, mfields, json);
	if (r < 0)
		return r;
	shp_format_rfc3339(shp_now_realtime_us(), ts, sizeof(ts));
	if (json)
		r = shp_buf_addf(line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts,
				 shp_log_level_to_string(level));
	else
		r = shp_buf_addf(line, "ts=%s level=%s msg=", ts, shp_log_level_to_string(level));
	if (r == 0)
		r = add_value(line, masked.buf, masked.len, json, line->max - tail.len - close,
			      msg_cut);
	if (r == 0)
		r = shp_buf_addn(line, tail.buf, tail.len);
	return r < 0 ? r : shp_buf_add(line, json ? "}\n" : "\n");
}

static void emit(enum shp_log_level level, const char *msg, size_t msg_len, bool msg_cut,
		 const json_t *fields)
{
	static const char lost_line[] = "level=error msg=\"log line lost: out of memory\"\n";
	_cleanup_(shp_buf_releasep) struct shp_buf line = SHP_BUF_INIT(LINE_MAX_BYTES);

	if (msg_len > MSG_FORMAT_MAX) {
		msg_len = MSG_FORMAT_MAX;
		while (msg_len > 0 && ((unsigned char)msg[msg_len] & 0xc0) == 0x80)
			msg_len--;
		msg_cut = true;
	}
	/* Every budget above keeps a line under the cap, so only allocation can fail here. */
	if (build_line(&line, level, msg, msg_len, msg_cut, fields) < 0)
		write_all(lost_line, sizeof(lost_line) - 1);
	else
		write_all(line.buf, line.len);
}

void shp_logv(enum shp_log_level level, const char *fmt, va_list ap)
{
	_cleanup_free_ char *msg = NULL;
	int saved_errno = errno;
	va_list cp;
	size_t size;
	int n;

	if (!shp_log_is_enabled(level))
		return;
	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	size = n < 0 ? 0 : n > MSG_FORMAT_MAX ? MSG_FORMAT_MAX : (size_t)n;
	msg = malloc(size + 1);
	if (msg) {
		errno = saved_errno; /* for %m */
		(void)vsnprintf(msg, size + 1, fmt, ap);
	}
	emit(level, msg ? msg : "", msg ? strlen(msg) : 0, n > MSG_FORMAT_MAX, NULL);
	errno = saved_errno;
}

void shp_log(enum shp_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	shp_logv(level, fmt, ap);
	va_end(ap);
}

void shp_log_fields(enum shp_log_level level, const char *msg, const json_t *fields)
{
	int saved_errno = errno;

	if (!shp_log_is_enabled(level))
		return;
	if (!msg)
		msg = "";
	emit(level, msg, strlen(msg), false, json_is_object(fields) ? fields : NULL);
	errno = saved_errno;
}
