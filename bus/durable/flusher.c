/*
 * flusher.c - durable topics: copy committed ring bytes to segment files
 * with io_uring, fdatasync them, and publish how far that went. This file
 * owns the thread (its loop, idle sleep, drain), starting and stopping it,
 * the fork hooks and orphan flushes; the steps are in the files listed in
 * flush_internal.h. Which flushers a bus runs is bus/durability.c's.
 *
 * Who flushes. Each partition has a lock file, <data>/<topic>/<p>/flush.lock.
 * Every process with a producer on a durable topic runs one flusher thread
 * for the topic (refcounted per bus handle); the thread flushes the
 * partitions whose flock it holds and retries the others every
 * EVB_LOCK_RETRY_NS. The kernel drops a dead holder's flock, so a survivor
 * takes over within that bound and resumes from the ring's flushed
 * position: bytes below it are on disk, bytes above are rewritten, which
 * is harmless because a position's bytes never change once committed.
 * When no candidate is left, evb_flush_orphans_of() (run by every
 * producer and consumer open) finishes the job.
 *
 * What is published (ring header line 3):
 *   flushed  positions below are written; producers gate on it (F1 in
 *            shm/claim.c), so the ring never overwrites unwritten bytes;
 *   durable  positions below are fdatasync'ed; evb_wait_durable() sleeps on
 *            sync_bell until it passes a target (S2).
 * Those edges, and the rest of the flusher's (F2, E1, G1, W1, H1), are
 * listed in durable.h.
 *
 * One round of the thread: for each held partition find the committed
 * extent after what was written (walking stamps, as a reader does, and
 * noting sparse index entries on the way), submit one write of it straight
 * from the ring mapping, with an fdatasync linked behind when the topic is
 * SYNC, a producer waits, the interval passed or a segment is finished;
 * wait for the completions; publish. Commits made while a write and its
 * fdatasync are in flight go out together in the next round: that is the
 * group commit.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "flush_internal.h"
#include "frame.h"
#include "spin.h"

/*
 * fork(): a flock belongs to the open file, so a child that inherits a
 * lock fd would keep the partition locked after this process died, with no
 * flusher thread behind it. Children close every inherited lock fd. (The
 * child must not use the parent's evbus handles, as with LMDB.)
 */
static pthread_mutex_t all_mu = PTHREAD_MUTEX_INITIALIZER;
static struct evb_flush *all_flushers;

/* Each flush's round lock is held across the fork too, so that no lock
 * fd is being opened or closed meanwhile (the child reads them all); a
 * fork waits for a round in flight. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&all_mu);
    for (struct evb_flush *f = all_flushers; f; f = f->all_next)
        pthread_mutex_lock(&f->round_mu);
}

static void fork_parent(void)
{
    for (struct evb_flush *f = all_flushers; f; f = f->all_next)
        pthread_mutex_unlock(&f->round_mu);
    pthread_mutex_unlock(&all_mu);
}

static void fork_child(void)
{
    for (struct evb_flush *f = all_flushers; f; f = f->all_next) {
        for (uint32_t i = 0; i < f->nparts; i++)
            if (f->p[i].lock_fd >= 0)
                close(f->p[i].lock_fd);
        pthread_mutex_unlock(&f->round_mu);
    }
    pthread_mutex_unlock(&all_mu);
}

__attribute__((constructor)) static void flusher_atfork(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void all_add(struct evb_flush *f)
{
    pthread_mutex_lock(&all_mu);
    f->all_next = all_flushers;
    all_flushers = f;
    pthread_mutex_unlock(&all_mu);
}

static void all_remove(struct evb_flush *f)
{
    pthread_mutex_lock(&all_mu);
    for (struct evb_flush **pp = &all_flushers; *pp; pp = &(*pp)->all_next) {
        if (*pp == f) {
            *pp = f->all_next;
            break;
        }
    }
    pthread_mutex_unlock(&all_mu);
}

/* ---- the thread ---- */

/*
 * The thread takes the round lock (it lets go only to spin and sleep).
 * Waiters of this process that see it wants the lock leave their rounds
 * to it for a moment (evb_flush_inline says 2), so a stream of sync
 * publishes on one partition cannot starve the others' writes. H3:
 * relaxed, a hint; the mutex decides.
 */
