/*
 * durable_wait.c - the durable position of a partition: the flusher
 * publishes it and records failures (flush_error); producers that asked
 * for durability wait for it (S2, E1 in durable.h's table); and the checks
 * of the ring's flushed and durable words against its tail, made where a
 * flusher starts (takeover, each round) and where a waiter would believe
 * them. What gets synced and when is flush_round.c's.
 */
#include <errno.h>

#include "err.h"
#include "flush_internal.h"
#include "spin.h"

/*
 * What the flusher publishes can only lie in [base_pos, tail], 8-aligned,
 * with flushed no more than a capacity behind the tail (producers gate on
 * it). durable may pass flushed: under O_DIRECT a write ending inside a
 * frame is synced while flushed stays on the frame boundary below it.
 * Anything else was written by someone else: a flusher that trusted it
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
    atomic_store_explicit(&fp->r->hdr->durable, fp->synced, memory_order_seq_cst);
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
    return 0;
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
        uint64_t d = atomic_load_explicit(&h->durable, memory_order_acquire);
        if (d >= target)
            return durable_reached(r, d);
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
            return d >= target ? durable_reached(r, d) : e ? e : -ETIMEDOUT;
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
