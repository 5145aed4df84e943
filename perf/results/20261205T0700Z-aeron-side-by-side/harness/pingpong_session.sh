#!/bin/bash
# pingpong_session.sh - written for the evbus/Aeron side-by-side measurement;
# not part of evbus. Aeron's own sample cpong (CPU 1) in the background and
# cping (CPU 0) in the foreground, both on aeron:ipc, 64 B, spinning
# (the samples use aeron_idle_strategy_busy_spinning_idle), then cpong is
# stopped by its pid with SIGINT. Run inside aeron_session.sh.
set -u
B=/work/aeron-build/binaries
# map the log buffers with MAP_POPULATE (Aeron client option), as aeron_tput
# does: otherwise a 200k-message run never wraps the 64 MB term and the
# first touch of every 4 KB page (each ~42 messages) is a page fault
export AERON_CLIENT_PRE_TOUCH_MAPPED_MEMORY=${AERON_CLIENT_PRE_TOUCH_MAPPED_MEMORY:-true}
D=/dev/shm/aeron-sbs
M=${1:-200000}; W=${2:-20000}
taskset -c 1 $B/cpong -p $D -c aeron:ipc -C aeron:ipc > /tmp/cpong.$$ 2>&1 &
CP=$!
sleep 0.3
echo "# AERON_CLIENT_PRE_TOUCH_MAPPED_MEMORY=$AERON_CLIENT_PRE_TOUCH_MAPPED_MEMORY"
echo "\$ taskset -c 1 $B/cpong -p $D -c aeron:ipc -C aeron:ipc &"
echo "\$ taskset -c 0 $B/cping -p $D -c aeron:ipc -C aeron:ipc -L 64 -m $M -w $W"
taskset -c 0 $B/cping -p $D -c aeron:ipc -C aeron:ipc -L 64 -m $M -w $W
RC=$?
kill -INT $CP; wait $CP
echo "# cpong output:"; cat /tmp/cpong.$$; rm -f /tmp/cpong.$$
exit $RC
