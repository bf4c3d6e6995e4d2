#!/bin/bash
# What the DWS sinks must get exactly right, in both write modes (the
# upsert job keeps names as they are, the copy job folds them to lower
# case): a type matrix with COPY's special characters, unchanged TOAST
# values with and without a key change, changes of one key folded inside a
# transaction, TRUNCATE in the middle of a transaction, odd names, and
# sink.server.timezone into a timestamp column.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst

ddl() { # ddl TIMESTAMP-TYPE: the tables (tz.at differs at the destination)
	cat <<SQL
create type mood as enum ('sad', 'ok', 'happy');
create table types (id int primary key, b bool, i2 smallint, i8 bigint,
  n numeric(20,5), f4 real, f8 double precision, t text, vc varchar(50),
  c char(5), by bytea, d date, ts timestamp, tstz timestamptz, tm time,
  iv interval, j json, jb jsonb, u uuid, arr int[], tarr text[], ip inet,
  bits bit(4), vb varbit(8), pt point, e mood);
create table toast (id int primary key, big text, small int);
alter table toast alter column big set storage external;
create table fold (id int primary key, v text, n int);
create table trunc (id int primary key, v text);
create table "Mixed Case" ("Key" int primary key, "select" text, "a b" text);
create table tz (id int primary key, at $1);
SQL
}
ddl timestamptz | psql_on src >/dev/null
for mode in upsert copy; do
	psql_on dst -c "create database d_$mode" >/dev/null
done
ddl timestamp | DB=d_upsert psql_on dst >/dev/null
# case-insensitive job: the destination's names are in lower case
ddl timestamp | sed 's/"Mixed Case" ("Key"/"mixed case" (key/' |
	DB=d_copy psql_on dst >/dev/null

for mode in upsert copy; do
	cat >"$W/$mode.ini" <<INI
[job]
name = sem_$mode
mode = incremental
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
[sink]
write_mode = $mode
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=d_$mode
target.schema = #{source_schema_name}
sink.field.name.case-sensitive = $([ $mode = upsert ] && echo true || echo false)
sink.server.timezone = UTC+08:00
batch.interval = 300ms
INI
	syncd_start "$W/$mode.log" "$W/$mode.ini"
	eval "pid_$mode=$SYNCD_PID"
done

psql_on src >/dev/null <<'SQL'
insert into types values
 (1, true, -32768, 9223372036854775807, 12345.67891, 1.5e-7, 2.718281828459045,
  E'tab\there\nnew line\\back slash\r', 'x', 'ab', '\x00ff5c0a', '2024-02-29',
  '2024-01-01 12:34:56.789012', '2024-06-01 00:00:00+05:30', '23:59:59.999999',
  '1 year 2 mons -3 days 04:05:06', '{"a": [1, "\\t"]}', '{"k": "v\n"}',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,NULL,3}', E'{"a\\"b","c,d",NULL}',
  '192.168.0.1/24', B'1010', B'101', '(1.5,-2)', 'happy'),
 (2, false, 0, 0, 0, 'NaN', '-Infinity', '\N', '\.', '', '', '0001-01-01',
  'infinity', '-infinity', '00:00', '0', 'null', '[]', NULL, '{}', '{}', '::1',
  B'0000', B'', '(0,0)', 'sad'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, true, 1, 1, -0.00001, 3.4028235e38, 1e-300, E'\\.\n\\.\nemoji 😀 ünïcödé',
  E'line\\N', 'é', '\x5c4e', '2000-01-01', '2000-01-01', '2000-01-01 00:00+00',
  '12:00', '1 day', '"\\u00e9"', '{"😀": 1}', '00000000-0000-0000-0000-000000000000',
  '{-1}', '{""}', '10.0.0.0/8', B'1111', B'11111111', '(-1e300,1e-300)', 'ok');
update types set t = t || ' updated', tstz = tstz + interval '1 hour' where id = 1;
delete from types where id = 3;
insert into types (id, t) values (3, E'back\\\\slash only');

insert into toast values (1, repeat('0123456789', 20000), 1),
                         (5, repeat('abcdefghij', 20000), 5);
SQL
# later transactions: the toasted values are no longer in the batch
sleep 1
psql_on src >/dev/null <<'SQL'
update toast set small = small + 1 where id = 1;
update toast set id = 2, small = 20 where id = 1;
begin;
insert into toast values (7, repeat('klmnopqrst', 20000), 7);
update toast set small = 70 where id = 7;
update toast set id = 8 where id = 7;
update toast set id = 6 where id = 5;
update toast set small = 60 where id = 6;
commit;

begin;
insert into fold values (10, 'a', 0);
delete from fold where id = 10;
insert into fold values (10, 'c', 0);
insert into fold values (11, 'x', 0);
SQL
for i in $(seq 1 100); do echo "update fold set n = n + 1, v = 'v$i' where id = 11;"; done |
	sed '$a commit;' | sed '1i begin;' | psql_on src >/dev/null
psql_on src >/dev/null <<'SQL'
begin;
insert into fold values (12, 'gone', 0);
update fold set v = 'still gone' where id = 12;
delete from fold where id = 12;
insert into trunc values (1, 'before');
truncate trunc;
insert into trunc values (2, 'after');
update trunc set v = 'after!' where id = 2;
commit;
insert into "Mixed Case" values (1, 'from', 'spaced'), (2, 'where', NULL);
update "Mixed Case" set "select" = 'order' where "Key" = 2;
insert into tz values (1, '2024-01-01 00:00:00+00'), (2, '2024-07-01 23:30:00-02');
SQL
end=$(psql_on src -Atc "select pg_current_wal_lsn()")
for mode in upsert copy; do
	slot_wait src "syncd_sem_$mode" "$end"
	eval "syncd_stop \$pid_$mode \"$W/$mode.log\""
done

for t in types toast fold trunc; do
	want=$(table_hash src postgres "$t")
	for mode in upsert copy; do
		it_assert_eq "$want" "$(table_hash dst "d_$mode" "$t")" "$t in d_$mode"
	done
done
it_assert_eq "$(table_hash src postgres '"Mixed Case"')" \
	"$(table_hash dst d_upsert '"Mixed Case"')" "case-sensitive names"
it_assert_eq "$(table_hash src postgres '"Mixed Case"')" \
	"$(table_hash dst d_copy '"mixed case"')" "folded names"
for mode in upsert copy; do
	got=$(DB=d_$mode psql_on dst -Atc "select string_agg(at::text, ',' order by id) from tz")
	it_assert_eq "2024-01-01 08:00:00,2024-07-02 09:30:00" "$got" "UTC+08:00 in d_$mode"
	got=$(DB=d_$mode psql_on dst -Atc "select count(*) from toast where length(big) = 200000")
	it_assert_eq 3 "$got" "toasted values kept in d_$mode"
done
it_pass "types, COPY escaping, TOAST, folding, TRUNCATE, names and time zone in both modes"
