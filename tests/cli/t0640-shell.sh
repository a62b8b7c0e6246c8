#!/bin/bash
# shepherd shell, prompts and daemon-backed completion with the real daemon and CLI: the shell
# off a terminal (a script: errors do not end it, the last failure's status is its own, global
# options hold, a line's own do not, one connection), on a pseudo-terminal through script(1)
# (history written 0600, TAB completing a verb and a VM name, Ctrl-C abandoning a line or
# stopping a command; each key typed once the shell is ready for it); prompts
# refused off a terminal naming the flag and answered on one; `__complete` from the daemon, from
# its cache with the daemon stopped, within its timeout when the daemon hangs or is gone; the
# generated bash completion asking for names.
. "$top_srcdir/tests/helpers/lib.sh"

start_daemon_tls
# the daemon is stopped (SIGSTOP) at times below: however the test ends, it can be shut down
trap 'kill -CONT "$DAEMON_PID" 2>/dev/null; cleanup' EXIT
export XDG_CACHE_HOME="$T/cache" XDG_STATE_HOME="$T/xdg-state" TERM=dumb
# completion waits 300 ms for the daemon by default; a loaded machine may need more, so the
# checks that want the daemon's answer wait 20 s, and those of its timeout set it back
export SHEPHERD_COMPLETE_TIMEOUT=20000
uid() { sql "SELECT id FROM users WHERE name = '$1'"; }
user_token alice >/dev/null
expect_exit 0 "a test namespace" shp namespace create team-a --environment test
expect_exit 0 "a prod namespace" shp namespace create pay-prod --environment prod
expect_exit 0 "a test cluster" shp cluster add sim1 --simulated --environment test
expect_exit 0 "a prod cluster" shp cluster add simp --simulated --environment prod
# vm NAME NAMESPACE CLUSTER: a VM row as the execution path leaves it
vm() {
	sql "INSERT INTO vms (cluster_id, namespace, name, system, service, owner_id, template,
		size, spec, cpus, memory_bytes, status)
	     SELECT c.id, '$2', '$1', 'shop', 'front', $(uid alice), 'debian-12', 'small',
		'{\"name\": \"$1\", \"namespace\": \"$2\", \"cpus\": 2}', 2, 4294967296, 'RUNNING'
	       FROM clusters c WHERE c.name = '$3'" >/dev/null
}
sql "INSERT INTO role_bindings (user_id, role, allowed_environments) VALUES
	($(uid alice), 'viewer', '{test,prod}')"
api_as alice POST /api/v1/systems -H 'Content-Type: application/json' -d '{"name": "shop"}' >/dev/null
expect_eq 202 "$(code)" "alice creates (and owns) system shop"
vm web-1 team-a sim1
vm db-1 pay-prod simp
vm db-2 pay-prod simp

# ---- the shell off a terminal: a script
script_in() { printf '%s\n' "$@"; }
expect_exit 4 "a script: the status of the last failure, though later lines succeed" \
	sh -c "$(declare -f script_in); script_in 'vm bogus list' 'namespace show nope' \
		'  # a comment' 'namespace list' | '$SHEPHERD' --socket '$SOCK' shell"
expect_match "team-a +test" "$OUT" "the lines after the failures ran"
expect_match "unknown verb 'bogus'" "$ERR" "each error is printed"
expect_match "namespace 'nope' not found|not found" "$ERR" "the not-found one too"
expect_eq 0 "$(grep -c 'shepherd (' <<<"$OUT$ERR")" "no prompt off a terminal"
expect_exit 0 "a script without failures exits 0" \
	sh -c "printf 'namespace list\nversion\n' | '$SHEPHERD' --socket '$SOCK' shell"
expect_exit 2 "an unterminated quote is reported, not run" \
	sh -c "printf 'namespace show \"team-a\nnamespace list\n' | '$SHEPHERD' --socket '$SOCK' shell"
expect_match "unterminated double quote" "$ERR" "the error says why"
expect_match "team-a" "$OUT" "and the shell went on"
expect_exit 0 "quotes and escapes split as sh does" \
	sh -c "printf '%s\n' \"namespace show 'team-a' -o json\" 'namespace show team\\-a -o json' \
		| '$SHEPHERD' --socket '$SOCK' shell"
expect_eq 2 "$(grep -c '"name": "team-a"' <<<"$OUT")" "both lines found the namespace"
expect_exit 0 "global options given to the shell hold for every line" \
	sh -c "printf 'namespace show team-a\n' | '$SHEPHERD' --socket '$SOCK' -o json shell"
