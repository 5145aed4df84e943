/*
 * queue.c - queue groups: members compete per event, not per partition,
 * and every event is acknowledged on its own (group_format.h has the
 * picture). This file is the protocol on a partition's queue head and
 * window of slots; consumer_queue.c reads the events and hands them out.
 *
 *   take     fetch {pos, qseq} names the next event nobody took. A member
 *            reads the event there, claims slot qseq % window by one CAS
 *            of {seq, pos} from the previous lap's pair to {qseq + 1,
 *            event position} (all takers of qseq expect the same pair:
 *            one wins), publishes the slot's state {member, count 1,
 *            in flight, deadline} and moves fetch past the event. A
 *            member that finds the slot claimed and fetch not moved yet
 *            moves fetch on itself (the event's end is in the log for
 *            anyone to read), so a taker that dies between the steps
 *            blocks nobody.
 *   retake   an event in flight whose member is gone or whose deadline
 *            passed, or nacked and due, is taken again by one CAS of the
 *            slot's {control, deadline}, its count + 1. A slot claimed
 *            whose state still names the previous lap (the taker died
 *            before publishing it, or is about to) is taken by the same
 *            CAS the taker would make: exactly one of them delivers.
 *   ack      one CAS of {control, deadline} from ours-in-flight to acked;
 *            then whoever acked the event at the floor moves the floor
 *            past every acked event after it (CAS of {pos, qseq}). A
 *            member killed between the two steps leaves the floor on an
 *            acked event: every retake scan (a take that finds the
 *            window full asks for one) moves it on first, so nobody
 *            waits for an ack that already happened.
 *
 * Ordering edges (labels used at each site):
 *
 *   V1  a slot's {seq, pos} claim, its state CAS and every fetch or
 *       floor CAS are 16-byte CASes, full barriers (shm/arch.h): a member
 *       that sees the new pair sees what the writer did before.
 *   V2  pairs are loaded as two acquire loads and the first word again
 *       (consistent unless the pair moved, which the CAS that follows
 *       catches); acquire so that a slot's state is read after its claim.
 *   V3  counters: relaxed, for display.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bus_internal.h"
#include "group.h"
#include "group_format.h"

/* Deadlines: wall-clock ms, read from the coarse clock (a few ns, a tick
 * of resolution, far finer than any ack_wait). */
static uint64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* V2: a pair written by one 16-byte CAS, read consistently. */
static void load_pair(_Atomic uint64_t *w, uint64_t *a, uint64_t *b)
{
    for (;;) {
        *a = atomic_load_explicit(&w[0], memory_order_acquire);
        *b = atomic_load_explicit(&w[1], memory_order_acquire);
        if (atomic_load_explicit(&w[0], memory_order_acquire) == *a)
            return;
    }
}

static struct evb_queue_head *head(const struct evb_group *g, uint32_t p)
{
    return evb_queue_head(g->f, g->nparts, p);
}

/* Floor and fetch as of one moment: both only grow, so a floor that did
 * not move while fetch was read pairs with that fetch. False when the
 * floor moved under every try: then the floor read may lag the fetch read
 * by more than the window, which callers must not take for damage (the
 * pairs are still each whole, and the floor is at most the fetch). */
static bool load_window(struct evb_queue_head *q, uint64_t *lp, uint64_t *ls, uint64_t *fp,
                        uint64_t *fs)
{
    for (int tries = 0; tries < 64; tries++) {
        uint64_t lp2, ls2;
        load_pair(&q->floor_pos, lp, ls);
        load_pair(&q->fetch_pos, fp, fs);
        load_pair(&q->floor_pos, &lp2, &ls2);
        if (lp2 == *lp && ls2 == *ls)
            return true;
    }
    return false;
}

static struct evb_queue_slot *slot_of(const struct evb_group *g, struct evb_queue_head *q,
                                      uint64_t qseq)
{
    return &evb_queue_slots(q)[qseq & (g->f->h.window - 1)];
}

/* The lap a slot's state is for: qseq / window, plus one so that the
 * zeroed state of a new file names no event. */
static uint16_t lap_of(const struct evb_group *g, uint64_t qseq)
{
    return (uint16_t)(qseq / g->f->h.window + 1);
}

static int damaged(const struct evb_group *g, uint32_t p, const char *what)
{
    return evb_err_set(-EBADMSG, "group %s of topic %s, partition %u: %s (damaged group "
                       "file)", g->name, g->topic, p, what);
}

bool evb_queue_fetch(const struct evb_group *g, uint32_t p, uint64_t *pos, uint64_t *qseq)
{
    struct evb_queue_head *q = head(g, p);
    load_pair(&q->fetch_pos, pos, qseq);
    return *pos != EVB_GRP_POS_NONE;
}

bool evb_queue_floor(const struct evb_group *g, uint32_t p, uint64_t *pos, uint64_t *off)
{
    struct evb_queue_head *q = head(g, p);
    uint64_t s;
    load_pair(&q->floor_pos, pos, &s);
    *off = EVB_FRAME_NO_OFFSET;
    return *pos != EVB_GRP_POS_NONE;
}

int evb_queue_start(struct evb_group *g, uint32_t p, uint64_t pos, uint64_t *fetch)
{
    struct evb_queue_head *q = head(g, p);
    uint64_t fp, fs, lp, ls;
    load_pair(&q->floor_pos, &lp, &ls);
    if (lp == EVB_GRP_POS_NONE) {
        /* V1: the first member sets where the queue starts; a racer's
         * start loses and takes the winner's. */
        evb_cas128(&q->floor_pos, lp, ls, pos, 0);
        load_pair(&q->floor_pos, &lp, &ls);
    }
    load_pair(&q->fetch_pos, &fp, &fs);
    if (fp == EVB_GRP_POS_NONE) {
        evb_cas128(&q->fetch_pos, fp, fs, lp, ls);
        load_pair(&q->fetch_pos, &fp, &fs);
    }
    bool whole = load_window(q, &lp, &ls, &fp, &fs);
    if (lp % EVB_FRAME_ALIGN || fp % EVB_FRAME_ALIGN || fp < lp || fs < ls ||
        (whole && fs - ls > g->f->h.window))
        return damaged(g, p, "its fetch and floor cursors contradict each other");
    *fetch = fp;
    return 0;
}

