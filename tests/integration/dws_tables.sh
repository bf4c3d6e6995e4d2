#!/bin/bash
# Target tables ahead of the stream: syncd --check reports every problem
# (missing schema, missing table without auto_create_table, extra NOT NULL
# column without default, no key) and exits 3; syncd --create-tables
# creates the missing tables from the source (enum and composite types,
# and arrays of them, as text; domains as their base type;
# NOT NULL, primary key, ordinary indexes, comments)
# and leaves existing ones alone; a job with auto_create_table creates the
# tables at start and streams into them.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst
psql_on src >/dev/null <<'SQL'
create type mood as enum ('sad', 'happy');
create type pair as (x float8, label text);
create domain short_text as varchar(20) check (value <> '');
create table orders (id bigint, line int, item short_text not null,
  feeling mood, note text, placed timestamptz default now(),
  p pair, moods mood[],
  primary key (id, line));
create index orders_item on orders (item, line);
create unique index orders_note on orders (note);
comment on table orders is 'customer''s orders';
comment on column orders.item is 'what was bought';
create table "Odd Name" ("Id" int primary key, "select" text);
create table kept (id int primary key, v text);
SQL
psql_on dst -c "create schema app" >/dev/null
psql_on dst -c "create table app.kept (id int primary key, v text, extra int)" >/dev/null

job() { # job NAME SCHEMA AUTO
	cat >"$W/$1.ini" <<INI
[job]
name = $1
mode = incremental
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
[sink]
write_mode = copy
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres
target.schema = $2
auto_create_table = $3
batch.interval = 200ms
INI
}
run() { # run EXPECTED-EXIT JOB ARGS...
	want=$1 name=$2
	shift 2
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$name.ini" "$@" >"$W/$name.out" 2>&1 && rc=0 || rc=$?
	it_assert_eq "$want" "$rc" "exit code of $name $* ($(tail -n 5 "$W/$name.out"))"
}

job noschema nowhere true
run 3 noschema --check
it_assert_contains "$W/noschema.out" "schema nowhere of target table nowhere.orders does not exist"
it_assert_contains "$W/noschema.out" "#{source_schema_name} keeps the source's schema"

job nocreate app false
run 3 nocreate --check
it_assert_contains "$W/nocreate.out" "target table app.orders does not exist; create it, run syncd --create-tables"
it_assert_contains "$W/nocreate.out" "target table app.Odd Name does not exist"
run 1 nocreate
it_assert_contains "$W/nocreate.out" "does not exist; create it, run syncd --create-tables"

psql_on dst -c "alter table app.kept alter column extra set not null" >/dev/null
job create app true
run 3 create --check
it_assert_contains "$W/create.out" 'target table app.kept has a NOT NULL column "extra" without default'
it_assert_contains "$W/create.out" "target table app.orders does not exist; it will be created"
psql_on dst -c "alter table app.kept alter column extra set default 0, drop constraint kept_pkey" >/dev/null
run 3 create --check
it_assert_contains "$W/create.out" "target table app.kept has no primary key or unique index on (id)"
psql_on dst -c "alter table app.kept add primary key (id)" >/dev/null
run 0 create --check
it_pass "--check names a missing schema, missing tables, an extra NOT NULL column and a missing key"

run 0 create --create-tables
cols=$(psql_on dst -Atc "select string_agg(attname || ' ' || format_type(atttypid, atttypmod) || case when attnotnull then ' not null' else '' end, ', ' order by attnum) from pg_attribute where attrelid = 'app.orders'::regclass and attnum > 0")
it_assert_eq "id bigint not null, line integer not null, item character varying(20) not null, feeling text, note text, placed timestamp with time zone, p text, moods text[]" "$cols" "app.orders columns (enum, composite and their arrays as text)"
it_assert_eq "id,line" "$(psql_on dst -Atc "select string_agg(a.attname, ',' order by k.o) from pg_index i, unnest(i.indkey) with ordinality k(n, o), pg_attribute a where i.indrelid = 'app.orders'::regclass and i.indisprimary and a.attrelid = i.indrelid and a.attnum = k.n")" "primary key"
it_assert_eq "item,line" "$(psql_on dst -Atc "select string_agg(a.attname, ',' order by k.o) from pg_index i, unnest(i.indkey) with ordinality k(n, o), pg_attribute a where i.indrelid = 'app.orders'::regclass and not i.indisprimary and a.attrelid = i.indrelid and a.attnum = k.n")" "ordinary index (the unique one is not copied)"
it_assert_eq "customer's orders|what was bought" "$(psql_on dst -Atc "select obj_description('app.orders'::regclass, 'pg_class') || '|' || col_description('app.orders'::regclass, 3)")" "comments"
it_assert_eq 1 "$(psql_on dst -Atc "select count(*) from pg_tables where schemaname = 'app' and tablename = 'Odd Name'")" "the table with an odd name"
it_assert_eq "id integer, v text, extra integer" "$(psql_on dst -Atc "select string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' order by attnum) from pg_attribute where attrelid = 'app.kept'::regclass and attnum > 0")" "an existing table is left alone"
it_pass "--create-tables: types, enum and domain, NOT NULL, key, index, comments; existing tables kept"

# a job creates what is missing at start, then streams into it
psql_on src -c "create table later (id int primary key, v text not null)" >/dev/null
syncd_start "$W/run.log" "$W/create.ini"
psql_on src -c "insert into later values (1, 'one'), (2, 'two')" \
	-c "insert into orders values (1, 1, 'tea', 'happy', 'n1', default, '(1.5,\"a b\")', '{sad,happy}')" \
	-c "insert into \"Odd Name\" values (7, 'x')" >/dev/null
slot_wait src syncd_create "$(psql_on src -Atc "select pg_current_wal_lsn()")"
syncd_stop "$SYNCD_PID" "$W/run.log"
it_assert_contains "$W/run.log" "created target table app.later"
for t in later orders '"Odd Name"'; do
	it_assert_eq "$(table_hash src postgres "$t")" "$(table_hash dst postgres "app.$t")" "$t"
done
it_pass "auto_create_table: created at start, then streamed into"
