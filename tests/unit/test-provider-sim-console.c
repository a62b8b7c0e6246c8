/*
 * The simulated cluster's VNC console: a full RFB 3.8 handshake (version, security None,
 * SecurityResult, ServerInit named after the VM), a raw framebuffer update in the default and
 * in a 16-bit pixel format, incremental requests left waiting, a protocol error ending the
 * stream, the errors before a stream opens (missing, stopped, hostile name), and the stream
 * ending when the VM stops.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "provider-sim.h"
#include "provider.h"
#include "util.h"

#define W 64
#define H 48

static struct shd_provider *sim(void)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_sim_options opt = {.cluster_name = "lab", .tick_ms = 10};
	struct shd_provider *p = shd_provider_sim_new(&opt, &err);

	cr_assert_not_null(p, "%s", err.msg);
	cr_assert_eq(shd_provider_sim_seed(p, "team", "web", 1, true, NULL, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(shd_provider_sim_seed(p, "team", "off", 1, false, NULL, &err), 0, "%s",
		     err.msg);
	cr_assert_not_null(p->console.ops, "the simulated cluster has a console");
	return p;
}

static struct shd_console_stream *open_ok(struct shd_provider *p, const char *name)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_console_stream *s = NULL;

	cr_assert_eq(p->console.ops->open_vnc(p->console.impl, "team", name, &s, 0, &err), 0, "%s",
		     err.msg);
	return s;
}

static void read_n(struct shd_provider *p, struct shd_console_stream *s, void *buf, size_t n)
{
	struct shp_error err = SHP_ERROR_INIT;

	for (size_t got = 0; got < n;) {
		long r = p->console.ops->read(s, (char *)buf + got, n - got, 2000, &err);
		cr_assert_gt(r, 0, "read %zu of %zu: %ld %s", got, n, r, err.msg);
		got += (size_t)r;
	}
}

/* Write n bytes; a failure names the line that wrote them. */
#define send(p, s, b, n) send_at(__LINE__, p, s, b, n)
static void send_at(int line, struct shd_provider *p, struct shd_console_stream *s, const void *b,
		    size_t n)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(p->console.ops->write(s, b, n, &err), 0, "line %d: %s", line, err.msg);
}

static unsigned be16(const unsigned char *b)
{
	return (unsigned)b[0] << 8 | b[1];
}

/* Version, security None, SecurityResult, ClientInit; returns the desktop name's length. */
static size_t handshake(struct shd_provider *p, struct shd_console_stream *s, char *name)
{
	unsigned char buf[64];
	size_t nl;

	read_n(p, s, buf, 12);
	cr_assert_eq(memcmp(buf, "RFB 003.008\n", 12), 0);
	send(p, s, "RFB 003.008\n", 12);
	read_n(p, s, buf, 2);
	cr_assert_eq(buf[0], 1, "one security type");
	cr_assert_eq(buf[1], 1, "None");
	send(p, s, "\x01", 1);
	read_n(p, s, buf, 4);
	cr_assert_eq(memcmp(buf, "\0\0\0\0", 4), 0, "SecurityResult OK");
	send(p, s, "\x01", 1); /* shared */
	read_n(p, s, buf, 24);
	cr_assert_eq(be16(buf), W);
	cr_assert_eq(be16(buf + 2), H);
	cr_assert_eq(buf[4], 32, "32 bits per pixel");
	nl = (size_t)buf[20] << 24 | (size_t)buf[21] << 16 | (size_t)buf[22] << 8 | buf[23];
	cr_assert_lt(nl, 64);
	read_n(p, s, name, nl);
	name[nl] = '\0';
	return nl;
}

