#!/bin/bash
# Destination tables prepared with pg_dump -s (foreign keys, a last_update
# trigger, a generated column, as a warehouse is commonly prepared):
#  1. as a superuser destination role, syncd sets session_replication_role
#     = replica (logged), as PostgreSQL's apply worker does: the parallel,
#     biggest-first full copy (payment before customer) and streaming
#     succeed in both write modes, the trigger never rewrites replicated
#     values, and the generated column is computed by the destination; a
#     new slot copies everything again (customer, referenced by a foreign
#     key, emptied without TRUNCATE, which foreign keys refuse); a
#     streamed TRUNCATE of targets a destination-only table references
#     empties them with DELETE;
#  2. as a role that may not set it, syncd --check exits 3 naming each
#     foreign key and trigger with the fix;
#  3. an extra destination column with a fixed default under a unique
#     index is refused by --check (a sequence default is not); a trigger
#     enabled ALWAYS is named in a warning;
#  4. automatic creation keeps the primary key in the key's own order
#     (payment_date, payment_id), not column order.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
pg_start dst

psql_on src >/dev/null <<'SQL'
create table customer (customer_id int primary key, name text not null,
  last_update timestamptz not null default now());
create table payment (payment_id int, payment_date date,
  customer_id int not null references customer,
  amount numeric(6,2), amount2 numeric generated always as (amount * 2) stored,
  last_update timestamptz not null default now(),
  primary key (payment_date, payment_id));
create function set_last_update() returns trigger language plpgsql as
  $$ begin new.last_update := now(); return new; end $$;
create trigger last_updated before insert or update on payment
  for each row execute function set_last_update();
create trigger customer_last_updated before insert or update on customer
  for each row execute function set_last_update();
insert into customer select g, 'c' || g from generate_series(1, 2000) g;
insert into payment (payment_id, payment_date, customer_id, amount)
  select g, date '2024-01-01' + g % 365, 1 + g % 2000, g % 100
  from generate_series(1, 60000) g;
analyze;
SQL

job() { # job NAME WRITE_MODE USER
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
tables = public.customer, public.payment
[sink]
write_mode = $2
conninfo = host=127.0.0.1 port=$dst_PORT user=$3 dbname=$1
target.schema = public
batch.interval = 300ms
INI
	psql_on dst -c "create database $1" >/dev/null
	as_pg_dump src -s | DB=$1 psql_on dst >/dev/null
}
run() { # run EXPECTED-EXIT JOB ARGS...
	expect=$1 name=$2
	shift 2
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/$name.ini" "$@" >"$W/$name.out" 2>&1 && rc=0 || rc=$?
	it_assert_eq "$expect" "$rc" "exit code of $name $* ($(grep -E 'error' "$W/$name.out" | tail -n 5))"
}

# ---- 1. a superuser destination role ----------------------------------------
for mode in upsert copy; do
	job "sup_$mode" $mode postgres
	DB=sup_$mode psql_on dst -Atc "select count(*) from pg_constraint where contype = 'f'" | grep -qx 1 ||
		it_fail "pg_dump -s did not bring the foreign key"
	syncd_start "$W/sup_$mode.log" "$W/sup_$mode.ini"
	it_assert_contains "$W/sup_$mode.log" "run with session_replication_role = replica"
	for t in customer payment; do
		it_assert_eq "$(table_hash src postgres $t)" "$(table_hash dst sup_$mode $t)" "$t copied ($mode)"
	done
	# streaming: a new parent and its child in one transaction, updates
	# that the source trigger stamps (the destination's must not)
	psql_on src >/dev/null <<SQL
begin;
insert into customer (customer_id, name) values (3000, 'new');
insert into payment (payment_id, payment_date, customer_id, amount) values (70000, '2024-05-05', 3000, 5);
commit;
update payment set amount = amount + 1 where payment_id <= 10;
update customer set name = 'renamed' where customer_id <= 3;
delete from payment where payment_id = 11;
SQL
	slot_wait src "syncd_sup_$mode" "$(psql_on src -Atc "select pg_current_wal_lsn()")"
	syncd_stop "$SYNCD_PID" "$W/sup_$mode.log"
	for t in customer payment; do
		it_assert_eq "$(table_hash src postgres $t)" "$(table_hash dst sup_$mode $t)" "$t streamed, values as the source wrote them ($mode)"
	done
	it_assert_eq 10.00 "$(DB=sup_$mode psql_on dst -Atc "select amount2 from payment where payment_id = 70000")" "generated column computed at the destination ($mode)"
	psql_on src -c "delete from payment where payment_id = 70000; delete from customer where customer_id = 3000" >/dev/null
	# a new slot copies everything again: the targets the job filled are
	# emptied first, customer (referenced by payment's foreign key) too
	psql_on src -c "select pg_drop_replication_slot('syncd_sup_$mode')" >/dev/null
	syncd_start "$W/sup_$mode.log" "$W/sup_$mode.ini"
	syncd_stop "$SYNCD_PID" "$W/sup_$mode.log"
	for t in customer payment; do
		it_assert_eq "$(table_hash src postgres $t)" "$(table_hash dst sup_$mode $t)" "$t copied again ($mode)"
	done
	# a streamed TRUNCATE of targets that a destination-only table
	# references by a foreign key: TRUNCATE refuses it, the rows are
	# deleted instead
	DB=sup_$mode psql_on dst -c "create table note (id int primary key, customer_id int references customer)" >/dev/null
	syncd_start "$W/sup_$mode.log" "$W/sup_$mode.ini"
	psql_on src -c "truncate customer cascade" >/dev/null
	slot_wait src "syncd_sup_$mode" "$(psql_on src -Atc "select pg_current_wal_lsn()")"
	syncd_stop "$SYNCD_PID" "$W/sup_$mode.log"
	it_assert_eq "0 0" "$(DB=sup_$mode psql_on dst -Atc "select (select count(*) from customer) || ' ' || (select count(*) from payment)")" "truncated targets empty ($mode)"
	psql_on src >/dev/null <<'SQL'
