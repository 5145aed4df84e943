import re,sys,collections,statistics as stt
def segs(fn):
    ents={};calls=[]
    for l in open(fn):
        m=re.match(r'\s*(\d+)\s+([\d.]+):\s+syscalls:sys_(enter|exit)_(\w+):\s*(.*)',l)
        if not m: continue
        tid,t,ee,name,rest=m.groups(); t=float(t)
        if ee=='enter': ents[(tid,name)]=(t,rest)
        elif (tid,name) in ents:
            t0,a=ents.pop((tid,name)); calls.append((t0,tid,name,t-t0,a))
    calls.sort()
    cnt=collections.Counter(c[1] for c in calls if c[2]=='pwrite64'); ftid=cnt.most_common(1)[0][0]
    out=[];last=None
    for c in calls:
        if c[1]!=ftid: continue
        if c[2]=='pwrite64':
            m=re.search(r'count: (0x[0-9a-f]+), pos: (0x[0-9a-f]+)',c[4]); last=int(m.group(1),16)+int(m.group(2),16)
        elif c[2]=='fdatasync' and last and last%(64<<20)==0: out.append(c[3]*1e3)
    return out[1:]
xs=[x for f in sys.argv[1:] for x in segs(f)]
xs.sort(); n=len(xs)
print('n %d median %.2f p25 %.2f p75 %.2f p90 %.2f max %.2f ms'%(n,stt.median(xs),xs[n//4],xs[3*n//4],xs[int(.9*n)],xs[-1]))
