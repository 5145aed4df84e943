import sys,re,collections
ents={}; calls=[]
for l in open(sys.argv[1]):
    m=re.match(r'\s*(\d+)\s+([\d.]+):\s+syscalls:sys_(enter|exit)_(\w+):\s*(.*)',l)
    if not m: continue
    tid,t,ee,name,rest=m.groups(); t=float(t)
    if ee=='enter': ents[(tid,name)]=(t,rest)
    elif (tid,name) in ents:
        t0,args=ents.pop((tid,name)); calls.append((tid,name,t0,t-t0,args,rest))
cnt=collections.Counter(c[0] for c in calls if c[1]=='pwrite64')
ftid=cnt.most_common(1)[0][0]
fl=[c for c in calls if c[0]==ftid]
def q(xs):
    xs=sorted(xs); n=len(xs)
    return 'n %d med %.2f p90 %.2f max %.2f sum %.1f ms'%(n,xs[n//2]*1e3,xs[int(n*.9)]*1e3,xs[-1]*1e3,sum(xs)*1e3) if n else 'n 0'
seg=[];oth=[];last=None
for c in fl:
    if c[1]=='pwrite64':
        m=re.search(r'count: (0x[0-9a-f]+), pos: (0x[0-9a-f]+)',c[4]); last=int(m.group(1),16)+int(m.group(2),16)
    elif c[1]=='fdatasync':
        (seg if last is not None and last%(64<<20)==0 and last>0 else oth).append(c[3])
print('segment-end fdatasync:', q(seg[1:]) , '(first, the warm-up lap, left out)')
print('other flusher fdatasync:', q(oth))
fs=[c[3] for c in fl if c[1]=='fdatasync']
print('flusher fdatasync:', q(fs))
print('flusher fdatasync ms, in order:', ' '.join('%.1f'%(x*1e3) for x in fs))
print('flusher pwrite64:', q([c[3] for c in fl if c[1]=='pwrite64']))
print('flusher sync_file_range:', q([c[3] for c in fl if c[1]=='sync_file_range']))
print('flusher fallocate:', q([c[3] for c in fl if c[1]=='fallocate']))
if fl: print('flusher span %.3f s'%(fl[-1][2]-fl[0][2]))
