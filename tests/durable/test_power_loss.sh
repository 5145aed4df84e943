#!/usr/bin/env bash
# test_power_loss.sh - the promise of a synchronous acknowledgement
# (EVB_MSG_SYNC, evb_producer_sync() returning 0) against a power cut: the
# event is on disk once the processes AND the page cache are gone, not
# only after a process crash.
#
# The data directory is an ext4 file system on a loop device (the disk)
# whose backing file is opened with direct I/O, so the file holds exactly
# what ext4 has sent down: pages it still holds dirty are not in it. That
# file lives on a second, small ext4 (the "lower" one, on a loop device of
# its own). Producers publish with synchronous acknowledgements and report
# each one as they get it (power_loss.c). At a random moment the lower file
# system is frozen: from that instant no write reaches the disk, those in
# flight included, which a SIGKILL alone would not stop (a killed
# process's running fdatasync still finishes). The disk is copied, the
# acknowledgements so far taken, the producers killed, the lower file
# system thawed. The copy is the disk as a power cut would have left it:
# it is attached to a third loop device and mounted (ext4 replays its
# journal), a fresh bus directory is opened over it as after a reboot
# (tmpfs is gone too), and the partition is read back: every acknowledged
# event there, intact, in order, and nothing the producers did not write.
#
# Nothing but the producers writes to the disk in a round: mkfs
# initialises inode tables and journal at once (no lazy init thread), the
# journal's timed commit is set past the test (commit=600), and the kernel
# writes back no page dirtied less than vm.dirty_expire_centisecs ago (30 s
# by default; a round lasts under a second; the value is printed, with a
# note when it is short enough to hide a missing fdatasync). The copy
# models a disk without a volatile write cache, or one whose cache
# survives the cut: it catches an acknowledgement given before the data
# and the metadata to find it were written and synced, not a device that
# drops what it confirmed.
#
# Rounds: one sync producer, one async producer with evb_producer_sync(),
# and four sync producers in separate processes (group commit: a follower
# released by another's fdatasync must be covered by it). Each round also
# picks a flusher mode: io_uring through the page cache, plain pwrite and
# fdatasync (EVBUS_FLUSH_URING=0), or O_DIRECT (EVBUS_FLUSH_DIRECT=1,
# async only). EVB_TEST_POWER_ROUNDS sets the rounds per variant (10).
#
# Needs root, loop devices, losetup, mkfs.ext4 and a freezable ext4;
# skipped (exit 77) without, with one line saying why.
#
# Usage: test_power_loss.sh PATH/TO/power_loss
set -euo pipefail

HELPER=${1:?usage: test_power_loss.sh PATH/TO/power_loss}
ROUNDS=${EVB_TEST_POWER_ROUNDS:-10}

skip() {
    echo "power_loss: skipped: $*"
    exit 77
}
[[ $(id -u) -eq 0 ]] || skip "needs root (loop devices, mount)"
for tool in losetup mkfs.ext4 mount umount mountpoint fsfreeze; do
    command -v "$tool" >/dev/null || skip "no $tool (packages mount, e2fsprogs, util-linux)"
done
[[ -e /dev/loop-control ]] || skip "no /dev/loop-control (loop module not loaded)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/evbus-power.XXXXXX")
SHM=$(mktemp -d /dev/shm/evbus-power.XXXXXX)
LOWER_IMG="$WORK/lower.img" # the file system the disk's backing file is on
LOWER="$WORK/lower"
IMG="$LOWER/disk.img"       # the disk the producers write through
COPY="$WORK/cut.img"        # the same disk as the power cut left it
MNT="$WORK/live"
MNT2="$WORK/after"
mkdir "$LOWER" "$MNT" "$MNT2"
LOOP_LOWER=
LOOP=
LOOP2=
HELPER_PID=

