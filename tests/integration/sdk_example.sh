#!/bin/bash
# A third party's view: install syncd into a temporary root, build the
# example plugin out of tree against the installed SDK with its own
# Makefile and pkg-config, and run a job with it.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
root="$W/root"

$MAKE -s -C "$top_builddir" install DESTDIR="$root" >"$W/install.log" 2>&1 ||
	it_fail "make install: $(tail -n 30 "$W/install.log")"
pc=$(find "$root" -name syncd-sdk.pc | head -n 1)
[ -n "$pc" ] || it_fail "syncd-sdk.pc was not installed"
export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$root"
pkg-config --exists syncd-sdk || it_fail "pkg-config does not find syncd-sdk"
it_assert_eq 1 "$(pkg-config --variable=abi_major syncd-sdk)" "ABI major in syncd-sdk.pc"
case "$(pkg-config --variable=plugindir syncd-sdk)" in
*/syncd) ;;
*) it_fail "plugindir: $(pkg-config --variable=plugindir syncd-sdk)" ;;
esac
find "$root" -path '*/syncd/jsonl.so' | grep -q . || it_fail "jsonl plugin not installed"
find "$root" -name example.ini | grep -q . || it_fail "job files not installed"

# the headers compile on their own, with a strict compiler
printf '#include <syncd/syncd.h>\nint main(void){return SYNCD_ABI_MAJOR==1?0:1;}\n' >"$W/h.c"
cc -std=c99 -Wall -Wextra -Werror -pedantic $(pkg-config --cflags syncd-sdk) \
	-o "$W/h" "$W/h.c" || it_fail "installed headers do not compile"

cp -R "$top_srcdir/sdk/examples/jsonl" "$W/ex"
chmod -R u+w "$W/ex"
rm -f "$W/ex/jsonl.so"
make -s -C "$W/ex" >"$W/build.log" 2>&1 || it_fail "example build: $(cat "$W/build.log")"
nm -D --defined-only "$W/ex/jsonl.so" | grep -q ' syncd_plugin_entry$' ||
	it_fail "the example does not export syncd_plugin_entry"

cat >"$W/job.ini" <<INI
[job]
name = sdk_example
mode = incremental
state_dir = $W/state
concurrency = 1
[source]
plugin = synth
transactions = 40
[sink]
plugin = jsonl
path = $W/out.jsonl
transactions = true
INI
# the example (from --plugin-dir) wins over the shipped jsonl
SYNCD_PLUGIN_PATH="$TEST_PLUGIN_DIR:$PLUGIN_DIR" "$SYNCD" --plugin-dir "$W/ex" \
	--list-plugins >"$W/list" 2>&1
it_assert_contains "$W/list" "$W/ex"
SYNCD_PLUGIN_PATH="$TEST_PLUGIN_DIR" "$SYNCD" --plugin-dir "$W/ex" -c "$W/job.ini" \
	>"$W/run.log" 2>&1 || it_fail "job with the example plugin: $(cat "$W/run.log")"
it_assert_eq 200 "$(grep -c '"op":"\(insert\|update\|delete\)"' "$W/out.jsonl")" "changes written"
it_assert_eq 40 "$(grep -c '"op":"commit"' "$W/out.jsonl")" "commit lines"
it_pass "SDK installs, example builds out of tree and runs"
