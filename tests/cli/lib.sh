# lib.sh - what the evbus CLI test scripts share: a private bus and data
# directory per run, cleanup, running a command into OUT/ERR/RC, and the
# check/end bookkeeping. Sourced by test_cli*.sh once they have set EVBUS;
# the tests themselves live in those scripts.
#
# Every check runs against a private bus in a fresh temporary directory, so
# the tests neither see nor touch /dev/shm/evbus. Durable topics use a bus in
# a private directory under /dev/shm, which a test removes to play a reboot,
# and a data directory under $TMP. Waiting checks poll a condition against a
# deadline instead of sleeping.

TMP=$(mktemp -d "${TMPDIR:-/tmp}/evbus-cli.XXXXXX")
BUS="$TMP/bus"
SHM=$(mktemp -d /dev/shm/evbus-cli.XXXXXX)
DBUS="$SHM/bus"
DATA="$TMP/data"
# Commands without --data-dir must not read or write the user's default
# data directory (~/.local/share/evbus/...).
export EVBUS_DATA_DIR="$TMP/data-default"
BG_PID=
cleanup() {
    if [[ -n "$BG_PID" ]]; then kill "$BG_PID" 2>/dev/null || true; wait "$BG_PID" 2>/dev/null || true; fi
    rm -rf "$TMP" "$SHM"
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

# drun CMD...: as run, on the durable tests' bus and data directory.
drun() {
    RC=0
    "$EVBUS" "$1" --bus "$DBUS" --data-dir "$DATA" "${@:2}" >"$OUT" 2>"$ERR" || RC=$?
}
# drun_in FILE CMD...: as drun, with stdin from FILE.
drun_in() {
    local input=$1
    shift
    RC=0
    "$EVBUS" "$1" --bus "$DBUS" --data-dir "$DATA" "${@:2}" <"$input" >"$OUT" 2>"$ERR" || RC=$?
}
# reboot: remove the durable bus's tmpfs directory, as a reboot empties
# /dev/shm; the next command rebuilds its topics from the data directory.
# Nothing may have the bus open (no background process).
reboot() {
    [[ -z "$BG_PID" ]] || { echo "reboot with a process running" >&2; return 1; }
    rm -rf "$DBUS"
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
# wait_bg SECONDS: wait for $BG_PID to exit; RC is its status, or 124 if
# it had to be killed at the deadline. Clears BG_PID.
wait_bg() {
    local deadline=$((SECONDS + $1))
    # A zombie still answers kill -0: look at its state instead.
    while [[ -e /proc/$BG_PID ]] && ! grep -q '^[0-9]* (.*) Z' "/proc/$BG_PID/stat" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            kill -KILL "$BG_PID" 2>/dev/null || true
            wait "$BG_PID" 2>/dev/null || true
            RC=124
            BG_PID=
            return
        fi
        sleep 0.05
    done
    RC=0
    wait "$BG_PID" || RC=$?
    BG_PID=
}
not_grep() { ! grep -q -- "$1" "$2"; }
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

# json_field EXPR: evaluate EXPR (Python, `o` is the JSON of the last
# command's stdout) and print it.
json_field() { python3 -c "import json,sys; o=json.load(sys.stdin); print($1)" <"$OUT"; }

# finish: print the tally; the script's exit status says whether all passed.
finish() {
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}
