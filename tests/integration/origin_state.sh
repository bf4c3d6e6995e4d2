#!/bin/bash
# The source's origin kept with the destination's progress, and a re-sync
# forgetting a stream's progress (ABI 1.1: a sink's origin_get,
# origin_set, forget), in both DWS sinks:
#  1. through the plugins' own operations (origin_state.c, built here
#     against the tests' mock host): --check passes while syncd_origin
#     does not exist (state tables of an earlier version) and creates
#     nothing; origin_get makes syncd_origin next to them and answers none;
#     origin_set records and replaces (one row per job and stream);
#     forget, in one transaction, deletes the stream's progress and origin
#     and its copies' chunks, and keeps the table rows (how, nchunks 0, no
#     snapshot position): other streams and jobs are untouched, every
#     worker's applied_lsn is 0 after it (before: the copy's snapshot
#     position), the next copy_table with again = false or true empties
#     a target the job filled (direct) and merges into one it did not;
#     forget works on a syncd_copy of an earlier version (no
#     snapshot_lsn) and on a destination without state.schema; an
#     operation on a stopped destination answers SYNCD_RETRY;
#  2. through syncd: after a first run, state.schema.syncd_origin has one
#     row for the job, the pgoutput source's "system <id>, timeline <tl>";
#     syncd --resync -c FILE copies the tables again from a new slot: rows
#     deleted at the source while the slot was gone are gone at the
#     destination too, and the origin is recorded again.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK

# the driver, built as the plugins were (a sanitizer build's plugins load
# only into a program with the sanitizer's runtime)
build_var() { sed -n "s/^$1 = //p" "$top_builddir/Makefile" | head -n 1; }
# shellcheck disable=SC2046
$(build_var CC) -std=gnu11 $(build_var CFLAGS) $(build_var LDFLAGS) \
	-Wall -Wextra -Werror -I"$top_srcdir/sdk/include" \
	-I"$top_srcdir/tests/unit" -o "$W/drive" \
	"$top_srcdir/tests/integration/origin_state.c" \
	"$top_srcdir/tests/unit/mock_host.c" -ldl -lpthread ||
	it_fail "could not build the driver origin_state.c"

pg_start dst
DST="host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres"

# drive PLUGIN JOB SCHEMA OP [ARGS]: the operation's answer on stdout;
# its log and error in $W/drive.err
drive() {
	plugin=$1 job=$2 schema=$3
	shift 3
	"$W/drive" "$PLUGIN_DIR" "$plugin" "$job" "$DST" "$schema" "$@" \
		2>"$W/drive.err"
}
ok() { # ok PLUGIN JOB SCHEMA OP [ARGS]: must succeed
	drive "$@" || it_fail "$4 (${1}): $(cat "$W/drive.err")"
}
q() { psql_on dst -Atc "$1"; }

# ---- 1. the operations ---------------------------------------------------

for plugin in dws_upsert dws_copy; do
	S=meta_$plugin
	# state.schema as an earlier version left it: no syncd_origin
	psql_on dst >/dev/null <<SQL
create schema $S;
create table $S.syncd_progress (job text not null, stream integer not null,
  worker integer not null, lsn bigint not null, lsn_text text not null,
  layout text not null, updated_at timestamptz not null,
  primary key (job, stream, worker));
create table $S.syncd_ddl (job text not null, target_schema text not null,
  target_table text not null, ddl text not null,
  primary key (job, target_schema, target_table));
