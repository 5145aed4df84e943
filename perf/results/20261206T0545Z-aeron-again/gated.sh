#!/bin/bash
# gated.sh OUT ROUNDS TAG:CMD [TAG:CMD...]  each CMD near-gated, interleaved per round
out=$1; n=$2; shift 2
P=/work/main/build-perf/perf/bench_pingpong
probe() { $P --impl cacheline --samples 20000 --warmup 1000 --runs 1 2>&1 | awk '/^cacheline/ {print $3; exit}'; }
near() { for t in $(seq 90); do p=$(probe); [ "${p:-999}" -lt 200 ] && break; sleep 2; done; echo $p; }
for i in $(seq $n); do
  for tc in "$@"; do
    tag=${tc%%:*}; cmd=${tc#*:}
    echo "# round $i $tag probe-before $(near)" >> $out
    flock /tmp/bench.lock bash -c "$cmd" >> $out 2>&1
    echo "# round $i $tag probe-after $(probe)" >> $out
  done
done