insert into customer select g, 'c' || g from generate_series(1, 2000) g;
insert into payment (payment_id, payment_date, customer_id, amount)
  select g, date '2024-01-01' + g % 365, 1 + g % 2000, g % 100
  from generate_series(1, 60000) g;
SQL
done
it_pass "as a superuser: replica role, foreign keys in any order, triggers silent, in both modes"

# ---- 2. a role that may not set session_replication_role ------------------
psql_on dst -c "create role syncd_user login" >/dev/null
job nosup copy syncd_user
DB=nosup psql_on dst >/dev/null <<'SQL'
grant all on all tables in schema public to syncd_user;
grant usage, create on schema public to syncd_user;
grant create on database nosup to syncd_user;
SQL
run 3 nosup --check
it_assert_contains "$W/nosup.out" "target table public.payment has foreign key payment_customer_id_fkey: FOREIGN KEY (customer_id) REFERENCES customer(customer_id); drop it"
it_assert_contains "$W/nosup.out" "or let syncd run as a role that may set session_replication_role"
it_assert_contains "$W/nosup.out" "target table public.payment has trigger last_updated, which would fire on replicated rows"
it_assert_contains "$W/nosup.out" "target table public.customer has trigger customer_last_updated"
it_assert_eq 3 "$(grep -c 'error.*target table public\.\(payment\|customer\) has ' "$W/nosup.out")" "one line per foreign key and trigger"
# granted SET on the parameter (PostgreSQL 15), the same role runs as replica
psql_on dst -c "grant set on parameter session_replication_role to syncd_user" >/dev/null
run 0 nosup --check
it_assert_contains "$W/nosup.out" "run with session_replication_role = replica"
psql_on dst -c "revoke set on parameter session_replication_role from syncd_user" >/dev/null
# the same role, once the foreign key and triggers are gone, passes
DB=nosup psql_on dst -c "alter table payment drop constraint payment_customer_id_fkey; drop trigger last_updated on payment; drop trigger customer_last_updated on customer" >/dev/null
run 0 nosup --check
it_pass "without the right to set session_replication_role, --check names each foreign key and trigger"

# ---- 3. an extra column with a fixed default under a unique index ---------
job extra copy postgres
DB=extra psql_on dst -c "alter table customer add column origin text not null default 'dwh'; create unique index customer_origin on customer (origin); alter table customer add column seq bigserial unique" >/dev/null
run 3 extra --check
it_assert_contains "$W/extra.out" "target table public.customer has column \"origin\" that source table public.customer does not have, with the fixed default 'dwh'::text under unique index customer_origin"
grep -q '"seq"' "$W/extra.out" && it_fail "a sequence default was refused: $(grep seq "$W/extra.out")"
# a trigger enabled ALWAYS fires as its owner asked: named, not refused
DB=extra psql_on dst -c "drop index customer_origin; alter table payment enable always trigger last_updated" >/dev/null
run 0 extra --check
it_assert_contains "$W/extra.out" "target table public.payment has trigger last_updated enabled ALWAYS: it fires on replicated rows"
it_pass "an extra column with a fixed default under a unique index is refused by --check"

# ---- 4. automatic creation: the key's own order ------------------------------
job auto upsert postgres
psql_on dst -c "drop database auto" -c "create database auto" >/dev/null
syncd_start "$W/auto.log" "$W/auto.ini"
syncd_stop "$SYNCD_PID" "$W/auto.log"
it_assert_eq "PRIMARY KEY (payment_date, payment_id)" "$(DB=auto psql_on dst -Atc "select pg_get_constraintdef(oid) from pg_constraint where conrelid = 'payment'::regclass and contype = 'p'")" "primary key of the created payment"
it_assert_eq "$(psql_on src -Atc "select count(*) from payment")" "$(DB=auto psql_on dst -Atc "select count(*) from payment")" "payment copied into the created table"
it_pass "automatic creation keeps the primary key in the key's own order"
