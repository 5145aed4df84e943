/*
 * doorbell.c - every futex of the library: sleeping readers and waking
 * them, and the plain bells the flusher rings (flush_bell, sync_bell).
 * Producers pay a system call only when some reader has set its bit in the
 * ring's waiters word; the sleep/commit race is closed by the D1 Dekker
 * pair (claim.c). Sleeping on more bells than one futex_waitv call takes
 * (a topic may have 256 partitions) is evb_bell_wait's business too.
 */
#include "ring.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef FUTEX2_SIZE_U32
#define FUTEX2_SIZE_U32 0x02
#endif
#ifndef FUTEX2_PRIVATE
#define FUTEX2_PRIVATE 128 /* FUTEX_PRIVATE_FLAG */
#endif

/* futex_waitv takes at most this many words per call (FUTEX_WAITV_MAX). */
#define EVB_WAITV_MAX 128u

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

/*
 * Classes on one word (FUTEX_WAKE_BITSET): a ring wakes only the sleepers
 * whose mask meets its own, so waiters who wait for different things on
 * one word do not all wake for each (the sync waiters of durable_wait.c
 * class themselves by target). Plain FUTEX_WAKE and FUTEX_WAIT match every
 * class, so the two kinds mix on a word, and with builds that have only
 * the plain kind.
 */
void evb_bell_ring_mask(_Atomic uint32_t *bell, uint32_t mask)
{
    /* B1: release, as evb_bell_ring. */
    atomic_fetch_add_explicit(bell, 1, memory_order_release);
    syscall(SYS_futex, bell, FUTEX_WAKE_BITSET, INT_MAX, NULL, NULL, mask);
}

