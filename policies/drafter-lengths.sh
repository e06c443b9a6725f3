#!/bin/sh
# drafter-lengths.sh [BUILD_DIR]: the draft-length table of
# policies/DRAFTERS.md. Every built-in drafter with its default parameters,
# under the sync policy on npu-pim, on each shipped capture and on the
# 7b-instruct profiles (generated into $DRAFTER_LENGTHS_DIR, default /tmp).
# For each run it prints the mean batch length (metrics.mean_draft_len) and
# the population standard deviation of the batch lengths, counted from the
# draft events (one per drafted token, keyed by sequence and batch).
# Run from the source root: sh policies/drafter-lengths.sh build
set -eu
build=${1:-build}
dir=${DRAFTER_LENGTHS_DIR:-/tmp}
db="$dir/drafter-lengths.db"
drafters="fixed specdecpp svip adaedl banditspec"

"$build/replay/ahasd-trace" synth --profile 7b-instruct \
	-o "$dir/drafter-lengths-7b-instruct.msgpack" >/dev/null
"$build/replay/ahasd-trace" synth --profile 7b-instruct-sampled \
	-o "$dir/drafter-lengths-7b-instruct-sampled.msgpack" >/dev/null

traces=""
for t in traces/*.msgpack; do
	traces="$traces $t"
done
traces="$traces $dir/drafter-lengths-7b-instruct.msgpack"
traces="$traces $dir/drafter-lengths-7b-instruct-sampled.msgpack"

rm -f "$db" "$db-wal" "$db-shm"
for t in $traces; do
	for d in $drafters; do
		"$build/replay/ahasd-replay" -p sync -w npu-pim -d "$d" \
			--db "$db" --events "$t" >/dev/null
	done
done

echo "| trace | drafter | batches | mean length | std | min | max | acceptance |"
echo "|---|---|--:|--:|--:|--:|--:|--:|"
sqlite3 -separator ' | ' "$db" "
with b as (
  select run_id, seq, batch, sum(tokens) as n
  from events where kind = 'draft' group by run_id, seq, batch),
s as (
  select run_id, count(*) as nb, avg(n) as m, avg(n * n) as m2,
         min(n) as lo, max(n) as hi
  from b group by run_id)
select '| ' || replace(replace(r.trace_path, rtrim(r.trace_path,
         replace(r.trace_path, '/', '')), ''), '.msgpack', ''),
       r.drafter, s.nb,
       printf('%.2f', (select value from metrics
                       where run_id = r.id and name = 'mean_draft_len')),
       printf('%.2f', sqrt(max(s.m2 - s.m * s.m, 0))),
       s.lo, s.hi,
       printf('%.3f', (select value from metrics
                       where run_id = r.id and name = 'acceptance_rate'))
       || ' |'
from runs r join s on s.run_id = r.id order by r.id"
