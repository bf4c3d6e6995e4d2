#!/bin/bash
# Partial rows (DESIGN §5 "A partial row is an UPDATE"), in both write
# modes, on tables whose columns are all NOT NULL with a TOASTed `body`
# kept out of line: an UPDATE that leaves body unchanged, a key move with
# body unchanged (alone, and after an update of the same row in one
# transaction), and the soft deletes of logical_delete (with and without a
# udf field) are applied as UPDATEs of the destination row, never as
# inserts (which NOT NULL refuses with 23502). A partial change whose key
# is missing at the destination cannot be inserted: with [dirty] off the
# job fails naming table, key, columns and the fix (SQLSTATE 02000) with
# its LSN unconfirmed; with [dirty] on it is archived once and the job goes
# on, also when the same batch is bisected for a row the destination
# refuses (the bisection writes partial rows the same way).
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst

# the body of row g: 200 md5s (6,400 bytes), stored out of line
body="(select string_agg(md5((g * 1000 + i)::text), '') from generate_series(1, 200) i)"
schema="(id int primary key, small int not null, body text not null, tag text not null)"

# sync_wait DB SLOT LOG: until SLOT has confirmed DB's current WAL position;
# fails at once when syncd exits.
sync_wait() {
	lsn=$(DB=$1 psql_on src -Atc "select pg_current_wal_lsn()")
	for _ in $(seq 1 1200); do
		[ "$(psql_on src -Atc "select confirmed_flush_lsn >= '$lsn' from pg_replication_slots where slot_name = '$2'")" = t ] && return 0
		kill -0 "$SYNCD_PID" 2>/dev/null || it_fail "syncd exited: $(tail -n 5 "$3")"
		sleep 0.1
	done
	it_fail "slot $2 did not confirm $lsn within 120 s: $(tail -n 5 "$3")"
}

job() { # job NAME MODE
	cat >"$W/$1.ini" <<INI
[job]
name = $1
mode = incremental
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=$1
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
[sink]
write_mode = $2
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=$1
target.schema = public
batch.interval = 200ms
INI
	psql_on src -c "create database $1" >/dev/null
	psql_on dst -c "create database $1" >/dev/null
}

for mode in upsert copy; do
	# ---- unchanged TOAST and key moves -----------------------------------
	J=pa_$mode
	job $J $mode
	DB=$J psql_on src -c "create table docs $schema; alter table docs alter body set storage external" >/dev/null
	syncd_start "$W/$J.log" "$W/$J.ini"
	DB=$J psql_on src -c "insert into docs select g, g, $body, 'tag' || g from generate_series(1, 5) g" >/dev/null
	sync_wait $J syncd_$J "$W/$J.log"
	it_assert_eq t "$(DB=$J psql_on src -Atc "select pg_relation_size(reltoastrelid) > 0 from pg_class where relname = 'docs'")" "body is stored out of line ($mode)"
	DB=$J psql_on src -c "update docs set small = small + 1" >/dev/null
	sync_wait $J syncd_$J "$W/$J.log"
	it_assert_eq "$(table_hash src $J docs)" "$(table_hash dst $J docs)" "after an update with body unchanged ($mode)"
	DB=$J psql_on src -c "update docs set tag = tag || '!' where id = 2" -c "update docs set id = id + 1000 where id <= 3" >/dev/null
	sync_wait $J syncd_$J "$W/$J.log"
	it_assert_eq "$(table_hash src $J docs)" "$(table_hash dst $J docs)" "after key moves with body unchanged ($mode)"
	DB=$J psql_on src >/dev/null <<'SQL'
begin;
update docs set small = small + 10 where id = 4;
update docs set id = id + 1000 where id = 4;
update docs set tag = 'moved' where id = 1004;
commit;
SQL
	sync_wait $J syncd_$J "$W/$J.log"
	it_assert_eq "$(table_hash src $J docs)" "$(table_hash dst $J docs)" "after an update and a move in one transaction ($mode)"
	it_assert_eq "5:6:6400,1001:2:6400,1002:3:6400,1003:4:6400,1004:15:6400" "$(DB=$J psql_on dst -Atc "select string_agg(id || ':' || small || ':' || length(body), ',' order by id) from docs")" "destination rows ($mode)"
	it_pass "updates and key moves with body unchanged applied on NOT NULL columns ($mode)"

	# ---- a partial change of a key the destination lacks -----------------
	DB=$J psql_on dst -c "delete from docs where id = 1001" >/dev/null
	DB=$J psql_on src -c "update docs set small = small + 1 where id = 1001" >/dev/null
	lsn=$(DB=$J psql_on src -Atc "select pg_current_wal_lsn()")
	for _ in $(seq 1 300); do kill -0 "$SYNCD_PID" 2>/dev/null || break; sleep 0.1; done
	wait "$SYNCD_PID" && rc=0 || rc=$?
	it_assert_eq 1 "$rc" "exit code of a partial change of a missing key, dirty off ($mode)"
	it_assert_contains "$W/$J.log" "was refused with SQLSTATE 02000: no row with key (id)=(1001) in target table public.docs: the change carries only some columns (body unchanged), so it cannot be inserted; copy the row from the source or re-sync the table"
	it_assert_eq t "$(psql_on src -Atc "select confirmed_flush_lsn < '$lsn' from pg_replication_slots where slot_name = 'syncd_$J'")" "nothing confirmed past the refused change ($mode)"
	it_pass "dirty off: the partial change of a missing key fails the job, naming table, key, columns and fix ($mode)"

	cat >>"$W/$J.ini" <<INI
