#!/usr/bin/env bash
# test_cli_damaged.sh - a durable topic that cannot be rebuilt from disk
# (issue 9, defect 9): after a wiped tmpfs, list shows it as damaged with
# the reason, info and create say so, delete refuses to remove its data
# without --force, and delete --force removes it. lib.sh holds the helpers.
#
# Usage: test_cli_damaged.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_damaged.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

test_unrestorable_topic() {
    begin "a topic that cannot be restored is listed damaged; delete needs --force"
    drun create d --durability sync --segment-bytes 1M --ring-bytes 64K
    drun pub d one two three
    check "setup: the segment exists" test -f "$DATA/d/0/00000000000000000000.log"
    # The newest segment cut short and no durable mark: recovery cannot
    # tell where the log ends (with the mark it can: test_cli_short_segment.sh).
    truncate -s 4096 "$DATA/d/0/00000000000000000000.log"
    rm -f "$DATA/d/0/durable.mark"
    reboot
    drun list
    check "list: exit 0" rc_is 0
    check "list: the topic is there" out_has "^d"
    check "list: marked damaged" out_has "damaged"
    check "list: with the reason" out_has "4096 bytes"
    drun info d
    check "info: fails" rc_nonzero
    check "info: one line" err_one_line
    check "info: says damaged" err_has "damaged"
    drun create d --durability sync
    check "create: fails" rc_nonzero
    check "create: says damaged" err_has "damaged"
    drun delete d
    check "delete: refused" rc_nonzero
    check "delete: one line" err_one_line
    check "delete: names --force" err_has "--force"
    check "delete: the data is still there" test -f "$DATA/d/0/00000000000000000000.log"
    drun delete --force d
    check "delete --force: exit 0" rc_is 0
    check "delete --force: the data is gone" test ! -e "$DATA/d"
    drun list
    check "list: empty now" out_empty
    end
}

test_unrestorable_topic

finish
