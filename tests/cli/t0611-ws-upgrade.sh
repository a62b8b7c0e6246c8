#!/bin/bash
# WebSocket sessions on the API listeners (upgrade.c), with a client written from RFC 6455 that
# also misbehaves: the task progress stream upgraded on the Unix socket and over TLS, resuming
# after an id, the handshake refusals (version, key, subprotocol), unmasked, oversized and
# unknown frames, PING, a client that goes silent, a slow request head, the session cap, and
# the daemon closing live sessions when it stops. The connection timeout is 6 s here: an
# upgraded connection that answers PINGs outlives it, a silent one does not. (Shorter, a
# client starved of CPU on a loaded machine may miss its PONG's deadline.)
. "$top_srcdir/tests/helpers/lib.sh"

WS="python3 $top_srcdir/tests/helpers/ws-client.py"
start_daemon_tls --http-connection-timeout 6s --websocket-sessions 4 --execution-immediate-max 1s \
	--queue-shutdown-grace 1s
submit() { api POST /api/v1/tasks -H 'Content-Type: application/json' -d "$1"; }
sleeper() { # a task that runs for $1 steps of $2 ms, of SLA class $3 (medium: 30 s at most)
	local step="{\"action\":\"test.sleep\",\"targets\":[\"s-$RANDOM\"],\"params\":{\"ms\":$2}}"
	submit "{\"tenant\":\"team-a\",\"sla_class\":\"${3:-medium}\",\"plan\":{\"steps\":[$(yes "$step" | head -n "$1" | paste -sd,)]}}" | jq .id
}
ws() { $WS --unix "$SOCK" "$@" 2>&1; }
TOKEN=$(shp token create t-ws --user "$(id -un)" --expires 1d 2>/dev/null)
wst() { $WS --tls "127.0.0.1:$TLS_PORT" --cacert "$T/pki/ca.crt" --token "$TOKEN" "$@" 2>&1; }

# ---- the progress stream, upgraded
body=$(submit '{"tenant":"team-a","plan":{"steps":[{"action":"test.noop","targets":["vm-1"]}]}}')
done_id=$(jq .id <<<"$body")
out=$(ws "/api/v1/tasks/$done_id/stream" events)
expect_match '^status 101' "$out" "a GET of the stream asking for a WebSocket is switched (101)"
expect_match 'protocol events.shepherd.io' "$out" "with the subprotocol it offered"
expect_eq "" "$(grep -x 'bad accept' <<<"$out")" "and the right Sec-WebSocket-Accept"
events=$(sed -n 's/^text //p' <<<"$out")
expect_eq "$(api GET "/api/v1/tasks/$done_id/events" | jq -c '[.items[].id]')" \
	"$(jq -sc '[.[] | select(.event != "end") | .id]' <<<"$events")" \
	"every event arrives as a text frame, in order"
expect_eq step_started "$(jq -sr '.[] | select(.id == 3) | .event' <<<"$events")" \
	"a frame names the event type"
expect_eq "step 0 'test.noop' started (attempt 1)" \
	"$(jq -sr '.[] | select(.id == 3) | .data.message' <<<"$events")" "and carries the event"
expect_eq succeeded "$(jq -sr '.[] | select(.event == "end") | .data.status' <<<"$events")" \
	"the end frame carries the finished task"
expect_eq "close 1000" "$(tail -n 1 <<<"$out")" "then the daemon closes normally (1000)"
out=$(ws "/api/v1/tasks/$done_id/stream?after=3" events | sed -n 's/^text //p')
expect_eq "4,5,end" "$(jq -sr '[.[] | (.id // .event | tostring)] | join(",")' <<<"$out")" \
	"?after=3 resumes after event 3"
out=$(ws --header "Last-Event-ID: 4" "/api/v1/tasks/$done_id/stream" events | sed -n 's/^text //p')
expect_eq "5,end" "$(jq -sr '[.[] | (.id // .event | tostring)] | join(",")' <<<"$out")" \
	"so does Last-Event-ID"
out=$(wst "/api/v1/tasks/$done_id/stream" events)
expect_match '^status 101' "$out" "over TLS too (with a bearer token)"
expect_eq 6 "$(grep -c '^text ' <<<"$out")" "where the same frames arrive"
expect_eq "close 1000" "$(tail -n 1 <<<"$out")" "and the same close"
out=$($WS --tls "127.0.0.1:$TLS_PORT" --cacert "$T/pki/ca.crt" "/api/v1/tasks/$done_id/stream" events 2>&1)
expect_match '^status 401' "$out" "no upgrade without an identity"
out=$(ws /api/v1/tasks/999999/stream events)
expect_match '^status 404' "$out" "nor for a task one cannot see"

# ---- a live task: the frames come as it runs, past the connection timeout (PINGs answered);
# meanwhile, clients that go silent (they run alongside, the timeouts take seconds)
# it outlives every section below that uses it (a long task: 10 minutes at most)
long=$(sleeper 12 10000 long)
(
	start=$(date +%s)
	ws --timeout 25 "/api/v1/tasks/$long/stream" idle >"$T/idle"
	echo "took $(($(date +%s) - start))" >>"$T/idle"
) &
quiet=$!
wst --timeout 25 "/api/v1/tasks/$long/stream" partial >"$T/partial" &
quiet="$quiet $!"
ws --timeout 8 "/api/v1/tasks/$long/stream" slowloris >"$T/slowloris" &
quiet="$quiet $!"
BG_PIDS="$BG_PIDS $quiet"
id=$(sleeper 1 9000)
wst --timeout 25 "/api/v1/tasks/$id/stream" events >"$T/live-tls" &
live_tls=$!
out=$(ws --timeout 25 "/api/v1/tasks/$id/stream" events)
expect_match 'step_finished' "$out" "a running task's events arrive as it runs"
expect_match '"event":"end"' "$out" "a session outlives the 6 s connection timeout while PINGs are answered"
expect_match '^ping' "$out" "the daemon PINGs a quiet client"
expect_eq "close 1000" "$(tail -n 1 <<<"$out")" "and ends the session after the end frame"
wait $live_tls
expect_match '"event":"end"' "$(cat "$T/live-tls")" "so does a session over TLS (MHD's forwarding)"
expect_eq "close 1000" "$(tail -n 1 "$T/live-tls")" "which ends the same way"

