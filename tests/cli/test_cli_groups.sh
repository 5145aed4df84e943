#!/usr/bin/env bash
# test_cli_groups.sh - consumer groups from the command line: tail --group
# reads each event once across members and commits on print; a second
# member shares the partitions; evbus groups shows members, owners,
# committed offsets and lag (text and JSON); a SIGKILLed member's
# partitions are taken over and its uncommitted events printed again;
# bad input gets one line and exit 2. Queue groups: tail --group --queue
# members share single events, ack on print, a killed member's unwritten
# events go to another with their delivery count, groups shows the queue.
#
# Usage: test_cli_groups.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_groups.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

test_one_member_commits_on_print() {
    begin "tail --group prints each event once and resumes after what it printed"
    run create g --partitions 4
    run pub g a b c d e f
    run tail g --group w
    check "exit 0" rc_is 0
    check "six events" test "$(wc -l <"$OUT")" -eq 6
    check "told what it was given" err_has "assigned partitions 0,1,2,3"
    run pub g x
    run tail g --group w
    check "the next member starts after the commit" bash -c "grep -q '^[0-3]:[0-9]* x\$' '$OUT' && test \$(wc -l <'$OUT') -eq 1"
    run groups g
    check "groups: exit 0" rc_is 0
    check "groups: names the group" out_has "g/w: partition group, 0 members, 4 partitions"
    check "groups: committed offsets add up to the 7 events, no lag" py '
import sys
rows = [l.split() for l in sys.stdin if l[:3] == "   " or l[2:3].isdigit()]
rows = [r for r in rows if r and r[0].isdigit()]
total = sum(int(r[3]) for r in rows if r[3].isdigit())
sys.exit(0 if total == 7 and all(r[-2] == "0" for r in rows) else 1)'
    run groups g --json
    check "json: committed offsets add up to 7, no member left" json_field \
        'sum(p["committed_offset"] or 0 for p in o["partition_state"]) == 7 and o["members"] == [] or sys.exit(1)'
    end
}

test_members_share_and_kill() {
    begin "two members split the partitions; a killed member's share is taken over"
    run create k --partitions 4
    "$EVBUS" tail k --bus "$BUS" --group w -f >"$TMP/m1.out" 2>"$TMP/m1.err" &
    local m1=$!
    check "first member owns 4" wait_for 10 grep -q "assigned partitions 0,1,2,3" "$TMP/m1.err"
    "$EVBUS" tail k --bus "$BUS" --group w -f >"$TMP/m2.out" 2>"$TMP/m2.err" &
    local m2=$!
    BG_PID=$m2
    check "second member gets its share" wait_for 10 grep -q "assigned partition" "$TMP/m2.err"
    run groups k --json
    check "two members, 2 partitions each" wait_for 5 bash -c "'$EVBUS' groups k --bus '$BUS' --json | python3 -c 'import json,sys; o=json.load(sys.stdin); sys.exit(0 if sorted(m[\"partitions\"] for m in o[\"members\"]) == [2, 2] else 1)'"
    run groups k --json
    check "and in JSON" json_field \
        'sorted(m["partitions"] for m in o["members"]) == [2, 2] or sys.exit(1)'
    check "members show their command name" json_field \
        'all(m["comm"] == "evbus" for m in o["members"]) or sys.exit(1)'
    for i in $(seq 1 40); do printf 'k%d\n' "$i"; done >"$TMP/in"
    run_in "$TMP/in" pub k
    check "all 40 printed" wait_for 10 bash -c "test \$(cat '$TMP/m1.out' '$TMP/m2.out' | wc -l) -ge 40"
    kill -9 "$m1"
    wait "$m1" 2>/dev/null || true
    check "the survivor owns all 4" wait_for 10 bash -c "'$EVBUS' groups k --bus '$BUS' --json | python3 -c 'import json,sys; o=json.load(sys.stdin); sys.exit(0 if [m[\"partitions\"] for m in o[\"members\"]] == [4] else 1)'"
    run pub k late
    check "the survivor prints new events" wait_for 10 grep -q " late" "$TMP/m2.out"
    check "every event printed once at least" bash -c \
        "test \$(cat '$TMP/m1.out' '$TMP/m2.out' | cut -d' ' -f2 | sort -u | wc -l) -eq 41"
    kill "$m2"
    wait "$m2" 2>/dev/null || true
    BG_PID=
    run groups k --json
    check "the kill was counted as an expulsion" json_field 'o["expelled"] >= 1 or sys.exit(1)'
    check "json: every partition's fields" json_field \
        'all(set(p) >= {"partition", "owner_pid", "epoch", "committed_offset", "lag_events", "fenced_commits", "rejected"} for p in o["partition_state"]) or sys.exit(1)'
    end
}

