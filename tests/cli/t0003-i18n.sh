#!/bin/bash
# Translation: the committed template po/shepherd.pot is current; with a pseudo-translation
# built here from it (every message prefixed with «) and a locale generated here, --help, a
# usage error and a daemon's refusal of a known code come out translated, an unknown code keeps
# the daemon's message, and neither -o json output nor the exit statuses change. The daemon is a
# small scripted HTTP server on a Unix socket, so that every answer, and every code, is known.
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
# check DESCRIPTION COMMAND...: ok when the command succeeds
check() {
	local what=$1
	shift
	if out=$("$@" 2>&1); then ok "$what"; else not_ok "$what" "$out"; fi
}
T=$(mktemp -d "${TMPDIR:-/tmp}/shp-t0003.XXXXXX")
server_pid=
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

for tool in xgettext msgen msgfilter msgfmt localedef python3; do
	if ! command -v "$tool" >/dev/null; then
		not_ok "$tool is installed (Debian packages gettext, locales, python3)"
		echo "1..$n"
		exit 1
	fi
done

# --- the template ------------------------------------------------------------------------
POTFILES_OUT=$T/POTFILES sh "$top_srcdir/po/make-pot.sh" "$top_srcdir" >"$T/shepherd.pot"
if d=$(diff -u "$top_srcdir/po/shepherd.pot" "$T/shepherd.pot"); then
	ok "po/shepherd.pot is current"
else
	not_ok "po/shepherd.pot is current (run 'make update-pot')" "$(printf '%s\n' "$d" | head -40)"
fi
if d=$(diff -u "$top_srcdir/po/POTFILES" "$T/POTFILES"); then
	ok "po/POTFILES lists the CLI's sources"
else
	not_ok "po/POTFILES lists the CLI's sources (run 'make update-pot')" "$d"
fi

# --- a pseudo-translation and a locale that gettext honours ---------------------------------
# C.UTF-8 is no good: gettext translates nothing in the C locale, whatever LANGUAGE says. A
# locale built from the C definition but named xx_XX is a real one to it, and finds "xx".
mkdir -p "$T/locale/xx/LC_MESSAGES" "$T/locpath"
sed -e 's/charset=CHARSET/charset=UTF-8/' \
	-e 's/nplurals=INTEGER; plural=EXPRESSION;/nplurals=2; plural=(n != 1);/' "$T/shepherd.pot" |
	msgen - |
	msgfilter --keep-header -o "$T/xx.po" sed -e 's/^./«&/'
check "the pseudo-translation compiles (msgfmt -c)" \
	msgfmt -c -o "$T/locale/xx/LC_MESSAGES/shepherd.mo" "$T/xx.po"
check "a locale can be generated (localedef)" \
	localedef -i C -f UTF-8 "$T/locpath/xx_XX.UTF-8"

# en RUN...: the CLI in English; xx RUN...: the same in the pseudo-language.
en() { env -u LANGUAGE LC_ALL=C SHEPHERD_LOCALEDIR="$T/locale" "$@"; }
xx() {
	env -u LANGUAGE LOCPATH="$T/locpath" LC_ALL=xx_XX.UTF-8 SHEPHERD_LOCALEDIR="$T/locale" "$@"
}

# --- the CLI's own messages ----------------------------------------------------------------
xx "$SHEPHERD" --help >"$T/help.xx" 2>&1
en "$SHEPHERD" --help >"$T/help.en" 2>&1
if grep -q '^«Usage: shepherd' "$T/help.xx" && grep -q '^  token  *«manage API tokens' "$T/help.xx"; then
	ok "--help is translated (headings and the table's summaries)"
else
	not_ok "--help is translated (headings and the table's summaries)" "$(head -12 "$T/help.xx")"
fi
if ! grep -q '«' "$T/help.en"; then
	ok "--help in the C locale is not translated"
else
	not_ok "--help in the C locale is not translated" "$(head -5 "$T/help.en")"
