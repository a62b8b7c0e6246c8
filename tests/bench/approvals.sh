#!/bin/bash
# The approvers' workbench under load, printed (never asserted): 100,000 pending tickets (each
# with its domain event) are seeded, then the daemon answers GET /api/v1/approvals over its
# Unix socket: the first page, a page 90,000 tickets deep in the keyset (reached by walking
# the cursor), and a filtered page. Median and p95 in ms over BENCH_ROUNDS requests each.
# Runs inside tests/helpers/with-postgres.sh (make bench-approvals does that).
set -eu
: "${SHEPHERDD:?}" "${SHP_TEST_PGURL:?}"
TICKETS=${BENCH_TICKETS:-100000}
ROUNDS=${BENCH_ROUNDS:-200}

T=$(mktemp -d "${TMPDIR:-/tmp}/shp-bench.XXXXXX")
SOCK="$T/shepherdd.sock"
"$SHEPHERDD" --database-url "$SHP_TEST_PGURL" --state-dir "$T/state" --socket "$SOCK" \
	--log-level warn >"$T/daemon.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 1 300); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://localhost/health/ready 2>/dev/null)" = 200 ] && break
	sleep 0.1
done
# the caller (the daemon's own account) becomes a platform admin on first contact
curl -s --unix-socket "$SOCK" http://localhost/api/v1/whoami >/dev/null

seed_start=$(date +%s.%N)
psql -X -q -o /dev/null -v ON_ERROR_STOP=1 -v n="$TICKETS" "$SHP_TEST_PGURL" <<'SQL'
INSERT INTO namespaces (name, environment)
    SELECT 'bench-ns-' || i, CASE WHEN i % 2 = 0 THEN 'test' ELSE 'prod' END::environment
      FROM generate_series(1, 20) i;
INSERT INTO domain_events (id, type, payload, actor, tenant, status, created_at)
    SELECT i, 'CREATE_VM',
           jsonb_build_object('name', 'vm-' || i, 'namespace', 'bench-ns-' || (i % 20 + 1),
                              'service', 'svc', 'system', 'sys', 'template', 'ubuntu',
                              'size', 'small'),
           'user-' || (i % 50), 'sys', 'PENDING', now() - (i % 30) * interval '1 day'
      FROM generate_series(1, :n) i;
SELECT setval('domain_events_id_seq', :n);
INSERT INTO approval_tickets (event_id, request_type, requester, system, service, namespace,
                              environment, target_name, approval_level, runbook_url,
                              expires_at, created_at)
    SELECT i, 'CREATE_VM', 'user-' || (i % 50), 'sys', 'svc', 'bench-ns-' || (i % 20 + 1),
           CASE WHEN (i % 20 + 1) % 2 = 0 THEN 'test' ELSE 'prod' END::environment,
           'vm-' || i, 2, 'https://shepherd.invalid/runbooks/vm-create',
           now() + interval '30 days',
           now() - (i % 30) * interval '1 day' - (i % 86400) * interval '1 second'
      FROM generate_series(1, :n) i;
ANALYZE domain_events;
ANALYZE approval_tickets;
SQL
seed_s=$(awk -v a="$seed_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

python3 - "$SOCK" "$ROUNDS" "$TICKETS" "$seed_s" <<'PY'
import http.client, json, socket, statistics, sys, time

sock_path, rounds, tickets, seed_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])

class UnixConnection(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(sock_path)

conn = UnixConnection("localhost")

def get(path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        sys.exit(f"GET {path}: {r.status} {body[:300]!r}")
    return json.loads(body)

def timed(path):
    for _ in range(10):
        get(path)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        get(path)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]

# walk the keyset 500 at a time to a page 90% deep
depth, cursor, walk0 = 0, None, time.perf_counter()
while depth < tickets * 9 // 10:
    page = get("/api/v1/approvals?limit=500" + (f"&cursor={cursor}" if cursor else ""))
    depth += len(page["items"])
    cursor = page["next_cursor"]
    if not cursor:
        break
walk_s = time.perf_counter() - walk0

cases = [
    ("first page (50)", "/api/v1/approvals?limit=50"),
    (f"page {depth} deep (50)", f"/api/v1/approvals?limit=50&cursor={cursor}"),
    ("filtered: namespace+type+requester (50)",
     "/api/v1/approvals?limit=50&namespace=bench-ns-7&type=CREATE_VM&requester=user-6"),
    ("filtered: environment=test (50)", "/api/v1/approvals?limit=50&environment=test"),
]
print(f"\nshepherd approvals workbench benchmark: {tickets} pending tickets "
      f"(seeded in {seed_s:.1f} s), {rounds} requests per case")
print(f"{'case':<46} {'median ms':>10} {'p95 ms':>10}")
for name, path in cases:
    med, p95 = timed(path)
    print(f"{name:<46} {med:>10.2f} {p95:>10.2f}")
print(f"walking the keyset to depth {depth} in pages of 500: {walk_s:.2f} s")
PY
