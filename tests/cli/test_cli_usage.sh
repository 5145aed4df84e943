#!/usr/bin/env bash
# test_cli_usage.sh - how the evbus commands are invoked: options before the
# command, what a command may create, pub's linger on a paused input, and
# the bounds create states against the ones it enforces. lib.sh holds the
# helpers; test_cli.sh the end-to-end checks of what the commands do.
#
# Usage: test_cli_usage.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_usage.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ev ARGS...: run evbus ARGS exactly as given (no --bus added); sets RC,
# OUT and ERR as run does.
ev() {
    RC=0
    "$EVBUS" "$@" >"$OUT" 2>"$ERR" || RC=$?
}

test_common_options_first() {
    begin "options of every command are accepted before the command"
    ev --bus "$BUS" create first
    check "--bus before create exits 0" rc_is 0
    ev --bus="$BUS" pub first one two
    check "--bus=PATH before pub exits 0" rc_is 0
    ev --bus "$BUS" --json list
    check "--json before list gives JSON" py 'import json,sys; assert "first" in json.load(sys.stdin)'
    ev --bus "$BUS" tail first
    check "--bus before tail reads the same bus" out_is $'0:0 one\n0:1 two'
    ev --bus "$BUS" --data-dir "$DATA" info first --json
    check "--data-dir before info exits 0" rc_is 0
    ev --data-dir="$DATA" --bus "$BUS" stat first
    check "--data-dir= and --bus before stat" out_has "topic first"
    ev --bus "$BUS" tail first --bus "$TMP/other"
    check "the option after the command wins" rc_is 1
    ev --help create
    check "--help before a command describes it" out_has "usage: evbus create"
    ev --bus "$BUS" --help
    check "--help with no command is evbus --help" out_has "options of every command"
    ev --bus "$BUS"
    check "options without a command exit 2" rc_is 2
    check "no command: one stderr line" grep -q '^evbus: ' "$ERR"
    ev --bus
    check "--bus without a value exits 2" rc_is 2
    ev --bus "$BUS" --partitions 2 create p2
    check "a command's own option before it exits 2" rc_is 2
    ev --json --bus "$BUS" delete first
    check "--json before a command without it exits 2" rc_is 2
    check "that error names the command" grep -q '^evbus delete: ' "$ERR"
    end
}

test_missing_bus() {
    begin "commands other than create and flushd on a missing bus create nothing"
    local typo="$TMP/typo/deeper/bus" args
    for args in "list" "info t" "stat" "stat t" "tail t" "tail t --name r" "dump t" \
        "delete t" "pub t x"; do
        # shellcheck disable=SC2086 # ARGS is a command and its words
        ev $args --bus "$typo"
        check "$args on a missing bus exits 1" rc_is 1
        check "$args on a missing bus: one stderr line" err_one_line
        check "$args on a missing bus says so" err_has "no bus at $typo"
        check "$args on a missing bus creates nothing" test ! -e "$TMP/typo"
    done
    mkdir "$TMP/empty"
    ev list --bus "$TMP/empty"
    check "list in a directory that is no bus exits 1" rc_is 1
    check "and writes no bus.meta there" test ! -e "$TMP/empty/bus.meta"
    RC=0; EVBUS_BUS="$TMP/envtypo" "$EVBUS" stat >"$OUT" 2>"$ERR" || RC=$?
    check "a missing EVBUS_BUS bus exits 1" rc_is 1
    check "and is not created" test ! -e "$TMP/envtypo"
    ev create t --bus "$TMP/new/deep/bus"
    check "create still makes a missing bus" rc_is 0
    ev list --bus "$TMP/new/deep/bus"
    check "which list then reads" out_is t
    end
}

test_missing_bus_restores() {
    begin "a bus gone with tmpfs comes back from its data directory"
    local rbus="$SHM/rbus" rdata="$TMP/rdata"
    ev create kept --bus "$rbus" --data-dir "$rdata" --durability async \
        --ring-bytes 64K --segment-bytes 64K
    ev pub kept --bus "$rbus" --data-dir "$rdata" a b
    rm -rf "$rbus"
    ev list --bus "$rbus" --data-dir "$rdata"
    check "list of the rebooted bus exits 0" rc_is 0
    check "and shows the durable topic" out_is kept
    rm -rf "$rbus"
    ev tail kept --bus "$rbus" --data-dir "$rdata"
    check "tail of the rebooted bus reads from disk" out_is $'0:0 a\n0:1 b'
    rm -rf "$rbus"
    mkdir "$TMP/nodata"
    ev list --bus "$rbus" --data-dir "$TMP/nodata"
    check "a data directory without topics restores nothing: exits 1" rc_is 1
    check "and creates no bus" test ! -e "$rbus"
    end
}

