#!/usr/bin/env bash
# test_cli_stat.sh - evbus stat --prometheus: the output of a bus with a
# live subscriber, a named consumer, a partition group, a queue group and a
# durable topic passes `promtool check metrics` (when Debian's prometheus
# package is installed) and prom_check.py (always: HELP/TYPE before the
# samples, families contiguous, no series twice); the values are the
# counters (published, lag, delivered, group lag); an unreadable group
# file is a 0 in evbus_group_readable and exit status 1, a damaged cursor
# file of a named consumer (bad header, or a commit past the tail) a
# DAMAGED line, a 0 in evbus_consumer_readable and exit status 1; a ring
# whose tail word is damaged (not aligned, below the ring's first
# position) shows the topic DAMAGED, readable 0, exit 1 in every output,
# as readers and producers refuse it (a cold attack found stat printing
# the garbage as a position, exit 0); a damaged dedup table (a named
# consumer's .dup, a group's .gdup), which its consumer's open refuses, is
# damage too (it was shown healthy); --json and --prometheus together are
# a usage error.
#
# Usage: test_cli_stat.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_stat.sh PATH/TO/evbus}
HERE=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=lib.sh
source "$HERE/lib.sh"

# The exposition format checks: ours always, promtool's lint when present.
prom_ok() {
    python3 "$HERE/prom_check.py" <"$OUT" || return 1
    if command -v promtool >/dev/null; then promtool check metrics <"$OUT" || return 1; fi
}
# sample NAME LABELS: the value of series NAME{LABELS} in OUT.
sample() { awk -v k="$1{$2}" '$1 == k { print $2 }' "$OUT"; }

test_prometheus() {
    begin "stat --prometheus: valid exposition format with the counters"
    run create t --partitions 2
    run create d --durability async
    run pub t a b c --partition 1
    run pub d x y
    run tail t --name c1
    run pub t e --partition 0
    run tail t --group g
    run tail t --group q --queue
    run pub t f --partition 0
    "$EVBUS" tail t --bus "$BUS" -f >/dev/null 2>&1 &
    BG_PID=$!
    check "subscriber attached" wait_for 10 bash -c \
        "'$EVBUS' stat t --bus '$BUS' --json | python3 -c 'import json,sys; o=json.load(sys.stdin); sys.exit(0 if sum(len(p[\"readers\"]) for p in o[\"topics\"][0][\"partitions\"]) == 2 else 1)'"
    run stat --prometheus
    check "exit 0" rc_is 0
    check "exposition format" prom_ok
    check "published 3 on partition 1" test "$(sample evbus_partition_published_events_total 'topic="t",partition="1"')" = 3
    check "tail offset 3" test "$(sample evbus_partition_tail_offset 'topic="t",partition="1"')" = 3
    check "durable topic: unsynced bytes shown" out_has '^evbus_partition_unsynced_bytes{topic="d",partition="0"} '
    check "not for a topic in memory only" not_grep 'evbus_partition_unsynced_bytes{topic="t"' "$OUT"
    check "subscriber: no lag" out_has "^evbus_reader_lag_bytes{topic=\"t\",partition=\"1\",kind=\"lossless\",reader=\"\",pid=\"$BG_PID\"} 0\$"
    check "group g: lag of one event (f, published after it read)" test \
        "$(sample evbus_group_lag_events 'topic="t",group="g",kind="partition"')" = 1
    check "queue q: its counters" out_has '^evbus_group_in_flight_events{topic="t",group="q",kind="queue"} 0$'
    check "counters are typed counter" out_has '^# TYPE evbus_reader_delivered_events_total counter$'
    check "topics readable" out_has '^evbus_topic_readable{topic="t"} 1$'
    check "closed named consumer c1: listed, not open" out_has '^evbus_consumer_open{topic="t",partition="1",consumer="c1"} 0$'
    check "... with its lag (e and f came after it read)" out_has '^evbus_consumer_lag_events{topic="t",partition="0",consumer="c1"} 2$'
    check "the lossless subscriber gates" out_has "^evbus_reader_gating{topic=\"t\",partition=\"1\",kind=\"lossless\",reader=\"\",pid=\"$BG_PID\"} 1\$"
    run stat t
    check "text: closed consumer line" out_has '^ *closed .* c1$'
    check "text: the gating reader starred" out_has ' \*$'
    run stat t --prometheus
    check "one topic: only its series" not_grep 'topic="d"' "$OUT"
    head -c 100 /dev/urandom >"$BUS/t/consumers/r.grp"
    run stat t --prometheus
    check "an unreadable group file: exit 1" rc_is 1
    check "... and still the exposition format" prom_ok
    check "... with the group unreadable" out_has '^evbus_group_readable{topic="t",group="r"} 0$'
    check "... and the others readable" out_has '^evbus_group_readable{topic="t",group="g"} 1$'
    rm -f "$BUS/t/consumers/r.grp"
    run stat --prometheus --json
    check "--json with --prometheus: exit 2" rc_is 2
    kill "$BG_PID"; wait "$BG_PID" 2>/dev/null || true; BG_PID=
    end
}

