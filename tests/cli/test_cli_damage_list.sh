#!/usr/bin/env bash
# test_cli_damage_list.sh - list and delete agree on what is damaged (issue
# 9, attack report 8 and 9): damage a rebuild found and kept on disk is
# flagged by list and keeps delete from removing the topic without
# --force, as a topic that cannot be rebuilt does; a live edit of a tmpfs
# topic.conf that changes the partitions gives a message naming topic.conf
# and the mismatch (not "no such topic"), and list and delete treat that
# topic as damaged too. lib.sh holds the helpers.
#
# Usage: test_cli_damage_list.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_damage_list.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

flip() { printf '\xff' | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

begin "damage found at recovery: list flags it, delete needs --force"
drun create t --durability sync --ring-bytes 64K --segment-bytes 64K
seq 1 3000 | sed 's/^/ev-/' >"$TMP/lines"
drun_in "$TMP/lines" pub t
check "setup: pub" rc_is 0
drun create ok --durability sync --ring-bytes 64K --segment-bytes 64K
drun pub ok fine
# Below the durable mark in the segment the log ends in: what recovery
# walks, finds damaged and keeps.
flip "$(ls "$DATA"/t/0/*.idx | tail -1 | sed 's/idx$/log/')" 3000
reboot
drun info t
check "setup: info reports the damage" eval '! grep -q "^0 *none" "$OUT"'
drun list
check "list flags t as damaged" out_has "^t	damaged: .*partition 0.*damaged range"
check "list shows the sound topic plainly" out_has "^ok$"
# stat too (a cold attack found it saying nothing): the topic reads, its
# damage is named, and the exit status and the metrics say so.
drun stat t
check "stat: exit 1" rc_is 1
check "stat: the counters still shown" out_has "^topic t: 1 partition"
check "stat: the damage named" out_has "^  DAMAGED on disk: partition 0.*damaged range"
drun stat --prometheus
check "stat --prometheus: exit 1" rc_is 1
check "... t readable" out_has '^evbus_topic_readable{topic="t"} 1$'
check "... and damaged" out_has '^evbus_topic_damaged{topic="t"} 1$'
check "... ok is not" out_has '^evbus_topic_damaged{topic="ok"} 0$'
drun stat t --json
check "stat --json: the damage" eval "python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); sys.exit(0 if \"damaged range\" in o[\"topics\"][0][\"damage\"] else 1)' \"\$OUT\""
drun stat ok --json
check "stat --json: none on ok" eval "python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); sys.exit(0 if o[\"topics\"][0][\"damage\"] is None else 1)' \"\$OUT\""
# dump too: the frames, then the damage named, exit 1 (a cold attack
# found it exiting 0 with nothing telling damage from a torn tail).
drun dump t
check "dump: exit 1" rc_is 1
check "dump: the frames still shown" out_has "^pos=0 offset=0 data"
check "dump: one stderr line naming the damage" err_one_line
check "dump: ... as damaged" err_has "damaged: .*damaged range"
drun dump ok
check "dump of a sound topic: exit 0" rc_is 0
drun delete t
check "delete without --force: exit 1" rc_is 1
check "delete: one line" err_one_line
check "delete: says --force" err_has "force"
check "the data is kept" test -d "$DATA/t/0"
drun tail t --from earliest --skip-damage
check "still readable past the damage" rc_is 0
drun delete t --force
check "delete --force: exit 0" rc_is 0
check "the data is gone" test ! -e "$DATA/t"
drun list
check "list: only the sound topic left" out_is "ok"
end

for dur in none sync; do
    for parts in 3 fewer; do
        what="1 -> $parts"
        [[ "$parts" == fewer ]] && what="2 -> 1"
        begin "a live edit of topic.conf ($dur, partitions $what): named, damaged"
        rm -rf "$DATA" "$DBUS"
        local_opts=(--durability "$dur" --ring-bytes 64K)
        [[ "$dur" == none ]] || local_opts+=(--segment-bytes 64K)
        if [[ "$parts" == fewer ]]; then
            drun create c "${local_opts[@]}" --partitions 2
            edit='s/^partitions 2/partitions 1/'
        else
            drun create c "${local_opts[@]}"
            edit="s/^partitions 1/partitions $parts/"
        fi
        check "setup: create" rc_is 0
        drun pub c one
        check "setup: pub" rc_is 0
        chmod u+w "$DBUS/c/topic.conf"
        sed -i "$edit" "$DBUS/c/topic.conf"
        for cmd in "info c" "tail c" "pub c x"; do
            # shellcheck disable=SC2086
            drun $cmd
            check "$cmd: exit 1" rc_is 1
            check "$cmd: one line" err_one_line
            check "$cmd: names topic.conf" err_has "topic.conf says"
            check "$cmd: not 'no such topic'" eval '! grep -qi "no such" "$ERR"'
        done
        drun list
        check "list flags it" out_has "^c	damaged: .*topic.conf says"
        drun delete c
        check "delete without --force refuses: exit 1" rc_is 1
        check "the topic is still there" test -e "$DBUS/c/0.ring"
        drun delete c --force
        check "delete --force: exit 0" rc_is 0
        end
    done
done

finish
