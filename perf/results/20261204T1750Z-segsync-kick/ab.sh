#!/bin/bash
# usage: ab.sh ROUNDS OUT LABEL=LIBDIR...   interleaved, fio beside in each invocation
rounds=$1 out=$2; shift 2
for r in $(seq 1 $rounds); do
  for lv in "$@"; do
    l=${lv%%=*} lib=${lv#*=}
    echo "### round $r lib $l" >> $out
    flock /tmp/bench.lock env LD_LIBRARY_PATH=$lib /tmp/wb-bench_durable --ring 32M --impl async-batch,dio-batch --bytes 1G --runs 1 --verify 0 ${EXTRA:-} 2>&1 | grep -E "^  run|^# cmd" >> $out
  done
done
