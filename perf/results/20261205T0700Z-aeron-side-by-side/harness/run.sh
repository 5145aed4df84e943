#!/bin/bash
# run.sh - written for the evbus/Aeron side-by-side measurement
# (perf/results/20261205T-aeron-side-by-side); not part of evbus.
# Interleaved rounds; every benchmark invocation under flock /tmp/bench.lock
# (with QUIET=1 also behind quiet_run.sh's idle gate; series 2, rounds >= 101).
#   run.sh tput FIRST LAST  throughput: evbus shared, Aeron A, Aeron C, Aeron B, evbus --exclusive
#                           (rounds >= 11 also: evbus shared with --ring-bytes 64M after Aeron B)
#   run.sh rtt FIRST LAST      round trip: evbus pingpong (shared), evbus pingpong --exclusive, Aeron cping/cpong
set -u
OUT=${OUT:-/work/main/perf/results/20261205T-aeron-side-by-side}
H=/work/aeron-bench
BT=/work/main/build-perf/perf/bench_throughput
BP=/work/main/build-perf/perf/bench_pingpong
mkdir -p $OUT
run() { # file, command...
  local f=$1; shift
  { echo "\$ $*"; echo "# $(date -u +%FT%TZ) load: $(cat /proc/loadavg)"; } >> $f
  if [ -n "${QUIET:-}" ]; then
    flock /tmp/bench.lock $H/quiet_run.sh "$@" >> $f 2>&1
  else
    flock /tmp/bench.lock "$@" >> $f 2>&1
  fi
  echo "# rc $?" >> $f
}
PROBE="$BP --impl cacheline --samples 20000 --warmup 1000 --runs 1"
# evbus invocation followed, under the same lock, by a cache-line probe (the
# bench prints its own probe before its runs; this one is after them)
evb() { # file, args...
  local f=$1; shift
  run $f bash -c "$* ; echo '# post-probe:'; $PROBE"
}
case $1 in
tput)
  for r in $(seq -w $2 $3); do
    f=$OUT/tput-r$r.txt; : > $f
    evb $f $BT --size 64 --impl ring,ringb,single,claim --runs 1 --duration-ms 400
    run $f $H/aeron_session.sh - $OUT/aeronmd-tput-r$r-A.log -- $H/aeron_tput --dir /dev/shm/aeron-sbs --driver-pid @DPID@ --duration-ms 400 --runs 1 --modes offer,claim,xoffer,xclaim
    run $f $H/aeron_session.sh - $OUT/aeronmd-tput-r$r-C.log -- $H/aeron_tput --dir /dev/shm/aeron-sbs --driver-pid @DPID@ --duration-ms 400 --runs 1 --modes offer,claim,xoffer,xclaim --channel 'aeron:ipc?term-length=8m'
    run $f $H/aeron_session.sh 0 $OUT/aeronmd-tput-r$r-B.log -- $H/aeron_tput --dir /dev/shm/aeron-sbs --driver-pid @DPID@ --duration-ms 400 --runs 1 --modes offer,claim,xoffer,xclaim
    [ $((10#$r)) -ge 11 ] && evb $f $BT --size 64 --impl ring,ringb,single,claim --runs 1 --duration-ms 400 --ring-bytes 64M
    evb $f $BT --size 64 --impl ring,ringb,single,claim --runs 1 --duration-ms 400 --exclusive
  done ;;
rtt)
  for r in $(seq -w $2 $3); do
    f=$OUT/rtt-r$r.txt; : > $f
    evb $f $BP --impl cacheline,evbus --samples 200000 --runs 1
    run $f bash -c "$PROBE; echo '# aeron:'; $H/aeron_session.sh - $OUT/aeronmd-rtt-r$r.log -- $H/pingpong_session.sh 200000 20000; echo '# post-probe:'; $PROBE"
    evb $f $BP --impl cacheline,evbus --samples 200000 --runs 1 --exclusive
  done ;;
esac
