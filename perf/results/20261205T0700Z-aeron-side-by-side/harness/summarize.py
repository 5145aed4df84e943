#!/usr/bin/env python3
"""summarize.py - written for the evbus/Aeron side-by-side measurement
(perf/results/20261205T-aeron-side-by-side); not part of evbus.
Parses tput-rNN.txt / rtt-rNN.txt and prints per-round values and ratios.
Placement: a measurement is 'near' when the cache-line probes before and after
it are both < 200 ns, 'far' when both are >= 250 ns, else 'mixed'. Ratios
between two measurements are only formed when both have the same placement
(near/near or far/far)."""
import re, sys, glob, statistics as st, os

D = sys.argv[1] if len(sys.argv) > 1 else '.'
SKIP_DISTURBED = True

def cls(a, b):
    if a is None or b is None: return 'mixed'
    if a < 200 and b < 200: return 'near'
    if a >= 250 and b >= 250: return 'far'
    return 'mixed'

def sections(path):
    """split a round file at '$ ' command lines that start a benchmark"""
    secs, cur = [], None
    for line in open(path):
        if line.startswith('$ ') and ('bench_throughput' in line or 'aeron_session' in line
                                      or 'bench_pingpong' in line) and not line.startswith('$ /work/aeron-bench/aeron_tput') \
                and not line.startswith('$ taskset'):
            cur = {'cmd': line[2:].strip(), 'lines': []}
            secs.append(cur)
        elif cur is not None:
            cur['lines'].append(line.rstrip('\n'))
    return secs

PID_LIMIT = {'evbus': 40, 'aeron': 90, 'rtt': 60}

def disturbed(lines, kind):
    """series 2 (quiet_run.sh): True when the idle gate failed, or the pid
    counter advanced much more than this invocation forks itself (someone
    else forked during it), or > 2 runnable right after it"""
    pre = post = None
    gate_ok = True
    for l in lines:
        if l.startswith('# quiet-gate:') and 'quiet=NO' in l: gate_ok = False
        m = re.match(r'# (pre|post)-loadavg: \S+ \S+ \S+ (\d+)/(\d+) (\d+)', l)
        if m:
            v = (int(m.group(2)), int(m.group(3)), int(m.group(4)))
            if m.group(1) == 'pre': pre = v
            else: post = v
    if pre is None or post is None: return None   # series 1: not recorded
    return (not gate_ok) or (post[2] - pre[2] > PID_LIMIT[kind]) or post[0] > 2

def pp_p50(lines, after_marker):
    """p50 of the 'cacheline' row of a bench_pingpong printed after marker"""
    seen = False
    for l in lines:
        if l.startswith(after_marker): seen = True; continue
        if seen:
            m = re.match(r'cacheline\s+1\s+(\d+)', l)
            if m: return float(m.group(1))
    return None

def tput(D):
    rounds = []
    for f in sorted(glob.glob(os.path.join(D, 'tput-r*.txt'))):
        rnd = {'name': os.path.basename(f)[:-4], 'ev': {}, 'ae': {}}
        for s in sections(f):
            L, cmd = s['lines'], s['cmd']
            if 'bench_throughput' in cmd:
                kind = 'X' if '--exclusive' in cmd else ('S64' if '--ring-bytes 64M' in cmd else 'S')
                pre = next((float(m.group(1)) for l in L for m in [re.search(r'cache-line RTT probe (\d+) ns', l)] if m), None)
                post = pp_p50(L, '# post-probe')
                # bench_pingpong's cacheline p50 is ~30 ns under the probe (timer); both far from 200/250
                d = {'probe': (pre, post), 'cls': cls(pre, post), 'dist': disturbed(L, 'evbus')}
                if d['dist'] and SKIP_DISTURBED: d['cls'] = 'disturbed'
                for l in L:
                    m = re.match(r'\s+size 64 run 1 (spsc-ring-b|spsc-ring|evbus-single|evbus-claim)\s+([\d.]+) Mev/s', l)
                    if m: d[m.group(1)] = float(m.group(2))
                rnd['ev'][kind] = d
            elif 'aeron_session' in cmd:
                var = 'C' if 'term-length=8m' in cmd else ('B' if 'aeron_session.sh 0 ' in cmd else 'A')
                d = {}
                dist = disturbed(L, 'aeron')
                for l in L:
                    m = re.match(r'result aeron-(\w+) run 1 ([\d.e+]+) ev/s probe_before (\d+) probe_after (\d+)', l)
                    if m:
                        a, b = float(m.group(3)), float(m.group(4))
                        d[m.group(1)] = (float(m.group(2)) / 1e6, 'disturbed' if dist and SKIP_DISTURBED else cls(a, b), a, b)
                    m = re.search(r'aeron-(\w+) .*driver cpu (\d+) ms in the timed span', l)
                    if m: d.setdefault('drv', {})[m.group(1)] = float(m.group(2))
                rnd['ae'][var] = d
        rounds.append(rnd)
    return rounds

