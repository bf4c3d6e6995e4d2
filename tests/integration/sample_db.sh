#!/bin/bash
# A real public sample database, its own schema and data, not written by
# us: pagila (PostgreSQL's port of Sakila: foreign keys, last_updated and
# full-text triggers, domains, an enum, arrays, tsvector, bytea, a
# partitioned payment table, views, a materialized view). Synced with
# full+incremental twice from one source database:
#   - upsert, the targets created by syncd (auto_create_table);
#   - copy, the targets created beforehand with pg_dump -s, as a user
#     preparing a warehouse does (the source's foreign keys and triggers
#     come along; syncd's destination role is a superuser).
# Then a workload of ordinary statements (a new customer with a rental and
# a payment, updates through the triggers, a payment moved to another
# partition, deletes, a key change cascaded by a foreign key, arrays,
# bytea), and every table is compared with its source on the columns both
# have, after the copy and after the workload: each plain table with the
# target of its name, the partitioned payment (every partition's rows)
# with the target payment (and each partition with a target of its name,
# where there is one). Differences are collected, each naming the
# variant, the table and the first differing rows.
#
# pagila's files are not ours to commit: the test reads them at run time
# from $PAGILA_DIR (pagila-schema.sql and pagila-data.sql), or from a git
# directory of https://github.com/devrimgunduz/pagila ($PAGILA_GIT, by
# default the mirror at /work/.mirror/devrimgunduz+pagila/repo), taking
# both files from the newest commit that holds both. pagila is in no
# Debian or npm package; without either the test is skipped (exit 77).
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK

PAGILA_GIT=${PAGILA_GIT:-/work/.mirror/devrimgunduz+pagila/repo}
if [ -n "${PAGILA_DIR:-}" ] && [ -r "$PAGILA_DIR/pagila-schema.sql" ] && [ -r "$PAGILA_DIR/pagila-data.sql" ]; then
	cp "$PAGILA_DIR/pagila-schema.sql" "$PAGILA_DIR/pagila-data.sql" "$W/"
	it_log "pagila from $PAGILA_DIR"
elif git --git-dir="$PAGILA_GIT" rev-parse -q --verify HEAD >/dev/null 2>&1; then
	for c in $(git --git-dir="$PAGILA_GIT" rev-list HEAD); do
		if git --git-dir="$PAGILA_GIT" cat-file -e "$c:pagila-schema.sql" 2>/dev/null &&
			git --git-dir="$PAGILA_GIT" cat-file -e "$c:pagila-data.sql" 2>/dev/null; then
			git --git-dir="$PAGILA_GIT" show "$c:pagila-schema.sql" >"$W/pagila-schema.sql"
			git --git-dir="$PAGILA_GIT" show "$c:pagila-data.sql" >"$W/pagila-data.sql"
			it_log "pagila from $PAGILA_GIT at $c"
			break
		fi
	done
fi
if [ ! -s "$W/pagila-data.sql" ]; then
	it_log "SKIP: pagila not found (set PAGILA_DIR to a directory with pagila-schema.sql and pagila-data.sql, or PAGILA_GIT to a git directory of it)"
	exit 77
fi

pg_start src
pg_start dst
: >"$W/failures"
failed() {
	it_log "FAIL: $*"
	printf '%s\n' "$*" | head -n 1 >>"$W/failures"
}

psql_on src -c "create database pagila" >/dev/null
DB=pagila psql_on src -f "$W/pagila-schema.sql" >/dev/null 2>"$W/schema.err" ||
	it_fail "loading pagila-schema.sql: $(grep ERROR "$W/schema.err" | head -n 3)"
DB=pagila psql_on src -f "$W/pagila-data.sql" >/dev/null 2>"$W/data.err" ||
	it_fail "loading pagila-data.sql: $(grep ERROR "$W/data.err" | head -n 3)"
DB=pagila psql_on src -c "analyze" >/dev/null
it_log "pagila: $(DB=pagila psql_on src -Atc "select count(*) || ' tables, ' || sum(n_live_tup) || ' rows' from pg_stat_user_tables")"
# what pagila has that syncd does not sync: named, not compared
DB=pagila psql_on src -Atc "select 'not compared: ' || c.relname || ' (' || case c.relkind when 'm' then 'materialized view' else 'no primary key' end || ')' from pg_class c where c.relnamespace = 'public'::regnamespace and (c.relkind = 'm' or (c.relkind = 'r' and not exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary)))" |
	while read -r l; do it_log "$l"; done

# the tables to compare: plain tables that are not partitions, and
# partitioned roots (all their partitions' rows)
TABLES=$(DB=pagila psql_on src -Atc "select quote_ident(relname) from pg_class c where relnamespace = 'public'::regnamespace and ((relkind = 'r' and not relispartition) or relkind = 'p') order by 1")

