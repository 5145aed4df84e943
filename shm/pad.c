/*
 * pad.c - unwedging a ring whose producer died (or stalled) between claim
 * and commit (DESIGN.md section 4).
 *
 * The hole's extent comes from the claimant's intent (claim.c, C1). Every
 * intent position is a real claim boundary or the tail: a producer that
 * lost the tail CAS lost it to a claim starting exactly there. Among the
 * intents that name the hole, the true one ends where the next claim
 * starts: the tail, a committed frame with the expected offset, or another
 * pending intent. The pad writes only fields whose values the claimant
 * itself writes identically (offset, claim_len, claim_events), and its type
 * lives in the stamp, so a stalled producer that wakes up and keeps writing
 * cannot change what readers see; its commit CAS then fails (-ECANCELED).
 * A producer that commits with a plain store (claim.c X1) is told first,
 * through its slot, and one whose commit was already decided has it
 * finished here instead (the same DATA stamp it stores itself).
 */
#include "ring.h"

#include <errno.h>

#include "err.h"
#include "frame.h"
#include "nocancel.h"

struct hole {
    uint64_t pos;       /* where the pad goes */
    uint64_t end;       /* next boundary */
    uint64_t offset;    /* first offset voided */
    uint64_t end_offset;
    uint32_t events;
    bool data_part;     /* false: the end-of-ring pad in front of a claim */
    /* Every slot whose pending intent names this claim, and its owner
     * then. Usually one; more when a producer that lost the tail CAS here
     * (its intent still naming the place) has not written its next
     * intent, or died first: then the claim is the winner's, and only the
     * slots together say who may be waited for and who must be told. */
    uint64_t slots;     /* bit i: r->pslots[i] */
    uint64_t owner[EVB_RING_PRODUCER_SLOTS];
    uint64_t intent_pos[EVB_RING_PRODUCER_SLOTS]; /* its pending position */
};

/* A dead producer's slot was freed. Statistic: relaxed. */
static void retire(struct evb_ring *r)
{
    atomic_fetch_add_explicit(&r->hdr->reaped_producers, 1, memory_order_relaxed);
}

struct intent {
    uint64_t pos, offset;
    uint32_t pad, len, events;
};

/* Read a slot's intent under its seqlock (I1, claim.c): 1 read whole and
 * still pending, 0 read whole and not pending, -1 torn (being rewritten,
 * or its writer died halfway). */
static int read_intent_seq(struct evb_producer_slot *s, struct intent *in)
{
    /* I1: acquire pairs with write_intent's even release. */
    uint64_t s1 = atomic_load_explicit(&s->intent_seq, memory_order_acquire);
    if (s1 & 1)
        return -1;
    /* Relaxed fields: the seqlock decides whether they are one intent. */
    in->pos = atomic_load_explicit(&s->intent_pos, memory_order_relaxed);
    in->offset = atomic_load_explicit(&s->intent_offset, memory_order_relaxed);
    in->pad = atomic_load_explicit(&s->intent_pad, memory_order_relaxed);
    in->len = atomic_load_explicit(&s->intent_len, memory_order_relaxed);
    in->events = atomic_load_explicit(&s->intent_events, memory_order_relaxed);
    /* I1: pairs with write_intent's release fence: a field of a later
     * write makes its odd seq visible to the load below. */
    atomic_thread_fence(memory_order_acquire);
    /* Relaxed: the I1 fence above keeps it after the field loads. */
    if (atomic_load_explicit(&s->intent_seq, memory_order_relaxed) != s1)
        return -1;
    /* P2: acquire, still pending at the intent's position? */
    return atomic_load_explicit(&s->pending, memory_order_acquire) == in->pos;
}

/* The intent of a slot, false when torn or not pending. */
static bool read_intent(struct evb_producer_slot *s, struct intent *in)
{
    return read_intent_seq(s, in) > 0;
}