/* WHAT found in queue P: damage, or -ESTALE for a member whose group file
 * was rebuilt since it joined (renumbered words met with old ones). */
static int damaged_unless_rebuilt(const struct evb_group *g, uint32_t p, const char *what)
{
    return evb_group_rebuilt(g) ? -ESTALE : damaged(g, p, what);
}

int evb_queue_fetch_check(const struct evb_group *g, uint32_t p, uint64_t fp, uint64_t tail)
{
    /* Fetch is the end of an event taken from the partition, which the
     * tail passed before anyone could read it (and the tail never goes
     * back but in a rebuild, whose reset brings fetch within the log):
     * fetch past the tail is damage. A member left waiting there would
     * never see the partition's next events, and say nothing. */
    if (fp % EVB_FRAME_ALIGN == 0 && fp <= tail)
        return 0;
    char text[128];
    if (fp % EVB_FRAME_ALIGN)
        snprintf(text, sizeof text, "its fetch position %llu is no event's end (not %u-byte "
                 "aligned)", (unsigned long long)fp, EVB_FRAME_ALIGN);
    else
        snprintf(text, sizeof text, "its fetch position %llu is past the partition's end %llu",
                 (unsigned long long)fp, (unsigned long long)tail);
    return damaged_unless_rebuilt(g, p, text);
}

/* Move fetch from {POS, QSEQ} past the event ending at END. */
static void fetch_on(struct evb_queue_head *q, uint64_t pos, uint64_t qseq, uint64_t end)
{
    /* V1: one CAS; failing means someone moved it already. */
    evb_cas128(&q->fetch_pos, pos, qseq, end, qseq + 1);
}

int evb_queue_take(struct evb_group *g, uint32_t p, uint64_t pos, uint64_t qseq,
                   uint64_t ev_pos, uint64_t end)
{
    struct evb_queue_head *q = head(g, p);
    uint64_t lp, ls;
    load_pair(&q->floor_pos, &lp, &ls);
    if (qseq - ls >= g->f->h.window)
        /* Full: wait for acks. Or a floor left on acked events by a
         * member killed before it moved it: the retake scan this answer
         * asks for (consumer_queue.c) moves it on. */
        return -ENOSPC;
    struct evb_queue_slot *s = slot_of(g, q, qseq);
    uint64_t ss, sp;
    load_pair(&s->seq, &ss, &sp);
    if (ss == qseq + 1) {
        /* Claimed by another member that has not moved fetch yet. */
        fetch_on(q, pos, qseq, end);
        return -EAGAIN;
    }
    uint64_t prev = qseq >= g->f->h.window ? qseq + 1 - g->f->h.window : 0;
    if (ss != prev) {
        /* Our view of fetch is stale, or the slot holds what no lap can
         * have put there: with fetch still where we saw it, that is
         * damage, not something to retry forever. */
        uint64_t fp2, fs2;
        load_pair(&q->fetch_pos, &fp2, &fs2);
        if (fp2 == pos && fs2 == qseq) {
            load_pair(&s->seq, &ss, &sp);
            if (ss != prev && ss != qseq + 1)
                return evb_err_set(-EBADMSG, "group %s of topic %s, partition %u: the slot "
                                   "of event %llu holds event %llu (damaged group file)",
                                   g->name, g->topic, p, (unsigned long long)qseq,
                                   (unsigned long long)(ss - 1));
        }
        return -EAGAIN;
    }
    uint64_t ctl, dl;
    load_pair(&s->ctl, &ctl, &dl);
    /* Tests stop a member here, after its caller's look (J7). */
    EVB_CRASH_POINT("queue.claim");
    /* V1: the claim; all takers of qseq expect the same pair. */
    if (!evb_cas128(&s->seq, ss, sp, qseq + 1, ev_pos)) {
        fetch_on(q, pos, qseq, end);
        return -EAGAIN;
    }
    EVB_CRASH_POINT("queue.claimed");
    /* J7 (group.c): the topic rebuilt since our caller looked? Then our
     * claim came before the reset, which renumbered it away, or it met a
     * renumbered slot, which our loads saw after the bump: publish
     * nothing and leave fetch alone. */
    if (evb_group_rebuilt(g))
        return -ESTALE;
    uint64_t mine = EVB_QS_CTL(g->id, lap_of(g, qseq), 1, EVB_QS_INFLIGHT);
    /* V1: publish the state, from what the previous lap left. A retaker
     * that found the claim unpublished made the same CAS first: then the
     * event is its, not ours. */
    bool ours = evb_cas128(&s->ctl, ctl, dl, mine, real_ms() + g->f->h.ack_wait_ms);
    if (ours)
        EVB_CRASH_POINT("queue.taken");
    fetch_on(q, pos, qseq, end);
    /* J7: rebuilt since the look above, our CASes met the renumbered
     * queue and did nothing there; the event is of the old life. */
    if (ours && evb_group_rebuilt(g))
        return -ESTALE;
    return ours ? 0 : -EAGAIN;
}

static bool present(const uint32_t *ids, uint32_t n, uint32_t id)
{
    for (uint32_t k = 0; k < n; k++)
        if (ids[k] == id)
            return true;
    return false;
}

/* Move the floor past every acked event at it. The acker of the event at
 * the floor does it right after its ack; anyone may, and the retake scan
 * does, for an acker killed between its ack and this: the ack is in the
 * slot for all to see, and no later ack need ever come to move the floor
 * over it (max_in_flight 1, every event of a full window acked, or
 * nothing left to take). */
