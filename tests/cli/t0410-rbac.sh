#!/bin/bash
# Platform roles and environment visibility: role bindings decide which namespaces a user sees
# (an invisible one is 404 like a missing one); a viewer cannot bind themselves (refused and
# audited); a token mapped by a principal mapping acts as the mapped user with its team and
# role, and disabling the mapping takes effect at once; vm_visible for members, non-members,
# approvers and operators across environments; a disabled user sees nothing; hostile input.
. "$top_srcdir/tests/helpers/lib.sh"

start_daemon_tls --tls-client-ca "$T/pki/ca.crt"
for ns in web-test:test db-test:test web-prod:prod; do
	shp namespace create "${ns%%:*}" --environment "${ns##*:}" >/dev/null
done

# ---- bindings and what they show --------------------------------------------------------
expect_exit 0 "role bind: a test-only viewer" shp role bind tess viewer --env test
expect_exit 0 "role bind: an operator in test and prod" shp role bind pat operator --env test,prod
expect_exit 0 "role list" shp role list -o json
expect_eq "pat:operator:prod,test tess:viewer:test" \
	"$(jq -r '[.[] | "\(.user):\(.role):\(.allowed_environments | sort | join(","))"] | join(" ")' <<<"$OUT")" \
	"role list shows both bindings with their environments"
expect_exit 0 "role list --user" shp role list --user tess -o json
expect_eq tess "$(jq -r '[.[].user] | unique | join(",")' <<<"$OUT")" "--user filters"

expect_exit 0 "the test-only user lists namespaces" as tess namespace list -o json
expect_eq "db-test web-test" "$(jq -r '[.[].name] | join(" ")' <<<"$OUT")" "and sees only test ones"
expect_exit 4 "a prod namespace by name is not found (exit 4)" as tess namespace show web-prod
body=$(api_as tess GET /api/v1/namespaces/web-prod)
expect_eq 404 "$(code)" "the API answers 404 for the invisible namespace"
missing=$(api_as tess GET /api/v1/namespaces/no-such-ns)
expect_eq "$(jq -c '.error | del(.request_id, .message, .details)' <<<"$missing")" \
	"$(jq -c '.error | del(.request_id, .message, .details)' <<<"$body")" \
	"exactly like a missing one"
expect_eq "namespace 'web-prod' not found" "$(jq -r .error.message <<<"$body")" "with the same message"
expect_exit 0 "the test+prod user sees every namespace" as pat namespace list -o json
expect_eq 3 "$(jq length <<<"$OUT")" "all three"
expect_exit 0 "and a prod one by name" as pat namespace show web-prod -o json
expect_exit 0 "a user without binding lists namespaces" as nobody namespace list -o json
expect_eq 0 "$(jq length <<<"$OUT")" "and sees none"
expect_exit 4 "nor one by name" as nobody namespace show web-test
expect_exit 5 "namespace writes stay platform-admin" as pat namespace create x --environment test

expect_exit 0 "whoami shows the roles" as pat whoami -o json
expect_eq '[{"allowed_environments":["test","prod"],"role":"operator"}]' \
	"$(jq -cS .roles <<<"$OUT")" "operator in test and prod"
expect_eq '[]' "$(jq -c .systems <<<"$OUT")" "and no systems"

# ---- permission escalation --------------------------------------------------------------
expect_exit 5 "a viewer cannot bind themselves platform-admin (exit 5)" \
	as tess role bind tess platform-admin --env test,prod
expect_match "platform-admin" "$ERR" "the refusal names the role needed"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE actor = 'tess' AND action = 'ROLE_BINDING_SET' AND outcome = 'denied'")" \
	"the attempt is audited as denied"
expect_exit 5 "nor create a mapping" as tess rbac map token tess/t-tess --user tess --role approver --env prod
expect_exit 5 "nor list bindings" as tess role list
expect_eq 0 "$(sql "SELECT count(*) FROM role_bindings b JOIN users u ON u.id = b.user_id WHERE u.name = 'tess' AND b.role <> 'viewer'")" \
	"nothing was granted"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'ROLE_BINDING_SET' AND resource_name = 'pat/operator' AND outcome = 'success' AND details->>'role' = 'operator'")" \
	"a binding is audited with what it grants"

