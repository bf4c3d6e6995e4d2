# tests/integration/lib.sh - the harness every integration test sources.
#
# It gives a test a private work directory and throwaway PostgreSQL 15
# clusters (initdb -A trust --nosync, wal_level = logical, loopback only, a
# free port, a private socket directory), started as the postgres user when
# the tests run as root (PostgreSQL refuses to run as root), and stopped and
# removed whatever happens: success, failure, or interruption.
#
#   . "$top_srcdir/tests/integration/lib.sh"
#   pg_start src            # sets src_PORT; psql_on src -c 'select 1'
#   pg_start dst
#   ...assertions: it_assert / it_assert_eq / it_fail...
#   it_pass "what was shown"
set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
IT_NAME=$(basename "$0" .sh)
IT_WORK=$(mktemp -d "${TMPDIR:-/tmp}/syncd-$IT_NAME-XXXXXX")
chmod 755 "$IT_WORK"
IT_CLUSTERS=""

it_log() { printf '%s: %s\n' "$IT_NAME" "$*" >&2; }
it_fail() {
	printf '%s: FAIL: %s\n' "$IT_NAME" "$*" >&2
	exit 1
}
it_assert() { # it_assert "message" command...
	msg=$1
	shift
	"$@" || it_fail "$msg"
}
it_assert_eq() { # it_assert_eq expected actual message
	[ "$1" = "$2" ] || it_fail "$3: expected '$1', got '$2'"
}
# On a miss it shows the lines that share the needle's first words (the
# message that came instead), else the file's last lines.
it_assert_contains() { # it_assert_contains file needle
	grep -qF -- "$2" "$1" && return 0
	local near
	near=$(grep -F -- "$(printf '%s' "$2" | cut -c1-40)" "$1" | tail -n 5 | cut -c1-1500)
	[ -n "$near" ] || near=$(tail -c 2000 "$1")
	it_fail "$1 lacks '$2'; near it: $near"
}
it_pass() { it_log "ok: $*"; }

