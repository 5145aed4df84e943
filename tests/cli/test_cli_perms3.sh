#!/usr/bin/env bash
# test_cli_perms3.sh - two members of one group on a bus shared 0660
# (issue 9, attack 3 F2): who may delete a topic, and that nobody else can
# rename or remove it, through evbus or with plain mv (the shared bus and
# data directories are sticky). Root owns the bus; member A is nobody
# (65534, primary group nogroup), member B is uid 65533 with nogroup as a
# supplementary group. A group writer still publishes, flushes and
# retains another member's topic; leftovers of a half-done delete are
# swept by their owner and skipped quietly by everyone else. Needs root
# (setpriv); exits 77 (skipped) otherwise. The API side is
# tests/bus/test_bus_owner.c.
#
# Usage: test_cli_perms3.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_perms3.sh PATH/TO/evbus}
# shellcheck source=perms_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/perms_lib.sh"
unset EVBUS_DATA_DIR

A=65534     # nobody: nogroup is its primary group
B=65533     # nogroup as a supplementary group
P=$(mktemp -d /dev/shm/evbus-perms3.XXXXXX)
V=$(mktemp -d /tmp/evbus-perms3.XXXXXX)
for d in "$P" "$V"; do
    chgrp "$GROUP" "$d"
    chmod 2755 "$d"
done
PB="$P/bus"
PD="$V/data"
cleanup_perms3() { rm -rf "$P" "$V"; cleanup; }
trap cleanup_perms3 EXIT

# as WHO CMD...: evbus CMD on the shared bus as member A or B, umask 077.
as() {
    local who=$1 uid gid
    shift
    if [[ "$who" == A ]]; then uid=$A gid=$GROUP; else uid=$B gid=$B; fi
    RC=0
    (cd / && umask 077 && exec setpriv --reuid="$uid" --regid="$gid" --groups="$GROUP" \
        env HOME=/nonexistent "$EVBUS" "$1" --bus "$PB" "${@:2}") >"$OUT" 2>"$ERR" || RC=$?
}
# sh_as WHO CMD...: a plain command (mv, rm) as member A or B.
sh_as() {
    local who=$1 uid gid
    shift
    if [[ "$who" == A ]]; then uid=$A gid=$GROUP; else uid=$B gid=$B; fi
    RC=0
    (cd / && exec setpriv --reuid="$uid" --regid="$gid" --groups="$GROUP" "$@") \
        >"$OUT" 2>"$ERR" || RC=$?
}
err_empty() { [[ ! -s "$ERR" ]]; }
mode_is() { [[ "$(stat -c %a "$1")" == "$2" ]]; }
no_del_left() { ! compgen -G "$PB/.del.*" >/dev/null && ! compgen -G "$PD/.del.*" >/dev/null; }
# lines N STR: STR is N lines of about 100 bytes, numbered.
lines() { seq 1 "$1" | sed "s/\$/ $2 $(printf 'x%.0s' {1..80})/"; }

# Root makes the bus and its data directory, shared 0660 with the group.
"$EVBUS" create orders --bus "$PB" --data-dir "$PD" --mode 0660 --durability async \
    >/dev/null

test_sticky() {
    begin "the bus and data directories a 0660 bus makes are sticky (03770)"
    check "bus directory 3770" mode_is "$PB" 3770
    check "data directory 3770" mode_is "$PD" 3770
    check "a topic directory is not sticky (2770)" mode_is "$PB/orders" 2770
    check "nor a partition directory" mode_is "$PD/orders/0" 2770
    end
}

test_reader_cannot_delete() {
    begin "a member who may only read a 0640 topic cannot delete it"
    as A create ro --mode 0640 --durability sync
    check "A creates ro" rc_is 0
    as A pub ro secret-1 secret-2
    check "A publishes" rc_is 0
    as B delete ro
    check "B's delete is refused, one line, exit 1" \
        eval 'rc_is 1 && err_one_line && err_has "may read it, not delete it"'
    as B delete ro --force
    check "so is B's delete --force" eval 'rc_is 1 && err_has "not delete it"'
    as B retain ro
    check "and B's retain" eval 'rc_is 1 && err_has "may read it"'
    check "ro is intact in tmpfs" test -f "$PB/ro/0.ring"
    check "and on disk" test -f "$PD/ro/0/00000000000000000000.log"
    check "nothing renamed aside" no_del_left
    as A tail ro
    check "A reads its events" eval 'rc_is 0 && out_has "0:0 secret-1" && out_has "0:1 secret-2"'
    as B create ro --mode 0640 --durability sync
    check "B cannot create a topic of the same name" eval 'rc_is 1 && err_has exists'
    end
}

