#!/bin/bash
# tests/bench/full.sh [BUILD_DIR] - how fast syncd's full phase (mode =
# full: one snapshot of the source copied into the destination) is, next
# to a plain COPY pipe and to pgcopydb.
#
# Two throwaway PostgreSQL 15 clusters on this machine: src and dst (both
# with lib.sh's fsync = off and full_page_writes = off). Database bench on
# src holds a multi-table data set (5,000,000 rows at the defaults):
#   big     bigint pk; int, text of 40-80 bytes, timestamptz, numeric
#           (3,000,000 rows);
#   items   composite pk (order_id bigint, line int); int, numeric, short
#           text, a text null in a third of the rows (1,000,000);
#   docs    int pk; title, a body of ~400 bytes (3 kB every 500th row),
#           jsonb (500,000);
#   events  uuid pk in random order; timestamptz, text, jsonb, boolean,
#           double precision (500,000);
# frozen and analyzed. The contenders then copy it one after the other, each
# into its own fresh database on dst, after a CHECKPOINT on both clusters:
#   - pipe: for each table in turn, psql -c "COPY t TO STDOUT" | psql -c
#     "COPY t FROM STDIN" (text format), into tables created beforehand from
#     pg_dump --schema-only of src (primary keys included), timed in total;
#   - syncd: [job] mode = full, write_mode = copy, concurrency =
#     CONCURRENCY, copy.chunk.size = CHUNK, into an empty database, as a
#     user runs it: syncd creates the tables (auto_create_table), copies
#     into them, and adds each table's primary key after its copy; with
#     SYNCD_TABLES=precreated, into the pipe's pre-created tables (keys
#     maintained during the load) instead; the whole run is timed, from
#     start to its exit 0;
#   - pgcopydb: pgcopydb clone (schema, data, indexes, constraints, and its
#     VACUUM ANALYZE of every table) into an empty database, --table-jobs
#     and --index-jobs CONCURRENCY, --split-tables-larger-than CHUNK (the
#     same same-table concurrency syncd has), the whole clone timed.
#     Installed with apt-get install -y pgcopydb when missing and run as
#     root; otherwise skipped (and said so).
# After each run every destination table is compared with the source: row
# count and the sum of a 64-bit hash of every row's text (all rows, no
# sort); a difference makes the script exit non-zero.
# Prints rows, seconds, rows/s per contender, the CPU seconds of the
# client side (psql processes; syncd; pgcopydb with its pg_dump,
# pg_restore and workers) and of each cluster's server processes meanwhile,
# and the ratios syncd/pipe (target >= 0.9) and syncd/pgcopydb (target: >
# 1.0, faster). Missed targets are reported, not failed.
#
# Environment: ROWS_SCALE (multiplies the default table sizes, 1; e.g. 0.1
# for a quick run - the contract's >= 5M rows and a table >= 3M hold at 1
# only), BIG_ROWS (3000000), ITEMS_ROWS (1000000), DOCS_ROWS (500000),
# EVENTS_ROWS (500000), CONCURRENCY (2), CHUNK (copy.chunk.size and
# --split-tables-larger-than, 256MB, syncd's default), PGCOPYDB_SPLIT
# (--split-tables-larger-than for pgcopydb, default CHUNK; "0" for none),
# ORDER (the contenders in the order they run: "pipe syncd pgcopydb"),
# SYNCD_TABLES (created: syncd creates its tables; precreated),
# ROUNDS (1; more runs ORDER that many times and takes each contender's
# best rate for the ratios - on a busy machine),
# SYNCD_LOG_LEVEL (info), LOGS (a directory to copy the syncd, pgcopydb and
# server logs to). About 1.5 minutes at the defaults on 2 cores, the data
# set's generation included.
# BUILD_DIR (default: build) is a configured build tree.
set -eu
. "$(dirname "$0")/common.sh"

