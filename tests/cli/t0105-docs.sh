#!/bin/bash
# The documentation stays in step with the code: every route of the daemon is in docs/api.yaml
# (and nothing more), shepherd.conf(5)'s key list is the one the daemon generates, every flag it
# names is in --help, the man pages format without warnings, and the systemd unit is sane.
# No daemon is started.
. "$top_srcdir/tests/helpers/lib.sh"

API_YAML="$top_srcdir/docs/api.yaml"
CONF_MAN="$top_srcdir/man/shepherd.conf.5"
DAEMON_MAN="$top_srcdir/man/shepherdd.8"
UNIT="$top_srcdir/contrib/shepherdd.service.in"

# "METHOD PATH" for every operation under the top-level `paths:` of an OpenAPI file written
# with two-space indentation (paths at two spaces, methods at four).
documented_operations() {
	awk '
		/^[^ #]/ { in_paths = ($0 ~ /^paths:[[:space:]]*$/); path = ""; next }
		in_paths && /^  [^ #]/ {
			path = $0
			sub(/^  /, "", path)
			sub(/:[[:space:]]*$/, "", path)
			gsub(/^["\047]|["\047]$/, "", path)
			next
		}
		in_paths && path != "" && /^    (get|put|post|delete|patch|head|options):[[:space:]]*$/ {
			m = $1
			sub(/:$/, "", m)
			print toupper(m) " " path
		}
	' "$1"
}

# The lines of file $1 that are not lines of file $2.
missing_from() {
	grep -Fxv -f "$2" "$1"
}

# (a) routes <-> docs/api.yaml
"$SHEPHERDD" --list-routes >"$T/routes" 2>"$T/routes.err"
expect_eq 0 $? "shepherdd --list-routes succeeds"
expect_match '^GET /api/v1/version$' "$(cat "$T/routes")" "the route list has the expected shape"
documented_operations "$API_YAML" >"$T/documented"
expect_match '^GET /api/v1/version$' "$(cat "$T/documented")" "operations are read from docs/api.yaml"

missing=$(missing_from "$T/routes" "$T/documented")
if [ -z "$missing" ] && [ -s "$T/routes" ]; then
	pass "every route of shepherdd is documented in docs/api.yaml ($(wc -l <"$T/routes") routes)"
else
	fail "every route of shepherdd is documented in docs/api.yaml" "undocumented: $missing"
fi

stale=$(missing_from "$T/documented" "$T/routes")
if [ -z "$stale" ]; then
	pass "docs/api.yaml documents no route shepherdd does not have"
else
	fail "docs/api.yaml documents no route shepherdd does not have" "not in the daemon: $stale"
fi

# The comparison itself must notice a route that is not documented.
{ cat "$T/routes"; echo "GET /api/v1/no-such-route"; } >"$T/routes+fake"
if missing_from "$T/routes+fake" "$T/documented" | grep -Fxq "GET /api/v1/no-such-route"; then
	pass "the route check reports an undocumented route"
else
	fail "the route check reports an undocumented route" "it did not report GET /api/v1/no-such-route"
fi

# (b) the generated key list of shepherd.conf(5)
"$SHEPHERDD" --man-config-keys >"$T/keys" 2>"$T/keys.err"
expect_eq 0 $? "shepherdd --man-config-keys succeeds"
sed -n '/^\.\\" BEGIN GENERATED KEYS$/,/^\.\\" END GENERATED KEYS$/p' "$CONF_MAN" | sed '1d;$d' \
	>"$T/man-keys"
if [ -s "$T/keys" ] && diff -u "$T/man-keys" "$T/keys" >"$T/keys.diff"; then
	pass "shepherd.conf(5)'s key list is what --man-config-keys generates"
else
	fail "shepherd.conf(5)'s key list is what --man-config-keys generates" \
		"regenerate the block between BEGIN/END GENERATED KEYS:
$(head -n 40 "$T/keys.diff")"
fi

# (c) every flag the key list names is in --help
"$SHEPHERDD" --help >"$T/help" 2>&1
grep -o '\\-\\-[a-z0-9][a-z0-9-]*' "$T/keys" | sed 's/\\-/-/g' | sort -u >"$T/flags"
nflags=$(wc -l <"$T/flags")
if [ "$nflags" -gt 0 ]; then
	pass "the key list names $nflags flags"
else
	fail "the key list names flags" "$(head -n 20 "$T/keys")"
fi
absent=
while read -r flag; do
	grep -Eq -e "(^|[[:space:],])${flag}([[:space:]=,]|$)" "$T/help" || absent="$absent $flag"
done <"$T/flags"
expect_eq "" "$absent" "every flag of the key list is in shepherdd --help"

# (d) the man pages format without warnings
if command -v groff >/dev/null 2>&1; then
	for page in "$DAEMON_MAN" "$CONF_MAN"; do
		out=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
		expect_eq "" "$out" "groff has no warnings for $(basename "$page")"
	done
else
	note "groff is not installed: the man pages' formatting is not checked"
	pass "groff has no warnings for the man pages # SKIP groff is not installed"
fi

# (e) the systemd unit
unit=$(cat "$UNIT")
expect_match '^Type=notify$' "$unit" "shepherdd.service is Type=notify"
expect_match '^ExecStart=[^[:space:]]*/?shepherdd([[:space:]]|$)' "$unit" \
	"shepherdd.service starts shepherdd"

# docs/api.yaml is YAML (when PyYAML is there to say so)
if command -v python3 >/dev/null 2>&1 && python3 -c 'import yaml' 2>/dev/null; then
	out=$(python3 -c 'import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
assert d["openapi"].startswith("3.0"), "not OpenAPI 3.0"
assert d["paths"], "no paths"' "$API_YAML" 2>&1)
	expect_eq "" "$out" "docs/api.yaml parses as an OpenAPI 3.0 document"
else
	pass "docs/api.yaml parses as YAML # SKIP python3 with PyYAML is not available"
fi

finish