expect_eq team-a "$(jq -r .name <<<"$OUT")" "JSON without asking on the line"
expect_exit 0 "a line's own options are its own" \
	sh -c "printf 'namespace show team-a -o json\nnamespace list\n' | '$SHEPHERD' --socket '$SOCK' shell"
expect_match "NAME +ENVIRONMENT" "$OUT" "the next line is a table again"
expect_exit 0 "one connection for all the lines" \
	sh -c "printf 'namespace list\nnamespace list\ncluster list\n' | '$SHEPHERD' --socket '$SOCK' -v shell"
expect_eq 1 "$(grep -c '^using socket' <<<"$ERR")" "connected once"
expect_eq 3 "$(grep -c 'GET /api/v1' <<<"$ERR")" "three requests on it"
expect_exit 2 "the shell does not start itself" sh -c "echo shell | '$SHEPHERD' --socket '$SOCK' shell"
expect_match "does not run inside the shell" "$ERR" "and says so"
expect_exit 0 "exit ends the script" sh -c "printf 'exit\nnamespace show nope\n' | '$SHEPHERD' --socket '$SOCK' shell"
expect_exit 2 "a huge line is refused, the next one runs" \
	sh -c "{ head -c 70000 /dev/zero | tr '\\0' a; printf '\nnamespace list\n'; } | '$SHEPHERD' --socket '$SOCK' shell"
expect_match "line longer than" "$ERR" "too long"
expect_match "team-a" "$OUT" "and the next line ran"
expect_exit 2 "a NUL byte is refused" sh -c "printf 'namespace\\0 list\n' | '$SHEPHERD' --socket '$SOCK' shell"
expect_match "NUL byte" "$ERR" "named"

# ---- the shell on a terminal (a pseudo-terminal through script(1))
# Keys are typed when the shell is ready for them, never after a fixed pause: a Ctrl-C is a
# signal, and one typed early would stop another command (or drop input the tty had not
# handed over yet) on a loaded machine.
esc=$'\e'
tty_drive() { # OUT STEPS...: type the STEPS into what writes OUT (30 s for each wait):
	# @N     wait for the Nth prompt at the start of a line
	# ?ERE   wait for the output to match ERE
	# #N?ERE wait for the Nth line matching ERE
	# !CMD   run CMD;   anything else is typed (printf %b)
	local out=$1 step n i
	shift
	for step in "$@"; do
		case $step in
		@*) step="#${step#@}?^(${esc}\[[0-9?;]*[a-zA-Z])*shepherd \(" ;;
		\?*) step="#1$step" ;;
		esac
		case $step in
		\#*) n=${step%%\?*} n=${n#\#}
			for ((i = 0; i < 300; i++)); do
				[ "$(grep -Eac -- "${step#*\?}" "$out")" -ge "$n" ] && break
				sleep 0.1
			done
			[ "$i" -lt 300 ] || echo "tty_drive: gave up waiting for '$step'" >&2 ;;
		!*) eval "${step#!}" ;;
		*) printf '%b' "$step" ;;
		esac
	done
}
tty_run() { # COMMAND STEPS...: COMMAND (sh) on a pseudo-terminal, driven by STEPS (tty_drive)
	local cmd=$1 out rc
	shift
	out=$(mktemp -p "$T" tty.XXXXXX)
	tty_drive "$out" "$@" | pty_run "$cmd" >"$out"
	rc=$?
	cat "$out"
	return $rc
}
tty_shell() { tty_run "'$SHEPHERD' --socket '$SOCK' -v shell" "$@"; }
expect_exit 0 "the shell on a terminal" tty_shell @1 'namespace list\n' @2 'namespace sh\tteam-a\n' \
	@3 'vm show web\t\n' @4 ' vm list\n' @5 'namespace lis' '\003' @6 'version --token x\n' @7 'exit\n'
expect_match "shepherd \\($SOCK\\)> " "$OUT" "the prompt names the daemon"
expect_match "team-a +test" "$OUT" "a command ran"
expect_match "namespace show team-a" "$OUT" "TAB completed the verb"
expect_match "vm show web-1" "$OUT" "TAB completed the VM name (asked of the daemon)"
expect_match "(debian-12|web-1.*RUNNING|RUNNING)" "$OUT" "and the completed command ran"
expect_match "\\^C" "$OUT" "Ctrl-C abandoned the line"
expect_eq 0 "$(grep -c 'error: interrupted' <<<"$OUT")" "and stopped nothing"
hist="$XDG_STATE_HOME/shepherd/history"
expect_eq 600 "$(stat -c %a "$hist" 2>/dev/null)" "the history file is private"
expect_eq "namespace list|namespace show team-a|vm show web-1 |exit" "$(paste -sd '|' "$hist")" \
	"the history: not the line starting with a blank, not the abandoned one, not the token"
