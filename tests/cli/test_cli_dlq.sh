#!/usr/bin/env bash
# test_cli_dlq.sh - dead-letter topics through the CLI (issue 10): a
# consumer (dlq_reject, public API) rejects events, `evbus dlq list` shows
# them with reason, origin and key, `evbus dlq resubmit` puts them back on
# the topic with their key, once; a resubmit SIGKILLed at random moments
# several times and then run to the end publishes every dead-letter event
# exactly once. lib.sh holds the helpers.
#
# Usage: test_cli_dlq.sh PATH/TO/evbus PATH/TO/dlq_reject
set -euo pipefail

EVBUS=${1:?usage: test_cli_dlq.sh PATH/TO/evbus PATH/TO/dlq_reject}
REJECT=${2:?usage: test_cli_dlq.sh PATH/TO/evbus PATH/TO/dlq_reject}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# count_values TOPIC: "<value> <times seen>" lines of TOPIC's events, sorted.
count_values() {
    "$EVBUS" tail "$1" --bus "$DBUS" --data-dir "$DATA" --json |
        python3 -c 'import json,sys,collections
c=collections.Counter(json.loads(l)["value"] for l in sys.stdin)
for v in sorted(c): print(v, c[v])'
}

# between V LO HI: LO < V < HI.
between() { [ "$1" -gt "$2" ] && [ "$1" -lt "$3" ]; }

test_round_trip() {
    begin "reject, list and resubmit round trip"
    drun create t --partitions 2 --durability async
    check "create" rc_is 0
    for i in 0 1 2 3 4; do
        drun pub t --key "k$i" --type 7 "ok-$i" "bad-$i"
    done
    "$REJECT" "$DBUS" "$DATA" t >"$OUT" 2>"$ERR" || true
    check "the consumer read 10 and rejected 5" out_is "10 5"

    drun dlq list t
    check "list: exit 0" rc_is 0
    check "list: 5 lines" [ "$(wc -l <"$OUT")" -eq 5 ]
    check "list: all pending" [ "$(grep -c ' pending ' "$OUT")" -eq 5 ]
    check "list: reason, key and rejecter" grep -q '^[0-4] from [01]:[0-9]* deliveries=1 at 20.*Z by=handler pending key=k3 reason=no good: bad-3$' "$OUT"
    drun dlq list t --json
    check "json: 5 objects" [ "$(wc -l <"$OUT")" -eq 5 ]
    check "json: the record" py 'import json,sys
o=[json.loads(l) for l in sys.stdin]
assert sorted(x["value"] for x in o) == ["bad-%d" % i for i in range(5)], o
assert all(x["origin_topic"] == "t" and x["deliveries"] == 1 and x["type"] == 7 and
           x["rejecter"] == "handler" and not x["resubmitted"] and
           x["key"] == "k" + x["value"][-1] and x["reason"] == "no good: " + x["value"]
           for x in o), o
assert [x["offset"] for x in o] == list(range(5))'
    drun dlq list t --from 3 --limit 1
    check "--from and --limit" grep -q '^3 from .* key=k[0-4] ' "$OUT"
    check "--limit 1: one line" [ "$(wc -l <"$OUT")" -eq 1 ]

    drun dlq resubmit t --offset 2
    check "one offset: exit 0" rc_is 0
    check "one offset: says where it went" grep -q '^resubmitted 2 -> [01]:[0-9]*$' "$OUT"
    drun dlq resubmit t --offset 2
    check "again: exit 0" rc_is 0
    check "again: already" out_is "already 2"
    drun dlq resubmit t --all
    check "--all: exit 0" rc_is 0
    check "--all: 4 more" [ "$(grep -c '^resubmitted' "$OUT")" -eq 4 ]
    check "--all: 2 was done" grep -q '^already 2$' "$OUT"
    check "--all: the tally" err_has "4 resubmitted to t, 1 already were"
    drun dlq list t
    check "list: all resubmitted" [ "$(grep -c ' resubmitted ' "$OUT")" -eq 5 ]

    count_values t >"$OUT"
    check "each bad value twice, each ok value once" out_is "$(for i in 0 1 2 3 4; do echo "bad-$i 2"; done; for i in 0 1 2 3 4; do echo "ok-$i 1"; done)"
    drun tail t --json
    check "resubmitted with their key and type" py 'import json,sys
o=[json.loads(l) for l in sys.stdin]
for v in ["bad-%d" % i for i in range(5)]:
    xs=[x for x in o if x["value"] == v]
    assert len(xs) == 2 and xs[0]["key"] == xs[1]["key"] == "k" + v[-1], xs
    assert xs[0]["partition"] == xs[1]["partition"] and xs[1]["type"] == 7, xs'
    drun pub t.dlq junk
    drun dlq resubmit t --all
    check "junk in the DLQ: exit 1" rc_is 1
    check "junk in the DLQ: named" err_has "skipped dead-letter offset 5: not a record of t"
    check "junk in the DLQ: the rest were done" [ "$(grep -c '^already' "$OUT")" -eq 5 ]
    drun dlq list t
    check "list of junk: exit 1" rc_is 1
    check "list of junk: the others listed" [ "$(wc -l <"$OUT")" -eq 5 ]
    check "list of junk: says which and why" err_has "offset 5: .*shorter than a record header"
    drun dlq resubmit t --offset 99
    check "a missing offset: exit 1" rc_is 1
    check "a missing offset: one line naming it" err_one_line
    check "a missing offset: says so" err_has "no event at offset 99"
    # Its words are not a missing topic's (a cold attack read "no such
    # topic or bus" before the detail).
    check "a missing offset: not 'no such topic or bus'" not_grep "no such topic or bus" "$ERR"
    check "a missing offset: not found" err_has "not found"
    end
}

