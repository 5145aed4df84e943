#!/bin/bash
# quiet_run.sh - written for the evbus/Aeron side-by-side measurement; not
# part of evbus. Run under flock /tmp/bench.lock. Other sessions on this VM
# run test suites that do not take the bench lock; this waits (up to 180 s)
# until the machine looks idle - /proc/loadavg shows <= 2 runnable and no
# more than QUIET_TASKS scheduling entities for 8 samples 0.25 s apart - then
# runs the command, and prints /proc/loadavg before and after it (the last
# field is the last pid: a large pid advance means someone else forked).
QT=${QUIET_TASKS:-112}
t0=$(date +%s); ok=0
while [ $(( $(date +%s) - t0 )) -lt 180 ]; do
  read -r a b c rt last < /proc/loadavg
  r=${rt%/*}; n=${rt#*/}
  if [ "$r" -le 2 ] && [ "$n" -le "$QT" ]; then ok=$((ok+1)); else ok=0; fi
  [ $ok -ge 8 ] && break
  sleep 0.25
done
echo "# quiet-gate: waited $(( $(date +%s) - t0 )) s, quiet=$([ $ok -ge 8 ] && echo yes || echo NO)"
echo "# pre-loadavg: $(cat /proc/loadavg)"
"$@"
rc=$?
echo "# post-loadavg: $(cat /proc/loadavg)"
exit $rc
