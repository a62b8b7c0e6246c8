/*
 * A VNC viewer's first steps, for the console tests: connect to HOST:PORT, do the RFB 3.8
 * client handshake (ProtocolVersion, security type None, SecurityResult, ClientInit), print
 * the desktop name, then ask for the whole screen and check the raw update that comes back.
 * With --greeting, only read the server's ProtocolVersion, send ours and expect it echoed (the
 * API simulator's console echoes). Exit 0 when everything was as RFB says, 1 otherwise (the
 * reason on stderr), 2 for a usage error.
 *
 *   rfb-probe [--greeting] HOST PORT
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define RFB_VERSION "RFB 003.008\n"
#define NAME_MAX_LEN 4096
#define FB_MAX (4096u * 4096u * 4u)

static int fail(const char *what)
{
	fprintf(stderr, "rfb-probe: %s\n", what);
	return 1;
}

static int dial(const char *host, const char *port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
	struct timeval tv = {.tv_sec = 10};
	int fd = -1;

	if (getaddrinfo(host, port, &hints, &ai) != 0)
		return -1;
	for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (fd >= 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static int read_all(int fd, void *buf, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
	for (size_t done = 0; done < n;) {
		ssize_t w = write(fd, (const char *)buf + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		done += (size_t)w;
	}
	return 0;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static unsigned be16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* The server's version, then ours. */
static int version(int fd)
{
	char v[13] = "";

	if (read_all(fd, v, 12) < 0)
		return fail("no ProtocolVersion from the server");
	if (strncmp(v, "RFB 003.", 8) != 0)
		return fail("the server's greeting is not RFB");
	return write_all(fd, RFB_VERSION, 12) < 0 ? fail("cannot send our ProtocolVersion") : 0;
}

/* Security: pick None among the types offered, then SecurityResult. */
static int security(int fd)
{
	uint8_t n, types[255], res[4];
	bool none = false;

	if (read_all(fd, &n, 1) < 0 || n == 0 || read_all(fd, types, n) < 0)
		return fail("no security types from the server");
	for (unsigned i = 0; i < n; i++)
		none = none || types[i] == 1;
	if (!none)
		return fail("the server does not offer security type None");
	if (write_all(fd, "\x01", 1) < 0 || read_all(fd, res, 4) < 0)
		return fail("no SecurityResult");
	return be32(res) == 0 ? 0 : fail("SecurityResult is failed");
}

/* ClientInit (shared), ServerInit: the size into w and h, the desktop name printed. */
static int init(int fd, unsigned *w, unsigned *h, unsigned *bpp)
{
	uint8_t si[24];
	uint32_t nl;
	char *name;

	if (write_all(fd, "\x01", 1) < 0 || read_all(fd, si, sizeof(si)) < 0)
		return fail("no ServerInit");
	*w = be16(si), *h = be16(si + 2), *bpp = si[4];
	nl = be32(si + 20);
	if (nl > NAME_MAX_LEN || (*bpp != 8 && *bpp != 16 && *bpp != 32))
		return fail("ServerInit is malformed");
	name = calloc(1, nl + 1);
	if (!name || read_all(fd, name, nl) < 0) {
		free(name);
		return fail("the desktop name is cut short");
	}
	printf("desktop: %s\n", name);
	free(name);
	return 0;
}

/* FramebufferUpdateRequest for the whole screen, and its raw rectangles. */
static int update(int fd, unsigned w, unsigned h, unsigned bpp)
{
	uint8_t req[10] = {
		3, 0, 0, 0, 0, 0, (uint8_t)(w >> 8), (uint8_t)w, (uint8_t)(h >> 8), (uint8_t)h};
	uint8_t head[4], rect[12];
	size_t total = 0;

	if (write_all(fd, req, sizeof(req)) < 0 || read_all(fd, head, 4) < 0 || head[0] != 0)
		return fail("no FramebufferUpdate");
	for (unsigned i = 0; i < be16(head + 2); i++) {
		size_t n;
		char *px;
		if (read_all(fd, rect, sizeof(rect)) < 0 || be32(rect + 8) != 0)
			return fail("a rectangle is not Raw");
		n = (size_t)be16(rect + 4) * be16(rect + 6) * (bpp / 8);
		px = n <= FB_MAX ? malloc(n ? n : 1) : NULL;
		if (!px || read_all(fd, px, n) < 0) {
			free(px);
			return fail("a rectangle's pixels are cut short");
		}
		free(px);
		total += (size_t)be16(rect + 4) * be16(rect + 6);
	}
	if (total != (size_t)w * h)
		return fail("the update does not cover the screen");
	printf("framebuffer: %ux%u\n", w, h);
	return 0;
}

int main(int argc, char **argv)
{
	bool greeting = argc == 4 && strcmp(argv[1], "--greeting") == 0;
	unsigned w = 0, h = 0, bpp = 0;
	char echo[13] = "";
	int fd;

	if (argc != 3 && !greeting) {
		fprintf(stderr, "usage: rfb-probe [--greeting] HOST PORT\n");
		return 2;
	}
	fd = dial(argv[argc - 2], argv[argc - 1]);
	if (fd < 0)
		return fail("cannot connect");
	if (version(fd) != 0)
		return 1;
	if (greeting) {
		if (read_all(fd, echo, 12) < 0 || strcmp(echo, RFB_VERSION) != 0)
			return fail("our ProtocolVersion did not come back");
		printf("greeting: RFB 003.008\n");
		return 0;
	}
	if (security(fd) != 0 || init(fd, &w, &h, &bpp) != 0 || update(fd, w, h, bpp) != 0)
		return 1;
	close(fd);
	return 0;
}
