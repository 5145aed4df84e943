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

test_common_options_first

finish
