#!/usr/bin/env bash
# block_syscalls.sh - futex system calls the PRODUCER makes per event while
# its reader sleeps on the futex (EVB_IDLE_BLOCK).
#
# Runs bench_block once per phase and counts the futex calls of the parent
# (producer) process only, not of the forked reader:
#   - with `perf stat --no-inherit -e syscalls:sys_enter_futex` when the
#     kernel's syscall tracepoints are usable (in-kernel counting: the
#     producer runs at full speed, so the count is the real one);
#   - else with `strace -e trace=futex` without -f (ptrace slows every traced
#     call to tens of microseconds, which changes the timing being measured:
#     treat its counts as indicative only).
# The "setup" phase (open, create, the stop event, close; no events) is the
# fixed cost; it is subtracted from the other phases.
#
# usage: perf/block_syscalls.sh [BUILD_DIR] [-- extra bench_block args]
#        BLOCK_COUNTER=strace perf/block_syscalls.sh ...   (force strace)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
bench=$build/perf/bench_block
[ -x "$bench" ] || { echo "block_syscalls.sh: $bench not built" >&2; exit 2; }

counter=${BLOCK_COUNTER:-}
if [ -z "$counter" ]; then
    if command -v perf >/dev/null &&
       perf stat --no-inherit -x, -e syscalls:sys_enter_futex -- true >/dev/null 2>&1; then
        counter=perf
    elif command -v strace >/dev/null; then
        counter=strace
    else
        echo "block_syscalls.sh: neither perf (with syscall tracepoints) nor strace" >&2
        exit 2
    fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "# cmd: $0 $build $*"
echo "# counter: $counter (producer process only)"

declare -A wake total events nb
status=0
for phase in setup sparse burst fast; do
    out=$tmp/$phase.out
    cnt=$tmp/$phase.cnt
    if [ "$counter" = perf ]; then
        # FUTEX_WAKE is op 1 (shared futex; 129 would be the private one)
        perf stat --no-inherit -x, -o "$cnt" \
            -e syscalls:sys_enter_futex \
            -e syscalls:sys_enter_futex --filter 'op == 1 || op == 129' \
            -- "$bench" --phase "$phase" "$@" >"$out" 2>&1 || {
            echo "# FAIL phase $phase:"; sed 's/^/#   /' "$out"; status=1; }
        total[$phase]=$(grep sys_enter_futex "$cnt" | sed -n 1p | cut -d, -f1)
        wake[$phase]=$(grep sys_enter_futex "$cnt" | sed -n 2p | cut -d, -f1)
    else
        strace -qq -e trace=futex -o "$cnt" "$bench" --phase "$phase" "$@" >"$out" 2>&1 || {
            echo "# FAIL phase $phase:"; sed 's/^/#   /' "$out"; status=1; }
        total[$phase]=$(grep -c 'futex(' "$cnt" || true)
        wake[$phase]=$(grep -c 'futex(.*FUTEX_WAKE' "$cnt" || true)
    fi
    total[$phase]=${total[$phase]:-0}
    wake[$phase]=${wake[$phase]:-0}
    case ${total[$phase]} in ''|*[!0-9]*) total[$phase]=0 ;; esac
    case ${wake[$phase]} in ''|*[!0-9]*) wake[$phase]=0 ;; esac
    grep -E '^phase ' "$out" || true
    events[$phase]=$(sed -nE 's/^phase +[a-z]+ +events +([0-9]+).*/\1/p' "$out")
    events[$phase]=${events[$phase]:-0}
    nb[$phase]=$(sed -nE 's/^# phase [a-z]+: ([0-9]+) x [0-9]+ events.*/\1/p' "$out")
    nb[$phase]=${nb[$phase]:-0}
done

printf '\n%-7s %9s %11s %11s %12s %12s %12s\n' phase events futex_total futex_wake \
    "wake/event" "all/event" "wake/burst"
for phase in setup sparse burst fast; do
    e=${events[$phase]}
    dw=$(( ${wake[$phase]} - ${wake[setup]} ))
    dt=$(( ${total[$phase]} - ${total[setup]} ))
    case $phase in sparse|burst) bursts=${nb[$phase]} ;; *) bursts=0 ;; esac
    if [ "$phase" = setup ] || [ "$e" -eq 0 ]; then
        per_w=-; per_t=-; per_b=-
    else
        per_w=$(awk -v a="$dw" -v b="$e" 'BEGIN { printf "%.5f", a / b }')
        per_t=$(awk -v a="$dt" -v b="$e" 'BEGIN { printf "%.5f", a / b }')
        per_b=-
        [ "$bursts" -gt 0 ] && per_b=$(awk -v a="$dw" -v b="$bursts" 'BEGIN { printf "%.2f", a / b }')
    fi
    printf '%-7s %9s %11s %11s %12s %12s %12s\n' "$phase" "$e" "${total[$phase]}" \
        "${wake[$phase]}" "$per_w" "$per_t" "$per_b"
done
echo "# per-event columns subtract the setup phase (open/create/stop/close)."
echo "# sparse: 1 event per 2 ms pause, the reader sleeps before each: 1 wake per event is the floor."
echo "# burst: bursts of 64 (default) with 2 ms pauses: the goal is <= 1 wake per burst (0.016 per event)."
echo "# fast: back to back: the goal is ~0 wakes per event."
echo "# 'reader sleeps' in the phase lines is the reader's voluntary context switches = times it slept."
exit $status
