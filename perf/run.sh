#!/usr/bin/env bash
# run.sh - build evbus (release) and run the perf/ benchmark set.
#
# Raw output goes to perf/results/<date>-<commit>.txt; a summary is printed.
# Default total runtime is about 2 minutes on 2 cores (idle machine).
#
# usage: perf/run.sh [--quick] [--wait-quiet SEC] [--build-dir DIR] [--producer-cpu N] [--consumer-cpu N]
#                    [--durable [--data-root DIR]]
#   --quick          3 runs, shorter runs (a smoke pass, ~30 s; not for RESULTS.md)
#   --wait-quiet SEC first wait up to SEC seconds for the CPUs to be >= 90% idle
#                    (builds and stress tests on the same 2 cores skew every number)
#   --durable        then perf/durable.sh: durable topics on disk (ASYNC ingest vs
#                    fio, SYNC latency vs fdatasync; ~12 more minutes, writes ~2 GiB
#                    at a time under --data-root, default /work; its own raw file)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$root/build-perf
quick=0
wait_quiet=0
pcpu=0
ccpu=1
durable=0
data_root=/work
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 ;;
    --wait-quiet) wait_quiet=$2; shift ;;
    --build-dir) build=$2; shift ;;
    --producer-cpu) pcpu=$2; shift ;;
    --consumer-cpu) ccpu=$2; shift ;;
    --durable) durable=1 ;;
    --data-root) data_root=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

# idle percentage of all CPUs over the next 2 seconds
idle_pct() {
    local a b
    a=($(head -1 /proc/stat)); sleep 2; b=($(head -1 /proc/stat))
    local tot=0 i
    for i in 1 2 3 4 5 6 7 8; do tot=$((tot + b[i] - a[i])); done
    echo $(( tot > 0 ? 100 * (b[4] - a[4] + b[5] - a[5]) / tot : 0 ))
}
if [ "$wait_quiet" -gt 0 ]; then
    end=$((SECONDS + wait_quiet))
    while :; do
        idle=$(idle_pct)
        [ "$idle" -ge 90 ] && break
        if [ $SECONDS -ge $end ]; then
            echo "run.sh: CPUs still only $idle% idle after ${wait_quiet}s; running anyway" >&2
            break
        fi
    done
fi
load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
    echo "run.sh: warning: load average $load; other work on these cores skews every number" >&2
fi

# ---- build (release; the perf targets override to -O2) ----
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$root" --buildtype=release -Dtests=false >/dev/null
fi
ninja -C "$build" perf/bench_throughput perf/bench_pingpong perf/bench_block >/dev/null

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo nocommit)
if [ -n "$(git -C "$root" status --porcelain 2>/dev/null)" ]; then commit=$commit-dirty; fi
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$here/results"
out=$here/results/$stamp-$commit.txt

if [ $quick = 1 ]; then
    tp_args=(--runs 3 --duration-ms 300 --memcpy-ms 100)
    pp_args=(--runs 3 --samples 1000000 --warmup 20000)
    bl_args=(--bursts 100)
else
    tp_args=()
    pp_args=()
    bl_args=()
fi
cpus=(--producer-cpu "$pcpu" --consumer-cpu "$ccpu")

{
    echo "# evbus perf run $stamp"
    echo "# commit: $commit"
    echo "# machine: nproc=$(nproc); $(lscpu | grep 'Model name' | sed 's/  */ /g'); kernel $(uname -r)"
    echo "# build: $build (buildtype release, perf targets -O2), $(cc --version | head -1)"
    echo "# load at start: $(cut -d' ' -f1-3 /proc/loadavg); CPU idle just before: $(idle_pct)%; busiest other processes:"
    top -bn1 -o %CPU 2>/dev/null | sed -n '8,10p' | sed 's/^/#   /'
    echo
    echo "## bench_throughput"
    "$build/perf/bench_throughput" "${cpus[@]}" --json "${tp_args[@]}" || echo "# bench_throughput exit $?"
    echo
    echo "## bench_pingpong"
    "$build/perf/bench_pingpong" --cpu-a "$pcpu" --cpu-b "$ccpu" --json "${pp_args[@]}" || echo "# bench_pingpong exit $?"
    echo
    echo "## block_syscalls.sh"
    "$here/block_syscalls.sh" "$build" -- "${cpus[@]}" "${bl_args[@]}" || echo "# block_syscalls.sh exit $?"
} 2>&1 | tee "$out" >/dev/null

# ---- summary ----
echo "raw output: $out"
echo
sed -n '/^## bench_throughput/,/^## bench_pingpong/p' "$out" |
    grep -E '^(size |[0-9]+ |# FAIL|# /ring|#   in the same|# [0-9]+ run)' || true
echo
sed -n '/^## bench_pingpong/,/^## block_syscalls/p' "$out" |
    sed -n '/^median over runs/,/^$/p' | grep -v '^{' || true
grep -E '^# A cpu' "$out" || true
grep -E '^# FAIL' <(sed -n '/^## bench_pingpong/,/^## block_syscalls/p' "$out") || true
echo
sed -n '/^## block_syscalls/,$p' "$out" | sed -n '/^phase  *events/,$p'

# ---- durable topics (opt-in: disk-bound, longer) ----
if [ $durable = 1 ]; then
    echo
    d_args=(--build-dir "$build" --data-root "$data_root" --wait-quiet "$wait_quiet")
    [ $quick = 1 ] && d_args+=(--quick)
    "$here/durable.sh" "${d_args[@]}"
fi