wait $quiet
out=$(cat "$T/idle")
expect_eq "close 1001" "$(sed -n '$!p' <<<"$out" | tail -n 1)" "a client that answers no PING is closed (1001)"
# closed by the daemon (1001, above), not by its own 25 s timeout, and not before the 6 s
expect_eq 1 "$(( $(tail -n 1 <<<"$out" | tr -dc 0-9) >= 5 ))" "after the connection timeout"
expect_eq "close 1001" "$(tail -n 1 "$T/partial")" "half a frame and silence is closed too (TLS)"
expect_eq "eof" "$(cat "$T/slowloris")" "a request head trickled slower than the timeout is dropped"

# ---- the handshake refused
id=$long
out=$(ws "/api/v1/tasks/$id/stream" badversion)
expect_match '^status 400' "$out" "version 8 is refused (400)"
expect_match '"header":"Sec-WebSocket-Version"' "$out" "naming the header"
out=$(ws "/api/v1/tasks/$id/stream" badkey)
expect_match '"header":"Sec-WebSocket-Key"' "$out" "a key that is not 16 bytes is refused"
out=$(ws "/api/v1/tasks/$id/stream" nokey)
expect_match '"header":"Sec-WebSocket-Key"' "$out" "so is a missing key"
out=$(ws "/api/v1/tasks/$id/stream" noprotocol)
expect_match '^status 400' "$out" "an upgrade not offering the subprotocol is refused"
expect_match '"protocol":"events.shepherd.io"' "$out" "naming the one to offer"
out=$(ws --protocol chat.example "/api/v1/tasks/$id/stream" events)
expect_match '"header":"Sec-WebSocket-Protocol"' "$out" "so is one offering another"

# ---- hostile frames
out=$(ws "/api/v1/tasks/$id/stream" unmasked)
expect_eq "close 1002" "$(tail -n 1 <<<"$out")" "an unmasked client frame closes with 1002"
out=$(wst "/api/v1/tasks/$id/stream" unmasked)
expect_eq "close 1002" "$(tail -n 1 <<<"$out")" "over TLS too"
out=$(ws "/api/v1/tasks/$id/stream" oversized)
expect_eq "close 1009" "$(tail -n 1 <<<"$out")" "a frame over 1 MiB closes with 1009 (never buffered)"
out=$(ws "/api/v1/tasks/$id/stream" badopcode)
expect_eq "close 1002" "$(tail -n 1 <<<"$out")" "an unknown opcode closes with 1002"
out=$(ws "/api/v1/tasks/$id/stream" stray-continuation)
expect_eq "close 1002" "$(tail -n 1 <<<"$out")" "a continuation of nothing closes with 1002"
out=$(ws "/api/v1/tasks/$id/stream" ping)
expect_match 'pong abc' "$out" "a PING is answered with its payload"
out=$(ws "/api/v1/tasks/$id/stream" close)
expect_eq "close 1000" "$(tail -n 1 <<<"$out")" "a client's CLOSE is echoed"

# ---- the cap: four sessions at once here
for i in 1 2 3 4; do
	$WS --unix "$SOCK" --timeout 30 "/api/v1/tasks/$id/stream" events >"$T/held$i" 2>&1 &
	BG_PIDS="$BG_PIDS $!"
done
for _ in $(seq 300); do
	[ "$(cat "$T"/held? | grep -c '^status 101')" = 4 ] && break
	sleep 0.1
done
out=$(ws "/api/v1/tasks/$id/stream" events)
expect_match '^status 429' "$out" "a fifth session is refused (429)"
expect_match '"code":"WEBSOCKET_SESSIONS_EXHAUSTED"' "$out" "with its own code"
curl -s -N -m 60 -D "$T/sse-head" -o /dev/null --unix-socket "$SOCK" \
	"http://localhost/api/v1/tasks/$id/stream" &
sse=$!
expect_exit 0 "the SSE stream still answers meanwhile" wait_for 30 grep -q '^HTTP/1.1 200' "$T/sse-head"
kill "$sse" 2>/dev/null
wait "$sse" 2>/dev/null

# ---- stopping the daemon closes live sessions and waits for them
start=$(date +%s)
stop_daemon
expect_eq 0 "$DAEMON_STATUS" "the daemon stops cleanly with sessions open"
# the sessions wait 30 s for frames: a shutdown that waited for them would take that long
expect_eq 1 "$(( $(date +%s) - start < 20 ))" "without waiting for the sessions to end"
wait_for 30 grep -q '^close' "$T/held1"
expect_eq "close 1001" "$(tail -n 1 "$T/held1")" "a live session is told the daemon is going away (1001)"
BG_PIDS=

# ---- sessions disabled
start_daemon --websocket-sessions 0
out=$(ws "/api/v1/tasks/$id/stream" events)
expect_match '^status 429' "$out" "with server.websocket_sessions 0 every upgrade is refused"
expect_match '"code":"WEBSOCKET_DISABLED"' "$out" "with a code saying so"
finish
