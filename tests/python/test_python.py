"""The Python binding (bindings/python) end to end, run by run_python.sh
from a venv with the package installed: a C producer process and this
process as the consumer, the numpy path against the per-event path,
lifetimes of events and views, errors, and every reader kind."""
import errno
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import zlib

import numpy as np

import evbus

FEED = os.environ["EVB_FEED"]
EVENTS = int(os.environ.get("EVB_TEST_PY_EVENTS", "1000000"))
# perf/feed.c's layout: seq, crc32 of [12:], partition, filler.
FEED_DT = np.dtype([("seq", "<u8"), ("crc", "<u4"), ("part", "<u4"), ("rest", "V48")])


class BusCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(dir="/dev/shm", prefix="evbpytest-")
        self.path = self.dir.name + "/bus"
        self.bus = evbus.Bus(self.path)

    def tearDown(self):
        self.bus.close()
        self.dir.cleanup()

    def feed(self, topic, events, size=64):
        return subprocess.Popen([FEED, self.path, topic, str(events), str(size)])


class CProducerPythonConsumer(BusCase):
    def test_million_events_checked_in_order(self):
        self.bus.create_topic("t", 4, ring_bytes=4 << 20)
        with self.bus.consumer("t", kind="lossless") as c:
            p = self.feed("t", EVENTS)
            nxt = [0, 0, 0, 0]
            n = 0
            unpack = struct.Struct("<QII").unpack_from
            crc32 = zlib.crc32
            for ev in c.events(timeout=10):
                v = ev.value
                seq, crc, part = unpack(v)
                if crc != crc32(v[12:]) or part != ev.partition or seq != nxt[part] \
                        or ev.offset != seq:
                    self.fail(f"event {n}: partition {part} (delivered in "
                              f"{ev.partition}), seq {seq} at offset {ev.offset}, expected "
                              f"{nxt[part]}; crc {crc:#x}, computed {crc32(v[12:]):#x}")
                nxt[part] += 1
                n += 1
                if n == EVENTS:
                    break
            self.assertEqual(p.wait(30), 0)
            self.assertEqual(n, EVENTS)
            self.assertEqual(c.poll(10), [])

    def test_numpy_path_returns_what_the_event_path_does(self):
        n = 200000
        # Both gate: rings that hold every event, so one may read ahead.
        self.bus.create_topic("t", 3, ring_bytes=16 << 20)
        with self.bus.consumer("t", kind="lossless") as a, \
                self.bus.consumer("t", kind="lossless") as b:
            p = self.feed("t", n)
            vals, metas = [], []
            got = 0
            while got < n:
                v, m = a.poll_numpy(4096, FEED_DT, timeout=10, meta=True)
                self.assertGreater(len(v), 0, "numpy path stalled")
                vals.append(v.copy())
                metas.append(m.copy())
                got += len(v)
            # The same events through the per-event path (poll batches).
            ev_bytes, ev_meta = [], []
            while len(ev_meta) < n:
                evs = b.poll(1000, timeout=10)
                self.assertTrue(evs, "event path stalled")
                for ev in evs:
                    ev_bytes.append(bytes(ev.value))
                    ev_meta.append((ev.partition, ev.offset, ev.position, ev.timestamp_ns))
            self.assertEqual(p.wait(30), 0)
        v = np.concatenate(vals)
        m = np.concatenate(metas)
        per_event = np.frombuffer(b"".join(ev_bytes), FEED_DT)
        # Both read partitions round-robin; compare per partition, in order.
        em = np.array(ev_meta, dtype=np.uint64)
        for part in range(3):
            mine, theirs = m["partition"] == part, em[:, 0] == part
            self.assertTrue(np.array_equal(v[mine].tobytes(), per_event[theirs].tobytes()))
            self.assertTrue(np.array_equal(m["offset"][mine], em[theirs, 1]))
            self.assertTrue(np.array_equal(m["position"][mine], em[theirs, 2]))
            self.assertTrue(np.array_equal(m["timestamp_ns"][mine], em[theirs, 3]))
            self.assertTrue(np.array_equal(v["seq"][mine], np.arange(mine.sum())))
        crc = [zlib.crc32(r.tobytes()[12:]) for r in v[:1000]]
        self.assertEqual(crc, list(v["crc"][:1000]))


def rec(i):
    return struct.pack("<QQ", i, i * i)


REC = np.dtype([("i", "<u8"), ("sq", "<u8")])


