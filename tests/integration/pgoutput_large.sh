#!/bin/bash
# Large transactions with bounded memory: PostgreSQL 15 streams a
# 2-million-row transaction while it is in progress (protocol 2,
# logical_decoding_work_mem = 64kB); syncd buffers it, spills it to the
# state directory past spill.threshold, and applies it at its commit. A
# streamed transaction that rolls back, and a subtransaction rolled back to
# a savepoint, never reach the sink. Peak RSS stays under
# 2 x sink.buffer-flush.max-size + 64 MB (DESIGN §6).
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src "logical_decoding_work_mem = 64kB"
S() { psql_on src -c "$1" >/dev/null; }
S "create table big (id int primary key, v text)"

cat >"$W/job.ini" <<INI
[job]
name = large
mode = incremental
state_dir = $W/state
concurrency = 2
[source]
plugin = pgoutput
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
slot.flush.delay.time = 0
status.interval = 500ms
spill.threshold = 4MB
[sink]
plugin = null
sink.buffer-flush.max-size = 16MB
INI

# under AddressSanitizer, keep its quarantine of freed memory small: by
# default it alone holds 256 MB
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8" \
	syncd_start "$W/syncd.log" "$W/job.ini"
pid=$SYNCD_PID

S "insert into big select g, md5(g::text) from generate_series(1, 2000000) g"
S "begin; insert into big select g, 'gone' from generate_series(3000001, 3300000) g; rollback"
S "begin; insert into big select g, 'kept' from generate_series(4000001, 4100000) g;
   savepoint s; insert into big select g, 'gone' from generate_series(5000001, 5100000) g;
   rollback to savepoint s; insert into big values (6000001, 'kept'); commit"
end=$(psql_on src -Atc "select pg_current_wal_lsn()")

# everything durable and confirmed to the slot
slot_wait src syncd_large "$end"
hwm_kb=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
syncd_stop $pid "$W/syncd.log"

it_assert_contains "$W/syncd.log" "passed spill.threshold; spilling them to $W/state/large"
it_assert_contains "$W/syncd.log" "null sink: 2100001 changes in 2 transactions"
ls "$W/state/large/"*.spill >/dev/null 2>&1 && it_fail "spill files left behind"

limit_kb=$(( (2 * 16 + 64) * 1024 ))
if nm "$SYNCD" 2>/dev/null | grep -qE '__(asan|tsan)_init'; then
	limit_kb=$((limit_kb * 3)) # a sanitizer's shadow memory and allocator
fi
it_log "peak RSS ${hwm_kb} kB (limit ${limit_kb} kB)"
[ "$hwm_kb" -lt "$limit_kb" ] || it_fail "peak RSS ${hwm_kb} kB is over ${limit_kb} kB"
it_pass "2,000,000-row transaction in ${hwm_kb} kB peak RSS; aborts dropped"
