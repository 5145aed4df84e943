"""Bus, topics, Producer, Consumer and Event over libevbus (see the package doc)."""
from __future__ import annotations

import ctypes
import errno as _errno
import sys
import weakref
from ctypes import byref, c_uint8, c_uint32, c_uint64
from itertools import chain, repeat
from operator import add, and_, getitem, itemgetter, rshift, sub
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Union

from . import _capi as capi


# ---------------------------------------------------------------- errors


class Error(OSError):
    """An evbus call failed.

    ``errno`` is the positive errno the C function returned (negated),
    ``strerror`` names what failed and evbus's words for the code, and
    ``detail`` is evb_last_error()'s message from the same thread ("" when
    the call left none: hot paths such as reads and publishes leave none).
    """

    def __init__(self, rc: int, where: str = "", detail: Optional[str] = None,
                 words: Optional[str] = None, cold: bool = False):
        code = -rc if rc < 0 else rc
        if words is None:
            words = capi.evb_strerror(-code).decode(errors="replace")
        if detail is None:
            # The thread's text is emptied once taken: what is there now
            # was left since the last Error took its own, so by this
            # failure (hot paths that leave none find it empty), and the
            # same words twice are kept twice (a stopped flusher's pid on
            # every timeout, not only the first).
            detail = capi.evb_last_error().decode(errors="replace")
            capi.evb_clear_error()
        text = f"{where}: {words}" if where else words
        if detail:
            text += f" ({detail})"
        super().__init__(code, text)
        self.detail = detail


class StaleEventError(Error):
    """An event was used after the next read on its consumer (errno ESTALE).

    Its memory may hold another event by then, so nothing of it is read."""

    def __init__(self) -> None:
        super().__init__(-_errno.ESTALE, "event used after the next read on its consumer",
                         words="stale event",
                         detail="keep what you need (bytes(ev.value), ev.offset) before "
                                "reading on")


class ValueSizeError(Error):
    """poll_numpy() met an event whose value is not the dtype's size
    (errno EMSGSIZE). The event is not lost: it is held by the consumer and
    handed out by the next per-event read (next(), poll(), iteration), and
    poll_numpy() raises this until it was. ``partition``, ``offset``,
    ``value_len`` and ``expected`` describe it."""

    def __init__(self, partition: int, offset: int, value_len: int, expected: int):
        super().__init__(-_errno.EMSGSIZE,
                         f"partition {partition} offset {offset}: value of {value_len} "
                         f"bytes, the dtype takes {expected}", words="value of another size",
                         detail="read it with next(), poll() or iteration, then "
                                "poll_numpy() goes on")
        self.partition, self.offset = partition, offset
        self.value_len, self.expected = value_len, expected



def _ranged(name: str, v: int, lo: int, hi: int) -> int:
    """V as an int in [LO, HI], or ValueError: ctypes would wrap it
    silently (partition 2**32 became partition 0)."""
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ValueError(f"{name}: an integer in [{lo}, {hi}], not {v!r}")
    return v


U32, U64 = 2**32 - 1, 2**64 - 1
I32 = (-(2**31), 2**31 - 1)


def _u32(name: str, v: int) -> int:
    return _ranged(name, v, 0, U32)


def _u64(name: str, v: int) -> int:
    return _ranged(name, v, 0, U64)


def _ms(name: str, timeout: Optional[float], none: int) -> int:
    """A timeout in seconds as the int32 milliseconds the C calls take
    (NONE for None, negative: no limit where the call allows it)."""
    if timeout is None:
        return none
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or timeout != timeout:
        raise ValueError(f"{name}: seconds, not {timeout!r}")
    ms = int(timeout * 1000) if timeout < I32[1] else I32[1] + 1
    return _ranged(name + " (ms)", ms, I32[0], I32[1])


def _part(partition: Optional[int]) -> int:
    """An evb_msg partition (int32): None or -1 for any, else a partition."""
    if partition is None:
        return capi.EVB_PARTITION_ANY
    return _ranged("partition", partition, -1, I32[1])


def _check(rc: int, where: str, cold: bool = False) -> int:
    if rc < 0:
        raise Error(rc, where, cold=cold)
    return rc


def _cstr(s: Union[str, bytes], what: str) -> bytes:
    """S as the NUL-terminated string C takes: one with a NUL inside would
    reach C cut short there (a topic, a name or a reason other than the
    one given), so it is refused."""
    b = s if isinstance(s, bytes) else s.encode()
    if b"\0" in b:
        raise ValueError(f"{what} {s!r} holds a NUL character")
    return b


def _b(s: Union[str, bytes, None], what: str = "string") -> Optional[bytes]:
    if s is None:
        return s
    return _cstr(s, what)


def version() -> str:
    """The version of the loaded libevbus."""
    return capi.evb_version().decode()


# ---------------------------------------------------------------- bus, topics

_DURABILITY = {"none": 0, "async": 1, "sync": 2}


@dataclass(frozen=True)
class TopicInfo:
    """A topic's configuration, defaults filled in (evb_topic_info)."""
    name: str
    partitions: int
    ring_bytes: int
    max_event_bytes: int
    durability: str
    file_mode: int
    segment_bytes: int
    retain_bytes: int
    retain_ms: int
    flush_ms: int


@dataclass(frozen=True)
class Receipt:
    """Where a published event went (evb_receipt): it is on disk once the
    partition's durable position reaches ``end_position``. ``incarnation``
    names the partition ring it went into: a receipt of a ring rebuilt
    since (a reboot) is refused with ESTALE, its positions being another
    ring's now."""
    partition: int
    offset: int
    position: int
    end_position: int
    incarnation: int = 0

    def _c(self) -> "capi.Receipt":
        """The evb_receipt for the C calls; out of range is ValueError,
        never wrapped to a partition or position that exists."""
        return capi.Receipt(_ranged("partition", self.partition, 0, 2**32 - 1),
                            _ranged("incarnation", self.incarnation, 0, 2**32 - 1),
                            _ranged("offset", self.offset, 0, 2**64 - 1),
                            _ranged("position", self.position, 0, 2**64 - 1),
                            _ranged("end_position", self.end_position, 0, 2**64 - 1))


