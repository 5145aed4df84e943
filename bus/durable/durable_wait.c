/*
 * durable_wait.c - the durable position of a partition: the flusher
 * publishes it and records failures (flush_error); producers that asked
 * for durability wait for it (S2, E1 in durable.h's table). What gets
 * synced and when is flush_round.c's.
 */
#include <errno.h>

#include "flush_internal.h"
#include "spin.h"

/* S2 (the sync doorbell) and E1 (flush_error) are in durable.h's table. */
void evb_flush_publish_durable(struct evb_ring *r, uint64_t pos)
{
    struct evb_ring_hdr *h = r->hdr;
    /* S2: seq_cst store of durable, before the bell below; pairs with the
     * waiter's seq_cst load of durable after its count and its read of the
     * bell (Dekker with sync_waiters). */
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
    /* E1: relaxed; published by the release bump of sync_bell in
     * evb_flush_publish_durable() below, which also wakes the waiters. */
    atomic_store_explicit(&fp->r->hdr->flush_error, err, memory_order_relaxed);
    evb_flush_publish_durable(fp->r, fp->synced);
}

int evb_wait_durable(struct evb_ring *r, uint64_t target, uint64_t deadline, bool poke)
{
    struct evb_ring_hdr *h = r->hdr;
    /* A short spin first: a group commit in flight lands within one
     * fdatasync, and a futex sleep would add a wake-up to that. */
    struct evb_spin spin;
    evb_spin_init(&spin, 50000);
    for (;;) {
        /* S2: acquire pairs with the flusher's store; nothing is read after
         * it, but a caller may act on "durable" at once. */
        if (atomic_load_explicit(&h->durable, memory_order_acquire) >= target)
            return 0;
        /* E1: relaxed; a set error is seen at the latest after the bell
         * that follows it (the futex loop below). */
        int e = atomic_load_explicit(&h->flush_error, memory_order_relaxed);
        if (e)
            return e;
        if (!evb_spin_once(&spin))
            break;
    }
    bool poked = !poke;
    for (;;) {
        /* S2: seq_cst count (Dekker with the flusher's seq_cst store of
         * durable and its later seq_cst load of sync_waiters in sync_due,
         * sleep_idle), then the bell with acquire (pairs with the
         * flusher's release bump; E1 rides on it). */
        atomic_fetch_add_explicit(&h->sync_waiters, 1, memory_order_seq_cst);
        uint32_t bell = atomic_load_explicit(&h->sync_bell, memory_order_acquire);
        if (!poked) {
            /* An ASYNC flusher asleep until its interval: ring the ring's
             * doorbell so it sees a waiter and syncs now. */
            evb_ring_wake(r);
            poked = true;
        }
        /* S2: seq_cst load after the count and the bell's read; pairs with
         * the store in evb_flush_publish_durable(). E1: flush_error
         * relaxed, after the bell's acquire above. */
        uint64_t d = atomic_load_explicit(&h->durable, memory_order_seq_cst);
        int e = atomic_load_explicit(&h->flush_error, memory_order_relaxed);
        uint64_t now = evb_mono_ns();
        if (d >= target || e || now >= deadline) {
            /* S2: relaxed; the count only asks flushers to hurry, and a
             * late decrement costs at most one early sync. */
            atomic_fetch_sub_explicit(&h->sync_waiters, 1, memory_order_relaxed);
            return d >= target ? 0 : e ? e : -ETIMEDOUT;
        }
        /* Wake at least every 100 ms: a flusher that died is replaced by
         * another process, which bumps the bell only if it sees us. */
        uint64_t wait = deadline - now;
        if (wait > EVB_IDLE_WAIT_NS)
            wait = EVB_IDLE_WAIT_NS;
        evb_bell_sleep(&h->sync_bell, bell, wait);
        /* S2: relaxed, as above; the next pass counts itself again. */
        atomic_fetch_sub_explicit(&h->sync_waiters, 1, memory_order_relaxed);
    }
}
