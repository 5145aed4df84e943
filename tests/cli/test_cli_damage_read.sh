#!/usr/bin/env bash
# test_cli_damage_read.sh - reading a durable topic whose log is damaged
# below its durable end (issue 9, defect 7): by default tail stops at the
# damage with one line naming the partition, the segment file and the
# position, after printing every event before it; with --skip-damage it
# prints every intact event after it too and reports how many it lost.
# lib.sh holds the helpers.
#
# Usage: test_cli_damage_read.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_damage_read.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SEG0="00000000000000000000.log"

# A synced topic of 2000 events, its tmpfs side rebuilt so every read goes
# to disk, one byte of the value of the event at file offset AT flipped.
damaged_topic() {
    rm -rf "$DATA" "$DBUS"
    drun create r --durability sync --segment-bytes 64K --ring-bytes 64K
    seq -f 'event-%06g' 0 1999 >"$TMP/lines"
    drun_in "$TMP/lines" pub r
    reboot
    # The event whose frame holds byte 30000 of the first segment: flip a
    # byte of its value (the frame's last bytes hold it).
    python3 - "$DATA/r/0/$SEG0" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
i = b.find(b'event-000300')
assert i > 0, 'event 300 not found'
b[i + 11] ^= 0x01
open(p, 'r+b').write(b)
PY
}

test_tail_stops_at_damage() {
    begin "tail stops at damage with partition, file and position"
    damaged_topic
    drun tail r --from earliest
    check "tail fails" rc_nonzero
    check "tail: one line" err_one_line
    check "names the partition" err_has "partition 0"
    check "names the segment file" err_has "$SEG0"
    check "names the position" err_has "position [0-9]"
    check "printed the 300 events before the damage" eval '[[ $(wc -l <"$OUT") -eq 300 ]]'
    check "the last one printed is event 299" eval '[[ "$(tail -n1 "$OUT")" == "0:299 event-000299" ]]'
    end
}

test_tail_skips_damage() {
    begin "tail --skip-damage prints every intact event and counts the loss"
    damaged_topic
    drun tail r --from earliest --skip-damage
    check "tail exits 0" rc_is 0
    check "1999 events printed" eval '[[ $(wc -l <"$OUT") -eq 1999 ]]'
    check "event 300 is not among them" not_grep "event-000300" "$OUT"
    check "event 301 and the last are" eval 'grep -q "^0:301 event-000301$" "$OUT" && grep -q "^0:1999 event-001999$" "$OUT"'
    check "the loss is reported" err_has "lost 1 events before 0:301"
    check "it says the loss was damage" err_has "bytes skipped: damage"
    drun tail r --from earliest --skip-damage --json
    check "--json: lost_events on event 301" py '
import json,sys
evs=[json.loads(l) for l in sys.stdin]
e=[x for x in evs if x["offset"]==301][0]
assert e["lost_events"]==1 and e["lost_bytes"]>0, e
assert sum(x["lost_events"] for x in evs)==1'
    end
}

test_tail_stops_at_damage
test_tail_skips_damage

finish
