#!/bin/bash
# The pgoutput source refuses, with a message naming the object and the
# fix: a server without wal_level = logical (pre-check, exit 3), a selected
# table without a primary key, a missing or incomplete publication when it
# may not create it (naming the exact statement), a custom slot that does
# not exist or is in use (SQLSTATE 55006), and a slot whose confirmed
# position is ahead of what the destination has applied. Passwords in the
# conninfo never appear in the output.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
export SYNCD_PLUGIN_PATH="$TEST_PLUGIN_DIR"
pg_start src
pg_start old "wal_level = replica"
S() { psql_on src -c "$1" >/dev/null; }
S "create table items (id int primary key, v text)"
S "create table other (id int primary key)"
S "create table nopk (v text)"

job() { # job NAME PORT [source lines] [sink lines]
	cat >"$W/$1.ini" <<INI
[job]
name = $1
mode = incremental
state_dir = $W/state
[source]
plugin = pgoutput
conninfo = host=127.0.0.1 port=$2 user=postgres dbname=postgres password=hunter2
slot.flush.delay.time = 0
status.interval = 200ms
${3:-}
[sink]
plugin = ${4:-jsonl}
path = $W/$1.out
batch.interval = 100ms
INI
}
expect() { # expect CODE NAME [args]: runs job NAME, checks the exit code
	code=$1 name=$2
	shift 2
	set +e
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$name.ini" "$@" >"$W/$name.log" 2>&1
	rc=$?
	set -e
	[ $rc -eq "$code" ] || it_fail "$name: exit $rc, expected $code: $(cat "$W/$name.log")"
	if grep -q hunter2 "$W/$name.log"; then it_fail "$name: password printed"; fi
}

# pre-checks: good source (0), wal_level = replica (3)
job good "$src_PORT" "tables = public.items"
expect 0 good --check
it_assert_contains "$W/good.log" "all pre-checks passed"
it_assert_contains "$W/good.log" 'syncd will run: CREATE PUBLICATION "dbz_publication" FOR TABLE "public"."items"'
job oldwal "$old_PORT"
S2() { psql_on old -c "$1" >/dev/null; }
S2 "create table items (id int primary key)"
expect 3 oldwal --check
it_assert_contains "$W/oldwal.log" 'wal_level is replica; set wal_level = logical'

# a selected table without a primary key: named, at --check (3) and run (1)
job nopk "$src_PORT" "tables = public.*"
expect 3 nopk --check
it_assert_contains "$W/nopk.log" 'table public.nopk in database "postgres" has no primary key'
expect 1 nopk
psql_on src -Atc "select count(*) from pg_publication" >"$W/n"
it_assert_eq 0 "$(cat "$W/n")" "nothing created for a refused job"

# the publication, when syncd may not create it: the exact statement
job nopub "$src_PORT" "tables = public.items
publication.autocreate = false"
expect 1 nopub
it_assert_contains "$W/nopub.log" 'CREATE PUBLICATION "dbz_publication" FOR TABLE "public"."items"'
S "create publication dbz_publication for table other"
expect 1 nopub
it_assert_contains "$W/nopub.log" 'ALTER PUBLICATION "dbz_publication" ADD TABLE "public"."items"'
S "drop publication dbz_publication"

# custom.slot.name: must exist, must be idle
job custom "$src_PORT" "tables = public.items
custom.slot.name = nosuch"
expect 1 custom
it_assert_contains "$W/custom.log" "custom.slot.name = nosuch: no such replication slot"
S "select pg_create_logical_replication_slot('mine', 'pgoutput')"
S "create publication dbz_publication for table items"
as_pg /usr/lib/postgresql/15/bin/pg_recvlogical -h 127.0.0.1 -p "$src_PORT" -U postgres \
	-d postgres -S mine --start --no-loop -o proto_version=1 -o publication_names=dbz_publication \
	-f /dev/null >/dev/null 2>&1 &
recv=$!
for _ in $(seq 1 50); do
	[ "$(psql_on src -Atc "select active from pg_replication_slots where slot_name = 'mine'")" = t ] && break
	sleep 0.1
done
sed -i 's/^custom.slot.name = nosuch$/custom.slot.name = mine/' "$W/custom.ini"
expect 1 custom
it_assert_contains "$W/custom.log" "replication slot mine is active for PID"
# as root, as_pg's runuser does not pass the signal on: its child too
# (runuser exits when it has)
pkill -P $recv 2>/dev/null || kill $recv 2>/dev/null || true
wait $recv 2>/dev/null || true

# a slot ahead of what the destination has applied: refused
job ahead "$src_PORT" "tables = public.items" capture
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/ahead.ini" >"$W/ahead.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q "streaming from slot" "$W/ahead.log" && break; sleep 0.1; done
S "insert into items values (1, 'a')"
for _ in $(seq 1 100); do grep -q "^end" "$W/ahead.out" 2>/dev/null && break; sleep 0.1; done
kill -TERM $pid; wait $pid
S "insert into items values (2, 'b')"
S "select pg_replication_slot_advance('syncd_ahead', pg_current_wal_lsn())"
expect 1 ahead
it_assert_contains "$W/ahead.log" "replication slot syncd_ahead has confirmed"
it_assert_contains "$W/ahead.log" "the changes in between may be missing"
it_pass "every refusal names the object and the fix"
