/*
 * claim.c - producers: claim space, commit or abort it, and the producer
 * limit. Padding of other processes' holes lives in pad.c, reading in
 * read.c.
 *
 * Ordering edges of the ring protocol (labels used at each site):
 *
 *   C1  intent before claim: a producer stores its intent (slot fields)
 *       and pending, then claims with the 16-byte CAS (a full barrier).
 *       Pairs with A2: a padder loads the tail with acquire and, seeing the
 *       claim, sees the intent that describes it.
 *   R1  commit: header and payload before the stamp, CAS seq_cst on the
 *       first frame's stamp. Pairs with A1, the reader's acquire load of
 *       the stamp. The same CAS decides commit against pad (pad.c).
 *   R2  later frames of a batch: release store of each stamp, all before
 *       R1, so a reader that saw frame 1 committed finds them committed.
 *   R3  a reader stores its cursor with release once it is done with the
 *       bytes below (read.c), and at registration (cursor.c); A3 is the
 *       producer's acquire load of it in refresh_limit(), so overwriting
 *       starts after the reading ended, and a tail loaded after A3 has
 *       reached the cursor (a cursor past it is damage: cursor_past_tail).
 *   S1  registration: a new reader stores its slot, fences seq_cst, then
 *       loads the tail (cursor.c, read.c); refresh_limit() loads the tail,
 *       fences seq_cst, then loads the slots. One of the two sees the
 *       other, so a producer that missed the reader limits itself below
 *       the tail the reader saw (read.c verifies positions below it).
 *   L1  lap check: a producer's tail CAS precedes its writes (the CAS is a
 *       full barrier); a lap-checking reader copies, fences acquire, then
 *       loads the tail: if it read overwritten bytes it sees the claim.
 *   F1  durable rings: the flusher's release store of flushed after its
 *       write completed; the acquire load in refresh_limit(). Readers of
 *       durable rings never gate: they lap-check every frame and fall back
 *       to the disk log when lapped (bus/consumer.c).
 *   D1  doorbell (Dekker): commit CAS seq_cst then waiters load seq_cst;
 *       a sleeper fetch_or's its waiter bit seq_cst then loads the stamp
 *       seq_cst (doorbell.c). At least one sees the other.
 *   T1  tail snapshot (evb_ring_load_tail): pos, offset, pos again, each
 *       with acquire. Pairs with the claim's CAS16 (a full barrier): a
 *       snapshot that sees a claim sees what its claimant stored before
 *       (C1), and acquire keeps the three loads, and every load after
 *       them, in program order. Readers' direct loads of tail.pos use it
 *       the same way.
 *   P1  producer slot lease (owner word): a producer takes a free slot
 *       with a CAS acq_rel and gives it back with a release store of 0
 *       after its last commit and statistics (claim.c); a reaper or a
 *       padder frees a dead owner's slot with a CAS acq_rel (pad.c).
 *       Scanners load owner with acquire before they look at pending or
 *       the intent, so those loads stay after it and a slot seen free or
 *       owned shows what its last lease holder released.
 *   P2  pending: finish() stores EVB_POS_NONE with release after the
 *       commit CAS, attach() with release after taking the slot, and a
 *       padder clears a dead claimant's with a CAS acq_rel; scanners load
 *       it with acquire (refresh_limit, pad.c), so a scanner that sees the
 *       claim resolved also sees its committed stamp. The store of a new
 *       claim's pos is C1's.
 *   I1  intent seqlock (write_intent / pad.c read_intent): the producer
 *       stores seq odd, fences release, stores the fields, stores seq even
 *       with release; a padder loads seq with acquire (pairs with the even
 *       release: fields at least that new), the fields, fences acquire,
 *       loads seq again. Had it read any field of a later write, the fence
 *       pair makes the odd store visible to that second load: torn reads
 *       are refused.
 *   Q1  reader slot lease (cursor.c): a reader takes a slot with a CAS
 *       acq_rel and gives it back with a release store of 0 after its last
 *       cursor store; a reaper loads owner with acquire and frees a dead
 *       owner's slot with a CAS acq_rel, so a new owner sees every store
 *       of the old one. The new owner's fields are published by S1.
 *   M1  ring magic (map.c): the creator stores every header field, then
 *       magic with release; an opener loads magic with acquire before any
 *       other field, so a ring that reads as valid reads as finished.
 *   B1  bells (doorbell.c): evb_bell_ring bumps the futex word with a
 *       release RMW after what it announces; a sleeper loads the word with
 *       acquire before its last check (evb_ring_waiter_set, the flusher's
 *       bells in bus/durable/), so one that saw the bump sees the news.
 *   O1  the owner-word cache of proc.c: the word is stored, then the pid
 *       it belongs to with release; a load of the pid with acquire that
 *       matches this process sees the word computed for it.
 *   X1  fenceless commit (replaces R1's CAS for a producer whose process
 *       registered with fence.c; commit_mode says so in its slot): the
 *       owner stores committing = its data position with release (every
 *       byte of its frames, and R2's stamps, before it), a compiler-only
 *       fence, then loads robbing; unless robbing names its claim it
 *       stores the stamp with release (pairs with A1). A padder stores
 *       robbing, runs the heavy fence (membarrier: a full barrier on the
 *       owner's CPU), then loads committing with acquire. One of the two
 *       sees the other (asymmetric Dekker). A padder that sees committing
 *       finishes the commit itself: its CAS writes the same DATA stamp
 *       (the frames are whole), so the owner's plain store cannot undo a
 *       pad. One that does not pads, and the owner, which then sees
 *       robbing, lets the stamp CAS decide, as R1. A dead owner needs no
 *       fence: committing alone decides.
 *   X3  exclusive producer (Dekker on two RMWs): an exclusive producer
 *       takes the header's exclusive word with a seq_cst CAS, then loads
 *       every producer slot's owner with seq_cst; a shared producer takes
 *       its slot with a seq_cst CAS, then loads exclusive with seq_cst. One
 *       sees the other, so the tail is never moved by a plain store and a
 *       CAS at once. The exclusive producer's tail store (evb_store128) is
 *       a release on x86-64 (TSO; the CAS elsewhere): C1's intent before
 *       it, and L1's frame writes after it, keep their order.
 *   X4  tail lease (a lone shared producer moves the tail by store): a
 *       producer that finds no other producer slot held takes the
 *       header's tail_lease (its slot index + 1) with a seq_cst CAS, then
 *       loads every slot's owner with seq_cst; a producer attaching takes
 *       its slot with a seq_cst CAS, then loads tail_lease with seq_cst.
 *       One sees the other (Dekker, as X3): the taker gives the lease up,
 *       or the attacher takes it back. Taking back is an asymmetric Dekker
 *       on the holder's slot line, as X1: the holder stores tail_moving =
 *       1, a compiler-only fence, loads tail_lease, and only if it is
 *       still its own stores the tail (evb_store128) and then tail_moving
 *       = 0 with release. The revoker marks the lease EVB_LEASE_REVOKED
 *       (seq_cst RMW), runs the heavy fence, and claims with the CAS only
 *       once it loaded the holder's tail_moving as 0 with acquire (or the
 *       holder is dead): a holder that missed the mark has finished its
 *       store, which that acquire makes visible, and one that saw it
 *       never stores again. Only then is the word cleared (seq_cst CAS)
 *       and may be taken anew. A revoker in the holder's own slot (its
 *       owner word was freed by a foreign write) cannot tell the holder
 *       from a dead one's leftover and waits for nothing; the holder finds
 *       the word changed at its next store or look (relaxed load, or
 *       lease_held's acquire), fences acquire, and then sees the taker's
 *       owner word and producer id in its slot (own_slot_check): it stops
 *       there. Loss is bounded by the one claim it may have had between
 *       its check and its store at that moment.
 *   X2  fenceless doorbell (D1's twin for X1): the owner's plain stamp
 *       store, a compiler-only fence, then its load of waiters; a sleeper's
 *       waiter-bit RMW, the heavy fence, then its stamp load
 *       (evb_ring_waiters_armed). One sees the other.
 */
