"""The parts of the Python read path: N prefilled 64 B events (perf/evb_feed)
read by one lossless subscriber per mode, each mode timed in CPU time
(read: the C batch read alone; build: plus the batch's events; step:
iteration; iter: iteration reading ev.value and ev.offset; poll: poll(1024)
and the same two attributes). NOGC=1 disables the collector.
usage: EVBUS_LIB=build/bus/libevbus.so PYTHONPATH=bindings/python \
       python3 parts.py N read,build,step,iter,poll
"""
import os, sys, time, subprocess, tempfile
import evbus, gc
if os.environ.get("NOGC"): gc.disable()
FEED = os.environ.get("EVB_FEED", "build/perf/evb_feed")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 500000
modes = sys.argv[2].split(",")
res = {}
with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="py12parts-") as d:
    with evbus.Bus(d + "/bus") as bus:
        bus.create_topic("t", 1, ring_bytes=64 << 20)
        cs = {m: bus.consumer("t", kind="lossless", idle="spin") for m in modes}
        subprocess.run([FEED, d + "/bus", "t", str(N), "64", "--plain"], check=True)
        for what in modes:
            c = cs[what]; n = 0
            t0 = time.process_time()
            if what == "read":
                while n < N: k = c._read(1024, 100); n += k
            elif what == "build":
                while n < N:
                    k = c._read(1024, 100); (c._events_of(k) if not hasattr(c, "_gen") else c._events_of(k, c._gen, True)); n += k
            elif what == "poll":
                while n < N:
                    for ev in c.poll(1024): ev.value; ev.offset
                    n += 1024
            elif what == "step":
                for ev in c.events(timeout=0.1):
                    n += 1
                    if n == N: break
            elif what == "iter":
                for ev in c.events(timeout=0.1):
                    ev.value; ev.offset
                    n += 1
                    if n == N: break
            t1 = time.process_time()
            res[what] = (t1 - t0) / N * 1e9
            c.close()
print(" ".join(f"{k}={v:.0f}ns" for k, v in res.items()))
