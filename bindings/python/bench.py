#!/usr/bin/env python3
"""Python consumer throughput next to the C consumer's, in one run.

For each value size: the C figure is perf/bench_throughput's "evbus-batch"
(a C producer, evb_publish_batch of 32, into a 1-partition topic with an
8 MiB ring; a C lossless subscriber with EVB_IDLE_SPIN reading through
evb_consumer_poll and summing every word). The Python figures use the
same producer shape (perf/feed.c, `evb_feed --plain`, batches of 32) and
a lossless subscriber in this process, pinned to the other core:

  poll   c.poll(1024) batches; per event: ev.value and ev.offset
  iter   for ev in c.events(): ev.value and ev.offset
  numpy  c.poll_numpy(4096, dtype): per batch the sum of the first word

Then the same with every event in the ring before the clock starts (no
producer running: the consumer's own cost, --prefill-events), plus "raw":
evb_consumer_read_batch through ctypes with nothing done per event, and
"floor": no evbus, a loop making one memoryview and one tuple per event.

Events/s are taken from the first event received to the last; each of
--runs rounds runs C and every Python mode once, and the ratio to C is
taken within a round (median of rounds, min and max shown). Run from the source tree after building:

  python3 bindings/python/bench.py --build build [--sizes 64,1024] [--runs 5]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
import evbus  # noqa: E402


def idle_fraction(seconds: float = 1.0) -> float:
    """The share of CPU time spent idle over SECONDS (/proc/stat)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)
    i0, t0 = sample()
    time.sleep(seconds)
    i1, t1 = sample()
    return (i1 - i0) / max(1, t1 - t0)


