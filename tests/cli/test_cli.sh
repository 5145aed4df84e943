#!/usr/bin/env bash
# test_cli.sh - end-to-end checks of the evbus command line: topics, pub,
# tail, stat, and durable topics through a reboot (lib.sh holds the
# helpers; test_cli_usage.sh the checks of how the commands are invoked).
#
# Usage: test_cli.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---- tests -----------------------------------------------------------------

test_help() {
    begin "help and usage exit codes"
    RC=0; "$EVBUS" --help >"$OUT" 2>"$ERR" || RC=$?
    check "evbus --help exits 0" rc_is 0
    check "evbus --help documents exit codes" out_has "usage error"
    check "evbus --help documents --data-dir" out_has "--data-dir DIR"
    check "evbus --help documents EVBUS_DATA_DIR" out_has 'EVBUS_DATA_DIR'
    # Where a named bus lives for root and for everyone else (a cold attack
    # found only root's place named).
    check "evbus --help names root's bus place" out_has '/dev/shm/evbus/NAME'
    check "evbus --help names other users' bus place" out_has '/dev/shm/evbus-UID/NAME'
    # What a cold attack found missing from the help.
    run tail --help
    check "tail --help: --from only for a new group" out_has "for a new group only"
    check "tail --help: tail never nacks or rejects" out_has "never nacked or rejected"
    run dlq --help
    check "dlq --help: the unknown status" out_has '`unknown` for every event'
    for cmd in create list info delete pub tail stat dump flushd; do
        run "$cmd" --help
        check "$cmd --help exits 0" rc_is 0
        check "$cmd --help prints usage" out_has "usage: evbus $cmd"
        check "$cmd --help documents --data-dir" out_has 'EVBUS_DATA_DIR'
    done
    RC=0; "$EVBUS" frobnicate >"$OUT" 2>"$ERR" || RC=$?
    check "unknown command exits 2" rc_is 2
    run list --no-such-option
    check "unknown option exits 2" rc_is 2
    check "unknown option: one stderr line" err_one_line
    run create
    check "missing TOPIC exits 2" rc_is 2
    end
}

test_topic_round_trip() {
    begin "create, list, info, delete round trip"
    run create rt --partitions 3 --ring-bytes 64K --max-event-bytes 1K
    check "create exits 0" rc_is 0
    run create rt
    check "creating it again fails" rc_is 1
    check "EEXIST: one stderr line" err_one_line
    run list
    check "list shows the topic" out_has '^rt$'
    run list --json
    check "list --json is an array with the topic" \
        py 'import json,sys; a=json.load(sys.stdin); assert isinstance(a,list) and "rt" in a'
    run info rt
    check "info exits 0" rc_is 0
    check "info shows partitions" out_has 'partitions *3'
    run info rt --json
    check "info --json has config and 3 partitions" py '
import json,sys
o=json.load(sys.stdin)
assert o["name"]=="rt", o
assert o["config"]["partitions"]==3 and o["config"]["ring_bytes"]==65536, o
assert o["config"]["max_event_bytes"]==1024, o
assert [p["partition"] for p in o["partitions"]]==[0,1,2], o
assert all(p["tail_offset"]==0 for p in o["partitions"]), o'
    RC=0; EVBUS_BUS="$BUS" "$EVBUS" list >"$OUT" 2>"$ERR" || RC=$?
    check "EVBUS_BUS selects the bus without --bus" out_has '^rt$'
    run delete rt
    check "delete exits 0" rc_is 0
    run list
    check "list no longer shows it" eval '! grep -q "^rt$" "$OUT"'
    run info rt
    check "info of a deleted topic exits 1" rc_is 1
    end
}

