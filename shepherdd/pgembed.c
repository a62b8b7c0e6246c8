/*
 * The embedded PostgreSQL: initdb on first start, the settings include, recovery from a stale
 * postmaster.pid or a server of ours left running, the server spawned through setpriv (parent
 * death signal; the run_as user under root), readiness polling, and the shutdown.
 * The parent-death signal follows the thread that spawned the server: start it from the main
 * thread. Under root the state directory gets o+x (search only) so run_as can reach pgdata.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <locale.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "pgembed.h"
#include "util.h"

extern char **environ;

#define DEFAULT_RUN_AS "shepherd"
#define DEFAULT_START_TIMEOUT_MS 60000
#define INITDB_TIMEOUT_MS 300000
#define LEFTOVER_STOP_TIMEOUT_MS 15000
#define POLL_MS 50
#define PORT "5432"
#define DBNAME "shepherd"
#define LOG_TAIL_BYTES 2048
#define LOG_TAIL_MSG 240
#define CONF_NAME "shepherd.conf"
#define CONF_INCLUDE "include = '" CONF_NAME "'"
#define CONF_MAX (1024 * 1024)

struct shd_pgembed {
	char *pgdata;
	char *pgsock;
	char *log_path;
	char *conninfo;       /* dbname=shepherd */
	char *admin_conninfo; /* dbname=postgres, for readiness and CREATE DATABASE */
	pid_t pid;
	bool reaped;
};

/* Who the server runs as: ourselves, or (under root) the run_as system user. */
struct server_user {
	bool switch_user;
	uid_t uid;
	gid_t gid;
};

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static char *xjoin(const char *a, const char *b)
{
	char *s;

	return asprintf(&s, "%s/%s", a, b) < 0 ? NULL : s;
}

/* The last lines of the log, on one line, at most LOG_TAIL_MSG bytes, into out. */
static void log_tail(const char *path, char *out, size_t size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	char buf[LOG_TAIL_BYTES + 1];
	struct stat st;
	off_t from;
	ssize_t n;
	char *p;
	size_t len;

	(void)snprintf(out, size, "(log unreadable)");
	if (fd < 0 || fstat(fd, &st) < 0)
		return;
	from = st.st_size > LOG_TAIL_BYTES ? st.st_size - LOG_TAIL_BYTES : 0;
	n = pread(fd, buf, LOG_TAIL_BYTES, from);
	if (n <= 0) {
		(void)snprintf(out, size, "(log empty)");
		return;
	}
	buf[n] = '\0';
	for (p = buf; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	while (n > 0 && buf[n - 1] == ' ')
		buf[--n] = '\0';
	len = strlen(buf);
	p = len > LOG_TAIL_MSG ? buf + len - LOG_TAIL_MSG : buf;
	(void)snprintf(out, size, "%s%s", p == buf ? "" : "...", p);
}

static int fail_with_log(struct shp_error *err, enum shp_errc code, const char *log_path,
			 const char *fmt, ...) SHP_PRINTF(4, 5);
static int fail_with_log(struct shp_error *err, enum shp_errc code, const char *log_path,
			 const char *fmt, ...)
{
	char what[200];
	char tail[LOG_TAIL_MSG + 8];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	log_tail(log_path, tail, sizeof(tail));
	return shp_error_set(err, code, "%s (log '%s'): %s", what, log_path, tail);
}

/*
 * Spawn argv with stdin from /dev/null, stdout and stderr to out_fd, in "/" (initdb and
 * postgres resolve their own path through the cwd, which run_as may not be able to read),
 * default signal dispositions, an empty signal mask and a process group of its own.
 */
static int spawn(char *const argv[], int out_fd, pid_t *ret_pid, struct shp_error *err)
{
	static const int reset[] = {SIGPIPE, SIGINT,  SIGTERM, SIGHUP,  SIGQUIT,
				    SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM, SIGXFSZ};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, def;
	pid_t pid;
	int r;

	(void)sigemptyset(&none);
	(void)sigemptyset(&def);
	for (size_t i = 0; i < SHP_ARRAY_SIZE(reset); i++)
		(void)sigaddset(&def, reset[i]);
	if (posix_spawn_file_actions_init(&fa) != 0)
		return shp_error_set(err, SHP_E_NOMEM, "preparing to run '%s'", argv[0]);
	if (posix_spawnattr_init(&attr) != 0) {
		(void)posix_spawn_file_actions_destroy(&fa);
		return shp_error_set(err, SHP_E_NOMEM, "preparing to run '%s'", argv[0]);
	}
	r = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (!r)
		r = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	if (!r)
		r = posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
	if (!r)
		r = posix_spawn_file_actions_addchdir_np(&fa, "/");
	if (!r)
		r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
							    POSIX_SPAWN_SETPGROUP);
	if (!r)
		r = posix_spawnattr_setsigmask(&attr, &none);
	if (!r)
		r = posix_spawnattr_setsigdefault(&attr, &def);
	if (!r)
		r = posix_spawnattr_setpgroup(&attr, 0);
	if (!r)
		r = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
	(void)posix_spawnattr_destroy(&attr);
	(void)posix_spawn_file_actions_destroy(&fa);
	if (r)
		return shp_error_errno(err, r, "running '%s'", argv[0]);
	*ret_pid = pid;
	return 0;
}

