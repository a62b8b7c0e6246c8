# Shared by the shell tests in tests/cli/: a temp dir, the real daemon on a real socket against
# the throwaway PostgreSQL of with-postgres.sh, the real CLI, and small assertions.
# Each test: `. "$top_srcdir/tests/helpers/lib.sh"`, then its steps, then `finish`.
set -u

: "${top_srcdir:?run through make check or tests/helpers/run-test.sh}"
: "${SHEPHERD:?}" "${SHEPHERDD:?}"

T=$(mktemp -d "${TMPDIR:-/tmp}/shp-t.XXXXXX")
chmod 755 "$T"
SOCK="$T/shepherdd.sock"
DAEMON_PID=
TESTS_RUN=0
TESTS_FAILED=0

# Background processes a test starts (BG_PIDS+=" $!") are killed when it ends, however it ends.
BG_PIDS=
cleanup() {
	[ -n "$BG_PIDS" ] && kill $BG_PIDS 2>/dev/null
	stop_daemon 2>/dev/null
	if [ "$TESTS_FAILED" -gt 0 ] || [ "${KEEP_TMP:-}" = 1 ]; then
		echo "# daemon log ($T/daemon.log):"
		sed 's/^/#   /' "$T/daemon.log" 2>/dev/null | tail -n 60
	fi
	rm -rf "$T"
}
trap cleanup EXIT

note() { echo "# $*"; }

pass() {
	TESTS_RUN=$((TESTS_RUN + 1))
	echo "ok $TESTS_RUN - $1"
}

