#!/bin/bash
# The pgoutput source against a real PostgreSQL 15: every kind of change
# arrives as the right event (insert, update with unchanged TOAST, primary
# key change with the old key, REPLICA IDENTITY FULL, delete, truncate,
# empty transactions, odd names), tables without a primary key are not
# selected, a clean stop confirms everything to the slot, and a restart
# goes on from there.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
S() { psql_on src -c "$1" >/dev/null; }

S "create table items (id int primary key, name text, big text)"
S "create table full_ri (id int primary key, v text)"
S "alter table full_ri replica identity full"
S "create table nopk (v text)"
S 'create schema "Mixed Case"'
S 'create table "Mixed Case"."Tab le" (id int primary key, "Col" text, "select" int)'

cat >"$W/job.ini" <<INI
[job]
name = events
mode = incremental
state_dir = $W/state
concurrency = 1
[source]
plugin = pgoutput
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
slot.flush.delay.time = 0
status.interval = 500ms
heartbeat.interval = 0
[sink]
plugin = jsonl
path = $W/out.jsonl
transactions = true
relations = true
batch.interval = 100ms
INI

# --preview: what would be read, and where it would go; changes nothing
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job.ini" --preview >"$W/preview" 2>"$W/preview.err" ||
	it_fail "--preview: $(cat "$W/preview.err")"
it_assert_contains "$W/preview" "postgres.public.items -> postgres.items (3 columns, key: id)"
it_assert_contains "$W/preview" "postgres.public.full_ri -> postgres.full_ri (2 columns, key: id)"
it_assert_contains "$W/preview" "postgres.Mixed Case.Tab le -> postgres.Tab le (3 columns, key: id)"
it_assert_contains "$W/preview" "3 table(s)"
if grep -q nopk "$W/preview"; then it_fail "a table without primary key previewed"; fi
it_assert_eq 0 "$(psql_on src -Atc "select count(*) from pg_replication_slots")" "--preview creates no slot"

start_syncd() { syncd_start "$W/syncd.log" "$W/job.ini"; }
stop_syncd() { syncd_stop "$SYNCD_PID" "$W/syncd.log"; }
wait_lines() { # wait_lines N: until out.jsonl has N change/commit lines
	for _ in $(seq 1 100); do
		[ "$(grep -vc '"op":"relation"' "$W/out.jsonl" 2>/dev/null)" -ge "$1" ] && return 0
		sleep 0.1
	done
	it_fail "expected $1 lines, got: $(cat "$W/out.jsonl" 2>/dev/null)"
}

start_syncd
it_assert_contains "$W/syncd.log" 'CREATE PUBLICATION "dbz_publication" FOR TABLE "Mixed Case"."Tab le", "public"."full_ri", "public"."items"'
psql_on src -Atc "select count(*) from pg_publication_tables where pubname = 'dbz_publication'" >"$W/n"
it_assert_eq 3 "$(cat "$W/n")" "tables published (nopk left out)"

big=$(psql_on src -Atc "select string_agg(md5(g::text), '') from generate_series(1, 400) g")
S "insert into items values (1, 'a', '$big'), (2, 'b', 'small')"
S "update items set name = 'a2' where id = 1"
S "update items set id = 20 where id = 2"
S "delete from items where id = 20"
S "insert into full_ri values (1, 'x')"
S "update full_ri set v = 'y' where id = 1"
S "delete from full_ri where id = 1"
S "insert into nopk values ('ignored')"
S "insert into \"Mixed Case\".\"Tab le\" values (7, 'it''s \"odd\"', 1)"
S "begin; commit"
S "truncate items"
S "alter table items add column price numeric(10,2) not null default 0"
S "insert into items values (5, 'e', 'x', 9.5)"
wait_lines 31
stop_syncd

