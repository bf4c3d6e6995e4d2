#!/bin/bash
# schema.evolution (issue 19, item 1), in both write modes, under a load of
# small transactions on the same table:
#  A. ADD COLUMN inside a transaction with rows before and after it
#  B. ADD COLUMN ... NOT NULL DEFAULT: rows already there take the default
#  C. ADD COLUMN then a TOASTed value in it, and updates that leave it
#     unchanged
#  D. DROP COLUMN: the target keeps it, later rows leave it NULL
#  E. varchar(20) -> varchar(100), integer -> bigint (a value past 2^31)
#  F. kill -9 right after an ADD COLUMN and its rows: a restart converges
#  J. ADD COLUMN in a transaction the walsender sends before its commit is
#     visible to other sessions (held by synchronous_standby_names)
#  every destination table equals its source (syncd --verify: the source's
#  columns), then:
#  G. a narrowing (varchar(100) -> varchar(95)) stops the job before the
#     changes that follow, naming the table, column, both types and the fix
#  H. a RENAME stops the job, naming the ALTER to run
#  I. schema.evolution = none: the first difference stops the job with the
#     exact ALTER to run
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst

job() { # job MODE [extra sink lines]
	cat >"$W/$1.ini" <<INI
[job]
name = ev_$1
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=e_$1
status.interval = 200ms
[sink]
write_mode = ${2:-$1}
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=e_$1
target.schema = public
batch.interval = 200ms
${3:-}
INI
}
load_start() { # small transactions on t until $W/stop.$1
	rm -f "$W/stop.$1"
	(
		i=0
		while [ ! -e "$W/stop.$1" ]; do
			i=$((i + 1))
			DB=e_$1 psql_on src -c "insert into t (id, v, n) values (100000 + $i, 'load', $i)" \
				-c "update t set n = n + 1 where id = $((i % 100 + 1))" >/dev/null 2>&1 || sleep 0.1
		done
	) &
	LOAD_PID=$!
}
load_stop() { touch "$W/stop.$1"; wait "$LOAD_PID" || true; }
synced() { slot_wait src "syncd_ev_$1" "$(DB=e_$1 psql_on src -Atc 'select pg_current_wal_lsn()')"; }
exited() { # exited: syncd ($SYNCD_PID) exits within 60 s; its code in rc
	for _ in $(seq 1 600); do
		kill -0 "$SYNCD_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$SYNCD_PID" 2>/dev/null && it_fail "syncd still runs: $(tail -n 5 "$W/$mode.log")"
	rc=0
	wait "$SYNCD_PID" || rc=$?
}
verify() { # verify MODE: exit code in rc, output in $W/v.out
	rc=0
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$1.ini" --verify >"$W/v.out" 2>&1 || rc=$?
}

for mode in upsert copy; do
	S() { DB=e_$mode psql_on src -Atc "$1"; }
	D() { DB=e_$mode psql_on dst -Atc "$1"; }
	psql_on src -c "create database e_$mode" >/dev/null
	psql_on dst -c "create database e_$mode" >/dev/null
	S "create table t (id int primary key, v varchar(20), n int)" >/dev/null
	S "insert into t select g, 'v' || g, g from generate_series(1, 100) g" >/dev/null
	job $mode
	syncd_start "$W/$mode.log" "$W/$mode.ini"
	load_start $mode
	sleep 0.5
	# A
	DB=e_$mode psql_on src >/dev/null <<'SQL'
