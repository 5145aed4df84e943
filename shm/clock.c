/*
 * clock.c - the event clock: CLOCK_REALTIME in nanoseconds, read from the
 * CPU's time-stamp counter where the kernel itself keeps time by it.
 *
 * Every event carries the time it was claimed. clock_gettime through the
 * vDSO costs 25-30 ns on this kind of machine (a seqlock over the kernel's
 * clock data, and on a VM the paravirtual clock's own), a quarter of a
 * 64-byte publish. The counter costs half that, and the conversion is a
 * multiply and a shift.
 *
 * The conversion is an anchor pair (counter, CLOCK_REALTIME) and a rate,
 * both measured here against clock_gettime: first over CALIBRATE_NS (the
 * calls until then read clock_gettime itself), then re-anchored every
 * REANCHOR_NS with the rate taken over the last interval, so a clock the
 * kernel slews (NTP) or steps is followed within that interval. Between
 * anchors the error is the rate's over the interval: tens of nanoseconds,
 * far below what the timestamps are used for (lag in seconds, seeks by
 * time, the order events of one producer were claimed in is the offsets').
 *
 * Only where the counter is invariant and the kernel's clocksource is
 * "tsc" (it checked the counter is synchronised across CPUs and stable);
 * anywhere else, and on other architectures, clock_gettime every time.
 *
 * Ordering (one edge, process-local):
 *
 *   V4  the anchor's seqlock: a writer takes it by CAS to an odd value
 *       (acquire), fences release (so no field store is seen before the
 *       odd value: free on x86, where only this path compiles, but the
 *       language's rule), stores the fields, stores the next even value
 *       with release; a reader (clock.h) loads seq with acquire, the
 *       fields, fences acquire and loads seq again: equal and even, the
 *       fields are one anchor.
 *
 * A child forked while another thread held the seqlock gets it back even,
 * the clock started over (clk_fork_child).
 */
#include "nocancel.h"
#include "ring.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* 64 x 64 -> 128-bit products: a tick count times a 32.32 rate. */
__extension__ typedef unsigned __int128 u128;

#define CALIBRATE_NS 10000000ull   /* 10 ms: the first rate */
#define REANCHOR_NS 1000000000ull  /* 1 s between anchors afterwards */

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#ifdef EVB_HAVE_TSC
/* The anchor (clock.h), read inline by evb_event_ns(); a line of its own,
 * which only a re-anchor (once a second) writes. */
_Alignas(64) struct evb_clk evb_clk;

/* The kernel keeps time by the counter: it found it invariant and
 * synchronised (or it would have marked it unstable and switched). */
bool evb_clock_kernel_tsc(void)
{
    char buf[32] = {0};
    int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                  O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n >= 3 && strncmp(buf, "tsc", 3) == 0 && (buf[3] == '\n' || buf[3] == 0);
}

/* A pair (counter, realtime) taken as close together as the calls allow:
 * the counter halfway between two reads around clock_gettime, from the
 * tightest of a few tries. A thread preempted between the reads would
 * otherwise put the anchor off by half the time it was away, and every
 * event stamp with it until the next anchor (35 us seen on a loaded VM). */
static void pair_now(uint64_t *tsc, uint64_t *ns)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        uint64_t a = __rdtsc();
        uint64_t n = realtime_ns();
        uint64_t b = __rdtsc();
        if (b >= a && b - a < best) {
            best = b - a;
            *tsc = a + (b - a) / 2;
            *ns = n;
        }
    }
    if (best == UINT64_MAX) { /* the counter went back each time: take the last read */
        *ns = realtime_ns();
        *tsc = __rdtsc();
    }
}

/* Rewrite the anchor (seqlock held, SEQ odd): a new pair, the rate over
 * the time since the last one if that was at least MIN_NS, and the next
 * anchor due NEXT_NS from now. */
