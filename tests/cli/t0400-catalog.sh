#!/bin/bash
# The catalogue: the seed is imported on the first start only (changes made through the API
# survive a restart), a broken seed stops the daemon with file:line and field in its log, the
# template life cycle (draft, active, deprecated, archived; one active version per name), the
# dry run on a simulated cluster, validation errors (cloud-init with its line, unknown fields,
# hostile names, wrong types, oversized bodies), export and re-import, instance sizes, and
# non-admins refused.
. "$top_srcdir/tests/helpers/lib.sh"

SEED="$top_srcdir/deploy/seed"
json() { api "$@" -H 'Content-Type: application/json'; }
detail() { jq -r ".error.details.$1 // empty" <<<"$2"; }

start_daemon_tls

# ---- the seed, imported once -------------------------------------------------------------------
expect_match "imported the seed catalogue from '$SEED'" "$(cat "$T/daemon.log")" \
	"the first start imports the seed catalogue"
expect_eq "1 5 6" "$(sql "SELECT count(*), max(templates), max(sizes) FROM seed_imports" | tr '|' ' ')" \
	"one seed_imports row: 5 templates, 6 sizes"
expect_exit 0 "template list" shp template list
expect_match '^NAME +VERSION +STATUS +OS +IMAGE' "$OUT" "the template table has its columns"
for t in debian-12 ubuntu-24-04 fedora-41 centos-stream-9 debian-12-persistent; do
	expect_match "^$t +1 +active" "$OUT" "seed template $t is active, version 1"
done
expect_exit 0 "size list -o json" shp size list -o json
expect_eq "gpu-small large medium memory-large small xlarge" "$(jq -r '[.[].name] | join(" ")' <<<"$OUT")" \
	"the seed sizes, by name"
expect_eq '2 4Gi 2 1 []' "$(jq -r '.[] | select(.name == "medium") | "\(.cpus) \(.memory) \(.cpu_overcommit) \(.memory_overcommit) \(.required_capabilities)"' <<<"$OUT")" \
	"medium: 2 CPUs, 4Gi, CPU overcommit 2"
expect_eq '["gpu"]' "$(jq -c '.[] | select(.name == "gpu-small") | .required_capabilities' <<<"$OUT")" \
	"gpu-small requires the gpu capability"
expect_eq "dataVolume docker://quay.io/containerdisks/centos-stream:9 30Gi" \
	"$(api GET /api/v1/templates/centos-stream-9 | jq -r '.image_source | "\(.type) \(.registry) \(.size)"')" \
	"centos-stream-9 imports its disk from a registry into a 30Gi data volume"

# ---- creating a version: validation and the dry run --------------------------------------------
tmpl() { # NAME [extra JSON members]
	printf '{"name":"%s","os":"debian","description":"t","image_source":{"type":"containerDisk","image":"quay.io/containerdisks/debian:12"},"cloud_init":"#cloud-config\\nhostname: x\\n","quick_fields":["cpus"]%s}' "$1" "${2:-}"
}
body=$(json POST /api/v1/templates -d "$(tmpl debian-12)")
expect_eq "201 2 draft" "$(code) $(jq -r '"\(.version) \(.status)"' <<<"$body")" \
	"a new version of debian-12 is version 2, a draft"
expect_eq "true small false no HEALTHY cluster to ask" \
	"$(jq -r '.validation | "\(.rendered) \(.rendered_with_size) \(.dry_run.ran) \(.dry_run.reason)"' <<<"$body")" \
	"rendered with the smallest size; no dry run without a HEALTHY cluster (and the answer says so)"

shp cluster add sim1 --simulated --environment test >/dev/null
shp cluster health sim1 >/dev/null
expect_exit 0 "template create from a file (with a HEALTHY simulated cluster)" \
	shp template create "$SEED/templates/fedora-41.yaml"