class Lifetimes(BusCase):
    def setUp(self):
        super().setUp()
        self.bus.create_topic("t", 1, ring_bytes=1 << 20)

    def publish(self, n, start=0):
        with self.bus.producer("t") as p:
            self.assertEqual(p.publish_many([rec(i) for i in range(start, start + n)]), n)

    def check_stale(self, kind):
        with self.bus.consumer("t", kind=kind, name="n" if kind == "consumer" else None) as c:
            self.publish(10)
            evs = c.poll(3)
            self.assertEqual(len(evs), 3)
            ev, v = evs[0], evs[0].value
            self.assertEqual(bytes(v), rec(0))
            self.assertTrue(v.readonly)
            c.poll(3)
            with self.assertRaises(evbus.StaleEventError) as e:
                ev.offset
            self.assertEqual(e.exception.errno, errno.ESTALE)
            with self.assertRaises(evbus.StaleEventError):
                ev.value
            with self.assertRaises(ValueError):
                v[0]
            # Iteration: each step ends the event before.
            it = c.events(timeout=0)
            e1 = next(it)
            v1 = e1.value
            e2 = next(it)
            self.assertEqual(struct.unpack("<QQ", e2.value)[0], 7)
            with self.assertRaises(evbus.StaleEventError):
                e1.value
            with self.assertRaises(ValueError):
                bytes(v1)

    def test_use_after_next_read_raises_in_place(self):
        self.check_stale("lossless")

    def test_use_after_next_read_raises_copied(self):
        self.check_stale("subscriber")

    def test_use_after_next_read_raises_named(self):
        self.check_stale("consumer")

    def test_view_derived_from_the_ring_blocks_the_next_read(self):
        with self.bus.consumer("t", kind="lossless") as c:
            self.publish(4)
            ev = c.next(1)
            kept = np.frombuffer(ev.value, REC)
            with self.assertRaises(evbus.Error) as e:
                c.next(0)
            self.assertEqual(e.exception.errno, errno.EBUSY)
            self.assertIn("np.frombuffer", str(e.exception))
            self.assertEqual(int(kept["sq"][0]), 0)
            del kept
            self.assertEqual(struct.unpack("<QQ", c.next(1).value)[0], 1)

    def test_view_held_blocks_the_next_read_below_the_registration_tail_too(self):
        # A named consumer (and a lossless subscriber) opened at earliest on
        # a topic filled past a lap gets its first events as copies (they
        # lie below where it registered); a view kept of one is refused the
        # same as one into the ring, so the rule does not change once the
        # reader reaches live events.
        self.bus.create_topic("w", 1, ring_bytes=65536)
        with self.bus.producer("w") as p:
            for k in range(4):
                p.publish_many([rec(i) for i in range(k * 1000, k * 1000 + 1000)])
        for kind in ("consumer", "lossless"):
            with self.subTest(kind=kind), \
                    self.bus.consumer("w", kind=kind, start="earliest",
                                      name="n" if kind == "consumer" else None) as c:
                ev = c.poll(3)[0]
                first = struct.unpack("<QQ", ev.value)[0]
                self.assertGreater(first, 0)  # lapped: the oldest events are gone
                # Copied, not read in place (else this test shows nothing new).
                self.assertTrue(0 <= c._w[1] - c._arena_addr < c._arena_len)
                kept = np.frombuffer(ev.value, REC)
                with self.assertRaises(evbus.Error) as e:
                    c.poll(3)
                self.assertEqual(e.exception.errno, errno.EBUSY)
                with self.assertRaises(evbus.Error):
                    c.next(0)  # still held: still refused
                self.assertEqual(int(kept["i"][0]), first)
                del kept
                nxt = struct.unpack("<QQ", c.next(1).value)[0]
                self.assertEqual(nxt, first + 3)

    def test_every_attribute_of_a_stale_event_raises(self):
        # Events are made stale by their class (the next read, or the next
        # step of an iteration); each attribute must refuse, not just the
        # ones the tests above use.
        names = ("value", "key", "partition", "type", "flags", "offset", "position",
                 "timestamp_ns", "timestamp", "producer_seq", "producer_id", "deliveries",
                 "lost_events", "lost_bytes")
        with self.bus.consumer("t", kind="lossless") as c:
            self.publish(10)
            polled = c.poll(2)
            self.assertEqual([e.offset for e in polled], [0, 1])
            for n in names:
                getattr(polled[0], n)  # fresh: readable
            it = c.events(timeout=0)
            seen = []
            first = next(it)
            seen.append(first.offset)
            stepped = next(it)
            seen.append(stepped.offset)
            nxt = next(it)
            seen.append(nxt.offset)
            self.assertEqual(seen, [2, 3, 4])
            for k, ev in enumerate((polled[0], polled[1], first, stepped)):
                for n in names:
                    with self.subTest(event=k, attribute=n), \
                            self.assertRaises(evbus.StaleEventError):
                        getattr(ev, n)
                self.assertIn("stale", repr(ev))
                self.assertIsInstance(ev, evbus.Event)
            self.assertEqual(len(polled), 2)  # poll()'s list is the caller's, left whole
            with self.assertRaises(evbus.StaleEventError):
                c.reject(stepped, "too late")
            self.assertEqual(nxt.partition, 0)  # the current one still is an Event

    def test_view_held_across_an_iteration_step_ends_it_at_the_next_read(self):
        # A view derived from an event read in place cannot be released at
        # the next step: the iteration still hands out the rest of its
        # batch, in order, and the read after that refuses (EBUSY).
        with self.bus.consumer("t", kind="lossless", batch=8) as c:
            self.publish(20)
            got, kept = [], None
            with self.assertRaises(evbus.Error) as e:
                for ev in c.events(timeout=0):
                    got.append(struct.unpack("<QQ", ev.value)[0])
                    if ev.offset == 2:
                        kept = np.frombuffer(ev.value, REC)
            self.assertEqual(e.exception.errno, errno.EBUSY)
            self.assertEqual(got, list(range(8)))
            self.assertEqual(int(kept["i"][0]), 2)
            del kept
            self.assertEqual([struct.unpack("<QQ", ev.value)[0] for ev in c.events(timeout=0)],
                             list(range(8, 20)))

    def test_close_refuses_while_a_view_into_the_ring_is_held(self):
        # Consumer.close()'s docstring: EBUSY, the reader left open, while a
        # zero-copy view (numpy array, memoryview, slice) of an event read
        # in place lives; the error says it was the close, not a read.
        for kind in ("lossless", "consumer"):
            for k, make in enumerate((lambda v: np.frombuffer(v, REC), memoryview,
                                      lambda v: v[0:8])):
                with self.subTest(kind=kind, view=k):
                    c = self.bus.consumer("t", kind=kind, start="latest",
                                          name=f"held{k}" if kind == "consumer" else None)
                    self.publish(2)
                    ev = c.next(1)
                    self.assertFalse(0 <= c._w[1] - c._arena_addr < c._arena_len)  # in place
                    kept = make(ev.value)
                    with self.assertRaises(evbus.Error) as e:
                        c.close()
                    self.assertEqual(e.exception.errno, errno.EBUSY)
                    self.assertIn("topic t: close", str(e.exception))
                    self.assertIsNotNone(c._h)  # still open
                    self.assertEqual(bytes(kept)[:1], b"\x00")
                    del kept
                    c.close()
                    self.assertIsNone(c._h)
        with self.bus.consumer("t", kind="subscriber") as c:  # a copy: no reason to refuse
            self.publish(2)
            kept = np.frombuffer(c.next(1).value, REC)
            c.close()
            self.assertEqual(int(kept["sq"][0]), 0)

    def test_view_derived_from_a_copy_keeps_its_bytes(self):
        with self.bus.consumer("t", kind="subscriber") as c:
            self.publish(600)
            ev = c.next(1)
            kept = np.frombuffer(ev.value, REC)
            rest = [struct.unpack("<QQ", e.value)[0] for e in c.events(timeout=0)]
            self.assertEqual(rest, list(range(1, 600)))
            self.assertEqual((int(kept["i"][0]), int(kept["sq"][0])), (0, 0))


