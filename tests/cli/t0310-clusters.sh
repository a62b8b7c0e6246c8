#!/bin/bash
# The cluster registry: simulated clusters and their instance types, clusters from a kubeconfig
# whose credentials are sealed (never in an answer, the audit log or the daemon's log), hostile
# kubeconfigs and requests refused, non-admins refused, and sealed credentials that were
# tampered with, moved or sealed under another key reported clearly on use.
. "$top_srcdir/tests/helpers/lib.sh"
. "$top_srcdir/tests/helpers/kubesim.sh"

"$top_srcdir/tests/helpers/make-certs.sh" "$T/pki"
port=$((20000 + RANDOM % 20000))
start_daemon --tls-listen "127.0.0.1:$port" --tls-cert "$T/pki/server.crt" \
	--tls-key "$T/pki/server.key" --provider-timeout 2s
URL="https://127.0.0.1:$port"
KEY="$T/state/credentials.key"
TOKEN=tok-S3CRET-7f3a9c0d41

tls() {
	local method=$1 path=$2
	shift 2
	curl -s -o "$T/body" -w '%{http_code}' -X "$method" --cacert "$T/pki/ca.crt" "$URL$path" "$@" >"$T/code"
	cat "$T/body"
}
json() { api "$@" -H 'Content-Type: application/json'; }

# kubeconfig FILE SERVER [extra cluster fields] [user fields]: a one-context kubeconfig.
kubeconfig() {
	cat >"$1" <<EOF
apiVersion: v1
kind: Config
current-context: lab
clusters:
- name: lab
  cluster:
    server: $2
${3:-}
users:
- name: admin
  user:
${4:-    token: $TOKEN}
contexts:
- name: lab
  context: {cluster: lab, user: admin, namespace: team-a}
EOF
}

# ---- the key file --------------------------------------------------------------------------
expect_eq 600 "$(stat -c %a "$KEY" 2>&1)" "the key file was created with mode 0600"
expect_eq 32 "$(stat -c %s "$KEY" 2>&1)" "the key file holds 32 bytes"
key_id=$(sha256sum "$KEY" | cut -c1-8)
expect_match "key '$key_id' loaded" "$(cat "$T/daemon.log")" "the daemon logs the key's id"

# ---- a simulated cluster -------------------------------------------------------------------
expect_exit 0 "cluster add --simulated" shp cluster add sim1 --simulated --environment test \
	--description "the demo cluster" -o json
expect_eq "simulated sim://sim1 false" "$(jq -r '"\(.kind) \(.api_url) \(.has_credentials)"' <<<"$OUT")" \
	"a simulated cluster has kind simulated, api_url sim://NAME and no credentials"
expect_exit 0 "cluster show -o json" shp cluster show sim1 -o json
# (the periodic health check may already have run: UNKNOWN or HEALTHY)
expect_match '^(UNKNOWN|HEALTHY) default array$' "$(jq -r '"\(.health) \(.default_namespace) \(.capabilities | type)"' <<<"$OUT")" \
	"a new cluster has a health state, the namespace default, its capabilities an array"
for f in kind api_url environment health health_message health_checked_at kubernetes_version \
	kubevirt_version capabilities capabilities_at default_namespace has_credentials; do
	jq -e "has(\"$f\")" <<<"$OUT" >/dev/null || fail "cluster show has '$f'" "$OUT"
done
expect_eq false "$(jq 'has("credentials") or has("credentials_key_id")' <<<"$OUT")" \
	"the cluster object has no credentials field"
expect_exit 0 "cluster show (human)" shp cluster show sim1
expect_match 'Kind: +simulated' "$OUT" "the detail view shows the kind"
expect_match 'Credentials: +none' "$OUT" "and that there are no credentials"
expect_exit 0 "cluster list" shp cluster list
expect_match '^NAME +KIND +ENVIRONMENT +HEALTH' "$OUT" "the list has NAME KIND ENVIRONMENT HEALTH"

expect_exit 0 "instancetypes list" shp instancetypes list --cluster sim1
expect_match '^NAME +CPUS +MEMORY +SCOPE' "$OUT" "the instance type table has its columns"
expect_exit 0 "instancetypes list -o json" shp instancetypes list --cluster sim1 -o json
n_it=$(jq 'length' <<<"$OUT")
if [ "${n_it:-0}" -gt 0 ]; then pass "the simulated cluster offers instance types ($n_it)"; else fail "the simulated cluster offers instance types" "$OUT"; fi
expect_eq true "$(jq 'all(.[]; .cpus > 0 and .memory_bytes > 0 and .cluster_scoped)' <<<"$OUT")" \
	"each has CPUs and memory, cluster-wide"
