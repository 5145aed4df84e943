#!/usr/bin/env bash
# test_cli_groups.sh - consumer groups from the command line: tail --group
# reads each event once across members and commits on print; a second
# member shares the partitions; evbus groups shows members, owners,
# committed offsets and lag (text and JSON); a SIGKILLed member's
# partitions are taken over and its uncommitted events printed again;
# bad input gets one line and exit 2.
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
    check "groups: names the group" out_has "g/w: 0 members, 4 partitions"
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
    end
}

test_one_member_commits_on_print
test_members_share_and_kill
test_bad_input
test_damaged_group_file

finish