test_usage() {
    begin "dlq usage errors exit 2"
    drun dlq resubmit t
    check "neither --offset nor --all" rc_is 2
    drun dlq resubmit t --all --offset 1
    check "both" rc_is 2
    drun dlq frob t
    check "unknown action" rc_is 2
    drun dlq list t --all
    check "--all with list" rc_is 2
    drun dlq list
    check "no topic" rc_is 2
    drun dlq list nosuch
    check "an unknown topic: exit 1" rc_is 1
    check "an unknown topic: one line" err_one_line
    drun dlq --help
    check "--help: exit 0" rc_is 0
    check "--help names both actions" grep -q 'evbus dlq resubmit TOPIC' "$OUT"
    end
}

# kill_after LINES: start `dlq resubmit k --all` in the background, and
# SIGKILL it once it has reported LINES events (or it ends by itself).
kill_after() {
    "$EVBUS" dlq resubmit k --all --bus "$DBUS" --data-dir "$DATA" >"$TMP/rs.out" 2>"$TMP/rs.err" &
    BG_PID=$!
    wait_for 30 bash -c "[[ \$(wc -l <'$TMP/rs.out') -ge $1 ]] || ! kill -0 $BG_PID 2>/dev/null" || true
    kill -KILL "$BG_PID" 2>/dev/null || true
    wait "$BG_PID" 2>/dev/null || true
    BG_PID=
}

test_killed_halfway() {
    begin "a resubmit killed half way and rerun resubmits nothing twice"
    # Sync: each resubmit then waits for the disk (about 1 ms an event
    # here), slow enough for kills to land half way.
    local n=1000
    drun create k --partitions 3 --durability sync
    seq -f 'bad-%g' 0 $((n - 1)) >"$TMP/in"
    drun_in "$TMP/in" pub k
    check "pub" rc_is 0
    "$REJECT" "$DBUS" "$DATA" k >"$OUT" 2>"$ERR" || true
    check "all rejected" out_is "$n $n"
    local round done_before=0
    for round in 1 2 3 4 5; do
        # Somewhere past what earlier runs did: each run first says
        # `already` for those, then resubmits more until the kill.
        kill_after $((done_before + 20 + RANDOM % 80))
        done_before=$(drun dlq list k; grep -c ' resubmitted ' "$OUT" || true)
    done
    echo "# after 5 kills: $done_before of $n resubmitted"
    check "the kills landed half way ($done_before of $n done)" between "$done_before" 0 "$n"
    drun dlq resubmit k --all
    check "the rerun: exit 0" rc_is 0
    local pub already
    pub=$(grep -c '^resubmitted' "$OUT" || true)
    already=$(grep -c '^already' "$OUT" || true)
    check "the rerun did the rest ($pub) and skipped the others ($already)" [ "$((pub + already))" -eq "$n" ]
    check "the rerun skipped at least what list showed done" [ "$already" -ge "$done_before" ]
    count_values k >"$OUT"
    check "every event exactly twice: the original and one resubmit" py 'import sys
c={l.split()[0]: int(l.split()[1]) for l in sys.stdin}
assert len(c) == '"$n"', len(c)
bad={v: k for v, k in c.items() if k != 2}
assert not bad, bad'
    drun dlq resubmit k --all
    check "a third run publishes nothing" [ "$(grep -c '^resubmitted' "$OUT" || true)" -eq 0 ]
    end
}

