#!/usr/bin/env bash
# test_cli_perms2.sh - the second permission attack (issue 9, #14-#16 as
# reopened): a symlink planted for a directory of the data directory; hard
# links planted for files the bus writes; a topic every user reads (0644)
# read by a stranger; named buses of two users in either order; a read-only
# lossless reader of a durable topic; what read-only callers are told; and
# refused commands leaving nothing behind. Needs root (setpriv); exits 77
# (skipped) otherwise. tests/bus/test_hostile_links.c has the API side.
#
# Usage: test_cli_perms2.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_perms2.sh PATH/TO/evbus}
# shellcheck source=perms_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/perms_lib.sh"
unset EVBUS_DATA_DIR # each bus here names its own, or records it

P=$(perms_dir evbus-perms2)
V=$(mktemp -d /tmp/evbus-victim.XXXXXX)
NAMES=()
cleanup_perms2() {
    rm -rf "$P" "$V"
    for n in "${NAMES[@]}"; do rm -rf "/dev/shm/evbus-$STRANGER/$n" "/dev/shm/evbus-$READER/$n" \
        "/dev/shm/evbus/$n"; done
    cleanup
}
trap cleanup_perms2 EXIT

# as UID GID CMD...: evbus CMD as UID:GID and no other group.
as() {
    local uid=$1 gid=$2
    shift 2
    as_run "$uid" "$gid" "$EVBUS" "$@"
}
root() {
    RC=0
    "$EVBUS" "$@" >"$OUT" 2>"$ERR" || RC=$?
}
victim_empty() { [[ -z "$(ls -A "$V")" ]]; }

test_named_buses_two_users() {
    begin "named buses of two users, in either order, and root's"
    local a="p2a-$$" b="p2b-$$"
    NAMES+=("$a" "$b")
    as "$STRANGER" "$STRANGER" create t --bus "$a"
    check "the first user creates" rc_is 0
    as "$READER" "$GROUP" create t --bus "$a"
    check "then the second, same name" rc_is 0
    as "$READER" "$GROUP" create t --bus "$b"
    check "the second user first" rc_is 0
    as "$STRANGER" "$STRANGER" create t --bus "$b"
    check "then the first" rc_is 0
    root create t --bus "$a"
    check "and root" rc_is 0
    check "/dev/shm/evbus is root's if it exists" \
        eval '[[ ! -e /dev/shm/evbus || "$(stat -c %u /dev/shm/evbus)" == 0 ]]'
    as "$STRANGER" "$STRANGER" list --bus "$a"
    check "each lists its own" eval 'rc_is 0 && out_has t'
    end
}

test_squatted_named_root() {
    begin "a named-bus root squatted by another user is named in the message"
    local u=65532 sq=/dev/shm/evbus-65532
    [[ -e "$sq" ]] && { check "no $sq left from an earlier run" false; end; return; }
    mkdir -m 0755 "$sq"
    chown "$STRANGER:$STRANGER" "$sq"
    as "$u" "$u" create t --bus "sq-$$"
    local rc=$RC
    rm -rf "$sq"
    RC=$rc
    check "refused" rc_is 1
    check "in one line naming the squatter" \
        eval 'err_one_line && err_has "owned by uid $STRANGER" && err_has "$sq"'
    end
}

test_every_user_reads() {
    begin "a topic shared 0644 is read by a stranger, never written"
    local pp="$P/pub"
    mkdir -m 755 "$pp"
    chown "$READER:$GROUP" "$pp"
    as "$READER" "$GROUP" create pt --bus "$pp/bus" --mode 0644
    check "owner creates" rc_is 0
    printf 'x\n' >"$V.in"
    as "$READER" "$GROUP" pub pt --bus "$pp/bus" <"$V.in"
    rm -f "$V.in"
    check "owner publishes" rc_is 0
    as "$STRANGER" "$STRANGER" tail pt --lossy --bus "$pp/bus"
    check "a stranger reads it" eval 'rc_is 0 && out_has x'
    as "$STRANGER" "$STRANGER" tail pt --bus "$pp/bus"
    check "lossless on a ring-only topic: one line naming --lossy" \
        eval 'rc_is 1 && err_one_line && err_has -- "--lossy"'
    as "$STRANGER" "$STRANGER" create q --bus "$pp/bus"
    check "a stranger creates nothing" eval 'rc_is 1 && err_one_line && [[ ! -e "$pp/bus/q" ]]'
    root tail pt --lossy --bus "$pp/bus"
    check "root reads it too" eval 'rc_is 0 && out_has x'
    root create q --bus "$pp/bus"
    check "root writes nothing into it" eval 'rc_is 1 && err_one_line && [[ ! -e "$pp/bus/q" ]]'
    end
}

