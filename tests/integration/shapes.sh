#!/bin/bash
# A table-shape matrix (issue 13), written from PostgreSQL's side, not
# syncd's: every shape a user can create that syncd claims to sync, in both
# write modes (upsert, copy) and both job modes (full+incremental,
# incremental; the incremental databases get their first rows the way a
# user would load them: syncd --create-tables, then pg_dump --data-only).
#
# Shapes: replica identity DEFAULT / FULL / USING INDEX on the primary
# key's own index; a NOT NULL and a nullable TOASTed column kept out of
# line (SET STORAGE EXTERNAL, values of 2.5 kB) in every table; text, uuid,
# numeric and timestamptz keys, a composite key, a composite key in another
# order than its columns, a key with INCLUDE columns; dropped columns;
# a stored generated column; columns added with NOT NULL DEFAULT before the
# job starts (rows whose tuples lack them); arrays, a domain, an enum,
# ranges, a composite type; an inherited table with its parent; mixed-case,
# spaced, reserved-word and non-ASCII table and column names.
#
# Each table gets INSERTs, UPDATEs of non-key columns (leaving the TOASTed
# ones unchanged, and changing them), key moves with the TOASTed columns
# unchanged, DELETEs, one large transaction streamed by the server
# (logical_decoding_work_mem = 64kB) with savepoints rolled back inside,
# then TRUNCATE inside a transaction between inserts, then the same again.
# After each round, once the slot has confirmed the source's current LSN,
# EVERY destination table is compared with its source table on the columns
# both have (a generated column the destination lacks is named and left
# out; every other source column must be there). Comparisons do not stop
# at the first difference: each prints the shape, mode, round and the
# first differing rows, and the test fails at the end if any did.
#
# Then the shapes syncd must refuse (REPLICA IDENTITY NOTHING, REPLICA
# IDENTITY USING INDEX on another unique index, no primary key, unlogged):
# --check on a job naming each exits 3 with a line naming the table and
# the fix; with tables at its default, --check, --preview and the start
# log name each skipped table, and the application's own UPDATE and
# DELETE on the REPLICA IDENTITY NOTHING table still work while the job
# runs. Partitioned tables: tests/integration/partitions.sh.
# SHAPES_ONLY=upsert/incremental (for example) runs one combination only.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src "logical_decoding_work_mem = 64kB"
pg_start dst
: >"$W/failures"

# record a failure and go on (the test fails at the end)
failed() {
	it_log "FAIL: $*"
	printf '%s\n' "$*" | head -n 1 >>"$W/failures"
}

# The tables. Every one has n (the row's number, unique), small (an int),
# body (NOT NULL) and note (nullable), both TOASTed out of line. A spec:
#   name;key columns;key expressions of @;extra columns;their values of @;extra SET of the non-key update
# @ is the row's number: g at insert, n + 1000 at a key move.
SPECS=$(
	cat <<'SPECS'
ri_default;id;@;;;
ri_full;id;@;;;
ri_pkindex;id;@;;;
k_text;k;'k-' || @;;;
k_uuid;k;md5(@::text)::uuid;;;
k_numeric;k;@ + 0.125;;;
k_tstz;k;timestamptz '2024-03-31 00:30:00+00' + @ * interval '1 hour 1 second';;;
k_composite;a, b;'a' || (@ % 3), @;;;
k_order;a, b;@ % 5, 'b' || @;x;'x' || @;x = x || '!'
iso.k_include;a;@;b;nullif(@ % 4, 0);b = coalesce(b, 0) + 10
dropped;id;@;v;'v' || @;v = v || '!'
gen;id;@;;;
added;id;@;;;
added_full;id;@;;;
typed;id;@;arr, tarr, dom, e, r, tr, cpx;array[@, -@, null], array['a"' || @, 'b,c', null], @ % 50 + 1, (array['sad', 'ok', 'happy'])[@ % 3 + 1]::mood, int4range(@, @ + 10), tstzrange(timestamptz '2024-01-01 00:00+00' + @ * interval '1 day', null), row(@ * 1.5, -@)::complex;arr = arr || 7, e = 'happy', cpx = row(0, 0)::complex
parent;id;@;;;
child;id;@;extra;'extra ' || @;extra = extra || '!'
"Mixed Case";"Key";@;"select", "col umn";'sel' || @, 'col ' || @;"select" = "select" || '!'
"with space";"a key", "B";@, 'b' || @;;;
"select";"order";@;"from";@ * 2;"from" = "from" + 1
"tablé_ü";"naïve", "größe";'ü' || @, @ % 7;"ключ";'значение ' || @;"ключ" = "ключ" || 'ё'
SPECS
)

