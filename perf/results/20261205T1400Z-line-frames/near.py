import sys, re, statistics as st, collections
# per-run parse of bench_throughput output; keep runs whose probe < 200 ns
# usage: near.py FILE LABEL=REGEX ...
f=sys.argv[1]; labels=[a.split('=',1) for a in sys.argv[2:]]
d=collections.defaultdict(list); b=None; probe=None
for line in open(f, errors='replace'):
    if line.startswith('# cmd'):
        b=next((l for l,rx in labels if re.search(rx,line)), 'other')
    m=re.match(r'\s+size (\S+) run \d+ cache-line RTT probe (\d+) ns', line)
    if m: probe=int(m.group(2)); continue
    m=re.match(r'\s+size (\S+) run \d+ (\S+)\s+([\d.]+) Mev/s', line)
    if m and probe is not None and probe < 200:
        d[(int(m.group(1)) if m.group(1).isdigit() else m.group(1), m.group(2), b)].append(float(m.group(3)))
for k in sorted(d, key=lambda k:(str(k[0]).zfill(8),k[1],k[2])):
    v=d[k]; print(k[0], k[1], k[2], 'n=%d'%len(v), 'med %.2f'%st.median(v), '[%.2f..%.2f]'%(min(v),max(v)))
