#!/usr/bin/env python3
"""uring_ops.py - summarise `perf script` output of io_uring:io_uring_submit_req,
io_uring:io_uring_complete and ext4:ext4_sync_file_enter/exit: per opcode, how
many, bytes per write, latency (submit to complete; for an fdatasync linked
behind a write, from that write's completion), and the gaps where nothing
was in flight (the flusher's own time between rounds). Used by perf/durable.sh.
The trace is system-wide: run it on an otherwise idle machine. ext4 fsync
calls are also listed by thread name (io_uring workers run the flusher's
fdatasyncs; the benchmark's own threads make the rest, e.g. segment building).

usage: perf script -i perf.data | perf/uring_ops.py [--comm NAME]
"""
import re, sys, statistics as st

sub = {}
ops = {}          # opcode -> list of (lat_us, res)
inflight = 0
last_idle_start = None
idle = []          # gaps with nothing in flight, us
first = last = None
last_write_done = None
sync_enter = {}    # tid -> (t, comm)
syncs = {}         # comm class -> [(duration us, start us)]
rx = re.compile(r'^\s*(\S.*?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$')
for line in sys.stdin:
    m = rx.match(line)
    if not m:
        continue
    comm, tid, cpu, t, ev, rest = m.groups()
    t = float(t) * 1e6
    if ev.endswith('io_uring_submit_req'):
        req = re.search(r'req (0x[0-9a-f]+)', rest).group(1)
        op = re.search(r'opcode (\S+)', rest).group(1).rstrip(',')
        sub[req] = (t, op)
        if inflight == 0 and last_idle_start is not None:
            idle.append(t - last_idle_start)
        inflight += 1
        first = t if first is None else first
    elif ev.endswith('ext4_sync_file_enter'):
        sync_enter[tid] = (t, comm)
    elif ev.endswith('ext4_sync_file_exit') and tid in sync_enter:
        t0, c = sync_enter.pop(tid)
        kind = 'io_uring worker' if c.startswith('iou-wrk') else c
        syncs.setdefault(kind, []).append((t - t0, t0))
    elif ev.endswith('io_uring_complete'):
        req = re.search(r'req (0x[0-9a-f]+)', rest).group(1)
        res = int(re.search(r'result (-?\d+)', rest).group(1))
        if req not in sub:
            continue
        t0, op = sub.pop(req)
        if op.startswith('FSYNC') and last_write_done is not None and last_write_done > t0:
            t0 = last_write_done  # linked behind a write: time the fdatasync alone
        if op.startswith('WRITE'):
            last_write_done = t
        ops.setdefault(op, []).append((t - t0, res))
        inflight -= 1
        if inflight == 0:
            last_idle_start = t
        last = t

def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(q * len(v) + 0.999999) - 1))]

span = (last - first) / 1e6 if first is not None and last else 0
print(f"io_uring ops over {span:.2f} s")
for op, v in sorted(ops.items()):
    lat = [x[0] for x in v]
    res = [x[1] for x in v if x[1] > 0]
    busy = sum(lat) / 1e6
    line = (f"  {op:6s} n={len(v):6d}  latency us p50 {pct(lat, .5):8.0f} p90 {pct(lat, .9):8.0f} "
            f"max {max(lat):8.0f}  sum {busy:.2f} s")
    if res:
        line += (f"  bytes/op mean {st.mean(res)/1048576:.2f} MiB p50 {pct(res, .5)/1048576:.2f} "
                 f"MiB, total {sum(res)/1e9:.2f} GB")
    print(line)
if idle:
    print(f"  nothing in flight: {len(idle)} gaps, p50 {pct(idle, .5):.0f} us, p90 {pct(idle, .9):.0f} us, "
          f"sum {sum(idle)/1e6:.2f} s ({100*sum(idle)/1e6/span if span else 0:.0f}% of the span)")
for kind, v in sorted(syncs.items()):
    d = [x[0] for x in v]
    print(f"  fsync/fdatasync calls by {kind}: n={len(v)} p50 {pct(d, .5):.0f} us p99 {pct(d, .99):.0f} us "
          f"max {max(d):.0f} us, sum {sum(d)/1e6:.2f} s")
