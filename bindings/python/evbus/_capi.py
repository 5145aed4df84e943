"""ctypes declarations of libevbus (bus/include/evbus.h) and how it is found.

Only this module knows the C layouts; the classes in ``_core`` use them.
The structures mirror evbus.h field for field (their sizes are checked at
import against what the header implies, so a layout change fails loudly).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from ctypes import (POINTER, Structure, c_char, c_char_p, c_int, c_int32, c_size_t,
                    c_uint16, c_uint32, c_uint64, c_void_p, CFUNCTYPE)
from pathlib import Path

EVB_NAME_MAX = 63
EVB_PARTITION_ANY = -1
EVB_SEEK_STRICT = 0x100
EVB_CONSUMER_SKIP_DAMAGE = 1
EVB_CONSUMER_DEDUP = 2
EVB_DELETE_FORCE = 1
EVB_MSG_SYNC = 1
EVB_PRODUCER_EXCLUSIVE = 1
EVB_NO_MAX_DELIVERIES = 0xFFFFFFFF

# enum evb_reader_kind
SUBSCRIBER, SUBSCRIBER_LOSSLESS, CONSUMER, GROUP_MEMBER, QUEUE_MEMBER = range(5)
# enum evb_start
(START_DEFAULT, START_LATEST, START_EARLIEST, START_COMMITTED, START_OFFSET,
 START_POSITION, START_TIME) = range(7)
# enum evb_idle
IDLE_BLOCK, IDLE_SPIN, IDLE_YIELD = range(3)


def _candidates() -> list[str]:
    """Where libevbus may be, in the order tried (README, "Python")."""
    out = []
    env = os.environ.get("EVBUS_LIB")
    if env:
        out.append(env)
    # Imported from the source tree (bindings/python/evbus): the build
    # directory the README's commands make, build/bus/libevbus.so.
    here = Path(__file__).resolve().parent
    for up in (here.parents[2] if len(here.parents) > 2 else None,):
        if up is not None:
            out.append(str(up / "build" / "bus" / "libevbus.so"))
    found = ctypes.util.find_library("evbus")
    if found:
        out.append(found)
    # `ninja -C build install` puts it in /usr/local/lib, which the
    # ldconfig cache may not list yet.
    out.append("/usr/local/lib/x86_64-linux-gnu/libevbus.so")
    out.append("/usr/local/lib/libevbus.so")
    return out


def _load() -> ctypes.CDLL:
    tried = []
    for path in _candidates():
        # EVBUS_LIB is taken as given; a guess that is not there is skipped.
        if path != os.environ.get("EVBUS_LIB") and "/" in path and not os.path.exists(path):
            continue
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path}: {e}")
            if path == os.environ.get("EVBUS_LIB"):
                break
    raise ImportError("evbus: cannot load libevbus.so (set EVBUS_LIB to its path, or "
                      "install it: ninja -C build install && ldconfig); tried: "
                      + ("; ".join(tried) or "nothing found"))


lib = _load()


class BusOptions(Structure):
    _fields_ = [("dead_ms", c_uint32), ("stall_ms", c_uint32), ("mode", c_uint32),
                ("data_dir", c_char_p)]


class TopicConfig(Structure):
    _fields_ = [("partitions", c_uint32), ("max_event_bytes", c_uint32),
                ("ring_bytes", c_uint64), ("file_mode", c_uint32), ("durability", c_uint32),
                ("segment_bytes", c_uint64), ("retain_bytes", c_uint64),
                ("retain_ms", c_uint64), ("retain_cap_bytes", c_uint64), ("flags", c_uint32),
                ("flush_ms", c_uint32), ("numa_node", c_uint32), ("huge_pages", c_uint32),
                ("reserved_", c_uint64 * 3)]


class TopicInfo(Structure):
    _fields_ = [("name", c_char * (EVB_NAME_MAX + 1)), ("config", TopicConfig)]


class PartitionStat(Structure):
    _fields_ = [("tail_position", c_uint64), ("tail_offset", c_uint64), ("capacity", c_uint64),
                ("published", c_uint64), ("aborted", c_uint64), ("padded_dead", c_uint64),
                ("padded_stalled", c_uint64), ("reaped_readers", c_uint64),
                ("producers", c_uint32), ("readers", c_uint32),
                ("flushed_position", c_uint64), ("durable_position", c_uint64),
                ("log_start_position", c_uint64), ("log_start_offset", c_uint64),
                ("fsyncs", c_uint64), ("recovered_dropped", c_uint64),
                ("retention_unconsumed", c_uint64), ("flush_error", c_int32),
                ("flusher_pid", c_uint32), ("segments", c_uint32), ("disk_bytes", c_uint64)]


class ProducerOptions(Structure):
    _fields_ = [("block_ms", c_int32), ("partitioner", c_uint32), ("producer_id", c_uint32),
                ("flags", c_uint32), ("reserved_", c_uint32 * 4)]


class Msg(Structure):
    # c_char_p: a bytes object is used in place (kept alive by the struct),
    # an int is taken as an address (numpy rows).
    _fields_ = [("key", c_char_p), ("value", c_char_p), ("key_len", c_uint32),
                ("value_len", c_uint32), ("partition", c_int32), ("type", c_uint16),
                ("flags", c_uint16), ("seq", c_uint64)]


class Receipt(Structure):
    """evb_receipt: where a published event went and where its frame ends."""
    _fields_ = [("partition", c_uint32), ("incarnation", c_uint32), ("offset", c_uint64),
                ("position", c_uint64), ("end_position", c_uint64)]


class Event(Structure):
    """evb_event: 96 bytes, read by _core as twelve 64-bit words (EV_*)."""
    _fields_ = [("key", c_void_p), ("value", c_void_p), ("key_len", c_uint32),
                ("value_len", c_uint32), ("partition", c_uint32), ("type", c_uint16),
                ("flags", c_uint16), ("offset", c_uint64), ("position", c_uint64),
                ("timestamp_ns", c_uint64), ("producer_seq", c_uint64),
                ("producer_id", c_uint32), ("deliveries", c_uint32),
                ("lost_events", c_uint64), ("lost_bytes", c_uint64), ("ack_token", c_uint64)]


# evb_event as words: index of each field's 64-bit word.
EV_WORDS = 12
EV_KEY, EV_VALUE, EV_LENS, EV_PART, EV_OFFSET, EV_POSITION, EV_TS, EV_PSEQ, EV_PID_DELIV, \
    EV_LOST, EV_LOST_BYTES, EV_ACK = range(12)

RebalanceFn = CFUNCTYPE(None, c_void_p, c_uint32, POINTER(c_uint32), c_uint32, c_void_p)


class ConsumerOptions(Structure):
    _fields_ = [("kind", c_uint32), ("name", c_char_p), ("start", c_uint32),
                ("start_value", c_uint64), ("idle", c_uint32), ("partition", c_int32),
                ("only_partition", c_uint32), ("flags", c_uint32), ("lease_ms", c_uint32),
                ("on_rebalance", RebalanceFn), ("rebalance_arg", c_void_p),
                ("ack_wait_ms", c_uint32), ("max_deliveries", c_uint32),
                ("max_in_flight", c_uint32), ("reserved_", c_uint32 * 4)]


class ValueMeta(Structure):
    _fields_ = [("offset", c_uint64), ("position", c_uint64), ("timestamp_ns", c_uint64),
                ("lost_events", c_uint64), ("ack_token", c_uint64), ("partition", c_uint32),
                ("deliveries", c_uint32)]


for _s, _n in ((Event, 96), (ValueMeta, 48), (TopicConfig, 96), (Msg, 40),
               (ConsumerOptions, 104), (ProducerOptions, 32), (TopicInfo, 160),
               (PartitionStat, 152), (BusOptions, 24), (Receipt, 32)):
    assert ctypes.sizeof(_s) == _n, f"{_s.__name__}: {ctypes.sizeof(_s)} bytes, expected {_n}"

TopicListFn = CFUNCTYPE(c_int, c_char_p, c_void_p)

_P = c_void_p


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


evb_version = _fn("evb_version", c_char_p)
evb_strerror = _fn("evb_strerror", c_char_p, c_int)
evb_last_error = _fn("evb_last_error", c_char_p)
evb_clear_error = _fn("evb_clear_error", None)
evb_bus_open = _fn("evb_bus_open", c_int, POINTER(_P), c_char_p, POINTER(BusOptions))
evb_bus_close = _fn("evb_bus_close", None, _P)
evb_bus_path = _fn("evb_bus_path", c_char_p, _P)
evb_topic_create = _fn("evb_topic_create", c_int, _P, c_char_p, POINTER(TopicConfig))
evb_topic_remove = _fn("evb_topic_remove", c_int, _P, c_char_p, c_uint32)
evb_topic_info = _fn("evb_topic_info", c_int, _P, c_char_p, POINTER(TopicInfo))
evb_topic_list = _fn("evb_topic_list", c_int, _P, TopicListFn, c_void_p)
evb_partition_stat = _fn("evb_partition_stat", c_int, _P, c_char_p, c_uint32,
                         POINTER(PartitionStat))
evb_producer_open = _fn("evb_producer_open", c_int, POINTER(_P), _P, c_char_p,
                        POINTER(ProducerOptions))
evb_producer_close = _fn("evb_producer_close", None, _P)
evb_publish = _fn("evb_publish", c_int, _P, POINTER(Msg))
evb_publish_batch = _fn("evb_publish_batch", c_int, _P, POINTER(Msg), c_size_t)
evb_producer_sync = _fn("evb_producer_sync", c_int, _P, c_int32)
evb_publish_receipt = _fn("evb_publish_receipt", c_int, _P, POINTER(Msg), POINTER(Receipt))
evb_producer_wait_durable = _fn("evb_producer_wait_durable", c_int, _P, POINTER(Receipt),
                                c_int32)
evb_producer_durable_position = _fn("evb_producer_durable_position", c_int, _P,
                                    POINTER(Receipt), POINTER(c_uint64))
evb_consumer_open = _fn("evb_consumer_open", c_int, POINTER(_P), _P, c_char_p,
                        POINTER(ConsumerOptions))
evb_consumer_close = _fn("evb_consumer_close", None, _P)
evb_consumer_read_batch = _fn("evb_consumer_read_batch", c_int, _P, c_void_p, c_uint32,
                              c_void_p, c_size_t, c_int32)
evb_consumer_poll_values = _fn("evb_consumer_poll_values", c_int, _P, c_void_p, c_uint32,
                               c_uint32, c_void_p, c_int32, POINTER(c_uint32),
                               POINTER(Event))
evb_consumer_commit = _fn("evb_consumer_commit", c_int, _P)
evb_consumer_seek = _fn("evb_consumer_seek", c_int, _P, c_int32, c_uint32, c_uint64)
evb_consumer_lag = _fn("evb_consumer_lag", c_int, _P, POINTER(c_uint64))
evb_consumer_ack = _fn("evb_consumer_ack", c_int, _P, POINTER(Event))
evb_consumer_nack = _fn("evb_consumer_nack", c_int, _P, POINTER(Event), c_uint32)
evb_consumer_reject = _fn("evb_consumer_reject", c_int, _P, POINTER(Event), c_char_p)
evb_consumer_assignment = _fn("evb_consumer_assignment", c_int, _P, POINTER(c_uint32),
                              c_uint32)