static void floor_on(struct evb_group *g, struct evb_queue_head *q)
{
    for (;;) {
        uint64_t lp, ls, fp, fs;
        /* V2: acquire pairs; the slot read after the floor and fetch that
         * name it. */
        load_pair(&q->floor_pos, &lp, &ls);
        load_pair(&q->fetch_pos, &fp, &fs);
        if (lp == EVB_GRP_POS_NONE || fp == EVB_GRP_POS_NONE || ls >= fs)
            return;
        struct evb_queue_slot *s = slot_of(g, q, ls);
        uint64_t ss, sp, ctl, dl;
        load_pair(&s->seq, &ss, &sp);
        load_pair(&s->ctl, &ctl, &dl);
        if (ss != ls + 1 || EVB_QS_LAP(ctl) != lap_of(g, ls) ||
            EVB_QS_STATE(ctl) != EVB_QS_ACKED)
            return;
        /* The new floor is the next event's position: its slot's, or
         * fetch's when it is the next to take. */
        uint64_t np;
        if (ls + 1 == fs) {
            np = fp;
        } else {
            struct evb_queue_slot *n = slot_of(g, q, ls + 1);
            uint64_t ns, npos;
            load_pair(&n->seq, &ns, &npos);
            if (ns != ls + 2)
                return; /* not written yet: its taker moves the floor later */
            np = npos;
        }
        /* V1: one CAS; failing means someone moved it, look again. */
        evb_cas128(&q->floor_pos, lp, ls, np, ls + 1);
    }
}

/*
 * Event QS's slot, between the floor and fetch when the retake scan read
 * them, names another event, or names QS with a state word no step of
 * QS's life leaves (WHAT says which). Legitimately only because the slot
 * moved on to a later lap: then the floor is past QS now (a later lap's
 * take, or the retake of its unpublished claim, needs the floor so; a
 * rebuild's reset renumbers the floor before any slot, so a member of the
 * old life scanning old numbers sees it past QS too), and the event is
 * skipped (0). A floor still at or below QS means the slot lost its
 * event: damage, not an event to skip for good (found by the cold attack:
 * one flipped byte of a slot's event number, then of its state word's
 * lap, each lost that event with no error anywhere); or, for a member
 * whose group file was rebuilt since it joined (it read renumbered
 * cursors over slots not renumbered yet), -ESTALE.
 */
static int slot_moved_on(const struct evb_group *g, uint32_t p, struct evb_queue_head *q,
                         uint64_t qs, const char *what)
{
    uint64_t lp, ls;
    load_pair(&q->floor_pos, &lp, &ls);
    if (ls > qs)
        return 0;
    char text[160];
    snprintf(text, sizeof text, "the slot of event %llu, between the floor and fetch, %s",
             (unsigned long long)qs, what);
    return damaged_unless_rebuilt(g, p, text);
}

/* What event QS's slot says, as a retake scan reads it. */
enum slot_says { SLOT_MOVED_ON, SLOT_UNPUBLISHED, SLOT_IN_FLIGHT, SLOT_SETTLED };

/*
 * Read event QS's slot, QS between the floor {LP, LS} and fetch (at
 * position FP) as last read, the slots from LS on read in order: its
 * position into *SP and state pair into *CTL, *DL, and what they say (a
 * claim not published yet, in flight, acked or waiting); SLOT_MOVED_ON
 * for a slot that moved on to a later lap (skip it); -EBADMSG (or
 * -ESTALE) for a slot that lost its event (slot_moved_on).
 *
 * STRICT (the stat's look): also positions off alignment, below the
 * floor's, or that do not rise from slot to slot below fetch's (*BELOW:
 * the last slot's that holds its event, LP before the first). Events are
 * taken in log order, but a queue that fell behind retention can break
 * that legitimately: two takers of one fetch may read different events,
 * one of them through a removed segment's open file (found by a review),
 * so running members check a position only when they retake its event
 * (evb_queue_retake); the stat reports the order.
 */
static int slot_read(const struct evb_group *g, uint32_t p, struct evb_queue_head *q,
                     uint64_t lp, uint64_t ls, uint64_t fp, uint64_t qs, bool strict,
                     uint64_t *below, uint64_t *sp, uint64_t *ctl, uint64_t *dl)
{
    struct evb_queue_slot *s = slot_of(g, q, qs);
    uint64_t ss;
    load_pair(&s->seq, &ss, sp);
    int rc;
    if (ss != qs + 1) {
        rc = slot_moved_on(g, p, q, qs, "holds another event");
        return rc ? rc : SLOT_MOVED_ON;
    }
    if (strict && (*sp % EVB_FRAME_ALIGN || *sp < lp || (qs > ls && *sp <= *below) || *sp >= fp))
        return damaged_unless_rebuilt(g, p, "a slot between the floor and fetch names a "
                                      "position out of the log's order");
    *below = *sp;
    load_pair(&s->ctl, ctl, dl);
    uint16_t lap = lap_of(g, qs);
    uint8_t st = EVB_QS_STATE(*ctl);
    /* Claimed, state not published: the slot still shows the previous
     * lap's acked event. The taker died between the two steps, or is
     * about to publish. */
    if (EVB_QS_LAP(*ctl) == (uint16_t)(lap - 1) && (st == EVB_QS_ACKED || *ctl == 0))
        return SLOT_UNPUBLISHED;
    if (EVB_QS_LAP(*ctl) == lap && st == EVB_QS_INFLIGHT)
        return SLOT_IN_FLIGHT;
    if (EVB_QS_LAP(*ctl) == lap && (st == EVB_QS_WAIT || st == EVB_QS_ACKED))
        return SLOT_SETTLED;
    /* No state a take, retake, ack, nack or dead-letter of this event
     * leaves: the slot moved on to a later lap since we loaded its seq
     * (this event was acked meanwhile), or its state word lost the event
     * (one flipped byte of its lap, say). */
    rc = slot_moved_on(g, p, q, qs, "has a state of no lap of its event");
    return rc ? rc : SLOT_MOVED_ON;
}

/*
 * The slot just below the floor LS: the floor passes acked events only,
 * so one that still holds event LS - 1 holds it acked (or the next lap's
 * claim took it since). One in flight there means the floor's event
 * number jumped over events nobody acked, which every member would skip
 * for good (found by the second cold attack: a flipped floor number).
 */
