#!/usr/bin/env python3
"""A local analytics process: rolling means of sensor readings, with alerts.

Reads sensor events of a fixed binary layout from topic ``sensors`` in
numpy batches (Consumer.poll_numpy: one C call per batch, no Python call
per event), keeps the mean of the last ``--window`` readings of each
sensor, prints them every second, and publishes an alert event to topic
``alerts`` when a sensor's rolling mean rises above ``--threshold``
(once per crossing: it re-arms when the mean falls back below).

A sensor event (24 bytes, little-endian), published with the sensor id
as its key so each sensor's readings stay in order in one partition:

    sensor   u32   which sensor (also the event's key, as text)
    seq      u32   its reading number
    time_ns  u64   when it was measured
    reading  f64   the value

An alert event: key the sensor id, value JSON
{"sensor": 3, "mean": 81.2, "threshold": 80.0, "offset": 1234, "partition": 1}.

Try it with made-up readings (one sensor drifts upwards):

    python3 sensor_alerts.py --bus demo --demo --seconds 5

or against your own producers (topics created when missing):

    python3 sensor_alerts.py --bus plant --threshold 75 --window 100
"""
from __future__ import annotations

import argparse
import json
import threading
import time

import numpy as np

import evbus

SENSOR = np.dtype([("sensor", "<u4"), ("seq", "<u4"), ("time_ns", "<u8"), ("reading", "<f8")])


class RollingMeans:
    """The mean of the last WINDOW readings of each sensor, batch at a time."""

    def __init__(self, window: int):
        self.window = window
        self.tail: dict[int, np.ndarray] = {}   # the last readings, up to WINDOW

    def update(self, sensors: np.ndarray, readings: np.ndarray) -> dict[int, np.ndarray]:
        """Add a batch; returns, per sensor in it, its rolling mean after
        each of its new readings (so a crossing inside the batch shows)."""
        out = {}
        order = np.argsort(sensors, kind="stable")      # keeps each sensor's order
        s_sorted, r_sorted = sensors[order], readings[order]
        ids, starts = np.unique(s_sorted, return_index=True)
        for sid, part in zip(ids, np.split(r_sorted, starts[1:])):
            sid = int(sid)
            hist = np.concatenate([self.tail.get(sid, np.empty(0)), part])
            c = np.concatenate([[0.0], np.cumsum(hist)])
            k = len(hist) - len(part)                  # readings before the batch
            ends = np.arange(k + 1, len(hist) + 1)
            begins = np.maximum(ends - self.window, 0)
            out[sid] = (c[ends] - c[begins]) / (ends - begins)
            self.tail[sid] = hist[-self.window:]
        return out


def demo_producer(bus: evbus.Bus, topic: str, stop: threading.Event, sensors: int = 8) -> None:
    """Readings around 50 for every sensor; sensor 3 climbs past 80."""
    rng = np.random.default_rng(7)
    seq = 0
    with bus.producer(topic) as p:
        while not stop.is_set():
            batch = np.zeros(sensors * 16, SENSOR)
            batch["sensor"] = np.repeat(np.arange(sensors), 16)
            batch["seq"] = seq + np.tile(np.arange(16), sensors)
            batch["time_ns"] = time.time_ns()
            batch["reading"] = 50 + rng.normal(0, 5, len(batch))
            batch["reading"][batch["sensor"] == 3] += min(seq / 40.0, 45.0)
            seq += 16
            for sid in range(sensors):
                rows = batch[batch["sensor"] == sid]
                p.publish_many(rows, key=str(sid))
            time.sleep(0.01)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bus", default=None, help="bus name or path (default $EVBUS_BUS)")
    ap.add_argument("--topic", default="sensors")
    ap.add_argument("--alerts", default="alerts")
    ap.add_argument("--threshold", type=float, default=80.0)
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=None, help="stop after this long")
    ap.add_argument("--demo", action="store_true", help="also run a made-up producer")
    a = ap.parse_args()

    with evbus.Bus(a.bus) as bus:
        bus.create_topic(a.topic, 4, exist_ok=True)
        bus.create_topic(a.alerts, 1, exist_ok=True)
        means = RollingMeans(a.window)
        above: set[int] = set()
        latest: dict[int, float] = {}
        stop = threading.Event()
        # A named consumer: a restart resumes after the last batch handled.
        with bus.consumer(a.topic, kind="consumer", name="sensor-alerts") as c, \
                bus.producer(a.alerts) as alerts:
            feeder = None
            if a.demo:
                feeder = threading.Thread(target=demo_producer, args=(bus, a.topic, stop))
                feeder.start()
            t_end = time.monotonic() + a.seconds if a.seconds else float("inf")
            t_print = time.monotonic() + 1
            try:
                while time.monotonic() < t_end:
                    try:
                        vals, meta = c.poll_numpy(4096, SENSOR, timeout=0.1, meta=True)
                    except evbus.ValueSizeError as e:
                        # Not a sensor event: hand it over and go on.
                        odd = c.next(0)
                        print(f"skipping partition {e.partition} offset {e.offset}: "
                              f"{e.value_len} bytes, not a sensor reading")
                        odd.reject("not a sensor reading (24 bytes)")
                        continue
                    if len(vals):
                        for sid, m in means.update(vals["sensor"], vals["reading"]).items():
                            latest[sid] = float(m[-1])
                            crossed = np.nonzero(m > a.threshold)[0]
                            if sid not in above and len(crossed):
                                above.add(sid)
                                row = meta[vals["sensor"] == sid][crossed[0]]
                                alert = {"sensor": sid, "mean": round(float(m[crossed[0]]), 3),
                                         "threshold": a.threshold, "offset": int(row["offset"]),
                                         "partition": int(row["partition"])}
                                alerts.publish(json.dumps(alert), key=str(sid))
                                print(f"ALERT {json.dumps(alert)}", flush=True)
                            elif sid in above and m[-1] <= a.threshold:
                                above.discard(sid)
                        c.commit()
                    if time.monotonic() >= t_print:
                        t_print += 1
                        print("rolling mean: " + "  ".join(
                            f"{sid}={v:.1f}" for sid, v in sorted(latest.items())), flush=True)
            except KeyboardInterrupt:
                pass
            finally:
                stop.set()
                if feeder:
                    feeder.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