static void expect_update(struct shd_provider *p, struct shd_console_stream *s, unsigned bpp)
{
	unsigned char head[16];
	size_t n = (size_t)W * H * bpp;
	_cleanup_free_ unsigned char *pixels = malloc(n);

	read_n(p, s, head, sizeof(head));
	cr_assert_eq(head[0], 0, "FramebufferUpdate");
	cr_assert_eq(be16(head + 2), 1, "one rectangle");
	cr_assert_eq(be16(head + 8), W);
	cr_assert_eq(be16(head + 10), H);
	cr_assert_eq(memcmp(head + 12, "\0\0\0\0", 4), 0, "Raw");
	read_n(p, s, pixels, n);
}

Test(sim_console, handshake_and_updates)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = sim();
	struct shd_console_stream *s = open_ok(p, "web-1");
	struct shp_error err = SHP_ERROR_INIT;
	char name[64];
	unsigned char buf[8];
	static const unsigned char full[10] = {3, 0, 0, 0, 0, 0, 0, W, 0, H};
	static const unsigned char incr[10] = {3, 1, 0, 0, 0, 0, 0, W, 0, H};
	static const unsigned char rgb565[20] = {0, 0,  0, 0,  16, 16, 0, 1, 0, 31,
						 0, 63, 0, 31, 11, 5,  0, 0, 0, 0};
	static const unsigned char enc[8] = {2, 0, 0, 1, 0, 0, 0, 0};
	static const unsigned char key[8] = {4, 1, 0, 0, 0, 0, 0, 0x61};

	handshake(p, s, name);
	cr_assert_str_eq(name, "web-1", "the desktop is named after the VM");
	send(p, s, enc, sizeof(enc));
	send(p, s, full, sizeof(full));
	expect_update(p, s, 4);
	send(p, s, incr, sizeof(incr));
	send(p, s, key, sizeof(key));
	cr_assert_eq(p->console.ops->read(s, buf, sizeof(buf), 100, &err), -SHP_E_TIMEOUT,
		     "nothing changed: no answer, no echo");
	send(p, s, rgb565, sizeof(rgb565));
	send(p, s, full, 5); /* a request split across writes */
	send(p, s, full + 5, 5);
	expect_update(p, s, 2);
	cr_assert_lt(p->console.ops->write(s, "\x09", 1, &err), 0, "no such message");
	cr_assert_eq(p->console.ops->read(s, buf, sizeof(buf), 1000, &err), 0, "the stream ended");
	cr_assert_lt(p->console.ops->write(s, full, sizeof(full), &err), 0);
	p->console.ops->close(s);
	p->console.ops->close(NULL);
}

Test(sim_console, refused_before_the_stream)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = sim();
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_console_stream *s = NULL;

	cr_assert_eq(p->console.ops->open_vnc(p->console.impl, "team", "off-1", &s, 0, &err),
		     -SHP_E_CONFLICT, "stopped");
	cr_assert(strstr(err.msg, "not running"), "%s", err.msg);
	shp_error_clear(&err);
	cr_assert_eq(p->console.ops->open_vnc(p->console.impl, "team", "absent", &s, 0, &err),
		     -SHP_E_NOTFOUND, "missing");
	shp_error_clear(&err);
	cr_assert_eq(p->console.ops->open_vnc(p->console.impl, "team", "Bad/Name", &s, 0, &err),
		     -SHP_E_INVAL, "hostile name");
	cr_assert_null(s);
}

Test(sim_console, ends_when_the_vm_stops)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = sim();
	struct shd_console_stream *s = open_ok(p, "web-1");
	struct shp_error err = SHP_ERROR_INIT;
	char name[64];
	long r = -1;

	handshake(p, s, name);
	cr_assert_eq(p->infra.ops->power(p->infra.impl, "team", "web-1", SHD_POWER_STOP, 0, &err),
		     0, "%s", err.msg);
	for (int i = 0; i < 50 && r != 0; i++)
		r = p->console.ops->read(s, name, sizeof(name), 100, &err);
	cr_assert_eq(r, 0, "the console ended with the VM");
	p->console.ops->close(s);
}
