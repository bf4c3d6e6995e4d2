#!/bin/bash
# tests/bench/lag.sh [BUILD_DIR] - steady-state lag: how long after its
# commit on the source a row is at the destination, while pgbench runs
# at a fixed rate, for syncd and for PostgreSQL's own subscription.
#
# Two throwaway PostgreSQL 15 clusters (src, dst; lib.sh's fsync = off).
# On src a pgbench database (scale SCALE, pgbench_history given a primary
# key) and a probe table probe(id, at timestamptz default
# clock_timestamp()); on dst a copy of its tables and data (pg_dump) per
# consumer, whose probe tables have one more column, applied timestamptz default
# clock_timestamp(): the destination fills it when the row is written
# there. A probe row is inserted PROBE_RATE times a second in a
# transaction of its own beside pgbench's tpcb-like load at TPS
# transactions a second, for DURATION seconds; the lag of a probe row is applied
# minus at (both clocks are this machine's). Consumers, one after the
# other, each for its own run of the load:
#   - the subscription (default options, copy_data = false);
#   - syncd with the job's defaults but batch.interval and status.interval
#     (BATCH_INTERVAL, 1s), in write mode MODES ("copy upsert").
# Prints p50, p90, p99 and the maximum lag of each, the probe rows'
# count, and whether syncd's p99 is under batch.interval + 0.5 s (the
# target; reported, never failed). Fails only when a probe row does not
# arrive within 60 s of the end of the load. About 3 minutes.
#
# Environment: TPS (1000), PROBE_RATE (20), DURATION (30 s), SCALE (10),
# BATCH_INTERVAL (1s), MODES (copy upsert), CONCURRENCY (2), KEYBY
# (table), LOGS (a directory for the syncd logs).
set -eu
. "$(dirname "$0")/common.sh"

TPS=${TPS:-1000}
PROBE_RATE=${PROBE_RATE:-20}
SECONDS_RUN=${DURATION:-30}
SCALE=${SCALE:-10}
BATCH_INTERVAL=${BATCH_INTERVAL:-1s}
MODES=${MODES:-copy upsert}
CONCURRENCY=${CONCURRENCY:-2}
KEYBY=${KEYBY:-table}
PGBENCH=$PGBIN/pgbench

pg_start src "max_wal_size = 4GB"
pg_start dst "max_wal_size = 4GB
wal_retrieve_retry_interval = 100ms
wal_receiver_status_interval = 1s"

q() { PGOPTIONS="-c client_min_messages=warning" DB=$2 psql_on "$1" -Atc "$3"; }

"$PGBENCH" -h 127.0.0.1 -p "$src_PORT" -U postgres -i -s "$SCALE" -q postgres \
	>"$W/pgbench-init.out" 2>&1 || it_fail "pgbench -i: $(tail "$W/pgbench-init.out")"
q src postgres "alter table pgbench_history add column id bigserial primary key" >/dev/null
q src postgres "create table probe (id bigserial primary key, at timestamptz not null default clock_timestamp())" >/dev/null
q src postgres "create publication lag_pub for table pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history, probe" >/dev/null
DB=postgres as_pg_dump src --no-owner --no-publications --no-subscriptions >"$W/dump.sql"
for a in sub $MODES; do
	q dst postgres "create database lag_$a" >/dev/null
	DB=lag_$a psql_on dst -f "$W/dump.sql" >/dev/null
	q dst "lag_$a" "alter table probe add column applied timestamptz default clock_timestamp()" >/dev/null
done
cat >"$W/probe.sql" <<'SQL'
insert into probe default values;
SQL

# load NAME: pgbench at TPS and the probe at PROBE_RATE for SECONDS_RUN
load() {
	"$PGBENCH" -h 127.0.0.1 -p "$src_PORT" -U postgres -n -c 4 -j 2 -R "$TPS" -T "$SECONDS_RUN" postgres \
		>"$W/$1-pgbench.out" 2>&1 &
	local p1=$!
	"$PGBENCH" -h 127.0.0.1 -p "$src_PORT" -U postgres -n -c 1 -R "$PROBE_RATE" -T "$SECONDS_RUN" \
		-f "$W/probe.sql" postgres >"$W/$1-probe.out" 2>&1 ||
		it_fail "probe: $(tail "$W/$1-probe.out")"
	wait $p1 || it_fail "pgbench: $(tail "$W/$1-pgbench.out")"
	TPS_DONE=$(awk '/^tps/ {printf "%d", $3}' "$W/$1-pgbench.out")
}

