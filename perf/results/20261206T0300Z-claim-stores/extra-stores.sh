#!/bin/bash
# A/B: publish with 12 extra private stores (build-b) against as main (build-a)
cd /work/wt/exp
for r in $(seq 1 $1); do
  for v in a b; do
    echo "### round $r variant $v"
    flock /tmp/bench.lock build-$v/perf/bench_throughput --size 64 --impl ring,single,claim --runs 3 --duration-ms 300 2>&1 | grep -E "^64 "
  done
done
