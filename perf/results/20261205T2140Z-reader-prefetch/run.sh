#!/bin/bash
# A/B of the reader's prefetch of the next frame's second line (EVB_PF set
# or not, same binary), near placement only, interleaved.
b=/work/main/build-perf; n=$1; out=$2
probe() { $b/perf/bench_pingpong --impl cacheline --samples 20000 --warmup 1000 --runs 1 2>&1 | awk '/^cacheline/ {print $3; exit}'; }
near() { for t in $(seq 90); do p=$(probe); [ "${p:-999}" -lt 200 ] && break; sleep 2; done; echo $p; }
run() { local tag=$1 f=$2; shift 2
  echo "# round $i $tag probe-before $(near)" >> $out/$f
  flock /tmp/bench.lock "$@" >> $out/$f 2>&1
  echo "# round $i $tag probe-after $(probe)" >> $out/$f; }
for i in $(seq $n); do
  run off rtt.txt env $b/perf/bench_pingpong --runs 1 --samples 100000
  run on rtt.txt env EVB_PF=1 $b/perf/bench_pingpong --runs 1 --samples 100000
  run off tput.txt env $b/perf/bench_throughput --size 64 --impl single,claim --runs 1 --duration-ms 400 --read next
  run on tput.txt env EVB_PF=1 $b/perf/bench_throughput --size 64 --impl single,claim --runs 1 --duration-ms 400 --read next
done
