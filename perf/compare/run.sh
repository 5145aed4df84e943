#!/usr/bin/env bash
# run.sh - evbus side by side with iceoryx, ZeroMQ, nng and the physical
# baselines (perf/compare/README in perf/README.md says how each is driven).
#
# usage: perf/compare/run.sh [--build DIR] [--evbus-lib DIR] [--runs N] [--quick]
#                            [--tests LIST] [--wait-quiet SEC] [--out DIR] [-- evb_compare args]
#   --build DIR      the meson build dir holding perf/compare/evb_compare
#                    (default build-perf; made release if missing)
#   --evbus-lib DIR  a directory with another commit's libevbus.so (its build's
#                    bus/): the harness loads that one instead (evbus is
#                    driven only through evbus.h, whose ABI evbus.map keeps)
#   --runs N         rounds, each system once per round (default 5)
#   --quick          1 round, short runs: a smoke pass, not for RESULTS.md
#   --tests LIST     of throughput,pingpong,fanout,rate (default all)
#   --wait-quiet SEC first wait up to SEC s for the CPUs to be >= 90% idle
#   --out DIR        raw JSON lines, logs, report.md and the PNGs
#                    (default perf/results/compare-<date>-<commit>)
# RouDi (iceoryx's daemon) is started with perf/compare/roudi.toml when
# iceoryx is built in, and stopped at the end; iceoryx is left out when
# RouDi cannot start (one is already running, say).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build-perf
evblib=
runs=5
quick=0
tests=throughput,pingpong,fanout,rate
wait_quiet=0
out=
extra=()
argv="$*"
while [ $# -gt 0 ]; do
    case $1 in
    --build) build=$(cd "$2" 2>/dev/null && pwd || echo "$2"); shift ;;
    --evbus-lib) evblib=$(cd "$2" && pwd); shift ;;
    --runs) runs=$2; shift ;;
    --quick) quick=1 ;;
    --tests) tests=$2; shift ;;
    --wait-quiet) wait_quiet=$2; shift ;;
    --out) out=$2; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

if [ ! -d "$build" ]; then
    meson setup "$build" "$root" --buildtype=release >/dev/null
fi
ninja -C "$build" -j2 perf/compare/evb_compare >/dev/null
bin=$build/perf/compare/evb_compare
[ -x "$bin" ] || { echo "run.sh: no $bin" >&2; exit 1; }
if [ -n "$evblib" ]; then
    [ -e "$evblib/libevbus.so.0" ] || [ -e "$evblib/libevbus.so" ] ||
        { echo "run.sh: no libevbus.so in $evblib" >&2; exit 1; }
    export LD_LIBRARY_PATH=$evblib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$out" ] || out=$root/perf/results/compare-$(date +%Y%m%d-%H%M%S)-$commit
mkdir -p "$out"

idle_pct() {
    local a b tot=0 i
    a=($(head -1 /proc/stat)); sleep 2; b=($(head -1 /proc/stat))
    for i in 1 2 3 4 5 6 7 8; do tot=$((tot + b[i] - a[i])); done
    echo $(( tot > 0 ? 100 * (b[4] - a[4] + b[5] - a[5]) / tot : 0 ))
}
if [ "$wait_quiet" -gt 0 ]; then
    end=$((SECONDS + wait_quiet))
    while :; do
        idle=$(idle_pct)
        [ "$idle" -ge 90 ] && break
        [ $SECONDS -ge $end ] && { echo "run.sh: CPUs only $idle% idle; running anyway" >&2; break; }
    done
fi

# The systems built in, from the usage text.
systems=$("$bin" --help | sed -n 's/^  --systems LIST    of: \(.*\) (default.*/\1/p')
roudi_pid=
stop_roudi() {
    if [ -n "$roudi_pid" ]; then
        kill "$roudi_pid" 2>/dev/null || true
        wait "$roudi_pid" 2>/dev/null || true
        roudi_pid=
    fi
}
trap stop_roudi EXIT
if [[ " $systems " == *" iceoryx "* ]]; then
    if command -v iox-roudi >/dev/null && ! pgrep -x iox-roudi >/dev/null; then
        iox-roudi -c "$here/roudi.toml" -l warning >"$out/roudi.log" 2>&1 &
        roudi_pid=$!
        for _ in $(seq 50); do
            grep -q "RouDi is ready" "$out/roudi.log" && break
            kill -0 "$roudi_pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    if [ -z "$roudi_pid" ] || ! grep -q "RouDi is ready" "$out/roudi.log"; then
        echo "run.sh: RouDi did not start (see $out/roudi.log, or one is running): no iceoryx" >&2
        stop_roudi
        systems=$(echo " $systems " | sed 's/ iceoryx / /')
    fi
fi
systems=$(echo $systems | tr ' ' ',')

common=(--runs "$runs" --systems "$systems")
if [ $quick = 1 ]; then
    common=(--runs 1 --systems "$systems" --duration-ms 150 --warm-ms 50 --samples 20000
            --warmup 2000 --rate-ms 200 --rate-min-samples 2000)
fi
{
    echo "# command: perf/compare/run.sh $argv"
    echo "# commit $commit; $(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
    echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/env.txt"
for t in ${tests//,/ }; do
    echo "run.sh: $t ..." >&2
    "$bin" --test "$t" "${common[@]}" "${extra[@]}" >"$out/$t.jsonl" 2>"$out/$t.log" ||
        echo "run.sh: $t exited $? (see $out/$t.log)" >&2
    echo "# load after $t: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/env.txt"
done
stop_roudi
python3 "$here/report.py" "$out"
echo "run.sh: raw results, report.md and plots in $out" >&2