test_producer_labels() {
    begin "stat: a live producer with its counters and command name, escaped in labels"
    run create pr
    # A command name with a quote and a backslash: what the escapes are for.
    ln -s "$(readlink -f "$EVBUS")" "$TMP/ev\"b\\x"
    # Fed through a FIFO this shell holds open: the producer stays
    # attached until the FIFO closes.
    mkfifo "$TMP/feed"
    "$TMP/ev\"b\\x" pub pr --bus "$BUS" <"$TMP/feed" &
    BG_PID=$!
    exec 7>"$TMP/feed"
    seq 1 500 >&7
    check "published 500" wait_for 10 bash -c "'$EVBUS' stat pr --bus '$BUS' --json | python3 -c 'import json,sys; o=json.load(sys.stdin); sys.exit(0 if o[\"topics\"][0][\"partitions\"][0][\"producers\"][0][\"published\"] == 500 else 1)'"
    run stat pr --prometheus
    check "exposition format" prom_ok
    check "per producer, command name escaped" out_has \
        '^evbus_producer_published_events_total{topic="pr",partition="0",producer_id="[0-9]*",pid="[0-9]*",comm="ev\\"b\\\\x"} 500$'
    check "its ring bytes: 500 frames of 56 + 8 bytes" out_has \
        '^evbus_producer_published_bytes_total{.*} 32000$'
    run stat pr --json
    check "json: the command name as it is" json_field \
        'o["topics"][0]["partitions"][0]["producers"][0]["comm"] == "ev\"b\\x" or sys.exit(1)'
    run stat pr
    check "text: a producer line" out_has 'ev"b.x$'
    exec 7>&-
    wait_bg 10
    check "the producer ends at the end of its input" rc_is 0
    end
}

test_damaged_cursor() {
    begin "stat: a closed named consumer whose cursor file is damaged is shown as such, not dropped"
    run create dc
    run pub dc a b c
    run tail dc --name ok
    run tail dc --name bad
    run pub dc d
    # The header overwritten: magic and version are gone.
    printf 'garbage-garbage-garbage-garbage-' | dd of="$BUS/dc/consumers/bad.cur" \
        conv=notrunc 2>/dev/null
    run stat dc
    check "text: exit 1" rc_is 1
    check "... one line naming it" err_has "consumer dc/bad: cursor file damaged"
    check "... a DAMAGED line with the file" out_has '^ *DAMAGED .* bad (cursor file damaged: consumers/bad.cur)$'
    check "... the readable one still shown with its lag" out_has '^ *closed  *- *3  *1 .* ok$'
    run stat dc --json
    check "json: exit 1" rc_is 1
    check "json: listed damaged, lag unknown (null, not 0)" json_field \
        '[c for c in o["topics"][0]["partitions"][0]["closed_consumers"] if c["name"] == "bad" and c["damaged"] and c["lag_events"] is None and c["error"]] or sys.exit(1)'
    run stat dc --prometheus
    check "prometheus: exit 1" rc_is 1
    check "... the exposition format" prom_ok
    check "... readable 0 for it" out_has '^evbus_consumer_readable{topic="dc",partition="0",consumer="bad"} 0$'
    check "... 1 for the other" out_has '^evbus_consumer_readable{topic="dc",partition="0",consumer="ok"} 1$'
    check "... no lag sample for it (unknown, not 0)" not_grep 'evbus_consumer_lag_events{topic="dc",partition="0",consumer="bad"}' "$OUT"
    # A sound file whose commit is past the tail (offset 1000 of 4, at
    # entry 0's offset word, byte 48): its open refuses it, so stat must
    # not call it caught up.
    rm -f "$BUS/dc/consumers/bad.cur"
    run tail dc --name bad
    run stat dc
    check "a fresh cursor file: readable again" rc_is 0
    printf '\350\003\000\000\000\000\000\000' | dd of="$BUS/dc/consumers/bad.cur" bs=1 \
        seek=48 conv=notrunc 2>/dev/null
    run stat dc
    check "a commit past the tail: exit 1" rc_is 1
    check "... a DAMAGED line, not lag 0" out_has '^ *DAMAGED .* bad (cursor file damaged: consumers/bad.cur)$'
    run stat dc --prometheus
    check "... readable 0 for it" out_has '^evbus_consumer_readable{topic="dc",partition="0",consumer="bad"} 0$'
    check "... no lag sample for it" not_grep 'evbus_consumer_lag_events{topic="dc",partition="0",consumer="bad"}' "$OUT"
    truncate -s 10 "$BUS/dc/consumers/bad.cur"
    run stat dc
    check "a file shorter than a header: DAMAGED too" out_has '^ *DAMAGED .* bad '
    rm -f "$BUS/dc/consumers/bad.cur"
    run stat dc
    check "removed: exit 0" rc_is 0
    end
}

