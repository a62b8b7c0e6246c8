/*
 * Ctrl-C inside `shepherd shell`: while the shell runs on a terminal, SIGINT only sets a flag.
 * A line being typed is dropped; a running command sees the flag in every wait it makes (the
 * daemon's answer through httpc, its own naps between polls, a prompt) and ends with
 * SHP_E_INTERRUPTED (exit status 130), and the shell goes on. Outside the shell SIGINT keeps
 * its default action.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>

#include "cli.h"
#include "error.h"
#include "i18n.h"

static volatile sig_atomic_t flag;
static bool armed;
static struct sigaction saved;

static void on_sigint(int sig)
{
	(void)sig;
	flag = 1;
}

void cli_interrupt_arm(void)
{
	struct sigaction sa = {.sa_handler = on_sigint}; /* no SA_RESTART: waits end at once */

	if (armed)
		return;
	sigemptyset(&sa.sa_mask);
	flag = 0;
	if (sigaction(SIGINT, &sa, &saved) == 0)
		armed = true;
}

void cli_interrupt_disarm(void)
{
	if (armed)
		(void)sigaction(SIGINT, &saved, NULL);
	armed = false;
	flag = 0;
}

bool cli_interrupt_is_armed(void)
{
	return armed;
}

bool cli_interrupted(void)
{
	return flag != 0;
}

bool cli_interrupt_take(void)
{
	bool was = flag != 0;

	flag = 0;
	return was;
}

const volatile sig_atomic_t *cli_interrupt_flag(void)
{
	return &flag;
}

int cli_interrupt_error(struct cli_ctx *ctx)
{
	return shp_error_set(&ctx->err, SHP_E_INTERRUPTED, _("interrupted"));
}

bool cli_nap_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (!flag && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	return !flag;
}
