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

# A synced topic of 2000 events (two segments), its tmpfs side wiped so
# the next command rebuilds it and every read goes to disk, one byte of the
# value of event N (default 300, in the older segment) flipped.
damaged_topic() {
    local n=${1:-300}
    rm -rf "$DATA" "$DBUS"
    drun create r --durability sync --segment-bytes 64K --ring-bytes 64K
    seq -f 'event-%06g' 0 1999 >"$TMP/lines"
    drun_in "$TMP/lines" pub r
    reboot
    # The event whose frame holds byte 30000 of the first segment: flip a
    # byte of its value (the frame's last bytes hold it).
    python3 - "$n" "$DATA"/r/0/*.log <<'PY'
import sys
want = b'event-%06d' % int(sys.argv[1])
for p in sys.argv[2:]:
    b = bytearray(open(p, 'rb').read())
    i = b.find(want)
    if i > 0:
        b[i + 11] ^= 0x01
        open(p, 'r+b').write(b)
        sys.exit(0)
sys.exit('event not found')
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

test_tail_seeks_into_damage() {
    begin "tail --from an offset inside damage --skip-damage counts the loss from there"
    damaged_topic 300
    drun tail r --from 300 --skip-damage --count 2
    check "tail exits 0" rc_is 0
    check "starts at event 301" eval '[[ "$(head -n1 "$OUT")" == "0:301 event-000301" ]]'
    check "the loss is reported" err_has "lost 1 events before 0:301"
    drun tail r --from 300 --skip-damage --count 1 --json
    check "--json: lost_events and lost_bytes on event 301" py '
import json,sys
e=json.loads(sys.stdin.readline())
assert e["offset"]==301 and e["lost_events"]==1 and e["lost_bytes"]>0, e'
    end
}

test_tail_ends_on_damage() {
    begin "tail --skip-damage whose log ends in damage says so on stderr"
    damaged_topic 1999
    drun tail r --from earliest --skip-damage
    check "tail exits 0" rc_is 0
    check "1999 events printed" eval '[[ $(wc -l <"$OUT") -eq 1999 ]]'
    check "one line on stderr" eval '[[ $(wc -l <"$ERR") -eq 1 ]]'
    check "the loss at the end is reported" err_has "lost 1 events at the end of the log ([1-9][0-9]* log bytes skipped: damage)"
    # An event published since carries it, and only once.
    drun_in /dev/null pub r new
    drun tail r --from 1990 --skip-damage --json
    check "the new event carries the loss" py '
import json,sys
evs=[json.loads(l) for l in sys.stdin]
assert evs[-1]["offset"]==2000 and evs[-1]["lost_events"]==1 and evs[-1]["lost_bytes"]>0, evs[-1]
assert sum(x["lost_events"] for x in evs)==1'
    end
}

test_info_reports_damage() {
    begin "info shows damage recovery found; info --verify walks every segment"
    damaged_topic 1900
    drun info r
    check "info exits 1: the topic is damaged, as list says" rc_is 1
    check "info: one line naming the kept range" err_has "damaged: partition 0: .*1 damaged range"
    check "info has the damaged column" out_has "damaged"
    check "info: partition 0 has 1 damaged range" out_has "^0 .* 1 range"
    drun info r --json
    check "info --json: recovery's damage" py '
import json,sys
p=json.load(sys.stdin)["partitions"][0]
d=p["damage_at_recovery"]
assert d["ranges"]==1 and d["bytes"]>0 and d["first_position"]>=65536, d'
    drun info r --verify
    check "verify: damage is exit 1" rc_is 1
    check "verify: names the partition and range" out_has "partition 0: .*damaged: 1 range"
    check "verify: says how to read past it" err_has "skip-damage"

    damaged_topic 300
    drun info r
    check "info: recovery walked only the newest segment" out_has "^0 .* none"
    drun info r --verify
    check "verify finds damage in an older segment" rc_is 1
    check "verify: the range" out_has "partition 0: .*damaged: 1 range"
    drun info r --verify --json
    check "verify --json" py '
import json,sys
p=json.load(sys.stdin)["partitions"][0]["verify"]
assert p["ranges"]==1 and p["bytes"]>0 and p["first_position"]<65536, p'
    end
}

test_info_verify_clean() {
    begin "info --verify on an intact log: exit 0"
    rm -rf "$DATA" "$DBUS"
    drun create c --durability sync --segment-bytes 64K --ring-bytes 64K
    seq 1 3000 >"$TMP/lines"
    drun_in "$TMP/lines" pub c
    drun info c --verify
    check "verify exits 0" rc_is 0
    check "verify: no damage" out_has "partition 0: .*no damage"
    end
}

# Events FIRST..FIRST+N-1 of topic r rewritten with offsets N lower, each
# with its checksum made anew: intact frames whose offsets went back, as
# producers write them after a hostile store to the ring's tail offset.
offsets_back() {
    python3 - "$1" "$2" "$DATA"/r/0/*.log <<'PY'
import struct, sys
first, n = int(sys.argv[1]), int(sys.argv[2])
T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    T.append(c)
def crc(b, c=0):
    c ^= 0xFFFFFFFF
    for x in b:
        c = T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF
done = 0
for p in sys.argv[3:]:
    b = bytearray(open(p, 'rb').read())
    for k in range(first, first + n):
        i = b.find(b'event-%06d' % k)
        if i < 0:
            continue
        f = i - 56  # no key: the value follows the 56-byte header
        off, = struct.unpack_from('<Q', b, f + 8)
        assert off == k, (p, k, off)
        ln, = struct.unpack_from('<I', b, f + 32)
        struct.pack_into('<Q', b, f + 8, k - n)
        c = crc(b[f + 52:f + ln], crc(b[f + 8:f + 48]))
        struct.pack_into('<I', b, f + 48, c)
        done += 1
    open(p, 'r+b').write(b)
sys.exit(0 if done == n else 'rewrote %d frames of %d' % (done, n))
PY
}

test_tail_skips_offsets_back() {
    begin "tail --skip-damage reports offsets that went back and delivers none twice"
    rm -rf "$DATA" "$DBUS"
    drun create r --durability sync --segment-bytes 64K --ring-bytes 64K
    seq -f 'event-%06g' 0 1999 >"$TMP/lines"
    drun_in "$TMP/lines" pub r
    reboot
    offsets_back 1000 8
    drun tail r --from earliest
    check "plain tail stops at the first lowered frame" rc_nonzero
    check "it names the offset that went back" err_has "offset 992 at position"
    drun tail r --from earliest --skip-damage
    check "tail exits 0" rc_is 0
    check "no offset printed twice" eval '[[ -z "$(cut -d" " -f1 "$OUT" | sort | uniq -d)" ]]'
    check "offsets rise" eval 'cut -d" " -f1 "$OUT" | cut -d: -f2 | sort -n -c'
    check "1992 events printed" eval '[[ $(wc -l <"$OUT") -eq 1992 ]]'
    check "the lowered events are not among them" not_grep "event-001000" "$OUT"
    check "event 999 and 1008 are" eval 'grep -q "^0:999 event-000999$" "$OUT" && grep -q "^0:1008 event-001008$" "$OUT"'
    check "the skip is reported" err_has "lost 8 events before 0:1008 ([1-9][0-9]* log bytes skipped: damage"
    drun info r --verify
    check "verify counts the two breaks" out_has "partition 0: .*damaged: 2 ranges"
    end
}

test_tail_stops_at_damage
test_tail_skips_damage
test_tail_skips_offsets_back
test_tail_seeks_into_damage
test_tail_ends_on_damage
test_info_reports_damage
test_info_verify_clean

finish
