#!/bin/bash
# Faults of the destination (and a crash of syncd) while a pgoutput job
# streams under a load of inserts, with the default settings but for the
# timings of batches and status updates: the job stays up or comes up by
# itself, and the destination converges. An insert-only history table,
# compared whole with the source's (count and an md5 of every row), proves
# that nothing was lost and nothing added. Issue 15, items 2 and 3.
#  1. write_mode = upsert, auto_retry off: the destination restarted with
#     pg_ctl restart -m fast; the sink reconnects, the log says so
#  2. the same, the destination stopped -m immediate, then started
#  3. the same, the destination down for two minutes (stop -m fast, sleep
#     120, start), with the default reconnect.max_wait (5m): the job stays
#     up, the slot confirms nothing while it is down, every attempt is
#     logged (attempt 1, 2, ... of each worker, at least 5 of them) and
#     counted (reconnects_total of the sink, at the end of the run, equals
#     the attempts logged in scenarios 1 to 3)
#  4. write_mode = copy, auto_retry = true: kill -9 of syncd while the
#     source's walsender is stalled (SIGSTOP for 8 s), and an immediate
#     restart: the slot is still active for the dead job's walsender; the
#     restart ends it or waits, and streams without a person
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
export SYNCD_PLUGIN_PATH="$TEST_PLUGIN_DIR"
pg_start src
pg_start dst
S() { psql_on src -c "$1" >/dev/null; }
S "create table hist (id bigserial primary key, v int not null, at timestamptz default now())"
psql_on dst -c "create table hist (id bigint primary key, v int not null, at timestamptz)" >/dev/null

# job WRITE_MODE [extra [job] lines]: the INI, $W/WRITE_MODE.ini; defaults
# but for batch.interval and status.interval (3 s and 10 s would only slow
# the test down): reconnect.max_wait, slot.flush.delay.time and
# heartbeat.interval are not set
job() {
	cat >"$W/$1.ini" <<INI
[job]
name = dfaults
mode = incremental
state_dir = $W/state
${2:-}
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
tables = public.hist
status.interval = 200ms
[sink]
write_mode = $1
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres
target.schema = public
batch.interval = 200ms
INI
}
job upsert
job copy "auto_retry = true"
LOG=$W/job.log
DST=$IT_WORK/pg-dst

# scenarios 1 to 3 log at the debug level: the metrics are logged at the
# end of the run
REAL_SYNCD=$SYNCD
cat >"$W/syncd-debug" <<SH
#!/bin/sh
exec "$REAL_SYNCD" --log-level debug "\$@"
SH
chmod +x "$W/syncd-debug"

load_start() { hist_load_start; }
load_stop() { hist_load_stop; }
HIST_GROWS=1
converged() { hist_converged syncd_dfaults "$1"; }
alive() { syncd_alive "$1" "$LOG"; }
# attempts: the sink's reconnect attempts logged so far
# ("[sink:dws_upsert] worker 1: ...; reconnecting in 2.0 s (attempt 2)")
attempts() { grep -cE '^.*\[sink:dws_[a-z]+\] worker [0-9]+: .*; reconnecting in [0-9.]+ s \(attempt [0-9]+\)$' "$LOG" || true; }
# reconnected WHAT BEFORE: more attempts than BEFORE were logged, the job
# is up, and rows inserted now reach the destination
reconnected() {
	for _ in $(seq 1 300); do
		[ "$(attempts)" -gt "$2" ] && break
		alive "$1"
		sleep 0.1
	done
	[ "$(attempts)" -gt "$2" ] || it_fail "$1: no reconnect of the sink was logged: $(tail -n 20 "$LOG")"
	it_log "$1: $(($(attempts) - $2)) reconnect attempt(s) logged"
}
dst_start() {
	as_pg "$PGBIN/pg_ctl" -w -t 60 -D "$DST/data" -l "$DST/server.log" \
		-o "-p $dst_PORT" start >/dev/null 2>&1 ||
		it_fail "could not start dst again: $(tail -n 5 "$DST/server.log")"
}

SYNCD=$W/syncd-debug syncd_start "$LOG" "$W/upsert.ini"

# --- 1. the destination restarted fast under load
load_start
sleep 2
before=$(attempts)
as_pg "$PGBIN/pg_ctl" -w -t 60 -D "$DST/data" -m fast -l "$DST/server.log" \
	-o "-p $dst_PORT" restart >/dev/null 2>&1 ||
	it_fail "pg_ctl restart -m fast of dst failed: $(tail -n 5 "$DST/server.log")"
reconnected "the fast restart" "$before"
sleep 2
load_stop
alive "the fast restart"
converged "destination restarted -m fast"

# --- 2. the destination stopped immediately, then started, under load
load_start
sleep 2
before=$(attempts)
as_pg "$PGBIN/pg_ctl" -w -D "$DST/data" -m immediate stop >/dev/null 2>&1 ||
	it_fail "pg_ctl stop -m immediate of dst failed"
sleep 1
dst_start
reconnected "the immediate restart" "$before"
sleep 2
load_stop
alive "the immediate restart"
converged "destination stopped -m immediate and started"

