#!/bin/bash
# A/B of the builds in $BUILDS (build directories), interleaved, each
# invocation started in the near placement (cache-line p50 < 200 ns):
#   BUILDS="A B" ab_run.sh ROUNDS OUT_FILE bench_throughput-args...
# near.py OUT_FILE LABEL=REGEX... keeps the runs whose own probe is near.
n=$1; out=$2; shift 2
probe() { /work/main/build-perf/perf/bench_pingpong --impl cacheline --samples 20000 --warmup 1000 --runs 1 2>&1 | awk '/^cacheline/ {print $3; exit}'; }
for i in $(seq $n); do
  for b in $BUILDS; do
    for t in $(seq 90); do p=$(probe); [ "${p:-999}" -lt 200 ] && break; sleep 2; done
    echo "# round $i build $b probe-before $p" >> $out
    flock /tmp/bench.lock $b/perf/bench_throughput "$@" >> $out 2>&1
    echo "# round $i build $b probe-after $(probe)" >> $out
  done
done
