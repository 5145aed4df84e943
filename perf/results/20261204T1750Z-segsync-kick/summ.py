import sys,re,collections,statistics as st
rows=collections.defaultdict(list)
for f in sys.argv[1:]:
    lib=None; fio={}
    for l in open(f):
        m=re.match(r'### round (\d+) lib (\S+)',l)
        if m: lib=m.group(2); fio={}; continue
        m=re.match(r'\s+run \d+ (fio-\S+)\s+(\d+) MB/s',l)
        if m: fio[m.group(1)]=float(m.group(2)); continue
        m=re.match(r'\s+run \d+ (\S+)\s+ring.*\(log (\d+) MB/s\).*sync tail ([\d.]+) ms cpu main ([\d.]+) flusher ([\d.]+) main (\d+) ns/ev',l)
        if m:
            impl,log,tail,cm,cf,ns=m.groups()
            rows[(impl,lib)].append((float(log)/fio['fio-direct'],float(cm),float(cf),float(tail),float(log),fio['fio-direct'],fio.get('fio-buf',0)))
for k in sorted(rows):
    v=rows[k]; md=lambda i: st.median(x[i] for x in v)
    print('%-12s %-3s n %2d  /fio-direct med %.2f [%.2f..%.2f]  prodCPU %.2f flusherCPU %.2f  tail %.0f ms  log %.0f MB/s  fio-direct %.0f fio-buf %.0f'%(k[0],k[1],len(v),md(0),min(x[0] for x in v),max(x[0] for x in v),md(1),md(2),md(3),md(4),md(5),md(6)))
# paired: per round, B's ratio / A's ratio, and the producer ns/event
import itertools
for f in sys.argv[1:]:
    rr=collections.defaultdict(dict); lib=None; r=None; fio={}
    for l in open(f):
        m=re.match(r'### round (\d+) lib (\S+)',l)
        if m: r,lib=m.groups(); fio={}; continue
        m=re.match(r'\s+run \d+ (fio-\S+)\s+(\d+) MB/s',l)
        if m: fio[m.group(1)]=float(m.group(2)); continue
        m=re.match(r'\s+run \d+ (\S+)\s+ring.*\(log (\d+) MB/s\).*main (\d+) ns/ev',l)
        if m: rr[(r,m.group(1))][lib]=(float(m.group(2))/fio['fio-direct'],int(m.group(3)))
    for impl in ('async-batch','dio-batch'):
        xs=[v['B'][0]/v['A'][0] for (r,i),v in rr.items() if i==impl and 'A' in v and 'B' in v]
        ns={l:st.median(v[l][1] for (r,i),v in rr.items() if i==impl and l in v) for l in 'AB'}
        if xs: print(f, impl, 'B/A per round: med %.2f [%.2f..%.2f] n %d'%(st.median(xs),min(xs),max(xs),len(xs)), 'producer ns/ev med A %d B %d'%(ns['A'],ns['B']))
