/*
 * The error table: one row per code, giving its name, API code, HTTP status and CLI exit status.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#include "util.h"

struct errc_row {
	const char *name;
	const char *api_code;
	int http_status;
	enum shp_exit exit_status;
};

static const struct errc_row errc_table[_SHP_E_MAX] = {
	[SHP_OK] = {"SHP_OK", "OK", 200, SHP_EXIT_OK},
	[SHP_E_INVAL] = {"SHP_E_INVAL", "INVALID_ARGUMENT", 400, SHP_EXIT_INVALID},
	[SHP_E_MALFORMED] = {"SHP_E_MALFORMED", "MALFORMED_REQUEST", 400, SHP_EXIT_INVALID},
	[SHP_E_USAGE] = {"SHP_E_USAGE", "USAGE", 400, SHP_EXIT_USAGE},
	[SHP_E_UNAUTH] = {"SHP_E_UNAUTH", "UNAUTHENTICATED", 401, SHP_EXIT_PERM},
	[SHP_E_PERM] = {"SHP_E_PERM", "FORBIDDEN", 403, SHP_EXIT_PERM},
	[SHP_E_NOTFOUND] = {"SHP_E_NOTFOUND", "NOT_FOUND", 404, SHP_EXIT_NOTFOUND},
	[SHP_E_METHOD] = {"SHP_E_METHOD", "METHOD_NOT_ALLOWED", 405, SHP_EXIT_FAILURE},
	[SHP_E_CONFLICT] = {"SHP_E_CONFLICT", "CONFLICT", 409, SHP_EXIT_CONFLICT},
	[SHP_E_LIMIT] = {"SHP_E_LIMIT", "PAYLOAD_TOO_LARGE", 413, SHP_EXIT_INVALID},
	[SHP_E_MEDIA] = {"SHP_E_MEDIA", "UNSUPPORTED_MEDIA_TYPE", 415, SHP_EXIT_INVALID},
	[SHP_E_UNPROCESSABLE] = {"SHP_E_UNPROCESSABLE", "UNPROCESSABLE", 422, SHP_EXIT_INVALID},
	[SHP_E_RATE] = {"SHP_E_RATE", "RATE_LIMITED", 429, SHP_EXIT_RETRY},
	[SHP_E_NOMEM] = {"SHP_E_NOMEM", "INTERNAL", 500, SHP_EXIT_SERVER},
	[SHP_E_INTERNAL] = {"SHP_E_INTERNAL", "INTERNAL", 500, SHP_EXIT_SERVER},
	[SHP_E_DB] = {"SHP_E_DB", "INTERNAL", 500, SHP_EXIT_SERVER},
	[SHP_E_IO] = {"SHP_E_IO", "INTERNAL", 500, SHP_EXIT_FAILURE},
	[SHP_E_K8S] = {"SHP_E_K8S", "UPSTREAM_ERROR", 502, SHP_EXIT_SERVER},
	[SHP_E_PROTO] = {"SHP_E_PROTO", "PROTOCOL_ERROR", 502, SHP_EXIT_SERVER},
	[SHP_E_UNAVAIL] = {"SHP_E_UNAVAIL", "UNAVAILABLE", 503, SHP_EXIT_RETRY},
	[SHP_E_TIMEOUT] = {"SHP_E_TIMEOUT", "TIMEOUT", 504, SHP_EXIT_RETRY},
	[SHP_E_UNREACHABLE] = {"SHP_E_UNREACHABLE", "UNREACHABLE", 503, SHP_EXIT_UNREACHABLE},
	/* the CLI's own: never on the wire */
	[SHP_E_INTERRUPTED] = {"SHP_E_INTERRUPTED", "INTERRUPTED", 500, SHP_EXIT_INTERRUPTED},
};

/*
 * A message cut by snprintf may end in half a UTF-8 character; drop it so the text stays valid
 * for the JSON error body.
 */
static void trim_partial_utf8(char *s)
{
	size_t len = strlen(s), i = len, cont = 0;
	unsigned char lead;
	size_t need;

	while (i > 0 && cont < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
		i--;
		cont++;
	}
	if (i == 0)
		return;
	lead = (unsigned char)s[i - 1];
	if (lead < 0xc0)
		return;
	need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
	if (cont + 1 < need)
		s[i - 1] = '\0';
}

static const struct errc_row *row(enum shp_errc code)
{
	if ((int)code < 0 || code >= _SHP_E_MAX)
		code = SHP_E_INTERNAL;
	return &errc_table[code];
}

int shp_error_field(struct shp_error *err, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	shp_error_vset(err, SHP_E_INVAL, fmt, ap);
	va_end(ap);
	shp_error_detail(err, "field", "%s", field);
	return -SHP_E_INVAL;
}

