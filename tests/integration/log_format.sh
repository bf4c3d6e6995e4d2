#!/bin/bash
# log.format = json (issue 17, item 5) with a source that talks: the
# source database sends DEBUG notices to every session
# (client_min_messages = debug1). Every line syncd writes to stderr,
# through the copy, streaming and the stop, is one JSON object with time,
# level and message; the server's notices go through the log too (libpq's
# default would print them raw on stderr).
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst
psql_on src -c "create table t (id int primary key, v text)" \
	-c "insert into t select g, 'v' || g from generate_series(1, 1000) g" \
	-c "alter database postgres set client_min_messages = debug1" >/dev/null
cat >"$W/job.ini" <<INI
[job]
name = logjson
state_dir = $W/state
log.format = json
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
tables = public.t
status.interval = 200ms
[sink]
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres
target.schema = public
batch.interval = 200ms
INI
LOG=$W/job.log
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/job.ini" >"$LOG" 2>&1 &
SYNCD_PID=$!
for _ in $(seq 1 200); do
	grep -q '"message":"database \\"postgres\\": streaming from slot' "$LOG" && break
	kill -0 $SYNCD_PID 2>/dev/null || it_fail "syncd exited: $(tail -n 20 "$LOG")"
	sleep 0.1
done
psql_on src -c "update t set v = 'w' where id <= 10" >/dev/null
slot_wait src syncd_logjson "$(psql_on src -Atc 'select pg_current_wal_lsn()')"
syncd_stop "$SYNCD_PID" "$LOG"
SYNCD_PID=
n=0
while IFS= read -r line; do
	n=$((n + 1))
	printf '%s' "$line" | jq -e 'type == "object" and (.time | type == "string") and (.level | type == "string") and (.message | type == "string")' \
		>/dev/null 2>&1 || it_fail "line $n is not a JSON log object: $line"
done <"$LOG"
[ "$n" -ge 5 ] || it_fail "only $n lines: $(cat "$LOG")"
it_assert_eq "$(table_hash src postgres t)" "$(table_hash dst postgres t)" "t copied and streamed"
it_pass "$n lines, each a JSON object, with a source sending DEBUG notices"
