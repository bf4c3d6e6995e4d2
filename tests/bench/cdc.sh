#!/bin/bash
# tests/bench/cdc.sh [BUILD_DIR] - how fast syncd catches up on a backlog
# into a real destination, next to the server's decode rate and to
# PostgreSQL's own logical replication.
#
# Measured with the settings a user keeps: the job's defaults (keyby
# table, concurrency 2, the hold slot of slot.flush.delay.time, heartbeats)
# but for batch.interval = 1s and status.interval = 1s; clusters with
# default shared_buffers and autovacuum on; destination tables created
# beforehand from pg_dump -s, with their keys. KEYBY=pk BATCH_INTERVAL=200ms
# STATUS_INTERVAL=200ms give the tuned figures (label them so).
#
# Two throwaway PostgreSQL 15 clusters on this machine: src and dst (both
# with lib.sh's fsync = off and full_page_writes = off). For each workload
# a source database, and on dst three copies of its tables and data (one
# for the subscription, one per syncd write mode). Every consumer's slot is
# created first, then the backlog is generated while no consumer runs, then
# the consumers drain the same backlog one after the other:
#   - pg_logical_slot_get_binary_changes in one backend: the server's
#     decode ceiling, with no network and no client;
#   - pg_recvlogical (pgoutput, proto_version=1) to /dev/null: the rate at
#     which the server decodes and sends the stream, the reference ceiling;
#   - CREATE SUBSCRIPTION (copy_data = false, disabled during the backlog),
#     timed from ALTER SUBSCRIPTION ENABLE until its replication origin on
#     dst has applied the backlog's last commit;
#   - syncd, write_mode = copy, then write_mode = upsert (mode = incremental,
#     slots created by a first start before the backlog), timed from the
#     start of syncd until its slot is confirmed past the backlog's last
#     commit (syncd confirms only what it has applied).
# Workloads: "pgbench" (tpcb-like, pgbench_history given a primary key; 4
# changes per transaction) and "random" (single-row inserts of new ids,
# updates and deletes of random ids of a table of ROWS rows, each its own
# transaction, and small transactions of an insert and two updates).
# The backlog ends with one marker transaction whose WAL insert position
# before its commit is the end every consumer is timed to.
# Prints changes, seconds and changes/s per consumer, the CPU seconds the
# consumer, its walsender on src and its backends on dst used meanwhile
# (with the walsender's context switches, voluntary/involuntary: how often
# it slept for its client or was preempted), and the ratios syncd/pg_recvlogical (target >= 1.0) and
# syncd/subscription (target >= 1.5). Missed targets are reported, not
# failed; the exit code is non-zero only when something breaks or a
# destination table differs from the source at the end.
#
# Environment: CHANGES (changes per workload, at least; default 1000000:
# with 400000 syncd's fixed costs - start, the last batch waiting
# batch.interval, status.interval - weigh 10-25% of its time), WORKLOADS
# ("pgbench random"), SCALE (pgbench scale, 10), ROWS (rows of the random
# table, 200000), CONCURRENCY (2), KEYBY (table), BATCH_INTERVAL (1s),
# STATUS_INTERVAL (1s), BATCH_MAX_ROWS (50000), WAIT_TIMEOUT (seconds per
# consumer, 1800), ORDER (the consumers, in the order they run: "ceiling
# decode subscription copy upsert"), SYNCD_LOG_LEVEL (info), TIMELINE (1:
# the CPU of each thread every 0.25 s, see timeline_start; its sampling
# forks a few processes per thread each time and slowed syncd by about a
# quarter on 2 cores: it shows where time goes, its ratios are not figures),
# PERF (1: a perf report, see perf_start), SRC_HOST (where the consumers
# reach the source: 127.0.0.1, or socket for its Unix socket, which spares
# the walsender the receiving half of loopback TCP that a remote consumer's
# host would do), LOGS (a directory to copy the syncd and server
# logs to). About 3 minutes at the defaults on 2 cores.
# BUILD_DIR (default: build) is a configured build tree.
set -eu
. "$(dirname "$0")/common.sh"

