#!/bin/bash
# The audit trail through the real daemon and CLI: the filters by ticket, outcome, actor and
# time (with their hostile values refused), the export of every entry as JSON lines oldest
# first with stable field names, and audit list --follow printing a new entry as it comes and
# going on across a restart of the daemon.
. "$top_srcdir/tests/helpers/lib.sh"

start_daemon_tls
user_token bob >/dev/null
ticket=42
# ---- audit filters, export, follow
sql "INSERT INTO audit_log (actor, action, resource_type, resource_name, outcome, details)
	VALUES ('tess', 'APPROVAL_APPROVED', 'vm', 'web-1', 'success', '{\"ticket_id\": $ticket}'),
	       ('tess', 'APPROVAL_REJECTED', 'vm', 'web-2', 'success', '{\"ticket_id\": 43}')"
expect_exit 0 "audit list --ticket" shp audit list --ticket "$ticket" -o json
expect_eq "APPROVAL_APPROVED" "$(jq -r '[.[].action] | join(" ")' <<<"$OUT")" "the ticket's entries"
expect_exit 5 "bob may not create a namespace" as bob namespace create nope --environment test
expect_exit 0 "audit list --outcome denied --actor bob" shp audit list --outcome denied --actor bob -o json
expect_eq "NAMESPACE_CREATE" "$(jq -r '[.[].action] | join(" ")' <<<"$OUT")" "his refusal"
expect_exit 0 "audit list --since 10m" shp audit list --since 10m -o json
expect_eq "$(sql "SELECT count(*) FROM audit_log")" "$(jq length <<<"$OUT")" "everything is recent"
expect_exit 0 "audit list --until 2000-01-01T00:00:00Z" shp audit list --until 2000-01-01T00:00:00Z -o json
expect_eq 0 "$(jq length <<<"$OUT")" "nothing is that old"
expect_exit 2 "a --since that is no time" shp audit list --since yesterday-ish
expect_exit 7 "an unknown outcome (exit 7)" shp audit list --outcome maybe
for q in 'outcome=maybe' 'ticket=abc' 'since=not-a-time' 'after=-1'; do
	api GET "/api/v1/audit?$q" >/dev/null
	expect_eq 400 "$(code)" "audit ?$q is 400"
done
expect_exit 0 "audit export" shp audit export
expect_eq "$(sql "SELECT count(*) FROM audit_log")" "$(wc -l <<<"$OUT" | tr -d ' ')" "one line per entry"
expect_eq "action actor at details id outcome request_id resource_name resource_type" \
	"$(head -n 1 <<<"$OUT" | jq -r 'keys | join(" ")')" "with the stable field names"
expect_eq "$(sql "SELECT string_agg(id::text, ' ' ORDER BY id) FROM audit_log")" \
	"$(jq -r .id <<<"$OUT" | tr '\n' ' ' | sed 's/ $//')" "oldest first, every entry"
expect_exit 0 "audit export --since in the future" shp audit export --since 2999-01-01T00:00:00Z
expect_eq "" "$OUT" "writes nothing"

# the CLI itself in the background (shp is a function: $! would be a subshell, not the CLI)
"$SHEPHERD" --socket "$SOCK" audit list --follow -o json >"$T/follow" 2>"$T/follow.err" &
follower=$!
BG_PIDS+=" $follower"
sleep 1
expect_exit 0 "a new namespace" shp namespace create followed --environment test
seen=no
for _ in $(seq 1 300); do
	if grep -q '"resource_name":"followed"' "$T/follow"; then seen=yes; break; fi
	sleep 0.1
done
expect_eq yes "$seen" "audit list --follow prints the new entry"
# the daemon restarts: the follower says so once and goes on
stop_daemon
sleep 1.5
start_daemon
expect_exit 0 "another namespace once the daemon is back" shp namespace create after-restart --environment test
seen=no
for _ in $(seq 1 300); do
	if grep -q '"resource_name":"after-restart"' "$T/follow"; then seen=yes; break; fi
	sleep 0.1
done
kill "$follower" 2>/dev/null
wait "$follower" 2>/dev/null
expect_eq yes "$seen" "the follower outlives a daemon restart"
expect_eq 1 "$(grep -c '"resource_name":"followed"' "$T/follow")" "each entry printed once"
expect_eq 1 "$(grep -c 'retrying' "$T/follow.err")" "the outage is told once"

finish