/*
 * Is (pos, offset) the start of a claim: committed there, or pending? 2
 * yes, 1 only as some slot's planned data start after an end pad, 0 no.
 * An intent is written at the tail, so an intent that starts there, or a
 * committed frame, proves a claim boundary; a data start after an end pad
 * is one only if that slot won its tail CAS, which its intent cannot say
 * (a CAS loser's plan looks the same), so it is believed only when
 * nothing better names the hole (a wrapping claim whose data part is not
 * committed yet has no other witness).
 *
 * The claim starting there may commit, and its producer move on, between
 * our look at the stamp and our look at its slot: then neither says so,
 * and a hole whose true end this is would lose its reading to a wrong one
 * (a dead CAS loser's intent of another shape, whose pad would then cover
 * the committed claim). So once no slot says so, the stamp is looked at
 * again: what we read of the slot was written after that commit (pending
 * cleared with release, or a later intent whose odd or even seq, both
 * released, we acquired; a later claim's pending, stored relaxed after
 * that release, continues its release sequence: C11's same-thread rule,
 * and plain TSO on x86-64), so the commit is visible now. A slot caught
 * mid-rewrite is read once more, so that a seq that changed under our
 * relaxed second load is acquired, then skipped: a producer rewrites its
 * intent only when no claim of its own is pending, so it holds nothing
 * here (and a slot torn for good, its writer stopped or killed halfway,
 * must not keep every hole from a verdict).
 */
static int is_boundary(struct evb_ring *r, uint64_t pos, uint64_t offset)
{
    struct evb_frame *f = evb_ring_frame(r, pos);
    bool planned = false;
    for (int look = 0; look < 2; look++) {
        /* A1: acquire as a reader, so the offset below is the committed
         * one; the second look is also after the acquires of what the
         * slots said (above). */
        uint64_t st = atomic_load_explicit(&f->stamp, memory_order_acquire);
        if (evb_stamp_is_committed(st, pos)) {
            if (r->capacity - (pos & r->mask) < EVB_FRAME_HDR)
                return st == (pos | EVB_STAMP_PAD) ? 2 : 0;
            /* Relaxed atomic read: committed frames do not change, but a
             * zombie may rewrite the same value. */
            return __atomic_load_n(&f->offset, __ATOMIC_RELAXED) == offset ? 2 : 0;
        }
        if (look)
            break;
        for (uint32_t i = 0; i < EVB_RING_PRODUCER_SLOTS; i++) {
            struct evb_producer_slot *s = &r->pslots[i];
            struct intent in;
            /* P1: owner, then the intent. */
            if (!atomic_load_explicit(&s->owner, memory_order_acquire))
                continue;
            int got = read_intent_seq(s, &in);
            if (got < 0)
                got = read_intent_seq(s, &in);
            if (got <= 0)
                continue;
            if (in.offset != offset)
                continue;
            if (in.pos == pos)
                return 2;
            if (in.pad && in.pos + in.pad == pos)
                planned = true;
        }
    }
    return planned ? 1 : 0;
}

/*
 * Could IN be what evb_ring_claim() wrote? A claim is 1..65535 events of
 * at most max_frame bytes each, aligned, at most half the ring, and its
 * end pad (if any) runs exactly to the end of the lap. Whether it still
 * matches the ring (ends at the tail or at the next claim) is find_hole's
 * question; this one is about the slot alone: an intent no producer can
 * write is damage, and obeying it could only make a padder guess or a
 * ring wait on a hole nobody can fill. Null when possible, else which
 * field is impossible.
 */
static const char *impossible_intent(const struct evb_ring *r, const struct intent *in)
{
    if (in->pos % EVB_FRAME_ALIGN)
        return "intent position";
    if (!in->events || in->events > UINT16_MAX)
        return "intent events";
    if (!in->len || in->len % EVB_FRAME_ALIGN || in->len > r->capacity / 2 ||
        in->len > evb_align_line(r->max_frame) * in->events) /* frames padded to lines */
        return "intent length";
    if (in->pad && (in->pad % EVB_FRAME_ALIGN || (in->pos & r->mask) + in->pad != r->capacity))
        return "intent pad";
    return NULL;
}

static bool same_hole(const struct hole *a, const struct hole *b)
{
    return a->end == b->end && a->offset == b->offset && a->events == b->events;
}

/* Find the one claim that covers POS; 1 found, 0 none or ambiguous,
 * -EBADMSG when a pending intent that names POS is impossible. */
