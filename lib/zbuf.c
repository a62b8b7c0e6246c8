/*
 * zlib wrappers: whole-buffer deflate and a capped, strict inflate. Both stream through a
 * fixed chunk so neither depends on zlib's 32-bit length fields for large inputs.
 */
#include "config.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <zlib.h>

#include "buf.h"
#include "error.h"
#include "zbuf.h"

#define ZBUF_CHUNK 16384

/* Feed at most UINT_MAX bytes of the remaining input to the stream. */
static void feed(z_stream *zs, const unsigned char **src, size_t *left)
{
	if (zs->avail_in != 0 || *left == 0)
		return;
	size_t n = *left > UINT_MAX ? UINT_MAX : *left;

	zs->next_in = (unsigned char *)*src;
	zs->avail_in = (uInt)n;
	*src += n;
	*left -= n;
}

static int deflate_loop(z_stream *zs, const void *src, size_t len, struct shp_buf *out,
			struct shp_error *err)
{
	const unsigned char *p = src;
	size_t left = len;
	unsigned char chunk[ZBUF_CHUNK];
	int zr;

	do {
		feed(zs, &p, &left);
		zs->next_out = chunk;
		zs->avail_out = sizeof(chunk);
		zr = deflate(zs, left == 0 ? Z_FINISH : Z_NO_FLUSH);
		if (zr == Z_STREAM_ERROR)
			return shp_error_set(err, SHP_E_INTERNAL, "deflate: %s",
					     zs->msg ? zs->msg : "stream error");
		int r = shp_buf_addn(out, chunk, sizeof(chunk) - zs->avail_out);

		if (r < 0)
			return shp_error_set(err, -r,
					     r == -SHP_E_LIMIT ? "compressed data over %zu bytes"
							       : "out of memory compressing (%zu)",
					     out->max);
	} while (zr != Z_STREAM_END);
	return 0;
}

int shp_zbuf_deflate(const void *src, size_t len, struct shp_buf *out, struct shp_error *err)
{
	z_stream zs;
	size_t start = out->len;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit(&zs, Z_DEFAULT_COMPRESSION) != Z_OK)
		return shp_error_set(err, SHP_E_NOMEM, "deflate: cannot initialise zlib");
	int r = deflate_loop(&zs, src, len, out, err);

	deflateEnd(&zs);
	if (r < 0)
		shp_buf_truncate(out, start);
	return r;
}

/* One inflate step's output appended to out, honouring max_out. */
static int inflate_emit(const unsigned char *chunk, size_t n, size_t *produced, size_t max_out,
			struct shp_buf *out, struct shp_error *err)
{
	if (n > max_out - *produced)
		return shp_error_set(err, SHP_E_LIMIT, "inflated data over %zu bytes", max_out);
	*produced += n;
	int r = shp_buf_addn(out, chunk, n);

	if (r == -SHP_E_LIMIT)
		return shp_error_set(err, SHP_E_LIMIT, "inflated data over %zu bytes", out->max);
	if (r < 0)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory inflating");
	return 0;
}

static int inflate_loop(z_stream *zs, const void *src, size_t len, size_t max_out,
			struct shp_buf *out, struct shp_error *err)
{
	const unsigned char *p = src;
	size_t left = len, produced = 0;
	unsigned char chunk[ZBUF_CHUNK];
	int zr;

	do {
		feed(zs, &p, &left);
		zs->next_out = chunk;
		zs->avail_out = sizeof(chunk);
		zr = inflate(zs, Z_NO_FLUSH);
		if (zr == Z_NEED_DICT || zr == Z_DATA_ERROR || zr == Z_STREAM_ERROR)
			return shp_error_set(err, SHP_E_PROTO, "corrupt compressed data: %s",
					     zs->msg ? zs->msg : "invalid stream");
		if (zr == Z_MEM_ERROR)
			return shp_error_set(err, SHP_E_NOMEM, "out of memory inflating");
		int r = inflate_emit(chunk, sizeof(chunk) - zs->avail_out, &produced, max_out, out,
				     err);
		if (r < 0)
			return r;
		/* no progress possible: the input ended before the stream did */
		if (zr == Z_BUF_ERROR && zs->avail_in == 0 && left == 0)
			return shp_error_set(err, SHP_E_PROTO,
					     "corrupt compressed data: truncated stream");
	} while (zr != Z_STREAM_END);
	if (zs->avail_in != 0 || left != 0)
		return shp_error_set(err, SHP_E_PROTO,
				     "corrupt compressed data: trailing bytes after the stream");
	return 0;
}

int shp_zbuf_inflate(const void *src, size_t len, size_t max_out, struct shp_buf *out,
		     struct shp_error *err)
{
	z_stream zs;
	size_t start = out->len;

	memset(&zs, 0, sizeof(zs));
	if (len == 0)
		return shp_error_set(err, SHP_E_PROTO, "corrupt compressed data: empty input");
	if (inflateInit(&zs) != Z_OK)
		return shp_error_set(err, SHP_E_NOMEM, "inflate: cannot initialise zlib");
	int r = inflate_loop(&zs, src, len, max_out, out, err);

	inflateEnd(&zs);
	if (r < 0)
		shp_buf_truncate(out, start);
	return r;
}