# A member stopped (SIGSTOP) holds partitions with events waiting: a
# second `tail --group` without -f printed nothing and exited 0 at once,
# as if the group were caught up. It now waits out the silent member's
# lease, takes its partitions over and prints their events.
test_stopped_member_share_is_printed() {
    begin "tail --group without -f waits for a stopped member's share"
    run create s --partitions 2
    "$EVBUS" tail s --bus "$BUS" --group w -f >"$TMP/s1.out" 2>"$TMP/s1.err" &
    local m1=$!
    BG_PID=$m1
    check "the first member owns both" wait_for 10 grep -q "assigned partitions 0,1" "$TMP/s1.err"
    kill -STOP "$m1"
    run pub s one two three
    run tail s --group w
    check "exit 0" rc_is 0
    check "the stopped member's three events printed" test "$(wc -l <"$OUT")" -eq 3
    check "taken over" err_has "assigned partitions 0,1"
    kill -KILL "$m1"
    wait "$m1" 2>/dev/null || true
    BG_PID=
    end
}

test_bad_input() {
    begin "bad group options: one line, exit 2"
    run create b --partitions 2
    run tail b --group 'bad/name'
    check "bad name: exit 2" rc_is 2
    check "bad name: one line" err_one_line
    run tail b --group w --name n
    check "--group with --name: exit 2" rc_is 2
    run tail b --group w --lossy
    check "--group with --lossy: exit 2" rc_is 2
    run tail b --group w --partition 0
    check "--group with --partition: exit 2" rc_is 2
    run groups b nosuch
    check "two topics: exit 2" rc_is 2
    run groups nosuch
    check "no such topic: exit 1" rc_is 1
    check "no such topic: one line" err_one_line
    run groups b
    check "no groups: says so" out_has "no consumer groups"
    end
}

test_damaged_group_file() {
    begin "a damaged group file: tail --group and groups fail in one line naming it"
    run create d --partitions 2
    run pub d one
    run tail d --group w
    printf 'garbage!' | dd of="$BUS/d/consumers/w.grp" conv=notrunc 2>/dev/null
    run tail d --group w
    check "tail: exit 1" rc_is 1
    check "tail: one line naming the file" err_has "w.grp"
    run groups d
    check "groups: exit 1" rc_is 1
    check "groups: names the file" err_has "w.grp"
    rm -f "$BUS/d/consumers/w.grp"
    run tail d --group w
    printf '\002' | dd of="$BUS/d/consumers/w.grp" bs=1 seek=8 conv=notrunc 2>/dev/null
    run groups d
    check "another version: groups exits 1, no crash" rc_is 1
    check "another version: says so" err_has "version"
    run tail d --group w
    check "another version: tail exits 1" rc_is 1
    rm -f "$BUS/d/consumers/w.grp"
    run tail d --group w
    truncate -s +4096 "$BUS/d/consumers/w.grp"
    run tail d --group w
    check "grown: tail exits 1" rc_is 1
    check "grown: tail says the size is wrong" err_has "bytes, a group file of this topic has"
    run groups d
    check "grown: groups says the same" err_has "bytes, a group file of this topic has"
    check "grown: groups does not claim there is no group" out_empty
    end
}

