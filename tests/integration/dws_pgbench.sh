#!/bin/bash
# Incremental sync under a pgbench load into a real destination, in both
# write modes at once (two jobs, two destination databases), with keyby pk
# over two workers for one and keyby table for the other, one reading the
# source over TCP and the other over its Unix socket: at the end both
# destinations equal the source table by table.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst
PGBENCH=$PGBIN/pgbench
bench() { "$PGBENCH" -h 127.0.0.1 -p "$src_PORT" -U postgres "$@" postgres; }
bench -i -s 1 -q >/dev/null 2>&1 || it_fail "pgbench -i failed"
# the history table has no primary key: give it one so it is synced too
psql_on src -c "alter table pgbench_history add column id bigserial primary key"
# the destination starts as a copy (the full phase is another test's)
as_pg_dump src -t 'pgbench_*' >"$W/dump.sql"
for mode in upsert copy; do
	psql_on dst -c "create database d_$mode"
	DB=d_$mode psql_on dst -f "$W/dump.sql" >/dev/null
done

for mode in upsert copy; do
	keyby=$([ $mode = upsert ] && echo pk || echo table)
	# one job reads the source over TCP, the other over its Unix socket
	# (where the reader gathers messages itself: see pgo_unix_gather)
	host=$([ $mode = upsert ] && echo 127.0.0.1 || echo "$W/pg-src/sock")
	cat >"$W/$mode.ini" <<INI
[job]
name = bench_$mode
mode = incremental
state_dir = $W/state
concurrency = 2
[source]
conninfo = host=$host port=$src_PORT user=postgres dbname=postgres
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
[sink]
write_mode = $mode
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=d_$mode
target.schema = #{source_schema_name}
sink.keyby.mode = $keyby
batch.interval = 200ms
batch.max_rows = 500
INI
	syncd_start "$W/$mode.log" "$W/$mode.ini"
	eval "pid_$mode=$SYNCD_PID"
done

bench -T 6 -c 4 -j 2 -n >"$W/bench.out" 2>&1 || it_fail "pgbench failed: $(cat "$W/bench.out")"
n=$(awk '/number of transactions actually processed/ {print $6}' "$W/bench.out" | cut -d/ -f1)
[ "${n:-0}" -gt 200 ] || it_fail "pgbench ran too little: $(cat "$W/bench.out")"
end=$(psql_on src -Atc "select pg_current_wal_lsn()")
for mode in upsert copy; do
	slot_wait src "syncd_bench_$mode" "$end"
	eval "syncd_stop \$pid_$mode \"$W/$mode.log\""
done

for t in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history; do
	want=$(table_hash src postgres "$t")
	for mode in upsert copy; do
		got=$(table_hash dst "d_$mode" "$t")
		it_assert_eq "$want" "$got" "$t in d_$mode"
	done
done
rows=$(DB=d_copy psql_on dst -Atc "select count(*) from pgbench_history")
it_assert_eq "$n" "$rows" "one history row per pgbench transaction"
prog=$(DB=d_upsert psql_on dst -Atc "select count(*) from syncd_meta.syncd_progress where job = 'bench_upsert'")
it_assert_eq 2 "$prog" "one progress row per worker"
it_pass "$n pgbench transactions; both write modes equal the source"