test_mv_refused() {
    begin "a member cannot rename or remove another member's topic directory"
    sh_as B mv "$PB/ro" "$PB/.del.ro.1.1"
    check "mv in the bus directory fails" rc_nonzero
    sh_as B mv "$PD/ro" "$PD/gone"
    check "mv in the data directory fails" rc_nonzero
    sh_as B rm -rf "$PD/ro"
    check "rm -rf in the data directory fails" rc_nonzero
    check "ro is still there" eval 'test -f "$PB/ro/0.ring" && test -f "$PD/ro/topic.conf"'
    end
}

test_writer_works() {
    begin "a group writer publishes, flushes and retains another's 0660 topic, not deletes it"
    as A create w --mode 0660 --durability async --ring-bytes 64K --segment-bytes 64K \
        --retain-ms 60000
    check "A creates w" rc_is 0
    lines 1500 a >"$TMP/a.txt"
    RC=0
    (cd / && umask 077 && exec setpriv --reuid="$A" --regid="$GROUP" --groups="$GROUP" \
        "$EVBUS" pub w --bus "$PB" <"$TMP/a.txt") >"$OUT" 2>"$ERR" || RC=$?
    check "A publishes" rc_is 0
    local a_segs
    a_segs=$(find "$PD/w/0" -name '*.log' -user "$A" | wc -l)
    check "A's flusher wrote segments" test "$a_segs" -ge 2
    lines 1500 b >"$TMP/b.txt"
    RC=0
    (cd / && umask 077 && exec setpriv --reuid="$B" --regid="$B" --groups="$GROUP" \
        "$EVBUS" pub w --bus "$PB" <"$TMP/b.txt") >"$OUT" 2>"$ERR" || RC=$?
    check "B publishes" rc_is 0
    check "B's flusher wrote segments" \
        test "$(find "$PD/w/0" -name '*.log' -user "$B" | wc -l)" -ge 1
    as B tail w --count 1
    check "B reads A's first event" eval 'rc_is 0 && out_has "0:0 1 a"'
    # Age A's segments past retain-ms: B's retain must remove them.
    find "$PD/w/0" -name '*.log' -user "$A" -exec touch -d '1 hour ago' {} +
    as B retain w
    check "B's retain runs" rc_is 0
    check "and removed A's aged segments" \
        test "$(find "$PD/w/0" -name '*.log' -user "$A" | wc -l)" -lt "$a_segs"
    as B delete w
    check "B may not delete A's topic" \
        eval 'rc_is 1 && err_one_line && err_has "only its owner"'
    check "w is intact" eval 'test -f "$PB/w/0.ring" && test -f "$PD/w/topic.conf"'
    as A delete w
    check "A deletes its own" rc_is 0
    check "w is gone from both" eval '! test -e "$PB/w" && ! test -e "$PD/w"'
    check "nothing left aside" no_del_left
    end
}

test_leftovers() {
    begin "a half-done delete is swept by its owner, skipped quietly by others"
    as B create bd --mode 0660 --durability async
    check "B creates a durable topic" rc_is 0
    as B pub bd one
    # B's delete dying after both renames: the pid is no process's.
    sh_as B mv "$PB/bd" "$PB/.del.bd.999999999.0"
    check "B renames its own topic aside" rc_is 0
    sh_as B mv "$PD/bd" "$PD/.del.bd.999999999.1"
    check "and its own data" rc_is 0
    as A list
    check "A's list works" eval 'rc_is 0 && out_has orders && err_empty'
    check "and leaves B's leftovers to B" \
        eval 'test -d "$PB/.del.bd.999999999.0" && test -d "$PD/.del.bd.999999999.1"'
    as B list
    check "B's list works" eval 'rc_is 0 && ! out_has bd'
    check "and sweeps B's leftovers in the bus directory" \
        eval '! test -e "$PB/.del.bd.999999999.0"'
    check "and in the data directory" eval '! test -e "$PD/.del.bd.999999999.1"'
    end
}

test_owner_and_root_delete() {
    begin "the topic's owner and root may delete it; the bus's owner is root here"
    as A delete ro
    check "A deletes ro" rc_is 0
    as B create ro2 --mode 0640 --durability sync
    check "B creates ro2" rc_is 0
    "$EVBUS" delete ro2 --bus "$PB" >"$OUT" 2>"$ERR" && RC=0 || RC=$?
    check "root deletes B's topic" rc_is 0
    check "gone from both" eval '! test -e "$PB/ro2" && ! test -e "$PD/ro2"'
    check "nothing left aside" no_del_left
    end
}

test_sticky
test_reader_cannot_delete
test_mv_refused
test_writer_works
test_leftovers
test_owner_and_root_delete
finish
