#!/bin/bash
# The full phase, end to end, into real destinations:
#  1. full+incremental (copy mode) while the source is written to during the
#     copy: a lock holds table b back while a (chunked, with TOASTed values)
#     is copied; then rows of a (copied) are updated, inserted and deleted,
#     rows of b (not yet copied) are updated, deleted and inserted, and c is
#     truncated while the readers still hold it. Everything equals the
#     source afterwards: nothing resurrected, nothing lost, unchanged TOAST
#     kept.
#  2. kill -9 while b is still held back, more changes, restart: the
#     finished table is not copied again, the slot is the original one,
#     everything equals the source.
#  3. A target that already holds rows is merged by key, its other rows
#     kept (upsert mode).
#  4. mode = full copies and exits 0 without a slot; a second run copies
#     again. mode = incremental copies nothing.
#     A row the target refuses during the copy fails the job (dirty data
#     off), named with its key.
#  5. Two source databases, each with its own slot and snapshot, into
#     schemas named after them.
#  6. A resume inside a chunked table that syncd created (its key deferred
#     to the end of its copy), with rows moved into a finished chunk.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst

psql_on src <<'SQL'
create table a (id bigint primary key, n int not null, payload text);
insert into a select i, 0,
  case when i % 1000 = 0
       then (select string_agg(md5(i::text || j), '') from generate_series(1, 200) j)
       else md5(i::text) end
  from generate_series(1, 200000) i;
create table b (id int primary key, v text);
insert into b select i, 'b' || i from generate_series(1, 5000) i;
create table c (id int primary key, v text);
insert into c select i, 'c' || i from generate_series(1, 1000) i;
create table "Mixed Case" ("select" int primary key, "a b" text, t timestamptz, j jsonb, arr int[]);
insert into "Mixed Case" values (1, E'tab\there\nnewline \\ back', '2024-02-29 12:34:56.789+05:30', '{"k": [1, "x"]}', '{1,NULL,3}'),
  (2, NULL, NULL, NULL, NULL), (3, '', 'infinity', '[]', '{}');
create table empty_t (id int primary key);
analyze;
SQL

job() { # job NAME MODE WRITE_MODE DB [extra [job] lines]
	cat >"$W/$1.ini" <<INI
[job]
name = $1
mode = $2
state_dir = $W/state-$1
concurrency = 2
${5:-}
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
copy.chunk.size = 1MB
[sink]
write_mode = $3
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=$4
target.schema = #{source_schema_name}
batch.interval = 200ms
INI
}
run_bg() { # run_bg NAME: syncd in the background, SYNCD_PID
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$1.ini" >>"$W/$1.log" 2>&1 7>&- &
	SYNCD_PID=$!
}
wait_log() { # wait_log NAME TEXT
	for _ in $(seq 1 600); do
		grep -qF -- "$2" "$W/$1.log" && return 0
		kill -0 $SYNCD_PID 2>/dev/null || it_fail "syncd exited: $(tail -n 20 "$W/$1.log")"
		sleep 0.1
	done
	it_fail "no '$2' in $1.log: $(tail -n 20 "$W/$1.log")"
}
finished() { # finished JOB DB TABLE: the copy of TABLE is recorded as done
	DB=$2 psql_on dst -Atc "select (select count(*) from syncd_meta.syncd_copy where job = '$1' and source_table = '$3' and chunk >= 0) = (select nchunks from syncd_meta.syncd_copy where job = '$1' and source_table = '$3' and chunk = -1)" 2>/dev/null
}
wait_finished() {
	for _ in $(seq 1 600); do
		[ "$(finished "$@")" = t ] && return 0
		sleep 0.1
	done
	it_fail "the copy of $3 did not finish"
}
same() { # same DB TABLE...: every table equals the source
	db=$1
	shift
	for t in "$@"; do
		it_assert_eq "$(table_hash src postgres "$t")" "$(table_hash dst "$db" "$t")" "$t in $db"
	done
}
ALL='a b c "Mixed Case" empty_t'

# b is held back at the destination: its target has a trigger that waits
# for an advisory lock the test holds (the copy reads the source's snapshot,
# so everything committed at the source meanwhile comes by the stream)
hold_target() { # hold_target DB [again]
	[ -n "${2:-}" ] || DB=$1 psql_on dst <<'SQL'
create table b (id int primary key, v text);
create function wait_hold() returns trigger language plpgsql as
  $$ begin perform pg_advisory_xact_lock_shared(42); return new; end $$;
create trigger hold before insert on b for each row execute function wait_hold();
-- syncd's sessions run with session_replication_role = replica
alter table b enable always trigger hold;
SQL
	rm -f "$W/hold-$1"
	mkfifo "$W/hold-$1"
	DB=$1 psql_on dst <"$W/hold-$1" >"$W/hold-$1.out" 2>&1 &
	HOLD=$!
	exec 7>"$W/hold-$1"
	echo "select pg_advisory_lock(42);" >&7
	for _ in $(seq 1 100); do
		[ "$(DB=$1 psql_on dst -Atc "select count(*) from pg_locks where locktype = 'advisory' and granted" 7>&-)" = 1 ] && return 0
		sleep 0.1
	done
	it_fail "could not hold b"
}
release_target() {
	echo "select pg_advisory_unlock(42);" >&7
	exec 7>&-
	wait $HOLD || it_fail "the hold session failed: $(cat "$W/hold-$1.out")"
}