static int below_floor_check(const struct evb_group *g, uint32_t p, struct evb_queue_head *q,
                             uint64_t ls)
{
    if (ls == 0)
        return 0;
    struct evb_queue_slot *s = slot_of(g, q, ls - 1);
    uint64_t ss, sp, ctl, dl;
    load_pair(&s->seq, &ss, &sp);
    if (ss != ls)
        return 0; /* moved on, or never held it (a queue that started there) */
    load_pair(&s->ctl, &ctl, &dl);
    if (EVB_QS_LAP(ctl) == lap_of(g, ls - 1) && EVB_QS_STATE(ctl) == EVB_QS_ACKED)
        return 0;
    /* A take of the next lap claims the seq before it publishes its state:
     * the seq looked at again tells that from damage. */
    load_pair(&s->seq, &ss, &sp);
    if (ss != ls)
        return 0;
    /* Claimed, state not published: a queue started at LS - 1 whose first
     * taker died; the floor passes no such event. */
    return damaged_unless_rebuilt(g, p, "the event just below the floor is not acknowledged");
}

/*
 * Event QS's slot, at or past fetch {FP, FS} as last read: a take of QS
 * expects the previous lap's pair there (or finds it claimed by a taker
 * that has not moved fetch yet). Anything else with fetch still where it
 * was is what that take will call damage (evb_queue_take).
 */
static int ahead_check(const struct evb_group *g, uint32_t p, struct evb_queue_head *q,
                       uint64_t fp, uint64_t fs, uint64_t qs)
{
    struct evb_queue_slot *s = slot_of(g, q, qs);
    uint64_t ss, sp;
    load_pair(&s->seq, &ss, &sp);
    uint64_t prev = qs >= g->f->h.window ? qs + 1 - g->f->h.window : 0;
    if (ss == prev || ss == qs + 1)
        return 0;
    uint64_t fp2, fs2;
    load_pair(&q->fetch_pos, &fp2, &fs2);
    if (fp2 != fp || fs2 != fs)
        return 0; /* takes went on meanwhile: judged by the next look */
    load_pair(&s->seq, &ss, &sp);
    if (ss == prev || ss == qs + 1)
        return 0;
    char text[128];
    snprintf(text, sizeof text, "the slot of event %llu, past fetch, holds event %llu",
             (unsigned long long)qs, (unsigned long long)(ss - 1));
    return damaged_unless_rebuilt(g, p, text);
}

int evb_queue_check(const struct evb_group *g, uint32_t p, const struct evb_ring *ring)
{
    struct evb_queue_head *q = head(g, p);
    uint64_t fp, fs, lp, ls;
    /* What running members call damage (the cursors, fetch within the
     * partition, each slot between them as slot_read reads it, the slot
     * below the floor), plus what they meet only later: slot positions
     * out of the log's order, a floor past fetch, slots ahead of fetch. */
    if (!load_window(q, &lp, &ls, &fp, &fs) || fp == EVB_GRP_POS_NONE ||
        lp == EVB_GRP_POS_NONE)
        return 0;
    /* The tail after fetch, as a member's take reads them: loaded
     * before, it could be older than an event taken since (found by a
     * review). */
    uint64_t tail, toff;
    evb_ring_load_tail(ring, &tail, &toff);
    if (fs < ls || fs - ls > g->f->h.window)
        return damaged(g, p, "its fetch and floor cursors contradict each other");
    int rc = evb_queue_fetch_check(g, p, fp, tail);
    if (rc)
        return rc;
    if (lp > fp)
        return damaged(g, p, "its floor is past its fetch position");
    if ((rc = below_floor_check(g, p, q, ls)))
        return rc;
    uint64_t below = lp;
    for (uint64_t qs = ls; qs < fs; qs++) {
        uint64_t sp, ctl, dl;
        int says = slot_read(g, p, q, lp, ls, fp, qs, true, &below, &sp, &ctl, &dl);
        if (says < 0)
            return says;
    }
    /* The slots ahead of fetch, as the take that reaches each will find
     * it: the previous lap's, or claimed by a taker that has not moved
     * fetch yet. */
    for (uint64_t qs = fs; qs < ls + g->f->h.window; qs++) {
        if ((rc = ahead_check(g, p, q, fp, fs, qs)))
            return rc;
    }
    return 0;
}

