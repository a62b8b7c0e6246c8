/*
 * The Kubernetes API simulator as a child process for C tests: certificates from
 * make-certs.sh, posix_spawn with TLS and a random token, the port file, a kubeconfig, and a
 * libcurl client for the control API.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "buf.h"
#include "kubesim-proc.h"
#include "util.h"

extern char **environ;

static int run_wait(char *const argv[])
{
	pid_t pid;
	int st;

	if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0)
		return -1;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static char *slurp(const char *path, size_t *ret_len)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	struct shp_buf b = SHP_BUF_INIT(1 << 20);
	char chunk[4096];
	size_t n;

	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (shp_buf_addn(&b, chunk, n) < 0) {
			shp_buf_release(&b);
			return NULL;
		}
	return shp_buf_detach(&b, ret_len);
}

static int make_kubeconfig(struct kubesim_proc *p)
{
	size_t len = 0;
	_cleanup_free_ char *pem = slurp(p->ca_pem, &len);
	_cleanup_free_ unsigned char *b64 = NULL;
	struct shp_buf y = SHP_BUF_INIT(1 << 20);

	if (!pem || !(b64 = malloc(4 * (len / 3 + 1) + 1)))
		return -1;
	(void)EVP_EncodeBlock(b64, (const unsigned char *)pem, (int)len);
	if (shp_buf_addf(&y,
			 "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n"
			 "    server: %s\n    certificate-authority-data: %s\nusers:\n- name: sim\n"
			 "  user:\n    token: %s\ncontexts:\n- name: sim\n  context:\n"
			 "    cluster: sim\n    user: sim\ncurrent-context: sim\n",
			 p->url, b64, p->token) < 0)
		return -1;
	p->kubeconfig = shp_buf_detach(&y, NULL);
	return p->kubeconfig ? 0 : -1;
}

/* The argument vector: ours, then the caller's. */
static char **build_argv(struct kubesim_proc *p, const char *bin, const char *const *extra,
			 char *portfile, char *cert, char *key)
{
	static const int fixed = 13;
	size_t n = 0;
	char **argv;

	while (extra && extra[n])
		n++;
	argv = calloc((size_t)fixed + n + 1, sizeof(*argv));
	if (!argv)
		return NULL;
	argv[0] = (char *)bin;
	argv[1] = "--listen";
	argv[2] = "127.0.0.1:0";
	argv[3] = "--port-file";
	argv[4] = portfile;
	argv[5] = "--tls-cert";
	argv[6] = cert;
	argv[7] = "--tls-key";
	argv[8] = key;
	argv[9] = "--token";
	argv[10] = p->token;
	argv[11] = "--quiet";
	argv[12] = "--exit-with-parent"; /* no orphan when a test dies without kubesim_stop */
	for (size_t i = 0; i < n; i++)
		argv[fixed + i] = (char *)extra[i];
	return argv;
}

/* Wait for the port file (10 s); the child must stay alive meanwhile. */
static int wait_port(struct kubesim_proc *p, const char *portfile)
{
	struct timespec ts = {0, 50 * 1000 * 1000};

	for (int i = 0; i < 200; i++) {
		_cleanup_free_ char *s = slurp(portfile, NULL);
		long port = s ? strtol(s, NULL, 10) : 0;
		int st;
		if (port > 0 && port < 65536) {
			(void)snprintf(p->url, sizeof(p->url), "https://127.0.0.1:%ld", port);
			return 0;
		}
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			p->pid = 0;
			return -1;
		}
		(void)nanosleep(&ts, NULL);
	}
	return -1;
}

