#!/bin/bash
# Several databases: one replication connection and one slot each, every
# change tagged with its database. And the heartbeat: with the selected
# tables quiet while other tables are written, each slot still advances
# past all that WAL; heartbeats are consumed, never applied.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
for db in shop1 shop2; do
	psql_on src -c "create database $db" >/dev/null
	DB=$db psql_on src -c "create table orders (id int primary key, db text)" \
		-c "create table noise (v text)" >/dev/null
done

cat >"$W/job.ini" <<INI
[job]
name = multi
mode = incremental
state_dir = $W/state
[source]
plugin = pgoutput
conninfo = host=127.0.0.1 port=$src_PORT user=postgres
databases = shop1, shop2
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 300ms
[sink]
plugin = jsonl
path = $W/out.jsonl
batch.interval = 100ms
INI
syncd_start "$W/syncd.log" "$W/job.ini" 2
it_assert_eq 2 "$(psql_on src -Atc "select count(*) from pg_replication_slots where slot_name in ('syncd_multi_shop1', 'syncd_multi_shop2') and slot_type = 'logical'")" "one slot per database"

for db in shop1 shop2; do
	DB=$db psql_on src -c "insert into orders select g, '$db' from generate_series(1, 50) g" >/dev/null
done
for _ in $(seq 1 100); do
	[ "$(grep -c '"op":"insert"' "$W/out.jsonl" 2>/dev/null)" -ge 100 ] && break
	sleep 0.1
done
for db in shop1 shop2; do
	n=$(jq -r "select(.op==\"insert\" and .database==\"$db\" and .new.db==\"$db\") | .new.id" "$W/out.jsonl" | sort -un | wc -l)
	it_assert_eq 50 "$n" "changes of $db, tagged with it"
done
it_assert_eq 50 "$(jq -r 'select(.stream==1) | .database' "$W/out.jsonl" | grep -c shop2)" "shop2 is stream 1"

# quiet selected tables, busy others: the slots still follow the WAL
lines=$(wc -l <"$W/out.jsonl")
for db in shop1 shop2; do
	DB=$db psql_on src -c "insert into noise select md5(g::text) from generate_series(1, 20000) g" >/dev/null
done
target=$(psql_on src -Atc "select pg_current_wal_lsn()")
for _ in $(seq 1 100); do
	behind=$(psql_on src -Atc "select count(*) from pg_replication_slots where slot_name like 'syncd_multi_%' and confirmed_flush_lsn < '$target'")
	[ "$behind" = 0 ] && break
	sleep 0.1
done
it_assert_eq 0 "$behind" "slots advanced past $target by heartbeats"
it_assert_eq "$lines" "$(wc -l <"$W/out.jsonl")" "heartbeats are not applied"
syncd_stop "$SYNCD_PID" "$W/syncd.log"
it_pass "two databases, two slots, heartbeats advance idle slots"