fi
if xx "$SHEPHERD" token create --help | grep -q -- '--expires DURATION  *«let the token expire'; then
	ok "a verb's option help is translated"
else
	not_ok "a verb's option help is translated" "$(xx "$SHEPHERD" token create --help 2>&1)"
fi

xx "$SHEPHERD" token list --bogus >"$T/out.xx" 2>"$T/err.xx"
st_xx=$?
en "$SHEPHERD" token list --bogus >"$T/out.en" 2>"$T/err.en"
st_en=$?
if grep -q "^shepherd: error: «unknown option '--bogus' for 'token list'" "$T/err.xx"; then
	ok "a usage error is translated"
else
	not_ok "a usage error is translated" "$(cat "$T/err.xx")"
fi
if [ "$st_xx" = 2 ] && [ "$st_en" = 2 ]; then
	ok "a usage error exits with 2 in both languages"
else
	not_ok "a usage error exits with 2 in both languages" "xx: $st_xx, en: $st_en"
fi

# The generators of the man pages and the completions print the table untranslated.
for gen in "__man-commands" "__man-options" "__man-commands token options" "completion bash"; do
	# shellcheck disable=SC2086
	if cmp -s <(xx "$SHEPHERD" $gen 2>&1) <(en "$SHEPHERD" $gen 2>&1); then
		ok "'shepherd $gen' does not depend on the language"
	else
		not_ok "'shepherd $gen' does not depend on the language"
	fi
done

# --- the daemon's answers ------------------------------------------------------------------
cat >"$T/daemon.py" <<'EOF'
# A scripted daemon: fixed answers by method and path, on a Unix socket.
import http.server, json, os, socketserver, sys

NS = {"name": "team-a", "environment": "test", "description": "Team A",
      "created_at": "2026-11-20T10:00:00Z", "created_by": "admin"}
ANSWERS = {
    ("GET", "/api/v1/namespaces"): (200, {"items": [NS], "next_cursor": None}),
    ("POST", "/api/v1/namespaces"): (409, {"error": {
        "code": "NAME_TAKEN", "message": "a namespace named 'team-a' already exists",
        "details": {"field": "name"}, "request_id": "req-1"}}),
    ("DELETE", "/api/v1/namespaces/team-a"): (409, {"error": {
        "code": "SOMETHING_NEW", "message": "a refusal this client has never heard of",
        "details": {"name": "team-a"}, "request_id": "req-2"}}),
    ("GET", "/api/v1/namespaces/ghost"): (404, {"error": {
        "code": "NOT_FOUND", "message": "namespace 'ghost' not found",
        "details": {"name": "ghost"}, "request_id": "req-3"}}),
}

