#!/usr/bin/env bash
# test_cli_conf_mismatch.sh - a durable topic's topic.conf changed on disk
# after its segments were written (issue 9, defect 8): rebuilding the topic
# must fail with one line naming topic.conf and what disagrees, and no byte
# of the data directory may change (before the fix, max_event_bytes 16 made
# recovery cut the newest segment). lib.sh holds the helpers.
#
# Usage: test_cli_conf_mismatch.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_conf_mismatch.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The checksums of every file under the topic's data directory but the lock.
data_sums() { (cd "$DATA/m" && find . -type f ! -name flush.lock -print0 | sort -z | xargs -0 md5sum); }

# mismatch WHAT EDIT mark|nomark EXPECT [RING SEGMENT]: a fresh two-partition
# topic over several segments (of SEGMENT bytes, 64K; its rings RING, 64K),
# its data topic.conf changed by the shell code EDIT (and its marks removed
# with nomark), then a reboot: every command that rebuilds the topic must
# fail with one line naming topic.conf and EXPECT, and leave the data alone.
mismatch() {
    local what=$1 expr=$2 nomark=$3 expect=$4 ring=${5:-64K} seg=${6:-64K}
    begin "topic.conf changed on disk ($what): an error, nothing cut"
    rm -rf "$DATA" "$DBUS"
    drun create m --durability sync --partitions 2 --segment-bytes "$seg" --ring-bytes "$ring"
    python3 -c "
for i in range(3000): print('event-%05d-' % i + 'x' * 100)" >"$TMP/lines"
    drun_in "$TMP/lines" pub m
    check "setup: pub exits 0" rc_is 0
    check "setup: several segments" eval '[[ $(ls "$DATA"/m/0/*.log | wc -l) -ge 2 ]]'
    [[ "$nomark" == nomark ]] && rm -f "$DATA"/m/*/durable.mark
    eval "$expr"
    local before
    before=$(data_sums)
    reboot
    for cmd in "info m" "tail m --from earliest" "dump m"; do
        # shellcheck disable=SC2086
        drun $cmd
        check "$cmd: fails" rc_nonzero
        check "$cmd: one line" err_one_line
        check "$cmd: names topic.conf" err_has "topic.conf"
        check "$cmd: says what disagrees" err_has "$expect"
    done
    drun list
    check "list: the topic is listed damaged" out_has "^m.*damaged"
    check "the data directory is unchanged" eval '[[ "$(data_sums)" == "$before" ]]'
    end
}

conf() { sed -i "s/^$1 .*/$1 $2/" "$DATA/m/topic.conf"; }

mismatch "max_event_bytes 16" 'conf max_event_bytes 16' mark "max_event_bytes"
mismatch "max_event_bytes 16, no mark" 'conf max_event_bytes 16' nomark "max_event_bytes"
mismatch "ring_bytes 64K, was 128K" 'conf ring_bytes 65536; conf max_event_bytes 1000' nomark "ring_bytes" 128K 128K
mismatch "segment_bytes 128K, was 64K" 'conf segment_bytes 131072' mark "segment_bytes"
mismatch "segment_bytes 64K, was 128K" 'conf segment_bytes 65536' nomark "segment_bytes" 64K 128K
mismatch "partitions 1" 'conf partitions 1' mark "partitions"
mismatch "partitions 3" 'conf partitions 3' mark "partitions"

finish
