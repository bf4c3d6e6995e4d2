#!/bin/bash
# tests/bench/decode.sh [BUILD_DIR] - how fast syncd consumes a backlog.
#
# One throwaway PostgreSQL 15 cluster; two pgoutput slots created before a
# backlog of 20,000 transactions (400,000 inserts, 100,000 updates and
# 20,000 deletes on a 3-column table); then, one after the other:
#   - pg_recvlogical draining its slot to /dev/null: the rate at which the
#     server decodes the stream, the ceiling for any consumer;
#   - syncd (pgoutput source -> null sink, which applies nothing) draining
#     the other slot, timed until the slot is confirmed up to the end.
# Prints changes/s for both and the ratio (target: >= 0.9). SYNCD_FIRST=1
# runs syncd first (to see that the order does not matter).
# BUILD_DIR (default: build) is a configured build tree; the test plugins
# are built with make check TESTS=.
set -eu
. "$(dirname "$0")/common.sh"
make -s -C "$build" check TESTS= >/dev/null
BIN=/usr/lib/postgresql/15/bin

pg_start bench "max_wal_size = 4GB
checkpoint_timeout = 30min
synchronous_commit = off"
S() { psql_on bench -c "$1" >/dev/null; }
S "create table t (id int primary key, v text, n int)"
S "create publication pub for table t"
S "select pg_create_logical_replication_slot('ref', 'pgoutput')"
S "select pg_create_logical_replication_slot('syncd_bench', 'pgoutput')"
it_log "building the backlog"
S "create table counts (n bigint)"
S "do \$\$ declare total bigint := 0; rows bigint;
   begin
     for i in 0..19999 loop
       insert into t select g, md5(g::text), g from generate_series(i * 20 + 1, i * 20 + 20) g;
       get diagnostics rows = row_count; total := total + rows;
       update t set n = n + 1 where id between i * 20 - 100 and i * 20 - 96;
       get diagnostics rows = row_count; total := total + rows;
       delete from t where id = i * 20 - 150;
       get diagnostics rows = row_count; total := total + rows;
       commit;
     end loop;
     insert into counts values (total);
   end \$\$"
end=$(psql_on bench -Atc "select pg_current_wal_lsn()")
changes=$(psql_on bench -Atc "select n from counts")
it_log "backlog: $changes changes up to $end"

now() { date +%s.%N; }
run_ref() {
t0=$(now)
as_pg "$BIN/pg_recvlogical" -h 127.0.0.1 -p "$bench_PORT" -U postgres -d postgres \
	-S ref --start --endpos="$end" -o proto_version=2 -o publication_names=pub \
	-o streaming=on -f /dev/null
t1=$(now)
ref=$(echo "$changes / ($t1 - $t0)" | bc)
}

run_syncd() {
cat >"$W/job.ini" <<INI
[job]
name = bench
state_dir = $W/state
concurrency = 2
[source]
plugin = pgoutput
conninfo = host=127.0.0.1 port=$bench_PORT user=postgres dbname=postgres
publication = pub
custom.slot.name = syncd_bench
slot.flush.delay.time = 0
status.interval = 100ms
heartbeat.interval = 0
[sink]
plugin = null
batch.interval = 100ms
sink.keyby.mode = pk
INI
t0=$(now)
SYNCD_PLUGIN_PATH="$build/tests/plugins" "$build/syncd" --plugin-dir "$build/plugins" \
	-c "$W/job.ini" >"$W/syncd.log" 2>&1 &
pid=$!
until [ "$(psql_on bench -Atc "select confirmed_flush_lsn >= '$end' from pg_replication_slots where slot_name = 'syncd_bench'")" = t ]; do
	kill -0 $pid 2>/dev/null || it_fail "syncd exited: $(tail "$W/syncd.log")"
	sleep 0.05
done
t1=$(now)
kill -TERM $pid
wait $pid
got=$(grep -o 'null sink: [0-9]* changes' "$W/syncd.log" | awk '{print $3}')
[ "$got" = "$changes" ] || it_fail "syncd applied $got changes, expected $changes"
rate=$(echo "$changes / ($t1 - $t0)" | bc)

}

if [ -n "${SYNCD_FIRST:-}" ]; then
	run_syncd
	run_ref
else
	run_ref
	run_syncd
fi

printf '%-36s %12s\n' "changes in the backlog" "$changes"
printf '%-36s %12s changes/s\n' "pg_recvlogical -> /dev/null" "$ref"
printf '%-36s %12s changes/s\n' "syncd pgoutput -> null sink" "$rate"
printf '%-36s %12s\n' "ratio (target >= 0.9)" "$(echo "scale=2; $rate / $ref" | bc)"