cols_of() { # cols_of NAME DB TABLE WHERE: its columns, quoted, in order
	DB=$2 psql_on "$1" -Atc "select string_agg(quote_ident(attname), ',' order by attnum) from pg_attribute where attrelid = to_regclass('public.$3') and attnum > 0 and not attisdropped and $4"
}
# cmp_table WHAT DB TABLE: the destination's public.TABLE equals the
# source's on the columns both have (a generated column left out is named)
cmp_table() {
	what=$1 db=$2 t=$3
	src_cols=$(cols_of src pagila "$t" "attgenerated = ''")
	gen_cols=$(cols_of src pagila "$t" "attgenerated <> ''")
	dst_cols=$(cols_of dst "$db" "$t" "true")
	if [ -z "$dst_cols" ]; then
		failed "$what: table $t: missing at the destination"
		return
	fi
	common=
	for c in $(printf '%s' "$src_cols,$gen_cols" | tr ',' '\n' | sed '/^$/d'); do
		if printf ',%s,' "$dst_cols" | grep -qF ",$c,"; then
			common=${common:+$common,}$c
		elif printf ',%s,' "$gen_cols" | grep -qF ",$c,"; then
			it_log "note: $what: $t: generated column $c is not at the destination; compared without it"
		else
			failed "$what: table $t: source column $c missing at the destination"
		fi
	done
	q="select count(*) || ':' || coalesce(md5(string_agg(r, E'\\n' order by r)), '') from (select row($common)::text r from public.$t) s"
	want=$(DB=pagila psql_on src -Atc "$q")
	got=$(DB=$db psql_on dst -Atc "$q" 2>&1) || true
	[ "$want" = "$got" ] && return 0
	show=
	for c in $(printf '%s' "$common" | tr ',' '\n'); do
		show="${show:+$show || ' | ' || }coalesce(case when length($c::text) > 40 then left($c::text, 24) || '…(' || length($c::text) || ' chars, md5 ' || left(md5($c::text), 8) || ')' else $c::text end, 'NULL')"
	done
	DB=pagila psql_on src -Atc "select $show from public.$t order by 1" >"$W/a" 2>&1 || true
	DB=$db psql_on dst -Atc "select $show from public.$t order by 1" >"$W/b" 2>&1 || true
	failed "$what: table $t differs: source $want rows:md5, destination $got"
	diff "$W/a" "$W/b" | grep '^[<>]' | head -n 6 | sed 's/^</  source only:/; s/^>/  destination only:/' >&2 || true
}
# partitions: compared too when a target of their name exists (syncd
# today makes each partition a target of its own; pg_dump -s targets have
# them as partitions)
LEAVES=$(DB=pagila psql_on src -Atc "select quote_ident(relname) from pg_class c where relnamespace = 'public'::regnamespace and relkind = 'r' and relispartition order by 1")
compare_all() { # compare_all WHAT DB
	for t in $TABLES; do cmp_table "$1" "$2" "$t"; done
	for t in $LEAVES; do
		[ -n "$(DB=$2 psql_on dst -Atc "select to_regclass('public.$t')")" ] && cmp_table "$1" "$2" "$t"
	done
	return 0
}

# wait_all WHAT: until the slot of every job that still runs confirmed
# the source's current LSN (90 s at most)
wait_all() {
	lsn=$(DB=pagila psql_on src -Atc "select pg_current_wal_lsn()")
	for v in $VARIANTS; do
		[ -e "$W/$v.dead" ] && continue
		for _ in $(seq 1 900); do
			kill -0 "$(cat "$W/$v.pid")" 2>/dev/null || break
			[ "$(psql_on src -Atc "select confirmed_flush_lsn >= '$lsn' from pg_replication_slots where slot_name = 'syncd_$v'")" = t ] && break
			sleep 0.1
		done
		if ! kill -0 "$(cat "$W/$v.pid")" 2>/dev/null; then
			: >"$W/$v.dead"
			failed "$1: job $v exited: $(grep -E ' (error|fatal) ' "$W/$v.log" | tail -n 3 | tr '\n' ' ')"
		elif [ "$(psql_on src -Atc "select confirmed_flush_lsn >= '$lsn' from pg_replication_slots where slot_name = 'syncd_$v'")" != t ]; then
			failed "$1: slot syncd_$v did not confirm $lsn within 90 s: $(tail -n 2 "$W/$v.log" | tr '\n' ' ')"
		fi
	done
}

