#!/bin/bash
# Partitioned tables (issue 13, defect 7): `[source] partitions = root`
# (the default on PostgreSQL 13+), in both write modes, full+incremental:
# a partitioned table `payment` (a range partition, one sub-partitioned by
# hash: three levels, and a leaf attached before the job whose columns are
# in another order, with a dropped column) arrives as ONE target `payment`
# holding every partition's rows, with the root's primary key in its own
# order (payment_date, payment_id); no partition becomes a target of its
# own; --preview shows payment and its partition count. While the job
# runs: inserts into every partition, updates, a row moved to another
# partition by an update of the partition key, deletes: the target equals
# the source. Then a table holding rows is ATTACHed: those rows are in no
# change (an ATTACH writes none), so the job names the partition and copies
# the root again while it streams; a DETACH before it is named in a warning
# (its rows stay at the destination).
# The full phase copies a 3 MB leaf in block ranges (copy.chunk.size).
# Then, mode = incremental, both write modes: a TRUNCATE of one partition,
# or of every partition one by one (PostgreSQL does not replicate either
# under publish_via_partition_root), stops the job naming them, while a
# TRUNCATE of the root empties the target; existing
# publications: another consumer's without publish_via_partition_root is
# refused by --check with the ALTER its owner must run or partitions =
# leaf; one syncd created is altered; partitions = leaf syncs each leaf as
# a table of its own (a syncd publication is altered back to false, a
# partition created while it runs is copied and synced); a partition named in tables
# is refused in root mode.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst
: >"$W/failures"
failed() {
	it_log "FAIL: $*"
	printf '%s\n' "$*" | head -n 1 >>"$W/failures"
}

# same WHAT DB: the destination's payment equals the source's, or the
# failure names the first differing rows
same() {
	want=$(table_hash src "$2" payment)
	got=$(table_hash dst "$2" payment 2>&1) || true
	[ "$want" = "$got" ] && return 0
	failed "$1: payment differs: source $want, destination $got"
	DB=$2 psql_on src -Atc "select t::text from payment t order by 1" >"$W/a" 2>&1 || true
	DB=$2 psql_on dst -Atc "select t::text from payment t order by 1" >"$W/b" 2>&1 || true
	diff "$W/a" "$W/b" | grep '^[<>]' | head -n 8 | sed 's/^</  source only:/; s/^>/  destination only:/' >&2 || true
}

for mode in upsert copy; do
	db=p_$mode
	psql_on src -c "create database $db" >/dev/null
	psql_on dst -c "create database $db" >/dev/null
	DB=$db psql_on src >/dev/null <<'SQL'
create table payment (payment_id int, customer_id int not null,
  amount numeric(5,2) not null, note text, payment_date timestamptz not null,
  primary key (payment_date, payment_id)) partition by range (payment_date);
create table payment_p2022_01 partition of payment
  for values from ('2022-01-01 00:00+00') to ('2022-02-01 00:00+00');
create table payment_p2022_02 partition of payment
  for values from ('2022-02-01 00:00+00') to ('2022-03-01 00:00+00')
  partition by hash (payment_id);
create table payment_p2022_02_h0 partition of payment_p2022_02 for values with (modulus 2, remainder 0);
create table payment_p2022_02_h1 partition of payment_p2022_02 for values with (modulus 2, remainder 1);
-- a leaf whose columns are in another order, with a dropped column
create table payment_p2021_12 (note text, junk int, payment_date timestamptz not null,
  amount numeric(5,2) not null, customer_id int not null, payment_id int not null);
alter table payment_p2021_12 drop column junk;
insert into payment_p2021_12 select 'old ' || g, timestamptz '2021-12-01 00:00+00' + g * interval '1 hour',
  g, g % 3, 5000 + g from generate_series(1, 30) g;
alter table payment attach partition payment_p2021_12
  for values from ('2021-12-01 00:00+00') to ('2022-01-01 00:00+00');