test_damaged_queue_partition() {
    begin "a queue damaged in one partition: groups shows the rest, marks it, exits 1"
    run create dq --partitions 2
    # Two events in each partition, whichever partition a batch would take.
    run pub dq a b --partition 0
    run pub dq c d --partition 1
    run tail dq --group q --queue
    check "the events were taken" test "$(wc -l <"$OUT")" -eq 4
    run groups dq --json
    local win
    win=$(json_field 'o["max_in_flight"]')
    # The top byte of partition 1's fetch event number (group_format.h:
    # header, 64 member slots, a word per partition, then each queue).
    python3 - "$BUS/dq/consumers/q.grp" "$win" <<'PY'
import sys
path, win = sys.argv[1], int(sys.argv[2])
at = 256 + 64 * 64 + 2 * 64 + (64 + win * 32) + 8 + 7
with open(path, "r+b") as f:
    f.seek(at)
    b = f.read(1)[0]
    f.seek(at)
    f.write(bytes([b ^ 0xE0]))
PY
    run groups dq
    check "exit 1" rc_is 1
    check "the message names the partition" err_has "partition 1"
    check "partition 1 is marked" py '
import sys
rows = [l.split() for l in sys.stdin if l.strip()[:1].isdigit()]
sys.exit(0 if [r[0] for r in rows] == ["0", "1"] and rows[1][-1] == "DAMAGED" and rows[0][-1] != "DAMAGED" else 1)'
    check "the damaged partition's cursors are not shown" py '
import sys
rows = [l.split() for l in sys.stdin if l.strip()[:1].isdigit()]
sys.exit(0 if rows[1][1:4] == ["-", "-", "-"] and rows[0][1] != "-" else 1)'
    check "the healthy partition's acks are shown" py '
import sys
rows = [l.split() for l in sys.stdin if l.strip()[:1].isdigit()]
sys.exit(0 if int(rows[0][4]) > 0 else 1)'
    run groups dq --json
    check "json: exit 1" rc_is 1
    check "json: damaged per partition" json_field \
        '[p["damaged"] for p in o["partition_state"]] == [False, True] or sys.exit(1)'
    check "json: the damaged partition's cursors are null" json_field \
        '[p["in_flight"] is None for p in o["partition_state"]] == [False, True] or sys.exit(1)'
    run stat
    check "stat: exit 1" rc_is 1
    check "stat: the group is shown damaged" out_has "group q: damaged"
    end
}

test_queue_members() {
    begin "tail --group --queue: members share events, each printed once, acked on print"
    run create qq --partitions 2
    run tail qq --group w --queue
    check "an empty queue: exit 0" rc_is 0
    for i in $(seq 1 200); do printf 'e%d\n' "$i"; done >"$TMP/in"
    run_in "$TMP/in" pub qq
    "$EVBUS" tail qq --bus "$BUS" --group w --queue >"$TMP/q1.out" 2>"$TMP/q1.err" &
    local q1=$!
    "$EVBUS" tail qq --bus "$BUS" --group w --queue >"$TMP/q2.out" 2>"$TMP/q2.err" &
    local q2=$!
    wait "$q1" "$q2"
    check "all 200 printed once across the two" bash -c \
        "test \$(cat '$TMP/q1.out' '$TMP/q2.out' | cut -d' ' -f2 | sort -u | wc -l) -eq 200 && test \$(cat '$TMP/q1.out' '$TMP/q2.out' | wc -l) -eq 200"
    run groups qq --json
    check "groups: a queue, 200 acked, nothing in flight" json_field \
        'o["kind"] == "queue" and sum(p["acked"] for p in o["partition_state"]) == 200 and sum(p["in_flight"] for p in o["partition_state"]) == 0 or sys.exit(1)'
    run groups qq
    check "groups text: says queue group" out_has "queue group"
    run tail qq --group w --queue
    check "nothing left" out_empty
    run stat qq
    check "stat: a line for the queue group" out_has "group w: queue, 0 members, backlog 0 bytes, 0 in flight"
    run stat qq --json
    check "stat --json: the group" json_field \
        'o["topics"][0]["groups"][0]["kind"] == "queue" or sys.exit(1)'
    end
}

test_queue_bad_input() {
    begin "queue options: one line, exit 2; a group of the other kind too"
    run create qb --partitions 2
    run tail qb --queue
    check "--queue without --group: exit 2" rc_is 2
    run tail qb --group w --ack-wait 100
    check "--ack-wait without --queue: exit 2" rc_is 2
    run tail qb --group w --queue --max-deliveries 0
    check "--max-deliveries 0: exit 2" rc_is 2
    run tail qb --group w --queue --ack-wait x
    check "--ack-wait x: exit 2" rc_is 2
    run tail qb --group nolimit --queue --max-deliveries none
    check "--max-deliveries none: exit 0" rc_is 0
    run groups qb --json
    check "... makes a group without a limit" json_field \
        '[g for g in [o] if g["group"] == "nolimit"][0]["max_deliveries"] == 0 or sys.exit(1)'
    run groups qb
    check "text: max deliveries none" out_has "max deliveries none,"
    run tail qb --group nolimit --queue --ack-wait 1234
    check "an existing group's parameters: a note says which apply" err_has "those apply"
    run tail qb --group p
    run tail qb --group p --queue
    check "a partition group opened as a queue: exit 2 (the wrong command line)" rc_is 2
    check "says which kind it is" err_has "partition group"
    end
}

