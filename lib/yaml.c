/*
 * YAML <-> JSON. Reading walks libyaml's event stream and builds the json_t directly on an
 * explicit stack (so depth is checked before anything deep is built); plain scalars are typed
 * by the YAML 1.2 core schema. Writing is a small block-style emitter of our own that quotes
 * every string a reader could take for something else.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <yaml.h> /* libyaml: lib/ is on the quote path only here */

#include "buf.h"
#include "canon.h"
#include "error.h"
#include "util.h"
#include "yaml.h"

#define TAG_PREFIX "tag:yaml.org,2002:"
/* Quoted text (keys, tags, values) in messages is cut to this many bytes. */
#define QUOTE_MAX 64
/* libyaml gives up on implicit keys longer than 1024 characters; longer ones go explicit. */
#define IMPLICIT_KEY_MAX 1000
/* The emitter recurses over the json_t; deeper trees can only come from code. */
#define EMIT_DEPTH_MAX 2048

enum plain_kind { PLAIN_NULL, PLAIN_BOOL, PLAIN_INT, PLAIN_FLOAT, PLAIN_STR };

struct frame {
	json_t *node;    /* borrowed: owned by the parent or by builder.root */
	char *key;       /* mappings: the key waiting for its value */
	size_t key_line; /* and the line it is on */
	char *path;      /* with line recording: this node's path ("a.b[2]"), owned */
};

struct builder {
	json_t *root;
	struct frame *stack;
	size_t depth;
	size_t alloc;
	int max_depth;
	int documents;
	struct shp_error *err;
	json_t *lines;   /* NULL, or path -> line of every node (shp_yaml_to_json_lines) */
	char *last_path; /* the path attach() computed last, for open_container() */
};

/* Length of s cut to at most max bytes on a character boundary. */
static int quote_len(const char *s, size_t len)
{
	size_t max = QUOTE_MAX;

	if (len <= max)
		return (int)len;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return (int)max;
}

static int error_at(struct shp_error *err, size_t line, size_t column, const char *fmt, ...)
	SHP_PRINTF(4, 5);

static int error_at(struct shp_error *err, size_t line, size_t column, const char *fmt, ...)
{
	char what[SHP_ERROR_MSG_MAX];
	va_list ap;
	int r;

	va_start(ap, fmt);
	(void)vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	r = shp_error_set(err, SHP_E_MALFORMED, "malformed YAML at line %zu, column %zu: %s", line,
			  column, what);
	shp_error_detail(err, "line", "%zu", line);
	shp_error_detail(err, "column", "%zu", column);
	return r;
}

/* ---- core-schema typing of plain scalars ---- */

static bool all_in(const char *s, size_t len, const char *set)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!s[i] || !strchr(set, s[i]))
			return false;
	return true;
}

static bool is_one_of(const char *s, size_t len, const char *const *words)
{
	for (size_t i = 0; words[i]; i++)
		if (strlen(words[i]) == len && memcmp(words[i], s, len) == 0)
			return true;
	return false;
}

static const char *const null_words[] = {"~", "null", "Null", "NULL", NULL};
static const char *const true_words[] = {"true", "True", "TRUE", NULL};
static const char *const false_words[] = {"false", "False", "FALSE", NULL};
static const char *const inf_words[] = {".inf", ".Inf", ".INF", NULL};
static const char *const nan_words[] = {".nan", ".NaN", ".NAN", NULL};