static int find_hole(struct evb_ring *r, uint64_t pos, uint64_t tpos, uint64_t toff,
                     struct hole *out)
{
    /* The readings believed, by the strength of what confirms their end
     * (is_boundary): only the strongest count, and they must agree. */
    int found = 0;
    bool disagree = false;
    /* Every slot whose intent names POS as this part, before the checks
     * of its end: that end is looked at slot by slot, at different
     * moments, so a claim next to it moving on between two looks could
     * drop one owner (the live one) and leave another (a dead CAS loser)
     * to decide alone. */
    uint64_t named = 0;
    struct {
        uint64_t owner, at, offset;
        bool data_part;
    } by[EVB_RING_PRODUCER_SLOTS];
    for (uint32_t i = 0; i < EVB_RING_PRODUCER_SLOTS; i++) {
        struct evb_producer_slot *s = &r->pslots[i];
        /* P1: owner, then the intent. */
        uint64_t owner = atomic_load_explicit(&s->owner, memory_order_acquire);
        struct intent in;
        if (!owner || !read_intent(s, &in))
            continue;
        if (pos == in.pos || pos == in.pos + in.pad) {
            /* Read whole under the seqlock and still pending: the slot
             * says this, and no producer would have written it. */
            const char *bad = impossible_intent(r, &in);
            if (bad)
                return evb_err_set(-EBADMSG, "partition %u: producer slot %u: %s "
                                   "(pos %llu, pad %u, len %u, events %u) cannot describe "
                                   "the claim at position %llu", r->partition, i, bad,
                                   (unsigned long long)in.pos, in.pad, in.len, in.events,
                                   (unsigned long long)pos);
        }
        struct hole h = {.pos = pos, .end = 0, .offset = 0, .events = 0};
        if (in.pad && pos == in.pos) {
            h.end = pos + in.pad;
            h.offset = h.end_offset = in.offset;
            h.events = 0;
            h.data_part = false;
        } else if (pos == in.pos + in.pad) {
            h.end = pos + in.len;
            h.offset = in.offset;
            h.end_offset = in.offset + in.events;
            h.events = in.events;
            h.data_part = true;
        } else {
            continue;
        }
        named |= 1ull << i;
        by[i].owner = owner;
        by[i].at = in.pos;
        by[i].offset = h.offset;
        by[i].data_part = h.data_part;
        /* Never trust the slot: the pad must fit the ring without wrapping,
         * stay aligned and end inside what was claimed. */
        uint64_t len = h.end - pos;
        if (h.end <= pos || len % EVB_FRAME_ALIGN || (pos & r->mask) + len > r->capacity ||
            h.end > tpos || h.events > UINT16_MAX)
            continue;
        int ok = h.end == tpos ? (h.end_offset == toff ? 2 : 0)
                               : is_boundary(r, h.end, h.end_offset);
        if (ok < found)
            continue;
        if (ok > found) {
            *out = h;
            found = ok;
            disagree = false;
        } else if (ok && !same_hole(out, &h)) {
            disagree = true;
        }
    }
    if (disagree)
        return 0;
    for (uint32_t i = 0; found && i < EVB_RING_PRODUCER_SLOTS; i++) {
        if (named >> i & 1 && by[i].offset == out->offset && by[i].data_part == out->data_part) {
            out->slots |= 1ull << i;
            out->owner[i] = by[i].owner;
            out->intent_pos[i] = by[i].at;
        }
    }
    return found ? 1 : 0;
}

/* No owner of H can commit it: each is dead (and none is us). Reads /proc
 * once per owner. */
static bool hole_dead(const struct hole *h)
{
    for (uint32_t i = 0; i < EVB_RING_PRODUCER_SLOTS; i++) {
        if (!(h->slots >> i & 1))
            continue;
        if ((h->owner[i] >> 32) == (evb_proc_self() >> 32) || evb_proc_alive(h->owner[i]))
            return false;
    }
    return true;
}

/*
 * X1 (claim.c): is the hole H at POS a fenceless owner's claim whose
 * frames are whole and whose commit is decided? Then the stamp it is about
 * to store (or stored since our load) is DATA, and we store the same. 1
 * yes, 0 no (pad it: the owner will see robbing and let the CAS decide),
 * -1 the heavy fence is unavailable, so a live owner cannot be robbed
 * safely from here.
 */
