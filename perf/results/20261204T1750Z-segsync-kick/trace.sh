#!/bin/bash
# usage: trace.sh LIBDIR IMPL OUT  -- perf record of syscall tracepoints during one bench run
lib=$1 impl=$2 out=$3
ev=""
for s in fdatasync pwrite64 sync_file_range fallocate; do ev="$ev -e syscalls:sys_enter_$s -e syscalls:sys_exit_$s"; done
flock /tmp/bench.lock perf record -q -o $out.data $ev -- env LD_LIBRARY_PATH=$lib /tmp/wb-bench_durable --ring 32M --impl $impl --bytes 1G --runs 1 --verify 0 --no-fio > $out.bench 2>&1
perf script -i $out.data -F tid,time,event,trace > $out.script 2>/dev/null
rm -f $out.data
python3 /tmp/wb-out/parse.py $out.script
grep -E "^  run" $out.bench