/* Wait up to timeout_ms for a child; 0 with *ret_status, or -SHP_E_TIMEOUT (still running). */
static int wait_child(pid_t pid, int timeout_ms, int *ret_status)
{
	uint64_t deadline = shp_now_monotonic_ns() + (uint64_t)timeout_ms * 1000000u;
	int status = 0;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid || (r < 0 && errno == ECHILD)) {
			*ret_status = r == pid ? status : 0;
			return 0;
		}
		if (shp_now_monotonic_ns() >= deadline)
			return -SHP_E_TIMEOUT;
		sleep_ms(10);
	}
}

static void describe_status(int status, char *buf, size_t size)
{
	if (WIFEXITED(status))
		(void)snprintf(buf, size, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		(void)snprintf(buf, size, "killed by signal %d", WTERMSIG(status));
	else
		(void)snprintf(buf, size, "status %d", status);
}

/* Run argv (what names it) to completion within timeout_ms; 0 only on exit status 0. */
static int run(char *const argv[], const char *what, int out_fd, int timeout_ms,
	       const char *log_path, struct shp_error *err)
{
	char how[64];
	pid_t pid;
	int status;
	int r;

	r = spawn(argv, out_fd, &pid, err);
	if (r < 0)
		return r;
	if (wait_child(pid, timeout_ms, &status) < 0) {
		(void)kill(pid, SIGKILL);
		(void)wait_child(pid, 5000, &status);
		return fail_with_log(err, SHP_E_IO, log_path, "'%s' did not finish within %d ms",
				     what, timeout_ms);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	describe_status(status, how, sizeof(how));
	return fail_with_log(err, SHP_E_IO, log_path, "'%s' failed (%s)", what, how);
}

static int lookup_user(const char *name, bool *ret_found, uid_t *ret_uid, gid_t *ret_gid,
		       struct shp_error *err)
{
	long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
	size_t size = hint > 0 ? (size_t)hint : 16384;
	_cleanup_free_ char *buf = malloc(size);
	struct passwd pw, *found = NULL;
	int r;

	if (!buf)
		return shp_error_set(err, SHP_E_NOMEM, "looking up user '%s'", name);
	r = getpwnam_r(name, &pw, buf, size, &found);
	if (r != 0 && r != ENOENT && r != ESRCH)
		return shp_error_errno(err, r, "looking up user '%s'", name);
	*ret_found = found != NULL;
	if (found) {
		*ret_uid = pw.pw_uid;
		*ret_gid = pw.pw_gid;
	}
	return 0;
}

static bool user_name_is_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

/* Under root: the run_as system user, created with useradd when missing. */
static int resolve_user(const char *name, int log_fd, const char *log_path, struct server_user *ret,
			struct shp_error *err)
{
	char *argv[] = {"useradd", "--system",          "--no-create-home",
			"--shell", "/usr/sbin/nologin", (char *)name,
			NULL};
	bool found = false;
	uid_t uid = 0;
	gid_t gid = 0;
	int r;

	*ret = (struct server_user){.switch_user = false, .uid = getuid(), .gid = getgid()};
	if (geteuid() != 0)
		return 0;
	if (!user_name_is_valid(name))
		return shp_error_set(err, SHP_E_INVAL,
				     "invalid user name '%s' for the database server", name);
	/* useradd fails while another one holds the passwd lock: try again for a few seconds. */
	for (int i = 0; i < 50; i++) {
		r = lookup_user(name, &found, &uid, &gid, err);
		if (r < 0 || found)
			break;
		r = run(argv, "useradd", log_fd, 30000, log_path, err);
		if (r < 0 && i == 49)
			return shp_error_prefix(err, "creating the system user '%s'", name);
		if (r < 0)
			sleep_ms(100);
	}
	if (r < 0)
		return r;
	if (!found)
		return shp_error_set(err, SHP_E_IO, "system user '%s' missing after useradd", name);
	if (uid == 0)
		return shp_error_set(err, SHP_E_INVAL,
				     "user '%s' is root; PostgreSQL refuses to run as root", name);
	*ret = (struct server_user){.switch_user = true, .uid = uid, .gid = gid};
	return 0;
}

/* mkdir (if missing) a directory for the server: owned by it, mode 0700. */
static int make_server_dir(const char *path, const struct server_user *u, struct shp_error *err)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return shp_error_errno(err, errno, "creating '%s'", path);
	if (u->switch_user && chown(path, u->uid, u->gid) < 0)
		return shp_error_errno(err, errno, "changing the owner of '%s'", path);
	if (chmod(path, 0700) < 0)
		return shp_error_errno(err, errno, "changing the mode of '%s'", path);
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static int remove_tree(const char *path, struct shp_error *err)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : shp_error_errno(err, errno, "reading '%s'", path);
	if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
		return shp_error_errno(err, errno, "removing '%s'", path);
	return 0;
}

static bool locale_exists(const char *name)
{
	locale_t l = newlocale(LC_ALL_MASK, name, (locale_t)0);

	if (!l)
		return false;
	freelocale(l);
	return true;
}

#define ID_ARG_MAX 32

/*
 * argv prefix "setpriv [--reuid=U --regid=G --init-groups] --pdeathsig SIG --". setpriv sets the
 * parent-death signal after switching credentials (a credential change would clear it).
 */
static int setpriv_argv(char **argv, char uidbuf[ID_ARG_MAX], char gidbuf[ID_ARG_MAX],
			const struct server_user *u, const char *sig)
{
	int n = 0;

	argv[n++] = "setpriv";
	if (u->switch_user) {
		(void)snprintf(uidbuf, ID_ARG_MAX, "--reuid=%lu", (unsigned long)u->uid);
		(void)snprintf(gidbuf, ID_ARG_MAX, "--regid=%lu", (unsigned long)u->gid);
		argv[n++] = uidbuf;
		argv[n++] = gidbuf;
		argv[n++] = "--init-groups";
	}
	argv[n++] = "--pdeathsig";
	argv[n++] = (char *)sig;
	argv[n++] = "--";
	return n;
}

/* Make sure postgresql.conf in datadir ends by including our settings file. */
static int ensure_include(const char *datadir, struct shp_error *err)
{
	static const char line[] =
		"\n# shepherdd's settings, rewritten on every start\n" CONF_INCLUDE "\n";
	_cleanup_free_ char *path = xjoin(datadir, "postgresql.conf");
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	ssize_t n;

	if (!path)
		return shp_error_set(err, SHP_E_NOMEM, "reading postgresql.conf");
	fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0)
		return shp_error_errno(err, errno, "opening '%s'", path);
	if (st.st_size > CONF_MAX)
		return shp_error_set(err, SHP_E_LIMIT, "'%s' is larger than %d bytes", path,
				     CONF_MAX);
	text = malloc((size_t)st.st_size + 1);
	if (!text)
		return shp_error_set(err, SHP_E_NOMEM, "reading '%s'", path);
	n = pread(fd, text, (size_t)st.st_size, 0);
	if (n < 0)
		return shp_error_errno(err, errno, "reading '%s'", path);
	text[n] = '\0';
	if (strstr(text, "\n" CONF_INCLUDE "\n"))
		return 0;
	if (write(fd, line, sizeof(line) - 1) != (ssize_t)(sizeof(line) - 1))
		return shp_error_errno(err, errno, "writing '%s'", path);
	return 0;
}

