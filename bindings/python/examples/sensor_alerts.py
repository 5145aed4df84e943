#!/usr/bin/env python3
"""A local analytics process: rolling means of sensor readings, with alerts.

Reads sensor events of a fixed binary layout from topic ``sensors`` in
numpy batches (Consumer.poll_numpy: one C call per batch, no Python call
per event), keeps the mean of the last ``--window`` readings of each
sensor, prints them every second, and publishes an alert event to topic
``alerts`` when a sensor's rolling mean rises above ``--threshold``
(once per crossing: it re-arms when the mean falls back to or below it;
every crossing counts, also several of one sensor within one batch).

Its state (each sensor's last --window readings, which sensors are above
the threshold, and per partition the offset of the last event folded in)
is kept in a state file, ``--state``, by default ``sensor-alerts.state`` in
the topic's directory in the bus (<bus>/<topic>/), so it lives and goes
with the topic, as the named consumer's cursor of a ring-only topic does
(for a durable topic, whose cursor outlives a reboot, give a path on disk).
After each batch the alerts are published, then the state is written
(atomically: a temporary file, fsync, rename), then the consumer's cursor
is committed. A restart, after a kill too, loads the state and goes on
with the same windows, alerting no crossing twice; the events a kill
between the state's write and the commit redelivers are skipped by their
offsets. A kill between publishing an alert and writing the state
publishes that alert again after the restart (at-least-once): its
partition and offset tell the copy.

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
import math
import os
import sys
import tempfile
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


class StateError(Exception):
    """The state file cannot be read, or is not one this program wrote."""


def load_state(path: str, window: int) -> tuple[dict[int, np.ndarray], set[int], dict[int, int]]:
    """The saved readings per sensor (the last WINDOW of them), the sensors
    above the threshold, and per partition the offset of the last event
    folded in; all empty when PATH does not exist yet (the first run)."""
    try:
        # Not through a symlink: the default path is in the topic's
        # directory, which other writers of the topic may write.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC),
                       encoding="utf-8") as f:
            s = json.load(f)
        tail = {int(k): np.array(v, float) for k, v in s["tail"].items()}
        if any(t.ndim != 1 or not len(t) for t in tail.values()):
            raise ValueError("a sensor's readings are not a list of numbers")
        above = {int(k) for k in s["above"]}
        done = {int(k): int(v) for k, v in s["done"].items()}
    except FileNotFoundError:
        return {}, set(), {}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise StateError(f"state file {path}: unreadable or damaged: {e}") from None
    # Trimmed: a smaller --window than the last run's takes its last readings.
    return {k: t[-window:] for k, t in tail.items()}, above, done


def save_state(path: str, tail: dict[int, np.ndarray], above: set[int],
               done: dict[int, int]) -> None:
    """Replace PATH's state in one step: a kill leaves the old file or the
    new one, never a torn one."""
    tmp = None
    try:
        # A new file of a name nobody can plant beforehand (mkstemp: O_EXCL,
        # so never through a symlink); the rename replaces whatever PATH is.
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                                   prefix=".sensor-alerts.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"tail": {str(k): t.tolist() for k, t in tail.items()},
                       "above": sorted(above), "done": {str(k): v for k, v in done.items()}}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        # The rename too must reach the disk before the commit does.
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise StateError(f"state file {path}: cannot write: {e}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


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


def checked(kind: type, ok, what: str):
    """An argparse type: the text as KIND, refused unless OK(it) holds (a
    window of 0 has no mean, a nan threshold is never crossed)."""
    def parse(s: str):
        try:
            x = kind(s)
        except ValueError:
            x = None
        if x is None or not ok(x):
            raise argparse.ArgumentTypeError(f"{what}, not {s!r}")
        return x
    return parse


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # One line, not the usage and then the error.
        self.exit(2, f"{self.prog}: error: {message}\n")


def main() -> int:
    ap = Parser(description=__doc__.split("\n")[0])
    ap.add_argument("--bus", default=None, help="bus name or path (default $EVBUS_BUS)")
    ap.add_argument("--topic", default="sensors")
    ap.add_argument("--alerts", default="alerts")
    ap.add_argument("--threshold", default=80.0,
                    type=checked(float, math.isfinite, "a finite number"))
    ap.add_argument("--window", default=50,
                    type=checked(int, lambda n: n >= 1, "a count of readings >= 1"))
    ap.add_argument("--state", default=None,
                    help="state file (default sensor-alerts.state in the topic's directory "
                         "in the bus, <bus>/<topic>/)")
    ap.add_argument("--seconds", type=checked(float, lambda x: x > 0, "seconds > 0"),
                    help="stop after this long")
    ap.add_argument("--demo", action="store_true", help="also run a made-up producer")
    a = ap.parse_args()
    try:
        run(a)
    except (evbus.Error, StateError) as e:
        msg = e.strerror if isinstance(e, evbus.Error) else e
        print(f"{ap.prog}: {msg}", file=sys.stderr)
        return 1
    return 0


def run(a: argparse.Namespace) -> None:
    with evbus.Bus(a.bus) as bus:
        bus.create_topic(a.topic, 4, exist_ok=True)
        bus.create_topic(a.alerts, 1, exist_ok=True)
        stop = threading.Event()
        # A named consumer: a restart resumes after the last batch handled.
        with bus.consumer(a.topic, kind="consumer", name="sensor-alerts") as c, \
                bus.producer(a.alerts) as alerts:
            # Loaded once the consumer is ours: no other instance writes it now.
            path = a.state or os.path.join(bus.path, a.topic, "sensor-alerts.state")
            means = RollingMeans(a.window)
            means.tail, above, done = load_state(path, a.window)
            # Written once now, so a path that cannot be written fails
            # before an alert is published.
            save_state(path, means.tail, above, done)
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
                        # Events the state holds already (a kill after its
                        # write, before the commit, delivers them again).
                        part = meta["partition"]
                        last = np.array([done.get(p, -1) for p in range(int(part.max()) + 1)])
                        new = meta["offset"].astype(np.int64) > last[part]
                        vals, meta = vals[new], meta[new]
                        for sid, m in means.update(vals["sensor"], vals["reading"]).items():
                            # Every rise above the threshold alerts: above
                            # after a reading, not after the one before it.
                            up = m > a.threshold
                            rises = np.nonzero(up & ~np.append(sid in above, up[:-1]))[0]
                            rows = meta[vals["sensor"] == sid][rises]
                            for i, row in zip(rises, rows):
                                alert = {"sensor": sid, "mean": round(float(m[i]), 3),
                                         "threshold": a.threshold, "offset": int(row["offset"]),
                                         "partition": int(row["partition"])}
                                alerts.publish(json.dumps(alert), key=str(sid))
                                print(f"ALERT {json.dumps(alert)}", flush=True)
                            if up[-1]:
                                above.add(sid)
                            else:
                                above.discard(sid)
                        for p in np.unique(meta["partition"]):
                            done[int(p)] = int(meta["offset"][meta["partition"] == p].max())
                        # Alerts, state, commit: in this order a kill never
                        # loses an alert nor folds an event in twice.
                        save_state(path, means.tail, above, done)
                        c.commit()
                    if time.monotonic() >= t_print:
                        t_print += 1
                        print("rolling mean: " + "  ".join(
                            f"{sid}={t.mean():.1f}" for sid, t in sorted(means.tail.items())),
                            flush=True)
            except KeyboardInterrupt:
                pass
            finally:
                stop.set()
                if feeder:
                    feeder.join()


if __name__ == "__main__":
    raise SystemExit(main())
