#!/bin/bash
# shepherdd migrate status|up|down [N] against a database by hand.
. "$top_srcdir/tests/helpers/lib.sh"

m() { "$SHEPHERDD" --database-url "$SHP_TEST_PGURL" --state-dir "$T/state" migrate "$@"; }
latest=$(ls "$top_srcdir"/schema/*.up.sql | wc -l)

expect_exit 0 "migrate status on an empty database" m status
expect_match "schema version 0 of $latest, $latest pending" "$OUT" "status says everything is pending"
expect_exit 0 "migrate up" m up
expect_match "applied $latest migration" "$OUT" "up applies all"
expect_exit 0 "migrate status" m status
expect_match "schema version $latest of $latest, 0 pending" "$OUT" "status says current"
expect_exit 0 "migrate down 1" m down 1
expect_match "rolled back 1 migration" "$OUT" "down 1 rolls back one"
expect_exit 0 "migrate down" m down
expect_eq 0 "$(sql "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'shepherd_schema_migrations'")" "down leaves no tables behind"
expect_exit 0 "migrate up again" m up
expect_exit 2 "a bad verb is a usage error" "$SHEPHERDD" migrate sideways
expect_exit 2 "a bad count is a usage error" "$SHEPHERDD" migrate down zero
finish
