#!/usr/bin/env bash
# test_cli_bad_index_time.sh - a segment index's timestamps are only a
# hint too (attack 3, F1): one entry's max_ts made lower (one bit), zero,
# higher, the maximum, or out of order must not make `tail --from-time`
# skip an event, before or after a rebuild; `info --verify` names the bad
# index (exit 1) without calling it log damage, and passes the flusher's
# own indexes. Before the fix the flipped bit skipped 768 events and
# verify said "no damage". lib.sh holds the helpers.
#
# Usage: test_cli_bad_index_time.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_bad_index_time.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IDX="$DATA/x/0/00000000000000131072.idx"
drun create x --durability sync --ring-bytes 64K --segment-bytes 128K
seq 0 7999 >"$TMP/lines"
# Several publishes, so the events carry several timestamps.
for part in 0 1 2 3 4 5 6 7; do
    sed -n "$((part * 1000 + 1)),$((part * 1000 + 1000))p" "$TMP/lines" >"$TMP/part"
    drun_in "$TMP/part" pub x
done
flushed() {
    drun info x --json
    [[ $(json_field 'o["partitions"][0]["flushed_position"] == o["partitions"][0]["tail_position"]') == True ]]
}
wait_for 10 flushed
drun tail x --json
cp "$OUT" "$TMP/all.json"
cp "$IDX" "$TMP/idx.good"

begin "the flusher's own indexes pass info --verify"
drun info x --verify
check "exit 0" rc_is 0
check "no index named" not_grep "index" "$OUT"
end

# Targets: each distinct timestamp of the events around the second
# segment (the one whose index is changed), one past it, and the ends,
# each with the offset of the first event at or after it in log order
# (brute force over every event; "none" past the last).
mapfile -t targets < <(python3 -c 'import json,sys
ts=[json.loads(l)["timestamp_ns"] for l in open(sys.argv[1])]
want=lambda t: next((str(o) for o,u in enumerate(ts) if u>=t), "none")
seen=set(); out=[ts[0]-1]
for o,t in enumerate(ts):
    if 1700<=o<4400 and t not in seen: seen.add(t); out+=[t,t+1]
out.append(max(ts)+1)
for t in out: print(t, want(t))' "$TMP/all.json")

# seek_ok "T WANT": tail --from-time @T gives offset WANT (or nothing).
seek_ok() {
    local t=${1% *} want=${1#* }
    drun tail x --from-time "@$((t / 1000000000)).$(printf %09d $((t % 1000000000)))" --count 1
    if [[ $want == none ]]; then
        [[ $RC -eq 0 && ! -s $OUT ]] && return 0
    elif [[ $RC -eq 0 && $(cut -d' ' -f1 "$OUT") == "0:$want" ]]; then
        return 0
    fi
    echo "  from-time $t: got '$(cat "$OUT")' rc $RC, want offset $want" >&2
    return 1
}

# set_ts ENTRY EXPR: entry ENTRY's max_ts := EXPR(v), v its value.
set_ts() {
    python3 -c 'import struct,sys
p,k,expr=sys.argv[1],int(sys.argv[2]),sys.argv[3]
b=bytearray(open(p,"rb").read()); at=64+24*k+16
v=struct.unpack_from("<Q",b,at)[0]; struct.pack_into("<Q",b,at,eval(expr)&(2**64-1))
open(p,"wb").write(b)' "$IDX" "$1" "$2"
}

for kind in "v^(0x10<<56)" "0" "v+10**9" "2**64-1"; do
    for entry in 1; do # the flusher makes one per 64 KiB: 0 (the base), 1
        begin "index entry $entry's max_ts := $kind: no event skipped"
        cp "$TMP/idx.good" "$IDX"
        set_ts "$entry" "$kind"
        for t in "${targets[@]}"; do
            check "from-time ${t% *}" seek_ok "$t"
        done
        drun info x --verify
        check "verify exits 1" rc_is 1
        check "verify names the index" out_has "00000000000000131072.idx"
        check "verify: one stderr line says why" err_one_line
        check "... that it is an index, not log damage" err_has "index contradicts"
        check "and says it is no log damage" out_has "no damage"
        reboot
        check "after a rebuild too" seek_ok "${targets[$((${#targets[@]} / 2))]}"
        end
    done
done

begin "an entry out of order (above the next one): no event skipped"
cp "$TMP/idx.good" "$IDX"
set_ts 0 "2**62"
for t in "${targets[@]}"; do
    check "from-time ${t% *}" seek_ok "$t"
done
end

begin "the bad index removed: verify passes, seeks walk"
rm -f "$IDX"
drun info x --verify
check "exit 0" rc_is 0
check "from-time" seek_ok "${targets[3]}"
end

finish
