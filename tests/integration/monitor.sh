#!/bin/bash
# [monitor] (issue 17): a pgoutput job with the endpoint on a free port,
# alarm rules and a status line, under real clusters and a real Prometheus.
#  1. while it copies (a destination lock holds the copy): /healthz 200,
#     syncd_job_state{state="copying"} 1, the table's estimate, promtool
#     check metrics passes
#  2. while it streams: the changes applied by table and op equal what was
#     written (a table with a backslash in its name is labelled escaped), /status agrees, promtool passes, syncd --status prints it,
#     the status line is logged, no secret anywhere
#  3. a Prometheus server scrapes it; a PromQL query returns syncd's lag
#  4. the destination stopped: lag rises, /healthz 503, alarm "lag" fires
#     once; started again: lag falls, the alarm clears once (its command
#     prints a line, logged, and fails, logged)
#  5. rows the destination refuses: alarm "dirty_rows" fires once, its
#     command hangs and is stopped after alarm.interval while the job goes
#     on applying, and the alarm clears once
#  6. garbage, slow and wrong requests: the endpoint still answers
#  7. a port in use fails the start and --check with a message naming the
#     key; after a stop, syncd --status shows the progress kept at the
#     destination
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
export SYNCD_PLUGIN_PATH="$TEST_PLUGIN_DIR"
SECRET=Sekret-Pw-17
pg_start src
pg_start dst
S() { psql_on src -c "$1" >/dev/null; }
D() { psql_on dst -c "$1" >/dev/null; }
S "create table big (id int primary key, v text)"
S "insert into big select g, repeat('x', 50) from generate_series(1, 20000) g"
S "analyze big"
S 'create table "we\ird näme" (id int primary key, n int)'
S "create table hist (id bigserial primary key, v int not null)"
# the destination refuses v = 666
D "create table hist (id bigint primary key, v int not null check (v <> 666))"
D "create table big (id int primary key, v text)"

cat >"$W/alarm.sh" <<'SH'
#!/bin/sh
echo "$SYNCD_ALARM $SYNCD_ALARM_STATE value=$SYNCD_ALARM_VALUE threshold=$SYNCD_ALARM_THRESHOLD job=$SYNCD_JOB" >>"$ALARM_LOG"
echo "paged about $SYNCD_ALARM"
# a pager that fails: logged, nothing more
if [ "$SYNCD_ALARM" = lag ] && [ "$SYNCD_ALARM_STATE" = cleared ]; then
	exit 3
fi
# the first time dirty_rows fires, the command hangs
if [ "$SYNCD_ALARM" = dirty_rows ] && [ "$SYNCD_ALARM_STATE" = firing ]; then
	sleep 600
fi
SH
chmod +x "$W/alarm.sh"
export ALARM_LOG=$W/alarms.txt
: >"$ALARM_LOG"

cat >"$W/job.ini" <<INI
[job]
name = mon
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres password=$SECRET
tables = public.*
status.interval = 200ms
[sink]
write_mode = upsert
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres password=$SECRET
target.schema = public
batch.interval = 200ms
[dirty]
enabled = true
threshold = -1
[monitor]
metrics.listen = 127.0.0.1:0
alarm.lag = 3s
alarm.dirty_rows = 2
alarm.interval = 4s
alarm.command = $W/alarm.sh
log.interval = 1s
INI
LOG=$W/job.log

# ---- 1. copying ---------------------------------------------------------------
# a session holds the destination's big: the copy waits for it
psql_on dst -c "begin; lock table big in share mode; select pg_sleep(8); commit" \
	>/dev/null 2>&1 &
LOCK_PID=$!
sleep 0.5
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job.ini" >>"$LOG" 2>&1 &
SYNCD_PID=$!
for _ in $(seq 1 100); do
	[ -s "$W/state/mon/monitor.url" ] && break
	kill -0 $SYNCD_PID 2>/dev/null || it_fail "syncd exited: $(tail -n 20 "$LOG")"
	sleep 0.1
