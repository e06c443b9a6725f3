#!/bin/sh
# run-bench.sh BENCH_REPLAY AHASD_TRACE: the benchmark of bench/RESULTS.md.
# Synthetic traces go to $BENCH_DIR (default /tmp), made once.
set -eu
bench=$1
trace=$2
dir=${BENCH_DIR:-/tmp}
for spec in 4096:1m 16384:4m; do
	n=${spec%%:*}
	f="$dir/bench-${spec#*:}.trace"
	[ -f "$f" ] || "$trace" synth --sequences "$n" --tokens 256 -o "$f"
done
exec "$bench" --repeat "${BENCH_REPEAT:-3}" "$dir/bench-1m.trace" "$dir/bench-4m.trace"
