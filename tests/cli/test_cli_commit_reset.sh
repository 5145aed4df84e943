#!/usr/bin/env bash
# test_cli_commit_reset.sh - readers that committed past what was durable
# (a sync topic whose flusher, `evbus flushd`, is stopped: the events are
# published, not on disk) before a "reboot": the rebuilt log ends before
# those events and hands their offsets to new ones. A named consumer, a
# group and a queue group each read the new events (none skipped), and
# `evbus info` counts the commits set back. lib.sh holds the helpers.
#
# Usage: test_cli_commit_reset.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_commit_reset.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# readers_read WORDS...: each of the three readers reads exactly WORDS.
readers_read() {
    local want=$1 r
    for r in "--name c1" "--group g1" "--group q1 --queue"; do
        # shellcheck disable=SC2086
        drun tail t $r
        [[ "$RC" -eq 0 && "$(awk '{print $2}' "$OUT" | tr '\n' ' ')" == "$want" ]] || {
            echo "  tail $r: rc $RC, read: $(tr '\n' ' ' <"$OUT") $(cat "$ERR")" >&2
            return 1
        }
    done
}

test_commits_past_the_log_end() {
    begin "commits past what was durable are set back at the rebuild: no new event skipped"
    drun create t --durability sync --ring-bytes 64K
    drun pub t d1 d2
    check "setup: readers read the durable events" readers_read "d1 d2 "
    "$EVBUS" flushd --bus "$DBUS" --data-dir "$DATA" >"$TMP/flushd" 2>"$TMP/flushd.err" &
    BG_PID=$!
    check "flushd runs" wait_for 10 grep -q "^flushing durable topics" "$TMP/flushd"
    kill -STOP "$BG_PID"
    drun pub t x1 x2 x3 --sync-timeout 1
    check "pub: not durable in time" rc_nonzero
    check "readers read and commit past what is durable" readers_read "x1 x2 x3 "
    kill -KILL "$BG_PID"
    kill -CONT "$BG_PID" 2>/dev/null || true
    wait_bg 10
    reboot
    drun pub t new1 new2 new3
    check "pub after the rebuild: exit 0" rc_is 0
    check "every reader reads every new event" readers_read "new1 new2 new3 "
    drun info t
    check "info counts the commits set back" out_has "3 reader commits past the log end"
    drun info t --json
    check "info --json: reset_commits 3" \
        py 'import json,sys; sys.exit(json.load(sys.stdin)["partitions"][0]["damage_at_recovery"]["reset_commits"] != 3)'
    end
}

test_commits_past_the_log_end

finish
