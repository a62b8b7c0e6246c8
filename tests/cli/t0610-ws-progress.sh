#!/bin/bash
# --wait following a task's progress: over a WebSocket first (the Unix socket and TLS), over
# Server-Sent Events when the daemon refuses WebSocket sessions (server.websocket_sessions 0),
# by polling when no stream is to be had (SHEPHERD_WAIT_TRANSPORT=poll, or every SSE slot
# taken); -v says which in one line; SHEPHERD_WAIT_TRANSPORT forcing one transport that is
# refused fails clearly; on a terminal the events make one progress line rewritten in place.
. "$top_srcdir/tests/helpers/lib.sh"

# a queued two-step task: events arrive while the CLI follows it
cat >"$T/plan.yaml" <<'YAML'
steps:
  - {action: test.sleep, targets: [a], params: {ms: 1200}}
  - {action: test.noop, targets: [b]}
YAML
submit() { # submit LABEL [shp args...]: a queued task followed with --wait -v
	local label=$1
	shift
	"$@" -v tasks submit -f "$T/plan.yaml" --tenant "team-$label" --wait
}
following() { grep -E '^following task [0-9]+ ' <<<"$1"; }
wt() { # wt TRANSPORT CMD...: CMD with SHEPHERD_WAIT_TRANSPORT set
	local t=$1
	shift
	SHEPHERD_WAIT_TRANSPORT=$t "$@"
}

start_daemon_tls --execution-immediate-max 1s

expect_exit 0 "--wait over the Unix socket" submit unix shp
expect_match '^Status: +succeeded' "$OUT" "ends with the finished task"
expect_match '^following task [0-9]+ over a WebSocket$' "$(following "$ERR")" \
	"-v says the events came over a WebSocket"
expect_eq 1 "$(following "$ERR" | wc -l)" "in one line"
expect_match 'step_finished +step 0 succeeded' "$ERR" "the events are shown as they come"
expect_eq 2 "$(grep -c 'step_finished' <<<"$ERR")" "each once"
expect_exit 0 "--wait over TLS with a token" submit tls as "$(id -un)"
expect_match '^following task [0-9]+ over a WebSocket$' "$(following "$ERR")" \
	"over a WebSocket there too"
expect_exit 0 "-o json --wait" shp tasks submit -f "$T/plan.yaml" --tenant team-j --wait -o json
expect_eq succeeded "$(jq -r .status <<<"$OUT")" "prints the final task as JSON"
expect_eq "" "$ERR" "and nothing on stderr"

expect_exit 0 "SHEPHERD_WAIT_TRANSPORT=sse" wt sse submit sse shp
expect_match '^following task [0-9]+ over Server-Sent Events$' "$(following "$ERR")" \
	"forces Server-Sent Events"
expect_exit 0 "SHEPHERD_WAIT_TRANSPORT=poll" wt poll submit poll shp
expect_match '^following task [0-9]+ by polling$' "$(following "$ERR")" "forces polling"
expect_eq 2 "$(grep -c 'step_finished' <<<"$ERR")" "which shows the same events"
expect_exit 2 "an unknown transport is a usage error" \
	wt pigeon shp tasks submit -f "$T/plan.yaml" --tenant team-x --wait
expect_match "SHEPHERD_WAIT_TRANSPORT must be ws, sse, poll, a list of them or auto" "$ERR" "saying what is allowed"

expect_exit 4 "following a task that does not exist" shp -v tasks watch 999999
expect_eq "" "$(grep -E 'Server-Sent|polling' <<<"$ERR")" "is refused at once, not tried over every transport"

# on a terminal: one progress line, rewritten in place
pty_run "'$SHEPHERD' --socket '$SOCK' tasks submit -f '$T/plan.yaml' --tenant team-tty --wait" \
	>"$T/tty" 2>&1
expect_match $'\r\e\\[K[0-9:]+ step_finished' "$(cat "$T/tty")" \
	"on a terminal each event rewrites the progress line"
expect_eq 1 "$(grep -c 'running -> succeeded' "$T/tty")" "which ends on its own line"

# ---- the daemon refuses WebSocket sessions: Server-Sent Events, then polling
stop_daemon
start_daemon_tls --execution-immediate-max 1s --http-max-streams 2 --websocket-sessions 0
expect_exit 0 "--wait with WebSocket sessions refused" submit nows shp
expect_match 'no WebSocket \(WebSocket sessions are disabled' "$ERR" "-v tells why not"
expect_match '^following task [0-9]+ over Server-Sent Events$' "$(following "$ERR")" \
	"and follows over Server-Sent Events"
expect_match '^Status: +succeeded' "$OUT" "to the end"
expect_exit 0 "over TLS too" submit nows-tls as "$(id -un)"
expect_match '^following task [0-9]+ over Server-Sent Events$' "$(following "$ERR")" \
	"Server-Sent Events over TLS"
expect_exit 1 "SHEPHERD_WAIT_TRANSPORT=ws fails when the daemon refuses it" \
	wt ws submit forced shp
expect_match 'cannot follow task [0-9]+ over WebSocket .*disabled' "$ERR" "saying why"

# both SSE slots taken by other clients: polling
printf 'steps:\n  - {action: test.sleep, targets: [s], params: {ms: 6000}}\n' >"$T/slow.yaml"
slow=$(shp tasks submit -f "$T/slow.yaml" --tenant team-s -o json | jq .id)
for i in 1 2; do
	curl -s -N --max-time 20 --unix-socket "$SOCK" "http://localhost/api/v1/tasks/$slow/stream" \
		>"$T/held-stream.$i" &
	BG_PIDS="$BG_PIDS $!"
done
# both slots are taken once each stream has said it is open
wait_for 30 sh -c "grep -q 'stream open' '$T/held-stream.1' && grep -q 'stream open' '$T/held-stream.2'" ||
	fail "two streams hold the daemon's slots"
expect_exit 0 "--wait with no stream to be had" submit nostream shp
expect_match '^following task [0-9]+ by polling$' "$(following "$ERR")" "falls back to polling"
expect_match 'no event stream \(HTTP 429' "$ERR" "after -v told why"
expect_eq 2 "$(grep -c 'step_finished' <<<"$ERR")" "with every event"
finish
