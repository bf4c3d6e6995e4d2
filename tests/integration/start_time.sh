#!/bin/bash
# syncd --start-time (issue 18, item 1), two source databases (two
# streams, each with its own slot, hold slot and time marks), write_mode
# upsert:
#  1. the job streams; rows are changed, then TIME is taken, then other
#     rows are changed; the job stops
#  2. rows are changed by hand at the destination, some last changed
#     before TIME, some after
#  3. --start-time TIME: every change committed at or after TIME is applied
#     again (rows of those changes converge to the source), rows last
#     changed before TIME keep what the destination has; the job then goes
#     on streaming
#  4. refused, changing nothing: a TIME older than the job's time marks
#     (naming the oldest possible time), older than the hold slot keeps, in
#     the future, without an offset, not a time; mode = full
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst
for db in sa sb; do
	psql_on src -c "create database $db" >/dev/null
	DB=$db psql_on src -c "create table t (id int primary key, v text not null, n int)" \
		-c "create table tick (id serial primary key, at timestamptz default clock_timestamp())" \
		-c "insert into t select g, 'v0', 0 from generate_series(1, 1000) g" >/dev/null
	psql_on dst -c "create schema $db" >/dev/null
done
S() { DB=$1 psql_on src -Atc "$2"; }
D() { psql_on dst -Atc "$1"; }

cat >"$W/job.ini" <<INI
[job]
name = rw
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres
databases = sa, sb
tables = public.t, public.tick
status.interval = 200ms
[sink]
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres
target.schema = #{source_db_name}
batch.interval = 200ms
INI
run() { # run ARGS...: syncd in the foreground, output in $W/run.out, rc
	rc=0
	timeout 60 "$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job.ini" "$@" >"$W/run.out" 2>&1 || rc=$?
}
synced() { # every slot confirmed what its database has now
	for db in sa sb; do
		slot_wait src "syncd_rw_$db" "$(S $db 'select pg_current_wal_lsn()')"
	done
}
ticks() { # ticks N: N small transactions 0.25 s apart in both databases
	for _ in $(seq 1 "$1"); do
		S sa "insert into tick default values" >/dev/null
		S sb "insert into tick default values" >/dev/null
		sleep 0.25
	done
}

# ---- 1. stream, with changes before and after TIME ------------------------------
syncd_start "$W/syncd.log" "$W/job.ini" 2
ticks 24 # 6 s: a time mark (one every 5 s of commits) before TIME
# changed after the last mark and before TIME: passed over by the replay
for db in sa sb; do
	S $db "update t set v = 'before', n = 1 where id <= 200" >/dev/null
done
sleep 0.3
TIME=$(S sa "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')")
sleep 0.2
for db in sa sb; do
	S $db "update t set v = 'after', n = 2 where id > 100 and id <= 300" >/dev/null
	S $db "insert into t select g, 'new', 3 from generate_series(1001, 1100) g" >/dev/null
	S $db "delete from t where id > 400 and id <= 450" >/dev/null
done
ticks 8
synced
syncd_stop "$SYNCD_PID" "$W/syncd.log"
for db in sa sb; do
	it_assert_eq "$(table_hash src $db t)" "$(table_hash dst postgres $db.t)" "$db.t streamed"
done
[ "$(D "select count(*) from syncd_meta.syncd_marks where job = 'rw'")" -ge 4 ] ||
	it_fail "time marks recorded: $(D "select stream, at, lsn from syncd_meta.syncd_marks")"
it_pass "streamed, with time marks recorded for both databases"

# ---- 2. changes by hand at the destination ----------------------------------------
for db in sa sb; do
	D "delete from $db.t where id <= 50" >/dev/null           # last changed before TIME
	D "update $db.t set v = 'hand' where id > 500 and id <= 510" >/dev/null # never changed since the copy
	D "delete from $db.t where id > 150 and id <= 200" >/dev/null # changed after TIME
	D "update $db.t set v = 'hand' where id > 250 and id <= 260" >/dev/null # changed after TIME
	D "delete from $db.t where id > 1000 and id <= 1010" >/dev/null # inserted after TIME
	D "insert into $db.t select g, 'hand', 9 from generate_series(401, 410) g" >/dev/null # deleted after TIME
done

