#!/bin/bash
# The database/table shard scenario: [logical_table.orders_all] merges the
# tables orders_1 and orders_2 of the databases shop_1 and shop_2 (the same
# keys in every shard) into one target table, with the udf field origin =
# database.table in the key. --preview lists the shards; --check warns
# about colliding keys without such a field and refuses shards whose
# columns differ; the full copy and live changes in every shard arrive;
# a database added later (sorting before the others) gets a stream of its
# own while the others keep theirs.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst

shard_sql() { # shard_sql DB: two shards with keys 1..300, and noise
	DB=$1 psql_on src >/dev/null <<SQL
create table orders_1 (id int primary key, note text, amount numeric(10,2));
create table orders_2 (id int primary key, note text, amount numeric(10,2));
insert into orders_1 select g, 'o1-$1-' || g, g * 1.5 from generate_series(1, 300) g;
insert into orders_2 select g, 'o2-$1-' || g, g * 2.5 from generate_series(1, 300) g;
create table customers (id int primary key, name text);
create table orders_x (id int primary key, note text);
insert into customers values (1, 'not a shard');
insert into orders_x values (1, 'not a shard either');
SQL
}
for db in shop_1 shop_2 other; do
	psql_on src -c "create database $db" >/dev/null
	shard_sql $db
done
psql_on dst -c "create database dw" >/dev/null

cat >"$W/job.ini" <<INI
[job]
name = shard
mode = full+incremental
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
[logical_table.orders_all]
source_db_filter = ^shop_[0-9]+\$
source_table_filter = ^orders_[0-9]+\$
[sink]
write_mode = upsert
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=dw
target.schema = public
batch.interval = 200ms
INI
cp "$W/job.ini" "$W/nokey.ini"
cat >>"$W/job.ini" <<'INI'
[transform.origin]
plugin = udf
field.origin = varchar(200) : concat(source.database, '.', source.table)
key = origin
INI

# --preview: the four shards under their logical table, nothing else
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job.ini" --preview >"$W/preview.out" 2>&1 ||
	it_fail "--preview: $(cat "$W/preview.out")"
it_assert_contains "$W/preview.out" "logical table orders_all (source_db_filter ^shop_[0-9]+\$, source_table_filter ^orders_[0-9]+\$): 4 source table(s)"
for s in shop_1.public.orders_1 shop_1.public.orders_2 shop_2.public.orders_1 shop_2.public.orders_2; do
	it_assert_contains "$W/preview.out" "  $s -> public.orders_all"
done
it_assert "--preview lists no other table" \
	sh -c "! grep -E 'customers|orders_x|other\\.' '$W/preview.out'"
it_pass "--preview lists the shards of the logical table"

# --check: colliding keys are a warning without a distinguishing key field
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/nokey.ini" --check >"$W/nokey.log" 2>&1 ||
	it_fail "--check: $(cat "$W/nokey.log")"
it_assert_contains "$W/nokey.log" "[logical_table.orders_all]: 4 source tables go into one target"
it_assert_contains "$W/nokey.log" "key = origin"
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job.ini" --check >"$W/check.log" 2>&1 ||
	it_fail "--check: $(cat "$W/check.log")"
it_assert "no collision warning with origin in the key" \
	sh -c "! grep -q 'overwrite each other' '$W/check.log'"
it_pass "--check warns about keys colliding across shards, not with origin in the key"

# the copy and the stream: one slot per database
syncd_start "$W/run.log" "$W/job.ini" 2
it_assert_eq "2" "$(psql_on src -Atc "select count(*) from pg_replication_slots where slot_name like 'syncd_shard_shard%'")" "one slot per matching database"
for db in shop_1 shop_2; do
	DB=$db psql_on src >/dev/null <<SQL
insert into orders_1 values (1001, 'new-$db', 1);
insert into orders_2 values (1001, 'new-$db', 2);
update orders_1 set note = note || '-upd' where id % 10 = 0;
update orders_2 set amount = amount + 1 where id % 7 = 0;
delete from orders_1 where id between 50 and 59;
delete from orders_2 where id = 1;
update orders_2 set id = 2001 where id = 2;
SQL
done
DB=other psql_on src -c "insert into orders_1 values (5000, 'ignored', 0)" >/dev/null
lsn=$(psql_on src -Atc "select pg_current_wal_lsn()")
slot_wait src syncd_shard_shard0 "$lsn"
slot_wait src syncd_shard_shard1 "$lsn"

# every shard's rows, with its origin
expected() {
	for db in "$@"; do
		for t in orders_1 orders_2; do
			DB=$db psql_on src -Atc "select '$db.$t' || '|' || id || '|' || note || '|' || amount from $t"
		done
	done | LC_ALL=C sort
}
actual() {
	DB=dw psql_on dst -Atc "select origin || '|' || id || '|' || note || '|' || amount from public.orders_all" | LC_ALL=C sort
}
expected shop_1 shop_2 >"$W/expected"
actual >"$W/actual"
it_assert_eq "$(wc -l <"$W/expected")" "$(wc -l <"$W/actual")" "row count of the merged table"
it_assert "the merged table equals the union of the shards" cmp -s "$W/expected" "$W/actual"
it_assert_eq 1182 "$(wc -l <"$W/actual")" "rows: 2 x (291 + 300)"
it_assert_eq "id,origin" "$(DB=dw psql_on dst -Atc "select string_agg(a.attname, ',' order by k.n) from pg_index i, unnest(i.indkey) with ordinality k(attnum, n), pg_attribute a where i.indrelid = 'public.orders_all'::regclass and i.indisprimary and a.attrelid = i.indrelid and a.attnum = k.attnum")" "the target's key is (id, origin)"
it_pass "copy and live changes of 2 databases x 2 tables merged into one target"