done
URL=$(cat "$W/state/mon/monitor.url") || it_fail "no monitor.url: $(tail "$LOG")"
case $URL in http://127.0.0.1:[1-9]*) ;; *) it_fail "monitor.url: $URL" ;; esac
it_assert_contains "$LOG" "[monitor] serving $URL/metrics"
for _ in $(seq 1 100); do
	curl -sf "$URL/healthz" 2>/dev/null | grep -q copying && break
	sleep 0.1
done
it_assert_eq copying "$(curl -s "$URL/healthz")" "/healthz while the copy waits"
it_assert_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" "/healthz code while copying"
# the estimates come once the copy is planned
for _ in $(seq 1 50); do
	curl -sf "$URL/metrics" >"$W/copying.prom" || it_fail "no /metrics while copying"
	grep -q '^syncd_full_rows_estimated{job="mon",database="postgres",table="public.big"}' "$W/copying.prom" && break
	sleep 0.1
done
promtool check metrics <"$W/copying.prom" >"$W/promtool.out" 2>&1 ||
	it_fail "promtool check metrics (copying): $(cat "$W/promtool.out")"
grep -q '^syncd_job_state{job="mon",state="copying"} 1$' "$W/copying.prom" ||
	it_fail "job_state copying: $(grep job_state "$W/copying.prom")"
grep -qE '^syncd_full_rows_estimated\{job="mon",database="postgres",table="public.big"\} [1-9]' "$W/copying.prom" ||
	it_fail "no estimate for public.big: $(grep full_ "$W/copying.prom")"
grep -qE '^syncd_build_info\{job="mon",version="[^"]+",abi="[0-9]+\.[0-9]+"\} 1$' "$W/copying.prom" ||
	it_fail "no build_info"
grep -qE '^process_resident_memory_bytes\{job="mon"\} [1-9]' "$W/copying.prom" ||
	it_fail "no RSS"
it_pass "while copying: /healthz 200, state copying, estimates, promtool passes"
wait $LOCK_PID

# ---- 2. streaming -------------------------------------------------------------
for _ in $(seq 1 300); do
	grep -q "streaming from slot" "$LOG" && break
	kill -0 $SYNCD_PID 2>/dev/null || it_fail "syncd exited: $(tail -n 20 "$LOG")"
	sleep 0.1
done
S "update big set v = 'y' where id <= 1000"
S "delete from big where id > 19990"
S "insert into hist (v) select g from generate_series(1, 500) g"
S 'insert into "we\ird näme" select g, g from generate_series(1, 5) g'
slot_wait src syncd_mon "$(psql_on src -Atc 'select pg_current_wal_lsn()')"
sleep 1.2 # a collection after the confirmation
curl -sf "$URL/metrics" >"$W/streaming.prom" || it_fail "no /metrics while streaming"
promtool check metrics <"$W/streaming.prom" >"$W/promtool.out" 2>&1 ||
	it_fail "promtool check metrics (streaming): $(cat "$W/promtool.out")"
m() { # m NAME LABELS: the value of one sample
	grep -F "$1{job=\"mon\",$2} " "$W/streaming.prom" | sed 's/.* //'
}
it_assert_eq 1000 "$(m syncd_changes_applied_total 'database="postgres",table="public.big",op="update"')" "updates of big"
it_assert_eq 10 "$(m syncd_changes_applied_total 'database="postgres",table="public.big",op="delete"')" "deletes of big"
it_assert_eq 500 "$(m syncd_changes_applied_total 'database="postgres",table="public.hist",op="insert"')" "inserts of hist"
it_assert_eq 5 "$(m syncd_changes_applied_total 'database="postgres",table="public.we\\ird näme",op="insert"')" \
	"inserts of the table with a backslash, a blank and an umlaut, its label escaped"
it_assert_eq 1 "$(m syncd_job_state 'state="streaming"')" "job_state streaming"
it_assert_eq 0 "$(m syncd_lag_seconds 'database="postgres"')" "no lag once confirmed"
grep -qE '^syncd_batch_flush_duration_seconds_count\{job="mon",worker="[01]"\} [1-9]' "$W/streaming.prom" ||
	it_fail "no flush histogram"
