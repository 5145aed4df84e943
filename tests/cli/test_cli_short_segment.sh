#!/usr/bin/env bash
# test_cli_short_segment.sh - the newest segment cut short, durable.mark
# intact (attack 3, F5): the mark says where the log ends, so what the cut
# took is a damaged range, as when the segment is missing: the topic
# rebuilds, is listed damaged with the range, older events read, --skip-
# damage reads past it, pub goes on past the mark (no offset reused), and
# a second rebuild agrees. Before the fix the topic was "damaged ... the
# log end is unknown" and pub, tail and tail --skip-damage all refused.
# lib.sh holds the helpers.
#
# Usage: test_cli_short_segment.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_short_segment.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

seq 1 6000 >"$TMP/lines"
NEWEST=00000000000000262144.log

for size in 0 8 60000 65536; do
    begin "newest segment cut to $size bytes, the mark intact: a damaged range"
    rm -rf "$DATA" "$DBUS"
    drun create s --durability sync --ring-bytes 64K --segment-bytes 128K
    drun_in "$TMP/lines" pub s
    check "setup: pub" rc_is 0
    truncate -s "$size" "$DATA/s/0/$NEWEST"
    reboot
    drun list
    check "listed damaged with the range" out_has "damaged range"
    check "not an unknown end" not_grep "unknown" "$OUT"
    drun tail s
    check "tail stops at the damage (exit 1)" rc_is 1
    check "naming the file" err_has "$NEWEST"
    drun tail s --skip-damage
    check "tail --skip-damage exits 0" rc_is 0
    check "reads the first events" eval '[[ "$(head -1 "$OUT")" == "0:0 1" ]]'
    check "says what it lost" err_has "lost"
    kept=$(wc -l <"$OUT")
    check "and fewer than all" eval '((kept < 6000 && kept >= 4096))'
    drun pub s after
    check "pub works" rc_is 0
    drun tail s --from 6000
    check "the new event comes after the mark's offsets" out_is "0:6000 after"
    reboot
    drun tail s --skip-damage
    check "a second rebuild: the same events and the new one" \
        eval '[[ $(wc -l <"$OUT") -eq $((kept + 1)) && "$(tail -1 "$OUT")" == "0:6000 after" ]]'
    drun info s --verify
    check "verify finds the range (exit 1)" rc_is 1
    check "one range" out_has "damaged: 1 range"
    end
done

begin "cut short without a mark: refused, nothing changed"
rm -rf "$DATA" "$DBUS"
drun create s --durability sync --ring-bytes 64K --segment-bytes 128K
drun_in "$TMP/lines" pub s
rm -f "$DATA/s/0/durable.mark"
truncate -s 60000 "$DATA/s/0/$NEWEST"
reboot
drun list
check "listed damaged: the end is unknown" out_has "unknown"
drun pub s x
check "pub refused" rc_is 1
check "the segment untouched" eval '[[ $(stat -c %s "$DATA/s/0/$NEWEST") -eq 60000 ]]'
end

finish