static bool is_int_form(const char *s, size_t len)
{
	if (len > 2 && s[0] == '0' && s[1] == 'o')
		return all_in(s + 2, len - 2, "01234567");
	if (len > 2 && s[0] == '0' && s[1] == 'x')
		return all_in(s + 2, len - 2, "0123456789abcdefABCDEF");
	if (len > 0 && (s[0] == '-' || s[0] == '+'))
		s++, len--;
	return all_in(s, len, "0123456789");
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, [-+]?\.inf, \.nan */
static bool is_float_form(const char *s, size_t len)
{
	size_t i = 0, digits = 0;

	if (is_one_of(s, len, nan_words))
		return true;
	if (len > 0 && (s[0] == '-' || s[0] == '+'))
		i++;
	if (is_one_of(s + i, len - i, inf_words))
		return true;
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++, digits++;
	if (i < len && s[i] == '.') {
		size_t frac = 0;

		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++, frac++;
		if (digits == 0 && frac == 0)
			return false;
	} else if (digits == 0) {
		return false;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '-' || s[i] == '+'))
			i++;
		if (!all_in(s + i, len - i, "0123456789"))
			return false;
		return true;
	}
	return i == len;
}

static enum plain_kind classify(const char *s, size_t len)
{
	if (len == 0 || is_one_of(s, len, null_words))
		return PLAIN_NULL;
	if (is_one_of(s, len, true_words) || is_one_of(s, len, false_words))
		return PLAIN_BOOL;
	if (is_int_form(s, len))
		return PLAIN_INT;
	if (is_float_form(s, len))
		return PLAIN_FLOAT;
	return PLAIN_STR;
}

static size_t next_char(const char *s, size_t len, uint32_t *cp);

/* ---- building json_t from events ---- */

static int int_value(const char *s, const yaml_mark_t *m, json_t **ret, struct shp_error *err)
{
	long long v;
	char *end;

	errno = 0;
	if (s[0] == '0' && s[1] == 'o')
		v = strtoll(s + 2, &end, 8);
	else if (s[0] == '0' && s[1] == 'x')
		v = strtoll(s + 2, &end, 16);
	else
		v = strtoll(s, &end, 10);
	if (errno == ERANGE || *end != '\0')
		return error_at(err, m->line + 1, m->column + 1, "integer '%.*s' is out of range",
				quote_len(s, strlen(s)), s);
	*ret = json_integer(v);
	return *ret ? 0 : -SHP_E_NOMEM;
}

static int real_value(const char *s, const yaml_mark_t *m, json_t **ret, struct shp_error *err)
{
	double d;

	errno = 0;
	d = strtod(s, NULL);
	if (!is_one_of(s, strlen(s), nan_words) && !strstr(s, "inf") && !strstr(s, "Inf") &&
	    !strstr(s, "INF") && errno != ERANGE)
		*ret = json_real(d);
	else if (errno == ERANGE && d > -1.0 && d < 1.0) /* underflow: the nearest double */
		*ret = json_real(d);
	else
		return error_at(err, m->line + 1, m->column + 1,
				"'%.*s' cannot be represented in JSON", quote_len(s, strlen(s)), s);
	return *ret ? 0 : -SHP_E_NOMEM;
}

static const char *tag_name(const char *tag, char *buf, size_t size)
{
	if (strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) == 0)
		(void)snprintf(buf, size, "!!%s", tag + strlen(TAG_PREFIX));
	else
		(void)snprintf(buf, size, "%.*s", quote_len(tag, strlen(tag)), tag);
	return buf;
}

/* The type a scalar's tag asks for; -1 when the tag is not one of the core scalar tags. */
static int scalar_tag_kind(const char *tag)
{
	static const struct {
		const char *name;
		enum plain_kind kind;
	} tags[] = {
		{TAG_PREFIX "str", PLAIN_STR},     {TAG_PREFIX "int", PLAIN_INT},
		{TAG_PREFIX "float", PLAIN_FLOAT}, {TAG_PREFIX "bool", PLAIN_BOOL},
		{TAG_PREFIX "null", PLAIN_NULL},   {"!", PLAIN_STR},
	};

	for (size_t i = 0; i < SHP_ARRAY_SIZE(tags); i++)
		if (strcmp(tag, tags[i].name) == 0)
			return (int)tags[i].kind;
	return -1;
}

