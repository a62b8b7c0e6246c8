#!/bin/bash
# The completion scripts in completions/ are what 'shepherd completion SHELL' prints from the
# command table, and the bash one completes commands, verbs, options and their values.
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
T=$(mktemp -d "${TMPDIR:-/tmp}/shp-t0001.XXXXXX")
trap 'rm -rf "$T"' EXIT

for pair in bash:shepherd.bash zsh:_shepherd fish:shepherd.fish; do
	shell=${pair%%:*}
	file=$top_srcdir/completions/${pair#*:}
	if ! "$SHEPHERD" completion "$shell" >"$T/$shell"; then
		not_ok "shepherd completion $shell runs"
	elif d=$(diff -u "$file" "$T/$shell"); then
		ok "completions/${pair#*:} is the output of 'shepherd completion $shell'"
	else
		not_ok "completions/${pair#*:} is the output of 'shepherd completion $shell'" \
			"$d
(regenerate it with: shepherd completion $shell > completions/${pair#*:})"
	fi
done

if bash -n "$top_srcdir/completions/shepherd.bash"; then ok "the bash script parses"; else not_ok "the bash script parses"; fi
for shell in zsh fish; do
	if ! command -v "$shell" >/dev/null; then
		echo "# $shell is not installed: syntax not checked"
		continue
	fi
	file=$top_srcdir/completions/_shepherd
	[ "$shell" = fish ] && file=$top_srcdir/completions/shepherd.fish
	if "$shell" -n "$file"; then ok "the $shell script parses"; else not_ok "the $shell script parses"; fi
done

# complete WORD... : what the bash completion offers for the last word.
complete_words() {
	bash -c '
		source "$1"
		shift
		COMP_WORDS=("$@")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMPREPLY=()
		_shepherd
		printf "%s\n" "${COMPREPLY[*]}"
	' _ "$top_srcdir/completions/shepherd.bash" "$@"
}

check() {
	local want=$1
	shift
	local got
	got=$(complete_words "$@")
	if [ "$got" = "$want" ]; then
		ok "'$*' completes to '$want'"
	else
		not_ok "'$*' completes to '$want'" "got: '$got'"
	fi
}

check "namespace" shepherd na
check "create delete list show" shepherd namespace ""
check "create delete list show" shepherd ns ""
check "create" shepherd --socket /tmp/s ns cr
check "add capabilities health list remove show vms" shepherd -o json cluster ""
check "test prod" shepherd namespace create x --environment ""
check "prod" shepherd namespace list --env = p
check "table wide json yaml name" shepherd -o ""
check "json" shepherd namespace list --output j
check "--environment --env --description --help" shepherd namespace create x --
check "--user --all --limit --help -h" shepherd token list -
check "bash zsh fish" shepherd completion ""
check "approve list modify preview reject show" shepherd approvals ""
check "create delete diff history list modify restart revisions show start stop" shepherd vm ""
check "CREATE_SYSTEM DELETE_SYSTEM CREATE_SERVICE DELETE_SERVICE CREATE_VM MODIFY_VM DELETE_VM START_VM STOP_VM RESTART_VM VNC_ACCESS" shepherd approvals list --type ""
check "namespace" shepherd help nam
check "add capabilities health list remove show vms" shepherd help cluster ""
check "--socket --server" shepherd --s
check "" shepherd namespace show x ""

echo "1..$n"
[ "$failed" -eq 0 ]
