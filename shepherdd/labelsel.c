/*
 * Label selectors: a small lexer and a recursive-descent parser for the API server's selector
 * syntax, the validation of keys and values (qualified names, label values), and the matcher.
 * A parsed selector is a flat array of terms, immutable after parsing.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "labelsel.h"

enum op { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOT_EXISTS };

struct term {
	char *key;
	enum op op;
	char **values; /* one for EQ/NE, >= 1 for IN/NOTIN, none otherwise */
	size_t n_values;
};

struct shd_labelsel {
	struct term *terms;
	size_t n;
};

/*
 * The grammar, as the API server's parser (k8s.io/apimachinery labels.Parse) reads it:
 *
 *   selector    := "" | requirement ("," requirement)*
 *   requirement := "!" KEY | KEY | KEY ("=" | "==" | "!=") VALUE? | KEY ("in" | "notin") set
 *   set         := "(" VALUE? ("," VALUE?)* ")"      (at least one element)
 *
 * An identifier runs until whitespace or one of ! = , ( ) < >, so "in" and "notin" are keywords
 * only as whole words, and a key or value is validated after it is read.
 */
enum tok {
	T_END,
	T_IDENT,
	T_NOT,   /* ! */
	T_EQ,    /* = or == */
	T_NE,    /* != */
	T_IN,    /* in */
	T_NOTIN, /* notin */
	T_LPAR,
	T_RPAR,
	T_COMMA,
	T_CMP, /* < or >: numeric comparisons, which label selectors here do not support */
};

struct lexer {
	const char *s;
	size_t pos;
	/* the last token read */
	enum tok tok;
	const char *text;
	size_t len;
	size_t at; /* its offset, for messages */
};

