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

test_republish
test_named
test_usage
finish