expect_match 'template/fedora-41 version 2 created' "$OUT" "the CLI names the new version"
expect_match "Dry run on cluster 'sim1': accepted" "$ERR" "the dry run ran on the simulated cluster, said on stderr"
body=$(json POST /api/v1/templates -d '{"name":"golden","image_source":{"type":"pvc","name":"golden-disk","namespace":"images"}}')
expect_eq "201 false sim1" "$(code) $(jq -r '"\(.validation.dry_run.ran) \(.validation.dry_run.cluster)"' <<<"$body")" \
	"a dry run the cluster cannot answer (its namespace is missing) does not block the draft"
expect_match 'namespaces "images" not found' "$(jq -r .validation.dry_run.reason <<<"$body")" \
	"and the reason is given"
expect_eq "TEMPLATE_CREATE" "$(sql "SELECT action FROM audit_log WHERE resource_name = 'golden'")" \
	"creating a version is audited"

# ---- validation errors ---------------------------------------------------------------------------
body=$(json POST /api/v1/templates -d '{"name":"t1","image_source":{"type":"containerDisk","image":"x"},"cloud_init":"#cloud-config\nusers:\n  - name: a\n   bad: [\n"}')
expect_eq "400 cloud_init 4" "$(code) $(detail field "$body") $(detail line "$body")" \
	"broken cloud-init: 400 naming cloud_init and line 4"
expect_match 'line 4' "$(jq -r .error.message <<<"$body")" "the message names the line"
body=$(json POST /api/v1/templates -d "$(tmpl t1 ',"colour":"blue"')")
expect_eq "400 colour" "$(code) $(detail field "$body")" "an unknown field is refused, named"
for bad in '../etc' 'A-B' 'x;drop' "$(printf 'a%.0s' {1..64})" ''; do
	body=$(json POST /api/v1/templates -d "$(tmpl "$bad")")
	expect_eq "400 name" "$(code) $(detail field "$body")" "hostile template name '${bad:0:20}' refused"
done
body=$(json POST /api/v1/templates -d '{"name":"t1","image_source":"quay.io/x"}')
expect_eq "400 image_source" "$(code) $(detail field "$body")" "image_source must be an object"
body=$(json POST /api/v1/templates -d '{"name":"t1","image_source":{"type":"iso","image":"x"}}')
expect_match 'containerDisk, dataVolume or pvc' "$(jq -r .error.message <<<"$body")" "an unknown image source type is refused"
body=$(json POST /api/v1/templates -d '{"name":"t1","image_source":{"type":"dataVolume","url":"file:///etc/shadow","size":"10Gi"}}')
expect_eq 400 "$(code)" "a dataVolume URL must be http(s)"
body=$(json POST /api/v1/templates -d '{"name":"t1","image_source":{"type":"containerDisk","image":"x"},"quick_fields":["cpus","shell"]}')
expect_eq "400 quick_fields[1]" "$(code) $(detail field "$body")" "quick_fields name spec fields only"
body=$(json POST /api/v1/templates -d '{"name":"t1","image_source":{"type":"containerDisk","image":"x"},"description":5}')
expect_eq "400 description" "$(code) $(detail field "$body")" "a description must be a string"
big=$(head -c 70000 /dev/zero | tr '\0' 'a')
body=$(json POST /api/v1/templates -d "{\"name\":\"t1\",\"image_source\":{\"type\":\"containerDisk\",\"image\":\"x\"},\"cloud_init\":\"$big\"}")
expect_eq "400 cloud_init" "$(code) $(detail field "$body")" "a cloud-init over 64 KiB is refused"
head -c 1200000 /dev/zero | tr '\0' 'a' >"$T/huge"
json POST /api/v1/templates --data-binary @"$T/huge" >/dev/null
expect_eq 413 "$(code)" "a body over the limit is refused with 413"
json POST /api/v1/templates -d '{"name":' >/dev/null
expect_eq 400 "$(code)" "malformed JSON is refused"
expect_eq 0 "$(sql "SELECT count(*) FROM templates WHERE name = 't1'")" "nothing was stored by refused requests"

