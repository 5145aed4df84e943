/*
 * durable_wait.c - the durable position of a partition: the flusher
 * publishes it and records failures (flush_error); producers that asked
 * for durability wait for it (S2, E1 in durable.h's table); and the checks
 * of the ring's flushed and durable words against its tail, made where a
 * flusher starts (takeover, each round) and where a waiter would believe
 * them. What gets synced and when is flush_round.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "flush_internal.h"
#include "safe_open.h"
#include "spin.h"

/*
 * How many rounds may be in flight at once (of the ring's two sync_lead
 * words). One: with two, 8 sync producers on this machine's disk ran no
 * faster (11-12 k events/s either way) and made 1.5 times the fdatasyncs,
 * since a second round started for whatever was written meanwhile
 * instead of gathering it (perf/RESULTS.md, issue 13). The flusher keeps
 * writing during a round either way, so the next one is ready to start.
 */
#define EVB_SYNC_LEADS 1

/*
 * What the flusher publishes can only lie in [base_pos, tail], 8-aligned,
 * with flushed no more than a capacity behind the tail (producers gate on
 * it), and durable never past flushed (evb_durable_publish_max holds it
 * there: under O_DIRECT a write that ends inside a frame is synced while
 * flushed stays on the frame boundary below it, and that frame counts as
 * durable only once flushed passes it). Anything else was written by someone else: a flusher that trusted it
 * would open segments over the whole range between (a huge flushed meant
 * ~2.5e13 names), and producers would wait on a limit that never moves.
 */
static int bad_word(const struct evb_ring *r, const char *name, uint64_t v, uint64_t tail)
{
    return evb_err_set(-EBADMSG, "partition %u: %s %llu does not fit the tail %llu (base "
                       "%llu, capacity %llu)", r->partition, name, (unsigned long long)v,
                       (unsigned long long)tail, (unsigned long long)r->base_pos,
                       (unsigned long long)r->capacity);
}

int evb_flush_check_words(const struct evb_ring *r, uint64_t flushed, uint64_t durable,
                          uint64_t seg_bytes)
{
    /* T1 (shm/claim.c): acquire, after the caller's acquire loads of
     * flushed and durable: both only grow and never pass the tail, so a
     * tail loaded after them is at least as far. */
    uint64_t t = atomic_load_explicit(&r->hdr->tail.pos, memory_order_acquire);
    if (t % EVB_FRAME_ALIGN || t < r->base_pos)
        return bad_word(r, "tail", t, t);
    if (flushed % EVB_FRAME_ALIGN || flushed < r->base_pos || flushed > t ||
        t - flushed > r->capacity)
        return bad_word(r, "flushed", flushed, t);
    if (durable % EVB_FRAME_ALIGN || durable < r->base_pos || durable > t)
        return bad_word(r, "durable", durable, t);
    /* G1: relaxed, a hint; only its range is checked. Retention may name
     * a segment built ahead, so up to a segment past flushed is fine. */
    uint64_t ls = atomic_load_explicit(&r->hdr->log_start_pos, memory_order_relaxed);
    if (ls % EVB_FRAME_ALIGN || ls > flushed + seg_bytes)
        return bad_word(r, "log start", ls, t);
    return 0;
}

int evb_flush_check_tail(struct fpart *fp)
{
    const struct evb_ring *r = fp->r;
    /* T1: acquire, as any tail snapshot. */
    uint64_t t = atomic_load_explicit(&r->hdr->tail.pos, memory_order_acquire);
    /* written is published as flushed (or a frame boundary below it), so
     * the same bounds hold for it. */
    if (t % EVB_FRAME_ALIGN || t < fp->written || t - fp->written > r->capacity)
        return evb_err_set(-EBADMSG, "partition %u: tail %llu cannot follow the flushed "
                           "position %llu (capacity %llu); flushing stopped", r->partition,
                           (unsigned long long)t, (unsigned long long)fp->written,
                           (unsigned long long)r->capacity);
    return 0;
}

