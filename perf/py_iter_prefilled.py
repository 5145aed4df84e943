"""Prefilled Python iteration: N events of 64 B published by perf/evb_feed
(--plain) into a 64 MiB ring before the clock starts, then one lossless
subscriber iterates, reading ev.value and ev.offset per event (ITER), or
only builds each batch's events (build). Prints events/s.

usage: EVBUS_LIB=build/bus/libevbus.so PYTHONPATH=bindings/python \
       python3 perf/py_iter_prefilled.py [N] [iter|build]
"""
import os, sys, time, subprocess, tempfile
import evbus
FEED = os.environ.get("EVB_FEED", "build/perf/evb_feed")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 500000
what = sys.argv[2] if len(sys.argv) > 2 else "iter"
with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="py11perf-") as d:
    with evbus.Bus(d + "/bus") as bus:
        bus.create_topic("t", 1, ring_bytes=64 << 20)
        c = bus.consumer("t", kind="lossless", idle="spin")
        subprocess.run([FEED, d + "/bus", "t", str(N), "64", "--plain"], check=True)
        n = 0
        t0 = time.perf_counter()
        if what == "iter":
            for ev in c.events(timeout=0.1):
                ev.value; ev.offset
                n += 1
                if n == N: break
        elif what == "build":
            while n < N:
                k = c._read(1024, 100)
                # (the binding before 2026-12-03's took a generation too)
                c._events_of(k) if not hasattr(c, "_gen") else c._events_of(k, c._gen, True)
                n += k
        t1 = time.perf_counter()
        c.close()
print(f"{what} {N / (t1 - t0) / 1e6:.3f} M/s")