CHANGES=${CHANGES:-1000000}
WORKLOADS=${WORKLOADS:-pgbench random}
SCALE=${SCALE:-10}
ROWS=${ROWS:-200000}
CONCURRENCY=${CONCURRENCY:-2}
KEYBY=${KEYBY:-table}
BATCH_INTERVAL=${BATCH_INTERVAL:-1s}
STATUS_INTERVAL=${STATUS_INTERVAL:-1s}
BATCH_MAX_ROWS=${BATCH_MAX_ROWS:-50000}
WAIT_TIMEOUT=${WAIT_TIMEOUT:-1800}
SYNCD_LOG_LEVEL=${SYNCD_LOG_LEVEL:-info}
ORDER=${ORDER:-ceiling decode subscription copy upsert}
CLIENTS=4
TCK=$(getconf CLK_TCK)

# the clusters as a user keeps them (default shared_buffers, autovacuum
# on), but for lib.sh's fsync = off and room for the backlog's WAL
conf="max_wal_size = 4GB
checkpoint_timeout = 30min"
pg_start src "$conf"
# how the consumers reach the source: SRC_HOST=socket for its Unix socket
SRC_HOST=${SRC_HOST:-127.0.0.1}
[ "$SRC_HOST" != socket ] || SRC_HOST=$IT_WORK/pg-src/sock
# the launcher starts subscription workers at most once per
# wal_retrieve_retry_interval (5 s): ENABLE soon after CREATE SUBSCRIPTION
# would wait for it; the apply worker reports its position every second
pg_start dst "$conf
wal_retrieve_retry_interval = 100ms
wal_receiver_status_interval = 1s"
PGBENCH=$PGBIN/pgbench

# q CLUSTER DB SQL: one value.
q() { DB=$2 psql_on "$1" -Atc "$3"; }
now() { date +%s.%N; }
# cpu PID...: CPU seconds (user + system) the processes used so far.
cpu() {
	local total=0 p t
	for p in "$@"; do
		t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
		total=$((total + ${t:-0}))
	done
	printf '%.1f' "$(echo "scale=2; $total / $TCK" | bc)"
}

# csw PID: the process's context switches so far, "voluntary/involuntary"
# (a walsender that sleeps for its client, or is preempted, shows here)
csw() {
	awk '/^voluntary_ctxt_switches/ {v = $2} /^nonvoluntary_ctxt_switches/ {n = $2} END {printf "%d/%d", v, n}' "/proc/$1/status" 2>/dev/null || echo "-"
}

# bench_wait(COND, TIMEOUT): the epoch at which the query COND first
# returned true (polled every 10 ms), null after TIMEOUT seconds. Server
# side, so that polling costs next to nothing and is precise.
for c in src dst; do
	psql_on $c >/dev/null <<'SQL'
create function bench_wait(cond text, timeout float8) returns float8
language plpgsql as $$
declare
	ok boolean;
	deadline timestamptz := clock_timestamp() + make_interval(secs => timeout);
begin
	loop
		execute cond into ok;
		if coalesce(ok, false) then
			return extract(epoch from clock_timestamp());
		end if;
		if clock_timestamp() > deadline then
			return null;
		end if;
		perform pg_sleep(0.01);
	end loop;
end $$;
SQL
done