/* S2 (the sync doorbell) and E1 (flush_error) are in durable.h's table. */
void evb_flush_publish_durable(struct evb_ring *r, uint64_t pos)
{
    /* S2: seq_cst store of durable, before the bell below; pairs with the
     * waiter's seq_cst load of durable after its count and its read of the
     * bell (Dekker with sync_waiters). Never below what a leader (S3)
     * published. */
    uint64_t was = evb_durable_publish_max(r, pos);
    /* Whether or not a waiter is counted: a waiter SIGKILLed before it
     * could decrement sync_waiters (which then only asks ASYNC flushers to
     * sync at once) costs no lost wake-up. S2: release bump, S5: the
     * classes that may act. */
    evb_sync_ring(r, was < pos ? was : pos);
}

void evb_flush_tell(struct evb_ring_hdr *h, int err)
{
    /* E1: relaxed store, published by the two release bumps after it:
     * sync_bell for sync waiters, flush_bell for producers blocked on a
     * full ring (producer.c); each loads the error (relaxed) after its
     * acquire load of its bell, so it sees an error stored before any bump
     * it read, and a bump after its read ends its sleep. */
    atomic_store_explicit(&h->flush_error, err, memory_order_relaxed);
    evb_bell_ring(&h->sync_bell);
    evb_bell_ring(&h->flush_bell);
}

void evb_flush_fail(struct fpart *fp, int err)
{
    fp->failed = err;
    evb_flush_error_note(fp, err);
    /* S2: seq_cst store of durable as in evb_flush_publish_durable(); its
     * bell is rung by evb_flush_tell() with the error's. */
    evb_durable_publish_max(fp->r, fp->synced);
    evb_flush_tell(fp->r->hdr, err);
}

/* A durable word at or past a waiter's target is believed only if it can
 * be one (aligned, not past the tail): a garbage one must not tell a
 * producer its events are on disk. */
static int durable_reached(const struct evb_ring *r, uint64_t d)
{
    /* T1: acquire, after the caller's load of durable (which never passes
     * the tail), so the tail is at least as far. */
    uint64_t t = atomic_load_explicit(&r->hdr->tail.pos, memory_order_acquire);
    if (d % EVB_FRAME_ALIGN || d > t)
        return bad_word(r, "durable", d, t);
    /* Nothing is published durable past flushed (evb_durable_publish_max).
     * F1: acquire, after durable: whoever stored D had seen flushed at D
     * or past it, so this load sees at least that far. A word past it was
     * written by someone else: believed, it would acknowledge events no
     * flusher wrote (a stopped flusher leaves flushed where it was). */
    uint64_t f = atomic_load_explicit(&r->hdr->flushed, memory_order_acquire);
    if (d > f)
        return evb_err_set(-EBADMSG, "partition %u: durable %llu is past the flushed "
                           "position %llu: written by another process", r->partition,
                           (unsigned long long)d, (unsigned long long)f);
    return 0;
}

int evb_durable_poll(const struct evb_ring *r, uint64_t *pos, int *err)
{
    const struct evb_ring_hdr *h = r->hdr;
    /* E1: the bell with acquire first, so an error stored before any bump
     * it shows is seen by the relaxed load below; one stored after is
     * seen by a later poll. */
    (void)atomic_load_explicit(&h->sync_bell, memory_order_acquire);
    /* S2: acquire pairs with the stores of durable (the flusher's and
     * leaders', evb_durable_publish_max); the caller may act on it at
     * once, as a waiter does. */
    uint64_t d = atomic_load_explicit(&h->durable, memory_order_acquire);
    int rc = durable_reached(r, d);
    if (rc)
        return rc;
    /* E1: after the bell's acquire above. */
    *err = evb_flush_error_load(r);
    *pos = d;
    return 0;
}

int evb_flush_error_load(const struct evb_ring *r)
{
    /* E1: relaxed, after the caller's acquire load of a bell. */
    int32_t e = atomic_load_explicit(&r->hdr->flush_error, memory_order_relaxed);
    if (e == 0 || (e < 0 && e >= -4095))
        return e;
    /* Not an errno: a hostile or damaged word. Returned raw, a positive
     * one read as a count of published events (evb_publish_batch). */
    return evb_err_set(-EBADMSG, "partition %u: the flush error word holds %d, not an "
                       "error code: written by another process", r->partition, (int)e);
}

