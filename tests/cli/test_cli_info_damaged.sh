#!/usr/bin/env bash
# test_cli_info_damaged.sh - info's exit status agrees with list (issue 9,
# attack3 F7): a topic list marks damaged (damage a rebuild found and kept:
# every segment removed, a frame flipped below the durable mark) makes info
# exit 1 with one line giving list's reason, in text and JSON, after
# printing what it can; a sound topic, durable or not, exits 0 with
# nothing on stderr. lib.sh holds the helpers.
#
# Usage: test_cli_info_damaged.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_info_damaged.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

flip() { printf '\xff' | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

# listed_damaged TOPIC: list marks TOPIC damaged.
listed_damaged() {
    drun list
    grep -q "^$1	damaged: " "$OUT"
}

# info_agrees TOPIC: info (text and JSON) exits 1 with one line when list
# marks TOPIC damaged, else 0 with nothing on stderr.
info_agrees() {
    local t=$1 damaged=0
    listed_damaged "$t" && damaged=1
    local json
    for json in "" --json; do
        drun info "$t" $json
        if ((damaged)); then
            check "info $json: exit 1 for a damaged topic" rc_is 1
            check "info $json: one line" err_one_line
            check "info $json: says damaged" err_has "damaged"
            check "info $json: still shows the topic" test -s "$OUT"
        else
            check "info $json: exit 0 for a sound topic" rc_is 0
            check "info $json: nothing on stderr" test ! -s "$ERR"
        fi
        if [[ -n "$json" ]]; then
            check "info --json: stdout parses" py 'import json,sys; json.load(sys.stdin)'
        fi
    done
}

begin "every segment removed, mark intact: list and info say damaged"
drun create gone --durability sync --ring-bytes 64K --segment-bytes 128K
seq 3000 >"$TMP/lines"
drun_in "$TMP/lines" pub gone
check "setup: pub" rc_is 0
rm "$DATA"/gone/0/*.log "$DATA"/gone/0/*.idx
reboot
check "list marks it damaged" listed_damaged gone
info_agrees gone
end

begin "a frame flipped below the mark: list and info say damaged"
drun create flip --durability sync --ring-bytes 64K --segment-bytes 64K
drun_in "$TMP/lines" pub flip
# The segment the log ends in (the last with an index; a spare may follow).
flip "$(ls "$DATA"/flip/0/*.idx | tail -1 | sed 's/idx$/log/')" 3000
reboot
check "list marks it damaged" listed_damaged flip
info_agrees flip
end

begin "sound topics: info exits 0"
drun create fine --durability sync --ring-bytes 64K
drun pub fine a b
reboot
check "list does not mark it" eval '! listed_damaged fine'
info_agrees fine
drun create mem --ring-bytes 64K
info_agrees mem
end

finish
