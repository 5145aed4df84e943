#!/bin/bash
out=$1; n=$2; shift 2
P=/work/main/build-perf/perf/bench_pingpong
probe() { $P --impl cacheline --samples 20000 --warmup 1000 --runs 1 2>&1 | awk '/^cacheline/ {print $3; exit}'; }
near() { for t in $(seq 90); do p=$(probe); [ "${p:-999}" -lt 200 ] && break; sleep 2; done; echo $p; }
for i in $(seq $n); do
  for b in "$@"; do
    echo "# round $i $(basename $b) probe-before $(near)" >> $out
    flock /tmp/bench.lock $b/build-perf/perf/bench_throughput --size ${SIZES:-48,56,64,72,80} --impl single --runs 1 --duration-ms 300 --idle-pauses ${PAUSES:-512} >> $out 2>&1
    echo "# round $i $(basename $b) probe-after $(probe)" >> $out
  done
done
