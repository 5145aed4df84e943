#!/usr/bin/env bash
# test_cli_full_disk.sh - a durable topic whose data directory fills up
# (issue 9, attack report 1): pub must stop with one line and exit 1 (before
# the fix it hung for ever), a later pub into the full ring the same, and
# once the disk has room again the flush goes on and every accepted line
# reads back. Needs root to mount a small tmpfs; skipped (exit 77) without.
#
# Usage: test_cli_full_disk.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_full_disk.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mkdir -p "$DATA"
if ! mount -t tmpfs -o size=2m,mode=0755 tmpfs "$DATA" 2>/dev/null; then
    echo "cannot mount a small tmpfs here (needs root): skipped"
    exit 77
fi
trap 'umount "$DATA" 2>/dev/null || true; cleanup' EXIT

# timed_drun SECONDS CMD...: drun with a deadline (RC 124 when it hangs).
timed_drun() {
    local secs=$1
    shift
    RC=0
    timeout "$secs" "$EVBUS" "$1" --bus "$DBUS" --data-dir "$DATA" "${@:2}" \
        <"${IN:-/dev/null}" >"$OUT" 2>"$ERR" || RC=$?
}

for dur in sync async; do
    begin "pub to a full data disk ($dur): one line, exit 1, nothing accepted lost"
    umount "$DATA"
    mount -t tmpfs -o size=2m,mode=0755 tmpfs "$DATA"
    rm -rf "$DBUS"
    drun create f --durability "$dur" --ring-bytes 64K --segment-bytes 1M
    check "create" rc_is 0
    seq 1 200000 >"$TMP/lines"
    IN="$TMP/lines" timed_drun 30 pub f
    check "pub stops with exit 1 (124: it hung)" rc_is 1
    check "pub: one line" err_one_line
    check "pub: says the disk is full" err_has "no space"
    timed_drun 30 pub f one-more
    check "a later pub into the full ring: exit 1" rc_is 1
    check "a later pub: one line" err_one_line
    drun info f
    check "info while the last flush failed: exit 1" rc_is 1
    check "info names the failed flush" err_has "partition 0: the last flush failed"
    # stat too (a cold attack found it silent: the header promised it):
    # text, JSON, Prometheus, and the exit status.
    drun stat f
    check "stat while the flush fails: exit 1" rc_is 1
    check "stat: one line on stderr naming it" err_one_line
    check "stat: the stderr line says why" err_has "flusher failed"
    check "stat: FLUSH FAILED and why" out_has "^  FLUSH FAILED: partition 0: .*No space left"
    drun stat f --json
    check "stat --json: exit 1" rc_is 1
    check "stat --json: flush_error and its text" eval "python3 -c 'import json,sys; p=json.loads(open(sys.argv[1]).readline())[\"topics\"][0][\"partitions\"][0]; sys.exit(0 if p[\"flush_error\"] < 0 and \"No space left\" in p[\"flush_error_text\"] else 1)' \"\$OUT\""
    drun stat --prometheus
    check "stat --prometheus: exit 1" rc_is 1
    check "... evbus_partition_flush_failed 1" out_has '^evbus_partition_flush_failed{topic="f",partition="0"} 1$'
    # Room again: the flusher retries by itself, about once a second.
    mount -o remount,size=16m tmpfs "$DATA"
    ok=0
    for _ in $(seq 1 100); do
        timed_drun 30 pub f after
        if [[ "$RC" -eq 0 ]]; then ok=1; break; fi
        sleep 0.1
    done
    check "pub works once the disk has room" eval '((ok))'
    drun info f --json
    check "info once a flush succeeded again: exit 0" rc_is 0
    tail_off=$(json_field 'o["partitions"][0]["tail_offset"]' 2>/dev/null || echo 0)
    drun stat f --prometheus
    check "stat once a flush succeeded again: exit 0" rc_is 0
    check "... evbus_partition_flush_failed 0" out_has '^evbus_partition_flush_failed{topic="f",partition="0"} 0$'
    drun stat f --json
    check "stat --json: no flush error" eval "python3 -c 'import json,sys; p=json.loads(open(sys.argv[1]).readline())[\"topics\"][0][\"partitions\"][0]; sys.exit(0 if p[\"flush_error\"] == 0 and p[\"flush_error_text\"] is None else 1)' \"\$OUT\""
    reboot
    drun tail f --from earliest --count "$tail_off"
    check "tail after a reboot" rc_is 0
    check "every accepted line reads back" eval '[[ $(wc -l <"$OUT") -eq $tail_off && $tail_off -gt 20000 ]]'
    check "in order, from the first" eval '[[ "$(head -1 "$OUT" | awk "{print \$NF}")" == 1 ]]'
    check "the last is the one published after the remount" eval '[[ "$(tail -1 "$OUT" | awk "{print \$NF}")" == after ]]'
    end
done

begin "stat --json of a failed flusher whose words hold bytes that are not UTF-8"
# The partition directory is named in the text when the flusher could keep
# no note; a JSON string cannot hold those bytes raw (a review found the
# partition dropped from the output).
umount "$DATA"
mount -t tmpfs -o size=2m,mode=0755 tmpfs "$DATA"
rm -rf "$DBUS"
odd="$DATA/odd$(printf '\xff')dir"
mkdir -p "$odd"
RC=0
"$EVBUS" create u --bus "$DBUS" --data-dir "$odd" --durability sync --ring-bytes 64K \
    --segment-bytes 1M >"$OUT" 2>"$ERR" || RC=$?
check "create with an odd data directory" rc_is 0
seq 1 200000 >"$TMP/lines"
RC=0
timeout 30 "$EVBUS" pub u --bus "$DBUS" --data-dir "$odd" <"$TMP/lines" >"$OUT" 2>"$ERR" || RC=$?
check "pub into the full disk: exit 1" rc_is 1
# No note kept (a full disk may take its write): the words are the guess,
# which names the partition directory.
: >"$odd/u/0/flush.error"
RC=0
"$EVBUS" stat u --json --bus "$DBUS" --data-dir "$odd" >"$OUT" 2>"$ERR" || RC=$?
check "stat --json: exit 1" rc_is 1
check "stat --json: the partition with its flush error" eval "python3 -c 'import json,sys; p=json.loads(open(sys.argv[1]).readline())[\"topics\"][0][\"partitions\"][0]; sys.exit(0 if p[\"flush_error\"] < 0 and p[\"flush_error_text\"] else 1)' \"\$OUT\""
end

begin "a durable create refused by a read-only data directory leaves the bus free to use another"
# A cold attack found the failed create had recorded the read-only
# directory as the bus's, so every later create with a good one failed.
umount "$DATA"
mount -t tmpfs -o size=2m,mode=0755,ro tmpfs "$DATA"
rm -rf "$DBUS"
drun create r --durability sync --ring-bytes 64K --segment-bytes 1M
check "create into a read-only data directory: exit 1" rc_is 1
check "create: one line" err_one_line
check "create: says read-only" err_has "read-only"
check "no data directory recorded" test ! -e "$DBUS/data_dir"
good="$TMP/good-data"
RC=0
"$EVBUS" create r --bus "$DBUS" --data-dir "$good" --durability sync --ring-bytes 64K \
    --segment-bytes 1M >"$OUT" 2>"$ERR" || RC=$?
check "create with a writable data directory then: exit 0" rc_is 0
check "the writable one recorded" eval '[[ "$(cat "$DBUS/data_dir")" == "$(realpath "$good")" ]]'
umount "$DATA"
mount -t tmpfs -o size=2m,mode=0755 tmpfs "$DATA"
end

finish