# until every probe row of this run (id > FROM_ID) is in DB on dst
converge() {
	local n
	n=$(q src postgres "select count(*) from probe where id > $FROM_ID")
	for _ in $(seq 1 600); do
		[ "$(q dst "$1" "select count(*) from probe where id > $FROM_ID")" = "$n" ] && return 0
		sleep 0.1
	done
	it_fail "$1: $(q dst "$1" "select count(*) from probe where id > $FROM_ID") of $n probe rows after 60 s"
}

# report NAME DB: the lag of the probe rows inserted since FROM_ID
report() {
	local ids
	ids=$(q src postgres "select string_agg(id || ',' || extract(epoch from at), ' ') from probe where id > $FROM_ID")
	q dst "$2" "drop table if exists lag_src; create table lag_src (id bigint primary key, at float8)" >/dev/null
	echo "$ids" | tr ' ' '\n' | PGOPTIONS="-c client_min_messages=warning" DB=$2 psql_on dst -c "copy lag_src from stdin with (format csv)" >/dev/null
	q dst "$2" "select count(*),
		round(percentile_cont(0.5) within group (order by l)::numeric, 3),
		round(percentile_cont(0.9) within group (order by l)::numeric, 3),
		round(percentile_cont(0.99) within group (order by l)::numeric, 3),
		round(max(l)::numeric, 3)
		from (select extract(epoch from p.applied) - s.at as l
		      from probe p join lag_src s using (id)) x" |
		awk -F'|' -v name="$1" -v tps="$TPS_DONE" '{
			printf "  %-28s %6s %8s %8s %8s %8s %8s\n", name, $1, tps, $2, $3, $4, $5 }'
	P99=$(q dst "$2" "select round(percentile_cont(0.99) within group (order by extract(epoch from p.applied) - s.at)::numeric, 3) from probe p join lag_src s using (id)")
}

header() {
	printf '  %-28s %6s %8s %8s %8s %8s %8s\n' consumer probes tps p50_s p90_s p99_s max_s
}

echo "lag.sh: pgbench tpcb-like at $TPS tps (scale $SCALE) + $PROBE_RATE probe rows/s, $SECONDS_RUN s per consumer; 2 cores"
echo "syncd: job defaults but batch.interval = status.interval = $BATCH_INTERVAL, concurrency = $CONCURRENCY, sink.keyby.mode = $KEYBY"
header

# the subscription
FROM_ID=$(q src postgres "select coalesce(max(id), 0) from probe")
q dst lag_sub "create subscription lag_sub connection 'host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres' publication lag_pub with (copy_data = false)" >/dev/null
sleep 2
load sub
converge lag_sub
report "subscription" lag_sub
q dst lag_sub "alter subscription lag_sub disable" >/dev/null
q dst lag_sub "drop subscription lag_sub" >/dev/null

bi_s=$(echo "$BATCH_INTERVAL" | sed -E 's/ms$/ \/ 1000/; s/s$//' | bc -l)
for m in $MODES; do
	cat >"$W/$m.ini" <<INI
[job]
name = lag_$m
mode = incremental
state_dir = $W/state
concurrency = $CONCURRENCY
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
publication = lag_pub
status.interval = $BATCH_INTERVAL
[sink]
write_mode = $m
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=lag_$m
target.schema = #{source_schema_name}
sink.keyby.mode = $KEYBY
batch.interval = $BATCH_INTERVAL
INI
	syncd_start "$W/$m.log" "$W/$m.ini"
	FROM_ID=$(q src postgres "select coalesce(max(id), 0) from probe")
	sleep 1
	load "$m"
	converge "lag_$m"
	report "syncd write_mode = $m" "lag_$m"
	syncd_stop $SYNCD_PID "$W/$m.log"
	[ -z "${LOGS:-}" ] || { mkdir -p "$LOGS"; cp "$W/$m.log" "$LOGS/lag_$m.log"; }
	ok=$(echo "$P99 < $bi_s + 0.5" | bc -l)
	printf '  %-28s p99 %s s, target < batch.interval + 0.5 s = %s s: %s\n' "syncd $m" "$P99" \
		"$(echo "$bi_s + 0.5" | bc -l | sed 's/0*$//')" "$([ "$ok" = 1 ] && echo met || echo MISSED)"
done