static uint64_t reanchor(uint64_t seq, uint64_t min_ns, uint64_t next_ns)
{
    uint64_t tsc, ns;
    pair_now(&tsc, &ns);
    /* Relaxed: we hold the seqlock; the fields are ours until the release
     * below. */
    uint64_t t0 = atomic_load_explicit(&evb_clk.anchor_tsc, memory_order_relaxed);
    uint64_t n0 = atomic_load_explicit(&evb_clk.anchor_ns, memory_order_relaxed);
    uint64_t mult = atomic_load_explicit(&evb_clk.rate, memory_order_relaxed);
    int mode = atomic_load_explicit(&evb_clk.state, memory_order_relaxed);
    /* A rate needs a long enough interval: two threads that find the
     * anchor due together re-anchor twice, the second a moment later. */
    if (tsc > t0 && ns >= n0 + min_ns) {
        u128 m = ((u128)(ns - n0) << 32) / (tsc - t0);
        /* A step of the clock (settimeofday) gives one odd rate: keep the
         * old one then, the anchor itself takes the step. */
        if (mode == EVB_CLK_CALIBRATING || (m > mult / 2 && m < mult * 2))
            mult = (uint64_t)m;
        mode = EVB_CLK_TSC;
    }
    uint64_t ticks = mult ? (uint64_t)(((u128)next_ns << 32) / mult) : 0;
    /* Relaxed stores: the seqlock's release below publishes them (V4). */
    atomic_store_explicit(&evb_clk.anchor_tsc, tsc, memory_order_relaxed);
    atomic_store_explicit(&evb_clk.anchor_ns, ns, memory_order_relaxed);
    atomic_store_explicit(&evb_clk.rate, mult, memory_order_relaxed);
    atomic_store_explicit(&evb_clk.due_tsc, tsc + ticks, memory_order_relaxed);
    atomic_store_explicit(&evb_clk.state, mode, memory_order_relaxed);
    /* Tests hold this thread here, the lock odd, while another forks. */
    EVB_CRASH_POINT("clock.reanchor");
    /* V4: release, the fields before the even value readers check. */
    atomic_store_explicit(&evb_clk.lock_seq, seq + 2, memory_order_release);
    return ns;
}

/* A child forked while another thread of its parent held the seqlock (a
 * re-anchor holds it about once a second, for a few hundred ns) inherits
 * it odd, and no thread of the child will ever make it even: every read
 * of the clock would spin for ever (the anchor's state says TSC, the lock
 * says being rewritten). The child has one thread when this runs. An odd
 * lock means a half-written anchor: the clock starts over, as at its first
 * call (calibration, 10 ms of clock_gettime). An even one is a whole
 * anchor, as good in the child as in the parent: kept. */
static void clk_fork_child(void)
{
    /* Relaxed: the child has one thread; nothing races these. */
    uint64_t seq = atomic_load_explicit(&evb_clk.lock_seq, memory_order_relaxed);
    if (!(seq & 1))
        return;
    atomic_store_explicit(&evb_clk.state, EVB_CLK_UNKNOWN, memory_order_relaxed);
    /* V4: release, as every writer's even value. */
    atomic_store_explicit(&evb_clk.lock_seq, seq + 1, memory_order_release);
}

/* Before main(), so that no fork can come before it (shm/proc.c's too). */
__attribute__((constructor)) static void clk_atfork(void)
{
    pthread_atfork(NULL, NULL, clk_fork_child);
}

/* Take the seqlock if nobody holds it: SEQ (even) on success. */
static bool try_lock(uint64_t seq)
{
    /* V4: acquire on success, so the fields we read are the last
     * writer's; a failed CAS reads nothing: relaxed. */
    if ((seq & 1) || !atomic_compare_exchange_strong_explicit(&evb_clk.lock_seq, &seq, seq + 1,
                                                              memory_order_acquire,
                                                              memory_order_relaxed))
        return false;
    /* V4: release fence; the odd value before any field store. */
    atomic_thread_fence(memory_order_release);
    return true;
}