set client_min_messages = warning;
drop table if exists public.t1, public.t2;
create table public.t1 (id integer primary key, v text);
create table public.t2 (id integer primary key, v text);
insert into public.t2 values (100, 'the destination''s own');
SQL
	ok $plugin j $S check >/dev/null
	it_assert_eq "" "$(q "select to_regclass('$S.syncd_origin')")" \
		"$plugin: --check created nothing"

	it_assert_eq "(none)" "$(ok $plugin j $S get 0)" "$plugin: no origin yet"
	it_assert_eq "$S.syncd_origin" "$(q "select to_regclass('$S.syncd_origin')")" \
		"$plugin: syncd_origin made next to an earlier version's tables"
	ok $plugin j $S check >/dev/null
	ok $plugin j $S set 0 "system 7312, timeline 1"
	it_assert_eq "system 7312, timeline 1" "$(ok $plugin j $S get 0)" \
		"$plugin: the origin recorded"
	ok $plugin j $S set 0 "system 7312, timeline 2"
	ok $plugin j $S set 1 "system 7312, timeline 2"
	ok $plugin other $S set 0 "system 9999, timeline 1"
	it_assert_eq "system 7312, timeline 2" "$(ok $plugin j $S get 0)" \
		"$plugin: the origin replaced"
	it_assert_eq "1" "$(q "select count(*) from $S.syncd_origin where job = 'j' and stream = 0 and recorded_at is not null")" \
		"$plugin: one origin row per job and stream"

	# a first copy of t1 into an empty target (direct), of t2 into one
	# holding rows (merge), then their chunks done by hand, as
	# copy_begin/copy_end record them
	it_assert_eq direct "$(ok $plugin j $S copy 0 t1 0)" "$plugin: t1 copied directly"
	it_assert_eq merge "$(ok $plugin j $S copy 0 t2 0)" "$plugin: t2 merged"
	psql_on dst >/dev/null <<SQL
insert into public.t1 select g, 'old' from generate_series(1, 3) g;
insert into public.t2 select g, 'old' from generate_series(1, 3) g;
insert into $S.syncd_copy (job, stream, source_schema, source_table, chunk,
  nchunks, how, target_schema, target_table, rows, updated_at, chunk_name)
  select job, stream, source_schema, source_table, 0, nchunks, how,
  target_schema, target_table, 3, now(), 'all' from $S.syncd_copy
  where job = 'j' and chunk = -1;
update $S.syncd_copy set rows = 3 where job = 'j' and chunk = -1;
insert into $S.syncd_progress values
  ('j', 0, 0, 100, '0/64', '2/pk', now()),
  ('j', 0, 1, 200, '0/C8', '2/pk', now()),
  ('j', 1, 0, 300, '0/12C', '2/pk', now()),
  ('other', 0, 0, 400, '0/190', '2/pk', now());
insert into $S.syncd_copy select 'other', stream, source_schema,
  source_table, chunk, nchunks, how, target_schema, target_table, rows,
  updated_at, chunk_name, source_state, snapshot_lsn from $S.syncd_copy
  where job = 'j';
