#!/usr/bin/env python3
"""summarize.py [DIR]: the line-frames run (run.sh). An invocation counts
only if every probe (before, inside, after) says near (< 200 ns). Prints
medians per build and the per-round ratios after / before and after /
Aeron of the same round."""
import collections, os, re, statistics as st, sys
d = sys.argv[1] if len(sys.argv) > 1 else '.'

def invocations(name):
    """{(round, tag): {'probes': [...], 'lines': [...]}} in file order."""
    inv, cur = collections.OrderedDict(), None
    for line in open(os.path.join(d, name), errors='replace'):
        m = re.match(r'# round (\d+) (\S+) probe-(before|after) (\d+)', line)
        if m:
            key = (int(m.group(1)), m.group(2), len([k for k in inv if k[:2] == (int(m.group(1)), m.group(2))]))
            if m.group(3) == 'before':
                cur = inv.setdefault(key, {'probes': [], 'lines': []})
            cur['probes'].append(int(m.group(4)))
            continue
        if cur is None:
            continue
        cur['lines'].append(line)
        for rx in (r'size \S+ run \d+ cache-line RTT probe (\d+) ns',
                   r'^cacheline\s+1\s+(\d+)\s', r'probe_before (\d+) probe_after (\d+)'):
            m = re.search(rx, line)
            if m:
                cur['probes'] += [int(x) for x in m.groups()]
    return {k: v for k, v in inv.items() if v['probes'] and max(v['probes']) < 200}, len(inv)

def med(xs):
    return f"{st.median(xs):.2f} [{min(xs):.2f}..{max(xs):.2f}] (n {len(xs)})" if xs else '-'

# 64 B, 1 -> 1
near, total = invocations('t64.txt')
rate = collections.defaultdict(dict)  # (round, tag) -> impl -> Mev/s
for (r, tag, _), v in near.items():
    for line in v['lines']:
        m = re.match(r'\s+size 64 run 1 (spsc-ring-b|spsc-ring|evbus-single|evbus-claim|aeron-offer|aeron-claim)\s+([\d.]+) Mev/s', line)
        if m:
            rate[(r, tag)][m.group(1)] = float(m.group(2))
print(f"== 64 B, 1 -> 1, Mev/s ({len(near)} of {total} invocations near)")
for tag, impls in (('before', ['spsc-ring', 'evbus-single', 'evbus-claim']),
                   ('after', ['spsc-ring', 'evbus-single', 'evbus-claim']),
                   ('aeron', ['aeron-offer', 'aeron-claim'])):
    for i in impls:
        print(f"  {tag:6s} {i:13s} {med([v[i] for (r, t), v in rate.items() if t == tag and i in v])}")
rounds = sorted({r for r, t in rate})
def ratio(a, ai, b, bi):
    return [rate[(r, a)][ai] / rate[(r, b)][bi] for r in rounds
            if ai in rate.get((r, a), {}) and bi in rate.get((r, b), {})]
print("  same-round ratios:")
for lbl, args in (('publish after / before', ('after', 'evbus-single', 'before', 'evbus-single')),
                  ('claim after / before', ('after', 'evbus-claim', 'before', 'evbus-claim')),
                  ('publish after / Aeron offer', ('after', 'evbus-single', 'aeron', 'aeron-offer')),
                  ('publish before / Aeron offer', ('before', 'evbus-single', 'aeron', 'aeron-offer')),
                  ('claim after / Aeron try_claim', ('after', 'evbus-claim', 'aeron', 'aeron-claim')),
                  ('claim after / publish after', ('after', 'evbus-claim', 'after', 'evbus-single'))):
    print(f"    {lbl:30s} {med(ratio(*args))}")

# sizes
near, total = invocations('sizes.txt')
sz = collections.defaultdict(dict)  # (round, tag) -> (size, impl) -> Mev/s
for (r, tag, _), v in near.items():
    for line in v['lines']:
        m = re.match(r'^(\d+)\s+(spsc-ring|evbus-single|evbus-claim|evbus-batch)\s+\d+\s+([\d.]+)', line)
        if m:
            sz[(r, tag)][(int(m.group(1)), m.group(2))] = float(m.group(3))
print(f"\n== sizes, Mev/s: before, after, after / before of the same round ({len(near)} of {total} near)")
keys = sorted({k for v in sz.values() for k in v})
for k in keys:
    b = [v[k] for (r, t), v in sz.items() if t == 'before' and k in v]
    a = [v[k] for (r, t), v in sz.items() if t == 'after' and k in v]
    rr = [sz[(r, 'after')][k] / sz[(r, 'before')][k] for r in sorted({r for r, t in sz})
          if k in sz.get((r, 'after'), {}) and k in sz.get((r, 'before'), {})]
    print(f"  {k[0]:6d} {k[1]:13s} before {med(b)}  after {med(a)}  ratio {med(rr)}")

# round trip
near, total = invocations('rtt.txt')
print(f"\n== round trip 64 B, ns ({len(near)} of {total} near): p50, p99, p99.9, ratio of p50 to the cache line")
rt = collections.defaultdict(lambda: collections.defaultdict(list))
for (r, tag, _), v in near.items():
    c = e = None
    for line in v['lines']:
        m = re.match(r'^(cacheline|evbus)\s+1\s+(\d+)\s+(\d+)\s+(\d+)', line)
        if m:
            x = tuple(int(g) for g in m.groups()[1:])
            if m.group(1) == 'cacheline': c = x
            else: e = x
    if c and e:
        for i, n in enumerate(('p50', 'p99', 'p99.9')):
            rt[tag][n].append(e[i])
        rt[tag]['cache p50'].append(c[0])
        rt[tag]['p50 / cache'].append(e[0] / c[0])
for tag in ('before', 'after'):
    print(f"  {tag:6s} " + "  ".join(f"{n} {med(x)}" for n, x in rt[tag].items()))

# solo
print("\n== the producer alone (bench_solo), ns per event, median of invocations")
so = collections.defaultdict(list)
tag = None
for line in open(os.path.join(d, 'solo.txt')):
    m = re.match(r'# round \d+ (\S+) probe-before', line)
    if m: tag = m.group(1)
    m = re.match(r'^(publish|claim) 64 B: ([\d.]+) ns/event median', line)
    if m: so[(tag, m.group(1))].append(float(m.group(2)))
for k in sorted(so):
    print(f"  {k[0]:6s} {k[1]:8s} {med(so[k])}")