[dirty]
enabled = true
threshold = 10
policy = archive
[archiver]
plugin = file
directory = $W/dirty-$J
INI
	DB=$J psql_on dst -c "alter table docs add constraint no_666 check (small <> 666)" >/dev/null
	syncd_start "$W/$J.log" "$W/$J.ini"
	sync_wait $J syncd_$J "$W/$J.log"
	# one batch: partial rows of a missing key and of a refused value,
	# bisected; the others applied
	DB=$J psql_on src >/dev/null <<SQL
begin;
update docs set small = small + 1;
update docs set small = 666 where id = 1002;
insert into docs select g, g, $body, 'new' from generate_series(6, 7) g;
commit;
SQL
	sync_wait $J syncd_$J "$W/$J.log"
	# the missing key refused by the first writing of a batch, then the
	# batch written again for a refused full row: archived once
	DB=$J psql_on src >/dev/null <<SQL
begin;
update docs set small = small + 1 where id in (1001, 1003);
insert into docs values (8, 666, 'b', 'refused');
commit;
SQL
	sync_wait $J syncd_$J "$W/$J.log"
	syncd_stop "$SYNCD_PID" "$W/$J.log"
	cat "$W"/dirty-$J/*.jsonl >"$W/$J.dirty"
	recs=$(jq -r '[.op, .key.id, .sqlstate, .target_schema + "." + .target_table] | join(" ")' "$W/$J.dirty" | sort)
	it_assert_eq "insert 8 23514 public.docs
update 1001 02000 public.docs
update 1001 02000 public.docs
update 1001 02000 public.docs
update 1002 23514 public.docs" "$recs" "dirty records ($mode)"
	it_assert_eq 3 "$(jq -r 'select(.sqlstate == "02000") | .message' "$W/$J.dirty" | grep -c 'no row with key (id)=(1001) in target table public.docs')" "archived messages ($mode)"
	it_assert_eq "$(table_hash src $J "(select * from docs where id not in (1001, 1002, 8))")" "$(table_hash dst $J "(select * from docs where id not in (1001, 1002, 8))")" "rows around the dirty ones ($mode)"
	it_assert_eq 0 "$(DB=$J psql_on dst -Atc "select count(*) from docs where id = 1001")" "the missing key is not inserted ($mode)"
	it_pass "dirty on: partial changes of a missing key archived once, the job goes on, bisection applies partial rows ($mode)"

	# ---- soft deletes (logical_delete), with and without a udf field -----
	J=pl_$mode
	job $J $mode
	DB=$J psql_on src -c "create table docs $schema; alter table docs alter body set storage external" \
		-c "create table docs_u $schema; alter table docs_u alter body set storage external" >/dev/null
	# upsert: logical_delete, then udf (the field of a constant is known in
	# a soft delete); copy: the reference's [sink] keys (run after udf)
	ld='[transform.soft]
plugin = logical_delete'
	udf='[transform.extra]
plugin = udf
tables = public.docs_u
field.origin = varchar(128) : concat(source.schema, '"'.'"', source.table)
field.tagx = text : concat(#tag, '"'!'"')'
	if [ $mode = upsert ]; then
		printf '%s\n%s\n' "$ld" "$udf" >>"$W/$J.ini"
	else
		sed -i 's/^batch.interval = 200ms$/&\nlogical.delete.enabled = true/' "$W/$J.ini"
		printf '%s\n' "$udf" >>"$W/$J.ini"
	fi
	syncd_start "$W/$J.log" "$W/$J.ini"
	for t in docs docs_u; do
		DB=$J psql_on src -c "insert into $t select g, g, $body, 'tag' || g from generate_series(1, 5) g" >/dev/null
	done
	sync_wait $J syncd_$J "$W/$J.log"
	for t in docs docs_u; do
		DB=$J psql_on src -c "delete from $t where id in (1, 2)" -c "update $t set small = small + 1 where id = 3" >/dev/null
	done
	sync_wait $J syncd_$J "$W/$J.log"
	for t in docs docs_u; do
		it_assert_eq "$(table_hash src $J $t)" "$(table_hash dst $J "(select id, small, body, tag from $t where not logical_is_deleted)")" "live rows of $t ($mode)"
		it_assert_eq "1:1:6400:tag1,2:2:6400:tag2" "$(DB=$J psql_on dst -Atc "select string_agg(id || ':' || small || ':' || length(body) || ':' || tag, ',' order by id) from $t where logical_is_deleted")" "soft-deleted rows of $t keep their values ($mode)"
	done
	it_assert_eq "5 5" "$(DB=$J psql_on dst -Atc "select count(*) filter (where origin = 'public.docs_u') || ' ' || count(*) filter (where tagx = tag || '!') from docs_u")" "udf fields ($mode)"
	syncd_stop "$SYNCD_PID" "$W/$J.log"
	it_pass "soft deletes on NOT NULL columns, with and without a udf field ($mode)"
done
