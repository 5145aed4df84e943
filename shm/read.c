/*
 * read.c - readers: walk frames by stamp, skip pads, pad holes that outlive
 * their producer, and for positions producers may overwrite (anonymous
 * subscribers, and gating readers below their registration tail) copy then
 * lap-check, seqlock style. Ordering labels are explained in claim.c.
 */
#include "ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "frame.h"
#include "read_inline.h"

/* The newest lap start at or below T: always a frame boundary, because a
 * frame never wraps and an end pad fills every lap to its end. */
static uint64_t lap_start(const struct evb_ring *r, uint64_t t)
{
    return t & ~r->mask;
}

static int corrupt(struct evb_ring_reader *rd, const char *what, uint64_t pos,
                   uint64_t val)
{
    rd->failed = evb_err_set(-EBADMSG, "partition %u: %s %llu at position %llu",
                             rd->r->partition, what, (unsigned long long)val,
                             (unsigned long long)pos);
    return rd->failed;
}

/* Lapped: jump to the newest lap start; the offset there tells the loss.
 * On a durable ring nothing is lost: the reader stays put and reports
 * -ESTALE, so its owner reads these positions from the disk log. */
static void jump(struct evb_ring_reader *rd, uint64_t t)
{
    if (rd->r->durable) {
        rd->behind = true;
        return;
    }
    uint64_t to = lap_start(rd->r, t);
    if (to <= rd->pos)
        return;
    rd->lost_bytes += to - rd->pos;
    rd->pos = to;
    rd->resync = true;
    rd->hole.pos = EVB_POS_NONE;
}

/* After copying bytes at POS: were they overwritten meanwhile? (L1)
 * 1 lapped (jumped), 0 not, -EBADMSG when the tail is not past POS: the
 * stamp there said committed, so a claim covered it, and tails only
 * grow. (Unchecked, the wrapped difference read as lapped and the jump
 * to a lap start below POS went nowhere: a reader looping for ever, found
 * by fuzz_ring.) The test costs nothing unless the first one fires. */
static int lapped_after(struct evb_ring_reader *rd, uint64_t pos)
{
    /* L1: the copy, then this fence, then the tail (relaxed, ordered by
     * the fence); pairs with the claim's CAS16 before its writes. */
    atomic_thread_fence(memory_order_acquire);
    uint64_t t = atomic_load_explicit(&rd->r->hdr->tail.pos, memory_order_relaxed);
    if (t - pos > rd->r->capacity) {
        if (t <= pos)
            return corrupt(rd, "tail not past a committed frame, tail", pos, t);
        jump(rd, t);
        return 1;
    }
    return 0;
}

/* Account for the frame at rd->pos carrying OFF: learn it after a jump,
 * insist on it otherwise. */
static int check_offset(struct evb_ring_reader *rd, uint64_t off)
{
    if (rd->learn) {
        if (rd->learn_floor != EVB_FRAME_NO_OFFSET && off > rd->learn_floor) {
            /* The seek landed on a frame it could not see yet: what lies
             * between the offset it wanted and this one is gone. */
            rd->lost_events += off - rd->learn_floor;
            /* Statistic: relaxed. */
            atomic_fetch_add_explicit(&rd->r->rslots[rd->slot_idx].lost,
                                      off - rd->learn_floor, memory_order_relaxed);
        }
        rd->offset = off;
        rd->learn = false;
        rd->learn_floor = EVB_FRAME_NO_OFFSET;
        rd->resync = false;
    } else if (rd->resync) {
        if (off < rd->offset)
            return corrupt(rd, "offset went back to", rd->pos, off);
        rd->lost_events += off - rd->offset;
        /* Statistic: relaxed. */
        atomic_fetch_add_explicit(&rd->r->rslots[rd->slot_idx].lost, off - rd->offset,
                                  memory_order_relaxed);
        rd->offset = off;
        rd->resync = false;
    } else if (off != rd->offset) {
        /* Both offsets: after a resume at a committed pair, the frame's
         * offset against the commit's tells a gap from a step back. */
        return rd->failed = evb_err_set(-EBADMSG, "partition %u: unexpected offset %llu at "
                                        "position %llu, expected %llu", rd->r->partition,
                                        (unsigned long long)off,
                                        (unsigned long long)rd->pos,
                                        (unsigned long long)rd->offset);
    }
    return 0;
}