#include "claim_inline.h"

#include <errno.h>
#include <string.h>

#include "err.h"
#include "frame.h"

void evb_ring_load_tail(const struct evb_ring *r, uint64_t *pos, uint64_t *offset)
{
    struct evb_ring_tail *t = &r->hdr->tail;
    for (;;) {
        /* T1: pos, offset, pos again: positions only grow, so two equal
         * reads of pos bracket an offset from the same CAS. Acquire pairs
         * with the claims' CAS16 and keeps the three loads in order. */
        uint64_t p1 = atomic_load_explicit(&t->pos, memory_order_acquire);
        uint64_t o = atomic_load_explicit(&t->offset, memory_order_acquire);
        uint64_t p2 = atomic_load_explicit(&t->pos, memory_order_acquire);
        if (p1 == p2) {
            *pos = p1;
            *offset = o;
            return;
        }
    }
}

int evb_ring_tail_check(const struct evb_ring *r, uint64_t pos, uint64_t offset)
{
    if (pos % EVB_FRAME_ALIGN)
        return evb_err_set(-EBADMSG, "partition %u: tail %llu is not aligned", r->partition,
                           (unsigned long long)pos);
    /* Relaxed: written once, before the ring's magic was released. */
    uint64_t base_off = __atomic_load_n(&r->hdr->base_offset, __ATOMIC_RELAXED);
    if (pos < r->base_pos || offset < base_off)
        return evb_err_set(-EBADMSG, "partition %u: tail %llu (offset %llu) is below the "
                           "ring's first position %llu (offset %llu)", r->partition,
                           (unsigned long long)pos, (unsigned long long)offset,
                           (unsigned long long)r->base_pos, (unsigned long long)base_off);
    return 0;
}

/*
 * Is PEND, a pending word of another slot, a claim the ring still holds,
 * seen from our tail snapshot POS? Never trust the mapping: the word may be
 * garbage, so this is decided before any frame is touched.
 *   -EBADMSG  not 8-aligned: no step of the protocol writes that (claims
 *             start at the tail, which is aligned), so the slot is
 *             corrupt. Ignoring it could hide a real claim whose low bits
 *             were damaged, and its owner could then still be writing into
 *             bytes a later lap reuses: a silent loss. The ring is reported
 *             corrupt instead, as an unaligned tail is.
 *   0         no claim to count: EVB_POS_NONE; at or past POS (not claimed
 *             at our snapshot, or its claimant has not made its CAS yet);
 *             or more than a capacity below POS. A real claim cannot be
 *             lapped while pending (every producer's limit counts it), so
 *             the last is a live producer's leftover from a lost CAS, which
 *             it rewrites on its next try, or a hostile value: its bytes
 *             belong to a later lap already and honouring it would only
 *             wedge the ring (a limit below the tail, forever).
 *   1         a claim in [POS - capacity, POS): its frame may be looked at.
 */
static int pending_claim(const struct evb_ring *r, uint64_t pend, uint64_t pos)
{
    if (pend == EVB_POS_NONE)
        return 0;
    if (pend % EVB_FRAME_ALIGN)
        return -EBADMSG;
    return pend < pos && pos - pend <= r->capacity;
}

/*
 * A durable ring's flushed word F, seen after our tail snapshot POS, must
 * be a position the flusher can have published: aligned, not below the
 * ring's base, not past the tail, and no more than a capacity behind it
 * (producers never claim past flushed + capacity). Anything else is a
 * hostile or garbage word in F or in the tail: trusting it would wedge
 * every producer below an unreachable limit. Runs with the limit refresh
 * (once a lap, or while blocked), never per event.
 */
static int check_flushed(const struct evb_ring *r, uint64_t f, uint64_t pos)
{
    if (f > pos) {
        /* F was loaded after POS and both only grow: look at the tail
         * again. T1: acquire, after the acquire load of flushed, so any
         * claim the flusher's frames came from is seen. */
        uint64_t t = atomic_load_explicit(&r->hdr->tail.pos, memory_order_acquire);
        if (f <= t)
            return 0;
        pos = t;
    }
    if (f % EVB_FRAME_ALIGN || f < r->base_pos || f > pos || pos - f > r->capacity)
        return evb_err_set(-EBADMSG, "partition %u: flushed %llu does not fit the tail "
                           "%llu (base %llu, capacity %llu)", r->partition,
                           (unsigned long long)f, (unsigned long long)pos,
                           (unsigned long long)r->base_pos,
                           (unsigned long long)r->capacity);
    return 0;
}

/*
 * Damage found while computing the limit: nothing is claimed (limit 0),
 * and readers asleep on the ring are woken, so those who can see the
 * damage from their side (read.c: a position above the tail, a cursor
 * word they did not write) say so too instead of sleeping on.
 */
static int limit_damaged(struct evb_ring_producer *p, int rc)
{
    p->limit = 0;
    evb_ring_wake(p->r);
    return rc;
}

/*
 * Gating cursor C of reader slot I is above POS, our tail snapshot. Only
 * legitimate if the reader moved on after we loaded POS, so load the tail
 * again. T1: acquire, after the A3 acquire load of C (program order). A
 * reader publishes a cursor (R3, and its registration in cursor.c, a
 * release too) only at a position it reached: the end of frames whose
 * stamps it acquired (their claims' CAS16 came first, R1/R2) or a tail it
 * loaded itself. That tail value happens before this load, which so sees
 * it or a later one: a tail still below C was moved back by hand, or C is
 * garbage. Trusting C would lift the limit off the reader (the attack's
 * overrun); waiting on it would wedge. Once a lap at most, never per event.
 */
static int cursor_past_tail(struct evb_ring_producer *p, uint32_t i, uint64_t c)
{
    struct evb_ring *r = p->r;
    /* T1 (see above): after A3's load of C; sees the tail C's reader saw. */
    uint64_t t = atomic_load_explicit(&r->hdr->tail.pos, memory_order_acquire);
    if (c <= t)
        return 0;
    return limit_damaged(p, evb_err_set(-EBADMSG, "partition %u: reader slot %u: cursor "
                                        "%llu is past the tail %llu", r->partition, i,
                                        (unsigned long long)c, (unsigned long long)t));
}

