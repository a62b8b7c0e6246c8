/*
 * The CLI test harness (see cli-harness.h): the scripted server, a separate process that
 * answers each connection with the next scripted answer, and running the command in a child.
 * The test process itself stays single-threaded, for LeakSanitizer.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cli-harness.h"

#define BE_SHEPHERD "SHP_TEST_BE_SHEPHERD"

/*
 * harness_run_argv() executes this very binary with BE_SHEPHERD set: it is then the shepherd
 * command, before Criterion's main starts (glibc passes argc and argv to constructors).
 */
__attribute__((constructor)) static void be_shepherd(int argc, char **argv)
{
	if (!getenv(BE_SHEPHERD))
		return;
	unsetenv(BE_SHEPHERD);
	exit(shepherd_main(argc, argv));
}

/* The script and the requests, in memory shared with the server process. */
struct exchange {
	char answer[HARNESS_TEXT_MAX];
	char request[HARNESS_TEXT_MAX];
};

struct shared {
	int n_script;
	int n_requests;
	struct exchange x[HARNESS_MAX_EXCHANGES];
};

char harness_dir[64];
char harness_sock_path[128];

static struct shared *sh;
static pid_t server = -1;

void harness_expect_raw(const char *fmt, ...)
{
	va_list ap;

	cr_assert_lt(sh->n_script, HARNESS_MAX_EXCHANGES);
	va_start(ap, fmt);
	(void)vsnprintf(sh->x[sh->n_script++].answer, HARNESS_TEXT_MAX, fmt, ap);
	va_end(ap);
}

int harness_n_script(void)
{
	return sh->n_script;
}

int harness_n_requests(void)
{
	return sh->n_requests;
}

const char *harness_request(int i)
{
	cr_assert_lt(i, sh->n_requests, "only %d requests were made", sh->n_requests);
	return sh->x[i].request;
}

/* Read one request into out: headers, then Content-Length bytes of body. */
static void read_request(int fd, char *out, size_t size)
{
	size_t len = 0, want = 0;
	char *end = NULL, *cl;
	ssize_t n;

	out[0] = '\0';
	while (len + 1 < size) {
		n = read(fd, out + len, size - 1 - len);
		if (n <= 0)
			return;
		len += (size_t)n;
		out[len] = '\0';
		if (!end && (end = strstr(out, "\r\n\r\n"))) {
			cl = strcasestr(out, "\r\nContent-Length:");
			if (cl && cl < end)
				want = strtoul(cl + 17, NULL, 10);
		}
		if (end && len >= (size_t)(end - out) + 4 + want)
			return;
	}
}

static void serve(int listen_fd)
{
	static const char none[] = "HTTP/1.1 500 X\r\nContent-Type: application/json\r\n"
				   "Content-Length: 54\r\nConnection: close\r\n\r\n"
				   "{\"error\":{\"code\":\"INTERNAL\",\"message\":\"no script\"}}";
	static char scratch[HARNESS_TEXT_MAX];
	int fd;

	while ((fd = accept(listen_fd, NULL, NULL)) >= 0) {
		int i = sh->n_requests;
		const char *answer = i < sh->n_script ? sh->x[i].answer : none;

		read_request(fd, i < HARNESS_MAX_EXCHANGES ? sh->x[i].request : scratch,
			     HARNESS_TEXT_MAX);
		sh->n_requests = i + 1;
		(void)!send(fd, answer, strlen(answer), MSG_NOSIGNAL);
		close(fd);
	}
}

void harness_setup(const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(sh, MAP_FAILED);
	(void)snprintf(harness_dir, sizeof(harness_dir), "/tmp/%s.XXXXXX", name);
	cr_assert_not_null(mkdtemp(harness_dir));
	(void)snprintf(harness_sock_path, sizeof(harness_sock_path), "%s/shepherdd.sock",
		       harness_dir);
	(void)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", harness_sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	cr_assert(listen(fd, 8) == 0);
	server = fork();
	cr_assert_geq(server, 0);
	if (server == 0) {
		serve(fd);
		_exit(0);
	}
	close(fd);
	/* A clean environment: no config file, no SHEPHERD_* settings, no colour questions. */
	setenv("HOME", harness_dir, 1);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("XDG_STATE_HOME");
	unsetenv("SHEPHERD_SOCKET");
	unsetenv("SHEPHERD_SERVER");
	unsetenv("SHEPHERD_TOKEN");
	unsetenv("SHEPHERD_OUTPUT");
	unsetenv("SHEPHERD_CONFIG");
}

void harness_teardown(void)
{
	char cmd[128];

	if (server > 0) {
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
	}
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", harness_dir);
	(void)system(cmd);
	munmap(sh, sizeof(*sh));
}

/* The text of the file at path (at most 1 MiB), owned by the caller. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = calloc(1, 1 << 20);
	size_t n;

	cr_assert_not_null(f);
	n = fread(text, 1, (1 << 20) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

struct harness_run harness_run_argv(char **argv, const char *in_path, const char *out_path)
{
	char outp[160], errp[160];
	struct harness_run r = {0};
	int st;
	pid_t pid;

	(void)snprintf(outp, sizeof(outp), "%s/out", harness_dir);
	(void)snprintf(errp, sizeof(errp), "%s/err", harness_dir);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int o = open(out_path ? out_path : outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (in_path)
			dup2(open(in_path, O_RDONLY), 0);
		dup2(o, 1);
		dup2(e, 2);
		setenv(BE_SHEPHERD, "1", 1);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "shepherd died: status %d", st);
	r.status = WEXITSTATUS(st);
	r.out = out_path ? strdup("") : slurp(outp);
	r.err = slurp(errp);
	return r;
}

struct harness_run harness_shepherd(const char *in_path, const char *first, ...)
{
	char *argv[32] = {"shepherd", "--socket", harness_sock_path};
	int argc = 3;
	va_list ap;

	va_start(ap, first);
	for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	return harness_run_argv(argv, in_path, NULL);
}

void harness_run_free(struct harness_run *r)
{
	free(r->out);
	free(r->err);
}