begin;
insert into t values (1001, 'before', 1);
alter table t add column a int;
insert into t values (1002, 'after', 2, 5);
commit;
SQL
	# B, C, D, E
	S "alter table t add column b text not null default 'dflt'" >/dev/null
	S "insert into t (id, v, n, b) values (1003, 'b', 3, 'given')" >/dev/null
	S "alter table t add column doc text" >/dev/null
	S "update t set doc = (select string_agg(md5(g::text), '') from generate_series(1, 300) g) where id <= 10" >/dev/null
	S "update t set n = n + 1000 where id <= 10" >/dev/null
	S "alter table t drop column a" >/dev/null
	S "insert into t (id, v, n) values (1004, 'd', 4)" >/dev/null
	S "alter table t alter column v type varchar(100), alter column n type bigint" >/dev/null
	S "insert into t (id, v, n) values (1005, repeat('w', 90), 5000000000)" >/dev/null
	sleep 0.5
	load_stop $mode
	synced $mode
	syncd_alive "the ALTERs ($mode)" "$W/$mode.log"
	it_assert_eq "|5" "$(D "select string_agg(coalesce(a::text, ''), '|' order by id) from t where id in (1001, 1002)")" \
		"A ($mode): the row before the ALTER without the column, the row after with it"
	it_assert_eq "given:dflt" "$(D "select (select b from t where id = 1003) || ':' || (select b from t where id = 1)")" \
		"B ($mode): the value given, and the default for rows already there"
	it_assert_eq "text NOT NULL DEFAULT 'dflt'::text" \
		"$(D "select format_type(atttypid, atttypmod) || case when attnotnull then ' NOT NULL' else '' end || ' DEFAULT ' || pg_get_expr(adbin, adrelid) from pg_attribute join pg_attrdef on adrelid = attrelid and adnum = attnum where attrelid = 't'::regclass and attname = 'b'")" \
		"B ($mode): the column added with its default"
	it_assert_eq "10|9600" "$(D "select count(*), min(length(doc)) from t where id <= 10 and n > 1000")" \
		"C ($mode): the TOASTed values kept through updates that left them unchanged"
	it_assert_eq "true:" "$(D "select (count(*) = 1)::text || ':' || coalesce((select a::text from t where id = 1004), '') from pg_attribute where attrelid = 't'::regclass and attname = 'a' and not attisdropped")" \
		"D ($mode): the dropped column kept at the destination, NULL for later rows"
	it_assert_eq "character varying(100) bigint" "$(D "select string_agg(format_type(atttypid, atttypmod), ' ' order by attname desc) from pg_attribute where attrelid = 't'::regclass and attname in ('v', 'n')")" \
		"E ($mode): the widened types"
	it_assert_eq 5000000000 "$(D "select n from t where id = 1005")" "E ($mode): a value past 2^31"
	it_assert_contains "$W/$mode.log" "target table public.t: a column added for source table"
	it_assert_contains "$W/$mode.log" "column a of source table e_$mode.public.t was dropped: target table public.t keeps it"
	verify $mode
	it_assert_eq 0 "$rc" "--verify after A-E ($mode): $(cat "$W/v.out")"
	it_pass "$mode: columns added (in a transaction, NOT NULL DEFAULT, TOASTed), dropped and widened under load"

	# F: kill -9 right after an ALTER and its rows
	S "alter table t add column k int" >/dev/null
	S "insert into t (id, v, n, k) values (1006, 'k', 6, 7)" >/dev/null
	sleep 0.3
	kill -9 "$SYNCD_PID"
	wait "$SYNCD_PID" 2>/dev/null || true
	S "insert into t (id, v, n, k) values (1007, 'k', 7, 8)" >/dev/null
	syncd_start "$W/$mode.log" "$W/$mode.ini"
	synced $mode
	it_assert_eq "7|8" "$(D "select string_agg(k::text, '|' order by id) from t where id in (1006, 1007)")" \
		"F ($mode): the added column and its rows after kill -9"
	verify $mode
	it_assert_eq 0 "$rc" "--verify after kill -9 ($mode): $(cat "$W/v.out")"
	it_pass "$mode: kill -9 right after an ADD COLUMN converges"

	# J: an ADD COLUMN whose transaction reaches syncd before other
	# sessions can see it: a commit waiting for a synchronous standby is
	# flushed, decoded and sent, but stays invisible until the wait ends
	psql_on src -c "alter system set synchronous_standby_names = 'nobody'" -c "select pg_reload_conf()" >/dev/null
	DB=e_$mode psql_on src -c "begin" -c "alter table t add column j int" \
		-c "insert into t (id, v, n, j) values (1010, 'j', 10, 11)" -c "commit" >/dev/null 2>&1 &
	held=$!
	sleep 1.5
	it_assert "J ($mode): the commit still waits for the standby" kill -0 $held
	psql_on src -c "alter system reset synchronous_standby_names" -c "select pg_reload_conf()" >/dev/null
	wait $held
	synced $mode
	syncd_alive "J ($mode)" "$W/$mode.log"
	it_assert_eq "integer:11" "$(D "select format_type(atttypid, atttypmod) || ':' || (select j from t where id = 1010) from pg_attribute where attrelid = 't'::regclass and attname = 'j'")" \
		"J ($mode): the column added with its type, and its row"
	it_pass "$mode: a column whose commit is sent before it is visible is read once it is"

	# G: a narrowing stops the job before what follows
	S "insert into t (id, v, n) values (1008, 'g', 8)" >/dev/null
	synced $mode
	S "alter table t alter column v type varchar(95)" >/dev/null
	S "insert into t (id, v, n) values (1009, 'after the narrowing', 9)" >/dev/null
	exited
	it_assert_eq 1 "$rc" "G ($mode): exit code after a narrowing: $(tail -n 5 "$W/$mode.log")"
	it_assert_contains "$W/$mode.log" "column v of source table e_$mode.public.t changed type from character varying(100) to character varying(95) while the job streamed, which is not a widening"
	it_assert_contains "$W/$mode.log" "ALTER TABLE \"public\".\"t\" ALTER COLUMN \"v\" TYPE character varying(95)"
	it_assert_eq 0 "$(D "select count(*) from t where id = 1009")" "G ($mode): nothing after the narrowing applied"
	# the fix the message names, then on
	D "alter table t alter column v type varchar(95)" >/dev/null
	syncd_start "$W/$mode.log" "$W/$mode.ini"
	synced $mode
	it_assert_eq 1 "$(D "select count(*) from t where id = 1009")" "G ($mode): applied after the fix"
	it_pass "$mode: a narrowing stops the job, naming the fix; the fix lets it go on"

	# H: a rename
	S "update t set doc = 'r' where id = 1" >/dev/null
	synced $mode
	S "alter table t rename column doc to body" >/dev/null
	S "update t set body = 'renamed' where id = 2" >/dev/null
	exited
	it_assert_eq 1 "$rc" "H ($mode): exit code after a rename: $(tail -n 5 "$W/$mode.log")"
	it_assert_contains "$W/$mode.log" "column doc of source table e_$mode.public.t was renamed to body while the job streamed"
	it_assert_contains "$W/$mode.log" "RENAME COLUMN \"doc\" TO \"body\""
	it_pass "$mode: a rename stops the job, naming the ALTER to run"
done

# I: schema.evolution = none
psql_on src -c "create database e_none" >/dev/null
psql_on dst -c "create database e_none" >/dev/null
DB=e_none psql_on src -c "create table t (id int primary key, v text)" -c "insert into t values (1, 'x')" >/dev/null
job none upsert "schema.evolution = none"
syncd_start "$W/none.log" "$W/none.ini"
DB=e_none psql_on src -c "alter table t add column w numeric(10,2)" -c "insert into t values (2, 'y', 1.5)" >/dev/null
mode=none
exited
it_assert_eq 1 "$rc" "schema.evolution = none: $(tail -n 5 "$W/none.log")"
it_assert_contains "$W/none.log" "target table public.t has no column \"w\" for source table e_none.public.t; add it (ALTER TABLE \"public\".\"t\" ADD COLUMN \"w\" numeric(10,2)), or set schema.evolution = add"
it_pass "schema.evolution = none stops at the first difference with the ALTER to run"