static int scalar_value(const yaml_event_t *ev, json_t **ret, struct shp_error *err)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;
	const yaml_mark_t *m = &ev->start_mark;
	enum plain_kind want, got;
	char tbuf[QUOTE_MAX + 8];

	if (memchr(s, '\0', len))
		return error_at(err, m->line + 1, m->column + 1, "NUL bytes are not allowed");
	if (!shp_utf8_is_valid(s, len))
		return error_at(err, m->line + 1, m->column + 1, "invalid UTF-8");
	got = classify(s, len);
	if (tag) {
		int k = scalar_tag_kind(tag);

		if (k < 0)
			return error_at(err, m->line + 1, m->column + 1,
					"YAML tag '%s' is not supported here",
					tag_name(tag, tbuf, sizeof(tbuf)));
		want = (enum plain_kind)k;
		if (want == PLAIN_FLOAT && got == PLAIN_INT && strncmp(s, "0o", 2) != 0 &&
		    strncmp(s, "0x", 2) != 0)
			got = PLAIN_FLOAT;
		if (want != PLAIN_STR && want != got)
			return error_at(err, m->line + 1, m->column + 1, "'%.*s' is not a valid %s",
					quote_len(s, len), s, tag_name(tag, tbuf, sizeof(tbuf)));
	} else {
		want = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? got : PLAIN_STR;
	}
	switch (want) {
	case PLAIN_NULL: *ret = json_null(); break;
	case PLAIN_BOOL: *ret = json_boolean(is_one_of(s, len, true_words)); break;
	case PLAIN_INT: return int_value(s, m, ret, err);
	case PLAIN_FLOAT: return real_value(s, m, ret, err);
	case PLAIN_STR: *ret = json_stringn(s, len); break;
	}
	return *ret ? 0 : -SHP_E_NOMEM;
}

/* Record the line of the node about to be attached under top (line recording only). */
static int record_line(struct builder *b, const struct frame *top, const yaml_mark_t *m)
{
	const char *parent = top->path ? top->path : "";
	size_t line = m->line + 1;
	int r;

	free(b->last_path);
	if (json_is_array(top->node)) {
		r = asprintf(&b->last_path, "%s[%zu]", parent, json_array_size(top->node));
	} else {
		r = asprintf(&b->last_path, "%s%s%s", parent, *parent ? "." : "", top->key);
		line = top->key_line;
	}
	if (r < 0) {
		b->last_path = NULL;
		return -SHP_E_NOMEM;
	}
	return json_object_set_new(b->lines, b->last_path, json_integer((json_int_t)line)) < 0
		       ? -SHP_E_NOMEM
		       : 0;
}

/* Hang a new node under the current container (or make it the root); takes ownership of v. */
static int attach(struct builder *b, json_t *v, const yaml_mark_t *m)
{
	struct frame *top;
	int r;

	if (b->depth == 0) {
		if (b->root) {
			json_decref(v);
			return error_at(b->err, m->line + 1, m->column + 1,
					"more than one node in the document");
		}
		b->root = v;
		return 0;
	}
	top = &b->stack[b->depth - 1];
	if (b->lines && record_line(b, top, m) < 0) {
		json_decref(v);
		return -SHP_E_NOMEM;
	}
	if (json_is_array(top->node))
		r = json_array_append_new(top->node, v);
	else
		r = json_object_set_new(top->node, top->key, v);
	free(top->key);
	top->key = NULL;
	return r < 0 ? -SHP_E_NOMEM : 0;
}

static bool wants_key(const struct builder *b)
{
	return b->depth > 0 && json_is_object(b->stack[b->depth - 1].node) &&
	       !b->stack[b->depth - 1].key;
}