int evb_bell_sleep_mask(_Atomic uint32_t *bell, uint32_t val, uint64_t timeout_ns,
                        uint32_t mask)
{
    /* FUTEX_WAIT_BITSET's timeout is absolute, on CLOCK_MONOTONIC. */
    struct timespec ts, *at = NULL;
    if (timeout_ns) {
        uint64_t until = evb_mono_ns() + timeout_ns;
        ts = (struct timespec){(time_t)(until / 1000000000ull),
                               (long)(until % 1000000000ull)};
        at = &ts;
    }
    long rc = syscall(SYS_futex, bell, FUTEX_WAIT_BITSET, val, at, NULL, mask);
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

int evb_ring_waiters_armed(void)
{
    /* X2 (claim.c): our waiter bits (set by seq_cst RMWs) before the
     * stamp loads that follow, on every CPU a fenceless producer runs on. */
    return evb_fence_heavy();
}

void evb_ring_waiter_clear(struct evb_ring *r, uint32_t slot_idx)
{
    /* A read-only reader never set a bit (and may not store one). */
    if (r->readonly)
        return;
    /* Relaxed: a stale bit costs a spurious wake, never a lost one. */
    atomic_fetch_and_explicit(&r->hdr->waiters, ~(1ull << slot_idx), memory_order_relaxed);
}

static void waitv_fill(struct evb_futex_waitv *w, _Atomic uint32_t *word, uint32_t val,
                       uint32_t flags)
{
    w->val = val;
    w->uaddr = (uint64_t)(uintptr_t)word;
    w->flags = FUTEX2_SIZE_U32 | flags;
    w->reserved = 0;
}

/* One futex_waitv call: the index of the word that woke us, or -errno. */
static long waitv_call(struct evb_futex_waitv *w, unsigned n, const struct timespec *abs)
{
    long rc = syscall(SYS_futex_waitv, w, n, 0, abs, CLOCK_MONOTONIC);
    return rc < 0 ? -errno : rc;
}

/*
 * More bells than one call takes. The bells are split into groups of
 * EVB_WAITV_MAX - 1; the caller sleeps on the first group, one helper
 * thread on each other, and every call also waits on a private stop word.
 * The first group to return (a bell rang or had moved, the deadline,
 * a signal) sets stop and wakes it, which ends every other call; the
 * caller joins the helpers and returns that first result.
 *
 * No wake-up can be lost, whichever thread sleeps on a bell: every call
 * compares its bells with VALS, the values the caller loaded before its
 * last readiness check (the D1 pair and B1, claim.c). A producer that rang
 * after that load has moved the bell, so the call sleeping on it returns
 * at once (-EAGAIN) or is woken, and stops the rest. Producers and the ring
 * format are untouched: each still rings only its own ring's bell, so
 * processes of older builds interoperate. The price is a thread creation
 * per sleep, paid only by a reader of more than 127 rings and only after
 * it found nothing to read.
 */
struct waitv_share {
    _Atomic uint32_t stop; /* 0 while every group sleeps; 1 once one returned */
    int rc;                /* the first group's result; read after the joins */
};

struct waitv_group {
    struct evb_futex_waitv w[EVB_WAITV_MAX]; /* n bells, then the stop word */
    unsigned n;
    const struct timespec *abs;
    struct waitv_share *sh;
    pthread_t th;
    bool started;
};

static void group_sleep(struct waitv_group *g)
{
    long rc = waitv_call(g->w, g->n + 1, g->abs);
    if (rc == (long)g->n)
        return; /* stopped: another group returned first */
    uint32_t exp = 0;
    /* Relaxed: the CAS only elects whose result is returned; the caller
     * reads sh->rc after pthread_join(), which orders it, and the futex
     * calls order stop itself for the sleepers. */
    if (atomic_compare_exchange_strong_explicit(&g->sh->stop, &exp, 1, memory_order_relaxed,
                                                memory_order_relaxed)) {
        g->sh->rc = rc < 0 ? (int)rc : 0;
        syscall(SYS_futex, &g->sh->stop, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    }
}

static void *group_thread(void *arg)
{
    group_sleep(arg);
    return NULL;
}

static int wait_groups(_Atomic uint32_t **bells, const uint32_t *vals, unsigned n,
                       const struct timespec *abs)
{
    const unsigned per = EVB_WAITV_MAX - 1;
    unsigned ng = (n + per - 1) / per;
    struct waitv_group *g = calloc(ng, sizeof *g);
    if (!g)
        return -ENOMEM;
    struct waitv_share sh = {.rc = 0};
    /* Relaxed: not shared with any thread yet. */
    atomic_store_explicit(&sh.stop, 0, memory_order_relaxed);
    for (unsigned k = 0; k < ng; k++) {
        unsigned first = k * per;
        g[k].n = n - first < per ? n - first : per;
        for (unsigned i = 0; i < g[k].n; i++)
            waitv_fill(&g[k].w[i], bells[first + i], vals[first + i], 0);
        waitv_fill(&g[k].w[g[k].n], &sh.stop, 0, FUTEX2_PRIVATE);
        g[k].abs = abs;
        g[k].sh = &sh;
    }
    /* Helpers take no signal meant for the process: they inherit a full
     * mask, and the caller's own mask is restored right after. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    bool uncovered = false;
    for (unsigned k = 1; k < ng; k++) {
        g[k].started = pthread_create(&g[k].th, NULL, group_thread, &g[k]) == 0;
        uncovered |= !g[k].started;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    struct timespec nap;
    if (uncovered) {
        /* No thread for some bells: sleep a slice at most and let the
         * caller poll them; degraded, but nothing is missed for long. */
        clock_gettime(CLOCK_MONOTONIC, &nap);
        nap.tv_nsec += 1000000;
        if (nap.tv_nsec >= 1000000000) {
            nap.tv_sec++;
            nap.tv_nsec -= 1000000000;
        }
        if (!abs || nap.tv_sec < abs->tv_sec ||
            (nap.tv_sec == abs->tv_sec && nap.tv_nsec < abs->tv_nsec))
            g[0].abs = &nap;
    }
    /* Whichever way it returns, stop is set and woken by then (by us or by
     * the group that returned first), so every helper is on its way out. */
    group_sleep(&g[0]);
    for (unsigned k = 1; k < ng; k++)
        if (g[k].started)
            pthread_join(g[k].th, NULL);
    free(g);
    /* The end of a slice is no timeout: the caller polls and comes back. */
    return uncovered && sh.rc == -ETIMEDOUT ? 0 : sh.rc;
}

int evb_bell_wait(_Atomic uint32_t **bells, const uint32_t *vals, unsigned n,
                  uint64_t timeout_ns)
{
    if (n == 1)
        return evb_bell_sleep(bells[0], vals[0], timeout_ns);
    struct timespec abs, *tp = NULL;
    if (timeout_ns) {
        clock_gettime(CLOCK_MONOTONIC, &abs);
        uint64_t ns = (uint64_t)abs.tv_nsec + timeout_ns;
        abs.tv_sec += (time_t)(ns / 1000000000ull);
        abs.tv_nsec = (long)(ns % 1000000000ull);
        tp = &abs;
    }
    long rc;
    if (n <= EVB_WAITV_MAX) {
        struct evb_futex_waitv w[EVB_WAITV_MAX];
        for (unsigned i = 0; i < n; i++)
            waitv_fill(&w[i], bells[i], vals[i], 0);
        rc = waitv_call(w, n, tp);
    } else {
        rc = wait_groups(bells, vals, n, tp);
    }
    if (rc == -ENOSYS || rc == -ENOMEM) {
        /* Old kernel, or no memory for the groups: nap briefly and let
         * the caller poll. */
        struct timespec nap = {0, 200000};
        nanosleep(&nap, NULL);
        return 0;
    }
    return rc < 0 ? (int)rc : 0;
}
