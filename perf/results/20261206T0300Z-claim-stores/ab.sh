#!/bin/bash
# A/B: main before (80666ad, /work/wt/base) against main after (/work/main)
for r in $(seq 1 $1); do
  for v in base main; do
    d=/work/wt/base; [ $v = main ] && d=/work/main
    echo "### round $r variant $v"
    flock /tmp/bench.lock $d/build-perf/perf/bench_throughput --size 64 --impl ring,single,claim --runs 3 --duration-ms 300 2>&1 | grep -E "^64 "
  done
done