# ---- principal mappings -----------------------------------------------------------------
user_token ci-bot >/dev/null
expect_exit 0 "map the CI token to a user, a team and a role" \
	shp rbac map token ci-bot/t-ci-bot --user deployer --team shop --team-role member --role viewer --env test -o json
mid=$(jq -r .id <<<"$OUT")
expect_eq "true deployer shop member viewer test" \
	"$(jq -r '"\(.enabled) \(.user_name) \(.team) \(.team_role) \(.role) \(.allowed_environments | join(","))"' <<<"$OUT")" \
	"the mapping as created"
expect_exit 0 "the mapped token's whoami" as ci-bot whoami -o json
expect_eq deployer "$(jq -r .name <<<"$OUT")" "acts as the mapped user"
expect_match '^token:[0-9]+$' "$(jq -r .principal <<<"$OUT")" "keeping its own principal"
expect_eq '[{"role":"member","system":"shop"}]' "$(jq -cS .systems <<<"$OUT")" "with the mapping's team"
expect_eq '[{"allowed_environments":["test"],"role":"viewer"}]' "$(jq -cS .roles <<<"$OUT")" "and role"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'USER_CREATE' AND resource_name = 'deployer'")" \
	"the mapped user was created on first contact, audited"
expect_eq 0 "$(sql "SELECT count(*) FROM tenant_members m JOIN users u ON u.id = m.user_id WHERE u.name = 'deployer'")" \
	"the team is not copied into tenant_members"
expect_eq member "$(sql "SELECT user_system_role(id, 'shop') FROM users WHERE name = 'deployer'")" \
	"user_system_role sees the mapped membership"
expect_exit 0 "the mapped user sees test namespaces" as ci-bot namespace list -o json
expect_eq "db-test web-test" "$(jq -r '[.[].name] | join(" ")' <<<"$OUT")" "only test ones"
expect_exit 0 "the mapped member reads its tenant's members" as ci-bot tenant members shop -o json
expect_eq "deployer:true" "$(jq -r '.[] | "\(.user):\(.mapped)"' <<<"$OUT")" "marked as mapped"
expect_exit 0 "rbac list" shp rbac list -o json
expect_eq "token ci-bot/t-ci-bot" "$(jq -r '.[0] | "\(.principal_kind) \(.principal)"' <<<"$OUT")" "lists the mapping"

expect_exit 0 "rbac disable" shp rbac disable "$mid"
expect_exit 0 "the token's whoami after disabling" as ci-bot whoami -o json
expect_eq "ci-bot [] []" "$(jq -rc '"\(.name) \(.roles) \(.systems)"' <<<"$OUT")" \
	"acts as its own user again, without the team or role"
expect_exit 0 "namespace list after disabling" as ci-bot namespace list -o json
expect_eq 0 "$(jq length <<<"$OUT")" "sees nothing"
expect_eq "" "$(sql "SELECT user_system_role(id, 'shop') FROM users WHERE name = 'deployer'")" \
	"a disabled mapping grants no membership"
expect_exit 0 "rbac enable" shp rbac enable "$mid"
expect_exit 0 "whoami after enabling" as ci-bot whoami -o json
expect_eq deployer "$(jq -r .name <<<"$OUT")" "the mapping holds again"

body=$(api PUT "/api/v1/rbac/mappings/$mid" -H 'Content-Type: application/json' \
	-d '{"principal_kind":"token","principal":"ci-bot/t-ci-bot","user_name":"deployer","role":"approver","allowed_environments":["prod","test"]}')
expect_eq 200 "$(code)" "PUT replaces the mapping"
expect_eq "null null approver true" "$(jq -r '"\(.team) \(.team_role) \(.role) \(.enabled)"' <<<"$body")" \
	"a full replacement: the team is gone"
