/*
 * The client side of the wire: HTTP/1.1 over the daemon's Unix socket or over TLS (OpenSSL), one
 * kept-alive connection per struct shp_httpc, every step of a request bounded by one deadline
 * (poll on a non-blocking socket). A response is read just far enough for the CLI: status, a few
 * headers, a capped body framed by Content-Length, chunks or the end of the connection; or, for
 * a streamed request, the body handed to a callback piece by piece, each read bounded by an idle
 * timeout instead. Transport failures and daemon error bodies become shp_error.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "api.h"
#include "error.h"
#include "httpc.h"
#include "json.h"
#include "util.h"

#define DEFAULT_TIMEOUT_MS 30000L
#define HEAD_MAX (64u * 1024)  /* status line, header section and trailers of one response */
#define CHUNK_LINE_MAX 1024u   /* a chunk-size line, extensions included */
#define REQUEST_HEAD_MAX 1024u /* our request head, besides the path and the token */
#define IDEMPOTENCY_KEY_MAX 100u
#define EXTRA_HEADERS_MAX 8192u  /* the extra header lines of a streamed request, together */
#define BACKLOG_NAP_NS 10000000L /* a full listen backlog on the Unix socket: retry after 10 ms */

SHP_DEFINE_CLEANUP(SSL_CTX *, SSL_CTX_free)

struct shp_httpc {
	char *socket_path;   /* set when talking over the Unix socket */
	char *base_url;      /* the server URL without trailing '/'; messages name it */
	const char *prefix;  /* the URL's path inside base_url, or "" */
	char authority[300]; /* the Host header: "localhost", "name[:port]" or "[v6][:port]" */
	char host[256];      /* what to connect to and verify the certificate against */
	char port[6];
	char *token; /* wiped on free */
	char *cacert;
	char *cert;
	char *key;
	long timeout_ms;
	bool verbose;
	const volatile sig_atomic_t *interrupt; /* borrowed; see shp_httpc_config */
	SSL_CTX *ssl_ctx; /* built for the first TLS connection, kept for the next ones */
	BIO_METHOD *bio_method;
	int fd; /* the connection, or -1 */
	SSL *ssl;
	size_t rpos, rlen; /* the unread bytes of rbuf */
	char rbuf[16384];
};

/* One request and its response on the connection. */
struct xfer {
	uint64_t deadline;
	bool head;                             /* a HEAD request: the response has no body */
	bool answered;                         /* some of the response arrived */
	bool lost;                             /* the server closed or reset the connection */
	bool close;                            /* the connection cannot carry another request */
	bool chunked;                          /* Transfer-Encoding: chunked */
	long long length;                      /* Content-Length, or -1 */
	size_t head_left;                      /* what remains of HEAD_MAX */
	const struct shp_httpc_stream *stream; /* a streamed request, or NULL */
	bool streaming; /* the body goes to stream->on_data (a 2xx answer of a stream) */
	bool stopped;   /* a callback asked to stop reading */
	long idle_ms;   /* while streaming, each read waits this long at most */
	bool upgrade;   /* a protocol switch is asked for: a 101 ends the exchange */
	shp_httpc_field_fn on_field; /* sees every header field of the answer, or NULL */
	void *field_arg;
};

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static int dup_opt(const char *in, char **out, struct shp_error *err)
{
	if (!in || !in[0])
		return 0;
	*out = strdup(in);
	if (!*out)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return 0;
}

static const char *peer_name(const struct shp_httpc *c)
{
	return c->socket_path ? c->socket_path : c->base_url;
}

static void conn_close(struct shp_httpc *c)
{
	SSL_free(c->ssl); /* and its BIO */
	c->ssl = NULL;
	if (c->fd >= 0)
		(void)close(c->fd);
	c->fd = -1;
	c->rpos = c->rlen = 0;
}

struct shp_httpc *shp_httpc_free(struct shp_httpc *c)
{
	if (!c)
		return NULL;
	conn_close(c);
	SSL_CTX_free(c->ssl_ctx);
	BIO_meth_free(c->bio_method);
	free(c->socket_path);
	free(c->base_url);
	free_secret(c->token);
	free(c->cacert);
	free(c->cert);
	free(c->key);
	free(c);
	return NULL;
}

static int bad_url(const char *url, struct shp_error *err)
{
	return shp_error_set(err, SHP_E_INVAL,
			     "server URL '%s' must be https://HOST[:PORT][/PREFIX]", url);
}

/* Split the authority into host and port ("443" when absent); IPv6 literals are bracketed. */
static int split_authority(struct shp_httpc *c, const char *url, struct shp_error *err)
{
	const char *a = c->authority, *port, *end;
	struct in6_addr a6;
	size_t n;
	long p;

	if (a[0] == '[') {
		end = strchr(a, ']');
		if (!end)
			return bad_url(url, err);
		a++;
		port = end[1] == ':' ? end + 2 : end[1] ? "" : NULL;
	} else {
		end = a + strcspn(a, ":");
		port = *end ? end + 1 : NULL;
	}
	n = (size_t)(end - a);
	if (n == 0 || n >= sizeof(c->host) || memchr(a, '[', n) || memchr(a, ']', n))
		return bad_url(url, err);
	memcpy(c->host, a, n);
	c->host[n] = '\0';
	if (a != c->authority && inet_pton(AF_INET6, c->host, &a6) != 1)
		return bad_url(url, err);
	if (!port) {
		memcpy(c->port, "443", 4);
		return 0;
	}
	n = strlen(port);
	if (n == 0 || n >= sizeof(c->port) || strspn(port, "0123456789") != n)
		return bad_url(url, err);
	p = strtol(port, NULL, 10);
	if (p < 1 || p > 65535)
		return bad_url(url, err);
	memcpy(c->port, port, n + 1);
	return 0;
}

/* "https://HOST[:PORT][/PREFIX]": the prefix goes before every request path. */
static int parse_server_url(struct shp_httpc *c, const char *url, struct shp_error *err)
{
	const char *auth = url + 8;
	size_t n, auth_len;

	/* Bearer tokens never travel in clear text: a server URL must be https. */
	if (strncasecmp(url, "https://", 8) != 0 || !url[8])
		return shp_error_set(err, SHP_E_INVAL, "server URL '%s' must start with https://",
				     url);
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr("?#@\\", *p))
			return bad_url(url, err);
	auth_len = strcspn(auth, "/");
	if (auth_len == 0 || auth_len >= sizeof(c->authority))
		return bad_url(url, err);
	memcpy(c->authority, auth, auth_len);
	c->authority[auth_len] = '\0';
	if (split_authority(c, url, err) < 0)
		return -SHP_E_INVAL;
	if (dup_opt(url, &c->base_url, err) < 0)
		return -SHP_E_NOMEM;
	n = strlen(c->base_url);
	while (n > 8 + auth_len && c->base_url[n - 1] == '/')
		c->base_url[--n] = '\0';
	c->prefix = c->base_url + 8 + auth_len;
	return 0;
}