# first_is TOPIC LINE: tail of TOPIC on the private bus prints LINE first.
first_is() { [[ "$("$EVBUS" tail "$1" --bus "$BUS" --count 1 2>/dev/null)" == "$2" ]]; }

# pub_paused TOPIC ARGS...: pub ARGS into TOPIC in the background from a
# pipe that writes one line, then stays open until $TMP/release exists.
pub_paused() {
    local topic=$1
    shift
    rm -f "$TMP/release"
    { echo first; until [[ -e "$TMP/release" ]]; do sleep 0.05; done; echo second; } |
        "$EVBUS" pub "$topic" --bus "$BUS" "$@" 2>"$TMP/pub.err" &
    BG_PID=$!
}

test_pub_linger() {
    begin "pub publishes what has arrived when its input pauses"
    local linger
    for linger in default 0 50; do
        ev create "ling$linger" --bus "$BUS"
        if [[ $linger == default ]]; then pub_paused "ling$linger"; else
            pub_paused "ling$linger" --linger-ms "$linger"; fi
        check "linger $linger: the line is out while input stays open" \
            wait_for 5 first_is "ling$linger" "0:0 first"
        touch "$TMP/release"
        wait_bg 20
        check "linger $linger: pub exits 0 at the end of input" rc_is 0
        ev tail "ling$linger" --bus "$BUS"
        check "linger $linger: both lines, in order" out_is $'0:0 first\n0:1 second'
    done
    for bad in -1 x 60001; do
        ev pub ling0 --bus "$BUS" --linger-ms "$bad" value
        check "--linger-ms '$bad' exits 2" rc_is 2
        check "--linger-ms '$bad': one stderr line" err_one_line
    done
    ev pub --help
    check "pub --help documents --linger-ms" out_has "--linger-ms"
    end
}

test_create_bounds() {
    begin "create: --max-event-bytes and --mode are checked as --help states"
    ev create --help
    check "--help states the bound: a quarter ring less header and key padding" \
        out_has 'ring-bytes/4 - 64'
    ev create me1 --bus "$BUS" --ring-bytes 64K --max-event-bytes 16320
    check "16320 in a 64K ring exits 0" rc_is 0
    ev create me2 --bus "$BUS" --ring-bytes 64K --max-event-bytes 16321
    check "16321 in a 64K ring exits 2" rc_is 2
    check "16321: one stderr line" err_one_line
    check "16321: the message gives the bound" err_has "at most 16320"
    ev create me3 --bus "$BUS" --ring-bytes 64K --max-event-bytes 16K
    check "ring-bytes/4 itself exits 2" rc_is 2
    ev create me4 --bus "$BUS" --max-event-bytes 1M
    check "1M with the default 4M ring exits 2" rc_is 2
    check "1M: the message gives the bound" err_has "at most 1048512"
    ev create me5 --bus "$BUS" --max-event-bytes 1048512
    check "1M - 64 with the default 4M ring exits 0" rc_is 0
    local mode
    for mode in 0 00 1660 4600 10000 0440 0060 8 -1 ""; do
        ev create "mode$mode" --bus "$BUS" --mode "$mode"
        check "--mode '$mode' exits 2" rc_is 2
        check "--mode '$mode': one stderr line" err_one_line
    done
    ev list --bus "$BUS"
    check "no refused mode made a topic" eval '! grep -q "^mode" "$OUT"'
    ev create m640 --bus "$BUS" --mode 640
    check "--mode 640 exits 0" rc_is 0
    ev info m640 --bus "$BUS" --json
    check "--mode 640 is the topic's mode" eval '[[ "$(json_field "oct(o[\"config\"][\"file_mode\"])")" == 0o640 ]]'
    ev create --help
    check "--help states what --mode takes" out_has 'owner'
    end
}

