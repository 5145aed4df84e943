#!/usr/bin/env bash
# test_cli.sh - end-to-end checks of the evbus command line.
#
# Usage: test_cli.sh PATH/TO/evbus
#
# Every check runs against a private bus in a fresh temporary directory, so
# the tests neither see nor touch /dev/shm/evbus. Waiting checks poll a
# condition against a deadline instead of sleeping.
set -euo pipefail

EVBUS=${1:?usage: test_cli.sh PATH/TO/evbus}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/evbus-cli.XXXXXX")
BUS="$TMP/bus"
BG_PID=
cleanup() {
    if [[ -n "$BG_PID" ]]; then kill "$BG_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

PASSED=0
FAILED=0
CURRENT=

# ---- helpers ---------------------------------------------------------------

# run CMD...: run evbus CMD on the private bus; sets RC, OUT, ERR (files).
OUT="$TMP/out"
ERR="$TMP/err"
run() {
    RC=0
    "$EVBUS" "$1" --bus "$BUS" "${@:2}" >"$OUT" 2>"$ERR" || RC=$?
}
# run_in FILE CMD...: as run, with stdin from FILE.
run_in() {
    local input=$1
    shift
    RC=0
    "$EVBUS" "$1" --bus "$BUS" "${@:2}" <"$input" >"$OUT" 2>"$ERR" || RC=$?
}

begin() { CURRENT=$1; CASE_OK=1; }
check() {
    # check DESCRIPTION CONDITION...: evaluate the condition (a command).
    local what=$1
    shift
    if ! "$@"; then
        CASE_OK=0
        echo "  check failed: $what" >&2
        echo "  stdout: $(head -c 400 "$OUT")" >&2
        echo "  stderr: $(head -c 400 "$ERR")" >&2
    fi
}
end() {
    if ((CASE_OK)); then
        PASSED=$((PASSED + 1))
        echo "ok - $CURRENT"
    else
        FAILED=$((FAILED + 1))
        echo "not ok - $CURRENT"
    fi
}

rc_is() { [[ "$RC" -eq "$1" ]]; }
rc_nonzero() { [[ "$RC" -ne 0 ]]; }
out_is() { [[ "$(cat "$OUT")" == "$1" ]]; }
out_empty() { [[ ! -s "$OUT" ]]; }
out_has() { grep -q -- "$1" "$OUT"; }
err_has() { grep -qi -- "$1" "$ERR"; }
err_one_line() { [[ "$(wc -l <"$ERR")" -eq 1 ]] && grep -q '^evbus [a-z]*: ' "$ERR"; }
# py CODE: run python with stdout of the last command on stdin.
py() { python3 -c "$1" <"$OUT"; }

# wait_for SECONDS CMD...: poll CMD until it succeeds or the deadline passes.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

# ---- tests -----------------------------------------------------------------

test_help() {
    begin "help and usage exit codes"
    RC=0; "$EVBUS" --help >"$OUT" 2>"$ERR" || RC=$?
    check "evbus --help exits 0" rc_is 0
    check "evbus --help documents exit codes" out_has "usage error"
    for cmd in create list info delete pub tail stat; do
        run "$cmd" --help
        check "$cmd --help exits 0" rc_is 0
        check "$cmd --help prints usage" out_has "usage: evbus $cmd"
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
    RC=0; wait "$BG_PID" || RC=$?
    BG_PID=
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
    "$EVBUS" tail lap --bus "$BUS" -f --lossy >"$TMP/fifo" 2>"$TMP/lap.err" &
    BG_PID=$!
    check "subscriber attached" wait_for 10 readers_attached lap
    seq 1 20000 | "$EVBUS" pub lap --bus "$BUS" || true
    cat <&3 >/dev/null &
    local drain=$!
    check "loss reported" wait_for 10 grep -q "lost" "$TMP/lap.err"
    check "loss line format" grep -Eq '^evbus tail: lost [0-9]+ events before 0:[0-9]+$' "$TMP/lap.err"
    kill -INT "$BG_PID"
    RC=0; wait "$BG_PID" || RC=$?
    BG_PID=
    kill "$drain" 2>/dev/null || true
    exec 3<&-
    check "lossy follower exits 0" rc_is 0
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

test_help
test_topic_round_trip
test_pub_args_tail
test_pub_stdin_tail
test_escaping
test_json
test_named_consumer
test_follow
test_lost_events
test_stat
test_errors

echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