test_damaged_state() {
    begin "a damaged resubmit state: list says unknown and exits 1, resubmit refuses"
    drun create d --partitions 1
    drun pub d bad-0 bad-1 bad-2 bad-3 bad-4
    "$REJECT" "$DBUS" "$DATA" d >"$OUT" 2>"$ERR" || true
    check "5 rejected" out_is "5 5"
    drun dlq resubmit d --offset 0
    drun dlq resubmit d --offset 1
    check "two resubmitted" rc_is 0
    local st="$DBUS/d.dlq/resubmit.state" how size
    check "the state file is there" [ -s "$st" ]
    cp "$st" "$TMP/good.state"
    size=$(stat -c %s "$st")
    for how in empty zeroed random truncated bitmap; do
        cp "$TMP/good.state" "$st"
        case $how in
        empty) : >"$st" ;;
        zeroed) head -c "$size" /dev/zero >"$st" ;;
        random) head -c "$size" /dev/urandom >"$st" ;;
        truncated) truncate -s 70 "$st" ;;
        bitmap) printf '\0\0\0\0' | dd of="$st" bs=1 seek=64 conv=notrunc status=none ;;
        esac
        drun dlq list d
        check "$how: list exits 1" rc_is 1
        check "$how: every record listed" [ "$(wc -l <"$OUT")" -eq 5 ]
        check "$how: none pending or resubmitted" [ "$(grep -c ' unknown ' "$OUT")" -eq 5 ]
        check "$how: one line naming the file" err_one_line
        check "$how: names the file" err_has "resubmit.state"
        drun dlq list d --json
        check "$how: json exits 1" rc_is 1
        check "$how: json resubmitted is null" py 'import json,sys
o=[json.loads(l) for l in sys.stdin]
assert len(o) == 5 and all(x["resubmitted"] is None for x in o), o'
        drun dlq resubmit d --all
        check "$how: resubmit refuses" rc_is 1
        check "$how: resubmit publishes nothing" [ "$(grep -c '^resubmitted' "$OUT" || true)" -eq 0 ]
    done
    cp "$TMP/good.state" "$st"
    drun dlq list d
    check "restored: list exits 0" rc_is 0
    check "restored: 2 resubmitted" [ "$(grep -c ' resubmitted ' "$OUT")" -eq 2 ]
    check "restored: 3 pending" [ "$(grep -c ' pending ' "$OUT")" -eq 3 ]
    drun dlq resubmit d --all
    check "restored: the other 3 go" [ "$(grep -c '^resubmitted' "$OUT")" -eq 3 ]
    count_values d >"$OUT"
    check "each event twice: the original and one resubmit" out_is "$(for i in 0 1 2 3 4; do echo "bad-$i 2"; done)"
    end
}

test_stat() {
    begin "stat: dead-lettered and resubmitted per topic, rejects per group"
    drun create s --partitions 2
    drun pub s --key a bad-0 ok-0 bad-1
    drun pub s --key b bad-2 ok-1 bad-3
    "$REJECT" "$DBUS" "$DATA" s group:pg >"$OUT" 2>"$ERR" || true
    check "a partition group member rejected 4" out_is "6 4"
    drun stat s
    check "stat: exit 0" rc_is 0
    check "stat: the DLQ line" out_has "^  dead-letter topic s.dlq: 4 events, 0 resubmitted (evbus dlq list s)$"
    check "stat: the group's rejects" out_has "^  group pg: 0 members, lag 0 events, 4 rejected, "
    drun groups s --json
    check "groups agrees: 4 rejected" py 'import json,sys
o=json.load(sys.stdin)
assert sum(p["rejected"] for p in o["partition_state"]) == 4, o'
    drun dlq resubmit s --offset 2
    drun stat s --json
    check "stat --json: the DLQ and the group" py 'import json,sys
t=json.load(sys.stdin)["topics"][0]
assert t["dlq"] == {"name": "s.dlq", "events": 4, "resubmitted": 1}, t["dlq"]
assert t["groups"][0]["rejected"] == 4 and t["groups"][0]["kind"] == "partition", t["groups"]'
    drun stat s.dlq --json
    check "stat --json: a DLQ has no DLQ" json_field 'o["topics"][0]["dlq"] is None or sys.exit(1)'
    drun stat
    check "stat of every topic: one line for s.dlq" [ "$(grep -c 'dead-letter topic s.dlq:' "$OUT")" -eq 1 ]
    check "stat of every topic: none for a DLQ's DLQ" [ "$(grep -c 'dead-letter topic .*[.]dlq[.]dlq' "$OUT")" -eq 0 ]

    drun create q --partitions 1
    drun pub q bad-0 ok-0 bad-1
    "$REJECT" "$DBUS" "$DATA" q queue:qg >"$OUT" 2>"$ERR" || true
    check "a queue member rejected 2" out_is "3 2"
    drun stat q
    check "stat: the queue group's dead-lettered, none left due" out_has "^  group qg: queue, .* 2 dead-lettered, 0 due for the dead-letter topic "
    check "stat: the queue's DLQ" out_has "^  dead-letter topic q.dlq: 2 events, 0 resubmitted"
    drun groups q --json
    check "groups agrees: 2 dead-lettered" py 'import json,sys
o=json.load(sys.stdin)
assert sum(p["dead_lettered"] for p in o["partition_state"]) == 2, o'
    drun stat q --json
    check "stat --json: dead_lettered 2" py 'import json,sys
o=json.load(sys.stdin)
assert o["topics"][0]["groups"][0]["dead_lettered"] == 2, o'

    local st="$DBUS/s.dlq/resubmit.state"
    printf 'garbage!' | dd of="$st" bs=1 seek=64 conv=notrunc status=none
    drun stat s
    check "damaged state: resubmitted unknown, naming the file" out_has "^  dead-letter topic s.dlq: 4 events, resubmitted unknown: .*resubmit.state"
    drun stat s --json
    check "damaged state: json null and why" py 'import json,sys
d=json.load(sys.stdin)["topics"][0]["dlq"]
assert d["resubmitted"] is None and "resubmit.state" in d["state_error"], d'
    end
}

