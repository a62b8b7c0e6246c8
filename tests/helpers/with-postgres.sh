#!/bin/bash
# with-postgres.sh CMD [ARGS...]: run CMD against a throwaway PostgreSQL of its own.
#
# CMD gets these in its environment:
#   SHP_TEST_PGURL    libpq conninfo: "host=<sockdir> port=5432 user=shepherd dbname=shepherd_test"
#   SHP_TEST_PGDATA   the data directory          SHP_TEST_PGSOCK  the socket directory
#   SHP_TEST_PGBIN    the server binaries         SHP_TEST_PGUSER  the OS user running the server
#   SHP_TEST_PGLOG    the server log              SHP_TEST_PGCTL   the pg-ctl.sh helper (below)
#   PGHOST PGPORT PGUSER PGDATABASE               so psql, pg_dump and libpq find the server
# The database superuser is "shepherd", with trust over the Unix socket; there is no TCP.
# CMD's exit status is returned. The server is stopped and the temp dir removed on every exit,
# failures and SIGINT included. When the server cannot start its log is printed.
#
# Restarting the server from a test: "$SHP_TEST_PGCTL" stop|start|restart [SECONDS]. By hand:
#   pg_ctl -D "$SHP_TEST_PGDATA" -l "$SHP_TEST_PGLOG" -w -m fast stop     (then ... -w start)
# PostgreSQL refuses to run as root, so under root the server runs as SHP_TEST_PGUSER
# (shepherd-test): prefix `runuser -u "$SHP_TEST_PGUSER" --` and run from a directory that user
# may enter, e.g. `(cd / && runuser -u "$SHP_TEST_PGUSER" -- "$SHP_TEST_PGBIN/pg_ctl" ...)`.
#
# Settings: SHP_PG_BINDIR (server binaries; else the newest /usr/lib/postgresql/*/bin, else
# `pg_config --bindir`), SHP_TEST_CACHE (where the initdb'd template per PostgreSQL version is
# kept; default ${TMPDIR:-/tmp}/shp-test-cache), SHP_REQUIRE_PG=1 (no server binaries is a
# failure instead of a skip, exit 77).
set -u
PATH=$PATH:/usr/sbin:/sbin

here=$(cd "$(dirname "$0")" && pwd)
me=with-postgres.sh
test_user=shepherd-test
template_format=v1

if [ $# -eq 0 ]; then
	echo "usage: $me CMD [ARGS...]" >&2
	exit 2
fi

die() {
	echo "$me: $*" >&2
	exit 99
}

find_bindir() {
	local d
	if [ -n "${SHP_PG_BINDIR:-}" ] && [ -x "$SHP_PG_BINDIR/postgres" ]; then
		echo "$SHP_PG_BINDIR"
		return
	fi
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -n "$d" ] && [ -x "$d/postgres" ]; then
		echo "$d"
		return
	fi
	if command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir 2>/dev/null)
		[ -n "$d" ] && [ -x "$d/postgres" ] && echo "$d"
	fi
}

bindir=$(find_bindir)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ] || [ ! -x "$bindir/pg_ctl" ]; then
	msg="no PostgreSQL server binaries (initdb, pg_ctl, postgres) found"
	msg="$msg in \$SHP_PG_BINDIR, /usr/lib/postgresql/*/bin or pg_config --bindir"
	[ "${SHP_REQUIRE_PG:-0}" = 1 ] && die "$msg (SHP_REQUIRE_PG=1)"
	echo "$me: $msg; skipping" >&2
	exit 77
fi
pgversion=$("$bindir/postgres" --version | sed -n 's/^[^0-9]*\([0-9][0-9.]*\).*/\1/p')
[ -n "$pgversion" ] || die "cannot tell the version of '$bindir/postgres'"

if [ "$(id -u)" = 0 ]; then
	server_user=$test_user
else
	server_user=$(id -un)
fi

# Run a command as the server's OS user, from a directory that user may enter.
as_server() {
	if [ "$(id -u)" = 0 ]; then
		(cd / && exec runuser -u "$server_user" -- "$@")
	else
		"$@"
	fi
}

ensure_test_user() {
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		id -u "$test_user" >/dev/null 2>&1 && return 0
		useradd --system --no-create-home --shell /usr/sbin/nologin "$test_user" 2>/dev/null
		sleep 0.2
	done
	id -u "$test_user" >/dev/null 2>&1 || die "cannot create the system user '$test_user'"
}