grep -qE '^syncd_slot_retained_wal_bytes\{job="mon",database="postgres",slot="syncd_mon_hold",plugin="source:pgoutput"\} [0-9]' \
	"$W/streaming.prom" || it_fail "no retained WAL of the hold slot"
grep -qE '^syncd_full_table_done\{job="mon",database="postgres",table="public.big"\} 1$' "$W/streaming.prom" ||
	it_fail "big not done"
curl -sf "$URL/status" >"$W/status.json" || it_fail "no /status"
it_assert_eq streaming "$(jq -r .state "$W/status.json")" "/status state"
it_assert_eq 1000 "$(jq '.tables[] | select(.table == "public.big") | .updates' "$W/status.json")" "/status: updates of big"
it_assert_eq 20000 "$(jq '.tables[] | select(.table == "public.big") | .rows_copied' "$W/status.json")" "/status: rows copied of big"
it_assert_eq postgres "$(jq -r '.streams[0].database' "$W/status.json")" "/status: the stream"
jq -e '.streams[0].confirmed_lsn | test("^[0-9A-F]+/[0-9A-F]+$")' "$W/status.json" >/dev/null ||
	it_fail "/status: confirmed_lsn $(jq .streams "$W/status.json")"
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job.ini" --status >"$W/status.txt" 2>&1 ||
	it_fail "syncd --status: $(cat "$W/status.txt")"
it_assert_contains "$W/status.txt" "job mon: streaming for"
grep -qE 'postgres:public.big +streaming +20000 +0 +1000 +10' "$W/status.txt" ||
	it_fail "syncd --status table line: $(cat "$W/status.txt")"
grep -qE "streaming: [0-9]+ changes/s over [0-9]+ s, lag [0-9.]+ s, 0 dirty rows, retained WAL" "$LOG" ||
	it_fail "no status line: $(tail "$LOG")"
for f in "$W/copying.prom" "$W/streaming.prom" "$W/status.json" "$W/status.txt" "$LOG"; do
	grep -q "$SECRET" "$f" && it_fail "the password is in $f"
done
it_pass "while streaming: counters, escaped labels, /status, --status, status line, no secret"

# ---- 3. Prometheus --------------------------------------------------------------
PROM_PORT=$(it_free_port)
cat >"$W/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: syncd
    honor_labels: true
    static_configs:
      - targets: ['${URL#http://}']
YML
prometheus --config.file="$W/prometheus.yml" --storage.tsdb.path="$W/prom" \
	--web.listen-address="127.0.0.1:$PROM_PORT" >"$W/prometheus.log" 2>&1 &
PROM_PID=$!
# a failure meanwhile stops Prometheus too (set +e: the trap must reach
# it_cleanup with the status)
trap 'rc_=$?; set +e; kill "$PROM_PID" 2>/dev/null; (exit $rc_); it_cleanup' EXIT
got=
for _ in $(seq 1 300); do
	got=$(curl -s "http://127.0.0.1:$PROM_PORT/api/v1/query" \
		--data-urlencode 'query=syncd_lag_seconds{job="mon",database="postgres"}' 2>/dev/null |
		jq -r '.data.result[0].metric.database // empty' 2>/dev/null) ||
		got= # not ready yet ("Service Unavailable" is no JSON: jq exits 4)
	[ "$got" = postgres ] && break
	kill -0 $PROM_PID 2>/dev/null || it_fail "prometheus exited: $(tail "$W/prometheus.log")"
	sleep 0.1
done
it_assert_eq postgres "$got" "PromQL syncd_lag_seconds through Prometheus's HTTP API"
# every query of the Grafana dashboard is PromQL Prometheus takes
DASH=$top_srcdir/contrib/grafana/syncd.json
jq -e . "$DASH" >/dev/null || it_fail "$DASH is not JSON"
jq -r '.panels[].targets[].expr' "$DASH" | sed 's/\$job/mon/g' >"$W/exprs"
[ "$(wc -l <"$W/exprs")" -ge 10 ] || it_fail "the dashboard has $(wc -l <"$W/exprs") queries"
while read -r e; do
	st=$(curl -s "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$e" | jq -r .status)
	it_assert_eq success "$st" "dashboard query: $e"
