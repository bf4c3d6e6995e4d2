#!/bin/bash
# Table shapes at the pgoutput source (issue 13): a primary key with
# INCLUDE columns is keyed by its key columns only (deletes and updates
# reach the destination, the auto-created key is (a), a composite key keeps
# its own order); REPLICA IDENTITY NOTHING is never published and is
# refused; REPLICA IDENTITY USING INDEX is refused unless the index is on
# the primary key's columns; a change of identity or key while streaming
# stops the job before the change that follows; tables syncd skips are
# named in --check, --preview and the start log, generated columns in
# --check; the publication's rights are checked (who must run what); a
# publication syncd did not create is never altered; one published via
# its partition root is refused; a database name with a forbidden
# character is refused. ONLY=section runs one section.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst
only() { [ -z "${ONLY:-}" ] || [ "$ONLY" = "$1" ]; }
S() { DB=$1 psql_on src -c "$2" >/dev/null; }
D() { psql_on dst -Atc "$1"; }

job() { # job NAME DB [source lines]; MODE, SRC_USER
	cat >"$W/$1.ini" <<INI
[job]
name = $1
mode = ${MODE:-incremental}
state_dir = $W/state-$1
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=${SRC_USER:-postgres} dbname=$2
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
${3:-}
[sink]
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres
target.schema = public
auto_create_table = true
batch.interval = 100ms
INI
}
run() { # run EXPECTED-EXIT JOB ARGS...: output in $W/JOB.out
	want=$1 name=$2
	shift 2
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$name.ini" "$@" >"$W/$name.out" 2>&1 && rc=0 || rc=$?
	it_assert_eq "$want" "$rc" "exit code of $name $* ($(tail -n 8 "$W/$name.out"))"
}
wait_dst() { # wait_dst SQL EXPECTED
	for _ in $(seq 1 300); do
		[ "$(D "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	it_fail "destination: $1: expected '$2', got '$(D "$1")'"
}
pkdef() { D "select pg_get_constraintdef(oid) from pg_constraint where conrelid = '$1'::regclass and contype = 'p'"; }

if only include; then
	psql_on src -c "create database inc" >/dev/null
	S inc "create table inc (a int, b int, v text, primary key (a) include (b))"
	S inc "create table pay (payment_id int, payment_date date, amount int, primary key (payment_date, payment_id))"
	S inc "insert into inc values (1, null, 'x'), (2, 20, 'y'), (3, 30, 'w')"
	S inc "insert into pay values (1, '2024-01-02', 5), (2, '2024-01-02', 6)"
	MODE=full+incremental job inc inc "tables = public.inc, public.pay"
	syncd_start "$W/inc.log" "$W/inc.ini"
	wait_dst "select count(*) from inc" 3
	it_assert_eq "PRIMARY KEY (a)" "$(pkdef inc)" "auto-created key of inc"
	it_assert_eq "PRIMARY KEY (payment_date, payment_id)" "$(pkdef pay)" "auto-created key of pay, in key order"
	S inc "update inc set b = 21, v = 'z' where a = 2"
	S inc "delete from inc where a = 1"
	S inc "update inc set b = null where a = 3"
	S inc "delete from pay where payment_id = 1"
	wait_dst "select string_agg(a || ':' || coalesce(b::text, '-') || ':' || v, ',' order by a) from inc" "2:21:z,3:-:w"
	wait_dst "select string_agg(payment_id::text, ',') from pay" "2"
	syncd_stop "$SYNCD_PID" "$W/inc.log"
	it_pass "a key with INCLUDE columns is keyed by its key columns; a composite key keeps its order"
fi

if only nothing; then
	psql_on src -c "create database nothing" >/dev/null
	S nothing "create table kept (id int primary key, v text)"
	S nothing "create table nothing_t (id int primary key, v text)"
	S nothing "alter table nothing_t replica identity nothing"
	S nothing "insert into nothing_t values (1, 'a')"
	job nothing nothing
	run 0 nothing --check
	it_assert_contains "$W/nothing.out" 'table public.nothing_t in database "nothing" is not synced: it has REPLICA IDENTITY NOTHING'
	syncd_start "$W/nothing.log" "$W/nothing.ini"
	syncd_stop "$SYNCD_PID" "$W/nothing.log"
	it_assert_eq "kept" "$(DB=nothing psql_on src -Atc "select string_agg(tablename, ',') from pg_publication_tables")" "published tables"
	S nothing "update nothing_t set v = 'b'"
	S nothing "delete from nothing_t"
	job nothing2 nothing "tables = public.*"
	run 3 nothing2 --check
	it_assert_contains "$W/nothing2.out" 'table public.nothing_t in database "nothing" has REPLICA IDENTITY NOTHING: '
	it_assert_contains "$W/nothing2.out" 'run ALTER TABLE public.nothing_t REPLICA IDENTITY DEFAULT, or leave it out of tables'
	run 1 nothing2
	it_assert_contains "$W/nothing2.out" 'has REPLICA IDENTITY NOTHING'
	it_pass "REPLICA IDENTITY NOTHING is never published, and refused when named"
fi

if only index; then
	psql_on src -c "create database ri" >/dev/null
	S ri "create table ri_u (id int primary key, u int not null unique)"
	S ri "alter table ri_u replica identity using index ri_u_u_key"
	S ri "create table ri_pk (a int, b int, v text, primary key (a, b))"
	S ri "create unique index ri_pk_ba on ri_pk (b, a)"
	S ri "alter table ri_pk replica identity using index ri_pk_ba"
	S ri "insert into ri_pk values (1, 1, 'x'), (2, 2, 'y')"
	job riu ri "tables = public.ri_u"
	run 3 riu --check
	it_assert_contains "$W/riu.out" 'table public.ri_u in database "ri" has REPLICA IDENTITY USING INDEX ri_u_u_key on (u), not on its primary key (id)'
	it_assert_contains "$W/riu.out" 'run ALTER TABLE public.ri_u REPLICA IDENTITY DEFAULT (or FULL), or leave it out of tables'
	run 1 riu
	it_assert_eq 0 "$(DB=ri psql_on src -Atc "select count(*) from pg_replication_slots where database = 'ri'")" "no slot for a refused job"
	MODE=full+incremental job ripk ri "tables = public.ri_pk"
	run 0 ripk --check
	syncd_start "$W/ripk.log" "$W/ripk.ini"
	wait_dst "select count(*) from ri_pk" 2
	S ri "delete from ri_pk where a = 1"
	S ri "update ri_pk set a = 3 where a = 2"
	wait_dst "select string_agg(a || ':' || b || ':' || v, ',' order by a) from ri_pk" "3:2:y"
	syncd_stop "$SYNCD_PID" "$W/ripk.log"
	it_pass "USING INDEX is refused with the ALTER, accepted on the primary key's columns"
fi

if only change; then
	psql_on src -c "create database chg" >/dev/null
	S chg "create table chg (id int primary key, u int not null unique, v text)"
	S chg "insert into chg values (1, 1, 'a')"
	MODE=full+incremental job chg chg "tables = public.chg"
	# no heartbeat: it could be confirmed between the ALTER and the insert
	sed -i 's/^heartbeat.interval = 1s$/heartbeat.interval = 0/' "$W/chg.ini"
	syncd_start "$W/chg.log" "$W/chg.ini"
	wait_dst "select count(*) from chg" 1
	S chg "alter table chg replica identity full"
	S chg "update chg set v = 'a2' where id = 1"
	wait_dst "select v from chg" a2
	it_assert_contains "$W/chg.log" 'table public.chg in database "chg": replica identity DEFAULT became FULL; the key is still (id)'
	S chg "alter table chg replica identity using index chg_u_key"
	S chg "insert into chg values (2, 2, 'b')"
	# the insert must come again: the slot may be confirmed past the
	# ALTER (nothing pending, the position received), not past the insert
	lsn=$(DB=chg psql_on src -Atc "select pg_current_wal_lsn()")
	for _ in $(seq 1 100); do kill -0 "$SYNCD_PID" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$SYNCD_PID" 2>/dev/null; then it_fail "syncd did not stop at the identity change"; fi
	wait "$SYNCD_PID" && it_fail "syncd exited 0 at the identity change" || true
	it_assert_contains "$W/chg.log" 'table public.chg in database "chg" changed while streaming: replica identity FULL with the primary key (id) became USING INDEX on (u)'
	it_assert_contains "$W/chg.log" 'run ALTER TABLE public.chg REPLICA IDENTITY DEFAULT'
	it_assert_eq 1 "$(D "select count(*) from chg")" "rows at the destination after the stop"
	it_assert_eq t "$(DB=chg psql_on src -Atc "select confirmed_flush_lsn < '$lsn' from pg_replication_slots where slot_name = 'syncd_chg'")" "slot not confirmed past the insert after the identity change"
	it_pass "a change of identity stops the job before the change that follows; an exact one is logged"
fi

if only keychange; then
	# a primary key dropped (DEFAULT: the message flags no column) or
	# changed (FULL: read from the catalog) while streaming
	psql_on src -c "create database chg2" >/dev/null
	S chg2 "create table k (id int primary key, v text not null)"
	S chg2 "create table kf (id int primary key, v text not null)"
	S chg2 "alter table kf replica identity full"
	for t in k kf; do
		job "job$t" chg2 "tables = public.$t"
		syncd_start "$W/job$t.log" "$W/job$t.ini"
		S chg2 "insert into $t values (1, 'a')"
		wait_dst "select count(*) from $t" 1
	done
	S chg2 "alter table k drop constraint k_pkey"
	# the watch for tables that join or leave (every 5 s) reads the
	# catalog first: the stream still decides, at the next change
	sleep 6
	S chg2 "insert into k values (2, 'b')"
	# kf: the key changed in the transaction of the change (FULL: the
	# key is read from the catalog once that transaction is visible)
	S chg2 "begin; alter table kf drop constraint kf_pkey, add primary key (id, v); insert into kf values (2, 'b'); commit"
	for t in k kf; do
		for _ in $(seq 1 100); do grep -q "job job$t failed" "$W/job$t.log" && break; sleep 0.1; done
	done
	it_assert_contains "$W/jobk.log" 'table public.k in database "chg2" changed while streaming: replica identity DEFAULT with the primary key (id) became DEFAULT with the key (none)'
	it_assert_contains "$W/jobkf.log" 'table public.kf in database "chg2" changed while streaming: replica identity FULL with the primary key (id) became FULL with the primary key (id, v)'
	it_assert_contains "$W/jobkf.log" 'and restore the primary key'
	it_assert_eq 1 "$(D "select count(*) from k")" "rows of k after the stop"
	it_assert_eq 1 "$(D "select count(*) from kf")" "rows of kf after the stop"
	it_pass "a primary key dropped or changed while streaming stops the job"
fi

if only skipped; then
	psql_on src -c "create database skip" >/dev/null
	S skip "create table ok1 (id int primary key)"
	S skip "create table nopk (v text)"
	S skip "create unlogged table unl (id int primary key)"
	S skip "create table idn (id int primary key)"
	S skip "alter table idn replica identity nothing"
	S skip "create table riu (id int primary key, u int not null unique)"
	S skip "alter table riu replica identity using index riu_u_key"
	S skip "create table gen (id int primary key, price int, qty int, total int generated always as (price * qty) stored)"
	# another session's temporary table, alive while syncd looks
	rm -f "$W/tmpsess"
	mkfifo "$W/tmpsess"
	DB=skip psql_on src <"$W/tmpsess" >/dev/null 2>&1 &
	TMPSESS=$!
	exec 8>"$W/tmpsess"
	echo "create temporary table scratch (id int primary key);" >&8
	for _ in $(seq 1 100); do
		[ "$(DB=skip psql_on src -Atc "select count(*) from pg_class where relname = 'scratch' and relpersistence = 't'" 8>&-)" = 1 ] && break
		sleep 0.1
	done
	job skip skip
	run 0 skip --check
	cp "$W/skip.out" "$W/skip.check"
	run 0 skip --preview
	cp "$W/skip.out" "$W/skip.preview"
	syncd_start "$W/skip.log" "$W/skip.ini"
	syncd_stop "$SYNCD_PID" "$W/skip.log"
	exec 8>&-
	wait $TMPSESS
	for f in check preview log; do
		it_assert_contains "$W/skip.$f" 'table public.nopk in database "skip" is not synced: it has no primary key'
		it_assert_contains "$W/skip.$f" 'table public.unl in database "skip" is not synced: it is UNLOGGED'
		it_assert_contains "$W/skip.$f" 'run ALTER TABLE public.unl SET LOGGED to sync it'
		it_assert_contains "$W/skip.$f" 'table public.idn in database "skip" is not synced: it has REPLICA IDENTITY NOTHING'
		it_assert_contains "$W/skip.$f" 'table public.riu in database "skip" is not synced: it has REPLICA IDENTITY USING INDEX riu_u_key on (u)'
		it_assert_eq 1 "$(grep -c 'table public.nopk in' "$W/skip.$f")" "lines naming nopk in $f"
		grep -q 'table pg_temp_[0-9]*\.scratch in database "skip" is not synced: it is TEMPORARY' "$W/skip.$f" ||
			it_fail "the temporary table is not named in $f: $(grep scratch "$W/skip.$f")"
	done
	it_assert_contains "$W/skip.check" 'column total of public.gen in database "skip" is GENERATED ALWAYS AS ((price * qty)) STORED: it is not replicated; syncd leaves it out of the target'
	it_assert_contains "$W/skip.preview" 'public.ok1'
	it_assert_contains "$W/skip.preview" 'public.gen'
	if grep -q 'public\.nopk *->' "$W/skip.preview"; then it_fail "nopk previewed"; fi
	it_pass "skipped tables are named in --check, --preview and the start log"
fi

if only rights; then
	psql_on src >/dev/null <<'SQL'
create database rights;
create role app login;
create role syncer login replication;
SQL
	S rights "create table t1 (id int primary key)"
	S rights "alter table t1 owner to app"
	S rights "grant select on t1 to syncer"
	SRC_USER=syncer job rights rights
	run 3 rights --check
	it_assert_contains "$W/rights.out" 'publication dbz_publication in database "rights" does not exist and is needed for "public"."t1", and role syncer may not create it'
	it_assert_contains "$W/rights.out" 'it lacks CREATE on database "rights"'
	it_assert_contains "$W/rights.out" 'the tables public.t1 (owner app) belong to others'
	it_assert_contains "$W/rights.out" 'run: CREATE PUBLICATION "dbz_publication" FOR TABLE "public"."t1"'
	if grep -q "syncd will run" "$W/rights.out"; then it_fail "a statement the role may not run is announced"; fi
	S rights "grant create on database rights to syncer"
	S rights "alter table t1 owner to syncer"
	run 0 rights --check
	it_assert_contains "$W/rights.out" 'syncd will run: CREATE PUBLICATION "dbz_publication" FOR TABLE "public"."t1"'
	it_pass "the publication's rights are checked, naming who must run what"
fi

if only foreign; then
	psql_on src -c "create database foreign_pub" >/dev/null
	S foreign_pub "create table f1 (id int primary key)"
	S foreign_pub "create table f2 (id int primary key)"
	S foreign_pub "create publication dbz_publication for table f1"
	job foreign foreign_pub
	run 3 foreign --check
	it_assert_contains "$W/foreign.out" 'publication dbz_publication in database "foreign_pub" lacks "public"."f2", and syncd did not create it'
	it_assert_contains "$W/foreign.out" 'set [source] publication = syncd_foreign'
	it_assert_contains "$W/foreign.out" 'have its owner postgres run: ALTER PUBLICATION "dbz_publication" ADD TABLE "public"."f2"'
	run 1 foreign
	it_assert_eq "f1" "$(DB=foreign_pub psql_on src -Atc "select string_agg(tablename, ',') from pg_publication_tables where pubname = 'dbz_publication'")" "the foreign publication is unchanged"
	# syncd's own publication: created with its mark, altered later
	job foreign foreign_pub "publication = syncd_foreign"
	syncd_start "$W/foreign.log" "$W/foreign.ini"
	syncd_stop "$SYNCD_PID" "$W/foreign.log"
	it_assert_eq "created by syncd job foreign" "$(DB=foreign_pub psql_on src -Atc "select obj_description(oid, 'pg_publication') from pg_publication where pubname = 'syncd_foreign'")" "mark of syncd's publication"
	S foreign_pub "create table f3 (id int primary key)"
	run 0 foreign --check
	it_assert_contains "$W/foreign.out" 'syncd will run: ALTER PUBLICATION "syncd_foreign" ADD TABLE "public"."f3"'
	# published via the partition root: refused
	S foreign_pub "create table pr (id int primary key) partition by range (id)"
	S foreign_pub "create table pr1 partition of pr for values from (0) to (100)"
	S foreign_pub "create publication viaroot for table pr with (publish_via_partition_root = true)"
	job viaroot foreign_pub "tables = public.pr1
partitions = leaf
publication = viaroot"
	run 3 viaroot --check
	it_assert_contains "$W/viaroot.out" 'publication viaroot in database "foreign_pub" is created WITH (publish_via_partition_root = true)'
	it_assert_contains "$W/viaroot.out" 'set [source] publication = syncd_viaroot'
	it_pass "a publication syncd did not create is never altered"
fi

if only dbname; then
	psql_on src -c 'create database "sh+op"' >/dev/null
	S "sh+op" "create table t (id int primary key)"
	job badname "'sh+op'"
	run 3 badname --check
	it_assert_contains "$W/badname.out" 'database "sh+op": the name contains a character syncd cannot sync'
	run 1 badname
	it_assert_contains "$W/badname.out" 'database "sh+op": the name contains a character syncd cannot sync'
	it_pass "a database name with a forbidden character is refused"
fi
it_pass "table shapes at the source"