ddl() {
	cat <<'SQL'
create type mood as enum ('sad', 'ok', 'happy');
create domain posint as int check (value > 0);
create type complex as (re float8, im float8);
create table ri_default (id int primary key, n int not null, small int not null, body text not null, note text);
create table ri_full (id int primary key, n int not null, small int not null, body text not null, note text);
alter table ri_full replica identity full;
create table ri_pkindex (id int primary key, n int not null, small int not null, body text not null, note text);
alter table ri_pkindex replica identity using index ri_pkindex_pkey;
create table k_text (k text primary key, n int not null, small int not null, body text not null, note text);
create table k_uuid (k uuid primary key, n int not null, small int not null, body text not null, note text);
create table k_numeric (k numeric(12,3) primary key, n int not null, small int not null, body text not null, note text);
create table k_tstz (k timestamptz primary key, n int not null, small int not null, body text not null, note text);
create table k_composite (a text, b int, n int not null, small int not null, body text not null, note text, primary key (a, b));
create table k_order (x text not null, a int, n int not null, small int not null, body text not null, note text, b text, primary key (b, a));
create schema iso;
create table iso.k_include (a int, b int, n int not null, small int not null, body text not null, note text, primary key (a) include (b));
create table dropped (id int primary key, gone text default 'gone', n int not null, gone2 int not null default 5, small int not null, body text not null, v text, note text);
create table gen (id int primary key, n int not null, small int not null, dbl int generated always as (small * 2) stored, body text not null, note text);
create table added (id int primary key, n int not null, small int not null, body text not null, note text);
create table added_full (id int primary key, n int not null, small int not null, body text not null, note text);
alter table added_full replica identity full;
create table typed (id int primary key, n int not null, small int not null, body text not null, note text,
  arr int[], tarr text[], dom posint, e mood, r int4range, tr tstzrange, cpx complex);
create table parent (id int primary key, n int not null, small int not null, body text not null, note text);
create table child (extra text) inherits (parent);
alter table child add primary key (id);
create table "Mixed Case" ("Key" int primary key, n int not null, small int not null, body text not null, note text, "select" text, "col umn" text);
create table "with space" ("a key" int, "B" text, n int not null, small int not null, body text not null, note text, primary key ("a key", "B"));
create table "select" ("order" int primary key, n int not null, small int not null, body text not null, note text, "from" int);
create table "tablé_ü" ("naïve" text, "größe" int, n int not null, small int not null, body text not null, note text, "ключ" text, primary key ("naïve", "größe"));
do $$
declare r record;
begin
  for r in select c.oid::regclass t from pg_class c where c.relnamespace in (select oid from pg_namespace where nspname in ('public', 'iso')) and c.relkind = 'r' loop
    execute format('alter table %s alter column body set storage external, alter column note set storage external', r.t);
  end loop;
end $$;
SQL
}

names() { printf '%s\n' "$SPECS" | cut -d';' -f1; }

# ins FROM TO: INSERT of rows FROM..TO into every table
ins() {
	printf '%s\n' "$SPECS" | while IFS=';' read -r t kc ke xc xe _; do
		cols="$kc, n, small, body, note${xc:+, $xc}"
		vals="${ke//@/g}, g, g, repeat(md5(g::text), 80), case when g % 3 = 0 then null else repeat(md5('n' || g), 80) end${xe:+, ${xe//@/g}}"
		echo "insert into $t ($cols) select $vals from generate_series($1, $2) g;"
	done
}
# upd WHERE: non-key UPDATE that leaves both TOASTed columns unchanged, and
# one that changes the nullable TOASTed column
upd() {
	printf '%s\n' "$SPECS" | while IFS=';' read -r t _ _ _ _ xs; do
		echo "update only $t set small = small + 1${xs:+, $xs} where $1;"
		echo "update only $t set note = case when note is null then repeat('new' || n, 900) else null end where ($1) and n % 2 = 0;"
	done
}
# mv WHERE: the key moves (to the key of n + 1000), TOAST unchanged
mv() {
	printf '%s\n' "$SPECS" | while IFS=';' read -r t kc ke _ _ _; do
		echo "update only $t set ($kc, n) = (${ke//@/(n + 1000)}, n + 1000) where $1;"
	done
}
del() {
	printf '%s\n' "$SPECS" | while IFS=';' read -r t _ _ _ _ _; do
		echo "delete from only $t where $1;"
	done
}

