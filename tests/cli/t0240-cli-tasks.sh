#!/bin/bash
# The task commands of the real CLI against the real daemon: submit (inline and queued, with
# --wait following the event stream), list, show, watch, cancel and their exit statuses, the
# execution flag and tenant members, and following a task when the stream is refused.
. "$top_srcdir/tests/helpers/lib.sh"

start_daemon --http-max-streams 1
cat >"$T/noop.yaml" <<'YAML'
steps:
  - action: test.noop
    targets: [vm-1]
YAML
cat >"$T/two.yaml" <<'YAML'
steps:
  - {action: test.effect, targets: [vm-2], params: {key: two-1, ms: 200}}
  - {action: test.effect, targets: [vm-2], params: {key: two-2, ms: 200}}
YAML

expect_exit 0 "a read-only plan runs inline" shp tasks submit -f "$T/noop.yaml" --tenant team-a -o json
expect_eq succeeded "$(jq -r .status <<<"$OUT")" "and the task shown has succeeded"
expect_exit 5 "a modifying plan without --yes is refused (exit 5)" shp tasks submit -f "$T/two.yaml" --tenant team-a
expect_match "confirm" "$ERR" "the refusal says to confirm"
expect_exit 0 "--wait follows a queued task to success" shp tasks submit -f "$T/two.yaml" --tenant team-a --yes --wait -o json
expect_eq succeeded "$(jq -r .status <<<"$OUT")" "the final task is printed"
expect_eq 2 "$(jq '.steps | length' <<<"$OUT")" "with its steps"
id=$(jq .id <<<"$OUT")
expect_eq 1 "$(sql "SELECT runs FROM test_effects WHERE key = 'two-2'")" "both steps ran once"

expect_exit 0 "tasks list" shp tasks list --tenant team-a -o json
expect_eq 2 "$(jq length <<<"$OUT")" "lists the tenant's tasks"
expect_exit 0 "tasks show" shp tasks show "$id"
expect_match "test.effect" "$OUT" "show prints the steps"
expect_exit 0 "tasks watch of a finished task" shp tasks watch "$id"
expect_match "step_finished" "$ERR" "prints its events"

# a stream slot taken by a slow watcher: the second follower falls back to polling
printf 'steps:\n  - {action: test.effect, targets: [vm-3], params: {key: slow, ms: 3000}}\n' >"$T/slow.yaml"
expect_exit 0 "a slow task is queued" shp tasks submit -f "$T/slow.yaml" --tenant team-a --yes -o json
slow=$(jq .id <<<"$OUT")
curl -s -N --max-time 8 --unix-socket "$SOCK" "http://localhost/api/v1/tasks/$slow/stream" \
	>"$T/held-stream" &
watcher=$!
wait_for 30 grep -q 'stream open' "$T/held-stream" || fail "a stream holds the daemon's slot"
expect_exit 0 "with the stream refused, following polls to the end" shp tasks watch "$slow" -o json
expect_eq succeeded "$(jq -r .status <<<"$OUT")" "and reports the outcome"
wait "$watcher"

printf 'steps:\n  - {action: test.effect, targets: [vm-4], params: {key: c, ms: 500}}\n  - {action: test.effect, targets: [vm-4], params: {key: d, ms: 500}}\n  - {action: test.effect, targets: [vm-4], params: {key: e, ms: 500}}\n' >"$T/long.yaml"
expect_exit 0 "a long task is queued" shp tasks submit -f "$T/long.yaml" --tenant team-a --yes -o json
long=$(jq .id <<<"$OUT")
sleep 0.3
expect_exit 0 "tasks cancel --wait ends in cancelled (exit 0)" shp tasks cancel "$long" --reason "not now" --wait -o json
expect_eq cancelled "$(jq -r .status <<<"$OUT")" "the task is cancelled"
expect_exit 6 "watching a cancelled task exits 6" shp tasks watch "$long"

printf 'steps:\n  - {action: test.sleep, targets: [t], params: {ms: 7000}}\n' >"$T/slow-read.yaml"
expect_exit 9 "a timed-out task exits 9" shp tasks submit -f "$T/slow-read.yaml" --tenant team-a --sla fast --wait

expect_exit 0 "flags set" shp flags set tenant:team-r off
expect_exit 0 "flags list" shp flags list -o json
expect_match "tenant:team-r" "$OUT" "lists the flag"
expect_exit 7 "a malformed scope is refused before sending (exit 7)" shp flags set tenant:BAD off
expect_exit 0 "flags unset" shp flags unset tenant:team-r
expect_exit 0 "tenant grant" shp tenant grant team-a dave member
expect_exit 0 "tenant members" shp tenant members team-a -o json
expect_match '"dave"' "$OUT" "lists the member"
expect_exit 0 "tenant revoke" shp tenant revoke team-a dave
expect_exit 7 "an unknown role is refused before sending (exit 7)" shp tenant grant team-a dave king
finish