static int set_peer(struct shp_httpc *c, const struct shp_httpc_config *cfg, struct shp_error *err)
{
	if (cfg->server_url)
		return parse_server_url(c, cfg->server_url, err);
	if (!cfg->socket_path || !cfg->socket_path[0])
		return shp_error_set(err, SHP_E_INVAL, "no socket path or server URL given");
	memcpy(c->authority, "localhost", sizeof("localhost"));
	c->prefix = "";
	return dup_opt(cfg->socket_path, &c->socket_path, err);
}

struct shp_httpc *shp_httpc_new(const struct shp_httpc_config *cfg, struct shp_error *err)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = NULL;

	c = calloc(1, sizeof(*c));
	if (!c) {
		(void)shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	c->fd = -1;
	if (set_peer(c, cfg, err) < 0)
		return NULL;
	if (dup_opt(cfg->cacert, &c->cacert, err) < 0 || dup_opt(cfg->cert, &c->cert, err) < 0 ||
	    dup_opt(cfg->key, &c->key, err) < 0)
		return NULL;
	if (cfg->token && strpbrk(cfg->token, "\r\n")) {
		(void)shp_error_set(err, SHP_E_INVAL, "the token contains a line break");
		return NULL;
	}
	if (dup_opt(cfg->token, &c->token, err) < 0)
		return NULL;
	c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
	c->verbose = cfg->verbose;
	c->interrupt = cfg->interrupt;
	return TAKE_PTR(c);
}

void shp_httpc_response_init(struct shp_httpc_response *r)
{
	*r = (struct shp_httpc_response){.status = 0, .retry_after = -1};
	shp_buf_init(&r->body, SHP_HTTPC_BODY_MAX);
}

void shp_httpc_response_release(struct shp_httpc_response *r)
{
	size_t max = r->body.max;

	shp_buf_release(&r->body);
	*r = (struct shp_httpc_response){.status = 0, .retry_after = -1};
	shp_buf_init(&r->body, max);
}

/* Forget what an earlier response (or an interim 1xx one) left, keeping the body's cap. */
static void response_reset(struct shp_httpc_response *r)
{
	shp_buf_reset(&r->body);
	r->status = 0;
	r->request_id[0] = '\0';
	r->retry_after = -1;
	r->content_type[0] = '\0';
}

/* ---- errors ------------------------------------------------------------------------------- */

static int unreachable(const struct shp_httpc *c, const char *why, struct shp_error *err)
{
	return shp_error_set(err, SHP_E_UNREACHABLE, "cannot connect to shepherdd at '%s': %s",
			     peer_name(c), why);
}

static int timeout_error(const struct shp_httpc *c, struct shp_error *err)
{
	return shp_error_set(err, SHP_E_TIMEOUT, "no answer from shepherdd at '%s' within %ld ms",
			     peer_name(c), c->timeout_ms);
}

static int idle_error(const struct shp_httpc *c, long idle_ms, struct shp_error *err)
{
	return shp_error_set(err, SHP_E_TIMEOUT, "no data from shepherdd at '%s' for %ld ms",
			     peer_name(c), idle_ms);
}

static int proto_error(const struct shp_httpc *c, const char *what, struct shp_error *err)
{
	return shp_error_set(err, SHP_E_PROTO, "%s from shepherdd at '%s'", what, peer_name(c));
}

static int limit_error(const struct shp_httpc_response *resp, struct shp_error *err)
{
	return shp_error_set(err, SHP_E_LIMIT, "the answer from shepherdd is larger than %zu bytes",
			     resp->body.max);
}

/* A reset or a broken pipe means the server went away: x->lost, maybe worth one more try. */
static int io_error(const struct shp_httpc *c, struct xfer *x, int errnum, struct shp_error *err)
{
	char ebuf[128];

	if (errnum == EPIPE || errnum == ECONNRESET)
		x->lost = true;
	return shp_error_set(err, SHP_E_PROTO, "talking to shepherdd at '%s': %s", peer_name(c),
			     shp_strerror(errnum, ebuf, sizeof(ebuf)));
}

/* An OpenSSL failure, with the reason from its error queue (which it then clears). */
static int tls_error(const struct shp_httpc *c, enum shp_errc code, const char *what,
		     const char *file, struct shp_error *err)
{
	unsigned long e = ERR_peek_last_error();
	const char *why = e ? ERR_reason_error_string(e) : NULL;
	int r;

	r = shp_error_set(err, code, "TLS with shepherdd at '%s' failed: %s%s%s%s: %s",
			  peer_name(c), what, file ? " '" : "", file ? file : "", file ? "'" : "",
			  why ? why : "no details");
	ERR_clear_error();
	return r;
}

/* ---- waiting and raw I/O ------------------------------------------------------------------ */

static uint64_t deadline_after(uint64_t start, long ms)
{
	if ((uint64_t)ms > (UINT64_MAX - start) / 1000000)
		return UINT64_MAX;
	return start + (uint64_t)ms * 1000000;
}

static bool interrupted(const struct shp_httpc *c)
{
	return c->interrupt && *c->interrupt;
}

static int interrupted_error(struct shp_error *err)
{
	return shp_error_set(err, SHP_E_INTERRUPTED, "interrupted");
}

/*
 * Wait until fd is ready for events (or in error): 0, -SHP_E_TIMEOUT past the deadline,
 * -SHP_E_INTERRUPTED once the interrupt flag is set (the signal that sets it ends the poll).
 */
static int wait_fd(const struct shp_httpc *c, int fd, short events, uint64_t deadline,
		   struct shp_error *err)
{
	struct pollfd p = {.fd = fd, .events = events};
	uint64_t now, ms;
	int n;

	for (;;) {
		if (interrupted(c))
			return interrupted_error(err);
		now = shp_now_monotonic_ns();
		if (now >= deadline)
			return timeout_error(c, err);
		ms = (deadline - now + 999999) / 1000000;
		n = poll(&p, 1, ms > INT_MAX ? INT_MAX : (int)ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return shp_error_errno(err, errno, "waiting for shepherdd at '%s'",
					       peer_name(c));
	}
}

/* OpenSSL writes through this BIO so that a closed peer is EPIPE, never SIGPIPE. */
static int bio_io(BIO *b, char *buf, int n, bool wr)
{
	const struct shp_httpc *c = BIO_get_data(b);
	ssize_t k;

	BIO_clear_retry_flags(b);
	do
		k = wr ? send(c->fd, buf, (size_t)n, MSG_NOSIGNAL) : recv(c->fd, buf, (size_t)n, 0);
	while (k < 0 && errno == EINTR);
	if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		if (wr)
			BIO_set_retry_write(b);
		else
			BIO_set_retry_read(b);
	}
	return (int)k;
}

static int bio_write(BIO *b, const char *buf, int n)
{
	return bio_io(b, (char *)buf, n, true);
}