test_pub_args_tail() {
    begin "pub from arguments, tail --from earliest"
    run create args
    run pub args one "two words" three
    check "pub exits 0" rc_is 0
    check "pub prints nothing" out_empty
    run tail args --from earliest
    check "tail exits 0" rc_is 0
    check "tail prints the values in order" out_is $'0:0 one\n0:1 two words\n0:2 three'
    run tail args --from 1 --count 1
    check "--from OFFSET and --count" out_is $'0:1 two words'
    end
}

test_pub_stdin_tail() {
    begin "pub 10000 lines from stdin, tail returns them in order"
    run create lines
    seq 1 10000 >"$TMP/seq"
    run_in "$TMP/seq" pub lines --verbose
    check "pub exits 0" rc_is 0
    check "--verbose reports the count" err_has "10000 events"
    run tail lines --from earliest
    check "tail exits 0" rc_is 0
    check "10000 lines out" eval '[[ $(wc -l <"$OUT") -eq 10000 ]]'
    check "values are the input lines in order" eval 'cut -d" " -f2- "$OUT" | cmp -s - "$TMP/seq"'
    check "offsets are 0..9999" eval 'cut -d" " -f1 "$OUT" | cmp -s - <(seq 0 9999 | sed "s/^/0:/")'
    end
}

test_escaping() {
    begin "non-printable bytes are escaped"
    run create esc
    printf 'tab\there\\back\001bell\n' >"$TMP/esc"
    run_in "$TMP/esc" pub esc
    run pub esc $'two\nlines' 'héllo'
    run tail esc --from earliest
    check "escaped text" out_is '0:0 tab\there\\back\x01bell
0:1 two\nlines
0:2 héllo'
    end
}

test_json() {
    begin "tail --json"
    run create js --partitions 2
    run pub js --key k1 --partition 1 hello
    printf 'bin\001\000x\n' >"$TMP/bin"
    run_in "$TMP/bin" pub js --partition 0 --type 7
    run tail js --json --from earliest
    check "tail --json exits 0" rc_is 0
    check "every line is an object with every field" py '
import json,sys,base64
evs=[json.loads(l) for l in sys.stdin]
assert len(evs)==2, evs
fields={"partition","offset","position","timestamp_ns","producer_id","producer_seq",
        "type","key","lost_events","lost_bytes"}
for e in evs:
    assert fields <= set(e), e
by={e["partition"]:e for e in evs}
assert by[1]["value"]=="hello" and by[1]["key"]=="k1" and by[1]["offset"]==0, by[1]
assert by[0]["type"]==7 and by[0]["key"] is None, by[0]
assert "value" not in by[0], by[0]
assert base64.b64decode(by[0]["value_b64"])==b"bin\x01\x00x", by[0]
assert by[1]["timestamp_ns"]>0'
    end
}

test_named_consumer() {
    begin "named consumer commits and resumes"
    run create named
    run pub named a b c
    run tail named --name reader1
    check "first tail prints all three" out_is $'0:0 a\n0:1 b\n0:2 c'
    run tail named --name reader1
    check "second tail exits 0" rc_is 0
    check "second tail prints nothing new" out_empty
    run pub named d
    run tail named --name reader1
    check "third tail prints only the new event" out_is $'0:3 d'
    run tail named --name reader2 --count 1
    check "another name starts from the earliest" out_is $'0:0 a'
    run tail named --name reader2
    check "--count commits exactly what was printed" out_is $'0:1 b\n0:2 c\n0:3 d'
    end
}

