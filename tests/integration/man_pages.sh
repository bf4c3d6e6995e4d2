#!/bin/bash
# The manual pages (issue 20, item 3): syncd(1), syncd.ini(5) and
# syncd-plugins(7) render without a groff warning; syncd.ini(5), written
# from the option tables, names every key syncd --plugin-help prints for
# the core and the shipped plugins, with its default; make install puts
# the three in man1, man5 and man7.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
INI=$top_builddir/man/syncd.ini.5
[ -s "$INI" ] || it_fail "$INI was not built"
for page in "$top_srcdir/man/syncd.1" "$INI" "$top_srcdir/man/syncd-plugins.7"; do
	groff -man -Tutf8 -ww -z "$page" >"$W/groff.out" 2>&1 || it_fail "groff $page: $(cat "$W/groff.out")"
	[ -s "$W/groff.out" ] && it_fail "groff warns about $page: $(head -n 5 "$W/groff.out")"
	MANWIDTH=80 man -l "$page" >"$W/page.txt" 2>"$W/man.err" || it_fail "man -l $page: $(cat "$W/man.err")"
	[ -s "$W/page.txt" ] || it_fail "man -l $page printed nothing"
done
it_pass "syncd(1), syncd.ini(5), syncd-plugins(7) render without warnings"

MANWIDTH=200 man -l "$INI" >"$W/ini.txt" 2>/dev/null
n=0
for p in pgoutput dws_upsert dws_copy logical_delete udf file obs; do
	"$SYNCD" --plugin-dir "$PLUGIN_DIR" --plugin-help "$p" >"$W/help.txt" 2>&1 ||
		it_fail "--plugin-help $p: $(cat "$W/help.txt")"
	# "  key   type   default X" lines: the key, and its default
	while read -r key _type rest; do
		grep -qF -- "$key" "$W/ini.txt" || it_fail "syncd.ini(5) lacks $key (of $p)"
		case $rest in
		"default "*)
			d=${rest#default }
			d=${d%%, secret}
			grep -qF -- "Default: $d." "$W/ini.txt" || it_fail "syncd.ini(5): $key's default $d (of $p)"
			;;
		esac
		n=$((n + 1))
	done < <(grep -E '^  [a-z_.#{}-]+ +(string|integer|boolean|duration|size|enum|list|prefix) ' "$W/help.txt")
done
[ "$n" -ge 60 ] || it_fail "only $n keys checked"
for key in metrics.listen alarm.lag alarm.dirty_rows alarm.retained_wal alarm.interval alarm.command log.interval \
	log.format reconnect.max_wait enabled threshold policy archiver; do
	grep -qF -- "$key" "$W/ini.txt" || it_fail "syncd.ini(5) lacks $key"
done
it_pass "syncd.ini(5) names the $n keys --plugin-help prints, with their defaults, and the [job], [dirty] and [monitor] keys"

$MAKE -s -C "$top_builddir" install-man DESTDIR="$W/root" >"$W/install.out" 2>&1 ||
	it_fail "make install-man: $(tail "$W/install.out")"
for f in man1/syncd.1 man5/syncd.ini.5 man7/syncd-plugins.7; do
	found=$(find "$W/root" -path "*/man/$f" | head -n 1)
	[ -n "$found" ] || it_fail "make install put no $f: $(find "$W/root" -type f | head)"
done
it_pass "make install installs the three pages"