# The columns of every table of cluster NAME, database DB, one line per
# table: its name as regclass prints it (as in SPECS), its columns that
# are not generated, its generated columns (quoted, in order).
columns() { # columns NAME DB
	DB=$2 psql_on "$1" -At -F "$TAB" -c "select c.oid::regclass, coalesce(string_agg(quote_ident(a.attname), ',' order by a.attnum) filter (where a.attgenerated = ''), ''), coalesce(string_agg(quote_ident(a.attname), ',' order by a.attnum) filter (where a.attgenerated <> ''), '') from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped where c.relnamespace in (select oid from pg_namespace where nspname in ('public', 'iso')) and c.relkind in ('r', 'p') group by c.oid"
}
TAB=$(printf '\t')

# common_cols WHAT TABLE: the columns TABLE has at the source and at the
# destination (from $W/cols.src and $W/cols.dst); a source column missing
# at the destination is a failure, a generated one is named and left out
common_cols() {
	local src_cols gen_cols dst_cols common c cs
	src_cols=$(awk -F "$TAB" -v t="$2" '$1 == t { print $2 }' "$W/cols.src")
	gen_cols=$(awk -F "$TAB" -v t="$2" '$1 == t { print $3 }' "$W/cols.src")
	dst_cols=$(awk -F "$TAB" -v t="$2" '$1 == t { print $2 "," $3 }' "$W/cols.dst")
	common=
	IFS=, read -r -a cs <<<"$src_cols,$gen_cols"
	for c in "${cs[@]}"; do
		[ -n "$c" ] || continue
		if printf ',%s,' "$dst_cols" | grep -qF ",$c,"; then
			common=${common:+$common,}$c
		elif printf ',%s,' "$gen_cols" | grep -qF ",$c,"; then
			[ -e "$W/noted-$2" ] || it_log "note: $2: generated column $c is not at the destination; compared without it"
			: >"$W/noted-$2"
		else
			failed "$1: table $2: source column $c missing at the destination (destination has ${dst_cols%,})"
		fi
	done
	printf '%s' "$common"
}

# compare_all WHAT DB: every table whose job still runs (a job that exited
# was reported) equals its source on the columns both have; each table
# that differs is a failure naming WHAT and the table, followed by its
# first differing rows (long values shortened to length and md5). One
# query per cluster computes every table's hash.
compare_all() {
	local what=$1 db=$2 t j common want got show c cs
	columns src "$db" >"$W/cols.src"
	columns dst "$db" >"$W/cols.dst"
	: >"$W/hash.sql"
	: >"$W/compared"
	while IFS= read -r t; do
		case $t in iso.*) j=${db}_iso ;; *) j=$db ;; esac
		[ -e "$W/$j.dead" ] && continue
		if ! awk -F "$TAB" -v t="$t" '$1 == t { f = 1 } END { exit !f }' "$W/cols.dst"; then
			failed "$what: table $t: missing at the destination"
			continue
		fi
		common=$(common_cols "$what" "$t")
		printf '%s\t%s\n' "$t" "$common" >>"$W/compared"
		[ -s "$W/hash.sql" ] && echo "union all" >>"$W/hash.sql"
		echo "select \$n\$$t\$n\$, (select count(*) || ':' || coalesce(md5(string_agg(r, E'\\n' order by r)), '') from (select row($common)::text r from only $t) s)" >>"$W/hash.sql"
	done < <(names)
	[ -s "$W/hash.sql" ] || return 0
	DB=$db psql_on src -At -F "$TAB" -f "$W/hash.sql" >"$W/hash.src"
	DB=$db psql_on dst -At -F "$TAB" -f "$W/hash.sql" >"$W/hash.dst" 2>&1 || true
	while IFS="$TAB" read -r t common; do
		want=$(awk -F "$TAB" -v t="$t" '$1 == t { print $2 }' "$W/hash.src")
		got=$(awk -F "$TAB" -v t="$t" '$1 == t { print $2 }' "$W/hash.dst")
		[ "$want" = "$got" ] && continue
		show=
		IFS=, read -r -a cs <<<"$common"
		for c in "${cs[@]}"; do
			show="${show:+$show || ' | ' || }coalesce(case when length($c::text) > 40 then left($c::text, 12) || '…(' || length($c::text) || ' chars, md5 ' || left(md5($c::text), 8) || ')' else $c::text end, 'NULL')"
		done
		DB=$db psql_on src -Atc "select $show from only $t order by 1" >"$W/a" 2>&1 || true
		DB=$db psql_on dst -Atc "select $show from only $t order by 1" >"$W/b" 2>&1 || true
		failed "$what: table $t differs: source $want (rows:md5), destination ${got:-$(head -c 200 "$W/hash.dst")}"
		diff "$W/a" "$W/b" | grep '^[<>]' | head -n 8 | sed 's/^</  source only:/; s/^>/  destination only:/' >&2 || true
	done <"$W/compared"
}

