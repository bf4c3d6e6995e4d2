#!/bin/bash
# Tables copied while the job streams (issue 19, items 2 and 3), in both
# write modes, under a load of small transactions on the tables involved:
#  A. a table created while the job runs, with 200,000 rows and changes
#     to them while it is copied: added to syncd's publication, created at
#     the destination, copied from a snapshot, streamed from there
#  B. syncd --resync TABLE while the job runs, after rows of the target
#     were deleted and altered by hand; another table takes changes
#     meanwhile and keeps streaming (its rows reach the destination during
#     the copy)
#  C. a table renamed out of the selection: reported, its target left as
#     it is; a table without a primary key: named once, not synced; given
#     one, it is taken
#  D. syncd --resync TABLE with the job stopped: recorded, done at the
#     next start
#  E. kill -9 in the middle of a copy: the next start copies it again
#  F. partitions attached or created under load (see below)
#  G. kill -9 after an ATTACH with rows, before the copy it asks for is
#     recorded: the next start copies the partitioned table again
#  H. (upsert) a table dropped, one renamed away and one renamed within
#     tables while the stream is behind them: the rows they took before
#     reach their targets; the last joins under its new name
# After each: every destination table equals its source (count and md5 of
# every row).
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst

job() { # job MODE
	cat >"$W/$1.ini" <<INI
[job]
name = lt_$1
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=l_$1
tables = public.t*
status.interval = 200ms
[sink]
write_mode = $1
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=l_$1
target.schema = public
auto_create_table = true
batch.interval = 200ms
INI
}
load_start() { # load_start MODE TABLE...: pgbench, small transactions on each
	m=$1
	shift
	rm -f "$W/load.sql"
	for t in "$@"; do
		cat >>"$W/load.sql" <<SQL
\\set id random(1, 150000)
\\set n random(2000000, 2000000000)
insert into $t (id, v) values (:n, 'load') on conflict (id) do update set v = excluded.v || '!';
update $t set v = v || '+' where id = :id;
delete from $t where id = :id + 7;
SQL
	done
	"$PGBIN/pgbench" -n -h 127.0.0.1 -p "$src_PORT" -U postgres -c 2 -T 600 \
		-f "$W/load.sql" "l_$m" >"$W/pgbench.log" 2>&1 &
	LOAD_PID=$!
	sleep 0.5
}
load_stop() { kill -TERM "$LOAD_PID" 2>/dev/null; wait "$LOAD_PID" || true; }
copies() { grep -c "copied while streaming; its" "$W/$mode.log" || true; }
# wait_copies N: until the log tells N copies done and none waits
wait_copies() {
	for _ in $(seq 1 1200); do
		[ "$(copies)" -ge "$1" ] && [ ! -e "$W/state/lt_$mode/resync" ] && return 0
		kill -0 "$SYNCD_PID" 2>/dev/null || it_fail "syncd exited: $(tail -n 20 "$W/$mode.log")"
		sleep 0.1
	done
	it_fail "$mode: $1 copies while streaming not done: $(tail -n 20 "$W/$mode.log")"
}
# logged TEXT...: waits up to 15 s until the job's log has every TEXT
logged() {
	for _ in $(seq 1 150); do
		local all=1
		for x in "$@"; do grep -qF "$x" "$W/$mode.log" || all=0; done
		[ $all = 1 ] && return 0
		sleep 0.1
	done
}
synced() { slot_wait src "syncd_lt_$mode" "$(S 'select pg_current_wal_lsn()')"; }
same() { # same TABLE WHAT
	a=$(table_hash src "l_$mode" "$1")
	b=$(table_hash dst "l_$mode" "$1")
	it_assert_eq "$a" "$b" "$mode $2: $1 equals its source"
}

for mode in upsert copy; do
	S() { DB=l_$mode psql_on src -Atc "$1"; }
	D() { DB=l_$mode psql_on dst -Atc "$1"; }
	psql_on src -c "create database l_$mode" >/dev/null
	psql_on dst -c "create database l_$mode" >/dev/null
	S "create table t1 (id int primary key, v text)" >/dev/null
	S "insert into t1 select g, 'v' || g from generate_series(1, 1000) g" >/dev/null
	S "create table t2 (id int primary key, v text, big text)" >/dev/null
	S "insert into t2 select g, 'w' || g, case when g % 1000 = 0 then repeat(md5(g::text), 300) end from generate_series(1, 150000) g" >/dev/null
	job $mode
	syncd_start "$W/$mode.log" "$W/$mode.ini"

	# A: a new table, copied while changes to it and to t1 go on
	DB=l_$mode psql_on src >/dev/null <<'SQL'
