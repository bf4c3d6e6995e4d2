#!/bin/sh
# tests/fuzz/capture_pgoutput_corpus.sh - captures the seed corpus of
# tests/fuzz/pgoutput_fuzz from a real PostgreSQL 15 stream.
#
#   tests/fuzz/capture_pgoutput_corpus.sh [OUTDIR]
#
# OUTDIR defaults to tests/fuzz/corpus/pgoutput beside this script; files
# named NN-* in it are replaced. The script starts a throwaway cluster
# (initdb as the postgres user when run as root, wal_level = logical,
# logical_decoding_work_mem = 64kB, no TCP: a private socket directory and a
# free port number), removed again whatever happens. It creates tables, a
# publication for all of them and a pgoutput slot, then runs a workload in
# five phases, each of which becomes one corpus file:
#
#   01-dml                   inserts (an enum column, so a Type message;
#                            an empty string, NULLs, bytea, arrays), an
#                            update that leaves a large incompressible
#                            TOASTed text untouched ('u' values), a key
#                            change and a delete ('K' old keys), replica
#                            identity USING INDEX and NOTHING
#   02-full-truncate-message REPLICA IDENTITY FULL update and delete ('O'
#                            old rows), TRUNCATE ... RESTART IDENTITY and
#                            TRUNCATE ... CASCADE, a transactional and a
#                            non-transactional pg_logical_emit_message
#   03-stream-commit         a transaction larger than the decoding memory:
#                            streamed in blocks (Stream Start/Stop), then
#                            Stream Commit
#   04-stream-abort          the same, rolled back: Stream Abort
#   05-stream-savepoint      a streamed transaction whose subtransaction is
#                            undone with ROLLBACK TO SAVEPOINT (Stream Abort
#                            of the subtransaction), then committed
#
# The messages are read with pg_logical_slot_peek_binary_changes (protocol
# version 2, streaming on, messages on); the row count after each phase
# says where its messages end. Each file is in the fuzz target's input
# format: the settings byte 0x01 (protocol version 2), then each message as
# a 2-byte big-endian length and its bytes. The script checks that every
# phase produced what it is for (e.g. a subtransaction's Stream Abort) and
# fails otherwise; it also fails if a message exceeds 65535 bytes or a file
# exceeds the fuzzing max_len (262144 bytes).
#
# Needs: PostgreSQL 15 server binaries (PGBIN, default
# /usr/lib/postgresql/15/bin), psql, perl. Takes a few seconds.
set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
here=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$here/corpus/pgoutput}
MAX_FILE=262144

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgoutput-corpus-XXXXXX")
chmod 755 "$WORK"
DATA=$WORK/data
SOCK=$WORK/sock
started=no

cleanup() {
	rc=$?
	if [ $started = yes ]; then
		as_pg "$PGBIN/pg_ctl" -D "$DATA" -m immediate stop \
			>/dev/null 2>&1 || true
	fi
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	printf 'capture_pgoutput_corpus: %s\n' "$*" >&2
	exit 1
}

# PostgreSQL refuses to run as root.
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# A port number nobody listens on (only the socket's name uses it).
free_port() {
	port=$((20000 + ($$ * 7 + $(date +%N | sed 's/^0*//;s/^$/0/')) % 30000))
	while [ -e "$SOCK/.s.PGSQL.$port" ] ||
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
		port=$((port + 1))
	done
	echo "$port"
}

mkdir -p "$DATA" "$SOCK" "$OUT"
[ "$(id -u)" = 0 ] && chown -R postgres "$WORK"
as_pg "$PGBIN/initdb" -A trust --nosync -U postgres -E UTF8 \
	--locale=C.UTF-8 -D "$DATA" >"$WORK/initdb.log" 2>&1 ||
	fail "initdb: $(cat "$WORK/initdb.log")"
PORT=$(free_port)
cat >>"$DATA/postgresql.conf" <<CONF
listen_addresses = ''
port = $PORT
unix_socket_directories = '$SOCK'
wal_level = logical
max_replication_slots = 4
max_wal_senders = 4
logical_decoding_work_mem = 64kB
fsync = off
full_page_writes = off
CONF
started=yes
as_pg "$PGBIN/pg_ctl" -w -t 60 -D "$DATA" -l "$WORK/server.log" start \
	>/dev/null || fail "could not start PostgreSQL: $(tail -n 20 "$WORK/server.log")"

psql_() {
	PGOPTIONS='-c client_min_messages=warning' "$PGBIN/psql" -X -q \
		-v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres \
		-d postgres "$@"
}

# The workload's statements; their results are not needed.
run() {
	psql_ -o /dev/null
}