/*
 * Recompute the producer limit: no claim may end past (oldest gating cursor
 * or oldest pending claim) + capacity. Runs about once a lap, or while
 * blocked. -EBADMSG (limit left at 0, so nothing is claimed) when a slot's
 * pending word is corrupt (pending_claim), a gating cursor is past the
 * tail (cursor_past_tail), or the tail went back.
 */
static int refresh_limit(struct evb_ring_producer *p, uint64_t pos)
{
    struct evb_ring *r = p->r;
    uint64_t min = pos;
    uint32_t by = EVB_HELD_NONE, slot = 0;
    uint64_t who = 0;

    /* Tails only grow, and this producer's snapshots were loaded in
     * program order (T1 acquire; coherence of one word): one below the
     * last means someone stored a smaller tail. Claims from it would
     * overwrite frames readers have not read. */
    if (pos < p->limit_from)
        return limit_damaged(p, evb_err_set(-EBADMSG, "partition %u: the tail went back "
                                            "from %llu to %llu", r->partition,
                                            (unsigned long long)p->limit_from,
                                            (unsigned long long)pos));
    /* S1: our tail load (by the caller) before the slot loads below. */
    atomic_thread_fence(memory_order_seq_cst);
    if (r->durable) {
        /* F1: only the flusher gates a durable ring. Acquire pairs with
         * its release store of flushed (bus/flusher.c), made after the
         * write that read those bytes completed: we overwrite them after. */
        uint64_t f = atomic_load_explicit(&r->hdr->flushed, memory_order_acquire);
        int bad = check_flushed(r, f, pos);
        if (bad) {
            p->limit = 0;
            return bad;
        }
        if (f < min) {
            min = f;
            by = EVB_HELD_FLUSHER;
            /* W1: relaxed; the owner word is a hint, for a message. */
            who = atomic_load_explicit(&r->hdr->flusher, memory_order_relaxed);
        }
    }
    for (uint32_t i = 0; !r->durable && i < EVB_RING_READER_SLOTS; i++) {
        struct evb_reader_slot *s = &r->rslots[i];
        /* Q1: acquire, so kind and cursor are loaded after the owner. */
        if (!atomic_load_explicit(&s->owner, memory_order_acquire))
            continue;
        /* Relaxed: kind is settled before the S1 fence of its reader. */
        if (!EVB_SLOT_GATES(atomic_load_explicit(&s->kind, memory_order_relaxed)))
            continue;
        /* A3: pairs with R3, the reader's release of its cursor. */
        uint64_t c = atomic_load_explicit(&s->cursor, memory_order_acquire);
        if (c > pos) {
            int bad = cursor_past_tail(p, i, c);
            if (bad)
                return bad;
            continue; /* moved on since our snapshot: holds nothing below it */
        }
        if (c < min) {
            min = c;
            by = EVB_HELD_READER;
            slot = i;
            who = atomic_load_explicit(&s->owner, memory_order_relaxed); /* a hint */
        }
    }
    for (uint32_t i = 0; i < EVB_RING_PRODUCER_SLOTS; i++) {
        if (i == p->slot_idx)
            continue;
        struct evb_producer_slot *s = &r->pslots[i];
        /* P1: owner first, then (P2) its pending claim. */
        uint64_t owner = atomic_load_explicit(&s->owner, memory_order_acquire);
        if (!owner)
            continue;
        uint64_t pend = atomic_load_explicit(&s->pending, memory_order_acquire);
        int held = pending_claim(r, pend, pos);
        if (held < 0) {
            p->limit = 0;
            return evb_err_set(-EBADMSG, "partition %u: producer slot %u: pending %llu "
                               "is not aligned", r->partition, i, (unsigned long long)pend);
        }
        if (!held || pend >= min)
            continue;
        /* A committed stamp at a dead owner's pending claim is a leftover
         * (it lost the CAS, or died after committing): free the slot. A
         * live owner's pending claim counts even when padded, because the
         * owner may still be writing into it. A1: acquire, as a reader's
         * load of the stamp. */
        uint64_t st = atomic_load_explicit(&evb_ring_frame(r, pend)->stamp,
                                           memory_order_acquire);
        if (evb_stamp_is_committed(st, pend) && !evb_proc_alive(owner)) {
            evb_ring_reap_producers(r);
            continue;
        }
        min = pend;
        by = EVB_HELD_CLAIM;
        slot = i;
        who = owner;
    }
    p->limit = min + r->capacity;
    p->limit_from = pos;
    p->held_by = by;
    p->held_slot = slot;
    p->held_owner = who;
    p->held_pos = min;
    return 0;
}

/*
 * A reader slot's name as text for a message: the bytes are the
 * mapping's, so the copy stops at the slot's end and at anything that
 * would not print.
 */
static void slot_name(const struct evb_reader_slot *s, char *out, size_t n)
{
    size_t i = 0;
    for (; i + 1 < n && i < sizeof s->name; i++) {
        char c = s->name[i];
        if (c < 0x20 || c > 0x7e)
            break;
        out[i] = c;
    }
    out[i] = '\0';
}

int evb_ring_full_detail(const struct evb_ring_producer *p, int32_t waited_ms)
{
    const struct evb_ring *r = p->r;
    unsigned long long at = (unsigned long long)p->held_pos;
    int pid = (int)(p->held_owner >> 32);
    bool stopped = p->held_owner && evb_proc_stopped(p->held_owner) == 1;
    const char *how = stopped ? ", which is stopped (SIGSTOP, a debugger or a frozen cgroup)"
                              : "";
    switch (p->held_by) {
    case EVB_HELD_FLUSHER:
        return evb_err_set(-ETIMEDOUT, "partition %u: the ring stayed full for %d ms: its "
                           "flusher (pid %d%s) has not written position %llu to disk",
                           r->partition, waited_ms, pid, how, at);
    case EVB_HELD_READER: {
        const struct evb_reader_slot *s = &r->rslots[p->held_slot];
        char name[sizeof s->name + 1];
        slot_name(s, name, sizeof name);
        /* Relaxed: a hint for the message, as the owner word was. */
        bool named = atomic_load_explicit(&s->kind, memory_order_relaxed) ==
                     EVB_SLOT_CONSUMER;
        return evb_err_set(-ETIMEDOUT, "partition %u: the ring stayed full for %d ms: "
                           "%s%s%s (pid %d%s) has not read past position %llu",
                           r->partition, waited_ms,
                           named ? "consumer '" : "a lossless subscriber",
                           named ? name : "", named ? "'" : "", pid, how, at);
    }
    case EVB_HELD_CLAIM: {
        /* A1: acquire, as a reader's load of the stamp. The claim is
         * within a ring of the tail (pending_claim), so its frame is in
         * the mapping. */
        uint64_t st = atomic_load_explicit(&evb_ring_frame(r, p->held_pos)->stamp,
                                           memory_order_acquire);
        bool padded = st == (p->held_pos | EVB_STAMP_PAD);
        return evb_err_set(-ETIMEDOUT, "partition %u: the ring stayed full for %d ms: "
                           "producer pid %d%s holds a claim at position %llu it has not "
                           "committed%s; its bytes are not reused while it may still write "
                           "there, so producers wait until it commits, aborts or exits",
                           r->partition, waited_ms, pid, how, at,
                           padded ? " (padded after stall_ms: readers go past it)" : "");
    }
    default:
        return evb_err_set(-ETIMEDOUT, "partition %u: the ring stayed full for %d ms",
                           r->partition, waited_ms);
    }
}