ROWS_SCALE=${ROWS_SCALE:-1}
scaled() { awk -v n="$1" -v s="$ROWS_SCALE" 'BEGIN { r = int(n * s + 0.5); print (r < 1 ? 1 : r) }'; }
BIG_ROWS=${BIG_ROWS:-$(scaled 3000000)}
ITEMS_ROWS=${ITEMS_ROWS:-$(scaled 1000000)}
DOCS_ROWS=${DOCS_ROWS:-$(scaled 500000)}
EVENTS_ROWS=${EVENTS_ROWS:-$(scaled 500000)}
CONCURRENCY=${CONCURRENCY:-2}
CHUNK=${CHUNK:-256MB}
PGCOPYDB_SPLIT=${PGCOPYDB_SPLIT:-$CHUNK}
ORDER=${ORDER:-pipe syncd pgcopydb}
SYNCD_TABLES=${SYNCD_TABLES:-created}
ROUNDS=${ROUNDS:-1}
SYNCD_LOG_LEVEL=${SYNCD_LOG_LEVEL:-info}
TABLES="big items docs events"
TCK=$(getconf CLK_TCK)

for c in $ORDER; do
	case $c in pipe | syncd | pgcopydb) ;; *) it_fail "ORDER: unknown contender $c" ;; esac
done

# pgcopydb: installed when missing and we are root, else skipped
PGCOPYDB=""
PGCOPYDB_NOTE=""
case " $ORDER " in *" pgcopydb "*)
	if command -v pgcopydb >/dev/null; then
		PGCOPYDB=$(command -v pgcopydb)
	elif [ "$(id -u)" = 0 ]; then
		it_log "installing pgcopydb (apt-get install -y pgcopydb)"
		if DEBIAN_FRONTEND=noninteractive apt-get install -y pgcopydb >"$W/apt.log" 2>&1 ||
			{ apt-get update >>"$W/apt.log" 2>&1 &&
				DEBIAN_FRONTEND=noninteractive apt-get install -y pgcopydb >>"$W/apt.log" 2>&1; }; then
			PGCOPYDB=$(command -v pgcopydb)
		else
			PGCOPYDB_NOTE="skipped: apt-get install -y pgcopydb failed: $(tail -n 3 "$W/apt.log" | tr '\n' ' ')"
		fi
	else
		PGCOPYDB_NOTE="skipped: pgcopydb is not installed (as root: apt-get install -y pgcopydb)"
	fi
	[ -z "$PGCOPYDB_NOTE" ] || it_log "pgcopydb $PGCOPYDB_NOTE"
	;;
esac

# autovacuum off: it would otherwise vacuum and analyze the tables just
# loaded while the next contender is being timed
conf="max_wal_size = 8GB
checkpoint_timeout = 30min
shared_buffers = 256MB
autovacuum = off"
pg_start src "$conf"
pg_start dst "$conf"

# q CLUSTER DB SQL: one value.
q() { DB=$2 psql_on "$1" -Atc "$3"; }
now() { date +%s.%N; }
# ticks PID...: CPU ticks (user + system) the processes used so far; with
# -c also those of their children waited for.
ticks() {
	local total=0 p t f='{print $12 + $13}'
	if [ "$1" = -c ]; then
		f='{print $12 + $13 + $14 + $15}'
		shift
	fi
	for p in "$@"; do
		t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk "$f") || t=0
		total=$((total + ${t:-0}))
	done
	echo $total
}
# srv_ticks CLUSTER: CPU ticks of the cluster's processes so far: the
# postmaster with the backends it has reaped, and its live children.
srv_ticks() {
	local pm
	pm=$(head -n 1 "$IT_WORK/pg-$1/data/postmaster.pid")
	echo $(( $(ticks -c "$pm") + $(ticks $(ps -o pid= --ppid "$pm")) ))
}
secs() { printf '%.1f' "$(echo "scale=2; $1 / $TCK" | bc)"; }

# ---- the data set ------------------------------------------------------------