/* Write <pgdata>/shepherd.conf (atomically), owned by the server user. */
static int write_conf(const struct shd_pgembed *pg, const struct server_user *u,
		      struct shp_error *err)
{
	_cleanup_free_ char *path = xjoin(pg->pgdata, CONF_NAME);
	_cleanup_free_ char *tmp = xjoin(pg->pgdata, CONF_NAME ".tmp");
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int fd = -1;
	int len;

	if (!path || !tmp)
		return shp_error_set(err, SHP_E_NOMEM, "writing " CONF_NAME);
	len = asprintf(&text,
		       "# Written by shepherdd on every start of its embedded server.\n"
		       "listen_addresses = ''\n"
		       "port = " PORT "\n"
		       "unix_socket_directories = '%s'\n"
		       "unix_socket_permissions = 0700\n"
		       "max_connections = 100\n"
		       "shared_buffers = 64MB\n"
		       "log_destination = 'stderr'\n"
		       "logging_collector = off\n"
		       "log_line_prefix = '%%m [%%p] '\n",
		       pg->pgsock);
	if (len < 0) {
		text = NULL;
		return shp_error_set(err, SHP_E_NOMEM, "writing " CONF_NAME);
	}
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return shp_error_errno(err, errno, "creating '%s'", tmp);
	if (u->switch_user && fchown(fd, u->uid, u->gid) < 0)
		return shp_error_errno(err, errno, "changing the owner of '%s'", tmp);
	if (write(fd, text, (size_t)len) != len || fsync(fd) < 0)
		return shp_error_errno(err, errno, "writing '%s'", tmp);
	if (rename(tmp, path) < 0)
		return shp_error_errno(err, errno, "renaming '%s'", tmp);
	return 0;
}