static int take_key(struct builder *b, const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	const yaml_mark_t *m = &ev->start_mark;
	struct frame *top = &b->stack[b->depth - 1];
	json_auto_t *v = NULL;
	int r;

	r = scalar_value(ev, &v, b->err);
	if (r < 0)
		return r;
	if (!json_is_string(v))
		return error_at(b->err, m->line + 1, m->column + 1,
				"mapping key '%.*s' must be a string (quote it)",
				quote_len(s, ev->data.scalar.length), s);
	if (json_object_get(top->node, s))
		return error_at(b->err, m->line + 1, m->column + 1, "duplicate mapping key '%.*s'",
				quote_len(s, ev->data.scalar.length), s);
	top->key = strdup(s);
	top->key_line = m->line + 1;
	return top->key ? 0 : -SHP_E_NOMEM;
}

static int open_container(struct builder *b, const yaml_event_t *ev)
{
	bool is_map = ev->type == YAML_MAPPING_START_EVENT;
	const char *tag =
		(const char *)(is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
	const char *want_tag = is_map ? TAG_PREFIX "map" : TAG_PREFIX "seq";
	const yaml_mark_t *m = &ev->start_mark;
	char tbuf[QUOTE_MAX + 8];
	json_t *node;
	int r;

	if (tag && strcmp(tag, want_tag) != 0)
		return error_at(b->err, m->line + 1, m->column + 1,
				"YAML tag '%s' is not supported here",
				tag_name(tag, tbuf, sizeof(tbuf)));
	if (wants_key(b))
		return error_at(b->err, m->line + 1, m->column + 1,
				"mapping keys must be strings, not %s",
				is_map ? "mappings" : "sequences");
	if (b->depth >= (size_t)b->max_depth)
		return error_at(b->err, m->line + 1, m->column + 1, "nesting deeper than %d levels",
				b->max_depth);
	if (b->depth == b->alloc) {
		size_t n = b->alloc ? b->alloc * 2 : 16;
		struct frame *p = realloc(b->stack, n * sizeof(*p));

		if (!p)
			return -SHP_E_NOMEM;
		b->stack = p;
		b->alloc = n;
	}
	node = is_map ? json_object() : json_array();
	if (!node)
		return -SHP_E_NOMEM;
	r = attach(b, node, m);
	if (r < 0)
		return r;
	b->stack[b->depth++] = (struct frame){.node = node, .path = TAKE_PTR(b->last_path)};
	return 0;
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
	const yaml_mark_t *m = &ev->start_mark;
	json_t *v = NULL;
	int r;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++b->documents > 1)
			return error_at(b->err, m->line + 1, m->column + 1,
					"multiple YAML documents are not supported");
		return 0;
	case YAML_ALIAS_EVENT:
		return error_at(b->err, m->line + 1, m->column + 1,
				"YAML aliases are not supported (alias '*%.*s')",
				quote_len((const char *)ev->data.alias.anchor,
					  strlen((const char *)ev->data.alias.anchor)),
				(const char *)ev->data.alias.anchor);
	case YAML_SCALAR_EVENT:
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		const char *anchor =
			(const char *)(ev->type == YAML_SCALAR_EVENT ? ev->data.scalar.anchor
				       : ev->type == YAML_MAPPING_START_EVENT
					       ? ev->data.mapping_start.anchor
					       : ev->data.sequence_start.anchor);

		if (anchor)
			return error_at(b->err, m->line + 1, m->column + 1,
					"YAML aliases are not supported (anchor '&%.*s')",
					quote_len(anchor, strlen(anchor)), anchor);
		if (ev->type != YAML_SCALAR_EVENT)
			return open_container(b, ev);
		if (wants_key(b))
			return take_key(b, ev);
		r = scalar_value(ev, &v, b->err);
		return r < 0 ? r : attach(b, v, m);
	}
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (b->depth > 0) {
			b->depth--;
			free(b->stack[b->depth].path);
			b->stack[b->depth].path = NULL;
		}
		return 0;
	default: return 0;
	}
}

/* Line and column (1-based, in characters) of a byte offset, for libyaml's reader errors. */
static void offset_to_mark(const char *data, size_t len, size_t offset, size_t *line,
			   size_t *column)
{
	*line = 1;
	*column = 1;
	for (size_t i = 0; i < offset && i < len; i++) {
		if (data[i] == '\n') {
			(*line)++;
			*column = 1;
		} else if (((unsigned char)data[i] & 0xc0) != 0x80) {
			(*column)++;
		}
	}
}

