#!/usr/bin/env python3
"""report.py DIR - tables (report.md) and gnuplot PNGs from the JSON lines
evb_compare wrote into DIR (throughput.jsonl, pingpong.jsonl, ...).

Every figure is a median over rounds; every ratio is the median over
rounds of the per-round ratio (both systems measured in the same round,
minutes apart at most), so drift of a shared machine cancels as far as it
can. The spread column says how noisy a system was: (max - min) / median
of its per-round figure."""
import json
import os
import statistics
import subprocess
import sys

d = sys.argv[1]
ORDER = ['evbus', 'evbus-claim', 'iceoryx', 'zmq', 'nng', 'spsc-ring', 'memcpy', 'cacheline']


def load(test):
    p = os.path.join(d, test + '.jsonl')
    if not os.path.exists(p):
        return None, []
    head, rows = None, []
    for line in open(p):
        line = line.strip()
        if not line.startswith('{'):
            continue
        r = json.loads(line)
        if r.get('header'):
            head = r
        else:
            rows.append(r)
    return head, rows


def med(v):
    return statistics.median(v) if v else None


def spread(v):
    m = med(v)
    return (max(v) - min(v)) / m if v and m else None


def systems_in(rows):
    s = {r['system'] for r in rows}
    return [x for x in ORDER if x in s]


def fmt_rate(v):
    if v is None:
        return '-'
    return '%.3g M' % (v / 1e6) if v >= 1e5 else '%.3g k' % (v / 1e3)


def fmt_ns(v):
    if v is None:
        return '-'
    if v >= 1e6:
        return '%.3g ms' % (v / 1e6)
    if v >= 1e3:
        return '%.3g µs' % (v / 1e3)
    return '%d ns' % v


def fmt_x(v):
    return '-' if v is None else '%.2f' % v


out = []
plots = []
failures = []


def note_failures(rows):
    for r in rows:
        if 'failed' in r:
            failures.append('%s %s run %s: %s' % (r['test'], r['system'], r['run'], r['failed'][:200]))


def probe_line(rows):
    pr = {}
    for r in rows:
        if r.get('probe_ns', 0) > 0:
            pr[(r.get('size'), r['run'], r.get('rate'))] = r['probe_ns']
    v = list(pr.values())
    if v:
        out.append('Cache-line round-trip probe before each round: median %.0f ns, %.0f..%.0f ns '
                   '(a quiet run of this VM: 120-130 ns).\n' % (med(v), min(v), max(v)))


def gp(script, name):
    path = os.path.join(d, name)
    try:
        subprocess.run(['gnuplot'], input=script.replace('@OUT@', path), text=True, check=True)
        plots.append(name)
    except (OSError, subprocess.CalledProcessError) as e:
        out.append('(gnuplot failed for %s: %s)\n' % (name, e))


# ---- throughput --------------------------------------------------------
head, rows = load('throughput')
if rows:
    note_failures(rows)
    ok = [r for r in rows if 'events_per_s' in r]
    systems = systems_in(ok)
    sizes = sorted({r['size'] for r in ok})
    by = {}
    for r in ok:
        by.setdefault((r['system'], r['size']), {})[r['run']] = r['events_per_s']
    out.append('### 1 → 1 throughput (events/s, median over rounds; reader sums every byte)\n')
    probe_line(ok)
    out.append('| value | ' + ' | '.join(systems) + ' |')
    out.append('|---' * (len(systems) + 1) + '|')
    for sz in sizes:
        cells = []
        for s in systems:
            v = list(by.get((s, sz), {}).values())
            sp = spread(v)
            cells.append('-' if not v else '%s/s (±%.0f%%)' % (fmt_rate(med(v)), 50 * sp))
        out.append('| %d B | ' % sz + ' | '.join(cells) + ' |')
    out.append('\n(±: half the spread (max - min) / median over rounds.)\n')
    # ratios in the same round
    for base in ('spsc-ring', 'memcpy'):
        if base not in systems:
            continue
        others = [s for s in systems if s not in ('spsc-ring', 'memcpy')]
        out.append('Per-round ratio to **%s** of the same round (events/s; memcpy: one thread '
                   'copying the same values), median:\n' % base)
        out.append('| value | ' + ' | '.join(others) + ' |')
        out.append('|---' * (len(others) + 1) + '|')
        for sz in sizes:
            b = by.get((base, sz), {})
            cells = []
            for s in others:
                a = by.get((s, sz), {})
                q = [a[k] / b[k] for k in a if k in b and b[k] > 0]
                cells.append(fmt_x(med(q)))
            out.append('| %d B | ' % sz + ' | '.join(cells) + ' |')
        out.append('')
    if 'evbus' in systems:
        peers = [s for s in systems if s not in ('evbus',)]
        out.append('evbus ÷ each system, same round (median; above 1: evbus faster):\n')
        out.append('| value | ' + ' | '.join(peers) + ' |')
        out.append('|---' * (len(peers) + 1) + '|')
        for sz in sizes:
            a = by.get(('evbus', sz), {})
            cells = []
            for s in peers:
                b = by.get((s, sz), {})
                q = [a[k] / b[k] for k in a if k in b and b[k] > 0]
                cells.append(fmt_x(med(q)))
            out.append('| %d B | ' % sz + ' | '.join(cells) + ' |')
        out.append('')
    dat = os.path.join(d, 'throughput.dat')
    with open(dat, 'w') as f:
        for s in systems:
            f.write('"%s"\n' % s)
            for sz in sizes:
                v = list(by.get((s, sz), {}).values())
                if v:
                    f.write('%d %g %g %g\n' % (sz, med(v), min(v), max(v)))
            f.write('\n\n')
    n = len(systems)
    gp('''set terminal pngcairo size 1400,560 font ",11"
set output "@OUT@"
set multiplot layout 1,2 title "1 -> 1 throughput, two processes on two cores, median of rounds (bars: min..max)"
set logscale xy
set grid
set key outside right top
set xlabel "value size (bytes)"
set xtics ("8" 8, "64" 64, "256" 256, "1K" 1024, "4K" 4096, "64K" 65536)
set ylabel "events per second"
set format y "10^{%%L}"
plot for [i=0:%d] "%s" index i using 1:2:3:4 with yerrorlines title columnheader(1) lw 2
set ylabel "value bytes per second (MB/s, 10^6)"
plot for [i=0:%d] "%s" index i using 1:($2*$1/1e6):($3*$1/1e6):($4*$1/1e6) with yerrorlines title columnheader(1) lw 2
unset multiplot
''' % (n - 1, dat, n - 1, dat), 'throughput.png')