static void thread_lock(struct evb_flush *fl)
{
    atomic_store_explicit(&fl->thread_wants, true, memory_order_relaxed);
    pthread_mutex_lock(&fl->round_mu);
    /* H3: relaxed, as above. */
    atomic_store_explicit(&fl->thread_wants, false, memory_order_relaxed);
}

/*
 * Sync waiters of other processes are about (fewer than CPUs: more would
 * be starved of the CPU we spin on): the next commit of one comes
 * microseconds after its acknowledgement, and a futex wake-up of this
 * thread would add tens of microseconds to each sync publish (S3: the
 * waiter leads the fdatasync, we only write). Poll the held partitions'
 * next stamps for a while first. Not while a waiter of this process runs
 * its own rounds (evb_flush_inline): we would only take the round from
 * it. Called with round_mu held; spins without it. True: a commit is
 * there.
 */
static bool spin_for_commit(struct evb_flush *fl)
{
    /* H3: relaxed, a hint; the round lock decides who runs a round. */
    if (atomic_load_explicit(&fl->inline_waiters, memory_order_relaxed))
        return false;
    uint32_t ncpu = evb_online_cpus();
    bool any = false;
    struct evb_ring *rings[EVB_MAX_PARTITIONS];
    uint64_t at[EVB_MAX_PARTITIONS];
    unsigned n = 0;
    for (uint32_t i = 0; i < fl->nparts; i++) {
        struct fpart *fp = &fl->p[i];
        if (fp->lock_fd < 0 || fp->failed)
            continue;
        /* S2: relaxed, a hint for whether to spin; nothing is ordered by
         * it (the sleep that follows a spin re-checks under its Dekker). */
        uint32_t w = atomic_load_explicit(&fp->r->hdr->sync_waiters, memory_order_relaxed);
        if (w >= ncpu)
            return false;
        any |= w > 0;
        rings[n] = fp->r;
        at[n++] = fp->walk;
    }
    if (!any)
        return false;
    pthread_mutex_unlock(&fl->round_mu);
    struct evb_spin spin;
    evb_spin_init(&spin, EVB_SYNC_SPIN_NS);
    bool got = false;
    do {
        for (unsigned k = 0; k < n && !got; k++) {
            /* A1: acquire, as the walk's (it reads the frame after). */
            uint64_t st = atomic_load_explicit(&evb_ring_frame(rings[k], at[k])->stamp,
                                               memory_order_acquire);
            got = evb_stamp_is_committed(st, at[k]);
        }
    } while (!got && evb_spin_once(&spin) && !evb_flush_stopping(fl));
    thread_lock(fl);
    return got;
}

/*
 * A sync waiter of this process ran a round of FP a moment ago (or is
 * about to): it writes and syncs whatever is committed there, other
 * processes' events included, at its next publish. The thread keeps out
 * of FP meanwhile: woken by every commit (the doorbell) it took the round
 * lock from that waiter, which then slept on the lock until the thread's
 * write was done and fdatasynced after it: the hand-off these rounds
 * exist to remove, measured at half the waiter's latency (perf/RESULTS.md).
 * It looks again EVB_INLINE_QUIET_NS after the last such round. With
 * round_mu held.
 */
static bool inline_quiet(const struct fpart *fp, uint64_t now)
{
    if (fp->failed)
        return false; /* ours to let go of (evb_flush_prepare) */
    /* H3: relaxed hints, as where they are stored: a waiter's last round
     * here, and one on its way to the round lock for this partition. */
    uint64_t at = atomic_load_explicit(&fp->inline_at, memory_order_relaxed);
    if (at && atomic_load_explicit(&fp->inline_here, memory_order_relaxed))
        return true;
    return at && now - at < EVB_INLINE_QUIET_NS;
}

/* With round_mu held; sleeps without it. */
/* When partitions Q[0..NQ) stop being quiet (their waiters' last round is
 * EVB_INLINE_QUIET_NS old and none is on its way): 0 if one is not now.
 * Without round_mu: inline_at and the count are atomics (H3). */
