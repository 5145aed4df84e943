/*
 * read_inline.h - a reader's common case, inlined into its caller
 * (bus/consumer.c): the frame at the reader's position is a committed data
 * frame that may be read in place (no lap check owed), carries the offset
 * expected, and no seek filter, resync or loss report is pending. For
 * such a frame it takes exactly the steps evb_ring_read() (read.c) takes,
 * with the same decoder and checks (frame.h). Anything else returns false
 * having changed nothing, and the caller goes to evb_ring_read(), which
 * handles it and names any damage: so there is one copy of each rule. At
 * tens of millions of events a second, the calls and re-derived state
 * between the consumer and read.c were most of a delivered event's cost.
 * The ordering edge is claim.c's A1.
 */
#ifndef EVB_READ_INLINE_H
#define EVB_READ_INLINE_H

#include <stdatomic.h>

#include "frame.h"
#include "ring.h"

/* A view of the checked frame F (its decoded step ST) at POS: the lengths
 * travel with the view as the decoder checked them (no double fetch). */
static inline void evb_view_set(struct evb_frame_view *v, const struct evb_frame *f,
                                uint64_t pos, const struct evb_frame_step *st)
{
    v->f = f;
    v->key = (const uint8_t *)f + EVB_FRAME_HDR;
    v->value = (const uint8_t *)f + st->value_at;
    v->key_len = st->key_len;
    v->value_len = st->value_len;
    v->flags = st->flags;
    v->pos = pos;
    v->end = pos + st->skip;
}

/* The next event of RD into V (as evb_ring_read would deliver it), or
 * false with RD untouched: call evb_ring_read() then. */
static inline bool evb_ring_read_fast(struct evb_ring_reader *rd, struct evb_frame_view *v)
{
    const struct evb_ring *r = rd->r;
    uint64_t pos = rd->pos;
    /* Below verify_below producers may overwrite what we read (copy, then
     * lap check); the flags are states evb_ring_read settles first. A
     * durable ring's reader verifies every position, so it never passes
     * here (nor does one behind, reading the disk log). */
    if (pos < rd->verify_below || rd->failed || rd->resync || rd->learn ||
        (rd->skip_ts | rd->lost_events | rd->lost_bytes))
        return false;
    /* The ring's geometry (private memory, fixed at open) is loaded before
     * the acquire, which would otherwise make the compiler load it again. */
    uint64_t room = r->capacity - (pos & r->mask);
    /* A frame no longer than the header and max_event bytes holds no
     * more than max_event bytes of key and value, whatever its key's
     * padding: so the event bound costs no check of its own here, and the
     * few frames between this and max_frame (a key padded to 8) go to
     * evb_ring_read, which checks both. r->max_event never passes
     * max_frame - EVB_FRAME_HDR (map.c, bus/topic_map.c). */
    uint32_t max_len = EVB_FRAME_HDR + r->max_event;
    const struct evb_frame *f = evb_ring_rframe(r, pos);
    /* A1: pairs with R1/R2 (claim.c): the header and payload are the
     * producer's before we look at them. */
    uint64_t stamp = atomic_load_explicit(&f->stamp, memory_order_acquire);
    if (stamp != (pos | EVB_STAMP_DATA))
        return false;
    /* Every length checked against the room left in the ring and the
     * largest frame; the view carries the checked values (no double
     * fetch). A frame that fails goes to evb_ring_read to be reported. */
    struct evb_frame_step st;
    if (evb_frame_decode(f, stamp, pos, room, max_len, EVB_FRAME_ANY_EVENT, &st) != EVB_FRAME_DATA ||
        st.offset != rd->offset || st.offset < rd->skip_below)
        return false;
    rd->offset = st.offset + 1;
    rd->pos = pos + st.skip;
    rd->hole.pos = EVB_POS_NONE;
    rd->delivered++;
    evb_view_set(v, f, pos, &st);
    v->lost_events = 0;
    v->lost_bytes = 0;
    return true;
}

#endif /* EVB_READ_INLINE_H */