# ---- the life cycle ---------------------------------------------------------------------------------
expect_exit 0 "publish debian-12 version 2" shp template publish debian-12 --template-version 2
expect_eq "1 deprecated 2 active" "$(sql "SELECT string_agg(version || ' ' || status, ' ' ORDER BY version) FROM templates WHERE name = 'debian-12'")" \
	"publishing deprecates the version that was active"
expect_eq "TEMPLATE_PUBLISH 1" "$(sql "SELECT action, details->>'deprecated_version' FROM audit_log WHERE action = 'TEMPLATE_PUBLISH'" | tr '|' ' ')" \
	"publishing is audited with the version it deprecated"
json POST /api/v1/templates/debian-12/publish -d '{"version":2}' >/dev/null
expect_eq 409 "$(code)" "publishing the active version again is a conflict"
expect_exit 0 "publish debian-12 version 1 again" shp template publish debian-12 --template-version 1
expect_eq "1 1" "$(sql "SELECT count(*), min(version) FROM templates WHERE name = 'debian-12' AND status = 'active'" | tr '|' ' ')" \
	"one active version per name"
expect_exit 0 "deprecate version 1" shp template deprecate debian-12 --template-version 1
expect_eq "2 deprecated" "$(api GET /api/v1/templates/debian-12 | jq -r '"\(.version) \(.status)"')" \
	"without an active version, show gives the latest"
expect_exit 0 "archive version 2" shp template archive debian-12 --template-version 2
expect_eq "1 deprecated" "$(api GET /api/v1/templates/debian-12 | jq -r '"\(.version) \(.status)"')" \
	"an archived version is not the latest"
expect_eq "" "$(api GET /api/v1/templates | jq -r '.items[] | select(.status == "archived") | .name')" \
	"archived versions are hidden from the list"
expect_eq "debian-12/2" "$(api GET '/api/v1/templates?all=true' | jq -r '.items[] | select(.status == "archived") | "\(.name)/\(.version)"')" \
	"and listed with all=true"
expect_eq "debian-12/2" "$(api GET '/api/v1/templates?status=archived' | jq -r '.items[] | "\(.name)/\(.version)"')" \
	"or with status=archived"
expect_exit 6 "an archived version cannot be published" shp template publish debian-12 --template-version 2
expect_exit 4 "an unknown version is not found" shp template publish debian-12 --template-version 9
expect_eq "archived" "$(api GET '/api/v1/templates/debian-12?version=2' | jq -r .status)" "?version=N shows any version"
api GET '/api/v1/templates?status=gone' >/dev/null
expect_eq 400 "$(code)" "an unknown status filter is refused"
expect_exit 0 "publish debian-12 version 1 once more" shp template publish debian-12 --template-version 1
expect_exit 0 "template show" shp template show debian-12
expect_match 'Versions: +1 \(active\), 2 \(archived\)' "$OUT" "show lists every version"

# ---- export and import again ---------------------------------------------------------------------
export_yaml=$(api GET /api/v1/templates/centos-stream-9/export)
expect_match '^# template centos-stream-9 version 1 \(active\)' "$export_yaml" "export: a YAML file in the seed format"
expect_exit 0 "template export" shp template export centos-stream-9
printf '%s\n' "$OUT" >"$T/centos.yaml"
expect_exit 0 "the export is created again" shp template create "$T/centos.yaml" -o json
fields='{name, description, os, image_source, cloud_init, quick_fields, advanced_fields}'
expect_eq "$(api GET '/api/v1/templates/centos-stream-9?version=1' | jq -cS "$fields")" \
	"$(api GET '/api/v1/templates/centos-stream-9?version=2' | jq -cS "$fields")" \
	"the round trip keeps every field"
mkdir -p "$T/seed2/templates"
cp "$T/centos.yaml" "$T/seed2/templates/"
cp "$SEED/sizes.yaml" "$T/seed2/"

