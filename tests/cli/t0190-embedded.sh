#!/bin/bash
# The embedded PostgreSQL: first start runs initdb, the server listens only on a private socket
# (as a dedicated user when started as root), the daemon tells systemd it is ready, data
# survives a kill -9 of the daemon (the server follows its parent down, and the stale
# postmaster.pid is recovered on the next start), and SIGTERM stops the server too.
. "$top_srcdir/tests/helpers/lib.sh"

STATE="$T/emb"
notify_log="$T/notify.log"
python3 - "$T/notify.sock" "$notify_log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(90)
with open(sys.argv[2], "w") as f:
    try:
        while True:
            f.write(s.recv(4096).decode() + "\n---\n")
            f.flush()
    except socket.timeout:
        pass
PY
listener=$!
for i in $(seq 1 300); do [ -S "$T/notify.sock" ] && break; sleep 0.1; done

start_embedded() {
	NOTIFY_SOCKET="$T/notify.sock" "$SHEPHERDD" --state-dir "$STATE" --socket "$SOCK" >>"$T/daemon.log" 2>&1 &
	DAEMON_PID=$!
	wait_ready "$SOCK"
}

pg_pids() { pgrep -f -- "-D $STATE/pgdata" || true; }

start_embedded && pass "the daemon starts with its embedded PostgreSQL" || fail "the daemon starts with its embedded PostgreSQL" "$(tail -n 30 "$T/daemon.log"; cat "$STATE/postgresql.log" 2>/dev/null | tail -n 20)"
[ -f "$STATE/pgdata/PG_VERSION" ] && pass "initdb created the data directory" || fail "initdb created the data directory"
expect_eq 700 "$(stat -c %a "$STATE/pgdata")" "the data directory is private"
expect_eq 700 "$(stat -c %a "$STATE/pgsock")" "the server's socket directory is private"
body=$(api GET /api/v1/status)
expect_eq true "$(jq .database.embedded <<<"$body")" "status reports the embedded database"
# only the embedded server's own processes count: another PostgreSQL may run on this machine
pm=$(head -n 1 "$STATE/pgdata/postmaster.pid")
expect_eq "" "$(ss -ltnp 2>/dev/null | grep -F "pid=$pm," || true)" "the embedded server listens on no TCP port"
pid=$(pg_pids | head -n 1)
if [ "$(id -u)" = 0 ]; then
	expect_eq "$(id -u shepherd)" "$(awk '/^Uid:/ {print $2}' /proc/$pid/status)" "as root, the server runs as the 'shepherd' user"
else
	expect_eq "$(id -u)" "$(awk '/^Uid:/ {print $2}' /proc/$pid/status)" "as a user, the server runs as that user"
fi
wait_for 30 grep -q 'READY=1' "$notify_log"
expect_match 'READY=1' "$(cat "$notify_log")" "readiness is sent to NOTIFY_SOCKET"

pg_sysid() { "${SHP_TEST_PGBIN}/pg_controldata" "$STATE/pgdata" 2>/dev/null | awk -F: '/system identifier/ {gsub(/ /, "", $2); print $2}'; }
sysid=$(pg_sysid)
expect_match "^[0-9]+$" "$sysid" "the cluster has a system identifier"
api POST /api/v1/namespaces -H 'Content-Type: application/json' -d '{"name":"kept","environment":"prod"}' >/dev/null
expect_eq 201 "$(code)" "a namespace is created"

kill -9 "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=
for i in $(seq 1 300); do [ -z "$(pg_pids)" ] && break; sleep 0.1; done
expect_eq "" "$(pg_pids)" "after kill -9 of the daemon the server goes down too"
[ -f "$STATE/pgdata/postmaster.pid" ] && note "a stale postmaster.pid was left behind"
rm -f "$SOCK"

start_embedded && pass "the daemon starts again after the crash" || fail "the daemon starts again after the crash" "$(tail -n 30 "$T/daemon.log")"
body=$(api GET /api/v1/namespaces/kept)
expect_eq 200 "$(code)" "the data survived the crash"
expect_eq "$sysid" "$(pg_sysid)" "the same cluster is used again (no second initdb)"

stop_daemon
expect_eq 0 "$DAEMON_STATUS" "SIGTERM stops the daemon cleanly"
expect_eq "" "$(pg_pids)" "and the embedded server with it"
wait_for 30 grep -q 'STOPPING=1' "$notify_log"
expect_match 'STOPPING=1' "$(cat "$notify_log")" "stopping is sent to NOTIFY_SOCKET"
kill "$listener" 2>/dev/null

# Started by an ordinary user, the daemon runs the server as that user (no run-as account).
if [ "$(id -u)" = 0 ]; then
	id shp-bob >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin shp-bob
	mkdir -p "$T/bob" && cp -r "$top_srcdir/schema" "$T/bob/schema" && install -m 0755 "$SHEPHERDD" "$T/bob/shepherdd"
	chown -R shp-bob "$T/bob"
	setpriv --reuid=shp-bob --regid=shp-bob --init-groups -- env -i HOME="$T/bob" PATH=/usr/bin:/bin \
		"$T/bob/shepherdd" --state-dir "$T/bob/state" --schema-dir "$T/bob/schema" >>"$T/daemon-bob.log" 2>&1 &
	DAEMON_PID=$!
	if wait_ready "$T/bob/state/shepherdd.sock"; then
		pass "an ordinary user's daemon starts with its embedded PostgreSQL"
	else
		fail "an ordinary user's daemon starts with its embedded PostgreSQL" "$(tail -n 30 "$T/daemon-bob.log")"
	fi
	STATE="$T/bob/state"
	pid=$(pg_pids | head -n 1)
	expect_eq "$(id -u shp-bob)" "$(awk '/^Uid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" "its server runs as that user"
	body=$(curl -s --unix-socket "$T/bob/state/shepherdd.sock" http://localhost/api/v1/whoami)
	expect_eq true "$(jq .is_admin <<<"$body")" "root is a platform admin of any daemon"
	stop_daemon
	expect_eq 0 "$DAEMON_STATUS" "the ordinary user's daemon stops cleanly"
	expect_eq "" "$(pg_pids)" "and its server with it"
fi
finish