class Bus:
    """A bus: a directory of topics (evb_bus_open).

    ``name_or_path``: a name (under /dev/shm/evbus*/), a path with '/', or
    None for $EVBUS_BUS else "default". Thread-safe. Closing the bus closes
    the producers and consumers opened through it first.
    """

    def __init__(self, name_or_path: Optional[str] = None, *, data_dir: Optional[str] = None,
                 mode: int = 0, dead_ms: int = 0, stall_ms: int = 0):
        opts = capi.BusOptions(dead_ms=_u32("dead_ms", dead_ms),
                               stall_ms=_u32("stall_ms", stall_ms), mode=_u32("mode", mode),
                               data_dir=_b(data_dir, "data_dir"))
        h = ctypes.c_void_p()
        _check(capi.evb_bus_open(byref(h), _b(name_or_path, "bus"), byref(opts)),
               f"bus {name_or_path or '(default)'}", cold=True)
        self._h: Optional[int] = h.value
        # Weak: a producer or consumer dropped unclosed is closed by its
        # __del__; each holds the bus, so the bus outlives them.
        self._children: "weakref.WeakSet[Any]" = weakref.WeakSet()

    @property
    def path(self) -> str:
        """The bus directory."""
        return capi.evb_bus_path(self._handle()).decode()

    def _handle(self) -> int:
        if not self._h:
            raise Error(-_errno.EBADF, "bus is closed", detail="")
        return self._h

    def create_topic(self, name: str, partitions: int = 1, *, ring_bytes: int = 0,
                     max_event_bytes: int = 0, durability: str = "none", file_mode: int = 0,
                     segment_bytes: int = 0, retain_bytes: int = 0, retain_ms: int = 0,
                     flush_ms: int = 0, exist_ok: bool = False) -> TopicInfo:
        """Create topic NAME (evb_topic_create; 0 means the default).
        ``durability``: "none", "async" or "sync". With ``exist_ok`` an
        existing topic is fine (its own configuration is kept)."""
        cfg = capi.TopicConfig(partitions=_u32("partitions", partitions),
                               ring_bytes=_u64("ring_bytes", ring_bytes),
                               max_event_bytes=_u32("max_event_bytes", max_event_bytes),
                               durability=_DURABILITY[durability],
                               file_mode=_u32("file_mode", file_mode),
                               segment_bytes=_u64("segment_bytes", segment_bytes),
                               retain_bytes=_u64("retain_bytes", retain_bytes),
                               retain_ms=_u64("retain_ms", retain_ms),
                               flush_ms=_u32("flush_ms", flush_ms))
        rc = capi.evb_topic_create(self._handle(), _cstr(name, "topic"), byref(cfg))
        if not (exist_ok and rc == -_errno.EEXIST):
            _check(rc, f"topic {name}: create", cold=True)
        return self.topic_info(name)

    def topic_info(self, name: str) -> TopicInfo:
        """Topic NAME's configuration (evb_topic_info)."""
        ti = capi.TopicInfo()
        _check(capi.evb_topic_info(self._handle(), _cstr(name, "topic"), byref(ti)), f"topic {name}",
               cold=True)
        c = ti.config
        dur = {v: k for k, v in _DURABILITY.items()}.get(c.durability, str(c.durability))
        return TopicInfo(ti.name.decode(), c.partitions, c.ring_bytes, c.max_event_bytes, dur,
                         c.file_mode, c.segment_bytes, c.retain_bytes, c.retain_ms, c.flush_ms)

    def delete_topic(self, name: str, *, force: bool = False) -> None:
        """Delete topic NAME (evb_topic_remove; ``force`` also removes a
        damaged durable topic's data)."""
        _check(capi.evb_topic_remove(self._handle(), _cstr(name, "topic"),
                                     capi.EVB_DELETE_FORCE if force else 0),
               f"topic {name}: delete", cold=True)

    def topics(self) -> list[str]:
        """Topic names, in name order (evb_topic_list)."""
        names: list[str] = []

        def take(name: bytes, arg: Any) -> int:
            names.append(name.decode())
            return 0

        _check(capi.evb_topic_list(self._handle(), capi.TopicListFn(take), None), "topic list",
               cold=True)
        return names

    def partition_stat(self, topic: str, partition: int) -> dict[str, int]:
        """Live counters of one partition (evb_partition_stat), as a dict."""
        st = capi.PartitionStat()
        _check(capi.evb_partition_stat(self._handle(), _cstr(topic, "topic"),
                                       _u32("partition", partition), byref(st)),
               f"topic {topic} partition {partition}", cold=True)
        return {f: getattr(st, f) for f, _ in capi.PartitionStat._fields_}

    def producer(self, topic: str, **kw: Any) -> "Producer":
        """A Producer on TOPIC (see Producer)."""
        return Producer(self, topic, **kw)

    def consumer(self, topic: str, **kw: Any) -> "Consumer":
        """A Consumer on TOPIC (see Consumer)."""
        return Consumer(self, topic, **kw)

    def close(self) -> None:
        """Close the producers and consumers opened on the bus, then the bus."""
        for ch in list(self._children):
            ch.close()
        if self._h:
            capi.evb_bus_close(self._h)
            self._h = None

    def __enter__(self) -> "Bus":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_h", None) and not len(self._children):
            capi.evb_bus_close(self._h)
            self._h = None


# ---------------------------------------------------------------- producer


