/*
 * consumer_batch.c - many events per call, for bindings that pay for each
 * call (Python's ctypes costs about as much as reading an event):
 * evb_consumer_read_batch() hands out a batch of events all valid until
 * the next call, evb_consumer_poll_values() copies fixed-size values into
 * a caller's array. Reading itself is consumer.c's; this file decides
 * what must be copied so that a batch outlives the reads after it.
 */
#include <errno.h>
#include <string.h>

#include "consumer_internal.h"

_Static_assert(sizeof(evb_value_meta) == 48, "evb_value_meta is viewed as a table by bindings");

/* Values in an arena start 8-aligned, as they do in the ring. */
#define EVB_ARENA_ALIGN 8u

/*
 * Whether EV, just read by C, stays where it is until the next call on C
 * even when more events are read first. Only a gating reader of a
 * ring-only topic reading in place qualifies: nothing is released during
 * a batch, so producers cannot reach the frame. A copy (a lossy
 * subscriber's, or a gating reader's below its attach tail) lives in the
 * reader's buffer, which the next read of that partition reuses; a
 * group member's partitions may change hands between two reads; segment
 * maps move as a disk reader crosses a segment end.
 */
static bool stays_in_place(const evb_consumer *c, const evb_event *ev)
{
    if (c->disk || (c->opts.kind != EVB_SUBSCRIBER_LOSSLESS && c->opts.kind != EVB_CONSUMER))
        return false;
    if (ev->partition >= c->tm->nparts)
        return false;
    const struct evb_ring *r = &c->tm->rings[ev->partition];
    const uint8_t *lo = r->rdata, *hi = r->rdata + r->capacity;
    const uint8_t *k = ev->key, *v = ev->value;
    bool key_in = !ev->key_len || (k >= lo && k + ev->key_len <= hi);
    bool value_in = !ev->value_len || (v >= lo && v + ev->value_len <= hi);
    return key_in && value_in;
}

/* Copy EV's key and value into the arena at *USED; false when they do
 * not fit (EV is left as it is). */
static bool copy_out(evb_event *ev, uint8_t *arena, size_t cap, size_t *used)
{
    size_t key_at = *used;
    size_t value_at = (key_at + ev->key_len + EVB_ARENA_ALIGN - 1) & ~(size_t)(EVB_ARENA_ALIGN - 1);
    if (value_at < key_at || value_at > cap || cap - value_at < ev->value_len)
        return false;
    if (ev->key_len) {
        memcpy(arena + key_at, ev->key, ev->key_len);
        ev->key = arena + key_at;
    }
    if (ev->value_len) {
        memcpy(arena + value_at, ev->value, ev->value_len);
        ev->value = arena + value_at;
    }
    size_t end = value_at + ev->value_len;
    *used = (end + EVB_ARENA_ALIGN - 1) & ~(size_t)(EVB_ARENA_ALIGN - 1);
    if (*used > cap)
        *used = cap;
    return true;
}

/* The batch's next event: the first through evb_consumer_next() (the
 * release of the previous batch, a group's tick, the wait), the rest read
 * where they are without releasing anything. A queue member's take goes
 * through its own protocol each time. */
static int read_one(evb_consumer *c, evb_event *ev, uint32_t i, int32_t timeout_ms)
{
    if (i == 0 || c->opts.kind == EVB_QUEUE_MEMBER)
        return evb_consumer_next(c, ev, i == 0 ? timeout_ms : 0);
    /* A group member balances between events, never under one. */
    int rc = evb_cgroup_maybe_tick(c);
    if (rc)
        return rc;
    return evb_consumer_try_read(c, ev);
}

EVB_EXPORT int evb_consumer_read_batch(evb_consumer *c, evb_event *evs, uint32_t max,
                                       void *arena, size_t arena_bytes, int32_t timeout_ms)
{
    if (!c || !evs || (!arena && arena_bytes))
        return -EINVAL;
    size_t used = 0;
    uint32_t n = 0;
    while (n < max) {
        int rc = read_one(c, &evs[n], n, timeout_ms);
        if (rc == -EAGAIN || rc == -ETIMEDOUT)
            break;
        if (rc)
            return n ? (int)n : rc;
        evb_event *ev = &evs[n++];
        if (stays_in_place(c, ev))
            continue;
        /* Not copied: the last event, valid until the next call as
         * evb_consumer_next()'s is. */
        if (!copy_out(ev, arena, arena_bytes, &used))
            break;
    }
    return (int)n;
}

EVB_EXPORT int evb_consumer_poll_values(evb_consumer *c, void *values, uint32_t value_bytes,
                                        uint32_t max, evb_value_meta *meta,
                                        int32_t timeout_ms, uint32_t *n, evb_event *odd)
{
    if (!c || !values || !n || !odd || !value_bytes ||
        (uint64_t)max * value_bytes > (1ull << 31))
        return -EINVAL;
    *n = 0;
    uint8_t *out = values;
    evb_event ev;
    for (uint32_t i = 0; i < max; i++) {
        /* Each value is copied before the next read, so events need not
         * stay in place: every 256th read goes through evb_consumer_next()
         * to release what was copied to producers, as evb_consumer_poll()
         * does. */
        int rc = (i & 255) == 0 ? evb_consumer_next(c, &ev, i == 0 ? timeout_ms : 0)
                                : read_one(c, &ev, i, 0);
        if (rc == -EAGAIN || rc == -ETIMEDOUT)
            return 0;
        if (rc)
            return i ? 0 : rc;
        if (ev.value_len != value_bytes) {
            *odd = ev;
            return 1;
        }
        memcpy(out + (size_t)i * value_bytes, ev.value, value_bytes);
        if (meta)
            meta[i] = (evb_value_meta){.offset = ev.offset,
                                       .position = ev.position,
                                       .timestamp_ns = ev.timestamp_ns,
                                       .lost_events = ev.lost_events,
                                       .ack_token = ev.ack_token,
                                       .partition = ev.partition,
                                       .deliveries = ev.deliveries};
        *n = i + 1;
    }
    return 0;
}