cleanup() {
    local rc=$?
    set +e # every step is tried, whatever the one before did
    # Thawed first: anything else would wait on it. The helper's
    # producers die with it (PR_SET_PDEATHSIG).
    mountpoint -q "$LOWER" && fsfreeze -u "$LOWER" 2>/dev/null
    if [[ -n "$HELPER_PID" ]]; then kill -9 "$HELPER_PID" 2>/dev/null || true; fi
    mountpoint -q "$MNT2" && { umount "$MNT2" || umount -l "$MNT2"; }
    mountpoint -q "$MNT" && { umount "$MNT" || umount -l "$MNT"; }
    if [[ -n "$LOOP2" ]]; then losetup -d "$LOOP2" || true; fi
    if [[ -n "$LOOP" ]]; then losetup -d "$LOOP" || true; fi
    mountpoint -q "$LOWER" && { umount "$LOWER" || umount -l "$LOWER"; }
    if [[ -n "$LOOP_LOWER" ]]; then losetup -d "$LOOP_LOWER" || true; fi
    rm -rf "$WORK" "$SHM"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

new_fs() {
    mkfs.ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 "$1" >/dev/null
}

truncate -s 64M "$LOWER_IMG"
LOOP_LOWER=$(losetup -f --show "$LOWER_IMG" 2>/dev/null) || skip "losetup cannot attach a loop device here"
new_fs "$LOOP_LOWER" || skip "mkfs.ext4 fails on $LOOP_LOWER"
mount "$LOOP_LOWER" "$LOWER" || skip "cannot mount ext4 from $LOOP_LOWER"
fsfreeze -f "$LOWER" 2>/dev/null || skip "cannot freeze an ext4 file system here"
fsfreeze -u "$LOWER"
truncate -s 32M "$IMG"
LOOP=$(losetup -f --show --direct-io=on "$IMG" 2>/dev/null) || skip "losetup cannot attach a second loop device"
dio=$(cat "/sys/block/${LOOP#/dev/}/loop/dio" 2>/dev/null || echo 0)
[[ "$dio" == 1 ]] || echo "power_loss: note: $LOOP has no direct I/O to its backing file; the freeze still stops its writes"
expire=$(cat /proc/sys/vm/dirty_expire_centisecs)
echo "power_loss: vm.dirty_expire_centisecs=$expire, vm.dirty_writeback_centisecs=$(cat /proc/sys/vm/dirty_writeback_centisecs)"
# Writeback of pages older than this could put unsynced events on the disk
# by itself within a round, and hide an acknowledgement given too early.
((expire >= 500)) || echo "power_loss: note: dirty pages expire after ${expire}0 ms: a missing fdatasync may go unseen"

fresh_fs() {
    mountpoint -q "$MNT" && umount "$MNT"
    new_fs "$LOOP" || skip "mkfs.ext4 fails on $LOOP"
    mount -o commit=600 "$LOOP" "$MNT" || skip "cannot mount ext4 from $LOOP"
}

failed=0
round=0
# one_round NAME DURABILITY PRODUCERS
one_round() {
    local name=$1 dur=$2 np=$3
    local modes=(uring plain)
    [[ "$dur" == async ]] && modes+=(direct)
    local mode=${modes[round % ${#modes[@]}]}
    local cut_ms=$((20 + RANDOM % 400))
    local env=()
    case "$mode" in
    plain) env=(EVBUS_FLUSH_URING=0) ;;
    direct) env=(EVBUS_FLUSH_DIRECT=1) ;;
    esac
    round=$((round + 1))
    fresh_fs
    local bus="$SHM/bus$round" bus2="$SHM/after$round" acks="$WORK/acks$round"
    local rc=0
    env "${env[@]}" "$HELPER" run "$bus" "$MNT/data" t "$dur" "$np" "$cut_ms" \
        "$LOWER" "$IMG" "$COPY" "$acks" &
    HELPER_PID=$!
    wait "$HELPER_PID" || rc=$?
    HELPER_PID=
    if ((rc)); then
        echo "power_loss: round $round ($name, $mode): the producers' run failed ($rc)"
        exit 1
    fi
    LOOP2=$(losetup -f --show "$COPY")
    if ! mount "$LOOP2" "$MNT2"; then
        echo "power_loss: round $round ($name, $mode): the disk the cut left does not mount"
        exit 1
    fi
    local out
    rc=0
    out=$("$HELPER" check "$bus2" "$MNT2/data" t "$np" "$acks" 2>&1) || rc=$?
    umount "$MNT2"
    losetup -d "$LOOP2"
    LOOP2=
    rm -f "$COPY"
    rm -rf "$bus" "$bus2"
    local sum
    sum=$(echo "$out" | awk '/acked/ {a += $4; d += $7} /mark/ {m = $NF} END {printf "acked %d, on disk %d, mark %s", a, d, m}')
    echo "round $round: $name, flusher $mode, cut after ${cut_ms} ms: $sum"
    if ((rc)); then
        echo "$out" | sed 's/^/    /'
        echo "power_loss: round $round ($name, $mode): FAILED"
        failed=$((failed + 1))
    fi
}

start=$(date +%s%N)
for ((i = 0; i < ROUNDS; i++)); do one_round "1 sync producer" sync 1; done
for ((i = 0; i < ROUNDS; i++)); do one_round "1 async producer, evb_producer_sync" async 1; done
for ((i = 0; i < ROUNDS; i++)); do one_round "4 sync producers (group commit)" sync 4; done
echo "power_loss: $round rounds in $((($(date +%s%N) - start) / 1000000)) ms, $failed failed"
((failed == 0))
