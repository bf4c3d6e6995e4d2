#!/bin/bash
# syncd --verify [TABLE...] [--repair] (issue 18, item 2):
#  1. a 1M-row table (and a table with a text/int composite key and NULLs
#     in its columns) streamed by a job: --verify while the job runs under
#     an insert load exits 0
#  2. rows deleted, added and altered at the destination by hand: exit 1
#     with the right counts and keys; a table named alone
#  3. --repair writes the differing ranges again: exit 0, and --verify
#     exits 0 after it; the 1M-row table compared in well under a minute
#  4. a job with the logical_delete transform and target name patterns
#     with case folding: rows deleted at the source stay marked, and
#     compare as absent; udf fields are not compared
#  5. bad input: an unknown table name (exit 1, naming the fix), --repair
#     without --verify (exit 2)
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst
S() { psql_on src -Atc "$1"; }
D() { psql_on dst -Atc "$1"; }
S "create table big (id bigint primary key, v text, n numeric(12,2), at timestamptz, f float8, b bytea)" >/dev/null
S "insert into big select g, md5(g::text), g / 7.0, timestamptz '2026-01-01' + g * interval '1 second', g / 3.0, decode(md5(g::text), 'hex') from generate_series(1, 1000000) g" >/dev/null
S "create table ck (code text, n int, note text, primary key (code, n))" >/dev/null
S "insert into ck select 'k' || (g % 97), g, case when g % 5 = 0 then null else 'n' || g end from generate_series(1, 30000) g" >/dev/null
S "create table hist (id serial primary key, v int)" >/dev/null

cat >"$W/job.ini" <<INI
[job]
name = vf
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
tables = public.big, public.ck, public.hist
status.interval = 200ms
[sink]
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres
target.schema = public
batch.interval = 200ms
INI
verify() { # verify ARGS...: output in $W/v.out, exit code in rc
	rc=0
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job.ini" --verify "$@" >"$W/v.out" 2>&1 || rc=$?
}
syncd_start "$W/syncd.log" "$W/job.ini"
hist_load_start
sleep 1
verify
it_assert_eq 0 "$rc" "--verify while the job streams: $(cat "$W/v.out")"
it_assert_contains "$W/v.out" "while it runs"
it_assert_contains "$W/v.out" "public.big: same (1000000 rows"
it_assert_contains "$W/v.out" "public.ck: same (30000 rows"
it_assert_contains "$W/v.out" "3 of 3 table(s) the same"
it_pass "--verify of equal tables while the job streams under load: exit 0"
hist_load_stop
slot_wait src syncd_vf "$(S 'select pg_current_wal_lsn()')"
syncd_stop "$SYNCD_PID" "$W/syncd.log"

# ---- 2. differences made by hand -------------------------------------------------
D "delete from big where id in (17, 500000, 999999)" >/dev/null
D "insert into big (id, v) values (1000001, 'x'), (0, 'y')" >/dev/null
D "update big set v = 'changed' where id in (3, 250000)" >/dev/null
D "update big set n = n + 1 where id = 700000" >/dev/null
D "update big set b = null where id = 800000" >/dev/null
D "update ck set note = 'n' where code = 'k5' and n = 5" >/dev/null  # a NULL made a value
D "update ck set note = null where code = 'k1' and n = 1" >/dev/null # a value made NULL
D "delete from ck where code = 'k10' and n = 10" >/dev/null
start=$(date +%s)
verify
end=$(date +%s)
it_assert_eq 1 "$rc" "--verify after changes by hand: $(cat "$W/v.out")"
it_assert_contains "$W/v.out" "public.big: 3 missing, 2 extra, 4 different (source 1000000 rows, destination 999999)"
it_assert_contains "$W/v.out" "; missing (id)=(17), (500000), (999999); extra (id)=(0), (1000001); different (id)=(3), (250000), (700000), (800000)"
it_assert_contains "$W/v.out" "public.ck: 1 missing, 0 extra, 2 different (source 30000 rows, destination 29999); missing (code, n)=(k10, 10); different (code, n)=(k1, 1), (k5, 5)"
it_assert_contains "$W/v.out" "public.hist: same"
it_assert_contains "$W/v.out" "1 of 3 table(s) the same"
[ $((end - start)) -lt 30 ] || it_fail "--verify took $((end - start)) s"
it_log "--verify of 1M + 30k rows with differences: $((end - start)) s"
verify public.ck
it_assert_eq 1 "$rc" "--verify public.ck: $(cat "$W/v.out")"
it_assert_contains "$W/v.out" "comparing 1 table(s)"
it_pass "--verify after deleting, adding and altering rows: exit 1, counts and keys"