body=$(api GET /api/v1/clusters/sim1/preferences)
expect_eq 200 "$(code)" "preferences through the provider"
expect_eq "sim1 array" "$(jq -r '"\(.cluster) \(.items | type)"' <<<"$body")" "the answer names the cluster"
body=$(api GET '/api/v1/clusters/sim1/instancetypes?namespace=Not_A_Name')
expect_eq 400 "$(code)" "a bad namespace is refused"
body=$(api GET /api/v1/clusters/nope/instancetypes)
expect_eq 404 "$(code)" "instance types of an unknown cluster: 404"

# capabilities: what the cluster's health check detected
if "$SHEPHERDD" --list-routes | grep -qx 'POST /api/v1/clusters/{name}/health'; then
	api POST /api/v1/clusters/sim1/health >/dev/null
	expect_eq 200 "$(code)" "a health check of the simulated cluster"
else
	sql "UPDATE clusters SET capabilities = '[\"instancetypes\", \"kubevirt\", \"snapshot\"]',
		capabilities_at = now() WHERE name = 'sim1'"
fi
expect_exit 0 "cluster capabilities" shp cluster capabilities sim1
expect_match '^instancetypes$' "$OUT" "one capability per line"
expect_exit 0 "cluster capabilities -o json" shp cluster capabilities sim1 -o json
expect_eq "$(sql "SELECT capabilities FROM clusters WHERE name = 'sim1'" | jq -c .)" "$(jq -c . <<<"$OUT")" \
	"-o json prints the stored array"
expect_exit 0 "instancetypes list after the health check" shp instancetypes list --cluster sim1 -o json
expect_eq 1 "$(grep -c "cluster 'sim1': simulated provider ready" "$T/daemon.log")" \
	"the provider was built once: the health check's write to the row did not rebuild it"

# ---- a cluster from a kubeconfig -----------------------------------------------------------
kubeconfig "$T/lab.kubeconfig" https://127.0.0.1:1
expect_exit 0 "cluster add --kubeconfig" shp cluster add lab --kubeconfig "$T/lab.kubeconfig" \
	--environment prod -o json
expect_eq "kubevirt https://127.0.0.1:1 true team-a" \
	"$(jq -r '"\(.kind) \(.api_url) \(.has_credentials) \(.default_namespace)"' <<<"$OUT")" \
	"kind kubevirt, the server as api_url, sealed credentials, the context's namespace"
expect_eq "t" "$(sql "SELECT octet_length(credentials) > 28 FROM clusters WHERE name = 'lab'")" \
	"the credentials column holds a sealed blob"
expect_eq "0" "$(sql "SELECT position(convert_to('$TOKEN', 'UTF8') IN credentials) FROM clusters WHERE name = 'lab'")" \
	"the blob does not contain the token"
expect_eq "0" "$(sql "SELECT position(convert_to('S3CRET', 'UTF8') IN credentials) FROM clusters WHERE name = 'lab'")" \
	"nor any part of it"
expect_eq "$key_id" "$(sql "SELECT credentials_key_id FROM clusters WHERE name = 'lab'")" \
	"the key id is stored beside it"
for path in /api/v1/clusters/lab /api/v1/clusters; do
	body=$(api GET $path)
	if grep -q S3CRET <<<"$body"; then fail "GET $path never shows the token" "$body"; else pass "GET $path never shows the token"; fi
done
# keyset pages by name, and the environment filter
body=$(api GET '/api/v1/clusters?limit=1')
expect_eq "lab" "$(jq -r '.items[0].name' <<<"$body")" "the first page of one holds the first name"
cursor=$(jq -r .next_cursor <<<"$body")
body=$(api GET "/api/v1/clusters?limit=1&cursor=$cursor")
expect_eq "sim1" "$(jq -r '.items[0].name' <<<"$body")" "the cursor leads to the next name"
expect_eq "null" "$(jq -r .next_cursor <<<"$body")" "and the last page has no cursor"
expect_exit 0 "cluster list --environment prod" shp cluster list --environment prod -o json
expect_eq '["lab"]' "$(jq -c '[.[].name]' <<<"$OUT")" "only the prod cluster is listed"
expect_exit 0 "cluster list -o wide" shp cluster list -o wide
expect_match 'sealed' "$OUT" "wide output says the credentials are sealed"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'CLUSTER_CREATE' AND resource_name = 'lab' AND outcome = 'success'")" \
	"the registration is audited"
