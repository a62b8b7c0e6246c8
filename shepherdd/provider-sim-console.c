/*
 * The simulated cluster's VNC console: an in-process RFB 3.8 server per stream, as a VM's
 * console would answer. ProtocolVersion, security type None, SecurityResult, ClientInit and
 * ServerInit (a small framebuffer named after the VM), then a full raw update for every
 * non-incremental FramebufferUpdateRequest (an incremental one waits: nothing changed). Only
 * a running VM has one (stopped: SHP_E_CONFLICT, missing: SHP_E_NOTFOUND, as on KubeVirt), and
 * the stream ends once the VM stops running.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "provider-sim-internal.h"
#include "util.h"

#define FB_WIDTH 64
#define FB_HEIGHT 48
#define IN_MAX (64u * 1024)        /* client bytes not yet understood */
#define OUT_MAX (4u * 1024 * 1024) /* server bytes the reader has not taken */
#define WAIT_SLICE_MS 100          /* a reader looks at the VM this often */
#define CUT_TEXT_MAX (IN_MAX - 8)  /* a cut text must fit in what is buffered */
#define MIN(a, b) ((a) < (b) ? (a) : (b))

enum rfb_phase { RFB_VERSION, RFB_SECURITY, RFB_INIT, RFB_NORMAL, RFB_CLOSED };

struct pixfmt {
	uint8_t bpp, depth, big_endian, true_colour;
	uint16_t rmax, gmax, bmax;
	uint8_t rshift, gshift, bshift;
};

struct shd_console_stream {
	struct shd_provider *p; /* a reference: the simulated cluster outlives its consoles */
	struct sim *s;
	char ns[64], name[SHD_VM_NAME_MAX + 1];

	/* mu protects everything below; cv is broadcast when out grows or the stream closes */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum rfb_phase phase;
	struct pixfmt fmt;
	uint8_t in[IN_MAX];
	size_t in_len;
	uint8_t *out;
	size_t out_len, out_cap;
};

static const struct pixfmt default_fmt = {32, 24, 0, 1, 255, 255, 255, 16, 8, 0};

/* ---- output ------------------------------------------------------------------------------ */

static int out_add(struct shd_console_stream *c, const void *data, size_t len)
{
	if (c->out_len + len > OUT_MAX)
		return -SHP_E_LIMIT;
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + len)
			cap *= 2;
		c->out = sim_xrealloc(c->out, cap, 1);
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
	return 0;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16)), put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static int server_init(struct shd_console_stream *c)
{
	uint8_t m[24];
	size_t nl = strlen(c->name);

	put16(m, FB_WIDTH);
	put16(m + 2, FB_HEIGHT);
	m[4] = c->fmt.bpp, m[5] = c->fmt.depth, m[6] = c->fmt.big_endian;
	m[7] = c->fmt.true_colour;
	put16(m + 8, c->fmt.rmax), put16(m + 10, c->fmt.gmax), put16(m + 12, c->fmt.bmax);
	m[14] = c->fmt.rshift, m[15] = c->fmt.gshift, m[16] = c->fmt.bshift;
	m[17] = m[18] = m[19] = 0;
	put32(m + 20, (uint32_t)nl);
	return out_add(c, m, sizeof(m)) < 0 ? -SHP_E_LIMIT : out_add(c, c->name, nl);
}

/* One pixel of a gradient in the client's pixel format. */
static void put_pixel(const struct pixfmt *f, uint8_t *p, unsigned x, unsigned y)
{
	unsigned r = x * 255 / FB_WIDTH, g = y * 255 / FB_HEIGHT, b = 128;
	uint32_t v = (uint32_t)(r * f->rmax / 255) << f->rshift |
		     (uint32_t)(g * f->gmax / 255) << f->gshift |
		     (uint32_t)(b * f->bmax / 255) << f->bshift;
	unsigned n = f->bpp / 8;

	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (f->big_endian ? n - 1 - i : i)));
}

/* A FramebufferUpdate of the whole screen, one Raw rectangle. */
static int full_update(struct shd_console_stream *c)
{
	unsigned bpp = c->fmt.bpp / 8;
	size_t len = 16 + (size_t)FB_WIDTH * FB_HEIGHT * bpp;
	uint8_t *m = sim_xcalloc(1, len);
	int rc;

	m[0] = 0; /* FramebufferUpdate */
	put16(m + 2, 1);
	put16(m + 8, FB_WIDTH), put16(m + 10, FB_HEIGHT);
	put32(m + 12, 0); /* Raw */
	for (unsigned y = 0; y < FB_HEIGHT; y++)
		for (unsigned x = 0; x < FB_WIDTH; x++)
			put_pixel(&c->fmt, m + 16 + ((size_t)y * FB_WIDTH + x) * bpp, x, y);
	rc = out_add(c, m, len);
	free(m);
	return rc;
}