static int bio_read(BIO *b, char *buf, int n)
{
	return bio_io(b, buf, n, false);
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static ssize_t plain_io(struct shp_httpc *c, struct xfer *x, bool wr, void *buf, size_t n,
			struct shp_error *err)
{
	ssize_t k;
	int r;

	for (;;) {
		k = wr ? send(c->fd, buf, n, MSG_NOSIGNAL) : recv(c->fd, buf, n, 0);
		if (k >= 0)
			return k;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return io_error(c, x, errno, err);
		r = wait_fd(c, c->fd, wr ? POLLOUT : POLLIN, x->deadline, err);
		if (r < 0)
			return r;
	}
}

static ssize_t tls_io(struct shp_httpc *c, struct xfer *x, bool wr, void *buf, size_t n,
		      struct shp_error *err)
{
	int k, e, r;

	for (;;) {
		ERR_clear_error();
		errno = 0;
		k = wr ? SSL_write(c->ssl, buf, (int)n) : SSL_read(c->ssl, buf, (int)n);
		if (k > 0)
			return k;
		e = SSL_get_error(c->ssl, k);
		if (e == SSL_ERROR_ZERO_RETURN)
			return 0;
		if (e == SSL_ERROR_SYSCALL)
			return io_error(c, x, errno ? errno : ECONNRESET, err);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return tls_error(c, SHP_E_PROTO, "the connection", NULL, err);
		r = wait_fd(c, c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, x->deadline,
			    err);
		if (r < 0)
			return r;
	}
}

/* One read or write of up to n bytes: the count, 0 at the end of the stream, or an error. */
static ssize_t conn_io(struct shp_httpc *c, struct xfer *x, bool wr, void *buf, size_t n,
		       struct shp_error *err)
{
	if (n > INT_MAX)
		n = INT_MAX;
	return c->ssl ? tls_io(c, x, wr, buf, n, err) : plain_io(c, x, wr, buf, n, err);
}

static int send_all(struct shp_httpc *c, struct xfer *x, const char *data, size_t n,
		    struct shp_error *err)
{
	ssize_t k;

	while (n > 0) {
		k = conn_io(c, x, true, (void *)data, n, err);
		if (k < 0)
			return (int)k;
		data += k;
		n -= (size_t)k;
	}
	return 0;
}

/* ---- connecting --------------------------------------------------------------------------- */

static int unix_connect(struct shp_httpc *c, uint64_t deadline, struct shp_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timespec nap = {.tv_nsec = BACKLOG_NAP_NS};
	struct stat st;
	char ebuf[128];

	/* A missing socket file is the usual sign of a daemon that is not running: say so. */
	if (strlen(c->socket_path) >= sizeof(sa.sun_path))
		return unreachable(c, "the socket path is too long", err);
	if (stat(c->socket_path, &st) < 0)
		return unreachable(c, shp_strerror(errno, ebuf, sizeof(ebuf)), err);
	if (!S_ISSOCK(st.st_mode))
		return unreachable(c, "not a socket", err);
	memcpy(sa.sun_path, c->socket_path, strlen(c->socket_path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return shp_error_errno(err, errno, "cannot create a socket");
	while (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EISCONN)
			break;
		if (errno != EAGAIN && errno != EINTR)
			return unreachable(c, shp_strerror(errno, ebuf, sizeof(ebuf)), err);
		if (interrupted(c))
			return interrupted_error(err);
		if (shp_now_monotonic_ns() >= deadline)
			return timeout_error(c, err);
		(void)nanosleep(&nap, NULL);
	}
	return 0;
}

/* One address: 0 when connected, an errno value to try the next one, or a negative error. */
static int tcp_try(struct shp_httpc *c, const struct addrinfo *a, uint64_t deadline,
		   struct shp_error *err)
{
	socklen_t len = sizeof(int);
	int e = 0, one = 1, r;

	c->fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
	if (c->fd < 0)
		return errno;
	if (connect(c->fd, a->ai_addr, a->ai_addrlen) < 0) {
		e = errno;
		if (e == EINPROGRESS || e == EINTR) {
			r = wait_fd(c, c->fd, POLLOUT, deadline, err);
			if (r < 0)
				return r;
			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
				e = errno;
		}
		if (e) {
			conn_close(c);
			return e;
		}
	}
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

/* Name resolution is getaddrinfo's: it blocks, outside the request's deadline. */
static int tcp_connect(struct shp_httpc *c, uint64_t deadline, struct shp_error *err)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *list = NULL;
	char ebuf[128];
	int r;

	r = getaddrinfo(c->host, c->port, &hints, &list);
	if (r != 0)
		return unreachable(c,
				   r == EAI_SYSTEM ? shp_strerror(errno, ebuf, sizeof(ebuf))
						   : gai_strerror(r),
				   err);
	r = EHOSTUNREACH;
	for (const struct addrinfo *a = list; a; a = a->ai_next) {
		r = tcp_try(c, a, deadline, err);
		if (r <= 0)
			break;
	}
	freeaddrinfo(list);
	if (r > 0)
		return unreachable(c, shp_strerror(r, ebuf, sizeof(ebuf)), err);
	return r;
}

static int no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)userdata;
	return 0; /* an encrypted key fails to load instead of prompting on the terminal */
}

static int tls_bio_method(struct shp_httpc *c, struct shp_error *err)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "shepherd");

	if (!m || BIO_meth_set_write(m, bio_write) != 1 || BIO_meth_set_read(m, bio_read) != 1 ||
	    BIO_meth_set_ctrl(m, bio_ctrl) != 1) {
		BIO_meth_free(m);
		return tls_error(c, SHP_E_UNREACHABLE, "cannot set up TLS", NULL, err);
	}
	c->bio_method = m;
	return 0;
}

/* TLS 1.2 or later, the server verified against cacert (or the system's CAs), maybe mTLS. */
static int tls_context(struct shp_httpc *c, struct shp_error *err)
{
	_cleanup_(SSL_CTX_freep) SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	int ok;

	if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		return tls_error(c, SHP_E_UNREACHABLE, "cannot set up TLS", NULL, err);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* A close without close_notify is an end of stream; the HTTP framing catches truncation. */
	(void)SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	if (c->cacert)
		ok = SSL_CTX_load_verify_locations(ctx, c->cacert, NULL);
	else
		ok = SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1)
		return tls_error(c, SHP_E_UNREACHABLE, "cannot load the CA certificates", c->cacert,
				 err);
	if (c->cert &&
	    (SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1 ||
	     SSL_CTX_use_PrivateKey_file(ctx, c->key ? c->key : c->cert, SSL_FILETYPE_PEM) != 1 ||
	     SSL_CTX_check_private_key(ctx) != 1))
		return tls_error(c, SHP_E_UNREACHABLE, "cannot load the client certificate",
				 c->cert, err);
	if (!c->bio_method && tls_bio_method(c, err) < 0)
		return -SHP_E_UNREACHABLE;
	c->ssl_ctx = TAKE_PTR(ctx);
	return 0;
}