# ---- round trip ----------------------------------------------------------
PCT = ['50', '90', '99', '99.9', '99.99', '100']
PX = {'50': 2, '90': 10, '99': 100, '99.9': 1000, '99.99': 10000, '100': 100000}


def pct_table(rows, key_fn, keys, base_fn=None):
    """rows grouped by key_fn(r) -> median per percentile and p50 ratio to base."""
    g = {}
    for r in rows:
        g.setdefault(key_fn(r), []).append(r)
    res = {}
    for k in keys:
        rs = g.get(k, [])
        if not rs:
            continue
        res[k] = {p: med([r['pct'][p] for r in rs]) for p in PCT}
        res[k]['runs'] = len(rs)
        res[k]['by_run'] = {r['run']: r for r in rs}
    return res


def write_pct_dat(name, series):
    path = os.path.join(d, name)
    with open(path, 'w') as f:
        for title, pc in series:
            f.write('"%s"\n' % title)
            for p in PCT:
                f.write('%g %g\n' % (PX[p], pc[p]))
            f.write('\n\n')
    return path


PCT_PLOT = '''set logscale xy
set grid
set key outside right top
set xlabel "percentile"
set xtics ("p50" 2, "p90" 10, "p99" 100, "p99.9" 1000, "p99.99" 10000, "max" 100000)
set ylabel "latency (ns)"
set format y "10^{%L}"
'''

head, rows = load('pingpong')
if rows:
    note_failures(rows)
    ok = [r for r in rows if 'pct' in r]
    systems = systems_in(ok)
    modes = [m for m in ('spin', 'block') if any(r.get('mode', 'spin') == m for r in ok)]
    keys = [(s, m) for m in modes for s in systems]
    res = pct_table(ok, lambda r: (r['system'], r.get('mode', 'spin') if r['system'] != 'cacheline' else 'spin'), keys)
    cl = res.get(('cacheline', 'spin'))
    out.append('### Round trip, 64 B (A → B → A, one value in flight; median over rounds)\n')
    probe_line(ok)
    out.append('| system | reader | p50 | p99 | p99.9 | max | p50 ÷ cache line p50 | p99.9 ÷ cache line p50 |')
    out.append('|---|---|---|---|---|---|---|---|')
    for k in keys:
        if k not in res:
            continue
        r = res[k]
        q50 = q999 = None
        if cl:
            q50 = med([r['by_run'][i]['pct']['50'] / cl['by_run'][i]['pct']['50']
                       for i in r['by_run'] if i in cl['by_run']])
            q999 = med([r['by_run'][i]['pct']['99.9'] / cl['by_run'][i]['pct']['50']
                        for i in r['by_run'] if i in cl['by_run']])
        out.append('| %s | %s | %s | %s | %s | %s | %s | %s |' % (
            k[0], k[1], fmt_ns(r['50']), fmt_ns(r['99']), fmt_ns(r['99.9']), fmt_ns(r['100']),
            fmt_x(q50), fmt_x(q999)))
    out.append('')
    panels = []
    for m in modes:
        ser = [(s, res[(s, mm)]) for (s, mm) in keys if mm == m and (s, mm) in res]
        if m == 'block' and cl:
            ser.append(('cacheline (spin)', cl))
        path = write_pct_dat('pingpong-%s.dat' % m, ser)
        panels.append('set title "%s readers"\nplot for [i=0:%d] "%s" index i using 1:2 with linespoints '
                      'title columnheader(1) lw 2\n' % (m, len(ser) - 1, path))
    gp('set terminal pngcairo size 1400,560 font ",11"\nset output "@OUT@"\n'
       'set multiplot layout 1,%d title "Round trip of a 64 B value between two processes on two cores '
       '(median of rounds per percentile)"\n' % len(panels) + PCT_PLOT + ''.join(panels) +
       'unset multiplot\n', 'pingpong.png')