# a database added later, sorting first: a new stream, the others keep theirs
syncd_stop "$SYNCD_PID" "$W/run.log"
psql_on src -c "create database shop_0" >/dev/null
shard_sql shop_0
syncd_start "$W/run.log" "$W/job.ini" 3
it_assert_eq "shop_0:syncd_shard_shard2,shop_1:syncd_shard_shard0,shop_2:syncd_shard_shard1" \
	"$(psql_on src -Atc "select string_agg(database || ':' || slot_name, ',' order by database) from pg_replication_slots where slot_name like 'syncd_shard_shard%'")" \
	"streams stay with their databases"
for db in shop_0 shop_1 shop_2; do
	DB=$db psql_on src -c "update orders_1 set note = note || '-again' where id = 3; insert into orders_2 values (3001, 'late-$db', 3)" >/dev/null
done
# a shard's TRUNCATE would empty the others' rows too: not applied, said
DB=shop_0 psql_on src -c "truncate orders_2" >/dev/null
lsn=$(psql_on src -Atc "select pg_current_wal_lsn()")
for n in 0 1 2; do slot_wait src syncd_shard_shard$n "$lsn"; done
syncd_stop "$SYNCD_PID" "$W/run.log"
expected shop_0 shop_1 shop_2 >"$W/expected"
actual | grep -v '^shop_0.orders_2|' >"$W/actual"
it_assert "after a new shard database: equal to the union of the shards" cmp -s "$W/expected" "$W/actual"
it_pass "a new shard database is copied and streamed; streams stay with their databases"
it_assert_eq 301 "$(DB=dw psql_on dst -Atc "select count(*) from orders_all where origin = 'shop_0.orders_2'")" "rows of the truncated shard kept"
it_assert_contains "$W/run.log" "TRUNCATE of shop_0.public.orders_2 at"
it_assert_contains "$W/run.log" "is not applied: its target holds the rows of every shard of logical table orders_all"
it_pass "a shard's TRUNCATE is not applied to the shared target, with a warning"

# shards whose columns differ are refused, naming the difference
DB=shop_2 psql_on src -c "alter table orders_2 add column extra int" >/dev/null
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job.ini" --check >"$W/diff.log" 2>&1 && rc=0 || rc=$?
it_assert_eq 3 "$rc" "--check exit code with differing shards"
it_assert_contains "$W/diff.log" "[logical_table.orders_all]: the shards' columns differ: column extra (integer) of shop_2.public.orders_2 is missing in shop_1.public.orders_1"
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job.ini" >"$W/diffrun.log" 2>&1 && rc=0 || rc=$?
it_assert_eq 1 "$rc" "a run with differing shards exits 1"
it_assert_contains "$W/diffrun.log" "column extra (integer) of shop_2.public.orders_2"
it_pass "shards with differing columns are refused, naming the column"

# a shard database that goes away leaves a gap in the stream numbers: the
# others keep theirs, and with them their progress at the destination
DB=shop_2 psql_on src -c "alter table orders_2 drop column extra" >/dev/null
psql_on src -c "select pg_drop_replication_slot('syncd_shard_shard0')" >/dev/null
psql_on src -c "drop database shop_1" >/dev/null
syncd_start "$W/gap.log" "$W/job.ini" 2
for db in shop_0 shop_2; do
	DB=$db psql_on src -c "insert into orders_1 values (4001, 'gap-$db', 4); update orders_2 set note = note || '-gap' where id = 5" >/dev/null
done
lsn=$(psql_on src -Atc "select pg_current_wal_lsn()")
for n in 1 2; do slot_wait src syncd_shard_shard$n "$lsn"; done
syncd_stop "$SYNCD_PID" "$W/gap.log"
expected shop_0 shop_2 >"$W/expected"
actual | grep -v '^shop_1\.' | grep -v '^shop_0.orders_2|' >"$W/actual"
grep -v '^shop_0.orders_2|' "$W/expected" >"$W/expected2"
it_assert "after a shard database went away: the others equal to the destination" cmp -s "$W/expected2" "$W/actual"
it_assert "no stream read under another stream's progress" sh -c "! grep -q 'has confirmed' \"$W/gap.log\""
it_pass "a shard database that goes away leaves the others' streams and progress as they were"

# a filter that is not a regular expression: the job file error says where
sed 's/^source_table_filter = .*/source_table_filter = ^orders_[0-9+$/' "$W/job.ini" >"$W/bad.ini"
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/bad.ini" --check >"$W/bad.log" 2>&1 && rc=0 || rc=$?
it_assert_eq 2 "$rc" "exit code of a bad filter"
it_assert_contains "$W/bad.log" "bad.ini:12: [logical_table.orders_all] source_table_filter = ^orders_[0-9+\$ is not a POSIX extended regular expression"
it_pass "a bad filter is a job-file error with its line"