def _bytes_of(v: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode()
    return bytes(memoryview(v))


class Producer:
    """Publishes to a topic (evb_producer_open).

    ``block_ms``: how long a publish waits on a full ring (-1: as long as
    it takes, the default; 0: raise Error EAGAIN at once). It also bounds
    ``publish(sync=True)``'s wait for disk (evb_producer_options.block_ms,
    EVB_MSG_SYNC): past it the publish raises Error ETIMEDOUT, the event
    published all the same (with 0, once it sees the flusher stopped;
    -1: until the event is on disk).
    ``partitioner``: "key" (hash of the key, round-robin without one) or
    "round_robin". ``producer_id``: 0, or a stable id >= 0x80000000.
    ``exclusive``: this producer is the topic's only one while it is open
    (EVB_PRODUCER_EXCLUSIVE: the fastest publish; the open raises Error
    EBUSY while another producer holds a partition).
    One thread at a time (open one per thread).
    """

    def __init__(self, bus: Bus, topic: str, *, block_ms: int = -1, partitioner: str = "key",
                 producer_id: int = 0, exclusive: bool = False):
        opts = capi.ProducerOptions(block_ms=_ranged("block_ms", block_ms, *I32),
                                    partitioner={"key": 0, "round_robin": 1}[partitioner],
                                    producer_id=_u32("producer_id", producer_id),
                                    flags=capi.EVB_PRODUCER_EXCLUSIVE if exclusive else 0)
        h = ctypes.c_void_p()
        _check(capi.evb_producer_open(byref(h), bus._handle(), _cstr(topic, "topic"), byref(opts)),
               f"topic {topic}: producer", cold=True)
        self._h: Optional[int] = h.value
        self.topic = topic
        self._bus = bus
        self._msg = capi.Msg()
        bus._children.add(self)

    def _handle(self) -> int:
        if not self._h:
            raise Error(-_errno.EBADF, f"topic {self.topic}: producer is closed", detail="")
        return self._h

    def _fill(self, value: Any, key: Union[bytes, str, None], partition: Optional[int],
              type: int, flags: int) -> Any:
        """The handle's one evb_msg, filled for a single publish."""
        m = self._msg
        v = _bytes_of(value)
        k = _bytes_of(key) if key is not None else None
        m.value, m.value_len = v, len(v)
        m.key, m.key_len = k, len(k) if k else 0
        m.partition = _part(partition)
        m.type, m.flags = _ranged("type", type, 0, 2**16 - 1), flags
        return m

    def publish(self, value: Any, key: Union[bytes, str, None] = None,
                partition: Optional[int] = None, *, type: int = 0, sync: bool = False) -> None:
        """Publish one event (evb_publish): VALUE (bytes-like or str) with
        KEY, to PARTITION or where the partitioner puts it. ``sync`` waits
        until a durable topic has it on disk."""
        m = self._fill(value, key, partition, type, capi.EVB_MSG_SYNC if sync else 0)
        rc = capi.evb_publish(self._handle(), byref(m))
        if rc:
            raise Error(rc, f"topic {self.topic}: publish")

    def publish_receipt(self, value: Any, key: Union[bytes, str, None] = None,
                        partition: Optional[int] = None, *, type: int = 0) -> Receipt:
        """Publish one event as publish() does, without waiting for disk,
        and return its Receipt (evb_publish_receipt): hand it to
        wait_durable(), or compare its end_position with
        durable_position()."""
        m = self._fill(value, key, partition, type, 0)
        r = capi.Receipt()
        rc = capi.evb_publish_receipt(self._handle(), byref(m), byref(r))
        if rc:
            raise Error(rc, f"topic {self.topic}: publish")
        return Receipt(r.partition, r.offset, r.position, r.end_position, r.incarnation)

    def wait_durable(self, receipt: Receipt, timeout_ms: int = -1) -> None:
        """Wait until RECEIPT's event is on disk (evb_producer_wait_durable;
        <0: no timeout). Raises Error ETIMEDOUT, the flusher's error,
        ESTALE for a receipt of a ring rebuilt since, or EINVAL for one that
        ends past what this producer published there. Returns at once on a
        topic that is not durable."""
        r = receipt._c()
        timeout_ms = _ranged("timeout_ms", timeout_ms, -(2**31), 2**31 - 1)
        _check(capi.evb_producer_wait_durable(self._handle(), byref(r), timeout_ms),
               f"topic {self.topic}: wait_durable")

    def durable_position(self, receipt: Receipt) -> int:
        """The durable position of RECEIPT's partition, without waiting
        (evb_producer_durable_position): every receipt of it whose
        end_position is at or below is on disk. Raises Error with the
        flusher's error when it stopped on one, ESTALE for a receipt of a
        ring rebuilt since."""
        pos = c_uint64()
        r = receipt._c()
        _check(capi.evb_producer_durable_position(self._handle(), byref(r), byref(pos)),
               f"topic {self.topic}: durable_position")
        return pos.value

    def publish_many(self, values: Union[Iterable[Any], Any],
                     key: Union[bytes, str, None] = None, partition: Optional[int] = None, *,
                     keys: Optional[Sequence[Union[bytes, str, None]]] = None,
                     type: int = 0) -> int:
        """Publish a batch in one call (evb_publish_batch): runs of events
        for one partition are claimed together. VALUES is an iterable of
        bytes-likes, or a one-dimensional C-contiguous numpy array whose
        rows are published in place (no copy). KEY applies to all, or KEYS
        gives one per value. Returns how many were published (all, or an
        Error is raised when none was; fewer only when a later partition
        run could not be claimed)."""
        iface = getattr(values, "__array_interface__", None)
        if iface is not None and len(iface["shape"]) == 1 and values.flags["C_CONTIGUOUS"]:
            n = len(values)
            size = values.dtype.itemsize
            base = iface["data"][0]
            ptrs: Sequence[Any] = [base + i * size for i in range(n)]
            lens = [size] * n
            hold: Any = values
        else:
            vals = [_bytes_of(v) for v in values]
            n = len(vals)
            ptrs, lens, hold = vals, [len(v) for v in vals], vals
        if n == 0:
            return 0
        msgs = (capi.Msg * n)()
        part = _part(partition)
        type = _ranged("type", type, 0, 2**16 - 1)
        k1 = _bytes_of(key) if key is not None else None
        kl = [(_bytes_of(k) if k is not None else None) for k in keys] if keys is not None \
            else None
        if kl is not None and len(kl) != n:
            raise ValueError("publish_many: keys and values differ in length")
        for i in range(n):
            m = msgs[i]
            m.value, m.value_len, m.partition, m.type = ptrs[i], lens[i], part, type
            k = kl[i] if kl is not None else k1
            if k:
                m.key, m.key_len = k, len(k)
        rc = capi.evb_publish_batch(self._handle(), msgs, n)
        del hold
        return _check(rc, f"topic {self.topic}: publish_many")

    def sync(self, timeout_ms: int = -1) -> None:
        """Durable topics: wait until what this producer published is on
        disk (evb_producer_sync)."""
        timeout_ms = _ranged("timeout_ms", timeout_ms, *I32)
        _check(capi.evb_producer_sync(self._handle(), timeout_ms), f"topic {self.topic}: sync")

    def close(self) -> None:
        """Close the producer (idempotent)."""
        if self._h:
            capi.evb_producer_close(self._h)
            self._h = None
            self._bus._children.discard(self)

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_h", None):
            capi.evb_producer_close(self._h)
            self._h = None


# ---------------------------------------------------------------- events

W = capi.EV_WORDS


def _stale() -> "StaleEventError":
    return StaleEventError()


def _word(k: int, shift: int = 0, mask: int = 0, doc: str = "") -> property:
    """A property reading word K of the event (bits SHIFT up, MASK) in the
    consumer's batch array, which holds it while the event is an Event
    (the next read makes it a _StaleEvent first)."""
    if not mask:
        def get(s: "Event") -> int:
            return s[0]._w[s[1] + k]
    else:
        def get(s: "Event") -> int:
            return (s[0]._w[s[1] + k] >> shift) & mask
    return property(get, doc=doc)


class Event(tuple):
    """One delivered event. Valid until the next read on its consumer (the
    next step of an iteration, or the next poll(), next() or poll_numpy()
    call): after that every attribute raises StaleEventError and its
    ``value`` view is released (any use of it raises ValueError), so stale
    memory is never read. Keep what you need with bytes(ev.value).

    ``value`` is a read-only memoryview: zero-copy into the ring's mapping
    for a lossless subscriber or a named consumer of a ring-only topic;
    for every other reader a view of the consumer's batch buffer, into
    which the C library copied the event once (evbus.h,
    evb_consumer_read_batch).

    (A tuple inside, (consumer, word index, value view, queue settle
    tuple or None, offset), so a batch of them is built without a Python
    call per event, and value and offset are read without one either. The
    next read turns each into a _StaleEvent, whose attributes raise, so
    no attribute needs to check whether its event is current.)
    """

    __slots__ = ()

    value = property(itemgetter(2), doc="The value, a read-only memoryview (see the class doc).")
    offset = property(itemgetter(4), doc="Index in its partition.")

    @property
    def key(self) -> Optional[bytes]:
        """The key (a copy), or None when the event has none."""
        w, b = self[0]._w, self[1]
        n = w[b + 2] & 0xFFFFFFFF
        return ctypes.string_at(w[b], n) if n else None

    partition = _word(3, 0, 0xFFFFFFFF, "Its partition.")
    type = _word(3, 32, 0xFFFF, "The application's event type.")
    flags = _word(3, 48, 0xFFFF, "The application's flags.")
    position = _word(5, doc="Byte position in the partition's log.")
    timestamp_ns = _word(6, doc="CLOCK_REALTIME at publish, ns.")
    producer_seq = _word(7, doc="Sequence per producer and partition.")
    producer_id = _word(8, 0, 0xFFFFFFFF, "The producer's id.")
    deliveries = _word(8, 32, 0xFFFFFFFF, "Groups: times handed out "
                                          "(evb_event.deliveries); else 0.")
    lost_events = _word(9, doc="Events lost (lapped) just before this one.")
    lost_bytes = _word(10, doc="Log bytes lost with them.")

    @property
    def timestamp(self) -> float:
        """Publish time, s since the epoch."""
        return self.timestamp_ns / 1e9

    def _struct(self) -> capi.Event:
        return capi.Event.from_buffer(self[0]._evs, self[1] * 8)

    def ack(self) -> None:
        """Queue group members: done, never delivered again (evb_consumer_ack)."""
        self[0].ack(self)

    def nack(self, delay_ms: int = 0) -> None:
        """Queue group members: deliver again after DELAY_MS (evb_consumer_nack)."""
        self[0].nack(self, delay_ms)

    def reject(self, reason: str = "") -> None:
        """Send it to <topic>.dlq with REASON (evb_consumer_reject)."""
        self[0].reject(self, reason)

    def __repr__(self) -> str:
        try:
            return (f"<evbus.Event partition={self.partition} offset={self.offset} "
                    f"value_len={len(self.value)}>")
        except Error:
            return "<evbus.Event (stale)>"

    # A tuple's equality and hash would compare views; events are distinct.
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__


def _raise_stale(_s: Any, *_a: Any) -> Any:
    raise _stale()


class _StaleEvent(Event):
    """An Event after the next read on its consumer: what the consumer's
    read turns it into (by its __class__, the same layout), so that every
    attribute raises StaleEventError. ack() and nack() of a queue member's
    event still work: they name the delivery by its token."""

    __slots__ = ()


for _name in ("value", "key", "partition", "type", "flags", "offset", "position",
              "timestamp_ns", "producer_seq", "producer_id", "deliveries", "lost_events",
              "lost_bytes"):
    setattr(_StaleEvent, _name, property(_raise_stale))
_StaleEvent._struct = _raise_stale  # type: ignore[method-assign]
_STALE = tuple.__new__(_StaleEvent, ())   # the "event before" a batch's first
_NO_VIEW = memoryview(b"")                # and its view, released many times
_first = itemgetter(0)


# ---------------------------------------------------------------- consumer

_KINDS = {"subscriber": capi.SUBSCRIBER, "lossless": capi.SUBSCRIBER_LOSSLESS,
          "consumer": capi.CONSUMER, "group": capi.GROUP_MEMBER, "queue": capi.QUEUE_MEMBER}
_STARTS = {None: capi.START_DEFAULT, "default": capi.START_DEFAULT,
           "latest": capi.START_LATEST, "earliest": capi.START_EARLIEST,
           "committed": capi.START_COMMITTED}
_IDLE = {"block": capi.IDLE_BLOCK, "spin": capi.IDLE_SPIN, "yield": capi.IDLE_YIELD}
_REBALANCE = {1: "assigned", 2: "revoked", 3: "lost"}

META_FIELDS = [("offset", "<u8"), ("position", "<u8"), ("timestamp_ns", "<u8"),
               ("lost_events", "<u8"), ("ack_token", "<u8"), ("partition", "<u4"),
               ("deliveries", "<u4")]


class _Win:
    """SIZE bytes of the mapping at LO, as a ctypes array (nothing is read
    until a slice is). Each read's slices come from a fresh root view, so
    once they and the root are released the array is referenced by this
    object alone, unless someone derived a view of their own from one of
    them (np.frombuffer, memoryview(v)): held() tells."""

    __slots__ = ("arr", "lo", "size", "refs", "root")

    def __init__(self, lo: int, size: int):
        self.arr = (c_uint8 * size).from_address(lo)
        self.lo, self.size, self.root = lo, size, None
        self.refs = sys.getrefcount(self.arr)

    def slice(self, ptr: int, n: int) -> memoryview:
        root = self.root
        if root is None:
            root = self.root = memoryview(self.arr).cast("B").toreadonly()
        return root[ptr - self.lo:ptr - self.lo + n]

    def release(self) -> None:
        if self.root is not None:
            self.root.release()
            self.root = None

    def held(self) -> bool:
        return sys.getrefcount(self.arr) > self.refs


def _start_of(start: Optional[str], offset: Optional[int], position: Optional[int],
              time: Optional[float], time_ns: Optional[int]) -> tuple[int, int]:
    given = [(capi.START_OFFSET, offset), (capi.START_POSITION, position),
             (capi.START_TIME, time_ns if time_ns is not None
              else (int(time * 1e9) if time is not None else None))]
    given = [(w, v) for w, v in given if v is not None]
    if len(given) + (start is not None) > 1:
        raise ValueError("give one of start, offset, position, time, time_ns")
    if given:
        # The C API takes unsigned values: a negative one would wrap to a
        # place far past the tail (and a commit there would skip events).
        # Past 2**64 - 1 they would wrap as well (ctypes keeps the low bits).
        if not 0 <= given[0][1] <= U64:
            raise ValueError(f"offset, position and time are in [0, {U64}], not "
                             f"{given[0][1]!r}")
        return given[0][0], int(given[0][1])
    if start not in _STARTS:
        raise ValueError(f"start: one of {', '.join(k for k in _STARTS if k)}, not {start!r}")
    return _STARTS[start], 0


class Consumer:
    """A reader of a topic, any kind (evb_consumer_open).

    kind: "subscriber" (lossy, from the tail), "lossless" (gates producers),
    "consumer" (named: ``name``, committed cursor), "group" (partition
    group ``name``), "queue" (queue group ``name``: ack, nack, reject).
    Where it starts: ``start`` ("latest", "earliest", "committed") or one of
    ``offset``, ``position``, ``time`` (s since the epoch), ``time_ns``;
    ``strict`` makes a start older than the retained log an Error (ERANGE).
    ``partition``: read only that one. ``idle``: "block", "spin", "yield".
    ``dedup``, ``skip_damage``: the EVB_CONSUMER_* flags. Groups:
    ``lease_ms``, ``on_rebalance(what, partitions)`` (what: "assigned",
    "revoked", "lost"), queue groups ``ack_wait_ms``, ``max_deliveries``
    (None: no limit), ``max_in_flight``.
    ``batch``: most events one read takes (iteration and poll()).
    ``arena_bytes``: the buffer events are copied into for readers that do
    not read in place (default: 1 MiB, at least 4 events of the topic's
    largest size).

    Reading: iterate (``for ev in c``: waits for events; ``c.events(timeout)``
    stops after ``timeout`` s without one), ``poll(max, timeout)`` for a
    list, ``next(timeout)`` for one, ``poll_numpy(max, dtype)`` for a
    structured array of fixed-layout values. Each read invalidates the
    events of the one before (Event). One thread at a time.
    """

    def __init__(self, bus: Bus, topic: str, *, kind: str = "subscriber",
                 name: Optional[str] = None, start: Optional[str] = None,
                 offset: Optional[int] = None, position: Optional[int] = None,
                 time: Optional[float] = None, time_ns: Optional[int] = None,
                 strict: bool = False, partition: Optional[int] = None, idle: str = "block",
                 dedup: bool = False, skip_damage: bool = False, lease_ms: int = 0,
                 on_rebalance: Optional[Callable[[str, list[int]], None]] = None,
                 ack_wait_ms: int = 0, max_deliveries: Optional[int] = 0,
                 max_in_flight: int = 0, batch: int = 1024,
                 arena_bytes: Optional[int] = None):
        if kind not in _KINDS:
            raise ValueError(f"kind: one of {', '.join(_KINDS)}, not {kind!r}")
        self.topic, self.kind, self.name = topic, kind, name
        self._h: Optional[int] = None
        self._views: list[memoryview] = []
        self._roots: list[memoryview] = []
        self._arena_root: Optional[memoryview] = None
        self._windows: dict[int, _Win] = {}
        self._extra: list[_Win] = []
        self._live: list[Event] = []  # the last read's events, still Events
        self._batch_id = 0
        # An iteration's batch: (batch id, iterator over its list, length).
        self._iter_batch: Optional[tuple[int, Iterator[Event], int]] = None
        self._iter_list: Optional[list[Event]] = None
        self._queue = kind == "queue"
        self._pending: Optional[tuple[capi.Event, bytes, bytes]] = None
        self._cb_exc: Optional[BaseException] = None
        self._bus = bus
        info = bus.topic_info(topic)
        self._ring_bytes = info.ring_bytes
        # Readers whose events may stay in the ring until the next read
        # (evb_consumer_read_batch). Their events below the reader's
        # registration tail (a start at "earliest" on a filled topic) come
        # as copies, yet a view kept of one is refused all the same, so the
        # rule does not depend on where in the log the reader happens to be.
        self._in_place = kind in ("lossless", "consumer") and info.durability == "none"
        whence, value = _start_of(start, offset, position, time, time_ns)
        self._cb = None
        if on_rebalance is not None:
            def cb(_c: Any, what: int, parts: Any, n: int, _arg: Any) -> None:
                try:
                    on_rebalance(_REBALANCE.get(what, str(what)), [parts[i] for i in range(n)])
                except BaseException as e:  # re-raised after the C call
                    self._cb_exc = e
            self._cb = capi.RebalanceFn(cb)
        opts = capi.ConsumerOptions(
            kind=_KINDS[kind], name=_b(name, "name"), start=whence | (capi.EVB_SEEK_STRICT if strict
                                                               else 0),
            start_value=value, idle=_IDLE[idle],
            partition=_ranged("partition", partition, 0, I32[1]) if partition is not None
            else 0,
            only_partition=1 if partition is not None else 0,
            flags=(capi.EVB_CONSUMER_DEDUP if dedup else 0)
            | (capi.EVB_CONSUMER_SKIP_DAMAGE if skip_damage else 0),
            lease_ms=_u32("lease_ms", lease_ms), ack_wait_ms=_u32("ack_wait_ms", ack_wait_ms),
            max_deliveries=capi.EVB_NO_MAX_DELIVERIES if max_deliveries is None
            else _u32("max_deliveries", max_deliveries),
            max_in_flight=_u32("max_in_flight", max_in_flight))
        if self._cb is not None:
            opts.on_rebalance = self._cb
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch: a count of events >= 1, not {batch!r}")
        self._batch = batch
        self._evs = (capi.Event * self._batch)()
        self._evs_addr = ctypes.addressof(self._evs)
        self._w = memoryview(self._evs).cast("B").cast("Q")
        # The same as 32-bit words: a value's length is word 5 of 24, so
        # its list needs no shift per event.
        self._w32 = memoryview(self._evs).cast("B").cast("I")
        self._odd = capi.Event()
        alen = arena_bytes if arena_bytes is not None else \
            max(1 << 20, 4 * (info.max_event_bytes + 64))
        self._new_arena(max(alen, info.max_event_bytes + 64))
        h = ctypes.c_void_p()
        rc = capi.evb_consumer_open(byref(h), bus._handle(), _cstr(topic, "topic"), byref(opts))
        self._raise_cb()
        _check(rc, f"topic {topic}: open {kind}" + (f" {name}" if name else ""), cold=True)
        self._h = h.value
        bus._children.add(self)

    # -- memory the events' views point into

    def _new_arena(self, n: int) -> None:
        self._arena = (c_uint8 * n)()
        self._arena_addr = ctypes.addressof(self._arena)
        self._arena_len = n
        # The references the consumer itself holds; a view derived from an
        # event's value (np.frombuffer, memoryview(v)) holds one more.
        self._arena_refs = sys.getrefcount(self._arena)

    def _view(self, ptr: int, n: int, part: int) -> memoryview:
        """A read-only view of N bytes at PTR (in the arena or the ring)."""
        off = ptr - self._arena_addr
        if 0 <= off and off + n <= self._arena_len:
            root = self._arena_root
            if root is None:
                root = self._arena_root = memoryview(self._arena).cast("B").toreadonly()
            return root[off:off + n]
        if n == 0:
            return memoryview(b"")
        return self._window(ptr, n, part).slice(ptr, n)

    def _window(self, ptr: int, n: int, part: int) -> _Win:
        # Events read in place lie in partition PART's ring, whose data
        # area (ring_bytes long) holds the first such pointer seen, so one
        # window of twice that around it covers every later one. The window
        # is never handed out, only slices of exactly an event's bytes.
        win = self._windows.get(part)
        if win is None:
            lo = max(ptr - self._ring_bytes, 4096)
            win = self._windows[part] = _Win(lo, ptr + self._ring_bytes - lo)
        if not (win.lo <= ptr and ptr + n <= win.lo + win.size):
            # Left where it was read (it did not fit the arena): its own.
            win = _Win(ptr, n)
            self._extra.append(win)
        return win

    def _events_of(self, n: int) -> list[Event]:
        """Events 0..N-1 of the last read, built with C-speed loops (map,
        zip) rather than a Python call per event."""
        w = self._w
        end = n * W
        ptrs = w[1:end:W].tolist()
        lens = self._w32[2 * capi.EV_LENS + 1:2 * end:2 * W].tolist()
        lo = min(ptrs)
        # Past every value's end, without an addition per event; when that
        # bound is too loose to fit the arena, the exact last end.
        hi = max(ptrs) + max(lens)
        base = self._arena_addr
        loose = True  # until hi is the exact end
        if base <= lo and hi > base + self._arena_len:
            hi, loose = max(map(add, ptrs, lens)), False
        root = None
        if base <= lo and hi <= base + self._arena_len:
            root = self._arena_root
            if root is None:
                root = self._arena_root = memoryview(self._arena).cast("B").toreadonly()
        elif lo:
            # Read in place: one partition's window may hold them all.
            part0 = w[3] & 0xFFFFFFFF
            win = self._windows.get(part0)
            if win is None and not (base <= ptrs[0] < base + self._arena_len):
                win = self._window(ptrs[0], lens[0], part0)
            if win is not None and loose and hi > win.lo + win.size:
                hi = max(map(add, ptrs, lens))
            if win is not None and win.lo <= lo and hi <= win.lo + win.size:
                base = win.lo
                win.slice(base, 0)
                root = win.root
        if root is not None:
            # One subtraction per event (a start), its end from the length.
            starts = list(map(sub, ptrs, repeat(base, n)))
            # operator.getitem, not root.__getitem__: a fast call, no
            # argument tuple per event.
            views = list(map(getitem, repeat(root, n),
                             map(slice, starts, map(add, starts, lens))))
        else:
            parts = list(map(and_, w[3:end:W].tolist(), repeat(0xFFFFFFFF, n)))
            views = list(map(self._view, ptrs, lens, parts))
        self._views = views
        if self._queue:
            settle: Iterable[Any] = zip(
                map(and_, w[3:end:W].tolist(), repeat(0xFFFFFFFF, n)), w[5:end:W].tolist(),
                w[11:end:W].tolist(), map(rshift, w[8:end:W].tolist(), repeat(32, n)))
        else:
            settle = repeat(None, n)
        # Event(tuple): the type call is fewer instructions per event than
        # map(tuple.__new__, repeat(Event), ...) (cachegrind, Python 3.11).
        evs = self._live = list(map(Event, zip(repeat(self, n), range(0, end, W), views, settle,
                                               w[4:end:W].tolist())))
        return evs

    def _invalidate(self, closing: bool = False) -> None:
        """Before a read: end the previous events. Raises, reading nothing,
        while a view derived from one of them points into the mapping or,
        for a reader that reads in place, into the batch buffer (CLOSING:
        the buffer is ours, not the mapping's, so such a view is no reason
        to keep the reader open)."""
        live = self._live
        if live:
            it = self._iter_batch
            if it is not None and self._iter_list is live:
                # An iteration made the events it stepped past stale
                # already; from the current one on they still are Events.
                del live[:max(0, it[2] - it[1].__length_hint__() - 1)]
            # Stale before anything can overwrite what they read.
            any(map(setattr, live, repeat("__class__"), repeat(_StaleEvent)))
            if self._iter_list is live:
                live.clear()  # a suspended iteration's steps end here
            self._live = []
        self._iter_list = None
        self._batch_id += 1  # an iteration's batch ends here too
        held = False
        if self._views:
            try:
                any(map(memoryview.release, self._views))
            except BufferError:
                held = True
            self._views = []
        if self._arena_root is not None:
            self._arena_root.release()
            self._arena_root = None
        for win in self._windows.values():
            win.release()
        for win in self._extra:
            win.release()
        arena_held = sys.getrefcount(self._arena) > self._arena_refs
        if arena_held and (closing or not self._in_place):
            # Someone kept a view derived from an event (np.frombuffer):
            # it keeps the old buffer, which nothing writes any more.
            self._new_arena(self._arena_len)
            arena_held = False
        self._extra = [w for w in self._extra if w.held()]
        if held or arena_held or self._extra or any(w.held() for w in self._windows.values()):
            what = "close" if closing else "read"
            raise Error(-_errno.EBUSY, f"topic {self.topic}: {what}",
                        words="event view still held",
                        detail="a view derived from an earlier event's value "
                               "(np.frombuffer, memoryview(ev.value)) still points into the "
                               f"ring, which {'closing' if closing else 'the next read'} lets "
                               "producers overwrite: copy "
                               "what you keep (bytes(ev.value)) and drop the view")

    def _raise_cb(self) -> None:
        if self._cb_exc is not None:
            e, self._cb_exc = self._cb_exc, None
            raise e

    def _handle(self) -> int:
        if not self._h:
            raise Error(-_errno.EBADF, f"topic {self.topic}: consumer is closed", detail="")
        return self._h

    # -- reading

    def _read(self, max_events: int, timeout_ms: int) -> int:
        # Checked here, where it sizes a C call's writes into our buffers.
        if not isinstance(max_events, int) or max_events < 1:
            raise ValueError(f"max_events: a count of events >= 1, not {max_events!r}")
        h = self._handle()
        self._invalidate()
        if self._pending is not None:
            ev, key, value = self._pending
            self._pending = None
            ctypes.memmove(self._arena_addr, key, len(key))
            vat = (len(key) + 7) & ~7
            ctypes.memmove(self._arena_addr + vat, value, len(value))
            ev.key = self._arena_addr if key else None
            ev.value = self._arena_addr + vat
            self._evs[0] = ev
            return 1
        n = capi.evb_consumer_read_batch(h, self._evs_addr, min(max_events, self._batch),
                                         self._arena_addr, self._arena_len, timeout_ms)
        self._raise_cb()
        if n < 0:
            raise Error(n, f"topic {self.topic}: read")
        return n

    def events(self, timeout: Optional[float] = None) -> Iterator[Event]:
        """Iterate over events; with TIMEOUT (s), stop once none came within
        it, else wait for ever. Each step invalidates the event before."""
        ms = max(0, _ms("timeout", timeout, 200))
        while True:
            n = self._read(self._batch, ms)
            if n == 0:
                if timeout is None:
                    continue
                return
            evs = self._events_of(n)
            it = iter(evs)
            self._iter_list = evs
            self._iter_batch = (self._batch_id, it, n)
            # Each step, at C speed (no Python code per event): the next
            # event, the one before made a _StaleEvent, its view released.
            # Another read in between (or a commit) empties EVS: the steps
            # end there. The first step's "event before" is a placeholder:
            # the last batch's events were made stale by this read.
            steps = zip(it, map(setattr, chain((_STALE,), evs), repeat("__class__"),
                                repeat(_StaleEvent)),
                        map(memoryview.release, chain((_NO_VIEW,), self._views)))
            while True:
                try:
                    yield from map(_first, steps)
                    break
                except BufferError:
                    # A view derived from the event before (np.frombuffer)
                    # holds its memory: the next read finds it held and
                    # raises EBUSY. This step's event was taken: hand it
                    # out, then go on with the rest.
                    yield evs[n - it.__length_hint__() - 1]

    def __iter__(self) -> Iterator[Event]:
        return self.events()

    def poll(self, max_events: Optional[int] = None, timeout: float = 0) -> list[Event]:
        """Up to MAX_EVENTS events (at most ``batch``; default ``batch``),
        waiting up to TIMEOUT s for the first. All of them are valid until
        the next read."""
        n = self._read(self._batch if max_events is None else max_events,
                       _ms("timeout", timeout, 0))
        # The list is the caller's: the next read makes its events stale
        # but leaves the list alone (only an iteration's own is emptied).
        return self._events_of(n) if n else []

    def next(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event, waiting up to TIMEOUT s (None: for ever), or None."""
        while True:
            n = self._read(1, _ms("timeout", timeout, 200))
            if n:
                return self._events_of(1)[0]
            if timeout is not None:
                return None

    def poll_numpy(self, max_events: int, dtype: Any, timeout: Optional[float] = 0, *,
                   meta: bool = False, out: Any = None) -> Any:
        """A batch of fixed-layout values as a numpy structured array, in one
        C call (evb_consumer_poll_values): up to MAX_EVENTS values, each
        exactly ``dtype.itemsize`` bytes, waiting up to TIMEOUT s for the
        first (None: for ever). With ``meta`` returns (values, meta) where meta has the
        fields offset, position, timestamp_ns, lost_events, ack_token,
        partition, deliveries (queue members: ``ack(meta_row)``). ``out``:
        an array of DTYPE to fill instead of a new one. The arrays own
        their memory: they stay valid after later reads.

        A value of another size ends the batch; the values before it are
        returned, and this call (or the next one, when some were returned)
        raises ValueSizeError. The event is kept, not lost: the next
        next(), poll() or iteration step hands it out (or poll_numpy() with
        a dtype of its size, as a batch of one), then poll_numpy() goes on
        after it.
        """
        import numpy as np
        dt = np.dtype(dtype)
        if dt.hasobject:
            # Bytes from the bus taken for Python object pointers would
            # crash the process (or worse): plain data only.
            raise TypeError(f"dtype {dt}: holds Python objects; use plain numeric/bytes fields")
        if dt.itemsize == 0:
            raise TypeError(f"dtype {dt}: no bytes per value")
        if not isinstance(max_events, int) or max_events < 1:
            raise ValueError(f"max_events: a count of events >= 1, not {max_events!r}")
        max_events = _u32("max_events", max_events)
        if self._pending is not None:
            ev, _, value = self._pending
            if ev.value_len != dt.itemsize:
                raise ValueSizeError(ev.partition, ev.offset, ev.value_len, dt.itemsize)
            # This dtype fits the event held back: it is the batch.
            self._invalidate()
            self._pending = None
            one = np.frombuffer(value, dt).copy()
            if not meta:
                return one
            m = np.zeros(1, META_FIELDS)
            for f, _ in META_FIELDS:
                m[f] = getattr(ev, f)
            return one, m
        h = self._handle()
        if out is not None:
            if out.dtype != dt or not out.flags["C_CONTIGUOUS"] or len(out) < max_events:
                raise ValueError("out: a C-contiguous array of dtype with max_events rows")
            if not out.flags["WRITEABLE"]:
                raise ValueError("out: a read-only array (it would be written through)")
            arr = out
        else:
            arr = np.empty(max_events, dt)
        m = np.empty(max_events, META_FIELDS) if meta else None
        self._invalidate()
        n = c_uint32()
        rc = capi.evb_consumer_poll_values(h, arr.ctypes.data, dt.itemsize, max_events,
                                           m.ctypes.data if m is not None else None,
                                           _ms("timeout", timeout, -1),
                                           byref(n), byref(self._odd))
        self._raise_cb()
        if rc < 0:
            raise Error(rc, f"topic {self.topic}: poll_numpy")
        if rc == 1:
            odd = self._odd
            key = ctypes.string_at(odd.key, odd.key_len) if odd.key_len else b""
            value = ctypes.string_at(odd.value, odd.value_len) if odd.value_len else b""
            self._pending = (capi.Event.from_buffer_copy(odd), key, value)
            if n.value == 0:
                raise ValueSizeError(odd.partition, odd.offset, odd.value_len, dt.itemsize)
        k = n.value
        return (arr[:k], m[:k]) if meta else arr[:k]

    # -- cursors, acks

    def commit(self) -> None:
        """Named consumers and group members: persist the position after
        the last event handed out (evb_consumer_commit): after the whole
        batch of poll() and poll_numpy(), after the current event of an
        iteration. (Iteration reads a batch ahead; the events of it not
        handed out yet are read again after the commit, so a crash
        between never skips them.)"""
        h = self._handle()
        it = self._iter_batch
        # The event an iteration handed out last, in its batch.
        cur = it[2] - it[1].__length_hint__() - 1 if it is not None else 0
        if it is not None and it[0] == self._batch_id and cur + 1 < it[2]:
            # Mid-iteration: move each partition back to its first event
            # not handed out, so the commit covers only what was.
            w = self._w
            back: dict[int, int] = {}
            for i in range(cur + 1, it[2]):
                back.setdefault(w[i * W + 3] & 0xFFFFFFFF, w[i * W + 5])
            self._invalidate()
            for part, pos in back.items():
                _check(capi.evb_consumer_seek(h, part, capi.START_POSITION, pos),
                       f"topic {self.topic}: commit")
        _check(capi.evb_consumer_commit(h), f"topic {self.topic}: commit")
        self._raise_cb()

    def seek(self, offset: Optional[int] = None, *, position: Optional[int] = None,
             time: Optional[float] = None, time_ns: Optional[int] = None,
             start: Optional[str] = None, partition: Optional[int] = None,
             strict: bool = False) -> None:
        """Move PARTITION (None: all) to an offset, position, time (s),
        time_ns, or start "earliest"/"latest"/"committed" (evb_consumer_seek).
        Invalidates the events of the last read."""
        whence, value = _start_of(start, offset, position, time, time_ns)
        if whence == capi.START_DEFAULT:
            raise ValueError("seek: give where to")
        if strict:
            whence |= capi.EVB_SEEK_STRICT
        self._invalidate()
        self._pending = None
        part = -1 if partition is None else _ranged("partition", partition, 0, I32[1])
        _check(capi.evb_consumer_seek(self._handle(), part,
                                      whence, value), f"topic {self.topic}: seek")

    def lag(self) -> int:
        """Bytes between this reader and the tail (evb_consumer_lag)."""
        out = c_uint64()
        _check(capi.evb_consumer_lag(self._handle(), byref(out)), f"topic {self.topic}: lag")
        return out.value

    def assignment(self) -> list[int]:
        """Group members: the partitions owned now."""
        parts = (c_uint32 * 256)()
        n = _check(capi.evb_consumer_assignment(self._handle(), parts, 256),
                   f"topic {self.topic}: assignment")
        return list(parts[:min(n, 256)])

    def _settle_struct(self, ev: Any) -> capi.Event:
        if isinstance(ev, Event):
            if ev[3] is None:
                return ev._struct()
            # A queue member's event: acknowledged any time later.
            p, pos, tok, dl = ev[3]
            return capi.Event(partition=p, position=pos, ack_token=tok, deliveries=dl)
        # A row of poll_numpy()'s meta.
        return capi.Event(partition=int(ev["partition"]), position=int(ev["position"]),
                          ack_token=int(ev["ack_token"]), deliveries=int(ev["deliveries"]),
                          offset=int(ev["offset"]))

    def ack(self, ev: Any) -> None:
        """Queue group members: EV (an Event, or a row of poll_numpy()'s
        meta) is done (evb_consumer_ack)."""
        _check(capi.evb_consumer_ack(self._handle(), byref(self._settle_struct(ev))),
               f"topic {self.topic}: ack")

    def nack(self, ev: Any, delay_ms: int = 0) -> None:
        """Queue group members: deliver EV again after DELAY_MS (evb_consumer_nack)."""
        _check(capi.evb_consumer_nack(self._handle(), byref(self._settle_struct(ev)),
                                      _u32("delay_ms", delay_ms)), f"topic {self.topic}: nack")

    def reject(self, ev: Event, reason: str = "") -> None:
        """Send EV, from the last read, to <topic>.dlq (evb_consumer_reject)."""
        _check(capi.evb_consumer_reject(self._handle(), byref(ev._struct()),
                                          _cstr(reason, "reason")),
               f"topic {self.topic}: reject")

    # -- lifetime

    def close(self) -> None:
        """Close the reader (idempotent; a named consumer does not commit).
        Raises evbus.Error with errno EBUSY, and leaves the reader open,
        while a zero-copy view derived from one of its events is still
        held: a numpy array (np.frombuffer(ev.value)), a memoryview or a
        slice of ev.value of an event read in place, in the ring's mapping
        (lossless subscribers, named consumers of ring-only topics), whose
        bytes producers would overwrite once the reader is gone. Drop it
        (del), or keep a copy instead (bytes(ev.value), arr.copy()), then
        close again. A view of an event the library copied (into the batch
        buffer) keeps its bytes and does not keep the reader open. The
        events themselves are stale after close() either way."""
        if not self._h:
            return
        self._invalidate(closing=True)
        capi.evb_consumer_close(self._h)
        self._h = None
        self._bus._children.discard(self)

    def __enter__(self) -> "Consumer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass  # a derived view still points into the ring: leave it mapped
