#!/bin/bash
# Flow control: with a sink that takes 3 s per batch, the pipeline fills up
# and the reading thread blocks in emit(); the server's wal_sender_timeout
# is 2 s, yet the connection survives because the status thread keeps
# answering, and the job catches up with nothing lost.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src "wal_sender_timeout = 2s"
psql_on src -c "create table t (id int primary key, v text)" >/dev/null

cat >"$W/job.ini" <<INI
[job]
name = slow
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
SYNCD_PLUGIN_PATH="$TEST_PLUGIN_DIR" "$SYNCD" --plugin-dir "$PLUGIN_DIR" \
	-c "$W/job.ini" >"$W/syncd.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q "streaming from slot" "$W/syncd.log" && break; sleep 0.1; done
it_assert_contains "$W/syncd.log" "streaming from slot"

# ~10 MB of changes: more than the queue holds (4 MB) while the sink sleeps
psql_on src -c "insert into t select g, repeat('x', 100) from generate_series(1, 32000) g" >/dev/null
end=$(psql_on src -Atc "select pg_current_wal_lsn()")
for _ in $(seq 1 600); do
	[ "$(psql_on src -Atc "select confirmed_flush_lsn >= '$end' from pg_replication_slots where slot_name = 'syncd_slow'")" = t ] && break
	kill -0 $pid 2>/dev/null || it_fail "syncd exited: $(tail "$W/syncd.log")"
	sleep 0.1
done
kill -TERM $pid
wait $pid || it_fail "syncd exit $?: $(tail "$W/syncd.log")"
if grep -q "replication timeout" "$W/pg-src/server.log"; then
	it_fail "the server timed syncd out: $(grep timeout "$W/pg-src/server.log")"
fi
n=$(grep -c '^ev 0 INSERT' "$W/capture")
it_assert_eq 32000 "$n" "every row arrived"
batches=$(grep -c '^batch' "$W/capture")
[ "$batches" -ge 4 ] || it_fail "expected slow batches, got $batches"
it_pass "32,000 rows through a 3 s/batch sink with wal_sender_timeout = 2s"