# The jobs of a database run at once, each on its own tables (a shape that
# makes a job fail hides no other): JOBS names them; job J has $W/J.ini,
# logs to $W/J.log, its pid is in $W/J.pid, $W/J.dead once it failed.
alive() { [ ! -e "$W/$1.dead" ] && kill -0 "$(cat "$W/$1.pid")" 2>/dev/null; }
died() { # died WHAT JOB: record once that JOB exited
	[ -e "$W/$2.dead" ] && return 0
	: >"$W/$2.dead"
	wait "$(cat "$W/$2.pid")" && rc=0 || rc=$?
	failed "$1: job $2 exited ($rc): $(grep -E ' (error|fatal) ' "$W/$2.log" | tail -n 3 | tr '\n' ' ')"
}

# start_job WHAT JOB: syncd in the background until it streams
start_job() {
	SYNCD_PLUGIN_PATH="$TEST_PLUGIN_DIR" "$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$2.ini" >>"$W/$2.log" 2>&1 &
	echo $! >"$W/$2.pid"
	for _ in $(seq 1 600); do
		grep -q "streaming from slot" "$W/$2.log" && return 0
		alive "$2" || { died "$1, before streaming" "$2"; return 1; }
		sleep 0.1
	done
	failed "$1: job $2 did not start streaming in 60 s"
	: >"$W/$2.dead"
	kill -TERM "$(cat "$W/$2.pid")"
	return 1
}

# wait_caught_up WHAT DB: until every living job's slot confirmed the
# source's current LSN (60 s at most)
wait_caught_up() {
	lsn=$(DB=$2 psql_on src -Atc "select pg_current_wal_lsn()")
	for j in $JOBS; do
		for _ in $(seq 1 600); do
			alive "$j" || break
			[ "$(psql_on src -Atc "select confirmed_flush_lsn >= '$lsn' from pg_replication_slots where slot_name = 'syncd_$j'")" = t ] && break
			sleep 0.1
		done
		if [ ! -e "$W/$j.dead" ] && ! alive "$j"; then
			died "$1" "$j"
		elif alive "$j" && [ "$(psql_on src -Atc "select confirmed_flush_lsn >= '$lsn' from pg_replication_slots where slot_name = 'syncd_$j'")" != t ]; then
			failed "$1: slot syncd_$j did not confirm $lsn within 60 s: $(tail -n 2 "$W/$j.log" | tr '\n' ' ')"
		fi
	done
}

stop_jobs() { # stop_jobs WHAT: every living job stops with exit code 0
	for j in $JOBS; do
		alive "$j" || continue
		kill -TERM "$(cat "$W/$j.pid")"
		wait "$(cat "$W/$j.pid")" || failed "$1: job $j stopped with exit code $?: $(tail -n 2 "$W/$j.log" | tr '\n' ' ')"
		: >"$W/$j.dead"
	done
}