/*
 * Is the tail lease still ours? A holder learns of its loss at its next
 * store (evb_lease_move); until then its copy of the tail may be stale,
 * so this is asked before the copy is compared with anything.
 */
static bool lease_held(struct evb_ring_producer *p)
{
    /* X4: acquire, after every tail load we made (T1): a tail moved by a
     * revoker's CAS comes after its mark, which we then see too. */
    uint64_t w = atomic_load_explicit(&p->r->hdr->tail_lease, memory_order_acquire);
    if (w == p->lease_word)
        return true;
    p->leased = false;
    p->lease_lost = true; /* evb_ring_claim looks at our slot first */
    p->limit = 0;
    evb_lease_ack(p, w);
    return false;
}

/*
 * Once a lap, an exclusive or leased producer compares the ring's tail
 * with its own copy (POS, OFF): only it moves the tail, so any other value
 * was written by a hand outside the protocol, and claiming on from either
 * would hand out positions twice. T1: acquire, as any tail snapshot.
 * 1: the lease was taken back, and the tail moved by the CAS of the
 * producer that took it; look again.
 */
static int exclusive_tail_check(struct evb_ring_producer *p, uint64_t pos, uint64_t off)
{
    uint64_t t, o;
    evb_ring_load_tail(p->r, &t, &o);
    if (t == pos && o == off)
        return 0;
    if (p->leased && !lease_held(p))
        return 1;
    return evb_err_set(-EBADMSG, "partition %u: the tail is %llu (offset %llu), but this "
                       "producer, its only mover, left it at %llu (offset %llu): written by "
                       "another process", p->r->partition, (unsigned long long)t,
                       (unsigned long long)o, (unsigned long long)pos,
                       (unsigned long long)off);
}

/* The holder slot a lease word names, or NULL (free, garbage, ours). */
static struct evb_producer_slot *lease_holder(const struct evb_ring_producer *p, uint64_t w)
{
    uint64_t idx = (w & EVB_LEASE_HOLDER_MASK) - 1;
    if (idx >= EVB_RING_PRODUCER_SLOTS || idx == p->slot_idx)
        return NULL;
    return &p->r->pslots[idx];
}

/*
 * X4, a revoker's wait: the lease word W (marked revoked) is unused once
 * the word moved on (its holder acknowledged, or another revoker settled
 * it), or its holder is gone, or, after our heavy fence (FENCED), the
 * holder is seen outside its check-and-store. Then it is set free (the
 * generation kept), so it may be taken anew. 0 settled, 1 not yet,
 * -EBADMSG when tail_moving has said "storing" for longer than any claim
 * takes while its process runs (written by a hand outside the protocol).
 */
static int lease_settle(struct evb_ring_producer *p, uint64_t w, bool fenced)
{
    struct evb_ring *r = p->r;
    /* X4: seq_cst, as every access of the word. */
    if (atomic_load_explicit(&r->hdr->tail_lease, memory_order_seq_cst) != w) {
        p->revoking = false;
        return 0;
    }
    struct evb_producer_slot *h = lease_holder(p, w);
    /* P1: acquire, as every look at an owner. */
    uint64_t o = h ? atomic_load_explicit(&h->owner, memory_order_acquire) : 0;
    /* X4: acquire, pairs with the holder's release of 0 after its tail
     * store: that store is then seen by our claims' T1. Unfenced, only
     * the holder's next claim or close acknowledges: wait for it. */
    if (o && (!fenced || atomic_load_explicit(&h->tail_moving, memory_order_acquire))) {
        uint64_t now = evb_mono_ns(), waited = now - p->revoke_since;
        if (evb_proc_gone(o)) {
            /* Gone by our lights; so reads a holder in another pid
             * namespace too, which may be inside its check-and-store:
             * it gets dead_ns to finish, as a dead producer's hole. */
            if (waited < r->dead_ns)
                return 1;
        } else if (!fenced || waited < r->stall_ns + r->dead_ns || evb_proc_stopped(o)) {
            return 1;
        } else {
            return evb_err_set(-EBADMSG, "partition %u: producer slot %u (pid %u) has said "
                               "it is storing the tail for %llu ms while its process runs: "
                               "the slot was written outside the protocol", r->partition,
                               (unsigned)(h - r->pslots), (unsigned)(o >> 32),
                               (unsigned long long)(waited / 1000000u));
        }
    }
    /* X4: seq_cst, as every write of the word; fails when another revoker
     * settled it first (relaxed: nothing read). */
    atomic_compare_exchange_strong_explicit(&r->hdr->tail_lease, &w,
                                            w & ~(EVB_LEASE_REVOKED | EVB_LEASE_HOLDER_MASK),
                                            memory_order_seq_cst, memory_order_relaxed);
    p->revoking = false;
    return 0;
}

/* X4: mark a held lease word W revoked. Returns the marked word, or the
 * word as found when nobody holds it. */
static uint64_t lease_mark(struct evb_ring *r, uint64_t w)
{
    /* X4: seq_cst RMW; a failed CAS reloads W (seq_cst too, as the load
     * it replaces). */
    while ((w & EVB_LEASE_HOLDER_MASK) && !(w & EVB_LEASE_REVOKED) &&
           !atomic_compare_exchange_strong_explicit(&r->hdr->tail_lease, &w,
                                                    w | EVB_LEASE_REVOKED,
                                                    memory_order_seq_cst, memory_order_seq_cst))
        ;
    return (w & EVB_LEASE_HOLDER_MASK) ? w | EVB_LEASE_REVOKED : w;
}

/*
 * X4, an attacher's side: our slot is taken (seq_cst CAS); a lease held by
 * any producer is taken back. Our claims wait (lease_settle) until its
 * holder is seen not storing the tail, acknowledges, or is gone.
 */
static int lease_revoke(struct evb_ring_producer *p)
{
    struct evb_ring *r = p->r;
    /* X4: seq_cst, after our slot's seq_cst CAS. */
    uint64_t w = lease_mark(r, atomic_load_explicit(&r->hdr->tail_lease, memory_order_seq_cst));
    if (!(w & (EVB_LEASE_REVOKED | EVB_LEASE_HOLDER_MASK)))
        return 0; /* free */
    /* Every revoker of a live holder fences for itself, also after
     * another's mark: a holder that missed the mark may have its
     * tail_moving store still in its CPU's store buffer. Without
     * membarrier (a filter), we wait for the holder's acknowledgement. */
    bool fenced = lease_holder(p, w) && evb_fence_heavy() == 0;
    p->revoking = true;
    p->revoked = w;
    p->revoke_fenced = fenced;
    p->revoke_since = evb_mono_ns();
    p->limit = 0; /* every claim goes the slow way, by lease_settle */
    int rc = lease_settle(p, w, fenced);
    return rc < 0 ? rc : 0;
}