SQL
	it_assert_eq skip "$(ok $plugin j $S copy 0 t1 0)" "$plugin: a finished copy is skipped"
	# the copies' snapshot (0/5000000) counts as applied
	it_assert_eq $((0x5000000 - 1)) "$(ok $plugin j $S applied 0 0)" \
		"$plugin: applied before forget, worker 0"
	it_assert_eq $((0x5000000 - 1)) "$(ok $plugin j $S applied 0 1)" \
		"$plugin: applied before forget, worker 1"

	ok $plugin j $S forget 0
	it_assert_contains "$W/drive.err" "stream 0: forgot the destination's progress (2 worker rows"
	it_assert_eq "0" "$(q "select count(*) from $S.syncd_progress where job = 'j' and stream = 0")" \
		"$plugin: the stream's progress forgotten"
	it_assert_eq "j|1|300 other|0|400" \
		"$(q "select job, stream, lsn from $S.syncd_progress order by 1, 2" | tr '\n' ' ' | sed 's/ $//')" \
		"$plugin: other streams' and jobs' progress kept"
	it_assert_eq "(none)" "$(ok $plugin j $S get 0)" "$plugin: the origin forgotten"
	it_assert_eq "system 7312, timeline 2" "$(ok $plugin j $S get 1)" \
		"$plugin: another stream's origin kept"
	it_assert_eq "system 9999, timeline 1" "$(ok $plugin other $S get 0)" \
		"$plugin: another job's origin kept"
	it_assert_eq "t1|-1|0|d|0|t t2|-1|0|m|0|t" \
		"$(q "select source_table, chunk, nchunks, how, rows, snapshot_lsn is null from $S.syncd_copy where job = 'j' and stream = 0 order by 1, 2" | tr '\n' ' ' | sed 's/ $//')" \
		"$plugin: the copies' table rows kept, forgotten"
	it_assert_eq "4" "$(q "select count(*) from $S.syncd_copy where job = 'other' and snapshot_lsn is not null or job = 'other' and chunk = 0")" \
		"$plugin: another job's copies kept"
	it_assert_eq 0 "$(ok $plugin j $S applied 0 0)" "$plugin: applied after forget, worker 0"
	it_assert_eq 0 "$(ok $plugin j $S applied 0 1)" "$plugin: applied after forget, worker 1"
	it_assert_eq 300 "$(ok $plugin j $S applied 1 0)" "$plugin: another stream's applied kept"

	# the next full phase: again = false (a restart) or true (a new
	# slot): what the job filled is emptied, the rest merged into
	it_assert_eq direct "$(ok $plugin j $S copy 0 t1 0)" \
		"$plugin: after forget, a filled target is copied again (again = false)"
	it_assert_contains "$W/drive.err" "was filled by this job before a re-sync: emptied it"
	it_assert_eq 0 "$(q "select count(*) from public.t1")" "$plugin: t1 emptied"
	it_assert_eq merge "$(ok $plugin j $S copy 0 t2 1)" \
		"$plugin: after forget, a target the job did not fill is merged into"
	it_assert_eq 4 "$(q "select count(*) from public.t2")" "$plugin: t2 kept"
	psql_on dst >/dev/null <<SQL
insert into public.t1 select g, 'old' from generate_series(1, 3) g;
insert into $S.syncd_copy (job, stream, source_schema, source_table, chunk,
  nchunks, how, target_schema, target_table, rows, updated_at, chunk_name)
  select job, stream, source_schema, source_table, 0, nchunks, how,
  target_schema, target_table, 3, now(), 'all' from $S.syncd_copy
  where job = 'j' and chunk = -1 and source_table = 't1';
SQL
	ok $plugin j $S forget 0
	it_assert_eq direct "$(ok $plugin j $S copy 0 t1 1)" \
		"$plugin: after forget, a filled target is copied again (again = true)"
	it_assert_eq 0 "$(q "select count(*) from public.t1")" "$plugin: t1 emptied again"
	it_assert_eq "1|t" "$(q "select nchunks, snapshot_lsn = $((0x5000000)) from $S.syncd_copy where job = 'j' and source_table = 't1'")" \
		"$plugin: the new copy recorded"
	it_pass "$plugin: origin_get, origin_set, forget and the copy after it"
done

# a copy state of an earlier version (no snapshot_lsn column)
psql_on dst >/dev/null <<'SQL'
create schema meta_old;
create table meta_old.syncd_copy (job text not null, stream integer not null,
  source_schema text not null, source_table text not null,
  chunk integer not null, nchunks integer not null, how char(1) not null,
  target_schema text not null, target_table text not null,
  rows bigint not null, updated_at timestamptz not null, chunk_name text,
  source_state text, primary key (job, stream, source_schema, source_table,
  chunk));
insert into meta_old.syncd_copy values
  ('j', 0, 'public', 't1', -1, 1, 'd', 'public', 't1', 3, now(), null, 's'),
  ('j', 0, 'public', 't1', 0, 1, 'd', 'public', 't1', 3, now(), 'all', null);
SQL
ok dws_upsert j meta_old forget 0
it_assert_eq "-1|0|d" "$(q "select chunk, nchunks, how from meta_old.syncd_copy")" \
	"forget on a copy state of an earlier version"