uint64_t evb_event_ns_slow(void)
{
    /* Relaxed: a hint; the seqlock decides who writes. */
    int mode = atomic_load_explicit(&evb_clk.state, memory_order_relaxed);
    if (mode == EVB_CLK_SYSCALL)
        return realtime_ns();
    /* Relaxed: the CAS in try_lock() rechecks it. */
    uint64_t seq = atomic_load_explicit(&evb_clk.lock_seq, memory_order_relaxed);
    if (!try_lock(seq))
        return realtime_ns(); /* another thread re-anchors: ask the kernel once */
    /* The seqlock is ours (odd) until we release it, and the first anchor
     * reads the clock source (open, read: cancellation points), often
     * inside a producer's claim, after its CAS: a thread cancelled there
     * would leave the clock on system calls for the process's life, and
     * the claim open in the ring but not in its handle (nocancel.h). */
    EVB_NO_CANCEL;
    /* Relaxed: under the lock. */
    mode = atomic_load_explicit(&evb_clk.state, memory_order_relaxed);
    if (mode == EVB_CLK_UNKNOWN) {
        bool tsc = evb_clock_kernel_tsc();
        uint64_t t, ns;
        pair_now(&t, &ns);
        /* Relaxed stores: the release below publishes them (V4). */
        atomic_store_explicit(&evb_clk.anchor_tsc, t, memory_order_relaxed);
        atomic_store_explicit(&evb_clk.anchor_ns, ns, memory_order_relaxed);
        atomic_store_explicit(&evb_clk.rate, 0, memory_order_relaxed);
        atomic_store_explicit(&evb_clk.due_tsc, 0, memory_order_relaxed);
        atomic_store_explicit(&evb_clk.state, tsc ? EVB_CLK_CALIBRATING : EVB_CLK_SYSCALL,
                              memory_order_relaxed);
        /* V4: release, as in reanchor(). */
        atomic_store_explicit(&evb_clk.lock_seq, seq + 2, memory_order_release);
        return ns;
    }
    if (mode == EVB_CLK_CALIBRATING) {
        /* Relaxed: under the lock. */
        uint64_t n0 = atomic_load_explicit(&evb_clk.anchor_ns, memory_order_relaxed);
        uint64_t ns = realtime_ns();
        if (ns < n0 + CALIBRATE_NS) {
            /* V4: release, nothing changed but the lock. */
            atomic_store_explicit(&evb_clk.lock_seq, seq + 2, memory_order_release);
            return ns;
        }
        /* The first rate; the next anchor 100 ms on, then REANCHOR_NS. */
        return reanchor(seq, CALIBRATE_NS, 100000000ull);
    }
    /* Relaxed: under the lock. Another thread may have re-anchored since
     * our reader found it due. */
    uint64_t t0 = atomic_load_explicit(&evb_clk.anchor_tsc, memory_order_relaxed);
    uint64_t n0 = atomic_load_explicit(&evb_clk.anchor_ns, memory_order_relaxed);
    uint64_t mult = atomic_load_explicit(&evb_clk.rate, memory_order_relaxed);
    uint64_t due = atomic_load_explicit(&evb_clk.due_tsc, memory_order_relaxed);
    uint64_t t = __rdtsc();
    if (t >= t0 && t < due) {
        /* V4: release, nothing changed but the lock. */
        atomic_store_explicit(&evb_clk.lock_seq, seq + 2, memory_order_release);
        return n0 + (uint64_t)(((u128)(t - t0) * mult) >> 32);
    }
    return reanchor(seq, 50000000ull, REANCHOR_NS);
}

#else
uint64_t evb_event_ns_slow(void)
{
    return realtime_ns();
}

/* No counter read here: whatever the kernel keeps time by, not ours. */
bool evb_clock_kernel_tsc(void)
{
    return false;
}
#endif