def fmt(v):
    if not v: return 'n=0'
    return '%.3f [%.3f..%.3f] n=%d' % (st.median(v), min(v), max(v), len(v))

def main():
    rounds = tput(D)
    if rounds:
        print('== throughput, 64 B, 1 -> 1, Mev/s per round (placement: n=near f=far m=mixed) ==')
        hdr = 'round  (S = shared, X = --exclusive, S64 = shared --ring-bytes 64M) evS:pl ring ringb single claim | evX:pl ring ringb single claim | A offer claim xoffer xclaim | C(term 8m) ... | B(driver on cpu0) ...'
        print(hdr)
        for r in rounds:
            out = [r['name']]
            for k in 'S', 'X', 'S64':
                e = r['ev'].get(k, {})
                out.append('%s:%s %.2f %.2f %.2f %.2f |' % (k, e.get('cls', '?')[0], e.get('spsc-ring', 0), e.get('spsc-ring-b', 0), e.get('evbus-single', 0), e.get('evbus-claim', 0)))
            for v in 'A', 'C', 'B':
                a = r['ae'].get(v, {})
                out.append(v + ' ' + ' '.join('%.2f%s' % (a[m][0], a[m][1][0]) if m in a else '-' for m in ('offer', 'claim', 'xoffer', 'xclaim')) + ' |')
            print(' '.join(out))
        # ratios
        for plc in ('near', 'far'):
            print('\n== ratios, same round, same placement: %s ==' % plc)
            R = {}
            def add(k, v): R.setdefault(k, []).append(v)
            raw = {}
            def addraw(k, v): raw.setdefault(k, []).append(v)
            for r in rounds:
                evs = {k: e for k, e in r['ev'].items() if e.get('cls') == plc}
                for k, e in evs.items():
                    add('evbus %s single / ring' % k, e['evbus-single'] / e['spsc-ring'])
                    add('evbus %s claim / ring' % k, e['evbus-claim'] / e['spsc-ring'])
                    add('evbus %s single / ringb' % k, e['evbus-single'] / e['spsc-ring-b'])
                    add('evbus %s claim / ringb' % k, e['evbus-claim'] / e['spsc-ring-b'])
                    for n in ('spsc-ring', 'spsc-ring-b', 'evbus-single', 'evbus-claim'):
                        addraw('evbus %s %s' % (k, n), e[n])
                for v, a in r['ae'].items():
                    for m in ('offer', 'claim', 'xoffer', 'xclaim'):
                        if m in a and a[m][1] == plc: addraw('aeron %s %s (all runs of this placement)' % (v, m), a[m][0])
                e64 = evs.pop('S64', None)
                if e64:
                    for v, a in r['ae'].items():
                        for m in ('offer', 'claim'):
                            if m in a and a[m][1] == plc and v in 'AB':
                                add('aeron %s %s / ring64M' % (v, m), a[m][0] / e64['spsc-ring'])
                                add('aeron %s %s / ringb64M' % (v, m), a[m][0] / e64['spsc-ring-b'])
                                add('evbus S64 %s / aeron %s %s' % ('single' if m == 'offer' else 'claim', v, m),
                                    e64['evbus-single' if m == 'offer' else 'evbus-claim'] / a[m][0])
                if not evs: continue
                ring = st.mean(e['spsc-ring'] for e in evs.values())
                ringb = st.mean(e['spsc-ring-b'] for e in evs.values())
                for v, a in r['ae'].items():
                    for m in ('offer', 'claim', 'xoffer', 'xclaim'):
                        if m not in a or a[m][1] != plc: continue
                        x = a[m][0]
                        add('aeron %s %s / ring' % (v, m), x / ring)
                        add('aeron %s %s / ringb' % (v, m), x / ringb)
                        pair = {'offer': ('S', 'evbus-single'), 'claim': ('S', 'evbus-claim'),
                                'xoffer': ('X', 'evbus-single'), 'xclaim': ('X', 'evbus-claim')}[m]
                        if pair[0] in evs:
                            add('evbus %s %s / aeron %s %s' % (pair[0], pair[1][6:], v, m), evs[pair[0]][pair[1]] / x)
            for k in sorted(raw): print('  %-38s %s Mev/s' % (k, fmt(raw[k])))
            for k in sorted(R): print('  %-38s %s' % (k, fmt(R[k])))
            drv = {}
            for r in rounds:
                for v, a in r['ae'].items():
                    for m, ms in a.get('drv', {}).items():
                        if m in a and a[m][1] == plc and m != 'drv': drv.setdefault('%s %s' % (v, m), []).append(ms)
            for k in sorted(drv): print('  driver cpu ms per ~400 ms timed span, %-12s %s' % (k, fmt(drv[k])))