# wait_start CLUSTER COND: runs bench_wait in the background (WAIT_PID).
wait_start() {
	: >"$W/wait.out"
	psql_on "$1" -Atc "select bench_wait(\$cond\$$2\$cond\$, $WAIT_TIMEOUT)" >"$W/wait.out" 2>&1 &
	WAIT_PID=$!
}
# wait_end [PID LOG]: until the waiter returns, failing when process PID
# exits meanwhile, or, without PID, when LOG gets an ERROR past byte
# WAIT_FROM; sets T1 to the epoch the condition became true.
wait_end() {
	while kill -0 $WAIT_PID 2>/dev/null; do
		if [ -n "${1:-}" ] && ! kill -0 "$1" 2>/dev/null; then
			kill $WAIT_PID 2>/dev/null || true
			it_fail "process $1 exited before the end: $(tail -n 20 "${2:-/dev/null}")"
		fi
		if [ -z "${1:-}" ] && [ -n "${2:-}" ] &&
			tail -c +"$WAIT_FROM" "$2" | grep -q "ERROR"; then
			kill $WAIT_PID 2>/dev/null || true
			it_fail "$(tail -c +"$WAIT_FROM" "$2" | grep -m 5 -A 3 ERROR)"
		fi
		sleep 0.1
	done
	wait $WAIT_PID || it_fail "waiting failed: $(cat "$W/wait.out")"
	T1=$(cat "$W/wait.out")
	[ -n "$T1" ] || it_fail "not at the end within $WAIT_TIMEOUT s"
}
slot_cond() { echo "select confirmed_flush_lsn >= '$2' from pg_replication_slots where slot_name = '$1'"; }
# until SLOT on src is inactive
slot_idle() {
	for _ in $(seq 1 300); do
		[ "$(q src postgres "select count(*) from pg_replication_slots where slot_name = '$1' and active")" = 0 ] && return 0
		sleep 0.1
	done
	it_fail "slot $1 still active"
}
# until no client but us is connected to DB on src, so that the table
# statistics of the backlog's sessions have been reported
src_quiet() {
	for _ in $(seq 1 300); do
		[ "$(q src "$1" "select count(*) from pg_stat_activity where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()")" = 0 ] && return 0
		sleep 0.1
	done
	it_fail "clients still connected to $1"
}
# rows inserted, updated and deleted so far in DB on src
src_changes() {
	src_quiet "$1"
	q src "$1" "select sum(n_tup_ins + n_tup_upd + n_tup_del) from pg_stat_user_tables"
}

# ---- workloads: setup, tables, backlog, marker ---------------------------------

pgbench_setup() {
	"$PGBENCH" -h 127.0.0.1 -p "$src_PORT" -U postgres -i -s "$SCALE" -q pgbench \
		>"$W/pgbench-init.out" 2>&1 || it_fail "pgbench -i: $(tail "$W/pgbench-init.out")"
	q src pgbench "alter table pgbench_history add column id bigserial primary key" >/dev/null
	TABLES="pgbench_accounts pgbench_branches pgbench_tellers pgbench_history"
}
pgbench_backlog() {
	local per=$(( (CHANGES / 4 + CLIENTS - 1) / CLIENTS ))
	"$PGBENCH" -h 127.0.0.1 -p "$src_PORT" -U postgres -n -t "$per" -c $CLIENTS -j 2 pgbench \
		>"$W/pgbench.out" 2>&1 || it_fail "pgbench: $(tail "$W/pgbench.out")"
	TXNS=$(awk '/number of transactions actually processed/ {print $6}' "$W/pgbench.out" | cut -d/ -f1)
	[ "$TXNS" = $((per * CLIENTS)) ] || it_fail "pgbench: $(cat "$W/pgbench.out")"
	CHANGES_EXPECTED=$((TXNS * 4 + 1)) # and the marker
	DESC="tpcb-like, scale $SCALE, $TXNS transactions of 4 changes, -c $CLIENTS -j 2, $(awk '/^tps/ {printf "%d tps", $3}' "$W/pgbench.out")"
}
pgbench_marker="update pgbench_branches set bbalance = bbalance where bid = 1"