# ---- sizes ---------------------------------------------------------------------------------------------
expect_exit 0 "size create" shp size create tiny --cpus 1 --memory 512Mi --cpu-overcommit 4 \
	--capabilities hugepages --description "a tiny one" -o json
expect_eq '1 512 512Mi 4 ["hugepages"]' "$(jq -c -r '"\(.cpus) \(.memory_mib) \(.memory) \(.cpu_overcommit) \(.required_capabilities)"' <<<"$OUT")" \
	"the size as created"
expect_exit 6 "a taken name is a conflict" shp size create tiny --cpus 1 --memory 1Gi
expect_exit 0 "size set" shp size set tiny --cpus 2 --memory-overcommit 1.5 -o json
expect_eq "2 1.5 512Mi" "$(jq -r '"\(.cpus) \(.memory_overcommit) \(.memory)"' <<<"$OUT")" "set changes what is given only"
expect_exit 0 "size delete" shp size delete tiny
expect_eq "" "$(api GET /api/v1/sizes | jq -r '.items[] | select(.name == "tiny") | .name')" "a disabled size is not listed"
expect_eq "tiny true" "$(api GET '/api/v1/sizes?all=true' | jq -r '.items[] | select(.name == "tiny") | "\(.name) \(.disabled)"')" \
	"but is with all=true"
expect_exit 0 "size set --enable" shp size set tiny --enable -o json
expect_eq false "$(jq -r .disabled <<<"$OUT")" "and can be enabled again"
expect_exit 4 "an unknown size is not found" shp size show huge
expect_eq "SIZE_CREATE SIZE_UPDATE SIZE_DISABLE SIZE_UPDATE" \
	"$(sql "SELECT string_agg(action, ' ' ORDER BY id) FROM audit_log WHERE resource_name = 'tiny' AND outcome = 'success'")" \
	"every size change is audited"
for case in '{"name":"s1","cpus":0,"memory":"1Gi"}|cpus' '{"name":"s1","cpus":"2","memory":"1Gi"}|cpus' \
	'{"name":"s1","cpus":2,"memory":"8G"}|memory' '{"name":"s1","cpus":2,"memory":"1Gi","cpu_overcommit":1.234}|cpu_overcommit' \
	'{"name":"s1","cpus":2,"memory":"1Gi","memory_overcommit":5}|memory_overcommit' \
	'{"name":"s1","cpus":2,"memory":"1Gi","required_capabilities":["GPU!"]}|required_capabilities[0]' \
	'{"name":"S 1","cpus":2,"memory":"1Gi"}|name' '{"name":"s1","cpus":2,"memory":"1Gi","ram":1}|ram' \
	'{"name":"s1","cpus":2}|memory'; do
	body=$(json POST /api/v1/sizes -d "${case%|*}")
	expect_eq "400 ${case#*|}" "$(code) $(detail field "$body")" "size refused: ${case%|*}"
done
body=$(json PUT /api/v1/sizes/tiny -d '{"name":"other"}')
expect_eq 400 "$(code)" "a size cannot be renamed"
body=$(json PUT /api/v1/sizes/tiny -d '{}')
expect_eq 400 "$(code)" "an update must change something"

# ---- non-admins read, and are refused writes --------------------------------------------------------
expect_exit 0 "a user lists templates" as alice template list
expect_exit 0 "a user shows a size" as alice size show small
expect_exit 5 "a user cannot create a template" as alice template create "$SEED/templates/debian-12.yaml"
expect_exit 5 "a user cannot publish" as alice template publish debian-12 --template-version 1
expect_exit 5 "a user cannot create a size" as alice size create mine --cpus 1 --memory 1Gi
expect_exit 5 "a user cannot change a size" as alice size set small --cpus 64
expect_exit 5 "a user cannot disable a size" as alice size delete small
expect_eq 0 "$(sql "SELECT count(*) FROM instance_sizes WHERE name = 'mine' OR (name = 'small' AND (cpus = 64 OR disabled))")" \
	"nothing changed"