expect_eq 0 "$(sql "SELECT count(*) FROM audit_log WHERE details::text LIKE '%S3CRET%'")" \
	"no audit row carries the token"
expect_exit 6 "adding it again is a conflict" shp cluster add lab --kubeconfig "$T/lab.kubeconfig" --environment prod

# an unreachable cluster: 503 with the cluster's own message, not the daemon being unreachable
expect_exit 9 "instance types of an unreachable cluster" shp instancetypes list --cluster lab
expect_match "cluster 'lab'" "$ERR" "the message names the cluster"
body=$(api GET /api/v1/clusters/lab/instancetypes)
expect_eq 503 "$(code)" "the API answers 503"
expect_eq CLUSTER_UNREACHABLE "$(jq -r .error.code <<<"$body")" "with the code CLUSTER_UNREACHABLE"

# ---- hostile kubeconfigs and requests ------------------------------------------------------
kubeconfig "$T/exec.kubeconfig" https://127.0.0.1:1 "" \
	"    exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, args: [-c, 'touch $T/pwned']}"
expect_exit 7 "a kubeconfig with an exec plugin is refused" shp cluster add x1 --kubeconfig "$T/exec.kubeconfig" --environment test
expect_match 'exec' "$ERR" "the message names the exec plugin"
[ -e "$T/pwned" ] && fail "the exec plugin never runs" || pass "the exec plugin never runs"
kubeconfig "$T/file.kubeconfig" https://127.0.0.1:1 "" "    tokenFile: /etc/shadow"
expect_exit 7 "a kubeconfig with a tokenFile is refused" shp cluster add x2 --kubeconfig "$T/file.kubeconfig" --environment test
expect_match 'tokenFile' "$ERR" "the message names tokenFile"
kubeconfig "$T/insecure.kubeconfig" https://127.0.0.1:1 "    insecure-skip-tls-verify: true"
expect_exit 7 "insecure-skip-tls-verify without --allow-insecure is refused" shp cluster add x3 --kubeconfig "$T/insecure.kubeconfig" --environment test
expect_match 'allow-insecure|allow_insecure|insecure' "$ERR" "the message says why"
expect_exit 0 "with --allow-insecure it is accepted" shp cluster add x3 --kubeconfig "$T/insecure.kubeconfig" --allow-insecure --environment test
kubeconfig "$T/plain.kubeconfig" http://127.0.0.1:1
expect_exit 7 "a plain http server without --allow-insecure is refused" shp cluster add x4 --kubeconfig "$T/plain.kubeconfig" --environment test
expect_exit 2 "--context without --kubeconfig is a usage error" shp cluster add x5 --simulated --context lab --environment test
expect_exit 7 "an unknown context is refused" shp cluster add x5 --kubeconfig "$T/lab.kubeconfig" --context nope --environment test
expect_match "nope" "$ERR" "the message names the context"
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' '#' >"$T/big.kubeconfig"
expect_exit 7 "a 2 MiB kubeconfig is refused by the CLI" shp cluster add x6 --kubeconfig "$T/big.kubeconfig" --environment test
expect_match 'larger than 1 MiB' "$ERR" "the message gives the limit"
jq -n --rawfile k "$T/big.kubeconfig" '{name: "x6", environment: "test", kubeconfig: $k}' >"$T/big.json"
json POST /api/v1/clusters --data-binary @"$T/big.json" >/dev/null
expect_eq 413 "$(code)" "a 2 MiB kubeconfig is refused by the API"
printf 'clusters: [unclosed\n  - {{{\n' >"$T/bad.kubeconfig"
expect_exit 7 "a kubeconfig that is not YAML is refused" shp cluster add x7 --kubeconfig "$T/bad.kubeconfig" --environment test
expect_exit 1 "a missing kubeconfig file" shp cluster add x8 --kubeconfig "$T/missing" --environment test
body=$(json POST /api/v1/clusters -d '{"name":"x9","environment":"test","simulated":true,"api_url":"https://a"}')
expect_eq "400 INVALID_ARGUMENT" "$(code) $(jq -r .error.code <<<"$body")" "an unknown field is refused"
expect_match 'api_url' "$(jq -r .error.message <<<"$body")" "the message names the field"
body=$(json POST /api/v1/clusters -d "$(jq -n --rawfile k "$T/lab.kubeconfig" '{name: "x9", environment: "test", simulated: true, kubeconfig: $k}')")
expect_eq 400 "$(code)" "kubeconfig and simulated together are refused"
expect_match 'not both' "$(jq -r .error.message <<<"$body")" "the message says so"
body=$(json POST /api/v1/clusters -d '{"name":"x9","environment":"test"}')
expect_eq 400 "$(code)" "neither kubeconfig nor simulated is refused"
body=$(json POST /api/v1/clusters -d '{"name":"x9","environment":"test","simulated":"yes"}')
expect_eq 400 "$(code)" "simulated must be a boolean"
body=$(json POST /api/v1/clusters -d '{"name":"X 9","environment":"test","simulated":true}')
expect_eq 400 "$(code)" "a hostile name is refused"
body=$(json POST /api/v1/clusters -d '{"name":"x9","environment":"staging","simulated":true}')
expect_eq 400 "$(code)" "an unknown environment is refused"
expect_eq 0 "$(sql "SELECT count(*) FROM clusters WHERE name LIKE 'x_' AND name <> 'x3'")" "none of them was registered"

