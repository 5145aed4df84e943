#!/usr/bin/env python3
"""ab_summary.py - summarise the in-memory A/B section of a durable.sh raw
file: bench_throughput JSON lines under "### new run N" / "### old run N".

Per size and impl: events/s median [min..max] of each build, the ratio
new/old of the medians, the median of the per-pair ratios (run N of new
against run N of old, taken seconds apart), and the same for evbus / bare
ring inside each invocation (which cancels the vCPU placement of the
moment; see RESULTS.md), over all pairs, over pairs where both builds ran
in the fast placement, and over pairs where both ran in the same one (the
probe is taken before each size; a switch inside an invocation still
slips through).

usage: perf/ab_summary.py RAW_FILE...   (pairs of several files are pooled)
"""
import json, re, statistics as st, sys

FAST_NS = 200  # cache-line probe below this: the fast vCPU placement
cur = None
data = {}  # (which, run) -> {(size, impl): events_per_s}; run = (file index, run number)
probe = {}  # (which, run, size) -> cache-line RTT probe, ns
for fi, path in enumerate(sys.argv[1:]):
  for line in open(path):
    m = re.match(r'^### (new|old) run (\d+)', line)
    if m:
        cur = (m.group(1), (fi, int(m.group(2))))
        data[cur] = {}
        continue
    if cur and line.startswith('{'):
        j = json.loads(line)
        if j.get('probe') == 'cacheline_rtt_ns':
            probe[(cur[0], cur[1], j['size'])] = j['median']
        if 'impl' in j and 'events_per_s' in j:
            data[cur][(j['size'], j['impl'])] = j['events_per_s']['median']
    elif line.startswith('## ') and not line.startswith('## in-memory 1P1C'):
        cur = None

runs = sorted({r for (_, r) in data})
keys = sorted({k for d in data.values() for k in d})
def fmt(v):
    return f"{st.median(v):.3f} [{min(v):.3f}..{max(v):.3f}]" if v else "-"
def table(title, keep):
    print()
    print(title)
    print(f"{'size':>6} {'impl':13} {'pairs':>5} {'new Mev/s med [min..max]':28} {'old Mev/s':28} "
          f"{'new/old per pair':24} {'(evbus/ring) new/old per pair'}")
    for size, impl in keys:
        new, old, pair, pair_ring = [], [], [], []
        for r in runs:
            a, b = data.get(('new', r), {}), data.get(('old', r), {})
            if (size, impl) not in a or (size, impl) not in b or not keep(r, size):
                continue
            new.append(a[(size, impl)] / 1e6)
            old.append(b[(size, impl)] / 1e6)
            pair.append(a[(size, impl)] / b[(size, impl)])
            ra, rb = a.get((size, 'spsc-ring')), b.get((size, 'spsc-ring'))
            if ra and rb and impl != 'spsc-ring':
                pair_ring.append((a[(size, impl)] / ra) / (b[(size, impl)] / rb))
        print(f"{size:>6} {impl:13} {len(pair):5d} {fmt(new):28} {fmt(old):28} {fmt(pair):24} "
              f"{fmt(pair_ring)}")

def fast(r, size):
    return all(probe.get((w, r, size), 1e9) < FAST_NS for w in ('new', 'old'))

def same(r, size):
    a, b = probe.get(('new', r, size)), probe.get(('old', r, size))
    return a is not None and b is not None and (a < FAST_NS) == (b < FAST_NS)

print()
print("## in-memory A/B summary (ab_summary.py)")
table("# all pairs", lambda r, size: True)
table(f"# pairs where both invocations ran in the fast vCPU placement (probe < {FAST_NS} ns)", fast)
table(f"# pairs where both ran in the same placement (both probes < {FAST_NS} ns, or both >=)", same)
print("# target: evbus (batch, single) new/old >= 0.95")
