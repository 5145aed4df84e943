#!/usr/bin/env python3
"""ab_report.py - summarise a perf/ab.sh raw file: JSON result lines of
the benchmarks under "### new run N" / "### old run N".

For each result (benchmark, implementation, size, producers) and metric:
the median of each build over the rounds, new/old of those medians, and
the median [min..max] of the per-round ratios new/old. The spread of the
per-round ratios of a result is the run-to-run noise to read a change
against. For throughput and ping-pong, the ratio to the baseline measured
in the same invocation (bare SPSC ring, cache line) is compared as well:
it cancels what the host did to both at that moment.

usage: perf/ab_report.py RAW_FILE
"""
import json
import re
import statistics as st
import sys

# metric name -> (how to read it from a JSON line, higher is better)
METRICS = {
    'events/s': (lambda j: j.get('events_per_s', {}).get('median'), True),
    'rtt p50 ns': (lambda j: j.get('rtt_ns', {}).get('p50'), False),
    'rtt p99.9 ns': (lambda j: j.get('rtt_ns', {}).get('p99_9'), False),
    'sync p50 us': (lambda j: j.get('p50_us'), False),
    'sync p99 us': (lambda j: j.get('p99_us'), False),
    'x ring (same run)': (lambda j: j.get('_vs_ring'), True),
    'x cacheline p50': (lambda j: j.get('ratio_vs_cacheline', {}).get('p50'), False),
}


def key_of(j):
    parts = [j.get('bench', '?'), j.get('impl', '')]
    for k in ('size', 'producers', 'ring_bytes'):
        if k in j:
            parts.append(f'{k}={j[k]}')
    return ' '.join(p for p in parts if p != '')


def main(path):
    data = {}  # (which, round) -> {key: json}
    cur = None
    for line in open(path):
        m = re.match(r'^### (new|old) run (\d+)', line)
        if m:
            cur = (m.group(1), int(m.group(2)))
            data[cur] = {}
        elif cur and line.startswith('{'):
            j = json.loads(line)
            data[cur][key_of(j)] = j
    # evbus throughput over the bare ring of the same invocation and size
    for res in data.values():
        for k, j in res.items():
            if j.get('bench') == 'throughput' and j.get('impl', '').startswith('evbus'):
                ring = res.get(key_of({'bench': 'throughput', 'impl': 'spsc-ring',
                                       'size': j.get('size'),
                                       'ring_bytes': j.get('ring_bytes')}))
                if ring:
                    j['_vs_ring'] = j['events_per_s']['median'] / ring['events_per_s']['median']
    rounds = sorted({r for _, r in data})
    keys = sorted({k for res in data.values() for k in res})
    print(f'{"result":44} {"metric":18} {"new":>11} {"old":>11} {"new/old":>8}  per-round new/old')
    for k in keys:
        for name, (get, higher) in METRICS.items():
            new = [get(data[('new', r)][k]) for r in rounds
                   if k in data.get(('new', r), {}) and get(data[('new', r)][k]) is not None]
            old = [get(data[('old', r)][k]) for r in rounds
                   if k in data.get(('old', r), {}) and get(data[('old', r)][k]) is not None]
            if not new or not old:
                continue
            pairs = [get(data[('new', r)][k]) / get(data[('old', r)][k]) for r in rounds
                     if k in data.get(('new', r), {}) and k in data.get(('old', r), {})
                     and get(data[('old', r)][k])]
            mn, mo = st.median(new), st.median(old)
            ratio = mn / mo if mo else float('nan')
            spread = (f'{st.median(pairs):.3f} [{min(pairs):.3f}..{max(pairs):.3f}]'
                      if pairs else '-')
            better = '' if abs(ratio - 1) < 0.02 else ('+' if (ratio > 1) == higher else '-')
            print(f'{k[:44]:44} {name:18} {mn:11.4g} {mo:11.4g} {ratio:8.3f}{better:1} {spread}')
    print(f'# {len(rounds)} rounds; "+"/"-": new better/worse by more than 2% '
          '(read it against the per-round spread)')


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
