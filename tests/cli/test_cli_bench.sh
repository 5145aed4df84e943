#!/usr/bin/env bash
# test_cli_bench.sh - evbus bench: the table, --json and its counts (a
# lossless reader gets every event, nothing lost or damaged), a sweep gives
# one result per size, --plot writes a PNG, the private topic is gone
# afterwards unless --keep, and bad options are usage errors (exit 2, one
# line). Short runs: the point is the tool's behaviour, not the numbers.
# lib.sh holds the helpers.
#
# Usage: test_cli_bench.sh PATH/TO/evbus
set -euo pipefail

EVBUS=${1:?usage: test_cli_bench.sh PATH/TO/evbus}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

test_table() {
    begin "bench prints the table: rates in and out, latency percentiles, lost"
    run bench --producers 1 --consumers 1 --value-bytes 64 --duration 1 --warmup 0.1
    check "exit 0" rc_is 0
    check "header names the setup" out_has "1 producer, 1 consumer (lossless)"
    check "columns" out_has "in ev/s.*in MB/s.*out ev/s.*out MB/s.*p50.*p90.*p99.*p99.9.*max.*lost"
    check "latency unit" out_has "latency (µs)"
    check "a row for 64 B with no loss" grep -Eq '^64 B .* 0$' "$OUT"
    check "counts line: nothing lost or bad" out_has "lost 0, redelivered 0, bad 0"
    check "no progress line when stderr is not a terminal" not_grep "warm-up" "$ERR"
    run list
    check "the private topic is deleted" out_empty
    end
}

test_json_counts() {
    begin "bench --json parses; a lossless reader gets every event once"
    run bench --json --producers 2 --consumers 2 --partitions 2 --duration 0.5 --warmup 0.1
    check "exit 0" rc_is 0
    check "counts consistent" py "
import json, sys
o = json.load(sys.stdin)
assert o['command'] == 'bench' and o['config']['reader'] == 'lossless', o['config']
(r,) = o['results']
assert r['value_bytes'] == 64 and r['fanout'] == 2
assert r['published'] > 0 and r['delivered'] == 2 * r['published'] == r['expected'], r
assert r['lost'] == 0 and r['bad'] == 0 and r['check'] is None, r
assert r['in']['events'] > 0 and r['out']['events'] > 0
assert abs(r['in']['seconds'] - 0.5) < 0.01, r['in']
lat = r['latency_us']
assert lat['samples'] > 0 and 0 < lat['p50'] <= lat['p90'] <= lat['p99'] <= lat['p999'] <= lat['max'], lat
assert len(r['series']) >= 3 and all('t' in p and 'in' in p and 'out' in p for p in r['series'])"
    end
}

test_no_consumers() {
    begin "bench --consumers 0 measures ingestion alone (the range is 0..64)"
    run bench --json --producers 1 --consumers 0 --duration 0.3 --warmup 0.05
    check "exit 0" rc_is 0
    check "published, nothing delivered, no latency" py "
import json, sys
(r,) = json.load(sys.stdin)['results']
assert r['published'] > 0 and r['delivered'] == 0 and r['lost'] == 0, r
assert r['latency_us']['samples'] == 0, r['latency_us']"
    end
}

test_no_members() {
    begin "bench --consumers 0: a group or queue with no member promises no delivery (fanout 0)"
    local kind
    for kind in group queue; do
        run bench --json --reader "$kind" --consumers 0 --duration 0.2 --warmup 0
        check "$kind: exit 0" rc_is 0
        check "$kind: fanout 0, expected 0, check null, as the other kinds" py "
import json, sys
(r,) = json.load(sys.stdin)['results']
assert r['published'] > 0 and r['delivered'] == 0, r
assert r['fanout'] == 0 and r['expected'] == 0 and r['check'] is None, r"
    done
    run bench --reader queue --consumers 0 --duration 0.2 --warmup 0
    check "table: no copy promised" out_has "delivered 0 (0 copies each)"
    end
}

