/*
 * The capped buffer. Growth doubles, bounded by max + 1 (room for the NUL).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"

char shp_buf_empty[1];

void shp_buf_init(struct shp_buf *b, size_t max)
{
	*b = (struct shp_buf)SHP_BUF_INIT(max);
}

int shp_buf_grow(struct shp_buf *b, size_t n)
{
	size_t need, nalloc;
	char *p;

	/* len + n + 1 must not wrap, whatever the cap (SIZE_MAX included). */
	if (n > b->max || b->len > b->max - n || b->len + n == SIZE_MAX)
		return -SHP_E_LIMIT;
	need = b->len + n + 1;
	if (need <= b->alloc)
		return 0;
	nalloc = b->alloc ? b->alloc : 64;
	while (nalloc < need)
		nalloc = nalloc > SIZE_MAX / 2 ? need : nalloc * 2;
	if (b->max < SIZE_MAX && nalloc > b->max + 1)
		nalloc = b->max + 1;
	p = b->alloc ? realloc(b->buf, nalloc) : malloc(nalloc);
	if (!p)
		return -SHP_E_NOMEM;
	if (!b->alloc)
		p[0] = '\0';
	b->buf = p;
	b->alloc = nalloc;
	return 0;
}

int shp_buf_addn(struct shp_buf *b, const void *data, size_t n)
{
	int r;

	if (n == 0)
		return 0;
	r = shp_buf_grow(b, n);
	if (r < 0)
		return r;
	memcpy(b->buf + b->len, data, n);
	b->len += n;
	b->buf[b->len] = '\0';
	return 0;
}

int shp_buf_add(struct shp_buf *b, const char *s)
{
	return shp_buf_addn(b, s, strlen(s));
}

int shp_buf_addch(struct shp_buf *b, char c)
{
	return shp_buf_addn(b, &c, 1);
}

int shp_buf_vaddf(struct shp_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n, r;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return -SHP_E_INVAL;
	r = shp_buf_grow(b, (size_t)n);
	if (r < 0)
		return r;
	if (n > 0) {
		(void)vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
		b->len += (size_t)n;
	}
	return 0;
}

int shp_buf_addf(struct shp_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = shp_buf_vaddf(b, fmt, ap);
	va_end(ap);
	return r;
}

void shp_buf_reset(struct shp_buf *b)
{
	shp_buf_truncate(b, 0);
}

void shp_buf_truncate(struct shp_buf *b, size_t len)
{
	if (len >= b->len)
		return;
	b->len = len;
	b->buf[len] = '\0'; /* for alloc == 0, len is 0 and buf[0] is already '\0' */
}

char *shp_buf_detach(struct shp_buf *b, size_t *ret_len)
{
	char *p;
	size_t len = b->len;

	if (b->alloc)
		p = b->buf;
	else if (!(p = strdup("")))
		return NULL;
	if (ret_len)
		*ret_len = len;
	shp_buf_init(b, b->max);
	return p;
}

void shp_buf_release(struct shp_buf *b)
{
	if (b->alloc)
		free(b->buf);
	shp_buf_init(b, b->max);
}