/* The name (with SNI) or the IP address the server's certificate must match. */
static int tls_set_peer(struct shp_httpc *c)
{
	unsigned char addr[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, c->host, addr) == 1 || inet_pton(AF_INET6, c->host, addr) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->host) == 1 ? 0 : -1;
	SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_set_tlsext_host_name(c->ssl, c->host) != 1 || SSL_set1_host(c->ssl, c->host) != 1)
		return -1;
	return 0;
}

static int handshake_error(const struct shp_httpc *c, int ssl_err, struct shp_error *err)
{
	long v = SSL_get_verify_result(c->ssl);
	char ebuf[128];

	if (v != X509_V_OK) {
		ERR_clear_error();
		return shp_error_set(err, SHP_E_UNREACHABLE,
				     "TLS with shepherdd at '%s' failed: the server certificate is "
				     "not trusted (%s)",
				     peer_name(c), X509_verify_cert_error_string(v));
	}
	if (ssl_err == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0)
		return shp_error_set(err, SHP_E_UNREACHABLE,
				     "TLS with shepherdd at '%s' failed: %s", peer_name(c),
				     errno ? shp_strerror(errno, ebuf, sizeof(ebuf))
					   : "the server closed the connection");
	return tls_error(c, SHP_E_UNREACHABLE, "handshake", NULL, err);
}

static int tls_handshake(struct shp_httpc *c, uint64_t deadline, struct shp_error *err)
{
	BIO *bio;
	int k, e, r;

	if (!c->ssl_ctx && tls_context(c, err) < 0)
		return -SHP_E_UNREACHABLE;
	/* an upgraded connection took the BIO method along with its TLS session */
	if (!c->bio_method && tls_bio_method(c, err) < 0)
		return -SHP_E_UNREACHABLE;
	c->ssl = SSL_new(c->ssl_ctx);
	bio = c->ssl ? BIO_new(c->bio_method) : NULL;
	if (!bio)
		return tls_error(c, SHP_E_UNREACHABLE, "cannot set up TLS", NULL, err);
	BIO_set_data(bio, c);
	BIO_set_init(bio, 1);
	SSL_set_bio(c->ssl, bio, bio);
	if (tls_set_peer(c) < 0)
		return tls_error(c, SHP_E_UNREACHABLE, "cannot set the server name to verify", NULL,
				 err);
	for (;;) {
		ERR_clear_error();
		errno = 0;
		k = SSL_connect(c->ssl);
		if (k == 1)
			return 0;
		e = SSL_get_error(c->ssl, k);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return handshake_error(c, e, err);
		r = wait_fd(c, c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, err);
		if (r < 0)
			return r;
	}
}

static int conn_open(struct shp_httpc *c, uint64_t deadline, struct shp_error *err)
{
	int r;

	c->rpos = c->rlen = 0;
	if (c->socket_path)
		r = unix_connect(c, deadline, err);
	else
		r = tcp_connect(c, deadline, err);
	if (r == 0 && !c->socket_path)
		r = tls_handshake(c, deadline, err);
	if (r < 0)
		conn_close(c);
	return r;
}

/* An idle kept connection that turned readable was closed (or spoken on) by the server. */
static void drop_if_stale(struct shp_httpc *c)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};

	if (c->fd < 0)
		return;
	if (c->rpos < c->rlen || (c->ssl && SSL_pending(c->ssl) > 0) || poll(&p, 1, 0) != 0)
		conn_close(c);
}

/* ---- reading the response ----------------------------------------------------------------- */

/* Make sure unread bytes are buffered: 1, 0 at the end of the stream, or an error. */
static int fill(struct shp_httpc *c, struct xfer *x, struct shp_error *err)
{
	ssize_t k;

	if (c->rpos < c->rlen)
		return 1;
	if (x->streaming)
		x->deadline = deadline_after(shp_now_monotonic_ns(), x->idle_ms);
	k = conn_io(c, x, false, c->rbuf, sizeof(c->rbuf), err);
	if (k < 0)
		return (int)k;
	c->rpos = 0;
	c->rlen = (size_t)k;
	if (k > 0)
		x->answered = true;
	return k > 0;
}

static int cut_short(const struct shp_httpc *c, struct xfer *x, struct shp_error *err)
{
	if (x->answered)
		return proto_error(c, "a truncated answer", err);
	x->lost = true;
	return shp_error_set(err, SHP_E_PROTO,
			     "shepherdd at '%s' closed the connection without an answer",
			     peer_name(c));
}

/* One CRLF-terminated line into line (without the CRLF), at most line->max bytes with it. */
static int read_line(struct shp_httpc *c, struct xfer *x, struct shp_buf *line,
		     const char *too_long, struct shp_error *err)
{
	const char *p, *lf;
	size_t n;
	int r;

	shp_buf_reset(line);
	do {
		r = fill(c, x, err);
		if (r <= 0)
			return r < 0 ? r : cut_short(c, x, err);
		p = c->rbuf + c->rpos;
		lf = memchr(p, '\n', c->rlen - c->rpos);
		n = lf ? (size_t)(lf - p) + 1 : c->rlen - c->rpos;
		if (shp_buf_addn(line, p, n) < 0)
			return proto_error(c, too_long, err);
		c->rpos += n;
	} while (!lf);
	if (line->len < 2 || line->buf[line->len - 2] != '\r')
		return proto_error(c, "a line not ending in CRLF", err);
	shp_buf_truncate(line, line->len - 2);
	if (memchr(line->buf, '\r', line->len) || memchr(line->buf, '\0', line->len))
		return proto_error(c, "a stray control character", err);
	return 0;
}

/* A line of the header section (or of the trailers), charged to HEAD_MAX. */
static int read_head_line(struct shp_httpc *c, struct xfer *x, struct shp_buf *line,
			  struct shp_error *err)
{
	int r;

	line->max = x->head_left;
	r = read_line(c, x, line, "a header section over 64 KiB", err);
	if (r < 0)
		return r;
	x->head_left -= line->len + 2;
	return 0;
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* "HTTP/1.x NNN[ reason]"; HTTP/1.0 means no keep-alive. */
static int read_status(struct shp_httpc *c, struct xfer *x, struct shp_httpc_response *resp,
		       struct shp_buf *line, struct shp_error *err)
{
	const char *s;
	int r;

	r = read_head_line(c, x, line, err);
	if (r < 0)
		return r;
	s = line->buf;
	if (line->len < 12 || strncmp(s, "HTTP/1.", 7) != 0 || !is_digit(s[7]) || s[8] != ' ' ||
	    s[9] < '1' || s[9] > '5' || !is_digit(s[10]) || !is_digit(s[11]) ||
	    (line->len > 12 && s[12] != ' '))
		return proto_error(c, "a malformed status line", err);
	resp->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	if (s[7] == '0')
		x->close = true;
	return 0;
}

/* Copy a header value, keeping printable ASCII only (it may end up on a terminal). */
static void copy_header_value(const char *v, size_t n, char *out, size_t size)
{
	size_t j = 0;

	for (size_t i = 0; i < n && j + 1 < size; i++)
		if (v[i] > 0x20 && v[i] < 0x7f)
			out[j++] = v[i];
		else if (v[i] == ' ' && j > 0)
			out[j++] = ' ';
	while (j > 0 && out[j - 1] == ' ')
		j--;
	out[j] = '\0';
}

/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") in seconds since the epoch, or -1. */
static time_t parse_http_date(const char *v)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct tm tm = {0};
	char mon[4];
	const char *m;
	int end = 0;

