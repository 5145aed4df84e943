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

test_common_options_first
test_missing_bus
test_missing_bus_restores

finish
