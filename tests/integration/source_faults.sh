#!/bin/bash
# Faults of the source while a pgoutput -> dws_upsert job streams under a
# load of inserts (auto_retry off): the job stays up or comes up by itself,
# and the destination converges. An insert-only history table, compared
# whole with the source's (count and an md5 of every row), proves that
# nothing was lost and nothing added.
#  1. the walsender terminated twice, then the source restarted with
#     -m immediate: the stream reconnects in-process (issue 15 item 3)
#  2. kill -9 of syncd while the source's walsender is stalled (SIGSTOP),
#     and an immediate restart: the slot is still active for the dead
#     job's walsender; the restart ends it or waits, and streams (item 2)
#  3. syncd's SQL session to the source terminated: it is reopened, and
#     later heartbeats still move the slot of an idle database (item 5)
#  4. a second syncd of the same job: the slot's walsender still answers
#     its client, so it is refused (exit 1) and the first goes on
#  5. pg_ctl restart -m fast of the source, with slot.flush.delay.time = 0
#     and at its default (6h): the shutdown completes within 20 s (syncd
#     confirms what it received once nothing is pending; the delay keeps
#     WAL with the hold slot syncd_faults_hold, behind the slot), the job
#     reconnects; back to 0, the hold slot is dropped (item 1); six
#     more fast restarts with only heartbeats going on
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
export SYNCD_PLUGIN_PATH="$TEST_PLUGIN_DIR"
pg_start src
pg_start dst
S() { psql_on src -c "$1" >/dev/null; }
S "create table hist (id bigserial primary key, v int not null, at timestamptz default now())"
psql_on dst -c "create table hist (id bigint primary key, v int not null, at timestamptz)" >/dev/null

cat >"$W/job.ini" <<INI
[job]
name = faults
mode = incremental
state_dir = $W/state
reconnect.max_wait = 2m
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
tables = public.hist
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
[sink]
write_mode = upsert
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres
target.schema = public
batch.interval = 200ms
INI
LOG=$W/job.log

load_start() { hist_load_start; }
load_stop() { hist_load_stop; }
HIST_GROWS=1
converged() { hist_converged syncd_faults "$1"; }
alive() { syncd_alive "$1" "$LOG"; }
walsender() { psql_on src -Atc "select active_pid from pg_replication_slots where slot_name = 'syncd_faults'"; }

# --- 1. the walsender terminated twice, the source restarted immediately
syncd_start "$LOG" "$W/job.ini"
load_start
sleep 1
for i in 1 2; do
	psql_on src -Atc "select pg_terminate_backend(pid) from pg_stat_replication" >/dev/null
	want=$((i + 1))
	for _ in $(seq 1 300); do
		[ "$(grep -c "streaming from slot" "$LOG")" -ge "$want" ] && break
		alive "pg_terminate_backend $i"
		sleep 0.1
	done
	[ "$(grep -c "streaming from slot" "$LOG")" -ge "$want" ] ||
		it_fail "no new stream after pg_terminate_backend $i: $(tail -n 20 "$LOG")"
	sleep 1
done
it_assert_contains "$LOG" "reconnecting"
as_pg "$PGBIN/pg_ctl" -D "$IT_WORK/pg-src/data" -m immediate stop >/dev/null 2>&1
sleep 1
as_pg "$PGBIN/pg_ctl" -w -t 60 -D "$IT_WORK/pg-src/data" -l "$IT_WORK/pg-src/server.log" \
	-o "-p $src_PORT" start >/dev/null 2>&1 || it_fail "could not start src again"
for _ in $(seq 1 600); do
	[ "$(grep -c "streaming from slot" "$LOG")" -ge 4 ] && break
	alive "the immediate restart"
	sleep 0.1
done
[ "$(grep -c "streaming from slot" "$LOG")" -ge 4 ] ||
	it_fail "no new stream after the source's restart: $(tail -n 20 "$LOG")"
sleep 1
load_stop
alive "the faults"
converged "walsender terminated twice, source restarted (immediate)"

# --- 2. kill -9 of syncd with its walsender stalled, restarted at once
load_start
sleep 1
ws=$(walsender)
[ -n "$ws" ] || it_fail "no walsender for syncd_faults"
kill -STOP "$ws"
kill -9 "$SYNCD_PID"
wait "$SYNCD_PID" 2>/dev/null || true
( sleep 8; kill -CONT "$ws" 2>/dev/null || true ) &
cont=$!
syncd_start "$LOG" "$W/job.ini"
wait "$cont"
if grep -q "is active for PID" "$LOG"; then it_fail "the restart refused the slot: $(tail -n 20 "$LOG")"; fi
it_assert_contains "$LOG" "walsender of this job"
sleep 1
load_stop
alive "the restart"
converged "kill -9 with the walsender stalled, restarted at once"

