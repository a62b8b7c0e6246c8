/*
 * The Server-Sent Events parser: splits bytes into lines (CRLF, LF or CR, even when a CRLF is
 * split between two pieces), lines into fields, and fields into frames, within the frame cap.
 */
#include "config.h"

#include <string.h>

#include "buf.h"
#include "error.h"
#include "i18n.h"
#include "sse.h"

void cli_sse_init(struct cli_sse *p, size_t frame_max)
{
	*p = (struct cli_sse){.frame_max = frame_max};
	/* The frame cap bounds each buffer; the margin is for the "\n" after each data line. */
	shp_buf_init(&p->line, frame_max);
	shp_buf_init(&p->data, frame_max + 1);
	shp_buf_init(&p->event, frame_max);
}

void cli_sse_release(struct cli_sse *p)
{
	shp_buf_release(&p->line);
	shp_buf_release(&p->data);
	shp_buf_release(&p->event);
}

void cli_sse_reset(struct cli_sse *p)
{
	shp_buf_reset(&p->line);
	shp_buf_reset(&p->data);
	shp_buf_reset(&p->event);
	p->frame_len = 0;
	p->cr = false;
	p->has_data = false;
	p->bom_checked = false;
	memcpy(p->id_buf, p->last_id, sizeof(p->id_buf));
}

static int too_big(const struct cli_sse *p, struct shp_error *err)
{
	return shp_error_set(err, SHP_E_LIMIT, _("an event-stream frame larger than %zu bytes"),
			     p->frame_max);
}

static int no_memory(struct shp_error *err)
{
	return shp_error_set(err, SHP_E_NOMEM, _("out of memory reading the event stream"));
}

static int add_failed(const struct cli_sse *p, int r, struct shp_error *err)
{
	return r == -SHP_E_LIMIT ? too_big(p, err) : no_memory(err);
}

/* A blank line: hand the frame over if it has data, then start a new one. */
static int dispatch(struct cli_sse *p, cli_sse_fn fn, void *arg)
{
	struct cli_sse_event ev;
	int r = 0;

	/* A frame, even one without data, commits its id (what a reconnection resumes after). */
	memcpy(p->last_id, p->id_buf, sizeof(p->last_id));
	if (p->has_data) {
		shp_buf_truncate(&p->data, p->data.len - 1); /* the last data line's "\n" */
		ev = (struct cli_sse_event){
			.id = p->last_id,
			.event = p->event.len ? p->event.buf : "message",
			.data = p->data.buf,
			.data_len = p->data.len,
		};
		r = fn(arg, &ev);
	}
	shp_buf_reset(&p->data);
	shp_buf_reset(&p->event);
	p->has_data = false;
	p->frame_len = 0;
	return r;
}

static int set_id(struct cli_sse *p, const char *v, size_t n, struct shp_error *err)
{
	if (memchr(v, '\0', n))
		return 0; /* the standard ignores such an id */
	if (n > CLI_SSE_ID_MAX)
		return shp_error_set(err, SHP_E_PROTO, _("an event id longer than %d bytes"),
				     CLI_SSE_ID_MAX);
	memcpy(p->id_buf, v, n);
	p->id_buf[n] = '\0';
	return 0;
}

/* One complete line (without its end). */
static int take_line(struct cli_sse *p, cli_sse_fn fn, void *arg, struct shp_error *err)
{
	const char *s = p->line.buf, *colon, *v;
	size_t n = p->line.len, name_len, vlen;
	int r = 0;

	if (!p->bom_checked) {
		p->bom_checked = true;
		if (n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
			s += 3;
			n -= 3;
		}
	}
	if (n == 0)
		return dispatch(p, fn, arg);
	if (s[0] == ':') {
		/* Comments (keep-alives) hold nothing: they count against the cap while read. */
		p->frame_len -= p->line.len + 1;
		return 0;
	}
	colon = memchr(s, ':', n);
	name_len = colon ? (size_t)(colon - s) : n;
	v = colon ? colon + 1 : s + n;
	vlen = n - name_len - (colon ? 1 : 0);
	if (vlen > 0 && v[0] == ' ') {
		v++;
		vlen--;
	}
	if (name_len == 4 && memcmp(s, "data", 4) == 0) {
		r = shp_buf_addn(&p->data, v, vlen);
		if (r == 0)
			r = shp_buf_addch(&p->data, '\n');
		p->has_data = true;
	} else if (name_len == 5 && memcmp(s, "event", 5) == 0) {
		shp_buf_reset(&p->event);
		r = shp_buf_addn(&p->event, v, vlen);
	} else if (name_len == 2 && memcmp(s, "id", 2) == 0) {
		return set_id(p, v, vlen, err);
	}
	/* Other fields ("retry", unknown ones) are ignored. */
	return r < 0 ? add_failed(p, r, err) : 0;
}

/* Count n more bytes of the frame against the cap. */
static int charge(struct cli_sse *p, size_t n, struct shp_error *err)
{
	if (n > p->frame_max - p->frame_len)
		return too_big(p, err);
	p->frame_len += n;
	return 0;
}

int cli_sse_feed(struct cli_sse *p, const char *bytes, size_t len, cli_sse_fn fn, void *arg,
		 struct shp_error *err)
{
	size_t i = 0, j;
	int r;

	while (i < len) {
		if (p->cr) {
			p->cr = false;
			if (bytes[i] == '\n') {
				i++;
				continue;
			}
		}
		for (j = i; j < len && bytes[j] != '\n' && bytes[j] != '\r'; j++)
			;
		r = charge(p, j - i + (j < len), err);
		if (r < 0)
			return r;
		r = shp_buf_addn(&p->line, bytes + i, j - i);
		if (r < 0)
			return add_failed(p, r, err);
		if (j == len)
			break;
		p->cr = bytes[j] == '\r';
		i = j + 1;
		r = take_line(p, fn, arg, err);
		shp_buf_reset(&p->line);
		if (r != 0)
			return r;
	}
	return 0;
}
