#!/bin/bash
# Columns added to the shards of a logical table while the job streams
# (issue 19: "a column added on one shard only is an error naming the
# shard; on all shards, it is added once"). Databases shop_1 and shop_2
# each hold orders_1 and orders_2, merged into one target orders_all with
# a udf origin in the key; small transactions run on every shard.
#  A. ADD COLUMN run shard by shard, seconds apart, each in a transaction
#     with rows before and after it: the first shard's stream waits for
#     the others, the target gets the column once (upsert: keyby pk,
#     two workers that both see it; copy: the defaults), and equals the
#     union of the shards.
#  B. ADD COLUMN on one shard only (copy mode): the job stops before the
#     change, naming the shards that lack it and the fix; nothing past it
#     is written. Once every shard has it, the next start converges.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst

for db in shop_1 shop_2; do
	psql_on src -c "create database $db" >/dev/null
done

job() { # job MODE [sink lines]
	cat >"$W/$1.ini" <<INI
[job]
name = sc_$1
state_dir = $W/state_$1
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres
status.interval = 200ms
slot.flush.delay.time = 0
[logical_table.orders_all]
source_db_filter = ^shop_[0-9]+\$
source_table_filter = ^orders_[0-9]+\$
[transform.origin]
plugin = udf
field.origin = varchar(200) : concat(source.database, '.', source.table)
key = origin
[sink]
write_mode = $1
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=dw_$1
target.schema = public
batch.interval = 200ms
${2:-}
INI
}

fresh() { # fresh MODE: the shards as new, an empty destination
	for db in shop_1 shop_2; do
		DB=$db psql_on src >/dev/null <<SQL
set client_min_messages = warning;
drop table if exists orders_1, orders_2;
create table orders_1 (id int primary key, note text);
create table orders_2 (id int primary key, note text);
insert into orders_1 select g, 'o1-$db-' || g from generate_series(1, 200) g;
insert into orders_2 select g, 'o2-$db-' || g from generate_series(1, 200) g;
SQL
	done
	psql_on dst -c "create database dw_$1" >/dev/null
}

load_start() { # small transactions on every shard until $W/stop
	rm -f "$W/stop"
	(
		i=0
		while [ ! -e "$W/stop" ]; do
			i=$((i + 1))
			for db in shop_1 shop_2; do
				DB=$db psql_on src -c "insert into orders_1 (id, note) values (10000 + $i, 'load')" \
					-c "update orders_2 set note = note || '+' where id = $((i % 50 + 1))" >/dev/null 2>&1 || sleep 0.1
			done
		done
	) &
	LOAD_PID=$!
}
load_stop() { touch "$W/stop"; wait "$LOAD_PID" || true; }

synced() { # every shard's slot has confirmed the source's WAL end
	lsn=$(psql_on src -Atc "select pg_current_wal_lsn()")
	for n in 0 1; do slot_wait src "syncd_sc_$1_shard$n" "$lsn"; done
}

# COLS: the columns compared (every one but origin)
expected() {
	for db in shop_1 shop_2; do
		for t in orders_1 orders_2; do
			DB=$db psql_on src -Atc "select '$db.$t' || '|' || concat_ws('|', $COLS) from $t"
		done
	done | LC_ALL=C sort
}
actual() {
	DB=dw_$1 psql_on dst -Atc "select origin || '|' || concat_ws('|', $COLS) from public.orders_all" | LC_ALL=C sort
}
equal() { # equal MODE WHAT
	expected >"$W/expected"
	actual "$1" >"$W/actual"
	it_assert "$2: the target equals the union of the shards ($(wc -l <"$W/expected") rows)" \
		cmp -s "$W/expected" "$W/actual"
}

# ---- A: shard by shard, both modes ------------------------------------------
for mode in upsert copy; do
	fresh $mode
	if [ $mode = upsert ]; then
		job $mode "sink.keyby.mode = pk"
	else
		job $mode
	fi
	syncd_start "$W/$mode.log" "$W/$mode.ini" 2
	load_start
	sleep 1
	for db in shop_1 shop_2; do
		DB=$db psql_on src >/dev/null <<SQL