static int owner_committing(struct evb_ring *r, const struct hole *h, uint64_t pos, bool dead)
{
    /* Which of the slots naming the claim is its owner we cannot tell (a
     * CAS loser's intent looks the same): every fenceless one is told. */
    uint64_t told = 0;
    for (uint32_t i = 0; i < EVB_RING_PRODUCER_SLOTS; i++) {
        struct evb_producer_slot *s = &r->pslots[i];
        /* Relaxed: set at attach, before the intent whose I1 release
         * read_intent acquired. */
        if (!(h->slots >> i & 1) ||
            atomic_load_explicit(&s->commit_mode, memory_order_relaxed) != EVB_COMMIT_FENCELESS)
            continue;
        /* Relaxed: X1, the heavy fence below orders it before our load; a
         * dead owner reads nothing. */
        atomic_store_explicit(&s->robbing, pos, memory_order_relaxed);
        told |= 1ull << i;
    }
    if (!told)
        return 0;
    if (!dead && evb_fence_heavy() < 0)
        return -1;
    for (uint32_t i = 0; i < EVB_RING_PRODUCER_SLOTS; i++)
        /* X1: acquire, pairs with the owner's release: its frames are
         * whole. */
        if (told >> i & 1 &&
            atomic_load_explicit(&r->pslots[i].committing, memory_order_acquire) == pos)
            return 1;
    return 0;
}

int evb_ring_unblock(struct evb_ring *r, uint64_t pos, uint64_t waited_ns)
{
    EVB_NO_CANCEL;
    uint64_t tpos, toff;
    /* A2: acquire tail; a claim we see has its intent visible (C1). */
    evb_ring_load_tail(r, &tpos, &toff);
    if (pos >= tpos || tpos - pos > r->capacity || pos % EVB_FRAME_ALIGN)
        return 0;
    struct evb_frame *f = evb_ring_frame(r, pos);
    uint64_t stale = atomic_load_explicit(&f->stamp, memory_order_acquire);
    if (evb_stamp_is_committed(stale, pos))
        return 1;

    struct hole h = {0};
    int found = find_hole(r, pos, tpos, toff, &h);
    if (found <= 0)
        return found;
    bool dead = hole_dead(&h);
    if (!dead && waited_ns < r->stall_ns)
        return 0;
    /* A read-only mapping: a claim explains the hole, but someone who may
     * write (a producer the claim gates, a writable reader) must pad it. */
    if (r->readonly)
        return 2;

    /*
     * Known window (issue 9): nothing stops producers from lapping a
     * padder. If the claim is resolved (committed, or padded by another)
     * after our stamp load and the ring then laps POS before the stores
     * below, they land in a frame of the new lap. Looking at the stamp
     * and the tail again right before them shrinks the window from the
     * hole search and the liveness check (a read of /proc) to a few
     * instructions; closing it needs the padder counted in the producer
     * limit. A1: acquire, as the first load; T1 for the tail: a claim that
     * reached this frame's place in the next lap means we are too late.
     */
    if (evb_stamp_is_committed(atomic_load_explicit(&f->stamp, memory_order_acquire), pos))
        return 1;
    if (atomic_load_explicit(&r->hdr->tail.pos, memory_order_acquire) - pos > r->capacity)
        return 0;
    int finishing = h.data_part ? owner_committing(r, &h, pos, dead) : 0;
    if (finishing < 0)
        return 2; /* explained, but only the owner's own commit may resolve it */
    uint64_t type = finishing ? EVB_STAMP_DATA : EVB_STAMP_PAD;
    /* Identical to what the claimant writes (frame.h). */
    if (!finishing && r->capacity - (pos & r->mask) >= EVB_FRAME_HDR)
        evb_frame_set_claim(f, h.offset, (uint32_t)(h.end - pos), (uint16_t)h.events);
    EVB_CRASH_POINT("pad.before_cas");
    /* The race with the claimant's commit (claim.c R1, X1): one CAS wins,
     * or both write DATA. seq_cst: also the first half of D1 for
     * sleepers. A failed CAS reads nothing we use: relaxed. */
    if (!atomic_compare_exchange_strong_explicit(&f->stamp, &stale, pos | type,
                                                 memory_order_seq_cst,
                                                 memory_order_relaxed))
        return 1;
    if (!finishing) {
        /* Counters are statistics: relaxed. */
        atomic_fetch_add_explicit(&r->hdr->aborted, h.events, memory_order_relaxed);
        atomic_fetch_add_explicit(dead ? &r->hdr->padded_dead : &r->hdr->padded_stalled,
                                  h.events ? 1 : 0, memory_order_relaxed);
    }
    for (uint32_t i = 0; dead && h.data_part && i < EVB_RING_PRODUCER_SLOTS; i++) {
        if (!(h.slots >> i & 1))
            continue;
        /* The dead claimants can make no further claim: free their slots.
         * P2: the claim is resolved (our CAS above). A failed CAS (a new
         * owner or another padder got there) reads nothing: relaxed. */
        struct evb_producer_slot *s = &r->pslots[i];
        uint64_t exp = h.intent_pos[i];
        atomic_compare_exchange_strong_explicit(&s->pending, &exp, EVB_POS_NONE,
                                                memory_order_acq_rel, memory_order_relaxed);
        uint64_t o = h.owner[i];
        /* P1: free the lease after clearing pending; relaxed on failure. */
        if (atomic_compare_exchange_strong_explicit(&s->owner, &o, 0, memory_order_acq_rel,
                                                    memory_order_relaxed))
            retire(r);
    }
    /* D1: second half, seq_cst load after the seq_cst pad CAS. */
    if (atomic_load_explicit(&r->hdr->waiters, memory_order_seq_cst))
        evb_ring_wake_waiters(r);
    return 1;
}

