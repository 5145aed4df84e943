#!/usr/bin/env bash
# ab.sh - this commit against an older one, interleaved in one session:
# the in-memory set of perf/run.sh (throughput 1P1C, ping-pong) and, with
# --durable, the durable benchmarks (ASYNC ingest, SYNC latency). Each
# round runs both builds, each invocation with --runs 1 and
# its own baselines, so a change of vCPU placement hits both alike; the
# order alternates between rounds, since a run leaves page cache,
# writeback and clock state to the next.
#
# usage: perf/ab.sh OLD_COMMIT [--rounds N] [--durable] [--only LIST]
#                   [--data-root DIR] [--wait-quiet SEC]
#   --only LIST  any of throughput,pingpong,ingest,sync (default: the first
#                two, and the last two with --durable)
# Raw output: perf/results/<date>-<new>-vs-<old>-ab.txt, then a summary
# (perf/ab_report.py): per result, the new/old ratio of the medians and
# the median of per-round ratios, whose spread is the run-to-run noise.
# Default 5 rounds: about 8 minutes on 2 cores, 20 with --durable.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
old=${1:?usage: perf/ab.sh OLD_COMMIT [--rounds N] [--durable] [--data-root DIR]}
shift
rounds=5
durable=0
only=
data_root=/work
wait_quiet=0
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=$2; shift ;;
    --durable) durable=1 ;;
    --only) only=$2; shift ;;
    --data-root) data_root=$2; shift ;;
    --wait-quiet) wait_quiet=$2; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "ab.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

if [ -z "$only" ]; then
    only=throughput,pingpong
    [ $durable = 1 ] && only=$only,ingest,sync
fi
want() { case ",$only," in *",$1,"*) return 0 ;; esac; return 1; }

new_build=$root/build-perf
wt=$(mktemp -d /tmp/evbus-ab-old.XXXXXX)
cleanup() { git -C "$root" worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"; }
trap cleanup EXIT
git -C "$root" worktree add --force --detach "$wt" "$old" >/dev/null 2>&1
old_build=$wt/build-perf
for b in "$new_build:$root" "$old_build:$wt"; do
    dir=${b%%:*} src=${b#*:}
    [ -f "$dir/build.ninja" ] || meson setup "$dir" "$src" --buildtype=release -Dtests=false >/dev/null
    ninja -C "$dir" perf/bench_throughput perf/bench_pingpong perf/bench_durable perf/bench_sync >/dev/null
done

if [ "$wait_quiet" -gt 0 ]; then
    end=$((SECONDS + wait_quiet))
    while [ $SECONDS -lt $end ]; do
        a=($(head -1 /proc/stat)); sleep 2; b=($(head -1 /proc/stat))
        tot=0; for i in 1 2 3 4 5 6 7 8; do tot=$((tot + b[i] - a[i])); done
        [ $((100 * (b[4] - a[4]) / (tot ? tot : 1))) -ge 90 ] && break
    done
fi

new=$(git -C "$root" rev-parse --short HEAD)
[ -n "$(git -C "$root" status --porcelain)" ] && new=$new-dirty
oldc=$(git -C "$root" rev-parse --short "$old")
mkdir -p "$here/results"
out=$here/results/$(date -u +%Y%m%dT%H%MZ)-$new-vs-$oldc-ab.txt
{
    echo "# cmd: perf/ab.sh $old --rounds $rounds --only $only"
    echo "# new = $new ($new_build), old = $oldc ($old_build)"
    echo "# machine: nproc=$(nproc); $(lscpu | grep 'Model name' | sed 's/  */ /g'); kernel $(uname -r)"
    echo "# load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    for r in $(seq 1 "$rounds"); do
        # Alternate which build goes first: a run leaves the page cache,
        # writeback and CPU frequency to the next one.
        order="new old"
        [ $((r % 2)) = 0 ] && order="old new"
        for which in $order; do
            b=$new_build
            [ $which = old ] && b=$old_build
            echo "### $which run $r"
            if want throughput; then "$b/perf/bench_throughput" --runs 1 --json 2>/dev/null |
                grep -E '^\{|FAIL' || echo "# FAIL $which run $r throughput"; fi
            if want pingpong; then "$b/perf/bench_pingpong" --runs 1 --samples 500000 --json \
                2>/dev/null | grep -E '^\{|FAIL' || echo "# FAIL $which run $r pingpong"; fi
            if want ingest; then "$b/perf/bench_durable" --runs 1 --ring 32M \
                --impl async-batch,async-single --bytes 1G --no-fio --data-root "$data_root" \
                --json 2>/dev/null | grep -E '^\{|FAIL' || echo "# FAIL $which run $r ingest"; fi
            if want sync; then "$b/perf/bench_sync" --runs 1 --producers 1,8 --duration-ms 1500 \
                --fsync-samples 200 --data-root "$data_root" --json 2>/dev/null |
                grep -E '^\{|FAIL' || echo "# FAIL $which run $r sync"; fi
        done
    done
} | tee "$out" >/dev/null
echo "raw output: $out"
python3 "$here/ab_report.py" "$out" | tee -a "$out"
