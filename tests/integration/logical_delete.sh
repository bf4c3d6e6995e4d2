#!/bin/bash
# The logical_delete transform end to end, in both write modes: automatic
# table creation adds the flag column (boolean, default false); a delete
# keeps the row with every other column as it was (a TOASTed value too) and
# marks it; a re-insert revives it with its new values; TRUNCATE marks
# every row; a destination table without the column fails --check. The
# upsert job names the transform, the copy job uses the reference's [sink]
# logical.delete.enabled / logical.delete.column keys.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst

big="(select string_agg(md5(g::text), '') from generate_series(1, 200) g)"
for mode in upsert copy; do
	psql_on src -c "create database l_$mode" >/dev/null
	psql_on dst -c "create database l_$mode" >/dev/null
	DB=l_$mode psql_on src -c "create table t (id int primary key, v text, n int, doc text)" >/dev/null
	cat >"$W/$mode.ini" <<INI
[job]
name = ld_$mode
mode = incremental
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=l_$mode
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
[sink]
write_mode = $mode
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=l_$mode
target.schema = public
batch.interval = 200ms
INI
	# upsert: the transform section; copy: the reference's [sink] keys
	if [ $mode = upsert ]; then
		printf '[transform.soft]\nplugin = logical_delete\n' >>"$W/$mode.ini"
	else
		sed -i 's/^batch.interval = 200ms$/&\nlogical.delete.enabled = true\nlogical.delete.column = logical_is_deleted/' "$W/$mode.ini"
	fi
	syncd_start "$W/$mode.log" "$W/$mode.ini"
	it_assert_eq "boolean false" "$(DB=l_$mode psql_on dst -Atc "select data_type || ' ' || column_default from information_schema.columns where table_name = 't' and column_name = 'logical_is_deleted'")" "flag column created ($mode)"
	DB=l_$mode psql_on src >/dev/null <<SQL
insert into t values (1, 'one', 1, $big), (2, 'two', 2, 'short'), (3, 'three', 3, 'x');
delete from t where id = 1;
delete from t where id = 2;
insert into t values (2, 'two again', 22, 'new');
update t set n = 33 where id = 3;
SQL
	slot_wait src "syncd_ld_$mode" "$(DB=l_$mode psql_on src -Atc "select pg_current_wal_lsn()")"
	got=$(DB=l_$mode psql_on dst -Atc "select string_agg(id || ':' || v || ':' || n || ':' || length(doc) || ':' || logical_is_deleted, ',' order by id) from t")
	it_assert_eq "1:one:1:6400:true,2:two again:22:3:false,3:three:33:1:false" "$got" "after delete and re-insert ($mode)"
	DB=l_$mode psql_on src -c "truncate t" >/dev/null
	DB=l_$mode psql_on src -c "insert into t values (4, 'four', 4, 'y')" >/dev/null
	slot_wait src "syncd_ld_$mode" "$(DB=l_$mode psql_on src -Atc "select pg_current_wal_lsn()")"
	syncd_stop "$SYNCD_PID" "$W/$mode.log"
	got=$(DB=l_$mode psql_on dst -Atc "select string_agg(id || ':' || logical_is_deleted, ',' order by id) from t")
	it_assert_eq "1:true,2:true,3:true,4:false" "$got" "after truncate ($mode)"
done
it_pass "deletes marked with the other columns kept, re-inserts revived, truncate marks every row, in both modes"

# a destination table without the column: --check says the start adds it
# (schema.evolution = add), or, with schema.evolution = none, fails naming it
psql_on src -c "create database l_check" >/dev/null
psql_on dst -c "create database l_check" >/dev/null
DB=l_check psql_on src -c "create table t (id int primary key, v text)" >/dev/null
DB=l_check psql_on dst -c "create table t (id int primary key, v text)" >/dev/null
sed -e 's/l_upsert/l_check/g' -e 's/ld_upsert/ld_check/' "$W/upsert.ini" >"$W/check.ini"
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/check.ini" --check >"$W/check.log" 2>&1 && rc=0 || rc=$?
it_assert_eq 0 "$rc" "--check exit code with schema.evolution = add: $(cat "$W/check.log")"
it_assert_contains "$W/check.log" 'at start (schema.evolution = add): ALTER TABLE "public"."t" ADD COLUMN "logical_is_deleted" boolean DEFAULT false'
sed -i 's/^\[transform.soft\]$/schema.evolution = none\n&/' "$W/check.ini"
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/check.ini" --check >"$W/check.log" 2>&1 && rc=0 || rc=$?
it_assert_eq 3 "$rc" "--check exit code with schema.evolution = none: $(cat "$W/check.log")"
it_assert_contains "$W/check.log" "logical_is_deleted"
it_pass "--check names the missing flag column: added at start, or refused with schema.evolution = none"

# full+incremental: the copied rows pass through the transform too
psql_on src -c "create database l_full" >/dev/null
psql_on dst -c "create database l_full" >/dev/null
DB=l_full psql_on src -c "create table t (id int primary key, v text); insert into t select g, 'v' || g from generate_series(1, 1000) g" >/dev/null
sed -e 's/l_upsert/l_full/g' -e 's/ld_upsert/ld_full/' -e 's/^mode = incremental/mode = full+incremental/' "$W/upsert.ini" >"$W/full.ini"
syncd_start "$W/full.log" "$W/full.ini"
DB=l_full psql_on src -c "delete from t where id <= 10" >/dev/null
slot_wait src syncd_ld_full "$(DB=l_full psql_on src -Atc "select pg_current_wal_lsn()")"
syncd_stop "$SYNCD_PID" "$W/full.log"
it_assert_eq "990 10" "$(DB=l_full psql_on dst -Atc "select count(*) filter (where not logical_is_deleted) || ' ' || count(*) filter (where logical_is_deleted) from t")" "copied rows unmarked, then 10 deletes marked"
it_assert_contains "$W/full.log" "copied public.t -> public.t: 1000 rows"
it_pass "full+incremental with the transform: copied rows carry the flag"
