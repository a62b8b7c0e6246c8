#!/bin/bash
# The daemon's HTTP surface over the real socket: health, version, status, metrics, request
# ids, 404/405, the JSON error format, and the socket's permissions.
. "$top_srcdir/tests/helpers/lib.sh"

start_daemon

body=$(api GET /health/live)
expect_eq 200 "$(code)" "/health/live answers 200"
expect_eq ok "$(printf '%s' "$body" | jq -r .status)" "/health/live says ok"

body=$(api GET /health/ready)
expect_eq 200 "$(code)" "/health/ready answers 200 with the database up and migrations current"
expect_eq "$(printf '%s' "$body" | jq .migrations.latest)" "$(printf '%s' "$body" | jq .migrations.current)" \
	"readiness reports current = latest migration"

body=$(api GET /api/v1/version)
expect_eq 1 "$(printf '%s' "$body" | jq .api_version)" "version reports the API version"

hdrs=$(curl -s -D - -o /dev/null --unix-socket "$SOCK" http://localhost/health/live)
expect_match '^X-Request-Id: [0-9a-f]{24}' "$hdrs" "every response carries a request id"
hdrs=$(curl -s -D - -o /dev/null --unix-socket "$SOCK" -H 'X-Request-Id: trace-abc.1' http://localhost/health/live)
expect_match 'X-Request-Id: trace-abc.1' "$hdrs" "a sane client request id is kept"
hdrs=$(curl -s -D - -o /dev/null --unix-socket "$SOCK" -H 'X-Request-Id: bad id;<x>' http://localhost/health/live)
expect_match '^X-Request-Id: [0-9a-f]{24}' "$hdrs" "a hostile client request id is replaced"

body=$(api GET /no/such/thing)
expect_eq 404 "$(code)" "unknown path is 404"
expect_eq NOT_FOUND "$(printf '%s' "$body" | jq -r .error.code)" "404 has the JSON error body"
expect_match '^[0-9a-f]{24}$' "$(printf '%s' "$body" | jq -r .error.request_id)" "the error body names the request id"

body=$(api PATCH /api/v1/namespaces)
expect_eq 405 "$(code)" "wrong method is 405"
expect_eq METHOD_NOT_ALLOWED "$(printf '%s' "$body" | jq -r .error.code)" "405 has the JSON error body"
hdrs=$(curl -s -D - -o /dev/null -X PATCH --unix-socket "$SOCK" http://localhost/api/v1/namespaces)
expect_match 'Allow: GET, POST' "$hdrs" "405 names the allowed methods"

body=$(api GET /api/v1/status)
expect_eq 200 "$(code)" "status answers for the owner"
expect_eq true "$(printf '%s' "$body" | jq .database.reachable)" "status: database reachable"
expect_eq 0 "$(printf '%s' "$body" | jq .migrations.pending)" "status: no pending migrations"
expect_eq false "$(printf '%s' "$body" | jq .database.embedded)" "status: external database in use"

body=$(api GET /api/v1/whoami)
expect_eq true "$(printf '%s' "$body" | jq .is_admin)" "the daemon's own account is a platform admin"
expect_eq unix "$(printf '%s' "$body" | jq -r .auth_method)" "identified by the socket peer"

metrics=$(api GET /metrics)
expect_match '^shepherd_build_info\{version="[^"]+",commit="[^"]+",api_version="1"\} 1' "$metrics" "metrics: build info"
expect_match 'shepherd_http_requests_total\{route="health_live",method="GET",status="200"\} [0-9]+' "$metrics" "metrics: requests by route and status"
expect_match 'shepherd_http_request_duration_seconds_bucket\{route="health_live",le="\+Inf"\}' "$metrics" "metrics: latency histogram"
expect_match 'shepherd_db_pool_size 8' "$metrics" "metrics: pool gauges"
expect_match 'shepherd_http_requests_total\{route="unmatched",method="",status="404"\}' "$metrics" "metrics: unmatched routes counted"

mode=$(stat -c %a "$SOCK")
expect_eq 660 "$mode" "the socket is mode 0660"

out=$("$SHEPHERDD" --check-config --database-url 'postgresql://u:hunter2@db.example/x' --state-dir "$T/x")
expect_eq 0 $? "--check-config succeeds"
case "$out" in *hunter2*) fail "--check-config masks the database password" "$out" ;; *) pass "--check-config masks the database password" ;; esac
expect_eq "$T/x/shepherdd.sock" "$(printf '%s' "$out" | jq -r '."socket.path"')" "the socket defaults into the state directory"

expect_exit 2 "an unknown flag is a usage error" "$SHEPHERDD" --no-such-flag
expect_match "unknown option '--no-such-flag'" "$ERR" "the usage error names the flag"
expect_exit 2 "a bad value is refused with status 2" "$SHEPHERDD" --check-config --http-threads 0
expect_exit 1 "an unknown key in the config file is refused" sh -c "printf 'socket:\n  pth: /x\n' > '$T/bad.yaml'; '$SHEPHERDD' --config '$T/bad.yaml' --check-config"
expect_match "unknown configuration key 'socket.pth'" "$ERR" "the error names the key"
expect_exit 0 "--help prints the option table" "$SHEPHERDD" --help
expect_match "--database-url URL" "$OUT" "--help lists --database-url"

stop_daemon
expect_eq 0 "$DAEMON_STATUS" "SIGTERM shuts the daemon down cleanly"
[ -e "$SOCK" ] && fail "the socket is removed on shutdown" || pass "the socket is removed on shutdown"
finish
