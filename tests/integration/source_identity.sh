#!/bin/bash
# A changed source is refused (issue 15 item 4): the destination records
# the source's origin (system identifier and timeline) with the job's
# progress, and a job whose source is another server is not started.
#  1. a first run records "system N, timeline 1" in state.schema.syncd_origin
#  2. the source re-initialized behind the same port (another system, older
#     positions): refused (exit 1, never auto-retried), naming both origins
#     and --resync; the slot it created to look is dropped again
#  3. syncd --resync: the slot is created anew, the target emptied and
#     copied again from the new source, then the job streams
#  4. progress recorded without an origin (an older syncd) and a source
#     whose new slot starts before that progress: refused all the same
#  5. syncd --resync with mode = incremental is a usage error
#  6. the slot dropped by hand: refused with mode = incremental (no slot
#     left), copied again with full+incremental
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
export SYNCD_PLUGIN_PATH="$TEST_PLUGIN_DIR"
pg_start src
pg_start dst

# reinit_src: another cluster, same address: stopped, initdb again, started
# on the same port, the table created again with other rows
reinit_src() {
	pg_stop src
	rm -rf "$IT_WORK/pg-src/data"
	mkdir -p "$IT_WORK/pg-src/data"
	[ "$(id -u)" = 0 ] && chown -R postgres "$IT_WORK/pg-src"
	as_pg "$PGBIN/initdb" -A trust --nosync -U postgres -E UTF8 --locale=C.UTF-8 \
		-D "$IT_WORK/pg-src/data" >"$IT_WORK/pg-src/initdb.log" 2>&1 ||
		it_fail "initdb src again: $(cat "$IT_WORK/pg-src/initdb.log")"
	cat >>"$IT_WORK/pg-src/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$IT_WORK/pg-src/sock'
wal_level = logical
max_replication_slots = 16
max_wal_senders = 16
fsync = off
CONF
	as_pg "$PGBIN/pg_ctl" -w -t 60 -D "$IT_WORK/pg-src/data" -l "$IT_WORK/pg-src/server.log" \
		-o "-p $src_PORT" start >/dev/null 2>&1 || it_fail "could not start src again on $src_PORT"
	psql_on src -c "create table hist (id bigint primary key, v text not null)" \
		-c "insert into hist select g, 'second-' || g from generate_series(1, $1) g" >/dev/null
}
slots() { psql_on src -Atc "select string_agg(slot_name, ',' order by slot_name) from pg_replication_slots"; }
origin() { psql_on dst -Atc "select origin from syncd_meta.syncd_origin where job = 'ident'"; }
sysid() { psql_on src -Atc "select system_identifier from pg_control_system()"; }

psql_on src -c "create table hist (id bigint primary key, v text not null)" \
	-c "insert into hist select g, 'first-' || g from generate_series(1, 500) g" >/dev/null
psql_on dst -c "create table hist (id bigint primary key, v text not null)" >/dev/null
cat >"$W/job.ini" <<INI
[job]
name = ident
state_dir = $W/state
auto_retry = true
retry_interval = 1s
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
tables = public.hist
slot.flush.delay.time = 0
[sink]
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres
target.schema = public
state.schema = syncd_meta
batch.interval = 200ms
INI
LOG=$W/job.log

# --- 1. the origin is recorded
syncd_start "$LOG" "$W/job.ini"
psql_on src -c "insert into hist select g, 'first-' || g from generate_series(501, 600) g" >/dev/null
slot_wait src syncd_ident "$(psql_on src -Atc "select pg_current_wal_lsn()")"
syncd_stop "$SYNCD_PID" "$LOG"
first=$(sysid)
it_assert_eq "system $first, timeline 1" "$(origin)" "the origin recorded with the progress"
it_assert_eq "$(table_hash src postgres hist)" "$(table_hash dst postgres hist)" "hist synced from the first source"
it_pass "the source's origin is recorded with the progress"

# --- 2. another server behind the same port: refused, no slot left
# (its WAL is far behind the first one's: its positions are older too)
reinit_src 300
second=$(sysid)
[ "$first" != "$second" ] || it_fail "initdb gave the same system identifier"
before=$(table_hash dst postgres hist)
set +e
timeout 120 "$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job.ini" >"$W/refused.log" 2>&1
rc=$?
set -e
it_assert_eq 1 "$rc" "exit code for another source ($(tail -n 3 "$W/refused.log"))"
it_assert_contains "$W/refused.log" "is not the one the destination's progress came from"
it_assert_contains "$W/refused.log" "system $first, timeline 1"
it_assert_contains "$W/refused.log" "system $second, timeline 1"
it_assert_contains "$W/refused.log" "syncd --resync"
it_assert_contains "$W/refused.log" "auto_retry: not restarting"
it_assert_eq "" "$(slots)" "replication slots left on the new source"
it_assert_eq "$before" "$(table_hash dst postgres hist)" "the destination untouched by the refused start"
it_pass "a source re-initialized behind the same port is refused, no slot left behind"

