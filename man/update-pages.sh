#!/bin/sh
# Refresh the generated blocks of shepherd-NOUN(1) pages from the command table: the lines
# between '.\" BEGIN GENERATED SECTION' and '.\" END GENERATED SECTION' become the output of
# 'shepherd __man-commands NOUN section' (tests/cli/t0002-manpage.sh checks they match).
# usage: man/update-pages.sh SHEPHERD [PAGE...]   (default: every man/shepherd-*.1)
set -eu
shepherd=${1:?usage: update-pages.sh SHEPHERD [PAGE...]}
shift
[ $# -gt 0 ] || set -- "$(dirname "$0")"/shepherd-*.1
for page; do
	noun=$(basename "$page" .1)
	noun=${noun#shepherd-}
	tmp=$(mktemp)
	# a failing generator leaves the page as it was
	if awk -v shp="$shepherd" -v noun="$noun" '
		/^\.\\" END GENERATED / { skip = 0 }
		!skip { print }
		/^\.\\" BEGIN GENERATED / {
			cmd = "\"" shp "\" __man-commands " noun " " tolower($4)
			while ((r = (cmd | getline line)) > 0)
				print line
			if (r < 0 || close(cmd) != 0)
				exit 1
			skip = 1
		}' "$page" >"$tmp"; then
		cat "$tmp" >"$page"
	else
		echo "update-pages.sh: cannot generate the blocks of $page" >&2
		rm -f "$tmp"
		exit 1
	fi
	rm -f "$tmp"
done