/*
 * First start: initdb into <pgdata>.initdb, add the include line, then rename it to pgdata, so
 * an interrupted initdb never leaves a half-made cluster where the server looks for one.
 */
static int init_cluster(const struct shd_pgembed *pg, const char *bindir,
			const struct server_user *u, int log_fd, struct shp_error *err)
{
	_cleanup_free_ char *version = xjoin(pg->pgdata, "PG_VERSION");
	_cleanup_free_ char *initdb = xjoin(bindir, "initdb");
	_cleanup_free_ char *tmp = NULL;
	char uidbuf[ID_ARG_MAX], gidbuf[ID_ARG_MAX];
	char *argv[24];
	struct stat st;
	int n, r;

	if (!version || !initdb || asprintf(&tmp, "%s.initdb", pg->pgdata) < 0)
		return shp_error_set(err, SHP_E_NOMEM, "preparing initdb");
	if (stat(version, &st) == 0)
		return 0;
	if (errno != ENOENT)
		return shp_error_errno(err, errno, "reading '%s'", version);
	/* Only an empty directory may stand where the new cluster goes. */
	if (rmdir(pg->pgdata) < 0 && errno != ENOENT) {
		if (errno == ENOTEMPTY || errno == EEXIST)
			return shp_error_set(err, SHP_E_IO,
					     "'%s' is not empty but holds no PostgreSQL cluster "
					     "(no PG_VERSION): move it away",
					     pg->pgdata);
		return shp_error_errno(err, errno, "replacing '%s'", pg->pgdata);
	}
	r = remove_tree(tmp, err);
	if (r < 0)
		return r;
	r = make_server_dir(tmp, u, err);
	if (r < 0)
		return r;
	n = setpriv_argv(argv, uidbuf, gidbuf, u, "KILL");
	argv[n++] = initdb;
	argv[n++] = "-D";
	argv[n++] = tmp;
	argv[n++] = "-U";
	argv[n++] = "shepherd";
	argv[n++] = "--auth=trust";
	argv[n++] = "-E";
	argv[n++] = "UTF8";
	argv[n++] = locale_exists("C.UTF-8") ? "--locale=C.UTF-8" : "--locale=C";
	argv[n] = NULL;
	r = run(argv, initdb, log_fd, INITDB_TIMEOUT_MS, pg->log_path, err);
	if (r < 0)
		return r;
	r = ensure_include(tmp, err);
	if (r < 0)
		return r;
	if (rename(tmp, pg->pgdata) < 0)
		return shp_error_errno(err, errno, "renaming '%s' to '%s'", tmp, pg->pgdata);
	return 0;
}

