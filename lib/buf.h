/*
 * struct shp_buf: a growable, NUL-terminated byte buffer with a mandatory size cap.
 *
 * Invariants (strbuf's, plus dynbuf's cap):
 *  - after SHP_BUF_INIT(max) or shp_buf_init(), `buf` is never NULL and buf[len] == '\0';
 *  - `len` never exceeds `max`; an append that would pass `max` fails with -SHP_E_LIMIT and
 *    leaves the buffer exactly as it was (likewise on -SHP_E_NOMEM);
 *  - `alloc` is private; the only way to take ownership of the bytes is shp_buf_detach();
 *  - the buffer may hold NUL bytes (shp_buf_addn); `len` is authoritative.
 *
 * Thread rules: none; a buffer belongs to one thread at a time.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

struct shp_buf {
	char *buf;
	size_t len;
	size_t max;
	size_t alloc; /* private: 0 while buf points at the shared empty string */
};

extern char shp_buf_empty[];

#define SHP_BUF_INIT(cap)                                                                          \
	{                                                                                          \
		.buf = shp_buf_empty, .len = 0, .max = (cap), .alloc = 0                           \
	}

void shp_buf_init(struct shp_buf *b, size_t max);
/* Append; 0, -SHP_E_LIMIT (cap) or -SHP_E_NOMEM. */
int shp_buf_add(struct shp_buf *b, const char *s) SHP_MUSTCHECK;
int shp_buf_addn(struct shp_buf *b, const void *data, size_t n) SHP_MUSTCHECK;
int shp_buf_addch(struct shp_buf *b, char c) SHP_MUSTCHECK;
int shp_buf_addf(struct shp_buf *b, const char *fmt, ...) SHP_PRINTF(2, 3) SHP_MUSTCHECK;
int shp_buf_vaddf(struct shp_buf *b, const char *fmt, va_list ap) SHP_PRINTF(2, 0) SHP_MUSTCHECK;
/* Make room for n more bytes without changing len. */
int shp_buf_grow(struct shp_buf *b, size_t n) SHP_MUSTCHECK;
/* Forget the contents, keep the allocation. */
void shp_buf_reset(struct shp_buf *b);
/* Shorten to len (no-op if len >= b->len). */
void shp_buf_truncate(struct shp_buf *b, size_t len);
/* Hand out the bytes (always heap-allocated, NUL-terminated; NULL on OOM) and re-init. */
char *shp_buf_detach(struct shp_buf *b, size_t *ret_len);
/* Free the contents; the buffer is re-initialised with the same cap. */
void shp_buf_release(struct shp_buf *b);

static inline void shp_buf_releasep(struct shp_buf *b)
{
	shp_buf_release(b);
}