done <"$W/exprs"
kill $PROM_PID
wait $PROM_PID 2>/dev/null || true
trap it_cleanup EXIT
it_pass "a Prometheus server scrapes the endpoint; PromQL returns the lag; the dashboard's queries parse"

# ---- 4. lag -----------------------------------------------------------------------
lag() { curl -s "$URL/metrics" | sed -nE 's/^syncd_lag_seconds\{job="mon",database="postgres"\} (.*)$/\1/p'; }
pg_stop dst
S "insert into hist (v) values (1)"
for _ in $(seq 1 150); do
	awk -v l="$(lag)" 'BEGIN { exit !(l > 3) }' && break
	sleep 0.1
done
awk -v l="$(lag)" 'BEGIN { exit !(l > 3) }' || it_fail "lag did not rise above 3 s: $(lag)"
it_assert_eq 503 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" "/healthz while the destination is down"
for _ in $(seq 1 50); do grep -q "^lag firing" "$ALARM_LOG" && break; sleep 0.1; done
grep -q "^lag firing value=[0-9.]* threshold=3 job=mon$" "$ALARM_LOG" || it_fail "lag alarm: $(cat "$ALARM_LOG")"
pg_restart dst
for _ in $(seq 1 300); do
	[ "$(lag)" = 0 ] && grep -q "^lag cleared" "$ALARM_LOG" && break
	sleep 0.1
done
it_assert_eq 0 "$(lag)" "lag once the destination is back"
sleep 5 # another alarm.interval: nothing more
it_assert_eq 1 "$(grep -c '^lag firing' "$ALARM_LOG")" "lag fired once"
it_assert_eq 1 "$(grep -c '^lag cleared' "$ALARM_LOG")" "lag cleared once"
it_assert_contains "$LOG" "[monitor] alarm lag fired"
it_assert_contains "$LOG" "[monitor] alarm.command (lag): paged about lag"
it_assert_contains "$LOG" "[monitor] alarm.command for lag exited with status 3"
it_assert_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" "/healthz once back"
it_pass "lag rises and falls with the destination; the alarm fires and clears once"

# ---- 5. dirty rows, a hanging command ----------------------------------------------
S "insert into hist (v) values (666), (666), (666)"
for _ in $(seq 1 100); do grep -q "^dirty_rows firing" "$ALARM_LOG" && break; sleep 0.1; done
grep -q "^dirty_rows firing value=3 threshold=2 job=mon$" "$ALARM_LOG" || it_fail "dirty alarm: $(cat "$ALARM_LOG")"
# the command hangs: the job goes on
S "insert into hist (v) select g from generate_series(1, 100) g"
slot_wait src syncd_mon "$(psql_on src -Atc 'select pg_current_wal_lsn()')"
it_assert_eq "$(psql_on src -Atc 'select count(*) from hist where v <> 666')" \
	"$(psql_on dst -Atc 'select count(*) from hist')" "rows applied while the alarm command hangs"
for _ in $(seq 1 150); do grep -q "^dirty_rows cleared" "$ALARM_LOG" && break; sleep 0.1; done
it_assert_contains "$LOG" "alarm.command for dirty_rows still runs after 4 s: stopping it"
sleep 5
it_assert_eq 1 "$(grep -c '^dirty_rows firing' "$ALARM_LOG")" "dirty_rows fired once"
it_assert_eq 1 "$(grep -c '^dirty_rows cleared' "$ALARM_LOG")" "dirty_rows cleared once"
curl -s "$URL/metrics" >"$W/late.prom"
grep -q '^syncd_dirty_rows_total{job="mon",database="postgres",table="public.hist"} 3$' "$W/late.prom" ||
	it_fail "dirty_rows_total of hist"
# every metric of the dashboard is served (auto_retry restarts aside)
for name in $(grep -oE '(syncd|process)_[a-z_]+' "$W/exprs" | sed 's/_bucket$//' | sort -u); do
	[ "$name" = syncd_retries_total ] && continue
	grep -q "^$name[{_]" "$W/late.prom" || it_fail "the dashboard's $name is not served"
done
it_pass "dirty rows: the alarm fires and clears once; a hanging command is stopped, the job goes on"