/*
 * X4, the taker's side: when no other producer slot is held, take the
 * tail lease and move the tail by store from now on (evb_lease_move).
 * Tried at attach and once a lap by a fenceless shared producer. True:
 * taken.
 */
static bool lease_take(struct evb_ring_producer *p)
{
    struct evb_ring *r = p->r;
    /* A quick look first: while another slot is held, no lease. Held, not
     * alive: a producer in another pid namespace, or of another user
     * under hidepid, reads as dead to evb_proc_alive, and a lease taken
     * beside it would make two movers of the tail. A dead producer's slot
     * holds the lease off until it is reaped. P1: acquire, as every look
     * at an owner. */
    for (uint32_t i = 0; i < EVB_RING_PRODUCER_SLOTS; i++)
        if (i != p->slot_idx && atomic_load_explicit(&r->pslots[i].owner, memory_order_acquire))
            return false;
    /* X4: seq_cst, as every access of the word. */
    uint64_t w = atomic_load_explicit(&r->hdr->tail_lease, memory_order_seq_cst);
    if (w & (EVB_LEASE_REVOKED | EVB_LEASE_HOLDER_MASK)) {
        /* Left by a holder that died, or taken back and never settled
         * (its revoker went away): settle it here. Its slot is free or
         * ours (no other is held, above), so no fence is needed. */
        p->revoke_since = evb_mono_ns();
        w = lease_mark(r, w);
        if (lease_settle(p, w, false))
            return false;
        /* X4: seq_cst, as every access of the word. */
        w = atomic_load_explicit(&r->hdr->tail_lease, memory_order_seq_cst);
        if (w & (EVB_LEASE_REVOKED | EVB_LEASE_HOLDER_MASK))
            return false;
    }
    /* A new generation per take: a holder compares the whole word, so a
     * slot index that comes back (a reaped slot taken anew) is not its
     * lease. 2^55 takes before the generation wraps. */
    uint64_t mine = ((w + (1u << 8)) & ~(EVB_LEASE_REVOKED | EVB_LEASE_HOLDER_MASK)) |
                    (p->slot_idx + 1u);
    /* X4: seq_cst, before the owner loads below; a failed CAS reads
     * nothing we use (relaxed). */
    if (!atomic_compare_exchange_strong_explicit(&r->hdr->tail_lease, &w, mine,
                                                 memory_order_seq_cst, memory_order_relaxed))
        return false;
    for (uint32_t i = 0; i < EVB_RING_PRODUCER_SLOTS; i++) {
        if (i == p->slot_idx)
            continue;
        /* X4: seq_cst, after our CAS of the word. */
        uint64_t o = atomic_load_explicit(&r->pslots[i].owner, memory_order_seq_cst);
        if (o) {
            /* X4: seq_cst, as every write of the word; nothing was
             * stored under it. Fails when an attacher marked it first,
             * which then clears it (relaxed: nothing read). */
            uint64_t exp = mine;
            atomic_compare_exchange_strong_explicit(&r->hdr->tail_lease, &exp,
                                                    mine & ~EVB_LEASE_HOLDER_MASK,
                                                    memory_order_seq_cst,
                                                    memory_order_relaxed);
            return false;
        }
    }
    p->lease_word = mine;
    p->leased = true;
    p->atomic16 = evb_atomic16_store_ok();
    evb_ring_load_tail(r, &p->xpos, &p->xoff);
    return true;
}

/* A producer that shares the ring looks for the lease at a lap's end, at
 * most every EVB_LEASE_RETRY_NS: each look reads every slot, and whether
 * another producer lives costs a /proc read. */
#define EVB_LEASE_RETRY_NS 10000000u /* 10 ms */

static bool lease_due(struct evb_ring_producer *p)
{
    uint64_t now = evb_mono_ns();
    if (now < p->lease_next)
        return false;
    p->lease_next = now + EVB_LEASE_RETRY_NS;
    return true;
}

/* Give the lease back (detach, or becoming exclusive); outside any
 * check-and-store, so a revoked one is acknowledged. */
static void lease_drop(struct evb_ring_producer *p)
{
    if (!p->leased)
        return;
    uint64_t w = p->lease_word;
    /* X4: seq_cst, as every write of the word, after our last tail store.
     * Fails when it was taken back (relaxed: W is then what we found). */
    if (!atomic_compare_exchange_strong_explicit(&p->r->hdr->tail_lease, &w,
                                                 w & ~EVB_LEASE_HOLDER_MASK,
                                                 memory_order_seq_cst, memory_order_relaxed))
        evb_lease_ack(p, w);
    p->leased = false;
}

/*
 * Our slot names another holder (P->slot_lost): the message, with the
 * words as they are now. Every claim after the loss was found says it.
 */
static int slot_lost_err(const struct evb_ring_producer *p)
{
    struct evb_producer_slot *s = p->slot;
    /* Relaxed: for the message only (own_slot_check says why). */
    uint64_t own = atomic_load_explicit(&s->owner, memory_order_relaxed);
    uint32_t id = atomic_load_explicit(&s->producer_id, memory_order_relaxed);
    return evb_err_set(-EBADMSG, "partition %u: producer slot %u, this producer's (pid %u, "
                       "producer id %u), says owner %#llx (pid %u), producer id %u: written "
                       "outside the protocol, and another producer may claim through it; this "
                       "producer claims nothing more on the partition (events it published "
                       "within the lap before may have been overwritten)", p->r->partition,
                       p->slot_idx, (unsigned)(evb_proc_self() >> 32), p->producer_id,
                       (unsigned long long)own, (unsigned)(own >> 32), id);
}

/*
 * Is our slot still ours? A foreign write of its owner word frees it to a
 * second producer (or names another process), and two producers on one
 * slot share its pending, intent and committing words: a padder judges
 * one's claim by the other's, and the second, finding the lease word
 * naming its "own" slot, takes it for a dead holder's leftover, clears it
 * and may take the lease for itself, so the first claims by CAS beside a
 * second mover that stores the tail from its own copy: events are
 * overwritten and no producer is told. The owner word tells processes
 * apart, the producer id (one per handle, written at attach) two handles
 * of one process.
 *
 * Asked at the claim that ends each lap, and at the first claim after the
 * lease was found taken back (P->lease_lost): a second producer in our
 * slot takes it back at its attach, so a holder learns of it at its next
 * claim, before it claims by CAS. Never per event.
 *
 * On a mismatch, we stop for good (P->slot_lost): the lease is given up,
 * the limit zeroed (the inline claim path comes here), and every claim is
 * -EBADMSG; detach leaves the slot to whoever holds it now.
 *
 * Relaxed loads: only we write a live owner's words (a reaper or padder
 * frees only a dead owner's slot), so any other value is damage whatever
 * order it came in, and nothing is read through them. After a lease loss
 * the caller fences acquire first, which makes them see the taker's words.
 */
