#!/bin/bash
# run.sh BIN DUR PARTS REPS: median over REPS of (make, drop bus dir, measure)
BIN=$1; DUR=$2; P=$3; N=${4:-5}; B=/dev/shm/rc-bench-bus; D=/tmp/rc-bench/data
for i in $(seq 1 $N); do rm -rf $B $D; $BIN $B $D $DUR $P make || exit 1; rm -rf $B; $BIN $B $D $DUR $P measure; done
rm -rf $B $D