/* Nothing committed at POS. The tail is a producer's hottest line: a
 * reader spinning here looks at it (to time a hole, evb_ring_hole_check)
 * only once every EVB_TAIL_PEEK empty polls, so waiting costs producers no
 * cache-line theft; a hole is still noticed within microseconds.
 * Returns 1 to retry at once, -EAGAIN to wait. */
#define EVB_TAIL_PEEK 256u

/*
 * Did someone else write our gating cursor word? Only this reader stores
 * it (release(), and its registration), so it holds rd->published unless
 * a hostile or buggy hand changed it: producers then limit themselves by
 * that value (claim.c reports one past the tail as damage; one lowered
 * holds them back). -EBADMSG, sticky. Looked at when the reader publishes
 * and when it waits, never per frame read. Relaxed: we are the word's
 * only legitimate writer, so coherence gives our last store or a later,
 * foreign one.
 */
static int cursor_tampered(struct evb_ring_reader *rd)
{
    struct evb_ring *r = rd->r;
    if (!EVB_SLOT_GATES(rd->kind) || r->durable || rd->published == EVB_POS_NONE)
        return 0;
    /* Relaxed: our own word (coherence, above); nothing else is read
     * through it. */
    uint64_t w = atomic_load_explicit(&r->rslots[rd->slot_idx].cursor, memory_order_relaxed);
    if (w == rd->published)
        return 0;
    return rd->failed = evb_err_set(-EBADMSG, "partition %u: reader slot %u: cursor %llu, "
                                    "but this reader published %llu (written by another "
                                    "process)", r->partition, rd->slot_idx,
                                    (unsigned long long)w,
                                    (unsigned long long)rd->published);
}

static int not_ready(struct evb_ring_reader *rd, uint64_t pos)
{
    if ((++rd->idle_polls % EVB_TAIL_PEEK) != 0)
        return -EAGAIN;
    if (cursor_tampered(rd))
        return rd->failed;
    /* 1 or -EAGAIN; -EBADMSG sticks: a hole that nothing explains is
     * damage, and waiting on would hide the rest of the partition; so
     * does a tail below POS (it went back: pad.c). */
    int rc = evb_ring_hole_check(rd->r, &rd->hole, pos);
    if (rc < 0)
        return rd->failed = rc;
    return rc == 1 ? 1 : -EAGAIN;
}