	if (sscanf(v, "%*3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", &tm.tm_mday, mon,
		   &tm.tm_year, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &end) != 6 ||
	    end == 0 || v[end] != '\0')
		return -1;
	m = strstr(months, mon);
	if (!m || strlen(mon) != 3 || (m - months) % 3 != 0 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	tm.tm_mon = (int)(m - months) / 3;
	tm.tm_year -= 1900;
	return timegm(&tm);
}

/* Retry-After is delta-seconds or an HTTP date (RFC 9110 10.2.3). */
static long parse_retry_after(const char *v)
{
	char *end;
	long secs;
	time_t when;

	if (is_digit(v[0])) {
		errno = 0;
		secs = strtol(v, &end, 10);
		if (errno || *end)
			return -1;
		return secs;
	}
	when = parse_http_date(v);
	if (when == (time_t)-1)
		return -1;
	secs = (long)(when - time(NULL));
	return secs < 0 ? 0 : secs;
}

static bool name_is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* Whether the comma-separated list v holds token (in any case). */
static bool list_has(const char *v, size_t n, const char *token)
{
	const char *end = v + n, *next;
	size_t k;

	for (; v < end; v = next + 1) {
		next = memchr(v, ',', (size_t)(end - v));
		if (!next)
			next = end;
		k = (size_t)(next - v);
		while (k > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			k--;
		}
		while (k > 0 && (v[k - 1] == ' ' || v[k - 1] == '\t'))
			k--;
		if (name_is(v, k, token))
			return true;
	}
	return false;
}

static int parse_length(const struct shp_httpc *c, struct xfer *x, const char *v, size_t n,
			struct shp_error *err)
{
	long long len = 0;

	if (n == 0 || n > 18)
		return proto_error(c, "a bad Content-Length", err);
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(v[i]))
			return proto_error(c, "a bad Content-Length", err);
		len = len * 10 + (v[i] - '0');
	}
	if (x->length >= 0 && x->length != len)
		return proto_error(c, "conflicting Content-Length headers", err);
	x->length = len;
	return 0;
}

static int use_field(const struct shp_httpc *c, struct xfer *x, struct shp_httpc_response *resp,
		     const char *name, size_t n, const char *v, size_t vlen, struct shp_error *err)
{
	char tmp[64];

	if (x->on_field)
		x->on_field(x->field_arg, name, n, v, vlen);
	if (name_is(name, n, "Content-Length"))
		return parse_length(c, x, v, vlen, err);
	if (name_is(name, n, "Transfer-Encoding")) {
		if (x->chunked || !name_is(v, vlen, "chunked"))
			return proto_error(c, "an unsupported transfer coding", err);
		x->chunked = true;
	} else if (name_is(name, n, "Connection")) {
		if (list_has(v, vlen, "close"))
			x->close = true;
	} else if (name_is(name, n, SHP_HDR_REQUEST_ID)) {
		copy_header_value(v, vlen, resp->request_id, sizeof(resp->request_id));
	} else if (name_is(name, n, SHP_HDR_RETRY_AFTER)) {
		copy_header_value(v, vlen, tmp, sizeof(tmp));
		resp->retry_after = parse_retry_after(tmp);
	} else if (name_is(name, n, "Content-Type")) {
		copy_header_value(v, vlen, resp->content_type, sizeof(resp->content_type));
	}
	return 0;
}

/* "name: value"; resp NULL for trailers, which are checked and ignored. */
static int parse_field(const struct shp_httpc *c, struct xfer *x, struct shp_httpc_response *resp,
		       const char *line, size_t len, struct shp_error *err)
{
	const char *colon = memchr(line, ':', len), *v;
	size_t n, vlen;

	n = colon ? (size_t)(colon - line) : 0;
	if (n == 0)
		return proto_error(c, "a malformed header line", err);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)line[i];

		/* tchar (RFC 9110 5.6.2); a space here is also how obsolete line folding starts */
		if (ch <= 0x20 || ch >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", ch))
			return proto_error(c, "a malformed header line", err);
	}
	v = colon + 1;
	vlen = len - n - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	return resp ? use_field(c, x, resp, line, n, v, vlen, err) : 0;
}

/* Header (or trailer) fields up to the empty line. */
static int read_fields(struct shp_httpc *c, struct xfer *x, struct shp_httpc_response *resp,
		       struct shp_buf *line, struct shp_error *err)
{
	int r;

	for (;;) {
		r = read_head_line(c, x, line, err);
		if (r < 0)
			return r;
		if (line->len == 0)
			return 0;
		r = parse_field(c, x, resp, line->buf, line->len, err);
		if (r < 0)
			return r;
	}
}

/* The status line and headers of the final response (interim 1xx ones are skipped). */
static int read_head(struct shp_httpc *c, struct xfer *x, struct shp_httpc_response *resp,
		     struct shp_buf *line, struct shp_error *err)
{
	int r;

	do {
		response_reset(resp);
		x->length = -1;
		x->chunked = false;
		x->head_left = HEAD_MAX;
		r = read_status(c, x, resp, line, err);
		if (r == 0)
			r = read_fields(c, x, resp, line, err);
		if (r < 0)
			return r;
	} while (resp->status < 200 && resp->status != 101);
	if (resp->status == 101 && !x->upgrade)
		return proto_error(c, "an unexpected protocol switch", err);
	if (resp->status == 101)
		return 0; /* the connection is no longer HTTP's */
	if (x->chunked && x->length >= 0)
		return proto_error(c, "both Content-Length and chunked framing", err);
	return 0;
}

/* Body bytes: to the stream's callback (1 when it asked to stop), or into resp->body. */
static int body_add(struct xfer *x, struct shp_httpc_response *resp, const char *data, size_t n,
		    struct shp_error *err)
{
	int r;

	if (x->streaming) {
		if (n == 0)
			return 0;
		r = x->stream->on_data(x->stream->arg, data, n, err);
		if (r > 0)
			x->stopped = true;
		return r < 0 ? r : x->stopped;
	}
	r = shp_buf_addn(&resp->body, data, n);

	if (r == -SHP_E_LIMIT)
		return limit_error(resp, err);
	if (r < 0)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory reading the answer");
	return 0;
}

