/*
 * kubesim's entry point: the command line, the initial cluster, the listener, the port file
 * (written atomically once listening), the controller thread that advances the fake KubeVirt
 * state every --tick-ms, and a clean exit on SIGTERM/SIGINT.
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kubesim.h"
#include "util.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: kubesim --listen HOST:PORT [--port-file FILE] [--tls-cert PEM "
		   "--tls-key PEM]\n"
		   "               [--token TOKEN] [--tick-ms MS] [--kubevirt-version V]\n"
		   "               [--feature-gates A,B] [--nodes N] [--quiet] "
		   "[--exit-with-parent]\n");
}

static int parse_num(const char *s, long long min, long long max, int *ret)
{
	long long v;

	if (shp_parse_int(s, min, max, &v, NULL) < 0)
		return -1;
	*ret = (int)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct ks_config *c)
{
	static const struct option opts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"port-file", required_argument, NULL, 'p'},
		{"tls-cert", required_argument, NULL, 'c'},
		{"tls-key", required_argument, NULL, 'k'},
		{"token", required_argument, NULL, 't'},
		{"tick-ms", required_argument, NULL, 'i'},
		{"kubevirt-version", required_argument, NULL, 'v'},
		{"feature-gates", required_argument, NULL, 'g'},
		{"nodes", required_argument, NULL, 'n'},
		{"quiet", no_argument, NULL, 'q'},
		{"exit-with-parent", no_argument, NULL, 'e'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int o;

	*c = (struct ks_config){.listen = "127.0.0.1:0",
				.kubevirt_version = "v1.5.0",
				.feature_gates = "",
				.tick_ms = 100,
				.nodes = 3};
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'l': c->listen = optarg; break;
		case 'p': c->port_file = optarg; break;
		case 'c': c->tls_cert = optarg; break;
		case 'k': c->tls_key = optarg; break;
		case 't': c->token = optarg; break;
		case 'v': c->kubevirt_version = optarg; break;
		case 'g': c->feature_gates = optarg; break;
		case 'q': c->quiet = true; break;
		case 'e':
			c->exit_with_parent = true;
			c->parent = (long)getppid();
			break;
		case 'i':
			if (parse_num(optarg, 1, 60000, &c->tick_ms) < 0)
				return -1;
			break;
		case 'n':
			if (parse_num(optarg, 1, 1000, &c->nodes) < 0)
				return -1;
			break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (optind != argc || !c->tls_cert != !c->tls_key)
		return -1;
	return 0;
}

static int write_port_file(const char *path, int port)
{
	char tmp[4096];
	FILE *f;

	(void)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	f = fopen(tmp, "we");
	if (!f)
		return -1;
	fprintf(f, "%d\n", port);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		(void)unlink(tmp);
		return -1;
	}
	return 0;
}

static void *controller(void *arg)
{
	struct ks *ks = arg;
	struct timespec ts = {ks->cfg.tick_ms / 1000, (long)(ks->cfg.tick_ms % 1000) * 1000000L};

	while (!atomic_load(&ks->stop)) {
		(void)nanosleep(&ts, NULL);
		if (!atomic_load(&ks->stop))
			ks_controller_tick(ks);
		if (ks->cfg.exit_with_parent && (long)getppid() != ks->cfg.parent)
			(void)kill(getpid(), SIGTERM); /* main's sigwait takes it from here */
	}
	return NULL;
}

static void shut_down(struct ks *ks)
{
	pthread_mutex_lock(&ks->mu);
	atomic_store(&ks->stop, true);
	pthread_cond_broadcast(&ks->cond);
	pthread_mutex_unlock(&ks->mu);
}

int main(int argc, char **argv)
{
	static struct ks ks;
	pthread_condattr_t ca;
	pthread_t tick;
	sigset_t set;
	void *daemon = NULL;
	int port = 0, sig = 0;

	if (parse_args(argc, argv, &ks.cfg) < 0) {
		usage(stderr);
		return 2;
	}
	json_object_seed(0);
	pthread_mutex_init(&ks.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ks.cond, &ca);
	ks_store_init(&ks);
	pthread_mutex_lock(&ks.mu);
	ks_seed_cluster(&ks);
	pthread_mutex_unlock(&ks.mu);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (ks_http_start(&ks, &daemon, &port) < 0)
		return 1;
	if (ks.cfg.port_file && write_port_file(ks.cfg.port_file, port) < 0) {
		fprintf(stderr, "kubesim: cannot write the port file '%s'\n", ks.cfg.port_file);
		ks_http_stop(daemon);
		return 1;
	}
	if (!ks.cfg.quiet)
		fprintf(stderr, "kubesim: listening on port %d (%s)\n", port,
			ks.cfg.tls_cert ? "https" : "http");
	pthread_create(&tick, NULL, controller, &ks);
	sigdelset(&set, SIGPIPE);
	do {
		(void)sigwait(&set, &sig);
	} while (sig != SIGTERM && sig != SIGINT);
	shut_down(&ks);
	pthread_join(tick, NULL);
	ks_http_stop(daemon);
	pthread_mutex_lock(&ks.mu);
	ks_store_release(&ks);
	pthread_mutex_unlock(&ks.mu);
	return 0;
}