int evb_queue_retake(struct evb_group *g, uint32_t p, const uint32_t *ids, uint32_t n,
                     struct evb_queue_take *t)
{
    struct evb_queue_head *q = head(g, p);
    uint64_t lp, ls, fp, fs;
    /* Tests stop a member here to rebuild the bus under its scan. */
    EVB_CRASH_POINT("queue.retake");
    /* First the floor over events acked by a member killed before it
     * moved the floor (V1/V2 as in floor_on): else a full window stays
     * full for ever, and with nothing left to take the floor holds the
     * ring (ring-only topics) and retention (durable ones) at the last
     * event such a member acked. */
    floor_on(g, q);
    if (!load_window(q, &lp, &ls, &fp, &fs) || lp == EVB_GRP_POS_NONE ||
        fp == EVB_GRP_POS_NONE)
        return -EAGAIN; /* acks moving the floor under us: scan at the next tick */
    if (fs < ls || fs - ls > g->f->h.window) {
        /* A rebuild caught between its fetch and floor CASes leaves such
         * cursors for a member of the old life (found by a review). */
        return damaged_unless_rebuilt(g, p, "its fetch and floor cursors contradict each "
                                      "other");
    }
    int rc = below_floor_check(g, p, q, ls);
    if (rc)
        return rc;
    uint64_t now = real_ms(), below = lp;
    for (uint64_t qs = ls; qs < fs; qs++) {
        struct evb_queue_slot *s = slot_of(g, q, qs);
        uint64_t sp = 0, ctl = 0, dl = 0;
        int says = slot_read(g, p, q, lp, ls, fp, qs, false, &below, &sp, &ctl, &dl);
        if (says < 0)
            return says;
        uint32_t count = EVB_QS_COUNT(ctl);
        bool due;
        if (says == SLOT_MOVED_ON) {
            continue;
        } else if (says == SLOT_UNPUBLISHED) {
            /* The CAS below decides between the taker and us. */
            due = true;
            count = 0;
        } else if (says == SLOT_IN_FLIGHT) {
            /* IDS may predate a member that joined and took this since:
             * look again before calling its owner gone (J2: its id is in
             * its slot before it took anything). */
            uint32_t m = EVB_QS_MEMBER(ctl);
            due = now >= dl || (!present(ids, n, m) && !evb_group_id_present(g, m));
        } else {
            due = EVB_QS_STATE(ctl) == EVB_QS_WAIT && now >= dl;
        }
        if (!due)
            continue;
        if (sp % EVB_FRAME_ALIGN || sp < lp)
            return damaged(g, p, "a slot names a position below the floor");
        uint32_t next = count < 255 ? count + 1 : 255;
        uint64_t mine = EVB_QS_CTL(g->id, lap_of(g, qs), next, EVB_QS_INFLIGHT);
        /* V1: one of the members that found it due wins it. */
        if (!evb_cas128(&s->ctl, ctl, dl, mine, now + g->f->h.ack_wait_ms))
            continue;
        EVB_CRASH_POINT("queue.retaken");
        /* J7: rebuilt meanwhile: deliver nothing. A slot our CAS took
         * reads as ours in flight, and we leave the group, so a member
         * of the rebuilt bus takes it again at once. */
        if (evb_group_rebuilt(g))
            return -ESTALE;
        uint32_t md = g->f->h.max_deliveries;
        if (count && (!md || next <= md))
            /* V3: relaxed counter. A retake past max_deliveries goes to
             * the dead-letter topic, not to a member: not a redelivery. */
            atomic_fetch_add_explicit(&q->redelivered, 1, memory_order_relaxed);
        *t = (struct evb_queue_take){qs, sp, next};
        return 0;
    }
    return -EAGAIN;
}

/* Event QSEQ of P, ours in flight, to STATE (acked, or waiting until
 * DEADLINE); with KEEP still ours in flight, until DEADLINE instead. */
static int cas_ours(struct evb_group *g, uint32_t p, uint64_t qseq, uint64_t pos, bool keep,
                    uint8_t state, uint64_t deadline, uint32_t back)
{
    struct evb_queue_head *q = head(g, p);
    struct evb_queue_slot *s = slot_of(g, q, qseq);
    uint64_t ss, sp, ctl, dl;
    load_pair(&s->seq, &ss, &sp);
    load_pair(&s->ctl, &ctl, &dl);
    if (ss == qseq + 1 && sp != pos)
        return evb_err_set(-EINVAL, "group %s of topic %s, partition %u: event at position "
                           "%llu is not the one this queue handed out with that token (at "
                           "%llu): an event of another group or topic?", g->name, g->topic, p,
                           (unsigned long long)pos, (unsigned long long)sp);
    if (ss != qseq + 1 || EVB_QS_LAP(ctl) != lap_of(g, qseq) ||
        EVB_QS_STATE(ctl) != EVB_QS_INFLIGHT || EVB_QS_MEMBER(ctl) != (uint32_t)g->id ||
        /* V1: ours in flight, until the CAS. */
        !evb_cas128(&s->ctl, ctl, dl,
                    keep ? ctl
                         : EVB_QS_CTL(0, lap_of(g, qseq),
                                      EVB_QS_COUNT(ctl) > back ? EVB_QS_COUNT(ctl) - back : 1,
                                      state),
                    deadline))
        return evb_err_set(-ESTALE, "group %s of topic %s, partition %u: the event is not "
                           "yours in flight: acknowledged already, or taken by another "
                           "member after ack_wait (%u ms) or your expulsion", g->name,
                           g->topic, p, g->f->h.ack_wait_ms);
    return 0;
}

/* Settle event QSEQ of P, ours in flight: to STATE (acked, or waiting
 * until DEADLINE), counted in *COUNTER. */
static int settle(struct evb_group *g, uint32_t p, uint64_t qseq, uint64_t pos, uint8_t state,
                  uint64_t deadline, _Atomic uint64_t *counter)
{
    int rc = cas_ours(g, p, qseq, pos, false, state, deadline, 0);
    if (rc)
        return rc;
    struct evb_queue_head *q = head(g, p);
    EVB_CRASH_POINT(state == EVB_QS_ACKED ? "queue.acked" : "queue.nacked");
    /* V3: relaxed counter. */
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    if (state == EVB_QS_ACKED)
        floor_on(g, q);
    return 0;
}

int evb_queue_ack(struct evb_group *g, uint32_t p, uint64_t qseq, uint64_t pos)
{
    return settle(g, p, qseq, pos, EVB_QS_ACKED, 0, &head(g, p)->acked);
}

int evb_queue_nack(struct evb_group *g, uint32_t p, uint64_t qseq, uint64_t pos,
                   uint32_t delay_ms)
{
    return settle(g, p, qseq, pos, EVB_QS_WAIT, real_ms() + delay_ms, &head(g, p)->nacked);
}

int evb_queue_hold(struct evb_group *g, uint32_t p, uint64_t qseq, uint64_t pos,
                   uint32_t extra_ms)
{
    return cas_ours(g, p, qseq, pos, true, 0, real_ms() + g->f->h.ack_wait_ms + extra_ms, 0);
}

int evb_queue_retry(struct evb_group *g, uint32_t p, uint64_t qseq, uint64_t pos,
                    uint32_t delay_ms)
{
    /* Its retake counts it again: the count stays where the take left it. */
    return cas_ours(g, p, qseq, pos, false, EVB_QS_WAIT, real_ms() + delay_ms, 1);
}

int evb_queue_dead_letter(struct evb_group *g, uint32_t p, uint64_t qseq, uint64_t pos)
{
    return settle(g, p, qseq, pos, EVB_QS_ACKED, 0, &head(g, p)->dead_lettered);
}