# Runs a command as the postgres user when we are root.
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# A port a test takes (its clusters, its other servers) stays reserved
# for the test's whole run, in a directory the tests running in parallel
# share: a cluster stopped for an outage keeps its port, which another
# test would otherwise find free and take.
IT_PORTS_DIR=${TMPDIR:-/tmp}/syncd-it-ports
it_reserve() { # it_reserve PORT: reserved for this test ($$), or false
	d="$IT_PORTS_DIR/$1"
	if mkdir "$d" 2>/dev/null; then
		echo $$ >"$d/pid"
		return 0
	fi
	owner=$(cat "$d/pid" 2>/dev/null || true)
	# a reservation whose test is gone is taken over
	[ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null || return 1
	rm -rf "$d"
	mkdir "$d" 2>/dev/null || return 1
	echo $$ >"$d/pid"
}
it_free_port() {
	mkdir -p "$IT_PORTS_DIR"
	chmod 1777 "$IT_PORTS_DIR" 2>/dev/null || true
	port=$(( 20000 + ($$ * 7 + $(date +%N | sed 's/^0*//;s/^$/0/')) % 30000 ))
	while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null ||
		! it_reserve "$port"; do
		port=$((port + 1))
	done
	echo "$port"
}

# pg_start NAME [extra postgresql.conf lines]: a fresh cluster, NAME_PORT set.
# Tests run in parallel: when another cluster took the port first, the
# start is tried again on another one.
pg_start() {
	name=$1
	extra=${2:-}
	dir="$IT_WORK/pg-$name"
	mkdir -p "$dir/data" "$dir/sock"
	[ "$(id -u)" = 0 ] && chown -R postgres "$dir"
	as_pg "$PGBIN/initdb" -A trust --nosync -U postgres -E UTF8 --locale=C.UTF-8 \
		-D "$dir/data" >"$dir/initdb.log" 2>&1 ||
		it_fail "initdb $name: $(cat "$dir/initdb.log")"
	cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
wal_level = logical
max_replication_slots = 16
max_wal_senders = 16
fsync = off
full_page_writes = off
$extra
CONF
	IT_CLUSTERS="$IT_CLUSTERS $name"
	for attempt in 1 2 3 4 5; do
		port=$(it_free_port)
		: >"$dir/server.log"
		[ "$(id -u)" = 0 ] && chown postgres "$dir/server.log"
		if as_pg "$PGBIN/pg_ctl" -w -t 60 -D "$dir/data" -l "$dir/server.log" \
			-o "-p $port" start >/dev/null 2>&1; then
			eval "${name}_PORT=$port"
			it_log "cluster $name on 127.0.0.1:$port"
			return 0
		fi
		grep -q "Address already in use" "$dir/server.log" ||
			it_fail "could not start cluster $name: $(tail -n 20 "$dir/server.log")"
		sleep 0.$((RANDOM % 5 + 1))
	done
	it_fail "could not start cluster $name: no free port after 5 tries"
}

pg_stop() {
	as_pg "$PGBIN/pg_ctl" -w -D "$IT_WORK/pg-$1/data" -m fast stop >/dev/null 2>&1 || true
}

# pg_restart NAME [SECONDS]: stop cluster NAME (fast), wait SECONDS (default
# 0), start it again on the same port.
pg_restart() {
	eval "port=\$${1}_PORT"
	pg_stop "$1"
	sleep "${2:-0}"
	as_pg "$PGBIN/pg_ctl" -w -t 60 -D "$IT_WORK/pg-$1/data" \
		-l "$IT_WORK/pg-$1/server.log" -o "-p $port" start >/dev/null 2>&1 ||
		it_fail "could not restart cluster $1: $(tail -n 20 "$IT_WORK/pg-$1/server.log")"
}

# psql_on NAME [psql args]: connects as postgres to database ${DB:-postgres}.
psql_on() {
	name=$1
	shift
	eval "port=\$${name}_PORT"
	psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres \
		-d "${DB:-postgres}" "$@"
}

# as_pg_dump NAME [pg_dump args]: pg_dump of ${DB:-postgres} on cluster NAME.
as_pg_dump() {
	name=$1
	shift
	eval "port=\$${name}_PORT"
	pg_dump -h 127.0.0.1 -p "$port" -U postgres "$@" "${DB:-postgres}"
}

# table_hash NAME DB TABLE: a hash of the table's rows in a stable order
# (compare a source and a destination table).
table_hash() {
	DB=$2 psql_on "$1" -Atc "select count(*) || ':' || coalesce(md5(string_agg(t::text, E'\\n' order by t::text)), '') from $3 t"
}

it_cleanup() {
	rc=$?
	# what a failed test left running: a load, a syncd
	[ -z "${HIST_LOAD_PID:-}" ] || kill "$HIST_LOAD_PID" 2>/dev/null || true
	[ -z "${SYNCD_PID:-}" ] || kill -9 "$SYNCD_PID" 2>/dev/null || true
	for name in $IT_CLUSTERS; do
		as_pg "$PGBIN/pg_ctl" -D "$IT_WORK/pg-$name/data" -m immediate stop \
			>/dev/null 2>&1 || true
	done
	for d in "$IT_PORTS_DIR"/*; do
		[ "$(cat "$d/pid" 2>/dev/null)" != $$ ] || rm -rf "$d"
	done
	if [ $rc -ne 0 ] && [ -n "${KEEP_WORK:-}" ]; then
		it_log "work directory kept: $IT_WORK"
	else
		rm -rf "$IT_WORK"
	fi
	exit $rc
}
trap it_cleanup EXIT
trap 'exit 130' INT TERM

# syncd_start LOG INI [STREAMS]: runs syncd on INI in the background
# (SYNCD_PID), appending to LOG, and waits until it streams from STREAMS
# more slots (default 1) than LOG already said. Test plugins are found
# through SYNCD_PLUGIN_PATH (default: the test plugin directory).
syncd_start() {
	log=$1
	want=$(( $(grep -c "streaming from slot" "$1" 2>/dev/null || true) + ${3:-1} ))
	SYNCD_PLUGIN_PATH="${SYNCD_PLUGIN_PATH:-$TEST_PLUGIN_DIR}" \
		"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$2" >>"$log" 2>&1 &
	SYNCD_PID=$!
	for _ in $(seq 1 200); do
		[ "$(grep -c "streaming from slot" "$log")" -ge "$want" ] && return 0
		kill -0 $SYNCD_PID 2>/dev/null || it_fail "syncd exited: $(tail -n 20 "$log")"
		sleep 0.1
	done
	it_fail "syncd did not start streaming: $(tail -n 20 "$log")"
}

# syncd_stop [PID] [LOG]: SIGTERM, and the exit code must be 0.
syncd_stop() {
	pid=${1:-$SYNCD_PID}
	kill -TERM "$pid"
	wait "$pid" || it_fail "syncd exit $?: $(tail -n 20 "${2:-/dev/null}")"
}

# slot_wait NAME SLOT LSN: until SLOT of cluster NAME has confirmed LSN
# (120 s at most); fails naming the slot otherwise.
slot_wait() {
	for _ in $(seq 1 1200); do
		[ "$(psql_on "$1" -Atc "select confirmed_flush_lsn >= '$3' from pg_replication_slots where slot_name = '$2'")" = t ] && return 0
		sleep 0.1
	done
	it_fail "slot $2 did not confirm $3 within 120 s"
}

# ---- fault scenarios: an insert-only history table, hist (id, v, ...) ----
# hist_load_start / hist_load_stop: small insert transactions into src's
# hist in the background; one that fails (the source is down) is not in
# the source either.
hist_load_start() {
	rm -f "$IT_WORK/load.stop"
	(
		while [ ! -e "$IT_WORK/load.stop" ] && [ -d "$IT_WORK" ]; do
			psql_on src -c "insert into hist (v) select (random() * 1000)::int from generate_series(1, 5)" \
				>/dev/null 2>&1 || sleep 0.2
		done
	) &
	HIST_LOAD_PID=$!
}
hist_load_stop() {
	touch "$IT_WORK/load.stop"
	wait "$HIST_LOAD_PID" || true
}
# hist_converged SLOT WHAT: once SLOT confirmed the source's current
# position, the destination's hist equals the source's (count and md5 of
# every row): nothing lost, nothing applied twice. With HIST_GROWS set,
# hist must also have grown since the last call.
hist_converged() {
	local end a b n
	end=$(psql_on src -Atc "select pg_current_wal_lsn()")
	slot_wait src "$1" "$end"
	a=$(table_hash src postgres hist)
	b=$(table_hash dst postgres hist)
	it_assert_eq "$a" "$b" "$2: destination hist (count:md5) equals the source's"
	n=${a%%:*}
	[ "$n" -gt "${HIST_N:-0}" ] || [ -z "${HIST_GROWS:-}" ] ||
		it_fail "$2: nothing was inserted since the last scenario ($n rows)"
	HIST_N=$n
	it_pass "$2: $n rows, nothing lost or added"
}
# syncd_alive WHAT LOG: syncd ($SYNCD_PID) still runs after WHAT
syncd_alive() {
	kill -0 "$SYNCD_PID" 2>/dev/null || it_fail "syncd exited after $1: $(tail -n 20 "$2")"
}