# job_ini JOB DB WRITE-MODE JOB-MODE TABLES-LINE: $W/JOB.ini. Dirty rows
# are set aside and logged, so that one refused row does not end the
# comparison of every other table; each is a failure (see the matrix) and
# shows in the comparison.
job_ini() {
	cat >"$W/$1.ini" <<INI
[job]
name = $1
mode = $4
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=$2
$5
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
[sink]
write_mode = $3
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=$2
target.schema = #{source_schema_name}
batch.interval = 200ms
[dirty]
enabled = true
threshold = -1
policy = none
INI
}

for wmode in upsert copy; do
	for jmode in full+incremental incremental; do
		db=m_${wmode}_${jmode%%+*}
		what="$wmode/$jmode"
		case ${SHAPES_ONLY:-$what} in "$what") ;; *) continue ;; esac
		JOBS="$db ${db}_iso"
		it_log "--- $what (database $db, jobs $JOBS)"
		psql_on src -c "create database $db" >/dev/null
		psql_on dst -c "create database $db" >/dev/null
		# automatic creation cannot create a composite type's column
		# without the type (tested on its own below): the matrix gives
		# the destination the type, as a user preparing it would
		DB=$db psql_on dst -c "create type complex as (re float8, im float8)" -c "create schema iso" >/dev/null
		ddl | DB=$db psql_on src >/dev/null
		# the rows before the job, then the changes of shape before it
		{
			ins 1 8
			echo "alter table dropped drop column gone, drop column gone2;"
			echo "alter table added add column flag int not null default 7, add column label text not null default 'lbl';"
			echo "alter table added_full add column flag int not null default 7, add column label text not null default 'lbl';"
		} | DB=$db psql_on src >/dev/null
		for j in $JOBS; do
			case $j in *_iso) tables=iso.* ;; *) tables=public.* ;; esac
			job_ini "$j" "$db" "$wmode" "$jmode" "tables = $tables"
			if [ "$jmode" = incremental ]; then
				# what a user does before an incremental job:
				# create the targets, then load the existing rows
				"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$j.ini" --create-tables >>"$W/$j.log" 2>&1 ||
					failed "$what: syncd --create-tables of job $j failed: $(grep ' error ' "$W/$j.log" | tail -n 2 | tr '\n' ' ')"
			fi
		done
		if [ "$jmode" = incremental ]; then
			DB=$db as_pg_dump src -a >"$W/$db.dump" || it_fail "pg_dump of $db failed"
			DB=$db psql_on dst -v ON_ERROR_STOP=0 -f "$W/$db.dump" >/dev/null 2>"$W/$db.load"
			[ -s "$W/$db.load" ] &&
				failed "$what: loading the rows (pg_dump --data-only) into the created targets failed: $(grep ERROR "$W/$db.load" | head -n 2 | tr '\n' ' ')"
		fi
		for j in $JOBS; do start_job "$what" "$j" || true; done
		wait_caught_up "$what, after start" "$db"
		compare_all "$what, after start" "$db"

		{
			ins 21 28
			upd "n % 3 = 0"
			mv "n % 4 = 1"
			del "n % 6 = 2"
			echo "update only added set flag = flag + 1 where n % 5 = 0;"
			echo "update only added_full set flag = flag + 1, label = label || '!' where n % 5 = 0;"
			# one transaction larger than logical_decoding_work_mem,
			# savepoints rolled back inside
			echo "begin;"
			ins 100 120
			echo "savepoint s1;"
			upd "n between 100 and 110"
			ins 200 205
			mv "n between 111 and 113"
			echo "rollback to savepoint s1;"
			echo "savepoint s2;"
			del "n between 114 and 115"
			echo "release savepoint s2;"
			echo "savepoint s3;"
			del "n between 100 and 120"
			echo "rollback to savepoint s3;"
			upd "n between 112 and 120"
			mv "n between 116 and 118"
			echo "commit;"
		} >"$W/round1.sql"
		DB=$db psql_on src -f "$W/round1.sql" >/dev/null
		it_log "round 1 written (${SECONDS}s)"
		wait_caught_up "$what, round 1" "$db"
		it_log "round 1 applied (${SECONDS}s)"
		# the large transaction must have been streamed in progress
		streamed=$(psql_on src -Atc "select coalesce(sum(stream_txns), 0) from pg_stat_replication_slots where slot_name = 'syncd_$db'")
		[ "$streamed" -gt 0 ] ||
			failed "$what: the server streamed no transaction in progress to slot syncd_$db (logical_decoding_work_mem = 64kB): the large transaction tested nothing"
		compare_all "$what, round 1 (insert, update, key move, delete, streamed transaction)" "$db"

		{
			echo "begin;"
			ins 300 304
			names | while IFS= read -r t; do echo "truncate $t;"; done
			ins 320 328
			echo "commit;"
			upd "n % 3 = 0"
			mv "n % 4 = 1"
			del "n % 6 = 2"
		} >"$W/round2.sql"
		DB=$db psql_on src -f "$W/round2.sql" >/dev/null
		it_log "round 2 written (${SECONDS}s)"
		wait_caught_up "$what, round 2" "$db"
		it_log "round 2 applied (${SECONDS}s)"
		compare_all "$what, round 2 (truncate between inserts, then update, key move, delete)" "$db"
		it_log "round 2 compared (${SECONDS}s)"
		stop_jobs "$what"
		it_log "stopped (${SECONDS}s)"
		for j in $JOBS; do
			n=$(grep -c ' dirty row ' "$W/$j.log" || true)
			[ "$n" = 0 ] || failed "$what: job $j: the destination refused $n rows ($(grep -o ' dirty row .* at [0-9A-F]*/' "$W/$j.log" | sed 's/ dirty row [0-9]* of worker [0-9]*: //; s/ key .*//' | sort | uniq -c | tr -s ' ' | tr '\n' ',')): $(grep -m1 ' dirty row ' "$W/$j.log" | sed 's/.*was refused/refused/' | cut -c1-200)"
		done
	done
