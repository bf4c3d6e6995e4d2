#!/bin/bash
# kill -9 in the middle of a pgbench run, and a restart: nothing is lost.
# Job "a" is killed and restarted; job "b" reads the same changes through
# its own slot, untouched, and is the reference. After deduplication (a
# restart replays what was not confirmed), a's stream equals b's, and b has
# one transaction for every transaction pgbench reports.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
pg_start src
PGBENCH=/usr/lib/postgresql/15/bin/pgbench
as_pg_bench() { "$PGBENCH" -h 127.0.0.1 -p "$src_PORT" -U postgres "$@" postgres; }
as_pg_bench -i -s 1 -q >/dev/null 2>&1 || it_fail "pgbench -i failed"

for j in a b; do
	cat >"$W/$j.ini" <<INI
[job]
name = $j
mode = incremental
state_dir = $W/state
concurrency = $([ $j = a ] && echo 2 || echo 1)
[source]
plugin = pgoutput
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
slot.flush.delay.time = 0
status.interval = 200ms
[sink]
plugin = jsonl
path = $W/$j.jsonl
transactions = true
sink.keyby.mode = pk
batch.interval = 100ms
INI
done
start() { # start JOB: in the background (pid_JOB), streaming
	syncd_start "$W/$1.log" "$W/$1.ini"
	eval "pid_$1=$SYNCD_PID"
}
start b
start a

as_pg_bench -T 5 -c 2 -n >"$W/bench.out" 2>&1 &
bench=$!
sleep 1.5
kill -9 "$pid_a"
wait "$pid_a" 2>/dev/null || true
before=$(wc -l <"$W/a.jsonl")
sleep 0.5
start a
wait $bench || it_fail "pgbench failed: $(cat "$W/bench.out")"
n=$(awk '/number of transactions actually processed/ {print $6}' "$W/bench.out" | cut -d/ -f1)
[ -n "$n" ] && [ "$n" -gt 100 ] || it_fail "pgbench ran too little: $(cat "$W/bench.out")"

end=$(psql_on src -Atc "select pg_current_wal_lsn()")
for j in a b; do
	slot_wait src "syncd_$j" "$end"
	eval "pid=\$pid_$j"
	syncd_stop "$pid" "$W/$j.log"
done

[ "$before" -gt 0 ] || it_fail "a wrote nothing before it was killed"
# every line is whole: a line torn by the kill was cut at the restart
jq -e . "$W/a.jsonl" >/dev/null || it_fail "a.jsonl has a broken line"
for j in a b; do
	jq -c 'del(.worker)' "$W/$j.jsonl" | sort -u >"$W/$j.set"
done
cmp -s "$W/a.set" "$W/b.set" ||
	it_fail "after the restart a differs from b: $(diff "$W/a.set" "$W/b.set" | head -n 10)"
commits=$(jq -r 'select(.op=="commit") | .lsn' "$W/b.jsonl" | sort -u | wc -l)
it_assert_eq "$n" "$commits" "one transaction per pgbench transaction"
# b (one worker) printed its commits in commit order
jq -r 'select(.op=="commit") | .lsn' "$W/b.jsonl" | while IFS=/ read -r hi lo; do
	echo $((0x$hi * 4294967296 + 0x$lo))
done >"$W/b.lsns"
sort -n -c "$W/b.lsns" || it_fail "b's commits are not in commit order"
changes=$(grep -c '"op":"update"' "$W/b.set")
it_assert_eq $((n * 3)) "$changes" "three updates per pgbench transaction"

# a transaction written to the destination is confirmed to the slot at
# once (0.2 s), not at the next status.interval (30 min here)
sed -e 's/^status.interval = .*/status.interval = 30min/' -e 's/^name = b/name = c/' \
	-e "s|^path = .*|path = $W/c.jsonl|" "$W/b.ini" >"$W/c.ini"
start c
psql_on src -c "update pgbench_branches set bbalance = bbalance + 1 where bid = 1" >/dev/null
end=$(psql_on src -Atc "select pg_current_wal_lsn()")
for i in $(seq 1 50); do
	[ "$(psql_on src -Atc "select confirmed_flush_lsn >= '$end' from pg_replication_slots where slot_name = 'syncd_c'")" = t ] && break
	[ "$i" -lt 50 ] || it_fail "with status.interval = 30min the slot is not confirmed past $end 5 s after the change: $(psql_on src -Atc "select confirmed_flush_lsn from pg_replication_slots where slot_name = 'syncd_c'")"
	sleep 0.1
done
grep -q '"op":"update"' "$W/c.jsonl" || it_fail "c wrote no update"
syncd_stop "$pid_c" "$W/c.log"

it_pass "$n pgbench transactions; killed at line $before of $(wc -l <"$W/a.jsonl"); nothing lost"