test_named_tail_killed_replays_little() {
    begin "a named tail -f killed under load replays at most one write of output"
    # A ring that holds every event: nothing is lost to laps, so where the
    # fresh tail starts is only what was committed.
    run create rep --ring-bytes 8M
    # The reader drains tail's output slowly while a publisher fills the
    # topic, so tail never catches up;
    # after SIGKILL it drains what tail wrote, then a fresh tail with the
    # same name must resume at most one write (64 KiB of lines) earlier.
    python3 - "$EVBUS" "$BUS" "$TMP/rep.in" >"$TMP/rep.out" 2>"$TMP/rep.err" <<'EOF'
import json, os, signal, subprocess, sys, time
evbus, bus = sys.argv[1], sys.argv[2]
tail = subprocess.Popen([evbus, "tail", "rep", "--bus", bus, "--name", "r", "-f",
                         "--from", "earliest"], stdout=subprocess.PIPE)
deadline = time.time() + 10
while time.time() < deadline:
    st = subprocess.run([evbus, "stat", "rep", "--bus", bus, "--json"],
                        capture_output=True, text=True)
    if st.returncode == 0 and json.loads(st.stdout)["topics"][0]["partitions"][0]["readers"]:
        break
    time.sleep(0.05)
# From a file: a pipe written from here would block while pub waits for
# tail, which waits for us.
with open(sys.argv[3], "wb") as f:
    f.write(b"".join(b"%d\n" % i for i in range(100000)))
pub = subprocess.Popen([evbus, "pub", "rep", "--bus", bus], stdin=open(sys.argv[3], "rb"),
                       stdout=subprocess.DEVNULL)
fd = tail.stdout.fileno()
data = b""
while data.count(b"\n") < 30000:
    chunk = os.read(fd, 4096)
    if not chunk:
        break
    data += chunk
    time.sleep(0.001)
tail.send_signal(signal.SIGKILL)
tail.wait()
while True:
    chunk = os.read(fd, 65536)
    if not chunk:
        break
    data += chunk
pub.wait()
lines = [l for l in data.split(b"\n")[:-1]]
print(int(lines[-1].split(b" ")[0].split(b":")[1]))
EOF
    local last
    last=$(cat "$TMP/rep.out")
    run tail rep --name r --count 1
    local first
    first=$(sed 's/^0:\([0-9]*\) .*/\1/' "$OUT")
    echo "  last drained $last, resumed at $first" >&2
    check "no gap: resumes at or before the event after the last one drained" \
        eval '((first <= last + 1))'
    # 64 KiB of lines of at least 9 bytes ("0:N N\n" with N >= 1000).
    check "bounded replay" eval '((last + 1 - first <= 7300))'
    end
}

test_follow() {
    begin "tail -f follows and exits 0 on SIGINT"
    run create fol
    "$EVBUS" tail fol --bus "$BUS" -f >"$TMP/follow" 2>"$TMP/follow.err" &
    BG_PID=$!
    # A follower starts at the tail: publish until it has seen an event, so
    # the check does not depend on how fast it attached.
    local seen=0 i
    for i in $(seq 1 100); do
        "$EVBUS" pub fol --bus "$BUS" "event $i" || true
        if wait_for 1 grep -q "event" "$TMP/follow"; then seen=1; break; fi
    done
    check "follower printed a published event" eval '((seen))'
    kill -INT "$BG_PID"
    wait_bg 20
    check "SIGINT exits 0" rc_is 0
    end
}

# readers_attached TOPIC: the topic's partition 0 has a reader.
readers_attached() {
    "$EVBUS" stat "$1" --bus "$BUS" --json 2>/dev/null | python3 -c '
import json,sys
sys.exit(0 if json.load(sys.stdin)["topics"][0]["partitions"][0]["readers"] else 1)'
}

test_lost_events() {
    begin "a lapped subscriber reports lost events on stderr"
    run create lap --ring-bytes 64K --max-event-bytes 1K
    # Lapping by construction: the follower writes into a FIFO nobody reads,
    # so it blocks once the pipe buffer (64 KiB, ~5000 lines) is full while
    # 20000 events go through a ring that holds ~1000.
    mkfifo "$TMP/fifo"
    exec 3<>"$TMP/fifo"
    "$EVBUS" tail lap --bus "$BUS" -f --lossy >"$TMP/fifo" 2>"$TMP/lap.err" 3<&- &
    BG_PID=$!
    check "subscriber attached" wait_for 10 readers_attached lap
    seq 1 20000 | "$EVBUS" pub lap --bus "$BUS" || true
    cat <&3 >/dev/null &
    local drain=$!
    check "loss reported" wait_for 10 grep -q "lost" "$TMP/lap.err"
    check "loss line format" grep -Eq '^evbus tail: lost [0-9]+ events before 0:[0-9]+$' "$TMP/lap.err"
    kill -INT "$BG_PID"
    wait_bg 10
    kill "$drain" 2>/dev/null || true
    exec 3<&-
    check "lossy follower exits 0" rc_is 0
    end
}