begin;
insert into orders_1 values (5001, 'before-$db');
update orders_2 set note = 'before-$db' where id = 7;
alter table orders_1 add column tag text;
alter table orders_2 add column tag text;
insert into orders_1 values (5002, 'after-$db', 'tag-$db');
update orders_2 set tag = 'tag-$db' where id between 1 and 20;
commit;
SQL
		[ $db = shop_1 ] && sleep 3
	done
	sleep 1
	load_stop
	COLS="id, note, tag"
	synced $mode
	equal $mode "A ($mode): ADD COLUMN shard by shard under load"
	it_assert_contains "$W/$mode.log" "has new column(s) that other shards do not have yet: shop_2.public.orders_1 (tag)"
	it_assert_contains "$W/$mode.log" "its stream waits up to 30 s"
	it_assert "A ($mode): the columns are seen on every shard" \
		grep -Eq '\[logical_table.orders_all\]: the new column\(s\) of shop_[12].public.orders_[12] are on every shard \(4\)' "$W/$mode.log"
	it_assert_eq 1 "$(grep -c 'a column added for source table .*(schema.evolution = add): ALTER TABLE .* ADD COLUMN \"tag\" text' "$W/$mode.log")" \
		"A ($mode): the column is added to the target once"
	it_assert_eq 1 "$(DB=dw_$mode psql_on dst -Atc "select count(*) from pg_attribute where attrelid = 'public.orders_all'::regclass and attname = 'tag' and not attisdropped")" \
		"A ($mode): one column tag at the destination"
	it_assert "A ($mode): syncd still runs" kill -0 "$SYNCD_PID"
	it_pass "A ($mode): a column added shard by shard under load is added once; the target equals the shards"
	[ $mode = upsert ] && syncd_stop "$SYNCD_PID" "$W/$mode.log"
done

# ---- B: one shard only (copy mode, still running from A) --------------------
DB=shop_1 psql_on src >/dev/null <<'SQL'
begin;
insert into orders_1 values (6001, 'before', null);
alter table orders_1 add column extra int;
insert into orders_1 values (6002, 'after', null, 42);
commit;
SQL
started=$(date +%s)
for _ in $(seq 1 600); do
	kill -0 "$SYNCD_PID" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$SYNCD_PID" 2>/dev/null && it_fail "syncd still runs 60 s after a column added to one shard: $(tail -n 5 "$W/copy.log")"
rc=0
wait "$SYNCD_PID" || rc=$?
it_assert_eq 1 "$rc" "B: exit code of a column added to one shard only"
it_assert "B: syncd waited for the other shards first ($(($(date +%s) - started)) s)" \
	test $(($(date +%s) - started)) -ge 25
it_assert_contains "$W/copy.log" "[logical_table.orders_all]: source table shop_1.public.orders_1 has new column(s) that other shards of the logical table do not have: shop_1.public.orders_2 (extra), shop_2.public.orders_1 (extra), shop_2.public.orders_2 (extra)"
it_assert_contains "$W/copy.log" "Add them to every shard (ALTER TABLE ... ADD COLUMN extra integer), or drop them from shop_1.public.orders_1"
it_assert_eq 0 "$(DB=dw_copy psql_on dst -Atc "select count(*) from pg_attribute where attrelid = 'public.orders_all'::regclass and attname = 'extra'")" \
	"B: the target did not get the column"
it_assert_eq 0 "$(DB=dw_copy psql_on dst -Atc "select count(*) from orders_all where id = 6002")" \
	"B: nothing past the change was written"
it_pass "B: a column added to one shard only stops the job, naming the shards that lack it"

# the restart refuses the differing shards; once every shard has it, the
# job goes on from where it stopped
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/copy.ini" >"$W/refused.log" 2>&1 && rc=0 || rc=$?
it_assert_eq 1 "$rc" "B: a start with differing shards exits 1"
it_assert_contains "$W/refused.log" "the shards' columns differ: column extra (integer) of shop_1.public.orders_1 is missing in"
for db in shop_1 shop_2; do
	for t in orders_1 orders_2; do
		DB=$db psql_on src -c "alter table $t add column if not exists extra int" >/dev/null 2>&1
	done
done
DB=shop_2 psql_on src -c "insert into orders_1 values (6003, 'shop_2 too', null, 43)" >/dev/null
syncd_start "$W/copy.log" "$W/copy.ini" 2
synced copy
syncd_stop "$SYNCD_PID" "$W/copy.log"
COLS="id, note, tag, extra"
equal copy "B: after every shard got the column"
it_assert_eq 42 "$(DB=dw_copy psql_on dst -Atc "select extra from orders_all where id = 6002 and origin = 'shop_1.orders_1'")" \
	"B: the row that stopped the job arrived with its value"
it_pass "B: once every shard has the column, the job goes on and converges"
