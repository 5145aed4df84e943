#!/usr/bin/env bash
# test_cli_stat_rate.sh - evbus stat --json taken twice while a known load
# runs: the publish rate between the two snapshots (from their own "time"
# fields), of the partition and of the producer alike, is within 10% of
# what the loader (stat_loader.c) logged it had published at those two
# instants. Counts, not speed: a loaded host only makes the loader catch
# up later, which both sides see.
#
# Usage: test_cli_stat_rate.sh PATH/TO/evbus PATH/TO/stat_loader
set -euo pipefail

EVBUS=${1:?usage: test_cli_stat_rate.sh PATH/TO/evbus PATH/TO/stat_loader}
LOADER=${2:?usage: test_cli_stat_rate.sh PATH/TO/evbus PATH/TO/stat_loader}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

test_rate_matches_the_load() {
    begin "stat --json twice: rates within 10% of the loader's own count"
    run create load
    "$LOADER" "$BUS" load 20000 5 "$TMP/load.log" >"$TMP/loader.out" 2>"$TMP/loader.err" &
    BG_PID=$!
    check "loader under way" wait_for 10 test -s "$TMP/load.log"
    sleep 0.5
    "$EVBUS" stat load --bus "$BUS" --json >"$TMP/s1.json"
    sleep 2
    "$EVBUS" stat load --bus "$BUS" --json >"$TMP/s2.json"
    wait_bg 30
    check "loader finished" rc_is 0
    check "rates agree" python3 - "$TMP/s1.json" "$TMP/s2.json" "$TMP/load.log" <<'PY'
import bisect, json, sys
s1, s2 = (json.load(open(f)) for f in sys.argv[1:3])
log = [tuple(map(float, l.split())) for l in open(sys.argv[3]) if l.strip()]
times = [t for t, _ in log]

def loaded(t):
    """Events the loader had published at time t (interpolated between
    its log lines, which are at most a few ms apart)."""
    i = bisect.bisect_left(times, t)
    if i == 0 or i == len(log):
        sys.exit("snapshot at %f outside the loader's log [%f, %f]" % (t, times[0], times[-1]))
    (ta, na), (tb, nb) = log[i - 1], log[i]
    return na + (nb - na) * (t - ta) / (tb - ta)

def part(s):
    return s["topics"][0]["partitions"][0]

dt = s2["time"] - s1["time"]
want = (loaded(s2["time"]) - loaded(s1["time"])) / dt
got = (part(s2)["published"] - part(s1)["published"]) / dt
prod = [(part(s)["producers"] or [{"published": -1}])[0]["published"] for s in (s1, s2)]
got_p = (prod[1] - prod[0]) / dt
print("interval %.3f s: loader %.0f ev/s, partition %.0f ev/s, producer %.0f ev/s"
      % (dt, want, got, got_p))
ok = want > 1000 and abs(got - want) <= 0.1 * want and abs(got_p - want) <= 0.1 * want
sys.exit(0 if ok else 1)
PY
    end
}

test_rate_matches_the_load

finish