create table plain (id int primary key, v text);
insert into payment select g, g % 7, g / 10.0, 'n' || g,
  timestamptz '2022-01-01 00:00+00' + (g % 50) * interval '1 day' + g * interval '1 second'
  from generate_series(1, 200) g;
insert into plain values (1, 'a');
-- a leaf of about 3 MB: copied in block ranges (copy.chunk.size = 1MB)
insert into payment select g, 1, 1.00, repeat('x', 120),
  timestamptz '2022-01-01 00:00+00' + g * interval '1 second' from generate_series(10001, 30000) g;
analyze payment;
SQL
	cat >"$W/$mode.ini" <<INI
[job]
name = part_$mode
mode = full+incremental
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=$db
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
copy.chunk.size = 1MB
[sink]
write_mode = $mode
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=$db
target.schema = public
batch.interval = 200ms
INI
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$mode.ini" --preview >"$W/$mode.preview" 2>&1 ||
		failed "$mode: --preview failed: $(tail -n 2 "$W/$mode.preview" | tr '\n' ' ')"
	grep -qF "public.payment -> public.payment (" "$W/$mode.preview" ||
		failed "$mode: --preview does not show public.payment -> public.payment: $(grep -- '->' "$W/$mode.preview" | sed 's/ (.*//' | tr '\n' ',')"
	grep -q 'public.payment in database "'"$db"'" is partitioned: synced as one table with its 4 partitions' "$W/$mode.preview" ||
		failed "$mode: --preview does not name payment's 4 partitions: $(grep payment "$W/$mode.preview" | head -n 3 | tr '\n' ' ')"
	! grep -q 'payment_p202' "$W/$mode.preview" ||
		failed "$mode: --preview shows the partitions as tables of their own: $(grep -o 'payment_p2022[a-z0-9_]*' "$W/$mode.preview" | sort -u | tr '\n' ' ')"

	syncd_start "$W/$mode.log" "$W/$mode.ini"
	chunks=$(sed -n 's/.*full copy of stream 0: 2 table(s) in \([0-9]*\) chunk(s).*/\1/p' "$W/$mode.log")
	[ "${chunks:-0}" -ge 7 ] ||
		failed "$mode: the full phase did not copy payment's 4 leaves with the 3 MB one in block ranges: ${chunks:-no} chunks"
	DB=$db psql_on src >/dev/null <<'SQL'
insert into payment select g, g % 7, g / 10.0, 'n' || g,
  timestamptz '2022-01-01 00:00+00' + (g % 50) * interval '1 day' + g * interval '1 second'
  from generate_series(201, 260) g;
update payment set amount = amount + 1 where payment_id % 5 = 0;
-- moves rows from January into February (another partition, another level)
update payment set payment_date = payment_date + interval '31 days'
  where payment_id % 9 = 0 and payment_date < '2022-01-20';
