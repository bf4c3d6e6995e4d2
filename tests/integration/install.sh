#!/bin/bash
# make install as a user or a package gets it (issue 20): the module
# directory holds NAME.so and no .la; the installed syncd finds the
# installed plugins; the manual pages, the systemd unit and the example
# job file are in place; make uninstall leaves nothing behind.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
R=$W/root
$MAKE -s -C "$top_builddir" install DESTDIR="$R" >"$W/install.out" 2>&1 ||
	it_fail "make install: $(tail "$W/install.out")"
bin=$(find "$R" -path '*/bin/syncd' -type f | head -n 1)
[ -x "$bin" ] || it_fail "no bin/syncd: $(find "$R" -type f | head)"
moddir=$(dirname "$(find "$R" -name pgoutput.so | head -n 1)")
[ -d "$moddir" ] || it_fail "no pgoutput.so installed: $(find "$R" -type f | head -n 20)"
las=$(find "$moddir" -name '*.la')
[ -z "$las" ] || it_fail "libtool archives in the module directory: $las"
for p in pgoutput dws_upsert dws_copy logical_delete udf file obs; do
	[ -f "$moddir/$p.so" ] || it_fail "$p.so is not installed in $moddir"
done
SYNCD_PLUGIN_PATH= "$bin" --plugin-dir "$moddir" --list-plugins >"$W/list.out" 2>&1 ||
	it_fail "installed syncd --list-plugins: $(cat "$W/list.out")"
grep -Eq '^pgoutput +source ' "$W/list.out" || it_fail "the installed syncd lists no pgoutput: $(cat "$W/list.out")"
grep -q "$moddir/pgoutput.so" "$W/list.out" ||
	SYNCD_PLUGIN_PATH= "$bin" --plugin-dir "$moddir" --plugin-help pgoutput | grep -q "file: $moddir/pgoutput.so" ||
	it_fail "pgoutput is not loaded from the installed .so"
for f in man1/syncd.1 man5/syncd.ini.5 man7/syncd-plugins.7; do
	[ -n "$(find "$R" -path "*/man/$f")" ] || it_fail "no $f"
done
[ -n "$(find "$R" -path '*/systemd/system/syncd@.service')" ] || it_fail "no syncd@.service"
[ -n "$(find "$R" -path '*/syncd/conf.d/example.ini')" ] || it_fail "no conf.d/example.ini"
[ -n "$(find "$R" -path '*/include/syncd/plugin.h')" ] || it_fail "no SDK headers"
it_pass "make install: NAME.so without .la, the installed syncd loads them, man pages, unit, example job, SDK"
$MAKE -s -C "$top_builddir" uninstall DESTDIR="$R" >"$W/uninstall.out" 2>&1 ||
	it_fail "make uninstall: $(tail "$W/uninstall.out")"
left=$(find "$R" -type f | head -n 10)
[ -z "$left" ] || it_fail "make uninstall left: $left"
it_pass "make uninstall removes everything"