class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        status, body = ANSWERS.get((self.command, self.path.split("?")[0]),
                                   (404, {"error": {"code": "NOT_FOUND", "message": "no route",
                                                    "details": {}, "request_id": "req-0"}}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    do_GET = do_POST = do_DELETE = answer
    def address_string(self):
        return "local"
    def log_message(self, *args):
        pass

class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

if os.path.exists(sys.argv[1]):
    os.unlink(sys.argv[1])
with Server(sys.argv[1], Handler) as s:
    print("ready", flush=True)
    s.serve_forever()
EOF
sock=$T/shepherdd.sock
python3 "$T/daemon.py" "$sock" >"$T/daemon.out" 2>&1 &
server_pid=$!
for _ in $(seq 300); do
	grep -q ready "$T/daemon.out" && break
	sleep 0.1
done
grep -q ready "$T/daemon.out" || not_ok "the scripted daemon starts" "$(cat "$T/daemon.out")"
# no configuration file of the user's
export HOME=$T XDG_CONFIG_HOME=$T/config
unset SHEPHERD_CONFIG SHEPHERD_SOCKET SHEPHERD_SERVER SHEPHERD_TOKEN SHEPHERD_OUTPUT

# run LANG NAME ARGS...: the CLI in language LANG (en or xx); out, err and status in $T/NAME.*
run() {
	local lang=$1 name=$2
	shift 2
	"$lang" "$SHEPHERD" --socket "$sock" "$@" >"$T/$name.out" 2>"$T/$name.err"
	echo $? >"$T/$name.status"
}

# -o json output is the same in every language; the table's headings are translated.
run en list-json namespace list -o json
run xx list-json-xx namespace list -o json
if cmp -s "$T/list-json.out" "$T/list-json-xx.out" && [ -s "$T/list-json.out" ] &&
	[ "$(jq -r '.[0].name' "$T/list-json.out")" = team-a ]; then
	ok "-o json output does not change with the language"
else
	not_ok "-o json output does not change with the language" \
		"$(cat "$T/list-json.out" "$T/list-json-xx.out" "$T/list-json-xx.err")"
fi
run xx list-table namespace list
if head -1 "$T/list-table.out" | grep -q '^«NAME'; then
	ok "table headings are translated"
else
	not_ok "table headings are translated" "$(cat "$T/list-table.out" "$T/list-table.err")"
fi

# known code: NAME_TAKEN with its field, said from the code and the details
run en taken namespace create team-a --environment test
run xx taken-xx namespace create team-a --environment test
if grep -q "^shepherd: error: a namespace named 'team-a' already exists" "$T/taken.err"; then
	ok "in English a refusal is the daemon's message"
else
	not_ok "in English a refusal is the daemon's message" "$(cat "$T/taken.err")"
fi
if grep -q "^shepherd: error: «the name in 'name' is already taken" "$T/taken-xx.err"; then
	ok "a refusal of a known code is translated, built from its details"
else
	not_ok "a refusal of a known code is translated, built from its details" \
		"$(cat "$T/taken-xx.err")"
fi
run en taken-json namespace create team-a --environment test -o json
run xx taken-json-xx namespace create team-a --environment test -o json
if cmp -s "$T/taken-json.out" "$T/taken-json-xx.out" &&
	[ "$(jq -r .error.code "$T/taken-json-xx.out")" = NAME_TAKEN ] &&
	[ "$(jq -r .error.message "$T/taken-json-xx.out")" = "a namespace named 'team-a' already exists" ]; then
	ok "-o json prints the daemon's error body unchanged in every language"
else
	not_ok "-o json prints the daemon's error body unchanged in every language" \
		"$(cat "$T/taken-json.out" "$T/taken-json-xx.out")"
fi
for name in taken taken-json; do
	if [ "$(cat "$T/$name.status")" = 6 ] && [ "$(cat "$T/$name-xx.status")" = 6 ]; then
		ok "the refusal exits with 6 in both languages ($name)"
	else
		not_ok "the refusal exits with 6 in both languages ($name)" \
			"en: $(cat "$T/$name.status"), xx: $(cat "$T/$name-xx.status")"
	fi
done

# NOT_FOUND with the name
run xx missing-xx namespace show ghost
if grep -q "^shepherd: error: «'ghost' not found" "$T/missing-xx.err" &&
	[ "$(cat "$T/missing-xx.status")" = 4 ]; then
	ok "NOT_FOUND is translated with the name, exit 4"
else
	not_ok "NOT_FOUND is translated with the name, exit 4" \
		"$(cat "$T/missing-xx.err" "$T/missing-xx.status")"
fi

# unknown code: the daemon's message, and the exit status of its HTTP status
run xx unknown-xx namespace delete team-a
if grep -q "^shepherd: error: a refusal this client has never heard of$" "$T/unknown-xx.err" &&
	[ "$(cat "$T/unknown-xx.status")" = 6 ]; then
	ok "an unknown code keeps the daemon's message (exit 6 from its 409)"
else
	not_ok "an unknown code keeps the daemon's message (exit 6 from its 409)" \
		"$(cat "$T/unknown-xx.err" "$T/unknown-xx.status")"
fi

echo "1..$n"
[ "$failed" -eq 0 ]
