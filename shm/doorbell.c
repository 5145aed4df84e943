/*
 * doorbell.c - every futex of the library: sleeping readers and waking
 * them, and the plain bells the flusher rings (flush_bell, sync_bell).
 * Producers pay a system call only when some reader has set its bit in the
 * ring's waiters word; the sleep/commit race is closed by the D1 Dekker
 * pair (claim.c).
 */
#include "ring.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef FUTEX2_SIZE_U32
#define FUTEX2_SIZE_U32 0x02
#endif

struct evb_futex_waitv {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t reserved;
};

/*
 * Take every waiter bit and wake the sleepers. Taking the bits means the
 * next commit pays no system call until some reader sets its bit again,
 * which it does before each sleep: one wake per sleep, not per event.
 * seq_cst exchange: D1's second half, as the load it follows.
 */
void evb_ring_wake_waiters(struct evb_ring *r)
{
    if (atomic_exchange_explicit(&r->hdr->waiters, 0, memory_order_seq_cst))
        evb_ring_wake(r);
}

void evb_bell_ring(_Atomic uint32_t *bell)
{
    /* B1: release, pairs with the sleeper's acquire load of the bell value it
     * then sleeps on (evb_ring_waiter_set, and the flusher's bells), so a
     * sleeper that read the new value sees what was published before it. */
    atomic_fetch_add_explicit(bell, 1, memory_order_release);
    syscall(SYS_futex, bell, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

int evb_bell_sleep(_Atomic uint32_t *bell, uint32_t val, uint64_t timeout_ns)
{
    struct timespec ts = {(time_t)(timeout_ns / 1000000000ull),
                          (long)(timeout_ns % 1000000000ull)};
    long rc = syscall(SYS_futex, bell, FUTEX_WAIT, val, timeout_ns ? &ts : NULL, NULL, 0);
    return rc < 0 ? -errno : 0;
}

void evb_ring_wake(struct evb_ring *r)
{
    evb_bell_ring(&r->hdr->bell);
}

void evb_ring_waiter_set(struct evb_ring *r, uint32_t slot_idx, uint32_t *bell_val)
{
    /* D1: seq_cst RMW, then the caller re-checks the stamp with seq_cst. */
    atomic_fetch_or_explicit(&r->hdr->waiters, 1ull << slot_idx, memory_order_seq_cst);
    /* B1: acquire pairs with evb_bell_ring's release bump. */
    *bell_val = atomic_load_explicit(&r->hdr->bell, memory_order_acquire);
}

void evb_ring_waiter_clear(struct evb_ring *r, uint32_t slot_idx)
{
    /* Relaxed: a stale bit costs a spurious wake, never a lost one. */
    atomic_fetch_and_explicit(&r->hdr->waiters, ~(1ull << slot_idx), memory_order_relaxed);
}

int evb_bell_wait(_Atomic uint32_t **bells, const uint32_t *vals, unsigned n,
                  uint64_t timeout_ns)
{
    if (n == 1)
        return evb_bell_sleep(bells[0], vals[0], timeout_ns);
    struct evb_futex_waitv w[128];
    if (n > sizeof w / sizeof w[0])
        n = sizeof w / sizeof w[0];
    for (unsigned i = 0; i < n; i++) {
        w[i].val = vals[i];
        w[i].uaddr = (uint64_t)(uintptr_t)bells[i];
        w[i].flags = FUTEX2_SIZE_U32;
        w[i].reserved = 0;
    }
    struct timespec abs, *tp = NULL;
    if (timeout_ns) {
        clock_gettime(CLOCK_MONOTONIC, &abs);
        uint64_t ns = (uint64_t)abs.tv_nsec + timeout_ns;
        abs.tv_sec += (time_t)(ns / 1000000000ull);
        abs.tv_nsec = (long)(ns % 1000000000ull);
        tp = &abs;
    }
    long rc = syscall(SYS_futex_waitv, w, n, 0, tp, CLOCK_MONOTONIC);
    if (rc < 0 && errno == ENOSYS) {
        /* Old kernel: nap briefly and let the caller poll. */
        struct timespec nap = {0, 200000};
        nanosleep(&nap, NULL);
        return 0;
    }
    return rc < 0 ? -errno : 0;
}
