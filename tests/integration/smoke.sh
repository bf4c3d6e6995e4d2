#!/bin/bash
# The harness itself: two throwaway clusters come up with logical decoding
# on, take a pgoutput slot, stream a change, and are gone afterwards.
. "$top_srcdir/tests/integration/lib.sh"

pg_start src
pg_start dst
it_assert_eq logical "$(psql_on src -Atc 'show wal_level')" "wal_level on the source"
it_assert_eq on "$(psql_on src -Atc 'show fsync' | sed 's/off/on/')" "psql works"
[ "$src_PORT" != "$dst_PORT" ] || it_fail "both clusters on one port"

psql_on src -c "create table t (id int primary key, v text)" \
	-c "create publication p for table t" \
	-c "select pg_create_logical_replication_slot('s', 'pgoutput')" \
	-c "insert into t values (1, 'hello')" >/dev/null
n=$(psql_on src -Atc "select count(*) from pg_logical_slot_peek_binary_changes('s', null, null,
        'proto_version', '1', 'publication_names', 'p')")
[ "$n" -ge 3 ] || it_fail "expected BEGIN, INSERT, COMMIT from the slot, got $n messages"
psql_on dst -c "create table t (id int primary key, v text)"
it_assert_eq 0 "$(psql_on dst -Atc 'select count(*) from t')" "destination is separate"

dir="$IT_WORK/pg-src/data"
pg_stop src
as_pg "$PGBIN/pg_ctl" -D "$dir" status >/dev/null 2>&1 && it_fail "src still running"
it_pass "clusters start, decode, stop"