# ---- 1. writes during the copy ---------------------------------------------
psql_on dst -c "create database d1"
hold_target d1
job f1 full+incremental copy d1
run_bg f1
wait_log f1 "full copy from snapshot"
wait_finished f1 d1 a
wait_finished f1 d1 c
[ "$(finished f1 d1 b)" = t ] && it_fail "b was copied while it was held"
# a is copied: change it (copied rows, new rows, deleted rows, an update
# that leaves the TOASTed payload unchanged); b is not: update, delete,
# insert; c is truncated
psql_on src <<'SQL'
update a set n = n + 1 where id % 7 = 0;
update a set payload = 'short now' where id = 3000;
insert into a select i, 1, 'new ' || i from generate_series(200001, 201000) i;
delete from a where id % 13 = 0;
update b set v = 'changed ' || id where id <= 100;
delete from b where id > 4900;
insert into b values (6000, 'new b');
truncate c;
SQL
release_target d1
wait_log f1 "full copy finished"
wait_log f1 "streaming from slot"
psql_on src -c "insert into b values (7000, 'after the copy')"
slot_wait src syncd_f1 "$(psql_on src -Atc 'select pg_current_wal_lsn()')"
syncd_stop $SYNCD_PID "$W/f1.log"
same d1 a b c '"Mixed Case"' empty_t
it_assert_eq 0 "$(DB=d1 psql_on dst -Atc 'select count(*) from c')" "c truncated"
it_assert_eq 6400 "$(DB=d1 psql_on dst -Atc 'select length(payload) from a where id = 7000')" "unchanged TOAST kept"
it_assert "a copied in several chunks" test "$(DB=d1 psql_on dst -Atc "select nchunks from syncd_meta.syncd_copy where job = 'f1' and source_table = 'a' and chunk = -1")" -gt 3
it_assert_contains "$W/f1.log" "copied public.a -> public.a: 200000 rows"
# tables syncd created got their keys after the copy
it_assert_eq 5 "$(DB=d1 psql_on dst -Atc "select count(*) from pg_constraint c join pg_class t on t.oid = c.conrelid join pg_namespace n on n.oid = t.relnamespace where n.nspname = 'public' and c.contype = 'p'")" "five primary keys"
it_assert_eq 0 "$(DB=d1 psql_on dst -Atc "select count(*) from syncd_meta.syncd_ddl")" "no deferred key left"
it_assert_contains "$W/f1.log" "its primary key and indexes come after the full copy"
it_pass "writes during the copy: equal, c truncated, TOAST kept"

# ---- 2. kill -9 during the copy, restart ------------------------------------
psql_on dst -c "create database d2"
hold_target d2
job f2 full+incremental copy d2
run_bg f2
wait_finished f2 d2 a
kill -9 $SYNCD_PID
wait $SYNCD_PID 2>/dev/null || true
release_target d2
psql_on src <<'SQL'
update a set n = n + 10 where id % 11 = 0;
insert into b values (8000, 'while down');
delete from a where id = 14;
SQL
run_bg f2
wait_log f2 "streaming from slot"
grep -c "created replication slot" "$W/f2.log" | grep -qx 1 || it_fail "the slot was created again"
it_assert_contains "$W/f2.log" "were finished by an earlier run and are not copied again"
psql_on src -c "update b set v = 'live' where id = 1"
slot_wait src syncd_f2 "$(psql_on src -Atc 'select pg_current_wal_lsn()')"
syncd_stop $SYNCD_PID "$W/f2.log"
same d2 a b c '"Mixed Case"' empty_t
it_pass "kill -9 during the copy, restart: a not copied again, all equal"

# a stop (SIGTERM) during the copy is clean: exit 0, and a restart finishes
psql_on dst -c "create database d2b"
hold_target d2b
job f2b full+incremental upsert d2b
run_bg f2b
wait_finished f2b d2b a
kill -TERM $SYNCD_PID
sleep 0.5
release_target d2b
wait $SYNCD_PID || it_fail "SIGTERM during the copy: exit $?: $(tail -n 20 "$W/f2b.log")"
it_assert_contains "$W/f2b.log" "full copy stopped"
run_bg f2b
wait_log f2b "streaming from slot"
slot_wait src syncd_f2b "$(psql_on src -Atc 'select pg_current_wal_lsn()')"
syncd_stop $SYNCD_PID "$W/f2b.log"
same d2b a b c '"Mixed Case"' empty_t
it_pass "SIGTERM during the copy: exit 0, restart equal"