random_setup() {
	q src random "create table r (id bigint primary key, a int, b text, c timestamptz)" >/dev/null
	q src random "insert into r select g, g, md5(g::text), now() - g * interval '1 s' from generate_series(1, $ROWS) g" >/dev/null
	q src random "create sequence r_new start $((ROWS + 1))" >/dev/null
	TABLES="r"
	cat >"$W/ins.sql" <<'SQL'
\set a random(1, 1000000000)
insert into r values (nextval('r_new'), :a, md5(:a::text), now());
SQL
	cat >"$W/upd.sql" <<SQL
\set id random(1, $ROWS)
\set a random(1, 1000000000)
update r set a = :a, b = md5(:a::text), c = now() where id = :id;
SQL
	cat >"$W/del.sql" <<SQL
\set id random(1, $ROWS)
delete from r where id = :id;
SQL
	# two updates in key order: no deadlocks between clients
	cat >"$W/mix.sql" <<SQL
\set id1 random(1, $ROWS)
\set id2 random(1, $ROWS)
\set lo least(:id1, :id2)
\set hi greatest(:id1, :id2)
\set a random(1, 1000000000)
begin;
insert into r values (nextval('r_new'), :a, md5(:a::text), now());
update r set a = :a, c = now() where id = :lo;
update r set a = a + 1, b = md5(:hi::text), c = now() where id = :hi;
commit;
SQL
}
random_backlog() {
	local base want per n=0 got txns=0
	base=$(src_changes random)
	want=$CHANGES
	# about 1.4 changes per transaction (some updates and deletes miss)
	while :; do
		per=$(( (want * 10 / 13 + CLIENTS - 1) / CLIENTS + 10 ))
		"$PGBENCH" -h 127.0.0.1 -p "$src_PORT" -U postgres -n -t "$per" -c $CLIENTS -j 2 \
			-f "$W/ins.sql@3" -f "$W/upd.sql@3" -f "$W/del.sql@2" -f "$W/mix.sql@2" random \
			>"$W/random.out" 2>&1 || it_fail "pgbench: $(tail "$W/random.out")"
		n=$(awk '/number of transactions actually processed/ {print $6}' "$W/random.out" | cut -d/ -f1)
		txns=$((txns + n))
		got=$(( $(src_changes random) - base ))
		[ "$got" -ge "$CHANGES" ] && break
		want=$((CHANGES - got))
	done
	TXNS=$txns
	DESC="table r of $ROWS rows; $TXNS transactions: 30% insert, 30% update, 20% delete, 20% insert + 2 updates; -c $CLIENTS -j 2, $(awk '/^tps/ {printf "%d tps", $3}' "$W/random.out")"
}
random_marker="update r set a = a where id = (select max(id) from r)"

# ---- the consumers -----------------------------------------------------------

# row NAME CHANGES SECONDS CPU...: one line of the table, RATE set
row() {
	RATE=$(echo "$2 / $3" | bc)
	printf '  %-34s %9s %9.2f %11s   %s\n' "$1" "$2" "$3" "$RATE" "$4"
}

syncd_ini() { # syncd_ini WORKLOAD MODE
	cat >"$W/$1_$2.ini" <<INI
[job]
name = cdc_$1_$2
mode = incremental
state_dir = $W/state
concurrency = $CONCURRENCY
[source]
conninfo = host=$SRC_HOST port=$src_PORT user=postgres dbname=$1
status.interval = $STATUS_INTERVAL
[sink]
write_mode = $2
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=$1_$2
target.schema = #{source_schema_name}
sink.keyby.mode = $KEYBY
batch.interval = $BATCH_INTERVAL
batch.max_rows = $BATCH_MAX_ROWS
INI
}

run_ceiling() { # run_ceiling WORKLOAD: the server decoding alone
	local t0 t1 n
	t0=$(now)
	n=$(q src "$1" "select count(*) from pg_logical_slot_get_binary_changes('$1_ceiling', '$END', null, 'proto_version', '1', 'publication_names', 'dbz_publication')")
	t1=$(now)
	CEIL_S=$(echo "$t1 - $t0" | bc)
	row "server decode (get_binary_changes)" "$CHANGES_N" "$CEIL_S" \
		"$n pgoutput messages, one backend, no network"
	CEIL_R=$RATE
}

run_decode() { # run_decode WORKLOAD
	local t0 t1 rpid sender="" c_sender=0 c c_recv s_sender="-" x
	t0=$(now)
	TIMEFORMAT='%U %S'
	{ time pg_recvlogical -h "$SRC_HOST" -p "$src_PORT" -U postgres -d "$1" -S "$1_decode" \
		--start --endpos="$END" -o proto_version=1 -o publication_names=dbz_publication \
		-f /dev/null 2>"$W/recvlogical.err"; } 2>"$W/recvlogical.time" &
	rpid=$!
	# the walsender's CPU time, last seen before it exits
	while kill -0 $rpid 2>/dev/null; do
		[ -n "$sender" ] || sender=$(q src postgres "select active_pid from pg_replication_slots where slot_name = '$1_decode'")
		[ -z "$sender" ] || { c=$(cpu $sender); [ "$c" = 0.0 ] || c_sender=$c; }
		[ -z "$sender" ] || { x=$(csw $sender); [ "$x" = "0/0" ] || s_sender=$x; }
		sleep 0.05
	done
	wait $rpid || it_fail "pg_recvlogical: $(cat "$W/recvlogical.err")"
	t1=$(now)
	c_recv=$(awk '{printf "%.1f", $1 + $2}' "$W/recvlogical.time")
	DECODE_S=$(echo "$t1 - $t0" | bc)
	row "pg_recvlogical -> /dev/null" "$CHANGES_N" "$DECODE_S" \
		"cpu s: pg_recvlogical $c_recv, walsender $c_sender (cs $s_sender)"
	DECODE_R=$RATE
}

