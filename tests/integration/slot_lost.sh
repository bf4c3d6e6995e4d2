#!/bin/bash
# A replication slot invalidated because the WAL it needed was removed
# (max_slot_wal_keep_size = 1MB, wal_keep_size = 0 on the source) under a
# pgoutput -> dws_upsert job, mode = full+incremental (issue 15 item 6):
#  a. the job stopped, the slot invalidated, the job started with the
#     default [source] slot.lost = fail: syncd exits non-zero, naming the
#     slot and slot.lost (the fix), and leaves the slot as it is
#  b. the same with slot.lost = resync: the slot and its hold slot are
#     dropped and created again, the tables copied again, the destination
#     equals the source, and the new slot streams (not lost)
#  c. the hold slot (slot.flush.delay.time at its default) lost while the
#     slot streams on: the job goes on; the next start makes it again
#  d. resync while streaming: syncd is stopped (SIGSTOP) while the source
#     invalidates its slot (the checkpoint ends its walsender); continued,
#     the job reopens the stream, finds the slot lost, re-syncs, converges;
#     twice in one run
# An insert-only history table, compared whole with the source's (count and
# an md5 of every row), proves that nothing was lost and nothing added.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
export SYNCD_PLUGIN_PATH="$TEST_PLUGIN_DIR"
pg_start src "max_slot_wal_keep_size = 1MB
wal_keep_size = 0"
pg_start dst
S() { psql_on src -c "$1" >/dev/null; }
S "create table hist (id bigserial primary key, v int not null, at timestamptz default now())"
S "create table filler (id int, pad text)"
psql_on dst -c "create table hist (id bigint primary key, v int not null, at timestamptz)" >/dev/null

job() { # job FILE [source lines]
	cat >"$1" <<INI
[job]
name = lost
mode = full+incremental
state_dir = $W/state
reconnect.max_wait = 1m
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
tables = public.hist
status.interval = 200ms
${2:-}
[sink]
write_mode = upsert
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres
target.schema = public
batch.interval = 200ms
INI
}
job "$W/fail.ini"
job "$W/resync.ini" "slot.lost = resync"
LOG=$W/job.log

ins() { S "insert into hist (v) select (random() * 1000)::int from generate_series(1, $1)"; }
status() { psql_on src -Atc "select coalesce(wal_status, 'null') from pg_replication_slots where slot_name = '$1'"; }
alive() { syncd_alive "$1" "$LOG"; }
converged() { hist_converged syncd_lost "$1"; }
# invalidate: WAL past max_slot_wal_keep_size and checkpoints until the
# slot syncd_lost is lost (its WAL removed)
invalidate() {
	for _ in $(seq 1 10); do
		S "insert into filler select g, repeat('x', 1000) from generate_series(1, 3000) g"
		psql_on src -Atc "select pg_switch_wal()" >/dev/null
		S "checkpoint"
		[ "$(status syncd_lost)" = lost ] && return 0
	done
	it_fail "slot syncd_lost is not lost after 10 checkpoints: $(status syncd_lost)"
}

# the first run: the full phase, then the stream
ins 100
syncd_start "$LOG" "$W/fail.ini"
ins 100
converged "first run"
syncd_stop "$SYNCD_PID" "$LOG"
[ -n "$(status syncd_lost_hold)" ] || it_fail "no hold slot syncd_lost_hold (slot.flush.delay.time at its default)"

# --- a. invalidated while the job is stopped, slot.lost = fail (default)
ins 50 # changes only the lost WAL holds
invalidate
it_log "slot syncd_lost: wal_status = lost"
started=$(date +%s)
set +e
timeout 120 "$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/fail.ini" >"$W/fail.log" 2>&1
rc=$?
set -e
cat "$W/fail.log" >>"$LOG"
[ "$rc" -ne 0 ] || it_fail "slot.lost = fail: syncd exited 0: $(tail -n 20 "$W/fail.log")"
[ "$rc" -ne 124 ] || it_fail "slot.lost = fail: syncd still running after 120 s: $(tail -n 20 "$W/fail.log")"
[ $(($(date +%s) - started)) -lt 60 ] || it_fail "slot.lost = fail: syncd took $(($(date +%s) - started)) s to exit"
it_log "slot.lost = fail: exit $rc: $(grep -m1 -i 'syncd_lost' "$W/fail.log" || true)"
it_assert_contains "$W/fail.log" "syncd_lost"
it_assert_contains "$W/fail.log" "slot.lost"
it_assert_eq lost "$(status syncd_lost)" "slot.lost = fail leaves the slot as it is"
it_pass "slot.lost = fail: exit $rc, naming slot syncd_lost and slot.lost"

