#!/usr/bin/env python3
"""summarize.py raw.txt: per system and --idle-pauses, over invocations whose
probes (before, inside, after) all say near (< 200 ns): median rates, and
per round the ratio evbus publish / Aeron offer at equal pauses."""
import re, statistics as st, sys
cur, rows = None, {}
for line in open(sys.argv[1] if len(sys.argv) > 1 else 'raw.txt'):
    m = re.match(r'# round (\d+) (evbus|aeron) idle-pauses (\d+) probe-(before|after) (\d+)', line)
    if m:
        key = (int(m.group(1)), m.group(2), int(m.group(3)))
        rows.setdefault(key, {'probes': []})['probes'].append(int(m.group(5)))
        cur = key
        continue
    m = re.match(r'^64\s+(evbus-single|evbus-claim|spsc-ring-b)\s+\d+\s+([\d.]+)', line)
    if m and cur:
        rows[cur][m.group(1)] = float(m.group(2))
    m = re.match(r'^64\s+cache-line RTT probe per run: median (\d+) ns \[(\d+)\.\.(\d+)\]', line)
    if m and cur:
        rows[cur]['probes'].append(int(m.group(3)))
    m = re.match(r'^result aeron-(offer|claim) run 1 ([\d.e+]+) ev/s probe_before (\d+) probe_after (\d+)', line)
    if m and cur:
        rows[cur]['aeron-' + m.group(1)] = float(m.group(2)) / 1e6
        rows[cur]['probes'] += [int(m.group(3)), int(m.group(4))]
near = {k: v for k, v in rows.items() if v['probes'] and max(v['probes']) < 200}
for k in sorted(rows):
    v = rows[k]
    print(k, 'near' if k in near else 'FAR/mixed', {a: b for a, b in v.items() if a != 'probes'})
print()
for sysname, keys in (('evbus', ['spsc-ring-b', 'evbus-single', 'evbus-claim']), ('aeron', ['aeron-offer', 'aeron-claim'])):
    for k in (1, 512):
        vs = [v for (r, s, p), v in near.items() if s == sysname and p == k]
        if vs:
            print(f"{sysname} pauses {k:3d} n={len(vs)} " + " ".join(
                f"{x} {st.median(v[x] for v in vs if x in v):.1f}" for x in keys if any(x in v for v in vs)))
for k in (1, 512):
    rat = [near[(r, 'evbus', k)]['evbus-single'] / near[(r, 'aeron', k)]['aeron-offer']
           for (r, s, p) in near if s == 'evbus' and p == k and (r, 'aeron', k) in near
           and 'aeron-offer' in near[(r, 'aeron', k)] and 'evbus-single' in near[(r, 'evbus', k)]]
    if rat:
        print(f"pauses {k}: evb_publish / Aeron offer, same round: median {st.median(rat):.2f} "
              f"[{min(rat):.2f}..{max(rat):.2f}] n={len(rat)}")