int evb_ring_read(struct evb_ring_reader *rd, struct evb_frame_view *v)
{
    struct evb_ring *r = rd->r;
    if (rd->failed)
        return rd->failed;
    for (;;) {
        if (rd->behind)
            return -ESTALE;
        uint64_t pos = rd->pos;
        bool verify = pos < rd->verify_below;
        if (verify) {
            /* T1: lapped already? Acquire keeps the stamp load below after
             * it; the real check of the copy is L1 (lapped_after). */
            uint64_t t = atomic_load_explicit(&r->hdr->tail.pos, memory_order_acquire);
            if (t > pos && t - pos > r->capacity) {
                jump(rd, t);
                continue;
            }
        }
        const struct evb_frame *f = evb_ring_rframe(r, pos);
        uint64_t room = r->capacity - (pos & r->mask);
        /* A1: pairs with R1/R2 (claim.c) and the padder's CAS (pad.c). */
        uint64_t stamp = atomic_load_explicit(&f->stamp, memory_order_acquire);
        if (!evb_stamp_is_committed(stamp, pos)) {
            int rc = not_ready(rd, pos);
            if (rc == 1)
                continue;
            if (rc == -EBADMSG)
                return rc;
            if (verify) {
                /* T1: nothing here yet, or lapped while we looked? */
                uint64_t t = atomic_load_explicit(&r->hdr->tail.pos, memory_order_acquire);
                if (t > pos && t - pos > r->capacity) {
                    jump(rd, t);
                    continue;
                }
            }
            return rc;
        }

        /* Positions producers may overwrite are decoded from a private
         * copy, which is trusted only once the lap check (L1) passed. */
        const struct evb_frame *h = f;
        if (verify && (stamp & EVB_STAMP_MASK) == EVB_STAMP_DATA && room >= EVB_FRAME_HDR) {
            /* A plain copy, seqlock style: a producer of a later lap may be
             * storing into these bytes, and L1 (lapped_after) throws away
             * any copy made once a claim reached them. The only other
             * writer, a padder that lost the stamp CAS, stores the values
             * already there (frame.h), so the copy is right either way. */
            memcpy(rd->buf, f, EVB_FRAME_HDR);
            h = (const struct evb_frame *)(void *)rd->buf;
        }
        struct evb_frame_step st = {0};
        int kind = evb_frame_decode(h, stamp, pos, room, r->max_frame, r->max_event, &st);
        if (verify) {
            if (kind == EVB_FRAME_DATA)
                memcpy(rd->buf + EVB_FRAME_HDR, (const uint8_t *)f + EVB_FRAME_HDR,
                       st.len - EVB_FRAME_HDR);
            int lapped = lapped_after(rd, pos);
            if (lapped < 0)
                return lapped;
            if (lapped)
                continue;
        }
        if (kind == EVB_FRAME_BAD)
            return corrupt(rd, st.bad, pos, st.bad_value);
        if (st.offset == EVB_FRAME_NO_OFFSET && rd->learn) {
            /* A frame without an offset (the pad that ends a lap) has
             * nothing to teach a reader learning its offset: the next
             * frame with one does. Taking the reader's placeholder for it
             * would fail that frame as corrupt. */
        } else {
            int rc = check_offset(rd, st.offset == EVB_FRAME_NO_OFFSET ? rd->offset
                                                                      : st.offset);
            if (rc)
                return rc;
            rd->offset += st.events;
        }
        rd->pos = pos + st.skip;
        rd->hole.pos = EVB_POS_NONE;
        if (kind == EVB_FRAME_PAD || !evb_ring_reader_take(rd, h, v))
            continue;
        /* The value is 8-aligned: frames are, and so is the value inside
         * (frame.h); rd->buf, a copy's home, is malloc'ed. */
        evb_view_set(v, h, pos, &st);
        return 0;
    }
}

int evb_ring_reader_ready(struct evb_ring_reader *rd)
{
    struct evb_ring *r = rd->r;
    uint64_t pos = rd->pos;
    if (rd->failed || cursor_tampered(rd))
        return 1; /* the next read says why */
    /* D1 (doorbell.c): seq_cst, after the waiter bit's seq_cst fetch_or. */
    uint64_t st = atomic_load_explicit(&evb_ring_rframe(r, pos)->stamp,
                                       memory_order_seq_cst);
    if (evb_stamp_is_committed(st, pos))
        return 1;
    uint64_t t = atomic_load_explicit(&r->hdr->tail.pos, memory_order_seq_cst);
    if (t < pos && !rd->behind) {
        /* Impossible but by a hand that moved the tail back (pad.c,
         * evb_ring_hole_check, says why): report it rather than sleep
         * until the tail comes back up. Behind, POS is the disk reader's
         * business, not the ring's. */
        rd->failed = evb_err_set(-EBADMSG, "partition %u: the tail %llu is below position "
                                 "%llu, which was reached already (the tail went back)",
                                 r->partition, (unsigned long long)t,
                                 (unsigned long long)pos);
        return 1;
    }
    if (t > pos && t - pos > r->capacity)
        return 1; /* lapped: must jump */
    if (t > pos) {
        /* Claimed, not committed: the next poll must time it. */
        rd->idle_polls = EVB_TAIL_PEEK - 1;
        return 2;
    }
    return 0;
}

void evb_ring_reader_release(struct evb_ring_reader *rd)
{
    evb_ring_reader_release_to(rd, rd->pos);
}