# --- 3. the SQL session terminated: reopened; heartbeats move an idle slot
n=$(psql_on src -Atc "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name like 'syncd%' and backend_type = 'client backend'")
[ "$n" -ge 1 ] || it_fail "no SQL session of syncd to terminate"
for _ in $(seq 1 100); do
	grep -q "SQL session to the source is back" "$LOG" && break
	sleep 0.1
done
it_assert_contains "$LOG" "SQL session to the source is lost"
it_assert_contains "$LOG" "SQL session to the source is back"
# nothing but heartbeats from here: the slot passes a later position only
# through them
idle=$(psql_on src -Atc "select pg_current_wal_lsn()")
slot_wait src syncd_faults "$idle"
alive "the SQL session was terminated"
load_start
sleep 2
load_stop
converged "the SQL session terminated"

# --- 4. a second syncd of the same job: its walsender's client answers,
# so the slot is not taken from it: refused, the running job unharmed
started=$(date +%s)
set +e
timeout 60 "$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job.ini" >"$W/twin.log" 2>&1
rc=$?
set -e
it_assert_eq 1 "$rc" "exit code of a second syncd of the job ($(tail -n 3 "$W/twin.log"))"
it_assert_contains "$W/twin.log" "still answers: another syncd of job"
it_assert_contains "$W/twin.log" "is active for PID"
[ $(($(date +%s) - started)) -lt 30 ] || it_fail "the second syncd took $(($(date +%s) - started)) s to be refused"
alive "a second syncd of the job"
load_start
sleep 1
load_stop
converged "a second syncd of the job refused"

# --- 5. pg_ctl restart -m fast of the source: completes within 20 s with
# slot.flush.delay.time = 0 and at its default; the job reconnects
fast_restart() { # fast_restart WHAT: times the restart, waits for the stream
	want=$(($(grep -c "streaming from slot" "$LOG") + 1))
	t0=$(date +%s%N)
	as_pg "$PGBIN/pg_ctl" -w -t 60 -D "$IT_WORK/pg-src/data" -m fast \
		-l "$IT_WORK/pg-src/server.log" -o "-p $src_PORT" restart >/dev/null 2>&1 ||
		it_fail "$1: pg_ctl restart -m fast failed: $(tail -n 5 "$IT_WORK/pg-src/server.log")"
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ "$ms" -lt 20000 ] || it_fail "$1: pg_ctl restart -m fast took $ms ms (20 s at most)"
	it_log "$1: pg_ctl restart -m fast took $ms ms"
	for _ in $(seq 1 600); do
		[ "$(grep -c "streaming from slot" "$LOG")" -ge "$want" ] && break
		alive "$1"
		sleep 0.1
	done
	[ "$(grep -c "streaming from slot" "$LOG")" -ge "$want" ] ||
		it_fail "$1: no new stream after the fast restart: $(tail -n 20 "$LOG")"
}
hold() { psql_on src -Atc "select confirmed_flush_lsn from pg_replication_slots where slot_name = 'syncd_faults_hold'"; }
load_start
sleep 2
fast_restart "delay 0"
[ -z "$(hold)" ] || it_fail "delay 0: a hold slot exists"
sleep 1
load_stop
alive "the fast restart (delay 0)"
converged "pg_ctl restart -m fast, slot.flush.delay.time = 0"
# idle but for the heartbeats (every second): a heartbeat's WAL left
# unflushed when the walwriter exits held the shutdown forever (about one
# restart in six before the heartbeat took a transaction id)
for i in 1 2 3 4 5 6; do
	sleep 0.$((RANDOM % 9 + 1))
	fast_restart "idle restart $i"
done
alive "the idle fast restarts"
syncd_stop "$SYNCD_PID" "$LOG"

grep -v '^slot.flush.delay.time' "$W/job.ini" >"$W/job6h.ini"
syncd_start "$LOG" "$W/job6h.ini"
it_assert_contains "$LOG" "created replication slot syncd_faults_hold"
load_start
sleep 3
fast_restart "delay 6h"
sleep 1
load_stop
alive "the fast restart (delay 6h)"
converged "pg_ctl restart -m fast, slot.flush.delay.time = 6h (default)"
h=$(hold)
[ -n "$h" ] || it_fail "delay 6h: no hold slot syncd_faults_hold"
[ "$(psql_on src -Atc "select '$h'::pg_lsn < confirmed_flush_lsn from pg_replication_slots where slot_name = 'syncd_faults'")" = t ] ||
	it_fail "delay 6h: the hold slot ($h) is not behind the slot"
it_pass "delay 6h: the hold slot keeps WAL from $h, behind the slot"
syncd_stop "$SYNCD_PID" "$LOG"

# back to delay 0: the hold slot is dropped
syncd_start "$LOG" "$W/job.ini"
it_assert_contains "$LOG" "dropped replication slot syncd_faults_hold"
[ -z "$(hold)" ] || it_fail "delay 0 again: the hold slot was not dropped"
load_start
sleep 1
load_stop
converged "back to slot.flush.delay.time = 0"
syncd_stop "$SYNCD_PID" "$LOG"
it_pass "the source's faults were ridden out"
