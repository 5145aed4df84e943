/*
 * claim_inline.h - a producer's common case, inlined into its callers
 * (bus/producer.c): a claim that fits under the cached limit without
 * reaching the lap's end, and a one-event commit no padder is at. A
 * 64-byte publish is a few hundred instructions, and at tens of millions
 * a second the calls, prologues and re-checks between claim.c and the
 * producer were a third of them. Every other case goes to claim.c, which
 * takes the same steps from here, so there is one copy of each. The
 * ordering edges are claim.c's table (C1, I1, T1, X1, X2, X3, X4, P2, D1).
 */
#ifndef EVB_CLAIM_INLINE_H
#define EVB_CLAIM_INLINE_H

#include "frame.h"
#include "ring.h"

/* The one 16-byte CAS of the library: (pos, offset) move together so a
 * position and its event index can never disagree. pos is the low half
 * (first 8 bytes); evb_cas128 is a full barrier (arch.h). */
static inline bool evb_tail_cas(struct evb_ring_tail *t, uint64_t opos, uint64_t ooff,
                                uint64_t npos, uint64_t noff)
{
    return evb_cas128(t, opos, ooff, npos, noff);
}

static inline void evb_claim_write_intent(struct evb_producer_slot *s, uint64_t pos,
                                          uint64_t off, uint32_t pad, uint32_t len,
                                          uint32_t events)
{
    /* I1: seqlock over the intent. Relaxed seq load: only this producer
     * writes it. The release fence after the odd store orders it before
     * the fields (pairs with read_intent's acquire fence); the final
     * release orders the fields before the even value (pairs with
     * read_intent's first, acquire load). */
    uint64_t seq = atomic_load_explicit(&s->intent_seq, memory_order_relaxed);
    /* I1: release, pairs with read_intent's acquire of seq: a padder that
     * sees us mid-rewrite sees our last claim's commit too (pad.c
     * is_boundary looks at its stamp again). A plain store on x86-64. */
    atomic_store_explicit(&s->intent_seq, seq + 1, memory_order_release);
    /* I1: odd value before any field. */
    atomic_thread_fence(memory_order_release);
    /* Relaxed fields: the I1 fence and the even release order them. */
    atomic_store_explicit(&s->intent_pos, pos, memory_order_relaxed);
    EVB_CRASH_POINT("intent.torn");
    atomic_store_explicit(&s->intent_offset, off, memory_order_relaxed);
    atomic_store_explicit(&s->intent_pad, pad, memory_order_relaxed);
    atomic_store_explicit(&s->intent_len, len, memory_order_relaxed);
    atomic_store_explicit(&s->intent_events, events, memory_order_relaxed);
    /* I1: fields before the even value. */
    atomic_store_explicit(&s->intent_seq, seq + 2, memory_order_release);
}

/*
 * X4, the holder's acknowledgement: a lease word marked revoked that was
 * ours (SEEN) is set free by us, once we are outside our check-and-store
 * for good, so a revoker that could not fence need not wait for the fence
 * (claim.c, lease_settle).
 */
static inline void evb_lease_ack(struct evb_ring_producer *p, uint64_t seen)
{
    if (seen != (p->lease_word | EVB_LEASE_REVOKED))
        return;
    /* X4: seq_cst, as every write of the word; fails when the revoker
     * settled it first (relaxed: nothing read). */
    atomic_compare_exchange_strong_explicit(&p->r->hdr->tail_lease, &seen,
                                            p->lease_word & ~EVB_LEASE_HOLDER_MASK,
                                            memory_order_seq_cst, memory_order_relaxed);
}

/*
 * X4, the lease holder's side: move the tail to (END, NOFF) while the
 * lease is still ours: a plain 16-byte store where that is one atomic
 * store, else a CAS from our copy (no cheaper there, but a check). False:
 * the lease was taken back (a second producer attached), or the CAS found
 * another tail; nothing moved, and from now on we claim with the CAS, as
 * every shared producer does.
 */
