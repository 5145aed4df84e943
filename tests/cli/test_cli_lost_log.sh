#!/usr/bin/env bash
# test_cli_lost_log.sh - the commands on a durable topic whose disk side
# went missing while its ring did not (issue 9, defect 11): tail
# --from-time still prints what the ring holds, and dump TOPIC without the
# data directory's topic.conf says so and fails. lib.sh holds the helpers;
# the library-level cases are tests/durable/test_lost_log.c.
#
# Usage: test_cli_lost_log.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_lost_log.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

test_from_time_without_segments() {
    begin "tail --from-time with no segment files reads the ring"
    drun create d --durability sync
    drun pub d old1 old2
    # Two publishing processes: every event of the second is stamped after
    # this instant, every one of the first before it.
    cut=$(date +%s.%N)
    drun pub d new1 new2
    check "setup: the events are on disk" test -f "$DATA/d/0/00000000000000000000.log"
    rm -f "$DATA"/d/0/*.log "$DATA"/d/0/*.idx
    drun tail d --from-time "@$cut"
    check "exit 0" rc_is 0
    check "the events after the time, from the ring" out_is $'0:2 new1\n0:3 new2'
    drun tail d --from-time -1d
    check "a time before all: every event" out_is $'0:0 old1\n0:1 old2\n0:2 new1\n0:3 new2'
    drun delete d
    end
}

test_dump_without_topic_conf() {
    begin "dump TOPIC without its topic.conf in the data directory fails in one line"
    drun create e --durability sync
    drun pub e one two
    rm -f "$DATA/e/topic.conf"
    drun dump e
    check "exit 1" rc_is 1
    check "nothing on stdout" out_empty
    check "one line" err_one_line
    check "it names the missing topic.conf" err_has "no topic.conf"
    rm -rf "${DATA:?}/e"
    drun dump e
    check "no data directory at all: exit 1" rc_is 1
    check "no data directory at all: one line" err_one_line
    check "no data directory at all: names topic.conf" err_has "no topic.conf"
    end
}

test_from_time_without_segments
test_dump_without_topic_conf

finish
