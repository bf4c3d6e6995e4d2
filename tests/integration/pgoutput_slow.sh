#!/bin/bash
# Flow control: with a sink that takes 3 s per batch, the pipeline fills up
# and the reading thread blocks in emit(); the server's wal_sender_timeout
# is 2 s, yet the connection survives because the status thread keeps
# answering, and the job catches up with nothing lost. A table created
# meanwhile is named: this sink cannot copy it while streaming.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src "wal_sender_timeout = 2s"
psql_on src -c "create table t (id int primary key, v text)" >/dev/null

cat >"$W/job.ini" <<INI
[job]
name = slow
mode = incremental
state_dir = $W/state
concurrency = 1
[source]
plugin = pgoutput
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
slot.flush.delay.time = 0
status.interval = 500ms
[sink]
plugin = capture
path = $W/capture
delay_ms = 3000
batch.max_rows = 8000
sink.buffer-flush.max-size = 16MB
INI
syncd_start "$W/syncd.log" "$W/job.ini"

# ~10 MB of changes: more than the queue holds (4 MB) while the sink sleeps
psql_on src -c "insert into t select g, repeat('x', 100) from generate_series(1, 32000) g" >/dev/null
end=$(psql_on src -Atc "select pg_current_wal_lsn()")
slot_wait src syncd_slow "$end"
# a table that joins the selection while the job streams cannot be copied
# by a sink without copy operations: said, never skipped in silence
psql_on src -c "create table t_new (id int primary key)" >/dev/null
for _ in $(seq 1 150); do
	grep -q "t_new joined the selection" "$W/syncd.log" && break
	sleep 0.1
done
it_assert_contains "$W/syncd.log" "table postgres.public.t_new joined the selection (or must be copied again: a partition attached with rows), but [sink:capture] cannot copy a table while the job streams (it has no copy operations): it is NOT synced"
syncd_stop "$SYNCD_PID" "$W/syncd.log"
if grep -q "replication timeout" "$W/pg-src/server.log"; then
	it_fail "the server timed syncd out: $(grep timeout "$W/pg-src/server.log")"
fi
n=$(grep -c '^ev 0 INSERT' "$W/capture")
it_assert_eq 32000 "$n" "every row arrived"
batches=$(grep -c '^batch' "$W/capture")
[ "$batches" -ge 4 ] || it_fail "expected slow batches, got $batches"
it_pass "32,000 rows through a 3 s/batch sink with wal_sender_timeout = 2s"
