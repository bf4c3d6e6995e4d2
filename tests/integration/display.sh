#!/bin/bash
# The full phase's live display on a terminal (tmux), with log lines
# arriving during the copy: four tables (one with a long, non-ASCII name)
# are copied into targets whose trigger sleeps and raises a NOTICE every
# 500 rows, and syncd runs with --log-level debug, so that the notices and
# the sink's statements are logged while the area is drawn. The screen is
# captured every 0.2 s; each capture must show
#  - at most one overall line ("full copy: ..."): no stale or doubled frame;
#  - the area at the bottom, its lines shorter than the width: none wraps;
#  - no line of the area outside it, no area inside a log line;
# and after the copy, the whole history holds no line of the area, every
# notice exactly once and whole, and the summary. At 80 columns, at 150,
# and at 150 narrowed to 80 during the copy (tmux reflows the old frame).
# Then log.format = json on the same terminal: no area, JSON lines only.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
command -v tmux >/dev/null || it_fail "tmux is needed (scripts/deps test)"
# a private server, its socket in the work directory (removed with it)
TMUX_SOCK=$W/tmux
display_cleanup() {
	rc=$?
	set +e # (exit $rc) must reach it_cleanup, which reads its status
	tmux -S "$TMUX_SOCK" kill-server 2>/dev/null
	(exit $rc)
	it_cleanup
}
trap display_cleanup EXIT

pg_start src
pg_start dst

LONG="données_de_la_clientèle_avec_un_nom_vraiment_très_long_2024"
TABLES="big orders_2024_01 orders_2024_02 \"$LONG\""
create_tables() { # create_tables NAME DB
	for t in $TABLES; do
		echo "create table $t (id int primary key, pad text);"
	done | DB=${2:-postgres} psql_on "$1"
}
create_tables src
for t in $TABLES; do
	echo "insert into $t select i, repeat(md5(i::text), 6) from generate_series(1, 20000) i;"
done | psql_on src
psql_on src -c "analyze"
NOTICES=$((4 * 20000 / 500))

# targets that take their time and talk: a NOTICE (logged at debug by the
# sink) and 0.1 s every 500 rows, about 8 s for the copy with 2 threads
targets() { # targets DB
	psql_on dst -c "create database $1"
	create_tables dst "$1"
	{
		cat <<'SQL'
create function slow() returns trigger language plpgsql as $$
begin
  if new.id % 500 = 0 then
    raise notice 'slow row %', new.id;
    perform pg_sleep(0.1);
  end if;
  return new;
end $$;
SQL
		for t in $TABLES; do
			echo "create trigger slow before insert on $t for each row execute function slow();"
			# syncd's sessions run with session_replication_role = replica
			echo "alter table $t enable always trigger slow;"
		done
	} | DB=$1 psql_on dst
}

job() { # job NAME DB
	cat >"$W/$1.ini" <<INI
[job]
name = $1
mode = full
state_dir = $W/state-$1
concurrency = 2
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres
copy.chunk.size = 1MB
[sink]
write_mode = copy
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=$2
target.schema = #{source_schema_name}
INI
}

cat >"$W/tmux.conf" <<'CONF'
set -g history-limit 50000
set -g status off
CONF