begin;
create table t_new (id int primary key, v text, big text);
insert into t_new select g, 'n' || g, case when g % 1000 = 0 then repeat(md5(g::text), 300) end from generate_series(1, 200000) g;
commit;
SQL
	load_start $mode t_new t1
	wait_copies 1
	sleep 1
	load_stop
	synced
	same t_new "A (new table)"
	same t1 "A (the other table)"
	it_assert "$mode A: the publication has t_new" \
		[ "$(S "select count(*) from pg_publication_tables where pubname = 'dbz_publication' and tablename = 't_new'")" = 1 ]
	it_assert "$mode A: the copy is logged with its snapshot" \
		grep -q "copying l_$mode.public.t_new while streaming, from the snapshot" "$W/$mode.log"
	it_pass "$mode A: a table created while streaming, copied under load"

	# B: --resync of a damaged target while t2 and t1 take changes
	D "delete from t2 where id % 3 = 0" >/dev/null
	D "update t2 set v = 'damaged' where id % 5 = 0" >/dev/null
	load_start $mode t2 t1
	before=$(D "select count(*) from t1")
	rc=0
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$mode.ini" --resync public.t2 >"$W/resync.out" 2>&1 || rc=$?
	it_assert_eq 0 "$rc" "$mode B: --resync exit code ($(cat "$W/resync.out"))"
	it_assert_contains "$W/resync.out" "l_$mode.public.t2: handed to the running job"
	it_assert_contains "$W/resync.out" "l_$mode.public.t2: copied again"
	after=$(D "select count(*) from t1")
	it_assert "$mode B: t1 kept streaming during the copy ($before -> $after rows)" [ "$after" -gt "$before" ]
	load_stop
	synced
	same t2 "B (--resync)"
	same t1 "B (the other table)"
	same t_new "B"
	it_assert "$mode B: changes of t2 were held during its copy" \
		grep -Eq "public.t2 copied while streaming; its [1-9][0-9]* change" "$W/$mode.log"
	it_pass "$mode B: --resync of a damaged table while streaming"

	# C: renamed out of the selection; a table without a primary key
	S "alter table t_new rename to gone_new" >/dev/null
	S "create table t_nokey (id int, v text)" >/dev/null
	S "insert into t_nokey values (1, 'a')" >/dev/null
	logged "t_new in database \"l_$mode\" left the selection" \
		"t_nokey in database \"l_$mode\" matches tables but is not synced: it has no primary key"
	it_assert_contains "$W/$mode.log" "table public.t_new in database \"l_$mode\" left the selection while streaming (it is now public.gone_new"
	it_assert_contains "$W/$mode.log" "table public.t_nokey in database \"l_$mode\" matches tables but is not synced: it has no primary key"
	S "insert into gone_new values (3000000, 'after the rename')" >/dev/null
	S "alter table t_nokey add primary key (id)" >/dev/null
	S "insert into t_nokey values (2, 'b')" >/dev/null
	wait_copies 3
	synced
	same t_nokey "C (given a key)"
	it_assert_eq "0" "$(D "select count(*) from t_new where id = 3000000")" "$mode C: the renamed table's changes stay out of its target"
	it_assert_eq "0" "$(D "select count(*) from information_schema.tables where table_name = 'gone_new'")" "$mode C: no target for the new name"
	syncd_alive "C" "$W/$mode.log"
	it_pass "$mode C: a table renamed away and one without a key"

	# H: a table dropped and one renamed away while the stream is still
	# behind them (a large transaction on t2 ahead): the rows they took
	# before go to their targets, whenever the watch reads the catalog
	if [ "$mode" = upsert ]; then
		n=$(copies)
		S "create table t_drop (id int primary key, v text)" >/dev/null
		S "create table t_ren (id int primary key, v text)" >/dev/null
		S "create table t_mv (id int primary key, v text)" >/dev/null
		wait_copies $((n + 3))
		S "insert into t2 select g, 'bulk' from generate_series(1000001, 1400000) g" >/dev/null
		S "insert into t_drop select g, 'd' from generate_series(1, 500) g" >/dev/null
		S "insert into t_ren select g, 'r' from generate_series(1, 500) g" >/dev/null
		S "drop table t_drop" >/dev/null
		S "insert into t_mv select g, 'm' from generate_series(1, 500) g" >/dev/null
		S "alter table t_ren rename to gone_ren" >/dev/null
		S "alter table t_mv rename to t_moved" >/dev/null
		S "insert into t_moved values (501, 'after the rename')" >/dev/null
		wait_copies $((n + 4))
		synced
		logged "t_drop in database \"l_$mode\" left the selection" \
			"t_ren in database \"l_$mode\" left the selection"
		it_assert_contains "$W/$mode.log" "table public.t_drop in database \"l_$mode\" left the selection while streaming (dropped)"
		it_assert_contains "$W/$mode.log" "table public.t_ren in database \"l_$mode\" left the selection while streaming (it is now public.gone_ren"
		it_assert_eq 500 "$(D "select count(*) from t_drop")" "$mode H: rows of t_drop before its drop"
		it_assert_eq 500 "$(D "select count(*) from t_ren")" "$mode H: rows of t_ren before its rename"
		it_assert_contains "$W/$mode.log" "table public.t_mv in database \"l_$mode\" was renamed to public.t_moved while streaming, which tables selects too: it joins under its new name"
		it_assert_eq 500 "$(D "select count(*) from t_mv")" "$mode H: rows of t_mv before its rename"
		same t_moved "H (renamed within tables)"
		S "delete from t2 where id > 1000000" >/dev/null
		syncd_alive "H" "$W/$mode.log"
		it_pass "$mode H: tables dropped or renamed away behind the stream keep the rows they took before"
	fi
	syncd_stop "$SYNCD_PID" "$W/$mode.log"

	# D: --resync with the job stopped: at the next start
	D "delete from t1 where id <= 100" >/dev/null
	rc=0
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$mode.ini" --resync t1 >"$W/resync.out" 2>&1 || rc=$?
	it_assert_eq 0 "$rc" "$mode D: --resync exit code ($(cat "$W/resync.out"))"
	it_assert_contains "$W/resync.out" "l_$mode.public.t1: copied again at the job's next start"
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$mode.ini" --preview >"$W/preview.out" 2>&1 ||
		it_fail "$mode D: --preview failed: $(tail -n 3 "$W/preview.out")"
	it_assert_contains "$W/preview.out" "copied again while streaming (syncd --resync, or a table that joined): l_$mode.public.t1"
	n=$(copies)
	S "insert into t1 values (5000000, 'while stopped')" >/dev/null
	syncd_start "$W/$mode.log" "$W/$mode.ini"
	wait_copies $((n + 1))
	synced
	same t1 "D (--resync at the next start)"
	it_pass "$mode D: --resync recorded while stopped, done at the next start"

	# E: kill -9 during a copy; the next start copies it again
	D "delete from t2 where id % 2 = 0" >/dev/null
	n=$(copies)
	load_start $mode t2
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$mode.ini" --resync public.t2 >"$W/resync.out" 2>&1 &
	RPID=$!
	for _ in $(seq 1 300); do
		grep -q "copying l_$mode.public.t2 while streaming" <(tail -n 5 "$W/$mode.log") && break
		sleep 0.05
	done
	kill -9 "$SYNCD_PID"
	wait "$SYNCD_PID" 2>/dev/null || true
	rc=0
	wait "$RPID" || rc=$?
	it_assert_eq 3 "$rc" "$mode E: --resync says the job stopped ($(cat "$W/resync.out"))"
	it_assert "$mode E: the request waits for the next start" [ -e "$W/state/lt_$mode/resync" ]
	syncd_start "$W/$mode.log" "$W/$mode.ini"
	wait_copies $((n + 1))
	load_stop
	synced
	same t2 "E (kill -9 during the copy)"
	same t1 "E"
	it_pass "$mode E: a copy cut by kill -9 is done again at the next start"
	syncd_stop "$SYNCD_PID" "$W/$mode.log"
