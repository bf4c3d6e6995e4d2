#!/bin/bash
# syncd --drop (issue 18, item 3): two jobs stream from one database with
# the default publication (job ja creates it, job jb adds its table).
#  1. --drop of a running job is refused and changes nothing: ja through
#     its [monitor] endpoint, jb through its slot in use
#  2. ja stopped: --drop lists its slots, keeps the publication (jb's slots
#     remain), lists its state rows and directory, changes nothing
#  3. --drop --yes: no slot of ja, no state row of ja, no state directory;
#     the publication and everything of jb untouched, and jb still streams
#  4. jb, the last job, retired: its slots and the publication are gone
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst
S() { psql_on src -Atc "$1"; }
D() { psql_on dst -Atc "$1"; }
S "create table a1 (id int primary key, v text); create table b1 (id int primary key, v text)" >/dev/null
S "insert into a1 select g, 'a' from generate_series(1, 100) g; insert into b1 select g, 'b' from generate_series(1, 100) g" >/dev/null

job() { # job NAME TABLE [extra]
	cat >"$W/$1.ini" <<INI
[job]
name = $1
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
tables = public.$2
status.interval = 200ms
[sink]
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres
target.schema = public
batch.interval = 200ms
${3:-}
INI
}
job ja a1 "[monitor]
metrics.listen = 127.0.0.1:0"
job jb b1
drop() { # drop NAME [--yes]: output in $W/drop.out, exit code in rc
	rc=0
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$1.ini" --drop ${2:-} >"$W/drop.out" 2>&1 || rc=$?
}
slots() { S "select string_agg(slot_name, ',' order by slot_name) from pg_replication_slots"; }

syncd_start "$W/ja.log" "$W/ja.ini"
PID_A=$SYNCD_PID
syncd_start "$W/jb.log" "$W/jb.ini"
PID_B=$SYNCD_PID
S "insert into a1 values (101, 'a'); insert into b1 values (101, 'b')" >/dev/null
slot_wait src syncd_ja "$(S 'select pg_current_wal_lsn()')"
slot_wait src syncd_jb "$(S 'select pg_current_wal_lsn()')"
it_assert_eq "syncd_ja,syncd_ja_hold,syncd_jb,syncd_jb_hold" "$(slots)" "the slots of both jobs"
it_assert_eq "created by syncd job ja" "$(S "select obj_description(oid, 'pg_publication') from pg_publication where pubname = 'dbz_publication'")" \
	"ja created the publication"
it_assert_eq "a1,b1" "$(S "select string_agg(tablename, ',' order by tablename) from pg_publication_tables where pubname = 'dbz_publication'")" \
	"jb added its table"
state_rows() { D "select count(*) from syncd_meta.syncd_progress where job = '$1'"; }
[ "$(state_rows ja)" -gt 0 ] || it_fail "no progress rows of ja"

# ---- 1. refused while running ------------------------------------------------
drop ja --yes
it_assert_eq 1 "$rc" "--drop of a running job (ja): $(cat "$W/drop.out")"
it_assert_contains "$W/drop.out" "job ja is running (its endpoint http://127.0.0.1:"
drop jb --yes
it_assert_eq 1 "$rc" "--drop of a running job (jb): $(cat "$W/drop.out")"
it_assert_contains "$W/drop.out" "replication slot syncd_jb in database \"postgres\" is in use by process"
it_assert_contains "$W/drop.out" "nothing was changed"
it_assert_eq "syncd_ja,syncd_ja_hold,syncd_jb,syncd_jb_hold" "$(slots)" "slots after the refusals"
it_pass "--drop of a running job is refused (endpoint, slot in use) and changes nothing"