void evb_ring_reader_release_to(struct evb_ring_reader *rd, uint64_t pos)
{
    struct evb_reader_slot *s = &rd->r->rslots[rd->slot_idx];
    if (pos > rd->pos)
        pos = rd->pos;
    /* A queue member reads ahead of its floor and seeks back and forth
     * (to retaken events, on to new ones), and each seek releases: none
     * may let producers past the floor, or a ring-only topic overwrites the events it holds
     * (a cold attack lost events nacked or refused by the DLQ). */
    if (pos > rd->hold)
        pos = rd->hold;
    if (pos == rd->published) {
        /* A queue member's floor can stay while it hands events out:
         * the statistic moves on its own. Relaxed, as below. */
        if (rd->delivered != rd->published_delivered) {
            atomic_store_explicit(&s->delivered, rd->delivered, memory_order_relaxed);
            rd->published_delivered = rd->delivered;
        }
        return;
    }
    /* Not overwritten: a foreign value must stay seen (the next read
     * fails), not be hidden by ours. One load of the line we are about to
     * store to anyway. */
    if (cursor_tampered(rd))
        return;
    /* R3: we are done with every byte below pos; pairs with A3. */
    atomic_store_explicit(&s->cursor, pos, memory_order_release);
    /* Statistics: relaxed. */
    atomic_store_explicit(&s->cursor_offset, rd->offset, memory_order_relaxed);
    atomic_store_explicit(&s->delivered, rd->delivered, memory_order_relaxed);
    rd->published_delivered = rd->delivered;
    rd->published = pos;
}

int evb_ring_oldest(struct evb_ring *r, uint64_t *pos, uint64_t *offset)
{
    uint64_t at = 0;
    *offset = 0;
    /* A ring lapping us while we look: look again at the new oldest lap;
     * after a few tries hand out the last one, and the reader's own lap
     * check moves it on. */
    for (int tries = 0; tries < 8; tries++) {
        uint64_t t, toff;
        evb_ring_load_tail(r, &t, &toff);
        int bad = evb_ring_tail_check(r, t, toff);
        if (bad)
            return bad;
        /* The oldest lap start whose whole lap is still held. */
        at = t <= r->capacity ? 0 : (t - r->capacity + r->mask) & ~r->mask;
        if (at < r->base_pos)
            at = r->base_pos; /* a rebuilt ring holds nothing below its base */
        /* Too near the lap end for a frame header (a rebuilt ring's base
         * there, or a garbage one): only a stamp-only pad fits, and the
         * offset word would lie past the data area. The next lap starts
         * the first event. */
        if (r->capacity - (at & r->mask) < EVB_FRAME_HDR)
            at = (at | r->mask) + 1;
        if (at >= t) {
            *pos = t;
            *offset = toff;
            return 0;
        }
        const struct evb_frame *f = evb_ring_rframe(r, at);
        /* A1: acquire pairs with the commit or pad of the frame at AT. The
         * offset is a relaxed atomic load: a padder may be storing the same
         * value (frame.h), and a producer of the next lap a new one, which
         * the L1 check below catches. */
        uint64_t st = atomic_load_explicit(&f->stamp, memory_order_acquire);
        uint64_t off = __atomic_load_n(&f->offset, __ATOMIC_RELAXED);
        /* L1: the offset we copied is good only if no claim lapped it since. */
        atomic_thread_fence(memory_order_acquire);
        uint64_t t2 = atomic_load_explicit(&r->hdr->tail.pos, memory_order_relaxed);
        if (t2 - at > r->capacity)
            continue;
        *pos = at;
        /* Not committed: in flight, a hole, or damage. Only a reader that
         * waits there can tell (it times holes, evb_ring_hole_verdict()). */
        if (!evb_stamp_is_committed(st, at))
            return -EAGAIN;
        *offset = off;
        return 0;
    }
    *pos = at;
    return -EAGAIN;
}

/* Move to (POS, OFFSET). LEARN: the frame at POS tells its own offset.
 * KEEP_FILTERS: a seek's filters (skip_below, skip_ts) stay in force.
 * REACHED: POS is one the ring already reached (a committed cursor, a tail
 * seen): on a ring-only ring, one past the tail is damage, not a place to
 * wait (evb_ring_reader_seek). Else a POS past the tail starts at the
 * tail. */
