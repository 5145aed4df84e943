import re,sys,collections
ents={};calls=[]
for l in open(sys.argv[1]):
    m=re.match(r'\s*(\d+)\s+([\d.]+):\s+syscalls:sys_(enter|exit)_(\w+):\s*(.*)',l)
    if not m: continue
    tid,t,ee,name,rest=m.groups(); t=float(t)
    if ee=='enter': ents[(tid,name)]=(t,rest)
    elif (tid,name) in ents:
        t0,a=ents.pop((tid,name)); calls.append((t0,tid,name,t-t0,a))
calls.sort()
cnt=collections.Counter(c[1] for c in calls if c[2]=='pwrite64'); ftid=cnt.most_common(1)[0][0]
fl=[c for c in calls if c[1]==ftid]
sw=[];gaps=[];prev_end=None;after_seg=False;last=0;wsum=0
for c in fl:
    if c[2]=='pwrite64':
        m=re.search(r'count: (0x[0-9a-f]+), pos: (0x[0-9a-f]+)',c[4]); n=int(m.group(1),16)
        if n<4096: continue
        if prev_end is not None:
            (sw if after_seg else gaps).append(c[0]-prev_end)
        prev_end=c[0]+c[3]; after_seg=False; wsum+=c[3]
        last=n+int(m.group(2),16)
    elif c[2]=='fdatasync' and last%(64<<20)==0:
        after_seg=True
span=fl[-1][0]-fl[0][0]
md=lambda x: sorted(x)[len(x)//2]*1e3 if x else 0
print('%s: writes %.0f ms of %.0f ms span; gaps between writes n %d sum %.1f ms med %.3f ms; at segment switches (fdatasync incl.) n %d sum %.1f ms med %.2f ms'%(sys.argv[1],wsum*1e3,span*1e3,len(gaps),sum(gaps)*1e3,md(gaps),len(sw),sum(sw)*1e3,md(sw)))
