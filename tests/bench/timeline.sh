#!/bin/bash
# tests/bench/timeline.sh INTERVAL PID... - prints, every INTERVAL seconds
# (and the time the sampling takes) until the first PID exits, the CPU
# share (percent of one core) each thread of each PID used since the
# previous line, one column per thread named after its comm (syncd names
# its threads: syncd-source, syncd-stream0, syncd-worker0, ...). cdc.sh
# runs it with TIMELINE=1 to show which stage of the pipeline waits on
# which. The sampling itself takes about 10% of a core.
set -u
iv=$1
shift
tck=$(getconf CLK_TCK)
declare -A last
header=""
t0=$(date +%s.%N)
prev_t=$t0
while kill -0 "$1" 2>/dev/null; do
	now=$(date +%s.%N)
	el=$(echo "$now - $prev_t" | bc)
	prev_t=$now
	line=""
	names=""
	for p in "$@"; do
		for t in /proc/$p/task/*; do
			[ -r "$t/stat" ] || continue
			read -r comm <"$t/comm" 2>/dev/null || continue
			ticks=$(sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{print $12 + $13}') || continue
			[ -n "$ticks" ] || continue
			key="$p/${t##*/}"
			prev=${last[$key]:-$ticks}
			last[$key]=$ticks
			names="$names ${comm:0:14}"
			line="$line $(( (ticks - prev) * 100 / tck ))"
		done
	done
	if [ "$names" != "$header" ]; then
		header=$names
		printf '%8s' s
		for n in $names; do printf ' %14s' "$n"; done
		echo
	fi
	printf '%8.2f' "$(echo "$now - $t0" | bc)"
	for v in $line; do printf ' %14s' "$(awk -v v="$v" -v i="$el" 'BEGIN{printf "%d", (i > 0 ? v / i : 0)}')"; done
	echo
	sleep "$iv"
done