static uint64_t quiet_until(struct fpart **q, unsigned nq, uint64_t now)
{
    uint64_t until = UINT64_MAX;
    /* H3: relaxed hints, as in inline_quiet. */
    for (unsigned k = 0; k < nq; k++) {
        bool coming = atomic_load_explicit(&q[k]->inline_here, memory_order_relaxed) != 0;
        uint64_t at = atomic_load_explicit(&q[k]->inline_at, memory_order_relaxed);
        uint64_t end = coming ? now + EVB_INLINE_QUIET_NS : at + EVB_INLINE_QUIET_NS;
        if (end <= now)
            return 0;
        if (end < until)
            until = end;
    }
    return until;
}

/* With round_mu held; sleeps without it. */
static void sleep_idle(struct evb_flush *fl, uint64_t now)
{
    if (spin_for_commit(fl))
        return;
    now = evb_mono_ns(); /* the spin took up to EVB_SYNC_SPIN_NS */
    _Atomic uint32_t *bells[EVB_MAX_PARTITIONS];
    uint32_t vals[EVB_MAX_PARTITIONS];
    struct fpart *held[EVB_MAX_PARTITIONS], *quiet[EVB_MAX_PARTITIONS];
    unsigned n = 0, nq = 0;
    uint64_t wait = EVB_IDLE_WAIT_NS;
    bool ready = false;
    for (uint32_t i = 0; i < fl->nparts; i++) {
        struct fpart *fp = &fl->p[i];
        if (fp->lock_fd < 0) {
            if (wait > EVB_LOCK_RETRY_NS)
                wait = EVB_LOCK_RETRY_NS;
            continue;
        }
        if (fp->failed)
            continue;
        if (inline_quiet(fp, now)) {
            /* Neither woken by its commits nor ready for them: looked at
             * again once its waiters have been quiet for a while. */
            quiet[nq++] = fp;
            continue;
        }
        evb_ring_waiter_set(fp->r, fp->slot, &vals[n]);
        bells[n] = &fp->r->hdr->bell;
        held[n++] = fp;
    }
    /* Every bit set, then one heavy fence (shm/claim.c X2) before the
     * stamp checks; without one, nap rather than miss a fenceless commit. */
    if (n && evb_ring_waiters_armed() < 0 && wait > EVB_UNFENCED_NAP_NS)
        wait = EVB_UNFENCED_NAP_NS;
    for (unsigned k = 0; k < n; k++) {
        struct fpart *fp = held[k];
        /* D1 (shm/claim.c): seq_cst load after the waiter bit's seq_cst
         * RMW in evb_ring_waiter_set(); pairs with the commit's CAS. */
        uint64_t st = atomic_load_explicit(&evb_ring_frame(fp->r, fp->walk)->stamp,
                                           memory_order_seq_cst);
        /* A sync due now (a waiter counted, S2's Dekker inside), or left
         * to sync leaders until DEFER (S3): then we look again by then. */
        uint64_t defer = 0;
        if (evb_stamp_is_committed(st, fp->walk) ||
            evb_flush_sync_due(fl, fp, fp->written, now, &defer))
            ready = true;
        if (defer && wait > defer - now)
            wait = defer - now;
        if (fp->hole.pos != EVB_POS_NONE && wait > fp->r->dead_ns / 4)
            wait = fp->r->dead_ns / 4;
        if (fp->synced < fp->written) {
            uint64_t due = fp->last_sync + (uint64_t)fl->cfg.flush_ms * 1000000ull;
            uint64_t left = due > now ? due - now : 1;
            if (wait > left)
                wait = left;
        }
    }
    /* Only this thread takes and lets go of flush locks (and so of reader
     * slots), so HELD's and QUIET's rings and slots stay ours while we
     * sleep without the round lock; a waiter's round meanwhile moves walk,
     * which at worst wakes us once for nothing. While QUIET's waiters go
     * on with their rounds we sleep on, without taking the lock from
     * them: a look at the lock would make them wait (evb_flush_inline). */
    pthread_mutex_unlock(&fl->round_mu);
    uint64_t until = now + wait;
    while (!ready && !evb_flush_stopping(fl) && now < until) {
        uint64_t q = nq ? quiet_until(quiet, nq, now) : UINT64_MAX;
        if (!q)
            break;
        uint64_t nap = (q < until ? q : until) - now;
        if (n) {
            evb_bell_wait(bells, vals, n, nap);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t ns = (uint64_t)ts.tv_nsec + nap;
            ts.tv_sec += (time_t)(ns / 1000000000ull);
            ts.tv_nsec = (long)(ns % 1000000000ull);
            pthread_mutex_lock(&fl->mu);
            if (!evb_flush_stopping(fl))
                pthread_cond_timedwait(&fl->cv, &fl->mu, &ts);
            pthread_mutex_unlock(&fl->mu);
        }
        /* A bell rang (relaxed: only whether it moved; the round that
         * follows loads what it guards with acquire): work to look at. */
        bool rang = false;
        for (unsigned k = 0; k < n && !rang; k++)
            rang = atomic_load_explicit(bells[k], memory_order_relaxed) != vals[k];
        if (rang)
            break;
        now = evb_mono_ns();
    }
    thread_lock(fl);
    for (unsigned i = 0; i < n; i++)
        evb_ring_waiter_clear(held[i]->r, held[i]->slot);
}

