#!/bin/bash
# pg-ctl.sh stop|start|restart [SECONDS]: control the throwaway server of with-postgres.sh from
# inside a test (exported to tests as $SHP_TEST_PGCTL). stop is a fast shutdown; restart stops,
# sleeps SECONDS (default 0) and starts again. Both wait until the server is down or accepting
# connections. Under root pg_ctl runs as $SHP_TEST_PGUSER. The exit status is pg_ctl's.
set -u
: "${SHP_TEST_PGDATA:?run under with-postgres.sh}" "${SHP_TEST_PGBIN:?}" "${SHP_TEST_PGUSER:?}"
: "${SHP_TEST_PGLOG:?}"

# The server outlives this script: it must not keep the caller's descriptors (pipes of a test
# runner) open.
for fd in /proc/$$/fd/*; do
	fd=${fd##*/}
	# 255 is where bash reads this script from.
	[ "$fd" -gt 2 ] 2>/dev/null && [ "$fd" -ne 255 ] && eval "exec $fd>&-" 2>/dev/null
done

pgctl() {
	if [ "$(id -u)" = 0 ] && [ "$SHP_TEST_PGUSER" != root ]; then
		(cd / && exec runuser -u "$SHP_TEST_PGUSER" -- "$SHP_TEST_PGBIN/pg_ctl" \
			-D "$SHP_TEST_PGDATA" -l "$SHP_TEST_PGLOG" -w -t 60 "$@")
	else
		"$SHP_TEST_PGBIN/pg_ctl" -D "$SHP_TEST_PGDATA" -l "$SHP_TEST_PGLOG" -w -t 60 "$@"
	fi
}

case "${1:-}" in
stop) pgctl -m fast stop ;;
start) pgctl start ;;
restart) pgctl -m fast stop && sleep "${2:-0}" && pgctl start ;;
*)
	echo "usage: pg-ctl.sh stop|start|restart [SECONDS]" >&2
	exit 2
	;;
esac
