#!/usr/bin/env bash
# test_cli_perms4.sh - a group's shared bus after a reboot (issue 9,
# attack 4 N1, N2): whichever member opens it first rebuilds it shared as
# its data directory still is (group, modes, sticky), whatever its umask,
# so every member keeps using it; a member who may not write the data
# directory, and root refused its data directory, rebuild nothing and
# leave nothing behind. Member A (a system user whose primary group is
# nogroup, e.g. _apt) owns the topics; member B is nobody (65534). Each
# must be a member on record (passwd), as evbus checks of a bus
# directory's owner other than the caller. The
# parents are root's, group-writable and sticky (3770), so a member may
# make a bus there; Q, A's own and only searchable by B, is README's
# recipe, where tmpfiles.d remakes the bus directory itself at boot.
# Needs root (setpriv); exits 77 (skipped) otherwise.
#
# Usage: test_cli_perms4.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_perms4.sh PATH/TO/evbus}
# shellcheck source=perms_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/perms_lib.sh"
unset EVBUS_DATA_DIR

# Another member on record: a passwd entry with nogroup as its group.
A=$(awk -F: '$4 == 65534 && $3 != 65534 && $3 != 0 { print $3; exit }' /etc/passwd)
if [[ -z "$A" ]]; then
    echo "SKIP: needs a second user whose primary group is nogroup (65534)"
    exit 77
fi
B=65534     # nobody: nogroup is its primary group
P=$(mktemp -d /dev/shm/evbus-perms4.XXXXXX)
V=$(mktemp -d /tmp/evbus-perms4.XXXXXX)
Q=$(mktemp -d /dev/shm/evbus-perms4q.XXXXXX)
for d in "$P" "$V"; do
    chgrp "$GROUP" "$d"
    chmod 3770 "$d"
done
chown "$A:$GROUP" "$Q"
chmod 2755 "$Q"
cleanup_perms4() { rm -rf "$P" "$V" "$Q"; cleanup; }
trap cleanup_perms4 EXIT

# as WHO BUS CMD...: evbus CMD on bus $PARENT/BUS (data $V/BUS; PARENT
# is $P unless set) as member A or B, umask 077: what they make is
# private unless evbus shares it.
as() {
    local who=$1 bus=$2 uid gid
    shift 2
    if [[ "$who" == A ]]; then uid=$A; else uid=$B; fi
    gid=$GROUP
    RC=0
    (cd / && umask 077 && exec setpriv --reuid="$uid" --regid="$gid" --groups="$GROUP" \
        env HOME=/nonexistent EVBUS_DATA_DIR="$V/$bus" "$EVBUS" "$1" \
        --bus "${PARENT:-$P}/$bus" "${@:2}") >"$OUT" 2>"$ERR" || RC=$?
}
err_empty() { [[ ! -s "$ERR" ]]; }
shared_as() { # shared_as PATH MODE: owned by group nogroup, mode MODE
    [[ "$(stat -c '%g %a' "$1")" == "$GROUP $2" ]]
}

# A makes two buses: "w" shared 0660 (members publish), "r" 0640.
as A w create orders --mode 0660 --durability async
as A w pub orders from-a
as B w pub orders from-b
as A r create ro --mode 0640 --durability sync
as A r pub ro secret-1

test_member_records_his_data_dir() {
    begin "a member who records a data directory of his own in the owner's bus is not followed"
    # B's own data directory, holding a forged topic of the owner's name.
    local bd="$V/bforge" bb="$P/bforge"
    install -d -m 0750 -o "$B" -g "$GROUP" "$bd"
    (cd / && setpriv --reuid="$B" --regid="$GROUP" --groups="$GROUP" env HOME=/nonexistent \
        "$EVBUS" create ro --bus "$bb" --data-dir "$bd/d" --mode 0640 --durability sync &&
        setpriv --reuid="$B" --regid="$GROUP" --groups="$GROUP" env HOME=/nonexistent \
        "$EVBUS" pub ro forged-by-b --bus "$bb" --data-dir "$bd/d") >/dev/null
    rm -rf "${bb:?}" "${Q:?}/r"
    PARENT=$Q as A r create ro --mode 0640 --durability sync
    PARENT=$Q as A r pub ro secret-q
    rm -rf "${Q:?}/r"                              # reboot
    install -d -m 3770 -o "$A" -g "$GROUP" "$Q/r"  # tmpfiles.d remakes it as A's
    RC=0
    (cd / && setpriv --reuid="$B" --regid="$GROUP" --groups="$GROUP" env HOME=/nonexistent \
        "$EVBUS" list --bus "$Q/r" --data-dir "$bd/d") >"$OUT" 2>"$ERR" || RC=$?
    check "B opens it first with his own data directory" rc_is 0
    RC=0
    (cd / && setpriv --reuid="$A" --regid="$GROUP" --groups="$GROUP" env HOME=/nonexistent \
        "$EVBUS" tail ro --bus "$Q/r") >"$OUT" 2>"$ERR" || RC=$?
    check "A, following the record, is refused" rc_is 1
    check "never shown the forged event" eval '! grep -q forged "$OUT"'
    check "in one line naming who wrote the record" eval 'err_one_line && err_has "written by uid $B"'
    PARENT=$Q as A r tail ro
    check "A naming her data directory is refused too (the bus keeps B's)" rc_is 1
    rm -f "$Q/r/data_dir" "$Q/r/bus.meta"
    PARENT=$Q as A r tail ro
    check "once A removes the record, her own comes back" eval 'rc_is 0 && out_has secret-q'
    end
}

