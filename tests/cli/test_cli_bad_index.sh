#!/usr/bin/env bash
# test_cli_bad_index.sh - a segment's .idx is only a hint (issue 9, attack
# report 5): whatever is found at its name - a directory (empty or not), a
# FIFO, a symlink, garbage bytes - on the oldest, a middle, the newest
# segment or one built ahead, the topic restores after a reboot with no
# damage, every event reads back (seeks included), pub works, and a
# symlink's target is never touched. Before the fix a directory at the newest segment's index made
# the topic "damaged" and unusable. lib.sh holds the helpers.
#
# Usage: test_cli_bad_index.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_bad_index.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

seq 1 3000 | sed 's/^/ev-/' >"$TMP/lines"
echo "not an index, keep me" >"$TMP/target"

# plant KIND PATH: put a KIND of bad index at PATH.
plant() {
    rm -rf "$2"
    case $1 in
        dir) mkdir "$2" ;;
        full-dir) mkdir "$2" && echo x >"$2/inside" ;;
        fifo) mkfifo "$2" ;;
        symlink) ln -s "$TMP/target" "$2" ;;
        garbage) head -c 300 /dev/urandom >"$2" ;;
    esac
}

for kind in dir full-dir fifo symlink garbage; do
    for which in oldest middle newest built-ahead; do
        begin "a $kind at the $which segment's .idx: a hint, ignored"
        rm -rf "$DATA" "$DBUS"
        drun create t --durability sync --ring-bytes 64K --segment-bytes 64K
        drun_in "$TMP/lines" pub t
        check "setup: pub" rc_is 0
        mapfile -t logs < <(ls "$DATA"/t/0/*.log)
        mapfile -t idxs < <(ls "$DATA"/t/0/*.idx)
        case $which in
            oldest) seg=${logs[0]} ;;
            middle) seg=${logs[1]} ;;
            # The segment the log ends in, and the one built ahead of it.
            newest) seg=${idxs[${#idxs[@]} - 1]%.idx}.log ;;
            built-ahead) seg=${logs[${#logs[@]} - 1]} ;;
        esac
        plant "$kind" "${seg%.log}.idx"
        reboot
        drun list
        check "list: not damaged" eval '[[ "$(cat "$OUT")" == t ]]'
        drun info t
        check "info exits 0" rc_is 0
        check "info: no damage" out_has "^0 *none"
        for from in 5 1500 2990; do
            drun tail t --from "$from" --count 3
            check "tail --from $from exits 0" rc_is 0
            check "tail --from $from reads $from on" \
                eval '[[ "$(head -1 "$OUT")" == "0:$from ev-$((from + 1))" && $(wc -l <"$OUT") -eq 3 ]]'
        done
        drun pub t after
        check "pub works" rc_is 0
        reboot
        drun tail t --from earliest
        check "all 3001 events after a second reboot" eval '[[ $(wc -l <"$OUT") -eq 3001 ]]'
        check "the last is the new one" eval '[[ "$(tail -1 "$OUT")" == "0:3000 after" ]]'
        check "a symlink's target is untouched" \
            eval '[[ "$(cat "$TMP/target")" == "not an index, keep me" ]]'
        end
    done
done

finish
