#!/bin/bash
# Dirty data with the DWS sinks and the file archiver, in both write modes:
# a destination column narrower than the source (varchar(5)) and a CHECK
# constraint the source lacks refuse some rows; they are archived as JSON
# lines with their SQLSTATE and key, and every other row of the same
# transactions is applied (three bad rows among 3,000 of one transaction
# are found by bisecting the batch). Past [dirty] threshold the job fails (exit 1)
# with nothing confirmed past the row that crossed it; fixed, a restart
# applies the rest. With policy = none the dirty row is only logged.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst

job() { # job NAME MODE THRESHOLD
	cat >"$W/$1.ini" <<INI
[job]
name = $1
mode = incremental
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=$1
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
[sink]
write_mode = $2
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=$1
target.schema = public
batch.interval = 300ms
[dirty]
enabled = true
threshold = $3
policy = archive
[archiver]
plugin = file
directory = $W/dirty-$1
INI
	psql_on src -c "create database $1" >/dev/null
	psql_on dst -c "create database $1" >/dev/null
	DB=$1 psql_on src -c "create table t (id int primary key, v text, n int)" >/dev/null
	DB=$1 psql_on dst -c "create table t (id int primary key, v varchar(5), n int check (n >= 0))" >/dev/null
}

for mode in upsert copy; do
	job "d_$mode" $mode 10
	syncd_start "$W/d_$mode.log" "$W/d_$mode.ini"
	DB=d_$mode psql_on src -c "insert into t select g, 'ok', g from generate_series(1, 20) g where g not in (5, 12)" >/dev/null
	# applied first: a refused row is its key's net effect in a batch
	slot_wait src "syncd_d_$mode" "$(DB=d_$mode psql_on src -Atc "select pg_current_wal_lsn()")"
	DB=d_$mode psql_on src >/dev/null <<'SQL'
begin;
insert into t values (5, 'too long', 5), (12, 'ok', -1), (21, 'fine', 21);
update t set v = 'way too long' where id = 3;
update t set n = n + 100 where id = 4;
commit;
delete from t where id = 20;
-- one big transaction with three bad rows: bisected, the rest applied
insert into t select g, case when g in (1500, 2500, 3500) then 'too long' else 'ok' end, g
  from generate_series(1000, 3999) g;
SQL
	slot_wait src "syncd_d_$mode" "$(DB=d_$mode psql_on src -Atc "select pg_current_wal_lsn()")"
	syncd_stop "$SYNCD_PID" "$W/d_$mode.log"
	got=$(DB=d_$mode psql_on dst -Atc "select string_agg(id || ':' || v || ':' || n, ',' order by id) from t where id in (3, 4, 5, 12, 20, 21)")
	it_assert_eq "3:ok:3,4:ok:104,21:fine:21" "$got" "rows applied around the dirty ones ($mode)"
	it_assert_eq $((18 + 2997)) "$(DB=d_$mode psql_on dst -Atc "select count(*) from t")" "row count ($mode)"
	cat "$W"/dirty-d_$mode/*.jsonl >"$W/d_$mode.dirty"
	it_assert_eq 6 "$(wc -l <"$W/d_$mode.dirty")" "dirty records ($mode)"
	it_assert_eq "1500 2500 3500" "$(jq -r 'select((.key.id | tonumber) >= 1000) | .key.id' "$W/d_$mode.dirty" | sort -n | xargs)" "bad rows of the big transaction ($mode)"
	recs=$(jq -r 'select((.key.id | tonumber) < 1000) | [.op, .key.id, .sqlstate, .target_schema + "." + .target_table, .row.v] | join(" ")' "$W/d_$mode.dirty" | sort)
	it_assert_eq "insert 12 23514 public.t ok
insert 5 22001 public.t too long
update 3 22001 public.t way too long" "$recs" "dirty records ($mode)"
	jq -e 'select(.job != "d_'$mode'" or (.lsn | test("^[0-9A-F]+/[0-9A-F]+$") | not) or (.message | length) == 0)' "$W/d_$mode.dirty" >/dev/null &&
		it_fail "a record lacks job, lsn or message: $(cat "$W/d_$mode.dirty")"
	it_assert_contains "$W/d_$mode.log" "dirty row 1 of worker"
done
it_pass "refused rows archived with SQLSTATE and key, the rest applied, in both modes"

# past the threshold: exit 1, the refusing transaction not confirmed
job over copy 1
syncd_start "$W/over.log" "$W/over.ini"
DB=over psql_on src -c "insert into t values (1, 'too long', 1)" -c "insert into t values (2, 'ok', -2)" -c "insert into t values (3, 'ok', 3)" >/dev/null
for _ in $(seq 1 100); do kill -0 "$SYNCD_PID" 2>/dev/null || break; sleep 0.1; done
wait "$SYNCD_PID" && rc=0 || rc=$?
it_assert_eq 1 "$rc" "exit code past the threshold"
it_assert_contains "$W/over.log" "passed the dirty-data threshold (1 rows)"
# the row that crossed the threshold, and its commit LSN
bad=$(grep -o 'dirty row 2 of worker 0: insert of public.t key (id)=(2) at [0-9A-F/]*' "$W/over.log" | awk '{print $NF}')
[ -n "$bad" ] || it_fail "no second dirty row in the log: $(tail -n 5 "$W/over.log")"
it_assert_eq t "$(DB=over psql_on src -Atc "select confirmed_flush_lsn < '$bad' from pg_replication_slots where slot_name = 'syncd_over'")" "slot confirmed before $bad"
it_assert_eq 0 "$(DB=over psql_on dst -Atc "select count(*) from t where id = 3")" "nothing after the failure"
it_pass "past the threshold the job fails with nothing confirmed past it"

# the destination fixed, a restart applies everything not confirmed (here
# all three rows: they were in the batch that failed)
DB=over psql_on dst -c "alter table t alter column v type text, drop constraint t_n_check" >/dev/null
syncd_start "$W/over.log" "$W/over.ini"
slot_wait src syncd_over "$(DB=over psql_on src -Atc "select pg_current_wal_lsn()")"
syncd_stop "$SYNCD_PID" "$W/over.log"
it_assert_eq "$(table_hash src over t)" "$(table_hash dst over t)" "applied after the fix"
it_pass "after the destination is fixed, a restart applies the rest"

# policy = none: each dirty row is logged, its long values cut, and the
# rest applied; nothing is archived
job logonly upsert 10
sed -i 's/^policy = archive/policy = none/' "$W/logonly.ini"
syncd_start "$W/logonly.log" "$W/logonly.ini"
DB=logonly psql_on src -c "insert into t values (7, repeat('x', 100), 7), (8, 'ok', 8)" >/dev/null
slot_wait src syncd_logonly "$(DB=logonly psql_on src -Atc "select pg_current_wal_lsn()")"
syncd_stop "$SYNCD_PID" "$W/logonly.log"
it_assert_contains "$W/logonly.log" "dirty row 1 of worker"
it_assert_contains "$W/logonly.log" "; row (id, v, n)=(7, $(printf 'x%.0s' $(seq 1 64))..., 7)"
it_assert_eq "8" "$(DB=logonly psql_on dst -Atc "select string_agg(id::text, ',') from t")" "the other row applied"
[ -e "$W/dirty-logonly" ] && it_fail "policy = none archived something"
it_pass "policy = none: the dirty row logged with its values cut, nothing archived"