/*
 * Nothing committed at POS, below the tail, for WAITED_NS. Every claim is
 * padded by stall_ns + dead_ns if it is a claim at all: a dead producer's
 * within dead_ns, a live one's once it stalled stall_ns (each waiter
 * offers the hole every dead_ns/4). So a stamp that stays uncommitted past
 * that, and that one more offer cannot resolve, is one no intent explains
 * (a garbage tail, a torn or stuck intent seqlock, a pending word that
 * names another place): the ring is damaged at POS. Waiting on would hang
 * every reader, producer and flusher behind it, so it is reported. A torn
 * intent read or a producer between its commit and its next intent cannot
 * last that long.
 */
int evb_ring_hole_verdict(struct evb_ring *r, uint64_t pos, uint64_t waited_ns)
{
    int rc = evb_ring_unblock(r, pos, waited_ns);
    if (rc == 2)
        return 0; /* explained, but left for a writer: a read-only reader waits */
    if (rc || waited_ns < r->stall_ns + r->dead_ns)
        return rc;
    /* An unaligned position (a gating reader's garbage cursor holding a
     * producer) is no frame: name it without loading a stamp there. */
    if (pos % EVB_FRAME_ALIGN)
        return evb_err_set(-EBADMSG, "partition %u: held at position %llu, not aligned, "
                           "for %llu ms", r->partition, (unsigned long long)pos,
                           (unsigned long long)(waited_ns / 1000000u));
    /* A1: acquire, as any stamp load of a reader. */
    uint64_t st = atomic_load_explicit(&evb_ring_frame(r, pos)->stamp, memory_order_acquire);
    /* T1: acquire; lapped meanwhile is the caller's lap check's business. */
    uint64_t t = atomic_load_explicit(&r->hdr->tail.pos, memory_order_acquire);
    if (evb_stamp_is_committed(st, pos))
        return 1;
    if (pos >= t || t - pos > r->capacity)
        return 0;
    return evb_err_set(-EBADMSG, "partition %u: stamp 0x%llx at position %llu, below the "
                       "tail %llu, not committed after %llu ms and no claim covers it",
                       r->partition, (unsigned long long)st, (unsigned long long)pos,
                       (unsigned long long)t, (unsigned long long)(waited_ns / 1000000u));
}

int evb_ring_hole_check(struct evb_ring *r, struct evb_hole_timer *h, uint64_t pos)
{
    /* Acquire: a tail past POS means a claim covers it, and its intent is
     * visible (A2 again, inside evb_ring_unblock). */
    uint64_t t = atomic_load_explicit(&r->hdr->tail.pos, memory_order_acquire);
    if (pos >= t) {
        h->pos = EVB_POS_NONE; /* nothing claimed here yet: no hole */
        if (pos == t)
            return 0;
        /* Our walk only passed committed frames, whose claims moved the
         * tail past them before their stamps (acquired) said so, and seeks
         * land at or below the tail: coherence lets no later load of the
         * tail see less. A tail below POS was moved back by hand, and
         * waiting for it to come back would be a silent stall (producers
         * would meanwhile overwrite what lies ahead of us). */
        return evb_err_set(-EBADMSG, "partition %u: the tail %llu is below position %llu, "
                           "which was reached already (the tail went back)", r->partition,
                           (unsigned long long)t, (unsigned long long)pos);
    }
    uint64_t now = evb_mono_ns();
    if (h->pos != pos) {
        h->pos = pos;
        h->since = now;
        h->next_check = now + r->dead_ns / 4;
        return 0;
    }
    if (now < h->next_check)
        return 0;
    h->next_check = now + r->dead_ns / 4;
    return evb_ring_hole_verdict(r, pos, now - h->since);
}

