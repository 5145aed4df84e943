#!/usr/bin/env bash
# test_cli_mark_live.sh - a durable mark the flusher cannot write while the
# topic is live (attack 4, N5): info says so without a made-up position
# (it said "the log ended at position 0" and "0 B cut ... from position 0"
# though nothing was rebuilt and the log was at 12800), and info exits 1
# whenever it warns about the mark, live or after a rebuild, text or JSON
# (it exited 0). lib.sh holds the helpers.
#
# Usage: test_cli_mark_live.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_mark_live.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup() {
    rm -rf "$DATA" "$DBUS"
    drun create m --durability sync --ring-bytes 64K
    seq 100 >"$TMP/a"
    drun_in "$TMP/a" pub m
    rm "$DATA/m/0/durable.mark"
    mkdir -p "$DATA/m/0/durable.mark/x"
    seq 101 200 >"$TMP/b"
    drun_in "$TMP/b" pub m
    check "setup: pub with the mark unwritable exits 0" rc_is 0
}

begin "live: a mark that cannot be written, no position made up"
setup
drun info m
check "info exits 1: it warns" rc_is 1
check "stdout says the mark cannot be written" out_has "cannot be written"
check "no position 0 on stdout" not_grep "position 0" "$OUT"
check "no cut of 0 B on stderr" not_grep "0 B cut" "$ERR"
check "stderr names the mark" err_has "durable mark not a regular file"
drun info m --json
check "info --json exits 1 too" rc_is 1
drun tail m
check "the log reads on" eval '[[ $(wc -l <"$OUT") -eq 200 ]]'
end

begin "after a rebuild: the log end named, info exits 1"
setup
reboot
drun info m
check "info exits 1" rc_is 1
check "the log end named" out_has "ended at position 12800"
drun tail m
check "every event" eval '[[ $(wc -l <"$OUT") -eq 200 ]]'
end

finish