/* Does slot state CTL count? IN_FLIGHT: in flight (to MEMBER, 0 any);
 * else due for the dead-letter topic: waiting with max_deliveries MD
 * deliveries behind it (its next take writes the record: a last nack,
 * or a record the DLQ refused), or held while its record is written. */
static bool slot_counts(uint64_t ctl, bool in_flight, uint32_t member, uint32_t md)
{
    uint8_t st = EVB_QS_STATE(ctl);
    if (in_flight)
        return st == EVB_QS_INFLIGHT && (!member || EVB_QS_MEMBER(ctl) == member);
    return md && ((st == EVB_QS_WAIT && EVB_QS_COUNT(ctl) >= md) ||
                  (st == EVB_QS_INFLIGHT && EVB_QS_COUNT(ctl) > md));
}

/* Slots of P's window whose state slot_counts() counts. */
static uint32_t count_window(const struct evb_group *g, uint32_t p, bool in_flight,
                             uint32_t member)
{
    struct evb_queue_head *q = head(g, p);
    uint64_t lp, ls, fp, fs;
    bool whole = load_window(q, &lp, &ls, &fp, &fs);
    if (lp == EVB_GRP_POS_NONE || fs < ls || (whole && fs - ls > g->f->h.window))
        return 0;
    if (fs - ls > g->f->h.window)
        fs = ls + g->f->h.window; /* a floor that moved on: its first window */
    uint32_t md = g->f->h.max_deliveries, n = 0;
    for (uint64_t qs = ls; qs < fs; qs++) {
        struct evb_queue_slot *s = slot_of(g, q, qs);
        /* V2: acquire, one word. */
        uint64_t ctl = atomic_load_explicit(&s->ctl, memory_order_acquire);
        if (EVB_QS_LAP(ctl) == lap_of(g, qs) && slot_counts(ctl, in_flight, member, md))
            n++;
    }
    return n;
}

uint32_t evb_queue_in_flight(const struct evb_group *g, uint32_t p, uint32_t member)
{
    return count_window(g, p, true, member);
}

uint32_t evb_queue_dlq_due(const struct evb_group *g, uint32_t p)
{
    return count_window(g, p, false, 0);
}

/* The previous lap's state of event QS's slot, as a new file or an acked
 * lap leaves it (what a take of QS expects). */
static void prev_lap(uint64_t qs, uint32_t window, uint64_t *seq, uint64_t *ctl)
{
    *seq = qs >= window ? qs + 1 - window : 0;
    *ctl = qs >= window ? EVB_QS_CTL(0, qs / window, 0, EVB_QS_ACKED) : 0;
}

/* Every event number moves up by 4 windows at a rebuild: each event
 * keeps its slot, its lap goes up by 4 (evb_queue_reset). Four, not two:
 * a reset killed between its fetch and floor CASes leaves fetch 3 to 5
 * windows ahead of the floor (an old member may walk the floor up to a
 * window past the kept events meanwhile), which no queue that is not
 * half renumbered shows (fetch is at most a window ahead). */
#define EVB_QRENUM_LAPS 4u

/* Kept event NQ's state word (new numbering) from C as any stage of a
 * reset left it: its lap the old numbering's (NQ's lap - 4, or - 5 for a
 * claim never published, whose state is its previous lap's) or already
 * NQ's. So a reset killed midway and run again writes the same word. A
 * new file's first lap holds 0 for "previous lap". */
static uint64_t kept_ctl(uint64_t c, uint64_t nq, uint32_t window)
{
    uint16_t cur = (uint16_t)(nq / window + 1);
    if (c == 0)
        return EVB_QS_CTL(0, cur - 1, 0, EVB_QS_ACKED);
    uint16_t l = EVB_QS_LAP(c);
    if (l == (uint16_t)(cur - EVB_QRENUM_LAPS - 1))
        l = (uint16_t)(cur - 1);
    else if (l == (uint16_t)(cur - EVB_QRENUM_LAPS))
        l = cur;
    return EVB_QS_CTL(EVB_QS_MEMBER(c), l, EVB_QS_COUNT(c), EVB_QS_STATE(c));
}

/* Slot S of kept event NQ (new numbering): {NQ + 1, its position} and its
 * state renumbered, state first; by CAS from what it holds now, looking
 * again when a member of the old life moved it first (V1). */
static void slot_keep(struct evb_queue_slot *s, uint64_t nq, uint32_t window)
{
    for (;;) {
        uint64_t c, d;
        load_pair(&s->ctl, &c, &d);
        uint64_t want = kept_ctl(c, nq, window);
        if (c == want || evb_cas128(&s->ctl, c, d, want, d))
            break;
    }
    EVB_CRASH_POINT("queue.reset.slot_ctl");
    for (;;) {
        uint64_t ss, sp;
        load_pair(&s->seq, &ss, &sp);
        if (ss == nq + 1 || evb_cas128(&s->seq, ss, sp, nq + 1, sp))
            break;
    }
}

/* Slot S of NQ, which nobody took (new numbering): what a take of NQ
 * expects, the previous lap's, state first; by CAS as slot_keep. */
static void slot_free(struct evb_queue_slot *s, uint64_t nq, uint32_t window)
{
    uint64_t pseq, pctl;
    prev_lap(nq, window, &pseq, &pctl);
    for (;;) {
        uint64_t c, d;
        load_pair(&s->ctl, &c, &d);
        if ((c == pctl && d == 0) || evb_cas128(&s->ctl, c, d, pctl, 0))
            break;
    }
    EVB_CRASH_POINT("queue.reset.slot_ctl");
    for (;;) {
        uint64_t ss, sp;
        load_pair(&s->seq, &ss, &sp);
        if ((ss == pseq && sp == 0) || evb_cas128(&s->seq, ss, sp, pseq, 0))
            break;
    }
}

/* Put the page of F (mapped whole from its start) that holds AT on disk:
 * the reset's order on disk, which a power cut must not tear. */