# ---- 4. refusals first: nothing may change --------------------------------------
before=$(S sa "select confirmed_flush_lsn from pg_replication_slots where slot_name = 'syncd_rw_sa'")
run --start-time 1day
it_assert_eq 1 "$rc" "a TIME older than the marks: $(cat "$W/run.out")"
it_assert_contains "$W/run.out" "is before the oldest time the job can go back to, 20"
run --start-time "1 day ago"
it_assert_contains "$W/run.out" "is before the oldest time the job can go back to"
run --start-time 2099-01-01T00:00:00Z
it_assert_eq 2 "$rc" "a TIME in the future: $(cat "$W/run.out")"
it_assert_contains "$W/run.out" "2099-01-01 00:00:00.000000Z is in the future"
run --start-time "2026-12-02 10:00"
it_assert_eq 2 "$rc" "a TIME without an offset: $(cat "$W/run.out")"
it_assert_contains "$W/run.out" "has no UTC offset: add one"
run --start-time yesterday
it_assert_eq 2 "$rc" "not a time: $(cat "$W/run.out")"
it_assert_contains "$W/run.out" "is not a time: give an ISO 8601 time with its offset"
sed 's/^\[job\]$/[job]\nmode = full/' "$W/job.ini" >"$W/full.ini"
rc=0
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/full.ini" --start-time 30s >"$W/run.out" 2>&1 || rc=$?
it_assert_eq 2 "$rc" "mode = full: $(cat "$W/run.out")"
it_assert_contains "$W/run.out" "it needs [job] mode = incremental or full+incremental"
it_assert_eq "$before" "$(S sa "select confirmed_flush_lsn from pg_replication_slots where slot_name = 'syncd_rw_sa'")" \
	"the slot after the refusals"
it_assert_eq 0 "$(D "select count(*) from sa.t where id <= 50")" "the destination after the refusals"
it_pass "refused, changing nothing: older than the marks (naming the oldest time), future, no offset, not a time, mode = full"

# ---- 3. back to TIME --------------------------------------------------------------
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job.ini" --start-time "$TIME" >"$W/rewind.log" 2>&1 &
SYNCD_PID=$!
for _ in $(seq 1 200); do
	[ "$(grep -c "streaming from slot" "$W/rewind.log")" -ge 2 ] && break
	kill -0 $SYNCD_PID 2>/dev/null || it_fail "syncd exited: $(tail -n 20 "$W/rewind.log")"
	sleep 0.1
done
for db in sa sb; do
	it_assert_contains "$W/rewind.log" "replication slot syncd_rw_$db made again from syncd_rw_${db}_hold"
done
it_assert_contains "$W/rewind.log" "going back to ${TIME:0:10}"
synced
keep="where id > 50 and not (id > 500 and id <= 510)"
for db in sa sb; do
	a=$(DB=$db psql_on src -Atc "select count(*) || ':' || md5(string_agg(t::text, ',' order by id)) from t $keep")
	b=$(D "select count(*) || ':' || md5(string_agg(t::text, ',' order by id)) from $db.t $keep")
	it_assert_eq "$a" "$b" "$db.t: every row changed at or after TIME converged to the source"
	it_assert_eq 0 "$(D "select count(*) from $db.t where id <= 50")" \
		"$db.t: rows last changed before TIME keep what the destination has (deleted by hand)"
	it_assert_eq 10 "$(D "select count(*) from $db.t where id > 500 and id <= 510 and v = 'hand'")" \
		"$db.t: rows not changed since the copy keep what the destination has"
done
it_pass "back to TIME: changes at or after it applied again in both databases, older rows kept"

# it goes on streaming from there
for db in sa sb; do
	S $db "insert into t values (5000, 'later', 5)" >/dev/null
done
synced
for db in sa sb; do
	it_assert_eq "later" "$(D "select v from $db.t where id = 5000")" "$db.t streams after the rewind"
done
syncd_stop "$SYNCD_PID" "$W/rewind.log"
it_pass "the job goes on streaming after going back"

# a TIME older than the hold slot keeps (advanced by hand here, as
# slot.flush.delay.time would have over time): refused by the source
S sa "select pg_replication_slot_advance('syncd_rw_sa_hold', pg_current_wal_lsn())" >/dev/null
run --start-time "$TIME"
it_assert_eq 1 "$rc" "a TIME the hold slot no longer keeps: $(cat "$W/run.out")"
it_assert_contains "$W/run.out" "stream \"sa\": ${TIME:0:10}"
it_assert_contains "$W/run.out" "is older than what the source keeps"
it_assert_contains "$W/run.out" "replication slot syncd_rw_sa_hold keeps WAL from"
it_assert_eq 1 "$(S sb "select count(*) from pg_replication_slots where slot_name = 'syncd_rw_sb' and not active")" \
	"the other stream's slot is untouched"
it_pass "a TIME older than what the hold slot keeps is refused"
