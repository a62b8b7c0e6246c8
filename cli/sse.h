/*
 * A Server-Sent Events parser (the event-stream format of the HTML standard): bytes in, in
 * pieces of any size, frames out through a callback. Lines end in CRLF, LF or CR; "id:",
 * "event:" and "data:" fields (data lines joined with "\n"), comments starting with ':', other
 * fields ignored, and a blank line ends a frame. A frame that the stream's end cuts off is
 * dropped, as the standard says. Every frame is capped, comments included: a peer cannot make
 * the parser hold more than frame_max bytes.
 *
 * Pure: no I/O and no globals; one struct cli_sse per stream, one thread at a time.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "cleanup.h"

struct shp_error;

#define CLI_SSE_ID_MAX 256 /* a longer "id:" is a protocol error */

/* One frame; everything borrowed, valid during the callback only. */
struct cli_sse_event {
	const char *id;    /* the last event id (this frame's or an earlier one's); "" if none */
	const char *event; /* the "event:" field, or "message" */
	const char *data;  /* the data lines joined with "\n", NUL-terminated */
	size_t data_len;   /* data may hold NUL bytes: this is authoritative */
};

/* Returns 0 to go on, a positive value to stop the feed (returned by it), or -SHP_E_* to fail. */
typedef int (*cli_sse_fn)(void *arg, const struct cli_sse_event *ev);

struct cli_sse {
	size_t frame_max; /* bytes a frame may take on the wire, comments and line ends included */
	size_t frame_len; /* bytes of the current frame so far */
	bool cr;          /* the last byte was a CR: an LF right after it ends no line */
	bool bom_checked; /* a UTF-8 byte order mark at the very start is skipped */
	bool has_data;    /* the frame had a "data" field */
	struct shp_buf line;              /* the line being read */
	struct shp_buf data;              /* the frame's data lines, each followed by "\n" */
	struct shp_buf event;             /* the frame's event type */
	char id_buf[CLI_SSE_ID_MAX + 1];  /* the "id:" read so far */
	char last_id[CLI_SSE_ID_MAX + 1]; /* the id of the last complete frame: resume after it */
};

void cli_sse_init(struct cli_sse *p, size_t frame_max);
void cli_sse_release(struct cli_sse *p);
/* Forget the frame being read (not the last event id), e.g. before reading a new stream. */
void cli_sse_reset(struct cli_sse *p);

/*
 * Parse len bytes, calling fn for each complete frame that carries data (a frame without data
 * only updates the last event id). Returns 0; fn's positive or negative value, after which the
 * rest of the bytes is not parsed (err is fn's business then); or, with err filled,
 * -SHP_E_LIMIT when a frame grows past frame_max, -SHP_E_PROTO for an "id:" longer than
 * CLI_SSE_ID_MAX, -SHP_E_NOMEM.
 */
int cli_sse_feed(struct cli_sse *p, const char *bytes, size_t len, cli_sse_fn fn, void *arg,
		 struct shp_error *err) SHP_MUSTCHECK;