main()

def hdr_pct(lines, p):
    rows = []
    for l in lines:
        m = re.match(r'\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+([\d.]+|inf)$', l)
        if m: rows.append((float(m.group(1)) * 1000.0, float(m.group(2))))
    for v, q in rows:
        if q >= p: return v
    return None

def pp_rows(lines):
    """first per-run table rows of bench_pingpong: impl -> (p50, p99, p999)"""
    d = {}
    for l in lines:
        m = re.match(r'(cacheline|evbus)\s+1\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)', l)
        if m and m.group(1) not in d:
            d[m.group(1)] = tuple(float(m.group(i)) for i in (2, 3, 4))
    return d

def rtt(D):
    files = sorted(glob.glob(os.path.join(D, os.environ.get('RTT_PREFIX', 'rtt-r') + '*.txt')))
    if not files: return
    print('\n== round trip, 64 B, ns: p50 p99 p99.9 (cacheline = bench_pingpong cache-line floor of the same invocation;'
          ' Aeron: cache-line probe just before and after cping) ==')
    R = {}
    def add(k, v): R.setdefault(k, []).append(v)
    for f in files:
        secs = sections(f)
        out = [os.path.basename(f)[:-4]]
        for s in secs:
            L, cmd = s['lines'], s['cmd']
            if 'aeron_session' in cmd:
                pre = pp_rows(L[:L.index('# aeron:')]) if '# aeron:' in L else {}
                post = pp_rows(L[L.index('# post-probe:'):]) if '# post-probe:' in L else {}
                a = tuple(hdr_pct(L, p) for p in (0.5, 0.99, 0.999))
                cl = (pre['cacheline'][0], post['cacheline'][0])
                c = cls(cl[0], cl[1])
                out.append('| aeron %s cl %.0f/%.0f: %.0f %.0f %.0f' % (c[0], cl[0], cl[1], *a))
                key = 'aeron'
                for i, n in enumerate(('p50', 'p99', 'p99.9')): add((c, 'aeron cping/cpong ' + n), a[i])
                add((c, 'aeron p50 / cacheline p50 (mean of probe before+after)'), a[0] / st.mean(cl))
                aer = (c, a[0], st.mean(cl))
            else:
                kind = 'evbus --exclusive' if '--exclusive' in cmd else 'evbus shared'
                d = pp_rows(L[:L.index('# post-probe:')])
                post = pp_rows(L[L.index('# post-probe:'):])
                c = cls(d['cacheline'][0], post['cacheline'][0])
                out.append('| %s %s cl %.0f %.0f %.0f: %.0f %.0f %.0f' % (kind, c[0], *d['cacheline'], *d['evbus']))
                for i, n in enumerate(('p50', 'p99', 'p99.9')):
                    add((c, kind + ' ' + n), d['evbus'][i])
                    add((c, 'cacheline (in %s) %s' % (kind, n)), d['cacheline'][i])
                add((c, kind + ' p50 / cacheline p50 (same invocation)'), d['evbus'][0] / d['cacheline'][0])
                s['res'] = (c, d['evbus'][0])
        print(' '.join(out))
        # evbus p50 / aeron p50 when same placement
        res = [s.get('res') for s in secs if 'res' in s]
        for s in secs:
            if 'res' in s and s['res'][0] == aer[0] and aer[0] != 'mixed':
                add((aer[0], ('evbus --exclusive' if '--exclusive' in s['cmd'] else 'evbus shared') + ' p50 / aeron p50'), s['res'][1] / aer[1])
    for k in sorted(R): print('  %-5s %-58s %s' % (k[0], k[1], fmt(R[k])))

rtt(D)