# check.pl WIDTH FINAL: reads a capture (-J: wrapped lines joined) and
# says what is wrong with it
cat >"$W/check.pl" <<'PERL'
use strict;
use warnings;
use Encode qw(decode FB_CROAK);
my ($w, $final) = @ARGV;
local $/;
my $raw = <STDIN>;
my $text = eval { decode('UTF-8', $raw, FB_CROAK) };
defined $text or die "not UTF-8 (a character cut in two?)\n";
die "a replacement character (a character cut in two?)\n" if $text =~ /\x{FFFD}/;
my @l = split /\n/, $text;
pop @l while @l && $l[-1] eq '';
my ($overall, $area, $notices) = (0, 0, 0);
my $log = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warning|info|debug) /;
my $table = qr/ rows +\S+ [MG]B  chunks \d+\/\d+$/;
for my $i (0 .. $#l) {
	my $s = $l[$i];
	my $last = $i == $#l; # may be being written
	$s =~ s/ +$//; # -J keeps the blanks a row was cleared with
	if ($s =~ /^full copy: /) {
		$overall++;
		$area = 1;
		die "overall line of " . length($s) . " columns (width $w)\n" if length($s) > $w - 1;
		next;
	}
	if ($area) {
		die "a log line below the area (a frame left behind): '$s'\n" if $s =~ $log;
		next if $s =~ /^  and \d+ more tables$/;
		die "not a table line inside the area: '$s'\n" unless $s =~ /^  \S/ || $last;
		die "table line of " . length($s) . " columns (width $w)\n" if length($s) > $w - 1;
		next;
	}
	die "a line of the area outside it: '$s'\n" if $s =~ $table;
	die "the area inside a log line: '$s'\n" if $s =~ /.full copy: \d+(%| of)/;
	if ($s =~ /destination notice: /) {
		die "a notice cut: '$s'\n" unless $s =~ /destination notice: NOTICE:  slow row \d+$/ || $last;
		$notices++;
	}
}
die "$overall overall lines at once\n" if $overall > 1;
die "the area was left behind\n" if $final && $overall;
print "$overall $notices\n";
PERL

# run NAME COLS [NARROW]: syncd under tmux at COLS columns (narrowed to
# NARROW once the area is up), captured until it exits
run() {
	# (lib.sh's functions set name)
	local rn=$1 cols=$2 narrow=${3:-} width out got seen=0 both=0 n=0 settle=0
	targets "$rn"
	job "$rn" "$rn"
	TERM=${TERM:-xterm} tmux -S "$TMUX_SOCK" -f "$W/tmux.conf" new-session -d \
		-s "$rn" -x "$cols" -y 40 \
		"'$SYNCD' --plugin-dir '$PLUGIN_DIR' --log-level debug -c '$W/$rn.ini'; echo \$? >'$W/$rn.rc'; sleep 3600"
	: >"$W/$rn.long"
	while [ ! -e "$W/$rn.rc" ]; do
		n=$((n + 1))
		[ $n -le 1500 ] || it_fail "$rn: syncd did not finish within 300 s"
		width=$(tmux -S "$TMUX_SOCK" display-message -p -t "$rn" '#{pane_width}')
		tmux -S "$TMUX_SOCK" capture-pane -p -J -t "$rn" >"$W/cap"
		{ echo "---- $width"; cat "$W/cap"; } >>"$W/$rn.caps" # (KEEP_WORK=1)
		if [ $settle -gt 0 ]; then
			# just narrowed: the old frame, reflowed, stays until
			# the next redraw (every 0.5 s); a redraw in that time
			# may be the last to show the long name (its copy ends):
			# the old frame has it whole, never cut with ".."
			settle=$((settle - 1))
			grep "^  public\.données" "$W/cap" >>"$W/$rn.long" || true
			sleep 0.2
			continue
		fi
		out=$(perl "$W/check.pl" "$width" 0 <"$W/cap") ||
			it_fail "$rn at $width columns: $(perl "$W/check.pl" "$width" 0 <"$W/cap" 2>&1)$(printf '\n'; cat "$W/cap")"
		# wrapping shows without -J: no row of the pane is wider
		tmux -S "$TMUX_SOCK" capture-pane -p -t "$rn" |
			perl -CSD -ne 'chomp; exit 1 if length > '"$width" ||
			it_fail "$rn: a row wider than the pane"
		set -- $out
		if [ "$1" = 1 ]; then
			seen=$((seen + 1))
			[ "$2" -gt 0 ] && both=$((both + 1))
			grep "^  public\.données" "$W/cap" >>"$W/$rn.long" || true
			if [ -n "$narrow" ] && [ $seen = 3 ]; then
				tmux -S "$TMUX_SOCK" resize-window -t "$rn" -x "$narrow"
				settle=4
				: >"$W/$rn.long"
			fi
		fi
		sleep 0.2
	done
	it_assert_eq 0 "$(cat "$W/$rn.rc")" "$rn: syncd's exit code"
	[ $seen -ge 5 ] || it_fail "$rn: the area was seen in $seen captures only"
	[ $both -ge 3 ] || it_fail "$rn: log lines arrived with the area shown in $both captures only"
	# the whole history, the area erased: no frame left anywhere, every
	# notice whole and once, the summary
	width=$(tmux -S "$TMUX_SOCK" display-message -p -t "$rn" '#{pane_width}')
	tmux -S "$TMUX_SOCK" capture-pane -p -J -S - -E - -t "$rn" >"$W/$rn.history"
	perl "$W/check.pl" "$width" 1 <"$W/$rn.history" >/dev/null ||
		it_fail "$rn: $(perl "$W/check.pl" "$width" 1 <"$W/$rn.history" 2>&1)"
	got=$(grep -c "destination notice: NOTICE:  slow row [0-9]*$" "$W/$rn.history" || true)
	it_assert_eq "$NOTICES" "$got" "$rn: notices in the history"
	it_assert_contains "$W/$rn.history" "full copy finished: 80000 rows"
	for t in big orders_2024_01 orders_2024_02 "$LONG"; do
		it_assert_contains "$W/$rn.history" "copied public.$t -> public.$t: 20000 rows"
	done
	# the long name: cut in the middle when narrow, whole when wide
	if [ "$cols" -lt 100 ] || [ -n "$narrow" ]; then
		grep -q "^  public\.données_[^ ]*\.\.[^ ]*_2024 " "$W/$rn.long" ||
			it_fail "$rn: the long name, cut in the middle, not seen: $(head -n 3 "$W/$rn.long")"
	else
		grep -q "^  public.$LONG " "$W/$rn.long" ||
			it_fail "$rn: the long name not seen whole: $(head -n 3 "$W/$rn.long")"
	fi
	tmux -S "$TMUX_SOCK" kill-session -t "$rn"
	it_log "$rn: $seen captures with the area, $both of them with log lines arriving"
}