static int own_slot_check(struct evb_ring_producer *p)
{
    struct evb_producer_slot *s = p->slot;
    /* Relaxed (above). */
    uint64_t own = atomic_load_explicit(&s->owner, memory_order_relaxed);
    uint32_t id = atomic_load_explicit(&s->producer_id, memory_order_relaxed);
    if (own == evb_proc_self() && id == p->producer_id)
        return 0;
    p->slot_lost = true;
    p->limit = 0;
    lease_drop(p); /* freed if still ours: we store the tail no more */
    return slot_lost_err(p);
}

int evb_ring_claim(struct evb_ring_producer *p, uint32_t len, uint32_t events,
                   struct evb_ring_claim *c)
{
    struct evb_ring *r = p->r;
    struct evb_producer_slot *s = p->slot;

    if (!len || len % EVB_FRAME_ALIGN || len > r->capacity / 2 || !events ||
        events > UINT16_MAX)
        return -EINVAL;
    if (p->slot_lost)
        return slot_lost_err(p);
    if (p->revoking) {
        int st = lease_settle(p, p->revoked, p->revoke_fenced);
        if (st)
            return st < 0 ? st : -EAGAIN; /* its holder may still store the tail */
    }
    for (;;) {
        if (p->lease_lost) {
            p->lease_lost = false;
            /* X4 and P1: acquire, after our load of the lease word that
             * showed it taken back. Every write of that word is a seq_cst
             * RMW, made after its writer took its slot (P1 CAS) and wrote
             * its producer id: had it taken our slot, our loads of the
             * slot's words below see its values (or later ones). */
            atomic_thread_fence(memory_order_acquire);
            int bad = own_slot_check(p);
            if (bad)
                return bad;
        }
        uint64_t pos, off;
        evb_claim_tail(p, &pos, &off);
        int bad = evb_ring_tail_check(r, pos, off);
        if (bad)
            return bad;
        uint64_t idx = pos & r->mask;
        uint32_t pad = 0;
        uint64_t limit = p->limit;
        if (idx + len >= r->capacity) {
            /* The claim that ends a lap, once a lap: pad to its end if we
             * cross it, and see whether the tail went back below the one
             * our limit was computed at (refresh_limit says so). A tail
             * moved back leaves the cached limit high, and without this,
             * claims went on from there, over unread frames, for as long
             * as that limit allowed. */
            if (idx + len > r->capacity)
                pad = (uint32_t)(r->capacity - idx);
            if (pos < p->limit_from)
                limit = 0;
            int bad = own_slot_check(p);
            if (bad)
                return bad;
            if (p->exclusive || p->leased) {
                bad = exclusive_tail_check(p, pos, off);
                if (bad < 0)
                    return bad;
                if (bad)
                    continue;
            } else if (p->fenceless && lease_due(p) && lease_take(p)) {
                continue; /* from our own copy of the tail now */
            }
        }
        uint64_t end = pos + pad + len;
        if (end > limit) {
            if (p->leased && !lease_held(p))
                continue; /* POS is our copy, stale once the lease went */
            int bad = refresh_limit(p, pos);
            if (bad)
                return bad;
            if (end > p->limit) {
                /* Relaxed: nothing was claimed; a stale pending from a lost
                 * CAS only makes others' limits more cautious. */
                atomic_store_explicit(&s->pending, EVB_POS_NONE, memory_order_relaxed);
                return -EAGAIN;
            }
        }
        if (evb_claim_take(p, pos, off, pad, len, events, c))
            return 0;
    }
}

/* Commit the end-of-ring pad in front of a wrapped claim. Losing the CAS
 * means a padder wrote the identical pad: nothing to do either way. */
static void commit_end_pad(struct evb_ring *r, const struct evb_ring_claim *c)
{
    struct evb_frame *f = evb_ring_frame(r, c->pos);
    if (c->pad >= EVB_FRAME_HDR)
        evb_frame_set_claim(f, c->offset, c->pad, 0);
    uint64_t exp = c->stale_pad;
    /* R1 for the end pad: its fields before its stamp, pairs with A1; the
     * data frame's CAS in finish() comes after it. A failed CAS reads
     * nothing we use: relaxed. */
    if (!evb_stamp_is_committed(exp, c->pos))
        atomic_compare_exchange_strong_explicit(&f->stamp, &exp, c->pos | EVB_STAMP_PAD,
                                                memory_order_seq_cst,
                                                memory_order_relaxed);
}