static inline bool evb_lease_move(struct evb_ring_producer *p, uint64_t end, uint64_t noff)
{
    struct evb_producer_slot *s = p->slot;
    struct evb_ring *r = p->r;
    /* X4: relaxed; the compiler-only fence below keeps it before the
     * lease load, and a revoker's heavy fence orders the two for the CPU. */
    atomic_store_explicit(&s->tail_moving, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    /* Relaxed: X4 orders it (above). */
    uint64_t w = atomic_load_explicit(&r->hdr->tail_lease, memory_order_relaxed);
    if (w == p->lease_word) {
        EVB_CRASH_POINT("claim.lease_moving");
        bool moved = true;
        /* X4 and X3's store: after the intent (C1), before our frames. */
        if (EVB_STORE128_PLAIN && p->atomic16)
            evb_store128(&r->hdr->tail, end, noff, true);
        else
            moved = evb_tail_cas(&r->hdr->tail, p->xpos, p->xoff, end, noff);
        /* X4: release, the tail store before the word a revoker waits on. */
        atomic_store_explicit(&s->tail_moving, 0, memory_order_release);
        if (moved) {
            p->xpos = end;
            p->xoff = noff;
            return true;
        }
    } else {
        /* X4: release, as the store above: a revoker that reads it sees
         * our last tail store. */
        atomic_store_explicit(&s->tail_moving, 0, memory_order_release);
    }
    /* Lost (rare): a limit of 0 sends the next claim, the inline one
     * included, to evb_ring_claim, which looks at our slot first. */
    p->leased = false;
    p->lease_lost = true;
    p->limit = 0;
    evb_lease_ack(p, w);
    return false;
}

/*
 * Take [POS, POS + PAD + LEN) at the tail (POS, OFF) for EVENTS: the
 * intent, pending, then the tail moved (CAS, or an exclusive or leased
 * producer's store), and C filled in. False: another producer's CAS came
 * first, or the lease was lost (nothing taken; look at the tail again).
 */
static inline bool evb_claim_take(struct evb_ring_producer *p, uint64_t pos, uint64_t off,
                                  uint32_t pad, uint32_t len, uint32_t events,
                                  struct evb_ring_claim *c)
{
    struct evb_ring *r = p->r;
    struct evb_producer_slot *s = p->slot;
    uint64_t end = pos + pad + len;
    evb_claim_write_intent(s, pos, off, pad, len, events);
    /* C1: relaxed, ordered before the claim by the CAS's full barrier
     * (an exclusive producer's store: TSO, X3). */
    atomic_store_explicit(&s->pending, pos, memory_order_relaxed);
    EVB_CRASH_POINT("claim.before_cas");
    if (p->exclusive) {
        /* X3: a plain 16-byte store, after the intent (C1). */
        evb_store128(&r->hdr->tail, end, off + events, p->atomic16);
        p->xpos = end;
        p->xoff = off + events;
    } else if (p->leased) {
        if (!evb_lease_move(p, end, off + events))
            return false;
    } else if (!evb_tail_cas(&r->hdr->tail, pos, off, end, off + events)) {
        return false;
    }
    c->pos = pos;
    c->data_pos = pos + pad;
    c->offset = off;
    c->pad = pad;
    c->len = len;
    c->events = events;
    /* Relaxed: no one but a padder writes these words while our claim is
     * pending, and a padder's value is caught at commit by the CAS. */
    c->stale_pad = pad ? atomic_load_explicit(&evb_ring_frame(r, pos)->stamp,
                                              memory_order_relaxed) : 0;
    /* The data frame's stamp is loaded at commit (evb_claim_stamp), not
     * here: a reader that has caught up polls that very word, and a load
     * now would fetch its line once for the load and again for our writes
     * to it. */
    EVB_CRASH_POINT("claim.after_cas");
    return true;
}

/* The tail a claim starts at: an exclusive or leased producer's own copy
 * (X3, X4: nobody else moves it), else a snapshot (T1). */
static inline void evb_claim_tail(const struct evb_ring_producer *p, uint64_t *pos,
                                  uint64_t *off)
{
    if (p->exclusive || p->leased) {
        *pos = p->xpos;
        *off = p->xoff;
    } else {
        /* Its own locals: the caller's, whose address the call would
         * take, then live on the stack in the common case too (two
         * stores a claim). */
        uint64_t tp, to;
        evb_ring_load_tail(p->r, &tp, &to);
        *pos = tp;
        *off = to;
    }
}

/*
 * The common claim: LEN aligned bytes (0 < LEN <= capacity / 2) for
 * EVENTS (1..65535) at the tail, when they end below the cached limit and
 * before the lap's end. False: anything else (a full or stale limit, the
 * lap's end, a lost CAS, a damaged tail), for evb_ring_claim().
 */
static inline bool evb_ring_claim_fast(struct evb_ring_producer *p, uint32_t len,
                                       uint32_t events, struct evb_ring_claim *c)
{
    struct evb_ring *r = p->r;
    uint64_t pos, off;
    evb_claim_tail(p, &pos, &off);
    if ((pos | len) % EVB_FRAME_ALIGN || !len || len > r->capacity / 2 || !events ||
        events > UINT16_MAX || (pos & r->mask) + len >= r->capacity || pos + len > p->limit)
        return false;
    return evb_claim_take(p, pos, off, 0, len, events, c);
}

/*
 * This owner's per-producer counters (ring_format.h). Relaxed load and
 * store, not an atomic add: the owner is their only writer, so nothing can
 * come between the two, and a plain store costs no locked instruction on
 * the publish path. They sit on the owner's own slot line, which the P2
 * store of pending dirties on every commit anyway; stat readers only load
 * them, so they never pull the line away for a write. Relaxed: numbers to
 * show, nothing is read through them.
 */
static inline void evb_claim_count_n(struct evb_producer_slot *s, uint32_t events, uint32_t len)
{
    atomic_store_explicit(&s->published,
                          atomic_load_explicit(&s->published, memory_order_relaxed) + events,
                          memory_order_relaxed);
    atomic_store_explicit(&s->published_bytes,
                          atomic_load_explicit(&s->published_bytes, memory_order_relaxed) + len,
                          memory_order_relaxed);
}

static inline void evb_claim_count(struct evb_producer_slot *s, const struct evb_ring_claim *c)
{
    evb_claim_count_n(s, c->events, c->len);
}

/*
 * The stamp word at claim C's first data frame, as commit sees it. Until
 * commit only a padder writes that word, and only with a stamp committed
 * at C's position: so it is either the word of the lap before (what the
 * stamp CAS expects) or such a stamp (a padder was here first). Loaded
 * after our own writes to the frame's line, it costs no line transfer of
 * its own. Relaxed: the value is only compared; the CAS, or X1's robbing
 * check, decides.
 */
static inline uint64_t evb_claim_stamp(const struct evb_ring *r, const struct evb_ring_claim *c)
{
    return atomic_load_explicit(&evb_ring_frame(r, c->data_pos)->stamp, memory_order_relaxed);
}

/*
 * X1, the owner's side: decide the commit of C on our slot line and, when
 * no padder is at the claim (and none padded it already), store the stamp
 * plainly. True: committed. False: the stamp CAS must decide (claim.c).
 */
static inline bool evb_commit_plain(struct evb_ring_producer *p, struct evb_frame *f1,
                                    const struct evb_ring_claim *c)
{
    struct evb_producer_slot *s = p->slot;
    /* X1: release, our frames before the word a padder finishes them by. */
    atomic_store_explicit(&s->committing, c->data_pos, memory_order_release);
    /* X1: keeps the store above and the load below in program order for
     * the compiler; the padder's heavy fence does the rest. */
    atomic_signal_fence(memory_order_seq_cst);
    EVB_CRASH_POINT("commit.decided");
    /* Relaxed: X1 orders it (fence above, the padder's heavy fence). A
     * stamp found committed at our claim already (a pad) goes to the CAS
     * too, which says -ECANCELED. */
    if (atomic_load_explicit(&s->robbing, memory_order_relaxed) == c->data_pos ||
        evb_stamp_is_committed(evb_claim_stamp(p->r, c), c->data_pos))
        return false;
    /* X1: release, pairs with the reader's A1 acquire of the stamp. */
    atomic_store_explicit(&f1->stamp, c->data_pos | EVB_STAMP_DATA, memory_order_release);
    return true;
}

/* After the stamp: the claim is resolved (P2), and sleeping readers are
 * woken if they said so (D1 after a CAS, X2 after a plain store). */
static inline void evb_commit_resolved(struct evb_ring_producer *p, bool fenceless)
{
    struct evb_ring *r = p->r;
    /* P2: release after the stamp: the claim is resolved; limit scans of
     * others may pass it. A zombie (padded, still writing) keeps pending
     * until here. */
    atomic_store_explicit(&p->slot->pending, EVB_POS_NONE, memory_order_release);
    EVB_CRASH_POINT("finish.resolved");
    if (fenceless) {
        /* X2: the stamp store, then this load, kept in order for the
         * compiler; a sleeper's heavy fence orders the two for the CPU. */
        atomic_signal_fence(memory_order_seq_cst);
        /* Relaxed: X2 orders it (above). */
        if (atomic_load_explicit(&r->hdr->waiters, memory_order_relaxed))
            evb_ring_wake_waiters(r);
        return;
    }
    /* D1: second half; seq_cst load after the seq_cst CAS before it. */
    if (atomic_load_explicit(&r->hdr->waiters, memory_order_seq_cst))
        evb_ring_wake_waiters(r);
}

/*
 * X1 for a one-event claim without an end pad (C's data_pos and len) by a
 * fenceless producer: true when committed with the plain store and
 * counted, and the caller then calls evb_commit_resolved(P, true), last
 * (a call in last place saves no register); false when a padder is at the
 * claim, and evb_ring_commit's stamp CAS must decide. The one copy of this
 * sequence: evb_ring_commit_fast and the producer's commit of a claim it
 * kept only part of (bus/producer.c, EVB_CLAIM_PLAIN) both go through it.
 */
static inline bool evb_ring_commit_one(struct evb_ring_producer *p, const struct evb_ring_claim *c)
{
    EVB_CRASH_POINT("commit.before_stamp");
    if (!evb_commit_plain(p, evb_ring_frame(p->r, c->data_pos), c))
        return false;
    evb_claim_count_n(p->slot, 1, c->len);
    EVB_CRASH_POINT("finish.after_cas");
    return true;
}

/*
 * Commit claim C: a one-event claim without an end pad by a fenceless
 * producer here (X1), anything else (a batch, an end pad, a padder at the
 * claim) in claim.c. 0 or -ECANCELED, as evb_ring_commit().
 */
static inline int evb_ring_commit_fast(struct evb_ring_producer *p, struct evb_ring_claim *c)
{
    if (c->events != 1 || c->pad || !p->fenceless || !evb_ring_commit_one(p, c))
        return evb_ring_commit(p, c);
    evb_commit_resolved(p, true);
    return 0;
}

#endif /* EVB_CLAIM_INLINE_H */
