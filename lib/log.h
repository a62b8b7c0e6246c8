/*
 * The log sink of both programs. One line per event, written with a single write(2) to one fd
 * (stderr by default), as logfmt ("ts=... level=info msg=\"...\" req=ab12 key=value") or JSON
 * lines. Every line carries the calling thread's context (up to 8 key/values: req, worker, job,
 * ...). Secrets are masked at the sink, whatever the caller passed:
 *  - a field whose key looks secret (password, passwd, token, secret, key, credential,
 *    api_key, apikey, private_key, authorization, cookie; case-insensitive, as a whole key or a
 *    _/-/. separated part of it) has its value replaced by "***";
 *  - JSON values are walked and nested secret keys masked the same way;
 *  - inside free text (the message, string values): "key=value", "key: value", "\"key\":\"v\"",
 *    "Bearer <tok>", "Basic <b64>", URL userinfo ("postgres://u:pw@h") and shepherd tokens
 *    ("shp_...") are masked.
 *
 * Global state: the sink configuration (set once in main before threads start) and the
 * thread-local context. All functions are thread-safe.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>

#include <jansson.h>

#include "cleanup.h"

struct shp_buf;

enum shp_log_level { SHP_LOG_ERROR, SHP_LOG_WARN, SHP_LOG_INFO, SHP_LOG_DEBUG, _SHP_LOG_LEVEL_MAX };
enum shp_log_format { SHP_LOG_LOGFMT, SHP_LOG_JSON };

/* Configure the sink: minimum level, format, fd (not owned). Call before threads start. */
void shp_log_setup(enum shp_log_level level, enum shp_log_format format, int fd);
enum shp_log_level shp_log_get_level(void);
bool shp_log_is_enabled(enum shp_log_level level);
/* "error", "warn", "info", "debug" <-> level; from_string returns -1 for unknown names. */
const char *shp_log_level_to_string(enum shp_log_level level);
int shp_log_level_from_string(const char *s);

/* Thread-local context: set (replaces a key), unset, clear. value is copied (max 64 bytes). */
void shp_log_ctx_set(const char *key, const char *value);
void shp_log_ctx_unset(const char *key);
void shp_log_ctx_clear(void);

/* Log a printf-style message. */
void shp_log(enum shp_log_level level, const char *fmt, ...) SHP_PRINTF(2, 3);
void shp_logv(enum shp_log_level level, const char *fmt, va_list ap) SHP_PRINTF(2, 0);
/*
 * Log msg with extra fields: fields is a JSON object (borrowed, may be NULL); its members are
 * written after the context, masked as described above.
 */
void shp_log_fields(enum shp_log_level level, const char *msg, const json_t *fields);

/* The masking, exposed for other sinks and for tests. */
bool shp_mask_key_is_secret(const char *key);
/* Append text to out with secrets inside it masked. */
int shp_mask_text(const char *text, struct shp_buf *out) SHP_MUSTCHECK;
/* Deep copy of j with secret keys' values replaced by "***" and string values text-masked. */
json_t *shp_mask_json(const json_t *j);

#define log_error(...) shp_log(SHP_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) shp_log(SHP_LOG_WARN, __VA_ARGS__)
#define log_info(...) shp_log(SHP_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (shp_log_is_enabled(SHP_LOG_DEBUG))                                             \
			shp_log(SHP_LOG_DEBUG, __VA_ARGS__);                                       \
	} while (0)