/* Offset of the first byte that does not start a valid UTF-8 character, or len. */
static size_t first_bad_utf8(const char *data, size_t len)
{
	uint32_t cp;

	for (size_t i = 0, n; i < len; i += n)
		if ((n = next_char(data + i, len - i, &cp)) == 0)
			return i;
	return len;
}

static int libyaml_error(const yaml_parser_t *p, const char *data, size_t len,
			 struct shp_error *err)
{
	size_t line = p->problem_mark.line + 1, column = p->problem_mark.column + 1;
	const char *problem = p->problem ? p->problem : "cannot parse";

	if (p->error == YAML_MEMORY_ERROR)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory parsing YAML");
	if (p->error == YAML_READER_ERROR) {
		offset_to_mark(data, len, p->problem_offset, &line, &column);
		if (p->problem_value == 0)
			return error_at(err, line, column, "NUL byte in input");
		return error_at(err, line, column, "%s", problem);
	}
	if (p->context)
		return error_at(err, line, column, "%s %s", problem, p->context);
	return error_at(err, line, column, "%s", problem);
}

static void builder_release(struct builder *b)
{
	for (size_t i = 0; i < b->depth; i++) {
		free(b->stack[i].key);
		free(b->stack[i].path);
	}
	free(b->stack);
	free(b->last_path);
	json_decref(b->root);
	json_decref(b->lines);
}

static void parser_deletep(yaml_parser_t *p)
{
	yaml_parser_delete(p);
}

static void event_deletep(yaml_event_t *ev)
{
	yaml_event_delete(ev);
}

json_t *shp_yaml_to_json(const char *data, size_t len, int max_depth, struct shp_error *err)
{
	return shp_yaml_to_json_lines(data, len, max_depth, NULL, err);
}

json_t *shp_yaml_to_json_lines(const char *data, size_t len, int max_depth, json_t **ret_lines,
			       struct shp_error *err)
{
	_cleanup_(builder_release) struct builder b = {
		.max_depth = max_depth < 0 ? 0 : max_depth,
		.err = err,
		.lines = ret_lines ? json_object() : NULL,
	};
	_cleanup_(parser_deletep) yaml_parser_t parser = {0};
	bool done = false;
	size_t bad, line, column;
	int r = 0;

	if (!data)
		data = "", len = 0;
	/* libyaml would point at the bad trailing byte; name the broken character instead. */
	bad = first_bad_utf8(data, len);
	if (bad < len) {
		offset_to_mark(data, len, bad, &line, &column);
		return error_at(err, line, column, "invalid UTF-8"), NULL;
	}
	if ((ret_lines && !b.lines) || !yaml_parser_initialize(&parser))
		return shp_error_set(err, SHP_E_NOMEM, "out of memory parsing YAML"), NULL;
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
	while (!done && r == 0) {
		_cleanup_(event_deletep) yaml_event_t ev;

		if (!yaml_parser_parse(&parser, &ev)) {
			memset(&ev, 0, sizeof(ev));
			r = libyaml_error(&parser, data, len, err);
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		r = on_event(&b, &ev);
	}
	if (r == -SHP_E_NOMEM)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory parsing YAML"), NULL;
	if (r < 0)
		return NULL;
	if (b.documents == 0 || !b.root)
		return shp_error_set(err, SHP_E_MALFORMED, "empty YAML document"), NULL;
	if (ret_lines)
		*ret_lines = TAKE_PTR(b.lines);
	return TAKE_PTR(b.root);
}

/* ---- the emitter ---- */

/* Decode one UTF-8 character at s[0..len); 0 when the bytes are not a valid character. */
static size_t next_char(const char *s, size_t len, uint32_t *cp)
{
	unsigned char c = (unsigned char)s[0];
	size_t n = c < 0x80             ? 1
		   : (c & 0xe0) == 0xc0 ? 2
		   : (c & 0xf0) == 0xe0 ? 3
		   : (c & 0xf8) == 0xf0 ? 4
					: 0;

	if (n == 0 || n > len || !shp_utf8_is_valid(s, n))
		return 0;
	*cp = n == 1 ? c : (uint32_t)(c & (0x7f >> n));
	for (size_t i = 1; i < n; i++)
		*cp = (*cp << 6) | ((unsigned char)s[i] & 0x3f);
	return n;
}

/* Characters that may appear unescaped in plain and literal scalars (never line breaks). */
static bool char_is_plain(uint32_t cp)
{
	if (cp < 0x80)
		return cp >= 0x20 && cp != 0x7f;
	return cp >= 0xa0 && cp != 0x2028 && cp != 0x2029 && cp != 0xfeff && cp != 0xfffe &&
	       cp != 0xffff;
}

static bool chars_ok(const char *s, size_t len, bool allow_newline_tab)
{
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = next_char(s + i, len - i, &cp);

		if (n == 0)
			return false;
		if (!char_is_plain(cp) && !(allow_newline_tab && (cp == '\n' || cp == '\t')))
			return false;
		i += n;
	}
	return true;
}