done

# --- a composite type's column, the destination without the type: the
# target is created (the type, or text as for an enum) and the rows are
# equal, or --check says what to do; never "all pre-checks passed" and a
# job that cannot start
it_log "--- composite type without the type at the destination"
psql_on src -c "create database m_composite" >/dev/null
psql_on dst -c "create database m_composite" >/dev/null
DB=m_composite psql_on src >/dev/null <<'SQL'
create type complex as (re float8, im float8);
create table cpx (id int primary key, c complex, ca complex[]);
insert into cpx values (1, row(1.5, -2), array[row(1, 2)::complex, null]), (2, null, null);
SQL
job_ini m_composite m_composite upsert full+incremental ""
JOBS=m_composite
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/m_composite.ini" --check >"$W/m_composite.check" 2>&1 && rc=0 || rc=$?
if [ $rc = 0 ]; then
	if start_job "composite type, upsert/full+incremental" m_composite; then
		DB=m_composite psql_on src -c "insert into cpx values (3, row(0, 0), '{}'); update cpx set c = row(9, 9) where id = 1" >/dev/null
		wait_caught_up "composite type" m_composite
		SPECS="cpx;;;;;" compare_all "composite type, upsert/full+incremental" m_composite
		stop_jobs "composite type"
	fi
else
	grep -q 'complex' "$W/m_composite.check" ||
		failed "composite type: --check exit code $rc without naming the type complex: $(grep -E 'error' "$W/m_composite.check" | head -n 2 | tr '\n' ' ')"
fi