static int seek(struct evb_ring_reader *rd, uint64_t pos, uint64_t offset, bool learn,
                bool keep_filters, bool reached)
{
    struct evb_ring *r = rd->r;
    uint64_t t, toff;
    if (pos % EVB_FRAME_ALIGN)
        return -EINVAL;
    evb_ring_load_tail(r, &t, &toff);
    int bad = evb_ring_tail_check(r, t, toff);
    if (bad)
        return rd->failed = bad;
    rd->behind = false;
    uint64_t floor = EVB_FRAME_NO_OFFSET;
    if (reached && pos > t && !r->durable)
        /* A ring-only topic's cursors live beside its rings in tmpfs and
         * only ever name positions below the tail: one above it means the
         * tail went back, or the cursor is damaged. Starting at the tail
         * would hide it (and read nothing until the tail passed the
         * cursor). A durable ring rebuilt after a reboot may legitimately
         * end below a consumer's commit (an async tail lost). */
        return rd->failed = evb_err_set(-EBADMSG, "partition %u: position %llu to start "
                                        "at is past the tail %llu (the tail went back, or "
                                        "the cursor is damaged)", r->partition,
                                        (unsigned long long)pos, (unsigned long long)t);
    if (pos >= t) {
        pos = t;
        offset = toff;
    } else if (r->durable && (t - pos > r->capacity || pos < r->base_pos)) {
        /* Not in the ring any more: the caller reads it from disk. */
        rd->behind = true;
    } else if (t - pos > r->capacity) {
        /* Overwritten already: land on the oldest frame, count the gap;
         * if nothing is committed there yet, the reader waits for it and
         * counts the gap once it learns the offset. */
        uint64_t opos, ooff;
        int rc = evb_ring_oldest(r, &opos, &ooff);
        if (rc == -EBADMSG)
            return rd->failed = rc;
        rd->lost_bytes += opos - pos;
        if (rc == 0) {
            if (ooff > offset)
                rd->lost_events += ooff - offset;
            offset = ooff;
        } else {
            learn = true;
            floor = offset;
        }
        pos = opos;
    }
    rd->pos = pos;
    rd->offset = offset;
    rd->learn = learn;
    rd->learn_floor = floor;
    rd->resync = false;
    rd->hole.pos = EVB_POS_NONE;
    if (!keep_filters) {
        rd->skip_below = 0;
        rd->skip_ts = 0;
    }
    evb_ring_reader_release(rd);
    if (EVB_SLOT_GATES(rd->kind) && !r->durable) {
        /* S1 again: producers that computed their limit from our old
         * cursor may overwrite below the tail we see after this fence. */
        atomic_thread_fence(memory_order_seq_cst);
        uint64_t t2 = atomic_load_explicit(&r->hdr->tail.pos, memory_order_acquire);
        if (rd->verify_below < t2)
            rd->verify_below = t2;
    }
    return 0;
}

int evb_ring_reader_seek_pos(struct evb_ring_reader *rd, uint64_t pos, uint64_t offset)
{
    return seek(rd, pos, offset, true, false, false);
}

int evb_ring_reader_seek(struct evb_ring_reader *rd, uint64_t pos, uint64_t offset, bool learn)
{
    return seek(rd, pos, offset, learn, false, true);
}

int evb_ring_reader_resume(struct evb_ring_reader *rd, uint64_t pos, uint64_t offset,
                           bool learn)
{
    return seek(rd, pos, offset, learn, true, false);
}

void evb_ring_reader_moved(struct evb_ring_reader *rd, uint64_t pos, uint64_t offset)
{
    rd->pos = pos;
    rd->offset = offset;
}

void evb_ring_reader_add_loss(struct evb_ring_reader *rd, uint64_t bytes, uint64_t events)
{
    rd->lost_bytes += bytes;
    rd->lost_events += events;
}

