#!/usr/bin/env bash
# test_cli_pub_durable.sh - `evbus pub` on a durable topic exits 0 only
# when its events reached the disk (issue 9, attack3 F3): a flusher that
# cannot write (a planted flush.lock or segment of the wrong kind) or
# cannot keep up within --sync-timeout makes pub exit 1 with one line, on
# sync and async topics, from arguments and from stdin; a healthy flusher
# leaves every event fdatasync'ed when pub returns. lib.sh holds the
# helpers.
#
# Usage: test_cli_pub_durable.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_pub_durable.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
README="$(dirname "${BASH_SOURCE[0]}")/../../README.md"

# durable_lag TOPIC: the unsynced bytes of partition 0 (tail - durable).
durable_lag() {
    drun stat "$1" --json
    json_field "o['topics'][0]['partitions'][0]['unsynced_bytes']"
}

# plant WHAT TOPIC: make the partition-0 file WHAT a non-empty directory,
# so the flusher cannot open it (-EMEDIUMTYPE).
plant() {
    rm -f "$DATA/$2/0/$1"
    mkdir -p "$DATA/$2/0/$1/x"
}

test_broken_flusher() {
    local dur what
    for dur in sync async; do
        for what in flush.lock 00000000000000000000.log; do
            begin "pub on a $dur topic whose $what cannot be opened exits 1"
            local t="b-$dur-${what%%.*}"
            drun create "$t" --durability "$dur" --ring-bytes 64K
            check "create" rc_is 0
            plant "$what" "$t"
            drun pub "$t" a b c
            check "values: exit 1" rc_is 1
            check "values: one line" err_one_line
            check "values: says the events are not on disk" err_has "not on disk"
            check "values: names the file and what is there" err_has "$what: found a directory"
            printf 'd\n' >"$TMP/in"
            drun_in "$TMP/in" pub "$t" -v
            check "stdin: exit 1" rc_is 1
            check "stdin: says the events are not on disk" err_has "not on disk"
            check "stdin: -v does not claim success" not_grep "events to $t" "$ERR"
            end
        done
    done
}

test_stream_pause() {
    begin "a sync topic's stream stops at its first pause when the flusher fails"
    drun create sp --durability sync --ring-bytes 64K
    plant flush.lock sp
    mkfifo "$TMP/fifo"
    "$EVBUS" pub sp --bus "$DBUS" --data-dir "$DATA" <"$TMP/fifo" >"$OUT" 2>"$ERR" &
    BG_PID=$!
    # The input stays open (no EOF): only the pause may stop pub.
    exec 7>"$TMP/fifo"
    echo a >&7
    wait_bg 10
    exec 7>&-
    check "exit 1 while stdin is still open" rc_is 1
    check "one line" err_one_line
    check "says the event is not on disk" err_has "1 event published but not on disk"
    end
}

test_ring_fills_first() {
    begin "a ring that fills before pub ends says the flusher's own reason"
    drun create rf --durability sync --ring-bytes 64K --segment-bytes 128K
    seq 10 >"$TMP/in"
    drun_in "$TMP/in" pub rf
    check "the first events go" rc_is 0
    : >"$TMP/victim"
    ln "$TMP/victim" "$DATA/rf/0/00000000000000131072.log"
    seq 1 3000 >"$TMP/in"
    drun_in "$TMP/in" pub rf
    check "exit 1" rc_is 1
    check "one line" err_one_line
    check "names the file and its links" eval 'err_has "00000000000000131072.log: found a file with 2 hard links"'
    check "the planted file is untouched" eval '[[ ! -s "$TMP/victim" ]]'
    end
}

test_healthy_flusher() {
    local dur
    for dur in sync async; do
        begin "pub on a healthy $dur topic returns with every event fdatasync'ed"
        local t="h-$dur"
        drun create "$t" --durability "$dur" --ring-bytes 64K --flush-ms 60000
        drun pub "$t" a b c
        check "values: exit 0" rc_is 0
        check "values: nothing on stderr" test ! -s "$ERR"
        check "values: nothing unsynced" test "$(durable_lag "$t")" == 0
        seq 1000 >"$TMP/in"
        drun_in "$TMP/in" pub "$t"
        check "stdin: exit 0" rc_is 0
        check "stdin: nothing unsynced" test "$(durable_lag "$t")" == 0
        end
    done
}

test_stalled_flusher() {
    begin "pub waits at most --sync-timeout for a flusher that does not move"
    drun create st --durability sync --ring-bytes 64K
    "$EVBUS" flushd --bus "$DBUS" --data-dir "$DATA" >"$TMP/flushd.out" 2>&1 &
    BG_PID=$!
    # flushd holds the lock once info names it as the flusher.
    flusher_is_bg() {
        drun info st --json
        [[ "$(json_field "o['partitions'][0]['flusher_pid']")" == "$BG_PID" ]]
    }
    check "flushd takes the partition" wait_for 20 flusher_is_bg
    kill -STOP "$BG_PID"
    local t0=$SECONDS
    drun pub st --sync-timeout 0.3 x
    check "exit 1" rc_is 1
    check "one line" err_one_line
    check "names the wait" err_has "not on disk after 0.3 s"
    check "names the stopped flusher" err_has "pid $BG_PID) is stopped"
    check "returned in time" test $((SECONDS - t0)) -lt 10
    kill -CONT "$BG_PID"
    kill -TERM "$BG_PID"
    wait_bg 20
    check "flushd exits 0" rc_is 0
    check "the event reached the disk after all" test "$(durable_lag st)" == 0
    end
}

test_option() {
    begin "--sync-timeout: documented, checked, 0 does not wait"
    drun pub --help
    check "help names it" out_has "--sync-timeout"
    check "README names it" grep -q -- "--sync-timeout" "$README"
    drun create op --durability async --ring-bytes 64K
    drun pub op --sync-timeout -1 x
    check "negative: exit 2" rc_is 2
    check "negative: one line" err_one_line
    drun pub op --sync-timeout abc x
    check "not a number: exit 2" rc_is 2
    drun pub op --sync-timeout 0 x
    check "0 on a healthy async topic: exit 0" rc_is 0
    run create mem --ring-bytes 64K
    run pub mem --sync-timeout 1 x
    check "ring-only topic: nothing to wait for" rc_is 0
    end
}

test_broken_flusher
test_stream_pause
test_ring_fills_first
test_healthy_flusher
test_stalled_flusher
test_option
finish