# --- the shapes syncd must refuse
it_log "--- refused shapes"
psql_on src -c "create database rdb" >/dev/null
psql_on dst -c "create database rdb" >/dev/null
DB=rdb psql_on src >/dev/null <<'SQL'
create table ok (id int primary key, v text);
create table ri_nothing (id int primary key, v text);
alter table ri_nothing replica identity nothing;
create table ri_other (id int primary key, u int not null, v text);
create unique index ri_other_u on ri_other (u);
alter table ri_other replica identity using index ri_other_u;
create table no_pk (id int, v text);
create unlogged table ul (id int primary key, v text);
insert into ok values (1, 'a');
insert into ri_nothing values (1, 'a'), (2, 'b');
insert into ri_other values (1, 1, 'a'), (2, 2, 'b');
insert into no_pk values (1, 'a');
insert into ul values (1, 'a');
SQL
refjob() { # refjob NAME TABLES-LINE
	cat >"$W/$1.ini" <<INI
[job]
name = $1
mode = incremental
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=rdb
$2
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
[sink]
write_mode = copy
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=rdb
target.schema = public
batch.interval = 200ms
INI
}
for spec in "ri_nothing:REPLICA IDENTITY DEFAULT" "ri_other:REPLICA IDENTITY DEFAULT" \
	"no_pk:primary key" "ul:unlogged"; do
	t=${spec%%:*} fix=${spec#*:}
	refjob "r_$t" "tables = public.ok, public.$t"
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/r_$t.ini" --check >"$W/r_$t.out" 2>&1 && rc=0 || rc=$?
	[ $rc = 3 ] || failed "refused shapes: --check naming public.$t: exit code $rc, expected 3: $(tail -n 3 "$W/r_$t.out" | tr '\n' ' ')"
	it_log "--check naming public.$t: $(grep "$t" "$W/r_$t.out" | grep -iF "$fix" | head -n 1 | sed 's/^[^ ]* //')"
	grep "$t" "$W/r_$t.out" | grep -qiF "$fix" ||
		failed "refused shapes: --check naming public.$t has no line naming $t and the fix ($fix): $(grep -E 'error|warning' "$W/r_$t.out" | head -n 3 | tr '\n' ' ')"
done
refjob r_default ""
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/r_default.ini" --check >"$W/r_default.check" 2>&1 || true
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/r_default.ini" --preview >"$W/r_default.preview" 2>&1 || true
# a line naming the table and why it is not synced (a table listed as
# synced, "db.public.t -> public.t (…)", is not that)
skipped() { grep "\b$1\b" "$2" | grep -qiE 'skip|refus|not synced|never synced|cannot|replica identity|primary key|unlogged'; }
for t in ri_nothing ri_other no_pk ul; do
	skipped $t "$W/r_default.check" ||
		failed "refused shapes: --check with tables at its default does not name the skipped table public.$t and why: $(grep "\b$t\b" "$W/r_default.check" | head -n 1)"
	skipped $t "$W/r_default.preview" ||
		failed "refused shapes: --preview with tables at its default does not name the skipped table public.$t and why: $(grep "\b$t\b" "$W/r_default.preview" | head -n 1)"
done
# the job runs (or refuses to start); either way the application's own
# UPDATE and DELETE on the REPLICA IDENTITY NOTHING table keep working
SYNCD_PLUGIN_PATH="$TEST_PLUGIN_DIR" "$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/r_default.ini" >"$W/r_default.log" 2>&1 &
SYNCD_PID=$!
for _ in $(seq 1 300); do
	grep -q "streaming from slot" "$W/r_default.log" && break
	kill -0 $SYNCD_PID 2>/dev/null || break
	sleep 0.1
done
if kill -0 $SYNCD_PID 2>/dev/null; then
	for t in ri_nothing ri_other no_pk ul; do
		skipped $t "$W/r_default.log" ||
			failed "refused shapes: the start log with tables at its default does not name the skipped table public.$t"
	done
fi
DB=rdb psql_on src -c "update ri_nothing set v = 'changed' where id = 1" -c "delete from ri_nothing where id = 2" >"$W/app.out" 2>&1 ||
	failed "refused shapes: the application's UPDATE/DELETE on public.ri_nothing fails once syncd ran: $(head -n 2 "$W/app.out" | tr '\n' ' ')"
pub=$(DB=rdb psql_on src -Atc "select string_agg(pubname || ': ' || tablename, ', ') from pg_publication_tables where tablename in ('ri_nothing', 'no_pk', 'ul')")
[ -z "$pub" ] || failed "refused shapes: syncd published tables it must never add: $pub"
if kill -0 $SYNCD_PID 2>/dev/null; then
	kill -TERM $SYNCD_PID
	wait $SYNCD_PID || true
fi

if [ -s "$W/failures" ]; then
	it_log "$(wc -l <"$W/failures") failures:"
	sed 's/^/  /' "$W/failures" >&2
	it_fail "$(wc -l <"$W/failures") comparisons or checks failed (see above)"
fi
it_pass "every shape equal in both write modes and both job modes; refused shapes refused and named"
