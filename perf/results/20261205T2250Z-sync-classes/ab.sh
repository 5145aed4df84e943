#!/bin/bash
# A/B: sync waiters woken by class (after, main) or all at once (before,
# 989bf54), 8 one-at-a-time sync producers, interleaved; GNU time's
# voluntary/involuntary context switches of the whole run (all processes).
n=$1; out=$2
for i in $(seq $n); do
  for x in before:/work/wt/before after:/work/main; do
    echo "# round $i ${x%%:*}" >> $out
    flock /tmp/bench.lock /usr/bin/time -f "# ctxsw voluntary %w involuntary %c" \
      ${x#*:}/build-perf/perf/bench_sync --producers 8 --runs 1 --duration-ms 2000 \
      --fsync-samples 1000 --data-root /var/tmp >> $out 2>&1
  done
done
