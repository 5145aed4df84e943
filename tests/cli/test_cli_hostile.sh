#!/usr/bin/env bash
# test_cli_hostile.sh - the commands against files planted in a bus or data
# directory (issue 9, defects 4 and 14): a FIFO where a segment, index or
# topic.conf belongs must not hang any command, and a symlink where
# bus.meta or a cursor file belongs must not be written through. Each
# command runs under a deadline, so a hang is a failed check (exit 124),
# not a hung test. lib.sh holds the helpers; the library-level cases are
# tests/bus/test_hostile_files.c and tests/durable/test_hostile_disk.c.
#
# Usage: test_cli_hostile.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_hostile.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEADLINE=5
# trun CMD...: as run, killed after DEADLINE seconds (RC 124 then).
trun() {
    RC=0
    timeout -k 2 "$DEADLINE" "$EVBUS" "$1" --bus "$BUS" "${@:2}" >"$OUT" 2>"$ERR" || RC=$?
}
# tdrun CMD...: as drun, under the same deadline.
tdrun() {
    RC=0
    timeout -k 2 "$DEADLINE" "$EVBUS" "$1" --bus "$DBUS" --data-dir "$DATA" "${@:2}" \
        >"$OUT" 2>"$ERR" || RC=$?
}
not_hung() { [[ "$RC" -ne 124 && "$RC" -ne 137 ]]; }
refused() { [[ "$RC" -eq 1 ]] && err_has "wrong kind of file"; }
# A file outside every bus that symlinks point at; it must stay empty.
OUTSIDE="$TMP/outside"
: >"$OUTSIDE"
outside_empty() { [[ -f "$OUTSIDE" && ! -s "$OUTSIDE" ]]; }

# make_durable TOPIC: a durable topic whose ring (64 KiB) no longer holds
# its first events, in segments of 256 KiB: tail from the start reads the
# disk. FIRST_LOG and FIRST_IDX name its first segment and index.
make_durable() {
    drun create "$1" --durability sync --ring-bytes 64K --segment-bytes 256K
    seq 1 3000 | sed 's/$/ padding-padding-padding-padding-padding-padding-padding-padding/' \
        >"$TMP/lines"
    drun_in "$TMP/lines" pub "$1"
    FIRST_LOG="$DATA/$1/0/00000000000000000000.log"
    FIRST_IDX="$DATA/$1/0/00000000000000000000.idx"
    [[ -f "$FIRST_LOG" && -f "$FIRST_IDX" ]]
}
# drop_durable TOPIC: remove it by hand, planted file and all, so that no
# later command (which may restore every topic of the data directory)
# meets the plant.
drop_durable() { rm -rf "${DBUS:?}/$1" "${DATA:?}/$1"; }

test_segment_fifo() {
    begin "a segment replaced by a FIFO: tail, dump and list after a reboot end in time"
    check "setup: a durable topic on disk" make_durable d1
    rm -f "$FIRST_LOG"
    mkfifo "$FIRST_LOG"
    tdrun tail d1 --count 5
    check "tail does not hang" not_hung
    check "tail says a file is of the wrong kind" refused
    tdrun dump d1
    check "dump does not hang" not_hung
    check "dump is refused" refused
    check "dump names the FIFO" err_has "found a fifo"
    reboot
    tdrun list
    check "list after a reboot does not hang" not_hung
    tdrun info d1
    check "info after a reboot does not hang" not_hung
    drop_durable d1
    end
}

test_index_fifo() {
    begin "an index replaced by a FIFO: tail --from-time ends in time"
    check "setup: a durable topic on disk" make_durable d2
    rm -f "$FIRST_IDX"
    mkfifo "$FIRST_IDX"
    tdrun tail d2 --from-time -1d --count 3
    check "tail --from-time does not hang" not_hung
    drop_durable d2
    end
}