uint64_t evb_durable_publish_max(struct evb_ring *r, uint64_t pos)
{
    _Atomic uint64_t *w = &r->hdr->durable;
    /* Never past flushed: the caller synced POS, but under O_DIRECT that
     * may end inside a frame whose start flushed still names; that frame
     * is durable once flushed passes it (the next round's publish). So a
     * reader may take any durable word past flushed for damage. F1:
     * acquire; the flusher stored flushed before this (its own write
     * completed), a leader loaded it before its fdatasync. */
    uint64_t f = atomic_load_explicit(&r->hdr->flushed, memory_order_acquire);
    if (pos > f)
        pos = f;
    /* S2: seq_cst, as every store of durable; leaders and the flusher may
     * publish at once, so only a larger value goes in (a smaller one was
     * covered by the larger's fdatasync). A word no durable position can
     * be (unaligned, past the tail or past flushed) is garbage and is
     * replaced: kept, it would fail every sync waiter for good. T1:
     * acquire, as every tail snapshot; durable never passes it. */
    uint64_t cur = atomic_load_explicit(w, memory_order_seq_cst);
    for (;;) {
        uint64_t t = atomic_load_explicit(&r->hdr->tail.pos, memory_order_acquire);
        /* F1: acquire, after CUR: as far as whoever stored CUR saw. */
        f = atomic_load_explicit(&r->hdr->flushed, memory_order_acquire);
        bool garbage = cur % EVB_FRAME_ALIGN || cur > t || cur > f;
        if (!garbage && cur >= pos)
            return cur;
        /* S2: seq_cst both ways, as every access of durable; a failure
         * reloads CUR for the next look. */
        if (atomic_compare_exchange_weak_explicit(w, &cur, pos, memory_order_seq_cst,
                                                  memory_order_seq_cst))
            return garbage ? 0 : cur;
    }
}

/*
 * S5, the sync waiters' classes: a waiter sleeps on sync_bell in the
 * class of its target (EVB_SYNC_CLASS_SHIFT-sized slices of positions, 32
 * classes round), and a ring wakes the classes of the targets that may
 * act on it: those in (LO, flushed]. Below LO they were woken by the ring
 * that moved durable past them; past flushed nothing can serve them yet
 * (no durable position passes flushed, and no waiter leads before its
 * bytes are written), and the write that moves flushed past them rings
 * for them. LO may be any durable position the caller loaded: a waiter
 * whose target lies at or below it was made durable by a store that rang
 * for it, since every store of durable is followed by its ring, and where
 * its publisher was killed in between, a ring of every class follows
 * (lead_reap, a flusher's takeover); a garbage word replaced wakes from
 * the bottom. A waiter that read the bell before the bump sleeps on the
 * old value and returns at once (B1), so only sleepers already asleep are
 * sorted. Eight
 * producers on one partition woke all eight for each write and each
 * round, two or three times as often as any one could act
 * (perf/RESULTS.md, fourteenth session).
 */
#define EVB_SYNC_CLASS_SHIFT 10

uint32_t evb_sync_class(uint64_t target)
{
    return 1u << (((target - 1) >> EVB_SYNC_CLASS_SHIFT) & 31);
}

void evb_sync_ring(struct evb_ring *r, uint64_t lo)
{
    /* S5: seq_cst fence between the change (a store of flushed or
     * durable, or a freed lead slot) and the load of flushed below, which
     * pairs with the one a waiter takes before it tries a slot (lead()):
     * either we see the flushed it saw, or it sees our slot free. Without
     * it a release store followed by a load may be reordered (allowed by
     * C11, and by AArch64 and POWER), and a waiter that found our slot
     * still taken would not be in our range. F1: acquire, as every load
     * of flushed before acting on it. */
    atomic_thread_fence(memory_order_seq_cst);
    uint64_t hi = atomic_load_explicit(&r->hdr->flushed, memory_order_acquire);
    uint32_t mask = 0;
    if (hi <= lo)
        /* Nobody can act, unless the words are garbage: then all. */
        mask = hi == lo ? 0 : UINT32_MAX;
    else if (((hi - 1) >> EVB_SYNC_CLASS_SHIFT) - (lo >> EVB_SYNC_CLASS_SHIFT) >= 31)
        mask = UINT32_MAX;
    else
        for (uint64_t b = lo >> EVB_SYNC_CLASS_SHIFT; b <= (hi - 1) >> EVB_SYNC_CLASS_SHIFT; b++)
            mask |= 1u << (b & 31);
    if (mask)
        evb_bell_ring_mask(&r->hdr->sync_bell, mask);
    else
        /* S2: the bump alone, release: a waiter about to sleep looks again. */
        atomic_fetch_add_explicit(&r->hdr->sync_bell, 1, memory_order_release);
}