# ---- 3. a target that already holds rows ----------------------------------
psql_on dst -c "create database d3"
DB=d3 psql_on dst <<'SQL'
create table b (id int primary key, v text);
insert into b values (1, 'stale'), (-1, 'kept: not in the source');
SQL
job f3 full+incremental upsert d3
run_bg f3
wait_log f3 "streaming from slot"
syncd_stop $SYNCD_PID "$W/f3.log"
it_assert_eq "$(psql_on src -Atc 'select v from b where id = 1')" "$(DB=d3 psql_on dst -Atc 'select v from b where id = 1')" "same key replaced"
it_assert_eq "kept: not in the source" "$(DB=d3 psql_on dst -Atc 'select v from b where id = -1')" "other rows kept"
it_assert_eq "$(psql_on src -Atc 'select count(*) + 1 from b')" "$(DB=d3 psql_on dst -Atc 'select count(*) from b')" "merged row count"
it_assert_contains "$W/f3.log" "merged by key"
same d3 a c
it_pass "non-empty target merged by key"

# ---- 4. mode = full and mode = incremental --------------------------------
psql_on dst -c "create database d4"
job f4 full upsert d4
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/f4.ini" >"$W/f4.log" 2>&1 || it_fail "mode = full: exit $?: $(tail -n 20 "$W/f4.log")"
same d4 a b c '"Mixed Case"' empty_t
it_assert_eq 0 "$(psql_on src -Atc "select count(*) from pg_replication_slots where slot_name = 'syncd_f4'")" "no slot for mode = full"
psql_on src -c "insert into c values (-5, 'x')"
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/f4.ini" >>"$W/f4.log" 2>&1 || it_fail "mode = full again: exit $?"
it_assert_contains "$W/f4.log" "copies them again from a new snapshot"
same d4 c
psql_on dst -c "create database d5"
job f5 incremental upsert d5
run_bg f5
wait_log f5 "streaming from slot"
it_assert_eq 0 "$(DB=d5 psql_on dst -Atc 'select count(*) from a')" "mode = incremental copies nothing"
psql_on src -c "insert into empty_t values (1)"
slot_wait src syncd_f5 "$(psql_on src -Atc 'select pg_current_wal_lsn()')"
syncd_stop $SYNCD_PID "$W/f5.log"
it_assert_eq 1 "$(DB=d5 psql_on dst -Atc 'select count(*) from empty_t')" "mode = incremental streams"
it_pass "mode = full exits 0 without a slot and copies again; incremental copies nothing"

# a row the target refuses during the copy fails the job, naming it
psql_on dst -c "create database d8"
DB=d8 psql_on dst -c "create table c (id int primary key, v varchar(2))"
psql_on src -c "insert into c values (-8, 'too long')"
job f8 full upsert d8
sed -i 's/^copy.chunk.size = .*/tables = public.c/' "$W/f8.ini"
rc=0
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/f8.ini" >"$W/f8.log" 2>&1 || rc=$?
it_assert_eq 1 "$rc" "a refused row: exit code"
it_assert_contains "$W/f8.log" "insert of public.c key (id)=(-8) at 0/0 was refused with SQLSTATE 22001"
it_assert_contains "$W/f8.log" "set [dirty] enabled = true"
it_assert_eq 0 "$(DB=d8 psql_on dst -Atc 'select count(*) from c')" "nothing of the refused chunk applied"
it_pass "a row the target refuses: exit 1, named, nothing applied"

# ---- 5. two databases --------------------------------------------------------
psql_on src -c "create database db2"
DB=db2 psql_on src -c "create table c (id int primary key, v text); insert into c select i, 'db2 ' || i from generate_series(1, 3000) i"
psql_on dst -c "create database d6"
DB=d6 psql_on dst -c 'create schema postgres; create schema db2'
job f6 full+incremental copy d6
sed -i -e 's/^target.schema = .*/target.schema = #{source_db_name}/' \
	-e 's/^copy.chunk.size = .*/databases = postgres, db2\ntables = public.c/' "$W/f6.ini"
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/f6.ini" >>"$W/f6.log" 2>&1 &
SYNCD_PID=$!
for _ in $(seq 1 300); do
	[ "$(grep -c "streaming from slot" "$W/f6.log")" = 2 ] && break
	kill -0 $SYNCD_PID || it_fail "syncd exited: $(tail -n 20 "$W/f6.log")"
	sleep 0.1
