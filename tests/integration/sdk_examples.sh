#!/bin/bash
# The SDK's source and transform examples, as a third party uses them:
#  a. syncd installed into a temporary root; csv_source and mask build out of
#     tree with their own Makefiles and -Werror against the installed SDK,
#     and export only syncd_plugin_entry;
#  b. jsonl, csv_source and mask build against the frozen 1.0 headers
#     (tests/abi/1.0, never edited); the current syncd loads them and runs
#     a job with them;
#  c. csv_source -> mask -> dws_upsert into PostgreSQL, in the default mode
#     (full+incremental): the file's rows arrive masked, appended lines
#     (a quoted field with the delimiter and a line break) arrive, and after
#     SIGTERM, more lines and a restart every row is there once;
#  d. csv_source -> jsonl, in the default mode: the full phase comes through
#     write() (a truncate line, then the inserts); appended lines arrive
#     once; masking a key column and a file that shrinks fail the job with
#     messages that name the fix.
. "$top_srcdir/tests/integration/lib.sh"
# the examples build as a third party builds them: with a make of their
# own, not as a child of make check (whose jobserver and directory
# messages are not the example's)
outside_make() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s "$@"; }
W=$IT_WORK
root="$W/root"

# ---- a. out of tree, against the installed SDK ------------------------------

$MAKE -s -C "$top_builddir" install DESTDIR="$root" >"$W/install.log" 2>&1 ||
	it_fail "make install: $(tail -n 30 "$W/install.log")"
pc=$(find "$root" -name syncd-sdk.pc | head -n 1)
[ -n "$pc" ] || it_fail "syncd-sdk.pc was not installed"
for ex in csv_source mask; do
	find "$root" -path "*/syncd/$ex.so" | grep -q . || it_fail "$ex plugin not installed"
	cp -R "$top_srcdir/sdk/examples/$ex" "$W/$ex"
	chmod -R u+w "$W/$ex"
	rm -f "$W/$ex/$ex.so"
	PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$root" \
		outside_make -C "$W/$ex" CFLAGS="-O2 -g -Werror" >"$W/$ex.build" 2>&1 ||
		it_fail "$ex: out-of-tree build: $(cat "$W/$ex.build")"
	! grep -qi 'warning' "$W/$ex.build" || it_fail "$ex: warnings: $(cat "$W/$ex.build")"
	it_assert_eq syncd_plugin_entry \
		"$(nm -D --defined-only "$W/$ex/$ex.so" | awk '{print $3}' | sort | paste -sd ' ')" \
		"$ex: exported symbols"
done
it_pass "csv_source and mask build out of tree with -Werror and export one function"

# ---- b. against the frozen 1.0 headers --------------------------------------

abi="$top_srcdir/tests/abi/1.0"
[ -f "$abi/syncd/syncd.h" ] || it_fail "the frozen headers are missing: $abi"
mkdir "$W/frozen"
for ex in jsonl csv_source mask; do
	extra=""
	[ $ex = jsonl ] && extra=$(pkg-config --cflags json-c)
	cp -R "$top_srcdir/sdk/examples/$ex" "$W/frozen-$ex"
	chmod -R u+w "$W/frozen-$ex"
	rm -f "$W/frozen-$ex/$ex.so"
	outside_make -C "$W/frozen-$ex" CFLAGS="-O2 -g -Werror" \
		SDK_CFLAGS="-I$abi $extra" PLUGINDIR=/nowhere >"$W/frozen-$ex.build" 2>&1 ||
		it_fail "$ex against the frozen headers: $(cat "$W/frozen-$ex.build")"
	cp "$W/frozen-$ex/$ex.so" "$W/frozen/"
done
for ex in jsonl:transactions csv_source:delimiter mask:columns; do
	name=${ex%%:*}
	"$SYNCD" --plugin-dir "$W/frozen" --plugin-help "$name" >"$W/help-$name" 2>&1 ||
		it_fail "syncd does not load $name built against the 1.0 headers: $(cat "$W/help-$name")"
	it_assert_contains "$W/help-$name" "file: $W/frozen/$name.so"
	it_assert_contains "$W/help-$name" "ABI 1.0"
	it_assert_contains "$W/help-$name" "${ex#*:}"
done
# ... and run: csv_source -> mask -> jsonl, all three from the frozen build
printf 'k,v\n1,one\n2,two\n' >"$W/frozen.csv"
cat >"$W/frozen.ini" <<INI
[job]
name = frozen
mode = full
state_dir = $W/state
[source]
plugin = csv_source
path = $W/frozen.csv
key = k
[transform.hide]
plugin = mask
columns = v
[sink]
plugin = jsonl
path = $W/frozen.jsonl
target.schema = public
INI
"$SYNCD" --plugin-dir "$W/frozen" -c "$W/frozen.ini" >"$W/frozen.log" 2>&1 ||
	it_fail "a job with the plugins built against the 1.0 headers: $(cat "$W/frozen.log")"