q src postgres "create database bench" >/dev/null
it_log "generating the data set: big $BIG_ROWS, items $ITEMS_ROWS, docs $DOCS_ROWS, events $EVENTS_ROWS rows"
t0=$(now)
DB=bench psql_on src >/dev/null <<SQL
create table big (id bigint not null, a int, b text, c timestamptz, d numeric(12,2));
insert into big select g, (g::bigint * 7919) % 1000003,
  substr(md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text), 1, 40 + g % 41),
  timestamptz '2020-01-01 00:00:00+00' + g * interval '1 second',
  (g % 10000000) / 100.0
  from generate_series(1, $BIG_ROWS) g;
alter table big add primary key (id);

create table items (order_id bigint not null, line int not null, qty int, price numeric(10,2),
  sku text, note text);
insert into items select (g - 1) / 4 + 1, (g - 1) % 4 + 1, g % 17 + 1, (g % 99999) / 100.0 + 0.01,
  'SKU-' || lpad((g % 50000)::text, 6, '0'),
  case when g % 3 = 0 then null else 'note ' || md5(g::text) end
  from generate_series(1, $ITEMS_ROWS) g;
alter table items add primary key (order_id, line);

create table docs (id int not null, title text, body text, attrs jsonb);
insert into docs select g, 'Document ' || g || ' ' || left(md5(g::text), 12),
  case when g % 500 = 0
       then (select string_agg(md5(g::text || j), ' ') from generate_series(1, 90) j)
       else repeat(md5(g::text) || ' ', 12) end,
  jsonb_build_object('n', g, 'kind', g % 10, 'tags', jsonb_build_array('t' || g % 7, 't' || g % 11),
    'score', (g % 1000) / 10.0, 'ok', g % 2 = 0)
  from generate_series(1, $DOCS_ROWS) g;
alter table docs add primary key (id);

create table events (id uuid not null, at timestamptz, kind text, payload jsonb, flag boolean,
  val double precision);
insert into events select md5('e' || g)::uuid,
  timestamptz '2023-06-01 00:00:00+00' + g * interval '37 ms',
  (array['click', 'view', 'buy', 'leave'])[g % 4 + 1],
  jsonb_build_object('user', g % 100000, 'ref', left(md5(g::text), 8)),
  g % 5 = 0, g / 7.0
  from generate_series(1, $EVENTS_ROWS) g;
alter table events add primary key (id);

vacuum (freeze, analyze);
SQL
TOTAL=0
for t in $TABLES; do
	n=$(q src bench "select count(*) from $t")
	eval "ROWS_$t=$n"
	TOTAL=$((TOTAL + n))
done
SIZE=$(q src bench "select pg_size_pretty(sum(pg_total_relation_size(c.oid))) from pg_class c where relname in ('big', 'items', 'docs', 'events')")
it_log "data set: $TOTAL rows, $SIZE with indexes, in $(printf '%.1f' "$(echo "$(now) - $t0" | bc)") s"

# hash CLUSTER DB TABLE: count and the sum of a 64-bit hash of every row's
# text: every row counts, no sort, no memory
hash() {
	q "$1" "$2" "select count(*) || ':' || coalesce(sum(hashtextextended(t::text, 0)::numeric), 0) from $3 t"
}
for t in $TABLES; do
	eval "HASH_$t=\$(hash src bench $t)"
done

DB=bench as_pg_dump src --schema-only --no-owner --no-acl >"$W/schema.sql"

# ---- the contenders ------------------------------------------------------------

# fresh DB [schema]: a new database on dst, with the source's tables
fresh() {
	q dst postgres "drop database if exists $1" >/dev/null 2>&1
	q dst postgres "create database $1" >/dev/null
	[ -z "${2:-}" ] || DB=$1 psql_on dst -f "$W/schema.sql" >/dev/null
}
checkpoint() {
	q src postgres "checkpoint" >/dev/null
	q dst postgres "checkpoint" >/dev/null
}
# timed CONTENDER COMMAND...: runs the command (its output and errors to
# CONTENDER.log), sets SECS, CPU_CLIENT, CPU_SRC, CPU_DST, RC
timed() {
	local who=$1 t0 t1 s0 d0 # not "name": psql_on sets it
	shift
	checkpoint
	s0=$(srv_ticks src)
	d0=$(srv_ticks dst)
	t0=$(now)
	TIMEFORMAT='%U %S'
	RC=0
	{ time "$@" >>"$W/$who.log" 2>&1; } 2>"$W/$who.time" || RC=$?
	t1=$(now)
	SECS=$(echo "$t1 - $t0" | bc)
	CPU_SRC=$(secs $(( $(srv_ticks src) - s0 )))
	CPU_DST=$(secs $(( $(srv_ticks dst) - d0 )))
	CPU_CLIENT=$(awk '{printf "%.1f", $1 + $2}' "$W/$who.time")
}

