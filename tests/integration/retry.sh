#!/bin/bash
# Retry: the destination stopped for 20 s in the middle of a run.
#  - Without auto_retry the lost connection is tried again with backoff for
#    reconnect.max_wait (here 15 s), then the job fails cleanly: exit 1, nothing
#    confirmed past what the destination holds, and a restart converges.
#  - With auto_retry the failed job restarts from its checkpoint, retry by
#    retry, until the destination is back, and completes.
#  - A job that fails a pre-check (a selected table without a primary key,
#    a publication it may not create) is never restarted, even with
#    auto_retry.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst
PGBENCH=$PGBIN/pgbench

psql_on src -c "create table t (id int primary key, n int not null, v text)"
psql_on dst -c "create table t (id int primary key, n int not null, v text)"
cat >"$W/changes.sql" <<'SQL'
\set id random(1, 2000)
INSERT INTO t VALUES (:id, 1, 'v' || :id) ON CONFLICT (id) DO UPDATE SET n = t.n + 1;
SQL

job() { # job NAME [extra [job] lines]
	cat >"$W/$1.ini" <<INI
[job]
name = $1
mode = incremental
state_dir = $W/state-$1
concurrency = 2
${2:-}
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
[sink]
write_mode = upsert
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres
target.schema = public
batch.interval = 200ms
INI
}
# outage: changes flow, the destination goes down for 20 s while changes
# keep coming, then it is started again
outage() {
	"$PGBENCH" -h 127.0.0.1 -p "$src_PORT" -U postgres -n -T 30 -R 200 -c 2 \
		-f "$W/changes.sql" postgres >"$W/bench.out" 2>&1 &
	BENCH=$!
	sleep 3
	pg_restart dst 20
	wait $BENCH || it_fail "pgbench: $(tail -n 5 "$W/bench.out")"
}
same() {
	it_assert_eq "$(table_hash src postgres t)" "$(table_hash dst postgres t)" "$1"
}

# ---- the default reconnect.max_wait (5 minutes) rides out the outage -------
job ride
syncd_start "$W/ride.log" "$W/ride.ini"
outage
slot_wait src syncd_ride "$(psql_on src -Atc 'select pg_current_wal_lsn()')"
kill -0 "$SYNCD_PID" 2>/dev/null || it_fail "the job ended: $(tail -n 20 "$W/ride.log")"
syncd_stop $SYNCD_PID "$W/ride.log"
it_assert_contains "$W/ride.log" "reconnecting in 1.0 s (attempt 1)"
same "after a 20 s outage with the default reconnect.max_wait"
it_pass "the default reconnect.max_wait rides out a 20 s destination outage"

# ---- without auto_retry, reconnect.max_wait = 15s: fails cleanly ----------
job plain "reconnect.max_wait = 15s"
syncd_start "$W/plain.log" "$W/plain.ini"
outage
wait $SYNCD_PID && rc=0 || rc=$?
it_assert_eq 1 "$rc" "exit code without auto_retry"
it_assert_contains "$W/plain.log" "reconnecting in 1.0 s (attempt 1)"
it_assert_contains "$W/plain.log" "(reconnect.max_wait)"
# nothing confirmed past what the destination applied
confirmed=$(psql_on src -Atc "select confirmed_flush_lsn from pg_replication_slots where slot_name = 'syncd_plain'")
applied=$(psql_on dst -Atc "select min(lsn_text) from syncd_meta.syncd_progress where job = 'plain'")
it_assert "slot ($confirmed) not past the destination ($applied)" \
	test "$(psql_on src -Atc "select '$confirmed'::pg_lsn <= '$applied'::pg_lsn + 1")" = t
syncd_start "$W/plain.log" "$W/plain.ini"
slot_wait src syncd_plain "$(psql_on src -Atc 'select pg_current_wal_lsn()')"
syncd_stop $SYNCD_PID "$W/plain.log"
same "after a restart"
it_pass "without auto_retry: exit 1 after reconnect.max_wait, nothing confirmed early, restart equal"

# ---- with auto_retry: completes --------------------------------------------
job auto "auto_retry = true
max_retries = 10
retry_interval = 3s
reconnect.max_wait = 5s"
syncd_start "$W/auto.log" "$W/auto.ini"
outage
slot_wait src syncd_auto "$(psql_on src -Atc 'select pg_current_wal_lsn()')"
kill -0 $SYNCD_PID || it_fail "syncd with auto_retry exited: $(tail -n 20 "$W/auto.log")"
syncd_stop $SYNCD_PID "$W/auto.log"
it_assert_contains "$W/auto.log" "auto_retry: restarting the job from its last checkpoint"
same "with auto_retry"
it_pass "with auto_retry: restarted $(grep -c 'auto_retry: restarting' "$W/auto.log") time(s), completed, equal"

# ---- a pre-check failure is never retried ------------------------------------
# a selected table without a primary key (refused before the run), and a
# missing publication that may not be created (refused by the source)
psql_on src -c "create table nokey (v text)"
job nokey "auto_retry = true
max_retries = 3
retry_interval = 1s"
sed -i 's/^status.interval = .*/tables = public.nokey/' "$W/nokey.ini"
job nopub "auto_retry = true
max_retries = 3
retry_interval = 1s"
sed -i 's/^status.interval = .*/publication = nopub\npublication.autocreate = false/' "$W/nopub.ini"
for j in nokey nopub; do
	timeout 60 "$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$j.ini" >"$W/$j.log" 2>&1 && rc=0 || rc=$?
	it_assert_eq 1 "$rc" "exit code of $j"
	grep -q "auto_retry: restarting" "$W/$j.log" && it_fail "$j: a pre-check failure was retried"
done
it_assert_contains "$W/nokey.log" "has no primary key"
it_assert_contains "$W/nopub.log" "CREATE PUBLICATION"
it_assert_contains "$W/nopub.log" "auto_retry: not restarting: the job cannot run as configured"
it_pass "pre-check failures are not retried"
