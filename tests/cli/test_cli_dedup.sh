#!/usr/bin/env bash
# test_cli_dedup.sh - duplicate suppression from the command line: `evbus
# pub --producer-id` goes on with its sequences from run to run and after a
# rebuild from disk, `--last-seq` says where the log ends, `--seq`
# republishes, and `evbus tail --dedup` prints each event once (with
# --name, also across runs). Bad option combinations are usage errors.
# lib.sh holds the helpers.
#
# Usage: test_cli_dedup.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_dedup.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
README="$(dirname "${BASH_SOURCE[0]}")/../../README.md"
ID=2147483653

# values FROM TO: their numbers, one per line, as input for pub.
values() { seq "$1" "$2" >"$TMP/in"; }

test_republish() {
    begin "a republish is printed once by tail --dedup, also after a rebuild from disk"
    drun create d --durability async --ring-bytes 64K
    values 0 99
    drun_in "$TMP/in" pub d --producer-id "$ID" --partition 0
    check "pub: exit 0" rc_is 0
    drun pub d --producer-id "$ID" --last-seq
    check "last seq 99" out_is "0 99"
    reboot
    drun pub d --producer-id "$ID" --last-seq
    check "after the rebuild: still 99" out_is "0 99"
    # Unsure of its last 50, the producer sends them again, then more.
    values 50 99
    drun_in "$TMP/in" pub d --producer-id "$ID" --partition 0 --seq 50
    check "republish: exit 0" rc_is 0
    values 100 109
    drun_in "$TMP/in" pub d --producer-id "$ID" --partition 0
    drun tail d --json
    check "tail sees 160 events" test "$(wc -l <"$OUT")" -eq 160
    drun tail d --dedup --json
    check "tail --dedup: 110 events" test "$(wc -l <"$OUT")" -eq 110
    check "tail --dedup: value == producer_seq, 0..109 in order" py "
import json, sys
ev = [json.loads(l) for l in sys.stdin]
assert [int(e['value']) for e in ev] == list(range(110)), ev[:3]
assert all(int(e['value']) == e['producer_seq'] and e['producer_id'] == $ID for e in ev)"
    check "says how many it dropped" err_has "50 duplicates dropped"
    end
}

test_named() {
    begin "tail --dedup --name drops copies of what an earlier run printed"
    run create n --ring-bytes 64K
    values 0 19
    run_in "$TMP/in" pub n --producer-id "$ID" --partition 0
    run tail n --name c --dedup --from earliest
    check "first run: 20 lines" test "$(wc -l <"$OUT")" -eq 20
    values 10 24
    run_in "$TMP/in" pub n --producer-id "$ID" --partition 0 --seq 10
    run tail n --name c --dedup
    check "second run: only the 5 new" test "$(cut -d' ' -f2- "$OUT" | tr '\n' ' ')" == "20 21 22 23 24 "
    check "10 dropped" err_has "10 duplicates dropped"
    end
}

test_usage() {
    begin "bad --producer-id and --seq are usage errors; help and README name them"
    run create u --ring-bytes 64K
    run pub u --producer-id 5 x
    check "id below the stable range: exit 2" rc_is 2
    check "one line" err_one_line
    run pub u --seq 3 --partition 0 x
    check "--seq without --producer-id: exit 2" rc_is 2
    run pub u --producer-id "$ID" --seq 3 x
    check "--seq without --partition: exit 2" rc_is 2
    run pub u --producer-id "$ID" --last-seq x
    check "--last-seq with a value: exit 2" rc_is 2
    run pub u --producer-id "$ID" --last-seq
    check "--last-seq of a new id: none" out_is "0 none"
    run pub --help
    check "pub --help: --producer-id" out_has "--producer-id"
    check "pub --help: --seq" out_has "--seq S"
    run tail --help
    check "tail --help: --dedup" out_has "--dedup"
    check "README: --producer-id" grep -q -- "--producer-id" "$README"
    check "README: --dedup" grep -q -- "--dedup" "$README"
    end
}

test_last_seq_partition() {
    begin "pub --last-seq --partition P prints P only; a P the topic lacks is a usage error"
    run create lp --partitions 3 --ring-bytes 64K
    run pub lp --producer-id "$ID" --partition 1 a b c
    run pub lp --producer-id "$ID" --partition 2 d
    run pub lp --producer-id "$ID" --last-seq
    check "every partition without --partition" out_is "$(printf '0 none\n1 2\n2 0')"
    for p in 0 1 2; do
        run pub lp --producer-id "$ID" --last-seq --partition "$p"
        check "--partition $p: exit 0" rc_is 0
        check "--partition $p: its line only" out_is "$(printf '0 none\n1 2\n2 0' | sed -n "$((p + 1))p")"
    done
    run pub lp --producer-id "$ID" --last-seq --partition 3
    check "--partition 3 of 3: exit 2" rc_is 2
    check "one line" err_one_line
    check "names the partition count" err_has "3 partitions"
    check "prints nothing" out_empty
    end
}