pipe_all() {
	local t rc
	for t in $TABLES; do
		DB=bench psql_on src -c "copy $t to stdout" | DB=pipe psql_on dst -c "copy $t from stdin"
		rc=("${PIPESTATUS[@]}")
		[ "${rc[0]}" = 0 ] && [ "${rc[1]}" = 0 ] || { echo "pipe of $t: exit ${rc[*]}"; return 1; }
	done
}

# verify CONTENDER DB: every table equals the source, else FAILED grows
FAILED=""
verify() {
	local t want got bad=""
	for t in $TABLES; do
		eval "want=\$HASH_$t"
		got=$(hash dst "$2" "$t" 2>&1) || true
		if [ "$want" != "$got" ]; then
			bad="$bad $2.$t"
			it_log "$1: $t differs from the source: $got, source $want"
		fi
	done
	VERIFIED=$([ -z "$bad" ] && echo "equal" || echo "DIFFERS:$bad")
	FAILED="$FAILED$bad"
	# the space back, unless something is to be looked at
	[ -n "$bad" ] || q dst postgres "drop database $2" >/dev/null
}

# row NAME SECONDS NOTE: one line of the table; RATE set, and NAME_R to
# the best RATE so far
row() {
	local best
	RATE=$(echo "$TOTAL / $2" | bc)
	printf '  %-12s %9s %9.2f %10s   %s\n' "$1$([ "$ROUNDS" = 1 ] || echo " #$ROUND")" \
		"$TOTAL" "$2" "$RATE" "$3"
	eval "best=\${${1}_R:-0}"
	[ "$RATE" -le "$best" ] || eval "${1}_R=$RATE"
}
cpu_note() { echo "cpu s: client $CPU_CLIENT, src server $CPU_SRC, dst server $CPU_DST"; }

run_pipe() {
	fresh pipe schema
	timed "pipe-$ROUND" pipe_all
	[ $RC = 0 ] || it_fail "pipe: $(tail -n 20 "$W/pipe-$ROUND.log")"
	verify pipe pipe
	row pipe "$SECS" "$(cpu_note); $VERIFIED"
}

run_syncd() {
	if [ "$SYNCD_TABLES" = precreated ]; then fresh syncd schema; else fresh syncd; fi
	rm -rf "$W/state"
	cat >"$W/syncd.ini" <<INI
[job]
name = full_bench
mode = full
state_dir = $W/state
concurrency = $CONCURRENCY
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=bench
copy.chunk.size = $CHUNK
[sink]
write_mode = copy
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=syncd
target.schema = #{source_schema_name}
INI
	timed "syncd-$ROUND" "$SYNCD" --plugin-dir "$PLUGIN_DIR" --log-level "$SYNCD_LOG_LEVEL" -c "$W/syncd.ini"
	[ $RC = 0 ] || it_fail "syncd exit $RC ($SYNCD --plugin-dir $PLUGIN_DIR -c $W/syncd.ini): $(tail -n 30 "$W/syncd-$ROUND.log")"
	verify syncd syncd
	row syncd "$SECS" "$(cpu_note); $VERIFIED"
	SYNCD_INFO=$(grep -E "full copy of stream|full copy finished|copied " "$W/syncd-$ROUND.log" | sed 's/^/    /')
}