# ---- 2. the plan ---------------------------------------------------------------
# SIGHUP (a closed terminal) stops a job cleanly, like SIGTERM
kill -HUP "$PID_A"
rc=0
wait "$PID_A" || rc=$?
it_assert_eq 0 "$rc" "exit code after SIGHUP: $(tail -n 5 "$W/ja.log")"
it_assert_contains "$W/ja.log" "received SIGHUP: stopping; flushing and confirming"
it_assert_contains "$W/ja.log" "job ja stopped cleanly"
drop ja
it_assert_eq 0 "$rc" "--drop without --yes: $(cat "$W/drop.out")"
for line in "job ja leaves behind:" \
	"source: replication slot syncd_ja in database \"postgres\" (it keeps" \
	"source: replication slot syncd_ja_hold in database \"postgres\" (it keeps" \
	"source: publication dbz_publication in database \"postgres\" is kept: the slots of other syncd jobs (syncd_jb, syncd_jb_hold) remain" \
	"of job ja in \"syncd_meta\".\"syncd_progress\": delete them" \
	"local: state directory $W/state/ja: remove it" \
	"nothing was changed; run again with --yes to remove it"; do
	it_assert_contains "$W/drop.out" "$line"
done
it_assert_eq "syncd_ja,syncd_ja_hold,syncd_jb,syncd_jb_hold" "$(slots)" "slots after the plan"
[ "$(state_rows ja)" -gt 0 ] || it_fail "the plan deleted ja's progress"
[ -d "$W/state/ja" ] || it_fail "the plan removed the state directory"
it_pass "--drop without --yes lists the slots, the publication kept, the state, and changes nothing"

# ---- 3. retired; jb untouched -----------------------------------------------
B_ROWS=$(state_rows jb)
drop ja --yes
it_assert_eq 0 "$rc" "--drop --yes: $(cat "$W/drop.out")"
it_assert_contains "$W/drop.out" "job ja is retired"
it_assert_eq "syncd_jb,syncd_jb_hold" "$(slots)" "only jb's slots are left"
it_assert_eq "0 0" "$(D "select count(*) from syncd_meta.syncd_progress where job = 'ja'") $(D "select count(*) from syncd_meta.syncd_copy where job = 'ja'")" \
	"no state rows of ja"
it_assert_eq "$B_ROWS" "$(state_rows jb)" "jb's progress rows untouched"
[ -d "$W/state/ja" ] && it_fail "ja's state directory is still there"
[ -d "$W/state/jb" ] || it_fail "jb's state directory is gone"
it_assert_eq "a1,b1" "$(S "select string_agg(tablename, ',' order by tablename) from pg_publication_tables where pubname = 'dbz_publication'")" \
	"the publication as it was"
it_assert_eq 101 "$(D 'select count(*) from a1')" "ja's target table is left alone"
S "insert into b1 values (102, 'b')" >/dev/null
slot_wait src syncd_jb "$(S 'select pg_current_wal_lsn()')"
it_assert_eq "$(table_hash src postgres b1)" "$(table_hash dst postgres b1)" "jb still streams"
it_pass "--drop --yes: ja's slots, state rows and directory gone; jb and the publication untouched"

# ---- 4. the last job ------------------------------------------------------------
syncd_stop "$PID_B" "$W/jb.log"
SYNCD_PID=
drop jb --yes
it_assert_eq 0 "$rc" "--drop --yes of jb: $(cat "$W/drop.out")"
it_assert_contains "$W/drop.out" "source: dropped publication dbz_publication in database \"postgres\""
it_assert_eq "" "$(slots)" "no slot left"
it_assert_eq 0 "$(S "select count(*) from pg_publication")" "no publication left"
it_assert_eq 0 "$(D "select count(*) from syncd_meta.syncd_progress")" "no progress rows left"
# a second --drop finds nothing and says so
drop jb --yes
it_assert_eq 0 "$rc" "a second --drop: $(cat "$W/drop.out")"
it_assert_contains "$W/drop.out" "source: no replication slot of the job in database \"postgres\""
it_pass "the last job's --drop drops the publication; a second --drop finds nothing"