# ---- 3. repair ---------------------------------------------------------------------
start=$(date +%s)
verify --repair
end=$(date +%s)
it_assert_eq 0 "$rc" "--verify --repair: $(cat "$W/v.out")"
it_assert_contains "$W/v.out" "public.big: repaired 7 range(s)"
it_assert_contains "$W/v.out" "same now"
verify
it_assert_eq 0 "$rc" "--verify after --repair: $(cat "$W/v.out")"
it_assert_eq "$(table_hash src postgres big)" "$(table_hash dst postgres big)" "big after --repair"
it_assert_eq "$(table_hash src postgres ck)" "$(table_hash dst postgres ck)" "ck after --repair"
[ $((end - start)) -lt 60 ] || it_fail "--verify --repair took $((end - start)) s"
it_log "--verify --repair of 1M + 30k rows: $((end - start)) s"
it_pass "--repair: the differing ranges written again, then the same"

# ---- 4. logical_delete, udf fields, target patterns and case folding (copy mode) --
psql_on src -c "create database l" >/dev/null
psql_on dst -c "create database l" >/dev/null
psql_on dst -c "create schema arch" >/dev/null
DB=l psql_on dst -c "create schema arch" >/dev/null
DB=l psql_on src -c 'create table "Orders" ("Id" int primary key, "Amount" numeric, note text)' \
	-c "insert into \"Orders\" select g, g * 1.5, 'n' || g from generate_series(1, 25000) g" >/dev/null
cat >"$W/ld.ini" <<INI
[job]
name = ld
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=l
slot.flush.delay.time = 0
status.interval = 200ms
[sink]
write_mode = copy
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=l
target.schema = arch
target.table = t_#{source_table_name}
sink.field.name.case-sensitive = false
batch.interval = 200ms
logical.delete.enabled = true
[transform.extra]
plugin = udf
field.origin = varchar(128) : concat(source.schema, '.', source.table)
INI
syncd_start "$W/ld.log" "$W/ld.ini"
DB=l psql_on src -c 'delete from "Orders" where "Id" in (5, 15000)' -c "update \"Orders\" set note = 'u' where \"Id\" = 6" >/dev/null
slot_wait src syncd_ld "$(DB=l psql_on src -Atc 'select pg_current_wal_lsn()')"
syncd_stop "$SYNCD_PID" "$W/ld.log"
it_assert_eq "2|public.Orders" "$(DB=l psql_on dst -Atc "select count(*) filter (where logical_is_deleted), min(origin) from arch.t_orders")" \
	"the destination keeps deleted rows marked, with the udf field"
vld() { rc=0; "$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/ld.ini" --verify "$@" >"$W/v.out" 2>&1 || rc=$?; }
vld
it_assert_eq 0 "$rc" "--verify with logical deletes and a udf field: $(cat "$W/v.out")"
it_assert_contains "$W/v.out" "arch.t_orders: same (24998 rows"
DB=l psql_on dst -c "update arch.t_orders set logical_is_deleted = true where id = 7" \
	-c "update arch.t_orders set logical_is_deleted = false where id = 5" \
	-c "update arch.t_orders set origin = 'elsewhere' where id = 8" >/dev/null