expect_exit 0 "whoami after the replacement" as ci-bot whoami -o json
expect_eq '[] [{"allowed_environments":["test","prod"],"role":"approver"}]' \
	"$(jq -cS '"\(.systems) \(.roles)"' -r <<<"$OUT")" "approver in both, member of nothing"
expect_eq 1 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'RBAC_MAPPING_UPDATE' AND resource_name = '$mid' AND details->>'role' = 'approver'")" \
	"the update is audited with the new mapping"

# a unix mapping: the admin running this test acts as another (admin) user
me=$(id -un)
expect_exit 0 "map the local account" shp rbac map unix "$me" --user ops --role platform-admin --env test,prod -o json
umid=$(jq -r .id <<<"$OUT")
expect_exit 0 "whoami over the socket" shp whoami -o json
expect_eq "ops true uid:$(id -u)" "$(jq -r '"\(.name) \(.is_admin) \(.principal)"' <<<"$OUT")" \
	"the account acts as the mapped user, platform-admin through the mapping"
expect_exit 0 "the mapped admin removes the mapping" shp rbac unmap "$umid"
expect_exit 0 "whoami after unmapping" shp whoami -o json
expect_eq "$me" "$(jq -r .name <<<"$OUT")" "the account is itself again"
expect_exit 0 "unmap the token" shp rbac unmap "$mid"

# certificates: the subject as RFC 4514 writes it; a mapped subject needs no user of its own
cert_whoami() {
	curl -s -o "$T/body" -w '%{http_code}' --cacert "$T/pki/ca.crt" --cert "$T/pki/$1.crt" \
		--key "$T/pki/$1.key" "https://127.0.0.1:$TLS_PORT/api/v1/whoami" >"$T/code"
	cat "$T/body"
}
user_token bob >/dev/null
cert_whoami bob >/dev/null
expect_eq 401 "$(code)" "a certificate whose common name is another user's is refused"
expect_exit 0 "map the certificate subject" \
	shp rbac map cert "O=shepherd tests,CN=bob" --user bob-cert --role viewer --env prod
body=$(cert_whoami bob)
expect_eq 200 "$(code)" "the mapped certificate gets in"
expect_eq "bob-cert cert:O=shepherd tests,CN=bob" "$(jq -r '"\(.name) \(.principal)"' <<<"$body")" \
	"as the mapped user, with the subject as its principal"
expect_eq 0 "$(sql "SELECT count(*) FROM principals WHERE kind = 'cert' AND subject LIKE '%bob%'")" \
	"and no identity of its own"
expect_exit 0 "disable the certificate mapping" shp rbac disable "$(shp rbac list -o json | jq -r '.[] | select(.principal_kind == "cert") | .id')"
cert_whoami bob >/dev/null
expect_eq 401 "$(code)" "disabled, the certificate is refused again"
expect_eq 3 "$(sql "SELECT count(DISTINCT action) FROM audit_log WHERE action IN ('RBAC_MAPPING_CREATE', 'RBAC_MAPPING_UPDATE', 'RBAC_MAPPING_DELETE') AND outcome = 'success'")" \
	"create, update and delete are audited"

# ---- vm_visible across members, non-members, approvers and operators ----------------------
sql "INSERT INTO users (name) VALUES ('mem'), ('non'), ('appr'), ('oper')"
sql "INSERT INTO tenant_members (tenant_id, user_id, role) SELECT 'shop', id, 'member' FROM users WHERE name = 'mem'"
sql "INSERT INTO role_bindings (user_id, role, allowed_environments)
     SELECT id, CASE name WHEN 'appr' THEN 'approver' WHEN 'oper' THEN 'operator' ELSE 'viewer' END::platform_role,
            CASE name WHEN 'oper' THEN '{prod}' ELSE '{test}' END::environment[]
       FROM users WHERE name IN ('mem', 'non', 'appr', 'oper')"
