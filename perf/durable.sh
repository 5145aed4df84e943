#!/usr/bin/env bash
# durable.sh - durable-topic benchmarks: ASYNC ingest against fio, SYNC
# latency against one fdatasync, and (optionally) the in-memory 1P1C
# throughput of this commit against an older one, interleaved.
#
# Raw output goes to perf/results/<date>-<commit>-durable.txt. Data goes to
# a perfdata-XXXXXX dir under --data-root (default /work; never /dev/shm or
# /tmp), removed by the benchmarks on every exit path; the old commit's
# worktree is removed at the end, even on failure.
#
# usage: perf/durable.sh [--quick] [--build-dir DIR] [--data-root DIR]
#                        [--wait-quiet SEC] [--profile] [--inmem-vs COMMIT]
#                        [--inmem-runs N] [--skip-ingest] [--skip-sync]
#   --quick          1 run each, 256 MiB per ingest run, 1 s sync windows (smoke)
#   --profile        also trace one ASYNC run (io_uring and ext4 tracepoints,
#                    perf record -g): what the flusher waits for
#   --inmem-vs C     build commit C in a worktree at /work/wt-old and run
#                    bench_throughput (64 B and 1 KiB; ring, batch, single)
#                    of both builds alternately, --inmem-runs each (default 5)
# Full run: about 15 minutes on 2 cores and a virtio disk (~2 GiB per run).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$root/build-perf2
data_root=/work
quick=0
wait_quiet=0
profile=0
inmem_vs=
inmem_runs=
do_ingest=1
do_sync=1
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 ;;
    --build-dir) build=$2; shift ;;
    --data-root) data_root=$2; shift ;;
    --wait-quiet) wait_quiet=$2; shift ;;
    --profile) profile=1 ;;
    --inmem-vs) inmem_vs=$2; shift ;;
    --inmem-runs) inmem_runs=$2; shift ;;
    --skip-ingest) do_ingest=0 ;;
    --skip-sync) do_sync=0 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "durable.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
case $data_root in
/dev/shm*|/tmp*) echo "durable.sh: --data-root must be on the disk under test, not $data_root" >&2; exit 2 ;;
esac

idle_pct() {
    local a b
    a=($(head -1 /proc/stat)); sleep 2; b=($(head -1 /proc/stat))
    local tot=0 i
    for i in 1 2 3 4 5 6 7 8; do tot=$((tot + b[i] - a[i])); done
    echo $(( tot > 0 ? 100 * (b[4] - a[4] + b[5] - a[5]) / tot : 0 ))
}
wait_quiet_now() {
    [ "$wait_quiet" -gt 0 ] || return 0
    local end=$((SECONDS + wait_quiet)) idle
    while :; do
        idle=$(idle_pct)
        [ "$idle" -ge 90 ] && return 0
        if [ $SECONDS -ge $end ]; then
            echo "durable.sh: CPUs only $idle% idle after ${wait_quiet}s; running anyway" >&2
            return 0
        fi
    done
}

# ---- build ----
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$root" --buildtype=release -Dtests=false >/dev/null
fi
ninja -C "$build" perf/bench_durable perf/bench_sync perf/bench_throughput >/dev/null

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo nocommit)
if [ -n "$(git -C "$root" status --porcelain -- bus shm 2>/dev/null)" ]; then commit=$commit-dirty; fi
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$here/results"
out=$here/results/$stamp-$commit-durable.txt
fs=$(df -T "$data_root" | awk 'NR==2 {print $1" "$2}')
dev=$(basename "$(df "$data_root" | awk 'NR==2 {print $1}')")

if [ $quick = 1 ]; then
    in_args=(--runs 1 --bytes 256M --ring 8M,64M)
    sy_args=(--runs 1 --duration-ms 1000 --fsync-samples 500)
    tp_runs=1
else
    in_args=()
    sy_args=()
    tp_runs=5
fi
[ -n "$inmem_runs" ] && tp_runs=$inmem_runs