# Two records of one event (a reader that rejected it again after a kill
# between its reject and its commit): list marks the second, resubmit
# --all publishes the event once and counts the repeat.
test_duplicate_records() {
    begin "a second DLQ record of one event: list marks it, resubmit --all skips it"
    drun create dup --partitions 1 --durability async
    drun pub dup ok-0 badtwice-1 bad-2
    "$REJECT" "$DBUS" "$DATA" dup >"$OUT" 2>"$ERR" || true
    check "the consumer read 3 and rejected 2 (one twice)" out_is "3 2"
    drun dlq list dup
    check "list: exit 0" rc_is 0
    check "list: three records" [ "$(wc -l <"$OUT")" -eq 3 ]
    check "list: the first record is not marked" bash -c "grep '^0 ' '$OUT' | grep -vq duplicate"
    check "list: the repeat names the first" bash -c "grep '^1 ' '$OUT' | grep -q 'pending duplicate-of=0 key='"
    check "list: the other is not marked" bash -c "grep '^2 ' '$OUT' | grep -vq duplicate"
    drun dlq list dup --json
    check "json: duplicate_of per record" bash -c "python3 -c '
import json,sys
d=[json.loads(l)[\"duplicate_of\"] for l in open(\"$OUT\")]
sys.exit(0 if d == [None, 0, None] else 1)'"
    drun dlq resubmit dup --all
    check "resubmit: exit 0" rc_is 0
    check "resubmit: the repeat is said" out_has "duplicate 1 of 0"
    check "resubmit: two published" bash -c "[[ \$(grep -c '^resubmitted' '$OUT') -eq 2 ]]"
    check "resubmit: counted" err_has "2 resubmitted to dup, 0 already were, 1 duplicates skipped"
    count_values dup >"$OUT"
    check "the event is back once (twice in all: the original and one resubmit)" \
        grep -qx "badtwice-1 2" "$OUT"
    drun dlq resubmit dup --all --json
    check "a rerun: json names the repeat again" bash -c "grep -q '\"status\": *\"duplicate\"' '$OUT'"
    check "a rerun: nothing published" bash -c "! grep -q resubmitted '$OUT'"
    end
}

test_dlq_shape_and_loss() {
    begin "a DLQ of several partitions is refused; a lapped ring-only DLQ lists with exit 1"
    drun create s4.dlq --partitions 4
    check "create s4.dlq --partitions 4: exit 2" rc_is 2
    check "says a dead-letter topic has one partition" err_has "a dead-letter topic has one"
    local long
    long=$(printf 'l%.0s' {1..61})
    drun create "$long"
    check "a name with no room for .dlq: created" rc_is 0
    check "... and said" err_has "leaves no room for its dead-letter topic"
    drun create ro --ring-bytes 1M
    check "a name with room: nothing said" eval '[[ ! -s "$ERR" ]]'
    drun create ro.dlq --ring-bytes 64K
    python3 -c "for i in range(200): print('bad-' + str(i) * 200)" >"$TMP/bads"
    drun pub ro <"$TMP/bads"
    "$REJECT" "$DBUS" "$DATA" ro >"$OUT" 2>"$ERR" || true
    check "the consumer rejected all 200" out_is "200 200"
    drun dlq list ro
    check "lapped: exit 1" rc_is 1
    check "lapped: says how many were lost" err_has "lost [0-9]* dead-letter events"
    end
}

test_round_trip
test_dlq_shape_and_loss
test_duplicate_records
test_usage
test_damaged_state
test_stat
test_killed_halfway
finish
