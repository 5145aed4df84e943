#!/usr/bin/env bash
# test_cli_placement.sh - NUMA nodes and huge pages from the command line:
# `evbus create --numa-node N` on a node this machine has (node 0 always),
# refused with one line naming the nodes it has otherwise (exit 2); info
# shows the node; --huge-pages is never an error, and says so on stderr
# when it got normal pages, while =strict fails then; a durable topic on a
# node flushes as any; `evbus bench --pin auto` pins near the topic's node.
# lib.sh holds the helpers.
#
# Usage: test_cli_placement.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_placement.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODES=$(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l)
((NODES > 0)) || NODES=1

test_numa_node() {
    begin "create --numa-node: a node here is taken, one it lacks refused naming those it has"
    run create --help
    check "help names --numa-node" out_has "--numa-node N"
    check "help names --huge-pages" out_has "--huge-pages"
    run create t0 --numa-node 0 --partitions 2
    check "node 0: exit 0" rc_is 0
    check "node 0: nothing said" eval '[[ ! -s "$ERR" ]]'
    run info t0
    check "info shows the node" out_has "^numa node  *0$"
    run info t0 --json
    check "json: numa_node 0" eval '[[ "$(json_field "o[\"config\"][\"numa_node\"]")" == 0 ]]'
    run create t1 --numa-node "$NODES"
    check "absent node: exit 2" rc_is 2
    check "absent node: one line" err_one_line
    check "absent node: names the nodes here" err_has "numa node $NODES: this machine has node"
    run list
    check "absent node: no topic made" not_grep "t1" "$OUT"
    run create t2 --numa-node -1
    check "negative node: exit 2" rc_is 2
    end
}

test_huge_pages() {
    begin "create --huge-pages: never an error; a fallback is said; =strict refuses it"
    run create h --huge-pages --ring-bytes 4M
    check "try: exit 0" rc_is 0
    run info h --json
    check "json: huge_pages try" eval '[[ "$(json_field "o[\"config\"][\"huge_pages\"]")" == try ]]'
    if grep -q "no huge pages here" "$ERR"; then
        check "fallback: one line" err_one_line
        run create hs --huge-pages=strict --ring-bytes 4M
        check "strict without huge pages: exit 1" rc_is 1
        check "strict: says why" err_has "huge pages: none given"
    else
        check "huge pages given: nothing said" eval '[[ ! -s "$ERR" ]]'
        run create hs --huge-pages=strict --ring-bytes 4M
        check "strict with huge pages: exit 0" rc_is 0
    fi
    run create hx --huge-pages=always
    check "unknown mode: exit 2" rc_is 2
    end
}

test_durable_on_a_node() {
    begin "a durable topic on node 0 publishes and flushes as any"
    drun create d --numa-node 0 --durability sync
    check "create: exit 0" rc_is 0
    seq 1 100 >"$TMP/in"
    drun_in "$TMP/in" pub d
    check "pub: exit 0" rc_is 0
    drun tail d --from 0 --count 100
    check "tail: all 100 back" eval '[[ "$(wc -l <"$OUT")" == 100 ]]'
    end
}

test_bench_pin_auto() {
    begin "bench --pin auto: producer and consumer near the topic's node, on two CPUs"
    run bench --pin auto --numa-node 0 --duration 0.3 --warmup 0.1 --json
    check "exit 0" rc_is 0
    check "json: pin_auto" eval '[[ "$(json_field "o[\"config\"][\"pin_auto\"]")" == True ]]'
    check "says where the ring is" eval \
        'json_field "o[\"results\"][0][\"cpus\"]" | grep -q "ring on node 0"'
    if (($(nproc) >= 2)); then
        check "two CPUs" py "
import json, re, sys
c = json.load(sys.stdin)['results'][0]['cpus']
m = re.match(r'producers on CPU (\\d+), consumers on CPU (\\d+)', c)
assert m and m.group(1) != m.group(2), c"
    fi
    run bench --pin=auto --duration 0.2 --warmup 0.1
    check "--pin=auto: exit 0" rc_is 0
    run bench --pin sideways --duration 0.2
    check "--pin with another word: exit 2" rc_is 2
    end
}

test_numa_node
test_huge_pages
test_durable_on_a_node
test_bench_pin_auto
finish
