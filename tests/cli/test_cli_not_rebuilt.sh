#!/usr/bin/env bash
# test_cli_not_rebuilt.sh - a durable topic that cannot be rebuilt after a
# reboot although its log is intact (attack round 2, findings 3 and 4):
# `evbus flushd` of the old bus, stopped, keeps a flush lock, or the bus's
# tmpfs has no room for the rings. Every command says so in one line naming
# the holder's pid (or the ring that did not fit), exits 1, never calls the
# topic damaged; create does not suggest --force, and delete --force
# removes nothing while the holder lives. Once the holder is gone (or there
# is room) the next command rebuilds the topic with every event. The
# library-level cases are in tests/durable/test_rebuilt.c.
#
# Usage: test_cli_not_rebuilt.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_not_rebuilt.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The lock file FILE is held by someone (flock(1) cannot take it at once).
held() { ! flock -n "$1" true; }
# Neither stdout nor stderr calls the topic damaged or corrupt.
not_damaged() { ! grep -qi -- 'damaged\|corrupt' "$OUT" "$ERR"; }

test_held_by_a_stopped_flushd() {
    begin "a flush lock a stopped flushd of the old bus keeps: named, nothing lost"
    drun create t --durability sync
    drun pub t one two three
    check "setup: published" rc_is 0
    "$EVBUS" flushd --bus "$DBUS" --data-dir "$DATA" >/dev/null 2>&1 &
    BG_PID=$!
    check "setup: flushd takes the lock" wait_for 10 held "$DATA/t/0/flush.lock"
    kill -STOP "$BG_PID"
    rm -rf "$DBUS"
    local who="process $BG_PID (stopped"
    drun list
    check "list: exit 1" rc_is 1
    check "list: not rebuilt, naming the pid" out_has $'t\tnot rebuilt: .*'"$who"
    check "list: not damaged" not_grep damaged "$OUT"
    for cmd in "tail t" "pub t four" "stat"; do
        # shellcheck disable=SC2086
        drun $cmd
        check "$cmd: exit 1" rc_is 1
        check "$cmd: names the holder" grep -q -- "$who" "$OUT" "$ERR"
        check "$cmd: says the topic is intact" grep -q -- "intact" "$OUT" "$ERR"
        check "$cmd: not damaged, not corrupt" not_damaged
    done
    drun create t --durability sync
    check "create: exit 1" rc_is 1
    check "create: one line" err_one_line
    check "create: says it exists" err_has "exists"
    check "create: no --force suggested" not_grep force "$ERR"
    drun delete t --force
    check "delete --force: exit 1" rc_is 1
    check "delete --force: one line" err_one_line
    check "delete --force: names the holder" err_has "$who"
    check "delete --force: the log stays" test -f "$DATA/t/topic.conf"
    kill -CONT "$BG_PID"
    kill "$BG_PID"
    wait_bg 10
    rm -rf "$DBUS"
    drun tail t
    check "after the holder exited: every event" out_is $'0:0 one\n0:1 two\n0:2 three'
    drun delete t
    end
}

# fill_but DIR KIB: fill DIR's file system with DIR/fill, then give back
# KIB KiB.
fill_but() {
    dd if=/dev/zero of="$1/fill" bs=64k 2>/dev/null || true
    local size
    size=$(stat -c %s "$1/fill")
    truncate -s $((size > $2 * 1024 ? size - $2 * 1024 : 0)) "$1/fill"
}

test_no_room_in_tmpfs() {
    begin "no room in tmpfs for the rings: ENOSPC naming the ring, nothing lost"
    local mnt="$SHM/small"
    mkdir -p "$mnt"
    if ! mount -t tmpfs -o size=2m,mode=0700 tmpfs "$mnt" 2>/dev/null; then
        echo "cannot mount a small tmpfs here (needs root): case skipped"
        end
        return
    fi
    local bus="$mnt/bus" data="$TMP/data-small"
    sdrun() { RC=0; "$EVBUS" "$1" --bus "$bus" --data-dir "$data" "${@:2}" >"$OUT" 2>"$ERR" || RC=$?; }
    sdrun create s --durability sync --partitions 2 --ring-bytes 256K
    sdrun pub s --partition 0 one two
    check "setup: published" rc_is 0
    rm -rf "$bus"
    fill_but "$mnt" 400
    sdrun list
    check "list: exit 1" rc_is 1
    check "list: not rebuilt, naming the ring" out_has $'s\tnot rebuilt: .*'"$bus/s/1.ring"
    sdrun tail s
    check "tail: exit 1" rc_is 1
    check "tail: one line" err_one_line
    check "tail: no space, naming the ring" err_has "no space.*$bus/s/1.ring"
    check "tail: not damaged, not corrupt" not_damaged
    sdrun stat
    check "stat: exit 1" rc_is 1
    check "stat: not damaged" not_damaged
    rm -f "$mnt/fill"
    sdrun tail s
    check "with room again: every event" out_is $'0:0 one\n0:1 two'
    umount "$mnt"
    end
}

trap 'umount "$SHM/small" 2>/dev/null || true; cleanup' EXIT
test_held_by_a_stopped_flushd
test_no_room_in_tmpfs

finish