# --- 3. the destination down for two minutes under load, default
# reconnect.max_wait
load_start
sleep 2
before=$(attempts)
as_pg "$PGBIN/pg_ctl" -w -D "$DST/data" -m fast stop >/dev/null 2>&1 ||
	it_fail "pg_ctl stop -m fast of dst failed"
down=$SECONDS
confirmed() { psql_on src -Atc "select confirmed_flush_lsn from pg_replication_slots where slot_name = 'syncd_dfaults'"; }
while [ $((SECONDS - down)) -lt 120 ]; do
	alive "$(($(attempts) - before)) attempts with the destination down"
	# nothing becomes durable while the destination is down: what the
	# slot confirmed 10 s into the outage stays put
	if [ $((SECONDS - down)) -ge 10 ] && [ -z "${held:-}" ]; then held=$(confirmed); fi
	sleep 1
done
[ -n "$held" ] || it_fail "no confirmed position of syncd_dfaults 10 s into the outage"
it_assert_eq "$held" "$(confirmed)" "the slot's confirmed position from 10 s into the outage to its end"
it_log "two-minute outage: $(($(attempts) - before)) attempts while the destination was down"
dst_start
sleep 2
load_stop
alive "the two-minute outage"
converged "destination down for two minutes"
# every attempt logged: each worker's attempts of the outage are numbered
# 1, 2, ..., N with none missing, and some worker reached 5 (1+2+4+8+16 s
# of backoff, 31 s, are well within 120 s)
grep -E '\[sink:dws_upsert\] worker [0-9]+: .*reconnecting in [0-9.]+ s \(attempt [0-9]+\)$' "$LOG" |
	tail -n "$(($(attempts) - before))" |
	sed -E 's/.*\] worker ([0-9]+): .*\(attempt ([0-9]+)\)$/\1 \2/' >"$W/outage.attempts"
[ "$(wc -l <"$W/outage.attempts")" -ge 5 ] ||
	it_fail "two-minute outage: only $(wc -l <"$W/outage.attempts") reconnect attempts logged: $(tail -n 20 "$LOG")"
most=0
for wk in $(cut -d' ' -f1 "$W/outage.attempts" | sort -u); do
	got=$(awk -v w="$wk" '$1 == w { print $2 }' "$W/outage.attempts" | tr '\n' ' ')
	n=$(awk -v w="$wk" '$1 == w' "$W/outage.attempts" | wc -l)
	it_assert_eq "$(seq -s ' ' 1 "$n") " "$got" "worker $wk's attempts in the outage"
	if [ "$n" -gt "$most" ]; then most=$n; fi
done
[ "$most" -ge 5 ] || it_fail "two-minute outage: at most $most attempts by a worker (5 at least): $(cat "$W/outage.attempts")"
it_pass "two-minute outage: $(wc -l <"$W/outage.attempts") attempts logged, up to $most by a worker, numbered without gaps"
logged=$(attempts)
syncd_stop "$SYNCD_PID" "$LOG"
metric=$(sed -nE 's/^syncd_reconnects_total\{job="dfaults",side="sink"\} ([0-9]+)$/\1/p' "$LOG" | tail -n 1)
[ -n "$metric" ] || it_fail "no syncd_reconnects_total of [sink:dws_upsert] in the metrics at the end of the run: $(tail -n 20 "$LOG")"
it_assert_eq "$logged" "$metric" "reconnects_total of the sink (the attempts logged in scenarios 1 to 3)"
it_pass "reconnects_total of the sink counts the $metric attempts logged"

# --- 4. write_mode = copy, auto_retry = true: kill -9 of syncd with its
# walsender stalled, restarted at once
walsender() { psql_on src -Atc "select active_pid from pg_replication_slots where slot_name = 'syncd_dfaults'"; }
syncd_start "$LOG" "$W/copy.ini"
it_assert_contains "$LOG" "[sink:dws_copy]"
mark=$(wc -l <"$LOG")
load_start
sleep 2
ws=$(walsender)
[ -n "$ws" ] || it_fail "no walsender for syncd_dfaults"
kill -STOP "$ws"
kill -9 "$SYNCD_PID"
wait "$SYNCD_PID" 2>/dev/null || true
(
	sleep 8
	kill -CONT "$ws" 2>/dev/null || true
) &
cont=$!
syncd_start "$LOG" "$W/copy.ini"
wait "$cont"
tail -n "+$((mark + 1))" "$LOG" >"$W/restart.log"
if grep -q "is active for PID" "$W/restart.log"; then it_fail "the restart refused the slot: $(tail -n 20 "$LOG")"; fi
if grep -q "auto_retry: restarting" "$W/restart.log"; then it_fail "the restart failed first (auto_retry restarted it): $(tail -n 20 "$LOG")"; fi
it_assert_contains "$W/restart.log" "walsender of this job"
sleep 2
load_stop
alive "the restart"
converged "write_mode = copy, auto_retry: kill -9 with the walsender stalled, restarted at once"
syncd_stop "$SYNCD_PID" "$LOG"
it_pass "the destination's faults and a crash were ridden out"