vis() { sql "SELECT vm_visible(id, '$2', '$3') FROM users WHERE name = '$1'"; }
expect_eq t "$(vis mem shop test)" "a member sees its system in its environment"
expect_eq f "$(vis mem shop prod)" "not in another environment"
expect_eq f "$(vis mem other test)" "nor another system"
expect_eq f "$(vis non shop test)" "a viewer who is no member sees nothing of the system"
expect_eq t "$(vis appr other test)" "an approver sees every system in its environment"
expect_eq f "$(vis appr other prod)" "not in another"
expect_eq t "$(vis oper other prod)" "an operator sees every system in its environment"
expect_eq f "$(vis oper shop test)" "not in another"

# ---- a disabled user ---------------------------------------------------------------------
sql "UPDATE users SET disabled_at = now() WHERE name IN ('pat', 'appr')"
expect_eq "{}" "$(sql "SELECT user_envs(id, '{platform-admin,approver,operator,viewer}') FROM users WHERE name = 'pat'")" \
	"a disabled user has no environments"
expect_eq f "$(vis appr other test)" "and sees no VM"
expect_exit 5 "a disabled user is refused" as pat namespace list

# ---- pagination and hostile input ----------------------------------------------------------
page=$(api GET '/api/v1/rolebindings?limit=2')
cur=$(jq -r .next_cursor <<<"$page")
expect_match '^[A-Za-z0-9_-]+$' "$cur" "a page of bindings has a cursor"
next=$(api GET "/api/v1/rolebindings?limit=2&cursor=$cur")
keys='[.items[] | .user + "/" + .role]'
all=$(api GET /api/v1/rolebindings | jq -c "$keys")
expect_eq "$(jq -c '.[0:4]' <<<"$all")" \
	"$(jq -cn --argjson a "$(jq -c "$keys" <<<"$page")" --argjson b "$(jq -c "$keys" <<<"$next")" '$a + $b')" \
	"the next page continues where the first ended"
api GET '/api/v1/rolebindings?cursor=!!' >/dev/null
expect_eq 400 "$(code)" "a broken cursor is refused"
api GET '/api/v1/rbac/mappings?cursor=YWJj' >/dev/null
expect_eq 400 "$(code)" "a cursor that is no id is refused"

before=$(sql "SELECT count(*) FROM role_bindings")
put_rb() { api PUT "/api/v1/rolebindings/$1" -H 'Content-Type: application/json' -d "$2" >/dev/null; code; }
expect_eq 400 "$(put_rb bob/superuser '{"allowed_environments":["test"]}')" "an unknown role"
expect_eq 400 "$(put_rb bob/viewer '{"allowed_environments":[]}')" "no environment"
expect_eq 400 "$(put_rb bob/viewer '{"allowed_environments":["test","test"]}')" "a duplicate environment"
expect_eq 400 "$(put_rb bob/viewer '{"allowed_environments":["staging"]}')" "an unknown environment"
expect_eq 400 "$(put_rb bob/viewer '{"allowed_environments":"test"}')" "not an array"
expect_eq 400 "$(put_rb bob/viewer '{"allowed_environments":[1]}')" "a number"
expect_eq 400 "$(put_rb bob/viewer '{"allowed_environments":["test"],"admin":true}')" "an unknown field"
expect_eq 400 "$(put_rb bob/viewer '{"allowed_environments":')" "malformed JSON"
expect_eq 400 "$(put_rb bob/viewer '{}')" "a missing field"
expect_eq 400 "$(put_rb 'bob%0Aroot/viewer' '{"allowed_environments":["test"]}')" "a user name with a newline"
expect_eq 400 "$(put_rb "$(printf 'x%.0s' {1..130})/viewer" '{"allowed_environments":["test"]}')" "a user name too long"
expect_eq "$before" "$(sql "SELECT count(*) FROM role_bindings")" "no binding was written"
api DELETE /api/v1/rolebindings/nobody/viewer >/dev/null
expect_eq 404 "$(code)" "unbinding what is not bound: 404"
expect_exit 7 "the CLI checks the environment list" shp role bind bob viewer --env test,staging
expect_exit 7 "and duplicates" shp role bind bob viewer --env prod,prod

