#!/bin/bash
# syncd@.service (issue 20, item 2): systemd-analyze verify passes (with
# the man pages its Documentation= names installed), systemd-analyze
# security rates its hardening OK, and its ExecStart line, run the way
# systemd would (as the syncd user when the test runs as root, with
# $STATE_DIRECTORY made for it), runs a job that streams and stops cleanly
# on SIGTERM.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
UNIT=$top_builddir/contrib/systemd/syncd@.service
[ -s "$UNIT" ] || it_fail "$UNIT was not built"
grep -q '^RestartPreventExitStatus=2 3$' "$UNIT" || it_fail "a bad job file (2) or pre-check (3) would be restarted"
grep -q '^ExecReload=' "$UNIT" && it_fail "ExecReload: syncd does not reload"

# the unit as installed, but for the binary: the one under test
mkdir -p "$W/units"
bindir=$(sed -n 's|^ExecStart=\(.*\)/syncd -c .*|\1|p' "$UNIT")
[ -n "$bindir" ] || it_fail "no ExecStart in $UNIT"
sed "s|^ExecStart=$bindir/syncd |ExecStart=$SYNCD |" "$UNIT" >"$W/units/syncd@demo.service"
$MAKE -s -C "$top_builddir" install-man DESTDIR="$W/root" >"$W/install.out" 2>&1 ||
	it_fail "make install-man: $(tail "$W/install.out")"
MANPATH=$(dirname "$(dirname "$(find "$W/root" -name syncd.1 | head -n 1)")")
export MANPATH
(cd "$W/units" && systemd-analyze verify ./syncd@demo.service) >"$W/verify.out" 2>&1 ||
	it_fail "systemd-analyze verify: $(cat "$W/verify.out")"
[ -s "$W/verify.out" ] && it_fail "systemd-analyze verify says: $(cat "$W/verify.out")"
(cd "$W/units" && systemd-analyze security --offline=true ./syncd@demo.service) >"$W/security.out" 2>&1 ||
	it_fail "systemd-analyze security: $(tail "$W/security.out")"
level=$(sed -n 's/.*Overall exposure level for syncd@demo.service: \([0-9.]*\) .*/\1/p' "$W/security.out")
[ -n "$level" ] || it_fail "no exposure level: $(tail -n 3 "$W/security.out")"
awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' || it_fail "exposure level $level: $(grep '✗' "$W/security.out" | head)"
it_pass "systemd-analyze verify passes; security exposure level $level"

# ---- its ExecStart line runs a job ----------------------------------------------
pg_start src
pg_start dst
psql_on src -c "create table t (id int primary key, v text)" \
	-c "insert into t select g, 'v' from generate_series(1, 100) g" >/dev/null
chmod 711 "$W"
mkdir -m 755 "$W/etc"
cat >"$W/etc/demo.ini" <<INI
[job]
name = unitjob
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
tables = public.t
status.interval = 200ms
[sink]
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres
target.schema = public
batch.interval = 200ms
INI
chmod 644 "$W/etc/demo.ini"
# what systemd does for StateDirectory=syncd/%i: the directory, owned by
# User=, in $STATE_DIRECTORY
mkdir -p "$W/var/lib/syncd/demo"
cmd=$(sed -n 's/^ExecStart=//p' "$W/units/syncd@demo.service" |
	sed -e "s|%i|demo|g" -e "s| -c .*/demo.ini| -c $W/etc/demo.ini|")
if [ "$(id -u)" = 0 ]; then
	id syncd >/dev/null 2>&1 ||
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin syncd
fi
# as the syncd user when the test runs as root and that user can reach the
# build tree (a clone under a private home cannot be); else as this user
if [ "$(id -u)" = 0 ] && runuser -u syncd -- test -x "$SYNCD" -a -r "$PLUGIN_DIR/pgoutput.la"; then
	chmod 755 "$W/var" "$W/var/lib" "$W/var/lib/syncd"
	chown syncd: "$W/var/lib/syncd/demo"
	chmod 700 "$W/var/lib/syncd/demo"
	as_unit() { runuser -u syncd -- env STATE_DIRECTORY="$W/var/lib/syncd/demo" SYNCD_PLUGIN_PATH= "$@"; }
	who=syncd
else
	as_unit() { env STATE_DIRECTORY="$W/var/lib/syncd/demo" SYNCD_PLUGIN_PATH= "$@"; }
	who=$(id -un)
fi
# shellcheck disable=SC2086
as_unit $cmd >"$W/unit.log" 2>&1 &
SYNCD_PID=$!
for _ in $(seq 1 200); do
	grep -q "streaming from slot" "$W/unit.log" && break
	kill -0 $SYNCD_PID 2>/dev/null || it_fail "the unit's command exited: $(tail "$W/unit.log")"
	sleep 0.1
done
grep -q "streaming from slot" "$W/unit.log" || it_fail "not streaming: $(tail "$W/unit.log")"
psql_on src -c "insert into t values (101, 'w')" >/dev/null
slot_wait src syncd_unitjob "$(psql_on src -Atc 'select pg_current_wal_lsn()')"
it_assert_eq "$(table_hash src postgres t)" "$(table_hash dst postgres t)" "the job's table"
[ -d "$W/var/lib/syncd/demo/unitjob" ] || it_fail "the job's state is not in \$STATE_DIRECTORY: $(ls -R "$W/var/lib/syncd")"
it_assert_eq "$who" "$(stat -c %U "$W/var/lib/syncd/demo/unitjob")" "the state directory's owner"
# runuser hands SIGTERM to syncd; systemd sends it to the whole unit
pkill -TERM -f "^$SYNCD -c $W/etc/demo.ini" || it_fail "no syncd to stop"
rc=0
wait $SYNCD_PID || rc=$?
SYNCD_PID=
it_assert_eq 0 "$rc" "exit code after SIGTERM: $(tail -n 3 "$W/unit.log")"
it_assert_contains "$W/unit.log" "stopped cleanly"
it_pass "the unit's ExecStart runs the job as $who with its state in \$STATE_DIRECTORY and stops cleanly"
