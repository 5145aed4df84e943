#!/usr/bin/env bash
# test_cli_perms5.sh - a partition group with --dedup shared by two uids
# on a topic shared for writing (0660, README "Sharing a bus with a
# group"). The group's table file (consumers/<group>.gdup) follows the
# group file's rule, not a named consumer's: whoever may join the group
# may use its table, whichever of them made it. Root owns the topics;
# nobody (65534) is in their group (nogroup). A stranger (65533) in no
# group of the bus is still refused. Ring-only and durable topics. Also:
# stat and list of the whole bus show a topic the caller may not look
# into, with the reason (a cold attack found it left out, stat exit 0);
# bench's sweep of a killed bench's topics passes over ones it may not
# remove, so that they never take the places of its own.
# Needs root (setpriv); exits 77 (skipped) otherwise.
#
# Usage: test_cli_perms5.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_perms5.sh PATH/TO/evbus}
# shellcheck source=perms_bus.sh
source "$(dirname "${BASH_SOURCE[0]}")/perms_bus.sh" evbus-perms5
AS_UMASK=077
PRUN_UMASK=077
ID=2147483653

denied() { rc_nonzero && err_has "permission denied"; }

# shared_group TOPIC DURABILITY: nobody makes group gn, root joins it;
# root makes gr, nobody joins it; each time the other drops the copies.
shared_group() {
    local t=$1 dur=$2
    begin "a --dedup group on a 0660 $dur topic is shared by both uids"
    prun create "$t" --partitions 1 --ring-bytes 64K --mode 0660 --durability "$dur"
    check "create: exit 0" rc_is 0
    seq 0 9 | prun pub "$t" --producer-id "$ID" --partition 0
    as "$READER" "$GROUP" tail "$t" --group gn --dedup
    check "nobody makes group gn: exit 0" rc_is 0
    check "and reads 10" eval '[[ "$(wc -l <"$OUT")" -eq 10 ]]'
    seq 5 14 | prun pub "$t" --producer-id "$ID" --partition 0 --seq 5
    prun tail "$t" --group gn --dedup
    check "root joins gn with --dedup: exit 0" rc_is 0
    check "not refused" not_grep "permission denied" "$ERR"
    check "and gets only the 5 new ones" out_is "$(printf '0:%d %d\n' 15 10 16 11 17 12 18 13 19 14)"
    check "dropping the copies of what nobody read" err_has "5 duplicates dropped"
    prun tail "$t" --group gr --dedup --count 3
    check "root makes group gr: exit 0" rc_is 0
    as "$READER" "$GROUP" tail "$t" --group gr --dedup --count 3
    check "nobody joins gr with --dedup: exit 0" rc_is 0
    check "not refused" not_grep "permission denied" "$ERR"
    check "and goes on after root's commit" eval '[[ "$(head -1 "$OUT")" == "0:3 3" ]]'
    as "$STRANGER" "$STRANGER" tail "$t" --group gr --dedup --count 1
    check "the stranger is refused" denied
    end
}

shared_group r none
shared_group d async

begin "stat and list of the bus show a topic the caller may not read"
prun create open1 --partitions 1 --ring-bytes 64K --mode 0644
prun create shut --partitions 1 --ring-bytes 64K
as "$READER" "$GROUP" stat
check "stat: exit 1" rc_is 1
check "shows shut, unreadable, and why" out_has "topic shut: unreadable.*permission denied"
check "and the topic it may read" out_has "topic open1: 1 partition"
as "$READER" "$GROUP" stat --json
check "stat --json: exit 1" rc_is 1
check "lists shut with its error" eval \
    "json_field '[t[\"error\"] for t in o[\"topics\"] if t[\"name\"] == \"shut\"][0]' | grep -q 'permission denied'"
as "$READER" "$GROUP" list
check "list names it" eval 'grep -qx shut "$OUT"'
as "$READER" "$GROUP" groups
check "groups of the bus: exit 1" rc_is 1
check "... naming the topic it may not read" err_has "topic shut: .*permission denied"
end

begin "bench's sweep of dead benches' topics passes over other users' topics"
# A pid no process has: bench-PID-N topics of it are a killed bench's.
dead=4000000
while kill -0 "$dead" 2>/dev/null; do dead=$((dead - 1)); done
# Sixteen of root's, which `nobody` cannot remove, sort before nobody's
# own: the sweep takes at most 16 names a run.
for i in $(seq 1 16); do
    prun create "bench-$dead-$i" --partitions 1 --ring-bytes 64K --mode 0600
done
chmod g+w "$PB" # shared with GROUP, as README "Sharing a bus with a group"
as "$READER" "$GROUP" create "bench-$dead-99" --partitions 1 --ring-bytes 64K
check "nobody leaves a topic of a dead bench" rc_is 0
as "$READER" "$GROUP" bench --duration 0.1 --warmup 0 --ring-bytes 64K
check "nobody's bench: exit 0" rc_is 0
prun list
check "nobody's dead bench topic is swept" not_grep "bench-$dead-99" "$OUT"
check "root's are left" eval '[[ "$(grep -c "^bench-$dead-" "$OUT")" -eq 16 ]]'
chmod g-w "$PB"
end

finish