test_damaged_oldest_frame() {
    begin "tail of a ring whose oldest frame is damaged fails, naming it"
    run create dmg --partitions 2 --ring-bytes 64K
    seq 3000 | "$EVBUS" pub dmg --bus "$BUS" >/dev/null
    # The oldest frame of partition 0 sits at the start of the ring's data
    # (20 KiB into the file): 0xff over its stamp and offset.
    python3 -c "
import sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(20480)
    f.write(b'\xff' * 16)" "$BUS/dmg/0.ring"
    # The library tells damage from a hole after stall_ms (5 s here).
    run tail dmg --partition 0
    check "exits non-zero" rc_nonzero
    check "prints nothing" out_empty
    check "names partition and position" err_has "partition 0: stamp 0xffffffffffffffff at position 65536"
    check "one line" err_one_line
    end
}

# blocked_in_write PID: the process sleeps in a write to a full pipe.
blocked_in_write() {
    grep -q pipe_write "/proc/$1/wchan" 2>/dev/null
}

# publish_until_blocked TOPIC PID: publish a batch, then say whether PID
# sleeps in write(); a lossy reader prints only what it keeps up with.
publish_until_blocked() {
    seq 1 5000 | "$EVBUS" pub "$1" --bus "$BUS" >/dev/null 2>&1 || true
    blocked_in_write "$2"
}

test_stop_while_output_blocked() {
    begin "Ctrl-C while tail's output pipe is full ends it quietly"
    run create blk --ring-bytes 64K --max-event-bytes 1K
    # A FIFO held open (by this shell only) but never read: tail fills the
    # pipe, then sleeps in write(), where SIGINT arrives as EINTR or, after
    # part of a write went through, as a short count.
    mkfifo "$TMP/full"
    exec 4<>"$TMP/full"
    "$EVBUS" tail blk --bus "$BUS" -f --lossy >"$TMP/full" 2>"$TMP/blk.err" 4<&- &
    BG_PID=$!
    check "subscriber attached" wait_for 10 readers_attached blk
    check "tail blocked writing" wait_for 20 publish_until_blocked blk "$BG_PID"
    kill -INT "$BG_PID"
    wait_bg 10
    exec 4<&-
    check "interrupted follower exits 0" rc_is 0
    check "no write error reported" not_grep "writing output" "$TMP/blk.err"
    end
}

test_stat() {
    begin "stat text and --json"
    run create st --partitions 2
    run pub st x y z
    run stat st
    check "stat exits 0" rc_is 0
    check "stat names the topic" out_has "topic st"
    run stat --json
    check "stat --json parses and counts events" py '
import json,sys
o=json.load(sys.stdin)
t=[t for t in o["topics"] if t["name"]=="st"][0]
assert len(t["partitions"])==2, t
assert sum(p["tail_offset"] for p in t["partitions"])==3, t
for p in t["partitions"]:
    assert {"published","aborted","readers","tail_position"} <= set(p), p'
    run stat nosuch
    check "stat of an unknown topic exits 1" rc_is 1
    run stat --watch 0
    check "--watch 0 is a usage error" rc_is 2
    end
}