run_subscription() { # run_subscription WORKLOAD
	local t0 apply sender c_apply c_sender t_conf
	wait_start dst "select remote_lsn >= '$END' from pg_replication_origin_status where external_id = (select 'pg_' || oid from pg_subscription where subname = '$1_sub')"
	WAIT_FROM=$(( $(stat -c %s "$W/pg-dst/server.log") + 1 ))
	t0=$(now)
	q dst "$1_sub" "alter subscription $1_sub enable" >/dev/null
	wait_end "" "$W/pg-dst/server.log"
	SUB_S=$(echo "$T1 - $t0" | bc)
	apply=$(q dst postgres "select pid from pg_stat_subscription where subname = '$1_sub' and relid is null")
	sender=$(q src postgres "select active_pid from pg_replication_slots where slot_name = '$1_sub'")
	c_apply=$(cpu $apply)
	c_sender="$(cpu $sender) (cs $(csw $sender))"
	# also when the source learns it (feedback, not timed for the ratio)
	wait_start src "$(slot_cond "$1_sub" "$END")"
	wait_end
	t_conf=$(printf '%.2f' "$(echo "$T1 - $t0" | bc)")
	row "CREATE SUBSCRIPTION (applied)" "$CHANGES_N" "$SUB_S" \
		"cpu s: apply worker $c_apply, walsender $c_sender; slot confirmed after $t_conf s"
	SUB_R=$RATE
	q dst "$1_sub" "alter subscription $1_sub disable" >/dev/null
	slot_idle "$1_sub"
}

# PERF=1: perf record of the whole machine while syncd drains the backlog;
# the report (by command, then by process and symbol) is printed and kept
# in LOGS (or the work directory)
perf_start() {
	perf record -a -g -F 499 -o "$W/perf-$1.data" >/dev/null 2>&1 &
	PERF_PID=$!
}
perf_end() { # perf_end NAME SYNCD_PID
	local out=${LOGS:-$W}/perf-$1.txt
	kill -INT $PERF_PID
	wait $PERF_PID 2>/dev/null || true
	mkdir -p "${LOGS:-$W}"
	{
		echo "== $1: CPU by command"
		perf report -i "$W/perf-$1.data" --stdio --no-children --sort comm -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -12
		echo "== $1: by command and symbol"
		perf report -i "$W/perf-$1.data" --stdio --no-children --sort pid,dso,sym -g none 2>/dev/null | grep -v "^#" | grep -v "^$" | head -80
	} >"$out"
	sed 's/^/    /' "$out"
}

# TIMELINE=1: the CPU share of every syncd thread, of its walsender and of
# its destination backends every 0.25 s while syncd drains, kept in LOGS
# (or the work directory) as timeline-WORKLOAD_MODE.txt
timeline_start() { # timeline_start WORKLOAD MODE SYNCD_PID SLOT
	local sender="" backends="" i
	for i in $(seq 1 50); do
		sender=$(q src postgres "select active_pid from pg_replication_slots where slot_name = '$4' and active")
		[ -n "$sender" ] && break
		sleep 0.05
	done
	backends=$(q dst postgres "select pid from pg_stat_activity where datname = '$1_$2' and backend_type = 'client backend'")
	mkdir -p "${LOGS:-$W}"
	"$here/timeline.sh" 0.25 "$3" $sender $backends >"${LOGS:-$W}/timeline-$1_$2.txt" 2>&1 &
}

