#!/usr/bin/env bash
# bench_cli_vs_throughput.sh - `evbus bench` against perf/bench_throughput on
# the same configuration (1 producer, 1 consumer pinned to CPUs 0 and 1, a
# lossless subscriber, 1 partition, ring 8 MiB, the same publish path), run
# alternately (which one goes first alternates too) so that drift on a
# shared host hits both alike. Prints every run, then per size and path the
# medians [min..max] of events/s delivered and the median of the per-round
# ratios evbus bench / bench_throughput.
#
# Usage: perf/bench_cli_vs_throughput.sh BUILD_DIR [ROUNDS] [SIZES] [PATHS]
#        (defaults: 7 rounds, sizes "64 1024", paths "batch single"; the
#        timed seconds per run from $DURATION_S, default 1)
set -euo pipefail
BUILD=${1:?usage: bench_cli_vs_throughput.sh BUILD_DIR [ROUNDS] [SIZES] [PATHS]}
ROUNDS=${2:-7}
SIZES=${3:-64 1024}
PATHS=${4:-batch single}
DUR=${DURATION_S:-1}
DUR_MS=$(python3 -c "print(int($DUR * 1000))")
BT="$BUILD/perf/bench_throughput"
EVBUS="$BUILD/tools/evbus"
BUS=$(mktemp -d /dev/shm/evbus-benchcli.XXXXXX)
trap 'rm -rf "$BUS"' EXIT
OUT=$(mktemp)

bt() {  # SIZE PATH: events/s delivered, bench_throughput's consumer clock
    "$BT" --impl "$2" --size "$1" --runs 1 --duration-ms "$DUR_MS" --json 2>/dev/null |
        python3 -c "import json,sys
for l in sys.stdin:
    if l.startswith('{') and '\"impl\"' in l:
        print(json.loads(l)['events_per_s']['median'])"
}
cli() {  # SIZE PATH: events/s delivered over the timed window
    "$EVBUS" bench --bus "$BUS" --pin --path "$2" --value-bytes "$1" --duration "$DUR" \
        --warmup 0.5 --json | python3 -c "import json,sys
print(json.load(sys.stdin)['results'][0]['out']['events_per_s'])"
}

echo "# $(date -u +%FT%TZ) $(git -C "$(dirname "$0")" rev-parse --short HEAD) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# cmd: $0 $*"
echo "# evbus bench: $EVBUS bench --pin --path PATH --value-bytes SIZE --duration $DUR --warmup 0.5 --json"
echo "# bench_throughput: $BT --impl PATH --size SIZE --runs 1 --duration-ms $DUR_MS --json"
for ((r = 1; r <= ROUNDS; r++)); do
    for s in $SIZES; do
        for p in $PATHS; do
            if ((r % 2)); then a=$(bt "$s" "$p"); b=$(cli "$s" "$p")
            else b=$(cli "$s" "$p"); a=$(bt "$s" "$p"); fi
            echo "$r $s $p $a $b $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$OUT"
        done
    done
done
python3 - "$OUT" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
print("\n%-6s %-7s %-30s %-30s %s" % ("size", "path", "bench_throughput Mev/s", "evbus bench Mev/s", "ratio med [min..max]"))
keys = sorted({(int(r[1]), r[2]) for r in rows})
for s, p in keys:
    a = [float(r[3]) for r in rows if int(r[1]) == s and r[2] == p]
    b = [float(r[4]) for r in rows if int(r[1]) == s and r[2] == p]
    q = [y / x for x, y in zip(a, b)]
    f = lambda v: "%.3f [%.3f..%.3f]" % (statistics.median(v) / 1e6, min(v) / 1e6, max(v) / 1e6)
    print("%-6d %-7s %-30s %-30s %.3f [%.3f..%.3f]  (median/median %.3f)" % (
        s, p, f(a), f(b), statistics.median(q), min(q), max(q),
        statistics.median(b) / statistics.median(a)))
PY
rm -f "$OUT"
