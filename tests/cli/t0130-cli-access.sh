#!/bin/bash
# Who may do what, through the real CLI: the daemon unreachable (exit 3 with a hint), a second
# local user refused as a non-admin (exit 5) with the refusal audited, and a CI token used over
# TLS with --server/--token/--cacert.
. "$top_srcdir/tests/helpers/lib.sh"

expect_exit 3 "no daemon: exit 3" "$SHEPHERD" --socket "$T/nothing.sock" namespace list
expect_match "shepherdd" "$ERR" "the unreachable error hints how to start the daemon"

"$top_srcdir/tests/helpers/make-certs.sh" "$T/pki"
port=$((20000 + RANDOM % 20000))
group_args=()
if [ "$(id -u)" = 0 ]; then
	getent group shepherd-users >/dev/null || groupadd --system shepherd-users
	id shp-alice >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin -G shepherd-users shp-alice
	group_args=(--socket-group shepherd-users)
fi
start_daemon --tls-listen "127.0.0.1:$port" --tls-cert "$T/pki/server.crt" --tls-key "$T/pki/server.key" "${group_args[@]}"
shp namespace create team-a --environment test >/dev/null

if [ "$(id -u)" = 0 ]; then
	install -m 0755 "$SHEPHERD" "$T/shepherd"
	mkdir -p "$T/alice" && chown shp-alice "$T/alice"
	alice() { env -i HOME="$T/alice" PATH=/usr/bin:/bin setpriv --reuid=shp-alice --regid=shp-alice --init-groups -- "$T/shepherd" --socket "$SOCK" "$@"; }
	expect_eq "$(getent group shepherd-users | cut -d: -f3)" "$(stat -c %g "$SOCK")" "the socket belongs to the configured group"
	expect_exit 0 "a second local user reaches the daemon through the group" alice whoami -o json
	expect_eq shp-alice "$(jq -r .name <<<"$OUT")" "and is known by their account name"
	expect_eq false "$(jq -r .is_admin <<<"$OUT")" "and is no admin"
	expect_exit 5 "a non-admin cannot create a namespace (exit 5)" alice namespace create mine --environment prod
	expect_match "platform-admin" "$ERR" "the refusal names the role needed"
	expect_exit 5 "a non-admin cannot delete one" alice namespace delete team-a
	expect_exit 5 "a non-admin cannot list the audit log" alice audit list
	expect_eq 1 "$(sql "SELECT count(*) FROM namespaces WHERE name = 'team-a'")" "nothing was deleted"
	expect_eq 2 "$(sql "SELECT count(*) FROM audit_log WHERE actor = 'shp-alice' AND outcome = 'denied'")" "both refused mutations are audited"
	expect_exit 5 "a non-admin cannot mint a token for root" alice token create x --user root
else
	note "not root: the second-uid checks are covered by the token checks below"
fi

TOKEN=$(shp token create pipeline --user ci-bot --expires 1d)
expect_match '^shp_' "$TOKEN" "token create prints the token alone on stdout"
remote() { "$SHEPHERD" --server "https://127.0.0.1:$port" --cacert "$T/pki/ca.crt" "$@"; }
expect_exit 0 "the token works over TLS" remote --token "$TOKEN" whoami -o json
expect_eq ci-bot "$(jq -r .name <<<"$OUT")" "as the service account"
expect_exit 0 "SHEPHERD_TOKEN works too" env SHEPHERD_TOKEN="$TOKEN" "$SHEPHERD" --server "https://127.0.0.1:$port" --cacert "$T/pki/ca.crt" whoami
expect_exit 5 "the service account cannot create namespaces" remote --token "$TOKEN" namespace create x --environment test
expect_exit 5 "a wrong token is refused (exit 5)" remote --token shp_wrongwrongwrongwrongwrongwrongwrongwrongwro whoami
expect_exit 3 "an untrusted server certificate is refused" "$SHEPHERD" --server "https://127.0.0.1:$port" --cacert "$T/pki/evil-ca.crt" --token "$TOKEN" whoami
if grep -q "$TOKEN" "$T/daemon.log"; then fail "the token never reaches the daemon's log"; else pass "the token never reaches the daemon's log"; fi
expect_exit 0 "token list" shp token list --all -o json
expect_eq null "$(jq -r '.[0].token' <<<"$OUT")" "listing never shows tokens"
id=$(jq -r '.[] | select(.name == "pipeline") | .id' <<<"$OUT")
expect_exit 0 "token revoke" shp token revoke "$id"
expect_exit 5 "a revoked token is refused" remote --token "$TOKEN" whoami

mkdir -p "$T/home/.config/shepherd"
printf 'server: https://127.0.0.1:%s\ncacert: %s\ntoken: %s\n' "$port" "$T/pki/ca.crt" "$TOKEN" >"$T/home/.config/shepherd/config.yaml"
chmod 644 "$T/home/.config/shepherd/config.yaml"
expect_exit 2 "a world-readable config file holding a token is refused" env -u SHEPHERD_SOCKET HOME="$T/home" XDG_CONFIG_HOME= "$SHEPHERD" whoami
expect_match "config.yaml" "$ERR" "the error names the file"
printf 'sever: x\n' >"$T/home/.config/shepherd/config.yaml"
chmod 600 "$T/home/.config/shepherd/config.yaml"
expect_exit 2 "an unknown config key is refused" env HOME="$T/home" XDG_CONFIG_HOME= "$SHEPHERD" whoami
expect_match "sever" "$ERR" "the error names the key"
finish