# ---- 6. bad clients -------------------------------------------------------------------
HOSTPORT=${URL#http://}
H=${HOSTPORT%:*}
P=${HOSTPORT##*:}
it_assert_eq 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST --data x "$URL/metrics")" "POST"
it_assert_eq 404 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/nope")" "unknown path"
BAD=
for i in 1 2 3; do
	# slow clients: half a request, held open
	(exec 3<>"/dev/tcp/$H/$P"; printf 'GET /metrics HTTP/1.1\r\nHost: x\r\n' >&3; sleep 4) &
	BAD="$BAD $!"
done
(exec 3<>"/dev/tcp/$H/$P"; timeout 5 head -c 65536 /dev/urandom >&3; sleep 0.5) 2>/dev/null &
BAD="$BAD $!"
(exec 3<>"/dev/tcp/$H/$P"; printf 'GARBAGE / HTTP/9.9\r\n\r\n' >&3; timeout 2 cat <&3 >/dev/null) 2>/dev/null &
BAD="$BAD $!"
(exec 3<>"/dev/tcp/$H/$P"; printf 'GET /%s HTTP/1.1\r\nHost: x\r\n\r\n' "$(head -c 200000 /dev/zero | tr '\0' a)" >&3
	timeout 2 cat <&3 >/dev/null) 2>/dev/null &
BAD="$BAD $!"
(exec 3<>"/dev/tcp/$H/$P"; printf 'GET /metrics HTTP/1.1\r\nHost: x\r\nX: %s\r\n\r\n' "$(head -c 100000 /dev/zero | tr '\0' b)" >&3
	timeout 2 cat <&3 >/dev/null) 2>/dev/null &
BAD="$BAD $!"
sleep 0.5
t0=$(date +%s%N)
curl -sf -m 5 "$URL/metrics" >/dev/null || it_fail "/metrics beside slow and bad clients"
t1=$(date +%s%N)
[ $(( (t1 - t0) / 1000000 )) -lt 3000 ] || it_fail "/metrics took $(( (t1 - t0) / 1000000 )) ms beside slow clients"
for pid in $BAD; do wait "$pid" 2>/dev/null || true; done
syncd_alive "bad clients" "$LOG"
curl -sf "$URL/healthz" >/dev/null || it_fail "/healthz after the bad clients"
it_pass "garbage, overlong, slow and wrong requests: the endpoint still answers"

# ---- 7. a port in use; --status of a stopped job ------------------------------------------
sed -e "s/^name = mon/name = mon2/" -e "s|^metrics.listen = .*|metrics.listen = $HOSTPORT|" \
	"$W/job.ini" >"$W/job2.ini"
rc=0
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job2.ini" >"$W/job2.log" 2>&1 || rc=$?
it_assert_eq 1 "$rc" "a second job on the same port"
it_assert_contains "$W/job2.log" "[monitor] metrics.listen = $HOSTPORT: could not listen"
rc=0
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job2.ini" --check >"$W/check2.log" 2>&1 || rc=$?
it_assert_eq 3 "$rc" "--check of a job whose port is in use"
it_assert_contains "$W/check2.log" "[monitor] metrics.listen = $HOSTPORT: cannot listen there (Address already in use)"
syncd_stop "$SYNCD_PID" "$LOG"
SYNCD_PID=
[ -e "$W/state/mon/monitor.url" ] && it_fail "monitor.url left after the stop"
rc=0
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job.ini" --status >"$W/status2.txt" 2>&1 || rc=$?
it_assert_eq 0 "$rc" "syncd --status of a stopped job: $(cat "$W/status2.txt")"
it_assert_contains "$W/status2.txt" "job mon: progress recorded at the destination"
grep -qE "stream postgres: applied up to [0-9A-F]+/[0-9A-F]+ by every worker" "$W/status2.txt" ||
	it_fail "syncd --status: $(cat "$W/status2.txt")"
grep -q "$SECRET" "$W/status2.txt" "$W/job2.log" && it_fail "the password in --status or the log"
it_pass "a port in use fails the start; --status of a stopped job reads the destination"