run_syncd() { # run_syncd WORKLOAD MODE
	local t0 s pid sender backends c_syncd c_sender c_dst slot="syncd_cdc_$1_$2"
	wait_start src "$(slot_cond "$slot" "$END")"
	t0=$(now)
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" --log-level "$SYNCD_LOG_LEVEL" -c "$W/$1_$2.ini" \
		>>"$W/$1_$2.log" 2>&1 &
	pid=$!
	[ -z "${PERF:-}" ] || perf_start "$1_$2"
	[ -z "${TIMELINE:-}" ] || timeline_start "$1" "$2" "$pid" "$slot"
	wait_end $pid "$W/$1_$2.log"
	s=$(echo "$T1 - $t0" | bc)
	[ -z "${PERF:-}" ] || perf_end "$1_$2" "$pid"
	sender=$(q src postgres "select active_pid from pg_replication_slots where slot_name = '$slot'")
	backends=$(q dst postgres "select pid from pg_stat_activity where datname = '$1_$2' and backend_type = 'client backend'")
	c_syncd=$(cpu $pid)
	c_sender="$(cpu $sender) (cs $(csw $sender))"
	c_dst=$(cpu $backends)
	syncd_stop $pid "$W/$1_$2.log"
	row "syncd write_mode = $2" "$CHANGES_N" "$s" \
		"cpu s: syncd $c_syncd, walsender $c_sender, dst backends $c_dst"
	eval "SYNCD_${2}_R=$RATE"
}

ratio() { # ratio LABEL NUM DEN TARGET
	local r
	if [ -z "$2" ] || [ -z "$3" ]; then
		printf '  %-34s %6s\n' "$1" "-"
		return
	fi
	r=$(printf '%.2f' "$(echo "scale=4; $2 / $3" | bc)")
	printf '  %-34s %6s   target >= %s: %s\n' "$1" "$r" "$4" \
		"$( [ "$(echo "$r >= $4" | bc)" = 1 ] && echo met || echo MISSED)"
}