/* The next n bytes of the stream into the body. */
static int read_body_bytes(struct shp_httpc *c, struct xfer *x, struct shp_httpc_response *resp,
			   uint64_t n, struct shp_error *err)
{
	size_t k;
	int r;

	if (!x->streaming && n > resp->body.max - resp->body.len)
		return limit_error(resp, err);
	if (!x->streaming && shp_buf_grow(&resp->body, (size_t)n) < 0)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory reading the answer");
	while (n > 0) {
		r = fill(c, x, err);
		if (r <= 0)
			return r < 0 ? r : cut_short(c, x, err);
		k = c->rlen - c->rpos < n ? c->rlen - c->rpos : (size_t)n;
		c->rpos += k;
		n -= k;
		r = body_add(x, resp, c->rbuf + c->rpos - k, k, err);
		if (r != 0)
			return r;
	}
	return 0;
}

static int read_until_close(struct shp_httpc *c, struct xfer *x, struct shp_httpc_response *resp,
			    struct shp_error *err)
{
	int r;

	for (;;) {
		size_t start;

		r = fill(c, x, err);
		if (r <= 0)
			return r;
		start = c->rpos;
		c->rpos = c->rlen;
		r = body_add(x, resp, c->rbuf + start, c->rlen - start, err);
		if (r != 0)
			return r;
	}
}

/* "HEX[ ][;ext]": the size of the next chunk. */
static int read_chunk_size(struct shp_httpc *c, struct xfer *x, struct shp_buf *line, uint64_t *ret,
			   struct shp_error *err)
{
	uint64_t size = 0;
	size_t i = 0;
	int d, r;

	line->max = CHUNK_LINE_MAX;
	r = read_line(c, x, line, "a chunk size line over 1 KiB", err);
	if (r < 0)
		return r;
	for (; i < line->len && (d = shp_hex_digit(line->buf[i])) >= 0; i++) {
		if (i == 15)
			return proto_error(c, "a bad chunk size", err);
		size = size * 16 + (uint64_t)d;
	}
	if (i == 0)
		return proto_error(c, "a bad chunk size", err);
	while (i < line->len && (line->buf[i] == ' ' || line->buf[i] == '\t'))
		i++;
	if (i < line->len && line->buf[i] != ';')
		return proto_error(c, "a bad chunk size", err);
	*ret = size;
	return 0;
}

static int read_chunked(struct shp_httpc *c, struct xfer *x, struct shp_httpc_response *resp,
			struct shp_buf *line, struct shp_error *err)
{
	uint64_t size = 0;
	int r;

	for (;;) {
		r = read_chunk_size(c, x, line, &size, err);
		if (r < 0)
			return r;
		if (size == 0)
			return read_fields(c, x, NULL, line, err);
		r = read_body_bytes(c, x, resp, size, err);
		if (r != 0)
			return r;
		line->max = CHUNK_LINE_MAX;
		r = read_line(c, x, line, "a chunk longer than its size", err);
		if (r < 0)
			return r;
		if (line->len != 0)
			return proto_error(c, "a chunk longer than its size", err);
	}
}

static int read_response(struct shp_httpc *c, struct xfer *x, struct shp_httpc_response *resp,
			 struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf line = SHP_BUF_INIT(HEAD_MAX);
	int r;

	r = read_head(c, x, resp, &line, err);
	if (r < 0)
		return r;
	if (x->upgrade && resp->status == 101)
		return 0; /* the caller takes the connection over */
	if (x->upgrade && resp->status >= 200 && resp->status <= 299) {
		x->close = true; /* not switched, and the body is not ours to read */
		return 0;
	}
	if (x->stream) {
		r = x->stream->on_head ? x->stream->on_head(x->stream->arg, resp, err) : 0;
		if (r != 0) {
			x->close = true; /* the body is left unread */
			return r < 0 ? r : 0;
		}
		x->streaming = resp->status >= 200 && resp->status <= 299;
	}
	if (x->head || resp->status == 204 || resp->status == 304) {
		r = 0;
	} else if (x->chunked) {
		r = read_chunked(c, x, resp, &line, err);
	} else if (x->length >= 0) {
		r = read_body_bytes(c, x, resp, (uint64_t)x->length, err);
	} else {
		x->close = true;
		r = read_until_close(c, x, resp, err);
	}
	if (c->rpos < c->rlen || x->stopped)
		x->close = true; /* bytes beyond the answer: do not trust this connection again */
	return r < 0 ? r : 0;
}

/* ---- the request -------------------------------------------------------------------------- */

static bool path_is_valid(const char *path)
{
	if (path[0] != '/')
		return false;
	for (const char *p = path; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return false;
	return true;
}

/* A header value: no control characters but tabs (so no line breaks). */
static bool value_is_clean(const char *v)
{
	for (; *v; v++)
		if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f)
			return false;
	return true;
}

/* Extra "Name: value" lines: a token for the name, printable text for the value. */
static int check_headers(const char *const *headers, size_t *ret_len, struct shp_error *err)
{
	size_t total = 0, n;

	for (size_t i = 0; headers && headers[i]; i++) {
		const char *h = headers[i], *colon = strchr(h, ':');

		n = colon ? (size_t)(colon - h) : 0;
		if (n == 0)
			return shp_error_set(err, SHP_E_INVAL, "invalid request header '%s'", h);
		for (size_t k = 0; k < n; k++)
			if ((unsigned char)h[k] <= 0x20 || (unsigned char)h[k] >= 0x7f ||
			    strchr("\"(),/:;<=>?@[\\]{}", h[k]))
				return shp_error_set(err, SHP_E_INVAL,
						     "invalid request header '%s'", h);
		if (!value_is_clean(colon + 1))
			return shp_error_set(err, SHP_E_INVAL,
					     "invalid value in request header '%.*s'", (int)n, h);
		total += strlen(h) + 2;
		if (total > EXTRA_HEADERS_MAX)
			return shp_error_set(err, SHP_E_LIMIT, "request headers are too long");
	}
	*ret_len = total;
	return 0;
}