done
psql_on src -c "insert into c values (-6, 'db1 live')"
DB=db2 psql_on src -c "update c set v = 'db2 live' where id = 1"
slot_wait src syncd_f6_postgres "$(psql_on src -Atc 'select pg_current_wal_lsn()')"
slot_wait src syncd_f6_db2 "$(psql_on src -Atc 'select pg_current_wal_lsn()')"
syncd_stop $SYNCD_PID "$W/f6.log"
it_assert_eq "$(table_hash src postgres c)" "$(table_hash dst d6 postgres.c)" "postgres.c"
it_assert_eq "$(table_hash src db2 c)" "$(table_hash dst d6 db2.c)" "db2.c"
it_pass "two databases: each copied from its own snapshot, then streamed"

# ---- 6. resume inside a chunked table ---------------------------------------
# r has five chunks; the first two finish, the others are held, then kill -9.
# Before the restart, rows of the held part are updated so that their new
# versions land in the first chunk's freed pages, leaving the TOASTed big
# unchanged: the resume must read those rows again from the finished chunk
# (the stream brings them without big).
psql_on src -c "create database rdb"
DB=rdb psql_on src <<'SQL'
create table r (id int primary key, pad text, big text) with (fillfactor = 100);
insert into r select i, repeat('p', 300),
  case when i % 10 = 0 then (select string_agg(md5(i::text || j), '') from generate_series(1, 200) j) end
  from generate_series(1, 12000) i;
analyze r;
SQL
psql_on dst -c "create database d7"
# syncd creates r (its primary key deferred until the copy is done); an
# event trigger gives it the hold as it is created
DB=d7 psql_on dst <<'SQL'
create function wait_hold() returns trigger language plpgsql as
  $$ begin if new.id > 6500 then perform pg_advisory_xact_lock_shared(42); end if; return new; end $$;
create function add_hold() returns event_trigger language plpgsql as $$
begin
  if exists (select 1 from pg_event_trigger_ddl_commands() where object_identity = 'public.r') then
    create trigger hold before insert on public.r for each row execute function wait_hold();
    alter table public.r enable always trigger hold;
  end if;
end $$;
create event trigger add_hold on ddl_command_end when tag in ('CREATE TABLE') execute function add_hold();
alter event trigger add_hold enable always;
SQL
hold_target d7 again
job f7 full+incremental copy d7
sed -i 's/dbname=postgres$/dbname=rdb/' "$W/f7.ini"
run_bg f7
for _ in $(seq 1 600); do
	[ "$(DB=d7 psql_on dst -Atc "select count(*) from syncd_meta.syncd_copy where job = 'f7' and chunk >= 0" 2>/dev/null)" = 2 ] && break
	sleep 0.1
done
nchunks=$(DB=d7 psql_on dst -Atc "select nchunks from syncd_meta.syncd_copy where job = 'f7' and chunk = -1")
it_assert "r in 4 or more chunks" test "$nchunks" -ge 4
it_assert_eq 2 "$(DB=d7 psql_on dst -Atc "select count(*) from syncd_meta.syncd_copy where job = 'f7' and chunk >= 0")" "r: 2 chunks finished"
it_assert_eq 0 "$(DB=d7 psql_on dst -Atc "select count(*) from pg_index where indrelid = 'r'::regclass")" "r has no key during its copy"
kill -9 $SYNCD_PID
wait $SYNCD_PID 2>/dev/null || true
release_target d7
DB=rdb psql_on src <<'SQL'
delete from r where id <= 2000;
vacuum r;
update r set pad = repeat('q', 320) where id > 9000 and id % 10 = 0;
insert into r values (20000, 'new', 'new');
SQL
moved=$(DB=rdb psql_on src -Atc "select count(*) from r where id > 9000 and id % 10 = 0 and (ctid::text::point)[0] < 128")
it_assert "updated rows moved into the finished first chunk" test "$moved" -gt 0
run_bg f7
wait_log f7 "streaming from slot"
it_assert_contains "$W/f7.log" "resuming the copy of public.r: 2 of $nchunks chunk(s) were finished earlier"
slot_wait src syncd_f7 "$(DB=rdb psql_on src -Atc 'select pg_current_wal_lsn()')"
syncd_stop $SYNCD_PID "$W/f7.log"
it_assert_eq "$(table_hash src rdb r)" "$(table_hash dst d7 r)" "r after the resume"
it_assert_eq "r_pkey" "$(DB=d7 psql_on dst -Atc "select conname from pg_constraint where conrelid = 'r'::regclass and contype = 'p'")" "r's primary key after the resume"
it_pass "resume inside a table: finished chunks kept, $moved moved rows read again, equal"
