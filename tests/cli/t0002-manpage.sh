#!/bin/bash
# shepherd(1) carries the COMMANDS and GLOBAL OPTIONS sections that the command table
# generates, and renders without warnings.
set -u
: "${top_srcdir:?run through make check or tests/helpers/run-test.sh}" "${SHEPHERD:?}"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"
	[ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/#   /'
	return 0
}
T=$(mktemp -d "${TMPDIR:-/tmp}/shp-t0002.XXXXXX")
trap 'rm -rf "$T"' EXIT
page=$top_srcdir/man/shepherd.1

# between WHAT: the lines between the BEGIN and END GENERATED WHAT markers.
between() {
	awk -v b=".\\\\\" BEGIN GENERATED $1" -v e=".\\\\\" END GENERATED $1" '
		$0 == e { inside = 0 }
		inside { print }
		$0 == b { inside = 1; found++ }
		END { exit found == 1 ? 0 : 1 }' "$page"
}

for pair in COMMANDS:__man-commands OPTIONS:__man-options; do
	what=${pair%%:*}
	if ! between "$what" >"$T/page"; then
		not_ok "shepherd(1) has one generated $what block"
		continue
	fi
	"$SHEPHERD" "${pair#*:}" >"$T/generated"
	if d=$(diff -u "$T/page" "$T/generated"); then
		ok "the $what block of shepherd(1) is what 'shepherd ${pair#*:}' prints"
	else
		not_ok "the $what block of shepherd(1) is what 'shepherd ${pair#*:}' prints" "$d"
	fi
done

# Every command and verb that --help lists has an entry (--help reads the table independently of
# the man page generator).
commands=$("$SHEPHERD" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z_-]*\) .*/\1/p')
[ -n "$commands" ] || not_ok "shepherd --help lists commands"
for cmd in $commands; do
	verbs=$("$SHEPHERD" "$cmd" --help | sed -n '/^Verbs:/,/^$/s/^  \([a-z_-]*\) .*/\1/p')
	if [ -z "$verbs" ]; then
		entries=("$cmd")
	else
		entries=()
		for v in $verbs; do entries+=("$cmd $v"); done
	fi
	for entry in "${entries[@]}"; do
		if grep -q "^\\\\fBshepherd $entry\\\\fR" "$page"; then
			ok "shepherd(1) documents 'shepherd $entry'"
		else
			not_ok "shepherd(1) documents 'shepherd $entry'"
		fi
	done
done

for section in NAME SYNOPSIS DESCRIPTION "GLOBAL OPTIONS" COMMANDS OUTPUT CONFIGURATION \
	"EXIT STATUS" ENVIRONMENT FILES EXAMPLES "SEE ALSO"; do
	if grep -qx "\.SH \"\?$section\"\?" "$page"; then
		ok "shepherd(1) has a $section section"
	else
		not_ok "shepherd(1) has a $section section"
	fi
done

if command -v groff >/dev/null; then
	if warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1) && [ -z "$warnings" ]; then
		ok "groff renders shepherd(1) without warnings"
	else
		not_ok "groff renders shepherd(1) without warnings" "$warnings"
	fi
else
	echo "# groff is not installed: rendering not checked"
fi

echo "1..$n"
[ "$failed" -eq 0 ]