before=$(sql "SELECT count(*) FROM rbac_mappings")
map() { api POST /api/v1/rbac/mappings -H 'Content-Type: application/json' -d "$1" >/dev/null; code; }
ok='"principal_kind":"token","principal":"x/y","user_name":"u"'
expect_eq 400 "$(map "{$ok,\"team\":\"shop\"}")" "a team without team_role"
expect_eq 400 "$(map "{$ok,\"team_role\":\"member\"}")" "a team_role without team"
expect_eq 400 "$(map "{$ok,\"team\":\"Bad_Team\",\"team_role\":\"member\"}")" "a hostile team name"
expect_eq 400 "$(map "{$ok,\"team\":\"shop\",\"team_role\":\"approver\"}")" "an unknown team role"
expect_eq 400 "$(map "{$ok,\"role\":\"viewer\"}")" "a role without environments"
expect_eq 400 "$(map "{$ok,\"allowed_environments\":[\"test\"]}")" "environments without a role"
expect_eq 400 "$(map "{$ok,\"role\":\"viewer\",\"allowed_environments\":[\"prod\",\"prod\"]}")" "duplicate environments"
expect_eq 400 "$(map "{$ok}")" "a mapping that grants nothing"
expect_eq 400 "$(map "{$ok,\"role\":\"viewer\",\"allowed_environments\":[\"test\"],\"enabled\":\"yes\"}")" "enabled of the wrong type"
expect_eq 400 "$(map "{$ok,\"role\":\"viewer\",\"allowed_environments\":[\"test\"],\"owner\":\"me\"}")" "an unknown field"
expect_eq 400 "$(map '{"principal_kind":"ldap","principal":"x","user_name":"u","role":"viewer","allowed_environments":["test"]}')" "an unknown kind"
expect_eq 400 "$(map '{"principal_kind":"token","principal":"no-slash","user_name":"u","role":"viewer","allowed_environments":["test"]}')" "a token principal without owner"
expect_eq 400 "$(map '{"principal_kind":"unix","principal":"a b","user_name":"u","role":"viewer","allowed_environments":["test"]}')" "a unix principal that is no account name"
expect_eq 400 "$(map '{"principal_kind":"cert","principal":"alice","user_name":"u","role":"viewer","allowed_environments":["test"]}')" "a cert principal that is no subject"
expect_eq 400 "$(map '{"principal_kind":"token","principal":"x/y","user_name":"a\u0001b","role":"viewer","allowed_environments":["test"]}')" "a user name with a control character"
expect_eq 400 "$(map '{"principal_kind":"token","principal":7,"user_name":"u","role":"viewer","allowed_environments":["test"]}')" "a principal of the wrong type"
expect_eq "$before" "$(sql "SELECT count(*) FROM rbac_mappings")" "no mapping was written"
expect_eq 201 "$(map "{$ok,\"role\":\"viewer\",\"allowed_environments\":[\"test\"]}")" "a good mapping"
expect_eq 409 "$(map "{$ok,\"role\":\"viewer\",\"allowed_environments\":[\"prod\"]}")" "the same principal twice: 409"
expect_match "mapped already" "$(cat "$T/body")" "saying so"
api PUT /api/v1/rbac/mappings/abc -H 'Content-Type: application/json' -d "{$ok,\"role\":\"viewer\",\"allowed_environments\":[\"test\"]}" >/dev/null
expect_eq 404 "$(code)" "a mapping id that is no number: 404"
api DELETE /api/v1/rbac/mappings/999999 >/dev/null
expect_eq 404 "$(code)" "an unknown mapping: 404"
expect_exit 7 "the CLI refuses a mapping id that is no number" shp rbac unmap 1x
expect_exit 2 "the CLI wants --team-role with --team" shp rbac map token a/b --user u --team shop

finish
