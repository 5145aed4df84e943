# perms_bus.sh - the bus that test_cli_perms.sh and test_cli_perms5.sh
# share between root and the other users: PB and its data directory PD,
# both in a new perms_dir P named by the argument, removed at exit; prun
# runs evbus on it as root, as as one of the others. Sourced once EVBUS
# is set, as `source perms_bus.sh NAME`; it sources perms_lib.sh (the skip
# without root, the users, as_run) first.

# shellcheck source=perms_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/perms_lib.sh"

# Where the bus lives: everyone may pass, GROUP is inherited.
P=$(perms_dir "$1")
PB="$P/bus"
PD="$P/data"
cleanup_perms() { rm -rf "$P"; cleanup; }
trap cleanup_perms EXIT

# prun CMD...: evbus CMD as root on the shared bus, under umask PRUN_UMASK
# (the caller's when unset); sets RC, OUT, ERR.
prun() {
    RC=0
    (umask "${PRUN_UMASK:-$(umask)}" && "$EVBUS" "$1" --bus "$PB" --data-dir "$PD" "${@:2}") \
        >"$OUT" 2>"$ERR" || RC=$?
}
# as UID GID CMD...: evbus CMD on the shared bus as UID:GID and no other
# group, under umask AS_UMASK (as_run).
as() {
    local uid=$1 gid=$2
    shift 2
    as_run "$uid" "$gid" "$EVBUS" "$1" --bus "$PB" "${@:2}"
}