test_options_do_what_help_says() {
    begin "an option a command lists is neither refused at run time nor ignored"
    ev create sw --bus "$BUS" --ring-bytes 64K
    ev tail sw --bus "$BUS" --from committed
    check "--from committed without --name exits 2" rc_is 2
    check "--from committed without --name: one stderr line" err_one_line
    check "and says it needs --name" err_has "needs --name"
    printf 'x' >"$TMP/00000000000000000000.log"
    ev dump "$TMP/00000000000000000000.log" --bus "$BUS"
    check "dump SEGMENT_FILE --bus exits 2 (the bus plays no part)" rc_is 2
    check "dump SEGMENT_FILE --bus: one stderr line" err_one_line
    ev dump "$TMP/00000000000000000000.log" --data-dir "$DATA"
    check "dump SEGMENT_FILE --data-dir exits 2" rc_is 2
    ev --bus "$BUS" dump "$TMP/00000000000000000000.log"
    check "also when --bus comes before dump" rc_is 2
    end
}

test_missing_value_named() {
    begin "an option missing its value is named, wherever the topic stands"
    run create mv
    local cmd
    for cmd in "pub mv --key" "tail mv --from" "tail mv --name" "create mv2 --partitions" \
               "pub --key"; do
        local opt=${cmd##* }
        # shellcheck disable=SC2086 # split the command on purpose
        run $cmd
        check "$cmd exits 2" rc_is 2
        check "$cmd names $opt" err_has "option '$opt' needs a value"
        check "$cmd: one line" err_one_line
    done
    end
}

test_value_looks_like_option() {
    begin "an option's value that reads as an option is a missing value, in every command"
    run create vo
    local cmd
    # Each: the command line, then the option whose value is missing and
    # the word taken for it.
    for cmd in "pub vo --key --verbose v|--key|--verbose" \
               "pub vo --partition --key k v|--partition|--key" \
               "pub vo --type -v v|--type|-v" \
               "create vo2 --partitions --ring-bytes 64K|--partitions|--ring-bytes" \
               "create vo2 --ring-bytes --partitions 2|--ring-bytes|--partitions" \
               "tail vo --from --count 1|--from|--count" \
               "tail vo --name -f|--name|-f" \
               "info vo --data-dir --json|--data-dir|--json" \
               "dump vo --data-dir --json|--data-dir|--json" \
               "stat --data-dir --json|--data-dir|--json" \
               "delete vo --data-dir --force|--data-dir|--force" \
               "list --data-dir --json|--data-dir|--json"; do
        local line=${cmd%%|*} rest=${cmd#*|}
        local opt=${rest%%|*} word=${rest#*|}
        # shellcheck disable=SC2086 # split the command on purpose
        run $line
        check "$line: exits 2" rc_is 2
        check "$line: names $opt and says how to mean it" \
            err_has "option '$opt' needs a value (write $opt=$word to use '$word' as one)"
        check "$line: one line" err_one_line
    done
    ev create vo3 --bus --json
    check "--bus --json before a value: exits 2" rc_is 2
    check "--bus --json: named" err_has "option '--bus' needs a value"
    ev --bus --json create vo3
    check "the same before the command: exits 2" rc_is 2
    run info vo3
    check "nothing was created" rc_is 1
    run pub vo --key=--verbose v
    check "--key=--verbose publishes with that key" rc_is 0
    run pub vo --key - w
    check "--key - (not an option) is a value" rc_is 0
    run tail vo --json --count 2
    check "both keys as given" eval '[[ "$(grep -c "\"key\":\"--verbose\"" "$OUT")" == 1 && "$(grep -c "\"key\":\"-\"" "$OUT")" == 1 ]]'
    run tail vo --from -1
    check "a negative number is a value (refused by its own check)" err_has "--from '-1'"
    end
}

test_usage_edges() {
    begin "empty names and unknown size suffixes are usage errors"
    run create ue
    run tail ue --name ''
    check "tail --name '' exits 2" rc_is 2
    run tail ue --name a/b
    check "tail --name a/b exits 2" rc_is 2
    RC=0; "$EVBUS" list --bus '' >"$OUT" 2>"$ERR" || RC=$?
    check "--bus '' exits 2" rc_is 2
    check "--bus '' is named" err_has "--bus: empty"
    run create ue2 --ring-bytes 1X
    check "--ring-bytes 1X exits 2" rc_is 2
    check "--ring-bytes 1X says what a size is" err_has "not a size"
    run create ue3 --ring-bytes 1T
    check "--ring-bytes 1T exits 2" rc_is 2
    check "--ring-bytes 1T names the largest ring" err_has "17179869184"
    end
}
test_watch_floor() {
    begin "stat --watch refuses intervals below 0.05 s, says so, takes 0.05"
    run create wf
    local w
    for w in 0.0000001 0.049 0 1e-9 0x1 0x1p-10 1p3; do
        # Bounded: a build without the floor would redraw until stopped.
        RC=0
        timeout -s INT 2 "$EVBUS" stat --bus "$BUS" --watch "$w" >"$OUT" 2>"$ERR" || RC=$?
        check "--watch $w exits 2" rc_is 2
        check "--watch $w: one line" err_one_line
        check "--watch $w: names the floor" err_has "from 0.05"
    done
    run stat --help
    check "help names the floor" out_has "at least 0.05"
    # At the floor it redraws until SIGINT, then exits 0.
    RC=0
    timeout --preserve-status -s INT 0.5 "$EVBUS" stat --bus "$BUS" --watch 0.05 >"$OUT" 2>"$ERR" || RC=$?
    check "--watch 0.05 runs and stops on SIGINT with 0" rc_is 0
    check "--watch 0.05 redrew a few times, not thousands" \
        test "$(grep -c 'topic wf' "$OUT")" -ge 2 -a "$(grep -c 'topic wf' "$OUT")" -le 20
    end
}

test_data_dir_belongs_to_bus() {
    begin "the data directory belongs to the bus, not to each command"
    local obus="$SHM/obus" odata="$TMP/odata" other="$TMP/otherdata"
    ev create t --bus "$obus" --data-dir "$odata" --durability sync \
        --ring-bytes 64K --segment-bytes 64K
    check "create of a durable topic exits 0" rc_is 0
    ev pub t --bus "$obus" --data-dir "$other" a
    check "pub with another --data-dir exits 1" rc_is 1
    check "and names both directories" grep -q "$other.*$odata" "$ERR"
    check "and writes nothing there" test ! -e "$other"
    EVBUS_DATA_DIR="$other" "$EVBUS" create u --bus "$obus" --durability sync \
        --ring-bytes 64K --segment-bytes 64K >"$OUT" 2>"$ERR" && RC=0 || RC=$?
    check "create with another EVBUS_DATA_DIR exits 1" rc_is 1
    ev pub t --bus "$obus" --data-dir "$odata/." b
    check "another spelling of the same directory is that directory" rc_is 0
    HOME="$TMP/home" XDG_DATA_HOME= EVBUS_DATA_DIR= "$EVBUS" pub t --bus "$obus" c \
        >"$OUT" 2>"$ERR" && RC=0 || RC=$?
    check "pub without a data directory uses the bus's" rc_is 0
    rm -rf "$obus"
    ev tail t --bus "$obus" --data-dir "$odata"
    check "after a reboot every event is in the bus's directory" out_is $'0:0 b\n0:1 c'
    ev pub t --bus "$obus" --data-dir "$other" d
    check "the restored bus refuses another directory again" rc_is 1
    end
}

test_key_bound() {
    begin "pub --key: up to 65535 bytes, a usage error past that"
    ev create keys --bus "$BUS" --ring-bytes 1M
    local k
    k=$(head -c 65535 /dev/zero | tr '\0' k)
    ev pub keys --bus "$BUS" --key "$k" v
    check "a 65535-byte key: exit 0" rc_is 0
    ev pub keys --bus "$BUS" --key "${k}k" v
    check "a 65536-byte key: exit 2" rc_is 2
    check "... saying keys are at most 65535 bytes" err_has "keys are at most 65535 bytes"
    check "... in one line" err_one_line
    end
}

test_common_options_first
test_key_bound
test_missing_value_named
test_value_looks_like_option
test_usage_edges
test_missing_bus
test_missing_bus_restores
test_pub_linger
test_create_bounds
test_options_do_what_help_says
test_data_dir_belongs_to_bus
test_watch_floor

finish