vld public.Orders
it_assert_eq 1 "$rc" "--verify after marking rows by hand: $(cat "$W/v.out")"
it_assert_contains "$W/v.out" "arch.t_orders: 1 missing, 1 extra, 0 different (source 24998 rows, destination 24998); missing (id)=(7); extra (id)=(5)"
vld arch.t_orders --repair
it_assert_eq 0 "$rc" "--verify --repair with logical deletes: $(cat "$W/v.out")"
it_assert_eq "5:true 7:false" "$(DB=l psql_on dst -Atc "select string_agg(id || ':' || logical_is_deleted, ' ' order by id) from arch.t_orders where id in (5, 7)")" \
	"the repair marks the extra row deleted and the missing one alive"
it_pass "logical deletes count as absent, udf fields are not compared, target patterns and folded names; --repair through the transforms"

# ---- 4b. a logical table: two databases' shards into one target, told apart
# by a udf key column
for db in shop_1 shop_2; do
	psql_on src -c "create database $db" >/dev/null
	DB=$db psql_on src -c "create table orders_1 (id int primary key, note text)" \
		-c "insert into orders_1 select g, '$db-' || g from generate_series(1, 15000) g" >/dev/null
done
psql_on dst -c "create database dw" >/dev/null
cat >"$W/sh.ini" <<INI
[job]
name = sh
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres
slot.flush.delay.time = 0
status.interval = 200ms
[logical_table.orders_all]
source_db_filter = ^shop_[0-9]+\$
source_table_filter = ^orders_[0-9]+\$
[sink]
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=dw
target.schema = public
batch.interval = 200ms
[transform.origin]
plugin = udf
field.origin = varchar(200) : concat(source.database, '.', source.table)
key = origin
INI
syncd_start "$W/sh.log" "$W/sh.ini" 2
syncd_stop "$SYNCD_PID" "$W/sh.log"
vsh() { rc=0; "$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/sh.ini" --verify "$@" >"$W/v.out" 2>&1 || rc=$?; }
vsh
it_assert_eq 0 "$rc" "--verify of a logical table: $(cat "$W/v.out")"
it_assert_contains "$W/v.out" "public.orders_all: same (30000 rows"
DB=dw psql_on dst -c "delete from orders_all where id = 5 and origin = 'shop_2.orders_1'" \
	-c "update orders_all set note = 'x' where id = 6 and origin = 'shop_1.orders_1'" \
	-c "insert into orders_all values (7, 'dup', 'shop_3.orders_1'), (20000, 'far', 'shop_1.orders_1')" >/dev/null
vsh
it_assert_eq 1 "$rc" "--verify of a damaged logical table: $(cat "$W/v.out")"
it_assert_contains "$W/v.out" "public.orders_all: 1 missing, 2 extra, 1 different (source 30000 rows, destination 30001); missing (id)=(5); extra (id)=(7), (20000); different (id)=(6)"
vsh --repair
it_assert_eq 0 "$rc" "--verify --repair of a logical table: $(cat "$W/v.out")"
it_assert_eq 30000 "$(DB=dw psql_on dst -Atc "select count(*) from orders_all where note = split_part(origin, '.', 1) || '-' || id")" \
	"every shard's rows, each once, after --repair"
it_pass "a logical table: its shards summed, duplicates told apart by hash, --repair of missing, extra and different rows"

# ---- 5. bad input ------------------------------------------------------------------
verify public.nosuch
it_assert_eq 1 "$rc" "an unknown table: $(cat "$W/v.out")"
it_assert_contains "$W/v.out" "--verify public.nosuch: the job selects no such table"
rc=0
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job.ini" --repair >"$W/v.out" 2>&1 || rc=$?
it_assert_eq 2 "$rc" "--repair alone: $(cat "$W/v.out")"
it_assert_contains "$W/v.out" "--repair goes with --verify"
it_pass "bad input: unknown table, --repair alone"