# ---- fan-out -----------------------------------------------------------
head, rows = load('fanout')
if rows:
    note_failures(rows)
    ok = [r for r in rows if 'per_reader_min' in r]
    systems = systems_in(ok)
    nmax = max(r['readers'] for r in ok)
    out.append('### Fan-out 1 → %d, 64 B (all readers on the reader CPU; idle readers yield)\n' % nmax)
    probe_line(ok)
    out.append('| system | 1 → 1 events/s | 1 → %d slowest reader | 1 → %d mean reader | '
               'slowest ÷ 1 → 1 (same round) |' % (nmax, nmax))
    out.append('|---|---|---|---|---|')
    for s in systems:
        one = {r['run']: r['per_reader_min'] for r in ok if r['system'] == s and r['readers'] == 1}
        many = {r['run']: r for r in ok if r['system'] == s and r['readers'] == nmax}
        q = [many[k]['per_reader_min'] / one[k] for k in many if k in one]
        out.append('| %s | %s/s | %s/s | %s/s | %s |' % (
            s, fmt_rate(med(list(one.values()))),
            fmt_rate(med([m['per_reader_min'] for m in many.values()])),
            fmt_rate(med([m['per_reader_mean'] for m in many.values()])), fmt_x(med(q))))
    out.append('')

# ---- latency at rates -----------------------------------------------------
head, rows = load('rate')
if rows:
    note_failures(rows)
    ok = [r for r in rows if 'pct' in r]
    systems = systems_in(ok)
    rates = sorted({r['rate'] for r in ok})
    modes = [m for m in ('spin', 'block') if any(r['mode'] == m for r in ok)]
    out.append('### Latency at fixed rates, 64 B, from the intended send time (median over rounds)\n')
    probe_line(ok)
    out.append('| rate | reader | system | p50 | p99 | p99.9 | max | sent (events/s) |')
    out.append('|---|---|---|---|---|---|---|---|')
    panels = []
    for rate in rates:
        for m in modes:
            ser = []
            for s in systems:
                rs = [r for r in ok if r['system'] == s and r['mode'] == m and r['rate'] == rate]
                if not rs:
                    continue
                pc = {p: med([r['pct'][p] for r in rs]) for p in PCT}
                ach = med([r['achieved'] for r in rs])
                out.append('| %s/s | %s | %s | %s | %s | %s | %s | %s%s |' % (
                    fmt_rate(rate), m, s, fmt_ns(pc['50']), fmt_ns(pc['99']), fmt_ns(pc['99.9']),
                    fmt_ns(pc['100']), fmt_rate(ach), '' if ach >= 0.95 * rate else ' **behind**'))
                ser.append((s, pc))
            if ser:
                path = write_pct_dat('rate-%d-%s.dat' % (rate, m), ser)
                panels.append('set title "%s/s, %s readers"\nplot for [i=0:%d] "%s" index i using 1:2 '
                              'with linespoints title columnheader(1) lw 2\n' % (
                                  fmt_rate(rate).replace(' ', ''), m, len(ser) - 1, path))
    out.append('\n"behind": the publisher could not send at the rate (the system held it back); '
               'its latencies then grow with the backlog, as they should.\n')
    idle = [r for r in ok if 'idle_cpu_pct' in r]
    if idle:
        out.append('CPU time a reader burns over an idle second (getrusage, all its threads; '
                   'median over rounds; 100% = one core):\n')
        out.append('| system | ' + ' | '.join('%s reader' % m for m in modes) + ' |')
        out.append('|---' * (len(modes) + 1) + '|')
        for s in systems:
            cells = []
            for m in modes:
                v = [r['idle_cpu_pct'] for r in idle if r['system'] == s and r['mode'] == m]
                cells.append('-' if not v else '%.1f%%' % med(v))
            out.append('| %s | ' % s + ' | '.join(cells) + ' |')
        out.append('')
    gp('set terminal pngcairo size 1400,%d font ",10"\nset output "@OUT@"\n'
       'set multiplot layout %d,%d title "Latency of 64 B values at fixed rates, from the intended '
       'send time (median of rounds per percentile)"\n' % (420 * len(rates), len(rates), len(modes)) +
       PCT_PLOT + ''.join(panels) + 'unset multiplot\n', 'rate.png')

if failures:
    out.append('Failed runs (left out of the medians):\n')
    out.extend('- ' + f for f in failures)
    out.append('')
if plots:
    out.append('Plots: ' + ', '.join(plots) + '\n')
text = '\n'.join(out) + '\n'
open(os.path.join(d, 'report.md'), 'w').write(text)
sys.stdout.write(text)