wt=
cleanup() {
    if [ -n "$wt" ] && [ -d "$wt" ]; then
        git -C "$root" worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"
        git -C "$root" worktree prune >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

{
    echo "# evbus durable perf run $stamp"
    echo "# commit: $commit ($(git -C "$root" log -1 --format='%h %s' 2>/dev/null))"
    echo "# machine: nproc=$(nproc); $(lscpu | grep 'Model name' | sed 's/  */ /g'); kernel $(uname -r); RAM $(free -g | awk '/Mem:/ {print $2}') GiB"
    echo "# disk: $data_root on $fs; scheduler $(cat /sys/block/"$dev"/queue/scheduler 2>/dev/null || echo ?); rotational $(cat /sys/block/"$dev"/queue/rotational 2>/dev/null || echo ?)"
    echo "# vm.dirty_ratio $(cat /proc/sys/vm/dirty_ratio), dirty_background_ratio $(cat /proc/sys/vm/dirty_background_ratio); $(fio --version 2>/dev/null || echo 'no fio')"
    echo "# build: $build (release, perf targets -O2), $(cc --version | head -1)"
} | tee "$out" >/dev/null

run_section() { # name, command...
    local name=$1; shift
    wait_quiet_now
    {
        echo
        echo "## $name"
        echo "# load at start: $(cut -d' ' -f1-3 /proc/loadavg); CPU idle just before: $(idle_pct)%"
        "$@" || echo "# $name exit $?"
    } 2>&1 | tee -a "$out" >/dev/null
}

if [ $do_ingest = 1 ]; then
    run_section "bench_durable (ASYNC ingest)" \
        "$build/perf/bench_durable" --json --data-root "$data_root" "${in_args[@]}"
fi
if [ $do_sync = 1 ]; then
    run_section "bench_sync (SYNC latency)" \
        "$build/perf/bench_sync" --json --data-root "$data_root" "${sy_args[@]}"
fi

if [ $profile = 1 ]; then
    tr=$(mktemp -d "$data_root/perfdata-trace-XXXXXX")
    profile_body() {
        echo "# one async-batch run (ring 8M, 2 GiB) under system-wide tracepoints; then one"
        echo "# under perf record -g (cpu-clock), per thread"
        perf record -q -o "$tr/trace.data" -a \
            -e io_uring:io_uring_submit_req -e io_uring:io_uring_complete \
            -e ext4:ext4_sync_file_enter -e ext4:ext4_sync_file_exit -- \
            "$build/perf/bench_durable" --runs 1 --ring 8M --impl async-batch --no-fio \
            --verify 0 --sample-ms 5 --data-root "$data_root" 2>&1 | grep -E '^  run|lag mean'
        perf script -i "$tr/trace.data" 2>/dev/null | python3 "$here/uring_ops.py"
        perf record -q -g -o "$tr/cpu.data" -- \
            "$build/perf/bench_durable" --runs 1 --ring 8M --impl async-batch --no-fio \
            --verify 0 --data-root "$data_root" 2>&1 | grep -E '^  run'
        echo "# on-CPU samples by thread (tid:comm; the producer's process has the producer"
        echo "# thread, the flusher thread and its iou-wrk-* io_uring workers), then top symbols"
        perf report -i "$tr/cpu.data" --no-children --sort pid --stdio -g none 2>/dev/null |
            grep -E '^ +[0-9]' | head -8
        perf report -i "$tr/cpu.data" --no-children --sort pid,sym --stdio -g none 2>/dev/null |
            grep -E '^ +[0-9]' | head -24
        echo "# SYNC, 1 producer, 1 s: the round trip of one event through the flusher"
        perf record -q -o "$tr/sync.data" -a \
            -e io_uring:io_uring_submit_req -e io_uring:io_uring_complete \
            -e ext4:ext4_sync_file_enter -e ext4:ext4_sync_file_exit -- \
            "$build/perf/bench_sync" --runs 1 --producers 1 --duration-ms 1000 \
            --fsync-samples 200 --data-root "$data_root" 2>&1 | grep -E '^  run'
        perf script -i "$tr/sync.data" 2>/dev/null | python3 "$here/uring_ops.py"
    }
    run_section "profile" profile_body
    rm -rf "$tr"
fi

if [ -n "$inmem_vs" ]; then
    wt=/work/wt-old
    if [ -e "$wt" ]; then
        echo "durable.sh: $wt exists; remove it first" >&2
        wt=
        exit 2
    fi
    git -C "$root" worktree add --detach "$wt" "$inmem_vs" >/dev/null 2>&1
    meson setup "$wt/build-perf2" "$wt" --buildtype=release -Dtests=false >/dev/null
    ninja -C "$wt/build-perf2" perf/bench_throughput >/dev/null
    inmem_body() {
        echo "# new = $build/perf/bench_throughput ($commit), old = $wt/build-perf2/perf/bench_throughput ($inmem_vs)"
        echo "# alternating invocations of --runs 1 each; the bare ring in every invocation"
        for r in $(seq 1 "$tp_runs"); do
            for which in new old; do
                local b=$build
                [ $which = old ] && b=$wt/build-perf2
                echo "### $which run $r"
                "$b/perf/bench_throughput" --runs 1 --size 64,1K --impl ring,batch,single --json 2>/dev/null |
                    grep -E '^\{|FAIL' || echo "# FAIL $which run $r"
            done
        done
    }
    run_section "in-memory 1P1C: $commit vs $inmem_vs" inmem_body
    python3 "$here/ab_summary.py" "$out" | tee -a "$out"
    cleanup
    wt=
fi

echo "raw output: $out"
grep -E '^(impl|fio-|async-|none-)|^procs|^[0-9]+ +[0-9]+ |fdatasync p|write\+sync|# FAIL|# [0-9]+ run' "$out" || true