static bool plain_ok(const char *s, size_t len)
{
	static const char *const yaml11_words[] = {
		"y",  "Y",  "yes", "Yes", "YES", "n",   "N",  "no", "No", "NO",
		"on", "On", "ON",  "off", "Off", "OFF", "<<", "=",  NULL,
	};

	if (len == 0 || !chars_ok(s, len, false))
		return false;
	if (strchr("-?:,[]{}#&*!|>'\"%@`.+ ", s[0]) || s[len - 1] == ' ' || s[len - 1] == ':')
		return false;
	/* YAML 1.1 readers also see numbers, times and dates: 0b1, 1_000, 1:30, 2001-12-14. */
	if (s[0] >= '0' && s[0] <= '9' && all_in(s, len, "0123456789_:.-+ abcdefABCDEFoOxXtTzZ"))
		return false;
	if (memmem(s, len, ": ", 2) || memmem(s, len, " #", 2))
		return false;
	return classify(s, len) == PLAIN_STR && !is_one_of(s, len, yaml11_words);
}

/* Literal blocks keep text readable; only used where the round trip is exact. */
static bool literal_ok(const char *s, size_t len)
{
	size_t start = 0;
	bool content = false;

	if (!memchr(s, '\n', len) || !chars_ok(s, len, true))
		return false;
	while (start < len) {
		const char *nl = memchr(s + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - s) : len;

		if (end > start) {
			if (s[start] == '\t' || (!content && s[start] == ' '))
				return false;
			if (s[end - 1] == ' ' || s[end - 1] == '\t')
				return false;
			content = true;
		}
		start = end + 1;
	}
	return content;
}

static int add_double_quoted(struct shp_buf *out, const char *s, size_t len)
{
	int r = shp_buf_addch(out, '"');

	for (size_t i = 0; r == 0 && i < len;) {
		uint32_t cp;
		size_t n = next_char(s + i, len - i, &cp);

		if (n == 0)
			return -SHP_E_INVAL;
		switch (cp) {
		case '"': r = shp_buf_add(out, "\\\""); break;
		case '\\': r = shp_buf_add(out, "\\\\"); break;
		case '\0': r = shp_buf_add(out, "\\0"); break;
		case '\t': r = shp_buf_add(out, "\\t"); break;
		case '\n': r = shp_buf_add(out, "\\n"); break;
		case '\r': r = shp_buf_add(out, "\\r"); break;
		case 0x85: r = shp_buf_add(out, "\\N"); break;
		case 0x2028: r = shp_buf_add(out, "\\L"); break;
		case 0x2029: r = shp_buf_add(out, "\\P"); break;
		default:
			if (char_is_plain(cp))
				r = shp_buf_addn(out, s + i, n);
			else if (cp < 0x100)
				r = shp_buf_addf(out, "\\x%02X", (unsigned)cp);
			else
				r = shp_buf_addf(out, "\\u%04X", (unsigned)cp);
			break;
		}
		i += n;
	}
	return r < 0 ? r : shp_buf_addch(out, '"');
}

