#!/bin/bash
# The command line as a user meets it: exit codes 0/1/2/3, --version,
# --list-plugins, --plugin-help, file:line errors, refused plugins, and the
# quickstart job file.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
PATHS="--plugin-dir $PLUGIN_DIR"
export SYNCD_PLUGIN_PATH="$TEST_PLUGIN_DIR"

expect_exit() { # expect_exit CODE OUTFILE syncd-args...
	code=$1 out=$2
	shift 2
	set +e
	"$SYNCD" "$@" >"$out" 2>&1
	rc=$?
	set -e
	[ $rc -eq "$code" ] || it_fail "syncd $*: exit $rc, expected $code: $(head -c 3000 "$out")"
}

expect_exit 0 "$W/out" --version
it_assert_contains "$W/out" "plugin ABI 1."

expect_exit 0 "$W/out" $PATHS --list-plugins
grep -Eq '^jsonl +sink +1\.0 ' "$W/out" || it_fail "jsonl not listed: $(cat "$W/out")"
grep -Eq '^synth +source ' "$W/out" || it_fail "synth not listed: $(cat "$W/out")"
it_assert_contains "$W/out" "$PLUGIN_DIR"

# a syncd run from its build tree, with no plugin directory given, finds
# the plugins built with it
(unset SYNCD_PLUGIN_PATH; expect_exit 0 "$W/out" --list-plugins)
grep -Eq '^pgoutput +source ' "$W/out" || it_fail "build tree: pgoutput not listed: $(cat "$W/out")"
grep -qx "  $(dirname "$SYNCD")/plugins" "$W/out" || it_fail "build tree: not searched: $(cat "$W/out")"

expect_exit 0 "$W/out" $PATHS --plugin-help jsonl
it_assert_contains "$W/out" "jsonl 1.0 (sink plugin"
grep -Eq '^  path +string +default -$' "$W/out" || it_fail "path default: $(cat "$W/out")"
it_assert_contains "$W/out" "batch.max_rows"
expect_exit 2 "$W/out" $PATHS --plugin-help nosuch
it_assert_contains "$W/out" "plugin nosuch not found"

expect_exit 2 "$W/out"
it_assert_contains "$W/out" "no job file"
expect_exit 2 "$W/out" --no-such-flag
expect_exit 2 "$W/out" -c x.ini --start-time '2026-01-01 00:00'
it_assert_contains "$W/out" "syncd: --start-time: \"2026-01-01 00:00\" has no UTC offset: add one"
expect_exit 2 "$W/out" -c "$W/missing.ini"
it_assert_contains "$W/out" "missing.ini: could not open job file"

# a misspelled key: exit 2, file:line
cat >"$W/job.ini" <<INI
[job]
name = cli
mode = incremental
state_dir = $W/state
[source]
plugin = synth
transactions = 5
[sink]
plugin = jsonl
path = $W/out.jsonl
batch.max_row = 10
INI
expect_exit 2 "$W/out" $PATHS -c "$W/job.ini"
it_assert_contains "$W/out" "job.ini:11: [sink] unknown key \"batch.max_row\"; did you mean \"batch.max_rows\"?"

# a plugin built for another ABI major: refused, naming the file
sed -i 's/^plugin = jsonl$/plugin = abi_major/; /batch.max_row/d' "$W/job.ini"
expect_exit 2 "$W/out" --plugin-dir "$BAD_PLUGIN_DIR" -c "$W/job.ini"
it_assert_contains "$W/out" "$BAD_PLUGIN_DIR/abi_major.la: refused: built for plugin ABI 2."

# --check: passes (0), then fails on an unwritable path (3)
sed -i 's/^plugin = abi_major$/plugin = jsonl/' "$W/job.ini"
expect_exit 0 "$W/out" $PATHS --check -c "$W/job.ini"
it_assert_contains "$W/out" "all pre-checks passed"
sed -i "s|^path = .*|path = $W/no/such/dir/out.jsonl|" "$W/job.ini"
expect_exit 3 "$W/out" $PATHS --check -c "$W/job.ini"
it_assert_contains "$W/out" "cannot write to $W/no/such/dir/out.jsonl"

# a run: 0, one JSON line per change
sed -i "s|^path = .*|path = $W/out.jsonl|" "$W/job.ini"
expect_exit 0 "$W/out" $PATHS -c "$W/job.ini"
n=$(grep -c '^{"op":' "$W/out.jsonl")
it_assert_eq 25 "$n" "5 transactions x 5 changes as JSON lines"

# a failing job: 1
cat >"$W/job2.ini" <<INI
[job]
name = cli
mode = incremental
state_dir = $W/state2
[source]
plugin = synth
[sink]
plugin = capture
path = $W/cap
fail_after = 1
INI
expect_exit 1 "$W/out" --plugin-dir "$TEST_PLUGIN_DIR" -c "$W/job2.ini"
it_assert_contains "$W/out" "job cli failed"

# the example job files are valid: pgoutput-jsonl.ini gets past the job
# file (exit 3, not 2) and fails its pre-check on the source it cannot reach
sed "s|^conninfo = .*|conninfo = host=127.0.0.1 port=1 connect_timeout=2|; s|^state_dir = .*|state_dir = $W/watch|" \
	"$top_srcdir/conf.d/pgoutput-jsonl.ini" >"$W/watch.ini"
expect_exit 3 "$W/out" $PATHS --check -c "$W/watch.ini"
it_assert_contains "$W/out" 'could not connect to source database "postgres"'

# the README's quickstart job
sed "s|^state_dir = .*|state_dir = $W/quickstart|" "$top_srcdir/conf.d/quickstart.ini" >"$W/qs.ini"
# (scripts/quickstart starts its clusters; here they are absent: the file
# loads, and the pre-check names the source it cannot reach)
sed -i "s|/tmp/syncd-quickstart/run|$W/no-server|" "$W/qs.ini"
expect_exit 3 "$W/out" $PATHS -c "$W/qs.ini" --check
it_assert_contains "$W/out" 'could not connect to source database "shop"'
it_pass "exit codes, listing, help, errors, runs"