/* ---- input ------------------------------------------------------------------------------- */

static int set_pixel_format(struct shd_console_stream *c, const uint8_t *m)
{
	struct pixfmt f = {m[4],          m[5],          m[6],  m[7],  get16(m + 8),
			   get16(m + 10), get16(m + 12), m[14], m[15], m[16]};

	if ((f.bpp != 8 && f.bpp != 16 && f.bpp != 32) || !f.true_colour || f.rshift > 31 ||
	    f.gshift > 31 || f.bshift > 31)
		return -SHP_E_PROTO; /* colour maps are not served */
	c->fmt = f;
	return 0;
}

/*
 * The length of the client message at p (have bytes of it), 0 when more must come first, or
 * < 0 for an unknown one.
 */
static long message_len(const uint8_t *p, size_t have)
{
	switch (p[0]) {
	case 0: return 20;                                        /* SetPixelFormat */
	case 2: return have < 4 ? 0 : 4 + 4 * (long)get16(p + 2); /* SetEncodings */
	case 3: return 10;                                        /* FramebufferUpdateRequest */
	case 4: return 8;                                         /* KeyEvent */
	case 5: return 6;                                         /* PointerEvent */
	case 6:                                                   /* ClientCutText */
		if (have < 8)
			return 0;
		return get32(p + 4) > CUT_TEXT_MAX ? -SHP_E_LIMIT : 8 + (long)get32(p + 4);
	default: return -SHP_E_PROTO;
	}
}

static int on_message(struct shd_console_stream *c, const uint8_t *m)
{
	if (m[0] == 0)
		return set_pixel_format(c, m);
	if (m[0] == 3 && m[1] == 0) /* non-incremental: the whole screen */
		return full_update(c);
	return 0; /* keys, pointer, encodings, cut text: a quiet desktop ignores them */
}

/* Consume what the phase needs from c->in; 1 when a step was taken, 0 to wait, < 0 to end. */
static int step(struct shd_console_stream *c, size_t *off)
{
	const uint8_t *p = c->in + *off;
	size_t have = c->in_len - *off;
	long need;

	switch (c->phase) {
	case RFB_VERSION:
		if (have < 12)
			return 0;
		if (memcmp(p, "RFB 003.008\n", 12) != 0)
			return -SHP_E_PROTO;
		*off += 12;
		c->phase = RFB_SECURITY;
		return out_add(c, "\x01\x01", 2) < 0 ? -SHP_E_LIMIT : 1; /* one type: None */
	case RFB_SECURITY:
		if (have < 1)
			return 0;
		*off += 1;
		if (p[0] != 1)
			return -SHP_E_PROTO;
		c->phase = RFB_INIT;
		return out_add(c, "\0\0\0\0", 4) < 0 ? -SHP_E_LIMIT : 1; /* SecurityResult OK */
	case RFB_INIT:
		if (have < 1)
			return 0;
		*off += 1;
		c->phase = RFB_NORMAL;
		return server_init(c) < 0 ? -SHP_E_LIMIT : 1;
	case RFB_NORMAL:
		if (have < 1 || c->out_len > OUT_MAX / 2)
			return 0; /* more to come, or the reader is behind */
		need = message_len(p, have);
		if (need < 0)
			return (int)need;
		if (need == 0 || (size_t)need > have)
			return need > (long)IN_MAX ? -SHP_E_LIMIT : 0;
		*off += (size_t)need;
		return on_message(c, p) < 0 ? -SHP_E_PROTO : 1;
	default: return -SHP_E_PROTO;
	}
}

static int consume(struct shd_console_stream *c)
{
	size_t off = 0;
	int rc;

	while ((rc = step(c, &off)) > 0)
		;
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return rc;
}

/* ---- the VM ------------------------------------------------------------------------------ */

/* Whether the VM still runs; the cluster's lock only, never together with c->mu. */
static bool vm_running(struct shd_console_stream *c)
{
	struct sim_vm *vm;
	bool running;

	pthread_mutex_lock(&c->s->lock);
	vm = sim_vm_get(c->s, c->ns, c->name);
	running = vm && !vm->terminating && vm->pub.status == SHD_VM_RUNNING;
	pthread_mutex_unlock(&c->s->lock);
	return running;
}

static int check_vm(struct sim *s, const char *ns, const char *name, uint64_t deadline_ns,
		    struct shp_error *err)
{
	struct sim_vm *vm;
	char q[80];
	int rc = shd_provider_check_ns_name(ns, "VM", name, err);