void evb_ring_reap_producers(struct evb_ring *r)
{
    EVB_NO_CANCEL;
    uint64_t self_pid = evb_proc_self() >> 32;
    for (uint32_t i = 0; i < EVB_RING_PRODUCER_SLOTS; i++) {
        struct evb_producer_slot *s = &r->pslots[i];
        /* P1: owner, then its pending claim and intent. */
        uint64_t owner = atomic_load_explicit(&s->owner, memory_order_acquire);
        if (!owner || (owner >> 32) == self_pid || evb_proc_alive(owner))
            continue;
        /* A dead owner's pending claim that is still a hole must be padded
         * first (by a reader or a blocked producer), so keep the slot: its
         * intent is the only record of the hole's extent. P2: acquire. */
        uint64_t pend = atomic_load_explicit(&s->pending, memory_order_acquire);
        if (pend != EVB_POS_NONE) {
            /* Never trust the slot (claim.c, pending_claim): an unaligned
             * pending is a corrupt slot; keep it (the limit scan reports
             * the ring as corrupt) and touch no frame through it. */
            if (pend % EVB_FRAME_ALIGN)
                continue;
            uint64_t tpos, toff;
            evb_ring_load_tail(r, &tpos, &toff);
            /* A pending position at or past the tail was never claimed (it
             * died before its CAS); one more than a capacity below it is
             * lapped: its bytes belong to a later claim, so there is no
             * hole left to pad and the intent records nothing we need. */
            bool gone = pend >= tpos || tpos - pend > r->capacity;
            /* A1: acquire, as a reader. */
            uint64_t st = gone ? 0 : atomic_load_explicit(&evb_ring_frame(r, pend)->stamp,
                                                          memory_order_acquire);
            bool resolved = gone || evb_stamp_is_committed(st, pend);
            /* A claim with an end pad resolves in two steps; the data part
             * decides. An intent whose data part is not a frame start in
             * this lap is garbage: keep the slot, as for any hole we
             * cannot resolve. */
            struct intent in;
            if (!gone && resolved && read_intent(s, &in) && in.pad) {
                uint64_t dp = in.pos + in.pad;
                if (dp % EVB_FRAME_ALIGN || dp >= tpos)
                    continue;
                /* A1 again, for the data part. */
                uint64_t st2 = atomic_load_explicit(&evb_ring_frame(r, dp)->stamp,
                                                    memory_order_acquire);
                resolved = evb_stamp_is_committed(st2, dp);
            }
            if (!resolved)
                continue;
        }
        /* P1: free the dead owner's lease; the whole word must still
         * match. Failure: the slot changed hands, nothing read: relaxed. */
        if (atomic_compare_exchange_strong_explicit(&s->owner, &owner, 0,
                                                    memory_order_acq_rel,
                                                    memory_order_relaxed))
            retire(r);
    }
}

/*
 * Events of the claims below the tail (TAIL_POS, TAIL_OFFSET: one load)
 * that are still open: made, neither committed nor padded. A statistic
 * for bus/stat.c, which counts as published every offset below the tail
 * that is neither aborted nor open. Slots are hostile: an intent outside
 * the lap below the tail, or whose offsets the tail has not handed out,
 * counts nothing; a torn one is a claim being made now, above TAIL_POS.
 */
uint64_t evb_ring_open_events(struct evb_ring *r, uint64_t tail_pos, uint64_t tail_offset)
{
    uint64_t open = 0;
    for (uint32_t i = 0; i < EVB_RING_PRODUCER_SLOTS; i++) {
        struct evb_producer_slot *s = &r->pslots[i];
        /* Relaxed: a hint to skip free slots; read_intent decides. */
        if (!atomic_load_explicit(&s->owner, memory_order_relaxed))
            continue;
        struct intent in;
        if (!read_intent(s, &in) || in.pos >= tail_pos || tail_pos - in.pos > r->capacity)
            continue;
        /* in.pos < tail_pos, so no overflow below. */
        uint64_t dp = in.pos + in.pad;
        if (dp >= tail_pos || dp % EVB_FRAME_ALIGN || in.offset >= tail_offset ||
            in.events > tail_offset - in.offset)
            continue;
        /* A1: acquire, as a reader; the data part's stamp decides. */
        uint64_t st = atomic_load_explicit(&evb_ring_frame(r, dp)->stamp, memory_order_acquire);
        if (!evb_stamp_is_committed(st, dp))
            open += in.events;
    }
    return open;
}
