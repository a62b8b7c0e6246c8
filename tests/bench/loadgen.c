/*
 * loadgen: a small HTTP/1.1 keep-alive load generator for the benchmarks. N connections to a
 * Unix socket, each sending GET PATH as soon as the previous response is complete, spread over
 * T threads with one epoll loop each. Prints requests/s and latency percentiles as JSON.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RBUF 65536
#define MAX_SAMPLES 4000000

struct conn {
	int fd;
	char rbuf[RBUF];
	size_t rlen;
	uint64_t sent_ns;
};

struct worker {
	pthread_t tid;
	int nconns;
	uint64_t done;
	uint64_t errors;
	uint64_t *lat; /* microseconds */
	size_t nlat, caplat;
};

static const char *sock_path;
static char request[1024];
static size_t request_len;
static uint64_t end_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int connect_unix(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static int send_request(struct conn *c)
{
	size_t off = 0;

	c->sent_ns = now_ns();
	while (off < request_len) {
		ssize_t n = write(c->fd, request + off, request_len - off);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Length of a complete response at the start of buf, 0 if incomplete, -1 if unusable. */
static long complete_response(const char *buf, size_t len)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	const char *cl;
	long body;

	if (!end)
		return 0;
	cl = memmem(buf, (size_t)(end - buf), "Content-Length:", 15);
	if (!cl)
		cl = memmem(buf, (size_t)(end - buf), "content-length:", 15);
	if (!cl)
		return -1;
	body = strtol(cl + 15, NULL, 10);
	if ((size_t)(end + 4 - buf) + (size_t)body > len)
		return 0;
	return (long)(end + 4 - buf) + body;
}

static void record(struct worker *w, uint64_t us)
{
	if (w->nlat == w->caplat) {
		size_t ncap = w->caplat ? w->caplat * 2 : 65536;
		uint64_t *p;
		if (ncap > MAX_SAMPLES)
			return;
		p = realloc(w->lat, ncap * sizeof(*p));
		if (!p)
			return;
		w->lat = p;
		w->caplat = ncap;
	}
	w->lat[w->nlat++] = us;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	struct conn *conns = calloc((size_t)w->nconns, sizeof(*conns));
	struct epoll_event ev, events[256];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	for (int i = 0; i < w->nconns; i++) {
		conns[i].fd = connect_unix();
		if (conns[i].fd < 0) {
			fprintf(stderr, "loadgen: connect '%s': %m\n", sock_path);
			exit(1);
		}
		ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &conns[i]};
		epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
		send_request(&conns[i]);
	}
	while (now_ns() < end_ns) {
		int n = epoll_wait(ep, events, 256, 100);
		for (int i = 0; i < n; i++) {
			struct conn *c = events[i].data.ptr;
			ssize_t k = read(c->fd, c->rbuf + c->rlen, RBUF - c->rlen);
			long used;

			if (k <= 0) {
				if (k < 0 && (errno == EAGAIN || errno == EINTR))
					continue;
				w->errors++;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				c->fd = connect_unix();
				c->rlen = 0;
				ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = c};
				epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
				send_request(c);
				continue;
			}
			c->rlen += (size_t)k;
			used = complete_response(c->rbuf, c->rlen);
			if (used < 0 || (used == 0 && c->rlen == RBUF)) {
				fprintf(stderr, "loadgen: unusable response\n");
				exit(1);
			}
			if (used == 0)
				continue;
			if (strncmp(c->rbuf, "HTTP/1.1 200", 12) != 0)
				w->errors++;
			memmove(c->rbuf, c->rbuf + used, c->rlen - (size_t)used);
			c->rlen -= (size_t)used;
			w->done++;
			record(w, (now_ns() - c->sent_ns) / 1000);
			send_request(c);
		}
	}
	for (int i = 0; i < w->nconns; i++)
		close(conns[i].fd);
	close(ep);
	free(conns);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	const char *path = "/health/live";
	int conns = 50, threads = 1, c;
	double seconds = 5;
	static const struct option lo[] = {{"socket", required_argument, NULL, 's'},
					   {"path", required_argument, NULL, 'p'},
					   {"connections", required_argument, NULL, 'c'},
					   {"threads", required_argument, NULL, 't'},
					   {"seconds", required_argument, NULL, 'd'},
					   {NULL, 0, NULL, 0}};
	struct worker *w;
	uint64_t total = 0, errors = 0, start;
	uint64_t *all;
	size_t nall = 0;
	double elapsed;

	while ((c = getopt_long(argc, argv, "s:p:c:t:d:", lo, NULL)) != -1) {
		switch (c) {
		case 's': sock_path = optarg; break;
		case 'p': path = optarg; break;
		case 'c': conns = atoi(optarg); break;
		case 't': threads = atoi(optarg); break;
		case 'd': seconds = atof(optarg); break;
		default:
			fprintf(stderr, "usage: loadgen --socket PATH [--path P] [--connections N] "
					"[--threads T] [--seconds S]\n");
			return 2;
		}
	}
	if (!sock_path || conns < 1 || threads < 1 || threads > conns || seconds <= 0) {
		fprintf(stderr, "loadgen: bad arguments\n");
		return 2;
	}
	request_len = (size_t)snprintf(request, sizeof(request),
				       "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
	w = calloc((size_t)threads, sizeof(*w));
	start = now_ns();
	end_ns = start + (uint64_t)(seconds * 1e9);
	for (int i = 0; i < threads; i++) {
		w[i].nconns = conns / threads + (i < conns % threads);
		pthread_create(&w[i].tid, NULL, run, &w[i]);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(w[i].tid, NULL);
		total += w[i].done;
		errors += w[i].errors;
		nall += w[i].nlat;
	}
	elapsed = (double)(now_ns() - start) / 1e9;
	all = malloc((nall ? nall : 1) * sizeof(*all));
	nall = 0;
	for (int i = 0; i < threads; i++) {
		memcpy(all + nall, w[i].lat, w[i].nlat * sizeof(*all));
		nall += w[i].nlat;
		free(w[i].lat);
	}
	qsort(all, nall, sizeof(*all), cmp_u64);
	printf("{\"path\":\"%s\",\"connections\":%d,\"threads\":%d,\"seconds\":%.2f,"
	       "\"requests\":%llu,\"errors\":%llu,\"rps\":%.0f,\"p50_us\":%llu,\"p99_us\":%llu}\n",
	       path, conns, threads, elapsed, (unsigned long long)total, (unsigned long long)errors,
	       (double)total / elapsed, (unsigned long long)(nall ? all[nall / 2] : 0),
	       (unsigned long long)(nall ? all[nall * 99 / 100] : 0));
	free(all);
	free(w);
	return errors ? 1 : 0;
}