PEEK="pg_logical_slot_peek_binary_changes('corpus', NULL, NULL,
	'proto_version', '2', 'publication_names', 'pub',
	'streaming', 'on', 'messages', 'true')"

# The number of messages in the slot so far: where a phase ends.
count() {
	psql_ -A -t -c "SELECT count(*) FROM $PEEK"
}

run <<'SQL'
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE items (id int PRIMARY KEY, name varchar(64), price numeric(10,2),
	feeling mood, tags text[], raw bytea, doc text, seen timestamptz);
-- out of line and uncompressed, whatever the data
ALTER TABLE items ALTER COLUMN doc SET STORAGE EXTERNAL;
CREATE TABLE by_index (code text NOT NULL, v int);
CREATE UNIQUE INDEX by_index_code ON by_index (code);
ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_code;
CREATE TABLE no_ident (v text);
ALTER TABLE no_ident REPLICA IDENTITY NOTHING;
CREATE TABLE full_ident (k int, v text);
ALTER TABLE full_ident REPLICA IDENTITY FULL;
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent);
CREATE TABLE counter (id serial PRIMARY KEY, v text);
CREATE TABLE bulk (id int PRIMARY KEY, v text);
CREATE PUBLICATION pub FOR ALL TABLES;
SELECT pg_create_logical_replication_slot('corpus', 'pgoutput');
SQL

# 01: inserts, updates, deletes
run <<'SQL'
INSERT INTO items VALUES
	(1, 'one', 1.50, 'happy', '{a,b}', '\x00ff00',
	 (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 250)),
	 '2024-04-03 12:00:00+00'),
	(2, '', NULL, 'sad', '{}', '', 'short', '1999-12-31 23:59:59+00');
BEGIN;
INSERT INTO items (id, name) VALUES (3, E'tab\there');
-- doc stays TOASTed and untouched: sent as unchanged ('u')
UPDATE items SET name = 'uno', feeling = 'ok' WHERE id = 1;
COMMIT;
UPDATE items SET id = 10 WHERE id = 2;
DELETE FROM items WHERE id = 3;
INSERT INTO by_index VALUES ('a', 1), ('b', 2);
UPDATE by_index SET code = 'c' WHERE code = 'a';
DELETE FROM by_index WHERE code = 'b';
INSERT INTO no_ident VALUES ('inserts only');
SQL
n1=$(count)

# 02: replica identity full, truncate, logical messages
run <<'SQL'
INSERT INTO full_ident VALUES (1, 'a'), (2, NULL);
UPDATE full_ident SET v = 'b' WHERE k = 1;
DELETE FROM full_ident WHERE k = 2;
INSERT INTO parent VALUES (1);
INSERT INTO child VALUES (1, 1);
INSERT INTO counter (v) VALUES ('x');
TRUNCATE counter, full_ident RESTART IDENTITY;
TRUNCATE parent CASCADE;
BEGIN;
INSERT INTO counter (v) VALUES ('y');
SELECT pg_logical_emit_message(true, 'syncd', 'transactional');
COMMIT;
SELECT pg_logical_emit_message(false, 'syncd', '\x0001020300'::bytea);
-- neither a non-transactional message nor an abort flushes the WAL, and a
-- peek reads only flushed WAL; a checkpoint flushes it and sends nothing
CHECKPOINT;
SQL
n2=$(count)

# 03: a transaction larger than logical_decoding_work_mem, committed
run <<'SQL'
BEGIN;
INSERT INTO bulk SELECT g, 'streamed row ' || g FROM generate_series(1, 1500) g;
UPDATE bulk SET v = 'changed' WHERE id <= 100;
DELETE FROM bulk WHERE id > 1400;
COMMIT;
SQL
n3=$(count)

# 04: the same, rolled back
run <<'SQL'
BEGIN;
INSERT INTO bulk SELECT g, 'rolled back ' || g FROM generate_series(10001, 11500) g;
ROLLBACK;
CHECKPOINT; -- flush the abort, as in 02
SQL
n4=$(count)

# 05: a streamed subtransaction undone, the rest committed
run <<'SQL'
BEGIN;
INSERT INTO bulk SELECT g, 'kept ' || g FROM generate_series(20001, 21000) g;
SAVEPOINT s1;
INSERT INTO bulk SELECT g, 'undone ' || g FROM generate_series(30001, 31200) g;
ROLLBACK TO SAVEPOINT s1;
INSERT INTO bulk VALUES (40001, 'after the rollback');
COMMIT;
SQL
n5=$(count)

