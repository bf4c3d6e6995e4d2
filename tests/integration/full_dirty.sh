#!/bin/bash
# Dirty data in the full phase, in both write modes: pre-created targets
# with a narrower column (varchar(5)) and a CHECK the source lacks refuse a
# few rows among 30,000 copied in 1 MB chunks. With [dirty] enabled the
# refused rows are isolated (the chunk is read again and bisected), the
# archive holds exactly them (as inserts, with key, SQLSTATE and values),
# every other row is copied, and the job goes on streaming. Upsert copies
# into an empty target (COPY straight in); copy merges into a target that
# already holds a row (staged, the CHECK refuses at the INSERT ... SELECT).
# With [dirty] enabled = false the job fails naming the table, the key and
# the SQLSTATE.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst

psql_on src <<'SQL'
create table t (id int primary key, v text, n int, pad text);
insert into t select g,
  case when g in (77, 15001, 29999) then 'too long' else 'ok' end,
  case when g in (3, 20000) then -g else g end,
  repeat('x', 100)
  from generate_series(1, 30000) g;
-- refused rows with escapes and a NULL: archived with their values
update t set pad = E'tab\there\nnew \\ back\\N' where id = 77;
update t set pad = null where id = 15001;
analyze t;
SQL

job() { # job NAME WRITE_MODE DIRTY
	cat >"$W/$1.ini" <<INI
[job]
name = $1
mode = full+incremental
state_dir = $W/state-$1
concurrency = 2
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
copy.chunk.size = 1MB
tables = public.t
[sink]
write_mode = $2
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=$1
target.schema = public
batch.interval = 300ms
[dirty]
enabled = $3
threshold = 100
policy = archive
[archiver]
plugin = file
directory = $W/dirty-$1
INI
	psql_on dst -c "create database $1" >/dev/null
	DB=$1 psql_on dst -c "create table t (id int primary key, v varchar(5), n int check (n >= 0), pad text)" >/dev/null
}

# the rows the destination can take, as the copy must leave them
good="select count(*) || ':' || md5(string_agg(id || v || n, ',' order by id)) from t where id <= 30000 and length(v) <= 5 and n >= 0"
good_rows=$(psql_on src -Atc "$good")

for mode in upsert copy; do
	job "d_$mode" $mode true
	# copy mode: a row the job did not write, so the copy merges by key
	[ $mode = copy ] && DB=d_$mode psql_on dst -c "insert into t values (50000, 'mine', 1, '')" >/dev/null
	syncd_start "$W/d_$mode.log" "$W/d_$mode.ini"
	it_assert_eq "$good_rows" "$(DB=d_$mode psql_on dst -Atc "$good")" "every good row copied ($mode)"
	it_assert_eq 0 "$(DB=d_$mode psql_on dst -Atc "select count(*) from t where id in (3, 77, 15001, 20000, 29999)")" "no refused row copied ($mode)"
	it_assert_contains "$W/d_$mode.log" "the chunk is read again to set the refused rows aside"
	it_assert_contains "$W/d_$mode.log" "rows set aside as dirty data"
	# streaming goes on, with its own dirty row
	psql_on src -c "insert into t values (30001, 'ok', 1, 'p'), (30002, 'streamed too long', 2, 'p')" >/dev/null
	slot_wait src "syncd_d_$mode" "$(psql_on src -Atc "select pg_current_wal_lsn()")"
	syncd_stop "$SYNCD_PID" "$W/d_$mode.log"
	it_assert_eq "30001:ok" "$(DB=d_$mode psql_on dst -Atc "select string_agg(id || ':' || v, ',') from t where id > 30000 and id < 50000")" "streamed after the copy ($mode)"
	if [ $mode = copy ]; then
		it_assert_eq 1 "$(DB=d_$mode psql_on dst -Atc "select count(*) from t where id = 50000")" "the target's own row kept"
		it_assert_contains "$W/d_$mode.log" "already holds rows: the copy merges by key"
	fi
	cat "$W"/dirty-d_$mode/*.jsonl >"$W/d_$mode.dirty"
	recs=$(jq -r '[.op, .key.id, .sqlstate, .target_schema + "." + .target_table, .row.v, .row.n, (.row.pad | length)] | join(" ")' "$W/d_$mode.dirty" | sort -n -k2)
	it_assert_eq "insert 3 23514 public.t ok -3 100
insert 77 22001 public.t too long 77 21
insert 15001 22001 public.t too long 15001 0
insert 20000 23514 public.t ok -20000 100
insert 29999 22001 public.t too long 29999 100
insert 30002 22001 public.t streamed too long 2 1" "$recs" "the archive holds exactly the refused rows ($mode)"
	it_assert_eq "$(psql_on src -Atc "select to_json(pad) from t where id = 77")" "$(jq -c 'select(.key.id == "77") | .row.pad' "$W/d_$mode.dirty")" "an archived value with tab, newline and backslashes ($mode)"
	it_assert_eq null "$(jq -c 'select(.key.id == "15001") | .row.pad' "$W/d_$mode.dirty")" "an archived NULL ($mode)"
	# a copied row has no commit time; its LSN is the copy's snapshot's
	it_assert_eq null "$(jq -c 'select(.key.id == "77") | .commit_time' "$W/d_$mode.dirty")" "no commit time for a copied row ($mode)"
	[ "$(jq -r 'select(.key.id == "77") | .lsn' "$W/d_$mode.dirty")" = 0/0 ] && it_fail "a copied row's LSN is 0/0 ($mode)"
	# a restart copies nothing again
	syncd_start "$W/d_$mode.log" "$W/d_$mode.ini"
	syncd_stop "$SYNCD_PID" "$W/d_$mode.log"
	it_assert_eq 6 "$(cat "$W"/dirty-d_$mode/*.jsonl | wc -l)" "nothing archived twice ($mode)"
	psql_on src -c "delete from t where id > 30000" >/dev/null
done
it_pass "rows refused during the copy archived, every other row copied, the job streams on, in both modes"

# [dirty] enabled = false: the job fails, naming table, key and SQLSTATE
for mode in upsert copy; do
	job "off_$mode" $mode false
	rc=0
	timeout 120 "$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/off_$mode.ini" >"$W/off_$mode.log" 2>&1 || rc=$?
	it_assert_eq 1 "$rc" "exit code without dirty data ($mode)"
	grep -Eq "insert of public\.t key \(id\)=\((3|77|15001|20000|29999)\) .*was refused with SQLSTATE (22001|23514)" "$W/off_$mode.log" ||
		it_fail "the failure does not name table, key and SQLSTATE ($mode): $(grep -i error "$W/off_$mode.log" | tail -n 3)"
	it_assert_contains "$W/off_$mode.log" "set [dirty] enabled = true"
	[ -e "$W/dirty-off_$mode" ] && [ -n "$(cat "$W"/dirty-off_$mode/* 2>/dev/null)" ] && it_fail "archived with dirty data off ($mode)"
done
it_pass "without dirty data the job fails naming table, key and SQLSTATE"