void evb_sync_file_init(struct evb_sync_file *sf, const char *ddir, uint32_t part,
                        uint64_t seg_bytes)
{
    *sf = (struct evb_sync_file){.ddir = ddir, .part = part, .seg_bytes = seg_bytes,
                                 .id_base = UINT64_MAX};
}

uint32_t evb_online_cpus(void)
{
    static _Atomic uint32_t ncpu;
    /* Relaxed: a cache of sysconf; any value read, or a second sysconf
     * by a racing thread, is as good. */
    uint32_t n = atomic_load_explicit(&ncpu, memory_order_relaxed);
    if (!n) {
        long k = sysconf(_SC_NPROCESSORS_ONLN);
        n = k < 1 ? 1 : (uint32_t)k;
        atomic_store_explicit(&ncpu, n, memory_order_relaxed);
    }
    return n;
}

/* Whether SF may lead now: not after its segment could not be opened,
 * for EVB_FAIL_RETRY_NS (the file another user's, a name gone for a
 * moment, no descriptor left). */
static bool may_lead(const struct evb_sync_file *sf, uint64_t now)
{
    return now >= sf->cannot_until;
}

/* S4: a sign of life for the counts (evb_sync_heal); seq_cst, so that a
 * healer that sees a count taken after it sees it too. */
static void beat(struct evb_ring_hdr *h, struct evb_sync_file *sf, uint64_t now)
{
    sf->beat_at = now;
    atomic_store_explicit(&h->sync_beat, now, memory_order_seq_cst);
}

void evb_sync_enter(struct evb_ring *r, struct evb_sync_file *sf, bool lead)
{
    struct evb_ring_hdr *h = r->hdr;
    uint64_t now = evb_mono_ns();
    /* S4: the beat before the counts. */
    beat(h, sf, now);
    /* S2: seq_cst; Dekker with the flusher's store of durable and its
     * later load of the count. */
    atomic_fetch_add_explicit(&h->sync_waiters, 1, memory_order_seq_cst);
    sf->lead_counted = lead && may_lead(sf, now);
    /* S3: seq_cst, as the count above: a flusher that sees our commit
     * (made after this) sees us able to lead, and leaves the fdatasync. */
    if (sf->lead_counted)
        atomic_fetch_add_explicit(&h->lead_waiters, 1, memory_order_seq_cst);
    sf->entered = true;
}

/* Take one off count C, never below zero: a healer (S4) may have zeroed
 * it under a waiter stopped for longer than EVB_SYNC_BEAT_STALE_NS, and
 * wrapping would make it read as four billion waiters. Relaxed (S2, S3:
 * a late or lost decrement costs at most one early or deferred sync). */
static void uncount(_Atomic uint32_t *c)
{
    uint32_t v = atomic_load_explicit(c, memory_order_relaxed);
    while (v && !atomic_compare_exchange_weak_explicit(c, &v, v - 1, memory_order_relaxed,
                                                       memory_order_relaxed))
        ;
}

/* No longer one who will lead: the flusher syncs for us again. */
static void lead_uncount(struct evb_ring *r, struct evb_sync_file *sf)
{
    if (!sf->lead_counted)
        return;
    sf->lead_counted = false;
    uncount(&r->hdr->lead_waiters);
}