void evb_ring_reader_uncount(struct evb_ring_reader *rd)
{
    if (rd->delivered)
        rd->delivered--;
}

void evb_ring_reader_skip_before(struct evb_ring_reader *rd, uint64_t timestamp_ns)
{
    rd->skip_ts = timestamp_ns;
}

int evb_ring_reader_seek_offset(struct evb_ring_reader *rd, uint64_t offset)
{
    uint64_t pos, off;
    /* At or past the tail's offset: the tail (T1 snapshot). Walked to
     * from the oldest event instead, the reader stood there until its
     * next read, and a named consumer's first commit (or a queue's
     * start) recorded the oldest position: the history came again on the
     * next run (found by a cold attack). The filter stays: events below
     * OFFSET published since are skipped. */
    evb_ring_load_tail(rd->r, &pos, &off);
    if (pos % EVB_FRAME_ALIGN == 0 && off != EVB_FRAME_NO_OFFSET && offset >= off) {
        int rc = evb_ring_reader_seek(rd, pos, off, false);
        if (!rc)
            rd->skip_below = offset;
        return rc;
    }
    int rc = evb_ring_oldest(rd->r, &pos, &off);
    if (rc == -EBADMSG)
        return rd->failed = rc;
    bool known = rc == 0;
    if ((rc = evb_ring_reader_seek_pos(rd, pos, off)))
        return rc;
    if (!known)
        rd->learn_floor = offset; /* the frame there tells the loss */
    else if (offset < off)
        rd->lost_events += off - offset;
    rd->skip_below = offset;
    return 0;
}

int evb_ring_reader_seek_oldest(struct evb_ring_reader *rd)
{
    uint64_t pos, off;
    int rc = evb_ring_oldest(rd->r, &pos, &off);
    if (rc == -EBADMSG)
        return rd->failed = rc;
    /* Learn the offset from the frame: when nothing is committed there
     * yet, OFF is not known; the reader waits for it (or times the hole). */
    return evb_ring_reader_seek(rd, pos, off, true);
}

int evb_ring_reader_attach(struct evb_ring_reader *rd, struct evb_ring *r, uint32_t kind,
                           const char *name, uint64_t start_pos, uint64_t start_offset)
{
    memset(rd, 0, sizeof *rd);
    rd->learn_floor = EVB_FRAME_NO_OFFSET;
    rd->kind = kind;
    rd->hole.pos = EVB_POS_NONE;
    rd->buf = malloc(r->max_frame);
    if (!rd->buf)
        return -ENOMEM;
    uint64_t t, toff;
    evb_ring_load_tail(r, &t, &toff);
    uint64_t first = start_pos == EVB_POS_NONE || start_pos > t ? t : start_pos;
    int rc = evb_ring_slot_take(r, kind, name, first, &rd->slot_idx);
    if (rc) {
        free(rd->buf);
        rd->buf = NULL;
        return rc;
    }
    /* Set only now: detach frees the slot of a reader with r set. */
    rd->r = r;
    /* S1: the slot is stored and fenced (cursor.c); this tail is the one
     * every producer that missed the slot stays below. */
    evb_ring_load_tail(r, &t, &toff);
    int bad = evb_ring_tail_check(r, t, toff);
    if (bad) {
        evb_ring_reader_detach(rd);
        return bad;
    }
    /* Readers of durable rings gate nothing: every frame is lap-checked. */
    rd->verify_below = EVB_SLOT_GATES(kind) && !r->durable ? t : EVB_POS_NONE;
    rd->published = EVB_POS_NONE;
    rd->hold = EVB_POS_NONE;
    if (start_pos == EVB_POS_NONE) {
        rd->pos = t;
        rd->offset = toff;
        evb_ring_reader_release(rd);
        return 0;
    }
    return evb_ring_reader_seek_pos(rd, start_pos, start_offset);
}

void evb_ring_reader_detach(struct evb_ring_reader *rd)
{
    if (!rd->r)
        return;
    evb_ring_slot_release(rd->r, rd->slot_idx);
    free(rd->buf);
    rd->buf = NULL;
    rd->r = NULL;
}