delete from payment where payment_id % 11 = 0;
-- moves rows from the reordered leaf into January
update payment set payment_date = payment_date + interval '20 days' where payment_id between 5010 and 5014;
SQL
	slot_wait src "syncd_part_$mode" "$(DB=$db psql_on src -Atc "select pg_current_wal_lsn()")"
	kill -0 $SYNCD_PID 2>/dev/null || failed "$mode: syncd exited: $(grep ' error ' "$W/$mode.log" | tail -n 2 | tr '\n' ' ')"

	if [ -z "$(DB=$db psql_on dst -Atc "select to_regclass('public.payment')")" ]; then
		failed "$mode: no target table public.payment at the destination (targets: $(DB=$db psql_on dst -Atc "select string_agg(relname, ' ' order by relname) from pg_class where relnamespace = 'public'::regnamespace and relkind in ('r', 'p')"))"
	else
		same "$mode, after the copy, the changes and the attach" "$db"
		key=$(DB=$db psql_on dst -Atc "select string_agg(a.attname, ',' order by k.o) from pg_index i, unnest(i.indkey) with ordinality k(n, o), pg_attribute a where i.indrelid = 'public.payment'::regclass and i.indisprimary and a.attrelid = i.indrelid and a.attnum = k.n")
		[ "$key" = "payment_date,payment_id" ] ||
			failed "$mode: the primary key of the target payment is ($key), the source's is (payment_date,payment_id)"
	fi
	leaves=$(DB=$db psql_on dst -Atc "select string_agg(relname, ' ' order by relname) from pg_class where relname like 'payment\\_p%' and relkind in ('r', 'p')")
	[ -z "$leaves" ] || failed "$mode: partitions became targets of their own: $leaves"
	it_assert_eq "$(table_hash src "$db" plain)" "$(table_hash dst "$db" plain)" "$mode: the plain table beside them"

	# a partition detached while the job runs: its rows stay, named
	DB=$db psql_on src -c "alter table payment detach partition payment_p2021_12" >/dev/null
	for _ in $(seq 1 50); do grep -q 'partition public.payment_p2021_12 left public.payment' "$W/$mode.log" && break; sleep 0.1; done
	grep -q 'warning .*database "'"$db"'": partition public.payment_p2021_12 left public.payment while streaming (DETACH PARTITION or DROP TABLE): no change is sent for its rows, which stay' "$W/$mode.log" ||
		failed "$mode: no warning names the detached partition payment_p2021_12"
	kill -0 $SYNCD_PID 2>/dev/null || failed "$mode: syncd stopped at a DETACH: $(grep ' error ' "$W/$mode.log" | tail -n 1)"
	# a partition attached while the job runs, with rows it held before
	DB=$db psql_on src >/dev/null <<'SQL'
create table payment_p2022_03 (like payment including defaults including constraints);
insert into payment_p2022_03 select g, 1, 1.00, 'attached ' || g,
  timestamptz '2022-03-01 00:00+00' + g * interval '1 minute' from generate_series(1000, 1020) g;
alter table payment attach partition payment_p2022_03
  for values from ('2022-03-01 00:00+00') to ('2022-04-01 00:00+00');
insert into payment select g, 2, 2.00, 'after attach ' || g,
  timestamptz '2022-03-02 00:00+00' + g * interval '1 minute' from generate_series(1100, 1110) g;
SQL
	# the job goes on and copies payment again while streaming
	for _ in $(seq 1 900); do grep -q 'public.payment copied while streaming; its' "$W/$mode.log" && break; sleep 0.1; done
	grep -q 'partition public.payment_p2022_03 was attached to public.payment in database "'"$db"'" with rows it held before' "$W/$mode.log" ||
		failed "$mode: no warning names the attached partition: $(grep ' error ' "$W/$mode.log" | tail -n 2 | tr '\n' ' ')"
	grep -q "$db.public.payment copied while streaming; its" "$W/$mode.log" ||
		failed "$mode: payment was not copied again after the attach: $(tail -n 3 "$W/$mode.log" | tr '\n' ' ')"
	slot_wait src "syncd_part_$mode" "$(DB=$db psql_on src -Atc "select pg_current_wal_lsn()")"
	same "$mode, after an attach with rows" "$db"
	syncd_stop "$SYNCD_PID" "$W/$mode.log"
done

# ---- mode = incremental, existing publications, TRUNCATE, leaf mode
for wmode in upsert copy; do
	db=p_inc_$wmode
	psql_on src -c "create database $db" >/dev/null
	psql_on dst -c "create database $db" >/dev/null
	DB=$db psql_on src >/dev/null <<'SQL'
	create table payment (payment_id int, payment_date date not null, note text,
	  primary key (payment_date, payment_id)) partition by range (payment_date);
	create table pay_a partition of payment for values from ('2022-01-01') to ('2022-02-01');
	create table pay_b partition of payment for values from ('2022-02-01') to ('2022-03-01');
	create publication pub_other for table payment;
SQL
	# the server logs each statement as it starts: the partition watches
	# (their query reads pg_partition_tree(r.oid)) can be counted
	psql_on src -c "alter database $db set log_statement = 'all'" >/dev/null
	cat >"$W/inc_$wmode.ini" <<INI
