#!/bin/bash
# The TLS listener: bearer tokens (created over the socket, stored hashed, revocable, expiring),
# client certificates verified against the configured CA (mTLS), and non-admins refused —
# with the refusal audited.
. "$top_srcdir/tests/helpers/lib.sh"

"$top_srcdir/tests/helpers/make-certs.sh" "$T/pki"
port=$((20000 + RANDOM % 20000))
start_daemon --tls-listen "127.0.0.1:$port" --tls-cert "$T/pki/server.crt" --tls-key "$T/pki/server.key" \
	--tls-client-ca "$T/pki/ca.crt"
URL="https://127.0.0.1:$port"

tls() {
	local method=$1 path=$2
	shift 2
	curl -s -o "$T/body" -w '%{http_code}' -X "$method" --cacert "$T/pki/ca.crt" "$URL$path" "$@" >"$T/code"
	cat "$T/body"
}

body=$(tls GET /health/live)
expect_eq 200 "$(code)" "TLS listener serves /health/live"
body=$(tls GET /api/v1/whoami)
expect_eq 401 "$(code)" "no credentials over TLS is 401"
expect_eq UNAUTHENTICATED "$(jq -r .error.code <<<"$body")" "401 has the JSON error body"

# An admin (the socket owner) creates a token for a service account "ci-bot".
body=$(api POST /api/v1/tokens -H 'Content-Type: application/json' -d '{"name":"pipeline","user":"ci-bot","expires_in":"1d"}')
expect_eq 201 "$(code)" "an admin creates a token for a new service account"
tok=$(jq -r .token <<<"$body")
expect_match '^shp_[A-Za-z0-9_-]{43}$' "$tok" "the token has the documented shape"
expect_eq true "$(jq .user_created <<<"$body")" "the service account was created"
expect_eq 0 "$(sql "SELECT count(*) FROM api_tokens WHERE encode(token_hash, 'escape') LIKE '%$tok%'")" "the token itself is not stored"
expect_eq 1 "$(sql "SELECT count(*) FROM api_tokens WHERE token_hash = sha256(convert_to('$tok', 'UTF8'))")" "its SHA-256 is"
if grep -q "$tok" "$T/daemon.log"; then fail "the token never reaches the log"; else pass "the token never reaches the log"; fi
expect_eq 0 "$(sql "SELECT count(*) FROM audit_log WHERE details::text LIKE '%$tok%'")" "the token never reaches the audit log"

body=$(tls GET /api/v1/whoami -H "Authorization: Bearer $tok")
expect_eq 200 "$(code)" "the token authenticates over TLS"
expect_eq ci-bot "$(jq -r .name <<<"$body")" "the token maps to its user"
expect_eq token "$(jq -r .auth_method <<<"$body")" "auth method is token"
expect_eq false "$(jq .is_admin <<<"$body")" "a service account is no admin"

body=$(tls POST /api/v1/namespaces -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' -d '{"name":"sneaky","environment":"prod"}')
expect_eq 403 "$(code)" "a non-admin cannot create a namespace"
expect_eq FORBIDDEN "$(jq -r .error.code <<<"$body")" "403 has the JSON error body"
expect_eq 0 "$(sql "SELECT count(*) FROM namespaces WHERE name = 'sneaky'")" "nothing was created"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'NAMESPACE_CREATE' AND outcome = 'denied' AND actor = 'ci-bot' AND resource_name = 'sneaky'")" "the refusal is audited"

body=$(tls POST /api/v1/tokens -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' -d '{"name":"escalate","user":"root"}')
expect_eq 403 "$(code)" "a non-admin cannot mint a token for another user"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'TOKEN_CREATE' AND outcome = 'denied' AND actor = 'ci-bot'")" "the escalation attempt is audited"

body=$(tls POST /api/v1/tokens -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' -d '{"name":"own"}')
expect_eq 201 "$(code)" "a user can create a token for themselves"
own_id=$(jq .id <<<"$body")
body=$(tls GET /api/v1/tokens -H "Authorization: Bearer $tok")
expect_eq 2 "$(jq '.items | length' <<<"$body")" "a user lists only their own tokens"
expect_eq null "$(jq '.items[0].token' <<<"$body")" "listing never shows a token"
body=$(tls GET '/api/v1/tokens?all=true' -H "Authorization: Bearer $tok")
expect_eq 403 "$(code)" "a non-admin cannot list everyone's tokens"

root_tok=$(api POST /api/v1/tokens -H 'Content-Type: application/json' -d '{"name":"root-ci"}' | jq -r .token)
root_tok_id=$(sql "SELECT id FROM api_tokens WHERE name = 'root-ci'")
body=$(tls DELETE "/api/v1/tokens/$root_tok_id" -H "Authorization: Bearer $tok")
expect_eq 404 "$(code)" "someone else's token is not found for a non-admin"

body=$(tls DELETE "/api/v1/tokens/$own_id" -H "Authorization: Bearer $tok")
expect_eq 200 "$(code)" "a user revokes their own token"
expect_match '^20' "$(jq -r .revoked_at <<<"$body")" "the revocation time is recorded"

tok_id=$(sql "SELECT id FROM api_tokens WHERE name = 'pipeline'")
body=$(api DELETE "/api/v1/tokens/$tok_id")
expect_eq 200 "$(code)" "an admin revokes the service account's token"
body=$(tls GET /api/v1/whoami -H "Authorization: Bearer $tok")
expect_eq 401 "$(code)" "a revoked token is refused at once"
body=$(tls GET /api/v1/whoami -H "Authorization: Bearer shp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
expect_eq 401 "$(code)" "an unknown token is refused"
body=$(tls GET /api/v1/whoami -H "Authorization: Basic cm9vdDpyb290")
expect_eq 401 "$(code)" "basic auth is refused"

sql "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE name = 'root-ci'"
body=$(tls GET /api/v1/whoami -H "Authorization: Bearer $root_tok")
expect_eq 401 "$(code)" "an expired token is refused"

body=$(api POST /api/v1/tokens -H 'Content-Type: application/json' -d '{"name":"x","expires_in":"400d"}')
expect_eq 400 "$(code)" "a lifetime over 366 days is refused"
body=$(api POST /api/v1/tokens -H 'Content-Type: application/json' -d '{"name":"bad name!"}')
expect_eq 400 "$(code)" "a hostile token name is refused"

# mTLS: alice's certificate (signed by the CA) identifies her; mallory's (another CA) does not.
body=$(tls GET /api/v1/whoami --cert "$T/pki/alice.crt" --key "$T/pki/alice.key")
expect_eq 200 "$(code)" "a client certificate from the CA authenticates"
expect_eq alice "$(jq -r .name <<<"$body")" "the certificate's CN names the user"
expect_eq cert "$(jq -r .auth_method <<<"$body")" "auth method is cert"
expect_match '^cert:.*CN=alice' "$(jq -r .principal <<<"$body")" "the principal is the certificate subject"
body=$(tls GET /api/v1/whoami --cert "$T/pki/mallory.crt" --key "$T/pki/mallory.key")
expect_match '^(401|000)$' "$(code)" "a certificate from another CA is refused"
expect_eq 0 "$(sql "SELECT count(*) FROM principals WHERE kind = 'cert' AND subject LIKE '%root%'")" "no identity was created for it"
finish