test_member_restores() {
    begin "after a reboot a member (not the owner) rebuilds the bus shared, and all use it"
    rm -rf "${P:?}/w"
    as B w tail orders
    check "B, first, reads both events" eval 'rc_is 0 && out_has from-a && out_has from-b'
    check "the bus directory is shared 03770" shared_as "$P/w" 3770
    check "and bus.meta 0660" shared_as "$P/w/bus.meta" 660
    check "and the record 0440" shared_as "$P/w/data_dir" 440
    as A w pub orders from-a-2
    check "A, the owner, publishes" eval 'rc_is 0 && err_empty'
    as B w pub orders from-b-2
    check "B publishes" rc_is 0
    as A w tail orders
    check "A reads all four" eval 'rc_is 0 && [[ $(wc -l <"$OUT") -eq 4 ]]'
    end
}

test_owner_restores() {
    begin "after a reboot the owner, umask 077, rebuilds it shared too"
    rm -rf "${P:?}/w"
    as A w list
    check "A lists" eval 'rc_is 0 && out_has orders'
    check "the bus directory is shared 03770" shared_as "$P/w" 3770
    check "and bus.meta 0660" shared_as "$P/w/bus.meta" 660
    as B w pub orders from-b-3
    check "B publishes" eval 'rc_is 0 && err_empty'
    end
}

test_reader_restores_nothing() {
    begin "a member who may only read (0640) does not rebuild it, and leaves nothing"
    rm -rf "${P:?}/r"
    as B r tail ro
    check "refused with one line naming the owner" \
        eval 'rc_nonzero && err_one_line && err_has "only uid $A, " && err_has "can remake it"'
    check "no bus directory left behind" eval '! test -e "$P/r"'
    as A r list
    check "A, the owner, rebuilds it" eval 'rc_is 0 && out_has ro'
    check "shared 02750" shared_as "$P/r" 2750
    check "bus.meta 0640" shared_as "$P/r/bus.meta" 640
    as B r tail ro
    check "then B reads it" eval 'rc_is 0 && out_has secret-1'
    end
}

test_refused_root_leaves_nothing() {
    begin "root, refused the members' data directory after a reboot, leaves nothing"
    rm -rf "${P:?}/w"
    RC=0
    (cd / && env EVBUS_DATA_DIR="$V/w" "$EVBUS" tail orders --bus "$P/w") >"$OUT" 2>"$ERR" ||
        RC=$?
    check "refused with one line" eval 'rc_nonzero && err_one_line'
    check "no bus directory left behind" eval '! test -e "$P/w"'
    as B w list
    check "a member then opens it" eval 'rc_is 0 && out_has orders'
    check "shared 03770" shared_as "$P/w" 3770
    end
}

test_parent_not_members() {
    begin "README's recipe: a parent only A may write, the bus remade at boot as A's"
    PARENT=$Q as A q create orders --mode 0660 --durability async
    check "A creates it" rc_is 0
    PARENT=$Q as B q pub orders from-b
    check "B publishes" rc_is 0
    rm -rf "${Q:?}/q"
    PARENT=$Q as B q list
    check "without tmpfiles.d B cannot remake it" eval 'rc_nonzero && err_one_line'
    check "and makes nothing" eval '! test -e "$Q/q"'
    install -d -m 3770 -o "$A" -g "$GROUP" "$Q/q" # tmpfiles.d: d $Q/q 3770 A nogroup -
    PARENT=$Q as B q tail orders
    check "with it B opens first and reads" eval 'rc_is 0 && out_has from-b'
    check "bus.meta 0660" shared_as "$Q/q/bus.meta" 660
    PARENT=$Q as A q pub orders from-a
    check "A publishes" eval 'rc_is 0 && err_empty'
    end
}

test_member_restores
test_owner_restores
test_member_records_his_data_dir
test_reader_restores_nothing
test_refused_root_leaves_nothing
test_parent_not_members
finish
