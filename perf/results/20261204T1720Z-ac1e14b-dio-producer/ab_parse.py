import re,sys,glob,statistics as st,collections
d=sys.argv[1]
rows=collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(d+'/r*-*.txt')):
    m=re.search(r'r(\d+)-(\w+)\.txt',f); r,v=m.group(1),m.group(2)
    t=open(f).read()
    fd=re.search(r'run 1 fio-direct +(\d+) MB/s',t); fb=re.search(r'run 1 fio-buf +(\d+) MB/s',t)
    fd=float(fd.group(1)) if fd else None
    for impl in ('async-batch','dio-batch'):
        x=re.search(impl+r'.*?\(log (\d+) MB/s\).*?cpu main ([\d.]+) flusher ([\d.]+) main (\d+) ns/ev (\d+) sleeps',t)
        if not x: print('missing',f,impl); continue
        log,cm,cf,ns,sl=float(x.group(1)),float(x.group(2)),float(x.group(3)),float(x.group(4)),int(x.group(5))
        rows[(impl,v)]['ratio'].append(log/fd if fd else float('nan'))
        rows[(impl,v)]['log'].append(log); rows[(impl,v)]['cpu'].append(cm); rows[(impl,v)]['fl'].append(cf)
        rows[(impl,v)]['ns'].append(ns); rows[(impl,v)]['sleeps'].append(sl); rows[(impl,v)]['fio'].append(fd)
print(f"{'impl':12} {'v':2} {'n':>2} {'log MB/s':>9} {'÷fio-dir':>9} {'[min..max]':>13} {'cpu main':>9} {'[min..max]':>11} {'ns/ev':>6} {'flusher':>7} {'sleeps':>6} {'fio-dir':>7}")
for (impl,v),c in sorted(rows.items()):
    md=lambda k: st.median(c[k])
    print(f"{impl:12} {v:2} {len(c['log']):2} {md('log'):9.0f} {md('ratio'):9.2f} [{min(c['ratio']):.2f}..{max(c['ratio']):.2f}] {md('cpu'):9.2f} [{min(c['cpu']):.2f}..{max(c['cpu']):.2f}] {md('ns'):6.0f} {md('fl'):7.2f} {md('sleeps'):6.0f} {md('fio'):7.0f}")