VARIANTS="pg_upsert pg_copy"
for v in $VARIANTS; do
	psql_on dst -c "create database $v" >/dev/null
	mode=${v#pg_}
	cat >"$W/$v.ini" <<INI
[job]
name = $v
mode = full+incremental
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=pagila
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
[sink]
write_mode = $mode
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=$v
target.schema = public
batch.interval = 300ms
INI
done
# the copy variant's targets: pg_dump -s of the source
DB=pagila as_pg_dump src -s >"$W/schema.dump" || it_fail "pg_dump -s of pagila failed"
DB=pg_copy psql_on dst -f "$W/schema.dump" >/dev/null 2>"$W/schema.load" ||
	it_fail "loading pg_dump -s into the destination: $(grep ERROR "$W/schema.load" | head -n 3)"

for v in $VARIANTS; do
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$v.ini" --check >"$W/$v.check" 2>&1 && rc=0 || rc=$?
	[ $rc = 0 ] || failed "$v: --check exit code $rc: $(grep -E ' (error|warning) ' "$W/$v.check" | head -n 3 | tr '\n' ' ')"
done
# the jobs, one after the other (they share the publication), each with
# its own slot and targets; both run during the workload
for v in $VARIANTS; do
	SYNCD_PLUGIN_PATH="$TEST_PLUGIN_DIR" "$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$v.ini" >"$W/$v.log" 2>&1 &
	echo $! >"$W/$v.pid"
	for _ in $(seq 1 1200); do
		grep -q "streaming from slot" "$W/$v.log" && break
		kill -0 "$(cat "$W/$v.pid")" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q "streaming from slot" "$W/$v.log"; then
		: >"$W/$v.dead"
		failed "$v: the full copy did not end in streaming: $(grep -E ' (error|fatal) ' "$W/$v.log" | tail -n 3 | tr '\n' ' ')"
	fi
done
wait_all "after the copy"
for v in $VARIANTS; do
	[ -e "$W/$v.dead" ] || compare_all "$v, after the copy" "$v"
done

# ordinary statements an application of pagila runs
DB=pagila psql_on src >/dev/null <<'SQL'
begin;
insert into customer (store_id, first_name, last_name, email, address_id, active)
  values (1, 'MARÍA', 'O''NEILL', 'maria.oneill@sakilacustomer.org', 5, 1);
insert into rental (rental_date, inventory_id, customer_id, staff_id)
  values ('2022-08-01 10:00:00+00', 17, currval('customer_customer_id_seq'), 1);
insert into payment (customer_id, staff_id, rental_id, amount, payment_date)
  values (currval('customer_customer_id_seq'), 1, currval('rental_rental_id_seq'), 4.99, '2022-03-15 10:00:00+00');
commit;
update film set rental_rate = rental_rate + 1.00, description = description || ' (remastered)' where film_id % 10 = 0;
update film set special_features = special_features || '{Commentaries}'::text[] where film_id % 25 = 0;
update customer set email = lower(email), activebool = not activebool where customer_id % 7 = 0;
update address set phone = '+1 ' || phone, address2 = null where address_id % 11 = 0;
update rental set return_date = rental_date + interval '3 days' where return_date is null and rental_id % 3 = 0;
update payment set amount = amount + 0.50 where payment_id % 13 = 0;
-- moves payments to the next month's partition
update payment set payment_date = payment_date + interval '1 month'
  where payment_id % 97 = 0 and payment_date < '2022-06-01';
delete from payment where rental_id in (select rental_id from rental where rental_id % 101 = 0);
delete from rental where rental_id % 101 = 0;
-- a key change, cascaded to film_actor by its foreign key
update actor set actor_id = actor_id + 1000 where actor_id in (3, 5);
delete from film_actor where film_id = 1;
insert into film_actor (actor_id, film_id) values (1, 1), (2, 1);
insert into language (name) values ('Íslenska');
update staff set picture = decode(repeat('ab', 5000), 'hex') where staff_id = 1;
SQL
wait_all "after the workload"
for v in $VARIANTS; do
	[ -e "$W/$v.dead" ] || compare_all "$v, after the workload" "$v"
done
for v in $VARIANTS; do
	[ -e "$W/$v.dead" ] && continue
	kill -TERM "$(cat "$W/$v.pid")"
	wait "$(cat "$W/$v.pid")" || failed "$v: syncd stopped with exit code $?"
done

if [ -s "$W/failures" ]; then
	it_log "$(wc -l <"$W/failures") failures:"
	sed 's/^/  /' "$W/failures" >&2
	it_fail "$(wc -l <"$W/failures") comparisons or checks failed (see above)"
fi
it_pass "pagila synced both ways (upsert with created targets, copy into pg_dump -s targets): every table equal after the copy and after the workload"