expect_exit 4 "an error does not end the shell, and counts" \
	tty_shell @1 'namespace show nope\n' @2 'namespace list\n' @3
expect_match "not found" "$OUT" "the error was shown"
expect_match "team-a +test" "$OUT" "the next command ran"
expect_exit 0 "Ctrl-D leaves" tty_shell @1 'namespace list\n' @2 '\004'
# Ctrl-C stops the command that runs, not the shell: one waiting for a daemon that does not
# answer (stopped), then one that follows the audit log until interrupted
kill -STOP "$DAEMON_PID"
expect_exit 4 "Ctrl-C stops a command, and the shell goes on" tty_shell \
	@1 'namespace list\n' '?-> GET /api/v1/namespaces' '\003' @2 "!kill -CONT $DAEMON_PID" \
	'namespace list\n' @3 'audit list --follow\n' '?ACTOR +ACTION +RESOURCE' '\003' \
	@4 'namespace show nope\n' @5 'exit\n'
kill -CONT "$DAEMON_PID"
expect_eq 2 "$(grep -c 'error: interrupted' <<<"$OUT")" "each says it was interrupted"
expect_match "team-a +test" "$OUT" "a command after the first ran (on a new connection)"
expect_match "ACTOR +ACTION +RESOURCE" "$OUT" "the audit log was followed until Ctrl-C"
expect_match "not found" "$OUT" "the last command ran too (its status is the shell's)"

# ---- prompts: refused off a terminal (exit 2, naming the flag), answered on one
expect_exit 2 "vm delete in prod off a terminal" as alice vm delete db-1 </dev/null
expect_match "pass --confirm-name db-1 \\(no terminal to ask on\\)" "$ERR" "names --confirm-name"
expect_exit 2 "vm delete in test off a terminal" as alice vm delete web-1 </dev/null
expect_match "pass --yes" "$ERR" "names --yes"
expect_exit 2 "approvals reject without --reason off a terminal" shp approvals reject 1 </dev/null
expect_match "pass --reason TEXT" "$ERR" "names --reason"
expect_exit 2 "system delete off a terminal" shp system delete shop </dev/null
expect_match "pass --confirm-name shop" "$ERR" "names --confirm-name"
expect_exit 2 "service delete off a terminal" shp service delete front </dev/null
expect_match "needs --yes to confirm: pass --yes" "$ERR" "names --yes"
expect_exit 1 "on a terminal, anything but y keeps the service" \
	sh -c "$(declare -f pty_run); printf 'n\n' | pty_run \"'$SHEPHERD' --socket '$SOCK' service delete front\""
expect_match "Delete service 'front'\\? \\[y/N\\]" "$OUT" "the question was asked"
expect_match "not deleted" "$OUT" "and the answer taken"
expect_eq 0 "$(sql "SELECT count(*) FROM domain_events WHERE type = 'DELETE_SERVICE'")" "no service delete requested"
expect_eq 0 "$(sql "SELECT count(*) FROM domain_events WHERE type = 'DELETE_VM'")" "nothing was requested"
user_tty() { # USER INPUT CLI-ARGS...: the CLI as USER on a pseudo-terminal, INPUT typed
	local user=$1 input=$2
	shift 2
	printf '%b' "$input" | SHEPHERD_TOKEN=$(user_token "$user") pty_run "'$SHEPHERD' \
		--server 'https://127.0.0.1:$TLS_PORT' --cacert '$T/pki/ca.crt' $*"
}
alice_tty() { user_tty alice "$@"; }
expect_exit 1 "on a terminal, another name typed deletes nothing" alice_tty 'db-9\n' vm delete db-2
expect_match "Type its name" "$OUT" "the name was asked for (readline)"
expect_match "does not match" "$OUT" "the answer was refused"
expect_exit 0 "the name typed requests the delete" alice_tty 'db-2\n' vm delete db-2
expect_eq 1 "$(sql "SELECT count(*) FROM domain_events WHERE type = 'DELETE_VM'")" "one delete requested"
expect_exit 0 "the same prompt inside the shell" alice_tty 'vm delete db-1\ndb-1\nexit\n' shell
expect_match "Type its name" "$OUT" "asked"
expect_eq 2 "$(sql "SELECT count(*) FROM domain_events WHERE type = 'DELETE_VM'")" "and requested"
# an approver rejecting without --reason is asked for it on a terminal
user_token tess >/dev/null
sql "INSERT INTO role_bindings (user_id, role, allowed_environments) VALUES
	($(uid tess), 'approver', '{prod}')"
