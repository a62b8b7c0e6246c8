#!/bin/bash
# The namespace and cluster registries through the real CLI: every output format, the exit
# statuses, pagination, and the audit trail they leave.
. "$top_srcdir/tests/helpers/lib.sh"

start_daemon

expect_exit 0 "namespace create" shp namespace create team-a --environment test --description "Team A"
expect_exit 0 "namespace create (prod, alias ns)" shp ns create pay-prod --environment prod
expect_exit 6 "a duplicate namespace is a conflict (exit 6)" shp namespace create team-a --environment test
expect_match "already exists" "$ERR" "the conflict message says why"
expect_exit 7 "an invalid name is refused (exit 7)" shp namespace create 'Bad_Name' --environment test
expect_match "DNS-1123" "$ERR" "the validation message explains the rule"
expect_exit 7 "an invalid environment is refused (exit 7)" shp namespace create ok --environment staging
expect_exit 2 "a missing name is a usage error (exit 2)" shp namespace create
expect_exit 2 "an unknown verb is a usage error" shp namespace frobnicate
expect_match "did you mean" "$ERR$OUT" "an unknown verb gets a hint"
expect_exit 2 "an unknown noun is a usage error" shp namespaec list
expect_match "namespace" "$ERR" "the hint names the right noun"

expect_exit 0 "namespace list (table)" shp namespace list
expect_match '^NAME +ENVIRONMENT' "$OUT" "the table has a header"
expect_match 'team-a +test' "$OUT" "the table lists team-a"
expect_exit 0 "namespace list -o wide" shp namespace list -o wide
expect_exit 0 "namespace list -o json" shp namespace list -o json
expect_eq '["pay-prod","team-a"]' "$(jq -c '[.[].name]' <<<"$OUT")" "json lists the items in name order"
expect_exit 0 "namespace list --json" shp namespace list --json
expect_eq 2 "$(jq length <<<"$OUT")" "--json is -o json"
expect_exit 0 "namespace list -o yaml" shp namespace list -o yaml
expect_match '^- ' "$OUT" "yaml output is a sequence"
expect_match 'name: team-a' "$OUT" "yaml output carries the fields"
expect_exit 0 "namespace list -o name" shp namespace list -o name
expect_eq "namespace/pay-prod
namespace/team-a" "$OUT" "name output is kind/name per line"
expect_exit 0 "namespace list --environment prod" shp namespace list --environment prod -o name
expect_eq "namespace/pay-prod" "$OUT" "the environment filter works"

expect_exit 0 "namespace show" shp namespace show team-a -o json
expect_eq "Team A" "$(jq -r .description <<<"$OUT")" "show returns the object"
expect_exit 4 "show of a missing namespace is not found (exit 4)" shp namespace show nope
expect_match "not found" "$ERR" "the not-found message names it"
expect_exit 4 "a missing namespace in json mode" shp namespace show nope -o json
expect_eq NOT_FOUND "$(jq -r .error.code <<<"$OUT")" "json mode prints the error object on stdout for scripts"

for i in $(seq -w 1 120); do echo "{\"name\":\"bulk-$i\",\"environment\":\"test\"}"; done >"$T/bulk"
while read -r j; do api POST /api/v1/namespaces -H 'Content-Type: application/json' -d "$j" >/dev/null; done <"$T/bulk"
expect_exit 0 "listing follows the pages" shp namespace list -o json
expect_eq 122 "$(jq length <<<"$OUT")" "all 122 namespaces are listed across pages"
expect_exit 0 "--limit caps the listing" shp namespace list --limit 7 -o json
expect_eq 7 "$(jq length <<<"$OUT")" "--limit 7 gives 7"

expect_exit 0 "cluster add" shp cluster add lab --simulated --environment test
printf '%s\n' 'current-context: c' 'contexts: [{name: c, context: {cluster: x, user: u}}]' \
	'clusters: [{name: x, cluster: {server: "https://u:p@x.example"}}]' \
	'users: [{name: u, user: {token: t0k3n}}]' >"$T/userinfo.kubeconfig"
expect_exit 7 "a cluster URL with credentials is refused" shp cluster add bad --kubeconfig "$T/userinfo.kubeconfig" --environment test
expect_exit 0 "cluster list -o wide" shp cluster list -o wide
expect_match 'sim://lab' "$OUT" "wide output shows the API URL"
expect_exit 0 "cluster show -o yaml" shp cluster show lab -o yaml
expect_match 'environment: test' "$OUT" "yaml shows the environment"
expect_exit 0 "cluster remove" shp cluster remove lab
expect_exit 4 "removing it again is not found" shp cluster remove lab

expect_exit 0 "namespace delete" shp namespace delete pay-prod
expect_exit 4 "deleting it again is not found" shp namespace delete pay-prod

expect_exit 0 "audit list -o json" shp audit list --action NAMESPACE_DELETE -o json
expect_eq pay-prod "$(jq -r '.[0].resource_name' <<<"$OUT")" "the delete is audited"
expect_eq root "$(jq -r '.[0].actor' <<<"$OUT")" "with its actor"
expect_exit 0 "audit list --resource-type cluster" shp audit list --resource-type cluster -o json
expect_eq "CLUSTER_DELETE CLUSTER_CREATE" "$(jq -r '[.[].action] | join(" ")' <<<"$OUT")" "cluster actions newest first"
expect_exit 0 "audit list (table)" shp audit list --limit 3
expect_match 'ACTION' "$OUT" "the audit table has a header"

out=$(sql "UPDATE audit_log SET actor = 'nobody'" 2>&1)
expect_match 'append-only' "$out" "the database refuses to update the audit log"
out=$(sql "DELETE FROM audit_log" 2>&1)
expect_match 'append-only' "$out" "the database refuses to delete from the audit log"
out=$(sql "TRUNCATE audit_log" 2>&1)
expect_match 'append-only' "$out" "the database refuses to truncate the audit log"

expect_exit 0 "version" shp version
expect_match 'server' "$OUT" "version shows the server"
expect_exit 0 "status" shp status
expect_exit 0 "whoami -o json" shp whoami -o json
expect_eq root "$(jq -r .name <<<"$OUT")" "whoami names the caller"
finish
