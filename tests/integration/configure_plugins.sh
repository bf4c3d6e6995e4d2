#!/bin/bash
# configure and the plugins' libraries (issue 20): a plugin whose library
# is missing is left out, and the summary says why; asked for by name
# (--enable-plugin-NAME) or with --enable-all-plugins, it is an error.
# ICU is hidden from pkg-config by a wrapper: udf needs it.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
REAL=$(command -v pkg-config) || it_fail "no pkg-config"
cat >"$W/pkg-config" <<SH
#!/bin/sh
for a in "\$@"; do case \$a in icu-*) exit 1 ;; esac; done
exec "$REAL" "\$@"
SH
chmod +x "$W/pkg-config"
conf() { # conf DIR [options]: configure in DIR, output in DIR.out, code in rc
	mkdir -p "$W/$1"
	rc=0
	(cd "$W/$1" && PKG_CONFIG="$W/pkg-config" "$top_srcdir/configure" "${@:2}") >"$W/$1.out" 2>&1 || rc=$?
}
conf auto
it_assert_eq 0 "$rc" "configure without ICU: $(tail -n 5 "$W/auto.out")"
grep -Eq '^ +udf +no \(left out: ICU not found; on Debian: apt-get install libicu-dev\)$' "$W/auto.out" ||
	it_fail "the summary: $(sed -n '/plugins:/,$p' "$W/auto.out")"
grep -Eq '^ +pgoutput +yes$' "$W/auto.out" || it_fail "pgoutput: $(sed -n '/plugins:/,$p' "$W/auto.out")"
grep -q '^#am__append_[0-9]* = plugins/udf.la$' "$W/auto/Makefile" || it_fail "udf is still built: $(grep -n 'plugins/udf.la' "$W/auto/Makefile" | head -n 3)"
it_pass "a plugin whose library is missing is left out, and the summary says why"
conf all --enable-all-plugins
[ "$rc" -ne 0 ] || it_fail "--enable-all-plugins without ICU succeeded"
it_assert_contains "$W/all.out" "plugin udf: ICU not found; on Debian: apt-get install libicu-dev"
conf one --enable-plugin-udf
[ "$rc" -ne 0 ] || it_fail "--enable-plugin-udf without ICU succeeded"
it_assert_contains "$W/one.out" "plugin udf: ICU not found"
conf off --disable-plugin-udf
it_assert_eq 0 "$rc" "--disable-plugin-udf: $(tail -n 5 "$W/off.out")"
grep -Eq '^ +udf +no$' "$W/off.out" || it_fail "the summary of a disabled plugin: $(sed -n '/plugins:/,$p' "$W/off.out")"
it_pass "--enable-all-plugins and --enable-plugin-NAME make a missing library an error"