run d80 80
run d150 150
run dnarrow 150 80

# log.format = json on the same terminal: no live area (not one escape
# sequence), every line a JSON object, the progress as log lines
targets djson
job djson djson
sed -i 's/^concurrency = 2$/&\nlog.format = json/' "$W/djson.ini"
tmux -S "$TMUX_SOCK" -f "$W/tmux.conf" new-session -d -s djson -x 80 -y 40 \
	"while [ ! -e '$W/go' ]; do sleep 0.1; done; '$SYNCD' --plugin-dir '$PLUGIN_DIR' --log-level debug -c '$W/djson.ini'; echo \$? >'$W/djson.rc'; sleep 3600"
tmux -S "$TMUX_SOCK" pipe-pane -o -t djson "cat >'$W/djson.raw'"
touch "$W/go"
for _ in $(seq 1 1500); do
	[ -e "$W/djson.rc" ] && break
	sleep 0.2
done
it_assert_eq 0 "$(cat "$W/djson.rc" 2>/dev/null)" "djson: syncd's exit code"
sleep 0.5 # what pipe-pane has not written yet
! grep -q $'\033' "$W/djson.raw" || it_fail "djson: escape sequences with log.format = json"
tr -d '\r' <"$W/djson.raw" | grep -v '^$' >"$W/djson.log"
jq -e -c 'select(.time and .level and .message)' "$W/djson.log" >/dev/null ||
	it_fail "djson: not JSON lines: $(head -n 5 "$W/djson.log")"
it_assert_eq "$(grep -c . "$W/djson.log")" \
	"$(jq -c 'select(.time and .level and .message)' "$W/djson.log" | grep -c .)" "djson: JSON lines"
got=$(jq -r 'select(.job == "djson" and .instance == "sink:dws_copy" and (.message | test("^destination notice: NOTICE:  slow row [0-9]+$"))) | .message' "$W/djson.log" | grep -c . || true)
it_assert_eq "$NOTICES" "$got" "djson: notices"
jq -r .message "$W/djson.log" | grep -q "^full copy: [0-9]* of 4 tables" ||
	it_fail "djson: no progress line"
jq -r .message "$W/djson.log" | grep -q "^full copy finished: 80000 rows" ||
	it_fail "djson: no summary"
it_pass "the live display at 80 and 150 columns and narrowed during the copy: no stale frame, no wrapped line, log lines whole; log.format = json: no display, JSON lines"
