#!/bin/bash
# tests/bench/idle.sh [BUILD_DIR] - what a job with many tables costs the
# source while nothing changes, next to PostgreSQL's own subscription of
# the same tables.
#
# Two throwaway PostgreSQL 15 clusters (src, dst). On src TABLES tables
# (id int primary key, v text, n numeric, d timestamptz), empty; on dst
# the same tables, created beforehand. Then, one after the other, each
# idling for DURATION seconds once it streams:
#   - a subscription of a publication of every table (copy_data = false);
#   - syncd, mode = incremental, tables = public.*, write_mode = copy,
#     the job's defaults.
# Prints, for each, how long it took to stream (syncd: from the start of
# the process; the subscription: from CREATE SUBSCRIPTION until its
# walsender runs) and the CPU seconds of every src server process and of
# the consumer (syncd; the subscription's apply worker runs on dst) over
# the idle period. About 2 minutes at the defaults.
#
# Environment: TABLES (5000), DURATION (30), LOGS (a directory for the
# syncd log).
set -eu
. "$(dirname "$0")/common.sh"

TABLES=${TABLES:-5000}
DURATION=${DURATION:-30}
TCK=$(getconf CLK_TCK)

pg_start src "max_locks_per_transaction = 256"
pg_start dst "max_locks_per_transaction = 256"

ddl() { # ddl CLUSTER: the tables, 500 a transaction
	for k in $(seq 0 500 $((TABLES - 1))); do
		psql_on "$1" -c "do \$\$ begin for i in $((k + 1))..$((k + 500 < TABLES ? k + 500 : TABLES)) loop execute format('create table t%s (id int primary key, v text, n numeric, d timestamptz)', i); end loop; end \$\$" >/dev/null
	done
}
ddl src
ddl dst

# the CPU ticks of every process of a cluster's data directory, and of PID
ticks_of() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
cluster_ticks() {
	local sum=0 p
	for p in $(pgrep -f "postgres: " || true); do
		if [ "$(readlink "/proc/$p/cwd" 2>/dev/null)" = "$(readlink -f "$IT_WORK/pg-$1/data")" ]; then
			sum=$((sum + $(ticks_of "$p")))
		fi
	done
	echo $sum
}
secs() { echo "scale=2; $1 / $TCK" | bc; }
now() { date +%s.%N; }

# ---- the subscription
psql_on src -c "create publication idle_pub for all tables" >/dev/null
t0=$(now)
psql_on dst -c "create subscription idle_sub connection 'host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres' publication idle_pub with (copy_data = false)" >/dev/null
for _ in $(seq 1 600); do
	[ "$(psql_on src -Atc "select count(*) from pg_stat_replication where application_name = 'idle_sub'")" = 1 ] && break
	sleep 0.1
done
sub_start=$(echo "$(now) - $t0" | bc)
sleep 2
s0=$(cluster_ticks src)
sleep "$DURATION"
s1=$(cluster_ticks src)
sub_src=$(secs $((s1 - s0)))
psql_on dst -c "drop subscription idle_sub" >/dev/null
psql_on src -c "drop publication idle_pub" >/dev/null

# ---- syncd
cat >"$W/idle.ini" <<INI
[job]
name = idle
mode = incremental
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
tables = public.*
[sink]
write_mode = copy
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres
target.schema = public
INI
t0=$(now)
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/idle.ini" >"$W/syncd.log" 2>&1 &
SYNCD_PID=$!
for _ in $(seq 1 6000); do
	grep -q "streaming from slot" "$W/syncd.log" && break
	kill -0 $SYNCD_PID 2>/dev/null || it_fail "syncd exited: $(tail -n 5 "$W/syncd.log")"
	sleep 0.1
done
grep -q "streaming from slot" "$W/syncd.log" || it_fail "syncd did not stream within 600 s"
syncd_startup=$(echo "$(now) - $t0" | bc)
sleep 2
s0=$(cluster_ticks src)
p0=$(ticks_of "$SYNCD_PID")
sleep "$DURATION"
s1=$(cluster_ticks src)
p1=$(ticks_of "$SYNCD_PID")
syncd_stop "$SYNCD_PID" "$W/syncd.log"
[ -n "${LOGS:-}" ] && mkdir -p "$LOGS" && cp "$W/syncd.log" "$LOGS/"

echo "idle.sh: $TABLES empty tables, ${DURATION} s idle once streaming; 2 cores"
printf '  %-14s %10s %16s %12s\n' consumer "start s" "src server cpu s" "consumer cpu s"
printf '  %-14s %10.2f %16s %12s\n' subscription "$sub_start" "$sub_src" "(on dst)"
printf '  %-14s %10.2f %16s %12s\n' syncd "$syncd_startup" "$(secs $((s1 - s0)))" "$(secs $((p1 - p0)))"