ticket=$(sql "SELECT id FROM approval_tickets WHERE target_name = 'db-2' AND request_type = 'DELETE_VM'")
expect_exit 2 "reject without --reason off a terminal" sh -c "SHEPHERD_TOKEN='$(user_token tess)' \
	'$SHEPHERD' --server 'https://127.0.0.1:$TLS_PORT' --cacert '$T/pki/ca.crt' approvals reject $ticket </dev/null"
expect_exit 1 "on a terminal, an empty reason rejects nothing" user_tty tess '\n' approvals reject "$ticket"
expect_match "Why is ticket $ticket rejected" "$OUT" "the reason was asked for"
expect_exit 0 "the reason typed rejects the ticket" user_tty tess 'keep it a while\n' approvals reject "$ticket"
expect_eq "REJECTED keep it a while" "$(sql "SELECT status || ' ' || reason FROM approval_tickets WHERE id = $ticket")" \
	"with the reason typed"
expect_eq "vm delete db-1|exit" "$(tail -n 2 "$hist" | paste -sd '|')" \
	"the answer to a prompt is not history"
alice_shell() { # STEPS...: alice's shell over TLS on a pseudo-terminal (tty_run)
	SHEPHERD_TOKEN=$(user_token alice) tty_run "'$SHEPHERD' --server \
		'https://127.0.0.1:$TLS_PORT' --cacert '$T/pki/ca.crt' shell" "$@"
}
expect_exit 130 "Ctrl-C at a prompt inside the shell stops that command" alice_shell \
	@1 'vm delete web-1\n' '?\\[y/N\\]' '\003' @2 'namespace list\n' @3 'exit\n'
expect_match "Delete VM|web-1.*\\[y/N\\]" "$OUT" "it was asking"
expect_match "team-a +test" "$OUT" "the shell went on"
expect_eq 2 "$(sql "SELECT count(*) FROM domain_events WHERE type = 'DELETE_VM'")" "nothing more was requested"

# ---- __complete: the daemon, then its cache
rm -rf "$XDG_CACHE_HOME"
expect_exit 0 "__complete vm asks the daemon" shp __complete vm
expect_eq "db-1 db-2 web-1" "$(sort <<<"$OUT" | paste -sd ' ')" "every VM name"
expect_exit 0 "with a prefix" shp __complete vm db
expect_eq "db-1 db-2" "$(paste -sd ' ' <<<"$OUT")" "only those starting with it"
expect_exit 0 "namespaces" shp __complete namespace
expect_eq "pay-prod team-a" "$(sort <<<"$OUT" | paste -sd ' ')" "both"
cache=$(ls "$XDG_CACHE_HOME"/shepherd/names-vm-* 2>/dev/null | head -n 1)
expect_eq 600 "$(stat -c %a "$cache" 2>/dev/null)" "the cache file is private"
expect_eq 700 "$(stat -c %a "$XDG_CACHE_HOME/shepherd")" "in a private directory"
expect_exit 2 "an unknown kind is a usage error" shp __complete bogus
printf 'shepherd-names 1\nold\n' >"$XDG_CACHE_HOME/shepherd/names-vm-0123456789abcdef01234567"
touch -d '2 days ago' "$XDG_CACHE_HOME/shepherd/names-vm-0123456789abcdef01234567"
expect_exit 0 "another kind asked" shp __complete cluster
expect_eq "" "$(ls "$XDG_CACHE_HOME/shepherd" | grep 0123456789abcdef)" "a list unused for a day is removed"
expect_eq 3 "$(ls "$XDG_CACHE_HOME/shepherd" | wc -l)" "the recent ones stay (vm, namespace, cluster)"
kill -STOP "$DAEMON_PID"
# a fresh cache is not refreshed: asking the stopped daemon would take the 20 s set above
expect_exit 0 "the daemon hangs: __complete answers from the fresh cache, without asking it" \
	timeout 10 "$SHEPHERD" --socket "$SOCK" __complete vm web
