#!/bin/bash
# evbus and Aeron (harness/aeron_tput.c of ../../20261205T0700Z-aeron-side-by-side, plus
# aeron_tput-idle-pauses.diff; built outside the repository) under the same
# reader laziness, 64 B, 1 -> 1: ROUNDS rounds of evbus --idle-pauses 1 and
# 512, Aeron offer --idle-pauses 1 and 512, interleaved; each invocation
# waits for the near placement (cache-line p50 < 200 ns) and records probes.
# usage: run.sh EVBUS_BUILD ROUNDS OUT_DIR
b=$1; n=$2; out=$3
probe() { $b/perf/bench_pingpong --impl cacheline --samples 20000 --warmup 1000 --runs 1 2>&1 | awk '/^cacheline/ {print $3; exit}'; }
near() { for t in $(seq 90); do p=$(probe); [ "${p:-999}" -lt 200 ] && break; sleep 2; done; echo $p; }
for i in $(seq $n); do
  for k in 1 512; do
    p=$(near); echo "# round $i evbus idle-pauses $k probe-before $p" >> $out/raw.txt
    flock /tmp/bench.lock $b/perf/bench_throughput --size 64 --impl ring,ringb,single,claim --runs 1 --duration-ms 400 --idle-pauses $k >> $out/raw.txt 2>&1
    echo "# round $i evbus idle-pauses $k probe-after $(probe)" >> $out/raw.txt
    p=$(near); echo "# round $i aeron idle-pauses $k probe-before $p" >> $out/raw.txt
    flock /tmp/bench.lock /work/aeron-bench/aeron_session.sh - /tmp/aeronmd-idle.log -- /work/aeron-bench/aeron_tput --dir /dev/shm/aeron-sbs --driver-pid @DPID@ --duration-ms 400 --runs 1 --modes offer,claim --idle-pauses $k >> $out/raw.txt 2>&1
    echo "# round $i aeron idle-pauses $k probe-after $(probe)" >> $out/raw.txt
  done
done
