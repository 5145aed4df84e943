#!/bin/bash
# ab.sh N OUT A_DIR B_DIR [bench_sync args...]
n=$1; out=$2; a=$3; b=$4; shift 4
for i in $(seq $n); do
  for x in A:$a B:$b; do
    echo "# round $i ${x%%:*} ${x#*:}" >> $out
    flock /tmp/bench.lock /usr/bin/time -f "# ctxsw voluntary %w involuntary %c" \
      ${x#*:}/build-perf/perf/bench_sync --runs 1 --duration-ms 2000 \
      --fsync-samples 1000 --data-root /var/tmp "$@" >> $out 2>&1
  done
done