static bool is_special(char c)
{
	return c == '!' || c == '=' || c == ',' || c == '(' || c == ')' || c == '<' || c == '>';
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/*
 * Read the next token into lx (no allocation; text points into the selector). Bytes that are
 * not ASCII end up inside identifiers, which validation then refuses.
 */
static void lex(struct lexer *lx)
{
	const char *s = lx->s;

	while (is_space(s[lx->pos]))
		lx->pos++;
	lx->at = lx->pos;
	lx->text = s + lx->pos;
	lx->len = 1;
	switch (s[lx->pos]) {
	case '\0':
		lx->tok = T_END;
		lx->len = 0;
		return;
	case ',': lx->tok = T_COMMA; break;
	case '(': lx->tok = T_LPAR; break;
	case ')': lx->tok = T_RPAR; break;
	case '<':
	case '>': lx->tok = T_CMP; break;
	case '!':
		lx->tok = s[lx->pos + 1] == '=' ? T_NE : T_NOT;
		lx->len = lx->tok == T_NE ? 2 : 1;
		break;
	case '=':
		lx->tok = T_EQ;
		lx->len = s[lx->pos + 1] == '=' ? 2 : 1;
		break;
	default:
		lx->len = 0;
		while (s[lx->pos + lx->len] && !is_space(s[lx->pos + lx->len]) &&
		       !is_special(s[lx->pos + lx->len]))
			lx->len++;
		if (lx->len == 2 && memcmp(lx->text, "in", 2) == 0)
			lx->tok = T_IN;
		else if (lx->len == 5 && memcmp(lx->text, "notin", 5) == 0)
			lx->tok = T_NOTIN;
		else
			lx->tok = T_IDENT;
	}
	lx->pos += lx->len;
}

/* A printable copy of the current token for an error message, shortened past 40 bytes. */
static void tok_quote(const struct lexer *lx, char *out, size_t size)
{
	size_t n = 0, show = lx->len > 40 ? 40 : lx->len;

	if (lx->tok == T_END) {
		snprintf(out, size, "end of selector");
		return;
	}
	out[n++] = '\'';
	for (size_t i = 0; i < show && n + 6 < size; i++) {
		unsigned char c = (unsigned char)lx->text[i];
		out[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (show < lx->len)
		n += (size_t)snprintf(out + n, size - n, "...");
	out[n++] = '\'';
	out[n] = '\0';
}

static int unexpected(const struct lexer *lx, const char *expected, struct shp_error *err)
{
	char q[80];

	tok_quote(lx, q, sizeof(q));
	return shp_error_set(err, SHP_E_INVAL,
			     "invalid label selector: %s at offset %zu, expected %s", q, lx->at,
			     expected);
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], at most 63: a label value or a key's name part. */
static bool is_qualified_part(const char *s, size_t n)
{
	if (n == 0 || n > 63 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

/* A DNS-1123 subdomain: dot-separated lowercase labels, at most 253. */
static bool is_dns_subdomain(const char *s, size_t n)
{
	size_t start = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.') {
			bool ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
				  s[i] == '-';
			if (!ok)
				return false;
			continue;
		}
		if (i == start || s[start] == '-' || s[i - 1] == '-')
			return false;
		start = i + 1;
	}
	return true;
}

static bool is_valid_key(const char *s, size_t n)
{
	const char *slash = memchr(s, '/', n);

	if (!slash)
		return is_qualified_part(s, n);
	return is_dns_subdomain(s, (size_t)(slash - s)) &&
	       is_qualified_part(slash + 1, n - (size_t)(slash - s) - 1);
}

static bool is_valid_value(const char *s, size_t n)
{
	return n == 0 || is_qualified_part(s, n);
}

bool shd_label_key_is_valid(const char *s)
{
	return s && is_valid_key(s, strlen(s));
}

bool shd_label_value_is_valid(const char *s)
{
	return s && is_valid_value(s, strlen(s));
}

bool shd_dns_subdomain_is_valid(const char *s)
{
	return s && is_dns_subdomain(s, strnlen(s, 254));
}

static int add_value(struct term *t, const char *s, size_t n, struct shp_error *err)
{
	char **v = realloc(t->values, (t->n_values + 1) * sizeof(*v));

	if (!v)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	t->values = v;
	v[t->n_values] = strndup(s, n);
	if (!v[t->n_values])
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	t->n_values++;
	return 0;
}

static int bad_token_value(const struct lexer *lx, const char *what, struct shp_error *err)
{
	char q[80];

	tok_quote(lx, q, sizeof(q));
	return shp_error_set(err, SHP_E_INVAL,
			     "invalid label selector: %s %s at offset %zu (at most 63 characters "
			     "of [A-Za-z0-9._-], alphanumeric at both ends)",
			     what, q, lx->at);
}

/* The value after = or !=; an empty value is allowed (k= selects k with value ""). */
static int parse_exact_value(struct lexer *lx, struct term *t, struct shp_error *err)
{
	lex(lx);
	if (lx->tok == T_END || lx->tok == T_COMMA)
		return add_value(t, "", 0, err);
	if (lx->tok != T_IDENT)
		return unexpected(lx, "a value", err);
	if (!is_valid_value(lx->text, lx->len))
		return bad_token_value(lx, "value", err);
	int r = add_value(t, lx->text, lx->len, err);
	if (r < 0)
		return r;
	lex(lx);
	return 0;
}

/* ( v1, v2, ... ) after in/notin; an empty element is the empty value, as the API server has. */
static int parse_set(struct lexer *lx, struct term *t, struct shp_error *err)
{
	int r;

	lex(lx);
	if (lx->tok != T_LPAR)
		return unexpected(lx, "'('", err);
	for (;;) {
		lex(lx);
		if (lx->tok == T_IDENT) {
			if (!is_valid_value(lx->text, lx->len))
				return bad_token_value(lx, "value", err);
			if ((r = add_value(t, lx->text, lx->len, err)) < 0)
				return r;
			lex(lx);
		} else if (lx->tok == T_COMMA || lx->tok == T_RPAR) {
			if (t->n_values == 0 && lx->tok == T_RPAR)
				return shp_error_set(err, SHP_E_INVAL,
						     "invalid label selector: empty value set at "
						     "offset %zu",
						     lx->at);
			if ((r = add_value(t, "", 0, err)) < 0)
				return r;
		} else {
			return unexpected(lx, "a value, ',' or ')'", err);
		}
		if (lx->tok == T_RPAR)
			break;
		if (lx->tok != T_COMMA)
			return unexpected(lx, "',' or ')'", err);
	}
	lex(lx);
	return 0;
}

static int parse_key(struct lexer *lx, struct term *t, struct shp_error *err)
{
	if (lx->tok != T_IDENT)
		return unexpected(lx, "a label key", err);
	if (!is_valid_key(lx->text, lx->len)) {
		char q[80];
		tok_quote(lx, q, sizeof(q));
		return shp_error_set(err, SHP_E_INVAL,
				     "invalid label selector: key %s at offset %zu is not a "
				     "qualified name ([prefix/]name, name at most 63 characters)",
				     q, lx->at);
	}
	t->key = strndup(lx->text, lx->len);
	if (!t->key)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return 0;
}

/* One requirement, starting at the current token; leaves the token after it current. */
static int parse_term(struct lexer *lx, struct term *t, struct shp_error *err)
{
	int r;

	if (lx->tok == T_NOT) {
		lex(lx);
		t->op = OP_NOT_EXISTS;
		if ((r = parse_key(lx, t, err)) < 0)
			return r;
		lex(lx);
		return 0;
	}
	if ((r = parse_key(lx, t, err)) < 0)
		return r;
	lex(lx);
	switch (lx->tok) {
	case T_END:
	case T_COMMA: t->op = OP_EXISTS; return 0;
	case T_EQ: t->op = OP_EQ; return parse_exact_value(lx, t, err);
	case T_NE: t->op = OP_NE; return parse_exact_value(lx, t, err);
	case T_IN: t->op = OP_IN; return parse_set(lx, t, err);
	case T_NOTIN: t->op = OP_NOTIN; return parse_set(lx, t, err);
	case T_CMP:
		return shp_error_set(err, SHP_E_INVAL,
				     "invalid label selector: the operators '<' and '>' are not "
				     "supported (offset %zu)",
				     lx->at);
	default: return unexpected(lx, "'=', '==', '!=', 'in', 'notin', ',' or the end", err);
	}
}

static void term_release(struct term *t)
{
	free(t->key);
	for (size_t i = 0; i < t->n_values; i++)
		free(t->values[i]);
	free(t->values);
}

struct shd_labelsel *shd_labelsel_free(struct shd_labelsel *sel)
{
	if (!sel)
		return NULL;
	for (size_t i = 0; i < sel->n; i++)
		term_release(&sel->terms[i]);
	free(sel->terms);
	free(sel);
	return NULL;
}

static int parse_all(struct lexer *lx, struct shd_labelsel *sel, struct shp_error *err)
{
	lex(lx);
	if (lx->tok == T_END)
		return 0;
	for (;;) {
		if (sel->n == SHD_LABELSEL_MAX_TERMS)
			return shp_error_set(err, SHP_E_INVAL,
					     "invalid label selector: more than %d terms",
					     SHD_LABELSEL_MAX_TERMS);
		struct term *terms = realloc(sel->terms, (sel->n + 1) * sizeof(*terms));
		if (!terms)
			return shp_error_set(err, SHP_E_NOMEM, "out of memory");
		sel->terms = terms;
		memset(&terms[sel->n], 0, sizeof(*terms));
		sel->n++;
		int r = parse_term(lx, &terms[sel->n - 1], err);
		if (r < 0)
			return r;
		if (lx->tok == T_END)
			return 0;
		if (lx->tok != T_COMMA)
			return unexpected(lx, "',' or the end", err);
		lex(lx);
	}
}

struct shd_labelsel *shd_labelsel_parse(const char *s, struct shp_error *err)
{
	_cleanup_(shd_labelsel_freep) struct shd_labelsel *sel = NULL;

	if (s && strnlen(s, SHD_LABELSEL_MAX_LEN + 1) > SHD_LABELSEL_MAX_LEN) {
		shp_error_set(err, SHP_E_INVAL, "invalid label selector: longer than %d bytes",
			      SHD_LABELSEL_MAX_LEN);
		return NULL;
	}
	sel = calloc(1, sizeof(*sel));
	if (!sel) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	struct lexer lx = {.s = s ? s : ""};
	if (parse_all(&lx, sel, err) < 0)
		return NULL;
	return TAKE_PTR(sel);
}

bool shd_labelsel_is_empty(const struct shd_labelsel *sel)
{
	return !sel || sel->n == 0;
}

static bool in_values(const struct term *t, const char *v)
{
	for (size_t i = 0; i < t->n_values; i++)
		if (strcmp(t->values[i], v) == 0)
			return true;
	return false;
}

/* As the API server matches: != and notin also hold when the key is absent. */
static bool term_match(const struct term *t, const json_t *labels)
{
	const json_t *jv =
		labels && json_is_object(labels) ? json_object_get(labels, t->key) : NULL;
	const char *v = json_is_string(jv) ? json_string_value(jv) : NULL;

	switch (t->op) {
	case OP_EQ:
	case OP_IN: return v && in_values(t, v);
	case OP_NE:
	case OP_NOTIN: return !v || !in_values(t, v);
	case OP_EXISTS: return v != NULL;
	case OP_NOT_EXISTS: return v == NULL;
	}
	return false;
}

bool shd_labelsel_match(const struct shd_labelsel *sel, const json_t *labels)
{
	if (!sel)
		return true;
	for (size_t i = 0; i < sel->n; i++)
		if (!term_match(&sel->terms[i], labels))
			return false;
	return true;
}
