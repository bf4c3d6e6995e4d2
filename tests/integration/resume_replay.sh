#!/bin/bash
# A copy resumed from a fresh snapshot, with the stream replaying older
# changes over it (issue 13, defect 10), in both write modes:
#   the copy of docs is held back at the destination, syncd is killed
#   (kill -9) before docs is copied; while it is down row 3677 moves to key
#   100000022 with its TOASTed body unchanged and key 3677 is inserted again
#   with another body, and row 5 gets an update that leaves its body
#   unchanged and is then deleted. At restart docs is copied from a fresh
#   snapshot (a temporary slot's), newer than the slot, and the stream
#   replays the move and the update over it: the moved row must keep its
#   own body (not the new 3677's, which is what the row at the old key
#   holds by then), and the update of the gone row 5 is no dirty data (in
#   copy mode one change per batch, so it is not folded with the delete).
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst

for mode in upsert copy; do
	psql_on src <<'SQL' >/dev/null
set client_min_messages = warning;
drop table if exists docs, other;
create table docs (id int primary key, small int not null, body text not null);
alter table docs alter body set storage external;
insert into docs select i, 0, (select string_agg(md5(i::text || j), '') from generate_series(1, 100) j)
  from generate_series(1, 5000) i;
create table other (id int primary key, v text);
insert into other select i, 'o' || i from generate_series(1, 2000) i;
SQL
	psql_on dst -c "create database r_$mode" >/dev/null
	DB=r_$mode psql_on dst <<'SQL' >/dev/null
create table docs (id int primary key, small int not null, body text not null);
create function wait_hold() returns trigger language plpgsql as
  $$ begin perform pg_advisory_xact_lock_shared(42); return new; end $$;
create trigger hold before insert on docs for each row execute function wait_hold();
alter table docs enable always trigger hold;
SQL
	cat >"$W/$mode.ini" <<INI
[job]
name = rr_$mode
mode = full+incremental
state_dir = $W/state-$mode
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
[sink]
write_mode = $mode
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=r_$mode
target.schema = public
batch.interval = 200ms
INI
	# copy mode: one change per batch, so that the replayed update of
	# row 5 is not folded with its delete
	[ $mode = copy ] && echo "batch.max_rows = 1" >>"$W/$mode.ini"
	# hold docs: a session holds the advisory lock the trigger waits for
	rm -f "$W/hold"
	mkfifo "$W/hold"
	DB=r_$mode psql_on dst <"$W/hold" >"$W/hold.out" 2>&1 &
	HOLD=$!
	exec 7>"$W/hold"
	echo "select pg_advisory_lock(42);" >&7
	for _ in $(seq 1 100); do
		[ "$(DB=r_$mode psql_on dst -Atc "select count(*) from pg_locks where locktype = 'advisory' and granted" 7>&-)" = 1 ] && break
		sleep 0.1
	done
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$mode.ini" >>"$W/$mode.log" 2>&1 7>&- &
	SYNCD_PID=$!
	for _ in $(seq 1 300); do
		[ "$(DB=r_$mode psql_on dst -Atc "select count(*) from syncd_meta.syncd_copy where source_table = 'other' and chunk >= 0" 2>/dev/null)" = 1 ] && break
		kill -0 $SYNCD_PID 2>/dev/null || it_fail "syncd exited: $(tail -n 20 "$W/$mode.log")"
		sleep 0.1
	done
	sleep 0.5 # docs' copy waits on the lock
	kill -9 $SYNCD_PID
	wait $SYNCD_PID 2>/dev/null || true
	echo "select pg_advisory_unlock(42);" >&7
	exec 7>&-
	wait $HOLD
	it_assert_eq 0 "$(DB=r_$mode psql_on dst -Atc "select count(*) from syncd_meta.syncd_copy where source_table = 'docs' and chunk >= 0")" "docs not copied before the kill ($mode)"
	body_before=$(psql_on src -Atc "select md5(body) from docs where id = 3677")
	psql_on src >/dev/null <<'SQL'
update docs set id = 100000022 where id = 3677;
insert into docs values (3677, 1, 'a new row at the old key');
update docs set small = small + 1 where id = 5;
delete from docs where id = 5;
SQL
	# after the move: a newer transaction, so the restart's snapshot is
	# past every change above
	psql_on src -c "update other set v = 'later' where id = 1" >/dev/null
	syncd_start "$W/$mode.log" "$W/$mode.ini"
	it_assert_contains "$W/$mode.log" "a temporary slot's, newer than the slot"
	psql_on src -c "update other set v = 'live' where id = 2" >/dev/null
	slot_wait src "syncd_rr_$mode" "$(psql_on src -Atc "select pg_current_wal_lsn()")"
	syncd_stop "$SYNCD_PID" "$W/$mode.log"
	got=$(DB=r_$mode psql_on dst -Atc "select md5(body) from docs where id = 100000022")
	it_assert_eq "$body_before" "$got" "the moved row keeps its own body ($mode)"
	for t in docs other; do
		it_assert_eq "$(table_hash src postgres $t)" "$(table_hash dst r_$mode $t)" "$t equals the source ($mode)"
	done
	[ $mode = copy ] && it_assert_contains "$W/$mode.log" "a partial row whose key is gone is skipped"
	grep -q "no row with key" "$W/$mode.log" && it_fail "a replayed update of a gone row was dirty data ($mode): $(grep "no row with key" "$W/$mode.log")"
	psql_on src -c "select pg_drop_replication_slot('syncd_rr_$mode')" >/dev/null
	it_pass "a resumed copy from a newer snapshot with replays over it: equal, the moved row's body its own ($mode)"
done