expect_eq "web-1" "$OUT" "the cached name"
rm -rf "$XDG_CACHE_HOME"
start=$(date +%s%N)
expect_exit 0 "no cache, the daemon hangs: nothing, silently, once the 300 ms are over" \
	env SHEPHERD_COMPLETE_TIMEOUT=300 timeout 20 "$SHEPHERD" --socket "$SOCK" __complete vm
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_eq "" "$OUT$ERR" "no output, no error"
expect_eq 1 "$(( ms >= 250 ))" "after waiting for its timeout ($ms ms)"
kill -CONT "$DAEMON_PID"
expect_exit 0 "the daemon back" shp __complete vm web
expect_eq "web-1" "$OUT" "asked again"
touch -d '2 minutes ago' "$XDG_CACHE_HOME"/shepherd/names-vm-*
kill -STOP "$DAEMON_PID"
expect_exit 0 "a stale cache while the daemon hangs" \
	env SHEPHERD_COMPLETE_TIMEOUT=300 timeout 20 "$SHEPHERD" --socket "$SOCK" __complete vm web
expect_eq "web-1" "$OUT" "beats nothing"
kill -CONT "$DAEMON_PID"
expect_exit 0 "the cache refreshed" shp __complete vm web
expect_exit 0 "no daemon at all" timeout 10 "$SHEPHERD" --socket "$T/none.sock" __complete vm
expect_eq "" "$OUT$ERR" "nothing, silently"
sql "UPDATE vms SET name = 'web-2' WHERE name = 'web-1'"
expect_exit 0 "a fresh cache is used without asking" shp __complete vm web
expect_eq "web-1" "$OUT" "the cached answer (30 s)"
touch -d '1 minute ago' "$XDG_CACHE_HOME"/shepherd/names-vm-*
expect_exit 0 "an old one is refreshed" shp __complete vm web
expect_eq "web-2" "$OUT" "the daemon's new answer"
chmod 644 "$XDG_CACHE_HOME"/shepherd/names-vm-*
sql "UPDATE vms SET name = 'web-3' WHERE name = 'web-2'"
expect_exit 0 "a cache file open to others is not trusted" shp __complete vm web
expect_eq "web-3" "$OUT" "asked the daemon instead"

# ---- the generated bash completion asks the daemon for names
complete_bash() { # WORDS...: what bash would offer after them (the last word is completed)
	bash -c 'source <("$0" completion bash); COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _shepherd
		printf "%s\n" "${COMPREPLY[@]}"' "$SHEPHERD" "$SHEPHERD" "${@:2}"
}
rm -rf "$XDG_CACHE_HOME"
expect_eq "web-3" "$(complete_bash shepherd --socket "$SOCK" vm show w)" "bash: a VM name"
expect_eq "team-a" "$(complete_bash shepherd --socket "$SOCK" vm list --namespace te)" \
	"bash: a namespace as an option's value"
expect_eq "show" "$(complete_bash shepherd --socket "$SOCK" vm sh)" "bash: a verb"
expect_eq "" "$(complete_bash shepherd --socket "$T/none.sock" vm show w)" "bash: no daemon, no names"
# zsh and fish: their name functions against the daemon the line names (the README's test
# command installs both; a developer's make check without them skips these checks)
missing_shell() {
	if [ -n "${SHP_REQUIRE_PG:-}" ]; then
		fail "$1 is installed (contrib/install-deps.sh installs it)"
	else
		note "$1 is not installed: its completion is not checked"
	fi
}
if command -v zsh >/dev/null; then
	"$SHEPHERD" completion zsh >"$T/_shepherd"
	expect_eq "team-a" "$(zsh -f -c "$(sed -n '/^_shepherd_names() {/,/^}/p' "$T/_shepherd")
		_call_program() { shift; \"\$@\"; }
		compadd() { [[ \$1 == -a ]] && print -l -- \${(P)2}; }
		BUFFER=\"'$SHEPHERD' --socket '$SOCK' vm list --namespace te\"
		_shepherd_names namespace" | grep '^te')" "zsh: a namespace as an option's value"
else
	missing_shell zsh
fi
if command -v fish >/dev/null; then
	mkdir -p "$T/bin" && ln -sf "$SHEPHERD" "$T/bin/shepherd"
	"$SHEPHERD" completion fish >"$T/shepherd.fish"
	expect_eq "web-3" "$(PATH="$T/bin:$PATH" fish -c "source '$T/shepherd.fish'
		complete -C 'shepherd --socket $SOCK vm show w'" | cut -f1)" "fish: a VM name"
else
	missing_shell fish
fi

finish
