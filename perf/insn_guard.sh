#!/usr/bin/env bash
# insn_guard.sh BUILD_DIR [--record]: instructions per event on the hot
# paths, counted by valgrind's cachegrind (these VMs have no hardware
# counters), against perf/insn_budget.txt. A count is the difference
# between runs of 200k and 100k events (perf/insn_count.c), so setup and
# teardown cancel out. Fails when any path costs more than 1.25 x its
# budget: a gross regression, which a noisy machine cannot fake or hide
# (instruction counts do not depend on load). --record rewrites the budget
# file with this build's counts. Exit 77 (skipped) without valgrind.
set -euo pipefail
build=${1:?usage: insn_guard.sh BUILD_DIR [--record]}
budget=$(dirname "$0")/insn_budget.txt
bin=$build/perf/insn_count
command -v valgrind >/dev/null || { echo "valgrind not installed: skipped"; exit 77; }
[ -x "$bin" ] || { echo "$bin: not built"; exit 1; }

count() { # MODE N [exclusive]
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        "$bin" "$@" 2>&1 | awk '/I +refs/ { gsub(",", "", $4); print $4 }'
}

paths=("publish" "claim" "consume" "publish exclusive" "receipt")
declare -A got
for p in "${paths[@]}"; do
    read -r mode x <<<"$p"
    a=$(count "$mode" 100000 $x)
    b=$(count "$mode" 200000 $x)
    [ -n "$a" ] && [ -n "$b" ] || { echo "$p: valgrind printed no count"; exit 1; }
    got[$p]=$(( (b - a) / 100000 ))
done

if [ "${2:-}" = "--record" ]; then
    {
        echo "# Instructions per event (perf/insn_guard.sh $build --record),"
        echo "# valgrind $(valgrind --version | sed 's/valgrind-//'), $(cc --version | head -1)"
        for p in "${paths[@]}"; do echo "${p// /-} ${got[$p]}"; done
    } >"$budget"
    cat "$budget"
    exit 0
fi

fail=0
for p in "${paths[@]}"; do
    key=${p// /-}
    want=$(awk -v k="$key" '$1 == k { print $2 }' "$budget")
    [ -n "$want" ] || { echo "$key: no budget in $budget"; fail=1; continue; }
    limit=$(( want * 125 / 100 ))
    verdict=ok
    if (( got[$p] > limit )); then verdict="OVER (limit $limit)"; fail=1; fi
    printf '%-18s %5d instructions per event, budget %5d: %s\n' "$key" "${got[$p]}" "$want" "$verdict"
done
exit $fail
