/*
 * durable_wait.c - the durable position of a partition: the flusher
 * publishes it and records failures (flush_error); producers that asked
 * for durability wait for it (S2 below). What gets synced and when is
 * flush_round.c's.
 */
#include <errno.h>

#include "flush_internal.h"

/*
 * S2, the sync doorbell: a waiter reads sync_bell (acquire), then loads
 * durable (seq_cst) and sleeps on the bell value it read; the flusher
 * stores durable (seq_cst), then bumps the bell (release) and wakes. A
 * bump after the waiter's read makes its futex wait return at once, so no
 * waiter sleeps through its durable update. sync_waiters only tells an
 * ASYNC flusher that someone waits, so it syncs now rather than at
 * flush_ms; a count left behind by a killed waiter makes it sync more
 * often, nothing worse.
 */
void evb_flush_publish_durable(struct evb_ring *r, uint64_t pos)
{
    struct evb_ring_hdr *h = r->hdr;
    /* S2: seq_cst store of durable, before the bell below; pairs with the
     * waiter's seq_cst load of durable after its read of the bell. */
    atomic_store_explicit(&h->durable, pos, memory_order_seq_cst);
    /* Always wake: one system call per fdatasync is noise, and so a
     * waiter SIGKILLed before it could decrement sync_waiters (which then
     * only asks ASYNC flushers to sync at once) costs no lost wake-up.
     * S2: release bump; pairs with the waiter's acquire load of the bell. */
    evb_bell_ring(&h->sync_bell);
}

void evb_flush_fail(struct fpart *fp, int err)
{
    fp->failed = err;
    /* Relaxed store, then evb_flush_publish_durable()'s wake makes waiters look. */
    atomic_store_explicit(&fp->r->hdr->flush_error, err, memory_order_relaxed);
    evb_flush_publish_durable(fp->r, fp->synced);
}

int evb_wait_durable(struct evb_ring *r, uint64_t target, uint64_t deadline, bool poke)
{
    struct evb_ring_hdr *h = r->hdr;
    /* A short spin first: a group commit in flight lands within one
     * fdatasync, and a futex sleep would add a wake-up to that. */
    uint64_t spin_until = evb_mono_ns() + 50000;
    for (unsigned i = 0;; i++) {
        /* S2: acquire pairs with the flusher's store; nothing is read after
         * it, but a caller may act on "durable" at once. */
        if (atomic_load_explicit(&h->durable, memory_order_acquire) >= target)
            return 0;
        int e = atomic_load_explicit(&h->flush_error, memory_order_relaxed);
        if (e)
            return e;
        if ((i & 63) == 63 && evb_mono_ns() >= spin_until)
            break;
        __builtin_ia32_pause();
    }
    bool poked = !poke;
    for (;;) {
        /* S2: seq_cst count, then the bell with acquire (pairs with the
         * flusher's release bump); a flusher's seq_cst load of
         * sync_waiters (sync_due, sleep_idle) then sees this waiter. */
        atomic_fetch_add_explicit(&h->sync_waiters, 1, memory_order_seq_cst);
        uint32_t bell = atomic_load_explicit(&h->sync_bell, memory_order_acquire);
        if (!poked) {
            /* An ASYNC flusher asleep until its interval: ring the ring's
             * doorbell so it sees a waiter and syncs now. */
            evb_ring_wake(r);
            poked = true;
        }
        /* S2: seq_cst load after the bell's read; pairs with the store in
         * evb_flush_publish_durable(). flush_error is relaxed: the wake
         * that follows its store makes us look again. */
        uint64_t d = atomic_load_explicit(&h->durable, memory_order_seq_cst);
        int e = atomic_load_explicit(&h->flush_error, memory_order_relaxed);
        uint64_t now = evb_mono_ns();
        if (d >= target || e || now >= deadline) {
            /* Relaxed: the count only asks flushers to hurry. */
            atomic_fetch_sub_explicit(&h->sync_waiters, 1, memory_order_relaxed);
            return d >= target ? 0 : e ? e : -ETIMEDOUT;
        }
        /* Wake at least every 100 ms: a flusher that died is replaced by
         * another process, which bumps the bell only if it sees us. */
        uint64_t wait = deadline - now;
        if (wait > EVB_IDLE_WAIT_NS)
            wait = EVB_IDLE_WAIT_NS;
        evb_bell_sleep(&h->sync_bell, bell, wait);
        atomic_fetch_sub_explicit(&h->sync_waiters, 1, memory_order_relaxed);
    }
}
