#!/usr/bin/env bash
# test_cli_reader_notes.sh - what tail and stat say when something is
# lost or unreadable: a queue group lapped while no member lived says how
# many bytes it lost (a queue keeps positions, so the events are not
# known) like a partition group says its events; stat exits 1 when a
# group file cannot be read, as groups does.
#
# Usage: test_cli_reader_notes.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_reader_notes.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

test_queue_lost_is_said() {
    begin "tail --queue says what a lapped queue group lost, text and json"
    run create lq --partitions 1 --ring-bytes 64K
    seq 1 10 >"$TMP/in10"
    run_in "$TMP/in10" pub lq
    run tail lq --group q --queue --count 10
    run tail lq --group g --count 10
    seq 11 5010 >"$TMP/in5000"
    run_in "$TMP/in5000" pub lq
    check "pub laps the ring: exit 0" rc_is 0
    run tail lq --group q --queue --count 2
    check "exit 0" rc_is 0
    check "two events" test "$(wc -l <"$OUT")" -eq 2
    check "a line on stderr names the bytes and where" \
        grep -Eq '^evbus tail: lost [0-9]+ log bytes \(events unknown\) before 0:[0-9]+$' "$ERR"
    run tail lq --group g --count 1
    check "the partition group's line is unchanged" \
        grep -Eq '^evbus tail: lost [0-9]+ events before 0:[0-9]+$' "$ERR"
    # Lap the queue again and look at the json form.
    run_in "$TMP/in5000" pub lq
    run tail lq --group q --queue --count 1 --json
    check "json: exit 0" rc_is 0
    check "json: lost_bytes > 0 and lost_events 0 in the event" json_field \
        'o["lost_bytes"] > 0 and o["lost_events"] == 0 or sys.exit(1)'
    check "json: the stderr line too" err_has "log bytes (events unknown) before 0:"
    end
}

test_stat_unreadable_group() {
    begin "stat exits 1 when a group file cannot be read, and still shows the rest"
    run create sg --ring-bytes 64K
    run pub sg a
    run tail sg --group good
    head -c 100 /dev/urandom >"$BUS/sg/consumers/r.grp"
    run stat sg
    check "exit 1" rc_is 1
    check "the good group is shown" out_has "group good:"
    check "the bad one is shown as unreadable" out_has "group r: unreadable"
    check "one line on stderr names it" bash -c "[[ \$(wc -l <'$ERR') -eq 1 ]] && grep -q '^evbus stat: group sg/r: ' '$ERR'"
    run stat sg --json
    check "json: exit 1" rc_is 1
    check "json: the group's error is there" json_field \
        '[g for t in (o if isinstance(o, list) else o.get("topics", [o])) for g in t["groups"] if g["name"] == "r"][0]["error"] or sys.exit(1)'
    mkdir "$BUS/sg/consumers/d.grp"
    run stat sg
    check "two bad: exit 1" rc_is 1
    check "two bad: one line saying how many" bash -c "[[ \$(wc -l <'$ERR') -eq 1 ]] && grep -q '2 group files' '$ERR'"
    rm -rf "$BUS/sg/consumers/d.grp" "$BUS/sg/consumers/r.grp"
    run stat sg
    check "once removed: exit 0" rc_is 0
    end
}

test_queue_lost_is_said
test_stat_unreadable_group

finish