class Exclusive(BusCase):
    def test_exclusive_producer_publishes_and_keeps_others_out(self):
        self.bus.create_topic("x", 2)
        with self.bus.producer("x", exclusive=True) as p:
            for i in range(100):
                p.publish(struct.pack("<Q", i), partition=i % 2)
            with self.assertRaises(evbus.Error) as e:
                self.bus.producer("x", exclusive=True)
            self.assertEqual(e.exception.errno, errno.EBUSY)
            self.assertIn("exclusive producer (pid", e.exception.detail)
            with self.bus.producer("x") as q:
                with self.assertRaises(evbus.Error) as e:
                    q.publish(b"x", partition=0)
                self.assertEqual(e.exception.errno, errno.EBUSY)
        with self.bus.producer("x") as q:
            q.publish(struct.pack("<Q", 100), partition=0)
        with self.bus.consumer("x", kind="subscriber", start="earliest") as c:
            got = sorted(struct.unpack("<Q", e.value)[0] for e in c.events(timeout=0))
        self.assertEqual(got, list(range(101)))


class Errors(BusCase):
    def test_errors_carry_errno_and_message(self):
        with self.assertRaises(evbus.Error) as e:
            self.bus.consumer("nope")
        self.assertIsInstance(e.exception, OSError)
        self.assertEqual(e.exception.errno, errno.ENOENT)
        self.assertIn("nope", str(e.exception))
        self.bus.create_topic("t", 2)
        with self.assertRaises(evbus.Error) as e:
            self.bus.create_topic("t", 2)
        self.assertEqual(e.exception.errno, errno.EEXIST)
        self.bus.create_topic("t", 2, exist_ok=True)
        with self.assertRaises(evbus.Error) as e:
            self.bus.consumer("t", partition=7)
        self.assertEqual(e.exception.errno, errno.EINVAL)
        # evb_last_error()'s words, in the exception and its text.
        self.assertEqual(e.exception.detail, "topic t has 2 partitions, no partition 7")
        self.assertIn(e.exception.detail, str(e.exception))
        with self.assertRaises(evbus.Error) as e:
            self.bus.consumer("t", kind="consumer", name="bad name!")
        self.assertEqual(e.exception.errno, errno.EINVAL)
        with self.bus.producer("t") as p:
            with self.assertRaises(evbus.Error) as e:
                p.publish(b"x", partition=5)
            self.assertEqual(e.exception.errno, errno.EINVAL)
            with self.assertRaises(evbus.Error) as e:
                p.publish(b"x" * 70000)
            self.assertEqual(e.exception.errno, errno.EMSGSIZE)
            # A hot path leaves no message: an earlier failure's is not
            # passed off as this one's.
            self.assertNotIn("no partition 7", str(e.exception))

    def test_bad_counts_dtypes_and_places_are_refused_not_run(self):
        # Each of these once reached the C API: a negative count wrapped to
        # a huge one and wrote past the batch buffer (SIGSEGV), an object
        # dtype took bus bytes for pointers, a read-only out= was written
        # through, a negative offset wrapped far past the tail.
        self.bus.create_topic("t", 1)
        with self.bus.producer("t") as p:
            p.publish_many([rec(i) for i in range(3000)])
        with self.assertRaises(ValueError):
            self.bus.consumer("t", kind="lossless", batch=0)
        with self.bus.consumer("t", kind="consumer", name="n", start="earliest") as c:
            for bad in (-1, 0, -5000):
                with self.assertRaises(ValueError):
                    c.poll(bad)
                with self.assertRaises(ValueError):
                    c.poll_numpy(bad, REC)
            for dt in (np.dtype("O"), np.dtype([("a", "i8"), ("b", "O")])):
                with self.assertRaises(TypeError):
                    c.poll_numpy(10, dt)
            ro = np.zeros(10, REC)
            ro.flags.writeable = False
            with self.assertRaises(ValueError):
                c.poll_numpy(10, REC, out=ro)
            self.assertTrue((ro == np.zeros(10, REC)).all())
            for kw in ({"offset": -5}, {"position": -8}, {"time_ns": -1}):
                with self.assertRaises(ValueError):
                    c.seek(**kw)
            # Nothing above moved the reader: it starts at offset 0.
            self.assertEqual(list(c.poll_numpy(3, REC, timeout=1)["i"]), [0, 1, 2])

    def test_value_of_another_size_is_handed_out_not_lost(self):
        self.bus.create_topic("t", 1)
        with self.bus.consumer("t", kind="lossless") as c, self.bus.producer("t") as p:
            p.publish_many([rec(0), rec(1), rec(2)])
            p.publish(b"odd one", key="k")
            p.publish_many([rec(3), rec(4)])
            v = c.poll_numpy(10, REC, timeout=1)
            self.assertEqual(list(v["i"]), [0, 1, 2])
            with self.assertRaises(evbus.ValueSizeError) as e:
                c.poll_numpy(10, REC)
            self.assertEqual((e.exception.errno, e.exception.offset, e.exception.value_len),
                             (errno.EMSGSIZE, 3, 7))
            ev = c.next(0)
            self.assertEqual((bytes(ev.value), ev.key, ev.offset), (b"odd one", b"k", 3))
            self.assertEqual(list(c.poll_numpy(10, REC)["i"]), [3, 4])
            # Held back, it also comes out of poll_numpy with its size.
            p.publish(b"seven b")
            p.publish(rec(5))
            with self.assertRaises(evbus.ValueSizeError):
                c.poll_numpy(10, REC, timeout=1)
            v, m = c.poll_numpy(10, np.dtype("V7"), meta=True)
            self.assertEqual((v.tobytes(), int(m["offset"][0])), (b"seven b", 6))
            self.assertEqual(list(c.poll_numpy(10, REC, timeout=1)["i"]), [5])


