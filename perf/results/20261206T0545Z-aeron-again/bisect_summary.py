import collections, re, statistics as st, sys
inv, cur = collections.OrderedDict(), None
for line in open(sys.argv[1], errors='replace'):
    m = re.match(r'# round (\d+) (\S+) probe-(before|after) (\d+)', line)
    if m:
        k = (int(m.group(1)), m.group(2))
        if m.group(3) == 'before':
            cur = inv.setdefault(k, {'p': [], 'r': {}})
        cur['p'].append(int(m.group(4)))
        continue
    if cur is None:
        continue
    m = re.search(r'cache-line RTT probe (\d+) ns', line)
    if m:
        cur['p'].append(int(m.group(1)))
    m = re.match(r'\s+size 64 run 1 (\S+)\s+([\d.]+) Mev/s', line)
    if m:
        cur['r'][m.group(1)] = float(m.group(2))
near = {k: v for k, v in inv.items() if max(v['p']) < 200}
tags = list(dict.fromkeys(t for r, t in inv))
impls = sorted({i for v in near.values() for i in v['r']})
print(f"{len(near)} of {len(inv)} near")
for t in tags:
    print(t, '  '.join(f"{i} {st.median([v['r'][i] for (r, tt), v in near.items() if tt == t and i in v['r']]):.2f}" for i in impls if any(tt == t and i in v['r'] for (r, tt), v in near.items())), f"(n {sum(1 for (r, tt) in near if tt == t)})")
