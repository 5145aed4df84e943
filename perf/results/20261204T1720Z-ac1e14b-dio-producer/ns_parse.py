import re,sys,collections,statistics as st
d=collections.defaultdict(list)
for l in open(sys.argv[1]):
    w=l.split(); v=w[0]; impl=w[6] if w[2]=='load' else w[4]
    m=re.search(r'\(log (\d+).*cpu main ([\d.]+).*main (\d+) ns/ev (\d+) sleeps',l)
    d[(impl,v)].append((int(m.group(1)),float(m.group(2)),int(m.group(3)),int(m.group(4))))
for k,xs in sorted(d.items()):
    ns=[x[2] for x in xs]
    print(f"{k[0]:12} {k[1]} n={len(xs)} ns/ev med {st.median(ns):4.0f}  sorted {sorted(ns)}  cpu med {st.median([x[1] for x in xs]):.2f}  log med {st.median([x[0] for x in xs]):.0f}")