void evb_sync_leave(struct evb_ring *r, struct evb_sync_file *sf)
{
    if (!sf->entered)
        return;
    sf->entered = false;
    lead_uncount(r, sf);
    uncount(&r->hdr->sync_waiters);
}

/*
 * S4: counts that no live waiter stands behind. A waiter killed inside its
 * wait never takes itself off the counts, and they stayed up for the
 * ring's life: an ASYNC flusher then synced every write (70 times the
 * fdatasyncs of a clean ring, measured) and waiters stopped spinning. So
 * every waiter beats (enter, then at least every EVB_SYNC_BEAT_NS while
 * its wait loop turns; its sleeps are at most EVB_IDLE_WAIT_NS), and
 * counts whose last beat is older than EVB_SYNC_BEAT_STALE_NS are set to
 * zero. A waiter's beat (seq_cst) comes before its count (seq_cst RMW): a
 * healer whose load of a count (seq_cst) saw that count loads the beat
 * (seq_cst) after it and finds it fresh; one whose load missed it zeroes
 * by a CAS from the value it loaded, which fails if the count moved
 * since, or lands before the increment and keeps it.
 *
 * The counts are hints, and a heal can take live waiters off them: one
 * that has not beaten for the bound (stopped; blocked on a full ring
 * between its enter and its wait; inside an fdatasync that long, its own
 * round's included), or, when a stale waiter leaves and a fresh one
 * enters between the healer's loads and its CAS, the fresh one. Such a
 * waiter loses only the flusher's haste: it leads (or runs) its rounds as
 * before, and looks at durable at least every EVB_IDLE_WAIT_NS. uncount
 * stops at zero, so no count wraps; a count past any number of threads
 * (a waiter of an older build, whose decrement does wrap, after a heal)
 * is zeroed at once.
 */
void evb_sync_heal(struct evb_ring *r, uint64_t now)
{
    struct evb_ring_hdr *h = r->hdr;
    _Atomic uint32_t *counts[2] = {&h->sync_waiters, &h->lead_waiters};
    uint32_t seen[2];
    bool any = false;
    for (int i = 0; i < 2; i++) {
        /* S4: seq_cst, before the beat. */
        seen[i] = atomic_load_explicit(counts[i], memory_order_seq_cst);
        any |= seen[i] != 0;
    }
    if (!any)
        return;
    /* S4: seq_cst, after the counts. A beat from the future (a garbage
     * word) is no sign of life either. */
    uint64_t b = atomic_load_explicit(&h->sync_beat, memory_order_seq_cst);
    bool stale = b > now || now - b >= EVB_SYNC_BEAT_STALE_NS;
    for (int i = 0; i < 2; i++)
        /* S4: seq_cst; fails when a waiter counted itself meanwhile, which
         * keeps every count (relaxed on failure: nothing read). */
        if (seen[i] && (stale || seen[i] >= EVB_SYNC_COUNT_WRAPPED))
            atomic_compare_exchange_strong_explicit(counts[i], &seen[i], 0,
                                                    memory_order_seq_cst,
                                                    memory_order_relaxed);
}

/* S3: a lead slot held by a process that died (SIGKILL inside its
 * fdatasync) is freed, so waiters do not wait on it for ever. Relaxed:
 * nothing is published through a dead leader's slot; a CAS that loses
 * found it freed or taken anew. (The flusher syncs meanwhile, after
 * EVB_LEAD_HOLD_NS at most.) */
static void lead_reap(struct evb_ring_hdr *h)
{
    for (int i = 0; i < 2; i++) {
        uint64_t o = atomic_load_explicit(&h->sync_lead[i], memory_order_relaxed);
        /* S5: a leader that died may have stored durable and not rung for
         * it, so a ring of every class (S2: release bump) follows each
         * slot freed. */
        if (o && evb_proc_gone(o) == 1 &&
            atomic_compare_exchange_strong_explicit(&h->sync_lead[i], &o, 0,
                                                    memory_order_relaxed,
                                                    memory_order_relaxed))
            evb_bell_ring(&h->sync_bell);
    }
}

