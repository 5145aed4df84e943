import re,sys,statistics as st,collections
f,A,B=sys.argv[1],sys.argv[2],sys.argv[3]
cur=None; tp=collections.defaultdict(dict); pp=collections.defaultdict(dict)
for line in open(f):
    m=re.match(r'## round (\d+) lib (\w+) read (\w+)',line)
    if m: cur=m.groups(); continue
    m=re.match(r'\s+size 64 run 1 (\S+)\s+([\d.]+) Mev/s',line)
    if m and cur: tp[(cur[0],m.group(1))][cur[1]]=float(m.group(2))
    m=re.match(r'(cacheline|evbus)\s+1\s+(\d+)\s+(\d+)\s+(\d+)',line)
    if m and cur and cur[2]=='pingpong': pp[(cur[0],m.group(1))][cur[1]]=(int(m.group(2)),int(m.group(4)))
rounds=sorted({k[0] for k in tp}|{k[0] for k in pp})
for impl in ('spsc-ring','evbus-single','evbus-claim'):
    rs=[tp[(r,impl)][B]/tp[(r,impl)][A] for r in rounds if B in tp[(r,impl)] and A in tp[(r,impl)]]
    if rs: print(impl,A,[tp[(r,impl)].get(A) for r in rounds],B,[tp[(r,impl)].get(B) for r in rounds],f'{B}/{A} med',round(st.median(rs),3),[round(x,2) for x in rs])
rat=collections.defaultdict(list)
for r in rounds:
    row=[]
    for v in (A,B):
        c=pp[(r,'cacheline')].get(v); e=pp[(r,'evbus')].get(v)
        if c and e: row.append(f"{v}: p50 {e[0]} cl {c[0]} x{e[0]/c[0]:.2f} p99.9 {e[1]}"); rat[v].append(e[0]/c[0])
    print(r,row)
for v,x in rat.items(): print(v,'RTT/cl median',round(st.median(x),2))
