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

Events/s are taken from the first event received to the last, median of
--runs runs (min and max shown). Run from the source tree after building:

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


def py_run(build: Path, mode: str, size: int, events: int, pcpu: int) -> float:
    import numpy as np
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="evbpybench-") as d:
        with evbus.Bus(d + "/bus") as bus:
            bus.create_topic("t", 1, ring_bytes=8 << 20)
            c = bus.consumer("t", kind="lossless", idle="spin")
            feed = subprocess.Popen([str(build / "perf" / "evb_feed"), d + "/bus", "t",
                                     str(events), str(size), "--plain", "--cpu", str(pcpu)])
            n = 0
            t0 = t1 = 0.0
            if mode == "numpy":
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
    a = ap.parse_args()
    build = Path(a.build)
    os.environ.setdefault("EVBUS_LIB", str(build / "bus" / "libevbus.so"))
    print("# cmd: " + " ".join([sys.executable] + sys.argv), flush=True)
    os.sched_setaffinity(0, {a.consumer_cpu})
    rows = []
    for size in [int(s) for s in a.sizes.split(",")]:
        c = c_rate(build, size, a.events, a.runs, a.producer_cpu, a.consumer_cpu)
        rows.append(("C evb_consumer_poll", size, c[0], c[1], c[2], 1.0))
        for mode in ("poll", "iter", "numpy"):
            rates = [py_run(build, mode, size, a.events, a.producer_cpu) for _ in range(a.runs)]
            med = statistics.median(rates)
            rows.append((f"python {mode}", size, med, min(rates), max(rates), med / c[0]))
    print(f"{'consumer':<22}{'bytes':>6}{'Mev/s med':>11}{'min':>8}{'max':>8}{'x C':>7}")
    for r in rows:
        print(f"{r[0]:<22}{r[1]:>6}{r[2] / 1e6:>11.2f}{r[3] / 1e6:>8.2f}{r[4] / 1e6:>8.2f}"
              f"{r[5]:>7.2f}")
        if a.json:
            print(json.dumps({"consumer": r[0], "value_bytes": r[1], "events_per_s_median": r[2],
                              "min": r[3], "max": r[4], "ratio_to_c": r[5]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