/*
 * fdatasync the segment holding position LAST, opened for this round
 * only: a descriptor kept between rounds could name a file unlinked and
 * made anew under the same name, and would hold a retained-away segment's
 * disk. Read-only is enough: fdatasync syncs the file, whoever opened it.
 * 0, 1 (cannot open it: leave the sync to the flusher), or -errno.
 */
static int sync_segment(struct evb_sync_file *sf, uint64_t last)
{
    uint64_t base = last - last % sf->seg_bytes;
    char dir[PATH_MAX], path[PATH_MAX + 32];
    evb_seg_part_dir(sf->ddir, sf->part, dir, sizeof dir);
    if (evb_seg_path(path, sizeof path, dir, base, "log"))
        return 1;
    int fd = evb_open_file(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0, EVB_FILE_REG);
    if (fd < 0)
        return 1;
    int rc = 0;
    if (fdatasync(fd) < 0) {
        int e = errno;
        rc = evb_err_set(-e, "partition %u: fdatasync of segment %llu: %s", sf->part,
                         (unsigned long long)base, strerror(e));
    } else {
        /* Synced the file the name holds now: it must be the one the
         * flusher wrote (not cut short, not put in its place since our
         * last lead of this segment; a name gone we could not open). */
        if (sf->id_base != base)
            sf->id = (struct evb_seg_id){0};
        sf->id_base = base;
        rc = evb_seg_check_file(fd, path, sf->seg_bytes, &sf->id);
        if (rc)
            rc = evb_err_prefix(rc, "partition %u: flushing stopped", sf->part);
    }
    close(fd);
    return rc;
}

/*
 * S3, a sync waiter leads: take the free lead slot, then fdatasync what
 * the flusher has written (flushed, F1) ourselves and publish it as
 * durable, so the waiter pays one fdatasync and no hand-off to the
 * flusher's thread, which goes on writing meanwhile: what it writes during
 * this round is the next round's.
 * 0: led a round (look again), 1: the slot is taken or we cannot lead,
 * <0: the fdatasync failed.
 */
static int lead(struct evb_ring *r, struct evb_sync_file *sf, uint64_t target, uint64_t now)
{
    struct evb_ring_hdr *h = r->hdr;
    uint64_t self = evb_proc_self();
    _Atomic uint64_t *slot = NULL;
    /* S5: seq_cst fence between the caller's load of flushed and our look
     * at the slots; pairs with evb_sync_ring's. */
    atomic_thread_fence(memory_order_seq_cst);
    for (int i = 0; i < EVB_SYNC_LEADS && !slot; i++) {
        uint64_t exp = 0;
        /* S3: acquire, pairs with the last leader's release of the slot:
         * its durable store is seen, so a round it covered is not run
         * again. A failed CAS reads nothing we use: relaxed. */
        if (atomic_compare_exchange_strong_explicit(&h->sync_lead[i], &exp, self,
                                                    memory_order_acquire,
                                                    memory_order_relaxed))
            slot = &h->sync_lead[i];
    }
    if (!slot)
        return 1;
    /* A thread cancelled inside the round (open and fdatasync are
     * cancellation points) would leave the slot held by a live process,
     * which no reaper frees: every other waiter would stop leading. The
     * cancel is acted on after the slot is free again. */
    int cs;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cs);
    EVB_CRASH_POINT("sync.lead");
    int rc = 0;
    /* F1: acquire, after taking the slot: every byte below flushed is in
     * the file (its write completed), so our fdatasync covers it. */
    uint64_t f = atomic_load_explicit(&h->flushed, memory_order_acquire);
    /* S2: seq_cst, as every load of durable. */
    uint64_t d = atomic_load_explicit(&h->durable, memory_order_seq_cst);
    /* T1: acquire, after flushed: flushed never passes the tail. */
    uint64_t t = atomic_load_explicit(&h->tail.pos, memory_order_acquire);
    if (f % EVB_FRAME_ALIGN || f < r->base_pos || f > t) {
        rc = bad_word(r, "flushed", f, t);
    } else if (f < target || f <= d) {
        rc = 0; /* nothing new written, or a round covered it meanwhile */
    } else if ((rc = sync_segment(sf, f - 1)) == 1) {
        sf->cannot_until = now + EVB_FAIL_RETRY_NS;
        lead_uncount(r, sf);
    } else if (rc < 0) {
        /* Every waiter must hear it, and no round may publish over the
         * pages the kernel failed to write: after reporting a write-back
         * error once to a file, Linux reports success for it. The
         * flusher, told through the same word, stops and hands over. */
        evb_flush_tell(h, rc);
    } else if (evb_flush_error_load(r)) {
        /* E1: relaxed, after our fdatasync: an error reported to another
         * leader or the flusher meanwhile may be one our fdatasync was
         * told nothing of (see above); publish nothing over it. */
        rc = 0;
    } else {
        /* Everything below the segment's base was synced by the flusher
         * itself before it wrote a byte of this one (flush_round.c: a
         * segment is switched only once its own fdatasync reached the
         * end), and every byte of [base, f) was written before ours began. */
        EVB_CRASH_POINT("sync.synced");
        /* Relaxed: a statistic. */
        atomic_fetch_add_explicit(&h->fsyncs, 1, memory_order_relaxed);
        uint64_t was = evb_durable_publish_max(r, f);
        /* Tests kill a leader here: durable stored, its ring not made. */
        EVB_CRASH_POINT("sync.published");
        /* S5: a garbage word replaced (0) wakes from the bottom. */
        if (was < d)
            d = was;
    }
    /* S3: release, after our durable store (see the acquire above); a CAS
     * so that a slot reaped from under us (a liveness check that got us
     * wrong) and taken by another is not freed. Relaxed on failure. */
    uint64_t mine = self;
    atomic_compare_exchange_strong_explicit(slot, &mine, 0, memory_order_release,
                                            memory_order_relaxed);
    /* S2: release bump after the store of durable (or a freed slot
     * another waiter may take); S5: from the durable position we found. */
    evb_sync_ring(r, d);
    pthread_setcancelstate(cs, NULL);
    return rc;
}