# ---- a non-admin ---------------------------------------------------------------------------
tok=$(json POST /api/v1/tokens -d '{"name":"ci","user":"ci-bot"}' | jq -r .token)
body=$(tls POST /api/v1/clusters -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
	-d '{"name":"sneaky","environment":"test","simulated":true}')
expect_eq 403 "$(code)" "a non-admin cannot add a cluster"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'CLUSTER_CREATE' AND outcome = 'denied' AND actor = 'ci-bot'")" \
	"the refusal is audited"
body=$(tls GET /api/v1/clusters -H "Authorization: Bearer $tok")
expect_eq 403 "$(code)" "a non-admin cannot list clusters"
body=$(tls GET /api/v1/clusters/sim1/instancetypes -H "Authorization: Bearer $tok")
expect_eq 403 "$(code)" "nor ask a cluster for its instance types"
body=$(tls DELETE /api/v1/clusters/sim1 -H "Authorization: Bearer $tok")
expect_eq 403 "$(code)" "nor remove a cluster"

# ---- sealed credentials that cannot be used ------------------------------------------------
kubeconfig "$T/lab2.kubeconfig" https://127.0.0.1:2
expect_exit 0 "a second kubeconfig cluster" shp cluster add lab2 --kubeconfig "$T/lab2.kubeconfig" --environment prod
sql "UPDATE clusters SET credentials = (SELECT credentials FROM clusters WHERE name = 'lab') WHERE name = 'lab2'"
expect_exit 7 "credentials copied from another cluster do not open" shp instancetypes list --cluster lab2
expect_match "cluster 'lab2'.*cannot be opened" "$ERR" "the message says they cannot be opened"
sql "UPDATE clusters SET credentials = overlay(credentials PLACING '\\x00'::bytea FROM 20 FOR 1) WHERE name = 'lab'"
expect_exit 7 "an altered blob does not open" shp instancetypes list --cluster lab
expect_match "cannot be opened" "$ERR" "the message says so"
sql "UPDATE clusters SET credentials = '\\x0011'::bytea WHERE name = 'lab'"
expect_exit 7 "a truncated blob does not open" shp instancetypes list --cluster lab
sql "UPDATE clusters SET credentials_key_id = 'deadbeef' WHERE name = 'lab2'"
expect_exit 7 "credentials sealed with another key" shp instancetypes list --cluster lab2
expect_match "sealed with key 'deadbeef', the key file holds '$key_id'" "$ERR" "the message names both keys"
body=$(api GET /api/v1/clusters/lab2/instancetypes)
expect_eq "422 CREDENTIALS_UNUSABLE" "$(code) $(jq -r .error.code <<<"$body")" "the API answers 422 CREDENTIALS_UNUSABLE"
curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://localhost/health/live >"$T/code"
expect_eq 200 "$(code)" "the daemon is still serving"

