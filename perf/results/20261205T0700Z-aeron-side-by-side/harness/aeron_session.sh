#!/bin/bash
# aeron_session.sh - written for the evbus/Aeron side-by-side measurement
# (perf/results/20261205T-aeron-side-by-side); not part of evbus.
# Starts Aeron's C media driver (built from public source outside the repo),
# runs one Aeron benchmark command against it, stops the driver (SIGINT, by
# its pid) so that it never runs while evbus is measured.
#   aeron_session.sh DRIVER_PIN(-|cpu) LOG -- CMD...   (CMD may use @DPID@)
set -u
HERE=/work/aeron-bench
PIN=$1; LOG=$2; shift 3
ENVS=$(grep -v '^#' $HERE/driver.env)
if [ "$PIN" = "-" ]; then
  env $ENVS /work/aeron-build/binaries/aeronmd > "$LOG" 2>&1 &
else
  env $ENVS taskset -c "$PIN" /work/aeron-build/binaries/aeronmd > "$LOG" 2>&1 &
fi
DPID=$!
for i in $(seq 100); do [ -e /dev/shm/aeron-sbs/cnc.dat ] && break; sleep 0.05; done
sleep 0.3
echo "# driver pid $DPID, pin $PIN, affinity: $(taskset -pc $DPID 2>&1 | sed 's/.*: //')"
ARGS=()
for a in "$@"; do ARGS+=("${a//@DPID@/$DPID}"); done
echo "\$ ${ARGS[*]}"
"${ARGS[@]}"
RC=$?
kill -INT $DPID; wait $DPID
echo "# driver exit; rc of command $RC"
exit $RC