void evb_ring_producer_count_wait(struct evb_ring_producer *p)
{
    struct evb_producer_slot *s = p->slot;
    /* Relaxed, owner-only, as evb_claim_count() (claim_inline.h). */
    atomic_store_explicit(&s->backpressure,
                          atomic_load_explicit(&s->backpressure, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* R1: the stamp CAS decides between our commit (or abort) and a padder.
 * 0, or -ECANCELED when a pad won. A stale word that is already a commit
 * of this position means a padder beat us to it; losing to a DATA stamp
 * is a padder that finished our commit for us (X1). */
static int stamp_cas(const struct evb_ring *r, struct evb_frame *f1, struct evb_ring_claim *c,
                     uint64_t type)
{
    uint64_t exp = evb_claim_stamp(r, c);
    /* R1: seq_cst CAS, also the first half of D1. A failed CAS reads the
     * winner's stamp only to compare it: relaxed. */
    if (!evb_stamp_is_committed(exp, c->data_pos) &&
        atomic_compare_exchange_strong_explicit(&f1->stamp, &exp, c->data_pos | type,
                                                memory_order_seq_cst, memory_order_relaxed))
        return 0;
    return type == EVB_STAMP_DATA && exp == (c->data_pos | EVB_STAMP_DATA) ? 0 : -ECANCELED;
}

/* X1 (see the table): commit with a plain store unless a padder is at our
 * claim, in which case the stamp CAS decides. */
static int commit_fenceless(struct evb_ring_producer *p, struct evb_frame *f1,
                            struct evb_ring_claim *c)
{
    return evb_commit_plain(p, f1, c) ? 0 : stamp_cas(p->r, f1, c, EVB_STAMP_DATA);
}

/* Finish a claim: the end pad, then stamp word TYPE on the first data frame. */
static int finish(struct evb_ring_producer *p, struct evb_ring_claim *c, uint64_t type)
{
    struct evb_ring *r = p->r;
    struct evb_frame *f1 = evb_ring_frame(r, c->data_pos);
    bool fenceless = p->fenceless && type == EVB_STAMP_DATA;

    if (c->pad)
        commit_end_pad(r, c);
    int rc = fenceless ? commit_fenceless(p, f1, c) : stamp_cas(r, f1, c, type);
    /* Statistic, relaxed: publishes nothing. Counted at once, before
     * anything that can make a syscall, so a process killed after its
     * abort's CAS has almost surely counted it (bus/stat.c). Commits are
     * not counted: stat derives them from the tail. */
    if (!rc && type == EVB_STAMP_PAD)
        atomic_fetch_add_explicit(&r->hdr->aborted, c->events, memory_order_relaxed);
    if (!rc && type == EVB_STAMP_DATA)
        evb_claim_count(p->slot, c);
    if (rc) {
        /* Padded: a stall of ours, unless the tail is below our claim's
         * end, which our CAS passed and which tails never go back from:
         * then a hand moved it back, and the pad is its doing (another
         * claim over our bytes, or a reader timing a hole there). Looked
         * at only on this failure path. T1 acquire, for the message. */
        uint64_t t = atomic_load_explicit(&r->hdr->tail.pos, memory_order_acquire);
        if (t < c->data_pos + c->len)
            rc = evb_err_set(-EBADMSG, "partition %u: the claim at position %llu (offsets "
                             "from %llu) was padded, and the tail %llu is below its end "
                             "%llu: the tail went back (damage, not a stall); its first "
                             "event was not published, later ones of its batch may have "
                             "been", r->partition, (unsigned long long)c->data_pos,
                             (unsigned long long)c->offset, (unsigned long long)t,
                             (unsigned long long)(c->data_pos + c->len));
        else
            evb_err_set(rc, "partition %u: the claim at position %llu (offset %llu, %u "
                        "event%s) was padded because this producer stalled past stall_ms "
                        "(the padder's; %llu ms in this process) before its %s: %s",
                        r->partition,
                        (unsigned long long)c->data_pos, (unsigned long long)c->offset,
                        c->events, c->events == 1 ? "" : "s",
                        (unsigned long long)(r->stall_ns / 1000000u),
                        type == EVB_STAMP_DATA ? "commit" : "abort",
                        type == EVB_STAMP_DATA ? "the event was not published"
                                               : "nothing was published, as aborted");
    }
    EVB_CRASH_POINT("finish.after_cas");
    evb_commit_resolved(p, fenceless);
    return rc;
}

int evb_ring_commit(struct evb_ring_producer *p, struct evb_ring_claim *c)
{
    struct evb_ring *r = p->r;
    struct evb_frame *f1 = evb_ring_frame(r, c->data_pos);

    /* R2: frames after the first, in order, before frame 1. Walk by the
     * lengths and flags we wrote ourselves, bounded by the claim. */
    uint64_t end = c->data_pos + c->len;
    uint64_t q = c->data_pos + evb_frame_skip(f1->len, f1->flags);
    for (uint32_t i = 1; i < c->events && q + EVB_FRAME_HDR <= end; i++) {
        struct evb_frame *f = evb_ring_frame(r, q);
        uint64_t step = evb_frame_skip(f->len, f->flags);
        /* R2: this frame's header and value before its stamp, and all of
         * it before frame 1's R1 CAS. */
        atomic_store_explicit(&f->stamp, q | EVB_STAMP_DATA, memory_order_release);
        if (step < EVB_FRAME_HDR)
            break;
        q += step;
    }
    EVB_CRASH_POINT("commit.before_stamp");
    return finish(p, c, EVB_STAMP_DATA);
}

int evb_ring_abort(struct evb_ring_producer *p, struct evb_ring_claim *c)
{
    struct evb_ring *r = p->r;
    struct evb_frame *f1 = evb_ring_frame(r, c->data_pos);
    /* The same fields a padder would write for this claim (pad.c). */
    evb_frame_set_claim(f1, c->offset, c->len, (uint16_t)c->events);
    return finish(p, c, EVB_STAMP_PAD);
}

/* For messages: ", this process" when OWNER is this process's word (the
 * holder is another handle here), else nothing. */
static const char *whose(uint64_t owner)
{
    return owner == evb_proc_self() ? ", this process" : "";
}

/*
 * X3, the shared side: our slot is taken (seq_cst); is an exclusive
 * producer alive on the ring? Then give the slot back: -EBUSY. A dead
 * one's word is cleared (its claims are padded as any dead producer's).
 */
static int exclusive_absent(struct evb_ring_producer *p)
{
    struct evb_ring *r = p->r;
    /* X3: seq_cst, after our slot's seq_cst CAS. */
    uint64_t x = atomic_load_explicit(&r->hdr->exclusive, memory_order_seq_cst);
    if (!x)
        return 0;
    if (!evb_proc_alive(x)) {
        /* Relaxed on failure: another attacher cleared or took it; the
         * next attach looks again. X3: seq_cst as the loads. */
        atomic_compare_exchange_strong_explicit(&r->hdr->exclusive, &x, 0,
                                                memory_order_seq_cst,
                                                memory_order_relaxed);
        /* X3: seq_cst, the word again after the clear. */
        x = atomic_load_explicit(&r->hdr->exclusive, memory_order_seq_cst);
        if (!x)
            return 0;
    }
    evb_ring_producer_detach(p);
    return evb_err_set(-EBUSY, "partition %u: an exclusive producer (pid %u%s) holds it; "
                       "no other producer may publish there while it is open",
                       r->partition, (unsigned)(x >> 32), whose(x));
}

int evb_ring_producer_exclusive(struct evb_ring_producer *p)
{
    struct evb_ring *r = p->r;
    lease_drop(p); /* ours since attach, if we were alone */
    uint64_t self = evb_proc_self(), cur = 0;
    /* X3: take the word; a dead holder's is taken over. seq_cst, before
     * the slot loads below; a failed CAS reads the holder only to name it
     * or test it: relaxed. */
    while (!atomic_compare_exchange_strong_explicit(&r->hdr->exclusive, &cur, self,
                                                    memory_order_seq_cst,
                                                    memory_order_relaxed)) {
        if (evb_proc_alive(cur))
            return evb_err_set(-EBUSY, "partition %u: another exclusive producer (pid %u%s) "
                               "holds it", r->partition, (unsigned)(cur >> 32), whose(cur));
    }
    for (uint32_t i = 0; i < EVB_RING_PRODUCER_SLOTS; i++) {
        if (i == p->slot_idx)
            continue;
        /* X3: seq_cst, after our CAS of the word. */
        uint64_t o = atomic_load_explicit(&r->pslots[i].owner, memory_order_seq_cst);
        if (!o || !evb_proc_alive(o))
            continue; /* a dead producer claims nothing more */
        /* X3: release, nothing was claimed under the word. */
        atomic_store_explicit(&r->hdr->exclusive, 0, memory_order_release);
        return evb_err_set(-EBUSY, "partition %u: producer slot %u is held (pid %u%s): an "
                           "exclusive producer must be the only one", r->partition, i,
                           (unsigned)(o >> 32), whose(o));
    }
    p->exclusive = true;
    p->atomic16 = evb_atomic16_store_ok();
    evb_ring_load_tail(r, &p->xpos, &p->xoff);
    return 0;
}

int evb_ring_producer_attach(struct evb_ring_producer *p, struct evb_ring *r,
                             uint32_t producer_id)
{
    uint64_t self = evb_proc_self();
    memset(p, 0, sizeof *p);
    p->r = r;
    p->producer_id = producer_id;
    /* Nothing holds us yet. (0 would match a first blocking position of 0,
     * leave blocked_since at 0 and time any claim at 0 as stalled since
     * boot: a live producer's claim padded at once.) */
    p->blocked_pos = EVB_POS_NONE;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < EVB_RING_PRODUCER_SLOTS; i++) {
            struct evb_producer_slot *s = &r->pslots[i];
            uint64_t exp = 0;
            /* P1: take the lease; acquire pairs with the last holder's
             * release (or a reaper's CAS). seq_cst for X3: before our load
             * of the exclusive word below. Failure: someone else's slot,
             * nothing read from it, relaxed. */
            if (!atomic_compare_exchange_strong_explicit(&s->owner, &exp, self,
                                                         memory_order_seq_cst,
                                                         memory_order_relaxed))
                continue;
            /* P2: no claim of ours yet. */
            atomic_store_explicit(&s->pending, EVB_POS_NONE, memory_order_release);
            /* Relaxed: statistics of the new owner start at zero; a stat
             * reader racing this sees the last owner's numbers once. */
            atomic_store_explicit(&s->published, 0, memory_order_relaxed);
            atomic_store_explicit(&s->published_bytes, 0, memory_order_relaxed);
            atomic_store_explicit(&s->backpressure, 0, memory_order_relaxed);
            /* X1: how we commit. Relaxed: published with the first intent
             * (I1's release), before any claim a padder could look at. */
            p->fenceless = evb_fence_register();
            /* No claim of ours is committing or being robbed: NONE, not
             * 0, which is a position (the first claim of a ring). Relaxed,
             * as commit_mode. */
            atomic_store_explicit(&s->committing, EVB_POS_NONE, memory_order_relaxed);
            atomic_store_explicit(&s->robbing, EVB_POS_NONE, memory_order_relaxed);
            /* A dead owner killed inside evb_claim_write_intent left the
             * seqlock odd; we would carry it on inverted (odd when whole,
             * even mid-write), so every intent of ours read as torn and
             * our holes could never be padded. Made even; the intent's
             * fields stay stale, and not pending (above). I1: release, as
             * write_intent's even store. */
            uint64_t seq = atomic_load_explicit(&s->intent_seq, memory_order_relaxed);
            if (seq & 1)
                atomic_store_explicit(&s->intent_seq, seq + 1, memory_order_release);
            /* Not moving the tail (a dead holder of this slot may have
             * left 1). Relaxed, as commit_mode. */
            atomic_store_explicit(&s->tail_moving, 0, memory_order_relaxed);
            atomic_store_explicit(&s->commit_mode,
                                  p->fenceless ? EVB_COMMIT_FENCELESS : EVB_COMMIT_CAS,
                                  memory_order_relaxed);
            /* Relaxed, as commit_mode: only own_slot_check compares it,
             * and a holder that lost the slot to us fences first. */
            atomic_store_explicit(&s->producer_id, producer_id, memory_order_relaxed);
            p->slot = s;
            p->slot_idx = i;
            int rc = exclusive_absent(p);
            if (!rc && (rc = lease_revoke(p)))
                evb_ring_producer_detach(p);
            if (!rc && !p->revoking && p->fenceless)
                lease_take(p);
            return rc;
        }
        evb_ring_reap_producers(r);
    }
    return evb_err_set(-EBUSY, "partition %u: all %u producer slots are taken",
                       r->partition, EVB_RING_PRODUCER_SLOTS);
}

void evb_ring_producer_detach(struct evb_ring_producer *p)
{
    if (!p->slot)
        return;
    if (p->slot_lost) {
        /* Not ours any more (own_slot_check): its pending and owner words
         * are the new holder's, and the lease was given up when the loss
         * was found. Only the exclusive word, if we hold it, is ours to
         * clear; a CAS from our own word, so a forked child closing this
         * copy leaves its parent's alone. X3: release, as the store
         * below; relaxed on failure, nothing read. */
        uint64_t x = evb_proc_self();
        if (p->exclusive)
            atomic_compare_exchange_strong_explicit(&p->r->hdr->exclusive, &x, 0,
                                                    memory_order_release,
                                                    memory_order_relaxed);
        p->slot = NULL;
        p->leased = p->exclusive = p->revoking = false;
        return;
    }
    /* A child closing a handle it inherited by fork(): the slot, the
     * lease and the exclusive word are its parent's, who lives on and
     * claims by them. Relaxed: our own process's word, if it is. */
    if (atomic_load_explicit(&p->slot->owner, memory_order_relaxed) != evb_proc_self()) {
        p->slot = NULL;
        p->leased = p->exclusive = p->revoking = false;
        return;
    }
    lease_drop(p);
    if (p->exclusive) {
        /* X3: release, our last tail store before the word says free;
         * cleared before our slot, so a producer attaching meanwhile finds
         * the ring shared, not ours. */
        atomic_store_explicit(&p->r->hdr->exclusive, 0, memory_order_release);
        p->exclusive = false;
    }
    /* P2: release, as finish()'s: a padder's acquire load that sees it
     * sees our last commit (pad.c is_boundary), whether or not it also
     * sees the P1 release of owner below. */
    atomic_store_explicit(&p->slot->pending, EVB_POS_NONE, memory_order_release);
    /* P1: release, our last commit is visible before the slot reads as free. */
    atomic_store_explicit(&p->slot->owner, 0, memory_order_release);
    p->slot = NULL;
}

/*
 * A blocked producer's slow path, at most every dead_ns/4: free dead
 * readers' slots, pad dead producers' holes that hold the ring, and force a
 * fresh limit.
 */
int evb_ring_producer_unblock(struct evb_ring_producer *p)
{
    struct evb_ring *r = p->r;
    if (p->slot_lost)
        return slot_lost_err(p);
    uint64_t now = evb_mono_ns();
    if (now < p->next_check)
        return 0;
    p->next_check = now + r->dead_ns / 4;
    evb_ring_reap_readers(r);

    /* What holds us: the oldest gating cursor or pending claim. If it is a
     * claimed but uncommitted frame, time it and try to pad it. */
    uint64_t tpos, toff;
    evb_ring_load_tail(r, &tpos, &toff);
    /* A corrupt slot or flushed word: nothing to time or pad. */
    int rc = refresh_limit(p, tpos);
    if (rc) {
        p->limit = 0;
        return rc;
    }
    uint64_t min = p->limit - r->capacity;
    if (min != p->blocked_pos) {
        p->blocked_pos = min;
        p->blocked_since = now;
    }
    /* A hole held past every padding bound, or an impossible intent, is
     * damage (pad.c): say so, rather than wait on it for ever. */
    uint64_t waited = now - p->blocked_since;
    if (min < tpos && tpos - min > r->capacity) {
        /* Held more than a ring below the tail: no claim or gating cursor
         * can be there for long (every limit counts them), only a reader
         * slot registering from an old position, for the moment before
         * its seek. One that stays past the padding bound is garbage. */
        if (waited >= r->stall_ns + r->dead_ns)
            rc = evb_err_set(-EBADMSG, "partition %u: held at position %llu, more than "
                             "a ring below the tail %llu, for %llu ms", r->partition,
                             (unsigned long long)min, (unsigned long long)tpos,
                             (unsigned long long)(waited / 1000000u));
    } else if (min < tpos) {
        rc = evb_ring_hole_verdict(r, min, waited);
    }
    p->limit = 0;
    return rc < 0 ? rc : 0;
}