done

# F. partitions under load: with partitions = root, a table with rows
#    attached to the synced root (its rows are in no change) makes the root
#    be copied again; with partitions = leaf, a partition created while
#    streaming is a new table, copied and streamed. The default
#    status.interval (10 s): the partitions are looked at that often, and
#    the slot has long passed the ATTACH by then
mode=upsert
for parts in root leaf; do
	S() { DB=p_$parts psql_on src -Atc "$1"; }
	D() { DB=p_$parts psql_on dst -Atc "$1"; }
	psql_on src -c "create database p_$parts" >/dev/null
	psql_on dst -c "create database p_$parts" >/dev/null
	DB=p_$parts psql_on src >/dev/null <<'SQL'
create table m (id int primary key, v text) partition by range (id);
create table m1 partition of m for values from (1) to (100001);
create table m2 partition of m for values from (100001) to (200001);
insert into m select g, 'v' || g from generate_series(1, 150000) g;
SQL
	cat >"$W/p_$parts.ini" <<INI
[job]
name = lp_$parts
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=p_$parts
tables = public.m*
partitions = $parts
[sink]
write_mode = upsert
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=p_$parts
target.schema = public
auto_create_table = true
batch.interval = 200ms
INI
	mode=p_$parts
	cp /dev/null "$W/$mode.log"
	syncd_start "$W/$mode.log" "$W/p_$parts.ini"
	cat >"$W/load.sql" <<SQL
