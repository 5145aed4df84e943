/*
 * cursor.c - reader slots: take one, give it back, free those of dead
 * processes. A slot's owner word (pid and start time) is the lease; a
 * gating slot's cursor is what producers wait for (claim.c, R3/A3).
 */
#include "ring.h"

#include <errno.h>
#include <string.h>

#include "err.h"
#include "nocancel.h"

int evb_ring_slot_take(struct evb_ring *r, uint32_t kind, const char *name,
                       uint64_t cursor, uint32_t *slot_idx)
{
    EVB_NO_CANCEL;
    uint64_t self = evb_proc_self();
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < EVB_RING_READER_SLOTS; i++) {
            struct evb_reader_slot *s = &r->rslots[i];
            uint64_t exp = 0;
            /* Q1: take the lease; acquire pairs with the last holder's
             * release or a reaper's CAS. Failure: a taken slot, nothing
             * read from it, relaxed. */
            if (!atomic_compare_exchange_strong_explicit(&s->owner, &exp, self,
                                                         memory_order_acq_rel,
                                                         memory_order_relaxed))
                continue;
            /* R3: release, as every cursor store: CURSOR is at or below a
             * tail our caller loaded, and a producer that reads it and then
             * the tail must see that tail (claim.c, cursor_past_tail). */
            atomic_store_explicit(&s->cursor, cursor, memory_order_release);
            /* Relaxed stores, published by the S1 fence below. A producer
             * that reads a previous owner's kind in between only limits
             * itself more, or misses us, which S1 covers. */
            atomic_store_explicit(&s->cursor_offset, 0, memory_order_relaxed);
            atomic_store_explicit(&s->delivered, 0, memory_order_relaxed);
            atomic_store_explicit(&s->lost, 0, memory_order_relaxed);
            atomic_store_explicit(&s->kind, kind, memory_order_relaxed);
            char buf[sizeof s->name] = {0};
            if (name)
                strncpy(buf, name, sizeof buf - 1);
            memcpy(s->name, buf, sizeof buf);
            /* S1: slot stores before the caller's tail load (claim.c). */
            atomic_thread_fence(memory_order_seq_cst);
            *slot_idx = i;
            return 0;
        }
        if (pass == 0 && evb_ring_reap_readers(r) == 0)
            break;
    }
    return evb_err_set(-EBUSY, "partition %u: all %u reader slots are taken", r->partition,
                       EVB_RING_READER_SLOTS);
}

void evb_ring_slot_release(struct evb_ring *r, uint32_t slot_idx)
{
    struct evb_reader_slot *s = &r->rslots[slot_idx];
    /* Only our own: a forked child closing its copy of its parent's
     * reader would otherwise free the parent's slot (and its waiter bit),
     * and a gating reader would stop holding producers back. Relaxed: a
     * word only its owner stores, compared with our own. */
    if (atomic_load_explicit(&s->owner, memory_order_relaxed) != evb_proc_self())
        return;
    evb_ring_waiter_clear(r, slot_idx);
    /* Q1: release, our last cursor store precedes the slot reading as free. */
    atomic_store_explicit(&s->owner, 0, memory_order_release);
}

int evb_ring_reap_readers(struct evb_ring *r)
{
    EVB_NO_CANCEL;
    uint64_t self_pid = evb_proc_self() >> 32;
    int n = 0;
    for (uint32_t i = 0; i < EVB_RING_READER_SLOTS; i++) {
        struct evb_reader_slot *s = &r->rslots[i];
        /* Q1: acquire, the owner word before we judge it. */
        uint64_t owner = atomic_load_explicit(&s->owner, memory_order_acquire);
        if (!owner || (owner >> 32) == self_pid || evb_proc_alive(owner))
            continue;
        /* Q1: the CAS compares the whole owner word, so a slot taken again
         * by a new process meanwhile is left alone (failure: relaxed,
         * nothing read). */
        if (!atomic_compare_exchange_strong_explicit(&s->owner, &owner, 0,
                                                     memory_order_acq_rel,
                                                     memory_order_relaxed))
            continue;
        evb_ring_waiter_clear(r, i);
        atomic_fetch_add_explicit(&r->hdr->reaped_readers, 1, memory_order_relaxed);
        n++;
    }
    return n;
}