static int sync_page(struct evb_grp_file *f, const void *at)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    char *base = (char *)f + (((const char *)at - (char *)f) & ~(page - 1));
    if (msync(base, page, MS_SYNC) < 0)
        return evb_err_set(-errno, "queue reset: msync: %s", strerror(errno));
    return 0;
}

/* The reset mark M of F to V, on disk. Relaxed, as evb_queue_reset says. */
static int mark_store(struct evb_grp_file *f, _Atomic uint64_t *m, uint64_t v)
{
    atomic_store_explicit(m, v, memory_order_relaxed);
    return sync_page(f, m);
}

/* Whether SP, the position a slot of the window names, can be the next
 * taken event's after PREV's (none: PREV UINT64_MAX), with the floor at LP and
 * fetch at FP: aligned, in order, between them, and not below the log's
 * END once an earlier one was at or past it (AFTER). Group files carry no
 * checksum: a damaged position must not pass for a lost event, which the
 * reset would drop. */
static bool slot_pos_ok(uint64_t sp, uint64_t prev, uint64_t lp, uint64_t fp, uint64_t end,
                        bool after)
{
    return !(sp % EVB_FRAME_ALIGN) && sp >= lp && sp < fp &&
           (prev == UINT64_MAX || sp > prev) && !(after && sp < end);
}

/* Fetch at FP after the last taken event at LAST (none: UINT64_MAX, the
 * floor at LP then): fetch is the end of that event's frame (a frame's
 * length is 32 bits), or, after a rebuild lost the events past it, the
 * log's end, a pad and the lost event's frame further at most: far under
 * 16 GiB. Else the floor itself. */
static bool fetch_pos_ok(uint64_t fp, uint64_t last, uint64_t lp)
{
    return last != UINT64_MAX ? fp - last <= (1ull << 34) : fp == lp;
}

/* The end of the events kept in [FROM, TO), slots in the numbering of
 * those numbers, into *KEND: the first whose slot names a position at or
 * past END, or TO. 0 when a slot holds another event (an old member's
 * claim at its stale fetch, after a floor walk freed that slot): look
 * again, as the scan in evb_queue_reset does; -1 when a position cannot
 * be (slot_pos_ok, floor at LP, fetch at FP): damage. */
static int kept_end(struct evb_queue_slot *slots, uint32_t window, uint64_t from, uint64_t to,
                    uint64_t lp, uint64_t fp, uint64_t end, uint64_t *kend)
{
    uint64_t prev = UINT64_MAX;
    for (uint64_t qs = from; qs < to; qs++) {
        uint64_t ss, sp;
        load_pair(&slots[qs & (window - 1)].seq, &ss, &sp);
        if (ss != qs + 1)
            return 0;
        if (!slot_pos_ok(sp, prev, lp, fp, end, false))
            return -1;
        if (sp >= end) {
            *kend = qs;
            return 1;
        }
        prev = sp;
    }
    *kend = to;
    return 1;
}

