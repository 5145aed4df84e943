#!/bin/bash
# A/B: pipelined acknowledgements (8 producers, 64 outstanding, 1 KiB,
# open loop at 250 k/s), before (989bf54) and after S5, interleaved.
n=$1; out=$2
for i in $(seq $n); do
  for x in before:/work/wt/before after:/work/main; do
    echo "# round $i ${x%%:*}" >> $out
    flock /tmp/bench.lock /usr/bin/time -f "# ctxsw voluntary %w involuntary %c" \
      ${x#*:}/build-perf/perf/bench_sync --producers 8 --pipeline 64 --rate 250000 --runs 1 \
      --duration-ms 2000 --fsync-samples 1000 --data-root /var/tmp >> $out 2>&1
  done
done