test_readonly_lossless_durable() {
    begin "a read-only lossless subscriber of a durable topic reads"
    root create d --bus "$P/g" --data-dir "$P/gd" --mode 0640 --durability async
    check "created" rc_is 0
    printf 'one\ntwo\n' | "$EVBUS" pub d --bus "$P/g" >/dev/null
    as "$READER" "$GROUP" tail d --bus "$P/g"
    check "the group reader's default tail reads" eval 'rc_is 0 && out_has two'
    end
}

test_symlinked_topic_dir() {
    begin "a topic directory in the data directory replaced by a symlink"
    root create s --bus "$P/s" --data-dir "$P/sd" --mode 0660 --durability async
    check "created" rc_is 0
    mv "$P/sd/s" "$P/sd/s.old"
    ln -s "$V" "$P/sd/s"
    RC=0
    printf 'x\n' | "$EVBUS" pub s --bus "$P/s" >"$OUT" 2>"$ERR" || RC=$?
    check "pub fails in one line" eval 'rc_is 1 && err_one_line && err_has symlink'
    check "nothing made in the victim" victim_empty
    root tail s --name audit --bus "$P/s"
    check "a named consumer is refused" eval 'rc_is 1 && err_one_line'
    check "still nothing made in the victim" victim_empty
    end
}

test_hard_links() {
    begin "hard links planted for files the bus writes change nothing"
    root create h --bus "$P/h" --data-dir "$P/hd" --durability async
    printf 'x\n' | "$EVBUS" pub h --bus "$P/h" >/dev/null
    root tail h --name c --bus "$P/h"
    local f
    for f in "$P/hd/h/0/durable.mark" "$P/hd/h/consumers/c.cur" "$P/h/h/0.ring" \
        "$P/h/bus.meta" "$P/hd/h/0/flush.lock"; do
        printf 'keep' >"$P/victim" # the same file system: a hard link
        rm -f "$f"
        ln "$P/victim" "$f"
        RC=0
        printf 'y\n' | "$EVBUS" pub h --bus "$P/h" >"$OUT" 2>"$ERR" || RC=$?
        root tail h --name c --bus "$P/h"
        check "$f: the victim is unchanged" eval '[[ "$(cat "$P/victim")" == keep ]]'
        rm -f "$f" "$P/victim"
    done
    end
}

test_messages_and_leftovers() {
    begin "unreachable buses are said so; refused commands leave nothing"
    mkdir -m 700 "$P/priv"
    root create t --bus "$P/priv/bus"
    as "$STRANGER" "$STRANGER" list --bus "$P/priv/bus"
    check "list: cannot reach, permission denied" \
        eval 'rc_is 1 && err_one_line && err_has "cannot reach bus" && err_has "permission denied"'
    mkdir -m 777 "$P/ww"
    root create t --bus "$P/ww/b"
    check "create under a world-writable parent is refused" eval 'rc_is 1 && err_one_line'
    check "and leaves no directory" eval '[[ ! -e "$P/ww/b" ]]'
    mkdir -m 755 "$P/theirs"
    chown "$READER:$GROUP" "$P/theirs"
    root create t --bus "$P/b2" --data-dir "$P/theirs/data" --durability async
    check "a data directory under another user's is refused" eval 'rc_is 1 && err_one_line'
    check "and leaves no data directory" eval '[[ ! -e "$P/theirs/data" ]]'
    end
}

test_flusher_locked_out() {
    begin "a group writer whose flusher cannot open flush.lock is told, not left waiting"
    local b="$P/lk" d="$P/lkdata"
    root create t --bus "$b" --data-dir "$d" --mode 0660 --durability sync --partitions 1 \
        --ring-bytes 64K
    check "root creates a group-writable sync topic" rc_is 0
    root pub t --bus "$b" first
    check "root publishes (its flusher makes flush.lock)" rc_is 0
    # A lock file the group cannot open (an older build's mode, a hand's).
    chmod 0600 "$d/t/0/flush.lock"
    # More than the ring holds: once it is full only a flush makes room.
    as_run "$READER" "$GROUP" timeout 20 "$EVBUS" pub t --bus "$b" < <(seq 1 5000)
    check "the group writer's publish fails when the ring fills (124: it hung)" rc_is 1
    check "in one line that says why" eval 'err_one_line && err_has "ermission denied"'
    end
}

test_named_buses_two_users
test_squatted_named_root
test_every_user_reads
test_flusher_locked_out
test_readonly_lossless_durable
test_symlinked_topic_dir
test_hard_links
test_messages_and_leftovers
finish