test_dlq_refusals_shown() {
    begin "a queue's dead-letter refusals and events due: groups, stat and Prometheus"
    run create dr
    run pub dr a
    run tail dr --group q --queue
    run groups dr --json
    check "no refusal at first" json_field 'o["dlq_refusals"] == 0 or sys.exit(1)'
    check "nothing due" json_field '[p["dlq_due"] for p in o["partition_state"]] == [0] or sys.exit(1)'
    run groups dr
    check "text: a dlq_due column" out_has "dead_lettered dlq_due"
    # The count's word in the group header (group_format.h, offset 192),
    # as members leave it after seven refused tries.
    python3 -c '
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(192)
    f.write(struct.pack("<Q", 7))' "$BUS/dr/consumers/q.grp"
    run groups dr
    check "text: the count" out_has "7 dead-letter refusals"
    run groups dr --json
    check "JSON: dlq_refusals" json_field 'o["dlq_refusals"] == 7 or sys.exit(1)'
    run stat dr
    check "stat's group line" out_has "0 due for the dead-letter topic (7 refusals)"
    run stat dr --json
    check "stat JSON" py '
import json, sys
o = json.load(sys.stdin)
t = o["topics"][0] if "topics" in o else o
sys.exit(0 if [(g["dlq_refusals"], g["dlq_due"]) for g in t["groups"]] == [(7, 0)] else 1)'
    run stat dr --prometheus
    check "Prometheus counter" out_has 'evbus_group_dlq_refusals_total{topic="dr",group="q",kind="queue"} 7'
    check "Prometheus gauge" out_has 'evbus_group_dlq_due_events{topic="dr",group="q",kind="queue"} 0'
    end
}

test_refusing_dlq_stops_no_member() {
    begin "a dead-letter topic that refuses records stops no member: the rest is printed"
    run create q2
    run create q2.dlq --ring-bytes 64K --max-event-bytes 1K
    python3 -c "for i in range(10): print(str(i) * 20000)" >"$TMP/big"
    run_in "$TMP/big" pub q2
    # A member that takes events and dies holding them (its output is a
    # FIFO nobody reads): they are past max deliveries 1 after ack wait.
    mkfifo "$TMP/stuck"
    sleep 30 <"$TMP/stuck" &
    local reader=$!
    "$EVBUS" tail q2 --bus "$BUS" --group g --queue -f --max-deliveries 1 --ack-wait 300 \
        >"$TMP/stuck" 2>/dev/null &
    local member=$!
    sleep 1
    kill -9 "$member" "$reader" 2>/dev/null || true
    wait "$member" "$reader" 2>/dev/null || true
    sleep 0.5
    run tail q2 --group g --queue
    check "exit 1: events are left that the DLQ refuses" rc_is 1
    check "says which and why" err_has "past max deliveries wait.* for the dead-letter topic q2.dlq.*(last: "
    check "the healthy events were printed" test "$(wc -l <"$OUT")" -ge 1
    run groups q2 --json
    check "acknowledged and due make all 10, none dead-lettered" json_field \
        "(o['partition_state'][0]['acked'] + o['partition_state'][0]['dlq_due'] == 10 and o['partition_state'][0]['dlq_due'] >= 1 and o['partition_state'][0]['dead_lettered'] == 0 and o['dlq_refusals'] >= 1) or sys.exit(1)"
    end
}

test_one_member_commits_on_print
test_refusing_dlq_stops_no_member
test_dlq_refusals_shown
test_queue_members
test_queue_bad_input
test_members_share_and_kill
test_stopped_member_share_is_printed
test_bad_input
test_damaged_group_file
test_damaged_queue_partition

finish