pick_locale() {
	if locale -a 2>/dev/null | grep -qix 'c\.utf-\?8'; then
		echo C.UTF-8
	else
		echo C
	fi
}

# The template: an initdb'd data dir with the test settings and the shepherd_test database.
# Built once per PostgreSQL version and server user, under a lock; tests copy it.
build_template() {
	local new="$1.new"

	rm -rf "$new"
	mkdir -p "$new" || return 1
	[ "$(id -u)" = 0 ] && chown "$server_user:" "$new"
	if ! as_server "$bindir/initdb" -D "$new/data" -U shepherd --auth=trust -E UTF8 \
		--locale="$(pick_locale)" --no-sync >"$new/initdb.log" 2>&1; then
		cat "$new/initdb.log" >&2
		return 1
	fi
	cat >>"$new/data/postgresql.conf" <<-EOF

	# with-postgres.sh: a throwaway server for one test.
	listen_addresses = ''
	port = 5432
	fsync = off
	synchronous_commit = off
	full_page_writes = off
	max_connections = 60
	shared_buffers = 16MB
	log_min_messages = warning
	log_line_prefix = '%m [%p] '
	include_if_exists = 'test.conf'
	EOF
	if ! echo 'CREATE DATABASE shepherd_test' | as_server "$bindir/postgres" --single \
		-D "$new/data" postgres >"$new/single.log" 2>&1; then
		cat "$new/single.log" >&2
		return 1
	fi
	mv "$new" "$1"
}

cache=${SHP_TEST_CACHE:-${TMPDIR:-/tmp}/shp-test-cache}
mkdir -p "$cache" 2>/dev/null
# A default cache made by another user is not ours to write: use one of our own.
if [ -z "${SHP_TEST_CACHE:-}" ] && [ ! -w "$cache" ]; then
	cache="$cache-$(id -u)"
	mkdir -p "$cache" 2>/dev/null
fi
[ -d "$cache" ] && [ -w "$cache" ] || die "cannot create the template cache '$cache'"
[ "$(id -u)" = 0 ] && chmod 0755 "$cache"
template="$cache/pg-$pgversion-$server_user-$template_format"
(
	flock 9 || exit 1
	[ "$(id -u)" = 0 ] && ensure_test_user
	[ -f "$template/data/PG_VERSION" ] && exit 0
	build_template "$template"
) 9>"$cache/.lock" || die "cannot prepare the PostgreSQL template in '$cache'"

# The socket path must fit in sun_path (108 bytes): fall back on /tmp for a long TMPDIR.
work=$(mktemp -d "${TMPDIR:-/tmp}/shp-pg.XXXXXX") || die "mktemp failed"
if [ ${#work} -gt 80 ]; then
	rmdir "$work"
	work=$(mktemp -d /tmp/shp-pg.XXXXXX) || die "mktemp failed"
fi
data="$work/data"
sock="$work/sock"
log="$work/server.log"

stop_server() {
	local pid
	[ -f "$data/postmaster.pid" ] || return 0
	as_server "$bindir/pg_ctl" -D "$data" -w -t 30 -m immediate stop >/dev/null 2>&1 && return 0
	pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null)
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	return 0
}

cleanup() {
	stop_server
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

cp -a "$template/data" "$data" || die "cannot copy the template into '$work'"
mkdir "$sock" || die "cannot create '$sock'"
echo "unix_socket_directories = '$sock'" >"$data/test.conf"
: >"$log"
chmod 0700 "$data" "$sock"
[ "$(id -u)" = 0 ] && chown -R "$server_user:" "$work"

if ! as_server "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 start >"$work/pg_ctl.out" 2>&1; then
	echo "$me: the PostgreSQL server in '$data' did not start:" >&2
	cat "$work/pg_ctl.out" "$log" >&2
	exit 99
fi

export SHP_TEST_PGURL="host=$sock port=5432 user=shepherd dbname=shepherd_test"
export SHP_TEST_PGDATA="$data" SHP_TEST_PGSOCK="$sock" SHP_TEST_PGBIN="$bindir"
export SHP_TEST_PGUSER="$server_user" SHP_TEST_PGLOG="$log" SHP_TEST_PGCTL="$here/pg-ctl.sh"
export PGHOST="$sock" PGPORT=5432 PGUSER=shepherd PGDATABASE=shepherd_test

"$@"
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
	echo "$me: '$1' exited with status $rc; the server log ends with:" >&2
	tail -n 40 "$log" >&2
fi
exit $rc