static int add_string(struct shp_buf *out, const char *s, size_t len)
{
	if (plain_ok(s, len))
		return shp_buf_addn(out, s, len);
	return add_double_quoted(out, s, len);
}

static int add_indent(struct shp_buf *out, int indent)
{
	int r = 0;

	for (int i = 0; r == 0 && i < indent; i++)
		r = shp_buf_addch(out, ' ');
	return r;
}

/* "|" block: the lines of s at indent + 2, with the chomping indicator its ending needs. */
static int add_literal(struct shp_buf *out, const char *s, size_t len, int indent)
{
	size_t trailing = 0, start = 0;
	int r;

	while (trailing < len && s[len - 1 - trailing] == '\n')
		trailing++;
	r = shp_buf_add(out, trailing == 0 ? "|-\n" : trailing == 1 ? "|\n" : "|+\n");
	while (r == 0 && start < len) {
		const char *nl = memchr(s + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - s) : len;

		if (end > start && (r = add_indent(out, indent + 2)) == 0)
			r = shp_buf_addn(out, s + start, end - start);
		if (r == 0)
			r = shp_buf_addch(out, '\n');
		start = end + 1;
	}
	return r;
}

/*
 * The canonical (shortest round-trip) text, with "1e+300" written "1.0e+300": YAML 1.1 readers
 * want a '.' in a float, and the core schema reads both.
 */
static int add_real(struct shp_buf *out, const json_t *j)
{
	size_t start = out->len;
	char *e;
	int r;

	r = shp_canon_json(j, out, NULL);
	if (r < 0 || memchr(out->buf + start, '.', out->len - start))
		return r;
	e = memchr(out->buf + start, 'e', out->len - start);
	if (!e)
		return 0;
	r = shp_buf_grow(out, 2);
	if (r < 0) {
		shp_buf_truncate(out, start);
		return r;
	}
	e = memchr(out->buf + start, 'e', out->len - start); /* the buffer may have moved */
	memmove(e + 2, e, (size_t)(out->buf + out->len - e) + 1);
	memcpy(e, ".0", 2);
	out->len += 2;
	return 0;
}

/* Scalars and empty containers: the text that follows "key: " or "- ". */
static int add_scalar(struct shp_buf *out, const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: return shp_buf_add(out, "{}");
	case JSON_ARRAY: return shp_buf_add(out, "[]");
	case JSON_STRING: return add_string(out, json_string_value(j), json_string_length(j));
	case JSON_INTEGER: return shp_buf_addf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
	case JSON_REAL: return add_real(out, j);
	case JSON_TRUE: return shp_buf_add(out, "true");
	case JSON_FALSE: return shp_buf_add(out, "false");
	case JSON_NULL: return shp_buf_add(out, "null");
	}
	return -SHP_E_INVAL;
}

enum place { AT_TOP, AFTER_KEY, AFTER_DASH };

static int emit_node(struct shp_buf *out, const json_t *j, int indent, enum place at, int depth);

static int member_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int emit_key(struct shp_buf *out, const char *key, int indent, bool *explicit_key)
{
	size_t len = strlen(key), old = out->len;
	int r;

	r = add_string(out, key, len);
	*explicit_key = r == 0 && out->len - old > IMPLICIT_KEY_MAX;
	if (r < 0 || !*explicit_key)
		return r < 0 ? r : shp_buf_addch(out, ':');
	/* "? key" on its own line, then ":" at the same indentation. */
	shp_buf_truncate(out, old);
	r = shp_buf_add(out, "? ");
	if (r == 0)
		r = add_double_quoted(out, key, len);
	if (r == 0)
		r = shp_buf_addch(out, '\n');
	if (r == 0)
		r = add_indent(out, indent);
	return r < 0 ? r : shp_buf_addch(out, ':');
}