/* How long a sync waiter spins before it sleeps: 50 us while there are
 * fewer waiters than CPUs; none beyond, where spinners would take the
 * CPU from the flusher's write and the leader they wait for. */
static uint64_t spin_budget(struct evb_ring_hdr *h)
{
    /* S2: relaxed, a hint for how long to spin; nothing is ordered by it. */
    uint32_t w = atomic_load_explicit(&h->sync_waiters, memory_order_relaxed);
    return w < evb_online_cpus() ? 50000 : 0;
}

/* The longest sleep between looks: a flusher that died is replaced by
 * another process, who rings only for the waiters it sees. Test builds
 * (EVB_CRASH_POINTS) take EVB_TEST_SYNC_NAP_MS instead, so that a wake-up
 * the classes lose (S5) shows as a wait that never ends rather than one
 * 100 ms late. */
static uint64_t nap_ns(void)
{
#ifdef EVB_CRASH_POINTS
    static _Atomic uint64_t nap; /* relaxed: every thread computes the same */
    uint64_t v = atomic_load_explicit(&nap, memory_order_relaxed);
    if (!v) {
        const char *e = getenv("EVB_TEST_SYNC_NAP_MS");
        v = e ? strtoull(e, NULL, 10) * 1000000ull : 0;
        if (!v)
            v = EVB_IDLE_WAIT_NS;
        /* Relaxed: a value, every thread stores the same one. */
        atomic_store_explicit(&nap, v, memory_order_relaxed);
    }
    return v;
#else
    return EVB_IDLE_WAIT_NS;
#endif
}