test_errors() {
    begin "errors: unknown topic, bad numbers, oversize events"
    run tail nosuch
    check "tail of an unknown topic exits 1" rc_is 1
    check "unknown topic: one stderr line" err_one_line
    run pub nosuch value
    check "pub to an unknown topic exits 1" rc_is 1
    check "pub unknown topic: one stderr line" err_one_line
    local bad
    for bad in abc -1 +1 " 1" 1x 99999999999999999999999 "" 0 257; do
        run create badnum --partitions "$bad"
        check "--partitions '$bad' exits 2" rc_is 2
        check "--partitions '$bad': one stderr line" err_one_line
    done
    run create badsize --ring-bytes 4X
    check "bad size suffix exits 2" rc_is 2
    run create badsize --ring-bytes 99999999999G
    check "size overflow exits 2" rc_is 2
    run create small --max-event-bytes 1K --ring-bytes 64K
    check "create with a size suffix" rc_is 0
    run tail small --from soon
    check "bad --from exits 2" rc_is 2
    run pub small "$(head -c 2000 /dev/zero | tr '\0' x)"
    check "oversize value fails" rc_nonzero
    check "oversize value: one stderr line" err_one_line
    check "oversize message gives the size" err_has "2000 bytes"
    { echo ok; head -c 5000 /dev/zero | tr '\0' y; echo; echo never; } >"$TMP/big"
    run_in "$TMP/big" pub small
    check "oversize line from stdin fails" rc_nonzero
    check "oversize line: names line 2" err_has "line 2"
    run tail small --from earliest
    check "lines before the oversize one were published" out_is '0:0 ok'
    end
}


# ---- durable topics --------------------------------------------------------