J="$W/out.jsonl"
q() { jq -c "$1" "$J"; }
it_assert_eq 3 "$(q 'select(.op=="insert" and .table=="items")' | wc -l)" "inserts into items"
it_assert_eq '"a"' "$(q 'select(.op=="insert" and .table=="items" and .new.id=="1") | .new.name')" "insert value"
it_assert_eq "\"$big\"" "$(q 'select(.op=="insert" and .table=="items" and .new.id=="1") | .new.big')" "TOASTed value inserted whole"
it_assert_eq '["big"]' "$(q 'select(.op=="update" and .new.name=="a2") | .unchanged_toast')" "unchanged TOAST"
it_assert_eq 'null' "$(q 'select(.op=="update" and .new.name=="a2") | .new.big')" "unchanged TOAST value not sent"
it_assert_eq '{"id":"2"}' "$(q 'select(.op=="update" and .new.id=="20") | .old')" "primary key change carries the old key"
it_assert_eq '{"id":"20"}' "$(q 'select(.op=="delete" and .table=="items") | .old')" "delete carries the key"
it_assert_eq '{"id":"1","v":"x"}' "$(q 'select(.op=="update" and .table=="full_ri") | .old')" "REPLICA IDENTITY FULL old row"
it_assert_eq '{"id":"1","v":"y"}' "$(q 'select(.op=="delete" and .table=="full_ri") | .old')" "REPLICA IDENTITY FULL delete"
it_assert_eq 0 "$(q 'select(.table=="nopk")' | wc -l)" "no events for a table without primary key"
it_assert_eq '{"id":"7","Col":"it'"'"'s \"odd\"","select":"1"}' \
	"$(q 'select(.op=="insert" and .schema=="Mixed Case" and .table=="Tab le") | .new')" "odd names and values"
it_assert_eq '["public.items"]' "$(q 'select(.op=="truncate") | .tables')" "truncate"
# relations: types and keys from the catalog, a changed table announced again
it_assert_eq '[{"name":"id","type":"integer","key":true,"not_null":true},{"name":"v","type":"text","key":false,"not_null":false}]' \
	"$(q 'select(.op=="relation" and .table=="full_ri") | [.columns[] | del(.type_oid)]' | head -n 1)" \
	"REPLICA IDENTITY FULL: the key is still the primary key"
it_assert_eq '{"name":"price","type":"numeric(10,2)","type_oid":1700,"key":false,"not_null":true}' \
	"$(q 'select(.op=="relation" and .table=="items") | .columns[3]' | tail -n 1)" "a column added while streaming"
it_assert_eq '"9.50"' "$(q 'select(.op=="insert" and .new.id=="5") | .new.price')" "value of the new column"
# commits: one per transaction that touched a selected table, in LSN order
commits=$(q 'select(.op=="commit") | .lsn' | wc -l)
it_assert_eq 10 "$commits" "commit lines (PostgreSQL 15 skips empty transactions)"
q 'select(.op=="commit") | .lsn' | tr -d '"' | while read -r l; do
	printf '%d\n' "0x$(echo "$l" | awk -F/ '{printf "%s%08s", $1, $2}' | tr ' ' 0)"
done >"$W/lsns"
sort -n -c "$W/lsns" || it_fail "commits out of LSN order"

# the clean stop confirmed the last commit to the slot
last=$(q 'select(.op=="commit") | .lsn' | tail -n 1 | tr -d '"')
conf=$(psql_on src -Atc "select confirmed_flush_lsn >= '$last'::pg_lsn from pg_replication_slots where slot_name = 'syncd_events'")
it_assert_eq t "$conf" "slot confirmed up to the last commit ($last)"

# a restart streams on from there: nothing old again, new changes arrive
: >"$J"
start_syncd
S "insert into items values (3, 'after restart', 'x', 1)"
wait_lines 3
stop_syncd
it_assert_eq 1 "$(q 'select(.op=="insert")' | wc -l)" "only the new change after a restart"
it_assert_eq '"3"' "$(q 'select(.op=="insert") | .new.id')" "the new change"
it_pass "events, names, truncate, stop, restart"