# ---- removal -------------------------------------------------------------------------------
sql "INSERT INTO vms (cluster_id, namespace, name) SELECT id, 'team-a', 'vm-1' FROM clusters WHERE name = 'lab2'"
expect_exit 6 "a cluster with VMs in shepherd is not removed" shp cluster remove lab2
expect_match "still has virtual machines" "$ERR" "the message says why"
sql "DELETE FROM vms WHERE name = 'vm-1'"
expect_exit 0 "without them it is removed" shp cluster remove lab2
expect_eq 0 "$(sql "SELECT count(*) FROM clusters WHERE name = 'lab2'")" "with its sealed credentials"
expect_exit 0 "cluster remove" shp cluster remove sim1
expect_exit 4 "the removed cluster's instance types are not found" shp instancetypes list --cluster sim1
expect_exit 0 "a new cluster of the same name" shp cluster add sim1 --simulated --environment test
expect_exit 0 "gets a provider of its own" shp instancetypes list --cluster sim1 -o json

# ---- end to end: a cluster from the API simulator's kubeconfig --------------------------------
kubesim_section() {
	expect_exit 0 "a cluster from the simulator's kubeconfig" shp cluster add kubesim --kubeconfig "$T/kubeconfig" \
		--environment test -o json
	expect_eq "kubevirt $KUBESIM_URL true" "$(jq -r '"\(.kind) \(.api_url) \(.has_credentials)"' <<<"$OUT")" \
		"its server is the api_url, its CA and token are sealed"
	expect_eq 0 "$(sql "SELECT position(convert_to('$KUBESIM_TOKEN', 'UTF8') IN credentials) FROM clusters WHERE name = 'kubesim'")" \
		"the blob does not contain the simulator's token"
	want=$(kube GET /apis/instancetype.kubevirt.io/v1beta1/virtualmachineclusterinstancetypes | jq -c '[.items[].metadata.name] | sort')
	expect_exit 0 "its instance types through shepherd" shp instancetypes list --cluster kubesim -o json
	expect_eq "$want" "$(jq -c '[.[].name] | sort' <<<"$OUT")" "the same names as the cluster's own list"
	expect_eq true "$(jq 'length > 0 and all(.[]; .cpus > 0 and .memory_bytes > 0)' <<<"$OUT")" \
		"each with CPUs and memory"
	expect_exit 0 "as a table" shp instancetypes list --cluster kubesim
	expect_match '^u1\.medium +1 +4Gi +cluster$' "$OUT" "u1.medium: 1 CPU, 4Gi, cluster-wide"
	want=$(kube GET /apis/instancetype.kubevirt.io/v1beta1/virtualmachineclusterpreferences | jq -c '[.items[].metadata.name] | sort')
	body=$(api GET /api/v1/clusters/kubesim/preferences)
	expect_eq "200 $want" "$(code) $(jq -c '[.items[].name] | sort' <<<"$body")" "its preferences through shepherd"
	expect_exit 0 "a namespace's instance types (none)" shp instancetypes list --cluster kubesim --namespace default -o json
	expect_eq 0 "$(jq length <<<"$OUT")" "the namespace has none"
	sed "s/token: .*/token: not-the-token/" "$T/kubeconfig" >"$T/wrong-token.kubeconfig"
	expect_exit 0 "a cluster with a token the simulator refuses" shp cluster add kubesim-bad \
		--kubeconfig "$T/wrong-token.kubeconfig" --environment test
	expect_exit 5 "asking it is refused by the cluster" shp instancetypes list --cluster kubesim-bad
	expect_match "cluster 'kubesim-bad'" "$ERR" "the message names the cluster"
	if grep -q "$KUBESIM_TOKEN" "$T/daemon.log"; then fail "the daemon's log never carries the simulator's token"; else pass "the daemon's log never carries the simulator's token"; fi
}
if start_kubesim; then kubesim_section; else fail "the API simulator starts"; fi

# ---- the daemon's log ----------------------------------------------------------------------
if grep -q S3CRET "$T/daemon.log"; then fail "the daemon's log never carries the token" "$(grep S3CRET "$T/daemon.log" | head -3)"; else pass "the daemon's log never carries the token"; fi
expect_match "cluster 'lab'" "$(cat "$T/daemon.log")" "log lines name the cluster"

# ---- a key file others may read stops the daemon -------------------------------------------
stop_daemon
chmod 644 "$KEY"
timeout 60 "$SHEPHERDD" --database-url "$SHP_TEST_PGURL" --state-dir "$T/state" --socket "$T/other.sock" \
	>"$T/refused.log" 2>&1
expect_eq 1 "$?" "shepherdd refuses to start with a key file of mode 0644"
expect_match "chmod 600" "$(cat "$T/refused.log")" "and says how to fix it"

finish