# --- 3. syncd --resync: copied again from the new source, then streams
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job.ini" --resync >>"$W/resync.log" 2>&1 &
SYNCD_PID=$!
for _ in $(seq 1 300); do
	grep -q "streaming from slot" "$W/resync.log" && break
	kill -0 "$SYNCD_PID" 2>/dev/null || it_fail "syncd --resync exited: $(tail -n 20 "$W/resync.log")"
	sleep 0.1
done
it_assert_contains "$W/resync.log" "re-syncing"
psql_on src -c "insert into hist values (100000, 'after the resync'); delete from hist where id = 7" >/dev/null
slot_wait src syncd_ident "$(psql_on src -Atc "select pg_current_wal_lsn()")"
syncd_stop "$SYNCD_PID" "$W/resync.log"
it_assert_eq "$(table_hash src postgres hist)" "$(table_hash dst postgres hist)" "hist equals the new source (old rows gone)"
it_assert_eq "system $second, timeline 1" "$(origin)" "the new origin recorded"
# a plain start goes on from there
syncd_start "$LOG" "$W/job.ini"
psql_on src -c "update hist set v = 'again' where id = 1" >/dev/null
slot_wait src syncd_ident "$(psql_on src -Atc "select pg_current_wal_lsn()")"
syncd_stop "$SYNCD_PID" "$LOG"
it_assert_eq "$(table_hash src postgres hist)" "$(table_hash dst postgres hist)" "hist after a plain restart"
it_pass "syncd --resync copies the new source again and streams"

# --- 4. no origin recorded (progress of an older syncd), a new source
# whose slot starts before that progress: refused all the same
for _ in 1 2 3 4 5 6; do psql_on src -c "select pg_switch_wal(); insert into hist values (200000 + (random() * 1000)::int, 'x') on conflict do nothing" >/dev/null; done
syncd_start "$LOG" "$W/job.ini"
slot_wait src syncd_ident "$(psql_on src -Atc "select pg_current_wal_lsn()")"
syncd_stop "$SYNCD_PID" "$LOG"
psql_on dst -c "delete from syncd_meta.syncd_origin" >/dev/null
reinit_src 10
set +e
timeout 120 "$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job.ini" >"$W/older.log" 2>&1
rc=$?
set -e
it_assert_eq 1 "$rc" "exit code for a slot older than the progress ($(tail -n 3 "$W/older.log"))"
it_assert_contains "$W/older.log" "before what the destination has applied"
it_assert_eq "" "$(slots)" "replication slots left on the newer source"
it_pass "a new slot older than the destination's progress is refused, no slot left behind"

# --- 5. --resync needs a full phase
sed 's/^\[job\]$/[job]\nmode = incremental/' "$W/job.ini" >"$W/incr.ini"
set +e
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/incr.ini" --resync >"$W/incr.log" 2>&1
rc=$?
set -e
it_assert_eq 2 "$rc" "exit code of --resync with mode = incremental"
it_assert_contains "$W/incr.log" "mode = full+incremental"

# --- 6. the slot dropped by hand, mode = incremental: the changes in
# between cannot be copied, so the job is refused (no slot left); with
# full+incremental the tables are copied again, with a warning
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job.ini" --resync >"$W/resync2.log" 2>&1 &
SYNCD_PID=$!
for _ in $(seq 1 300); do
	grep -q "streaming from slot" "$W/resync2.log" && break
	sleep 0.1
done
syncd_stop "$SYNCD_PID" "$W/resync2.log"
psql_on src -c "select pg_drop_replication_slot('syncd_ident')" -c "insert into hist values (300000, 'while no slot')" >/dev/null
set +e
timeout 120 "$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/incr.ini" >"$W/dropped.log" 2>&1
rc=$?
set -e
it_assert_eq 1 "$rc" "exit code, slot dropped, mode = incremental ($(tail -n 3 "$W/dropped.log"))"
it_assert_contains "$W/dropped.log" "came from one that no longer exists"
it_assert_eq "" "$(slots)" "replication slots left after the refusal"
syncd_start "$LOG" "$W/job.ini"
slot_wait src syncd_ident "$(psql_on src -Atc "select pg_current_wal_lsn()")"
syncd_stop "$SYNCD_PID" "$LOG"
it_assert_contains "$LOG" "does not count; the tables are copied again"
it_assert_eq "$(table_hash src postgres hist)" "$(table_hash dst postgres hist)" "hist copied again after the slot was dropped"
it_pass "a dropped slot: refused in mode = incremental, copied again in full+incremental"
it_pass "the source's identity is kept and checked"
