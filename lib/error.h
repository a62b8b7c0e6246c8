/*
 * The one error convention of shepherd. A fallible function returns 0 or -SHP_E_* and fills a
 * caller-provided struct shp_error (which may be NULL). Each code maps to one HTTP status, one
 * stable API code string and one CLI exit status, all in error.c's table.
 *
 * Contract: err is untouched on success; on failure it holds a complete, lowercase message
 * (git style: what failed first, subject in 'quotes'). shp_error_prefix adds context.
 * A few (key, value) details travel with the error into the API's "details" object.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>

#include "cleanup.h"

enum shp_errc {
	SHP_OK = 0,
	SHP_E_INVAL,         /* validation failed: 400 INVALID_ARGUMENT */
	SHP_E_MALFORMED,     /* unparsable request body: 400 MALFORMED_REQUEST */
	SHP_E_USAGE,         /* CLI usage error: exit 2 */
	SHP_E_UNAUTH,        /* no identity: 401 */
	SHP_E_PERM,          /* not allowed: 403 */
	SHP_E_NOTFOUND,      /* 404 */
	SHP_E_METHOD,        /* 405 */
	SHP_E_CONFLICT,      /* 409 */
	SHP_E_LIMIT,         /* a size cap was hit: 413 */
	SHP_E_MEDIA,         /* 415 */
	SHP_E_UNPROCESSABLE, /* 422 */
	SHP_E_RATE,          /* 429 */
	SHP_E_NOMEM,         /* 500 */
	SHP_E_INTERNAL,      /* 500 */
	SHP_E_DB,            /* 500, never with detail on the wire */
	SHP_E_IO,            /* 500 (local I/O failure) */
	SHP_E_K8S,           /* 502 */
	SHP_E_PROTO,         /* 502: a peer spoke nonsense */
	SHP_E_UNAVAIL,       /* 503: retry later */
	SHP_E_TIMEOUT,       /* 504 */
	SHP_E_UNREACHABLE,   /* CLI: the daemon could not be reached, exit 3 */
	SHP_E_INTERRUPTED,   /* CLI: Ctrl-C in the shell stopped the command, exit 130 */
	_SHP_E_MAX,
};

/* CLI exit statuses, documented in shepherd(1). */
enum shp_exit {
	SHP_EXIT_OK = 0,
	SHP_EXIT_FAILURE = 1,
	SHP_EXIT_USAGE = 2,
	SHP_EXIT_UNREACHABLE = 3,
	SHP_EXIT_NOTFOUND = 4,
	SHP_EXIT_PERM = 5,
	SHP_EXIT_CONFLICT = 6,
	SHP_EXIT_INVALID = 7,
	SHP_EXIT_SERVER = 8,
	SHP_EXIT_RETRY = 9,
	SHP_EXIT_INTERRUPTED = 130, /* 128 + SIGINT, as a shell reports it */
};

#define SHP_ERROR_MSG_MAX 512
#define SHP_ERROR_DETAILS_MAX 6

struct shp_error_detail {
	char key[32];
	char value[160];
};

struct shp_error {
	enum shp_errc code;
	int sys_errno;
	char sqlstate[6];
	long http_status;
	char api_code[40]; /* overrides the code's default API string, e.g. "CONFIRMATION_REQUIRED"
			    */
	char msg[SHP_ERROR_MSG_MAX];
	int n_details;
	struct shp_error_detail details[SHP_ERROR_DETAILS_MAX];
};

#define SHP_ERROR_INIT                                                                             \
	{                                                                                          \
		.code = SHP_OK                                                                     \
	}

/* Set code and message; returns -code so callers can `return shp_error_set(...)`. */
int shp_error_set(struct shp_error *err, enum shp_errc code, const char *fmt, ...) SHP_PRINTF(3, 4);
int shp_error_vset(struct shp_error *err, enum shp_errc code, const char *fmt, va_list ap)
	SHP_PRINTF(3, 0);
/* SHP_E_INVAL with the message, and the detail "field" naming what is wrong; returns -SHP_E_INVAL.
 */
int shp_error_field(struct shp_error *err, const char *field, const char *fmt, ...)
	SHP_PRINTF(3, 4);
/* Like shp_error_set with sys_errno = errno and ": <strerror>" appended. */
int shp_error_errno(struct shp_error *err, int errnum, const char *fmt, ...) SHP_PRINTF(3, 4);
/* Prepend "context: " to the message; returns -err->code (or -SHP_E_INTERNAL if err is unset). */
int shp_error_prefix(struct shp_error *err, const char *fmt, ...) SHP_PRINTF(2, 3);
/* Attach a detail (key, printf value); silently drops past SHP_ERROR_DETAILS_MAX. */
void shp_error_detail(struct shp_error *err, const char *key, const char *fmt, ...)
	SHP_PRINTF(3, 4);
/* Override the API code string (upper-case, stable). */
void shp_error_api_code(struct shp_error *err, const char *api_code);
/* Reset to SHP_ERROR_INIT. */
void shp_error_clear(struct shp_error *err);

/* Table look-ups; all return a valid value for any input. */
const char *shp_errc_to_string(enum shp_errc code);     /* "SHP_E_INVAL" style name */
const char *shp_errc_api_code(enum shp_errc code);      /* "INVALID_ARGUMENT" */
int shp_errc_http_status(enum shp_errc code);           /* 400 */
enum shp_exit shp_errc_exit_status(enum shp_errc code); /* SHP_EXIT_INVALID */
/* The API code of err (override or default). */
const char *shp_error_api_code_of(const struct shp_error *err);
/* Map an API code string back to a code; unknown strings fall back on the HTTP status. */
enum shp_errc shp_errc_from_api(const char *api_code, long http_status);
/* Map an HTTP status to the closest code. */
enum shp_errc shp_errc_from_http(long http_status);
