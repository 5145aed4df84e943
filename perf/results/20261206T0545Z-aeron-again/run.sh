#!/bin/bash
# evbus main against Aeron IPC (1.48, the eleventh session's harness, built
# from public source outside the repository: /work/aeron-build, and
# /work/aeron-bench/aeron_tput with the twelfth session's --idle-pauses
# patch), 64 B, producer on CPU 0, reader on CPU 1, near placement only.
#   run.sh EVBUS_BUILD ROUNDS OUT_DIR
# Per round, each invocation waiting for the near placement (cache-line
# p50 < 200 ns) and recording its probes before and after:
#   t64.txt   reader pauses once when it finds nothing: evbus shared,
#             evbus --exclusive, Aeron offer/try_claim/exclusive offer/
#             exclusive try_claim
#   lazy.txt  reader pauses 512 times (~12 us) when it finds nothing:
#             evbus shared, Aeron offer/try_claim
#   rtt.txt   round trip: bench_pingpong (cache line, evbus), Aeron cping/cpong
b=$1; n=$2; out=$3
A=/work/aeron-bench
probe() { $b/perf/bench_pingpong --impl cacheline --samples 20000 --warmup 1000 --runs 1 2>&1 | awk '/^cacheline/ {print $3; exit}'; }
near() { for t in $(seq 90); do p=$(probe); [ "${p:-999}" -lt 200 ] && break; sleep 2; done; echo $p; }
run() { # TAG FILE CMD...
  local tag=$1 f=$2; shift 2
  echo "# round $i $tag probe-before $(near) load $(cut -d' ' -f1-3 /proc/loadavg)" >> $out/$f
  flock /tmp/bench.lock "$@" >> $out/$f 2>&1
  echo "# round $i $tag probe-after $(probe)" >> $out/$f
}
BT="$b/perf/bench_throughput --size 64 --impl ring,ringb,single,claim --runs 1 --duration-ms 400"
AT="$A/aeron_session.sh - /tmp/aeronmd-again.log -- $A/aeron_tput --dir /dev/shm/aeron-sbs --driver-pid @DPID@ --duration-ms 400 --runs 1"
for i in $(seq $n); do
  run evbus t64.txt $BT
  run evbus-x t64.txt $BT --exclusive
  run aeron t64.txt $AT --modes offer,claim,xoffer,xclaim --idle-pauses 1
  run evbus lazy.txt $BT --idle-pauses 512
  run aeron lazy.txt $AT --modes offer,claim --idle-pauses 512
  run evbus rtt.txt $b/perf/bench_pingpong --impl cacheline,evbus --runs 1 --samples 200000
  run aeron rtt.txt $A/aeron_session.sh - /tmp/aeronmd-again-rtt.log -- $A/pingpong_session.sh 200000 20000
done