psql_ -A -t -c "SELECT encode(data, 'hex') FROM $PEEK WITH ORDINALITY AS c(lsn, xid, data, n) ORDER BY n" \
	>"$WORK/messages.hex"

rm -f "$OUT"/[0-9][0-9]-*
# name:end:features the phase must show (see the perl below)
perl - "$WORK/messages.hex" "$OUT" "$MAX_FILE" \
	"01-dml:$n1:B+C+R+Y+I+U+D+old-K+unchanged-toast+empty-text+ident-d+ident-i+ident-n" \
	"02-full-truncate-message:$n2:old-O+ident-f+truncate-restart-identity+truncate-cascade+message-transactional+message-plain" \
	"03-stream-commit:$n3:S+E+c+stream-xid+first-segment+next-segment" \
	"04-stream-abort:$n4:S+E+abort-top" \
	"05-stream-savepoint:$n5:S+E+c+abort-subxact" <<'PERL'
use strict;
use warnings;

my ($hexfile, $out, $max_file, @phases) = @ARGV;
open my $in, '<', $hexfile or die "$hexfile: $!\n";
my @msgs;
while (my $line = <$in>) {
	chomp $line;
	push @msgs, pack('H*', $line);
}
close $in;

my $in_stream = 0;

# The features of one message, by the pgoutput protocol version 2 layout.
sub features {
	my ($m) = @_;
	my $t = substr($m, 0, 1);
	my @f = ($t);
	if ($t eq 'S') {
		$in_stream = 1;
		push @f, ord(substr($m, 5, 1)) ? 'first-segment' : 'next-segment';
		return @f;
	}
	if ($t eq 'E') {
		$in_stream = 0;
		return @f;
	}
	if ($t eq 'A') {
		my ($xid, $sub) = unpack('N N', substr($m, 1, 8));
		push @f, $xid == $sub ? 'abort-top' : 'abort-subxact';
		return @f;
	}
	my $pos = 1;
	if ($in_stream && $t =~ /[RYIUDTM]/) {
		push @f, 'stream-xid';
		$pos += 4;
	}
	if ($t eq 'R') {
		$pos += 4;
		for (1 .. 2) {
			$pos = index($m, "\0", $pos) + 1;
		}
		push @f, 'ident-' . substr($m, $pos, 1);
	} elsif ($t eq 'T') {
		my $opt = ord(substr($m, $pos + 4, 1));
		push @f, 'truncate-cascade' if $opt & 1;
		push @f, 'truncate-restart-identity' if $opt & 2;
	} elsif ($t eq 'M') {
		push @f, ord(substr($m, $pos, 1)) & 1 ? 'message-transactional'
		                                      : 'message-plain';
	} elsif ($t =~ /[IUD]/) {
		$pos += 4;
		while ($pos < length $m) {
			my $marker = substr($m, $pos, 1);
			push @f, "old-$marker" if $marker =~ /[KO]/;
			my $ncols = unpack('n', substr($m, $pos + 1, 2));
			$pos += 3;
			for (1 .. $ncols) {
				my $kind = substr($m, $pos++, 1);
				push @f, 'unchanged-toast' if $kind eq 'u';
				if ($kind eq 't' || $kind eq 'b') {
					my $len = unpack('N', substr($m, $pos, 4));
					push @f, 'empty-text' if $len == 0;
					$pos += 4 + $len;
				}
			}
		}
		die "tuple data does not end with its message\n"
		    if $pos != length $m;
	}
	return @f;
}

my $start = 0;
for my $p (@phases) {
	my ($name, $end, $want) = split /:/, $p;
	die "$name: ends at message $end of " . scalar(@msgs) . "\n"
	    if $end > @msgs || $end <= $start;
	my $file = "\x01";    # protocol version 2, not parallel
	my %seen;
	for my $m (@msgs[$start .. $end - 1]) {
		die "$name: a message of " . length($m) . " bytes\n"
		    if length $m > 65535;
		$file .= pack('n', length $m) . $m;
		$seen{$_} = 1 for features($m);
	}
	my @missing = grep { !$seen{$_} } split /\+/, $want;
	die "$name: the stream lacks @missing\n" if @missing;
	die "$name: " . length($file) . " bytes, more than $max_file\n"
	    if length $file > $max_file;
	open my $o, '>:raw', "$out/$name" or die "$out/$name: $!\n";
	print $o $file;
	close $o or die "$out/$name: $!\n";
	printf "%-26s %5d messages %7d bytes  %s\n", $name, $end - $start,
	    length $file, join(' ', sort keys %seen);
	$start = $end;
}
die "messages after the last phase\n" if $start != @msgs;
PERL
