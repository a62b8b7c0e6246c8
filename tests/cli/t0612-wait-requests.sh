#!/bin/bash
# --wait on the commands whose answer is an accepted request: system and service create and
# delete, approvals approve. The request is followed to its end (its task live over the
# WebSocket once it has one), the exit status is its outcome (0 completed, 5 rejected), -o json
# prints the final request alone, and the verbs that finish before they return say so in help.
. "$top_srcdir/tests/helpers/lib.sh"

start_daemon_tls --execution-immediate-max 1s
shp cluster add sim-prod --simulated --environment prod >/dev/null
shp namespace create shop-prod --environment prod >/dev/null
shp role bind alice viewer --env test,prod >/dev/null
shp role bind bob approver --env test,prod >/dev/null
shp policy set CREATE_SERVICE --environment any --level 2 \
	--runbook https://runbooks.example/services >/dev/null

# decide_when USER VERB [ARGS]: approve or reject the first pending ticket as USER once there
# is one (run in the background)
decide_when() {
	local user=$1 verb=$2 t= i=0
	shift 2
	while [ $i -lt 100 ]; do
		t=$(shp approvals list --status PENDING_APPROVAL -o json | jq -r '.[0].id // empty')
		[ -n "$t" ] && break
		sleep 0.1
		i=$((i + 1))
	done
	sleep 0.5
	as "$user" approvals "$verb" "$t" "$@" >"$T/decided" 2>&1
}

expect_exit 0 "system create --wait" as alice system create depot --wait
expect_match 'request [0-9]+ is COMPLETED' "$ERR" "a record-only request is completed at once"
expect_exit 0 "system create --wait -o json" as alice system create yard --wait -o json
expect_eq "CREATE_SYSTEM COMPLETED" "$(jq -r '"\(.type) \(.status)"' <<<"$OUT")" \
	"prints the final request alone"

decide_when bob approve &
decider=$!
BG_PIDS="$BG_PIDS $decider"
expect_exit 0 "service create --wait waits for the approval" as alice service create stock \
	--system depot --wait
expect_match 'request [0-9]+ is PENDING_APPROVAL' "$ERR" "says it waits for an approval"
expect_match 'request [0-9]+ is COMPLETED' "$ERR" "and when it is done"
wait "$decider"
decide_when bob reject --reason "not this one" &
decider=$!
BG_PIDS="$BG_PIDS $decider"
expect_exit 5 "service create --wait ends rejected (exit 5)" as alice service create crate \
	--system depot --wait
expect_match 'request [0-9]+ ended REJECTED' "$ERR" "saying so"
wait "$decider"
expect_exit 0 "system delete --wait -o json" as alice system delete yard --confirm-name yard \
	--wait -o json
expect_eq "DELETE_SYSTEM COMPLETED" "$(jq -r '"\(.type) \(.status)"' <<<"$OUT")" "follows the delete"

# a VM in prod: --wait on the approval follows the ticket and the task carrying it out
expect_exit 0 "a prod VM is requested" as alice vm create web-1 --namespace shop-prod \
	--service stock --template debian-12 --size small -o json
ticket=$(jq -r .ticket_id <<<"$OUT")
expect_exit 0 "approvals approve --wait" shp -v approvals approve "$ticket" --cluster sim-prod \
	--wait
expect_match "ticket $ticket approved: task [0-9]+ runs it" "$OUT" "reports the approval"
expect_match 'following task [0-9]+ over a WebSocket' "$ERR" "follows the task over a WebSocket"
expect_match 'step_finished' "$ERR" "shows its events"
expect_match "ticket $ticket is COMPLETED" "$ERR" "to the ticket's end"
expect_exit 0 "another prod VM is requested" as alice vm create web-2 --namespace shop-prod \
	--service stock --template debian-12 --size small -o json
ticket=$(jq -r .ticket_id <<<"$OUT")
expect_exit 0 "an approver who may not see the task, -o json" as bob approvals approve \
	"$ticket" --cluster sim-prod --wait -o json
expect_match "task [0-9]+ is not yours to follow" "$ERR" "waits without following it"
expect_eq "$ticket COMPLETED" "$(jq -r '"\(.id) \(.status)"' <<<"$OUT")" \
	"to the ticket's end, printed alone"

expect_exit 0 "help of a synchronous verb" shp namespace create --help
expect_match 'completes before it returns' "$OUT" "says there is nothing to wait for"
expect_exit 0 "help of a verb with --wait" shp system create --help
expect_eq "" "$(grep 'completes before it returns' <<<"$OUT")" "does not"
finish