static int emit_object(struct shp_buf *out, const json_t *j, int indent, bool inline_first,
		       int depth)
{
	_cleanup_free_ const char **keys = NULL;
	size_t n = json_object_size(j), i = 0;
	const char *key;
	json_t *v;
	int r = 0;

	if (!(keys = calloc(n, sizeof(*keys))))
		return -SHP_E_NOMEM;
	json_object_foreach((json_t *)j, key, v) keys[i++] = key;
	qsort(keys, n, sizeof(*keys), member_cmp);
	for (i = 0; r == 0 && i < n; i++) {
		bool explicit_key;

		if (i > 0 || !inline_first)
			r = add_indent(out, indent);
		if (r == 0)
			r = emit_key(out, keys[i], indent, &explicit_key);
		if (r == 0)
			r = emit_node(out, json_object_get(j, keys[i]), indent, AFTER_KEY,
				      depth + 1);
	}
	return r;
}

static int emit_array(struct shp_buf *out, const json_t *j, int indent, bool inline_first,
		      int depth)
{
	size_t i;
	json_t *v;
	int r = 0;

	json_array_foreach(j, i, v)
	{
		if (i > 0 || !inline_first)
			r = add_indent(out, indent);
		if (r == 0)
			r = shp_buf_addch(out, '-');
		if (r == 0)
			r = emit_node(out, v, indent, AFTER_DASH, depth + 1);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Emit j at a place where "key:" or "-" (at indentation indent) or nothing was written. */
static int emit_node(struct shp_buf *out, const json_t *j, int indent, enum place at, int depth)
{
	bool container = (json_is_object(j) && json_object_size(j) > 0) ||
			 (json_is_array(j) && json_array_size(j) > 0);
	int child = at == AT_TOP ? 0 : indent + 2;
	int r = 0;

	/* A distinct code so that the caller can tell depth from size. */
	if (depth > EMIT_DEPTH_MAX)
		return -SHP_E_UNPROCESSABLE;
	if (container && at == AFTER_KEY)
		r = shp_buf_addch(out, '\n');
	else if (at != AT_TOP)
		r = shp_buf_addch(out, ' ');
	if (r < 0)
		return r;
	if (json_is_object(j) && container)
		return emit_object(out, j, child, at == AFTER_DASH, depth);
	if (json_is_array(j) && container)
		return emit_array(out, j, child, at == AFTER_DASH, depth);
	if (json_is_string(j) && literal_ok(json_string_value(j), json_string_length(j)))
		return add_literal(out, json_string_value(j), json_string_length(j), indent);
	r = add_scalar(out, j);
	return r < 0 ? r : shp_buf_addch(out, '\n');
}

int shp_json_to_yaml(const json_t *j, struct shp_buf *out, struct shp_error *err)
{
	size_t old_len = out->len;
	int r;

	if (!j)
		return shp_error_set(err, SHP_E_INTERNAL, "no JSON value to write as YAML");
	r = emit_node(out, j, 0, AT_TOP, 0);
	if (r == 0)
		return 0;
	shp_buf_truncate(out, old_len);
	switch (r) {
	case -SHP_E_NOMEM: return shp_error_set(err, SHP_E_NOMEM, "out of memory writing YAML");
	case -SHP_E_INVAL:
		return shp_error_set(err, SHP_E_INVAL, "cannot write YAML: a string is not UTF-8");
	case -SHP_E_UNPROCESSABLE:
		return shp_error_set(err, SHP_E_LIMIT, "JSON value nests deeper than %d levels",
				     EMIT_DEPTH_MAX);
	default:
		return shp_error_set(err, SHP_E_LIMIT, "YAML output is longer than %zu bytes",
				     out->max);
	}
}
