#!/bin/bash
# The DWS sinks under failure: a target that cannot take the rows (a
# column-number mismatch, a value too long) fails the job with the table,
# key and SQLSTATE and confirms nothing past it; kill -9 during a pgbench
# run and a restart converge; a destination restarted mid-run is
# reconnected to and the job goes on.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst
PGBENCH=$PGBIN/pgbench
bench() { "$PGBENCH" -h 127.0.0.1 -p "$src_PORT" -U postgres "$@" postgres; }

job() { # job NAME DB MODE [extra sink lines]
	cat >"$W/$1.ini" <<INI
[job]
name = $1
mode = incremental
state_dir = $W/state
concurrency = 2
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=$2
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
[sink]
write_mode = $3
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=$2
target.schema = public
batch.interval = 200ms
batch.max_rows = 300
${4:-}
INI
}
run_fail() { # run_fail JOB: syncd must exit 1 (within 60 s)
	SYNCD_PLUGIN_PATH=$TEST_PLUGIN_DIR timeout 60 "$SYNCD" --plugin-dir "$PLUGIN_DIR" \
		-c "$W/$1.ini" >"$W/$1.log" 2>&1 && rc=0 || rc=$?
	it_assert_eq 1 "$rc" "exit code of $1 ($(tail -n 5 "$W/$1.log"))"
}

# --- a destination that cannot take the rows
for db in bad_cols bad_data; do
	psql_on src -c "create database $db" >/dev/null
	psql_on dst -c "create database $db" >/dev/null
	DB=$db psql_on src -c "create table t (id int primary key, v text)" >/dev/null
done
DB=bad_cols psql_on dst -c "create table t (id int primary key, v text, extra int)" >/dev/null
DB=bad_data psql_on dst -c "create table t (id int primary key, v varchar(5))" >/dev/null
for mode in upsert copy; do
	job "cols_$mode" bad_cols $mode "sink.verify.column-number = true"
	job "data_$mode" bad_data $mode
done
for mode in upsert copy; do
	( sleep 2; DB=bad_cols psql_on src -c "insert into t values ($([ $mode = upsert ] && echo 1 || echo 2), '$mode')" ) &
	run_fail "cols_$mode"
	wait
	it_assert_contains "$W/cols_$mode.log" "target table public.t has 3 columns, source table bad_cols.public.t has 2"
	( sleep 2; DB=bad_data psql_on src -c "insert into t select g, 'ok' from generate_series(1, 50) g" -c "insert into t values (51, 'too long')" -c "insert into t values (52, 'fine')" ) &
	run_fail "data_$mode"
	wait
	it_assert_contains "$W/data_$mode.log" "insert of public.t key (id)=(51)"
	it_assert_contains "$W/data_$mode.log" "SQLSTATE 22001"
	it_assert_contains "$W/data_$mode.log" "value too long for type character varying(5)"
	# nothing past the refused row's transaction is applied or confirmed
	bad=$(grep -o 'key (id)=(51) at [0-9A-F/]*' "$W/data_$mode.log" | head -n 1 | awk '{print $4}')
	ok=$(DB=bad_data psql_on src -Atc "select confirmed_flush_lsn < '$bad' from pg_replication_slots where slot_name = 'syncd_data_$mode'")
	it_assert_eq t "$ok" "slot confirmed before $bad ($mode)"
	it_assert_eq 0 "$(DB=bad_data psql_on dst -Atc "select count(*) from t where id > 50")" "rows past the refused one ($mode)"
	# once the destination takes the value, a restart applies everything
	DB=bad_data psql_on dst -c "alter table t alter column v type varchar(20)" >/dev/null
	syncd_start "$W/data_$mode.log" "$W/data_$mode.ini"
	slot_wait src "syncd_data_$mode" "$(DB=bad_data psql_on src -Atc "select pg_current_wal_lsn()")"
	syncd_stop "$SYNCD_PID" "$W/data_$mode.log"
	it_assert_eq "$(table_hash src bad_data t)" "$(table_hash dst bad_data t)" "t after the fix ($mode)"
	DB=bad_data psql_on dst -c "truncate t; alter table t alter column v type varchar(5); delete from syncd_meta.syncd_progress" >/dev/null
	DB=bad_data psql_on src -c "select pg_drop_replication_slot('syncd_data_$mode')" -c "truncate t" >/dev/null
done
it_pass "column-number mismatch and a refused value fail the job, naming table, key and SQLSTATE"

# --- kill -9 during a pgbench run, and the destination restarted mid-run
bench -i -s 1 -q >/dev/null 2>&1 || it_fail "pgbench -i failed"
psql_on src -c "alter table pgbench_history add column id bigserial primary key" >/dev/null
as_pg_dump src -t 'pgbench_*' >"$W/dump.sql"
psql_on dst -f "$W/dump.sql" >/dev/null
job kill postgres copy "sink.keyby.mode = pk"
syncd_start "$W/kill.log" "$W/kill.ini"
bench -T 8 -c 2 -n >"$W/bench.out" 2>&1 &
b=$!
sleep 2
kill -9 "$SYNCD_PID"
wait "$SYNCD_PID" 2>/dev/null || true
sleep 0.5
syncd_start "$W/kill.log" "$W/kill.ini"
sleep 1.5
pg_restart dst 2
wait $b || it_fail "pgbench failed: $(cat "$W/bench.out")"
end=$(psql_on src -Atc "select pg_current_wal_lsn()")
slot_wait src syncd_kill "$end"
syncd_stop "$SYNCD_PID" "$W/kill.log"
it_assert_contains "$W/kill.log" "reconnecting in"
for t in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history; do
	it_assert_eq "$(table_hash src postgres $t)" "$(table_hash dst postgres $t)" "$t after kill -9 and a destination restart"
done
it_pass "kill -9 and a destination restart: the destination equals the source"

# --- another concurrency and keyby mode: every worker resumes from the
# smallest recorded position, nothing is lost
sed -i 's/^concurrency = 2$/concurrency = 3/; s/^sink.keyby.mode = pk$/sink.keyby.mode = table/' "$W/kill.ini"
syncd_start "$W/kill.log" "$W/kill.ini"
bench -T 3 -c 2 -n >"$W/bench2.out" 2>&1 || it_fail "pgbench failed: $(cat "$W/bench2.out")"
slot_wait src syncd_kill "$(psql_on src -Atc "select pg_current_wal_lsn()")"
syncd_stop "$SYNCD_PID" "$W/kill.log"
it_assert_contains "$W/kill.log" "recorded with another concurrency, keyby mode"
it_assert_eq "3 3/table/2" "$(psql_on dst -Atc "select count(*) || ' ' || min(layout) from syncd_meta.syncd_progress where job = 'kill'")" "progress rows after the change"
for t in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history; do
	it_assert_eq "$(table_hash src postgres $t)" "$(table_hash dst postgres $t)" "$t after the change of concurrency"
done
it_pass "a change of concurrency and keyby mode resumes from the smallest position"