expect_match 'SIZE_DISABLE' "$(sql "SELECT action FROM audit_log WHERE outcome = 'denied'")" \
	"refused writes are audited"

# ---- a restart does not import again ----------------------------------------------------------------
shp size set small --cpus 3 >/dev/null
stop_daemon
start_daemon_tls
expect_eq 1 "$(grep -c 'imported the seed catalogue' "$T/daemon.log")" "the second start imports nothing"
expect_eq "1 3" "$(api GET /api/v1/templates/debian-12 | jq -r .version) $(api GET /api/v1/sizes/small | jq -r .cpus)" \
	"changes made through the API survive the restart"
expect_eq "1 archived" "$(sql "SELECT count(*), max(status::text) FROM templates WHERE name = 'debian-12' AND version = 2" | tr '|' ' ')" \
	"and the archived version stays archived"

# ---- a broken seed stops the daemon with file, line and field --------------------------------------
stop_daemon
sql "DELETE FROM seed_imports" >/dev/null
broken() { # DESC REGEX: start on $T/bad, expect a refusal whose log matches
	local before
	before=$(wc -l <"$T/daemon.log")
	timeout 30 "$SHEPHERDD" --database-url "$SHP_TEST_PGURL" --state-dir "$T/state" --socket "$SOCK" \
		--seed-dir "$T/bad" >>"$T/daemon.log" 2>&1
	local rc=$?
	local log
	log=$(tail -n +"$((before + 1))" "$T/daemon.log")
	if [ "$rc" -ne 0 ] && printf '%s' "$log" | grep -Eq -e "$2"; then
		pass "$1"
	else
		fail "$1 (exit $rc)" "$log"
	fi
}
rm -rf "$T/bad"; mkdir -p "$T/bad/templates"
cat >"$T/bad/templates/bad.yaml" <<'EOF'
name: bad
description: an unknown image source
image_source:
  type: iso
  image: quay.io/x
EOF
broken "an unknown image source type: file, line and field" \
	"templates/bad.yaml:4: image_source.type: .*containerDisk, dataVolume or pvc"
cat >"$T/bad/templates/bad.yaml" <<'EOF'
name: bad
image_source: {type: containerDisk, image: quay.io/x}
cloud_init: |
  #cloud-config
  packages: [a,
  runcmd: x
EOF
broken "broken cloud-init in a seed file: the file's line" "templates/bad.yaml:(6|7): cloud_init: "
cat >"$T/bad/templates/bad.yaml" <<'EOF'
name: bad
image_source:
  type: containerDisk
   image: quay.io/x
EOF
broken "malformed YAML: the line" "templates/bad.yaml:4: malformed YAML"
rm "$T/bad/templates/bad.yaml"
cat >"$T/bad/sizes.yaml" <<'EOF'
sizes:
  - name: ok
    cpus: 1
    memory: 1Gi
  - name: broken
    cpus: 0
    memory: 1Gi
EOF
broken "a size out of range: file, line and field" "sizes.yaml:6: sizes\[1\]\.cpus: "
cat >"$T/bad/sizes.yaml" <<'EOF'
sizes:
  - name: ok
    cpus: 1
    memory: 1Gi
    gpus: 2
EOF
broken "an unknown size field" "sizes.yaml:5: sizes\[0\]\.gpus: unknown field 'gpus'"
rm -rf "$T/bad"
broken "a missing seed directory stops the daemon" "seed directory '$T/bad' does not exist"
expect_eq 0 "$(sql "SELECT count(*) FROM seed_imports")" "no import was recorded"

# the import again, from the exported template: names taken already are left alone
start_daemon_tls --seed-dir "$T/seed2"
expect_eq "1 0 0" "$(sql "SELECT count(*), max(templates), max(sizes) FROM seed_imports" | tr '|' ' ')" \
	"an import over taken names adds nothing"
expect_eq 2 "$(sql "SELECT count(*) FROM templates WHERE name = 'centos-stream-9'")" \
	"and leaves the existing template alone"

finish
