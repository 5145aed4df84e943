#!/bin/bash
# Line-padded frames (ring version 6) against the build before them, and
# against Aeron's offer / try_claim (the eleventh session's harness, built
# outside the repository), 1 -> 1, near placement only.
#   run.sh BEFORE_BUILD AFTER_BUILD ROUNDS OUT_DIR
# Per round, each invocation waiting for the near placement (cache-line
# p50 < 200 ns) and recording its probes before and after:
#   64 B: before, after, Aeron (reader pauses once when it finds nothing);
#   sizes 16,64,256,1K,64K: before, after (publish, claim, batch);
#   round trip 64 B: before, after;
#   the producer alone (bench_solo, no reader), publish and claim: before, after.
a=$1; b=$2; n=$3; out=$4
probe() { $a/perf/bench_pingpong --impl cacheline --samples 20000 --warmup 1000 --runs 1 2>&1 | awk '/^cacheline/ {print $3; exit}'; }
near() { for t in $(seq 90); do p=$(probe); [ "${p:-999}" -lt 200 ] && break; sleep 2; done; echo $p; }
run() { # TAG FILE CMD...
  local tag=$1 f=$2; shift 2
  echo "# round $i $tag probe-before $(near)" >> $out/$f
  flock /tmp/bench.lock "$@" >> $out/$f 2>&1
  echo "# round $i $tag probe-after $(probe)" >> $out/$f
}
for i in $(seq $n); do
  for x in before:$a after:$b; do
    run ${x%%:*} t64.txt ${x#*:}/perf/bench_throughput --size 64 --impl ring,ringb,single,claim --runs 1 --duration-ms 400
  done
  run aeron t64.txt /work/aeron-bench/aeron_session.sh - /tmp/aeronmd-line.log -- /work/aeron-bench/aeron_tput --dir /dev/shm/aeron-sbs --driver-pid @DPID@ --duration-ms 400 --runs 1 --modes offer,claim --idle-pauses 1
  for x in before:$a after:$b; do
    run ${x%%:*} sizes.txt ${x#*:}/perf/bench_throughput --size 16,64,256,1K,64K --impl ring,single,claim,batch --runs 1 --duration-ms 300
    run ${x%%:*} rtt.txt ${x#*:}/perf/bench_pingpong --runs 1 --samples 100000
    for m in publish claim; do
      run ${x%%:*} solo.txt taskset -c 0 ${x#*:}/perf/bench_solo --mode $m
    done
  done
done