[job]
name = part_inc_$wmode
mode = incremental
state_dir = $W/state_inc_$wmode
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=$db
publication = pub_other
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
[sink]
write_mode = $wmode
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=$db
target.schema = public
batch.interval = 200ms
INI
	rc=0
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/inc_$wmode.ini" --check >"$W/inc_$wmode.check" 2>&1 || rc=$?
	[ $rc -ne 0 ] || failed "incremental, $wmode: --check passes with another consumer's publication without publish_via_partition_root"
	grep -q 'publication pub_other in database "'"$db"'" is created WITH (publish_via_partition_root = false).*ALTER PUBLICATION "\?pub_other"\? SET (publish_via_partition_root = true)' "$W/inc_$wmode.check" ||
		failed "incremental, $wmode: --check does not name the ALTER its owner must run: $(grep -i 'pub_other' "$W/inc_$wmode.check" | head -n 2 | tr '\n' ' ')"
	grep -q 'partitions = leaf' "$W/inc_$wmode.check" ||
		failed "incremental, $wmode: --check does not suggest partitions = leaf"
	# marked as syncd's: altered at the start
	DB=$db psql_on src -c "comment on publication pub_other is 'created by syncd job part_inc_$wmode'" >/dev/null
	syncd_start "$W/inc_$wmode.log" "$W/inc_$wmode.ini"
	[ "$(DB=$db psql_on src -Atc "select pubviaroot from pg_publication where pubname = 'pub_other'")" = t ] ||
		failed "incremental, $wmode: the publication syncd created was not altered to publish_via_partition_root = true"
	DB=$db psql_on src >/dev/null <<'SQL'
	insert into payment select g, date '2022-01-01' + g % 50, 'n' || g from generate_series(1, 100) g;
	update payment set note = 'moved', payment_date = payment_date + 25 where payment_id % 7 = 0 and payment_date < '2022-01-20';
	delete from payment where payment_id % 10 = 0;
SQL
	slot_wait src syncd_part_inc_$wmode "$(DB=$db psql_on src -Atc "select pg_current_wal_lsn()")"
	same "incremental, $wmode, inserts, moves and deletes" "$db"
	DB=$db psql_on src >/dev/null <<'SQL'
	truncate payment;
	insert into payment values (1, '2022-01-05', 'a'), (2, '2022-02-05', 'b'), (3, '2022-02-06', 'c');