\\set id random(1, 150000)
update m set v = v || '+' where id = :id;
insert into m values (:id % 50000 + 150001, 'new') on conflict (id) do nothing;
SQL
	"$PGBIN/pgbench" -n -h 127.0.0.1 -p "$src_PORT" -U postgres -c 2 -T 600 \
		-f "$W/load.sql" "p_$parts" >"$W/pgbench.log" 2>&1 &
	LOAD_PID=$!
	if [ $parts = root ]; then
		S "create table m_old (id int primary key, v text)" >/dev/null
		S "insert into m_old select g, 'old' || g from generate_series(200001, 230000) g" >/dev/null
		S "alter table m attach partition m_old for values from (200001) to (300001)" >/dev/null
		# m_old may first join as a table of its own (a watch between
		# the CREATE and the ATTACH): wait for the copy of m
		for _ in $(seq 1 900); do grep -q "p_root.public.m copied while streaming; its" "$W/$mode.log" && break; sleep 0.1; done
		it_assert_contains "$W/$mode.log" "partition public.m_old was attached to public.m in database \"p_root\" with rows it held before"
		it_assert_contains "$W/$mode.log" "p_root.public.m copied while streaming"
	else
		S "create table m3 partition of m for values from (200001) to (300001)" >/dev/null
		S "insert into m3 select g, 'm3 ' || g from generate_series(200001, 230000) g" >/dev/null
		for _ in $(seq 1 900); do grep -q "p_leaf.public.m3 copied while streaming; its" "$W/$mode.log" && break; sleep 0.1; done
		it_assert_contains "$W/$mode.log" "p_leaf.public.m3 copied while streaming"
	fi
	sleep 1
	kill -TERM "$LOAD_PID" 2>/dev/null || true
	wait "$LOAD_PID" || true
	slot_wait src "syncd_lp_$parts" "$(S 'select pg_current_wal_lsn()')"
	if [ $parts = root ]; then
		a=$(table_hash src "p_$parts" m)
		b=$(table_hash dst "p_$parts" m)
		it_assert_eq "$a" "$b" "partitions = root: m (with the attached rows) equals its source"
	else
		for t in m1 m2 m3; do
			a=$(table_hash src "p_$parts" $t)
			b=$(table_hash dst "p_$parts" $t)
			it_assert_eq "$a" "$b" "partitions = leaf: $t equals its source"
		done
	fi
	it_pass "F: partitions = $parts, a partition attached under load"
	syncd_stop "$SYNCD_PID" "$W/$mode.log"
done

