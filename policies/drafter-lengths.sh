#!/bin/sh
# drafter-lengths.sh [BUILD_DIR] [sweep]: the draft-length tables of
# policies/DRAFTERS.md. Run from the source root:
#
#   sh policies/drafter-lengths.sh build         every built-in drafter with
#       its default parameters, under the sync policy on npu-pim, on each
#       shipped capture and on the 7b-instruct profiles
#   sh policies/drafter-lengths.sh build sweep   the choices the publications
#       leave open (and the published alternatives), on the 7b-instruct
#       profiles only
#
# The profile traces are generated into $DRAFTER_LENGTHS_DIR (default /tmp).
# For each run it prints the mean batch length (metrics.mean_draft_len) and
# the population standard deviation of the batch lengths, counted from the
# draft events (one per drafted token, keyed by sequence and batch).
set -eu
build=${1:-build}
mode=${2:-defaults}
dir=${DRAFTER_LENGTHS_DIR:-/tmp}
db="$dir/drafter-lengths-$mode.db"
p7="$dir/drafter-lengths-7b-instruct.msgpack"
p7s="$dir/drafter-lengths-7b-instruct-sampled.msgpack"

"$build/tools/ahasd-trace" synth --profile 7b-instruct -o "$p7" >/dev/null
"$build/tools/ahasd-trace" synth --profile 7b-instruct-sampled \
	-o "$p7s" >/dev/null
rm -f "$db" "$db-wal" "$db-shm"

# run DRAFTER LABEL [PARAM...] TRACE...: one run per trace
run() {
	d=$1
	label=$2
	shift 2
	params=""
	while [ $# -gt 0 ] && [ "${1#*=}" != "$1" ]; do
		params="$params -P $d.$1"
		shift
	done
	for t in "$@"; do
		# shellcheck disable=SC2086
		"$build/tools/ahasd-replay" -p sync -w npu-pim -d "$d" $params \
			--label "$label" --db "$db" --events "$t" >/dev/null
	done
}

case $mode in
defaults)
	for t in traces/*.msgpack "$p7" "$p7s"; do
		for d in fixed specdecpp svip adaedl banditspec; do
			run "$d" defaults "$t"
		done
	done
	;;
sweep)
	run specdecpp "h=0.7 (sample.py)" h=0.7 "$p7" "$p7s"
	run specdecpp "predictor=entropy" predictor=entropy "$p7" "$p7s"
	run svip "c=1 (paper eq. 7)" c=1 "$p7" "$p7s"
	for l in 0.3 0.5 0.7 0.9; do
		for p in none lambda all; do
			run adaedl "lambda0=$l persist=$p" lambda0=$l persist=$p \
				"$p7" "$p7s"
		done
	done
	run adaedl "hold=drafted" hold=drafted "$p7" "$p7s"
	run adaedl "max_len=7" max_len=7 "$p7" "$p7s"
	run adaedl "target=0.85 (D&V notebooks)" target=0.85 "$p7" "$p7s"
	run adaedl "target=0.85 persist=lambda" target=0.85 persist=lambda \
		"$p7" "$p7s"
	run banditspec "persist=all" persist=all "$p7" "$p7s"
	run banditspec "index=ucb1" index=ucb1 "$p7" "$p7s"
	run banditspec "index=ucb1 warmup=8 persist=all (old)" index=ucb1 \
		warmup=8 persist=all "$p7" "$p7s"
	;;
*)
	echo "usage: drafter-lengths.sh [BUILD_DIR] [sweep]" >&2
	exit 2
	;;
esac

echo "| trace | drafter | parameters | batches | mean length | std | min | max | acceptance |"
echo "|---|---|---|--:|--:|--:|--:|--:|--:|"
sqlite3 -separator ' | ' "$db" "
with b as (
  select run_id, seq, batch, sum(tokens) as n
  from events where kind = 'draft' group by run_id, seq, batch),
s as (
  select run_id, count(*) as nb, avg(n) as m, avg(n * n) as m2,
         min(n) as lo, max(n) as hi
  from b group by run_id)
select '| ' || replace(replace(replace(r.trace_path, rtrim(r.trace_path,
         replace(r.trace_path, '/', '')), ''), '.msgpack', ''),
         'drafter-lengths-', 'profile '),
       r.drafter, r.label, s.nb,
       printf('%.2f', (select value from metrics
                       where run_id = r.id and name = 'mean_draft_len')),
       printf('%.2f', sqrt(max(s.m2 - s.m * s.m, 0))),
       s.lo, s.hi,
       printf('%.3f', (select value from metrics
                       where run_id = r.id and name = 'acceptance_rate'))
       || ' |'
from runs r join s on s.run_id = r.id order by r.id"