static ssize_t read_small(const char *path, char *buf, size_t size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* Exited, reaped, or a zombie: in any case no longer serving. */
static bool pid_is_gone(pid_t pid)
{
	char path[64], buf[512];
	const char *p;
	int status;

	if (waitpid(pid, &status, WNOHANG) == pid)
		return true;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	(void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return false;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

static bool same_file(const char *a, const struct stat *b)
{
	struct stat st;

	return stat(a, &st) == 0 && st.st_dev == b->st_dev && st.st_ino == b->st_ino;
}

/*
 * Whether pid is a postmaster serving pgdata: its argv[0] is postgres, and its working
 * directory (a postmaster lives in its data directory) or its -D argument is pgdata.
 */
static bool is_our_postmaster(pid_t pid, const char *pgdata)
{
	char path[64], cmd[4096];
	struct stat want;
	const char *base;
	ssize_t n;

	(void)snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	n = read_small(path, cmd, sizeof(cmd));
	if (n <= 0 || stat(pgdata, &want) < 0)
		return false;
	base = strrchr(cmd, '/') ? strrchr(cmd, '/') + 1 : cmd;
	if (strcmp(base, "postgres") && strcmp(base, "postmaster"))
		return false;
	(void)snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
	if (same_file(path, &want))
		return true;
	for (const char *a = cmd; a < cmd + n; a += strlen(a) + 1)
		if (!strcmp(a, "-D") && a + 3 < cmd + n && same_file(a + 3, &want))
			return true;
	return false;
}

static bool wait_gone(pid_t pid, int timeout_ms)
{
	uint64_t deadline = shp_now_monotonic_ns() + (uint64_t)timeout_ms * 1000000u;

	while (!pid_is_gone(pid)) {
		if (shp_now_monotonic_ns() >= deadline)
			return false;
		sleep_ms(POLL_MS);
	}
	return true;
}

/* Remove the socket and lock files of a server that no longer runs. */
static void remove_socket_files(const char *dir)
{
	static const char *const names[] = {".s.PGSQL." PORT, ".s.PGSQL." PORT ".lock"};

	for (size_t i = 0; i < SHP_ARRAY_SIZE(names); i++) {
		_cleanup_free_ char *p = xjoin(dir, names[i]);

		if (p)
			(void)unlink(p);
	}
}

/*
 * Before our start: a postmaster.pid whose process is dead or is not a server for this data
 * directory is stale: remove it. A live server for this data directory (left behind by a
 * daemon killed before its parent-death signal fired) is shut down.
 */
static int recover_stale(const struct shd_pgembed *pg, struct shp_error *err)
{
	_cleanup_free_ char *pidfile = xjoin(pg->pgdata, "postmaster.pid");
	char buf[128];
	long pid;

	if (!pidfile)
		return shp_error_set(err, SHP_E_NOMEM, "checking postmaster.pid");
	if (read_small(pidfile, buf, sizeof(buf)) < 0) {
		if (errno != ENOENT)
			return shp_error_errno(err, errno, "reading '%s'", pidfile);
		remove_socket_files(pg->pgsock);
		return 0;
	}
	pid = strtol(buf, NULL, 10);
	if (pid > 0 && pid <= INT_MAX && pid != getpid() && !pid_is_gone((pid_t)pid) &&
	    is_our_postmaster((pid_t)pid, pg->pgdata)) {
		(void)kill((pid_t)pid, SIGINT);
		if (!wait_gone((pid_t)pid, LEFTOVER_STOP_TIMEOUT_MS)) {
			(void)kill((pid_t)pid, SIGKILL);
			if (!wait_gone((pid_t)pid, 5000))
				return shp_error_set(
					err, SHP_E_IO,
					"a database server (pid %ld) for '%s' does not stop", pid,
					pg->pgdata);
		}
	}
	if (unlink(pidfile) < 0 && errno != ENOENT)
		return shp_error_errno(err, errno, "removing the stale '%s'", pidfile);
	remove_socket_files(pg->pgsock);
	return 0;
}

static int spawn_server(struct shd_pgembed *pg, const char *bindir, const struct server_user *u,
			int log_fd, struct shp_error *err)
{
	_cleanup_free_ char *postgres = xjoin(bindir, "postgres");
	char uidbuf[ID_ARG_MAX], gidbuf[ID_ARG_MAX];
	char *argv[16];
	int n;

	if (!postgres)
		return shp_error_set(err, SHP_E_NOMEM, "starting the database server");
	n = setpriv_argv(argv, uidbuf, gidbuf, u, "INT");
	argv[n++] = postgres;
	argv[n++] = "-D";
	argv[n++] = pg->pgdata;
	argv[n] = NULL;
	return spawn(argv, log_fd, &pg->pid, err);
}

static int wait_ready(struct shd_pgembed *pg, int timeout_ms, struct shp_error *err)
{
	uint64_t deadline = shp_now_monotonic_ns() + (uint64_t)timeout_ms * 1000000u;
	char how[64];
	int status;

	for (;;) {
		if (waitpid(pg->pid, &status, WNOHANG) == pg->pid) {
			pg->reaped = true;
			describe_status(status, how, sizeof(how));
			return fail_with_log(err, SHP_E_UNAVAIL, pg->log_path,
					     "the database server exited during start (%s)", how);
		}
		switch (PQping(pg->admin_conninfo)) {
		case PQPING_OK: return 0;
		case PQPING_NO_ATTEMPT:
			return shp_error_set(err, SHP_E_INTERNAL,
					     "invalid connection string for the embedded server");
		default: break;
		}
		if (shp_now_monotonic_ns() >= deadline)
			return fail_with_log(err, SHP_E_UNAVAIL, pg->log_path,
					     "the database server did not accept connections "
					     "within %d ms",
					     timeout_ms);
		sleep_ms(POLL_MS);
	}
}

static int create_database(const struct shd_pgembed *pg, struct shp_error *err)
{
	const char *params[] = {DBNAME};
	PGconn *conn = PQconnectdb(pg->admin_conninfo);
	PGresult *res = NULL;
	int r = 0;

	if (!conn || PQstatus(conn) != CONNECTION_OK) {
		r = shp_error_set(err, SHP_E_UNAVAIL, "connecting to the embedded server: %s",
				  conn ? PQerrorMessage(conn) : "out of memory");
		PQfinish(conn);
		return r;
	}
	res = shd_db_exec(conn, "SELECT 1 FROM pg_database WHERE datname = $1", 1, params, err);
	if (!res)
		r = shp_error_prefix(err, "looking for database '" DBNAME "'");
	else if (PQntuples(res) == 0 &&
		 shd_db_command(conn, "CREATE DATABASE " DBNAME, 0, NULL, err) < 0 &&
		 !(err && !strcmp(err->sqlstate, "42P04")))
		r = shp_error_prefix(err, "creating database '" DBNAME "'");
	PQclear(res);
	PQfinish(conn);
	return r;
}

/* Paths end up in postgresql.conf and in a conninfo: keep them to harmless characters. */
static int check_path(const char *what, const char *path, struct shp_error *err)
{
	for (const char *p = path; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == '\'' || *p == '\\' || *p == ',' || *p == 0x7f)
			return shp_error_set(
				err, SHP_E_INVAL,
				"%s '%s' contains a quote, backslash, comma or control "
				"character",
				what, path);
	return 0;
}

/* The state directory, created if missing, as an absolute path. */
static char *prepare_state_dir(const char *dir, struct shp_error *err)
{
	char *abs;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		shp_error_errno(err, errno, "creating the state directory '%s'", dir);
		return NULL;
	}
	abs = realpath(dir, NULL);
	if (!abs)
		shp_error_errno(err, errno, "resolving the state directory '%s'", dir);
	return abs;
}

/* Under root, the server user must be able to pass through the state directory. */
static int grant_search(const char *state, const struct server_user *u, struct shp_error *err)
{
	struct stat st;

	if (!u->switch_user)
		return 0;
	if (stat(state, &st) < 0)
		return shp_error_errno(err, errno, "reading '%s'", state);
	if (st.st_uid == u->uid || (st.st_mode & S_IXOTH))
		return 0;
	if (chmod(state, (st.st_mode & 07777) | S_IXOTH) < 0)
		return shp_error_errno(err, errno, "letting the database server into '%s'", state);
	return 0;
}

static int set_paths(struct shd_pgembed *pg, const char *state, const char *log_path,
		     struct shp_error *err)
{
	int r;

	pg->pgdata = xjoin(state, "pgdata");
	pg->pgsock = xjoin(state, "pgsock");
	pg->log_path = log_path ? strdup(log_path) : xjoin(state, "postgresql.log");
	if (!pg->pgdata || !pg->pgsock || !pg->log_path)
		return shp_error_set(err, SHP_E_NOMEM, "starting the database server");
	r = check_path("state directory", state, err);
	if (r < 0)
		return r;
	if (strlen(pg->pgsock) + sizeof("/.s.PGSQL." PORT ".lock") >
	    sizeof(((struct sockaddr_un *)0)->sun_path))
		return shp_error_set(err, SHP_E_INVAL,
				     "state directory '%s' is too long for a Unix socket path",
				     state);
	if (asprintf(&pg->conninfo, "host='%s' port=" PORT " user=shepherd dbname=" DBNAME,
		     pg->pgsock) < 0) {
		pg->conninfo = NULL;
		return shp_error_set(err, SHP_E_NOMEM, "starting the database server");
	}
	if (asprintf(&pg->admin_conninfo, "host='%s' port=" PORT " user=shepherd dbname=postgres",
		     pg->pgsock) < 0) {
		pg->admin_conninfo = NULL;
		return shp_error_set(err, SHP_E_NOMEM, "starting the database server");
	}
	return 0;
}

static void pgembed_stopp(struct shd_pgembed **p)
{
	if (*p)
		*p = shd_pgembed_stop(*p, 5000);
}

struct shd_pgembed *shd_pgembed_start(const struct shd_pgembed_config *cfg, struct shp_error *err)
{
	_cleanup_(pgembed_stopp) struct shd_pgembed *pg = NULL;
	_cleanup_free_ char *state = NULL;
	_cleanup_close_ int log_fd = -1;
	struct server_user user;
	const char *run_as;
	int timeout;

	if (!cfg || !cfg->state_dir || !*cfg->state_dir || !cfg->bindir || !*cfg->bindir) {
		shp_error_set(err, SHP_E_INVAL,
			      "the embedded database needs a state and a bin dir");
		return NULL;
	}
	run_as = cfg->run_as && *cfg->run_as ? cfg->run_as : DEFAULT_RUN_AS;
	timeout = cfg->start_timeout_ms > 0 ? cfg->start_timeout_ms : DEFAULT_START_TIMEOUT_MS;
	pg = calloc(1, sizeof(*pg));
	if (!pg) {
		shp_error_set(err, SHP_E_NOMEM, "starting the database server");
		return NULL;
	}
	state = prepare_state_dir(cfg->state_dir, err);
	if (!state || set_paths(pg, state, cfg->log_path, err) < 0)
		return NULL;
	log_fd = open(pg->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
	if (log_fd < 0) {
		shp_error_errno(err, errno, "opening the database log '%s'", pg->log_path);
		return NULL;
	}
	if (resolve_user(run_as, log_fd, pg->log_path, &user, err) < 0 ||
	    grant_search(state, &user, err) < 0 || make_server_dir(pg->pgsock, &user, err) < 0 ||
	    init_cluster(pg, cfg->bindir, &user, log_fd, err) < 0 ||
	    make_server_dir(pg->pgdata, &user, err) < 0 || ensure_include(pg->pgdata, err) < 0 ||
	    write_conf(pg, &user, err) < 0 || recover_stale(pg, err) < 0 ||
	    spawn_server(pg, cfg->bindir, &user, log_fd, err) < 0 ||
	    wait_ready(pg, timeout, err) < 0 || create_database(pg, err) < 0)
		return NULL;
	return TAKE_PTR(pg);
}

const char *shd_pgembed_conninfo(const struct shd_pgembed *pg)
{
	return pg->conninfo;
}

pid_t shd_pgembed_pid(const struct shd_pgembed *pg)
{
	return pg->pid;
}

bool shd_pgembed_is_running(struct shd_pgembed *pg)
{
	int status;
	pid_t r;

	if (pg->pid <= 0 || pg->reaped)
		return false;
	r = waitpid(pg->pid, &status, WNOHANG);
	if (r == 0)
		return true;
	if (r < 0 && errno == ECHILD)
		return kill(pg->pid, 0) == 0;
	pg->reaped = true;
	return false;
}

struct shd_pgembed *shd_pgembed_stop(struct shd_pgembed *pg, int timeout_ms)
{
	int status;

	if (!pg)
		return NULL;
	if (pg->pid > 0 && !pg->reaped) {
		(void)kill(pg->pid, SIGINT);
		if (wait_child(pg->pid, timeout_ms > 0 ? timeout_ms : 0, &status) < 0) {
			(void)kill(pg->pid, SIGKILL);
			(void)wait_child(pg->pid, 10000, &status);
		}
	}
	free(pg->pgdata);
	free(pg->pgsock);
	free(pg->log_path);
	free(pg->conninfo);
	free(pg->admin_conninfo);
	free(pg);
	return NULL;
}