test_durable_round_trip() {
    begin "durable topic: info, then read back from disk after a reboot"
    drun create dur --durability async --ring-bytes 64K --segment-bytes 256K
    check "create --durability async exits 0" rc_is 0
    check "--data-dir holds the topic (over EVBUS_DATA_DIR)" test -f "$DATA/dur/topic.conf"
    seq 1 500 >"$TMP/first"
    seq 501 1000 >"$TMP/second"
    seq 1 1000 >"$TMP/all"
    drun_in "$TMP/first" pub dur
    # A time after every event of the first pub and before any of the second.
    local between
    between=$(date +%s.%N)
    drun_in "$TMP/second" pub dur
    check "pub exits 0" rc_is 0
    drun info dur
    check "info exits 0" rc_is 0
    check "info shows durability async" out_has '^durability  *async'
    check "info shows the segment size" out_has '^segment bytes  *256 KiB'
    check "info has the on-disk table" out_has 'recovered_dropped'
    drun info dur --json
    check "info --json: async, >= 1 segment, all flushed" py '
import json,sys
o=json.load(sys.stdin)
assert o["config"]["durability"]=="async" and o["config"]["segment_bytes"]==262144, o
p=o["partitions"][0]
assert p["tail_offset"]==1000 and p["segments"]>=1 and p["disk_bytes"]>0, p
assert p["flushed_position"]==p["tail_position"], p
assert p["log_start_offset"]==0 and p["flush_error"]==0, p'
    check "info --json names the data directory" eval '[[ "$(json_field "o[\"data_dir\"]")" == "$DATA/dur" ]]'
    local tail_pos
    tail_pos=$(json_field 'o["partitions"][0]["tail_position"]')
    drun stat dur --json
    check "stat --json has the disk lag of a durable partition" py '
import json,sys
p=json.load(sys.stdin)["topics"][0]["partitions"][0]
assert p["unsynced_bytes"]==p["tail_position"]-p["durable_position"], p
assert "unflushed_bytes" in p, p'
    drun stat dur
    check "stat shows the unsynced column" out_has 'unsynced'

    reboot
    drun tail dur --from earliest
    check "tail after the reboot exits 0" rc_is 0
    check "tail --from earliest prints all 1000 from disk" eval 'cut -d" " -f2- "$OUT" | cmp -s - "$TMP/all"'
    check "offsets are 0..999" eval 'cut -d" " -f1 "$OUT" | cmp -s - <(seq 0 999 | sed "s/^/0:/")'
    drun tail dur --from 250 --count 2
    check "--from OFFSET reads from disk" out_is $'0:250 251\n0:251 252'
    drun tail dur --from-time "@$between" --count 1
    check "--from-time @UNIX starts at the second pub" out_is '0:500 501'
    drun tail dur --from-time "$(TZ=UTC date -d "@$between" +%Y-%m-%dT%H:%M:%S.%NZ)" --count 1
    check "--from-time RFC 3339 UTC" out_is '0:500 501'
    drun tail dur --from-time "$(TZ=UTC-2 date -d "@$between" +%Y-%m-%dT%H:%M:%S.%N%:z)" --count 1
    check "--from-time RFC 3339 with +02:00" out_is '0:500 501'
    drun tail dur --from-time -1d
    check "--from-time -1d prints all 1000" eval '[[ $(wc -l <"$OUT") -eq 1000 ]]'
    drun tail dur --from-time "@$(( ${between%.*} + 3600 ))"
    check "--from-time an hour ahead prints nothing" out_empty

    drun dump dur
    check "dump TOPIC exits 0" rc_is 0
    check "dump prints 1000 data frames" eval '[[ $(grep -c "^pos=[0-9]* offset=[0-9]* data " "$OUT") -eq 1000 ]]'
    check "dump frames carry time, producer, crc and ok" \
        grep -Eq '^pos=0 offset=0 data time=[0-9-]{10}T[0-9:]{8}\.[0-9]{9}Z producer=[0-9]+/0 size=1 crc=0x[0-9a-f]{8} ok$' "$OUT"
    # The flusher may have made the next segment already; its file ends at
    # its base. The log's end is in the segment that holds the tail.
    check "dump ends where the log ends, on zero bytes" \
        grep -qx "pos=$tail_pos end why=\"zero bytes\" trailing_bytes=0" "$OUT"
    drun dump dur --values --json
    check "dump --json --values: one object per frame" py '
import json,sys
fs=[json.loads(l) for l in sys.stdin]
data=[f for f in fs if f["kind"]=="data"]
assert [f["value"] for f in data]==[str(i) for i in range(1,1001)], data[:3]
assert [f["offset"] for f in data]==list(range(1000))
assert all(f["ok"] and f["segment"].endswith(".log") for f in data)
assert fs[-1]["kind"]=="end" and fs[-1]["why"]=="zero bytes", fs[-1]
assert sum(f["kind"]=="end" for f in fs)==sum(1 for s in {f["segment"] for f in fs}), fs[-1]'
    end
}