it_assert_contains "$W/frozen.jsonl" '"new":{"k":"2","v":"***"}'
it_assert_eq 2 "$(grep -c '"op":"insert"' "$W/frozen.jsonl")" "rows through the frozen build"
it_pass "plugins built against the frozen 1.0 headers load and run"

# ---- c. csv_source -> mask -> dws_upsert, default mode ----------------------

pg_start dst
csv="$W/people.csv"
printf '%s\n' 'id,name,email,note' '1,Ann,ann@example.com,first' \
	'2,"Bob ""B"" Brown",bob@example.com,' '3,Cy,,"x"' >"$csv"
cat >"$W/c.ini" <<INI
[job]
name = csv_mask
state_dir = $W/state
concurrency = 2
[source]
plugin = csv_source
path = $csv
key = id
poll = 100ms
[transform.hide]
plugin = mask
columns = email
[sink]
plugin = dws_upsert
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres
target.schema = public
batch.interval = 200ms
INI
# a source that names no database leaves #{source_db_name} (the default
# target.schema) empty: refused with the fix, before anything is created
grep -v '^target.schema' "$W/c.ini" >"$W/noschema.ini"
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/noschema.ini" --check >"$W/noschema.log" 2>&1 && rc=0 || rc=$?
it_assert_eq 3 "$rc" "--check exit code with an empty target schema"
it_assert_contains "$W/noschema.log" "the target schema of source table .public.people is empty (the source names no database for #{source_db_name}); set target.schema"
it_pass "an empty target schema is refused with the fix"

# the rows at the destination, one line each: NULL as <null>, line breaks
# as \n
rows() {
	psql_on dst -Atc "select id || '|' || coalesce(replace(name, E'\\n', '\\n'), '<null>')
	  || '|' || coalesce(email, '<null>') || '|' || coalesce(replace(note, E'\\n', '\\n'), '<null>')
	  from public.people order by id::int" 2>/dev/null || true
}
wait_rows() { # wait_rows N: until the destination has N rows (60 s)
	for _ in $(seq 1 600); do
		[ "$(psql_on dst -Atc 'select count(*) from public.people' 2>/dev/null)" = "$1" ] &&
			return 0
		kill -0 "$SYNCD_PID" 2>/dev/null || it_fail "syncd exited: $(tail -n 20 "$W/c.log")"
		sleep 0.1
	done
	it_fail "the destination did not reach $1 rows: $(rows); $(tail -n 20 "$W/c.log")"
}
start_c() {
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/c.ini" >>"$W/c.log" 2>&1 &
	SYNCD_PID=$!
}

start_c
wait_rows 3
expect='1|Ann|***|first
2|Bob "B" Brown|***|<null>
3|Cy|<null>|x'
it_assert_eq "$expect" "$(rows)" "the full phase, masked"
it_assert_eq "id:text:true" "$(psql_on dst -Atc "select string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod) || ':' || a.attnotnull, ',') from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey) where i.indrelid = 'public.people'::regclass and i.indisprimary")" \
	"the key of the created table"

printf '4,"Dee, D.",dee@example.com,"line one\nline two"\n5,Eve,eve@example.com,plain\n' >>"$csv"
wait_rows 5
expect="$expect
4|Dee, D.|***|line one\\nline two
5|Eve|***|plain"
it_assert_eq "$expect" "$(rows)" "appended lines, masked"
syncd_stop "$SYNCD_PID" "$W/c.log"
it_assert_eq "$(stat -c %s "$csv")" "$(cut -d' ' -f1 "$W/state/csv_mask/csv_source.position")" \
	"the position kept at the stop"

printf '6,Fay,fay@example.com,"say ""hi"""\r\n7,Gus,gus@example.com,\n' >>"$csv"
start_c
wait_rows 7
expect="$expect
6|Fay|***|say \"hi\"
7|Gus|***|<null>"
it_assert_eq "$expect" "$(rows)" "after the restart"
printf '8,Hal,hal@example.com,last\n' >>"$csv"
wait_rows 8
syncd_stop "$SYNCD_PID" "$W/c.log"
it_assert_eq "$expect
8|Hal|***|last" "$(rows)" "every row once, masked"
it_assert_eq 1 "$(grep -c 'copied public.people' "$W/c.log")" "the table copied once"
it_pass "csv_source -> mask -> dws_upsert: full phase, stream, restart"

# ---- d. csv_source -> jsonl, default mode -----------------------------------