# G. kill -9 after an ATTACH with rows it held before (partitions = root,
#    status.interval = 60s: the partitions are read at the start, then on a
#    Relation message of the root or a minute later). The slot is moved
#    past the ATTACH (its catalog_xmin too) by changes of another table
#    and checkpoints; a start that took the link as old by the slot's
#    position would never copy the attached rows.
#    G1: kill -9 before any look at the partitions has seen the ATTACH;
#    G2: kill -9 just after a look saw it (a change of the root), before
#        the copy it asks for is recorded.
S() { DB=p_kill psql_on src -Atc "$1"; }
psql_on src -c "create database p_kill" >/dev/null
psql_on dst -c "create database p_kill" >/dev/null
DB=p_kill psql_on src >/dev/null <<'SQL'
create table m (id int primary key, v text) partition by range (id);
create table m1 partition of m for values from (1) to (100001);
insert into m select g, 'v' || g from generate_series(1, 1000) g;
create table z (id int primary key, v text);
SQL
cat >"$W/p_kill.ini" <<INI
[job]
name = lp_kill
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=p_kill
tables = public.m, public.z
partitions = root
status.interval = 60s
[sink]
write_mode = upsert
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=p_kill
target.schema = public
auto_create_table = true
batch.interval = 200ms
INI
mode=p_kill
passed() { # passed XID: the slot's catalog_xmin is past transaction XID
	S "select age(catalog_xmin) < age('$1'::xid) from pg_replication_slots where slot_name = 'syncd_lp_kill'"
}
dst_wait_count() { # until m at the destination has as many rows as at the source
	want=$(S "select count(*) from m")
	for _ in $(seq 1 600); do
		[ "$(DB=p_kill psql_on dst -Atc "select count(*) from m")" = "$want" ] && return 0
		sleep 0.1
	done
}
syncd_start "$W/$mode.log" "$W/p_kill.ini"
sleep 1
for g in 1 2; do
	lo=$((g * 100000 + 100001))
	S "create table m_old$g (id int primary key, v text)" >/dev/null
	S "insert into m_old$g select g, 'old' || g from generate_series($lo, $((lo + 2999))) g" >/dev/null
	S "alter table m attach partition m_old$g for values from ($lo) to ($((lo + 100000)))" >/dev/null
	link=$(S "select xmin from pg_inherits where inhrelid = 'm_old$g'::regclass")
	for i in $(seq 1 50); do
		S "insert into z values ($((g * 1000 + i)), 'after')" >/dev/null
		S "checkpoint" >/dev/null
		sleep 0.2
		[ "$(passed "$link")" = t ] && break
	done
	it_assert_eq t "$(passed "$link")" "G$g: the slot's catalog_xmin is past the ATTACH before kill -9"
	if [ $g = 2 ]; then
		n=$(grep -c "m_old2 was attached to public.m" "$W/$mode.log" || true)
		S "insert into m values (2002, 'a change of the root')" >/dev/null
		for _ in $(seq 1 300); do
			[ "$(grep -c "m_old2 was attached to public.m" "$W/$mode.log")" -gt "$n" ] && break
			sleep 0.02
		done
		it_assert_contains "$W/$mode.log" "partition public.m_old2 was attached to public.m in database \"p_kill\" with rows it held before"
	fi
	kill -9 "$SYNCD_PID"
	wait "$SYNCD_PID" 2>/dev/null || true
	it_log "G$g: killed; $(grep -c "joined the selection" "$W/$mode.log") request(s) recorded so far"
	syncd_start "$W/$mode.log" "$W/p_kill.ini"
	dst_wait_count
	it_assert_eq "$(table_hash src p_kill m)" "$(table_hash dst p_kill m)" \
		"G$g: m, with the rows of m_old$g attached before kill -9, equals its source"
	it_assert_eq "$(table_hash src p_kill z)" "$(table_hash dst p_kill z)" "G$g: z equals its source"
	it_pass "G$g: an ATTACH with rows just before kill -9 is copied after the restart"
done
# a fast shutdown of the source is not held up by the job
S "insert into m values (5000, 'before the shutdown')" >/dev/null
sleep 1
t0=$(date +%s%N)
pg_stop src
ms=$((($(date +%s%N) - t0) / 1000000))
it_assert "G: pg_ctl stop -m fast of the source took $ms ms (20 s at most)" test "$ms" -lt 20000
pg_restart src
syncd_alive "G: the source's fast shutdown" "$W/$mode.log"
S "insert into m values (5001, 'after the restart')" >/dev/null
dst_wait_count
it_assert_eq "$(table_hash src p_kill m)" "$(table_hash dst p_kill m)" "G: m equals its source after the source's fast restart"
it_pass "G: a fast shutdown of the source with the job running"
syncd_stop "$SYNCD_PID" "$W/$mode.log"
