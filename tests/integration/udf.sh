#!/bin/bash
# Additional fields (the udf transform) end to end, full+incremental: the
# fields are created with their types on the tables `tables` matches (not
# on the others), filled for copied and streamed rows: now() in a time
# zone, concat of built-in variables, substring and date_format of columns,
# if with a comparison, unix_timestamp. An UPDATE that does not send a
# TOASTed column keeps the field computed from it. A row whose expression
# fails (a date that is not one) is dirty data, archived with the reason;
# the other rows are applied. A bad expression or time zone is refused at
# load, showing where.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst
psql_on src -c "create database u" >/dev/null
psql_on dst -c "create database u" >/dev/null
DB=u psql_on src >/dev/null <<'SQL'
create table t (id int primary key, name text, created date, n int, doc text);
create table other (id int primary key, name text);
insert into t values
  (1, 'Alpha', '2026-03-08', 5, 'x'),
  (2, 'añb€z', '2026-11-01', 500, 'y'),
  (3, 'no date', 'infinity', 1, 'z');
insert into other values (1, 'left alone');
SQL

cat >"$W/job.ini" <<INI
[job]
name = u
mode = full+incremental
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=u
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
[sink]
write_mode = upsert
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=u
target.schema = public
batch.interval = 200ms
[transform.extra]
plugin = udf
tables = public.t
field.etl_time = timestamp : now('UTC+08:00')
field.origin = varchar(128) : concat(source.schema, '.', source.table)
field.code = varchar(8) : substring(#name, 1, 3)
field.day = varchar(16) : date_format(#created, 'yyyy/MM/dd EEE', 'UTC', 'UTC')
field.size = text : if(#n > 100, 'big', 'small')
field.epoch_ms = bigint : unix_timestamp(#created, 'ms')
field.doclen = text : concat(#doc, '!')
[dirty]
enabled = true
threshold = 10
policy = archive
[archiver]
plugin = file
directory = $W/dirty
INI

syncd_start "$W/run.log" "$W/job.ini"
it_assert_eq "id name created n doc etl_time origin code day size epoch_ms doclen" \
	"$(DB=u psql_on dst -Atc "select string_agg(column_name, ' ' order by ordinal_position) from information_schema.columns where table_name = 't'")" \
	"the fields are columns after the source's"
it_assert_eq "bigint timestamp without time zone character varying(128)" \
	"$(DB=u psql_on dst -Atc "select string_agg(coalesce(data_type || coalesce('(' || character_maximum_length || ')', ''), ''), ' ' order by column_name) from information_schema.columns where table_name = 't' and column_name in ('etl_time', 'origin', 'epoch_ms')")" \
	"field types as written"
it_assert_eq "id name" "$(DB=u psql_on dst -Atc "select string_agg(column_name, ' ' order by ordinal_position) from information_schema.columns where table_name = 'other'")" "a table tables does not match has no fields"

big="(select string_agg(md5(g::text), '') from generate_series(1, 200) g)"
DB=u psql_on src >/dev/null <<SQL
insert into t values (4, 'Delta', '2024-02-29', 101, $big);
update t set n = 7 where id = 4;
update t set name = 'Alphabet' where id = 1;
insert into t values (5, 'bad', '-infinity', 1, 'w');
delete from t where id = 2;
insert into t values (6, 'Zed', '1969-12-31', null, null);
SQL
slot_wait src syncd_u "$(DB=u psql_on src -Atc "select pg_current_wal_lsn()")"
syncd_stop "$SYNCD_PID" "$W/run.log"

got=$(DB=u psql_on dst -At <<'SQL'
select string_agg(concat_ws('|', id, origin, code, day, size, epoch_ms, length(doclen)), E'\n' order by id) from t
SQL
)
it_assert_eq "1|public.t|lph|2026/03/08 Sun|small|1772928000000|2
4|public.t|elt|2024/02/29 Thu|small|1709164800000|6401
6|public.t|ed|1969/12/31 Wed|small|-86400000|1" "$got" "field values of copied and streamed rows"
# now('UTC+08:00'): eight hours east of UTC, when the row went through
it_assert_eq "t t t" "$(DB=u psql_on dst -Atc "select string_agg((abs(extract(epoch from etl_time - (now() at time zone 'UTC' + interval '8 hours'))) < 120)::text, ' ' order by id) from t" | sed 's/true/t/g')" "etl_time is now in UTC+08:00"
it_pass "additional fields of copied and streamed rows: now(), concat of variables, substring, date_format, if, unix_timestamp; unchanged TOAST kept"

# rows whose expression fails are dirty data, with the reason
cat "$W"/dirty/*.jsonl >"$W/dirty.jsonl"
it_assert_eq "3 5" "$(jq -r '.key.id' "$W/dirty.jsonl" | sort -n | xargs)" "dirty rows"
it_assert_eq 2 "$(grep -c 'field.day = date_format' "$W/dirty.jsonl")" "the reason names the field"
it_assert_eq "" "$(DB=u psql_on dst -Atc "select string_agg(id::text, ',') from t where id in (3, 5)")" "dirty rows not applied"
it_pass "a row whose expression fails is archived as dirty data, naming the field"

# expressions and time zones are checked at load, showing where
bad_job() { # bad_job 'field.x = ...' expected...
	sed "s|^field.doclen = .*|$1|" "$W/job.ini" >"$W/bad.ini"
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/bad.ini" --check >"$W/bad.log" 2>&1 && rc=0 || rc=$?
	[ "$rc" -ne 0 ] || it_fail "accepted: $1"
	shift
	for want in "$@"; do it_assert_contains "$W/bad.log" "$want"; done
}
bad_job "field.doclen = text : concat(#doc,, '!')" "field.doclen" "concat(#doc,, '!')" "              ^"
bad_job "field.doclen = text : now('Mars/Olympus')" "unknown time zone"
bad_job "field.doclen = text : date_format(#doc, #doc)" "string literal"
bad_job "field.doclen = text; drop table x : now()" "is not a column type"
bad_job "field.doclen = text : concat(#nosuch, 'x')" "has no column nosuch"
it_pass "bad expressions, zones, types and columns are refused before anything runs"