class Readers(BusCase):
    def test_topic_management(self):
        info = self.bus.create_topic("a", 3, ring_bytes=1 << 20, max_event_bytes=4096)
        self.assertEqual((info.name, info.partitions, info.ring_bytes, info.max_event_bytes),
                         ("a", 3, 1 << 20, 4096))
        self.bus.create_topic("b")
        self.assertEqual(self.bus.topics(), ["a", "b"])
        self.assertEqual(self.bus.partition_stat("a", 0)["capacity"], 1 << 20)
        self.bus.delete_topic("b")
        self.assertEqual(self.bus.topics(), ["a"])

    def test_named_consumer_commits_resumes_and_seeks(self):
        self.bus.create_topic("t", 1)
        with self.bus.producer("t") as p:
            t0 = time.time_ns()
            p.publish_many([rec(i) for i in range(20)], key="k")
        with self.bus.consumer("t", kind="consumer", name="n", start="earliest") as c:
            got = [struct.unpack("<QQ", e.value)[0] for e in c.poll(8)]
            self.assertEqual(got, list(range(8)))
            c.commit()
        with self.bus.consumer("t", kind="consumer", name="n") as c:
            ev = c.next(1)
            self.assertEqual((ev.offset, ev.key, ev.partition), (8, b"k", 0))
            self.assertGreaterEqual(ev.timestamp_ns, t0)
            c.seek(offset=15)
            self.assertEqual(c.next(1).offset, 15)
            c.seek(start="earliest")
            self.assertEqual(c.next(1).offset, 0)
            c.seek(time_ns=t0)
            self.assertEqual(c.next(1).offset, 0)
            self.assertGreater(c.lag(), 0)
            # A seek mid-iteration: the iteration goes on from there.
            c.seek(start="earliest")
            got = []
            for ev in c.events(timeout=0):
                got.append((ev.offset, struct.unpack("<QQ", ev.value)[0]))
                if len(got) == 3:
                    c.seek(offset=10)
            self.assertEqual(got, [(i, i) for i in [0, 1, 2] + list(range(10, 20))])

    def test_commit_mid_iteration_covers_only_what_was_handed_out(self):
        self.bus.create_topic("t", 2)
        with self.bus.producer("t") as p:
            p.publish_many([rec(i) for i in range(50)], partition=0)
            p.publish_many([rec(i) for i in range(50, 100)], partition=1)
        seen = []
        with self.bus.consumer("t", kind="consumer", name="it", start="earliest") as c:
            for ev in c.events(timeout=0):
                seen.append(struct.unpack("<QQ", ev.value)[0])
                if len(seen) == 30:
                    c.commit()  # the batch read ahead holds all 100
                    break
        with self.bus.consumer("t", kind="consumer", name="it") as c:
            rest = [struct.unpack("<QQ", ev.value)[0] for ev in c.events(timeout=0)]
        self.assertEqual(sorted(seen + rest), list(range(100)))
        # Going on after a commit mid-iteration skips nothing either.
        with self.bus.consumer("t", kind="consumer", name="it2", start="earliest") as c:
            got = []
            for ev in c.events(timeout=0):
                got.append(struct.unpack("<QQ", ev.value)[0])
                if len(got) % 7 == 0:
                    c.commit()
            self.assertEqual(sorted(got), list(range(100)))

    def test_queue_group_ack_nack_and_numpy_meta(self):
        self.bus.create_topic("t", 2)
        with self.bus.consumer("t", kind="queue", name="q", ack_wait_ms=60000) as c:
            with self.bus.producer("t") as p:
                p.publish_many([rec(i) for i in range(10)])
            evs = c.poll(10, timeout=1)
            self.assertEqual(len(evs), 10)
            first = evs[0]
            for ev in evs[1:]:
                self.assertEqual(ev.deliveries, 1)
                ev.ack()
            c.next(0)  # the first event is acknowledged after later reads too
            first.nack()
            again = c.next(1)
            self.assertEqual((again.deliveries, bytes(again.value)),
                             (2, rec(struct.unpack("<QQ", again.value)[0])))
            again.ack()
            with self.bus.producer("t") as p:
                p.publish_many([rec(i) for i in range(10, 15)])
            v, m = c.poll_numpy(10, REC, timeout=1, meta=True)
            self.assertEqual(sorted(v["i"]), list(range(10, 15)))
            for row in m:
                c.ack(row)
            self.assertEqual(c.poll(10), [])

    def test_partition_group_splits_and_tells(self):
        self.bus.create_topic("t", 4)
        seen = []
        with self.bus.consumer("t", kind="group", name="g",
                               on_rebalance=lambda what, parts: seen.append((what, parts))) as a:
            self.assertEqual(sorted(a.assignment()), [0, 1, 2, 3])
            self.assertEqual(seen[0], ("assigned", [0, 1, 2, 3]))
            with self.bus.consumer("t", kind="group", name="g") as b:
                deadline = time.time() + 5
                while len(a.assignment()) != 2 and time.time() < deadline:
                    a.poll(10, timeout=0.05)
                    b.poll(10, timeout=0.05)
                self.assertEqual(sorted(a.assignment() + b.assignment()), [0, 1, 2, 3])
                self.assertIn("revoked", [w for w, _ in seen])
                with self.bus.producer("t") as p:
                    p.publish_many([rec(i) for i in range(40)], partition=None)
                n = 0
                deadline = time.time() + 5
                while n < 40 and time.time() < deadline:
                    n += len(a.poll(100, timeout=0.05)) + len(b.poll(100, timeout=0.05))
                self.assertEqual(n, 40)
                a.commit()

    def test_only_partition_and_publish_numpy(self):
        self.bus.create_topic("t", 2)
        with self.bus.consumer("t", kind="lossless", partition=1) as c, \
                self.bus.producer("t") as p:
            arr = np.array([(i, i * i) for i in range(6)], REC)
            self.assertEqual(p.publish_many(arr, partition=1), 6)
            p.publish(rec(99), partition=0)
            self.assertEqual(list(c.poll_numpy(10, REC, timeout=1)["sq"]),
                             [i * i for i in range(6)])
            self.assertEqual(c.poll(10), [])

    def test_reject_goes_to_the_dlq(self):
        self.bus.create_topic("t", 1)
        with self.bus.consumer("t", kind="consumer", name="r") as c, \
                self.bus.producer("t") as p:
            p.publish(b"bad", key="k")
            ev = c.next(1)
            ev.reject("cannot parse")
        self.assertIn("t.dlq", self.bus.topics())
        with self.bus.consumer("t.dlq", kind="subscriber", start="earliest") as d:
            ev = d.next(1)
            self.assertIn(b"cannot parse", bytes(ev.value))
            self.assertEqual(ev.key, b"k")

    def test_strings_with_a_nul_are_refused(self):
        # C would read them cut at the NUL: another topic or name, a
        # shorter reason (a cold attack found reject("a\0b") writing "a").
        self.bus.create_topic("t", 1)
        for call in (lambda: self.bus.create_topic("t\0x", 1),
                     lambda: self.bus.topic_info("t\0x"),
                     lambda: self.bus.producer("t\0x"),
                     lambda: self.bus.consumer("t\0x", kind="subscriber"),
                     lambda: self.bus.consumer("t", kind="consumer", name="n\0m")):
            with self.assertRaises(ValueError):
                call()
        with self.bus.consumer("t", kind="consumer", name="r") as c, \
                self.bus.producer("t") as p:
            p.publish(b"bad")
            ev = c.next(1)
            with self.assertRaises(ValueError):
                ev.reject("a\0b")
            ev.reject("a b")
        with self.bus.consumer("t.dlq", kind="subscriber", start="earliest") as d:
            self.assertIn(b"a b", bytes(d.next(1).value))
            self.assertIsNone(d.next(0))

    def test_dropped_handles_close_themselves(self):
        self.bus.create_topic("t", 1)
        for _ in range(100):  # more than a ring's 64 reader slots
            c = self.bus.consumer("t", kind="lossless")
            c.next(0)
            p = self.bus.producer("t")
            p.publish(b"x")
        del c, p
        self.assertEqual(len(self.bus._children), 0)
        self.assertEqual(self.bus.partition_stat("t", 0)["readers"], 0)

    def test_close_releases_views_and_bus_closes_children(self):
        self.bus.create_topic("t", 1)
        c = self.bus.consumer("t", kind="lossless")
        p = self.bus.producer("t")
        p.publish(b"x" * 16)
        v = c.next(1).value
        self.bus.close()
        with self.assertRaises(ValueError):
            bytes(v)
        with self.assertRaises(evbus.Error) as e:
            c.poll()
        self.assertEqual(e.exception.errno, errno.EBADF)