static int start_child(struct kubesim_proc *p, const char *const *extra)
{
	const char *bin = getenv("KUBESIM"), *bdir = getenv("top_builddir");
	char binbuf[512], portfile[300], cert[300], key[300];
	_cleanup_free_ char **argv = NULL;

	if (!bin && bdir) {
		(void)snprintf(binbuf, sizeof(binbuf), "%s/tests/kubesim/kubesim", bdir);
		bin = binbuf;
	}
	if (!bin) {
		fprintf(stderr, "kubesim_start: neither KUBESIM nor top_builddir is set\n");
		return -1;
	}
	(void)snprintf(portfile, sizeof(portfile), "%s/port", p->dir);
	(void)snprintf(cert, sizeof(cert), "%s/server.crt", p->dir);
	(void)snprintf(key, sizeof(key), "%s/server.key", p->dir);
	if (!(argv = build_argv(p, bin, extra, portfile, cert, key)) ||
	    posix_spawn(&p->pid, bin, NULL, NULL, argv, environ) != 0) {
		fprintf(stderr, "kubesim_start: cannot run '%s'\n", bin);
		p->pid = 0;
		return -1;
	}
	if (wait_port(p, portfile) < 0) {
		fprintf(stderr, "kubesim_start: '%s' did not start listening\n", bin);
		return -1;
	}
	return 0;
}

int kubesim_start(struct kubesim_proc *ret, const char *const *extra_args)
{
	const char *tmp = getenv("TMPDIR"), *src = getenv("top_srcdir");
	char script[512];
	char *mk[] = {"sh", script, ret->dir, NULL};

	*ret = (struct kubesim_proc){0};
	(void)snprintf(ret->dir, sizeof(ret->dir), "%s/kubesim.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	(void)snprintf(script, sizeof(script), "%s/tests/helpers/make-certs.sh",
		       src ? src : SHP_ABS_SRCDIR);
	if (!mkdtemp(ret->dir)) {
		ret->dir[0] = '\0';
		perror("kubesim_start: mkdtemp");
		return -1;
	}
	(void)snprintf(ret->ca_pem, sizeof(ret->ca_pem), "%s/ca.crt", ret->dir);
	if (run_wait(mk) < 0 || shp_random_hex(16, ret->token, NULL) < 0) {
		fprintf(stderr, "kubesim_start: cannot make certificates with '%s'\n", script);
		kubesim_stop(ret);
		return -1;
	}
	if (start_child(ret, extra_args) < 0 || make_kubeconfig(ret) < 0) {
		kubesim_stop(ret);
		return -1;
	}
	return 0;
}

static size_t collect(char *data, size_t size, size_t n, void *cls)
{
	return shp_buf_addn(cls, data, size * n) < 0 ? 0 : size * n;
}

int kubesim_ctl_body(struct kubesim_proc *p, const char *path, const char *json, char **ret_body)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	struct shp_buf body = SHP_BUF_INIT(16 << 20);
	char url[600], auth[80];
	bool stats;
	long code = -1;

	if (!c)
		return -1;
	(void)snprintf(url, sizeof(url), "%s%s%s", p->url, path[0] == '/' ? "" : "/_sim/", path);
	stats = strcmp(url + strlen(p->url), "/_sim/stats") == 0;
	(void)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", p->token);
	h = curl_slist_append(h, auth);
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CAINFO, p->ca_pem);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	if (!stats)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json ? json : "{}");
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (ret_body)
		*ret_body = shp_buf_detach(&body, NULL);
	shp_buf_release(&body);
	return (int)code;
}

int kubesim_ctl(struct kubesim_proc *p, const char *path, const char *json)
{
	return kubesim_ctl_body(p, path, json, NULL);
}

void kubesim_stop(struct kubesim_proc *p)
{
	if (!p)
		return;
	if (p->pid > 0) {
		int st;
		(void)kill(p->pid, SIGTERM);
		while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
			;
		p->pid = 0;
	}
	if (p->dir[0]) {
		char *rm[] = {"rm", "-rf", p->dir, NULL};
		(void)run_wait(rm);
		p->dir[0] = '\0';
	}
	free(p->kubeconfig);
	p->kubeconfig = NULL;
}
