#!/bin/bash
# Idempotency-Key: a repeat gets the first answer, a different request with the same key is
# refused, keys belong to their user, and of concurrent duplicates exactly one runs.
. "$top_srcdir/tests/helpers/lib.sh"

start_daemon
post() {
	local key=$1
	shift
	api POST /api/v1/namespaces -H 'Content-Type: application/json' -H "Idempotency-Key: $key" "$@"
}

first=$(post k-1 -d '{"name":"once","environment":"test"}')
expect_eq 201 "$(code)" "the first request with a key runs"
again=$(post k-1 -d '{"name":"once","environment":"test"}')
expect_eq 201 "$(code)" "a repeat gets the stored status"
expect_eq "$first" "$again" "and the stored body"
hdrs=$(curl -s -D - -o /dev/null --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
	-H 'Idempotency-Key: k-1' -d '{"name":"once","environment":"test"}' http://localhost/api/v1/namespaces)
expect_match 'Idempotent-Replayed: true' "$hdrs" "a replay says so"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'NAMESPACE_CREATE'")" "the namespace was created and audited once"

body=$(post k-1 -d '{"name":"other","environment":"test"}')
expect_eq 422 "$(code)" "the same key for a different request is refused"
expect_eq IDEMPOTENCY_KEY_REUSED "$(jq -r .error.code <<<"$body")" "with a stable code"
expect_eq 0 "$(sql "SELECT count(*) FROM namespaces WHERE name = 'other'")" "and nothing is written"

post k-2 -d '{"name":"once","environment":"test"}' >/dev/null
expect_eq 409 "$(code)" "a new key for a conflicting request gets the conflict"
post k-2 -d '{"name":"once","environment":"test"}' >/dev/null
expect_eq 409 "$(code)" "and the conflict is what a repeat gets back"

body=$(post 'bad key with spaces' -d '{"name":"x","environment":"test"}')
expect_eq 400 "$(code)" "a malformed key is refused"
long=$(head -c 300 /dev/zero | tr '\0' k)
body=$(post "$long" -d '{"name":"x","environment":"test"}')
expect_eq 400 "$(code)" "an over-long key is refused"

# Another user with the same key gets their own answer, not the replay of someone else's.
"$top_srcdir/tests/helpers/make-certs.sh" "$T/pki"
port=$((20000 + RANDOM % 20000))
stop_daemon
start_daemon --tls-listen "127.0.0.1:$port" --tls-cert "$T/pki/server.crt" --tls-key "$T/pki/server.key"
tok=$(api POST /api/v1/tokens -H 'Content-Type: application/json' -d '{"name":"t","user":"bob"}' | jq -r .token)
code=$(curl -s -o "$T/bob.json" -w '%{http_code}' --cacert "$T/pki/ca.crt" -X POST \
	-H "Authorization: Bearer $tok" -H 'Content-Type: application/json' -H 'Idempotency-Key: k-1' \
	-d '{"name":"once","environment":"test"}' "https://127.0.0.1:$port/api/v1/namespaces")
expect_eq 403 "$code" "keys are per user: bob's k-1 runs as bob's request"

# Twenty concurrent duplicates: exactly one creates, the others replay or are told to retry.
pids=()
for i in $(seq 1 20); do
	curl -s -o /dev/null -w '%{http_code}\n' --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
		-H 'Idempotency-Key: race-1' -d '{"name":"raced","environment":"prod"}' \
		http://localhost/api/v1/namespaces >>"$T/codes" &
	pids+=($!)
done
wait "${pids[@]}"
expect_eq 20 "$(grep -cE '^(201|409)$' "$T/codes")" "every duplicate got 201 or 409 ($(sort "$T/codes" | uniq -c | tr '\n' ' '))"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'NAMESPACE_CREATE' AND resource_name = 'raced'")" "exactly one of them ran"

expect_exit 0 "the CLI's own keys work end to end" shp namespace create via-cli --environment test
finish
