#!/usr/bin/env bash
# test_cli_says_true.sh - what help texts, messages and README say about
# behaviour matches the behaviour (issue 9, attack notes): how pub spreads
# keyless events, which size suffixes parse, where a missing bus after a
# reboot points, --verify on a topic with no disk log, retention's
# unconsumed bytes in info and stat, and the README's alignment and sparse
# segment notes. lib.sh holds the helpers.
#
# Usage: test_cli_says_true.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_says_true.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
README="$(dirname "${BASH_SOURCE[0]}")/../../README.md"

# tail_offsets TOPIC: "N0 N1 ..." the tail offset of every partition.
tail_offsets() {
    run info "$1" --json
    json_field "' '.join(str(p['tail_offset']) for p in o['partitions'])"
}

test_pub_spread() {
    begin "pub --help says how keyless events spread, and they do"
    run pub --help
    check "help: a batch goes to the next partition" out_has "each batch goes to the next partition"
    check "help: what a batch of stdin is" out_has "up to 256 lines"
    run create sp --partitions 2 --ring-bytes 1M
    seq 512 >"$TMP/lines"
    run_in "$TMP/lines" pub sp
    check "512 lines: two batches of 256, one per partition" \
        test "$(tail_offsets sp)" == "256 256"
    run pub sp a b c
    check "VALUEs are one batch, all in the next partition" \
        test "$(tail_offsets sp)" == "259 256"
    run pub sp --key k1 x; run pub sp --key k1 y; run pub sp --key k1 z
    local after
    after=$(tail_offsets sp)
    check "one key: all three in one partition" \
        test "$after" == "262 256" -o "$after" == "259 259"
    end
}

test_size_suffixes() {
    begin "the size suffixes help and errors name are the ones that parse"
    run create --help
    check "help names K, M, G and T" out_has "K, M, G or T in any case"
    run create sz --ring-bytes 1Q
    check "a bad suffix exits 2" rc_is 2
    check "one line" err_one_line
    check "the error names the same suffixes" err_has "K, M, G or T in any case"
    local s
    for s in K k KiB kib M m MiB G g GiB T t TiB; do
        # A bus and data directory of their own: the topics stay out of
        # the other cases' listings.
        RC=0
        "$EVBUS" create "sz$RANDOM" --bus "$TMP/szbus" --data-dir "$TMP/szdata" \
            --durability async --ring-bytes 64K --segment-bytes 64K \
            --retain-bytes "1$s" >"$OUT" 2>"$ERR" || RC=$?
        check "--retain-bytes 1$s parses" rc_is 0
    done
    end
}

test_missing_bus_points_to_data_dir() {
    begin "no bus after a reboot: the message says to give --data-dir"
    drun create kept --durability sync --ring-bytes 64K --segment-bytes 64K
    drun pub kept a
    reboot
    RC=0
    "$EVBUS" list --bus "$DBUS" >"$OUT" 2>"$ERR" || RC=$?
    check "without the data directory: exit 1" rc_is 1
    check "one line" err_one_line
    check "names the bus" err_has "no bus at $DBUS"
    check "names where it looked" err_has "no durable topic in $EVBUS_DATA_DIR"
    check "points to --data-dir" err_has "give the data directory .* --data-dir DIR"
    check "still says create makes one" err_has "evbus create makes one"
    drun list
    check "with --data-dir it comes back" out_is kept
    end
}

test_verify_not_durable() {
    begin "info --verify on a topic with no disk log is a usage error"
    run create nd
    run info nd --verify
    check "exit 2" rc_is 2
    check "one line" err_one_line
    check "says why" err_has "not durable"
    run info nd --verify --json
    check "--json too: exit 2" rc_is 2
    check "and prints nothing" out_empty
    end
}

test_retention_unconsumed() {
    begin "info and stat show what retention's cap removed unconsumed"
    drun create rc --durability sync --ring-bytes 64K --segment-bytes 64K \
        --retain-until-consumed --retain-cap-bytes 128K
    drun tail rc --name slow </dev/null
    check "setup: the named consumer holds the log from 0" rc_is 0
    seq 5000 >"$TMP/many"
    drun_in "$TMP/many" pub rc
    drun retain rc
    drun info rc
    check "info text: the column" out_has "retention_unconsumed"
    local col
    col=$(awk '/retention_unconsumed/ {for (i = 1; i <= NF; i++) if ($i == "retention_unconsumed") c = i; getline; print $c}' "$OUT")
    check "info text: bytes removed unread ($col)" test "${col:-0}" -gt 0
    drun info rc --json
    check "info --json: bytes removed unread" \
        test "$(json_field "o['partitions'][0]['retention_unconsumed']")" -gt 0
    drun stat rc --json
    check "stat --json: bytes removed unread" \
        test "$(json_field "o['topics'][0]['partitions'][0]['retention_unconsumed']")" -gt 0
    end
}

test_readme_notes() {
    begin "README says values are 8-byte aligned and segments are sparse"
    check "alignment" grep -q "8-byte aligned" "$README"
    check "sparse segments" grep -q "Segment files are sparse" "$README"
    end
}

test_pub_spread
test_size_suffixes
test_missing_bus_points_to_data_dir
test_verify_not_durable
test_retention_unconsumed
test_readme_notes

finish
