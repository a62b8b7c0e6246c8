#!/bin/bash
# Hostile and malformed input: every case gets the right status and error code, and nothing is
# written (no namespace row, no audit row).
. "$top_srcdir/tests/helpers/lib.sh"

start_daemon
api GET /api/v1/whoami >/dev/null    # the first contact creates the user (and its audit row)
ns_before=$(sql "SELECT count(*) FROM namespaces")
audit_before=$(sql "SELECT count(*) FROM audit_log")

post() { api POST /api/v1/namespaces -H 'Content-Type: application/json' "$@"; }

body=$(post --data-binary '{"name": "a", "environment": "test",')
expect_eq 400 "$(code)" "truncated JSON is 400"
expect_eq MALFORMED_REQUEST "$(jq -r .error.code <<<"$body")" "truncated JSON: MALFORMED_REQUEST"
expect_eq 1 "$(jq -r .error.details.line <<<"$body")" "the parse error names the line"
expect_match '^[0-9]+$' "$(jq -r .error.details.position <<<"$body")" "the parse error names the position"

body=$(post --data-binary '[1,2,3]')
expect_eq 400 "$(code)" "a non-object body is 400"

body=$(post --data-binary '{"name":"dup","name":"dup2","environment":"test"}')
expect_eq 400 "$(code)" "duplicate keys are refused"

printf '{"name":"caf\xc3","environment":"test"}' >"$T/badutf8"
body=$(post --data-binary @"$T/badutf8")
expect_eq 400 "$(code)" "invalid UTF-8 is 400"

body=$(post --data-binary '{"name":"nul\u0000x","environment":"test"}')
expect_eq 400 "$(code)" "a NUL inside a string is refused"

head -c 10485760 /dev/zero | tr '\0' 'a' >"$T/big"
body=$(post --data-binary @"$T/big")
expect_eq 413 "$(code)" "a 10 MiB body is 413"
expect_eq PAYLOAD_TOO_LARGE "$(jq -r .error.code <<<"$body")" "413 has the JSON error body"
body=$(post -H 'Transfer-Encoding: chunked' --data-binary @"$T/big")
expect_eq 413 "$(code)" "a 10 MiB chunked body (no Content-Length) is 413"

python3 -c 'print("[" * 100000)' >"$T/deep"
body=$(post --data-binary @"$T/deep")
expect_eq 400 "$(code)" "deeply nested JSON is refused without recursion"

body=$(post --data-binary '{"name":"ok-name","environment":"test","colour":"blue"}')
expect_eq 400 "$(code)" "an unknown field is 400"
expect_eq colour "$(jq -r .error.details.field <<<"$body")" "the unknown field is named"

body=$(post --data-binary '{"name":42,"environment":"test"}')
expect_eq 400 "$(code)" "a wrong type is 400"
expect_eq name "$(jq -r .error.details.field <<<"$body")" "the mistyped field is named"

body=$(post --data-binary '{"name":"x","environment":"staging"}')
expect_eq 400 "$(code)" "an unknown environment is 400"

for name in "a;rm -rf /" "x'); DROP TABLE namespaces;--" '$(reboot)' 'a`id`' "../etc" "UPPER" "-lead" "trail-" \
	"$(printf 'a%.0s' $(seq 1 64))" "" " sp"; do
	j=$(jq -cn --arg n "$name" '{name:$n, environment:"test"}')
	body=$(post --data-binary "$j")
	expect_eq 400 "$(code)" "hostile name '$name' is refused"
done

body=$(api POST /api/v1/namespaces -H 'Content-Type: text/plain' --data-binary '{"name":"ok","environment":"test"}')
expect_eq 415 "$(code)" "a body that is not application/json is 415"

body=$(api POST /api/v1/namespaces --data-binary '')
expect_eq 415 "$(code)" "no content type is 415"
body=$(post --data-binary '')
expect_eq 400 "$(code)" "an empty body is 400"

body=$(api GET '/api/v1/namespaces/%ff%fe')
expect_eq 400 "$(code)" "a path parameter that is not UTF-8 is 400"
body=$(api GET '/api/v1/namespaces?limit=100000')
expect_eq 400 "$(code)" "a page size over the limit is 400"
body=$(api GET '/api/v1/namespaces?cursor=%%%')
expect_eq 400 "$(code)" "a malformed cursor is 400"
body=$(api GET "/api/v1/namespaces/$(printf 'b%.0s' $(seq 1 300))")
expect_eq 400 "$(code)" "an over-long path parameter is refused"

long=$(head -c 2000 /dev/zero | tr '\0' 'd')
body=$(post --data-binary "{\"name\":\"ok\",\"environment\":\"test\",\"description\":\"$long\"}")
expect_eq 400 "$(code)" "an over-long description is refused"

expect_eq "$ns_before" "$(sql "SELECT count(*) FROM namespaces")" "no namespace was written"
expect_eq "$audit_before" "$(sql "SELECT count(*) FROM audit_log")" "no audit row was written"

body=$(api GET /health/live)
expect_eq 200 "$(code)" "the daemon still serves after all of it"

# A header section over the limit is refused by the HTTP layer, and the daemon lives on.
big_header=$(head -c 70000 /dev/zero | tr '\0' 'h')
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -H "X-Big: $big_header" http://localhost/health/live)
expect_match '^(413|431)$' "$code" "an oversized header is refused ($code)"
body=$(api GET /health/live)
expect_eq 200 "$(code)" "the daemon still serves after an oversized header"
finish