items="$W/items.csv"
printf '1,apple\n2,pear\n' >"$items"
cat >"$W/d.ini" <<INI
[job]
name = csv_jsonl
state_dir = $W/state
concurrency = 1
[source]
plugin = csv_source
path = $items
header = false
key = c1
poll = 100ms
[sink]
plugin = jsonl
path = $W/out.jsonl
target.schema = public
batch.interval = 100ms
INI
inserts() { grep -c '"op":"insert"' "$W/out.jsonl" 2>/dev/null || true; }
wait_inserts() { # wait_inserts N: until out.jsonl has N insert lines (30 s)
	for _ in $(seq 1 300); do
		[ "$(inserts)" = "$1" ] && return 0
		kill -0 "$SYNCD_PID" 2>/dev/null || it_fail "syncd exited: $(tail -n 20 "$W/d.log")"
		sleep 0.1
	done
	it_fail "out.jsonl did not reach $1 inserts: $(cat "$W/out.jsonl"); $(tail -n 20 "$W/d.log")"
}
start_d() {
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/d.ini" >>"$W/d.log" 2>&1 &
	SYNCD_PID=$!
}
ops() { sed 's/.*"op":"\([a-z_]*\)".*/\1/' "$W/out.jsonl" | paste -sd ' '; }
ids() { grep '"op":"insert"' "$W/out.jsonl" | sed 's/.*"c1":"\([^"]*\)".*/\1/' | paste -sd ' '; }

start_d
wait_inserts 2
it_assert_eq "truncate insert insert" "$(ops)" "the full phase through write()"
it_assert_contains "$W/out.jsonl" '"new":{"c1":"1","c2":"apple"}'
printf '3,plum\n' >>"$items"
wait_inserts 3
syncd_stop "$SYNCD_PID" "$W/d.log"
it_assert_eq "1 2 3" "$(ids)" "appended line"

# a restart: jsonl keeps no progress (no applied_lsn), so, as plugin.h says,
# the core copies the snapshot again (the file up to the position kept, in
# a transaction of its own); the stream goes on after that position, so the
# streamed lines never come twice
start_d
wait_inserts 6
printf '4,fig\n' >>"$items"
wait_inserts 7
syncd_stop "$SYNCD_PID" "$W/d.log"
it_assert_eq "1 2 3 1 2 3 4" "$(ids)" "after the restart"
it_assert_eq "truncate insert insert insert truncate insert insert insert insert" \
	"$(ops)" "the lines of both runs"

# masking the key would merge rows: the job fails at the table
cat "$W/d.ini" - >"$W/dkey.ini" <<INI
[transform.hide]
plugin = mask
columns = c1
INI
sed -i 's/^name = csv_jsonl$/name = csv_key/' "$W/dkey.ini"
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/dkey.ini" >"$W/dkey.log" 2>&1 && rc=0 || rc=$?
it_assert_eq 1 "$rc" "exit code when a key column is masked"
it_assert_contains "$W/dkey.log" 'cannot mask column "c1" of public.items: it is part of the key, and masking a key column would merge rows; remove it from columns'

# mode = full, one table's column, NULL instead of the text
sed -e 's/^name = csv_jsonl$/name = csv_full/' -e 's/^concurrency = 1$/&\nmode = full/' \
	-e "s|^path = $W/out.jsonl\$|path = $W/full.jsonl|" "$W/d.ini" >"$W/full.ini"
printf '[transform.hide]\nplugin = mask\ncolumns = public.items.c2, other.items.c1\nnull = true\n' >>"$W/full.ini"
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/full.ini" >"$W/full.log" 2>&1 ||
	it_fail "mode = full: $(cat "$W/full.log")"
it_assert_eq 4 "$(grep -c '"c2":null' "$W/full.jsonl")" "rows copied with c2 masked as NULL"
it_assert_eq 4 "$(grep -c '"c1":"[1-4]"' "$W/full.jsonl")" "c1 (of another table in columns) kept"
if [ -e "$W/state/csv_full/csv_source.position" ]; then
	it_fail "mode = full wrote a stream position"
fi

# a file that shrinks under a running stream fails the job, naming the fix
# (once the full phase of this start is over: the copy's own inserts count
# in out.jsonl too, and a file that shrinks during the copy is another
# message)
copies=$(grep -c "full copy finished" "$W/d.log" || true)
start_d
wait_inserts 11
for _ in $(seq 1 300); do
	[ "$(grep -c "full copy finished" "$W/d.log")" -gt "$copies" ] && break
	sleep 0.1
done
: >"$items"
wait "$SYNCD_PID" && rc=0 || rc=$?
it_assert_eq 1 "$rc" "exit code when the file shrank"
it_assert_contains "$W/d.log" "$items shrank (truncated): the lines synced so far are not where they were; to sync it again, stop syncd and delete $W/state/csv_jsonl/csv_source.position"
it_pass "csv_source -> jsonl: full phase through write(), stream, restart, errors"