/* Flush every held partition up to its committed frontier and sync it:
 * the last thing a stopping flusher does before letting go. */
static void drain_once(struct evb_flush *fl)
{
    for (int rounds = 0; rounds < 1000; rounds++) {
        uint64_t now = evb_mono_ns();
        bool any = false;
        for (uint32_t i = 0; i < fl->nparts; i++)
            any |= evb_flush_prepare(fl, &fl->p[i], now);
        if (!any)
            return;
        evb_flush_run_ops(fl, fl->nparts, now);
    }
}

/* Drain, and when a dead producer's hole stops it short of the tail, wait
 * the bound (2 dead_ns) for the hole to be padded and drain again. */
static void drain(struct evb_flush *fl)
{
    uint64_t until = evb_mono_ns() + 2 * fl->rings[0].dead_ns;
    for (;;) {
        drain_once(fl);
        bool short_of_tail = false;
        for (uint32_t i = 0; i < fl->nparts; i++) {
            struct fpart *fp = &fl->p[i];
            uint64_t t, toff;
            evb_ring_load_tail(fp->r, &t, &toff);
            if (fp->lock_fd >= 0 && !fp->failed && fp->written < t)
                short_of_tail = true;
        }
        if (!short_of_tail || evb_mono_ns() >= until)
            return;
        struct timespec nap = {0, 2 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
}

/*
 * The thread. Every step on the partitions' state runs under round_mu,
 * which a sync waiter of this process takes to run a round itself
 * (evb_flush_inline); the thread lets go of it only to spin and sleep.
 */
static void *flusher_main(void *arg)
{
    struct evb_flush *fl = arg;
    uint32_t n = fl->nparts;
    thread_lock(fl);
    while (!evb_flush_stopping(fl)) {
        uint64_t now = evb_mono_ns();
        for (uint32_t i = 0; i < n; i++)
            if (fl->p[i].lock_fd < 0)
                evb_flush_take(fl, &fl->p[i], now);
        bool any = false;
        for (uint32_t i = 0; i < n; i++)
            if (!inline_quiet(&fl->p[i], now))
                any |= evb_flush_prepare(fl, &fl->p[i], now);
        if (any)
            evb_flush_run_ops(fl, n, now);
        if (now >= fl->next_retain) {
            fl->next_retain = now + EVB_RETAIN_EVERY_NS;
            uint64_t real = evb_real_ns();
            for (uint32_t i = 0; i < n; i++)
                if (fl->p[i].lock_fd >= 0)
                    evb_flush_retain(fl, &fl->p[i], real);
            for (uint32_t i = 0; i < n; i++)
                evb_flush_check_ring(fl, &fl->p[i], now);
        }
        if (!any)
            sleep_idle(fl, now);
    }
    drain(fl);
    for (uint32_t i = 0; i < n; i++)
        evb_flush_release(&fl->p[i]);
    pthread_mutex_unlock(&fl->round_mu);
    return NULL;
}

void evb_flush_rounds(struct evb_flush *fl, uint32_t part, uint64_t *by_waiters,
                      uint64_t *by_thread)
{
    pthread_mutex_lock(&fl->round_mu);
    *by_waiters = fl->p[part].rounds_inline;
    *by_thread = fl->p[part].rounds_thread;
    pthread_mutex_unlock(&fl->round_mu);
}

int evb_flush_inline(struct evb_flush *fl, uint32_t part, uint64_t target,
                     uint64_t deadline)
{
    if (!fl || part >= fl->nparts)
        return 1;
    struct fpart *fp = &fl->p[part];
    /* H2: relaxed, a hint kept by the thread as it takes and lets go of
     * the flush lock; the round lock decides. H3: relaxed, a hint; a
     * thread that wants the lock for other partitions' work gets it. */
    if (!atomic_load_explicit(&fp->held, memory_order_relaxed))
        return 1;
    if (atomic_load_explicit(&fl->thread_wants, memory_order_relaxed))
        return 2;
    /* H3: relaxed; a hint for the thread's spin (spin_for_commit). */
    atomic_fetch_add_explicit(&fl->inline_waiters, 1, memory_order_relaxed);
    /* H3: relaxed, as above: the thread keeps out of this partition (not
     * the others) while one is on its way (inline_quiet). */
    atomic_fetch_add_explicit(&fp->inline_here, 1, memory_order_relaxed);
    /* Never wait for the thread's round (a slow disk, another partition's
     * fdatasync, a takeover): the caller's deadline would not hold. */
    int rc = 2;
    if (pthread_mutex_trylock(&fl->round_mu) == 0) {
        rc = 1;
        /* A thread cancelled inside the round's pwrite or fdatasync (both
         * cancellation points) would leave the lock held for good, and
         * the partition with it. */
        int cs;
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cs);
        if (fp->lock_fd >= 0 && !fp->failed && !evb_flush_stopping(fl)) {
            rc = evb_flush_round_inline(fl, fp, target, deadline);
            /* H3: relaxed, a hint the sleeping thread reads unlocked. */
            atomic_store_explicit(&fp->inline_at, evb_mono_ns(), memory_order_relaxed);
            /* Failed: the thread lets go of the flush lock; wake it from
             * its doorbell sleep to do so now. */
            if (fp->failed)
                evb_ring_wake(fp->r);
        }
        pthread_mutex_unlock(&fl->round_mu);
        pthread_setcancelstate(cs, NULL);
    }
    /* H3: relaxed, as the counts above. */
    atomic_fetch_sub_explicit(&fp->inline_here, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&fl->inline_waiters, 1, memory_order_relaxed);
    return rc;
}

static struct evb_flush *flusher_new(const struct evb_durable_topic *dt)
{
    struct evb_flush *fl = calloc(1, sizeof *fl + dt->nparts * sizeof fl->p[0]);
    if (!fl)
        return NULL;
    fl->cfg = *dt->cfg;
    fl->nparts = dt->nparts;
    fl->rings = dt->rings;
    fl->min_committed = dt->min_committed;
    fl->min_committed_arg = dt->min_committed_arg;
    pthread_mutex_init(&fl->round_mu, NULL);
    for (uint32_t i = 0; i < dt->nparts; i++) {
        struct fpart *fp = &fl->p[i];
        fp->r = &dt->rings[i];
        fp->part = i;
        fp->lock_fd = fp->seg_fd = fp->idx_fd = fp->dio_fd = -1;
        fp->hole.pos = EVB_POS_NONE;
        evb_seg_part_dir(dt->dir, i, fp->dir, sizeof fp->dir);
    }
    /* io_uring when the kernel gives us one; plain pwrite and fdatasync
     * otherwise (flush_round.c), or when EVBUS_FLUSH_URING=0 asks for it.
     * Either way the same bytes reach the same files. */
    const char *u = getenv("EVBUS_FLUSH_URING");
    int rc = u && *u == '0' ? -EPERM : io_uring_queue_init(2 * dt->nparts + 2, &fl->ring, 0);
    fl->uring_ok = rc == 0;
    /* The page cache by default: with 1 MiB writes and producers that
     * sleep while blocked it measured 1.37-1.51 GB/s of 1 KiB events
     * against 1.22-1.34 GB/s for O_DIRECT (perf/RESULTS.md), though
     * O_DIRECT costs the flusher a third of the CPU and leaves less to
     * sync at the end. EVBUS_FLUSH_DIRECT=1 selects O_DIRECT. */
    const char *d = getenv("EVBUS_FLUSH_DIRECT");
    fl->direct = d && *d == '1';
    /* SYNC topics write small groups: split into head, blocks and tail
     * under O_DIRECT they took 2.5 writes per fdatasync and lost ~30% to
     * the page cache path (perf/RESULTS.md). */
    if (fl->cfg.durability == EVB_DURABILITY_SYNC)
        fl->direct = false;
    all_add(fl);
    return fl;
}

static void flusher_free(struct evb_flush *fl)
{
    all_remove(fl);
    if (fl->uring_ok)
        io_uring_queue_exit(&fl->ring);
    pthread_mutex_destroy(&fl->round_mu);
    free(fl);
}

int evb_flush_start(const struct evb_durable_topic *dt, struct evb_flush **out)
{
    struct evb_flush *fl = flusher_new(dt);
    if (!fl)
        return -ENOMEM;
    pthread_mutex_init(&fl->mu, NULL);
    pthread_cond_init(&fl->cv, NULL);
    /* Take what locks are free before returning, so a producer that
     * publishes and syncs at once does not wait for the first retry. */
    uint64_t now = evb_mono_ns();
    for (uint32_t i = 0; i < fl->nparts; i++)
        evb_flush_take(fl, &fl->p[i], now);
    /* Placed before it starts, so none of its writes or page-cache
     * copies run on another node's CPUs. */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (dt->cpus)
        pthread_attr_setaffinity_np(&attr, sizeof *dt->cpus, dt->cpus);
    int rc = pthread_create(&fl->thread, &attr, flusher_main, fl);
    pthread_attr_destroy(&attr);
    if (rc) {
        for (uint32_t i = 0; i < fl->nparts; i++)
            evb_flush_release(&fl->p[i]);
        flusher_free(fl);
        return -rc;
    }
    *out = fl;
    return 0;
}

void evb_flush_stop(struct evb_flush *fl)
{
    pthread_mutex_lock(&fl->mu);
    /* H1: release; what this process committed before now is drained by
     * the thread once its acquire load sees the flag. */
    atomic_store_explicit(&fl->stop, true, memory_order_release);
    pthread_cond_broadcast(&fl->cv);
    pthread_mutex_unlock(&fl->mu);
    /* Out of its doorbell sleep. (Every ring: which locks the thread holds
     * is the thread's business; a spare wake costs nothing.) */
    for (uint32_t i = 0; i < fl->nparts; i++)
        evb_ring_wake(&fl->rings[i]);
    pthread_join(fl->thread, NULL);
    pthread_mutex_destroy(&fl->mu);
    pthread_cond_destroy(&fl->cv);
    flusher_free(fl);
}

int evb_flush_orphans_of(const struct evb_durable_topic *dt)
{
    struct evb_flush *fl = NULL;
    int rc = 0;
    for (uint32_t i = 0; i < dt->nparts; i++) {
        struct evb_ring_hdr *h = dt->rings[i].hdr;
        uint64_t t, toff;
        evb_ring_load_tail(&dt->rings[i], &t, &toff);
        /* S2: acquire pairs with the flusher's store of durable. */
        uint64_t d = atomic_load_explicit(&h->durable, memory_order_acquire);
        if (d >= t)
            continue; /* nothing to do: don't even try the lock */
        /* A live flusher is between lock retries, or busy: its job.
         * W1: relaxed, a hint; the flush lock decides. */
        uint64_t fo = atomic_load_explicit(&h->flusher, memory_order_relaxed);
        if (fo && evb_proc_alive(fo))
            continue;
        if (!fl) {
            if (!(fl = flusher_new(dt)))
                return -ENOMEM;
            /* No thread: stop set means "sync what you write" (sync_due).
             * H1 needs no edge here: relaxed, as this thread is the only
             * one that ever loads this flush's flag. */
            atomic_store_explicit(&fl->stop, true, memory_order_relaxed);
        }
        struct fpart *fp = &fl->p[i];
        if (!evb_flush_take(fl, fp, evb_mono_ns()))
            continue; /* someone is flushing it */
        /* Up to what is committed now; a dead producer's hole at the
         * frontier is padded within dead_ns, so drain() waits that much. */
        drain(fl);
        if (fp->failed && !rc)
            rc = fp->failed;
        evb_flush_release(fp);
    }
    if (fl)
        flusher_free(fl);
    return rc;
}