run_pgcopydb() {
	local split=()
	if [ -z "$PGCOPYDB" ]; then
		[ "$ROUND" != 1 ] || printf '  %-12s %9s %9s %10s   %s\n' pgcopydb - - - "$PGCOPYDB_NOTE"
		return
	fi
	fresh pgcopydb
	rm -rf "$W/pgcopydb"
	[ "$PGCOPYDB_SPLIT" = 0 ] || split=(--split-tables-larger-than "$PGCOPYDB_SPLIT")
	timed "pgcopydb-$ROUND" "$PGCOPYDB" clone \
		--source "postgres://postgres@127.0.0.1:$src_PORT/bench" \
		--target "postgres://postgres@127.0.0.1:$dst_PORT/pgcopydb" \
		--dir "$W/pgcopydb" --table-jobs "$CONCURRENCY" --index-jobs "$CONCURRENCY" \
		"${split[@]}" --no-owner --no-acl
	[ $RC = 0 ] || it_fail "pgcopydb clone exit $RC: $(tail -n 30 "$W/pgcopydb-$ROUND.log")"
	verify pgcopydb pgcopydb
	row pgcopydb "$SECS" "$(cpu_note); $VERIFIED"
}

ratio() { # ratio LABEL NUM DEN OP TARGET
	local r
	if [ -z "$2" ] || [ -z "$3" ]; then
		printf '  %-20s %6s\n' "$1" "-"
		return
	fi
	r=$(printf '%.2f' "$(echo "scale=4; $2 / $3" | bc)")
	printf '  %-20s %6s   target %s %s: %s\n' "$1" "$r" "$4" "$5" \
		"$( [ "$(echo "scale=4; $2 / $3 $4 $5" | bc)" = 1 ] && echo met || echo MISSED)"
}

echo "full.sh: full phase (snapshot copy); $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before; $TOTAL rows in 4 tables, $SIZE with indexes at the source"
for t in $TABLES; do eval "printf '  %-7s %9s rows\n' $t \$ROWS_$t"; done
echo "both clusters: PostgreSQL 15, fsync = off, full_page_writes = off (lib.sh), max_wal_size = 8GB, shared_buffers = 256MB, autovacuum = off; source frozen and analyzed, in cache"
echo "pipe: sequential, one table at a time, psql COPY TO STDOUT | psql COPY FROM STDIN (text), into pre-created tables with primary keys"
echo "syncd: mode = full, write_mode = copy, concurrency = $CONCURRENCY, copy.chunk.size = $CHUNK, tables $SYNCD_TABLES"
echo "pgcopydb: $([ -n "$PGCOPYDB" ] && "$PGCOPYDB" --version 2>/dev/null | head -n 1 | sed "s/^pgcopydb //")$([ -z "$PGCOPYDB" ] && echo "not run:") clone --table-jobs $CONCURRENCY --index-jobs $CONCURRENCY$([ "$PGCOPYDB_SPLIT" = 0 ] || echo " --split-tables-larger-than $PGCOPYDB_SPLIT"), into an empty database (its own schema, indexes after the data, VACUUM ANALYZE included)"
echo
printf '  %-12s %9s %9s %10s\n' contender rows seconds rows/s
pipe_R="" syncd_R="" pgcopydb_R="" SYNCD_INFO=""
for ROUND in $(seq 1 "$ROUNDS"); do
	for c in $ORDER; do
		"run_$c"
	done
done
echo
if [ "$ROUNDS" != 1 ]; then
	echo "best rows/s of $ROUNDS rounds: pipe ${pipe_R:--}, syncd ${syncd_R:--}, pgcopydb ${pgcopydb_R:--}"
fi
ratio "syncd / pipe" "$syncd_R" "$pipe_R" ">=" 0.9
ratio "syncd / pgcopydb" "$syncd_R" "$pgcopydb_R" ">" 1.0
if [ -n "$SYNCD_INFO" ]; then
	echo "syncd's log:"
	echo "$SYNCD_INFO"
fi
if [ -n "${LOGS:-}" ]; then
	mkdir -p "$LOGS"
	cp "$W"/*.log "$LOGS"/ 2>/dev/null || true
	for a in src dst; do cp "$W/pg-$a/server.log" "$LOGS/$a-server.log"; done
fi
[ -z "$FAILED" ] || it_fail "destinations differ from the source:$FAILED"