# a destination without state.schema: made, and nothing to forget
ok dws_copy j meta_fresh forget 0
it_assert_eq "meta_fresh.syncd_origin|" \
	"$(q "select to_regclass('meta_fresh.syncd_origin'), to_regclass('meta_fresh.syncd_copy')")" \
	"forget on a fresh destination"

# a stopped destination: SYNCD_RETRY (1), and nothing is half done
pg_stop dst
drive dws_upsert j meta_dws_upsert get 0 >/dev/null && it_fail "origin_get on a stopped destination succeeded"
it_assert_contains "$W/drive.err" "status 1:"
drive dws_copy j meta_dws_copy forget 1 >/dev/null && it_fail "forget on a stopped destination succeeded"
it_assert_contains "$W/drive.err" "status 1:"
pg_restart dst
it_pass "earlier copy state; SYNCD_RETRY on a stopped destination"

# ---- 2. through syncd -------------------------------------------------------

pg_start src
export SYNCD_PLUGIN_PATH="$TEST_PLUGIN_DIR"
psql_on src >/dev/null <<'SQL'
create table r (id int primary key, v text);
insert into r select g, 'v' || g from generate_series(1, 100) g;
SQL
cat >"$W/e2e.ini" <<INI
[job]
name = e2e
mode = full+incremental
state_dir = $W/state-e2e
concurrency = 2
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
slot.flush.delay.time = 0
status.interval = 200ms
[sink]
write_mode = copy
conninfo = $DST
target.schema = #{source_schema_name}
batch.interval = 200ms
INI
# converged: the target equals the source (60 s at most)
converged() {
	for _ in $(seq 1 600); do
		[ "$(table_hash src postgres r)" = "$(table_hash dst postgres r)" ] && return 0
		sleep 0.1
	done
	it_fail "$1: r differs: source $(table_hash src postgres r), destination $(table_hash dst postgres r)"
}
syncd_start "$W/e2e.log" "$W/e2e.ini"
psql_on src -c "insert into r values (101, 'streamed')"
converged "first run"
syncd_stop "$SYNCD_PID" "$W/e2e.log"
system=$(psql_on src -Atc "select system_identifier from pg_control_system()")
it_assert_eq "1|system $system, timeline 1" \
	"$(q "select count(*), min(origin) from syncd_meta.syncd_origin where job = 'e2e'")" \
	"the source's origin recorded with the progress"

# a re-sync: rows deleted at the source are gone from the destination
# after it (the target emptied and copied again, not merged into), though
# the dropped slot never streams their deletion
psql_on src -c "delete from r where id <= 10; update r set v = 'changed' where id = 11" >/dev/null
"$SYNCD" --plugin-dir "$PLUGIN_DIR" --resync -c "$W/e2e.ini" >>"$W/e2e.log" 2>&1 &
SYNCD_PID=$!
for _ in $(seq 1 200); do
	[ "$(grep -c "streaming from slot" "$W/e2e.log")" -ge 2 ] && break
	kill -0 $SYNCD_PID 2>/dev/null || it_fail "syncd --resync exited: $(tail -n 20 "$W/e2e.log")"
	sleep 0.1
done
converged "after syncd --resync"
psql_on src -c "insert into r values (102, 'streamed after the re-sync')"
converged "streaming after syncd --resync"
syncd_stop "$SYNCD_PID" "$W/e2e.log"
it_assert_contains "$W/e2e.log" "forgot the destination's progress"
it_assert_contains "$W/e2e.log" "was filled by this job before a re-sync: emptied it"
it_assert_eq "1|system $system, timeline 1" \
	"$(q "select count(*), min(origin) from syncd_meta.syncd_origin where job = 'e2e'")" \
	"the origin recorded again after the re-sync"
it_pass "syncd records the origin; syncd --resync forgets the progress and copies again"