fail() {
	TESTS_RUN=$((TESTS_RUN + 1))
	TESTS_FAILED=$((TESTS_FAILED + 1))
	echo "not ok $TESTS_RUN - $1"
	[ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/#   /'
	return 0
}

# Start shepherdd against the test database; extra arguments go to shepherdd.
start_daemon() {
	"$SHEPHERDD" --database-url "$SHP_TEST_PGURL" --state-dir "$T/state" --socket "$SOCK" \
		--log-level debug "$@" >>"$T/daemon.log" 2>&1 &
	DAEMON_PID=$!
	wait_ready "$SOCK" || { echo "# shepherdd did not become ready"; tail -n 40 "$T/daemon.log"; exit 1; }
}

# Wait until /health/ready answers 200 on the socket (30 s).
wait_ready() {
	local sock=$1 i=0
	while [ $i -lt 300 ]; do
		if [ -S "$sock" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$sock" \
			http://localhost/health/ready)" = 200 ]; then
			return 0
		fi
		if [ -n "$DAEMON_PID" ] && ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

stop_daemon() {
	[ -n "$DAEMON_PID" ] || return 0
	kill -TERM "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_STATUS=$?
	DAEMON_PID=
}

# wait_for SECONDS CMD...: run CMD every 0.2 s until it succeeds; false if it never does. A
# test waits for what it needs to see, never a fixed pause: a loaded machine is slow.
wait_for() {
	local n=$(($1 * 5))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}

# pty_run LINE: LINE (sh) on a pseudo-terminal through script(1), its status the command's
# (124 if it hangs for 2 minutes). The command replaces the shell script(1) starts ($SHELL, else sh): a Ctrl-C typed must reach
# the command alone, and dash, waiting for its child, would take the SIGINT as its own and end
# with status 130 once the child exits.
pty_run() { timeout 120 script -qefc "exec $1" /dev/null; }

# periodic_jobs KIND: how many jobs of KIND the queue holds, once there is one (the queue's
# leader schedules periodic jobs shortly after the start: up to 30 s on a loaded machine).
periodic_jobs() {
	local n=0 i=150
	while [ "$i" -gt 0 ]; do
		n=$(shp jobs list --kind "$1" -o json | jq length)
		[ "$n" -gt 0 ] && break
		sleep 0.2
		i=$((i - 1))
	done
	echo "$n"
}

# run_job KIND ARGS-JSON: queue one job now (as the periodic schedule would) and wait up to
# 60 s for it to complete; fails if it does not.
run_job() {
	local id n=300
	id=$(sql "WITH ins AS (INSERT INTO jobs (kind, args, max_attempts) VALUES ('$1', '$2'::jsonb, 1)
		RETURNING id, queue) SELECT id FROM ins, LATERAL pg_notify('shepherd_jobs', ins.queue)")
	while [ "$n" -gt 0 ]; do
		[ "$(shp jobs show "$id" -o json 2>/dev/null | jq -r .state)" = completed ] && return 0
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}

# The CLI against the test daemon.
shp() { "$SHEPHERD" --socket "$SOCK" "$@"; }

# Several users: start_daemon_tls [shepherdd args] starts the daemon with a TLS listener on
# $TLS_PORT too; then `as USER shepherd-args...` runs the CLI as USER (a bearer token minted
# for USER on first use, kept in $T/tokens/USER) and `api_as USER METHOD PATH [curl args]` is
# api() as USER. The socket's caller (shp, api) stays the platform admin running the tests.
start_daemon_tls() {
	[ -f "$T/pki/ca.crt" ] || "$top_srcdir/tests/helpers/make-certs.sh" "$T/pki" >/dev/null
	TLS_PORT=$((20000 + RANDOM % 20000))
	start_daemon --tls-listen "127.0.0.1:$TLS_PORT" --tls-cert "$T/pki/server.crt" \
		--tls-key "$T/pki/server.key" "$@"
}
user_token() {
	mkdir -p "$T/tokens"
	[ -s "$T/tokens/$1" ] || shp token create "t-$1" --user "$1" --expires 1d >"$T/tokens/$1"
	cat "$T/tokens/$1"
}
as() {
	local user=$1 token
	shift
	token=$(user_token "$user") || return 8
	SHEPHERD_TOKEN="$token" "$SHEPHERD" --server "https://127.0.0.1:$TLS_PORT" \
		--cacert "$T/pki/ca.crt" "$@"
}
api_as() {
	local user=$1 method=$2 path=$3 token
	shift 3
	token=$(user_token "$user") || return 1
	curl -s -o "$T/body" -w '%{http_code}' -X "$method" --cacert "$T/pki/ca.crt" \
		-H "Authorization: Bearer $token" "https://127.0.0.1:$TLS_PORT$path" "$@" >"$T/code"
	cat "$T/body"
}

# curl against the daemon's socket: api METHOD PATH [curl args...] prints the body; the status
# is then $(code) (it is kept in a file, as api usually runs in a command substitution).
api() {
	local method=$1 path=$2
	shift 2
	curl -s -o "$T/body" -w '%{http_code}' -X "$method" --unix-socket "$SOCK" \
		"http://localhost$path" "$@" >"$T/code"
	cat "$T/body"
}
code() { cat "$T/code"; }

# psql against the test database.
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$SHP_TEST_PGURL" -c "$1"; }

# expect_exit CODE DESC CMD...: run CMD, compare its exit status; output in $OUT, stderr in $ERR.
expect_exit() {
	local want=$1 desc=$2
	shift 2
	"$@" >"$T/out" 2>"$T/err"
	local got=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
	if [ "$got" = "$want" ]; then
		pass "$desc"
	else
		fail "$desc (exit $got, wanted $want)" "stdout: $OUT
stderr: $ERR"
	fi
}

# expect_eq WANT GOT DESC
expect_eq() {
	if [ "$1" = "$2" ]; then
		pass "$3"
	else
		fail "$3" "wanted: $1
got:    $2"
	fi
}

# expect_match REGEX TEXT DESC
expect_match() {
	if printf '%s' "$2" | grep -Eq -e "$1"; then
		pass "$3"
	else
		fail "$3" "wanted a match for: $1
in: $2"
	fi
}

finish() {
	stop_daemon
	# under --enable-asan, a daemon's report ends up in its log: that is a failure too
	if grep -l -E 'ERROR: [A-Za-z]+Sanitizer|runtime error:|WARNING: ThreadSanitizer' "$T"/*.log >/dev/null 2>&1; then
		fail "no sanitizer reports in the daemon logs" "$(grep -h -A 30 -E 'Sanitizer|runtime error:' "$T"/*.log | head -n 60)"
	else
		pass "no sanitizer reports in the daemon logs"
	fi
	echo "1..$TESTS_RUN"
	if [ "$TESTS_FAILED" -gt 0 ]; then
		echo "# $TESTS_FAILED of $TESTS_RUN failed"
		exit 1
	fi
	exit 0
}