	if (rc < 0 || (rc = sim_enter(s, deadline_ns, err)) < 0)
		return rc;
	vm = sim_vm_get(s, ns, name);
	sim_quote(q, sizeof(q), name);
	if (!vm)
		rc = sim_fail(err, 404, "NotFound",
			      "virtualmachineinstance.kubevirt.io \"%s\" not found", q);
	else if (vm->terminating || vm->pub.status != SHD_VM_RUNNING)
		rc = shp_error_set(err, SHP_E_CONFLICT, "the VM is not running");
	sim_leave(s);
	if (rc < 0)
		(void)shp_error_prefix(err, "VNC console of VM '%s/%s'", ns, q);
	return rc;
}

/* ---- the operations ---------------------------------------------------------------------- */

static int sim_open_vnc(void *impl, const char *ns, const char *name,
			struct shd_console_stream **ret, uint64_t deadline_ns,
			struct shp_error *err)
{
	struct shd_provider *p = impl;
	struct shd_console_stream *c;
	int rc = check_vm(p->infra.impl, ns, name, deadline_ns, err);

	if (rc < 0)
		return rc;
	c = sim_xcalloc(1, sizeof(*c));
	c->p = shd_provider_ref(p);
	c->s = p->infra.impl;
	sim_copy(c->ns, sizeof(c->ns), ns);
	sim_copy(c->name, sizeof(c->name), name);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->fmt = default_fmt;
	(void)out_add(c, "RFB 003.008\n", 12);
	*ret = c;
	return 0;
}

/* Wait on cv for at most ms milliseconds (realtime clock); c->mu held. */
static void wait_ms(struct shd_console_stream *c, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_sec++, ts.tv_nsec -= 1000000000L;
	(void)pthread_cond_timedwait(&c->cv, &c->mu, &ts);
}

static long sim_console_read(struct shd_console_stream *c, void *buf, size_t len, int timeout_ms,
			     struct shp_error *err)
{
	uint64_t until =
		shp_now_monotonic_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
	size_t n = 0;

	for (;;) {
		uint64_t now = shp_now_monotonic_ns();
		bool running = vm_running(c);

		pthread_mutex_lock(&c->mu);
		if (!running)
			c->phase = RFB_CLOSED;
		if (c->out_len > 0 || c->phase == RFB_CLOSED || now >= until)
			break;
		wait_ms(c, (int)MIN((until - now) / 1000000u + 1, (uint64_t)WAIT_SLICE_MS));
		pthread_mutex_unlock(&c->mu);
	}
	if (c->out_len > 0) { /* what was said before the end is still read */
		n = MIN(len, c->out_len);
		memcpy(buf, c->out, n);
		memmove(c->out, c->out + n, c->out_len - n);
		c->out_len -= n;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	if (n > 0 || c->phase == RFB_CLOSED)
		return (long)n;
	return shp_error_set(err, SHP_E_TIMEOUT, "no console output within %d ms", timeout_ms);
}

/* Wait (c->mu held) until the reader took enough of out; false after 5 s without. */
static bool drain(struct shd_console_stream *c)
{
	for (int i = 0; i < 50 && c->out_len > OUT_MAX / 2 && c->phase != RFB_CLOSED; i++)
		wait_ms(c, WAIT_SLICE_MS);
	return c->out_len <= OUT_MAX / 2;
}

static int sim_console_write(struct shd_console_stream *c, const void *buf, size_t len,
			     struct shp_error *err)
{
	const uint8_t *p = buf;
	int rc = 0;

	pthread_mutex_lock(&c->mu);
	while (c->phase != RFB_CLOSED) {
		size_t n = MIN(len, IN_MAX - c->in_len);

		memcpy(c->in + c->in_len, p, n);
		c->in_len += n, p += n, len -= n;
		rc = consume(c);
		if (rc < 0)
			break;
		if (c->out_len > OUT_MAX / 2) { /* consume waits for the reader */
			if (!drain(c)) {
				rc = -SHP_E_LIMIT; /* a viewer that asks and never reads */
				break;
			}
			continue;
		}
		if (len == 0)
			break; /* what is left in c->in is the start of a message */
		if (n == 0) {
			rc = -SHP_E_LIMIT;
			break;
		}
	}
	if (rc < 0)
		c->phase = RFB_CLOSED;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (rc < 0 || c->phase == RFB_CLOSED)
		return shp_error_set(err, SHP_E_UNAVAIL, "the VNC console of VM '%s/%s' ended%s",
				     c->ns, c->name,
				     rc < 0 ? ": the viewer broke the protocol" : "");
	return 0;
}

static void sim_console_close(struct shd_console_stream *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c->out);
	shd_provider_unref(c->p);
	free(c);
}

const struct shd_console_ops sim_console_ops = {
	.open_vnc = sim_open_vnc,
	.read = sim_console_read,
	.write = sim_console_write,
	.close = sim_console_close,
};