SQL
	slot_wait src syncd_part_inc_$wmode "$(DB=$db psql_on src -Atc "select pg_current_wal_lsn()")"
	same "incremental, $wmode, a TRUNCATE of the root" "$db"
	kill -0 $SYNCD_PID 2>/dev/null || failed "incremental, $wmode: syncd stopped at a TRUNCATE of the root: $(grep ' error ' "$W/inc_$wmode.log" | tail -n 1)"
	# every partition truncated one by one: no TRUNCATE of the root is
	# sent. Right after a second TRUNCATE of the root and the first
	# partition watch that saw it: the detector must tell the two apart
	# from there on (it once took the partitions' new file nodes within
	# two watches of a TRUNCATE of the root for that TRUNCATE's)
	DB=$db psql_on src -c "truncate payment" >/dev/null
	watches=$(grep -c "pg_partition_tree(r.oid)" "$IT_WORK/pg-src/server.log" || true)
	for _ in $(seq 1 100); do
		[ "$(grep -c "pg_partition_tree(r.oid)" "$IT_WORK/pg-src/server.log" || true)" -ge $((watches + 1)) ] && break
		sleep 0.05
	done
	DB=$db psql_on src -c "truncate pay_a, pay_b" >/dev/null
	for _ in $(seq 1 100); do kill -0 $SYNCD_PID 2>/dev/null || break; sleep 0.1; done
	if kill -0 $SYNCD_PID 2>/dev/null; then
		failed "incremental, $wmode: syncd goes on after a TRUNCATE of every partition (not of the root), whose rows stay at the destination"
		syncd_stop "$SYNCD_PID" "$W/inc_$wmode.log"
	else
		wait $SYNCD_PID || true
		grep -q 'every partition of public.payment in database "'"$db"'" (public.pay_a, public.pay_b) was truncated' "$W/inc_$wmode.log" ||
			failed "incremental, $wmode: syncd stopped without naming the truncated partitions: $(grep ' error ' "$W/inc_$wmode.log" | tail -n 1)"
	fi
	# started again (as after a VACUUM FULL); rows for the next case
	syncd_start "$W/inc_$wmode.log" "$W/inc_$wmode.ini"
	DB=$db psql_on src -c "insert into payment values (1, '2022-01-05', 'a'), (2, '2022-02-05', 'b'), (3, '2022-02-06', 'c') on conflict do nothing" >/dev/null
	slot_wait src syncd_part_inc_$wmode "$(DB=$db psql_on src -Atc "select pg_current_wal_lsn()")"
	# a TRUNCATE of one partition is not replicated under publish_via_partition_root
	DB=$db psql_on src -c "truncate pay_b" >/dev/null
	for _ in $(seq 1 100); do kill -0 $SYNCD_PID 2>/dev/null || break; sleep 0.1; done
	if kill -0 $SYNCD_PID 2>/dev/null; then
		failed "incremental, $wmode: syncd goes on after a TRUNCATE of partition pay_b, whose rows stay at the destination"
		syncd_stop "$SYNCD_PID" "$W/inc_$wmode.log"
	else
		wait $SYNCD_PID || true
		grep -q 'partition public.pay_b of public.payment in database "'"$db"'" was truncated' "$W/inc_$wmode.log" ||
			failed "incremental, $wmode: syncd stopped without naming the truncated partition: $(grep ' error ' "$W/inc_$wmode.log" | tail -n 2 | tr '\n' ' ')"
		[ "$(DB=$db psql_on dst -Atc "select count(*) from payment")" = 3 ] ||
			failed "incremental, $wmode: the destination's payment was changed by a TRUNCATE of one partition"
	fi
done
db=p_inc_upsert
cp "$W/inc_upsert.ini" "$W/inc.ini"
# a partition named in tables, with partitions = root
sed 's/^publication = pub_other/publication = pub_other\ntables = public.pay_a/' "$W/inc.ini" >"$W/named.ini"
rc=0
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/named.ini" --check >"$W/named.check" 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q 'table public.pay_a in database "p_inc_upsert" is a partition of public.payment: .*name public.payment in tables instead, or set \[source\] partitions = leaf' "$W/named.check" ||
	failed "root mode: a partition named in tables is not refused with the fix: $(grep -i pay_a "$W/named.check" | head -n 2 | tr '\n' ' ')"
# a glob that matches partitions only
sed 's/^publication = pub_other/publication = pub_other\ntables = public.pay_*/' "$W/inc.ini" >"$W/glob.ini"
rc=0
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/glob.ini" --check >"$W/glob.check" 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q 'it matches partitions only, which partitions = root syncs through their partitioned table' "$W/glob.check" ||
	failed "root mode: a glob matching only partitions does not say so: $(grep ' error ' "$W/glob.check" | head -n 2 | tr '\n' ' ')"
# partitions = leaf: each leaf is a table of its own, the root is not
sed 's/^publication = pub_other/publication = pub_leaf\npartitions = leaf/; s/^name = part_inc/name = part_leaf/' "$W/inc.ini" >"$W/leaf.ini"
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/leaf.ini" --preview >"$W/leaf.preview" 2>&1 ||
	failed "leaf mode: --preview failed: $(tail -n 2 "$W/leaf.preview" | tr '\n' ' ')"
grep -q 'public.pay_a -> ' "$W/leaf.preview" && grep -q 'public.pay_b -> ' "$W/leaf.preview" &&
	! grep -q 'public.payment -> ' "$W/leaf.preview" ||
	failed "leaf mode: --preview does not show each leaf as a table of its own: $(grep -- '->' "$W/leaf.preview" | tr '\n' ' ')"