# The tail pair is the ring header's words at 128 (position) and 136
# (offset), shm/ring_format.h.
test_damaged_tail() {
    local how
    for how in unaligned below; do
        begin "stat: a ring with a damaged tail ($how) is damage, not a number"
        run create dt --partitions 2
        seq 1 10 | "$EVBUS" pub dt --bus "$BUS" >/dev/null
        if [[ $how == unaligned ]]; then
            printf 'ZZZZ' | dd of="$BUS/dt/1.ring" bs=1 seek=128 conv=notrunc status=none
        else # a position below the first (8) while the offset stays
            printf '\010\000\000\000\000\000\000\000\377\377\377\377\377\377\377\177' |
                dd of="$BUS/dt/1.ring" bs=1 seek=128 conv=notrunc status=none
            python3 -c "import struct,sys; f=open(sys.argv[1],'r+b'); f.seek(40); f.write(struct.pack('<Q', 64))" "$BUS/dt/1.ring"
        fi
        run tail dt
        check "tail refuses it: exit 1" rc_is 1
        run stat dt
        check "stat: exit 1" rc_is 1
        check "... the topic shown damaged" out_has "DAMAGED"
        check "... with the tail named" out_has "partition 1: tail"
        run stat
        check "stat of the bus: exit 1" rc_is 1
        run stat dt --json
        check "--json: exit 1" rc_is 1
        check "... damaged in the JSON" eval "json_field 'o[\"topics\"][0][\"damaged\"]' | grep -qx True"
        run stat dt --prometheus
        check "--prometheus: exit 1" rc_is 1
        check "... readable 0" out_has '^evbus_topic_readable{topic="dt"} 0$'
        run delete dt --force
        end
    done
}

# A byte of the one slot in use of partition 0 (dedup_format.h: header
# 64 bytes, 2 slots of 1568 per partition; the second holds the first save).
test_damaged_dedup() {
    begin "stat and groups: a damaged dedup table is damage, as its consumer's open says"
    run create dd
    seq 1 5 | "$EVBUS" pub dd --bus "$BUS" --producer-id 2147483655 >/dev/null
    run tail dd --name nc --dedup
    run tail dd --group G --dedup
    run stat dd
    check "sound tables: exit 0" rc_is 0
    local f
    for f in nc.dup G.gdup; do
        printf '\001' | dd of="$BUS/dd/consumers/$f" bs=1 seek=$((0x6a0)) conv=notrunc status=none
    done
    run tail dd --name nc --dedup
    check "the consumer's open refuses it" rc_is 1
    run stat dd
    check "stat: exit 1" rc_is 1
    check "... nc DAMAGED, naming its table" out_has 'DAMAGED .* nc (dedup table damaged: consumers/nc.dup)$'
    check "... its commit and lag still shown (an open without dedup reads on)" \
        out_has '^ *closed  *- *5 .* nc$'
    run stat dd --prometheus
    check "--prometheus: exit 1" rc_is 1
    check "... consumer readable 0" out_has '^evbus_consumer_readable{topic="dd",partition="0",consumer="nc"} 0$'
    check "... group readable 0" out_has '^evbus_group_readable{topic="dd",group="G"} 0$'
    run groups dd
    check "groups: exit 1" rc_is 1
    check "... saying why" err_has "dedup table damaged: consumers/G.gdup"
    # A table of the wrong size (cut short, or grown): read by pread into a
    # copy of the size the topic's tables have, never mapped (a file cut
    # short under a mapping would kill the stat with SIGBUS).
    truncate -s 64 "$BUS/dd/consumers/nc.dup"
    truncate -s 1G "$BUS/dd/consumers/G.gdup"
    run stat dd
    check "wrong sizes: exit 1, no crash" rc_is 1
    check "... nc DAMAGED" out_has 'DAMAGED .* nc (dedup table damaged: consumers/nc.dup)$'
    run groups dd
    check "... the group's table said" err_has "G.gdup: 1073741824 bytes"
    end
}

test_checker_fails() {
    begin "prom_check.py rejects what the format forbids"
    printf 'a_total 1\n' >"$OUT"
    check "a sample before HELP/TYPE" bash -c "! python3 '$HERE/prom_check.py' <'$OUT' >/dev/null"
    printf '# HELP a x\n# TYPE a gauge\na{l="1"} 1\na{l="1"} 2\n' >"$OUT"
    check "a series twice" bash -c "! python3 '$HERE/prom_check.py' <'$OUT' >/dev/null"
    printf '%s\n' '# HELP a x' '# TYPE a gauge' 'a{l="\q"} 1' >"$OUT"
    check "an escape the format lacks" bash -c "! python3 '$HERE/prom_check.py' <'$OUT' >/dev/null"
    end
}

test_prometheus
test_producer_labels
test_damaged_cursor
test_damaged_tail
test_damaged_dedup
test_checker_fails

finish
