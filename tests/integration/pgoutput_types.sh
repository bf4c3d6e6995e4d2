#!/bin/bash
# A type matrix: every value arrives exactly as the server's text form
# (its output function, in a session with the settings syncd uses on its
# replication connection): integers at their limits, numeric NaN and big
# precision, floats incl. Infinity, NaN and -0, text with tab, newline,
# backslash, quotes and emoji, empty string vs NULL, bytea, dates and
# timestamps incl. infinity and BC, intervals, uuid, json/jsonb, arrays
# with NULLs and quotes, an enum, a domain, network and bit types.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
psql_on src -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
create type mood as enum ('sad', 'ok', 'happy');
create domain posint as int check (value > 0);
create table types (
  id int primary key,
  c_int2 int2, c_int4 int4, c_int8 int8,
  c_num numeric, c_num_p numeric(12,4),
  c_f4 float4, c_f8 float8,
  c_text text, c_vc varchar(10), c_char char(5),
  c_bytea bytea, c_bool bool,
  c_date date, c_ts timestamp, c_tstz timestamptz, c_time time,
  c_timetz timetz, c_interval interval,
  c_uuid uuid, c_json json, c_jsonb jsonb,
  c_int_arr int[], c_text_arr text[],
  c_enum mood, c_domain posint,
  c_inet inet, c_cidr cidr, c_mac macaddr,
  c_bit bit(4), c_varbit varbit, c_point point
);
SQL

cat >"$W/job.ini" <<INI
[job]
name = types
mode = incremental
state_dir = $W/state
[source]
plugin = pgoutput
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
slot.flush.delay.time = 0
[sink]
plugin = jsonl
path = $W/out.jsonl
batch.interval = 100ms
INI
syncd_start "$W/syncd.log" "$W/job.ini"

psql_on src -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
insert into types values
 (1, 1, 2, 3, 1.5, 2.25, 1.25, 2.5, 'plain', 'short', 'ab', '\x0102', true,
  '2026-11-24', '2026-11-24 10:11:12.123456', '2026-11-24 10:11:12+02',
  '10:11:12', '10:11:12+03', '1 day', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{"a": 1}', '{"b": [1, 2]}', '{1,2,3}', '{x,y}', 'ok', 1,
  '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '1010', '1', '(1,2)'),
 (2, -32768, -2147483648, 9223372036854775807, 'NaN',
  12345678.1234, 'Infinity', '-0', E'tab\there\nnew\\line ''q'' "d" \U0001F600',
  '', '', '\x00ff', false,
  'infinity', '0044-03-15 12:00:00 BC', '-infinity', '24:00:00', '00:00:00-12',
  '1 year 2 mons -3 days 04:05:06.789', '00000000-0000-0000-0000-000000000000',
  '{"e": "\u00e9", "n": null}', '{"z": 1, "a": {"b": "c"}}',
  '{NULL,-1}', '{"a b",NULL,"c\"d",""}', 'happy', 2147483647,
  '::1', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', '0000', '', '(-1.5,1e+300)'),
 (3, null, null, null, 123456789012345678901234567890.123456789012345678901234567890,
  null, 'NaN', '1e-300', null, null, null, null, null, null, null, null, null, null,
  null, null, null, null, null, null, null, null, null, null, null, null, null, null);
SQL

for _ in $(seq 1 100); do
	[ "$(grep -c '"op":"insert"' "$W/out.jsonl" 2>/dev/null)" -ge 3 ] && break
	sleep 0.1
done
syncd_stop "$SYNCD_PID" "$W/syncd.log"

# the server's own text of every column, as JSON
# (format's %s applies the type's output function, as pgoutput does; a
# cast to text would not: bool::text is 'true', char(n)::text drops padding)
cols=$(psql_on src -Atc "select string_agg(format('%L, case when %I is null then null else format(''%%s'', %I) end', column_name, column_name, column_name), ', ' order by ordinal_position) from information_schema.columns where table_name = 'types'")
psql_on src -At >"$W/expect.json" <<SQL
set DateStyle = ISO; set IntervalStyle = postgres; set extra_float_digits = 3;
set TimeZone = 'UTC'; set bytea_output = hex;
select json_agg(json_build_object($cols) order by id) from types;
SQL
jq -s '[.[] | select(.op=="insert") | .new] | sort_by(.id | tonumber)' "$W/out.jsonl" >"$W/got.json"
jq -S . "$W/expect.json" >"$W/expect.sorted"
jq -S . "$W/got.json" >"$W/got.sorted"
diff "$W/expect.sorted" "$W/got.sorted" >"$W/diff" ||
	it_fail "values differ from the server's text form: $(head -n 40 "$W/diff")"
it_assert_eq 3 "$(jq length "$W/got.json")" "three rows"
it_assert_eq '"NaN"' "$(jq '.[1].c_num' "$W/got.json")" "numeric NaN"
it_assert_eq '""' "$(jq '.[1].c_vc' "$W/got.json")" "empty string is not NULL"
it_assert_eq 'null' "$(jq '.[2].c_text' "$W/got.json")" "NULL is null"
it_pass "$(jq '.[0] | length' "$W/got.json") columns x 3 rows exactly as the server prints them"