test_seq_limit() {
    begin "--seq at 2^63-1 uses the id up there: help and the error say so"
    run create sl --partitions 2 --ring-bytes 64K
    run pub sl --producer-id "$ID" --partition 0 --seq 9223372036854775807 x
    check "the last sequence is accepted" rc_is 0
    run pub sl --producer-id "$ID" --partition 0 y
    check "a new event after it: exit 1" rc_is 1
    check "one line" err_one_line
    check "says it is for good" err_has "no new event there again"
    check "says what to do" err_has "another producer id"
    run pub sl --producer-id "$ID" --partition 0 --seq 5 z
    check "a republish below still works" rc_is 0
    run pub sl --producer-id "$ID" --partition 1 w
    check "the other partition is untouched" rc_is 0
    run pub sl --producer-id "$ID" --partition 0 --seq 9223372036854775808 x
    check "--seq 2^63: exit 2" rc_is 2
    run pub --help
    check "help: the range" out_has "0..2^63-1"
    check "help: the consequence" out_has "for good"
    end
}

test_queue_dedup() {
    begin "--dedup is for --name and --group, not --queue, and help and README say why"
    run create qd --partitions 2 --ring-bytes 64K
    run tail qd --group g --queue --dedup
    check "exit 2" rc_is 2
    check "one line" err_one_line
    check "says why" err_has "out of order"
    run pub qd --producer-id "$ID" --partition 0 a b
    run tail qd --group g --dedup
    check "a partition group deduplicates: exit 0" rc_is 0
    run tail --help
    check "tail --help: not with --queue" out_has "Not with --queue"
    check "README: queue groups cannot deduplicate" grep -q "Queue groups" "$README"
    end
}

test_damaged_seq() {
    begin "random bytes inside a .seq: pub --last-seq relearns from the ring or refuses naming it"
    run create ds --partitions 2 --ring-bytes 64K
    run pub ds --producer-id "$ID" --partition 0 a b c d
    local seq
    seq="$BUS/ds/producers/$(printf '%08x' "$ID").seq"
    for off in 64 72 96 120 168 200 240; do
        cp "$seq" "$TMP/seq.keep"
        head -c 8 /dev/urandom | dd of="$seq" bs=1 seek="$off" conv=notrunc 2>/dev/null
        run pub ds --producer-id "$ID" --last-seq
        if [[ "$RC" -eq 0 ]]; then
            check "byte $off: the right sequences" out_is "$(printf '0 3\n1 none')"
        else
            check "byte $off: refused with one line naming the file" err_has ".seq"
        fi
        cp "$TMP/seq.keep" "$seq"
    done
    # A ring that lapped partition 0's first events cannot be relearned.
    run create dl --partitions 1 --ring-bytes 64K
    head -c 3000 /dev/zero | tr '\0' x >"$TMP/big"
    for _ in $(seq 1 60); do cat "$TMP/big"; echo; done >"$TMP/in"
    run_in "$TMP/in" pub dl --producer-id "$ID" --partition 0
    seq="$BUS/dl/producers/$(printf '%08x' "$ID").seq"
    printf '\xff\x13\x37\x42\x99\x01\x00\x7f' | dd of="$seq" bs=1 seek=64 conv=notrunc 2>/dev/null
    run pub dl --producer-id "$ID" --last-seq
    check "lapped: exit 1" rc_is 1
    check "lapped: one line" err_one_line
    check "names the file" err_has "$(basename "$seq")"
    check "says what removing it means" err_has "Remove the file only if"
    check "prints no sequence" out_empty
    end
}

# lag_of TOPIC GROUP: the group's lag in partition 0 (evbus groups
# --json: a line per group).
lag_of() {
    run groups "$1" --json
    python3 -c "import json,sys
for l in sys.stdin:
    o = json.loads(l)
    if o['group'] == '$2': print(o['partition_state'][0]['lag_events'])" <"$OUT"
}

test_drops_committed() {
    begin "tail --dedup commits past copies it dropped at the end, with --group and --name"
    run create m --ring-bytes 64K
    values 0 9
    run_in "$TMP/in" pub m --producer-id "$ID" --partition 0
    run tail m --group g --dedup
    run tail m --name n --dedup --from earliest
    run tail m --group f --dedup
    values 5 9
    run_in "$TMP/in" pub m --producer-id "$ID" --partition 0 --seq 5
    check "the group lags the 5 copies" test "$(lag_of m g)" -eq 5
    run tail m --group g --dedup
    check "group: nothing printed" out_empty
    check "group: says it dropped 5" err_has "5 duplicates dropped"
    check "group: and moved past them (lag 0)" test "$(lag_of m g)" -eq 0
    run tail m --group g --dedup
    check "group, again: the copies are not read again" not_grep "dropped" "$ERR"
    run tail m --name n --dedup
    check "named: says it dropped 5" err_has "5 duplicates dropped"
    run tail m --name n --dedup
    check "named, again: the copies are not read again" not_grep "dropped" "$ERR"
    # Following: committed while idle, before any signal.
    "$EVBUS" tail m --bus "$BUS" --group f --dedup -f >"$OUT" 2>"$ERR" &
    BG_PID=$!
    check "-f: the lag goes to 0 while it waits" wait_for 5 eval '[[ "$(lag_of m f)" == 0 ]]'
    kill -INT "$BG_PID"
    wait_bg 5
    check "-f: exits 0 on SIGINT" rc_is 0
    end
}

test_republish
test_named
test_drops_committed
test_usage
test_last_seq_partition
test_seq_limit
test_queue_dedup
test_damaged_seq
finish
