#!/usr/bin/env python3
"""summarize.py [DIR]: the run of run.sh. An invocation counts only if every
probe (before, inside, after) says near (< 200 ns). Medians per system and
the per-round ratios of evbus to Aeron."""
import collections, os, re, statistics as st, sys
d = sys.argv[1] if len(sys.argv) > 1 else '.'

def invocations(name):
    inv, cur = collections.OrderedDict(), None
    for line in open(os.path.join(d, name), errors='replace'):
        m = re.match(r'# round (\d+) (\S+) probe-(before|after) (\d+)', line)
        if m:
            key = (int(m.group(1)), m.group(2))
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
    return f"{st.median(xs):6.2f} [{min(xs):.2f}..{max(xs):.2f}] (n {len(xs)})" if xs else '-'

for name in ('t64.txt', 'lazy.txt'):
    near, total = invocations(name)
    rate = collections.defaultdict(dict)
    for (r, tag), v in near.items():
        for line in v['lines']:
            m = re.match(r'\s+size 64 run 1 (\S+)\s+([\d.]+) Mev/s', line)
            if m:
                rate[(r, tag)][m.group(1)] = float(m.group(2))
    print(f"== {name}: 64 B, 1 -> 1, Mev/s ({len(near)} of {total} invocations near)")
    keys = sorted({(t, i) for (r, t), v in rate.items() for i in v})
    for t, i in keys:
        print(f"  {t:8s} {i:13s} {med([v[i] for (r, tt), v in rate.items() if tt == t and i in v])}")
    rounds = sorted({r for r, t in rate})
    def ratio(a, ai, b, bi):
        return [rate[(r, a)][ai] / rate[(r, b)][bi] for r in rounds
                if ai in rate.get((r, a), {}) and bi in rate.get((r, b), {})]
    print("  same-round ratios:")
    for lbl, args in (('publish / Aeron offer', ('evbus', 'evbus-single', 'aeron', 'aeron-offer')),
                      ('claim / Aeron try_claim', ('evbus', 'evbus-claim', 'aeron', 'aeron-claim')),
                      ('claim / publish', ('evbus', 'evbus-claim', 'evbus', 'evbus-single')),
                      ('Aeron try_claim / offer', ('aeron', 'aeron-claim', 'aeron', 'aeron-offer')),
                      ('publish / bare ring', ('evbus', 'evbus-single', 'evbus', 'spsc-ring')),
                      ('Aeron offer / bare ring', ('aeron', 'aeron-offer', 'evbus', 'spsc-ring')),
                      ('excl publish / Aeron excl offer', ('evbus-x', 'evbus-single', 'aeron', 'aeron-xoffer')),
                      ('excl claim / Aeron excl try_claim', ('evbus-x', 'evbus-claim', 'aeron', 'aeron-xclaim')),
                      ('excl claim / excl publish', ('evbus-x', 'evbus-claim', 'evbus-x', 'evbus-single'))):
        rr = ratio(*args)
        if rr:
            print(f"    {lbl:34s} {med(rr)}")

near, total = invocations('rtt.txt')
print(f"\n== round trip 64 B, ns ({len(near)} of {total} invocations near)")
rt = collections.defaultdict(lambda: collections.defaultdict(list))
for (r, tag), v in near.items():
    if tag == 'evbus':
        for line in v['lines']:
            m = re.match(r'^(cacheline|evbus)\s+1\s+(\d+)\s+(\d+)\s+(\d+)', line)
            if m:
                for k, x in zip(('p50', 'p99', 'p99.9'), m.groups()[1:]):
                    rt[m.group(1)][k].append(int(x))
                rt[m.group(1)]['round'].append(r)
    else:
        # Aeron's HdrHistogram: value (us) and percentile columns
        pct = []
        for line in v['lines']:
            m = re.match(r'\s+([\d.]+)\s+([\d.]+)\s+\d+\s+[\d.]+', line)
            if m:
                pct.append((float(m.group(2)), float(m.group(1)) * 1000))
        for k, q in (('p50', 0.5), ('p99', 0.99), ('p99.9', 0.999)):
            xs = [ns for p, ns in pct if p >= q]
            if xs:
                rt['aeron'][k].append(xs[0])
        rt['aeron']['round'].append(r)
for sysn in ('cacheline', 'evbus', 'aeron'):
    print(f"  {sysn:9s} " + "  ".join(f"{k} {med(rt[sysn][k])}" for k in ('p50', 'p99', 'p99.9')))
cl = dict(zip(rt['cacheline']['round'], rt['cacheline']['p50']))
ev = dict(zip(rt['evbus']['round'], rt['evbus']['p50']))
ae = dict(zip(rt['aeron']['round'], rt['aeron']['p50']))
print(f"  evbus p50 / cache line, same invocation: {med([ev[r] / cl[r] for r in ev if r in cl])}")
print(f"  Aeron p50 / cache line of the evbus invocation of its round: {med([ae[r] / cl[r] for r in ae if r in cl])}")
print(f"  evbus p50 / Aeron p50, same round: {med([ev[r] / ae[r] for r in ev if r in ae])}")