# --- b. the same with slot.lost = resync: dropped, copied again, streams
syncd_start "$LOG" "$W/resync.ini"
it_assert_contains "$LOG" "dropped replication slot syncd_lost in database"
it_assert_contains "$LOG" "created replication slot syncd_lost in database"
ins 100
converged "slot.lost = resync"
st=$(status syncd_lost)
case $st in reserved | extended | unreserved) ;; *) it_fail "slot.lost = resync: the new slot's wal_status is '$st'" ;; esac
[ -n "$(status syncd_lost_hold)" ] || it_fail "slot.lost = resync: no hold slot syncd_lost_hold"
it_pass "slot.lost = resync: slot syncd_lost made again ($st), the tables copied again"

# --- c. the hold slot lost while the slot streams on (48MB kept: the
# slot, confirmed promptly, stays within it; the hold slot, 6h behind, not)
drops=$(grep -c "dropped replication slot syncd_lost in database" "$LOG")
psql_on src -c "alter system set max_slot_wal_keep_size = '48MB'" -c "select pg_reload_conf()" >/dev/null
for _ in $(seq 1 10); do
	S "insert into filler select g, repeat('x', 1000) from generate_series(1, 8000) g"
	psql_on src -Atc "select pg_switch_wal()" >/dev/null
	ins 5
	sleep 1
	S "checkpoint"
	[ "$(status syncd_lost_hold)" = lost ] && break
done
it_assert_eq lost "$(status syncd_lost_hold)" "the hold slot, far behind"
st=$(status syncd_lost)
[ "$st" != lost ] || it_fail "the slot itself was lost while streaming within 48MB"
alive "the hold slot was lost"
converged "the hold slot lost, the slot streams on ($st)"
syncd_stop "$SYNCD_PID" "$LOG"
syncd_start "$LOG" "$W/resync.ini"
it_assert_contains "$LOG" "replication slot syncd_lost_hold was invalidated"
st=$(status syncd_lost_hold)
case $st in reserved | extended) ;; *) it_fail "the hold slot made again is '$st'" ;; esac
it_assert_eq "$drops" "$(grep -c "dropped replication slot syncd_lost in database" "$LOG")" "the slot itself is not re-synced for its hold slot"
it_pass "the hold slot lost: the stream went on, the next start made it again"
psql_on src -c "alter system set max_slot_wal_keep_size = '1MB'" -c "select pg_reload_conf()" >/dev/null

# --- d. invalidated while streaming (resync): the walsender is ended by the
# checkpoint while syncd is stopped; continued, it reopens and re-syncs;
# twice in the same run (a daemon lives through it more than once)
for round in 1 2; do
	drops=$(grep -c "dropped replication slot syncd_lost in database" "$LOG")
	kill -STOP "$SYNCD_PID"
	ins 50
	invalidate
	kill -CONT "$SYNCD_PID"
	for _ in $(seq 1 600); do
		[ "$(grep -c "dropped replication slot syncd_lost in database" "$LOG")" -gt "$drops" ] && break
		alive "the slot was invalidated while streaming"
		sleep 0.1
	done
	[ "$(grep -c "dropped replication slot syncd_lost in database" "$LOG")" -gt "$drops" ] ||
		it_fail "streaming: the lost slot was not dropped: $(tail -n 20 "$LOG")"
	ins 100
	alive "the re-sync while streaming"
	converged "slot lost while streaming ($round), slot.lost = resync"
	st=$(status syncd_lost)
	[ "$st" != lost ] || it_fail "streaming: the slot is still lost"
done
syncd_stop "$SYNCD_PID" "$LOG"
it_pass "a lost slot is refused (fail) and re-synced (resync), at start and while streaming"