def wait_quiet(limit: float) -> None:
    """Wait up to LIMIT s for the CPUs to be at least 90% idle, as perf/run.sh."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        idle = idle_fraction()
        if idle >= 0.9:
            print(f"# quiet: {idle:.0%} idle", flush=True)
            return
    print(f"# not quiet after {limit:.0f} s ({idle_fraction():.0%} idle): "
          "figures are from a busy machine", flush=True)


def c_rate(build: Path, size: int, events: int, runs: int, pcpu: int, ccpu: int) -> list[float]:
    cmd = [str(build / "perf" / "bench_throughput"), "--impl", "batch", "--size", str(size),
           "--events", str(events), "--runs", str(runs), "--producer-cpu", str(pcpu),
           "--consumer-cpu", str(ccpu), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            if r.get("impl") == "evbus-batch":
                e = r["events_per_s"]
                return [e["median"], e["min"], e["max"]]
    raise RuntimeError("bench_throughput printed no evbus-batch JSON line:\n" + out)


def floor_rate(events: int) -> float:
    """No evbus at all: a Python loop making one memoryview slice and one
    tuple per event, the least any view-per-event iteration costs."""
    root = memoryview(bytearray(1 << 20))
    t0 = time.perf_counter()
    for i in range(events):
        at = (i & 4095) * 64
        v = root[at:at + 64]
        e = evbus.Event((root, i, at, v, None))
        v.release()
    del e
    return events / (time.perf_counter() - t0)


def py_run(build: Path, mode: str, size: int, events: int, pcpu: int,
           prefill: bool = False) -> float:
    import numpy as np
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="evbpybench-") as d:
        with evbus.Bus(d + "/bus") as bus:
            # Prefilled: every event is in the ring before the clock starts,
            # so the figure is the consumer's own cost, no producer running.
            ring = 8 << 20
            while prefill and ring < events * (size + 64):
                ring *= 2
            bus.create_topic("t", 1, ring_bytes=ring)
            c = bus.consumer("t", kind="lossless", idle="spin")
            feed = subprocess.Popen([str(build / "perf" / "evb_feed"), d + "/bus", "t",
                                     str(events), str(size), "--plain", "--cpu", str(pcpu)])
            if prefill:
                feed.wait()
            n = 0
            t0 = t1 = 0.0
            if mode == "raw":
                from evbus import _capi
                h, evs, arena, alen = c._h, c._evs_addr, c._arena_addr, c._arena_len
                rb = _capi.evb_consumer_read_batch
                while n < events:
                    k = rb(h, evs, 1024, arena, alen, 5000)
                    if not t0:
                        t0 = time.perf_counter()
                    if k <= 0:
                        raise RuntimeError(f"raw: stalled after {n} events")
                    n += k
            elif mode == "numpy":
                dt = np.dtype([("seq", "<u8"), ("rest", f"V{size - 8}")])
                out = np.empty(4096, dt)
                s = 0
                while n < events:
                    a = c.poll_numpy(4096, dt, timeout=5, out=out)
                    if not t0:
                        t0 = time.perf_counter()
                    if not len(a):
                        raise RuntimeError(f"numpy: stalled after {n} events")
                    s += int(a["seq"].sum())
                    n += len(a)
            elif mode == "poll":
                while n < events:
                    evs = c.poll(1024, timeout=5)
                    if not t0:
                        t0 = time.perf_counter()
                    if not evs:
                        raise RuntimeError(f"poll: stalled after {n} events")
                    for ev in evs:
                        ev.value
                        ev.offset
                    n += len(evs)
            else:
                for ev in c.events(timeout=5):
                    if not t0:
                        t0 = time.perf_counter()
                    ev.value
                    ev.offset
                    n += 1
                    if n == events:
                        break
            t1 = time.perf_counter()
            c.close()
            feed.wait()
            if n != events:
                raise RuntimeError(f"{mode}: {n} of {events} events")
    # The first event starts the clock, so it is not counted.
    return (events - 1) / (t1 - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=str(here.parents[1] / "build"))
    ap.add_argument("--sizes", default="64,1024")
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--producer-cpu", type=int, default=0)
    ap.add_argument("--consumer-cpu", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--wait-quiet", type=float, default=0,
                    help="first wait up to SEC s for the CPUs to be >= 90%% idle")
    ap.add_argument("--prefill-events", type=int, default=500_000,
                    help="events of the prefilled runs, at most what fits 64 MiB (0: none)")
    a = ap.parse_args()
    build = Path(a.build)
    os.environ.setdefault("EVBUS_LIB", str(build / "bus" / "libevbus.so"))
    print("# cmd: " + " ".join([sys.executable] + sys.argv), flush=True)
    os.sched_setaffinity(0, {a.consumer_cpu})
    if a.wait_quiet:
        wait_quiet(a.wait_quiet)
    # Rounds alternate C and every Python mode, so a busy neighbour slows
    # them alike: ratios are taken within a round, then their median.
    modes = [("python poll", "poll", False), ("python iter", "iter", False),
             ("python numpy", "numpy", False)]
    if a.prefill_events:
        modes += [(f"prefilled {m}", m, True) for m in ("raw", "poll", "iter", "numpy")]
        modes += [("floor (no evbus)", "floor", True)]
    print(f"{'consumer':<22}{'bytes':>6}{'Mev/s med':>11}{'min':>8}{'max':>8}"
          f"{'x C med':>9}{'[min..max]':>14}", flush=True)
    for size in [int(s) for s in a.sizes.split(",")]:
        rates: dict[str, list[float]] = {"C evb_consumer_poll": []}
        ratios: dict[str, list[float]] = {"C evb_consumer_poll": []}
        for _ in range(a.runs):
            c = c_rate(build, size, a.events, 1, a.producer_cpu, a.consumer_cpu)[0]
            rates["C evb_consumer_poll"].append(c)
            ratios["C evb_consumer_poll"].append(1.0)
            for label, mode, pre in modes:
                # Prefilled rings stay within 64 MiB (tmpfs memory).
                n = min(a.prefill_events, (64 << 20) // (size + 64)) if pre else a.events
                r = floor_rate(n) if mode == "floor" else \
                    py_run(build, mode, size, n, a.producer_cpu, pre)
                rates.setdefault(label, []).append(r)
                ratios.setdefault(label, []).append(r / c)
        for label, rs in rates.items():
            q = ratios[label]
            med, qmed = statistics.median(rs), statistics.median(q)
            print(f"{label:<22}{size:>6}{med / 1e6:>11.2f}{min(rs) / 1e6:>8.2f}"
                  f"{max(rs) / 1e6:>8.2f}{qmed:>9.2f}  [{min(q):.2f}..{max(q):.2f}]",
                  flush=True)
            if a.json:
                print(json.dumps({"consumer": label, "value_bytes": size,
                                  "events_per_s": {"median": med, "min": min(rs),
                                                   "max": max(rs)},
                                  "ratio_to_c": {"median": qmed, "min": min(q),
                                                 "max": max(q)}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