class DurableAcks(BusCase):
    def _sync_topic(self, data, partitions):
        # The bus again, over the data directory DATA, with a SYNC topic "d".
        self.bus.close()
        self.bus = evbus.Bus(self.path, data_dir=data)
        self.bus.create_topic("d", partitions, ring_bytes=1 << 20, segment_bytes=1 << 20,
                              durability="sync")

    def test_receipts_wait_and_poll(self):
        with tempfile.TemporaryDirectory(prefix="evbpytest-data-") as data:
            self._sync_topic(data, 2)
            with self.bus.producer("d", partitioner="round_robin") as p:
                rs = [p.publish_receipt(b"v%d" % i) for i in range(100)]
                self.assertEqual({r.partition for r in rs}, {0, 1})
                for r in rs:
                    self.assertGreater(r.end_position, r.position)
                p.wait_durable(rs[-1])
                p.wait_durable(rs[-2])
                for part in (0, 1):
                    last = max(r.end_position for r in rs if r.partition == part)
                    first = next(r for r in rs if r.partition == part)
                    self.assertGreaterEqual(p.durable_position(first), last)
                    self.assertGreaterEqual(
                        self.bus.partition_stat("d", part)["durable_position"], last)
                inc = rs[0].incarnation
                self.assertNotEqual(inc, 0)
                with self.assertRaises(evbus.Error) as e:
                    p.wait_durable(evbus.Receipt(rs[0].partition, 0, 0, 1 << 40, inc))
                self.assertEqual(e.exception.errno, errno.EINVAL)
                with self.assertRaises(evbus.Error) as e:
                    p.durable_position(evbus.Receipt(2, 0, 0, 8, inc))
                self.assertEqual(e.exception.errno, errno.EINVAL)
                # Another ring incarnation's receipt (here made up): ESTALE.
                with self.assertRaises(evbus.Error) as e:
                    p.durable_position(evbus.Receipt(rs[0].partition, 0, 0, 8, inc ^ 1))
                self.assertEqual(e.exception.errno, errno.ESTALE)
                # Out of the C types' ranges: refused, never wrapped to a
                # partition or position that exists.
                for bad in (2**32, -1, 2**32 + 0):
                    with self.assertRaises(ValueError):
                        p.durable_position(evbus.Receipt(bad, 0, 0, 8, inc))
                with self.assertRaises(ValueError):
                    p.durable_position(evbus.Receipt(rs[0].partition, 0, 0, 8, 2**32 + inc))
                with self.assertRaises(ValueError):
                    p.wait_durable(evbus.Receipt(0, 0, 0, 2**64 + rs[0].end_position, inc))
                with self.assertRaises(ValueError):
                    p.wait_durable(evbus.Receipt(2**32, 0, 0, rs[0].end_position, inc))
            with self.bus.consumer("d", start="earliest") as c:
                got = {(ev.partition, ev.offset): (ev.position, bytes(ev.value))
                       for ev in c.events(timeout=0.5)}
            self.assertEqual(len(got), 100)
            for i, r in enumerate(rs):
                self.assertEqual(got[(r.partition, r.offset)], (r.position, b"v%d" % i))
            self.bus.delete_topic("d", force=True)


    def test_every_error_carries_its_own_detail(self):
        # The same failure twice keeps its text twice; the next one its own
        # (the recheck of issue 13, N4: only the first carried it).
        with tempfile.TemporaryDirectory(prefix="evbpytest-data-") as data:
            self._sync_topic(data, 1)
            with self.bus.producer("d") as p:
                r = p.publish_receipt(b"v")
                for forged in (r.incarnation ^ 1, r.incarnation ^ 1, r.incarnation ^ 2):
                    for call in (p.durable_position, p.wait_durable):
                        with self.assertRaises(evbus.Error) as e:
                            call(evbus.Receipt(0, r.offset, r.position, r.end_position, forged))
                        self.assertEqual(e.exception.errno, errno.ESTALE)
                        self.assertIn("%#x" % forged, e.exception.detail)
                        self.assertIn(e.exception.detail, str(e.exception))
            self.bus.delete_topic("d", force=True)

    def test_out_of_range_integers_are_refused_not_wrapped(self):
        # ctypes keeps the low bits: partition 2**32 was partition 0 (the
        # recheck of issue 13, N3). Every integer bound for a fixed-width
        # C type is checked.
        self.bus.create_topic("t", 2)
        big = (2**32, 2**64 + 1)
        with self.bus.producer("t") as p:
            for bad in big + (-2,):
                with self.assertRaises(ValueError, msg=bad):
                    p.publish(b"w", partition=bad)
                with self.assertRaises(ValueError, msg=bad):
                    p.publish_receipt(b"w", partition=bad)
                with self.assertRaises(ValueError, msg=bad):
                    p.publish_many([b"a", b"b"], partition=bad)
                with self.assertRaises(ValueError, msg=bad):
                    p.sync(timeout_ms=bad if bad != -2 else 2**31)
                with self.assertRaises(ValueError, msg=bad):
                    p.publish(b"w", type=bad)
                with self.assertRaises(ValueError, msg=bad):
                    self.bus.partition_stat("t", bad)
            p.publish(b"any", partition=-1)  # -1: the partitioner's choice
        for bad in big:
            for kw in ({"block_ms": bad}, {"producer_id": bad}):
                with self.assertRaises(ValueError, msg=kw):
                    self.bus.producer("t", **kw)
            for kw in ({"partition": bad}, {"offset": 2**64 + bad}, {"position": 2**64 + bad},
                       {"lease_ms": bad}, {"max_deliveries": bad}, {"max_in_flight": bad},
                       {"ack_wait_ms": bad}):
                with self.assertRaises(ValueError, msg=kw):
                    self.bus.consumer("t", **kw)
            for kw in ({"partitions": bad}, {"ring_bytes": 2**64 + bad},
                       {"max_event_bytes": bad}, {"flush_ms": bad}, {"retain_ms": 2**64 + bad}):
                with self.assertRaises(ValueError, msg=kw):
                    self.bus.create_topic("u", **kw)
        with self.assertRaises(ValueError):
            self.bus.consumer("t", partition=-2)
        with self.bus.consumer("t", start="earliest") as c:
            for bad in big + (-2,):
                with self.assertRaises(ValueError, msg=bad):
                    c.seek(0, partition=bad)
            with self.assertRaises(ValueError):
                c.seek(2**64 + 1)
            with self.assertRaises(ValueError):
                c.poll(timeout=2**40)
            with self.assertRaises(ValueError):
                c.next(timeout=2**40)
            self.assertEqual(len(c.poll(timeout=0)), 1)


