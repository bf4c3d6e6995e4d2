#!/bin/bash
# sd_notify (issue 20): syncd@.service is Type=notify when syncd is built
# with libsystemd. A stand-in for systemd (a Unix datagram socket in
# $NOTIFY_SOCKET, read by python3) records what syncd sends: STATUS=starting
# and EXTEND_TIMEOUT_USEC while the job starts, READY=1 with STATUS=streaming
# once it streams and never before, WATCHDOG=1 every second when
# $WATCHDOG_USEC asks for it (and none when it does not), STOPPING=1 at
# SIGTERM, then a clean exit. Without libsystemd the unit is Type=exec
# with no watchdog, and this test checks only that.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
UNIT=$top_builddir/contrib/systemd/syncd@.service
[ -s "$UNIT" ] || it_fail "$UNIT was not built"
if ! grep -q '^#define HAVE_LIBSYSTEMD 1' "$top_builddir/config.h"; then
	grep -q '^Type=exec$' "$UNIT" && grep -q '^WatchdogSec=0$' "$UNIT" ||
		it_fail "built without libsystemd, but the unit is not Type=exec without a watchdog"
	it_pass "built without libsystemd: the unit is Type=exec, no watchdog (configure with libsystemd-dev for the rest)"
	exit 0
fi
grep -q '^Type=notify$' "$UNIT" || it_fail "built with libsystemd, but the unit is not Type=notify"
grep -q '^WatchdogSec=[1-9]' "$UNIT" || it_fail "built with libsystemd, but the unit has no watchdog"

cat >"$W/listen.py" <<'PY'
# systemd's side of sd_notify(3): one line per datagram, its lines
# joined with "|", each with the time it came (ms since the start)
import socket, sys, time
path, out = sys.argv[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
t0 = time.monotonic()
print('listening', flush=True)
with open(out, 'a') as f:
    while True:
        data = s.recv(65536).decode()
        f.write('%d %s\n' % ((time.monotonic() - t0) * 1000, data.strip().replace('\n', '|')))
        f.flush()
PY
listener=""
notify_cleanup() {
	rc=$?
	[ -n "$listener" ] && kill "$listener" 2>/dev/null
	set +e
	(exit $rc)
	it_cleanup
}
trap notify_cleanup EXIT
python3 "$W/listen.py" "$W/notify.sock" "$W/notify.log" >"$W/listen.out" 2>&1 &
listener=$!
for _ in $(seq 1 50); do
	grep -q listening "$W/listen.out" 2>/dev/null && break
	sleep 0.1
done
[ -S "$W/notify.sock" ] || it_fail "the stand-in for systemd did not start: $(cat "$W/listen.out")"

# a job that streams until stopped, at 20 transactions a second
job() { # job NAME
	cat >"$W/$1.ini" <<INI
[job]
name = $1
mode = incremental
state_dir = $W/state
[source]
plugin = synth
transactions = 0
rate = 20
[sink]
plugin = capture
path = $W/$1.cap
INI
}
run() { # run NAME [VAR=VALUE...]: runs the job for about 3 s, then SIGTERM
	local n=$1
	shift
	: >"$W/notify.log"
	env NOTIFY_SOCKET="$W/notify.sock" "$@" "$SYNCD" --plugin-dir "$TEST_PLUGIN_DIR" \
		-c "$W/$n.ini" >"$W/$n.log" 2>&1 &
	SYNCD_PID=$!
	for _ in $(seq 1 100); do
		grep -q 'READY=1' "$W/notify.log" && break
		kill -0 "$SYNCD_PID" 2>/dev/null || it_fail "syncd exited: $(tail -n 5 "$W/$n.log")"
		sleep 0.1
	done
	grep -q 'READY=1' "$W/notify.log" || it_fail "no READY=1 within 10 s: $(cat "$W/notify.log")"
	sleep 3
	kill -TERM "$SYNCD_PID"
	rc=0
	wait "$SYNCD_PID" || rc=$?
	SYNCD_PID=""
	it_assert_eq 0 "$rc" "exit code after SIGTERM: $(tail -n 5 "$W/$n.log")"
	sleep 0.3 # the last datagram on its way
	cut -d' ' -f2- "$W/notify.log" >"$W/$n.notify"
}

job n1
run n1 WATCHDOG_USEC=2000000
# READY=1 comes once, with the state, and nothing says STOPPING before it
it_assert_eq 1 "$(grep -c 'READY=1' "$W/n1.notify")" "READY=1 messages"
grep -qx 'READY=1|STATUS=streaming' "$W/n1.notify" ||
	it_fail "READY=1 without STATUS=streaming: $(cat "$W/n1.notify")"
ready=$(grep -n 'READY=1' "$W/n1.notify" | cut -d: -f1)
head -n "$ready" "$W/n1.notify" | grep -q 'STOPPING=1\|WATCHDOG=1' &&
	it_fail "STOPPING or WATCHDOG before READY: $(cat "$W/n1.notify")"
# before READY: the start says so and extends its timeout (this job
# streams within the first second: a long start, which repeats it every
# second, is not played here), after it no more
head -n 1 "$W/n1.notify" | grep -qx 'STATUS=starting' ||
	it_fail "the first message is not STATUS=starting: $(cat "$W/n1.notify")"
head -n "$ready" "$W/n1.notify" | grep -q '^EXTEND_TIMEOUT_USEC=[1-9][0-9]*$' ||
	it_fail "no EXTEND_TIMEOUT_USEC while starting: $(cat "$W/n1.notify")"
tail -n "+$ready" "$W/n1.notify" | grep -q EXTEND_TIMEOUT &&
	it_fail "EXTEND_TIMEOUT_USEC after READY: $(cat "$W/n1.notify")"
# the watchdog: fed about every second while it runs (3 s at least)
dogs=$(grep -c '^WATCHDOG=1$' "$W/n1.notify" || true)
[ "$dogs" -ge 2 ] || it_fail "WATCHDOG=1 $dogs times in 3 s: $(cat "$W/n1.notify")"
# the stop: STOPPING=1 once, the last message
it_assert_eq 1 "$(grep -c 'STOPPING=1' "$W/n1.notify")" "STOPPING=1 messages"
tail -n 2 "$W/n1.notify" | grep -q 'STOPPING=1' ||
	it_fail "STOPPING=1 is not at the end: $(cat "$W/n1.notify")"
it_pass "READY=1 with STATUS=streaming once the job streams, EXTEND_TIMEOUT_USEC before, WATCHDOG=1 $dogs times in 3 s, STOPPING=1 at SIGTERM, exit 0"

# no WatchdogSec= (no $WATCHDOG_USEC): no WATCHDOG=1
job n2
run n2
grep -q 'WATCHDOG=1' "$W/n2.notify" && it_fail "WATCHDOG=1 without a watchdog: $(cat "$W/n2.notify")"
grep -q 'READY=1' "$W/n2.notify" && grep -q 'STOPPING=1' "$W/n2.notify" ||
	it_fail "READY and STOPPING without a watchdog: $(cat "$W/n2.notify")"
it_pass "no watchdog asked for: no WATCHDOG=1; READY and STOPPING still sent"