static int check_request(const struct shp_httpc *c, const char *method, const char *path,
			 const char *idempotency_key, struct shp_error *err)
{
	if (!method[0] || strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(method) ||
	    strlen(method) > 16)
		return shp_error_set(err, SHP_E_INVAL, "invalid request method '%s'", method);
	if (!path_is_valid(path))
		return shp_error_set(err, SHP_E_INVAL, "invalid request path '%s'", path);
	if (strlen(c->prefix) + strlen(path) > SHP_API_URL_MAX + 4096)
		return shp_error_set(err, SHP_E_LIMIT, "request URL is too long");
	if (!idempotency_key)
		return 0;
	if (strlen(idempotency_key) > IDEMPOTENCY_KEY_MAX)
		return shp_error_set(err, SHP_E_INVAL, "invalid idempotency key");
	for (const char *p = idempotency_key; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return shp_error_set(err, SHP_E_INVAL, "invalid idempotency key");
	return 0;
}

/* The request holds the token: clear it before the memory goes back. */
static void wipe_bufp(struct shp_buf *b)
{
	explicit_bzero(b->buf, b->len);
	shp_buf_release(b);
}

/* What a request carries besides method, path and body. */
struct req_opts {
	const char *key;            /* Idempotency-Key, or NULL */
	const char *accept;         /* "application/json" when NULL */
	const char *const *headers; /* extra lines (checked), or NULL */
	size_t headers_len;         /* their length with CRLFs */
};

/* The whole request into req, allocated once so that no copy of the token is left behind. */
static int build_request(const struct shp_httpc *c, const char *method, const char *path,
			 const char *body, size_t body_len, const struct req_opts *o,
			 struct shp_buf *req)
{
	size_t head = REQUEST_HEAD_MAX + strlen(c->prefix) + strlen(path) +
		      (c->token ? strlen(c->token) : 0) + o->headers_len;
	int r;

	if (!body)
		body_len = 0;
	if (body_len > SIZE_MAX / 2)
		return -SHP_E_LIMIT;
	req->max = head + body_len;
	r = shp_buf_grow(req, req->max);
	if (r == 0)
		r = shp_buf_addf(req,
				 "%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s/%s\r\n"
				 "Accept: %s\r\n%s: %d\r\n",
				 method, c->prefix, path, c->authority, PACKAGE_NAME,
				 PACKAGE_VERSION, o->accept ? o->accept : "application/json",
				 SHP_HDR_API_VERSION, SHP_API_VERSION);
	if (r == 0 && o->key)
		r = shp_buf_addf(req, "%s: %s\r\n", SHP_HDR_IDEMPOTENCY_KEY, o->key);
	for (size_t i = 0; r == 0 && o->headers && o->headers[i]; i++)
		r = shp_buf_addf(req, "%s\r\n", o->headers[i]);
	if (r == 0 && c->token)
		r = shp_buf_addf(req, "Authorization: Bearer %s\r\n", c->token);
	if (r == 0 && body)
		r = shp_buf_addf(req, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
				 body_len);
	else if (r == 0 && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		r = shp_buf_add(req, "Content-Length: 0\r\n");
	if (r == 0)
		r = shp_buf_add(req, "\r\n");
	if (r == 0 && body_len > 0)
		r = shp_buf_addn(req, body, body_len);
	return r;
}

/*
 * Send the request and read the answer, on the kept connection when there is one. The server
 * may have closed that connection meanwhile: when it fails before any byte of an answer, a
 * request that is safe to send twice gets one more try on a fresh connection. *x is the
 * template of each attempt, and holds the last one's state on return.
 */
static int exchange(struct shp_httpc *c, const struct shp_buf *req, struct xfer *x, bool resend_ok,
		    struct shp_httpc_response *resp, struct shp_error *err)
{
	struct shp_error e = SHP_ERROR_INIT;
	const struct xfer proto = *x;
	bool reused;
	int r;

	for (int attempt = 1;; attempt++) {
		*x = proto;
		drop_if_stale(c);
		reused = c->fd >= 0;
		r = reused ? 0 : conn_open(c, x->deadline, &e);
		if (r == 0)
			r = send_all(c, x, req->buf, req->len, &e);
		if (r == 0)
			r = read_response(c, x, resp, &e);
		if (r < 0 || x->close)
			conn_close(c);
		if (r == 0)
			return 0;
		if (!reused || !resend_ok || !x->lost || x->answered || attempt > 1)
			break;
		response_reset(resp);
	}
	if (err)
		*err = e;
	return r;
}

static int do_request(struct shp_httpc *c, const char *method, const char *path, const char *body,
		      size_t body_len, struct req_opts *o, struct xfer *x,
		      struct shp_httpc_response *resp, struct shp_error *err)
{
	_cleanup_(wipe_bufp) struct shp_buf req = SHP_BUF_INIT(0);
	bool resend_ok;
	uint64_t start;
	int r;

	response_reset(resp);
	if (interrupted(c))
		return interrupted_error(err); /* nothing is sent once Ctrl-C came */
	r = check_request(c, method, path, o->key, err);
	if (r == 0 && o->accept && (!o->accept[0] || !value_is_clean(o->accept)))
		r = shp_error_set(err, SHP_E_INVAL, "invalid Accept header value");
	if (r == 0)
		r = check_headers(o->headers, &o->headers_len, err);
	if (r < 0)
		return r;
	r = build_request(c, method, path, body, body_len, o, &req);
	if (r < 0)
		return shp_error_set(err, r == -SHP_E_LIMIT ? SHP_E_LIMIT : SHP_E_NOMEM,
				     "cannot build the request");
	if (c->verbose)
		fprintf(stderr, "-> %s %s\n", method, path);
	start = shp_now_monotonic_ns();
	x->head = strcmp(method, "HEAD") == 0;
	x->length = -1;
	x->deadline = deadline_after(start, c->timeout_ms);
	resend_ok = x->head || strcmp(method, "GET") == 0 || o->key;
	r = exchange(c, &req, x, resend_ok, resp, err);
	if (r == -SHP_E_TIMEOUT && x->streaming)
		r = idle_error(c, x->idle_ms, err);
	if (c->verbose && r < 0)
		fprintf(stderr, "<- failed (%.1f ms)\n",
			(double)(shp_now_monotonic_ns() - start) / 1e6);
	else if (c->verbose)
		fprintf(stderr, "<- %ld (%.1f ms) request-id=%s\n", resp->status,
			(double)(shp_now_monotonic_ns() - start) / 1e6,
			resp->request_id[0] ? resp->request_id : "-");
	return r;
}

int shp_httpc_request(struct shp_httpc *c, const char *method, const char *path, const char *body,
		      size_t body_len, const char *idempotency_key, struct shp_httpc_response *resp,
		      struct shp_error *err)
{
	struct req_opts o = {.key = idempotency_key};
	struct xfer x = {.length = -1};

	return do_request(c, method, path, body, body_len, &o, &x, resp, err);
}

int shp_httpc_stream(struct shp_httpc *c, const struct shp_httpc_stream *s,
		     struct shp_httpc_response *resp, struct shp_error *err)
{
	struct req_opts o = {.accept = s->accept, .headers = s->headers};
	struct xfer x = {.length = -1, .stream = s};

	if (!s->on_data)
		return shp_error_set(err, SHP_E_INVAL, "a stream needs a data callback");
	x.idle_ms = s->idle_timeout_ms > 0 ? s->idle_timeout_ms : c->timeout_ms;
	return do_request(c, s->method ? s->method : "GET", s->path, NULL, 0, &o, &x, resp, err);
}

/* ---- protocol switches ------------------------------------------------------------------- */

/* A client holding c's switched connection: the socket, the TLS session and the read buffer. */
static struct shp_httpc *take_connection(struct shp_httpc *c)
{
	struct shp_httpc *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	if (c->socket_path && !(k->socket_path = strdup(c->socket_path))) {
		free(k);
		return NULL;
	}
	if (c->base_url && !(k->base_url = strdup(c->base_url))) {
		free(k->socket_path);
		free(k);
		return NULL;
	}
	k->prefix = "";
	k->timeout_ms = c->timeout_ms;
	k->interrupt = c->interrupt;
	k->fd = c->fd;
	k->ssl = c->ssl;
	if (k->ssl) {
		/* the BIO calls back into its owner for the socket: it moves along, and c makes
		 * itself a new method for its next TLS connection */
		BIO_set_data(SSL_get_rbio(k->ssl), k);
		k->bio_method = c->bio_method;
		c->bio_method = NULL;
	}
	memcpy(k->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
	k->rlen = c->rlen - c->rpos;
	c->fd = -1;
	c->ssl = NULL;
	c->rpos = c->rlen = 0;
	return k;
}

int shp_httpc_upgrade(struct shp_httpc *c, const char *path, const char *const *headers,
		      shp_httpc_field_fn on_field, void *arg, struct shp_httpc_response *resp,
		      struct shp_httpc **ret_conn, struct shp_error *err)
{
	struct req_opts o = {.headers = headers};
	struct xfer x = {.length = -1, .upgrade = true, .on_field = on_field, .field_arg = arg};
	struct shp_httpc *k;
	int r = do_request(c, "GET", path, NULL, 0, &o, &x, resp, err);

	*ret_conn = NULL;
	if (r < 0 || resp->status != 101)
		return r;
	k = take_connection(c);
	if (!k) {
		conn_close(c);
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	*ret_conn = k;
	return 0;
}

long shp_httpc_raw_read(struct shp_httpc *c, void *buf, size_t n, int timeout_ms,
			struct shp_error *err)
{
	struct xfer x = {.deadline = deadline_after(shp_now_monotonic_ns(), timeout_ms)};
	size_t k;

	if (c->rpos < c->rlen) {
		k = c->rlen - c->rpos < n ? c->rlen - c->rpos : n;
		memcpy(buf, c->rbuf + c->rpos, k);
		c->rpos += k;
		return (long)k;
	}
	if (c->fd < 0)
		return 0;
	return (long)conn_io(c, &x, false, buf, n, err);
}

int shp_httpc_raw_write(struct shp_httpc *c, const void *buf, size_t n, int timeout_ms,
			struct shp_error *err)
{
	struct xfer x = {.deadline = deadline_after(shp_now_monotonic_ns(), timeout_ms)};

	if (c->fd < 0)
		return shp_error_set(err, SHP_E_PROTO, "the connection to shepherdd is closed");
	return send_all(c, &x, buf, n, err);
}

int shp_httpc_fd(const struct shp_httpc *c)
{
	return c->fd;
}

bool shp_httpc_has_buffered(const struct shp_httpc *c)
{
	return c->rpos < c->rlen || (c->ssl && SSL_pending(c->ssl) > 0);
}

/* ---- JSON on top ---------------------------------------------------------------------------- */

static void add_details(const json_t *details, int room, struct shp_error *err)
{
	json_t *obj = (json_t *)details; /* jansson's iterators are not const */

	if (!json_is_object(details))
		return;
	for (void *it = json_object_iter(obj); it && room > 0;
	     it = json_object_iter_next(obj, it)) {
		const char *key = json_object_iter_key(it);
		json_t *v = json_object_iter_value(it);
		_cleanup_free_ char *text = NULL;

		if (!json_is_string(v))
			text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		shp_error_detail(err, key, "%s",
				 json_is_string(v) ? json_string_value(v)
				 : text            ? text
						   : "");
		room--;
	}
}

int shp_httpc_response_error(const struct shp_httpc_response *resp, json_t **ret_body,
			     struct shp_error *err)
{
	_cleanup_(json_decrefp) json_t *body = NULL;
	const json_t *e = NULL;
	const char *code = NULL, *msg = NULL, *rid = NULL;
	enum shp_errc errc;
	int r;

	if (resp->body.len > 0)
		body = shp_json_parse(resp->body.buf, resp->body.len, SHP_API_JSON_DEPTH_MAX, NULL);
	if (body)
		e = json_object_get(body, SHP_API_FIELD_ERROR);
	if (json_is_object(e)) {
		code = shp_json_str(e, SHP_API_FIELD_CODE);
		msg = shp_json_str(e, SHP_API_FIELD_MESSAGE);
		rid = shp_json_str(e, SHP_API_FIELD_REQUEST_ID);
	}
	if (!code)
		e = NULL; /* not a daemon error body: a proxy, or a server that is not shepherdd */
	errc = shp_errc_from_api(code, resp->status);
	if (errc == SHP_OK)
		errc = SHP_E_PROTO; /* 1xx/3xx: nothing the CLI can follow */
	if (e && msg && msg[0])
		r = shp_error_set(err, errc, "%s", msg);
	else
		r = shp_error_set(err, errc, "HTTP %ld from server", resp->status);
	if (!err)
		return r;
	err->http_status = resp->status;
	if (code)
		shp_error_api_code(err, code);
	if (!rid && resp->request_id[0])
		rid = resp->request_id;
	if (e)
		add_details(json_object_get(e, SHP_API_FIELD_DETAILS),
			    SHP_ERROR_DETAILS_MAX - (rid ? 1 : 0), err);
	if (rid)
		shp_error_detail(err, SHP_API_FIELD_REQUEST_ID, "%s", rid);
	if (ret_body && e)
		*ret_body = TAKE_PTR(body);
	return r;
}

int shp_httpc_json(struct shp_httpc *c, const char *method, const char *path, const json_t *body,
		   const char *idempotency_key, json_t **ret, struct shp_error *err)
{
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	_cleanup_free_ char *text = NULL;
	json_t *answer = NULL;
	int r;

	shp_httpc_response_init(&resp);
	if (body) {
		text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
		if (!text)
			return shp_error_set(err, SHP_E_NOMEM, "cannot serialise the request body");
	}
	r = shp_httpc_request(c, method, path, text, text ? strlen(text) : 0, idempotency_key,
			      &resp, err);
	if (r < 0)
		return r;
	if (resp.status < 200 || resp.status > 299)
		return shp_httpc_response_error(&resp, NULL, err);
	if (resp.body.len > 0) {
		struct shp_error perr = SHP_ERROR_INIT;

		answer =
			shp_json_parse(resp.body.buf, resp.body.len, SHP_API_JSON_DEPTH_MAX, &perr);
		if (!answer)
			return shp_error_set(err, SHP_E_PROTO, "invalid JSON from shepherdd: %s",
					     perr.msg);
	}
	*ret = answer;
	return 0;
}

int shp_httpc_escape(const char *s, struct shp_buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t start = out->len;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char enc[3] = {'%', hex[*p >> 4], hex[*p & 0xf]};
		int r;

		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
			     *p == '~';

		if (plain)
			r = shp_buf_addch(out, (char)*p);
		else
			r = shp_buf_addn(out, enc, sizeof(enc));
		if (r < 0) {
			shp_buf_truncate(out, start);
			return r;
		}
	}
	return 0;
}