int evb_queue_reset(struct evb_grp_file *f, uint32_t nparts, uint32_t p, uint64_t end)
{
    struct evb_queue_head *q = evb_queue_head(f, nparts, p);
    uint32_t window = f->h.window; /* checked: a power of two (evb_group_check) */
    struct evb_queue_slot *slots = evb_queue_slots(q);
    /* Every event number moves up by D, a multiple of the window (each
     * event keeps its slot, its lap goes up by 4): whatever a member of
     * the bus's previous life loaded before the rebuild (a slot's pair,
     * fetch, the floor, an ack token) matches nothing the rebuilt queue
     * holds, so none of its CASes lands after this (J7, group.c). The
     * numbers are the queue's own; positions and offsets do not move.
     * Order: fetch, the floor, the slots; a reset killed after any step
     * is finished by the next one (run again by the next open, the topic
     * not made yet): from where it stopped, or, when only slots of no
     * kept event were left, by renumbering once more, which gives the
     * same queue D further on. Only a reset that did not finish may be
     * taken up: the partition's queue_reset mark says so, set (and on
     * disk) before our first change, cleared by our caller once the whole
     * file is on disk (evb_queue_reset_done); without it, words one
     * numbering apart are damage.
     *
     * The mark: relaxed. Resets run one at a time (the rebuild holds
     * every partition's flush lock, restore.c), so a mark a reset finds
     * set was left by one that died; the CASes after our store are full
     * barriers, so it is in memory before any of our changes. */
    _Atomic uint64_t *mark = &f->p[p].queue_reset;
    bool unfinished = atomic_load_explicit(mark, memory_order_relaxed) != 0;
    bool marked = false; /* by us, nothing changed yet */
    const uint64_t D = (uint64_t)EVB_QRENUM_LAPS * window;
    uint64_t lp, ls, fp, fs, kend, fdst;
    bool floor_done = false;
    int rc = 0;
    for (int tries = 0;; tries++) {
        /* Every return of this loop comes before our first change: a mark
         * we set goes as it came (at out). */
        if (tries == 64) {
            rc = evb_err_set(-EAGAIN, "queue of partition %u: its cursors kept moving "
                             "under the rebuild (left as it is)", p);
            goto out;
        }
        if (!load_window(q, &lp, &ls, &fp, &fs))
            continue; /* the floor moving under every look (old members' acks) */
        /* A queue nobody started holds nothing. */
        if (fp == EVB_GRP_POS_NONE)
            goto out;
        if (lp == EVB_GRP_POS_NONE || fs < ls || (lp > fp && fs - ls <= window)) {
            rc = evb_err_set(-EBADMSG, "queue of partition %u: its fetch and floor cursors "
                             "contradict each other (left as it is)", p);
            goto out;
        }
        if (fs - ls > window) {
            /* A reset killed after its fetch CAS: fetch renumbered (kend +
             * D, at most the log's end), the floor not yet; an old member
             * may have walked it up to a window past kend since, and past
             * fetch's position then (the floor loop below clamps both). */
            if (!unfinished || fs - ls < D - window || fs - ls > D + window) {
                rc = evb_err_set(-EBADMSG, "queue of partition %u: its fetch and floor "
                                 "cursors contradict each other (left as it is)", p);
                goto out;
            }
            /* The killed reset kept events below its end; this run's may
             * be lower (a power cut since took bytes of the log that were
             * not on disk): those past it are lost, and fetch comes back
             * to the first of them. The slots are in the old numbering. */
            int k = kept_end(slots, window, ls, fs - D, lp, fp, end, &kend);
            if (k < 0) {
                rc = evb_err_set(-EBADMSG, "queue of partition %u: a slot between its floor "
                                 "and fetch names a position out of order (left as it is)", p);
                goto out;
            }
            if (!k) {
                if (tries < 63)
                    continue;
                rc = evb_err_set(-EBADMSG, "queue of partition %u: a slot between its floor "
                                 "and fetch holds another event (left as it is)", p);
                goto out;
            }
            fdst = fp <= end ? fp : end;
            if ((kend != fs - D || fdst != fp) &&
                !evb_cas128(&q->fetch_pos, fp, fs, fdst, kend + D))
                continue;
            break;
        }
        /* The events kept: those taken wholly below the end. The log's end
         * is a frame boundary of what was there, so every event before
         * the first one taken at or past it ends at or below it. A slot
         * one numbering behind (QS - D) was left by a reset killed after
         * its floor CAS: the cursors are renumbered, the slots are next. */
        kend = fs;
        bool resumed = false, moved = false, bad = false;
        uint64_t last = UINT64_MAX;
        for (uint64_t qs = ls; qs < fs; qs++) {
            uint64_t ss, sp;
            load_pair(&slots[qs & (window - 1)].seq, &ss, &sp);
            if (unfinished && qs >= D && ss == qs + 1 - D) {
                resumed = true;
            } else if (ss != qs + 1) {
                moved = true; /* an old member's claim or ack meanwhile, or damage */
                break;
            }
            if (!slot_pos_ok(sp, last, lp, fp, end, kend != fs)) {
                bad = true;
                break;
            }
            last = sp;
            if (sp >= end && kend == fs)
                kend = qs;
        }
        if (!moved && (bad || !fetch_pos_ok(fp, last, lp))) {
            rc = evb_err_set(-EBADMSG, "queue of partition %u: a slot or fetch between its "
                             "floor and fetch names a position out of order (left as it is)",
                             p);
            goto out;
        }
        if (moved) {
            if (tries < 63)
                continue;
            rc = evb_err_set(-EBADMSG, "queue of partition %u: a slot between its floor and "
                             "fetch holds another event (left as it is)", p);
            goto out;
        }
        if (resumed) {
            /* Cursors renumbered, slots under way: as above, events past
             * this run's end are lost, fetch (and a floor on the first of
             * them, first: never past fetch) come back. The old life's
             * claims no longer match fetch; a floor walk over acked slots
             * makes a CAS fail, and we look again. */
            fdst = fp <= end ? fp : end;
            if (kend != fs || fdst != fp) {
                if (ls == kend && !evb_cas128(&q->floor_pos, lp, ls, fdst, kend))
                    continue;
                if (!evb_cas128(&q->fetch_pos, fp, fs, fdst, kend))
                    continue;
            }
            floor_done = true;
            break;
        }
        /* Fetch first, from the pair we read: a member of the old life
         * that moved it since makes us read it all again. Once it is
         * renumbered, nothing of the old life moves it (V1). */
        fdst = fp <= end ? fp : end;
        if (!unfinished && !marked) {
            /* On disk before any change it stands for. */
            marked = true;
            if ((rc = mark_store(f, mark, 1)))
                goto out;
            EVB_CRASH_POINT("queue.reset.marked");
        }
        if (evb_cas128(&q->fetch_pos, fp, fs, fdst, kend + D)) {
            EVB_CRASH_POINT("queue.reset.fetch");
            break;
        }
    }
    uint64_t nls; /* the new floor's event (new numbering) */
    if (floor_done) {
        nls = ls;
    } else {
        /* The floor: an old member's floor move (its acks are of kept
         * events, or of lost ones past the end) may land before ours;
         * then from what it is now. Never past the kept events: those
         * past the end are gone. */
        for (;;) {
            uint64_t l2, s2;
            load_pair(&q->floor_pos, &l2, &s2);
            uint64_t nl = l2 <= end ? l2 : end, ns = s2 < kend ? s2 : kend;
            if (s2 >= kend)
                nl = fdst; /* no kept event left below it: the floor meets fetch (an
                            * old member's walk put it on the position of the first
                            * event past a pad, at fetch's number or past it) */
            if (evb_cas128(&q->floor_pos, l2, s2, nl, ns + D)) {
                nls = ns + D;
                break;
            }
        }
        kend += D;
        EVB_CRASH_POINT("queue.reset.floor");
    }
    /* The cursors on disk before any slot: a power cut may then leave
     * renumbered cursors with old slots, which the next rebuild takes up
     * (the mark is set), never renumbered slots under old cursors. */
    if ((rc = sync_page(f, q)))
        return rc; /* the mark stays: the next rebuild goes on from here */
    /* Each slot of the new window [nls, nls + window): a kept event's
     * renumbered, any other the previous lap's of its new number. */
    for (uint64_t nq = nls; nq < nls + window; nq++) {
        struct evb_queue_slot *s = &slots[nq & (window - 1)];
        if (nq < kend)
            slot_keep(s, nq, window);
        else
            slot_free(s, nq, window);
        EVB_CRASH_POINT("queue.reset.slot");
    }
    return 1;
out:
    if (marked) /* nothing changed: as it was (a failed msync leaves it set, harmless) */
        mark_store(f, mark, 0);
    return rc;
}

void evb_queue_reset_done(struct evb_grp_file *f, uint32_t p)
{
    /* On disk too, so that a power cut does not leave a stale mark, under
     * which the next rebuild would take damage for a reset to finish. A
     * failed msync leaves it so; the reset itself is on disk already. */
    mark_store(f, &f->p[p].queue_reset, 0);
}
