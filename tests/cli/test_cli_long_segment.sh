#!/usr/bin/env bash
# test_cli_long_segment.sh - a segment file grown past topic.conf's
# segment_bytes (attack 4, N4): the flusher never writes past a segment's
# size, so the bytes there are not log. Newest or older, with the mark or
# without, zeros or garbage: the topic rebuilds with every event, pub goes
# on, and the file is back to its size. Before the fix the topic was
# "damaged ... does not fit topic.conf's segment_bytes" and pub, tail and
# tail --skip-damage all refused. A config that really changed (every file
# of another size) is test_cli_conf_mismatch.sh's. lib.sh holds the helpers.
#
# Usage: test_cli_long_segment.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_long_segment.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

seq 1 6000 >"$TMP/lines"

for which in 00000000000000262144 00000000000000000000 00000000000000131072; do
    for mark in mark nomark; do
        for fill in zeros garbage; do
            begin "segment $which grown past segment_bytes ($mark, $fill): not log"
            rm -rf "$DATA" "$DBUS"
            drun create s --durability sync --ring-bytes 64K --segment-bytes 128K
            drun_in "$TMP/lines" pub s
            check "setup: pub" rc_is 0
            [[ "$mark" == nomark ]] && rm -f "$DATA/s/0/durable.mark"
            f="$DATA/s/0/$which.log"
            if [[ "$fill" == zeros ]]; then
                truncate -s 200000 "$f"
            else
                head -c 68928 /dev/urandom >>"$f"
            fi
            reboot
            drun list
            check "list exits 0" rc_is 0
            check "not damaged" not_grep "damaged" "$OUT"
            drun tail s
            check "tail exits 0" rc_is 0
            check "every event" eval '[[ $(wc -l <"$OUT") -eq 6000 && "$(tail -1 "$OUT")" == "0:5999 6000" ]]'
            drun pub s after
            check "pub works" rc_is 0
            drun tail s --from 6000
            check "the new event takes the next offset" out_is "0:6000 after"
            check "the file is back to its size" eval '[[ $(stat -c %s "$f") -eq 131072 ]]'
            reboot
            drun info s --verify
            check "a second rebuild: info --verify exits 0" rc_is 0
            drun info s
            check "no damage" not_grep "damaged:" "$ERR"
            if [[ "$mark" == mark ]]; then
                check "info exits 0" rc_is 0
            else
                check "info exits 1 for the missing mark only" rc_is 1
                check "naming the mark" err_has "durable mark missing"
            fi
            end
        done
    done
done

finish