test_durable_torn_tail() {
    begin "garbage after the log end: dump shows it, the rebuild cuts it"
    drun create torn --durability sync --ring-bytes 64K --segment-bytes 256K
    seq 1 1000 >"$TMP/all"
    drun_in "$TMP/all" pub torn
    drun info torn --json
    local end_pos seg base
    end_pos=$(json_field 'o["partitions"][0]["tail_position"]')
    drun dump torn --json
    # The segment whose valid log ends at the tail (the flusher may have
    # made the next, empty one already).
    seg=$(python3 -c '
import json,sys
for l in sys.stdin:
    f=json.loads(l)
    if f["kind"]=="end" and f["position"]=='"$end_pos"':
        print(f["segment"])' <"$OUT")
    check "dump names the segment file holding the end" test -f "$seg"
    if [[ -f "$seg" ]]; then
        # 100 non-zero bytes where the next frame would start: a torn write.
        base=$(basename "$seg" .log)
        printf '\xa5%.0s' $(seq 100) |
            dd of="$seg" bs=1 seek=$((end_pos - 10#$base)) conv=notrunc status=none
    fi
    RC=0; "$EVBUS" dump "$seg" >"$OUT" 2>"$ERR" || RC=$?
    check "dump SEGMENT_FILE exits 0" rc_is 0
    check "dump of the file shows the garbage after the end" \
        grep -Eq "^pos=$end_pos end why=\"[a-z ]+\" trailing_bytes=100\$" "$OUT"
    check "the garbage is not zero bytes" eval '! tail -1 "$OUT" | grep -q "zero bytes"'
    reboot
    drun info torn --json
    check "info after the rebuild: recovered_dropped is the garbage length" \
        py 'import json,sys; p=json.load(sys.stdin)["partitions"][0]; assert p["recovered_dropped"]==100, p'
    drun info torn
    check "info text shows recovered_dropped 100" out_has '^0  *[0-9]*  *[0-9.]* [KMG]*i*B  *[0-9]*  *100 '
    drun tail torn --from earliest
    check "tail still prints exactly the 1000 events" eval 'cut -d" " -f2- "$OUT" | cmp -s - "$TMP/all"'
    drun dump torn
    check "the cut tail is zero bytes again" \
        grep -qx "pos=$end_pos end why=\"zero bytes\" trailing_bytes=0" "$OUT"
    end
}

# log_start_moved TOPIC: retention has dropped partition 0's oldest segment.
log_start_moved() {
    "$EVBUS" info "$1" --bus "$DBUS" --data-dir "$DATA" --json 2>/dev/null | python3 -c '
import json,sys
sys.exit(0 if json.load(sys.stdin)["partitions"][0]["log_start_offset"]>0 else 1)'
}

test_durable_retention() {
    begin "flushd applies retention; --strict refuses a dropped offset; SIGTERM exits 0"
    drun create ret --durability async --ring-bytes 64K --segment-bytes 64K --retain-bytes 64K
    "$EVBUS" flushd --bus "$DBUS" --data-dir "$DATA" >"$TMP/flushd" 2>"$TMP/flushd.err" &
    BG_PID=$!
    check "flushd says what it flushes" \
        wait_for 10 grep -q "^flushing durable topics of $DBUS (data $DATA); Ctrl-C to stop$" "$TMP/flushd"
    seq 1 5000 >"$TMP/five"
    drun_in "$TMP/five" pub ret
    check "retention moved the log start" wait_for 20 log_start_moved ret
    drun info ret --json
    local start
    start=$(json_field 'o["partitions"][0]["log_start_offset"]')
    drun tail ret --from 0 --strict
    check "--strict --from 0 exits 1" rc_is 1
    check "--strict: one stderr line" err_one_line
    check "--strict prints nothing" out_empty
    drun tail ret --from 0 --count 1
    check "--from 0 lands on the log start" out_is "0:$start $((start + 1))"
    check "and reports the gap as lost" err_has "lost $start events"
    drun tail ret --from earliest --count 1
    check "--from earliest is the log start" out_is "0:$start $((start + 1))"
    drun tail ret --from 4999 --strict
    check "--strict with a retained offset works" out_is '0:4999 5000'
    kill -TERM "$BG_PID"
    wait_bg 20
    check "flushd exits 0 on SIGTERM" rc_is 0
    check "flushd printed no error" test ! -s "$TMP/flushd.err"
    end
}

log_start_still() { ! log_start_moved "$1"; }

test_durable_retain_cmd() {
    begin "retain applies a topic's retention with nobody using it"
    drun create aged --durability async --ring-bytes 64K --segment-bytes 64K --retain-ms 300ms
    seq 1 5000 >"$TMP/five"
    drun_in "$TMP/five" pub aged
    sleep 0.5
    check "nothing moved the log start yet" log_start_still aged
    drun retain aged
    check "retain exits 0" rc_is 0
    check "retain prints nothing" out_empty
    check "retain moved the log start" log_start_moved aged
    drun retain nope
    check "retain of a missing topic exits 1" rc_is 1
    check "with one stderr line" err_one_line
    drun retain
    check "retain without a topic exits 2" rc_is 2
    end
}

test_durable_errors() {
    begin "durable options and dump: bad input exits non-zero with one line"
    drun create bad --durability maybe
    check "--durability maybe exits 2" rc_is 2
    check "--durability maybe: one stderr line" err_one_line
    drun create bad --retain-ms 5m
    check "retention without durability exits 2" rc_is 2
    check "retention without durability: one stderr line" err_one_line
    drun create bad --durability async --retain-ms 5parsecs
    check "a bad duration exits 2" rc_is 2
    drun create bad --durability async --retain-cap-bytes 1G
    check "--retain-cap-bytes alone exits 2" rc_is 2
    drun create bad --durability async --ring-bytes 64K --segment-bytes 100K
    check "a segment size the library refuses exits 2" rc_is 2
    check "refused segment size: one stderr line" err_one_line
    drun create good --durability sync --ring-bytes 64K --segment-bytes 128K --retain-ms 7d \
        --retain-bytes 1M --retain-until-consumed --retain-cap-bytes 2M --flush-ms 1s
    check "every durable option together exits 0" rc_is 0
    drun info good --json
    check "the options reach the topic's config" py '
import json,sys
c=json.load(sys.stdin)["config"]
assert c["durability"]=="sync" and c["segment_bytes"]==131072, c
assert c["retain_ms"]==7*86400*1000 and c["retain_bytes"]==1<<20, c
assert c["retain_until_consumed"] and c["retain_cap_bytes"]==2<<20, c
assert c["flush_ms"]==1000, c'
    local t
    for t in yesterday-ish 2026-02-30T00:00:00Z 2026-11-24T21:00:00 @12x -5 1969-12-31T23:59:59Z; do
        drun tail good --from-time "$t"
        check "--from-time '$t' exits 2" rc_is 2
        check "--from-time '$t': one stderr line" err_one_line
    done
    drun tail good --strict
    check "--strict without an offset or time exits 2" rc_is 2
    drun tail good --from 1 --from-time -1m
    check "--from and --from-time together exit 2" rc_is 2
    printf 'not a segment\n' >"$TMP/00000000000000000000.log"
    RC=0; "$EVBUS" dump "$TMP/00000000000000000000.log" >"$OUT" 2>"$ERR" || RC=$?
    check "dump of a file outside a durable topic exits 1" rc_is 1
    check "dump of a non-segment: one stderr line" err_one_line
    check "dump of a non-segment prints nothing" out_empty
    RC=0; "$EVBUS" dump "$TMP/all" >"$OUT" 2>"$ERR" || RC=$?
    check "dump of a file not named like a segment exits 1" rc_is 1
    check "dump of a badly named file: one stderr line" err_one_line
    drun create plain
    drun dump plain
    check "dump of a topic that is not durable exits 1" rc_is 1
    check "not durable: one stderr line" err_one_line
    drun dump good --partition 1
    check "dump --partition out of range exits 2" rc_is 2
    RC=0
    # A bus of its own: $DBUS keeps its durable topics in $DATA.
    EVBUS_DATA_DIR="$TMP/envdata" "$EVBUS" create envdur --bus "$SHM/envbus" --durability async \
        --ring-bytes 64K --segment-bytes 64K >"$OUT" 2>"$ERR" || RC=$?
    check "EVBUS_DATA_DIR picks the data directory" test -f "$TMP/envdata/envdur/topic.conf"
    check "no test wrote to the default data directory" test ! -e "$EVBUS_DATA_DIR"
    end
}

test_help
test_topic_round_trip
test_pub_args_tail
test_pub_stdin_tail
test_escaping
test_json
test_named_consumer
test_named_tail_killed_replays_little
test_follow
test_lost_events
test_stop_while_output_blocked
test_damaged_oldest_frame
test_stat
test_errors
test_durable_round_trip
test_durable_torn_tail
test_durable_retention
test_durable_retain_cmd
test_durable_errors

finish
