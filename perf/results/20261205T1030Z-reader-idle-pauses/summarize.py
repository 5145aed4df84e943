#!/usr/bin/env python3
"""summarize.py raw.txt: per --idle-pauses value, over rounds whose cache-line
probes (before the round, inside each invocation, after the round) all say
near (< 200 ns): the median rate and the median of per-invocation ratios to
the batched bare ring of the same invocation."""
import re, statistics as st, sys
rows, cur, after = {}, None, {}
for line in open(sys.argv[1] if len(sys.argv) > 1 else 'raw.txt'):
    m = re.match(r'# round (\d+) probe-before (\d+) idle-pauses (\d+)', line)
    if m:
        cur = (int(m.group(1)), int(m.group(3)))
        rows[cur] = {'before': int(m.group(2))}
        continue
    m = re.match(r'# round (\d+) idle-pauses (\d+) probe-after (\d+)', line)
    if m:
        after[(int(m.group(1)), int(m.group(2)))] = int(m.group(3))
        continue
    m = re.match(r'^64\s+(\S+)\s+\d+\s+([\d.]+)', line)
    if m and cur:
        rows[cur][m.group(1)] = float(m.group(2))
    m = re.match(r'^64\s+cache-line RTT probe per run: median (\d+) ns \[(\d+)\.\.(\d+)\]', line)
    if m and cur:
        rows[cur]['cl_max'] = int(m.group(3))
impls = ['spsc-ring', 'spsc-ring-b', 'evbus-single', 'evbus-claim']
by_k = {}
for (r, k), v in sorted(rows.items()):
    near = v['before'] < 200 and v.get('cl_max', 999) < 200 and after.get((r, k), 999) < 200
    print(f"round {r} pauses {k:4d} {'near' if near else 'FAR/mixed':9s} " +
          " ".join(f"{i} {v.get(i, 0):6.2f}" for i in impls))
    if near:
        by_k.setdefault(k, []).append(v)
print()
print("pauses  n  ring   ringb  single claim   single/ringb claim/ringb (medians; rates Mev/s)")
for k in sorted(by_k):
    vs = by_k[k]
    med = lambda i: st.median(x[i] for x in vs)
    rat = lambda i: st.median(x[i] / x['spsc-ring-b'] for x in vs)
    print(f"{k:6d} {len(vs):2d} {med('spsc-ring'):6.1f} {med('spsc-ring-b'):6.1f} "
          f"{med('evbus-single'):6.1f} {med('evbus-claim'):6.1f}  {rat('evbus-single'):5.2f}       "
          f"{rat('evbus-claim'):5.2f}")