test_events_kinds() {
    begin "bench --events counts exactly N timed events, for every reader kind and path"
    local kind path run
    # Every kind and every path, not every pair: a few seconds in all.
    for run in lossless:single consumer:batch group:claim queue:single subscriber:claim \
        lossless:claim group:batch; do
        kind=${run%:*} path=${run#*:}
        {
            run bench --json --reader "$kind" --path "$path" --consumers 2 --partitions 2 \
                --events 20000 --warmup 0.05 --rate 200000
            check "$kind $path: exit 0" rc_is 0
            check "$kind $path: 20000 in, all delivered" py "
import json, sys
(r,) = json.load(sys.stdin)['results']
assert r['in']['events'] == 20000, r['in']
assert r['check'] is None and r['bad'] == 0, r
if '$kind' in ('group', 'queue'):
    assert r['fanout'] == 1 and r['delivered'] - r['redelivered'] >= r['published'], r
elif '$kind' == 'subscriber':
    assert r['delivered'] + r['lost'] == 2 * r['published'], r
else:
    assert r['delivered'] == 2 * r['published'] and r['lost'] == 0, r"
        }
    done
    end
}

test_sweep() {
    begin "a sweep gives one result per size, in order"
    run bench --json --value-bytes 64,1K,16K --duration 0.2 --warmup 0.05
    check "exit 0" rc_is 0
    check "three results" py "
import json, sys
rs = json.load(sys.stdin)['results']
assert [r['value_bytes'] for r in rs] == [64, 1024, 16384], rs
assert all(r['check'] is None and r['out']['events'] > 0 for r in rs)"
    run bench --value-bytes 64,1K --duration 0.2 --warmup 0.05
    check "table: a row per size" test "$(grep -Ec '^(64 B|1 KiB) ' "$OUT")" -eq 4
    end
}

test_plot() {
    begin "bench --plot writes a PNG"
    if ! command -v gnuplot >/dev/null; then
        echo "  SKIP: gnuplot is not installed (tools/setup-debian.sh installs gnuplot-nox)"
        run bench --plot "$TMP/b.png" --duration 0.1 --warmup 0
        check "without gnuplot: exit 1, says so" rc_is 1
        check "names gnuplot" err_has "gnuplot"
        end
        return
    fi
    run bench --plot "$TMP/b.png" --value-bytes 64,1K --duration 0.3 --warmup 0.05
    check "exit 0" rc_is 0
    check "PNG signature" test "$(head -c 8 "$TMP/b.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a
    check "not a trivial image" test "$(stat -c %s "$TMP/b.png")" -gt 20000
    # A directory that cannot take the file is said before the run, not
    # after it (a 60 s run would end with nothing).
    local t0=$SECONDS
    run bench --plot "$TMP/no/such/dir/b.png" --duration 60 --warmup 0
    check "missing directory: exit 1" rc_is 1
    check "missing directory: says which" err_has "no/such/dir"
    check "missing directory: at once" test $((SECONDS - t0)) -lt 10
    end
}

test_keep() {
    begin "bench --keep leaves its topic"
    run bench --keep --duration 0.1 --warmup 0
    check "exit 0" rc_is 0
    check "says which" out_has "kept topic bench-"
    local kept
    kept=$(grep -o 'bench-[0-9]*-64' "$OUT")
    run list
    check "listed" out_is "$kept"
    run delete "$kept"
    check "and deletable" rc_is 0
    end
}

# bench_topic_listed: the bench's private topic exists on the bus.
bench_topic_listed() { "$EVBUS" list --bus "$BUS" 2>/dev/null | grep -q '^bench-'; }
# bench_publishing: its producers have started (a signal before that ends
# the bench while starting, with no run to report).
bench_publishing() {
    "$EVBUS" stat --bus "$BUS" --json 2>/dev/null | python3 -c 'import json,sys
o = json.load(sys.stdin)
sys.exit(0 if any(p["published"] > 0 for t in o["topics"] for p in t.get("partitions", [])) else 1)'
}

test_interrupt() {
    begin "Ctrl-C stops a long run early: results so far, marked, topic deleted"
    "$EVBUS" bench --bus "$BUS" --duration 60 --warmup 0 --value-bytes 64,1K \
        >"$OUT" 2>"$ERR" &
    BG_PID=$!
    check "the run starts" wait_for 10 bench_publishing
    kill -INT "$BG_PID"
    wait_bg 15
    check "exit 130 (cut short) well before 60 s" rc_is 130
    check "stderr says why the exit is not 0" err_has "interrupted by SIGINT"
    check "the first size is reported, marked interrupted" out_has "^64 B .*(interrupted)"
    check "no run of the second size" not_grep "^1 KiB" "$OUT"
    run list
    check "the private topic is deleted" out_empty
    end
}

test_terminate_json() {
    local sig code
    # SIGHUP: the terminal went away; the same clean end as SIGTERM.
    for sig in TERM HUP; do
        code=$((128 + $(kill -l "$sig")))
        begin "SIG$sig: the JSON so far is printed and parses, topic deleted, exit $code"
        "$EVBUS" bench --bus "$BUS" --duration 60 --warmup 0 --json >"$OUT" 2>"$ERR" &
        BG_PID=$!
        check "the run starts" wait_for 10 bench_publishing
        kill -"$sig" "$BG_PID"
        wait_bg 15
        check "exit $code" rc_is "$code"
        check "stderr names the signal" err_has "interrupted by SIG$sig"
        check "JSON marked interrupted" json_field \
            'o["results"][0]["interrupted"] is True or sys.exit(1)'
        run list
        check "the private topic is deleted" out_empty
        end
    done
}

# none_alive PID...: none of the processes exists any more (zombies count
# as gone).
none_alive() {
    local p
    for p in "$@"; do
        [[ -e /proc/$p ]] && ! grep -q '^[0-9]* (.*) Z' "/proc/$p/stat" 2>/dev/null && return 1
    done
    return 0
}

test_parent_killed() {
    begin "a bench killed with SIGKILL takes its producer and consumer processes along"
    "$EVBUS" bench --bus "$BUS" --duration 60 --warmup 0 >"$OUT" 2>"$ERR" &
    BG_PID=$!
    check "the run starts" wait_for 10 bench_topic_listed
    local kids
    kids=$(pgrep -P "$BG_PID" | tr '\n' ' ')
    check "it has two children" test "$(wc -w <<<"$kids")" -eq 2
    kill -KILL "$BG_PID"
    wait_bg 5
    # shellcheck disable=SC2086 # one word per pid
    check "they are gone" wait_for 5 none_alive $kids
    run list
    local left
    left=$(grep '^bench-' "$OUT" | tr '\n' ' ')
    check "the killed bench's topic is there" test -n "$left"
    # The next bench removes the topics of benches that are gone.
    run bench --duration 0.1 --warmup 0
    check "the next bench runs" rc_is 0
    run list
    for t in $left; do
        check "the next bench removed $t" not_listed "$t"
    done
    end
}
not_listed() { ! grep -qx -- "$1" "$OUT"; }

test_exclusive() {
    begin "bench --exclusive: an EVB_PRODUCER_EXCLUSIVE producer, every path, nothing lost"
    local path
    for path in single batch claim; do
        run bench --json --exclusive --path "$path" --duration 0.3 --warmup 0.05
        check "$path: exit 0" rc_is 0
        check "$path: exclusive in the config, every event delivered" py "
import json, sys
o = json.load(sys.stdin)
assert o['config']['exclusive'] is True, o['config']
(r,) = o['results']
assert r['published'] > 0 and r['delivered'] == r['published'] == r['expected'], r
assert r['lost'] == 0 and r['bad'] == 0 and r['check'] is None, r"
    done
    end
}

test_child_killed_json() {
    begin "bench --json when a process is killed: one JSON object with the error, exit 1"
    "$EVBUS" bench --bus "$BUS" --duration 60 --warmup 0 --json >"$OUT" 2>"$ERR" &
    BG_PID=$!
    check "the run starts" wait_for 10 bench_publishing
    local kid
    kid=$(pgrep -P "$BG_PID" | sort -n | head -1)
    kill -KILL "$kid"
    wait_bg 15
    check "exit 1" rc_is 1
    check "stderr says which" err_has "killed by signal 9"
    check "stdout is one object: no results, the error and the counts so far" py "
import json, sys
o = json.load(sys.stdin)
assert o['command'] == 'bench' and o['results'] == [], o
e = o['error']
assert 'killed by signal 9' in e['message'] and e['value_bytes'] == 64, e
assert e['topic'].startswith('bench-') and e['published'] > 0, e
assert isinstance(e['delivered'], int), e"
    run bench --json --duration 0.1 --warmup 0
    check "a run that passes: error null" json_field 'o["error"] is None or sys.exit(1)'
    run list
    check "the private topic is deleted" out_empty
    end
}

test_placement_options() {
    begin "bench takes --huge-pages as create does; the header gives both sizes in one unit"
    local hp
    for hp in --huge-pages --huge-pages=try --huge-pages=strict; do
        run bench "$hp" --duration 0.1 --warmup 0
        # strict fails (exit 1) where the tmpfs gives no huge pages: not a
        # usage error either way.
        check "$hp: not a usage error" test "$RC" -ne 2
        check "$hp: no unknown option" not_grep "unknown option" "$ERR"
    done
    run bench --huge-pages --duration 0.1 --warmup 0
    check "header: huge pages of the ring in one unit" \
        grep -Eq '; [0-9]+ of [0-9]+ (B|KiB|MiB|GiB) in huge pages$' "$OUT"
    run bench --huge-pages=maybe
    check "--huge-pages=maybe: exit 2" rc_is 2
    check "--huge-pages=maybe: says what it takes" err_has "not try or strict"
    end
}

test_ring_limit() {
    begin "bench --ring-bytes: create's range (64K..16G), a usage error past it"
    local size
    for size in 32G 64G 1T; do
        run bench --ring-bytes "$size" --duration 0.1 --warmup 0
        check "bench $size: exit 2" rc_is 2
        check "bench $size: says the range" err_has "out of range 65536\.\.17179869184"
        run create big --ring-bytes "$size"
        check "create $size: exit 2" rc_is 2
        check "create $size: the same range" err_has "out of range 65536\.\.17179869184"
    done
    run bench --help
    check "--help says the range" out_has "64K\.\.16G"
    end
}

test_rate_range() {
    begin "bench --rate: a number out of range is said to be, with the range"
    local r
    for r in 1e30 1e999 0.5 99999999999999999999999 0; do
        run bench --rate "$r" --duration 0.1
        check "--rate $r: exit 2" rc_is 2
        check "--rate $r: out of range, with the range" err_has "out of range 1\.\.1000000000"
    done
    run bench --rate abc
    check "--rate abc: exit 2, not a number" err_has "not a number"
    run bench --json --rate 1e5 --events 2000 --warmup 0
    check "--rate 1e5: exit 0" rc_is 0
    check "--rate 1e5: rate 100000" json_field 'o["config"]["rate"] == 100000 or sys.exit(1)'
    end
}

test_bad_options() {
    begin "bad options: one line, exit 2"
    local args
    for args in "--producers 0" "--producers 65" "--consumers x" "--reader nobody" \
        "--path fast" "--durability maybe" "--value-bytes 8" "--value-bytes 64,,1K" \
        "--value-bytes 4M" "--duration 0" "--duration 1 --events 5" "--rate 0" \
        "--ring-bytes 100K" "--batch 8 --path single" "--partitions 257" "--plot=" \
        "--exclusive --producers 2" "--nonsense" "extra"; do
        # shellcheck disable=SC2086
        run bench $args
        check "$args: exit 2" rc_is 2
        check "$args: one line" err_one_line
    done
    run bench --help
    check "--help: exit 0" rc_is 0
    check "--help explains --rate" out_has "coordinated\|when each"
    end
}

test_table
test_json_counts
test_no_consumers
test_exclusive
test_no_members
test_events_kinds
test_sweep
test_plot
test_keep
test_interrupt
test_terminate_json
test_parent_killed
test_child_killed_json
test_placement_options
test_ring_limit
test_rate_range
test_bad_options
finish
