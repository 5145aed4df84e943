#!/bin/bash
# Reader idle pauses against the producer's rate, 64 B, 1 -> 1: ROUNDS
# rounds of one bench_throughput invocation per --idle-pauses value,
# interleaved; each invocation waits for the near placement first
# (bench_pingpong's cache-line p50 < 200 ns) and records its probe.
# usage: run.sh BUILD_DIR ROUNDS OUT_DIR
b=$1; n=$2; out=$3
probe() { $b/perf/bench_pingpong --impl cacheline --samples 20000 --warmup 1000 --runs 1 2>&1 | awk '/^cacheline/ {print $3; exit}'; }
for i in $(seq $n); do
  for k in 1 8 64 512; do
    for t in $(seq 90); do p=$(probe); [ "${p:-999}" -lt 200 ] && break; sleep 2; done
    echo "# round $i probe-before $p idle-pauses $k loadavg $(cut -d' ' -f1-4 /proc/loadavg)" >> $out/raw.txt
    flock /tmp/bench.lock $b/perf/bench_throughput --size 64 --impl ring,ringb,single,claim --runs 3 --duration-ms 300 --idle-pauses $k >> $out/raw.txt 2>&1
    echo "# round $i idle-pauses $k probe-after $(probe)" >> $out/raw.txt
  done
done