FAILED=""
run_workload() { # run_workload NAME
	local w=$1 a t want got bad=""
	q src postgres "create database $w" >/dev/null
	"${w}_setup"
	q src "$w" "vacuum analyze" >/dev/null
	DB=$w as_pg_dump src --no-owner --no-publications --no-subscriptions >"$W/$w.sql"
	for a in sub copy upsert; do
		q dst postgres "create database ${w}_$a" >/dev/null
		DB=${w}_$a psql_on dst -f "$W/$w.sql" >/dev/null
		q dst "${w}_$a" "vacuum analyze" >/dev/null
	done
	q src "$w" "create publication dbz_publication for table $(echo $TABLES | sed 's/ /, /g')" >/dev/null

	# every consumer's slot, before the backlog
	for a in decode ceiling; do
		pg_recvlogical -h 127.0.0.1 -p "$src_PORT" -U postgres -d "$w" -S "${w}_$a" \
			-P pgoutput --create-slot
	done
	q dst "${w}_sub" "create subscription ${w}_sub connection 'host=$SRC_HOST port=$src_PORT user=postgres dbname=$w' publication dbz_publication with (copy_data = false)" \
		>/dev/null 2>"$W/sub.err" || it_fail "create subscription: $(cat "$W/sub.err")"
	q dst "${w}_sub" "alter subscription ${w}_sub disable" >/dev/null
	slot_idle "${w}_sub"
	for a in copy upsert; do
		syncd_ini "$w" "$a"
		syncd_start "$W/${w}_$a.log" "$W/${w}_$a.ini"
		syncd_stop $SYNCD_PID "$W/${w}_$a.log"
	done

	it_log "$w: generating the backlog"
	local base t0 t1
	CHANGES_EXPECTED=""
	base=$(src_changes "$w")
	t0=$(now)
	"${w}_backlog"
	eval "marker=\$${w}_marker"
	END=$(DB=$w psql_on src -At -c "begin" -c "$marker" -c "select pg_current_wal_insert_lsn()" -c "commit")
	t1=$(now)
	CHANGES_N=$(( $(src_changes "$w") - base ))
	it_log "$w: $CHANGES_N changes up to $END in $(printf '%.1f' "$(echo "$t1 - $t0" | bc)") s"
	[ -z "$CHANGES_EXPECTED" ] || [ "$CHANGES_N" = "$CHANGES_EXPECTED" ] ||
		it_fail "the statistics count $CHANGES_N changes, expected $CHANGES_EXPECTED"
	q src "$w" "checkpoint" >/dev/null

	echo
	echo "workload $w: $DESC"
	printf '  %-34s %9s %9s %11s\n' "applier" "changes" "seconds" "changes/s"
	CEIL_R="" DECODE_R="" SUB_R="" SYNCD_copy_R="" SYNCD_upsert_R=""
	for a in $ORDER; do
		# each consumer starts with a clean destination
		q dst postgres "checkpoint" >/dev/null
		case $a in
		ceiling) run_ceiling "$w" ;;
		decode) run_decode "$w" ;;
		subscription) run_subscription "$w" ;;
		copy | upsert) run_syncd "$w" $a ;;
		*) it_fail "ORDER: unknown consumer $a" ;;
		esac
	done
	if [ -n "${LOGS:-}" ]; then
		mkdir -p "$LOGS"
		cp "$W"/*.log "$LOGS"/
		for a in src dst; do cp "$W/pg-$a/server.log" "$LOGS/$a-server.log"; done
	fi
	ratio "syncd copy / pg_recvlogical" "$SYNCD_copy_R" "$DECODE_R" 1.0
	ratio "syncd upsert / pg_recvlogical" "$SYNCD_upsert_R" "$DECODE_R" 1.0
	ratio "syncd copy / subscription" "$SYNCD_copy_R" "$SUB_R" 1.5
	ratio "syncd upsert / subscription" "$SYNCD_upsert_R" "$SUB_R" 1.5
	SUMMARY="$SUMMARY$(printf '\n  %-8s %9s %11s %11s %11s %11s %11s' "$w" "$CHANGES_N" "$CEIL_R" "$DECODE_R" "$SUB_R" "$SYNCD_copy_R" "$SYNCD_upsert_R")"

	# the destinations equal the source
	local ran=""
	for a in $ORDER; do
		case $a in decode | ceiling) ;; subscription) ran="$ran sub" ;; *) ran="$ran $a" ;; esac
	done
	for t in $TABLES; do
		want=$(table_hash src "$w" "$t")
		for a in $ran; do
			got=$(table_hash dst "${w}_$a" "$t")
			if [ "$want" != "$got" ]; then
				bad="$bad ${w}_$a.$t"
				it_log "$w: $t in ${w}_$a differs from the source: $got, source $want"
			fi
		done
	done
	echo "  destinations equal the source (count and md5 of every table): $( [ -z "$bad" ] && echo yes || echo "NO:$bad")"
	FAILED="$FAILED$bad"

	# free the slots
	PGOPTIONS="-c client_min_messages=warning" q dst "${w}_sub" "drop subscription ${w}_sub" >/dev/null
	for a in decode ceiling; do
		q src postgres "select pg_drop_replication_slot('${w}_$a')" >/dev/null
	done
	for a in copy upsert; do
		q src postgres "select pg_drop_replication_slot('syncd_cdc_${w}_$a')" >/dev/null
	done
}

echo "cdc.sh: incremental catch-up; CHANGES=$CHANGES per workload; $(nproc) cores"
echo "both clusters: PostgreSQL 15, fsync = off, full_page_writes = off (lib.sh), max_wal_size = 4GB, otherwise defaults (autovacuum on); dst: wal_retrieve_retry_interval = 100ms, wal_receiver_status_interval = 1s"
echo "syncd: defaults but concurrency = $CONCURRENCY, sink.keyby.mode = $KEYBY, batch.interval = $BATCH_INTERVAL, batch.max_rows = $BATCH_MAX_ROWS, status.interval = $STATUS_INTERVAL (job defaults: 2, table, 3s, 50000, 10s)"
echo "subscription: PostgreSQL defaults (streaming = off, synchronous_commit = off), timed until applied (origin remote_lsn)"
echo "the consumers reach the source at $SRC_HOST ($( [ "${SRC_HOST#/}" = "$SRC_HOST" ] && echo "TCP" || echo "Unix socket"))"
SUMMARY=""
for wl in $WORKLOADS; do
	run_workload "$wl"
done
echo
echo "summary (changes/s)"
printf '  %-8s %9s %11s %11s %11s %11s %11s' workload changes ceiling recvlogical subscription syncd_copy syncd_upsert
echo "$SUMMARY"
[ -z "$FAILED" ] || it_fail "destinations differ from the source:$FAILED"