test_data_conf_fifo() {
    begin "the data directory's topic.conf as a FIFO: dump ends in time"
    check "setup: a durable topic on disk" make_durable d3
    rm -f "$DATA/d3/topic.conf"
    mkfifo "$DATA/d3/topic.conf"
    tdrun dump d3
    check "dump TOPIC does not hang" not_hung
    check "dump TOPIC is refused" refused
    RC=0
    timeout -k 2 "$DEADLINE" "$EVBUS" dump "$FIRST_LOG" >"$OUT" 2>"$ERR" || RC=$?
    check "dump SEGMENT_FILE does not hang" not_hung
    check "dump SEGMENT_FILE is refused" refused
    drop_durable d3
    end
}

test_bus_conf_fifo() {
    begin "the bus directory's topic.conf as a FIFO: info, tail, pub, stat end in time"
    run create t
    rm -f "$BUS/t/topic.conf"
    mkfifo "$BUS/t/topic.conf"
    for cmd in info tail stat; do
        trun "$cmd" t
        check "$cmd does not hang" not_hung
        check "$cmd is refused" refused
    done
    trun pub t one
    check "pub does not hang" not_hung
    check "pub is refused" refused
    rm -rf "${BUS:?}/t"
    end
}

test_bus_meta_symlink() {
    begin "bus.meta as a symlink to a file outside: refused, nothing written there"
    run create s
    rm -f "$BUS/bus.meta"
    ln -s "$OUTSIDE" "$BUS/bus.meta"
    trun list
    check "list is refused" refused
    check "list names the symlink" err_has "found a symlink"
    trun create s2
    check "create is refused" refused
    check "the target is still empty" outside_empty
    rm -f "$BUS/bus.meta"
    end
}

test_cursor_symlink() {
    begin "a cursor file as a symlink to a file outside: refused, nothing written there"
    run create c
    run pub c one two
    ln -s "$OUTSIDE" "$BUS/c/consumers/reader.cur"
    trun tail c --name reader
    check "tail --name is refused" refused
    check "the target is still empty" outside_empty
    rm -f "$BUS/c/consumers/reader.cur"
    trun tail c --name reader
    check "a regular cursor file works again" out_is $'0:0 one\n0:1 two'
    end
}

# poke FILE OFFSET VALUE: store the 8-byte little-endian VALUE at OFFSET of
# FILE, in place, as a hostile process with the ring mapped would.
poke() {
    python3 -c 'import sys, struct
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2], 0)); f.write(struct.pack("<Q", int(sys.argv[3], 0)))' "$@"
}

test_tail_moved_back() {
    begin "the ring's tail moved back below a named consumer's commit: tail says so"
    run create tb --ring-bytes 64K
    seq 1 20000 >"$TMP/lines"
    run_in "$TMP/lines" pub tb
    trun tail tb --name c --from earliest --count 100
    check "the consumer read and committed, several laps in" rc_is 0
    poke "$BUS/tb/0.ring" 0x80 0 # the tail's position word
    trun tail tb --name c
    check "tail ends in time" not_hung
    check "tail fails" rc_is 1
    check "in one line, naming the tail" err_has "past the tail"
    check "one line" err_one_line
    end
}

test_pub_names_damage() {
    begin "pub into a ring with a damaged word names the word, in one line"
    drun create fd --ring-bytes 64K --durability async
    seq 1 2000 >"$TMP/lines"
    drun_in "$TMP/lines" pub fd
    check "the first publish works" rc_is 0
    poke "$DBUS/fd/0.ring" 384 0x7000000000 # flushed, far past the tail
    drun_in "$TMP/lines" pub fd
    check "pub fails" rc_is 1
    check "naming the word and the tail" eval 'err_has "flushed 481036337152" && err_has "tail"'
    check "one line" err_one_line
    end
}

test_segment_fifo
test_index_fifo
test_data_conf_fifo
test_bus_conf_fifo
test_bus_meta_symlink
test_cursor_symlink
test_tail_moved_back
test_pub_names_damage

finish
