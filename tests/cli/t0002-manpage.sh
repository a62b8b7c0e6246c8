#!/bin/bash
# shepherd(1) carries the COMMANDS and GLOBAL OPTIONS sections that the command table
# generates, and renders without warnings; so does each command's own page, shepherd-NOUN(1),
# whose NAME, SYNOPSIS and OPTIONS sections are generated, and which is installed and listed
# in shepherd(1)'s SEE ALSO.
set -u
: "${top_srcdir:?run through make check or tests/helpers/run-test.sh}" "${SHEPHERD:?}"
# the help is read in English, whatever catalogues are installed
export LC_ALL=C LANGUAGE=

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

# between WHAT [PAGE]: the lines between the BEGIN and END GENERATED WHAT markers.
between() {
	awk -v b=".\\\\\" BEGIN GENERATED $1" -v e=".\\\\\" END GENERATED $1" '
		$0 == e { inside = 0 }
		inside { print }
		$0 == b { inside = 1; found++ }
		END { exit found == 1 ? 0 : 1 }' "${2:-$page}"
}

# renders PAGE: groff and man(1) format it without a warning.
renders() {
	local w
	if command -v groff >/dev/null; then
		w=$(groff -man -Tutf8 -ww -z "$1" 2>&1)
		[ -z "$w" ] || { echo "$w"; return 1; }
	fi
	if command -v man >/dev/null; then
		w=$(MANWIDTH=80 man -l "$1" 2>&1 >/dev/null)
		[ -z "$w" ] || { echo "$w"; return 1; }
	fi
	return 0
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

# A page per command: shepherd-NOUN(1), its generated blocks what the table generates now.
mk=$top_srcdir/mk/i18n.am
see_also=$(sed -n '/^\.SH "\?SEE ALSO"\?$/,$p' "$page")
for cmd in $commands; do
	p=$top_srcdir/man/shepherd-$cmd.1
	if [ ! -f "$p" ]; then
		not_ok "shepherd-$cmd(1) exists"
		continue
	fi
	for what in NAME SYNOPSIS OPTIONS; do
		lower=$(echo "$what" | tr A-Z a-z)
		if ! between "$what" "$p" >"$T/page"; then
			not_ok "shepherd-$cmd(1) has one generated $what block"
			continue
		fi
		"$SHEPHERD" __man-commands "$cmd" "$lower" >"$T/generated"
		if d=$(diff -u "$T/page" "$T/generated"); then
			ok "the $what block of shepherd-$cmd(1) is what the command table generates"
		else
			not_ok "the $what block of shepherd-$cmd(1) is what the command table generates" \
				"$d (refresh it with man/update-pages.sh)"
		fi
	done
	missing=
	for section in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES "SEE ALSO"; do
		grep -qx "\.SH \"\?$section\"\?" "$p" || missing="$missing '$section'"
	done
	if [ -z "$missing" ]; then
		ok "shepherd-$cmd(1) has every section"
	else
		not_ok "shepherd-$cmd(1) has every section" "missing:$missing"
	fi
	if w=$(renders "$p"); then
		ok "shepherd-$cmd(1) renders without warnings"
	else
		not_ok "shepherd-$cmd(1) renders without warnings" "$w"
	fi
	if grep -q "man/shepherd-$cmd\.1\b" "$mk"; then
		ok "shepherd-$cmd(1) is installed (mk/i18n.am)"
	else
		not_ok "shepherd-$cmd(1) is installed (mk/i18n.am)"
	fi
	if printf '%s\n' "$see_also" | grep -qF ".BR shepherd\\-$cmd (1)"; then
		ok "shepherd(1) names shepherd-$cmd(1) in SEE ALSO"
	else
		not_ok "shepherd(1) names shepherd-$cmd(1) in SEE ALSO"
	fi
done
# ... and no page for a command that is not there
for p in "$top_srcdir"/man/shepherd-*.1; do
	noun=$(basename "$p" .1)
	noun=${noun#shepherd-}
	case " $(echo $commands) " in
	*" $noun "*) ;;
	*) not_ok "man/shepherd-$noun.1 documents a command of shepherd" ;;
	esac
done

echo "1..$n"
[ "$failed" -eq 0 ]
