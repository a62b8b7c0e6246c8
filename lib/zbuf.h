/*
 * Deflate and inflate (zlib format, RFC 1950) into a capped struct shp_buf. Used for the
 * stored VM revisions; the inflated size is capped by the caller so a corrupt or hostile blob
 * cannot make us allocate without bound.
 *
 * Thread rules: none (no shared state).
 */
#pragma once

#include <stddef.h>

#include "cleanup.h"

struct shp_buf;
struct shp_error;

/*
 * Compress src[0..len) at the default level and append it to out. 0, -SHP_E_LIMIT (out's cap)
 * or -SHP_E_NOMEM; out is unchanged on failure.
 */
int shp_zbuf_deflate(const void *src, size_t len, struct shp_buf *out,
		     struct shp_error *err) SHP_MUSTCHECK;

/*
 * Decompress src[0..len) (one complete zlib stream, nothing after it) and append the result to
 * out. At most max_out bytes are produced (out's own cap applies too): more is -SHP_E_LIMIT.
 * A damaged, truncated or trailing-garbage stream is -SHP_E_PROTO with zlib's reason.
 * out is unchanged on failure.
 */
int shp_zbuf_inflate(const void *src, size_t len, size_t max_out, struct shp_buf *out,
		     struct shp_error *err) SHP_MUSTCHECK;
