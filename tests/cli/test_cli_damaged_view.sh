#!/usr/bin/env bash
# test_cli_damaged_view.sh - a topic the library will not open still shows
# what is left (issue 9, attack notes): info gives the reason, the config
# and each partition's segment files walked; dump walks the files one by
# one; stat shows every other topic and flags the damaged one in its place.
# Each exits 1 with the damage said in one stderr line. Two kinds of
# damage: a durable topic whose tmpfs side is gone and cannot be rebuilt,
# and a tmpfs topic.conf that names other rings than the topic has.
# lib.sh holds the helpers.
#
# Usage: test_cli_damaged_view.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_damaged_view.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# unrestorable: durable topic d, 2 partitions, 3000 events of 64 B frames
# over 64 KiB segments, then partition 0's second segment cut short and
# the tmpfs side gone; plus a healthy topic ok.
TAIL1=
unrestorable() {
    drun create d --durability sync --partitions 2 --ring-bytes 64K --segment-bytes 64K
    seq 1 3000 | sed 's/^/ev-/' >"$TMP/lines"
    drun_in "$TMP/lines" pub d
    drun create ok --durability sync --ring-bytes 64K --segment-bytes 64K
    drun pub ok one
    drun info d --json
    TAIL1=$(json_field "o['partitions'][1]['tail_offset']")
    # Cut short with no durable mark to say where the log ended.
    truncate -s 10000 "$DATA/d/0/00000000000000065536.log"
    rm -f "$DATA/d/0/durable.mark"
    reboot
}

test_info_unrestorable() {
    begin "info on a topic that cannot be rebuilt shows its config and files"
    unrestorable
    drun info d
    check "exit 1" rc_is 1
    check "one stderr line" err_one_line
    check "stderr: damaged, with the reason" err_has "damaged.*10000 bytes"
    check "config from the data directory" out_has "^partitions *2"
    check "segment size" out_has "^segment bytes *64 KiB"
    check "the reason" out_has "^damaged .*10000 bytes"
    check "the short file, not walked" out_has "^0 *65536 *10000 B *not walked"
    check "partition 1's first file walked whole" out_has "^1 *0 *64 KiB *1024 *65536 *end of file"
    drun info d --json
    check "--json: exit 1" rc_is 1
    check "--json: config" test "$(json_field "o['config']['partitions']")" == 2
    local p0 p1
    p0=$(json_field "sum(s.get('events', 0) for s in o['partitions'][0]['segments'])" || echo none)
    p1=$(json_field "sum(s['events'] for s in o['partitions'][1]['segments'])" || echo none)
    check "--json: partition 0's whole first file walked ($p0)" test "$p0" -eq 1024
    check "--json: every event of partition 1 walked ($p1 of $TAIL1)" test "$p1" -eq "$TAIL1"
    check "--json: the cut file has its error" \
        test "$(json_field "o['partitions'][0]['segments'][1]['file_bytes']")" == 10000
    check "--json: damaged names the reason" \
        test "$(json_field "'10000 bytes' in o['damaged']")" == True
    drun info d --verify
    check "--verify: exit 1 too" rc_is 1
    check "--verify: the same view" out_has "^damaged"
    end
}

test_dump_unrestorable() {
    begin "dump on a topic that cannot be rebuilt walks its files one by one"
    drun dump d
    check "exit 1" rc_is 1
    check "one stderr line" err_one_line
    check "stderr: damaged" err_has "damaged"
    check "the first file's frames" out_has "^pos=0 offset=0 data"
    check "its end" out_has "^pos=65536 end why=\"end of file\""
    check "the cut file, not walked" out_has "^not walked: .*10000 bytes"
    drun dump d --partition 1
    check "partition 1: exit 1" rc_is 1
    check "partition 1: every event of it" test "$(grep -c ' data ' "$OUT")" -eq "$TAIL1"
    drun dump d --json
    check "--json: exit 1" rc_is 1
    check "--json: the cut file's error" grep -q '"error":.*10000 bytes' "$OUT"
    end
}

test_stat_goes_on() {
    begin "stat shows every topic and flags the damaged one"
    drun stat
    check "exit 1" rc_is 1
    check "one stderr line" err_one_line
    check "stderr names the topic and why" err_has "topic d: .*10000 bytes"
    check "the damaged topic flagged" out_has "^topic d: DAMAGED"
    check "the healthy one shown" out_has "^topic ok: 1 partition"
    drun stat --json
    check "--json: exit 1" rc_is 1
    check "--json: d flagged" test "$(json_field "[t['damaged'] for t in o['topics'] if t['name'] == 'd'][0]")" == True
    check "--json: ok's counters" test "$(json_field "[t['partitions'][0]['tail_offset'] for t in o['topics'] if t['name'] == 'ok'][0]")" == 1
    drun stat ok
    check "stat of the healthy topic alone: exit 0" rc_is 0
    run stat --help
    check "help says the exit status" out_has "exit status is then 1"
    end
}

test_conf_mismatch() {
    begin "a topic.conf naming other rings: info shows the rest, stat goes on"
    run create m
    run create other
    run pub m a
    sed -i 's/^partitions 1$/partitions 3/' "$BUS/m/topic.conf"
    run info m
    check "info: exit 1" rc_is 1
    check "info: one stderr line" err_one_line
    check "info: the config it read" out_has "^partitions *3"
    check "info: the reason" out_has "^damaged .*topic.conf"
    run stat
    check "stat: exit 1" rc_is 1
    check "stat: one stderr line" err_one_line
    check "stat: m flagged" out_has "^topic m: DAMAGED.*topic.conf"
    check "stat: other shown" out_has "^topic other: 1 partition"
    end
}

test_info_unrestorable
test_dump_unrestorable
test_stat_goes_on
test_conf_mismatch

finish
