# perms_lib.sh - what the CLI permission tests (test_cli_perms*.sh) share:
# the skip without root and setpriv, the users they play, a directory for
# their buses, and running a command as one of those users. Sourced once
# EVBUS is set; it sources lib.sh. The checks live in the scripts.

if [[ "$(id -u)" -ne 0 ]] || ! command -v setpriv >/dev/null; then
    echo "SKIP: needs root and setpriv to run commands as other uids (CI runs it as root)"
    exit 77
fi
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Commands of other users run from /, where a relative path means nothing.
EVBUS=$(realpath "$EVBUS")

GROUP=65534 # nogroup
READER=65534 # nobody, in GROUP
STRANGER=65533 # in no group of the bus

# perms_dir NAME: a new directory under /dev/shm every user may pass,
# whose group GROUP everything made inside inherits (set-gid).
perms_dir() {
    local d
    d=$(mktemp -d "/dev/shm/$1.XXXXXX")
    chgrp "$GROUP" "$d"
    chmod 2755 "$d"
    echo "$d"
}

# as_run UID GID CMD...: CMD as UID:GID and no other group, from /, with
# no EVBUS_DATA_DIR and a HOME it cannot use, under umask AS_UMASK (the
# caller's when unset); sets RC, OUT, ERR.
as_run() {
    local uid=$1 gid=$2
    shift 2
    RC=0
    (umask "${AS_UMASK:-$(umask)}" && cd / && exec setpriv --reuid="$uid" --regid="$gid" \
        --clear-groups env -u EVBUS_DATA_DIR HOME=/nonexistent "$@") >"$OUT" 2>"$ERR" || RC=$?
}