# leaf mode streaming: a publication syncd created WITH
# (publish_via_partition_root = true) is altered to false; a partition
# created while the job runs is copied and synced
sed -i "s|^state_dir = .*|state_dir = $W/state_leaf|" "$W/leaf.ini"
DB=$db psql_on src >/dev/null <<'SQL'
create publication pub_leaf for table pay_a, pay_b with (publish_via_partition_root = true);
comment on publication pub_leaf is 'created by syncd job part_leaf_upsert';
SQL
syncd_start "$W/leaf.log" "$W/leaf.ini"
[ "$(DB=$db psql_on src -Atc "select pubviaroot from pg_publication where pubname = 'pub_leaf'")" = f ] ||
	failed "leaf mode: the publication syncd created was not altered to publish_via_partition_root = false"
DB=$db psql_on src >/dev/null <<'SQL'
insert into payment values (50, '2022-01-20', 'leaf'), (51, '2022-02-20', 'leaf');
create table pay_d partition of payment for values from ('2022-05-01') to ('2022-06-01');
SQL
slot_wait src syncd_part_leaf_upsert "$(DB=$db psql_on src -Atc "select pg_current_wal_lsn()")"
DB=$db psql_on src -c "insert into pay_d values (60, '2022-05-20', 'leaf')" >/dev/null
for _ in $(seq 1 900); do grep -q 'public.pay_d copied while streaming; its' "$W/leaf.log" && break; sleep 0.1; done
slot_wait src syncd_part_leaf_upsert "$(DB=$db psql_on src -Atc "select pg_current_wal_lsn()")"
it_assert_eq "$(table_hash src "$db" "(select * from pay_a where note = 'leaf')")" "$(table_hash dst "$db" "(select * from pay_a where note = 'leaf')")" "leaf mode: the rows inserted into pay_a"
it_assert_eq "$(table_hash src "$db" "(select * from pay_b where note = 'leaf')")" "$(table_hash dst "$db" "(select * from pay_b where note = 'leaf')")" "leaf mode: the rows inserted into pay_b"
grep -q 'public.pay_d joined the selection' "$W/leaf.log" ||
	failed "leaf mode: the new partition pay_d was not taken: $(tail -n 3 "$W/leaf.log" | tr '\n' ' ')"
it_assert_eq "$(table_hash src "$db" pay_d)" "$(table_hash dst "$db" pay_d)" "leaf mode: the partition created while streaming"
syncd_stop "$SYNCD_PID" "$W/leaf.log"
# a partition with REPLICA IDENTITY NOTHING: publishing the root would
# make the application's UPDATE and DELETE on it fail
DB=$db psql_on src >/dev/null <<'SQL'
create table pay_c partition of payment for values from ('2022-03-01') to ('2022-04-01');
alter table pay_c replica identity nothing;
SQL
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/inc.ini" --preview >"$W/nothing.preview" 2>&1 || true
grep -q 'table public.payment in database "p_inc_upsert" is not synced: it has a partition public.pay_c with REPLICA IDENTITY NOTHING.*ALTER TABLE public.pay_c REPLICA IDENTITY DEFAULT' "$W/nothing.preview" &&
	! grep -q 'public.payment -> ' "$W/nothing.preview" ||
	failed "root mode: a root with a partition of REPLICA IDENTITY NOTHING is not skipped with the fix: $(grep -i payment "$W/nothing.preview" | head -n 3 | tr '\n' ' ')"

if [ -s "$W/failures" ]; then
	it_log "$(wc -l <"$W/failures") failures:"
	sed 's/^/  /' "$W/failures" >&2
	it_fail "$(wc -l <"$W/failures") checks failed (see above)"
fi
it_pass "payment arrives as one table with every partition's rows, in both write modes and both modes; an attach with old rows copies the root again, a TRUNCATE of a partition stops the job; existing publications are altered or refused; leaf mode"
