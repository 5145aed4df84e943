import re,statistics,sys
cur=None; rows=[]
for l in open(sys.argv[1]):
    m=re.match(r'### round (\d+) variant (\w+)',l)
    if m: cur={'r':int(m.group(1)),'v':m.group(2)}; rows.append(cur); continue
    f=l.split()
    if len(f)>3 and f[1].startswith(('spsc','evbus')): cur[f[1]]=float(f[3])
    if 'probe' in l: cur['probe']=int(re.search(r'median (\d+)',l).group(1))
vs=sorted(set(r['v'] for r in rows))
for place,cond in (('near',lambda p:p<200),('far',lambda p:p>=200)):
    for v in vs:
        sel=[r for r in rows if r['v']==v and cond(r.get('probe',999)) and 'evbus-claim' in r]
        if not sel: continue
        med=lambda k:statistics.median([r[k] for r in sel])
        print(place,v,'n',len(sel),'ring %.2f single %.2f claim %.2f'%(med('spsc-ring'),med('evbus-single'),med('evbus-claim')),
              'claim/single %.3f [%.2f..%.2f]'%(statistics.median([r['evbus-claim']/r['evbus-single'] for r in sel]),min(r['evbus-claim']/r['evbus-single'] for r in sel),max(r['evbus-claim']/r['evbus-single'] for r in sel)))
# paired per round, both near
byr={}
for r in rows: byr.setdefault(r['r'],{})[r['v']]=r
if len(vs)==2:
    a,b=vs
    pr=[(x[a],x[b]) for x in byr.values() if a in x and b in x and x[a].get('probe',999)<200 and x[b].get('probe',999)<200]
    for k in ('evbus-single','evbus-claim'):
        if pr: print('paired near',k,b,'/',a,'%.3f'%statistics.median([q[k]/p[k] for p,q in pr]),'n',len(pr))