class Example(BusCase):
    SENSOR = np.dtype([("sensor", "<u4"), ("seq", "<u4"), ("time_ns", "<u8"), ("reading", "<f8")])

    def example(self, *args, popen=False):
        cmd = [sys.executable, os.path.join(os.environ["EVB_PY_SRC"], "examples",
                                            "sensor_alerts.py"), "--bus", self.path, *args]
        if popen:
            return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    def readings(self, sensor, values):
        """Publish VALUES as SENSOR's readings at once: the example, started
        after, reads them in one batch."""
        rows = np.zeros(len(values), self.SENSOR)
        rows["sensor"], rows["seq"], rows["reading"] = sensor, np.arange(len(values)), values
        self.bus.create_topic("sensors", 4, exist_ok=True)
        with self.bus.producer("sensors") as p:
            p.publish_many(rows, key=str(sensor))

    def alerts(self, sensor):
        with self.bus.consumer("alerts", start="earliest") as c:
            alerts = [json.loads(bytes(ev.value)) for ev in c.events(timeout=0)]
        return [a for a in alerts if a["sensor"] == sensor]

    def last_mean(self, out):
        return [line for line in out.stdout.splitlines() if line.startswith("rolling mean")][-1]

    def test_sensor_alerts_alerts_once_per_crossing(self):
        out = self.example("--demo", "--seconds", "3", "--window", "10", "--threshold", "70")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("rolling mean: 0=", out.stdout)
        printed = [line for line in out.stdout.splitlines() if line.startswith("ALERT")]
        self.assertTrue(printed, out.stdout)
        with self.bus.consumer("alerts", start="earliest") as c:
            alerts = [(ev.key, bytes(ev.value).decode()) for ev in c.events(timeout=0)]
        self.assertEqual([v for _, v in alerts], [line[6:] for line in printed])
        self.assertEqual({k for k, _ in alerts}, {b"3"})

    def test_sensor_alerts_every_crossing_in_one_batch(self):
        # The mean of 4 crosses 10 three times (at the third 20 of each
        # run of them), all in the first batch; sensor 2 once.
        self.readings(1, [0, 0, 0, 0, 20, 20, 20, 20] * 3)
        self.readings(2, [100] * 5)
        out = self.example("--window", "4", "--threshold", "10", "--seconds", "1")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual([(a["offset"], a["mean"]) for a in self.alerts(1)],
                         [(6, 15.0), (14, 15.0), (22, 15.0)])
        self.assertEqual(len(self.alerts(2)), 1)

    def test_sensor_alerts_restart_keeps_windows_and_crossings(self):
        args = ("--window", "4", "--threshold", "10", "--seconds", "1.5")
        self.readings(1, [0, 0, 0, 0, 20, 20, 20, 20])
        out = self.example(*args)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(len(self.alerts(1)), 1)
        # Still above: no second alert, and the window goes on (20 20 30 30).
        self.readings(1, [30, 30])
        out = self.example(*args)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(len(self.alerts(1)), 1, out.stdout)
        self.assertEqual(self.last_mean(out), "rolling mean: 1=25.0")
        self.assertTrue(os.path.exists(f"{self.path}/sensors/sensor-alerts.state"))

    def test_sensor_alerts_killed_after_the_state_before_the_commit(self):
        state = self.dir.name + "/alerts.state"
        args = ("--window", "4", "--threshold", "10", "--state", state)
        self.readings(1, [0, 0, 0, 0, 20, 20, 20, 20])
        p = self.example(*args, popen=True)
        try:
            # Killed once the state holds the last event (offset 7).
            deadline = time.monotonic() + 30
            while True:
                if p.poll() is not None:
                    self.fail(f"exited {p.returncode}: {p.stderr.read()}")
                self.assertLess(time.monotonic(), deadline, "state never written")
                try:
                    with open(state) as f:
                        if 7 in json.load(f)["done"].values():
                            break
                except (OSError, ValueError, KeyError):
                    pass
                time.sleep(0.01)
        finally:
            p.kill()
            p.wait()
            p.stderr.close()
        self.assertEqual(p.returncode, -signal.SIGKILL)
        # Whether it committed or not, the worst case: its commit lost, so
        # the batch comes again, and must not be folded in again.
        with self.bus.consumer("sensors", kind="consumer", name="sensor-alerts") as c:
            c.seek(start="earliest")
            c.commit()
        self.readings(1, [30, 30])
        out = self.example(*args, "--seconds", "1.5")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(len(self.alerts(1)), 1, out.stdout)
        self.assertEqual(self.last_mean(out), "rolling mean: 1=25.0")

    def test_sensor_alerts_damaged_state_in_one_line(self):
        state = self.dir.name + "/alerts.state"
        with open(state, "w") as f:
            f.write('{"tail": ')
        out = self.example("--state", state, "--seconds", "0.5")
        self.assertEqual(out.returncode, 1)
        self.assertEqual(len(out.stderr.splitlines()), 1, out.stderr)
        self.assertTrue(out.stderr.startswith(f"sensor_alerts.py: state file {state}: "),
                        out.stderr)

    def test_sensor_alerts_state_never_through_a_symlink(self):
        # Another writer of the topic plants a symlink where the state goes
        # (the default path is in the topic's directory): the example
        # neither reads nor writes through it.
        victim = self.dir.name + "/victim"
        with open(victim, "w") as f:
            f.write("precious")
        state = self.dir.name + "/planted.state"
        os.symlink(victim, state + ".tmp")  # a name a writer could guess
        out = self.example("--state", state, "--seconds", "0.5")
        self.assertEqual(out.returncode, 0, out.stderr)
        os.unlink(state)
        os.symlink(victim, state)
        out = self.example("--state", state, "--seconds", "0.5")
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertEqual(len(out.stderr.splitlines()), 1, out.stderr)
        with open(victim) as f:
            self.assertEqual(f.read(), "precious")

    def test_sensor_alerts_refuses_bad_arguments_in_one_line(self):
        for bad in (["--window", "0"], ["--window", "-5"], ["--threshold", "nan"]):
            with self.subTest(bad=bad):
                out = self.example(*bad, "--seconds", "0.5")
                self.assertEqual((out.returncode, len(out.stderr.splitlines())), (2, 1),
                                 out.stderr)

    def test_sensor_alerts_second_instance_in_one_line(self):
        # Its named consumer is open already (here, in this process).
        self.bus.create_topic("sensors", 4)
        with self.bus.consumer("sensors", kind="consumer", name="sensor-alerts"):
            out = self.example("--seconds", "0.5")
        self.assertEqual((out.returncode, len(out.stderr.splitlines())), (1, 1), out.stderr)
        self.assertTrue(out.stderr.startswith("sensor_alerts.py: topic sensors: "), out.stderr)


if __name__ == "__main__":
    unittest.main()