int shp_error_vset(struct shp_error *err, enum shp_errc code, const char *fmt, va_list ap)
{
	char msg[SHP_ERROR_MSG_MAX];

	if (code <= SHP_OK || code >= _SHP_E_MAX)
		code = SHP_E_INTERNAL;
	if (!err)
		return -(int)code;
	/* Format first: the arguments may point into *err (its old message or details). */
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	trim_partial_utf8(msg);
	shp_error_clear(err);
	err->code = code;
	memcpy(err->msg, msg, sizeof(msg));
	return -(int)code;
}

int shp_error_set(struct shp_error *err, enum shp_errc code, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = shp_error_vset(err, code, fmt, ap);
	va_end(ap);
	return r;
}

int shp_error_errno(struct shp_error *err, int errnum, const char *fmt, ...)
{
	va_list ap;
	char ebuf[128];
	size_t len;
	int r;

	va_start(ap, fmt);
	r = shp_error_vset(err, SHP_E_IO, fmt, ap);
	va_end(ap);
	if (!err)
		return r;
	err->sys_errno = errnum;
	len = strlen(err->msg);
	(void)snprintf(err->msg + len, sizeof(err->msg) - len, ": %s",
		       shp_strerror(errnum, ebuf, sizeof(ebuf)));
	trim_partial_utf8(err->msg);
	return r;
}

int shp_error_prefix(struct shp_error *err, const char *fmt, ...)
{
	char prefix[SHP_ERROR_MSG_MAX];
	char old[SHP_ERROR_MSG_MAX];
	va_list ap;

	if (!err)
		return -SHP_E_INTERNAL;
	if (err->code == SHP_OK)
		err->code = SHP_E_INTERNAL;
	va_start(ap, fmt);
	(void)vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	(void)snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
	trim_partial_utf8(err->msg);
	return -(int)err->code;
}

void shp_error_detail(struct shp_error *err, const char *key, const char *fmt, ...)
{
	struct shp_error_detail *d;
	va_list ap;

	if (!err || err->n_details >= SHP_ERROR_DETAILS_MAX)
		return;
	d = &err->details[err->n_details++];
	(void)snprintf(d->key, sizeof(d->key), "%s", key);
	trim_partial_utf8(d->key);
	va_start(ap, fmt);
	(void)vsnprintf(d->value, sizeof(d->value), fmt, ap);
	va_end(ap);
	trim_partial_utf8(d->value);
}

void shp_error_api_code(struct shp_error *err, const char *api_code)
{
	if (err)
		(void)snprintf(err->api_code, sizeof(err->api_code), "%s", api_code);
}

void shp_error_clear(struct shp_error *err)
{
	if (err)
		*err = (struct shp_error)SHP_ERROR_INIT;
}

const char *shp_errc_to_string(enum shp_errc code)
{
	return row(code)->name;
}

const char *shp_errc_api_code(enum shp_errc code)
{
	return row(code)->api_code;
}

int shp_errc_http_status(enum shp_errc code)
{
	return row(code)->http_status;
}

enum shp_exit shp_errc_exit_status(enum shp_errc code)
{
	return row(code)->exit_status;
}

const char *shp_error_api_code_of(const struct shp_error *err)
{
	if (err->api_code[0])
		return err->api_code;
	return shp_errc_api_code(err->code);
}

enum shp_errc shp_errc_from_http(long http_status)
{
	switch (http_status) {
	case 400: return SHP_E_INVAL;
	case 401: return SHP_E_UNAUTH;
	case 403: return SHP_E_PERM;
	case 404: return SHP_E_NOTFOUND;
	case 405: return SHP_E_METHOD;
	case 409: return SHP_E_CONFLICT;
	case 413: return SHP_E_LIMIT;
	case 415: return SHP_E_MEDIA;
	case 422: return SHP_E_UNPROCESSABLE;
	case 429: return SHP_E_RATE;
	case 502: return SHP_E_PROTO;
	case 503: return SHP_E_UNAVAIL;
	case 504: return SHP_E_TIMEOUT;
	default: break;
	}
	if (http_status >= 500)
		return SHP_E_INTERNAL;
	if (http_status >= 400)
		return SHP_E_INVAL;
	return SHP_OK;
}

enum shp_errc shp_errc_from_api(const char *api_code, long http_status)
{
	enum shp_errc fallback = shp_errc_from_http(http_status);

	/* A specific code (CONFIRMATION_REQUIRED, ...) keeps the class of its HTTP status. */
	if (!api_code)
		return fallback;
	for (int c = SHP_E_INVAL; c < _SHP_E_MAX; c++)
		if (strcmp(errc_table[c].api_code, api_code) == 0 &&
		    errc_table[c].http_status == http_status)
			return (enum shp_errc)c;
	return fallback;
}
