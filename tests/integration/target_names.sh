#!/bin/bash
# Where tables go (issue 13, defects 4 and 5, and the start-up hint):
# - two source tables routed to one target outside [logical_table.*]
#   (public.t and s2.t under the default target.schema) are refused by
#   --check (exit 3), by --preview (marked) and at start (exit 1), naming
#   both sources and the target, and nothing is created or written;
# - a target name longer than 63 bytes (PostgreSQL would cut it, merging
#   tables that differ after byte 63) is refused, naming both names;
# - routing them apart (target.schema = #{source_schema_name}) passes;
# - a source that cannot be read at start says so, not "fix the target
#   tables".
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst
long=$(printf 'x%.0s' $(seq 1 59)) # 59 + "_a"/"_b" = 61 bytes: legal
psql_on src >/dev/null <<SQL
create schema s2;
create table public.t (id int primary key, v text);
create table s2.t (id int primary key, w int);
create table ${long}_a (id int primary key);
create table ${long}_b (id int primary key);
SQL
psql_on dst -c "create schema postgres" >/dev/null
psql_on dst -c "create schema public2" >/dev/null

job() { # job NAME TABLES TARGET-SCHEMA TARGET-TABLE [USER]
	cat >"$W/$1.ini" <<INI
[job]
name = $1
mode = incremental
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=${5:-postgres} dbname=postgres
tables = $2
slot.flush.delay.time = 0
[sink]
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres
target.schema = $3
target.table = $4
INI
}
run() { # run EXPECTED-EXIT JOB ARGS...
	want=$1 name=$2
	shift 2
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$name.ini" "$@" >"$W/$name.out" 2>&1 && rc=0 || rc=$?
	it_assert_eq "$want" "$rc" "exit code of $name $* ($(tail -n 5 "$W/$name.out"))"
}

# two sources, one target
job collide 'public.t, s2.t' '#{source_db_name}' '#{source_table_name}'
run 3 collide --check
it_assert_contains "$W/collide.out" "source tables postgres.public.t and postgres.s2.t would both be written into target table postgres.t"
it_assert_contains "$W/collide.out" "declare a [logical_table.NAME]"
run 0 collide --preview
it_assert_contains "$W/collide.out" "refused: source tables postgres.public.t and postgres.s2.t"
run 1 collide
it_assert_contains "$W/collide.out" "would both be written into target table postgres.t"
it_assert_eq 0 "$(psql_on dst -Atc "select count(*) from pg_tables where schemaname = 'postgres'")" "no target created for colliding tables"
it_assert_eq 0 "$(psql_on src -Atc "select count(*) from pg_replication_slots")" "no slot created for a refused job"
it_pass "two sources into one target refused by --check, --preview and at start"

# routed apart: passes, and streams into two tables
job apart 'public.t, s2.t' '#{source_schema_name}' '#{source_table_name}'
psql_on dst -c "create schema s2" >/dev/null
run 0 apart --check
it_pass "the same tables routed apart pass --check"

# a name PostgreSQL would cut
job long "public.${long}_*" public "ods_prefix_#{source_table_name}"
run 3 long --check
it_assert_contains "$W/long.out" "target name \"ods_prefix_${long}_a\" of source table postgres.public.${long}_a is 72 bytes long"
it_assert_contains "$W/long.out" "set target.table to a shorter pattern"
run 1 long
it_assert_eq 0 "$(psql_on dst -Atc "select count(*) from pg_tables where tablename like 'ods_prefix%'")" "no truncated target created"
job short "public.${long}_*" public '#{source_table_name}'
run 0 short --check
it_pass "target names over 63 bytes refused, naming both names"

# a source that cannot be read at start: the hint names the source
job nologin 'public.t' public '#{source_table_name}' nosuchuser
run 1 nologin
it_assert_contains "$W/nologin.out" "the source could not be read"
grep -q "fix the target tables" "$W/nologin.out" && it_fail "a source login failure blames the target tables: $(cat "$W/nologin.out")"
it_pass "a source that cannot be read is named as such at start"

# a destination role that may not create the target table: the hint names
# CREATE on the schema, not INSERT/SELECT/UPDATE/DELETE
psql_on dst >/dev/null <<'SQL'
create role weak login;
grant create on database postgres to weak;
grant usage on schema public2 to weak;
SQL
job weak 'public.t' public2 '#{source_table_name}'
sed -i "s/^conninfo = \(.*port=$dst_PORT\) user=postgres/conninfo = \1 user=weak/" "$W/weak.ini"
run 1 weak
it_assert_contains "$W/weak.out" "grant the destination user CREATE on the target schema"
grep -q "INSERT, SELECT, UPDATE" "$W/weak.out" && it_fail "the hint names the wrong rights: $(cat "$W/weak.out")"
it_pass "a missing CREATE right on the target schema gets a hint naming it"

# --preview shows a composite key in its own order
psql_on src -c "create table public.k2 (a int, b int, primary key (b, a))" >/dev/null
job keyorder 'public.k2' public '#{source_table_name}'
run 0 keyorder --preview
it_assert_contains "$W/keyorder.out" "postgres.public.k2 -> public.k2 (2 columns, key: b, a)"
it_pass "--preview shows the key in its own order"