int evb_wait_durable(struct evb_ring *r, struct evb_sync_file *sf, uint64_t target,
                     uint64_t deadline, bool poke, bool leads)
{
    struct evb_ring_hdr *h = r->hdr;
    /* S2: acquire pairs with the store of durable; a caller may act on
     * "durable" at once. */
    uint64_t d = atomic_load_explicit(&h->durable, memory_order_acquire);
    if (d >= target)
        return durable_reached(r, d);
    /* Counted for the whole wait (S2, S3), unless the caller counted us
     * before its commit: the flusher leaves the fdatasync to waiters who
     * will lead (flush_round.c, evb_flush_sync_due), and an ASYNC flusher
     * writes now rather than at flush_ms. */
    bool own = !sf->entered;
    if (own)
        evb_sync_enter(r, sf, leads);
    if (poke)
        evb_ring_wake(r); /* an ASYNC flusher asleep until its interval */
    /* A short spin between looks: the write or a round in flight lands
     * within one fdatasync, and a futex sleep would add a wake-up. */
    struct evb_spin spin;
    evb_spin_init(&spin, spin_budget(h));
    uint64_t since = evb_mono_ns();
    int rc;
    for (;;) {
        /* S2: acquire load of the bell before the words it guards (the
         * flusher rings it after each write and each durable store), so a
         * change after this read ends the sleep below at once. */
        uint32_t bell = atomic_load_explicit(&h->sync_bell, memory_order_acquire);
        /* S2: seq_cst, after the count. */
        d = atomic_load_explicit(&h->durable, memory_order_seq_cst);
        if (d >= target) {
            rc = durable_reached(r, d);
            break;
        }
        /* E1: after the bell's acquire load. */
        int e = evb_flush_error_load(r);
        if (e) {
            /* The next flusher may make the segment anew (one removed):
             * that file is the one to know from then on. */
            sf->id_base = UINT64_MAX;
            rc = e;
            break;
        }
        uint64_t now = evb_mono_ns();
        if (now - sf->beat_at >= EVB_SYNC_BEAT_NS)
            beat(h, sf, now);
        /* A follower whose acknowledgement is EVB_FOLLOW_NS late leads
         * after all: the flusher that should sync it is stopped or held
         * up (a process frozen after its write, a thread kept out of the
         * partition), and a leader needs only the bytes written. */
        bool may = leads || now - since >= EVB_FOLLOW_NS;
        /* A lead slot may be held by a leader that died in its
         * fdatasync: looked at every EVB_IDLE_WAIT_NS at most, since it
         * reads /proc; by every waiter, as the flusher takes a held slot
         * for a round in flight (evb_flush_sync_due). */
        if (now - sf->reaped_at >= EVB_IDLE_WAIT_NS) {
            sf->reaped_at = now;
            lead_reap(h);
        }
        /* Our process flushes the partition: write and sync it from this
         * thread, rather than wake the flusher's and wait for its write.
         * Not past the deadline (a round is one write and fdatasync). */
        bool retry_soon = false;
        if (may && sf->fl && now < deadline) {
            int in = evb_flush_inline(sf->fl, sf->part, target, deadline);
            if (in == 0) {
                evb_spin_init(&spin, spin_budget(h));
                continue;
            }
            /* The thread has the round lock, or wants it: it may leave
             * our partition to us (flusher.c, inline_quiet), so we look
             * again soon rather than sleep for a bell it may not ring. */
            retry_soon = in == 2;
        }
        /* F1: acquire; the lead reloads it under its slot. */
        if (may && may_lead(sf, now) &&
            atomic_load_explicit(&h->flushed, memory_order_acquire) >= target) {
            rc = lead(r, sf, target, now);
            if (rc < 0)
                break;
            if (rc == 0) {
                evb_spin_init(&spin, spin_budget(h));
                continue;
            }
        }
        if (now >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        if (evb_spin_once(&spin))
            continue;
        /* Wake at least every 100 ms: a flusher that died is replaced by
         * another process, who bumps the bell only if it sees us. */
        uint64_t wait = deadline - now;
        if (wait > nap_ns())
            wait = nap_ns();
        if (retry_soon && wait > EVB_INLINE_RETRY_NS)
            wait = EVB_INLINE_RETRY_NS;
        /* A follower looks again when its patience ends: a flusher that
         * does not serve it rings no bell. */
        if (!may && wait > since + EVB_FOLLOW_NS - now)
            wait = since + EVB_FOLLOW_NS - now;
        /* S5: asleep in our target's class. */
        evb_bell_sleep_mask(&h->sync_bell, bell, wait, evb_sync_class(target));
        evb_spin_init(&spin, spin_budget(h));
    }
    if (own)
        evb_sync_leave(r, sf);
    return rc;
}
