"""evbus: the Python binding of the evbus shared-memory event bus.

    import evbus
    with evbus.Bus("demo") as bus:
        bus.create_topic("orders", partitions=4, exist_ok=True)
        with bus.consumer("orders", kind="consumer", name="billing") as c, \\
                bus.producer("orders") as p:
            p.publish(b"paid", key="cust-7")
            for ev in c.events(timeout=0.1):
                print(ev.partition, ev.offset, bytes(ev.value))
            c.commit()

Why ctypes. The binding is plain Python over libevbus through ctypes, from
the standard library: nothing to compile and nothing to install beyond
Debian's python3 (and python3-numpy for poll_numpy()), so it installs with
no package index and no compiler. cffi's ABI mode would need python3-cffi
for a lower cost per call, and its API mode a C compiler at install time;
neither pays here, because the binding makes one C call per batch of
events, never one per event: evb_consumer_read_batch() for iteration and
poll(), evb_consumer_poll_values() for poll_numpy(), evb_publish_batch()
for publish_many().

Finding libevbus.so, in this order: the EVBUS_LIB environment variable (a
path), the build tree when the package is imported from the source tree
(build/bus/libevbus.so), then the system's (ctypes.util.find_library,
i.e. after `ninja -C build install && ldconfig`), then /usr/local/lib.

Memory. Events are valid until the next read on their consumer. Their
``value`` is a read-only memoryview: zero-copy into the ring's mapping for
lossless subscribers and named consumers of ring-only topics (the C call
keeps producers off those frames until the next read), else into the
consumer's batch buffer, where the C library copied the batch once. After
the next read an event's attributes raise StaleEventError and its views
are released.

A view derived from a value (np.frombuffer(ev.value), memoryview(v))
outlives that release. For a lossless subscriber or a named consumer of a
ring-only topic, the next read raises Error (EBUSY), reading nothing,
for as long as such a view lives: whether that event was in the ring or,
older than the reader's registration (a start at "earliest" on a filled
topic), a copy, so the rule does not change as the reader catches up.
Meanwhile the reader does not move, so producers of the topic wait for it
(or get EAGAIN with block_ms=0): copy what you keep (bytes(ev.value),
arr.copy()) and drop the view, then read on. Every other reader's events
are copies: a derived view keeps its bytes and the consumer copies later
batches into a new buffer. A queue event's ack(), nack() and reject() stay
allowed after the next read: they name the delivery by its token, not by
the memory.

Errors are evbus.Error, an OSError carrying the errno and the library's
message (evb_last_error()).
"""
from ._core import (Bus, Consumer, Error, Event, Producer, Receipt, StaleEventError,
                    TopicInfo, ValueSizeError, META_FIELDS, version)

__all__ = ["Bus", "Consumer", "Error", "Event", "Producer", "Receipt", "StaleEventError",
           "TopicInfo", "ValueSizeError", "META_FIELDS", "version"]
__version__ = "0.1.0"
